/* reset.c: a forgotten password. "Forgot" answers 202 at once, the same for
 * every address: whether an account exists, is disabled or was mailed a
 * moment ago is decided after the answer has gone (sh_req_defer), so neither
 * the answer nor its timing tells. The account, if any, gets a link with a
 * single-use token (30 minutes; at most one mail per PL_MAIL_INTERVAL_S).
 * "Reset" takes that token and a new password, ends every session of the
 * user, and counts as proof that the user reads the mail of the address. */
#include "accounts.h"
#include "sh_log.h"

#include <string.h>
#include <time.h>

/* After the answer: mails the account of `email` a reset link, if there is
 * one that may have it now. Failures are only logged: the client has its 202. */
static void acc_forgot_deferred(sh_req *req, void *arg)
{
    const char *email = arg;
    sh_result r, u;
    if (sh_db_query(req, acc_stmt[ACC_USER_ID_BY_EMAIL], &r, "s", email) != 0)
        goto failed;
    if (r.nrows == 0)
        return;
    int64_t id = sh_row_int(&r.rows[0], 0);
    if (sh_db_begin(req) != 0 || sh_db_query(req, acc_stmt[ACC_USER_MAIL_LOCK], &u, "iii", acc_conf.mail_interval_s,
                                             acc_conf.mail_interval_s, id) != 0)
        goto failed;
    if (u.nrows == 0 || sh_row_int(&u.rows[0], 4) != 0 || sh_row_int(&u.rows[0], 1) > 0) {
        sh_db_rollback(req); /* gone, disabled, or mailed moments ago */
        return;
    }
    char *token = acc_ott_issue(req, id, ACC_OTT_RESET_PASSWORD, NULL, ACC_RESET_TTL_S, true);
    if (token == NULL)
        goto failed;
    char *link = acc_mail_link(req, "/reset-password?token=", token), *safe = acc_html_escape(req->arena, link);
    char *text = sh_arena_sprintf(req->arena,
                                  "Hello,\n\nTo choose a new password for your Pilotlight account, open this link "
                                  "within 30 minutes:\n\n%s\n\nIf you did not ask for this, ignore this mail: your "
                                  "password stays as it is.\n\n-- Pilotlight\n",
                                  link);
    char *html = sh_arena_sprintf(req->arena,
                                  "<p>Hello,</p><p>To choose a new password for your Pilotlight account, open this "
                                  "link within 30 minutes:</p><p><a href=\"%s\">%s</a></p><p>If you did not ask for "
                                  "this, ignore this mail: your password stays as it is.</p><p>&mdash; Pilotlight</p>",
                                  safe, safe);
    if (acc_mail_queue(req, sh_row_str(&u.rows[0], 2), "Reset your Pilotlight password", text, html) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_SET_RESET_SENT], NULL, "i", id) != 0 || sh_db_commit(req) != 0)
        goto failed;
    sh_log_msgf(SH_LOG_INFO, "password_reset_mailed", "user %lld", (long long)id);
    return;
failed:
    sh_db_rollback(req);
    sh_log_msgf(SH_LOG_WARN, "password_reset_failed", "a reset link could not be queued (error %u)", sh_db_errno());
}

int acc_password_forgot(sh_req *req)
{
    const char *in = sh_field_str(req, "email");
    char email[ACC_EMAIL_MAX + 1];
    if (acc_email_normalize(in, strlen(in), email) != 0)
        return sh_reply_field_error(req, 422, "invalid_field", "email", "Field email is not a valid email address.");
    sh_req_defer(req, acc_forgot_deferred, sh_arena_strdup(req->arena, email));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "accepted", json_object_new_boolean(1));
    return sh_reply_json(req, 202, o);
}

int acc_password_reset(sh_req *req)
{
    static const char *const purposes[] = {ACC_OTT_RESET_PASSWORD, NULL};
    const char *token = sh_field_str(req, "token");
    const sh_value *pw = sh_req_field(req, "password");
    acc_ott t;
    acc_auth_state st;
    /* the token and the new password first, the slow hash outside the transaction */
    int rc = acc_ott_take_or_reply(req, token, purposes, "token", &t);
    if (rc != 0 || (rc = acc_auth_state_or_reply(req, t.user_id, &st)) != 0)
        return rc;
    const char *weak = acc_password_problem(pw->s, pw->len, st.email);
    if (weak != NULL)
        return sh_reply_field_error(req, 422, "weak_password", "password", "%s", weak);
    char *hash = acc_password_hash(req->arena, pw->s, pw->len);
    if (hash == NULL)
        return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    if (sh_db_begin(req) != 0 || (rc = acc_ott_take_or_reply(req, token, purposes, "token", &t)) != 0)
        return rc != 0 ? rc : sh_db_reply_error(req);
    /* every session ends, and the links and tickets of the old password; the
     * lockout is lifted; the address is proven */
    if (acc_ott_use(req, t.id) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_SET_PASSWORD], NULL, "si", hash, t.user_id) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_LOGIN_OK], NULL, "i", t.user_id) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_SET_VERIFIED], NULL, "is", t.user_id, st.email) != 0 ||
        acc_ott_expire(req, t.user_id, acc_ott_ended_by_new_password) != 0 ||
        sh_db_query(req, acc_stmt[ACC_RT_REVOKE_USER], NULL, "i", t.user_id) != 0 ||
        sh_db_query(req, acc_stmt[ACC_SESSION_END_USER], NULL, "i", t.user_id) != 0 ||
        acc_revoke(req, t.user_id, NULL, (int64_t)time(NULL) + 1) != 0 ||
        acc_notice_queue(req, st.email, "Your Pilotlight password was reset",
                         "The password of your Pilotlight account was just reset with a link we mailed you, and "
                         "every session was signed out. If you did not do this, reset it again now.") != 0 ||
        sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_log_msgf(SH_LOG_INFO, "password_reset", "user %lld", (long long)t.user_id);
    return sh_reply_empty(req, 204);
}
