/* db.c: the worker's MySQL connection and its registered prepared statements. */
#include "sh_db.h"
#include "sh_codec.h"
#include "sh_log.h"

#include <errno.h>
#include <fcntl.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define D(field) offsetof(sh_db_config, field)
const sh_conf_row sh_db_conf_rows[] = {
    {"PL_DB_SOCKET", SH_CONF_STRING, D(socket), NULL, 0, 0, NULL, 0, "MySQL unix socket (used instead of host/port)"},
    {"PL_DB_HOSTS", SH_CONF_STRING, D(hosts), NULL, 0, 0, NULL, 0,
     "several MySQL servers (a Galera cluster's nodes), in order of preference: host[:port] entries separated by "
     "spaces or commas; every worker uses the first that is ready and moves on when it fails (used instead of "
     "host/port)"},
    {"PL_DB_HOST", SH_CONF_STRING, D(host), "127.0.0.1", 0, 0, NULL, 0, "MySQL host"},
    {"PL_DB_PORT", SH_CONF_INT, D(port), "3306", 1, 65535, NULL, 0, "MySQL port"},
    {"PL_DB_NAME", SH_CONF_STRING, D(name), NULL, 0, 0, NULL, 0, "schema (default: the service name)"},
    {"PL_DB_USER", SH_CONF_STRING, D(user), NULL, 0, 0, NULL, 0, "MySQL user (default: the service name)"},
    {"PL_DB_PASSWORD", SH_CONF_SECRET, D(password), NULL, 0, 0, NULL, 0, "MySQL password"},
    {"PL_DB_CONNECT_TIMEOUT_MS", SH_CONF_INT, D(connect_timeout_ms), "2000", 1, 60000, NULL, 0,
     "MySQL connect timeout"},
    {"PL_DB_QUERY_TIMEOUT_MS", SH_CONF_INT, D(query_timeout_ms), "10000", 1, 600000, NULL, 0,
     "MySQL read/write timeout"},
    {"PL_DB_RETRIES", SH_CONF_INT, D(retries), "3", 0, 10, NULL, 0,
     "a request whose transaction failed on a deadlock or a Galera certification conflict (or lost its "
     "connection before COMMIT) and committed nothing is run again, up to this many times"},
    SH_CONF_END,
};
#undef D

#define SH_DB_MAX_BIND 24

typedef struct {
    char *sql;
    MYSQL_STMT *stmt; /* NULL until first use on the current connection */
} sh_db_stmt;

struct sh_db {
    const sh_db_config *cfg;
    sh_db_host hosts[SH_DB_MAX_HOSTS]; /* PL_DB_HOSTS, in order of preference */
    int nhosts;                        /* 0: PL_DB_SOCKET or PL_DB_HOST/PL_DB_PORT */
    int current;                       /* the entry of hosts connected to */
    int64_t failback_at_us;            /* when to look at the entries before current again */
    MYSQL *conn;
    sh_db_stmt *stmts;
    int nstmts;
    int cap;
    bool checked; /* connection verified in this request */
    bool in_tx;
    int nested;          /* begins inside the transaction not yet committed */
    bool broken;         /* a connection error was seen: reconnect before the next use */
    int64_t alive_at_us; /* when the server last answered a connect or a ping */
    struct {
        sh_db_commit_fn fn;
        void *arg;
    } on_commit[SH_DB_ON_COMMIT_MAX]; /* for the open transaction */
    int non_commit;
};

/* How long a health check trusts a server that answered (see sh_db_ping). */
#define SH_DB_PING_INTERVAL_US 1000000
/* How often a worker that moved past the first usable server of PL_DB_HOSTS
 * looks, before the first statement of a request, whether an earlier one is
 * ready again: every worker converges on the same node within about this. */
#define SH_DB_FAILBACK_US 1000000
/* A server of PL_DB_HOSTS that does not take a TCP connection within this is
 * passed over without waiting PL_DB_CONNECT_TIMEOUT_MS for it (a host that
 * vanished answers nothing; one whose server stopped refuses at once). */
#define SH_DB_REACH_MS 200

static sh_db *sh_db_current;
static unsigned sh_db_last_errno;
static bool sh_db_last_unavailable;
static unsigned sh_db_conflict_count; /* see sh_db_conflicts */
static unsigned sh_db_commit_count;   /* see sh_db_commits */

sh_db *sh_db_worker(void) { return sh_db_current; }
void sh_db_set_worker(sh_db *db) { sh_db_current = db; }
unsigned sh_db_errno(void) { return sh_db_last_errno; }
bool sh_db_in_transaction(void) { return sh_db_current != NULL && sh_db_current->in_tx; }
int sh_db_nested(void) { return sh_db_current != NULL && sh_db_current->in_tx ? sh_db_current->nested : 0; }
bool sh_db_unavailable(void) { return sh_db_last_unavailable; }
unsigned sh_db_conflicts(void) { return sh_db_conflict_count; }
unsigned sh_db_commits(void) { return sh_db_commit_count; }
int sh_db_retries(void) { return sh_db_current != NULL ? (int)sh_db_current->cfg->retries : 0; }

