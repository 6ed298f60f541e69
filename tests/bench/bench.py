#!/usr/bin/python3
"""bench.py: `./pilotlight bench` -- figures, never pass/fail.

Brings up a throw-away stack of its own (PL_VAR, ports: chosen by stack_bench
in scripts/stack.sh), then measures, all in this one run so that every figure can be
read as a ratio to another taken minutes apart on the same machine:

  throughput  wrk, 64 connections on 127.0.0.1, a few seconds a run: nginx's
              own constant answer (the ceiling), nginx -> a bare libfcgi
              responder (the protocol floor), nginx -> a kept-alive HTTP/1.1
              responder, a service's health endpoint on an ondemand pool
              (warm) and on a static pool, then accounts and projects
              endpoints with a real token; with each run, the CPU per request
              of the pools, nginx, MariaDB and the responders (/proc);
  cold start  a pool at zero workers -> first response, over N trials, next to
              a warm request to the worker it just started (a short idle
              timeout), and as an operator sees it (the default idle timeout,
              every pool idle);
  anatomy     one request inside a worker: instructions (callgrind) of this
              build's projects binary and of a baseline build's, system calls
              (strace);
  idle        CPU time and wakeups of the pool masters and nginx over a few
              seconds with every pool at zero workers; the memory they hold;
              then the same while every pool's _metrics is scraped;
  chat        tests/bench/chat_live.py; deploy, rollback, backup, restore.

It ends with the issue's targets, each with this run's figure (and a
previous run's, PL_BENCH_BEFORE), and writes every figure as JSON.

Settings (environment): PL_BENCH_SECONDS (4, one wrk run), PL_BENCH_TRIALS
(30 short-idle cold starts), PL_BENCH_COLD_TRIALS (12 operator cold starts,
within PL_BENCH_COLD_SECONDS, 300), PL_BENCH_IDLE_SECONDS (10),
PL_BENCH_SCRAPE_SECONDS (60), PL_BENCH_WORKERS (4: the responders' processes
and every pool's max_children), PL_BENCH_CALLGRIND_REQUESTS (200),
PL_BENCH_STRACE_REQUESTS (200), PL_BENCH_BASELINE_BUILD (a build directory
whose projects binary is measured with callgrind beside this one's),
PL_BENCH_JSON (a copy of the figures' JSON), PL_BENCH_BEFORE (a JSON of an
earlier run, shown beside this one's targets), PL_BENCH_PHASES (which
phases, default all), PL_BENCH_TREE (another checkout whose runner and build
are measured, e.g. an older commit's: the "before" of a comparison).
"""
import calendar
import json
import math
import os
import re
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

import anatomy
import fcgi_client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WRK_LUA = os.path.join(HERE, "wrk.lua")
CHAT_LIVE = os.path.join(HERE, "chat_live.py")


def env_int(name, default, lo, hi):
    raw = os.environ.get(name, str(default))
    try:
        v = int(raw)
    except ValueError:
        sys.exit("bench: %s must be a whole number, not %r" % (name, raw))
    if not lo <= v <= hi:
        sys.exit("bench: %s must be %d-%d" % (name, lo, hi))
    return v


# The tree whose runner and build are measured: this checkout, or another
# one (PL_BENCH_TREE, e.g. an older commit's worktree), with its own state
# directory (<tree>/var/<the slot's bench dir>) on the slot's ports. The
# bench itself (this file, wrk.lua, chat_live.py, the responders from this
# checkout's build) is the same either way.
TREE = os.path.realpath(os.environ.get("PL_BENCH_TREE") or ROOT)
OWN_BUILD = os.environ.get("PL_BUILD_DIR") or os.path.join(ROOT, "build")
if TREE == os.path.realpath(ROOT):
    VAR, BUILD = os.environ["PL_VAR"], OWN_BUILD
else:
    if not os.access(os.path.join(TREE, "pilotlight"), os.X_OK):
        sys.exit("bench: PL_BENCH_TREE=%s has no ./pilotlight" % TREE)
    VAR = os.path.join(TREE, "var", os.path.basename(os.environ["PL_VAR"]))
    BUILD = os.path.join(TREE, "build")
PILOTLIGHT = os.path.join(TREE, "pilotlight")
# a runner from before scripts/ (f0db8c0 and older): its MariaDB port is
# PL_DB_PORT, it has no deploy, backup or mail sink
OLD_RUNNER = not os.path.exists(os.path.join(TREE, "scripts", "lib.sh"))
RUN = os.path.join(VAR, "run")
LOGDIR = os.path.join(VAR, "log")
OUT = os.path.join(VAR, "results")  # callgrind and strace files, the JSON; kept until the next run
HTTP = "http://127.0.0.1:%s" % os.environ["PL_HTTP_PORT"]
INTERNAL = "http://127.0.0.1:%s" % os.environ["PL_INTERNAL_PORT"]
HTTP_PORT = int(os.environ["PL_HTTP_PORT"])

SECONDS = env_int("PL_BENCH_SECONDS", 4, 1, 60)
TRIALS = env_int("PL_BENCH_TRIALS", 30, 3, 1000)
COLD_TRIALS = env_int("PL_BENCH_COLD_TRIALS", 12, 1, 1000)
COLD_SECONDS = env_int("PL_BENCH_COLD_SECONDS", 300, 30, 7200)
IDLE_SECONDS = env_int("PL_BENCH_IDLE_SECONDS", 10, 1, 600)
SCRAPE_SECONDS = env_int("PL_BENCH_SCRAPE_SECONDS", 60, 5, 3600)
SCRAPE_EVERY = 5
WORKERS = env_int("PL_BENCH_WORKERS", 4, 1, 64)
CG_REQUESTS = env_int("PL_BENCH_CALLGRIND_REQUESTS", 200, 10, 100000)
STRACE_REQUESTS = env_int("PL_BENCH_STRACE_REQUESTS", 200, 10, 100000)
BASELINE_BUILD = os.environ.get("PL_BENCH_BASELINE_BUILD", "")
CONNECTIONS = 64
BACKUP_USERS = env_int("PL_BENCH_BACKUP_USERS", 10000, 100, 10000000)
BACKUP_MESSAGES = env_int("PL_BENCH_BACKUP_MESSAGES", 100000, 100, 100000000)
LOGIN_CONNECTIONS = 2 * WORKERS  # argon2id: a deeper queue only adds latency
IDLE_TIMEOUT_MS = 300  # short, so a pool is back at zero soon after a request
SERVICES = ("accounts", "projects", "chat")
PHASES = ("idle", "cold", "throughput", "references", "anatomy", "operator", "monitoring", "chat", "ops")
_phases = os.environ.get("PL_BENCH_PHASES", "").strip()
ENABLED = set(PHASES) if _phases in ("", "all") else set(_phases.replace(",", " ").split()) - {"none"}
if ENABLED - set(PHASES):
    sys.exit("bench: PL_BENCH_PHASES names %s; the phases are %s" %
             (" ".join(sorted(ENABLED - set(PHASES))), ",".join(PHASES)))

# What the bench stack's pools and nginx get. Everything PL_* from the caller's
# environment is dropped except what stack_bench chose (the stack's place), so a
# stray setting (e.g. test's cheap password hashing) cannot skew a figure.
KEEP = ("PL_VAR", "PL_HTTP_PORT", "PL_HTTPS_PORT", "PL_INTERNAL_PORT", "PL_MARIADB_PORT", "PL_HTTP_BIND",
        "PL_INTERNAL_BIND", "PL_TLS_CERT_FILE", "PL_TLS_KEY_FILE", "PL_BUILD_DIR", "PL_TEST_SLOT",
        "PL_MAIL_SINK_PORT", "PL_LOG_ROTATE_CRON")
STACK_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PL_") or k in KEEP}
STACK_ENV.update({
    "PL_VAR": VAR,
    "PL_BUILD_DIR": BUILD,
    # the bench reads no web page: nginx serves an empty directory, and
    # nothing is built with npm
    "PL_WEB_ROOT": os.path.join(VAR, "web"),
    "PL_PUBLIC_URL": HTTP,
})
if OLD_RUNNER:
    STACK_ENV["PL_DB_PORT"] = os.environ["PL_MARIADB_PORT"]
