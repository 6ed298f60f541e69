/* http_keepalive.c: the benchmark's other reference upstream. A tiny HTTP/1.1
 * responder that keeps connections open, answering every request with the
 * same small JSON body as fcgi_bare.c, so nginx's own CPU per request can be
 * compared in front of FastCGI (a new connection per request) and in front
 * of kept-alive HTTP (proxy_http_version 1.1, an upstream with keepalive).
 * N pre-forked workers share one listening socket; each serves many
 * connections with epoll (a blocking worker per connection would stall: nginx
 * keeps its upstream connections open). Requests carry no body (GET); a
 * request line and headers up to 8 KiB.
 * usage: pl-http-keepalive unix:/path.sock WORKERS */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_CONN_BUF   8192
#define BENCH_MAX_EVENTS 64

#define BENCH_BODY "{\"status\":\"ok\",\"service\":\"bare\",\"database\":\"none\"}"
_Static_assert(sizeof(BENCH_BODY) - 1 == 50, "the Content-Length below is the body's");
static const char bench_answer[] = "HTTP/1.1 200 OK\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Content-Length: 50\r\n"
                                   "Connection: keep-alive\r\n"
                                   "\r\n" BENCH_BODY;

typedef struct {
    int fd;
    size_t len;
    char buf[BENCH_CONN_BUF];
} bench_conn;

/* Answers every complete request in c's buffer; -1 when the connection
 * should close (peer gone, a request too large, a write that failed). */
static int bench_conn_serve(bench_conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->len += (size_t)n;
        char *end;
        while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL) {
            size_t used = (size_t)(end + 4 - c->buf);
            /* small answers on a local socket: one write takes it whole */
            if (write(c->fd, bench_answer, sizeof(bench_answer) - 1) != (ssize_t)(sizeof(bench_answer) - 1))
                return -1;
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
        }
        if (c->len == sizeof(c->buf))
            return -1;
    }
}

static void bench_serve(int lsock)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lsock, &ev) != 0)
        exit(1);
    struct epoll_event events[BENCH_MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, BENCH_MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR)
            exit(1);
        for (int i = 0; i < n; i++) {
            bench_conn *c = events[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                c = calloc(1, sizeof(*c));
                if (c == NULL)
                    exit(1);
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) != 0) {
                    close(fd);
                    free(c);
                }
                continue;
            }
            if (bench_conn_serve(c) != 0 || (events[i].events & (EPOLLHUP | EPOLLERR))) {
                close(c->fd); /* closing removes it from the epoll set */
                free(c);
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || strncmp(argv[1], "unix:", 5) != 0) {
        fprintf(stderr, "usage: %s unix:/path.sock WORKERS\n", argv[0]);
        return 2;
    }
    const char *path = argv[1] + 5;
    int workers = atoi(argv[2]);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (workers < 1 || workers > 256 || strlen(path) >= sizeof(addr.sun_path))
        return 2;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    umask(0); /* nginx's workers (nobody) connect */
    unlink(path);
    int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lsock < 0 || bind(lsock, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lsock, 511) != 0) {
        fprintf(stderr, "cannot listen on %s: %s\n", path, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < workers; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* the bench kills the master */
            bench_serve(lsock);
        }
    }
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    while (wait(NULL) > 0)
        ;
    return 0;
}
