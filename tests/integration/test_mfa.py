"""Two-factor authentication with TOTP (issue 15), the codes computed here
from the secret as any authenticator app computes them (RFC 6238: HMAC-SHA1,
6 digits, 30 s). Enrolling needs the password and is confirmed by a first
code, which hands out 10 single-use recovery codes (kept hashed); a login
then answers a single-use MFA ticket, and a code or a recovery code
finishes it. No code is accepted twice; wrong codes count toward the
lockout (PL_LOCKOUT_BASE_S=2 s on the test stack); turning MFA off needs the
password and a code; an admin can reset it."""
import re
import time

from conftest import assert_error, jwt_claims, sql
from lifecycle import Codes, client, sha256, signup_login, totp, wait_mail

LOCKOUT_THRESHOLD = 5


def enrol(api, user):
    r = api.post("/api/accounts/me/mfa/enrol", {"current_password": user.password}, token=user.token)
    assert r.status_code == 200, r.text
    return r.json()


def enable(api, user):
    """MFA on for user: (Codes of its secret, its recovery codes)."""
    e = enrol(api, user)
    codes = Codes(e["secret"])
    r = api.post("/api/accounts/me/mfa/confirm", {"code": codes.next()}, token=user.token)
    assert r.status_code == 200, r.text
    return codes, r.json()["recovery_codes"]


def login(api, user, **extra):
    return api.post("/api/accounts/login", {"email": user.email, "password": user.password, **extra})


def ticket(api, user):
    r = login(api, user)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"mfa_required", "mfa_ticket", "expires_in"} and r.json()["mfa_required"] is True
    return r.json()["mfa_ticket"]


def second_step(api, mfa_ticket, **body):
    return api.post("/api/accounts/login/mfa", {"mfa_ticket": mfa_ticket, **body})


def test_enrol_gives_a_secret_any_app_reads():
    api = client()
    user = signup_login(api)
    assert_error(api.post("/api/accounts/me/mfa/enrol", {"current_password": "not the password"},
                          token=user.token), 403, "wrong_password")
    e = enrol(api, user)
    assert set(e) == {"secret", "otpauth_uri", "algorithm", "digits", "period"}
    assert re.fullmatch(r"[A-Z2-7]{32}", e["secret"]), e  # 160 bits, base32
    assert (e["algorithm"], e["digits"], e["period"]) == ("SHA1", 6, 30)
    local, domain = user.email.split("@")
    assert e["otpauth_uri"] == (f"otpauth://totp/Pilotlight:{local}%40{domain}?secret={e['secret']}"
                                "&issuer=Pilotlight&algorithm=SHA1&digits=6&period=30")
    # not on until confirmed: the password alone still logs in
    assert "access_token" in login(api, user).json()
    assert api.get("/api/accounts/me", token=user.token).json()["user"]["mfa_enabled"] is False
    # confirming needs a right code; enrolling again replaces the secret
    assert_error(api.post("/api/accounts/me/mfa/confirm", {"code": "000000" if totp(e["secret"]) != "000000"
                                                           else "111111"}, token=user.token), 403,
                 "invalid_mfa_code")
    e2 = enrol(api, user)
    assert e2["secret"] != e["secret"]
    assert_error(api.post("/api/accounts/me/mfa/confirm", {"code": totp(e["secret"])}, token=user.token), 403,
                 "invalid_mfa_code")
    r = api.post("/api/accounts/me/mfa/confirm", {"code": totp(e2["secret"])}, token=user.token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["mfa_enabled"] is True
    codes = body["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", c) for c in codes), codes
    # kept hashed, the secret never again shown
    stored = {r[0] for r in sql(f"SELECT code_hash FROM recovery_codes WHERE user_id = {user.id}", "accounts")}
    assert stored == {sha256(c.replace("-", "")) for c in codes}
    assert_error(api.post("/api/accounts/me/mfa/enrol", {"current_password": user.password}, token=user.token), 409,
                 "mfa_already_enabled")
    assert_error(api.post("/api/accounts/me/mfa/confirm", {"code": "123456"}, token=user.token), 409,
                 "mfa_already_enabled")
    assert "turned on" in wait_mail(user.email, "Two-factor authentication is on").get_body(
        preferencelist=("plain",)).get_content()


def test_confirm_without_enrolling():
    api = client()
    user = signup_login(api)
    assert_error(api.post("/api/accounts/me/mfa/confirm", {"code": "123456"}, token=user.token), 409,
                 "mfa_not_enrolled")
    for bad in ("12345", "1234567", "abcdef"):
        enrol(api, user)
        assert_error(api.post("/api/accounts/me/mfa/confirm", {"code": bad}, token=user.token), 422, "invalid_field")


