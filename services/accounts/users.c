/* users.c: sign-up (which mails the address's verification link), the
 * caller's own account (me; a password change ends the other sessions), and
 * the admin's view of users. */
#include "accounts.h"
#include "sh_invoke.h"
#include "sh_log.h"

#include <mysqld_error.h>
#include <string.h>
#include <time.h>

json_object *acc_user_json(const sh_row *row)
{
    json_object *u = json_object_new_object();
    json_object_object_add(u, "id", json_object_new_int64(sh_row_int(row, 0)));
    json_object_object_add(u, "email", json_object_new_string(sh_row_str(row, 1)));
    json_object_object_add(u, "display_name", json_object_new_string(sh_row_str(row, 2)));
    json_object_object_add(u, "role", json_object_new_string(sh_row_str(row, 3)));
    json_object_object_add(u, "disabled", json_object_new_boolean(sh_row_int(row, 4) != 0));
    json_object_object_add(u, "primary_project_id",
                           sh_row_is_null(row, 5) ? NULL : json_object_new_int64(sh_row_int(row, 5)));
    json_object_object_add(u, "created_at", json_object_new_string(sh_row_str(row, 6)));
    json_object_object_add(u, "updated_at", json_object_new_string(sh_row_str(row, 7)));
    json_object_object_add(u, "email_verified", json_object_new_boolean(sh_row_int(row, 8) != 0));
    json_object_object_add(u, "mfa_enabled", json_object_new_boolean(sh_row_int(row, 9) != 0));
    return u;
}

int acc_user_load(sh_req *req, int64_t id, sh_row *out)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_USER_BY_ID], &r, "i", id) != 0)
        return -1;
    if (r.nrows == 0)
        return 1;
    *out = r.rows[0];
    return 0;
}

static int acc_reply_user(sh_req *req, int status, const sh_row *row)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "user", acc_user_json(row));
    return sh_reply_json(req, status, o);
}

/* Loads a user and answers it, or answers why not. */
static int acc_reply_user_by_id(sh_req *req, int status, int64_t id)
{
    sh_row row;
    int rc = acc_user_load(req, id, &row);
    if (rc < 0)
        return sh_db_reply_error(req);
    if (rc > 0)
        return sh_reply_error(req, 404, "not_found", "No such user.");
    return acc_reply_user(req, status, &row);
}

