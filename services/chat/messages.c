/* messages.c: posting (store, then publish in order), history, and live
 * subscription tickets with their authorizer. */
#include "chat.h"
#include "sh_codec.h"
#include "sh_log.h"

#include <mysqld_error.h>
#include <sodium.h>
#include <string.h>

json_object *chat_message_json(const sh_row *row)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "id", json_object_new_int64(sh_row_int(row, 0)));
    json_object_object_add(m, "room", json_object_new_string(sh_row_str(row, 1)));
    json_object_object_add(m, "author_id", json_object_new_int64(sh_row_int(row, 2)));
    json_object_object_add(m, "author_name", json_object_new_string(sh_row_str(row, 3)));
    json_object_object_add(m, "body", json_object_new_string_len(sh_row_str(row, 4), (int)row->lengths[4]));
    json_object_object_add(m, "client_msg_id",
                           sh_row_is_null(row, 5) ? NULL : json_object_new_string(sh_row_str(row, 5)));
    json_object_object_add(m, "created_at", json_object_new_string(sh_row_str(row, 6)));
    return m;
}

static int chat_reply_message(sh_req *req, int status, const sh_row *row)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message", chat_message_json(row));
    return sh_reply_json(req, status, o);
}

/* A stored message sent again with the same client_msg_id: answered as it was. */
static int chat_reply_existing(sh_req *req, const char *client_msg_id)
{
    sh_result r;
    if (sh_db_query(req, chat_stmt[CHAT_MSG_BY_CLIENT_ID], &r, "is", req->auth.user_id, client_msg_id) != 0)
        return sh_db_reply_error(req);
    if (r.nrows == 0)
        return sh_reply_error(req, 500, "internal_error", "The request failed on the server.");
    return chat_reply_message(req, 200, &r.rows[0]);
}

static void chat_publish(sh_req *req, const char *room, const sh_row *row)
{
    json_object *m = sh_req_own(req, chat_message_json(row));
    size_t len;
    const char *json = sh_json_to_string(m, &len);
    long status = 0;
    char *url = sh_arena_sprintf(req->arena, "%s%s", chat_conf.publish_url, room);
    /* nchan answers 201/202 (subscribers or not): publishing to an empty room is normal */
    if (sh_http_post_json(req, url, json, len, &status) != 0 || status < 200 || status > 299)
        sh_log_msgf(SH_LOG_WARN, "publish_failed",
                    "message %lld is stored but was not delivered live (nchan status %ld)",
                    (long long)sh_row_int(row, 0), status);
}

int chat_message_post(sh_req *req)
{
    const char *room = sh_param_str(req, "room");
    const sh_value *body = sh_req_field(req, "body");
    const char *client_msg_id = sh_field_str(req, "client_msg_id");
    int rc = chat_room_access_or_reply(req, room);
    if (rc != 0)
        return rc;
    if (client_msg_id != NULL) {
        sh_result dup;
        if (sh_db_query(req, chat_stmt[CHAT_MSG_BY_CLIENT_ID], &dup, "is", req->auth.user_id, client_msg_id) != 0)
            return sh_db_reply_error(req);
        if (dup.nrows == 1)
            return chat_reply_message(req, 200, &dup.rows[0]); /* a retry: nothing new to publish */
    }

    /* The room lock makes "commit, then publish" one step per room, so live
     * subscribers receive messages in ascending id order. A worker that dies
     * holding it loses its connection, and MySQL releases the lock. */
    char *lock = sh_arena_sprintf(req->arena, "pl_chat:%s", room);
    sh_result got;
    if (sh_db_query(req, chat_stmt[CHAT_ROOM_LOCK], &got, "si", lock, chat_conf.room_lock_timeout_s) != 0)
        return sh_db_reply_error(req);
    if (got.nrows != 1 || sh_row_int(&got.rows[0], 0) != 1)
        return sh_reply_error(req, 503, "room_busy", "The room is too busy right now; retry shortly.");

    const char *name = req->auth.name != NULL ? req->auth.name : "";
    sh_result ins, row;
    int status;
    if (sh_db_query(req, chat_stmt[CHAT_MSG_INSERT], &ins, "sisSs", room, req->auth.user_id, name, body->s, body->len,
                    client_msg_id) != 0) {
        status = sh_db_errno() == ER_DUP_ENTRY ? chat_reply_existing(req, client_msg_id) : sh_db_reply_error(req);
    } else if (sh_db_query(req, chat_stmt[CHAT_MSG_BY_ID], &row, "i", (int64_t)ins.insert_id) != 0 || row.nrows != 1) {
        status = sh_db_reply_error(req);
    } else {
        chat_publish(req, room, &row.rows[0]);
        status = chat_reply_message(req, 201, &row.rows[0]);
    }
    sh_result unlocked;
    if (sh_db_query(req, chat_stmt[CHAT_ROOM_UNLOCK], &unlocked, "s", lock) != 0)
        sh_log_msg(SH_LOG_WARN, "room_unlock_failed", "RELEASE_LOCK failed; the connection's end releases it");
    return status;
}

