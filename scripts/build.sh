# scripts/build.sh: the C build (meson + ninja, one build directory per
# flavour: the stack's, the sanitizers', the fuzzers') and the web client (npm).
# shellcheck shell=bash

# shellcheck disable=SC2034 # stack_up passes them to meson
BUILD_OPTS=()  # meson options of the stack's build (`test --sanitize` sets them)

# build DIR [MESON OPTIONS...]: configure once, then build.
build() {
  local dir=$1
  shift
  if [[ ! -f $dir/build.ninja ]]; then
    meson setup "$dir" "$PL_ROOT" "$@" || die "meson setup $dir failed"
  elif (($# > 0)); then
    meson configure "$dir" "$@" || die "meson configure $dir failed"
  fi
  ninja -C "$dir" || die "the build in $dir failed"
}

# build_web: web/dist from web/ with npm (`npm ci` when node_modules is older
# than package-lock.json, then `npm run build`), skipped when web/dist is
# newer than every source. A PL_WEB_ROOT elsewhere is served as it is.
build_web() {
  local web=$PL_ROOT/web dist=$PL_ROOT/web/dist newer
  if [[ $(realpath -m -- "$PL_WEB_ROOT") != "$dist" ]]; then
    say "serving the web client from PL_WEB_ROOT=$PL_WEB_ROOT as it is"
    return 0
  fi
  [[ -f $web/package.json ]] || return 0
  if [[ ! -f $web/node_modules/.package-lock.json || $web/package-lock.json -nt $web/node_modules/.package-lock.json ]]; then
    say "installing the web client's npm packages (npm ci)"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in web/ failed"
  fi
  if [[ -f $dist/index.html ]]; then
    newer=$(find "$web"/*.html "$web/package.json" "$web/package-lock.json" "$web/vite.config.js" \
      "$web/src" "$web/public" "$PL_ROOT/services/list" -newer "$dist/index.html" -print -quit 2>/dev/null)
    if [[ -z $newer ]]; then
      say "the web client is up to date (web/dist)"
      return 0
    fi
  fi
  say "building the web client (web/dist)"
  (cd "$web" && npm run build --silent) || die "the web client's build failed (web/)"
}
