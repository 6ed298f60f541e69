#!/usr/bin/env bash
# scripts/compose-roll.sh SVC: the compose equivalent of `./pilotlight deploy
# SVC`: every running container of compose service SVC replaced by one of
# the service's image as it is now (build or pull it first), one container
# at a time, with no failed request. docker-compose has no rolling update,
# so for each old container:
#   1. one container more (`up -d --no-deps --no-recreate --scale SVC=N+1`);
#   2. it must turn healthy (its healthcheck) within PL_ROLL_TIMEOUT;
#   3. nginx must send it traffic: the service's name lists its address in
#      the nginx container, then nginx's resolver cache (PL_RESOLVER_VALID)
#      runs out;
#   4. the old container is drained: new connections to its pool are
#      refused (an iptables rule in its network namespace, entered from the
#      host: root), so nginx sends them on to another container whatever
#      the method, while those already accepted finish (PL_ROLL_DRAIN_S);
#   5. it is stopped (SIGTERM: what is in flight finishes, stop_grace_period)
#      and removed; nginx passes over its address until its cache forgets it
#      (a 1 s connect timeout, then the next container).
# Why 4: a pool's listening socket also lives in its supervisor, which
# closes it only as it exits, after the master; a connection the kernel
# queues in between is reset, and nginx cannot retry a POST or PATCH it has
# sent. Without root (or nsenter, iptables) the roll warns and goes on.
# A new container that is not healthy in time is removed, the roll stops
# (containers already replaced stay replaced, the others keep serving) and
# the exit status is 1.
#
# Environment: COMPOSE (default docker-compose; `docker compose` works too),
# DOCKER (default docker, else podman), with COMPOSE_FILE,
# COMPOSE_PROJECT_NAME, DOCKER_HOST as they read them; PL_ROLL_TIMEOUT
# (seconds, default 120); PL_RESOLVER_VALID (as given to nginx, default 5s);
# PL_ROLL_NGINX (the nginx service, default nginx); PL_ROLL_PORT (the pools'
# port, default 9000); PL_ROLL_DRAIN_S (default 2; 0: no drain).
set -euo pipefail

svc=${1:-}
[[ $svc =~ ^[a-z][a-z0-9_-]*$ && $# == 1 ]] || { echo "usage: scripts/compose-roll.sh SVC" >&2; exit 2; }
read -r -a compose <<<"${COMPOSE:-docker-compose}"
if [[ -z ${DOCKER:-} ]]; then
  if command -v docker >/dev/null; then DOCKER=docker; else DOCKER=podman; fi
fi
timeout=${PL_ROLL_TIMEOUT:-120}
nginx=${PL_ROLL_NGINX:-nginx}
valid=${PL_RESOLVER_VALID:-5s}
port=${PL_ROLL_PORT:-9000}
drain_s=${PL_ROLL_DRAIN_S:-2}
case $valid in
*m) valid=$((${valid%m} * 60)) ;;
*s) valid=${valid%s} ;;
esac
[[ $valid =~ ^[0-9]+$ ]] || { echo "compose-roll: PL_RESOLVER_VALID must be like 5s or 1m" >&2; exit 2; }
[[ $port =~ ^[0-9]+$ && $drain_s =~ ^[0-9]+$ ]] || { echo "compose-roll: PL_ROLL_PORT and PL_ROLL_DRAIN_S must be numbers" >&2; exit 2; }

say() { printf 'compose-roll: [%3ss] %s\n' "$SECONDS" "$*"; }
die() { printf 'compose-roll: error: %s\n' "$*" >&2; exit 1; }

# running: the ids of SVC's running containers, one a line (by compose's
# labels: one call, where `compose ps` and an inspect each are many).
running() {
  $DOCKER ps -q --no-trunc --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$svc"
}

health() { $DOCKER inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1"; }
address() { $DOCKER inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1"; }
short() { printf '%.12s' "$1"; }

# add_one N: one container more than N; prints its id.
add_one() {
  local n=$1 before after id
  before=$(running)
  "${compose[@]}" up -d --no-deps --no-recreate --scale "$svc=$((n + 1))" "$svc" >&2
  after=$(running)
  id=$(comm -13 <(sort <<<"$before") <(sort <<<"$after"))
  id=${id%%$'\n'*}
  [[ -n $id ]] || die "docker-compose added no container to $svc"
  printf '%s\n' "$id"
}

# wait_serving ID: healthy, and in nginx's answers; 1 when not in time.
wait_serving() {
  local id=$1 deadline=$((SECONDS + timeout)) state addr
  while :; do
    state=$(health "$id")
    case $state in
    healthy) break ;;
    none) die "$svc has no healthcheck: a roll cannot tell when a container is ready" ;;
    unhealthy) say "$(short "$id") is unhealthy"; return 1 ;;
    esac
    ((SECONDS < deadline)) || { say "$(short "$id") is not healthy after ${timeout}s"; return 1; }
    sleep 1
  done
  addr=$(address "$id")
  addr=${addr%% *}
  until "${compose[@]}" exec -T "$nginx" getent ahostsv4 "$svc" | grep -q "^${addr}[[:space:]]"; do
    ((SECONDS < deadline)) || { say "nginx does not resolve $svc to $addr after ${timeout}s"; return 1; }
    sleep 1
  done
  sleep $((valid + 1))
}

# drain ID: new connections to the container's pool refused (TCP reset),
# those in progress left to finish.
drain() {
  local pid
  ((drain_s > 0)) || return 0
  pid=$($DOCKER inspect -f '{{.State.Pid}}' "$1")
  if ! nsenter -t "$pid" -n iptables -I INPUT -p tcp --dport "$port" --syn -j REJECT --reject-with tcp-reset; then
    say "warning: cannot refuse new connections to $(short "$1") (root, nsenter and iptables are needed): stopping it as it is"
    return 0
  fi
  sleep "$drain_s"
}

"${compose[@]}" rm -f "$svc" >/dev/null 2>&1 || true   # stopped containers of SVC would be restarted by --scale
first=$("${compose[@]}" ps -q "$svc")
first=${first%%$'\n'*}
[[ -n $first ]] || die "$svc has no container"
project=$($DOCKER inspect -f '{{index .Config.Labels "com.docker.compose.project"}}' "$first")
mapfile -t old < <(running)
((${#old[@]} > 0)) || die "$svc has no running container"
say "$svc: replacing ${#old[@]} containers, one at a time"
for o in "${old[@]}"; do
  new=$(add_one "${#old[@]}")
  say "$(short "$new") added; waiting until it is healthy and nginx sends it requests"
  if ! wait_serving "$new"; then
    $DOCKER stop "$new" >/dev/null || true
    $DOCKER rm "$new" >/dev/null || true
    die "$svc: the new container did not become ready; $(short "$o") and the rest of the old ones still serve"
  fi
  say "$(short "$new") serves; draining and stopping $(short "$o")"
  drain "$o"
  $DOCKER stop "$o" >/dev/null
  $DOCKER rm "$o" >/dev/null
done
say "$svc: ${#old[@]} containers replaced"
