#!/usr/bin/python3
"""Chat live delivery benchmark (issue 5): WebSocket subscribers on one room,
messages posted through the chat service (stored, then published by nchan).

  /usr/bin/python3 tests/bench/chat_live.py --base URL --internal URL \\
      [--subscribers 200] [--messages 300] [--posters 4]

Subscribers connect to the public listener (--base) with single-use tickets,
like a browser. Messages are posted to the internal listener (--internal);
the bench stack sets PL_LIMIT_CHAT_POST_* out of reach, so what is measured
is the room, not the limit. The room is a fresh project room of the bench user, so
the lobby stays clean. Credentials: PL_ADMIN_EMAIL / PL_ADMIN_PASSWORD if
set, else a user signed up for the run.

Two phases:
  latency     one message at a time, the next when all subscribers have the
              last: post-to-deliver time (POST sent -> frame read by each
              subscriber), p50 / p99 / max over every (message, subscriber)
  nchan       the same, published straight to the room's nchan channel on
              the internal listener (no chat service, no MySQL): what the
              fan-out alone costs; these test messages are not stored
  throughput  --posters concurrent posters send --messages as fast as the
              service takes them: messages per second until the last one
              reached every subscriber, and the latency meanwhile

The subscribers run in their own process (one event loop over raw sockets,
minimal frame parsing) so measuring does not slow the posters; both sides
use CLOCK_MONOTONIC, which is one clock for the whole machine."""
import argparse
import json
import multiprocessing
import os
import resource
import selectors
import socket
import sys
import threading
import time
import uuid

import requests
import websocket

PASSWORD = "chat bench password, not a secret"


def die(msg):
    print(f"chat_live: {msg}", file=sys.stderr)
    sys.exit(1)


def call(session, method, url, token=None, body=None, expect=(200, 201)):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = session.request(method, url, json=body, headers=headers, timeout=30)
    if r.status_code not in expect:
        die(f"{method} {url.split('?')[0]}: {r.status_code} {r.text[:200]}")
    return r.json() if r.content else None


def login(session, internal):
    email, password = os.environ.get("PL_ADMIN_EMAIL"), os.environ.get("PL_ADMIN_PASSWORD")
    if not (email and password):
        email, password = f"chat-bench-{uuid.uuid4().hex[:10]}@example.com", PASSWORD
        call(session, "POST", f"{internal}/api/accounts/signup",
             body={"email": email, "password": password, "display_name": "Chat bench"})
    return call(session, "POST", f"{internal}/api/accounts/login", body={"email": email, "password": password})[
        "access_token"]


# --- the subscribers' process -------------------------------------------------------------


def frames(buf):
    """Complete server frames in buf: [(opcode, payload)], rest of buf."""
    out, i = [], 0
    while len(buf) - i >= 2:
        opcode, n = buf[i] & 0x0F, buf[i + 1] & 0x7F
        head = 2
        if n == 126:
            if len(buf) - i < 4:
                break
            n, head = int.from_bytes(buf[i + 2:i + 4], "big"), 4
        elif n == 127:
            if len(buf) - i < 10:
                break
            n, head = int.from_bytes(buf[i + 2:i + 10], "big"), 10
        if len(buf) - i < head + n:
            break
        out.append((opcode, buf[i + head:i + head + n]))
        i += head + n
    return out, buf[i:]


def message_id(payload):
    # every live event is the stored message, which starts {"id":N,
    start = payload.index(b'"id":') + 5
    return int(payload[start:payload.index(b",", start)])


def subscribers(urls, conn):
    """Connects every url, then reads until told to stop; answers ("wait", id)
    once every subscriber has seen that id; finally sends its receipts."""
    socks = []
    for url in urls:
        ws = websocket.create_connection(url, timeout=30)
        ws.sock.setblocking(False)
        socks.append((ws, ws.sock))
    sel = selectors.DefaultSelector()
    bufs, seen, receipts, closed = [b""] * len(socks), [0] * len(socks), [], 0
    for n, (_, s) in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, n)
    sel.register(conn, selectors.EVENT_READ, -1)
    conn.send(("ready", len(socks)))
    waiting, running = None, True
    while running:
        for key, _ in sel.select(0.5):
            n = key.data
            if n == -1:
                cmd = conn.recv()
                if cmd[0] == "wait":
                    waiting = (cmd[1], time.monotonic() + cmd[2])
                else:
                    running = False
                continue
            try:
                data = key.fileobj.recv(262144)
            except BlockingIOError:
                continue
            t = time.monotonic()
            if not data:
                sel.unregister(key.fileobj)
                closed += 1
                continue
            got, bufs[n] = frames(bufs[n] + data)
            for opcode, payload in got:
                if opcode == 1:
                    mid = message_id(payload)
                    receipts.append((n, mid, t))
                    seen[n] = mid
        if waiting is not None:
            if min(seen) >= waiting[0]:
                conn.send(("ok", 0))
                waiting = None
            elif time.monotonic() > waiting[1]:
                conn.send(("timeout", sum(1 for s in seen if s < waiting[0])))
                waiting = None
    conn.send(("receipts", receipts, closed))
    for ws, _ in socks:
        ws.close()


def wait_all(conn, last_id, timeout=10.0):
    conn.send(("wait", last_id, timeout))
    status, missing = conn.recv()
    if status != "ok":
        die(f"{missing} subscribers never received message {last_id}")


