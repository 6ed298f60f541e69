#!/usr/bin/env bash
# test_migrate.sh: pl-migrate against a MariaDB of its own (a temporary datadir,
# socket and TCP port; no other server is touched), through every behaviour an
# operator relies on: provisioning and applying the real migrations, reruns,
# --status, new, changed, renamed, missing and out-of-order files, the ignore
# and naming rules, multi-statement files and SQL errors, strict validation
# before any SQL, PL_DB_PASSWORD vs PL_DB_PASSWORD_FILE, TCP with an admin
# password file (the compose path), the lock (two runs at once, and a lock held
# elsewhere) and the one-schema grant.
#
#   tools/test_migrate.sh [PL_MIGRATE]      default: build/tools/pl-migrate
#
# MIG_RECORD_DIR=DIR keeps each run's stdout, stderr and exit status there, with
# temporary paths, the port and timestamps normalised, so that two binaries can
# be compared with diff -r (MIG_OLD_CLI=1 skips the flags a pre-libshared
# pl-migrate lacks: --print-defaults, --config-reference). The server and the temporary directory go on exit,
# even on failure. Needs mariadb-install-db, mariadbd and the mariadb client.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(realpath "${1:-$ROOT/build/tools/pl-migrate}")
[[ -x $BIN ]] || { echo "test_migrate: no executable $BIN (build first)" >&2; exit 2; }
RECORD=${MIG_RECORD_DIR:-}
TMP=$(mktemp -d /tmp/test_migrate.XXXXXX)
SOCK=$TMP/sock
NOSOCK=$TMP/no-such.sock # where a run that got as far as connecting would fail
server_pid=
bg_pids=() # the lock holder and pl-migrate runs in the background
passed=0

cleanup() {
  local rc=$? i
  for i in "${bg_pids[@]}"; do
    kill "$i" 2>/dev/null || true
  done
  if [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; then
    for ((i = 0; i < 300; i++)); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$TMP"
  ((rc == 0)) || echo "test_migrate: FAILED" >&2
  exit "$rc"
}
trap cleanup EXIT

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  printf -- '--- exit %s, stdout:\n%s\n--- stderr:\n%s\n' "${RC:-}" "${OUT:-}" "${ERR:-}" >&2
  [[ ! -f $TMP/mariadb.log ]] || tail -n 20 "$TMP/mariadb.log" >&2
  exit 1
}
ok() {
  passed=$((passed + 1))
  printf 'ok %d - %s\n' "$passed" "$*"
}

# ---- the server ---------------------------------------------------------------------------------

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

sql() { # sql STATEMENTS [SCHEMA]: as MariaDB's root, one tab-separated line per row
  mariadb --no-defaults --socket="$SOCK" -u root --batch --raw --skip-column-names -e "$1" ${2:+"$2"}
}

start_server() {
  mariadb-install-db --no-defaults --datadir="$TMP/data" --user=root --auth-root-authentication-method=socket \
    --skip-test-db >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log" >&2; fail "mariadb-install-db"; }
  PORT=$(free_port)
  mariadbd --no-defaults --datadir="$TMP/data" --socket="$SOCK" --port="$PORT" --bind-address=127.0.0.1 \
    --user=root --skip-name-resolve --pid-file="$TMP/mariadb.pid" --innodb-buffer-pool-size=32M \
    </dev/null >"$TMP/mariadb.log" 2>&1 &
  server_pid=$!
  local i
  for ((i = 0; i < 600; i++)); do
    kill -0 "$server_pid" 2>/dev/null || fail "mariadbd exited"
    if [[ -S $SOCK ]] && sql "SELECT 1" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  fail "mariadbd did not answer within 60 s"
}

# ---- running pl-migrate -------------------------------------------------------------------------

runs=0
# run LABEL [VAR=value ...] -- ARGS...: pl-migrate with exactly these variables
# (nothing of the caller's PL_*), bounded; sets OUT, ERR and RC.
run() {
  local label=$1 envs=()
  shift
  while [[ $1 != -- ]]; do
    envs+=("$1")
    shift
  done
  shift
  RC=0
  timeout 120 env -i "${envs[@]}" ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} "$BIN" "$@" >"$TMP/out" 2>"$TMP/err" || RC=$?
  OUT=$(<"$TMP/out")
  ERR=$(<"$TMP/err")
  record "$label"
  [[ $ERR != *Sanitizer* && $ERR != *"runtime error:"* ]] || fail "$label: a sanitizer report"
  ((RC != 124)) || fail "$label: timed out"
}

