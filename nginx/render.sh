#!/usr/bin/env bash
# nginx/render.sh: the one nginx config renderer, for the local stack
# (./pilotlight, scripts/nginx.sh) and the compose nginx container
# (nginx/compose/entrypoint.sh).
#
#   render.sh OUT_DIR --servers SVC=ADDR[,ADDR...] ...   an upstream per service,
#                                 one server per pool (ADDR: unix:/path.sock or host:port)
#       [--status SVC=ADDR[,ADDR...] ...]  its pools' status sockets (PL_STATUS_LISTEN):
#                                 _status and _metrics go there, answered by the masters
#   render.sh OUT_DIR --resolve PORT                     each service by its own name
#                                 at PORT, resolved at request time (PL_RESOLVER, PL_RESOLVER_VALID)
#
# Either way, a service whose PL_UPSTREAM_<SVC> is set (space-separated
# host:port and unix:/path entries: its pools on other hosts) gets exactly
# those servers instead (no --servers needed for it), and PL_NCHAN_REDIS_URL
# puts the live chat channels in Redis (several fronts share them).
#
# In: the templates beside this script (PL_NGINX_SRC): pilotlight.conf.tmpl
# and every *.conf, with {{NAME}} placeholders; the service list
# (PL_SERVICES_FILE, default services/list beside this nginx/ directory); the
# settings of nginx/defaults.env from the environment; PL_RUN_DIR and
# PL_LOG_DIR (nginx's pid file and logs), PL_NGINX_DIR (where the rendered
# files will live; default OUT_DIR), PL_WEB_ROOT, PL_NGINX_USER,
# PL_TLS_CERT_FILE and PL_TLS_KEY_FILE (both required: callers make a
# self-signed pair with nginx/self-signed.sh); PL_OPENAPI_FILE, the OpenAPI
# document the build made (optional: without it /api/openapi.json is 404).
# Out: OUT_DIR/nginx.conf, the *.conf files, errors/, openapi.json, and
# generated: upstreams.conf (http level: `upstream` or resolver, the
# $pl_up_<svc> every fastcgi_pass names, the FastCGI timeouts and retries,
# and Redis's upstream when there is one), api_services.conf (the /api/<svc>
# locations, included by api.conf), nchan_store.conf (where nchan keeps
# channels, included by its two locations: shared memory, or Redis) and
# cors_maps.conf from PL_CORS_ORIGINS, and from PL_TRUSTED_PROXIES
# proxies_maps.conf (http level: $pl_https) and proxies.conf (the public
# server's realip settings). Every value is checked before
# it goes into the config; exit status 1 with a message when one is wrong.
set -euo pipefail

readonly NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
readonly HEADERS_MORE_MODULE=/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so
readonly SAFE_VALUE='^[A-Za-z0-9_./:@+ -]+$'   # nothing that could end a directive or a sed expression
readonly SERVICE_NAME='^[a-z][a-z0-9]{0,30}$'
readonly UPSTREAM_SERVER='^(unix:/[A-Za-z0-9_./@+-]+|[A-Za-z0-9_.-]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5})$'
readonly PROXY_CIDR='^([0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?)$'
readonly REDIS_URL='^(rediss?://)?([A-Za-z0-9_.+-]*:[A-Za-z0-9_.+-]+@)?[A-Za-z0-9_.-]+(:[0-9]{1,5})?(/[0-9]{1,2})?$'

die() { printf 'render.sh: %s\n' "$*" >&2; exit 1; }

src=${PL_NGINX_SRC:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)}
# shellcheck source-path=SCRIPTDIR source=defaults.env
. "$src/defaults.env"

