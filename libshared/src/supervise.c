/* supervise.c: the supervisor of a pool master, and binary swaps (see
 * sh_supervise.h). One loop waits on a signalfd and, during a swap, on the
 * new master's ready pipe. */
#include "sh_supervise.h"
#include "sh_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define SH_SUP_MIN_DELAY_MS 100
#define SH_SUP_MAX_DELAY_MS 5000
#define SH_SUP_STABLE_US    (10 * 1000000LL) /* up this long: the next death restarts at once */

/* What the new master's exit status means before it was ready (pool.c and
 * service.c exit with these). */
#define SH_EXIT_NOT_READY 3

typedef struct {
    const sh_supervise_config *cfg;
    sigset_t mask, old_mask;
    int sigfd;
    pid_t master; /* 0 while none runs */
    int64_t started_us;
    int64_t delay_ms;      /* before the next restart */
    int64_t restart_at_us; /* 0: no restart pending */
    bool stopping;
    pid_t next;   /* a swap's new master, 0 when no swap runs */
    bool adopted; /* the master is not our child (its supervisor died): a swap replaces it or we exit */
    int ready_fd; /* its ready pipe, -1 when closed */
    int64_t next_deadline_us;
} sh_sup;

static const char *sh_sup_pid_file;

/* The supervisor ends here, and only here. */
static SH_NORETURN void sh_sup_exit(int status)
{
    if (sh_sup_pid_file != NULL)
        unlink(sh_sup_pid_file);
    exit(status);
}

/* Forks a master from this image. 0 in the child (the new master), its pid
 * in the supervisor, -1 on failure (logged). */
static pid_t sh_sup_fork_master(sh_sup *s)
{
    pid_t pid = fork();
    if (pid == 0) {
        close(s->sigfd);
        signal(SIGUSR1, SIG_IGN); /* a log reopen before the pool takes it must not kill the master */
        sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
        sh_sup_pid_file = NULL;
        sh_log_after_fork();
        return 0;
    }
    if (pid < 0)
        sh_log_msgf(SH_LOG_ERROR, "supervisor_fork_failed", "fork: %s", strerror(errno));
    return pid;
}

static void sh_sup_log_death(pid_t pid, int status, int64_t up_ms, int64_t delay_ms)
{
    sh_logline l;
    sh_log_begin(&l, SH_LOG_ERROR, "master_died");
    sh_log_int(&l, "master_pid", pid);
    if (WIFSIGNALED(status))
        sh_log_str(&l, "signal", strsignal(WTERMSIG(status)));
    else
        sh_log_int(&l, "exit_status", WEXITSTATUS(status));
    sh_log_int(&l, "up_ms", up_ms);
    sh_log_int(&l, "restart_in_ms", delay_ms);
    sh_log_end(&l);
}

/* Writes the swap's outcome for whoever asked for it (atomically: a reader
 * never sees half a line). */
static void sh_sup_swap_status(const sh_sup *s, const char *fmt, ...) SH_PRINTF(2, 3);
static void sh_sup_swap_status(const sh_sup *s, const char *fmt, ...)
{
    char line[512], tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    sh_log_msg(strncmp(line, "ok", 2) == 0 ? SH_LOG_INFO : SH_LOG_ERROR, "swap_done", line);
    const char *path = s->cfg->swap_status_file;
    if (path == NULL || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "%s\n", line);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        unlink(tmp);
}

static void sh_sup_end_swap(sh_sup *s)
{
    if (s->ready_fd >= 0)
        close(s->ready_fd);
    s->ready_fd = -1;
    s->next = 0;
}