# --- the posters ------------------------------------------------------------------------------


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="public listener, e.g. http://127.0.0.1:8080")
    ap.add_argument("--internal", required=True, help="internal listener, e.g. http://127.0.0.1:8081")
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--messages", type=int, default=300, help="per phase")
    ap.add_argument("--posters", type=int, default=4, help="concurrent posters in the throughput phase")
    args = ap.parse_args()
    base, internal = args.base.rstrip("/"), args.internal.rstrip("/")
    if args.subscribers < 1 or args.messages < 1 or args.posters < 1:
        die("--subscribers, --messages and --posters must be positive")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.subscribers + 256)), hard))

    session = requests.Session()
    token = login(session, internal)
    project = call(session, "POST", f"{internal}/api/projects", token, {"name": "chat bench"})
    pid = (project.get("project") or project)["id"]
    room = f"project-{pid}"
    ws_base = "ws://" + base.split("://", 1)[1]
    urls = [ws_base + call(session, "POST", f"{internal}/api/chat/rooms/{room}/ticket", token)["url"]
            for _ in range(args.subscribers)]

    ours, theirs = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=subscribers, args=(urls, theirs), daemon=True)
    connect_started = time.monotonic()
    proc.start()
    if not ours.poll(120):
        die("the subscribers did not connect within 120 s")
    ready = ours.recv()
    connect_s = time.monotonic() - connect_started
    sent_at, post_ms = {}, []

    def post(s, text):
        t = time.monotonic()
        m = call(s, "POST", f"{internal}/api/chat/rooms/{room}/messages", token, {"body": text})["message"]
        post_ms.append((time.monotonic() - t) * 1000)
        sent_at[m["id"]] = t
        return m["id"]

    try:
        # latency: one at a time
        latency_ids = []
        for i in range(args.messages):
            mid = post(session, f"latency {i}")
            latency_ids.append(mid)
            wait_all(ours, mid)
        latency_post_ms = list(post_ms)

        # throughput: posters as fast as they can
        per = [args.messages // args.posters + (1 if p < args.messages % args.posters else 0)
               for p in range(args.posters)]
        posted = []
        lock = threading.Lock()

        def poster(p):
            s = requests.Session()
            for i in range(per[p]):
                mid = post(s, f"throughput {p}.{i}")
                with lock:
                    posted.append(mid)

        started = time.monotonic()
        threads = [threading.Thread(target=poster, args=(p,)) for p in range(args.posters)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        posted_s = time.monotonic() - started
        if len(posted) != args.messages:
            die("a poster failed")
        wait_all(ours, max(posted), timeout=60)
        delivered_s = time.monotonic() - started

        # nchan alone: ids above every stored one, so each subscriber's
        # sequence stays ascending
        nchan_ids = []
        fake = max(sent_at) + 1_000_000_000
        for i in range(args.messages):
            mid = fake + i
            body = json.dumps({"id": mid, "room": room, "author_id": 0, "author_name": "bench", "body": f"nchan {i}",
                               "client_msg_id": None, "created_at": "1970-01-01T00:00:00.000000Z"})
            t = time.monotonic()
            r = session.post(f"{internal}/_pl/chat/publish/{room}", data=body,
                             headers={"Content-Type": "application/json"}, timeout=30)
            if r.status_code not in (201, 202):
                die(f"nchan publish: {r.status_code} {r.text[:200]}")
            sent_at[mid] = t
            nchan_ids.append(mid)
            wait_all(ours, mid)
    finally:
        ours.send(("stop",))
        _, receipts, closed = ours.recv()
        proc.join(10)
        call(session, "DELETE", f"{internal}/api/projects/{pid}", token, expect=(204,))

    # every subscriber got every message once, in order
    per_sub = {}
    for n, mid, _ in receipts:
        per_sub.setdefault(n, []).append(mid)
    everything = sorted(sent_at)
    broken = sum(1 for n in range(args.subscribers) if per_sub.get(n) != everything)

    lat_set, nchan_set = set(latency_ids), set(nchan_ids)
    lat = [(t - sent_at[mid]) * 1000 for _, mid, t in receipts if mid in lat_set]
    nch = [(t - sent_at[mid]) * 1000 for _, mid, t in receipts if mid in nchan_set]
    busy = [(t - sent_at[mid]) * 1000 for _, mid, t in receipts if mid not in lat_set and mid not in nchan_set]
    print(f"chat live: {ready[1]} WebSocket subscribers on one room ({room}), connected in {connect_s:.1f} s; "
          f"posts through {internal}")
    print(f"{'phase':<12} {'messages':>8} {'deliveries':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'msg/s':>8}")
    print(f"{'latency':<12} {len(latency_ids):>8} {len(lat):>10} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f} "
          f"{max(lat):>8.1f} {'-':>8}")
    print(f"{'nchan only':<12} {len(nchan_ids):>8} {len(nch):>10} {pct(nch, 50):>8.1f} {pct(nch, 99):>8.1f} "
          f"{max(nch):>8.1f} {'-':>8}")
    print(f"{'throughput':<12} {len(posted):>8} {len(busy):>10} {pct(busy, 50):>8.1f} {pct(busy, 99):>8.1f} "
          f"{max(busy):>8.1f} {len(posted) / delivered_s:>8.0f}")
    print(f"throughput: posted in {posted_s:.2f} s by {args.posters} posters ({len(posted) / posted_s:.0f} posts/s), "
          f"all delivered to all after {delivered_s:.2f} s ({len(posted) * ready[1] / delivered_s:.0f} deliveries/s)")
    print(f"latency phase: POST round trip (store + publish) p50 {pct(latency_post_ms, 50):.1f} ms, "
          f"p99 {pct(latency_post_ms, 99):.1f} ms")
    print(f"subscribers with a missing, repeated or out-of-order message: {broken}; closed early: {closed}")
    return 1 if broken or closed else 0


if __name__ == "__main__":
    sys.exit(main())
