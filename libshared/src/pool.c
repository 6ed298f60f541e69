/* pool.c: the master loop (spawn, reap, reload, shutdown) and the worker loop.
 *
 * How ondemand works without a timer: workers publish IDLE/BUSY in the
 * scoreboard. A worker that takes the last idle slot writes one byte to the
 * master's notify pipe. Only then (no idle worker of the current generation and
 * room for another) does the master poll the listening socket; a readable socket
 * means a connection waits that nobody will take, so it forks. A worker that has
 * been idle for idle_timeout exits by itself, so with zero workers the master
 * sleeps in poll(2) on its signal pipe, notify pipe and listening socket only. */
#include "sh_pool.h"
#include "sh_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Workers end with _exit(2) (never the master's atexit handlers), so LeakSanitizer
 * would not look at them: a sanitizer build checks for leaks when a worker has
 * released everything it owns (tests/leak/run.sh counts the reports). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define SH_WORKER_LEAK_CHECK() ((void)__lsan_do_recoverable_leak_check())
#else
#define SH_WORKER_LEAK_CHECK() ((void)0)
#endif

const char *const sh_pool_mode_names[] = {"ondemand", "dynamic", "static", NULL};

#define P(field) offsetof(sh_pool_config, field)
const sh_conf_row sh_pool_conf_rows[] = {
    {"PL_LISTEN", SH_CONF_STRING, P(listen), NULL, 0, 0, NULL, 0,
     "where the pool listens: unix:/path/to.sock or host:port"},
    {"PL_LISTEN_MODE", SH_CONF_OCTAL, P(listen_mode), "0660", 0, 0, NULL, 0, "unix socket file mode"},
    {"PL_LISTEN_GROUP", SH_CONF_STRING, P(listen_group), NULL, 0, 0, NULL, 0,
     "unix socket group (nginx's workers must be in it)"},
    {"PL_LISTEN_BACKLOG", SH_CONF_INT, P(backlog), "511", 1, 65535, NULL, 0, "listen(2) backlog"},
    {"PL_POOL_MODE", SH_CONF_ENUM, P(mode), "ondemand", 0, 0, sh_pool_mode_names, 0,
     "ondemand (0 workers when idle) | dynamic | static"},
    {"PL_MAX_CHILDREN", SH_CONF_INT, P(max_children), "8", 1, SH_SB_MAX_SLOTS / 3, NULL, 0,
     "most workers at once (static: the fixed count)"},
    {"PL_START_CHILDREN", SH_CONF_INT, P(start_children), "2", 0, SH_SB_MAX_SLOTS / 2, NULL, 0,
     "dynamic: workers at start"},
    {"PL_MIN_SPARE", SH_CONF_INT, P(min_spare), "1", 0, SH_SB_MAX_SLOTS / 2, NULL, 0, "dynamic: fewest idle workers"},
    {"PL_MAX_SPARE", SH_CONF_INT, P(max_spare), "3", 1, SH_SB_MAX_SLOTS / 2, NULL, 0, "dynamic: most idle workers"},
    {"PL_IDLE_TIMEOUT_MS", SH_CONF_INT, P(idle_timeout_ms), "10000", 1, 86400000, NULL, 0,
     "ondemand: an idle worker exits after this"},
    {"PL_MAX_REQUESTS", SH_CONF_INT, P(max_requests), "10000", 0, INT64_MAX, NULL, 0,
     "recycle a worker after this many requests (0: never)"},
    {"PL_SHUTDOWN_TIMEOUT_MS", SH_CONF_INT, P(shutdown_timeout_ms), "10000", 0, 600000, NULL, 0,
     "SIGTERM: how long in-flight requests may take"},
    {"PL_STATUS_LISTEN", SH_CONF_STRING, P(status_listen), NULL, 0, 0, NULL, 0,
     "unix:/path where the master itself answers _status and _metrics from the scoreboard, so monitoring never "
     "wakes a worker (unset: the workers answer them on PL_LISTEN)"},
    SH_CONF_END,
};
#undef P

/* --- shared state of this process ------------------------------------------ */

static sh_scoreboard *sh_pool_sb;
static sh_sb_slot *sh_pool_slot; /* worker only */
static int sh_pool_signal_pipe[2] = {-1, -1};
static int sh_pool_notify_pipe[2] = {-1, -1};
static char sh_pool_unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* worker stop requests, set by signal handlers */
#define SH_STOP_NONE  0
#define SH_STOP_QUIT  1 /* reload/trim: finish the current request, exit */
#define SH_STOP_DRAIN 2 /* shutdown: also serve what waits in the backlog, exit */
static volatile sig_atomic_t sh_worker_stop = SH_STOP_NONE;
static bool sh_pool_probation;    /* a swap's new master, not ready yet (its workers inherit it) */
static int sh_pool_ready_fd = -1; /* its ready pipe: the master's alone */
static pid_t sh_pool_master_pid;
static int64_t sh_pool_max_children;
static bool sh_pool_ondemand;      /* the mode is ondemand */
static int sh_pool_listen_fd = -1; /* the master's */

/* --- the listening socket ----------------------------------------------------- */

static int sh_pool_listen_unix(const sh_pool_config *cfg, const char *path, bool is_pool_socket)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "unix socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "socket: %s", strerror(errno));
        return -1;
    }
    /* A socket file left by a dead master is removed; a live one is refused. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            sh_log_msgf(SH_LOG_ERROR, "listen_failed", "%s exists and is not a socket", path);
            close(fd);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            close(fd);
            sh_log_msgf(SH_LOG_ERROR, "listen_failed", "%s is in use by a running pool", path);
            return -1;
        }
        if (probe >= 0)
            close(probe);
        if (unlink(path) != 0 && errno != ENOENT) {
            sh_log_msgf(SH_LOG_ERROR, "listen_failed", "unlink %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    mode_t old = umask(0177); /* never world-accessible, even for an instant */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (cfg->listen_group != NULL) {
        struct group *gr = getgrnam(cfg->listen_group);
        if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) != 0) {
            sh_log_msgf(SH_LOG_ERROR, "listen_failed", "cannot give %s to group %s", path, cfg->listen_group);
            close(fd);
            unlink(path);
            return -1;
        }
    }
    if (chmod(path, (mode_t)cfg->listen_mode) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "chmod %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    if (is_pool_socket)
        snprintf(sh_pool_unix_path, sizeof(sh_pool_unix_path), "%s", path);
    return fd;
}

