/* invoke.c: one function calling another: in this worker when the callee is
 * a function of this service (sh_http_local), straight to a local pool over
 * FastCGI, else over HTTP (libcurl, loaded on first use: sh_curl.h) through
 * the internal gateway, with the budget's bookkeeping either way. */
#include "sh_invoke.h"
#include "sh_budget.h"
#include "sh_curl.h"
#include "sh_db.h"
#include "sh_dispatch.h"
#include "sh_json.h"
#include "sh_log.h"
#include "sh_scoreboard.h"
#include "sh_str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SH_INVOKE_MAX_RESPONSE (1024 * 1024)
/* How long a worker's HTTP client trusts a name's addresses (libcurl's
 * default: 60 s). The gateway's name may follow containers (compose's
 * `nginx`, a second front's alias): when one is replaced, its old address
 * answers nothing, and every invocation and chat publish would time out
 * until the cache forgot it. 5 s, as nginx's own resolver cache. */
#define SH_INVOKE_DNS_CACHE_S 5L

#define I(field) offsetof(sh_invoke_config, field)
const sh_conf_row sh_invoke_conf_rows[] = {
    {"PL_GATEWAY_URL", SH_CONF_STRING, I(gateway_url), "http://127.0.0.1:8081", 0, 0, NULL, 0,
     "the internal nginx listener that invocations go through"},
    {"PL_INVOKE_TIMEOUT_MS", SH_CONF_INT, I(timeout_ms), "2000", 1, 600000, NULL, 0,
     "timeout of one invocation (504 upstream_timeout)"},
    {"PL_INVOKE_SOCKET_DIR", SH_CONF_STRING, I(socket_dir), NULL, 0, 0, NULL, 0,
     "a directory holding the local pools' sockets (<svc>.sock, <svc>-N.sock): calls to them skip nginx and go "
     "straight to a pool over FastCGI (unset: every call through PL_GATEWAY_URL)"},
    SH_CONF_END,
};
#undef I

static sh_invoke_config sh_invoke_cfg = {"http://127.0.0.1:8081", 2000, NULL};
static CURL *sh_invoke_curl; /* one per worker, reused: keeps its connection */
static sh_invoke_wait_fn sh_invoke_wait;

void sh_invoke_configure(const sh_invoke_config *ic) { sh_invoke_cfg = *ic; }

void sh_invoke_on_wait(sh_invoke_wait_fn fn) { sh_invoke_wait = fn; }

typedef struct {
    sh_req *req;
    sh_buf body;
    bool too_big;
    int64_t spent;
    bool has_spent;
} sh_invoke_io;

static size_t sh_invoke_on_body(char *data, size_t size, size_t n, void *userdata)
{
    sh_invoke_io *io = userdata;
    size_t len = size * n;
    if (io->body.len + len > SH_INVOKE_MAX_RESPONSE) {
        io->too_big = true;
        return 0;
    }
    sh_buf_append(&io->body, data, len);
    return len;
}

static size_t sh_invoke_on_header(char *data, size_t size, size_t n, void *userdata)
{
    sh_invoke_io *io = userdata;
    size_t len = size * n;
    static const char name[] = "x-invoke-spent:";
    if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *v = data + sizeof(name) - 1;
        size_t vlen = len - (sizeof(name) - 1);
        while (vlen > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        int64_t spent;
        if (sh_parse_int64(v, vlen, 0, INT64_MAX, &spent) == 0) {
            io->spent = spent;
            io->has_spent = true;
        }
    }
    return len;
}

static void sh_invoke_free_headers(void *list) { sh_curl()->slist_free_all(list); } /* loaded: it made the list */

