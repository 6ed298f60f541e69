/* test_dispatch.c: the dispatcher in-process, with no nginx and no MySQL: a
 * request is a FastCGI parameter list and a body, its reply is captured. What
 * is checked: 404/405 with Allow, internal and test routes, 413, 415, the order
 * of 400 (parameters, JSON syntax) before 422 (fields), authentication flags
 * (SH_AUTH, SH_ADMIN, SH_TOKEN_QUERY), declared parameters and fields, the
 * invocation depth limit, and that exactly one reply is always sent. */
#include "sh_auth.h"
#include "sh_budget.h"
#include "sh_dispatch.h"
#include "sh_ratelimit.h"
#include "sh_test.h"

#include <stdarg.h>
#include <time.h>

static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
static sh_arena *arena;
static sh_router router;
static const char *user_token, *admin_token;
static sh_req *last; /* the request the handler saw */

static int h_ok(sh_req *req)
{
    last = req;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "user", req->auth.present ? json_object_new_int64(req->auth.user_id) : NULL);
    const sh_value *name = sh_req_field(req, "name");
    if (name->present)
        json_object_object_add(o, "name", json_object_new_string(name->s));
    return sh_reply_json(req, 200, o);
}

/* A resource at version 5 (or none, with ?gone=1): its preconditions, then 200. */
static int h_versioned(sh_req *req)
{
    bool if_match;
    int rc = sh_preconditions_or_reply(req, sh_param_int(req, "gone", 0) ? NULL : "\"5\"", &if_match);
    if (rc != 0)
        return rc;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "if_match", json_object_new_boolean(if_match));
    return sh_reply_json(req, 200, o);
}

static int h_silent(sh_req *req)
{
    (void)req;
    return 200; /* forgets to answer */
}

static const char *const colours[] = {"red", "green", NULL};
static const sh_param id_param[] = {SH_PATH_ID("id"), SH_RULE_END};
static const sh_param list_params[] = {SH_QUERY_INT("limit", 1, 100),
                                       SH_QUERY_CURSOR("cursor"),
                                       {"q", SH_T_STRING, SH_QUERY | SH_REQUIRED, 1, 10, NULL},
                                       SH_RULE_END};
static const sh_field item_fields[] = {
    SH_FIELD_STR("name", SH_REQUIRED, 1, 5),
    SH_FIELD_INT("size", 0, 1, 10),
    SH_FIELD_ENUM("colour", 0, colours),
    SH_FIELD_ID("parent_id", SH_NULLABLE),
    SH_RULE_END,
};

static const sh_param gone_param[] = {SH_QUERY_BOOL("gone"), SH_RULE_END};
static const int64_t per_second = 1000000 / 2, burst = 3; /* 2 r/s, 3 at once */
static const sh_rate limited = {"limited", &per_second, &burst};

static const sh_route routes[] = {
    SH_ROUTE("GET", "/api/t/versioned", h_versioned, 0, gone_param, NULL),
    SH_ROUTE_LIMITED("GET", "/api/t/limited", h_ok, SH_TOKEN_QUERY, NULL, NULL, &limited),
    SH_ROUTE("PATCH", "/api/t/versioned", h_versioned, 0, gone_param, NULL),
    SH_ROUTE("GET", "/api/t/items", h_ok, 0, list_params, NULL),
    SH_ROUTE("POST", "/api/t/items", h_ok, SH_JSON, NULL, item_fields),
    SH_ROUTE("GET", "/api/t/items/{id}", h_ok, SH_AUTH, id_param, NULL),
    SH_ROUTE("PATCH", "/api/t/items/{id}", h_ok, SH_AUTH | SH_JSON, id_param, item_fields),
    SH_ROUTE("DELETE", "/api/t/items/{id}", h_ok, SH_ADMIN, id_param, NULL),
    SH_ROUTE("GET", "/api/t/live", h_ok, SH_TOKEN_QUERY, NULL, NULL),
    SH_ROUTE("POST", "/api/t/optional", h_ok, SH_JSON | SH_BODY_OPTIONAL, NULL, item_fields),
    SH_ROUTE("GET", "/api/t/_inside", h_ok, SH_INTERNAL, NULL, NULL),
    SH_ROUTE("GET", "/api/t/_test/probe", h_ok, SH_TEST, NULL, NULL),
    SH_ROUTE("GET", "/api/t/silent", h_silent, 0, NULL, NULL),
    SH_ROUTE_END,
};

