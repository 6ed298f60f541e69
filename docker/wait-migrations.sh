#!/bin/sh
# wait-migrations.sh [SVC]: waits until the database holds every migration
# this image has for the service (PL_MIGRATIONS_DIR, default
# /usr/share/pilotlight/migrations/SVC), asking pl-migrate --check every 2 s
# as the service's own DB user (its password is all the pod holds), then
# exits 0; exits 1 after PL_MIGRATIONS_WAIT_S seconds (default 300) without
# that, so that the caller sees it fail (a Kubernetes init container: the kubelet runs it
# again after a back-off, and the rollout stops at that pod while the old
# pods serve on). The init container of every service's pods in the
# Kubernetes manifests (deploy/kubernetes/generate.sh): a release's new pods
# start only once its pl-migrate Job has migrated their schema. Any failure
# of the check (the database not up yet, the service's user not made yet,
# migrations pending) is waited out; a usage error is not.
set -u
list=${PL_SERVICES_FILE:-/usr/share/pilotlight/services/list}
svc=${1:-${PL_SERVICE:?set PL_SERVICE to a service of $list}}
secrets=${PL_SECRETS_DIR:-/run/pilotlight/secrets}
wait_s=${PL_MIGRATIONS_WAIT_S:-300}
case $wait_s in
'' | *[!0-9]*)
  echo "wait-migrations: PL_MIGRATIONS_WAIT_S must be a number of seconds, not '$wait_s'" >&2
  exit 2
  ;;
esac
dir=${PL_MIGRATIONS_DIR:-/usr/share/pilotlight/migrations/$svc}
export PL_DB_PASSWORD_FILE="${PL_DB_PASSWORD_FILE:-$secrets/db_$svc.password}"
start=$(date +%s)
last=
while :; do
  out=$(pl-migrate --service "$svc" --dir "$dir" --check 2>&1)
  rc=$?
  case $rc in
  0)
    echo "wait-migrations: $out"
    exit 0
    ;;
  2)
    echo "wait-migrations: $out" >&2
    exit 2
    ;;
  esac
  # each new reason once, not every 2 s
  if [ "$out" != "$last" ]; then
    echo "wait-migrations: waiting: $out" >&2
    last=$out
  fi
  # whole seconds: more than wait_s of them is at least wait_s past
  if [ $(($(date +%s) - start)) -gt "$wait_s" ]; then
    echo "wait-migrations: $svc: the database is still not migrated for this image after $wait_s s" \
      "(has this release's pl-migrate Job run? docs/kubernetes.md, A new release)" >&2
    exit 1
  fi
  sleep 2
done