static struct curl_slist *sh_invoke_headers(const sh_curl_api *cu, sh_req *req, int64_t child_budget, bool has_body)
{
    struct curl_slist *h = NULL;
    const char *auth = sh_req_header(req, "Authorization");
    if (req->auth.present)
        h = cu->slist_append(h, sh_arena_sprintf(req->arena, "Authorization: Bearer %s", req->auth.token));
    else if (auth != NULL)
        h = cu->slist_append(h, sh_arena_sprintf(req->arena, "Authorization: %s", auth));
    h = cu->slist_append(h, sh_arena_sprintf(req->arena, "X-Request-Id: %s", req->request_id));
    h = cu->slist_append(h, sh_arena_sprintf(req->arena, "X-Invoke-Depth: %lld", (long long)req->invoke_depth + 1));
    h = cu->slist_append(h, sh_arena_sprintf(req->arena, "X-Invoke-Budget: %lld", (long long)child_budget));
    h = cu->slist_append(h, "Accept: application/json");
    h = cu->slist_append(h, has_body ? "Content-Type: application/json" : "Expect:");
    if (h != NULL)
        sh_arena_cleanup(req->arena, sh_invoke_free_headers, h);
    return h;
}

/* Whether `path` is a function of this worker's own service. */
static bool sh_invoke_is_local(const char *path)
{
    const sh_scoreboard *sb = sh_sb_current();
    if (sb == NULL || strncmp(path, "/api/", 5) != 0)
        return false;
    size_t n = strlen(sb->service);
    const char *rest = path + 5;
    return n > 0 && strncmp(rest, sb->service, n) == 0 && (rest[n] == '/' || rest[n] == '?' || rest[n] == '\0');
}

/* The callee's answer: its JSON body, and for an error its error code and
 * message ({"error":{"code","message"}}), so that callers relay them. */
static void sh_invoke_take_body(sh_req *req, sh_invoke_result *res, const char *data, size_t len)
{
    const char *why;
    json_object *err = NULL, *code = NULL, *msg = NULL;
    if (len > 0)
        res->body = sh_req_own(req, sh_json_parse(data, len, 64, &why));
    if (res->status < 400 || res->body == NULL || !json_object_object_get_ex(res->body, "error", &err))
        return;
    if (json_object_object_get_ex(err, "code", &code) && json_object_is_type(code, json_type_string))
        res->error_code = sh_arena_strdup(req->arena, json_object_get_string(code));
    if (json_object_object_get_ex(err, "message", &msg) && json_object_is_type(msg, json_type_string))
        res->error = sh_arena_strdup(req->arena, json_object_get_string(msg));
}

/* A call into the own service runs in this worker (sh_http_local): going
 * through nginx would need a second worker of this pool while this one waits,
 * and a chain of them as many workers as it is deep, which a busy pool may not
 * have (each caller would wait in the backlog behind the callers' siblings).
 * Not from inside a transaction: the callee's statements would join it (and
 * its START TRANSACTION commit it); such a call goes through nginx. */
static int sh_invoke_local(sh_req *req, const char *method, const char *path, const char *body, size_t body_len,
                           int64_t child_budget, sh_invoke_result *res)
{
    sh_buf out;
    sh_buf_init(&out, req->arena, 1024);
    int64_t spent = 0;
    res->status = sh_http_local(req, method, path, body, body_len, req->invoke_depth + 1, child_budget, &out, &spent);
    if (sh_db_in_transaction())
        sh_db_rollback(req); /* the callee left its transaction open: it is not ours */
    sh_budget_account(req, child_budget, true, spent);
    sh_invoke_take_body(req, res, out.data, out.len);
    return 0;
}

/* --- straight to a local pool, over FastCGI ------------------------------------------ */

#define SH_DIRECT_MAX_POOLS   16
#define SH_DIRECT_MAX_TARGETS 8
#define SH_DIRECT_RESCAN_US   2000000 /* a pool added or gone is seen within this */
#define SH_FCGI_MAX_CONTENT   65535

typedef struct {
    char service[64];
    char paths[SH_DIRECT_MAX_POOLS][sizeof(((struct sockaddr_un *)0)->sun_path)];
    int n, next;
    int64_t scanned_at_us;
} sh_direct_target;

