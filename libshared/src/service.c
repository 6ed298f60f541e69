/* service.c: sh_service_main: configuration, route table, the built-in routes
 * every service has (health, status, metrics, routes, test routes), and the worker's
 * FastCGI connection handler. */
#include "sh_service.h"
#include "sh_curl.h"
#include "sh_log.h"
#include "sh_supervise.h"
#include "sh_str.h"

#include <errno.h>
#include <fcgiapp.h>
#include <mysql.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

sh_common_config sh_conf;

static const sh_service *sh_svc;
static sh_router sh_svc_router;
static sh_arena *sh_worker_arena;
static sh_db *sh_worker_db;
static int sh_builtin_count;   /* the built-in routes come first in the table */
static bool sh_svc_needs_auth; /* some route checks tokens */
static bool sh_svc_idempotent; /* some route honours Idempotency-Key */

const sh_service *sh_service_current(void) { return sh_svc; }

static const char *const sh_log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const sh_test_faults[] = {"none", "crash_on_request", "crash_on_api", NULL};
enum { SH_FAULT_NONE, SH_FAULT_CRASH_ON_REQUEST, SH_FAULT_CRASH_ON_API };

static char sh_svc_release[13]; /* the first 12 hex digits of the binary's SHA-256 */
static bool sh_svc_swapped_in;  /* a swap's new master: the pid file is written once ready */

#define C(field) offsetof(sh_common_config, field)
static const sh_conf_row sh_service_rows[] = {
    {"PL_TEST_ROUTES", SH_CONF_BOOL, C(test_routes), "0", 0, 0, NULL, 0,
     "1: serve the test-only routes (internal listener only)"},
    {"PL_PID_FILE", SH_CONF_STRING, C(pid_file), NULL, 0, 0, NULL, 0, "the master writes its pid here"},
    {"PL_SUPERVISOR_PID_FILE", SH_CONF_STRING, C(supervisor_pid_file), NULL, 0, 0, NULL, 0,
     "the supervisor (PL_SUPERVISE=1) writes its pid here; stopping it stops the pool for good"},
    {"PL_SUPERVISE", SH_CONF_BOOL, C(supervise), "1", 0, 0, NULL, 0,
     "1: the process started is a supervisor that restarts the master if it dies"},
    {"PL_LOG_FILE", SH_CONF_STRING, C(log_file), NULL, 0, 0, NULL, 0,
     "append log lines to this file (stderr when unset); SIGUSR1 to the pool reopens it (logrotate)"},
    {"PL_LOG_LEVEL", SH_CONF_ENUM, C(log_level), "info", 0, 0, sh_log_levels, 0, "debug | info | warn | error"},
    {"PL_PUBLIC_URL", SH_CONF_STRING, C(public_url), "http://127.0.0.1:8080", 0, 0, NULL, 0,
     "the public base URL (links, cookies)"},
    {"PL_SWAP_TIMEOUT_MS", SH_CONF_INT, C(swap_timeout_ms), "15000", 100, 600000, NULL, 0,
     "a binary swap (SIGUSR2 to the supervisor): the new master must be ready within this"},
    {"PL_SWAP_STATUS_FILE", SH_CONF_STRING, C(swap_status_file), NULL, 0, 0, NULL, 0,
     "the supervisor writes each swap's outcome here: \"ok PID\" or \"failed: reason\""},
    {"PL_DB_STANDBY", SH_CONF_BOOL, C(db_standby), "1", 0, 0, NULL, 0,
     "while the pool has no worker, its master holds one database session, connected and its statements "
     "prepared, and hands it to the next worker it forks: a cold start makes no connection (0: the worker "
     "connects in its first request)"},
    {"PL_TEST_FAULT", SH_CONF_ENUM, C(test_fault), "none", 0, 0, sh_test_faults, 0,
     "with PL_TEST_ROUTES=1 only: crash_on_request makes every worker crash on its first request, crash_on_api on "
     "its first request to a route of the service's own (not health or /_...) (deploy tests)"},
    SH_CONF_END,
};
#undef C

/* Every table of settings a service reads, where each loads, in --help order:
 * each layer writes its own rows (names, defaults, bounds) once. */
typedef struct {
    const sh_conf_row *rows;
    void *conf;
} sh_conf_table;
#define SH_CONF_TABLES_MAX 10 /* sh_conf_tables fills at most this many */