static int sh_pool_listen_tcp(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(host)) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "PL_LISTEN=%s: expected unix:/path or host:port", spec);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, colon + 1, &hints, &res);
    if (gai != 0) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "PL_LISTEN=%s: %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "bind %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

int sh_pool_adopt(const sh_pool_config *cfg, int fd)
{
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "inherited socket %d: %s", fd, strerror(errno));
        return -1;
    }
    if (strncmp(cfg->listen, "unix:", 5) == 0)
        snprintf(sh_pool_unix_path, sizeof(sh_pool_unix_path), "%s", cfg->listen + 5);
    return fd;
}

/* Whether fd is a listening socket on the address of cfg->listen. */
static bool sh_pool_is_listener(const sh_pool_config *cfg, int fd)
{
    int on = 0;
    socklen_t len = sizeof(on);
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0 || !on ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0)
        return false;
    if (strncmp(cfg->listen, "unix:", 5) == 0)
        return ss.ss_family == AF_UNIX && strcmp(((struct sockaddr_un *)&ss)->sun_path, cfg->listen + 5) == 0;
    const char *colon = strrchr(cfg->listen, ':');
    int port = ss.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
               : ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                          : -1;
    return colon != NULL && port >= 0 && atoi(colon + 1) == port;
}

int sh_pool_take_listener(const sh_pool_config *cfg, int pid)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    DIR *d = pidfd >= 0 ? opendir(dir) : NULL;
    if (d == NULL) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "master %d: %s", pid, strerror(errno));
        if (pidfd >= 0)
            close(pidfd);
        return -1;
    }
    int fd = -1, why = ENOENT;
    for (struct dirent *e; fd < 0 && (e = readdir(d)) != NULL;) {
        char path[PATH_MAX], link[64];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0 || strncmp(link, "socket:", 7) != 0)
            continue;
        fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
        if (fd < 0)
            why = errno;
        else if (!sh_pool_is_listener(cfg, fd)) {
            close(fd);
            fd = -1;
        }
    }
    closedir(d);
    close(pidfd);
    if (fd < 0) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "master %d holds no listening socket on %s that can be taken (%s)",
                    pid, cfg->listen, strerror(why));
        return -1;
    }
    return sh_pool_adopt(cfg, fd);
}

int sh_pool_listen(const sh_pool_config *cfg)
{
    int fd = strncmp(cfg->listen, "unix:", 5) == 0 ? sh_pool_listen_unix(cfg, cfg->listen + 5, true)
                                                   : sh_pool_listen_tcp(cfg->listen);
    if (fd < 0)
        return -1;
    if (listen(fd, (int)cfg->backlog) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "listen_failed", "listen %s: %s", cfg->listen, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* --- signals ------------------------------------------------------------------ */

static void sh_master_on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    ssize_t w = write(sh_pool_signal_pipe[1], &b, 1);
    (void)w; /* a full pipe already holds a wake-up */
    errno = saved;
}

static volatile sig_atomic_t sh_worker_reopen_log;
static volatile sig_atomic_t sh_worker_wake; /* SIGUSR2 from the master: run on_wake */

static void sh_worker_on_signal(int signo)
{
    if (signo == SIGUSR1) {
        sh_worker_reopen_log = 1;
        return;
    }
    if (signo == SIGUSR2) {
        sh_worker_wake = 1;
        return;
    }
    if (signo == SIGTERM)
        sh_worker_stop = SH_STOP_DRAIN;
    else if (sh_worker_stop == SH_STOP_NONE)
        sh_worker_stop = SH_STOP_QUIT;
}

static void sh_set_handler(int signo, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(signo, &sa, NULL);
}

/* --- the worker --------------------------------------------------------------- */

static void sh_slot_set(sh_sb_slot *s, sh_slot_state state)
{
    atomic_store(&s->state, (int)state);
    atomic_store(&s->state_since_us, sh_now_us());
}

/* Counts "max_children reached" at most once a second, however long it lasts. */
static void sh_pool_note_saturated(sh_scoreboard *sb)
{
    int64_t now = sh_now_us();
    int64_t last = atomic_load(&sb->saturated_at_us);
    if (now - last < 1000000 || !atomic_compare_exchange_strong(&sb->saturated_at_us, &last, now))
        return;
    atomic_fetch_add(&sb->max_children_reached, 1);
    sh_log_msgf(SH_LOG_WARN, "max_children_reached", "all %lld workers are busy; connections wait in the backlog",
                (long long)sh_pool_max_children);
}

/* After going busy: if no idle worker of this generation is left, wake the master
 * so it watches the socket (a connection arriving now would otherwise wait), or,
 * at max_children, count the saturation: the master could not help anyway. */
static void sh_worker_maybe_notify(void)
{
    uint32_t gen = atomic_load(&sh_pool_slot->generation);
    if (sh_sb_count(sh_pool_sb, SH_SLOT_IDLE, gen) + sh_sb_count(sh_pool_sb, SH_SLOT_STARTING, gen) > 0)
        return;
    /* Our slot went busy (or waiting) before this load: a master that stopped
     * watching after that store saw it when it looked again (see the loop),
     * one that stopped before it is seen stopped here. */
    if (atomic_load(&sh_pool_sb->master_watching))
        return;
    /* The master's rule (sh_master_may_spawn): when it could not fork, waking
     * it only costs both of us a context switch. */
    int busy = sh_sb_count(sh_pool_sb, SH_SLOT_BUSY, gen), waiting = sh_sb_count(sh_pool_sb, SH_SLOT_WAITING, gen);
    bool room = sh_pool_ondemand ? busy < sh_pool_max_children && busy + waiting < 2 * sh_pool_max_children
                                 : busy + waiting < sh_pool_max_children;
    if (!room) {
        sh_pool_note_saturated(sh_pool_sb);
        return;
    }
    unsigned char b = 1;
    ssize_t w = write(sh_pool_notify_pipe[1], &b, 1);
    (void)w; /* a full pipe already holds a wake-up */
}

void sh_pool_worker_waiting(bool waiting)
{
    if (sh_pool_slot == NULL) /* the master, or a command: not a worker */
        return;
    sh_slot_set(sh_pool_slot, waiting ? SH_SLOT_WAITING : SH_SLOT_BUSY);
    if (waiting)
        sh_worker_maybe_notify();
}

/* The pool's on_wake, in this worker, counted busy like a request. */
static void sh_worker_run_wake(const sh_pool_callbacks *cb)
{
    if (cb->on_wake == NULL)
        return;
    sh_slot_set(sh_pool_slot, SH_SLOT_BUSY);
    sh_worker_maybe_notify();
    cb->on_wake(cb->ctx);
    sh_slot_set(sh_pool_slot, SH_SLOT_IDLE);
}

void sh_pool_wake_at(int64_t at_us)
{
    if (sh_pool_sb == NULL)
        return;
    if (at_us <= 0)
        at_us = 1;
    int64_t cur = atomic_load(&sh_pool_sb->wake_at_us);
    while ((cur == 0 || at_us < cur) && !atomic_compare_exchange_weak(&sh_pool_sb->wake_at_us, &cur, at_us))
        ;
    unsigned char b = 1;
    ssize_t w = write(sh_pool_notify_pipe[1], &b, 1); /* the master's timer may change */
    (void)w;
}

static void sh_worker_serve_one(int fd, const sh_pool_callbacks *cb)
{
    sh_slot_set(sh_pool_slot, SH_SLOT_BUSY);
    sh_worker_maybe_notify();
    cb->serve(fd, cb->ctx);
    atomic_fetch_add(&sh_pool_slot->requests, 1);
    atomic_store(&sh_pool_slot->handler, -1);
    sh_slot_set(sh_pool_slot, SH_SLOT_IDLE);
}

/* Serves connections already waiting (shutdown), without blocking. */
static void sh_worker_drain(int listen_fd, const sh_pool_callbacks *cb)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        sh_worker_serve_one(fd, cb);
    }
}

