/* erase.c: forgetting a deleted account (an internal route accounts
 * invokes): the user's messages stay in their rooms without an author
 * (author_id 0, CHAT_DELETED_AUTHOR_NAME), their live tickets go, and so do
 * the rooms of the user's projects, which nobody can open any more: their
 * messages (everyone's) and tickets. Safe to call again. And erasing one
 * project's room, when projects deletes the project. */
#include "chat.h"
#include "sh_log.h"

#define CHAT_ERASE_MAX_PROJECTS 100000

/* The body's project_ids: an array of ids (absent: none). 0, or -1 when it is not one. */
static int chat_project_ids(sh_req *req, json_object **ids)
{
    *ids = NULL;
    json_object *v;
    if (!json_object_object_get_ex(req->json, "project_ids", &v))
        return json_object_object_length(req->json) == 0 ? 0 : -1;
    if (json_object_object_length(req->json) != 1 || !json_object_is_type(v, json_type_array) ||
        json_object_array_length(v) > CHAT_ERASE_MAX_PROJECTS)
        return -1;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *id = json_object_array_get_idx(v, i);
        if (!json_object_is_type(id, json_type_int) || json_object_get_int64(id) < 1)
            return -1;
    }
    *ids = v;
    return 0;
}

/* POST /api/chat/users/{id}/anonymise {"project_ids": [...]}:
 * {"anonymised": n, "deleted": m} (messages). */
int chat_user_anonymise(sh_req *req)
{
    int64_t user_id = sh_param_int(req, "id", 0);
    json_object *ids;
    if (chat_project_ids(req, &ids) != 0)
        return sh_reply_field_error(req, 422, "invalid_field", "project_ids",
                                    "Field project_ids must be an array of project ids (and the only field).");
    sh_result anon, gone;
    uint64_t deleted = 0;
    if (sh_db_begin(req) != 0 || sh_db_query(req, chat_stmt[CHAT_MSG_ANONYMISE], &anon, "i", user_id) != 0 ||
        sh_db_query(req, chat_stmt[CHAT_USER_TICKETS_DELETE], NULL, "i", user_id) != 0)
        return sh_db_reply_error(req);
    for (size_t i = 0; ids != NULL && i < json_object_array_length(ids); i++) {
        char *room = sh_arena_sprintf(req->arena, "project-%lld",
                                      (long long)json_object_get_int64(json_object_array_get_idx(ids, i)));
        if (sh_db_query(req, chat_stmt[CHAT_ROOM_MESSAGES_DELETE], &gone, "s", room) != 0 ||
            sh_db_query(req, chat_stmt[CHAT_ROOM_TICKETS_DELETE], NULL, "s", room) != 0)
            return sh_db_reply_error(req);
        deleted += gone.affected_rows;
    }
    if (sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    sh_log_msgf(SH_LOG_INFO, "user_anonymised", "user %lld: %llu messages anonymised, %llu deleted", (long long)user_id,
                (unsigned long long)anon.affected_rows, (unsigned long long)deleted);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "anonymised", json_object_new_int64((int64_t)anon.affected_rows));
    json_object_object_add(o, "deleted", json_object_new_int64((int64_t)deleted));
    return sh_reply_json(req, 200, o);
}

/* DELETE /api/chat/rooms/{room} (internal; projects calls it once it deleted
 * the project): a project room's messages and live tickets go in one
 * transaction, then its live subscriptions are closed (nchan deletes the
 * channel; a failure there is logged: nobody can open the room again, and
 * what a connected subscriber could still get is nothing). {"deleted": n}
 * (messages). Safe to call again. Only project rooms: anything else, the
 * lobby too, is 404 room_not_found. */
int chat_room_erase(sh_req *req)
{
    const char *room = sh_param_str(req, "room");
    int64_t project_id;
    if (!chat_room_name_parse(room, &project_id) || project_id == 0)
        return sh_reply_error(req, 404, "room_not_found", "Only a project's room can be erased.");
    sh_result gone;
    if (sh_db_begin(req) != 0 || sh_db_query(req, chat_stmt[CHAT_ROOM_MESSAGES_DELETE], &gone, "s", room) != 0 ||
        sh_db_query(req, chat_stmt[CHAT_ROOM_TICKETS_DELETE], NULL, "s", room) != 0 || sh_db_commit(req) != 0)
        return sh_db_reply_error(req);
    long status = 0;
    char *url = sh_arena_sprintf(req->arena, "%s%s", chat_conf.publish_url, room);
    if (sh_http_send(req, "DELETE", url, NULL, 0, &status, NULL) != 0 || (status >= 300 && status != 404))
        sh_log_msgf(SH_LOG_WARN, "room_close_failed", "room %s erased; its live subscriptions stay open (%ld)", room,
                    status);
    sh_log_msgf(SH_LOG_INFO, "room_erased", "room %s: %llu messages deleted", room,
                (unsigned long long)gone.affected_rows);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_int64((int64_t)gone.affected_rows));
    return sh_reply_json(req, 200, o);
}
