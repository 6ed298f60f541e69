#!/usr/bin/env bash
# scripts/containers.sh: the compose stack on podman (rootful), on a host
# with no Docker engine, no image registry and no systemd (this machine, CI).
# docker-compose v1 talks to `podman system service` (the Docker API);
# podman-compose is not used: it ignores depends_on conditions. Sourced by
# tests/containers/run.sh (after scripts/lib.sh); an operator runs it:
#
#   scripts/containers.sh conf            a containers.conf for this host (stdout)
#   scripts/containers.sh base-images     make the images the Dockerfile and
#                                         docker-compose.yml start from, locally
#   scripts/containers.sh build [LOG [PREFIX]]  the pilotlight images (PL_IMAGE_TAG),
#                                         with podman build
#   scripts/containers.sh make-redis [IMAGE]  redis:7 (docker/redis/), or
#                                         under another name
#   scripts/containers.sh watch [PROJECT] keep running: the containers'
#                                         healthchecks (what systemd timers do
#                                         elsewhere), fixed bridge MAC addresses
#
# Facts of such a host this handles (docs/containers.md):
# - crun refuses a mix of cgroup v1 and v2 hierarchies: the runtime is runc;
#   without systemd the cgroup manager is cgroupfs, events go to a file.
# - podman lowers its own RLIMIT_NPROC to kernel.pid_max and has no
#   CAP_SYS_RESOURCE to raise anything, and a container cannot get more than
#   podman has: default_ulimits are what podman itself ends up with.
# - no systemd, no healthcheck timers: compose's service_healthy conditions
#   wait forever unless something runs `podman healthcheck run`; and each
#   run is an exec session whose conmon lingers exit_command_delay (300 s).
# - netavark 1.4 lets a network's bridge take a container's MAC address, so
#   the gateway (and aardvark-dns, the compose names) vanishes for ~30 s
#   for everyone when that container goes: the address is pinned.
# - npm in an image build trusts node's CAs only: the host's bundle is
#   mounted into the build and named by NODE_EXTRA_CA_CERTS (a proxy that
#   inspects TLS signs with a CA only the host knows).
# - no registry: debian:* from debootstrap, node:*-bookworm-slim from the
#   host's node, mariadb:10.11 from Debian's mariadb-server, redis:7 from
#   Debian's redis-server (docker-compose.multi.yml), each under the
#   name the files use (docker.io/library/..., where the Docker API looks).
# shellcheck shell=bash

: "${PL_DEBIAN_MIRROR:=http://deb.debian.org/debian}"
# a CA bundle for npm in the web stage (empty: none)
if [[ -z ${PL_BUILD_CA_FILE+set} ]]; then
  PL_BUILD_CA_FILE=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
  [[ -r $PL_BUILD_CA_FILE ]] || PL_BUILD_CA_FILE=
fi
readonly CT_IMAGE_PREFIX=docker.io/pilotlight   # the compose file's pilotlight/<target>:${PL_IMAGE_TAG:-latest}
# the images' tag, as the compose file reads it: a test run (or a second
# stack on one host) builds and runs its own, and never swaps another's
: "${PL_IMAGE_TAG:=latest}"
export PL_IMAGE_TAG
readonly CT_TARGETS=(service nginx)             # the Dockerfile's targets, one image each

# ct_full_name IMAGE: IMAGE as the Docker API names it (docker.io/library/debian:bookworm).
ct_full_name() {
  case $1 in
  */*/*) printf '%s\n' "$1" ;;
  */*) printf 'docker.io/%s\n' "$1" ;;
  *) printf 'docker.io/library/%s\n' "$1" ;;
  esac
}

ct_have_image() { podman image exists "$(ct_full_name "$1")"; }