# record LABEL [OUT ERR]: keeps the run's output for comparison (see MIG_RECORD_DIR)
record() {
  [[ -n $RECORD ]] || return 0
  runs=$((runs + 1))
  local base=$RECORD/$(printf '%03d' "$runs")-$1 out=${2:-$TMP/out} err=${3:-$TMP/err}
  mkdir -p "$RECORD"
  printf '%s\n' "$RC" >"$base.rc"
  normalise <"$out" >"$base.out"
  normalise <"$err" >"$base.err"
}
normalise() {
  sed -E -e "s#$TMP#TMP#g" -e "s#:${PORT:-none} #:PORT #g" -e 's/ at [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+$/ at TIME/'
}

expect_rc() { [[ $RC == "$1" ]] || fail "$2: exit $RC, expected $1"; }
expect_out() { [[ $OUT == *"$1"* ]] || fail "$2: stdout lacks: $1"; }
expect_err() { [[ $ERR == *"$1"* ]] || fail "$2: stderr lacks: $1"; }
expect_eq() { [[ $1 == "$2" ]] || fail "$3: got '$1', expected '$2'"; }

# refused LABEL MESSAGE [VAR=value ...] -- ARGS...: exit 1 with that message,
# before any SQL: the server address is a socket that does not exist, so a run
# that got as far as connecting would say so instead.
refused() {
  local label=$1 msg=$2
  shift 2
  run "$label" PL_DB_SOCKET="$NOSOCK" "$@"
  expect_rc 1 "$label"
  expect_err "$msg" "$label"
  [[ $ERR != *"cannot connect"* ]] || fail "$label: reached the server"
  [[ $(wc -l <"$TMP/err") == 1 ]] || fail "$label: more than one line on stderr"
  ok "$label: refused before SQL"
}

password_file() { # password_file NAME PASSWORD: a 0600 file holding PASSWORD and a newline
  printf '%s\n' "$2" >"$TMP/$1"
  chmod 600 "$TMP/$1"
  printf '%s' "$TMP/$1"
}

as_user() { # as_user USER PASSWORD STATEMENT [SCHEMA]: as a service's DB user, over the socket
  MYSQL_PWD=$2 mariadb --no-defaults --socket="$SOCK" -u "$1" --batch --skip-column-names -e "$3" ${4:+"$4"}
}

schema_exists() { [[ $(sql "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$1'") == 1 ]]; }

# ---- usage: no server needed --------------------------------------------------------------------

run usage-none --
expect_rc 2 "no arguments"
expect_err "usage: pl-migrate --service NAME --dir DIR [--status | --check]" "no arguments"
run usage-nodir -- --service accounts
expect_rc 2 "--service without --dir"
run usage-unknown -- --service accounts --dir "$TMP" --bogus
expect_rc 2 "an unknown option"
run usage-extra -- --service accounts --dir "$TMP" extra
expect_rc 2 "an extra argument"
run usage-status-check -- --service accounts --dir "$TMP" --status --check
expect_rc 2 "--status with --check"
run help -- --help
expect_rc 0 "--help"
expect_out "usage: pl-migrate --service NAME --dir DIR [--status | --check]" "--help"
for var in PL_DB_SOCKET PL_DB_HOST PL_DB_PORT PL_DB_ADMIN_USER PL_DB_ADMIN_PASSWORD PL_DB_NAME PL_DB_USER \
  PL_DB_PASSWORD PL_DB_USER_HOST; do
  expect_out "$var" "--help names $var"
done
ok "usage: exit 2 on bad usage, --help on stdout"
if [[ ${MIG_OLD_CLI:-} != 1 ]]; then # the flags every Pilotlight binary has since the config rows
  run print-defaults -- --print-defaults
  expect_rc 0 "--print-defaults"
  for line in PL_DB_SOCKET= PL_DB_HOST=127.0.0.1 PL_DB_PORT=3306 PL_DB_NAME= PL_DB_USER= PL_DB_PASSWORD= \
    PL_DB_ADMIN_USER=root PL_DB_ADMIN_PASSWORD= PL_DB_USER_HOST=%; do
    grep -qx -- "$line" <<<"$OUT" || fail "--print-defaults lacks $line"
  done
  run config-reference -- --config-reference
  expect_rc 0 "--config-reference"
  expect_out '| `PL_DB_ADMIN_PASSWORD` | unset | text, or `PL_DB_ADMIN_PASSWORD_FILE`: a file holding it |' \
    "--config-reference"
  ok "--print-defaults and --config-reference"
