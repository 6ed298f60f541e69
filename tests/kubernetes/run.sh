#!/usr/bin/env bash
# tests/kubernetes/run.sh: the Kubernetes manifests (deploy/kubernetes/),
# checked and run here without a cluster. `./pilotlight test` runs it as a
# step; alone: bash tests/kubernetes/run.sh.
#
# 1. deploy/kubernetes/base/generated.yaml is what services/list makes;
# 2. `kubectl kustomize` of both overlays and of this test's own (the
#    mariadb overlay, this run's images and secrets, one replica per
#    service, two fronts), each checked against the Kubernetes API's schema
#    and for what ties the objects together (manifests.py check): the
#    autoscalers, the Job, the Services and the network policies, which
#    podman does not run, are checked this way only; so are the pods'
#    hardening (non-root, no privilege escalation, no capability, seccomp,
#    read-only root, no service account token), their spreading over nodes
#    and the budgets (`kubectl apply --dry-run=client` is no help without a
#    cluster: it needs the API server's discovery and OpenAPI documents);
# 3. the images built as the containers suite builds them, under names of
#    this run's own (localhost/pl-kube-N/...), with the redis:7 and
#    mariadb:10.11 stand-ins of docker/ built under such names too (so a
#    change there is what runs), and the secrets made by the image's
#    init-secrets.sh;
# 4. `podman kube play` of the test overlay's objects as podman can run them
#    (manifests.py podman: every workload as Pods, each emptyDir a directory
#    of the pod's own, Secrets as ConfigMaps, Service names as pod names),
#    in order: MariaDB, Redis, the
#    migrations (which must exit 0), the services, the two fronts, each
#    waited for by its own startup and readiness probes;
# 5. test_kube.py against the fronts' pod addresses: every probe of every
#    container; every container's processes running as its securityContext's
#    user and group, with no capability, no_new_privs and a seccomp filter,
#    on a read-only root, its volumes writable; health through both fronts,
#    sign-up, a project, a chat message posted through one front and
#    received live on the other (WebSocket) and on the first (EventSource);
#    a front's preStop run as the kubelet would: it serves on for its wait,
#    then its live subscribers are closed at once and nginx is gone within
#    worker_shutdown_timeout, before terminationGracePeriodSeconds.
#
# Everything it makes is named pl-kube-N-... (N: PL_TEST_SLOT) and removed
# at the end, also on failure or Ctrl-C: pods, volumes, the network. It
# keeps, like the containers suite, its images (podman's layer cache) and
# var/kube[-N]/ (logs; each container's log after a failure).
# PL_KUBE_KEEP=1 leaves the pods up; `run.sh --down` removes them then.
set -euo pipefail

PL_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
export PL_ROOT
# shellcheck source=scripts/lib.sh
. "$PL_ROOT/scripts/lib.sh"
# shellcheck source=scripts/packages.sh
. "$PL_ROOT/scripts/packages.sh"
# shellcheck source=scripts/containers.sh
. "$PL_ROOT/scripts/containers.sh"

readonly KB_NAME=pl-kube-$PL_TEST_SLOT
if ((PL_TEST_SLOT == 0)); then readonly KB_DIR=$PL_ROOT/var/kube; else readonly KB_DIR=$PL_ROOT/var/kube-$PL_TEST_SLOT; fi
readonly KB_PREFIX=$KB_NAME- KB_IMAGES=localhost/$KB_NAME KB_TAG=test
readonly KB_PLAY=$KB_DIR/play KB_OVERLAY=$KB_DIR/overlay
readonly PODMAN=/usr/bin/podman PY=/usr/bin/python3
export CONTAINERS_CONF=$KB_DIR/containers.conf

FIGURES=()
elapsed() { printf '%s' $((SECONDS - $1)); }

# kb_pods: this run's pods (their names start with KB_PREFIX).
kb_pods() { $PODMAN pod ps --format '{{.Name}}' | grep -E "^$KB_PREFIX" || true; }

# kb_down: every pod, volume and ConfigMap volume of this run gone, and its
# network (and the secrets' container, when an interrupted run left it).
kb_down() {
  local pods vols
  $PODMAN rm -f -t 1 "${KB_PREFIX}secrets" >/dev/null 2>&1 || true
  pods=$(kb_pods)
  if [[ -n $pods ]]; then
    # shellcheck disable=SC2086 # one name a word
    timeout 120 $PODMAN pod rm -f -t 5 $pods >/dev/null 2>>"$KB_DIR/down.log" || warn "podman pod rm failed for: $pods"
  fi
  vols=$($PODMAN volume ls --format '{{.Name}}' | grep -E "^$KB_PREFIX" || true)
  if [[ -n $vols ]]; then
    # shellcheck disable=SC2086
    $PODMAN volume rm -f $vols >/dev/null 2>>"$KB_DIR/down.log" || warn "podman volume rm failed for: $vols"
  fi
  if $PODMAN network exists "$KB_NAME"; then
    $PODMAN network rm -f "$KB_NAME" >/dev/null || warn "podman network rm $KB_NAME failed"
  fi
}