int acc_signup(sh_req *req)
{
    const sh_value *email_in = sh_req_field(req, "email"), *pw = sh_req_field(req, "password");
    char email[ACC_EMAIL_MAX + 1];
    if (acc_email_normalize(email_in->s, email_in->len, email) != 0)
        return sh_reply_field_error(req, 422, "invalid_field", "email", "Field email is not a valid email address.");
    const char *weak = acc_password_problem(pw->s, pw->len, email);
    if (weak != NULL)
        return sh_reply_field_error(req, 422, "weak_password", "password", "%s", weak);
    char *hash = acc_password_hash(req->arena, pw->s, pw->len);
    if (hash == NULL)
        return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    sh_result r;
    if (sh_db_begin(req) != 0)
        return sh_db_reply_error(req);
    if (sh_db_query(req, acc_stmt[ACC_USER_INSERT], &r, "sss", email, hash, sh_field_str(req, "display_name")) != 0) {
        if (sh_db_errno() == ER_DUP_ENTRY)
            return sh_reply_field_error(req, 409, "email_taken", "email", "An account with this email already exists.");
        return sh_db_reply_error(req);
    }
    int64_t id = (int64_t)r.insert_id;
    if (acc_verify_mail_queue(req, id, email, ACC_OTT_VERIFY_EMAIL) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_resp_header(req, "Location", "/api/accounts/users/%lld", (long long)id);
    return acc_reply_user_by_id(req, 201, id);
}

int acc_me_get(sh_req *req) { return acc_reply_user_by_id(req, 200, req->auth.user_id); }

/* Asks the projects service whether the caller can read the project. Returns
 * 0 when it can, or the status of the reply already sent. */
static int acc_check_project_readable(sh_req *req, int64_t project_id)
{
    sh_invoke_result res;
    int status;
    char *path = sh_arena_sprintf(req->arena, "/api/projects/%lld", (long long)project_id);
    if (sh_invoke_or_reply(req, "GET", path, NULL, &res, &status) != 0)
        return status;
    if (res.status == 200)
        return 0;
    if (res.status == 404 || res.status == 403)
        return sh_reply_field_error(req, 422, "project_not_found", "primary_project_id",
                                    "There is no project %lld that you can read.", (long long)project_id);
    sh_log_msgf(SH_LOG_WARN, "invoke_unexpected", "projects answered %d for %s", res.status, path);
    return sh_reply_error(req, 502, "bad_gateway", "The projects service gave an unexpected answer (%d).", res.status);
}

int acc_me_update(sh_req *req)
{
    int64_t id = req->auth.user_id;
    const sh_value *name = sh_req_field(req, "display_name");
    const sh_value *primary = sh_req_field(req, "primary_project_id");
    const sh_value *pw = sh_req_field(req, "password");
    const sh_value *current = sh_req_field(req, "current_password");
    char *new_hash = NULL;

    acc_auth_state st = {0};
    if (pw->present) {
        if (!current->present)
            return sh_reply_field_error(req, 422, "missing_field", "current_password",
                                        "Changing the password needs current_password.");
        int rc = acc_auth_state_or_reply(req, id, &st);
        if (rc != 0 || (rc = acc_password_check_or_reply(req, &st, "current_password")) != 0)
            return rc;
        const char *weak = acc_password_problem(pw->s, pw->len, st.email);
        if (weak != NULL)
            return sh_reply_field_error(req, 422, "weak_password", "password", "%s", weak);
        if ((new_hash = acc_password_hash(req->arena, pw->s, pw->len)) == NULL)
            return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    } else if (current->present) {
        return sh_reply_field_error(req, 422, "missing_field", "password", "current_password only goes with password.");
    }
    if (primary->present && !primary->is_null) {
        int rc = acc_check_project_readable(req, primary->i);
        if (rc != 0)
            return rc;
    }

    /* every change or none */
    if (sh_db_begin(req) != 0)
        return sh_db_reply_error(req);
    if (name->present && sh_db_query(req, acc_stmt[ACC_USER_SET_DISPLAY_NAME], NULL, "si", name->s, id) != 0)
        return sh_db_reply_error(req);
    if (primary->present &&
        (primary->is_null ? sh_db_query(req, acc_stmt[ACC_USER_SET_PRIMARY_PROJECT], NULL, "ni", id)
                          : sh_db_query(req, acc_stmt[ACC_USER_SET_PRIMARY_PROJECT], NULL, "ii", primary->i, id)) != 0)
        return sh_db_reply_error(req);
    /* a new password ends every other session, and the links and tickets of the
     * old one (a pending address change too) */
    if (new_hash != NULL &&
        (sh_db_query(req, acc_stmt[ACC_USER_SET_PASSWORD], NULL, "si", new_hash, id) != 0 ||
         acc_sessions_end_others(req, id, req->auth.session_id) != 0 ||
         acc_ott_expire(req, id, acc_ott_ended_by_new_password) != 0 ||
         acc_notice_queue(req, st.email, "Your Pilotlight password was changed",
                          "The password of your Pilotlight account was just changed, and every other session "
                          "was signed out. If you did not do this, reset your password now.") != 0))
        return sh_db_reply_error(req);
    sh_row row;
    int rc = acc_user_load(req, id, &row);
    if (rc < 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    if (rc > 0)
        return sh_reply_error(req, 404, "not_found", "No such user.");
    return acc_reply_user(req, 200, &row);
}

static json_object *acc_page_row(const sh_row *row, const void *ctx)
{
    (void)ctx;
    return acc_user_json(row);
}

int acc_users_list(sh_req *req)
{
    int64_t limit = sh_param_int(req, "limit", 20), after = sh_param_int(req, "cursor", 0);
    const char *prefix = sh_param_str(req, "email_prefix");
    char lowered[ACC_EMAIL_MAX + 1] = "";
    if (prefix != NULL) {
        size_t n = strlen(prefix);
        for (size_t i = 0; i <= n && i < sizeof(lowered); i++)
            lowered[i] = (prefix[i] >= 'A' && prefix[i] <= 'Z') ? (char)(prefix[i] + 32) : prefix[i];
    }
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_USER_LIST], &r, "isi", after, acc_like_prefix(req->arena, lowered), limit + 1) !=
        0)
        return sh_db_reply_error(req);
    return sh_reply_page(req, "users", &r, limit, acc_page_row, NULL);
}

int acc_user_get(sh_req *req) { return acc_reply_user_by_id(req, 200, sh_param_int(req, "id", 0)); }

