"""Function-to-function invocation (issue 4): no call tree escapes its budget.

The runaway test routes exist only with PL_TEST_ROUTES=1 and only on the
internal listener: /api/projects/_test/recurse invokes itself with no base
case, /_test/fanout invokes itself four times at every level and goes on
after a failed call. Each must stop, answer 508 quickly, and the whole tree
must make at most the budget (and, for a chain, the depth limit) of
invocations, counted both from the pool's scoreboard and from the log lines
that carry the tree's request id. Clients cannot forge the invocation
headers: nginx drops them on the public listener."""
import socket
import time
import uuid

import pytest
import requests

from conftest import VAR, assert_error, log_lines, pool_status, wait_until

BUDGET = 32     # PL_INVOKE_BUDGET's default
MAX_DEPTH = 8   # PL_INVOKE_MAX_DEPTH's default
QUICK_S = 5.0   # a refusal must come back well before any invocation timeout could add up


def counters(internal):
    return pool_status(internal, "projects")["counters"]


def delta(before, after, name):
    return after[name] - before[name]


def tree_lines(request_id):
    """The projects log lines of one call tree (its request id is kept throughout)."""
    return [ln for ln in log_lines("projects") if ln.get("request_id") == request_id]


def served_invocations(request_id):
    """Requests of the tree that arrived as invocations (depth >= 1): one per invocation made."""
    return [ln for ln in tree_lines(request_id) if ln.get("event") == "request" and ln.get("invoke_depth", 0) >= 1]


def run_tree(internal, route, headers=None):
    """Calls a runaway route on the internal listener with a fresh request id.
    Returns (response, seconds, counters before, counters after)."""
    rid = f"t-{route}-{uuid.uuid4().hex[:16]}"
    before = counters(internal)
    started = time.monotonic()
    r = internal.get(f"/api/projects/_test/{route}", headers={"X-Request-Id": rid, **(headers or {})}, timeout=30)
    elapsed = time.monotonic() - started
    after = counters(internal)
    assert r.headers.get("X-Request-Id") == rid
    return r, elapsed, before, after, rid


def wait_for_log(request_id, count):
    """Log lines are written after each response: wait for the whole tree's."""
    return wait_until(lambda: len(served_invocations(request_id)) >= count or None, timeout=10,
                      message=f"{count} invocation log lines of {request_id}")


@pytest.fixture(scope="module")
def pool_size(internal):
    return pool_status(internal, "projects")["max_children"]


def test_recursion_without_base_case_stops_quickly(internal, pool_size):
    r, elapsed, before, after, rid = run_tree(internal, "recurse")
    assert_error(r, 508, "invocation_depth_exceeded")
    assert elapsed < QUICK_S, f"508 took {elapsed:.2f}s"
    made = delta(before, after, "invocations_made")
    # a chain: one invocation per level, down to the depth limit, however few
    # workers the pool has (calls into the own service run in the caller's worker)
    assert made == min(MAX_DEPTH, BUDGET) > pool_size
    assert delta(before, after, "invoke_refused_depth") == 1
    assert delta(before, after, "invoke_refused_budget") == 0
    # the logs tell the same story, under the client's request id
    wait_for_log(rid, made)
    served = served_invocations(rid)
    assert len(served) == made
    assert sorted(ln["invoke_depth"] for ln in served) == list(range(1, made + 1))
    assert all(ln["handler"] == "prj_test_recurse" and ln["status"] == 508 for ln in served)
    refusals = [ln for ln in tree_lines(rid) if ln.get("event") == "invoke_refused"]
    assert len(refusals) == 1 and refusals[0]["reason"] == "depth" and refusals[0]["depth"] == made
    top = [ln for ln in tree_lines(rid) if ln.get("event") == "request" and "invoke_depth" not in ln]
    assert len(top) == 1 and top[0]["status"] == 508 and top[0]["invocations"] == made


def test_fanout_tree_stays_within_its_budget(internal):
    r, elapsed, before, after, rid = run_tree(internal, "fanout")
    assert r.status_code == 508, r.text
    assert r.json()["error"]["code"] in ("invocation_budget_exceeded", "invocation_depth_exceeded")
    assert elapsed < QUICK_S, f"508 took {elapsed:.2f}s"
    made = delta(before, after, "invocations_made")
    # the whole tree together, however it fans out: at most the budget, and
    # more than any single chain could make (it did fan out)
    assert MAX_DEPTH < made <= BUDGET, made
    assert delta(before, after, "invoke_refused_budget") >= 1
    wait_for_log(rid, made)
    served = served_invocations(rid)
    assert len(served) == made
    assert max(ln["invoke_depth"] for ln in served) <= MAX_DEPTH
    refused = delta(before, after, "invoke_refused_budget") + delta(before, after, "invoke_refused_depth")
    refusals = [ln for ln in tree_lines(rid) if ln.get("event") == "invoke_refused"]
    assert len(refusals) == refused >= 1
    assert {ln["reason"] for ln in refusals} <= {"budget", "depth"}
    assert all(ln["budget"] == 0 for ln in refusals if ln["reason"] == "budget")


