/* sh_invoke.h: one function invoking another.
 *
 * Every invocation is booked against the call tree's budget and depth
 * (sh_budget.h), which no loop can escape. A call into the caller's own
 * service runs in the calling worker, through the same dispatcher
 * (sh_http_local), with the same accounting, log line and metrics: a chain of
 * calls back into one pool would otherwise hold a worker per level while it
 * waits, and a busy pool would starve it. Calls to other services are HTTP
 * requests (libcurl, one connection kept per worker) to the internal nginx
 * listener, which load-balances them, carrying the caller's Authorization,
 * X-Request-Id, X-Invoke-Depth and X-Invoke-Budget. Where the callee's pools
 * are on this host (PL_INVOKE_SOCKET_DIR holds their sockets, <svc>.sock and
 * <svc>-N.sock), the call is made to them directly over FastCGI instead, in
 * turn (round robin per worker; a pool that refuses is skipped), with the
 * same parameters nginx's internal listener would pass: the callee sees the
 * same request, without nginx's hop. When none answers the call goes through
 * the gateway after all.
 * Layer 5 of libshared (invoke); see docs/architecture.md. */
#ifndef SH_INVOKE_H
#define SH_INVOKE_H

#include "sh_config.h"
#include "sh_req.h"

typedef struct {
    const char *gateway_url; /* the internal nginx listener, "http://127.0.0.1:8081" */
    int64_t timeout_ms;      /* one invocation, connection included */
    const char *socket_dir;  /* where the local pools' sockets are, or NULL: all through the gateway */
} sh_invoke_config;

/* PL_GATEWAY_URL, PL_INVOKE_TIMEOUT_MS and PL_INVOKE_SOCKET_DIR over an
 * sh_invoke_config. */
extern const sh_conf_row sh_invoke_conf_rows[];

/* Installs the gateway and timeout (copied). The defaults hold until then. */
void sh_invoke_configure(const sh_invoke_config *ic);

/* Called with true before a worker blocks on another service's answer and
 * with false after it (the pool counts such a worker apart). NULL: nobody. */
typedef void (*sh_invoke_wait_fn)(bool waiting);
void sh_invoke_on_wait(sh_invoke_wait_fn fn);

/* The outcome of an invocation. */
typedef struct {
    int status;             /* the callee's HTTP status; when no response came, the
                               status to answer with (508, 504 or 503) */
    json_object *body;      /* parsed JSON response (owned by the request), or NULL */
    const char *error_code; /* when no response came: "invocation_budget_exceeded",
                               "upstream_timeout"...; when the callee answered an error
                               ({"error":{"code":...}}), its code, to relay; else NULL */
    const char *error;      /* the human reason that goes with error_code */
} sh_invoke_result;

/* Invokes `method path` (e.g. "GET", "/api/projects/7") through the gateway,
 * forwarding the caller's Authorization and X-Request-Id; `body` may be NULL.
 * Returns 0 when a response came (res->status), or -1 when the call was refused
 * (depth or budget) or failed (timeout, callee down); nothing is answered. */
int sh_invoke(sh_req *req, const char *method, const char *path, json_object *body, sh_invoke_result *res);

/* The same, for handlers that cannot go on without the answer: on -1 the error
 * has been answered (508 invocation_*, 504 upstream_timeout, 503
 * service_unavailable) and *status_out holds its status, for the handler to
 * return. A 508 from deeper in the tree is relayed with the callee's code, so
 * a refusal anywhere ends the whole call tree; a callee's 502/503/504 is
 * answered as 503 service_unavailable. Other statuses are the handler's. */
int sh_invoke_or_reply(sh_req *req, const char *method, const char *path, json_object *body, sh_invoke_result *res,
                       int *status_out);

/* A plain HTTP request to an internal URL that is not a function call (nchan's
 * publisher, the revocation feed): no budget is involved. json may be NULL
 * (no body). 0 with *status (and, when out is given, the body in the
 * request's arena) when a response came, -1 otherwise (logged). */
int sh_http_send(sh_req *req, const char *method, const char *url, const char *json, size_t len, long *status,
                 sh_buf *out);
/* A GET of an internal `path` (/api/<svc>/...) straight to a local pool of
 * that service over FastCGI, as nginx's internal listener would pass it (no
 * credentials, no invocation headers): 0 with *status and the body in out,
 * -1 when it failed once sent, 1 when no local pool took it (nothing was
 * sent: go through the gateway). */
int sh_direct_get(sh_req *req, const char *path, long *status, sh_buf *out);
/* sh_http_send of a JSON body with POST. */
int sh_http_post_json(sh_req *req, const char *url, const char *json, size_t len, long *status);
/* The gateway invocations go through (PL_GATEWAY_URL). */
const char *sh_invoke_gateway(void);

#endif
