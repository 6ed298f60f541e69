"""Deleting an account (issue 15): the user's own (password, and a code when
MFA is on) or an admin's. Projects deletes the user's projects, chat
anonymises the user's messages and removes their projects' rooms, each
through its own internal function; then the account goes with everything of
it. No row in any of the three schemas names the user afterwards. A
service that cannot be reached stops it with 503 and nothing deleted in
accounts; retrying then works."""
import os
import subprocess

from conftest import ROOT, VAR, assert_error, sql, wait_until
from lifecycle import client, rows_of, signup_login, wait_mail
from test_mfa import enable

GONE = {"accounts.users": "0", "accounts.refresh_tokens": "0", "accounts.sessions": "0",
        "accounts.one_time_tokens": "0", "accounts.recovery_codes": "0", "projects.projects": "0",
        "chat.messages": "0", "chat.live_tickets": "0"}


def populate(api, user, stranger):
    """The user's traces everywhere: 2 projects, messages in the lobby and in
    a project's room (a stranger's message too, let in by an admin... here the
    user's own), a live ticket, a pending link. Returns the project ids."""
    pids = []
    for name in ("one", "two"):
        r = api.post("/api/projects", {"name": name}, token=user.token)
        assert r.status_code == 201, r.text
        pids.append(r.json()["project"]["id"])
    for room in ("lobby", f"project-{pids[0]}"):
        r = api.post(f"/api/chat/rooms/{room}/messages", {"body": f"hello {room}", "client_msg_id": f"m-{room}"},
                     token=user.token)
        assert r.status_code == 201, r.text
    assert api.post(f"/api/chat/rooms/project-{pids[0]}/ticket", token=user.token).status_code == 201
    r = stranger.api.post("/api/chat/rooms/lobby/messages", {"body": "not theirs"}, token=stranger.token)
    assert r.status_code == 201
    return pids


def orphans():
    """Rows anywhere that name a user who does not exist (chat's author 0 is
    "no author", an anonymised message). The revocation feed keeps a deleted
    user's id on purpose: it refuses their access tokens until they expire.
    (A user's primary_project_id may point at a deleted project by design,
    docs/api/projects.md: that is another user's row, and no user reference.)"""
    q = {
        "accounts": ["SELECT COUNT(*) FROM refresh_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE u.id IS NULL",
                     "SELECT COUNT(*) FROM sessions t LEFT JOIN users u ON u.id = t.user_id WHERE u.id IS NULL",
                     "SELECT COUNT(*) FROM one_time_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE u.id IS NULL",
                     "SELECT COUNT(*) FROM recovery_codes t LEFT JOIN users u ON u.id = t.user_id WHERE u.id IS NULL"],
        "projects": ["SELECT COUNT(*) FROM projects WHERE owner_id NOT IN (SELECT id FROM accounts.users)"],
        "chat": ["SELECT COUNT(*) FROM messages WHERE author_id <> 0 AND author_id NOT IN "
                 "(SELECT id FROM accounts.users)",
                 "SELECT COUNT(*) FROM live_tickets WHERE user_id NOT IN (SELECT id FROM accounts.users)"],
    }
    return {f"{db}: {s}": sql(s, db)[0][0] for db, stmts in q.items() for s in stmts if sql(s, db)[0][0] != "0"}


