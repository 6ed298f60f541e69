# scripts/lib.sh: what every part of ./pilotlight shares: the runner's own
# defaults (written once here; nginx's in nginx/defaults.env, the services'
# in their C config rows), the isolated stacks' slots, the service list,
# messages, the stack's paths and its lock. Sourced by ./pilotlight (which
# sets PL_ROOT), never run.
# shellcheck shell=bash disable=SC2034 # what is set here is read by the other parts

# Debian keeps start-stop-daemon, logrotate, nginx and mariadbd in /usr/sbin:
# a minimal PATH (cron's is /usr/bin:/bin) must still find them.
for dir in /usr/sbin /sbin; do
  [[ :$PATH: == *:$dir:* ]] || PATH=$PATH:$dir
done
unset dir

# ---- the runner's defaults (each PL_* can be overridden from the env) -------
# Each `: "${PL_X:=value}"` line's comment is its meaning in
# docs/configuration.md (docs/configuration.sh renders the table from the
# lines of this block): keep one on each.
# PL_DB_PORT is the services' client port (their default 3306); the port the
# stack's own MariaDB listens on is PL_MARIADB_PORT (once the runner called it
# PL_DB_PORT too: set alone, it earns a warning from db_start, nothing more).
[[ -z ${PL_DB_PORT:-} || -n ${PL_MARIADB_PORT:-} ]] || MARIADB_PORT_HINT=$PL_DB_PORT
: "${PL_VAR:=$PL_ROOT/var}"                # everything the stack writes: run/ (pids, sockets), log/, mysql/ (data), secrets/, nginx/ (rendered config)
: "${PL_MARIADB_PORT:=3307}"               # TCP port of the stack's own MariaDB, on 127.0.0.1 (the stack itself uses its unix socket)
: "${PL_BUILD_DIR:=$PL_ROOT/build}"        # the meson build the stack runs (the pools and pl-migrate)
: "${PL_ASAN_BUILD_DIR:=$PL_ROOT/build-asan}"  # the ASan+UBSan build of `test` (its unit tests; the pools with --sanitize) and `leakcheck`
: "${PL_FUZZ_BUILD_DIR:=$PL_ROOT/build-fuzz}"  # the clang build of the fuzz targets (`fuzz`)
: "${PL_WEB_ROOT:=$PL_ROOT/web/dist}"      # the built web client nginx serves at /; a path elsewhere is served as it is, never built
: "${PL_NGINX_USER:=nobody nogroup}"       # nginx workers' user and group (root instead when that user cannot reach $PL_VAR/run)
: "${PL_START_TIMEOUT:=30}"                # seconds MariaDB, each pool, nginx and the health checks each get to come up
: "${PL_STOP_TIMEOUT:=20}"                 # seconds each server gets to stop (TERM; nginx QUIT) before it is killed
: "${PL_RELEASES_KEEP:=5}"                 # releases kept per service; the live one and the one a rollback goes back to are kept too
: "${PL_DEPLOY_PROBATION_S:=10}"           # seconds a deploy watches the pools of a release it swapped in: a worker crash meanwhile rolls it back (0: no watch)
: "${PL_MIGRATIONS_DIR:=$PL_ROOT/migrations}"  # the migrations: <dir>/<svc>/NNN_name.sql, applied by up and deploy
: "${PL_LOG_ROTATE_SIZE:=50M}"              # a log is rotated past this size (logrotate: 100k, 50M, 1G)
: "${PL_LOG_ROTATE_KEEP:=7}"               # rotated files kept per log
: "${PL_LOG_MAX_AGE_DAYS:=30}"             # rotated files older than this many days are removed
: "${PL_LOG_ROTATE_CRON:=1}"               # 1: up installs the rotation in /etc/cron.d (every 15 min)
: "${PL_DISK_WARN_PERCENT:=90}"            # status warns when the disk holding PL_VAR is this full
: "${PL_MAIL_SINK_PORT:=8025}"              # the mail sink's SMTP port on 127.0.0.1, when PL_SMTP_URL names no server
# listeners, TLS, nginx workers, rate limits, nchan, HSTS: written once for
# this runner and the compose nginx entrypoint
# shellcheck source=nginx/defaults.env
. "$PL_ROOT/nginx/defaults.env"