static SH_NORETURN void sh_worker_exit(sh_exit_reason reason, const sh_pool_callbacks *cb, int status)
{
    if (cb->worker_exit != NULL)
        cb->worker_exit(cb->ctx);
    SH_WORKER_LEAK_CHECK();
    atomic_store(&sh_pool_slot->exit_reason, (int)reason);
    sh_slot_set(sh_pool_slot, SH_SLOT_EXITING);
    _exit(status);
}

/* --- the status socket (PL_STATUS_LISTEN) ------------------------------------ */

static int sh_pool_status_fd = -1;
static ino_t sh_pool_status_ino; /* of the name we put in place */
static char sh_pool_status_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* Binds the status socket under a name of this master's own and renames it
 * onto the configured path, so the master that became ready last (a swap's
 * new one) answers, and there is no moment without a socket. On failure
 * (logged) the pool serves anyway, and so does the socket's old owner. */
static void sh_master_status_open(const sh_pool_config *cfg, const sh_pool_callbacks *cb)
{
    const char *spec = cfg->status_listen;
    if (spec == NULL || cb->serve_status == NULL || sh_pool_status_fd >= 0)
        return;
    char tmp[sizeof(sh_pool_status_path)];
    if (strncmp(spec, "unix:", 5) != 0 ||
        snprintf(sh_pool_status_path, sizeof(sh_pool_status_path), "%s", spec + 5) >=
            (int)sizeof(sh_pool_status_path) ||
        snprintf(tmp, sizeof(tmp), "%s.%d", sh_pool_status_path, (int)getpid()) >= (int)sizeof(tmp)) {
        sh_log_msgf(SH_LOG_ERROR, "status_listen_failed", "PL_STATUS_LISTEN=%s: expected unix:/path (short)", spec);
        return;
    }
    int fd = sh_pool_listen_unix(cfg, tmp, false);
    if (fd < 0)
        return;
    struct stat st;
    if (listen(fd, 64) != 0 || stat(tmp, &st) != 0 || rename(tmp, sh_pool_status_path) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "status_listen_failed", "%s: %s", sh_pool_status_path, strerror(errno));
        close(fd);
        unlink(tmp);
        return;
    }
    sh_pool_status_fd = fd;
    sh_pool_status_ino = st.st_ino;
}

/* Closes it, and removes the name unless a newer master has taken it. */
static void sh_master_status_close(void)
{
    if (sh_pool_status_fd < 0)
        return;
    close(sh_pool_status_fd);
    sh_pool_status_fd = -1;
    struct stat st;
    if (stat(sh_pool_status_path, &st) == 0 && st.st_ino == sh_pool_status_ino)
        unlink(sh_pool_status_path);
}

