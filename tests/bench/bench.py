#!/usr/bin/python3
"""bench.py: `./pilotlight bench` -- figures, never pass/fail.

Brings up a throw-away stack of its own (PL_VAR, ports: chosen by stack_bench
in scripts/stack.sh), then measures, all in this one run so that every figure can be
read as a ratio to another taken minutes apart on the same machine:

  throughput  wrk, 64 connections on 127.0.0.1, a few seconds a run: nginx's
              own constant answer (the ceiling), nginx -> a bare libfcgi
              responder (the protocol floor), a service's health endpoint on an
              ondemand pool (warm) and on a static pool, then accounts and
              projects endpoints with a real token;
  cold start  a pool at zero workers -> first response, over N trials, next to
              a warm request to the worker it just started;
  idle        CPU time and wakeups of the pool masters and nginx over a few
              seconds with every pool at zero workers; the memory they hold;
  chat        tests/bench/chat_live.py.

Settings (environment): PL_BENCH_SECONDS (4, one wrk run), PL_BENCH_TRIALS
(30 cold starts), PL_BENCH_IDLE_SECONDS (10), PL_BENCH_WORKERS (4: the bare
responder's processes and every pool's max_children).
"""
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tarfile
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PILOTLIGHT = os.path.join(ROOT, "pilotlight")
WRK_LUA = os.path.join(HERE, "wrk.lua")
CHAT_LIVE = os.path.join(HERE, "chat_live.py")

VAR = os.environ["PL_VAR"]
RUN = os.path.join(VAR, "run")
BUILD = os.environ.get("PL_BUILD_DIR") or os.path.join(ROOT, "build")
HTTP = "http://127.0.0.1:%s" % os.environ["PL_HTTP_PORT"]
INTERNAL = "http://127.0.0.1:%s" % os.environ["PL_INTERNAL_PORT"]
HTTP_PORT = int(os.environ["PL_HTTP_PORT"])


def env_int(name, default, lo, hi):
    raw = os.environ.get(name, str(default))
    try:
        v = int(raw)
    except ValueError:
        sys.exit("bench: %s must be a whole number, not %r" % (name, raw))
    if not lo <= v <= hi:
        sys.exit("bench: %s must be %d-%d" % (name, lo, hi))
    return v


SECONDS = env_int("PL_BENCH_SECONDS", 4, 1, 60)
TRIALS = env_int("PL_BENCH_TRIALS", 30, 3, 1000)
IDLE_SECONDS = env_int("PL_BENCH_IDLE_SECONDS", 10, 1, 600)
WORKERS = env_int("PL_BENCH_WORKERS", 4, 1, 64)
CONNECTIONS = 64
BACKUP_USERS = env_int("PL_BENCH_BACKUP_USERS", 10000, 100, 10000000)
BACKUP_MESSAGES = env_int("PL_BENCH_BACKUP_MESSAGES", 100000, 100, 100000000)
LOGIN_CONNECTIONS = 2 * WORKERS  # argon2id: a deeper queue only adds latency
IDLE_TIMEOUT_MS = 300  # short, so a pool is back at zero soon after a request
SERVICES = ("accounts", "projects", "chat")

# What the bench stack's pools and nginx get. Everything PL_* from the caller's
# environment is dropped except what stack_bench chose (the stack's place), so a
# stray setting (e.g. test's cheap password hashing) cannot skew a figure.
KEEP = ("PL_VAR", "PL_HTTP_PORT", "PL_HTTPS_PORT", "PL_INTERNAL_PORT", "PL_MARIADB_PORT", "PL_HTTP_BIND",
        "PL_INTERNAL_BIND", "PL_TLS_CERT_FILE", "PL_TLS_KEY_FILE", "PL_BUILD_DIR", "PL_TEST_SLOT",
        "PL_MAIL_SINK_PORT", "PL_LOG_ROTATE_CRON")
