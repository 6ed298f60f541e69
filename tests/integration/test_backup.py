"""Backup and restore (issue 13), on a stack of its own (it is wiped): a
backup taken while writes run, the state directory wiped, the backup
restored: every write acknowledged before the backup began is there exactly
once, every account logs in with its password, tokens issued before the
backup still verify. A truncated file and one from a newer schema are
refused before anything is touched."""
import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid

import pytest
import requests

from conftest import DEFAULT_PASSWORD, ROOT

# the side stack's ports, shifted like the test stack's by PL_TEST_SLOT (N*100)
_SHIFT = int(os.environ.get("PL_TEST_SLOT", "0")) * 100
PORTS = {name: str(port + _SHIFT) for name, port in
         {"PL_HTTP_PORT": 19580, "PL_INTERNAL_PORT": 19581, "PL_HTTPS_PORT": 19943, "PL_MARIADB_PORT": 15807,
          "PL_MAIL_SINK_PORT": 19825}.items()}
BASE = f"http://127.0.0.1:{PORTS['PL_HTTP_PORT']}"


class SideStack:
    def __init__(self):
        self.var = pathlib.Path(tempfile.mkdtemp(prefix="plbk-", dir="/tmp"))
        self.var.chmod(0o755)  # nginx's workers (nobody) reach the sockets below it
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PL_SCALE_", "PL_STACK_LOCKED", "PL_ADMIN_"))}
        self.env.update(PORTS, PL_VAR=str(self.var), PL_HTTP_BIND="127.0.0.1", PL_INTERNAL_BIND="127.0.0.1",
                        PL_TLS_CERT_FILE="", PL_TLS_KEY_FILE="", PL_PWHASH_OPSLIMIT="1", PL_PWHASH_MEMLIMIT_KIB="8192",
                        PL_LOG_ROTATE_CRON="0")
        for limit in ("LOGIN", "SIGNUP", "REFRESH", "CHAT_POST", "MAIL", "CODE"):  # the writer is one address
            self.env.update({f"PL_LIMIT_{limit}_RATE": "1000r/s", f"PL_LIMIT_{limit}_BURST": "1000"})

    def run(self, *args, timeout=240):
        return subprocess.run([str(ROOT / "pilotlight"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def must(self, *args):
        p = self.run(*args)
        assert p.returncode == 0, f"pilotlight {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
        return p

    def sql(self, statement):
        out = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.var}/run/mysqld.sock", "-u", "root",
                              "--batch", "--skip-column-names", "-e", statement],
                             check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines()]

    def wipe(self):
        for child in self.var.iterdir():
            if child.name != "pilotlight.lock":
                shutil.rmtree(child) if child.is_dir() else child.unlink()


@pytest.fixture(scope="module")
def stack():
    s = SideStack()
    try:
        s.must("up")
        yield s
    finally:
        s.run("down")
        shutil.rmtree(s.var, ignore_errors=True)


def post(path, body, token=None):
    h = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(BASE + path, json=body, headers=h, timeout=15)


class Writer:
    """Users writing projects and chat messages until stopped; each
    acknowledged write is recorded with the time it was acknowledged."""

    def __init__(self, users):
        self.users, self.stop, self.acked, self.errors = users, threading.Event(), [], []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        while not self.stop.is_set() and n < 3000:
            u = self.users[n % len(self.users)]
            n += 1
            if n % 2:
                r = post("/api/projects", {"name": f"p{n}"}, u["token"])
                if r.status_code == 201:
                    self.acked.append(("project", r.json()["project"]["id"], time.time()))
                else:
                    self.errors.append(r.text)
            else:
                cid = uuid.uuid4().hex
                r = post("/api/chat/rooms/lobby/messages", {"body": f"m{n}", "client_msg_id": cid}, u["token"])
                if r.status_code == 201:
                    self.acked.append(("message", cid, time.time()))
                else:
                    self.errors.append(r.text)


