/* req.c: a request's accessors and its replies (see sh_req.h). */
#include "sh_req.h"
#include "sh_log.h"
#include "sh_str.h"

#include <fcgiapp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* --- status reasons ------------------------------------------------------------- */

const char *sh_status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 508: return "Loop Detected";
    default: return "Status";
    }
}

/* --- request accessors -------------------------------------------------------------- */

static FCGX_Request *sh_fcgi(sh_req *req) { return (FCGX_Request *)req->fcgi; }

const char *sh_req_fcgi_param(sh_req *req, const char *name) { return req->env ? FCGX_GetParam(name, req->env) : NULL; }

const char *sh_req_header(sh_req *req, const char *name)
{
    char key[128] = "HTTP_";
    size_t o = 5;
    for (const char *p = name; *p && o + 1 < sizeof(key); p++, o++) {
        char c = *p;
        key[o] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    key[o] = '\0';
    const char *v = sh_req_fcgi_param(req, key);
    return v != NULL && *v != '\0' ? v : NULL; /* nginx sends stripped headers as "" */
}

const char *sh_req_cookie(sh_req *req, const char *name)
{
    const char *h = sh_req_header(req, "Cookie");
    size_t nlen = strlen(name);
    while (h != NULL && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nlen && h[nlen] == '=' && memcmp(h, name, nlen) == 0)
            return sh_arena_strndup(req->arena, h + nlen + 1, len - nlen - 1);
        h = end;
    }
    return NULL;
}

static const sh_value sh_value_absent;

static const sh_value *sh_lookup(const sh_rule *rules, const sh_value *values, const char *name)
{
    for (int i = 0; rules != NULL && rules[i].name != NULL; i++)
        if (strcmp(rules[i].name, name) == 0)
            return &values[i];
    return &sh_value_absent;
}

const sh_value *sh_req_param(sh_req *req, const char *name)
{
    return req->route ? sh_lookup(req->route->params, req->params, name) : &sh_value_absent;
}

const sh_value *sh_req_field(sh_req *req, const char *name)
{
    return req->route ? sh_lookup(req->route->fields, req->fields, name) : &sh_value_absent;
}

const char *sh_param_str(sh_req *req, const char *name)
{
    const sh_value *v = sh_req_param(req, name);
    return v->present && !v->is_null ? v->s : NULL;
}

int64_t sh_param_int(sh_req *req, const char *name, int64_t fallback)
{
    const sh_value *v = sh_req_param(req, name);
    return v->present && !v->is_null ? v->i : fallback;
}

const char *sh_field_str(sh_req *req, const char *name)
{
    const sh_value *v = sh_req_field(req, name);
    return v->present && !v->is_null ? v->s : NULL;
}

int64_t sh_field_int(sh_req *req, const char *name, int64_t fallback)
{
    const sh_value *v = sh_req_field(req, name);
    return v->present && !v->is_null ? v->i : fallback;
}

typedef struct sh_deferred {
    sh_deferred_fn fn;
    void *arg;
    struct sh_deferred *next;
} sh_deferred;

static sh_deferred *sh_deferred_head, **sh_deferred_tail = &sh_deferred_head;

void sh_req_defer(sh_req *req, sh_deferred_fn fn, void *arg)
{
    sh_deferred *d = sh_arena_alloc(req->arena, sizeof(*d));
    *d = (sh_deferred){fn, arg, NULL};
    *sh_deferred_tail = d;
    sh_deferred_tail = &d->next;
}

void sh_req_run_deferred(sh_req *req)
{
    /* what a deferred fn defers itself runs too, after it */
    while (sh_deferred_head != NULL) {
        sh_deferred *d = sh_deferred_head;
        sh_deferred_head = d->next;
        if (sh_deferred_head == NULL)
            sh_deferred_tail = &sh_deferred_head;
        d->fn(req, d->arg);
    }
}

static void sh_put_json(void *obj) { json_object_put(obj); }

json_object *sh_req_own(sh_req *req, json_object *obj)
{
    if (obj != NULL)
        sh_arena_cleanup(req->arena, sh_put_json, obj);
    return obj;
}

