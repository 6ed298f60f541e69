/* main.c: the projects service: its statements and route table. */
#include "projects.h"

int prj_stmt[PRJ_STMT_COUNT];

static const char *const prj_sql[PRJ_STMT_COUNT] = {
    [PRJ_INSERT] = "INSERT INTO projects (owner_id, name, description, state, internal_notes) VALUES (?, ?, ?, ?, '')",
    [PRJ_BY_ID] = "SELECT " PRJ_COLUMNS " FROM projects WHERE id = ?",
    [PRJ_LIST_OWNER] = "SELECT " PRJ_COLUMNS " FROM projects WHERE owner_id = ? AND id > ? ORDER BY id LIMIT ?",
    [PRJ_LIST_ALL] = "SELECT " PRJ_COLUMNS " FROM projects WHERE id > ? ORDER BY id LIMIT ?",
    [PRJ_UPDATE] = "UPDATE projects SET name = IF(?, ?, name), description = IF(?, ?, description), "
                   "state = IF(?, ?, state), internal_notes = IF(?, ?, internal_notes), "
                   "version = version + 1, updated_at = NOW(6) WHERE id = ? AND (NOT ? OR version = ?)",
    [PRJ_DELETE] = "DELETE FROM projects WHERE id = ? AND (NOT ? OR version = ?)",
    [PRJ_IDS_OF_OWNER] = "SELECT id FROM projects WHERE owner_id = ? ORDER BY id",
    [PRJ_DELETE_OF_OWNER] = "DELETE FROM projects WHERE owner_id = ?",
};

static const char *const prj_states[] = {"planning", "active", "on_hold", "done", NULL};

static const sh_param prj_list_params[] = {
    SH_QUERY_INT("limit", 1, 100),
    SH_QUERY_CURSOR("cursor"),
    SH_QUERY_ID("owner_id"),
    SH_QUERY_BOOL("all"),
    SH_RULE_END,
};
static const sh_param prj_id_param[] = {SH_PATH_ID("id"), SH_RULE_END};
static const sh_field prj_create_fields[] = {
    SH_FIELD_STR("name", SH_REQUIRED, 1, 200),
    SH_FIELD_STR("description", 0, 0, 10000),
    SH_FIELD_ENUM("state", 0, prj_states),
    SH_RULE_END,
};
static const sh_field prj_update_fields[] = {
    SH_FIELD_STR("name", 0, 1, 200),
    SH_FIELD_STR("description", 0, 0, 10000),
    SH_FIELD_ENUM("state", 0, prj_states),
    SH_FIELD_STR("internal_notes", 0, 0, 10000),
    SH_RULE_END,
};

static const sh_route prj_routes[] = {
    SH_ROUTE("GET", "/api/projects", prj_project_list, SH_AUTH, prj_list_params, NULL),
    SH_ROUTE("POST", "/api/projects", prj_project_create, SH_AUTH | SH_JSON | SH_IDEMPOTENT, NULL, prj_create_fields),
    SH_ROUTE("GET", "/api/projects/primary", prj_project_primary, SH_AUTH, NULL, NULL),
    SH_ROUTE("GET", "/api/projects/_test/recurse", prj_test_recurse, SH_TEST, NULL, NULL),
    SH_ROUTE("GET", "/api/projects/_test/fanout", prj_test_fanout, SH_TEST, NULL, NULL),
    SH_ROUTE("GET", "/api/projects/{id}", prj_project_get, SH_AUTH, prj_id_param, NULL),
    SH_ROUTE("PATCH", "/api/projects/{id}", prj_project_update, SH_AUTH | SH_JSON | SH_IDEMPOTENT, prj_id_param,
             prj_update_fields),
    SH_ROUTE("DELETE", "/api/projects/{id}", prj_project_delete, SH_AUTH, prj_id_param, NULL),
    /* accounts, when it deletes a user: their projects, listed, then deleted */
    SH_ROUTE("GET", "/api/projects/users/{id}/projects", prj_owner_projects_list, SH_INTERNAL, prj_id_param, NULL),
    SH_ROUTE("DELETE", "/api/projects/users/{id}/projects", prj_owner_projects_delete, SH_INTERNAL, prj_id_param, NULL),
    SH_ROUTE_END,
};

static int prj_worker_init(sh_db *db)
{
    for (int i = 0; i < PRJ_STMT_COUNT; i++)
        prj_stmt[i] = sh_db_register(db, prj_sql[i]);
    return 0;
}

static const sh_service prj_service = {
    .name = "projects",
    .routes = prj_routes,
    .worker_init = prj_worker_init,
};

int main(int argc, char **argv) { return sh_service_main(argc, argv, &prj_service); }