int acc_user_update(sh_req *req)
{
    int64_t id = sh_param_int(req, "id", 0);
    const sh_value *role = sh_req_field(req, "role"), *disabled = sh_req_field(req, "disabled");
    if (sh_db_begin(req) != 0)
        return sh_db_reply_error(req);
    /* Lock the active admins first, then the target: two admins demoting each
     * other at once cannot both succeed and leave none. */
    sh_result admins, target;
    if (sh_db_query(req, acc_stmt[ACC_ADMINS_LOCK], &admins, "") != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_LOCK], &target, "i", id) != 0)
        return sh_db_reply_error(req);
    if (target.nrows == 0)
        return sh_reply_error(req, 404, "not_found", "No such user.");
    bool is_active_admin = strcmp(sh_row_str(&target.rows[0], 0), "admin") == 0 && sh_row_int(&target.rows[0], 1) == 0;
    bool stays_admin =
        (role->present ? strcmp(role->s, "admin") == 0 : strcmp(sh_row_str(&target.rows[0], 0), "admin") == 0) &&
        !(disabled->present ? disabled->i != 0 : sh_row_int(&target.rows[0], 1) != 0);
    if (is_active_admin && !stays_admin && admins.nrows <= 1)
        return sh_reply_error(req, 409, "last_admin",
                              "This is the last active admin: it cannot be demoted or disabled.");
    if (role->present && sh_db_query(req, acc_stmt[ACC_USER_SET_ROLE], NULL, "si", role->s, id) != 0)
        return sh_db_reply_error(req);
    if (disabled->present) {
        if (sh_db_query(req, acc_stmt[ACC_USER_SET_DISABLED], NULL, "bi", (int)disabled->i, id) != 0)
            return sh_db_reply_error(req);
        /* a disabled user's tokens stop working everywhere, those of this very second too, and
         * so do the links and tickets handed out before */
        if (disabled->i && (sh_db_query(req, acc_stmt[ACC_RT_REVOKE_USER], NULL, "i", id) != 0 ||
                            acc_ott_expire(req, id, acc_ott_ended_by_disable) != 0 ||
                            acc_revoke(req, id, NULL, (int64_t)time(NULL) + 1) != 0))
            return sh_db_reply_error(req);
    }
    sh_row row;
    if (acc_user_load(req, id, &row) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_logline l;
    sh_log_begin(&l, SH_LOG_INFO, "user_updated_by_admin");
    sh_log_str(&l, "request_id", req->request_id);
    sh_log_int(&l, "admin_id", req->auth.user_id);
    sh_log_int(&l, "user_id", id);
    sh_log_end(&l);
    return acc_reply_user(req, 200, &row);
}

/* Internal (called by projects when a project is deleted): clears the user's
 * primary project if it is that project. Answers how many users changed. */
int acc_user_clear_primary(sh_req *req)
{
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_USER_CLEAR_PRIMARY], &r, "ii", sh_param_int(req, "id", 0),
                    sh_field_int(req, "project_id", 0)) != 0)
        return sh_db_reply_error(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "cleared", json_object_new_boolean(r.affected_rows > 0));
    return sh_reply_json(req, 200, o);
}

/* pl-accounts create-admin EMAIL: makes EMAIL an active admin, creating the
 * account (with the password read from stdin) when it does not exist. */
int acc_create_admin(sh_req *req, void *arg)
{
    const char *email_in = arg;
    char email[ACC_EMAIL_MAX + 1];
    if (acc_email_normalize(email_in, strlen(email_in), email) != 0) {
        fprintf(stderr, "create-admin: %s is not a valid email address\n", email_in);
        return 1;
    }
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_USER_ID_BY_EMAIL], &r, "s", email) != 0) {
        fprintf(stderr, "create-admin: the database is not reachable (error %u)\n", sh_db_errno());
        return 1;
    }
    if (r.nrows == 1) {
        int64_t id = sh_row_int(&r.rows[0], 0);
        if (sh_db_query(req, acc_stmt[ACC_USER_SET_ROLE], NULL, "si", "admin", id) != 0 ||
            sh_db_query(req, acc_stmt[ACC_USER_SET_DISABLED], NULL, "bi", 0, id) != 0 ||
            sh_db_query(req, acc_stmt[ACC_USER_SET_VERIFIED], NULL, "is", id, email) != 0) {
            fprintf(stderr, "create-admin: the update failed (error %u)\n", sh_db_errno());
            return 1;
        }
        printf("%s (user %lld) is an admin; the password was not changed\n", email, (long long)id);
        return 0;
    }
    char password[1024];
    if (fgets(password, sizeof(password), stdin) == NULL) {
        fprintf(stderr, "create-admin: no password on stdin\n");
        return 1;
    }
    password[strcspn(password, "\r\n")] = '\0';
    const char *weak = acc_password_problem(password, strlen(password), email);
    if (weak != NULL) {
        fprintf(stderr, "create-admin: %s\n", weak);
        return 1;
    }
    char *hash = acc_password_hash(req->arena, password, strlen(password));
    sodium_memzero(password, sizeof(password));
    sh_result ins;
    /* the operator vouches for the address: it counts as verified */
    if (hash == NULL || sh_db_query(req, acc_stmt[ACC_USER_INSERT], &ins, "sss", email, hash, "Administrator") != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_SET_ROLE], NULL, "si", "admin", (int64_t)ins.insert_id) != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_SET_VERIFIED], NULL, "is", (int64_t)ins.insert_id, email) != 0) {
        fprintf(stderr, "create-admin: the account could not be created (error %u)\n", sh_db_errno());
        return 1;
    }
    printf("created admin %s (user %llu)\n", email, (unsigned long long)ins.insert_id);
    return 0;
}
