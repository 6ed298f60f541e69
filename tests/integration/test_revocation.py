"""Revocation that takes effect (issue 15): once accounts revokes a user's
tokens (here: an admin disables the account), every service refuses the
user's older access tokens within 5 s, with no round trip to accounts per
request (each pool follows accounts' revocation feed), and the user's live
chat subscriptions are closed. Everybody else goes on undisturbed."""
import http.client
import time
import uuid

import requests

from conftest import BASE_URL, INTERNAL_URL, assert_error, log_lines, sql, wait_until

HOST, PORT = BASE_URL.split("//")[1].split(":")


def get(path, token):
    return requests.get(BASE_URL + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


class Live:
    """An EventSource subscription to a room, read line by line."""

    def __init__(self, room, token):
        self.conn = http.client.HTTPConnection(HOST, int(PORT), timeout=6)
        self.conn.request("GET", f"/api/chat/rooms/{room}/live?access_token={token}",
                          headers={"Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()

    def until(self, pred):
        """Reads lines until pred(line) (the line) or the stream ends (None);
        a read that waits 6 s fails."""
        while True:
            line = self.resp.fp.readline()
            if not line:
                return None
            if pred(line.decode()):
                return line.decode()

    def close(self):
        self.conn.close()


def test_a_disabled_users_tokens_are_refused_everywhere_within_5_s(make_user, admin, api):
    bob, alice = make_user(display_name="Bob"), make_user(display_name="Alice")
    room_path = "/api/chat/rooms/lobby/messages"
    for path in ("/api/projects", room_path, "/api/accounts/me"):
        assert get(path, bob.token).status_code == 200
    bob_live, alice_live = Live("lobby", bob.token), Live("lobby", alice.token)
    try:
        r = api.patch(f"/api/accounts/users/{bob.id}", {"disabled": True}, token=admin.token)
        assert r.status_code == 200, r.text
        disabled_at = time.monotonic()
        # every service refuses the token it had accepted a moment ago
        for path in ("/api/projects", room_path, "/api/accounts/me"):
            wait_until(lambda p=path: get(p, bob.token).status_code == 401, timeout=5, interval=0.1,
                       message=f"{path} to refuse the disabled user's token")
        assert_error(get("/api/projects", bob.token), 401, "invalid_token")
        # their live subscription was closed (nchan ends the stream: 410 Gone on an EventSource)
        assert bob_live.until(lambda ln: False) is None
        assert time.monotonic() - disabled_at < 5
        # nobody else noticed: Alice's token works and her live subscription carries on
        assert get("/api/projects", alice.token).status_code == 200
        tag = uuid.uuid4().hex
        r = api.post(room_path, {"body": f"after {tag}"}, token=alice.token)
        assert r.status_code == 201, r.text
        assert alice_live.until(lambda ln: tag in ln)
        # enabled again, the old token stays refused; a new login works everywhere
        r = api.patch(f"/api/accounts/users/{bob.id}", {"disabled": False}, token=admin.token)
        assert r.status_code == 200, r.text
        assert get("/api/projects", bob.token).status_code == 401
        fresh = bob.relogin()
        wait_until(lambda: get("/api/projects", fresh.token).status_code == 200, timeout=5, interval=0.1,
                   message="a new token of the enabled user to work")
    finally:
        bob_live.close()
        alice_live.close()


def test_the_feed_is_internal_and_says_where_to_go_on():
    r = requests.get(f"{INTERNAL_URL}/api/accounts/_revocations?after=0", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"revocations", "last_id", "keep_s"} and body["keep_s"] > 0, body
    for e in body["revocations"]:
        assert set(e) == {"id", "user_id", "session_id", "not_before"}, e
    r = requests.get(f"{BASE_URL}/api/accounts/_revocations?after=0", timeout=10)
    assert r.status_code == 404


def feed_reads(request_id):
    """accounts' answers to the revocation feed made while serving one request."""
    return [ln for ln in log_lines("accounts")
            if ln.get("request_id") == request_id and ln.get("handler") == "acc_revocations_list"]


def test_pools_read_the_feed_only_after_a_revocation(make_user, admin, api):
    """On one host accounts signals each revocation (PL_REVOCATION_SIGNAL_FILE,
    set by the runner): a pool whose table is current reads nothing, however
    long it was quiet (past PL_REVOCATION_POLL_MS), and reads the feed for the
    first token it checks after a revocation, which it then refuses."""
    user, victim = make_user(display_name="Quiet"), make_user(display_name="Victim")
    assert get("/api/projects", user.token).status_code == 200
    time.sleep(1.5)  # past the 1 s poll interval: without the signal this would read the feed
    r = get("/api/projects", user.token)
    assert r.status_code == 200
    time.sleep(0.5)  # the log lines are written after the answers
    assert feed_reads(r.headers["X-Request-Id"]) == []
    assert api.patch(f"/api/accounts/users/{victim.id}", {"disabled": True}, token=admin.token).status_code == 200
    r = get("/api/projects", victim.token)
    assert_error(r, 401, "invalid_token")
    assert len(wait_until(lambda: feed_reads(r.headers["X-Request-Id"]) or None, timeout=5,
                          message="the feed read for the first check after the revocation")) == 1


def test_revocations_no_token_can_need_are_purged_after_the_next_revocation(make_user, admin, api):
    """The feed's table does not grow for ever: a revocation more than a day
    old (and past keep_s) goes after the next revocation's answer; a recent
    one stays, and so does the new one."""
    old_user, bob = make_user(), make_user()
    sql("INSERT INTO revocations (user_id, family_id, not_before, created_at) VALUES "
        f"({old_user.id}, NULL, UNIX_TIMESTAMP() - 3 * 86400, NOW(6) - INTERVAL 3 DAY), "
        f"({old_user.id}, NULL, UNIX_TIMESTAMP() - 60, NOW(6) - INTERVAL 60 SECOND)", database="accounts")
    rows = lambda: [int(r[0]) for r in sql(  # noqa: E731
        f"SELECT UNIX_TIMESTAMP() - not_before FROM revocations WHERE user_id IN ({old_user.id}, {bob.id})",
        database="accounts")]
    assert sorted(rows())[-1] >= 3 * 86400
    r = api.patch(f"/api/accounts/users/{bob.id}", {"disabled": True}, token=admin.token)
    assert r.status_code == 200, r.text
    wait_until(lambda: max(rows()) < 86400, timeout=5, interval=0.1, message="the old revocation to be purged")
    ages = rows()
    assert len(ages) == 2 and all(a < 3600 for a in ages), ages  # the recent one and bob's
