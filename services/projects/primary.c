/* primary.c: functions composed of other functions. "Get primary project"
 * invokes accounts (through the internal gateway) for the caller's
 * primary_project_id, then invokes "get project" with it (a function of this
 * service: it runs in this worker, with the same checks and accounting), and
 * the test routes show that no call tree escapes its invocation budget. */
#include "projects.h"

int prj_project_primary(sh_req *req)
{
    sh_invoke_result me, project;
    int status;
    if (sh_invoke_or_reply(req, "GET", "/api/accounts/me", NULL, &me, &status) != 0)
        return status;
    json_object *user = NULL, *pid = NULL;
    if (me.status != 200 || me.body == NULL || !json_object_object_get_ex(me.body, "user", &user))
        return sh_reply_error(req, me.status == 401 ? 401 : 502, me.status == 401 ? "invalid_token" : "bad_gateway",
                              "The accounts service did not return the caller (%d).", me.status);
    if (!json_object_object_get_ex(user, "primary_project_id", &pid) || !json_object_is_type(pid, json_type_int))
        return sh_reply_error(req, 404, "no_primary_project", "You have no primary project.");
    char *path = sh_arena_sprintf(req->arena, "/api/projects/%lld", (long long)json_object_get_int64(pid));
    if (sh_invoke_or_reply(req, "GET", path, NULL, &project, &status) != 0)
        return status;
    if (project.status == 404)
        return sh_reply_error(req, 404, "no_primary_project", "Your primary project no longer exists.");
    if (project.status != 200 || project.body == NULL)
        return sh_reply_error(req, 502, "bad_gateway", "Getting the project failed (%d).", project.status);
    return sh_reply_json(req, 200, json_object_get(project.body));
}

/* Test only: a function that invokes itself with no base case. */
int prj_test_recurse(sh_req *req)
{
    sh_invoke_result res;
    int status;
    if (sh_invoke_or_reply(req, "GET", "/api/projects/_test/recurse", NULL, &res, &status) != 0)
        return status;
    return sh_reply_json(req, res.status, res.body ? json_object_get(res.body) : json_object_new_object());
}

/* Test only: a function that invokes itself four times at every level, and
 * like a runaway loop goes on after a call fails, so that what stops the tree
 * is its budget, not the first refusal. Answers the first failure seen. */
int prj_test_fanout(sh_req *req)
{
    int status = 200;
    const char *code = NULL, *message = NULL;
    for (int i = 0; i < 4; i++) {
        sh_invoke_result res;
        if (sh_invoke(req, "GET", "/api/projects/_test/fanout", NULL, &res) != 0) {
            if (code == NULL) {
                status = res.status;
                code = res.error_code;
                message = res.error;
            }
            continue;
        }
        if (res.status != 200 && code == NULL) {
            status = res.status;
            code = res.error_code ? res.error_code : "invocation_failed";
            message = "A call further down this call tree failed.";
        }
    }
    if (code != NULL)
        return sh_reply_error(req, status, code, "%s", message);
    return sh_reply_json(req, 200, json_object_new_object());
}
