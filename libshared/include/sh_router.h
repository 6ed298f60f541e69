/* sh_router.h: route tables compiled for matching, and the checks of declared
 * parameters and fields against their rules. Pure: no I/O, used by the
 * dispatcher, the fuzzers and the unit tests.
 * Layer 2 of libshared (router); see docs/architecture.md. */
#ifndef SH_ROUTER_H
#define SH_ROUTER_H

#include "sh_req.h"

typedef struct {
    const sh_route *route;
    int nsegments;
    struct {
        const char *literal;
        int param;
    } segments[SH_MAX_SEGMENTS];
} sh_compiled_route;

struct sh_router {
    sh_compiled_route *routes;
    int nroutes;
};

/* Compiles a route table; -1 with a message in err for a malformed one (a
 * pattern parameter that is not declared, too many segments...). */
int sh_router_init(sh_router *r, const sh_route *routes, char *err, size_t errlen);
void sh_router_free(sh_router *r);

typedef enum { SH_MATCH_FOUND, SH_MATCH_NOT_FOUND, SH_MATCH_BAD_METHOD } sh_match_result;

typedef struct {
    int route_index;
    const char *values[SH_MAX_PARAMS]; /* raw path values by param index (in `scratch`) */
    size_t lens[SH_MAX_PARAMS];
    char allow[128]; /* for 405: "GET, PATCH" */
} sh_match;

/* Matches method + path. Path values point into path itself. */
sh_match_result sh_router_match(const sh_router *r, const char *method, const char *path, sh_match *m);

/* A compiled route table as data, for GET /api/<svc>/_routes and
 * pl-<svc> --print-routes: a JSON array of {"method","pattern","handler",
 * "flags":[...], "params"?:[...], "fields"?:[...], "rate_limit"?:{...}} in
 * table order, the flags by name ("json", "internal", "test", "auth", "admin",
 * "body_optional", "token_query", "idempotent"; an SH_ADMIN route lists "auth"
 * too), each declared parameter and field with its rule ("fields" absent on a
 * json route that takes any object). A new reference the caller puts. */
json_object *sh_router_to_json(const sh_router *r);

/* Validates a raw text value (path or query) against a rule into out. Returns 0,
 * or -1 with a human reason. */
int sh_rule_check_text(const sh_rule *rule, const char *raw, size_t len, sh_arena *a, sh_value *out, const char **why);
/* Validates a JSON value against a rule. Returns 0, or -1 with a reason. */
int sh_rule_check_json(const sh_rule *rule, json_object *v, sh_arena *a, sh_value *out, const char **why);

#endif
