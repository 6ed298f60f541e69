#!/usr/bin/python3
"""multihost.py: Pilotlight on several hosts, on one machine (issue 19).

Each host is a network namespace with an address of its own on one bridge
(10.77.0.0/24, the bridge in a namespace of its own too: nothing of the
machine's own network is touched), linked by veth pairs:

  plmh-cli    10.77.0.2    this driver (its clients and live subscribers)
  plmh-fe1/2  10.77.0.11/12  fronts: nginx + nchan (nginx/render.sh), channels in Redis
  plmh-svc1/2 10.77.0.21/22  service hosts: the accounts, projects and chat pools on TCP
  plmh-redis  10.77.0.31   redis-server
  plmh-db1/2/3 10.77.0.41-43  a MariaDB Galera cluster (galera-4)

The fronts list both service hosts' pools (PL_UPSTREAM_<SVC>); the pools
list the three database nodes (PL_DB_HOSTS) and reach the fronts' internal
listeners by one name, pl-gateway, that resolves to both (the service hosts'
/etc/hosts, through `ip netns exec`'s /etc/netns): invocations and chat's
publishes reach whichever front answers. projects on svc2 lists the nodes
the other way round, on purpose: its writes and svc1's meet on two nodes,
so Galera's certification conflicts happen and are retried.

Through both fronts at once, a bounded load (sign-ups, logins, project
creates and updates, chat posts with live WebSocket subscribers on each
front), one phase after another, one fault each:

  baseline             none
  service host cut     svc2's link down for a while, then up again
  database node killed db1 (every worker's first choice) SIGKILLed
  Redis stopped        Redis killed, started again a few seconds later
  front stopped        fe1's nginx SIGKILLed; its clients move to fe2

Then: every acknowledged write is in the database exactly once with its
content, a failed one whole or not at all; every subscriber holds every
message of its room, once and in order, after it filled its gap from
history; failures are counted per phase, and only those a phase allows (a
request in flight on what was lost) are there. db1 then rejoins the cluster
and must hold the same data.

Before all that, when it is given a running single-host stack
(PL_MULTIHOST_FROM_VAR, its PL_VAR, and PL_MULTIHOST_FROM_URL, its URL: as
`./pilotlight test` does), the cluster starts from that stack's data, moved
as docs/scaling-out.md says: a user, a project and a chat message made
there, `./pilotlight backup` of that stack, `./pilotlight restore --unpack`,
the dump loaded into db1 (Galera replicates it), the token keys given to the
service hosts, the migrations run. Then the user logs in through a front,
its token from the single host still verifies, its refresh token still
refreshes, and its project, its message and every row are there.

  multihost.py              as root: builds the hosts, runs itself inside
                            plmh-cli, and removes every namespace and process
                            it made, whatever happens
Environment: PL_ROOT (the checkout), PL_BUILD_DIR (the binaries),
PL_MULTIHOST_VAR (its state; default $PL_VAR/multihost),
PL_MULTIHOST_FROM_VAR and PL_MULTIHOST_FROM_URL (above; optional).
"""
import calendar
import collections
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import requests
import websocket

ROOT = pathlib.Path(os.environ.get("PL_ROOT", pathlib.Path(__file__).resolve().parents[2]))
BUILD = pathlib.Path(os.environ.get("PL_BUILD_DIR", ROOT / "build"))
VAR = pathlib.Path(os.environ.get("PL_MULTIHOST_VAR",
                                  pathlib.Path(os.environ.get("PL_VAR", ROOT / "var")) / "multihost")).resolve()
SERVICES = (ROOT / "services" / "list").read_text().split()
NET = "10.77.0"
HOSTS = {"cli": 2, "fe1": 11, "fe2": 12, "svc1": 21, "svc2": 22, "redis": 31, "db1": 41, "db2": 42, "db3": 43}
FRONTS, SVC_HOSTS, DBS = ("fe1", "fe2"), ("svc1", "svc2"), ("db1", "db2", "db3")
PORT = {svc: 9001 + i for i, svc in enumerate(SERVICES)}  # each pool's TCP port on a service host
HTTP_PORT, INTERNAL_PORT = 8080, 8081
NS = "plmh-"
SWITCH = NS + "sw"
GALERA = "/usr/lib/galera/libgalera_smm.so"
MARIADBD = "/usr/sbin/mariadbd"
NGINX = "/usr/sbin/nginx"
PASSWORD = "multihost password, long enough"

# Bounds: the load and each phase (seconds); everything here is on a shared
# 2-core machine, so the load is small and the timeouts generous.
CLIENTS = 6                     # client threads, half on each front
THINK_S = (0.01, 0.04)          # pause between a client's requests
READ_TIMEOUT = "6s"             # nginx: a pool that sent nothing for this long fails the request
REQUEST_TIMEOUT = 20.0          # the driver's own: a request taking longer is a hang
CUT_S, DB_S, REDIS_DOWN_S, REDIS_AFTER_S, FRONT_S, BASE_S = 9.0, 9.0, 4.0, 11.0, 10.0, 5.0
IN_FLIGHT_S = 1.0               # a failure that started this long after its fault is not "in flight"
MOVED = VAR / "one-host"        # the single-host stack's backup, unpacked, and what was made there
TABLES = (("accounts", "users"), ("projects", "projects"), ("chat", "messages"))


def addr(host):
    return f"{NET}.{HOSTS[host]}"


def say(msg):
    print(f"multihost: {msg}", flush=True)