# ---- the isolated stacks: test, soak (var/test[-N]) and bench (var/bench[-N])
# PL_TEST_SLOT=N (0-9) runs another isolated stack beside the first one
# (var/test-N, ports shifted by N*100): several test runs on one machine.
: "${PL_TEST_SLOT:=0}"
[[ $PL_TEST_SLOT =~ ^[0-9]$ ]] || { echo "pilotlight: PL_TEST_SLOT must be 0-9" >&2; exit 1; }
if ((PL_TEST_SLOT == 0)); then readonly TEST_VAR=$PL_ROOT/var/test; else readonly TEST_VAR=$PL_ROOT/var/test-$PL_TEST_SLOT; fi
readonly TEST_HTTP_PORT=$((18080 + PL_TEST_SLOT * 100))
readonly TEST_INTERNAL_PORT=$((18081 + PL_TEST_SLOT * 100))
readonly TEST_HTTPS_PORT=$((18443 + PL_TEST_SLOT * 100))
readonly TEST_MARIADB_PORT=$((13307 + PL_TEST_SLOT * 100))
readonly TEST_MAIL_SINK_PORT=$((18025 + PL_TEST_SLOT * 100))
readonly TEST_IDLE_TIMEOUT_MS=1500         # pools shrink to zero quickly
readonly TEST_MAX_CHILDREN=4
readonly TEST_ROUTES=1                     # PL_TEST_ROUTES: /api/<svc>/_test/...
readonly TEST_SWAP_TIMEOUT_MS=5000         # a release that never gets ready is given up on soon
readonly TEST_DEPLOY_PROBATION_S=3         # the suites deploy often, under a load that finds a crash at once
# accounts: cheap password hashes and short lockouts, so the suite runs fast
readonly TEST_PWHASH_OPSLIMIT=1
readonly TEST_PWHASH_MEMLIMIT_KIB=8192
readonly TEST_LOCKOUT_BASE_S=2
readonly TEST_LOCKOUT_MAX_S=8
# chat: live tickets expire soon enough for a test to watch one expire
readonly TEST_LIVE_TICKET_TTL_S=3
# and a worker remembers a project room's access briefly, so a test sees a
# deleted project's room close soon
readonly TEST_ROOM_ACCESS_CACHE_S=1
# nginx rate limits: far above what the suites send from 127.0.0.1, low
# enough that a deliberate flood (from another 127.0.0.x) meets them
readonly TEST_LIMIT_RATE=50r/s
readonly TEST_LIMIT_BURST=200
readonly TEST_LIMIT_CHAT_POST_BURST=400
# `./pilotlight bench`: ports of its own, so neither a dev nor a test stack
# is touched. Its pool settings and workload are in tests/bench/bench.py.
if ((PL_TEST_SLOT == 0)); then readonly BENCH_VAR=$PL_ROOT/var/bench; else readonly BENCH_VAR=$PL_ROOT/var/bench-$PL_TEST_SLOT; fi
readonly BENCH_HTTP_PORT=$((28080 + PL_TEST_SLOT * 100))
readonly BENCH_INTERNAL_PORT=$((28081 + PL_TEST_SLOT * 100))
readonly BENCH_HTTPS_PORT=$((28443 + PL_TEST_SLOT * 100))
readonly BENCH_MARIADB_PORT=$((23307 + PL_TEST_SLOT * 100))
readonly BENCH_MAIL_SINK_PORT=$((28025 + PL_TEST_SLOT * 100))

# ---- the settings' rules ----------------------------------------------------
# settings_check: every runner setting above is usable, checked before a
# command does anything (so a bad one never stops a command half way).
settings_check() {
  local name
  for name in PL_START_TIMEOUT PL_STOP_TIMEOUT PL_RELEASES_KEEP PL_LOG_ROTATE_KEEP PL_LOG_MAX_AGE_DAYS; do
    [[ ${!name} =~ ^[1-9][0-9]{0,5}$ ]] || die "$name must be a whole number above 0, not '${!name}'"
  done
  [[ $PL_DEPLOY_PROBATION_S =~ ^[0-9]{1,4}$ ]] ||
    die "PL_DEPLOY_PROBATION_S must be a whole number of seconds (0: no watch), not '$PL_DEPLOY_PROBATION_S'"
  for name in PL_MARIADB_PORT PL_MAIL_SINK_PORT; do
    if [[ ! ${!name} =~ ^[1-9][0-9]{0,4}$ ]] || ((${!name} > 65535)); then die "$name must be a TCP port, not '${!name}'"; fi
  done
  [[ $PL_LOG_ROTATE_SIZE =~ ^[1-9][0-9]*[kMG]?$ ]] ||
    die "PL_LOG_ROTATE_SIZE must be a size like 50M, not '$PL_LOG_ROTATE_SIZE'"
  [[ $PL_LOG_ROTATE_CRON == [01] ]] || die "PL_LOG_ROTATE_CRON must be 0 or 1, not '$PL_LOG_ROTATE_CRON'"
  [[ $PL_DISK_WARN_PERCENT =~ ^[1-9][0-9]?$|^100$ ]] ||
    die "PL_DISK_WARN_PERCENT must be a percentage from 1 to 100, not '$PL_DISK_WARN_PERCENT'"
}

