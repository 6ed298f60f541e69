# scripts/db.sh: the stack's own MariaDB (datadir $PL_VAR/mysql, socket
# $RUN/mysqld.sock, TCP PL_MARIADB_PORT on 127.0.0.1): init, start, stop, and
# each service's schema and migrations (pl-migrate, migrations/<svc>/).
# shellcheck shell=bash

readonly MARIADBD=/usr/sbin/mariadbd

db_ping() {
  mariadb-admin --no-defaults --socket="$DB_SOCKET" --connect-timeout=2 ping >/dev/null 2>&1
}

db_init() {
  local user
  [[ -d $DATADIR/mysql ]] && return 0
  user=$(id -un)
  say "initialising MariaDB in $DATADIR"
  rm -rf "$DATADIR.tmp"
  # its own tmpdir: stacks side by side must not share /tmp's temporary tables
  mkdir -p "$PL_VAR/tmp"
  mariadb-install-db --no-defaults --datadir="$DATADIR.tmp" --user="$user" \
    --skip-test-db --auth-root-authentication-method=socket --tmpdir="$PL_VAR/tmp" \
    >>"$LOG/mysqld-install.log" 2>&1 || {
    tail_log "$LOG/mysqld-install.log"
    die "mariadb-install-db failed"
  }
  mv "$DATADIR.tmp" "$DATADIR"
}

db_start() {
  local pid deadline
  db_init
  if pid=$(proc_pid "$RUN/mysqld.pid" "$MARIADBD"); then
    say "MariaDB is running (pid $pid)"
    return 0
  fi
  rm -f "$DB_SOCKET" "$RUN/mysqld.pid"
  mkdir -p "$PL_VAR/tmp"
  [[ -z ${MARIADB_PORT_HINT:-} ]] ||
    warn "PL_DB_PORT=$MARIADB_PORT_HINT is the services' client port; MariaDB listens on PL_MARIADB_PORT ($PL_MARIADB_PORT)"
  proc_start "$RUN/mysqld.pid" "$MARIADBD" "$LOG/mysqld.log" --no-defaults --datadir="$DATADIR" \
    --socket="$DB_SOCKET" --pid-file="$RUN/mysqld.pid" \
    --bind-address=127.0.0.1 --port="$PL_MARIADB_PORT" --skip-name-resolve \
    --user="$(id -un)" --log-error="$LOG/mysqld.log" --tmpdir="$PL_VAR/tmp" ||
    die "could not start $MARIADBD"
  deadline=$((SECONDS + PL_START_TIMEOUT))
  until [[ -S $DB_SOCKET ]] && db_ping; do
    if ((SECONDS >= deadline)); then
      tail_log "$LOG/mysqld.log"
      die "MariaDB did not answer on $DB_SOCKET within ${PL_START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  pid=$(proc_pid "$RUN/mysqld.pid" "$MARIADBD") || die "MariaDB answers but wrote no pid file"
  say "MariaDB started (pid $pid, port $PL_MARIADB_PORT)"
}

db_stop() {
  local rc=0
  proc_stop MariaDB "$RUN/mysqld.pid" "$MARIADBD" || rc=$?
  ((rc != 1)) || say "MariaDB is not running"
}

# migrate_service SVC: its schema, user and pending migrations (pl-migrate
# as MariaDB's root over the socket, the service's password from $SECRETS).
migrate_service() {
  local envs
  ensure_secret "$1"
  mapfile -t envs < <(svc_env "$1")
  env "${envs[@]}" "$PL_BUILD_DIR/tools/pl-migrate" --service "$1" --dir "$PL_MIGRATIONS_DIR/$1"
}

# migrate: every service's.
migrate() {
  local svc
  for svc in "${SERVICES[@]}"; do
    migrate_service "$svc" || die "migrating $svc failed (see above)"
  done
}