static size_t sh_conf_tables(const sh_service *svc, sh_conf_table *t)
{
    size_t n = 0;
    t[n++] = (sh_conf_table){sh_pool_conf_rows, &sh_conf.pool};
    t[n++] = (sh_conf_table){sh_dispatch_conf_rows, &sh_conf.dispatch};
    t[n++] = (sh_conf_table){sh_service_rows, &sh_conf};
    t[n++] = (sh_conf_table){sh_db_conf_rows, &sh_conf.db};
    t[n++] = (sh_conf_table){sh_invoke_conf_rows, &sh_conf.invoke};
    t[n++] = (sh_conf_table){sh_budget_conf_rows, &sh_conf.budget};
    t[n++] = (sh_conf_table){sh_idem_conf_rows, &sh_conf.idem};
    t[n++] = (sh_conf_table){sh_auth_conf_rows, &sh_conf.auth};
    if (svc->config_rows != NULL)
        t[n++] = (sh_conf_table){svc->config_rows, svc->config};
    return n;
}

/* --- built-in routes ------------------------------------------------------------- */

static int sh_builtin_health(sh_req *req)
{
    if (sh_db_ping(req) != 0)
        return sh_db_reply_error(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    json_object_object_add(o, "service", json_object_new_string(sh_svc->name));
    json_object_object_add(o, "database", json_object_new_string("ok"));
    json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
    json_object_object_add(o, "release", json_object_new_string(sh_svc_release));
    return sh_reply_json(req, 200, o);
}

static int sh_builtin_status(sh_req *req) { return sh_reply_json(req, 200, sh_sb_to_json(sh_sb_current())); }

/* The same scoreboard for an admin's browser (the web client's System page),
 * on the public listener: the internal _status is never reachable from there.
 * A thin alias, so whoever answers _status answers this too. */
static int sh_builtin_admin_status(sh_req *req) { return sh_builtin_status(req); }

static int sh_builtin_metrics(sh_req *req)
{
    sh_buf out;
    sh_buf_init(&out, req->arena, 16384);
    sh_sb_to_prometheus(sh_sb_current(), &out);
    return sh_reply_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
}

/* The live route table (built-ins included), so that a test can compare every
 * route with its table of expected authorization and fail on a new one. */
static int sh_builtin_routes(sh_req *req)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "service", json_object_new_string(sh_svc->name));
    json_object_object_add(o, "test_routes", json_object_new_boolean(sh_conf.test_routes));
    json_object_object_add(o, "routes", sh_router_to_json(&sh_svc_router));
    return sh_reply_json(req, 200, o);
}

static int sh_builtin_test_sleep(sh_req *req)
{
    int64_t ms = sh_param_int(req, "ms", 0);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "slept_ms", json_object_new_int64(ms));
    json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
    return sh_reply_json(req, 200, o);
}

static int sh_builtin_test_echo(sh_req *req) { return sh_reply_json(req, 200, json_object_get(req->json)); }

static int sh_builtin_test_crash(sh_req *req)
{
    (void)req;
    sh_log_msg(SH_LOG_WARN, "test_crash", "crashing on purpose (test route)");
    abort();
}

/* Invokes GET `path` (any service's, this one's too) and answers 200 with the
 * callee's status and body: chains of calls between pools, for tests. */
static int sh_builtin_test_invoke(sh_req *req)
{
    const char *path = sh_param_str(req, "path");
    if (path[0] != '/')
        return sh_reply_field_error(req, 422, "invalid_field", "path", "path must start with /.");
    sh_invoke_result res;
    int status;
    if (sh_invoke_or_reply(req, "GET", path, NULL, &res, &status) != 0)
        return status;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_int(res.status));
    json_object_object_add(o, "body", res.body ? json_object_get(res.body) : NULL);
    json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
    return sh_reply_json(req, 200, o);
}

static const sh_param sh_sleep_params[] = {SH_QUERY_INT("ms", 0, 60000), SH_RULE_END};
static const sh_param sh_invoke_params[] = {{"path", SH_T_STRING, SH_QUERY | SH_REQUIRED, 1, 2000, NULL}, SH_RULE_END};

/* Builds the full table: the built-ins under /api/<name>/ first (so that a
 * service's /api/<name>/{id} cannot shadow /api/<name>/health), then the
 * service's routes; test routes exist only when enabled. */
