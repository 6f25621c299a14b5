#!/bin/sh
# Container entrypoint: redis-server-style command lines, listening on all interfaces.
#
#   (no arguments)            → hashd --bind 0.0.0.0
#   --requirepass pw ...      → hashd --requirepass pw ... --bind 0.0.0.0
#   redis-server --port 6380  → hashd --port 6380 --bind 0.0.0.0
#   hashd --bind 127.0.0.1    → unchanged (an explicit --bind wins)
#   redis-cli ... / sh        → run as given
set -e

case "${1:-}" in
  -*) set -- hashd "$@" ;;
  redis-server) shift; set -- hashd "$@" ;;
  *.conf)
    echo "docker-entrypoint: hashd reads a TOML config file (see config/hashd.toml), not redis.conf;" \
      "pass redis.conf directives as --flags instead" >&2
    set -- hashd "$@"
    ;;
esac

if [ "${1:-}" = hashd ]; then
  bind_given=no
  for arg in "$@"; do
    case "$arg" in --bind | --bind=*) bind_given=yes ;; esac
  done
  # Appended last: --bind takes several values, so it must not swallow a following argument.
  if [ "$bind_given" = no ]; then
    set -- "$@" --bind 0.0.0.0
  fi
fi

exec "$@"
