"""Drives a stack with a mix of every kind of request (good ones, refused ones,
invocations between services) until each service has received at least N,
then prints how many each service got and what statuses came back.

usage: drive.py N   (PL_BASE_URL, PL_INTERNAL_URL, PL_ADMIN_EMAIL,
                     PL_ADMIN_PASSWORD from the environment)
"""
import collections
import json
import os
import random
import sys
import time
import uuid

import requests

BASE = os.environ["PL_BASE_URL"]
INTERNAL = os.environ["PL_INTERNAL_URL"]
PASSWORD = "correct horse battery staple"

session = requests.Session()
counts = collections.Counter()
statuses = collections.Counter()


def call(method, path, token=None, body=None, raw=None, headers=None, base=BASE):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = raw
    if body is not None:
        data = json.dumps(body)
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    r = session.request(method, base + path, headers=h, data=data, timeout=30)
    svc = path.split("/")[2].split("?")[0]
    counts[svc] += 1
    statuses[(svc, r.status_code)] += 1
    if r.status_code >= 500:
        raise SystemExit(f"drive: {method} {path} -> {r.status_code} {r.text[:200]}")
    return r


def user(name):
    email = f"leak-{uuid.uuid4().hex[:12]}@example.com"
    assert call("POST", "/api/accounts/signup", body={"email": email, "password": PASSWORD,
                                                     "display_name": name}).status_code == 201
    r = call("POST", "/api/accounts/login", body={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"email": email, **r.json()}


def main():
    n = int(sys.argv[1])
    rng = random.Random(8)
    owner, other = user("Owner"), user("Other")
    r = call("POST", "/api/accounts/login", body={"email": os.environ["PL_ADMIN_EMAIL"],
                                                  "password": os.environ["PL_ADMIN_PASSWORD"]})
    assert r.status_code == 200, r.text
    admin = r.json()["access_token"]
    tok = owner["access_token"]
    refresh = owner["refresh_token"]
    pid = call("POST", "/api/projects", tok, {"name": "leak"}).json()["project"]["id"]

    def relogin():
        nonlocal tok, refresh
        r = call("POST", "/api/accounts/login", body={"email": owner["email"], "password": PASSWORD})
        tok, refresh = r.json()["access_token"], r.json()["refresh_token"]

    def do_refresh():
        nonlocal tok, refresh
        r = call("POST", "/api/accounts/refresh", body={"refresh_token": refresh})
        if r.status_code == 200:
            tok, refresh = r.json()["access_token"], r.json()["refresh_token"]

    def project_cycle():
        r = call("POST", "/api/projects", tok, {"name": "cycle", "description": "x" * rng.randint(0, 3000)})
        p = r.json()["project"]
        call("PATCH", f"/api/projects/{p['id']}", tok, {"state": "active"}, headers={"If-Match": f'"{p["version"]}"'})
        call("PATCH", f"/api/projects/{p['id']}", tok, {"name": "stale"}, headers={"If-Match": '"999"'})
        call("DELETE", f"/api/projects/{p['id']}", tok)

    def ticket():
        r = call("POST", "/api/chat/rooms/lobby/ticket", tok)
        t = r.json()["ticket"]
        call("GET", f"/api/chat/rooms/lobby/live?ticket={t}", base=INTERNAL)
        call("GET", f"/api/chat/rooms/lobby/live?ticket={t}", base=INTERNAL)  # used: 401

    ops = [
        # accounts
        (3, lambda: call("GET", "/api/accounts/health")),
        (5, lambda: call("GET", "/api/accounts/me", tok)),
        (2, lambda: call("PATCH", "/api/accounts/me", tok, {"display_name": f"Owner {rng.randint(0, 99)}"})),
        (1, lambda: call("PATCH", "/api/accounts/me", tok, {"primary_project_id": pid})),  # invokes projects
        (1, lambda: call("PATCH", "/api/accounts/me", other["access_token"], {"primary_project_id": pid})),
        (1, relogin),
        (1, do_refresh),
        (1, lambda: call("POST", "/api/accounts/login", body={"email": other["email"], "password": "wrong one"})),
        (2, lambda: call("GET", "/api/accounts/.well-known/jwks.json")),
        (2, lambda: call("GET", "/api/accounts/users?limit=5&email_prefix=leak", admin)),
        (1, lambda: call("GET", f"/api/accounts/users/{owner['user']['id']}", admin)),
        (2, lambda: call("GET", "/api/accounts/me", "not.a.token")),
        (1, lambda: call("POST", "/api/accounts/signup", raw='{"email":')),
        (1, lambda: call("POST", "/api/accounts/signup", raw='{"email":"a","email":"b"}')),
        (1, lambda: call("GET", "/api/accounts/nothing")),
        # projects
        (3, lambda: call("GET", "/api/projects/health")),
        (5, lambda: call("GET", "/api/projects?limit=20", tok)),
        (3, lambda: call("GET", f"/api/projects/{pid}", tok)),
        (2, lambda: call("GET", f"/api/projects/{pid}", other["access_token"])),
        (1, lambda: call("GET", "/api/projects/primary", tok)),  # invokes accounts
        (2, project_cycle),
        (1, lambda: call("GET", "/api/projects?all=true&limit=50", admin)),
        (1, lambda: call("GET", "/api/projects/abc", tok)),
        (1, lambda: call("POST", "/api/projects", tok, raw='[' * 100 + ']' * 100)),
        (1, lambda: call("POST", "/api/projects", tok, {"name": "x", "owner_id": 1})),
        # chat
        (3, lambda: call("GET", "/api/chat/health")),
        (4, lambda: call("POST", "/api/chat/rooms/lobby/messages", tok, {"body": "hello " * rng.randint(1, 50)})),
        (2, lambda: call("POST", f"/api/chat/rooms/project-{pid}/messages", tok, {"body": "hi"})),  # invokes
        (1, lambda: call("POST", f"/api/chat/rooms/project-{pid}/messages", other["access_token"], {"body": "no"})),
        (4, lambda: call("GET", "/api/chat/rooms/lobby/messages?limit=50", tok)),
        (1, ticket),
        (1, lambda: call("GET", f"/api/chat/rooms/lobby/live?access_token={tok}", base=INTERNAL)),
        (1, lambda: call("GET", "/api/chat/rooms/nowhere/messages", tok)),
        (1, lambda: call("POST", "/api/chat/rooms/lobby/messages", tok, {"body": ""})),
    ]
    weights = [w for w, _ in ops]
    started = time.monotonic()
    while min(counts[s] for s in ("accounts", "projects", "chat")) < n:
        rng.choices(ops, weights)[0][1]()
    elapsed = time.monotonic() - started
    print(f"drive: {sum(counts.values())} requests in {elapsed:.1f}s: " +
          ", ".join(f"{s} {counts[s]}" for s in sorted(counts)))
    by_status = collections.defaultdict(dict)
    for (svc, st), c in sorted(statuses.items()):
        by_status[svc][st] = c
    for svc, m in sorted(by_status.items()):
        print(f"drive:   {svc}: " + " ".join(f"{st}x{c}" for st, c in m.items()))


if __name__ == "__main__":
    main()