# ct_conf: a containers.conf for this host (see the top of this file).
ct_conf() {
  local nofile nproc pid_max manager=cgroupfs
  nofile=$(ulimit -Hn) nproc=$(ulimit -Hu) pid_max=$(</proc/sys/kernel/pid_max)
  [[ $nofile != unlimited ]] && ((nofile < 1048576)) || nofile=1048576  # podman's own maximum
  [[ $nproc != unlimited ]] && ((nproc < pid_max)) || nproc=$pid_max
  [[ ! -d /run/systemd/system ]] || manager=systemd
  cat <<EOF
# made by scripts/containers.sh conf for $(hostname)
[containers]
# what podman itself has (a container cannot raise a limit above it)
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
# crun refuses this host's mixed cgroup v1/v2 hierarchies
runtime = "runc"
cgroup_manager = "$manager"
events_logger = "file"
# an exec session's conmon (every healthcheck run is one) waits this long
# for someone to read its exit status (default 300 s: hundreds linger)
exit_command_delay = 10

[network]
network_backend = "netavark"
EOF
}

# ct_from_images: the images the Dockerfile's stages and the compose file's
# services without a build start from, one a line.
ct_from_images() {
  awk 'toupper($1) == "FROM" { print $2 }' "$PL_ROOT/Dockerfile"
  docker-compose -f "$PL_ROOT/docker-compose.yml" -f "$PL_ROOT/docker-compose.multi.yml" config |
    /usr/bin/python3 -c 'import sys, yaml
for s in yaml.safe_load(sys.stdin)["services"].values():
    if "build" not in s: print(s["image"])'
}

# ct_debian_rootfs DIR: a minimal bookworm (debootstrap's minbase, as the
# official image is), with the official image's apt sources, no apt cache.
ct_debian_rootfs() {
  local dir=$1
  say "debootstrap --variant=minbase bookworm ($PL_DEBIAN_MIRROR)"
  debootstrap --variant=minbase bookworm "$dir" "$PL_DEBIAN_MIRROR" >"$dir.log" 2>&1 || {
    tail_log "$dir.log"
    die "debootstrap failed"
  }
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $PL_DEBIAN_MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${PL_DEBIAN_MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
}

# ct_make_debian NAME TMP: debian:bookworm and debian:bookworm-slim, both
# from one rootfs (the official slim one only leaves out documentation).
ct_make_debian() {
  local name=$1 tmp=$2 id
  [[ $name == debian:bookworm || $name == debian:bookworm-slim ]] ||
    die "$name: only debian:bookworm and debian:bookworm-slim can be made here"
  ct_debian_rootfs "$tmp/rootfs"
  id=$(tar -C "$tmp/rootfs" -c . | podman import -q --change 'CMD ["bash"]' - "$(ct_full_name debian:bookworm)")
  podman tag "$id" "$(ct_full_name debian:bookworm-slim)"
  rm -rf "$tmp/rootfs"
}

# ct_make_node NAME TMP: node:<major>-bookworm-slim from debian:bookworm-slim
# and this host's node and npm (the official image's places: /usr/local).
ct_make_node() {
  local name=$1 tmp=$2 major node npm
  [[ $name =~ ^node:([0-9]+)-bookworm-slim$ ]] || die "$name: only node:<major>-bookworm-slim can be made here"
  major=${BASH_REMATCH[1]}
  node=$(command -v node) || die "$name: no node on this host"
  npm=$(readlink -f "$(command -v npm)") || die "$name: no npm on this host"
  npm=${npm%/bin/npm-cli.js}
  [[ $("$node" --version) == "v$major."* ]] ||
    die "$name: this host's node is $("$node" --version), not $major (install node $major)"
  say "making $name from debian:bookworm-slim and this host's node $("$node" --version)"
  mkdir -p "$tmp/node"
  cp "$node" "$tmp/node/node"
  cp -a "$npm" "$tmp/node/npm"
  cat >"$tmp/node/Containerfile" <<EOF
FROM $(ct_full_name debian:bookworm-slim)
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
CMD ["node"]
EOF
  podman build --pull=false -q -t "$(ct_full_name "$name")" -f "$tmp/node/Containerfile" "$tmp/node" >/dev/null
  rm -rf "$tmp/node"
}

# ct_make_mariadb NAME: mariadb:10.11 from Debian's mariadb-server (docker/mariadb/).
ct_make_mariadb() {
  local name=$1 version
  [[ $name == mariadb:10.11 ]] || die "$name: only mariadb:10.11 (Debian bookworm's) can be made here"
  say "making $name from Debian's mariadb-server"
  podman build --pull=false -q -t "$(ct_full_name "$name")" "$PL_ROOT/docker/mariadb" >/dev/null
  version=$(podman run --rm --entrypoint mariadbd "$(ct_full_name "$name")" --version)
  [[ $version == *" 10.11."* ]] || die "$name: Debian's server is not 10.11: $version"
}

# ct_make_redis NAME [IMAGE]: redis:7 from Debian's redis-server (docker/redis/),
# tagged IMAGE (default: the name the compose file uses).
ct_make_redis() {
  local name=$1 image=${2:-$(ct_full_name "$1")} version
  [[ $name == redis:7 ]] || die "$name: only redis:7 (Debian bookworm's) can be made here"
  say "making $name from Debian's redis-server"
  podman build --pull=false -q -t "$image" "$PL_ROOT/docker/redis" >/dev/null
  version=$(podman run --rm --entrypoint redis-server "$image" --version)
  [[ $version == *" v=7."* ]] || die "$name: Debian's server is not 7: $version"
}

# ct_missing_base_images: those of ct_from_images this storage lacks.
ct_missing_base_images() {
  local name
  for name in $(ct_from_images | sort -u); do
    ct_have_image "$name" || printf '%s\n' "$name"
  done
  return 0
}

# ct_base_images: each image the files start from that this storage lacks,
# made here (PL_CONTAINERS_REMAKE=1: all of them again, e.g. for Debian's
# security updates).
ct_base_images() {
  local name tmp names=()
  local -A made=()
  mapfile -t names < <(ct_from_images | sort -u)
  tmp=$(mktemp -d /var/tmp/pilotlight-images.XXXXXX)
  for name in debian:bookworm-slim "${names[@]}"; do
    [[ -z ${made[$name]:-} ]] || continue
    if [[ ${PL_CONTAINERS_REMAKE:-0} != 1 ]] && ct_have_image "$name"; then continue; fi
    case $name in
    debian:*) ct_make_debian "$name" "$tmp" && made[debian:bookworm]=1 made[debian:bookworm-slim]=1 ;;
    node:*) ct_make_node "$name" "$tmp" ;;
    mariadb:*) ct_make_mariadb "$name" ;;
    redis:*) ct_make_redis "$name" ;;
    *) die "$name is not in this storage and cannot be made here (no registry)" ;;
    esac
  done
  rm -rf "$tmp"
}

