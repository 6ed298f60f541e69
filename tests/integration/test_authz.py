"""Authorization of every endpoint (issue 8), table-driven.

TABLE has one row per route of every service: its flags as the service
declares them, and what each caller gets through the public listener:

  anon     no Authorization header
  bad      a token whose signature does not verify
  expired  a token of the owner, correctly signed, expired an hour ago
  other    another signed-in user, reaching the owner's resource (their
           project, project room, user id) by its id in the path or body
  owner    the user whose resource it is
  admin    an admin

The live route tables come from the services themselves (internal
`GET /api/<svc>/_routes`): a route added without a row here, a row whose
route is gone, or flags that changed all fail test_every_route_has_a_row.
Refused writes are checked in the database to have changed nothing."""
import json
import time
import uuid

import nacl.signing
import pytest
import requests

from lifecycle import SourceAdapter

from conftest import service_routes, BASE_URL, SERVICES, VAR, assert_error, b64url, b64url_decode, jwt_claims, jwt_segment, sql

WHO = ("anon", "bad", "expired", "other", "owner", "admin")


class Ctx:
    """The callers and the owner's resources, made once per module."""

    def __init__(self, api, internal, make_user, admin):
        self.api, self.internal = api, internal
        self.owner = make_user(display_name="Owner")
        self.other = make_user(display_name="Other")
        self.admin = admin
        kid, seed = (VAR / "secrets" / "jwt_signing.key").read_text().split()
        claims = jwt_claims(self.owner.token)
        now = int(time.time())
        claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        header = {"alg": "EdDSA", "typ": "JWT", "kid": kid}
        signing_input = f"{jwt_segment(header)}.{jwt_segment(claims)}"
        sig = nacl.signing.SigningKey(b64url_decode(seed)).sign(signing_input.encode()).signature
        self.expired_token = f"{signing_input}.{b64url(sig)}"
        head, payload, sig = self.owner.token.split(".")
        flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BA")
        self.bad_token = f"{head}.{payload}.{flipped}"

    def token(self, who):
        return {"anon": None, "bad": self.bad_token, "expired": self.expired_token,
                "other": self.other.token, "owner": self.owner.token, "admin": self.admin.token}[who]

    def user(self, who):
        return {"other": self.other, "owner": self.owner, "admin": self.admin}.get(who)

    def project(self, name="authz"):
        """A fresh project of the owner; its id."""
        r = self.api.post("/api/projects", {"name": name}, token=self.owner.token)
        assert r.status_code == 201, r.text
        return r.json()["project"]["id"]


@pytest.fixture(scope="module")
def ctx(api, internal, make_user, admin):
    return Ctx(api, internal, make_user, admin)


# --- what each request is -------------------------------------------------------------
# A request is built fresh for each caller (a DELETE needs its own project):
# build(ctx, who) -> dict(method, path, body=None, headers=None, stream=False)


def req(method, path, body=None, **kw):
    return dict(method=method, path=path, body=body, **kw)


def owner_project_path(suffix=""):
    return lambda c, who: req("GET", f"/api/projects/{c.project()}{suffix}")


def fresh_login(c, who):
    return req("POST", "/api/accounts/login", {"email": c.owner.email, "password": c.owner.password})


def fresh_refresh(path):
    def build(c, who):
        r = c.api.post("/api/accounts/login", {"email": c.other.email, "password": c.other.password})
        assert r.status_code == 200, r.text
        return req("POST", path, {"refresh_token": r.json()["refresh_token"]})

    return build


def signup(c, who):
    return req("POST", "/api/accounts/signup", {"email": f"authz-{uuid.uuid4().hex[:12]}@example.com",
                                                "password": "correct horse battery staple",
                                                "display_name": "Signup"})


