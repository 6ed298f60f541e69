"""The pool manager (issue 2), seen from outside: processes in /proc, the
scoreboard on the internal listener, and the pool's log. The test stack runs
ondemand pools with PL_IDLE_TIMEOUT_MS=1500 and PL_MAX_CHILDREN=4.

_status and _metrics are answered by each pool's master from its
scoreboard (PL_STATUS_LISTEN): reading them wakes no worker. "Zero workers"
is checked on the processes: the master's live children."""
import concurrent.futures
import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import (BASE_URL, DB_SOCKET, INTERNAL_URL, ROOT, SERVICES, VAR, log_lines, master_pid, pool_status, sql,
                      wait_until, worker_pids)

IDLE_TIMEOUT_S = int(os.environ.get("PL_IDLE_TIMEOUT_MS", "1500")) / 1000
SETTLE_S = IDLE_TIMEOUT_S * 4 + 10  # generous: others share these 2 cores


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name: state, ppid, ..."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_ticks(pid):
    fields = proc_stat(pid)
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_for_zero(*services):
    wait_until(lambda: all(worker_pids(s) == [] for s in services), timeout=SETTLE_S,
               message=f"{', '.join(services)} to scale to zero workers")


def events_since(svc, mark, event):
    return [ln for ln in log_lines(svc)[mark:] if ln.get("event") == event]


def test_pools_scale_to_zero_and_wake_with_exactly_one_spawn(api, internal):
    svc = "chat"
    masters = {s: master_pid(s) for s in SERVICES}
    pool_status(internal, svc)  # the answer checker's first use reads every _routes (waking workers) once
    wait_for_zero(*SERVICES)
    before = pool_status(internal, svc)["counters"]  # the master answers: no worker wakes
    # idle means idle: the masters sleep in the kernel, using no CPU
    ticks = {s: cpu_ticks(masters[s]) for s in SERVICES}
    time.sleep(1.0)
    for s in SERVICES:
        assert cpu_ticks(masters[s]) - ticks[s] <= 1, f"{s}'s master used CPU while idle"
        assert proc_stat(masters[s])[0] == "S"
    assert worker_pids(svc) == []

    mark = len(log_lines(svc))
    r = api.get(f"/api/{svc}/health")
    assert r.status_code == 200, r.text
    woke = r.json()["pid"]
    assert worker_pids(svc) == [woke]
    after = pool_status(internal, svc)  # answered by the master
    assert [w["pid"] for w in after["worker_list"]] == [woke]
    # exactly one spawn since the pool was at zero: the worker that answered
    # (the counters also count whatever else reached chat while we waited)
    spawned = events_since(svc, mark, "worker_spawn")
    assert [ln["worker_pid"] for ln in spawned] == [woke]
    assert after["counters"]["spawns"] >= before["spawns"] + 1
    # the masters were never restarted, and it goes back to zero again
    wait_for_zero(svc)
    assert {s: master_pid(s) for s in SERVICES} == masters
    exits = wait_until(lambda: [ln for ln in events_since(svc, mark, "worker_exit") if ln["worker_pid"] == woke],
                       timeout=10, message="the idle exit's log line")
    assert exits[0]["reason"] == "idle_timeout"
    assert pool_status(internal, svc)["counters"]["idle_exits"] >= before["idle_exits"] + 1


