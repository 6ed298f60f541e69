#!/bin/sh
# Entrypoint of the compose nginx container: renders the stack's nginx config
# with the same renderer as ./pilotlight (nginx/render.sh: the same template,
# api.conf, fastcgi.conf, security_headers.conf, errors/, the same defaults
# from nginx/defaults.env and the same services/list), with two differences:
# - each service's requests go to its compose service by name, resolved at
#   request time (re-resolved every PL_RESOLVER_VALID) through the first
#   nameserver of the container's /etc/resolv.conf (Docker's 127.0.0.11,
#   podman's aardvark-dns, a cluster's DNS) or PL_RESOLVER, so
#   `--scale projects=3` spreads load over all three and a replaced
#   container is found;
# - with PL_TLS_REDIRECT=1 (the default) the public plain-HTTP port answers
#   every request with a 308 to the same URL over HTTPS on port
#   PL_HTTPS_REDIRECT_PORT (the published one; default the container's);
#   0 serves plain HTTP too (behind a proxy that ends TLS itself).
#
# `entrypoint.sh --check` renders and runs nginx -t only (./pilotlight test
# does so outside Docker, with the PL_COMPOSE_* paths below in a temp dir).
set -eu
src=${PL_NGINX_SRC:-/usr/share/pilotlight/nginx}
run=${PL_COMPOSE_STATE:-/run/pilotlight}
dir=$run/nginx
log=${PL_COMPOSE_LOG:-/var/log/pilotlight}
tls=${PL_TLS_DIR:-/var/lib/pilotlight/tls}
mkdir -p "$dir/tmp" "$dir/public.d" "$log"
# nginx logs to the container's output
ln -sf /dev/stdout "$log/nginx-access.log"
ln -sf /dev/stderr "$log/nginx-error.log"

# What differs from the local stack: every interface of the container, the
# image's paths and user, the services' port and resolver. The rest:
# nginx/defaults.env.
PL_HTTP_BIND=0.0.0.0 PL_INTERNAL_BIND=0.0.0.0
: "${PL_WEB_ROOT:=/usr/share/pilotlight/web}" "${PL_NGINX_USER:=www-data www-data}"
: "${PL_SERVICE_PORT:=9000}" "${PL_RESOLVER:=}" "${PL_RESOLVER_VALID:=5s}"
: "${PL_RESOLV_CONF:=/etc/resolv.conf}" "${PL_TLS_REDIRECT:=1}"
# the image's OpenAPI document, unless PL_OPENAPI_FILE names another (empty:
# /api/openapi.json is 404, as outside the image with --check)
if [ -z "${PL_OPENAPI_FILE+set}" ]; then
  PL_OPENAPI_FILE=
  [ ! -r /usr/share/pilotlight/openapi.json ] || PL_OPENAPI_FILE=/usr/share/pilotlight/openapi.json
fi
# shellcheck source-path=SCRIPTDIR source=../defaults.env
. "$src/defaults.env"
: "${PL_HTTPS_REDIRECT_PORT:=$PL_HTTPS_PORT}"

# nginx's resolver: the first IPv4 nameserver of the container's
# resolv.conf, unless PL_RESOLVER names one. Only the first: the others are
# fallbacks there (podman lists the host's after aardvark-dns), which know no
# compose service, and nginx would ask them in turn.
if [ -z "$PL_RESOLVER" ]; then
  PL_RESOLVER=$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ { print $2; exit }' "$PL_RESOLV_CONF")
  if [ -z "$PL_RESOLVER" ]; then
    echo "entrypoint: $PL_RESOLV_CONF names no IPv4 nameserver: set PL_RESOLVER to a DNS server that resolves the compose services" >&2
    exit 1
  fi
fi

# TLS: the files named, else a self-signed certificate made once in the
# tls volume.
if [ -z "$PL_TLS_CERT_FILE" ] || [ -z "$PL_TLS_KEY_FILE" ]; then
  PL_TLS_CERT_FILE=$tls/tls.crt PL_TLS_KEY_FILE=$tls/tls.key
  if [ ! -s "$PL_TLS_CERT_FILE" ] || [ ! -s "$PL_TLS_KEY_FILE" ]; then
    sh "$src/self-signed.sh" "$PL_TLS_CERT_FILE" "$PL_TLS_KEY_FILE"
    echo "entrypoint: made a self-signed certificate (set PL_TLS_CERT_FILE/PL_TLS_KEY_FILE for your own)"
  fi
fi

export PL_HTTP_BIND PL_INTERNAL_BIND PL_WEB_ROOT PL_NGINX_USER PL_RESOLVER PL_RESOLVER_VALID PL_OPENAPI_FILE
export PL_TLS_CERT_FILE PL_TLS_KEY_FILE PL_NGINX_SRC="$src" PL_NGINX_DIR="$dir" PL_RUN_DIR="$run" PL_LOG_DIR="$log"
bash "$src/render.sh" "$dir" --resolve "$PL_SERVICE_PORT"

# Plain HTTP as a redirect to HTTPS: public.d/ is included at the top of the
# public server, so this comes before any location.
case $PL_TLS_REDIRECT in
0) rm -f "$dir/public.d/tls-redirect.conf" ;;
1)
  # shellcheck disable=SC2016 # $host is nginx's
  case $PL_HTTPS_REDIRECT_PORT in
  443) authority='$host' ;;
  '' | *[!0-9]*)
    echo "entrypoint: PL_HTTPS_REDIRECT_PORT must be a port number, not '$PL_HTTPS_REDIRECT_PORT'" >&2
    exit 1
    ;;
  *) authority="\$host:$PL_HTTPS_REDIRECT_PORT" ;;
  esac
  cat >"$dir/public.d/tls-redirect.conf" <<EOF
# made by nginx/compose/entrypoint.sh (PL_TLS_REDIRECT=1): plain HTTP only
# redirects to HTTPS, method and body kept (308); not what came over TLS to
# a trusted proxy (\$pl_https: PL_TRUSTED_PROXIES and X-Forwarded-Proto)
if (\$pl_https = "") {
    return 308 https://$authority\$request_uri;
}
EOF
  ;;
*)
  echo "entrypoint: PL_TLS_REDIRECT must be 0 or 1, not '$PL_TLS_REDIRECT'" >&2
  exit 1
  ;;
esac

nginx -t -q -p "$dir/" -c "$dir/nginx.conf"
[ "${1:-}" != --check ] || exit 0
exec nginx -g 'daemon off;' -p "$dir/" -c "$dir/nginx.conf"
