/* sessions.c: login (with its MFA step), refresh-token rotation with theft
 * detection and a grace window for one client's concurrent refreshes,
 * logout, and the user's sessions: each refresh-token family is one,
 * listed, ended one at a time or all at once. */
#include "accounts.h"
#include "sh_log.h"
#include "sh_str.h"

#include <string.h>
#include <time.h>

/* Logs a session event (never a token). */
static void acc_log_session(sh_req *req, sh_log_level level, const char *event, int64_t user_id, const char *family)
{
    sh_logline l;
    sh_log_begin(&l, level, event);
    sh_log_str(&l, "request_id", req->request_id);
    sh_log_int(&l, "user_id", user_id);
    if (family != NULL)
        sh_log_str(&l, "session_id", family);
    sh_log_end(&l);
}

/* Opens a session for a user whose credentials are all checked: 200 with a token pair. */
static int acc_session_open(sh_req *req, int64_t id, bool cookie)
{
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
    if (sh_db_query(req, acc_stmt[ACC_RT_PURGE_EXPIRED], NULL, "i", id) != 0 ||
        sh_db_query(req, acc_stmt[ACC_OTT_PURGE], NULL, "i", id) != 0)
        sh_log_msgf(SH_LOG_WARN, "purge_failed", "expired tokens of user %lld stay for the next login", (long long)id);
    return acc_reply_tokens(req, &user, refresh, family, cookie);
}

/* PL_REQUIRE_VERIFIED_EMAIL: an unverified account may not log in; its link
 * is mailed again (at most once per PL_MAIL_INTERVAL_S). */
static int acc_login_unverified(sh_req *req, int64_t id)
{
    sh_result r;
    if (sh_db_begin(req) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_MAIL_LOCK], &r, "iii", acc_conf.mail_interval_s, acc_conf.mail_interval_s,
                    id) != 0 ||
        r.nrows != 1)
        return sh_db_reply_error(req);
    if (sh_row_int(&r.rows[0], 0) == 0 &&
        acc_verify_mail_queue(req, id, sh_row_str(&r.rows[0], 2), ACC_OTT_VERIFY_EMAIL) != 0)
        return sh_db_reply_error(req);
    if (sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    return sh_reply_error(req, 403, "email_not_verified",
                          "Verify your email address first: follow the link we mailed you (mailed again now).");
}

/* MFA on: the password was right, the code comes next with this ticket. */
static int acc_login_ticket(sh_req *req, int64_t id)
{
    char *ticket = acc_ott_issue(req, id, ACC_OTT_MFA_LOGIN, NULL, ACC_TICKET_TTL_S, false);
    if (ticket == NULL)
        return sh_db_reply_error(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "mfa_required", json_object_new_boolean(1));
    json_object_object_add(o, "mfa_ticket", json_object_new_string(ticket));
    json_object_object_add(o, "expires_in", json_object_new_int64(ACC_TICKET_TTL_S));
    return sh_reply_json(req, 200, o);
}

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
        if (acc_count_failure(req, id) != 0)
            return sh_db_reply_error(req);
        return sh_reply_error(req, 401, "invalid_credentials", "The email or the password is wrong.");
    }
    if (sh_row_int(u, 2) != 0)
        return sh_reply_error(req, 403, "account_disabled", "This account is disabled.");
    if (acc_conf.require_verified_email && sh_row_int(u, 4) == 0)
        return acc_login_unverified(req, id);
    /* With MFA the failure count is not reset yet: a right password must not
     * wipe out the wrong codes before it. */
    if (sh_row_int(u, 5) != 0)
        return acc_login_ticket(req, id);
    return acc_session_open(req, id, cookie);
}