def addressed(build, n):
    """build's request sent from 127.0.3.n: the mail and code routes are rate
    limited per client address, and these rows must not meet the limits."""
    def wrapped(c, who):
        spec = build(c, who)
        spec["source"] = f"127.0.3.{n}"
        return spec
    return wrapped


def throwaway(c, who):
    """A token of a fresh user in who's role (anon, bad, expired: theirs),
    for requests that end the caller's sessions or spend their budget."""
    if who not in ("other", "owner", "admin"):
        return c.token(who)
    email = f"authz-{who}-{uuid.uuid4().hex[:10]}@example.com"
    pw = "correct horse battery staple"
    r = c.api.post("/api/accounts/signup", {"email": email, "password": pw, "display_name": who})
    assert r.status_code == 201, r.text
    if who == "admin":
        r2 = c.api.patch(f"/api/accounts/users/{r.json()['user']['id']}", {"role": "admin"}, token=c.admin.token)
        assert r2.status_code == 200, r2.text
    r = c.api.post("/api/accounts/login", {"email": email, "password": pw})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def as_throwaway(method, path, body=None):
    return lambda c, who: req(method, path, body, token=throwaway(c, who))


def victim(c, who):
    """DELETE of a fresh user (an admin's succeeds)."""
    r = c.api.post("/api/accounts/signup", {"email": f"victim-{uuid.uuid4().hex[:10]}@example.com",
                                            "password": "correct horse battery staple", "display_name": "Victim"})
    assert r.status_code == 201, r.text
    return req("DELETE", f"/api/accounts/users/{r.json()['user']['id']}")


def project_room(c):
    return f"project-{c.project()}"


def live(room_of):
    def build(c, who):
        token = c.token(who)
        query = f"?access_token={token}" if token else ""
        return req("GET", f"/api/chat/rooms/{room_of(c)}/live{query}", headers={"Accept": "text/event-stream"},
                   stream=True, no_auth=True)

    return build


def everyone(status):
    return {w: status for w in WHO}


def authed(other, owner, admin):
    """An SH_AUTH route: no token, a bad and an expired token are 401."""
    return {"anon": (401, "missing_token"), "bad": (401, "invalid_token"), "expired": (401, "invalid_token"),
            "other": other, "owner": owner, "admin": admin}


ADMIN_ONLY_200 = authed((403, "forbidden"), (403, "forbidden"), 200)
INTERNAL = everyone((404, "not_found"))  # internal and test routes do not exist publicly

