"""Operations: TLS and security headers on the public server, metrics and
nginx's counters on the internal listener, reloads without failed requests,
scaled pools (issue 7)."""
import os
import socket
import subprocess

import pytest
import requests
import urllib3  # noqa: F401 (named by the warning filter below)

from conftest import BASE_URL, INTERNAL_URL, SERVICES, assert_error

HTTPS_URL = os.environ.get("PL_HTTPS_URL", "https://127.0.0.1:8443")

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")


def https_get(path, **kw):
    """The HTTPS listener (self-signed certificate in the test stack)."""
    return requests.get(HTTPS_URL + path, verify=False, timeout=10, **kw)


def assert_security_headers(resp, https):
    h = resp.headers
    for name in SECURITY_HEADERS:
        assert h.get(name), f"{resp.request.method} {resp.url} ({resp.status_code}) lacks {name}: {dict(h)}"
    csp = h["Content-Security-Policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"], csp
    assert directives["frame-ancestors"] == ["'none'"], csp
    assert directives["object-src"] == ["'none'"], csp
    # the web client's scripts: same origin only, never inline or eval
    assert "'unsafe-inline'" not in directives.get("script-src", ["'self'"]), csp
    assert "'unsafe-eval'" not in directives.get("script-src", ["'self'"]), csp
    assert "'self'" in directives["connect-src"], csp  # API and live chat
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] in ("no-referrer", "strict-origin-when-cross-origin", "same-origin")
    if https:
        assert h.get("Strict-Transport-Security", "").startswith("max-age="), dict(h)
        assert int(h["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 86400 * 180
    else:
        assert "Strict-Transport-Security" not in h, dict(h)


# What the public server answers, one of each kind: a service's 200 and its
# own JSON error, nginx's own routing error, static content, an nginx error
# page (body too large), a rate-limit-free POST.
PUBLIC_CASES = [
    ("service 200", "GET", "/api/accounts/health", 200, None),
    ("service error", "GET", "/api/projects/no-such-thing/at-all", None, None),
    ("service 401", "GET", "/api/accounts/me", 401, None),
    ("nginx 404", "GET", "/api/nope", 404, None),
    ("nginx internal 404", "GET", "/api/projects/_status", 404, None),
    ("static", "GET", "/", 200, None),
    ("static asset miss", "GET", "/assets/nope.js", 404, None),
    ("nginx 413", "POST", "/api/projects", 413, b"x" * (3 * 1024 * 1024)),
]


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("name,method,path,status,body", PUBLIC_CASES, ids=[c[0] for c in PUBLIC_CASES])
def test_security_headers_on_every_public_response(https, name, method, path, status, body):
    base = HTTPS_URL if https else BASE_URL
    headers = {"Content-Type": "application/json"} if body else {}
    r = requests.request(method, base + path, data=body, headers=headers, verify=False, timeout=10)
    if status is not None:
        assert r.status_code == status, (name, r.status_code, r.text[:200])
    assert_security_headers(r, https)


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_security_headers_on_unparsable_request(https):
    """nginx's 400 for a request it could not even parse has them too."""
    import ssl
    host, port = (HTTPS_URL if https else BASE_URL).split("//")[1].split(":")
    raw = socket.create_connection((host, int(port)), timeout=5)
    if https:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = ctx.wrap_socket(raw, server_hostname=host)
    with raw:
        raw.sendall(b"GARBAGE\x01 / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 400"), head
    for name in SECURITY_HEADERS:
        assert f"\r\n{name.lower()}:" in head, head
    assert ("\r\nstrict-transport-security:" in head) == https, head


def test_service_error_is_json_with_headers_over_https():
    r = https_get("/api/accounts/me")
    assert_error(r, 401, r.json()["error"]["code"])
    assert_security_headers(r, True)


def test_internal_listener_is_plain_and_not_public_headers():
    """The internal listener is for services and scrapers: no HSTS there."""
    r = requests.get(INTERNAL_URL + "/api/accounts/health", timeout=5)
    assert r.status_code == 200
    assert "Strict-Transport-Security" not in r.headers


def test_https_serves_http2_and_the_same_api():
    out = subprocess.run(
        ["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
         HTTPS_URL + "/api/projects/health"],
        capture_output=True, text=True, timeout=20, check=True).stdout
    assert out == "2 200", out
    for svc in SERVICES:
        r = https_get(f"/api/{svc}/health")
        assert r.status_code == 200, r.text
        assert r.json().keys() == requests.get(f"{BASE_URL}/api/{svc}/health", timeout=5).json().keys()


def test_https_login_flow(make_user):
    """The whole API over TLS: a user made over HTTP logs in over HTTPS."""
    user = make_user()
    r = requests.post(HTTPS_URL + "/api/accounts/login", json={"email": user.email, "password": user.password},
                      verify=False, timeout=10)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = https_get("/api/accounts/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["user"]["id"] == user.id, r.text
    assert_security_headers(r, True)


def test_self_signed_certificate_made_on_first_run():
    from conftest import VAR
    cert = VAR / "secrets" / "tls.crt"
    key = VAR / "secrets" / "tls.key"
    assert cert.exists() and key.exists()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text, text
    # and it is the one the listener presents
    served = subprocess.run(
        ["openssl", "s_client", "-connect", HTTPS_URL.split("//")[1], "-servername", "localhost"],
        input="", capture_output=True, text=True, timeout=20).stdout
    fp_served = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=served,
                               capture_output=True, text=True, check=True).stdout
    fp_file = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert)],
                             capture_output=True, text=True, check=True).stdout
    assert fp_served == fp_file