static sh_route *sh_build_routes(const sh_service *svc, bool test_routes)
{
    int n = 0, total = 0;
    while (svc->routes[total].method != NULL)
        total++;
    enum { SH_BUILTIN_MAX = 16 }; /* room for every SH_ADD below, and the sentinel */
    sh_route *all = sh_xcalloc((size_t)total + SH_BUILTIN_MAX + 1, sizeof(sh_route));
    char path[128];
#define SH_ADD(m, suffix, fn, label, fl, pr)                                                                           \
    do {                                                                                                               \
        snprintf(path, sizeof(path), "/api/%s/%s", svc->name, suffix);                                                 \
        all[n++] = (sh_route){m, sh_xstrdup(path), fn, label, fl, pr, NULL, NULL};                                     \
    } while (0)
    SH_ADD("GET", "health", sh_builtin_health, "health", 0, NULL);
    SH_ADD("GET", "_status", sh_builtin_status, "status", SH_INTERNAL, NULL);
    SH_ADD("GET", "_metrics", sh_builtin_metrics, "metrics", SH_INTERNAL, NULL);
    SH_ADD("GET", "_routes", sh_builtin_routes, "routes", SH_INTERNAL, NULL);
    SH_ADD("GET", "admin/status", sh_builtin_admin_status, "admin_status", SH_ADMIN, NULL);
    if (test_routes) {
        SH_ADD("GET", "_test/sleep", sh_builtin_test_sleep, "test_sleep", SH_TEST, sh_sleep_params);
        SH_ADD("POST", "_test/echo", sh_builtin_test_echo, "test_echo", SH_TEST | SH_JSON, NULL);
        SH_ADD("POST", "_test/crash", sh_builtin_test_crash, "test_crash", SH_TEST, NULL);
        SH_ADD("GET", "_test/invoke", sh_builtin_test_invoke, "test_invoke", SH_TEST, sh_invoke_params);
    }
#undef SH_ADD
    sh_builtin_count = n;
    for (int i = 0; i < total; i++)
        if (test_routes || !(svc->routes[i].flags & SH_TEST))
            all[n++] = svc->routes[i];
    return all;
}

/* --- the worker ------------------------------------------------------------------------ */

/* A database handle with every statement of the service registered. */
static sh_db *sh_service_db_create(void)
{
    sh_db *db = sh_db_create(&sh_conf.db);
    if ((sh_svc_idempotent && sh_idem_register(db) != 0) ||
        (sh_svc->worker_init != NULL && sh_svc->worker_init(db) != 0)) {
        sh_db_destroy(db);
        return NULL;
    }
    return db;
}

static int sh_service_worker_init(void *ctx)
{
    (void)ctx;
    sh_worker_arena = sh_arena_create(64 * 1024);
    if (sh_worker_db == NULL && (sh_worker_db = sh_service_db_create()) == NULL) /* else the master's standby */
        return -1;
    sh_db_set_worker(sh_worker_db);
    return 0;
}

/* The master's standby (sh_pool_callbacks.standby_open): the next worker's
 * database session, connected and prepared while the pool is idle. */
static int sh_service_standby_open(void *ctx)
{
    (void)ctx;
    if (sh_worker_db != NULL)
        return sh_db_socket(sh_worker_db);
    sh_db *db = sh_service_db_create();
    if (db == NULL)
        return -1;
    if (sh_db_standby(db, sh_pool_connection_waiting) != 0) {
        sh_db_destroy(db);
        return -1;
    }
    sh_worker_db = db;
    return sh_db_socket(db);
}

static void sh_service_standby_close(void *ctx, bool handed_over)
{
    (void)ctx;
    if (handed_over)
        sh_db_forget(sh_worker_db);
    else
        sh_db_destroy(sh_worker_db);
    sh_worker_db = NULL;
}

static void sh_service_worker_exit(void *ctx)
{
    (void)ctx;
    sh_db_set_worker(NULL);
    sh_db_destroy(sh_worker_db);
    sh_arena_destroy(sh_worker_arena);
    sh_worker_db = NULL;
    sh_worker_arena = NULL;
}

/* A request of the worker's own, that answers nobody: for the deferred
 * work of a request, and the pool's wake. */
static void sh_service_own_req(sh_req *req, const char *what)
{
    memset(req, 0, sizeof(*req));
    req->arena = sh_worker_arena;
    req->request_id = what;
    req->method = what;
    req->path = "";
    req->query = "";
    req->start_us = sh_now_us();
    sh_budget_begin_or_reply(req); /* a client's budget: it may invoke functions */
    sh_db_request_begin(sh_worker_db);
}

/* Ends one: its deferred work, a transaction left open, its arena. */
static void sh_service_own_req_end(sh_req *req)
{
    sh_req_run_deferred(req);
    if (sh_db_in_transaction())
        sh_db_rollback(req);
    sh_arena_reset(sh_worker_arena);
}

/* PL_TEST_FAULT, for the deploy tests: a release whose workers crash. */
static void sh_service_test_fault(void)
{
    if (sh_conf.test_routes && sh_conf.test_fault == SH_FAULT_CRASH_ON_REQUEST) {
        sh_log_msg(SH_LOG_WARN, "test_fault", "crashing on a request on purpose (PL_TEST_FAULT)");
        abort();
    }
}

/* PL_TEST_FAULT=crash_on_api: the built-in routes (health, /_status ...)
 * answer, the service's own crash: a release only a watch after the swap
 * can catch. */
