"""Generated requests (issue 16): for every operation of the OpenAPI document
the stack serves, python3-hypothesis builds requests from the operation's own
description, valid and invalid: wrong types, missing and extra fields,
lengths at and past their bounds, odd Unicode (lone surrogates, NUL,
combining marks, right-to-left, astral), huge and negative numbers, floats,
malformed JSON and content types, malformed precondition and idempotency
headers, other users' ids, bad and missing tokens. Every answer must be
below 500 and as the document says (conftest checks each one), and a request
that is refused (4xx) must have changed nothing: the rows it could touch
(users, projects, messages, refresh tokens, revocations, tickets) are read
before and after it.

Each operation gets a world of its own (an owner, another user, an admin
made for it; their projects and a lobby message) and client addresses of its
own (127.0.4.n .. 127.0.11.n), so what one operation does (a deleted owner, a lockout, a
spent rate limit) does not leak into the next. Ids the generator makes up are
far above any real one: only the world's users and projects are touched.

Bounded: PL_GENERATED_EXAMPLES examples per operation (default 30: about
1,500 requests, a minute or two, in `./pilotlight test`); `./pilotlight soak`
runs it with many more (tests/soak/run.sh). What each operation was answered
is appended to $PL_VAR/log/generated-requests.log."""
import collections
import itertools
import json
import os
import urllib.parse
import uuid

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from conftest import BASE_URL, DEFAULT_PASSWORD, VAR, sql, unique_email
from lifecycle import SourceAdapter

# hypothesis keeps a cache (its Unicode tables) on disk: in the stack's state, not the checkout
set_hypothesis_home_dir(str(VAR / "hypothesis"))

EXAMPLES = int(os.environ.get("PL_GENERATED_EXAMPLES", "30"))
HUGE_ID = 10**15  # above any id a test stack reaches: made-up ids touch nothing real
INT64_MAX = 2**63 - 1
# refusals that change state by design (docs/api/accounts.md): a wrong
# password or code counts toward the lockout (excluded from the snapshot
# anyway), a refresh token presented again ends its session, a disabled
# account's refresh ends it, an unverified login mails its link again
CHANGES_BY_DESIGN = {"refresh_token_reused", "account_disabled", "email_not_verified"}
ODD_TEXT = st.lists(st.one_of(
    st.characters(blacklist_categories=("Cs",)),  # any code point but a surrogate...
    st.sampled_from(["\u0000", "\u202e", "\u200b", "\u0301", "\ufeff", "\U0001f525", "'", '"', "\\", "%", "_",
                     ";--", "<script>", "\ud800", "\udfff"])), max_size=20).map("".join)  # ...and some lone ones
_addresses = itertools.count(1)


def fetch_doc():
    r = requests.get(BASE_URL + "/api/openapi.json", timeout=10)
    assert r.status_code == 200, r.text[:200]
    return r.json()


DOC = fetch_doc() if os.environ.get("PL_BASE_URL") else {"paths": {}}
OPERATIONS = [(m.upper(), path, op) for path, item in DOC["paths"].items() for m, op in item.items()]


