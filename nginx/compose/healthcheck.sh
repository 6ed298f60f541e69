#!/bin/sh
# Healthcheck of the compose nginx container: GET /api/<svc>/health of every
# service of services/list through nginx itself (its internal listener: the
# same routing, resolver and upstreams as the public one), so that nginx is
# healthy only when it can reach every pool and each pool its database.
set -eu
list=${PL_SERVICES_FILE:-/usr/share/pilotlight/services/list}
port=${PL_INTERNAL_PORT:-8081}
while IFS= read -r svc || [ -n "$svc" ]; do
  if ! out=$(curl -sS --max-time 1.5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/$svc/health" 2>&1) ||
    [ "$out" != 200 ]; then
    echo "nginx healthcheck: /api/$svc/health through nginx: $out" >&2
    exit 1
  fi
done <"$list"
