"""Mail (issue 15): accounts writes a mail to its outbox in the same
transaction as the change that causes it and sends it over SMTP after the
commit; an SMTP server that is down delays mail, never loses it and never
fails the request, and the retry comes with no request at all (the pool
wakes a worker for it), while an empty outbox wakes nothing. The stack's
mail sink (scripts/mailsink.py) keeps each message as a file."""
import os
import subprocess
import time
import uuid
from datetime import datetime, timezone

from conftest import INTERNAL_URL, ROOT, VAR, log_lines, mails, wait_until

import requests


def queue(to, tag):
    return requests.post(f"{INTERNAL_URL}/api/accounts/_test/mail", json={"to": to, "tag": tag}, timeout=10)


def sink(action):
    """Stops the mail sink, or starts it again (through the runner)."""
    if action == "stop":
        subprocess.run(["start-stop-daemon", "--stop", "--quiet", "--pidfile", str(VAR / "run" / "mailsink.pid"),
                        "--exec", "/usr/bin/python3", "--retry", "TERM/10"], check=True)
    else:
        p = subprocess.run([str(ROOT / "pilotlight"), "up"], env=dict(os.environ, PL_VAR=str(VAR)),
                           capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, p.stdout + p.stderr


def test_a_mail_is_sent_after_the_commit_whole_and_once():
    to, tag = f"mail-{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
    r = queue(to, tag)
    assert r.status_code == 202, r.text
    got = wait_until(lambda: mails(to=to, tag=tag), timeout=10, message="the mail in the sink")
    assert len(got) == 1
    m = got[0]
    assert m["Subject"] == "Pilotlight test mail" and m["Message-ID"] and m["Date"]
    assert m.get_content_type() == "multipart/alternative"
    assert {p.get_content_type() for p in m.iter_parts()} == {"text/plain", "text/html"}
    assert tag in m.get_body(preferencelist=("html",)).get_content()
    time.sleep(1)
    assert len(mails(to=to, tag=tag)) == 1  # and only once


def test_an_smtp_server_that_is_down_delays_mail_and_loses_none():
    to, tag = f"down-{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
    sink("stop")
    try:
        r = queue(to, tag)
        assert r.status_code == 202, r.text  # the request does not fail
        wait_until(lambda: any(ln.get("event") == "mail_deferred" for ln in log_lines("accounts")), timeout=10,
                   message="the failed attempt in the log")
        assert not mails(to=to, tag=tag)
    finally:
        sink("start")
    # no request reaches accounts from here on: the pool wakes a worker itself
    got = wait_until(lambda: mails(to=to, tag=tag), timeout=30, message="the mail once the server is back")
    assert len(got) == 1
    time.sleep(2)
    assert len(mails(to=to, tag=tag)) == 1


def test_an_empty_outbox_wakes_nothing():
    """With nothing to send and no request, the accounts pool stays at zero
    workers: no spawn in its log over a few idle timeouts."""
    to, tag = f"idle-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
    assert queue(to, tag).status_code == 202
    wait_until(lambda: mails(to=to, tag=tag), timeout=10, message="the mail in the sink")
    time.sleep(3.0)  # past PL_IDLE_TIMEOUT_MS (1.5 s on the test stack): its workers are gone
    since = time.time()
    time.sleep(4.0)
    spawns = [ln for ln in log_lines("accounts") if ln.get("event") == "worker_spawn" and logged_at(ln) >= since]
    assert not spawns, spawns


def logged_at(line):
    return datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def test_the_runner_prints_the_mail_it_kept():
    to, tag = f"show-{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
    assert queue(to, tag).status_code == 202
    wait_until(lambda: mails(to=to, tag=tag), timeout=10, message="the mail in the sink")
    p = subprocess.run([str(ROOT / "pilotlight"), "mail", "--last"], env=dict(os.environ, PL_VAR=str(VAR)),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "Subject: Pilotlight test mail" in p.stdout and to in p.stdout, p.stdout