fi

# ---- refusals before any SQL --------------------------------------------------------------------

GOOD_PW=$(password_file pw_good "Abcdefghijkl_0123-xyz")
mkdir -p "$TMP/empty"
E=(PL_DB_PASSWORD_FILE="$GOOD_PW")
refused bad-service "--service must match [a-z][a-z0-9_]{0,31}" "${E[@]}" -- --service Accounts --dir "$TMP/empty"
refused bad-service-quote "--service must match" "${E[@]}" -- --service "a'b" --dir "$TMP/empty"
refused bad-service-long "--service must match" "${E[@]}" -- --service "a$(printf 'b%.0s' {1..32})" --dir "$TMP/empty"
refused bad-db-name "PL_DB_NAME must match [a-z][a-z0-9_]{0,31}" "${E[@]}" PL_DB_NAME='x`y' -- \
  --service svc --dir "$TMP/empty"
refused bad-db-user "PL_DB_USER must match [a-z][a-z0-9_]{0,31}" "${E[@]}" PL_DB_USER="a'b" -- \
  --service svc --dir "$TMP/empty"
refused bad-user-host "PL_DB_USER_HOST must be 1-60 of [A-Za-z0-9%_.:/-]" "${E[@]}" PL_DB_USER_HOST="%'" -- \
  --service svc --dir "$TMP/empty"
refused bad-user-host-long "PL_DB_USER_HOST must be 1-60" "${E[@]}" PL_DB_USER_HOST="$(printf 'h%.0s' {1..61})" -- \
  --service svc --dir "$TMP/empty"
refused no-password "the service user's password is missing: set PL_DB_PASSWORD or PL_DB_PASSWORD_FILE" -- \
  --service svc --dir "$TMP/empty"
refused empty-password-file "the service user's password is missing" \
  PL_DB_PASSWORD_FILE="$(password_file pw_empty "")" -- --service svc --dir "$TMP/empty"
refused missing-password-file "$TMP/no-such-file" PL_DB_PASSWORD_FILE="$TMP/no-such-file" -- \
  --service svc --dir "$TMP/empty"
refused short-password "the service user's password must be 12-128 of [A-Za-z0-9_-]" PL_DB_PASSWORD=short1234 -- \
  --service svc --dir "$TMP/empty"
refused quote-password "the service user's password must be 12-128" PL_DB_PASSWORD="abcdefghijkl'x" -- \
  --service svc --dir "$TMP/empty"
refused long-password "the service user's password must be 12-128" PL_DB_PASSWORD="$(printf 'p%.0s' {1..129})" -- \
  --service svc --dir "$TMP/empty"
refused bad-port "PL_DB_PORT" "${E[@]}" PL_DB_PORT=abc -- --service svc --dir "$TMP/empty"
[[ $ERR == "pl-migrate: svc: "* ]] || fail "bad-port: not one 'pl-migrate: svc: ' line"
refused bad-admin-password-file "$TMP/no-such-admin" "${E[@]}" PL_DB_ADMIN_PASSWORD_FILE="$TMP/no-such-admin" -- \
  --service svc --dir "$TMP/empty"

# the directory is read whole, and every name checked, before the server is asked anything
D=$TMP/bad
mkdir -p "$D"
touch "$TMP/plain-file"
refused dir-is-file "cannot open directory $TMP/plain-file: Not a directory" "${E[@]}" -- \
  --service svc --dir "$TMP/plain-file"
for name in notes.txt 01_x.sql 001_.sql 001_-x.sql 001x.sql 1234567890_x.sql 001_a.SQL 001_a.b.sql; do
  rm -rf "$D" && mkdir -p "$D" && echo "SELECT 1;" >"$D/$name"
  refused "malformed-$name" "malformed migration file name '$name' in $D: expected NNN_name.sql" "${E[@]}" -- \
    --service svc --dir "$D"
