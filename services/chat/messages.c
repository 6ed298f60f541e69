/* messages.c: posting (store, then publish in order; when that fails, the
 * room's subscribers are made to read history), history, and live
 * subscription tickets with their authorizer. */
#include "chat.h"
#include "sh_codec.h"
#include "sh_log.h"
#include "sh_pool.h"

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

/* When live delivery fails (nchan, or the Redis several fronts share, is
 * unreachable), a message is stored all the same, but subscribers that stayed
 * connected may miss it, and with Redis they may also miss what was published
 * while their front was reconnecting (nchan 1.3.6 does not always catch up).
 * So a room whose delivery was interrupted is marked (live_resync): nothing
 * more is published live in it; once the publisher answers again a resync
 * event ({"resync": true}) is published in it, on which every subscriber
 * reads history after the last message it has (the last one delivered to
 * it), and once more CHAT_RESYNC_SETTLE_S later for the fronts that
 * reconnected to Redis in between; then the mark goes, and messages are
 * published again. Nothing is missed and nothing comes twice. Subscriptions
 * are not closed for it (deleting the channel would): with several nginx
 * workers, nchan's memory store can leave a subscriber that joins a
 * channel soon after its deletion attached to what is left of it, where no
 * message ever reaches it (nchan issue 719). */
#define CHAT_RESYNC_SETTLE_S 5
/* How long a worker that could not publish marks the rooms it posts in
 * without trying (a publisher that hangs, as nchan waiting for Redis does,
 * must not hold each post of a room, under its lock, for the whole timeout);
 * also how often the pool looks at marked rooms. */
#define CHAT_PUBLISH_BACKOFF_US 1000000
/* A publish that failed this fast without an answer (a dead kept connection) is tried once more. */
#define CHAT_PUBLISH_QUICK_US 200000

static int64_t chat_publish_failed_at; /* this worker's last failure to publish (sh_now_us), 0: none */

/* Publishes one stored message to its room's channel: 0, or -1 (logged).
 * row is CHAT_MSG_BY_ID's: the live event is the message with prev_id, the
 * id of the message before it in the room (null: none). A subscriber whose
 * last message is older than prev_id missed one that was stored but never
 * published (its worker died between the two, or lost its database, which
 * then released the room's lock) and reads history after its last id. */