static void sh_service_test_fault_api(FCGX_Request *fr)
{
    if (!sh_conf.test_routes || sh_conf.test_fault != SH_FAULT_CRASH_ON_API)
        return;
    const char *uri = FCGX_GetParam("DOCUMENT_URI", fr->envp);
    char prefix[96];
    int n = snprintf(prefix, sizeof(prefix), "/api/%s/", sh_svc->name);
    if (uri != NULL && strncmp(uri, prefix, (size_t)n) == 0 && (strcmp(uri + n, "health") == 0 || uri[n] == '_'))
        return;
    sh_log_msg(SH_LOG_WARN, "test_fault", "crashing on an API request on purpose (PL_TEST_FAULT)");
    abort();
}

/* A swap's new master, first worker: the service's own health check, through
 * the dispatcher, before it serves anyone. */
static int sh_service_self_check(void *ctx)
{
    (void)ctx;
    sh_service_test_fault();
    char path[128];
    snprintf(path, sizeof(path), "/api/%s/health", sh_svc->name);
    sh_buf out;
    sh_buf_init(&out, sh_worker_arena, 256);
    int status = sh_http_probe(sh_worker_arena, &sh_svc_router, path, &out);
    if (status != 200)
        sh_log_msgf(SH_LOG_ERROR, "self_check_failed", "GET %s answered %d: %.200s", path, status, out.data);
    sh_req own;
    sh_service_own_req(&own, "deferred");
    sh_service_own_req_end(&own);
    return status == 200 ? 0 : -1;
}

/* The pool's wake (sh_pool_wake_at): the service's on_wake. */
static void sh_service_on_wake(void *ctx)
{
    (void)ctx;
    sh_req req;
    sh_service_own_req(&req, "wake");
    sh_svc->on_wake(&req);
    sh_service_own_req_end(&req);
}

/* The revocation feed from accounts through the gateway:
 * GET PL_REVOCATIONS_PATH?after=N -> {"revocations": [{"id", "user_id",
 * "session_id", "not_before"}], "last_id", "keep_s"}. */
static int sh_service_fetch_revocations(sh_req *req, int64_t after, sh_revocation *out, int max, int *n,
                                        int64_t *last_id, int64_t *keep_s)
{
    char *target = sh_arena_sprintf(req->arena, "%s?after=%lld", sh_conf.auth.revocations_path, (long long)after);
    long status;
    sh_buf body;
    /* straight to a local accounts pool when there is one, else through the gateway */
    int direct = sh_direct_get(req, target, &status, &body);
    if (direct == 1 && sh_http_send(req, "GET", sh_arena_sprintf(req->arena, "%s%s", sh_invoke_gateway(), target), NULL,
                                    0, &status, &body) != 0)
        return -1;
    if (direct == -1 || status != 200)
        return -1;
    const char *why;
    json_object *o = sh_req_own(req, sh_json_parse(body.data, body.len, 8, &why)), *list = NULL;
    if (o == NULL || !json_object_object_get_ex(o, "revocations", &list) || !json_object_is_type(list, json_type_array))
        return -1;
    *n = 0;
    for (size_t i = 0; i < json_object_array_length(list) && *n < max; i++) {
        json_object *e = json_object_array_get_idx(list, i);
        const char *sid = sh_json_get_str(e, "session_id");
        sh_revocation *r = &out[(*n)++];
        r->id = sh_json_get_int(e, "id", 0);
        r->user_id = sh_json_get_int(e, "user_id", 0);
        r->not_before = sh_json_get_int(e, "not_before", 0);
        snprintf(r->session_id, sizeof(r->session_id), "%s", sid ? sid : "");
    }
    *last_id = sh_json_get_int(o, "last_id", after);
    *keep_s = sh_json_get_int(o, "keep_s", 3600);
    return 0;
}

/* The master is ready; a swap's new one writes the pid file only now (until
 * then it is the old master's). */
static void sh_service_ready(void *ctx)
{
    (void)ctx;
    if (sh_svc_swapped_in && sh_conf.pid_file != NULL && sh_pid_file_write(sh_conf.pid_file) != 0)
        sh_log_msgf(SH_LOG_ERROR, "pid_file_failed", "cannot write pid file %s", sh_conf.pid_file);
}

/* The release: the first 12 hex digits of this binary's SHA-256, as the
 * runner names releases. "unknown" when it cannot be read. */
static void sh_service_read_release(void)
{
    snprintf(sh_svc_release, sizeof(sh_svc_release), "unknown");
    FILE *f = fopen("/proc/self/exe", "rb");
    if (f == NULL)
        return;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536], h[crypto_hash_sha256_BYTES];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        crypto_hash_sha256_update(&st, buf, n);
    bool ok = !ferror(f);
    fclose(f);
    crypto_hash_sha256_final(&st, h);
    char hex[SH_SHA256_HEX_LEN + 1];
    if (ok && sodium_bin2hex(hex, sizeof(hex), h, sizeof(h)) != NULL)
        snprintf(sh_svc_release, sizeof(sh_svc_release), "%.12s", hex);
}

