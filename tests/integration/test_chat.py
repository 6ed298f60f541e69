"""The chat service (issue 5) through nginx: posting (stored, then published
to the room's nchan channel), history, and live delivery to real WebSocket
and EventSource subscribers; ordering under concurrent posts, recovering a
gap from history, refused subscribers (their JSON errors), client_msg_id
retries, project room access, bad input, nginx's rate limit on posts, nginx
workers surviving many subscribes, and credentials kept out of the logs.

The test stack gives live tickets a 3 s lifetime (PL_LIVE_TICKET_TTL_S) and
lets a chat worker remember a project room's access for 1 s
(PL_ROOM_ACCESS_CACHE_S)."""
import http.client
import json
import os
import pathlib
import re
import socket
import threading
import time
import uuid
from base64 import b64encode
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import websocket

from conftest import BASE_URL, VAR, Api, assert_error, log_lines, pool_status, sql, wait_until

PUBLIC = urlsplit(BASE_URL)
WS_BASE = "ws://" + PUBLIC.netloc
TICKET_TTL_S = int(os.environ.get("PL_LIVE_TICKET_TTL_S", "3"))
ACCESS_CACHE_S = int(os.environ.get("PL_ROOM_ACCESS_CACHE_S", "1"))
MESSAGE_KEYS = {"id", "room", "author_id", "author_name", "body", "client_msg_id", "created_at"}

# Every ticket and access token this module sends; none may reach a log.
CREDENTIALS = set()


# --- helpers ---------------------------------------------------------------------------


def live_path(room, **creds):
    for value in creds.values():
        CREDENTIALS.add(value)
    query = urlencode(creds)
    return f"/api/chat/rooms/{room}/live" + (f"?{query}" if query else "")


def ticket(api, user, room="lobby"):
    r = api.post(f"/api/chat/rooms/{room}/ticket", token=user.token)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"ticket", "expires_in", "url"}, body
    assert body["expires_in"] == TICKET_TTL_S
    assert body["url"] == f"/api/chat/rooms/{room}/live?ticket={body['ticket']}"
    CREDENTIALS.add(body["ticket"])
    return body["ticket"]


def post(api, user, room, body, expect=201, **extra):
    r = api.post(f"/api/chat/rooms/{room}/messages", {"body": body, **extra}, token=user.token)
    assert r.status_code == expect, r.text
    m = r.json()["message"]
    assert set(m) == MESSAGE_KEYS, m
    return m


def history(api, user, room, **params):
    r = api.get(f"/api/chat/rooms/{room}/messages?{urlencode(params)}", token=user.token)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def history_after(api, user, room, after):
    """Every message after id `after`, paging by 200."""
    out = []
    while True:
        page = history(api, user, room, after=after, limit=200)
        out += page
        if len(page) < 200:
            return out
        after = page[-1]["id"]


def stored_count(room):
    return int(sql(f"SELECT COUNT(*) FROM messages WHERE room = '{room}'", "chat")[0][0])


def last_id(api, user, room):
    page = history(api, user, room, limit=1)
    return page[-1]["id"] if page else 0


def ws_subscribe(room, **creds):
    ws = websocket.create_connection(WS_BASE + live_path(room, **creds), timeout=5)
    return Subscriber(ws.recv, ws.settimeout, ws.close)


class SseStream:
    """An EventSource client on a requests stream: one `data:` line per event
    (nchan sends each message as one line; `:` lines are comments/pings)."""

    def __init__(self, resp):
        self.resp = resp
        # http.client's response reads lines as they come (requests' iter_lines
        # waits for whole chunks).
        self.fp = resp.raw._fp

    def recv(self):
        data = None
        while True:
            line = self.fp.readline()
            if not line:
                raise ConnectionError("the event stream ended")
            line = line.rstrip(b"\n")
            if line == b"":
                if data is not None:
                    return data
            elif line.startswith(b"data: "):
                data = line[6:].decode()

    def settimeout(self, seconds):
        self.resp.raw._fp.fp.raw._sock.settimeout(seconds)

    def close(self):
        self.resp.close()


def sse_open(room, **creds):
    return requests.get(BASE_URL + live_path(room, **creds), headers={"Accept": "text/event-stream"}, stream=True,
                        timeout=5)