# (method, pattern) -> (declared flags, build, expected status or (status, code) per caller)
TABLE = {
    # --- built-in routes of every service (libshared/src/service.c) ---
    **{k: v for svc in SERVICES for k, v in {
        ("GET", f"/api/{svc}/health"): (set(), lambda c, w, s=svc: req("GET", f"/api/{s}/health"), everyone(200)),
        ("GET", f"/api/{svc}/_status"): ({"internal"}, lambda c, w, s=svc: req("GET", f"/api/{s}/_status"), INTERNAL),
        ("GET", f"/api/{svc}/_metrics"): ({"internal"}, lambda c, w, s=svc: req("GET", f"/api/{s}/_metrics"),
                                          INTERNAL),
        ("GET", f"/api/{svc}/_routes"): ({"internal"}, lambda c, w, s=svc: req("GET", f"/api/{s}/_routes"), INTERNAL),
        ("GET", f"/api/{svc}/admin/status"): ({"auth", "admin"},
                                              lambda c, w, s=svc: req("GET", f"/api/{s}/admin/status"),
                                              ADMIN_ONLY_200),
        ("GET", f"/api/{svc}/_test/sleep"): ({"test"}, lambda c, w, s=svc: req("GET", f"/api/{s}/_test/sleep?ms=1"),
                                             INTERNAL),
        ("POST", f"/api/{svc}/_test/echo"): ({"test", "json"}, lambda c, w, s=svc: req("POST", f"/api/{s}/_test/echo",
                                                                                        {"a": 1}), INTERNAL),
        ("POST", f"/api/{svc}/_test/crash"): ({"test"}, lambda c, w, s=svc: req("POST", f"/api/{s}/_test/crash"),
                                              INTERNAL),
        ("GET", f"/api/{svc}/_test/invoke"): ({"test"}, lambda c, w, s=svc: req("GET", f"/api/{s}/_test/invoke"),
                                              INTERNAL),
    }.items()},
    # --- accounts ---
    ("POST", "/api/accounts/signup"): ({"json"}, signup, everyone(201)),
    ("POST", "/api/accounts/login"): ({"json"}, fresh_login, everyone(200)),
    ("POST", "/api/accounts/refresh"): ({"json", "body_optional"}, fresh_refresh("/api/accounts/refresh"),
                                        everyone(200)),
    ("POST", "/api/accounts/logout"): ({"json", "body_optional"}, fresh_refresh("/api/accounts/logout"),
                                       everyone(204)),
    ("GET", "/api/accounts/me"): ({"auth"}, lambda c, w: req("GET", "/api/accounts/me"), authed(200, 200, 200)),
    ("PATCH", "/api/accounts/me"): ({"auth", "json"}, lambda c, w: req("PATCH", "/api/accounts/me",
                                                                        {"display_name": f"Name {w}"}),
                                    authed(200, 200, 200)),
    ("GET", "/api/accounts/users"): ({"auth", "admin"}, lambda c, w: req("GET", "/api/accounts/users"),
                                     ADMIN_ONLY_200),
    ("GET", "/api/accounts/users/{id}"): ({"auth", "admin"},
                                          lambda c, w: req("GET", f"/api/accounts/users/{c.owner.id}"),
                                          ADMIN_ONLY_200),
    ("PATCH", "/api/accounts/users/{id}"): ({"auth", "admin", "json"},
                                            lambda c, w: req("PATCH", f"/api/accounts/users/{c.owner.id}",
                                                             {"disabled": False}),
                                            ADMIN_ONLY_200),
    ("POST", "/api/accounts/login/mfa"): (
        {"json"}, addressed(lambda c, w: req("POST", "/api/accounts/login/mfa", {"mfa_ticket": "x" * 43,
                                                                                "code": "123456"}), 1),
        everyone((422, "token_unknown"))),
    # no caller's budget of wrong passwords is spent: the refusals come before any check
    ("POST", "/api/accounts/me/delete"): (
        {"auth", "json"}, addressed(lambda c, w: req("POST", "/api/accounts/me/delete", {}), 2),
        authed((422, "missing_field"), (422, "missing_field"), (422, "missing_field"))),
    ("POST", "/api/accounts/me/email"): (
        {"auth", "json"}, addressed(lambda c, w: req("POST", "/api/accounts/me/email", {"email": "x@example.com"}), 3),
        authed((422, "missing_field"), (422, "missing_field"), (422, "missing_field"))),
    ("GET", "/api/accounts/me/sessions"): ({"auth"}, lambda c, w: req("GET", "/api/accounts/me/sessions"),
                                           authed(200, 200, 200)),
    ("DELETE", "/api/accounts/me/sessions"): ({"auth"}, as_throwaway("DELETE", "/api/accounts/me/sessions"),
                                              authed(204, 204, 204)),
    ("DELETE", "/api/accounts/me/sessions/{id}"): (
        {"auth"}, lambda c, w: req("DELETE", "/api/accounts/me/sessions/" + "0" * 32),
        authed((404, "session_not_found"), (404, "session_not_found"), (404, "session_not_found"))),
    ("POST", "/api/accounts/me/mfa/enrol"): (
        {"auth", "json"}, addressed(lambda c, w: req("POST", "/api/accounts/me/mfa/enrol", {}), 4),
        authed((422, "missing_field"), (422, "missing_field"), (422, "missing_field"))),
    ("POST", "/api/accounts/me/mfa/confirm"): (
        {"auth", "json"}, addressed(as_throwaway("POST", "/api/accounts/me/mfa/confirm", {"code": "123456"}), 5),
        authed((409, "mfa_not_enrolled"), (409, "mfa_not_enrolled"), (409, "mfa_not_enrolled"))),
    ("POST", "/api/accounts/me/mfa/disable"): (
        {"auth", "json"},
        addressed(as_throwaway("POST", "/api/accounts/me/mfa/disable", {"current_password": "x"}), 6),
        authed((409, "mfa_not_enabled"), (409, "mfa_not_enabled"), (409, "mfa_not_enabled"))),
    ("POST", "/api/accounts/me/mfa/recovery-codes"): (
        {"auth", "json"},
        addressed(as_throwaway("POST", "/api/accounts/me/mfa/recovery-codes", {"current_password": "x"}), 11),
        authed((409, "mfa_not_enabled"), (409, "mfa_not_enabled"), (409, "mfa_not_enabled"))),
    ("POST", "/api/accounts/email/verify"): (
        {"json"}, addressed(lambda c, w: req("POST", "/api/accounts/email/verify", {"token": "x" * 43}), 7),
        everyone((422, "token_unknown"))),
    # a fresh account was mailed its link moments ago
    ("POST", "/api/accounts/email/verify/resend"): (
        {"auth"}, addressed(as_throwaway("POST", "/api/accounts/email/verify/resend"), 8),
        authed((429, "too_many_mails"), (429, "too_many_mails"), (429, "too_many_mails"))),
    ("POST", "/api/accounts/password/forgot"): (
        {"json"}, addressed(lambda c, w: req("POST", "/api/accounts/password/forgot",
                                             {"email": f"nobody-{w}@example.com"}), 9),
        everyone(202)),
    ("POST", "/api/accounts/password/reset"): (
        {"json"}, addressed(lambda c, w: req("POST", "/api/accounts/password/reset",
                                             {"token": "x" * 43, "password": "a fine new passphrase"}), 10),
        everyone((422, "token_unknown"))),
    ("DELETE", "/api/accounts/users/{id}"): ({"auth", "admin"}, victim,
                                             authed((403, "forbidden"), (403, "forbidden"), 204)),
    ("DELETE", "/api/accounts/users/{id}/mfa"): ({"auth", "admin"},
                                                 lambda c, w: req("DELETE", f"/api/accounts/users/{c.owner.id}/mfa"),
                                                 ADMIN_ONLY_200),
    ("GET", "/api/accounts/.well-known/jwks.json"): (set(),
                                                     lambda c, w: req("GET", "/api/accounts/.well-known/jwks.json"),
                                                     everyone(200)),
    ("GET", "/api/accounts/_revocations"): ({"internal"}, lambda c, w: req("GET", "/api/accounts/_revocations"),
                                            INTERNAL),
    ("POST", "/api/accounts/_test/mail"): ({"test", "json"},
                                          lambda c, w: req("POST", "/api/accounts/_test/mail",
                                                           {"to": "authz@example.com"}), INTERNAL),
    ("POST", "/api/accounts/users/{id}/primary-project/clear"): (
        {"internal", "json"},
        lambda c, w: req("POST", f"/api/accounts/users/{c.owner.id}/primary-project/clear", {"project_id": 1}),
        INTERNAL),
    # --- projects: the owner and admins see a project; anyone else is told it does not exist ---
    ("GET", "/api/projects"): ({"auth"}, lambda c, w: req("GET", "/api/projects"), authed(200, 200, 200)),
    ("POST", "/api/projects"): ({"auth", "json", "idempotent"}, lambda c, w: req("POST", "/api/projects", {"name": "authz"}),
                                authed(201, 201, 201)),
    ("GET", "/api/projects/primary"): ({"auth"}, lambda c, w: req("GET", "/api/projects/primary"),
                                       authed((404, "no_primary_project"), (404, "no_primary_project"),
                                              (404, "no_primary_project"))),
    ("GET", "/api/projects/_test/recurse"): ({"test"}, lambda c, w: req("GET", "/api/projects/_test/recurse"),
                                             INTERNAL),
    ("GET", "/api/projects/_test/fanout"): ({"test"}, lambda c, w: req("GET", "/api/projects/_test/fanout"),
                                            INTERNAL),
    ("GET", "/api/projects/users/{id}/projects"): (
        {"internal"}, lambda c, w: req("GET", f"/api/projects/users/{c.owner.id}/projects"), INTERNAL),
    ("DELETE", "/api/projects/users/{id}/projects"): (
        {"internal"}, lambda c, w: req("DELETE", f"/api/projects/users/{c.owner.id}/projects"), INTERNAL),
    ("GET", "/api/projects/{id}"): ({"auth"}, owner_project_path(),
                                    authed((404, "not_found"), 200, 200)),
    ("PATCH", "/api/projects/{id}"): ({"auth", "json", "idempotent"},
                                      lambda c, w: req("PATCH", f"/api/projects/{c.project()}", {"name": f"by {w}"}),
                                      authed((404, "not_found"), 200, 200)),
    ("DELETE", "/api/projects/{id}"): ({"auth"}, lambda c, w: req("DELETE", f"/api/projects/{c.project()}"),
                                       authed((404, "not_found"), 204, 204)),
    # --- chat: "lobby" is everyone's; "project-{id}" its project's owner's and admins' ---
    ("POST", "/api/chat/rooms/{room}/messages"): (
        {"auth", "json"},
        lambda c, w: req("POST", f"/api/chat/rooms/{project_room(c)}/messages", {"body": f"from {w}"}),
        authed((403, "forbidden"), 201, 201)),
    ("GET", "/api/chat/rooms/{room}/messages"): (
        {"auth"}, lambda c, w: req("GET", f"/api/chat/rooms/{project_room(c)}/messages"),
        authed((403, "forbidden"), 200, 200)),
    ("POST", "/api/chat/rooms/{room}/ticket"): (
        {"auth"}, lambda c, w: req("POST", f"/api/chat/rooms/{project_room(c)}/ticket"),
        authed((403, "forbidden"), 201, 201)),
    # the live subscription authenticates itself (?access_token= or ?ticket=)
    ("GET", "/api/chat/rooms/{room}/live"): (
        {"token_query"}, live(project_room),
        {"anon": (401, "missing_token"), "bad": (401, "invalid_token"), "expired": (401, "invalid_token"),
         "other": (403, "forbidden"), "owner": 200, "admin": 200}),
    ("POST", "/api/chat/users/{id}/live/close"): (
        {"internal"}, lambda c, w: req("POST", f"/api/chat/users/{c.owner.id}/live/close"), INTERNAL),
    ("POST", "/api/chat/users/{id}/anonymise"): (
        {"internal", "json"}, lambda c, w: req("POST", f"/api/chat/users/{c.owner.id}/anonymise", {"project_ids": []}),
        INTERNAL),
    # a room that was never used: erasing it is harmless
    ("DELETE", "/api/chat/rooms/{room}"): (
        {"internal"}, lambda c, w: req("DELETE", "/api/chat/rooms/project-999999999"), INTERNAL),
}


