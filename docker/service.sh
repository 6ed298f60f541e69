#!/bin/sh
# Entrypoint of a service container: runs the pool named by PL_SERVICE (a
# name in services/list) on a TCP port (PL_LISTEN, default 0.0.0.0:9000),
# configured by the same PL_* variables as under ./pilotlight. Passwords and
# keys are files in the secrets volume (made once by the `secrets` service),
# never in the image.
set -eu
list=${PL_SERVICES_FILE:-/usr/share/pilotlight/services/list}
svc=${PL_SERVICE:?set PL_SERVICE to a service of $list}
if ! grep -qxF -- "$svc" "$list"; then
  echo "service.sh: unknown PL_SERVICE '$svc' (the services: $(tr '\n' ' ' <"$list"))" >&2
  exit 2
fi
bin=/usr/local/bin/pl-$svc
secrets=${PL_SECRETS_DIR:-/run/pilotlight/secrets}
export PL_LISTEN="${PL_LISTEN:-0.0.0.0:9000}"
export PL_DB_PASSWORD_FILE="${PL_DB_PASSWORD_FILE:-$secrets/db_$svc.password}"
export PL_JWT_PUBLIC_KEYS_FILE="${PL_JWT_PUBLIC_KEYS_FILE:-$secrets/jwt_public.keys}"
# the service that signs tokens (accounts) has a setting for the private key
if "$bin" --print-defaults | grep -q '^PL_JWT_SIGNING_KEY_FILE='; then
  export PL_JWT_SIGNING_KEY_FILE="${PL_JWT_SIGNING_KEY_FILE:-$secrets/jwt_signing.key}"
fi
exec "$bin" "$@"