done
rm -rf "$D" && mkdir -p "$D" && echo "SELECT 1;" >"$D/001_a.sql" && echo "SELECT 2;" >"$D/0001_b.sql"
refused duplicate-version "two migrations share version 1 in $D: " "${E[@]}" -- --service svc --dir "$D"
rm -rf "$D" && mkdir -p "$D/001_dir.sql"
refused not-a-file "$D/001_dir.sql is not a regular file of at most 16777216 bytes" "${E[@]}" -- \
  --service svc --dir "$D"

# ---- the server ---------------------------------------------------------------------------------

start_server
ok "MariaDB $(sql 'SELECT VERSION()') on $SOCK and 127.0.0.1:$PORT"
S=(PL_DB_SOCKET="$SOCK")

# A lock held elsewhere: pl-migrate waits its 60 s, then gives up. Started
# first and collected at the end, so the wait overlaps the other scenarios.
mariadb --no-defaults --socket="$SOCK" -u root --batch --skip-column-names \
  -e "SELECT GET_LOCK('pilotlight_migrate_held', 0); SELECT SLEEP(90)" >/dev/null 2>&1 &
bg_pids+=($!)
for ((i = 0; i < 100; i++)); do
  [[ $(sql "SELECT IS_USED_LOCK('pilotlight_migrate_held') IS NOT NULL") == 1 ]] && break
  sleep 0.1
done
[[ $(sql "SELECT IS_USED_LOCK('pilotlight_migrate_held') IS NOT NULL") == 1 ]] || fail "could not hold the lock"
held_started=$SECONDS
timeout 120 env -i "${S[@]}" PL_DB_PASSWORD_FILE="$GOOD_PW" "$BIN" --service held --dir "$TMP/empty" \
  >"$TMP/held.out" 2>"$TMP/held.err" &
held_pid=$!
bg_pids+=("$held_pid")
# --status takes no lock: it answers while the lock is held
run status-while-locked "${S[@]}" -- --service held --dir "$TMP/empty" --status
expect_rc 0 "--status while the lock is held"
expect_eq "$OUT" "held: schema held: 0 applied, 0 pending" "--status while the lock is held"
ok "--status takes no lock"

# ---- the real migrations --------------------------------------------------------------------------

for svc in accounts projects chat; do
  pw=$(password_file "pw_$svc" "${svc}_Pw_0123456789")
  files=$(cd "$ROOT/migrations/$svc" && ls -- *.sql)
  nfiles=$(wc -l <<<"$files")
  run "status-before-$svc" "${S[@]}" -- --service "$svc" --dir "$ROOT/migrations/$svc" --status
  expect_rc 0 "--status before $svc exists"
  expect_out "$svc: schema $svc: 0 applied, $nfiles pending" "--status before $svc exists"
  schema_exists "$svc" && fail "--status created schema $svc"
  run "apply-$svc" "${S[@]}" PL_DB_PASSWORD_FILE="$pw" -- --service "$svc" --dir "$ROOT/migrations/$svc"
  expect_rc 0 "provision and apply $svc"
  expect_eq "$OUT" "$(sed "s/^/$svc: applied /" <<<"$files")" "provision and apply $svc"
  expect_eq "$ERR" "" "provision and apply $svc"
  expect_eq "$(sql "SELECT name FROM schema_migrations ORDER BY version" "$svc")" "$files" "$svc recorded"
  for f in $files; do
    expect_eq "$(sql "SELECT checksum FROM schema_migrations WHERE name = '$f'" "$svc")" \
      "$(sha256sum <"$ROOT/migrations/$svc/$f" | cut -d' ' -f1)" "$svc: checksum of $f"
  done
  expect_eq "$(sql "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA
                    WHERE SCHEMA_NAME = '$svc'")" "utf8mb4	utf8mb4_unicode_ci" "$svc: charset"
  grants=$(sql "SHOW GRANTS FOR '$svc'@'%'")
  [[ $grants == *"GRANT ALL PRIVILEGES ON \`$svc\`.* TO \`$svc\`@\`%\`"* ]] || fail "$svc: grants: $grants"
  expect_eq "$(grep -c '^GRANT' <<<"$grants")" 2 "$svc: usage and its schema, nothing else"
  as_user "$svc" "${svc}_Pw_0123456789" "SELECT COUNT(*) FROM schema_migrations" "$svc" >/dev/null ||
    fail "$svc cannot use its own schema"
  ok "$svc: provisioned, $nfiles migration(s) applied and recorded with their SHA-256, grant on $svc only"

  run "rerun-$svc" "${S[@]}" PL_DB_PASSWORD_FILE="$pw" -- --service "$svc" --dir "$ROOT/migrations/$svc"
  expect_rc 0 "rerun $svc"
  expect_eq "$OUT" "$svc: schema $svc up to date ($nfiles applied)" "rerun $svc"
  ok "$svc: a rerun changes nothing"

  run "status-$svc" "${S[@]}" -- --service "$svc" --dir "$ROOT/migrations/$svc" --status
  expect_rc 0 "--status $svc"
  expect_out "$svc: applied $(head -n 1 <<<"$files") at " "--status $svc"
  expect_out "$svc: schema $svc: $nfiles applied, 0 pending" "--status $svc"
  ok "$svc: --status"
