/* sh_req.h: one request as every layer above sees it, and the replies to it.
 *
 * The route table's data types live here too (a route is data: method,
 * pattern, handler, flags, declared parameters and body fields), because a
 * request carries the route it matched and its validated values; matching
 * and checking them is the router's and the dispatcher's (sh_router.h,
 * sh_dispatch.h).
 * Every reply writes JSON errors in one shape:
 *   {"error": {"code": "snake_case", "message": "human text"[, "field": name]}}
 * A handler returns the status it answered with.
 * Layer 1 of libshared (req); see docs/architecture.md. */
#ifndef SH_REQ_H
#define SH_REQ_H

#include "sh_arena.h"
#include "sh_json.h"

#define SH_MAX_PARAMS   8
#define SH_MAX_FIELDS   16
#define SH_MAX_SEGMENTS 12

typedef struct sh_req sh_req;
typedef struct sh_router sh_router; /* compiled routes: sh_router.h */
typedef struct sh_rate sh_rate;     /* a route's rate limit: sh_ratelimit.h */
typedef int (*sh_handler)(sh_req *req);

/* Route flags. */
#define SH_JSON          (1u << 0) /* takes a JSON object body (415/413/400/422 before the handler) */
#define SH_INTERNAL      (1u << 1) /* served on the internal listener only (404 elsewhere) */
#define SH_TEST          (1u << 2) /* exists only when PL_TEST_ROUTES=1 (and is internal) */
#define SH_AUTH          (1u << 3) /* needs a valid access token (401 otherwise) */
#define SH_ADMIN         (1u << 4) /* needs an admin's token (403 otherwise); implies SH_AUTH */
#define SH_BODY_OPTIONAL (1u << 5) /* with SH_JSON: no body at all reads as {} (e.g. a cookie-only POST) */
/* SH_TOKEN_QUERY: the access token may also come as ?access_token= (RFC 6750
 * §2.3), for clients that cannot send headers (EventSource, WebSocket); without
 * SH_AUTH a token is optional, and verified when given. */
#define SH_TOKEN_QUERY (1u << 6)
/* SH_IDEMPOTENT: honours the Idempotency-Key header (sh_idempotency.h): a
 * retry with the same key gets the first answer again and writes nothing.
 * Needs SH_AUTH (keys are per user) and the idempotency_keys table in the
 * service's schema. */
#define SH_IDEMPOTENT (1u << 7)

