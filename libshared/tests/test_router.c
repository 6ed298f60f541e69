/* test_router.c: route matching, 404/405 with Allow, and parameter rules. */
#include "sh_router.h"
#include "sh_str.h"
#include "sh_test.h"

static int h(sh_req *req)
{
    (void)req;
    return 200;
}

static const char *const states[] = {"planning", "active", "on_hold", "done", NULL};
static const sh_param id_param[] = {SH_PATH_ID("id"), SH_RULE_END};
static const sh_param list_params[] = {SH_QUERY_INT("limit", 1, 100), SH_QUERY_STR("cursor", 200), SH_RULE_END};
static const sh_param room_params[] = {SH_PATH_STR("room", 64), SH_PATH_ID("id"), SH_RULE_END};

static const sh_route routes[] = {
    SH_ROUTE("GET", "/api/projects", h, 0, list_params, NULL),
    SH_ROUTE("POST", "/api/projects", h, SH_JSON, NULL, NULL),
    SH_ROUTE("GET", "/api/projects/primary", h, 0, NULL, NULL),
    SH_ROUTE("GET", "/api/projects/{id}", h, 0, id_param, NULL),
    SH_ROUTE("PATCH", "/api/projects/{id}", h, SH_JSON, id_param, NULL),
    SH_ROUTE("DELETE", "/api/projects/{id}", h, 0, id_param, NULL),
    SH_ROUTE("GET", "/api/chat/rooms/{room}/messages/{id}", h, 0, room_params, NULL),
    SH_ROUTE_END,
};

static void test_matching(void)
{
    sh_router r;
    char err[256];
    CHECK(sh_router_init(&r, routes, err, sizeof(err)) == 0);
    sh_match m;

    CHECK(sh_router_match(&r, "GET", "/api/projects", &m) == SH_MATCH_FOUND && m.route_index == 0);
    CHECK(sh_router_match(&r, "GET", "/api/projects/", &m) == SH_MATCH_FOUND && m.route_index == 0);
    CHECK(sh_router_match(&r, "POST", "/api/projects", &m) == SH_MATCH_FOUND && m.route_index == 1);
    CHECK(sh_router_match(&r, "GET", "/api/projects/primary", &m) == SH_MATCH_FOUND && m.route_index == 2);
    CHECK(sh_router_match(&r, "GET", "/api/projects/42", &m) == SH_MATCH_FOUND && m.route_index == 3);
    CHECK(m.lens[0] == 2 && strncmp(m.values[0], "42", 2) == 0);
    CHECK(sh_router_match(&r, "PATCH", "/api/projects/7", &m) == SH_MATCH_FOUND && m.route_index == 4);

    CHECK(sh_router_match(&r, "GET", "/api/chat/rooms/lobby/messages/9", &m) == SH_MATCH_FOUND);
    CHECK(m.lens[0] == 5 && strncmp(m.values[0], "lobby", 5) == 0);
    CHECK(m.lens[1] == 1 && m.values[1][0] == '9');

    CHECK(sh_router_match(&r, "GET", "/api/nothing", &m) == SH_MATCH_NOT_FOUND);
    CHECK(sh_router_match(&r, "GET", "/api/projects/1/2", &m) == SH_MATCH_NOT_FOUND);
    CHECK(sh_router_match(&r, "GET", "/", &m) == SH_MATCH_NOT_FOUND);
    CHECK(sh_router_match(&r, "GET", "/api/projectsX", &m) == SH_MATCH_NOT_FOUND);

    CHECK(sh_router_match(&r, "PUT", "/api/projects/5", &m) == SH_MATCH_BAD_METHOD);
    CHECK_STR(m.allow, "GET, HEAD, PATCH, DELETE");
    CHECK(sh_router_match(&r, "DELETE", "/api/projects", &m) == SH_MATCH_BAD_METHOD);
    CHECK_STR(m.allow, "GET, HEAD, POST");

    /* a path with too many segments is simply not found */
    CHECK(sh_router_match(&r, "GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", &m) == SH_MATCH_NOT_FOUND);
    sh_router_free(&r);
}

static void test_bad_tables(void)
{
    sh_router r;
    char err[256];
    static const sh_route undeclared[] = {SH_ROUTE("GET", "/api/x/{id}", h, 0, NULL, NULL), SH_ROUTE_END};
    CHECK(sh_router_init(&r, undeclared, err, sizeof(err)) == -1);
    CHECK(strstr(err, "not declared") != NULL);
    static const sh_route malformed[] = {SH_ROUTE("GET", "/api/x/{id", h, 0, id_param, NULL), SH_ROUTE_END};
    CHECK(sh_router_init(&r, malformed, err, sizeof(err)) == -1);
    static const sh_route relative[] = {SH_ROUTE("GET", "api/x", h, 0, NULL, NULL), SH_ROUTE_END};
    CHECK(sh_router_init(&r, relative, err, sizeof(err)) == -1);
}

