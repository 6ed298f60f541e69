/* idempotency.c: Idempotency-Key (see sh_idempotency.h). One row per (user,
 * key) in the service's idempotency_keys table. A request with a key:
 *
 *   1. reads the key's row: a live one with the same fingerprint is replayed,
 *      with another fingerprint refused (422);
 *   2. else opens a transaction and claims the key with an INSERT that waits
 *      for no lock (a first request still running holds it: 409);
 *   3. runs the handler with its reply held, stores the answer in the row and
 *      commits; only then is the answer sent.
 *
 * A worker that dies anywhere before the COMMIT leaves nothing behind. */
#include "sh_idempotency.h"
#include "sh_codec.h"
#include "sh_log.h"
#include "sh_str.h"

#include <mysqld_error.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define I(field) offsetof(sh_idem_config, field)
const sh_conf_row sh_idem_conf_rows[] = {
    {"PL_IDEMPOTENCY_TTL_S", SH_CONF_INT, I(ttl_s), "86400", 60, 2592000, NULL, 0,
     "how long an Idempotency-Key and its answer are kept (routes that honour the header)"},
    SH_CONF_END,
};
#undef I

static sh_idem_config sh_idem_cfg = {86400};

void sh_idem_configure(const sh_idem_config *ic) { sh_idem_cfg = *ic; }

enum { IDEM_GET, IDEM_DROP_EXPIRED, IDEM_CLAIM, IDEM_RECORD, IDEM_PURGE, IDEM_STMTS };
static int sh_idem_stmt[IDEM_STMTS];
static unsigned sh_idem_claims; /* this worker's: every 64th purges expired keys */

static const char *const sh_idem_sql[IDEM_STMTS] = {
    [IDEM_GET] = "SELECT fingerprint, status, content_type, headers, body, expires_at <= NOW(6) "
                 "FROM idempotency_keys WHERE scope = ? AND idem_key = ?",
    [IDEM_DROP_EXPIRED] = "DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ? AND expires_at <= NOW(6)",
    /* no lock wait: a row another transaction is inserting is a request in flight */
    [IDEM_CLAIM] = "SET STATEMENT innodb_lock_wait_timeout = 0 FOR "
                   "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, expires_at) "
                   "VALUES (?, ?, ?, NOW(6) + INTERVAL ? SECOND)",
    [IDEM_RECORD] = "UPDATE idempotency_keys SET status = ?, content_type = ?, headers = ?, body = ? "
                    "WHERE scope = ? AND idem_key = ?",
    [IDEM_PURGE] = "DELETE FROM idempotency_keys WHERE expires_at <= NOW(6) LIMIT 100",
};

int sh_idem_register(sh_db *db)
{
    for (int i = 0; i < IDEM_STMTS; i++)
        if ((sh_idem_stmt[i] = sh_db_register(db, sh_idem_sql[i])) < 0)
            return -1;
    return 0;
}

const char *sh_idem_parse_key(sh_req *req, const char *header)
{
    size_t len = strlen(header);
    if (len >= 2 && header[0] == '"' && header[len - 1] == '"') {
        header++;
        len -= 2;
    }
    if (len == 0 || len > SH_IDEM_KEY_MAX)
        return NULL;
    /* visible ASCII only: no space either, which the key's column (ascii_bin,
     * PAD SPACE) would ignore at the end, so that "k " would be the key "k" */
    for (size_t i = 0; i < len; i++)
        if (header[i] <= 0x20 || header[i] > 0x7e || header[i] == '"' || header[i] == '\\')
            return NULL;
    return sh_arena_strndup(req->arena, header, len);
}

