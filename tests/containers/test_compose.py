"""The compose stack, run for real: docker-compose.yml with `--scale
projects=3`, driven through its published ports like an operator and a user
would. tests/containers/run.sh builds the images, brings the stack up,
runs this module and takes everything down again; it exports:

  PL_CT_URL        the published HTTPS port, e.g. https://127.0.0.1:27443
  PL_CT_HTTP_URL   the published plain-HTTP port (a redirect to HTTPS)
  PL_CT_CA         the stack's self-signed certificate (what HTTPS is checked against)
  PL_CT_FIGURES    a file for the figures of this run (one JSON object a line)
  COMPOSE_FILE, COMPOSE_PROJECT_NAME, DOCKER_HOST, CONTAINERS_CONF, PL_ROOT

The tests build on each other, in file order (STATE): a user, a project and
a chat message are made first, checked again after `down` and `up` last.
"""
import collections
import json
import os
import pathlib
import shlex
import subprocess
import threading
import time
import uuid

import pytest
import requests
import websocket

URL = os.environ["PL_CT_URL"]
HTTP_URL = os.environ["PL_CT_HTTP_URL"]
CA = os.environ["PL_CT_CA"]
FIGURES = pathlib.Path(os.environ["PL_CT_FIGURES"])
ROOT = pathlib.Path(os.environ["PL_ROOT"])
PROJECT = os.environ["COMPOSE_PROJECT_NAME"]
SERVICE_IMAGE = f"docker.io/pilotlight/service:{os.environ.get('PL_IMAGE_TAG', 'latest')}"  # this run's own tag
SERVICES = ("accounts", "projects", "chat")
PASSWORD = "correct horse battery staple"
LOAD_CLIENTS = 8  # concurrent clients of every load below: at most this many requests are in flight

STATE = {}


# --- the engine and compose ---------------------------------------------------------------