@pytest.mark.parametrize("budget", [0, 1, 5, 10])
def test_a_smaller_budget_from_the_caller_is_honoured(internal, budget):
    """On the internal listener a caller hands its remaining budget down."""
    r, elapsed, before, after, rid = run_tree(internal, "fanout", {"X-Invoke-Budget": str(budget)})
    assert r.status_code == 508, r.text
    assert elapsed < QUICK_S
    made = delta(before, after, "invocations_made")
    assert made <= budget
    if budget == 0:
        assert_error(r, 508, "invocation_budget_exceeded")
        assert delta(before, after, "invoke_refused_budget") == 4  # the root tried all four calls
    wait_for_log(rid, made)
    assert len(served_invocations(rid)) == made


def test_a_caller_cannot_raise_the_budget(internal):
    r, _, before, after, _ = run_tree(internal, "fanout", {"X-Invoke-Budget": "1000000"})
    assert r.status_code == 508
    assert delta(before, after, "invocations_made") <= BUDGET


def test_depth_past_the_limit_is_refused_before_the_handler_runs(internal, make_user):
    for path in ("/api/projects/_test/recurse", "/api/projects/_test/fanout"):
        rid = f"t-depth-{uuid.uuid4().hex[:16]}"
        before = counters(internal)
        r = internal.get(path, headers={"X-Invoke-Depth": str(MAX_DEPTH + 1), "X-Request-Id": rid})
        after = counters(internal)
        assert_error(r, 508, "invocation_depth_exceeded")
        assert delta(before, after, "invocations_made") == 0  # the handler, which always invokes, never ran
        assert delta(before, after, "invoke_refused_depth") == 1
        wait_until(lambda: [ln for ln in tree_lines(rid) if ln.get("event") == "invoke_refused"], timeout=10,
                   message="the refusal's log line")
        lines = tree_lines(rid)
        assert [ln["reason"] for ln in lines if ln.get("event") == "invoke_refused"] == ["depth"]
    # a real endpoint too: even with a valid token, nothing runs
    user = make_user(display_name="Deep")
    r = internal.get("/api/projects", token=user.token, headers={"X-Invoke-Depth": "9"})
    assert_error(r, 508, "invocation_depth_exceeded")
    r = internal.post("/api/projects", {"name": "never"}, token=user.token, headers={"X-Invoke-Depth": "9"})
    assert_error(r, 508, "invocation_depth_exceeded")
    assert internal.get("/api/projects", token=user.token).json()["projects"] == []


def test_at_the_depth_limit_the_handler_runs_but_cannot_invoke(internal):
    before = counters(internal)
    r = internal.get("/api/projects/_test/recurse", headers={"X-Invoke-Depth": str(MAX_DEPTH)})
    after = counters(internal)
    assert_error(r, 508, "invocation_depth_exceeded")
    assert delta(before, after, "invocations_made") == 0
    assert delta(before, after, "invoke_refused_depth") == 1


@pytest.mark.parametrize("header,value", [
    ("X-Invoke-Depth", "abc"), ("X-Invoke-Depth", "-1"), ("X-Invoke-Depth", "99999999"),
    ("X-Invoke-Depth", "1.5"), ("X-Invoke-Budget", "-5"), ("X-Invoke-Budget", "lots"),
])
def test_malformed_invoke_headers_on_the_internal_listener(internal, header, value):
    before = counters(internal)
    assert_error(internal.get("/api/projects/_test/recurse", headers={header: value}), 400, "invalid_request")
    assert delta(before, counters(internal), "invocations_made") == 0


