# scripts/status.sh: `./pilotlight status`, one screen: what runs (pids,
# workers), each pool's figures from its JSON status page and nginx's
# counters. Exit status 0 when everything runs, 3 otherwise (something
# stopped, or a pool lost its supervisor).
# shellcheck shell=bash

# pool_status_json INST: the pool's GET /api/<svc>/_status (the scoreboard as
# JSON), asked over FastCGI on its master's status socket (cgi-fcgi), so each
# pool of a scaled service answers for itself and no worker is woken (a pool
# started by an older pilotlight has none: its own socket then, where a
# worker answers).
pool_status_json() {
  local path text sock
  path=/api/$(inst_svc "$1")/_status
  sock=$(status_socket "$1")
  [[ -S $sock ]] || sock=$RUN/$1.sock
  text=$(env -i REQUEST_METHOD=GET REQUEST_URI="$path" DOCUMENT_URI="$path" SCRIPT_NAME="$path" \
    QUERY_STRING= CONTENT_LENGTH= CONTENT_TYPE= SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 \
    REQUEST_ID="status-$$" PL_INTERNAL=1 timeout 5 cgi-fcgi -bind -connect "$sock" 2>/dev/null) || return 1
  # the body: what follows the header block's empty line
  sed '1,/^\r\{0,1\}$/d' <<<"$text" | jq -ce 'select(.workers and .counters)' 2>/dev/null
}

# The figures of one line, from the status JSON, tab-separated: workers
# idle, busy, waiting, max_children; requests (all, 2xx, 4xx, 5xx) and the
# mean handler time in ms, summed over the handlers; spawns, idle exits,
# crashes, max_children hits; invocations refused for depth and budget.
# shellcheck disable=SC2016 # jq's $variables
readonly STATUS_FIGURES='
  def sum: add // 0;
  def status_class($c): [.handlers[].statuses | to_entries[] | select(.key | startswith($c)) | .value] | sum;
  ([.handlers[].busy_us] | sum) as $us | ([.handlers[].invocations] | sum) as $n |
  [.workers.idle, .workers.busy, .workers.waiting, .max_children,
   ([.handlers[].statuses[]] | sum), status_class("2"), status_class("4"), status_class("5"),
   (if $n > 0 then $us / $n / 1000 else 0 end),
   .counters.spawns, .counters.idle_exits, .counters.crashes, .counters.max_children_reached,
   .counters.invoke_refused_depth, .counters.invoke_refused_budget] | @tsv'

# status_pool_line INST JSON: the pool's metrics line.
status_pool_line() {
  local f
  if [[ -z $2 ]]; then
    printf '  %-10s no metrics (%s/%s.sock did not answer %s)\n' "$1" "$RUN" "$1" "/api/$(inst_svc "$1")/_status"
    return 0
  fi
  IFS=$'\t' read -ra f < <(jq -r "$STATUS_FIGURES" <<<"$2")
  printf '  %-10s %2d/%d/%d of %-3d %8d  %7d %6d %6d  %7.1f  %6d %6d %6d %6d  %d/%d\n' "$1" "${f[@]}"
}

# status_nginx_line: nginx's stub_status (internal listener) in one line.
status_nginx_line() {
  local text
  text=$(curl -s --fail --max-time 3 "$INTERNAL_URL/nginx_status" 2>/dev/null) || {
    printf '  nginx      no stub_status (%s/nginx_status did not answer)\n' "$INTERNAL_URL"
    return 0
  }
  awk '
    /^Active connections:/ { active = $3 }
    /^ *[0-9]+ +[0-9]+ +[0-9]+ *$/ { accepted = $1; handled = $2; requests = $3 }
    /^Reading:/ { reading = $2; writing = $4; waiting = $6 }
    END {
      printf "  nginx      connections %d (reading %d, writing %d, waiting %d), accepted %d, handled %d, requests %d\n",
        active, reading, writing, waiting, accepted, handled, requests
    }' <<<"$text"
}

# status_show: the screen. The URLs come from what the last `up` wrote.
status_show() {
  local pid svc inst rc=0 name value json nginx_up=0
  local -A figures=()
  if [[ -f $RUN/stack.env ]]; then
    while IFS='=' read -r name value; do
      case $name in HTTP_URL) HTTP_URL=$value ;; HTTPS_URL) HTTPS_URL=$value ;; INTERNAL_URL) INTERNAL_URL=$value ;; esac
    done <"$RUN/stack.env"
    printf 'Pilotlight  %s  %s  internal %s\n' "$HTTP_URL" "$HTTPS_URL" "$INTERNAL_URL"
  else
    printf 'Pilotlight  (not up: no %s)\n' "$RUN/stack.env"
  fi
  printf '\nprocesses\n'
  if pid=$(proc_pid "$RUN/mysqld.pid" "$MARIADBD"); then
    printf '  %-10s running  pid %-7s socket %s\n' mariadb "$pid" "$DB_SOCKET"
  else
    printf '  %-10s stopped\n' mariadb
    rc=3
  fi
  for svc in "${SERVICES[@]}"; do
    for inst in $(instances_of "$svc"); do
      if pid=$(pool_pid "$inst"); then
        json=$(pool_status_json "$inst") || json=''
        figures[$inst]=$json
        printf '  %-10s running  pid %-7s workers %s\n' "$inst" "$pid" \
          "$(if [[ -n $json ]]; then jq -r .workers.total <<<"$json"; else echo '?'; fi)"
        if pool_supervisor_lost "$inst"; then
          printf '  %-10s but its supervisor is gone: nothing restarts a master that dies (./pilotlight up starts a new one, with no outage)\n' ''
          rc=3
        fi
      else
        printf '  %-10s stopped\n' "$inst"
        rc=3
      fi
    done
  done
  if pid=$(nginx_pid); then
    printf '  %-10s running  pid %-7s workers %s\n' nginx "$pid" "$(proc_children "$pid" | wc -l)"
    nginx_up=1
  else
    printf '  %-10s stopped\n' nginx
    rc=3
  fi
  if ((${#figures[@]} > 0 || nginx_up)); then
    printf '\nmetrics (each pool, since it started)\n'
    printf '  %-10s %-13s %8s  %7s %6s %6s  %7s  %6s %6s %6s %6s  %s\n' pool 'idle/busy/wt' requests \
      2xx 4xx 5xx 'mean ms' spawns idle-x crash max-hit 'refused d/b'
    for svc in "${SERVICES[@]}"; do
      for inst in $(instances_of "$svc"); do
        [[ -z ${figures[$inst]+set} ]] || status_pool_line "$inst" "${figures[$inst]}"
      done
    done
    ((!nginx_up)) || status_nginx_line
  fi
  # the disk matters most when something stopped
  disk_warning
  return "$rc"
}
