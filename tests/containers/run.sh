#!/usr/bin/env bash
# tests/containers/run.sh: the container stack run for real, as an operator
# runs it on podman: the images built here (their base images made locally:
# no registry), docker-compose v1 against `podman system service`, the stack
# brought up with --scale projects=3 on ports of its own, then
# test_compose.py through the published ports (health, sign-up, login, a
# project, live chat over WebSocket, the spread over three projects
# containers, a container killed under load, a new image rolled out under
# load, down and up with the data kept). `./pilotlight test` runs it as a
# step; alone: bash tests/containers/run.sh.
#
# Everything it starts it stops, also on failure or Ctrl-C: the stack
# (`compose down -v`), the watch (healthchecks, bridge addresses: see
# scripts/containers.sh) and the podman service (by their pids). What it keeps, on purpose: the images (podman's layer cache,
# so that a second run builds in seconds) and var/containers/ (logs).
# PL_TEST_SLOT=N runs a second one beside the first (ports + N*100).
# PL_CT_KEEP=1 leaves it all up afterwards; `run.sh --down` stops it then.
# Other arguments go to pytest (e.g. -k 'signup or roll').
set -euo pipefail

PL_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
export PL_ROOT
# shellcheck source=scripts/lib.sh
. "$PL_ROOT/scripts/lib.sh"
# shellcheck source=scripts/proc.sh
. "$PL_ROOT/scripts/proc.sh"
# shellcheck source=scripts/packages.sh
. "$PL_ROOT/scripts/packages.sh"
# shellcheck source=scripts/containers.sh
. "$PL_ROOT/scripts/containers.sh"

readonly CT_HTTP_PORT=$((27080 + PL_TEST_SLOT * 100))
readonly CT_HTTPS_PORT=$((27443 + PL_TEST_SLOT * 100))
# the second front of docker-compose.multi.yml
readonly CT_FRONT2_HTTP_PORT=$((27090 + PL_TEST_SLOT * 100))
readonly CT_FRONT2_HTTPS_PORT=$((27453 + PL_TEST_SLOT * 100))
if ((PL_TEST_SLOT == 0)); then
  readonly CT_DIR=$PL_ROOT/var/containers CT_PROJECT=pilotlight-test
else
  readonly CT_DIR=$PL_ROOT/var/containers-$PL_TEST_SLOT CT_PROJECT=pilotlight-test-$PL_TEST_SLOT
fi
# images of this slot's own (the compose file's PL_IMAGE_TAG): a run never
# swaps the images of another slot's run or of an operator's stack
export PL_IMAGE_TAG=test-$PL_TEST_SLOT
readonly CT_ENGINE_PID=$CT_DIR/podman.pid CT_WATCH_PID=$CT_DIR/watch.pid
readonly PODMAN=/usr/bin/podman BASH_EXE=/usr/bin/bash

export CONTAINERS_CONF=$CT_DIR/containers.conf DOCKER_HOST=unix://$CT_DIR/podman.sock
export COMPOSE_FILE=$PL_ROOT/docker-compose.yml COMPOSE_PROJECT_NAME=$CT_PROJECT
export PL_HTTP_PORT=$CT_HTTP_PORT PL_HTTPS_PORT=$CT_HTTPS_PORT PL_HTTP_BIND=127.0.0.1
export PL_FRONT2_HTTP_PORT=$CT_FRONT2_HTTP_PORT PL_FRONT2_HTTPS_PORT=$CT_FRONT2_HTTPS_PORT
export COMPOSE_HTTP_TIMEOUT=300 # podman answers some calls slowly under load
# the links in mail point at this stack (test_compose.py checks it)
export PL_PUBLIC_URL=https://127.0.0.1:$CT_HTTPS_PORT
unset PL_TLS_CERT_FILE PL_TLS_KEY_FILE PL_TLS_REDIRECT PL_RESOLVER
unset PL_SMTP_URL PL_SMTP_USER PL_SMTP_PASSWORD_FILE PL_MAIL_FROM

FIGURES=()
CT_CHILD= # the pid of what bounded() runs now

# bounded SECONDS CMD...: CMD under timeout(1), waited for in the background
# so that Ctrl-C or a TERM stops it at once. In the foreground it would not:
# timeout puts CMD in a process group of its own, which the terminal's
# Ctrl-C does not reach, and bash runs a trap only once the foreground
# command has ended (a build or the tests went on for minutes).
bounded() {
  local rc=0
  timeout "$@" &
  CT_CHILD=$!
  wait "$CT_CHILD" || rc=$?
  CT_CHILD=
  return "$rc"
}

