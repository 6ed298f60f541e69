# scripts/logs.sh: the stack's logs ($LOG/*.log): following them, and
# rotating them with Debian's logrotate so that a stack left for months does
# not fill its disk. `up` writes $PL_VAR/logrotate.conf (size, count and age
# limits: PL_LOG_ROTATE_SIZE, PL_LOG_ROTATE_KEEP, PL_LOG_MAX_AGE_DAYS) and,
# where cron is (PL_LOG_ROTATE_CRON=1 and /etc/cron.d), a cron entry that
# runs `pilotlight logs --rotate` every 15 minutes, what it says going to
# $LOG/cron.log; `down` removes that entry. After a rotation every process
# reopens its file by name: the pools on SIGUSR1 (stdout and stderr; each
# line is one O_APPEND write: nothing lost or doubled), nginx (-s reopen)
# and MariaDB (FLUSH ERROR LOGS).
# shellcheck shell=bash

logs_conf() { printf '%s\n' "$PL_VAR/logrotate.conf"; }

# logs_cron_file: this stack's entry in /etc/cron.d (one per state directory).
logs_cron_file() {
  local sum
  sum=$(printf '%s' "$PL_VAR" | sha256sum)
  printf '/etc/cron.d/pilotlight-%s\n' "${sum:0:12}"
}

# logs_setup: the logrotate configuration, and the cron entry where there is cron.
logs_setup() {
  local cron
  cat >"$(logs_conf).tmp" <<CONF
# made by ./pilotlight (scripts/logs.sh): every log of the stack under $LOG
$LOG/*.log {
    size $PL_LOG_ROTATE_SIZE
    rotate $PL_LOG_ROTATE_KEEP
    maxage $PL_LOG_MAX_AGE_DAYS
    missingok
    notifempty
    compress
    delaycompress
    sharedscripts
    postrotate
        PL_VAR='$PL_VAR' '$PL_ROOT/pilotlight' logs --reopen
    endscript
}
CONF
  mv -- "$(logs_conf).tmp" "$(logs_conf)"
  [[ $PL_LOG_ROTATE_CRON == 1 && -d /etc/cron.d && -w /etc/cron.d ]] || return 0
  cron=$(logs_cron_file)
  # cron runs it with PATH=/usr/bin:/bin and mails or drops its output
  printf '%s\n' "# Pilotlight's log rotation for $PL_VAR (written by ./pilotlight up, removed by down)" \
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "*/15 * * * * root PL_VAR='$PL_VAR' '$PL_ROOT/pilotlight' logs --rotate >>'$LOG/cron.log' 2>&1" \
    >"$cron.tmp"
  if ! cmp -s "$cron.tmp" "$cron"; then
    mv -- "$cron.tmp" "$cron"
    say "logs rotate every 15 minutes ($cron; what it says goes to $LOG/cron.log)"
  fi
  rm -f -- "$cron.tmp"
}

# logs_cron_remove: this stack's cron entry goes (`down`).
logs_cron_remove() {
  local cron
  cron=$(logs_cron_file)
  [[ -e $cron ]] || return 0
  rm -f -- "$cron" && say "log rotation removed from cron ($cron)"
}

# logs_rotate [--force]: logrotate over the stack's logs now (with --force
# whatever their size).
logs_rotate() {
  local rc=0
  [[ -f $(logs_conf) ]] || logs_setup
  logrotate --state "$PL_VAR/logrotate.state" "$@" "$(logs_conf)" || rc=$?
  ((rc == 0)) || die "$(date -u +%Y-%m-%dT%H:%M:%SZ): logrotate failed (exit $rc, $(logs_conf))"
}

# logs_reopen: every running process of the stack opens its log file
# again; says which did, fails when one could not be told.
logs_reopen() {
  local svc inst pid told=() failed=()
  # the supervisor passes it on; a master without one takes it itself
  for svc in "${SERVICES[@]}"; do
    for inst in $(present_instances "$svc"); do
      pid=$(pool_supervisor_pid "$inst") || pid=$(pool_pid "$inst") || continue
      if kill -USR1 "$pid"; then told+=("$inst"); else failed+=("$inst"); fi
    done
  done
  if nginx_pid >/dev/null; then
    if nginx_cmd -s reopen; then told+=(nginx); else failed+=(nginx); fi
  fi
  # (one started by an older pilotlight has no log argument, and SIGUSR1 would end it)
  if pid=$(mailsink_pid) && [[ $(tr '\0' '\n' <"/proc/$pid/cmdline" | tail -n 1) == "$LOG/mailsink.log" ]]; then
    if kill -USR1 "$pid"; then told+=("the mail sink"); else failed+=("the mail sink"); fi
  fi
  if db_ping; then
    if db_sql "FLUSH ERROR LOGS" >/dev/null; then told+=(MariaDB); else failed+=(MariaDB); fi
  fi
  ((${#told[@]} == 0)) || say "logs reopened: ${told[*]}"
  ((${#failed[@]} == 0)) || die "$(date -u +%Y-%m-%dT%H:%M:%SZ): could not make ${failed[*]} reopen its log"
}

# logs_follow [NAME]: tail -F of one log, or all.
logs_follow() {
  local files=() name=${1:-all}
  if [[ $name == all ]]; then
    mapfile -t files < <(find "$LOG" -maxdepth 1 -name '*.log' 2>/dev/null | sort)
  elif [[ $name == nginx ]]; then
    files=("$LOG/nginx-error.log" "$LOG/nginx-access.log")
  elif [[ $name =~ ^(mariadb|mysql|db)$ ]]; then
    files=("$LOG/mysqld.log")
  elif [[ " ${SERVICES[*]} " == *" $(inst_svc "$name") "* && $name =~ ^[a-z0-9]+(-[0-9]+)?$ ]]; then
    files=("$LOG/$name.log")
  else
    die "no log called '$name' (${SERVICES[*]}, a scaled pool like ${SERVICES[0]}-2, nginx, mariadb)"
  fi
  ((${#files[@]} > 0)) || die "no logs in $LOG yet"
  exec tail -n 40 -F -- "${files[@]}"
}

# disk_warning: a line when the disk holding $PL_VAR is nearly full
# (PL_DISK_WARN_PERCENT used, or less than 1 GiB free): MariaDB stops taking
# writes on a full disk.
disk_warning() {
  local used avail
  read -r used avail < <(df -P -k -- "$PL_VAR" | awk 'NR == 2 { sub(/%/, "", $5); print $5, $4 }')
  [[ -n $used ]] || return 0
  if ((used >= PL_DISK_WARN_PERCENT || avail < 1048576)); then
    printf 'warning: the disk holding %s is %s%% full (%s MiB free): logs rotate (./pilotlight logs --rotate), backups and releases pile up there\n' \
      "$PL_VAR" "$used" $((avail / 1024))
  fi
}