def test_login_takes_a_code_as_second_step():
    api = client()
    user = signup_login(api)
    codes, _ = enable(api, user)
    t = ticket(api, user)
    r = second_step(api, t, code=codes.next())
    assert r.status_code == 200, r.text
    assert {"access_token", "refresh_token", "user"} <= set(r.json())
    token = r.json()["access_token"]
    assert api.get("/api/projects", token=token).status_code == 200
    assert jwt_claims(token)["sid"]
    # the ticket is single-use
    assert_error(second_step(api, t, code=codes.next()), 422, "token_used")
    # the cookie mode works here too
    r = second_step(api, ticket(api, user), code=codes.next(), cookie=True)
    assert r.status_code == 200 and "refresh_token" not in r.json()
    assert r.headers["Set-Cookie"].startswith("pl_refresh=")


def test_no_code_is_accepted_twice():
    api = client()
    user = signup_login(api)
    codes, _ = enable(api, user)
    code = codes.next()
    assert second_step(api, ticket(api, user), code=code).status_code == 200
    t = ticket(api, user)
    assert_error(second_step(api, t, code=code), 401, "mfa_code_used")
    # nor an older one once a newer was used
    older = totp(codes.secret, step=codes.last - 1)
    if older != code:
        assert second_step(api, t, code=older).status_code == 401
    # the ticket lives on after a wrong code (until the lockout)
    r = second_step(api, t, code=codes.next())
    assert r.status_code == 200, r.text


def test_recovery_codes_work_once_each():
    api = client()
    user = signup_login(api)
    _, recovery = enable(api, user)
    r = second_step(api, ticket(api, user), recovery_code=recovery[0].upper())
    assert r.status_code == 200, r.text
    assert_error(second_step(api, ticket(api, user), recovery_code=recovery[0]), 401, "invalid_mfa_code")
    assert second_step(api, ticket(api, user), recovery_code=recovery[1].replace("-", " ")).status_code == 200
    assert_error(second_step(api, ticket(api, user), recovery_code="aaaa-bbbb-cccc-dddd"), 401, "invalid_mfa_code")
    t = ticket(api, user)
    assert_error(second_step(api, t), 422, "mfa_code_required")
    assert_error(second_step(api, t, code="123456", recovery_code=recovery[2]), 422, "invalid_field")


def test_tickets_unknown_expired_and_of_another_kind():
    api = client()
    user = signup_login(api)
    codes, _ = enable(api, user)
    assert_error(second_step(api, "x" * 43, code=codes.next()), 422, "token_unknown")
    t = ticket(api, user)
    sql(f"UPDATE one_time_tokens SET expires_at = NOW(6) - INTERVAL 1 SECOND WHERE token_hash = '{sha256(t)}'",
        "accounts")
    assert_error(second_step(api, t, code=codes.next()), 422, "token_expired")
    # a password alone never gives tokens
    r = login(api, user)
    assert "access_token" not in r.json() and "refresh_token" not in r.json()


def test_wrong_codes_lock_the_account():
    api = client()
    user = signup_login(api)
    codes, _ = enable(api, user)
    t = ticket(api, user)
    right = totp(codes.secret)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(LOCKOUT_THRESHOLD):
        assert_error(second_step(api, t, code=wrong), 401, "invalid_mfa_code")
    # locked: even the right code is refused, and so is the password
    r = second_step(api, t, code=codes.next())
    assert_error(r, 429, "account_locked")
    assert int(r.headers["Retry-After"]) >= 1
    assert_error(login(api, user), 429, "account_locked")
    # a right password between wrong codes does not wipe them out
    assert sql(f"SELECT failed_logins >= {LOCKOUT_THRESHOLD} FROM users WHERE id = {user.id}", "accounts") == [["1"]]
    time.sleep(int(r.headers["Retry-After"]) + 0.5)
    assert second_step(api, ticket(api, user), code=codes.next()).status_code == 200
    assert sql(f"SELECT failed_logins FROM users WHERE id = {user.id}", "accounts") == [["0"]]


def test_turning_it_off_needs_the_password_and_a_code():
    api = client()
    user = signup_login(api)
    assert_error(api.post("/api/accounts/me/mfa/disable", {"current_password": user.password, "code": "123456"},
                          token=user.token), 409, "mfa_not_enabled")
    codes, recovery = enable(api, user)
    assert_error(api.post("/api/accounts/me/mfa/disable", {"current_password": user.password}, token=user.token),
                 422, "mfa_code_required")
    assert_error(api.post("/api/accounts/me/mfa/disable", {"current_password": "not it at all", "code": codes.next()},
                          token=user.token), 403, "wrong_password")
    r = api.post("/api/accounts/me/mfa/disable", {"current_password": user.password, "recovery_code": recovery[3]},
                 token=user.token)
    assert r.status_code == 200 and r.json()["user"]["mfa_enabled"] is False, r.text
    assert sql(f"SELECT mfa_secret IS NULL, (SELECT COUNT(*) FROM recovery_codes WHERE user_id = {user.id}) "
               f"FROM users WHERE id = {user.id}", "accounts") == [["1", "0"]]
    assert "access_token" in login(api, user).json()
    wait_mail(user.email, "Two-factor authentication is off")


