/* email.c: a user's address: its verification link (mailed at sign-up,
 * again on request), changing it (the change applies when the link mailed to
 * the new address is followed; the old address is told), and the short
 * notices other changes mail. An account gets at most one verification mail,
 * and asks for at most one change, per PL_MAIL_INTERVAL_S. Addresses are normalized before they reach a mail
 * (acc_email_normalize: no CR, LF, space or '<'), and a mail's headers hold
 * nothing of the user's but that address: a name never goes into a header. */
#include "accounts.h"
#include "sh_log.h"

#include <mysqld_error.h>
#include <string.h>

int acc_notice_queue(sh_req *req, const char *to, const char *subject, const char *text)
{
    char *body = sh_arena_sprintf(req->arena, "Hello,\n\n%s\n\n-- Pilotlight\n", text);
    char *html = sh_arena_sprintf(req->arena, "<p>Hello,</p><p>%s</p><p>&mdash; Pilotlight</p>",
                                  acc_html_escape(req->arena, text));
    return acc_mail_queue(req, to, subject, body, html);
}

int acc_verify_mail_queue(sh_req *req, int64_t user_id, const char *to, const char *purpose)
{
    bool change = strcmp(purpose, ACC_OTT_CHANGE_EMAIL) == 0;
    /* only the latest address asked for can become the account's (older
     * verification links of the same address stay good) */
    char *token = acc_ott_issue(req, user_id, purpose, to, ACC_VERIFY_TTL_S, change);
    if (token == NULL)
        return -1;
    char *link = acc_mail_link(req, "/verify-email?token=", token);
    const char *subject = change ? "Confirm your new email address for Pilotlight" : "Verify your email address";
    const char *what = change ? "To make this the address of your Pilotlight account"
                              : "To verify this address for your Pilotlight account";
    char *text = sh_arena_sprintf(req->arena,
                                  "Hello,\n\n%s, open this link within 24 hours:\n\n%s\n\n"
                                  "If you did not ask for this, ignore this mail.\n\n-- Pilotlight\n",
                                  what, link);
    char *html = sh_arena_sprintf(req->arena,
                                  "<p>Hello,</p><p>%s, open this link within 24 hours:</p>"
                                  "<p><a href=\"%s\">%s</a></p><p>If you did not ask for this, ignore this mail.</p>"
                                  "<p>&mdash; Pilotlight</p>",
                                  what, acc_html_escape(req->arena, link), acc_html_escape(req->arena, link));
    if (acc_mail_queue(req, to, subject, text, html) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_SET_VERIFY_SENT], NULL, "i", user_id) != 0)
        return -1;
    return 0;
}

/* A verification link of an address: the account's address is verified, if
 * it still is the one the link was mailed to. */
static int acc_email_verified(sh_req *req, const acc_ott *t)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_USER_SET_VERIFIED], &r, "is", t->user_id, t->data) != 0)
        return sh_db_reply_error(req);
    if (r.affected_rows == 0)
        return sh_reply_field_error(req, 422, "token_expired", "token",
                                    "This link was mailed to an address the account no longer uses.");
    return 0;
}

/* A confirmation link of a new address: it becomes the account's, verified;
 * links mailed to the old one (verification, reset) stop working. */
static int acc_email_changed(sh_req *req, const acc_ott *t)
{
    if (sh_db_query(req, acc_stmt[ACC_USER_SET_EMAIL], NULL, "si", t->data, t->user_id) != 0) {
        if (sh_db_errno() == ER_DUP_ENTRY)
            return sh_reply_field_error(req, 409, "email_taken", "token",
                                        "Another account has taken this address meanwhile.");
        return sh_db_reply_error(req);
    }
    if (sh_db_query(req, acc_stmt[ACC_OTT_EXPIRE], NULL, "is", t->user_id, ACC_OTT_VERIFY_EMAIL) != 0 ||
        sh_db_query(req, acc_stmt[ACC_OTT_EXPIRE], NULL, "is", t->user_id, ACC_OTT_RESET_PASSWORD) != 0)
        return sh_db_reply_error(req);
    return 0;
}

