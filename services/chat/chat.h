/* chat.h: what the chat service's files share. Messages are committed to MySQL,
 * then published in id order to the room's nchan channel (when nchan cannot
 * take one, the room's live subscribers are made to reconnect and read
 * history instead); live subscribers connect to nginx (nchan), which asks
 * this service to authorize them. */
#ifndef CHAT_H
#define CHAT_H

#include "sh_db.h"
#include "sh_invoke.h"
#include "sh_service.h"

typedef struct {
    const char *publish_url; /* nchan publisher location, the room name is appended */
    int64_t ticket_ttl_s;
    int64_t access_cache_s;
    int64_t room_lock_timeout_s;
    int64_t post_interval_us; /* PL_LIMIT_CHAT_POST_RATE */
    int64_t post_burst;
} chat_config;

extern chat_config chat_conf;

enum {
    CHAT_ROOM_LOCK,
    CHAT_ROOM_UNLOCK,
    CHAT_MSG_INSERT,
    CHAT_MSG_BY_ID,
    CHAT_MSG_BY_CLIENT_ID,
    CHAT_MSG_AFTER,
    CHAT_MSG_BEFORE,
    CHAT_MSG_LATEST,
    CHAT_TICKET_INSERT,
    CHAT_TICKET_USE,
    CHAT_TICKET_PURGE,
    CHAT_TICKET_USER,
    CHAT_MSG_ANONYMISE,
    CHAT_ROOM_MESSAGES_DELETE,
    CHAT_ROOM_TICKETS_DELETE,
    CHAT_USER_TICKETS_DELETE,
    CHAT_RESYNC_GET,
    CHAT_RESYNC_ADD,
    CHAT_RESYNC_DUE,
    CHAT_RESYNC_RESET,
    CHAT_RESYNC_DONE,
    CHAT_RESYNC_ROOMS,
    CHAT_STMT_COUNT
};

extern int chat_stmt[CHAT_STMT_COUNT];

#define CHAT_MSG_COLUMNS                                                                                               \
    "id, room, author_id, author_name, body, client_msg_id, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ')"

#define CHAT_BODY_MAX 4000

/* What a deleted account's messages show as their author: no one (author_id 0). */
#define CHAT_DELETED_AUTHOR_NAME "Deleted user"

/* Whether room is the name of a room that can exist: "lobby" (*project_id 0)
 * or "project-<id>" (*project_id its project). Only such names reach SQL (the
 * room columns are ASCII). */
bool chat_room_name_parse(const char *room, int64_t *project_id);
/* Checks that the room exists and the caller may use it; 0, or the reply's status
 * (404 room_not_found, 403 forbidden, or an invocation failure). */
int chat_room_access_or_reply(sh_req *req, const char *room);

json_object *chat_message_json(const sh_row *row);

int chat_message_post(sh_req *req);
int chat_message_list(sh_req *req);
int chat_ticket_create(sh_req *req);
int chat_live_authorize(sh_req *req);
int chat_live_close(sh_req *req);
int chat_user_anonymise(sh_req *req);
int chat_room_erase(sh_req *req);
/* The pool's wake (sh_pool_wake_at): closes the live subscriptions of the
 * rooms whose delivery was interrupted, once it works again. */
void chat_on_wake(sh_req *req);

#endif
