/* projects.c: the project resource: list, create, get, update, delete. Only the
 * owner and admins see a project; anyone else is told it does not exist. */
#include "projects.h"
#include "sh_log.h"
#include "sh_str.h"

#include <string.h>

json_object *prj_project_json(const sh_row *row, bool admin)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "id", json_object_new_int64(sh_row_int(row, 0)));
    json_object_object_add(p, "owner_id", json_object_new_int64(sh_row_int(row, 1)));
    json_object_object_add(p, "name", json_object_new_string(sh_row_str(row, 2)));
    json_object_object_add(p, "description", json_object_new_string(sh_row_str(row, 3)));
    json_object_object_add(p, "state", json_object_new_string(sh_row_str(row, 4)));
    if (admin)
        json_object_object_add(p, "internal_notes", json_object_new_string(sh_row_str(row, 5)));
    json_object_object_add(p, "version", json_object_new_int64(sh_row_int(row, 6)));
    json_object_object_add(p, "created_at", json_object_new_string(sh_row_str(row, 7)));
    json_object_object_add(p, "updated_at", json_object_new_string(sh_row_str(row, 8)));
    return p;
}

/* Loads the project if the caller may see it: 0 with *row, else the reply's status. */
static int prj_load_visible_or_reply(sh_req *req, int64_t id, sh_row *row)
{
    sh_result r;
    if (sh_db_query(req, prj_stmt[PRJ_BY_ID], &r, "i", id) != 0)
        return sh_db_reply_error(req);
    if (r.nrows == 0 || (!req->auth.is_admin && sh_row_int(&r.rows[0], 1) != req->auth.user_id))
        return sh_reply_error(req, 404, "not_found", "No such project.");
    *row = r.rows[0];
    return 0;
}

/* The project's ETag: its version, a strong entity tag (RFC 9110 §8.8.3). */
static const char *prj_etag(sh_req *req, const sh_row *row)
{
    return sh_arena_sprintf(req->arena, "\"%lld\"", (long long)sh_row_int(row, 6));
}

static int prj_reply_project(sh_req *req, int status, const sh_row *row)
{
    sh_resp_header(req, "ETag", "%s", prj_etag(req, row));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "project", prj_project_json(row, req->auth.is_admin));
    return sh_reply_json(req, status, o);
}

static json_object *prj_page_row(const sh_row *row, const void *admin)
{
    return prj_project_json(row, *(const bool *)admin);
}

int prj_project_list(sh_req *req)
{
    int64_t limit = sh_param_int(req, "limit", 20), after = sh_param_int(req, "cursor", 0);
    int64_t owner = sh_param_int(req, "owner_id", 0);
    bool all = sh_param_int(req, "all", 0) != 0;
    if ((owner != 0 || all) && !req->auth.is_admin)
        return sh_reply_error(req, 403, "forbidden", "Only an admin may list other users' projects.");
    if (owner != 0 && all)
        return sh_reply_field_error(req, 400, "invalid_parameter", "all", "Give owner_id or all=true, not both.");
    sh_result r;
    int rc = all ? sh_db_query(req, prj_stmt[PRJ_LIST_ALL], &r, "ii", after, limit + 1)
                 : sh_db_query(req, prj_stmt[PRJ_LIST_OWNER], &r, "iii", owner ? owner : req->auth.user_id, after,
                               limit + 1);
    if (rc != 0)
        return sh_db_reply_error(req);
    return sh_reply_page(req, "projects", &r, limit, prj_page_row, &req->auth.is_admin);
}

int prj_project_create(sh_req *req)
{
    const char *description = sh_field_str(req, "description");
    const char *state = sh_field_str(req, "state");
    sh_result r;
    if (sh_db_query(req, prj_stmt[PRJ_INSERT], &r, "isss", req->auth.user_id, sh_field_str(req, "name"),
                    description ? description : "", state ? state : "planning") != 0)
        return sh_db_reply_error(req);
    sh_row row;
    sh_result got;
    if (sh_db_query(req, prj_stmt[PRJ_BY_ID], &got, "i", (int64_t)r.insert_id) != 0 || got.nrows != 1)
        return sh_db_reply_error(req);
    row = got.rows[0];
    sh_resp_header(req, "Location", "/api/projects/%llu", (unsigned long long)r.insert_id);
    return prj_reply_project(req, 201, &row);
}

int prj_project_get(sh_req *req)
{
    sh_row row;
    bool if_match;
    int rc = prj_load_visible_or_reply(req, sh_param_int(req, "id", 0), &row);
    if (rc == 0)
        rc = sh_preconditions_or_reply(req, prj_etag(req, &row), &if_match);
    return rc != 0 ? rc : prj_reply_project(req, 200, &row);
}

/* A conditional write changed nothing: the project is gone (404), or changed
 * since its precondition was checked (412). */
