#!/usr/bin/env python3
"""Unit tests of tools/openapi/openapi.py (meson test, suite unit): a small
source tree of its own (the real libshared/api/ frame, one made-up service)
and the ways the document refuses to drift from the route table."""
import json
import pathlib
import shutil
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import openapi  # noqa: E402

ROUTES = {"service": "things", "routes": [
    {"method": "GET", "pattern": "/api/things/health", "handler": "health", "flags": []},
    {"method": "GET", "pattern": "/api/things/_status", "handler": "status", "flags": ["internal"]},
    {"method": "GET", "pattern": "/api/things/admin/status", "handler": "admin_status", "flags": ["auth", "admin"]},
    {"method": "GET", "pattern": "/api/things/{id}", "handler": "thg_get", "flags": ["auth"],
     "params": [{"name": "id", "in": "path", "type": "id", "required": True}]},
    {"method": "PATCH", "pattern": "/api/things/{id}", "handler": "thg_update", "flags": ["json", "auth", "admin"],
     "params": [{"name": "id", "in": "path", "type": "id", "required": True}],
     "fields": [{"name": "name", "type": "string", "required": True, "min_length": 1, "max_length": 10},
                {"name": "parent", "type": "id", "nullable": True}],
     "rate_limit": {"name": "things"}},
    {"method": "POST", "pattern": "/api/things/_test/x", "handler": "thg_test", "flags": ["test"]},
]}
THING = {"type": "object", "required": ["id"], "additionalProperties": False,
         "properties": {"id": {"type": "integer"}}}
ENTRIES = {
    "GET /api/things/{id}": {"summary": "Read", "responses": {
        "200": {"description": "It.", "schema": "Thing"}, "404": {"not_found": "No such thing."}}},
    "PATCH /api/things/{id}": {"summary": "Change", "fields": {"name": "Its name."}, "responses": {
        "200": {"description": "It.", "schema": "Thing"}}},
}


class Generator(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp())
        shutil.copytree(ROOT / "libshared" / "api", self.tmp / "libshared" / "api")
        api = self.tmp / "services" / "things" / "api"
        (api / "schemas").mkdir(parents=True)
        (api / "schemas" / "Thing.json").write_text(json.dumps(THING))
        self.entries = json.loads(json.dumps(ENTRIES))
        self.routes = json.loads(json.dumps(ROUTES))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def build(self):
        api = self.tmp / "services" / "things" / "api"
        (api / "routes.json").write_text(json.dumps({"tag": {"description": "Things."}, "routes": self.entries}))
        table = self.tmp / "things-routes.json"
        table.write_text(json.dumps(self.routes))
        return openapi.Builder(self.tmp, "1.2.3").build([table])

    def problems(self):
        with self.assertRaises(openapi.Problems) as cm:
            self.build()
        return str(cm.exception)

    def test_a_document_from_the_table_and_the_entries(self):
        doc = self.build()
        self.assertEqual(doc["info"]["version"], "1.2.3")
        self.assertEqual(set(doc["paths"]), {"/api/things/health", "/api/things/admin/status", "/api/things/{id}"})
        item = doc["paths"]["/api/things/{id}"]
        self.assertEqual(set(item), {"get", "head", "patch"})
        patch = item["patch"]
        body = patch["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(body["required"], ["name"])
        self.assertFalse(body["additionalProperties"])
        self.assertEqual(body["properties"]["name"], {"type": "string", "minLength": 1, "maxLength": 10,
                                                      "description": "Its name."})
        self.assertEqual(body["properties"]["parent"]["type"], ["integer", "null"])
        self.assertEqual(patch["security"], [{"bearerAuth": []}])
        self.assertEqual(patch["x-pilotlight"], {"handler": "thg_update", "auth": "admin",
                                                 "rate_limit": {"name": "things", "per": "user"}})
        codes = {s: r["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]["properties"]
                 ["code"]["enum"] for s, r in patch["responses"].items() if s >= "400"}
        self.assertIn("rate_limited", codes["429"])
        self.assertIn("forbidden", codes["403"])
        self.assertEqual(set(codes["401"]), {"missing_token", "invalid_token"})
        self.assertEqual(set(codes["422"]), {"unknown_field", "invalid_field", "missing_field"})
        self.assertIn("Retry-After", patch["responses"]["429"]["headers"])
        self.assertIn("RateLimit", patch["responses"]["200"]["headers"])
        self.assertNotIn("content", item["head"]["responses"]["200"])
        self.assertEqual(item["head"]["operationId"], "thg_get_head")
        self.assertEqual(doc["paths"]["/api/things/health"]["get"]["operationId"], "things_health")
        self.assertEqual(doc["paths"]["/api/things/health"]["get"]["security"], [])

    def test_a_public_route_without_an_entry_fails(self):
        del self.entries["PATCH /api/things/{id}"]
        self.assertIn("the public route PATCH /api/things/{id} has no entry", self.problems())

    def test_an_entry_for_a_route_that_is_gone_fails(self):
        self.entries["DELETE /api/things/{id}"] = self.entries["GET /api/things/{id}"]
        self.assertIn("DELETE /api/things/{id}: names no route", self.problems())

    def test_an_internal_route_is_never_public(self):
        self.entries["GET /api/things/_status"] = self.entries["GET /api/things/{id}"]
        self.assertIn("not in the public document", self.problems())

    def test_a_schema_that_does_not_exist_fails(self):
        self.entries["GET /api/things/{id}"]["responses"]["200"]["schema"] = "Nothing"
        self.assertIn("schema 'Nothing' does not exist", self.problems())

    def test_a_note_on_a_field_the_route_does_not_declare_fails(self):
        self.entries["PATCH /api/things/{id}"]["fields"]["colour"] = "?"
        self.assertIn("field 'colour'", self.problems())

    def test_an_error_status_maps_codes_to_meanings(self):
        self.entries["GET /api/things/{id}"]["responses"]["404"] = ["not_found"]
        self.assertIn("404: an error status maps", self.problems())

    def test_an_unknown_key_is_a_typo(self):
        self.entries["GET /api/things/{id}"]["respones"] = {}
        self.assertIn("unknown keys ['respones']", self.problems())

    def test_a_dangling_ref_fails(self):
        THING_BAD = dict(THING, properties={"id": {"$ref": "#/components/schemas/Nope"}})
        (self.tmp / "services" / "things" / "api" / "schemas" / "Thing.json").write_text(json.dumps(THING_BAD))
        self.assertIn("$ref #/components/schemas/Nope points at nothing", self.problems())


if __name__ == "__main__":
    unittest.main()