# ---- messages ---------------------------------------------------------------
say()  { printf 'pilotlight: %s\n' "$*"; }
warn() { printf 'pilotlight: warning: %s\n' "$*" >&2; }
die()  { printf 'pilotlight: error: %s\n' "$*" >&2; exit 1; }

# tail_log FILE: the end of a log, to explain a failure.
tail_log() {
  [[ -s $1 ]] || return 0
  printf -- '--- last lines of %s ---\n' "$1" >&2
  tail -n 25 -- "$1" >&2 || true
  printf -- '---\n' >&2
}

# ---- the services -----------------------------------------------------------
# What a service's name may be (a word that names a schema, a socket, an
# nginx upstream and a variable): the runner's one rule, an ERE.
readonly SERVICE_NAME_RE='^[a-z][a-z0-9]{0,30}$'

# services/list: one name a line, in start order (the runner, the compose
# entrypoints, migrations, meson and nginx/render.sh all read it).
read_services() {
  local name list=$PL_ROOT/services/list
  SERVICES=()
  while IFS= read -r name || [[ -n $name ]]; do
    [[ $name =~ $SERVICE_NAME_RE ]] || die "$list: '$name' is not a service name ([a-z][a-z0-9]*)"
    SERVICES+=("$name")
  done <"$list"
  ((${#SERVICES[@]} > 0)) || die "$list names no service"
}
read_services
readonly SERVICES

# ---- paths ------------------------------------------------------------------
# layout: derive every path from PL_VAR (absolute, so children and tests agree).
layout() {
  settings_check
  [[ $PL_VAR == /* ]] || PL_VAR=$PWD/$PL_VAR
  [[ $PL_BUILD_DIR == /* ]] || PL_BUILD_DIR=$PWD/$PL_BUILD_DIR
  RUN=$PL_VAR/run
  LOG=$PL_VAR/log
  SECRETS=$PL_VAR/secrets
  NGINX_DIR=$PL_VAR/nginx
  DATADIR=$PL_VAR/mysql
  DB_SOCKET=$RUN/mysqld.sock
  HTTP_URL=http://$(url_host "$PL_HTTP_BIND"):$PL_HTTP_PORT
  HTTPS_URL=https://$(url_host "$PL_HTTP_BIND"):$PL_HTTPS_PORT
  TLS_CERT=${PL_TLS_CERT_FILE:-$SECRETS/tls.crt}
  TLS_KEY=${PL_TLS_KEY_FILE:-$SECRETS/tls.key}
  INTERNAL_URL=http://$(url_host "$PL_INTERNAL_BIND"):$PL_INTERNAL_PORT
  # A unix socket path holds at most 107 bytes.
  ((${#RUN} + 20 < 108)) || die "PL_VAR is too deep for unix socket paths: $PL_VAR"
}

# url_host BIND: where a client on this machine reaches a listener.
url_host() {
  case $1 in 0.0.0.0 | '*') printf '127.0.0.1' ;; *) printf '%s' "$1" ;; esac
}

make_dirs() {
  mkdir -p "$RUN" "$LOG" "$SECRETS" "$NGINX_DIR/tmp"
  # nginx workers (nobody) must traverse to the FastCGI sockets.
  chmod 0755 "$PL_VAR" "$RUN" "$LOG" "$NGINX_DIR"
  chmod 0700 "$SECRETS"
}

# lock_stack: one pilotlight at a time per stack (fd 9; never passed on to
# the servers, see scripts/proc.sh).
lock_stack() {
  mkdir -p "$PL_VAR"
  # `soak` and `test` hold this lock while their suites run `reload`, `up`
  # or `down` on the same stack; they tell them so through the environment.
  [[ ${PL_STACK_LOCKED:-} != "$PL_VAR" ]] || return 0
  exec 9>"$PL_VAR/pilotlight.lock"
  flock -w 300 9 || die "another pilotlight is working on $PL_VAR"
}