def test_an_admin_resets_a_users_mfa(admin):
    api = client()
    user, other = signup_login(api), signup_login(api)
    enable(api, user)
    assert_error(api.delete(f"/api/accounts/users/{user.id}/mfa", token=other.token), 403, "forbidden")
    r = api.delete(f"/api/accounts/users/{user.id}/mfa", token=admin.token)
    assert r.status_code == 200 and r.json()["user"]["mfa_enabled"] is False, r.text
    assert "access_token" in login(api, user).json()
    assert "by an administrator" in wait_mail(user.email, "Two-factor authentication is off").get_body(
        preferencelist=("plain",)).get_content()
    assert_error(api.delete("/api/accounts/users/999999999/mfa", token=admin.token), 404, "not_found")
    # a ticket issued before the reset: the password was enough
    codes, _ = enable(api, user)
    t = ticket(api, user)
    assert api.delete(f"/api/accounts/users/{user.id}/mfa", token=admin.token).status_code == 200
    assert second_step(api, t, code=codes.next()).status_code == 200


def test_codes_are_limited_per_client_address():
    api = client()
    statuses = [second_step(api, "x" * 43, code="123456").status_code for _ in range(40)]
    assert statuses.count(422) >= 20 and 429 in statuses, statuses


def test_new_recovery_codes_replace_every_old_one():
    api = client()
    user = signup_login(api)
    path = "/api/accounts/me/mfa/recovery-codes"
    assert_error(api.post(path, {"current_password": user.password}, token=user.token), 409, "mfa_not_enabled")
    codes, old = enable(api, user)
    assert second_step(api, ticket(api, user), recovery_code=old[0]).status_code == 200  # one used
    hashes = lambda: sorted(r[0] for r in sql(  # noqa: E731
        f"SELECT code_hash FROM recovery_codes WHERE user_id = {user.id}", "accounts"))
    before = hashes()
    # refused: nothing changes
    assert_error(api.post(path, {"current_password": user.password}, token=user.token), 422, "mfa_code_required")
    assert_error(api.post(path, {"current_password": "not it", "code": codes.next()}, token=user.token),
                 403, "wrong_password")
    assert_error(api.post(path, {"current_password": user.password, "recovery_code": "aaaa-bbbb-cccc-dddd"},
                          token=user.token), 403, "invalid_mfa_code")
    assert hashes() == before
    # with an unused recovery code (a user whose authenticator is gone)
    r = api.post(path, {"current_password": user.password, "recovery_code": old[1]}, token=user.token)
    assert r.status_code == 200, r.text
    new = r.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old) and r.json()["user"]["id"] == user.id
    assert hashes() == sorted(sha256(c.replace("-", "")) for c in new)
    assert "old ones no longer work" in wait_mail(user.email, "New recovery codes").get_body(
        preferencelist=("plain",)).get_content()
    # the old codes are gone, the new ones log in, and so does the authenticator
    assert_error(second_step(api, ticket(api, user), recovery_code=old[2]), 401, "invalid_mfa_code")
    assert second_step(api, ticket(api, user), recovery_code=new[0]).status_code == 200
    r = api.post(path, {"current_password": user.password, "code": codes.next()}, token=user.token)
    assert r.status_code == 200 and not set(r.json()["recovery_codes"]) & set(new), r.text


def test_a_ticket_ends_with_the_password_and_with_every_session():
    # A ticket stands for a password checked: a new password (changed or
    # reset) and "log out everywhere" end the logins half done before them.
    from conftest import DEFAULT_PASSWORD
    for how in ("change", "reset", "everywhere"):
        api = client()
        user = signup_login(api)
        codes, _ = enable(api, user)
        t = ticket(api, user)
        new = f"another long passphrase ({how})"
        if how == "change":
            r = api.patch("/api/accounts/me", {"password": new, "current_password": DEFAULT_PASSWORD},
                          token=user.token)
            assert r.status_code == 200, r.text
        elif how == "reset":
            assert api.post("/api/accounts/password/forgot", {"email": user.email}).status_code == 202
            m = wait_mail(user.email, "Reset your Pilotlight password")
            token = re.search(r"/reset-password\?token=([A-Za-z0-9_-]+)", m.get_body(("plain",)).get_content())[1]
            r = api.post("/api/accounts/password/reset", {"token": token, "password": new})
            assert r.status_code == 204, r.text
        else:
            assert api.delete("/api/accounts/me/sessions", token=user.token).status_code == 204
        assert_error(second_step(api, t, code=codes.next()), 422, "token_expired")
        # a login begun afterwards works
        user.password = new if how != "everywhere" else DEFAULT_PASSWORD
        r = second_step(api, ticket(api, user), code=codes.next())
        assert r.status_code == 200, r.text