def test_backup_while_writing_then_wipe_and_restore(stack):
    users = []
    for i in range(4):
        email = f"backup-{i}-{uuid.uuid4().hex[:8]}@example.com"
        assert post("/api/accounts/signup", {"email": email, "password": DEFAULT_PASSWORD,
                                             "display_name": f"Backed Up {i}"}).status_code == 201
        r = post("/api/accounts/login", {"email": email, "password": DEFAULT_PASSWORD})
        assert r.status_code == 200, r.text
        users.append({"email": email, "token": r.json()["access_token"], "id": r.json()["user"]["id"]})
    writer = Writer(users)
    writer.thread.start()
    time.sleep(1.0)
    file = stack.var.parent / f"{stack.var.name}.backup.tar.gz"
    try:
        began = time.time()
        p = stack.must("backup", str(file))
        time.sleep(0.5)  # writes go on after it, too
    finally:
        writer.stop.set()
        writer.thread.join(30)
    assert not writer.errors, writer.errors[:3]
    before = [(kind, key) for kind, key, t in writer.acked if t < began]
    assert len(before) >= 10 and len(writer.acked) > len(before), (len(before), len(writer.acked))
    assert "backup:" in p.stdout and file.exists()
    assert oct(file.stat().st_mode & 0o777) == "0o600"  # it holds the signing key
    with tarfile.open(file) as t:
        names = set(t.getnames())
        manifest = json.load(t.extractfile("manifest.json"))
    assert {"manifest.json", "databases.sql", "keys/jwt_signing.key", "keys/jwt_public.keys"} <= names, names
    assert set(manifest["services"]) == {"accounts", "projects", "chat"} and manifest["files"], manifest

    try:
        # the disk is lost
        stack.must("down")
        stack.wipe()

        # a damaged file is refused before anything is made
        truncated = file.with_suffix(".truncated")
        truncated.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
        p = stack.run("restore", str(truncated))
        assert p.returncode != 0 and "damaged" in p.stderr and "nothing was restored" in p.stderr, p.stderr
        assert not (stack.var / "mysql").exists()

        stack.must("restore", str(file))
        stack.must("up")

        # every account logs in with its password; a token from before still verifies
        for u in users:
            r = post("/api/accounts/login", {"email": u["email"], "password": DEFAULT_PASSWORD})
            assert r.status_code == 200, r.text
            r = requests.get(BASE + "/api/accounts/me", headers={"Authorization": f"Bearer {u['token']}"},
                             timeout=10)
            assert r.status_code == 200 and r.json()["user"]["id"] == u["id"], r.text
        # every write acknowledged before the backup began, exactly once
        projects = [str(k) for kind, k in before if kind == "project"]
        messages = [k for kind, k in before if kind == "message"]
        assert stack.sql(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM projects.projects "
                         f"WHERE id IN ({','.join(projects)})") == [[str(len(projects))] * 2]
        quoted = ",".join(f"'{m}'" for m in messages)
        assert stack.sql(f"SELECT COUNT(*) FROM chat.messages WHERE client_msg_id IN ({quoted})") == \
            [[str(len(messages))]]
        # nothing written after the backup's snapshot is doubled either
        assert stack.sql("SELECT COUNT(*) - COUNT(DISTINCT client_msg_id) FROM chat.messages "
                         "WHERE client_msg_id IS NOT NULL") == [["0"]]
    finally:
        for leftover in (file.with_suffix(".truncated"),):
            leftover.unlink(missing_ok=True)

    # a backup of a newer schema than this checkout's migrations is refused,
    # and changes nothing
    newer = file.with_suffix(".newer.tar.gz")
    work = pathlib.Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        with tarfile.open(file) as t:
            t.extractall(work)
        m = json.loads((work / "manifest.json").read_text())
        m["services"]["projects"]["migration"] = 999
        (work / "manifest.json").write_text(json.dumps(m))
        with tarfile.open(newer, "w:gz") as t:
            for name in ("manifest.json", "databases.sql", "keys"):
                t.add(work / name, arcname=name)
        stack.must("down")
        p = stack.run("restore", str(newer))
        assert p.returncode != 0 and "newer schema" in p.stderr and "nothing was restored" in p.stderr, p.stderr
        stack.must("up")
        assert stack.sql(f"SELECT COUNT(*) FROM projects.projects WHERE id IN ({','.join(projects)})") == \
            [[str(len(projects))]]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        newer.unlink(missing_ok=True)
        file.unlink(missing_ok=True)


