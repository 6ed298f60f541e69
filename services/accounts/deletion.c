/* deletion.c: deleting an account, the user's own (password, and a code when
 * MFA is on) or an admin's. The other services forget the user through
 * their own functions first: chat anonymises the user's messages and removes
 * the rooms of the user's projects, projects deletes those projects. Only
 * then does the account go, with all it has in this schema (the foreign keys
 * cascade: refresh tokens, sessions, one-time tokens, recovery codes), and
 * its access tokens are revoked. A service that cannot be reached stops the
 * deletion with 503 before anything here changes; every step can run again,
 * so retrying is safe. A request made with the user's token in the moment
 * before the revocation reaches every pool could still write something, so
 * the other services are asked once more after that moment. */
#include "accounts.h"
#include "sh_log.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

/* Invokes `method path` and wants 200 with a body: 0, or the status of the reply sent. */
static int acc_invoke_ok_or_reply(sh_req *req, const char *method, const char *path, json_object *body,
                                  sh_invoke_result *res)
{
    int status;
    if (sh_invoke_or_reply(req, method, path, body, res, &status) != 0)
        return status;
    if (res->status == 200 && res->body != NULL)
        return 0;
    sh_log_msgf(SH_LOG_WARN, "invoke_unexpected", "%s %s answered %d", method, path, res->status);
    return sh_reply_error(req, 502, "bad_gateway", "A service gave an unexpected answer (%d) to %s %s.", res->status,
                          method, path);
}

/* What the other services hold of user_id goes: 0, or the status of the reply sent. */
static int acc_forget_elsewhere(sh_req *req, int64_t user_id)
{
    sh_invoke_result listed, res;
    char *projects = sh_arena_sprintf(req->arena, "/api/projects/users/%lld/projects", (long long)user_id);
    char *chat = sh_arena_sprintf(req->arena, "/api/chat/users/%lld/anonymise", (long long)user_id);
    json_object *ids = NULL;
    int rc = acc_invoke_ok_or_reply(req, "GET", projects, NULL, &listed);
    if (rc != 0)
        return rc;
    if (!json_object_object_get_ex(listed.body, "project_ids", &ids) || !json_object_is_type(ids, json_type_array))
        return sh_reply_error(req, 502, "bad_gateway", "The projects service did not list the user's projects.");
    /* the rooms first: while the projects exist, a retry finds their rooms again */
    json_object *body = sh_req_own(req, json_object_new_object());
    json_object_object_add(body, "project_ids", json_object_get(ids));
    if ((rc = acc_invoke_ok_or_reply(req, "POST", chat, body, &res)) != 0)
        return rc;
    return acc_invoke_ok_or_reply(req, "DELETE", projects, NULL, &res);
}

/* After the answer, once every pool has read the revocation (a poll and a
 * margin): the other services once more, for what a last request made with
 * the user's token may have written meanwhile. Holds this worker that long. */
static void acc_forget_again(sh_req *req, void *arg)
{
    int64_t user_id = *(int64_t *)arg;
    usleep((useconds_t)((sh_auth_config_get()->revocation_poll_ms + 500) * 1000));
    if (acc_forget_elsewhere(req, user_id) != 0)
        sh_log_msgf(SH_LOG_WARN, "user_forget_again_failed",
                    "user %lld: the second pass over projects and chat failed (%s)", (long long)user_id,
                    req->error_code ? req->error_code : "?");
}

/* Refuses to delete the last active admin: 0, or 409 last_admin. Inside a
 * transaction the admins are locked (two admins deleting each other at once
 * cannot both succeed). */
static int acc_last_admin_or_reply(sh_req *req, int64_t user_id)
{
    sh_result admins, target;
    if (sh_db_query(req, acc_stmt[ACC_ADMINS_LOCK], &admins, "") != 0 ||
        sh_db_query(req, acc_stmt[ACC_USER_LOCK], &target, "i", user_id) != 0)
        return sh_db_reply_error(req);
    if (target.nrows == 0)
        return sh_reply_error(req, 404, "not_found", "No such user.");
    bool active_admin = strcmp(sh_row_str(&target.rows[0], 0), "admin") == 0 && sh_row_int(&target.rows[0], 1) == 0;
    if (active_admin && admins.nrows <= 1)
        return sh_reply_error(req, 409, "last_admin", "This is the last active admin: it cannot be deleted.");
    return 0;
}

int acc_user_delete_everywhere(sh_req *req, int64_t user_id)
{
    int rc = acc_last_admin_or_reply(req, user_id); /* before anything goes; again below, locked */
    if (rc != 0 || (rc = acc_forget_elsewhere(req, user_id)) != 0)
        return rc;
    sh_row user;
    if (sh_db_begin(req) != 0)
        return sh_db_reply_error(req);
    if ((rc = acc_last_admin_or_reply(req, user_id)) != 0)
        return rc;
    if (acc_user_load(req, user_id, &user) != 0)
        return sh_db_reply_error(req);
    const char *email = sh_row_str(&user, 1);
    if (sh_db_query(req, acc_stmt[ACC_USER_DELETE], NULL, "i", user_id) != 0 ||
        acc_revoke(req, user_id, NULL, (int64_t)time(NULL) + 1) != 0 ||
        acc_notice_queue(req, email, "Your Pilotlight account was deleted",
                         "Your Pilotlight account was just deleted, with your projects; your chat messages now "
                         "show no author. This is the last mail we send you.") != 0 ||
        sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    int64_t *arg = sh_arena_alloc(req->arena, sizeof(*arg));
    *arg = user_id;
    sh_req_defer(req, acc_forget_again, arg);
    sh_logline l;
    sh_log_begin(&l, SH_LOG_INFO, "user_deleted");
    sh_log_str(&l, "request_id", req->request_id);
    sh_log_int(&l, "user_id", user_id);
    if (req->auth.user_id != user_id)
        sh_log_int(&l, "admin_id", req->auth.user_id);
    sh_log_end(&l);
    if (req->auth.user_id == user_id)
        acc_refresh_cookie(req, NULL);
    return sh_reply_empty(req, 204);
}

int acc_me_delete(sh_req *req)
{
    acc_auth_state st;
    int rc = acc_auth_state_or_reply(req, req->auth.user_id, &st);
    if (rc != 0 || (rc = acc_password_check_or_reply(req, &st, "current_password")) != 0 ||
        (rc = acc_mfa_check_or_reply(req, &st, 403)) != 0)
        return rc;
    return acc_user_delete_everywhere(req, st.id);
}

int acc_user_delete(sh_req *req) { return acc_user_delete_everywhere(req, sh_param_int(req, "id", 0)); }
