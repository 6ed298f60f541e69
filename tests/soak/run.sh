# tests/soak/run.sh: `./pilotlight soak`: the long reliability run
# (tests/soak/soak.py) against the slot's isolated stack with production
# settings: ondemand pools from zero, the services' default pool sizes and
# timeouts, production rate limits (the driver's clients each come from their
# own 127.0.0.x address). The one departure: cheap password hashes (as in
# `test`), so logins under load measure the stack, not argon2id. Then `fuzz`
# (each target for the same duration) and tests/leak/run.sh. Ends with one
# table; non-zero when any row failed. Sourced by ./pilotlight (soak_run),
# after its option parsing.
# shellcheck shell=bash

SOAK_ROWS=''
SOAK_DRIVER=''

# soak_interrupt: Ctrl-C or SIGTERM ends the driver too (a background job of
# a script ignores SIGINT, and bash runs a trap only once its foreground
# child is done), then the stack.
soak_interrupt() {
  [[ -z $SOAK_DRIVER ]] || kill -TERM "$SOAK_DRIVER" 2>/dev/null || true
  exit 130
}

soak_finish() {
  local rc=$?
  trap - EXIT INT TERM
  say "== stopping the soak stack"
  stack_down >/dev/null || true
  exit "$rc"
}

# soak_extra NAME COMMAND...: one more row of the table, from a command's
# exit status (run without the soak stack's settings, outside its lock).
soak_extra() {
  local name=$1 rc=0 start=$SECONDS var unset=()
  shift
  for var in $(compgen -e); do
    [[ $var != PL_* || $var == PL_TEST_SLOT || $var == PL_ROOT ]] || unset+=(-u "$var")
  done
  say "== $name: $*"
  env "${unset[@]}" "$@" || rc=$?
  /usr/bin/python3 "$PL_ROOT/tests/soak/soak.py" row --rows "$SOAK_ROWS" --scenario "$name" \
    --rc "$rc" --seconds $((SECONDS - start))
}

# soak_generated SECONDS: the generated requests of the integration suite
# (tests/integration/test_generated_requests.py: every operation of the
# OpenAPI document, valid and invalid, no 5xx, every answer as documented, a
# refusal changes nothing) against the soak stack, with 5 x SECONDS examples
# per operation (`test` runs 30); one row of the table. Production rate
# limits: their 429s are among the documented answers.
soak_generated() {
  local rc=0 start=$SECONDS examples=$(($1 * 5))
  say "== generated requests: $examples per operation"
  (cd "$PL_ROOT" && PL_GENERATED_EXAMPLES=$examples /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    tests/integration/test_generated_requests.py) || rc=$?
  /usr/bin/python3 "$PL_ROOT/tests/soak/soak.py" row --rows "$SOAK_ROWS" --scenario "generated requests" \
    --rc "$rc" --seconds $((SECONDS - start))
}

# soak_run DURATION CLIENTS ONLY: the load scenarios (ONLY: names, comma
# separated; empty: all), the generated requests, then fuzz and leak unless
# ONLY leaves them out.
soak_run() {
  local duration=$1 clients=$2 only=$3 rc=0
  export PL_PWHASH_OPSLIMIT=$TEST_PWHASH_OPSLIMIT PL_PWHASH_MEMLIMIT_KIB=$TEST_PWHASH_MEMLIMIT_KIB
  stack_isolated
  SOAK_ROWS=$PL_ROOT/var/soak-$PL_TEST_SLOT.rows
  rm -f "$SOAK_ROWS"
  trap soak_finish EXIT
  trap soak_interrupt INT TERM
  stack_up
  # the driver runs `./pilotlight reload` and `up` on this stack, under our lock
  env PL_STACK_LOCKED="$PL_VAR" PL_ROOT="$PL_ROOT" /usr/bin/python3 "$PL_ROOT/tests/soak/soak.py" run \
    --rows "$SOAK_ROWS" --duration "$duration" --clients "$clients" --only "$only" &
  SOAK_DRIVER=$!
  wait "$SOAK_DRIVER" || rc=$?
  SOAK_DRIVER=''
  if [[ -z $only || ",$only," == *,generated,* ]]; then
    soak_generated "$duration"
  fi
  say "== stopping the soak stack"
  stack_down >/dev/null || true
  trap - EXIT
  trap 'exit 130' INT TERM
  exec 9>&-
  # --only names the load scenarios, and fuzz and leak too
  if [[ -z $only || ",$only," == *,fuzz,* ]]; then
    soak_extra fuzz "$PL_ROOT/pilotlight" fuzz "$duration"
  fi
  if [[ -z $only || ",$only," == *,leak,* ]]; then
    soak_extra leak bash "$PL_ROOT/tests/leak/run.sh"
  fi
  /usr/bin/python3 "$PL_ROOT/tests/soak/soak.py" table --rows "$SOAK_ROWS" || rc=1
  return "$rc"
}
