"""Deploys, rollbacks and releases (issue 13): a release swapped into running
pools under a steady mixed load fails no request, and one that is refused
(it exits at start, its workers crash, its migrations fail) leaves the old
release serving, with `deploy` saying why and exiting non-zero.

The load: 16 clients, each on a kept-alive connection from its own
127.0.0.x address (the stack's per-address rate limits apply to each), each
cycling through GET and PATCH of its own project, a chat post and, every
tenth turn, a login. Like a browser, a client sends a request again, once,
on a new connection when the kept-alive one it used was closed before any
answer came (RFC 9112, 9.3.1: nginx closes idle kept-alive connections when
a reload retires its old workers); those are counted, not failures. A
"changed binary" is the live one with bytes appended (an ELF file ignores
them): another release, the same code. Every test puts the stack back on a
release of the build before it ends."""
import hashlib
import http.client
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from conftest import BASE_URL, DEFAULT_PASSWORD, ROOT, VAR, sql, wait_until

HOST, PORT = BASE_URL.split("//")[1].split(":")


def pilotlight(*args, env=None, timeout=180):
    e = dict(os.environ, PL_VAR=str(VAR))
    e.update(env or {})
    return subprocess.run([str(ROOT / "pilotlight"), *args], env=e, capture_output=True, text=True, timeout=timeout)


def release_of(svc):
    """The release the service's health reports (the binary's SHA-256, 12 hex digits)."""
    conn = http.client.HTTPConnection(HOST, int(PORT), timeout=5)
    conn.request("GET", f"/api/{svc}/health")
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body["release"]


def live_release(svc):
    return os.readlink(VAR / "releases" / svc / "live")


def live_binary(svc):
    return VAR / "releases" / svc / "live" / f"pl-{svc}"


def changed_binary(svc, tmp):
    """Another release of the same code: the live binary with bytes appended."""
    path = pathlib.Path(tmp) / f"pl-{svc}-{uuid.uuid4().hex[:8]}"
    shutil.copyfile(live_binary(svc), path)
    with open(path, "ab") as f:
        f.write(f"\nrelease {uuid.uuid4()}\n".encode())
    path.chmod(0o755)
    return path


def script(tmp, text, shell="/bin/sh"):
    path = pathlib.Path(tmp) / f"release-{uuid.uuid4().hex[:8]}"
    path.write_text(f"#!{shell}\n" + text + "\n")
    path.chmod(0o755)
    return path


def wrapper(tmp, settings, binary):
    """A release that is a script running binary with some settings. It
    keeps argv[0] (bash's exec -a): the supervisor runs its own argv[0]
    again for the next swap, which must be the live link, not binary."""
    return script(tmp, f'{settings} exec -a "$0" {binary} "$@"', shell="/bin/bash")


class Client:
    """One user on one kept-alive connection from its own address."""

    def __init__(self, n):
        self.addr = f"127.0.0.{20 + n}"
        self.conn = None
        self.resent = 0  # requests sent again after their kept-alive connection closed unanswered
        self.email = f"deploy-{uuid.uuid4().hex[:12]}@example.com"
        r = self.call("POST", "/api/accounts/signup",
                      {"email": self.email, "password": DEFAULT_PASSWORD, "display_name": f"Deployer {n}"})
        assert r[0] == 201, r
        self.login()
        status, body = self.call("POST", "/api/projects", {"name": "deploy load"})
        assert status == 201, body
        self.project = body["project"]["id"]

    def call(self, method, path, body=None):
        """One request; sent again, once, on a new connection when the
        kept-alive one was closed before any answer (what every browser does)."""
        reused = self.conn is not None
        try:
            return self.send(method, path, body)
        except (ConnectionResetError, BrokenPipeError):  # http.client.RemoteDisconnected is one
            if not reused:
                raise
            self.resent += 1
            return self.send(method, path, body)

    def send(self, method, path, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, int(PORT), timeout=15, source_address=(self.addr, 0))
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp.status, json.loads(data) if data else None

    def login(self):
        self.token = None
        status, body = self.call("POST", "/api/accounts/login", {"email": self.email, "password": DEFAULT_PASSWORD})
        assert status == 200, body
        self.token = body["access_token"]


