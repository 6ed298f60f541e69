#!/usr/bin/env bash
# tests/openapi/run.sh: the OpenAPI document a running stack serves
# (/api/openapi.json) validated as OpenAPI 3.1 by @readme/openapi-parser
# (validate.mjs). `./pilotlight test` runs it with PL_BASE_URL in the
# environment; against a stack kept with `./pilotlight test --keep`,
# PL_VAR=var/test-N is enough (its test.env is read). A file may be named
# instead: tests/openapi/run.sh build/tools/openapi/openapi.json
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)

if [[ -z ${PL_BASE_URL:-} && -n ${PL_VAR:-} && -f $PL_VAR/test.env ]]; then
  set -a
  # shellcheck disable=SC1091
  . "$PL_VAR/test.env"
  set +a
fi
if (($# > 0)); then
  doc=$(realpath -- "$1")
else
  : "${PL_BASE_URL:?PL_BASE_URL is not set (run through ./pilotlight test, or set PL_VAR to a kept test stack)}"
  doc=$PL_BASE_URL/api/openapi.json
fi

cd "$here"
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
timeout 120 node validate.mjs "$doc"
