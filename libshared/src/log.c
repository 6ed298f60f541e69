/* log.c: JSON-lines logging to stderr, and the log file behind it. */
#include "sh_log.h"
#include "sh_str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char sh_log_service[64] = "pilotlight";
static sh_log_level sh_log_min = SH_LOG_INFO;
static long sh_log_pid;

static const char *const sh_log_level_names[] = {"debug", "info", "warn", "error"};

void sh_log_init(const char *service, sh_log_level min_level)
{
    snprintf(sh_log_service, sizeof(sh_log_service), "%s", service);
    sh_log_min = min_level;
    sh_log_pid = (long)getpid();
}

void sh_log_after_fork(void) { sh_log_pid = (long)getpid(); }

static char sh_log_path[4096];

int sh_log_open(const char *path)
{
    if (snprintf(sh_log_path, sizeof(sh_log_path), "%s", path) >= (int)sizeof(sh_log_path)) {
        sh_log_path[0] = '\0';
        errno = ENAMETOOLONG;
        return -1;
    }
    return sh_log_reopen();
}

int sh_log_reopen(void)
{
    if (sh_log_path[0] == '\0')
        return 0;
    int fd = open(sh_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    /* stdout too: a process started with its output on the log (start-stop-daemon
     * --output) would otherwise keep the rotated file open through it. dup2 clears
     * close-on-exec. */
    int rc = fd == STDERR_FILENO ? 0 : dup2(fd, STDERR_FILENO);
    if (rc >= 0 && fd != STDOUT_FILENO)
        rc = dup2(fd, STDOUT_FILENO);
    int saved = errno;
    if (fd != STDERR_FILENO && fd != STDOUT_FILENO)
        close(fd);
    errno = saved;
    return rc < 0 ? -1 : 0;
}

static void sh_log_raw(sh_logline *l, const char *s, size_t n)
{
    /* Keep 2 bytes for "}\n"; a line that would overflow is cut at a field boundary. */
    if (l->len + n + 2 > sizeof(l->buf))
        return;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void sh_log_key(sh_logline *l, const char *key)
{
    sh_log_raw(l, ",\"", 2);
    sh_log_raw(l, key, strlen(key));
    sh_log_raw(l, "\":", 2);
}

void sh_log_begin(sh_logline *l, sh_log_level level, const char *event)
{
    l->len = 0;
    l->enabled = level >= sh_log_min;
    if (!l->enabled)
        return;
    if (sh_log_pid == 0)
        sh_log_pid = (long)getpid();
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char head[160];
    int n = snprintf(head, sizeof(head), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"level\":\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000,
                     sh_log_level_names[level]);
    sh_log_raw(l, head, (size_t)n);
    sh_log_str(l, "event", event);
    sh_log_str(l, "service", sh_log_service);
    sh_log_int(l, "pid", sh_log_pid);
}

void sh_log_strn(sh_logline *l, const char *key, const char *value, size_t len)
{
    if (!l->enabled)
        return;
    sh_log_key(l, key);
    if (value == NULL) {
        sh_log_raw(l, "null", 4);
        return;
    }
    /* Escape byte by byte into the line; a value too long is cut on a character
     * boundary so the line stays valid JSON and valid UTF-8. */
    const size_t room_end = sizeof(l->buf) - 3; /* closing quote + "}\n" */
    char clean[1024];
    if (!sh_utf8_valid(value, len)) {
        /* hostile bytes (a bad path, say) must not make the log unparsable */
        size_t n = len < sizeof(clean) ? len : sizeof(clean);
        for (size_t i = 0; i < n; i++)
            clean[i] = (unsigned char)value[i] >= 0x80 ? '?' : value[i];
        value = clean;
        len = n;
    }
    sh_log_raw(l, "\"", 1);
    size_t start = l->len;
    for (size_t i = 0; i < len; i++) {
        char esc[8];
        size_t n = sh_json_escape(esc, sizeof(esc), value + i, 1);
        if (l->len + n > room_end) {
            /* back up over a partial UTF-8 sequence */
            while (l->len > start && ((unsigned char)l->buf[l->len - 1] & 0xC0) == 0x80)
                l->len--;
            if (l->len > start && (unsigned char)l->buf[l->len - 1] >= 0xC0)
                l->len--;
            break;
        }
        memcpy(l->buf + l->len, esc, n);
        l->len += n;
    }
    sh_log_raw(l, "\"", 1);
}

void sh_log_str(sh_logline *l, const char *key, const char *value)
{
    sh_log_strn(l, key, value, value ? strlen(value) : 0);
}

void sh_log_int(sh_logline *l, const char *key, long long value)
{
    if (!l->enabled)
        return;
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", value);
    sh_log_key(l, key);
    sh_log_raw(l, num, (size_t)n);
}

void sh_log_end(sh_logline *l)
{
    if (!l->enabled)
        return;
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    size_t off = 0;
    while (off < l->len) {
        ssize_t w = write(STDERR_FILENO, l->buf + off, l->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing log */
        }
        off += (size_t)w;
    }
}

void sh_log_msg(sh_log_level level, const char *event, const char *msg)
{
    sh_logline l;
    sh_log_begin(&l, level, event);
    sh_log_str(&l, "msg", msg);
    sh_log_end(&l);
}

void sh_log_msgf(sh_log_level level, const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sh_log_msg(level, event, msg);
}