def send(c, spec, who):
    headers = dict(spec.get("headers") or {})
    token = None if spec.get("no_auth") else spec["token"] if "token" in spec else c.token(who)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if spec.get("body") is not None:
        data = json.dumps(spec["body"])
        headers["Content-Type"] = "application/json"
    stream = spec.get("stream", False)
    session = requests.Session()
    if spec.get("source"):
        session.mount("http://", SourceAdapter(spec["source"]))
    r = session.request(spec["method"], BASE_URL + spec["path"], headers=headers, data=data, timeout=10,
                        stream=stream)
    if stream:
        if r.status_code != 200:
            r.content  # a refusal: read its JSON body
        r.close()  # a live subscription that was let in stays open
    return r


# --- the table matches the services' own route tables --------------------------------------


def live_routes(internal):
    routes = {}
    for body in service_routes(internal).values():
        assert body["test_routes"] is True, body
        for route in body["routes"]:
            routes[(route["method"], route["pattern"])] = set(route["flags"])
    return routes


def test_every_route_has_a_row(internal):
    routes = live_routes(internal)
    missing = sorted(set(routes) - set(TABLE))
    stale = sorted(set(TABLE) - set(routes))
    assert not missing, f"routes without a row in test_authz.TABLE (add one): {missing}"
    assert not stale, f"rows of test_authz.TABLE whose route is gone: {stale}"
    changed = {k: (routes[k], TABLE[k][0]) for k in routes if routes[k] != TABLE[k][0]}
    assert not changed, f"flags differ (live, table): {changed}"


