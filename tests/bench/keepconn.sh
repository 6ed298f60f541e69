#!/usr/bin/env bash
# keepconn.sh: what fastcgi_keep_conn would do in front of workers that serve
# one connection at a time (issue 18; docs/testing.md, "Where the time goes").
# A throw-away nginx (2 workers, its own directory, port PORT) in front of
# this build's pl-fcgi-bare and pl-http-keepalive (4 processes each): wrk on
# nginx's constant, kept-alive HTTP, FastCGI with a connection per request,
# FastCGI with fastcgi_keep_conn, then FastCGI with a connection per request
# again while nginx still holds the kept ones. Prints req/s, p50, p99 and
# nginx's CPU per request (/proc). Figures only; stops what it started.
# usage: tests/bench/keepconn.sh [SECONDS (4)] [CONNECTIONS (64)] [PORT (28395)]
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
build=${PL_BUILD_DIR:-$here/../../build}/tests/bench
secs=${1:-4} conns=${2:-64} port=${3:-28395}
for b in pl-fcgi-bare pl-http-keepalive; do
  [[ -x $build/$b ]] || { echo "keepconn: $build/$b is missing (ninja -C build)" >&2; exit 1; }
done
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  echo "keepconn: needs wrk and nginx" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/pl-keepconn.XXXXXX)
chmod 755 "$dir"  # nginx's workers (not root) reach the sockets
mkdir -p "$dir/logs"
cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream bare_close { server unix:$dir/bare.sock; }
    upstream bare_keep  { server unix:$dir/bare.sock; keepalive 64; }
    upstream http_keep  { server unix:$dir/http.sock; keepalive 64; }
    server {
        listen 127.0.0.1:$port;
        location = /close { fastcgi_pass bare_close; }
        location = /keep  { fastcgi_pass bare_keep; fastcgi_keep_conn on; fastcgi_read_timeout 10s; }
        location = /http  { proxy_pass http://http_keep; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location = /const { default_type application/json; return 200 '{"status":"ok","service":"nginx","database":"none","pid":0}'; }
    }
}
CONF
pids=()
cleanup() {
  if [[ -f $dir/nginx.pid ]]; then kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$dir"
}
trap cleanup EXIT
setsid "$build/pl-fcgi-bare" "unix:$dir/bare.sock" 4 >"$dir/logs/bare.log" 2>&1 & pids+=($!); disown
setsid "$build/pl-http-keepalive" "unix:$dir/http.sock" 4 >"$dir/logs/http.log" 2>&1 & pids+=($!); disown
nginx -p "$dir" -c "$dir/nginx.conf"
for _ in $(seq 50); do [[ -S $dir/bare.sock && -S $dir/http.sock && -f $dir/nginx.pid ]] && break; sleep 0.1; done
ngx=$(cat "$dir/nginx.pid")
# nginx's CPU so far (utime + stime of its master and workers), in clock ticks
ticks() {
  local t=0 p u s
  for p in $ngx $(pgrep -P "$ngx"); do
    read -r u s < <(cut -d' ' -f14,15 "/proc/$p/stat")
    t=$((t + u + s))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)
echo "keepconn: nginx 2 workers; responders 4 processes each; wrk -t2 -c$conns -d${secs}s; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-34s %10s %10s %10s %14s  %s\n" "" "req/s" "p50" "p99" "nginx us/req" "errors"
for what in const http close keep "close after keep"; do
  loc=${what%% *}
  wrk -t2 -c"$conns" -d1s "http://127.0.0.1:$port/$loc" >/dev/null 2>&1 || true
  [[ $what == "close after keep" ]] && { loc=close; }
  c0=$(ticks)
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --timeout 12s --latency "http://127.0.0.1:$port/$loc" 2>&1 || true)
  c1=$(ticks)
  n=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  err=$(grep -E "Socket errors|Non-2xx" <<<"$out" | tr '\n' ' ' || true)
  us=$(awk -v d=$((c1 - c0)) -v n="${n:-0}" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.1f", d * 1e6 / hz / n; else print "-" }')
  printf "%-34s %10s %10s %10s %14s  %s\n" "$what" "${rps:-0}" "${p50:--}" "${p99:--}" "$us" "$err"
done
