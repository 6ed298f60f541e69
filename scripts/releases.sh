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
  local base id prev n=0 keep=$PL_RELEASES_KEEP
  base=$(release_base "$1")
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" >>"$base/history"
  prev=$(release_previous "$1")
  while read -r _ id; do
    n=$((n + 1))
    if ((n > keep)) && [[ $id != "$2" && $id != "$prev" ]]; then rm -rf -- "${base:?}/$id"; fi
  done < <(find "$base" -mindepth 2 -maxdepth 2 -name release.json -printf '%T@ %h\n' | sort -rn |
    sed 's|^\([^ ]*\) .*/|\1 |')
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

# swap_timeout_s SVC: how long a supervisor may take to swap (its
# PL_SWAP_TIMEOUT_MS, from the environment or the binary's default), plus a
# margin.
swap_timeout_s() {
  local ms var
  var=PL_$(tr '[:lower:]' '[:upper:]' <<<"$1")_SWAP_TIMEOUT_MS
  ms=${!var:-${PL_SWAP_TIMEOUT_MS:-}}
  [[ -n $ms ]] || ms=$("$(release_link "$1")" --print-defaults | sed -n 's/^PL_SWAP_TIMEOUT_MS=//p')
  printf '%s\n' $((${ms:-15000} / 1000 + 5))
}

# pool_swap INST: its supervisor swaps in what the live link names; 0 when
# the new release serves, else 1 (the old one still does) with the reason.
pool_swap() {
  local inst=$1 svc status=$RUN/$1.swap line deadline
  svc=$(inst_svc "$inst")
  rm -f -- "$status"
  proc_signal "$RUN/$inst.supervisor.pid" "$(pool_exe "$inst")" USR2 || {
    warn "$inst: no supervisor runs it (started by an older pilotlight?): ./pilotlight down, then up"
    return 1
  }
  deadline=$((SECONDS + $(swap_timeout_s "$svc")))
  until [[ -s $status ]]; do
    if ((SECONDS >= deadline)); then
      warn "$inst: its supervisor did not say how the swap went (see $LOG/$inst.log)"
      return 1
    fi
    sleep 0.05
  done
  read -r line <"$status"
  if [[ $line != ok\ * ]]; then
    warn "$inst: $line"
    return 1
  fi
  readlink -f -- "$(release_link "$svc")" >"$RUN/$inst.exe"
  say "$inst: release $(release_live "$svc") serves (master ${line#ok })"
}

# release_check SVC ID: the release's binary accepts the pools' settings
# (what it says when it does not goes to stderr).
release_check() {
  local svc=$1 bin envs out
  bin=$(release_base "$svc")/$2/pl-$svc
  mapfile -t envs < <(pool_env "$svc")
  out=$(env "${envs[@]}" PL_LOG_FILE= "$bin" --check-config 2>&1) || {
    printf '%s\n' "$out" | tail -n 5 >&2
    return 1
  }
}

# release_drop_unused SVC ID: a release that never went live is removed.
release_drop_unused() {
  local base
  base=$(release_base "$1")
  release_id_valid "$2" || return 0
  [[ $(release_live "$1") != "$2" ]] || return 0
  grep -q " $2\$" "$base/history" 2>/dev/null || rm -rf -- "${base:?}/$2"
}

# service_swap SVC ID [migrate]: ID goes live and into every running pool of
# the service, one pool at a time (capacity never drops). Checked first: its
# configuration, then (with migrate) the service's pending migrations, which
# must work with the old release too. A pool that refuses it puts every pool
# back on the old release; then this fails, with why.
service_swap() {
  local svc=$1 id=$2 old inst back done=() legacy=()
  old=$(release_live "$svc")
  if ! release_check "$svc" "$id"; then
    release_drop_unused "$svc" "$id"
    die "$svc: release $id refuses the configuration (--check-config, above): nothing was swapped"
  fi
  if [[ ${3:-} == migrate ]] && ! migrate_service "$svc"; then
    release_drop_unused "$svc" "$id"
    die "$svc: its migrations failed (above): nothing was swapped"
  fi
  release_point "$svc" "$id"
  for inst in $(present_instances "$svc"); do
    pool_running "$inst" >/dev/null || continue
    if [[ $(pool_exe "$inst") != "$PL_VAR/releases/$svc/"* ]]; then
      legacy+=("$inst") # started before releases existed: no swap to ask for
      continue
    fi
    if pool_swap "$inst"; then
      done+=("$inst")
      continue
    fi
    [[ -z $old ]] || release_point "$svc" "$old"
    for back in "${done[@]}"; do pool_swap "$back" || warn "$back: could not go back to $old"; done
    release_drop_unused "$svc" "$id"
    die "$svc: release $id was not swapped in; ${old:-the old release} serves"
  done
  release_went_live "$svc" "$id"
  for inst in "${legacy[@]}"; do
    warn "$inst: it runs a binary from before releases: restarting it on release $id"
    pool_stop "$inst"
    pool_start "$inst"
  done
}

# pools_off_release SVC: some running pool of it runs another release than
# the live one (a deploy that was interrupted).
pools_off_release() {
  local inst exe
  exe=$(readlink -f -- "$(release_link "$1")")
  for inst in $(present_instances "$1"); do
    pool_running "$inst" >/dev/null && [[ $(pool_exe "$inst") != "$exe" ]] && return 0
  done
  return 1
}

# release_from_build SVC: the release of the build's binary, live at once
# when the service has none.
release_from_build() {
  local id
  id=$(release_make "$1" "$(svc_bin "$1")")
  [[ -n $(release_live "$1") ]] || {
    release_point "$1" "$id"
    release_went_live "$1" "$id"
  }
  printf '%s\n' "$id"
}