/* Reads the request on a connection the pool accepted: libfcgi is handed the
 * open fd (keepConnection keeps FCGX_Accept_r from closing it, and with no
 * listening socket it can never block in accept). false when no request came
 * (the connection is closed). */
static bool sh_fcgi_read_request(FCGX_Request *fr, int fd)
{
    FCGX_InitRequest(fr, -1, 0);
    fr->ipcFd = fd;
    fr->keepConnection = 1;
    if (FCGX_Accept_r(fr) == 0)
        return true;
    if (fr->ipcFd >= 0)
        close(fr->ipcFd);
    FCGX_Free(fr, 0);
    return false;
}

/* Ends the request and its connection: one request per connection, no
 * FastCGI keep-alive. What nginx sent and nobody read (a GET's empty stdin
 * record, a body refused unread) is read to its end first, usually from
 * libfcgi's buffer without a syscall: a socket closed with data left unread
 * would reset the connection, which can destroy the answer in flight (or fail
 * nginx's write of the rest of a body). Then nothing more comes, and we close
 * at once, without libfcgi's shutdown-and-wait-for-nginx (three syscalls and
 * a wait). */
static void sh_fcgi_end_request(FCGX_Request *fr)
{
    char sink[4096];
    while (fr->in != NULL && FCGX_GetStr(sink, sizeof(sink), fr->in) > 0)
        ;
    bool clean = fr->in != NULL && FCGX_HasSeenEOF(fr->in) == EOF && FCGX_GetError(fr->in) == 0;
    fr->keepConnection = clean; /* nginx's begin request cleared it: we close, not libfcgi */
    FCGX_Finish_r(fr);
    if (fr->ipcFd >= 0 && clean) {
        close(fr->ipcFd);
        fr->ipcFd = -1;
    } else if (fr->ipcFd >= 0) {
        FCGX_Free(fr, 1); /* libfcgi's careful close */
    }
}

void sh_service_serve_connection(int fd, void *ctx)
{
    (void)ctx;
    sh_service_test_fault();
    FCGX_Request fr;
    if (!sh_fcgi_read_request(&fr, fd))
        return;
    sh_service_test_fault_api(&fr);
    sh_http_handle(&fr, sh_worker_arena, &sh_svc_router);
    sh_fcgi_end_request(&fr);
    /* the client has its answer: what the request left for later */
    sh_req own;
    sh_service_own_req(&own, "deferred");
    sh_service_own_req_end(&own);
}

/* In the master, on PL_STATUS_LISTEN: _status and _metrics (GET or HEAD),
 * answered from the scoreboard through the same dispatcher (so the answer,
 * its log line and its count are a worker's), with an arena of the master's
 * own; anything else is 404 here (nginx sends nothing else). */
void sh_service_serve_status(int fd, void *ctx)
{
    (void)ctx;
    static sh_arena *arena;
    if (arena == NULL)
        arena = sh_arena_create(16 * 1024);
    FCGX_Request fr;
    if (!sh_fcgi_read_request(&fr, fd))
        return;
    const char *uri = FCGX_GetParam("DOCUMENT_URI", fr.envp);
    size_t prefix = strlen("/api/") + strlen(sh_svc->name);
    bool ours = uri != NULL && strncmp(uri, "/api/", 5) == 0 &&
                strncmp(uri + 5, sh_svc->name, strlen(sh_svc->name)) == 0 &&
                (strcmp(uri + prefix, "/_status") == 0 || strcmp(uri + prefix, "/_metrics") == 0);
    if (ours) {
        sh_http_handle(&fr, arena, &sh_svc_router);
    } else {
        static const char nope[] =
            "Status: 404 Not Found\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n"
            "{\"error\":{\"code\":\"not_found\",\"message\":\"The status socket answers _status and _metrics "
            "only.\"}}";
        FCGX_PutStr(nope, (int)sizeof(nope) - 1, fr.out);
    }
    sh_fcgi_end_request(&fr);
    sh_arena_reset(arena);
}

/* --- main ------------------------------------------------------------------------------- */

