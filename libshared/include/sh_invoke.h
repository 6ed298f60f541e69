/* sh_invoke.h: one function invoking another, with a budget no loop can escape.
 *
 * Every call tree carries X-Invoke-Depth (hops from the client's request) and
 * X-Invoke-Budget (invocations the rest of the tree may still make). A request
 * from a client starts at depth 0 with the configured budget. An invocation
 * costs 1; the caller hands the callee what it has left minus that 1, and takes
 * off what the callee reports it spent (X-Invoke-Spent), so the whole tree
 * together never makes more invocations than the budget, however it fans out.
 * The headers are trusted only from the internal listener.
 *
 * A call into the caller's own service runs in the calling worker, through
 * the same dispatcher (sh_http_local), with the same accounting, log line and
 * metrics: a chain of calls back into one pool would otherwise hold a worker
 * per level while it waits, and a busy pool would starve it. Calls to other
 * services go through the internal nginx listener (load-balanced). */
#ifndef SH_INVOKE_H
#define SH_INVOKE_H

#include "sh_http.h"

typedef struct {
    const char *gateway_url;  /* the internal nginx listener, "http://127.0.0.1:8081" */
    int64_t max_depth;        /* default 8 */
    int64_t budget;           /* default 32 */
    int64_t timeout_ms;       /* default 2000 */
} sh_invoke_config;

void sh_invoke_configure(const sh_invoke_config *ic);

/* Dispatcher hook: reads depth and budget; answers 508 invocation_depth_exceeded
 * past the limit (without running the handler). */
int sh_invoke_check_or_reply(sh_req *req);
/* Adds X-Invoke-Spent to an internal response. */
void sh_invoke_reply_headers(sh_req *req);

/* The outcome of an invocation. */
typedef struct {
    int status;             /* the callee's HTTP status; when no response came, the
                               status to answer with (508, 504 or 503) */
    json_object *body;      /* parsed JSON response (owned by the request), or NULL */
    const char *error_code; /* when no response came: "invocation_budget_exceeded"... */
    const char *error;      /* when no response came: a human reason */
} sh_invoke_result;

/* Invokes `method path` (e.g. "GET", "/api/projects/7") through the gateway,
 * forwarding the caller's Authorization and X-Request-Id; `body` may be NULL.
 * Returns 0 when a response came (res->status), or -1 when the call was refused
 * (depth or budget) or failed (timeout, callee down); nothing is answered. */
int sh_invoke(sh_req *req, const char *method, const char *path, json_object *body, sh_invoke_result *res);

/* The same, for handlers that cannot go on without the answer: on -1 the error
 * has been answered (508 invocation_*, 504 upstream_timeout, 503
 * service_unavailable) and *status_out holds its status, for the handler to
 * return. A 508 from deeper in the tree is relayed the same way, so a refusal
 * anywhere ends the whole call tree. */
int sh_invoke_or_reply(sh_req *req, const char *method, const char *path, json_object *body,
                       sh_invoke_result *res, int *status_out);

/* POSTs JSON to an internal URL that is not a function (nchan's publisher, say):
 * no budget is involved. 0 with *status when a response came, -1 otherwise. */
int sh_http_post_json(sh_req *req, const char *url, const char *json, size_t len, long *status);

#endif