# --- metrics -------------------------------------------------------------------------------

import re  # noqa: E402

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(?:,|$)')


def parse_prometheus(text):
    """Prometheus text format 0.0.4, strictly: every sample belongs to a
    family declared with HELP and TYPE before it, labels are well-formed.
    Returns {family: {"type": t, "samples": [(name, {labels}, value)]}}."""
    families, current = {}, None
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in families, f"family {name} declared twice"
            families[name] = {"type": None, "samples": []}
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name == current and kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            families[name]["type"] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels_text, value = m.groups()
        labels = {}
        if labels_text:
            consumed = "".join(x.group(0) for x in LABEL_RE.finditer(labels_text))
            assert consumed == labels_text, f"bad labels in {line!r}"
            labels = dict(LABEL_RE.findall(labels_text))
        fam = families[current]
        allowed = {current} if fam["type"] != "histogram" else {current + s for s in ("_bucket", "_sum", "_count")}
        assert name in allowed, f"{name} outside its family {current}"
        fam["samples"].append((name, labels, float(value)))
    return families


def scrape(svc):
    r = requests.get(f"{INTERNAL_URL}/api/{svc}/_metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    return parse_prometheus(r.text)


def sample(fams, family, name=None, **labels):
    """The one sample of a family (name: a histogram's _bucket/_sum/_count) with those labels."""
    name = name or family
    values = [v for n, lab, v in fams[family]["samples"]
              if n == name and all(lab.get(k) == str(w) for k, w in labels.items())]
    assert len(values) == 1, (family, labels, fams[family]["samples"])
    return values[0]


@pytest.mark.parametrize("svc", SERVICES)
def test_pool_metrics_cover_the_issue_list(svc):
    fams = scrape(svc)
    expected = {
        "pilotlight_workers": "gauge",
        "pilotlight_max_children": "gauge",
        "pilotlight_spawns_total": "counter",
        "pilotlight_idle_exits_total": "counter",
        "pilotlight_crashes_total": "counter",
        "pilotlight_max_children_reached_total": "counter",
        "pilotlight_invoke_refused_total": "counter",
        "pilotlight_handler_requests_total": "counter",
        "pilotlight_handler_duration_seconds": "histogram",
    }
    for name, kind in expected.items():
        assert fams.get(name, {}).get("type") == kind, (name, fams.get(name))
    states = {lab["state"] for _, lab, _ in fams["pilotlight_workers"]["samples"]}
    assert {"idle", "busy", "waiting", "starting", "exiting"} <= states
    assert {lab["reason"] for _, lab, _ in fams["pilotlight_invoke_refused_total"]["samples"]} == {"depth", "budget"}
    for _, lab, _ in (s for f in fams.values() for s in f["samples"]):
        assert lab["service"] == svc
    # every handler's histogram: buckets cumulative, +Inf equals _count
    hist = fams["pilotlight_handler_duration_seconds"]["samples"]
    handlers = {lab["handler"] for _, lab, _ in hist}
    assert "health" in handlers
    for h in handlers:
        buckets = [(lab["le"], v) for n, lab, v in hist if n.endswith("_bucket") and lab["handler"] == h]
        values = [v for _, v in buckets]
        assert values == sorted(values) and buckets[-1][0] == "+Inf", (h, buckets)
        bounds = [float(le) for le, _ in buckets[:-1]]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds)
        count = [v for n, lab, v in hist if n.endswith("_count") and lab["handler"] == h]
        assert count == [values[-1]]


