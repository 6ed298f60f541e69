#!/bin/sh
# The one-shot `migrate` service: for each service, pl-migrate creates its
# schema and user (password from the secrets volume) and applies
# migrations/<svc>/ as MySQL's root. The service containers wait for it.
set -eu
secrets=${PL_SECRETS_DIR:-/run/pilotlight/secrets}
export PL_DB_HOST="${PL_DB_HOST:-mysql}" PL_DB_PORT="${PL_DB_PORT:-3306}"
export PL_DB_ADMIN_USER="${PL_DB_ADMIN_USER:-root}"
export PL_DB_ADMIN_PASSWORD_FILE="${PL_DB_ADMIN_PASSWORD_FILE:-$secrets/mysql_root.password}"
for svc in accounts projects chat; do
  PL_DB_PASSWORD_FILE=$secrets/db_$svc.password \
    pl-migrate --service "$svc" --dir "/usr/share/pilotlight/migrations/$svc"
done
