/* sh_supervise.h: keeps a pool's master running.
 *
 * The process a service binary starts as forks the master and waits. When the
 * master dies by a signal (SIGKILL, a crash) or fails after it had been up, it
 * starts a new one at once, and again with a growing delay (up to 5 s) if it
 * keeps dying. When the master exits 0 (it was stopped: SIGTERM, SIGINT) the
 * supervisor exits 0 too. SIGTERM, SIGINT, SIGQUIT and SIGHUP sent to the
 * supervisor are passed to the master. The master's workers outlive a killed
 * master only to finish what they hold; the new master listens afresh.
 * Layer 5 of libshared (supervise); see docs/architecture.md. */
#ifndef SH_SUPERVISE_H
#define SH_SUPERVISE_H

/* Returns 0 in a freshly forked master (which goes on starting the pool);
 * in the supervisor it never returns (it exits with the master's status).
 * pid_file (may be NULL): the supervisor's pid is written there, and removed
 * when it exits, so that a stop can be sent to it: a master that dies after
 * the supervisor was told to stop is not restarted. */
int sh_supervise(const char *service, const char *pid_file);

#endif