class MixedLoad:
    """16 clients until stopped (at most `seconds`); every answer that is not
    the expected status, and every connection error, is a failure."""

    def __init__(self, clients=16, seconds=90, logins_every=10):
        self.clients = [Client(n) for n in range(clients)]
        self.seconds, self.logins_every = seconds, logins_every
        self.ok, self.failures, self.stop = 0, [], threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(c,), daemon=True) for c in self.clients]

    def step(self, c, turn):
        if turn % self.logins_every == self.logins_every - 1:
            c.login()
            return
        ops = [("GET", f"/api/projects/{c.project}", None, 200),
               ("PATCH", f"/api/projects/{c.project}", {"name": f"turn {turn}"}, 200),
               ("POST", "/api/chat/rooms/lobby/messages",  # a client_msg_id makes a post safe to send again
                {"body": f"deploy turn {turn}", "client_msg_id": uuid.uuid4().hex}, 201)]
        method, path, body, want = ops[turn % len(ops)]
        status, answer = c.call(method, path, body)
        if status != want:
            raise AssertionError(f"{method} {path}: {status} {answer}")

    def run(self, c):
        deadline, turn = time.monotonic() + self.seconds, 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                self.step(c, turn)
                with self.lock:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is counted, whatever it is
                with self.lock:
                    self.failures.append(f"{c.addr}: {e!r}"[:300])
            turn += 1

    def wait_for(self, n, timeout=30):
        start = self.ok
        wait_until(lambda: self.ok >= start + n, timeout=timeout, interval=0.05, message=f"{n} answers under load")

    def __enter__(self):
        for t in self.threads:
            t.start()
        self.wait_for(50)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def resent(self):
        return sum(c.resent for c in self.clients)

    def check(self):
        assert not self.failures, f"{len(self.failures)} failed of {self.ok + len(self.failures)}: {self.failures[:5]}"
        assert self.ok >= 100, self.ok


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pl-deploy-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def back_to_build():
    """Whatever a test deploys, the build's own release is live again after it."""
    yield
    build = pathlib.Path(os.environ.get("PL_BUILD_DIR", ROOT / "build"))
    for svc in ("projects", "accounts"):
        build_bin = build / "services" / svc / f"pl-{svc}"
        p = pilotlight("deploy", "--binary", str(build_bin), svc)
        assert p.returncode == 0, p.stdout + p.stderr


def test_a_deploy_under_mixed_load_fails_no_request(tmp, back_to_build):
    before = release_of("projects")
    new = changed_binary("projects", tmp)
    with MixedLoad() as load:
        started = time.monotonic()
        p = pilotlight("deploy", "--binary", str(new), "projects")
        took = time.monotonic() - started
        load.wait_for(200)
    assert p.returncode == 0, p.stdout + p.stderr
    load.check()
    after = release_of("projects")
    assert after != before and after == live_release("projects"), (before, after)
    assert f"release {after} serves" in p.stdout, p.stdout
    assert took < 30, took
    # the release keeps what it was made of, and the list says which is live
    meta = json.loads((VAR / "releases" / "projects" / after / "release.json").read_text())
    assert meta["id"] == after and meta["sha256"].startswith(after) and meta["commit"], meta
    listing = pilotlight("releases", "projects").stdout
    assert any(line.split()[:2] == ["live", after] for line in listing.splitlines()), listing
    assert before in listing, listing


def test_rollback_under_load_fails_no_request(tmp, back_to_build):
    first = release_of("projects")
    p = pilotlight("deploy", "--binary", str(changed_binary("projects", tmp)), "projects")
    assert p.returncode == 0, p.stdout + p.stderr
    with MixedLoad() as load:
        p = pilotlight("rollback", "projects")
        load.wait_for(200)
    assert p.returncode == 0, p.stdout + p.stderr
    load.check()
    assert release_of("projects") == first == live_release("projects")


