"""The Kubernetes manifests run by podman (tests/kubernetes/run.sh plays them
and runs this module): the probes as the kubelet would run them, then a
user's path through both fronts.

  PL_KB_PLAN      plan.json of manifests.py podman (pods, containers, probes)
  PL_KB_FIGURES   a file for the figures of this run (one JSON object a line)

`test_kube.py wait-ready PLAN WORKLOAD TIMEOUT` (run.sh): waits until every
container of the workload's pods passes its startup probe, if it has one,
and its readiness probe (the kubelet runs readiness only once startup passed).
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
import uuid

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def podman(*args, timeout=60, check=True):
    r = subprocess.run(["/usr/bin/podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    return r


class Plan:
    def __init__(self, path):
        self.data = json.loads(pathlib.Path(path).read_text())
        self.network = self.data["prefix"].rstrip("-")
        self._ips = {}

    def workload(self, name):
        return self.data["workloads"][name]

    def ip(self, pod):
        if pod not in self._ips:
            infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).stdout.strip()
            fmt = '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % self.network
            self._ips[pod] = podman("inspect", "--format", fmt, infra).stdout.strip()
        return self._ips[pod]

    def probe(self, pod, container, probe):
        """(passed, what): the probe run once, as the kubelet runs it."""
        if "exec" in probe:
            # the kubelet counts a probe that outlasts its timeoutSeconds as
            # failed (podman exec's own start is given 5 s more)
            try:
                r = podman("exec", f"{pod}-{container['name']}", *probe["exec"]["command"],
                           timeout=probe.get("timeoutSeconds", 1) + 5, check=False)
            except subprocess.TimeoutExpired:
                return False, f"timed out (timeoutSeconds {probe.get('timeoutSeconds', 1)})"
            return r.returncode == 0, (r.stdout + r.stderr).strip()[-300:]
        port = probe.get("httpGet", probe.get("tcpSocket", {}))["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
        try:
            if "httpGet" in probe:
                r = requests.get(f"http://{self.ip(pod)}:{port}{probe['httpGet'].get('path', '/')}",
                                 timeout=probe.get("timeoutSeconds", 1))
                return 200 <= r.status_code < 400, f"HTTP {r.status_code}"
            with socket.create_connection((self.ip(pod), port), timeout=probe.get("timeoutSeconds", 1)):
                return True, "connected"
        except (requests.RequestException, OSError) as e:
            return False, repr(e)

    def ready(self, name):
        w = self.workload(name)
        for pod in w["pods"]:
            for c in w["containers"]:
                for kind in ("startupProbe", "readinessProbe"):
                    if c.get(kind) and not self.probe(pod, c, c[kind])[0]:
                        return False
        return True


def wait_ready(plan_path, name, timeout):
    plan, deadline = Plan(plan_path), time.monotonic() + float(timeout)
    start = time.monotonic()
    while time.monotonic() < deadline:
        if plan.ready(name):
            print(f"{name}: ready after {time.monotonic() - start:.1f} s")
            return 0
        time.sleep(1)
    w = plan.workload(name)
    for pod in w["pods"]:
        for c in w["containers"]:
            for kind in ("startupProbe", "readinessProbe"):
                if c.get(kind):
                    print(f"{pod}/{c['name']} {kind}: {plan.probe(pod, c, c[kind])}", file=sys.stderr)
    print(f"{name}: not ready within {timeout} s", file=sys.stderr)
    return 1


# --- the tests ------------------------------------------------------------------------------

if "PL_KB_PLAN" in os.environ:
    PLAN = Plan(os.environ["PL_KB_PLAN"])
    FIGURES = pathlib.Path(os.environ["PL_KB_FIGURES"])
    FRONTS = [f"http://{PLAN.ip(p)}:8080" for p in PLAN.workload("nginx")["pods"]]
    SERVICES = (ROOT / "services/list").read_text().split()


def figure(name, **values):
    with FIGURES.open("a") as f:
        f.write(json.dumps({"figure": name, **values}) + "\n")


def call(front, method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, front + path, headers=headers, json=body, timeout=15)


def test_every_probe_of_every_running_container_passes():
    checked, failed = 0, []
    for name, w in PLAN.data["workloads"].items():
        if w["kind"] == "Job":
            continue  # it ran (exit 0: run.sh)
        for pod in w["pods"]:
            for c in w["containers"]:
                for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if c.get(kind):
                        ok, what = PLAN.probe(pod, c, c[kind])
                        checked += 1
                        if not ok:
                            failed.append(f"{pod}/{c['name']} {kind}: {what}")
    assert not failed, failed
    assert checked >= 2 * (len(SERVICES) + 2), checked


def test_two_fronts_and_every_service_healthy_through_each():
    assert len(FRONTS) == 2, FRONTS
    for front in FRONTS:
        for svc in SERVICES:
            r = call(front, "GET", f"/api/{svc}/health")
            assert r.status_code == 200 and r.json()["status"] == "ok", (front, svc, r.text)


def sse_reader(url, got, ready):
    """An EventSource subscriber: each `data:` line's JSON into `got`."""
    with requests.get(url, headers={"Accept": "text/event-stream"}, stream=True, timeout=(5, 10)) as r:
        assert r.status_code == 200, r.text
        ready.set()
        for line in r.iter_lines(chunk_size=1, decode_unicode=True):  # each byte as it comes
            if line and line.startswith("data:"):
                got.append(json.loads(line[5:].strip()))
                return


