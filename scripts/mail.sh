# scripts/mail.sh: the stack's mail sink and `./pilotlight mail`. Unless the
# operator names a real server (PL_SMTP_URL), the services that send mail
# (accounts) are given smtp://127.0.0.1:$PL_MAIL_SINK_PORT, where
# scripts/mailsink.py (Debian's python3-aiosmtpd) keeps every message as a
# file under $PL_VAR/mail/ instead of delivering it.
# shellcheck shell=bash

readonly PYTHON=/usr/bin/python3

mail_dir() { printf '%s\n' "$PL_VAR/mail"; }

# mail_sink_wanted: no real server is configured.
mail_sink_wanted() { [[ -z ${PL_SMTP_URL:-} ]]; }

mailsink_pid() { proc_pid "$RUN/mailsink.pid" "$PYTHON"; }

# mailsink_start: the sink on 127.0.0.1:PL_MAIL_SINK_PORT, unless it runs.
mailsink_start() {
  local pid deadline
  mail_sink_wanted || return 0
  if pid=$(mailsink_pid); then
    say "the mail sink is running (pid $pid)"
    return 0
  fi
  mkdir -p "$(mail_dir)"
  start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$RUN/mailsink.pid" \
    --output "$LOG/mailsink.log" --exec "$PYTHON" -- "$PL_ROOT/scripts/mailsink.py" "$(mail_dir)" 127.0.0.1 \
    "$PL_MAIL_SINK_PORT" "$LOG/mailsink.log" 9>&- || die "could not start the mail sink"
  deadline=$((SECONDS + PL_START_TIMEOUT))
  until (exec 3<>"/dev/tcp/127.0.0.1/$PL_MAIL_SINK_PORT") 2>/dev/null; do
    # (its pid file names the child start-stop-daemon forked, python a moment later)
    if ((SECONDS >= deadline)) || { [[ -s $RUN/mailsink.pid ]] && ! kill -0 "$(cat "$RUN/mailsink.pid")" 2>/dev/null; }; then
      tail_log "$LOG/mailsink.log"
      die "the mail sink did not listen on 127.0.0.1:$PL_MAIL_SINK_PORT (is the port taken?)"
    fi
    sleep 0.1
  done
  say "mail sink started (pid $(mailsink_pid), smtp://127.0.0.1:$PL_MAIL_SINK_PORT, mail kept in $(mail_dir))"
}

mailsink_stop() {
  local rc=0
  proc_stop "the mail sink" "$RUN/mailsink.pid" "$PYTHON" || rc=$?
  rm -f "$RUN/mailsink.pid"
  ((rc != 1)) || return 0
}

# mail_show [--last]: the mails the sink kept (the newest last), decoded.
mail_show() {
  local dir files=()
  dir=$(mail_dir)
  mapfile -t files < <(find "$dir" -maxdepth 1 -name '*.eml' 2>/dev/null | sort)
  ((${#files[@]} > 0)) || { say "no mail in $dir"; return 0; }
  [[ ${1:-} != --last ]] || files=("${files[-1]}")
  "$PYTHON" - "${files[@]}" <<'PY'
import email, email.policy, sys
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    print("=" * 72)
    print("file:   ", path)
    for h in ("Date", "From", "To", "Subject"):
        print("%-8s %s" % (h + ":", m.get(h, "")))
    body = m.get_body(preferencelist=("plain", "html"))
    print()
    print(body.get_content().rstrip() if body else "(no text part)")
PY
}
