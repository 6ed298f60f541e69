#!/bin/sh
# healthcheck.sh [--live] [SVC [ADDR]]: GET /api/SVC/health straight over
# FastCGI (cgi-fcgi), as nginx would send it; healthy when the service says
# "status":"ok" (its database answers). ADDR: host:port or a socket path.
# --live: GET /api/SVC/_status instead, answered from the pool's scoreboard
# without touching the database: healthy when the pool answers at all. A
# liveness check (Kubernetes) that no database outage fails, a hung or
# unreachable server included (the health request would wait for the
# connect timeout per server, or the query timeout, 10 s, on an open
# connection: longer than the probe's timeout), so it restarts nothing.
# Give it the master's status socket (PL_STATUS_LISTEN's path) as ADDR, as
# the Kubernetes manifests do: there the master answers, not a worker, so
# workers all busy (a slow database under load) fail it no more than an
# outage does. On PL_LISTEN (the default ADDR) a worker answers, after
# whatever waits before it.
route=health
if [ "${1:-}" = --live ]; then
  route=_status
  shift
fi
svc=${1:-${PL_SERVICE:?}}
addr=${2:-127.0.0.1:9000}
out=$(env -i REQUEST_METHOD=GET REQUEST_URI="/api/$svc/$route" DOCUMENT_URI="/api/$svc/$route" \
  SCRIPT_NAME="/api/$svc/$route" QUERY_STRING= CONTENT_LENGTH= CONTENT_TYPE= SERVER_PROTOCOL=HTTP/1.1 \
  REMOTE_ADDR=127.0.0.1 REQUEST_ID=healthcheck PL_INTERNAL=1 \
  cgi-fcgi -bind -connect "$addr" 2>&1) || { echo "$out" >&2; exit 1; }
case $route$out in
health*'"status":"ok"'* | _status*'"service":"'"$svc"'"'*) exit 0 ;;
*) echo "$out" >&2; exit 1 ;;
esac
