# tests/run.sh: `./pilotlight test`: the sanitizer unit tests and pl-migrate's
# (no stack), then the whole suite against the slot's throw-away stack: the
# integration and browser suites, the several-hosts test (its own hosts), the
# service list, shell script and compose checks, the containers and
# Kubernetes suites (podman); the
# stack stopped after (unless --keep), one summary, exit status 1 if any step
# failed.
# Sourced by ./pilotlight (test_run), after its option parsing.
# shellcheck shell=bash

TEST_RESULTS=()
TEST_FAILED=0
TEST_FAILED_LOGS=() # "step name:its log" of each failed step
TEST_KEEP=0       # --keep
TEST_SANITIZE=0   # --sanitize
TEST_STACK_ONLY=0 # --stack-only
STEP_RC=0
# the test stack's PL_CORS_ORIGINS (test_cors.py reads it from the environment)
readonly TEST_CORS_ORIGINS="https://app.pilotlight.test http://127.0.0.1:5173"

# step NAME FUNCTION: run one test step in a subshell with errexit and record
# ok / FAILED in TEST_RESULTS, its status in STEP_RC; its output is shown and
# kept in $PL_VAR/test-steps/ (a failed step's last lines are shown again
# before the summary). Never call it as `step ... || x`: bash would then
# ignore errexit inside the step.
step() {
  local name=$1 rc log
  shift
  say "== $name"
  log=$PL_VAR/test-steps/$(tr -c 'a-zA-Z0-9\n' '-' <<<"$name").log
  mkdir -p "${log%/*}"
  set +e
  (
    set -e
    "$@"
  ) 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  case $rc in
  0) TEST_RESULTS+=("ok       $name") ;;
  *)
    TEST_RESULTS+=("FAILED   $name (exit $rc)")
    TEST_FAILED_LOGS+=("$name:$log")
    TEST_FAILED=1
    ;;
  esac
  STEP_RC=$rc
}

# step_failures: each failed step's last lines again (whoever reads only the
# end of a long run's output sees why), and where its whole output is.
step_failures() {
  local entry
  for entry in "${TEST_FAILED_LOGS[@]}"; do
    say "== why '${entry%%:*}' failed (its last lines; all of it: ${entry#*:})"
    { grep -v '^[[:space:]]*$' "${entry#*:}" || true; } | tail -n 15 | sed 's/^/  | /'
  done
}

# unit_tests: the C unit tests under ASan and UBSan (meson's suite unit:
# libshared, the dispatcher in-process, the services' pure rules, the layer
# check, docs/configuration.md against the binaries), before any server runs.
unit_tests() {
  install_deps
  build "$PL_ASAN_BUILD_DIR" -Dsanitize=true
  meson test -C "$PL_ASAN_BUILD_DIR" --suite unit --print-errorlogs
}

# migrate_tests: pl-migrate (sanitizer build) against a MariaDB of its own
# (tools/test_migrate.sh starts and stops it).
migrate_tests() {
  bash "$PL_ROOT/tools/test_migrate.sh" "$PL_ASAN_BUILD_DIR/tools/pl-migrate"
}

# openapi_check: the OpenAPI document the stack serves is valid OpenAPI 3.1
# (@readme/openapi-parser, tests/openapi/).
openapi_check() {
  bash "$PL_ROOT/tests/openapi/run.sh"
}

integration_tests() {
  cd "$PL_ROOT"
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
}

browser_tests() {
  bash "$PL_ROOT/tests/browser/run.sh"
}

# multihost_tests: Pilotlight on several hosts on this machine (network
# namespaces; tests/multihost), with the stack's build, its cluster started
# from this test stack's data (a backup, as an operator moves one host's
# install); skipped (ok) only where the kernel has no network namespaces.
multihost_tests() {
  export PL_MULTIHOST_FROM_VAR=$PL_VAR PL_MULTIHOST_FROM_URL=$HTTP_URL # (a step is a subshell)
  PL_BUILD_DIR=$PL_BUILD_DIR PL_VAR=$PL_VAR bash "$PL_ROOT/tests/multihost/run.sh"
}