def test_backup_into_a_directory_names_its_file_and_never_writes_over_one(stack):
    """backup DIR writes pilotlight-<time>.tar.gz inside DIR and says so;
    a FILE that exists is refused, untouched."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="plbk-dir-", dir="/tmp"))
    try:
        p = stack.must("backup", str(out))
        made = list(out.iterdir())
        assert len(made) == 1 and made[0].name.startswith("pilotlight-") and made[0].name.endswith(".tar.gz"), made
        assert f"backup: {made[0]} " in p.stdout, p.stdout
        with tarfile.open(made[0]) as t:
            assert "manifest.json" in t.getnames()
        first = made[0].read_bytes()
        p = stack.run("backup", str(made[0]))
        assert p.returncode != 0 and "exists" in p.stderr, p.stdout + p.stderr
        assert made[0].read_bytes() == first and len(list(out.iterdir())) == 1
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_backup_of_a_stopped_stack_then_unpacked_for_another_database(stack):
    """After `down` (nothing writes: the last backup before a move to
    several hosts), backup starts MariaDB for itself alone and stops it
    after; `restore --unpack` checks the file as restore does and leaves its
    dump and keys in a directory, touching no stack; a damaged file, or a
    directory that is not empty, is refused and nothing is written."""
    email = f"stopped-{uuid.uuid4().hex[:8]}@example.com"
    assert post("/api/accounts/signup", {"email": email, "password": DEFAULT_PASSWORD,
                                         "display_name": "Stopped"}).status_code == 201
    out = pathlib.Path(tempfile.mkdtemp(prefix="plbk-stopped-", dir="/tmp"))
    try:
        stack.must("down")
        p = stack.must("backup", str(out / "last.tar.gz"))
        assert "starting it for the backup alone" in p.stdout + p.stderr, p.stdout + p.stderr
        ping = subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={stack.var}/run/mysqld.sock", "ping"],
                              capture_output=True)
        assert ping.returncode != 0, "MariaDB still runs after the backup of a stopped stack"
        assert not (stack.var / "run" / "mysqld.pid").exists()
        (out / "afile").write_text("not a directory")
        p = stack.run("backup", str(out / "afile" / "x.tar.gz"))
        assert p.returncode != 0 and not (stack.var / "run" / "mysqld.pid").exists(), p.stdout + p.stderr

        p = stack.must("restore", "--unpack", str(out / "last.tar.gz"), str(out / "unpacked"))
        unpacked = out / "unpacked"
        assert sorted(x.name for x in unpacked.iterdir()) == ["databases.sql", "keys", "manifest.json"]
        assert (unpacked.stat().st_mode & 0o777) == 0o700
        # nothing in it for other users: the signing key, the dump's password hashes
        assert all(f.stat().st_mode & 0o077 == 0 for f in unpacked.rglob("*")), \
            [(str(f), oct(f.stat().st_mode)) for f in unpacked.rglob("*")]
        assert email.encode() in (unpacked / "databases.sql").read_bytes()
        assert (unpacked / "keys" / "jwt_signing.key").read_bytes() == \
            (stack.var / "secrets" / "jwt_signing.key").read_bytes()
        assert json.loads((unpacked / "manifest.json").read_text())["services"].keys() >= {"accounts", "chat"}

        p = stack.run("restore", "--unpack", str(out / "last.tar.gz"), str(unpacked))
        assert p.returncode != 0 and "not empty" in p.stderr, p.stdout + p.stderr
        data = (out / "last.tar.gz").read_bytes()
        (out / "cut.tar.gz").write_bytes(data[:len(data) // 2])
        p = stack.run("restore", "--unpack", str(out / "cut.tar.gz"), str(out / "from-cut"))
        assert p.returncode != 0 and "damaged" in p.stderr, p.stdout + p.stderr
        assert not (out / "from-cut").exists() and not list(out.glob(".pl-unpack.*"))
        assert not (stack.var / "run" / "mysqld.pid").exists(), "--unpack started something"

        # a manifest that lists no members (so none is checked), or a member no backup has: refused
        pwned = pathlib.Path(f"/tmp/pl-backup-pwned-{uuid.uuid4().hex[:8]}")

        def symlinked(m, d):
            (d / "databases.sql").unlink()
            (d / "databases.sql").symlink_to("/etc/hostname")

        for name, edit in (("bare", lambda m, d: (m.update(files={}), (d / "databases.sql").unlink())),
                           ("extra", lambda m, d: (d / "keys" / "other.key").write_text("x")),
                           ("nested", lambda m, d: (d / "keys" / "sub").mkdir()),
                           ("symlink", symlinked),
                           # names and numbers that bash would run as commands if they reached its arithmetic
                           ("key", lambda m, d: m["services"].update(
                               {f"accounts SERVICES[$(touch${{IFS}}{pwned})]": {"schema": "x", "migration": 1}})),
                           ("number", lambda m, d: m["services"]["chat"].update(migration=f"$(touch {pwned})")),
                           ("mysql", lambda m, d: m["services"]["chat"].update(schema="mysql"))):
            d = out / name
            shutil.copytree(unpacked, d)
            m = json.loads((d / "manifest.json").read_text())
            edit(m, d)
            (d / "manifest.json").write_text(json.dumps(m))
            with tarfile.open(out / f"{name}.tar.gz", "w:gz") as t:
                for f in sorted(d.rglob("*")):
                    t.add(f, arcname=str(f.relative_to(d)), recursive=False)
            p = stack.run("restore", "--unpack", str(out / f"{name}.tar.gz"), str(out / f"{name}-dir"))
            assert p.returncode != 0 and "nothing was restored" in p.stderr, (name, p.stdout + p.stderr)
            assert not (out / f"{name}-dir").exists()
            assert not pwned.exists(), f"{name}: the manifest ran a command"
        p = stack.run("restore", "--unpack", str(out / "last.tar.gz"), str(out / "no" / "such" / "dir"))
        assert p.returncode != 0 and "does not exist" in p.stderr and not (out / "no").exists(), p.stderr
    finally:
        stack.must("up")
        shutil.rmtree(out, ignore_errors=True)
