/* mfa.c: two-factor authentication with TOTP (RFC 6238): enrolling (a new
 * secret and its otpauth:// URI, for any authenticator app), confirming it
 * with a first code (which turns it on and hands out 10 single-use recovery
 * codes, shown once, stored hashed), turning it off (password and a code),
 * and an admin's reset for a user who lost both. The login's second step
 * is in sessions.c, the checks themselves in credentials.c. */
#include "accounts.h"
#include "sh_log.h"

#include <string.h>

#define ACC_RECOVERY_CODES 10

static int acc_reply_user_row(sh_req *req, int64_t id, json_object *o)
{
    sh_row user;
    int rc = acc_user_load(req, id, &user);
    if (rc != 0) {
        json_object_put(o);
        return rc < 0 ? sh_db_reply_error(req) : sh_reply_error(req, 404, "not_found", "No such user.");
    }
    json_object_object_add(o, "user", acc_user_json(&user));
    return sh_reply_json(req, 200, o);
}

int acc_mfa_enrol(sh_req *req)
{
    acc_auth_state st;
    int rc = acc_auth_state_or_reply(req, req->auth.user_id, &st);
    if (rc != 0 || (rc = acc_password_check_or_reply(req, &st, "current_password")) != 0)
        return rc;
    if (st.mfa_enabled)
        return sh_reply_error(req, 409, "mfa_already_enabled", "Two-factor authentication is on already.");
    char *secret = acc_totp_secret_new(req->arena);
    if (secret == NULL)
        return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_USER_SET_MFA_SECRET], &r, "si", secret, st.id) != 0)
        return sh_db_reply_error(req);
    if (r.affected_rows == 0) /* confirmed meanwhile */
        return sh_reply_error(req, 409, "mfa_already_enabled", "Two-factor authentication is on already.");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "secret", json_object_new_string(secret));
    json_object_object_add(o, "otpauth_uri",
                           json_object_new_string(acc_totp_uri(req->arena, acc_conf.mfa_issuer, st.email, secret)));
    json_object_object_add(o, "algorithm", json_object_new_string("SHA1"));
    json_object_object_add(o, "digits", json_object_new_int(ACC_TOTP_DIGITS));
    json_object_object_add(o, "period", json_object_new_int(ACC_TOTP_STEP_S));
    return sh_reply_json(req, 200, o);
}

/* New recovery codes: their text, shown once, goes into `list`. (Any old
 * ones were deleted before the transaction: deleting a range of the index
 * and then inserting into it, two users at once, would deadlock.) */
static int acc_recovery_codes_new(sh_req *req, int64_t user_id, json_object *list)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz234567";
    for (int i = 0; i < ACC_RECOVERY_CODES; i++) {
        unsigned char raw[ACC_RECOVERY_CODE_LEN];
        char code[ACC_RECOVERY_CODE_LEN + 1], shown[ACC_RECOVERY_CODE_LEN + ACC_RECOVERY_CODE_LEN / 4];
        randombytes_buf(raw, sizeof(raw));
        size_t o = 0;
        for (int k = 0; k < ACC_RECOVERY_CODE_LEN; k++) {
            code[k] = abc[raw[k] & 31]; /* 5 bits each: 80 bits a code */
            if (k > 0 && k % 4 == 0)
                shown[o++] = '-';
            shown[o++] = code[k];
        }
        code[ACC_RECOVERY_CODE_LEN] = shown[o] = '\0';
        if (sh_db_query(req, acc_stmt[ACC_RECOVERY_INSERT], NULL, "is", user_id, sh_sha256_hex(req->arena, code)) != 0)
            return -1;
        json_object_array_add(list, json_object_new_string(shown));
        sodium_memzero(code, sizeof(code));
    }
    return 0;
}

int acc_mfa_confirm(sh_req *req)
{
    acc_auth_state st;
    int rc = acc_auth_state_or_reply(req, req->auth.user_id, &st);
    if (rc != 0)
        return rc;
    if (st.mfa_enabled)
        return sh_reply_error(req, 409, "mfa_already_enabled", "Two-factor authentication is on already.");
    if (st.mfa_secret == NULL)
        return sh_reply_error(req, 409, "mfa_not_enrolled", "Enrol first (POST /api/accounts/me/mfa/enrol).");
    if ((rc = acc_lock_or_reply(req, &st)) != 0 ||
        (rc = acc_mfa_code_or_reply(req, &st, sh_field_str(req, "code"), 403)) != 0)
        return rc;
    sh_result r;
    json_object *codes = sh_req_own(req, json_object_new_array());
    if (sh_db_query(req, acc_stmt[ACC_RECOVERY_DELETE], NULL, "i", st.id) != 0 || sh_db_begin(req) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_ENABLE_MFA], &r, "is", st.id, st.mfa_secret) != 0)
        return sh_db_reply_error(req);
    if (r.affected_rows == 0) /* enrolled again, or confirmed, meanwhile */
        return sh_reply_error(req, 409, "mfa_not_enrolled", "The secret changed meanwhile: enrol again.");
    if (acc_recovery_codes_new(req, st.id, codes) != 0 ||
        acc_notice_queue(req, st.email, "Two-factor authentication is on",
                         "Two-factor authentication was just turned on for your Pilotlight account. If this was "
                         "not you, reset your password and ask an admin to reset two-factor authentication.") != 0 ||
        sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_log_msgf(SH_LOG_INFO, "mfa_enabled", "user %lld", (long long)st.id);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "recovery_codes", json_object_get(codes));
    return acc_reply_user_row(req, st.id, o);
}