int acc_login_mfa(sh_req *req)
{
    static const char *const purposes[] = {ACC_OTT_MFA_LOGIN, NULL};
    bool cookie = sh_field_int(req, "cookie", 0) != 0;
    acc_ott ticket;
    acc_auth_state st;
    /* read (the lock ends with the statement): a wrong code must be counted, not rolled back */
    int rc = acc_ott_take_or_reply(req, sh_field_str(req, "mfa_ticket"), purposes, "mfa_ticket", &ticket);
    if (rc != 0 || (rc = acc_auth_state_or_reply(req, ticket.user_id, &st)) != 0)
        return rc;
    if (st.disabled)
        return sh_reply_error(req, 403, "account_disabled", "This account is disabled.");
    /* (MFA off: an admin reset it since the password was checked, which is then enough) */
    if ((rc = acc_mfa_check_or_reply(req, &st, 401)) != 0)
        return rc;
    if (sh_db_begin(req) != 0)
        return sh_db_reply_error(req);
    if (acc_ott_use(req, ticket.id) != 0)
        return sh_reply_field_error(req, 422, "token_used", "mfa_ticket", "This link or ticket was already used.");
    if (sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    return acc_session_open(req, st.id, cookie);
}

/* A spent token presented again: someone holds a copy. The session ends
 * everywhere: its family is revoked, its access tokens refused, committed. */
static int acc_refresh_reused(sh_req *req, int64_t user_id, const char *family, bool cookie)
{
    if (sh_db_query(req, acc_stmt[ACC_RT_REVOKE_FAMILY], NULL, "s", family) != 0 ||
        sh_db_query(req, acc_stmt[ACC_SESSION_END], NULL, "s", family) != 0 ||
        acc_revoke(req, user_id, family, (int64_t)time(NULL) + 1) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    acc_log_session(req, SH_LOG_WARN, "refresh_token_reused", user_id, family);
    if (cookie)
        acc_refresh_cookie(req, NULL);
    return sh_reply_error(req, 401, "refresh_token_reused",
                          "This refresh token was already used; the session has been ended for safety.");
}

/* Issues the next token of the family (and spends the one presented, unless
 * it is a grace-window sibling) and answers the pair. */
static int acc_refresh_issue(sh_req *req, int64_t token_id, int64_t user_id, const char *family, bool spend,
                             bool cookie)
{
    if (spend && sh_db_query(req, acc_stmt[ACC_RT_SPEND], NULL, "i", token_id) != 0)
        return sh_db_reply_error(req);
    sh_row user;
    char *next = acc_refresh_token_issue(req, user_id, &family);
    if (next == NULL || acc_user_load(req, user_id, &user) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    return acc_reply_tokens(req, &user, next, family, cookie);
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
    if (sh_db_query(req, acc_stmt[ACC_RT_FIND_FOR_UPDATE], &r, "is", acc_conf.refresh_grace_s,
                    sh_sha256_hex(req->arena, token)) != 0)
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
    bool disabled = sh_row_int(t, 6) != 0, in_grace = sh_row_int(t, 7) != 0;
    const char *client = sh_row_str(t, 8), *caller = acc_client_hash(req);

    if (spent && !revoked) {
        /* Two tabs of one browser refreshing at once present the same
         * token: the one that waited for the other's lock gets a successor
         * of its own, when it is the same client and soon enough. */
        bool same_client = strlen(client) == SH_SHA256_HEX_LEN && sh_ct_equal(client, caller, SH_SHA256_HEX_LEN);
        if (!(in_grace && same_client && !expired && !disabled && acc_conf.refresh_grace_s > 0))
            return acc_refresh_reused(req, user_id, family, cookie);
        acc_log_session(req, SH_LOG_INFO, "refresh_in_grace", user_id, family);
        return acc_refresh_issue(req, token_id, user_id, family, false, cookie);
    }
    if (spent || revoked || expired) {
        if (cookie)
            acc_refresh_cookie(req, NULL);
        return sh_reply_error(req, 401, "invalid_refresh_token", "The refresh token has expired or was revoked.");
    }
    if (disabled) {
        if (sh_db_query(req, acc_stmt[ACC_RT_REVOKE_FAMILY], NULL, "s", family) != 0 ||
            sh_db_query(req, acc_stmt[ACC_SESSION_END], NULL, "s", family) != 0 || sh_db_commit(req) != 0)
            return sh_db_reply_error(req);
        return sh_reply_error(req, 403, "account_disabled", "This account is disabled.");
    }
    return acc_refresh_issue(req, token_id, user_id, family, true, cookie);
}

int acc_logout(sh_req *req)
{
    const char *token = acc_refresh_token_of(req);
    if (token != NULL) {
        sh_result r;
        if (sh_db_query(req, acc_stmt[ACC_RT_FAMILY_BY_HASH], &r, "s", sh_sha256_hex(req->arena, token)) != 0)
            return sh_db_reply_error(req);
        if (r.nrows == 1 &&
            (sh_db_query(req, acc_stmt[ACC_RT_REVOKE_FAMILY], NULL, "s", sh_row_str(&r.rows[0], 0)) != 0 ||
             sh_db_query(req, acc_stmt[ACC_SESSION_END], NULL, "s", sh_row_str(&r.rows[0], 0)) != 0))
            return sh_db_reply_error(req);
    }
    acc_refresh_cookie(req, NULL);
    return sh_reply_empty(req, 204); /* also for an unknown token: logging out twice is fine */
}

/* --- the user's sessions ---------------------------------------------------------------- */

int acc_sessions_list(sh_req *req)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_SESSION_LIST], &r, "i", req->auth.user_id) != 0)
        return sh_db_reply_error(req);
    const char *current = req->auth.session_id;
    json_object *list = json_object_new_array();
    for (int i = 0; i < r.nrows; i++) {
        const sh_row *s = &r.rows[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(sh_row_str(s, 0)));
        json_object_object_add(o, "current",
                               json_object_new_boolean(current != NULL && strcmp(current, sh_row_str(s, 0)) == 0));
        json_object_object_add(o, "created_at", json_object_new_string(sh_row_str(s, 1)));
        json_object_object_add(o, "last_used_at", json_object_new_string(sh_row_str(s, 2)));
        json_object_object_add(o, "user_agent", json_object_new_string(sh_row_str(s, 3)));
        json_object_object_add(o, "address", json_object_new_string(sh_row_str(s, 4)));
        json_object_array_add(list, o);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sessions", list);
    return sh_reply_json(req, 200, o);
}