static void test_rules(void)
{
    sh_arena *a = sh_arena_create(4096);
    sh_value v;
    const char *why;
    const sh_rule id = SH_PATH_ID("id");
    CHECK(sh_rule_check_text(&id, "42", 2, a, &v, &why) == 0 && v.i == 42 && v.present);
    CHECK(sh_rule_check_text(&id, "0", 1, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&id, "-1", 2, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&id, "007", 3, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&id, "abc", 3, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&id, "99999999999999999999", 20, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&id, "9223372036854775807", 19, a, &v, &why) == 0);
    CHECK(sh_rule_check_text(&id, "1e3", 3, a, &v, &why) == -1);

    const sh_rule limit = SH_QUERY_INT("limit", 1, 100);
    CHECK(sh_rule_check_text(&limit, "100", 3, a, &v, &why) == 0 && v.i == 100);
    CHECK(sh_rule_check_text(&limit, "101", 3, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&limit, "0", 1, a, &v, &why) == -1);

    const sh_rule name = SH_FIELD_STR("name", SH_REQUIRED, 1, 5);
    CHECK(sh_rule_check_text(&name, "h\xc3\xa9llo", 6, a, &v, &why) == 0); /* 5 characters, 6 bytes */
    CHECK(sh_rule_check_text(&name, "hello!", 6, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&name, "", 0, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&name, "a\0b", 3, a, &v, &why) == -1);
    CHECK(sh_rule_check_text(&name, "\xff", 1, a, &v, &why) == -1);

    const sh_rule state = SH_FIELD_ENUM("state", 0, states);
    CHECK(sh_rule_check_text(&state, "on_hold", 7, a, &v, &why) == 0 && v.i == 2);
    CHECK(sh_rule_check_text(&state, "On_hold", 7, a, &v, &why) == -1);

    const sh_rule flag = SH_QUERY_BOOL("all");
    CHECK(sh_rule_check_text(&flag, "true", 4, a, &v, &why) == 0 && v.i == 1);
    CHECK(sh_rule_check_text(&flag, "0", 1, a, &v, &why) == 0 && v.i == 0);
    CHECK(sh_rule_check_text(&flag, "yes", 3, a, &v, &why) == -1);

    /* JSON values */
    json_object *s = json_object_new_string("abc");
    json_object *n = json_object_new_int64(5);
    json_object *big = json_object_new_uint64(UINT64_MAX);
    json_object *d = json_object_new_double(1.5);
    json_object *b = json_object_new_boolean(1);
    const sh_rule count = SH_FIELD_INT("count", 0, 0, 10);
    CHECK(sh_rule_check_json(&count, n, a, &v, &why) == 0 && v.i == 5);
    CHECK(sh_rule_check_json(&count, s, a, &v, &why) == -1);
    CHECK(sh_rule_check_json(&count, d, a, &v, &why) == -1);
    CHECK(sh_rule_check_json(&count, big, a, &v, &why) == -1);
    CHECK(sh_rule_check_json(&count, NULL, a, &v, &why) == -1);
    const sh_rule nullable = SH_FIELD_ID("primary_project_id", SH_NULLABLE);
    CHECK(sh_rule_check_json(&nullable, NULL, a, &v, &why) == 0 && v.is_null);
    CHECK(sh_rule_check_json(&nullable, n, a, &v, &why) == 0 && v.i == 5);
    /* the largest id is accepted in a body as it is in a path; beyond it is not */
    const char *why_body = NULL;
    json_object *maxid = sh_json_parse("{\"a\":9223372036854775807,\"b\":9223372036854775808,"
                                       "\"c\":99999999999999999999999,\"d\":-9223372036854775809}",
                                       102, 8, &why_body);
    CHECK(maxid != NULL);
    json_object *mv = NULL;
    CHECK(json_object_object_get_ex(maxid, "a", &mv) && sh_rule_check_json(&nullable, mv, a, &v, &why) == 0 &&
          v.i == INT64_MAX);
    CHECK(json_object_object_get_ex(maxid, "b", &mv) && sh_rule_check_json(&nullable, mv, a, &v, &why) == -1);
    CHECK(json_object_object_get_ex(maxid, "c", &mv) && sh_rule_check_json(&nullable, mv, a, &v, &why) == -1);
    const sh_rule any_int = SH_FIELD_INT("n", 0, INT64_MIN, INT64_MAX);
    CHECK(json_object_object_get_ex(maxid, "d", &mv) && sh_rule_check_json(&any_int, mv, a, &v, &why) == -1);
    CHECK(json_object_object_get_ex(maxid, "a", &mv) && sh_rule_check_json(&any_int, mv, a, &v, &why) == 0);
    json_object_put(maxid);
    const sh_rule flagj = SH_FIELD_BOOL("disabled", 0);
    CHECK(sh_rule_check_json(&flagj, b, a, &v, &why) == 0 && v.i == 1);
    CHECK(sh_rule_check_json(&flagj, n, a, &v, &why) == -1);
    const sh_rule text = SH_FIELD_STR("name", 0, 1, 3);
    CHECK(sh_rule_check_json(&text, s, a, &v, &why) == 0 && strcmp(v.s, "abc") == 0);
    json_object *nul = json_object_new_string_len("a\0b", 3);
    CHECK(sh_rule_check_json(&text, nul, a, &v, &why) == -1);
    json_object_put(s);
    json_object_put(n);
    json_object_put(big);
    json_object_put(d);
    json_object_put(b);
    json_object_put(nul);
    sh_arena_destroy(a);
}