/* A captured reply. */
typedef struct {
    int status;
    sh_buf head;
    sh_buf body;
    json_object *json;
} reply;

/* Dispatches one request. params: "NAME=value" FastCGI parameters, NULL-ended. */
static void run(reply *out, const char *body, ...)
{
    char *env[24];
    int n = 0;
    va_list ap;
    va_start(ap, body);
    for (const char *p; n < 22 && (p = va_arg(ap, const char *)) != NULL;)
        env[n++] = (char *)p;
    va_end(ap);
    if (body != NULL)
        env[n++] = sh_arena_sprintf(arena, "CONTENT_LENGTH=%zu", strlen(body));
    env[n] = NULL;
    char **envp = sh_arena_alloc(arena, sizeof(env));
    memcpy(envp, env, sizeof(env));

    sh_req *req = sh_arena_calloc(arena, sizeof(*req));
    req->arena = arena;
    req->env = envp;
    req->router = &router;
    sh_buf_init(&out->head, arena, 256);
    sh_buf_init(&out->body, arena, 256);
    req->capture = &out->body;
    req->capture_head = &out->head;
    req->body = body ? body : "";
    req->body_len = body ? strlen(body) : 0;
    req->method = sh_req_fcgi_param(req, "REQUEST_METHOD");
    req->head = strcmp(req->method, "HEAD") == 0;
    req->path = sh_req_fcgi_param(req, "DOCUMENT_URI");
    req->query = sh_req_fcgi_param(req, "QUERY_STRING");
    if (req->query == NULL)
        req->query = "";
    const char *internal = sh_req_fcgi_param(req, "PL_INTERNAL");
    req->internal = internal != NULL && strcmp(internal, "1") == 0;
    req->request_id = "test";
    req->remote_addr = sh_req_fcgi_param(req, "REMOTE_ADDR");
    last = NULL;
    out->status = sh_dispatch(req, &router);
    CHECK(req->responded && req->status == out->status);
    const char *why;
    out->json = out->body.len ? sh_req_own(req, sh_json_parse(out->body.data, out->body.len, 8, &why)) : NULL;
}

/* The error code of a captured reply, and its "field" when it names one. */
static const char *code_of(const reply *r)
{
    json_object *err;
    if (r->json == NULL || !json_object_object_get_ex(r->json, "error", &err))
        return "(none)";
    return sh_json_get_str(err, "code");
}

static const char *field_of(const reply *r)
{
    json_object *err;
    if (r->json == NULL || !json_object_object_get_ex(r->json, "error", &err))
        return "(none)";
    const char *f = sh_json_get_str(err, "field");
    return f ? f : "(none)";
}

#define EXPECT(r, st, code)                                                                                            \
    do {                                                                                                               \
        CHECK((r).status == (st));                                                                                     \
        CHECK_STR(code_of(&(r)), (code));                                                                              \
    } while (0)

static char *token(const char *role, int64_t exp_offset)
{
    int64_t now = (int64_t)time(NULL);
    json_object *c = json_object_new_object();
    json_object_object_add(c, "iss", json_object_new_string("pilotlight"));
    json_object_object_add(c, "sub", json_object_new_string(strcmp(role, "admin") == 0 ? "1" : "7"));
    json_object_object_add(c, "exp", json_object_new_int64(now + exp_offset));
    json_object_object_add(c, "role", json_object_new_string(role));
    char *t = sh_jwt_sign(arena, "k1", sk, c);
    json_object_put(c);
    return t;
}