@pytest.mark.parametrize("svc", SERVICES)
def test_pool_metrics_count_requests_by_handler_and_status(svc):
    def health_200(fams):
        try:
            return sample(fams, "pilotlight_handler_requests_total", service=svc, handler="health", status=200)
        except (AssertionError, KeyError):
            return 0

    before = scrape(svc)
    for _ in range(3):
        assert requests.get(f"{BASE_URL}/api/{svc}/health", timeout=5).status_code == 200
    after = scrape(svc)
    assert health_200(after) - health_200(before) == 3
    bucket = "pilotlight_handler_duration_seconds"
    inf = lambda f: sample(f, bucket, bucket + "_bucket", service=svc, handler="health", le="+Inf")  # noqa: E731
    assert inf(after) - inf(before) == 3


def test_invocation_refusals_in_metrics():
    before = scrape("projects")
    r = requests.get(f"{INTERNAL_URL}/api/projects/_test/recurse", timeout=30)
    assert r.status_code == 508, r.text
    after = scrape("projects")
    d = lambda reason: (sample(after, "pilotlight_invoke_refused_total", service="projects", reason=reason)  # noqa
                        - sample(before, "pilotlight_invoke_refused_total", service="projects", reason=reason))
    assert d("depth") == 1 and d("budget") == 0


def stub_status():
    r = requests.get(f"{INTERNAL_URL}/nginx_status", timeout=5)
    assert r.status_code == 200, r.text
    m = re.fullmatch(r"Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \n"
                     r"Reading: (\d+) Writing: (\d+) Waiting: (\d+) \n", r.text)
    assert m, r.text
    return [int(x) for x in m.groups()]


def test_nginx_stub_status_on_the_internal_listener_only():
    first = stub_status()
    assert first[0] >= 1 and first[1] >= first[2] >= 1
    for _ in range(3):
        requests.get(f"{BASE_URL}/api/accounts/health", timeout=5)
    assert stub_status()[3] >= first[3] + 4  # three requests and the second scrape
    # the public server has no such page (the web client's fallback answers)
    for base in (BASE_URL, HTTPS_URL):
        r = requests.get(f"{base}/nginx_status", timeout=5, verify=False)
        assert "Active connections" not in r.text and "server accepts" not in r.text


