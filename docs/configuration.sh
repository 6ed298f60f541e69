#!/usr/bin/env bash
# configuration.sh: writes docs/configuration.md from the binaries and the
# stack's defaults files themselves.
#
#   docs/configuration.sh BUILD_DIR           write docs/configuration.md
#   docs/configuration.sh --check BUILD_DIR   exit 1 with a diff when the page
#                                             differs from what they say
#
# Each service binary prints a Markdown table row for every setting it reads
# (`pl-<svc> --config-reference`, from libshared's and its own config rows:
# the one place names, defaults and bounds are written). Rows every binary
# prints identically are the common settings and appear once; then each
# service's own rows, then pl-migrate's. The stack's settings come from the
# lines that set their defaults, each with its meaning as a comment: the
# defaults block of scripts/lib.sh and nginx/defaults.env. The page's prose
# is below, in this script: edit it here, then run the script; never edit
# docs/configuration.md by hand. --check compares the whole page (meson test
# docs_configuration runs it, suite unit).
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

# The services, in name order: services/list, read and checked by the
# runner's own code (scripts/lib.sh: one name a line, nothing else), so this
# page refuses a list the runner would refuse.
PL_ROOT=$root
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
mapfile -t svcs < <(printf '%s\n' "${SERVICES[@]}" | LC_ALL=C sort -u)

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

# stack_rows FILE [BLOCK]: a table row for each `: "${PL_X:=value}"  # meaning`
# line of FILE (only those between the line `# ---- BLOCK` and the next
# `# ----` line, when BLOCK is given): the variable, its default ($PL_ROOT,
# the checkout, shown as `.`) and the line's comment as its meaning. A line
# of that shape without a comment, or one this cannot read, is an error: the
# comment is the documentation.
stack_rows() {
  local file=$1 block=${2:-} line name value meaning n=0 inside=1 lineno=0
  local re='^: "\$\{(PL_[A-Z0-9_]+):=([^}]*)\}"[[:space:]]*(#[[:space:]]*(.*))?$'
  [[ -r $root/$file ]] || { echo "$0: $file is missing" >&2; return 1; }
  [[ -z $block ]] || inside=0
  while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    if [[ -n $block && $line == '# ----'* ]]; then
      if [[ $line == "# ---- $block"* ]]; then inside=1; else inside=0; fi
      continue
    fi
    if ((!inside)) || [[ $line != ': "${PL_'* ]]; then continue; fi
    [[ $line =~ $re ]] || { echo "$0: $file:$lineno: cannot read this default: $line" >&2; return 1; }
    name=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]} meaning=${BASH_REMATCH[4]}
    [[ -n $meaning ]] || { echo "$0: $file:$lineno: $name has no comment (its meaning on this page)" >&2; return 1; }
    value=${value//'$PL_ROOT'/.}
    if [[ -z $value ]]; then value=empty; else value="\`$value\`"; fi
    printf '| `%s` | %s | %s |\n' "$name" "$value" "${meaning//|/\\|}"
    n=$((n + 1))
  done <"$root/$file"
  ((n > 0)) || { echo "$0: $file${block:+ (block '# ---- $block')} has no defaults" >&2; return 1; }
}

# The stack's settings: the runner's (scripts/lib.sh) and nginx's
# (nginx/defaults.env), rendered from the lines that set their defaults.
stack_section() {
  local runner nginx
  runner=$(stack_rows scripts/lib.sh "the runner's defaults") || return 1
  nginx=$(stack_rows nginx/defaults.env) || return 1
  cat <<'EOF'
## The stack (`./pilotlight` and nginx)

The settings only the runner and nginx know. Each default is written once,
on a line of its own with its meaning as a comment: the runner's in the
defaults block at the top of `scripts/lib.sh`, nginx's in
`nginx/defaults.env` (which the runner and the compose nginx entrypoint
both read). The two tables below are rendered from those lines. Each can be
set in the environment; `.` is the checkout.

### The runner (`scripts/lib.sh`)

| variable | default | meaning |
|---|---|---|
EOF
  printf '%s\n' "$runner"
  cat <<'EOF'

`PL_DB_PORT` is not among them: it is the services' setting (the port they
connect to, above). Set without `PL_MARIADB_PORT`, the runner warns that
MariaDB listens on `PL_MARIADB_PORT`.

### nginx (`nginx/defaults.env`)

Rendered into the nginx config by `nginx/render.sh`, which checks each value
first (a bad one stops `up`, `reload` or the compose nginx container with a
message, before nginx sees it).

| variable | default | meaning |
|---|---|---|
EOF
  printf '%s\n' "$nginx"
  cat <<'EOF'

### Set elsewhere