/* The table as _routes shows it: order, names, flags (admin implies auth),
 * and each declared parameter and field with its rule. */
static void test_to_json(void)
{
    static const sh_field fields[] = {
        SH_FIELD_STR("name", SH_REQUIRED, 1, 200),
        SH_FIELD_ENUM("state", 0, states),
        SH_FIELD_ID("owner_id", SH_NULLABLE),
        SH_FIELD_BOOL("all", 0),
        SH_RULE_END,
    };
    static const sh_route flagged[] = {
        SH_ROUTE("GET", "/api/x/open", h, 0, list_params, NULL),
        SH_ROUTE("PATCH", "/api/x/{id}", h, SH_ADMIN | SH_JSON, id_param, fields),
        SH_ROUTE("POST", "/api/x/in", h, SH_INTERNAL | SH_TEST | SH_JSON | SH_BODY_OPTIONAL, NULL, NULL),
        SH_ROUTE("GET", "/api/x/me", h, SH_AUTH, NULL, NULL),
        SH_ROUTE_END,
    };
    sh_router r;
    char err[256];
    CHECK(sh_router_init(&r, flagged, err, sizeof(err)) == 0);
    json_object *list = sh_router_to_json(&r);
    CHECK(json_object_is_type(list, json_type_array) && json_object_array_length(list) == 4);
    CHECK_STR(
        json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
        "[{\"method\":\"GET\",\"pattern\":\"/api/x/open\",\"handler\":\"h\",\"flags\":[],"
        "\"params\":[{\"name\":\"limit\",\"in\":\"query\",\"type\":\"integer\",\"min\":1,\"max\":100},"
        "{\"name\":\"cursor\",\"in\":\"query\",\"type\":\"string\",\"min_length\":0,\"max_length\":200}]},"
        "{\"method\":\"PATCH\",\"pattern\":\"/api/x/{id}\",\"handler\":\"h\",\"flags\":[\"json\",\"auth\",\"admin\"],"
        "\"params\":[{\"name\":\"id\",\"in\":\"path\",\"type\":\"id\",\"required\":true}],"
        "\"fields\":[{\"name\":\"name\",\"type\":\"string\",\"required\":true,\"min_length\":1,\"max_length\":200},"
        "{\"name\":\"state\",\"type\":\"enum\",\"values\":[\"planning\",\"active\",\"on_hold\",\"done\"]},"
        "{\"name\":\"owner_id\",\"type\":\"id\",\"nullable\":true},{\"name\":\"all\",\"type\":\"bool\"}]},"
        "{\"method\":\"POST\",\"pattern\":\"/api/x/in\",\"handler\":\"h\","
        "\"flags\":[\"json\",\"internal\",\"test\",\"body_optional\"]},"
        "{\"method\":\"GET\",\"pattern\":\"/api/x/me\",\"handler\":\"h\",\"flags\":[\"auth\"]}]");
    json_object_put(list);
    sh_router_free(&r);
}

static void test_query_find(void)
{
    const char *v = NULL;
    size_t len = 0;
    CHECK(sh_query_find("limit=20&cursor=YzQy", "cursor", &v, &len) == 1 && len == 4 && memcmp(v, "YzQy", 4) == 0);
    CHECK(sh_query_find("limit=20&cursor=YzQy", "limit", &v, &len) == 1 && len == 2 && memcmp(v, "20", 2) == 0);
    CHECK(sh_query_find("limit=20", "lim", &v, &len) == 0);
    CHECK(sh_query_find("xlimit=1&limitx=2", "limit", &v, &len) == 0);
    CHECK(sh_query_find("", "limit", &v, &len) == 0);
    CHECK(sh_query_find("all&q=", "all", &v, &len) == 1 && len == 0);
    CHECK(sh_query_find("all&q=", "q", &v, &len) == 1 && len == 0);
    CHECK(sh_query_find("a=1&&a=2", "a", &v, &len) == -1);
    CHECK(sh_query_find("=x&a=%20", "a", &v, &len) == 1 && len == 3);
}

int main(void)
{
    test_matching();
    test_to_json();
    test_bad_tables();
    test_rules();
    test_query_find();
    TEST_DONE();
}