static sh_direct_target sh_direct_targets[SH_DIRECT_MAX_TARGETS];

/* The service of an /api/<svc>/... path into out; false when it names none. */
static bool sh_invoke_service_of(const char *path, char *out, size_t cap)
{
    if (strncmp(path, "/api/", 5) != 0)
        return false;
    size_t n = strcspn(path + 5, "/?");
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, path + 5, n);
    out[n] = '\0';
    return true;
}

/* Whether a socket's file name is svc's: <svc>.sock or <svc>-<digits>.sock. */
static bool sh_direct_is_pool_socket(const char *name, const char *svc)
{
    size_t n = strlen(svc);
    if (strncmp(name, svc, n) != 0)
        return false;
    const char *p = name + n;
    if (*p == '-') {
        const char *d = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return false;
    }
    return strcmp(p, ".sock") == 0;
}

/* svc's local pools, found in the socket directory again every few seconds. */
static sh_direct_target *sh_direct_target_of(const char *svc)
{
    sh_direct_target *t = NULL;
    for (int i = 0; i < SH_DIRECT_MAX_TARGETS && t == NULL; i++)
        if (strcmp(sh_direct_targets[i].service, svc) == 0 || sh_direct_targets[i].service[0] == '\0')
            t = &sh_direct_targets[i];
    if (t == NULL)
        return NULL; /* more callees than slots: the rest go through the gateway */
    int64_t now = sh_now_us();
    if (t->service[0] != '\0' && now - t->scanned_at_us < SH_DIRECT_RESCAN_US)
        return t;
    snprintf(t->service, sizeof(t->service), "%s", svc);
    t->scanned_at_us = now;
    t->n = 0;
    DIR *d = opendir(sh_invoke_cfg.socket_dir);
    if (d == NULL)
        return t;
    for (struct dirent *e; (e = readdir(d)) != NULL && t->n < SH_DIRECT_MAX_POOLS;)
        if (sh_direct_is_pool_socket(e->d_name, svc) &&
            snprintf(t->paths[t->n], sizeof(t->paths[0]), "%s/%s", sh_invoke_cfg.socket_dir, e->d_name) <
                (int)sizeof(t->paths[0]))
            t->n++;
    closedir(d);
    return t;
}

/* A connection to one of t's pools, in turn; -1 when none takes it now (gone,
 * or its backlog full: nginx would wait there, the gateway will). */
static int sh_direct_connect(sh_direct_target *t)
{
    for (int i = 0; i < t->n; i++) {
        int k = (t->next + i) % t->n;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->paths[k]);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            t->next = k + 1;
            return fd;
        }
        close(fd);
    }
    return -1;
}

/* One FastCGI record (FastCGI 1.0, request id 1) of up to 65535 bytes. */
static void sh_fcgi_record(sh_buf *b, int type, const char *data, size_t len)
{
    unsigned char h[8] = {1, (unsigned char)type, 0, 1, (unsigned char)(len >> 8), (unsigned char)len, 0, 0};
    sh_buf_append(b, h, sizeof(h));
    if (len > 0)
        sh_buf_append(b, data, len);
}

/* A stream (PARAMS, STDIN) in records, and its empty end record. */
static void sh_fcgi_stream(sh_buf *b, int type, const char *data, size_t len)
{
    for (size_t off = 0; off < len; off += SH_FCGI_MAX_CONTENT)
        sh_fcgi_record(b, type, data + off, len - off < SH_FCGI_MAX_CONTENT ? len - off : SH_FCGI_MAX_CONTENT);
    sh_fcgi_record(b, type, NULL, 0);
}

static void sh_fcgi_length(sh_buf *p, size_t n)
{
    if (n < 128) {
        sh_buf_putc(p, (char)n);
        return;
    }
    unsigned char b[4] = {(unsigned char)((n >> 24) | 0x80), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                          (unsigned char)n};
    sh_buf_append(p, b, sizeof(b));
}

