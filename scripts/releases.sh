# scripts/releases.sh: releases of each service's binary, and swapping one
# into running pools with no failed request (deploy, rollback, and `up`
# after a rebuild).
#
# Every binary a pool runs is a release: $PL_VAR/releases/<svc>/<id>/pl-<svc>
# with its release.json (id: the first 12 hex digits of the binary's
# SHA-256, as the service's health reports it; build time; git commit). The
# symlink releases/<svc>/live names the release the pools run: they are
# started through releases/<svc>/live/pl-<svc>, and a supervisor told to
# swap (SIGUSR2) runs that path again as a new master on the same socket,
# waits until it answered its health check, retires the old one and says
# how it went in $RUN/<inst>.swap. releases/<svc>/history lists the releases
# that went live, in order. The newest PL_RELEASES_KEEP are kept.
# shellcheck shell=bash

release_base() { printf '%s\n' "$PL_VAR/releases/$1"; }

# release_link SVC: the path pools run: the live release's binary.
release_link() { printf '%s\n' "$PL_VAR/releases/$1/live/pl-$1"; }

# release_live SVC: the id of the live release (nothing when none).
release_live() { readlink "$PL_VAR/releases/$1/live" 2>/dev/null || true; }

# release_commit: the checkout's commit, "+dirty" when it has changes.
release_commit() {
  local commit
  commit=$(git -C "$PL_ROOT" rev-parse --short=12 HEAD 2>/dev/null) || {
    printf 'unknown\n'
    return 0
  }
  [[ -z $(git -C "$PL_ROOT" status --porcelain -- libshared services 2>/dev/null) ]] || commit+=+dirty
  printf '%s\n' "$commit"
}

# release_make SVC FILE [COMMIT]: the release of that binary, made once;
# prints its id. COMMIT: what it was built from (default: this checkout's).
release_make() {
  local svc=$1 file=$2 commit=${3:-} base tmp sum id built
  [[ -f $file && -x $file ]] || die "$file is not an executable file"
  base=$(release_base "$svc")
  mkdir -p "$base"
  tmp=$(mktemp -d "$base/.new.XXXXXX")
  # the copy is what is hashed and kept: a rebuild meanwhile cannot mix two
  cp -- "$file" "$tmp/pl-$svc"
  chmod 0755 "$tmp/pl-$svc"
  sum=$(sha256sum <"$tmp/pl-$svc")
  sum=${sum%% *}
  id=${sum:0:12}
  if [[ -f $base/$id/release.json ]]; then
    # a kept copy damaged since it was made gets this one, which has its id
    release_intact "$svc" "$id" || mv -f -- "$tmp/pl-$svc" "$base/$id/pl-$svc"
    rm -rf -- "$tmp"
  else
    built=$(date -u -r "$file" +%Y-%m-%dT%H:%M:%SZ)
    jq -n --arg id "$id" --arg svc "$svc" --arg sha256 "$sum" --arg built "$built" \
      --arg commit "${commit:-$(release_commit)}" --arg created "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      '{id: $id, service: $svc, sha256: $sha256, built_at: $built, commit: $commit, created_at: $created}' \
      >"$tmp/release.json"
    rm -rf -- "${base:?}/$id"
    mv -- "$tmp" "$base/$id"
  fi
  printf '%s\n' "$id"
}

# release_id_valid ID: it has the shape of a release id (12 hex digits), so
# it names a release directory and nothing else under releases/<svc>/.
release_id_valid() { [[ $1 =~ ^[0-9a-f]{12}$ ]]; }

# release_intact SVC ID: the release's binary still has the SHA-256 its
# release.json records (a copy damaged or edited since is not that release).
release_intact() {
  local base want sum
  base=$(release_base "$1")
  want=$(jq -r '.sha256 // empty' "$base/$2/release.json" 2>/dev/null) || return 1
  sum=$(sha256sum <"$base/$2/pl-$1" 2>/dev/null) || return 1
  [[ -n $want && ${sum%% *} == "$want" ]]
}

# release_known SVC ID: ID is a kept release of SVC, else the command ends
# saying which releases there are.
release_known() {
  local base
  base=$(release_base "$1")
  release_id_valid "$2" ||
    die "'$2' is not a release id (12 hex digits, as ./pilotlight releases $1 lists them)"
  [[ -f $base/$2/release.json && -x $base/$2/pl-$1 ]] ||
    die "$1 has no release $2 (kept: $(release_ids "$1" | tr '\n' ' ' | sed 's/ $//'); ./pilotlight releases $1)"
}

# release_ids SVC: its kept releases, newest first.
release_ids() {
  find "$(release_base "$1")" -mindepth 2 -maxdepth 2 -name release.json -printf '%T@ %h\n' 2>/dev/null |
    sort -rn | sed 's|^[^ ]* .*/||'
}