static void test_routing(void)
{
    reply r;
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/nothing", NULL);
    EXPECT(r, 404, "not_found");
    run(&r, NULL, "REQUEST_METHOD=PUT", "DOCUMENT_URI=/api/t/items/3", NULL);
    EXPECT(r, 405, "method_not_allowed");
    CHECK(strstr(r.head.data, "\r\nAllow: GET, HEAD, PATCH, DELETE\r\n") != NULL);
    /* HEAD: a GET's answer, headers and all, without the body */
    reply get, head;
    run(&get, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", NULL);
    run(&head, NULL, "REQUEST_METHOD=HEAD", "DOCUMENT_URI=/api/t/live", NULL);
    CHECK(get.status == 200 && head.status == 200 && get.body.len > 0 && head.body.len == 0);
    CHECK(strstr(head.head.data, sh_arena_sprintf(arena, "Content-Length: %zu\r\n", get.body.len)) != NULL);
    CHECK(strstr(r.head.data, "Status: 405 Method Not Allowed\r\n") == r.head.data);
    /* an internal route does not exist on the public listener */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/_inside", NULL);
    EXPECT(r, 404, "not_found");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/_inside", "PL_INTERNAL=1", NULL);
    CHECK(r.status == 200);
    /* nor does a test route (and with another method, it is still 404: it is not there) */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/_test/probe", NULL);
    EXPECT(r, 404, "not_found");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/_test/probe", "PL_INTERNAL=1", NULL);
    CHECK(r.status == 200);
    /* a handler that does not answer gets a 500 sent for it */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/silent", NULL);
    EXPECT(r, 500, "internal_error");
    /* every reply: request id, no-store, length */
    CHECK(strstr(r.head.data, "X-Request-Id: test\r\n") != NULL);
    CHECK(strstr(r.head.data, "Cache-Control: no-store\r\n") != NULL);
    CHECK(strstr(r.head.data, "Content-Length: ") != NULL);
}

static void test_params(void)
{
    reply r;
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items", "QUERY_STRING=limit=5", NULL);
    EXPECT(r, 400, "missing_parameter");
    CHECK_STR(field_of(&r), "q");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items", "QUERY_STRING=q=a&limit=500", NULL);
    EXPECT(r, 400, "invalid_parameter");
    CHECK_STR(field_of(&r), "limit");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items", "QUERY_STRING=q=a&q=b", NULL);
    EXPECT(r, 400, "invalid_parameter");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items", "QUERY_STRING=q=%zz", NULL);
    EXPECT(r, 400, "invalid_parameter");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items", "QUERY_STRING=q=a&cursor=junk", NULL);
    EXPECT(r, 400, "invalid_parameter");
    CHECK_STR(field_of(&r), "cursor");
    /* a cursor this API made reaches the handler as the id it names */
    char *query = sh_arena_sprintf(arena, "QUERY_STRING=q=%%C3%%A9t%%C3%%A9&cursor=%s", sh_cursor_encode(arena, 41));
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items", query, NULL);
    CHECK(r.status == 200 && last != NULL);
    CHECK(last && sh_param_int(last, "cursor", 0) == 41);
    CHECK_STR(last ? sh_param_str(last, "q") : NULL, "\xc3\xa9t\xc3\xa9");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items/0", "HTTP_AUTHORIZATION=Bearer x", NULL);
    EXPECT(r, 401, "invalid_token"); /* authentication comes before parameters */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items/0",
        sh_arena_sprintf(arena, "HTTP_AUTHORIZATION=Bearer %s", user_token), NULL);
    EXPECT(r, 400, "invalid_parameter");
    CHECK_STR(field_of(&r), "id");
}

