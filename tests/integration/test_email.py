"""Verified addresses (issue 15): sign-up mails a single-use link (24 h, kept
hashed); following it verifies the address (`email_verified` in the user and
in the access token); the link can be mailed again, at most once per
PL_MAIL_INTERVAL_S per account (and the `mail` rate limit counts the route per client
address); changing the address needs the password, mails a link to the new
address (the change applies when it is followed) and a notice to the old
one. Unknown, expired and used links are each their own error. Nothing of a
user's text reaches a mail header."""
import time

from conftest import assert_error, jwt_claims, mails, sql, unique_email, wait_until
from lifecycle import client, expire_token, link_token, restart_pool, sha256, signup_login, text_of, wait_mail

VERIFY = "Verify your email address"
CONFIRM_NEW = "Confirm your new email address"


def verify(api, token):
    return api.post("/api/accounts/email/verify", {"token": token})


def allow_mail_now(user_id):
    """As if the account's last verification mail were old (PL_MAIL_INTERVAL_S is 60 s)."""
    sql(f"UPDATE users SET verify_sent_at = verify_sent_at - INTERVAL 1 DAY WHERE id = {int(user_id)}", "accounts")


def test_sign_up_mails_a_link_that_verifies_the_address_once():
    api = client()
    user = signup_login(api)
    assert user.user["email_verified"] is False
    assert jwt_claims(user.token)["email_verified"] is False
    m = wait_mail(user.email, VERIFY)
    assert m["To"].addresses[0].addr_spec == user.email
    token = link_token(m, "/verify-email")
    assert "/verify-email?token=" in m.get_body(preferencelist=("html",)).get_content()
    # only the token's hash is stored
    assert sql(f"SELECT purpose FROM one_time_tokens WHERE token_hash = '{sha256(token)}'", "accounts") == [
        ["verify_email"]]
    assert sql(f"SELECT COUNT(*) FROM one_time_tokens WHERE token_hash = '{token}'", "accounts") == [["0"]]
    r = verify(api, token)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email_verified"] is True and r.json()["user"]["id"] == user.id
    assert api.get("/api/accounts/me", token=user.token).json()["user"]["email_verified"] is True
    r = api.post("/api/accounts/refresh", {"refresh_token": user.refresh_token})
    assert jwt_claims(r.json()["access_token"])["email_verified"] is True
    # single use
    assert_error(verify(api, token), 422, "token_used")
    # the sent mail's body is not kept in the outbox (its link is a live token)
    assert sql(f"SELECT COUNT(*) FROM outbox WHERE to_addr = '{user.email}' AND sent_at IS NOT NULL "
               "AND text_body <> ''", "accounts") == [["0"]]


def test_unknown_expired_and_used_links_are_told_apart():
    api = client()
    user = signup_login(api)
    token = link_token(wait_mail(user.email, VERIFY), "/verify-email")
    for bad in ("x" * 43, "' OR '1'='1", token[:-1]):
        err = assert_error(verify(api, bad), 422, "token_unknown")
        assert err["field"] == "token"
    expire_token(token)
    assert_error(verify(api, token), 422, "token_expired")
    assert api.get("/api/accounts/me", token=user.token).json()["user"]["email_verified"] is False
    assert_error(api.post("/api/accounts/email/verify", {}), 422, "missing_field")
    assert_error(api.post("/api/accounts/email/verify", {"token": ""}), 422, "invalid_field")
    # a token of another purpose is no verification token (an MFA ticket, a reset link...)
    r = api.post("/api/accounts/password/forgot", {"email": user.email})
    assert r.status_code == 202
    reset = link_token(wait_mail(user.email, "Reset your Pilotlight password"), "/reset-password")
    assert_error(verify(api, reset), 422, "token_unknown")