# release_point SVC ID: the live link names ID from now on (atomically).
release_point() {
  local base
  base=$(release_base "$1")
  [[ -x $base/$2/pl-$1 ]] || die "$1 has no release $2 (./pilotlight releases $1)"
  ln -sfn "$2" "$base/live.tmp"
  mv -T -- "$base/live.tmp" "$base/live"
}

# release_went_live SVC ID: records it in the history, and prunes: the
# newest PL_RELEASES_KEEP are kept, and always the live one and the one a
# rollback would go back to.
release_went_live() {
  local base id prev n=0
  base=$(release_base "$1")
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" >>"$base/history"
  prev=$(release_previous "$1")
  while read -r id; do
    n=$((n + 1))
    if ((n > PL_RELEASES_KEEP)) && [[ $id != "$2" && $id != "$prev" ]]; then rm -rf -- "${base:?}/$id"; fi
  done < <(release_ids "$1")
}

# release_previous SVC: the release live before the live one (the newest
# other one in the history that is still kept).
release_previous() {
  local base id
  base=$(release_base "$1")
  [[ -f $base/history ]] || return 0
  while read -r id; do
    [[ -x $base/$id/pl-$1 ]] && { printf '%s\n' "$id"; return 0; }
  done < <(awk -v cur="$(release_live "$1")" '$2 != cur { print $2 }' "$base/history" | tac)
}

# releases_show [SVC]: each service's releases, newest first, the live one marked.
releases_show() {
  local svc base live json
  for svc in "${@:-${SERVICES[@]}}"; do
    base=$(release_base "$svc")
    live=$(release_live "$svc")
    printf '%s\n' "$svc"
    if [[ ! -d $base ]]; then
      printf '  (no release yet: ./pilotlight up makes the first)\n'
      continue
    fi
    printf '  %-4s %-12s  %-20s  %-20s  %s\n' '' release 'created' 'built' commit
    while read -r _ json; do
      jq -r --arg live "$live" \
        '"  \(if .id == $live then "live" else "" end | . + "    " | .[0:4]) \(.id)  \(.created_at)  \(.built_at)  \(.commit)"' \
        "$json"
    done < <(find "$base" -mindepth 2 -maxdepth 2 -name release.json -printf '%T@ %p\n' | sort -rn)
  done
}

# ---- the build's releases ---------------------------------------------------
# releases/<svc>/build holds the id of the release last made from the
# build's binary: `up` (and `deploy` without a service named) makes a new
# release only when the build's binary changed since then, so a rollback or
# a `deploy --binary` stays live until the next rebuild.

# release_of_build SVC [force]: when the build's binary changed since its
# last release (always with force), its release, recorded; prints its id, or
# nothing when the build did not change. A service with no live release yet
# gets that one live at once (the first `up`).
release_of_build() {
  local svc=$1 base bin sum id
  base=$(release_base "$svc")
  bin=$(svc_bin "$svc")
  [[ -x $bin ]] || die "$bin is missing: build first"
  sum=$(sha256sum <"$bin")
  if [[ ${2:-} != force && -n $(release_live "$svc") && $(cat "$base/build" 2>/dev/null) == "${sum:0:12}" ]]; then
    return 0
  fi
  id=$(release_make "$svc" "$bin")
  printf '%s\n' "$id" >"$base/build.tmp"
  mv -- "$base/build.tmp" "$base/build"
  if [[ -z $(release_live "$svc") ]]; then
    release_point "$svc" "$id"
    release_went_live "$svc" "$id"
  fi
  printf '%s\n' "$id"
}

# ---- swapping a release into the pools --------------------------------------

# svc_swap_timeout_ms SVC: the swap timeout the service's pools run with
# (the first running pool's; else what a pool started now would get).
svc_swap_timeout_ms() {
  local inst envs ms
  for inst in $(present_instances "$1"); do
    pool_running "$inst" >/dev/null && { pool_swap_timeout_ms "$inst"; return 0; }
  done
  mapfile -t envs < <(pool_env "$1")
  ms=$(printf '%s\n' "${envs[@]}" | sed -n 's/^PL_SWAP_TIMEOUT_MS=//p' | tail -n 1)
  [[ $ms =~ ^[0-9]+$ ]] || ms=$((PL_START_TIMEOUT * 1000))
  printf '%s\n' "$ms"
}

