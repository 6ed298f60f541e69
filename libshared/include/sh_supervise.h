/* sh_supervise.h: keeps a pool's master running, and swaps in a new binary
 * with no failed request (a release deploy or rollback).
 *
 * The process a service binary starts as opens the listening socket, forks the
 * master and waits. When the master dies by a signal (SIGKILL, a crash) or
 * fails after it had been up, it starts a new one at once, and again with a
 * growing delay (up to 5 s) if it keeps dying. When the master exits 0 (it was
 * stopped) the supervisor exits too. SIGTERM, SIGINT and SIGQUIT sent to the
 * supervisor stop the pool (the master gets SIGTERM and is never restarted
 * again); SIGHUP is passed on (reload); SIGUSR1 reopens the log file
 * (PL_LOG_FILE), here and in the masters and their workers (logrotate).
 *
 * SIGUSR2 swaps the binary, like nginx's binary upgrade: the supervisor runs
 * its own path again (argv[0]: the runner starts pools through a release
 * symlink it has just pointed at the new binary) as a new master on the same
 * socket (PL_LISTEN_FD), and waits until that master is ready: its first
 * worker started and answered the service's health check through the
 * dispatcher (PL_READY_FD). Then the old master retires (SIGQUIT: it finishes
 * what it serves; what waits in the backlog goes to the new one), and the
 * supervisor execs the new binary too (same pid, same children), so that the
 * whole pool runs the new release. A new master that exits, crashes, whose
 * first worker fails, or that is not ready within the swap timeout is stopped
 * and the old one keeps serving. Each outcome is one line in the swap status
 * file: "ok PID" or "failed: reason".
 * Layer 6 of libshared (supervise); see docs/architecture.md. */
#ifndef SH_SUPERVISE_H
#define SH_SUPERVISE_H

#include "sh_core.h"

typedef struct {
    const char *service;
    char **argv;                  /* the process's own, for the swaps' exec */
    int listen_fd;                /* inherited by every master */
    const char *pid_file;         /* the supervisor's pid, removed when it exits; may be NULL */
    const char *swap_status_file; /* outcome of each swap; may be NULL */
    int64_t swap_timeout_ms;      /* a new master must be ready within this */
} sh_supervise_config;

/* Returns 0 in a freshly forked master (which goes on starting the pool); in
 * the supervisor it never returns (it exits with the master's status). */
int sh_supervise(const sh_supervise_config *sc);

/* The same after a swap's exec: the supervisor goes on with master_pid as its
 * master (PL_SUPERVISOR_RESUME, read by the service). */
int sh_supervise_resume(const sh_supervise_config *sc, int master_pid);

/* A new supervisor for a running master whose supervisor died (PL_ADOPT_MASTER,
 * with the listening socket taken from it): it swaps in a new master at once,
 * as on SIGUSR2, and the orphaned one retires; then it supervises as usual.
 * When that swap fails the orphaned master serves on and this exits 1 (the
 * swap status file says why). Returns 0 only in a master it forks. */
int sh_supervise_adopt(const sh_supervise_config *sc, int master_pid);

#endif