# read_services FILE: SERVICES, the names in the list (one a line), checked.
read_services() {
  local name
  [[ -r $1 ]] || die "the service list $1 is not readable"
  SERVICES=()
  while IFS= read -r name || [[ -n $name ]]; do
    [[ $name =~ $SERVICE_NAME ]] || die "$1: '$name' is not a service name ([a-z][a-z0-9]*)"
    SERVICES+=("$name")
  done <"$1"
  ((${#SERVICES[@]} > 0)) || die "the service list $1 names no service"
}

# check_settings: the formats nginx needs (a bad one fails here, not in nginx -t).
check_settings() {
  [[ $PL_HSTS_MAX_AGE =~ ^(0|[1-9][0-9]{0,8})$ ]] ||
    die "PL_HSTS_MAX_AGE must be a number of seconds, not '$PL_HSTS_MAX_AGE'"
  [[ $PL_NCHAN_SHM_SIZE =~ ^[1-9][0-9]*[kKmM]$ ]] ||
    die "PL_NCHAN_SHM_SIZE must be a size like 64m, not '$PL_NCHAN_SHM_SIZE'"
  local t url cidr
  for t in PL_UPSTREAM_CONNECT_TIMEOUT PL_UPSTREAM_READ_TIMEOUT; do
    [[ ${!t} =~ ^[1-9][0-9]{0,4}(ms|s|m)?$ ]] || die "$t must be a time like 2s or 500ms, not '${!t}'"
  done
  for url in $PL_NCHAN_REDIS_URL; do
    [[ $url =~ $REDIS_URL ]] ||
      die "PL_NCHAN_REDIS_URL: '$url' is not redis://[user:password@]host[:port][/db] (or host:port)"
  done
  [[ -n ${PL_TLS_CERT_FILE:-} && -n ${PL_TLS_KEY_FILE:-} ]] || die "PL_TLS_CERT_FILE and PL_TLS_KEY_FILE are required"
  [[ -f $NCHAN_MODULE ]] || die "$NCHAN_MODULE is missing (package libnginx-mod-nchan)"
  [[ -f $HEADERS_MORE_MODULE ]] ||
    die "$HEADERS_MORE_MODULE is missing (package libnginx-mod-http-headers-more-filter)"
  [[ $PL_CORS_MAX_AGE =~ ^(0|[1-9][0-9]{0,5})$ ]] ||
    die "PL_CORS_MAX_AGE must be a number of seconds, not '$PL_CORS_MAX_AGE'"
  read -ra TRUSTED <<<"${PL_TRUSTED_PROXIES//,/ }"
  for cidr in "${TRUSTED[@]}"; do
    [[ $cidr =~ $PROXY_CIDR ]] ||
      die "PL_TRUSTED_PROXIES: '$cidr' is not an address or CIDR (like 10.0.0.0/8 or fd00::/8)"
  done
  [[ -z ${PL_OPENAPI_FILE:-} || -r $PL_OPENAPI_FILE ]] || die "PL_OPENAPI_FILE $PL_OPENAPI_FILE is not readable"
}

# cors_maps: cors_maps.conf (http level), CORS as nginx maps; cors.conf puts
# their values into the public server's answers. An origin of
# PL_CORS_ORIGINS gets its own Access-Control-Allow-Origin (with credentials)
# on the public listener's /api/ answers and preflights; `*` lets any other
# origin in without credentials. An empty list lets none in and changes no
# answer (no Vary either).
# shellcheck disable=SC2016 # $pl_*, $http_* and $sent_http_* are nginx variables
cors_maps() {
  local origin any=0 n=0 origins=()
  read -r -a origins <<<"${PL_CORS_ORIGINS//,/ }"
  cat <<'EOF'
# made by nginx/render.sh (cors_maps) from PL_CORS_ORIGINS and PL_CORS_MAX_AGE.
# Only /api/ on the public listener takes part in CORS ($pl_request_path: the
# path asked for, also in nginx's own error pages).
map "$pl_internal$pl_request_path" $pl_cors_api {
    default         0;
    "~^0/api(/|$)"  1;
}
EOF
  printf 'map "$pl_cors_api $http_origin" $pl_cors_origin {\n    default  "";\n'
  for origin in "${origins[@]}"; do
    if [[ $origin == '*' ]]; then
      any=1
      continue
    fi
    [[ $origin =~ ^https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[1-9][0-9]{0,4})?$ ]] ||
      die "PL_CORS_ORIGINS: '$origin' is not an origin (scheme://host[:port], lower case, no path)"
    printf '    "1 %s"  "%s";\n' "$origin" "$origin"
    n=$((n + 1))
  done
  if ((any)); then
    printf '    "~^1 ."  "*";\n'
  fi
  printf '}\n'
  # an answer that depends on Origin says so, beside what it varies on already
  printf 'map "$pl_cors_api|$sent_http_vary" $pl_cors_vary {\n    "~^0\\|(?<pl_vary>.*)$"  $pl_vary;\n'
  if ((n > 0 || any)); then
    printf '    "~^1\\|$"  "Origin";\n    "~^1\\|(?<pl_vary>.+)$"  "$pl_vary, Origin";\n'
  else
    printf '    "~^1\\|(?<pl_vary>.*)$"  $pl_vary;\n'
  fi
  printf '}\n'
  cat <<'EOF'
# credentials (cookies) only for a listed origin, never with *
map $pl_cors_origin $pl_cors_credentials {
    default  "true";
    ""       "";
    "*"      "";
}
map $pl_cors_origin $pl_cors_expose {
    default  "ETag, Location, RateLimit, RateLimit-Policy, Retry-After, X-Request-Id, Idempotent-Replayed";
    ""       "";
}
# a preflight: OPTIONS from an allowed origin, naming the method it means to use
map "$request_method $pl_cors_origin $http_access_control_request_method" $pl_cors_preflight {
    default              0;
    "~^OPTIONS \S+ \S"   1;
}
map $pl_cors_preflight $pl_cors_allow_methods {
    default  "";
    1        "GET, HEAD, POST, PATCH, DELETE";
}
map $pl_cors_preflight $pl_cors_allow_headers {
    default  "";
    1        "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key";
}
EOF
  printf 'map $pl_cors_preflight $pl_cors_max_age {\n    default  "";\n    1        "%s";\n}\n' "$PL_CORS_MAX_AGE"
}

# proxies_maps: proxies_maps.conf (http level). $pl_https is "on" when the
# request is HTTPS: nginx's own TLS ($https), or on the public listener a
# plain-HTTP request from a trusted proxy (PL_TRUSTED_PROXIES, by the peer's
# own address, $realip_remote_addr) that says X-Forwarded-Proto: https (it
# ended TLS). What any other peer says in X-Forwarded-Proto counts for
# nothing. fastcgi.conf passes it as HTTPS (the refresh cookie's Secure), the
# HSTS map and the compose entrypoint's redirect read it.
# shellcheck disable=SC2016 # $pl_*, $https, $http_* are nginx variables
proxies_maps() {
  local cidr
  printf '# made by nginx/render.sh (proxies_maps) from PL_TRUSTED_PROXIES\n'
  printf 'geo $realip_remote_addr $pl_trusted_proxy {\n    default  0;\n'
  for cidr in "${TRUSTED[@]}"; do printf '    %s  1;\n' "$cidr"; done
  printf '}\n'
  cat <<'EOF'
map "$https|$pl_internal|$pl_trusted_proxy|$http_x_forwarded_proto" $pl_https {
    default                "";
    "~^on\|"               on;
    "~*^\|0\|1\|https$"     on;
}
EOF
}

# proxies: proxies.conf (the public server): from a trusted proxy the
# client's address ($remote_addr, the services' REMOTE_ADDR: rate limits,
# sessions, the access log) is the last address in X-Forwarded-For that is
# not itself a trusted proxy; from any other peer, the peer's. Nothing when
# PL_TRUSTED_PROXIES is empty: the peer is the client.
proxies() {
  local cidr
  printf '# made by nginx/render.sh (proxies) from PL_TRUSTED_PROXIES\n'
  for cidr in "${TRUSTED[@]}"; do printf 'set_real_ip_from %s;\n' "$cidr"; done
  if ((${#TRUSTED[@]} > 0)); then
    printf 'real_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n'
  else
    printf '# (none: PL_TRUSTED_PROXIES is empty; no peer'"'"'s X-Forwarded-For is trusted)\n'
  fi
}

# sed_args: SED, a sed expression per placeholder, each value checked.
sed_args() {
  local name value
  local -A vals=([NGINX_USER]=$PL_NGINX_USER [NGINX_WORKERS]=$PL_NGINX_WORKERS
    [RUN_DIR]=$PL_RUN_DIR [LOG_DIR]=$PL_LOG_DIR [NGINX_DIR]=$PL_NGINX_DIR [WEB_ROOT]=$PL_WEB_ROOT
    [HTTP_BIND]=$PL_HTTP_BIND [HTTP_PORT]=$PL_HTTP_PORT [HTTPS_PORT]=$PL_HTTPS_PORT
    [TLS_CERT_FILE]=$PL_TLS_CERT_FILE [TLS_KEY_FILE]=$PL_TLS_KEY_FILE
    [INTERNAL_BIND]=$PL_INTERNAL_BIND [INTERNAL_PORT]=$PL_INTERNAL_PORT
    [NCHAN_SHM_SIZE]=$PL_NCHAN_SHM_SIZE [HSTS_MAX_AGE]=$PL_HSTS_MAX_AGE)
  SED=()
  for name in "${!vals[@]}"; do
    value=${vals[$name]}
    [[ $value =~ $SAFE_VALUE ]] ||
      die "the nginx setting $name has characters not allowed in the config: '$value'"
    SED+=(-e "s|{{$name}}|$value|g")
  done
}

# upstream_var SVC: the name of its PL_UPSTREAM_<SVC> variable.
upstream_var() { printf 'PL_UPSTREAM_%s' "${1^^}"; }

# upstream_block NAME ADDR...: an upstream, one server per pool. A server
# that refused or timed out is left alone for 5 s (the zone shares that among
# nginx's workers); its requests go on to the next (fastcgi_next_upstream in
# upstreams_common), then nginx tries it again.
upstream_block() {
  local name=$1 addr
  shift
  printf 'upstream %s {\n    zone pl_up_%s 64k;\n' "$name" "$name"
  for addr in "$@"; do
    printf '    server %s max_fails=1 fail_timeout=5s;\n' "$addr"
  done
  printf '}\n'
}

# upstream_map SVC [STATUS_UPSTREAM]: the $pl_up_<svc> every fastcgi_pass of
# the service names: its upstream, and for _status and _metrics the pools'
# masters' upstream when there is one.
# shellcheck disable=SC2016 # $uri and $pl_up_* are nginx variables
upstream_map() {
  printf 'map $uri $pl_up_%s {\n' "$1"
  [[ -z ${2:-} ]] || printf '    /api/%s/_status %s;\n    /api/%s/_metrics %s;\n' "$1" "$2" "$1" "$2"
  printf '    default %s;\n}\n' "$1"
}

# upstream_listed SVC: the service's upstream and map from its
# PL_UPSTREAM_<SVC> (pools on other hosts); status 1 when that is empty.
upstream_listed() {
  local var addrs
  var=$(upstream_var "$1")
  [[ -n ${!var:-} ]] || return 1
  read -ra addrs <<<"${!var}"
  upstream_block "$1" "${addrs[@]}"
  upstream_map "$1"
}

# upstreams_common: what every upstream shares, and Redis's when there is one.
# A request is passed on to the next server when the connection failed or
# timed out, or when the server timed out before answering an idempotent
# request (GET, HEAD...): never a POST, PATCH or DELETE that a server may have
# begun (nginx's default without non_idempotent), which fails as a JSON 502
# or 504 instead. A server on a host that vanished is given up on after the
# connect timeout; a request it held, after the read timeout.
upstreams_common() {
  local url
  printf 'fastcgi_connect_timeout %s;\nfastcgi_read_timeout %s;\n' "$PL_UPSTREAM_CONNECT_TIMEOUT" \
    "$PL_UPSTREAM_READ_TIMEOUT"
  printf 'fastcgi_next_upstream error timeout;\n'
  [[ -n $PL_NCHAN_REDIS_URL ]] || return 0
  # nchan's channels in Redis: every front sharing it delivers what any front
  # published. Reconnect within about 2 s of Redis's return; a command Redis
  # does not answer in 2 s drops the connection.
  printf '# live chat channels in Redis (PL_NCHAN_REDIS_URL)\nupstream pl_nchan_redis {\n'
  for url in $PL_NCHAN_REDIS_URL; do printf '    nchan_redis_server %s;\n' "$url"; done
  printf '    nchan_redis_connect_timeout 2s;\n    nchan_redis_command_timeout 2s;\n'
  printf '    nchan_redis_reconnect_delay 500ms;\n    nchan_redis_reconnect_delay_max 2s;\n}\n'
}

# upstreams_servers SVC...: upstreams.conf from the --servers of each service
# (or its PL_UPSTREAM_<SVC>).
upstreams_servers() {
  local svc addrs
  printf '# made by nginx/render.sh: one server per pool of a service\n'
  upstreams_common
  for svc in "$@"; do
    upstream_listed "$svc" && continue
    IFS=, read -ra addrs <<<"${SERVERS[$svc]}"
    upstream_block "$svc" "${addrs[@]}"
    if [[ -n ${STATUS[$svc]:-} ]]; then
      # _status and _metrics go to the pools' masters, which answer them
      # from the scoreboard without waking a worker (--status)
      IFS=, read -ra addrs <<<"${STATUS[$svc]}"
      upstream_block "${svc}_status" "${addrs[@]}"
      upstream_map "$svc" "${svc}_status"
    else
      upstream_map "$svc"
    fi
  done
}

# upstreams_resolve PORT SVC...: upstreams.conf naming each service's host
# (or its PL_UPSTREAM_<SVC>). A variable in fastcgi_pass makes nginx resolve
# the name per request (cached for PL_RESOLVER_VALID) instead of once at
# start, so a scaled or replaced container is found. A container that is
# gone stays in nginx's answer for up to PL_RESOLVER_VALID, and its address
# answers nothing (no refusal): the connect timeout
# (PL_UPSTREAM_CONNECT_TIMEOUT) sends the request on to the next one.
# shellcheck disable=SC2016 # $uri and $pl_up_* are nginx variables
upstreams_resolve() {
  local port=$1 svc
  shift
  printf '# made by nginx/render.sh: services by name through the resolver\n'
  printf 'resolver %s valid=%s ipv6=off;\nresolver_timeout 2s;\n' "$PL_RESOLVER" "$PL_RESOLVER_VALID"
  upstreams_common
  for svc in "$@"; do
    upstream_listed "$svc" ||
      printf 'map $uri $pl_up_%s {\n    default %s:%s;\n}\n' "$svc" "$svc" "$port"
  done
}

# nchan_store: what the two nchan locations include: Redis, or nothing (each
# nginx's shared memory).
nchan_store() {
  printf '# made by nginx/render.sh: where nchan keeps the live channels\n'
  if [[ -n $PL_NCHAN_REDIS_URL ]]; then
    printf 'nchan_redis_pass pl_nchan_redis;\n'
  else
    printf '# (this nginx'"'"'s shared memory: PL_NCHAN_REDIS_URL is empty)\n'
  fi
}

# api_services SVC...: each service's /api/<svc> prefix to its pool.
# shellcheck disable=SC2016 # $uri and $pl_up_* are nginx variables
api_services() {
  local svc
  printf '# made by nginx/render.sh from the service list: /api/<svc> goes to the\n'
  printf "# service's pool. The exact prefix routes too: GET /api/projects is the\n"
  printf '# projects list.\n'
  for svc in "$@"; do
    printf 'location = /api/%s { fastcgi_pass $pl_up_%s; }\n' "$svc" "$svc"
    printf 'location /api/%s/ { fastcgi_pass $pl_up_%s; }\n' "$svc" "$svc"
  done
}

declare -A SERVERS  # --servers: service name -> its pools' addresses
declare -A STATUS   # --status: service name -> its pools' status sockets
declare -a SERVICES SED TRUSTED  # TRUSTED: PL_TRUSTED_PROXIES, checked

main() {
  local out=${1:-} port='' svc f list var addr
  SERVERS=() STATUS=() SERVICES=() SED=() TRUSTED=()
  [[ -n $out && $out != -* ]] || die "usage: render.sh OUT_DIR (--servers SVC=ADDR[,ADDR...]... | --resolve PORT)"
  shift
  while (($# > 0)); do
    case $1 in
    --servers)
      [[ ${2:-} == *=?* ]] || die "--servers takes SVC=ADDR[,ADDR...], not '${2:-}'"
      SERVERS[${2%%=*}]=${2#*=}
      shift 2
      ;;
    --status)
      [[ ${2:-} == *=?* ]] || die "--status takes SVC=ADDR[,ADDR...], not '${2:-}'"
      STATUS[${2%%=*}]=${2#*=}
      shift 2
      ;;
    --resolve)
      [[ ${2:-} =~ ^[0-9]{1,5}$ ]] || die "--resolve takes a port, not '${2:-}'"
      port=$2
      shift 2
      ;;
    *) die "unknown argument: $1" ;;
    esac
  done
  list=${PL_SERVICES_FILE:-$(dirname -- "$src")/services/list}
  read_services "$list"
  : "${PL_NGINX_DIR:=$out}" "${PL_RUN_DIR:?}" "${PL_LOG_DIR:?}" "${PL_WEB_ROOT:?}" "${PL_NGINX_USER:?}"
  check_settings
  if [[ -n $port ]]; then
    ((${#SERVERS[@]} == 0)) || die "--servers and --resolve exclude each other"
    [[ ${PL_RESOLVER:-} =~ $SAFE_VALUE && ${PL_RESOLVER_VALID:-} =~ ^[0-9]+[smh]?$ ]] ||
      die "--resolve needs PL_RESOLVER (an address) and PL_RESOLVER_VALID (like 5s)"
  else
    for svc in "${!SERVERS[@]}"; do
      [[ " ${SERVICES[*]} " == *" $svc "* ]] || die "--servers names $svc, which is not in $list"
      [[ ${SERVERS[$svc]} =~ ^[A-Za-z0-9_./:@+,-]+$ ]] || die "--servers $svc: bad address '${SERVERS[$svc]}'"
    done
    for svc in "${!STATUS[@]}"; do
      [[ " ${SERVICES[*]} " == *" $svc "* ]] || die "--status names $svc, which is not in $list"
      [[ ${STATUS[$svc]} =~ ^[A-Za-z0-9_./:@+,-]+$ ]] || die "--status $svc: bad address '${STATUS[$svc]}'"
    done
    for svc in "${SERVICES[@]}"; do
      var=$(upstream_var "$svc")
      [[ -n ${SERVERS[$svc]:-} || -n ${!var:-} ]] ||
        die "no --servers for $svc (every service of $list needs its pools)"
    done
  fi
  for svc in "${SERVICES[@]}"; do
    var=$(upstream_var "$svc")
    for addr in ${!var:-}; do
      [[ $addr =~ $UPSTREAM_SERVER ]] || die "$var: '$addr' is not host:port or unix:/path"
    done
  done
  sed_args
  mkdir -p "$out/errors"
  sed "${SED[@]}" "$src/pilotlight.conf.tmpl" >"$out/nginx.conf"
  for f in "$src"/*.conf; do
    sed "${SED[@]}" "$f" >"$out/${f##*/}"
  done
  cp "$src"/errors/* "$out/errors/"
  if grep -n '{{[A-Z_]*}}' "$out"/*.conf >&2; then
    die "the templates in $src have placeholders this renderer does not know"
  fi
  if [[ -n $port ]]; then
    upstreams_resolve "$port" "${SERVICES[@]}" >"$out/upstreams.conf"
  else
    upstreams_servers "${SERVICES[@]}" >"$out/upstreams.conf"
  fi
  api_services "${SERVICES[@]}" >"$out/api_services.conf"
  cors_maps >"$out/cors_maps.conf"
  proxies_maps >"$out/proxies_maps.conf"
  proxies >"$out/proxies.conf"
  if [[ -n ${PL_OPENAPI_FILE:-} ]]; then
    cp "$PL_OPENAPI_FILE" "$out/openapi.json"
  fi
  nchan_store >"$out/nchan_store.conf"
}

main "$@"
