/* dispatch.c: one request from its FastCGI parameters to its reply: routing,
 * the generic checks (404/405, internal and test routes, invocation budget,
 * authentication, declared parameters, body size, type, JSON syntax and
 * fields), the handler, then the request's log line and metrics. */
#include "sh_dispatch.h"
#include "sh_auth.h"
#include "sh_budget.h"
#include "sh_db.h"
#include "sh_idempotency.h"
#include "sh_log.h"
#include "sh_ratelimit.h"
#include "sh_scoreboard.h"
#include "sh_str.h"

#include <fcgiapp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define P(field) offsetof(sh_dispatch_config, field)
const sh_conf_row sh_dispatch_conf_rows[] = {
    {"PL_MAX_BODY_BYTES", SH_CONF_INT, P(max_body_bytes), "1048576", 1, 64 * 1024 * 1024, NULL, 0,
     "largest request body (413 above)"},
    {"PL_JSON_MAX_DEPTH", SH_CONF_INT, P(json_max_depth), "32", 1, 1000, NULL, 0, "deepest JSON nesting accepted"},
    SH_CONF_END,
};
#undef P

static sh_dispatch_config sh_dispatch_cfg = {1048576, 32};

void sh_dispatch_configure(const sh_dispatch_config *dc) { sh_dispatch_cfg = *dc; }

static int sh_check_params(sh_req *req, const sh_match *m)
{
    const sh_param *params = req->route->params;
    for (int i = 0; params != NULL && params[i].name != NULL; i++) {
        const sh_param *p = &params[i];
        const char *raw;
        size_t len;
        const char *why = NULL;
        if (!(p->flags & SH_QUERY)) {
            raw = m->values[i];
            len = m->lens[i];
        } else {
            int found = sh_query_find(req->query, p->name, &raw, &len);
            if (found < 0)
                return sh_reply_field_error(req, 400, "invalid_parameter", p->name,
                                            "Query parameter %s is given more than once.", p->name);
            if (found == 0) {
                if (p->flags & SH_REQUIRED)
                    return sh_reply_field_error(req, 400, "missing_parameter", p->name,
                                                "Query parameter %s is required.", p->name);
                continue;
            }
            char *decoded = sh_arena_alloc(req->arena, len + 1);
            long dlen = sh_percent_decode(decoded, raw, len, true);
            if (dlen < 0)
                return sh_reply_field_error(req, 400, "invalid_parameter", p->name,
                                            "Query parameter %s is not correctly percent-encoded.", p->name);
            raw = decoded;
            len = (size_t)dlen;
        }
        if (sh_rule_check_text(p, raw, len, req->arena, &req->params[i], &why) != 0)
            return sh_reply_field_error(req, 400, "invalid_parameter", p->name, "Parameter %s %s.", p->name, why);
    }
    return 0;
}

static bool sh_content_type_is_json(const char *ct)
{
    static const char json[] = "application/json";
    if (ct == NULL || strncasecmp(ct, json, sizeof(json) - 1) != 0)
        return false;
    char next = ct[sizeof(json) - 1];
    return next == '\0' || next == ';' || next == ' ';
}

static int sh_read_body(sh_req *req)
{
    const char *cl = sh_req_fcgi_param(req, "CONTENT_LENGTH");
    int64_t len = 0;
    if (cl != NULL && *cl != '\0' && sh_parse_int64(cl, strlen(cl), 0, INT64_MAX, &len) != 0)
        return sh_reply_error(req, 400, "invalid_request", "Content-Length is not a valid length.");
    if (len > sh_dispatch_cfg.max_body_bytes)
        return sh_reply_error(req, 413, "payload_too_large", "The request body is larger than %lld bytes.",
                              (long long)sh_dispatch_cfg.max_body_bytes);
    if (len > 0 && !sh_content_type_is_json(sh_req_fcgi_param(req, "CONTENT_TYPE")))
        return sh_reply_error(req, 415, "unsupported_media_type", "The request body must be application/json.");
    if (req->fcgi == NULL) {
        if ((int64_t)req->body_len != len)
            return sh_reply_error(req, 400, "invalid_request", "The request body ended early.");
        return 0; /* a local invocation's body is in place */
    }
    char *body = sh_arena_alloc(req->arena, (size_t)len + 1);
    int64_t got = 0;
    while (got < len) {
        int n = FCGX_GetStr(body + got, (int)(len - got), ((FCGX_Request *)req->fcgi)->in);
        if (n <= 0)
            break;
        got += n;
    }
    if (got != len)
        return sh_reply_error(req, 400, "invalid_request", "The request body ended early.");
    body[len] = '\0';
    req->body = body;
    req->body_len = (size_t)len;
    return 0;
}