def test_clients_cannot_forge_invoke_headers(api, internal, make_user):
    """The public listener drops X-Invoke-*: a client can neither claim to be
    deep in a call tree nor hand itself a budget of 0 (or more than 32)."""
    user = make_user(display_name="Forger")
    r = api.post("/api/projects", {"name": "primary"}, token=user.token)
    assert r.status_code == 201
    pid = r.json()["project"]["id"]
    forged = {"X-Invoke-Budget": "0", "X-Invoke-Depth": "9", "X-Invoke-Spent": "1000"}
    r = api.patch("/api/accounts/me", {"primary_project_id": pid}, token=user.token, headers=forged)
    assert r.status_code == 200, r.text
    for headers in (forged, {"X-Invoke-Budget": "0"}, {"X-Invoke-Depth": "9"}, {"x-invoke-depth": "100"}):
        before = counters(internal)
        r = api.get("/api/projects/primary", token=user.token, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["project"]["id"] == pid
        assert "X-Invoke-Spent" not in r.headers
        assert delta(before, counters(internal), "invocations_made") == 2  # accounts, then get project
    # a plain project request is not refused either
    r = api.get(f"/api/projects/{pid}", token=user.token, headers={"X-Invoke-Depth": "9"})
    assert r.status_code == 200, r.text
    # and the test routes are not there at all
    assert_error(api.get("/api/projects/_test/recurse", headers=forged), 404, "not_found")


def test_primary_is_one_call_tree(api, internal, make_user):
    """GET primary: two invocations under the client's request id, each one
    hop deep, and the tree's total reported at the top."""
    user = make_user(display_name="Tree")
    pid = api.post("/api/projects", {"name": "p"}, token=user.token).json()["project"]["id"]
    assert api.patch("/api/accounts/me", {"primary_project_id": pid}, token=user.token).status_code == 200
    r = api.get("/api/projects/primary", token=user.token)
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]

    def lines():
        found = [ln for ln in tree_lines(rid) if ln.get("event") == "request"]
        return found if len(found) == 2 else None

    found = wait_until(lines, timeout=10, message="the primary tree's projects log lines")
    by_handler = {ln["handler"]: ln for ln in found}
    assert by_handler["prj_project_primary"]["invocations"] == 2
    assert "invoke_depth" not in by_handler["prj_project_primary"]
    assert by_handler["prj_project_get"]["invoke_depth"] == 1
    assert by_handler["prj_project_get"]["user_id"] == user.id
    acc = wait_until(lambda: [ln for ln in log_lines("accounts")
                              if ln.get("request_id") == rid and ln.get("event") == "request"] or None,
                     timeout=10, message="the accounts log line")
    assert len(acc) == 1 and acc[0]["handler"] == "acc_me_get" and acc[0]["invoke_depth"] == 1


def test_calls_between_local_pools_skip_nginx(api, make_user):
    """With the pools' sockets on this host (PL_INVOKE_SOCKET_DIR, set by the
    runner), GET primary's call to accounts goes straight to an accounts pool
    over FastCGI: accounts serves it (depth 1) and nginx's access log has no
    line for it. A socket whose pool is gone (nothing listens) is skipped."""
    user = make_user(display_name="Direct")
    pid = api.post("/api/projects", {"name": "p"}, token=user.token).json()["project"]["id"]
    assert api.patch("/api/accounts/me", {"primary_project_id": pid}, token=user.token).status_code == 200
    dead = VAR / "run" / "accounts-97.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(dead))
    s.close()  # the name stays; connecting to it is refused
    try:
        time.sleep(2.5)  # callers look for sockets again every 2 s
        rids = []
        for _ in range(6):
            r = api.get("/api/projects/primary", token=user.token)
            assert r.status_code == 200, r.text
            rids.append(r.headers["X-Request-Id"])
    finally:
        dead.unlink()
    for rid in rids:
        acc = wait_until(lambda: [ln for ln in log_lines("accounts") if ln.get("request_id") == rid
                                  and ln.get("event") == "request" and ln["handler"] == "acc_me_get"] or None,
                         timeout=10, message="the accounts log line")
        assert acc[0]["invoke_depth"] == 1
        seen = wait_until(lambda: [ln["uri"] for ln in log_lines("nginx-access") if ln.get("request_id") == rid] or None,
                          timeout=10, message="nginx's line for the client's request")
        assert seen == ["/api/projects/primary"], seen


def test_invocation_carries_the_callers_token(api, internal, make_user):
    """accounts' PATCH me invokes projects as the caller: another user's
    project is not readable through it, and no token means no invocation."""
    a, b = make_user(display_name="A"), make_user(display_name="B")
    pid = api.post("/api/projects", {"name": "b's"}, token=b.token).json()["project"]["id"]
    before = pool_status(internal, "accounts")["counters"]
    assert_error(api.patch("/api/accounts/me", {"primary_project_id": pid}, token=a.token), 422,
                 "project_not_found")
    assert_error(api.patch("/api/accounts/me", {"primary_project_id": pid}), 401, "missing_token")
    assert api.patch("/api/accounts/me", {"primary_project_id": pid}, token=b.token).status_code == 200
    # only the two authenticated PATCHes invoked projects, once each
    after = pool_status(internal, "accounts")["counters"]
    assert delta(before, after, "invocations_made") == 2


