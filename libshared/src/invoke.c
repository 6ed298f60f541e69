/* invoke.c: one function calling another: in this worker when the callee is
 * a function of this service (sh_http_local), else over HTTP (libcurl) through
 * the internal gateway, with the budget's bookkeeping either way. */
#include "sh_invoke.h"
#include "sh_budget.h"
#include "sh_db.h"
#include "sh_dispatch.h"
#include "sh_json.h"
#include "sh_log.h"
#include "sh_scoreboard.h"
#include "sh_str.h"

#include <curl/curl.h>
#include <stddef.h>
#include <string.h>

#define SH_INVOKE_MAX_RESPONSE (1024 * 1024)

#define I(field) offsetof(sh_invoke_config, field)
const sh_conf_row sh_invoke_conf_rows[] = {
    {"PL_GATEWAY_URL", SH_CONF_STRING, I(gateway_url), "http://127.0.0.1:8081", 0, 0, NULL, 0,
     "the internal nginx listener that invocations go through"},
    {"PL_INVOKE_TIMEOUT_MS", SH_CONF_INT, I(timeout_ms), "2000", 1, 600000, NULL, 0,
     "timeout of one invocation (504 upstream_timeout)"},
    SH_CONF_END,
};
#undef I

static sh_invoke_config sh_invoke_cfg = {"http://127.0.0.1:8081", 2000};
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

static void sh_invoke_free_headers(void *list) { curl_slist_free_all(list); }

static struct curl_slist *sh_invoke_headers(sh_req *req, int64_t child_budget, bool has_body)
{
    struct curl_slist *h = NULL;
    const char *auth = sh_req_header(req, "Authorization");
    if (req->auth.present)
        h = curl_slist_append(h, sh_arena_sprintf(req->arena, "Authorization: Bearer %s", req->auth.token));
    else if (auth != NULL)
        h = curl_slist_append(h, sh_arena_sprintf(req->arena, "Authorization: %s", auth));
    h = curl_slist_append(h, sh_arena_sprintf(req->arena, "X-Request-Id: %s", req->request_id));
    h = curl_slist_append(h, sh_arena_sprintf(req->arena, "X-Invoke-Depth: %lld", (long long)req->invoke_depth + 1));
    h = curl_slist_append(h, sh_arena_sprintf(req->arena, "X-Invoke-Budget: %lld", (long long)child_budget));
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, has_body ? "Content-Type: application/json" : "Expect:");
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
    if (sh_invoke_curl == NULL && (sh_invoke_curl = curl_easy_init()) == NULL) {
        res->status = 503;
        res->error_code = "service_unavailable";
        res->error = "The HTTP client could not start.";
        return -1;
    }
    CURL *c = sh_invoke_curl;
    curl_easy_reset(c);
    sh_invoke_io io = {.req = req};
    sh_buf_init(&io.body, req->arena, 1024);
    char *url = sh_arena_sprintf(req->arena, "%s%s", sh_invoke_cfg.gateway_url, path);

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sh_invoke_headers(req, child_budget, body != NULL));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)sh_invoke_cfg.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)sh_invoke_cfg.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sh_invoke_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &io);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sh_invoke_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &io);
    if (body_str != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body_str);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (sh_invoke_wait != NULL)
        sh_invoke_wait(true);
    CURLcode cc = curl_easy_perform(c);
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
        sh_log_str(&l, "error", curl_easy_strerror(cc));
        sh_log_end(&l);
        bool timeout = cc == CURLE_OPERATION_TIMEDOUT;
        res->status = timeout ? 504 : 503;
        res->error_code = timeout ? "upstream_timeout" : "service_unavailable";
        res->error = timeout ? "A service this request depends on did not answer in time."
                             : "A service this request depends on is unavailable.";
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
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
    if (sh_invoke_curl == NULL && (sh_invoke_curl = curl_easy_init()) == NULL)
        return -1;
    CURL *c = sh_invoke_curl;
    curl_easy_reset(c);
    sh_invoke_io io = {.req = req};
    sh_buf_init(&io.body, req->arena, 256);
    struct curl_slist *h =
        curl_slist_append(NULL, json ? "Content-Type: application/json" : "Accept: application/json");
    if (h != NULL)
        sh_arena_cleanup(req->arena, sh_invoke_free_headers, h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (json != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)sh_invoke_cfg.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sh_invoke_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &io);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        sh_log_msgf(SH_LOG_WARN, "http_failed", "%s %s: %s", method, url, curl_easy_strerror(cc));
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (out != NULL)
        *out = io.body;
    return 0;
}

int sh_http_post_json(sh_req *req, const char *url, const char *json, size_t len, long *status)
{
    return sh_http_send(req, "POST", url, json, len, status, NULL);
}

const char *sh_invoke_gateway(void) { return sh_invoke_cfg.gateway_url; }
