# scripts/stack.sh: the stack as a whole: up in order (packages, build, web
# client, MariaDB, migrations, keys, pools, first admin, nginx, health), down
# in reverse, and the isolated stacks of test, soak and bench (their own
# state directory and ports per PL_TEST_SLOT).
# shellcheck shell=bash

# wait_healthy: every service answers 200 on /api/<svc>/health through nginx.
# No answer, 502, 503 and 504 may pass as things come up; any other status
# will not, so it fails at once.
wait_healthy() {
  local svc url code body=$RUN/health.body deadline=$((SECONDS + PL_START_TIMEOUT))
  for svc in "${SERVICES[@]}"; do
    url=$HTTP_URL/api/$svc/health
    until code=$(curl -s -o "$body" -w '%{http_code}' --max-time 5 "$url") && [[ $code == 200 ]]; do
      if ((SECONDS >= deadline)) || [[ ! $code =~ ^(000|502|503|504)$ ]]; then
        warn "$url answered ${code:-nothing}: $(head -c 300 "$body" 2>/dev/null)"
        tail_log "$LOG/$svc.log"
        tail_log "$LOG/nginx-error.log"
        die "$svc is not healthy (status ${code:-none}; waited at most ${PL_START_TIMEOUT}s)"
      fi
      sleep 0.2
    done
    say "$svc is healthy"
  done
  rm -f "$body"
}

# stack_up: everything up; what runs already is left alone (a binary rebuilt
# since its last release is swapped into its pools with no failed request, a
# pool that lost its supervisor gets a new one, a changed nginx config is
# reloaded).
stack_up() {
  local svc id
  install_deps
  build "$PL_BUILD_DIR" "${BUILD_OPTS[@]}"
  build_web
  make_dirs
  db_start
  mailsink_start
  migrate
  ensure_jwt_keys
  for svc in "${SERVICES[@]}"; do
    # a binary rebuilt since its last release is a new release, swapped in
    # as deploy does; else the live release stays (a rollback, say)
    id=$(release_of_build "$svc")
    if [[ -n $id && $id != "$(release_live "$svc")" ]]; then
      say "$svc: its build changed: release $id"
      service_swap "$svc" "$id" up
    fi
    pools_start "$svc"
  done
  if [[ -n ${PL_ADMIN_EMAIL:-} ]]; then
    admin_create "$PL_ADMIN_EMAIL" >/dev/null || die "could not make $PL_ADMIN_EMAIL an admin"
  fi
  nginx_start
  for svc in "${SERVICES[@]}"; do pools_trim "$svc"; done
  logs_setup
  printf 'HTTP_URL=%s\nHTTPS_URL=%s\nINTERNAL_URL=%s\n' "$HTTP_URL" "$HTTPS_URL" "$INTERNAL_URL" >"$RUN/stack.env"
  wait_healthy
}

# stack_down: nginx first (requests in flight finish), the pools in reverse
# start order, then MariaDB.
stack_down() {
  local i
  nginx_stop
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do pools_stop "${SERVICES[i]}"; done
  mailsink_stop
  db_stop
  logs_cron_remove
  # with every pool stopped, the revocation signal starts afresh next time
  # (a writer that died midway leaves it counting one in flight)
  rm -f "$RUN/stack.env" "$(revocation_signal_file)"
}

# stack_isolated: the settings of the slot's throw-away stack (PL_TEST_SLOT:
# var/test[-N], ports shifted by N*100), shared by `test` and `soak`; takes
# its lock, stops what a previous run left and wipes its state, and writes
# $PL_VAR/test.env. Each caller exports its own pool and service settings.
stack_isolated() {
  local var
  PL_VAR=$TEST_VAR PL_HTTP_PORT=$TEST_HTTP_PORT PL_INTERNAL_PORT=$TEST_INTERNAL_PORT
  PL_HTTP_BIND=127.0.0.1 PL_INTERNAL_BIND=127.0.0.1 PL_MARIADB_PORT=$TEST_MARIADB_PORT
  PL_MAIL_SINK_PORT=$TEST_MAIL_SINK_PORT
  PL_HTTPS_PORT=$TEST_HTTPS_PORT PL_TLS_CERT_FILE='' PL_TLS_KEY_FILE=''
  export PL_VAR PL_HTTP_PORT PL_INTERNAL_PORT PL_HTTP_BIND PL_INTERNAL_BIND PL_MARIADB_PORT PL_MAIL_SINK_PORT
  export PL_HTTPS_PORT PL_TLS_CERT_FILE PL_TLS_KEY_FILE
  export PL_LOG_ROTATE_CRON=0 # a throw-away stack installs nothing in /etc
  export PL_TEST_SLOT         # suites that start stacks of their own shift their ports by it too
  # the first admin, made on the way up as an operator would (tests log in with it)
  export PL_ADMIN_EMAIL=admin@pilotlight.test
  PL_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')
  export PL_ADMIN_PASSWORD
  ((PL_TEST_SLOT == 0)) || PL_ASAN_BUILD_DIR=$PL_ASAN_BUILD_DIR-$PL_TEST_SLOT
  layout
  lock_stack
  unset_scale  # a test scales pools itself where it means to
  # A stack left by `test --keep` goes first, then all of its state.
  stack_down >/dev/null
  find "$PL_VAR" -mindepth 1 -maxdepth 1 ! -name pilotlight.lock -exec rm -rf {} +
  export PL_BASE_URL=$HTTP_URL PL_HTTPS_URL=$HTTPS_URL PL_INTERNAL_URL=$INTERNAL_URL PL_DB_SOCKET=$DB_SOCKET
  # what the suites see, for rerunning one against a stack kept with --keep:
  #   set -a; . var/test/test.env; set +a; /usr/bin/python3 -m pytest tests/integration/...
  mkdir -p "$PL_VAR"
  stack_write_env
}

# stack_write_env: $PL_VAR/test.env: every PL_* exported now (the stack's
# ports, state directory and URLs, the caller's pool and service settings),
# so that a suite rerun by hand, and a command it runs, sees the same stack.
stack_write_env() {
  local var
  (
    umask 077
    for var in $(compgen -e PL_); do
      [[ $var == PL_STACK_LOCKED ]] || printf '%s=%q\n' "$var" "${!var}"
    done >"$PL_VAR/test.env"
  )
}

# stack_bench: the settings of the slot's bench stack (var/bench[-N], ports
# of its own), exported for tests/bench/run.sh, which brings it up through
# this command's up/down, measures and stops it again.
stack_bench() {
  PL_VAR=$BENCH_VAR PL_HTTP_PORT=$BENCH_HTTP_PORT PL_INTERNAL_PORT=$BENCH_INTERNAL_PORT
  PL_MARIADB_PORT=$BENCH_MARIADB_PORT PL_HTTPS_PORT=$BENCH_HTTPS_PORT PL_TLS_CERT_FILE='' PL_TLS_KEY_FILE=''
  PL_MAIL_SINK_PORT=$BENCH_MAIL_SINK_PORT
  PL_HTTP_BIND=127.0.0.1 PL_INTERNAL_BIND=127.0.0.1
  export PL_VAR PL_HTTP_PORT PL_INTERNAL_PORT PL_MARIADB_PORT PL_HTTPS_PORT PL_TLS_CERT_FILE PL_TLS_KEY_FILE
  export PL_MAIL_SINK_PORT
  export PL_HTTP_BIND PL_INTERNAL_BIND PL_BUILD_DIR PL_TEST_SLOT
  export PL_LOG_ROTATE_CRON=0 # a throw-away stack installs nothing in /etc
}
