"""The projects service through nginx, like a user (issue 4): who may do what
(an authorization matrix), updates that never lose each other, If-Match and
ETags, admin-only internal notes, pagination under concurrent inserts, the
primary project composed of invocations, and bad input of every kind. Every
refusal is checked to have changed nothing, in the database itself."""
import threading
import uuid

import pytest

from conftest import BASE_URL, Api, assert_error, sql, wait_until

BAD_TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


# --- helpers -----------------------------------------------------------------------------


def create_project(api, user, **fields):
    body = {"name": f"project {uuid.uuid4().hex[:8]}"}
    body.update(fields)
    r = api.post("/api/projects", body, token=user.token)
    assert r.status_code == 201, r.text
    return r.json()["project"]


def snapshot(project_id):
    """The stored row, byte for byte (HEX: the client's batch output escapes)."""
    return sql(
        "SELECT id, owner_id, HEX(name), HEX(description), state, HEX(internal_notes), version, updated_at "
        f"FROM projects WHERE id = {int(project_id)}",
        database="projects",
    )


def stored(project_id, column):
    """One text column as stored, decoded from its bytes."""
    rows = sql(f"SELECT HEX({column}) FROM projects WHERE id = {int(project_id)}", database="projects")
    assert len(rows) == 1, rows
    return bytes.fromhex(rows[0][0]).decode("utf-8")


def owned_ids(user_id):
    rows = sql(f"SELECT id FROM projects WHERE owner_id = {int(user_id)} ORDER BY id", database="projects")
    return [int(r[0]) for r in rows]


def primary_of(user_id):
    rows = sql(f"SELECT primary_project_id FROM users WHERE id = {int(user_id)}", database="accounts")
    assert len(rows) == 1, rows
    return None if rows[0][0] == "NULL" else int(rows[0][0])


def etag_version(resp):
    """The version in a response's ETag: a strong entity tag (nginx leaves
    the API's JSON uncompressed, so it stays strong)."""
    tag = resp.headers.get("ETag", "")
    assert len(tag) > 2 and tag.startswith('"') and tag.endswith('"'), resp.headers
    return int(tag[1:-1])


def list_all_pages(api, token, query="", limit=100):
    """Every page of a listing; returns (ids, pages)."""
    ids, pages, cursor = [], 0, None
    while True:
        q = f"limit={limit}" + (f"&{query}" if query else "") + (f"&cursor={cursor}" if cursor else "")
        r = api.get(f"/api/projects?{q}", token=token)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["projects"]) <= limit
        ids += [p["id"] for p in body["projects"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 1000


@pytest.fixture(scope="module")
def owner(make_user):
    return make_user(display_name="Owner")


@pytest.fixture(scope="module")
def other(make_user):
    return make_user(display_name="Someone Else")


# --- the authorization matrix --------------------------------------------------------------

OK, GONE = "ok", "gone"
# endpoint: (method, path, body, {actor: expected}); expected is a status and an
# error code for a refusal, or (status, OK) / (204, GONE) for a success.
MATRIX = {
    "list": ("GET", "/api/projects", None, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (200, OK), "other": (200, OK), "admin": (200, OK)}),
    "list_all": ("GET", "/api/projects?all=true", None, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (403, "forbidden"), "other": (403, "forbidden"), "admin": (200, OK)}),
    "list_owner": ("GET", "/api/projects?owner_id={owner_id}", None, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (403, "forbidden"), "other": (403, "forbidden"), "admin": (200, OK)}),
    "create": ("POST", "/api/projects", {"name": "matrix"}, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (201, OK), "other": (201, OK), "admin": (201, OK)}),
    "get": ("GET", "/api/projects/{id}", None, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (200, OK), "other": (404, "not_found"), "admin": (200, OK)}),
    "patch_fields": ("PATCH", "/api/projects/{id}", {"name": "renamed", "state": "done", "description": "new"}, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (200, OK), "other": (404, "not_found"), "admin": (200, OK)}),
    "patch_notes": ("PATCH", "/api/projects/{id}", {"internal_notes": "admins only"}, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (403, "forbidden"), "other": (404, "not_found"), "admin": (200, OK)}),
    "delete": ("DELETE", "/api/projects/{id}", None, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (204, GONE), "other": (404, "not_found"), "admin": (204, GONE)}),
    "primary": ("GET", "/api/projects/primary", None, {
        "anonymous": (401, "missing_token"), "bad_token": (401, "invalid_token"),
        "owner": (200, OK), "other": (404, "no_primary_project"), "admin": (404, "no_primary_project")}),
}
CASES = [(ep, actor) for ep, (_, _, _, by_actor) in MATRIX.items() for actor in by_actor]


