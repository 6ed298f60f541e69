/* mail.c: accounts' mail. A mail is a row of the outbox, written in the same
 * transaction as the change that causes it (acc_mail_queue), and sent over
 * SMTP with libcurl (RFC 5321; the message is RFC 5322 with a MIME
 * multipart/alternative body, RFC 2045/2046) after that transaction commits:
 * at the end of the request, once its client has the answer, and again with
 * a growing backoff when the server refused or could not be reached. Those
 * retries happen with no request at all: the pool wakes a worker for them
 * (sh_pool_wake_at) when the next one is due, and an empty outbox asks for
 * nothing, so an idle stack stays asleep. A worker claims a batch of due
 * mail in a short transaction (each mail leased to it for as long as the
 * batch may take) and sends it holding no lock: requests that queue mail
 * meanwhile never wait for an SMTP server. A mail is sent at least once: a
 * worker that dies between the server's "OK" and marking it sent leaves it
 * to be sent again once its lease ends. */
#include "accounts.h"
#include "sh_curl.h"
#include "sh_log.h"
#include "sh_str.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define ACC_MAIL_BATCH          20
#define ACC_MAIL_BACKOFF_BASE_S 5
#define ACC_MAIL_BACKOFF_MAX_S  3600

static bool acc_mail_flush_queued; /* this request has deferred a flush already */

static void acc_mail_flush_deferred(sh_req *req, void *arg)
{
    (void)arg;
    acc_mail_flush_queued = false;
    acc_outbox_flush(req);
}

int acc_mail_queue(sh_req *req, const char *to, const char *subject, const char *text, const char *html)
{
    if (sh_db_query(req, acc_stmt[ACC_OUTBOX_INSERT], NULL, "ssss", to, subject, text, html) != 0)
        return -1;
    if (!acc_mail_flush_queued) {
        acc_mail_flush_queued = true;
        sh_req_defer(req, acc_mail_flush_deferred, NULL);
    }
    return 0;
}

/* Base64 (RFC 2045 §6.8) of s, in lines of 76 characters, CRLF-ended. */
static void acc_mail_base64(sh_buf *out, const char *s)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(s), col = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v =
            (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < len ? (uint32_t)p[i + 2] : 0);
        char q[4] = {abc[v >> 18 & 63], abc[v >> 12 & 63], i + 1 < len ? abc[v >> 6 & 63] : '=',
                     i + 2 < len ? abc[v & 63] : '='};
        sh_buf_append(out, q, 4);
        if ((col += 4) == 76) {
            sh_buf_puts(out, "\r\n");
            col = 0;
        }
    }
    if (col > 0)
        sh_buf_puts(out, "\r\n");
}

/* The whole message. Every header value is ours or a checked address: no
 * CR or LF from anywhere else reaches the header section. */