@pytest.mark.parametrize("kind", ["exits at start", "workers crash", "never ready", "bad configuration"])
def test_a_refused_release_leaves_the_old_one_serving(tmp, kind):
    before = release_of("projects")
    good = changed_binary("projects", tmp)
    binary = {
        "exits at start": script(tmp, f'[ "$1" = --check-config ] && exec {good} "$@"; exit 1'),
        "workers crash": script(tmp, f'PL_TEST_FAULT=crash_on_request exec {good} "$@"'),
        "never ready": script(tmp, f'[ "$1" = --check-config ] && exec {good} "$@"; exec sleep 60'),
        "bad configuration": script(tmp, f'PL_MAX_CHILDREN=0 exec {good} "$@"'),
    }[kind]
    refused = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
    with MixedLoad(clients=8) as load:
        p = pilotlight("deploy", "--binary", str(binary), "projects")
        load.wait_for(100)
    assert p.returncode != 0, p.stdout + p.stderr
    load.check()
    why = {"exits at start": "stopped at start", "workers crash": "first worker failed",
           "never ready": "was not ready within", "bad configuration": "refuses the configuration"}[kind]
    assert why in p.stderr and ("was not swapped" in p.stderr or "nothing was swapped" in p.stderr), p.stderr
    assert release_of("projects") == before == live_release("projects")
    # a release that never went live is not kept
    assert not (VAR / "releases" / "projects" / refused).exists()


def test_a_failing_migration_stops_the_deploy_with_nothing_swapped(tmp):
    before = release_of("projects")
    migrations = pathlib.Path(tmp) / "migrations"
    shutil.copytree(ROOT / "migrations", migrations)
    (migrations / "projects" / "900_broken.sql").write_text("ALTER TABLE no_such_table ADD COLUMN x INT;\n")
    p = pilotlight("deploy", "--binary", str(changed_binary("projects", tmp)), "projects",
                   env={"PL_MIGRATIONS_DIR": str(migrations)})
    assert p.returncode != 0, p.stdout + p.stderr
    assert "migrations failed" in p.stderr and "nothing was swapped" in p.stderr, p.stderr
    assert release_of("projects") == before == live_release("projects")
    assert sql("SELECT COUNT(*) FROM projects.schema_migrations WHERE version = 900") == [["0"]]


def test_deploying_accounts_while_logins_run_fails_no_request(tmp, back_to_build):
    before = release_of("accounts")
    with MixedLoad(logins_every=2) as load:
        p = pilotlight("deploy", "--binary", str(changed_binary("accounts", tmp)), "accounts")
        load.wait_for(200)
    assert p.returncode == 0, p.stdout + p.stderr
    load.check()
    assert release_of("accounts") != before


def test_a_rolling_deploy_of_three_pools_fails_no_request(tmp, back_to_build):
    try:
        with MixedLoad() as load:
            # the up reloads nginx: its old workers close their idle
            # kept-alive connections as they go, which the clients meet as
            # connections closed unanswered, and send again
            p = pilotlight("up", "--scale", "projects=3")
            assert p.returncode == 0, p.stdout + p.stderr
            p = pilotlight("deploy", "--binary", str(changed_binary("projects", tmp)), "projects")
            load.wait_for(200)
        assert p.returncode == 0, p.stdout + p.stderr
        load.check()
        new = live_release("projects")
        for inst in ("projects", "projects-2", "projects-3"):
            assert f"{inst}: release {new} serves" in p.stdout, p.stdout
            # each pool's master runs the new release
            master = int((VAR / "run" / f"{inst}.pid").read_text())
            assert os.readlink(f"/proc/{master}/exe") == str(VAR / "releases" / "projects" / new / "pl-projects")
    finally:
        p = pilotlight("up", "--scale", "projects=1")
        assert p.returncode == 0, p.stdout + p.stderr


def test_a_release_whose_api_crashes_after_the_swap_is_rolled_back(tmp):
    """Its health check passes (built-in routes answer), so the swap takes
    it; its own routes crash. The watch after the swap sees the crashes and
    puts the old release back: deploy fails saying why, and the pools serve
    as before (the fault went with the release)."""
    before = release_of("projects")
    binary = wrapper(tmp, "PL_TEST_FAULT=crash_on_api", changed_binary("projects", tmp))
    refused = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
    with MixedLoad(clients=8) as load:
        p = pilotlight("deploy", "--binary", str(binary), "projects")
        failed_during = len(load.failures)
        load.wait_for(100)
        failed_after = len(load.failures) - failed_during
    assert p.returncode != 0, p.stdout + p.stderr
    assert "crashed" in p.stderr and f"release {refused} was rolled back" in p.stderr, p.stderr
    assert f"release {before} serves" in p.stdout, p.stdout
    assert failed_after == 0, load.failures[failed_during:][:5]
    assert release_of("projects") == before == live_release("projects")
    assert not (VAR / "releases" / "projects" / refused).exists()
    listing = pilotlight("releases", "projects").stdout
    assert refused not in listing, listing


