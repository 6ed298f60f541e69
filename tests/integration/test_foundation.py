"""The foundation (issue 2), request by request: health, routing (404, 405
with Allow), body limits (the services' 1 MiB, nginx's 2 MiB), the JSON
parser's refusals, content types, internal-only pages, request ids and the
X-Invoke-* headers a public client may not set. Every refusal is checked to
have changed nothing. The pool (scale to zero, crashes, concurrency, SIGHUP)
is in test_pool.py, MariaDB and migrations in test_database.py."""
import json
import uuid

import pytest

from conftest import SERVICES, assert_error, log_lines, sql, unique_email, wait_until

JSON = {"Content-Type": "application/json"}
SERVICE_LIMIT = 1024 * 1024       # PL_MAX_BODY_BYTES' default
NGINX_LIMIT = 2 * 1024 * 1024     # client_max_body_size 2m


def json_body(size):
    """A JSON object of exactly `size` bytes."""
    head, tail = b'{"pad":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def user_count(email):
    return int(sql(f"SELECT COUNT(*) FROM users WHERE email = '{email}'", "accounts")[0][0])


def signup_raw(api, email, data, headers=JSON):
    return api.request("POST", "/api/accounts/signup", data=data, headers=headers)


# --- health -----------------------------------------------------------------------


@pytest.mark.parametrize("svc", SERVICES)
def test_health_of_each_service(api, svc):
    r = api.get(f"/api/{svc}/health")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["status"] == "ok" and body["service"] == svc and body["database"] == "ok", body


