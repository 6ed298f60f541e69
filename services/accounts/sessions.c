/* sessions.c: login, refresh-token rotation with theft detection, logout. */
#include "accounts.h"
#include "sh_log.h"

#include <mysqld_error.h>
#include <string.h>

int acc_login(sh_req *req)
{
    const char *email_in = sh_field_str(req, "email");
    const sh_value *pw = sh_req_field(req, "password");
    bool cookie = sh_field_int(req, "cookie", 0) != 0;
    char email[ACC_EMAIL_MAX + 1];
    bool email_ok = acc_email_normalize(email_in, strlen(email_in), email) == 0;

    sh_result r;
    if (email_ok && sh_db_query(req, acc_stmt[ACC_USER_FOR_LOGIN], &r, "s", email) != 0)
        return sh_db_reply_error(req);
    if (!email_ok || r.nrows == 0) {
        acc_password_verify(NULL, pw->s, pw->len); /* the same time as a real check */
        return sh_reply_error(req, 401, "invalid_credentials", "The email or the password is wrong.");
    }
    const sh_row *u = &r.rows[0];
    int64_t id = sh_row_int(u, 0);
    int64_t lock_left = sh_row_int(u, 3);
    if (lock_left > 0) {
        sh_resp_header(req, "Retry-After", "%lld", (long long)lock_left);
        return sh_reply_error(req, 429, "account_locked",
                              "Too many failed logins: this account is locked for %lld more seconds.",
                              (long long)lock_left);
    }
    if (!acc_password_verify(sh_row_str(u, 1), pw->s, pw->len)) {
        if (sh_db_query(req, acc_stmt[ACC_USER_LOGIN_FAILED], NULL, "iiiii", acc_conf.lockout_threshold,
                        acc_conf.lockout_max_s, acc_conf.lockout_base_s, acc_conf.lockout_threshold, id) != 0)
            return sh_db_reply_error(req);
        return sh_reply_error(req, 401, "invalid_credentials", "The email or the password is wrong.");
    }
    if (sh_row_int(u, 2) != 0)
        return sh_reply_error(req, 403, "account_disabled", "This account is disabled.");

    sh_row user;
    if (sh_db_begin(req) != 0 || sh_db_query(req, acc_stmt[ACC_USER_LOGIN_OK], NULL, "i", id) != 0)
        return sh_db_reply_error(req);
    const char *family = NULL;
    char *refresh = acc_refresh_token_issue(req, id, &family);
    if (refresh == NULL || acc_user_load(req, id, &user) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    /* Housekeeping after the commit, on its own: inside the transaction its
     * next-key locks on the user index made concurrent logins of users with
     * neighbouring ids deadlock with each other's token INSERT. */
    if (sh_db_query(req, acc_stmt[ACC_RT_PURGE_EXPIRED], NULL, "i", id) != 0)
        sh_log_msgf(SH_LOG_WARN, "purge_failed", "expired refresh tokens of user %lld stay for the next login",
                    (long long)id);
    return acc_reply_tokens(req, &user, refresh, family, cookie);
}

int acc_token_refresh(sh_req *req)
{
    const char *token = acc_refresh_token_of(req);
    bool cookie = sh_field_int(req, "cookie", 0) != 0 || sh_field_str(req, "refresh_token") == NULL;
    if (token == NULL)
        return sh_reply_field_error(req, 401, "invalid_refresh_token", "refresh_token",
                                    "No refresh token was given (body field refresh_token or the cookie).");
    if (sh_db_begin(req) != 0)
        return sh_db_reply_error(req);
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_RT_FIND_FOR_UPDATE], &r, "s", sh_sha256_hex(req->arena, token)) != 0)
        return sh_db_reply_error(req);
    if (r.nrows == 0) {
        if (cookie)
            acc_refresh_cookie(req, NULL);
        return sh_reply_error(req, 401, "invalid_refresh_token", "The refresh token is not valid.");
    }
    const sh_row *t = &r.rows[0];
    int64_t token_id = sh_row_int(t, 0), user_id = sh_row_int(t, 1);
    const char *family = sh_row_str(t, 2);
    bool expired = sh_row_int(t, 3) != 0, spent = sh_row_int(t, 4) != 0, revoked = sh_row_int(t, 5) != 0;
    bool disabled = sh_row_int(t, 6) != 0;

    if (spent && !revoked) {
        /* A spent token presented again: someone holds a copy. End the session
         * everywhere: the whole family is revoked, and committed. */
        if (sh_db_query(req, acc_stmt[ACC_RT_REVOKE_FAMILY], NULL, "s", family) != 0 || sh_db_commit(req) != 0)
            return sh_db_reply_error(req);
        sh_logline l;
        sh_log_begin(&l, SH_LOG_WARN, "refresh_token_reused");
        sh_log_str(&l, "request_id", req->request_id);
        sh_log_int(&l, "user_id", user_id);
        sh_log_end(&l);
        if (cookie)
            acc_refresh_cookie(req, NULL);
        return sh_reply_error(req, 401, "refresh_token_reused",
                              "This refresh token was already used; the session has been ended for safety.");
    }
    if (spent || revoked || expired) {
        if (cookie)
            acc_refresh_cookie(req, NULL);
        return sh_reply_error(req, 401, "invalid_refresh_token", "The refresh token has expired or was revoked.");
    }
    if (disabled) {
        if (sh_db_query(req, acc_stmt[ACC_RT_REVOKE_FAMILY], NULL, "s", family) != 0 || sh_db_commit(req) != 0)
            return sh_db_reply_error(req);
        return sh_reply_error(req, 403, "account_disabled", "This account is disabled.");
    }
    sh_result spend;
    if (sh_db_query(req, acc_stmt[ACC_RT_SPEND], &spend, "i", token_id) != 0)
        return sh_db_reply_error(req);
    sh_row user;
    char *next = acc_refresh_token_issue(req, user_id, &family);
    if (next == NULL || acc_user_load(req, user_id, &user) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    return acc_reply_tokens(req, &user, next, family, cookie);
}

int acc_logout(sh_req *req)
{
    const char *token = acc_refresh_token_of(req);
    if (token != NULL) {
        sh_result r;
        if (sh_db_query(req, acc_stmt[ACC_RT_FAMILY_BY_HASH], &r, "s", sh_sha256_hex(req->arena, token)) != 0)
            return sh_db_reply_error(req);
        if (r.nrows == 1 && sh_db_query(req, acc_stmt[ACC_RT_REVOKE_FAMILY], NULL, "s", sh_row_str(&r.rows[0], 0)) != 0)
            return sh_db_reply_error(req);
    }
    acc_refresh_cookie(req, NULL);
    return sh_reply_empty(req, 204); /* also for an unknown token: logging out twice is fine */
}
