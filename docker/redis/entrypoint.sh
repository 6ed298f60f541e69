#!/bin/sh
# Entrypoint of the local redis:7 stand-in (docker/redis/Dockerfile), as the
# official image's: arguments that start with `-` are redis-server's; the
# server listens on every interface with protected mode off (later
# arguments may say otherwise).
set -eu
case ${1:-} in
'' | -*) set -- redis-server "$@" ;;
esac
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server --bind '* -::*' --protected-mode no "$@"
fi
exec "$@"
