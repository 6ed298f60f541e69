# scripts/packages.sh: the Debian packages the stack needs, installed with
# apt-get when missing (and node with npm for the web client).
# shellcheck shell=bash

readonly APT_PACKAGES=(
  gcc libc6-dev meson ninja-build pkg-config
  libfcgi-dev libjson-c-dev default-libmysqlclient-dev libsodium-dev libcurl4-openssl-dev liboath-dev
  nginx libnginx-mod-nchan libnginx-mod-http-headers-more-filter mariadb-server mariadb-client
  wrk curl openssl libfcgi-bin jq procps shellcheck logrotate clang-format python3 python3-pytest python3-requests python3-websocket python3-nacl python3-aiosmtpd python3-jsonschema python3-hypothesis
  docker-compose chromium
  # the several-hosts test: Redis, Galera (rsync state transfers), network namespaces
  redis-server galera-4 rsync iproute2
  # a pool in a network namespace reaching the test stack's MariaDB (test_pool.py)
  socat
)
# only for the containers suite (tests/containers/run.sh): rootful podman with
# runc and netavark/aardvark-dns (compose service names), debootstrap for the
# base images; docker-compose (above) talks to podman's Docker API
# shellcheck disable=SC2034 # tests/containers/run.sh installs them
readonly CONTAINER_PACKAGES=(podman runc netavark aardvark-dns iptables iproute2 debootstrap docker-compose
  python3-yaml python3-pytest python3-requests python3-websocket curl)
# only for the Kubernetes step (tests/kubernetes/run.sh), besides the
# containers suite's: podman's pause image (catatonit), the Kubernetes API's
# models for the schema check. kubectl (its kustomize) is not among them:
# Debian 12's kubernetes-client is 1.20, whose kustomize (v2.0.3) is too old
# for the manifests; Kubernetes' own kubectl 1.21 or later is needed.
# shellcheck disable=SC2034 # tests/kubernetes/run.sh installs them
readonly KUBE_PACKAGES=(catatonit python3-kubernetes python3-yaml python3-pytest python3-requests python3-websocket)
# only for `./pilotlight fuzz` (libFuzzer comes with clang's runtime libraries)
# shellcheck disable=SC2034 # fuzz/run.sh installs them
readonly FUZZ_PACKAGES=(clang libclang-rt-14-dev)

# install_deps [PKG...]: apt-get install what is missing of these packages
# (default: the stack's APT_PACKAGES, and node with npm).
install_deps() {
  local missing=() pkg pkgs=("$@")
  ((${#pkgs[@]} > 0)) || pkgs=("${APT_PACKAGES[@]}")
  for pkg in "${pkgs[@]}"; do
    # shellcheck disable=SC2016 # ${Status} is dpkg-query's, not ours
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == *' ok installed' ]] || missing+=("$pkg")
  done
  if (($# == 0)) && { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then
    missing+=(nodejs npm)
  fi
  ((${#missing[@]} > 0)) || return 0
  ((EUID == 0)) || die "missing packages (install them, or run as root): ${missing[*]}"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
