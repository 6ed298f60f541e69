#!/usr/bin/env bash
# tests/leak/run.sh: LeakSanitizer on the service workers (issue 8).
#
# Starts a throw-away stack whose pools run the sanitizer build (ASan + UBSan,
# meson -Dsanitize=true), one static worker per service that is never
# recycled, drives it with a mix of every kind of request (tests/leak/drive.py)
# until each worker has served PL_LEAK_REQUESTS, stops it gracefully (each
# worker checks for leaks as it exits, see pool.c), and fails if any process
# wrote a sanitizer report. `./pilotlight leakcheck` runs it; so will `soak`.
#
# Settings: PL_LEAK_REQUESTS (10000 per service), PL_LEAK_SLOT (0-9: ports
# 19080/19443/19081 and MariaDB 15307, shifted by slot*100; state in
# var/leak[-N]),
# PL_ASAN_BUILD_DIR (./build-asan).
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
: "${PL_LEAK_REQUESTS:=10000}"
: "${PL_LEAK_SLOT:=0}"
: "${PL_ASAN_BUILD_DIR:=$ROOT/build-asan}"
[[ $PL_LEAK_SLOT =~ ^[0-9]$ ]] || { echo "leak: PL_LEAK_SLOT must be 0-9" >&2; exit 2; }
[[ $PL_LEAK_REQUESTS =~ ^[0-9]+$ ]] || { echo "leak: PL_LEAK_REQUESTS must be a number" >&2; exit 2; }
export PL_LEAK_REQUESTS

if ((PL_LEAK_SLOT == 0)); then PL_VAR=$ROOT/var/leak; else PL_VAR=$ROOT/var/leak-$PL_LEAK_SLOT; fi
export PL_VAR
export PL_HTTP_BIND=127.0.0.1 PL_INTERNAL_BIND=127.0.0.1
export PL_HTTP_PORT=$((19080 + PL_LEAK_SLOT * 100)) PL_INTERNAL_PORT=$((19081 + PL_LEAK_SLOT * 100))
export PL_MARIADB_PORT=$((15307 + PL_LEAK_SLOT * 100)) PL_HTTPS_PORT=$((19443 + PL_LEAK_SLOT * 100))
export PL_TLS_CERT_FILE='' PL_TLS_KEY_FILE='' PL_LOG_ROTATE_CRON=0 PL_MAIL_SINK_PORT=$((19025 + PL_LEAK_SLOT * 100))
export PL_BUILD_DIR=$PL_ASAN_BUILD_DIR
# one worker per service serves everything: static, never recycled
export PL_POOL_MODE=static PL_MAX_CHILDREN=1 PL_MAX_REQUESTS=0
# cheap password hashing and no rate limit in the way of the mix
export PL_PWHASH_OPSLIMIT=1 PL_PWHASH_MEMLIMIT_KIB=8192 PL_LOCKOUT_BASE_S=1 PL_LOCKOUT_MAX_S=2
for z in LOGIN SIGNUP REFRESH CHAT_POST MAIL CODE; do
  export "PL_LIMIT_${z}_RATE=100000r/s" "PL_LIMIT_${z}_BURST=100000"
done
export PL_ADMIN_EMAIL=admin@leak.test
PL_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')
export PL_ADMIN_PASSWORD
SAN_DIR=$PL_VAR/log/sanitizers
# every process of the stack that is built with the sanitizers reports here
# (one file per pid); exitcode 0: a leak is counted here, not a crash
export ASAN_OPTIONS="log_path=$SAN_DIR/asan:detect_leaks=1:exitcode=0"
export LSAN_OPTIONS="exitcode=0"
export UBSAN_OPTIONS="log_path=$SAN_DIR/ubsan:print_stacktrace=1"

say() { printf 'leak: %s\n' "$*"; }

cd "$ROOT"
# the sanitizer build (the same one `./pilotlight test` runs the unit tests in)
if [[ ! -f $PL_ASAN_BUILD_DIR/build.ninja ]]; then
  meson setup "$PL_ASAN_BUILD_DIR" "$ROOT" -Dsanitize=true >/dev/null
elif ! meson configure "$PL_ASAN_BUILD_DIR" | grep -Eq '^ *sanitize +true'; then
  meson configure "$PL_ASAN_BUILD_DIR" -Dsanitize=true >/dev/null
fi
ninja -C "$PL_ASAN_BUILD_DIR" >/dev/null || {
  echo "leak: the sanitizer build in $PL_ASAN_BUILD_DIR failed" >&2
  ninja -C "$PL_ASAN_BUILD_DIR" >&2 || true
  exit 1
}

"$ROOT/pilotlight" down >/dev/null 2>&1 || true
rm -rf "$PL_VAR"
mkdir -p "$SAN_DIR"
# shellcheck disable=SC2317 # run by the EXIT trap
finish() {
  "$ROOT/pilotlight" down >/dev/null 2>&1 || true
}
trap finish EXIT
"$ROOT/pilotlight" up >"$PL_VAR/up.log" 2>&1 || {
  tail -n 30 "$PL_VAR/up.log" >&2
  exit 1
}
say "stack up from $PL_BUILD_DIR; driving $PL_LEAK_REQUESTS requests per service"
export PL_BASE_URL=http://127.0.0.1:$PL_HTTP_PORT PL_INTERNAL_URL=http://127.0.0.1:$PL_INTERNAL_PORT
/usr/bin/python3 "$ROOT/tests/leak/drive.py" "$PL_LEAK_REQUESTS"

# what each pool's one worker served (and that no worker crashed or was replaced)
rc=0
for svc in accounts projects chat; do
  /usr/bin/python3 - "$svc" <<'EOF' || rc=1
import json, os, sys, urllib.request
svc = sys.argv[1]
s = json.load(urllib.request.urlopen(f"{os.environ['PL_INTERNAL_URL']}/api/{svc}/_status"))
w, c = s["worker_list"], s["counters"]
served = sum(x["requests"] for x in w)
print(f"leak: {svc}: {len(w)} worker(s), {served} requests served, {c['crashes']} crashes, {c['spawns']} spawns")
sys.exit(0 if len(w) == 1 and c["crashes"] == 0 and served >= int(os.environ["PL_LEAK_REQUESTS"]) else 1)
EOF
done

# a graceful stop: each worker runs its leak check as it exits, then the masters
"$ROOT/pilotlight" down >/dev/null 2>&1
trap - EXIT
reports=$(grep -l -E 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error' "$SAN_DIR"/* 2>/dev/null || true)
if [[ -n $reports ]]; then
  say "sanitizer reports:"
  for f in $reports; do
    printf -- '--- %s\n' "$f"
    head -n 40 "$f"
  done
  rc=1
fi
if grep -h -E 'runtime error|ERROR: AddressSanitizer' "$PL_VAR"/log/*.log 2>/dev/null | head -5 | grep -q .; then
  say "sanitizer errors in the pool logs"
  rc=1
fi
if ((rc == 0)); then
  say "ok: no leak and no sanitizer report"
else
  say "FAILED"
fi
exit "$rc"
