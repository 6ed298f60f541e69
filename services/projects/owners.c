/* owners.c: a user's projects as a whole, for accounts when it deletes the
 * user (internal routes): their ids, then all of them deleted. Both are safe
 * to call again. */
#include "projects.h"
#include "sh_log.h"

/* GET /api/projects/users/{id}/projects: {"project_ids": [...]} in id order. */
int prj_owner_projects_list(sh_req *req)
{
    sh_result r;
    if (sh_db_query(req, prj_stmt[PRJ_IDS_OF_OWNER], &r, "i", sh_param_int(req, "id", 0)) != 0)
        return sh_db_reply_error(req);
    json_object *ids = json_object_new_array();
    for (int i = 0; i < r.nrows; i++)
        json_object_array_add(ids, json_object_new_int64(sh_row_int(&r.rows[i], 0)));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "project_ids", ids);
    return sh_reply_json(req, 200, o);
}

/* DELETE /api/projects/users/{id}/projects: {"deleted": n}. */
int prj_owner_projects_delete(sh_req *req)
{
    int64_t owner = sh_param_int(req, "id", 0);
    sh_result r;
    if (sh_db_query(req, prj_stmt[PRJ_DELETE_OF_OWNER], &r, "i", owner) != 0)
        return sh_db_reply_error(req);
    sh_log_msgf(SH_LOG_INFO, "owner_projects_deleted", "user %lld: %llu projects", (long long)owner,
                (unsigned long long)r.affected_rows);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_int64((int64_t)r.affected_rows));
    return sh_reply_json(req, 200, o);
}
