#!/usr/bin/env python3
"""tools/openapi/openapi.py: the OpenAPI 3.1 document of Pilotlight's public
API (served by nginx at /api/openapi.json), made at build time from the two
places each fact is written once:

  requests   each service's route table, as its binary prints it
             (pl-<svc> --print-routes): methods, paths, declared path and
             query parameters, body fields with their rules, flags (auth,
             admin, json, idempotent, token_query), rate limits;
  responses  libshared/api/ (the document's frame, the dispatcher's generic
             errors by route flag, the built-in routes, shared schemas) and
             services/<svc>/api/ (routes.json: each public route's statuses,
             error codes and headers; schemas/<Name>.json: one JSON Schema
             per response shape, a component named by its file).

Internal-only and test-only routes are not part of the public document. The
build fails (exit 1, every problem listed) when a public route has no entry
in its routes.json, an entry names no public route, a $ref names no schema,
two schema files share a name, or an entry is malformed: the document cannot
drift from the code without the build noticing.

  openapi.py --root SRC --version V --out FILE [--depfile FILE] ROUTES.json...

Python standard library only (meson already needs python3)."""
import argparse
import copy
import json
import pathlib
import re
import sys

INT64_MAX = 2**63 - 1
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
REASONS = {
    "101": "Switching Protocols", "200": "OK", "201": "Created", "202": "Accepted", "204": "No Content",
    "304": "Not Modified", "400": "Bad Request", "401": "Unauthorized", "403": "Forbidden", "404": "Not Found",
    "409": "Conflict", "412": "Precondition Failed", "413": "Content Too Large", "414": "URI Too Long",
    "415": "Unsupported Media Type", "422": "Unprocessable Content", "429": "Too Many Requests",
    "500": "Internal Server Error", "502": "Bad Gateway", "503": "Service Unavailable", "504": "Gateway Timeout",
    "508": "Loop Detected",
}
SCHEMA_REF = "#/components/schemas/"
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
# What a routes.json entry may say (anything else is a typo: refused).
ENTRY_KEYS = {"summary", "description", "request_headers", "security", "responses", "fields", "params",
              "request_example"}
SUCCESS_KEYS = {"description", "schema", "headers", "content_type", "example"}


def merge_codes(into, codes):
    """Adds {code: meaning} to into; a code already there means either."""
    for code, text in codes.items():
        into[code] = f"{into[code]} Or: {text}" if code in into and into[code] != text else text


class Problems(Exception):
    """Every problem found, reported together."""


