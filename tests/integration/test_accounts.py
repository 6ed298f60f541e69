"""The accounts service (issue 3) through nginx: sign-up, login and lockout,
refresh rotation and reuse detection, logout, the refresh cookie, me, the
admin's users, roles and the last admin, and input that must be stored
verbatim. Every refusal is checked against the database (it changed
nothing). Access tokens themselves (JWKS, malformed tokens) are in
test_tokens.py.

The test stack hashes passwords cheaply and locks accounts for
PL_LOCKOUT_BASE_S=2 s, doubling up to PL_LOCKOUT_MAX_S=8 s."""
import concurrent.futures
import http.client
import json
import os
import subprocess
import time
import uuid
from urllib.parse import quote

import pytest

from conftest import BASE_URL, DEFAULT_PASSWORD, ROOT, Api, assert_error, jwt_claims, sql, unique_email

USER_KEYS = {"id", "email", "display_name", "role", "disabled", "primary_project_id", "created_at", "updated_at",
             "email_verified", "mfa_enabled"}
LOCKOUT_THRESHOLD = 5
LOCKOUT_BASE_S = int(os.environ.get("PL_LOCKOUT_BASE_S", "2"))
LOCKOUT_MAX_S = int(os.environ.get("PL_LOCKOUT_MAX_S", "8"))
ACCESS_TTL_S = 900
REFRESH_TTL_S = 2592000


# --- what the database holds ----------------------------------------------------------


def q(text):
    """A string literal for sql() (our own test values only)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def row(user_id):
    """users row: email, display_name, role, disabled, failed_logins, locked, hash, updated_at."""
    rows = sql("SELECT email, HEX(display_name), role, disabled, failed_logins, locked_until IS NOT NULL, "
               f"password_hash, updated_at FROM users WHERE id = {int(user_id)}", "accounts")
    if not rows:
        return None
    r = rows[0]
    return {"email": r[0], "display_name": bytes.fromhex(r[1]).decode(), "role": r[2], "disabled": r[3] == "1",
            "failed_logins": int(r[4]), "locked": r[5] == "1", "hash": r[6], "updated_at": r[7]}


def count_email(email):
    return int(sql(f"SELECT COUNT(*) FROM users WHERE email = {q(email.lower())}", "accounts")[0][0])


def user_count():
    return int(sql("SELECT COUNT(*) FROM users", "accounts")[0][0])


def tokens(user_id):
    """The user's refresh tokens, oldest first: (family, spent, revoked)."""
    return [(r[0], r[1] == "1", r[2] == "1") for r in sql(
        "SELECT family_id, spent_at IS NOT NULL, revoked_at IS NOT NULL FROM refresh_tokens "
        f"WHERE user_id = {int(user_id)} ORDER BY id", "accounts")]


def signup(api, email=None, password=DEFAULT_PASSWORD, display_name="Someone"):
    return api.post("/api/accounts/signup", {"email": email or unique_email(), "password": password,
                                             "display_name": display_name})


def login(api, email, password=DEFAULT_PASSWORD, **extra):
    return api.post("/api/accounts/login", {"email": email, "password": password, **extra})


THIEF = {"User-Agent": "someone-else/1.0"}


def refresh(api, token, thief=False):
    """A refresh; thief=True: from another client (its user agent)."""
    return api.post("/api/accounts/refresh", {"refresh_token": token}, headers=THIEF if thief else None)


# --- sign-up -----------------------------------------------------------------------------


def test_signup_creates_a_user(api):
    email = unique_email("Signup").replace("signup", "SignUp")
    r = signup(api, email, display_name="Ada Lovelace")
    assert r.status_code == 201, r.text
    u = r.json()["user"]
    assert set(r.json()) == {"user"} and set(u) == USER_KEYS
    assert u["email"] == email.lower()
    assert (u["display_name"], u["role"], u["disabled"]) == ("Ada Lovelace", "user", False)
    assert u["primary_project_id"] is None
    assert r.headers["Location"] == f"/api/accounts/users/{u['id']}"
    assert u["created_at"].endswith("Z") and u["created_at"] == u["updated_at"]
    stored = row(u["id"])
    assert stored["email"] == email.lower() and stored["role"] == "user" and not stored["disabled"]
    assert stored["hash"].startswith("$argon2id$") and DEFAULT_PASSWORD not in stored["hash"]
    assert "password" not in r.text and "hash" not in r.text


def test_signup_duplicate_email_is_409_in_any_case(api):
    email = unique_email("dup")
    first = signup(api, email, display_name="First")
    assert first.status_code == 201
    for again in (email, email.upper(), email.capitalize()):
        r = signup(api, again, password="another password", display_name="Second")
        err = assert_error(r, 409, "email_taken")
        assert err["field"] == "email"
    assert count_email(email) == 1
    assert row(first.json()["user"]["id"])["display_name"] == "First"
    assert login(api, email).status_code == 200  # the first password still holds


@pytest.mark.parametrize("password", ["short", "123456789", "p" * 129, "\u00e9" * 65, "EMAIL", "email-upper"],
                         ids=["5 bytes", "9 bytes", "129 bytes", "130 bytes in 65 chars", "the email",
                              "the email upper-cased"])