def test_monitoring_an_idle_pool_wakes_no_worker(internal):
    """A scrape of every pool's _metrics and _status, and `./pilotlight
    status`, while every pool is at zero workers: the masters answer, no
    worker is spawned, and the figures are the scoreboard's."""
    wait_for_zero(*SERVICES)
    spawns = {s: pool_status(internal, s)["counters"]["spawns"] for s in SERVICES}
    for _ in range(3):
        for s in SERVICES:
            m = internal.get(f"/api/{s}/_metrics")
            assert m.status_code == 200 and m.headers["Content-Type"].startswith("text/plain"), m.text
            assert f'pilotlight_workers{{service="{s}",state="busy"}} 0' in m.text
            st = pool_status(internal, s)
            assert st["workers"]["total"] == 0 and st["service"] == s
            assert internal.request("HEAD", f"/api/{s}/_status").status_code == 200
    out = subprocess.run([str(ROOT / "pilotlight"), "status"], capture_output=True, text=True, timeout=60)
    assert "no metrics" not in out.stdout, out.stdout
    assert all(worker_pids(s) == [] for s in SERVICES)
    assert {s: pool_status(internal, s)["counters"]["spawns"] for s in SERVICES} == spawns
    # the masters' answers are counted like any request, and the public listener has none of it
    assert pool_status(internal, "projects")["counters"]["requests"] > 0
    assert requests.get(f"{BASE_URL}/api/projects/_status", timeout=10).status_code == 404


def sessions_of(svc):
    """The MariaDB connection ids of a service's database user."""
    return sorted(int(r[0]) for r in sql(f"SELECT id FROM information_schema.processlist WHERE user = '{svc}'"))


def test_an_idle_pool_hands_its_standby_session_to_its_next_worker(api, internal, make_user):
    """PL_DB_STANDBY (on by default): a pool's master with no worker holds
    one database session, every statement prepared, and the worker it forks
    next takes it over: that cold start makes no connection of its own."""
    svc = "projects"
    owner = make_user()
    r = api.post("/api/projects", {"name": "standby"}, token=owner.token)
    assert r.status_code == 201, r.text
    path = f"/api/projects/{r.json()['project']['id']}"
    wait_for_zero(svc)
    held = wait_until(lambda: sessions_of(svc), timeout=SETTLE_S, message="the master's standby session")
    assert len(held) == 1, held  # the master's, and nothing else while no worker runs
    assert wait_until(lambda: pool_status(internal, svc)["db_standby"], message="_status to show the standby")
    assert f'pilotlight_db_standby{{service="{svc}"}} 1' in internal.get(f"/api/{svc}/_metrics").text
    mark = len(log_lines(svc))
    r = api.get(path, token=owner.token)
    assert r.status_code == 200 and r.json()["project"]["name"] == "standby", r.text
    spawn = events_since(svc, mark, "worker_spawn")
    assert len(spawn) == 1 and spawn[0]["standby"] == 1, spawn
    worker = spawn[0]["worker_pid"]
    assert r.json() and worker in worker_pids(svc)
    # the worker answered on the master's session: the same connection, and no connect of its own
    assert sessions_of(svc) == held
    assert not [ln for ln in events_since(svc, mark, "db_connect") if ln.get("pid") == worker]
    assert pool_status(internal, svc)["db_standby"] is False  # handed over: held again once no worker runs


def test_a_standby_session_the_server_closed_is_replaced(api, make_user):
    """The server ends the idle standby (a KILL here; a restart or
    wait_timeout alike): the master sees it at once, opens another, and the
    next cold start still answers."""
    svc = "projects"
    owner = make_user()
    wait_for_zero(svc)
    held = wait_until(lambda: sessions_of(svc), timeout=SETTLE_S, message="the master's standby session")
    mark = len(log_lines(svc))
    sql(f"KILL {held[0]}")
    fresh = wait_until(lambda: [i for i in sessions_of(svc) if i not in held], timeout=10,
                       message="another standby session")
    assert len(fresh) == 1
    assert events_since(svc, mark, "standby_lost")
    r = api.get("/api/projects", token=owner.token)
    assert r.status_code == 200, r.text
    assert events_since(svc, mark, "worker_spawn")[0]["standby"] == 1


