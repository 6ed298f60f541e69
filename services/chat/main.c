/* main.c: the chat service: configuration, statements, route table. */
#include "chat.h"
#include "sh_ratelimit.h"

#include <stddef.h>

chat_config chat_conf;
int chat_stmt[CHAT_STMT_COUNT];

#define F(field) offsetof(chat_config, field)
static const sh_conf_row chat_config_rows[] = {
    {"PL_NCHAN_PUBLISH_URL", SH_CONF_STRING, F(publish_url), "http://127.0.0.1:8081/_pl/chat/publish/", 0, 0, NULL, 0,
     "nchan publisher location (internal listener); the room name is appended"},
    {"PL_LIVE_TICKET_TTL_S", SH_CONF_INT, F(ticket_ttl_s), "30", 1, 3600, NULL, 0, "a live ticket's lifetime"},
    {"PL_ROOM_ACCESS_CACHE_S", SH_CONF_INT, F(access_cache_s), "5", 0, 300, NULL, 0,
     "how long a worker remembers that a user may use a project room"},
    {"PL_ROOM_LOCK_TIMEOUT_S", SH_CONF_INT, F(room_lock_timeout_s), "5", 1, 60, NULL, 0,
     "wait for a room's publish order lock (503 room_busy after)"},
    {"PL_LIMIT_CHAT_POST_RATE", SH_CONF_RATE, F(post_interval_us), "10r/s", 1, 1000000, NULL, 0,
     "messages a user may post (any room), on average"},
    {"PL_LIMIT_CHAT_POST_BURST", SH_CONF_INT, F(post_burst), "40", 1, 1000000, NULL, 0,
     "messages a user may post at once above that rate"},
    SH_CONF_END,
};
#undef F

static const char *const chat_sql[CHAT_STMT_COUNT] = {
    [CHAT_ROOM_LOCK] = "SELECT GET_LOCK(?, ?)",
    [CHAT_ROOM_UNLOCK] = "SELECT RELEASE_LOCK(?)",
    [CHAT_MSG_INSERT] =
        "INSERT INTO messages (room, author_id, author_name, body, client_msg_id) VALUES (?, ?, ?, ?, ?)",
    /* a new message, and the id of the one before it in its room (NULL: none), which its live event carries */
    [CHAT_MSG_BY_ID] = "SELECT " CHAT_MSG_COLUMNS ", (SELECT MAX(p.id) FROM messages p WHERE p.room = m.room "
                       "AND p.id < m.id) FROM messages m WHERE m.id = ?",
    [CHAT_MSG_BY_CLIENT_ID] = "SELECT " CHAT_MSG_COLUMNS " FROM messages WHERE author_id = ? AND client_msg_id = ?",
    [CHAT_MSG_AFTER] = "SELECT " CHAT_MSG_COLUMNS " FROM messages WHERE room = ? AND id > ? ORDER BY id LIMIT ?",
    [CHAT_MSG_BEFORE] = "SELECT " CHAT_MSG_COLUMNS " FROM messages WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?",
    [CHAT_MSG_LATEST] = "SELECT " CHAT_MSG_COLUMNS " FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?",
    [CHAT_TICKET_INSERT] = "INSERT INTO live_tickets (ticket_hash, user_id, room, expires_at) "
                           "VALUES (?, ?, ?, NOW(6) + INTERVAL ? SECOND)",
    [CHAT_TICKET_USE] = "UPDATE live_tickets SET used_at = NOW(6) WHERE ticket_hash = ? AND room = ? "
                        "AND used_at IS NULL AND expires_at > NOW(6)",
    [CHAT_TICKET_PURGE] = "DELETE FROM live_tickets WHERE expires_at < NOW(6) - INTERVAL 1 MINUTE LIMIT 100",
    [CHAT_TICKET_USER] = "SELECT user_id FROM live_tickets WHERE ticket_hash = ?",
    /* no client_msg_id either: several deleted authors' ids would collide (author 0) */
    [CHAT_MSG_ANONYMISE] = "UPDATE messages SET author_id = 0, author_name = '" CHAT_DELETED_AUTHOR_NAME "', "
                           "client_msg_id = NULL WHERE author_id = ?",
    [CHAT_ROOM_MESSAGES_DELETE] = "DELETE FROM messages WHERE room = ?",
    [CHAT_ROOM_TICKETS_DELETE] = "DELETE FROM live_tickets WHERE room = ?",
    [CHAT_USER_TICKETS_DELETE] = "DELETE FROM live_tickets WHERE user_id = ?",
    [CHAT_RESYNC_GET] = "SELECT due_at IS NOT NULL, due_at <= NOW(6) FROM live_resync WHERE room = ?",
    [CHAT_RESYNC_ADD] = "INSERT IGNORE INTO live_resync (room, first_message_id) VALUES (?, ?)",
    [CHAT_RESYNC_DUE] = "UPDATE live_resync SET due_at = NOW(6) + INTERVAL ? SECOND WHERE room = ?",
    [CHAT_RESYNC_RESET] = "UPDATE live_resync SET due_at = NULL WHERE room = ?",
    [CHAT_RESYNC_DONE] = "DELETE FROM live_resync WHERE room = ?",
    [CHAT_RESYNC_ROOMS] = "SELECT room FROM live_resync ORDER BY room LIMIT 50",
};

