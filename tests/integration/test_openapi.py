"""The OpenAPI document of the public API (issue 16): served by nginx at
/api/openapi.json, made at build time from the route tables and the response
files (tools/openapi/openapi.py), and in step with the live services.

Every live route (each service's internal `GET /api/<svc>/_routes`) is
accounted for: a public one must be an operation of the document (a GET one
with its HEAD too), with the same path and query parameters and body fields
as its route table declares and the auth, rate limit and idempotency its
flags say; an internal or test-only one must not be in it. Every operation of
the document must be a live public route. (That the document is valid
OpenAPI 3.1 is tests/openapi/run.sh's step of `./pilotlight test`; that every
answer the suite gets matches it is contract.py's, through conftest.)"""
import json
import re
import subprocess

import pytest
import requests

import contract
from conftest import BASE_URL, INTERNAL_URL, assert_error, service_routes

HTTP_METHODS = {"get", "head", "post", "patch", "put", "delete", "options", "trace"}


@pytest.fixture(scope="module")
def doc():
    r = requests.get(BASE_URL + "/api/openapi.json", timeout=10)
    assert r.status_code == 200, r.text[:300]
    return r.json()


@pytest.fixture(scope="module")
def live(internal):
    return service_routes(internal)


def operations(doc):
    """{(METHOD, template): operation} of the document."""
    return {(m.upper(), path): op for path, item in doc["paths"].items() for m, op in item.items()
            if m in HTTP_METHODS}


