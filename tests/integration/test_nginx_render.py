"""The one nginx renderer (nginx/render.sh, used by ./pilotlight and by the
compose nginx entrypoint) and the service list (services/list): a service
added to the list gets its upstream, its $pl_up_<svc> and its /api/<svc>
locations with no nginx edit; the config passes nginx -t; everything the
other services had is rendered exactly as before. Needs nginx, not the stack."""
import difflib
import os
import pathlib
import subprocess

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
