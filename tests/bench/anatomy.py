"""anatomy.py: what one request costs inside a worker, for bench.py.

  callgrind  a service binary run as a pool of its own beside the bench
             stack, under `valgrind --tool=callgrind`: the environment of the
             stack's running master (/proc/<pid>/environ) with a socket, pid
             file, log and status socket of its own, no supervisor, one
             static worker. Requests go straight to it over FastCGI
             (fcgi_client.py, with nginx's parameters); after a warm-up its
             worker's counters are zeroed (callgrind_control -z), N requests
             run, the counters are dumped (-d): instructions (Ir) per request,
             the top functions (callgrind_annotate, self and inclusive) and a
             breakdown by part of the request.
  strace     `strace -c -f` attached to a pool's master and workers while N
             requests go through nginx one after another: system calls per
             request, by name; and one request's calls in order (strace -f).

Everything started here is in a session of its own and is killed with its
process group when it does not stop in time, whatever happened meanwhile.
"""
import glob
import http.client
import os
import re
import signal
import subprocess
import time

import fcgi_client

# The parts of a request, as inclusive costs of the functions that do them
# (callgrind_annotate --inclusive=yes): the first name of a part found in the
# profile is taken. Libraries' functions (libfcgi, json-c, libmariadb,
# libsodium) keep their names whatever build they are in; libshared's are
# today's and, second, the baseline's (f0db8c0) names. What no part covers
# (the pool's loop: epoll, accept, the scoreboard; the dispatcher's other
# checks; the arena's reset) is "other".
PARTS = (
    ("FastCGI in: read the request (libfcgi)", ("FCGX_Accept_r",)),
    ("request setup: params, request id", ("sh_req_init",)),
    ("route match", ("sh_router_match",)),
    ("auth: bearer token, claims", ("sh_auth_or_reply", "sh_auth_require_or_reply")),
    ("database: one prepared SELECT", ("sh_db_query",)),
    ("JSON: build, serialize, reply", ("prj_reply_project",)),
    ("log line", ("sh_log_request",)),
    ("FastCGI out: flush, close (libfcgi)", ("FCGX_Finish_r",)),
)


def read_environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        raw = f.read()
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            env[k.decode()] = v.decode(errors="replace")
    return env


def private_env(master_env, run_dir, log_dir, name):
    """The stack master's environment, as a pool of its own: one static
    worker, no supervisor, its own socket, status socket, pid and log file."""
    env = {k: v for k, v in master_env.items()
           if k not in ("PL_LISTEN_FD", "PL_READY_FD", "PL_SUPERVISOR_PID_FILE", "PL_SWAP_STATUS_FILE",
                        "PL_SUPERVISOR_RESUME")}
    env.update({
        "PL_LISTEN": "unix:%s/%s.sock" % (run_dir, name),
        "PL_STATUS_LISTEN": "unix:%s/%s.status.sock" % (run_dir, name),
        "PL_PID_FILE": "%s/%s.pid" % (run_dir, name),
        "PL_LOG_FILE": "%s/%s.log" % (log_dir, name),
        "PL_SUPERVISE": "0",
        "PL_POOL_MODE": "static",
        "PL_MAX_CHILDREN": "1",
        "PL_MAX_REQUESTS": "0",
    })
    return env


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(rest[1]) == pid and rest[0] not in ("Z", "X"):
                out.append(int(d))
    return out


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for %s" % what)
        time.sleep(0.05)


class PrivatePool:
    """A service binary as a pool of its own (private_env), optionally under
    a wrapper (valgrind ...). stop() ends it however it is doing."""

    def __init__(self, binary, env, log_path, wrapper=()):
        self.binary, self.env, self.log_path, self.wrapper = binary, env, log_path, list(wrapper)
        self.sock = env["PL_LISTEN"][len("unix:"):]
        self.proc = None

    def start(self, timeout):
        for path in (self.sock, self.env["PL_STATUS_LISTEN"][len("unix:"):], self.env["PL_PID_FILE"]):
            if os.path.exists(path):
                os.unlink(path)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.wrapper + [self.binary], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s before serving (log: %s)" %
                                   (os.path.basename(self.binary), self.proc.returncode, self.log_path))
            kids = children_of(self.proc.pid)
            return kids[0] if os.path.exists(self.sock) and kids else None
        self.worker = wait_for(ready, timeout, "the private pool's worker")
        return self.worker

    def stop(self, timeout=60):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker, and a master that did not stop
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None