# service_list_check: every service of services/list has its code, its
# migrations and its compose service (adding a service is those and a line).
service_list_check() {
  local svc compose
  cd "$PL_ROOT"
  compose=" $(docker-compose -f docker-compose.yml config --services | tr '\n' ' ')"
  for svc in "${SERVICES[@]}"; do
    [[ -d services/$svc ]] || die "services/list names $svc, but services/$svc/ is not there"
    [[ -d migrations/$svc ]] || die "services/list names $svc, but migrations/$svc/ is not there"
    [[ $compose == *" $svc "* ]] || die "services/list names $svc, but docker-compose.yml has no service $svc"
  done
  bash deploy/kubernetes/generate.sh --check
  say "every service of services/list has its folder, its migrations, its compose service and its Kubernetes objects"
}

# shell_check: every shell script of the checkout parses (bash -n or sh -n,
# by its first line) and is clean under shellcheck (-x: a script with the
# parts it sources; each sourced part on its own too).
shell_check() {
  local f files=()
  cd "$PL_ROOT"
  # (deploy/'s *.env are kustomize's env files, not shell)
  mapfile -t files < <({
    find scripts tests fuzz nginx docker -name node_modules -prune -o \( -name '*.sh' -o -name '*.env' \) -type f -print
    find deploy -name '*.sh' -type f -print
  } | sort)
  files=(pilotlight .ci/run "${files[@]}")
  for f in "${files[@]}"; do
    if [[ $(head -n 1 "$f") == '#!/bin/sh' ]]; then sh -n "$f"; else bash -n "$f"; fi
  done
  shellcheck -x "${files[@]}"
  say "${#files[@]} shell scripts parse and pass shellcheck"
}

compose_check() {
  local src tmp
  cd "$PL_ROOT"
  docker-compose -f docker-compose.yml config -q
  # the several-fronts override (a second nginx and Redis) merges
  docker-compose -f docker-compose.yml -f docker-compose.multi.yml config -q
  # what the images copy exists
  while IFS= read -r src; do
    [[ -e $src ]] || die "Dockerfile copies $src, which is not there"
  done < <(awk 'toupper($1) == "COPY" && $2 !~ /^--/ { for (i = 2; i < NF; i++) print $i }' Dockerfile)
  # the compose nginx config: the same renderer, run by its entrypoint, passes nginx -t
  tmp=$(mktemp -d)
  PL_NGINX_SRC=$PL_ROOT/nginx PL_COMPOSE_STATE=$tmp/run PL_COMPOSE_LOG=$tmp/log PL_TLS_DIR=$tmp/tls \
    PL_WEB_ROOT=$tmp/web PL_NGINX_USER='nobody nogroup' sh nginx/compose/entrypoint.sh --check >/dev/null 2>&1 || {
    rm -rf "$tmp"
    die "nginx/compose/entrypoint.sh --check failed: the compose nginx config does not pass nginx -t"
  }
  rm -rf "$tmp"
  say "docker-compose.yml is valid; the compose nginx config passes nginx -t"
}

# containers_tests: the compose stack run for real on podman, its own images,
# ports and teardown (tests/containers/run.sh).
containers_tests() {
  bash "$PL_ROOT/tests/containers/run.sh"
}

# kubernetes_tests: the Kubernetes manifests schema-checked and run with
# podman kube play, their own images, names and teardown (tests/kubernetes/run.sh).
kubernetes_tests() {
  bash "$PL_ROOT/tests/kubernetes/run.sh"
}

# sanitizer_reports: the stack's processes built with ASan/UBSan wrote no
# report (test --sanitize points their log_path at $PL_VAR/log/sanitizers).
sanitizer_reports() {
  local dir=$PL_VAR/log/sanitizers files
  files=$(find "$dir" -type f -size +0 2>/dev/null | sort)
  if [[ -n $files ]]; then
    say "sanitizer reports:"
    printf '%s\n' "$files" | while IFS= read -r f; do printf -- '--- %s\n' "$f"; head -40 "$f"; done
    return 1
  fi
  say "no sanitizer report from any worker or master"
}

test_finish() {
  local rc=$? line
  trap - EXIT INT TERM
  if ((TEST_KEEP)); then
    say "the test stack stays up: $HTTP_URL (stop it: PL_VAR=$PL_VAR ./pilotlight down)"
  else
    say "== stopping the test stack"
    stack_down || TEST_FAILED=1
  fi
  # after the stop: the last workers check for leaks as they exit
  if ((TEST_SANITIZE)); then
    step "sanitizer reports" sanitizer_reports
  fi
  step_failures
  say "== summary"
  if ((rc == 130)); then TEST_RESULTS+=("FAILED   interrupted"); fi
  for line in "${TEST_RESULTS[@]}"; do printf '  %s\n' "$line"; done
  if ((rc != 0 || TEST_FAILED)); then
    say "FAILED"
    exit 1
  fi
  say "all passed"
}

