/* sh_dispatch.h: the dispatcher. It does everything generic before a handler
 * runs, in this order: route lookup (404 not_found, 405 method_not_allowed
 * with Allow), internal-only and test-only routes (404 on the public
 * listener), the invocation budget (sh_budget.h: 400, 508), a rate limit for
 * a caller without a token (sh_ratelimit.h: 429), authentication (sh_auth.h:
 * 401, 403), a rate limit for one with a token, declared path and query
 * parameters (400 invalid_parameter / missing_parameter), then for SH_JSON
 * routes the body: size (413), Content-Type (415), syntax, nesting and UTF-8
 * (400 invalid_json), unknown, missing and invalid fields (422). A handler only
 * ever sees valid input; an SH_IDEMPOTENT route's runs under its
 * Idempotency-Key (sh_idempotency.h).
 * Layer 4 of libshared (dispatch); see docs/architecture.md. */
#ifndef SH_DISPATCH_H
#define SH_DISPATCH_H

#include "sh_config.h"
#include "sh_router.h"

typedef struct {
    int64_t max_body_bytes;
    int64_t json_max_depth;
} sh_dispatch_config;

/* PL_MAX_BODY_BYTES and PL_JSON_MAX_DEPTH over an sh_dispatch_config. */
extern const sh_conf_row sh_dispatch_conf_rows[];

/* Installs the limits (copied). The defaults hold until then. */
void sh_dispatch_configure(const sh_dispatch_config *dc);

/* Runs the checks above and the route's handler on a request whose method,
 * path, query, env (and body, without fcgi) are set. Returns the status that
 * was answered; exactly one reply is always sent. */
int sh_dispatch(sh_req *req, const sh_router *router);

/* Serves one FastCGI request (a FCGX_Request * that was accepted) with the
 * worker's arena: parameters into an sh_req, request id (the caller's
 * X-Request-Id when well-formed, else a new one), sh_dispatch, the log line
 * and the scoreboard's counters. The caller finishes the FastCGI request,
 * runs the deferred work (sh_req_run_deferred) and resets the arena. */
void sh_http_handle(void *fcgi_request, sh_arena *arena, const sh_router *router);

/* A local invocation: runs `method target` (target = path[?query]) through this
 * service's own dispatcher inside the calling worker, as the internal listener
 * would have delivered it, with the caller's Authorization and request id and
 * the given invocation depth and budget. The callee's body goes to `out`.
 * Returns the callee's status; *spent is what its subtree reported spending.
 * It is logged and counted like any request. */
int sh_http_local(sh_req *parent, const char *method, const char *target, const char *body, size_t body_len,
                  int64_t depth, int64_t budget, sh_buf *out, int64_t *spent);

/* A GET of `path` made by the worker itself (as from the internal listener,
 * with no credentials), through the whole dispatcher, logged and counted like
 * any request: a new release's first worker proves it can serve (its health
 * check) before it takes requests. The body goes to out; returns the status. */
int sh_http_probe(sh_arena *arena, const sh_router *router, const char *path, sh_buf *out);

#endif
