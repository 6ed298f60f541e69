# scripts/nginx.sh: the stack's nginx: its TLS certificate, its config
# (rendered by nginx/render.sh into $NGINX_DIR, tested, rolled back when the
# test fails), start, reload and stop by its pid file ($RUN/nginx.pid).
# shellcheck shell=bash

readonly NGINX=/usr/sbin/nginx

# ensure_tls_cert: the HTTPS listener's certificate and key. Named by
# PL_TLS_CERT_FILE and PL_TLS_KEY_FILE (both or neither), else a self-signed
# one for localhost, made once into $SECRETS (nginx/self-signed.sh).
ensure_tls_cert() {
  if [[ -n $PL_TLS_CERT_FILE || -n $PL_TLS_KEY_FILE ]]; then
    [[ -n $PL_TLS_CERT_FILE && -n $PL_TLS_KEY_FILE ]] ||
      die "set both PL_TLS_CERT_FILE and PL_TLS_KEY_FILE, or neither"
    [[ -r $TLS_CERT ]] || die "PL_TLS_CERT_FILE $TLS_CERT is not readable"
    [[ -r $TLS_KEY ]] || die "PL_TLS_KEY_FILE $TLS_KEY is not readable"
    return 0
  fi
  [[ -s $TLS_CERT && -s $TLS_KEY ]] && return 0
  say "making a self-signed TLS certificate in $SECRETS (PL_TLS_CERT_FILE/PL_TLS_KEY_FILE name your own)"
  sh "$PL_ROOT/nginx/self-signed.sh" "$TLS_CERT" "$TLS_KEY" || die "openssl could not make the TLS certificate"
}

nginx_cmd() {
  "$NGINX" -p "$NGINX_DIR/" -c "$NGINX_DIR/nginx.conf" -e "$LOG/nginx-error.log" "$@"
}

nginx_pid() { proc_pid "$RUN/nginx.pid" "$NGINX"; }

# nginx_user: who the workers run as. They must reach the sockets under
# $RUN; if some parent directory shuts out `nobody`, fall back to root.
nginx_user() {
  local user=${PL_NGINX_USER%% *}
  if ((EUID == 0)) && [[ $user != root ]] && ! runuser -u "$user" -- test -x "$RUN"; then
    warn "user $user cannot reach $RUN (a parent directory is not searchable); nginx workers run as root"
    printf 'root root'
    return 0
  fi
  printf '%s' "$PL_NGINX_USER"
}

# nginx_upstreams: nginx/render.sh's --servers, a unix socket per pool, and
# --status, each pool's status socket (pool_env's PL_STATUS_LISTEN) when
# every pool of the service has one (a pool from an older pilotlight has
# none: then its workers answer _status and _metrics, as they used to).
nginx_upstreams() {
  local svc inst list status all
  for svc in "${SERVICES[@]}"; do
    list='' status='' all=1
    for inst in $(instances_of "$svc"); do
      list+=${list:+,}unix:$RUN/$inst.sock
      status+=${status:+,}unix:$(status_socket "$inst")
      [[ -S $(status_socket "$inst") ]] || all=0
    done
    printf '%s\n' --servers "$svc=$list"
    ((all == 0)) || printf '%s\n' --status "$svc=$status"
  done
}