def test_a_stalled_database_never_holds_the_master(internal):
    """The standby is made with non-blocking calls within 250 ms: with
    MariaDB stopped (SIGSTOP: it takes connections into its backlog and says
    nothing) while the master makes one, the master still answers _status
    at once, and holds a standby again once the server is back."""
    svc = "projects"
    wait_for_zero(svc)
    held = wait_until(lambda: sessions_of(svc), timeout=SETTLE_S, message="the master's standby session")
    db = int((VAR / "run" / "mysqld.pid").read_text().strip())
    mark = len(log_lines(svc))
    sql(f"KILL {held[0]}")
    os.kill(db, signal.SIGSTOP)
    worst = 0.0
    try:
        end = time.monotonic() + 3.0  # the master tries again 1 s after the loss, then 1 s after that
        while time.monotonic() < end:
            t0 = time.monotonic()
            pool_status(internal, svc)
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.02)
    finally:
        os.kill(db, signal.SIGCONT)
    assert events_since(svc, mark, "standby_failed"), "no standby was tried while the server was stopped"
    assert worst < 1.0, f"_status took {worst:.2f} s while the master made a standby"
    wait_until(lambda: [i for i in sessions_of(svc) if i not in held], timeout=SETTLE_S,
               message="a standby again once the server is back")


def test_a_worker_killed_while_idle_is_replaced(api, internal):
    svc = "projects"
    master = master_pid(svc)
    crashes = pool_status(internal, svc)["counters"]["crashes"]
    mark = len(log_lines(svc))
    victim = None
    for _ in range(5):  # the worker could end by itself between the request and the kill: try again
        r = api.get(f"/api/{svc}/health")
        assert r.status_code == 200
        pid = r.json()["pid"]
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        victim = pid
        break
    assert victim is not None
    wait_until(lambda: victim not in worker_pids(svc), timeout=10, message="the killed worker to be reaped")
    crash = wait_until(lambda: [ln for ln in events_since(svc, mark, "worker_crash") if ln["worker_pid"] == victim],
                       timeout=10, message="the crash's log line")
    assert crash[0]["signal"] == signal.SIGKILL and crash[0]["level"] == "error"
    assert crash[0]["pid"] == master  # logged by the master, which lives on
    # the next request succeeds, on a new worker
    r = api.get(f"/api/{svc}/health")
    assert r.status_code == 200, r.text
    assert r.json()["pid"] != victim
    assert master_pid(svc) == master and os.path.exists(f"/proc/{master}")
    assert pool_status(internal, svc)["counters"]["crashes"] == crashes + 1


def test_concurrent_slow_requests_never_exceed_max_children(internal):
    svc, n, ms = "chat", 50, 200
    max_children = pool_status(internal, svc)["max_children"]
    assert max_children < n
    wait_for_zero(svc)
    before = pool_status(internal, svc)["counters"]
    seen, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            seen.append(len(worker_pids(svc)))
            time.sleep(0.01)

    def call(_):
        r = requests.get(f"{INTERNAL_URL}/api/{svc}/_test/sleep?ms={ms}", timeout=120)
        return r.status_code, r.json().get("pid")

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(call, range(n)))
    finally:
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - started
    assert [status for status, _ in results] == [200] * n
    pids = {pid for _, pid in results}
    assert 1 <= len(pids) <= max_children
    assert max(seen) <= max_children
    after = pool_status(internal, svc)
    # peak_workers is the pool's lifetime peak, and a worker waiting on another
    # service does not count against max_children: earlier suites' invocations
    # (chat asking projects about a room) may have raised it already. This
    # window is `seen` above; the counter speaks for it only if it was not.
    if before["peak_workers"] <= max_children:
        assert after["counters"]["peak_workers"] <= max_children
    assert after["counters"]["spawns"] - before["spawns"] <= max_children
    assert after["counters"]["max_children_reached"] > before["max_children_reached"]
    # at most max_children at a time: the 50 sleeps took at least 50 / max_children rounds
    assert elapsed >= (n / max_children) * ms / 1000 * 0.95, elapsed


