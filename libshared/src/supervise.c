/* supervise.c: the supervisor of a pool master (see sh_supervise.h). */
#include "sh_supervise.h"
#include "sh_core.h"
#include "sh_log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SH_SUP_MIN_DELAY_MS 100
#define SH_SUP_MAX_DELAY_MS 5000
#define SH_SUP_STABLE_US    (10 * 1000000LL) /* up this long: the next death restarts at once */

static pid_t sh_sup_start(const sigset_t *old_mask)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, old_mask, NULL);
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

static const char *sh_sup_pid_file;

/* The supervisor ends here, and only here. */
static SH_NORETURN void sh_sup_exit(int status)
{
    if (sh_sup_pid_file != NULL)
        unlink(sh_sup_pid_file);
    exit(status);
}

int sh_supervise(const char *service, const char *pid_file)
{
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGQUIT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &mask, &old) != 0)
        return 0; /* cannot supervise: be the master */

    if (pid_file != NULL && sh_pid_file_write(pid_file) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "startup_failed", "cannot write the supervisor's pid file %s", pid_file);
        sh_sup_exit(1);
    }
    sh_sup_pid_file = pid_file;
    pid_t master = sh_sup_start(&old);
    if (master == 0) {
        sh_sup_pid_file = NULL;
        return 0;
    }
    if (master < 0)
        sh_sup_exit(1);
    sh_log_msgf(SH_LOG_INFO, "supervisor_start", "supervising the %s pool master (pid %d)", service, (int)master);
    int64_t started_us = sh_now_us();
    int64_t delay_ms = 0;      /* before the next restart */
    int64_t restart_at_us = 0; /* 0: the master runs */
    bool stopping = false;

    for (;;) {
        struct timespec ts = {1, 0}, *tp = NULL;
        if (restart_at_us > 0) {
            int64_t left = restart_at_us - sh_now_us();
            if (left < 0)
                left = 0;
            ts.tv_sec = (time_t)(left / 1000000);
            ts.tv_nsec = (long)(left % 1000000) * 1000L;
            tp = &ts;
        }
        siginfo_t si;
        int sig = tp ? sigtimedwait(&mask, &si, tp) : sigwaitinfo(&mask, &si);
        if (sig < 0 && errno != EAGAIN && errno != EINTR)
            sh_sup_exit(1);
        if (sig == SIGCHLD) {
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                if (pid != master)
                    continue; /* a worker of a master that died before it */
                int64_t up_us = sh_now_us() - started_us;
                bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                /* stopped, or failing as it starts (its configuration, say): done */
                if (stopping || clean || (WIFEXITED(status) && up_us < 1000000)) {
                    sh_log_msgf(SH_LOG_INFO, "supervisor_stop", "the master exited (%d)",
                                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
                    sh_sup_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
                }
                delay_ms = up_us >= SH_SUP_STABLE_US ? 0
                           : delay_ms == 0           ? SH_SUP_MIN_DELAY_MS
                                           : (delay_ms * 2 > SH_SUP_MAX_DELAY_MS ? SH_SUP_MAX_DELAY_MS : delay_ms * 2);
                sh_sup_log_death(master, status, up_us / 1000, delay_ms);
                master = 0;
                restart_at_us = sh_now_us() + delay_ms * 1000;
            }
        } else if (sig > 0) {
            if (sig != SIGHUP)
                stopping = true;
            if (master > 0)
                kill(master, sig);
            else if (stopping)
                sh_sup_exit(0); /* nothing runs: nothing to wait for */
        }
        if (master == 0 && restart_at_us > 0 && sh_now_us() >= restart_at_us) {
            master = sh_sup_start(&old);
            if (master == 0) {
                sh_sup_pid_file = NULL;
                return 0;
            }
            restart_at_us = master < 0 ? sh_now_us() + SH_SUP_MAX_DELAY_MS * 1000LL : 0;
            if (master < 0)
                master = 0;
            else {
                started_us = sh_now_us();
                sh_log_msgf(SH_LOG_WARN, "master_restarted", "a new %s pool master (pid %d)", service, (int)master);
            }
        }
    }
}