def sse_subscribe(room, **creds):
    r = sse_open(room, **creds)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream"), r.headers
    s = SseStream(r)
    return Subscriber(s.recv, s.settimeout, s.close)


class Subscriber:
    """What both kinds of live subscriber look like to a test: next message
    (parsed; its prev_id, which only live events carry, taken off into
    prev_ids, so that it compares equal to the POST's answer and history)."""

    def __init__(self, recv, settimeout, close):
        self._recv, self._settimeout, self.close = recv, settimeout, close
        self.prev_ids = []

    def next(self, timeout=2.0):
        self._settimeout(timeout)
        m = json.loads(self._recv())
        if "id" in m:
            assert "prev_id" in m, m
            self.prev_ids.append(m.pop("prev_id"))
        return m

    def nothing_within(self, seconds):
        try:
            m = self.next(seconds)
        except (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError,
                requests.exceptions.ConnectionError):
            return True
        raise AssertionError(f"unexpected live message {m}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


SUBSCRIBERS = {"websocket": ws_subscribe, "eventsource": sse_subscribe}


def raw_handshake(path, kind="websocket", source=None, hang_up=False):
    """One subscribe over a plain socket: (status, headers, body). A WebSocket
    handshake is answered 101 (no body) or refused with nginx's reply; an
    EventSource is 200 (headers only are read) or refused. hang_up sends the
    request and closes after that many seconds."""
    sock = socket.create_connection((PUBLIC.hostname, PUBLIC.port), timeout=10,
                                    source_address=(source, 0) if source else None)
    try:
        if kind == "websocket":
            extra = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     f"Sec-WebSocket-Key: {b64encode(os.urandom(16)).decode()}\r\n")
        else:
            extra = "Accept: text/event-stream\r\n"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {PUBLIC.netloc}\r\n{extra}\r\n".encode())
        if hang_up is not False:
            time.sleep(hang_up)
            return None
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed mid-reply: {data!r}")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        if status not in (101, 200):
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
        return status, headers, body
    finally:
        sock.close()


