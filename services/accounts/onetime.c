/* onetime.c: single-use tokens: the links mailed to verify an address,
 * change it or reset a password, and the ticket between a login's password
 * and its MFA code. A token is 32 random bytes (base64url) that only its
 * holder knows; the table keeps its SHA-256, so a token is found by the hash
 * of what is presented (a secret's hash compared through the index: nothing
 * to learn from timing) and is never stored, logged or shown again. Each is
 * of one purpose, expires, and is marked used in the transaction of the
 * change it makes. */
#include "accounts.h"

#include <string.h>

/* Inside a transaction, the insert comes before anything that reads a range
 * of the user index (expiring the older ones): two transactions that both
 * locked a range and then inserted into it (users of neighbouring ids
 * signing up at once) would deadlock. Expired tokens are purged at login,
 * outside any transaction. */
char *acc_ott_issue(sh_req *req, int64_t user_id, const char *purpose, const char *data, int64_t ttl_s, bool replace)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    char *token = sh_b64url_encode(req->arena, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_OTT_INSERT], &r, "ssisi", sh_sha256_hex(req->arena, token), purpose, user_id,
                    data, ttl_s) != 0 ||
        (replace &&
         sh_db_query(req, acc_stmt[ACC_OTT_EXPIRE_OLDER], NULL, "isi", user_id, purpose, (int64_t)r.insert_id) != 0))
        return NULL;
    return token;
}

int acc_ott_take_or_reply(sh_req *req, const char *token, const char *const *purposes, const char *field, acc_ott *out)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_OTT_FIND], &r, "s", sh_sha256_hex(req->arena, token)) != 0)
        return sh_db_reply_error(req);
    bool known = false;
    for (int i = 0; r.nrows == 1 && purposes[i] != NULL && !known; i++)
        known = strcmp(sh_row_str(&r.rows[0], 1), purposes[i]) == 0;
    if (!known) /* a token of another purpose is no token here */
        return sh_reply_field_error(req, 422, "token_unknown", field, "This link or ticket is not valid.");
    const sh_row *t = &r.rows[0];
    if (sh_row_int(t, 5) != 0)
        return sh_reply_field_error(req, 422, "token_used", field, "This link or ticket was already used.");
    if (sh_row_int(t, 4) != 0)
        return sh_reply_field_error(req, 422, "token_expired", field, "This link or ticket has expired.");
    out->id = sh_row_int(t, 0);
    out->purpose = sh_row_str(t, 1);
    out->user_id = sh_row_int(t, 2);
    out->data = sh_row_is_null(t, 3) ? NULL : sh_row_str(t, 3);
    return 0;
}

int acc_ott_use(sh_req *req, int64_t id)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_OTT_USE], &r, "i", id) != 0)
        return -1;
    return r.affected_rows == 1 ? 0 : -1;
}

const char *const acc_ott_ended_by_new_password[] = {ACC_OTT_RESET_PASSWORD, ACC_OTT_CHANGE_EMAIL, ACC_OTT_MFA_LOGIN,
                                                     NULL};

const char *const acc_ott_ended_by_disable[] = {ACC_OTT_VERIFY_EMAIL, ACC_OTT_CHANGE_EMAIL, ACC_OTT_RESET_PASSWORD,
                                                ACC_OTT_MFA_LOGIN, NULL};

int acc_ott_expire(sh_req *req, int64_t user_id, const char *const *purposes)
{
    for (int i = 0; purposes[i] != NULL; i++)
        if (sh_db_query(req, acc_stmt[ACC_OTT_EXPIRE], NULL, "is", user_id, purposes[i]) != 0)
            return -1;
    return 0;
}
