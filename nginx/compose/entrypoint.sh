#!/bin/sh
# Entrypoint of the compose nginx container: renders the stack's nginx config
# with the same renderer as ./pilotlight (nginx/render.sh: the same template,
# api.conf, fastcgi.conf, security_headers.conf, errors/, the same defaults
# from nginx/defaults.env and the same services/list), with one difference:
# each service's requests go to its compose service by name, resolved through
# Docker's DNS at request time (re-resolved every PL_RESOLVER_VALID), so
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
mkdir -p "$dir/tmp" "$log"
# nginx logs to the container's output
ln -sf /dev/stdout "$log/nginx-access.log"
ln -sf /dev/stderr "$log/nginx-error.log"

# What differs from the local stack: every interface of the container, the
# image's paths and user, the services' port and Docker's resolver. The
# rest: nginx/defaults.env.
PL_HTTP_BIND=0.0.0.0 PL_INTERNAL_BIND=0.0.0.0
: "${PL_WEB_ROOT:=/usr/share/pilotlight/web}" "${PL_NGINX_USER:=www-data www-data}"
: "${PL_SERVICE_PORT:=9000}" "${PL_RESOLVER:=127.0.0.11}" "${PL_RESOLVER_VALID:=5s}"
# shellcheck source-path=SCRIPTDIR source=../defaults.env
. "$src/defaults.env"

# TLS: the files named, else a self-signed certificate made once in the
# tls volume.
if [ -z "$PL_TLS_CERT_FILE" ] || [ -z "$PL_TLS_KEY_FILE" ]; then
  PL_TLS_CERT_FILE=$tls/tls.crt PL_TLS_KEY_FILE=$tls/tls.key
  if [ ! -s "$PL_TLS_CERT_FILE" ] || [ ! -s "$PL_TLS_KEY_FILE" ]; then
    sh "$src/self-signed.sh" "$PL_TLS_CERT_FILE" "$PL_TLS_KEY_FILE"
    echo "entrypoint: made a self-signed certificate (set PL_TLS_CERT_FILE/PL_TLS_KEY_FILE for your own)"
  fi
fi

export PL_HTTP_BIND PL_INTERNAL_BIND PL_WEB_ROOT PL_NGINX_USER PL_RESOLVER PL_RESOLVER_VALID
export PL_TLS_CERT_FILE PL_TLS_KEY_FILE PL_NGINX_SRC="$src" PL_NGINX_DIR="$dir" PL_RUN_DIR="$run" PL_LOG_DIR="$log"
bash "$src/render.sh" "$dir" --resolve "$PL_SERVICE_PORT"

nginx -t -q -p "$dir/" -c "$dir/nginx.conf"
[ "${1:-}" != --check ] || exit 0
exec nginx -g 'daemon off;' -p "$dir/" -c "$dir/nginx.conf"