/* One entry of a host list: host, host:port or [v6]:port, into *h. */
static int sh_db_host_parse(const char *s, size_t len, unsigned default_port, sh_db_host *h, char *err, size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t hlen = len;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || (close + 1 < s + len && close[1] != ':')) {
            snprintf(err, errlen, "PL_DB_HOSTS: '%.*s' is not [address] or [address]:port", (int)len, s);
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        port = close + 1 < s + len ? close + 2 : NULL;
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon != NULL) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    bool ok = hlen > 0 && hlen < sizeof(h->host);
    for (size_t i = 0; ok && i < hlen; i++)
        ok = (host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
             (host[i] >= '0' && host[i] <= '9') || host[i] == '.' || host[i] == '-' || host[i] == '_' ||
             (s[0] == '[' && host[i] == ':');
    if (!ok) {
        snprintf(err, errlen, "PL_DB_HOSTS: '%.*s' is not a host name or address", (int)len, s);
        return -1;
    }
    memcpy(h->host, host, hlen);
    h->host[hlen] = '\0';
    h->port = default_port;
    if (port != NULL) {
        size_t plen = (size_t)(s + len - port);
        unsigned v = 0;
        ok = plen > 0 && plen <= 5;
        for (size_t i = 0; ok && i < plen; i++) {
            ok = port[i] >= '0' && port[i] <= '9';
            v = v * 10 + (unsigned)(port[i] - '0');
        }
        if (!ok || v == 0 || v > 65535) {
            snprintf(err, errlen, "PL_DB_HOSTS: '%.*s' has no valid port (1-65535)", (int)len, s);
            return -1;
        }
        h->port = v;
    }
    return 0;
}

int sh_db_hosts_parse(const char *spec, unsigned default_port, sh_db_host *out, int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = spec != NULL ? spec : "";
    for (;;) {
        p += strspn(p, " ,\t");
        if (*p == '\0')
            break;
        size_t len = strcspn(p, " ,\t");
        if (n == max) {
            snprintf(err, errlen, "PL_DB_HOSTS: more than %d servers", max);
            return -1;
        }
        if (sh_db_host_parse(p, len, default_port, &out[n], err, errlen) != 0)
            return -1;
        n++;
        p += len;
    }
    if (n == 0) {
        snprintf(err, errlen, "PL_DB_HOSTS names no server");
        return -1;
    }
    return n;
}

int sh_db_config_check(const sh_db_config *cfg, char *err, size_t errlen)
{
    if (cfg->hosts == NULL)
        return 0;
    if (cfg->socket != NULL) {
        snprintf(err, errlen, "PL_DB_SOCKET and PL_DB_HOSTS exclude each other: give one");
        return -1;
    }
    sh_db_host hosts[SH_DB_MAX_HOSTS];
    return sh_db_hosts_parse(cfg->hosts, (unsigned)cfg->port, hosts, SH_DB_MAX_HOSTS, err, errlen) < 0 ? -1 : 0;
}

sh_db *sh_db_create(const sh_db_config *cfg)
{
    sh_db *db = sh_xcalloc(1, sizeof(*db));
    db->cfg = cfg;
    if (cfg->hosts != NULL) {
        char err[256];
        db->nhosts = sh_db_hosts_parse(cfg->hosts, (unsigned)cfg->port, db->hosts, SH_DB_MAX_HOSTS, err, sizeof(err));
        if (db->nhosts < 0) /* sh_db_config_check refused it at start */
            sh_fatal("%s", err);
    }
    return db;
}

static void sh_db_disconnect(sh_db *db)
{
    for (int i = 0; i < db->nstmts; i++) {
        if (db->stmts[i].stmt != NULL)
            mysql_stmt_close(db->stmts[i].stmt);
        db->stmts[i].stmt = NULL;
    }
    if (db->conn != NULL)
        mysql_close(db->conn);
    db->conn = NULL;
    db->in_tx = false;
    db->nested = 0;
    db->non_commit = 0;
}

void sh_db_destroy(sh_db *db)
{
    if (db == NULL)
        return;
    sh_db_disconnect(db);
    for (int i = 0; i < db->nstmts; i++)
        free(db->stmts[i].sql);
    free(db->stmts);
    free(db);
}

int sh_db_register(sh_db *db, const char *sql)
{
    if (db->nstmts == db->cap) {
        db->cap = db->cap ? db->cap * 2 : 16;
        sh_db_stmt *grown = realloc(db->stmts, (size_t)db->cap * sizeof(*grown));
        if (grown == NULL)
            sh_fatal("out of memory registering statements");
        db->stmts = grown;
    }
    db->stmts[db->nstmts].sql = sh_xstrdup(sql);
    db->stmts[db->nstmts].stmt = NULL;
    return db->nstmts++;
}

void sh_db_request_begin(sh_db *db)
{
    if (db != NULL) {
        db->checked = false;
        if (db->broken) {
            sh_db_disconnect(db);
            db->broken = false;
        }
    }
}

static bool sh_db_is_connection_error(unsigned err)
{
    switch (err) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_UNKNOWN_HOST:
    case CR_COMMANDS_OUT_OF_SYNC:
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_UNKNOWN_COM_ERROR: /* Galera: this node left the cluster's primary component ("WSREP has not
                                  yet prepared node for application use"): go to another */
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8) */ return true;
    default: return err >= 2000 && err < 3000; /* client library errors: the link is unusable */
    }
}

/* Records a failure; a connection failure drops the link so the next use
 * reconnects. A deadlock (InnoDB's, or a Galera certification conflict, which
 * MariaDB reports as one) and a connection lost inside a transaction (not on
 * its COMMIT, whose outcome is then unknown) are conflicts: nothing of the
 * transaction stays, and running the request again may succeed. */
