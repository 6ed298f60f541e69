/* fcgi_bare.c: the benchmark's protocol floor. A bare FastCGI responder built on
 * libfcgi alone, answering every request with the same small JSON body as the
 * health endpoint, with N pre-forked workers sharing one listening socket.
 * usage: pl-fcgi-bare unix:/path.sock|host:port WORKERS */
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char body[] = "{\"status\":\"ok\",\"service\":\"bare\",\"database\":\"none\"}";

static void serve(int sock)
{
    FCGX_Request req;
    if (FCGX_InitRequest(&req, sock, 0) != 0)
        exit(1);
    while (FCGX_Accept_r(&req) >= 0) {
        FCGX_FPrintF(req.out, "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     (int)(sizeof(body) - 1), body);
        FCGX_Finish_r(&req);
    }
    exit(0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s unix:/path.sock|host:port WORKERS\n", argv[0]);
        return 2;
    }
    const char *addr = strncmp(argv[1], "unix:", 5) == 0 ? argv[1] + 5 : argv[1];
    int workers = atoi(argv[2]);
    if (workers < 1 || workers > 256 || FCGX_Init() != 0)
        return 2;
    umask(0);
    int sock = FCGX_OpenSocket(addr, 511);
    if (sock < 0) {
        fprintf(stderr, "cannot listen on %s\n", argv[1]);
        return 1;
    }
    for (int i = 0; i < workers; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0)
            serve(sock);
    }
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    while (wait(NULL) > 0)
        ;
    return 0;
}
