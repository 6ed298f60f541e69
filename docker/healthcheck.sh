#!/bin/sh
# healthcheck.sh [--live] [SVC [ADDR]]: GET /api/SVC/health straight over
# FastCGI (cgi-fcgi), as nginx would send it; healthy when the service says
# "status":"ok" (its database answers). ADDR: host:port or a socket path.
# --live: healthy when the pool answers at all, with its JSON (a 503
# database_unavailable too): a liveness check (Kubernetes) that a database
# outage does not fail, so it restarts nothing.
live=0
if [ "${1:-}" = --live ]; then
  live=1
  shift
fi
svc=${1:-${PL_SERVICE:?}}
addr=${2:-127.0.0.1:9000}
out=$(env -i REQUEST_METHOD=GET REQUEST_URI="/api/$svc/health" DOCUMENT_URI="/api/$svc/health" \
  SCRIPT_NAME="/api/$svc/health" QUERY_STRING= CONTENT_LENGTH= CONTENT_TYPE= SERVER_PROTOCOL=HTTP/1.1 \
  REMOTE_ADDR=127.0.0.1 REQUEST_ID=healthcheck PL_INTERNAL=1 \
  cgi-fcgi -bind -connect "$addr" 2>&1) || { echo "$out" >&2; exit 1; }
case $live$out in
*'"status":"ok"'* | 1*'{"error":{"code":'*) exit 0 ;;
*) echo "$out" >&2; exit 1 ;;
esac