static int sh_db_fail(sh_db *db, unsigned err, const char *msg, const char *sql)
{
    sh_db_last_errno = err;
    sh_db_last_unavailable = sh_db_is_connection_error(err);
    if (err == ER_LOCK_DEADLOCK || (sh_db_last_unavailable && db != NULL && db->in_tx))
        sh_db_conflict_count++;
    if (sh_db_last_unavailable) {
        sh_log_msgf(SH_LOG_WARN, "db_unavailable", "MySQL error %u: %s", err, msg);
        if (db != NULL)
            db->broken = true; /* statements may still be in use up the stack */
    } else if (err == ER_LOCK_DEADLOCK) {
        sh_log_msgf(SH_LOG_WARN, "db_conflict", "MySQL error %u: %s", err, msg);
    } else if (err != ER_DUP_ENTRY) {
        sh_logline l; /* a lock wait given up is a contention, not a fault */
        sh_log_begin(&l, err == ER_LOCK_WAIT_TIMEOUT ? SH_LOG_WARN : SH_LOG_ERROR, "db_error");
        sh_log_int(&l, "mysql_errno", err);
        sh_log_str(&l, "msg", msg);
        sh_log_str(&l, "sql", sql);
        sh_log_end(&l);
    }
    return -1;
}

/* A handle with every session setting of ours, not yet connected; NULL when
 * out of memory. */
static MYSQL *sh_db_handle(const sh_db_config *c)
{
    MYSQL *conn = mysql_init(NULL);
    if (conn == NULL)
        return NULL;
    unsigned connect_s = (unsigned)((c->connect_timeout_ms + 999) / 1000);
    unsigned query_s = (unsigned)((c->query_timeout_ms + 999) / 1000);
    my_bool no = 0;
    mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &query_s);
    mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &query_s);
    mysql_options(conn, MYSQL_OPT_RECONNECT, &no);
    mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(conn, MYSQL_INIT_COMMAND,
                  "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,"
                  "NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'");
    return conn;
}

/* Opens a connection to one server (host and port, or the socket): the
 * connection, or NULL with sh_db_last_errno set and the failure logged. */
static MYSQL *sh_db_open(const sh_db_config *c, const char *host, unsigned port)
{
    MYSQL *conn = sh_db_handle(c);
    if (conn == NULL) {
        sh_db_last_errno = CR_OUT_OF_MEMORY;
        sh_db_last_unavailable = true;
        return NULL;
    }
    if (mysql_real_connect(conn, c->socket ? NULL : host, c->user, c->password, c->name, c->socket ? 0 : port,
                           c->socket, CLIENT_FOUND_ROWS) == NULL) {
        unsigned err = mysql_errno(conn);
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", mysql_error(conn));
        mysql_close(conn);
        sh_db_last_errno = err;
        /* Any failure to connect (refused, access denied, unknown schema) is the
         * dependency being unavailable from the request's point of view. */
        sh_db_last_unavailable = true;
        sh_log_msgf(SH_LOG_WARN, "db_unavailable", "connect to %s failed (%u): %s", c->socket ? c->socket : host, err,
                    msg);
        return NULL;
    }
    return conn;
}

/* Whether a server of PL_DB_HOSTS may take requests: a Galera node only when
 * it is Synced (a joiner, a donor or a node outside the primary component is
 * skipped); any other server (@@wsrep_on 0, or unknown: MySQL) always. One
 * query, for sh_db_node_ready and the standby's non-blocking check alike:
 * SH_DB_READY_SQL, then sh_db_ready_answer on its error or its row. */
static const char SH_DB_READY_SQL[] = "SELECT @@wsrep_on, (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                                      "WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE')";

static bool sh_db_ready_answer(unsigned err, MYSQL_ROW row)
{
    if (err != 0)
        return err == ER_UNKNOWN_SYSTEM_VARIABLE; /* not a MariaDB with Galera */
    return row != NULL && row[0] != NULL &&
           (strcmp(row[0], "1") != 0 || (row[1] != NULL && strcmp(row[1], "4") == 0)); /* 4: Synced */
}

static bool sh_db_node_ready(MYSQL *conn, const char *host)
{
    bool ready;
    if (mysql_real_query(conn, SH_DB_READY_SQL, sizeof(SH_DB_READY_SQL) - 1) != 0) {
        ready = sh_db_ready_answer(mysql_errno(conn), NULL);
    } else {
        MYSQL_RES *r = mysql_store_result(conn);
        ready = r != NULL && sh_db_ready_answer(0, mysql_fetch_row(r));
        mysql_free_result(r);
    }
    if (!ready)
        sh_log_msgf(SH_LOG_WARN, "db_node_not_ready", "%s is not a Synced Galera node: skipped", host);
    return ready;
}

/* Whether host:port takes a TCP connection within SH_DB_REACH_MS. */
static bool sh_db_reachable(const sh_db_host *h)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", h->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    if (getaddrinfo(h->host, port, &hints, &res) != 0)
        return false;
    bool ok = false;
    for (struct addrinfo *a = res; a != NULL && !ok; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            ok = true;
        } else if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t len = sizeof(err);
            ok = poll(&p, 1, SH_DB_REACH_MS) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return ok;
}

/* Connects to the first of hosts[0..upto) that accepts and is ready (each but
 * the last of the list only when it is reachable at once): its index with
 * *out set, or -1. */
static int sh_db_open_first(sh_db *db, int upto, MYSQL **out)
{
    for (int i = 0; i < upto; i++) {
        if (i < db->nhosts - 1 && !sh_db_reachable(&db->hosts[i])) {
            sh_log_msgf(SH_LOG_WARN, "db_unavailable", "%s:%u does not answer: skipped", db->hosts[i].host,
                        db->hosts[i].port);
            sh_db_last_errno = CR_CONN_HOST_ERROR;
            sh_db_last_unavailable = true;
            continue;
        }
        MYSQL *conn = sh_db_open(db->cfg, db->hosts[i].host, db->hosts[i].port);
        if (conn == NULL)
            continue;
        if (sh_db_node_ready(conn, db->hosts[i].host)) {
            *out = conn;
            return i;
        }
        mysql_close(conn);
        sh_db_last_errno = CR_CONNECTION_ERROR;
        sh_db_last_unavailable = true;
    }
    return -1;
}