/* Runs argv[0] again as a new master on the inherited socket. */
static void sh_sup_begin_swap(sh_sup *s)
{
    if (s->stopping || s->next != 0) {
        sh_log_msg(SH_LOG_WARN, "swap_ignored", s->stopping ? "the pool is stopping" : "a swap is under way");
        return;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        sh_sup_swap_status(s, "failed: pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        char fd[16], ready[16];
        snprintf(fd, sizeof(fd), "%d", s->cfg->listen_fd);
        snprintf(ready, sizeof(ready), "%d", p[1]);
        signal(SIGUSR1, SIG_IGN); /* kept across the exec until the pool takes it */
        sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
        if (fcntl(s->cfg->listen_fd, F_SETFD, 0) != 0 || fcntl(p[1], F_SETFD, 0) != 0 ||
            setenv("PL_LISTEN_FD", fd, 1) != 0 || setenv("PL_READY_FD", ready, 1) != 0 ||
            unsetenv("PL_SUPERVISOR_RESUME") != 0)
            _exit(127);
        execvp(s->cfg->argv[0], s->cfg->argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        sh_sup_swap_status(s, "failed: fork: %s", strerror(errno));
        return;
    }
    s->next = pid;
    s->ready_fd = p[0];
    s->next_deadline_us = sh_now_us() + s->cfg->swap_timeout_ms * 1000;
    sh_log_msgf(SH_LOG_INFO, "swap_start", "starting a new %s master (pid %d) from %s", s->cfg->service, (int)pid,
                s->cfg->argv[0]);
}

/* The new master is ready: the old one retires, and this process becomes the
 * new binary too (execvp keeps the pid, the children and the socket). */
static void sh_sup_swap_ready(sh_sup *s)
{
    pid_t old = s->master;
    s->master = s->next;
    s->adopted = false;
    s->started_us = sh_now_us();
    s->delay_ms = 0;
    s->restart_at_us = 0;
    sh_sup_end_swap(s);
    if (old > 0)
        kill(old, SIGQUIT);
    sh_sup_swap_status(s, "ok %d", (int)s->master);

    char fd[16], master[16];
    snprintf(fd, sizeof(fd), "%d", s->cfg->listen_fd);
    snprintf(master, sizeof(master), "%d", (int)s->master);
    if (fcntl(s->cfg->listen_fd, F_SETFD, 0) != 0 || setenv("PL_LISTEN_FD", fd, 1) != 0 ||
        setenv("PL_SUPERVISOR_RESUME", master, 1) != 0) {
        sh_log_msgf(SH_LOG_WARN, "supervisor_reexec_failed", "%s; this supervisor goes on", strerror(errno));
        return;
    }
    /* Signals stay blocked across the exec: one that arrives meanwhile stays
     * pending for the new image's signalfd. */
    execvp(s->cfg->argv[0], s->cfg->argv);
    sh_log_msgf(SH_LOG_WARN, "supervisor_reexec_failed", "exec %s: %s; this supervisor goes on", s->cfg->argv[0],
                strerror(errno));
    unsetenv("PL_SUPERVISOR_RESUME");
    fcntl(s->cfg->listen_fd, F_SETFD, FD_CLOEXEC);
}

static void sh_sup_swap_failed(sh_sup *s, int status)
{
    if (WIFSIGNALED(status))
        sh_sup_swap_status(s, "failed: the new master died (%s) before it was ready", strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) == SH_EXIT_NOT_READY)
        sh_sup_swap_status(s, "failed: the new master's first worker failed its health check or crashed");
    else if (WEXITSTATUS(status) == 127)
        sh_sup_swap_status(s, "failed: %s could not be run", s->cfg->argv[0]);
    else
        sh_sup_swap_status(s, "failed: the new binary stopped at start (exit status %d; its configuration?)",
                           WEXITSTATUS(status));
    sh_sup_end_swap(s);
    if (s->adopted)
        sh_sup_exit(1); /* the orphaned master serves on, as before */
    if (s->master == 0 && !s->stopping && s->restart_at_us == 0)
        s->restart_at_us = sh_now_us(); /* the old master ended meanwhile: start this release again */
}

/* A master (or a retired one) ended. */
static void sh_sup_reaped(sh_sup *s, pid_t pid, int status)
{
    if (pid == s->next) {
        sh_sup_swap_failed(s, status);
        return;
    }
    if (pid != s->master) {
        sh_log_msgf(SH_LOG_INFO, "master_retired", "the previous master (pid %d) has finished", (int)pid);
        return;
    }
    int64_t up_us = sh_now_us() - s->started_us;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    s->master = 0;
    /* stopped, or failing as it starts (its configuration, say): done */
    if (s->stopping || clean || (WIFEXITED(status) && up_us < 1000000)) {
        if (s->next != 0)
            return; /* the swap's master takes over (or the stop ends it) */
        sh_log_msgf(SH_LOG_INFO, "supervisor_stop", "the master exited (%d)",
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        sh_sup_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
    }
    s->delay_ms = up_us >= SH_SUP_STABLE_US ? 0
                  : s->delay_ms == 0        ? SH_SUP_MIN_DELAY_MS
                                     : (s->delay_ms * 2 > SH_SUP_MAX_DELAY_MS ? SH_SUP_MAX_DELAY_MS : s->delay_ms * 2);
    sh_sup_log_death(pid, status, up_us / 1000, s->delay_ms);
    s->restart_at_us = sh_now_us() + s->delay_ms * 1000;
}

static void sh_sup_on_signal(sh_sup *s, int sig)
{
    if (sig == SIGCHLD) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            sh_sup_reaped(s, pid, status);
        if (s->stopping && s->master == 0 && s->next == 0)
            sh_sup_exit(0);
        return;
    }
    if (sig == SIGUSR2) {
        sh_sup_begin_swap(s);
        return;
    }
    if (sig == SIGUSR1) { /* logrotate moved the log: reopen it, and so do the masters */
        if (sh_log_reopen() != 0)
            sh_log_msgf(SH_LOG_ERROR, "log_reopen_failed", "%s: the old file stays in use", strerror(errno));
        if (s->next > 0)
            kill(s->next, SIGUSR1);
    }
    if (sig == SIGHUP || sig == SIGUSR1) {
        if (s->master > 0)
            kill(s->master, sig);
        return;
    }
    /* SIGTERM, SIGINT, SIGQUIT: the pool stops for good. Our copy of the
     * listening socket goes now: once the master (which drains what waits)
     * closes its own, the socket is gone and a new connection is refused at
     * once (nginx tries another upstream) instead of queueing on a socket
     * nobody will accept from and being reset after its request was sent. */
    if (!s->stopping && s->cfg->listen_fd >= 0)
        close(s->cfg->listen_fd);
    s->stopping = true;
    if (s->master > 0)
        kill(s->master, SIGTERM);
    if (s->adopted)
        s->master = 0; /* not ours to wait for */
    if (s->next > 0)
        kill(s->next, SIGTERM);
    if (s->master == 0 && s->next == 0)
        sh_sup_exit(0); /* nothing runs: nothing to wait for */
}

/* The loop; returns 0 only in a master it forks. */
static int sh_sup_run(sh_sup *s)
{
    for (;;) {
        int64_t now = sh_now_us(), deadline = -1;
        if (s->restart_at_us > 0)
            deadline = s->restart_at_us;
        if (s->next != 0 && (deadline < 0 || s->next_deadline_us < deadline))
            deadline = s->next_deadline_us;
        int timeout = deadline < 0 ? -1 : deadline <= now ? 0 : (int)((deadline - now + 999) / 1000);
        struct pollfd fds[2] = {{.fd = s->sigfd, .events = POLLIN}, {.fd = s->ready_fd, .events = POLLIN}};
        int n = poll(fds, s->ready_fd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR)
            sh_sup_exit(1);
        if (n > 0 && (fds[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                sh_sup_on_signal(s, (int)si.ssi_signo);
        }
        if (n > 0 && s->ready_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
            char c = 0;
            ssize_t got = read(s->ready_fd, &c, 1);
            if (got == 1 && c == 'R')
                sh_sup_swap_ready(s);
            else if (got == 0) { /* it closed the pipe unready: it is exiting, SIGCHLD says how */
                close(s->ready_fd);
                s->ready_fd = -1;
            }
        }
        now = sh_now_us();
        if (s->next != 0 && now >= s->next_deadline_us) {
            kill(s->next, SIGTERM);
            sh_sup_swap_status(s, "failed: the new master was not ready within %lld ms",
                               (long long)s->cfg->swap_timeout_ms);
            sh_sup_end_swap(s);
            if (s->adopted)
                sh_sup_exit(1);
            if (s->master == 0 && !s->stopping && s->restart_at_us == 0)
                s->restart_at_us = now;
        }
        if (s->master == 0 && s->restart_at_us > 0 && now >= s->restart_at_us && !s->stopping) {
            pid_t pid = sh_sup_fork_master(s);
            if (pid == 0)
                return 0;
            s->restart_at_us = pid < 0 ? now + SH_SUP_MAX_DELAY_MS * 1000LL : 0;
            if (pid > 0) {
                s->master = pid;
                s->started_us = sh_now_us();
                sh_log_msgf(SH_LOG_WARN, "master_restarted", "a new %s pool master (pid %d)", s->cfg->service,
                            (int)pid);
            }
        }
    }
}

/* Blocks the signals the supervisor takes through its signalfd. -1 when it cannot. */
static int sh_sup_init(sh_sup *s, const sh_supervise_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->ready_fd = -1;
    sigemptyset(&s->mask);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < SH_ARRAY_LEN(sigs); i++)
        sigaddset(&s->mask, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &s->mask, &s->old_mask) != 0)
        return -1;
    /* a mask inherited through a swap's exec has them blocked already: the
     * masters must not inherit that */
    for (size_t i = 0; i < SH_ARRAY_LEN(sigs); i++)
        sigdelset(&s->old_mask, sigs[i]);
    s->sigfd = signalfd(-1, &s->mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sigfd < 0) {
        sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
        return -1;
    }
    if (cfg->pid_file != NULL && sh_pid_file_write(cfg->pid_file) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "startup_failed", "cannot write the supervisor's pid file %s", cfg->pid_file);
        exit(1);
    }
    sh_sup_pid_file = cfg->pid_file;
    return 0;
}