/* Answers what waits on it (a few at a time: the loop comes back). */
static void sh_master_status_serve(const sh_pool_callbacks *cb)
{
    for (int i = 0; i < 16; i++) {
        int c = accept4(sh_pool_status_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return;
        /* a client that sends nothing must not stop the master */
        struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
        if (setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
            setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
            close(c);
            continue;
        }
        cb->serve_status(c, cb->ctx);
    }
}

static SH_NORETURN void sh_worker_main(const sh_pool_config *cfg, int listen_fd, const sh_pool_callbacks *cb)
{
    sh_log_after_fork();
    if (sh_pool_status_fd >= 0)
        close(sh_pool_status_fd);
    close(sh_pool_signal_pipe[0]);
    close(sh_pool_signal_pipe[1]);
    close(sh_pool_notify_pipe[0]);
    if (sh_pool_ready_fd >= 0)
        close(sh_pool_ready_fd);

    /* Every signal is blocked since fork (see sh_master_spawn). The stop signals
     * are only taken while waiting for a connection, so a request in progress
     * always finishes. */
    sigset_t block, wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGQUIT);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigemptyset(&wait_mask);
    sh_set_handler(SIGTERM, sh_worker_on_signal, 0);
    sh_set_handler(SIGQUIT, sh_worker_on_signal, 0);
    sh_set_handler(SIGINT, sh_worker_on_signal, 0);
    sh_set_handler(SIGUSR1, sh_worker_on_signal, 0);
    sh_set_handler(SIGUSR2, sh_worker_on_signal, 0);
    sh_set_handler(SIGHUP, SIG_IGN, 0);
    sh_set_handler(SIGCHLD, SIG_DFL, 0);
    sh_set_handler(SIGPIPE, SIG_IGN, 0);
    sigprocmask(SIG_SETMASK, &block, NULL);
    /* A worker outliving its master would serve an orphaned socket: stop with it. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != sh_pool_master_pid)
        _exit(0);

    if (cb->worker_init != NULL && cb->worker_init(cb->ctx) != 0)
        sh_worker_exit(SH_EXIT_FAILED, cb, 1);
    if (sh_pool_probation) {
        if (cb->self_check == NULL || cb->self_check(cb->ctx) != 0)
            sh_worker_exit(SH_EXIT_FAILED, cb, SH_POOL_EXIT_NOT_READY);
        if (getppid() != sh_pool_master_pid)
            sh_worker_exit(SH_EXIT_STOPPED, cb, 0); /* given up on meanwhile: serve nothing */
        atomic_store(&sh_pool_sb->probe_passed, 1);
        unsigned char b = 1;
        ssize_t w = write(sh_pool_notify_pipe[1], &b, 1);
        (void)w; /* a full pipe already holds a wake-up */
    }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = listen_fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "worker_failed", "epoll: %s", strerror(errno));
        sh_worker_exit(SH_EXIT_FAILED, cb, 1);
    }

    bool ondemand = cfg->mode == SH_POOL_ONDEMAND;
    int64_t idle_since = sh_now_us();
    sh_slot_set(sh_pool_slot, SH_SLOT_IDLE);
    for (;;) {
        if (sh_worker_stop == SH_STOP_DRAIN) {
            sh_worker_drain(listen_fd, cb);
            sh_worker_exit(SH_EXIT_STOPPED, cb, 0);
        }
        if (sh_worker_stop == SH_STOP_QUIT)
            sh_worker_exit(SH_EXIT_STOPPED, cb, 0);
        if (sh_worker_reopen_log) {
            sh_worker_reopen_log = 0;
            if (sh_log_reopen() != 0)
                sh_log_msgf(SH_LOG_ERROR, "log_reopen_failed", "%s: the old file stays in use", strerror(errno));
        }
        if (sh_worker_wake) {
            sh_worker_wake = 0;
            sh_worker_run_wake(cb);
            idle_since = sh_now_us();
        }

        int timeout = -1;
        if (ondemand) {
            int64_t left_us = idle_since + cfg->idle_timeout_ms * 1000 - sh_now_us();
            if (left_us <= 0) {
                atomic_fetch_add(&sh_pool_sb->idle_exits, 1);
                sh_worker_exit(SH_EXIT_IDLE, cb, 0);
            }
            timeout = (int)((left_us + 999) / 1000);
        }
        struct epoll_event got;
        int n = epoll_pwait(ep, &got, 1, timeout, &wait_mask);
        if (n <= 0)
            continue; /* a signal, or the idle deadline: both are checked above */

        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
                continue; /* another worker took it */
            sh_log_msgf(SH_LOG_ERROR, "accept_failed", "accept: %s", strerror(errno));
            struct timespec pause = {0, 10 * 1000 * 1000}; /* EMFILE and kin: don't spin */
            nanosleep(&pause, NULL);
            continue;
        }
        sh_worker_serve_one(fd, cb);
        idle_since = sh_now_us();
        if (cfg->max_requests > 0 && (int64_t)atomic_load(&sh_pool_slot->requests) >= cfg->max_requests) {
            atomic_fetch_add(&sh_pool_sb->recycled, 1);
            sh_worker_exit(SH_EXIT_RECYCLED, cb, 0);
        }
    }
}

/* --- the master --------------------------------------------------------------- */

typedef struct {
    const sh_pool_config *cfg;
    const sh_pool_callbacks *cb;
    sh_scoreboard *sb;
    int listen_fd;
    uint32_t generation;
    bool stopping;
    bool retiring; /* stopping for a swap: the socket and its backlog are the new master's */
    int ready_fd;  /* a swap's new master until it is ready, else -1 */
    bool failed;   /* on probation, its first worker failed */
    int64_t stop_deadline_us;
    int64_t spawn_not_before_us; /* crash-loop backoff */
    int64_t backoff_us;
    int64_t next_tick_us; /* dynamic mode upkeep */
    bool spawn_wakes;     /* the next worker forked runs on_wake first */
    int standby_fd;       /* a standby is held (see sh_pool_callbacks.standby_open), else -1 */
    int64_t standby_retry_us;
    int64_t standby_backoff_us;
} sh_master;