static int sh_db_connect(sh_db *db)
{
    const sh_db_config *c = db->cfg;
    MYSQL *conn = NULL;
    if (db->nhosts == 0) {
        if ((conn = sh_db_open(c, c->host, (unsigned)c->port)) == NULL)
            return -1;
        sh_log_msg(SH_LOG_INFO, "db_connect", "connected");
    } else {
        int i = sh_db_open_first(db, db->nhosts, &conn);
        if (i < 0)
            return -1;
        db->current = i;
        db->failback_at_us = sh_now_us() + SH_DB_FAILBACK_US;
        sh_log_msgf(i == 0 ? SH_LOG_INFO : SH_LOG_WARN, "db_connect", "connected to %s:%u (entry %d of PL_DB_HOSTS)",
                    db->hosts[i].host, db->hosts[i].port, i + 1);
    }
    db->conn = conn;
    db->checked = true;
    db->alive_at_us = sh_now_us();
    return 0;
}

/* --- the standby: made with libmariadb's non-blocking calls ---------------------- */

/* Each step of making a standby is waited for with poll(2), all of them
 * within this: a server that stalls (stopped, overloaded, a host gone
 * silent) costs the master at most this, never its connect or query
 * timeout. */
#define SH_DB_STANDBY_MS 250

/* Waits for what a non-blocking call of conn asked for (MYSQL_WAIT_*) until
 * the deadline: what happened, for its _cont, or 0 when the time is up. */
static int sh_db_standby_wait(MYSQL *conn, int status, int64_t deadline_us)
{
    struct pollfd p = {.fd = (int)mysql_get_socket(conn), .events = 0};
    if (status & MYSQL_WAIT_READ)
        p.events |= POLLIN;
    if (status & MYSQL_WAIT_WRITE)
        p.events |= POLLOUT;
    if (status & MYSQL_WAIT_EXCEPT)
        p.events |= POLLPRI;
    for (;;) {
        int64_t left = deadline_us - sh_now_us();
        if (left <= 0)
            return 0;
        int rc = poll(&p, 1, (int)((left + 999) / 1000));
        if (rc < 0 && errno != EINTR)
            return 0;
        if (rc <= 0)
            continue;
        int ev = 0;
        if (p.revents & (POLLIN | POLLHUP | POLLERR))
            ev |= MYSQL_WAIT_READ;
        if (p.revents & (POLLOUT | POLLHUP | POLLERR))
            ev |= MYSQL_WAIT_WRITE;
        if (p.revents & POLLPRI)
            ev |= MYSQL_WAIT_EXCEPT;
        return ev & status ? ev & status : status;
    }
}

/* Runs one non-blocking call to its end: start_expr, then cont_expr (which
 * may use ev_, what happened) until it returns 0; ok is false when the
 * deadline came first. */
#define SH_DB_STANDBY_RUN(ok, conn, deadline, start_expr, cont_expr)                                                   \
    do {                                                                                                               \
        int st_ = (start_expr);                                                                                        \
        while (st_ != 0) {                                                                                             \
            int ev_ = sh_db_standby_wait((conn), st_, (deadline));                                                     \
            if (ev_ == 0)                                                                                              \
                break;                                                                                                 \
            st_ = (cont_expr);                                                                                         \
        }                                                                                                              \
        (ok) = st_ == 0;                                                                                               \
    } while (0)

/* Whether the standby's server may take requests (sh_db_node_ready's
 * question), with the non-blocking calls. */
static bool sh_db_standby_ready(MYSQL *conn, int64_t deadline)
{
    int err = 0;
    MYSQL_RES *r = NULL;
    bool ok;
    SH_DB_STANDBY_RUN(ok, conn, deadline,
                      mysql_real_query_start(&err, conn, SH_DB_READY_SQL, sizeof(SH_DB_READY_SQL) - 1),
                      mysql_real_query_cont(&err, conn, ev_));
    if (!ok)
        return false;
    if (err != 0)
        return sh_db_ready_answer(mysql_errno(conn), NULL);
    SH_DB_STANDBY_RUN(ok, conn, deadline, mysql_store_result_start(&r, conn), mysql_store_result_cont(&r, conn, ev_));
    if (!ok || r == NULL)
        return false;
    bool ready = sh_db_ready_answer(0, mysql_fetch_row(r));
    mysql_free_result(r);
    return ready;
}

/* The most addresses of a host name the standby tries, in getaddrinfo's order. */
#define SH_DB_RESOLVE_MAX 8

/* The standby is made in the pool's master, which must never wait on a name
 * server (its status socket answers liveness probes; a name server that does
 * not answer held one for 30 s): a host name is resolved by a child process,
 * waited for until deadline_us, then killed and reaped. Its numeric addresses
 * (scope included: getnameinfo) go into buf, one a line, at most
 * SH_DB_RESOLVE_MAX; a numeric host, and "localhost" (which libmariadb takes
 * for its socket, as the workers' connections do), go in as they are.
 * 0, or -1 with *why set. */