static int sh_load_config(const sh_service *svc, char *err, size_t errlen)
{
    memset(&sh_conf, 0, sizeof(sh_conf));
    sh_conf_table tables[SH_CONF_TABLES_MAX];
    size_t n = sh_conf_tables(svc, tables);
    for (size_t i = 0; i < n; i++)
        if (sh_config_load(tables[i].rows, tables[i].conf, err, errlen) != 0)
            return -1;
    if (sh_conf.db.name == NULL)
        sh_conf.db.name = svc->name;
    if (sh_conf.db.user == NULL)
        sh_conf.db.user = svc->name;
    if (sh_conf.db.password == NULL)
        sh_conf.db.password = "";
    if (sh_db_config_check(&sh_conf.db, err, errlen) != 0)
        return -1;
    sh_pool_config *p = &sh_conf.pool;
    if (p->mode == SH_POOL_DYNAMIC &&
        (p->min_spare > p->max_spare || p->max_spare > p->max_children || p->start_children > p->max_children)) {
        snprintf(err, errlen,
                 "dynamic pool: need PL_MIN_SPARE <= PL_MAX_SPARE <= PL_MAX_CHILDREN and "
                 "PL_START_CHILDREN <= PL_MAX_CHILDREN");
        return -1;
    }
    bool needs_auth = false;
    for (const sh_route *r = svc->routes; r->method != NULL; r++) {
        needs_auth |= (r->flags & (SH_AUTH | SH_ADMIN | SH_TOKEN_QUERY)) != 0;
        sh_svc_idempotent |= (r->flags & SH_IDEMPOTENT) != 0;
    }
    sh_svc_needs_auth = needs_auth;
    if (sh_conf.auth.public_keys_file != NULL) {
        if (sh_auth_load_public_keys(&sh_conf.auth, sh_conf.auth.public_keys_file, err, errlen) != 0)
            return -1;
    } else if (needs_auth) {
        snprintf(err, errlen, "PL_JWT_PUBLIC_KEYS_FILE is required: %s has routes that need a token", svc->name);
        return -1;
    }
    return 0;
}

/* Hands each layer its part of the configuration. */
static void sh_configure_layers(void)
{
    sh_dispatch_configure(&sh_conf.dispatch);
    sh_budget_configure(&sh_conf.budget);
    sh_idem_configure(&sh_conf.idem);
    sh_invoke_configure(&sh_conf.invoke);
    sh_auth_configure(&sh_conf.auth);
}

/* SIGHUP in the master: read the public keys (and the service's own files)
 * again, so that keys can be rotated without a restart; the new workers fork
 * with them. On any error the old ones stay and the error is logged. */
static void sh_service_reload(void *ctx)
{
    (void)ctx;
    char err[512];
    sh_auth_config old = *sh_auth_config_get();
    if (old.public_keys_file != NULL) {
        sh_auth_config fresh = old;
        if (sh_auth_load_public_keys(&fresh, old.public_keys_file, err, sizeof(err)) != 0) {
            sh_log_msgf(SH_LOG_ERROR, "reload_failed", "keeping the old keys: %s", err);
            return;
        }
        sh_auth_configure(&fresh);
    }
    if (sh_svc->reload != NULL && sh_svc->reload() != 0) {
        sh_auth_configure(&old);
        return;
    }
    sh_log_msgf(SH_LOG_INFO, "config_reloaded", "%d public key(s)", sh_auth_config_get()->nkeys);
}

/* Prints every table of settings with print (--help, --print-defaults, --config-reference). */
static void sh_print_rows(const sh_service *svc, void (*print)(FILE *, const sh_conf_row *))
{
    sh_conf_table tables[SH_CONF_TABLES_MAX];
    size_t n = sh_conf_tables(svc, tables);
    for (size_t i = 0; i < n; i++)
        print(stdout, tables[i].rows);
}

/* --print-routes: the whole route table as data, test routes included (each
 * with its flags), without reading any configuration or starting anything:
 * {"service", "routes": [...]} (sh_router_to_json). The build makes the
 * OpenAPI document's requests from it (tools/openapi). Returns the exit status. */
static int sh_print_routes(const sh_service *svc)
{
    char err[512];
    sh_router router;
    sh_route *routes = sh_build_routes(svc, true);
    int rc = 1;
    if (sh_router_init(&router, routes, err, sizeof(err)) != 0) {
        fprintf(stderr, "pl-%s: route table error: %s\n", svc->name, err);
    } else {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "service", json_object_new_string(svc->name));
        json_object_object_add(o, "routes", sh_router_to_json(&router));
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        rc = text != NULL && printf("%s\n", text) >= 0 && fflush(stdout) == 0 ? 0 : 1;
        json_object_put(o);
        sh_router_free(&router);
    }
    for (int i = 0; i < sh_builtin_count; i++)
        free((char *)routes[i].pattern);
    free(routes);
    return rc;
}

static void sh_print_help(const sh_service *svc)
{
    printf("pl-%s: the %s service of Pilotlight (a FastCGI worker pool)\n\n"
           "usage: pl-%s [--help | --check-config | --print-defaults | --config-reference | --print-routes]\n\n"
           "Configured by environment variables:\n",
           svc->name, svc->name, svc->name);
    sh_print_rows(svc, sh_config_print_help);
}

/* An integer file descriptor from the environment (set by the supervisor
 * only), or -1 when the variable is absent; the variable is removed so that
 * nothing started later inherits it. */
static int sh_env_fd(const char *name)
{
    const char *v = getenv(name);
    int64_t fd = -1;
    if (v != NULL && sh_parse_int64(v, strlen(v), 0, 1 << 20, &fd) != 0)
        fd = -1;
    unsetenv(name);
    return (int)fd;
}

