"""Every answer the integration tests receive, checked against the OpenAPI
document the stack serves (/api/openapi.json) with python3-jsonschema.

conftest.py hooks `check` into requests' HTTPAdapter.send, so every response
a test gets through requests (conftest's Api, lifecycle's clients, a bare
requests.get) is checked as it arrives: a status the operation does not
document, an error code not among those listed for that status, a body
field the schema does not name (the schemas are strict: additionalProperties
false), a wrong type, or a required header missing (X-Request-Id, ETag,
Location, Retry-After) fails the test that received it. Streams
(stream=True) are not read here, nor are answers that are not the API's
(the web client's pages and assets).

The request is routed as the services route it (the live route tables,
each service's internal GET /api/<svc>/_routes, in their order), so what is
checked is what the dispatcher served:
  a documented operation    its responses (HEAD: the same statuses, no body)
  an internal or test-only  nothing on the internal listener (not in the public
  route                     document: docs/api/ and test_docs.py cover them);
                            on the public listener nginx's 404 (or the
                            dispatcher's 405)
  a path of no route        the one error shape, 404 (or 405 + Allow), or nginx's
                            400/414 before any route
  OPTIONS                   405 (+ Allow), or a CORS preflight's 204
On the internal listener a public route may also answer what only calls
between functions meet (malformed X-Invoke-* headers: 400 invalid_request;
a chain too deep: 508)."""
import json
import re

import jsonschema
import requests

# what only calls between functions can meet (the internal listener's checks
# before any route's own: docs/api/README.md, "Invocations")
INTERNAL_ONLY = {"400": {"invalid_request"}, "508": {"invocation_depth_exceeded", "invocation_budget_exceeded"}}
# nginx's own answers before any route is looked at (a request line or a
# header it refuses, a URI over its 8 KiB): possible on any path
NGINX_ANY_PATH = {"400": {"bad_request", "header_too_large"}, "414": {"uri_too_long"}}


class ContractError(AssertionError):
    """An answer the document does not describe."""


