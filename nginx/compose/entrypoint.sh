#!/bin/sh
# Entrypoint of the compose nginx container: renders the same
# nginx/pilotlight.conf.tmpl as ./pilotlight (same api.conf, fastcgi.conf,
# security_headers.conf, errors/), with one difference: upstreams.conf sends each
# service's requests to its compose service by name, resolved through
# Docker's DNS at request time (re-resolved every 5 s), so
# `docker compose up --scale projects=3` spreads load over all three and a
# replaced container is found.
#
# `entrypoint.sh --check` renders and runs nginx -t only (./pilotlight test
# does so outside Docker, with the PL_COMPOSE_* paths below in a temp dir).
set -eu
src=${PL_NGINX_SRC:-/usr/share/pilotlight/nginx}
run=${PL_COMPOSE_STATE:-/run/pilotlight}
dir=$run/nginx
log=${PL_COMPOSE_LOG:-/var/log/pilotlight}
tls=${PL_TLS_DIR:-/var/lib/pilotlight/tls}
web=${PL_WEB_ROOT:-/usr/share/pilotlight/web}
user=${PL_NGINX_USER:-www-data www-data}
mkdir -p "$dir/tmp" "$log"
# nginx logs to the container's output
ln -sf /dev/stdout "$log/nginx-access.log"
ln -sf /dev/stderr "$log/nginx-error.log"

: "${PL_HTTP_PORT:=8080}" "${PL_HTTPS_PORT:=8443}" "${PL_INTERNAL_PORT:=8081}"
: "${PL_SERVICE_PORT:=9000}" "${PL_RESOLVER:=127.0.0.11}" "${PL_RESOLVER_VALID:=5s}"
: "${PL_NGINX_WORKERS:=auto}" "${PL_NCHAN_SHM_SIZE:=64m}" "${PL_HSTS_MAX_AGE:=31536000}"
: "${PL_LIMIT_LOGIN_RATE:=5r/s}" "${PL_LIMIT_LOGIN_BURST:=20}"
: "${PL_LIMIT_SIGNUP_RATE:=1r/s}" "${PL_LIMIT_SIGNUP_BURST:=10}"
: "${PL_LIMIT_REFRESH_RATE:=5r/s}" "${PL_LIMIT_REFRESH_BURST:=20}"
: "${PL_LIMIT_CHAT_POST_RATE:=10r/s}" "${PL_LIMIT_CHAT_POST_BURST:=40}"
: "${PL_TLS_CERT_FILE:=}" "${PL_TLS_KEY_FILE:=}"

# TLS: the files named, else a self-signed certificate made once in the
# tls volume.
if [ -z "$PL_TLS_CERT_FILE" ] || [ -z "$PL_TLS_KEY_FILE" ]; then
  PL_TLS_CERT_FILE=$tls/tls.crt PL_TLS_KEY_FILE=$tls/tls.key
  if [ ! -s "$PL_TLS_CERT_FILE" ] || [ ! -s "$PL_TLS_KEY_FILE" ]; then
    mkdir -p "$tls"
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
      -subj "/CN=localhost/O=Pilotlight self-signed" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$PL_TLS_KEY_FILE" -out "$PL_TLS_CERT_FILE" 2>/dev/null)
    echo "entrypoint: made a self-signed certificate (set PL_TLS_CERT_FILE/PL_TLS_KEY_FILE for your own)"
  fi
fi

sed -e "s|{{NGINX_USER}}|$user|g" -e "s|{{NGINX_WORKERS}}|$PL_NGINX_WORKERS|g" \
  -e "s|{{RUN_DIR}}|$run|g" -e "s|{{LOG_DIR}}|$log|g" -e "s|{{NGINX_DIR}}|$dir|g" \
  -e "s|{{WEB_ROOT}}|$web|g" \
  -e "s|{{HTTP_BIND}}|0.0.0.0|g" -e "s|{{HTTP_PORT}}|$PL_HTTP_PORT|g" -e "s|{{HTTPS_PORT}}|$PL_HTTPS_PORT|g" \
  -e "s|{{TLS_CERT_FILE}}|$PL_TLS_CERT_FILE|g" -e "s|{{TLS_KEY_FILE}}|$PL_TLS_KEY_FILE|g" \
  -e "s|{{INTERNAL_BIND}}|0.0.0.0|g" -e "s|{{INTERNAL_PORT}}|$PL_INTERNAL_PORT|g" \
  -e "s|{{INTERNAL_ADDR}}|127.0.0.1:$PL_INTERNAL_PORT|g" -e "s|{{NCHAN_SHM_SIZE}}|$PL_NCHAN_SHM_SIZE|g" \
  -e "s|{{HSTS_MAX_AGE}}|$PL_HSTS_MAX_AGE|g" \
  -e "s|{{LIMIT_LOGIN_RATE}}|$PL_LIMIT_LOGIN_RATE|g" -e "s|{{LIMIT_LOGIN_BURST}}|$PL_LIMIT_LOGIN_BURST|g" \
  -e "s|{{LIMIT_SIGNUP_RATE}}|$PL_LIMIT_SIGNUP_RATE|g" -e "s|{{LIMIT_SIGNUP_BURST}}|$PL_LIMIT_SIGNUP_BURST|g" \
  -e "s|{{LIMIT_REFRESH_RATE}}|$PL_LIMIT_REFRESH_RATE|g" -e "s|{{LIMIT_REFRESH_BURST}}|$PL_LIMIT_REFRESH_BURST|g" \
  -e "s|{{LIMIT_CHAT_POST_RATE}}|$PL_LIMIT_CHAT_POST_RATE|g" -e "s|{{LIMIT_CHAT_POST_BURST}}|$PL_LIMIT_CHAT_POST_BURST|g" \
  "$src/pilotlight.conf.tmpl" >"$dir/nginx.conf"
if grep -n '{{[A-Z_]*}}' "$dir/nginx.conf" >&2; then
  echo "entrypoint: nginx/pilotlight.conf.tmpl has placeholders this script does not know" >&2
  exit 1
fi
cp "$src/api.conf" "$src/fastcgi.conf" "$src/security_headers.conf" "$dir/"
# the web client's friendly 404 and 50x pages (served at /_errors/)
mkdir -p "$dir/errors"
cp "$src/errors/404.html" "$src/errors/50x.html" "$src/errors/errors.css" "$dir/errors/"

# A variable in fastcgi_pass makes nginx resolve the name per request
# (cached for PL_RESOLVER_VALID) instead of once at start.
{
  echo "# made by nginx/compose/entrypoint.sh: services by name through Docker's DNS"
  echo "resolver $PL_RESOLVER valid=$PL_RESOLVER_VALID ipv6=off;"
  echo "resolver_timeout 2s;"
  for svc in accounts projects chat; do
    printf 'map $uri $pl_up_%s {\n    default %s:%s;\n}\n' "$svc" "$svc" "$PL_SERVICE_PORT"
  done
} >"$dir/upstreams.conf"

nginx -t -q -p "$dir/" -c "$dir/nginx.conf"
[ "${1:-}" != --check ] || exit 0
exec nginx -g 'daemon off;' -p "$dir/" -c "$dir/nginx.conf"