# ct_build [LOG [PREFIX]]: pilotlight/service and pilotlight/nginx, tagged
# PL_IMAGE_TAG, from the Dockerfile (layers cached by podman: a build with
# nothing changed takes seconds); PREFIX/<target> names them otherwise
# (default docker.io/pilotlight/<target>, what the compose file runs).
ct_build() {
  local log=${1:-/dev/stderr} prefix=${2:-$CT_IMAGE_PREFIX} target image before args=(--pull=false)
  [[ $PL_IMAGE_TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "PL_IMAGE_TAG '$PL_IMAGE_TAG' is not an image tag"
  if [[ -n $PL_BUILD_CA_FILE ]]; then
    args+=(-v "$PL_BUILD_CA_FILE:/run/pilotlight-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/pilotlight-build-ca.crt)
  fi
  for target in "${CT_TARGETS[@]}"; do
    image=$prefix/$target:$PL_IMAGE_TAG
    before=$(podman image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    podman build "${args[@]}" --target "$target" -t "$image" "$PL_ROOT" >>"$log" 2>&1 || {
      [[ $log == /dev/stderr ]] || tail_log "$log"
      die "podman build --target $target failed"
    }
    # the image this one replaced, unless a container still runs it
    if [[ -n $before && $before != "$(podman image inspect -f '{{.Id}}' "$image")" ]]; then
      podman rmi "$before" >/dev/null 2>&1 || true
    fi
  done
}

# ct_dump_logs FILTER DIR: the containers podman's FILTER selects, each one's
# state on stdout and its log in DIR/<name>.log (a failed run's post-mortem).
ct_dump_logs() {
  local filter=$1 dir=$2 name
  podman ps -a --filter "$filter" --format '  {{.Names}} {{.Status}}' || true
  mkdir -p "$dir"
  for name in $(podman ps -a --filter "$filter" --format '{{.Names}}'); do
    podman logs -t "$name" >"$dir/$name.log" 2>&1 || true
  done
  say "their logs: $dir/"
}

# ct_pin_bridges PROJECT: each bridge of PROJECT's networks (all podman's
# when PROJECT is empty) whose MAC address is not fixed yet gets the one it
# has as a fixed one. Without it Linux gives a bridge the lowest MAC of its
# ports, so when that container goes the gateway's address changes under
# every other container: their gateway, and aardvark-dns on it, are
# unreachable until their ARP entries expire (~30 s of failing lookups).
# netavark 1.4 (Debian 12) leaves this to chance; later ones fix the address.
# CT_FOREIGN: bridges already found not to be PROJECT's.
declare -A CT_FOREIGN=()
ct_pin_bridges() {
  local dir br kind addr ours=
  for dir in /sys/class/net/*/bridge; do
    br=${dir%/bridge} && br=${br##*/}
    [[ -z ${CT_FOREIGN[$br]:-} ]] || continue
    # (cat, not $(<...): a bridge that is gone meanwhile must not end the loop)
    kind=$(cat "/sys/class/net/$br/addr_assign_type" 2>/dev/null) || continue
    [[ $kind != 3 ]] || continue
    if [[ -z $ours ]]; then
      ours=" $(podman network ls -q ${1:+--filter "label=com.docker.compose.project=$1"} |
        xargs -r podman network inspect -f '{{.NetworkInterface}}' | tr '\n' ' ') "
    fi
    if [[ $ours != *" $br "* ]]; then
      CT_FOREIGN[$br]=1
      continue
    fi
    addr=$(cat "/sys/class/net/$br/address" 2>/dev/null) || continue
    ip link set dev "$br" address "$addr" || true
  done
}

# ct_healthchecks_due PROJECT: each running container's healthcheck (of
# compose project PROJECT, or all) that is due, at the container's own
# interval, the first as soon as it runs; podman records the result, which
# the Docker API shows to compose. CT_DUE: when each is due next.
declare -A CT_DUE=()
ct_healthchecks_due() {
  local filter=() id interval now
  [[ -z ${1:-} ]] || filter=(--filter "label=com.docker.compose.project=$1")
  now=$(date +%s)
  while read -r id interval; do
    [[ -n $id && -n $interval ]] || continue
    ((${CT_DUE[$id]:-0} <= now)) || continue
    CT_DUE[$id]=$((now + (interval > 0 ? interval : 30)))
    podman healthcheck run "$id" >/dev/null 2>&1 &
  done < <(podman ps -q "${filter[@]}" | xargs -r podman inspect --format \
    '{{.Id}} {{if .Config.Healthcheck}}{{printf "%.0f" .Config.Healthcheck.Interval.Seconds}}{{end}}' 2>/dev/null)
  wait
}

# ct_watch [PROJECT]: forever, once a second, what this host lacks for
# PROJECT's containers (or all): fixed bridge addresses, healthchecks.
ct_watch() {
  while :; do
    # what comes and goes while we look (a container, a bridge) is no reason to stop
    ct_pin_bridges "${1:-}" || true
    ct_healthchecks_due "${1:-}" || true
    sleep 1
  done
}

ct_main() {
  local cmd=${1:-}
  PL_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
  # shellcheck source=scripts/lib.sh
  . "$PL_ROOT/scripts/lib.sh"
  case $cmd in
  conf) ct_conf ;;
  base-images) ct_base_images ;;
  build) ct_build "${2:-/dev/stderr}" "${3:-}" ;;
  watch) ct_watch "${2:-}" ;;
  make-redis) ct_make_redis redis:7 "${2:-}" ;;
  *)
    echo "usage: scripts/containers.sh conf | base-images | build [LOG [PREFIX]] | watch [PROJECT] | make-redis [IMAGE]" >&2
    exit 2
    ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  ct_main "$@"
fi