static int sh_check_body(sh_req *req)
{
    int rc = sh_read_body(req);
    if (rc != 0)
        return rc;
    const char *why = NULL;
    if (req->body_len == 0 && (req->route->flags & SH_BODY_OPTIONAL)) {
        if ((req->json = sh_req_own(req, json_object_new_object())) == NULL)
            return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    } else {
        req->json = sh_req_own(req, sh_json_parse(req->body, req->body_len, (int)sh_dispatch_cfg.json_max_depth, &why));
        if (req->json == NULL)
            return sh_reply_error(req, 400, "invalid_json", "The request body is not valid JSON: %s.", why);
    }
    if (!json_object_is_type(req->json, json_type_object))
        return sh_reply_error(req, 400, "invalid_json", "The request body must be a JSON object.");
    const sh_field *fields = req->route->fields;
    if (fields == NULL)
        return 0;
    json_object_object_foreach (req->json, key, val) {
        (void)val;
        bool known = false;
        for (int i = 0; fields[i].name != NULL && !known; i++)
            known = strcmp(fields[i].name, key) == 0;
        if (!known) {
            /* echo at most a short, printable prefix of an unknown key */
            char shown[41];
            size_t k = 0;
            for (const char *p = key; *p && k < sizeof(shown) - 1; p++)
                shown[k++] = (*p >= 0x20 && *p < 0x7f && *p != '"') ? *p : '?';
            shown[k] = '\0';
            return sh_reply_field_error(req, 422, "unknown_field", sh_arena_strdup(req->arena, shown),
                                        "Field \"%s\" is not accepted here.", shown);
        }
    }
    for (int i = 0; fields[i].name != NULL; i++) {
        json_object *v = NULL;
        const char *why2 = NULL;
        if (!json_object_object_get_ex(req->json, fields[i].name, &v)) {
            if (fields[i].flags & SH_REQUIRED)
                return sh_reply_field_error(req, 422, "missing_field", fields[i].name, "Field %s is required.",
                                            fields[i].name);
            continue;
        }
        if (sh_rule_check_json(&fields[i], v, req->arena, &req->fields[i], &why2) != 0)
            return sh_reply_field_error(req, 422, "invalid_field", fields[i].name, "Field %s %s.", fields[i].name,
                                        why2);
    }
    return 0;
}

/* The handler (through sh_idem_run), run again after a conflict. Its reply is
 * captured, not sent, so that a run that failed on a deadlock or a Galera
 * certification conflict (sh_db_conflicts) and committed nothing
 * (sh_db_commits) can be dropped and the request run again from the start:
 * up to PL_DB_RETRIES times, after a short random pause. The checks before the
 * handler (route, budget, rate limit, authentication, input) are not run
 * again. A handler that invoked another service before its conflict invokes
 * it again: invocations are reads or safe to repeat. */
