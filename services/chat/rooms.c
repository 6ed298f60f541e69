/* rooms.c: which rooms exist and who may use them. "lobby" is every signed-in
 * user's; "project-{id}" belongs to whoever can read project {id}, which only
 * the projects service can say: we invoke it (for admins too: only it knows
 * whether the project exists), and remember a yes for a few seconds per
 * worker. */
#include "chat.h"
#include "sh_str.h"

#include <string.h>

#define CHAT_CACHE_SLOTS 64

typedef struct {
    int64_t user_id;
    int64_t project_id;
    int64_t until_us;
} chat_access_entry;

static chat_access_entry chat_access_cache[CHAT_CACHE_SLOTS];

static bool chat_cache_allows(int64_t user_id, int64_t project_id)
{
    chat_access_entry *e = &chat_access_cache[(uint64_t)(user_id * 31 + project_id) % CHAT_CACHE_SLOTS];
    return e->user_id == user_id && e->project_id == project_id && e->until_us > sh_now_us();
}

static void chat_cache_remember(int64_t user_id, int64_t project_id)
{
    chat_access_entry *e = &chat_access_cache[(uint64_t)(user_id * 31 + project_id) % CHAT_CACHE_SLOTS];
    e->user_id = user_id;
    e->project_id = project_id;
    e->until_us = sh_now_us() + chat_conf.access_cache_s * 1000000;
}

bool chat_room_name_parse(const char *room, int64_t *project_id)
{
    *project_id = 0;
    if (strcmp(room, "lobby") == 0)
        return true;
    static const char prefix[] = "project-";
    size_t plen = sizeof(prefix) - 1, len = strlen(room);
    return len > plen && strncmp(room, prefix, plen) == 0 && room[plen] != '0' &&
           sh_parse_int64(room + plen, len - plen, 1, INT64_MAX, project_id) == 0;
}

int chat_room_access_or_reply(sh_req *req, const char *room)
{
    int64_t project_id;
    if (!chat_room_name_parse(room, &project_id))
        return sh_reply_error(req, 404, "room_not_found", "There is no room called that.");
    if (project_id == 0)
        return 0;
    if (chat_cache_allows(req->auth.user_id, project_id))
        return 0;
    sh_invoke_result res;
    int status;
    char *path = sh_arena_sprintf(req->arena, "/api/projects/%lld", (long long)project_id);
    if (sh_invoke_or_reply(req, "GET", path, NULL, &res, &status) != 0)
        return status;
    if (res.status == 200) {
        chat_cache_remember(req->auth.user_id, project_id);
        return 0;
    }
    /* projects answers 404 for a project the caller may not read, so that
     * only an admin (who may read them all) learns that it does not exist */
    if (res.status == 404 && req->auth.is_admin)
        return sh_reply_error(req, 404, "room_not_found", "There is no room called that.");
    if (res.status == 404 || res.status == 403)
        return sh_reply_error(req, 403, "forbidden", "Only the project's owner and admins may use this room.");
    return sh_reply_error(req, 502, "bad_gateway", "The projects service gave an unexpected answer (%d).", res.status);
}
