"""The Kubernetes manifests run by podman (tests/kubernetes/run.sh plays them
and runs this module): the probes as the kubelet would run them, the pods'
users and read-only roots as the processes have them, a user's path through
both fronts, the database's outages, a front's graceful stop.

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
import struct
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


def new_user(front):
    """A new account's access token (signed up and logged in through FRONT)."""
    email = f"kube-{uuid.uuid4().hex[:12]}@example.com"
    r = call(front, "POST", "/api/accounts/signup", body={"email": email, "password": PASSWORD, "display_name": "Kube"})
    assert r.status_code == 201, r.text
    r = call(front, "POST", "/api/accounts/login", body={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def running_containers():
    """(workload, pod, container plan, podman's container name) of every
    container that runs (not the Job's, which has exited)."""
    for name, w in PLAN.data["workloads"].items():
        if w["kind"] == "Job":
            continue
        for pod in w["pods"]:
            for c in w["containers"]:
                yield name, pod, c, f"{pod}-{c['name']}"


def processes_and_mounts(container):
    """Every process's /proc/PID/status (as dicts) and the mounts of the
    container, read inside it (sh and cat: every image has them)."""
    out = podman("exec", container, "sh", "-c",
                 'for f in /proc/[0-9]*/status; do echo "== $f"; cat "$f" 2>/dev/null; done; '
                 'echo "== mounts"; cat /proc/1/mounts').stdout
    procs, mounts = [], {}
    for block in out.split("== ")[1:]:
        head, _, body = block.partition("\n")
        if head == "mounts":
            mounts = {f[1]: f[3].split(",") for f in (line.split() for line in body.splitlines()) if len(f) >= 4}
            continue
        fields = dict(line.split(":\t", 1) for line in body.splitlines() if ":\t" in line)
        if fields:
            procs.append(fields)
    return procs, mounts


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


def test_every_container_runs_as_its_user_without_privileges_on_a_read_only_root():
    """What the securityContexts say, as the processes have it: every
    process of every running container (the image's entrypoint and what it
    started, and a shell exec'd as a probe is) runs as the uid and gid the
    manifests give, with no capability (effective, permitted, bounding),
    no_new_privs and a seccomp filter; the root filesystem is mounted
    read-only and a write to it fails as such (also to /tmp, unless a volume
    is mounted there: no tmpfs of podman's hides a missing emptyDir), and
    each of its emptyDir or claim volumes is writable. podman 4.3 ignores
    runAsNonRoot, seccompProfile and fsGroup: the uid and the filter are
    checked here, the fields by manifests.py check."""
    failed, seen = [], set()
    for name, pod, c, container in running_containers():
        uid, gid = c["runAsUser"], c["runAsGroup"]
        assert uid and gid and c["readOnlyRootFilesystem"], (container, c)
        procs, mounts = processes_and_mounts(container)
        assert len(procs) >= 2, (container, procs)  # the container's own processes and the shell
        for p in procs:
            what = f"{container}: process {p.get('Pid')} ({p.get('Name')})"
            if {int(x) for x in p["Uid"].split()} != {uid}:
                failed.append(f"{what} runs as uid {p['Uid']}, not {uid}")
            if {int(x) for x in p["Gid"].split()} != {gid}:
                failed.append(f"{what} runs as gid {p['Gid']}, not {gid}")
            for cap in ("CapEff", "CapPrm", "CapBnd"):
                if int(p[cap], 16) != 0:
                    failed.append(f"{what} has capabilities ({cap} {p[cap]})")
            if p.get("NoNewPrivs") != "1":
                failed.append(f"{what} may gain privileges (NoNewPrivs {p.get('NoNewPrivs')})")
            if p.get("Seccomp") != "2":
                failed.append(f"{what} has no seccomp filter (Seccomp {p.get('Seccomp')})")
        if "ro" not in mounts.get("/", []):
            failed.append(f"{container}: / is not mounted read-only: {mounts.get('/')}")
        for path in ["/"] + ([] if "/tmp" in c["writable"] else ["/tmp"]):
            r = podman("exec", container, "sh", "-c", f': >"{path.rstrip("/")}/.pl-kube-write-check"', check=False)
            if r.returncode == 0 or "Read-only file system" not in r.stderr:
                failed.append(f"{container}: a write to {path} did not fail as read-only: {r.returncode} {r.stderr.strip()}")
        for path in c["writable"]:
            if "rw" not in mounts.get(path, []):
                failed.append(f"{container}: {path} is no writable mount: {mounts.get(path)}")
            r = podman("exec", container, "sh", "-c", f'f="{path}/.pl-kube-write-check" && : >"$f" && rm "$f"',
                       check=False)
            if r.returncode != 0:
                failed.append(f"{container}: cannot write to its volume {path}: {r.stderr.strip()}")
        seen.add(name)
    assert not failed, "\n".join(failed)
    assert seen == {n for n, w in PLAN.data["workloads"].items() if w["kind"] != "Job"}, seen


def test_the_migrations_job_ran_as_its_user_on_a_read_only_root():
    """The Job's pod has exited (0: run.sh): its container as podman made it."""
    w = PLAN.workload("pl-migrate")
    c = w["containers"][0]
    info = json.loads(podman("inspect", f"{w['pods'][0]}-{c['name']}").stdout)[0]
    assert info["Config"]["User"] == f"{c['runAsUser']}:{c['runAsGroup']}", info["Config"]["User"]
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert "no-new-privileges" in info["HostConfig"]["SecurityOpt"], info["HostConfig"]["SecurityOpt"]
    assert not info["HostConfig"]["CapAdd"], info["HostConfig"]["CapAdd"]
    assert info["State"]["ExitCode"] == 0


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
        got_prev = got.pop("prev_id")  # (live events name the message before; the POST's answer does not)
        across = time.monotonic() - started
        sse.join(5)
    finally:
        ws.close()
    assert got == sent, "the WebSocket subscriber on front 2 got another message"
    assert [m.pop("prev_id") for m in sse_got] == [got_prev], f"the EventSource subscriber on front 1 got {sse_got}"
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


def test_workers_all_stuck_fail_no_liveness_probe():
    """Every worker of a pool stopped (SIGSTOP: to a new request, what every
    worker busy on a slow database under load looks like: it waits in the
    backlog). The liveness probe still passes within its timeout, since the
    pool's master answers it on its status socket (PL_STATUS_LISTEN) without
    a worker, so the kubelet restarts nothing; the same _status asked on
    the pool's port (a worker's: the probe before), and readiness, wait."""
    for svc in SERVICES:
        w = PLAN.workload(svc)
        c = w["containers"][0]
        assert "/run/pilotlight/status/status.sock" in c["livenessProbe"]["exec"]["command"], c["livenessProbe"]
        for pod in w["pods"]:
            name = f"{pod}-{c['name']}"
            # a worker up (ondemand: the readiness probe's keeps one), then
            # the processes: the supervisor (pid 1), its master, the master's workers
            assert PLAN.probe(pod, c, c["readinessProbe"])[0]
            procs, _ = processes_and_mounts(name)
            pl = {p["Pid"]: p["PPid"] for p in procs if p.get("Name") == f"pl-{svc}"}
            workers = [pid for pid, ppid in pl.items() if ppid in pl and pl[ppid] in pl]
            assert workers, f"{name}: no worker of pl-{svc} to stop: {procs}"
            # (a worker may end by itself meanwhile, its idle time over: the others are stopped)
            stopped = podman("exec", name, "sh", "-c", 'for p; do kill -STOP "$p" 2>/dev/null && echo "$p"; done; :',
                             "sh", *workers).stdout.split()
            try:
                assert stopped, f"{name}: every worker of pl-{svc} ended before it could be stopped: {workers}"
                started = time.monotonic()
                ok, what = PLAN.probe(pod, c, c["livenessProbe"])
                took = time.monotonic() - started
                assert ok, f"{pod} not alive with its workers stuck: {what}"
                assert took < c["livenessProbe"]["timeoutSeconds"], f"{pod}'s liveness probe took {took:.1f} s"
                old = podman("exec", name, "timeout", "3", "/usr/local/bin/healthcheck.sh", "--live", svc,
                             "127.0.0.1:9000", check=False, timeout=15)
                assert old.returncode == 124, f"{pod}: _status on the pool's port answered with every worker stopped"
                figure("liveness with every worker stopped (master's status socket)", pod=pod, seconds=round(took, 2))
            finally:
                podman("exec", name, "sh", "-c", 'for p; do kill -CONT "$p" 2>/dev/null; done; :', "sh", *stopped)


def test_a_service_pod_waits_for_its_migrations():
    """The init container's wait (docker/wait-migrations.sh, pl-migrate
    --check as the service's own user), run in each service's container:
    done at once when the Job has applied every migration of the image;
    with one more migration than the database holds (a release whose Job
    has not run), it waits, then fails after PL_MIGRATIONS_WAIT_S."""
    for svc in SERVICES:
        w = PLAN.workload(svc)
        assert w["initContainers"] == ["wait-migrations"], w["initContainers"]  # (left out of podman's pods)
        name = f"{w['pods'][0]}-{w['containers'][0]['name']}"
        r = podman("exec", name, "/usr/local/bin/wait-migrations.sh", check=False, timeout=30)
        assert r.returncode == 0 and "up to date" in r.stdout, (r.returncode, r.stdout, r.stderr)
        later = "/run/pilotlight/status/later-migrations"  # the one writable path
        podman("exec", name, "sh", "-c", f'mkdir -p {later} && cp /usr/share/pilotlight/migrations/{svc}/*.sql {later}/'
               f' && echo "SELECT 1;" >{later}/999_next_release.sql')
        try:
            started = time.monotonic()
            r = podman("exec", "-e", f"PL_MIGRATIONS_DIR={later}", "-e", "PL_MIGRATIONS_WAIT_S=3", name,
                       "/usr/local/bin/wait-migrations.sh", check=False, timeout=30)
            took = time.monotonic() - started
        finally:
            podman("exec", name, "rm", "-rf", later)
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "1 pending, the first 999_next_release.sql" in r.stderr, r.stderr
        assert "still not migrated for this image after 3 s" in r.stderr, r.stderr
        assert 3 <= took < 12, took


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


def test_a_front_stops_gracefully_within_its_grace_period():
    """A front's preStop hook run as the kubelet runs it (in the container,
    before SIGTERM; podman ignores preStop): the front serves on through the
    hook's wait (while its endpoints are removed), then nginx's graceful
    stop closes its live subscribers at once (WebSocket close 1001, the end
    of the EventSource stream: the client reconnects elsewhere and reads
    history), an upload that never ends is cut by worker_shutdown_timeout,
    and nginx is gone well before terminationGracePeriodSeconds, so a
    rolling update does not wait for it. podman then restarts the container
    (restart policy Always), which must be ready again."""
    import websocket
    w = PLAN.workload("nginx")
    c, pod, front = w["containers"][0], w["pods"][1], FRONTS[1]
    container, grace = f"{pod}-{c['name']}", w["terminationGracePeriodSeconds"]
    hook = c["preStop"]["exec"]["command"]
    wait = 5  # the hook's sleep (nginx.yaml)
    token = new_user(front)

    r = call(front, "POST", "/api/chat/rooms/lobby/ticket", token)
    assert r.status_code == 201, r.text
    ws = websocket.create_connection(front.replace("http://", "ws://") + r.json()["url"], timeout=5)
    r = call(front, "POST", "/api/chat/rooms/lobby/ticket", token)
    assert r.status_code == 201, r.text
    sse_url, sse_end = front + r.json()["url"], []

    def sse():
        with requests.get(sse_url, headers={"Accept": "text/event-stream"}, stream=True, timeout=(5, grace)) as r:
            ready.set()
            for _ in r.iter_lines(chunk_size=1):
                pass
        sse_end.append(time.monotonic())
    ready = threading.Event()
    threading.Thread(target=sse, daemon=True).start()
    assert ready.wait(5)
    # an upload nginx is still reading: 10 of 1000 bytes
    stuck = socket.create_connection((PLAN.ip(pod), 8080), timeout=grace)
    stuck.sendall(b"POST /api/accounts/login HTTP/1.1\r\nHost: kube\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"email\":")
    restarts = int(podman("inspect", "-f", "{{.RestartCount}}", container).stdout)

    started = time.monotonic()
    proc = subprocess.Popen(["/usr/bin/podman", "exec", container, *hook],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(wait - 2)
        r = requests.get(f"http://{PLAN.ip(pod)}:8081/nginx_status", timeout=2)
        assert r.status_code == 200, "the front stopped serving during the preStop wait"
        ws.settimeout(grace)
        while True:
            op, data = ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                break
        ws_closed = time.monotonic() - started
        code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
        while True:  # nginx sends nothing for the upload: it is closed
            try:
                if not stuck.recv(4096):
                    break
            except ConnectionResetError:
                break
        stuck_closed = time.monotonic() - started
        proc.wait(timeout=grace)
        gone = time.monotonic() - started
    finally:
        proc.kill()
        ws.close()
        stuck.close()
    assert code == 1001, f"the WebSocket subscriber was closed with {code}, not 1001 (going away)"
    assert wait <= ws_closed < wait + 3, f"the WebSocket subscriber was closed after {ws_closed:.1f} s"
    assert sse_end and wait <= sse_end[0] - started < wait + 3, "the EventSource stream did not end with the stop"
    assert wait + 8 <= stuck_closed < wait + 12, \
        f"the stuck upload was closed after {stuck_closed:.1f} s, not after worker_shutdown_timeout (10 s)"
    assert gone < grace - 5, f"nginx took {gone:.1f} s to stop (terminationGracePeriodSeconds {grace})"
    figure("a front's preStop: live subscribers closed after (s), nginx gone after (s)",
           subscribers=round(ws_closed, 1), nginx=round(gone, 1), grace=grace)

    deadline = time.monotonic() + 60
    while int(podman("inspect", "-f", "{{.RestartCount}}", container).stdout) <= restarts or not PLAN.ready("nginx"):
        assert time.monotonic() < deadline, "the front was not restarted and ready again within 60 s"
        time.sleep(1)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "wait-ready":
        sys.exit(wait_ready(*sys.argv[2:]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
