#!/usr/bin/env bash
# tests/browser/run.sh [FILE.test.mjs...]: the web client's browser tests:
# Debian's Chromium driven by playwright-core (node's test runner; every
# *.test.mjs here, or the files named) against a running stack. `./pilotlight test` runs it with PL_BASE_URL,
# PL_ADMIN_EMAIL and PL_ADMIN_PASSWORD in the environment; against a stack
# kept with `./pilotlight test --keep`, PL_VAR=var/test-N is enough (its
# test.env is read). Screenshots of each main page, and of any failure, go to
# var/screenshots/ of this checkout (PL_SCREENSHOTS to change it).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)

if [[ -z ${PL_BASE_URL:-} && -n ${PL_VAR:-} && -f $PL_VAR/test.env ]]; then
  set -a
  # shellcheck disable=SC1091
  . "$PL_VAR/test.env"
  set +a
fi
: "${PL_BASE_URL:?PL_BASE_URL is not set (run through ./pilotlight test, or set PL_VAR to a kept test stack)}"
: "${PL_ADMIN_EMAIL:?PL_ADMIN_EMAIL is not set}"
: "${PL_ADMIN_PASSWORD:?PL_ADMIN_PASSWORD is not set}"
# the stack's mail sink keeps each mail as $PL_VAR/mail/*.eml (the account pages' links)
if [[ -z ${PL_MAIL_DIR:-} && -n ${PL_VAR:-} ]]; then
  PL_MAIL_DIR=$(cd "$root" && realpath -m "$PL_VAR/mail")
fi
export PL_MAIL_DIR=${PL_MAIL_DIR:-}
[[ -x ${PL_CHROMIUM:=/usr/bin/chromium} ]] || { echo "browser tests: $PL_CHROMIUM is missing (Debian package chromium)" >&2; exit 1; }
export PL_CHROMIUM

cd "$here"
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

export PL_SCREENSHOTS=${PL_SCREENSHOTS:-$root/var/screenshots}
mkdir -p "$PL_SCREENSHOTS"
# only this run's pictures: a failure-*.png left there is from this run
find "$PL_SCREENSHOTS" -maxdepth 1 -name '*.png' -delete
files=("$@")
((${#files[@]})) || files=(app.test.mjs resilience.test.mjs accounts.test.mjs quality.test.mjs api_reference.test.mjs)
# bounded: the whole run takes about four minutes; a hung browser must not hang the suite
timeout 900 node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
