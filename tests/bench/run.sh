#!/usr/bin/env bash
# run.sh: `./pilotlight bench`. The runner has chosen the bench stack's PL_VAR
# and ports (stack_bench in scripts/stack.sh); this checks the tools and
# hands over to bench.py, which brings that stack up, measures, prints one
# table and stops it.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
if [[ -z ${PL_VAR:-} || -z ${PL_HTTP_PORT:-} ]]; then
  echo "bench: run it as ./pilotlight bench (it picks the stack's ports and state dir)" >&2
  exit 2
fi
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk; ./pilotlight up installs it)" >&2; exit 1; }
[[ -x /usr/bin/python3 ]] || { echo "bench: /usr/bin/python3 is missing" >&2; exit 1; }
exec /usr/bin/python3 "$here/bench.py" "$@"