static int sh_db_resolve_bounded(const char *host, char *buf, size_t len, int64_t deadline_us, const char **why)
{
    unsigned char any[sizeof(struct in6_addr)];
    if (strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, any) == 1 || inet_pton(AF_INET6, host, any) == 1) {
        size_t n = strlen(host);
        if (n >= len)
            return (*why = "an address too long", -1);
        memcpy(buf, host, n + 1);
        return 0;
    }
    int fds[2];
    *why = "cannot resolve its name without waiting (pipe or fork failed)";
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t master = getpid(), pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) { /* the resolver: one lookup, its addresses, then gone */
        /* gone with the master; none of its handlers (they write to its
         * signal pipe), none of its descriptors (its sockets) but the pipe */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != master)
            _exit(1);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL); /* (SIGKILL and SIGSTOP refuse: no matter) */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int w = fds[1] == 3 ? 3 : dup2(fds[1], 3); /* (a dup2 clears O_CLOEXEC) */
        if (w != 3 || close_range(4, ~0U, 0) != 0)
            _exit(1);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
        struct addrinfo *res = NULL;
        char out[SH_DB_RESOLVE_MAX * (NI_MAXHOST + 1)];
        size_t used = 0;
        int n = 0;
        if (getaddrinfo(host, NULL, &hints, &res) == 0) {
            for (struct addrinfo *a = res; a != NULL && n < SH_DB_RESOLVE_MAX; a = a->ai_next) {
                char one[NI_MAXHOST];
                if (getnameinfo(a->ai_addr, a->ai_addrlen, one, sizeof(one), NULL, 0, NI_NUMERICHOST) != 0)
                    continue;
                size_t l = strlen(one);
                memcpy(out + used, one, l);
                out[used + l] = '\n';
                used += l + 1;
                n++;
            }
        }
        ssize_t wrote = used > 0 ? write(w, out, used) : 0;
        _exit(used > 0 && wrote == (ssize_t)used ? 0 : 1);
    }
    close(fds[1]);
    size_t have = 0;
    *why = "its name not resolved within 250 ms";
    for (;;) {
        int64_t left_ms = (deadline_us - sh_now_us()) / 1000;
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int ready = left_ms > 0 ? poll(&p, 1, (int)left_ms) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) /* the time is up (or poll failed): not a moment more */
            break;
        ssize_t n = read(fds[0], buf + have, len - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) /* the end of its answer, or an error */
            break;
        have += (size_t)n;
        if (have == len - 1) /* full: the whole lines are kept */
            break;
    }
    close(fds[0]);
    while (have > 0 && buf[have - 1] != '\n') /* a line cut short is no address */
        have--;
    buf[have] = '\0';
    int status = 0;
    kill(pid, SIGKILL); /* gone already, or still waiting on the name server */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (have == 0) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
            *why = "its name does not resolve";
        return -1;
    }
    return 0;
}

int sh_db_standby(sh_db *db, bool (*stop)(void))
{
    const sh_db_config *c = db->cfg;
    if (db->conn != NULL)
        return 0;
    int64_t deadline = sh_now_us() + SH_DB_STANDBY_MS * 1000;
    const char *host = db->nhosts > 0 ? db->hosts[0].host : c->host;
    unsigned port = db->nhosts > 0 ? db->hosts[0].port : (unsigned)c->port;
    MYSQL *conn = NULL, *ret = NULL;
    const char *why = NULL;
    char addrs[SH_DB_RESOLVE_MAX * (NI_MAXHOST + 1)] = "", err[256];
    if (c->socket == NULL && sh_db_resolve_bounded(host, addrs, sizeof(addrs), deadline, &why) != 0)
        goto failed;
    bool ok = false;
    char *addr = addrs;
    do { /* each address in turn (or the socket), while the time lasts */
        char *end = addr + strcspn(addr, "\n"), *next = *end == '\n' ? end + 1 : end;
        *end = '\0';
        if (conn != NULL)
            mysql_close(conn);
        why = "out of memory";
        if ((conn = sh_db_handle(c)) == NULL)
            goto failed;
        mysql_options(conn, MYSQL_OPT_NONBLOCK, 0); /* the blocking calls still work on it (the worker's) */
        why = "no answer within 250 ms";
        SH_DB_STANDBY_RUN(ok, conn, deadline,
                          mysql_real_connect_start(&ret, conn, c->socket ? NULL : addr, c->user, c->password, c->name,
                                                   c->socket ? 0 : port, c->socket, CLIENT_FOUND_ROWS),
                          mysql_real_connect_cont(&ret, conn, ev_));
        if (!ok)
            goto failed; /* the time is up */
        if (ret == NULL) {
            snprintf(err, sizeof(err), "%s", mysql_error(conn));
            why = err;
        }
        addr = next;
    } while (ret == NULL && *addr != '\0');
    if (ret == NULL)
        goto failed;
    why = "not a Synced Galera node, or no answer within 250 ms";
    if (db->nhosts > 0 && !sh_db_standby_ready(conn, deadline))
        goto failed;
    if (c->socket == NULL) {
        /* A session idle for long may be cut silently (a host gone, a firewall
         * forgetting the flow): keepalive makes that a hang-up within a minute,
         * which the master sees, rather than a worker's first statement waiting
         * for its read timeout. */
        int fd = (int)mysql_get_socket(conn), on = 1, idle = 30, intvl = 10, cnt = 3;
        if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) != 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) != 0)
            sh_log_msgf(SH_LOG_WARN, "standby_keepalive", "setsockopt: %s", strerror(errno));
    }
    /* Every statement, but a connection waiting for a worker comes first: the
     * ones not prepared yet are prepared on first use, as always. */
    for (int i = 0; i < db->nstmts && !(stop != NULL && stop()); i++) {
        MYSQL_STMT *st = mysql_stmt_init(conn);
        int err = 0;
        why = "no answer within 250 ms";
        ok = false;
        if (st != NULL)
            SH_DB_STANDBY_RUN(ok, conn, deadline,
                              mysql_stmt_prepare_start(&err, st, db->stmts[i].sql, strlen(db->stmts[i].sql)),
                              mysql_stmt_prepare_cont(&err, st, ev_));
        if (!ok) {
            if (st != NULL)
                mysql_stmt_close(st);
            goto failed; /* the session is in the middle of a command: of no use */
        }
        if (err != 0) { /* the worker meets (and reports) it when it prepares the statement */
            mysql_stmt_close(st);
            continue;
        }
        my_bool yes = 1;
        mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &yes);
        db->stmts[i].stmt = st;
    }
    db->conn = conn;
    db->current = 0;
    db->failback_at_us = sh_now_us() + SH_DB_FAILBACK_US;
    db->checked = true;
    db->alive_at_us = sh_now_us();
    return 0;