static bool sh_listen_has_waiting(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

#define SH_STANDBY_RETRY_US     1000000
#define SH_STANDBY_RETRY_MAX_US 60000000

/* Whether the master should hold a standby and has none: it has one to make,
 * is neither stopping nor on probation, and the pool has no worker at all. */
static bool sh_master_standby_wanted(const sh_master *m)
{
    return m->cb->standby_open != NULL && m->standby_fd < 0 && !m->stopping && m->ready_fd < 0 &&
           sh_sb_workers(m->sb) == 0;
}

/* The pool has no worker and nothing waits: hold a standby for the next one. */
static void sh_master_standby_open(sh_master *m)
{
    if (!sh_master_standby_wanted(m) || sh_now_us() < m->standby_retry_us || sh_listen_has_waiting(m->listen_fd))
        return;
    m->standby_fd = m->cb->standby_open(m->cb->ctx);
    if (m->standby_fd >= 0) {
        m->standby_backoff_us = 0;
        atomic_store(&m->sb->db_standby, 1);
        return;
    }
    m->standby_backoff_us = m->standby_backoff_us ? m->standby_backoff_us * 2 : SH_STANDBY_RETRY_US;
    if (m->standby_backoff_us > SH_STANDBY_RETRY_MAX_US)
        m->standby_backoff_us = SH_STANDBY_RETRY_MAX_US;
    m->standby_retry_us = sh_now_us() + m->standby_backoff_us;
}

bool sh_pool_connection_waiting(void) { return sh_pool_listen_fd >= 0 && sh_listen_has_waiting(sh_pool_listen_fd); }

static void sh_master_standby_close(sh_master *m, bool handed_over)
{
    if (m->standby_fd < 0)
        return;
    m->cb->standby_close(m->cb->ctx, handed_over);
    m->standby_fd = -1;
    atomic_store(&m->sb->db_standby, 0);
}

static int sh_master_spawn(sh_master *m)
{
    sh_scoreboard *sb = m->sb;
    int slot = -1;
    for (int i = 0; i < sb->nslots; i++) {
        if (atomic_load(&sb->slots[i].state) == SH_SLOT_EMPTY) {
            slot = i;
            break;
        }
    }
    if (slot < 0)
        return -1;
    sh_sb_slot *s = &sb->slots[slot];
    atomic_store(&s->generation, m->generation);
    atomic_store(&s->requests, 0);
    atomic_store(&s->exit_reason, SH_EXIT_NONE);
    atomic_store(&s->handler, -1);
    atomic_store(&s->started_wall_us, sh_wall_us());
    sh_slot_set(s, SH_SLOT_STARTING);

    /* No signal may reach the child before it has its own handlers: the master's
     * would write into the master's signal pipe. */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    int64_t fork_at = sh_now_us();
    pid_t pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        sh_log_msgf(SH_LOG_ERROR, "spawn_failed", "fork: %s", strerror(errno));
        sh_slot_set(s, SH_SLOT_EMPTY);
        return -1;
    }
    if (pid == 0) {
        sh_pool_slot = s;
        sh_sb_set_current(sh_pool_sb, s);
        atomic_store(&s->pid, (int)getpid());
        sh_worker_stop = m->stopping ? SH_STOP_DRAIN : SH_STOP_NONE;
        sh_worker_wake = m->spawn_wakes;
        sh_worker_main(m->cfg, m->listen_fd, m->cb);
    }
    int64_t fork_us = sh_now_us() - fork_at;
    bool standby = m->standby_fd >= 0;
    sh_master_standby_close(m, true);
    atomic_store(&s->pid, (int)pid);
    atomic_fetch_add(&sb->spawns, 1);
    uint64_t workers = (uint64_t)sh_sb_workers(sb);
    uint64_t peak = atomic_load(&sb->peak_workers);
    while (workers > peak && !atomic_compare_exchange_weak(&sb->peak_workers, &peak, workers))
        ;
    sh_logline l;
    sh_log_begin(&l, SH_LOG_INFO, "worker_spawn");
    sh_log_int(&l, "worker_pid", pid);
    sh_log_int(&l, "generation", m->generation);
    sh_log_int(&l, "workers", (long long)workers);
    sh_log_int(&l, "fork_us", fork_us);
    sh_log_int(&l, "standby", standby); /* 1: it inherited the standby session */
    sh_log_end(&l);
    return 0;
}

static int sh_master_current(const sh_master *m, sh_slot_state state)
{
    return sh_sb_count(m->sb, state, m->generation);
}

static int sh_master_current_workers(const sh_master *m)
{
    return sh_master_current(m, SH_SLOT_STARTING) + sh_master_current(m, SH_SLOT_IDLE) +
           sh_master_current(m, SH_SLOT_BUSY) + sh_master_current(m, SH_SLOT_WAITING);
}

/* Whether one more worker is allowed: max_children of them working, and in an
 * ondemand pool up to max_children more while others wait on invocations of
 * other services (two services calling each other, each pool full of callers
 * waiting for the other, would otherwise wait until the invocations time out;
 * the extra workers exit when idle like any other). */
static bool sh_master_may_spawn(const sh_master *m)
{
    int current = sh_master_current_workers(m);
    if (m->cfg->mode != SH_POOL_ONDEMAND)
        return current < m->cfg->max_children;
    int waiting = sh_master_current(m, SH_SLOT_WAITING);
    return current - waiting < m->cfg->max_children && current < 2 * m->cfg->max_children;
}

static int sh_master_idle(const sh_master *m)
{
    return sh_master_current(m, SH_SLOT_STARTING) + sh_master_current(m, SH_SLOT_IDLE);
}

static sh_sb_slot *sh_master_slot_of(sh_master *m, pid_t pid)
{
    for (int i = 0; i < m->sb->nslots; i++)
        if (atomic_load(&m->sb->slots[i].pid) == (int)pid && atomic_load(&m->sb->slots[i].state) != SH_SLOT_EMPTY)
            return &m->sb->slots[i];
    return NULL;
}