def _check(status, body):
    return status == 200 and body.startswith(b"{")


# the function a worker enters once per request (libshared's connection
# handler, in this build and in f0db8c0's): callgrind dumps its counters
# each time, so each dump file is one request's whole cycle
PER_REQUEST_FN = "sh_service_serve_connection"


def callgrind(binary, master_env, run_dir, log_dir, out_dir, label, params_fn, requests, warmup=30):
    """Ir per request of BINARY's worker over REQUESTS requests (params_fn()
    -> FastCGI params of one), after WARMUP; a dict of figures, or one with
    "skipped": why.

    callgrind_control cannot reach a forked child (vgdb serves the process
    valgrind started, here the master), so the worker's counters are dumped
    by callgrind itself each time it enters PER_REQUEST_FN: dump k+1 holds
    request k, from entering the handler to entering it for the next one
    (the reply, the log line, the pool's loop, epoll and accept). The
    measured requests' dumps are summed into one file for callgrind_annotate."""
    name = "cg-" + label
    env = private_env(master_env, run_dir, log_dir, name)
    out_base = os.path.join(out_dir, "callgrind.%s" % label)
    for old in glob.glob(out_base + ".*"):
        os.unlink(old)
    wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % out_base, "--dump-instr=no",
               "--dump-before=" + PER_REQUEST_FN,
               "--log-file=%s/%s.valgrind.log" % (log_dir, name)]
    pool = PrivatePool(binary, env, os.path.join(log_dir, name + ".log"), wrapper)
    res = {"binary": binary, "requests": requests, "warmup": warmup}
    try:
        worker = pool.start(timeout=120)
        bad = 0
        for _ in range(warmup):
            status, _, body, _ = fcgi_client.request(pool.sock, params_fn())
            bad += not _check(status, body)
        if bad == warmup:
            return dict(res, skipped="every warm-up request failed (last status %s: %s)" % (status, body[:160]))
        bad = 0
        t0 = time.monotonic()
        for _ in range(requests):
            status, _, body, _ = fcgi_client.request(pool.sock, params_fn())
            bad += not _check(status, body)
        res["seconds"] = time.monotonic() - t0
        res["failed"] = bad
        fcgi_client.request(pool.sock, params_fn())  # its entry dumps the last measured request
        parts = ["%s.%d.%d" % (out_base, worker, k) for k in range(warmup + 2, warmup + requests + 2)]
        wait_for(lambda: all(_totals(p) is not None for p in parts), 60, "callgrind's dumps")
        per = [_totals(p) for p in parts]
        res["ir"] = sum(per)
        res["ir_per_request"] = res["ir"] / requests
        res["ir_median"] = sorted(per)[len(per) // 2]
        res["ir_min"], res["ir_max"] = min(per), max(per)
        merged = "%s.%d.measured" % (out_base, worker)
        _merge(parts, merged, res["ir"])
        res["file"] = merged
        for p in glob.glob("%s.%d.*" % (out_base, worker)):
            if p != merged:
                os.unlink(p)
        res.update(_annotate(merged, out_dir, label, requests))
        return res
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        return dict(res, skipped=str(e)[:300])
    finally:
        pool.stop()


def _totals(path):
    """A finished dump's total Ir (its last line, totals:), else None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("totals:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _merge(parts, merged, total):
    """The dumps as one file: their cost lines one after another, one
    summary. Each dump file is whole by itself (its compressed names are
    defined in it before they are used), so they read in turn. The calls
    that were under way when a dump was taken (main, the pool's loop) are
    written `calls=0`, which callgrind_annotate books as the caller's own
    cost: they become `calls=1` here."""
    with open(merged, "w") as out:
        for i, p in enumerate(parts):
            with open(p) as f:
                for line in f:
                    if line.startswith(("totals:", "summary:")):
                        continue
                    if i > 0 and line.startswith(("version:", "creator:", "pid:", "cmd:", "part:", "desc:",
                                                  "positions:", "events:")):
                        continue
                    if line.startswith("calls=0 "):
                        line = "calls=1 " + line[len("calls=0 "):]
                    out.write(line)
        out.write("summary: %d\ntotals: %d\n" % (total, total))


LINE = re.compile(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(.+?)\s*$")


def _functions(text):
    """(Ir, function, object) rows of a callgrind_annotate listing."""
    rows = []
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or ":" not in m.group(2):
            continue
        where = m.group(2)
        obj = ""
        if where.endswith("]") and " [" in where:
            where, _, obj = where[:-1].rpartition(" [")
        fn = where.split(":", 1)[1]
        rows.append((int(m.group(1).replace(",", "")), fn, os.path.basename(obj)))
    return rows


def _annotate(dump, out_dir, label, requests):
    out = {}
    for kind, flag in (("self", "no"), ("inclusive", "yes")):
        p = subprocess.run(["callgrind_annotate", "--inclusive=" + flag, "--threshold=100", dump],
                           capture_output=True, text=True, timeout=120)
        with open(os.path.join(out_dir, "callgrind-%s-%s.txt" % (label, kind)), "w") as f:
            f.write(p.stdout)
        rows = _functions(p.stdout)
        out["top_" + kind] = [{"ir_per_request": ir / requests, "function": fn, "object": obj}
                              for ir, fn, obj in rows[:20]]
        if kind == "inclusive":
            by_name = {}
            for ir, fn, _ in rows:
                by_name.setdefault(fn, ir)
            parts = []
            for part, names in PARTS:
                found = next((n for n in names if n in by_name), None)
                parts.append({"part": part, "function": found,
                              "ir_per_request": by_name[found] / requests if found else None})
            covered = sum(p["ir_per_request"] or 0 for p in parts)
            total = _totals(dump)
            parts.append({"part": "other: pool loop, epoll, accept, checks, scoreboard", "function": None,
                          "ir_per_request": total / requests - covered if total else None})
            out["parts"] = parts
    return out


def strace_requests(pids, send, requests, out_dir, label):
    """System calls of PIDS (a pool's master and workers, followed into new
    workers) while send() runs REQUESTS requests: per request in all and by
    name, and the calls of one request in order. A dict, or {"skipped": why}."""
    res = {"requests": requests}
    summary = os.path.join(out_dir, "strace-%s-summary.txt" % label)
    one = os.path.join(out_dir, "strace-%s-one-request.txt" % label)
    try:
        res["failed"] = _strace_run(["-c", "-f", "-U", "name,calls,errors", "-o", summary], pids,
                                    lambda: send(requests))
        by_name = {}
        total = 0
        with open(summary) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit() and not line.startswith("-"):
                    if parts[0] == "total":
                        total = int(parts[1])
                    else:
                        by_name[parts[0]] = int(parts[1])
        res["calls"] = total
        res["per_request"] = total / requests
        res["by_name"] = {k: v / requests for k, v in sorted(by_name.items(), key=lambda kv: -kv[1])}
        send(3)  # warm again, then one request traced call by call
        _strace_run(["-f", "-o", one], pids, lambda: send(1))
        res["one_request_file"] = one
        return res
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        return dict(res, skipped=str(e)[:300])


def _strace_run(args, pids, action):
    """strace ARGS attached to PIDS while action() runs: action's result
    (RuntimeError when strace does not attach)."""
    cmd = ["strace", "-qq"] + args
    for pid in pids:
        cmd += ["-p", str(pid)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        # attached: each pid's status shows strace as its tracer
        def attached():
            if proc.poll() is not None:
                raise RuntimeError("strace exited: %s" % proc.stderr.read().decode(errors="replace")[-200:])
            return all(_tracer(pid) == proc.pid for pid in pids)
        wait_for(attached, 10, "strace to attach")
        result = action()
        time.sleep(0.2)  # the last close reaches the trace
        return result
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # detaches and writes its summary
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _tracer(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class KeepAliveClient:
    """Sequential requests through nginx on one kept-alive HTTP connection
    (so nginx, not connection setup, is what the pool sees per request)."""

    def __init__(self, port, path, token):
        self.port, self.path, self.token = port, path, token

    def __call__(self, n):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        bad = 0
        try:
            for _ in range(n):
                conn.request("GET", self.path, headers={"Authorization": "Bearer " + self.token})
                r = conn.getresponse()
                r.read()
                bad += r.status != 200
        finally:
            conn.close()
        return bad
