"""Shared fixtures for the integration tests: they talk to a running stack
through nginx, like a user (public listener) or like a service (internal
listener). `./pilotlight test` starts the stack and exports:

  PL_BASE_URL       public listener, e.g. http://127.0.0.1:18080
  PL_INTERNAL_URL   internal listener (status pages, test routes, invocations)
  PL_VAR            the stack's state directory (pids, logs, secrets)
  PL_DB_SOCKET      MariaDB's unix socket (root access, to check what is stored)
  PL_ADMIN_EMAIL / PL_ADMIN_PASSWORD   the first admin, made on the way up
"""
import base64
import json
import os
import pathlib
import subprocess
import time
import urllib.parse
import uuid

import pytest
import requests
from requests.adapters import HTTPAdapter

import contract

BASE_URL = os.environ.get("PL_BASE_URL", "http://127.0.0.1:8080")
INTERNAL_URL = os.environ.get("PL_INTERNAL_URL", "http://127.0.0.1:8081")
VAR = pathlib.Path(os.environ.get("PL_VAR", pathlib.Path(__file__).resolve().parents[2] / "var"))
DB_SOCKET = os.environ.get("PL_DB_SOCKET", str(VAR / "run" / "mysqld.sock"))
ROOT = pathlib.Path(__file__).resolve().parents[2]
# the services, as services/list names them (one a line)
SERVICES = tuple(line.strip() for line in (ROOT / "services" / "list").read_text().splitlines() if line.strip())
DEFAULT_PASSWORD = "correct horse battery staple"


# --- every answer checked against the OpenAPI document ---------------------------------
# requests' HTTPAdapter.send is the one place every request of the suite goes
# through (Api below, lifecycle's clients, bare requests calls): each answer
# of the stack that is read whole is checked there against /api/openapi.json
# (tests/integration/contract.py), and one the document does not describe
# fails the test that received it. PL_CHECK_RESPONSES=0 turns it off.
CHECK_RESPONSES = os.environ.get("PL_CHECK_RESPONSES", "1") != "0"
_adapter_send = HTTPAdapter.send


def _checked_send(adapter, request, **kw):
    resp = _adapter_send(adapter, request, **kw)
    internal = request.url.startswith(INTERNAL_URL + "/")
    if CHECK_RESPONSES and not kw.get("stream") and (internal or request.url.startswith(BASE_URL + "/")):
        path = urllib.parse.unquote(urllib.parse.urlsplit(request.url).path)
        checker = contract.contract(BASE_URL, INTERNAL_URL) if path != "/api/openapi.json" else None
        if checker is not None:
            problems = checker.check(request.method, path, resp.status_code, resp.headers,
                                     resp.content.decode("utf-8", "replace"), internal)
            if problems:
                raise contract.ContractError("the answer is not as /api/openapi.json says:\n  " +
                                             "\n  ".join(problems))
    return resp


HTTPAdapter.send = _checked_send


