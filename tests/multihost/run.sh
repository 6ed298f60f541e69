#!/usr/bin/env bash
# tests/multihost/run.sh: the several-hosts test (issue 19), a step of
# `./pilotlight test`: network namespaces linked by veth pairs, each a host
# (two nginx fronts sharing Redis, two service hosts, a three-node Galera
# cluster), bounded load through both fronts while a service host is cut off,
# a database node killed, Redis stopped and a front stopped; see
# multihost.py. Needs root; skipped (exit 0, with a message) only where the
# kernel or container allows no network namespaces. Removes every namespace
# and process it made, also on failure or interruption. At most 10 minutes.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
: "${PL_ROOT:=$(dirname -- "$(dirname -- "$here")")}"
export PL_ROOT

# Namespaces are the machine's: one run at a time (another waits, up to 10 minutes).
exec 8>/run/lock/pilotlight-multihost.lock
flock -w 600 8 || { echo "multihost: another run holds /run/lock/pilotlight-multihost.lock" >&2; exit 1; }
if ! ip netns add plmh-probe 2>/dev/null; then
  echo "multihost: SKIPPED: no network namespaces here ('ip netns add' failed: not root, or no netns support)"
  exit 0
fi
ip netns del plmh-probe
timeout --kill-after=30 600 /usr/bin/python3 "$here/multihost.py" 8>&-
