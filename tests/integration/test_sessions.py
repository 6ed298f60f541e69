"""Sessions (issue 15): each refresh-token family is a session (created,
last used, user agent, coarse address); the user lists them, ends one, or
logs out everywhere. Two tabs refreshing at once with the same refresh
token both get a valid successor within PL_REFRESH_GRACE_S (10 s) when they
are the same client (user agent and address); the same token again after
the window, or from another client, still revokes the whole family (theft
detection kept)."""
import threading

import requests

from conftest import BASE_URL, assert_error, jwt_claims, sql, wait_until
from lifecycle import client, signup_login


def login_cookie(api, user, agent="tab-test/1.0"):
    r = api.post("/api/accounts/login", {"email": user.email, "password": user.password, "cookie": True},
                 headers={"User-Agent": agent})
    assert r.status_code == 200, r.text
    return r.cookies.get("pl_refresh") or r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]


def cookie_refresh(cookie, agent="tab-test/1.0"):
    return requests.post(BASE_URL + "/api/accounts/refresh", headers={"Cookie": f"pl_refresh={cookie}",
                                                                      "User-Agent": agent}, timeout=10)


def new_cookie(r):
    return r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]


def test_two_tabs_refreshing_at_once_both_succeed_and_the_session_lives_on(api, make_user):
    """The issue's case: two refreshes with the same cookie at the same moment."""
    user = make_user()
    cookie = login_cookie(api, user)
    results = [None, None]
    start = threading.Barrier(2)

    def tab(i):
        start.wait()
        results[i] = cookie_refresh(cookie)

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
    successors = [new_cookie(r) for r in results]
    assert successors[0] and successors[1] and successors[0] != successors[1]
    # both successors work, and go on working: the session lives on
    for c in successors:
        r = cookie_refresh(c)
        assert r.status_code == 200, r.text
        r2 = cookie_refresh(new_cookie(r))
        assert r2.status_code == 200, r2.text
        token = r2.json()["access_token"]
        assert api.get("/api/accounts/me", token=token).status_code == 200
    # one session (one family), still live
    fams = sql(f"SELECT COUNT(DISTINCT family_id), SUM(revoked_at IS NOT NULL) FROM refresh_tokens "
               f"WHERE user_id = {user.id}", "accounts")
    assert fams[0][0] == "2" and fams[0][1] == "0", fams  # the make_user login's family and this one


def test_the_same_token_after_the_grace_window_still_revokes_the_family(api, make_user):
    user = make_user()
    cookie = login_cookie(api, user)
    r = cookie_refresh(cookie)
    assert r.status_code == 200, r.text
    successor = new_cookie(r)
    # the window has passed (the spend is moved back in time, rather than waiting 10 s)
    sql("UPDATE refresh_tokens SET spent_at = spent_at - INTERVAL 11 SECOND "
        f"WHERE user_id = {user.id} AND spent_at IS NOT NULL", "accounts")
    assert_error(cookie_refresh(cookie), 401, "refresh_token_reused")
    assert_error(cookie_refresh(successor), 401, "invalid_refresh_token")
    # and the session's access tokens are refused too (within about a second)
    refused_soon(api, r.json()["access_token"])


def test_the_same_token_from_another_client_within_the_window_revokes_the_family(api, make_user):
    user = make_user()
    cookie = login_cookie(api, user)
    r = cookie_refresh(cookie)
    assert r.status_code == 200, r.text
    successor = new_cookie(r)
    assert_error(cookie_refresh(cookie, agent="somebody-else/2.0"), 401, "refresh_token_reused")
    assert_error(cookie_refresh(successor), 401, "invalid_refresh_token")


# --- the user's sessions --------------------------------------------------------------------


def sessions(api, token):
    r = api.get("/api/accounts/me/sessions", token=token)
    assert r.status_code == 200, r.text
    return r.json()["sessions"]


def refused_soon(api, token):
    wait_until(lambda: api.get("/api/projects", token=token).status_code == 401, timeout=5, interval=0.1,
               message="projects to refuse the ended session's token")