* `PL_TEST_SLOT` (`0`–`9`, default `0`): which isolated stack `test`,
  `soak` and `bench` use: `var/test-N` / `var/bench-N`, every port shifted
  by N×100 (see [operations](operations.md#the-test-stack)).
* `PL_UPSTREAM_<SVC>` (nginx): that service's pools, space-separated
  `host:port` (pools on other hosts) or `unix:/path` entries, instead of the
  local pools' sockets (or, in compose, the service's name); read by
  `nginx/render.sh` (see [beyond one machine](scaling-out.md#fronts)).
* `PL_SCALE_<SVC>`: how many pools of that service `up` runs (`up --scale
  SVC=N` sets it); later commands keep the last `up`'s scale (see
  [operations](operations.md#scaling-a-service-local)).
* `PL_ADMIN_EMAIL` / `PL_ADMIN_PASSWORD`: `up` makes this user an admin
  (see [accounts](api/accounts.md)); empty by default.
* `PL_LISTEN_GROUP` (default `nogroup`): the group of each pool's socket;
  nginx's workers must be in it.
* The compose nginx entrypoint (`nginx/compose/entrypoint.sh`) sets its own
  defaults for what differs in a container: `PL_WEB_ROOT`, `PL_NGINX_USER`,
  `PL_SERVICE_PORT` (the port every service container listens on),
  `PL_RESOLVER` and `PL_RESOLVER_VALID` (Docker's DNS, and how long an
  answer is kept); the rest comes from `nginx/defaults.env`.

The test, bench and leak stacks use fixed values of their own (ports, state
directory, pool sizes): see [operations](operations.md#the-test-stack) and
[testing](testing.md).

### What the runner passes to each service

A service binary reads only environment variables. `./pilotlight`
(`scripts/pools.sh`) starts each pool through `start-stop-daemon`, its
output appended to `$PL_VAR/log/<inst>.log`, after a `--check-config` with
the same settings. `<inst>` is the pool's name: the service's name, or
`<svc>-2` … for the extra pools of a scaled service. It sets:

| variable | value |
|---|---|
| `PL_LISTEN` | `unix:$PL_VAR/run/<inst>.sock` |
| `PL_LISTEN_GROUP` | `nogroup` unless set: nginx's workers connect as `nobody:nogroup` |
| `PL_PID_FILE` | `$PL_VAR/run/<inst>.pid`: the master's pid |
| `PL_SUPERVISOR_PID_FILE` | `$PL_VAR/run/<inst>.supervisor.pid`: the process started, which restarts the master if it dies; stopping it stops the pool |
| `PL_SWAP_STATUS_FILE` | `$PL_VAR/run/<inst>.swap`: the outcome of the pool's last binary swap (deploy, rollback) |
| `PL_LOG_FILE` | `$PL_VAR/log/<inst>.log`: the pool's log, reopened on SIGUSR1 (logrotate) |
| `PL_DB_SOCKET` | `$PL_VAR/run/mysqld.sock`, the stack's MariaDB |
| `PL_DB_PASSWORD_FILE` | `$PL_VAR/secrets/db_<svc>.password` (random, made once, mode 0600) |
| `PL_JWT_PUBLIC_KEYS_FILE` | `$PL_VAR/secrets/jwt_public.keys`, for every service |
| `PL_JWT_SIGNING_KEY_FILE` | `$PL_VAR/secrets/jwt_signing.key`, for a service that reads it (accounts); the pair is made once by `pl-accounts keygen` |
| `PL_NCHAN_PUBLISH_URL` | `<internal URL>/_pl/chat/publish/` (this stack's nchan publisher), for a service that reads it (chat), unless set |
| `PL_GATEWAY_URL` | the internal URL (`http://PL_INTERNAL_BIND:PL_INTERNAL_PORT`), unless set: invocations go through this stack's nginx |

A service "reads" a setting when `pl-<svc> --print-defaults` names it.
`pl-migrate` gets the same database settings for each service. Anything else:

* a plain `PL_<NAME>` in the environment reaches **every** service, e.g.
  `PL_MAX_CHILDREN=16 ./pilotlight up`;
* `PL_<SVC>_<NAME>` reaches only that service, as `PL_<NAME>`, e.g.
  `PL_PROJECTS_MAX_CHILDREN=4` is the projects pools' `PL_MAX_CHILDREN`. It
  is passed to `pl-migrate` too, so `PL_<SVC>_DB_NAME` / `PL_<SVC>_DB_USER`
  stay consistent.

A pool reads its settings when it starts: a change takes `./pilotlight down`
then `up` (`up` restarts a running pool only when its binary changed or
`PL_BUILD_DIR` names another build; `reload` only re-reads the token keys).
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
--config-reference and from the stack's defaults (scripts/lib.sh,
nginx/defaults.env). Do not edit: change the config rows in the C code, the
defaults' comments in those two files (or the prose in
docs/configuration.sh), then run `docs/configuration.sh build`.
`docs/configuration.sh --check build` fails when any part of this page is
out of date. -->

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
  if ! diff -u --label docs/configuration.md --label "what the binaries in $build and the defaults files say" \
    -- "$page" "$tmp/page.md"; then
    echo "$0: docs/configuration.md is out of date: run docs/configuration.sh $build" >&2
    exit 1
  fi
  exit 0
fi
cp -- "$tmp/page.md" "$page"
echo "wrote $page"