def test_sighup_during_a_stream_of_requests_fails_none(internal):
    svc = "accounts"
    master = master_pid(svc)
    r = requests.get(f"{INTERNAL_URL}/api/{svc}/health", timeout=10)
    assert r.status_code == 200
    old_workers = set(worker_pids(svc))
    generation = max(w["generation"] for w in pool_status(internal, svc)["worker_list"])
    mark = len(log_lines(svc))
    failures, done, stop = [], [], threading.Event()

    def stream(url):
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.get(url, timeout=30)
                (done if r.status_code == 200 else failures).append((url, r.status_code, r.text[:200]))
            except requests.RequestException as e:
                failures.append((url, "exception", repr(e)))

    urls = [f"{BASE_URL}/api/{svc}/health", f"{BASE_URL}/api/{svc}/.well-known/jwks.json",
            f"{INTERNAL_URL}/api/{svc}/_test/sleep?ms=50", f"{INTERNAL_URL}/api/{svc}/_test/sleep?ms=5"]
    threads = [threading.Thread(target=stream, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(done) >= 20, timeout=30, message="the stream to get going")
        for _ in range(3):
            count = len(done)
            os.kill(master, signal.SIGHUP)
            wait_until(lambda: len(done) >= count + 20, timeout=30, message="requests after the SIGHUP")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert len(done) >= 80
    reloads = wait_until(lambda: len(events_since(svc, mark, "pool_reload")) == 3 or None, timeout=10,
                         message="three pool_reload log lines")
    assert reloads
    # the workers from before were replaced, by the same master
    wait_until(lambda: not (old_workers & set(worker_pids(svc))), timeout=SETTLE_S,
               message="the old workers to exit")
    assert master_pid(svc) == master
    st = pool_status(internal, svc)
    assert all(w["generation"] == generation + 3 for w in st["worker_list"]), st["worker_list"]
    assert not events_since(svc, mark, "worker_crash")


def supervisor_of(svc):
    """The process the runner started: the master's parent, the same binary."""
    master = master_pid(svc)
    sup = int(proc_stat(master)[1])
    assert os.readlink(f"/proc/{sup}/exe") == os.readlink(f"/proc/{master}/exe")
    return sup


def test_supervisors_sleep_while_idle(internal):
    sups = {s: supervisor_of(s) for s in SERVICES}
    ticks = {s: cpu_ticks(p) for s, p in sups.items()}
    time.sleep(1.0)
    for s, p in sups.items():
        assert cpu_ticks(p) - ticks[s] == 0, f"{s}'s supervisor used CPU while idle"
        assert proc_stat(p)[0] == "S"


def test_a_killed_master_is_replaced_by_its_supervisor(api, internal):
    svc = "chat"
    old, sup = master_pid(svc), supervisor_of(svc)
    mark = len(log_lines(svc))
    r = api.get(f"/api/{svc}/health")
    assert r.status_code == 200
    old_worker = r.json()["pid"]
    killed_at = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new = wait_until(lambda: (p := master_pid(svc)) != old and os.path.exists(f"/proc/{p}") and p or None,
                     timeout=10, message="a new master")
    assert int(proc_stat(new)[1]) == sup
    wait_until(lambda: requests.get(f"{BASE_URL}/api/{svc}/health", timeout=5).status_code == 200 or None,
               timeout=10, message="the pool to answer again")
    gap = time.monotonic() - killed_at
    assert gap < 5, f"{gap:.2f}s without the {svc} pool"
    died = [ln for ln in events_since(svc, mark, "master_died")]
    assert len(died) == 1 and died[0]["master_pid"] == old and died[0]["signal"] == "Killed", died
    # at once when it had been up a while (10 s), else after a short first delay
    assert (died[0]["restart_in_ms"] == 0) == (died[0]["up_ms"] >= 10000), died
    # the old master's worker finished what it held and went away
    wait_until(lambda: not os.path.exists(f"/proc/{old_worker}") or proc_stat(old_worker)[0] in "ZX" or None,
               timeout=10, message="the orphaned worker to exit")
    # and the new master serves from its own workers
    r = api.get(f"/api/{svc}/health")
    assert r.status_code == 200 and r.json()["pid"] != old_worker
    assert r.json()["pid"] in worker_pids(svc)


def test_a_master_killed_while_a_worker_is_busy_is_back_before_that_worker_ends(api):
    """The worker of a killed master drains what it holds; meanwhile a new
    master must serve. (Found by the soak: the new master took the busy
    worker's listening socket for another running pool and gave up, and the
    supervisor with it.)"""
    svc = "projects"
    old = master_pid(svc)
    mark = len(log_lines(svc))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(requests.get, f"{INTERNAL_URL}/api/{svc}/_test/sleep?ms=3000", timeout=20)
        time.sleep(0.5)  # the request is in a worker now
        killed_at = time.monotonic()
        os.kill(old, signal.SIGKILL)
        def serving_again():
            try:
                new = master_pid(svc)
            except (OSError, ValueError):  # the pid file being rewritten
                return None
            return new != old and requests.get(f"{BASE_URL}/api/{svc}/health", timeout=5).status_code == 200

        wait_until(serving_again, timeout=10, message="a new master serving")
        gap = time.monotonic() - killed_at
        assert gap < 2.0, f"{gap:.2f}s without the {svc} pool"
        assert not slow.done()  # still draining in the old master's worker
        assert slow.result().status_code == 200
    assert not events_since(svc, mark, "listen_failed")
    assert len(events_since(svc, mark, "master_restarted")) == 1


@contextlib.contextmanager
def projects_pool_in_a_namespace(tmp_path, db_host, resolv=None, hosts=None, forward=None, mute_dns=False):
    """A projects pool (a master and its status socket, no supervisor) in a
    network namespace of its own with PL_DB_HOST=db_host: /etc/netns files
    resolv.conf and hosts (ip netns exec puts them over /etc's), an address
    besides loopback (getaddrinfo's AI_ADDRCONFIG asks nothing of a host
    without one), forward: an "addr:port" inside it passed on to this
    stack's MariaDB socket, and mute_dns: a name server on 127.0.0.1 that
    takes queries and answers none. Yields (status socket, log file)."""
    ns = f"plsb-{os.getpid()}"
    etc = pathlib.Path("/etc/netns") / ns
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("no network namespaces here (not root?)")
    procs = []
    try:
        etc.mkdir(parents=True, exist_ok=True)
        for name, text in (("resolv.conf", resolv), ("hosts", hosts)):
            if text is not None:
                (etc / name).write_text(text)
        for cmd in (["link", "set", "lo", "up"], ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                    ["addr", "add", "10.99.0.1/24", "dev", "v0"], ["link", "set", "v0", "up"], ["link", "set", "v1", "up"]):
            subprocess.run(["ip", "-n", ns, *cmd], check=True)
        if mute_dns:
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
                                           "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                           "s.bind(('127.0.0.1', 53))\nwhile True: s.recv(512)"]))
            wait_until(lambda: b"127.0.0.1:53 " in subprocess.run(["ip", "netns", "exec", ns, "ss", "-lun"],
                                                                  capture_output=True).stdout,
                       timeout=10, message="the name server to listen")
        if forward:
            host, port = forward.rsplit(":", 1)
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "socat",
                                           f"TCP-LISTEN:{port},bind={host},reuseaddr,fork",
                                           f"UNIX-CONNECT:{DB_SOCKET}"]))
            wait_until(lambda: f"{host}:{port} ".encode() in subprocess.run(["ip", "netns", "exec", ns, "ss", "-ltn"],
                                                                            capture_output=True).stdout,
                       timeout=10, message="the forwarder to listen")
        env = {k: v for k, v in (p.split("=", 1) for p in
               pathlib.Path(f"/proc/{master_pid('projects')}/environ").read_text().split("\0") if "=" in p)}
        for k in ("PL_DB_SOCKET", "PL_DB_HOSTS", "PL_INVOKE_SOCKET_DIR", "PL_LISTEN_FD", "PL_LISTEN_GROUP"):
            env.pop(k, None)
        status = tmp_path / "status.sock"
        env.update(PL_SUPERVISE="0", PL_LISTEN="127.0.0.1:19999", PL_DB_HOST=db_host, PL_DB_PORT="3306",
                   PL_STATUS_LISTEN=f"unix:{status}", PL_PID_FILE=str(tmp_path / "master.pid"),
                   PL_LOG_FILE=str(tmp_path / "pool.log"), PL_DB_STANDBY="1")
        binary = pathlib.Path(os.readlink(f"/proc/{master_pid('projects')}/exe"))
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, str(binary)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: status.exists(), timeout=20, message="the pool's status socket")
        yield status, tmp_path / "pool.log"
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)


