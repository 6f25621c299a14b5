#!/bin/sh
# Container entrypoint: redis-server-style command lines, listening on all interfaces.
#
#   (no arguments)            → hashd --protected-mode no --bind 0.0.0.0
#   --requirepass pw ...      → hashd --requirepass pw ... --bind 0.0.0.0
#   redis-server --port 6380  → hashd --port 6380 --bind 0.0.0.0
#   /etc/redis.conf ...       → hashd /etc/redis.conf ... --bind 0.0.0.0 (redis.conf syntax)
#   hashd --bind 127.0.0.1    → unchanged (an explicit --bind wins)
#   redis-cli ... / sh        → run as given
set -e

case "${1:-}" in
  -*) set -- hashd "$@" ;;
  redis-server) shift; set -- hashd "$@" ;;
  *.conf | *.toml) set -- hashd "$@" ;;
esac

if [ "${1:-}" = hashd ]; then
  bind_given=no
  protected_given=no
  config_given=no
  for arg in "$@"; do
    case "$arg" in
      --bind | --bind=*) bind_given=yes ;;
      --protected-mode | --protected-mode=*) protected_given=yes ;;
      *.conf | *.toml) config_given=yes ;;
    esac
  done
  # As the official Redis image, whose build turns protected mode off by default: in a
  # container the published port is the boundary. A mounted config file decides for itself.
  if [ "$protected_given" = no ] && [ "$config_given" = no ]; then
    set -- "$@" --protected-mode no
  fi
  # Appended last: --bind takes several values, so it must not swallow a following argument.
  if [ "$bind_given" = no ]; then
    set -- "$@" --bind 0.0.0.0
  fi
fi

exec "$@"