# render_nginx: the config from nginx/ into $NGINX_DIR, checked with nginx -t.
# Sets NGINX_CHANGED=1 when the files differ from what nginx had; a config
# that fails the test is rolled back.
render_nginx() {
  local f staging=$NGINX_DIR/staging backup=$NGINX_DIR/previous args=() files=()
  mapfile -t args < <(nginx_upstreams)
  ensure_tls_cert
  rm -rf "$staging" "$backup"
  PL_NGINX_USER=$(nginx_user) PL_NGINX_DIR=$NGINX_DIR PL_RUN_DIR=$RUN PL_LOG_DIR=$LOG PL_WEB_ROOT=$PL_WEB_ROOT \
    PL_TLS_CERT_FILE=$TLS_CERT PL_TLS_KEY_FILE=$TLS_KEY PL_OPENAPI_FILE=$PL_BUILD_DIR/tools/openapi/openapi.json \
    bash "$PL_ROOT/nginx/render.sh" "$staging" "${args[@]}" ||
    die "rendering the nginx config failed (nginx/render.sh)"
  mapfile -t files < <(cd "$staging" && find . -type f -printf '%P\n' | sort)
  NGINX_CHANGED=0
  for f in "${files[@]}"; do
    cmp -s "$staging/$f" "$NGINX_DIR/$f" || NGINX_CHANGED=1
  done
  if ((NGINX_CHANGED)); then
    for f in "${files[@]}"; do
      if [[ -f $NGINX_DIR/$f ]]; then mkdir -p "$(dirname -- "$backup/$f")" && cp "$NGINX_DIR/$f" "$backup/$f"; fi
      mkdir -p "$(dirname -- "$NGINX_DIR/$f")" && cp "$staging/$f" "$NGINX_DIR/$f"
    done
    if ! nginx_cmd -t -q; then
      for f in "${files[@]}"; do
        if [[ -f $backup/$f ]]; then cp "$backup/$f" "$NGINX_DIR/$f"; else rm -f "$NGINX_DIR/$f"; fi
      done
      rm -rf "$staging" "$backup"
      die "the rendered nginx config fails nginx -t (the previous one is kept)"
    fi
  fi
  rm -rf "$staging" "$backup"
}

# nginx_start: render; start nginx, or reload it when its config changed.
nginx_start() {
  local pid deadline
  render_nginx
  if pid=$(nginx_pid); then
    if ((NGINX_CHANGED)); then
      nginx_reload "$pid"
      say "nginx config changed: reloaded (pid $pid)"
    else
      say "nginx is running (pid $pid)"
    fi
    return 0
  fi
  rm -f "$RUN/nginx.pid"
  # nginx daemonizes itself (its own session), once it has its listeners;
  # what it says before it has its error log goes to that log too
  # shellcheck disable=SC2094
  start-stop-daemon --start --quiet --pidfile "$RUN/nginx.pid" --exec "$NGINX" -- \
    -p "$NGINX_DIR/" -c "$NGINX_DIR/nginx.conf" -e "$LOG/nginx-error.log" \
    </dev/null >>"$LOG/nginx-error.log" 2>&1 9>&- || {
    tail_log "$LOG/nginx-error.log"
    die "nginx did not start (is port $PL_HTTP_PORT, $PL_HTTPS_PORT or $PL_INTERNAL_PORT taken?)"
  }
  deadline=$((SECONDS + PL_START_TIMEOUT))
  until pid=$(nginx_pid); do
    if ((SECONDS >= deadline)); then
      tail_log "$LOG/nginx-error.log"
      die "nginx did not start (is port $PL_HTTP_PORT, $PL_HTTPS_PORT or $PL_INTERNAL_PORT taken?)"
    fi
    sleep 0.1
  done
  say "nginx started (pid $pid) on $HTTP_URL, $HTTPS_URL and $INTERNAL_URL"
}

# nginx_reload PID: reload, and wait until new workers run (a reload is
# asynchronous; until then old workers take new connections).
nginx_reload() {
  local old deadline=$((SECONDS + PL_START_TIMEOUT))
  old=$(proc_children "$1" | sort)
  nginx_cmd -s reload
  until [[ -n $(comm -13 <(printf '%s\n' "$old") <(proc_children "$1" | sort)) ]]; do
    if ((SECONDS >= deadline)); then
      tail_log "$LOG/nginx-error.log"
      die "nginx started no new workers after the reload"
    fi
    sleep 0.1
  done
}

# nginx_stop: gracefully (QUIT: requests in flight finish), then killed.
nginx_stop() {
  local rc=0
  proc_stop nginx "$RUN/nginx.pid" "$NGINX" QUIT || rc=$?
  ((rc != 1)) || say "nginx is not running"
}