int acc_email_verify(sh_req *req)
{
    static const char *const purposes[] = {ACC_OTT_VERIFY_EMAIL, ACC_OTT_CHANGE_EMAIL, NULL};
    acc_ott t;
    if (sh_db_begin(req) != 0)
        return sh_db_reply_error(req);
    int rc = acc_ott_take_or_reply(req, sh_field_str(req, "token"), purposes, "token", &t);
    if (rc != 0)
        return rc;
    rc = strcmp(t.purpose, ACC_OTT_CHANGE_EMAIL) == 0 ? acc_email_changed(req, &t) : acc_email_verified(req, &t);
    if (rc != 0)
        return rc;
    sh_row user;
    if (acc_ott_use(req, t.id) != 0 || acc_user_load(req, t.user_id, &user) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_log_msgf(SH_LOG_INFO, strcmp(t.purpose, ACC_OTT_CHANGE_EMAIL) == 0 ? "email_changed" : "email_verified",
                "user %lld", (long long)t.user_id);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "user", acc_user_json(&user));
    return sh_reply_json(req, 200, o);
}

/* 429 too_many_mails with Retry-After when the account's last such mail is too recent. */
static int acc_mail_wait_or_reply(sh_req *req, int64_t wait_s)
{
    if (wait_s <= 0)
        return 0;
    sh_resp_header(req, "Retry-After", "%lld", (long long)wait_s);
    return sh_reply_error(req, 429, "too_many_mails",
                          "A mail was sent to this account moments ago: wait %lld seconds before asking again.",
                          (long long)wait_s);
}

static int acc_reply_queued(sh_req *req, const char *key, const char *value)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, key, json_object_new_string(value));
    return sh_reply_json(req, 202, o);
}

int acc_email_verify_resend(sh_req *req)
{
    int64_t id = req->auth.user_id;
    sh_result r;
    if (sh_db_begin(req) != 0 || sh_db_query(req, acc_stmt[ACC_USER_MAIL_LOCK], &r, "iii", acc_conf.mail_interval_s,
                                             acc_conf.mail_interval_s, id) != 0)
        return sh_db_reply_error(req);
    if (r.nrows == 0)
        return sh_reply_error(req, 404, "not_found", "No such user.");
    const sh_row *u = &r.rows[0];
    if (sh_row_int(u, 3) != 0)
        return sh_reply_error(req, 409, "email_already_verified", "Your email address is verified already.");
    int rc = acc_mail_wait_or_reply(req, sh_row_int(u, 0));
    if (rc != 0)
        return rc;
    const char *email = sh_row_str(u, 2);
    if (acc_verify_mail_queue(req, id, email, ACC_OTT_VERIFY_EMAIL) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    return acc_reply_queued(req, "sent_to", email);
}

int acc_email_change(sh_req *req)
{
    const sh_value *in = sh_req_field(req, "email");
    char email[ACC_EMAIL_MAX + 1];
    if (acc_email_normalize(in->s, in->len, email) != 0)
        return sh_reply_field_error(req, 422, "invalid_field", "email", "Field email is not a valid email address.");
    acc_auth_state st;
    int64_t id = req->auth.user_id;
    int rc = acc_auth_state_or_reply(req, id, &st);
    if (rc != 0 || (rc = acc_password_check_or_reply(req, &st, "current_password")) != 0)
        return rc;
    if (strcmp(email, st.email) == 0)
        return sh_reply_field_error(req, 422, "email_unchanged", "email", "This is your address already.");
    sh_result taken, r;
    if (sh_db_query(req, acc_stmt[ACC_USER_ID_BY_EMAIL], &taken, "s", email) != 0)
        return sh_db_reply_error(req);
    if (taken.nrows > 0)
        return sh_reply_field_error(req, 409, "email_taken", "email", "An account with this email already exists.");
    if (sh_db_begin(req) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_MAIL_LOCK], &r, "iii", acc_conf.mail_interval_s, acc_conf.mail_interval_s,
                    id) != 0 ||
        r.nrows != 1)
        return sh_db_reply_error(req);
    /* one change a PL_MAIL_INTERVAL_S (the user row locked above serializes them) */
    sh_result wait;
    if (sh_db_query(req, acc_stmt[ACC_OTT_WAIT], &wait, "iis", acc_conf.mail_interval_s, id, ACC_OTT_CHANGE_EMAIL) != 0)
        return sh_db_reply_error(req);
    if ((rc = acc_mail_wait_or_reply(req, sh_row_int(&wait.rows[0], 0))) != 0)
        return rc;
    char *notice = sh_arena_sprintf(req->arena,
                                    "Someone signed in to your Pilotlight account asked to change its address to "
                                    "%s. It changes only once the link mailed there is followed. If this was not "
                                    "you, change your password now: that also cancels the change.",
                                    email);
    if (acc_verify_mail_queue(req, id, email, ACC_OTT_CHANGE_EMAIL) != 0 ||
        acc_notice_queue(req, st.email, "Your Pilotlight address is about to change", notice) != 0 ||
        sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    return acc_reply_queued(req, "pending_email", email);
}
