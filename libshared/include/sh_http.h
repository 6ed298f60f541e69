/* sh_http.h: requests, responses and the route table every service declares.
 *
 * A route is one row of data: method, path pattern with {named} parameters, the
 * handler, flags, and the parameters and JSON body fields it accepts. The
 * dispatcher does everything generic before the handler runs: 404/405 with
 * Allow, internal-only and test-only routes, content type, body size, JSON
 * syntax, nesting and UTF-8, and every declared parameter and field; a handler
 * only ever sees valid input. A handler returns the status it answered with. */
#ifndef SH_HTTP_H
#define SH_HTTP_H

#include "sh_arena.h"
#include "sh_json.h"

#define SH_MAX_PARAMS 8
#define SH_MAX_FIELDS 16
#define SH_MAX_SEGMENTS 12

typedef struct sh_req sh_req;
typedef struct sh_router sh_router;
typedef int (*sh_handler)(sh_req *req);

/* Route flags. */
#define SH_JSON     (1u << 0) /* takes a JSON object body (415/413/400/422 before the handler) */
#define SH_INTERNAL (1u << 1) /* served on the internal listener only (404 elsewhere) */
#define SH_TEST     (1u << 2) /* exists only when PL_TEST_ROUTES=1 (and is internal) */
#define SH_AUTH     (1u << 3) /* needs a valid access token (401 otherwise) */
#define SH_ADMIN    (1u << 4) /* needs an admin's token (403 otherwise); implies SH_AUTH */
#define SH_BODY_OPTIONAL (1u << 5) /* with SH_JSON: no body at all reads as {} (e.g. a cookie-only POST) */

/* Value types of parameters and body fields. */
typedef enum {
    SH_T_ID,     /* a positive integer id: 1 .. 2^63-1 */
    SH_T_INT,    /* an integer in [min, max] */
    SH_T_STRING, /* valid UTF-8 without NUL, [min, max] characters */
    SH_T_BOOL,   /* query: true/false/1/0; JSON: true/false */
    SH_T_ENUM,   /* one of choices */
    SH_T_OBJECT  /* JSON only: any object */
} sh_type;

/* Rule flags. */
#define SH_REQUIRED (1u << 0)
#define SH_NULLABLE (1u << 1) /* JSON only: null is accepted */
#define SH_QUERY    (1u << 2) /* a query-string parameter (path ones come from the pattern) */

typedef struct {
    const char *name;
    sh_type type;
    unsigned flags;
    int64_t min, max;
    const char *const *choices;
} sh_rule;

typedef sh_rule sh_param; /* path and query parameters */
typedef sh_rule sh_field; /* JSON body fields */

#define SH_RULE_END {NULL, SH_T_INT, 0, 0, 0, NULL}

/* Shorthands for the common rules. */
#define SH_PATH_ID(n) {n, SH_T_ID, SH_REQUIRED, 1, INT64_MAX, NULL}
#define SH_PATH_STR(n, maxlen) {n, SH_T_STRING, SH_REQUIRED, 1, maxlen, NULL}
#define SH_QUERY_INT(n, lo, hi) {n, SH_T_INT, SH_QUERY, lo, hi, NULL}
#define SH_QUERY_ID(n) {n, SH_T_ID, SH_QUERY, 1, INT64_MAX, NULL}
#define SH_QUERY_STR(n, maxlen) {n, SH_T_STRING, SH_QUERY, 0, maxlen, NULL}
#define SH_QUERY_BOOL(n) {n, SH_T_BOOL, SH_QUERY, 0, 1, NULL}
#define SH_FIELD_STR(n, flags, minlen, maxlen) {n, SH_T_STRING, flags, minlen, maxlen, NULL}
#define SH_FIELD_INT(n, flags, lo, hi) {n, SH_T_INT, flags, lo, hi, NULL}
#define SH_FIELD_ID(n, flags) {n, SH_T_ID, flags, 1, INT64_MAX, NULL}
#define SH_FIELD_BOOL(n, flags) {n, SH_T_BOOL, flags, 0, 1, NULL}
#define SH_FIELD_ENUM(n, flags, choices) {n, SH_T_ENUM, flags, 0, 0, choices}

