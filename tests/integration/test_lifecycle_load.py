"""The lifecycle flows of many users at once (issue 15): users of
neighbouring ids signing up, asking for reset links, turning MFA on,
changing their address and deleting their accounts concurrently all
succeed: no flow's transaction locks a range of an index and then inserts
into it (two of them would deadlock). Through the internal listener, which
serves the same routes without the per-address rate limits."""
import concurrent.futures
import uuid

import requests

from conftest import INTERNAL_URL, DEFAULT_PASSWORD, log_lines, sql, wait_until
from lifecycle import Codes

N = 32


def post(path, body=None, token=None):
    h = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(INTERNAL_URL + path, json=body, headers=h, timeout=30)


def all_at_once(fn, items):
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        return list(ex.map(fn, items))


def test_many_users_at_once():
    emails = [f"load-{uuid.uuid4().hex[:12]}@example.com" for _ in range(N)]
    signups = all_at_once(lambda e: post("/api/accounts/signup", {"email": e, "password": DEFAULT_PASSWORD,
                                                                  "display_name": "Load"}), emails)
    assert [r.status_code for r in signups] == [201] * N, [r.text for r in signups if r.status_code != 201]
    tokens = [r.json()["access_token"] for r in all_at_once(
        lambda e: post("/api/accounts/login", {"email": e, "password": DEFAULT_PASSWORD}), emails)]

    assert {r.status_code for r in all_at_once(lambda e: post("/api/accounts/password/forgot", {"email": e}),
                                               emails)} == {202}
    wait_until(lambda: set(emails) <= {r[0] for r in sql(
        "SELECT to_addr FROM outbox WHERE subject = 'Reset your Pilotlight password' AND sent_at IS NOT NULL",
        "accounts")}, timeout=20, message="every reset mail sent")

    def mfa_on(token):
        r = post("/api/accounts/me/mfa/enrol", {"current_password": DEFAULT_PASSWORD}, token)
        assert r.status_code == 200, r.text
        return post("/api/accounts/me/mfa/confirm", {"code": Codes(r.json()["secret"]).next()}, token)

    confirmed = all_at_once(mfa_on, tokens)
    assert [r.status_code for r in confirmed] == [200] * N

    def move(token):
        return post("/api/accounts/me/email", {"email": f"moved-{uuid.uuid4().hex[:12]}@example.com",
                                               "current_password": DEFAULT_PASSWORD}, token)

    assert [r.status_code for r in all_at_once(move, tokens)] == [202] * N
    ids = [r.json()["user"]["id"] for r in signups]
    assert sql("SELECT COUNT(*) FROM recovery_codes WHERE user_id IN (%s)" % ",".join(map(str, ids)),
               "accounts") == [[str(10 * N)]]

    def delete(i):
        return post("/api/accounts/me/delete", {"current_password": DEFAULT_PASSWORD,
                                                "recovery_code": confirmed[i].json()["recovery_codes"][0]}, tokens[i])

    assert [r.status_code for r in all_at_once(delete, range(N))] == [204] * N
    assert sql("SELECT COUNT(*) FROM users WHERE id IN (%s)" % ",".join(map(str, ids)), "accounts") == [["0"]]
    assert not [ln for ln in log_lines("accounts") if ln.get("event") == "password_reset_failed"]