/* A pid from the environment (the supervisor's own variables), or 0; the
 * variable is removed, as with sh_env_fd. */
static int sh_env_pid(const char *name)
{
    const char *v = getenv(name);
    int64_t pid = 0;
    if (v != NULL && sh_parse_int64(v, strlen(v), 1, INT32_MAX, &pid) != 0)
        pid = 0;
    unsetenv(name);
    return (int)pid;
}

/* The listening socket, and this process's part: a fresh start opens it and
 * (PL_SUPERVISE=1) becomes the supervisor, forking the master; a swap's new
 * master (PL_LISTEN_FD + PL_READY_FD from the supervisor) adopts it and sets
 * *ready_fd; a supervisor that has just exec'd itself into a new release
 * (PL_SUPERVISOR_RESUME) goes on supervising; one started for a master whose
 * supervisor died (PL_ADOPT_MASTER) takes the socket from it and swaps in a
 * new master. Returns the socket in the
 * master, -1 when it cannot be had. The listening socket is opened before the
 * supervisor forks, and every master inherits it: connections made while a
 * master is replaced wait in its backlog, and no master ever binds it again. */
static int sh_service_socket(char **argv, int *ready_fd)
{
    int master = sh_env_pid("PL_SUPERVISOR_RESUME");
    int orphan = sh_env_pid("PL_ADOPT_MASTER");
    int inherited = sh_env_fd("PL_LISTEN_FD");
    *ready_fd = sh_env_fd("PL_READY_FD");
    int fd = inherited >= 0 ? sh_pool_adopt(&sh_conf.pool, inherited)
             : orphan > 0   ? sh_pool_take_listener(&sh_conf.pool, orphan)
                            : sh_pool_listen(&sh_conf.pool);
    if (fd < 0 || *ready_fd >= 0 || !sh_conf.supervise)
        return fd; /* a swap's new master, or an unsupervised one */
    sh_supervise_config sc = {.service = sh_svc->name,
                              .argv = argv,
                              .listen_fd = fd,
                              .pid_file = sh_conf.supervisor_pid_file,
                              .swap_status_file = sh_conf.swap_status_file,
                              .swap_timeout_ms = sh_conf.swap_timeout_ms};
    /* returns in a master: the first, or one restarted after its predecessor died */
    if (master > 0)
        sh_supervise_resume(&sc, master);
    else if (orphan > 0)
        sh_supervise_adopt(&sc, orphan);
    else
        sh_supervise(&sc);
    return fd;
}

