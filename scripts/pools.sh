# scripts/pools.sh: the service pools: their secrets and keys, the settings
# each is started with, scaling (several pools of one service), start, stop
# and reload, and `admin create` (run by the accounts binary).
#
# A pool is the process started (the supervisor, pid in
# $RUN/<inst>.supervisor.pid), the master it keeps running ($RUN/<inst>.pid)
# and the master's workers, on the socket $RUN/<inst>.sock, logging to
# $LOG/<inst>.log. Stopping the supervisor stops the pool for good.
# shellcheck shell=bash

readonly MAX_SCALE=16

# svc_bin SVC: the service's binary in the stack's build.
svc_bin() { printf '%s\n' "$PL_BUILD_DIR/services/$1/pl-$1"; }

# binary_default BIN NAME: the default a service binary has for its setting
# NAME (its --print-defaults, given PL_START_TIMEOUT to answer).
binary_default() {
  timeout -k 1 "$PL_START_TIMEOUT" "$1" --print-defaults 2>/dev/null | sed -n "s/^$2=//p"
}

# svc_reads SVC NAME: the service has a setting NAME (its --print-defaults).
svc_reads() {
  timeout -k 1 "$PL_START_TIMEOUT" "$(svc_bin "$1")" --print-defaults 2>/dev/null | grep -q "^$2="
}

# ensure_secret SVC: the service's DB password, random, made once.
ensure_secret() {
  local file=$SECRETS/db_$1.password
  [[ -s $file ]] && return 0
  (
    umask 077
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$file.tmp"
    mv "$file.tmp" "$file"
  )
}

# ensure_jwt_keys: the Ed25519 key accounts signs access tokens with, and
# the public keys every service verifies them with; made once, by
# `pl-accounts keygen` (when that build of accounts has keys at all).
ensure_jwt_keys() {
  [[ -s $SECRETS/jwt_signing.key && -s $SECRETS/jwt_public.keys ]] && return 0
  svc_reads accounts PL_JWT_SIGNING_KEY_FILE || return 0
  "$(svc_bin accounts)" keygen "$SECRETS/jwt_signing.key" "$SECRETS/jwt_public.keys" >/dev/null ||
    die "pl-accounts keygen could not make the JWT keys in $SECRETS"
}

# svc_env SVC: NAME=VALUE lines for that service: the stack's DB settings,
# keys and URLs (each where the service reads it), then each PL_<SVC>_<NAME>
# of the environment as PL_<NAME> (so PL_PROJECTS_MAX_CHILDREN=4 is projects'
# PL_MAX_CHILDREN). A plain PL_<NAME> reaches every service anyway, through
# the environment.
svc_env() {
  local prefix var
  prefix=PL_$(tr '[:lower:]' '[:upper:]' <<<"$1")_
  printf '%s\n' "PL_DB_SOCKET=$DB_SOCKET" "PL_DB_PASSWORD_FILE=$SECRETS/db_$1.password"
  if [[ -s $SECRETS/jwt_public.keys ]]; then
    printf '%s\n' "PL_JWT_PUBLIC_KEYS_FILE=$SECRETS/jwt_public.keys"
    ! svc_reads "$1" PL_JWT_SIGNING_KEY_FILE || printf '%s\n' "PL_JWT_SIGNING_KEY_FILE=$SECRETS/jwt_signing.key"
  fi
  # chat publishes to nchan through this stack's internal listener (not the
  # default port, which would be the dev stack's while a test stack runs).
  if [[ -z ${PL_NCHAN_PUBLISH_URL:-} ]] && svc_reads "$1" PL_NCHAN_PUBLISH_URL; then
    printf '%s\n' "PL_NCHAN_PUBLISH_URL=$INTERNAL_URL/_pl/chat/publish/"
  fi
  # invocations go through this stack's internal listener, or straight to
  # the callee's pools where their sockets are here (set it empty: all
  # through nginx)
  [[ -n ${PL_GATEWAY_URL:-} ]] || printf '%s\n' "PL_GATEWAY_URL=$INTERNAL_URL"
  [[ -n ${PL_INVOKE_SOCKET_DIR+set} ]] || printf '%s\n' "PL_INVOKE_SOCKET_DIR=$RUN"
  # accounts and every pool share a host: revocations are signalled, not polled
  [[ -n ${PL_REVOCATION_SIGNAL_FILE+set} ]] || printf '%s\n' "PL_REVOCATION_SIGNAL_FILE=$(revocation_signal_file)"
  # mail goes to this stack's sink unless a server is named, and its links
  # to this stack's public URL unless one is named
  if mail_sink_wanted && svc_reads "$1" PL_SMTP_URL; then
    printf '%s\n' "PL_SMTP_URL=smtp://127.0.0.1:$PL_MAIL_SINK_PORT"
  fi
  [[ -n ${PL_PUBLIC_URL:-} ]] || printf '%s\n' "PL_PUBLIC_URL=$HTTP_URL"
  for var in $(compgen -e); do
    [[ $var == "$prefix"* ]] && printf 'PL_%s=%s\n' "${var#"$prefix"}" "${!var}"
  done
  return 0
}