class World:
    """An operation's own users, projects and client."""

    def __init__(self, admin):
        n = next(_addresses)
        assert n < 255, "out of 127.0.4.x addresses"
        # a client per address, 127.0.4.n .. 127.0.11.n: the per-address rate
        # limits (mail: a burst of 10) let more of the examples through
        self.clients = []
        for k in range(4, 12):
            c = requests.Session()
            c.mount("http://", SourceAdapter(f"127.0.{k}.{n}"))
            self.clients.append(c)
        self.http = self.clients[0]
        self.owner = self.user("Owner")
        self.other = self.user("Other")
        self.admin = self.user("Admin")
        r = requests.patch(f"{BASE_URL}/api/accounts/users/{self.admin['id']}", json={"role": "admin"},
                           headers={"Authorization": f"Bearer {admin.token}"}, timeout=10)
        assert r.status_code == 200, r.text
        self.admin.update(self.login(self.admin))
        self.projects = {who: [self.project(who) for _ in range(2)] for who in ("owner", "other")}
        r = self.http.post(f"{BASE_URL}/api/chat/rooms/lobby/messages", json={"body": "hello"},
                           headers={"Authorization": f"Bearer {self.owner['token']}"}, timeout=10)
        assert r.status_code == 201, r.text
        self.ids = [self.owner["id"], self.other["id"], self.admin["id"]]

    def user(self, name):
        email = unique_email("gen")
        r = self.http.post(f"{BASE_URL}/api/accounts/signup", timeout=10,
                           json={"email": email, "password": DEFAULT_PASSWORD, "display_name": name})
        assert r.status_code == 201, r.text
        u = {"email": email, "id": r.json()["user"]["id"]}
        u.update(self.login(u))
        return u

    def login(self, u):
        r = self.http.post(f"{BASE_URL}/api/accounts/login", json={"email": u["email"], "password": DEFAULT_PASSWORD},
                           timeout=10)
        if r.status_code != 200 or "access_token" not in r.json():
            return {"token": None, "refresh": None}
        body = r.json()
        return {"token": body["access_token"], "refresh": body["refresh_token"]}

    def project(self, who):
        u = getattr(self, who)
        r = self.http.post(f"{BASE_URL}/api/projects", json={"name": f"{who}'s"},
                           headers={"Authorization": f"Bearer {u['token']}"}, timeout=10)
        assert r.status_code == 201, r.text
        return r.json()["project"]["id"]

    def snapshot(self):
        """What a refused request must leave as it was (never failure counters:
        failed_logins, locked_until, mfa_last_step count wrong answers by design)."""
        ids = ",".join(str(i) for i in self.ids)
        rows = sql(
            f"SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS('|', id, email, display_name, role, disabled, "
            f"IFNULL(primary_project_id, '-'), email_verified, mfa_enabled, IFNULL(mfa_secret, '-'), password_hash, "
            f"updated_at) ORDER BY id)) FROM accounts.users WHERE id IN ({ids});"
            f"SELECT COUNT(*) FROM accounts.users;"
            f"SELECT COUNT(*), SUM(revoked_at IS NULL), SUM(spent_at IS NULL) FROM accounts.refresh_tokens "
            f"WHERE user_id IN ({ids});"
            f"SELECT COUNT(*), IFNULL(MAX(id), 0) FROM accounts.revocations;"
            f"SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS('|', id, owner_id, name, description, state, "
            f"internal_notes, version, updated_at) ORDER BY id)) FROM projects.projects;"
            f"SELECT COUNT(*), IFNULL(MAX(id), 0), MD5(GROUP_CONCAT(CONCAT_WS('|', id, author_id, author_name, "
            f"IFNULL(client_msg_id, '-')) ORDER BY id)) FROM chat.messages WHERE author_id IN ({ids}, 0);"
            f"SELECT COUNT(*) FROM chat.messages; SELECT COUNT(*) FROM chat.live_tickets;")
        return [tuple(r) for r in rows]


def value_for(name, schema, world, data, where, as_text=False):
    """A value for a parameter or field: most often one that means something
    here (the world's ids, its real password), else anything the schema allows,
    or something it does not. as_text: a path or query parameter, where what
    is invalid in JSON may spell a valid value (the string "1" is the id 1)."""
    kind = data.draw(st.sampled_from(["meaningful", "meaningful", "schema", "invalid"]), label=f"{name} kind")
    choices = meaningful(name, where, world)
    if kind == "meaningful" and choices:
        return data.draw(st.sampled_from(choices), label=name)
    if kind == "invalid":
        wrong = invalid_value(schema)
        if as_text and is_id(schema):
            # never a real id but the world's, spelt as text either (an admin
            # of the world deleting /users/1 deleted the stack's admin)
            wrong = wrong.filter(lambda v: not real_id_text(path_text(v)) or int(path_text(v)) in (choices or []))
        return data.draw(wrong, label=name)
    if is_id(schema):
        # never a real id but the world's: an admin of the world may change,
        # disable or delete whatever an id names (other tests' users, the admin)
        return data.draw(st.one_of(st.sampled_from((choices or []) + [HUGE_ID, INT64_MAX]),
                                   st.integers(HUGE_ID, INT64_MAX)), label=name)
    return data.draw(from_schema(schema), label=name)


def real_id_text(text):
    """Whether a path or query value spells an id that may exist."""
    return text.isdigit() and 1 <= int(text) < HUGE_ID


def is_id(schema):
    t = schema.get("type")
    return (t == "integer" or isinstance(t, list) and "integer" in t) and schema.get("minimum") == 1 and \
        schema.get("maximum") == INT64_MAX