def status_over(sock):
    """GET _status from a master's status socket, over FastCGI as nginx sends it: its JSON."""
    out = subprocess.run(["cgi-fcgi", "-bind", "-connect", str(sock)], capture_output=True, text=True, timeout=10,
                         env={"REQUEST_METHOD": "GET", "DOCUMENT_URI": "/api/projects/_status", "QUERY_STRING": "",
                              "REMOTE_ADDR": "127.0.0.1", "REQUEST_ID": "test", "PL_INTERNAL": "1"}).stdout
    head, sep, body = out.partition("\n\n")  # (text mode: its CRLFs are newlines)
    assert sep and head.startswith("Status: 200"), out
    return json.loads(body)


def test_a_name_server_that_never_answers_never_holds_the_master(tmp_path):
    """The master makes its standby within 250 ms, the name of the database
    host included: a name is resolved by a child process the master waits for
    no longer than that (getaddrinfo would have held it for the resolver's
    whole timeout, and a liveness probe with it: 30 s under podman). A
    projects pool in a network namespace whose name server takes queries and
    never answers, PL_DB_HOST a name: _status on its status socket answers at
    once while the standby fails, again and again."""
    resolv = "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n"
    with projects_pool_in_a_namespace(tmp_path, "db.pilotlight.test", resolv=resolv, mute_dns=True) as (status, log):
        worst, end = 0.0, time.monotonic() + 4.0  # the master tries again 1 s after a failure
        while time.monotonic() < end:
            t0 = time.monotonic()
            r = subprocess.run(["bash", str(ROOT / "docker" / "healthcheck.sh"), "--live", "projects", str(status)],
                               capture_output=True, text=True, timeout=30)
            worst = max(worst, time.monotonic() - t0)
            assert r.returncode == 0, r.stdout + r.stderr
            time.sleep(0.05)
        failed = [ln for ln in log.read_text().splitlines() if '"standby_failed"' in ln]
        assert len(failed) >= 2, "the standby was not tried again and again"
        assert all("within 250 ms" in ln for ln in failed), failed
        assert worst < 1.0, f"_status took {worst:.2f} s while the master's standby waited on the name server"


def test_a_name_with_several_addresses_gets_a_standby_on_the_one_that_answers(tmp_path):
    """A name whose first address answers nothing (an AAAA record where the
    server listens on IPv4 only, a round-robin name with a node down): the
    standby tries the next one within its 250 ms, as libmariadb tries them
    for the workers' connections."""
    hosts = "127.0.0.1 localhost\n::1 db.pilotlight.test\n127.0.0.1 db.pilotlight.test\n"
    with projects_pool_in_a_namespace(tmp_path, "db.pilotlight.test", hosts=hosts,
                                      forward="127.0.0.1:3306") as (status, log):
        # (glibc orders ::1 first: the address that answers nothing is tried first)
        wait_until(lambda: '"standby_failed"' in log.read_text() or status_over(status)["db_standby"], timeout=10,
                   message="the master's standby, or its failure")
        failed = [ln for ln in log.read_text().splitlines() if '"standby_failed"' in ln]
        assert not failed, failed
        assert status_over(status)["db_standby"]
