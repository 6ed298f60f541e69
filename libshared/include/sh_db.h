/* sh_db.h: MySQL for handlers. One connection per worker, opened lazily; every
 * statement is registered once per worker (in the service's worker-init hook),
 * prepared on first use and only bound and executed per request. Results are
 * read whole into the request's arena. A lost server shows as 503
 * database_unavailable, and the next request reconnects by itself.
 *
 * Several servers (PL_DB_HOSTS, a Galera cluster's nodes): a worker uses the
 * first one in the list that accepts it and is ready (a Galera node that is
 * Synced), moves on to the next when it cannot connect, and moves back to an
 * earlier one when it is ready again (looked at before the first statement of
 * a request, at most once a second): so every worker of every service writes
 * through the same node, except in the moments a node goes or comes back. A failure that a
 * fresh run of the request may cure (a deadlock or a Galera certification
 * conflict, a connection lost inside a transaction) is counted
 * (sh_db_conflicts): the dispatcher runs the handler again.
 * Layer 2 of libshared (db); see docs/architecture.md. */
#ifndef SH_DB_H
#define SH_DB_H

#include "sh_config.h"
#include "sh_req.h"

typedef struct sh_db sh_db;

typedef struct {
    const char *socket; /* unix socket path, or NULL to use host/port */
    const char *hosts;  /* "host[:port] host[:port]..." (PL_DB_HOSTS), or NULL to use host/port */
    const char *host;
    int64_t port;
    const char *name; /* schema */
    const char *user;
    const char *password;
    int64_t connect_timeout_ms;
    int64_t query_timeout_ms;
    int64_t retries; /* runs again of a request after a conflict (PL_DB_RETRIES) */
} sh_db_config;

/* The PL_DB_* settings as config rows over an sh_db_config: the one place their
 * names, defaults and bounds are written (services and pl-migrate load them). */
extern const sh_conf_row sh_db_conf_rows[];

/* One server of PL_DB_HOSTS. */
#define SH_DB_MAX_HOSTS 16
typedef struct {
    char host[256];
    unsigned port;
} sh_db_host;

/* Parses a PL_DB_HOSTS list (entries host, host:port or [v6]:port, separated
 * by spaces or commas; the port defaults to default_port) into out. Returns the
 * number of entries (at least 1), or -1 with the reason in err. */
int sh_db_hosts_parse(const char *spec, unsigned default_port, sh_db_host *out, int max, char *err, size_t errlen);
/* The checks of the loaded PL_DB_* settings that no single row can make (a
 * host list that parses; a socket and a host list are not both given): 0, or
 * -1 with the reason in err. Call after sh_config_load(sh_db_conf_rows, ...). */
int sh_db_config_check(const sh_db_config *cfg, char *err, size_t errlen);

/* One row: column values as NUL-terminated strings in the arena (NULL for SQL NULL). */
typedef struct {
    char **values;
    unsigned long *lengths;
} sh_row;

typedef struct {
    int nrows;
    int ncols;
    sh_row *rows;
    uint64_t affected_rows;
    uint64_t insert_id;
} sh_result;

/* Creates the (unconnected) per-worker handle. The config must outlive it. */
sh_db *sh_db_create(const sh_db_config *cfg);
void sh_db_destroy(sh_db *db);
/* Registers a statement; returns its id for sh_db_query. Call in worker init. */
int sh_db_register(sh_db *db, const char *sql);

/* A standby session, for a pool's master while it has no worker: connects db
 * (to PL_DB_SOCKET, PL_DB_HOST, or the first entry of PL_DB_HOSTS when it is
 * a Synced Galera node) and prepares the statements registered, so that the
 * worker forked next inherits a session ready to use and a cold start makes no
 * connection. Made with libmariadb's non-blocking calls, all within 250 ms: a
 * server that stalls costs the master no more (then -1). stop (may be NULL) is
 * asked before each prepare: true (a connection waits for a worker) ends the
 * preparing there, and the rest are prepared on first use. A TCP session gets
 * keepalive (30 s idle, 3 probes 10 s apart), so that one cut silently turns
 * into a hang-up the master sees. 0, or -1 with db unconnected (logged as
 * standby_failed). */