class Contract:
    def __init__(self, doc, tables):
        """doc: the OpenAPI document; tables: {svc: [route, ...]} as _routes lists them."""
        self.doc = doc
        self.resolver = jsonschema.RefResolver.from_schema(doc)
        self.validators = {}
        self.error_schema = {"$ref": "#/components/schemas/Error"}
        self.tables = {svc: [(r, [s for s in r["pattern"].split("/") if s]) for r in routes]
                       for svc, routes in tables.items()}

    def route(self, method, path):
        """As the dispatcher matches (sh_router_match): (route, None) for the
        route that serves method + path, (None, allowed methods) when the path
        is a route's with another method, (None, None) when it is none's."""
        segs = [s for s in path.split("/") if s]
        if len(segs) < 2 or segs[0] != "api" or segs[1] not in self.tables:
            return None, None
        allowed = []
        for route, pattern in self.tables[segs[1]]:
            if len(pattern) != len(segs) or any(p != s and not p.startswith("{") for p, s in zip(pattern, segs)):
                continue
            if route["method"] == method or (method == "HEAD" and route["method"] == "GET"):
                return route, None
            allowed.append(route["method"])
        return None, (allowed or None)

    def validate(self, schema, value, where):
        key = json.dumps(schema, sort_keys=True)
        v = self.validators.get(key)
        if v is None:
            v = self.validators[key] = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        errors = sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path))
        return [f"{where}: {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:300]}" for e in errors]

    def header_problems(self, spec, headers, where):
        problems = []
        for name, h in spec.get("headers", {}).items():
            if "$ref" in h:
                h = self.resolver.resolve(h["$ref"])[1]
            value = headers.get(name)
            if value is None:
                if h.get("required"):
                    problems.append(f"{where}: header {name} is missing")
                continue
            problems += self.validate(h["schema"], value, f"{where}: header {name}")
        return problems

    def check(self, method, path, status, headers, body, internal=False):
        """The problems with one answer (an empty list: it is as documented)."""
        status = str(status)
        where = f"{method} {path} -> {status}"
        if not re.match(r"^/api(/|$)", path):
            return []  # not the API
        if not internal and re.match(r"^/api/[^/]+/_", path):
            # nginx: internal pages do not exist on the public listener
            return self.generic_error(method, where, status, headers, body, {"404": {"not_found"}})
        route, allowed = self.route(method, path)
        if route is None:
            if allowed is None:
                return self.generic_error(method, where, status, headers, body, {"404": {"not_found"}, **NGINX_ANY_PATH})
            if method == "OPTIONS" and status == "204" and not body:
                return []  # a CORS preflight (nginx/cors.conf; test_cors.py checks its headers)
            problems = self.generic_error(method, where, status, headers, body,
                                          {"405": {"method_not_allowed"}, **NGINX_ANY_PATH})
            if status == "405" and "Allow" not in headers:
                problems.append(f"{where}: 405 without Allow")
            return problems
        if set(route["flags"]) & {"internal", "test"}:
            if internal:
                return []
            return self.generic_error(method, where, status, headers, body, {"404": {"not_found"}})
        template = route["pattern"]
        op = self.doc["paths"].get(template, {}).get(method.lower())
        if op is None:
            return [f"{where}: {method} {template} is served but not in the document"]
        where = f"{method} {template} ({op['operationId']}) -> {status}"
        spec = op["responses"].get(status)
        if internal and status in INTERNAL_ONLY and self.internal_only(body, status):
            return self.generic_error(method, where, status, headers, body, INTERNAL_ONLY)
        if spec is None:
            return [f"{where}: status {status} is not documented (body {body[:200]!r})"]
        problems = self.header_problems(spec, headers, where)
        content = spec.get("content")
        if method == "HEAD" or status in ("204", "304"):
            if body:
                problems.append(f"{where}: a body where none is documented: {body[:200]!r}")
            return problems
        if not content:
            if body:
                problems.append(f"{where}: a body where none is documented: {body[:200]!r}")
            return problems
        ctype = headers.get("Content-Type", "").split(";")[0].strip()
        if internal and "text/event-stream" in content and not body:
            return problems  # the authorizer nginx asks before a live subscription: 200, no body
        if ctype not in content:
            return problems + [f"{where}: Content-Type {ctype!r}, documented {sorted(content)}"]
        schema = content[ctype].get("schema")
        if schema is None or ctype != "application/json":
            return problems
        try:
            value = json.loads(body)
        except ValueError:
            return problems + [f"{where}: not JSON: {body[:200]!r}"]
        return problems + self.validate(schema, value, where)

    @staticmethod
    def internal_only(body, status):
        try:
            return json.loads(body)["error"]["code"] in INTERNAL_ONLY[status]
        except (ValueError, KeyError, TypeError):
            return False

    def generic_error(self, method, where, status, headers, body, allowed):
        """An answer outside any operation: the one error shape, with a status and code allowed here."""
        if method == "HEAD":  # no body to read the code from
            problems = [] if status in allowed else [f"{where}: {status} is not an answer here ({allowed})"]
            if body:
                problems.append(f"{where}: a body in an answer to HEAD")
            return problems
        try:
            value = json.loads(body)
        except ValueError:
            return [f"{where}: not a JSON error: {body[:200]!r}"]
        problems = self.validate(self.error_schema, value, where)
        code = value.get("error", {}).get("code") if isinstance(value, dict) else None
        if code not in allowed.get(status, set()):
            problems.append(f"{where}: {status} {code!r} is not an answer here (expected one of {allowed})")
        if "X-Request-Id" not in headers:
            problems.append(f"{where}: header X-Request-Id is missing")
        return problems


_contract = None
_loading = False


def contract(base_url, internal_url):
    """The document the stack serves and the live route tables, read once
    (None while they are being read: those requests are not checked)."""
    global _contract, _loading
    if _contract is None and not _loading:
        _loading = True
        try:
            r = requests.get(base_url + "/api/openapi.json", timeout=10)
            assert r.status_code == 200, f"the stack serves no OpenAPI document: {r.status_code} {r.text[:200]}"
            doc, tables = r.json(), {}
            for svc in {p.split("/")[2] for p in doc["paths"]}:
                t = requests.get(f"{internal_url}/api/{svc}/_routes", timeout=10)
                assert t.status_code == 200, t.text[:200]
                tables[svc] = t.json()["routes"]
            _contract = Contract(doc, tables)
        finally:
            _loading = False
    return _contract