static int sh_dispatch_run(sh_req *req)
{
    void *fcgi = req->fcgi;
    sh_buf *capture = req->capture, *capture_head = req->capture_head;
    sh_buf head, body;
    sh_buf_init(&head, req->arena, 512);
    sh_buf_init(&body, req->arena, 1024);
    size_t mark = req->headers.arena != NULL ? req->headers.len : 0;
    int retries = sh_db_retries();
    req->fcgi = NULL;
    req->capture = &body;
    req->capture_head = &head;
    for (int attempt = 0;; attempt++) {
        unsigned conflicts = sh_db_conflicts(), commits = sh_db_commits();
        sh_idem_run(req);
        if (sh_db_conflicts() == conflicts || sh_db_commits() != commits || attempt >= retries)
            break;
        if (sh_db_in_transaction())
            sh_db_rollback(req);
        sh_logline l;
        sh_log_begin(&l, SH_LOG_WARN, "db_retry");
        sh_log_str(&l, "request_id", req->request_id);
        sh_log_str(&l, "handler", req->route->name);
        sh_log_int(&l, "attempt", attempt + 2);
        sh_log_int(&l, "mysql_errno", sh_db_errno());
        sh_log_end(&l);
        /* forget the answer, pause 1-10 ms times the attempt, and run it again */
        head.len = body.len = 0;
        req->responded = false;
        req->status = 0;
        req->error_code = NULL;
        req->has_cache_control = false;
        if (req->headers.arena != NULL)
            req->headers.len = mark;
        unsigned char r = 0;
        if (getrandom(&r, 1, 0) != 1)
            r = 0;
        struct timespec pause = {0, (long)(attempt + 1) * (1000000L + (long)(r % 10) * 1000000L)};
        nanosleep(&pause, NULL);
    }
    req->fcgi = fcgi;
    req->capture = capture;
    req->capture_head = capture_head;
    if (fcgi != NULL) {
        FCGX_Stream *out = ((FCGX_Request *)fcgi)->out;
        if (FCGX_PutStr(head.data, (int)head.len, out) < 0 ||
            (body.len > 0 && FCGX_PutStr(body.data, (int)body.len, out) < 0))
            sh_log_msg(SH_LOG_WARN, "write_failed", "the client went away before the response was sent");
    } else {
        if (capture_head != NULL)
            sh_buf_append(capture_head, head.data, head.len);
        if (capture != NULL && body.len > 0)
            sh_buf_append(capture, body.data, body.len);
    }
    return req->status;
}

/* Who a rate limit counts: the user of a valid token, else the address. */
static const char *sh_dispatch_caller(sh_req *req)
{
    if (req->auth.present)
        return sh_arena_sprintf(req->arena, "u%lld", (long long)req->auth.user_id);
    return sh_arena_sprintf(req->arena, "a%s", req->remote_addr ? req->remote_addr : "");
}

int sh_dispatch(sh_req *req, const sh_router *router)
{
    sh_match m;
    sh_match_result r = sh_router_match(router, req->method, req->path, &m);
    if (r == SH_MATCH_FOUND) {
        const sh_route *route = router->routes[m.route_index].route;
        if ((route->flags & (SH_INTERNAL | SH_TEST)) && !req->internal)
            r = SH_MATCH_NOT_FOUND; /* internal pages do not exist on the public listener */
    }
    if (r == SH_MATCH_NOT_FOUND)
        return sh_reply_error(req, 404, "not_found", "Nothing is at %s %s.", req->method, req->path);
    if (r == SH_MATCH_BAD_METHOD) {
        sh_resp_header(req, "Allow", "%s", m.allow);
        return sh_reply_error(req, 405, "method_not_allowed", "%s is not allowed here; use %s.", req->method, m.allow);
    }
    req->route_index = m.route_index;
    req->route = router->routes[m.route_index].route;
    sh_sb_slot *slot = sh_sb_current_slot();
    if (slot != NULL)
        atomic_store(&slot->handler, req->route_index);

    int rc = sh_budget_begin_or_reply(req);
    if (rc != 0)
        return rc;
    /* rate limits are for clients (the public listener): functions calling
     * functions and operators on the internal one are not counted. A caller
     * with no credential is limited by address before anything. */
    const sh_rate *rate = req->internal ? NULL : req->route->rate;
    bool anonymous = sh_req_header(req, "Authorization") == NULL &&
                     !((req->route->flags & SH_TOKEN_QUERY) && strstr(req->query, "access_token=") != NULL);
    if (rate != NULL && anonymous && (rc = sh_rate_check_or_reply(req, rate, sh_dispatch_caller(req))) != 0)
        return rc;
    if (req->route->flags & (SH_AUTH | SH_ADMIN | SH_TOKEN_QUERY)) {
        rc = sh_auth_or_reply(req, req->route->flags);
        if (rc != 0)
            return rc;
    }
    /* one with a token by its user: users behind one address share nothing */
    if (rate != NULL && !anonymous && (rc = sh_rate_check_or_reply(req, rate, sh_dispatch_caller(req))) != 0)
        return rc;
    rc = sh_check_params(req, &m);
    if (rc != 0)
        return rc;
    if (req->route->flags & SH_JSON) {
        rc = sh_check_body(req);
        if (rc != 0)
            return rc;
    }
    rc = sh_dispatch_run(req);
    if (!req->responded) {
        sh_log_msgf(SH_LOG_ERROR, "no_reply", "handler %s returned %d without answering", req->route->name, rc);
        return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    }
    return req->status;
}