typedef struct {
    const char *method;
    const char *pattern; /* "/api/projects/{id}" */
    sh_handler handler;
    const char *name;    /* handler name in logs and metrics */
    unsigned flags;
    const sh_param *params; /* SH_RULE_END-terminated, or NULL */
    const sh_field *fields; /* SH_RULE_END-terminated, or NULL = any object */
} sh_route;

#define SH_ROUTE(method, pattern, handler, flags, params, fields) \
    {method, pattern, handler, #handler, flags, params, fields}
#define SH_ROUTE_END {NULL, NULL, NULL, NULL, 0, NULL, NULL}

/* A validated parameter or field value. */
typedef struct {
    bool present;
    bool is_null;
    int64_t i;      /* SH_T_ID, SH_T_INT, SH_T_BOOL (0/1), SH_T_ENUM (index) */
    const char *s;  /* SH_T_STRING, SH_T_ENUM; NUL-terminated, in the arena */
    size_t len;
    json_object *obj; /* JSON fields: the value itself (owned by the body) */
} sh_value;

/* The authenticated caller (filled by the dispatcher for SH_AUTH routes). */
typedef struct {
    bool present;
    int64_t user_id;
    const char *subject; /* the token's sub */
    const char *email;
    const char *name;    /* the display name when the token was issued */
    const char *role;    /* "user" | "admin" */
    bool is_admin;
    const char *token;   /* the raw bearer token, for forwarding */
    int64_t expires_at;  /* seconds since the epoch */
} sh_principal;

struct sh_req {
    sh_arena *arena;
    void *fcgi;            /* FCGX_Request *, or NULL for a local invocation */
    char **env;            /* the request's parameters ("NAME=value", NULL-ended):
                              FastCGI's, or those a local invocation made up */
    const sh_router *router; /* the service's routes (for local invocations) */
    sh_buf *capture;       /* a local invocation's response body goes here */
    const char *method;
    const char *path;      /* decoded, normalized path (nginx's $uri) */
    const char *query;     /* raw query string, "" when none */
    const char *request_id;
    const char *remote_addr;
    bool internal;         /* arrived through the internal listener */
    bool https;
    int64_t start_us;

    const sh_route *route;
    int route_index;
    sh_value params[SH_MAX_PARAMS]; /* by index in route->params */
    sh_value fields[SH_MAX_FIELDS]; /* by index in route->fields */
    const char *body;
    size_t body_len;
    json_object *json;     /* the parsed body (SH_JSON routes) */
    sh_principal auth;

    int64_t invoke_depth;  /* hops from the client's request (0 there) */
    int64_t invoke_budget; /* invocations this call tree may still make */
    int64_t invoke_spent;  /* invocations made while serving this request (reported back) */

    /* response */
    int status;
    bool responded;
    bool has_cache_control;
    sh_buf headers;        /* extra response header lines */
    const char *error_code; /* for the log */
};

/* --- request accessors -------------------------------------------------------- */

/* A request header by its HTTP name ("Authorization"), or NULL. */
const char *sh_req_header(sh_req *req, const char *name);
/* A FastCGI parameter by name ("REMOTE_ADDR"), or NULL. */
const char *sh_req_fcgi_param(sh_req *req, const char *name);
/* A cookie's value from the Cookie header (in the arena), or NULL. */
const char *sh_req_cookie(sh_req *req, const char *name);

/* The validated value of a declared path/query parameter or body field, by name.
 * Never NULL for a declared name (present == false when absent). */
const sh_value *sh_req_param(sh_req *req, const char *name);
const sh_value *sh_req_field(sh_req *req, const char *name);
/* Shorthands: the string (NULL if absent or null) and the integer (or fallback). */
const char *sh_param_str(sh_req *req, const char *name);
int64_t sh_param_int(sh_req *req, const char *name, int64_t fallback);
const char *sh_field_str(sh_req *req, const char *name);
int64_t sh_field_int(sh_req *req, const char *name, int64_t fallback);

/* --- responses (each returns the status it sent) -------------------------------- */

/* Sends `body` as JSON and puts it. */
int sh_reply_json(sh_req *req, int status, json_object *body);
/* Sends a raw body with a content type. */
int sh_reply_raw(sh_req *req, int status, const char *content_type, const char *body, size_t len);
/* Sends a response without a body (204, 304). */
int sh_reply_empty(sh_req *req, int status);
/* Sends {"error":{"code":code,"message":...}}. */
int sh_reply_error(sh_req *req, int status, const char *code, const char *fmt, ...) SH_PRINTF(4, 5);
/* The same, naming the body field or parameter at fault ("field": name). */
int sh_reply_field_error(sh_req *req, int status, const char *code, const char *field,
                         const char *fmt, ...) SH_PRINTF(5, 6);
/* Adds a response header; CR and LF in the value are replaced by spaces. */
void sh_resp_header(sh_req *req, const char *name, const char *fmt, ...) SH_PRINTF(3, 4);

/* The reason phrase of a status ("Not Found"). */
const char *sh_status_reason(int status);

/* Pagination cursors, opaque to clients: the last id seen, encoded. Decode
 * returns 0, or -1 for anything this API did not hand out. */
char *sh_cursor_encode(sh_arena *a, int64_t last_id);
int sh_cursor_decode(const char *cursor, int64_t *last_id);

/* Registers json_object_put(obj) as a cleanup of the request; returns obj. */
json_object *sh_req_own(sh_req *req, json_object *obj);

/* A local invocation: runs `method target` (target = path[?query]) through this
 * service's own dispatcher inside the calling worker, as the internal listener
 * would have delivered it, with the caller's Authorization and request id and
 * the given invocation depth and budget. The callee's body goes to `out`.
 * Returns the callee's status; *spent is what its subtree reported spending.
 * It is logged and counted like any request. */
int sh_http_local(sh_req *parent, const char *method, const char *target, const char *body, size_t body_len,
                  int64_t depth, int64_t budget, sh_buf *out, int64_t *spent);

/* --- the router (pure: used by the dispatcher and the unit tests) --------------- */

typedef struct {
    const sh_route *route;
    int nsegments;
    struct { const char *literal; int param; } segments[SH_MAX_SEGMENTS];
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
    char allow[128];                   /* for 405: "GET, PATCH" */
} sh_match;

/* Matches method + path. Path values point into path itself. */
sh_match_result sh_router_match(const sh_router *r, const char *method, const char *path, sh_match *m);

/* A compiled route table as data, for GET /api/<svc>/_routes: a JSON array of
 * {"method","pattern","handler","flags":[...]} in table order, the flags by
 * name ("json", "internal", "test", "auth", "admin", "body_optional"; an
 * SH_ADMIN route lists "auth" too). A new reference the caller puts. */
json_object *sh_router_to_json(const sh_router *r);

/* Finds query parameter `name` in a raw query string ("a=1&b=%20"): 1 with
 * *val and *len set to its raw, still percent-encoded value (pointing into query;
 * "" for a bare "name" or "name="), 0 when absent, -1 when it appears more
 * than once. */
int sh_query_find(const char *query, const char *name, const char **val, size_t *len);

/* Validates a raw text value (path or query) against a rule into out. Returns 0,
 * or -1 with a human reason. */
int sh_rule_check_text(const sh_rule *rule, const char *raw, size_t len, sh_arena *a, sh_value *out,
                       const char **why);
/* Validates a JSON value against a rule. Returns 0, or -1 with a reason. */
int sh_rule_check_json(const sh_rule *rule, json_object *v, sh_arena *a, sh_value *out, const char **why);

#endif