static char *acc_mail_message(sh_arena *a, const char *to, const char *subject, const char *text, const char *html,
                              size_t *len)
{
    unsigned char rnd[12];
    randombytes_buf(rnd, sizeof(rnd));
    const char *boundary = sh_arena_sprintf(a, "pl-%s", sh_b64url_encode(a, rnd, sizeof(rnd)));
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *domain = strrchr(acc_conf.mail_from, '@');
    domain = domain ? domain + 1 : "localhost";
    sh_buf m;
    sh_buf_init(&m, a, 2048 + strlen(text) * 2 + strlen(html) * 2);
    sh_buf_printf(&m, "From: %s\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\n", acc_conf.mail_from, to, subject, date);
    randombytes_buf(rnd, sizeof(rnd));
    sh_buf_printf(&m, "Message-ID: <%s@%.*s>\r\n", sh_b64url_encode(a, rnd, sizeof(rnd)), (int)strcspn(domain, ">"),
                  domain);
    sh_buf_printf(&m,
                  "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
                  "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
                  boundary);
    sh_buf_printf(&m, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                  boundary);
    acc_mail_base64(&m, text);
    sh_buf_printf(&m, "--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                  boundary);
    acc_mail_base64(&m, html);
    sh_buf_printf(&m, "--%s--\r\n", boundary);
    *len = m.len;
    return m.data;
}

typedef struct {
    const char *data;
    size_t len, off;
} acc_mail_upload;

static size_t acc_mail_read(char *buf, size_t size, size_t n, void *userdata)
{
    acc_mail_upload *u = userdata;
    size_t left = u->len - u->off, take = size * n < left ? size * n : left;
    memcpy(buf, u->data + u->off, take);
    u->off += take;
    return take;
}

/* One mail through the SMTP server. 0 when it took it, else -1 with *why. */
static int acc_mail_send(sh_req *req, const char *to, const char *subject, const char *text, const char *html,
                         const char **why)
{
    const sh_curl_api *cu = sh_curl();
    CURL *c = cu != NULL ? cu->easy_init() : NULL;
    if (c == NULL) {
        *why = "the mail client could not start";
        return -1;
    }
    acc_mail_upload up = {0};
    up.data = acc_mail_message(req->arena, to, subject, text, html, &up.len);
    struct curl_slist *rcpt = cu->slist_append(NULL, sh_arena_sprintf(req->arena, "<%s>", to));
    const char *from = strrchr(acc_conf.mail_from, '<');
    char *envelope = from ? sh_arena_strndup(req->arena, from, strcspn(from, ">") + 1)
                          : sh_arena_sprintf(req->arena, "<%s>", acc_conf.mail_from);
    cu->easy_setopt(c, CURLOPT_URL, acc_conf.smtp_url);
    cu->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    cu->easy_setopt(c, CURLOPT_MAIL_FROM, envelope);
    cu->easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    cu->easy_setopt(c, CURLOPT_READFUNCTION, acc_mail_read);
    cu->easy_setopt(c, CURLOPT_READDATA, &up);
    cu->easy_setopt(c, CURLOPT_UPLOAD, 1L);
    cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)acc_conf.smtp_timeout_ms);
    cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (acc_conf.smtp_user != NULL) {
        cu->easy_setopt(c, CURLOPT_USERNAME, acc_conf.smtp_user);
        cu->easy_setopt(c, CURLOPT_PASSWORD, acc_conf.smtp_password ? acc_conf.smtp_password : "");
        cu->easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL); /* credentials never in the clear */
    }
    CURLcode cc = cu->easy_perform(c);
    cu->slist_free_all(rcpt);
    cu->easy_cleanup(c);
    if (cc != CURLE_OK) {
        *why = cu->easy_strerror(cc);
        return -1;
    }
    return 0;
}

/* When the next mail is due: asks the pool to wake a worker then. */
static void acc_outbox_schedule(sh_req *req)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_OUTBOX_NEXT], &r, "") != 0 || r.nrows != 1 || sh_row_is_null(&r.rows[0], 0))
        return;
    int64_t in_s = sh_row_int(&r.rows[0], 0);
    sh_pool_wake_at(sh_wall_us() + (in_s > 0 ? in_s : 0) * 1000000 + 100000);
}

/* Claims up to a batch of due mail for this worker: each is leased (due for
 * nobody else) for as long as the whole batch may take. 0 or -1. */
static int acc_outbox_claim(sh_req *req, sh_result *due)
{
    int64_t lease_s = ACC_MAIL_BATCH * (acc_conf.smtp_timeout_ms / 1000 + 1) + 60;
    if (sh_db_begin(req) != 0 || sh_db_query(req, acc_stmt[ACC_OUTBOX_DUE], due, "i", (int64_t)ACC_MAIL_BATCH) != 0)
        return -1;
    for (int i = 0; i < due->nrows; i++)
        if (sh_db_query(req, acc_stmt[ACC_OUTBOX_LEASE], NULL, "ii", lease_s, sh_row_int(&due->rows[i], 0)) != 0)
            return -1;
    return sh_db_commit(req);
}

