"""Idempotency-Key (issue 16) through nginx, on the routes that honour it
(POST /api/projects, PATCH /api/projects/{id}): a retry gets the first
answer again and writes nothing, a key reused for another request is 422, a
retry while the first is still running is 409, keys are per user, and an
expired key runs again. Every claim is checked in the database itself."""
import subprocess
import threading
import time
import uuid

import pytest

from conftest import DB_SOCKET, assert_error, sql


def key():
    return str(uuid.uuid4())


def create(api, user, name, idem=None, **extra):
    headers = {"Idempotency-Key": idem} if idem is not None else {}
    return api.post("/api/projects", {"name": name, **extra}, token=user.token, headers=headers)


def projects_named(name):
    return int(sql(f"SELECT COUNT(*) FROM projects WHERE name = '{name}'", database="projects")[0][0])


def stored_key(user, idem):
    return sql(f"SELECT status, fingerprint FROM idempotency_keys WHERE scope = 'u{user.id}' AND idem_key = '{idem}'",
               database="projects")


@pytest.fixture(scope="module")
def alice(make_user):
    return make_user("Alice")


@pytest.fixture(scope="module")
def bob(make_user):
    return make_user("Bob")


def test_a_retry_gets_the_first_answer_and_writes_nothing(api, alice):
    name, k = f"idem {key()}", key()
    first = create(api, alice, name, k)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    for form in (k, f'"{k}"'):  # the bare key and the RFC 8941 string are one key
        again = create(api, alice, name, form)
        assert again.status_code == 201 and again.text == first.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["Location"] == first.headers["Location"]
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]  # a new request, an old answer
    assert projects_named(name) == 1
    assert stored_key(alice, k)[0][0] == "201"


def test_without_a_key_each_post_creates(api, alice):
    name = f"no key {key()}"
    assert create(api, alice, name).status_code == 201
    assert create(api, alice, name).status_code == 201
    assert projects_named(name) == 2


def test_a_key_reused_for_another_request_is_422_and_changes_nothing(api, alice):
    name, k = f"idem {key()}", key()
    first = create(api, alice, name, k)
    assert first.status_code == 201
    project = first.json()["project"]
    assert_error(create(api, alice, name + " other", k), 422, "idempotency_key_reused")
    assert_error(create(api, alice, name, k, description="more"), 422, "idempotency_key_reused")
    # the same key on another route is another request too
    r = api.patch(f"/api/projects/{project['id']}", {"name": name}, token=alice.token, headers={"Idempotency-Key": k})
    assert_error(r, 422, "idempotency_key_reused")
    assert projects_named(name + " other") == 0
    got = api.get(f"/api/projects/{project['id']}", token=alice.token).json()["project"]
    assert got["version"] == 1


def test_keys_are_per_user(api, alice, bob):
    name, k = f"idem {key()}", key()
    assert create(api, alice, name, k).status_code == 201
    r = create(api, bob, name, k)  # bob's own first use of the same string
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert r.json()["project"]["owner_id"] == bob.id
    assert projects_named(name) == 2


def test_a_patch_retried_changes_the_version_once(api, alice):
    project = create(api, alice, f"idem {key()}").json()["project"]
    path, k = f"/api/projects/{project['id']}", key()
    first = api.patch(path, {"state": "active"}, token=alice.token, headers={"Idempotency-Key": k})
    assert first.status_code == 200 and first.json()["project"]["version"] == 2
    again = api.patch(path, {"state": "active"}, token=alice.token, headers={"Idempotency-Key": k})
    assert again.status_code == 200 and again.text == first.text and again.headers["Idempotent-Replayed"] == "true"
    assert api.get(path, token=alice.token).json()["project"]["version"] == 2


def test_a_refusal_from_the_handler_is_kept_too(api, alice, bob):
    """A 4xx the handler answered is the request's answer: replayed, not rerun."""
    project = create(api, alice, f"idem {key()}").json()["project"]
    path, k = f"/api/projects/{project['id']}", key()
    r = api.patch(path, {"name": "bob was here"}, token=bob.token, headers={"Idempotency-Key": k})
    assert_error(r, 404, "not_found")
    again = api.patch(path, {"name": "bob was here"}, token=bob.token, headers={"Idempotency-Key": k})
    assert_error(again, 404, "not_found")
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("bad", ['""', "x" * 256, "tab\there", 'a"b', "back\\slash", "caf\u00e9",
                                 # a space, which the key's column would ignore at the end ("k " the key "k")
                                 "two words", '"trailing "', '" leading"'])
def test_malformed_keys_are_400_and_create_nothing(api, alice, bad):
    name = f"bad key {key()}"
    r = api.request("POST", "/api/projects", token=alice.token, json_body={"name": name},
                    headers={"Idempotency-Key": bad.encode("utf-8")})
    assert_error(r, 400, "invalid_header")
    assert r.json()["error"]["field"] == "Idempotency-Key"
    assert projects_named(name) == 0


def test_a_retry_while_the_first_runs_is_409(api, alice):
    """The first request is held inside its transaction (a root session locks
    the projects table); the retry cannot wait on it: 409 at once, then the
    first completes and a later retry replays it."""
    name, k = f"idem {key()}", key()
    locker = subprocess.Popen(
        ["mariadb", "--no-defaults", f"--socket={DB_SOCKET}", "-u", "root", "--batch", "--skip-column-names",
         "--unbuffered", "projects"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        locker.stdin.write("LOCK TABLES projects WRITE; SELECT 'locked';\n")
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == "locked"
        first = {}
        t = threading.Thread(target=lambda: first.setdefault("r", create(api, alice, name, k)))
        t.start()
        # the first has claimed its key when it waits on the table
        deadline = time.monotonic() + 10
        while not sql("SELECT id FROM information_schema.processlist WHERE db = 'projects' "
                      "AND state LIKE 'Waiting for table metadata lock%'"):
            assert time.monotonic() < deadline, "the first request never reached the locked table"
            time.sleep(0.02)
        r = create(api, alice, name, k)
        assert_error(r, 409, "idempotency_key_in_use")
        assert r.headers["Retry-After"] == "1"
        locker.stdin.write("UNLOCK TABLES;\n")
        locker.stdin.flush()
        t.join(20)
        assert first["r"].status_code == 201, first["r"].text
    finally:
        locker.stdin.close()
        locker.wait(10)
    again = create(api, alice, name, k)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.text == first["r"].text
    assert projects_named(name) == 1


def test_many_retries_at_once_create_one_project(api, alice):
    name, k = f"idem {key()}", key()
    results = []

    def attempt():
        results.append(create(api, alice, name, k))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {201, 409} and statuses.count(201) >= 1, statuses
    created = {r.text for r in results if r.status_code == 201}
    assert len(created) == 1  # every 201 is the one answer
    assert projects_named(name) == 1


def test_an_expired_key_runs_again(api, alice):
    name, k = f"idem {key()}", key()
    assert create(api, alice, name, k).status_code == 201
    sql(f"UPDATE idempotency_keys SET expires_at = NOW(6) - INTERVAL 1 SECOND "
        f"WHERE scope = 'u{alice.id}' AND idem_key = '{k}'", database="projects")
    r = create(api, alice, name, k)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert projects_named(name) == 2
    assert len(stored_key(alice, k)) == 1


def test_routes_say_which_honour_the_key(internal):
    routes = internal.get("/api/projects/_routes").json()["routes"]
    flagged = {(r["method"], r["pattern"]) for r in routes if "idempotent" in r["flags"]}
    assert flagged == {("POST", "/api/projects"), ("PATCH", "/api/projects/{id}")}