def run(cmd, timeout=120, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def compose(*args, timeout=180):
    return run(["docker-compose", *args], timeout=timeout)


def podman(*args, timeout=60, check=True):
    return run(["podman", *args], timeout=timeout, check=check)


def inspect(container, fmt):
    return podman("inspect", "--format", fmt, container).stdout.strip()


def containers(svc):
    """The running containers of a compose service, by id."""
    ids = compose("ps", "-q", svc).stdout.split()
    return [c for c in ids if inspect(c, "{{.State.Running}}") == "true"]


def health(container):
    return inspect(container, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")


def wait_until(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def wait_healthy(svc, count=1, timeout=90):
    wait_until(lambda: len(ids := containers(svc)) == count and all(health(c) == "healthy" for c in ids),
               timeout, f"{count} healthy {svc} container(s)")


def fcgi_get(container, path):
    """GET `path` straight from a service container's pool (FastCGI, as
    nginx sends it; the internal pages answer only there), parsed JSON."""
    env = (f"REQUEST_METHOD=GET REQUEST_URI={path} DOCUMENT_URI={path} SCRIPT_NAME={path} QUERY_STRING= "
           "CONTENT_LENGTH= CONTENT_TYPE= SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 REQUEST_ID=ct PL_INTERNAL=1")
    out = podman("exec", container, "sh", "-c", f"env -i {env} cgi-fcgi -bind -connect 127.0.0.1:9000").stdout
    return json.loads(out.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in out else out.split("\n\n", 1)[1])


def nginx_errors():
    """nginx's own error lines (not its JSON access log), for a failure
    message; not those of a connect to a container that is gone (nginx goes
    on to the next)."""
    out = podman("logs", containers("nginx")[0], check=False).stderr.splitlines()
    return "\n".join(line for line in out if ("[error]" in line or "[warn]" in line or "[crit]" in line)
                     and "while connecting to upstream" not in line)[-3000:]


def need_state():
    if not STATE:
        pytest.skip("needs the user and project of test_signup_login_project_and_a_live_chat_message")


def figure(name, **values):
    with FIGURES.open("a") as f:
        f.write(json.dumps({"figure": name, **values}) + "\n")


# --- a client through the published port -------------------------------------------------


class Api:
    def __init__(self):
        self.session = requests.Session()

    def request(self, method, path, token=None, body=None, timeout=15, **kw):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            kw["data"] = json.dumps(body)
        return self.session.request(method, URL + path, headers=headers, verify=CA, timeout=timeout, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)


def login(api, email):
    r = api.post("/api/accounts/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


class Load:
    """LOAD_CLIENTS clients, each with its own keep-alive connection, sending
    the requests of `calls` in turn until stopped; every answer recorded as
    (start, end, ok, what)."""

    def __init__(self, calls):
        self.calls, self.results, self.lock = calls, [], threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(LOAD_CLIENTS)]

    def _client(self, n):
        api, i = Api(), n
        while not self.stopping.is_set():
            call = self.calls[i % len(self.calls)]
            i += 1
            start = time.monotonic()
            try:
                ok, what = call(api)
            except requests.RequestException as e:
                ok, what = False, type(e).__name__
            if not ok:
                what = (call.__name__, what)
            with self.lock:
                self.results.append((start, time.monotonic(), ok, what))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(60)

    def failures(self):
        return [r for r in self.results if not r[2]]

    def slowest(self):
        return max((r[1] - r[0] for r in self.results), default=0.0)


def answer(r):
    """What a failed request got: status, request id and the body's start."""
    return r.status_code, r.headers.get("X-Request-Id"), r.text[:120]


def get_health(api):
    r = api.get("/api/projects/health")
    return (True, r.json()["release"]) if r.status_code == 200 else (False, answer(r))


def get_project(api):
    r = api.get(f"/api/projects/{STATE['project']['id']}", token=STATE["token"])
    return r.status_code == 200, answer(r)


def patch_project(api):
    r = api.patch(f"/api/projects/{STATE['project']['id']}", {"description": f"load {uuid.uuid4().hex[:8]}"},
                  token=STATE["token"])
    return r.status_code == 200, answer(r)


# --- the stack as it came up -------------------------------------------------------------


def test_every_service_answers_health_through_nginx():
    api = Api()
    for svc in SERVICES:
        r = api.get(f"/api/{svc}/health")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok" and r.json()["database"] == "ok", r.text
    assert len(containers("projects")) == 3
    # the image's OpenAPI document, and the reference page that reads it
    r = api.get("/api/openapi.json")
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.1"), r.text[:200]
    assert set(f"/api/{svc}/health" for svc in SERVICES) <= set(r.json()["paths"])
    assert api.get("/api-reference").status_code == 200
    for svc in (*SERVICES, "db", "nginx"):
        for c in containers(svc):
            assert health(c) == "healthy", (svc, c)


def test_published_on_loopback_only_and_plain_http_redirects():
    nginx = containers("nginx")[0]
    ports = json.loads(inspect(nginx, "{{json .NetworkSettings.Ports}}"))
    bound = {p: [b["HostIp"] for b in (v or [])] for p, v in ports.items()}
    assert bound["8080/tcp"] == ["127.0.0.1"] and bound["8443/tcp"] == ["127.0.0.1"], bound
    assert "8081/tcp" not in bound or not bound["8081/tcp"], bound
    https_port = URL.rsplit(":", 1)[1]
    for method in ("GET", "POST"):
        r = requests.request(method, HTTP_URL + "/api/accounts/login?x=1", allow_redirects=False, timeout=5)
        assert r.status_code == 308, (method, r.status_code, r.text)
        assert r.headers["Location"] == f"https://127.0.0.1:{https_port}/api/accounts/login?x=1", r.headers


def test_nginx_resolves_through_the_containers_own_resolver():
    nginx = containers("nginx")[0]
    resolv = podman("exec", nginx, "cat", "/etc/resolv.conf").stdout
    first = next(line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver"))
    upstreams = podman("exec", nginx, "cat", "/run/pilotlight/nginx/upstreams.conf").stdout
    assert f"resolver {first} valid=" in upstreams, (resolv, upstreams)
    assert "127.0.0.11" not in upstreams


def test_db_healthcheck_needs_the_password():
    db = containers("db")[0]
    check = json.loads(inspect(db, "{{json .Config.Healthcheck.Test}}"))
    assert check[0] == "CMD-SHELL", check
    secret = "/run/pilotlight/secrets/mysql_root.password"
    assert secret in check[1], check
    assert podman("exec", db, "sh", "-c", check[1], check=False).returncode == 0
    wrong = check[1].replace(secret, "/tmp/wrong.password")
    r = podman("exec", db, "sh", "-c", f"echo not-the-password >/tmp/wrong.password && {wrong}", check=False)
    assert r.returncode != 0, "the db healthcheck passed with a wrong password"


def test_mail_links_point_at_the_published_https_port():
    """accounts' PL_PUBLIC_URL (the base of the links in mail) is the stack's
    own address, and no SMTP setting is invented when none is given."""
    (acc,) = containers("accounts")
    env = dict(e.split("=", 1) for e in json.loads(inspect(acc, "{{json .Config.Env}}")))
    assert env.get("PL_PUBLIC_URL") == URL, env.get("PL_PUBLIC_URL")
    assert "PL_SMTP_URL" not in env and "PL_MAIL_FROM" not in env, env


def test_the_mysql_8_override_is_a_valid_compose_file():
    """docker/mysql-8.0.yml (not run here: no registry) at least merges."""
    out = compose("-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker/mysql-8.0.yml"), "config").stdout
    assert "image: mysql:8.0" in out and "mysql_native_password" in out, out


def test_signup_login_project_and_a_live_chat_message():
    api = Api()
    email = f"ct-{uuid.uuid4().hex[:12]}@example.com"
    r = api.post("/api/accounts/signup", {"email": email, "password": PASSWORD, "display_name": "Compose"})
    assert r.status_code == 201, r.text
    token = login(api, email)
    r = api.post("/api/projects", {"name": "in a container", "description": "made through nginx"}, token=token)
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    r = api.get(f"/api/projects/{project['id']}", token=token)
    assert r.status_code == 200 and r.json()["project"]["name"] == "in a container", r.text

    r = api.post("/api/chat/rooms/lobby/ticket", token=token)
    assert r.status_code == 201, r.text
    ws_url = URL.replace("https://", "wss://") + r.json()["url"]
    ws = websocket.create_connection(ws_url, timeout=5, sslopt={"ca_certs": CA})
    try:
        started = time.monotonic()
        r = api.post("/api/chat/rooms/lobby/messages", {"body": "hello from compose"}, token=token)
        assert r.status_code == 201, r.text
        sent = r.json()["message"]
        ws.settimeout(3)
        got = json.loads(ws.recv())
        got.pop("prev_id")  # (live events name the message before; the POST's answer does not)
        figure("live chat message", seconds=round(time.monotonic() - started, 3))
    finally:
        ws.close()
    assert got == sent
    STATE.update(email=email, token=token, project=project, message=sent)


def test_requests_reach_all_three_projects_containers():
    need_state()
    ids = containers("projects")
    assert len(ids) == 3
    before = {c: fcgi_get(c, "/api/projects/_status")["handlers"]["prj_project_get"]["invocations"] for c in ids}
    api, n = Api(), 90
    for _ in range(n):
        assert get_project(api)[0]
    after = {c: fcgi_get(c, "/api/projects/_status")["handlers"]["prj_project_get"]["invocations"] for c in ids}
    spread = sorted((after[c] - before[c] for c in ids), reverse=True)
    figure("requests over the projects containers", requests=n, per_container=spread)
    assert sum(spread) == n, spread
    assert min(spread) >= n // 10, f"a projects container got too few of {n} requests: {spread}"


def test_nginx_is_unhealthy_while_a_service_is_unreachable():
    nginx = containers("nginx")[0]
    check = ["exec", nginx, "/bin/sh", "/usr/share/pilotlight/nginx/compose/healthcheck.sh"]
    assert podman(*check, check=False).returncode == 0
    compose("stop", "chat")
    try:
        r = podman(*check, check=False)
        assert r.returncode != 0, "nginx's healthcheck passed with chat stopped"
        assert "/api/chat/health" in r.stderr, r.stderr
    finally:
        compose("start", "chat")
    wait_healthy("chat")
    wait_until(lambda: podman(*check, check=False).returncode == 0, 30, "nginx's healthcheck to pass again")


# --- failures and deploys under load -----------------------------------------------------


def test_a_killed_projects_container_fails_only_requests_in_flight():
    need_state()
    victim = containers("projects")[1]
    with Load([get_project, get_health]) as load:
        time.sleep(2)
        kill_start = time.monotonic()
        podman("kill", "--signal", "KILL", victim)
        kill_end = time.monotonic()
        time.sleep(5)  # nginx's resolver cache (5 s) forgets the address
    failed = load.failures()
    figure("projects container killed under load", clients=LOAD_CLIENTS, requests=len(load.results),
           failed=len(failed), slowest_s=round(load.slowest(), 2))
    assert len(load.results) > 100
    assert len(failed) <= LOAD_CLIENTS, f"more failures than requests in flight: {failed[:10]}\n{nginx_errors()}"
    late = [r for r in failed if r[0] > kill_end + 0.5]
    assert not late, f"requests that started after the kill failed: {late[:10]}, kill at {kill_start:.2f}"
    # back to three (the killed one is gone for good: podman kill is a stop)
    compose("rm", "-f", "projects")
    compose("up", "-d", "--no-build", "--no-deps", "--no-recreate", "--scale", "projects=3", "projects")
    wait_healthy("projects", 3)


def test_a_new_projects_image_rolls_out_with_no_failed_request():
    need_state()
    old = {c: inspect(c, "{{.Image}}") for c in containers("projects")}
    old_release = Api().get("/api/projects/health").json()["release"]
    # a new image: the same binary with bytes appended, so a new release (its hash)
    ctx = pathlib.Path(os.environ["PL_CT_DIR"]) / "roll"
    ctx.mkdir(exist_ok=True)
    (ctx / "Containerfile").write_text(
        f"FROM {SERVICE_IMAGE}\n"
        "LABEL pilotlight.test.roll=1\n"
        "USER root\n"
        f"RUN printf '\\nrolled {uuid.uuid4().hex}' >>/usr/local/bin/pl-projects\n"
        "USER pilotlight\n")
    podman("build", "-q", "--pull=false", "-t", SERVICE_IMAGE, str(ctx), timeout=300)
    new_image = inspect(SERVICE_IMAGE, "{{.Id}}")
    assert new_image not in old.values()

    with Load([get_health, get_project, patch_project]) as load:
        time.sleep(1)
        started = time.monotonic()
        r = run(["bash", str(ROOT / "scripts/compose-roll.sh"), "projects"], timeout=300, check=False)
        took = time.monotonic() - started
        time.sleep(1)
    (pathlib.Path(os.environ["PL_CT_DIR"]) / "roll.log").write_text(r.stdout + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    failed = load.failures()
    kinds = collections.Counter(r[3] for r in load.results if r[2] and isinstance(r[3], str))
    figure("projects image rolled out under load", clients=LOAD_CLIENTS, requests=len(load.results),
           failed=len(failed), seconds=round(took, 1), slowest_s=round(load.slowest(), 2),
           releases=dict(kinds))
    assert not failed, f"{len(failed)} failed requests during the roll: {failed[:10]}\n{nginx_errors()}"
    now = containers("projects")
    assert len(now) == 3 and not set(now) & set(old), (now, old)
    assert {inspect(c, "{{.Image}}") for c in now} == {new_image}
    api = Api()
    releases = {api.get("/api/projects/health").json()["release"] for _ in range(30)}
    assert len(releases) == 1 and old_release not in releases, (old_release, releases)


# --- the data outlives the containers ---------------------------------------------------


def test_down_and_up_keep_the_data():
    need_state()
    api = Api()
    r = api.get(f"/api/projects/{STATE['project']['id']}", token=STATE["token"])
    assert r.status_code == 200, r.text
    project = r.json()["project"]
    compose("down", timeout=180)
    for volume in ("db-data", "secrets", "tls"):
        podman("volume", "exists", f"{PROJECT}_{volume}")
    started = time.monotonic()
    compose("up", "-d", "--no-build", "--scale", "projects=3", timeout=300)
    wait_healthy("nginx", timeout=120)
    figure("up again after down, to healthy", seconds=round(time.monotonic() - started, 1))

    api = Api()
    # the token from before: the signing keys are in the secrets volume
    r = api.get("/api/accounts/me", token=STATE["token"])
    assert r.status_code == 200 and r.json()["user"]["email"] == STATE["email"], r.text
    token = login(api, STATE["email"])
    r = api.get(f"/api/projects/{project['id']}", token=token)
    assert r.status_code == 200 and r.json()["project"] == project, r.text
    r = api.get(f"/api/chat/rooms/lobby/messages?before={STATE['message']['id'] + 1}&limit=1", token=token)
    assert r.status_code == 200 and r.json()["messages"] == [STATE["message"]], r.text