# The pools' settings in every phase but the operator's (which runs them on
# their defaults).
POOL_ENV = {
    "PL_POOL_MODE": "ondemand",
    "PL_MAX_CHILDREN": str(WORKERS),
    "PL_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
}
STACK_ENV.update(POOL_ENV)
# the services' rate limits would measure them refusing us: far out of reach.
for _name in ("LOGIN", "SIGNUP", "REFRESH", "CHAT_POST", "MAIL", "CODE"):
    STACK_ENV["PL_LIMIT_%s_RATE" % _name] = "1000000r/s"
    STACK_ENV["PL_LIMIT_%s_BURST" % _name] = "1000000"

RESULTS = {}  # name -> list of wrk runs (or {"skipped": why})
NOTES = []
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(msg):
    print("bench: %s" % msg, flush=True)


# ---- processes ----------------------------------------------------------------
def proc_stat(pid):
    """(state, ppid) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return rest[0], int(rest[1])


def stat_times(pid):
    """utime, stime, cutime, cstime of a process (clock ticks), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return [int(x) for x in rest[11:15]]  # fields 14-17
    except (OSError, IndexError, ValueError, TypeError):
        return None


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except (OSError, TypeError):
        return None


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children(pid, zombies=False):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[1] == pid and (zombies or st[0] not in ("Z", "X")):
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
    except (OSError, TypeError):
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


def tree_cpu(pid):
    """(user, system) CPU seconds so far of a process, of its children that
    it has waited for (cutime, cstime) and of its children still there (a
    zombie's included): a pool's master and workers, nginx's master and
    workers, a responder. Workers that end during a run are counted once:
    live (or zombie) at the start, in the master's cutime at the end. None
    when the process is gone."""
    own = stat_times(pid)
    if own is None:
        return None
    user, system = own[0] + own[2], own[1] + own[3]
    for child in children(pid, zombies=True):
        t = stat_times(child)
        if t is not None:
            user, system = user + t[0], system + t[1]
    return user / CLK_TCK, system / CLK_TCK


def procs_cpu_ns(pid):
    """CPU so far in nanoseconds of a process and its live children (nginx's
    master and workers)."""
    return cpu_ns(pid) + sum(cpu_ns(c) for c in children(pid))


def pool_cpu_ns(master):
    """A pool's CPU so far in nanoseconds: its master's and live workers'
    (schedstat) and its reaped workers' (cutime + cstime, clock ticks)."""
    t = stat_times(master)
    if t is None:
        return None
    return cpu_ns(master) + sum(cpu_ns(c) for c in children(master)) + (t[2] + t[3]) * 1e9 / CLK_TCK


def status_field(pid, field):
    """A /proc/PID/status number (kB for sizes), 0 if it is not there."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, TypeError):
        pass
    return 0


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, TypeError):
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


def wait_all_idle(timeout, settle=0.5):
    """Until every pool's master has had no worker for SETTLE seconds."""
    deadline = time.monotonic() + timeout
    while True:
        masters = [pidfile(svc) for svc in SERVICES]
        if None in masters:
            raise RuntimeError("a pool is not running (%s)" % dict(zip(SERVICES, masters)))
        wait_until(lambda: not any(children(m) for m in masters), max(1, deadline - time.monotonic()),
                   "every pool to reach zero workers")
        time.sleep(settle)
        if not any(children(m) for m in masters):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for every pool to stay at zero workers")


# ---- the stack ----------------------------------------------------------------
STACK_LOG = None


