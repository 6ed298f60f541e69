#!/usr/bin/python3
"""soak.py: the long reliability run of `./pilotlight soak` (issue 8).

A mixed workload through nginx's public listener from N clients at once
(default 64, each from its own 127.0.0.x address so nginx's per-address rate
limits stay at their production values): logins, project reads, creates,
PATCHes with If-Match and deletes, chat posts with live WebSocket subscribers
and history reads. It runs one phase per scenario, each for --duration
seconds, and injects one kind of fault during each:

  load held        nothing: zero 5xx, zero connection errors
  worker kills     SIGKILL of random workers of every pool, one a second
  master kills     SIGKILL of each pool's master; the gap until it is back
  MariaDB down 5 s stopped (SIGTERM) and started again with its command line
  nginx reloads    `./pilotlight reload` every few seconds
  live cut-offs    live subscribers' sockets cut; they reconnect and read
                   history after the last id they had

After each phase every write that got a 2xx is looked up in MariaDB (as root,
over its socket): it is there exactly once with its content; a write that got
an error is there whole or not at all. Live subscribers must end with every
message of their room, once, in order.

  soak.py run --rows FILE --duration S --clients N   (the stack must run;
          environment as `./pilotlight test` writes it to $PL_VAR/test.env)
  soak.py row --rows FILE --scenario NAME --rc N --seconds S
  soak.py table --rows FILE                           the one table; 1 if a row failed
"""
import argparse
import collections
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.client import RemoteDisconnected
from urllib.parse import urlsplit

import requests
import urllib3
import websocket
from requests.adapters import HTTPAdapter

BASE_URL = os.environ.get("PL_BASE_URL", "http://127.0.0.1:8080")
INTERNAL_URL = os.environ.get("PL_INTERNAL_URL", "http://127.0.0.1:8081")
ROOT = pathlib.Path(os.environ.get("PL_ROOT", pathlib.Path(__file__).resolve().parents[2]))
VAR = pathlib.Path(os.environ.get("PL_VAR", ROOT / "var"))
DB_SOCKET = os.environ.get("PL_DB_SOCKET", str(VAR / "run" / "mysqld.sock"))
SERVICES = ("accounts", "projects", "chat")
WS_BASE = "ws://" + urlsplit(BASE_URL).netloc
PASSWORD = "soak password, long enough"
REQUEST_TIMEOUT = 30.0      # a request that takes longer is a hang: a failure
QUICK_FAILURE_S = 5.0       # a failure a fault may cause must come back within this
RUN_ID = uuid.uuid4().hex[:8]
# Per-client pacing under the production rate limits: chat posts 10 r/s burst
# 40 (per user), logins 5 r/s burst 20 (per address). A 429 is therefore a failure.
CHAT_POST_RATE, CHAT_POST_BURST = 6.0, 20.0
LOGIN_RATE, LOGIN_BURST = 1.0, 5.0


def now():
    return time.monotonic()


def say(msg):
    print(f"soak: {msg}", flush=True)


# --- what happened ------------------------------------------------------------------------


class Rec:
    """One request: endpoint, status (0: no HTTP answer), error, timings."""
    __slots__ = ("ep", "status", "err", "t0", "t1", "ok", "json_ok")

    def __init__(self, ep, status, err, t0, t1, ok, json_ok):
        self.ep, self.status, self.err, self.t0, self.t1, self.ok, self.json_ok = ep, status, err, t0, t1, ok, json_ok

    @property
    def latency(self):
        return self.t1 - self.t0


class Phase:
    def __init__(self, name):
        self.name = name
        self.records = []          # list.append is atomic: no lock needed
        self.writes = []           # (kind, key) of every write that got a 2xx in this phase
        self.events = []           # (time, text) of what the fault injector did
        self.windows = []          # (start, end, statuses allowed, why): failures allowed inside
        self.notes = []
        self.problems = []         # anything that fails the verdict by itself
        self.kills = 0
        self.resent = 0            # requests sent again after a kept-alive connection closed unanswered
        self.started = self.ended = 0.0

    def event(self, text):
        self.events.append((now(), text))
        say(f"  [{self.name}] {text}")


PHASE = Phase("setup")


def set_phase(phase):
    global PHASE
    PHASE = phase


class Bucket:
    """A token bucket: a client keeps under a rate limit by itself."""

    def __init__(self, rate, burst):
        self.rate, self.burst, self.tokens, self.t = rate, burst, burst, now()

    def take(self):
        t = now()
        self.tokens = min(self.burst, self.tokens + (t - self.t) * self.rate)
        self.t = t
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SourceAddressAdapter(HTTPAdapter):
    """Connections from one loopback address (one "client machine")."""

    def __init__(self, source, **kw):
        self._source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self._source, 0)
        return super().init_poolmanager(*args, **kw)


