#!/usr/bin/env bash
# Starts, stops and restarts hashd instances for the client suite.
#
# Sourced by run.sh, and also run as a command by the scenarios for the reconnect test:
#   lib/server.sh restart NAME       (needs HASHD_STATE and HASHD_BIN in the environment)
#
# Each instance NAME keeps its port, arguments, pid and log under $HASHD_STATE/NAME.*, so a
# restart brings it back on the same port with the same flags (and, being in-memory, empty).

# Largest time to wait for a port to accept connections or for a process to exit.
SERVER_WAIT_S=${SERVER_WAIT_S:-15}

# A TCP port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True once something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port_open() {
  local port="$1" deadline=$((SECONDS + SERVER_WAIT_S))
  until port_open "$port"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# server_start NAME PORT [hashd flags...]
server_start() {
  local name="$1" port="$2"
  shift 2
  printf '%s\n' "$port" >"$HASHD_STATE/$name.port"
  : >"$HASHD_STATE/$name.args"
  [ "$#" -gt 0 ] && printf '%s\0' "$@" >"$HASHD_STATE/$name.args"
  # HASHD_ARGS: extra flags for every instance (e.g. to point the suite at another server).
  # shellcheck disable=SC2086
  # Started inside the state directory, so nothing a server writes lands in the work tree.
  (cd "$HASHD_STATE" && exec "$HASHD_BIN" --port "$port" --save '' ${HASHD_ARGS:-} "$@") >>"$HASHD_STATE/$name.log" 2>&1 &
  echo $! >"$HASHD_STATE/$name.pid"
  if ! wait_port_open "$port"; then
    echo "server.sh: hashd '$name' did not open port $port; log:" >&2
    tail -20 "$HASHD_STATE/$name.log" >&2
    return 1
  fi
}

# server_stop NAME: SIGTERM, then wait for the process to be gone.
server_stop() {
  local name="$1" pid deadline
  [ -f "$HASHD_STATE/$name.pid" ] || return 0
  pid="$(cat "$HASHD_STATE/$name.pid")"
  rm -f "$HASHD_STATE/$name.pid"
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + SERVER_WAIT_S))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "server.sh: hashd '$name' (pid $pid) ignored SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
      break
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || true
}

server_restart() {
  local name="$1" port args=()
  port="$(cat "$HASHD_STATE/$name.port")"
  while IFS= read -r -d '' a; do args+=("$a"); done <"$HASHD_STATE/$name.args"
  server_stop "$name"
  server_start "$name" "$port" "${args[@]}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  : "${HASHD_STATE:?HASHD_STATE is not set}" "${HASHD_BIN:?HASHD_BIN is not set}"
  cmd="${1:-}"
  shift || true
  case "$cmd" in
    restart) server_restart "$@" ;;
    stop) server_stop "$@" ;;
    *)
      echo "usage: $0 restart|stop NAME" >&2
      exit 2
      ;;
  esac
fi