@pytest.mark.parametrize("endpoint,actor", CASES, ids=[f"{e}-{a}" for e, a in CASES])
def test_authorization_matrix(api, owner, other, admin, endpoint, actor):
    method, path, body, by_actor = MATRIX[endpoint]
    status, outcome = by_actor[actor]
    project = create_project(api, owner, description="the owner's", state="active")
    pid = project["id"]
    if endpoint == "primary":
        r = api.patch("/api/accounts/me", {"primary_project_id": pid}, token=owner.token)
        assert r.status_code == 200, r.text
        if actor == "admin":  # make sure the shared admin has none
            r = api.patch("/api/accounts/me", {"primary_project_id": None}, token=admin.token)
            assert r.status_code == 200, r.text
    token = {"anonymous": None, "bad_token": BAD_TOKEN, "owner": owner.token, "other": other.token,
             "admin": admin.token}[actor]
    caller_id = {"owner": owner.id, "other": other.id, "admin": admin.id}.get(actor)
    if endpoint == "create":
        body = {"name": f"matrix {uuid.uuid4().hex}"}
    before = snapshot(pid)
    count_before = int(sql("SELECT COUNT(*) FROM projects", database="projects")[0][0])

    r = api.request(method, path.format(id=pid, owner_id=owner.id), token=token, json_body=body)

    if outcome not in (OK, GONE):
        err = assert_error(r, status, outcome)
        if status == 401:
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers
        if endpoint == "patch_notes" and actor == "owner":
            assert err["field"] == "internal_notes"
        # a refusal changed nothing: the project, and no project was made
        assert snapshot(pid) == before
        assert int(sql("SELECT COUNT(*) FROM projects", database="projects")[0][0]) == count_before
        return

    assert r.status_code == status, r.text
    if outcome == GONE:
        assert r.text == ""
        assert snapshot(pid) == []
        assert_error(api.get(f"/api/projects/{pid}", token=owner.token), 404, "not_found")
        return
    data = r.json()
    is_admin = actor == "admin"
    if endpoint.startswith("list"):
        ids = [p["id"] for p in data["projects"]]
        for p in data["projects"]:
            assert ("internal_notes" in p) == is_admin, p
        if endpoint == "list":
            assert all(p["owner_id"] == caller_id for p in data["projects"]), data
            # the admin's own list is the admin's projects, not everyone's
            assert (pid in ids) == (actor == "owner")
        elif endpoint == "list_owner":
            assert pid in ids and all(p["owner_id"] == owner.id for p in data["projects"])
        else:
            ids, _ = list_all_pages(api, token, "all=true")
            assert pid in ids
        assert snapshot(pid) == before
        return
    p = data["project"]
    assert ("internal_notes" in p) == is_admin, p
    if endpoint != "primary":
        assert etag_version(r) == p["version"]
    if endpoint == "create":
        assert p["owner_id"] == caller_id and p["name"] == body["name"] and p["state"] == "planning"
        assert r.headers["Location"] == f"/api/projects/{p['id']}"
        assert stored(p["id"], "name") == body["name"]
        return
    assert p["id"] == pid and p["owner_id"] == owner.id
    if endpoint in ("get", "primary"):
        assert p["state"] == "active" and p["description"] == "the owner's"
        assert snapshot(pid) == before
    elif endpoint == "patch_fields":
        assert (p["name"], p["state"], p["description"]) == ("renamed", "done", "new")
        assert p["version"] == project["version"] + 1
        assert stored(pid, "name") == "renamed" and stored(pid, "internal_notes") == ""
    elif endpoint == "patch_notes":
        assert p["internal_notes"] == "admins only" and p["state"] == "active"
        assert stored(pid, "internal_notes") == "admins only"


def test_create_cannot_name_another_owner_or_version(api, owner, other):
    before = owned_ids(other.id)
    for extra in ({"owner_id": other.id}, {"id": 1}, {"version": 7}, {"created_at": "2020-01-01T00:00:00Z"}):
        r = api.post("/api/projects", {"name": "sneaky", **extra}, token=owner.token)
        err = assert_error(r, 422, "unknown_field")
        assert err["field"] == next(iter(extra))
    assert owned_ids(other.id) == before


# --- concurrent updates, ETag and If-Match -----------------------------------------------------


