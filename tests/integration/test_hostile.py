"""Hostile input through nginx (issue 8): oversized and slow requests, broken
and tricky JSON, numbers out of range, NUL bytes and bad UTF-8, path
traversal, method override and forged internal headers, and access tokens in
every malformed form. Each gets a JSON error with the right status and code
and changes nothing in the database; SQL metacharacters are stored verbatim.

Requests that `requests` would refuse or normalize go over a raw socket."""
import hashlib
import hmac
import json
import re
import socket
import time
import uuid

import nacl.signing
import pytest

from conftest import (BASE_URL, INTERNAL_URL, VAR, assert_error, b64url, b64url_decode, jwt_segment, log_lines,
                      pool_status, sql, wait_until)

HOST, PORT = re.match(r"http://([^:/]+):(\d+)", BASE_URL).groups()
PORT = int(PORT)
IPORT = int(re.match(r"http://[^:/]+:(\d+)", INTERNAL_URL).group(1))


# --- helpers ------------------------------------------------------------------------------


def raw_http(data, port=PORT, timeout=10):
    """Sends raw bytes as one request (Connection: close); returns (status, headers, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def raw_request(method, target, headers=(), body=b"", token=None, port=PORT):
    head = [f"{method} ".encode() + (target if isinstance(target, bytes) else target.encode()) + b" HTTP/1.1",
            b"Host: 127.0.0.1"]
    if token:
        head.append(b"Authorization: Bearer " + token.encode())
    head += [h if isinstance(h, bytes) else h.encode() for h in headers]
    if body:
        head.append(b"Content-Length: %d" % len(body))
    head.append(b"Connection: close")
    return raw_http(b"\r\n".join(head) + b"\r\n\r\n" + body, port=port)


def assert_raw_error(resp, status, code):
    st, headers, body = resp
    assert st == status, f"expected {status} {code}, got {st}: {body[:300]!r}"
    assert headers.get("content-type", "").startswith("application/json"), headers
    parsed = json.loads(body.decode("utf-8"))  # valid UTF-8 and valid JSON, whatever was sent
    assert set(parsed) == {"error"} and parsed["error"]["code"] == code, parsed
    assert parsed["error"]["message"]
    return parsed["error"]


def fingerprint():
    """Everything a refused request must leave alone."""
    return (sql("SELECT COUNT(*), COALESCE(SUM(version), 0), COALESCE(MAX(id), 0) FROM projects", "projects"),
            sql("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM messages", "chat"),
            sql("SELECT COUNT(*), COALESCE(MAX(updated_at), 0), SUM(disabled), SUM(role = 'admin') FROM users",
                "accounts"),
            sql("SELECT COUNT(*) FROM live_tickets", "chat"))


@pytest.fixture
def unchanged():
    """Asserts at the end of the test that the database did not change."""
    before = fingerprint()
    yield
    assert fingerprint() == before


@pytest.fixture(scope="module")
def user(make_user):
    return make_user(display_name="Hostile")


@pytest.fixture(scope="module")
def project(api, user):
    r = api.post("/api/projects", {"name": "target"}, token=user.token)
    assert r.status_code == 201, r.text
    return r.json()["project"]


# --- oversized requests ----------------------------------------------------------------------


def test_one_huge_header(unchanged):
    assert_raw_error(raw_request("GET", "/api/accounts/health", [b"X-Big: " + b"a" * 20000]), 400,
                     "header_too_large")


def test_many_headers(unchanged):
    many = [b"X-H%d: %s" % (i, b"v" * 100) for i in range(2000)]
    assert_raw_error(raw_request("GET", "/api/accounts/health", many), 400, "header_too_large")


def test_long_uri():
    assert_raw_error(raw_request("GET", "/api/accounts/health?" + "a" * 20000), 414, "uri_too_long")


def test_oversized_bodies(api, user, unchanged):
    # above the services' 1 MiB: the service refuses it; above nginx's 2 MiB: nginx does
    for size, where in ((1100 * 1024, "service"), (3 * 1024 * 1024, "nginx")):
        body = json.dumps({"name": "big", "description": "a" * size})
        r = api.request("POST", "/api/projects", token=user.token, data=body,
                        headers={"Content-Type": "application/json"})
        assert_error(r, 413, "payload_too_large")


def test_bad_content_lengths(user, unchanged):
    for cl in (b"99999999999999999999", b"-1", b"abc", b"1, 2"):
        r = raw_request("POST", "/api/projects", [b"Content-Type: application/json", b"Content-Length: " + cl],
                        token=user.token)
        assert_raw_error(r, 400, "bad_request")
    # request smuggling shape: both Content-Length and Transfer-Encoding
    r = raw_request("POST", "/api/projects", [b"Content-Type: application/json", b"Content-Length: 4",
                                              b"Transfer-Encoding: chunked"], token=user.token, body=b"0\r\n\r\n")
    assert_raw_error(r, 400, "bad_request")


# --- slow bodies ------------------------------------------------------------------------------


def test_a_trickled_body_within_limits_works(user):
    body = json.dumps({"name": "trickled " + uuid.uuid4().hex}).encode()
    head = (b"POST /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + user.token.encode() +
            b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
    with socket.create_connection((HOST, PORT), timeout=10) as s:
        s.sendall(head)
        for i in range(0, len(body), 8):
            s.sendall(body[i:i + 8])
            time.sleep(0.1)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 201"), out[:300]
    name = json.loads(body)["name"]
    assert sql(f"SELECT COUNT(*) FROM projects WHERE name = '{name}'", "projects") == [["1"]]


def test_abandoned_bodies_hold_no_worker(api, internal, user, unchanged):
    """nginx reads a whole body before it passes the request on: clients that
    stop halfway (more of them than the pool has workers) tie up no worker."""
    socks = []
    try:
        for _ in range(8):
            s = socket.create_connection((HOST, PORT), timeout=10)
            s.sendall(b"POST /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                      user.token.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                      b'{"name":"aband')
            socks.append(s)
        # and a request whose headers never end
        s = socket.create_connection((HOST, PORT), timeout=10)
        s.sendall(b"GET /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(s)
        time.sleep(0.3)
        started = time.monotonic()
        for _ in range(10):
            assert api.get("/api/projects", token=user.token).status_code == 200
        assert time.monotonic() - started < 5
        # no worker is busy (the master answers _status; a worker that has
        # just answered one of the GETs above may take a moment to say it is idle)
        wait_until(lambda: pool_status(internal, "projects")["workers"]["busy"] == 0 or None, timeout=5,
                   message="no worker held by the abandoned requests")
    finally:
        for s in socks:
            s.close()


# --- JSON -------------------------------------------------------------------------------------

BAD_JSON = [
    (b'{"name":"x"', 400, "invalid_json"),
    (b'{"name":', 400, "invalid_json"),
    (b'', 400, "invalid_json"),
    (b'{"name":"x","description":' + b'[' * 10000 + b']' * 10000 + b'}', 400, "invalid_json"),
    (b'{"name":"x","a":' + b'{"a":' * 40 + b'1' + b'}' * 40 + b'}', 400, "invalid_json"),
    (b'{"name":"x","name":"y"}', 400, "invalid_json"),
    (b'{"name":"x","state":"active","state":"done"}', 400, "invalid_json"),
    (b'{"name":"a\x00b"}', 400, "invalid_json"),
    (b'{"name":"a\xff"}', 400, "invalid_json"),
    (b'{"name":"a\xc0\xaf"}', 400, "invalid_json"),  # overlong '/'
    (b'{"name":"a\xed\xa0\x80"}', 400, "invalid_json"),  # UTF-8 encoded surrogate
    (b'{"na\xffme":"x"}', 400, "invalid_json"),
    (b'{"name":"a\\ud800"}', 400, "invalid_json"),
    (b'\xef\xbb\xbf{"name":"x"}', 400, "invalid_json"),
    (b'{"name":"x"} x', 400, "invalid_json"),
    (b'{"name":"x"}{"name":"y"}', 400, "invalid_json"),
    (b"{'name':'x'}", 400, "invalid_json"),
    (b'{"name":"x" /* c */}', 400, "invalid_json"),
    (b'{"name":"x","description":NaN}', 400, "invalid_json"),
    (b'{"name":"x","description":Infinity}', 400, "invalid_json"),
    (b'[{"name":"x"}]', 400, "invalid_json"),
    (b'null', 400, "invalid_json"),
    (b'123', 400, "invalid_json"),
    (b'"x"', 400, "invalid_json"),
    (b'{"name":"a\\u0000b"}', 422, "invalid_field"),
    (b'{"name":1}', 422, "invalid_field"),
    (b'{"name":1e400}', 422, "invalid_field"),
    (b'{"name":null}', 422, "invalid_field"),
    (b'{"name":"x","owner_id":1}', 422, "unknown_field"),
    (b'{"na\\u0000me":"x"}', 422, "unknown_field"),
    (b'{}', 422, "missing_field"),
]


@pytest.mark.parametrize("body,status,code", BAD_JSON, ids=[repr(b[:40]) for b, _, _ in BAD_JSON])
def test_bad_json_is_refused(api, user, body, status, code, unchanged):
    r = api.request("POST", "/api/projects", token=user.token, data=body,
                    headers={"Content-Type": "application/json"})
    assert_error(r, status, code)


def test_top_level_scalars_say_what_is_wrong(api, user):
    for body in (b"null", b"123", b"true"):
        r = api.request("POST", "/api/projects", token=user.token, data=body,
                        headers={"Content-Type": "application/json"})
        message = assert_error(r, 400, "invalid_json")["message"]
        assert "continue" not in message, message


@pytest.mark.parametrize("ctype", ["text/plain", "", "application/jsonx", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x"])
def test_body_must_be_json(api, user, ctype, unchanged):
    r = api.request("POST", "/api/projects", token=user.token, data=b'{"name":"x"}', headers={"Content-Type": ctype})
    assert_error(r, 415, "unsupported_media_type")


# --- numbers out of range --------------------------------------------------------------------

INT64_MAX = 2 ** 63 - 1


def test_the_largest_id_is_an_id_in_paths_and_bodies(api, user, unchanged):
    """INT64_MAX is a valid id wherever an id goes (nothing has it); one more is not an id."""
    assert_error(api.get(f"/api/projects/{INT64_MAX}", token=user.token), 404, "not_found")
    assert_error(api.patch("/api/accounts/me", {"primary_project_id": INT64_MAX}, token=user.token), 422,
                 "project_not_found")
    assert_error(api.get(f"/api/projects/{INT64_MAX + 1}", token=user.token), 400, "invalid_parameter")
    for raw in (str(INT64_MAX + 1), "99999999999999999999999999", "-9223372036854775809"):
        r = api.request("PATCH", "/api/accounts/me", token=user.token, data='{"primary_project_id":%s}' % raw,
                        headers={"Content-Type": "application/json"})
        assert_error(r, 422, "invalid_field")


@pytest.mark.parametrize("raw", ["1.0", "1.5", "1e400", "-1", "0", '"1"', "true", "1e2", "-0"])
def test_ids_in_bodies_must_be_integers(api, user, raw, unchanged):
    r = api.request("PATCH", "/api/accounts/me", token=user.token, data='{"primary_project_id":%s}' % raw,
                    headers={"Content-Type": "application/json"})
    assert_error(r, 422, "invalid_field")


@pytest.mark.parametrize("raw", ["0", "-1", "1.5", "1e3", "+1", "%201", "1%20", "0x10", "01", "１"])
def test_ids_in_paths_must_be_integers(api, user, raw):
    assert_error(api.get(f"/api/projects/{raw}", token=user.token), 400, "invalid_parameter")


@pytest.mark.parametrize("query", ["limit=1e2", "limit=0", "limit=101", "limit=-1", "limit=1.5", "limit",
                                   "limit=99999999999999999999", "limit=1&limit=2", "owner_id=9223372036854775808"])
def test_query_numbers(api, user, query):
    assert_error(api.get(f"/api/projects?{query}", token=user.token), 400, "invalid_parameter")


# --- NUL bytes and bad UTF-8 in paths and query strings ----------------------------------------


@pytest.mark.parametrize("target", [b"/api/projects/1%00", b"/api/projects/1\x00", b"/api/chat/rooms/lo%00bby/messages"])
def test_nul_in_paths(user, target):
    assert_raw_error(raw_request("GET", target, token=user.token), 400, "bad_request")


@pytest.mark.parametrize("target", [b"/api/chat/rooms/%ff%fe/messages", b"/api/chat/rooms/\xff\xfe/messages",
                                   b"/api/chat/rooms/%c0%af/messages"])
def test_bad_utf8_in_path_parameters(user, target):
    assert_raw_error(raw_request("GET", target, token=user.token), 400, "invalid_parameter")


@pytest.mark.parametrize("target", [b"/api/accounts/\xff\xfe", b"/api/accounts/%ff%c0", b"/api/projects/x/\xc3"])
def test_bad_utf8_in_unknown_paths_gives_valid_json(user, target):
    err = assert_raw_error(raw_request("GET", target, token=user.token), 404, "not_found")
    assert "\ufffd" not in err["message"]


@pytest.mark.parametrize("query,code", [(b"cursor=%ff", "invalid_parameter"), (b"cursor=\xff", "invalid_parameter"),
                                        (b"cursor=a%00b", "invalid_parameter"), (b"limit=1%00", "invalid_parameter"),
                                        (b"cursor=%zz", "invalid_parameter")])
def test_bad_bytes_in_query_strings(user, query, code):
    assert_raw_error(raw_request("GET", b"/api/projects?" + query, token=user.token), 400, code)


# --- path traversal ---------------------------------------------------------------------------

TRAVERSAL = [
    b"/api/accounts/%2e%2e/projects/_status",
    b"/api/accounts/%252e%252e/projects/_status",
    b"/api/chat/..%2f_status",
    b"/api/projects/%2e%2e/accounts/_status",
    b"/api/projects/..%2f..%2fapi%2faccounts%2f_status",
    b"/api/projects/..%252f..%252fapi%252faccounts%252f_status",
    b"/api/accounts/%5fstatus",
    b"/api//accounts/_status",
    b"//api/accounts/_status",
    b"/api/accounts/./_status",
    b"/api/accounts/_status/",
    b"/api/accounts/_status;x",
    b"/api/accounts/_status%3f",
    b"/api/accounts/x/../_routes",
    b"/api/projects/1/../../accounts/_metrics",
    b"/_pl/chat/publish/lobby",
    b"/api/../_pl/chat/publish/lobby",
    b"/api/%2e%2e/_pl/error/500",
    b"/_pl/error/500",
    b"/_pl/error/404",
    b"/_pl/chat/live-auth",
    b"/_pl/chat/live-auth/lobby",
    b"http://127.0.0.1/api/accounts/_status",
]


@pytest.mark.parametrize("target", TRAVERSAL, ids=[t.decode() for t in TRAVERSAL])
def test_traversal_never_reaches_internal_pages(user, target):
    for method in ("GET", "POST"):
        st, headers, body = raw_request(method, target, token=user.token)
        assert st in (400, 404, 405), (st, body[:200])
        err = json.loads(body)["error"]
        assert err["code"] in ("not_found", "bad_request", "method_not_allowed", "invalid_parameter"), err


def test_traversal_out_of_the_api_is_normalized():
    # nginx resolves dot segments before routing: what is left is an ordinary path
    st, _, body = raw_request("GET", "/api/../api/accounts/health")
    assert st == 200 and json.loads(body)["service"] == "accounts"
    st, _, body = raw_request("GET", "/api/accounts/../../etc/passwd")
    assert b"root:" not in body
    st, _, body = raw_request("GET", "/../../../etc/passwd")
    assert st == 400 and b"root:" not in body


# --- method override and forged internal headers ------------------------------------------------

OVERRIDES = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"]


def test_method_override_headers_change_nothing(api, user, project):
    h = {name: "DELETE" for name in OVERRIDES}
    r = api.get(f"/api/projects/{project['id']}", token=user.token, headers=h)
    assert r.status_code == 200, r.text
    assert sql(f"SELECT COUNT(*) FROM projects WHERE id = {project['id']}", "projects") == [["1"]]
    # a POST stays a POST (405 where only GET is routed)
    r = api.request("POST", "/api/accounts/health", headers={n: "GET" for n in OVERRIDES})
    assert_error(r, 405, "method_not_allowed")
    # a PATCH that claims to be a GET still validates and writes as a PATCH
    r = api.patch(f"/api/projects/{project['id']}", {"name": "target"}, token=user.token,
                  headers={n: "GET" for n in OVERRIDES})
    assert r.status_code == 200, r.text


def test_forged_invoke_headers_are_ignored_publicly(api, user, project):
    """X-Invoke-* from a public client never reach a service: a budget of 0
    or a depth beyond the limit does not stop the invocation this makes."""
    forged = {"X-Invoke-Depth": "64", "X-Invoke-Budget": "0", "X-Invoke-Spent": "999"}
    r = api.patch("/api/accounts/me", {"primary_project_id": project["id"]}, token=user.token, headers=forged)
    assert r.status_code == 200, r.text
    r = api.patch("/api/accounts/me", {"primary_project_id": None}, token=user.token,
                  headers={"X-Invoke-Depth": "-1", "X-Invoke-Budget": "abc"})
    assert r.status_code == 200, r.text


def test_forged_internal_markers_do_not_open_internal_routes(api, user, unchanged):
    forged = {"PL-Internal": "1", "X-PL-Internal": "1", "X-PL-Client-Addr": "10.0.0.1", "Request-Id": "x",
              "X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1", "Forwarded": "for=127.0.0.1"}
    r = api.post(f"/api/accounts/users/{user.id}/primary-project/clear", {"project_id": 1}, token=user.token,
                 headers=forged)
    assert_error(r, 404, "not_found")
    # a header spelled with underscores (as FastCGI names params) is dropped by nginx
    st, _, body = raw_request("POST", f"/api/accounts/users/{user.id}/primary-project/clear",
                              [b"PL_INTERNAL: 1", b"Content-Type: application/json"], body=b'{"project_id":1}')
    assert_raw_error((st, {"content-type": "application/json"}, body), 404, "not_found")


def access_log_ids():
    # (nginx's escape=json leaves bytes >= 0x80 alone: a hostile path can put bad UTF-8 in a line,
    # or U+0085 and U+2028, which log_lines reads as the characters they are)
    return {line["request_id"] for line in log_lines("nginx-access") if "request_id" in line}


def test_request_ids(api, internal):
    # public: a client's X-Request-Id is never taken
    r = api.get("/api/accounts/health", headers={"X-Request-Id": "forged-id-123"})
    assert r.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"]), r.headers
    # internal: kept when nginx and the services both accept it, else nginx's own for both,
    # so the id in nginx's log is the id the service logged and answered
    keep = ["call-" + uuid.uuid4().hex, "A" * 64, "a.b_c-d"]
    replace = ["a:b", "B" * 65, "a b", "a/b", "ü"]
    seen = {}
    for rid in keep + replace:
        r = internal.get("/api/accounts/health", headers={"X-Request-Id": rid.encode("utf-8")})
        assert r.status_code == 200
        seen[rid] = r.headers["X-Request-Id"]
    for rid in keep:
        assert seen[rid] == rid
    for rid in replace:
        assert re.fullmatch(r"[0-9a-f]{32}", seen[rid]), (rid, seen[rid])
    wait_until(lambda: set(seen.values()) <= access_log_ids(), timeout=5, message="ids in nginx's log")


# --- access tokens in every malformed form ----------------------------------------------------


def bad_tokens(api, user):
    kid, seed = (VAR / "secrets" / "jwt_signing.key").read_text().split()
    sk = nacl.signing.SigningKey(b64url_decode(seed))
    jwks = api.get("/api/accounts/.well-known/jwks.json").json()
    pub_b64 = [k["x"] for k in jwks["keys"] if k["kid"] == kid][0]
    now = int(time.time())
    claims = {"iss": "pilotlight", "sub": str(user.id), "iat": now, "nbf": now, "exp": now + 600, "role": "user",
              "email": user.email, "name": "Hostile"}

    def sign(c, header=None, key=sk):
        header = header or {"alg": "EdDSA", "typ": "JWT", "kid": kid}
        si = f"{jwt_segment(header)}.{jwt_segment(c)}"
        return f"{si}.{b64url(key.sign(si.encode()).signature)}"

    def hs256(secret):
        si = f"{jwt_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{jwt_segment(claims)}"
        return f"{si}.{b64url(hmac.new(secret, si.encode(), hashlib.sha256).digest())}"

    good = sign(claims)
    h, p, s = good.split(".")
    tampered = dict(claims, role="admin")
    return {
        "none alg": f"{jwt_segment({'alg': 'none', 'typ': 'JWT'})}.{jwt_segment(claims)}.",
        "none alg with kid": f"{jwt_segment({'alg': 'none', 'kid': kid})}.{jwt_segment(claims)}.{s}",
        "HS256 with the public key (base64url)": hs256(pub_b64.encode()),
        "HS256 with the public key (raw)": hs256(b64url_decode(pub_b64)),
        "wrong kid": sign(claims, {"alg": "EdDSA", "typ": "JWT", "kid": "k-unknown"}),
        "no kid": sign(claims, {"alg": "EdDSA", "typ": "JWT"}),
        "another key with our kid": sign(claims, key=nacl.signing.SigningKey.generate()),
        "bad base64": f"{h}.{p}.{s[:-4]}*/+=",
        "padded base64": f"{h}=.{p}.{s}",
        "extra segment": f"{good}.{s}",
        "two segments": f"{h}.{p}",
        "empty signature": f"{h}.{p}.",
        "expired": sign(dict(claims, iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
        "not yet valid": sign(dict(claims, nbf=now + 3600, exp=now + 7200)),
        "float exp": sign(dict(claims, exp=now + 600.5)),
        "huge exp as 1e400": f"{h}.{b64url(json.dumps(claims).replace(str(now + 600), '1e400'))}.{s}",
        "other issuer": sign(dict(claims, iss="someone-else")),
        "tampered payload": f"{h}.{jwt_segment(tampered)}.{s}",
        "sub not a user id": sign(dict(claims, sub="1 OR 1=1")),
        "unknown role": sign(dict(claims, role="root")),
        "too long (6000)": f"{h}.{p}{'A' * 6000}.{s}",
        "garbage": "not-a-token",
        "spaces": f"{h}. {p}.{s}",
    }, good


PROTECTED = [("GET", "/api/accounts/me", None), ("GET", "/api/projects", None),
             ("GET", "/api/chat/rooms/lobby/messages", None), ("POST", "/api/projects", {"name": "x"}),
             ("POST", "/api/chat/rooms/lobby/messages", {"body": "x"}), ("PATCH", "/api/accounts/me",
                                                                          {"display_name": "x"})]


def test_malformed_tokens_on_every_service(api, user, unchanged):
    tokens, good = bad_tokens(api, user)
    assert api.get("/api/accounts/me", token=good).status_code == 200  # the forging itself is right
    failures = []
    for name, token in tokens.items():
        for method, path, body in PROTECTED:
            r = api.request(method, path, token=token, json_body=body)
            if r.status_code != 401 or r.json()["error"]["code"] != "invalid_token" or \
                    "Bearer" not in r.headers.get("WWW-Authenticate", ""):
                failures.append(f"{name}: {method} {path} -> {r.status_code} {r.text[:120]}")
        # and for a live subscription (the token in the query string)
        r = api.get(f"/api/chat/rooms/lobby/live?access_token={token}", headers={"Accept": "text/event-stream"},
                    stream=True)
        # (the query parameter is at most 4096 characters: a longer token is a 400)
        expected = 400 if len(token) > 4096 else 401
        if r.status_code != expected or "error" not in r.json():
            failures.append(f"{name}: live -> {r.status_code}")
        r.close()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("value,status,code", [
    ("Basic dXNlcjpwYXNz", 401, "invalid_token"),
    ("Bearer", 401, "invalid_token"),
    ("Bearer ", 401, "missing_token"),  # nginx trims the value: "Bearer"
    ("Token abc", 401, "invalid_token"),
    ("Bearer a.b.c", 401, "invalid_token"),
])
def test_malformed_authorization_headers(api, value, status, code, unchanged):
    r = api.request("POST", "/api/projects", json_body={"name": "x"}, headers={"Authorization": value})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] in ("invalid_token", "missing_token")


def test_a_huge_token_is_refused_by_nginx(api, unchanged):
    r = api.request("POST", "/api/projects", json_body={"name": "x"},
                    headers={"Authorization": "Bearer " + "A" * 20000})
    assert_error(r, 400, "header_too_large")


# --- SQL metacharacters are data ---------------------------------------------------------------

METACHARACTERS = ["'; DROP TABLE projects; --", '" OR "1"="1', "\\", "\\'", "%", "_", "`x`", "--", "/* */", "#",
                  "?", "$1", "Robert'); DROP TABLE users;--", "\u2028\u2029", "😀", "\t\r\n", "NULL", "\\0",
                  "' OR 1=1 LIMIT 1 -- "]


def hex_of(text):
    return text.encode("utf-8").hex().upper()


def test_sql_metacharacters_are_stored_verbatim(api, user):
    text = "|".join(METACHARACTERS)
    r = api.post("/api/projects", {"name": text[:200], "description": text}, token=user.token)
    assert r.status_code == 201, r.text
    p = r.json()["project"]
    assert p["name"] == text[:200] and p["description"] == text
    assert sql(f"SELECT HEX(name), HEX(description) FROM projects WHERE id = {p['id']}", "projects") == \
        [[hex_of(text[:200]), hex_of(text)]]
    got = api.get(f"/api/projects/{p['id']}", token=user.token).json()["project"]
    assert got["name"] == text[:200] and got["description"] == text

    name = "O'Brien \"; DROP TABLE users; -- \\ %_"
    r = api.patch("/api/accounts/me", {"display_name": name}, token=user.token)
    assert r.status_code == 200 and r.json()["user"]["display_name"] == name, r.text
    assert sql(f"SELECT HEX(display_name) FROM users WHERE id = {user.id}", "accounts") == [[hex_of(name)]]

    client_id = "'; DELETE FROM messages; --" + uuid.uuid4().hex[:8]
    r = api.post("/api/chat/rooms/lobby/messages", {"body": text, "client_msg_id": client_id}, token=user.token)
    assert r.status_code == 201, r.text
    m = r.json()["message"]
    assert m["body"] == text and m["client_msg_id"] == client_id
    assert sql(f"SELECT HEX(body), HEX(client_msg_id) FROM messages WHERE id = {m['id']}", "chat") == \
        [[hex_of(text), hex_of(client_id)]]
    # the same metacharacters as a room name, a cursor and an email prefix are only ever values
    for room in ("x' OR '1'='1", "lobby'--", "%25", "_"):
        r = api.get(f"/api/chat/rooms/{room}/messages", token=user.token)
        assert_error(r, 404, "room_not_found")
    assert_error(api.get("/api/projects?cursor=' OR 1=1 --", token=user.token), 400, "invalid_parameter")
    assert sql("SELECT COUNT(*) > 0 FROM users", "accounts") == [["1"]]


def test_email_prefix_wildcards_are_literal(api, admin):
    r = api.get("/api/accounts/users?email_prefix=%25&limit=100", token=admin.token)
    assert r.status_code == 200 and r.json()["users"] == [], r.text
    r = api.get("/api/accounts/users?email_prefix=_&limit=100", token=admin.token)
    assert r.status_code == 200 and r.json()["users"] == [], r.text
    r = api.get("/api/accounts/users?email_prefix=' OR '1'='1&limit=100", token=admin.token)
    assert r.status_code == 200 and r.json()["users"] == [], r.text
