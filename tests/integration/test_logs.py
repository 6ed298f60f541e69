"""Logs that do not fill the disk (issue 13): every log of the stack is
rotated by logrotate, and across a rotation under load no line is lost and
none is written twice (each pool reopens its file on SIGUSR1, nginx on
-s reopen); after it no process writes to a rotated file; cron's rotation
works with cron's PATH and says what went wrong in a log. `status` warns
when the disk holding the stack is nearly full."""
import hashlib
import json
import os
import pathlib
import re
import subprocess
import threading
import uuid

import requests

from conftest import BASE_URL, INTERNAL_URL, ROOT, VAR, wait_until


def pilotlight(*args, env=None, timeout=120):
    e = dict(os.environ, PL_VAR=str(VAR), **(env or {}))
    return subprocess.run([str(ROOT / "pilotlight"), *args], env=e, capture_output=True, text=True, timeout=timeout)


def ids_in(path, key, prefix):
    """The request ids starting with prefix in one JSON-lines log, as a list (repeats kept)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text(errors="replace").split("\n"):  # not splitlines(): U+2028 is no line end here
        if prefix in line:
            rid = json.loads(line).get(key, "")
            if rid.startswith(prefix):
                found.append(rid)
    return found


def test_rotation_under_load_loses_and_doubles_no_line():
    conf = (VAR / "logrotate.conf").read_text()
    assert f"{VAR}/log/*.log" in conf and "postrotate" in conf, conf
    prefix = f"rot-{uuid.uuid4().hex[:10]}-"
    total, threads, rotated = 1600, 8, []
    sent = []

    def send(k):
        s = requests.Session()
        for i in range(k, total, threads):
            rid = f"{prefix}{i}"
            r = s.get(f"{INTERNAL_URL}/api/projects/health", headers={"X-Request-Id": rid}, timeout=10)
            assert r.status_code == 200, r.text
            sent.append(rid)
            if i == total // 2 and not rotated:
                rotated.append(pilotlight("logs", "--rotate", "--force"))

    workers = [threading.Thread(target=send, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert len(sent) == total
    assert rotated and rotated[0].returncode == 0, rotated and (rotated[0].stdout + rotated[0].stderr)
    log = VAR / "log"
    for name, key in (("projects.log", "request_id"), ("nginx-access.log", "request_id")):
        new, old = ids_in(log / name, key, prefix), ids_in(log / f"{name}.1", key, prefix)
        assert old and new, f"{name}: the rotation split nothing ({len(old)} before, {len(new)} after)"
        every = old + new
        assert len(every) == total and set(every) == set(sent), \
            f"{name}: {total} requests, {len(every)} lines, {len(set(every))} distinct"


def test_status_warns_when_the_disk_is_nearly_full():
    p = pilotlight("status", env={"PL_DISK_WARN_PERCENT": "1"})
    assert p.returncode == 0, p.stdout + p.stderr  # a warning, not a failure
    assert "warning: the disk holding" in p.stdout and "MiB free" in p.stdout, p.stdout


def rotated_files_held():
    """Every process holding a log of the stack that is not its current file
    (a rotated one, or one deleted): [(pid, name, fd, target)]."""
    log = str(VAR / "log") + "/"
    held = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
            name = (proc / "comm").read_text().strip()
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(log) and not re.fullmatch(r"[^/]+\.log", target[len(log):]):
                held.append((int(proc.name), name, fd.name, target))
    return held


def test_a_rotation_by_cron_reopens_every_log_even_stdout():
    """What cron runs, as cron runs it (PATH=/usr/bin:/bin, nothing else):
    every log is rotated, and every process of the stack (supervisors,
    masters, workers, nginx, MariaDB, the mail sink) then writes to the new
    files, through stdout as well as stderr: none holds a rotated one."""
    for svc in ("accounts", "projects", "chat"):  # workers to reopen too
        requests.get(f"{INTERNAL_URL}/api/{svc}/_test/sleep?ms=1", timeout=10)
    before = {f: f.stat() for f in (VAR / "log").glob("*.log")}
    p = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", f"PL_VAR={VAR}", str(ROOT / "pilotlight"),
                        "logs", "--rotate", "--force"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "logs reopened:" in p.stdout and "nginx" in p.stdout and "MariaDB" in p.stdout, p.stdout
    for f, st in before.items():
        if st.st_size > 0:  # (logrotate leaves an empty one alone)
            assert f.with_name(f.name + ".1").stat().st_ino == st.st_ino, f"{f.name} was not rotated"
    # idle workers reopen as they wake: a request each
    for svc in ("accounts", "projects", "chat"):
        requests.get(f"{BASE_URL}/api/{svc}/health", timeout=10)
    wait_until(lambda: not rotated_files_held(), timeout=15, interval=0.2,
               message=f"every process to leave its rotated log: {rotated_files_held()}")


def test_up_installs_rotation_in_cron_with_a_path_and_a_log_and_down_removes_it():
    """The cron entry names a PATH with /usr/sbin (logrotate,
    start-stop-daemon) and sends what it says to $PL_VAR/log/cron.log, not
    /dev/null; `down` removes it."""
    cron = pathlib.Path("/etc/cron.d/pilotlight-" + hashlib.sha256(str(VAR).encode()).hexdigest()[:12])
    if not pathlib.Path("/etc/cron.d").is_dir() or not os.access("/etc/cron.d", os.W_OK):
        import pytest
        pytest.skip("no writable /etc/cron.d here")
    try:
        p = pilotlight("up", env={"PL_LOG_ROTATE_CRON": "1"})
        assert p.returncode == 0, p.stdout + p.stderr
        text = cron.read_text()
        path = re.search(r"^PATH=(\S+)$", text, re.M)
        assert path and "/usr/sbin" in path.group(1).split(":"), text
        line = next(ln for ln in text.splitlines() if ln.startswith("*/15 "))
        assert "/dev/null" not in line and f"{VAR}/log/cron.log" in line, line
        # the line as cron runs it (its user field dropped): a rotation, quiet when all is well
        command = line.split(None, 6)[6]
        p = subprocess.run(["env", "-i", f"PATH={path.group(1)}", "/bin/sh", "-c", command], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        p = pilotlight("down", timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        assert not cron.exists() and str(cron) in p.stdout, p.stdout
    finally:
        cron.unlink(missing_ok=True)
        p = pilotlight("up", timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr


def test_status_refuses_a_bad_disk_warning_setting():
    p = pilotlight("status", env={"PL_DISK_WARN_PERCENT": "abc"})
    assert p.returncode != 0 and "PL_DISK_WARN_PERCENT must be a percentage" in p.stderr, p.stdout + p.stderr
    assert "unbound variable" not in p.stderr, p.stderr