# ct_interrupted: Ctrl-C or TERM: what bounded() runs (timeout's process
# group: the command and its children) stopped, then ct_finish.
ct_interrupted() {
  if [[ -n $CT_CHILD ]]; then
    kill -TERM -- "-$CT_CHILD" 2>/dev/null || kill -TERM "$CT_CHILD" 2>/dev/null || true
    wait "$CT_CHILD" 2>/dev/null || true
    CT_CHILD=
  fi
  exit 130
}

# elapsed SINCE: seconds since SINCE ($SECONDS-style start), for the figures.
elapsed() { printf '%s' $((SECONDS - $1)); }

# ct_start NAME PIDFILE EXE ARG...: EXE in the background, its pid in PIDFILE.
ct_start() {
  local name=$1 pidfile=$2 exe=$3
  shift 3
  start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$pidfile" \
    --output "$CT_DIR/$name.log" --chdir "$PL_ROOT" --exec "$exe" -- "$@"
}

engine_up() {
  local i
  ct_start podman "$CT_ENGINE_PID" "$PODMAN" system service --time=0 "$DOCKER_HOST"
  for ((i = 0; i < 100; i++)); do
    curl -fsS --unix-socket "$CT_DIR/podman.sock" http://podman/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS --unix-socket "$CT_DIR/podman.sock" http://podman/_ping >/dev/null ||
    { tail_log "$CT_DIR/podman.log"; die "podman system service did not answer on $DOCKER_HOST"; }
  ct_start watch "$CT_WATCH_PID" "$BASH_EXE" "$PL_ROOT/scripts/containers.sh" watch "$CT_PROJECT"
  sleep 1
  proc_pid "$CT_WATCH_PID" "$BASH_EXE" >/dev/null || { tail_log "$CT_DIR/watch.log"; die "scripts/containers.sh watch stopped"; }
}

# compose_down: the stack and its volumes gone (a leftover of an earlier run
# too; the multi-front override's services with them).
compose_down() {
  COMPOSE_FILE=$PL_ROOT/docker-compose.yml:$PL_ROOT/docker-compose.multi.yml timeout 180 docker-compose down -v --remove-orphans >>"$CT_DIR/compose.log" 2>&1 && return 0
  warn "docker-compose down failed (see $CT_DIR/compose.log): removing the project's containers with podman"
  $PODMAN ps -aq --filter "label=com.docker.compose.project=$CT_PROJECT" | xargs -r $PODMAN rm -f -t 5 >/dev/null || true
  $PODMAN volume ls -q --filter "label=com.docker.compose.project=$CT_PROJECT" | xargs -r $PODMAN volume rm -f >/dev/null || true
  $PODMAN network rm -f "${CT_PROJECT}_default" >/dev/null 2>&1 || true
}

# images_restore: pilotlight/service:$PL_IMAGE_TAG back to what was built (the roll
# test tagged a new one), the test's rolled images removed.
images_restore() {
  [[ -s $CT_DIR/service.image ]] || return 0
  $PODMAN tag "$(<"$CT_DIR/service.image")" "$CT_IMAGE_PREFIX/service:$PL_IMAGE_TAG" || true
  $PODMAN images -q --filter label=pilotlight.test.roll=1 | sort -u | xargs -r $PODMAN rmi -f >/dev/null 2>&1 || true
}