def test_deleting_my_account_leaves_nothing_behind(admin):
    api = client()
    user, stranger = signup_login(api), signup_login(client())
    pids = populate(api, user, stranger)
    sql(f"UPDATE users SET primary_project_id = {pids[1]} WHERE id = {user.id}", "accounts")
    lobby_id = api.get("/api/chat/rooms/lobby/messages?limit=200", token=user.token).json()["messages"]
    mine = [m["id"] for m in lobby_id if m["author_id"] == user.id]
    # the project room also holds an admin's message: the room goes with the project
    r = api.post(f"/api/chat/rooms/project-{pids[0]}/messages", {"body": "admin was here"}, token=admin.token)
    assert r.status_code == 201
    before = orphans()

    assert_error(api.post("/api/accounts/me/delete", {"current_password": "not my password"}, token=user.token),
                 403, "wrong_password")
    assert rows_of(user.id)["accounts.users"] == "1"
    r = api.post("/api/accounts/me/delete", {"current_password": user.password}, token=user.token)
    assert r.status_code == 204, r.text
    assert rows_of(user.id) == GONE
    assert sql("SELECT COUNT(*) FROM messages WHERE room IN "
               f"('project-{pids[0]}', 'project-{pids[1]}')", "chat") == [["0"]]
    # the lobby keeps the messages, without their author
    shown = {m["id"]: m for m in api.get("/api/chat/rooms/lobby/messages?limit=200",
                                         token=stranger.token).json()["messages"]}
    for mid in mine:
        assert shown[mid]["author_id"] == 0 and shown[mid]["author_name"] == "Deleted user"
        assert shown[mid]["client_msg_id"] is None and shown[mid]["body"] == "hello lobby"
    assert orphans() == before == {}
    # the user is gone: login, refresh, and the access token everywhere
    assert_error(api.post("/api/accounts/login", {"email": user.email, "password": user.password}), 401,
                 "invalid_credentials")
    assert_error(api.post("/api/accounts/refresh", {"refresh_token": user.refresh_token}), 401,
                 "invalid_refresh_token")
    wait_until(lambda: api.post("/api/projects", {"name": "after"}, token=user.token).status_code == 401,
               timeout=5, interval=0.1, message="projects to refuse the deleted user's token")
    assert "deleted" in wait_mail(user.email, "account was deleted").get_body(
        preferencelist=("plain",)).get_content()
    # the second pass (after the revocation reached every pool) finds nothing more
    passes = lambda: [ln for ln in accounts_log("owner_projects_deleted", "projects")
                      if ln.get("msg", "").startswith(f"user {user.id}: ")]
    wait_until(lambda: len(passes()) == 2, timeout=10, message="the second pass")
    assert rows_of(user.id) == GONE
    # the address can sign up again, as a new account
    again = signup_login(api, email=user.email)
    assert again.id != user.id


def accounts_log(event, name="accounts"):
    from conftest import log_lines
    return [ln for ln in log_lines(name) if ln.get("event") == event]


def test_with_mfa_on_deleting_needs_a_code():
    api = client()
    user = signup_login(api)
    codes, recovery = enable(api, user)
    assert_error(api.post("/api/accounts/me/delete", {"current_password": user.password}, token=user.token), 422,
                 "mfa_code_required")
    assert_error(api.post("/api/accounts/me/delete", {"current_password": user.password, "code": "12345"},
                          token=user.token), 422, "invalid_field")
    r = api.post("/api/accounts/me/delete", {"current_password": user.password, "code": codes.next()},
                 token=user.token)
    assert r.status_code == 204, r.text
    assert rows_of(user.id) == GONE


def test_an_admin_deletes_a_user_but_not_the_last_admin(admin):
    api = client()
    user, stranger = signup_login(api), signup_login(client())
    populate(api, user, stranger)
    assert_error(api.delete(f"/api/accounts/users/{user.id}", token=stranger.token), 403, "forbidden")
    r = api.delete(f"/api/accounts/users/{user.id}", token=admin.token)
    assert r.status_code == 204, r.text
    assert rows_of(user.id) == GONE
    assert_error(api.delete(f"/api/accounts/users/{user.id}", token=admin.token), 404, "not_found")
    # the stack's one admin cannot go; nothing of theirs was touched
    admins = sql("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0", "accounts")[0][0]
    if admins == "1":
        before = rows_of(admin.id)
        assert_error(api.delete(f"/api/accounts/users/{admin.id}", token=admin.token), 409, "last_admin")
        assert_error(api.post("/api/accounts/me/delete", {"current_password": admin.password}, token=admin.token),
                     409, "last_admin")
        assert rows_of(admin.id) == before
    assert orphans() == {}


def chat_pool(action):
    if action == "stop":
        subprocess.run(["start-stop-daemon", "--stop", "--quiet", "--pidfile", str(VAR / "run" / "chat.supervisor.pid"),
                        "--retry", "TERM/15"], check=True)
    else:
        p = subprocess.run([str(ROOT / "pilotlight"), "up"], env=dict(os.environ, PL_VAR=str(VAR)),
                           capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, p.stdout + p.stderr


def test_a_service_down_stops_the_deletion_and_a_retry_finishes_it():
    api = client()
    user, stranger = signup_login(api), signup_login(client())
    pids = populate(api, user, stranger)
    before = rows_of(user.id)
    chat_pool("stop")
    try:
        r = api.post("/api/accounts/me/delete", {"current_password": user.password}, token=user.token)
        assert_error(r, 503, "service_unavailable")
        # nothing deleted in accounts, nor in projects (chat comes first)
        assert rows_of(user.id) == before
        assert api.get(f"/api/projects/{pids[0]}", token=user.token).status_code == 200
    finally:
        chat_pool("start")
    r = api.post("/api/accounts/me/delete", {"current_password": user.password}, token=user.token)
    assert r.status_code == 204, r.text
    assert rows_of(user.id) == GONE
    assert orphans() == {}