def test_signup_weak_password_is_422(api, password):
    email = unique_email("weak")
    password = {"EMAIL": email, "email-upper": email.upper()}.get(password, password)
    before = user_count()
    err = assert_error(signup(api, email, password), 422, "weak_password")
    assert err["field"] == "password"
    assert count_email(email) == 0 and user_count() == before


@pytest.mark.parametrize("password", ["p" * 10, "p" * 128, "\u00e9" * 5, "\U0001F510" * 32, "  spaces  "])
def test_signup_password_length_is_counted_in_bytes(api, password):
    email = unique_email("pwlen")
    assert signup(api, email, password).status_code == 201
    assert login(api, email, password).status_code == 200


BAD_EMAILS = [
    "plainaddress", "@example.com", "user@", "user@example", "user@@example.com", "us er@example.com",
    "\u00fcser@example.com", "user@ex\u00e4mple.com", ".user@example.com", "user.@example.com", "us..er@example.com",
    "user@-example.com", "user@example-.com", "user@example..com", "user@exa_mple.com", "user@.example.com",
    "user@example.com.", "a" * 65 + "@example.com", "user@" + "a" * 64 + ".com",
    "user@" + ".".join(["a" * 60] * 4) + ".example.com", "user@example.com\n", " user@example.com",
    "user\0@example.com",
    "user@example.com,other@example.com", "<user@example.com>", "x",
]


@pytest.mark.parametrize("email", BAD_EMAILS, ids=range(len(BAD_EMAILS)))
def test_signup_invalid_email_is_422(api, email):
    before = user_count()
    r = signup(api, email)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_field" and err["field"] == "email", err
    assert user_count() == before


@pytest.mark.parametrize("body,code,field", [
    ({"password": DEFAULT_PASSWORD, "display_name": "x"}, "missing_field", "email"),
    ({"email": "EMAIL", "display_name": "x"}, "missing_field", "password"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD}, "missing_field", "display_name"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "display_name": ""}, "invalid_field", "display_name"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "display_name": "n" * 101}, "invalid_field", "display_name"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "display_name": None}, "invalid_field", "display_name"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "display_name": 7}, "invalid_field", "display_name"),
    ({"email": ["EMAIL"], "password": DEFAULT_PASSWORD, "display_name": "x"}, "invalid_field", "email"),
    ({"email": "EMAIL", "password": 1234567890123, "display_name": "x"}, "invalid_field", "password"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "display_name": "x", "role": "admin"}, "unknown_field", "role"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "display_name": "x", "disabled": False}, "unknown_field",
     "disabled"),
    ({"email": "EMAIL", "password": DEFAULT_PASSWORD, "display_name": "x", "id": 1}, "unknown_field", "id"),
])
def test_signup_bad_fields_are_422_and_create_nothing(api, body, code, field):
    email = unique_email("fields")
    body = {k: ([email] if v == ["EMAIL"] else email if v == "EMAIL" else v) for k, v in body.items()}
    before = user_count()
    err = assert_error(api.post("/api/accounts/signup", body), 422, code)
    assert err["field"] == field
    assert count_email(email) == 0 and user_count() == before


def test_signup_cannot_make_an_admin(api):
    """The role field is refused outright, not ignored."""
    email = unique_email("escalate")
    r = api.post("/api/accounts/signup", {"email": email, "password": DEFAULT_PASSWORD, "display_name": "x",
                                          "role": "admin"})
    assert_error(r, 422, "unknown_field")
    assert count_email(email) == 0


# --- login ---------------------------------------------------------------------------------


def test_login_returns_tokens_and_the_user(api, make_user):
    user = make_user(display_name="Logger")
    r = login(api, user.email.upper())  # email is case-insensitive
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in", "user"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == ACCESS_TTL_S
    assert body["refresh_expires_in"] == REFRESH_TTL_S
    assert body["user"] == user.user
    assert "Set-Cookie" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"
    claims = jwt_claims(body["access_token"])
    assert claims["sub"] == str(user.id) and claims["email"] == user.email and claims["role"] == "user"
    assert api.get("/api/accounts/me", token=body["access_token"]).json()["user"]["id"] == user.id
    # a refresh token is random, long, and stored only as its hash
    assert len(body["refresh_token"]) >= 40
    assert not sql(f"SELECT id FROM refresh_tokens WHERE token_hash = {q(body['refresh_token'])}", "accounts")


def test_first_logins_of_many_users_at_once_all_succeed(api):
    """Fresh users have no refresh tokens yet, so their rows go in the same gap
    of the refresh_tokens user index: logins at once must not deadlock there
    (found by the soak: 500s from InnoDB deadlocks, errno 1213)."""
    emails = [unique_email("rush") for _ in range(24)]
    for email in emails:
        assert api.post("/api/accounts/signup", {"email": email, "password": DEFAULT_PASSWORD,
                                                 "display_name": "Rush"}).status_code == 201

    def login(email):
        return Api(BASE_URL).post("/api/accounts/login", {"email": email, "password": DEFAULT_PASSWORD}).status_code

    with concurrent.futures.ThreadPoolExecutor(len(emails)) as pool:
        statuses = list(pool.map(login, emails))
    assert statuses == [200] * len(emails)
    for email in emails:
        assert sql("SELECT COUNT(*) FROM refresh_tokens rt JOIN users u ON u.id = rt.user_id "
                   f"WHERE u.email = '{email}'", "accounts") == [["1"]]