def run(*cmd, check=True, timeout=60, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
    return r


# --- the hosts (outside: root namespace) ---------------------------------------------------------

def namespaces():
    r = run("ip", "netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.startswith(NS)]


def cleanup():
    """Every process in our namespaces, the namespaces, their /etc/netns files."""
    for ns in namespaces():
        pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    deadline = time.time() + 10
    while time.time() < deadline and any(run("ip", "netns", "pids", ns, check=False).stdout.split()
                                         for ns in namespaces()):
        time.sleep(0.1)
    for ns in namespaces():
        run("ip", "netns", "del", ns, check=False)
    for d in pathlib.Path("/etc/netns").glob(NS + "*"):
        shutil.rmtree(d, ignore_errors=True)
    try:
        pathlib.Path("/etc/netns").rmdir()  # only when empty (then it was ours)
    except OSError:
        pass


def build_hosts():
    run("ip", "netns", "add", SWITCH)
    run("ip", "-n", SWITCH, "link", "add", "br0", "type", "bridge")
    run("ip", "-n", SWITCH, "link", "set", "br0", "up")
    for host, n in HOSTS.items():
        ns = NS + host
        run("ip", "netns", "add", ns)
        run("ip", "-n", SWITCH, "link", "add", f"v-{host}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "-n", SWITCH, "link", "set", f"v-{host}", "master", "br0", "up")
        run("ip", "-n", ns, "addr", "add", f"{NET}.{n}/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
    # A database host notices a client host that vanished (and ends its
    # sessions: transactions, named locks) in about 2 s, not hours, well
    # within a room lock's wait (PL_ROOM_LOCK_TIMEOUT_S, 5 s): what an
    # operator sets on database hosts. Keepalive finds a silent session; a
    # session whose last answer was never acknowledged (the client host went
    # while holding a room's lock, the answer in flight: keepalive does not
    # run while data waits) is given up after tcp_retries2 retransmissions
    # (2: about 1.4 s of them; the kernel's 15: about 15 minutes).
    for db in DBS:
        for k, v in (("tcp_keepalive_time", 1), ("tcp_keepalive_intvl", 1), ("tcp_keepalive_probes", 1),
                     ("tcp_retries2", 2)):
            run("ip", "netns", "exec", NS + db, "sysctl", "-q", "-w", f"net.ipv4.{k}={v}")
    # the fronts' internal listeners under one name, for the service hosts
    for host in SVC_HOSTS:
        d = pathlib.Path("/etc/netns") / (NS + host)
        d.mkdir(parents=True, exist_ok=True)
        (d / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{addr(f)} pl-gateway\n" for f in FRONTS))


def outside():
    if os.geteuid() != 0:
        say("needs root (network namespaces)")
        return 2
    cleanup()  # a previous run's leftovers
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    if os.environ.get("PL_MULTIHOST_FROM_VAR"):
        one_host_backup(pathlib.Path(os.environ["PL_MULTIHOST_FROM_VAR"]), os.environ["PL_MULTIHOST_FROM_URL"])
    else:
        say("no single-host stack given (PL_MULTIHOST_FROM_VAR): the cluster starts empty")
    try:
        try:
            build_hosts()
        except RuntimeError as e:
            if "netns" in str(e) or "Operation not permitted" in str(e):
                say(f"SKIPPED: this kernel or container has no network namespaces ({e})")
                return 0
            raise
        r = subprocess.run(["ip", "netns", "exec", NS + "cli", sys.executable, __file__, "--inside"],
                           env=dict(os.environ, PL_MULTIHOST_VAR=str(VAR)))
        return r.returncode
    finally:
        cleanup()
        left = namespaces()
        if left:
            say(f"could not remove namespaces: {' '.join(left)}")


def row_counts(rows):
    return ", ".join(f"{k} {v['count']}" for k, v in rows.items())


def one_host_backup(from_var, url):
    """On the machine's own network, before the hosts: a user, a project and
    a message on the single-host stack, then its backup, checked and
    unpacked into MOVED as an operator does (docs/scaling-out.md), with what
    was made and each table's rows in MOVED/made.json."""
    t0 = time.time()
    s = requests.Session()
    email = f"moved-{uuid.uuid4().hex[:12]}@example.com"

    def call(method, path, expect, body=None, token=None):
        r = s.request(method, url + path, json=body, timeout=30,
                      headers={"Authorization": f"Bearer {token}"} if token else {})
        if r.status_code != expect:
            raise RuntimeError(f"single-host stack: {method} {path}: {r.status_code} {r.text[:200]}")
        return r.json()

    call("POST", "/api/accounts/signup", 201, {"email": email, "password": PASSWORD, "display_name": "Moved"})
    login = call("POST", "/api/accounts/login", 200, {"email": email, "password": PASSWORD})
    token = login["access_token"]
    project = call("POST", "/api/projects", 201, {"name": "made on one host"}, token)["project"]
    msg = call("POST", "/api/chat/rooms/lobby/messages", 201, {"body": "said on one host"}, token)
    backup = VAR / "one-host.tar.gz"
    env = dict(os.environ, PL_VAR=str(from_var))
    run(ROOT / "pilotlight", "backup", backup, env=env, timeout=300)
    run(ROOT / "pilotlight", "restore", "--unpack", backup, MOVED, env=env, timeout=300)
    rows = {}
    for schema, table in TABLES:
        r = run("mariadb", "--no-defaults", f"--socket={from_var / 'run' / 'mysqld.sock'}", "-N", "-B", "-e",
                f"SELECT COUNT(*), COALESCE(MAX(id), 0) FROM `{schema}`.`{table}`", timeout=30)
        count, top = r.stdout.split()
        rows[f"{schema}.{table}"] = {"count": int(count), "max_id": int(top)}
    made = {"email": email, "token": token, "refresh_token": login["refresh_token"], "user_id": login["user"]["id"],
            "project": {"id": project["id"], "name": project["name"]},
            "message": {"id": msg["message"]["id"], "body": "said on one host"},
            "rows": rows, "backup_bytes": backup.stat().st_size}
    (MOVED / "made.json").write_text(json.dumps(made))
    say(f"single-host stack {url}: a user, a project and a message made, backed up "
        f"({made['backup_bytes'] / 1e6:.1f} MB; {row_counts(rows)}) "
        f"and unpacked ({time.time() - t0:.1f}s)")


# --- inside plmh-cli: the servers -----------------------------------------------------------------

class Procs:
    """What this run started: name -> Popen, or a pid from a pid file."""

    def __init__(self):
        self.p = {}

    def start(self, name, host, cmd, env=None, log=None):
        log = log or VAR / "log" / f"{name}.log"
        out = open(log, "ab")
        self.p[name] = subprocess.Popen(["ip", "netns", "exec", NS + host, *map(str, cmd)], stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        out.close()
        return self.p[name]

    def kill(self, name, sig=signal.SIGKILL):
        p = self.p.get(name)
        if p is not None and p.poll() is None:
            os.killpg(p.pid, sig)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


PROCS = Procs()


def clean_env(**extra):
    """The environment of a server: no PL_* of the test stack's (its socket,
    its ports), only what is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PL_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def sql(db, statement, database=None):
    """Rows of a statement as MariaDB's root on that node's socket (unix
    sockets are files: any namespace reaches them)."""
    # (in UTC, as the services store times: FROM_UNIXTIME and UNIX_TIMESTAMP then agree with them)
    cmd = ["mariadb", "--no-defaults", f"--socket={VAR / db / 'mysqld.sock'}", "-N", "-B", "-e",
           f"SET time_zone = '+00:00'; {statement}"]
    if database:
        cmd.insert(2, f"--database={database}")
    r = run(*cmd, timeout=30)
    # (mariadb -B escapes tabs and newlines in values, not \r or U+2028, which
    # splitlines() would take for line ends: the hostile-input tests' names have them)
    return [line.split("\t") for line in r.stdout.split("\n") if line]


def galera_state(db):
    try:
        return dict(sql(db, "SHOW STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_cluster_size')"))
    except (RuntimeError, subprocess.TimeoutExpired):
        return {}


def db_start(db, new_cluster=False):
    d = VAR / db
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    run("chown", "-R", "mysql:mysql", d)  # the server runs as mysql (rsync's state transfers need it)
    if not (d / "data" / "mysql").is_dir():
        run("mariadb-install-db", "--no-defaults", f"--datadir={d / 'data'}", "--user=mysql", "--skip-test-db",
            "--auth-root-authentication-method=socket", f"--tmpdir={d / 'tmp'}", timeout=120)
    opts = ";".join(["gcache.size=64M", "evs.keepalive_period=PT0.5S", "evs.suspect_timeout=PT2S",
                     "evs.inactive_check_period=PT0.5S", "evs.inactive_timeout=PT4S", "evs.install_timeout=PT4S"])
    cmd = [MARIADBD, "--no-defaults", f"--datadir={d / 'data'}", f"--socket={d / 'mysqld.sock'}",
           f"--pid-file={d / 'mysqld.pid'}", f"--tmpdir={d / 'tmp'}", f"--bind-address={addr(db)}", "--port=3306",
           "--user=mysql", f"--log-error={d / 'error.log'}", "--skip-name-resolve",
           "--innodb-buffer-pool-size=32M", "--max-connections=300", "--wsrep-on=ON", f"--wsrep-provider={GALERA}",
           "--wsrep-cluster-name=pilotlight", f"--wsrep-cluster-address=gcomm://{','.join(addr(x) for x in DBS)}",
           f"--wsrep-node-address={addr(db)}", f"--wsrep-node-name={db}", f"--wsrep-provider-options={opts}",
           "--wsrep-sst-method=rsync", "--binlog-format=ROW", "--innodb-autoinc-lock-mode=2",
           "--default-storage-engine=InnoDB"]
    if new_cluster:
        cmd.append("--wsrep-new-cluster")
    PROCS.start(db, db, cmd, env=clean_env())


def db_wait_synced(db, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if galera_state(db).get("wsrep_local_state") == "4":
            return
        if PROCS.p[db].poll() is not None:
            raise RuntimeError(f"{db} exited: see {VAR / db / 'error.log'}")
        time.sleep(0.3)
    raise RuntimeError(f"{db} is not Synced after {timeout}s")


def secrets():
    s = VAR / "secrets"
    s.mkdir(parents=True, exist_ok=True)
    os.chmod(s, 0o700)
    for name in [f"db_{svc}" for svc in SERVICES] + ["redis"]:
        (s / f"{name}.password").write_text(uuid.uuid4().hex)
    run(BUILD / "services" / "accounts" / "pl-accounts", "keygen", s / "jwt_signing.key", s / "jwt_public.keys")
    run("sh", ROOT / "nginx" / "self-signed.sh", s / "tls.crt", s / "tls.key")


def migrate():
    """pl-migrate as root over db1's socket: DDL (and users) replicate."""
    for svc in SERVICES:
        run(BUILD / "tools" / "pl-migrate", "--service", svc, "--dir", ROOT / "migrations" / svc, timeout=120,
            env=clean_env(PL_DB_SOCKET=VAR / "db1" / "mysqld.sock",
                          PL_DB_PASSWORD_FILE=VAR / "secrets" / f"db_{svc}.password"))


def load_one_host():
    """The single host's dump into db1 (every node gets it: Galera), its
    token keys in place of this run's, before the migrations (which make the
    services' users, with these hosts' passwords)."""
    t0 = time.time()
    with open(MOVED / "databases.sql", "rb") as dump:
        r = subprocess.run(["mariadb", "--no-defaults", f"--socket={VAR / 'db1' / 'mysqld.sock'}"], stdin=dump,
                           capture_output=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"loading the single host's dump into db1 failed: {r.stderr.decode()[-500:]}")
    for key in ("jwt_signing.key", "jwt_public.keys"):
        shutil.copyfile(MOVED / "keys" / key, VAR / "secrets" / key)
    say(f"the single host's dump loaded into db1 and its token keys given to the service hosts "
        f"({time.time() - t0:.1f}s)")


def check_one_host():
    """What was made on the single host, through the cluster, once it is up
    (both fronts): problems."""
    made = json.loads((MOVED / "made.json").read_text())
    problems, s = [], requests.Session()

    def call(front, method, path, body=None, token=None):
        try:
            r = s.request(method, front_url(front) + path, json=body, timeout=REQUEST_TIMEOUT,
                          headers={"Authorization": f"Bearer {token}"} if token else {})
            return r.status_code, (r.json() if r.headers.get("Content-Type", "").startswith("application/json")
                                   else None)
        except requests.RequestException as e:
            return None, str(e)

    st, me = call("fe2", "GET", "/api/accounts/me", token=made["token"])
    if st != 200 or me.get("user", me).get("email") != made["email"]:
        problems.append(f"moved: the single host's access token on fe2: {st} {me}")
    st, body = call("fe1", "POST", "/api/accounts/login", {"email": made["email"], "password": PASSWORD})
    token = body.get("access_token") if st == 200 else None
    if token is None:
        problems.append(f"moved: login on fe1: {st} {body}")
    st, body = call("fe2", "POST", "/api/accounts/refresh", {"refresh_token": made["refresh_token"]})
    if st != 200 or not body.get("access_token"):
        problems.append(f"moved: the single host's refresh token on fe2: {st} {body}")
    st, body = call("fe1", "GET", f"/api/projects/{made['project']['id']}", token=token or made["token"])
    if st != 200 or body["project"]["name"] != made["project"]["name"]:
        problems.append(f"moved: its project on fe1: {st} {body}")
    st, body = call("fe2", "GET", f"/api/chat/rooms/lobby/messages?before={made['message']['id'] + 1}&limit=1",
                    token=token or made["token"])
    got = (body or {}).get("messages", [{}])[:1] if st == 200 else []
    if not got or got[0].get("id") != made["message"]["id"] or got[0].get("body") != made["message"]["body"]:
        problems.append(f"moved: its message in the lobby's history on fe2: {st} {body}")
    problems += check_moved_rows("db2")
    say(f"moved from one host: {row_counts(made['rows'])} rows on every "
        f"node; its user logged in through fe1, its token and refresh token from the single host worked through "
        f"fe2, its project and message there: {'yes' if not problems else 'NO'}")
    return problems


def check_moved_rows(db):
    """Every row moved from the single host is on db: problems."""
    if not MOVED.is_dir():
        return []
    rows, problems = json.loads((MOVED / "made.json").read_text())["rows"], []
    for schema, table in TABLES:
        want = rows[f"{schema}.{table}"]
        count = sql(db, f"SELECT COUNT(*) FROM `{schema}`.`{table}` WHERE id <= {want['max_id']}")[0][0]
        if int(count) != want["count"]:
            problems.append(f"moved: {schema}.{table}: {count} of the single host's {want['count']} rows on {db}")
    return problems


def moved_max_id(table):
    """The highest id of the single host's rows in table (0 when the
    cluster started empty): the run's own rows are above it."""
    if not MOVED.is_dir():
        return 0
    return json.loads((MOVED / "made.json").read_text())["rows"][table]["max_id"]


def db_hosts(host, svc):
    order = [addr(d) for d in DBS]
    if host == "svc2" and svc == "projects":
        order.reverse()  # on purpose: writes meet on two nodes (certification conflicts)
    return " ".join(order)


def pools_start(host):
    for svc in SERVICES:
        name = f"{svc}@{host}"
        binary = BUILD / "services" / svc / f"pl-{svc}"
        env = clean_env(
            PL_LISTEN=f"{addr(host)}:{PORT[svc]}", PL_DB_HOSTS=db_hosts(host, svc),
            PL_DB_PASSWORD_FILE=VAR / "secrets" / f"db_{svc}.password", PL_DB_CONNECT_TIMEOUT_MS=1000,
            PL_JWT_PUBLIC_KEYS_FILE=VAR / "secrets" / "jwt_public.keys",
            PL_GATEWAY_URL=f"http://pl-gateway:{INTERNAL_PORT}",
            PL_PUBLIC_URL=f"http://{addr('fe1')}:{HTTP_PORT}",
            PL_PID_FILE=VAR / "run" / f"{name}.pid", PL_SUPERVISOR_PID_FILE=VAR / "run" / f"{name}.supervisor.pid",
            PL_LOG_FILE=VAR / "log" / f"{name}.log", PL_MAX_CHILDREN=4, PL_IDLE_TIMEOUT_MS=5000,
            PL_PWHASH_OPSLIMIT=1, PL_PWHASH_MEMLIMIT_KIB=8192, PL_LIVE_TICKET_TTL_S=10,
            **{f"PL_LIMIT_{k}_{p}": v for k in ("LOGIN", "SIGNUP", "REFRESH", "CHAT_POST", "MAIL", "CODE")
               for p, v in (("RATE", "1000r/s"), ("BURST", 1000))})
        if svc == "accounts":
            env["PL_JWT_SIGNING_KEY_FILE"] = str(VAR / "secrets" / "jwt_signing.key")
        if svc == "chat":
            env["PL_NCHAN_PUBLISH_URL"] = f"http://pl-gateway:{INTERNAL_PORT}/_pl/chat/publish/"
        PROCS.start(name, host, [binary], env=env, log=VAR / "log" / f"{name}.out")


def front_start(front):
    d = VAR / front
    (d / "nginx" / "tmp").mkdir(parents=True, exist_ok=True)
    (d / "web").mkdir(exist_ok=True)
    (d / "web" / "index.html").write_text("<!doctype html><title>multihost</title>\n")
    env = clean_env(
        PL_HTTP_BIND=addr(front), PL_HTTP_PORT=HTTP_PORT, PL_HTTPS_PORT=8443, PL_INTERNAL_BIND=addr(front),
        PL_INTERNAL_PORT=INTERNAL_PORT, PL_NGINX_WORKERS=1, PL_NGINX_DIR=d / "nginx", PL_RUN_DIR=d,
        PL_LOG_DIR=VAR / "log" / front, PL_WEB_ROOT=d / "web", PL_NGINX_USER="root root",
        PL_TLS_CERT_FILE=VAR / "secrets" / "tls.crt", PL_TLS_KEY_FILE=VAR / "secrets" / "tls.key",
        PL_NCHAN_REDIS_URL=f"redis://:{redis_password()}@{addr('redis')}:6379",
        PL_UPSTREAM_READ_TIMEOUT=READ_TIMEOUT,
        **{f"PL_UPSTREAM_{svc.upper()}": " ".join(f"{addr(h)}:{PORT[svc]}" for h in SVC_HOSTS) for svc in SERVICES})
    (VAR / "log" / front).mkdir(parents=True, exist_ok=True)
    run("bash", ROOT / "nginx" / "render.sh", d / "nginx", env=env)
    # nginx daemonizes itself: its master's pid is in d/nginx.pid
    with open(VAR / "log" / front / "nginx-start.log", "ab") as out:
        r = subprocess.run(["ip", "netns", "exec", NS + front, NGINX, "-p", f"{d / 'nginx'}/",
                            "-c", str(d / "nginx" / "nginx.conf"), "-e", str(VAR / "log" / front / "nginx-error.log")],
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"nginx on {front} did not start: see {VAR / 'log' / front}")


def front_pids(front):
    try:
        master = int((VAR / front / "nginx.pid").read_text())
    except (OSError, ValueError):
        return []
    kids = run("ps", "-o", "pid=", "--ppid", master, check=False).stdout.split()
    return [master, *map(int, kids)]


def redis_password():
    return (VAR / "secrets" / "redis.password").read_text().strip()


def redis_start():
    (VAR / "redis").mkdir(exist_ok=True)
    # as an operator runs it: a password (the fronts' URL carries it), and
    # what it stored survives a stop (append-only file)
    PROCS.start("redis", "redis", ["redis-server", "--bind", addr("redis"), "--port", "6379", "--save", "",
                                   "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no",
                                   "--requirepass", redis_password(), "--dir", VAR / "redis"])


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def stack_up():
    for sub in ("log", "run"):
        (VAR / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(VAR, 0o755)
    t0 = time.time()
    secrets()
    db_start("db1", new_cluster=True)
    db_wait_synced("db1")
    for db in DBS[1:]:
        db_start(db)
        db_wait_synced(db)  # one at a time: each takes a state transfer (rsync) from a node
    say(f"Galera cluster of {galera_state('db1').get('wsrep_cluster_size')} nodes Synced "
        f"({time.time() - t0:.1f}s)")
    if MOVED.is_dir():
        load_one_host()
    migrate()
    redis_start()
    for host in SVC_HOSTS:
        pools_start(host)
    for front in FRONTS:
        front_start(front)
    for front in FRONTS:
        for svc in SERVICES:
            wait_http(f"http://{addr(front)}:{HTTP_PORT}/api/{svc}/health")
    say(f"up: 2 fronts, 2 service hosts x {len(SERVICES)} pools, Redis, 3 database nodes ({time.time() - t0:.1f}s)")


# --- the load -------------------------------------------------------------------------------------

class Phase:
    def __init__(self, name, rule):
        self.name, self.rule = name, rule
        self.t0 = time.time()
        self.t1 = None
        self.fault_at = None
        self.events = []
        self.records = []      # (kind, front, status, error, t0, t1, json_ok, ok, method, path, message)

    def event(self, text):
        self.events.append((time.time() - self.t0, text))
        say(f"  [{self.name} +{time.time() - self.t0:.1f}s] {text}")


PHASES = []
PHASE_LOCK = threading.Lock()


def phase():
    return PHASES[-1]


def front_url(front):
    return f"http://{addr(front)}:{HTTP_PORT}"


def answers(body, data):
    """Whether an answer is about what the request sent (its message, project
    or user carries the sent client_msg_id, name or email)."""
    obj = next((data.get(k) for k in ("message", "project", "user") if isinstance(data, dict) and k in data), None)
    if obj is None:
        return True
    return all(obj.get(k) == body[k] for k in ("client_msg_id", "name", "email", "body") if k in body and k in obj)


class Client(threading.Thread):
    """A user (or a second session of one: clients 0 and 1 share a user and a
    project, which both update through different fronts) writing in a loop."""

    def __init__(self, cid, user=None):
        super().__init__(name=f"client-{cid}", daemon=True)
        self.cid = cid
        self.front = FRONTS[cid % 2]
        self.sessions = {f: requests.Session() for f in FRONTS}
        self.stop = threading.Event()
        self.user = user or {"email": f"mh-{uuid.uuid4().hex[:10]}@pilotlight.test", "name": f"mh {cid}"}
        self.token = None
        self.projects = {}         # id -> list of (name, acked) writes in order; version counted apart
        self.patches = collections.Counter()   # id -> acked PATCHes
        self.failed_patches = collections.Counter()
        self.messages = []         # (client_msg_id, room, body, acked id or None)
        self.signups = []          # (email, acked)

    def other_front(self):
        return FRONTS[1 - FRONTS.index(self.front)]

    def req(self, method, path, kind, expect, body=None, auth=True, headers=None, about=None):
        """One request, recorded; about: what its answer must be about when
        it sends no body (answers())."""
        front = self.front
        headers = dict(headers or {})
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        t0 = time.time()
        status, err, data, json_ok = None, None, None, False
        try:
            r = self.sessions[front].request(method, front_url(front) + path, json=body, headers=headers,
                                             timeout=REQUEST_TIMEOUT)
            status = r.status_code
            try:
                data = r.json()
                json_ok = True
            except ValueError:
                pass
        except requests.RequestException as e:
            err = type(e).__name__
            # the front is gone (or the connection was): the next request goes to the other
            self.sessions[front].close()
            self.front = self.other_front()
        t1 = time.time()
        ok = status in expect
        if ok and (body or about) and not answers(about or body, data):
            # a success, but the answer of another request: a failure, and the write's outcome unknown
            ok, err = False, "answer for another request"
        message = data["error"].get("message") if isinstance(data, dict) and \
            isinstance(data.get("error"), dict) else None
        phase().records.append((kind, front, status, err, t0, t1, json_ok, ok, method, path, message))
        return ok, status, data

    def setup(self, signup=True):
        if signup:
            ok, _, _ = self.req("POST", "/api/accounts/signup", "signup", {201},
                                {"email": self.user["email"], "password": PASSWORD,
                                 "display_name": self.user["name"]}, auth=False)
            self.signups.append((self.user["email"], ok))
            if not ok:
                return False
        ok, _, data = self.req("POST", "/api/accounts/login", "login", {200},
                               {"email": self.user["email"], "password": PASSWORD}, auth=False)
        if ok:
            self.token = data["access_token"]
        return ok

    def create_project(self):
        name = f"p-{uuid.uuid4().hex[:8]}"
        ok, _, data = self.req("POST", "/api/projects", "project create", {201}, {"name": name})
        if ok:
            self.projects[data["project"]["id"]] = [(name, True)]
            return data["project"]["id"]
        return None

    def patch(self, pid):
        name = f"n-{uuid.uuid4().hex[:8]}"
        # the shared project with an Idempotency-Key: the update then runs in a
        # transaction, whose COMMIT is where Galera reports a certification conflict
        key = {"Idempotency-Key": uuid.uuid4().hex} if pid == SHARED.get("project") else None
        ok, _, _ = self.req("PATCH", f"/api/projects/{pid}", "project update", {200}, {"name": name}, headers=key)
        self.projects.setdefault(pid, []).append((name, ok))
        if ok:
            self.patches[pid] += 1
        else:
            self.failed_patches[pid] += 1

    def post(self, room):
        cid = uuid.uuid4().hex
        body = f"{self.cid}:{cid[:6]}"
        ok, _, data = self.req("POST", f"/api/chat/rooms/{room}/messages", "chat post", {201},
                                    {"body": body, "client_msg_id": cid})
        self.messages.append((cid, room, body, data["message"]["id"] if ok else None))

    def step(self):
        r = random.random()
        mine = [p for p in self.projects if p != SHARED.get("project")]
        if r < 0.08:
            # a sign-up (and login) of a new user, the work a new visitor does
            fresh = {"email": f"mh-{uuid.uuid4().hex[:10]}@pilotlight.test", "name": "visitor"}
            ok, _, _ = self.req("POST", "/api/accounts/signup", "signup", {201},
                                {"email": fresh["email"], "password": PASSWORD, "display_name": "visitor"},
                                auth=False)
            self.signups.append((fresh["email"], ok))
        elif r < 0.18 or not mine:
            self.create_project()
        elif r < 0.40:
            self.patch(random.choice(mine))
        elif r < 0.52 and SHARED.get("project") and self.cid in (0, 1):
            self.patch(SHARED["project"])
        elif r < 0.75:
            self.post("lobby")
        elif r < 0.85 and self.cid in (0, 1):
            self.post(f"project-{SHARED['project']}")
        elif r < 0.92:
            self.req("GET", "/api/projects?limit=5", "project list", {200})
        else:
            self.req("GET", "/api/accounts/me", "me", {200}, about={"email": self.user["email"]})

    def run(self):
        while not self.stop.is_set():
            if self.token is None:
                if not self.setup(signup=False):
                    time.sleep(0.3)
                    continue
            self.step()
            time.sleep(random.uniform(*THINK_S))


SHARED = {}


class Subscriber(threading.Thread):
    """A live subscriber on one front, as the web client does it: a ticket,
    the WebSocket, then history after the last id it has; live messages with
    an id at or below the last it has are dropped (the web client's rule), so
    a message delivered out of order would be missing at the end. When its
    front is gone it reconnects through the other."""

    def __init__(self, sid, client, room, front):
        super().__init__(name=f"sub-{sid}", daemon=True)
        self.sid, self.client, self.room, self.front = sid, client, room, front
        self.home = front
        self.s = {f: requests.Session() for f in FRONTS}
        self.stop = threading.Event()
        self.ws = None
        self.start_id = None
        self.ids = []
        self.live = self.from_history = self.out_of_order = self.duplicates = 0
        self.connects = self.disconnects = self.failed_connects = self.resyncs = self.gaps = 0
        self.live_by_front = collections.Counter()
        self.live_ids = set()
        self.front_log = []  # (time, front) of each connection

    def get(self, path):
        try:
            r = self.s[self.front].get(front_url(self.front) + path, timeout=10,
                                       headers={"Authorization": f"Bearer {self.client.token}"})
            return r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            self.front = FRONTS[1 - FRONTS.index(self.front)]
            return None

    def front_at(self, t):
        """The front this subscriber was connected through at time t."""
        front = self.home
        for when, f in self.front_log:
            if when <= t:
                front = f
        return front

    def add(self, m, live):
        i = m["id"]
        last = self.ids[-1] if self.ids else self.start_id
        if i <= last:
            if i in set(self.ids[-400:]):
                self.duplicates += live
            elif live:
                self.out_of_order += 1   # dropped, as the web client drops it
            return
        self.ids.append(i)
        if live:
            self.live_ids.add(i)
            self.live += 1
            self.live_by_front[self.front] += 1
        else:
            self.from_history += 1

    def fill_gap(self):
        while True:
            after = self.ids[-1] if self.ids else self.start_id
            page = self.get(f"/api/chat/rooms/{self.room}/messages?after={after}&limit=200") if after else \
                self.get(f"/api/chat/rooms/{self.room}/messages?limit=200")
            if page is None:
                return False
            for m in page["messages"]:
                self.add(m, live=False)
            if len(page["messages"]) < 200:
                return True

    def connect(self):
        try:
            r = self.s[self.front].post(front_url(self.front) + f"/api/chat/rooms/{self.room}/ticket", timeout=10,
                                        headers={"Authorization": f"Bearer {self.client.token}"})
            if r.status_code != 201:
                return False
            ws = websocket.create_connection(f"ws://{addr(self.front)}:{HTTP_PORT}/api/chat/rooms/{self.room}/live"
                                             f"?ticket={r.json()['ticket']}", timeout=10)
        except (requests.RequestException, websocket.WebSocketException, OSError, ValueError):
            self.front = FRONTS[1 - FRONTS.index(self.front)]
            return False
        ws.settimeout(0.5)
        self.ws = ws
        self.connects += 1
        self.front_log.append((time.time(), self.front))
        if not self.fill_gap():
            self.drop()
            return False
        return True

    def drop(self):
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                ws.close(timeout=0.2)
            except Exception:
                pass

    def run(self):
        while self.start_id is None and not self.stop.is_set():
            page = self.get(f"/api/chat/rooms/{self.room}/messages?limit=1")
            if page is not None:
                self.start_id = page["messages"][-1]["id"] if page["messages"] else 0
            else:
                time.sleep(0.3)
        while not self.stop.is_set():
            if self.ws is None:
                if not self.connect():
                    self.failed_connects += 1
                    time.sleep(random.uniform(0.3, 0.6))
                    continue
            try:
                while not self.stop.is_set():
                    try:
                        data = self.ws.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if not data:
                        raise websocket.WebSocketConnectionClosedException("closed")
                    m = json.loads(data)
                    if m == {"resync": True}:  # delivery was interrupted: what was missed is in history
                        self.resyncs += 1
                        if not self.fill_gap():
                            raise websocket.WebSocketConnectionClosedException("history unread")
                        continue
                    last = self.ids[-1] if self.ids else self.start_id
                    if m.get("prev_id") is not None and m["prev_id"] > last:  # one stored, never published
                        self.gaps += 1
                        if not self.fill_gap():
                            raise websocket.WebSocketConnectionClosedException("history unread")
                        continue
                    self.add(m, live=True)
            except (websocket.WebSocketException, OSError, ValueError):
                self.disconnects += 1
                self.drop()
                time.sleep(random.uniform(0.3, 0.6))
        self.drop()


def conflicting_updates(user, rounds=25, width=4):
    """Bursts of updates of the shared project at the same instant, half
    through each front: projects on svc1 writes through db1 and on svc2
    through db3, so Galera certifies them against each other and reports the
    losers' COMMIT as a deadlock; the services run those again (db_retry).
    Every one must succeed. Returns the writers (their writes are checked)."""
    writers = [Client(100 + i, user) for i in range(width)]
    for w in writers:
        if not w.setup(signup=False):
            raise RuntimeError("a writer of the conflicting updates could not log in")
        w.projects[SHARED["project"]] = []
    barrier = threading.Barrier(width)

    def run(w):
        for _ in range(rounds):
            barrier.wait(timeout=30)
            w.patch(SHARED["project"])

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    phase().event(f"{rounds} bursts of {width} simultaneous updates of project {SHARED['project']}: "
                  f"{sum(sum(w.patches.values()) for w in writers)} acknowledged, conflicts retried so far: "
                  f"{log_count('db_retry')}")
    return writers


# --- the phases -----------------------------------------------------------------------------------

def start_phase(name, rule):
    with PHASE_LOCK:
        if PHASES:
            PHASES[-1].t1 = time.time()
        PHASES.append(Phase(name, rule))
    say(f"phase: {name}")


def link(host, state):
    run("ip", "-n", SWITCH, "link", "set", f"v-{host}", state)


def phase_cut():
    start_phase("service host cut", "cut")
    time.sleep(1.0)
    phase().fault_at = time.time()
    link("svc2", "down")
    phase().event("svc2's link down")
    time.sleep(CUT_S)
    link("svc2", "up")
    phase().event("svc2's link up")
    time.sleep(3.0)


def phase_db():
    start_phase("database node killed", "db")
    time.sleep(1.0)
    phase().fault_at = time.time()
    PROCS.kill("db1")
    phase().event("db1 SIGKILLed")
    deadline = time.time() + DB_S
    size = None
    while time.time() < deadline:
        s = galera_state("db2").get("wsrep_cluster_size")
        if s != size:
            size = s
            phase().event(f"db2 sees a cluster of {s}")
        time.sleep(0.25)


def phase_redis():
    """Redis dies (SIGKILL: its sockets go at once). Not a graceful stop: with
    Debian 12's nchan 1.3.6 a stop that races nchan's immediate reconnection
    makes that reconnection time out, and nchan's timeout path closes a file
    descriptor it no longer owns (fixed in nchan 1.3.7, commit bcb82302),
    breaking whatever nginx had reused it for: docs/scaling-out.md."""
    start_phase("Redis stopped", "redis")
    time.sleep(1.0)
    phase().fault_at = time.time()
    PROCS.kill("redis", signal.SIGKILL)
    phase().event("Redis killed")
    time.sleep(REDIS_DOWN_S)
    redis_start()
    phase().event("Redis started again")
    time.sleep(REDIS_AFTER_S)


def phase_front():
    start_phase("front stopped", "front")
    time.sleep(1.0)
    pids = front_pids("fe1")
    phase().fault_at = time.time()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    phase().event(f"fe1's nginx SIGKILLed ({len(pids)} processes)")
    time.sleep(FRONT_S)


def allowed(ph, rec):
    """Whether a failed request is one the phase's fault may cost: a request
    in flight on what was lost, answered as the phase's rule says."""
    kind, front, status, err, t0, t1, json_ok, ok, method, _, _ = rec
    if ph.rule == "front" and ph.fault_at is not None and t0 >= ph.fault_at and front == "fe1" and \
            err == "ConnectionError" and t1 - t0 < 0.5:
        return True  # sent to fe1 after it stopped, refused at once: that client goes on through fe2
    if ph.fault_at is None or t0 > ph.fault_at + IN_FLIGHT_S or t1 < ph.fault_at:
        return False
    if ph.rule == "cut":      # in flight on svc2: nginx's JSON 502/504 (not an idempotent one: sent again)
        return status in (502, 504) and json_ok and method != "GET"
    if ph.rule == "db":       # in flight on db1: the service's JSON 503 (or a 502/504 of a waiting invocation)
        return status in (502, 503, 504) and json_ok
    if ph.rule == "front":    # in flight on fe1: the connection went
        return status is None and front == "fe1"
    return False


NCHAN_BUG = "nchan 1.3.6's Redis reconnection (fixed in 1.3.7)"


def nchan_bug_events(ph=None):
    """When, and on which front, nchan logged the trail of its Redis
    reconnection bug (during the phase ph, or during the whole run): a
    reconnection that timed out (in nchan 1.3.6, Debian 12's, that path
    closes a file descriptor nchan no longer owns: upstream commit bcb82302,
    in 1.3.7), or a Redis reply that is not Redis's (nchan reading from a
    descriptor nginx had reused for a client or a pool). Whatever nginx
    reused it for breaks: the request it held fails (no answer, a 504 after
    the read timeout, even the answer of another request), possibly after
    the phase that caused it. One (front, second) per event: the log has
    whole seconds, and each nginx worker of a front logs its own."""
    events = []
    for front in FRONTS:
        try:
            lines = (VAR / "log" / front / "nginx-error.log").read_text(errors="replace").split("\n")
        except OSError:
            continue
        for line in lines:
            if "nchan: Redis" in line and ("connection failed: connection timed out" in line or
                                          "Protocol error" in line):
                t = time.mktime(time.strptime(line[:19], "%Y/%m/%d %H:%M:%S"))
                if (ph is None or ph.t0 - 1 <= t <= (ph.t1 or time.time()) + 1) and (front, t) not in events:
                    events.append((front, t))
    return sorted(events, key=lambda e: e[1])


# Requests one logged event of nchan's bug may break: the descriptor nginx
# reused can hold a client's kept-alive connection, whose next request breaks
# too (seen: a chat post with no answer, and the next one answered with
# another request's answer, within a second of one event).
NCHAN_CASUALTIES_PER_EVENT = 2
# When they fail: from 2.5 s before the event (the log has whole seconds) to
# NCHAN_CASUALTY_AFTER_S after it: a request on the broken descriptor waits
# the read timeout (6 s) for its 504, and a kept-alive connection whose
# descriptor nchan closed fails only at the client's next request on it.
NCHAN_CASUALTY_AFTER_S = 10.0
NCHAN_LEFT = {}  # (front, t) of each event -> casualties it may still take (over every phase)


NGINX_UNREACHABLE = "the service is not reachable"  # the message of nginx's own JSON 502 (nginx/api.conf)


def front_refusals(front):
    """The requests a front's nginx refused because every server of their
    service's upstream was disabled: [second, method, path, service] for
    each "no live upstreams" line of its error log (one line a request)."""
    refusals = []
    try:
        text = (VAR / "log" / front / "nginx-error.log").read_text(errors="replace")
    except OSError:
        return refusals
    for line in text.split("\n"):
        m = re.search(r'no live upstreams .* request: "([A-Z]+) (\S+) HTTP/[0-9.]+", '
                      r'upstream: "fastcgi://([a-z0-9]+)"', line)
        if m:
            t = time.mktime(time.strptime(line[:19], "%Y/%m/%d %H:%M:%S"))
            refusals.append([t, m.group(1), m.group(2), m.group(3)])
    return refusals


def nchan_casualties(ph, failed):
    """The failures of a phase that nchan's bug explains, through the front
    that logged the event and started within its window: no answer, a 504 or
    another request's answer, at most NCHAN_CASUALTIES_PER_EVENT per event
    (over the whole run). And nginx's own JSON 502 for a request that the
    front's error log shows it refused with every server of the service
    disabled ("no live upstreams", matched one to one by method, path and
    second): a request nchan broke counts as a failed server for its
    fail_timeout (5 s), so one broken request to each pool host of a service
    makes the front refuse all of the service's requests for a while, which
    the cap does not bound. That no worker crashed meanwhile (which would
    disable the servers too) is checked apart (check_no_crash)."""
    for e in nchan_bug_events():
        NCHAN_LEFT.setdefault(e, NCHAN_CASUALTIES_PER_EVENT)
    refusals = {f: front_refusals(f) for f in FRONTS}
    taken = []
    for r in sorted(failed, key=lambda r: r[4]):
        kind, front, status, err, t0, t1, json_ok, ok, method, path, message = r
        if status == 502 and message == NGINX_UNREACHABLE and \
                any(e[0] == front and e[1] - 2.5 <= t0 <= e[1] + NCHAN_CASUALTY_AFTER_S for e in NCHAN_LEFT):
            svc = path.split("/")[2] if path.startswith("/api/") else ""
            line = next((x for x in refusals[front] if x[1:] == [method, path, svc] and
                         int(t0) - 1 <= x[0] <= t1 + 1), None)
            if line is not None:
                refusals[front].remove(line)  # one line, one request
                taken.append(r)
                continue
        if status not in (None, 504) and err != "answer for another request":
            continue
        for e, left in NCHAN_LEFT.items():
            if left > 0 and e[0] == front and e[1] - 2.5 <= t0 <= e[1] + NCHAN_CASUALTY_AFTER_S:
                taken.append(r)
                NCHAN_LEFT[e] -= 1
                break
    return taken


# --- the checks -----------------------------------------------------------------------------------

def check_writes(clients, db):
    problems = []
    acked = {"users": 0, "projects": 0, "updates": 0, "messages": 0}
    emails = [(e, ok) for c in clients for e, ok in c.signups]
    rows = collections.Counter(r[0] for r in sql(db, "SELECT email FROM users WHERE id > "
                                                     f"{moved_max_id('accounts.users')}", "accounts"))
    for email, ok in emails:
        if ok:
            acked["users"] += 1
            if rows[email] != 1:
                problems.append(f"user {email}: acknowledged, {rows[email]} rows")
        elif rows[email] > 1:
            problems.append(f"user {email}: {rows[email]} rows")
    projects = {int(r[0]): (r[1], int(r[2])) for r in sql(db, "SELECT id, name, version FROM projects WHERE id > "
                                                              f"{moved_max_id('projects.projects')}", "projects")}
    writes = collections.defaultdict(list)
    writers = collections.Counter()
    patches, failed = collections.Counter(), collections.Counter()
    for c in clients:
        for pid, ws in c.projects.items():
            writes[pid] += ws
            writers[pid] += 1
        patches.update(c.patches)
        failed.update(c.failed_patches)
    for pid, ws in writes.items():
        if not any(ok for _, ok in ws):
            continue
        acked["projects"] += 1
        acked["updates"] += patches[pid]
        if pid not in projects:
            problems.append(f"project {pid}: acknowledged, not in the database")
            continue
        name, version = projects[pid]
        # one writer: its last acknowledged name or a later (failed) one; several: any of theirs
        last_acked = max(i for i, (_, ok) in enumerate(ws) if ok) if writers[pid] == 1 else 0
        if name not in [n for n, _ in ws[last_acked:]]:
            problems.append(f"project {pid}: name {name!r}, not its last acknowledged write or a later one")
        if not patches[pid] + 1 <= version <= patches[pid] + failed[pid] + 1:
            problems.append(f"project {pid}: version {version} after {patches[pid]} acknowledged updates "
                            f"(+{failed[pid]} failed)")
    stored = {r[0]: (int(r[1]), r[2], r[3]) for r in
              sql(db, "SELECT client_msg_id, id, room, body FROM messages WHERE client_msg_id IS NOT NULL "
                      f"AND id > {moved_max_id('chat.messages')}", "chat")}
    sent = set()
    for c in clients:
        for cid, room, body, mid in c.messages:
            sent.add(cid)
            if mid is not None:
                acked["messages"] += 1
                if stored.get(cid) != (mid, room, body):
                    problems.append(f"message {cid}: acknowledged as {mid} in {room}, stored as {stored.get(cid)}")
            elif cid in stored and stored[cid][1:] != (room, body):
                problems.append(f"message {cid}: failed, stored with other content {stored[cid]}")
    for cid in set(stored) - sent:
        problems.append(f"message {cid}: stored, never sent")
    return acked, problems


# Live delivery is back on every front after the faults: each subscriber
# gets live (not from history) every message of its room stored in two
# windows. After Redis's return: from the room's resync (or REDIS_LIVE_S
# after Redis started again) until fe1 is stopped, through both fronts,
# fe1's too (nchan reconnected to Redis on each). After fe1 was stopped:
# from LIVE_AGAIN_S later (fe1's subscribers have moved to fe2), or the
# room's resync, until the load stops. History would fill any gap, so
# without this a front that never reconnected to Redis, or a room left
# marked for resync, would pass.
REDIS_LIVE_S = 3.0
LIVE_AGAIN_S = 3.0


def resyncs_done(before):
    """room -> when the chat pools last logged resync_done for it before the
    time before (the room's mark gone: its posts are published again)."""
    done = {}
    for f in (VAR / "log").glob("chat@*.log"):
        with open(f, errors="replace") as fh:
            for line in fh:
                if '"event":"resync_done"' in line:
                    e = json.loads(line)
                    room = e["msg"].split(":")[0].removeprefix("room ")
                    t = calendar.timegm(time.strptime(e["time"][:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + e["time"][19:-1])
                    if t < before:
                        done[room] = max(done.get(room, 0.0), t)
    return done


def live_windows():
    """(name, start, end, room -> when its resync was done) for each window."""
    redis = next(ph for ph in PHASES if ph.name == "Redis stopped")
    front = next(ph for ph in PHASES if ph.name == "front stopped")
    back = next(t for t, text in redis.events if text == "Redis started again") + redis.t0
    return [("after Redis came back", back + REDIS_LIVE_S, front.fault_at - 0.2, resyncs_done(front.fault_at)),
            ("after fe1 was stopped", front.fault_at + LIVE_AGAIN_S, None, resyncs_done(float("inf")))]


def check_live_again(subs, db, until):
    problems, seen, bug = [], [], []
    redis = next(ph for ph in PHASES if ph.name == "Redis stopped")
    nchan_broken = {f for f, _ in nchan_bug_events(redis)}
    for name, start, end, done in live_windows():
        end = end or until
        counts = []
        for s in subs:
            # (a room whose publish failed is marked; until its resync is done, history carries it)
            since = max(start, done.get(s.room, 0.0) + 0.2)
            want = [int(r[0]) for r in sql(db, f"SELECT id FROM messages WHERE room = '{s.room}' AND created_at "
                                               f"BETWEEN FROM_UNIXTIME({since:.6f}) AND FROM_UNIXTIME({end:.6f})",
                                           "chat")]
            if not want:
                problems.append(f"subscriber {s.sid} ({s.room}): no message stored in its room {name} "
                                f"({end - since:.1f}s): live delivery not checked")
            missed = [i for i in want if i not in s.live_ids]
            counts.append(f"{len(want) - len(missed)}/{len(want)}")
            if missed and name == "after Redis came back" and s.front_at(start) in nchan_broken:
                # nchan 1.3.6's bug on that front (its trail logged): live delivery there came back later or
                # not in this window; history still gave the subscriber every message (check_subscribers)
                bug.append(f"subscriber {s.sid} ({s.room} on {s.front_at(start)}) {len(missed)}/{len(want)}")
                continue
            if missed:
                problems.append(f"subscriber {s.sid} ({s.room} on {s.home}): {len(missed)} of the {len(want)} "
                                f"messages stored in its room {name} did not come live (first {missed[:5]})")
        seen.append(f"{name}: {' '.join(counts)}")
    say(f"live again, per subscriber (live / stored in its room): {'; '.join(seen)}")
    if bug:
        say(f"      not live after Redis came back, on a front that logged {NCHAN_BUG}'s trail: {', '.join(bug)}")
    return problems


def check_subscribers(subs, db):
    problems = []
    for s in subs:
        s.fill_gap()
        expected = [int(r[0]) for r in sql(db, f"SELECT id FROM messages WHERE room = '{s.room}' AND id > "
                                              f"{int(s.start_id or 0)} ORDER BY id", "chat")]
        missing = sorted(set(expected) - set(s.ids))
        if missing:
            at = [float(r[0]) for r in sql(db, "SELECT UNIX_TIMESTAMP(created_at) FROM messages WHERE id IN "
                                               f"({','.join(map(str, missing[:200]))}) ORDER BY id", "chat")]
            when = collections.Counter(next((f"{ph.name} +{int(t - ph.t0)}s" for ph in reversed(PHASES)
                                             if t >= ph.t0), "before") for t in at)
            problems.append(f"subscriber {s.sid} ({s.room} on {s.home}): {len(missing)} messages missing "
                            f"(first {missing[:5]}; stored during {dict(when)})")
        if s.ids != sorted(set(s.ids)):
            problems.append(f"subscriber {s.sid}: its messages are not once each in id order")
        if s.out_of_order:
            problems.append(f"subscriber {s.sid}: {s.out_of_order} messages came live out of id order")
        extra = set(s.ids) - set(expected)
        if extra:
            problems.append(f"subscriber {s.sid}: {len(extra)} messages not in the room")
    return problems


def check_no_crash():
    """No worker of any pool crashed: the faults here cut links and kill
    servers, never a worker, and a crash would disable its server in nginx
    as nchan's casualties do (nchan_casualties)."""
    n = log_count("worker_crash")
    return [f"pool workers crashed: {n} (worker_crash in the pools' logs)"] if n else []


def log_count(event):
    n = 0
    for f in (VAR / "log").glob("*@*.log"):
        with open(f, errors="replace") as fh:
            n += sum(1 for line in fh if f'"event":"{event}"' in line)
    return n


def report(clients, subs, acked, problems):
    say("")
    say("failures per phase (a failure: an error status, no answer, or a request over "
        f"{REQUEST_TIMEOUT:.0f}s)")
    say(f"  {'phase':<22} {'requests':>8} {'failed':>6} {'allowed':>7}  {'p50 ms':>6} {'p99 ms':>7}  verdict")
    ok = True
    for ph in PHASES:
        recs = ph.records
        failed = [r for r in recs if not r[7]]
        allow = [r for r in failed if allowed(ph, r)]
        bug = nchan_casualties(ph, [r for r in failed if r not in allow])
        allow += bug
        lat = sorted((r[5] - r[4]) * 1000 for r in recs if r[7])
        p50 = lat[len(lat) // 2] if lat else 0
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0
        verdict = "PASS" if len(failed) == len(allow) else "FAIL"
        ok &= verdict == "PASS"
        say(f"  {ph.name:<22} {len(recs):>8} {len(failed):>6} {len(allow):>7}  {p50:>6.0f} {p99:>7.0f}  {verdict}")
        for r in failed:
            if r not in allow:
                kind, front, status, err, t0, t1, json_ok, _, method, _, _ = r
                problems.append(f"{ph.name}: {kind} via {front} at +{t0 - ph.t0:.1f}s "
                                f"({t1 - t0:.1f}s): {status or err}{'' if json_ok or not status else ' (not JSON)'}")
        if nchan_bug_events(ph):
            say(f"      nchan's Redis reconnection bug logged {len(nchan_bug_events(ph))} times")
        lost_host = [r for r in allow if r not in bug]
        for label, rs in (("in flight on the lost host", lost_host), (f"broken by {NCHAN_BUG}", bug)):
            if rs:
                kinds = collections.Counter(f"{r[0]} {r[2] or r[3]}" for r in rs)
                say(f"      {label}: {', '.join(f'{k} x{n}' for k, n in kinds.items())}")
    lost = sum(1 for p in problems if p.startswith(("user ", "project ", "message ")))
    say(f"acknowledged writes: {acked['users']} sign-ups, {acked['projects']} projects with {acked['updates']} "
        f"updates, {acked['messages']} chat messages; {lost} lost, doubled or wrong")
    for s in subs:
        say(f"subscriber {s.sid} ({s.room} on {s.home}): {len(s.ids)} messages, {s.live} live "
            f"({dict(s.live_by_front)}), {s.from_history} from history; {s.connects} connections, "
            f"{s.disconnects} drops, {s.failed_connects} failed attempts, {s.resyncs} resync events, "
            f"{s.gaps} gaps seen by prev_id, "
            f"{s.duplicates} live duplicates skipped")
    say(f"conflicts retried (db_retry): {log_count('db_retry')}; moves back to the first database node "
        f"(db_failback): {log_count('db_failback')}; publishes failed: {log_count('publish_failed')}; rooms whose "
        f"subscribers were told to read history (resync_sent / resync_done): {log_count('resync_sent')} / "
        f"{log_count('resync_done')}")
    if problems:
        say(f"PROBLEMS ({len(problems)}):")
        for p in problems[:60]:
            say(f"  {p}")
    return ok and not problems


def rejoin_db1():
    """db1 comes back after the run and must hold what the others hold."""
    t0 = time.time()
    db_start("db1")
    db_wait_synced("db1", timeout=180)
    counts = {}
    for db in ("db1", "db2"):
        counts[db] = [sql(db, f"SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', {cols}))), 0) FROM {table}")[0]
                      for table, cols in (("accounts.users", "id, email"),
                                          ("projects.projects", "id, name, version"),
                                          ("chat.messages", "id, room, body"))]
    say(f"db1 rejoined and Synced in {time.time() - t0:.1f}s; its data "
        f"{'matches' if counts['db1'] == counts['db2'] else 'DIFFERS FROM'} db2's: {counts['db1']}")
    # every worker moves back to it (at its next request; an idle one ends by itself)
    t1, on_db2 = time.time(), None
    while time.time() < t1 + 20:
        for svc in SERVICES:
            try:
                requests.get(f"{front_url('fe2')}/api/{svc}/health", timeout=5)
            except requests.RequestException:
                pass
        on_db2 = int(sql("db2", "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                "WHERE user IN ('accounts', 'chat')")[0][0])
        if on_db2 == 0:
            break
        time.sleep(0.3)
    say(f"accounts' and chat's workers all back on db1 {time.time() - t1:.1f}s later "
        f"({log_count('db_failback')} moved back at a request, the others reconnected)" if on_db2 == 0 else
        f"{on_db2} accounts and chat connections still on db2 {time.time() - t1:.0f}s after db1 rejoined")
    return counts["db1"] == counts["db2"] and on_db2 == 0


def inside():
    clients, subs, writers = [], [], []
    try:
        stack_up()
        moved_problems = check_one_host() if MOVED.is_dir() else []
        start_phase("setup", "none")
        # clients 0 and 1: one user, one shared project (each updates it through its own front)
        clients = [Client(i) for i in range(CLIENTS)]
        clients[1].user = clients[0].user
        for c in clients:
            if not c.setup(signup=c.cid != 1):
                raise RuntimeError(f"client {c.cid} could not sign up and log in")
        SHARED["project"] = clients[0].create_project()
        if SHARED["project"] is None:
            raise RuntimeError("could not create the shared project")
        clients[1].projects[SHARED["project"]] = []
        rooms = ("lobby", f"project-{SHARED['project']}")
        subs = [Subscriber(i, clients[0], rooms[i % 2], FRONTS[i // 2]) for i in range(4)]
        for s in subs:
            s.start()
        deadline = time.time() + 20
        while any(s.ws is None for s in subs) and time.time() < deadline:
            time.sleep(0.1)
        start_phase("baseline", "none")
        for c in clients:
            c.start()
        writers = conflicting_updates(clients[0].user)
        time.sleep(BASE_S)
        phase_cut()
        phase_db()
        phase_redis()
        phase_front()
        start_phase("settle", "none")
        load_stopped = time.time()
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(timeout=REQUEST_TIMEOUT + 5)
        # rooms whose live delivery was interrupted are resynced (the chat pools' wake), then the subscribers stop
        deadline = time.time() + 20
        while time.time() < deadline and sql("db2", "SELECT COUNT(*) FROM live_resync", "chat")[0][0] != "0":
            time.sleep(0.3)
        marked = sql("db2", "SELECT room FROM live_resync", "chat")
        time.sleep(2.0)
        for s in subs:
            s.stop.set()
        for s in subs:
            s.join(timeout=5)
        phase().t1 = time.time()
        PHASES.pop()  # settle: no load to count
        acked, problems = check_writes(clients + writers, "db2")
        problems += moved_problems + check_moved_rows("db2")  # and still there after every fault
        problems += check_live_again(subs, "db2", load_stopped)  # before check_subscribers fills the gaps
        problems += check_subscribers(subs, "db2")
        problems += check_no_crash()
        if marked:
            problems.append(f"rooms still marked for a resync 20 s after the load stopped: {marked}")
        ok = report(clients, subs, acked, problems)
        ok &= rejoin_db1()
        say("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for c in clients:
            c.stop.set()
        for s in subs:
            s.stop.set()
        for front in FRONTS:
            for pid in front_pids(front):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for name in list(PROCS.p):
            PROCS.kill(name)


def interrupted(signum, frame):
    raise SystemExit(128 + signum)  # so that every `finally` cleans up


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    if "--inside" in sys.argv:
        sys.exit(inside())
    sys.exit(outside())