int chat_message_list(sh_req *req)
{
    const char *room = sh_param_str(req, "room");
    int64_t after = sh_param_int(req, "after", 0), before = sh_param_int(req, "before", 0);
    int64_t limit = sh_param_int(req, "limit", 50);
    if (after && before)
        return sh_reply_field_error(req, 400, "invalid_parameter", "before", "Give after or before, not both.");
    int rc = chat_room_access_or_reply(req, room);
    if (rc != 0)
        return rc;
    sh_result r;
    if (after)
        rc = sh_db_query(req, chat_stmt[CHAT_MSG_AFTER], &r, "sii", room, after, limit);
    else if (before)
        rc = sh_db_query(req, chat_stmt[CHAT_MSG_BEFORE], &r, "sii", room, before, limit);
    else
        rc = sh_db_query(req, chat_stmt[CHAT_MSG_LATEST], &r, "si", room, limit);
    if (rc != 0)
        return sh_db_reply_error(req);
    /* before/latest read newest first: answer in ascending id order always */
    json_object *list = json_object_new_array();
    for (int i = 0; i < r.nrows; i++)
        json_object_array_add(list, chat_message_json(&r.rows[after ? i : r.nrows - 1 - i]));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "messages", list);
    return sh_reply_json(req, 200, o);
}

int chat_ticket_create(sh_req *req)
{
    const char *room = sh_param_str(req, "room");
    int rc = chat_room_access_or_reply(req, room);
    if (rc != 0)
        return rc;
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    char *ticket = sh_b64url_encode(req->arena, raw, sizeof(raw));
    if (sh_db_query(req, chat_stmt[CHAT_TICKET_PURGE], NULL, "") != 0 ||
        sh_db_query(req, chat_stmt[CHAT_TICKET_INSERT], NULL, "sisi", sh_sha256_hex(req->arena, ticket),
                    req->auth.user_id, room, chat_conf.ticket_ttl_s) != 0)
        return sh_db_reply_error(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ticket", json_object_new_string(ticket));
    json_object_object_add(o, "expires_in", json_object_new_int64(chat_conf.ticket_ttl_s));
    json_object_object_add(
        o, "url",
        json_object_new_string(sh_arena_sprintf(req->arena, "/api/chat/rooms/%s/live?ticket=%s", room, ticket)));
    return sh_reply_json(req, 201, o);
}

/* Lets a live subscriber in: 200, and its user, which nginx adds to the
 * subscription as the channel user-<id> (so chat_live_close can end it). */
static int chat_live_let_in(sh_req *req, int64_t user_id)
{
    sh_resp_header(req, "X-Live-User", "%lld", (long long)user_id);
    return sh_reply_empty(req, 200);
}

/* The authorize request for a live subscriber (nginx's auth_request): 200
 * lets it in; anything else is refused and passed on to the subscriber.
 * Credentials come in the query string: a single-use ticket, or an access
 * token (the route's SH_TOKEN_QUERY: the dispatcher verified it when one
 * came). A missing or bad credential is 401, a good one for a room its user
 * may not read 403. */
int chat_live_authorize(sh_req *req)
{
    const char *room = sh_param_str(req, "room");
    const char *ticket = sh_param_str(req, "ticket");
    if (ticket != NULL) {
        const char *hash = sh_sha256_hex(req->arena, ticket);
        sh_result r, who;
        int64_t project_id;
        /* no ticket is for a room that cannot exist (and such a name, not ASCII, is no SQL operand) */
        if (!chat_room_name_parse(room, &project_id))
            return sh_reply_error(req, 401, "invalid_ticket",
                                  "The ticket is unknown, expired, used, or for another room.");
        if (sh_db_query(req, chat_stmt[CHAT_TICKET_USE], &r, "ss", hash, room) != 0)
            return sh_db_reply_error(req);
        if (r.affected_rows != 1)
            return sh_reply_error(req, 401, "invalid_ticket",
                                  "The ticket is unknown, expired, used, or for another room.");
        if (sh_db_query(req, chat_stmt[CHAT_TICKET_USER], &who, "s", hash) != 0 || who.nrows != 1)
            return sh_db_reply_error(req);
        return chat_live_let_in(req, sh_row_int(&who.rows[0], 0));
    }
    if (!req->auth.present)
        return sh_reply_error(req, 401, "missing_token", "A live subscription needs ?ticket= or ?access_token=.");
    int rc = chat_room_access_or_reply(req, room);
    return rc != 0 ? rc : chat_live_let_in(req, req->auth.user_id);
}

/* POST /api/chat/users/{id}/live/close (internal): the user's live
 * subscriptions end now (nchan closes them: 410 on EventSource, a close
 * frame on WebSocket); clients that may still read come back with a new
 * credential and fill the gap from history. */
int chat_live_close(sh_req *req)
{
    int64_t id = sh_param_int(req, "id", 0);
    char *url = sh_arena_sprintf(req->arena, "%suser-%lld", chat_conf.publish_url, (long long)id);
    long status = 0;
    if (sh_http_send(req, "DELETE", url, NULL, 0, &status, NULL) != 0 || (status >= 300 && status != 404))
        return sh_reply_error(req, 503, "service_unavailable", "The live channels could not be reached (%ld).", status);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "closed", json_object_new_boolean(status != 404));
    return sh_reply_json(req, 200, o);
}