int sh_service_main(int argc, char **argv, const sh_service *svc)
{
    sh_svc = svc;
    sh_log_init(svc->name, SH_LOG_INFO);
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            sh_print_help(svc);
            return 0;
        }
        if (strcmp(argv[i], "--print-defaults") == 0) {
            sh_print_rows(svc, sh_config_print_defaults);
            return 0;
        }
        if (strcmp(argv[i], "--config-reference") == 0) {
            sh_print_rows(svc, sh_config_print_markdown);
            return 0;
        }
        if (strcmp(argv[i], "--print-routes") == 0)
            return sh_print_routes(svc);
        if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
            continue;
        }
        fprintf(stderr, "pl-%s: unknown argument %s (try --help)\n", svc->name, argv[i]);
        return 2;
    }

    char err[512];
    if (sh_load_config(svc, err, sizeof(err)) != 0) {
        sh_log_msg(SH_LOG_ERROR, "config_error", err);
        fprintf(stderr, "pl-%s: configuration error: %s\n", svc->name, err);
        return 1;
    }
    /* A fault belongs to the binary started with it (a release's wrapper sets
     * it): the masters this process forks keep it, a release it execs later
     * does not inherit it. */
    unsetenv("PL_TEST_FAULT");
    sh_log_init(svc->name, (sh_log_level)sh_conf.log_level);
    if (!check_only && sh_conf.log_file != NULL && sh_log_open(sh_conf.log_file) != 0) {
        fprintf(stderr, "pl-%s: cannot open the log file %s: %s\n", svc->name, sh_conf.log_file, strerror(errno));
        return 1;
    }
    if (sh_conf.pool.listen == NULL) {
        fprintf(stderr, "pl-%s: configuration error: PL_LISTEN is required (unix:/path or host:port)\n", svc->name);
        return 1;
    }
    sh_route *routes = sh_build_routes(svc, sh_conf.test_routes);
    if (sh_router_init(&sh_svc_router, routes, err, sizeof(err)) != 0) {
        sh_log_msg(SH_LOG_ERROR, "config_error", err);
        fprintf(stderr, "pl-%s: route table error: %s\n", svc->name, err);
        return 1;
    }
    if (check_only) {
        printf("pl-%s: configuration is valid (%d routes)\n", svc->name, sh_svc_router.nroutes);
        return 0;
    }
    sh_configure_layers();
    sh_invoke_on_wait(sh_pool_worker_waiting);
    if (sh_svc_needs_auth)
        sh_auth_on_revocation_fetch(svc->revocations_fetch ? svc->revocations_fetch : sh_service_fetch_revocations);
    /* The listening socket is opened before the supervisor forks, and every
     * master it starts inherits it: connections made while a killed master is
     * replaced wait in its backlog, and a new master never meets the socket
     * still held by the old master's draining workers (it would take it for
     * another running pool's and give up). */
    int ready_fd = -1;
    int fd = sh_service_socket(argv, &ready_fd);
    if (fd < 0)
        return 1;

    /* Everything a worker needs is loaded here, once, so that a fork is all a
     * cold start costs (but libcurl: see sh_curl.h). */
    if (sodium_init() < 0 || mysql_library_init(0, NULL, NULL) != 0 || FCGX_Init() != 0) {
        sh_log_msg(SH_LOG_ERROR, "startup_failed", "library initialisation failed");
        return 1;
    }
    if ((svc->calls_out_per_request || sh_conf.invoke.socket_dir == NULL) && sh_curl() == NULL)
        return 1; /* logged */
    if (svc->setup != NULL && svc->setup() != 0)
        return 1;
    if (sh_rate_share() != 0) {
        sh_log_msg(SH_LOG_ERROR, "startup_failed", "cannot map the rate limit table");
        return 1;
    }
    if (sh_svc_needs_auth && sh_auth_revocations_share() != 0) {
        sh_log_msg(SH_LOG_ERROR, "startup_failed", "cannot map the revocation table");
        return 1;
    }
    sh_auth_signal_open(); /* a failure is logged: the pool polls the feed */

    /* max_children working, as many more waiting on invocations, and a
     * generation being replaced (reload) beside them */
    int nslots = (int)sh_conf.pool.max_children * 3;
    sh_scoreboard *sb =
        sh_sb_create(svc->name, nslots, (int)sh_conf.pool.max_children, sh_pool_mode_names[sh_conf.pool.mode]);
    if (sb == NULL) {
        sh_log_msg(SH_LOG_ERROR, "startup_failed", "cannot map the scoreboard");
        return 1;
    }
    for (int i = 0; i < sh_svc_router.nroutes; i++)
        sh_sb_add_handler(sb, routes[i].name);

    sh_service_read_release();
    sh_svc_swapped_in = ready_fd >= 0;
    if (!sh_svc_swapped_in && sh_conf.pid_file != NULL && sh_pid_file_write(sh_conf.pid_file) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "startup_failed", "cannot write pid file %s", sh_conf.pid_file);
        return 1;
    }
    sh_pool_callbacks cb = {.ctx = NULL,
                            .worker_init = sh_service_worker_init,
                            .serve = sh_service_serve_connection,
                            .worker_exit = sh_service_worker_exit,
                            .reload = sh_service_reload,
                            .self_check = sh_service_self_check,
                            .ready = sh_service_ready,
                            .on_wake = svc->on_wake != NULL ? sh_service_on_wake : NULL,
                            .serve_status = sh_service_serve_status,
                            .standby_open = sh_conf.db_standby ? sh_service_standby_open : NULL,
                            .standby_close = sh_service_standby_close};
    int rc = sh_pool_run(&sh_conf.pool, fd, ready_fd, sb, &cb);
    if (sh_conf.pid_file != NULL)
        sh_pid_file_remove(sh_conf.pid_file); /* unless a newer master's pid is there */
    sh_router_free(&sh_svc_router);
    for (int i = 0; i < sh_builtin_count; i++)
        free((char *)routes[i].pattern);
    free(routes);
    sh_sb_destroy(sb);
    mysql_library_end();
    return rc;
}

int sh_service_command(const sh_service *svc, int (*fn)(sh_req *req, void *arg), void *arg)
{
    sh_svc = svc;
    sh_log_init(svc->name, SH_LOG_WARN);
    char err[512];
    if (sh_load_config(svc, err, sizeof(err)) != 0) {
        fprintf(stderr, "pl-%s: configuration error: %s\n", svc->name, err);
        return 1;
    }
    sh_configure_layers();
    if (sodium_init() < 0 || mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "pl-%s: library initialisation failed\n", svc->name);
        return 1;
    }
    if (sh_service_worker_init(NULL) != 0)
        return 1;
    sh_req req;
    memset(&req, 0, sizeof(req));
    req.arena = sh_worker_arena;
    req.request_id = "command";
    req.method = "COMMAND";
    req.path = "";
    req.query = "";
    sh_db_request_begin(sh_worker_db);
    int rc = fn(&req, arg);
    sh_req_run_deferred(&req);
    sh_arena_reset(sh_worker_arena);
    sh_service_worker_exit(NULL);
    mysql_library_end();
    return rc;
}