def test_concurrent_owner_and_admin_patches_lose_nothing(owner, admin):
    """The owner changes the state while an admin sets the notes, at the same
    moment, many times: both changes always survive."""
    owner_api, admin_api = Api(BASE_URL), Api(BASE_URL)
    project = create_project(owner_api, owner)
    pid, version = project["id"], project["version"]
    states = ["active", "on_hold", "done", "planning"]
    for i in range(30):
        barrier = threading.Barrier(2)
        results = {}

        def send(who, client, token, body):
            barrier.wait()
            results[who] = client.patch(f"/api/projects/{pid}", body, token=token, timeout=20)

        state, note = states[i % 4], f"note {i} {uuid.uuid4().hex}"
        threads = [
            threading.Thread(target=send, args=("owner", owner_api, owner.token, {"state": state})),
            threading.Thread(target=send, args=("admin", admin_api, admin.token, {"internal_notes": note})),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results["owner"].status_code == 200, results["owner"].text
        assert results["admin"].status_code == 200, results["admin"].text
        assert "internal_notes" not in results["owner"].json()["project"]
        r = admin_api.get(f"/api/projects/{pid}", token=admin.token)
        assert r.status_code == 200, r.text
        p = r.json()["project"]
        assert (p["state"], p["internal_notes"]) == (state, note), f"round {i}: lost an update: {p}"
        assert p["version"] == version + 2, f"round {i}: {p['version']} after {version}"
        version = p["version"]
        assert etag_version(r) == version


def test_concurrent_patches_with_the_same_if_match_one_wins(owner, admin):
    """Two writers holding the same version: exactly one succeeds, the other
    gets 412 and its change is not applied."""
    owner_api, admin_api = Api(BASE_URL), Api(BASE_URL)
    pid = create_project(owner_api, owner)["id"]
    for i in range(10):
        r = owner_api.get(f"/api/projects/{pid}", token=owner.token)
        tag = r.headers["ETag"]
        barrier = threading.Barrier(2)
        results = {}

        def send(who, client, token, body):
            barrier.wait()
            results[who] = client.patch(f"/api/projects/{pid}", body, token=token, headers={"If-Match": tag},
                                        timeout=20)

        threads = [
            threading.Thread(target=send, args=("owner", owner_api, owner.token, {"description": f"owner {i}"})),
            threading.Thread(target=send, args=("admin", admin_api, admin.token, {"description": f"admin {i}"})),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes = sorted(results[w].status_code for w in results)
        assert codes == [200, 412], {w: results[w].text for w in results}
        winner = "owner" if results["owner"].status_code == 200 else "admin"
        loser = "admin" if winner == "owner" else "owner"
        assert_error(results[loser], 412, "version_conflict")
        assert stored(pid, "description") == f"{winner} {i}"
        assert etag_version(results[winner]) == etag_version(r) + 1


def test_concurrent_deletes_one_wins(owner, admin):
    """The owner and an admin delete the same project at once: one 204, one
    404, never two successes for one deletion."""
    owner_api, admin_api = Api(BASE_URL), Api(BASE_URL)
    for i in range(20):
        pid = create_project(owner_api, owner)["id"]
        barrier = threading.Barrier(2)
        results = {}

        def send(who, client, token):
            barrier.wait()
            results[who] = client.delete(f"/api/projects/{pid}", token=token, timeout=20)

        threads = [threading.Thread(target=send, args=("owner", owner_api, owner.token)),
                   threading.Thread(target=send, args=("admin", admin_api, admin.token))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes = sorted(r.status_code for r in results.values())
        assert codes == [204, 404], f"round {i}: {[r.text for r in results.values()]}"
        assert_error(next(r for r in results.values() if r.status_code == 404), 404, "not_found")
        assert snapshot(pid) == []


def test_etag_and_if_match(api, owner):
    r = api.post("/api/projects", {"name": "etag"}, token=owner.token)
    assert r.status_code == 201
    pid = r.json()["project"]["id"]
    assert etag_version(r) == 1
    r = api.get(f"/api/projects/{pid}", token=owner.token, headers={"Accept-Encoding": "identity"})
    assert r.headers["ETag"] == '"1"'  # strong when nginx does not recompress the body

    # a good If-Match (its tag, a list holding it, or *) succeeds and moves the ETag on
    r = api.patch(f"/api/projects/{pid}", {"name": "v2"}, token=owner.token, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert etag_version(r) == 2 and r.json()["project"]["version"] == 2
    r = api.patch(f"/api/projects/{pid}", {"name": "v3"}, token=owner.token, headers={"If-Match": '"9", "2"'})
    assert r.status_code == 200 and etag_version(r) == 3, r.text
    r = api.patch(f"/api/projects/{pid}", {"name": "v4"}, token=owner.token, headers={"If-Match": "*"})
    assert r.status_code == 200 and etag_version(r) == 4, r.text

    # stale, or weak (If-Match compares strongly, RFC 9110 §13.1.1), or a tag
    # this API never gave: 412 version_conflict, nothing changed (with or
    # without fields)
    before = snapshot(pid)
    for stale in ('"1"', '"3"', 'W/"4"', '"5"', '"9223372036854775807"', '"abc"', '""', '"04"', '"1", "2"'):
        for body in ({"name": "stale", "state": "done"}, {}):
            r = api.patch(f"/api/projects/{pid}", body, token=owner.token, headers={"If-Match": stale})
            assert_error(r, 412, "version_conflict")
    assert snapshot(pid) == before

    # not the RFC's syntax: 400, nothing changed
    for bad in ("4", '"4', '4"', "W/4", "**", '* , "4"', '"4" "5"', ",", 'W/ "4"'):
        r = api.patch(f"/api/projects/{pid}", {"name": "bad"}, token=owner.token, headers={"If-Match": bad})
        assert_error(r, 400, "invalid_header")
    assert snapshot(pid) == before

    # If-None-Match: a GET of what the client has is 304 (weak comparison); a
    # write that must not meet an existing project is 412
    for have in ('"4"', 'W/"4"', '"1", "4"', "*"):
        r = api.get(f"/api/projects/{pid}", token=owner.token, headers={"If-None-Match": have})
        assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == '"4"', (have, r.status_code)
        # RFC 9110 §8.6: a 304's Content-Length would have to be the 200's; none at all
        assert "Content-Length" not in r.headers, r.headers
    assert api.get(f"/api/projects/{pid}", token=owner.token, headers={"If-None-Match": '"3"'}).status_code == 200
    assert_error(api.patch(f"/api/projects/{pid}", {"name": "x"}, token=owner.token, headers={"If-None-Match": "*"}),
                 412, "version_conflict")

    # DELETE honours If-Match like PATCH (the case: a stale version
    # expected, the project must stay)
    for stale in ('"1"', '"999"', 'W/"4"'):
        assert_error(api.delete(f"/api/projects/{pid}", token=owner.token, headers={"If-Match": stale}), 412,
                     "version_conflict")
    assert_error(api.delete(f"/api/projects/{pid}", token=owner.token, headers={"If-Match": "junk"}), 400,
                 "invalid_header")
    assert snapshot(pid) == before

    # an empty PATCH changes nothing and bumps no version
    r = api.patch(f"/api/projects/{pid}", {}, token=owner.token)
    assert r.status_code == 200 and etag_version(r) == 4
    assert snapshot(pid) == before

    # If-Match on a project that is gone: 404, not 412
    r = api.delete(f"/api/projects/{pid}", token=owner.token)
    # RFC 9110 §8.6: a 204 has no Content-Length
    assert r.status_code == 204 and "Content-Length" not in r.headers, r.headers
    r = api.patch(f"/api/projects/{pid}", {"name": "x"}, token=owner.token, headers={"If-Match": '"4"'})
    assert_error(r, 404, "not_found")


# --- internal notes and unknown fields ---------------------------------------------------------


def test_internal_notes_are_admin_only(api, owner, admin):
    pid = create_project(api, owner)["id"]
    r = api.patch(f"/api/projects/{pid}", {"internal_notes": "secret: risky client"}, token=admin.token)
    assert r.status_code == 200 and r.json()["project"]["internal_notes"] == "secret: risky client"
    before = snapshot(pid)

    # the owner may not set them, not even alongside a permitted change
    for body in ({"internal_notes": "mine now"}, {"name": "also renamed", "internal_notes": ""},
                 {"internal_notes": "secret: risky client"}):
        err = assert_error(api.patch(f"/api/projects/{pid}", body, token=owner.token), 403, "forbidden")
        assert err["field"] == "internal_notes"
    assert snapshot(pid) == before

    # they appear only in responses to admins
    for path in (f"/api/projects/{pid}", "/api/projects"):
        r = api.get(path, token=owner.token)
        assert r.status_code == 200 and "internal_notes" not in r.text and "risky client" not in r.text
    r = api.patch(f"/api/projects/{pid}", {"state": "on_hold"}, token=owner.token)
    assert r.status_code == 200 and "internal_notes" not in r.text and "risky client" not in r.text
    assert r.json()["project"]["state"] == "on_hold"
    assert api.patch("/api/accounts/me", {"primary_project_id": pid}, token=owner.token).status_code == 200
    r = api.get("/api/projects/primary", token=owner.token)
    assert r.status_code == 200 and r.json()["project"]["id"] == pid and "risky client" not in r.text
    assert api.patch("/api/accounts/me", {"primary_project_id": None}, token=owner.token).status_code == 200

    r = api.get(f"/api/projects/{pid}", token=admin.token)
    assert r.json()["project"]["internal_notes"] == "secret: risky client"
    r = api.get(f"/api/projects?owner_id={owner.id}&limit=100", token=admin.token)
    listed = [p for p in r.json()["projects"] if p["id"] == pid]
    assert len(listed) == 1 and listed[0]["internal_notes"] == "secret: risky client"

    # notes survive an owner's change and can be cleared by an admin
    r = api.patch(f"/api/projects/{pid}", {"internal_notes": ""}, token=admin.token)
    assert r.status_code == 200 and r.json()["project"]["internal_notes"] == ""
    assert stored(pid, "internal_notes") == ""


@pytest.mark.parametrize("field", ["owner_id", "id", "version", "updated_at", "Name", "name ", "notes", "\u00e9"])
def test_unknown_fields_are_refused(api, owner, admin, field):
    pid = create_project(api, owner)["id"]
    before = snapshot(pid)
    for user in (owner, admin):
        r = api.patch(f"/api/projects/{pid}", {"name": "changed", field: 1}, token=user.token)
        assert_error(r, 422, "unknown_field")
    assert snapshot(pid) == before


# --- pagination ------------------------------------------------------------------------------


def test_pagination_each_project_exactly_once_while_others_are_created(api, make_user):
    user = make_user(display_name="Pager")
    existing = [create_project(api, user)["id"] for _ in range(23)]
    stop = threading.Event()
    created, errors = [], []

    def keep_creating():
        client = Api(BASE_URL)
        try:
            while not stop.is_set() and len(created) < 60:
                created.append(create_project(client, user)["id"])
        except Exception as e:  # reported below, in the test's own thread
            errors.append(e)

    creator = threading.Thread(target=keep_creating)
    creator.start()
    try:
        wait_until(lambda: created, timeout=20, message="the first concurrent insert")
        seen, cursor, pages = [], None, 0
        while True:
            q = "limit=4" + (f"&cursor={cursor}" if cursor else "")
            r = api.get(f"/api/projects?{q}", token=user.token)
            assert r.status_code == 200, r.text
            body = r.json()
            assert 0 < len(body["projects"]) <= 4 or body["next_cursor"] is None
            seen += [p["id"] for p in body["projects"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None or pages >= 50:
                break
            assert isinstance(cursor, str) and cursor and not cursor.isdigit()
            assert cursor not in {str(i) for i in seen}
    finally:
        stop.set()
        creator.join(60)
    assert not errors, errors
    assert len(seen) == len(set(seen)), f"a project came twice: {seen}"
    assert seen == sorted(seen)
    assert set(existing) <= set(seen), set(existing) - set(seen)
    assert set(seen) <= set(existing) | set(created)
    # and afterwards: exactly what is stored, once each
    ids, _ = list_all_pages(api, user.token, limit=7)
    assert ids == owned_ids(user.id) == sorted(set(existing) | set(created))


def test_pagination_admin_all_and_owner_id(api, admin, make_user):
    a, b = make_user(display_name="A"), make_user(display_name="B")
    a_ids = [create_project(api, a)["id"] for _ in range(5)]
    b_ids = [create_project(api, b)["id"] for _ in range(3)]
    ids, pages = list_all_pages(api, admin.token, f"owner_id={a.id}", limit=2)
    assert ids == a_ids and pages == 3
    ids, _ = list_all_pages(api, admin.token, f"owner_id={b.id}")
    assert ids == b_ids
    ids, _ = list_all_pages(api, admin.token, "all=true", limit=100)
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    assert set(a_ids + b_ids) <= set(ids)
    assert len(ids) >= int(sql("SELECT COUNT(*) FROM projects WHERE id <= %d" % max(b_ids), database="projects")[0][0])
    ids, _ = list_all_pages(api, admin.token, f"owner_id={a.id + b.id + 10**6}")
    assert ids == []
    assert_error(api.get(f"/api/projects?all=true&owner_id={a.id}", token=admin.token), 400, "invalid_parameter")
    # non-admins: 403 for another's, their own, and everyone's
    for q in (f"owner_id={b.id}", f"owner_id={a.id}", "all=true", "all=1"):
        assert_error(api.get(f"/api/projects?{q}", token=a.token), 403, "forbidden")


@pytest.mark.parametrize("query,field", [
    ("cursor=zzz", "cursor"), ("cursor=", "cursor"), ("cursor=MTIz", "cursor"), ("cursor=Yw", "cursor"),
    ("cursor=Yy0x", "cursor"), ("cursor=%ff%fe", "cursor"), ("cursor=" + "Y" * 101, "cursor"),
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=-1", "limit"), ("limit=abc", "limit"),
    ("limit=1.5", "limit"), ("limit=99999999999999999999", "limit"), ("limit=10&limit=20", "limit"),
    ("owner_id=0", "owner_id"), ("owner_id=-1", "owner_id"), ("owner_id=abc", "owner_id"),
    ("owner_id=9223372036854775808", "owner_id"), ("all=yes", "all"),
])
def test_bad_list_parameters(api, admin, query, field):
    err = assert_error(api.get(f"/api/projects?{query}", token=admin.token), 400, "invalid_parameter")
    assert err["field"] == field


def test_limit_bounds(api, make_user):
    user = make_user(display_name="Limits")
    ids = [create_project(api, user)["id"] for _ in range(3)]
    r = api.get("/api/projects?limit=100", token=user.token)
    assert [p["id"] for p in r.json()["projects"]] == ids and r.json()["next_cursor"] is None
    r = api.get("/api/projects?limit=1", token=user.token)
    assert [p["id"] for p in r.json()["projects"]] == ids[:1] and r.json()["next_cursor"]
    r = api.get("/api/projects", token=user.token)  # default limit
    assert [p["id"] for p in r.json()["projects"]] == ids


# --- the primary project ---------------------------------------------------------------------


def test_primary_project_flows(api, make_user, admin):
    user, stranger = make_user(display_name="Primary"), make_user(display_name="Stranger")
    assert_error(api.get("/api/projects/primary", token=user.token), 404, "no_primary_project")
    mine, second = create_project(api, user, name="mine"), create_project(api, user, name="second")
    theirs = create_project(api, stranger, name="theirs")

    r = api.patch("/api/accounts/me", {"primary_project_id": mine["id"]}, token=user.token)
    assert r.status_code == 200 and r.json()["user"]["primary_project_id"] == mine["id"], r.text
    r = api.get("/api/projects/primary", token=user.token)
    assert r.status_code == 200, r.text
    assert r.json()["project"]["id"] == mine["id"] and r.json()["project"]["name"] == "mine"
    assert r.headers.get("X-Request-Id")

    # another user's project, or none at all: 422 project_not_found, pointer unchanged
    for pid in (theirs["id"], 999999999999):
        r = api.patch("/api/accounts/me", {"primary_project_id": pid}, token=user.token)
        err = assert_error(r, 422, "project_not_found")
        assert err["field"] == "primary_project_id"
        assert primary_of(user.id) == mine["id"]
    # and nothing else in the same request was applied
    r = api.patch("/api/accounts/me", {"primary_project_id": theirs["id"], "display_name": "Changed"},
                  token=user.token)
    assert_error(r, 422, "project_not_found")
    assert sql(f"SELECT display_name FROM users WHERE id = {user.id}", database="accounts") == [["Primary"]]
    # bad shapes are refused by accounts before any invocation
    for bad in (0, -1, "1", 1.5, True, 2**63, [1], {"id": 1}):
        r = api.patch("/api/accounts/me", {"primary_project_id": bad}, token=user.token)
        assert_error(r, 422, "invalid_field")
        assert primary_of(user.id) == mine["id"]

    # deleting a project that is not the primary leaves it alone
    assert api.delete(f"/api/projects/{second['id']}", token=user.token).status_code == 204
    assert primary_of(user.id) == mine["id"]
    # deleting the primary one clears it (through accounts)
    assert api.delete(f"/api/projects/{mine['id']}", token=user.token).status_code == 204
    assert primary_of(user.id) is None
    assert api.get("/api/accounts/me", token=user.token).json()["user"]["primary_project_id"] is None
    assert_error(api.get("/api/projects/primary", token=user.token), 404, "no_primary_project")

    # an admin deleting it clears the owner's pointer too
    third = create_project(api, user, name="third")
    assert api.patch("/api/accounts/me", {"primary_project_id": third["id"]}, token=user.token).status_code == 200
    assert api.delete(f"/api/projects/{third['id']}", token=admin.token).status_code == 204
    assert primary_of(user.id) is None
    assert_error(api.get("/api/projects/primary", token=user.token), 404, "no_primary_project")

    # null clears it
    fourth = create_project(api, user, name="fourth")
    assert api.patch("/api/accounts/me", {"primary_project_id": fourth["id"]}, token=user.token).status_code == 200
    assert api.get("/api/projects/primary", token=user.token).status_code == 200
    r = api.patch("/api/accounts/me", {"primary_project_id": None}, token=user.token)
    assert r.status_code == 200 and r.json()["user"]["primary_project_id"] is None
    assert primary_of(user.id) is None
    assert_error(api.get("/api/projects/primary", token=user.token), 404, "no_primary_project")
    # the stranger's primary was never touched
    assert primary_of(stranger.id) is None


def test_primary_pointing_at_a_vanished_project(api, make_user):
    """If the clear on delete was missed (accounts unreachable), the pointer
    left behind reads as no primary project, not as an error."""
    user = make_user(display_name="Dangling")
    pid = create_project(api, user)["id"]
    assert api.patch("/api/accounts/me", {"primary_project_id": pid}, token=user.token).status_code == 200
    sql(f"DELETE FROM projects WHERE id = {pid}", database="projects")
    assert_error(api.get("/api/projects/primary", token=user.token), 404, "no_primary_project")
    assert primary_of(user.id) == pid


# --- bad input -------------------------------------------------------------------------------

WRONG_TYPES = [5, 1.5, True, [], {}, ["x"], {"a": "b"}]
BAD_FIELDS = (
    [("name", v) for v in WRONG_TYPES + [None, "", "x" * 201, "\u00e9" * 201, "a\u0000b"]]
    + [("description", v) for v in WRONG_TYPES + [None, "d" * 10001, "\u0000"]]
    + [("state", v) for v in WRONG_TYPES + [None, "", "ACTIVE", "archived", " active", "active ", "on hold",
                                            "planning\u0000"]]
)


@pytest.mark.parametrize("field,value", BAD_FIELDS, ids=[f"{f}-{str(v)[:12]}" for f, v in BAD_FIELDS])
def test_bad_fields_create_and_update(api, owner, field, value):
    pid = create_project(api, owner)["id"]
    before, mine = snapshot(pid), owned_ids(owner.id)
    body = {"name": "valid"} if field != "name" else {}
    body[field] = value
    err = assert_error(api.post("/api/projects", body, token=owner.token), 422, "invalid_field")
    assert err["field"] == field
    err = assert_error(api.patch(f"/api/projects/{pid}", {field: value}, token=owner.token), 422, "invalid_field")
    assert err["field"] == field
    assert snapshot(pid) == before and owned_ids(owner.id) == mine


@pytest.mark.parametrize("value", WRONG_TYPES + [None, "n" * 10001, "a\u0000"], ids=str)
def test_bad_internal_notes(api, owner, admin, value):
    pid = create_project(api, owner)["id"]
    before = snapshot(pid)
    err = assert_error(api.patch(f"/api/projects/{pid}", {"internal_notes": value}, token=admin.token), 422,
                       "invalid_field")
    assert err["field"] == "internal_notes"
    assert snapshot(pid) == before


def test_length_limits_are_in_characters(api, owner, admin):
    name, desc, notes = "\U0001F680" * 200, "\u00e9" * 10000, "n" * 10000
    r = api.post("/api/projects", {"name": name, "description": desc}, token=owner.token)
    assert r.status_code == 201, r.text[:300]
    pid = r.json()["project"]["id"]
    assert stored(pid, "name") == name and stored(pid, "description") == desc
    r = api.patch(f"/api/projects/{pid}", {"internal_notes": notes}, token=admin.token)
    assert r.status_code == 200 and stored(pid, "internal_notes") == notes
    r = api.patch(f"/api/projects/{pid}", {"name": "x", "description": ""}, token=owner.token)
    assert r.status_code == 200 and r.json()["project"]["description"] == ""


@pytest.mark.parametrize("raw", [
    b'{"name":"\xff"}', b'{"name":"\xc3"}', b'{"name":"\xc0\xaf"}', b'{"name":"\xed\xa0\x80"}',
    b'{"name":"\xf4\x90\x80\x80"}', b'{"name":"ok","description":"\xe2\x82"}', b'{"\xff":"x"}',
    b'{"name":"\\ud800"}', b'{"name":"x"', b'{"name":"x",}', b"{name: 'x'}", b"", b"null", b"[]", b'"x"',
    b'{"name":"x"}{"name":"y"}', b"[" * 100 + b"]" * 100,
], ids=lambda b: repr(b)[:30])
def test_malformed_bodies(api, owner, raw):
    pid = create_project(api, owner)["id"]
    before, mine = snapshot(pid), owned_ids(owner.id)
    headers = {"Content-Type": "application/json"}
    for method, path in (("POST", "/api/projects"), ("PATCH", f"/api/projects/{pid}")):
        r = api.request(method, path, token=owner.token, data=raw, headers=headers)
        assert_error(r, 400, "invalid_json")
    assert snapshot(pid) == before and owned_ids(owner.id) == mine


def test_wrong_content_type_and_size(api, owner):
    pid = create_project(api, owner)["id"]
    before, mine = snapshot(pid), owned_ids(owner.id)
    for ct in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
        for method, path in (("POST", "/api/projects"), ("PATCH", f"/api/projects/{pid}")):
            r = api.request(method, path, token=owner.token, data=b'{"name":"x"}', headers={"Content-Type": ct})
            assert_error(r, 415, "unsupported_media_type")
    big = b'{"name":"x","description":"' + b"d" * (1024 * 1024 + 10) + b'"}'
    r = api.request("POST", "/api/projects", token=owner.token, data=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")
    assert snapshot(pid) == before and owned_ids(owner.id) == mine


SQLISH = [
    "Robert'); DROP TABLE projects;--",
    "x' OR '1'='1",
    '"; DELETE FROM projects WHERE "1"="1',
    "back\\slash \\' \\\" \\0 \\n",
    "100% _done_ LIKE '%'",
    "/* comment */ -- dash # hash ; semicolon",
    "\t tab \r\n newline \u2028 \U0001F600 \u00e9\u0301 \ufeff",
    "0x41 CHAR(65) UNHEX('41') `ticks`",
]


@pytest.mark.parametrize("text", SQLISH, ids=range(len(SQLISH)))
def test_sql_metacharacters_are_stored_verbatim(api, owner, admin, text):
    r = api.post("/api/projects", {"name": text, "description": text * 3}, token=owner.token)
    assert r.status_code == 201, r.text
    p = r.json()["project"]
    assert p["name"] == text and p["description"] == text * 3
    pid = p["id"]
    assert stored(pid, "name") == text and stored(pid, "description") == text * 3
    r = api.patch(f"/api/projects/{pid}", {"internal_notes": text}, token=admin.token)
    assert r.status_code == 200 and r.json()["project"]["internal_notes"] == text
    assert stored(pid, "internal_notes") == text
    r = api.patch(f"/api/projects/{pid}", {"description": text[::-1]}, token=owner.token)
    assert r.status_code == 200 and stored(pid, "description") == text[::-1]
    r = api.get(f"/api/projects/{pid}", token=owner.token)
    assert r.json()["project"]["name"] == text
    ids, _ = list_all_pages(api, owner.token)
    assert pid in ids
    assert sql("SHOW TABLES", database="projects")  # still there


BAD_IDS = ["-1", "0", "-0", "00", "01", "9223372036854775808", "18446744073709551616", "99999999999999999999",
           "abc", "1.5", "1e3", "0x10", "+1", "%201", "1%20", "1;DROP", "%2d1", "1abc", "\u0661"]


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_bad_ids(api, owner, admin, bad_id):
    pid = create_project(api, owner)["id"]
    before = snapshot(pid)
    for method, body in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
        r = api.request(method, f"/api/projects/{bad_id}", token=admin.token, json_body=body)
        err = assert_error(r, 400, "invalid_parameter")
        assert err["field"] == "id"
    assert snapshot(pid) == before


def test_ids_that_do_not_exist(api, owner):
    for pid in ("9223372036854775807", "999999999"):
        for method, body in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
            assert_error(api.request(method, f"/api/projects/{pid}", token=owner.token, json_body=body), 404,
                         "not_found")


def test_unknown_paths_and_methods(api, owner):
    pid = create_project(api, owner)["id"]
    r = api.request("PUT", f"/api/projects/{pid}", token=owner.token, json_body={"name": "x"})
    assert_error(r, 405, "method_not_allowed")
    assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    assert_error(api.request("DELETE", "/api/projects", token=owner.token), 405, "method_not_allowed")
    assert_error(api.get(f"/api/projects/{pid}/extra", token=owner.token), 404, "not_found")
    # the test routes do not exist on the public listener
    assert_error(api.get("/api/projects/_test/recurse", token=owner.token), 404, "not_found")
    assert_error(api.get("/api/projects/_test/fanout"), 404, "not_found")