done
if as_user accounts accounts_Pw_0123456789 "SELECT COUNT(*) FROM projects.projects" >/dev/null 2>&1; then
  fail "accounts' user can read the projects schema"
fi
ok "a service's user cannot reach another service's schema"

# ---- a scratch service: new, changed, renamed, missing, out-of-order and failing files ------------

M=$TMP/scratch
mkdir -p "$M"
printf 'CREATE TABLE things (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL);\n' >"$M/001_things.sql"
printf "INSERT INTO things VALUES (1, 'one');\nINSERT INTO things VALUES (2, 'two');\n" >"$M/002_seed.sql"
printf '# notes\n' >"$M/README.md"
printf 'junk\n' >"$M/.001_editor.swp"
SP=(PL_DB_PASSWORD_FILE="$GOOD_PW")
things() { sql "SELECT COUNT(*) FROM things" scratch; }
versions() { sql "SELECT GROUP_CONCAT(version ORDER BY version) FROM schema_migrations" scratch; }

run scratch-status-fresh "${S[@]}" -- --service scratch --dir "$M" --status
expect_rc 0 "--status of a fresh service"
expect_eq "$OUT" $'scratch: pending 001_things.sql\nscratch: pending 002_seed.sql\nscratch: schema scratch: 0 applied, 2 pending' \
  "--status of a fresh service"
run scratch-apply "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M"
expect_rc 0 "scratch apply"
expect_eq "$OUT" $'scratch: applied 001_things.sql\nscratch: applied 002_seed.sql' "scratch apply"
expect_eq "$(things)" 2 "both statements of 002 ran"
ok "multi-statement files, in order; dotfiles and *.md ignored"

# --check: as the service's own user, 0 when every file of the directory is
# recorded, 3 while some are pending, 1 when it cannot tell; changes nothing
run check-up-to-date "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M" --check
expect_rc 0 "--check, up to date"
expect_eq "$OUT" "scratch: schema scratch up to date (2 applied)" "--check, up to date"
cp "$M/001_things.sql" "$TMP/empty/001_things.sql"
run check-newer-recorded "${S[@]}" "${SP[@]}" -- --service scratch --dir "$TMP/empty" --check
rm "$TMP/empty/001_things.sql"
expect_rc 0 "--check with a recorded migration the directory lacks (an older image)"
printf "INSERT INTO things VALUES (3, 'three');\n" >"$M/003_pending.sql"
printf "INSERT INTO things VALUES (4, 'four');\n" >"$M/004_pending.sql"
before=$(sql "SELECT COUNT(*) FROM things; SELECT COUNT(*) FROM schema_migrations" scratch)
run check-pending "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M" --check
expect_rc 3 "--check with pending migrations"
expect_eq "$OUT" "scratch: schema scratch: 2 pending, the first 003_pending.sql" "--check with pending migrations"
expect_eq "$(sql "SELECT COUNT(*) FROM things; SELECT COUNT(*) FROM schema_migrations" scratch)" "$before" \
  "--check applied nothing"
