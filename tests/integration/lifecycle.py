"""Helpers of the account lifecycle tests (issue 15): clients from an address
of their own (the mail and code routes are rate limited per client address, and
each test must start with a full budget), the links in the mails the sink
kept, TOTP codes computed here from the secret (RFC 6238), and the rows a
user leaves in each schema."""
import base64
import hashlib
import hmac
import itertools
import re
import struct
import time

from requests.adapters import HTTPAdapter

from conftest import BASE_URL, DEFAULT_PASSWORD, Api, User, mails, sql, unique_email, wait_until

# 127.0.2.1 .. 127.0.2.254, one a client: other suites use 127.0.0.x
_addresses = itertools.count(1)


class SourceAdapter(HTTPAdapter):
    def __init__(self, source):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def client(agent="lifecycle-test/1.0"):
    """An Api whose requests come from a fresh 127.0.2.x, with its own user agent."""
    n = next(_addresses)
    assert n < 255, "out of 127.0.2.x addresses for this run"
    api = Api(BASE_URL)
    api.source = f"127.0.2.{n}"
    api.session.mount("http://", SourceAdapter(api.source))
    api.session.headers["User-Agent"] = agent
    return api


def signup_login(api, display_name="Lifecycle", email=None, password=DEFAULT_PASSWORD):
    """A new user, signed up and logged in through api: a conftest.User."""
    email = email or unique_email("life")
    r = api.post("/api/accounts/signup", {"email": email, "password": password, "display_name": display_name})
    assert r.status_code == 201, r.text
    r = api.post("/api/accounts/login", {"email": email, "password": password})
    assert r.status_code == 200, r.text
    return User(api, email, password, r.json())


def text_of(m):
    return m.get_body(preferencelist=("plain",)).get_content()


def wait_mail(to, subject, count=1, timeout=10):
    """The count-th mail to `to` whose subject holds `subject` (waits for it)."""
    def found():
        got = [m for m in mails(to=to) if subject in m["Subject"]]
        return got if len(got) >= count else None
    return wait_until(found, timeout=timeout, message=f"mail #{count} '{subject}' to {to}")[count - 1]


def link_token(m, path):
    """The token of the link to `path` (/verify-email, /reset-password) in a mail."""
    found = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_-]+)", text_of(m))
    assert found, text_of(m)
    return found.group(1)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def expire_token(token):
    sql(f"UPDATE one_time_tokens SET expires_at = NOW(6) - INTERVAL 1 SECOND WHERE token_hash = '{sha256(token)}'",
        "accounts")


def totp(secret, t=None, step=None):
    """RFC 6238 with HMAC-SHA1, 6 digits, 30 s: the code of time t (or of a step)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = step if step is not None else int((time.time() if t is None else t) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 15
    value = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{value:06d}"


class Codes:
    """Codes of one secret, each of a later time step than the last one used
    (the service accepts a step once): now's step - 1 .. now's step + 1."""

    def __init__(self, secret):
        self.secret, self.last = secret, None

    def next(self):
        while True:
            now = int(time.time() // 30)
            step = now - 1 if self.last is None else max(self.last + 1, now - 1)
            if step <= now + 1:
                self.last = step
                return totp(self.secret, step=step)
            time.sleep(1)  # all three used: wait for the clock


def rows_of(user_id):
    """Every row that names the user, per schema.table (revocations aside: see test_deletion)."""
    uid = int(user_id)
    return {
        "accounts.users": sql(f"SELECT COUNT(*) FROM users WHERE id = {uid}", "accounts")[0][0],
        "accounts.refresh_tokens": sql(f"SELECT COUNT(*) FROM refresh_tokens WHERE user_id = {uid}", "accounts")[0][0],
        "accounts.sessions": sql(f"SELECT COUNT(*) FROM sessions WHERE user_id = {uid}", "accounts")[0][0],
        "accounts.one_time_tokens": sql(f"SELECT COUNT(*) FROM one_time_tokens WHERE user_id = {uid}",
                                        "accounts")[0][0],
        "accounts.recovery_codes": sql(f"SELECT COUNT(*) FROM recovery_codes WHERE user_id = {uid}", "accounts")[0][0],
        "projects.projects": sql(f"SELECT COUNT(*) FROM projects WHERE owner_id = {uid}", "projects")[0][0],
        "chat.messages": sql(f"SELECT COUNT(*) FROM messages WHERE author_id = {uid}", "chat")[0][0],
        "chat.live_tickets": sql(f"SELECT COUNT(*) FROM live_tickets WHERE user_id = {uid}", "chat")[0][0],
    }


def restart_pool(svc, **env):
    """Stops svc's pool and starts it again through the runner with env added
    to its environment (no env: as the stack runs it)."""
    import os
    import subprocess
    from conftest import ROOT, VAR
    subprocess.run(["start-stop-daemon", "--stop", "--quiet", "--pidfile", str(VAR / "run" / f"{svc}.supervisor.pid"),
                    "--retry", "TERM/15"], check=True)
    p = subprocess.run([str(ROOT / "pilotlight"), "up"], env=dict(os.environ, PL_VAR=str(VAR), **env),
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