/* --- responses ------------------------------------------------------------------------ */

void sh_resp_header(sh_req *req, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *v = sh_arena_vsprintf(req->arena, fmt, ap);
    va_end(ap);
    for (char *p = v; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    if (sh_strcaseeq(name, "Cache-Control"))
        req->has_cache_control = true;
    if (req->headers.arena == NULL)
        sh_buf_init(&req->headers, req->arena, 256);
    sh_buf_printf(&req->headers, "%s: %s\r\n", name, v);
}

/* Writes a reply's header block and body: to FastCGI, or to the capture. */
static void sh_reply_write(sh_req *req, const char *head, size_t head_len, const char *body, size_t len)
{
    if (req->fcgi != NULL) {
        FCGX_Stream *out = sh_fcgi(req)->out;
        if (FCGX_PutStr(head, (int)head_len, out) < 0 || (len > 0 && FCGX_PutStr(body, (int)len, out) < 0))
            sh_log_msg(SH_LOG_WARN, "write_failed", "the client went away before the response was sent");
        return;
    }
    if (req->capture_head != NULL)
        sh_buf_append(req->capture_head, head, head_len);
    if (req->capture != NULL && len > 0)
        sh_buf_append(req->capture, body, len);
}

int sh_reply_raw(sh_req *req, int status, const char *content_type, const char *body, size_t len)
{
    if (req->responded) {
        sh_log_msgf(SH_LOG_ERROR, "double_reply", "handler %s answered twice", req->route ? req->route->name : "-");
        return req->status;
    }
    req->responded = true;
    req->status = status;
    if (req->internal && req->invoke_depth > 0) /* a callee tells its caller what its subtree spent */
        sh_resp_header(req, "X-Invoke-Spent", "%lld", (long long)req->invoke_spent);
    sh_buf head;
    sh_buf_init(&head, req->arena, 512);
    sh_buf_printf(&head, "Status: %d %s\r\n", status, sh_status_reason(status));
    if (content_type != NULL)
        sh_buf_printf(&head, "Content-Type: %s\r\n", content_type);
    sh_buf_printf(&head, "X-Request-Id: %s\r\n", req->request_id);
    if (!req->has_cache_control)
        sh_buf_puts(&head, "Cache-Control: no-store\r\n");
    if (req->headers.arena != NULL)
        sh_buf_append(&head, req->headers.data, req->headers.len);
    /* none on a 204 or 304 (RFC 9110 §8.6: a 304's would have to be the
     * 200's length, which a 304 does not compute) */
    if (status != 204 && status != 304)
        sh_buf_printf(&head, "Content-Length: %zu\r\n", len);
    sh_buf_puts(&head, "\r\n");
    if (req->head)
        len = 0; /* HEAD: the GET's headers, Content-Length included, and no body */
    if (req->held != NULL) {
        req->held_type = content_type ? sh_arena_strdup(req->arena, content_type) : NULL;
        sh_buf_append(req->held, head.data, head.len);
        req->held_body_at = req->held->len;
        sh_buf_append(req->held, body, len);
        return status;
    }
    sh_reply_write(req, head.data, head.len, body, len);
    return status;
}

void sh_req_send_held(sh_req *req)
{
    sh_buf *held = req->held;
    if (held == NULL)
        return;
    req->held = NULL;
    sh_reply_write(req, held->data, req->held_body_at, held->data + req->held_body_at, held->len - req->held_body_at);
}

int sh_reply_json(sh_req *req, int status, json_object *body)
{
    size_t len;
    const char *s = sh_json_to_string(body, &len);
    int rc = sh_reply_raw(req, status, "application/json", s, len);
    json_object_put(body);
    return rc;
}

int sh_reply_empty(sh_req *req, int status) { return sh_reply_raw(req, status, NULL, "", 0); }

static int sh_reply_error_v(sh_req *req, int status, const char *code, const char *field, const char *fmt, va_list ap)
{
    char *msg = sh_arena_vsprintf(req->arena, fmt, ap);
    sh_utf8_scrub(msg, strlen(msg)); /* messages may quote a path or a key */
    json_object *err = json_object_new_object();
    json_object_object_add(err, "code", json_object_new_string(code));
    json_object_object_add(err, "message", json_object_new_string(msg));
    if (field != NULL)
        json_object_object_add(err, "field", json_object_new_string(field));
    json_object *root = json_object_new_object();
    json_object_object_add(root, "error", err);
    req->error_code = code;
    return sh_reply_json(req, status, root);
}

int sh_reply_error(sh_req *req, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sh_reply_error_v(req, status, code, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int sh_reply_field_error(sh_req *req, int status, const char *code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sh_reply_error_v(req, status, code, field, fmt, ap);
    va_end(ap);
    return rc;
}

/* --- conditional requests (RFC 9110 §13) ------------------------------------------------ */

/* The next entity tag of a list at *p (OWS and commas skipped): 1 with its
 * opaque part [*tag, *len) and *weak, 0 at the end, -1 on bad syntax. */
static int sh_etag_next(const char **p, const char **tag, size_t *len, bool *weak)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
    if (*s == '\0') {
        *p = s;
        return 0;
    }
    *weak = strncmp(s, "W/", 2) == 0;
    if (*weak)
        s += 2;
    if (*s != '"')
        return -1;
    const char *start = ++s;
    /* etagc = %x21 / %x23-7E / obs-text */
    while (*s != '"' && *s != '\0' && ((unsigned char)*s == 0x21 || (unsigned char)*s >= 0x23) && *s != 0x7f)
        s++;
    if (*s != '"')
        return -1;
    *tag = start;
    *len = (size_t)(s - start);
    s++;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != ',' && *s != '\0')
        return -1;
    *p = s;
    return 1;
}

/* Whether header h ("*" or a list) matches etag: strong or weak comparison.
 * -1 on bad syntax. */
static int sh_etag_list_matches(const char *h, const char *etag, bool strong)
{
    while (*h == ' ' || *h == '\t')
        h++;
    size_t hl = strlen(h);
    while (hl > 0 && (h[hl - 1] == ' ' || h[hl - 1] == '\t'))
        hl--;
    if (hl == 1 && h[0] == '*')
        return etag != NULL;
    bool cur_weak = etag != NULL && strncmp(etag, "W/", 2) == 0;
    const char *cur = etag ? etag + (cur_weak ? 3 : 1) : NULL;
    size_t cur_len = etag ? strlen(cur) - 1 : 0;
    int found = 0, n = 0, rc;
    const char *tag;
    size_t len;
    bool weak;
    while ((rc = sh_etag_next(&h, &tag, &len, &weak)) == 1) {
        n++;
        if (cur != NULL && len == cur_len && memcmp(tag, cur, len) == 0 && (!strong || (!weak && !cur_weak)))
            found = 1;
    }
    return rc < 0 || n == 0 ? -1 : found;
}

int sh_preconditions_or_reply(sh_req *req, const char *etag, bool *if_match)
{
    *if_match = false;
    const char *im = sh_req_header(req, "If-Match"), *inm = sh_req_header(req, "If-None-Match");
    if (im != NULL) {
        int m = sh_etag_list_matches(im, etag, true);
        if (m < 0)
            return sh_reply_error(req, 400, "invalid_header",
                                  "If-Match must be \"*\" or a list of entity tags (RFC 9110 §13.1.1).");
        if (m == 0)
            return sh_reply_error(req, 412, "version_conflict",
                                  "The resource changed since you read it (its ETag is %s now); reload and retry.",
                                  etag ? etag : "gone");
        *if_match = strcmp(im, "*") != 0;
    }
    if (inm != NULL) {
        int m = sh_etag_list_matches(inm, etag, false);
        if (m < 0)
            return sh_reply_error(req, 400, "invalid_header",
                                  "If-None-Match must be \"*\" or a list of entity tags (RFC 9110 §13.1.2).");
        if (m == 1) {
            bool read = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
            if (!read)
                return sh_reply_error(req, 412, "version_conflict",
                                      "If-None-Match matches the resource's current ETag %s.", etag);
            sh_resp_header(req, "ETag", "%s", etag);
            return sh_reply_empty(req, 304);
        }
    }
    return 0;
}
