/* core.c: clocks and aborting allocation wrappers. */
#include "sh_core.h"
#include "sh_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t sh_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sh_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sh_out_of_memory(size_t n)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "out of memory allocating %zu bytes", n);
    sh_log_msg(SH_LOG_ERROR, "out_of_memory", msg);
    abort();
}

void *sh_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        sh_out_of_memory(n);
    return p;
}

void *sh_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        sh_out_of_memory(n * size);
    return p;
}

char *sh_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = sh_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void sh_fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sh_log_msg(SH_LOG_ERROR, "fatal", msg);
    exit(1);
}

int sh_pid_file_write(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int sh_pid_file_remove(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long pid = 0;
    int n = fscanf(f, "%ld", &pid);
    fclose(f);
    return n == 1 && pid == (long)getpid() ? unlink(path) : -1;
}