failed:
    sh_log_msgf(SH_LOG_WARN, "standby_failed", "%s: %s", c->socket ? c->socket : host, why ? why : "");
    for (int i = 0; i < db->nstmts; i++) {
        if (db->stmts[i].stmt != NULL)
            mysql_stmt_close(db->stmts[i].stmt);
        db->stmts[i].stmt = NULL;
    }
    if (conn != NULL)
        mysql_close(conn);
    return -1;
}

int sh_db_socket(const sh_db *db) { return db != NULL && db->conn != NULL ? (int)mysql_get_socket(db->conn) : -1; }

void sh_db_forget(sh_db *db)
{
    if (db == NULL)
        return;
    int fd = sh_db_socket(db);
    if (fd >= 0) {
        /* Whatever libmariadb says on closing (COM_STMT_CLOSE, COM_QUIT) goes
         * to /dev/null: the session is the worker's now. */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0 || dup2(null, fd) < 0) {
            sh_log_msgf(SH_LOG_ERROR, "db_forget_failed", "/dev/null: %s: the handle is left unfreed", strerror(errno));
            if (null >= 0)
                close(null);
            close(fd);
            return;
        }
        close(null);
    }
    sh_db_destroy(db);
}

/* Before the first statement of a request, on a worker that is past the
 * first entry of PL_DB_HOSTS: moves to an earlier server that is ready again.
 * Never inside a request that has used the connection (its named locks and
 * session state are there). */
static void sh_db_failback(sh_db *db)
{
    db->failback_at_us = sh_now_us() + SH_DB_FAILBACK_US;
    MYSQL *conn = NULL;
    int i = sh_db_open_first(db, db->current, &conn);
    if (i < 0)
        return;
    sh_db_disconnect(db);
    db->conn = conn;
    db->current = i;
    db->alive_at_us = sh_now_us();
    sh_log_msgf(SH_LOG_INFO, "db_failback", "back on %s:%u (entry %d of PL_DB_HOSTS)", db->hosts[i].host,
                db->hosts[i].port, i + 1);
}

/* Makes sure the link is usable before the first statement of a request: a
 * socket that is readable while we expect nothing means the server closed it
 * (restart, timeout), so we reconnect before sending anything. */
static int sh_db_ready(sh_db *db)
{
    if (db == NULL) {
        sh_db_last_unavailable = true;
        return -1;
    }
    if (db->current > 0 && db->conn != NULL && !db->checked && !db->in_tx && !db->broken &&
        sh_now_us() >= db->failback_at_us)
        sh_db_failback(db);
    if (db->broken) {
        if (db->in_tx) {
            /* never continue a transaction on a new connection */
            sh_db_last_unavailable = true;
            return -1;
        }
        sh_db_disconnect(db);
        db->broken = false;
    }
    if (db->conn != NULL && !db->checked && !db->in_tx) {
        struct pollfd p = {.fd = (int)mysql_get_socket(db->conn), .events = POLLIN | POLLRDHUP};
        if (p.fd < 0 || poll(&p, 1, 0) != 0)
            sh_db_disconnect(db);
    }
    db->checked = true;
    if (db->conn == NULL)
        return sh_db_connect(db);
    return 0;
}

static int sh_db_prepare(sh_db *db, sh_db_stmt *st)
{
    if (st->stmt != NULL)
        return 0;
    MYSQL_STMT *s = mysql_stmt_init(db->conn);
    if (s == NULL)
        return sh_db_fail(db, mysql_errno(db->conn), "mysql_stmt_init failed", st->sql);
    if (mysql_stmt_prepare(s, st->sql, strlen(st->sql)) != 0) {
        unsigned err = mysql_stmt_errno(s);
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", mysql_stmt_error(s));
        mysql_stmt_close(s);
        return sh_db_fail(db, err, msg, st->sql);
    }
    my_bool yes = 1;
    mysql_stmt_attr_set(s, STMT_ATTR_UPDATE_MAX_LENGTH, &yes);
    st->stmt = s;
    return 0;
}

typedef struct {
    MYSQL_BIND bind[SH_DB_MAX_BIND];
    long long ints[SH_DB_MAX_BIND];
    unsigned long lens[SH_DB_MAX_BIND];
    my_bool nulls[SH_DB_MAX_BIND];
    int n;
} sh_db_params;