kb_finish() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0)); then
    say "pods at the failure:"
    ct_dump_logs "name=^$KB_PREFIX" "$KB_DIR/logs"
  fi
  if [[ ${PL_KUBE_KEEP:-0} == 1 ]]; then
    say "kept (PL_KUBE_KEEP=1): the pods on network $KB_NAME; remove them: bash tests/kubernetes/run.sh --down"
    exit "$rc"
  fi
  say "removing the pods, volumes and network of $KB_NAME"
  kb_down
  if ((${#FIGURES[@]} > 0)); then
    say "figures of this run:"
    printf '  %s\n' "${FIGURES[@]}"
  fi
  exit "$rc"
}

# kb_images: the service and nginx images as the containers suite builds
# them, and the redis:7 and mariadb:10.11 stand-ins (docker/redis,
# docker/mariadb), under this run's names: built each run (podman's layer
# cache makes that seconds), so that what runs is what docker/ says.
kb_images() {
  timeout 900 "$PL_ROOT/scripts/containers.sh" base-images
  PL_IMAGE_TAG=$KB_TAG timeout 1200 "$PL_ROOT/scripts/containers.sh" build "$KB_DIR/build.log" "$KB_IMAGES"
  timeout 600 "$PL_ROOT/scripts/containers.sh" make-redis "$KB_IMAGES/redis:$KB_TAG"
  timeout 600 $PODMAN build --pull=false -q -t "$KB_IMAGES/mariadb:$KB_TAG" "$PL_ROOT/docker/mariadb" \
    >>"$KB_DIR/build.log" 2>&1 || { tail_log "$KB_DIR/build.log"; die "podman build of docker/mariadb failed"; }
}

# kb_secrets: the Secret's files, made by the image's own init-secrets.sh.
kb_secrets() {
  rm -rf "$KB_OVERLAY/secrets"
  mkdir -p "$KB_OVERLAY/secrets"
  $PODMAN run --rm --name "${KB_PREFIX}secrets" --network none --user root \
    -v "$KB_OVERLAY/secrets:/run/pilotlight/secrets" --entrypoint /usr/local/bin/init-secrets.sh \
    "$KB_IMAGES/service:$KB_TAG" >>"$KB_DIR/secrets.log" 2>&1 ||
    { tail_log "$KB_DIR/secrets.log"; die "init-secrets.sh failed"; }
}

# kb_overlay: this test's overlay of deploy/kubernetes/overlays/mariadb.
kb_overlay() {
  local rel f files=()
  rel=$(realpath --relative-to="$KB_OVERLAY" "$PL_ROOT/deploy/kubernetes/overlays/mariadb")
  for f in "$KB_OVERLAY"/secrets/*; do files+=("      - secrets/${f##*/}"); done
  cat >"$KB_OVERLAY/kustomization.yaml" <<EOF
# made by tests/kubernetes/run.sh: the mariadb overlay with this run's
# images and secrets, one pod per service and two fronts
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel
images:
  - {name: pilotlight/service, newName: $KB_IMAGES/service, newTag: $KB_TAG}
  - {name: pilotlight/nginx, newName: $KB_IMAGES/nginx, newTag: $KB_TAG}
  - {name: redis, newName: $KB_IMAGES/redis, newTag: $KB_TAG}
  - {name: mariadb, newName: $KB_IMAGES/mariadb, newTag: $KB_TAG}
secretGenerator:
  # named as the operator's own (the base's references do not follow a hash)
  - name: pilotlight-secrets
    options: {disableNameSuffixHash: true}
    files:
$(printf '%s\n' "${files[@]}")
patches:
  - target: {kind: Deployment, name: nginx}
    patch: |-
      - {op: add, path: /spec/replicas, value: 2}
EOF
  while IFS= read -r f; do
    printf '  - target: {kind: Deployment, name: %s}\n    patch: |-\n      - {op: add, path: /spec/replicas, value: 1}\n' "$f"
  done <"$PL_ROOT/services/list" >>"$KB_OVERLAY/kustomization.yaml"
}

# kb_play NAME: podman kube play of workload NAME's file (manifests.py podman).
kb_play() {
  timeout 180 $PODMAN kube play --network "$KB_NAME" "$KB_PLAY/$1.yaml" >>"$KB_DIR/play.log" 2>&1 ||
    { tail_log "$KB_DIR/play.log"; die "podman kube play of $1 failed"; }
}

# kb_ready NAME TIMEOUT: every container of workload NAME passes its
# readiness probe (test_kube.py probe: as the kubelet would run it).
kb_ready() {
  $PY "$PL_ROOT/tests/kubernetes/test_kube.py" wait-ready "$KB_PLAY/plan.json" "$1" "$2"
}

main() {
  local t t0 tdb rc=0 o
  if [[ ${1:-} == --down ]]; then
    kb_down
    return
  fi
  t0=$SECONDS
  install_deps "${CONTAINER_PACKAGES[@]}" "${KUBE_PACKAGES[@]}"
  # kubectl's kustomize builds the overlays: 1.21 or later (Debian 12's
  # kubernetes-client is 1.20, too old); without one the step is skipped,
  # saying so, as the several-hosts step is without network namespaces
  local minor
  minor=$(kubectl version --client -o json 2>/dev/null | $PY -c 'import json,sys; print(int(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+")))' 2>/dev/null) || minor=0
  if ((minor < 21)); then
    say "kubernetes: SKIPPED: no kubectl 1.21 or later on this machine (its kustomize builds the manifests; Debian 12's kubernetes-client is 1.20): install Kubernetes' kubectl to run this step"
    return 0
  fi
  mkdir -p "$KB_DIR" "$KB_OVERLAY"
  rm -rf "$KB_DIR"/*.log "$KB_DIR/logs" "$KB_PLAY" "$KB_DIR/figures.jsonl"
  ct_conf >"$CONTAINERS_CONF"
  trap kb_finish EXIT
  trap 'exit 130' INT TERM
  kb_down # what an interrupted run left

  bash "$PL_ROOT/deploy/kubernetes/generate.sh" --check
  for o in mariadb external-db; do
    kubectl kustomize "$PL_ROOT/deploy/kubernetes/overlays/$o" >"$KB_DIR/$o.yaml"
    $PY "$PL_ROOT/tests/kubernetes/manifests.py" check "$KB_DIR/$o.yaml" --external-secret pilotlight-secrets
  done

  t=$SECONDS
  kb_images
  FIGURES+=("images: $(elapsed "$t") s (base images, podman build of service and nginx, the redis and mariadb stand-ins)")
  kb_secrets
  kb_overlay
  kubectl kustomize "$KB_OVERLAY" >"$KB_DIR/test.yaml"
  $PY "$PL_ROOT/tests/kubernetes/manifests.py" check "$KB_DIR/test.yaml"
  # and the check finds a key the pods need missing from the Secret
  $PY - "$KB_DIR/test.yaml" "$KB_DIR/test-no-key.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "Secret" and "db_chat.password" in (d.get("data") or {}):
        del d["data"]["db_chat.password"]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
  if $PY "$PL_ROOT/tests/kubernetes/manifests.py" check "$KB_DIR/test-no-key.yaml" >"$KB_DIR/no-key.log" 2>&1 ||
    ! grep -q 'needs key db_chat.password' "$KB_DIR/no-key.log"; then
    tail_log "$KB_DIR/no-key.log"
    die "manifests.py check did not find db_chat.password missing from the Secret"
  fi
  $PY "$PL_ROOT/tests/kubernetes/manifests.py" podman "$KB_DIR/test.yaml" "$KB_PLAY" "$KB_PREFIX"

  t=$SECONDS
  $PODMAN network create "$KB_NAME" >/dev/null
  tdb=$SECONDS
  kb_play mariadb
  kb_play redis
  kb_ready mariadb 120
  FIGURES+=("MariaDB's first start (a new data directory), played to its startup and readiness probes passing: $(elapsed "$tdb") s (its startup probe allows 300 s)")
  kb_play pl-migrate
  timeout 120 $PODMAN wait "${KB_PREFIX}pl-migrate-migrate" >"$KB_DIR/migrate.status" ||
    die "the migrations did not end within 120 s"
  [[ $(<"$KB_DIR/migrate.status") == 0 ]] ||
    { $PODMAN logs "${KB_PREFIX}pl-migrate-migrate" | tail -20 >&2; die "the migrations Job's pod exited $(<"$KB_DIR/migrate.status")"; }
  while IFS= read -r o; do kb_play "$o"; done <"$PL_ROOT/services/list"
  while IFS= read -r o; do kb_ready "$o" 60; done <"$PL_ROOT/services/list"
  kb_play nginx
  kb_ready redis 30
  kb_ready nginx 60
  FIGURES+=("kube play, MariaDB to both fronts ready: $(elapsed "$t") s")

  t=$SECONDS
  PL_KB_PLAN=$KB_PLAY/plan.json PL_KB_FIGURES=$KB_DIR/figures.jsonl \
    timeout 300 $PY -m pytest -q -p no:cacheprovider "$PL_ROOT/tests/kubernetes/test_kube.py" "$@" || rc=$?
  FIGURES+=("tests: $(elapsed "$t") s")
  if [[ -s $KB_DIR/figures.jsonl ]]; then
    mapfile -t -O "${#FIGURES[@]}" FIGURES <"$KB_DIR/figures.jsonl"
  fi
  FIGURES+=("the whole step, before the clean-up: $(elapsed "$t0") s")
  return "$rc"
}

main "$@"
