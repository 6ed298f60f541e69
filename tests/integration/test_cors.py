"""CORS (issue 16) through nginx: the test stack runs with PL_CORS_ORIGINS
set to two origins (tests/run.sh). A listed origin gets its own
Access-Control-Allow-Origin with credentials, the exposed headers, and 204
preflights; any other origin gets no CORS header (its browser keeps the
answer from the page), and never `*` with credentials. Only the public
listener's /api/ takes part; nginx's own answers (a 404, a 413) carry the
headers too. The renderer's handling of the list (`*`, a malformed origin)
is checked without the stack."""
import os

import pytest
import requests

from conftest import BASE_URL, INTERNAL_URL
from test_nginx_render import SERVICES, base, nginx_t, render  # noqa: F401 (base is a fixture)

ORIGINS = os.environ.get("PL_CORS_ORIGINS", "").split()
OTHER = "https://evil.example"
EXPOSED = {"etag", "location", "ratelimit", "ratelimit-policy", "retry-after", "x-request-id", "idempotent-replayed"}
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
                "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age")

needs_list = pytest.mark.skipif(len(ORIGINS) < 2, reason="PL_CORS_ORIGINS is not set (run through ./pilotlight test)")


def listed(h):
    return {x.strip().lower() for x in h.split(",") if x.strip()}


def no_cors(r):
    present = [h for h in CORS_HEADERS if h in r.headers]
    assert not present, (present, r.headers)


@needs_list
@pytest.mark.parametrize("origin", ORIGINS)
def test_a_listed_origin_gets_its_own_origin_credentials_and_exposed_headers(origin):
    r = requests.get(BASE_URL + "/api/accounts/health", headers={"Origin": origin}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert listed(r.headers["Access-Control-Expose-Headers"]) == EXPOSED
    assert "origin" in listed(r.headers["Vary"])
    assert "Access-Control-Allow-Methods" not in r.headers  # a preflight's only


@needs_list
def test_another_origin_gets_no_cors_header_but_the_answer_varies():
    for headers in ({"Origin": OTHER}, {"Origin": ORIGINS[0] + ".evil.example"}, {"Origin": "null"}, {}):
        r = requests.get(BASE_URL + "/api/accounts/health", headers=headers, timeout=10)
        assert r.status_code == 200
        no_cors(r)
        assert "origin" in listed(r.headers["Vary"]), r.headers


@needs_list
def test_a_preflight_from_a_listed_origin_is_answered_by_nginx():
    r = requests.options(BASE_URL + "/api/projects/12", timeout=10, headers={
        "Origin": ORIGINS[0], "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type, if-match, idempotency-key"})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == ORIGINS[0]
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert {"get", "head", "post", "patch", "delete"} <= listed(r.headers["Access-Control-Allow-Methods"])
    assert {"authorization", "content-type", "if-match", "if-none-match", "idempotency-key"} <= \
        listed(r.headers["Access-Control-Allow-Headers"])
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert "origin" in listed(r.headers["Vary"])
    assert r.headers["X-Request-Id"]


@needs_list
def test_a_preflight_from_another_origin_is_not_let_through():
    r = requests.options(BASE_URL + "/api/projects/12", timeout=10, headers={
        "Origin": OTHER, "Access-Control-Request-Method": "PATCH"})
    assert r.status_code == 405, r.text  # the service's answer to OPTIONS: no CORS approval
    no_cors(r)
    # an OPTIONS that is no preflight (no Access-Control-Request-Method) is the service's too
    r = requests.options(BASE_URL + "/api/projects/12", headers={"Origin": ORIGINS[0]}, timeout=10)
    assert r.status_code == 405 and "Access-Control-Allow-Methods" not in r.headers


@needs_list
def test_credentials_work_cross_origin_for_a_listed_origin(api, make_user):
    user = make_user()
    r = requests.post(BASE_URL + "/api/accounts/login", timeout=10,
                      json={"email": user.email, "password": user.password, "cookie": True},
                      headers={"Origin": ORIGINS[0]})
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == ORIGINS[0]
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "pl_refresh=" in r.headers["Set-Cookie"]
    # the cookie then refreshes, the answer readable by that origin only
    r2 = requests.post(BASE_URL + "/api/accounts/refresh", cookies=r.cookies, headers={"Origin": ORIGINS[0]},
                       timeout=10)
    assert r2.status_code == 200 and r2.headers["Access-Control-Allow-Origin"] == ORIGINS[0]
    r3 = requests.post(BASE_URL + "/api/accounts/refresh", cookies=r2.cookies, headers={"Origin": OTHER},
                       timeout=10)
    no_cors(r3)


@needs_list
def test_nginx_own_answers_carry_cors_too():
    r = requests.get(BASE_URL + "/api/nothing-here", headers={"Origin": ORIGINS[0]}, timeout=10)
    assert r.status_code == 404 and r.headers["Access-Control-Allow-Origin"] == ORIGINS[0]
    r = requests.post(BASE_URL + "/api/projects", data=b"x" * (3 * 1024 * 1024), timeout=30,
                      headers={"Origin": ORIGINS[0], "Content-Type": "application/json"})
    assert r.status_code == 413 and r.headers["Access-Control-Allow-Origin"] == ORIGINS[0]


@needs_list
def test_never_a_wildcard_with_credentials_and_nothing_outside_the_public_api():
    for url in (BASE_URL + "/api/accounts/health", BASE_URL + "/api/openapi.json"):
        r = requests.get(url, headers={"Origin": ORIGINS[0]}, timeout=10)
        assert r.headers["Access-Control-Allow-Origin"] != "*"
    # the internal listener, the web client: no CORS, Vary as it was
    no_cors(requests.get(INTERNAL_URL + "/api/accounts/health", headers={"Origin": ORIGINS[0]}, timeout=10))
    page = requests.get(BASE_URL + "/", headers={"Origin": ORIGINS[0]}, timeout=10)
    no_cors(page)
    assert "origin" not in listed(page.headers.get("Vary", ""))
    doc = requests.get(BASE_URL + "/api/openapi.json", headers={"Origin": ORIGINS[0], "Accept-Encoding": "gzip"},
                       timeout=10)
    assert {"accept-encoding", "origin"} <= listed(doc.headers["Vary"]), doc.headers  # gzip's Vary kept


# --- the renderer, without the stack --------------------------------------------------------


def test_the_allow_list_renders_a_wildcard_without_credentials(base, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PL_CORS_ORIGINS", "https://a.example, http://localhost:5173 *")
    files = render(base, SERVICES, "local")
    maps = files["cors_maps.conf"]
    assert '"1 https://a.example"  "https://a.example";' in maps
    assert '"1 http://localhost:5173"  "http://localhost:5173";' in maps
    assert '"~^1 ."  "*";' in maps
    assert '"*"      "";' in maps  # no credentials with *
    r = nginx_t(base)
    assert r.returncode == 0, r.stderr


def test_an_empty_list_changes_no_answer(base, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PL_CORS_ORIGINS", "")
    maps = render(base, SERVICES, "local")["cors_maps.conf"]
    assert '"1 ' not in maps and '"Origin"' not in maps


@pytest.mark.parametrize("bad", ["https://a.example/", "https://A.example", "ftp://a.example", "a.example",
                                 "https://a.example:0", "https://a.example;evil", '"https://a.example"'])
def test_a_malformed_origin_stops_the_render(base, monkeypatch, bad):  # noqa: F811
    monkeypatch.setenv("PL_CORS_ORIGINS", bad)
    with pytest.raises(AssertionError, match="is not an origin"):
        render(base, SERVICES, "local")