def test_routes_page_is_internal_only(api, internal):
    for svc in SERVICES:
        assert_error(api.get(f"/api/{svc}/_routes"), 404, "not_found")
        r = internal.get(f"/api/{svc}/_routes")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
        health = [x for x in r.json()["routes"] if x["pattern"] == f"/api/{svc}/health"]
        assert health == [{"method": "GET", "pattern": f"/api/{svc}/health", "handler": "health", "flags": []}]


@pytest.mark.parametrize("key", sorted(TABLE), ids=lambda k: f"{k[0]} {k[1]}")
def test_authorization(ctx, key):
    flags, build, expected = TABLE[key]
    failures = []
    for who in WHO:
        spec = build(ctx, who)
        r = send(ctx, spec, who)
        want = expected[who]
        status, code = want if isinstance(want, tuple) else (want, None)
        if r.status_code != status:
            failures.append(f"{who}: {spec['method']} {spec['path'][:80]} -> {r.status_code}, expected {status}: "
                            f"{r.text[:160]}")
            continue
        if code is not None:
            assert_error(r, status, code)
        elif not spec.get("stream") and status != 204 and r.headers.get("Content-Type", "").startswith(
                "application/json"):
            assert "error" not in r.json(), r.text
    assert not failures, "\n".join(failures)