static void sh_fcgi_param(sh_buf *p, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    sh_fcgi_length(p, nl);
    sh_fcgi_length(p, vl);
    sh_buf_append(p, name, nl);
    sh_buf_append(p, value, vl);
}

/* The whole request, as nginx's internal listener would pass it on. */
static void sh_direct_request(sh_req *req, sh_buf *out, const char *method, const char *target, const char *body,
                              size_t body_len, int64_t child_budget, bool invocation)
{
    sh_arena *a = req->arena;
    size_t path_len = strcspn(target, "?");
    char *path = sh_arena_alloc(a, path_len + 1);
    long dl = sh_percent_decode(path, target, path_len, false);
    if (dl < 0)
        path = sh_arena_strndup(a, target, path_len);
    else
        path[dl] = '\0';
    const char *auth = sh_req_header(req, "Authorization");
    if (req->auth.present)
        auth = sh_arena_sprintf(a, "Bearer %s", req->auth.token);
    sh_buf p;
    sh_buf_init(&p, a, 1024);
    sh_fcgi_param(&p, "REQUEST_METHOD", method);
    sh_fcgi_param(&p, "REQUEST_URI", target);
    sh_fcgi_param(&p, "DOCUMENT_URI", path);
    sh_fcgi_param(&p, "SCRIPT_NAME", path);
    sh_fcgi_param(&p, "QUERY_STRING", target[path_len] == '?' ? target + path_len + 1 : "");
    sh_fcgi_param(&p, "CONTENT_TYPE", body != NULL ? "application/json" : "");
    sh_fcgi_param(&p, "CONTENT_LENGTH", body != NULL ? sh_arena_sprintf(a, "%zu", body_len) : "");
    sh_fcgi_param(&p, "SERVER_PROTOCOL", "HTTP/1.1");
    sh_fcgi_param(&p, "REMOTE_ADDR", "127.0.0.1");
    sh_fcgi_param(&p, "REQUEST_ID", req->request_id);
    sh_fcgi_param(&p, "PL_INTERNAL", "1");
    sh_fcgi_param(&p, "HTTP_X_REQUEST_ID", req->request_id);
    sh_fcgi_param(&p, "HTTP_ACCEPT", "application/json");
    if (invocation) {
        sh_fcgi_param(&p, "HTTP_X_INVOKE_DEPTH", sh_arena_sprintf(a, "%lld", (long long)req->invoke_depth + 1));
        sh_fcgi_param(&p, "HTTP_X_INVOKE_BUDGET", sh_arena_sprintf(a, "%lld", (long long)child_budget));
        if (auth != NULL)
            sh_fcgi_param(&p, "HTTP_AUTHORIZATION", auth);
    }
    static const char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};     /* the responder role, no keep-alive */
    sh_fcgi_record(out, 1, begin, sizeof(begin));              /* FCGI_BEGIN_REQUEST */
    sh_fcgi_stream(out, 4, p.data, p.len);                     /* FCGI_PARAMS */
    sh_fcgi_stream(out, 5, body, body != NULL ? body_len : 0); /* FCGI_STDIN */
}

/* Waits until fd is ready for `events` or the deadline: false on timeout/error. */
static bool sh_direct_wait(int fd, short events, int64_t deadline_us)
{
    for (;;) {
        int64_t left = deadline_us - sh_now_us();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)((left + 999) / 1000));
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
    }
}

/* Sends the request and reads the response's records: the STDOUT stream
 * into out, up to END_REQUEST. 0, or -1 (*timeout says why). */
