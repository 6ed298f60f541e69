/* credentials.c: checking what a user knows or holds (a password, a TOTP
 * code, a recovery code) wherever one is asked for: at login, and again
 * before a sensitive change made with an access token (so a stolen token
 * alone cannot change the password, the address or MFA, nor delete the
 * account). Every wrong answer counts toward the account's lockout, and a
 * locked account is refused before anything is checked: guessing codes is
 * as slow as guessing passwords. */
#include "accounts.h"
#include "sh_log.h"

#include <string.h>
#include <time.h>

int acc_auth_state_or_reply(sh_req *req, int64_t user_id, acc_auth_state *st)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_USER_AUTH_STATE], &r, "i", user_id) != 0)
        return sh_db_reply_error(req);
    if (r.nrows == 0)
        return sh_reply_error(req, 404, "not_found", "No such user.");
    const sh_row *u = &r.rows[0];
    st->id = user_id;
    st->password_hash = sh_row_str(u, 0);
    st->lock_left = sh_row_int(u, 1);
    st->mfa_enabled = sh_row_int(u, 2) != 0;
    st->mfa_secret = sh_row_is_null(u, 3) ? NULL : sh_row_str(u, 3);
    st->email = sh_row_str(u, 4);
    st->role = sh_row_str(u, 5);
    st->disabled = sh_row_int(u, 6) != 0;
    return 0;
}

int acc_lock_or_reply(sh_req *req, const acc_auth_state *st)
{
    if (st->lock_left <= 0)
        return 0;
    sh_resp_header(req, "Retry-After", "%lld", (long long)st->lock_left);
    return sh_reply_error(req, 429, "account_locked",
                          "Too many failed attempts: this account is locked for %lld more seconds.",
                          (long long)st->lock_left);
}

int acc_count_failure(sh_req *req, int64_t user_id)
{
    return sh_db_query(req, acc_stmt[ACC_USER_LOGIN_FAILED], NULL, "iiiii", acc_conf.lockout_threshold,
                       acc_conf.lockout_max_s, acc_conf.lockout_base_s, acc_conf.lockout_threshold, user_id);
}

int acc_password_check_or_reply(sh_req *req, const acc_auth_state *st, const char *field)
{
    int rc = acc_lock_or_reply(req, st);
    if (rc != 0)
        return rc;
    const sh_value *pw = sh_req_field(req, field);
    if (acc_password_verify(st->password_hash, pw->s, pw->len))
        return 0;
    if (acc_count_failure(req, st->id) != 0)
        return sh_db_reply_error(req);
    return sh_reply_field_error(req, 403, "wrong_password", field, "The current password is wrong.");
}

int acc_mfa_code_or_reply(sh_req *req, const acc_auth_state *st, const char *typed, int status)
{
    char code[ACC_TOTP_DIGITS + 1];
    if (acc_totp_code_normalize(typed, code) != 0)
        return sh_reply_field_error(req, 422, "invalid_field", "code", "Field code must be the app's 6 digits.");
    unsigned char key[64];
    long keylen = st->mfa_secret ? acc_totp_secret_decode(st->mfa_secret, key, sizeof(key)) : -1;
    if (keylen <= 0) {
        sh_log_msgf(SH_LOG_ERROR, "mfa_secret_unreadable", "user %lld's TOTP secret cannot be decoded",
                    (long long)st->id);
        return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    }
    int64_t step = acc_totp_match(key, (size_t)keylen, (int64_t)time(NULL), code);
    sodium_memzero(key, sizeof(key));
    sh_result r;
    if (step >= 0) {
        /* taken once: a step after the last one accepted, atomically */
        if (sh_db_query(req, acc_stmt[ACC_USER_SET_MFA_STEP], &r, "iii", step, st->id, step) != 0)
            return sh_db_reply_error(req);
        if (r.affected_rows == 1)
            return 0;
    }
    if (acc_count_failure(req, st->id) != 0)
        return sh_db_reply_error(req);
    if (step >= 0)
        return sh_reply_field_error(req, status, "mfa_code_used", "code",
                                    "This code was already used: wait for the app's next one.");
    return sh_reply_field_error(req, status, "invalid_mfa_code", "code", "The code is wrong.");
}

/* A recovery code: 0 when it is one of the user's unused ones, which it spends. */
static int acc_mfa_recovery_or_reply(sh_req *req, const acc_auth_state *st, const char *typed, int status)
{
    char code[ACC_RECOVERY_CODE_LEN + 1];
    if (acc_recovery_code_normalize(typed, code) == 0) {
        sh_result r;
        if (sh_db_query(req, acc_stmt[ACC_RECOVERY_USE], &r, "is", st->id, sh_sha256_hex(req->arena, code)) != 0)
            return sh_db_reply_error(req);
        if (r.affected_rows == 1)
            return 0;
    }
    if (acc_count_failure(req, st->id) != 0)
        return sh_db_reply_error(req);
    return sh_reply_field_error(req, status, "invalid_mfa_code", "recovery_code",
                                "The recovery code is wrong or was already used.");
}

int acc_mfa_check_or_reply(sh_req *req, const acc_auth_state *st, int status)
{
    if (!st->mfa_enabled)
        return 0;
    const char *code = sh_field_str(req, "code"), *recovery = sh_field_str(req, "recovery_code");
    if (code == NULL && recovery == NULL)
        return sh_reply_field_error(req, 422, "mfa_code_required", "code",
                                    "This account uses two-factor authentication: give code (or recovery_code).");
    if (code != NULL && recovery != NULL)
        return sh_reply_field_error(req, 422, "invalid_field", "recovery_code",
                                    "Give code or recovery_code, not both.");
    int rc = acc_lock_or_reply(req, st);
    if (rc != 0)
        return rc;
    return code != NULL ? acc_mfa_code_or_reply(req, st, code, status)
                        : acc_mfa_recovery_or_reply(req, st, recovery, status);
}