# --- what a caller reaches, beyond the status -------------------------------------------------


def test_me_is_always_the_caller(ctx):
    for who in ("other", "owner", "admin"):
        r = ctx.api.get("/api/accounts/me", token=ctx.token(who))
        assert r.status_code == 200 and r.json()["user"]["id"] == ctx.user(who).id, r.text


def test_project_list_shows_only_own_projects(ctx):
    pid = ctx.project("listed")

    def ids(who, q="?"):
        found, cursor = [], None
        while True:
            page = ctx.api.get(f"/api/projects{q}&limit=100" + (f"&cursor={cursor}" if cursor else ""),
                               token=ctx.token(who))
            assert page.status_code == 200, page.text
            found += [p["id"] for p in page.json()["projects"]]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return found

    assert pid in ids("owner")
    assert pid not in ids("other")
    assert_error(ctx.api.get(f"/api/projects?owner_id={ctx.owner.id}", token=ctx.other.token), 403, "forbidden")
    assert_error(ctx.api.get("/api/projects?all=true", token=ctx.other.token), 403, "forbidden")
    assert pid in ids("admin", f"?owner_id={ctx.owner.id}")
    assert pid in ids("admin", "?all=true") and pid not in ids("admin")


def project_row(pid):
    return sql(f"SELECT owner_id, name, description, state, version FROM projects WHERE id = {int(pid)}", "projects")