static void test_body(void)
{
    reply r;
    const char *json = "CONTENT_TYPE=application/json";
    run(&r, "{\"name\":\"abc\"}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    CHECK(r.status == 200);
    run(&r, "{\"name\":\"abc\", \"size\": 3}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items",
        "CONTENT_TYPE=application/json; charset=utf-8", NULL);
    CHECK(r.status == 200);
    /* 413 before anything else about the body; 415 for a body that is not JSON */
    run(&r, "{\"name\":\"this body is longer than the sixty-four bytes the test allows\"}", "REQUEST_METHOD=POST",
        "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 413, "payload_too_large");
    /* the limit is inclusive: 64 bytes are read, 65 are not */
    char at_limit[65], over_limit[66];
    snprintf(at_limit, sizeof(at_limit), "{\"name\":\"abc\"%*s}", 64 - 14, "");
    snprintf(over_limit, sizeof(over_limit), "{\"name\":\"abc\"%*s}", 65 - 14, "");
    CHECK(strlen(at_limit) == 64 && strlen(over_limit) == 65);
    run(&r, at_limit, "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    CHECK(r.status == 200);
    run(&r, over_limit, "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 413, "payload_too_large");
    /* any body that is not JSON, one byte too */
    run(&r, "x", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", "CONTENT_TYPE=text/plain", NULL);
    EXPECT(r, 415, "unsupported_media_type");
    run(&r, "name=abc", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items",
        "CONTENT_TYPE=application/x-www-form-urlencoded", NULL);
    EXPECT(r, 415, "unsupported_media_type");
    run(&r, "{\"name\":\"abc\"}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", NULL);
    EXPECT(r, 415, "unsupported_media_type");
    /* 400: the JSON itself; only then 422: its fields */
    run(&r, "{\"nme\":", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 400, "invalid_json");
    run(&r, "[1]", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 400, "invalid_json");
    run(&r, "{\"name\":\"a\xff\"}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 400, "invalid_json");
    run(&r, "{\"name\":\"abc\",\"extra\":1}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 422, "unknown_field");
    CHECK_STR(field_of(&r), "extra");
    run(&r, "{\"size\":2}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 422, "missing_field");
    CHECK_STR(field_of(&r), "name");
    run(&r, "{\"name\":7}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 422, "invalid_field");
    run(&r, "{\"name\":\"abcdef\"}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 422, "invalid_field");
    run(&r, "{\"name\":\"a\",\"colour\":\"blue\"}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 422, "invalid_field");
    CHECK_STR(field_of(&r), "colour");
    run(&r, "{\"name\":\"a\",\"size\":11}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 422, "invalid_field");
    run(&r, "{\"name\":\"a\",\"parent_id\":null}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    CHECK(r.status == 200);
    run(&r, "{\"name\":\"a\",\"size\":null}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, NULL);
    EXPECT(r, 422, "invalid_field");
    /* a bad path parameter (400) is reported before a bad body (422) */
    run(&r, "{\"bogus\":1}", "REQUEST_METHOD=PATCH", "DOCUMENT_URI=/api/t/items/x", json,
        sh_arena_sprintf(arena, "HTTP_AUTHORIZATION=Bearer %s", user_token), NULL);
    EXPECT(r, 400, "invalid_parameter");
    /* no body at all reads as {} only where the route says so */
    run(&r, NULL, "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/optional", NULL);
    EXPECT(r, 422, "missing_field");
    run(&r, NULL, "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", NULL);
    EXPECT(r, 400, "invalid_json");
    run(&r, "{}", "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/t/items", json, "CONTENT_LENGTH=9", NULL);
    EXPECT(r, 400, "invalid_request"); /* the body ended before its length */
}

static void test_auth(void)
{
    reply r;
    char *user = sh_arena_sprintf(arena, "HTTP_AUTHORIZATION=Bearer %s", user_token);
    char *admin = sh_arena_sprintf(arena, "HTTP_AUTHORIZATION=Bearer %s", admin_token);
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items/3", NULL);
    EXPECT(r, 401, "missing_token");
    CHECK(strstr(r.head.data, "WWW-Authenticate: Bearer realm=\"pilotlight\"\r\n") != NULL);
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items/3", "HTTP_AUTHORIZATION=Basic eDp5", NULL);
    EXPECT(r, 401, "invalid_token");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items/3",
        sh_arena_sprintf(arena, "HTTP_AUTHORIZATION=Bearer %s", token("user", -3600)), NULL);
    EXPECT(r, 401, "invalid_token");
    CHECK(strstr(r.head.data, "error=\"invalid_token\"") != NULL);
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items/3", user, NULL);
    CHECK(r.status == 200 && last && last->auth.present && last->auth.user_id == 7);
    run(&r, NULL, "REQUEST_METHOD=DELETE", "DOCUMENT_URI=/api/t/items/3", user, NULL);
    EXPECT(r, 403, "forbidden");
    run(&r, NULL, "REQUEST_METHOD=DELETE", "DOCUMENT_URI=/api/t/items/3", admin, NULL);
    CHECK(r.status == 200 && last && last->auth.is_admin);
    /* a token in the query only where the route declares it */
    char *query = sh_arena_sprintf(arena, "QUERY_STRING=access_token=%s", user_token);
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/items/3", query, NULL);
    EXPECT(r, 401, "missing_token");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", query, NULL);
    CHECK(r.status == 200 && last && last->auth.present && last->auth.user_id == 7);
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", NULL);
    CHECK(r.status == 200 && last && !last->auth.present); /* optional there */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", "QUERY_STRING=access_token=not.a.jwt", NULL);
    EXPECT(r, 401, "invalid_token");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", "QUERY_STRING=access_token=a&access_token=b", NULL);
    EXPECT(r, 400, "invalid_parameter");
    char *huge = sh_arena_alloc(arena, SH_AUTH_TOKEN_MAX + 64);
    int n = snprintf(huge, 64, "QUERY_STRING=access_token=");
    memset(huge + n, 'a', SH_AUTH_TOKEN_MAX + 1);
    huge[n + SH_AUTH_TOKEN_MAX + 1] = '\0';
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", huge, NULL);
    EXPECT(r, 400, "invalid_parameter"); /* too long to be read as a token */
    CHECK_STR(field_of(&r), "access_token");
}

static void test_preconditions(void)
{
    reply r;
    struct {
        const char *method, *header, *query;
        int status;
    } cases[] = {
        {"PATCH", "HTTP_IF_MATCH=\"5\"", "", 200},
        {"PATCH", "HTTP_IF_MATCH=\"4\", \"5\"", "", 200},
        {"PATCH", "HTTP_IF_MATCH= \"6\" ,\"5\" ", "", 200},
        {"PATCH", "HTTP_IF_MATCH=*", "", 200},
        {"PATCH", "HTTP_IF_MATCH=W/\"5\"", "", 412}, /* If-Match compares strongly */
        {"PATCH", "HTTP_IF_MATCH=\"4\"", "", 412},
        {"PATCH", "HTTP_IF_MATCH=\"05\"", "", 412},
        {"PATCH", "HTTP_IF_MATCH=*", "QUERY_STRING=gone=1", 412},
        {"PATCH", "HTTP_IF_MATCH=5", "", 400},
        {"PATCH", "HTTP_IF_MATCH=\"5", "", 400},
        {"PATCH", "HTTP_IF_MATCH=**", "", 400},
        {"PATCH", "HTTP_IF_MATCH=*, \"5\"", "", 400},
        {"PATCH", "HTTP_IF_MATCH=\"5\" \"6\"", "", 400},
        {"PATCH", "HTTP_IF_MATCH=,", "", 400},
        {"GET", "HTTP_IF_NONE_MATCH=\"5\"", "", 304},
        {"GET", "HTTP_IF_NONE_MATCH=W/\"5\"", "", 304}, /* If-None-Match compares weakly */
        {"GET", "HTTP_IF_NONE_MATCH=\"1\", W/\"5\"", "", 304},
        {"GET", "HTTP_IF_NONE_MATCH=*", "", 304},
        {"GET", "HTTP_IF_NONE_MATCH=\"4\"", "", 200},
        {"GET", "HTTP_IF_NONE_MATCH=*", "QUERY_STRING=gone=1", 200},
        {"PATCH", "HTTP_IF_NONE_MATCH=*", "", 412},
        {"PATCH", "HTTP_IF_NONE_MATCH=\"4\"", "", 200},
    };
    for (size_t i = 0; i < SH_ARRAY_LEN(cases); i++) {
        run(&r, NULL, sh_arena_sprintf(arena, "REQUEST_METHOD=%s", cases[i].method), "DOCUMENT_URI=/api/t/versioned",
            cases[i].header, *cases[i].query ? cases[i].query : "QUERY_STRING=", NULL);
        if (r.status != cases[i].status)
            fprintf(stderr, "case %zu: %s %s -> %d\n", i, cases[i].method, cases[i].header, r.status);
        CHECK(r.status == cases[i].status);
    }
    /* a 304 names the current ETag and has no body */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/versioned", "HTTP_IF_NONE_MATCH=\"5\"", NULL);
    CHECK(r.status == 304 && r.body.len == 0 && strstr(r.head.data, "ETag: \"5\"\r\n") != NULL);
    CHECK(strstr(r.head.data, "Content-Length:") == NULL); /* RFC 9110 §8.6: not 0, the 200's or none */
    run(&r, NULL, "REQUEST_METHOD=HEAD", "DOCUMENT_URI=/api/t/versioned", "HTTP_IF_NONE_MATCH=\"5\"", NULL);
    CHECK(r.status == 304 && r.body.len == 0 && strstr(r.head.data, "Content-Length:") == NULL);
    run(&r, NULL, "REQUEST_METHOD=PATCH", "DOCUMENT_URI=/api/t/versioned", "HTTP_IF_MATCH=\"5\"", NULL);
    CHECK(r.json && json_object_get_boolean(json_object_object_get(r.json, "if_match")));
    run(&r, NULL, "REQUEST_METHOD=PATCH", "DOCUMENT_URI=/api/t/versioned", "HTTP_IF_MATCH=5", NULL);
    EXPECT(r, 400, "invalid_header");
}

static void test_rate_limits(void)
{
    reply r;
    const char *addr = "REMOTE_ADDR=10.0.0.1", *other = "REMOTE_ADDR=10.0.0.2";
    for (int i = 0; i < 3; i++) {
        run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/limited", addr, NULL);
        CHECK(r.status == 200);
        CHECK(strstr(r.head.data, "RateLimit-Policy: \"limited\";q=3;w=2\r\n") != NULL);
        CHECK(strstr(r.head.data, sh_arena_sprintf(arena, "RateLimit: \"limited\";r=%d;", 2 - i)) != NULL);
    }
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/limited", addr, NULL);
    EXPECT(r, 429, "rate_limited");
    CHECK(strstr(r.head.data, "Retry-After: 1\r\n") != NULL && strstr(r.head.data, ";r=0;") != NULL);
    /* another address, and a user with a token from the same one, each their own */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/limited", other, NULL);
    CHECK(r.status == 200);
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/limited", addr,
        sh_arena_sprintf(arena, "HTTP_AUTHORIZATION=Bearer %s", user_token), NULL);
    CHECK(r.status == 200 && last && last->auth.present);
    /* a bad token is no way around the address's limit either: it is refused */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/limited", addr, "HTTP_AUTHORIZATION=Bearer x", NULL);
    EXPECT(r, 401, "invalid_token");
    /* the internal listener's callers (functions, operators) are not counted */
    for (int i = 0; i < 5; i++) {
        run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/limited", addr, "PL_INTERNAL=1", NULL);
        CHECK(r.status == 200 && strstr(r.head.data, "RateLimit") == NULL);
    }
}

static void test_budget(void)
{
    reply r;
    /* invocation headers count only on the internal listener */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", "HTTP_X_INVOKE_DEPTH=99", NULL);
    CHECK(r.status == 200 && strstr(r.head.data, "X-Invoke-Spent") == NULL);
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", "PL_INTERNAL=1", "HTTP_X_INVOKE_DEPTH=99", NULL);
    EXPECT(r, 508, "invocation_depth_exceeded");
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", "PL_INTERNAL=1", "HTTP_X_INVOKE_BUDGET=-1", NULL);
    EXPECT(r, 400, "invalid_request");
    /* a callee tells its caller what its subtree spent */
    run(&r, NULL, "REQUEST_METHOD=GET", "DOCUMENT_URI=/api/t/live", "PL_INTERNAL=1", "HTTP_X_INVOKE_DEPTH=2",
        "HTTP_X_INVOKE_BUDGET=5", NULL);
    CHECK(r.status == 200 && strstr(r.head.data, "X-Invoke-Spent: 0\r\n") != NULL);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    arena = sh_arena_create(64 * 1024);
    crypto_sign_keypair(pk, sk);
    sh_auth_config ac = {.issuer = "pilotlight", .leeway_s = 30, .nkeys = 1};
    snprintf(ac.keys[0].kid, sizeof(ac.keys[0].kid), "k1");
    memcpy(ac.keys[0].pk, pk, sizeof(pk));
    sh_auth_configure(&ac);
    sh_dispatch_configure(&(sh_dispatch_config){.max_body_bytes = 64, .json_max_depth = 8});
    sh_budget_configure(&(sh_budget_config){.max_depth = 8, .budget = 32});
    char err[256];
    CHECK(sh_router_init(&router, routes, err, sizeof(err)) == 0);
    user_token = token("user", 900);
    admin_token = token("admin", 900);

    test_routing();
    test_params();
    test_body();
    test_auth();
    test_preconditions();
    test_rate_limits();
    test_budget();

    sh_router_free(&router);
    sh_arena_destroy(arena);
    TEST_DONE();
}
