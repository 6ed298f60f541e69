"""Live delivery interrupted: when chat cannot publish (nchan's publisher, or
the Redis several fronts share, unreachable), a post still commits and
answers 201, and its room is marked; once the publisher answers again the
room's subscriptions are closed (and once more 5 s later), so that every
subscriber reads what it missed from history; then live delivery resumes.
The chat pool is restarted with a publisher URL nobody answers, then as the
stack runs it. (After test_chat.py, whose last tests want no failed publish.)"""
import time

import pytest
import websocket

from conftest import log_lines, sql, wait_until
from lifecycle import restart_pool
from test_chat import history_after, post, ticket, ws_subscribe

NOBODY = "http://127.0.0.1:9/_pl/chat/publish/"  # the discard port: refused


def marked(room):
    return sql(f"SELECT COUNT(*) FROM live_resync WHERE room = '{room}'", "chat")[0][0] == "1"


def closed_within(sub, seconds):
    """Whether the server closes the subscription within seconds (live
    messages meanwhile are not expected)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            m = sub.next(max(0.1, deadline - time.time()))
        except websocket.WebSocketTimeoutException:
            return False
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError, ValueError):
            return True
        raise AssertionError(f"unexpected live message {m}")
    return False


@pytest.fixture
def room(api, make_user):
    owner = make_user()
    r = api.post("/api/projects", {"name": "resync"}, token=owner.token)
    assert r.status_code == 201, r.text
    return owner, f"project-{r.json()['project']['id']}"


def test_a_failed_publish_sends_the_rooms_subscribers_to_history(api, room):
    owner, name = room
    before = post(api, owner, name, "before")
    sub = ws_subscribe(name, ticket=ticket(api, owner, name))
    try:
        restart_pool("chat", PL_NCHAN_PUBLISH_URL=NOBODY)
        missed = post(api, owner, name, "while nobody publishes")  # still stored, still 201
        assert marked(name)
        # nothing more is published in the room: not even once its publisher answers
        again = post(api, owner, name, "while marked")
        assert sub.nothing_within(1.0)
        restart_pool("chat")  # the pool's wake closes the room's subscriptions once the publisher answers
        assert closed_within(sub, 10), "the subscription was not closed"
    finally:
        sub.close()
    # the recipe: subscribe again, read history after the last message had
    with ws_subscribe(name, ticket=ticket(api, owner, name)) as sub2:
        assert history_after(api, owner, name, before["id"]) == [missed, again]
        # closed once more 5 s after the first, then the room is back to live delivery
        assert closed_within(sub2, 10), "the second close did not come"
    wait_until(lambda: not marked(name), timeout=10, message="the room's mark to go")
    with ws_subscribe(name, ticket=ticket(api, owner, name)) as sub3:
        live = post(api, owner, name, "live again")
        assert sub3.next(5) == live
    events = [line.get("event") for line in log_lines("chat")]
    for event in ("publish_failed", "resync_closed", "resync_done"):
        assert event in events, event
