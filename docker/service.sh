#!/bin/sh
# Entrypoint of a service container: runs the pool named by PL_SERVICE on a
# TCP port (PL_LISTEN, default 0.0.0.0:9000), configured by the same PL_*
# variables as under ./pilotlight. Passwords and keys are files in the
# secrets volume (made once by the `secrets` service), never in the image.
set -eu
svc=${PL_SERVICE:?set PL_SERVICE to accounts, projects or chat}
case $svc in
accounts | projects | chat) ;;
*) echo "service.sh: unknown PL_SERVICE '$svc'" >&2; exit 2 ;;
esac
secrets=${PL_SECRETS_DIR:-/run/pilotlight/secrets}
export PL_LISTEN="${PL_LISTEN:-0.0.0.0:9000}"
export PL_DB_PASSWORD_FILE="${PL_DB_PASSWORD_FILE:-$secrets/db_$svc.password}"
export PL_JWT_PUBLIC_KEYS_FILE="${PL_JWT_PUBLIC_KEYS_FILE:-$secrets/jwt_public.keys}"
if [ "$svc" = accounts ]; then
  export PL_JWT_SIGNING_KEY_FILE="${PL_JWT_SIGNING_KEY_FILE:-$secrets/jwt_signing.key}"
fi
exec "/usr/local/bin/pl-$svc" "$@"