def test_up_leaves_a_deployed_binary_and_a_rollback_alone(tmp, back_to_build):
    """up swaps in a release only when the build changed since its last
    release: not when a rollback or a deploy --binary made another one live;
    and after down, up starts the live release, not the build."""
    build_release = release_of("projects")
    deployed = changed_binary("projects", tmp)
    p = pilotlight("deploy", "--binary", str(deployed), "projects")
    assert p.returncode == 0, p.stdout + p.stderr
    new = live_release("projects")
    p = pilotlight("up")
    assert p.returncode == 0, p.stdout + p.stderr
    assert release_of("projects") == new == live_release("projects"), p.stdout
    p = pilotlight("rollback", "projects")
    assert p.returncode == 0, p.stdout + p.stderr
    p = pilotlight("up")
    assert p.returncode == 0, p.stdout + p.stderr
    assert release_of("projects") == build_release == live_release("projects"), p.stdout
    p = pilotlight("deploy", "--binary", str(deployed), "projects")
    assert p.returncode == 0, p.stdout + p.stderr
    # deploy with no service named: nothing was rebuilt, nothing is deployed
    p = pilotlight("deploy")
    assert p.returncode == 0 and "nothing to deploy" in p.stdout, p.stdout + p.stderr
    assert release_of("projects") == new
    for step in ("down", "up"):
        p = pilotlight(step, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
    assert release_of("projects") == new == live_release("projects")


def test_a_deploy_to_a_stopped_pool_is_live_for_the_next_up(tmp, back_to_build):
    """With the service's pool stopped (the rest of the stack up), a deploy
    checks the release and runs its migrations, makes it live, says that the
    next up starts it; up then starts exactly that release."""
    supervisor = int((VAR / "run" / "projects.supervisor.pid").read_text())
    os.kill(supervisor, 15)
    wait_until(lambda: not (VAR / "run" / "projects.supervisor.pid").exists(), timeout=30,
               message="the projects pool to stop")
    try:
        p = pilotlight("deploy", "--binary", str(changed_binary("projects", tmp)), "projects")
        assert p.returncode == 0, p.stdout + p.stderr
        new = live_release("projects")
        assert f"release {new} is live, and the next ./pilotlight up starts it" in p.stdout, p.stdout
    finally:
        p = pilotlight("up")
        assert p.returncode == 0, p.stdout + p.stderr
    assert release_of("projects") == new


def test_a_damaged_release_is_refused_and_a_deploy_of_its_file_mends_it(tmp, back_to_build):
    """A kept release whose binary changed since it was made (a bad disk, a
    hand edit) no longer is what its id says: a rollback to it is refused
    and changes nothing; deploying the file it was made of mends it."""
    first = release_of("projects")
    good = changed_binary("projects", tmp)
    p = pilotlight("deploy", "--binary", str(good), "projects")
    assert p.returncode == 0, p.stdout + p.stderr
    made = live_release("projects")
    p = pilotlight("rollback", "projects")
    assert p.returncode == 0, p.stdout + p.stderr
    assert release_of("projects") == first == live_release("projects")
    kept = VAR / "releases" / "projects" / made / "pl-projects"
    with open(kept, "ab") as f:
        f.write(b"damaged\n")
    p = pilotlight("rollback", "projects", made)
    assert p.returncode != 0 and f"release {made} is damaged" in p.stderr, p.stdout + p.stderr
    assert "serves" not in p.stdout, p.stdout
    assert release_of("projects") == first == live_release("projects")
    p = pilotlight("deploy", "--binary", str(good), "projects")
    assert p.returncode == 0, p.stdout + p.stderr
    assert release_of("projects") == made == live_release("projects")
    assert hashlib.sha256(kept.read_bytes()).hexdigest().startswith(made)


@pytest.mark.parametrize("bad", ["history", "live", "build", "../projects", "0123456789ab"])
def test_rollback_refuses_what_is_not_a_kept_release(bad):
    """A rollback to something that is not a kept release's id is refused
    with a clear message, and nothing under releases/ changes."""
    base = VAR / "releases" / "projects"
    before = {q.name: q.stat().st_mtime_ns for q in base.iterdir()}
    live = live_release("projects")
    p = pilotlight("rollback", "projects", bad)
    assert p.returncode != 0, p.stdout + p.stderr
    why = "has no release" if bad == "0123456789ab" else "is not a release id"
    assert why in p.stderr and "refuses" not in p.stderr, p.stderr
    assert {q.name: q.stat().st_mtime_ns for q in base.iterdir()} == before
    assert live_release("projects") == live == release_of("projects")


def test_a_bad_setting_stops_a_deploy_before_anything(tmp):
    before = release_of("projects")
    binary = changed_binary("projects", tmp)
    refused = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
    p = pilotlight("deploy", "--binary", str(binary), "projects", env={"PL_RELEASES_KEEP": "0"})
    assert p.returncode != 0 and "PL_RELEASES_KEEP" in p.stderr, p.stdout + p.stderr
    assert "deploying" not in p.stdout, p.stdout
    assert release_of("projects") == before == live_release("projects")
    assert not (VAR / "releases" / "projects" / refused).exists()


def test_a_binary_that_hangs_is_refused_within_the_swap_timeout(tmp):
    """The runner runs a new binary only with a time limit (the pools' swap
    timeout, 5 s here): one that hangs on --check-config is refused in
    time, its release removed, never shown as live."""
    before = release_of("projects")
    binary = script(tmp, "exec sleep 600")
    refused = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
    started = time.monotonic()
    p = pilotlight("deploy", "--binary", str(binary), "projects", timeout=120)
    took = time.monotonic() - started
    assert p.returncode != 0 and "did not answer within" in p.stderr, p.stdout + p.stderr
    assert took < 30, took
    assert release_of("projects") == before == live_release("projects")
    assert not (VAR / "releases" / "projects" / refused).exists()
    assert refused not in pilotlight("releases", "projects").stdout


def test_the_deploy_waits_as_long_as_the_pool_may_take(tmp):
    """A deploy run with another PL_SWAP_TIMEOUT_MS than the pools were
    started with waits by the pools' (5 s here): the supervisor's verdict is
    what it reports, and no release is deleted under a swap still going."""
    before = release_of("projects")
    good = changed_binary("projects", tmp)
    binary = script(tmp, f'[ "$1" = --check-config ] && exec {good} "$@"; exec sleep 60')
    p = pilotlight("deploy", "--binary", str(binary), "projects", env={"PL_SWAP_TIMEOUT_MS": "100"})
    assert p.returncode != 0, p.stdout + p.stderr
    assert "was not ready within 5000 ms" in p.stderr and "did not say" not in p.stderr, p.stderr
    assert release_of("projects") == before == live_release("projects")


def test_a_pool_whose_supervisor_was_killed_is_taken_over_without_a_failed_request(tmp, back_to_build):
    """kill -9 of a pool's supervisor: its master serves on, but nothing
    would restart it. status says so (exit 3); up gives the pool a new
    supervisor, which takes the master's socket and swaps in a new master
    (no request fails); a deploy does the same on its own."""
    from conftest import master_pid
    for step in ("up", "deploy"):
        supervisor = int((VAR / "run" / "projects.supervisor.pid").read_text())
        old_master = master_pid("projects")
        os.kill(supervisor, 9)
        wait_until(lambda: not os.path.exists(f"/proc/{supervisor}/exe"), timeout=10, message="the supervisor to go")
        p = pilotlight("status")
        assert p.returncode == 3 and "supervisor is gone" in p.stdout, p.stdout + p.stderr
        with MixedLoad(clients=8) as load:
            args = ("up",) if step == "up" else ("deploy", "--binary", str(changed_binary("projects", tmp)), "projects")
            p = pilotlight(*args)
            load.wait_for(100)
        assert p.returncode == 0, p.stdout + p.stderr
        load.check()
        assert "a new one takes over" in p.stdout, p.stdout
        assert master_pid("projects") != old_master
        p = pilotlight("status")
        assert p.returncode == 0 and "supervisor is gone" not in p.stdout, p.stdout + p.stderr