static int sh_db_bind_params(sh_db_params *p, const char *types, va_list ap)
{
    memset(p, 0, sizeof(*p));
    for (const char *t = types; *t; t++) {
        if (p->n == SH_DB_MAX_BIND)
            return -1;
        MYSQL_BIND *b = &p->bind[p->n];
        int i = p->n++;
        switch (*t) {
        case 'i':
            p->ints[i] = va_arg(ap, int64_t);
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &p->ints[i];
            break;
        case 'b':
            p->ints[i] = va_arg(ap, int) ? 1 : 0;
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &p->ints[i];
            break;
        case 's':
        case 'S': {
            const char *s = va_arg(ap, const char *);
            size_t len = *t == 'S' ? va_arg(ap, size_t) : (s ? strlen(s) : 0);
            b->buffer_type = MYSQL_TYPE_STRING;
            if (s == NULL) {
                b->buffer_type = MYSQL_TYPE_NULL;
                break;
            }
            b->buffer = (void *)s;
            p->lens[i] = (unsigned long)len;
            b->buffer_length = (unsigned long)len;
            b->length = &p->lens[i];
            break;
        }
        case 'n': b->buffer_type = MYSQL_TYPE_NULL; break;
        default: return -1;
        }
    }
    return 0;
}

/* Reads every row of the executed statement into the arena. */
static int sh_db_fetch_all(sh_db *db, sh_db_stmt *st, sh_arena *a, sh_result *res)
{
    MYSQL_STMT *s = st->stmt;
    MYSQL_RES *meta = mysql_stmt_result_metadata(s);
    if (meta == NULL)
        return 0; /* no result set */
    if (mysql_stmt_store_result(s) != 0) {
        mysql_free_result(meta);
        return sh_db_fail(db, mysql_stmt_errno(s), mysql_stmt_error(s), st->sql);
    }
    int ncols = (int)mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    MYSQL_BIND *bind = sh_arena_calloc(a, sizeof(MYSQL_BIND) * (size_t)ncols);
    unsigned long *lens = sh_arena_calloc(a, sizeof(unsigned long) * (size_t)ncols);
    my_bool *nulls = sh_arena_calloc(a, sizeof(my_bool) * (size_t)ncols);
    my_bool *errs = sh_arena_calloc(a, sizeof(my_bool) * (size_t)ncols);
    for (int c = 0; c < ncols; c++) {
        unsigned long size = fields[c].max_length > 64 ? fields[c].max_length + 1 : 65;
        bind[c].buffer_type = MYSQL_TYPE_STRING;
        bind[c].buffer = sh_arena_alloc(a, size);
        bind[c].buffer_length = size;
        bind[c].length = &lens[c];
        bind[c].is_null = &nulls[c];
        bind[c].error = &errs[c];
    }
    int rc = 0;
    if (mysql_stmt_bind_result(s, bind) != 0) {
        rc = sh_db_fail(db, mysql_stmt_errno(s), mysql_stmt_error(s), st->sql);
        goto done;
    }
    res->ncols = ncols;
    res->nrows = 0;
    int nrows = (int)mysql_stmt_num_rows(s);
    res->rows = sh_arena_calloc(a, sizeof(sh_row) * (size_t)(nrows ? nrows : 1));
    for (;;) {
        int f = mysql_stmt_fetch(s);
        if (f == MYSQL_NO_DATA)
            break;
        if (f == 1) {
            rc = sh_db_fail(db, mysql_stmt_errno(s), mysql_stmt_error(s), st->sql);
            goto done;
        }
        if (res->nrows == nrows)
            break;
        sh_row *row = &res->rows[res->nrows++];
        row->values = sh_arena_calloc(a, sizeof(char *) * (size_t)ncols);
        row->lengths = sh_arena_calloc(a, sizeof(unsigned long) * (size_t)ncols);
        for (int c = 0; c < ncols; c++) {
            if (nulls[c])
                continue;
            row->lengths[c] = lens[c];
            if (lens[c] < bind[c].buffer_length) {
                row->values[c] = sh_arena_strndup(a, bind[c].buffer, lens[c]);
                continue;
            }
            /* truncated: fetch the column again into a buffer of its size */
            char *big = sh_arena_alloc(a, lens[c] + 1);
            MYSQL_BIND one;
            memset(&one, 0, sizeof(one));
            unsigned long got = 0;
            one.buffer_type = MYSQL_TYPE_STRING;
            one.buffer = big;
            one.buffer_length = lens[c] + 1;
            one.length = &got;
            if (mysql_stmt_fetch_column(s, &one, (unsigned)c, 0) != 0) {
                rc = sh_db_fail(db, mysql_stmt_errno(s), mysql_stmt_error(s), st->sql);
                goto done;
            }
            big[lens[c]] = '\0';
            row->values[c] = big;
        }
    }
done:
    mysql_stmt_free_result(s);
    mysql_free_result(meta);
    return rc;
}

