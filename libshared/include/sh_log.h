/* sh_log.h: structured logs, one JSON object per line on stderr, written with a
 * single write(2) so lines from many workers never interleave. Every line carries
 * time, level, event, service and pid.
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_LOG_H
#define SH_LOG_H

#include "sh_core.h"

typedef enum { SH_LOG_DEBUG, SH_LOG_INFO, SH_LOG_WARN, SH_LOG_ERROR } sh_log_level;

#define SH_LOG_LINE_MAX 4096

/* A line being built; fields are appended in order and escaped. */
typedef struct {
    char buf[SH_LOG_LINE_MAX];
    size_t len;
    bool enabled;
} sh_logline;

/* Sets the service name every line carries and the lowest level written. */
void sh_log_init(const char *service, sh_log_level min_level);
/* Call in a child after fork(): lines then carry the new pid. */
void sh_log_after_fork(void);

/* Sends stderr (and so every line) and stdout to the end of the file at path,
 * created 0640 if missing: the file is opened O_APPEND, so a line is one
 * write(2) that lands whole, in the old file or in the new one across a
 * rotation. 0, or -1 with errno. */
int sh_log_open(const char *path);
/* Opens that path again as stderr and stdout (after logrotate renamed the
 * file); nothing when sh_log_open was never called. 0, or -1 with errno (the
 * old file stays). */
int sh_log_reopen(void);

void sh_log_begin(sh_logline *l, sh_log_level level, const char *event);
void sh_log_str(sh_logline *l, const char *key, const char *value);
void sh_log_strn(sh_logline *l, const char *key, const char *value, size_t len);
void sh_log_int(sh_logline *l, const char *key, long long value);
void sh_log_end(sh_logline *l);

/* One line with a "msg" field. */
void sh_log_msg(sh_log_level level, const char *event, const char *msg);
void sh_log_msgf(sh_log_level level, const char *event, const char *fmt, ...) SH_PRINTF(3, 4);

#endif