def test_sessions_are_listed_with_their_client_and_the_current_one_marked():
    laptop, phone = client("Laptop/1.0 (X11)"), client("Phone/2.0 (Android)")
    user = signup_login(laptop)
    r = phone.post("/api/accounts/login", {"email": user.email, "password": user.password})
    on_phone = r.json()
    listed = sessions(laptop, user.token)
    assert len(listed) == 2, listed
    assert all(set(s) == {"id", "current", "created_at", "last_used_at", "user_agent", "address"} for s in listed)
    mine = [s for s in listed if s["current"]]
    assert len(mine) == 1 and mine[0]["id"] == jwt_claims(user.token)["sid"]
    assert mine[0]["user_agent"] == "Laptop/1.0 (X11)" and mine[0]["address"] == "127.0.2.0/24"
    other = [s for s in listed if not s["current"]][0]
    assert other["user_agent"] == "Phone/2.0 (Android)" and other["id"] == jwt_claims(on_phone["access_token"])["sid"]
    # the most recently used first; a refresh moves a session up
    r = phone.post("/api/accounts/refresh", {"refresh_token": on_phone["refresh_token"]})
    assert r.status_code == 200
    assert sessions(laptop, user.token)[0]["id"] == other["id"]
    # another user sees only their own
    stranger = signup_login(client())
    assert [s["id"] for s in sessions(laptop, stranger.token)] == [jwt_claims(stranger.token)["sid"]]


def test_ending_one_session():
    laptop, phone = client("Laptop/1.0"), client("Phone/2.0")
    user = signup_login(laptop)
    on_phone = phone.post("/api/accounts/login", {"email": user.email, "password": user.password}).json()
    sid = jwt_claims(on_phone["access_token"])["sid"]
    stranger = signup_login(client())
    # nobody else can end it, and an unknown one is 404
    assert_error(laptop.delete(f"/api/accounts/me/sessions/{sid}", token=stranger.token), 404, "session_not_found")
    assert_error(laptop.delete("/api/accounts/me/sessions/" + "0" * 32, token=user.token), 404, "session_not_found")
    # an id of another shape is no session either (non-ASCII ones were a 500: the
    # column is ASCII, and MariaDB refused to compare them; found by the generated requests)
    for odd in ("\u202e", "é" * 32, sid.upper(), sid + "0", "x" * 64):
        assert_error(laptop.delete(f"/api/accounts/me/sessions/{odd}", token=user.token), 404, "session_not_found")
    r = laptop.delete(f"/api/accounts/me/sessions/{sid}", token=user.token)
    assert r.status_code == 204 and r.content == b"", r.text
    assert_error(phone.post("/api/accounts/refresh", {"refresh_token": on_phone["refresh_token"]}), 401,
                 "invalid_refresh_token")
    refused_soon(phone, on_phone["access_token"])
    assert [s["id"] for s in sessions(laptop, user.token)] == [jwt_claims(user.token)["sid"]]
    # the laptop's session goes on
    assert laptop.get("/api/projects", token=user.token).status_code == 200
    assert laptop.post("/api/accounts/refresh", {"refresh_token": user.refresh_token}).status_code == 200
    assert_error(laptop.delete(f"/api/accounts/me/sessions/{sid}", token=user.token), 404, "session_not_found")


def test_log_out_everywhere():
    laptop, phone = client("Laptop/1.0"), client("Phone/2.0")
    user = signup_login(laptop)
    on_phone = phone.post("/api/accounts/login", {"email": user.email, "password": user.password}).json()
    r = laptop.delete("/api/accounts/me/sessions", token=user.token)
    assert r.status_code == 204
    assert "pl_refresh=;" in r.headers.get("Set-Cookie", "")
    for rt in (user.refresh_token, on_phone["refresh_token"]):
        assert_error(laptop.post("/api/accounts/refresh", {"refresh_token": rt}), 401, "invalid_refresh_token")
    refused_soon(laptop, user.token)
    refused_soon(phone, on_phone["access_token"])
    # a new login at once works everywhere
    fresh = laptop.post("/api/accounts/login", {"email": user.email, "password": user.password}).json()
    assert laptop.get("/api/projects", token=fresh["access_token"]).status_code == 200
    assert len(sessions(laptop, fresh["access_token"])) == 1


def test_a_reused_token_ends_the_sessions_access_tokens_too():
    api = client()
    user = signup_login(api)
    elsewhere = api.post("/api/accounts/login", {"email": user.email, "password": user.password}).json()
    r = api.post("/api/accounts/refresh", {"refresh_token": user.refresh_token})
    assert r.status_code == 200
    thief = client("Thief/1.0")
    assert_error(thief.post("/api/accounts/refresh", {"refresh_token": user.refresh_token}), 401,
                 "refresh_token_reused")
    refused_soon(api, r.json()["access_token"])
    # the user's other session is untouched
    assert api.get("/api/projects", token=elsewhere["access_token"]).status_code == 200
    assert api.post("/api/accounts/refresh", {"refresh_token": elsewhere["refresh_token"]}).status_code == 200