# test_run: the test stack's settings (fast pools, cheap hashes, short
# lockouts and tickets, test routes, high rate limits), then every step.
test_run() {
  export PL_IDLE_TIMEOUT_MS=$TEST_IDLE_TIMEOUT_MS PL_MAX_CHILDREN=$TEST_MAX_CHILDREN
  export PL_TEST_ROUTES=$TEST_ROUTES PL_SWAP_TIMEOUT_MS=$TEST_SWAP_TIMEOUT_MS
  export PL_DEPLOY_PROBATION_S=$TEST_DEPLOY_PROBATION_S
  export PL_PWHASH_OPSLIMIT=$TEST_PWHASH_OPSLIMIT PL_PWHASH_MEMLIMIT_KIB=$TEST_PWHASH_MEMLIMIT_KIB
  export PL_LOCKOUT_BASE_S=$TEST_LOCKOUT_BASE_S PL_LOCKOUT_MAX_S=$TEST_LOCKOUT_MAX_S
  export PL_LIVE_TICKET_TTL_S=$TEST_LIVE_TICKET_TTL_S PL_ROOM_ACCESS_CACHE_S=$TEST_ROOM_ACCESS_CACHE_S
  export PL_LIMIT_LOGIN_RATE=$TEST_LIMIT_RATE PL_LIMIT_LOGIN_BURST=$TEST_LIMIT_BURST
  export PL_LIMIT_SIGNUP_RATE=$TEST_LIMIT_RATE PL_LIMIT_SIGNUP_BURST=$TEST_LIMIT_BURST
  export PL_LIMIT_REFRESH_RATE=$TEST_LIMIT_RATE PL_LIMIT_REFRESH_BURST=$TEST_LIMIT_BURST
  export PL_LIMIT_CHAT_POST_RATE=$TEST_LIMIT_RATE PL_LIMIT_CHAT_POST_BURST=$TEST_LIMIT_CHAT_POST_BURST
  # CORS: two allowed origins, for tests/integration/test_cors.py
  export PL_CORS_ORIGINS="$TEST_CORS_ORIGINS"
  stack_isolated
  # the suites run `./pilotlight reload`, `up` and `down` on this stack, under our lock
  export PL_STACK_LOCKED=$PL_VAR
  if ((TEST_SANITIZE)); then
    # the pools run the ASan+UBSan build; every report goes to a file, and
    # one is a failure (a leak in a worker is reported as it exits)
    export PL_BUILD_DIR=$PL_ASAN_BUILD_DIR
    # shellcheck disable=SC2034 # stack_up's meson options
    BUILD_OPTS=(-Dsanitize=true)
    rm -rf "$PL_VAR/log/sanitizers"
    mkdir -p "$PL_VAR/log/sanitizers"
    export ASAN_OPTIONS="log_path=$PL_VAR/log/sanitizers/asan:detect_leaks=1:exitcode=0"
    export UBSAN_OPTIONS="log_path=$PL_VAR/log/sanitizers/ubsan:print_stacktrace=1"
    export LSAN_OPTIONS="exitcode=0"
  fi
  stack_write_env # with this suite's settings too
  if ((TEST_STACK_ONLY)); then
    # the stack alone, left up, for one suite run by hand against it
    stack_up
    say "the test stack is up: $HTTP_URL; its settings: $PL_VAR/test.env (stop it: PL_VAR=$PL_VAR ./pilotlight down)"
    return 0
  fi
  trap test_finish EXIT
  trap 'exit 130' INT TERM
  step "unit tests (sanitizers)" unit_tests
  step "pl-migrate against MariaDB" migrate_tests
  step "test stack up" stack_up
  ((STEP_RC == 0)) || exit 1
  step "OpenAPI document" openapi_check
  step "integration tests" integration_tests
  step "browser tests" browser_tests
  step "several hosts" multihost_tests
  step "service list" service_list_check
  step "shell scripts" shell_check
  step "docker-compose config" compose_check
  step "containers (compose on podman)" containers_tests
  step "kubernetes (podman kube play)" kubernetes_tests
}