static int chat_publish(sh_req *req, const char *room, const sh_row *row)
{
    json_object *m = sh_req_own(req, chat_message_json(row));
    json_object_object_add(m, "prev_id", sh_row_is_null(row, 7) ? NULL : json_object_new_int64(sh_row_int(row, 7)));
    size_t len;
    const char *json = sh_json_to_string(m, &len);
    long status = 0;
    char *url = sh_arena_sprintf(req->arena, "%s%s", chat_conf.publish_url, room);
    /* nchan answers 201/202 (subscribers or not): publishing to an empty room is normal. A kept
     * connection that is dead at once (its front stopped) is tried again on a new one, which finds
     * a front that answers; a subscriber skips a message it has, were it delivered twice. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t t0 = sh_now_us();
        if (sh_http_post_json(req, url, json, len, &status) == 0) {
            if (status >= 200 && status <= 299)
                return 0;
            break;
        }
        if (sh_now_us() - t0 > CHAT_PUBLISH_QUICK_US)
            break;
    }
    chat_publish_failed_at = sh_now_us();
    sh_log_msgf(SH_LOG_WARN, "publish_failed",
                "message %lld is stored; room %s's live subscribers will be made to read it from history "
                "(nchan status %ld)",
                (long long)sh_row_int(row, 0), room, status);
    return -1;
}

/* Marks a room whose live delivery was interrupted (first_id: the first
 * message it missed, 0 when not known), and has this pool's wake look at it.
 * After a lost connection the next statement connects again (to another
 * node of a cluster). */
static void chat_mark(sh_req *req, const char *room, int64_t first_id)
{
    if (sh_db_query(req, chat_stmt[CHAT_RESYNC_ADD], NULL, "si", room, first_id) != 0)
        sh_log_msgf(SH_LOG_WARN, "resync_failed", "room %s: message %lld may be stored but not delivered live", room,
                    (long long)first_id);
    sh_pool_wake_at(sh_wall_us() + CHAT_PUBLISH_BACKOFF_US);
}

/* Delivers a new message live, under the room's lock (so subscribers get ids
 * in ascending order): unless its room's delivery is interrupted, or this
 * publish fails, which marks the room. Either way this pool's wake will look
 * at the room (the pool that marked it may be gone). */
static void chat_deliver(sh_req *req, const char *room, const sh_row *row)
{
    sh_result marked;
    bool backing_off = chat_publish_failed_at != 0 && sh_now_us() - chat_publish_failed_at < CHAT_PUBLISH_BACKOFF_US;
    if (sh_db_query(req, chat_stmt[CHAT_RESYNC_GET], &marked, "s", room) != 0)
        return; /* the database went after the insert: stored, neither published nor marked (as when a worker
                   dies between the two); the room's next message, whose prev_id is this one, shows the gap */
    if (marked.nrows == 0 && !backing_off && chat_publish(req, room, row) == 0)
        return;
    if (marked.nrows == 0)
        chat_mark(req, room, sh_row_int(row, 0));
    else
        sh_pool_wake_at(sh_wall_us() + CHAT_PUBLISH_BACKOFF_US);
}

/* One step for a marked room, under its lock: 0 when it is back to live
 * delivery, 1 while it is not. */
static int chat_resync(sh_req *req, const char *room)
{
    sh_result r;
    if (sh_db_query(req, chat_stmt[CHAT_RESYNC_GET], &r, "s", room) != 0)
        return 1;
    if (r.nrows == 0)
        return 0;
    bool told_once = sh_row_int(&r.rows[0], 0) != 0, due = sh_row_int(&r.rows[0], 1) != 0;
    if (told_once && !due)
        return 1;
    long status = 0;
    char *url = sh_arena_sprintf(req->arena, "%s%s", chat_conf.publish_url, room);
    static const char event[] = "{\"resync\":true}";
    /* 201: delivered to its subscribers; 202: it had none */
    if (sh_http_post_json(req, url, event, sizeof(event) - 1, &status) != 0 || (status != 201 && status != 202)) {
        /* failing again after the first event: both are needed again */
        if (told_once && sh_db_query(req, chat_stmt[CHAT_RESYNC_RESET], NULL, "s", room) == 0)
            sh_log_msgf(SH_LOG_WARN, "resync_again", "room %s: the publisher failed again (%ld)", room, status);
        return 1;
    }
    if (!told_once) {
        if (sh_db_query(req, chat_stmt[CHAT_RESYNC_DUE], NULL, "is", (int64_t)CHAT_RESYNC_SETTLE_S, room) != 0)
            return 1;
        sh_log_msgf(SH_LOG_INFO, "resync_sent", "room %s: subscribers told to read history", room);
        return 1;
    }
    if (sh_db_query(req, chat_stmt[CHAT_RESYNC_DONE], NULL, "s", room) != 0)
        return 1;
    sh_log_msgf(SH_LOG_INFO, "resync_done", "room %s: subscribers told again; live delivery resumes", room);
    return 0;
}

void chat_on_wake(sh_req *req)
{
    sh_result rooms;
    if (sh_db_query(req, chat_stmt[CHAT_RESYNC_ROOMS], &rooms, "") != 0) {
        sh_pool_wake_at(sh_wall_us() + 5 * CHAT_PUBLISH_BACKOFF_US);
        return;
    }
    bool waiting = rooms.nrows == 50; /* CHAT_RESYNC_ROOMS's LIMIT: more rooms than that */
    for (int i = 0; i < rooms.nrows; i++) {
        const char *room = sh_row_str(&rooms.rows[i], 0);
        char *lock = sh_arena_sprintf(req->arena, "pl_chat:%s", room);
        sh_result got;
        if (sh_db_query(req, chat_stmt[CHAT_ROOM_LOCK], &got, "si", lock, (int64_t)1) != 0 || got.nrows != 1 ||
            sh_row_int(&got.rows[0], 0) != 1) {
            waiting = true;
            continue;
        }
        if (chat_resync(req, room) != 0)
            waiting = true;
        if (sh_db_query(req, chat_stmt[CHAT_ROOM_UNLOCK], NULL, "s", lock) != 0)
            sh_log_msg(SH_LOG_WARN, "room_unlock_failed", "RELEASE_LOCK failed; the connection's end releases it");
    }
    if (waiting)
        sh_pool_wake_at(sh_wall_us() + CHAT_PUBLISH_BACKOFF_US);
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
        bool lost = sh_db_unavailable(); /* the insert may have committed all the same */
        status = sh_db_errno() == ER_DUP_ENTRY ? chat_reply_existing(req, client_msg_id) : sh_db_reply_error(req);
        if (lost)
            chat_mark(req, room, 0);
    } else if (sh_db_query(req, chat_stmt[CHAT_MSG_BY_ID], &row, "i", (int64_t)ins.insert_id) != 0 || row.nrows != 1) {
        status = sh_db_reply_error(req);
        chat_mark(req, room, (int64_t)ins.insert_id); /* stored, and nobody told live */
    } else {
        chat_deliver(req, room, &row.rows[0]);
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