static void sh_master_reap(sh_master *m)
{
    static const char *const reasons[] = {"none", "idle_timeout", "max_requests", "stopped", "failed"};
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        sh_sb_slot *s = sh_master_slot_of(m, pid);
        int reason = s ? atomic_load(&s->exit_reason) : SH_EXIT_NONE;
        uint64_t served = s ? atomic_load(&s->requests) : 0;
        sh_logline l;
        if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
            atomic_fetch_add(&m->sb->crashes, 1);
            sh_log_begin(&l, SH_LOG_ERROR, "worker_crash");
            sh_log_int(&l, "worker_pid", pid);
            if (WIFSIGNALED(status)) {
                sh_log_int(&l, "signal", WTERMSIG(status));
                sh_log_str(&l, "signal_name", strsignal(WTERMSIG(status)));
            } else {
                sh_log_int(&l, "exit_status", WEXITSTATUS(status));
            }
            sh_log_int(&l, "requests", (long long)served);
            sh_log_end(&l);
            if (m->ready_fd >= 0 && !m->failed) {
                m->failed = true; /* a swap's new binary: the old one keeps serving */
                sh_log_msg(SH_LOG_ERROR, "swap_not_ready", "the first worker failed: this master stops");
            }
            /* Back off when workers die before serving anything: a crash loop
             * must not turn into a fork loop. */
            if (served == 0 && !m->stopping) {
                m->backoff_us = m->backoff_us ? m->backoff_us * 2 : 10000;
                if (m->backoff_us > 2000000)
                    m->backoff_us = 2000000;
                m->spawn_not_before_us = sh_now_us() + m->backoff_us;
            } else {
                m->backoff_us = 0;
            }
        } else {
            /* a worker that ended well had the database: a standby not made
             * meanwhile is tried again at once, not after its back-off */
            m->standby_backoff_us = 0;
            m->standby_retry_us = 0;
            sh_log_begin(&l, SH_LOG_INFO, "worker_exit");
            sh_log_int(&l, "worker_pid", pid);
            sh_log_str(&l, "reason", reasons[reason >= 0 && reason <= SH_EXIT_FAILED ? reason : 0]);
            sh_log_int(&l, "requests", (long long)served);
            sh_log_end(&l);
        }
        if (s != NULL) {
            atomic_store(&s->pid, 0);
            atomic_store(&s->handler, -1);
            sh_slot_set(s, SH_SLOT_EMPTY);
        }
    }
}

static void sh_master_signal_workers(sh_master *m, int signo, bool old_generation_only)
{
    for (int i = 0; i < m->sb->nslots; i++) {
        sh_sb_slot *s = &m->sb->slots[i];
        int pid = atomic_load(&s->pid);
        if (pid <= 0 || atomic_load(&s->state) == SH_SLOT_EMPTY)
            continue;
        if (old_generation_only && atomic_load(&s->generation) == m->generation)
            continue;
        kill(pid, signo);
    }
}

/* Brings the pool to the size its mode wants (static, dynamic), never above max. */
static void sh_master_maintain(sh_master *m)
{
    if (m->stopping || sh_now_us() < m->spawn_not_before_us)
        return;
    const sh_pool_config *c = m->cfg;
    int current = sh_master_current_workers(m);
    if (c->mode == SH_POOL_STATIC) {
        while (current < c->max_children && sh_master_spawn(m) == 0)
            current++;
    } else if (c->mode == SH_POOL_DYNAMIC) {
        int idle = sh_master_idle(m);
        while (idle < c->min_spare && current < c->max_children && sh_master_spawn(m) == 0) {
            idle++;
            current++;
        }
    }
}

/* Dynamic mode: ends one idle worker per tick above max_spare (the longest idle). */
static void sh_master_trim_spares(sh_master *m)
{
    if (m->cfg->mode != SH_POOL_DYNAMIC || sh_master_current(m, SH_SLOT_IDLE) <= m->cfg->max_spare)
        return;
    sh_sb_slot *oldest = NULL;
    for (int i = 0; i < m->sb->nslots; i++) {
        sh_sb_slot *s = &m->sb->slots[i];
        if (atomic_load(&s->state) != SH_SLOT_IDLE || atomic_load(&s->generation) != m->generation)
            continue;
        if (oldest == NULL || atomic_load(&s->state_since_us) < atomic_load(&oldest->state_since_us))
            oldest = s;
    }
    if (oldest != NULL)
        kill(atomic_load(&oldest->pid), SIGQUIT);
}

/* A connection waits and nobody idle will take it: fork, if the limit allows. */
static void sh_master_on_waiting_connection(sh_master *m)
{
    if (sh_master_idle(m) > 0 || sh_now_us() < m->spawn_not_before_us)
        return;
    if (!sh_master_may_spawn(m)) {
        sh_pool_note_saturated(m->sb);
        return;
    }
    sh_master_spawn(m);
}

static void sh_master_reload(sh_master *m)
{
    if (m->cb->reload != NULL)
        m->cb->reload(m->cb->ctx);
    m->generation++;
    atomic_store(&m->sb->generation, m->generation);
    sh_log_msgf(SH_LOG_INFO, "pool_reload", "replacing workers, generation %u", m->generation);
    sh_master_signal_workers(m, SIGQUIT, true);
    sh_master_maintain(m);
}

static void sh_master_begin_stop(sh_master *m, bool retire)
{
    if (m->stopping)
        return;
    m->stopping = true;
    m->retiring = retire;
    m->stop_deadline_us = sh_now_us() + m->cfg->shutdown_timeout_ms * 1000;
    sh_log_msgf(SH_LOG_INFO, retire ? "pool_retiring" : "pool_stopping",
                "finishing in-flight requests (at most %lld ms)%s", (long long)m->cfg->shutdown_timeout_ms,
                retire ? "; the new master serves the rest" : "");
    if (retire) {
        sh_master_signal_workers(m, SIGQUIT, false);
        return;
    }
    /* New connections are refused from now on; queued ones are still served. */
    if (sh_pool_unix_path[0] != '\0')
        unlink(sh_pool_unix_path);
    sh_master_signal_workers(m, SIGTERM, false);
}