void acc_outbox_flush(sh_req *req)
{
    if (acc_conf.smtp_url == NULL)
        return; /* no server: mail waits in the outbox */
    int sent = 0, failed = 0;
    for (;;) {
        sh_result due;
        if (acc_outbox_claim(req, &due) != 0) {
            sh_log_msgf(SH_LOG_WARN, "mail_flush_failed", "the outbox could not be read (error %u)", sh_db_errno());
            sh_db_rollback(req);
            sh_pool_wake_at(sh_wall_us() + ACC_MAIL_BACKOFF_BASE_S * 1000000LL);
            return;
        }
        bool ok = true;
        for (int i = 0; i < due.nrows; i++) {
            const sh_row *m = &due.rows[i];
            int64_t id = sh_row_int(m, 0), attempts = sh_row_int(m, 5);
            const char *why = NULL;
            if (acc_mail_send(req, sh_row_str(m, 1), sh_row_str(m, 2), sh_row_str(m, 3), sh_row_str(m, 4), &why) == 0) {
                sent++;
                ok = sh_db_query(req, acc_stmt[ACC_OUTBOX_SENT], NULL, "i", id) == 0 && ok;
                continue;
            }
            failed++;
            int64_t backoff = (int64_t)ACC_MAIL_BACKOFF_BASE_S << (attempts < 10 ? attempts : 10);
            if (backoff > ACC_MAIL_BACKOFF_MAX_S)
                backoff = ACC_MAIL_BACKOFF_MAX_S;
            sh_logline l;
            sh_log_begin(&l, SH_LOG_WARN, "mail_deferred");
            sh_log_int(&l, "mail_id", id);
            sh_log_int(&l, "attempts", attempts + 1);
            sh_log_str(&l, "error", why);
            sh_log_int(&l, "retry_in_s", backoff);
            sh_log_end(&l);
            ok = sh_db_query(req, acc_stmt[ACC_OUTBOX_FAILED], NULL, "sii", why, backoff, id) == 0 && ok;
        }
        if (!ok) { /* what was not marked goes again once its lease ends */
            sh_log_msgf(SH_LOG_WARN, "mail_flush_failed", "the outbox could not be updated (error %u)", sh_db_errno());
            sh_pool_wake_at(sh_wall_us() + ACC_MAIL_BACKOFF_BASE_S * 1000000LL);
            return;
        }
        if (due.nrows < ACC_MAIL_BATCH || failed > 0)
            break; /* all sent, or the server refuses: the backoff decides when again */
    }
    if (sent > 0 || failed > 0)
        sh_log_msgf(SH_LOG_INFO, "mail_flushed", "%d sent, %d deferred", sent, failed);
    if (sh_db_query(req, acc_stmt[ACC_OUTBOX_PURGE], NULL, "") != 0)
        sh_log_msg(SH_LOG_WARN, "mail_purge_failed", "sent mail stays in the outbox until the next flush");
    acc_outbox_schedule(req);
}

void acc_on_wake(sh_req *req) { acc_outbox_flush(req); }

char *acc_mail_link(sh_req *req, const char *path, const char *token)
{
    const char *base = sh_conf.public_url;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    return sh_arena_sprintf(req->arena, "%.*s%s%s", (int)n, base, path, token);
}

char *acc_html_escape(sh_arena *a, const char *s)
{
    sh_buf b;
    sh_buf_init(&b, a, strlen(s) + 16);
    for (; *s; s++) {
        switch (*s) {
        case '&': sh_buf_puts(&b, "&amp;"); break;
        case '<': sh_buf_puts(&b, "&lt;"); break;
        case '>': sh_buf_puts(&b, "&gt;"); break;
        case '"': sh_buf_puts(&b, "&quot;"); break;
        case '\'': sh_buf_puts(&b, "&#39;"); break;
        default: sh_buf_putc(&b, *s);
        }
    }
    return b.data;
}

/* Test only: queues a mail to `to`, as a flow would (and commits it). */
int acc_test_mail(sh_req *req)
{
    const char *to = sh_field_str(req, "to");
    char email[ACC_EMAIL_MAX + 1];
    if (acc_email_normalize(to, strlen(to), email) != 0)
        return sh_reply_field_error(req, 422, "invalid_field", "to", "Field to is not a valid email address.");
    const char *tag = sh_field_str(req, "tag");
    tag = tag ? tag : "";
    char *text = sh_arena_sprintf(req->arena, "A test mail from Pilotlight (%s).\n", tag);
    char *html =
        sh_arena_sprintf(req->arena, "<p>A test mail from Pilotlight (%s).</p>", acc_html_escape(req->arena, tag));
    if (sh_db_begin(req) != 0 || acc_mail_queue(req, email, "Pilotlight test mail", text, html) != 0 ||
        sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "queued", json_object_new_boolean(1));
    return sh_reply_json(req, 202, o);
}
