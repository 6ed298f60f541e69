"""Logs that do not fill the disk (issue 13): every log of the stack is
rotated by logrotate, and across a rotation under load no line is lost and
none is written twice (each pool reopens its file on SIGUSR1, nginx on
-s reopen). `status` warns when the disk holding the stack is nearly full."""
import json
import os
import subprocess
import threading
import uuid

import requests

from conftest import INTERNAL_URL, ROOT, VAR


def pilotlight(*args, env=None):
    e = dict(os.environ, PL_VAR=str(VAR), **(env or {}))
    return subprocess.run([str(ROOT / "pilotlight"), *args], env=e, capture_output=True, text=True, timeout=120)


def ids_in(path, key, prefix):
    """The request ids starting with prefix in one JSON-lines log, as a list (repeats kept)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
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