static int sh_direct_exchange(int fd, const sh_buf *request, sh_buf *out, int64_t deadline_us, bool *timeout)
{
    *timeout = false;
    for (size_t off = 0; off < request->len;) {
        ssize_t n = send(fd, request->data + off, request->len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        else if (n < 0 && errno == EAGAIN && !sh_direct_wait(fd, POLLOUT, deadline_us))
            return (*timeout = true, -1);
    }
    unsigned char buf[16384];
    size_t have = 0;
    for (;;) {
        /* every complete record in buf */
        while (have >= 8) {
            size_t len = ((size_t)buf[4] << 8) | buf[5], rec = 8 + len + buf[6];
            if (have < rec)
                break;
            if (buf[1] == 3) /* FCGI_END_REQUEST */
                return 0;
            if (buf[1] == 6) { /* FCGI_STDOUT */
                if (out->len + len > SH_INVOKE_MAX_RESPONSE + 16384)
                    return -1;
                sh_buf_append(out, buf + 8, len);
            }
            memmove(buf, buf + rec, have - rec);
            have -= rec;
        }
        ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (n > 0) {
            have += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            return -1; /* the worker went away before answering */
        if (errno == EAGAIN && !sh_direct_wait(fd, POLLIN, deadline_us))
            return (*timeout = true, -1);
    }
}

/* The CGI response in out: its Status and X-Invoke-Spent, and the body. */
static void sh_direct_response(sh_req *req, sh_invoke_result *res, const sh_buf *out, int64_t *spent, bool *has_spent)
{
    const char *end = out->len > 0 ? strstr(out->data, "\r\n\r\n") : NULL;
    res->status = 200;
    if (end == NULL) {
        res->status = 502;
        return;
    }
    for (const char *line = out->data; line < end;) {
        const char *eol = strstr(line, "\r\n");
        int64_t v;
        if (strncasecmp(line, "Status:", 7) == 0 && sh_parse_int64(line + 8, 3, 100, 599, &v) == 0)
            res->status = (int)v;
        else if (strncasecmp(line, "X-Invoke-Spent:", 15) == 0 &&
                 sh_parse_int64(line + 16, (size_t)(eol - line - 16), 0, INT64_MAX, &v) == 0) {
            *spent = v;
            *has_spent = true;
        }
        line = eol + 2;
    }
    sh_invoke_take_body(req, res, end + 4, out->len - (size_t)(end + 4 - out->data));
}

/* The call straight to a local pool of the callee: 0 with its answer, -1 when
 * it failed once sent (res says how), 1 when no local pool took it (the
 * caller goes through the gateway; nothing was sent). */
static int sh_invoke_direct(sh_req *req, const char *method, const char *path, const char *body, size_t body_len,
                            int64_t child_budget, sh_invoke_result *res)
{
    char svc[64];
    sh_direct_target *t = sh_invoke_service_of(path, svc, sizeof(svc)) ? sh_direct_target_of(svc) : NULL;
    int fd = t != NULL ? sh_direct_connect(t) : -1;
    if (fd < 0)
        return 1;
    sh_buf request, out;
    sh_buf_init(&request, req->arena, 1024 + body_len);
    sh_buf_init(&out, req->arena, 2048);
    sh_direct_request(req, &request, method, path, body, body_len, child_budget, true);
    if (sh_invoke_wait != NULL)
        sh_invoke_wait(true);
    bool timeout;
    int rc = sh_direct_exchange(fd, &request, &out, sh_now_us() + sh_invoke_cfg.timeout_ms * 1000, &timeout);
    if (sh_invoke_wait != NULL)
        sh_invoke_wait(false);
    close(fd);
    int64_t spent = 0;
    bool has_spent = false;
    if (rc == 0)
        sh_direct_response(req, res, &out, &spent, &has_spent);
    sh_budget_account(req, child_budget, has_spent, spent);
    if (rc == 0)
        return 0;
    sh_logline l;
    sh_log_begin(&l, SH_LOG_WARN, "invoke_failed");
    sh_log_str(&l, "request_id", req->request_id);
    sh_log_str(&l, "target", path);
    sh_log_str(&l, "error", timeout ? "timed out (direct)" : "the callee's pool closed the connection (direct)");
    sh_log_end(&l);
    res->status = timeout ? 504 : 503;
    res->error_code = timeout ? "upstream_timeout" : "service_unavailable";
    res->error = timeout ? "A service this request depends on did not answer in time."
                         : "A service this request depends on is unavailable.";
    return -1;
}

int sh_direct_get(sh_req *req, const char *path, long *status, sh_buf *out)
{
    char svc[64];
    sh_direct_target *t = sh_invoke_cfg.socket_dir != NULL && sh_invoke_service_of(path, svc, sizeof(svc))
                              ? sh_direct_target_of(svc)
                              : NULL;
    int fd = t != NULL ? sh_direct_connect(t) : -1;
    if (fd < 0)
        return 1;
    sh_buf request, raw;
    sh_buf_init(&request, req->arena, 1024);
    sh_buf_init(&raw, req->arena, 2048);
    sh_direct_request(req, &request, "GET", path, NULL, 0, 0, false);
    bool timeout;
    int rc = sh_direct_exchange(fd, &request, &raw, sh_now_us() + sh_invoke_cfg.timeout_ms * 1000, &timeout);
    close(fd);
    const char *end = rc == 0 && raw.len > 0 ? strstr(raw.data, "\r\n\r\n") : NULL;
    if (end == NULL)
        return -1;
    int64_t v = 200;
    if (strncasecmp(raw.data, "Status:", 7) == 0 && sh_parse_int64(raw.data + 8, 3, 100, 599, &v) != 0)
        return -1;
    *status = (long)v;
    sh_buf_init(out, req->arena, raw.len);
    sh_buf_append(out, end + 4, raw.len - (size_t)(end + 4 - raw.data));
    return 0;
}

int sh_invoke(sh_req *req, const char *method, const char *path, json_object *body, sh_invoke_result *res)
{
    memset(res, 0, sizeof(*res));
    int64_t child_budget;
    if (sh_budget_reserve(req, &child_budget, &res->error_code, &res->error) != 0) {
        res->status = 508;
        return -1;
    }
    size_t body_len = 0;
    const char *body_str = body ? sh_json_to_string(body, &body_len) : NULL;
    if (sh_invoke_is_local(path) && !sh_db_in_transaction())
        return sh_invoke_local(req, method, path, body_str, body_len, child_budget, res);
    if (sh_invoke_cfg.socket_dir != NULL) {
        int rc = sh_invoke_direct(req, method, path, body_str, body_len, child_budget, res);
        if (rc != 1)
            return rc;
    }
    const sh_curl_api *cu = sh_curl();
    if (cu == NULL || (sh_invoke_curl == NULL && (sh_invoke_curl = cu->easy_init()) == NULL)) {
        res->status = 503;
        res->error_code = "service_unavailable";
        res->error = "The HTTP client could not start.";
        return -1;
    }
    CURL *c = sh_invoke_curl;
    cu->easy_reset(c);
    sh_invoke_io io = {.req = req};
    sh_buf_init(&io.body, req->arena, 1024);
    char *url = sh_arena_sprintf(req->arena, "%s%s", sh_invoke_cfg.gateway_url, path);

    cu->easy_setopt(c, CURLOPT_URL, url);
    cu->easy_setopt(c, CURLOPT_DNS_CACHE_TIMEOUT, SH_INVOKE_DNS_CACHE_S);
    cu->easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    cu->easy_setopt(c, CURLOPT_HTTPHEADER, sh_invoke_headers(cu, req, child_budget, body != NULL));
    cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)sh_invoke_cfg.timeout_ms);
    cu->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)sh_invoke_cfg.timeout_ms);
    cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, sh_invoke_on_body);
    cu->easy_setopt(c, CURLOPT_WRITEDATA, &io);
    cu->easy_setopt(c, CURLOPT_HEADERFUNCTION, sh_invoke_on_header);
    cu->easy_setopt(c, CURLOPT_HEADERDATA, &io);
    if (body_str != NULL) {
        cu->easy_setopt(c, CURLOPT_POSTFIELDS, body_str);
        cu->easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (sh_invoke_wait != NULL)
        sh_invoke_wait(true);
    CURLcode cc = cu->easy_perform(c);
    if (sh_invoke_wait != NULL)
        sh_invoke_wait(false);

    /* Account before anything else: what was sent is spent, whatever came back.
     * No answer about the subtree means it may have spent all it was given. */
    sh_budget_account(req, child_budget, io.has_spent, io.spent);

    if (cc != CURLE_OK) {
        sh_logline l;
        sh_log_begin(&l, SH_LOG_WARN, "invoke_failed");
        sh_log_str(&l, "request_id", req->request_id);
        sh_log_str(&l, "target", path);
        sh_log_str(&l, "error", cu->easy_strerror(cc));
        sh_log_end(&l);
        bool timeout = cc == CURLE_OPERATION_TIMEDOUT;
        res->status = timeout ? 504 : 503;
        res->error_code = timeout ? "upstream_timeout" : "service_unavailable";
        res->error = timeout ? "A service this request depends on did not answer in time."
                             : "A service this request depends on is unavailable.";
        return -1;
    }
    long status = 0;
    cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    res->status = (int)status;
    sh_invoke_take_body(req, res, io.body.data, io.body.len);
    return 0;
}

