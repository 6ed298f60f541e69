# scripts/proc.sh: process control for the stack's servers, with Debian's
# start-stop-daemon (dpkg): a process is known by its pid file and its
# executable (--exec, which compares the file at that path, so a pool still
# matches after a rebuild replaced its binary, and a recycled pid or a zombie
# never does: a stopped server can linger as a zombie for a while).
# shellcheck shell=bash

# proc_pid PIDFILE EXE: print the pid in PIDFILE if that process runs EXE.
proc_pid() {
  local pid rc=0
  start-stop-daemon --status --pidfile "$1" --exec "$2" >/dev/null 2>&1 || rc=$?
  # (not found would read as "nothing runs", and everything would look stopped)
  ((rc != 127)) || die "start-stop-daemon is not on PATH ($PATH)"
  ((rc == 0)) || return 1
  { read -r pid <"$1" || [[ -n ${pid:-} ]]; } 2>/dev/null || return 1  # (a last line may lack its newline)
  printf '%s\n' "${pid//[[:space:]]/}"
}

# proc_start PIDFILE EXE LOG [ARG...]: start EXE detached (its own session,
# stdin /dev/null, output appended to LOG, this directory), unless a process
# of PIDFILE runs it already. The program writes PIDFILE itself. Our lock
# (fd 9) is never passed on.
proc_start() {
  local pidfile=$1 exe=$2 log=$3
  shift 3
  start-stop-daemon --start --quiet --background --output "$log" --chdir "$PWD" \
    --pidfile "$pidfile" --exec "$exe" -- "$@" 9>&-
}

# proc_stop NAME PIDFILE EXE [SIGNAL]: SIGNAL (default TERM), up to
# PL_STOP_TIMEOUT seconds for the process to end, then SIGKILL (5 s more).
# 0 when it ended of itself, 2 when it had to be killed, 1 when none ran.
proc_stop() {
  local name=$1 pidfile=$2 exe=$3 sig=${4:-TERM} pid rc=0
  pid=$(proc_pid "$pidfile" "$exe") || return 1
  start-stop-daemon --stop --quiet --pidfile "$pidfile" --exec "$exe" --retry "$sig/$PL_STOP_TIMEOUT" || rc=$?
  if ((rc <= 1)); then  # 1: it ended between the two looks
    say "$name stopped"
    return 0
  fi
  warn "$name (pid $pid) did not stop within ${PL_STOP_TIMEOUT}s: killing it"
  start-stop-daemon --stop --quiet --oknodo --pidfile "$pidfile" --exec "$exe" --retry KILL/5 ||
    warn "$name (pid $pid) is still there"
  return 2
}

# proc_signal PIDFILE EXE SIGNAL: send it, wait for nothing.
proc_signal() {
  start-stop-daemon --stop --quiet --signal "$3" --pidfile "$1" --exec "$2"
}

# proc_kill_children PID EXE: SIGKILL every child of PID that runs EXE.
proc_kill_children() {
  start-stop-daemon --stop --quiet --oknodo --signal KILL --ppid "$1" --exec "$2"
}

# proc_children PID: its live (non-zombie) children, one pid a line.
proc_children() {
  { ps -o pid=,stat= --ppid "$1" || true; } | awk '$2 !~ /^Z/ { print $1 }'
}