def test_calls_into_the_own_pool_do_not_starve_a_busy_pool(api, internal, make_user, pool_size):
    """GET primary invokes projects from projects. With more concurrent callers
    than the pool has workers, every caller still gets its answer: the inner
    call runs in the caller's worker instead of waiting in the backlog behind
    other callers that hold every worker."""
    from concurrent.futures import ThreadPoolExecutor

    user = make_user(display_name="Busy")
    pid = api.post("/api/projects", {"name": "p"}, token=user.token).json()["project"]["id"]
    assert api.patch("/api/accounts/me", {"primary_project_id": pid}, token=user.token).status_code == 200
    callers = 3 * pool_size

    def one(_):
        r = requests.get(api.base + "/api/projects/primary", headers={"Authorization": f"Bearer {user.token}"},
                         timeout=30)
        return r.status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=callers) as ex:
        statuses = list(ex.map(one, range(callers * 2)))
    assert statuses == [200] * len(statuses), statuses
    assert time.monotonic() - started < QUICK_S * 2
    assert pool_status(internal, "projects")["max_children"] == pool_size


def test_two_pools_waiting_on_each_other_do_not_deadlock(api, internal, make_user, pool_size):
    """accounts' PATCH me waits on projects while projects' DELETE of a primary
    project waits on accounts. With both pools full of such callers, a worker
    that waits on another service does not count against max_children, so each
    pool starts workers for the other's calls instead of both waiting until the
    invocations time out."""
    from concurrent.futures import ThreadPoolExecutor

    n = pool_size  # as many of each as a pool has workers: it may not wait at all
    users = [make_user(display_name=f"Mutual {i}") for i in range(n)]
    keep, doomed = [], []
    for u in users:
        keep.append(api.post("/api/projects", {"name": "keep"}, token=u.token).json()["project"]["id"])
        doomed.append(api.post("/api/projects", {"name": "doomed"}, token=u.token).json()["project"]["id"])
        assert api.patch("/api/accounts/me", {"primary_project_id": doomed[-1]}, token=u.token).status_code == 200

    def call(job):
        kind, i = job
        h = {"Authorization": f"Bearer {users[i].token}"}
        if kind == "patch":  # accounts -> projects: may the user read the new primary?
            r = requests.patch(api.base + "/api/accounts/me", json={"primary_project_id": keep[i]}, headers=h,
                               timeout=30)
            return r.status_code, r.json()["user"]["primary_project_id"] if r.status_code == 200 else r.text
        r = requests.delete(api.base + f"/api/projects/{doomed[i]}", headers=h, timeout=30)  # projects -> accounts
        return r.status_code, None

    jobs = [(k, i) for i in range(n) for k in ("patch", "delete")]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(jobs)) as ex:
        results = dict(zip(jobs, ex.map(call, jobs)))
    elapsed = time.monotonic() - started
    assert all(results[("delete", i)][0] == 204 for i in range(n)), results
    assert all(results[("patch", i)] == (200, keep[i]) for i in range(n)), results
    assert elapsed < QUICK_S * 2, f"took {elapsed:.1f}s"
    # whichever came first, the primary is the kept project (clearing the
    # deleted one clears only that one)
    for i, u in enumerate(users):
        assert api.get("/api/accounts/me", token=u.token).json()["user"]["primary_project_id"] == keep[i]


def test_a_pool_full_of_waiting_callers_starts_workers_for_calls_back_into_it(internal, pool_size):
    """As many calls as accounts has workers, each waiting on projects, which
    calls back into accounts: the call back needs a worker beyond
    max_children. Waiting workers do not count, so it gets one (and the pool
    never runs more than twice max_children)."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import quote

    inner = "/api/accounts/_test/sleep?ms=300"
    middle = "/api/projects/_test/invoke?path=" + quote(inner, safe="")
    outer = "/api/accounts/_test/invoke?path=" + quote(middle, safe="")
    before = pool_status(internal, "accounts")["counters"]

    def one(_):
        return requests.get(internal.base + outer, timeout=30)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=pool_size) as ex:
        answers = list(ex.map(one, range(pool_size)))
    elapsed = time.monotonic() - started
    for r in answers:
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == 200 and body["body"]["status"] == 200, body
        assert body["body"]["body"]["slept_ms"] == 300
    assert elapsed < 2.0, f"took {elapsed:.2f}s: the calls back waited for a worker"
    st = pool_status(internal, "accounts")
    assert st["max_children"] == pool_size
    assert pool_size < st["counters"]["peak_workers"] <= 2 * pool_size
    assert st["counters"]["spawns"] > before["spawns"]