# --- routing --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/api/accounts/nope", "/api/accounts/users/1/nope", "/api/accounts/me/x", "/api/projects/1/2/3",
    "/api/chat/nope", "/api/accounts/.well-known/nope",
])
def test_unknown_route_in_a_service_is_json_404(api, path):
    assert_error(api.get(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/nosuchservice/x", "/api/nosuchservice", "/api", "/api/"])
def test_unknown_api_prefix_is_json_404_from_nginx(api, path):
    r = api.get(path)
    assert_error(r, 404, "not_found")
    assert r.headers.get("X-Request-Id")


@pytest.mark.parametrize("method,path,allow", [
    ("DELETE", "/api/accounts/login", {"POST"}),
    ("GET", "/api/accounts/signup", {"POST"}),
    ("PUT", "/api/accounts/me", {"GET", "HEAD", "PATCH"}),
    ("POST", "/api/accounts/health", {"GET", "HEAD"}),
    ("POST", "/api/chat/health", {"GET", "HEAD"}),
    ("POST", "/api/accounts/.well-known/jwks.json", {"GET", "HEAD"}),
])
def test_wrong_method_is_405_with_allow(api, method, path, allow):
    r = api.request(method, path, data=b"{}", headers=JSON)
    assert_error(r, 405, "method_not_allowed")
    assert {m.strip() for m in r.headers["Allow"].split(",")} == allow


@pytest.mark.parametrize("path,auth", [("/api/accounts/health", False), ("/api/projects/health", False),
                                       ("/api/chat/health", False), ("/api/accounts/.well-known/jwks.json", False),
                                       ("/api/accounts/me", True), ("/api/projects", True)])
def test_head_answers_like_get_without_the_body(api, make_user, path, auth):
    """RFC 9110 §9.3.2: HEAD on any GET route, the same status and headers, no body."""
    token = make_user().token if auth else None
    plain = {"Accept-Encoding": "identity"}  # a gzipped GET would have no Content-Length to compare
    get, head = api.get(path, token=token, headers=plain), api.request("HEAD", path, token=token, headers=plain)
    assert head.status_code == get.status_code == 200, (head.status_code, get.status_code)
    assert head.content == b""
    for h in ("Content-Type", "Content-Length", "Cache-Control"):
        assert head.headers.get(h) == get.headers.get(h), h
    assert get.headers["Content-Length"] == str(len(get.content))


def test_405_is_answered_before_any_body_or_token_check(api):
    """The dispatcher's order: route, then method, and only then auth and body."""
    r = api.request("PUT", "/api/accounts/me", data=b"not json", headers={"Content-Type": "text/plain"})
    assert_error(r, 405, "method_not_allowed")


# --- body limits ----------------------------------------------------------------------


def test_service_body_limit_is_one_mib(internal):
    """The echo test route parses and returns the body: exactly at the limit
    it passes, one byte over it is 413 JSON from the service itself."""
    at = json_body(SERVICE_LIMIT)
    r = internal.request("POST", "/api/accounts/_test/echo", data=at, headers=JSON, timeout=30)
    assert r.status_code == 200, r.text[:200]
    assert r.content == at
    r = internal.request("POST", "/api/accounts/_test/echo", data=json_body(SERVICE_LIMIT + 1), headers=JSON,
                         timeout=30)
    err = assert_error(r, 413, "payload_too_large")
    assert str(SERVICE_LIMIT) in err["message"]  # the service's message, not nginx's
    # the worker that refused it is fine
    assert internal.request("POST", "/api/accounts/_test/echo", data=b'{"a":1}', headers=JSON).json() == {"a": 1}


@pytest.mark.parametrize("size,who", [
    (SERVICE_LIMIT + 1, "service"), (NGINX_LIMIT, "service"), (NGINX_LIMIT + 1, "nginx"), (3 * SERVICE_LIMIT, "nginx"),
])
def test_public_body_limits_and_nothing_is_created(api, size, who):
    """Between 1 and 2 MiB the service refuses the body; above 2 MiB nginx
    does, before any pool sees it. Either way JSON, and no account."""
    email = unique_email("big")
    padding = size - len(json.dumps({"email": email, "password": "p" * 12, "display_name": ""}).encode())
    body = json.dumps({"email": email, "password": "p" * 12, "display_name": "d" * padding}).encode()
    assert len(body) == size
    r = signup_raw(api, email, body)
    err = assert_error(r, 413, "payload_too_large")
    assert r.headers.get("X-Request-Id")
    assert (str(SERVICE_LIMIT) in err["message"]) == (who == "service"), err
    assert user_count(email) == 0


# --- JSON -------------------------------------------------------------------------------

MALFORMED = {
    "truncated": b'{"a": 1',
    "truncated string": b'{"a": "x',
    "trailing garbage": b'{"a": 1} x',
    "two values": b'{"a": 1}{"a": 2}',
    "trailing comma": b'{"a": 1,}',
    "single quotes": b"{'a': 1}",
    "bare key": b"{a: 1}",
    "duplicate keys": b'{"a": 1, "a": 2}',
    "nested duplicate keys": b'{"a": [{"b": 1}, {"b": 2, "b": 3}]}',
    "deep nesting": b'{"a":' * 33 + b"1" + b"}" * 33,
    "very deep nesting": b"[" * 10000 + b"]" * 10000,
    "bad UTF-8": b'{"a": "\xff"}',
    "overlong UTF-8": b'{"a": "\xc0\xaf"}',
    "UTF-8 surrogate": b'{"a": "\xed\xa0\x80"}',
    "truncated UTF-8": b'{"a": "\xe2\x82"}',
    "bad UTF-8 in a key": b'{"\xff": 1}',
    "unpaired surrogate escape": b'{"a": "\\ud800"}',
    "raw NUL": b'{"a": "\x00"}',
    "raw control char": b'{"a": "\x01"}',
    "NaN": b'{"a": NaN}',
    "leading zero": b'{"a": 01}',
    "BOM": b'\xef\xbb\xbf{"a": 1}',
    "empty": b"",
    "whitespace": b"   ",
    "null": b"null",
    "array": b"[1]",
    "string": b'"x"',
    "number": b"1",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_json_is_400_invalid_json(internal, raw):
    r = internal.request("POST", "/api/accounts/_test/echo", data=raw, headers=JSON)
    assert_error(r, 400, "invalid_json")


def test_nesting_up_to_the_limit_is_accepted(internal):
    ok = b'{"a":' * 31 + b"1" + b"}" * 31  # 31 objects: within PL_JSON_MAX_DEPTH (32)
    r = internal.request("POST", "/api/accounts/_test/echo", data=ok, headers=JSON)
    assert r.status_code == 200 and r.content == ok


@pytest.mark.parametrize("name", ["truncated", "trailing garbage", "single quotes", "duplicate keys", "deep nesting",
                                  "bad UTF-8", "raw NUL", "empty", "array"])
def test_malformed_json_on_a_real_endpoint_changes_nothing(api, name):
    email = unique_email("badjson")
    good = json.dumps({"email": email, "password": "p" * 12, "display_name": "X"}).encode()
    raw = {
        "truncated": good[:-1],
        "trailing garbage": good + b" x",
        "single quotes": good.replace(b'"', b"'"),
        "duplicate keys": good[:-1] + b', "email": "' + email.encode() + b'"}',
        "deep nesting": good[:-1] + b', "x":' + b"[" * 40 + b"]" * 40 + b"}",
        "bad UTF-8": good.replace(b'"X"', b'"\xff"'),
        "raw NUL": good.replace(b'"X"', b'"X\x00"'),
        "empty": b"",
        "array": b"[" + good + b"]",
    }[name]
    assert_error(signup_raw(api, email, raw), 400, "invalid_json")
    assert user_count(email) == 0


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                   "application/jsonx", "text/json", None])
def test_non_json_content_type_is_415(api, internal, ctype):
    email = unique_email("ctype")
    body = json.dumps({"email": email, "password": "p" * 12, "display_name": "X"}).encode()
    headers = {"Content-Type": ctype} if ctype else {}
    assert_error(signup_raw(api, email, body, headers), 415, "unsupported_media_type")
    assert user_count(email) == 0
    r = internal.request("POST", "/api/accounts/_test/echo", data=b'{"a":1}', headers=headers)
    assert_error(r, 415, "unsupported_media_type")


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_are_accepted(internal, ctype):
    r = internal.request("POST", "/api/accounts/_test/echo", data=b'{"a":[1,"\xc3\xa9"]}',
                         headers={"Content-Type": ctype})
    assert r.status_code == 200 and r.json() == {"a": [1, "\u00e9"]}


# --- internal-only pages ----------------------------------------------------------------


@pytest.mark.parametrize("svc", SERVICES)
def test_status_is_internal_only(api, internal, svc):
    for page in ("_status", "_metrics", "_test/sleep?ms=0"):
        r = api.get(f"/api/{svc}/{page}")
        assert_error(r, 404, "not_found")
        assert r.headers.get("X-Request-Id")
    assert_error(api.request("POST", f"/api/{svc}/_test/echo", data=b"{}", headers=JSON), 404, "not_found")
    r = internal.get(f"/api/{svc}/_status")
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["service"] == svc and st["mode"] == "ondemand" and st["max_children"] >= 1
    counters = {"requests", "spawns", "idle_exits", "crashes", "max_children_reached", "peak_workers"}
    assert counters <= set(st["counters"])
    # the master answers (PL_STATUS_LISTEN): the figures are the scoreboard's, no worker is needed
    assert {"starting", "idle", "busy", "waiting", "exiting", "total"} <= set(st["workers"])
    r = internal.get(f"/api/{svc}/_metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert internal.get(f"/api/{svc}/_test/sleep?ms=0").json()["slept_ms"] == 0


@pytest.mark.parametrize("svc", SERVICES)
def test_admin_status_is_the_scoreboard_for_admins_only(api, admin, make_user, svc):
    """The System page's route: _status's JSON on the public listener, to an admin's token alone."""
    r = api.get(f"/api/{svc}/admin/status", token=admin.token)
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["service"] == svc and {"workers", "counters", "handlers", "worker_list", "uptime_s"} <= set(st)
    assert st["workers"]["busy"] >= 1 and st["counters"]["requests"] >= 1
    bounds = st["bucket_bounds_us"]
    assert bounds[0] == 100 and bounds[-1] is None and bounds[:-1] == sorted(bounds[:-1])
    for h in st["handlers"].values():  # the latency histogram the System page reads percentiles from
        assert len(h["buckets"]) == len(bounds) and all(n >= 0 for n in h["buckets"])
    assert_error(api.get(f"/api/{svc}/admin/status", token=make_user().token), 403, "forbidden")
    assert_error(api.get(f"/api/{svc}/admin/status"), 401, "missing_token")


def test_internal_listener_serves_only_the_api(internal):
    assert_error(internal.get("/"), 404, "not_found")
    assert_error(internal.get("/web/app"), 404, "not_found")


def test_nginx_json_errors_are_json_whatever_the_extension(api, internal):
    assert_error(api.get("/api/nope.html"), 404, "not_found")
    assert_error(api.get("/api/accounts/_status.html"), 404, "not_found")
    assert_error(internal.get("/index.html"), 404, "not_found")


# --- request ids ------------------------------------------------------------------------


def every_kind_of_response(api):
    """(what, response) for each way a request can end on the public listener."""
    big = json_body(NGINX_LIMIT + 10)
    return [
        ("service 200", api.get("/api/accounts/health")),
        ("JWKS", api.get("/api/accounts/.well-known/jwks.json")),
        ("service 404", api.get("/api/accounts/nope")),
        ("nginx 404", api.get("/api/nowhere")),
        ("internal page 404", api.get("/api/accounts/_status")),
        ("405", api.request("DELETE", "/api/accounts/login")),
        ("401", api.get("/api/accounts/me")),
        ("400", signup_raw(api, "x", b"{")),
        ("415", signup_raw(api, "x", b"{}", {"Content-Type": "text/plain"})),
        ("service 413", signup_raw(api, "x", json_body(SERVICE_LIMIT + 1))),
        ("nginx 413", signup_raw(api, "x", big)),
        ("422", api.post("/api/accounts/signup", {"email": "x"})),
        ("static", api.get("/")),
        ("204", api.post("/api/accounts/logout", {"refresh_token": "nope"})),
    ]


def test_every_response_has_a_request_id(api):
    ids = []
    for what, r in every_kind_of_response(api):
        rid = r.headers.get("X-Request-Id")
        assert rid and 16 <= len(rid) <= 64, (what, r.status_code, dict(r.headers))
        ids.append(rid)
    assert len(set(ids)) == len(ids)  # one per request


def test_public_listener_ignores_a_client_request_id(api):
    forged = f"forged-{uuid.uuid4().hex[:12]}"
    r = api.get("/api/accounts/health", headers={"X-Request-Id": forged})
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]
    assert rid != forged
    # the service logged the id it answered with, never the client's
    line = wait_until(lambda: [ln for ln in log_lines("accounts") if ln.get("request_id") == rid] or None,
                      timeout=10, message="the request's log line")
    assert line[0]["path"] == "/api/accounts/health" and line[0]["status"] == 200
    assert not [ln for ln in log_lines("accounts") if ln.get("request_id") == forged]


def test_internal_listener_keeps_the_callers_request_id(internal):
    rid = f"tree-{uuid.uuid4().hex[:12]}"
    r = internal.get("/api/projects/health", headers={"X-Request-Id": rid})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == rid
    wait_until(lambda: [ln for ln in log_lines("projects") if ln.get("request_id") == rid] or None, timeout=10,
               message="the request's log line")
    # a malformed one is replaced, not passed on
    r = internal.get("/api/projects/health", headers={"X-Request-Id": "bad id\twith spaces"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] != "bad id\twith spaces"


# --- X-Invoke-* headers ------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"X-Invoke-Depth": "99"}, {"X-Invoke-Budget": "-1"}, {"X-Invoke-Depth": "abc"},
    {"X-Invoke-Depth": "9", "X-Invoke-Budget": "0", "X-Invoke-Spent": "1000"},
])
def test_forged_invoke_headers_are_ignored_on_the_public_listener(api, internal, headers):
    for svc in SERVICES:
        r = api.get(f"/api/{svc}/health", headers=headers)
        assert r.status_code == 200, r.text
        assert not any(h.lower().startswith("x-invoke") for h in r.headers)
        # the same headers mean something on the internal listener, so the
        # public answer above is not an accident
        assert internal.get(f"/api/{svc}/health", headers=headers).status_code in (400, 508)
