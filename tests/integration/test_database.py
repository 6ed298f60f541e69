"""MariaDB behind the services (issue 2): a stopped server is a clean 503
`database_unavailable` and its return is picked up without restarting any
pool; migrations applied twice change nothing (also two runs at once); each
service's DB user reaches its own schema only."""
import concurrent.futures
import os
import pathlib
import secrets
import subprocess
import uuid

import pytest

from conftest import DB_SOCKET, ROOT, SERVICES, VAR, assert_error, master_pid, sql, unique_email, wait_until

BUILD_DIR = pathlib.Path(os.environ.get("PL_BUILD_DIR", ROOT / "build"))
MIGRATE = BUILD_DIR / "tools" / "pl-migrate"


# --- MariaDB down and back ------------------------------------------------------------


def proc_state(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def running(pid):
    """It exists and is not a zombie (a stopped server lingers as one for a while)."""
    return proc_state(pid) not in (None, "Z", "X")


def db_answers():
    return subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={DB_SOCKET}", "--connect-timeout=2", "ping"],
                          capture_output=True).returncode == 0


def mariadb_pid():
    return int((VAR / "run" / "mysqld.pid").read_text().strip())


def start_mariadb(cmdline):
    """Starts mariadbd again as ./pilotlight's db_start does (the same command
    line, in its own session, output appended to its log)."""
    with open(VAR / "log" / "mysqld.log", "ab") as log:
        subprocess.run(["setsid", "-f", *cmdline], stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True)
    wait_until(lambda: (VAR / "run" / "mysqld.sock").exists() and db_answers(), timeout=60, interval=0.2,
               message="MariaDB to answer again")


def test_database_down_gives_503_and_recovers_without_restarts(api, make_user):
    user = make_user(display_name="Survivor")
    for svc in SERVICES:
        assert api.get(f"/api/{svc}/health").status_code == 200  # workers with a live connection
    masters = {svc: master_pid(svc) for svc in SERVICES}
    pid = mariadb_pid()
    cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    assert cmdline[0].endswith(b"mariadbd"), cmdline
    os.kill(pid, 15)
    try:
        wait_until(lambda: not running(pid), timeout=60, interval=0.1, message="mariadbd to stop")
        assert not db_answers()
        for svc in SERVICES:
            r = api.get(f"/api/{svc}/health")
            assert_error(r, 503, "database_unavailable")
            assert r.headers.get("X-Request-Id")
        assert_error(api.post("/api/accounts/login", {"email": user.email, "password": user.password}), 503,
                     "database_unavailable")
        assert_error(api.post("/api/accounts/signup", {"email": unique_email(), "password": "p" * 12,
                                                       "display_name": "x"}), 503, "database_unavailable")
        assert_error(api.get("/api/accounts/me", token=user.token), 503, "database_unavailable")
        assert_error(api.get("/api/projects", token=user.token), 503, "database_unavailable")
        # what needs no database still works: the token is verified with the public key alone
        assert api.get("/api/accounts/.well-known/jwks.json").status_code == 200
        assert_error(api.get("/api/accounts/me", token=user.token + "x"), 401, "invalid_token")
    finally:
        if not db_answers():
            start_mariadb([a.decode() for a in cmdline])
    assert mariadb_pid() != pid
    # the very next request of every service reconnects, in the same pools
    for svc in SERVICES:
        r = api.get(f"/api/{svc}/health")
        assert r.status_code == 200, r.text
        assert r.json()["database"] == "ok"
    assert {svc: master_pid(svc) for svc in SERVICES} == masters
    r = api.get("/api/accounts/me", token=user.token)
    assert r.status_code == 200 and r.json()["user"]["email"] == user.email
    user.relogin()
    assert api.get("/api/projects", token=user.token).status_code == 200


# --- migrations -------------------------------------------------------------------------