ct_finish() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0)) && [[ -S $CT_DIR/podman.sock ]]; then
    say "containers at the failure:"
    ct_dump_logs "label=com.docker.compose.project=$CT_PROJECT" "$CT_DIR/logs"
  fi
  if [[ ${PL_CT_KEEP:-0} == 1 ]]; then
    say "kept (PL_CT_KEEP=1): the stack on https://127.0.0.1:$CT_HTTPS_PORT, podman's Docker API on $DOCKER_HOST;"
    say "stop all of it: bash tests/containers/run.sh --down"
    exit "$rc"
  fi
  ct_down
  if ((${#FIGURES[@]} > 0)); then
    say "figures of this run:"
    printf '  %s\n' "${FIGURES[@]}"
  fi
  exit "$rc"
}

# ct_down: the stack, its volumes and this run's images gone, the runner and
# the podman service stopped.
ct_down() {
  say "stopping the compose stack"
  if [[ -S $CT_DIR/podman.sock ]]; then compose_down; fi
  images_restore
  proc_stop "the watch (healthchecks, bridges)" "$CT_WATCH_PID" "$BASH_EXE" || true
  proc_stop "podman system service" "$CT_ENGINE_PID" "$PODMAN" || true
}

# wait_nginx_healthy TIMEOUT [SERVICE]: the nginx (or SERVICE) container reports healthy.
wait_nginx_healthy() {
  local deadline=$((SECONDS + $1)) id
  while ((SECONDS < deadline)); do
    id=$(docker-compose ps -q "${2:-nginx}" 2>/dev/null || true)
    [[ -n $id && $($PODMAN inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null) == healthy ]] && return 0
    sleep 1
  done
  return 1
}

main() {
  local t missing rc=0
  if [[ ${1:-} == --down ]]; then
    ct_down
    return
  fi
  install_deps "${CONTAINER_PACKAGES[@]}"
  mkdir -p "$CT_DIR"
  rm -rf "$CT_DIR"/*.log "$CT_DIR/logs" "$CT_DIR/figures.jsonl" "$CT_DIR/service.image"
  ct_conf >"$CONTAINERS_CONF"
  trap ct_finish EXIT
  trap ct_interrupted INT TERM
  engine_up
  compose_down # what an interrupted run left

  t=$SECONDS
  missing=$(ct_missing_base_images | tr '\n' ' ')
  bounded 900 "$PL_ROOT/scripts/containers.sh" base-images
  FIGURES+=("base images: $(elapsed "$t") s (${missing:+made here: }${missing:-all cached})")
  t=$SECONDS
  bounded 1200 "$PL_ROOT/scripts/containers.sh" build "$CT_DIR/build.log"
  FIGURES+=("images built: $(elapsed "$t") s (podman build, service and nginx targets)")
  $PODMAN image inspect -f '{{.Id}}' "$CT_IMAGE_PREFIX/service:$PL_IMAGE_TAG" >"$CT_DIR/service.image"

  t=$SECONDS
  bounded 300 docker-compose up -d --no-build --scale projects=3 >>"$CT_DIR/compose.log" 2>&1 ||
    { tail_log "$CT_DIR/compose.log"; die "docker-compose up failed"; }
  wait_nginx_healthy 120 || die "nginx is not healthy 120 s after docker-compose up"
  FIGURES+=("compose up --scale projects=3 to nginx healthy: $(elapsed "$t") s")

  $PODMAN exec "${CT_PROJECT}_nginx_1" cat /var/lib/pilotlight/tls/tls.crt >"$CT_DIR/ca.crt"
  t=$SECONDS
  PL_CT_URL=https://127.0.0.1:$CT_HTTPS_PORT PL_CT_HTTP_URL=http://127.0.0.1:$CT_HTTP_PORT \
    PL_CT_CA=$CT_DIR/ca.crt PL_CT_FIGURES=$CT_DIR/figures.jsonl PL_CT_DIR=$CT_DIR \
    bounded 900 /usr/bin/python3 -m pytest -q -p no:cacheprovider "$PL_ROOT/tests/containers/test_compose.py" "$@" || rc=$?
  FIGURES+=("tests: $(elapsed "$t") s")

  # the same stack with docker-compose.multi.yml: Redis, nginx recreated
  # with it, a second front; a message through either is live on the other
  t=$SECONDS
  export COMPOSE_FILE=$COMPOSE_FILE:$PL_ROOT/docker-compose.multi.yml
  bounded 300 docker-compose up -d --no-build --scale projects=3 >>"$CT_DIR/compose.log" 2>&1 ||
    { tail_log "$CT_DIR/compose.log"; die "docker-compose up with docker-compose.multi.yml failed"; }
  wait_nginx_healthy 120 nginx2 || die "nginx2 is not healthy 120 s after docker-compose up with docker-compose.multi.yml"
  FIGURES+=("compose up with docker-compose.multi.yml to nginx2 healthy: $(elapsed "$t") s")
  PL_CT_URL=https://127.0.0.1:$CT_HTTPS_PORT PL_CT_URL2=https://127.0.0.1:$CT_FRONT2_HTTPS_PORT \
    PL_CT_CA=$CT_DIR/ca.crt PL_CT_FIGURES=$CT_DIR/figures.jsonl \
    bounded 300 /usr/bin/python3 -m pytest -q -p no:cacheprovider "$PL_ROOT/tests/containers/test_multi_front.py" || rc=$?
  FIGURES+=("two fronts: $(elapsed "$t") s")
  if [[ -s $CT_DIR/figures.jsonl ]]; then
    mapfile -t -O "${#FIGURES[@]}" FIGURES <"$CT_DIR/figures.jsonl"
  fi
  return "$rc"
}

main "$@"
