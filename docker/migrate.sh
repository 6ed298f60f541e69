#!/bin/sh
# The one-shot `migrate` service: for each service of services/list,
# pl-migrate creates its schema and user (password from the secrets volume)
# and applies migrations/<svc>/ as MySQL's root (PL_DB_HOST from
# docker-compose.yml; the port and admin user are pl-migrate's defaults).
# The service containers wait for it.
set -eu
list=${PL_SERVICES_FILE:-/usr/share/pilotlight/services/list}
secrets=${PL_SECRETS_DIR:-/run/pilotlight/secrets}
export PL_DB_ADMIN_PASSWORD_FILE="${PL_DB_ADMIN_PASSWORD_FILE:-$secrets/mysql_root.password}"
while IFS= read -r svc || [ -n "$svc" ]; do
  PL_DB_PASSWORD_FILE=$secrets/db_$svc.password \
    pl-migrate --service "$svc" --dir "/usr/share/pilotlight/migrations/$svc"
done <"$list"