rm "$M/003_pending.sql" "$M/004_pending.sql"
run check-wrong-password "${S[@]}" PL_DB_PASSWORD=Wrong_password_0123 -- --service scratch --dir "$M" --check
expect_rc 1 "--check with a wrong password"
expect_err "cannot connect to the database at $SOCK as scratch" "--check with a wrong password"
refused check-no-password "the service user's password is missing" -- --service scratch --dir "$M" --check
sql "CREATE USER chk@'%' IDENTIFIED BY 'Abcdefghijkl_0123-xyz'"
run check-no-schema "${S[@]}" "${SP[@]}" -- --service chk --dir "$M" --check
expect_rc 3 "--check before the schema exists"
expect_eq "$OUT" "chk: schema chk: not migrated yet (2 pending)" "--check before the schema exists"
schema_exists chk && fail "--check created schema chk"
sql "DROP USER chk@'%'"
ok "--check: 0 up to date (a newer release's rows do not count), 3 pending, 1 cannot tell; as the service's user"

printf "INSERT INTO things VALUES (10, 'ten');\n" >"$M/010_more.sql"
printf -- '-- nothing to do yet\n/* really */\n' >"$M/011_noop.sql"
run scratch-new "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M"
expect_rc 0 "new files"
expect_eq "$OUT" $'scratch: applied 010_more.sql\nscratch: applied 011_noop.sql' "new files"
expect_eq "$(things)" 3 "new files"
expect_eq "$(versions)" "1,2,10,11" "new files"
ok "new files are applied alone; a file of comments only is recorded"

cp "$M/002_seed.sql" "$TMP/002_seed.sql.orig"
printf "INSERT INTO things VALUES (9, 'nine');\n" >"$M/002_seed.sql"
printf "INSERT INTO things VALUES (12, 'twelve');\n" >"$M/012_later.sql"
run scratch-changed "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M"
expect_rc 1 "a changed applied file"
expect_err "pl-migrate: scratch: applied migration 002_seed.sql has changed since it was applied (sha256 $(sha256sum <"$M/002_seed.sql" | cut -d' ' -f1), was $(sha256sum <"$TMP/002_seed.sql.orig" | cut -d' ' -f1)); add a new migration instead of editing an applied one" \
  "a changed applied file"
expect_err "pl-migrate: scratch: refusing to migrate: nothing was applied" "a changed applied file"
expect_eq "$OUT" "" "a changed applied file"
expect_eq "$(things)/$(versions)" "3/1,2,10,11" "a changed applied file applies nothing"
run scratch-changed-status "${S[@]}" -- --service scratch --dir "$M" --status
expect_rc 1 "--status with a changed applied file"
expect_out "scratch: pending 012_later.sql" "--status with a changed applied file"
expect_err "applied migration 002_seed.sql has changed since it was applied" "--status with a changed applied file"
cp "$TMP/002_seed.sql.orig" "$M/002_seed.sql"
ok "a changed applied file is refused, and nothing is applied"

mv "$M/010_more.sql" "$M/010_other.sql"
run scratch-renamed "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M"
expect_rc 1 "a renamed applied file"
expect_err "applied migration 10 was 010_more.sql, but the file is now 010_other.sql" "a renamed applied file"
mv "$M/010_other.sql" "$TMP/010_more.sql"
run scratch-missing "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M"
expect_rc 1 "a missing applied file"
expect_err "applied migration 010_more.sql is missing from $M" "a missing applied file"
mv "$TMP/010_more.sql" "$M/010_more.sql"
printf "INSERT INTO things VALUES (5, 'five');\n" >"$M/005_late.sql"
run scratch-older "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M"
expect_rc 1 "a pending file older than an applied one"
expect_err "pending migration 005_late.sql is older than applied migration 11; renumber it after 11" \
  "a pending file older than an applied one"
rm "$M/005_late.sql"
expect_eq "$(things)/$(versions)" "3/1,2,10,11" "refusals apply nothing"
ok "renamed, missing and out-of-order files are refused, and nothing is applied"

printf "INSERT INTO things VALUES (13, 'x');\nINSERT INTO no_such_table VALUES (1);\nINSERT INTO things VALUES (14, 'y');\n" \
  >"$M/013_bad.sql"
run scratch-sql-error "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M"
expect_rc 1 "a failing statement"
expect_eq "$OUT" "scratch: applied 012_later.sql" "a failing statement"
expect_err "pl-migrate: scratch: 013_bad.sql: statement 2 failed: Table 'scratch.no_such_table' doesn't exist (MySQL error 1146)" \
  "a failing statement"