STACK_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PL_") or k in KEEP}
STACK_ENV.update({
    # the bench reads no web page: nginx serves an empty directory, and
    # nothing is built with npm
    "PL_WEB_ROOT": os.path.join(VAR, "web"),
    "PL_POOL_MODE": "ondemand",
    "PL_MAX_CHILDREN": str(WORKERS),
    "PL_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
    "PL_PUBLIC_URL": HTTP,
})
# the services' rate limits would measure them refusing us: far out of reach.
for _name in ("LOGIN", "SIGNUP", "REFRESH", "CHAT_POST", "MAIL", "CODE"):
    STACK_ENV["PL_LIMIT_%s_RATE" % _name] = "1000000r/s"
    STACK_ENV["PL_LIMIT_%s_BURST" % _name] = "1000000"

RESULTS = {}  # name -> wrk summary dict (or {"skipped": why})
NOTES = []


def say(msg):
    print("bench: %s" % msg, flush=True)


# ---- processes ----------------------------------------------------------------
def proc_stat(pid):
    """(state, ppid) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return rest[0], int(rest[1])


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[1] == pid and st[0] not in ("Z", "X"):
                out.append(int(d))
    return out


def pidfile(name):
    try:
        with open(os.path.join(RUN, name + ".pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def tasks(pid):
    try:
        return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return []


def cpu_ns(pid):
    """Time on a CPU so far, all threads, nanoseconds (schedstat: finer than
    utime's clock ticks)."""
    total = 0
    for tid in tasks(pid):
        try:
            with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def status_field(pid, field):
    """A /proc/PID/status number (kB for sizes), 0 if it is not there."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def wakeups(pid):
    """Context switches of all its threads so far: each sleep ended is one."""
    total = 0
    for tid in tasks(pid):
        try:
            with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for %s" % what)
        time.sleep(0.01)


def wait_pool_zero(svc, timeout=15):
    master = pidfile(svc)
    if master is None:
        raise RuntimeError("the %s pool is not running" % svc)
    wait_until(lambda: not children(master), timeout, "the %s pool to reach zero workers" % svc)


# ---- the stack ----------------------------------------------------------------
STACK_LOG = None


def pilotlight(cmd, extra_env=None, *args):
    env = dict(STACK_ENV, **(extra_env or {}))
    with open(STACK_LOG, "a") as log:
        rc = subprocess.run([PILOTLIGHT, cmd, *args], env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        with open(STACK_LOG) as f:
            sys.stderr.write("".join(f.readlines()[-25:]))
        raise RuntimeError("./pilotlight %s failed (log: %s)" % (" ".join((cmd,) + args), STACK_LOG))


def fresh_var():
    """A stack left by an earlier bench goes first, then all of its state."""
    global STACK_LOG
    STACK_LOG = os.devnull
    if os.path.isdir(VAR):
        pilotlight("down")
        for name in os.listdir(VAR):
            if name != "pilotlight.lock":
                path = os.path.join(VAR, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
    os.makedirs(os.path.join(VAR, "nginx", "bench.d"), exist_ok=True)
    os.makedirs(os.path.join(VAR, "log"), exist_ok=True)
    os.makedirs(os.path.join(VAR, "web"), exist_ok=True)
    STACK_LOG = os.path.join(VAR, "log", "bench-stack.log")


def write_nginx_bench_conf():
    """The two references, on the public listener beside the API."""
    conf = """# written by tests/bench/bench.py for its own stack only
location = /_bench/const {
    types { }
    default_type application/json;
    add_header X-Request-Id $pl_request_id always;
    return 200 '{"status":"ok","service":"nginx","database":"none","pid":0}';
}
location = /_bench/bare {
    fastcgi_pass unix:%s/bare.sock;
}
""" % RUN
    with open(os.path.join(VAR, "nginx", "bench.d", "bench.conf"), "w") as f:
        f.write(conf)


class Bare:
    """tests/bench/fcgi_bare.c: its master ignores SIGTERM, so it goes with
    SIGKILL to its whole process group (its own session, started here)."""

    def __init__(self):
        self.proc = None

    def start(self):
        binary = os.path.join(BUILD, "tests", "bench", "pl-fcgi-bare")
        sock = os.path.join(RUN, "bare.sock")
        if os.path.exists(sock):
            os.unlink(sock)
        log = open(os.path.join(VAR, "log", "bare.log"), "a")
        self.proc = subprocess.Popen([binary, "unix:" + sock, str(WORKERS)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_until(lambda: os.path.exists(sock), 10, "the bare responder's socket")

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None


def restart_pool(svc, extra_env):
    """Stop one pool (SIGTERM to its master) and let `up` start it again with
    other settings; MariaDB and nginx stay as they are."""
    pid = pidfile(svc)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), 30, "the %s pool to stop" % svc)
    pilotlight("up", extra_env)


# ---- HTTP ---------------------------------------------------------------------
def api(method, path, body=None, token=None, base=HTTP):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw[:200]


def timed_get(path, token=None):
    """Milliseconds from connecting to nginx to the end of the response (a new
    connection each time, Connection: close), and the status."""
    head = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % path
    if token:
        head += "Authorization: Bearer %s\r\n" % token
    raw = (head + "\r\n").encode()
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=30) as s:
        s.sendall(raw)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    ms = (time.perf_counter() - t0) * 1000
    resp = b"".join(chunks)
    try:
        status = int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return ms, status


# ---- wrk ----------------------------------------------------------------------
def wrk(name, path, method="GET", body=None, token=None, conns=CONNECTIONS, expect=200, sampler=None,
        pool=None):
    """One measured wrk run, after a 1 s warm-up (which also wakes an ondemand
    pool), unless a probe request does not get the expected status. With a
    pool: also the CPU its master spent meanwhile, as a share of one core.
    Runs under one name add up (see row())."""
    runs = RESULTS.setdefault(name, [])
    status, answer = api(method, path, body, token)
    if status != expect:
        runs.append({"skipped": "probe answered %s: %s" % (status, str(answer)[:160])})
        say("%-34s skipped: %s" % (name, runs[-1]["skipped"]))
        return
    env = dict(os.environ, BENCH_METHOD=method, BENCH_BODY=json.dumps(body) if body is not None else "",
               BENCH_TOKEN=token or "", BENCH_EXPECT=str(expect) if expect >= 400 else "")
    base = ["wrk", "-t2", "-c%d" % conns, "--timeout", "10s", "-s", WRK_LUA]
    subprocess.run(base + ["-d1s", HTTP + path], env=env, stdout=subprocess.DEVNULL, check=True, timeout=60)
    master = pidfile(pool) if pool else None
    master_cpu0, t0 = cpu_ns(master) if master else 0, time.monotonic()
    proc = subprocess.Popen(base + ["-d%ds" % SECONDS, HTTP + path], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if sampler:
        sampler(proc)
    out, _ = proc.communicate(timeout=SECONDS + 60)
    master_share = (cpu_ns(master) - master_cpu0) / 1e9 / (time.monotonic() - t0) if master else None
    line = [ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")]
    if proc.returncode != 0 or not line:
        runs.append({"skipped": "wrk failed: %s" % out.strip()[-200:]})
        say("%-34s %s" % (name, runs[-1]["skipped"]))
        return
    r = json.loads(line[-1][len("BENCH_JSON "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    # errors: no answer, or a status other than the one expected
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"] + (
        r["unexpected"] if expect >= 400 else r["status"])
    r["conns"] = conns
    r["master_share"] = master_share
    runs.append(r)
    say("%-34s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d%s" %
        (name, r["rps"], r["p50_us"] / 1000, r["p99_us"] / 1000, r["errors"],
         "  master %.1f%% of a core" % (100 * master_share) if master_share is not None else ""))


def row(name):
    """The runs under one name, summed up: mean req/s, their spread (max/min
    - 1), median p50, worst p99, all errors, mean master share; None if none
    was measured."""
    runs = [r for r in RESULTS.get(name, []) if "rps" in r]
    if not runs:
        return None
    vals = [r["rps"] for r in runs]
    shares = [r["master_share"] for r in runs if r["master_share"] is not None]
    return {"rps": statistics.mean(vals), "n": len(runs),
            "spread": (max(vals) / min(vals) - 1) if min(vals) > 0 else None,
            "p50": statistics.median(r["p50_us"] for r in runs) / 1000,
            "p99": max(r["p99_us"] for r in runs) / 1000,
            "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs),
            "conns": runs[0]["conns"], "master": statistics.mean(shares) if shares else None}


def rps(name):
    r = row(name)
    return r["rps"] if r else None


def ratio(a, b):
    return a / b if a is not None and b else None


# ---- phases -------------------------------------------------------------------
def idle_cost():
    """CPU time and wakeups over IDLE_SECONDS with every pool at zero workers."""
    for svc in SERVICES:
        wait_pool_zero(svc)
    time.sleep(0.5)  # the last worker's exit settles
    nginx = pidfile("nginx")
    procs = []
    for svc in SERVICES:
        master = pidfile(svc)
        procs.append(("%s master" % svc, master))
        sup = proc_stat(master)[1]  # the supervisor that restarts a master that dies, if any
        if comm(sup) == comm(master):
            procs.append(("%s supervisor" % svc, sup))
    procs.append(("nginx master", nginx))
    procs += [("nginx worker %d" % i, pid) for i, pid in enumerate(sorted(children(nginx)), 1)]
    procs.append(("mariadbd", pidfile("mysqld")))
    before = {pid: (cpu_ns(pid), wakeups(pid)) for _, pid in procs}
    t0 = time.monotonic()
    time.sleep(IDLE_SECONDS)
    wall = time.monotonic() - t0
    rows = []
    for label, pid in procs:
        c0, w0 = before[pid]
        rows.append({"label": label, "pid": pid, "cpu_ms": (cpu_ns(pid) - c0) / 1e6,
                     "wakeups": wakeups(pid) - w0, "rss": status_field(pid, "VmRSS"), "pss": pss_kib(pid)})
    spawned = sum(len(children(pidfile(svc))) for svc in SERVICES)
    return {"wall": wall, "rows": rows, "workers_after": spawned}


def cold_starts(token, project_id):
    """Per trial and target: wait for projects' pool to be at zero, time one
    request (the master forks a worker for it: a cold start, with the
    worker's first DB connection), then one more to that warm worker."""
    targets = [("health", "/api/projects/health", None),
               ("get project", "/api/projects/%d" % project_id, token)]
    res = {t[0]: {"cold": [], "warm": [], "bad": 0} for t in targets}
    for _ in range(TRIALS):
        for label, path, tok in targets:
            wait_pool_zero("projects")
            cold, s1 = timed_get(path, tok)
            warm, s2 = timed_get(path, tok)
            if s1 != 200 or s2 != 200:
                res[label]["bad"] += 1
                continue
            res[label]["cold"].append(cold)
            res[label]["warm"].append(warm)
    return res


def pct(vals, p):
    """Nearest-rank percentile: the smallest value with at least p % of the
    values at or below it."""
    if not vals:
        return None
    s = sorted(vals)
    return s[max(1, min(len(s), math.ceil(p * len(s) / 100))) - 1]


def pwhash_settings():
    """The argon2id settings accounts runs with (its defaults: nothing sets
    them on the bench stack), as `pl-accounts --help` states them."""
    out = subprocess.run([os.path.join(BUILD, "services", "accounts", "pl-accounts"), "--help"],
                         capture_output=True, text=True).stdout
    vals = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("PL_PWHASH_OPSLIMIT", "PL_PWHASH_MEMLIMIT_KIB"):
            vals[parts[0]] = parts[1]
    return vals.get("PL_PWHASH_OPSLIMIT", "?"), vals.get("PL_PWHASH_MEMLIMIT_KIB", "?")


class PeakRss:
    """Samples the peak RSS (VmHWM) of a pool's workers while wrk runs."""

    def __init__(self, svc):
        self.svc, self.peak_kib, self.workers = svc, 0, set()

    def __call__(self, proc):
        def loop():
            master = pidfile(self.svc)
            while proc.poll() is None:
                for pid in children(master) if master else []:
                    self.workers.add(pid)
                    self.peak_kib = max(self.peak_kib, status_field(pid, "VmHWM"))
                time.sleep(0.2)
        threading.Thread(target=loop, daemon=True).start()


def chat_live():
    say("chat: tests/bench/chat_live.py")
    try:
        p = subprocess.run(["/usr/bin/python3", CHAT_LIVE, "--base", HTTP, "--internal", INTERNAL],
                           capture_output=True, text=True, timeout=180, env=STACK_ENV)
    except subprocess.TimeoutExpired:
        NOTES.append("chat: chat_live.py did not finish within 180 s")
        return None
    out = p.stdout.strip()
    if p.returncode != 0:
        NOTES.append("chat: chat_live.py exited %d: %s" % (p.returncode, (p.stderr or out).strip()[-300:]))
    return out or None


# ---- the table ----------------------------------------------------------------
def fmt(v, spec="%.3f"):
    return "-" if v is None else spec % v


PRIMARY_64 = "projects GET primary"


# ---- deploys and backups ---------------------------------------------------------
def health_release(svc):
    status, body = api("GET", "/api/%s/health" % svc)
    return body.get("release") if status == 200 and isinstance(body, dict) else None


def deploy_rows(token, project):
    """A changed projects binary (the live one with bytes appended) deployed,
    then rolled back, each under wrk (CONNECTIONS connections on GET {id}):
    requests that failed meanwhile, and seconds from the command to the
    release's health answering from it."""
    live = os.path.join(VAR, "releases", "projects", "live", "pl-projects")
    changed = os.path.join(VAR, "tmp", "pl-projects-bench")
    os.makedirs(os.path.dirname(changed), exist_ok=True)
    shutil.copyfile(live, changed)
    with open(changed, "ab") as f:
        f.write(b"\nbench release %d\n" % time.time_ns())
    os.chmod(changed, 0o755)
    out = {}
    env = dict(os.environ, BENCH_METHOD="GET", BENCH_BODY="", BENCH_TOKEN=token, BENCH_EXPECT="")
    for what, args in (("deploy", ("deploy", None, "--binary", changed, "projects")),
                       ("rollback", ("rollback", None, "projects"))):
        before = health_release("projects")
        proc = subprocess.Popen(["wrk", "-t2", "-c%d" % CONNECTIONS, "--timeout", "10s", "-s", WRK_LUA, "-d6s",
                                 HTTP + project], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.5)
        t0 = time.monotonic()
        pilotlight(*args)
        wait_until(lambda: health_release("projects") not in (None, before), 30, "the new release to answer")
        seconds = time.monotonic() - t0
        text, _ = proc.communicate(timeout=60)
        line = [ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")]
        r = json.loads(line[-1][len("BENCH_JSON "):]) if line else None
        out[what] = {"seconds": seconds, "requests": r["requests"] if r else None,
                     "failed": (r["connect"] + r["read"] + r["write"] + r["timeout"] + r["status"]) if r else None}
        say("%-8s requests %s, failed %s, %.2f s to the new release" %
            (what, out[what]["requests"], out[what]["failed"], seconds))
    return out


def backup_rows():
    """A generated data set (BACKUP_USERS users, BACKUP_MESSAGES chat
    messages, inserted with SQL), backed up while the stack serves, then
    restored onto the stopped stack: seconds and sizes."""
    sock = os.path.join(RUN, "mysqld.sock")

    def sql(stmt):
        subprocess.run(["mariadb", "--no-defaults", "--socket=" + sock, "-u", "root", "-e", stmt], check=True)

    t0 = time.monotonic()
    sql("INSERT INTO accounts.users (email, password_hash, display_name) SELECT CONCAT('bench-', seq, "
        "'@example.com'), '$argon2id$v=19$m=65536,t=2,p=1$bench', CONCAT('Bench user ', seq) FROM seq_1_to_%d"
        % BACKUP_USERS)
    sql("INSERT INTO chat.messages (room, author_id, author_name, body) SELECT CONCAT('project-', 1 + seq %% 500), "
        "1 + seq %% %d, 'Bench user', CONCAT('message ', seq, ': ', REPEAT('lorem ipsum ', 8)) FROM seq_1_to_%d"
        % (BACKUP_USERS, BACKUP_MESSAGES))
    generated = time.monotonic() - t0
    file = os.path.join(VAR, "backups", "bench.tar.gz")
    t0 = time.monotonic()
    pilotlight("backup", None, file)
    backup_s = time.monotonic() - t0
    with tarfile.open(file) as t:
        dump = t.getmember("databases.sql").size
    pilotlight("down")
    t0 = time.monotonic()
    pilotlight("restore", None, file)
    restore_s = time.monotonic() - t0
    pilotlight("up")
    out = {"users": BACKUP_USERS, "messages": BACKUP_MESSAGES, "generated_s": generated, "backup_s": backup_s,
           "restore_s": restore_s, "file_mb": os.path.getsize(file) / 1e6, "dump_mb": dump / 1e6}
    say("backup   %d users, %d messages: %.1f MB (dump %.1f MB), backup %.2f s, restore %.2f s" %
        (BACKUP_USERS, BACKUP_MESSAGES, out["file_mb"], out["dump_mb"], backup_s, restore_s))
    return out


def report(idle, cold, pw, login_peak, chat_out, started, load, ops=None):
    const, bare = rps("nginx constant"), rps("nginx -> bare libfcgi")
    print()
    print("== Pilotlight bench: %s, %d CPUs, load average at start %s" %
          (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), os.cpu_count(), load))
    print("   wrk -t2 -d%ds on 127.0.0.1 after a 1 s warm-up; pools max_children=%d, the bare responder %d processes;"
          % (SECONDS, WORKERS, WORKERS))
    print("   /ceiling: to nginx's constant answer, /bare: to nginx -> bare libfcgi (means of all their runs);")
    print("   spread: fastest/slowest run - 1; master: the pool master's CPU during the run, share of one core.")
    print()
    print("%-34s %5s %4s %9s %7s %8s %8s %6s %7s %8s %7s" % (
        "throughput", "conns", "runs", "req/s", "spread", "p50 ms", "p99 ms", "errors", "master", "/ceiling",
        "/bare"))
    for name in RESULTS:
        r = row(name)
        if r is None:
            why = next((x["skipped"] for x in RESULTS[name] if "skipped" in x), "no run")
            print("%-34s skipped: %s" % (name, why[:90]))
            continue
        print("%-34s %5d %4d %9.0f %7s %8.2f %8.2f %6d %7s %8s %7s" % (
            name, r["conns"], r["n"], r["rps"], fmt(r["spread"] and 100 * r["spread"], "%.0f%%") if r["n"] > 1 else "",
            r["p50"], r["p99"], r["errors"], fmt(r["master"] and 100 * r["master"], "%.1f%%"),
            fmt(ratio(r["rps"], const)), fmt(ratio(r["rps"], bare))))
    print()
    print("ratios (issue targets in brackets: printed, never asserted)")
    static, ondemand = rps("projects health, static"), rps("chat health, ondemand warm")
    lines = [
        ("health static / bare libfcgi (c/b)", ratio(static, bare), "[>= 0.9] (health pings the DB)"),
        ("404 static / bare libfcgi", ratio(rps("projects 404, static"), bare),
         "(libshared without the DB: router, JSON error, log line)"),
        ("health static / nginx ceiling (c/a)", ratio(static, const), ""),
        ("health ondemand warm / static", ratio(ondemand, static), "(chat's pool vs projects', same code)"),
        ("accounts GET me / accounts health", ratio(rps("accounts GET me"), rps("accounts health")), ""),
        ("accounts GET me / ceiling", ratio(rps("accounts GET me"), const), ""),
        ("accounts login / accounts health", ratio(rps("accounts POST login"), rps("accounts health")), ""),
        ("projects GET {id} / ceiling", ratio(rps("projects GET {id}"), const), "[>= 0.07]"),
        ("projects PATCH {id} / GET {id}", ratio(rps("projects PATCH {id}"), rps("projects GET {id}")), ""),
        ("projects GET primary / GET {id}", ratio(rps(PRIMARY_64), rps("projects GET {id}")),
         "(accounts me through the gateway + GET {id} in-process)"),
        ("projects GET primary / ceiling", ratio(rps(PRIMARY_64), const), "[>= 0.025]"),
    ]
    for label, v, target in lines:
        print("  %-44s %8s  %s" % (label, fmt(v), target))
    me, health = rps("accounts GET me"), rps("accounts health")
    if me and health:
        print("  %-44s %8s  (1/me - 1/health at %d workers: token verify + one user read)" %
              ("GET me over health, us of machine a request", fmt(1e6 / me - 1e6 / health, "%.0f"), WORKERS))
    login = row("accounts POST login")
    if login:
        print("  %-44s %8.1f  (argon2id opslimit %s, memlimit %s KiB; peak RSS of a worker %s MiB)" %
              ("logins/s", login["rps"], pw[0], pw[1], fmt(login_peak / 1024 if login_peak else None, "%.0f")))
    get = row("projects GET {id}")
    if get:
        print("  %-44s %8.2f  [< 15 ms]" % ("projects GET {id} p99 ms, 64 conns", get["p99"]))
    prim = row(PRIMARY_64)
    if prim and prim["errors"]:
        print("  note: %d of %d GET primary failed (see var/bench/log/projects.log): calls that wait on a pool" %
              (prim["errors"], prim["requests"]))
        print("        whose every worker waits on them end with 504 after the invoke timeout.")
    print()
    if cold:
        print("cold start: projects pool at zero workers -> response through nginx, %d trials (ms)" % TRIALS)
        print("  %-14s %8s %8s %8s %8s %9s %4s" % ("request", "cold p50", "cold p99", "warm p50", "warm p99",
                                                "cold/warm", "bad"))
        for label, v in cold.items():
            c50, c99, w50, w99 = pct(v["cold"], 50), pct(v["cold"], 99), pct(v["warm"], 50), pct(v["warm"], 99)
            print("  %-14s %8s %8s %8s %8s %9s %4d" % (label, fmt(c50, "%.2f"), fmt(c99, "%.2f"), fmt(w50, "%.2f"),
                                                     fmt(w99, "%.2f"), fmt(ratio(c50, w50), "%.1f"), v["bad"]))
        print("  (cold: fork from the master + the worker's first DB connection; warm: the next request to it)")
        print("  [targets: cold p50 <= 2 ms, p99 <= 10 ms; a cloud function: 40-50 ms Go, 100+ ms Node]")
        print()
    if idle:
        print("idle: every pool at zero workers for %.1f s (workers alive after: %d)" %
              (idle["wall"], idle["workers_after"]))
        print("  %-19s %8s %11s %10s %8s %8s" % ("process", "CPU ms", "core share", "wakeups/s", "RSS MiB", "PSS MiB"))
        tot_cpu = tot_pss = tot_rss = tot_wake = 0.0
        for r in idle["rows"]:
            print("  %-19s %8.2f %11.7f %10.2f %8.1f %8.1f" % (
                r["label"], r["cpu_ms"], r["cpu_ms"] / 1000 / idle["wall"], r["wakeups"] / idle["wall"],
                r["rss"] / 1024, r["pss"] / 1024))
            if r["label"] != "mariadbd":
                tot_cpu += r["cpu_ms"]
                tot_rss += r["rss"]
                tot_pss += r["pss"]
                tot_wake += r["wakeups"]
        print("  %-19s %8.2f %11.7f %10.2f %8.1f %8.1f" % ("pools + nginx", tot_cpu, tot_cpu / 1000 / idle["wall"],
                                                         tot_wake / idle["wall"], tot_rss / 1024, tot_pss / 1024))
        print("  (PSS shares each library page among the processes mapping it: the sum is the real footprint)")
        print()
    if chat_out:
        print("chat (tests/bench/chat_live.py)")
        for line in chat_out.splitlines():
            print("  " + line)
        print()
    if ops and ops.get("deploy"):
        print("deploy: a changed projects binary swapped in, then rolled back, under wrk (%d connections on GET {id})"
              % CONNECTIONS)
        print("  %-10s %9s %7s %9s" % ("", "requests", "failed", "seconds"))
        for what, d in ops["deploy"].items():
            print("  %-10s %9s %7s %9.2f" % (what, d["requests"], d["failed"], d["seconds"]))
        print("  (failed: must be 0; seconds: from the command to the release's health answering from it)")
        print()
    if ops and ops.get("backup"):
        b = ops["backup"]
        print("backup: %d users and %d chat messages (generated with SQL in %.1f s)" %
              (b["users"], b["messages"], b["generated_s"]))
        print("  file %.1f MB (dump %.1f MB), backup %.2f s while serving, restore %.2f s onto the stopped stack"
              % (b["file_mb"], b["dump_mb"], b["backup_s"], b["restore_s"]))
        print("  restore: %.0f s per GB of dump" % (b["restore_s"] / (b["dump_mb"] / 1000)) if b["dump_mb"] else "")
        print()
    for note in NOTES:
        print("note: " + note)
    print("bench: done in %.0f s" % (time.time() - started))


def setup_user():
    """A user with a project that is also their primary: (token, login body, project id)."""
    email = "bench-%d@pilotlight.test" % os.getpid()
    password = "bench-password-%d" % os.getpid()
    status, body = api("POST", "/api/accounts/signup", {"email": email, "password": password,
                                                        "display_name": "Bench"})
    if status not in (200, 201):
        raise RuntimeError("signup answered %s: %s" % (status, body))
    login = {"email": email, "password": password}
    status, body = api("POST", "/api/accounts/login", login)
    if status != 200:
        raise RuntimeError("login answered %s: %s" % (status, body))
    token = body["access_token"]
    status, body = api("POST", "/api/projects", {"name": "bench", "description": "a project to read"}, token)
    if status not in (200, 201):
        raise RuntimeError("creating a project answered %s: %s" % (status, body))
    project_id = int(body.get("project", body)["id"])
    status, body = api("PATCH", "/api/accounts/me", {"primary_project_id": project_id}, token)
    if status != 200:
        raise RuntimeError("setting the primary project answered %s: %s" % (status, body))
    return token, login, project_id


def main():
    keep = sys.argv[1:] == ["--keep"]
    if sys.argv[1:] and not keep:
        sys.exit("usage: ./pilotlight bench [--keep]   (--keep: leave the bench stack up afterwards)")
    started = time.time()
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    say("stack under %s, %s (public) and %s (internal)" % (VAR, HTTP, INTERNAL))
    fresh_var()
    write_nginx_bench_conf()
    bare = Bare()
    idle = cold = chat_out = ops = None
    login_peak = 0
    pw = ("?", "?")
    try:
        say("bringing the stack up (ondemand pools, idle timeout %d ms, max_children %d)" % (IDLE_TIMEOUT_MS, WORKERS))
        pilotlight("up")
        pw = pwhash_settings()  # from the binary the up just built
        bare.start()

        say("idle cost: %d s with every pool at zero workers" % IDLE_SECONDS)
        idle = idle_cost()

        token, login, project_id = setup_user()
        project = "/api/projects/%d" % project_id
        say("cold starts: %d trials x 2 requests" % TRIALS)
        cold = cold_starts(token, project_id)

        say("throughput, ondemand pools: wrk %d s a run" % SECONDS)
        wrk("nginx constant", "/_bench/const")
        wrk("accounts health", "/api/accounts/health", pool="accounts")
        wrk("accounts GET me", "/api/accounts/me", token=token, pool="accounts")
        peak = PeakRss("accounts")
        wrk("accounts POST login", "/api/accounts/login", method="POST", body=login, conns=LOGIN_CONNECTIONS,
            sampler=peak, pool="accounts")
        login_peak = peak.peak_kib
        wrk("projects GET {id}", project, token=token, pool="projects")
        wrk("projects PATCH {id}", project, method="PATCH", body={"description": "patched by the bench"},
            token=token, pool="projects")
        wrk(PRIMARY_64, "/api/projects/primary", token=token, pool="projects")

        say("projects pool: static, %d workers; chat stays ondemand" % WORKERS)
        restart_pool("projects", {"PL_PROJECTS_POOL_MODE": "static"})
        for _ in range(2):  # interleaved, so that drift hits every row alike
            wrk("nginx constant", "/_bench/const")
            wrk("nginx -> bare libfcgi", "/_bench/bare")
            wrk("projects 404, static", "/api/projects/no/such/route", expect=404, pool="projects")
            wrk("projects health, static", "/api/projects/health", pool="projects")
            wrk("chat health, ondemand warm", "/api/chat/health", pool="chat")

        chat_out = chat_live()

        say("deploy and rollback of projects under load; backup and restore of a generated data set")
        ops = {"deploy": deploy_rows(token, project)}
        ops["backup"] = backup_rows()

    except (RuntimeError, subprocess.SubprocessError, OSError, KeyError, ValueError) as e:
        NOTES.append("stopped early: %s" % e)
    finally:
        bare.stop()
        if keep:
            NOTES.append("the bench stack stays up: %s (stop it: PL_VAR=%s ./pilotlight down)" % (HTTP, VAR))
        else:
            say("stopping the bench stack")
            try:
                pilotlight("down")
            except RuntimeError as e:
                NOTES.append(str(e))
    report(idle, cold, pw, login_peak, chat_out, started, load, ops)
    return 1 if any(n.startswith("stopped early") for n in NOTES) else 0


if __name__ == "__main__":
    sys.exit(main())
