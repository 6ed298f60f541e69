/* sh_service.h: what a service is (a name, a route table, its own config rows
 * and two hooks) and the one call that runs it: sh_service_main() loads and
 * validates the configuration, compiles the routes, opens the socket and runs
 * the pool; each worker serves FastCGI requests through the dispatcher.
 * Layer 6 of libshared (service); see docs/architecture.md. */
#ifndef SH_SERVICE_H
#define SH_SERVICE_H

#include "sh_auth.h"
#include "sh_budget.h"
#include "sh_config.h"
#include "sh_db.h"
#include "sh_dispatch.h"
#include "sh_idempotency.h"
#include "sh_invoke.h"
#include "sh_pool.h"
#include "sh_ratelimit.h"

typedef struct {
    const char *name;                         /* "accounts": also the URL prefix /api/<name>/ */
    const sh_route *routes;                   /* SH_ROUTE_END-terminated */
    const sh_conf_row *config_rows;           /* the service's own env vars, or NULL */
    void *config;                             /* where config_rows write */
    int (*setup)(void);                       /* once, in the master, after config: -1 stops start */
    int (*reload)(void);                      /* in the master on SIGHUP, after the public keys were
                                       read again (the service's own key files, say);
                                       -1 keeps everything as it was */
    int (*worker_init)(sh_db *db);            /* registers the statements, and nothing else: it
                                                 runs in a worker that has no database handle, and
                                                 in the master for each standby session (see
                                                 PL_DB_STANDBY), whose worker does not run it
                                                 again; -1 ends the worker (or gives up the standby) */
    sh_revocation_fetch_fn revocations_fetch; /* how this service reads the revocation feed
                                                 (NULL: GET PL_REVOCATIONS_PATH on the gateway;
                                                 accounts, which keeps it, reads it directly) */
    void (*on_wake)(sh_req *req);             /* in a worker, at the time a worker asked for with
                                       sh_pool_wake_at (and once as the pool starts):
                                       work no request brings (mail to retry); may be NULL */
    bool calls_out_per_request;               /* its requests call out over HTTP (chat publishes every post to
                                   nchan): the master loads libcurl before forking, so that no
                                   request waits ~4 ms for it (see sh_curl.h); so does every
                                   master whose invocations all go through the gateway (no
                                   PL_INVOKE_SOCKET_DIR) */
} sh_service;

/* Configuration every service shares (PL_* variables), a part per layer. */
typedef struct {
    sh_pool_config pool;
    sh_dispatch_config dispatch;
    sh_db_config db;
    sh_invoke_config invoke;
    sh_budget_config budget;
    sh_idem_config idem;
    sh_auth_config auth;
    bool test_routes;
    const char *pid_file;
    const char *supervisor_pid_file;
    bool supervise;
    const char *log_file;
    int log_level;
    const char *public_url;
    int64_t swap_timeout_ms;
    const char *swap_status_file;
    int test_fault;
    bool db_standby; /* PL_DB_STANDBY */
} sh_common_config;

extern sh_common_config sh_conf; /* read-only once the service runs */

/* Runs the service; returns the process exit status. */
int sh_service_main(int argc, char **argv, const sh_service *svc);

/* Runs fn once outside the pool, as an operator command: the same configuration
 * (PL_LISTEN not needed), a database handle and a request arena, no socket.
 * fn's replies go nowhere; it prints what the operator should see. Returns fn's
 * result (0 success) or 1 when the configuration is invalid. */
int sh_service_command(const sh_service *svc, int (*fn)(sh_req *req, void *arg), void *arg);

/* The service being run (for libshared internals). */
const sh_service *sh_service_current(void);

/* Serves one request on an accepted FastCGI connection (the pool's serve hook). */
void sh_service_serve_connection(int fd, void *ctx);
/* Answers one request on the status socket, in the master (the pool's
 * serve_status hook): _status and _metrics from the scoreboard, 404 else. */
void sh_service_serve_status(int fd, void *ctx);

#endif