class Builder:
    def __init__(self, root, version):
        self.root = pathlib.Path(root)
        self.version = version
        self.problems = []
        self.read = []  # every file read, for the depfile
        self.schemas = {}  # component name -> (schema, file)

    # --- input -------------------------------------------------------------------------

    def load(self, path):
        path = pathlib.Path(path)
        self.read.append(path)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise Problems(f"{path}: {e}") from None

    def problem(self, where, text):
        self.problems.append(f"{where}: {text}")

    def load_schemas(self, folder):
        if not folder.is_dir():
            return
        self.read.append(folder)  # a file added there is a change too
        for path in sorted(folder.glob("*.json")):
            name = path.stem
            if not re.match(r"^[A-Z][A-Za-z0-9]*$", name):
                self.problem(path, "a schema file is named like a component: UpperCamelCase.json")
                continue
            if name in self.schemas:
                self.problem(path, f"schema {name} is defined twice (also in {self.schemas[name][1]})")
                continue
            self.schemas[name] = (self.load(path), path)

    # --- requests: from the route tables ------------------------------------------------

    @staticmethod
    def rule_schema(rule):
        """A declared parameter's or field's JSON Schema, from its rule."""
        t = rule["type"]
        if t == "id":
            s = {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX}
        elif t == "integer":
            s = {"type": "integer", "format": "int64", "minimum": rule["min"], "maximum": rule["max"]}
        elif t == "string":
            s = {"type": "string", "minLength": rule["min_length"]}
            if "max_length" in rule:
                s["maxLength"] = rule["max_length"]
        elif t == "bool":
            s = {"type": "boolean"}
        elif t == "enum":
            s = {"type": "string", "enum": list(rule["values"])}
        elif t == "cursor":
            s = {"type": "string", "minLength": 1, "maxLength": 100,
                 "description": "A `next_cursor` this API handed out (opaque)."}
        elif t == "object":
            s = {"type": "object"}
        else:
            raise Problems(f"unknown rule type {t!r} in {rule}")
        if rule.get("nullable"):
            s["type"] = [s["type"], "null"]
            if "enum" in s:
                s["enum"].append(None)
        return s

    def parameters(self, route, entry, where):
        notes = entry.get("params", {})
        declared = {p["name"] for p in route.get("params", [])}
        for name in notes:
            if name not in declared:
                self.problem(where, f"a note on parameter {name!r}, which the route does not declare")
        out = []
        for p in route.get("params", []):
            s = self.rule_schema(p)
            param = {"name": p["name"], "in": p["in"], "required": p["in"] == "path" or bool(p.get("required")),
                     "schema": s}
            if p["type"] == "bool" and p["in"] == "query":
                param["description"] = "`true`, `false`, `1` or `0`."
            if p["name"] in notes:
                param["description"] = (param.get("description", "") + " " + notes[p["name"]]).strip()
            out.append(param)
        if "token_query" in route["flags"]:
            out.append({"name": "access_token", "in": "query", "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 4096},
                        "description": "An access token, for clients that cannot send headers (EventSource, "
                                       "WebSocket; RFC 6750 §2.3). Verified like a Bearer token."})
        for h in entry.get("request_headers", []):
            out.append({"$ref": f"#/components/parameters/{h}"})
        if "idempotent" in route["flags"]:
            out.append({"$ref": "#/components/parameters/Idempotency-Key"})
        return out

    def request_body(self, route, entry, where):
        if "json" not in route["flags"]:
            if "fields" in entry:
                self.problem(where, "notes on fields, but the route takes no JSON body")
            return None
        notes = entry.get("fields", {})
        if "fields" not in route:
            schema = {"type": "object"}
        else:
            declared = {f["name"] for f in route["fields"]}
            for name in notes:
                if name not in declared:
                    self.problem(where, f"a note on field {name!r}, which the route does not declare")
            props = {}
            for f in route["fields"]:
                props[f["name"]] = self.rule_schema(f)
                if f["name"] in notes:
                    props[f["name"]]["description"] = notes[f["name"]]
            schema = {"type": "object", "properties": props, "additionalProperties": False}
            required = [f["name"] for f in route["fields"] if f.get("required")]
            if required:
                schema["required"] = required
        optional = "body_optional" in route["flags"]
        body = {"required": not optional,
                "description": "A JSON object (strict JSON, at most 1 MiB, 32 deep; unknown fields refused)."
                               + (" May be empty or absent: read as `{}`." if optional else ""),
                "content": {"application/json": {"schema": schema}}}
        if "request_example" in entry:
            body["content"]["application/json"]["example"] = entry["request_example"]
        return body

    # --- responses: from the api/ folders ------------------------------------------------

    def generic_errors(self, dispatch, route):
        """{status: {code: description}} the dispatcher and nginx may answer on this route."""
        facts = {"always"}
        facts |= {f"flag:{f}" for f in route["flags"]}
        params = route.get("params", [])
        if params or "token_query" in route["flags"]:
            facts.add("params")
        if any(p["in"] == "query" and p.get("required") for p in params):
            facts.add("required_query")
        if "json" in route["flags"] and "fields" in route:
            facts.add("json_fields")
            if any(f.get("required") for f in route["fields"]):
                facts.add("required_fields")
        if "rate_limit" in route:
            facts.add("rate_limit")
        errors = {}
        for rule in dispatch["errors"]:
            if rule["if"] in facts:
                for status, codes in rule["add"].items():
                    merge_codes(errors.setdefault(status, {}), codes)
        return errors

    def response_headers(self, names, where):
        out = {}
        for h in names:
            if h not in self.doc["components"]["headers"]:
                self.problem(where, f"header {h!r} is not in libshared/api/document.json's components.headers")
            out[h] = {"$ref": f"#/components/headers/{h}"}
        return out

    def schema_ref(self, name, where):
        if name not in self.schemas:
            self.problem(where, f"schema {name!r} does not exist (no schemas/{name}.json)")
        return {"$ref": SCHEMA_REF + name}

    def responses(self, route, entry, generic, where):
        """The operation's responses: the entry's successes, then every error
        status with the codes the handler adds and the generic ones."""
        limited = "rate_limit" in route
        common = ["X-Request-Id"] + (["RateLimit", "RateLimit-Policy"] if limited else [])
        out, errors = {}, copy.deepcopy(generic)
        for status, spec in entry.get("responses", {}).items():
            if status not in REASONS:
                self.problem(where, f"status {status} is not one this API uses (add it to REASONS)")
                continue
            if int(status) < 400:
                if not isinstance(spec, dict) or not set(spec) <= SUCCESS_KEYS or "description" not in spec:
                    self.problem(where, f"{status}: a success is {{description, schema?, headers?, "
                                        f"content_type?, example?}}")
                    continue
                headers = common + spec.get("headers", [])
                if "idempotent" in route["flags"] and status != "304":
                    headers.append("Idempotent-Replayed")
                resp = {"description": spec["description"], "headers": self.response_headers(headers, where)}
                if "schema" in spec:
                    media = {"schema": self.schema_ref(spec["schema"], where)}
                    if "example" in spec:
                        media["example"] = spec["example"]
                    resp["content"] = {spec.get("content_type", "application/json"): media}
                elif "content_type" in spec:
                    resp["content"] = {spec["content_type"]: {}}
                out[status] = resp
                continue
            if not isinstance(spec, dict) or not spec or not all(
                    CODE.match(c) and isinstance(d, str) and d for c, d in spec.items()):
                self.problem(where, f"{status}: an error status maps each snake_case code to what it means")
                continue
            merge_codes(errors.setdefault(status, {}), spec)
        if not out:
            self.problem(where, "no success response")
        for status in sorted(errors):
            codes = errors[status]
            headers = list(common)
            # (every 429 says when to come back; a 409 only for a key still in use)
            if status == "429" or (status == "409" and set(codes) == {"idempotency_key_in_use"}):
                headers.append("Retry-After")
            if status == "401" and ({"auth", "admin"} & set(route["flags"])):
                headers.append("WWW-Authenticate")
            own = {c: d for c, d in codes.items() if self.everywhere.get(status, {}).get(c) != d}
            text = f"{REASONS[status]}."
            if own:
                text += " `error.code` is one of:\n\n" + "\n".join(f"- `{c}`: {d}" for c, d in sorted(own.items()))
            rest = sorted(set(codes) - set(own))
            if rest:
                text += ("\n\nOr" if own else " `error.code` is") + " one every operation may answer (see `Error`): " + \
                    ", ".join(f"`{c}`" for c in rest) + "."
            out[status] = {
                "description": text,
                "headers": self.response_headers(headers, where),
                "content": {"application/json": {"schema": {"allOf": [
                    {"$ref": SCHEMA_REF + "Error"},
                    {"properties": {"error": {"properties": {"code": {"enum": sorted(codes)}}}}},
                ]}}},
            }
        return dict(sorted(out.items()))

    # --- operations ----------------------------------------------------------------------

    def security(self, route, entry):
        flags = set(route["flags"])
        extra = [{name: []} for name in entry.get("security", [])]
        if flags & {"auth", "admin"}:
            return [{"bearerAuth": []}] + extra
        if "token_query" in flags:
            return [{"bearerAuth": []}, {"accessTokenQuery": []}, {}] + extra
        return extra + [{}] if extra else []

    def operation(self, svc, route, entry, generic, where, builtin):
        bad = set(entry) - ENTRY_KEYS
        if bad:
            self.problem(where, f"unknown keys {sorted(bad)} (allowed: {sorted(ENTRY_KEYS)})")
        if "summary" not in entry:
            self.problem(where, "no summary")
        flags = set(route["flags"])
        auth = "admin" if "admin" in flags else "token" if "auth" in flags else "none"
        ext = {"handler": route["handler"], "auth": auth}
        if "rate_limit" in route:
            ext["rate_limit"] = {"name": route["rate_limit"]["name"],
                                 "per": "user" if auth != "none" else "address"}
        if "idempotent" in flags:
            ext["idempotent"] = True
        text = entry.get("description", "")
        if auth == "admin":
            text = ("**Auth: an admin's token** (a user's token is 403 `forbidden`).\n\n" + text).strip()
        if "rate_limit" in route:
            text += (f"\n\nRate limited (`{route['rate_limit']['name']}`, per {ext['rate_limit']['per']}): "
                     "every answer carries `RateLimit` and `RateLimit-Policy`; past the limit, 429 "
                     "`rate_limited` with `Retry-After`.")
        # the handler's name: the C function (service routes are prefixed,
        # acc_, prj_, chat_); a built-in's is the same in every service
        op = {"tags": [svc], "summary": entry.get("summary", ""), "description": text.strip(),
              "operationId": f"{svc}_{route['handler']}" if builtin else route["handler"]}
        params = self.parameters(route, entry, where)
        if params:
            op["parameters"] = params
        body = self.request_body(route, entry, where)
        if body is not None:
            op["requestBody"] = body
        op["responses"] = self.responses(route, entry, generic, where)
        op["security"] = self.security(route, entry)
        op["x-pilotlight"] = ext
        return op

    @staticmethod
    def head_of(get_op):
        """HEAD answers as GET does, without the body (RFC 9110 §9.3.2)."""
        op = copy.deepcopy(get_op)
        op["operationId"] = get_op["operationId"] + "_head"
        op["summary"] = "Headers of: " + get_op["summary"]
        op["description"] = "The same answer as `GET`, without its body."
        for resp in op["responses"].values():
            resp.pop("content", None)
        return op

    # --- the document -------------------------------------------------------------------------

    def build(self, route_files):
        api = self.root / "libshared" / "api"
        self.doc = self.load(api / "document.json")
        self.doc["info"]["version"] = self.version
        dispatch = self.load(api / "dispatch.json")
        # the codes every operation may answer: described once, in Error
        self.everywhere = next(r["add"] for r in dispatch["errors"] if r["if"] == "always")
        builtins = self.load(api / "routes.json")["routes"]
        self.load_schemas(api / "schemas")
        tables = [self.load(f) for f in route_files]
        tags, paths, used_builtins = [], {}, set()
        for table in tables:
            svc = table["service"]
            own_file = self.root / "services" / svc / "api" / "routes.json"
            own = self.load(own_file)
            self.load_schemas(own_file.parent / "schemas")
            tags.append(dict(own["tag"], name=svc))
            entries = {k: (v, own_file) for k, v in own["routes"].items()}
            used = set()
            for route in table["routes"]:
                key = f"{route['method']} {route['pattern']}"
                flags = set(route["flags"])
                public = not flags & {"internal", "test"}
                generic_key = key.replace(f"/api/{svc}/", "/api/<svc>/", 1)
                if key in entries:
                    entry, where = entries[key]
                    used.add(key)
                    if not public:
                        self.problem(f"{where}: {key}", "an internal or test-only route is not in the public document")
                        continue
                elif generic_key in builtins:
                    entry, where = builtins[generic_key], api / "routes.json"
                    used_builtins.add(generic_key)
                    if not public:
                        self.problem(f"{where}: {generic_key}", "an internal or test-only route is not in the "
                                                                "public document")
                        continue
                elif not public:
                    continue
                else:
                    self.problem(own_file, f"the public route {key} has no entry")
                    continue
                if route["method"] not in METHODS:
                    self.problem(f"{where}: {key}", f"method {route['method']} is not one OpenAPI names here")
                    continue
                generic = self.generic_errors(dispatch, route)
                op = self.operation(svc, route, entry, generic, f"{where}: {key}", generic_key in builtins)
                item = paths.setdefault(route["pattern"], {})
                item[route["method"].lower()] = op
                if route["method"] == "GET":
                    item["head"] = self.head_of(op)
            for key in sorted(set(entries) - used):
                self.problem(f"{own_file}: {key}", "names no route of the service (renamed or removed?)")
        for key in sorted(set(builtins) - used_builtins):
            self.problem(f"{api / 'routes.json'}: {key}", "names no built-in route of any service")
        self.doc["tags"] = tags
        self.doc["paths"] = paths
        schemas = self.doc["components"].setdefault("schemas", {})
        for name, (schema, path) in sorted(self.schemas.items()):
            schemas[name] = schema
        if "Error" in schemas:
            schemas["Error"]["description"] += "\n\nCodes every operation may answer:\n\n" + "\n".join(
                f"- {status} `{c}`: {d}" for status, codes in sorted(self.everywhere.items())
                for c, d in sorted(codes.items()))
        self.check_refs(self.doc, "the document")
        if self.problems:
            raise Problems("\n".join(self.problems))
        return self.doc

    def check_refs(self, node, where):
        """Every $ref points at something in the document."""
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target = self.doc
                for part in ref.lstrip("#/").split("/"):
                    if not isinstance(target, dict) or part not in target:
                        self.problem(where, f"$ref {ref} points at nothing")
                        break
                    target = target[part]
            for k, v in node.items():
                self.check_refs(v, where)
        elif isinstance(node, list):
            for v in node:
                self.check_refs(v, where)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="the source tree")
    ap.add_argument("--version", required=True, help="info.version (the project's)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--depfile", help="a Makefile-style list of every file read, for ninja")
    ap.add_argument("routes", nargs="+", help="each service's pl-<svc> --print-routes output")
    args = ap.parse_args(argv)
    b = Builder(args.root, args.version)
    try:
        doc = b.build(args.routes)
    except Problems as e:
        print(f"openapi.py: the OpenAPI document cannot be made:\n{e}", file=sys.stderr)
        return 1
    out = pathlib.Path(args.out)
    out.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
    if args.depfile:
        deps = " ".join(str(p).replace(" ", "\\ ") for p in sorted(set(b.read)))
        pathlib.Path(args.depfile).write_text(f"{out}: {deps}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