/* Value types of parameters and body fields. */
typedef enum {
    SH_T_ID,     /* a positive integer id: 1 .. 2^63-1 */
    SH_T_INT,    /* an integer in [min, max] */
    SH_T_STRING, /* valid UTF-8 without NUL, [min, max] characters */
    SH_T_BOOL,   /* query: true/false/1/0; JSON: true/false */
    SH_T_ENUM,   /* one of choices */
    SH_T_OBJECT, /* JSON only: any object */
    SH_T_CURSOR  /* query: a pagination cursor this API handed out (sh_cursor_encode);
                    the value's i is the last id it names */
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

/* clang-format off */
#define SH_RULE_END {NULL, SH_T_INT, 0, 0, 0, NULL}

/* Shorthands for the common rules. */
#define SH_PATH_ID(n) {n, SH_T_ID, SH_REQUIRED, 1, INT64_MAX, NULL}
#define SH_PATH_STR(n, maxlen) {n, SH_T_STRING, SH_REQUIRED, 1, maxlen, NULL}
#define SH_QUERY_INT(n, lo, hi) {n, SH_T_INT, SH_QUERY, lo, hi, NULL}
#define SH_QUERY_ID(n) {n, SH_T_ID, SH_QUERY, 1, INT64_MAX, NULL}
#define SH_QUERY_STR(n, maxlen) {n, SH_T_STRING, SH_QUERY, 0, maxlen, NULL}
#define SH_QUERY_BOOL(n) {n, SH_T_BOOL, SH_QUERY, 0, 1, NULL}
#define SH_QUERY_CURSOR(n) {n, SH_T_CURSOR, SH_QUERY, 0, 0, NULL}
#define SH_FIELD_STR(n, flags, minlen, maxlen) {n, SH_T_STRING, flags, minlen, maxlen, NULL}
#define SH_FIELD_INT(n, flags, lo, hi) {n, SH_T_INT, flags, lo, hi, NULL}
#define SH_FIELD_ID(n, flags) {n, SH_T_ID, flags, 1, INT64_MAX, NULL}
#define SH_FIELD_BOOL(n, flags) {n, SH_T_BOOL, flags, 0, 1, NULL}
#define SH_FIELD_ENUM(n, flags, choices) {n, SH_T_ENUM, flags, 0, 0, choices}
/* clang-format on */

typedef struct {
    const char *method;
    const char *pattern; /* "/api/projects/{id}" */
    sh_handler handler;
    const char *name; /* handler name in logs and metrics */
    unsigned flags;
    const sh_param *params; /* SH_RULE_END-terminated, or NULL */
    const sh_field *fields; /* SH_RULE_END-terminated, or NULL = any object */
    const sh_rate *rate;    /* per caller, or NULL: unlimited */
} sh_route;

/* A route's rate limit (sh_ratelimit.h): its name in the RateLimit headers,
 * and where the service's config holds its values (SH_CONF_RATE: microseconds
 * between two requests; burst: a count), read at request time. */
struct sh_rate {
    const char *name;
    const int64_t *interval_us;
    const int64_t *burst;
};

/* clang-format off */
#define SH_ROUTE(method, pattern, handler, flags, params, fields) \
    {method, pattern, handler, #handler, flags, params, fields, NULL}
#define SH_ROUTE_LIMITED(method, pattern, handler, flags, params, fields, rate) \
    {method, pattern, handler, #handler, flags, params, fields, rate}
#define SH_ROUTE_END {NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL}
/* clang-format on */

/* A validated parameter or field value. */
typedef struct {
    bool present;
    bool is_null;
    int64_t i;     /* SH_T_ID, SH_T_INT, SH_T_BOOL (0/1), SH_T_ENUM (index) */
    const char *s; /* SH_T_STRING, SH_T_ENUM; NUL-terminated, in the arena */
    size_t len;
    json_object *obj; /* JSON fields: the value itself (owned by the body) */
} sh_value;

/* The authenticated caller (filled by the dispatcher for SH_AUTH routes). */
typedef struct {
    bool present;
    int64_t user_id;
    const char *subject; /* the token's sub */
    const char *email;
    const char *name; /* the display name when the token was issued */
    const char *role; /* "user" | "admin" */
    bool is_admin;
    const char *token;      /* the raw bearer token, for forwarding */
    int64_t expires_at;     /* seconds since the epoch */
    int64_t issued_at;      /* iat, seconds since the epoch (0 when the token has none) */
    const char *session_id; /* sid: the session (refresh-token family) it belongs to, or NULL */
} sh_principal;

struct sh_req {
    sh_arena *arena;
    void *fcgi;              /* FCGX_Request *, or NULL for a local invocation */
    char **env;              /* the request's parameters ("NAME=value", NULL-ended):
                              FastCGI's, or those a local invocation made up */
    const sh_router *router; /* the service's routes (for local invocations) */
    sh_buf *capture;         /* without fcgi: the response body goes here */
    sh_buf *capture_head;    /* without fcgi: the response's header block, if set (tests) */
    const char *method;
    const char *path;  /* decoded, normalized path (nginx's $uri) */
    const char *query; /* raw query string, "" when none */
    const char *request_id;
    const char *remote_addr;
    bool internal; /* arrived through the internal listener */
    bool head;     /* HEAD: answered as GET, without the body */
    bool https;
    int64_t start_us;

    const sh_route *route;
    int route_index;
    sh_value params[SH_MAX_PARAMS]; /* by index in route->params */
    sh_value fields[SH_MAX_FIELDS]; /* by index in route->fields */
    const char *body;
    size_t body_len;
    json_object *json; /* the parsed body (SH_JSON routes) */
    sh_principal auth;

    int64_t invoke_depth;  /* hops from the client's request (0 there) */
    int64_t invoke_budget; /* invocations this call tree may still make */
    int64_t invoke_spent;  /* invocations made while serving this request (reported back
                              in X-Invoke-Spent when the request came from another function) */

    /* response */
    int status;
    bool responded;
    sh_buf *held;          /* non-NULL: the reply is kept here (header block, then body)
                                until sh_req_send_held, not sent */
    size_t held_body_at;   /* where the body starts in *held */
    const char *held_type; /* the held reply's Content-Type, or NULL */
    bool has_cache_control;
    sh_buf headers;         /* extra response header lines */
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

/* A response is a FastCGI record stream when req->fcgi is set, else it is
 * captured (req->capture). The status line carries its reason phrase (libfcgi
 * needs it); X-Request-Id, Cache-Control: no-store (unless set), Content-Length
 * and, on an internal request inside a call tree, X-Invoke-Spent are added.
 * Only the first reply of a request is sent; a second is logged and dropped. */

/* Sends `body` as JSON and puts it. */
int sh_reply_json(sh_req *req, int status, json_object *body);
/* Sends a raw body with a content type. */
int sh_reply_raw(sh_req *req, int status, const char *content_type, const char *body, size_t len);
/* Sends the reply kept in req->held (see there) and stops holding. */
void sh_req_send_held(sh_req *req);
/* Sends a response without a body (204, 304). */
int sh_reply_empty(sh_req *req, int status);
/* Sends {"error":{"code":code,"message":...}}. */
int sh_reply_error(sh_req *req, int status, const char *code, const char *fmt, ...) SH_PRINTF(4, 5);
/* The same, naming the body field or parameter at fault ("field": name). */
int sh_reply_field_error(sh_req *req, int status, const char *code, const char *field, const char *fmt, ...)
    SH_PRINTF(5, 6);
/* Adds a response header; CR and LF in the value are replaced by spaces. */
void sh_resp_header(sh_req *req, const char *name, const char *fmt, ...) SH_PRINTF(3, 4);

/* The reason phrase of a status ("Not Found"). */
const char *sh_status_reason(int status);

/* Work to do once the response is on its way to the client (the connection
 * closed), before the request's arena goes: fn(req, arg) runs then, in the
 * order registered (also for work a local invocation's callee registered),
 * with a request of its own that answers nobody: the worker's arena and
 * database connection. For what must not delay or fail the response
 * (delivering mail after the commit that queued it). */
typedef void (*sh_deferred_fn)(sh_req *req, void *arg);
void sh_req_defer(sh_req *req, sh_deferred_fn fn, void *arg);
/* Runs and forgets the deferred work with req (the service, after each
 * request; work deferred meanwhile runs too). */
void sh_req_run_deferred(sh_req *req);

/* Conditional requests (RFC 9110 §13): evaluates If-Match (strong comparison,
 * §13.1.1) and If-None-Match (weak comparison, §13.1.2), in §13.2.2's order,
 * against the resource's current entity tag `etag` (quotes included,
 * "\"7\""; NULL when the resource does not exist). Each header is "*" or a
 * list of entity tags (W/ for weak ones). Returns 0 when the request may go
 * on, with *if_match true when an If-Match that is not "*" passed (the
 * handler then makes its write conditional on the same tag, so a change in
 * between is a 412 too); else the status of the reply sent: 412
 * version_conflict, 304 (If-None-Match on GET or HEAD, with the ETag), or
 * 400 invalid_header (a header that is not the RFC's syntax). */
int sh_preconditions_or_reply(sh_req *req, const char *etag, bool *if_match);

/* Registers json_object_put(obj) as a cleanup of the request; returns obj. */
json_object *sh_req_own(sh_req *req, json_object *obj);

#endif
