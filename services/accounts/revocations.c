/* revocations.c: the revocation feed every service follows (sh_auth.h), and
 * revoking: a disabled user, an ended session, a changed password. Only the
 * feed's recent part matters: an entry is useless once every token it
 * refuses has expired anyway (keep_s). */
#include "accounts.h"
#include "sh_log.h"

#include <stdio.h>
#include <string.h>

/* How long an entry matters: the longest an access token lives, and the clock skew allowed. */
static int64_t acc_revocations_keep_s(void) { return acc_conf.access_ttl_s + sh_auth_config_get()->leeway_s + 60; }

int acc_revocations_fetch(sh_req *req, int64_t after, sh_revocation *out, int max, int *n, int64_t *last_id,
                          int64_t *keep_s)
{
    sh_result r;
    *keep_s = acc_revocations_keep_s();
    if (sh_db_query(req, acc_stmt[ACC_REVOCATIONS_AFTER], &r, "iii", after, *keep_s, (int64_t)max) != 0)
        return -1;
    *n = r.nrows;
    for (int i = 0; i < r.nrows; i++) {
        out[i].id = sh_row_int(&r.rows[i], 0);
        out[i].user_id = sh_row_int(&r.rows[i], 1);
        snprintf(out[i].session_id, sizeof(out[i].session_id), "%s", sh_row_str(&r.rows[i], 2));
        out[i].not_before = sh_row_int(&r.rows[i], 3);
    }
    if (r.nrows > 0) {
        *last_id = out[r.nrows - 1].id;
        return 0;
    }
    /* nothing recent after it: go on from the newest, the rest has expired */
    sh_result last;
    if (sh_db_query(req, acc_stmt[ACC_REVOCATIONS_LAST], &last, "") != 0 || last.nrows != 1)
        return -1;
    *last_id = sh_row_int(&last.rows[0], 0) > after ? sh_row_int(&last.rows[0], 0) : after;
    return 0;
}

/* GET /api/accounts/_revocations?after=ID (internal): the feed after ID. */
int acc_revocations_list(sh_req *req)
{
    sh_revocation entries[256];
    int n = 0;
    int64_t last = 0, keep = 0;
    if (acc_revocations_fetch(req, sh_param_int(req, "after", 0), entries, (int)SH_ARRAY_LEN(entries), &n, &last,
                              &keep) != 0)
        return sh_db_reply_error(req);
    json_object *list = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "id", json_object_new_int64(entries[i].id));
        json_object_object_add(e, "user_id", json_object_new_int64(entries[i].user_id));
        json_object_object_add(e, "session_id",
                               entries[i].session_id[0] ? json_object_new_string(entries[i].session_id) : NULL);
        json_object_object_add(e, "not_before", json_object_new_int64(entries[i].not_before));
        json_object_array_add(list, e);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "revocations", list);
    json_object_object_add(o, "last_id", json_object_new_int64(last));
    json_object_object_add(o, "keep_s", json_object_new_int64(keep));
    return sh_reply_json(req, 200, o);
}

/* After the answer: chat closes the user's live subscriptions. */
static void acc_revoke_live(sh_req *req, void *arg)
{
    int64_t user_id = *(int64_t *)arg;
    char *path = sh_arena_sprintf(req->arena, "/api/chat/users/%lld/live/close", (long long)user_id);
    sh_invoke_result res;
    if (sh_invoke(req, "POST", path, NULL, &res) != 0 || res.status != 200)
        sh_log_msgf(SH_LOG_WARN, "live_close_failed", "user %lld's live subscriptions stay open until they end (%s)",
                    (long long)user_id, res.error ? res.error : "unexpected status");
}

/* After the answer: entries no token can need any more (a day old, and past
 * keep_s) go, at most 1,000 a revocation, so the table holds about a day's. */
static void acc_revocations_purge(sh_req *req, void *arg)
{
    (void)arg;
    if (sh_db_query(req, acc_stmt[ACC_REVOCATIONS_PURGE], NULL, "i", acc_revocations_keep_s()) != 0)
        sh_log_msg(SH_LOG_WARN, "revocations_purge_failed", "old revocations stay until the next revocation");
}

int acc_revoke(sh_req *req, int64_t user_id, const char *session_id, int64_t not_before)
{
    if (sh_db_query(req, acc_stmt[ACC_REVOCATION_INSERT], NULL, "isi", user_id, session_id, not_before) != 0)
        return -1;
    /* the pools on this host read the feed once it is committed */
    void *signal = sh_auth_revocation_begin(req);
    if (signal != NULL && sh_db_on_commit(req, sh_auth_revocation_committed, signal) != 0)
        sh_log_msg(SH_LOG_WARN, "revocation_signal_late", "signalled when the request ends");
    int64_t *arg = sh_arena_alloc(req->arena, sizeof(*arg));
    *arg = user_id;
    sh_req_defer(req, acc_revoke_live, arg);
    sh_req_defer(req, acc_revocations_purge, NULL);
    return 0;
}