def http(session, method, url, ep, expect, token=None, body=None, headers=None, timeout=REQUEST_TIMEOUT,
         record=True):
    """One request, recorded in the current phase: (response or None, Rec)."""
    h = dict(headers or {})
    data = None
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    t0 = now()
    resp, status, err, json_ok = None, 0, None, False
    for attempt in (1, 2):
        try:
            resp = session.request(method, url, data=data, headers=h, timeout=timeout)
        except requests.ConnectionError as e:
            if attempt == 1 and closed_before_answer(e):
                PHASE.resent += 1       # as a browser does on a kept-alive connection
                continue
            err = f"{type(e).__name__}({closed_before_answer(e) or 'connect'})"
        except requests.RequestException as e:
            err = type(e).__name__
        break
    if resp is not None:
        status = resp.status_code
        if status == 204:
            json_ok = True
        elif resp.headers.get("Content-Type", "").startswith("application/json"):
            try:
                resp.json()
                json_ok = True
            except ValueError:
                pass
    rec = Rec(ep, status, err, t0, now(), status in expect, json_ok)
    if record:
        PHASE.records.append(rec)
    return resp, rec


def closed_before_answer(e):
    """The connection (one kept alive from an earlier request) was closed by
    the server before any answer came: what nginx does to idle kept-alive
    connections when a reload retires its old workers. The request was not
    processed, and HTTP clients (browsers first) send it again on a new
    connection (RFC 9112 section 9.3.1). Returns the cause's name, or None."""
    cause = e.args[0] if e.args else None
    if isinstance(cause, urllib3.exceptions.ProtocolError) and len(cause.args) > 1:
        inner = cause.args[1]
        if isinstance(inner, (RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            return type(inner).__name__
    return None


def sql(statement):
    cmd = ["mariadb", "--no-defaults", f"--socket={DB_SOCKET}", "-u", "root", "--batch", "--skip-column-names",
           "--default-character-set=utf8mb4", "-e", statement]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


# --- the clients --------------------------------------------------------------------------


class Project:
    def __init__(self, pid, version, content):
        self.id, self.version = pid, version
        self.content = content          # (name, description) of the last write that got a 2xx
        self.pending = []               # contents of failed PATCHes since then (may have applied)
        self.acked_patches = 0
        self.failed_patches = 0
        self.dirty = False              # a write failed: read it again before the next PATCH
        self.delete_failed = False      # a DELETE failed: it may be gone


class Client:
    def __init__(self, cid, nclients):
        self.name = f"client-{cid}"
        self.cid = cid
        source = f"127.0.{1 + (cid + 1) // 254}.{1 + (cid + 1) % 254}" if nclients > 1 else "127.0.0.1"
        self.s = requests.Session()
        adapter = SourceAddressAdapter(source, pool_connections=1, pool_maxsize=2)
        self.s.mount("http://", adapter)
        self.email = f"soak-{RUN_ID}-{cid}@example.com"
        self.token = None
        self.user_id = None
        self.projects = {}              # id -> Project, not deleted
        self.home = None                # a project never deleted: its chat room
        self.deleted = set()            # ids whose DELETE got 204
        self.gone = set()               # ids whose DELETE failed but that answer 404 since
        self.failed_creates = []        # contents of creates that got an error
        self.sent = {}                  # client_msg_id -> (room, body, acked message id or None)
        self.seq = 0
        self.chat_bucket = Bucket(CHAT_POST_RATE, CHAT_POST_BURST)
        self.login_bucket = Bucket(LOGIN_RATE, LOGIN_BURST)
        self.stop = threading.Event()

    def req(self, method, path, ep, expect, body=None, headers=None, auth=True):
        return http(self.s, method, BASE_URL + path, ep, expect, token=self.token if auth else None, body=body,
                    headers=headers)

    def next_seq(self):
        self.seq += 1
        return self.seq

    # set-up: an account, a login, a home project (retried: faults are not on yet)
    def setup(self):
        r, rec = self.req("POST", "/api/accounts/signup", "POST /accounts/signup", {201},
                          {"email": self.email, "password": PASSWORD, "display_name": f"Soak {self.cid}"}, auth=False)
        if not rec.ok:
            raise RuntimeError(f"signup failed: {rec.status} {rec.err} {r.text[:200] if r is not None else ''}")
        self.login(required=True)
        p = self.create(required=True)
        self.home = p.id

    def login(self, required=False):
        r, rec = self.req("POST", "/api/accounts/login", "POST /accounts/login", {200},
                          {"email": self.email, "password": PASSWORD}, auth=False)
        if rec.ok:
            body = r.json()
            self.token, self.user_id = body["access_token"], body["user"]["id"]
        elif required:
            raise RuntimeError(f"login failed: {rec.status} {rec.err}")

    def create(self, required=False):
        n = self.next_seq()
        content = (f"soak {self.cid}-{n}", f"created {RUN_ID} {self.cid}-{n} {uuid.uuid4().hex} ✓")
        r, rec = self.req("POST", "/api/projects", "POST /projects", {201},
                          {"name": content[0], "description": content[1]})
        if not rec.ok:
            if required:
                raise RuntimeError(f"project create failed: {rec.status} {rec.err}")
            self.failed_creates.append(content)
            return None
        p = r.json()["project"]
        if (p["name"], p["description"]) != content:
            PHASE.problems.append(f"create of {content[0]} answered other content: {p['name']!r}")
        proj = Project(p["id"], p["version"], content)
        self.projects[proj.id] = proj
        PHASE.writes.append(("project", (self.cid, proj.id)))
        return proj

    def pick_project(self, deletable=False):
        ids = [i for i in self.projects if not deletable or i != self.home]
        return self.projects[random.choice(ids)] if ids else None

    def read(self, proj):
        expect = {200, 404} if proj.delete_failed else {200}
        r, rec = self.req("GET", f"/api/projects/{proj.id}", "GET /projects/{id}", expect)
        if rec.status == 200:
            proj.version = r.json()["project"]["version"]
            proj.dirty = False
        elif rec.status == 404 and proj.delete_failed:
            del self.projects[proj.id]      # the failed DELETE did happen: checked against the DB later
            self.gone.add(proj.id)

    def patch(self, proj):
        if proj.dirty:
            return self.read(proj)
        n = self.next_seq()
        content = (f"soak {self.cid}-{n}", f"patched {RUN_ID} {self.cid}-{n} {uuid.uuid4().hex} ✓")
        r, rec = self.req("PATCH", f"/api/projects/{proj.id}", "PATCH /projects/{id}", {200},
                          {"name": content[0], "description": content[1]}, headers={"If-Match": f'"{proj.version}"'})
        if rec.ok:
            p = r.json()["project"]
            if (p["name"], p["description"]) != content or p["version"] != proj.version + 1:
                PHASE.problems.append(f"PATCH of project {proj.id} answered {p['name']!r} v{p['version']}, "
                                      f"sent {content[0]!r} on v{proj.version}")
            proj.version, proj.content, proj.pending = p["version"], content, []
            proj.acked_patches += 1
            PHASE.writes.append(("project", (self.cid, proj.id)))
        else:
            proj.failed_patches += 1
            proj.pending.append(content)
            proj.dirty = True

    def delete(self, proj):
        if proj.dirty:
            return self.read(proj)
        r, rec = self.req("DELETE", f"/api/projects/{proj.id}", "DELETE /projects/{id}", {204})
        if rec.ok:
            del self.projects[proj.id]
            self.deleted.add(proj.id)
            PHASE.writes.append(("deleted", (self.cid, proj.id)))
        else:
            proj.delete_failed = proj.dirty = True

    def post(self):
        if not self.chat_bucket.take():
            return self.history()
        room = f"project-{self.home}" if random.random() < 0.7 else "lobby"
        n = self.next_seq()
        cmid = f"{RUN_ID}-{self.cid}-{n}"
        body = f"soak {self.cid}-{n} {uuid.uuid4().hex} ✓ é"
        r, rec = self.req("POST", f"/api/chat/rooms/{room}/messages", "POST /chat/rooms/{room}/messages", {201},
                          {"body": body, "client_msg_id": cmid})
        if rec.ok:
            m = r.json()["message"]
            if m["body"] != body or m["client_msg_id"] != cmid or m["room"] != room:
                PHASE.problems.append(f"chat post {cmid} answered other content")
            self.sent[cmid] = (room, body, m["id"])
            PHASE.writes.append(("message", (self.cid, cmid)))
        else:
            self.sent[cmid] = (room, body, None)

    def history(self):
        room = f"project-{self.home}" if random.random() < 0.5 else "lobby"
        self.req("GET", f"/api/chat/rooms/{room}/messages?limit=20", "GET /chat/rooms/{room}/messages", {200})

    def step(self):
        x = random.random() * 100
        if x < 28:
            p = self.pick_project()
            if p:
                self.read(p)
        elif x < 36:
            self.req("GET", "/api/projects?limit=20", "GET /projects", {200})
        elif x < 51:
            p = self.pick_project()
            if p:
                self.patch(p)
        elif x < 55:
            if len(self.projects) < 12:
                self.create()
        elif x < 58:
            p = self.pick_project(deletable=True)
            if p:
                self.delete(p)
        elif x < 78:
            self.post()
        elif x < 88:
            self.history()
        elif x < 97:
            self.req("GET", "/api/accounts/me", "GET /accounts/me", {200})
        elif self.login_bucket.take():
            self.login()

    def run(self):
        while not self.stop.is_set():
            try:
                self.step()
            except Exception as e:  # a bug here must not end the thread silently
                PHASE.problems.append(f"client {self.cid}: {type(e).__name__}: {e}")
                time.sleep(0.1)


# --- live subscribers ---------------------------------------------------------------------


class Subscriber(threading.Thread):
    """A WebSocket subscriber of one room that follows the recipe: subscribe,
    then read history after the last id it has, then live messages, skipping
    ids it already has. Everything it ends up with is checked against the DB."""

    def __init__(self, client, room, sid):
        super().__init__(name=f"sub-{sid}", daemon=True)
        self.client, self.room, self.sid = client, room, sid
        self.s = requests.Session()
        self.stop = threading.Event()
        self.ws = None
        self.start_id = None
        self.ids = []               # every message id it has, in the order it got them
        self.have = set()
        self.live = self.from_history = self.overlap = 0
        self.dup_live = self.out_of_order = 0
        self.cuts = self.disconnects = self.connects = 0
        self.lock = threading.Lock()

    def token(self):
        return self.client.token

    def latest_id(self):
        r, rec = http(self.s, "GET", f"{BASE_URL}/api/chat/rooms/{self.room}/messages?limit=1",
                      "GET /chat/rooms/{room}/messages (live)", {200}, token=self.token())
        if not rec.ok:
            return None
        msgs = r.json()["messages"]
        return msgs[-1]["id"] if msgs else 0

    def add(self, m):
        i = m["id"]
        if i <= self.start_id or i in self.have:
            return False
        if self.ids and i < self.ids[-1]:
            self.out_of_order += 1
        self.ids.append(i)
        self.have.add(i)
        return True

    def fill_gap(self):
        after = self.ids[-1] if self.ids else self.start_id
        if after == 0:      # the room was empty when it started (`after` must be 1 or more): page back
            msgs, before = [], ""
            while True:
                r, rec = http(self.s, "GET", f"{BASE_URL}/api/chat/rooms/{self.room}/messages?limit=200{before}",
                              "GET /chat/rooms/{room}/messages (live)", {200}, token=self.token())
                if not rec.ok:
                    return False
                page = r.json()["messages"]
                msgs = page + msgs
                if len(page) < 200:
                    break
                before = f"&before={page[0]['id']}"
            for m in msgs:
                if self.add(m):
                    self.from_history += 1
            return True
        while True:
            r, rec = http(self.s, "GET", f"{BASE_URL}/api/chat/rooms/{self.room}/messages?after={after}&limit=200",
                          "GET /chat/rooms/{room}/messages (live)", {200}, token=self.token())
            if not rec.ok:
                return False
            page = r.json()["messages"]
            for m in page:
                if self.add(m):
                    self.from_history += 1
            if len(page) < 200:
                return True
            after = page[-1]["id"]

    def connect(self):
        r, rec = http(self.s, "POST", f"{BASE_URL}/api/chat/rooms/{self.room}/ticket", "POST /chat/rooms/{room}/ticket",
                      {201}, token=self.token())
        if not rec.ok:
            return False
        t0 = now()
        try:
            ws = websocket.create_connection(f"{WS_BASE}/api/chat/rooms/{self.room}/live?ticket={r.json()['ticket']}",
                                             timeout=10)
        except (websocket.WebSocketException, OSError) as e:
            status = getattr(e, "status_code", 0) or 0
            PHASE.records.append(Rec("WS /chat/rooms/{room}/live", status, type(e).__name__, t0, now(), False, False))
            return False
        PHASE.records.append(Rec("WS /chat/rooms/{room}/live", 101, None, t0, now(), True, True))
        self.connects += 1
        ws.settimeout(0.5)
        with self.lock:
            self.ws = ws
        if not self.fill_gap():
            self.drop()
            return False
        return True

    def drop(self):
        with self.lock:
            ws, self.ws = self.ws, None
        if ws is not None:
            try:
                ws.close(timeout=0.2)
            except Exception:
                pass

    def cut(self):
        """Cuts the connection under the subscriber's feet (no close frame)."""
        with self.lock:
            ws = self.ws
            if ws is None:
                return False
            self.cuts += 1
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return True

    def run(self):
        while self.start_id is None and not self.stop.is_set():
            self.start_id = self.latest_id()
            if self.start_id is None:
                time.sleep(0.5)
        while not self.stop.is_set():
            if self.ws is None:
                if not self.connect():
                    time.sleep(0.5)
                    continue
            seen_here = set()
            try:
                while not self.stop.is_set():
                    try:
                        data = self.ws.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if not data:
                        raise websocket.WebSocketConnectionClosedException("empty frame")
                    m = json.loads(data)
                    if m == {"resync": True}:  # delivery was interrupted: read history after the last one
                        if not self.fill_gap():
                            raise ValueError("history unread after a resync event")
                        continue
                    last = self.ids[-1] if self.ids else self.start_id
                    if m.get("prev_id") is not None and m["prev_id"] > last:  # one stored, never published
                        if not self.fill_gap():
                            raise ValueError("history unread after a gap named by prev_id")
                        continue
                    if m["id"] in seen_here:
                        self.dup_live += 1
                    seen_here.add(m["id"])
                    if self.add(m):
                        self.live += 1
                    elif m["id"] > self.start_id:
                        self.overlap += 1
            except (websocket.WebSocketException, OSError, ValueError, AttributeError):
                self.disconnects += 1
                self.drop()
                time.sleep(random.uniform(0.3, 1.0))    # messages go on meanwhile: a gap to recover
        self.drop()


# --- the fault injectors ------------------------------------------------------------------


def proc_stat(pid):
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None, None


def alive(pid):
    return proc_stat(pid)[0] not in (None, "Z", "X")


def comm(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def master_pid(svc):
    try:
        pid = int((VAR / "run" / f"{svc}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) and comm(pid) == f"pl-{svc}" else None


def masters():
    return {svc: master_pid(svc) for svc in SERVICES}


INTERNAL = requests.Session()


def health(svc, base=INTERNAL_URL, timeout=2.0):
    try:
        return INTERNAL.get(f"{base}/api/{svc}/health", timeout=timeout).status_code
    except requests.RequestException:
        return 0


def pilotlight(*args, timeout=300):
    return subprocess.run([str(ROOT / "pilotlight"), *args], capture_output=True, text=True, timeout=timeout)


def kill_workers(phase, stop, interval=1.0):
    """SIGKILL a random live worker of each pool in turn (pids from _status)."""
    turn = 0
    while not stop.wait(interval):
        svc = SERVICES[turn % len(SERVICES)]
        turn += 1
        master = master_pid(svc)
        try:
            st = INTERNAL.get(f"{INTERNAL_URL}/api/{svc}/_status", timeout=5).json()
        except (requests.RequestException, ValueError):
            phase.event(f"{svc}: _status did not answer")
            continue
        pids = [w["pid"] for w in st.get("worker_list", []) if proc_stat(w["pid"])[1] == master and alive(w["pid"])]
        if not pids:
            continue
        pid = random.choice(pids)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        phase.kills += 1
    phase.event(f"{phase.kills} workers killed")


def kill_masters(phase, stop, duration):
    """SIGKILL each pool's master once, and time the way back."""
    gaps = {}
    pause = max(2.0, duration / 4)
    for svc in SERVICES:
        time.sleep(pause)       # every pool's master, however long it takes
        old = master_pid(svc)
        if old is None:
            phase.problems.append(f"{svc}: no master to kill")
            continue
        t0 = now()
        os.kill(old, signal.SIGKILL)
        phase.kills += 1
        back = None
        while now() - t0 < 20:
            new = master_pid(svc)
            if new is not None and new != old and health(svc, timeout=1.0) == 200:
                back = now()
                break
            time.sleep(0.05)
        if back is None:
            phase.problems.append(f"{svc}: the master did not come back within 20 s (no supervisor?)")
            phase.event(f"{svc}: master {old} killed; not back after 20 s: `./pilotlight up` restores it")
            r = pilotlight("up")
            back = now()
            if r.returncode != 0:
                phase.problems.append(f"./pilotlight up failed: {r.stderr[-300:]}")
            gaps[svc] = None
        else:
            gaps[svc] = back - t0
            phase.event(f"{svc}: master {old} killed; master {master_pid(svc)} answers health after "
                        f"{gaps[svc]:.2f} s")
    phase.gaps = gaps


def db_outage(phase, stop, duration, down_s=5.0):
    """Stops MariaDB (SIGTERM) for down_s seconds and starts it again the way
    ./pilotlight does; no pool may restart meanwhile."""
    time.sleep(max(2.0, duration / 3))
    before = masters()
    pid = int((VAR / "run" / "mysqld.pid").read_text().strip())
    cmdline = [a.decode() for a in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")]
    t0 = now()
    os.kill(pid, signal.SIGTERM)
    while alive(pid) and now() - t0 < 60:
        time.sleep(0.05)
    t_down = now()
    phase.event(f"MariaDB {pid} stopped ({t_down - t0:.1f} s to shut down)")
    time.sleep(min(1.0, down_s / 2))
    codes = {svc: health(svc) for svc in SERVICES}
    if set(codes.values()) != {503}:
        phase.problems.append(f"health while MariaDB was down: {codes} (want 503 everywhere)")
    time.sleep(max(0.0, down_s - (now() - t_down)))
    with open(VAR / "log" / "mysqld.log", "ab") as log:
        subprocess.run(["setsid", "-f", *cmdline], stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True)
    while now() - t_down < 90:
        if subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={DB_SOCKET}", "--connect-timeout=2", "ping"],
                          capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    t_up = now()
    phase.event(f"MariaDB started again after {t_up - t_down:.1f} s down")
    phase.windows.append((t0, t_up + 3.0, {503}, "MariaDB down"))
    recovered = None
    while now() - t_up < 30:
        if all(health(svc) == 200 for svc in SERVICES):
            recovered = now() - t_up
            break
        time.sleep(0.1)
    if recovered is None:
        phase.problems.append("the services did not answer health 200 within 30 s of MariaDB's return")
    else:
        phase.event(f"every service healthy {recovered:.2f} s after MariaDB answered")
    after = masters()
    if after != before:
        phase.problems.append(f"pool masters changed across the outage: {before} -> {after}")
    phase.db_down_s = t_up - t_down


def reload_nginx(phase, stop, duration):
    n = 0
    interval = max(3.0, duration / 5)
    while not stop.wait(interval):
        t0 = now()
        r = pilotlight("reload", timeout=120)
        n += 1
        if r.returncode != 0:
            phase.problems.append(f"./pilotlight reload failed: {r.stderr[-300:]}")
        phase.event(f"reload {n}: {now() - t0:.1f} s")
    phase.reloads = n


def cut_subscribers(phase, stop, subscribers, interval=2.0):
    n = 0
    while not stop.wait(interval):
        if random.choice(subscribers).cut():
            n += 1
    phase.event(f"{n} live subscribers cut off")


# --- checks -------------------------------------------------------------------------------


STORED_ANYWAY = set()      # projects whose create got an error but was committed (noted once)


def check_writes(phase, clients):
    """Every write that got a 2xx is in MariaDB exactly once with its content;
    a write that got an error is there whole or not at all. Returns the set of
    keys found good."""
    good = set()
    owners = {c.user_id: c for c in clients}
    ids = ",".join(str(i) for i in owners)
    rows = sql(f"SELECT id, owner_id, name, description, version FROM projects.projects WHERE owner_id IN ({ids})")
    by_owner = collections.defaultdict(dict)
    for pid, owner, name, desc, version in rows:
        by_owner[int(owner)][int(pid)] = ((name, desc), int(version))
    for c in clients:
        stored = by_owner[c.user_id]
        for pid in c.deleted:
            if pid in stored:
                phase.problems.append(f"project {pid}: its DELETE got 204 but the row is there")
            else:
                good.add(("deleted", (c.cid, pid)))
                good.add(("project", (c.cid, pid)))     # it was there until its acknowledged DELETE
        known = set()
        for pid, p in c.projects.items():
            known.add(pid)
            if pid not in stored:
                if not p.delete_failed:
                    phase.problems.append(f"project {pid} (acknowledged) is missing")
                else:
                    good.add(("project", (c.cid, pid)))     # a DELETE that got an error did happen
                continue
            content, version = stored[pid]
            applied = version - 1
            if content != p.content and content not in p.pending:
                phase.problems.append(f"project {pid}: stored {content[0]!r} is neither the last acknowledged "
                                      f"write nor a failed one after it")
            elif not p.acked_patches <= applied <= p.acked_patches + p.failed_patches:
                phase.problems.append(f"project {pid}: version {version} after {p.acked_patches} acknowledged "
                                      f"and {p.failed_patches} failed PATCHes")
            else:
                good.add(("project", (c.cid, pid)))
        # rows nobody was told about: only failed creates, each at most once, whole
        failed = list(c.failed_creates)
        for pid in c.gone:
            if pid in stored:
                phase.problems.append(f"project {pid} answered 404 after a failed DELETE but is stored")
            else:
                good.add(("project", (c.cid, pid)))
        for pid, (content, version) in stored.items():
            if pid in known or pid in c.deleted or pid in c.gone:
                continue
            if content in failed and version == 1:
                failed.remove(content)
                if pid not in STORED_ANYWAY:
                    STORED_ANYWAY.add(pid)
                    phase.notes.append(f"project {pid}: a create that got an error is stored (whole)")
            else:
                phase.problems.append(f"project {pid} ({content[0]!r}, v{version}) was never acknowledged")
    # chat: by client_msg_id
    rows = sql("SELECT id, room, author_id, body, client_msg_id FROM chat.messages "
               f"WHERE client_msg_id LIKE '{RUN_ID}-%'")
    stored = collections.defaultdict(list)
    for mid, room, author, body, cmid in rows:
        stored[cmid].append((int(mid), room, int(author), body))
    sent = {}
    for c in clients:
        for cmid, (room, body, mid) in c.sent.items():
            sent[cmid] = (c, room, body, mid)
    for cmid, got in stored.items():
        if cmid not in sent:
            phase.problems.append(f"chat message {cmid} stored but never sent")
        elif len(got) != 1:
            phase.problems.append(f"chat message {cmid} stored {len(got)} times")
    for cmid, (c, room, body, mid) in sent.items():
        got = stored.get(cmid, [])
        if mid is not None:
            if got == [(mid, room, c.user_id, body)]:
                good.add(("message", (c.cid, cmid)))
            else:
                phase.problems.append(f"chat message {cmid} (acknowledged as id {mid}) stored as {got}")
        elif got and got[0][1:] != (room, c.user_id, body):
            phase.problems.append(f"chat message {cmid} that got an error is stored altered: {got}")
    return good


def settle_subscribers(phase, subscribers, clients, timeout=10.0):
    """Waits until each subscriber has its room's messages, then checks them:
    every stored message after the one it started from, once, in order. A
    message whose post got an error may be stored but never published (the
    worker died, or MariaDB went away, between the commit and the publish):
    a connected subscriber cannot get it live, only from history when it
    reconnects. Those are counted apart, not as lost."""
    failed_posts = {cmid for c in clients for cmid, (_, _, mid) in c.sent.items() if mid is None}
    unpublishable = {int(mid) for mid, cmid in sql("SELECT id, client_msg_id FROM chat.messages "
                                                  f"WHERE client_msg_id LIKE '{RUN_ID}-%'") if cmid in failed_posts}
    deadline = now() + timeout
    for sub in subscribers:
        if sub.start_id is None:
            phase.problems.append(f"subscriber {sub.sid} ({sub.room}) never started")
            continue
        want = [int(r[0]) for r in sql(f"SELECT id FROM chat.messages WHERE room = '{sub.room}' "
                                       f"AND id > {sub.start_id} ORDER BY id")]
        while now() < deadline and not set(want) - unpublishable <= sub.have:
            time.sleep(0.1)
        sub.stop.set()
    for sub in subscribers:
        sub.join(timeout=5)
    total = {"live": 0, "history": 0, "missing": 0, "dup": 0, "extra": 0, "unpublished": 0}
    for sub in subscribers:
        if sub.start_id is None:
            continue
        want = [int(r[0]) for r in sql(f"SELECT id FROM chat.messages WHERE room = '{sub.room}' "
                                       f"AND id > {sub.start_id} ORDER BY id")]
        missing = sorted(set(want) - sub.have - unpublishable)
        total["unpublished"] += len((set(want) - sub.have) & unpublishable)
        extra = sorted(sub.have - set(want))
        dups = len(sub.ids) - len(set(sub.ids)) + sub.dup_live
        total["live"] += sub.live
        total["history"] += sub.from_history
        total["missing"] += len(missing)
        total["dup"] += dups
        total["extra"] += len(extra)
        if missing:
            phase.problems.append(f"subscriber {sub.sid} ({sub.room}): {len(missing)} messages missing, "
                                  f"e.g. {missing[:5]}")
        if extra:
            phase.problems.append(f"subscriber {sub.sid} ({sub.room}): {len(extra)} ids not stored: {extra[:5]}")
        if dups:
            phase.problems.append(f"subscriber {sub.sid} ({sub.room}): {dups} duplicated deliveries")
        if sub.out_of_order or sub.ids != sorted(sub.ids):
            phase.problems.append(f"subscriber {sub.sid} ({sub.room}): messages out of order")
    cuts = sum(s.cuts for s in subscribers)
    disc = sum(s.disconnects for s in subscribers)
    phase.notes.append(f"live: {len(subscribers)} subscribers, {total['live']} messages live, "
                       f"{total['history']} from history after {disc} disconnects ({cuts} cut on purpose), "
                       f"{total['missing']} missing, {total['dup']} duplicated")
    if total["unpublished"]:
        phase.notes.append(f"live: {total['unpublished']} deliveries never made of messages whose post got an "
                           f"error but which were stored (history has them)")
    phase.live = total


# --- a phase ------------------------------------------------------------------------------


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def judge(phase):
    """Failures allowed: inside a fault's window with an allowed status, as
    JSON, quickly; worker kills: at most one per kill. Returns (seen, bad)."""
    failures = [r for r in phase.records if not r.ok]
    bad = []
    for r in failures:
        inside = any(a - 0.05 <= r.t1 and r.t0 <= b and r.status in st for a, b, st, _ in phase.windows)
        if phase.name == "worker kills":
            inside = r.status == 502
        if not inside:
            bad.append(r)
        elif not r.json_ok:
            bad.append(r)
            phase.problems.append(f"{r.ep}: a {r.status} that is not JSON")
        elif r.latency > QUICK_FAILURE_S:
            bad.append(r)
            phase.problems.append(f"{r.ep}: a {r.status} after {r.latency:.1f} s (a hang, not a quick failure)")
    if failures:
        slowest = max(r.latency for r in failures)
        kinds = collections.Counter(f"{r.ep} {r.status or r.err}" for r in failures)
        phase.notes.append(f"{len(failures)} failed requests, answered within {slowest * 1000:.0f} ms at most: "
                           + ", ".join(f"{k} x{v}" for k, v in kinds.most_common(6)))
    if phase.name == "worker kills" and len(failures) > phase.kills:
        phase.problems.append(f"{len(failures)} failed requests for {phase.kills} workers killed")
    return len(failures), bad


def report_phase(phase):
    recs = phase.records
    secs = max(phase.ended - phase.started, 1e-9)
    say(f"--- {phase.name}: {len(recs)} requests in {secs:.0f} s ({len(recs) / secs:.0f}/s)")
    by_ep = collections.defaultdict(list)
    statuses = collections.Counter()
    for r in recs:
        by_ep[r.ep].append(r)
        statuses[r.status if r.status else f"conn:{r.err}"] += 1
    say("    statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))))
    say(f"    {'endpoint':42} {'requests':>8} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}  errors by status")
    for ep in sorted(by_ep):
        rs = by_ep[ep]
        lat = sorted(r.latency * 1000 for r in rs)
        errs = collections.Counter(r.status if r.status else f"conn:{r.err}" for r in rs if not r.ok)
        say(f"    {ep:42} {len(rs):8} {sum(errs.values()):7} {percentile(lat, .5):8.1f} {percentile(lat, .99):8.1f}  "
            + ", ".join(f"{k}: {v}" for k, v in sorted(errs.items(), key=lambda kv: str(kv[0]))))
    for t, text in phase.events:
        say(f"    at {t - phase.started:5.1f} s: {text}")
    if phase.resent:
        say(f"    note: {phase.resent} requests sent again: their kept-alive connection was closed "
            f"before any answer")
    for n in phase.notes:
        say(f"    note: {n}")
    for p in phase.problems[:20]:
        say(f"    PROBLEM: {p}")
    if len(phase.problems) > 20:
        say(f"    ... and {len(phase.problems) - 20} more problems")


def run_phase(name, clients, duration, fault=None, nsubs=4):
    phase = Phase(name)
    set_phase(phase)
    say(f"=== {name} ({duration} s, {len(clients)} clients)")
    subs = []
    rooms = ["lobby", "lobby"] + [f"project-{c.home}" for c in clients[:max(0, nsubs - 2)]]
    for i, room in enumerate(rooms[:nsubs]):
        owner = clients[(i - 2) % len(clients)] if room != "lobby" else clients[i % len(clients)]
        subs.append(Subscriber(owner, room, i))
    for s in subs:
        s.start()
    deadline = now() + 10
    while now() < deadline and any(s.start_id is None or s.connects == 0 for s in subs):
        time.sleep(0.05)
    for c in clients:
        c.stop = threading.Event()
    threads = [threading.Thread(target=c.run, name=c.name, daemon=True) for c in clients]
    phase.started = now()
    for t in threads:
        t.start()
    stop = threading.Event()
    injector = None
    if fault is not None:
        injector = threading.Thread(target=fault, args=(phase, stop, subs), daemon=True)
        injector.start()
    time.sleep(duration)
    stop.set()          # periodic faults end now; a one-shot fault runs to its end, under load
    if injector is not None:
        injector.join(timeout=300)
    for c in clients:
        c.stop.set()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT + 5)
    phase.ended = now()
    settle_subscribers(phase, subs, clients)
    good = check_writes(phase, clients)
    acked = len(phase.writes)
    found = sum(1 for w in phase.writes if w in good)
    seen, bad = judge(phase)
    report_phase(phase)
    why = []
    if bad:
        why.append(f"{len(bad)} failures not allowed")
    if found != acked:
        why.append(f"{acked - found} writes not found")
    if phase.problems:
        why.append(f"{len(phase.problems)} problems")
    verdict = "FAIL: " + ", ".join(why) if why else "PASS"
    if bad:
        kinds = collections.Counter(r.status if r.status else f"conn:{r.err}" for r in bad)
        say("    failures not allowed: " + ", ".join(f"{k}: {v}" for k, v in kinds.items()))
    return {"scenario": name, "requests": len(phase.records), "allowed": "0", "seen": seen,
            "acked": acked, "found": found, "verdict": verdict}, phase


# --- commands -----------------------------------------------------------------------------


def cmd_run(args):
    rows = pathlib.Path(args.rows)
    nclients = args.clients
    say(f"run {RUN_ID}: {nclients} clients against {BASE_URL}, {args.duration} s per phase")
    for svc in SERVICES:
        if health(svc, BASE_URL) != 200:
            say(f"{svc} is not healthy at {BASE_URL}")
            return 1
    clients = [Client(i, nclients) for i in range(nclients)]
    # set-up, a few at a time (signups are rate limited per address, not overall)
    errors = []

    def setup(c):
        try:
            c.setup()
        except Exception as e:
            errors.append(f"client {c.cid}: {e}")

    for i in range(0, nclients, 16):
        ts = [threading.Thread(target=setup, args=(c,)) for c in clients[i:i + 16]]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    if errors:
        for e in errors[:10]:
            say(f"set-up failed: {e}")
        return 1
    say(f"set-up: {nclients} users signed up, logged in, one project each")
    d = args.duration

    def only(name):
        return not args.only or name in args.only.split(",")

    results = []
    plan = [  # name, failures allowed, the fault
        ("load held", "0", None),
        ("worker kills", "1 per kill", lambda ph, st, subs: kill_workers(ph, st)),
        ("master kills", "0", lambda ph, st, subs: kill_masters(ph, st, d)),
        ("MariaDB down 5 s", "503 while down", lambda ph, st, subs: db_outage(ph, st, d)),
        ("nginx reloads", "0", lambda ph, st, subs: reload_nginx(ph, st, d)),
        ("live cut-offs", "0", lambda ph, st, subs: cut_subscribers(ph, st, subs)),
    ]
    for name, allowed, fault in plan:
        if not only(name):
            continue
        before = masters()
        row, ph = run_phase(name, clients, d, fault)
        row["allowed"] = allowed
        if name == "worker kills":
            row["allowed"] = f"{ph.kills} (1/kill)"
        if name == "master kills":
            row["scenario"] = "master kills (gap " + ", ".join(
                f"{s} {g:.1f}s" if g is not None else f"{s} never" for s, g in getattr(ph, "gaps", {}).items()) + ")"
        elif masters() != before:
            say(f"    PROBLEM: pool masters changed during {name}: {before} -> {masters()}")
            row["verdict"] = "FAIL"
        if name == "MariaDB down 5 s" and hasattr(ph, "db_down_s"):
            row["scenario"] = f"MariaDB down {ph.db_down_s:.1f} s"
        results.append(row)
        with rows.open("a") as f:
            f.write(json.dumps(row) + "\n")
    return 0 if all(r["verdict"] == "PASS" for r in results) else 1


def cmd_row(args):
    row = {"scenario": f"{args.scenario} ({args.seconds} s)", "requests": "-", "allowed": "-", "seen": "-",
           "acked": "-", "found": "-", "verdict": "PASS" if args.rc == 0 else f"FAIL (exit {args.rc})"}
    with open(args.rows, "a") as f:
        f.write(json.dumps(row) + "\n")
    return 0


def cmd_table(args):
    try:
        rows = [json.loads(line) for line in open(args.rows) if line.strip()]
    except OSError:
        rows = []
    if not rows:
        print("soak: no results")
        return 1
    cols = [("scenario", "scenario"), ("requests", "requests"), ("allowed", "failures allowed"),
            ("seen", "failures seen"), ("acked", "acknowledged writes"), ("found", "writes found"),
            ("verdict", "verdict")]
    widths = [max(len(h), *(len(str(r[k])) for r in rows)) for k, h in cols]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    print(line)
    print("| " + " | ".join(h.ljust(w) for (k, h), w in zip(cols, widths)) + " |")
    print(line)
    for r in rows:
        print("| " + " | ".join((str(r[k]).rjust(w) if isinstance(r[k], int) else str(r[k]).ljust(w))
                                for (k, h), w in zip(cols, widths)) + " |")
    print(line)
    failed = [r for r in rows if r["verdict"].startswith("FAIL")]
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--rows", required=True)
    r.add_argument("--duration", type=int, default=60)
    r.add_argument("--clients", type=int, default=64)
    r.add_argument("--only", default="", help="comma-separated scenario names")
    w = sub.add_parser("row")
    w.add_argument("--rows", required=True)
    w.add_argument("--scenario", required=True)
    w.add_argument("--rc", type=int, default=0)
    w.add_argument("--seconds", type=int, default=0)
    t = sub.add_parser("table")
    t.add_argument("--rows", required=True)
    args = ap.parse_args()
    return {"run": cmd_run, "row": cmd_row, "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
