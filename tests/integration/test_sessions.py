"""Sessions (issue 15): each refresh-token family is a session (created,
last used, user agent, coarse address); the user lists them, ends one, or
logs out everywhere. Two tabs refreshing at once with the same refresh
token both get a valid successor within PL_REFRESH_GRACE_S (10 s) when they
are the same client (user agent and address); the same token again after
the window, or from another client, still revokes the whole family (theft
detection kept)."""
import threading

import requests

from conftest import BASE_URL, assert_error, jwt_claims, sql


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
    token = r.json()["access_token"]
    claims = jwt_claims(token)
    assert claims["sid"]


def test_the_same_token_from_another_client_within_the_window_revokes_the_family(api, make_user):
    user = make_user()
    cookie = login_cookie(api, user)
    r = cookie_refresh(cookie)
    assert r.status_code == 200, r.text
    successor = new_cookie(r)
    assert_error(cookie_refresh(cookie, agent="somebody-else/2.0"), 401, "refresh_token_reused")
    assert_error(cookie_refresh(successor), 401, "invalid_refresh_token")