/* SIGUSR1 (logrotate): the master's log, then each worker's, which reopens
 * its own when it next waits for a connection. */
static void sh_master_reopen_logs(sh_master *m)
{
    if (sh_log_reopen() != 0)
        sh_log_msgf(SH_LOG_ERROR, "log_reopen_failed", "%s: the old file stays in use", strerror(errno));
    sh_master_signal_workers(m, SIGUSR1, false);
}

/* A swap's new master whose first worker passed: ready to take over. */
static void sh_master_become_ready(sh_master *m)
{
    if (m->ready_fd < 0 || !atomic_load(&m->sb->probe_passed))
        return;
    if (m->cb->ready != NULL)
        m->cb->ready(m->cb->ctx);
    ssize_t w = write(m->ready_fd, "R", 1);
    (void)w; /* a supervisor that went away learns nothing either way */
    close(m->ready_fd);
    m->ready_fd = -1;
    sh_pool_ready_fd = -1;
    sh_pool_probation = false;
    sh_master_status_open(m->cfg, m->cb);
    if (m->cb->on_wake != NULL)
        atomic_store(&m->sb->wake_at_us, sh_wall_us()); /* what waits from before, once */
    sh_log_msg(SH_LOG_INFO, "pool_ready", "the first worker answered its health check: serving");
}

/* The on_wake a worker asked for is due: an idle worker runs it (SIGUSR2),
 * else a new one; when the pool is full, a second later. */
static void sh_master_wake(sh_master *m)
{
    int64_t at = atomic_load(&m->sb->wake_at_us);
    if (at == 0 || at > sh_wall_us() || !atomic_compare_exchange_strong(&m->sb->wake_at_us, &at, 0))
        return;
    for (int i = 0; i < m->sb->nslots; i++) {
        sh_sb_slot *s = &m->sb->slots[i];
        int pid = atomic_load(&s->pid);
        if (pid > 0 && atomic_load(&s->state) == SH_SLOT_IDLE && atomic_load(&s->generation) == m->generation) {
            kill(pid, SIGUSR2);
            return;
        }
    }
    if (sh_now_us() >= m->spawn_not_before_us && sh_master_may_spawn(m)) {
        m->spawn_wakes = true;
        int rc = sh_master_spawn(m);
        m->spawn_wakes = false;
        if (rc == 0)
            return;
    }
    int64_t later = sh_wall_us() + 1000000, cur = 0;
    atomic_compare_exchange_strong(&m->sb->wake_at_us, &cur, later);
}

/* Microseconds of monotonic time until the wake that is due, -1 for none. */
static int64_t sh_master_wake_in(const sh_master *m)
{
    int64_t at = atomic_load(&m->sb->wake_at_us);
    if (at == 0 || m->stopping || m->ready_fd >= 0 || m->cb->on_wake == NULL)
        return -1;
    int64_t in = at - sh_wall_us();
    return in > 0 ? in : 0;
}