def meaningful(name, where, world):
    o, x = world.owner, world.other
    if name == "id" and "/projects/" in where:
        return world.projects["owner"] + world.projects["other"] + [HUGE_ID]
    if name == "id" and "/sessions/" in where:
        return ["0" * 32, "not-a-session"]
    if name in ("id", "owner_id", "after", "before"):
        return world.ids + [HUGE_ID]
    if name == "room":
        return ["lobby", f"project-{world.projects['owner'][0]}", f"project-{world.projects['other'][0]}",
                "project-0", f"project-{HUGE_ID}", "nowhere", "a.b"]
    if name in ("password", "current_password"):
        return [DEFAULT_PASSWORD, "wrong password!", "short"]
    if name == "email":
        return [o["email"], x["email"], unique_email("gen"), "not-an-address", o["email"].upper()]
    if name == "email_prefix":
        return ["gen-", "%", "_", "\\"]
    if name == "refresh_token":
        return [world.login(o)["refresh"] or "x", "x" * 43]
    if name == "primary_project_id":
        return world.projects["owner"] + world.projects["other"] + [None, HUGE_ID]
    if name in ("code", "recovery_code"):
        return ["123456", "12 34 56", "abcd-efgh-ijkl-mnop"]
    if name in ("body", "name", "display_name", "description", "internal_notes"):
        return ["hello", "x" * 200]
    if name == "client_msg_id":
        return ["c-1", str(uuid.uuid4())]
    if name in ("role", "state"):
        return None  # the schema's enum is what matters
    return None


def from_schema(schema):
    """Values the schema allows (within reason: long strings at their bounds)."""
    t = schema.get("type")
    if isinstance(t, list):
        return st.one_of([from_schema(dict(schema, type=x)) for x in t])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if t == "integer":
        lo, hi = schema.get("minimum", -2**63), schema.get("maximum", INT64_MAX)
        return st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi]))
    if t == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 300)
        return st.one_of(ODD_TEXT.filter(lambda s: lo <= len(s) <= hi and "\ud800" not in s and "\udfff" not in s
                                         and "\u0000" not in s),
                         st.sampled_from(["a" * max(lo, 1) if hi >= max(lo, 1) else "", "é" * hi]))
    if t == "boolean":
        return st.booleans()
    if t == "null":
        return st.none()
    if t == "object":
        return st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)
    return st.none()


def invalid_value(schema):
    """Values the schema does not allow (or at its edges)."""
    t = schema.get("type")
    t = [x for x in t if x != "null"][0] if isinstance(t, list) else t
    wrong = [None, True, [], {}, "1", 1, 1.5, -1, 0, 2**63, 2**64, -2**63 - 1, 10**30]
    if t == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        edges = ["", "a" * max(lo - 1, 0), "\u0000", "a\u0000b", "\ud800", "x\udfffy"]
        if hi is not None:
            edges += ["a" * (hi + 1), "\U0001f525" * (hi + 1)]
        return st.sampled_from(edges + [1, 1.0, True, None, ["a"], {"a": 1}])
    if t == "integer":
        lo, hi = schema.get("minimum", -2**63), schema.get("maximum", INT64_MAX)
        return st.sampled_from([lo - 1, hi + 1, 2**64, 10**30, 1.0, 1e300, "1", True, None, [1]])
    if t == "boolean":
        return st.sampled_from([0, 1, "true", None, "yes"])
    return st.sampled_from(wrong)