/* For what changes the caller's MFA (new recovery codes, turning it off):
 * MFA is on, and the caller proved it again with the password and a code or a
 * recovery code (every wrong answer counted). 0 with *st loaded, or the
 * reply's status: 409 mfa_not_enabled, 403, 422 or 429 from the checks. */
static int acc_mfa_proven_or_reply(sh_req *req, acc_auth_state *st)
{
    int rc = acc_auth_state_or_reply(req, req->auth.user_id, st);
    if (rc != 0)
        return rc;
    if (!st->mfa_enabled)
        return sh_reply_error(req, 409, "mfa_not_enabled", "Two-factor authentication is off.");
    if ((rc = acc_password_check_or_reply(req, st, "current_password")) != 0)
        return rc;
    return acc_mfa_check_or_reply(req, st, 403);
}

/* POST me/mfa/recovery-codes: 10 new recovery codes in place of every old
 * one (used or not), for the password and a code or a recovery code; a
 * notice is mailed. The delete and the inserts are one transaction (a
 * deadlock between two users' gap locks is run again by the dispatcher):
 * a failure leaves the old codes. */
int acc_mfa_recovery_codes(sh_req *req)
{
    acc_auth_state st;
    int rc = acc_mfa_proven_or_reply(req, &st);
    if (rc != 0)
        return rc;
    json_object *codes = sh_req_own(req, json_object_new_array());
    if (sh_db_begin(req) != 0 || sh_db_query(req, acc_stmt[ACC_RECOVERY_DELETE], NULL, "i", st.id) != 0 ||
        acc_recovery_codes_new(req, st.id, codes) != 0 ||
        acc_notice_queue(req, st.email, "New recovery codes",
                         "New two-factor recovery codes were just made for your Pilotlight account; the old ones "
                         "no longer work. If this was not you, reset your password now.") != 0 ||
        sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_log_msgf(SH_LOG_INFO, "mfa_recovery_codes_renewed", "user %lld", (long long)st.id);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "recovery_codes", json_object_get(codes));
    return acc_reply_user_row(req, st.id, o);
}

/* Turns MFA off for user_id and tells them. In the caller's transaction. */
static int acc_mfa_clear(sh_req *req, int64_t user_id, const char *email, const char *how)
{
    if (sh_db_query(req, acc_stmt[ACC_USER_CLEAR_MFA], NULL, "i", user_id) != 0 ||
        sh_db_query(req, acc_stmt[ACC_RECOVERY_DELETE], NULL, "i", user_id) != 0)
        return -1;
    return acc_notice_queue(req, email, "Two-factor authentication is off",
                            sh_arena_sprintf(req->arena,
                                             "Two-factor authentication was just turned off for your Pilotlight "
                                             "account %s. If this was not you, reset your password now.",
                                             how));
}

int acc_mfa_disable(sh_req *req)
{
    acc_auth_state st;
    int rc = acc_mfa_proven_or_reply(req, &st);
    if (rc != 0)
        return rc;
    if (sh_db_begin(req) != 0 || acc_mfa_clear(req, st.id, st.email, "(by you)") != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_log_msgf(SH_LOG_INFO, "mfa_disabled", "user %lld", (long long)st.id);
    return acc_reply_user_row(req, st.id, json_object_new_object());
}

int acc_user_mfa_reset(sh_req *req)
{
    int64_t id = sh_param_int(req, "id", 0);
    acc_auth_state st;
    int rc = acc_auth_state_or_reply(req, id, &st);
    if (rc != 0)
        return rc;
    if (sh_db_begin(req) != 0 ||
        (st.mfa_secret != NULL && acc_mfa_clear(req, id, st.email, "by an administrator") != 0) ||
        sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_logline l;
    sh_log_begin(&l, SH_LOG_INFO, "mfa_reset_by_admin");
    sh_log_str(&l, "request_id", req->request_id);
    sh_log_int(&l, "admin_id", req->auth.user_id);
    sh_log_int(&l, "user_id", id);
    sh_log_end(&l);
    return acc_reply_user_row(req, id, json_object_new_object());
}