int sh_supervise(const sh_supervise_config *cfg)
{
    static sh_sup s;
    if (sh_sup_init(&s, cfg) != 0)
        return 0; /* cannot supervise: be the master */
    pid_t pid = sh_sup_fork_master(&s);
    if (pid == 0)
        return 0;
    if (pid < 0)
        sh_sup_exit(1);
    s.master = pid;
    s.started_us = sh_now_us();
    sh_log_msgf(SH_LOG_INFO, "supervisor_start", "supervising the %s pool master (pid %d)", cfg->service, (int)pid);
    return sh_sup_run(&s);
}

int sh_supervise_resume(const sh_supervise_config *cfg, int master_pid)
{
    static sh_sup s;
    if (sh_sup_init(&s, cfg) != 0)
        sh_fatal("the supervisor cannot take its signals back after a swap");
    s.master = master_pid;
    s.started_us = sh_now_us();
    sh_log_msgf(SH_LOG_INFO, "supervisor_resumed", "supervising the %s pool master (pid %d) of this release",
                cfg->service, master_pid);
    return sh_sup_run(&s);
}

int sh_supervise_adopt(const sh_supervise_config *cfg, int master_pid)
{
    static sh_sup s;
    if (sh_sup_init(&s, cfg) != 0)
        sh_fatal("the supervisor cannot take its signals");
    s.master = master_pid;
    s.adopted = true;
    s.started_us = sh_now_us();
    sh_log_msgf(SH_LOG_INFO, "supervisor_adopting",
                "the %s pool master (pid %d) lost its supervisor: swapping in a new master to take over",
                cfg->service, master_pid);
    sh_sup_begin_swap(&s);
    if (s.next == 0)
        sh_sup_exit(1); /* could not even start one (the status file says why) */
    return sh_sup_run(&s);
}