def test_login_failures_look_the_same(api, make_user):
    """Unknown email, wrong password, malformed email: one answer, so a
    client cannot tell which accounts exist."""
    user = make_user()
    answers = [login(api, unique_email("nobody")), login(api, user.email, "wrong password!"),
               login(api, "not an email"), login(api, user.email, DEFAULT_PASSWORD.upper())]
    for r in answers:
        assert_error(r, 401, "invalid_credentials")
    assert len({r.text for r in answers}) == 1
    assert len({tuple(sorted((k, v) for k, v in r.headers.items() if k not in ("Date", "X-Request-Id", "RateLimit")))
                for r in answers}) == 1
    assert len(tokens(user.id)) == 1  # make_user's login; a failure issues nothing


@pytest.mark.parametrize("body,code", [
    ({"email": "a@example.com"}, "missing_field"), ({"password": DEFAULT_PASSWORD}, "missing_field"),
    ({"email": "a@example.com", "password": ""}, "invalid_field"),
    ({"email": "a@example.com", "password": DEFAULT_PASSWORD, "cookie": "yes"}, "invalid_field"),
    ({"email": "a@example.com", "password": DEFAULT_PASSWORD, "remember": True}, "unknown_field"),
])
def test_login_bad_fields_are_422(api, body, code):
    assert_error(api.post("/api/accounts/login", body), 422, code)


# --- lockout ---------------------------------------------------------------------------------


def fail_logins(api, user, n):
    for _ in range(n):
        assert_error(login(api, user.email, "wrong password!"), 401, "invalid_credentials")


def locked_answer(r):
    assert_error(r, 429, "account_locked")
    wait = int(r.headers["Retry-After"])
    return wait


def test_lockout_after_five_failures_then_unlock_and_reset(api, make_user):
    user, other = make_user(), make_user()
    fail_logins(api, user, LOCKOUT_THRESHOLD - 1)
    assert row(user.id)["failed_logins"] == LOCKOUT_THRESHOLD - 1 and not row(user.id)["locked"]
    fail_logins(api, user, 1)  # the fifth locks
    assert row(user.id)["locked"]
    wait = locked_answer(login(api, user.email))  # even the right password
    assert 1 <= wait <= LOCKOUT_BASE_S
    assert locked_answer(login(api, user.email, "wrong password!")) <= LOCKOUT_BASE_S
    assert row(user.id)["failed_logins"] == LOCKOUT_THRESHOLD  # attempts while locked are not counted
    assert login(api, other.email).status_code == 200  # only that account is locked
    assert refresh(api, user.refresh_token).status_code == 200  # sessions already open go on
    # Retry-After is honest: after it, the account opens again
    time.sleep(wait)
    # the next failure locks it again at once, for twice as long
    fail_logins(api, user, 1)
    wait2 = locked_answer(login(api, user.email))
    assert LOCKOUT_BASE_S < wait2 <= 2 * LOCKOUT_BASE_S
    time.sleep(wait2)
    r = login(api, user.email)
    assert r.status_code == 200, r.text
    # a success resets the count: four failures are allowed again
    assert row(user.id)["failed_logins"] == 0 and not row(user.id)["locked"]
    fail_logins(api, user, LOCKOUT_THRESHOLD - 1)
    assert login(api, user.email).status_code == 200