expect_err "pl-migrate: scratch: stopped at 013_bad.sql; 1 migration(s) applied before it" "a failing statement"
expect_eq "$(versions)" "1,2,10,11,12" "the failing file is not recorded"
expect_eq "$(sql 'SELECT GROUP_CONCAT(id ORDER BY id) FROM things' scratch)" "1,2,10,12,13" \
  "statement 1 of the failing file stays (DDL and autocommit), statement 3 never ran"
printf "INSERT INTO no_such_table VALUES (1);\n" >"$M/013_bad.sql"
run scratch-sql-error-1 "${S[@]}" "${SP[@]}" -- --service scratch --dir "$M"
expect_rc 1 "a failing first statement"
expect_err "013_bad.sql: statement 1 failed: " "a failing first statement"
expect_err "stopped at 013_bad.sql; 0 migration(s) applied before it" "a failing first statement"
rm "$M/013_bad.sql"
expect_eq "$(versions)" "1,2,10,11,12" "nothing recorded for a failing file"
ok "a SQL error stops the run, says which statement, and records nothing"

run scratch-missing-dir "${S[@]}" "${SP[@]}" -- --service nodir --dir "$TMP/no-such-dir"
expect_rc 0 "a missing directory"
expect_eq "$OUT" "nodir: schema nodir up to date (0 applied)" "a missing directory"
schema_exists nodir || fail "a missing directory: schema nodir not created"
ok "a missing directory is an empty one (the service is still provisioned)"

run status-no-password "${S[@]}" PL_DB_PASSWORD_FILE="$TMP/no-such-file" -- --service scratch --dir "$M" --status
expect_rc 0 "--status needs no service password"
expect_out "scratch: schema scratch: 5 applied, 0 pending" "--status needs no service password"
ok "--status needs no service password"

# ---- passwords: PL_DB_PASSWORD, PL_DB_PASSWORD_FILE ------------------------------------------------

PW_A=Env_password_AAAA
PW_B=File_password_BBBB
run pw-env "${S[@]}" PL_DB_PASSWORD="$PW_A" -- --service scratch --dir "$M"
expect_rc 0 "PL_DB_PASSWORD"
as_user scratch "$PW_A" "SELECT 1" >/dev/null || fail "PL_DB_PASSWORD did not become the user's password"
run pw-file "${S[@]}" PL_DB_PASSWORD_FILE="$(password_file pw_b "$PW_B")" -- --service scratch --dir "$M"
expect_rc 0 "PL_DB_PASSWORD_FILE"
as_user scratch "$PW_B" "SELECT 1" >/dev/null || fail "PL_DB_PASSWORD_FILE did not become the user's password"
if as_user scratch "$PW_A" "SELECT 1" >/dev/null 2>&1; then fail "the old password still works"; fi
run pw-both "${S[@]}" PL_DB_PASSWORD="$PW_A" PL_DB_PASSWORD_FILE="$TMP/pw_b" -- --service scratch --dir "$M"
expect_rc 0 "both"
as_user scratch "$PW_A" "SELECT 1" >/dev/null || fail "PL_DB_PASSWORD does not win over PL_DB_PASSWORD_FILE"
ok "the password from PL_DB_PASSWORD or PL_DB_PASSWORD_FILE is set on every run (the variable wins)"

# ---- names: PL_DB_NAME, PL_DB_USER, PL_DB_USER_HOST, '_' in GRANT ----------------------------------

run names "${S[@]}" "${SP[@]}" PL_DB_NAME=other_schema PL_DB_USER=other_user PL_DB_USER_HOST=localhost -- \
  --service named --dir "$M"
expect_rc 0 "PL_DB_NAME, PL_DB_USER, PL_DB_USER_HOST"
expect_out "named: applied 012_later.sql" "PL_DB_NAME, PL_DB_USER, PL_DB_USER_HOST"
grants=$(sql "SHOW GRANTS FOR 'other_user'@'localhost'")
[[ $grants == *"GRANT ALL PRIVILEGES ON \`other\\_schema\`.* TO \`other_user\`@\`localhost\`"* ]] ||
  fail "names: grants: $grants"
schema_exists named && fail "names: a schema named after the service"
expect_eq "$(sql "SELECT COUNT(*) FROM things" other_schema)" 4 "names"
ok "PL_DB_NAME, PL_DB_USER and PL_DB_USER_HOST; '_' escaped in the grant"

