/* sh_core.h: the few things every libshared file needs: clocks, allocation that
 * never returns NULL (a worker out of memory dies and the pool replaces it), and
 * the return-code convention (0 success, -1 error).
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_CORE_H
#define SH_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SH_OK    0
#define SH_ERROR (-1)

#define SH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define SH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SH_NORETURN          __attribute__((noreturn))
#else
#define SH_PRINTF(fmt, args)
#define SH_NORETURN
#endif

/* Monotonic clock in microseconds (durations, deadlines). */
int64_t sh_now_us(void);
/* Wall clock in microseconds since the epoch (timestamps people read). */
int64_t sh_wall_us(void);

/* Allocation for long-lived objects: aborts the process on out-of-memory. */
void *sh_xmalloc(size_t n);
void *sh_xcalloc(size_t n, size_t size);
char *sh_xstrdup(const char *s);

/* Writes this process's pid and a newline to path, atomically (a temporary
 * file renamed over it). 0, or -1 (errno set). */
int sh_pid_file_write(const char *path);
/* Removes path if it still holds this process's pid (a successor may have
 * written its own). 0 when removed, -1 otherwise. */
int sh_pid_file_remove(const char *path);

/* Logs a fatal event and exits with status 1. */
SH_NORETURN void sh_fatal(const char *fmt, ...) SH_PRINTF(1, 2);

#endif