/* Ends one session: its refresh tokens revoked, its access tokens refused. */
static int acc_session_revoke(sh_req *req, int64_t user_id, const char *family)
{
    if (sh_db_query(req, acc_stmt[ACC_RT_REVOKE_FAMILY], NULL, "s", family) != 0 ||
        sh_db_query(req, acc_stmt[ACC_SESSION_END], NULL, "s", family) != 0)
        return -1;
    return acc_revoke(req, user_id, family, (int64_t)time(NULL) + 1);
}

/* Beyond this many sessions to end at once, one revocation of the whole user
 * stands for theirs: the revocation feed stays short (the current session
 * then refreshes its access token, which the token's later iat lets through). */
#define ACC_SESSIONS_REVOKED_ONE_BY_ONE 20

int acc_sessions_end_others(sh_req *req, int64_t user_id, const char *keep)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_RT_LIVE_FAMILIES], &r, "is", user_id, keep ? keep : "") != 0)
        return -1;
    if (r.nrows > ACC_SESSIONS_REVOKED_ONE_BY_ONE) {
        for (int i = 0; i < r.nrows; i++)
            if (sh_db_query(req, acc_stmt[ACC_RT_REVOKE_FAMILY], NULL, "s", sh_row_str(&r.rows[i], 0)) != 0 ||
                sh_db_query(req, acc_stmt[ACC_SESSION_END], NULL, "s", sh_row_str(&r.rows[i], 0)) != 0)
                return -1;
        return acc_revoke(req, user_id, NULL, (int64_t)time(NULL) + 1);
    }
    for (int i = 0; i < r.nrows; i++)
        if (acc_session_revoke(req, user_id, sh_row_str(&r.rows[i], 0)) != 0)
            return -1;
    return 0;
}

/* Whether id has the shape of a session id (acc_refresh_token_issue: 32
 * lower-case hex digits): only such ids reach SQL, whose family_id columns
 * are ASCII (another id failed there as an illegal mix of collations: 500). */
static bool acc_session_id_shaped(const char *id)
{
    size_t n = 0;
    for (; id[n] != '\0'; n++)
        if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
            return false;
    return n == 32;
}

int acc_session_end(sh_req *req)
{
    const char *family = sh_param_str(req, "id");
    int64_t user_id = req->auth.user_id;
    sh_result r;
    if (!acc_session_id_shaped(family))
        return sh_reply_error(req, 404, "session_not_found", "You have no live session with this id.");
    if (sh_db_begin(req) != 0 || sh_db_query(req, acc_stmt[ACC_RT_FAMILY_LIVE], &r, "si", family, user_id) != 0)
        return sh_db_reply_error(req);
    if (r.nrows == 0)
        return sh_reply_error(req, 404, "session_not_found", "You have no live session with this id.");
    if (acc_session_revoke(req, user_id, family) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    acc_log_session(req, SH_LOG_INFO, "session_ended", user_id, family);
    if (req->auth.session_id != NULL && strcmp(req->auth.session_id, family) == 0)
        acc_refresh_cookie(req, NULL);
    return sh_reply_empty(req, 204);
}

int acc_sessions_end_all(sh_req *req)
{
    int64_t user_id = req->auth.user_id;
    static const char *const tickets[] = {ACC_OTT_MFA_LOGIN, NULL}; /* a login half done is a session to be */
    if (sh_db_begin(req) != 0 || sh_db_query(req, acc_stmt[ACC_RT_REVOKE_USER], NULL, "i", user_id) != 0 ||
        sh_db_query(req, acc_stmt[ACC_SESSION_END_USER], NULL, "i", user_id) != 0 ||
        acc_ott_expire(req, user_id, tickets) != 0 || acc_revoke(req, user_id, NULL, (int64_t)time(NULL) + 1) != 0 ||
        sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    acc_log_session(req, SH_LOG_INFO, "sessions_ended", user_id, NULL);
    acc_refresh_cookie(req, NULL);
    return sh_reply_empty(req, 204);
}