/* --- one FastCGI request ---------------------------------------------------------------- */

/* The X-Request-Id charset and length nginx passes on too ($pl_request_id in
 * nginx/pilotlight.conf.tmpl): keep the two the same. */
static bool sh_request_id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    }
    return n > 0 && n <= 64;
}

static const char *sh_new_request_id(sh_arena *a)
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        memset(raw, 0, sizeof(raw));
    char *id = sh_arena_alloc(a, 33);
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
    return id;
}

/* The path to route on: nginx's normalized $uri, or else REQUEST_URI's path. */
static const char *sh_request_path(sh_req *req)
{
    const char *p = sh_req_fcgi_param(req, "DOCUMENT_URI");
    if (p != NULL && *p == '/')
        return p;
    const char *uri = sh_req_fcgi_param(req, "REQUEST_URI");
    if (uri == NULL || *uri != '/')
        return "/";
    size_t len = strcspn(uri, "?");
    char *decoded = sh_arena_alloc(req->arena, len + 1);
    if (sh_percent_decode(decoded, uri, len, false) < 0)
        return sh_arena_strndup(req->arena, uri, len);
    return decoded;
}

static void sh_log_request(sh_req *req, int64_t duration_us)
{
    sh_logline l;
    sh_log_begin(&l, req->status >= 500 ? SH_LOG_WARN : SH_LOG_INFO, "request");
    sh_log_str(&l, "request_id", req->request_id);
    sh_log_str(&l, "method", req->method);
    sh_log_str(&l, "path", req->path);
    sh_log_str(&l, "handler", req->route ? req->route->name : "-");
    sh_log_int(&l, "status", req->status);
    sh_log_int(&l, "duration_us", duration_us);
    if (req->error_code != NULL)
        sh_log_str(&l, "error", req->error_code);
    if (req->auth.present)
        sh_log_int(&l, "user_id", req->auth.user_id);
    if (req->invoke_depth > 0)
        sh_log_int(&l, "invoke_depth", req->invoke_depth);
    if (req->invoke_spent > 0)
        sh_log_int(&l, "invocations", req->invoke_spent);
    sh_log_end(&l);
}

/* Fills a request from its parameters (req->env, req->fcgi, req->arena set). */
static void sh_req_init(sh_req *req)
{
    req->start_us = sh_now_us();
    req->route_index = -1;
    req->method = sh_req_fcgi_param(req, "REQUEST_METHOD");
    if (req->method == NULL || *req->method == '\0')
        req->method = "GET";
    req->path = sh_request_path(req);
    req->head = strcmp(req->method, "HEAD") == 0;
    req->query = sh_req_fcgi_param(req, "QUERY_STRING");
    if (req->query == NULL)
        req->query = "";
    const char *pin = sh_req_fcgi_param(req, "PL_INTERNAL");
    req->internal = pin != NULL && strcmp(pin, "1") == 0;
    const char *https = sh_req_fcgi_param(req, "HTTPS");
    req->https = https != NULL && (strcmp(https, "on") == 0 || strcmp(https, "1") == 0);
    const char *rid = sh_req_fcgi_param(req, "REQUEST_ID");
    req->request_id = rid != NULL && sh_request_id_ok(rid) ? rid : sh_new_request_id(req->arena);
    req->remote_addr = sh_req_fcgi_param(req, "REMOTE_ADDR");
}

/* Logs and counts a finished request. */
static void sh_req_finish(sh_req *req)
{
    int64_t duration = sh_now_us() - req->start_us;
    sh_log_request(req, duration);
    sh_scoreboard *sb = sh_sb_current();
    if (sb != NULL)
        sh_sb_record(sb, req->route_index, req->status, duration);
}