/* What makes two requests "the same": method, path, query and body. */
static const char *sh_idem_fingerprint(sh_req *req)
{
    sh_buf b;
    sh_buf_init(&b, req->arena, 256 + req->body_len);
    sh_buf_printf(&b, "%s", req->method);
    sh_buf_append(&b, "", 1);
    sh_buf_printf(&b, "%s", req->path);
    sh_buf_append(&b, "", 1);
    sh_buf_printf(&b, "%s", req->query);
    sh_buf_append(&b, "", 1);
    if (req->body_len > 0)
        sh_buf_append(&b, req->body, req->body_len);
    char *hex = sh_arena_alloc(req->arena, SH_SHA256_HEX_LEN + 1);
    return sh_sha256_hex_into(hex, b.data, b.len);
}

/* Answers again what a stored row answered, or 422 when it answered another request. */
static int sh_idem_replay(sh_req *req, const sh_row *row, const char *fingerprint)
{
    if (strcmp(sh_row_str(row, 0), fingerprint) != 0)
        return sh_reply_field_error(req, 422, "idempotency_key_reused", "Idempotency-Key",
                                    "This Idempotency-Key was used with another request; use a new key.");
    /* the stored header lines, one "Name: value\r\n" each */
    const char *h = sh_row_is_null(row, 3) ? "" : sh_row_str(row, 3);
    while (*h) {
        const char *colon = strchr(h, ':'), *end = strstr(h, "\r\n");
        if (colon == NULL || end == NULL || colon > end)
            break;
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        sh_resp_header(req, sh_arena_strndup(req->arena, h, (size_t)(colon - h)), "%.*s", (int)(end - v), v);
        h = end + 2;
    }
    sh_resp_header(req, "Idempotent-Replayed", "true");
    sh_log_msgf(SH_LOG_INFO, "idempotent_replay", "answered %s %s again from its Idempotency-Key", req->method,
                req->path);
    return sh_reply_raw(req, (int)sh_row_int(row, 1), sh_row_is_null(row, 2) ? NULL : sh_row_str(row, 2),
                        sh_row_is_null(row, 4) ? "" : row->values[4], sh_row_is_null(row, 4) ? 0 : row->lengths[4]);
}

/* The header lines the handler added after `mark`, without the per-hop ones. */
static const char *sh_idem_handler_headers(sh_req *req, size_t mark)
{
    if (req->headers.arena == NULL || req->headers.len <= mark)
        return "";
    sh_buf out;
    sh_buf_init(&out, req->arena, 128);
    sh_buf_append(&out, "", 0);
    const char *h = req->headers.data + mark, *stop = req->headers.data + req->headers.len;
    while (h < stop) {
        const char *end = memchr(h, '\n', (size_t)(stop - h));
        end = end ? end + 1 : stop;
        if (strncasecmp(h, "X-Invoke-Spent:", 15) != 0 && strncasecmp(h, "RateLimit", 9) != 0)
            sh_buf_append(&out, h, (size_t)(end - h));
        h = end;
    }
    return out.data;
}

/* Stores the held answer in the key's row and commits; -1 when that failed. */
static int sh_idem_record(sh_req *req, const char *scope, const char *key, size_t mark)
{
    sh_buf *held = req->held;
    if (sh_db_query(req, sh_idem_stmt[IDEM_RECORD], NULL, "issSss", (int64_t)req->status, req->held_type,
                    sh_idem_handler_headers(req, mark), held->data + req->held_body_at, held->len - req->held_body_at,
                    scope, key) != 0 ||
        sh_db_commit(req) != 0)
        return -1;
    if (++sh_idem_claims % 64 == 0 && sh_db_query(req, sh_idem_stmt[IDEM_PURGE], NULL, "") != 0)
        sh_log_msg(SH_LOG_WARN, "idempotency_purge_failed", "could not delete expired idempotency keys");
    return 0;
}

