/* projects.h: what the projects service's files share: its statements and the
 * row-to-JSON helper. */
#ifndef PROJECTS_H
#define PROJECTS_H

#include "sh_db.h"
#include "sh_invoke.h"
#include "sh_service.h"

enum {
    PRJ_INSERT,
    PRJ_BY_ID,
    PRJ_LIST_OWNER,
    PRJ_LIST_ALL,
    PRJ_UPDATE,
    PRJ_DELETE,
    PRJ_IDS_OF_OWNER,
    PRJ_DELETE_OF_OWNER,
    PRJ_STMT_COUNT
};

extern int prj_stmt[PRJ_STMT_COUNT];

#define PRJ_COLUMNS                                                                                                    \
    "id, owner_id, name, description, state, internal_notes, version, "                                                \
    "DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ'), DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%s.%fZ')"

/* A project row (PRJ_COLUMNS) as the caller may see it: internal notes only for admins. */
json_object *prj_project_json(const sh_row *row, bool admin);

int prj_project_list(sh_req *req);
int prj_project_create(sh_req *req);
int prj_project_get(sh_req *req);
int prj_project_update(sh_req *req);
int prj_project_delete(sh_req *req);
int prj_project_primary(sh_req *req);
int prj_owner_projects_list(sh_req *req);
int prj_owner_projects_delete(sh_req *req);
int prj_test_recurse(sh_req *req);
int prj_test_fanout(sh_req *req);

#endif
