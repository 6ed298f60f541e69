/* sh_pool.h: the pool manager, Pilotlight's Lambda (modelled on php-fpm). A master
 * process owns the listening socket and never serves; it forks workers that accept
 * and serve connections. In `ondemand` mode the pool holds zero workers while idle
 * and the master sleeps in poll(2) with no timer; the first waiting connection
 * forks a worker from the already-initialised master (no exec), so a cold start
 * costs about a fork.
 * Layer 6 of libshared (pool); see docs/architecture.md. */
#ifndef SH_POOL_H
#define SH_POOL_H

#include "sh_config.h"
#include "sh_scoreboard.h"

typedef enum { SH_POOL_ONDEMAND = 0, SH_POOL_DYNAMIC, SH_POOL_STATIC } sh_pool_mode;

extern const char *const sh_pool_mode_names[]; /* "ondemand", "dynamic", "static", NULL */

typedef struct {
    int mode; /* sh_pool_mode */
    int64_t max_children;
    int64_t start_children;      /* dynamic: workers at start */
    int64_t min_spare;           /* dynamic */
    int64_t max_spare;           /* dynamic */
    int64_t idle_timeout_ms;     /* ondemand: an idle worker exits after this */
    int64_t max_requests;        /* recycle a worker after this many requests; 0 = never */
    int64_t shutdown_timeout_ms; /* SIGTERM: in-flight requests get this long */
    int64_t backlog;
    const char *listen;        /* "unix:/path" or "host:port" */
    int64_t listen_mode;       /* unix socket file mode */
    const char *listen_group;  /* unix socket group, or NULL */
    const char *status_listen; /* "unix:/path" the master answers on itself, or NULL */
} sh_pool_config;

/* PL_LISTEN*, PL_POOL_MODE, PL_MAX_CHILDREN ... over an sh_pool_config. */
extern const sh_conf_row sh_pool_conf_rows[];

typedef struct {
    void *ctx;
    /* In each new worker after fork, before its first connection; -1 ends the worker. */
    int (*worker_init)(void *ctx);
    /* Serves one accepted connection; owns and closes fd. */
    void (*serve)(int fd, void *ctx);
    /* In a worker about to exit normally. */
    void (*worker_exit)(void *ctx);
    /* In the master on SIGHUP, before the new workers are forked (they inherit
     * what it loaded); may be NULL. A failure is the callback's to log. */
    void (*reload)(void *ctx);
    /* A swap's new master only: in its first worker after worker_init, before
     * it serves anything: 0 when it may (the service answers its health check). */
    int (*self_check)(void *ctx);
    /* In the master once it is ready (at start, or a swap's once self_check
     * passed); may be NULL. */
    void (*ready)(void *ctx);
    /* In a worker, when the time a worker asked for with sh_pool_wake_at has
     * come: work that must happen although no request comes (mail to send
     * again). May be NULL. A pool that has it runs it once as it starts. */
    void (*on_wake)(void *ctx);
    /* In the master: one connection accepted on the status socket
     * (status_listen), to be answered from the scoreboard without a worker;
     * owns and closes fd. Reads and writes on fd time out. May be NULL. */
    void (*serve_status)(int fd, void *ctx);
    /* In the master, while the pool has no worker at all: makes ready what the
     * next worker forked will need (a standby: its database session), so that
     * a cold start does not wait for it. Returns an fd that turns readable or
     * hangs up when the standby goes stale (the server closed the session), or
     * -1 when none was made (tried again after 1 s, doubling up to 1 min,
     * and at once when a worker has ended normally since).
     * May be NULL. */
    int (*standby_open)(void *ctx);
    /* In the master: the standby is given up. handed_over: right after a fork,
     * the worker forked owns it now, and the master forgets its copy without
     * touching what they share; else it went stale or the pool stops. */
    void (*standby_close)(void *ctx, bool handed_over);
} sh_pool_callbacks;

/* The exit status of a swap's new master whose first worker failed. */
#define SH_POOL_EXIT_NOT_READY 3

/* Opens the listening socket described by cfg->listen. Returns the fd or -1 (logged). */
int sh_pool_listen(const sh_pool_config *cfg);

/* Takes over a listening socket inherited from the supervisor (a swap's new
 * master): the same as sh_pool_listen's for everything after. fd, or -1. */
int sh_pool_adopt(const sh_pool_config *cfg, int fd);

/* Takes a copy of the listening socket of cfg->listen from the running master
 * pid (pidfd_getfd: a master whose supervisor died, taken over by a new one),
 * then as sh_pool_adopt. fd, or -1 (logged). */
int sh_pool_take_listener(const sh_pool_config *cfg, int pid);

/* Runs the master loop; returns the process exit status. SIGTERM/SIGINT stop
 * the pool: workers finish what they serve and what waits in the backlog, the
 * unix socket's name is removed first. SIGQUIT retires it (a swap's old
 * master): workers finish what they serve and leave the socket and its
 * backlog to the new master. SIGHUP replaces the workers (reload). SIGUSR1
 * reopens the log file, in the master and then in each worker (logrotate).
 * ready_fd >= 0 makes this a swap's new master on probation: it starts one
 * worker, which runs self_check before serving; when that passes, 'R' is
 * written to ready_fd (then closed) and the pool runs as usual; when the
 * worker fails first, the pool stops with SH_POOL_EXIT_NOT_READY. */
int sh_pool_run(const sh_pool_config *cfg, int listen_fd, int ready_fd, sh_scoreboard *sb, const sh_pool_callbacks *cb);

/* In the master (standby_open): whether a connection waits in the listening
 * socket's backlog (poll(2), no wait). */
bool sh_pool_connection_waiting(void);

/* In a worker: have the pool's on_wake run at wall time at_us (sh_wall_us()),
 * or at the earliest of the times asked for. The master wakes for it (an idle
 * worker runs it, else a new one); with no time asked for it sleeps with no
 * timer, so a pool with nothing to do still costs nothing. */
void sh_pool_wake_at(int64_t at_us);

/* A worker about to block on (true) or back from (false) an invocation of
 * another service: while it waits, an ondemand pool may start another worker
 * beyond max_children (up to twice it) for the requests that queue meanwhile. */
void sh_pool_worker_waiting(bool waiting);

#endif