def assert_refused(path, status, code):
    """Both kinds of subscriber are refused with the same JSON error."""
    st, headers, body = raw_handshake(path, "websocket")
    assert st == status, (st, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert json.loads(body)["error"]["code"] == code, body
    assert_error(requests.get(BASE_URL + path, headers={"Accept": "text/event-stream"}, timeout=5), status, code)


@pytest.fixture(scope="module")
def alice(make_user):
    return make_user(display_name="Alice")


@pytest.fixture(scope="module")
def bob(make_user):
    return make_user(display_name="Bob")


@pytest.fixture(scope="module")
def project(api, alice):
    r = api.post("/api/projects", {"name": "chatty"}, token=alice.token)
    assert r.status_code == 201, r.text
    return r.json()["project"]


# --- live delivery ---------------------------------------------------------------------


def test_websocket_and_eventsource_receive_a_post_within_a_second(api, alice, bob):
    with ws_subscribe("lobby", ticket=ticket(api, bob)) as ws, sse_subscribe("lobby", access_token=bob.token) as sse:
        started = time.monotonic()
        sent = post(api, alice, "lobby", "hello, everyone ✓")
        got_ws, got_sse = ws.next(1.0), sse.next(1.0)
        elapsed = time.monotonic() - started
    assert got_ws == sent and got_sse == sent
    assert sent["author_id"] == alice.id and sent["author_name"] == "Alice" and sent["room"] == "lobby"
    assert sent["body"] == "hello, everyone ✓" and sent["client_msg_id"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", sent["created_at"]), sent
    assert elapsed < 1.0, elapsed
    assert history(api, bob, "lobby", before=sent["id"] + 1, limit=1) == [sent]


def test_a_live_message_names_the_one_before_it_and_so_shows_one_never_published(api, alice):
    """prev_id: null for a room's first message, then the id before it in
    the room. A message stored but never published (its worker died, or lost
    its database, in between: made here by writing the row alone) shows as
    the next live message's prev_id, newer than the last one a subscriber
    has: history then has it."""
    r = api.post("/api/projects", {"name": "a new room"}, token=alice.token)
    assert r.status_code == 201, r.text
    room = f"project-{r.json()['project']['id']}"
    with ws_subscribe(room, access_token=alice.token) as ws:
        first = post(api, alice, room, "first in the room")
        assert ws.next(2.0) == first and ws.prev_ids == [None]
        sql("INSERT INTO messages (room, author_id, author_name, body) "
            f"VALUES ('{room}', {alice.id}, 'Alice', 'stored, never published')", "chat")
        lost = history_after(api, alice, room, first["id"])
        assert [m["body"] for m in lost] == ["stored, never published"]
        third = post(api, alice, room, "third")
        assert ws.next(2.0) == third and ws.prev_ids[-1] == lost[0]["id"] > first["id"]
        assert ws.nothing_within(0.3)
    assert history_after(api, alice, room, first["id"]) == [lost[0], third]


def test_concurrent_posts_arrive_in_order_once_and_match_history(api, make_user):
    room = "lobby"
    users = [make_user(display_name=f"Poster {i}") for i in range(4)]
    reader = users[0]
    before = last_id(api, reader, room)
    per_user, threads_per_user = 50, 2
    total = per_user * len(users)
    with ws_subscribe(room, access_token=reader.token) as ws, sse_subscribe(room, ticket=ticket(api, reader)) as sse:

        def send(user, part):
            client = Api(BASE_URL)
            return [post(client, user, room, f"{user.id}:{part}:{i}", client_msg_id=f"c-{part}-{i}")["id"]
                    for i in range(per_user // threads_per_user)]

        with ThreadPoolExecutor(max_workers=len(users) * threads_per_user) as pool:
            jobs = [pool.submit(send, u, p) for u in users for p in range(threads_per_user)]
            posted = sorted(i for j in jobs for i in j.result())
        got_ws = [ws.next(5.0) for _ in range(total)]
        got_sse = [sse.next(5.0) for _ in range(total)]
        assert ws.nothing_within(0.2)
    ids = [m["id"] for m in got_ws]
    assert ids == sorted(set(ids)), "WebSocket: out of order or twice"
    assert ids == posted, "WebSocket: missing or extra"
    assert ws.prev_ids == [before or None] + ids[:-1], "each live message names the one before it"
    assert got_sse == got_ws
    assert history_after(api, reader, room, before) == got_ws


@pytest.mark.parametrize("kind", ["websocket", "eventsource"])
def test_a_reconnecting_subscriber_recovers_the_gap_from_history(api, alice, bob, kind):
    room, subscribe = "lobby", SUBSCRIBERS[kind]
    seen = []
    with subscribe(room, ticket=ticket(api, bob)) as sub:
        for i in range(3):
            post(api, alice, room, f"before {i}")
            seen.append(sub.next())
    missed = [post(api, alice, room, f"while away {i}") for i in range(5)]
    # The recipe: subscribe again, then read history after the last id seen,
    # then live messages, skipping any id already had.
    with subscribe(room, ticket=ticket(api, bob)) as sub:
        later = [post(api, alice, room, f"after {i}") for i in range(3)]
        gap = history(api, bob, room, after=seen[-1]["id"], limit=200)
        have = {m["id"] for m in seen + gap}
        live = [sub.next() for _ in range(3)]
        seen += gap + [m for m in live if m["id"] not in have]
    assert gap[:5] == missed
    assert seen[3:] == missed + later
    assert [m["id"] for m in seen] == sorted({m["id"] for m in seen})


def test_the_largest_and_strangest_bodies_are_delivered_verbatim(api, alice, bob):
    bodies = ["😀" * 4000, "\u0001\"\\" * 1333 + "x", "line\r\nnext\n\ndata: not an event\n\n", " padded  ",
              "\u2028\u2029</script>", "id: 1\nevent: x"]
    with ws_subscribe("lobby", access_token=bob.token) as ws, sse_subscribe("lobby", access_token=bob.token) as sse:
        for body in bodies:
            sent = post(api, alice, "lobby", body)
            assert sent["body"] == body
            assert ws.next() == sent == sse.next()


def test_a_subscriber_cannot_publish(api, alice, bob):
    """A live location only subscribes: a frame a WebSocket client sends
    reaches nobody (nchan hangs up on it), so every message is stored."""
    with ws_subscribe("lobby", access_token=bob.token) as listener:
        ws = websocket.create_connection(WS_BASE + live_path("lobby", access_token=alice.token), timeout=2)
        try:
            ws.send(json.dumps({"id": 10 ** 12, "room": "lobby", "body": "forged"}))
            assert listener.nothing_within(0.5)
        finally:
            ws.close()
        sent = post(api, alice, "lobby", "stored")
        assert listener.next() == sent


# --- refused subscribers -----------------------------------------------------------------


def test_subscribes_without_valid_credentials_are_refused(api, alice):
    assert_refused(live_path("lobby"), 401, "missing_token")
    assert_refused(live_path("lobby", access_token="not.a.jwt"), 401, "invalid_token")
    forged = alice.token[:-4] + ("AAAA" if not alice.token.endswith("AAAA") else "BBBB")
    assert_refused(live_path("lobby", access_token=forged), 401, "invalid_token")
    assert_refused(live_path("lobby", ticket="x" * 43), 401, "invalid_ticket")
    assert_refused(live_path("lobby", ticket=""), 401, "invalid_ticket")
    # an access token is not a ticket and a ticket is not an access token
    assert_refused(live_path("lobby", ticket=alice.token[-86:]), 401, "invalid_ticket")
    assert_refused(live_path("lobby", access_token=ticket(api, alice)), 401, "invalid_token")


def test_a_ticket_for_a_room_that_cannot_exist_is_refused_by_the_authorizer(api, alice, internal):
    """nginx lets only [A-Za-z0-9_-] room names reach the authorizer; asked
    directly (internal listener), a name that is no room's (non-ASCII ones
    were a 500: the room column is ASCII) is an invalid ticket."""
    t = ticket(api, alice)
    for room in ("lobbé", "\u202e", "nowhere", "project-0"):
        assert_error(internal.get(live_path(room, ticket=t)), 401, "invalid_ticket")
    assert internal.get(live_path("lobby", ticket=t)).status_code == 200  # not spent by the refusals


def test_a_ticket_is_single_use_for_one_room_and_expires(api, alice, project):
    proom = f"project-{project['id']}"
    t = ticket(api, alice)
    with ws_subscribe("lobby", ticket=t):
        pass
    assert_refused(live_path("lobby", ticket=t), 401, "invalid_ticket")  # used
    for kind in ("websocket", "eventsource"):
        assert_refused(live_path("lobby", ticket=ticket(api, alice, proom)), 401, "invalid_ticket")  # other room
        with SUBSCRIBERS[kind](proom, ticket=ticket(api, alice, proom)):
            pass
    old = [ticket(api, alice), ticket(api, alice)]
    time.sleep(TICKET_TTL_S + 0.3)
    st, _, body = raw_handshake(live_path("lobby", ticket=old[0]))
    assert (st, json.loads(body)["error"]["code"]) == (401, "invalid_ticket")
    assert_error(sse_open("lobby", ticket=old[1]), 401, "invalid_ticket")


def test_forbidden_and_unknown_rooms_are_refused(api, alice, bob, admin, project):
    proom = f"project-{project['id']}"
    assert_refused(live_path(proom, access_token=bob.token), 403, "forbidden")
    assert_error(api.post(f"/api/chat/rooms/{proom}/ticket", token=bob.token), 403, "forbidden")
    # a project bob may not read, existing or not, is the same to him
    assert_refused(live_path("project-999999999", access_token=bob.token), 403, "forbidden")
    assert_refused(live_path("project-999999999", access_token=admin.token), 404, "room_not_found")
    for room in ("general", "project-", "project-0", "project-01", "project-x", "Lobby", "a" * 65, "lobby.json",
                 "lob%20by"):
        assert_refused(live_path(room, access_token=alice.token), 404, "room_not_found")
    assert_error(requests.get(BASE_URL + live_path("lobby", access_token=alice.token), timeout=5), 400,
                 "not_a_subscriber")
    # another method is 405 with Allow, as on every route (it was 400 not_a_subscriber, or
    # 401 with a subscriber's Accept)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for accept in ({}, {"Accept": "text/event-stream"}):
            r = requests.request(method, BASE_URL + live_path("lobby", access_token=alice.token), headers=accept,
                                 timeout=5)
            assert_error(r, 405, "method_not_allowed")
            assert r.headers["Allow"] == "GET, HEAD"


# --- posting -----------------------------------------------------------------------------


def test_a_retry_with_the_same_client_msg_id_returns_the_message_and_publishes_nothing(api, alice, bob):
    cid = f"retry-{uuid.uuid4().hex}"
    with ws_subscribe("lobby", access_token=bob.token) as ws:
        first = post(api, alice, "lobby", "only once", client_msg_id=cid)
        assert ws.next() == first
        count = stored_count("lobby")
        again = post(api, alice, "lobby", "only once", expect=200, client_msg_id=cid)
        changed = post(api, alice, "lobby", "a different body", expect=200, client_msg_id=cid)
        assert again == first and changed == first
        assert stored_count("lobby") == count
        sentinel = post(api, alice, "lobby", "next")
        assert ws.next() == sentinel  # nothing was published in between
        # the id is unique per author: bob may use the same one
        theirs = post(api, bob, "lobby", "mine", client_msg_id=cid)
        assert theirs["id"] != first["id"] and theirs["client_msg_id"] == cid
        assert ws.next() == theirs
    # retries racing each other still make one message
    cid = f"race-{uuid.uuid4().hex}"

    def send(_):
        r = Api(BASE_URL).post("/api/chat/rooms/lobby/messages", {"body": "racing", "client_msg_id": cid},
                               token=alice.token)
        return r.status_code, r.json()["message"]["id"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(send, range(6)))
    assert sorted(s for s, _ in results) == [200] * 5 + [201]
    assert len({i for _, i in results}) == 1


def test_project_room_access_follows_owner_and_admins(api, make_user, admin, bob):
    owner = make_user(display_name="Owner")
    r = api.post("/api/projects", {"name": "room"}, token=owner.token)
    assert r.status_code == 201, r.text
    pid = r.json()["project"]["id"]
    room = f"project-{pid}"
    with ws_subscribe(room, ticket=ticket(api, owner, room)) as ws, \
            sse_subscribe(room, access_token=admin.token) as sse:
        m1 = post(api, owner, room, "from the owner")
        m2 = post(api, admin, room, "from an admin")
        assert [ws.next(), ws.next()] == [m1, m2] == [sse.next(), sse.next()]
    assert history(api, owner, room) == [m1, m2] == history(api, admin, room)
    assert_error(api.post(f"/api/chat/rooms/{room}/messages", {"body": "let me in"}, token=bob.token), 403,
                 "forbidden")
    assert_error(api.get(f"/api/chat/rooms/{room}/messages", token=bob.token), 403, "forbidden")
    assert stored_count(room) == 2
    # another room's history is not this one's
    assert all(m["room"] == "lobby" for m in history(api, owner, "lobby"))

    assert api.delete(f"/api/projects/{pid}", token=owner.token).status_code == 204

    # a worker may remember a yes for PL_ROOM_ACCESS_CACHE_S, for anyone
    def eventually(call, status, code):
        r = wait_until(lambda: (lambda r: [r] if r.status_code == status else None)(call()),
                       timeout=ACCESS_CACHE_S + 5, message=f"{status} {code}")[0]
        assert_error(r, status, code)

    eventually(lambda: api.post(f"/api/chat/rooms/{room}/messages", {"body": "still here?"}, token=owner.token),
               403, "forbidden")
    eventually(lambda: api.get(f"/api/chat/rooms/{room}/messages", token=owner.token), 403, "forbidden")
    eventually(lambda: api.get(f"/api/chat/rooms/{room}/messages", token=admin.token), 404, "room_not_found")
    eventually(lambda: api.post(f"/api/chat/rooms/{room}/ticket", token=admin.token), 404, "room_not_found")
    wait_until(lambda: raw_handshake(live_path(room, access_token=owner.token))[0] == 403,
               timeout=ACCESS_CACHE_S + 5)
    wait_until(lambda: raw_handshake(live_path(room, access_token=admin.token))[0] == 404,
               timeout=ACCESS_CACHE_S + 5)
    assert_refused(live_path(room, access_token=owner.token), 403, "forbidden")
    assert_refused(live_path(room, access_token=admin.token), 404, "room_not_found")


def test_bad_bodies_are_refused_and_store_nothing(api, alice):
    room = "lobby"
    base = f"{BASE_URL}/api/chat/rooms/{room}/messages"
    auth = {"Authorization": f"Bearer {alice.token}", "Content-Type": "application/json"}
    # the limit is 4,000 characters, not bytes
    assert post(api, alice, room, "é" * 4000)["body"] == "é" * 4000
    assert post(api, alice, room, "x" * 4000)["body"] == "x" * 4000
    count = stored_count(room)
    cases = [
        (json.dumps({"body": "x" * 4001}).encode(), 422, "invalid_field"),
        (json.dumps({"body": "😀" * 4001}).encode(), 422, "invalid_field"),
        (json.dumps({"body": ""}).encode(), 422, "invalid_field"),
        (json.dumps({}).encode(), 422, "missing_field"),
        (json.dumps({"body": 5}).encode(), 422, "invalid_field"),
        (json.dumps({"body": "ok", "client_msg_id": "c" * 65}).encode(), 422, "invalid_field"),
        (b'{"body": "bad \xff\xfe utf-8"}', 400, "invalid_json"),
        (b'{"body": "half \xe2\x82"}', 400, "invalid_json"),
        (json.dumps({"body": "nul \u0000 inside"}).encode(), 422, "invalid_field"),
        (b'{"body": ', 400, "invalid_json"),
        (json.dumps({"body": "x" * (1024 * 1024)}).encode(), 413, "payload_too_large"),
        (json.dumps({"body": "x" * (3 * 1024 * 1024)}).encode(), 413, "payload_too_large"),
    ]
    for data, status, code in cases:
        r = requests.post(base, data=data, headers=auth, timeout=10)
        assert r.status_code == status, (data[:40], r.status_code, r.text[:200])
        body = r.json()
        assert set(body) == {"error"} and body["error"]["message"], body
        if code:
            assert body["error"]["code"] == code, body
    assert stored_count(room) == count
    r = requests.post(base, data=b'{"body":"x"}', headers={"Content-Type": "application/json"}, timeout=10)
    assert_error(r, 401, "missing_token")
    assert stored_count(room) == count


def test_unknown_rooms_are_404_everywhere(api, alice):
    for room in ("general", "project-0", "project-abc", "project-1x", "lobby2"):
        assert_error(api.post(f"/api/chat/rooms/{room}/messages", {"body": "hi"}, token=alice.token), 404,
                     "room_not_found")
        assert_error(api.get(f"/api/chat/rooms/{room}/messages", token=alice.token), 404, "room_not_found")
        assert_error(api.post(f"/api/chat/rooms/{room}/ticket", token=alice.token), 404, "room_not_found")
        assert stored_count(room) == 0


def test_history_pages_in_ascending_order(api, alice):
    room = "lobby"
    sent = [post(api, alice, room, f"page {i}") for i in range(7)]
    ids = [m["id"] for m in sent]
    assert history(api, alice, room, after=ids[0], limit=3) == sent[1:4]
    assert history(api, alice, room, before=ids[-1], limit=3) == sent[3:6]
    assert history(api, alice, room, after=ids[-1]) == []
    assert history(api, alice, room, limit=2) == sent[-2:]
    for q in ("limit=0", "limit=201", "after=-1", "after=x", "before=0", f"after={ids[0]}&before={ids[-1]}"):
        r = api.get(f"/api/chat/rooms/{room}/messages?{q}", token=alice.token)
        assert r.status_code == 400, (q, r.text)
        assert r.json()["error"]["code"] == "invalid_parameter", r.text
    assert_error(api.get(f"/api/chat/rooms/{room}/messages"), 401, "missing_token")


# --- rate limit, nginx workers, logs -----------------------------------------------------


def test_a_flood_of_posts_from_one_user_gets_429_and_no_one_else_does(api, make_user, alice):
    """The chat_post limit counts per user (PL_LIMIT_CHAT_POST_*). The flood's
    bodies are invalid, so it stores nothing: the limit is counted before the
    body is checked."""
    flooder = make_user()
    path = "/api/chat/rooms/lobby/messages"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + flooder.token}
    limited, limited_left, policies = [], [], set()

    def flood(_):
        conn = http.client.HTTPConnection(PUBLIC.hostname, PUBLIC.port, timeout=10)
        try:
            for _ in range(600):
                conn.request("POST", path, body=b'{"body": ""}', headers=headers)
                r = conn.getresponse()
                data = r.read()
                policies.add(r.getheader("RateLimit-Policy"))
                if r.status == 429:
                    limited.append((r.getheader("Content-Type"), r.getheader("Retry-After"), json.loads(data)))
                    limited_left.append(r.getheader("RateLimit"))
                    if len(limited) > 20:
                        return
                else:
                    assert r.status == 422, data
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(flood, range(4)))
    assert limited, "no 429"
    ctype, retry, err = limited[0]
    assert ctype.startswith("application/json") and int(retry) >= 1
    assert err["error"]["code"] == "rate_limited"
    assert len(policies) == 1 and policies.pop().startswith('"chat_post";q='), policies
    assert all(remaining.startswith('"chat_post";r=0;') for remaining in limited_left), limited_left
    # everyone else still posts
    post(api, alice, "lobby", "not limited")


def nginx_workers():
    master = int((VAR / "run" / "nginx.pid").read_text().strip())
    workers = set()
    for p in pathlib.Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == master and stat[0] != "Z":
                workers.add(int(p.name))
    return workers


def crashes():
    log = VAR / "log" / "nginx-error.log"
    return [line for line in log.read_text(errors="replace").splitlines() if "exited on signal" in line] \
        if log.exists() else []


def test_thousands_of_subscribes_leave_every_nginx_worker_alive(api, internal, alice, bob, admin, project):
    workers, crashed = nginx_workers(), crashes()
    pool_crashes = pool_status(internal, "chat")["counters"]["crashes"]
    assert workers
    proom = f"project-{project['id']}"
    lock = threading.Lock()
    outcomes = {}

    def one(i):
        kind = "websocket" if i % 3 else "eventsource"
        pick = i % 10
        if pick < 3:
            case, path, want = "token", live_path("lobby", access_token=bob.token), {101, 200}
        elif pick == 3:
            case, path, want = "ticket", live_path(proom, ticket=ticket(Api(BASE_URL), alice, proom)), {101, 200}
        elif pick == 4:
            case, path, want = "admin", live_path(proom, access_token=admin.token), {101, 200}
        elif pick == 5:
            case, path, want = "forbidden", live_path(proom, access_token=bob.token), {403}
        elif pick == 6:
            case, path, want = "bad token", live_path("lobby", access_token="bad" + str(i)), {401}
        elif pick == 7:
            case, path, want = "bad ticket", live_path("lobby", ticket=f"nope{i}"), {401}
        elif pick == 8 and i % 20 < 10:
            case, path, want = "no credentials", live_path("lobby"), {401}
        else:
            # gone before the answer: the authorize request outlives its
            # client (nchan_authorize_request crashed the worker on this)
            raw_handshake(live_path("lobby", access_token=bob.token), kind, hang_up=(i % 7) / 1000)
            with lock:
                outcomes["hung up"] = outcomes.get("hung up", 0) + 1
            return
        status = raw_handshake(path, kind)[0]
        assert status in want, (case, kind, status)
        with lock:
            outcomes[case] = outcomes.get(case, 0) + 1

    started = time.monotonic()
    # No more at once than the chat pool's max_children: a worker waiting on
    # the projects service does not count against it, and test_pool checks
    # the pool's lifetime peak.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(1000)))
        # and a thousand that hang up a moment after asking, the moment the
        # authorizer is most likely to be busy with them (about 1 in 250
        # crashed a worker under nchan_authorize_request)
        token_path = live_path("lobby", access_token=bob.token)
        list(pool.map(lambda i: raw_handshake(token_path, ("websocket", "eventsource")[i % 2],
                                              hang_up=(1 + i % 3) / 1000), range(1000)))
    assert sum(outcomes.values()) == 1000, outcomes
    assert time.monotonic() - started < 30
    # still serving, with the same workers, none died
    with ws_subscribe("lobby", access_token=bob.token) as ws:
        sent = post(api, alice, "lobby", "still alive")
        assert ws.next() == sent
    assert nginx_workers() == workers
    assert crashes() == crashed
    assert pool_status(internal, "chat")["counters"]["crashes"] == pool_crashes


def test_subscribes_while_the_chat_pool_is_unreachable_get_json_502(api, alice, bob):
    """The authorizer's upstream cannot be connected to (a pool restarting):
    nchan_authorize_request crashed the worker on this; now the subscriber
    gets nginx's JSON 502 and the workers live on."""
    workers, crashed = nginx_workers(), crashes()
    sock = VAR / "run" / "chat.sock"
    away = VAR / "run" / "chat.sock.away"
    os.rename(sock, away)
    try:
        for kind in ("websocket", "eventsource") * 10:
            # no credentials: nginx's error log quotes the request line
            st, headers, body = raw_handshake("/api/chat/rooms/lobby/live", kind)
            assert st == 502, (st, body)
            assert headers["content-type"].startswith("application/json")
            assert json.loads(body)["error"]["code"] == "bad_gateway"
    finally:
        os.rename(away, sock)
    with ws_subscribe("lobby", access_token=bob.token) as ws:
        sent = post(api, alice, "lobby", "back")
        assert ws.next() == sent
    assert nginx_workers() == workers
    assert crashes() == crashed


def test_nothing_failed_to_publish():
    """Rooms nobody listened to included: publishing to them is normal."""
    events = [line.get("event") for line in log_lines("chat")]
    assert "request" in events
    assert "publish_failed" not in events


def test_tokens_and_tickets_never_reach_the_access_log():
    assert len(CREDENTIALS) > 50
    access = (VAR / "log" / "nginx-access.log").read_text(errors="replace")
    assert "/api/chat/rooms/lobby/live" in access  # the subscribes are logged, without their query
    leaked = [c for c in CREDENTIALS if len(c) >= 8 and c in access]
    assert not leaked, f"{len(leaked)} credentials in nginx-access.log"
    for name in ("nginx-error.log", "chat.log"):
        text = (VAR / "log" / name).read_text(errors="replace")
        leaked = [c for c in CREDENTIALS if len(c) >= 8 and c in text]
        assert not leaked, f"{len(leaked)} credentials in {name}"


def test_a_deleted_projects_room_goes_with_it(api, alice, internal):
    """Deleting a project erases its chat room after the answer: every
    message of it and its live subscriptions; other rooms keep theirs. The
    lobby cannot be erased."""
    r = api.post("/api/projects", {"name": "short-lived"}, token=alice.token)
    assert r.status_code == 201, r.text
    proom = f"project-{r.json()['project']['id']}"
    for i in range(3):
        post(api, alice, proom, f"note {i}")
    lobby = stored_count("lobby")
    ws = websocket.create_connection(WS_BASE + live_path(proom, access_token=alice.token), timeout=5)
    try:
        assert api.delete(f"/api/projects/{r.json()['project']['id']}", token=alice.token).status_code == 204
        wait_until(lambda: stored_count(proom) == 0, timeout=5, interval=0.1, message="the room's messages to go")
        # its live subscription was closed within 5 s (a close frame, or the
        # connection ends; nothing for 5 s is a failure)
        ws.settimeout(5)
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            while True:
                if ws.recv_data_frame(True)[0] == websocket.ABNF.OPCODE_CLOSE:
                    raise ConnectionError("closed")
    finally:
        ws.close()
    assert stored_count("lobby") >= lobby
    assert any(ln.get("event") == "room_erased" and proom in ln.get("msg", "") for ln in log_lines("chat"))
    # asked directly: harmless again, and only project rooms
    r = internal.delete(f"/api/chat/rooms/{proom}")
    assert r.status_code == 200 and r.json() == {"deleted": 0}, r.text
    assert_error(internal.delete("/api/chat/rooms/lobby"), 404, "room_not_found")
    assert stored_count("lobby") >= lobby
