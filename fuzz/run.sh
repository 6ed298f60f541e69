# fuzz/run.sh: `./pilotlight fuzz [SECONDS]`: every libFuzzer target of
# fuzz/ (a clang build in PL_FUZZ_BUILD_DIR) for SECONDS each, from its seed
# corpus fuzz/corpus/<target> plus what earlier runs found (kept in
# $PL_VAR/fuzz/corpus/<target>). A crashing input is written to
# $PL_VAR/fuzz/crashes/<target>-crash-...; one summary table; exit status 1
# if any target failed. `soak` runs it too. Sourced by ./pilotlight (fuzz_run).
# shellcheck shell=bash

# fuzz_target NAME SECONDS: run one target; its summary row in FUZZ_ROW, 1 if it failed.
fuzz_target() {
  local t=$1 secs=$2 bin=$PL_FUZZ_BUILD_DIR/fuzz/fuzz_$1 dir=$PL_ROOT/fuzz/corpus/$1 log=$PL_VAR/fuzz/$1.log
  local rc=0 execs corpus
  [[ -x $bin ]] || die "fuzz/corpus/$t has no target $bin (fuzz/meson.build)"
  mkdir -p "$PL_VAR/fuzz/corpus/$t"
  say "fuzzing $t for ${secs}s (log: $log)"
  "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="$PL_VAR/fuzz/crashes/$t-" "$PL_VAR/fuzz/corpus/$t" "$dir/" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus=$(find "$PL_VAR/fuzz/corpus/$t" "$dir/" -type f | wc -l)
  if ((rc == 0)); then
    FUZZ_ROW=$(printf '%-8s %-7s %12s %8s  ok' "$t" "${secs}s" "${execs:-?}" "$corpus")
    return 0
  fi
  FUZZ_ROW=$(printf '%-8s %-7s %12s %8s  FAILED (exit %s): %s' "$t" "${secs}s" "${execs:-?}" "$corpus" "$rc" \
    "$(grep -m1 -o 'Test unit written to .*' "$log" || echo "see $log")")
  grep -m1 -B2 -A12 'ERROR: \|runtime error\|deadly signal' "$log" >&2 || tail -n 20 "$log" >&2
  return 1
}

# fuzz_run SECONDS: every target, then the table.
fuzz_run() {
  local secs=$1 dir failed=0 rows=()
  layout
  install_deps "${FUZZ_PACKAGES[@]}"
  (
    export CC=clang
    build "$PL_FUZZ_BUILD_DIR" -Dfuzz=true
  ) || exit 1
  mkdir -p "$PL_VAR/fuzz/crashes"
  for dir in "$PL_ROOT"/fuzz/corpus/*/; do
    dir=${dir%/}
    fuzz_target "${dir##*/}" "$secs" || failed=1
    rows+=("$FUZZ_ROW")
  done
  say "== fuzz summary"
  printf '  %-8s %-7s %12s %8s  %s\n' target time executions corpus result
  printf '  %s\n' "${rows[@]}"
  ((failed == 0)) || die "a fuzz target failed: fix the bug, and add the input as a regression case in libshared/tests"
}