def migrate_env(svc, **extra):
    """The environment ./pilotlight's migrate gives pl-migrate for a service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PL_")}
    env.update(PL_DB_SOCKET=DB_SOCKET, PL_DB_PASSWORD_FILE=str(VAR / "secrets" / f"db_{svc}.password"))
    prefix = f"PL_{svc.upper()}_"
    env.update({"PL_" + k[len(prefix):]: v for k, v in os.environ.items() if k.startswith(prefix)})
    env.update(extra)
    return env


def migrate(svc, directory, env=None, *args):
    return subprocess.run([str(MIGRATE), "--service", svc, "--dir", str(directory), *args],
                          env=env or migrate_env(svc), capture_output=True, text=True, timeout=120)


def schema_snapshot(schema):
    return {
        "migrations": sql("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version", schema),
        "columns": sql("SELECT table_name, column_name, column_type, is_nullable, column_default, extra "
                       f"FROM information_schema.columns WHERE table_schema = '{schema}' "
                       "ORDER BY table_name, ordinal_position"),
        "indexes": sql("SELECT table_name, index_name, column_name, seq_in_index, non_unique "
                       f"FROM information_schema.statistics WHERE table_schema = '{schema}' "
                       "ORDER BY table_name, index_name, seq_in_index"),
        "grants": sql(f"SHOW GRANTS FOR '{schema}'@'%'"),
    }


@pytest.mark.parametrize("svc", SERVICES)
def test_migrations_applied_again_change_nothing(api, svc):
    before = schema_snapshot(svc)
    files = sorted(p.name for p in (ROOT / "migrations" / svc).glob("*.sql"))
    assert [row[1] for row in before["migrations"]] == files
    r = migrate(svc, ROOT / "migrations" / svc)
    assert r.returncode == 0, r.stderr
    assert schema_snapshot(svc) == before
    r = migrate(svc, ROOT / "migrations" / svc, None, "--status")
    assert r.returncode == 0 and "0 pending" in r.stdout, r.stdout
    assert api.get(f"/api/{svc}/health").status_code == 200  # the running pool is unaffected


@pytest.fixture
def scratch_service(tmp_path):
    """A throw-away service name with its own password and migrations folder;
    its schema and user are dropped afterwards."""
    name = "pltest_" + uuid.uuid4().hex[:8]
    pw = tmp_path / "db.password"
    pw.write_text(secrets.token_urlsafe(24))
    pw.chmod(0o600)
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "001_things.sql").write_text("CREATE TABLE things (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL);\n")
    (mig / "002_seed.sql").write_text("INSERT INTO things VALUES (1, 'one');\nINSERT INTO things VALUES (2, 'two');\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PL_")}
    env.update(PL_DB_SOCKET=DB_SOCKET, PL_DB_PASSWORD_FILE=str(pw))
    yield name, mig, env
    sql(f"DROP DATABASE IF EXISTS {name}")
    sql(f"DROP USER IF EXISTS '{name}'@'%'")


def test_migrations_apply_once_even_run_twice_at_once(scratch_service):
    name, mig, env = scratch_service
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda _: migrate(name, mig, env), range(2)))
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    rows = sql("SELECT version, name FROM schema_migrations ORDER BY version", name)
    assert rows == [["1", "001_things.sql"], ["2", "002_seed.sql"]]
    assert sql("SELECT id, label FROM things ORDER BY id", name) == [["1", "one"], ["2", "two"]]
    before = schema_snapshot(name)
    r = migrate(name, mig, env)
    assert r.returncode == 0, r.stderr
    assert schema_snapshot(name) == before
    assert sql("SELECT COUNT(*) FROM things", name) == [["2"]]  # the seed ran once
    # a new file is applied alone, after the others
    (mig / "003_more.sql").write_text("INSERT INTO things VALUES (3, 'three');\n")
    r = migrate(name, mig, env)
    assert r.returncode == 0, r.stderr
    assert sql("SELECT COUNT(*) FROM things", name) == [["3"]]
    assert len(sql("SELECT version FROM schema_migrations", name)) == 3
    # an applied file that changed is refused, and nothing is applied
    (mig / "002_seed.sql").write_text("INSERT INTO things VALUES (9, 'nine');\n")
    (mig / "004_later.sql").write_text("INSERT INTO things VALUES (4, 'four');\n")
    r = migrate(name, mig, env)
    assert r.returncode == 1
    assert sql("SELECT COUNT(*) FROM things", name) == [["3"]]
    assert len(sql("SELECT version FROM schema_migrations", name)) == 3


# --- one DB user per service ---------------------------------------------------------------


def as_service(svc, statement):
    pw = (VAR / "secrets" / f"db_{svc}.password").read_text().strip()
    return subprocess.run(["mariadb", "--no-defaults", f"--socket={DB_SOCKET}", "-u", svc, "--batch",
                           "--skip-column-names", "-e", statement],
                          env={**os.environ, "MYSQL_PWD": pw}, capture_output=True, text=True, timeout=30)


TABLE_OF = {"accounts": "users", "projects": "projects", "chat": "messages"}


@pytest.mark.parametrize("svc", SERVICES)
def test_a_service_user_reaches_only_its_own_schema(svc):
    own = as_service(svc, f"SELECT COUNT(*) FROM {svc}.{TABLE_OF[svc]}")
    assert own.returncode == 0, own.stderr  # the credentials work
    shown = as_service(svc, "SHOW DATABASES")
    assert sorted(shown.stdout.split()) == sorted(["information_schema", svc])
    for other in SERVICES:
        if other == svc:
            continue
        table = f"{other}.{TABLE_OF[other]}"
        for statement in (f"SELECT * FROM {table} LIMIT 1", f"DELETE FROM {table} WHERE 1 = 0", f"USE {other}",
                          f"CREATE TABLE {other}.intruder (id INT)", f"DROP TABLE IF EXISTS {other}.no_such_table"):
            r = as_service(svc, statement)
            assert r.returncode != 0, (svc, statement, r.stdout)
            assert "denied" in r.stderr, r.stderr
    for statement in ("SELECT user FROM mysql.user", "CREATE DATABASE intruder", "GRANT ALL ON *.* TO CURRENT_USER"):
        r = as_service(svc, statement)
        assert r.returncode != 0 and "denied" in r.stderr.lower(), (svc, statement, r.stderr)
    # and nothing of the others went missing
    for other in SERVICES:
        assert sql(f"SHOW TABLES LIKE '{TABLE_OF[other]}'", other) == [[TABLE_OF[other]]]