void sh_http_handle(void *fcgi_request, sh_arena *arena, const sh_router *router)
{
    sh_req req;
    memset(&req, 0, sizeof(req));
    req.arena = arena;
    req.fcgi = fcgi_request;
    req.env = ((FCGX_Request *)fcgi_request)->envp;
    req.router = router;
    sh_req_init(&req);

    sh_db_request_begin(sh_db_worker());
    sh_dispatch(&req, router);
    sh_req_finish(&req);
}

int sh_http_local(sh_req *parent, const char *method, const char *target, const char *body, size_t body_len,
                  int64_t depth, int64_t budget, sh_buf *out, int64_t *spent)
{
    sh_arena *a = parent->arena;
    size_t path_len = strcspn(target, "?");
    char *path = sh_arena_alloc(a, path_len + 1);
    if (sh_percent_decode(path, target, path_len, false) < 0)
        path = sh_arena_strndup(a, target, path_len);
    const char *query = target[path_len] == '?' ? target + path_len + 1 : "";
    const char *auth = parent->auth.present ? sh_arena_sprintf(a, "Bearer %s", parent->auth.token)
                                            : sh_req_header(parent, "Authorization");
    char *env[16];
    int n = 0;
    env[n++] = sh_arena_sprintf(a, "REQUEST_METHOD=%s", method);
    env[n++] = sh_arena_sprintf(a, "DOCUMENT_URI=%s", path);
    env[n++] = sh_arena_sprintf(a, "QUERY_STRING=%s", query);
    env[n++] = sh_arena_sprintf(a, "REQUEST_ID=%s", parent->request_id);
    env[n++] = sh_arena_sprintf(a, "REMOTE_ADDR=%s", parent->remote_addr ? parent->remote_addr : "");
    env[n++] = "PL_INTERNAL=1";
    env[n++] = sh_arena_sprintf(a, "HTTP_X_INVOKE_DEPTH=%lld", (long long)depth);
    env[n++] = sh_arena_sprintf(a, "HTTP_X_INVOKE_BUDGET=%lld", (long long)budget);
    env[n++] = "HTTP_ACCEPT=application/json";
    if (auth != NULL)
        env[n++] = sh_arena_sprintf(a, "HTTP_AUTHORIZATION=%s", auth);
    if (body != NULL) {
        env[n++] = "CONTENT_TYPE=application/json";
        env[n++] = sh_arena_sprintf(a, "CONTENT_LENGTH=%zu", body_len);
    }
    env[n] = NULL;
    char **env_copy = sh_arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
    memcpy(env_copy, env, sizeof(char *) * (size_t)(n + 1));

    sh_req req;
    memset(&req, 0, sizeof(req));
    req.arena = a;
    req.env = env_copy;
    req.router = parent->router;
    req.capture = out;
    req.body = body ? body : "";
    req.body_len = body ? body_len : 0;
    sh_req_init(&req);
    sh_dispatch(&req, parent->router);
    sh_req_finish(&req);

    /* the worker is the caller's again */
    sh_sb_slot *slot = sh_sb_current_slot();
    if (slot != NULL)
        atomic_store(&slot->handler, parent->route_index);
    *spent = req.invoke_spent;
    return req.status;
}

int sh_http_probe(sh_arena *arena, const sh_router *router, const char *path, sh_buf *out)
{
    char *env[] = {"REQUEST_METHOD=GET",
                   sh_arena_sprintf(arena, "DOCUMENT_URI=%s", path),
                   "QUERY_STRING=",
                   "REQUEST_ID=probe",
                   "REMOTE_ADDR=",
                   "PL_INTERNAL=1",
                   NULL};
    sh_req req;
    memset(&req, 0, sizeof(req));
    req.arena = arena;
    req.env = env;
    req.router = router;
    req.capture = out;
    req.body = "";
    sh_req_init(&req);
    sh_db_request_begin(sh_db_worker());
    sh_dispatch(&req, router);
    sh_req_finish(&req);
    return req.status;
}