def run_pilotlight(*args, timeout=120, env=None):
    from conftest import ROOT, VAR
    env = dict(os.environ, PL_VAR=str(VAR), **(env or {}))
    return subprocess.run([str(ROOT / "pilotlight"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_status_summarises_processes_and_metrics():
    p = run_pilotlight("status")
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert len(out.splitlines()) <= 30, out  # one screen
    for svc in SERVICES:
        # the process line and the metrics line (workers idle/busy/waiting of max, requests ...)
        assert re.search(rf"^  {svc} +running +pid \d+ +workers \d+$", out, re.M), out
        assert re.search(rf"^  {svc} +\d+/\d+/\d+ of \d+ +\d+ +\d+ +\d+ +\d+ +[\d.]+ +\d+ +\d+ +\d+ +\d+ +\d+/\d+$",
                         out, re.M), out
    assert re.search(r"^  nginx +connections \d+ .* requests \d+$", out, re.M), out
    assert "no metrics" not in out and "no stub_status" not in out


# --- reload, scaling, shutdown under load -------------------------------------------------

import threading  # noqa: E402
import time  # noqa: E402

from conftest import VAR, log_lines, master_pid, wait_until, worker_pids  # noqa: E402


class Load:
    """A bounded load generator: a few threads sending requests over fresh
    connections (what a reload or a stopped pool may close is a kept-alive
    connection between requests, which a client retries by design) until
    stopped, at most `seconds`. Every answer that is not the expected status,
    and every connection error, is a failure."""

    def __init__(self, targets, threads=4, seconds=20):
        self.targets, self.threads, self.seconds = targets, threads, seconds
        self.ok, self.failures, self.stop_flag = 0, [], threading.Event()
        self.ok_times = []  # time.monotonic() of each good answer
        self.lock = threading.Lock()
        self.workers = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, i):
        deadline = time.monotonic() + self.seconds
        n = i
        while not self.stop_flag.is_set() and time.monotonic() < deadline:
            method, url, status = self.targets[n % len(self.targets)]
            n += 1
            try:
                r = requests.request(method, url, timeout=15, verify=False, headers={"Connection": "close"})
                good = r.status_code == status
                detail = f"{method} {url}: {r.status_code} {r.text[:120]}"
            except requests.RequestException as e:
                good, detail = False, f"{method} {url}: {e!r}"
            with self.lock:
                if good:
                    self.ok += 1
                    self.ok_times.append(time.monotonic())
                else:
                    self.failures.append(detail)

    def ok_since(self, t):
        with self.lock:
            return sum(1 for x in self.ok_times if x > t)

    def wait_ok_since(self, t, n, timeout=15):
        """Lets the load run until n good answers came after t (a busy machine is slow)."""
        wait_until(lambda: self.ok_since(t) >= n, timeout=timeout, interval=0.1,
                   message=f"{n} good answers under load")

    def __enter__(self):
        for t in self.workers:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.workers:
            t.join(30)


def load_targets(svc="projects"):
    return [
        ("GET", f"{BASE_URL}/api/{svc}/health", 200),
        ("GET", f"{HTTPS_URL}/api/accounts/health", 200),
        ("GET", f"{INTERNAL_URL}/api/{svc}/_test/sleep?ms=40", 200),  # in flight across the reload
        ("GET", f"{BASE_URL}/api/nope", 404),
    ]


def nginx_workers():
    pid = int((VAR / "run" / "nginx.pid").read_text())
    return sorted(int(p.name) for p in __import__("pathlib").Path("/proc").iterdir()
                  if p.name.isdigit() and _ppid(p) == pid)


def _ppid(p):
    try:
        return int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_reload_under_load_fails_no_request():
    # warm every pool so there are workers to replace
    for svc in SERVICES:
        requests.get(f"{INTERNAL_URL}/api/{svc}/_test/sleep?ms=300", timeout=10)
    old_nginx = nginx_workers()
    with Load(load_targets(), seconds=60) as load:
        load.wait_ok_since(0, 8)
        old_workers = {svc: set(worker_pids(svc)) for svc in SERVICES}
        for _ in range(2):  # twice: a reload during the last one's aftermath
            started = time.monotonic()
            p = run_pilotlight("reload")
            assert p.returncode == 0, p.stdout + p.stderr
            assert "nginx reloaded" in p.stdout, p.stdout
            load.wait_ok_since(started, 12)
    assert not load.failures, f"{len(load.failures)} failed of {load.ok + len(load.failures)}: {load.failures[:5]}"
    # nginx has new workers, and every pool's workers of before are gone
    assert not set(old_nginx) & set(nginx_workers())
    for svc in SERVICES:
        wait_until(lambda: not old_workers[svc] & set(worker_pids(svc)), timeout=10,
                   message=f"{svc}'s old workers to end")
        assert master_pid(svc)  # the master itself stays


def process_alive(pid):
    """It exists and is not a zombie (it may vanish while we look)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def scaled_logs(instances, rid_prefix):
    return {inst: sum(1 for ln in log_lines(inst) if str(ln.get("request_id", "")).startswith(rid_prefix))
            for inst in instances}


def test_scaled_service_spreads_load_and_survives_a_stopped_pool():
    instances = ["projects", "projects-2", "projects-3"]
    p = run_pilotlight("up", "--scale", "projects=3")
    assert p.returncode == 0, p.stdout + p.stderr
    try:
        upstreams = (VAR / "nginx" / "upstreams.conf").read_text()
        for inst in instances:
            assert f"/{inst}.sock " in upstreams, upstreams
        pids = {inst: int((VAR / "run" / f"{inst}.pid").read_text()) for inst in instances}
        assert len(set(pids.values())) == 3
        status = run_pilotlight("status").stdout
        for inst in instances:
            assert re.search(rf"^  {inst} +running +pid {pids[inst]} ", status, re.M), status
            # and each pool's own metrics (asked on its own socket)
            assert re.search(rf"^  {inst} +\d+/\d+/\d+ of \d+ +\d+ ", status, re.M), status
        # all three serve: each request's id (kept on the internal listener) is in one pool's log
        prefix = f"scale-{os.getpid()}-{time.monotonic_ns()}-"
        for i in range(30):
            r = requests.get(f"{INTERNAL_URL}/api/projects/health", headers={"X-Request-Id": f"{prefix}{i}"},
                             timeout=5)
            assert r.status_code == 200
        counts = wait_until(lambda: (c := scaled_logs(instances, prefix)) and sum(c.values()) == 30 and c,
                            timeout=10, message="30 request log lines")
        assert all(n >= 1 for n in counts.values()), counts
        # stopping one pool under load loses nothing: what it had in flight
        # finishes (graceful), new connections go to the other two
        with Load(load_targets(), seconds=60) as load:
            load.wait_ok_since(0, 8)
            killed = time.monotonic()
            os.kill(pids["projects-2"], 15)
            wait_until(lambda: not process_alive(pids["projects-2"]), timeout=15, message="projects-2 to stop")
            load.wait_ok_since(killed, 12)
        assert not load.failures, f"{len(load.failures)} failed of {load.ok + len(load.failures)}: {load.failures[:5]}"
    finally:
        p = run_pilotlight("up", "--scale", "projects=1")
        assert p.returncode == 0, p.stdout + p.stderr
    assert "/projects-2.sock" not in (VAR / "nginx" / "upstreams.conf").read_text()
    for inst in instances[1:]:
        assert not (VAR / "run" / f"{inst}.pid").exists()
    assert requests.get(f"{BASE_URL}/api/projects/health", timeout=5).status_code == 200


def test_up_refuses_a_bad_scale():
    for arg in ("projects=0", "projects=x", "nosuch=2", "projects"):
        p = run_pilotlight("up", "--scale", arg)
        assert p.returncode != 0 and "scale" in (p.stderr + p.stdout).lower(), (arg, p.stdout, p.stderr)
    assert "/projects-2.sock" not in (VAR / "nginx" / "upstreams.conf").read_text()


@pytest.mark.parametrize("svc", SERVICES)
def test_compose_healthcheck_speaks_fastcgi_to_a_pool(svc):
    """docker/healthcheck.sh (the compose services' healthcheck) against this
    stack's pools: healthy on a live pool, unhealthy where none listens."""
    from conftest import ROOT
    script = str(ROOT / "docker" / "healthcheck.sh")
    p = subprocess.run(["sh", script, svc, str(VAR / "run" / f"{svc}.sock")], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(["sh", script, svc, str(VAR / "run" / "nothing-here.sock")], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0


def test_zz_down_finishes_requests_in_flight():
    """Runs last in this file: the stack goes down and comes back up."""
    result = {}

    def slow():
        try:
            r = requests.get(f"{INTERNAL_URL}/api/projects/_test/sleep?ms=1500", timeout=30)
            result["status"], result["body"] = r.status_code, r.json()
        except requests.RequestException as e:
            result["error"] = repr(e)

    t = threading.Thread(target=slow)
    t.start()
    try:
        time.sleep(0.4)  # the request is in the pool's worker
        p = run_pilotlight("down")
        assert p.returncode == 0, p.stdout + p.stderr
        t.join(30)
        assert result.get("status") == 200 and result["body"]["slept_ms"] == 1500, result
        assert "killing" not in p.stderr, p.stderr
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{BASE_URL}/api/projects/health", timeout=5)
        # everything stopped: status says so, and still warns of a full disk
        p = run_pilotlight("status", env={"PL_DISK_WARN_PERCENT": "1"})
        assert p.returncode == 3 and "warning: the disk holding" in p.stdout, p.stdout + p.stderr
    finally:
        t.join(30)
        p = run_pilotlight("up")
        assert p.returncode == 0, p.stdout + p.stderr
    assert requests.get(f"{BASE_URL}/api/projects/health", timeout=5).status_code == 200


# --- live chat over HTTPS -------------------------------------------------------------------


def test_live_chat_over_https_websocket_and_http2_eventsource(make_user):
    """The live chat works over TLS: a WebSocket (wss, HTTP/1.1 upgrade) and
    an EventSource over HTTP/2 both get a message posted over HTTPS."""
    import json as jsonlib
    import ssl
    import websocket
    from urllib.parse import urlencode
    user = make_user(display_name="Tls Reader")
    host = HTTPS_URL.split("//")[1]
    query = urlencode({"access_token": user.token})
    path = f"/api/chat/rooms/lobby/live?{query}"
    ws = websocket.create_connection(f"wss://{host}{path}", timeout=5, sslopt={"cert_reqs": ssl.CERT_NONE})
    sse = subprocess.Popen(["curl", "-sk", "--http2", "-N", "--max-time", "8", "-H", "Accept: text/event-stream",
                            "-w", "\nHTTP_VERSION=%{http_version}\n", HTTPS_URL + path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # both subscribed
        body = f"over tls {time.monotonic_ns()}"
        r = requests.post(f"{HTTPS_URL}/api/chat/rooms/lobby/messages", json={"body": body}, verify=False,
                          headers={"Authorization": f"Bearer {user.token}"}, timeout=10)
        assert r.status_code == 201, r.text
        sent = r.json()["message"]
        got = jsonlib.loads(ws.recv())
        assert (got.pop("prev_id") or 0) < sent["id"]  # (live events name the message before)
        assert got == sent
    finally:
        ws.close()
        out, _ = sse.communicate(timeout=20)
    assert "HTTP_VERSION=2" in out, out[-300:]
    events = [jsonlib.loads(line[5:]) for line in out.splitlines() if line.startswith("data:")]
    for e in events:
        e.pop("prev_id", None)  # (only live events name the message before)
    assert sent in events, out[-500:]
