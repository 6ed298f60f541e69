#!/usr/bin/env bash
# configuration.sh: writes docs/configuration.md from the binaries themselves.
#
#   docs/configuration.sh BUILD_DIR           write docs/configuration.md
#   docs/configuration.sh --check BUILD_DIR   exit 1 with a diff when the page
#                                             differs from what the binaries say
#
# Each service binary prints a Markdown table row for every setting it reads
# (`pl-<svc> --config-reference`, from libshared's and its own config rows:
# the one place names, defaults and bounds are written). Rows every binary
# prints identically are the common settings and appear once; then each
# service's own rows. The page's prose is below, in this script: edit it here,
# then run the script; never edit docs/configuration.md by hand.
# shellcheck disable=SC2016  # backquotes in single quotes are Markdown, not shell
set -euo pipefail

usage() {
  echo "usage: $0 [--check] BUILD_DIR" >&2
  exit 2
}

check=0
if [[ ${1:-} == --check ]]; then
  check=1
  shift
fi
(($# == 1)) || usage
build=$1
[[ -d $build ]] || { echo "$0: no build directory $build" >&2; exit 2; }

docs=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(dirname -- "$docs")
page=$docs/configuration.md

# The services, in name order: services/list when it exists (one name a line,
# # comments), else every services/<name>/ with a main.c.
services() {
  if [[ -f $root/services/list ]]; then
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$root/services/list"
  else
    for d in "$root"/services/*/; do
      [[ -f $d/main.c ]] && basename -- "$d"
    done
  fi | LC_ALL=C sort -u
}

mapfile -t svcs < <(services)
((${#svcs[@]} > 0)) || { echo "$0: no services found under $root/services" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

for svc in "${svcs[@]}"; do
  bin=$build/services/$svc/pl-$svc
  [[ -x $bin ]] || { echo "$0: $bin is missing: build first (ninja -C $build)" >&2; exit 1; }
  "$bin" --config-reference >"$tmp/$svc.rows"
  [[ -s $tmp/$svc.rows ]] || { echo "$0: $bin --config-reference printed nothing" >&2; exit 1; }
done

# Common rows: those of the first service that every other prints identically,
# in the first service's order. Own rows: the rest, in each binary's order.
cp -- "$tmp/${svcs[0]}.rows" "$tmp/common.rows"
for svc in "${svcs[@]:1}"; do
  grep -Fxf "$tmp/$svc.rows" "$tmp/common.rows" >"$tmp/common.next" || true
  mv -- "$tmp/common.next" "$tmp/common.rows"
done
for svc in "${svcs[@]}"; do
  grep -Fvxf "$tmp/common.rows" "$tmp/$svc.rows" >"$tmp/$svc.own" || true
done

table_head() {
  printf '| variable | default | values | meaning |\n|---|---|---|---|\n'
}

# The stack's settings: the runner's (./pilotlight) and nginx's.
# TODO(issue 12, second pass): render these from the stack's defaults file
# (nginx/defaults.env and the runner's) instead of this copy of the old
# README's table; PL_DB_PORT of the runner becomes PL_MARIADB_PORT.
stack_section() {
  cat <<'EOF'
## The stack (`./pilotlight` and nginx)

<!-- TODO(issue 12, second pass): this section is static text copied from the
old README ("The stack (`./pilotlight`)" and the PL_LIMIT_* defaults); it is to
be rendered from the stack's defaults file once the runner reads one.
PL_DB_PORT below (MariaDB's port, 3307) is being renamed PL_MARIADB_PORT. -->

The runner's defaults are in one block at the top of `pilotlight`; each can be
set in the environment.

| variable | default | meaning |
|---|---|---|
| `PL_VAR` | `./var` | everything the stack writes: `run/` (pids, sockets), `log/`, `mysql/` (data), `secrets/`, `nginx/` (rendered config, temp files) |
| `PL_HTTP_BIND` / `PL_HTTP_PORT` | `127.0.0.1` / `8080` | public listener |
| `PL_HTTPS_PORT` | `8443` | the public server over TLS (HTTP/2), on `PL_HTTP_BIND` |
| `PL_TLS_CERT_FILE` / `PL_TLS_KEY_FILE` | empty | PEM certificate (chain) and key for HTTPS; both or neither. Empty: a self-signed certificate for `localhost`/`127.0.0.1`, made once by `up` in `$PL_VAR/secrets/tls.{crt,key}` |
| `PL_HSTS_MAX_AGE` | `31536000` | `Strict-Transport-Security` max-age on HTTPS responses, in seconds; `0` tells browsers to forget it |
| `PL_INTERNAL_BIND` / `PL_INTERNAL_PORT` | `127.0.0.1` / `8081` | internal listener (service-to-service calls, internal pages); keep it on loopback or a private network |
| `PL_DB_PORT` | `3307` | MariaDB's TCP port (bound to 127.0.0.1); the stack itself uses the unix socket `$PL_VAR/run/mysqld.sock`. Not the services' `PL_DB_PORT` (the port they connect to, 3306 by default) |
| `PL_BUILD_DIR` | `./build` | the build the stack runs |
| `PL_ASAN_BUILD_DIR` | `./build-asan` | the sanitizer build of `test` |
| `PL_FUZZ_BUILD_DIR` | `./build-fuzz` | the clang build of `fuzz` |
| `PL_WEB_ROOT` | `./web/dist` | the built React app nginx serves at `/` |
| `PL_NGINX_USER` | `nobody nogroup` | nginx worker user and group. If `nobody` cannot reach `$PL_VAR/run` (a parent directory is not world-searchable, e.g. a checkout under `/root`), `up` warns and runs workers as root |
| `PL_NGINX_WORKERS` | `auto` | nginx `worker_processes` |
| `PL_START_TIMEOUT` | `30` | seconds MariaDB, each pool, nginx and the health checks get to come up |
| `PL_STOP_TIMEOUT` | `20` | seconds each server gets to stop before it is killed |
| `PL_LIMIT_LOGIN_RATE` / `PL_LIMIT_LOGIN_BURST` | `5r/s` / `20` | nginx `limit_req` on `POST /api/accounts/login`, per client address, public listener |
| `PL_LIMIT_SIGNUP_RATE` / `PL_LIMIT_SIGNUP_BURST` | `1r/s` / `10` | the same for `POST /api/accounts/signup` |
| `PL_LIMIT_REFRESH_RATE` / `PL_LIMIT_REFRESH_BURST` | `5r/s` / `20` | the same for `POST /api/accounts/refresh` |
| `PL_LIMIT_CHAT_POST_RATE` / `PL_LIMIT_CHAT_POST_BURST` | `10r/s` / `40` | the same for `POST /api/chat/rooms/{room}/messages`; past a limit: 429 `rate_limited` with `Retry-After: 1` |
| `PL_NCHAN_SHM_SIZE` | `64m` | nchan's shared memory (live chat) |
| `PL_SCALE_<SVC>` | `1` | pools of that service (`up --scale SVC=N`); see [operations](operations.md#scaling-a-service-local) |
| `PL_ADMIN_EMAIL` / `PL_ADMIN_PASSWORD` | empty | `up` makes this user an admin (see [accounts](api/accounts.md)) |

The test, bench and leak stacks use fixed values of their own (ports, state
directory, pool sizes): see [operations](operations.md#the-test-stack) and
[testing](testing.md).

### What the runner passes to each service

A service binary reads only environment variables. `./pilotlight` sets for
each service `PL_LISTEN=unix:$PL_VAR/run/<svc>.sock`,
`PL_LISTEN_GROUP=nogroup` (nginx's workers connect as `nobody:nogroup`),
`PL_DB_SOCKET`, `PL_DB_PASSWORD_FILE=$PL_VAR/secrets/db_<svc>.password`
(random, made once, mode 0600), `PL_PID_FILE`, and the token keys:
`PL_JWT_PUBLIC_KEYS_FILE=$PL_VAR/secrets/jwt_public.keys` for every service,
`PL_JWT_SIGNING_KEY_FILE=$PL_VAR/secrets/jwt_signing.key` for accounts only
(made once by `pl-accounts keygen`), and for chat
`PL_NCHAN_PUBLISH_URL=<internal URL>/_pl/chat/publish/` (this stack's nchan
publisher) unless it is set already. Anything else:

* a plain `PL_<NAME>` in the environment reaches **every** service, e.g.
  `PL_MAX_CHILDREN=16 ./pilotlight up`;
* `PL_<SVC>_<NAME>` reaches only that service, as `PL_<NAME>`, e.g.
  `PL_PROJECTS_MAX_CHILDREN=4` is the projects pool's `PL_MAX_CHILDREN`. It
  is passed to `pl-migrate` too, so `PL_<SVC>_DB_NAME` / `PL_<SVC>_DB_USER`
  stay consistent.

A pool reads its settings when it starts: a change takes `./pilotlight down`
then `up` (`reload` only re-reads the token keys).
EOF
}

migrate_section() {
  local rows
  if rows=$("$build/tools/pl-migrate" --config-reference 2>/dev/null) && [[ $rows == '|'* ]]; then
    cat <<'EOF'
## pl-migrate

The migration tool (`tools/migrate.c`), run by `./pilotlight up` for each
service before its pool starts; see [migrations](../migrations/README.md).

EOF
    table_head
    printf '%s\n' "$rows"
  else
    cat <<'EOF'
## pl-migrate

The migration tool (`build/tools/pl-migrate --help`) reads `PL_DB_SOCKET`,
`PL_DB_HOST`, `PL_DB_PORT`, `PL_DB_NAME`, `PL_DB_USER` and
`PL_DB_PASSWORD(_FILE)` as the services do, and besides `PL_DB_ADMIN_USER`
(default `root`), `PL_DB_ADMIN_PASSWORD(_FILE)` and `PL_DB_USER_HOST`
(default `%`): see [migrations/README.md](../migrations/README.md).
EOF
  fi
}

render() {
  cat <<'EOF'
# Configuration

<!-- Generated by docs/configuration.sh from each service binary's
--config-reference. Do not edit: change the config rows in the C code (or the
prose in docs/configuration.sh), then run `docs/configuration.sh build`.
`docs/configuration.sh --check build` fails when this page is out of date. -->

Every setting, with its default and the values it takes. A service binary
reads only environment variables, all validated at start: a bad value stops
it with a clear message, never a surprise at request time. Each binary says
the same about itself:

```sh
build/services/projects/pl-projects --help              # every setting, its default and meaning
build/services/projects/pl-projects --print-defaults    # NAME=default lines
build/services/projects/pl-projects --config-reference  # the rows of the tables below
PL_LISTEN=unix:/tmp/p.sock build/services/projects/pl-projects --check-config
```

Values: an integer must be within its range; a bool is `1`/`0`,
`true`/`false`, `yes`/`no` or `on`/`off`; a secret (`PL_DB_PASSWORD`) may
instead come from the file its `_FILE` variable names. "unset" means no
default: the setting is off, or derived as its meaning says.
EOF
  echo
  echo '## Settings every service reads'
  echo
  echo "Read by each of: $(printf '`pl-%s`, ' "${svcs[@]}" | sed 's/, $//'). \`PL_LISTEN\` is"
  echo 'required to serve; `PL_JWT_PUBLIC_KEYS_FILE` is required by every service'
  echo 'that has routes needing a token (all of them today).'
  echo
  table_head
  cat -- "$tmp/common.rows"
  for svc in "${svcs[@]}"; do
    echo
    echo "## $svc"
    echo
    if [[ -s $tmp/$svc.own ]]; then
      echo "Read by \`pl-$svc\` only ([API](api/$svc.md))."
      echo
      table_head
      cat -- "$tmp/$svc.own"
    else
      echo "\`pl-$svc\` reads no settings of its own ([API](api/$svc.md))."
    fi
  done
  echo
  migrate_section
  echo
  stack_section
}

render >"$tmp/page.md"

if ((check)); then
  if ! diff -u --label docs/configuration.md --label "what the binaries in $build say" \
    -- "$page" "$tmp/page.md"; then
    echo "$0: docs/configuration.md is out of date: run docs/configuration.sh $build" >&2
    exit 1
  fi
  exit 0
fi
cp -- "$tmp/page.md" "$page"
echo "wrote $page"