def path_text(value):
    """A path or query value, percent-encoded (a lone surrogate as the bytes
    UTF-8 would give it: malformed UTF-8 on the wire)."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return urllib.parse.quote(("" if value is None else str(value)).encode("utf-8", "surrogatepass"), safe="")


RAW_BODIES = [b"", b"{", b"[]", b"1", b"null", b'"a"', b"\xff\xfe", b'{"a":1,"a":2}', b"[" * 40 + b"]" * 40,
              b'{"x": NaN}', b'{"name": "a"} trailing', b"{/* c */}", b'{"name": "\\ud800"}',
              b'{"name": 1e400}', b"\x00"]


@pytest.mark.skipif(not OPERATIONS, reason="PL_BASE_URL is not set (run through ./pilotlight test)")
@pytest.mark.parametrize("method,path,op", OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_generated_requests(method, path, op, admin):
    if "text/event-stream" in json.dumps(op["responses"].get("200", {})):
        pytest.skip("a live subscription (a stream): test_chat.py follows it")
    world = World(admin)
    params = op.get("parameters", [])
    body_spec = op.get("requestBody")
    unsafe = method not in ("GET", "HEAD")
    # most requests from whom the operation is for, some from anyone else
    callers = ["owner", "owner", "owner", "other", "admin", "anon", "bad"]
    if op["x-pilotlight"]["auth"] == "admin":
        callers = ["admin", "admin", "admin", "owner", "other", "anon", "bad"]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data):
        who = data.draw(st.sampled_from(callers), label="who")
        headers = {}
        token = {"owner": world.owner["token"], "other": world.other["token"], "admin": world.admin["token"],
                 "anon": None, "bad": "x.y.z"}[who]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url_path, query = path, []
        for p in params:
            if "$ref" in p:
                name = p["$ref"].rsplit("/", 1)[1]
                if data.draw(st.booleans(), label=f"send {name}"):
                    headers[name] = data.draw(st.sampled_from(
                        ['"1"', '"2"', "*", 'W/"1"', '"1", "2"', "1", "", '"', "x" * 300, str(uuid.uuid4()),
                         '"quoted-key"', "ключ"]), label=name)
                continue
            value = value_for(p["name"], p["schema"], world, data, path, as_text=True)
            if p["in"] == "path":
                url_path = url_path.replace("{" + p["name"] + "}", path_text(value))
            elif p["required"] or data.draw(st.booleans(), label=f"send {p['name']}"):
                query.append((p["name"], path_text(value)))
                if data.draw(st.integers(0, 9), label="twice") == 0:
                    query.append((p["name"], path_text(value)))
        if data.draw(st.integers(0, 4), label="extra query") == 0:
            query.append((data.draw(st.sampled_from(["limit", "x", "cursor", "all", "access_token"])), "1"))
        body = None
        if body_spec is not None or data.draw(st.integers(0, 9), label="stray body") == 0:
            body, ctype = make_body(body_spec, world, data, path)
            if ctype:
                headers["Content-Type"] = ctype
        note(f"{method} {url_path} query={query} headers={ {k: v[:80] for k, v in headers.items()} } body={body!r:.300}")
        before = world.snapshot() if unsafe else None
        # header values as UTF-8 bytes: a client may send any octets, not only latin-1
        raw_headers = {k: v.encode("utf-8", "surrogatepass") for k, v in headers.items()}
        url = BASE_URL + url_path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
        client = world.clients[data.draw(st.integers(0, len(world.clients) - 1), label="client")]
        r = client.request(method, url, data=body, headers=raw_headers, timeout=30)
        note(f"-> {r.status_code} {r.text[:300]}")
        seen[f"{r.status_code} {r.json()['error']['code'] if r.status_code >= 400 and r.content else ''}".strip()] += 1
        assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
        if unsafe and r.status_code >= 400:
            code = r.json()["error"]["code"]
            if code not in CHANGES_BY_DESIGN:
                assert world.snapshot() == before, f"a refused request ({r.status_code} {code}) changed the data"

    seen = collections.Counter()
    try:
        one()
    finally:
        # what the examples were answered, for a reader of the run (soak prints it)
        with open(VAR / "log" / "generated-requests.log", "a") as f:
            f.write(f"{method} {path}: " + ", ".join(f"{k} x{n}" for k, n in seen.most_common()) + "\n")


def make_body(spec, world, data, path):
    """(bytes, Content-Type) of a request body: valid, mutated, or not JSON at all."""
    kind = data.draw(st.sampled_from(["valid", "valid", "valid", "drop", "extra", "raw", "ctype", "array"]),
                     label="body kind")
    if spec is None or kind == "raw":
        return data.draw(st.sampled_from(RAW_BODIES), label="raw body"), "application/json"
    schema = spec["content"]["application/json"]["schema"]
    props, required = schema.get("properties", {}), schema.get("required", [])
    obj = {}
    for name, s in props.items():
        if name in required or data.draw(st.booleans(), label=f"field {name}"):
            obj[name] = value_for(name, s, world, data, path)
    if kind == "drop" and required:
        obj.pop(data.draw(st.sampled_from(required), label="dropped"), None)
    if kind == "extra":
        obj[data.draw(st.sampled_from(["extra", "id", "owner_id", "role", "é", ""]), label="extra")] = 1
    text = json.dumps(obj)  # a lone surrogate is written \\udXXX: the server must refuse it
    if kind == "array":
        text = json.dumps([obj])
    ctype = "application/json"
    if kind == "ctype":
        ctype = data.draw(st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                                           "application/json; charset=utf-8", ""]), label="content type")
    return text.encode(), ctype