# ---- TCP with an administrator's password file (the compose path) ----------------------------------

ADMIN_PW=Admin_password_0123
sql "CREATE USER 'pladmin'@'127.0.0.1' IDENTIFIED BY '$ADMIN_PW';
     GRANT ALL PRIVILEGES ON *.* TO 'pladmin'@'127.0.0.1' WITH GRANT OPTION"
T=(PL_DB_HOST=127.0.0.1 PL_DB_PORT="$PORT" PL_DB_ADMIN_USER=pladmin)
run tcp "${T[@]}" PL_DB_ADMIN_PASSWORD_FILE="$(password_file pw_admin "$ADMIN_PW")" "${SP[@]}" -- \
  --service tcpsvc --dir "$M"
expect_rc 0 "TCP with PL_DB_ADMIN_PASSWORD_FILE"
expect_out "tcpsvc: applied 001_things.sql" "TCP with PL_DB_ADMIN_PASSWORD_FILE"
run tcp-admin-env "${T[@]}" PL_DB_ADMIN_PASSWORD="$ADMIN_PW" "${SP[@]}" -- --service tcpsvc --dir "$M"
expect_rc 0 "TCP with PL_DB_ADMIN_PASSWORD"
expect_out "tcpsvc: schema tcpsvc up to date (5 applied)" "TCP with PL_DB_ADMIN_PASSWORD"
run tcp-bad-admin "${T[@]}" PL_DB_ADMIN_PASSWORD=wrong "${SP[@]}" -- --service tcpsvc --dir "$M"
expect_rc 1 "a wrong admin password"
expect_err "pl-migrate: tcpsvc: cannot connect to the database at 127.0.0.1:$PORT as pladmin: Access denied" \
  "a wrong admin password"
run no-server PL_DB_SOCKET="$NOSOCK" "${SP[@]}" -- --service tcpsvc --dir "$M"
expect_rc 1 "no server"
expect_err "pl-migrate: tcpsvc: cannot connect to the database at $NOSOCK as root: " "no server"
ok "TCP with the administrator's password (file or variable); connection errors say where and as whom"

# ---- two runs at once ---------------------------------------------------------------------------------

C=$TMP/conc
mkdir -p "$C"
printf 'CREATE TABLE t (id INT PRIMARY KEY);\nDO SLEEP(1);\n' >"$C/001_t.sql"
printf 'INSERT INTO t VALUES (1);\n' >"$C/002_seed.sql"
for i in 1 2; do
  timeout 120 env -i "${S[@]}" "${SP[@]}" "$BIN" --service conc --dir "$C" >"$TMP/conc$i.out" 2>"$TMP/conc$i.err" &
  conc_pid[i]=$!
  bg_pids+=($!)
done
for i in 1 2; do
  RC=0
  wait "${conc_pid[i]}" || RC=$?
  OUT=$(<"$TMP/conc$i.out") ERR=$(<"$TMP/conc$i.err")
  expect_rc 0 "concurrent run $i"
done
expect_eq "$(sort "$TMP/conc1.out" "$TMP/conc2.out")" \
  $'conc: applied 001_t.sql\nconc: applied 002_seed.sql\nconc: schema conc up to date (2 applied)' "two runs at once"
expect_eq "$(sql "SELECT COUNT(*) FROM t" conc)/$(sql "SELECT COUNT(*) FROM schema_migrations" conc)" "1/2" \
  "two runs at once"
ok "two runs at once: one applies, the other waits for the lock and finds nothing to do"

# ---- the lock held elsewhere (started above) -------------------------------------------------------------

RC=0
wait "$held_pid" || RC=$?
OUT=$(<"$TMP/held.out") ERR=$(<"$TMP/held.err")
record held "$TMP/held.out" "$TMP/held.err"
expect_rc 1 "a lock held elsewhere"
expect_eq "$ERR" "pl-migrate: held: another pl-migrate has held the lock 'pilotlight_migrate_held' for 60 s; giving up" \
  "a lock held elsewhere"
((SECONDS - held_started >= 55)) || fail "gave up on the lock after $((SECONDS - held_started)) s"
schema_exists held && fail "a lock held elsewhere: schema created anyway"
ok "a lock held elsewhere: gives up after 60 s, having changed nothing"

echo "test_migrate: all $passed passed ($BIN)"