int sh_invoke_or_reply(sh_req *req, const char *method, const char *path, json_object *body, sh_invoke_result *res,
                       int *status_out)
{
    *status_out = 0;
    if (sh_invoke(req, method, path, body, res) != 0) {
        *status_out = sh_reply_error(req, res->status, res->error_code, "%s", res->error);
        return -1;
    }
    if (res->status == 508) { /* a refusal deeper in the tree ends the whole tree */
        *status_out = sh_reply_error(req, 508, res->error_code ? res->error_code : "invocation_budget_exceeded",
                                     "A call further down this call tree was refused: its limits were reached.");
        return -1;
    }
    if (res->status == 502 || res->status == 503 || res->status == 504) {
        *status_out = sh_reply_error(req, 503, "service_unavailable",
                                     "A service this request depends on is unavailable (%d).", res->status);
        return -1;
    }
    return 0;
}

int sh_http_send(sh_req *req, const char *method, const char *url, const char *json, size_t len, long *status,
                 sh_buf *out)
{
    *status = 0;
    const sh_curl_api *cu = sh_curl();
    if (cu == NULL || (sh_invoke_curl == NULL && (sh_invoke_curl = cu->easy_init()) == NULL))
        return -1;
    CURL *c = sh_invoke_curl;
    cu->easy_reset(c);
    sh_invoke_io io = {.req = req};
    sh_buf_init(&io.body, req->arena, 256);
    struct curl_slist *h = cu->slist_append(NULL, json ? "Content-Type: application/json" : "Accept: application/json");
    if (h != NULL)
        sh_arena_cleanup(req->arena, sh_invoke_free_headers, h);
    cu->easy_setopt(c, CURLOPT_URL, url);
    cu->easy_setopt(c, CURLOPT_DNS_CACHE_TIMEOUT, SH_INVOKE_DNS_CACHE_S);
    cu->easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    cu->easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (json != NULL) {
        cu->easy_setopt(c, CURLOPT_POSTFIELDS, json);
        cu->easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)sh_invoke_cfg.timeout_ms);
    cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, sh_invoke_on_body);
    cu->easy_setopt(c, CURLOPT_WRITEDATA, &io);
    CURLcode cc = cu->easy_perform(c);
    if (cc != CURLE_OK) {
        sh_log_msgf(SH_LOG_WARN, "http_failed", "%s %s: %s", method, url, cu->easy_strerror(cc));
        return -1;
    }
    cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (out != NULL)
        *out = io.body;
    return 0;
}

int sh_http_post_json(sh_req *req, const char *url, const char *json, size_t len, long *status)
{
    return sh_http_send(req, "POST", url, json, len, status, NULL);
}

const char *sh_invoke_gateway(void) { return sh_invoke_cfg.gateway_url; }