int sh_pool_run(const sh_pool_config *cfg, int listen_fd, int ready_fd, sh_scoreboard *sb, const sh_pool_callbacks *cb)
{
    sh_pool_sb = sb;
    sh_sb_set_current(sb, NULL);
    sh_pool_master_pid = getpid();
    sh_pool_max_children = cfg->max_children;
    sh_pool_ondemand = cfg->mode == SH_POOL_ONDEMAND;
    sh_pool_listen_fd = listen_fd;
    if (pipe2(sh_pool_signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0 ||
        pipe2(sh_pool_notify_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "pool_failed", "pipe: %s", strerror(errno));
        return 1;
    }
    sh_set_handler(SIGTERM, sh_master_on_signal, SA_RESTART);
    sh_set_handler(SIGINT, sh_master_on_signal, SA_RESTART);
    sh_set_handler(SIGQUIT, sh_master_on_signal, SA_RESTART);
    sh_set_handler(SIGHUP, sh_master_on_signal, SA_RESTART);
    sh_set_handler(SIGUSR1, sh_master_on_signal, SA_RESTART);
    sh_set_handler(SIGCHLD, sh_master_on_signal, SA_RESTART | SA_NOCLDSTOP);
    sh_set_handler(SIGPIPE, SIG_IGN, 0);

    sh_master m = {.cfg = cfg,
                   .cb = cb,
                   .sb = sb,
                   .listen_fd = listen_fd,
                   .generation = 0,
                   .ready_fd = ready_fd,
                   .standby_fd = -1};
    sh_pool_probation = ready_fd >= 0;
    sh_pool_ready_fd = ready_fd;
    sh_logline l;
    sh_log_begin(&l, SH_LOG_INFO, "pool_start");
    sh_log_str(&l, "listen", cfg->listen);
    sh_log_str(&l, "mode", sh_pool_mode_names[cfg->mode]);
    sh_log_int(&l, "max_children", cfg->max_children);
    sh_log_int(&l, "idle_timeout_ms", cfg->idle_timeout_ms);
    sh_log_end(&l);

    if (m.ready_fd >= 0) {
        sh_master_spawn(&m); /* on probation: one worker, checked before it serves */
    } else {
        if (cb->ready != NULL)
            cb->ready(cb->ctx);
        sh_master_status_open(cfg, cb);
        if (cb->on_wake != NULL)
            atomic_store(&sb->wake_at_us, sh_wall_us()); /* what waits from before, once */
        if (cfg->mode == SH_POOL_DYNAMIC)
            for (int64_t i = 0; i < cfg->start_children && i < cfg->max_children; i++)
                sh_master_spawn(&m);
        sh_master_maintain(&m);
    }
    m.next_tick_us = sh_now_us() + 1000000;

    for (;;) {
        int64_t now = sh_now_us();
        if (m.failed && !m.stopping)
            sh_master_begin_stop(&m, true);
        if (m.stopping) {
            if (sh_sb_workers(sb) == 0 && (m.retiring || !sh_listen_has_waiting(listen_fd)))
                break;
            if (now >= m.stop_deadline_us) {
                sh_log_msg(SH_LOG_WARN, "pool_stop_timeout", "killing workers still busy");
                sh_master_signal_workers(&m, SIGKILL, false);
                while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                    ;
                break;
            }
        }

        /* Watch the socket only when a waiting connection would find nobody.
         * Workers tell the master when they take the last idle slot, unless
         * it is watching already (master_watching): when it stops watching
         * it clears the flag first and then looks at the workers again, so a
         * worker that went busy meanwhile is either seen here or sees the
         * flag clear and writes (both sides sequentially consistent). */
        bool watch = sh_master_idle(&m) == 0 && m.ready_fd < 0 && !m.retiring &&
                     (m.stopping ? sh_sb_workers(sb) == 0 : sh_master_may_spawn(&m));
        if (!watch && atomic_load(&sb->master_watching)) {
            atomic_store(&sb->master_watching, 0);
            watch = sh_master_idle(&m) == 0 && m.ready_fd < 0 && !m.retiring &&
                    (m.stopping ? sh_sb_workers(sb) == 0 : sh_master_may_spawn(&m));
        }
        atomic_store(&sb->master_watching, watch ? 1 : 0);
        sh_master_standby_open(&m);
        int64_t deadline = -1;
        if (m.stopping)
            deadline = m.stop_deadline_us;
        if (m.spawn_not_before_us > now) {
            watch = false;
            if (deadline < 0 || m.spawn_not_before_us < deadline)
                deadline = m.spawn_not_before_us;
        }
        if (cfg->mode == SH_POOL_DYNAMIC && !m.stopping && (deadline < 0 || m.next_tick_us < deadline))
            deadline = m.next_tick_us;
        if (sh_master_standby_wanted(&m) && m.standby_retry_us > now && (deadline < 0 || m.standby_retry_us < deadline))
            deadline = m.standby_retry_us;
        int64_t wake_in = sh_master_wake_in(&m);
        if (wake_in >= 0 && (deadline < 0 || now + wake_in < deadline))
            deadline = now + wake_in;
        int timeout = deadline < 0 ? -1 : (int)((deadline - now + 999) / 1000);
        if (timeout < 0 && deadline >= 0)
            timeout = 0;

        struct pollfd fds[5] = {
            {.fd = sh_pool_signal_pipe[0], .events = POLLIN},   {.fd = sh_pool_notify_pipe[0], .events = POLLIN},
            {.fd = sh_pool_status_fd, .events = POLLIN}, /* -1: none, poll skips it */
            {.fd = m.standby_fd, .events = POLLIN | POLLRDHUP}, {.fd = watch ? listen_fd : -1, .events = POLLIN},
        };
        int rc = poll(fds, 5, timeout);
        if (rc < 0 && errno != EINTR) {
            sh_log_msgf(SH_LOG_ERROR, "pool_failed", "poll: %s", strerror(errno));
            return 1;
        }

        if (rc > 0 && (fds[0].revents & POLLIN)) {
            unsigned char sigs[64];
            ssize_t n = read(sh_pool_signal_pipe[0], sigs, sizeof(sigs));
            for (ssize_t i = 0; i < n; i++) {
                switch (sigs[i]) {
                case SIGCHLD: sh_master_reap(&m); break;
                case SIGHUP:
                    if (!m.stopping)
                        sh_master_reload(&m);
                    break;
                case SIGQUIT: sh_master_begin_stop(&m, true); break;
                case SIGUSR1: sh_master_reopen_logs(&m); break;
                default: sh_master_begin_stop(&m, false); break;
                }
            }
        }
        if (rc > 0 && (fds[1].revents & POLLIN)) {
            unsigned char drain[256];
            while (read(sh_pool_notify_pipe[0], drain, sizeof(drain)) > 0)
                ;
        }
        if (rc > 0 && (fds[2].revents & POLLIN))
            sh_master_status_serve(cb);
        if (rc > 0 && fds[3].revents != 0 && m.standby_fd >= 0) {
            /* the server closed the idle session (a restart, wait_timeout) */
            sh_log_msg(SH_LOG_INFO, "standby_lost", "the server closed the standby session: opening another");
            sh_master_standby_close(&m, false);
            m.standby_retry_us = sh_now_us() + SH_STANDBY_RETRY_US;
        }
        sh_master_become_ready(&m);
        if (m.ready_fd >= 0)
            continue; /* on probation: nothing else until its first worker passed */
        if (!m.stopping && sh_master_wake_in(&m) == 0)
            sh_master_wake(&m);
        if (cfg->mode == SH_POOL_DYNAMIC && !m.stopping && sh_now_us() >= m.next_tick_us) {
            sh_master_trim_spares(&m);
            m.next_tick_us = sh_now_us() + 1000000;
        }
        if (!m.stopping) {
            sh_master_maintain(&m);
            if (watch && rc > 0 && (fds[4].revents & POLLIN))
                sh_master_on_waiting_connection(&m);
        } else if (watch && rc > 0 && (fds[4].revents & POLLIN) && sh_sb_workers(sb) == 0) {
            sh_master_spawn(&m); /* born draining: serves the backlog, then exits */
        }
    }
    sh_master_standby_close(&m, false);
    close(listen_fd);
    sh_master_status_close();
    if (m.ready_fd >= 0)
        close(m.ready_fd); /* unready: the supervisor sees the pipe close */
    if (sh_pool_unix_path[0] != '\0' && !m.retiring)
        unlink(sh_pool_unix_path);
    sh_log_msg(SH_LOG_INFO, m.retiring ? "pool_retired" : "pool_stopped", "all workers have exited");
    return m.failed ? SH_POOL_EXIT_NOT_READY : 0;
}