int sh_db_query(sh_req *req, int stmt, sh_result *res, const char *types, ...)
{
    sh_db *db = sh_db_current;
    sh_result ignored;
    if (res == NULL)
        res = &ignored;
    memset(res, 0, sizeof(*res));
    if (sh_db_ready(db) != 0)
        return -1;
    if (stmt < 0 || stmt >= db->nstmts)
        return sh_db_fail(db, 0, "unknown statement id", "");
    sh_db_stmt *st = &db->stmts[stmt];

    sh_db_params params;
    va_list ap;
    va_start(ap, types);
    int bound = sh_db_bind_params(&params, types, ap);
    va_end(ap);
    if (bound != 0)
        return sh_db_fail(db, 0, "bad parameter types", st->sql);

    for (int attempt = 0; attempt < 2; attempt++) {
        if (sh_db_prepare(db, st) != 0)
            return -1;
        if (mysql_stmt_param_count(st->stmt) != (unsigned long)params.n)
            return sh_db_fail(db, 0, "parameter count does not match the statement", st->sql);
        if (mysql_stmt_bind_param(st->stmt, params.bind) != 0)
            return sh_db_fail(db, mysql_stmt_errno(st->stmt), mysql_stmt_error(st->stmt), st->sql);
        if (mysql_stmt_execute(st->stmt) == 0)
            break;
        unsigned err = mysql_stmt_errno(st->stmt);
        if (attempt == 0 && (err == ER_NEED_REPREPARE || err == ER_UNKNOWN_STMT_HANDLER)) {
            /* the table changed under a prepared statement: prepare again, once */
            mysql_stmt_close(st->stmt);
            st->stmt = NULL;
            continue;
        }
        return sh_db_fail(db, err, mysql_stmt_error(st->stmt), st->sql);
    }
    res->affected_rows = mysql_stmt_affected_rows(st->stmt);
    res->insert_id = mysql_stmt_insert_id(st->stmt);
    if (res->affected_rows == (uint64_t)-1)
        res->affected_rows = 0;
    if (!db->in_tx && res->affected_rows > 0 && mysql_stmt_field_count(st->stmt) == 0)
        sh_db_commit_count++; /* a write outside a transaction: committed */
    return sh_db_fetch_all(db, st, req->arena, res);
}

static void sh_db_rollback_cleanup(void *data)
{
    sh_db *db = data;
    if (db->in_tx && db->conn != NULL && !db->broken) {
        if (mysql_rollback(db->conn) != 0)
            db->broken = true;
    }
    db->in_tx = false;
    db->nested = 0;
    db->non_commit = 0; /* rolled back: what waited for the commit never runs */
}

int sh_db_on_commit(sh_req *req, sh_db_commit_fn fn, void *arg)
{
    (void)req;
    sh_db *db = sh_db_current;
    if (db == NULL || !db->in_tx) { /* committed already, statement by statement */
        fn(arg);
        return 0;
    }
    if (db->non_commit == SH_DB_ON_COMMIT_MAX)
        return -1;
    db->on_commit[db->non_commit].fn = fn;
    db->on_commit[db->non_commit].arg = arg;
    db->non_commit++;
    return 0;
}

int sh_db_begin(sh_req *req)
{
    sh_db *db = sh_db_current;
    if (db != NULL && db->in_tx && !db->broken) {
        db->nested++; /* lives in the outer transaction */
        return 0;
    }
    if (sh_db_ready(db) != 0)
        return -1;
    if (mysql_query(db->conn, "START TRANSACTION") != 0)
        return sh_db_fail(db, mysql_errno(db->conn), mysql_error(db->conn), "START TRANSACTION");
    db->in_tx = true;
    sh_arena_cleanup(req->arena, sh_db_rollback_cleanup, db);
    return 0;
}

int sh_db_commit(sh_req *req)
{
    (void)req;
    sh_db *db = sh_db_current;
    if (db == NULL || db->conn == NULL || !db->in_tx)
        return sh_db_fail(db, CR_COMMANDS_OUT_OF_SYNC, "commit without a transaction", "COMMIT");
    if (db->nested > 0) { /* the outer transaction commits it */
        db->nested--;
        return 0;
    }
    db->in_tx = false;
    int hooks = db->non_commit;
    db->non_commit = 0;
    if (mysql_commit(db->conn) != 0)
        return sh_db_fail(db, mysql_errno(db->conn), mysql_error(db->conn), "COMMIT");
    sh_db_commit_count++;
    for (int i = 0; i < hooks; i++)
        db->on_commit[i].fn(db->on_commit[i].arg);
    return 0;
}

void sh_db_rollback(sh_req *req)
{
    (void)req;
    if (sh_db_current != NULL)
        sh_db_rollback_cleanup(sh_db_current);
}

int sh_db_ping(sh_req *req)
{
    (void)req;
    sh_db *db = sh_db_current;
    if (sh_db_ready(db) != 0)
        return -1;
    /* sh_db_ready has just seen the connection's socket open (a server that
     * went away closes it); a round trip proves more, but once a second is
     * enough for health checks that may come thousands of times a second */
    int64_t now = sh_now_us();
    if (now - db->alive_at_us < SH_DB_PING_INTERVAL_US)
        return 0;
    if (mysql_ping(db->conn) != 0)
        return sh_db_fail(db, mysql_errno(db->conn), mysql_error(db->conn), "PING");
    db->alive_at_us = now;
    return 0;
}

int sh_db_reply_error(sh_req *req)
{
    if (sh_db_last_unavailable)
        return sh_reply_error(req, 503, "database_unavailable", "The database is unavailable; retry shortly.");
    return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
}

const char *sh_row_str(const sh_row *row, int col) { return row->values[col]; }

int64_t sh_row_int(const sh_row *row, int col)
{
    const char *v = row->values[col];
    return v ? strtoll(v, NULL, 10) : 0;
}

bool sh_row_is_null(const sh_row *row, int col) { return row->values[col] == NULL; }

int sh_reply_page(sh_req *req, const char *key, const sh_result *r, int64_t limit, sh_row_json_fn to_json,
                  const void *ctx)
{
    int shown = r->nrows > limit ? (int)limit : r->nrows;
    json_object *list = json_object_new_array();
    for (int i = 0; i < shown; i++)
        json_object_array_add(list, to_json(&r->rows[i], ctx));
    json_object *o = json_object_new_object();
    json_object_object_add(o, key, list);
    json_object_object_add(o, "next_cursor",
                           r->nrows > limit && shown > 0 ? json_object_new_string(sh_cursor_encode(
                                                               req->arena, sh_row_int(&r->rows[shown - 1], 0)))
                                                         : NULL);
    return sh_reply_json(req, 200, o);
}