static int prj_reply_lost_race(sh_req *req, int64_t id)
{
    sh_result now;
    if (sh_db_query(req, prj_stmt[PRJ_BY_ID], &now, "i", id) != 0)
        return sh_db_reply_error(req);
    if (now.nrows == 0)
        return sh_reply_error(req, 404, "not_found", "No such project.");
    return sh_reply_error(req, 412, "version_conflict",
                          "The project changed since you read it (its ETag is \"%lld\" now); reload and retry.",
                          (long long)sh_row_int(&now.rows[0], 6));
}

int prj_project_update(sh_req *req)
{
    int64_t id = sh_param_int(req, "id", 0);
    const sh_value *name = sh_req_field(req, "name"), *desc = sh_req_field(req, "description");
    const sh_value *state = sh_req_field(req, "state"), *notes = sh_req_field(req, "internal_notes");
    sh_row row;
    bool if_match;
    int rc = prj_load_visible_or_reply(req, id, &row);
    if (rc != 0)
        return rc;
    if (notes->present && !req->auth.is_admin)
        return sh_reply_field_error(req, 403, "forbidden", "internal_notes", "Only an admin may set internal notes.");
    if ((rc = sh_preconditions_or_reply(req, prj_etag(req, &row), &if_match)) != 0)
        return rc;
    if (!name->present && !desc->present && !state->present && !notes->present)
        return prj_reply_project(req, 200, &row); /* nothing to change */

    /* One statement changes only the fields sent, so concurrent updates of
     * different fields all survive; after an If-Match the version it matched
     * is part of the same statement, so a write that lost the race changes
     * nothing. */
    sh_result r;
    if (sh_db_query(req, prj_stmt[PRJ_UPDATE], &r, "bsbsbsbsibi", name->present, name->s, desc->present, desc->s,
                    state->present, state->s, notes->present, notes->s, id, if_match, sh_row_int(&row, 6)) != 0)
        return sh_db_reply_error(req);
    if (r.affected_rows == 0)
        return prj_reply_lost_race(req, id);
    sh_result after;
    if (sh_db_query(req, prj_stmt[PRJ_BY_ID], &after, "i", id) != 0 || after.nrows != 1)
        return sh_db_reply_error(req);
    return prj_reply_project(req, 200, &after.rows[0]);
}

/* After the answer: the deleted project's chat room goes (its messages and
 * tickets; chat closes its live subscriptions). A failure is logged: the
 * room stays, closed to everyone (no project, no reader), until the owner's
 * account is deleted. */
static void prj_room_erase(sh_req *req, void *arg)
{
    int64_t id = *(int64_t *)arg;
    char *path = sh_arena_sprintf(req->arena, "/api/chat/rooms/project-%lld", (long long)id);
    sh_invoke_result res;
    if (sh_invoke(req, "DELETE", path, NULL, &res) != 0 || res.status != 200)
        sh_log_msgf(SH_LOG_WARN, "room_erase_failed", "project %lld deleted; its chat room stays (%s)", (long long)id,
                    res.error ? res.error : "unexpected status");
}

int prj_project_delete(sh_req *req)
{
    int64_t id = sh_param_int(req, "id", 0);
    sh_row row;
    bool if_match;
    int rc = prj_load_visible_or_reply(req, id, &row);
    if (rc != 0 || (rc = sh_preconditions_or_reply(req, prj_etag(req, &row), &if_match)) != 0)
        return rc;
    sh_result r;
    if (sh_db_query(req, prj_stmt[PRJ_DELETE], &r, "ibi", id, if_match, sh_row_int(&row, 6)) != 0)
        return sh_db_reply_error(req);
    if (r.affected_rows == 0) /* a concurrent delete or change got there first */
        return prj_reply_lost_race(req, id);
    /* Clear the owner's primary project if it was this one. The project is gone
     * either way: a pointer left behind (accounts unreachable) reads as "no
     * primary project", so this failing does not fail the delete. */
    json_object *body = sh_req_own(req, json_object_new_object());
    json_object_object_add(body, "project_id", json_object_new_int64(id));
    char *path =
        sh_arena_sprintf(req->arena, "/api/accounts/users/%lld/primary-project/clear", (long long)sh_row_int(&row, 1));
    sh_invoke_result res;
    if (sh_invoke(req, "POST", path, body, &res) != 0 || res.status != 200)
        sh_log_msgf(SH_LOG_WARN, "primary_clear_failed",
                    "project %lld deleted; clearing the primary pointer failed (%s)", (long long)id,
                    res.error ? res.error : "unexpected status");
    int64_t *arg = sh_arena_alloc(req->arena, sizeof(*arg));
    *arg = id;
    sh_req_defer(req, prj_room_erase, arg);
    return sh_reply_empty(req, 204);
}