/* Claims the key in a new transaction: 0, or the status of the reply sent. */
static int sh_idem_claim_or_reply(sh_req *req, const char *scope, const char *key, const char *fingerprint,
                                  bool expired)
{
    if (sh_db_begin(req) != 0)
        return sh_db_reply_error(req);
    if ((expired && sh_db_query(req, sh_idem_stmt[IDEM_DROP_EXPIRED], NULL, "ss", scope, key) != 0) ||
        sh_db_query(req, sh_idem_stmt[IDEM_CLAIM], NULL, "sssi", scope, key, fingerprint, sh_idem_cfg.ttl_s) != 0) {
        unsigned err = sh_db_errno();
        sh_db_rollback(req);
        if (err == ER_LOCK_WAIT_TIMEOUT) {
            sh_resp_header(req, "Retry-After", "1");
            return sh_reply_field_error(req, 409, "idempotency_key_in_use", "Idempotency-Key",
                                        "A request with this Idempotency-Key is still running; retry shortly.");
        }
        if (err != ER_DUP_ENTRY)
            return sh_db_reply_error(req);
        /* the first request committed between our read and our claim */
        sh_result r;
        if (sh_db_query(req, sh_idem_stmt[IDEM_GET], &r, "ss", scope, key) != 0)
            return sh_db_reply_error(req);
        if (r.nrows != 1) {
            sh_resp_header(req, "Retry-After", "1");
            return sh_reply_field_error(req, 409, "idempotency_key_in_use", "Idempotency-Key",
                                        "A request with this Idempotency-Key is still running; retry shortly.");
        }
        return sh_idem_replay(req, &r.rows[0], fingerprint);
    }
    return 0;
}

/* The handler, then the outcome: commit with the answer recorded, or roll back. */
static int sh_idem_run_claimed(sh_req *req, const char *scope, const char *key)
{
    sh_buf held;
    sh_buf_init(&held, req->arena, 1024);
    size_t mark = req->headers.arena != NULL ? req->headers.len : 0;
    req->held = &held;
    req->route->handler(req);
    if (!req->responded) {
        sh_log_msgf(SH_LOG_ERROR, "no_reply", "handler %s returned without answering", req->route->name);
        sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    }
    /* kept: an answer below 500 whose transactions all closed (a handler that
     * rolled back ended ours too: its answer goes out, unrecorded) */
    bool keep = req->status < 500 && sh_db_in_transaction() && sh_db_nested() == 0;
    if (keep && sh_idem_record(req, scope, key, mark) != 0) {
        /* not committed: nothing happened, and the client must hear that */
        sh_db_rollback(req);
        req->held = NULL;
        req->responded = false;
        if (req->headers.arena != NULL)
            req->headers.len = mark;
        return sh_db_reply_error(req);
    }
    if (!keep)
        sh_db_rollback(req);
    sh_req_send_held(req);
    return req->status;
}

int sh_idem_run(sh_req *req)
{
    const char *header = sh_req_header(req, "Idempotency-Key");
    if (!(req->route->flags & SH_IDEMPOTENT) || header == NULL || !req->auth.present)
        return req->route->handler(req);
    const char *key = sh_idem_parse_key(req, header);
    if (key == NULL)
        return sh_reply_field_error(req, 400, "invalid_header", "Idempotency-Key",
                                    "Idempotency-Key must be 1 to %d visible ASCII characters (a UUID, say).",
                                    SH_IDEM_KEY_MAX);
    const char *scope = sh_arena_sprintf(req->arena, "u%lld", (long long)req->auth.user_id);
    const char *fingerprint = sh_idem_fingerprint(req);
    sh_result r;
    if (sh_db_query(req, sh_idem_stmt[IDEM_GET], &r, "ss", scope, key) != 0)
        return sh_db_reply_error(req);
    bool expired = r.nrows == 1 && sh_row_int(&r.rows[0], 5) != 0;
    if (r.nrows == 1 && !expired)
        return sh_idem_replay(req, &r.rows[0], fingerprint);
    int rc = sh_idem_claim_or_reply(req, scope, key, fingerprint, expired);
    return rc != 0 ? rc : sh_idem_run_claimed(req, scope, key);
}