# admin_create EMAIL: makes EMAIL an active admin of this stack. A new account
# takes its password from PL_ADMIN_PASSWORD, else from the terminal or stdin;
# an existing one keeps its password.
admin_create() {
  local email=$1 pw envs
  if [[ -n ${PL_ADMIN_PASSWORD:-} ]]; then
    pw=$PL_ADMIN_PASSWORD
  elif [[ -t 0 ]]; then
    read -rsp "Password for $email (10-128 bytes): " pw
    printf '\n' >&2
  else
    IFS= read -r pw || true
  fi
  mapfile -t envs < <(svc_env accounts)
  printf '%s\n' "$pw" | env "${envs[@]}" "$(svc_bin accounts)" create-admin "$email"
}

# ---- scaling ----------------------------------------------------------------
# A service runs as N pools ("instances"): svc, svc-2 ... svc-N, all servers
# of the service's one nginx upstream. N comes from PL_SCALE_<SVC> (`up
# --scale svc=N` sets it), else what the last `up` ran ($RUN/<svc>.scale).

# scale_of SVC: how many pools it should run.
scale_of() {
  local var n
  var=PL_SCALE_$(tr '[:lower:]' '[:upper:]' <<<"$1")
  n=${!var:-}
  [[ -n $n ]] || n=$(cat "$RUN/$1.scale" 2>/dev/null) || n=1
  if [[ ! $n =~ ^[1-9][0-9]*$ ]] || ((n > MAX_SCALE)); then die "$var must be 1-$MAX_SCALE, not '$n'"; fi
  printf '%s\n' "$n"
}

# instances_of SVC: the instance names it should run, one a line.
instances_of() {
  local n k
  n=$(scale_of "$1")
  printf '%s\n' "$1"
  for ((k = 2; k <= n; k++)); do printf '%s\n' "$1-$k"; done
}