int sh_db_standby(sh_db *db, bool (*stop)(void));
/* The session's socket, to watch for the server closing it (readable or
 * hung up while idle), or -1 when db is not connected. */
int sh_db_socket(const sh_db *db);
/* Frees db without a word to the server: for the master right after it forked
 * a worker that inherited db's session (which the worker now uses). The
 * master's copy of the socket is first pointed at /dev/null, so nothing the
 * client library sends on closing reaches the server. */
void sh_db_forget(sh_db *db);

/* The worker's handle (set by the service runtime). */
sh_db *sh_db_worker(void);
void sh_db_set_worker(sh_db *db);

/* Marks a request boundary: the first use in a request checks the connection. */
void sh_db_request_begin(sh_db *db);

/* Executes registered statement `stmt` with parameters described by `types`:
 *   'i' int64_t   's' const char * (NULL gives SQL NULL)   'S' const char *, size_t
 *   'b' bool (as int)   'n' SQL NULL (no argument)
 * Fills *res (may be NULL for statements without rows). Returns 0 or -1. */
int sh_db_query(sh_req *req, int stmt, sh_result *res, const char *types, ...);

/* Transactions on the worker's connection. A transaction still open when the
 * request ends is rolled back. A begin inside a transaction opens a nested
 * one that lives in the outer: its commit only closes it (the outer commits
 * it, or not), and a rollback at any depth rolls back the whole. (The
 * dispatcher runs an idempotent request's handler inside a transaction of its
 * own: sh_idempotency.h.) */
int sh_db_begin(sh_req *req);
/* Whether the worker's connection is inside a transaction now. */
bool sh_db_in_transaction(void);
/* How many nested transactions are open inside the current one (0 outside). */
int sh_db_nested(void);
/* Runs fn(arg) right after the open transaction commits (the outermost
 * COMMIT; before the answer is sent), never when it rolls back; outside a
 * transaction, now. At most SH_DB_ON_COMMIT_MAX per transaction: 0, or -1
 * when full (fn is not run). */
#define SH_DB_ON_COMMIT_MAX 8
typedef void (*sh_db_commit_fn)(void *arg);
int sh_db_on_commit(sh_req *req, sh_db_commit_fn fn, void *arg);
int sh_db_commit(sh_req *req);
void sh_db_rollback(sh_req *req);

/* The MySQL error number of the last failure (ER_DUP_ENTRY = 1062...). */
unsigned sh_db_errno(void);
/* Counters over the worker's life, for the dispatcher to tell whether a
 * request may be run again: failures a new run may cure (a deadlock, a Galera
 * certification conflict, a connection lost inside a transaction before its
 * COMMIT), and writes committed (a COMMIT, or a statement outside a
 * transaction that changed rows). A request whose run saw a conflict and
 * committed nothing changed nothing. */
unsigned sh_db_conflicts(void);
unsigned sh_db_commits(void);
/* PL_DB_RETRIES of the worker's handle (0 without one). */
int sh_db_retries(void);
/* True when the last failure was the server being unreachable. */
bool sh_db_unavailable(void);
/* Answers the last failure: 503 database_unavailable or 500 internal_error. */
int sh_db_reply_error(sh_req *req);
/* Checks the server (connecting if needed): 0 when reachable. The connection's
 * socket is checked every time; a round trip (PING) is made when the server
 * has not answered one for a second. */
int sh_db_ping(sh_req *req);

/* Answers 200 with one page of a list, cursor pagination: {"<key>": [...],
 * "next_cursor": "..." or null}. r holds up to limit + 1 rows in ascending id
 * order, the id in column 0, as "... WHERE id > ? ORDER BY id LIMIT limit+1"
 * reads them after a cursor's id (sh_param_int(req, "cursor", 0) of a
 * SH_QUERY_CURSOR parameter): the extra row only says that more follow. Each
 * row shown is to_json(row, ctx). Returns the status sent. */
typedef json_object *(*sh_row_json_fn)(const sh_row *row, const void *ctx);
int sh_reply_page(sh_req *req, const char *key, const sh_result *r, int64_t limit, sh_row_json_fn to_json,
                  const void *ctx);

/* Row accessors. */
const char *sh_row_str(const sh_row *row, int col);
int64_t sh_row_int(const sh_row *row, int col);
bool sh_row_is_null(const sh_row *row, int col);

#endif