class Api:
    """A thin client: every call returns the requests.Response."""

    def __init__(self, base):
        self.base = base
        self.session = requests.Session()

    def request(self, method, path, token=None, json_body=None, headers=None, data=None, timeout=10, **kw):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body)
            h.setdefault("Content-Type", "application/json")
        return self.session.request(method, self.base + path, headers=h, data=data, timeout=timeout, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class User:
    def __init__(self, api, email, password, login):
        self.api = api
        self.email = email
        self.password = password
        self.id = login["user"]["id"]
        self.token = login["access_token"]
        self.refresh_token = login.get("refresh_token")
        self.user = login["user"]

    def relogin(self):
        r = self.api.post("/api/accounts/login", {"email": self.email, "password": self.password})
        assert r.status_code == 200, r.text
        body = r.json()
        self.token, self.refresh_token, self.user = body["access_token"], body["refresh_token"], body["user"]
        return self


def unique_email(prefix="user"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def b64url_decode(text):
    """base64url without padding (RFC 7515 section 2), to bytes."""
    if isinstance(text, str):
        text = text.encode()
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def b64url(data):
    """base64url without padding, of bytes or a str (UTF-8)."""
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_segment(obj):
    """One JWT segment: compact JSON, base64url."""
    return b64url(json.dumps(obj, separators=(",", ":")))


def jwt_header(token):
    """The header of a compact JWT, read without verifying it."""
    return json.loads(b64url_decode(token.split(".")[0]))


def jwt_claims(token):
    """The claims of a compact JWT, read without verifying it."""
    return json.loads(b64url_decode(token.split(".")[1]))


def assert_error(resp, status, code):
    """The one error shape: {"error": {"code", "message"}}, JSON, exact status."""
    assert resp.status_code == status, f"expected {status} {code}, got {resp.status_code}: {resp.text[:300]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]


@pytest.fixture(scope="session")
def api():
    return Api(BASE_URL)


@pytest.fixture(scope="session")
def internal():
    return Api(INTERNAL_URL)


@pytest.fixture(scope="session")
def make_user(api):
    """make_user(display_name=..., email=..., password=...) -> a signed-up, logged-in User."""

    def make(display_name="Test User", email=None, password=DEFAULT_PASSWORD):
        email = email or unique_email()
        r = api.post("/api/accounts/signup", {"email": email, "password": password, "display_name": display_name})
        assert r.status_code == 201, r.text
        r = api.post("/api/accounts/login", {"email": email, "password": password})
        assert r.status_code == 200, r.text
        return User(api, email, password, r.json())

    return make


@pytest.fixture(scope="session")
def admin(api):
    email, password = os.environ.get("PL_ADMIN_EMAIL"), os.environ.get("PL_ADMIN_PASSWORD")
    if not email or not password:
        pytest.skip("PL_ADMIN_EMAIL / PL_ADMIN_PASSWORD not set (run through ./pilotlight test)")
    r = api.post("/api/accounts/login", {"email": email, "password": password})
    assert r.status_code == 200, r.text
    return User(api, email, password, r.json())


# --- the stack's processes and state -------------------------------------------------


def pool_status(internal_api, svc):
    """The pool's scoreboard, as its master answers it (no worker is woken)."""
    r = internal_api.get(f"/api/{svc}/_status")
    assert r.status_code == 200, r.text
    return r.json()


def master_pid(svc):
    return int((VAR / "run" / f"{svc}.pid").read_text().strip())


def worker_pids(svc):
    """Live worker processes of a pool (children of its master), from /proc."""
    master = master_pid(svc)
    pids = []
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, ppid = fields[0], int(fields[1])
        if ppid == master and state != "Z":
            pids.append(int(p.name))
    return pids


def wait_until(predicate, timeout=10.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def sql(statement, database=None):
    """Runs SQL as MariaDB's root over the socket; returns rows as lists of strings."""
    cmd = ["mariadb", "--no-defaults", f"--socket={DB_SOCKET}", "-u", "root", "--batch", "--skip-column-names",
           "-e", statement]
    if database:
        cmd.insert(-2, database)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def log_lines(name):
    """Parsed JSON lines of a pool's log ($PL_VAR/log/<name>.log)."""
    lines = []
    path = VAR / "log" / f"{name}.log"
    if not path.exists():
        return lines
    for line in path.read_text(errors="replace").split("\n"):  # not splitlines(): U+2028 is no line end here
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return lines


def service_routes(internal):
    """{svc: its internal GET /api/<svc>/_routes body} for every service:
    {"service", "test_routes", "routes": [{method, pattern, handler, flags}]}."""
    bodies = {}
    for svc in SERVICES:
        r = internal.get(f"/api/{svc}/_routes")
        assert r.status_code == 200, r.text
        assert r.json()["service"] == svc, r.text
        bodies[svc] = r.json()
    return bodies


def mails(to=None, tag=None):
    """The mails the stack's sink kept ($PL_VAR/mail/*.eml, oldest first), as
    email.message.EmailMessage objects; only those to `to`, and whose text
    holds `tag`, when given."""
    import email
    import email.policy
    found = []
    for path in sorted((VAR / "mail").glob("*.eml")):
        with open(path, "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        if to is not None and m["To"].addresses[0].addr_spec != to:
            continue
        if tag is not None and tag not in m.get_body(preferencelist=("plain",)).get_content():
            continue
        found.append(m)
    return found
