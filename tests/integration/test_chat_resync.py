"""Live delivery interrupted: when chat cannot publish (nchan's publisher, or
the Redis several fronts share, unreachable), a post still commits and
answers 201, and its room is marked; once the publisher answers again a
resync event is published in the room (and once more 5 s later), on which
every subscriber reads what it missed from history; then live delivery
resumes, on the same subscriptions (they are not closed: see messages.c).
The chat pool is restarted with a publisher URL nobody answers, then as the
stack runs it. (After test_chat.py, whose last tests want no failed publish.)"""
import time

import pytest

from conftest import log_lines, sql, wait_until
from lifecycle import restart_pool
from test_chat import history_after, post, sse_subscribe, ticket, ws_subscribe

NOBODY = "http://127.0.0.1:9/_pl/chat/publish/"  # the discard port: refused
RESYNC = {"resync": True}


def marked(room):
    return sql(f"SELECT COUNT(*) FROM live_resync WHERE room = '{room}'", "chat")[0][0] == "1"


@pytest.fixture
def room(api, make_user):
    owner = make_user()
    r = api.post("/api/projects", {"name": "resync"}, token=owner.token)
    assert r.status_code == 201, r.text
    return owner, f"project-{r.json()['project']['id']}"


def test_a_failed_publish_sends_the_rooms_subscribers_to_history(api, room):
    owner, name = room
    before = post(api, owner, name, "before")
    with ws_subscribe(name, ticket=ticket(api, owner, name)) as ws, \
            sse_subscribe(name, ticket=ticket(api, owner, name)) as sse:
        restart_pool("chat", PL_NCHAN_PUBLISH_URL=NOBODY)
        missed = post(api, owner, name, "while nobody publishes")  # still stored, still 201
        assert marked(name)
        # nothing more is published in the room: not even once its publisher answers
        again = post(api, owner, name, "while marked")
        assert ws.nothing_within(1.0)
        restart_pool("chat")  # the pool's wake tells the room's subscribers once the publisher answers
        for sub in (ws, sse):
            assert sub.next(10) == RESYNC, "no resync event"
        told = time.monotonic()
        # the recipe: read history after the last message had
        assert history_after(api, owner, name, before["id"]) == [missed, again]
        # told once more about 5 s after the first, then the room is back to live delivery
        for sub in (ws, sse):
            assert sub.next(10) == RESYNC, "no second resync event"
        assert time.monotonic() - told > 3
        wait_until(lambda: not marked(name), timeout=10, message="the room's mark to go")
        live = post(api, owner, name, "live again")
        for sub in (ws, sse):
            assert sub.next(5) == live  # the same subscriptions: never closed
    # and a subscriber that comes afterwards gets it live too
    with ws_subscribe(name, ticket=ticket(api, owner, name)) as late:
        assert post(api, owner, name, "for the late one") == late.next(5)
    events = [line.get("event") for line in log_lines("chat")]
    for event in ("publish_failed", "resync_sent", "resync_done"):
        assert event in events, event