def pilotlight(cmd, extra_env=None, *args, drop=()):
    env = dict(STACK_ENV, **(extra_env or {}))
    for name in drop:
        env.pop(name, None)
    with open(STACK_LOG, "a") as log:
        rc = subprocess.run([PILOTLIGHT, cmd, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=TREE).returncode
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
    for d in (os.path.join(VAR, "nginx", "bench.d"), LOGDIR, OUT, os.path.join(VAR, "web")):
        os.makedirs(d, exist_ok=True)
    STACK_LOG = os.path.join(LOGDIR, "bench-stack.log")


HTTP_UPSTREAM = "pl_bench_http_keepalive"


def write_nginx_bench_conf():
    """The references, on the public listener beside the API. The kept-alive
    HTTP upstream is named through a variable: nginx finds the upstream block
    of that name when there is one (http_upstream()), and the config passes
    nginx -t when there is none (the runner renders it again on every up)."""
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
location = /_bench/http {
    set $pl_bench_upstream %s;
    proxy_pass http://$pl_bench_upstream;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
}
""" % (RUN, HTTP_UPSTREAM)
    with open(os.path.join(VAR, "nginx", "bench.d", "bench.conf"), "w") as f:
        f.write(conf)


def http_upstream():
    """The kept-alive HTTP responder's upstream block, at nginx's http level.
    The template includes bench.d/ only inside the public server, where no
    `upstream` may stand, so the block is appended to the rendered
    upstreams.conf (http level) and nginx reloaded; the runner's next render
    drops it again. True when /_bench/http answers through it."""
    path = os.path.join(VAR, "nginx", "upstreams.conf")
    with open(path) as f:
        text = f.read()
    if HTTP_UPSTREAM not in text:
        with open(path, "a") as f:
            f.write("\n# appended by tests/bench/bench.py: its kept-alive HTTP reference\n"
                    "upstream %s {\n    server unix:%s/http.sock;\n    keepalive 64;\n}\n" % (HTTP_UPSTREAM, RUN))
        nginx = pidfile("nginx")
        old = set(children(nginx))
        os.kill(nginx, signal.SIGHUP)
        wait_until(lambda: set(children(nginx)) - old, 30, "nginx's new workers after the reload")
        wait_until(lambda: not set(children(nginx)) & old, 30, "nginx's old workers to leave")
    status, _ = api("GET", "/_bench/http")
    return status == 200


class Responder:
    """A reference upstream from this checkout's build (tests/bench/):
    pl-fcgi-bare or pl-http-keepalive, WORKERS processes on a unix socket.
    Its master ignores SIGTERM, so it goes with SIGKILL to its whole process
    group (its own session, started here)."""

    def __init__(self, binary, sock):
        self.binary, self.sock, self.proc = os.path.join(OWN_BUILD, "tests", "bench", binary), sock, None

    def start(self):
        sock = os.path.join(RUN, self.sock)
        if os.path.exists(sock):
            os.unlink(sock)
        with open(os.path.join(LOGDIR, os.path.basename(self.binary) + ".log"), "a") as log:
            self.proc = subprocess.Popen([self.binary, "unix:" + sock, str(WORKERS)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        wait_until(lambda: os.path.exists(sock), 10, "the socket of %s" % self.binary)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None


def restart_pools(svcs, extra_env=None, drop=()):
    """Stop pools (SIGTERM to each master; the supervisor, if any, follows)
    and let `up` start them again with other settings; MariaDB and nginx stay
    as they are."""
    for svc in svcs:
        pid = pidfile(svc)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not alive(pid), 30, "the %s pool to stop" % svc)
    pilotlight("up", extra_env, drop=drop)


def restart_pool(svc, extra_env):
    restart_pools((svc,), extra_env)


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
            raw = r.read()
            try:
                return r.status, json.loads(raw or b"null")
            except ValueError:
                return r.status, raw
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw[:200]
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


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
def cpu_snapshot(upstream=None):
    """CPU so far, (user, system) seconds, of each pool, nginx, MariaDB and a
    reference responder, keyed by name, with the pid it was read from."""
    snap = {}
    for name in SERVICES + ("nginx", "mysqld"):
        pid = pidfile(name)
        snap[name] = (pid, tree_cpu(pid) if pid else None)
    if upstream is not None:
        snap["upstream"] = (upstream, tree_cpu(upstream))
    return snap


def cpu_delta(before, after):
    """name -> (user, system) seconds spent between two snapshots of the same
    processes (a process restarted meanwhile: left out)."""
    out = {}
    for name, (pid, t0) in before.items():
        pid1, t1 = after.get(name, (None, None))
        if pid1 == pid and t0 is not None and t1 is not None:
            out[name] = (t1[0] - t0[0], t1[1] - t0[1])
    return out


def wrk(name, path, method="GET", body=None, token=None, conns=CONNECTIONS, expect=200, sampler=None,
        pools=(), upstream=None):
    """One measured wrk run, after a 1 s warm-up (which also wakes an ondemand
    pool), unless a probe request does not get the expected status. With
    pools (the ones serving it): also the CPU their masters spent meanwhile,
    as a share of one core. Every run records the CPU spent by each pool,
    nginx, MariaDB and the reference responder (upstream: its pid). Runs
    under one name add up (see row())."""
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
    masters = [pidfile(p) for p in pools]
    masters = [m for m in masters if m]
    master_cpu0, t0 = sum(cpu_ns(m) for m in masters), time.monotonic()
    snap0 = cpu_snapshot(upstream)
    proc = subprocess.Popen(base + ["-d%ds" % SECONDS, HTTP + path], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if sampler:
        sampler(proc)
    out, _ = proc.communicate(timeout=SECONDS + 60)
    spent = cpu_delta(snap0, cpu_snapshot(upstream))
    wall = time.monotonic() - t0
    master_share = (sum(cpu_ns(m) for m in masters) - master_cpu0) / 1e9 / wall if masters else None
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
    r["pools"] = list(pools)
    r["cpu_s"] = spent
    runs.append(r)
    us = cpu_per_request(r)
    say("%-34s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d  CPU us/req: pool %s nginx %s db %s%s" %
        (name, r["rps"], r["p50_us"] / 1000, r["p99_us"] / 1000, r["errors"], fmt(us.get("pool"), "%.0f"),
         fmt(us.get("nginx"), "%.0f"), fmt(us.get("db"), "%.0f"),
         "  master %.1f%% of a core" % (100 * master_share) if master_share is not None else ""))


def cpu_per_request(r):
    """Microseconds of CPU per request, over one run or rows of runs summed
    (keys: pool (the row's own pools), pool_user, pool_sys, others (the other
    pools), nginx, db, upstream)."""
    n = r["requests"]
    if not n:
        return {}
    spent, own = r["cpu_s"], r["pools"]
    us = {}
    if own and all(p in spent for p in own):
        us["pool_user"] = sum(spent[p][0] for p in own) / n * 1e6
        us["pool_sys"] = sum(spent[p][1] for p in own) / n * 1e6
        us["pool"] = us["pool_user"] + us["pool_sys"]
    others = [p for p in SERVICES if p not in own]
    if all(p in spent for p in others):
        us["others"] = sum(sum(spent[p]) for p in others) / n * 1e6
    for key, name in (("nginx", "nginx"), ("db", "mysqld"), ("upstream", "upstream")):
        if name in spent:
            us[key] = sum(spent[name]) / n * 1e6
    return us


def row(name):
    """The runs under one name, summed up: mean req/s, their spread (max/min
    - 1), median p50, worst p99, all errors, mean master share, CPU per
    request over all the runs; None if none was measured."""
    runs = [r for r in RESULTS.get(name, []) if "rps" in r]
    if not runs:
        return None
    vals = [r["rps"] for r in runs]
    shares = [r["master_share"] for r in runs if r["master_share"] is not None]
    spent = {}
    for r in runs:
        for k, (u, s) in r["cpu_s"].items():
            acc = spent.setdefault(k, [0.0, 0.0, 0])
            acc[0], acc[1], acc[2] = acc[0] + u, acc[1] + s, acc[2] + 1
    # a process left out of one run (restarted) is left out of the sum
    spent = {k: (v[0], v[1]) for k, v in spent.items() if v[2] == len(runs)}
    requests = sum(r["requests"] for r in runs)
    return {"rps": statistics.mean(vals), "n": len(runs),
            "spread": (max(vals) / min(vals) - 1) if min(vals) > 0 else None,
            "p50": statistics.median(r["p50_us"] for r in runs) / 1000,
            "p99": max(r["p99_us"] for r in runs) / 1000,
            "errors": sum(r["errors"] for r in runs), "requests": requests,
            "conns": runs[0]["conns"], "master": statistics.mean(shares) if shares else None,
            "cpu_us": cpu_per_request({"requests": requests, "cpu_s": spent, "pools": runs[0]["pools"]})}


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
    pools0 = {svc: pool_cpu_ns(pidfile(svc)) for svc in SERVICES}
    t0 = time.monotonic()
    time.sleep(IDLE_SECONDS)
    wall = time.monotonic() - t0
    rows = []
    for label, pid in procs:
        c0, w0 = before[pid]
        rows.append({"label": label, "pid": pid, "cpu_ms": (cpu_ns(pid) - c0) / 1e6,
                     "wakeups": wakeups(pid) - w0, "rss": status_field(pid, "VmRSS"), "pss": pss_kib(pid)})
    spawned = sum(len(children(pidfile(svc))) for svc in SERVICES)
    pools_ms = sum((pool_cpu_ns(pidfile(svc)) or 0) - (pools0[svc] or 0) for svc in SERVICES) / 1e6
    others = [r for r in rows if r["label"] != "mariadbd"]
    return {"wall": wall, "rows": rows, "workers_after": spawned, "pools_cpu_ms_per_s": pools_ms / wall,
            "nginx_cpu_ms_per_s": sum(r["cpu_ms"] for r in rows if r["label"].startswith("nginx")) / wall,
            "pss_mib": sum(r["pss"] for r in others) / 1024, "rss_mib": sum(r["rss"] for r in others) / 1024}


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
    master = pidfile("projects")
    for label, part in (("health", "/health"), ("get project", "/api/projects/%d" % project_id)):
        res[label]["worker"] = cold_breakdown("projects", master, part)
    return res


def operator_cold(token, project_id):
    """Cold starts as an operator sees them: every pool on its default
    settings (PL_IDLE_TIMEOUT_MS, PL_MAX_CHILDREN, PL_POOL_MODE unset), all
    of them idle past their idle timeout; then one GET {id} with a token
    (projects' pool cold) and one health of chat (chat's pool cold), each on
    a new connection through nginx, end to end. COLD_TRIALS trials, or as
    many as fit in COLD_SECONDS."""
    say("operator cold start: pools on their defaults, %d trials (at most %d s)" % (COLD_TRIALS, COLD_SECONDS))
    restart_pools(SERVICES, drop=tuple(POOL_ENV))
    idle_ms = default_idle_timeout_ms()
    res = {"get project": {"ms": [], "bad": 0}, "chat health": {"ms": [], "bad": 0}, "idle_timeout_ms": idle_ms,
           "waited_s": []}
    deadline = time.monotonic() + COLD_SECONDS
    for _ in range(COLD_TRIALS):
        t0 = time.monotonic()
        if t0 + (idle_ms / 1000 + 2) > deadline:
            break
        wait_all_idle(timeout=idle_ms / 1000 * 3 + 30)
        res["waited_s"].append(time.monotonic() - t0)
        for label, path, tok in (("get project", "/api/projects/%d" % project_id, token),
                                 ("chat health", "/api/chat/health", None)):
            ms, status = timed_get(path, tok)
            if status == 200:
                res[label]["ms"].append(ms)
            else:
                res[label]["bad"] += 1
    res["worker"] = cold_breakdown("projects", pidfile("projects"), "/api/projects/%d" % project_id)
    n = len(res["get project"]["ms"])
    say("operator cold start: %d trials, GET {id} p50 %s ms, worst %s ms" %
        (n, fmt(pct(res["get project"]["ms"], 50), "%.2f"), fmt(pct(res["get project"]["ms"], 100), "%.2f")))
    return res


def cold_breakdown(svc, master, path_part):
    """Where a cold start's time goes inside the worker, from the pool's log
    (every tree's workers write these lines): for each worker MASTER forked
    (worker_spawn, logged when fork returns) whose first request was a GET
    of a path containing PATH_PART: fork -> the request read (its line's
    time minus duration_us), the request read -> db_connect (the worker's
    first MariaDB connection, made in the request), db_connect -> the reply
    (the first statement: prepare, execute, the answer), and the next
    request to the same worker. Medians, ms; None if nothing matched."""
    def when(line):
        # 2026-11-29T22:33:40.012678Z, UTC
        return calendar.timegm(time.strptime(line["time"][:19], "%Y-%m-%dT%H:%M:%S")) + \
            float("0." + line["time"][20:26])
    spawns, dbc, reqs, forks = {}, {}, {}, {}
    try:
        with open(os.path.join(LOGDIR, "%s.log" % svc), errors="replace") as f:
            for raw in f:
                try:
                    e = json.loads(raw)
                except ValueError:
                    continue
                ev = e.get("event")
                if ev == "worker_spawn" and e.get("pid") == master and e.get("workers") == 1:
                    spawns[e["worker_pid"]] = when(e)
                    forks[e["worker_pid"]] = (e.get("fork_us"), e.get("standby"))
                elif ev == "db_connect":
                    dbc.setdefault(e.get("pid"), when(e))
                elif ev == "request" and e.get("pid") in spawns and len(reqs.setdefault(e["pid"], [])) < 2:
                    reqs[e["pid"]].append(e)
    except (OSError, KeyError, ValueError):
        return None
    parts = {"fork": [], "fork_to_read": [], "connect": [], "first_statement": [], "request": [], "in_worker": [],
             "warm": []}
    standby = 0
    for pid, forked in spawns.items():
        r = reqs.get(pid) or []
        if not r or r[0].get("method") != "GET" or path_part not in r[0].get("path", ""):
            continue
        end, dur = when(r[0]), r[0]["duration_us"] / 1e6
        start = end - dur
        parts["fork_to_read"].append((start - forked) * 1000)
        parts["request"].append(dur * 1000)
        fork_us, held = forks.get(pid, (None, None))
        if fork_us is not None:
            parts["fork"].append(fork_us / 1000)
        standby += held == 1
        parts["in_worker"].append((end - forked) * 1000)
        db = dbc.get(pid)
        if db is not None and start <= db <= end:
            parts["connect"].append((db - start) * 1000)
            parts["first_statement"].append((end - db) * 1000)
        if len(r) > 1 and r[1].get("path") == r[0].get("path"):
            parts["warm"].append(r[1]["duration_us"] / 1000)
    if not parts["in_worker"]:
        return None
    out = {k: statistics.median(v) if v else None for k, v in parts.items()}
    out["n"] = len(parts["in_worker"])
    out["standby"] = standby
    return out


def default_idle_timeout_ms():
    """The pools' default idle timeout, from the projects binary."""
    out = subprocess.run([os.path.join(BUILD, "services", "projects", "pl-projects"), "--help"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[0] == "PL_IDLE_TIMEOUT_MS" and parts[1].isdigit():
            return int(parts[1])
    return 10000


def monitoring(idle):
    """Every pool's _metrics scraped through nginx's internal listener every
    SCRAPE_EVERY s for SCRAPE_SECONDS with every pool idle: the workers that
    started meanwhile (each master's children, watched every 50 ms; and the
    pools' own spawns_total from the first to the last scrape), the pools'
    CPU (masters, workers, reaped workers) and nginx's per second."""
    wait_all_idle(timeout=60)
    masters = {svc: pidfile(svc) for svc in SERVICES}
    nginx = pidfile("nginx")
    seen = {svc: set() for svc in SERVICES}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for svc, m in masters.items():
                seen[svc].update(children(m))
            time.sleep(0.05)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cpu0 = {svc: pool_cpu_ns(m) for svc, m in masters.items()}
    nginx0 = procs_cpu_ns(nginx)
    first, last = {}, {}
    scrapes = failed = 0
    t0 = time.monotonic()
    k = 0
    while k * SCRAPE_EVERY < SCRAPE_SECONDS:
        wait = t0 + k * SCRAPE_EVERY - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        for svc in SERVICES:
            status, body = api("GET", "/api/%s/_metrics" % svc, base=INTERNAL)
            scrapes += 1
            if status != 200:
                failed += 1
                continue
            m = re.search(rb"^\S*spawns_total(?:\{[^}]*\})?\s+(\d+)", body if isinstance(body, bytes) else b"",
                          re.M)
            if m:
                first.setdefault(svc, int(m.group(1)))
                last[svc] = int(m.group(1))
        k += 1
    time.sleep(max(0, t0 + SCRAPE_SECONDS - time.monotonic()))
    wall = time.monotonic() - t0
    stop.set()
    watcher.join()
    cpu1 = {svc: pool_cpu_ns(m) for svc, m in masters.items()}
    nginx1 = procs_cpu_ns(nginx)
    pools_ms = {svc: ((cpu1[svc] or 0) - (cpu0[svc] or 0)) / 1e6 for svc in SERVICES}
    out = {"seconds": wall, "scrapes": scrapes, "failed": failed,
           "spawns_seen": {svc: len(seen[svc]) for svc in SERVICES},
           "spawns_counted": {svc: last[svc] - first[svc] for svc in SERVICES if svc in first},
           "workers_after": sum(len(children(m)) for m in masters.values()),
           "pools_cpu_ms_per_s": sum(pools_ms.values()) / wall,
           "pool_cpu_ms": pools_ms,
           "nginx_cpu_ms_per_s": (nginx1 - nginx0) / 1e6 / wall,
           "idle_pools_cpu_ms_per_s": idle.get("pools_cpu_ms_per_s") if idle else None,
           "idle_nginx_cpu_ms_per_s": idle.get("nginx_cpu_ms_per_s") if idle else None}
    say("monitoring: %d scrapes (%d failed) in %.0f s: workers started %d, pools' CPU %.3f ms/s (idle: %s)" %
        (scrapes, failed, wall, sum(out["spawns_seen"].values()), out["pools_cpu_ms_per_s"],
         fmt(out["idle_pools_cpu_ms_per_s"], "%.3f")))
    return out


def pct(vals, p):
    """Nearest-rank percentile: the smallest value with at least p % of the
    values at or below it."""
    if not vals:
        return None
    s = sorted(vals)
    return s[max(1, min(len(s), math.ceil(p * len(s) / 100))) - 1]


def anatomy_phase(token, project_id):
    """System calls per GET {id} on the stack's projects pool (strace), and
    instructions per GET {id} of this build's and a baseline build's
    projects binary (callgrind), each as a pool of its own."""
    out = {}
    path = "/api/projects/%d" % project_id
    master = pidfile("projects")
    send = anatomy.KeepAliveClient(HTTP_PORT, path, token)
    send(20)  # every worker warm
    say("anatomy: strace on the projects pool, %d requests" % STRACE_REQUESTS)
    out["strace"] = anatomy.strace_requests([master] + children(master), send, STRACE_REQUESTS, OUT, "projects")
    if "per_request" in out["strace"]:
        say("anatomy: %.1f system calls per GET {id} in the projects pool" % out["strace"]["per_request"])
    else:
        say("anatomy: strace skipped: %s" % out["strace"].get("skipped"))
    if shutil.which("valgrind") is None:
        out["callgrind"] = {"skipped": "valgrind is not installed"}
        return out
    env = anatomy.read_environ(master)

    def params():
        return fcgi_client.nginx_params(
            "GET", path, {"Host": "127.0.0.1:%d" % HTTP_PORT, "Authorization": "Bearer " + token},
            server_port=HTTP_PORT)
    out["callgrind"] = {}
    builds = [("current", BUILD)]
    if BASELINE_BUILD:
        builds.append(("baseline", BASELINE_BUILD))
    for label, build in builds:
        binary = os.path.join(build, "services", "projects", "pl-projects")
        say("anatomy: callgrind, %s build (%s), %d requests" % (label, build, CG_REQUESTS))
        r = anatomy.callgrind(binary, env, RUN, LOGDIR, OUT, label, params, CG_REQUESTS)
        out["callgrind"][label] = r
        say("anatomy: %s: %s" % (label, "%.0f Ir per request" % r["ir_per_request"] if r.get("ir_per_request")
                                 else "skipped: %s" % r.get("skipped")))
    return out


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


def chat_figures(text):
    """The latency and throughput rows of chat_live.py's table."""
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 7 and parts[0] in ("latency", "throughput") and parts[1].isdigit():
            out[parts[0]] = {"messages": int(parts[1]), "deliveries": int(parts[2]), "p50_ms": float(parts[3]),
                             "p99_ms": float(parts[4]), "max_ms": float(parts[5])}
        m = re.search(r"\((\d+) posts/s\)", line)
        if m:
            out["posts_per_s"] = int(m.group(1))
        m = re.search(r"out-of-order message: (\d+); closed early: (\d+)", line)
        if m:
            out["broken"], out["closed_early"] = int(m.group(1)), int(m.group(2))
    return out


# ---- the table ----------------------------------------------------------------
def fmt(v, spec="%.3f"):
    return "-" if v is None else spec % v


PRIMARY_64 = "projects GET primary"
HTTP_ROW = "nginx -> keep-alive HTTP"


# ---- deploys and backups ---------------------------------------------------------
def health_release(svc):
    status, body = api("GET", "/api/%s/health" % svc)
    return body.get("release") if status == 200 and isinstance(body, dict) else None


def deploy_rows(token, project):
    """A changed projects binary (the live one with bytes appended) deployed,
    then rolled back, each under wrk (CONNECTIONS connections on GET {id}),
    the deploy's watch after the swap (PL_DEPLOY_PROBATION_S, its default)
    included: requests that failed meanwhile, seconds from the command to the
    release's health answering from it, and until the command was done."""
    live = os.path.join(VAR, "releases", "projects", "live", "pl-projects")
    changed = os.path.join(VAR, "tmp", "pl-projects-bench")
    os.makedirs(os.path.dirname(changed), exist_ok=True)
    shutil.copyfile(live, changed)
    with open(changed, "ab") as f:
        f.write(b"\nbench release %d\n" % time.time_ns())
    os.chmod(changed, 0o755)
    out = {}
    env = dict(os.environ, BENCH_METHOD="GET", BENCH_BODY="", BENCH_TOKEN=token, BENCH_EXPECT="")
    for what, args in (("deploy", ("deploy", "--binary", changed, "projects")),
                       ("rollback", ("rollback", "projects"))):
        before = health_release("projects")
        proc = subprocess.Popen(["wrk", "-t2", "-c%d" % CONNECTIONS, "--timeout", "10s", "-s", WRK_LUA, "-d20s",
                                 HTTP + project], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.5)
        t0 = time.monotonic()
        with open(STACK_LOG, "a") as log:
            cmd = subprocess.Popen([PILOTLIGHT, *args], env=STACK_ENV, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: health_release("projects") not in (None, before), 30, "the new release to answer")
        seconds = time.monotonic() - t0
        rc = cmd.wait(60)
        done = time.monotonic() - t0
        if rc != 0:
            raise RuntimeError("./pilotlight %s failed (log: %s)" % (" ".join(args), STACK_LOG))
        text, _ = proc.communicate(timeout=60)
        line = [ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")]
        r = json.loads(line[-1][len("BENCH_JSON "):]) if line else None
        out[what] = {"seconds": seconds, "done": done, "requests": r["requests"] if r else None,
                     "failed": (r["connect"] + r["read"] + r["write"] + r["timeout"] + r["status"]) if r else None}
        say("%-8s requests %s, failed %s, %.2f s to the new release, %.2f s to the command's end" %
            (what, out[what]["requests"], out[what]["failed"], seconds, done))
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
        "'@example.com'), '$argon2id$v=19$m=65536,t=2,p=1$bench', CONCAT('Bench user ', seq) FROM accounts.seq_1_to_%d"
        % BACKUP_USERS)
    sql("INSERT INTO chat.messages (room, author_id, author_name, body) SELECT CONCAT('project-', 1 + seq %% 500), "
        "1 + seq %% %d, 'Bench user', CONCAT('message ', seq, ': ', REPEAT('lorem ipsum ', 8)) FROM chat.seq_1_to_%d"
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


# ---- the figures as JSON, and the targets ---------------------------------------
def figures(res):
    """Every figure of the run as one JSON-able dict."""
    rows = {}
    for name in RESULTS:
        r = row(name)
        rows[name] = r if r is not None else {
            "skipped": next((x["skipped"] for x in RESULTS[name] if "skipped" in x), "no run")}
    return dict(res, rows=rows, notes=NOTES)


def target_values(f):
    """The issue's targets, as (key, value) from a figures dict (this run's or
    a JSON's)."""
    rows = f.get("rows", {})

    def r(name, *keys):
        v = rows.get(name)
        for k in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v
    const = r("nginx constant", "rps")
    get = r("projects GET {id}", "rps")
    an = f.get("anatomy") or {}
    cg = an.get("callgrind") or {}
    st = an.get("strace") or {}
    op = f.get("operator") or {}
    opget = (op.get("get project") or {}).get("ms") or []
    ophealth = (op.get("chat health") or {}).get("ms") or []
    mon = f.get("monitoring") or {}
    idle = f.get("idle") or {}
    chat = f.get("chat") or {}
    errors = sum(v.get("errors", 0) for v in rows.values() if isinstance(v, dict))
    bad = sum((op.get(k) or {}).get("bad", 0) for k in ("get project", "chat health"))
    bad += sum(v.get("bad", 0) for v in (f.get("cold") or {}).values())
    bad += (f.get("monitoring") or {}).get("failed") or 0
    for d in ((f.get("ops") or {}).get("deploy") or {}).values():
        bad += d.get("failed") or 0
    return {
        "get_pool_us": r("projects GET {id}", "cpu_us", "pool"),
        "get_pool_user_us": r("projects GET {id}", "cpu_us", "pool_user"),
        "get_pool_sys_us": r("projects GET {id}", "cpu_us", "pool_sys"),
        "get_db_us": r("projects GET {id}", "cpu_us", "db"),
        "ir_current": (cg.get("current") or {}).get("ir_per_request"),
        "ir_baseline": (cg.get("baseline") or {}).get("ir_per_request"),
        "syscalls": st.get("per_request"),
        "get_ceiling": ratio(get, const),
        "nginx_get_us": r("projects GET {id}", "cpu_us", "nginx"),
        "nginx_bare_us": r("nginx -> bare libfcgi", "cpu_us", "nginx"),
        "nginx_http_us": r(HTTP_ROW, "cpu_us", "nginx"),
        "nginx_const_us": r("nginx constant", "cpu_us", "nginx"),
        "primary_get": ratio(r(PRIMARY_64, "rps"), get),
        "op_cold_p50": pct(opget, 50), "op_cold_p99": pct(opget, 99), "op_cold_n": len(opget) if op else None,
        "op_health_p50": pct(ophealth, 50), "op_health_p99": pct(ophealth, 99),
        "mon_spawns": sum((mon.get("spawns_seen") or {}).values()) if mon else None,
        "mon_cpu": mon.get("pools_cpu_ms_per_s"), "idle_cpu": idle.get("pools_cpu_ms_per_s"),
        "logins": r("accounts POST login", "rps"),
        "chat_p50": (chat.get("latency") or {}).get("p50_ms"), "chat_p99": (chat.get("latency") or {}).get("p99_ms"),
        "chat_posts": chat.get("posts_per_s"),
        "idle_pss": idle.get("pss_mib"),
        "failed": errors + bad if rows else None,
    }


# (label, key, format, target text, met(value) or None)
TARGETS = [
    ("1  GET {id}: pool CPU per request, us", "get_pool_us", "%.0f", "<= 100", lambda v: v <= 100),
    ("   of it user / system, us", ("get_pool_user_us", "get_pool_sys_us"), "%.0f", "", None),
    ("   MariaDB's CPU per GET {id}, us", "get_db_us", "%.0f", "", None),
    ("   instructions per request (callgrind)", "ir_current", "%.0f", "reported", None),
    ("   ... of the baseline build, same run", "ir_baseline", "%.0f", "", None),
    ("   system calls per request (strace)", "syscalls", "%.1f", "reported", None),
    ("2  GET {id} / nginx ceiling", "get_ceiling", "%.3f", ">= 0.13", lambda v: v >= 0.13),
    ("   nginx CPU per request, us: GET {id}", "nginx_get_us", "%.0f", "", None),
    ("   ... -> bare libfcgi (FastCGI)", "nginx_bare_us", "%.0f", "", None),
    ("   ... -> keep-alive HTTP", "nginx_http_us", "%.0f", "", None),
    ("   ... its own constant answer", "nginx_const_us", "%.0f", "", None),
    ("3  GET primary / GET {id}", "primary_get", "%.3f", ">= 0.6", lambda v: v >= 0.6),
    ("4  operator cold start GET {id} p50, ms", "op_cold_p50", "%.2f", "<= 2", lambda v: v <= 2),
    ("   ... p99 (nearest rank), ms", "op_cold_p99", "%.2f", "<= 5", lambda v: v <= 5),
    ("   ... trials", "op_cold_n", "%d", "", None),
    ("   ... chat health p50 / p99, ms", ("op_health_p50", "op_health_p99"), "%.2f", "", None),
    ("5  scraping idle pools: workers started", "mon_spawns", "%d", "0", lambda v: v == 0),
    ("   pools' CPU while scraped, ms/s", "mon_cpu", "%.3f", "~ idle", None),
    ("   pools' CPU idle, not scraped, ms/s", "idle_cpu", "%.3f", "", None),
    ("6  logins/s", "logins", "%.1f", "no regression", None),
    ("   chat post-to-deliver p50 / p99, ms", ("chat_p50", "chat_p99"), "%.1f", "no regression", None),
    ("   chat posts/s to all subscribers", "chat_posts", "%d", "no regression", None),
    ("   idle PSS, pools + nginx, MiB", "idle_pss", "%.1f", "no regression", None),
    ("   requests failed (every row)", "failed", "%d", "0", lambda v: v == 0),
]


def fmt_target(vals, key, spec):
    if isinstance(key, tuple):
        parts = [fmt(vals.get(k), spec) for k in key]
        return " / ".join(parts) if any(p != "-" for p in parts) else "-"
    return fmt(vals.get(key), spec)


def print_targets(now, before):
    print("targets (issue 18; figures only, never asserted)%s" %
          ("; before: %s" % before.get("meta", {}).get("label", "") if before else ""))
    vals = target_values(now)
    bvals = target_values(before) if before else {}
    print("  %-42s %14s %14s %-14s %s" % ("", "before" if before else "", "this run", "target", "met"))
    for label, key, spec, target, met in TARGETS:
        v = None if isinstance(key, tuple) else vals.get(key)
        ok = "-" if met is None or v is None else ("yes" if met(v) else "no")
        print("  %-42s %14s %14s %-14s %s" % (label, fmt_target(bvals, key, spec) if before else "",
                                              fmt_target(vals, key, spec), target, ok if met else ""))
    if vals.get("op_cold_n") is not None and vals["op_cold_n"] < 100:
        print("  (with %d trials the nearest-rank p99 is the slowest trial)" % vals["op_cold_n"])
    print()


# ---- the report -----------------------------------------------------------------
def report(res, before):
    idle, cold, pw, login_peak = res.get("idle"), res.get("cold"), res.get("pw"), res.get("login_peak")
    chat_out, ops, started, load = res.get("chat_text"), res.get("ops"), res["meta"]["started"], res["meta"]["load"]
    const, bare = rps("nginx constant"), rps("nginx -> bare libfcgi")
    print()
    print("== Pilotlight bench: %s, %d CPUs, load average at start %s, at the end %s" %
          (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), os.cpu_count(), load,
           res["meta"].get("load_end", "?")))
    print("   measured: %s" % res["meta"]["label"])
    print("   wrk -t2 -d%ds on 127.0.0.1 after a 1 s warm-up; pools max_children=%d, the responders %d processes;"
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
    print("CPU per request, us (utime + stime from /proc over each run, all its runs; a pool: master, workers")
    print("and the workers it reaped; pool: the row's own, others: the other pools, upstream: the responder)")
    print("%-34s %7s %7s %7s %7s %7s %7s %9s %7s" % ("", "pool", "user", "sys", "others", "nginx", "db",
                                                   "upstream", "total"))
    for name in RESULTS:
        r = row(name)
        if r is None:
            continue
        us = r["cpu_us"]
        total = sum(us.get(k) or 0 for k in ("pool", "others", "nginx", "db", "upstream"))
        print("%-34s %7s %7s %7s %7s %7s %7s %9s %7.0f" % (
            name, fmt(us.get("pool"), "%.0f"), fmt(us.get("pool_user"), "%.0f"), fmt(us.get("pool_sys"), "%.0f"),
            fmt(us.get("others"), "%.0f"), fmt(us.get("nginx"), "%.0f"), fmt(us.get("db"), "%.0f"),
            fmt(us.get("upstream"), "%.0f"), total))
    print("  (wrk's own CPU is not in it; 2 cores shared with wrk: total x req/s is at most 2 s a second)")
    print()
    print("ratios (issue targets in brackets: printed, never asserted)")
    static, ondemand = rps("projects health, static"), rps("chat health, ondemand warm")
    lines = [
        ("health static / bare libfcgi (c/b)", ratio(static, bare), "[>= 0.9] (health pings the DB)"),
        ("404 static / bare libfcgi", ratio(rps("projects 404, static"), bare),
         "(libshared without the DB: router, JSON error, log line)"),
        ("health static / nginx ceiling (c/a)", ratio(static, const), ""),
        ("keep-alive HTTP / bare libfcgi", ratio(rps(HTTP_ROW), bare), "(the same answer over the two protocols)"),
        ("health ondemand warm / static", ratio(ondemand, static), "(chat's pool vs projects', same code)"),
        ("accounts GET me / accounts health", ratio(rps("accounts GET me"), rps("accounts health")), ""),
        ("accounts GET me / ceiling", ratio(rps("accounts GET me"), const), ""),
        ("accounts login / accounts health", ratio(rps("accounts POST login"), rps("accounts health")), ""),
        ("projects GET {id} / ceiling", ratio(rps("projects GET {id}"), const), "[>= 0.13]"),
        ("projects PATCH {id} / GET {id}", ratio(rps("projects PATCH {id}"), rps("projects GET {id}")), ""),
        ("projects GET primary / GET {id}", ratio(rps(PRIMARY_64), rps("projects GET {id}")),
         "[>= 0.6] (accounts me invoked + GET {id} in-process)"),
        ("projects GET primary / ceiling", ratio(rps(PRIMARY_64), const), ""),
    ]
    for label, v, target in lines:
        print("  %-44s %8s  %s" % (label, fmt(v), target))
    me, health = rps("accounts GET me"), rps("accounts health")
    if me and health:
        print("  %-44s %8s  (1/me - 1/health at %d workers: token verify + one user read)" %
              ("GET me over health, us of machine a request", fmt(1e6 / me - 1e6 / health, "%.0f"), WORKERS))
    login = row("accounts POST login")
    if login and pw:
        print("  %-44s %8.1f  (argon2id opslimit %s, memlimit %s KiB; peak RSS of a worker %s MiB)" %
              ("logins/s", login["rps"], pw[0], pw[1], fmt(login_peak / 1024 if login_peak else None, "%.0f")))
    get = row("projects GET {id}")
    if get:
        print("  %-44s %8.2f  [< 15 ms]" % ("projects GET {id} p99 ms, 64 conns", get["p99"]))
    prim = row(PRIMARY_64)
    if prim and prim["errors"]:
        print("  note: %d of %d GET primary failed (see %s/projects.log): calls that wait on a pool" %
              (prim["errors"], prim["requests"], LOGDIR))
        print("        whose every worker waits on them end with 504 after the invoke timeout.")
    print()
    if cold:
        print("cold start, short idle timeout (%d ms): projects pool at zero workers -> response through nginx,"
              % IDLE_TIMEOUT_MS)
        print("  %d trials (ms)" % TRIALS)
        print("  %-14s %8s %8s %8s %8s %9s %4s" % ("request", "cold p50", "cold p99", "warm p50", "warm p99",
                                                "cold/warm", "bad"))
        for label, v in cold.items():
            c50, c99, w50, w99 = pct(v["cold"], 50), pct(v["cold"], 99), pct(v["warm"], 50), pct(v["warm"], 99)
            print("  %-14s %8s %8s %8s %8s %9s %4d" % (label, fmt(c50, "%.2f"), fmt(c99, "%.2f"), fmt(w50, "%.2f"),
                                                     fmt(w99, "%.2f"), fmt(ratio(c50, w50), "%.1f"), v["bad"]))
        print("  (cold: fork from the master + the worker's first DB connection; warm: the next request to it)")
        print_breakdown([(label, v.get("worker")) for label, v in cold.items()])
        print()
    op = res.get("operator")
    if op:
        n = len(op["get project"]["ms"])
        print("cold start as an operator sees it: pools on their defaults (idle timeout %d ms), every pool idle"
              % op["idle_timeout_ms"])
        print("  past it, then one request on a new connection through nginx; %d trials%s (ms)" %
              (n, ", so p99 is the slowest" if n < 100 else ""))
        print("  %-22s %8s %8s %8s %8s %4s" % ("request", "p50", "p99", "best", "worst", "bad"))
        for label, what in (("get project", "GET {id} (projects)"), ("chat health", "health (chat)")):
            ms = op[label]["ms"]
            print("  %-22s %8s %8s %8s %8s %4d" % (what, fmt(pct(ms, 50), "%.2f"), fmt(pct(ms, 99), "%.2f"),
                                                 fmt(min(ms) if ms else None, "%.2f"),
                                                 fmt(max(ms) if ms else None, "%.2f"), op[label]["bad"]))
        print("  (waited %.0f s a trial for every pool to be idle)" % statistics.mean(op["waited_s"])
              if op["waited_s"] else "")
        print_breakdown([("get project", op.get("worker"))])
        print()
    an = res.get("anatomy")
    if an:
        print_anatomy(an)
    if idle:
        print("idle: every pool at zero workers for %.1f s (workers alive after: %d)" %
              (idle["wall"], idle["workers_after"]))
        print("  %-19s %8s %11s %10s %8s %8s" % ("process", "CPU ms", "core share", "wakeups/s", "RSS MiB", "PSS MiB"))
        tot_cpu = tot_wake = 0.0
        for r in idle["rows"]:
            print("  %-19s %8.2f %11.7f %10.2f %8.1f %8.1f" % (
                r["label"], r["cpu_ms"], r["cpu_ms"] / 1000 / idle["wall"], r["wakeups"] / idle["wall"],
                r["rss"] / 1024, r["pss"] / 1024))
            if r["label"] != "mariadbd":
                tot_cpu += r["cpu_ms"]
                tot_wake += r["wakeups"]
        print("  %-19s %8.2f %11.7f %10.2f %8.1f %8.1f" % ("pools + nginx", tot_cpu, tot_cpu / 1000 / idle["wall"],
                                                         tot_wake / idle["wall"], idle["rss_mib"], idle["pss_mib"]))
        print("  (PSS shares each library page among the processes mapping it: the sum is the real footprint)")
        print()
    mon = res.get("monitoring")
    if mon:
        print("monitoring while idle: every pool's _metrics through the internal listener every %d s for %.0f s"
              % (SCRAPE_EVERY, mon["seconds"]))
        print("  scrapes %d (failed %d); workers started: %s (watched), %s (spawns_total); alive after: %d" % (
            mon["scrapes"], mon["failed"], " ".join("%s %d" % kv for kv in mon["spawns_seen"].items()),
            " ".join("%s %d" % kv for kv in mon["spawns_counted"].items()) or "-", mon["workers_after"]))
        print("  pools' CPU (masters + workers): %.3f ms/s scraped, %s ms/s idle; nginx: %s ms/s scraped, %s idle" % (
            mon["pools_cpu_ms_per_s"], fmt(mon["idle_pools_cpu_ms_per_s"], "%.3f"),
            fmt(mon["nginx_cpu_ms_per_s"], "%.3f"), fmt(mon["idle_nginx_cpu_ms_per_s"], "%.3f")))
        print()
    if chat_out:
        print("chat (tests/bench/chat_live.py)")
        for line in chat_out.splitlines():
            print("  " + line)
        print()
    if ops and ops.get("deploy"):
        print("deploy: a changed projects binary swapped in, then rolled back, under wrk (%d connections on GET {id})"
              % CONNECTIONS)
        print("  %-10s %9s %7s %9s %9s" % ("", "requests", "failed", "seconds", "command"))
        for what, d in ops["deploy"].items():
            print("  %-10s %9s %7s %9.2f %9.2f" % (what, d["requests"], d["failed"], d["seconds"], d["done"]))
        print("  (failed: must be 0; seconds: from the command to the release's health answering from it;")
        print("   command: until it ended, a deploy's watch after the swap included)")
        print()
    if ops and ops.get("backup"):
        b = ops["backup"]
        print("backup: %d users and %d chat messages (generated with SQL in %.1f s)" %
              (b["users"], b["messages"], b["generated_s"]))
        print("  file %.1f MB (dump %.1f MB), backup %.2f s while serving, restore %.2f s onto the stopped stack"
              % (b["file_mb"], b["dump_mb"], b["backup_s"], b["restore_s"]))
        print("  restore: %.0f s per GB of dump" % (b["restore_s"] / (b["dump_mb"] / 1000)) if b["dump_mb"] else "")
        print()
    print_targets(figures(res), before)
    for note in NOTES:
        print("note: " + note)
    print("bench: figures in %s; done in %.0f s" % (res["meta"]["json"], time.time() - started))


def print_breakdown(rows):
    """cold_breakdown()'s medians, one line per request."""
    rows = [(label, b) for label, b in rows if b]
    if not rows:
        return
    print("  inside the worker, from the pool's log (medians, ms; from fork returning in the master):")
    print("  %-14s %6s %7s %6s %11s %8s %9s %8s %10s %9s" % (
        "request", "trials", "standby", "fork", "fork->read", "DB conn", "1st stmt", "request", "in worker",
        "warm req"))
    for label, b in rows:
        print("  %-14s %6d %7s %6s %11s %8s %9s %8s %10s %9s" % (
            label, b["n"], b.get("standby", "-"), fmt(b.get("fork"), "%.2f"), fmt(b["fork_to_read"], "%.2f"),
            fmt(b["connect"], "%.2f"), fmt(b["first_statement"], "%.2f"), fmt(b.get("request"), "%.2f"),
            fmt(b["in_worker"], "%.2f"), fmt(b["warm"], "%.2f")))
    print("  (standby: trials whose worker inherited the master's database session (PL_DB_STANDBY), which")
    print("   then makes no connection; fork: the master's fork(2); DB conn: the request read -> the worker's")
    print("   first MariaDB connection made; 1st stmt: then its first statement, prepared and run, and the")
    print("   answer; request: the first request's own duration; warm req: the next request to it)")


def print_anatomy(an):
    st = an.get("strace") or {}
    print("one GET {id} inside the projects pool")
    if "per_request" in st:
        top = ", ".join("%s %.2f" % kv for kv in list(st["by_name"].items())[:10])
        print("  system calls (strace -c -f on the master and its workers, %d requests through nginx): %.1f a request"
              % (st["requests"], st["per_request"]))
        print("    %s" % top)
        print("    one request in order: %s" % st.get("one_request_file"))
    elif st:
        print("  strace: skipped: %s" % st.get("skipped"))
    for label, cg in (an.get("callgrind") or {}).items():
        if not cg.get("ir_per_request"):
            print("  callgrind, %s build: skipped: %s" % (label, cg.get("skipped")))
            continue
        print("  instructions (callgrind, %s build %s): %.0f a request over %d (%d failed)" % (
            label, os.path.dirname(os.path.dirname(os.path.dirname(cg["binary"]))), cg["ir_per_request"],
            cg["requests"], cg["failed"]))
        print("    %-48s %10s %6s" % ("part (inclusive)", "Ir/req", "share"))
        for p in cg.get("parts", []):
            print("    %-48s %10s %6s" % (p["part"], fmt(p["ir_per_request"], "%.0f"),
                                         fmt(ratio(p["ir_per_request"], cg["ir_per_request"]) and
                                             100 * p["ir_per_request"] / cg["ir_per_request"], "%.0f%%")))
        print("    top 10 functions by own cost (all 20 and inclusive: %s/callgrind-%s-*.txt)" % (OUT, label))
        for t in cg.get("top_self", [])[:10]:
            print("    %10.0f  %s [%s]" % (t["ir_per_request"], t["function"][:70], t["object"]))
    print()


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


def tree_label():
    try:
        head = subprocess.run(["git", "-C", TREE, "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        head = ""
    return "%s (%s)" % (TREE, head[:70] or "not a git checkout")


def load_before():
    path = os.environ.get("PL_BENCH_BEFORE", "")
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        NOTES.append("PL_BENCH_BEFORE=%s not read: %s" % (path, e))
        return None


def write_json(res):
    data = json.dumps(figures(res), indent=1, default=str)
    paths = [res["meta"]["json"]] + ([os.environ["PL_BENCH_JSON"]] if os.environ.get("PL_BENCH_JSON") else [])
    for path in paths:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(data + "\n")
        except OSError as e:
            NOTES.append("could not write %s: %s" % (path, e))


def main():
    keep = sys.argv[1:] == ["--keep"]
    if sys.argv[1:] and not keep:
        sys.exit("usage: ./pilotlight bench [--keep]   (--keep: leave the bench stack up afterwards)")
    # stopped from outside: what was started here still goes (finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: stopped by SIGTERM"))
    started = time.time()
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    before = load_before()
    res = {"meta": {"started": started, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                    "load": load, "cpus": os.cpu_count(), "tree": TREE, "label": tree_label(),
                    "build": BUILD, "baseline_build": BASELINE_BUILD or None, "seconds": SECONDS,
                    "workers": WORKERS, "phases": sorted(ENABLED), "json": os.path.join(OUT, "bench.json")}}
    say("measuring %s" % res["meta"]["label"])
    say("stack under %s, %s (public) and %s (internal)" % (VAR, HTTP, INTERNAL))
    fresh_var()
    write_nginx_bench_conf()
    bare = Responder("pl-fcgi-bare", "bare.sock")
    keepalive = Responder("pl-http-keepalive", "http.sock")
    try:
        say("bringing the stack up (ondemand pools, idle timeout %d ms, max_children %d)" % (IDLE_TIMEOUT_MS, WORKERS))
        pilotlight("up")
        res["pw"] = pwhash_settings()  # from the binary the up just built
        if TREE != os.path.realpath(ROOT) or not os.path.exists(keepalive.binary):
            subprocess.run(["ninja", "-C", OWN_BUILD, "tests/bench/pl-fcgi-bare", "tests/bench/pl-http-keepalive"],
                           stdout=subprocess.DEVNULL, check=True)
        bare.start()
        keepalive.start()

        if "idle" in ENABLED:
            say("idle cost: %d s with every pool at zero workers" % IDLE_SECONDS)
            res["idle"] = idle_cost()

        token, login, project_id = setup_user()
        project = "/api/projects/%d" % project_id
        if "cold" in ENABLED:
            say("cold starts: %d trials x 2 requests" % TRIALS)
            res["cold"] = cold_starts(token, project_id)

        if "throughput" in ENABLED:
            say("throughput, ondemand pools: wrk %d s a run" % SECONDS)
            wrk("nginx constant", "/_bench/const")
            wrk("accounts health", "/api/accounts/health", pools=("accounts",))
            wrk("accounts GET me", "/api/accounts/me", token=token, pools=("accounts",))
            peak = PeakRss("accounts")
            wrk("accounts POST login", "/api/accounts/login", method="POST", body=login, conns=LOGIN_CONNECTIONS,
                sampler=peak, pools=("accounts",))
            res["login_peak"] = peak.peak_kib
            wrk("projects GET {id}", project, token=token, pools=("projects",))
            wrk("projects PATCH {id}", project, method="PATCH", body={"description": "patched by the bench"},
                token=token, pools=("projects",))
            wrk(PRIMARY_64, "/api/projects/primary", token=token, pools=("projects", "accounts"))

        if "references" in ENABLED or "anatomy" in ENABLED:
            say("projects pool: static, %d workers; chat stays ondemand" % WORKERS)
            restart_pool("projects", {"PL_PROJECTS_POOL_MODE": "static"})
        if "references" in ENABLED:
            if not http_upstream():
                NOTES.append("the kept-alive HTTP reference did not answer through nginx: its row is skipped")
            for _ in range(2):  # interleaved, so that drift hits every row alike
                wrk("nginx constant", "/_bench/const")
                wrk("nginx -> bare libfcgi", "/_bench/bare", upstream=bare.pid)
                wrk(HTTP_ROW, "/_bench/http", upstream=keepalive.pid)
                wrk("projects 404, static", "/api/projects/no/such/route", expect=404, pools=("projects",))
                wrk("projects health, static", "/api/projects/health", pools=("projects",))
                wrk("chat health, ondemand warm", "/api/chat/health", pools=("chat",))

        if "anatomy" in ENABLED:
            res["anatomy"] = anatomy_phase(token, project_id)

        if "operator" in ENABLED:
            res["operator"] = operator_cold(token, project_id)
        if "monitoring" in ENABLED:
            if "operator" not in ENABLED:
                restart_pools(SERVICES, drop=tuple(POOL_ENV))
            say("monitoring while idle: every pool's _metrics every %d s for %d s" % (SCRAPE_EVERY, SCRAPE_SECONDS))
            res["monitoring"] = monitoring(res.get("idle"))
        if "operator" in ENABLED or "monitoring" in ENABLED:
            say("pools back on the bench's settings")
            restart_pools(SERVICES, {"PL_PROJECTS_POOL_MODE": "static"}
                          if "references" in ENABLED or "anatomy" in ENABLED else None)

        if "chat" in ENABLED:
            res["chat_text"] = chat_live()
            res["chat"] = chat_figures(res["chat_text"])

        if "ops" in ENABLED and OLD_RUNNER:
            NOTES.append("deploy, rollback, backup and restore: not in this tree's runner (%s)" % TREE)
        elif "ops" in ENABLED:
            say("deploy and rollback of projects under load; backup and restore of a generated data set")
            res["ops"] = {"deploy": deploy_rows(token, project)}
            res["ops"]["backup"] = backup_rows()

    except (RuntimeError, subprocess.SubprocessError, OSError, KeyError, ValueError) as e:
        NOTES.append("stopped early: %s" % e)
    finally:
        bare.stop()
        keepalive.stop()
        if keep:
            NOTES.append("the bench stack stays up: %s (stop it: PL_VAR=%s %s down)" % (HTTP, VAR, PILOTLIGHT))
        else:
            say("stopping the bench stack")
            try:
                pilotlight("down")
            except RuntimeError as e:
                NOTES.append(str(e))
    res["meta"]["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    write_json(res)
    report(res, before)
    return 1 if any(n.startswith("stopped early") for n in NOTES) else 0


if __name__ == "__main__":
    sys.exit(main())