def test_other_users_project_ids_change_nothing(ctx):
    pid = ctx.project("untouched")
    before = project_row(pid)
    other = ctx.other.token
    assert_error(ctx.api.get(f"/api/projects/{pid}", token=other), 404, "not_found")
    assert_error(ctx.api.patch(f"/api/projects/{pid}", {"name": "stolen"}, token=other), 404, "not_found")
    assert_error(ctx.api.patch(f"/api/projects/{pid}", {"name": "stolen"}, token=other, headers={"If-Match": "*"}),
                 404, "not_found")
    assert_error(ctx.api.delete(f"/api/projects/{pid}", token=other), 404, "not_found")
    assert project_row(pid) == before
    # the same id in a body: another user's project cannot be made one's primary project
    assert_error(ctx.api.patch("/api/accounts/me", {"primary_project_id": pid}, token=other), 422, "project_not_found")
    assert sql(f"SELECT primary_project_id FROM users WHERE id = {ctx.other.id}", "accounts") == [["NULL"]]
    # nor its room used
    room = f"project-{pid}"
    assert_error(ctx.api.post(f"/api/chat/rooms/{room}/messages", {"body": "hi"}, token=other), 403, "forbidden")
    assert_error(ctx.api.post(f"/api/chat/rooms/{room}/ticket", token=other), 403, "forbidden")
    assert sql(f"SELECT COUNT(*) FROM messages WHERE room = '{room}'", "chat") == [["0"]]
    assert sql(f"SELECT COUNT(*) FROM live_tickets WHERE room = '{room}'", "chat") == [["0"]]


def user_row(uid):
    return sql(f"SELECT email, display_name, role, disabled, primary_project_id FROM users WHERE id = {int(uid)}",
               "accounts")


def test_admin_user_ids_refused_to_users(ctx):
    """A user reaching an admin's (or any other user's) account by id."""
    for target in (ctx.admin, ctx.other):
        before = user_row(target.id)
        for who in ("owner", "other"):
            token = ctx.token(who)
            assert_error(ctx.api.get(f"/api/accounts/users/{target.id}", token=token), 403, "forbidden")
            assert_error(ctx.api.patch(f"/api/accounts/users/{target.id}", {"role": "user", "disabled": True},
                                       token=token), 403, "forbidden")
        assert user_row(target.id) == before
    # nor can a user make itself an admin
    before = user_row(ctx.owner.id)
    assert_error(ctx.api.patch(f"/api/accounts/users/{ctx.owner.id}", {"role": "admin"}, token=ctx.owner.token),
                 403, "forbidden")
    assert_error(ctx.api.patch("/api/accounts/me", {"role": "admin"}, token=ctx.owner.token), 422, "unknown_field")
    assert user_row(ctx.owner.id) == before


def test_refused_callers_change_nothing(ctx):
    """The write routes, refused for anon/bad/expired (and other where it applies): counts do not move."""
    counts = lambda: (sql("SELECT COUNT(*), COALESCE(SUM(version), 0) FROM projects", "projects"),
                      sql("SELECT COUNT(*) FROM messages", "chat"),
                      sql("SELECT COUNT(*), GROUP_CONCAT(display_name ORDER BY id) FROM users", "accounts"))
    pid = ctx.project("write-target")
    before = counts()
    for who in ("anon", "bad", "expired"):
        token = ctx.token(who)
        assert ctx.api.post("/api/projects", {"name": "x"}, token=token).status_code == 401
        assert ctx.api.patch(f"/api/projects/{pid}", {"name": "x"}, token=token).status_code == 401
        assert ctx.api.delete(f"/api/projects/{pid}", token=token).status_code == 401
        assert ctx.api.post("/api/chat/rooms/lobby/messages", {"body": "x"}, token=token).status_code == 401
        assert ctx.api.patch("/api/accounts/me", {"display_name": "x"}, token=token).status_code == 401
        assert ctx.api.patch(f"/api/accounts/users/{ctx.owner.id}", {"disabled": True},
                             token=token).status_code == 401
    assert counts() == before