# release_check SVC ID: the release's binary accepts the pools' settings
# (what it says when it does not goes to stderr), within the swap timeout:
# a binary that hangs is refused like one that says no.
release_check() {
  local svc=$1 bin envs out secs rc=0
  bin=$(release_base "$svc")/$2/pl-$svc
  mapfile -t envs < <(pool_env "$svc")
  secs=$(($(svc_swap_timeout_ms "$svc") / 1000 + 1))
  out=$(timeout -k 2 "$secs" env "${envs[@]}" PL_LOG_FILE= "$bin" --check-config 2>&1) || rc=$?
  ((rc == 0)) && return 0
  if ((rc == 124 || rc == 137)); then
    printf '%s --check-config did not answer within %ss (the swap timeout)\n' "$bin" "$secs" >&2
  else
    printf '%s\n' "$out" | tail -n 5 >&2
  fi
  return 1
}

# release_drop_unused SVC ID: a release that never went live is removed.
release_drop_unused() {
  local base
  base=$(release_base "$1")
  release_id_valid "$2" || return 0
  [[ $(release_live "$1") != "$2" ]] || return 0
  grep -q " $2\$" "$base/history" 2>/dev/null || rm -rf -- "${base:?}/$2"
}

# The swap under way (service_swap): what service_swap_back puts back.
SWAP_SVC='' SWAP_OLD='' SWAP_NEW='' SWAP_DONE=()

