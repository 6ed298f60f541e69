"""The one nginx renderer (nginx/render.sh, used by ./pilotlight and by the
compose nginx entrypoint) and the service list (services/list): a service
added to the list gets its upstream, its $pl_up_<svc> and its /api/<svc>
locations with no nginx edit; the config passes nginx -t; everything the
other services had is rendered exactly as before. Needs nginx, not the stack."""
import contextlib
import difflib
import http.client
import json
import os
import pathlib
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
RENDER = ROOT / "nginx" / "render.sh"
SERVICES = (ROOT / "services" / "list").read_text().split()
EXTRA = "xtestsvc"  # a name no real service takes


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One place for both renders, so that their paths are the same."""
    d = tmp_path_factory.mktemp("render")
    for sub in ("run", "log", "web", "nginx/tmp"):
        (d / sub).mkdir(parents=True)
    subprocess.run(["sh", str(ROOT / "nginx" / "self-signed.sh"), str(d / "tls.crt"), str(d / "tls.key")],
                   check=True, capture_output=True)
    return d


def render(base, services, mode):
    """Renders the config for this service list into base/nginx (local: one
    unix socket per service; compose: by name through a resolver) and returns
    {file name: text}."""
    (base / "list").write_text("".join(f"{s}\n" for s in services))
    env = dict(os.environ, PL_SERVICES_FILE=str(base / "list"), PL_NGINX_DIR=str(base / "nginx"),
               PL_RUN_DIR=str(base / "run"), PL_LOG_DIR=str(base / "log"), PL_WEB_ROOT=str(base / "web"),
               PL_NGINX_USER="nobody nogroup", PL_TLS_CERT_FILE=str(base / "tls.crt"),
               PL_TLS_KEY_FILE=str(base / "tls.key"), PL_RESOLVER="127.0.0.11", PL_RESOLVER_VALID="5s")
    if mode == "local":
        args = [a for s in services for a in ("--servers", f"{s}=unix:{base}/run/{s}.sock")]
    else:
        args = ["--resolve", "9000"]
    r = subprocess.run(["bash", str(RENDER), str(base / "nginx"), *args], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    out = base / "nginx"
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


def nginx_t(base):
    return subprocess.run(["/usr/sbin/nginx", "-t", "-q", "-p", f"{base}/nginx/", "-c", f"{base}/nginx/nginx.conf",
                           "-e", f"{base}/log/nginx-error.log"], capture_output=True, text=True, timeout=30)


def only_added_lines(before, after):
    """The lines after has and before had not; fails on any other change."""
    added = []
    for op in difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False).get_opcodes():
        tag, i1, i2, j1, j2 = op
        assert tag in ("equal", "insert"), (op, before, after)
        if tag == "insert":
            added += after.splitlines()[j1:j2]
    return added


@pytest.mark.parametrize("mode", ["local", "compose"])
def test_an_extra_service_in_the_list_is_routed_and_nothing_else_changes(base, mode):
    assert EXTRA not in SERVICES
    before = render(base, SERVICES, mode)
    assert nginx_t(base).returncode == 0
    after = render(base, [*SERVICES, EXTRA], mode)
    r = nginx_t(base)
    assert r.returncode == 0, r.stderr
    assert set(after) == set(before)
    for name in set(before) - {"upstreams.conf", "api_services.conf"}:
        assert after[name] == before[name], name  # nginx.conf, api.conf, fastcgi.conf, errors/ ...
    # the extra service's locations, after the others (which are as they were)
    added = only_added_lines(before["api_services.conf"], after["api_services.conf"])
    assert added == [f"location = /api/{EXTRA} {{ fastcgi_pass $pl_up_{EXTRA}; }}",
                     f"location /api/{EXTRA}/ {{ fastcgi_pass $pl_up_{EXTRA}; }}"]
    # its upstream: a socket of its own (local) or its compose name (compose)
    added = "\n".join(only_added_lines(before["upstreams.conf"], after["upstreams.conf"]))
    assert f"map $uri $pl_up_{EXTRA} {{" in added
    if mode == "local":
        assert f"upstream {EXTRA} {{" in added
        assert f"server unix:{base}/run/{EXTRA}.sock max_fails=1 fail_timeout=5s;" in added
        assert f"default {EXTRA};" in added
    else:
        assert f"default {EXTRA}:9000;" in added
    assert all(EXTRA in line or line.strip() in ("}", "") or line.lstrip().startswith(("#", "server ", "default "))
               for line in added.splitlines()), added
    # and api.conf sends /api/<svc> through the generated file, for every service
    assert f"include {base}/nginx/api_services.conf;" in after["api.conf"]
    for svc in SERVICES:
        assert f"location /api/{svc}/ {{ fastcgi_pass $pl_up_{svc}; }}" in after["api_services.conf"]


def test_the_stack_runs_the_rendered_config_of_its_service_list():
    """The running test stack's nginx dir holds what the renderer makes from
    services/list: a location pair and an upstream per service."""
    var = os.environ.get("PL_VAR")
    if not var or not (pathlib.Path(var) / "nginx" / "api_services.conf").exists():
        pytest.skip("no rendered stack config (run through ./pilotlight test)")
    conf = pathlib.Path(var) / "nginx"
    for svc in SERVICES:
        assert f"location = /api/{svc} {{ fastcgi_pass $pl_up_{svc}; }}" in (conf / "api_services.conf").read_text()
        assert f"upstream {svc} {{" in (conf / "upstreams.conf").read_text()


@pytest.mark.parametrize("bad,why", [
    ("Reports", "not a service name"),
    ("re-ports", "not a service name"),
    ("", "not a service name"),
])
def test_a_bad_service_name_in_the_list_is_refused(base, bad, why):
    (base / "bad-list").write_text("".join(f"{s}\n" for s in [*SERVICES, bad]))
    env = dict(os.environ, PL_SERVICES_FILE=str(base / "bad-list"), PL_RUN_DIR=str(base / "run"),
               PL_LOG_DIR=str(base / "log"), PL_WEB_ROOT=str(base / "web"), PL_NGINX_USER="nobody nogroup",
               PL_TLS_CERT_FILE=str(base / "tls.crt"), PL_TLS_KEY_FILE=str(base / "tls.key"))
    r = subprocess.run(["bash", str(RENDER), str(base / "bad-out"), "--resolve", "9000"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and why in r.stderr, (r.returncode, r.stderr)


def test_every_listed_service_needs_its_pools(base):
    env = dict(os.environ, PL_SERVICES_FILE=str(ROOT / "services" / "list"), PL_RUN_DIR=str(base / "run"),
               PL_LOG_DIR=str(base / "log"), PL_WEB_ROOT=str(base / "web"), PL_NGINX_USER="nobody nogroup",
               PL_TLS_CERT_FILE=str(base / "tls.crt"), PL_TLS_KEY_FILE=str(base / "tls.key"))
    r = subprocess.run(["bash", str(RENDER), str(base / "bad-out"), "--servers", f"{SERVICES[0]}=unix:/x.sock"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"no --servers for {SERVICES[1]}" in r.stderr, r.stderr


def render_env(base, **extra):
    return dict(os.environ, PL_SERVICES_FILE=str(ROOT / "services" / "list"), PL_NGINX_DIR=str(base / "nginx"),
                PL_RUN_DIR=str(base / "run"), PL_LOG_DIR=str(base / "log"), PL_WEB_ROOT=str(base / "web"),
                PL_NGINX_USER="nobody nogroup", PL_TLS_CERT_FILE=str(base / "tls.crt"),
                PL_TLS_KEY_FILE=str(base / "tls.key"), PL_RESOLVER="127.0.0.11", PL_RESOLVER_VALID="5s", **extra)


@pytest.mark.parametrize("mode", ["local", "compose"])
def test_pools_on_other_hosts_and_redis_for_several_fronts(base, mode):
    """PL_UPSTREAM_<SVC> lists a service's pools on other hosts (it needs no
    --servers then, and wins over --resolve); PL_NCHAN_REDIS_URL puts both
    nchan locations' channels in Redis. The config passes nginx -t."""
    svc, others = SERVICES[1], [s for s in SERVICES if s != SERVICES[1]]
    env = render_env(base, **{f"PL_UPSTREAM_{svc.upper()}": "10.77.9.1:9001 10.77.9.2:9001 unix:/run/x.sock",
                              "PL_NCHAN_REDIS_URL": "redis://10.77.9.3:6379/0"})
    args = ([a for s in others for a in ("--servers", f"{s}=unix:{base}/run/{s}.sock")] if mode == "local"
            else ["--resolve", "9000"])
    r = subprocess.run(["bash", str(RENDER), str(base / "nginx"), *args], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    up = (base / "nginx" / "upstreams.conf").read_text()
    block = up[up.index(f"upstream {svc} {{"):]
    block = block[:block.index("}")]
    assert [line.strip() for line in block.splitlines()[1:]] == [
        f"zone pl_up_{svc} 64k;",
        "server 10.77.9.1:9001 max_fails=1 fail_timeout=5s;",
        "server 10.77.9.2:9001 max_fails=1 fail_timeout=5s;",
        "server unix:/run/x.sock max_fails=1 fail_timeout=5s;"]
    assert "fastcgi_connect_timeout 1s;" in up and "fastcgi_next_upstream error timeout;" in up
    assert "nchan_redis_server redis://10.77.9.3:6379/0;" in up
    assert (base / "nginx" / "nchan_store.conf").read_text().splitlines()[-1] == "nchan_redis_pass pl_nchan_redis;"
    conf = (base / "nginx" / "nginx.conf").read_text()
    assert conf.count(f"include {base}/nginx/nchan_store.conf;") == 2  # the subscriber's and the publisher's
    r = nginx_t(base)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("var,value,why", [
    ("PL_UPSTREAM_PROJECTS", "10.0.0.1:9001 10.0.0.2", "is not host:port or unix:/path"),
    ("PL_UPSTREAM_PROJECTS", "10.0.0.1:9001;", "is not host:port or unix:/path"),
    ("PL_NCHAN_REDIS_URL", "redis://a b;c", "is not redis://"),
    ("PL_UPSTREAM_READ_TIMEOUT", "10 s", "must be a time"),
])
def test_bad_upstream_settings_are_refused(base, var, value, why):
    r = subprocess.run(["bash", str(RENDER), str(base / "bad-out"), "--resolve", "9000"],
                       env=render_env(base, **{var: value}), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and why in r.stderr, (r.returncode, r.stderr)


@pytest.mark.parametrize("value,why", [
    ("10.0.0.0/8;", "is not an address or CIDR"),
    ("10.0.0.0/8 all", "is not an address or CIDR"),
    ("*", "is not an address or CIDR"),
])
def test_bad_trusted_proxies_are_refused(base, value, why):
    r = subprocess.run(["bash", str(RENDER), str(base / "bad-out"), "--resolve", "9000"],
                       env=render_env(base, PL_TRUSTED_PROXIES=value), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and why in r.stderr, (r.returncode, r.stderr)


# ---- behind a proxy: PL_TRUSTED_PROXIES, served by a real nginx ----------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EchoFastCGI:
    """A FastCGI responder on 127.0.0.1 that answers every request with the
    params nginx sent it, as JSON: what a service would see."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    @staticmethod
    def read(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    @staticmethod
    def params(data):
        out, i = {}, 0
        while i < len(data):
            lens = []
            for _ in range(2):
                if data[i] >> 7:
                    lens.append(struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF)
                    i += 4
                else:
                    lens.append(data[i])
                    i += 1
            name, value = data[i:i + lens[0]], data[i + lens[0]:i + lens[0] + lens[1]]
            i += lens[0] + lens[1]
            out[name.decode()] = value.decode(errors="replace")
        return out

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self.answer(conn)
                except (EOFError, OSError):
                    pass

    def answer(self, conn):
        raw, rid = b"", 1
        while True:
            version, kind, rid, length, padding, _ = struct.unpack(">BBHHBB", self.read(conn, 8))
            content = self.read(conn, length + padding)[:length]
            if kind == 4:  # FCGI_PARAMS
                raw += content
            elif kind == 5 and length == 0:  # the end of FCGI_STDIN
                break
        body = json.dumps(self.params(raw)).encode()
        out = b"Status: 200 OK\r\nContent-Type: application/json\r\n\r\n" + body
        for i in range(0, len(out), 65535):
            part = out[i:i + 65535]
            conn.sendall(struct.pack(">BBHHBB", 1, 6, rid, len(part), 0, 0) + part)
        conn.sendall(struct.pack(">BBHHBB", 1, 6, rid, 0, 0, 0))
        conn.sendall(struct.pack(">BBHHBB", 1, 3, rid, 8, 0, 0) + b"\0" * 8)

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def echo():
    e = EchoFastCGI()
    yield e
    e.close()


@contextlib.contextmanager
def running_nginx(base, echo, trusted):
    """nginx with the rendered config, every service's pool the echo
    responder; yields its ports."""
    ports = {"http": free_port(), "https": free_port(), "internal": free_port()}
    env = render_env(base, PL_HTTP_BIND="127.0.0.1", PL_HTTP_PORT=str(ports["http"]),
                     PL_HTTPS_PORT=str(ports["https"]), PL_INTERNAL_PORT=str(ports["internal"]),
                     PL_TRUSTED_PROXIES=trusted, PL_NGINX_WORKERS="1")
    args = [a for s in SERVICES for a in ("--servers", f"{s}=127.0.0.1:{echo.port}")]
    r = subprocess.run(["bash", str(RENDER), str(base / "nginx"), *args], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    conf = ["-p", f"{base}/nginx/", "-c", f"{base}/nginx/nginx.conf", "-e", f"{base}/log/nginx-error.log"]
    r = subprocess.run(["/usr/sbin/nginx", *conf], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", ports["http"]), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield ports
    finally:
        subprocess.run(["/usr/sbin/nginx", *conf, "-s", "stop"], capture_output=True, timeout=30)
        pid = base / "run" / "nginx.pid"
        for _ in range(100):
            if not pid.exists():
                break
            time.sleep(0.05)


def ask(port, peer, headers=(), tls=False):
    """GET /api/accounts/echo from the address peer (127.0.0.x: a trusted
    proxy or not); (what the service saw, the answer's headers)."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", port, source_address=(peer, 0), timeout=10, context=ctx)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, source_address=(peer, 0), timeout=10)
    try:
        c.request("GET", "/api/accounts/echo", headers=dict(headers))
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        return json.loads(body), r.headers
    finally:
        c.close()


PROXIED = (("X-Forwarded-For", "203.0.113.7, 10.9.1.1"), ("X-Forwarded-Proto", "https"))


def test_behind_a_trusted_proxy_the_client_address_and_https_are_the_proxys_word(base, echo):
    """From a trusted proxy (127.0.0.2 here; 10.9.0.0/16 a second hop in
    front of it), X-Forwarded-For gives the client's address and
    X-Forwarded-Proto: https makes the request HTTPS (the services' HTTPS
    param: the refresh cookie's Secure; HSTS). From any other peer both are
    ignored, with the same headers."""
    with running_nginx(base, echo, "127.0.0.2/32 10.9.0.0/16") as ports:
        seen, headers = ask(ports["http"], "127.0.0.2", PROXIED)
        assert seen["REMOTE_ADDR"] == "203.0.113.7"  # the last address no trusted proxy added
        assert seen["HTTPS"] == "on"
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        # a trusted proxy that received plain HTTP says so: not HTTPS
        for proto in ((), (("X-Forwarded-Proto", "http"),)):
            seen, headers = ask(ports["http"], "127.0.0.2", (("X-Forwarded-For", "203.0.113.7"), *proto))
            assert seen["REMOTE_ADDR"] == "203.0.113.7" and "HTTPS" not in seen
            assert "Strict-Transport-Security" not in headers
        # an untrusted peer: its own address, plain HTTP, whatever it claims
        seen, headers = ask(ports["http"], "127.0.0.1", PROXIED)
        assert seen["REMOTE_ADDR"] == "127.0.0.1" and "HTTPS" not in seen
        assert "Strict-Transport-Security" not in headers
        # nginx's own TLS is HTTPS from anyone, as before
        seen, headers = ask(ports["https"], "127.0.0.1", (("X-Forwarded-Proto", "http"),), tls=True)
        assert seen["REMOTE_ADDR"] == "127.0.0.1" and seen["HTTPS"] == "on"
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        # the internal listener trusts no proxy's headers
        seen, _ = ask(ports["internal"], "127.0.0.2", PROXIED)
        assert seen["REMOTE_ADDR"] == "127.0.0.2" and "HTTPS" not in seen
        log = (base / "log" / "nginx-access.log").read_text().splitlines()
        assert any('"remote_addr":"203.0.113.7"' in line for line in log)


def test_without_trusted_proxies_no_peer_is_believed(base, echo):
    """The default (PL_TRUSTED_PROXIES empty): every peer is the client."""
    with running_nginx(base, echo, "") as ports:
        conf = (base / "nginx" / "proxies.conf").read_text()
        assert "set_real_ip_from" not in conf and "real_ip_header" not in conf
        for peer in ("127.0.0.1", "127.0.0.2"):
            seen, headers = ask(ports["http"], peer, PROXIED)
            assert seen["REMOTE_ADDR"] == peer and "HTTPS" not in seen
            assert "Strict-Transport-Security" not in headers