def test_signup_project_and_a_chat_message_live_on_both_fronts():
    import websocket
    one, two = FRONTS
    email = f"kube-{uuid.uuid4().hex[:12]}@example.com"
    r = call(one, "POST", "/api/accounts/signup", body={"email": email, "password": PASSWORD,
                                                         "display_name": "Kube"})
    assert r.status_code == 201, r.text
    r = call(two, "POST", "/api/accounts/login", body={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = call(one, "POST", "/api/projects", token, {"name": "on kubernetes", "description": "two fronts"})
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    r = call(two, "GET", f"/api/projects/{project['id']}", token)
    assert r.status_code == 200 and r.json()["project"]["name"] == "on kubernetes", r.text

    # a WebSocket subscriber on front 2, an EventSource one on front 1
    r = call(two, "POST", "/api/chat/rooms/lobby/ticket", token)
    assert r.status_code == 201, r.text
    ws = websocket.create_connection(two.replace("http://", "ws://") + r.json()["url"], timeout=5)
    r = call(one, "POST", "/api/chat/rooms/lobby/ticket", token)
    assert r.status_code == 201, r.text
    sse_got, sse_ready = [], threading.Event()
    sse = threading.Thread(target=sse_reader, args=(one + r.json()["url"], sse_got, sse_ready), daemon=True)
    sse.start()
    try:
        assert sse_ready.wait(5), "the EventSource subscriber on front 1 did not connect"
        started = time.monotonic()
        r = call(one, "POST", "/api/chat/rooms/lobby/messages", token, {"body": "hello from front 1"})
        assert r.status_code == 201, r.text
        sent = r.json()["message"]
        ws.settimeout(5)
        got = json.loads(ws.recv())
        across = time.monotonic() - started
        sse.join(5)
    finally:
        ws.close()
    assert got == sent, "the WebSocket subscriber on front 2 got another message"
    assert sse_got == [sent], f"the EventSource subscriber on front 1 got {sse_got}"
    figure("chat message posted through front 1, received on front 2 (WebSocket)", seconds=round(across, 3))


def test_a_hung_database_fails_no_liveness_probe():
    """MariaDB frozen (a hung server, or one cut off without a reset: what a
    lost node or a partition looks like): every service pod's liveness probe
    still passes within its timeoutSeconds, also on a worker that holds a
    connection (a health request there waits for the query timeout, 10 s),
    so the kubelet restarts nothing."""
    w = PLAN.workload("mariadb")
    db = f"{w['pods'][0]}-{w['containers'][0]['name']}"
    for front in FRONTS:  # every pool has a worker with an open connection
        for svc in SERVICES:
            assert call(front, "GET", f"/api/{svc}/health").status_code == 200
    podman("pause", db)
    try:
        time.sleep(1.5)  # past the second in which a worker's health skips its round trip
        for svc in SERVICES:
            w = PLAN.workload(svc)
            c = w["containers"][0]
            for pod in w["pods"]:
                started = time.monotonic()
                ok, what = PLAN.probe(pod, c, c["livenessProbe"])
                took = time.monotonic() - started
                assert ok, f"{pod} not alive while its database hangs: {what}"
                assert took < c["livenessProbe"]["timeoutSeconds"], f"{pod}'s liveness probe took {took:.1f} s"
    finally:
        podman("unpause", db)


def test_a_database_outage_fails_readiness_but_not_liveness():
    """The services' probes: with MariaDB stopped every service pod is
    unready (out of its Service) but alive (the kubelet restarts nothing);
    once it is back they are ready again by themselves."""
    db = PLAN.workload("mariadb")["pods"][0]
    podman("pod", "stop", "-t", "10", db, timeout=60)
    try:
        for svc in SERVICES:
            w = PLAN.workload(svc)
            c = w["containers"][0]
            for pod in w["pods"]:
                assert not PLAN.probe(pod, c, c["readinessProbe"])[0], f"{pod} ready without its database"
                ok, what = PLAN.probe(pod, c, c["livenessProbe"])
                assert ok, f"{pod} not alive without its database: {what}"
    finally:
        podman("pod", "start", db, timeout=60)
    started = time.monotonic()
    deadline = started + 90
    while not all(PLAN.ready(svc) for svc in SERVICES):
        assert time.monotonic() < deadline, "the services were not ready again 90 s after MariaDB came back"
        time.sleep(1)
    figure("services ready again after MariaDB's pod started", seconds=round(time.monotonic() - started, 1))
    for front in FRONTS:
        r = call(front, "GET", "/api/projects/health")
        assert r.status_code == 200, r.text


def test_the_migrations_job_migrated_every_service():
    w = PLAN.workload("pl-migrate")
    logs = podman("logs", f"{w['pods'][0]}-{w['containers'][0]['name']}").stdout + \
        podman("logs", f"{w['pods'][0]}-{w['containers'][0]['name']}").stderr
    for svc in SERVICES:
        assert svc in logs, f"the migrations Job's log does not name {svc}:\n{logs[-1500:]}"


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "wait-ready":
        sys.exit(wait_ready(*sys.argv[2:]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