# service_swap SVC ID MODE: ID goes live and into every running pool of the
# service, one pool at a time (capacity never drops). MODE: deploy (the
# service's pending migrations run first, which must work with the old
# release too; then a probation watch), up (the watch, no migrations: up
# ran them) or rollback (neither). Checked first: its configuration. A pool
# that refuses it, or a worker crash in the watch, puts every pool back on
# the old release; then this fails, with why. With no pool running, ID is
# live and the next `up` starts it.
service_swap() {
  local svc=$1 id=$2 mode=$3 inst rc running=() legacy=()
  SWAP_SVC=$svc SWAP_NEW=$id SWAP_DONE=()
  SWAP_OLD=$(release_live "$svc")
  release_intact "$svc" "$id" ||
    die "$svc: release $id is damaged: its pl-$svc no longer has the SHA-256 in its release.json (deploy --binary the file it was made of to mend it): nothing was swapped"
  if ! release_check "$svc" "$id"; then
    release_drop_unused "$svc" "$id"
    die "$svc: release $id refuses the configuration (--check-config, above): nothing was swapped"
  fi
  if [[ $mode == deploy ]] && ! migrate_service "$svc"; then
    release_drop_unused "$svc" "$id"
    die "$svc: its migrations failed (above): nothing was swapped"
  fi
  for inst in $(present_instances "$svc"); do
    pool_running "$inst" >/dev/null || continue
    # one started before releases existed has no swap to ask for
    if [[ -n $(pool_release "$inst") ]]; then running+=("$inst"); else legacy+=("$inst"); fi
  done
  trap 'service_swap_back 2; die "interrupted: ${SWAP_OLD:-the old release} of $SWAP_SVC is live again"' INT TERM
  release_point "$svc" "$id"
  for inst in "${running[@]}"; do
    rc=0
    pool_swap "$inst" || rc=$?
    if ((rc != 0)); then
      service_swap_back "$rc"
      die "$svc: release $id was not swapped in; ${SWAP_OLD:-the old release} serves"
    fi
    SWAP_DONE+=("$inst")
  done
  if [[ $mode != rollback ]] && ((${#SWAP_DONE[@]} > 0 && PL_DEPLOY_PROBATION_S > 0)) &&
    ! release_probation "$svc" "${SWAP_DONE[@]}"; then
    warn "$svc: $PROBATION_WHY within ${PL_DEPLOY_PROBATION_S}s of release $id going live: rolling back"
    service_swap_back 1
    die "$svc: release $id was rolled back ($PROBATION_WHY); ${SWAP_OLD:-the old release} serves"
  fi
  trap - INT TERM
  release_went_live "$svc" "$id"
  if [[ $mode != up ]] && ((${#running[@]} + ${#legacy[@]} == 0)); then
    say "$svc: no pool of it runs: release $id is live, and the next ./pilotlight up starts it"
  fi
  for inst in "${legacy[@]}"; do
    warn "$inst: it runs a binary from before releases: restarting it on release $id"
    pool_stop "$inst"
    pool_start "$inst"
  done
}

# service_swap_back HOW: the swap under way is undone: the live link names
# the old release again and each pool already swapped goes back to it. The
# new release is removed, unless HOW is 2 (a pool never said how its swap
# went, so its supervisor may still be starting it) or a pool could not go
# back: a release some process may still start is never removed.
service_swap_back() {
  local back how=$1
  trap - INT TERM
  if [[ -n $SWAP_OLD ]]; then
    release_point "$SWAP_SVC" "$SWAP_OLD"
    for back in "${SWAP_DONE[@]}"; do
      pool_swap "$back" && continue
      warn "$back: could not go back to $SWAP_OLD: it runs $SWAP_NEW still"
      how=2
    done
  fi
  if ((how == 2)); then
    warn "$SWAP_SVC: release $SWAP_NEW is kept: a pool may run it still (./pilotlight releases $SWAP_SVC)"
  else
    release_drop_unused "$SWAP_SVC" "$SWAP_NEW"
  fi
}

# release_probation SVC INST...: watches the pools just swapped to the live
# release for PL_DEPLOY_PROBATION_S seconds: 0 when none of their workers
# crashed (the masters' worker_crash lines in their logs since the swap) and
# each master still runs; else 1, with why in PROBATION_WHY. A release whose
# health check passes but whose handlers crash shows here, under the
# requests the pools get meanwhile. (The logs, not the status pages: a pool
# whose workers crash answers its status page late.)
release_probation() {
  local svc=$1 inst pid crashes at log deadline=$((SECONDS + PL_DEPLOY_PROBATION_S))
  local -A master=()
  shift
  for inst; do master[$inst]=$(sed -n 's/^ok \([0-9]*\)$/\1/p' "$RUN/$inst.swap" 2>/dev/null); done
  say "$svc: watching release $(release_live "$svc") for ${PL_DEPLOY_PROBATION_S}s (PL_DEPLOY_PROBATION_S): a worker crash rolls it back"
  PROBATION_WHY=''
  while :; do
    for inst; do
      pid=$(pool_pid "$inst") || pid=''
      if [[ $pid != "${master[$inst]}" ]]; then
        PROBATION_WHY="the master of pool $inst (pid ${master[$inst]}) died"
        return 1
      fi
      log=$LOG/$inst.log
      at=${SWAP_LOG_AT[$inst]:-0}
      (($(stat -c %s -- "$log" 2>/dev/null || echo 0) >= at)) || at=0 # rotated meanwhile
      crashes=$(tail -c +$((at + 1)) -- "$log" 2>/dev/null |
        grep -c "\"event\":\"worker_crash\",\"service\":\"$svc\",\"pid\":$pid," || true)
      if ((crashes > 0)); then
        PROBATION_WHY="$crashes worker(s) of pool $inst crashed"
        return 1
      fi
    done
    ((SECONDS < deadline)) || return 0
    sleep 0.5
  done
}

# pool_swap INST: its supervisor swaps in what the live link names (a pool
# whose supervisor died gets a new one that does the same: pool_adopt).
# 0 when the new release serves; 1 when it was refused and the old one
# still does (with why); 2 when the supervisor never said how it went.
declare -A SWAP_LOG_AT=() # each pool's log size as its last swap began (release_probation)

pool_swap() {
  local inst=$1
  rm -f -- "$RUN/$inst.swap"
  SWAP_LOG_AT[$inst]=$(stat -c %s -- "$LOG/$inst.log" 2>/dev/null || echo 0)
  if pool_supervisor_lost "$inst"; then
    pool_adopt "$inst"
    return
  fi
  proc_signal "$RUN/$inst.supervisor.pid" "$(pool_exe "$inst")" USR2 || {
    warn "$inst: no supervisor runs it (started by an older pilotlight?): ./pilotlight down, then up"
    return 1
  }
  pool_swap_wait "$inst"
}

# pool_swap_wait INST: the outcome of the swap its supervisor is making, as
# pool_swap returns it, waited for as long as the supervisor may take (its
# own PL_SWAP_TIMEOUT_MS) and a margin.
pool_swap_wait() {
  local inst=$1 svc status=$RUN/$1.swap line deadline
  svc=$(inst_svc "$inst")
  deadline=$((SECONDS + $(pool_swap_timeout_ms "$inst") / 1000 + 5))
  until [[ -s $status ]]; do
    if ((SECONDS >= deadline)); then
      warn "$inst: its supervisor did not say how the swap went (see $LOG/$inst.log)"
      return 2
    fi
    sleep 0.05
  done
  read -r line <"$status"
  if [[ $line != ok\ * ]]; then
    warn "$inst: $line"
    return 1
  fi
  if ! pool_exe_record "$inst" "${line#ok }"; then # (it ended already: the pool is checked later)
    readlink -f -- "$(release_link "$svc")" >"$RUN/$inst.exe"
    release_live "$svc" >"$RUN/$inst.release"
  fi
  say "$inst: release $(release_live "$svc") serves (master ${line#ok })"
}

# pools_off_release SVC: some running pool of it runs another release than
# the live one (a deploy that was interrupted).
pools_off_release() {
  local inst live
  live=$(release_live "$1")
  for inst in $(present_instances "$1"); do
    pool_running "$inst" >/dev/null && [[ $(pool_release "$inst") != "$live" ]] && return 0
  done
  return 1
}