static const sh_param chat_room_param[] = {SH_PATH_STR("room", 64), SH_RULE_END};
static const sh_param chat_list_params[] = {
    SH_PATH_STR("room", 64), SH_QUERY_ID("after"), SH_QUERY_ID("before"), SH_QUERY_INT("limit", 1, 200), SH_RULE_END,
};
static const sh_param chat_live_params[] = {
    SH_PATH_STR("room", 64),
    SH_QUERY_STR("ticket", 100),
    SH_RULE_END,
};
static const sh_param chat_user_param[] = {SH_PATH_ID("id"), SH_RULE_END};
static const sh_field chat_post_fields[] = {
    SH_FIELD_STR("body", SH_REQUIRED, 1, CHAT_BODY_MAX),
    SH_FIELD_STR("client_msg_id", 0, 1, 64),
    SH_RULE_END,
};

static const sh_rate chat_post_rate = {"chat_post", &chat_conf.post_interval_us, &chat_conf.post_burst};

static const sh_route chat_routes[] = {
    SH_ROUTE_LIMITED("POST", "/api/chat/rooms/{room}/messages", chat_message_post, SH_AUTH | SH_JSON, chat_room_param,
                     chat_post_fields, &chat_post_rate),
    SH_ROUTE("GET", "/api/chat/rooms/{room}/messages", chat_message_list, SH_AUTH, chat_list_params, NULL),
    SH_ROUTE("POST", "/api/chat/rooms/{room}/ticket", chat_ticket_create, SH_AUTH, chat_room_param, NULL),
    /* nchan's authorizer: a live subscriber's ?ticket=, or ?access_token= (declared by the flag) */
    SH_ROUTE("GET", "/api/chat/rooms/{room}/live", chat_live_authorize, SH_TOKEN_QUERY, chat_live_params, NULL),
    /* accounts, when it revokes a user's tokens: their live subscriptions end */
    SH_ROUTE("POST", "/api/chat/users/{id}/live/close", chat_live_close, SH_INTERNAL, chat_user_param, NULL),
    /* accounts, when it deletes a user: their messages lose their author, their projects' rooms go */
    SH_ROUTE("POST", "/api/chat/users/{id}/anonymise", chat_user_anonymise, SH_INTERNAL | SH_JSON, chat_user_param,
             NULL),
    /* projects, when it deletes a project: the project's room goes */
    SH_ROUTE("DELETE", "/api/chat/rooms/{room}", chat_room_erase, SH_INTERNAL, chat_room_param, NULL),
    SH_ROUTE_END,
};

static int chat_worker_init(sh_db *db)
{
    for (int i = 0; i < CHAT_STMT_COUNT; i++)
        chat_stmt[i] = sh_db_register(db, chat_sql[i]);
    return 0;
}

static const sh_service chat_service = {
    .name = "chat",
    .routes = chat_routes,
    .config_rows = chat_config_rows,
    .config = &chat_conf,
    .worker_init = chat_worker_init,
    .calls_out_per_request = true, /* every post is published to nchan */
    .on_wake = chat_on_wake,
};

int main(int argc, char **argv) { return sh_service_main(argc, argv, &chat_service); }
