/* fuzz_router.c: libFuzzer target for sh_router_match (libshared/src/router.c)
 * over the services' real route patterns and the built-in ones, then the
 * path parameter rules, as the dispatcher runs them. Input: the first byte
 * picks the method, the rest (up to a NUL) is the path. */
#include "fuzz.h"
#include "sh_router.h"

#include <stdlib.h>
#include <string.h>

static int h(sh_req *req)
{
    (void)req;
    return 200;
}

static const sh_param id[] = {SH_PATH_ID("id"), SH_RULE_END};
static const sh_param room[] = {SH_PATH_STR("room", 64), SH_RULE_END};
static const sh_param room_id[] = {SH_PATH_STR("room", 64), SH_PATH_ID("id"), SH_RULE_END};
static const sh_route routes[] = {
    SH_ROUTE("GET", "/api/projects/health", h, 0, NULL, NULL),
    SH_ROUTE("GET", "/api/projects/_status", h, SH_INTERNAL, NULL, NULL),
    SH_ROUTE("GET", "/api/projects", h, SH_AUTH, NULL, NULL),
    SH_ROUTE("POST", "/api/projects", h, SH_AUTH | SH_JSON, NULL, NULL),
    SH_ROUTE("GET", "/api/projects/primary", h, SH_AUTH, NULL, NULL),
    SH_ROUTE("GET", "/api/projects/{id}", h, SH_AUTH, id, NULL),
    SH_ROUTE("PATCH", "/api/projects/{id}", h, SH_AUTH | SH_JSON, id, NULL),
    SH_ROUTE("DELETE", "/api/projects/{id}", h, SH_AUTH, id, NULL),
    SH_ROUTE("GET", "/api/accounts/users/{id}", h, SH_ADMIN, id, NULL),
    SH_ROUTE("POST", "/api/accounts/users/{id}/primary-project/clear", h, SH_INTERNAL, id, NULL),
    SH_ROUTE("GET", "/api/accounts/.well-known/jwks.json", h, 0, NULL, NULL),
    SH_ROUTE("POST", "/api/chat/rooms/{room}/messages", h, SH_AUTH | SH_JSON, room, NULL),
    SH_ROUTE("GET", "/api/chat/rooms/{room}/messages", h, SH_AUTH, room, NULL),
    SH_ROUTE("GET", "/api/chat/rooms/{room}/live", h, 0, room, NULL),
    SH_ROUTE("GET", "/api/chat/rooms/{room}/messages/{id}", h, 0, room_id, NULL),
    SH_ROUTE_END,
};
static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "get", ""};
static sh_router router;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    if (sh_router_init(&router, routes, err, sizeof(err)) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
    char *path = strndup((const char *)data + 1, size - 1);
    if (path == NULL)
        abort();
    size_t plen = strlen(path);
    sh_match m;
    sh_match_result r = sh_router_match(&router, method, path, &m);
    if (memchr(m.allow, '\0', sizeof(m.allow)) == NULL)
        abort();
    if (r == SH_MATCH_FOUND) {
        if (m.route_index < 0 || m.route_index >= router.nroutes)
            abort();
        const sh_route *route = router.routes[m.route_index].route;
        if (strcmp(route->method, method) != 0)
            abort();
        sh_arena *a = sh_arena_create(1024);
        for (int i = 0; route->params && route->params[i].name; i++) {
            if (m.values[i] < path || m.values[i] + m.lens[i] > path + plen || m.lens[i] == 0)
                abort(); /* every path value is a non-empty slice of the path */
            sh_value v;
            const char *why = NULL;
            if (sh_rule_check_text(&route->params[i], m.values[i], m.lens[i], a, &v, &why) != 0 && why == NULL)
                abort();
        }
        sh_arena_destroy(a);
    } else if (r == SH_MATCH_BAD_METHOD) {
        if (m.allow[0] == '\0')
            abort(); /* a 405 always names what is allowed */
    } else if (r != SH_MATCH_NOT_FOUND) {
        abort();
    }
    free(path);
    return 0;
}