def test_resend_is_limited_per_account_then_mails_a_new_link():
    api = client()
    user = signup_login(api)
    wait_mail(user.email, VERIFY)
    # the sign-up's mail was moments ago
    r = api.post("/api/accounts/email/verify/resend", token=user.token)
    assert_error(r, 429, "too_many_mails")
    assert 50 <= int(r.headers["Retry-After"]) <= 60
    allow_mail_now(user.id)
    r = api.post("/api/accounts/email/verify/resend", token=user.token)
    assert r.status_code == 202 and r.json() == {"sent_to": user.email}, r.text
    second = link_token(wait_mail(user.email, VERIFY, count=2), "/verify-email")
    first = link_token(wait_mail(user.email, VERIFY, count=1), "/verify-email")
    assert first != second
    assert_error(api.post("/api/accounts/email/verify/resend", token=user.token), 429, "too_many_mails")
    # either link works (the first is not spoiled by the second); then there is nothing to resend
    assert verify(api, first).status_code == 200
    allow_mail_now(user.id)
    assert_error(api.post("/api/accounts/email/verify/resend", token=user.token), 409, "email_already_verified")
    assert_error(api.post("/api/accounts/email/verify/resend"), 401, "missing_token")


def test_resend_is_limited_per_client_address():
    """PL_LIMIT_MAIL_* (1 r/s, burst 10): without a token, per address."""
    api = client()
    statuses = [api.post("/api/accounts/email/verify/resend").status_code for _ in range(25)]
    assert statuses.count(401) >= 10 and 429 in statuses, statuses
    r = api.post("/api/accounts/email/verify/resend")
    assert_error(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "1"


def test_changing_the_address_needs_the_password_and_the_new_addresss_link():
    api = client()
    user = signup_login(api)
    new = unique_email("moved")
    assert_error(api.post("/api/accounts/me/email", {"email": new, "current_password": "wrong password!"},
                          token=user.token), 403, "wrong_password")
    r = api.post("/api/accounts/me/email", {"email": new.upper(), "current_password": user.password},
                 token=user.token)
    assert r.status_code == 202 and r.json() == {"pending_email": new}, r.text
    # nothing changed yet; the old address is told, the new one gets the link
    assert api.get("/api/accounts/me", token=user.token).json()["user"]["email"] == user.email
    notice = wait_mail(user.email, "about to change")
    assert new in text_of(notice) and "token=" not in text_of(notice)
    token = link_token(wait_mail(new, CONFIRM_NEW), "/verify-email")
    # a second change right away: one mail a minute
    assert_error(api.post("/api/accounts/me/email", {"email": unique_email("again"),
                                                     "current_password": user.password}, token=user.token),
                 429, "too_many_mails")
    r = verify(api, token)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == new and r.json()["user"]["email_verified"] is True
    assert_error(api.post("/api/accounts/login", {"email": user.email, "password": user.password}), 401,
                 "invalid_credentials")
    assert api.post("/api/accounts/login", {"email": new, "password": user.password}).status_code == 200
    assert_error(verify(api, token), 422, "token_used")


def test_changing_the_address_refusals():
    api = client()
    user, other = signup_login(api), signup_login(api)
    body = lambda email: {"email": email, "current_password": user.password}
    assert_error(api.post("/api/accounts/me/email", body(other.email), token=user.token), 409, "email_taken")
    assert_error(api.post("/api/accounts/me/email", body(user.email.upper()), token=user.token), 422,
                 "email_unchanged")
    for bad in ("no-at-sign", "a@b@example.com", "evil@example.com\r\nBcc: x@example.com", "a b@example.com"):
        assert_error(api.post("/api/accounts/me/email", body(bad), token=user.token), 422, "invalid_field")
    assert_error(api.post("/api/accounts/me/email", {"email": unique_email()}, token=user.token), 422,
                 "missing_field")
    assert_error(api.post("/api/accounts/me/email", body(unique_email())), 401, "missing_token")
    # a link whose address another account took meanwhile
    new = unique_email("race")
    assert api.post("/api/accounts/me/email", body(new), token=user.token).status_code == 202
    token = link_token(wait_mail(new, CONFIRM_NEW), "/verify-email")
    signup_login(api, email=new)
    assert_error(verify(api, token), 409, "email_taken")
    assert api.get("/api/accounts/me", token=user.token).json()["user"]["email"] == user.email


def test_a_verification_link_for_an_address_no_longer_used_is_expired():
    api = client()
    user = signup_login(api)
    old_link = link_token(wait_mail(user.email, VERIFY), "/verify-email")
    new = unique_email("next")
    assert api.post("/api/accounts/me/email", {"email": new, "current_password": user.password},
                    token=user.token).status_code == 202
    assert verify(api, link_token(wait_mail(new, CONFIRM_NEW), "/verify-email")).status_code == 200
    assert_error(verify(api, old_link), 422, "token_expired")


def test_no_header_injection_through_names_or_addresses():
    api = client()
    evil_name = "Eve\r\nBcc: victim@example.com\r\nSubject: pwned"
    email = unique_email("inject")
    r = api.post("/api/accounts/signup", {"email": email, "password": "correct horse battery staple",
                                          "display_name": evil_name})
    assert r.status_code == 201, r.text
    m = wait_mail(email, VERIFY)
    assert m["Bcc"] is None and m["Subject"] == VERIFY
    assert [a.addr_spec for a in m["To"].addresses] == [email]
    raw = m.as_string()
    assert "victim@example.com" not in raw and "pwned" not in raw
    # addresses with CR, LF or spaces are not addresses
    for bad in (f"{email}\r\nBcc: victim@example.com", f"{email}\nX: y", f"<{email}>", f"a {email}"):
        assert_error(api.post("/api/accounts/password/forgot", {"email": bad}), 422, "invalid_field")
        assert_error(api.post("/api/accounts/signup", {"email": bad, "password": "correct horse battery staple",
                                                       "display_name": "x"}), 422, "invalid_field")
    time.sleep(0.5)
    assert not mails(to="victim@example.com")


def test_with_verification_required_an_unverified_account_cannot_log_in():
    """PL_REQUIRE_VERIFIED_EMAIL=1 (the accounts pool restarted with it, then without)."""
    api = client()
    user = signup_login(api)
    first = link_token(wait_mail(user.email, VERIFY), "/verify-email")
    restart_pool("accounts", PL_REQUIRE_VERIFIED_EMAIL="1")
    try:
        body = {"email": user.email, "password": user.password}
        assert_error(api.post("/api/accounts/login", body), 403, "email_not_verified")
        time.sleep(0.5)
        assert len([m for m in mails(to=user.email) if VERIFY in m["Subject"]]) == 1  # mailed moments ago
        allow_mail_now(user.id)
        assert_error(api.post("/api/accounts/login", body), 403, "email_not_verified")
        wait_mail(user.email, VERIFY, count=2)  # the link again
        # a wrong password says nothing about verification
        assert_error(api.post("/api/accounts/login", {**body, "password": "not the password"}), 401,
                     "invalid_credentials")
        assert verify(api, first).status_code == 200
        r = api.post("/api/accounts/login", body)
        assert r.status_code == 200, r.text
    finally:
        restart_pool("accounts")


def test_a_slow_mail_server_delays_no_request():
    """Mail is sent after the answer, and the worker sending it holds no lock
    on the outbox: a sign-up (which queues a mail) does not wait while another
    worker waits for an SMTP server that is slow to greet."""
    import os
    import socket
    import subprocess
    import threading
    from conftest import VAR
    port = int(os.environ.get("PL_MAIL_SINK_PORT", "0"))
    if not port:
        import pytest
        pytest.skip("PL_MAIL_SINK_PORT not set (run through ./pilotlight test)")
    subprocess.run(["start-stop-daemon", "--stop", "--quiet", "--pidfile", str(VAR / "run" / "mailsink.pid"),
                    "--exec", "/usr/bin/python3", "--retry", "TERM/10"], check=True)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    slow.bind(("127.0.0.1", port))
    slow.listen(16)
    held, stop = [], threading.Event()

    def serve():  # accepts and never greets
        slow.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(slow.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    api = client()
    try:
        first = signup_login(api)  # its mail's delivery now waits for the server's greeting
        wait_until(lambda: held, timeout=5, message="accounts to connect to the slow server")
        started = time.monotonic()
        r = api.post("/api/accounts/signup", {"email": unique_email("slow"), "password": "correct horse battery staple",
                                              "display_name": "Slow"})
        took = time.monotonic() - started
        assert r.status_code == 201, r.text
        assert took < 1.0, f"a sign-up waited {took:.1f} s for the mail server"
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        slow.close()
        restart_sink()
    # nothing was lost: the mail comes once the server is back
    wait_mail(first.email, VERIFY, timeout=40)


def restart_sink():
    import os
    import subprocess
    from conftest import ROOT, VAR
    p = subprocess.run([str(ROOT / "pilotlight"), "up"], env=dict(os.environ, PL_VAR=str(VAR)),
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