def test_logins_are_rate_limited_per_address(api, make_user):
    """PL_LIMIT_LOGIN_*: a flood of logins from 127.0.0.3 runs out of its
    address's allowance (the flood's bodies are invalid, so it costs no
    password hash); 127.0.0.1 logs in all the while. The answer says when to
    come back, and its RateLimit fields count down to it."""
    from urllib.parse import urlsplit
    url = urlsplit(BASE_URL)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10, source_address=("127.0.0.3", 0))
    seen = []
    try:
        for _ in range(2000):
            conn.request("POST", "/api/accounts/login", body=b"{}", headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            body = json.loads(r.read())
            seen.append((r.status, r.getheader("RateLimit-Policy"), r.getheader("RateLimit"), r.getheader("Retry-After"),
                         body))
            if r.status == 429:
                break
            assert r.status == 422, body
    finally:
        conn.close()
    status, policy, remaining, retry, body = seen[-1]
    assert status == 429 and body["error"]["code"] == "rate_limited", seen[-1]
    assert policy.startswith('"login";q=') and remaining.startswith('"login";r=0;') and int(retry) >= 1
    assert all(p == policy for _, p, *_ in seen)
    burst = int(policy.split(";q=")[1].split(";")[0])
    left = [int(r.split(";r=")[1].split(";")[0]) for _, _, r, *_ in seen]
    assert len(seen) > burst // 2 and all(0 <= n < burst for n in left), (burst, left[:5], left[-5:])
    user = make_user()
    assert login(api, user.email).status_code == 200


def test_lockout_wait_is_capped(api, make_user):
    user = make_user()
    sql(f"UPDATE users SET failed_logins = 40 WHERE id = {user.id}", "accounts")
    fail_logins(api, user, 1)
    wait = locked_answer(login(api, user.email))
    assert LOCKOUT_MAX_S - 1 <= wait <= LOCKOUT_MAX_S
    assert row(user.id)["failed_logins"] == 41


def test_lockout_of_an_unknown_email_reveals_nothing(api):
    email = unique_email("ghost")
    for _ in range(LOCKOUT_THRESHOLD + 2):
        assert_error(login(api, email), 401, "invalid_credentials")
    assert count_email(email) == 0


# --- refresh, reuse, logout --------------------------------------------------------------------


def test_refresh_rotates_the_pair(api, make_user):
    user = make_user()
    r1 = user.refresh_token
    r = refresh(api, r1)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in", "user"}
    assert body["refresh_token"] != r1 and body["access_token"] != user.token
    assert jwt_claims(body["access_token"])["jti"] != jwt_claims(user.token)["jti"]
    assert body["user"]["id"] == user.id
    (fam, spent1, revoked1), (fam2, spent2, revoked2) = tokens(user.id)
    assert fam == fam2 and (spent1, revoked1) == (True, False) and (spent2, revoked2) == (False, False)
    r3 = refresh(api, body["refresh_token"])
    assert r3.status_code == 200
    assert api.get("/api/accounts/me", token=r3.json()["access_token"]).status_code == 200


def test_refresh_token_reuse_revokes_the_whole_family(api, make_user):
    user = make_user()
    other_session = login(api, user.email).json()["refresh_token"]
    r1 = user.refresh_token
    r2 = refresh(api, r1).json()["refresh_token"]
    r3 = refresh(api, r2).json()["refresh_token"]
    # r1 is presented again, by another client: someone holds a copy (the
    # same client within PL_REFRESH_GRACE_S is two tabs: test_sessions.py)
    assert_error(refresh(api, r1, thief=True), 401, "refresh_token_reused")
    fam = tokens(user.id)[0][0]
    assert all(revoked for f, _, revoked in tokens(user.id) if f == fam)
    # so the newest token of that family is dead too, and so is the reused one
    assert_error(refresh(api, r3), 401, "invalid_refresh_token")
    assert_error(refresh(api, r2), 401, "invalid_refresh_token")
    assert_error(refresh(api, r1), 401, "invalid_refresh_token")
    # another session (another family) is untouched
    r = refresh(api, other_session)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("body,status,code", [
    ({"refresh_token": "x" * 43}, 401, "invalid_refresh_token"),
    ({"refresh_token": "' OR '1'='1"}, 401, "invalid_refresh_token"),
    ({}, 401, "invalid_refresh_token"),
    ({"refresh_token": ""}, 422, "invalid_field"),
    ({"refresh_token": "x" * 201}, 422, "invalid_field"),
    ({"refresh_token": 12345}, 422, "invalid_field"),
    ({"refresh_token": None}, 422, "invalid_field"),
    ({"token": "x"}, 422, "unknown_field"),
])
def test_refresh_with_a_bad_token(api, body, status, code):
    assert_error(api.post("/api/accounts/refresh", body), status, code)


def test_logout_ends_the_session(api, make_user):
    user = make_user()
    second = login(api, user.email).json()["refresh_token"]
    r = api.post("/api/accounts/logout", {"refresh_token": user.refresh_token})
    assert r.status_code == 204 and r.content == b""
    assert r.headers.get("X-Request-Id")
    assert_error(refresh(api, user.refresh_token), 401, "invalid_refresh_token")
    # logging out again, or with a token nobody knows, is fine
    assert api.post("/api/accounts/logout", {"refresh_token": user.refresh_token}).status_code == 204
    assert api.post("/api/accounts/logout", {"refresh_token": "unknown"}).status_code == 204
    # the other session goes on
    assert refresh(api, second).status_code == 200


def test_logout_after_rotation_ends_the_family(api, make_user):
    user = make_user()
    newer = refresh(api, user.refresh_token).json()["refresh_token"]
    assert api.post("/api/accounts/logout", {"refresh_token": newer}).status_code == 204
    assert_error(refresh(api, newer), 401, "invalid_refresh_token")
    assert all(revoked for _, _, revoked in tokens(user.id))


# --- the refresh cookie --------------------------------------------------------------------------


def cookie_of(r):
    """The pl_refresh Set-Cookie of a response: (value, attributes lower-cased)."""
    header = r.headers.get("Set-Cookie")
    assert header and header.startswith("pl_refresh="), r.headers
    parts = [p.strip() for p in header.split(";")]
    value = parts[0].split("=", 1)[1]
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = v
    return value, attrs


def assert_cookie_cleared(r):
    value, attrs = cookie_of(r)
    assert value == "" and attrs["max-age"] == "0" and attrs["path"] == "/api/accounts/"


def test_cookie_mode(api, make_user):
    user = make_user()
    r = login(api, user.email, cookie=True)
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json() and r.json()["access_token"]
    c1, attrs = cookie_of(r)
    assert len(c1) >= 40
    assert attrs == {"path": "/api/accounts/", "max-age": str(REFRESH_TTL_S), "httponly": "", "samesite": "Strict"}
    # refresh from the cookie alone: no body at all, as a browser's fetch sends it
    r = api.request("POST", "/api/accounts/refresh", headers={"Cookie": f"pl_refresh={c1}"})
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()
    c2, _ = cookie_of(r)
    assert c2 != c1
    # and with an empty JSON body
    r = api.post("/api/accounts/refresh", {}, headers={"Cookie": f"other=1; pl_refresh={c2}; more=2"})
    assert r.status_code == 200, r.text
    c3, _ = cookie_of(r)
    # reuse detection works on cookies too (another client: a copy), and clears the cookie
    r = api.request("POST", "/api/accounts/refresh", headers={"Cookie": f"pl_refresh={c1}", **THIEF})
    assert_error(r, 401, "refresh_token_reused")
    assert_cookie_cleared(r)
    assert_error(api.post("/api/accounts/refresh", {}, headers={"Cookie": f"pl_refresh={c3}"}), 401,
                 "invalid_refresh_token")
    # logout from the cookie alone
    c4, _ = cookie_of(login(api, user.email, cookie=True))
    r = api.request("POST", "/api/accounts/logout", headers={"Cookie": f"pl_refresh={c4}"})
    assert r.status_code == 204
    assert_cookie_cleared(r)
    assert_error(api.post("/api/accounts/refresh", {}, headers={"Cookie": f"pl_refresh={c4}"}), 401,
                 "invalid_refresh_token")


def test_cookie_mode_on_refresh_of_a_body_token(api, make_user):
    """A session started with a body token can move to the cookie."""
    user = make_user()
    r = api.post("/api/accounts/refresh", {"refresh_token": user.refresh_token, "cookie": True})
    assert r.status_code == 200
    assert "refresh_token" not in r.json()
    c, _ = cookie_of(r)
    assert api.post("/api/accounts/refresh", {}, headers={"Cookie": f"pl_refresh={c}"}).status_code == 200


# --- me ------------------------------------------------------------------------------------------


def test_me(api, make_user):
    user = make_user(display_name="Me Myself")
    r = api.get("/api/accounts/me", token=user.token)
    assert r.status_code == 200
    assert r.json() == {"user": user.user}
    assert set(r.json()["user"]) == USER_KEYS
    r = api.get("/api/accounts/me")
    assert_error(r, 401, "missing_token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_patch_me_display_name(api, make_user):
    user = make_user(display_name="Old Name")
    r = api.patch("/api/accounts/me", {"display_name": "New Name"}, token=user.token)
    assert r.status_code == 200, r.text
    u = r.json()["user"]
    assert u["display_name"] == "New Name" and u["updated_at"] > user.user["updated_at"]
    assert u["email"] == user.email and u["created_at"] == user.user["created_at"]
    assert row(user.id)["display_name"] == "New Name"
    assert api.get("/api/accounts/me", token=user.token).json()["user"] == u
    # the next token carries the new name
    assert jwt_claims(user.token)["name"] == "Old Name"
    assert jwt_claims(refresh(api, user.refresh_token).json()["access_token"])["name"] == "New Name"


@pytest.mark.parametrize("body,status,code,field", [
    ({"display_name": ""}, 422, "invalid_field", "display_name"),
    ({"display_name": "n" * 101}, 422, "invalid_field", "display_name"),
    ({"display_name": None}, 422, "invalid_field", "display_name"),
    ({"role": "admin"}, 422, "unknown_field", "role"),
    ({"email": "new@example.com"}, 422, "unknown_field", "email"),
    ({"disabled": False}, 422, "unknown_field", "disabled"),
    ({"primary_project_id": "abc"}, 422, "invalid_field", "primary_project_id"),
    ({"primary_project_id": 0}, 422, "invalid_field", "primary_project_id"),
    ({"primary_project_id": -1}, 422, "invalid_field", "primary_project_id"),
    ({"primary_project_id": 1.5}, 422, "invalid_field", "primary_project_id"),
    ({"primary_project_id": 2 ** 64}, 422, "invalid_field", "primary_project_id"),
    ({"password": "a new password"}, 422, "missing_field", "current_password"),
    ({"current_password": DEFAULT_PASSWORD}, 422, "missing_field", "password"),
    ({"password": "short", "current_password": DEFAULT_PASSWORD}, 422, "weak_password", "password"),
    ({"password": "a new password", "current_password": "wrong password"}, 403, "wrong_password", "current_password"),
    ({"display_name": "Changed", "password": "a new password", "current_password": "wrong password"}, 403,
     "wrong_password", "current_password"),
])
def test_patch_me_refusals_change_nothing(api, make_user, body, status, code, field):
    user = make_user(display_name="Unchanged")
    before = row(user.id)
    err = assert_error(api.patch("/api/accounts/me", body, token=user.token), status, code)
    assert err["field"] == field
    after = row(user.id)
    # a wrong current password counts toward the lockout, like a failed login
    assert after.pop("failed_logins") == before.pop("failed_logins") + (code == "wrong_password")
    assert after == before
    assert login(api, user.email).status_code == 200  # the password is the old one


def test_patch_me_password_is_its_own_email_is_weak(api, make_user):
    user = make_user()
    r = api.patch("/api/accounts/me", {"password": user.email.upper(), "current_password": user.password},
                  token=user.token)
    assert_error(r, 422, "weak_password")


def test_patch_me_password_change(api, make_user):
    user = make_user()
    other_session = login(api, user.email).json()["refresh_token"]
    new = "a brand new passphrase"
    r = api.patch("/api/accounts/me", {"password": new, "current_password": user.password}, token=user.token)
    assert r.status_code == 200, r.text
    assert "password" not in r.text
    assert_error(login(api, user.email, user.password), 401, "invalid_credentials")
    assert login(api, user.email, new).status_code == 200
    # every other session opened with the old password is over; the one that changed it goes on
    assert_error(refresh(api, other_session), 401, "invalid_refresh_token")
    assert refresh(api, user.refresh_token).status_code == 200


def test_patch_me_primary_project_shape(api, make_user):
    user = make_user()
    r = api.patch("/api/accounts/me", {"primary_project_id": None}, token=user.token)
    assert r.status_code == 200 and r.json()["user"]["primary_project_id"] is None


def test_patch_me_needs_a_token(api):
    r = api.patch("/api/accounts/me", {"display_name": "x"})
    assert_error(r, 401, "missing_token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


# --- admin -----------------------------------------------------------------------------------------


def list_users(api, admin, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.get(f"/api/accounts/users?{query}", token=admin.token)


def test_admin_lists_users_by_page_and_prefix(api, admin):
    tag = f"page-{uuid.uuid4().hex[:8]}"
    made = [signup(api, f"{tag}-{i}@example.com").json()["user"] for i in range(5)]
    signup(api, f"other-{tag}@example.com")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, "email_prefix": tag.upper()}  # the prefix is case-insensitive too
        if cursor:
            params["cursor"] = cursor
        r = list_users(api, admin, **params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"users", "next_cursor"}
        assert len(body["users"]) <= 2
        seen += body["users"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == made  # each exactly once, in id order, all fields
    assert all(set(u) == USER_KEYS for u in seen)
    # without a prefix: everyone, the default page size is 20, at most 100
    r = list_users(api, admin)
    assert r.status_code == 200 and len(r.json()["users"]) == min(20, user_count())
    r = list_users(api, admin, limit=100)
    assert len(r.json()["users"]) == min(100, user_count())
    ids = [u["id"] for u in r.json()["users"]]
    assert ids == sorted(ids)
    assert list_users(api, admin, email_prefix="no-such-prefix-" + tag).json() == {"users": [], "next_cursor": None}


@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"),
    ("limit=1&limit=2", "limit"),
    ("cursor=garbage!", "cursor"), ("cursor=YWJj", "cursor"), ("cursor=", "cursor"),
    ("email_prefix=%ZZ", "email_prefix"), ("email_prefix=%4", "email_prefix"),
    ("email_prefix=" + "a" * 255, "email_prefix"),
])
def test_admin_list_bad_parameters(admin, query, field):
    # http.client sends the query as written (requests would re-quote a bad %-escape)
    host, port = BASE_URL.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", f"/api/accounts/users?{query}", headers={"Authorization": f"Bearer {admin.token}"})
        r = conn.getresponse()
        status, ctype, body = r.status, r.getheader("Content-Type", ""), json.loads(r.read())
    finally:
        conn.close()
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_parameter", field), body
    assert ctype.startswith("application/json")


@pytest.mark.parametrize("prefix", ["%", "_", "\\", "_%", "%@"])
def test_admin_list_prefix_wildcards_are_literal(api, admin, prefix):
    r = api.get(f"/api/accounts/users?email_prefix={quote(prefix)}&limit=100", token=admin.token)
    assert r.status_code == 200
    assert all(u["email"].startswith(prefix) for u in r.json()["users"]), r.json()


def test_admin_gets_and_updates_a_user(api, admin, make_user):
    user = make_user(display_name="Managed")
    r = api.get(f"/api/accounts/users/{user.id}", token=admin.token)
    assert r.status_code == 200 and r.json() == {"user": user.user}
    r = api.patch(f"/api/accounts/users/{user.id}", {"role": "admin"}, token=admin.token)
    assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
    assert row(user.id)["role"] == "admin"
    r = api.patch(f"/api/accounts/users/{user.id}", {"role": "user", "disabled": True}, token=admin.token)
    assert r.status_code == 200
    assert (r.json()["user"]["role"], r.json()["user"]["disabled"]) == ("user", True)
    assert (row(user.id)["role"], row(user.id)["disabled"]) == ("user", True)
    r = api.patch(f"/api/accounts/users/{user.id}", {"disabled": False}, token=admin.token)
    assert r.status_code == 200 and r.json()["user"]["disabled"] is False
    assert api.patch(f"/api/accounts/users/{user.id}", {}, token=admin.token).json()["user"]["role"] == "user"


@pytest.mark.parametrize("body,code,field", [
    ({"role": "root"}, "invalid_field", "role"), ({"role": "Admin"}, "invalid_field", "role"),
    ({"role": None}, "invalid_field", "role"), ({"disabled": "yes"}, "invalid_field", "disabled"),
    ({"disabled": 1}, "invalid_field", "disabled"), ({"email": "x@example.com"}, "unknown_field", "email"),
    ({"display_name": "x"}, "unknown_field", "display_name"), ({"password": "p" * 12}, "unknown_field", "password"),
])
def test_admin_update_refusals_change_nothing(api, admin, make_user, body, code, field):
    user = make_user()
    before = row(user.id)
    err = assert_error(api.patch(f"/api/accounts/users/{user.id}", body, token=admin.token), 422, code)
    assert err["field"] == field
    assert row(user.id) == before


def test_admin_unknown_and_bad_ids(api, admin):
    missing = int(sql("SELECT COALESCE(MAX(id), 0) + 1000000 FROM users", "accounts")[0][0])
    assert_error(api.get(f"/api/accounts/users/{missing}", token=admin.token), 404, "not_found")
    assert_error(api.patch(f"/api/accounts/users/{missing}", {"role": "admin"}, token=admin.token), 404, "not_found")
    assert not sql(f"SELECT id FROM users WHERE id = {missing}", "accounts")
    for bad in ("abc", "0", "-1", "01", "1.5", "99999999999999999999"):
        err = assert_error(api.get(f"/api/accounts/users/{bad}", token=admin.token), 400, "invalid_parameter")
        assert err["field"] == "id"


def test_admin_routes_refuse_others(api, make_user):
    user, target = make_user(), make_user()
    before = row(target.id), row(user.id)
    for method, path, body in (("GET", "/api/accounts/users", None), ("GET", f"/api/accounts/users/{target.id}", None),
                               ("PATCH", f"/api/accounts/users/{target.id}", {"disabled": True}),
                               ("PATCH", f"/api/accounts/users/{user.id}", {"role": "admin"})):
        assert_error(api.request(method, path, token=user.token, json_body=body), 403, "forbidden")
        r = api.request(method, path, json_body=body)
        assert_error(r, 401, "missing_token")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert (row(target.id), row(user.id)) == before


def active_admins():
    return [int(r[0]) for r in sql("SELECT id FROM users WHERE role = 'admin' AND disabled = 0", "accounts")]


def test_the_last_admin_cannot_be_demoted_or_disabled(api, admin, make_user):
    last = make_user(display_name="Last Admin")
    assert api.patch(f"/api/accounts/users/{last.id}", {"role": "admin"}, token=admin.token).status_code == 200
    last.relogin()
    others = [i for i in active_admins() if i != last.id]
    assert admin.id in others
    try:
        # the new admin demotes every other admin, through the API
        for i in others:
            r = api.patch(f"/api/accounts/users/{i}", {"role": "user"}, token=last.token)
            assert r.status_code == 200, r.text
        assert active_admins() == [last.id]
        before = row(last.id)
        for body in ({"role": "user"}, {"disabled": True}, {"role": "user", "disabled": True},
                     {"role": "admin", "disabled": True}):
            err = assert_error(api.patch(f"/api/accounts/users/{last.id}", body, token=last.token), 409, "last_admin")
            assert err["message"]
        assert row(last.id) == before
        # what keeps it an admin is fine
        assert api.patch(f"/api/accounts/users/{last.id}", {"role": "admin", "disabled": False},
                         token=last.token).status_code == 200
        # with a second admin, it can step down
        r = api.patch(f"/api/accounts/users/{admin.id}", {"role": "admin"}, token=last.token)
        assert r.status_code == 200
        r = api.patch(f"/api/accounts/users/{last.id}", {"role": "user"}, token=last.token)
        assert r.status_code == 200 and r.json()["user"]["role"] == "user"
    finally:
        ids = ",".join(str(i) for i in others)
        sql(f"UPDATE users SET role = 'admin' WHERE id IN ({ids})", "accounts")
    assert admin.id in active_admins()


def test_a_role_change_takes_effect_at_the_next_token(api, admin, make_user):
    user = make_user()
    assert api.patch(f"/api/accounts/users/{user.id}", {"role": "admin"}, token=admin.token).status_code == 200
    # the token in hand still says user
    assert_error(api.get("/api/accounts/users", token=user.token), 403, "forbidden")
    r = refresh(api, user.refresh_token)
    assert r.status_code == 200
    promoted, rt = r.json()["access_token"], r.json()["refresh_token"]
    assert jwt_claims(promoted)["role"] == "admin" and r.json()["user"]["role"] == "admin"
    assert api.get("/api/accounts/users", token=promoted).status_code == 200
    assert api.patch(f"/api/accounts/users/{user.id}", {"role": "user"}, token=admin.token).status_code == 200
    r = refresh(api, rt)
    demoted = r.json()["access_token"]
    assert jwt_claims(demoted)["role"] == "user"
    assert_error(api.get("/api/accounts/users", token=demoted), 403, "forbidden")


def test_a_disabled_user_can_neither_log_in_nor_refresh(api, admin, make_user):
    user = make_user()
    cookie = cookie_of(login(api, user.email, cookie=True))[0]
    r = api.patch(f"/api/accounts/users/{user.id}", {"disabled": True}, token=admin.token)
    assert r.status_code == 200
    assert_error(login(api, user.email), 403, "account_disabled")
    assert_error(login(api, user.email.upper()), 403, "account_disabled")
    # without the password, nothing is revealed
    assert_error(login(api, user.email, "wrong password!"), 401, "invalid_credentials")
    assert_error(refresh(api, user.refresh_token), 401, "invalid_refresh_token")
    assert_error(api.post("/api/accounts/refresh", {}, headers={"Cookie": f"pl_refresh={cookie}"}), 401,
                 "invalid_refresh_token")
    assert all(revoked for _, _, revoked in tokens(user.id))
    assert len(tokens(user.id)) == 2  # nothing new was issued
    # a token that escaped revocation (disabled behind the API's back) is refused too
    other = make_user()
    sql(f"UPDATE users SET disabled = 1 WHERE id = {other.id}", "accounts")
    assert_error(refresh(api, other.refresh_token), 403, "account_disabled")
    assert_error(refresh(api, other.refresh_token), 401, "invalid_refresh_token")
    # enabled again, the user logs in
    assert api.patch(f"/api/accounts/users/{user.id}", {"disabled": False}, token=admin.token).status_code == 200
    assert login(api, user.email).status_code == 200


# --- input stored verbatim ---------------------------------------------------------------------------

VERBATIM = [
    "Robert'); DROP TABLE users;--",
    "x' OR '1'='1",
    '"; DELETE FROM users WHERE "1"="1',
    "back\\slash \\' \\\" \\0 \\n %s %d {}",
    "100% _done_ LIKE '%'",
    "/* c */ -- d # e ; f `g`",
    "\t tab \r\n newline \u2028 \U0001F600 e\u0301 \ufeff",
    "Zo\u00eb \u65e5\u672c\u8a9e \u0639\u0631\u0628\u064a \U0001F680",
    "\U0001F600" * 100,
    "<script>alert(1)</script>",
    "\\u0000 is not a NUL",
]


@pytest.mark.parametrize("name", VERBATIM, ids=range(len(VERBATIM)))
def test_display_names_are_stored_and_returned_verbatim(api, make_user, name):
    r = signup(api, display_name=name)
    assert r.status_code == 201, r.text
    u = r.json()["user"]
    assert u["display_name"] == name
    assert row(u["id"])["display_name"] == name
    user = make_user(display_name="renamed later")
    r = api.patch("/api/accounts/me", {"display_name": name}, token=user.token)
    assert r.status_code == 200 and r.json()["user"]["display_name"] == name
    assert api.get("/api/accounts/me", token=user.token).json()["user"]["display_name"] == name
    assert row(user.id)["display_name"] == name
    assert jwt_claims(refresh(api, user.refresh_token).json()["access_token"])["name"] == name


def test_display_name_limit_is_in_characters(api):
    assert signup(api, display_name="\U0001F600" * 100).status_code == 201
    assert_error(signup(api, display_name="\U0001F600" * 101), 422, "invalid_field")
    assert_error(signup(api, display_name="bad\0nul"), 422, "invalid_field")


@pytest.mark.parametrize("password", ["' OR '1'='1' --", "\"; DROP TABLE users; --", "p\u00e4ss \U0001F511 w\u00f6rd",
                                      "\\\\ %% __ \\' ok", "x" * 128])
def test_passwords_with_metacharacters(api, password):
    email = unique_email("pw")
    assert signup(api, email, password).status_code == 201
    assert login(api, email, password).status_code == 200
    assert_error(login(api, email, password[:-1]), 401, "invalid_credentials")
    assert_error(login(api, email, "' OR ''='"), 401, "invalid_credentials")


def test_emails_with_metacharacters_and_the_longest_email(api, admin):
    tag = uuid.uuid4().hex[:8]
    emails = [f"o'brien+{tag}%_x@example.com", f"{tag}!#$&*/=?^`{{|}}~-@example.com",
              f"{tag}" + "a" * 56 + "@" + ".".join(["b" * 63] * 2) + "." + "c" * 57 + ".com"]
    assert len(emails[2]) == 254
    for email in emails:
        r = signup(api, email.upper())
        assert r.status_code == 201, (email, r.text)
        assert r.json()["user"]["email"] == email.lower()
        assert row(r.json()["user"]["id"])["email"] == email.lower()
        assert login(api, email).status_code == 200
    assert_error(signup(api, "a" + emails[2]), 422, "invalid_field")
    # the prefix filter takes % and _ literally
    prefix = "o'brien+" + tag
    r = api.get(f"/api/accounts/users?email_prefix={quote(prefix + '%_')}", token=admin.token)
    assert [u["email"] for u in r.json()["users"]] == [emails[0].lower()]
    r = api.get(f"/api/accounts/users?email_prefix={quote(prefix + '_')}", token=admin.token)
    assert r.json()["users"] == []


# --- the operator's command -----------------------------------------------------------------------------


def pilotlight_admin_create(email, password=None):
    env = {**os.environ}
    env.pop("PL_ADMIN_PASSWORD", None)
    if password is not None:
        env["PL_ADMIN_PASSWORD"] = password
    return subprocess.run([str(ROOT / "pilotlight"), "admin", "create", email], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)


def test_pilotlight_admin_create(api, make_user):
    email, password = unique_email("ops"), "an operator password"
    r = pilotlight_admin_create(email.upper(), password)
    assert r.returncode == 0, r.stderr
    body = login(api, email, password).json()
    assert body["user"]["role"] == "admin" and jwt_claims(body["access_token"])["role"] == "admin"
    # an existing, disabled user becomes an active admin and keeps the password
    user = make_user()
    sql(f"UPDATE users SET disabled = 1 WHERE id = {user.id}", "accounts")
    r = pilotlight_admin_create(user.email, "ignored password")
    assert r.returncode == 0, r.stderr
    assert (row(user.id)["role"], row(user.id)["disabled"]) == ("admin", False)
    assert login(api, user.email).status_code == 200
    # a weak password or a bad email is refused, and nothing is made
    for bad_email, bad_pw in ((unique_email("ops"), "short"), ("not-an-email", "an operator password")):
        before = user_count()
        r = pilotlight_admin_create(bad_email, bad_pw)
        assert r.returncode != 0
        assert user_count() == before