# present_instances SVC: instances that have a pid file (running or not).
present_instances() {
  local f name
  for f in "$RUN/$1.pid" "$RUN/$1.supervisor.pid" "$RUN/$1"-[0-9]*.pid; do
    [[ -e $f ]] || continue
    name=${f##*/}
    name=${name%.pid}
    printf '%s\n' "${name%.supervisor}"
  done | sort -u -t- -k2,2n
}

# unset_scale: commands other than up use the scale the last up ran.
unset_scale() {
  local var
  for var in $(compgen -e PL_SCALE_); do unset "$var"; done
}

inst_svc() { printf '%s\n' "${1%-[0-9]*}"; }

# ---- one pool ---------------------------------------------------------------
# pool_exe INST: the binary its pool runs (the release it was started on or
# swapped to, as its master's /proc/PID/exe read: pool_exe_record), else the
# one it would run now.
pool_exe() {
  local exe
  exe=$(cat "$RUN/$1.exe" 2>/dev/null) || exe=$(readlink -f -- "$(release_link "$(inst_svc "$1")")")
  printf '%s
' "$exe"
}

# pool_proc INST FILE: the pid in $RUN/<inst>.FILE if that process runs the
# pool's release, or the live one (a swap may be under way).
pool_proc() {
  local exe live
  exe=$(pool_exe "$1")
  proc_pid "$RUN/$1.$2" "$exe" && return 0
  live=$(readlink -f -- "$(release_link "$(inst_svc "$1")")") || return 1
  [[ $live != "$exe" ]] && proc_pid "$RUN/$1.$2" "$live"
}

# pool_exe_record INST PID: PID, its new master, runs the live release: that
# release is recorded ($RUN/<inst>.release), and what PID runs is the
# executable its pid files are checked against from now on ($RUN/<inst>.exe:
# the release's file, or what that file runs, for a release that is a
# script exec'ing a binary with some settings).
pool_exe_record() {
  local exe
  exe=$(readlink "/proc/$2/exe" 2>/dev/null) || return 1
  [[ $exe != *' (deleted)' ]] || return 1
  printf '%s\n' "$exe" >"$RUN/$1.exe"
  release_live "$(inst_svc "$1")" >"$RUN/$1.release"
}

# pool_release INST: the release its pool runs; nothing for a pool started
# on a binary that is no release (by a pilotlight older than releases).
pool_release() {
  local exe
  if [[ -s $RUN/$1.release ]]; then
    cat "$RUN/$1.release"
  else
    exe=$(pool_exe "$1")
    [[ $exe != "$PL_VAR/releases/$(inst_svc "$1")/"* ]] || basename -- "$(dirname -- "$exe")"
  fi
}

# pool_pid INST: the pid of its master, if it runs.
pool_pid() { pool_proc "$1" pid; }

# pool_supervisor_pid INST: the pid of its supervisor, if it runs.
pool_supervisor_pid() { pool_proc "$1" supervisor.pid; }

# pool_setting INST NAME: the value of NAME the pool was started with
# ($RUN/<inst>.env, written as it started; for a pool started by an older
# pilotlight, its supervisor's environment). Nothing when it had none.
pool_setting() {
  local pid
  if [[ -f $RUN/$1.env ]]; then
    sed -n "s/^$2=//p" "$RUN/$1.env" | tail -n 1
  elif pid=$(pool_supervisor_pid "$1"); then
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n "s/^$2=//p" | tail -n 1
  fi
}

# pool_swap_timeout_ms INST: the PL_SWAP_TIMEOUT_MS its supervisor applies
# to a swap (so that the runner waits exactly as long).
pool_swap_timeout_ms() {
  local ms
  ms=$(pool_setting "$1" PL_SWAP_TIMEOUT_MS)
  [[ $ms =~ ^[0-9]+$ ]] || ms=$(binary_default "$(pool_exe "$1")" PL_SWAP_TIMEOUT_MS)
  [[ $ms =~ ^[0-9]+$ ]] || ms=$((PL_START_TIMEOUT * 1000))
  printf '%s\n' "$ms"
}

# pool_supervisor_lost INST: its master runs, but the supervisor it was
# started with is gone (killed): nothing would restart a master that dies,
# and a swap needs one (pool_adopt gives it a new one).
pool_supervisor_lost() {
  pool_pid "$1" >/dev/null || return 1
  ! pool_supervisor_pid "$1" >/dev/null || return 1
  if [[ -f $RUN/$1.env ]]; then
    [[ $(pool_setting "$1" PL_SUPERVISE) != 0 ]]
  else
    [[ -f $RUN/$1.supervisor.pid ]]
  fi
}

# pool_running INST: print the master's pid when the pool runs. A master
# that its supervisor is replacing (it died) is waited for; a supervisor
# that brings none back is stopped.
pool_running() {
  local inst=$1 deadline=$((SECONDS + PL_START_TIMEOUT))
  while ! pool_pid "$inst"; do
    pool_supervisor_pid "$inst" >/dev/null || return 1
    if ((SECONDS >= deadline)); then
      warn "$inst: its supervisor started no master within ${PL_START_TIMEOUT}s"
      pool_stop "$inst" >/dev/null
      return 1
    fi
    sleep 0.1
  done
}

# revocation_signal_file: where accounts signals revocations to the pools.
revocation_signal_file() { printf '%s' "$RUN/revocations.signal"; }

# status_socket INST: where the pool's master answers _status and _metrics.
status_socket() { printf '%s' "$RUN/$1.status.sock"; }

# pool_env SVC [INST]: NAME=VALUE lines a pool of the service is started
# with: svc_env, its swap timeout (always given, so the runner knows what
# the supervisor applies: the service's own, else PL_SWAP_TIMEOUT_MS, else
# the live release's default), its socket (nginx workers run as
# nobody:nogroup: the socket's group lets them in), pid files, swap status
# file and log file.
pool_env() {
  local inst=${2:-$1} lines swap
  mapfile -t lines < <(svc_env "$1")
  printf '%s\n' "PL_LISTEN_GROUP=${PL_LISTEN_GROUP:-nogroup}" "${lines[@]}"
  swap=$(printf '%s\n' "${lines[@]}" | sed -n 's/^PL_SWAP_TIMEOUT_MS=//p' | tail -n 1)
  [[ -n $swap ]] || swap=${PL_SWAP_TIMEOUT_MS:-$(binary_default "$(release_link "$1")" PL_SWAP_TIMEOUT_MS)}
  [[ -z $swap ]] || printf 'PL_SWAP_TIMEOUT_MS=%s\n' "$swap"
  printf '%s\n' "PL_LISTEN=unix:$RUN/$inst.sock" "PL_STATUS_LISTEN=unix:$(status_socket "$inst")" \
    "PL_PID_FILE=$RUN/$inst.pid" \
    "PL_SUPERVISOR_PID_FILE=$RUN/$inst.supervisor.pid" "PL_SWAP_STATUS_FILE=$RUN/$inst.swap" \
    "PL_LOG_FILE=$LOG/$inst.log"
}

# pool_start INST: start that pool on the service's live release unless it
# runs. A pool started on another binary than a release (by an older
# pilotlight) is restarted; one on an older release is left alone (up and
# deploy swap releases in, see service_swap); one whose supervisor died gets
# a new one (pool_adopt), with no outage.
pool_start() {
  local inst=$1 svc link exe pid envs deadline log=$LOG/$1.log
  svc=$(inst_svc "$inst")
  link=$(release_link "$svc")
  exe=$(readlink -f -- "$link") || exe=''
  [[ -n $exe && -x $exe ]] || die "$svc has no live release ($link)"
  if pid=$(pool_running "$inst"); then
    if [[ -z $(pool_release "$inst") ]]; then
      say "$inst: it runs a binary from before releases: restarting it on release $(release_live "$svc")"
      pool_stop "$inst"
    elif pool_supervisor_lost "$inst"; then
      pool_adopt "$inst" || true # it said what to do
      return 0
    else
      say "$inst pool is running (pid $pid)"
      return 0
    fi
  fi
  mapfile -t envs < <(pool_env "$svc" "$inst")
  timeout -k 2 $(($(svc_swap_timeout_ms "$svc") / 1000 + 1)) env "${envs[@]}" "$link" --check-config >>"$log" 2>&1 || {
    tail_log "$log"
    die "$svc: its configuration is invalid ($link --check-config)"
  }
  rm -f "$RUN/$inst.sock" "$(status_socket "$inst")" "$RUN/$inst.pid" "$RUN/$inst.supervisor.pid" "$RUN/$inst.swap"
  pool_launch "$inst"
  printf '%s\n' "$exe" >"$RUN/$inst.exe"
  deadline=$((SECONDS + PL_START_TIMEOUT))
  until [[ -S $RUN/$inst.sock && -S $(status_socket "$inst") ]] && pid=$(cat "$RUN/$inst.pid" 2>/dev/null) && pool_exe_record "$inst" "$pid" &&
    pool_pid "$inst" >/dev/null; do
    if ((SECONDS >= deadline)); then
      tail_log "$log"
      die "$inst pool did not start within ${PL_START_TIMEOUT}s"
    fi
    sleep 0.1
  done
  say "$inst pool started (pid $pid, release $(release_live "$svc"))"
}

# pool_launch INST [NAME=VALUE...]: its supervisor started, detached, through
# the live link (a swap runs that path again), with pool_env and then those
# settings (one-offs, not recorded). What it is started with is recorded in
# $RUN/<inst>.env (mode 0600): later commands read the pool's settings
# there (pool_setting).
pool_launch() {
  local inst=$1 svc link envs var
  shift
  svc=$(inst_svc "$inst")
  link=$(release_link "$svc")
  mapfile -t envs < <(pool_env "$svc" "$inst")
  (
    export "${envs[@]}"
    umask 077
    for var in $(compgen -e PL_); do
      [[ $var == PL_STACK_LOCKED ]] || printf '%s=%s\n' "$var" "${!var}"
    done >"$RUN/$inst.env"
    umask 022
    # shellcheck disable=SC2163 # NAME=VALUE words
    (($# == 0)) || export "$@"
    proc_start "$RUN/$inst.supervisor.pid" "$link" "$LOG/$inst.log"
  ) || die "could not start $link"
}

# pool_adopt INST: a new supervisor for a pool whose master runs but whose
# supervisor died (kill -9, the OOM killer): it takes the master's listening
# socket and swaps in a master of the live release, and the orphaned one
# retires, as in a deploy: no request fails. Returns as pool_swap; when it
# could not, the orphaned master serves on and this says what to do.
pool_adopt() {
  local inst=$1 master rc=0
  master=$(pool_pid "$inst") || return 1
  say "$inst: its supervisor is gone: a new one takes over from master $master (a swap: no request fails)"
  rm -f -- "$RUN/$inst.swap"
  pool_launch "$inst" "PL_ADOPT_MASTER=$master"
  pool_swap_wait "$inst" || rc=$?
  ((rc == 0)) || warn "$inst: no new supervisor could take over; master $master serves on without one (if it dies the pool stops): ./pilotlight down, then up, restarts the pool"
  return "$rc"
}

# pool_stop INST: gracefully: TERM to its supervisor, which passes it on to
# the master and ends after it (the master lets its workers finish what they
# are serving and what waits in the backlog). A master without a supervisor
# (PL_SUPERVISE=0) gets the TERM itself; one that outlived a supervisor that
# had to be killed goes with its workers.
pool_stop() {
  local inst=$1 exe pid rc=0
  exe=$(pool_exe "$inst")
  proc_stop "$inst pool" "$RUN/$inst.supervisor.pid" "$exe" || rc=$?
  if ((rc == 1)); then
    rc=0
    proc_stop "$inst pool" "$RUN/$inst.pid" "$exe" || rc=$?
    ((rc != 1)) || say "$inst pool is not running"
  fi
  if pid=$(pool_pid "$inst"); then
    warn "$inst pool: its master (pid $pid) outlived its supervisor: killing it and its workers"
    proc_kill_children "$pid" "$exe"
    proc_stop "$inst pool master" "$RUN/$inst.pid" "$exe" KILL >/dev/null || true
  fi
  rm -f "$RUN/$inst.sock" "$(status_socket "$inst")" "$RUN/$inst.pid" "$RUN/$inst.supervisor.pid" "$RUN/$inst.exe" "$RUN/$inst.swap" \
    "$RUN/$inst.env" "$RUN/$inst.release"
}

# pool_reload INST: SIGHUP to its master: a new generation of workers, the
# old ones finish what they serve (no request fails meanwhile).
pool_reload() {
  local pid
  if pid=$(pool_pid "$1"); then
    proc_signal "$RUN/$1.pid" "$(pool_exe "$1")" HUP
    say "$1 pool: workers are being replaced (pid $pid)"
  else
    say "$1 pool is not running"
  fi
}

# ---- a service's pools --------------------------------------------------------
# pools_start SVC: its instances per scale_of, recorded for later commands.
pools_start() {
  local inst n
  n=$(scale_of "$1")
  printf '%s\n' "$n" >"$RUN/$1.scale"
  for inst in $(instances_of "$1"); do pool_start "$inst"; done
}

# pools_trim SVC: stop the instances beyond its scale (after nginx stopped
# sending them requests).
pools_trim() {
  local inst want
  want=" $(instances_of "$1" | tr '\n' ' ')"
  for inst in $(present_instances "$1"); do
    [[ $want == *" $inst "* ]] || pool_stop "$inst"
  done
}

# pools_stop SVC: all its instances.
pools_stop() {
  local inst
  for inst in $(present_instances "$1"); do pool_stop "$inst"; done
}

# pools_reload SVC: all its instances.
pools_reload() {
  local inst
  for inst in $(present_instances "$1"); do pool_reload "$inst"; done
}