def test_the_document_is_served_as_json_compressed_and_revalidated():
    r = requests.get(BASE_URL + "/api/openapi.json", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers.get("Content-Encoding") == "gzip"
    assert r.headers.get("Cache-Control") == "no-cache"
    assert re.match(r"^[0-9a-f]{32}$", r.headers["X-Request-Id"])
    doc = r.json()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "Pilotlight API"
    again = requests.get(BASE_URL + "/api/openapi.json", headers={"Accept-Encoding": "gzip",
                                                                  "If-None-Match": r.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    head = requests.head(BASE_URL + "/api/openapi.json", timeout=10)
    assert head.status_code == 200 and head.content == b""


def test_every_live_route_is_in_the_document_or_accounted_for(live, doc):
    ops = operations(doc)
    public, internal_only, test_only, missing = set(), set(), set(), []
    for svc, body in live.items():
        for route in body["routes"]:
            key, flags = (route["method"], route["pattern"]), set(route["flags"])
            if "test" in flags:
                test_only.add(key)
            elif "internal" in flags:
                internal_only.add(key)
            else:
                public.add(key)
                if route["method"] == "GET":
                    public.add(("HEAD", route["pattern"]))
    for key in sorted(public):
        if key not in ops:
            missing.append(f"{key[0]} {key[1]}")
    assert not missing, f"live public routes missing from /api/openapi.json: {missing}"
    leaked = sorted(f"{m} {p}" for m, p in ops if (m, p) in internal_only | test_only)
    assert not leaked, f"internal or test-only routes in the public document: {leaked}"
    gone = sorted(f"{m} {p}" for m, p in ops if (m, p) not in public)
    assert not gone, f"operations of /api/openapi.json that no service serves: {gone}"
    # every route is one of the three, and the test stack serves test routes
    assert test_only and internal_only
    total = sum(len(body["routes"]) for body in live.values())
    gets = sum(1 for body in live.values() for r in body["routes"]
               if r["method"] == "GET" and not set(r["flags"]) & {"internal", "test"})
    assert len(public) - gets + len(internal_only) + len(test_only) == total


def param_rule(p):
    """What the document says of a parameter, in _routes' terms."""
    s = p["schema"]
    return p["name"], p["in"], p["required"], s.get("minimum"), s.get("maximum"), s.get("minLength"), \
        s.get("maxLength"), tuple(s.get("enum", ()))


def live_rule(rule, where):
    t = rule["type"]
    lo = 1 if t == "id" else rule.get("min")
    hi = 2**63 - 1 if t == "id" else rule.get("max")
    minlen, maxlen = (1, 100) if t == "cursor" else (rule.get("min_length"), rule.get("max_length"))
    required = where == "path" or bool(rule.get("required"))
    return rule["name"], where, required, lo, hi, minlen, maxlen, tuple(rule.get("values", ()))


def test_the_documents_requests_are_the_live_route_tables(live, doc):
    ops = operations(doc)
    problems = []
    for body in live.values():
        for route in body["routes"]:
            flags = set(route["flags"])
            if flags & {"internal", "test"}:
                continue
            op = ops[(route["method"], route["pattern"])]
            where = f"{route['method']} {route['pattern']}"
            documented = sorted(param_rule(p) for p in op.get("parameters", []) if "$ref" not in p
                                and p["name"] != "access_token")
            declared = sorted(live_rule(p, p["in"]) for p in route.get("params", []))
            if documented != declared:
                problems.append(f"{where}: parameters {documented} != the route's {declared}")
            refs = {p["$ref"].rsplit("/", 1)[1] for p in op.get("parameters", []) if "$ref" in p}
            if ("idempotent" in flags) != ("Idempotency-Key" in refs):
                problems.append(f"{where}: Idempotency-Key documented {'Idempotency-Key' in refs}, flag "
                                f"{'idempotent' in flags}")
            names = {p["name"] for p in op.get("parameters", []) if "$ref" not in p}
            if ("token_query" in flags) != ("access_token" in names):
                problems.append(f"{where}: access_token documented {'access_token' in names}, flag "
                                f"{'token_query' in flags}")
            body_doc = op.get("requestBody")
            if ("json" in flags) != (body_doc is not None):
                problems.append(f"{where}: a request body documented {body_doc is not None}, flag json "
                                f"{'json' in flags}")
            if body_doc is not None:
                schema = body_doc["content"]["application/json"]["schema"]
                if body_doc["required"] == ("body_optional" in flags):
                    problems.append(f"{where}: body required {body_doc['required']}, flags {sorted(flags)}")
                fields = {f["name"]: f for f in route.get("fields", [])}
                if set(schema.get("properties", {})) != set(fields):
                    problems.append(f"{where}: fields {sorted(schema.get('properties', {}))} != {sorted(fields)}")
                if sorted(schema.get("required", [])) != sorted(n for n, f in fields.items() if f.get("required")):
                    problems.append(f"{where}: required fields {schema.get('required')}")
                for name, f in fields.items():
                    s = schema["properties"].get(name, {})
                    if (s.get("minLength"), s.get("maxLength")) != (f.get("min_length"), f.get("max_length")):
                        problems.append(f"{where}: field {name} lengths {s.get('minLength')}..{s.get('maxLength')}")
                    if ("null" in s.get("type", [])) != bool(f.get("nullable")):
                        problems.append(f"{where}: field {name} nullable")
            ext = op["x-pilotlight"]
            auth = "admin" if "admin" in flags else "token" if "auth" in flags else "none"
            if ext["auth"] != auth or ext["handler"] != route["handler"] and not ext["handler"] == route["handler"]:
                problems.append(f"{where}: x-pilotlight {ext} for flags {sorted(flags)}")
            if ext.get("rate_limit", {}).get("name") != route.get("rate_limit", {}).get("name"):
                problems.append(f"{where}: rate limit {ext.get('rate_limit')} != {route.get('rate_limit')}")
            secured = any("bearerAuth" in s for s in op["security"])
            if secured != bool(flags & {"auth", "admin", "token_query"}):
                problems.append(f"{where}: security {op['security']} for flags {sorted(flags)}")
    assert not problems, problems


def test_every_operation_documents_the_dispatchers_errors(doc):
    """Each error status lists its codes (an enum the answers are checked
    against), and the generic ones follow from the route: a token route can
    say 401 missing_token, a JSON one 415 and 422, every one 500 and 502."""
    for (method, path), op in operations(doc).items():
        if method == "HEAD":
            continue  # the same statuses as GET, without bodies
        codes = {}
        for status, resp in op["responses"].items():
            if status >= "400":
                schema = resp["content"]["application/json"]["schema"]["allOf"][1]
                codes[status] = set(schema["properties"]["error"]["properties"]["code"]["enum"])
        assert {"internal_error"} <= codes["500"] and {"bad_gateway"} <= codes["502"], (method, path)
        if op["x-pilotlight"]["auth"] != "none":
            assert {"missing_token", "invalid_token"} <= codes["401"], (method, path)
        if "requestBody" in op:
            assert {"unsupported_media_type"} <= codes["415"] and {"invalid_json"} <= codes["400"], (method, path)
        if "rate_limit" in op["x-pilotlight"]:
            assert "rate_limited" in codes["429"] and "Retry-After" in op["responses"]["429"]["headers"]


def test_a_stale_if_match_on_delete_is_412_and_deletes_nothing(api, make_user):
    """The issue's case: curl -X DELETE -H 'If-Match: "1"' on a version-2 project."""
    user = make_user()
    r = api.post("/api/projects", {"name": "stale"}, token=user.token)
    assert r.status_code == 201, r.text
    pid = r.json()["project"]["id"]
    r = api.patch(f"/api/projects/{pid}", {"name": "stale, renamed"}, token=user.token)
    assert r.status_code == 200 and r.headers["ETag"] == '"2"', r.text
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
                          "-H", f"Authorization: Bearer {user.token}", "-H", 'If-Match: "1"',
                          f"{BASE_URL}/api/projects/{pid}"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "412", out
    r = api.delete(f"/api/projects/{pid}", token=user.token, headers={"If-Match": '"1"'})
    assert_error(r, 412, "version_conflict")
    assert api.get(f"/api/projects/{pid}", token=user.token).status_code == 200
    assert api.delete(f"/api/projects/{pid}", token=user.token, headers={"If-Match": '"2"'}).status_code == 204


def test_head_of_health_is_200_without_a_body():
    """The issue's case: curl -sI $PL/api/accounts/health."""
    out = subprocess.run(["curl", "-sI", f"{BASE_URL}/api/accounts/health"], capture_output=True, timeout=30)
    assert out.stdout.startswith(b"HTTP/1.1 200 OK\r\n") and out.stdout.endswith(b"\r\n\r\n"), out
    r = requests.head(BASE_URL + "/api/accounts/health", timeout=10)
    assert r.status_code == 200 and r.content == b"" and r.headers["Content-Type"] == "application/json"


def test_the_reference_page_is_the_web_builds_own_and_same_origin():
    r = requests.get(BASE_URL + "/api-reference", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert '<div id="api-reference">' in r.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert assets and all(a.startswith("/") for a in assets), assets  # nothing from another origin
    for a in assets:
        assert requests.get(BASE_URL + a, timeout=10).status_code == 200, a


def test_the_internal_listener_does_not_serve_the_document():
    r = requests.get(INTERNAL_URL + "/api/openapi.json", timeout=10)
    assert_error(r, 404, "not_found")


def test_the_answer_checker_refuses_what_the_document_does_not_say(doc, live):
    """conftest checks every answer with contract.Contract: it must refuse an
    undocumented field, status, code or content, and a missing header."""
    c = contract.Contract(doc, {svc: body["routes"] for svc, body in live.items()})
    project = {"id": 1, "owner_id": 2, "name": "n", "description": "", "state": "planning", "version": 1,
               "created_at": "2026-11-27T02:15:12.571356Z", "updated_at": "2026-11-27T02:15:12.571356Z"}
    ok = {"X-Request-Id": "abc", "ETag": '"1"', "Content-Type": "application/json"}

    def check(status, body, headers=ok, method="GET", path="/api/projects/1", internal=False):
        return c.check(method, path, status, headers, body if isinstance(body, str) else json.dumps(body), internal)

    assert check(200, {"project": project}) == []
    assert check(200, {"project": dict(project, secret="x")})  # a field the schema does not name
    assert check(200, {"project": dict(project, state="lost")})  # a value outside its enum
    assert check(200, {"project": project}, {"X-Request-Id": "abc", "Content-Type": "application/json"})  # no ETag
    assert check(418, {"error": {"code": "teapot", "message": "m"}})  # an undocumented status
    assert check(404, {"error": {"code": "not_found", "message": "m"}}) == []
    assert check(404, {"error": {"code": "gone", "message": "m"}})  # an undocumented code
    assert check(404, {"error": {"code": "not_found", "message": "m", "hint": "h"}})  # not the error shape
    assert check(304, "", method="GET") == [] and check(304, "x")  # a body where none goes
    assert check(200, "", method="HEAD") == [] and check(200, "{}", method="HEAD")
    assert check(405, {"error": {"code": "method_not_allowed", "message": "m"}}, method="PUT")  # no Allow
    assert check(404, {"error": {"code": "not_found", "message": "m"}}, path="/api/nothing") == []
    assert check(200, {"anything": 1}, path="/api/projects/_status", internal=True) == []  # internal: not public
    assert check(404, {"error": {"code": "not_found", "message": "m"}}, path="/api/projects/_status") == []
    assert check(400, {"error": {"code": "invalid_request", "message": "m"}}, internal=True) == []
    assert check(400, {"error": {"code": "invalid_request", "message": "m"}})  # public: no X-Invoke-* to be bad


def test_the_api_pages_name_no_error_the_document_does_not_have(doc):
    """The prose of docs/api/ and the document say the same: every "<status>
    `<code>`" a route's section names is among that operation's answers."""
    from test_docs import API_DOCS, PLACEHOLDER, route_sections
    ops = operations(doc)
    said = re.compile(r"\b([1-5][0-9][0-9]) ((?:`[a-z][a-z0-9_]*`(?:\s*/\s*)?)+)")
    problems = []
    for page in sorted(API_DOCS.glob("*.md")):
        for section in route_sections(page):
            svcs = [p.split("/")[2] for p in doc["paths"]] if PLACEHOLDER in section.pattern else [None]
            for svc in set(svcs):
                pattern = section.pattern.replace(PLACEHOLDER, svc) if svc else section.pattern
                op = ops.get((section.method, pattern))
                if op is None:
                    continue  # an internal or test-only route: not in the public document
                for status, codes in said.findall(section.text()):
                    resp = op["responses"].get(status)
                    enum = set() if resp is None else set(
                        resp["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]
                        ["properties"]["code"]["enum"])
                    for code in re.findall(r"`([a-z0-9_]+)`", codes):
                        if code not in enum:
                            problems.append(f"{section.where}: says {status} {code}, the document does not")
    assert not problems, problems
