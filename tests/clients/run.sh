#!/usr/bin/env bash
# Client compatibility suite: real Redis client libraries and redis-cli against a freshly
# started hashd, plus the seed documents' runnable examples (examples/) and the connect
# handshakes of clients that cannot be installed here (Go, Java, C#), and the log wait of
# testcontainers and Spring (`.*Ready to accept connections.*`).
#
#   tests/clients/install.sh            # once: pinned clients (see that file)
#   tests/clients/run.sh                # builds hashd (release) unless HASHD_BIN is set
#   tests/clients/run.sh python node    # only suites whose name contains one of the words
#
# Every check prints `PASS <suite> <check>` or `FAIL <suite> <check>: <why>`; a suite that
# dies without reporting counts as one failure. The last line is `N passed, N failed`, and
# the exit code is non-zero if anything failed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=lib/server.sh
. "$here/lib/server.sh"

# Largest time one suite may run before it is killed and counted as failed.
SUITE_TIMEOUT_S=${SUITE_TIMEOUT_S:-300}
started_s=$SECONDS

if [ -z "${HASHD_BIN:-}" ]; then
  echo "== building hashd (cargo build --release)"
  (cd "$root" && cargo build --release --quiet --bin hashd) || {
    echo "cargo build failed"
    echo "0 passed, 1 failed"
    exit 1
  }
  HASHD_BIN="$root/target/release/hashd"
fi
HASHD_BIN="$(command -v "$HASHD_BIN" || echo "$HASHD_BIN")"
# Absolute, because servers start inside the state directory.
HASHD_BIN="$(cd "$(dirname "$HASHD_BIN")" && pwd)/$(basename "$HASHD_BIN")"
export HASHD_BIN

HASHD_STATE="$(mktemp -d "${TMPDIR:-/tmp}/hashd-clients.XXXXXX")"
export HASHD_STATE
export HASHD_SUITE_DIR="$here"
export HASHD_ROOT="$root"
export HASHD_HOST=127.0.0.1
export HASHD_PASSWORD="compat-secret-$$"

cleanup() {
  for f in "$HASHD_STATE"/*.pid; do
    [ -e "$f" ] && server_stop "$(basename "$f" .pid)"
  done
  if [ -n "${KEEP_STATE:-}" ]; then
    echo "server logs kept in $HASHD_STATE"
  else
    rm -rf "$HASHD_STATE"
  fi
}
trap cleanup EXIT

HASHD_PORT="$(free_port)"
HASHD_AUTH_PORT="$(free_port)"
export HASHD_PORT HASHD_AUTH_PORT
echo "== hashd: $HASHD_BIN ($("$HASHD_BIN" --version 2>&1 | head -1))"
echo "   plain server on $HASHD_PORT, requirepass server on $HASHD_AUTH_PORT"
server_start plain "$HASHD_PORT" || { echo "0 passed, 1 failed"; exit 1; }
server_start auth "$HASHD_AUTH_PORT" --requirepass "$HASHD_PASSWORD" || {
  echo "0 passed, 1 failed"
  exit 1
}

passed=0
failed=0
failures=()
filters=("$@")

wanted() {
  [ "${#filters[@]}" -eq 0 ] && return 0
  local f
  for f in "${filters[@]}"; do
    case "$1" in *"$f"*) return 0 ;; esac
  done
  return 1
}

# ensure_servers: a suite that crashed mid-restart must not take the next ones down with it.
ensure_servers() {
  port_open "$HASHD_PORT" || { server_stop plain; server_start plain "$HASHD_PORT"; }
  port_open "$HASHD_AUTH_PORT" || {
    server_stop auth
    server_start auth "$HASHD_AUTH_PORT" --requirepass "$HASHD_PASSWORD"
  }
}

# run_suite NAME COMMAND...: runs one scenario program and tallies its PASS/FAIL lines.
run_suite() {
  local name="$1"
  shift
  wanted "$name" || return 0
  ensure_servers
  echo "== $name"
  local out="$HASHD_STATE/suite.out" rc t0=$SECONDS
  timeout --kill-after=10 "$SUITE_TIMEOUT_S" "$@" >"$out" 2>&1 </dev/null
  rc=$?
  local p f
  p=$(grep -c '^PASS ' "$out")
  f=$(grep -c '^FAIL ' "$out")
  grep -E '^(FAIL|INFO) ' "$out" | sed 's/^/   /'
  while IFS= read -r line; do failures+=("$line"); done < <(grep '^FAIL ' "$out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
    failures+=("FAIL $name: exited with code $rc without reporting a failure")
    echo "   FAIL $name: exited with code $rc; last output:"
    tail -15 "$out" | sed 's/^/   | /'
  elif [ "$rc" -eq 0 ] && [ "$f" -gt 0 ]; then
    failures+=("FAIL $name: reported failures but exited 0")
    f=$((f + 1))
  fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    f=1
    failures+=("FAIL $name: ran no check")
    echo "   FAIL $name: ran no check"
  fi
  echo "   $p passed, $f failed ($((SECONDS - t0))s)"
  passed=$((passed + p))
  failed=$((failed + f))
}

py="$here/.venv/bin/python"
[ -x "$py" ] || py=python3
node_dir="$here/node"

# --- real clients ------------------------------------------------------------------------------
run_suite "redis-cli" bash "$here/redis-cli/redis_cli.sh"
run_suite "redis-py resp3 hiredis" "$py" "$here/python/redis_py.py" --protocol 3
run_suite "redis-py resp3 python-parser" "$py" "$here/python/redis_py.py" --protocol 3 --no-hiredis
run_suite "redis-py resp2 hiredis" "$py" "$here/python/redis_py.py" --protocol 2
run_suite "redis-py resp2 python-parser" "$py" "$here/python/redis_py.py" --protocol 2 --no-hiredis
run_suite "node-redis resp3" node "$node_dir/node_redis.js" --resp 3
run_suite "node-redis resp2" node "$node_dir/node_redis.js" --resp 2
run_suite "ioredis resp3" node "$node_dir/ioredis.js" --resp 3
run_suite "ioredis resp2" node "$node_dir/ioredis.js" --resp 2
run_suite "tls clients" bash "$here/tls/tls_clients.sh"
run_suite "acl clients" bash "$here/acl/acl_clients.sh"
run_suite "cluster clients" bash "$here/cluster/cluster_clients.sh"
run_suite "phpredis" php "$here/php/phpredis.php"
run_suite "predis" php "$here/php/predis.php"

# --- clients that cannot run here: their connect handshakes as raw RESP ------------------------
run_suite "handshakes go/java/csharp" python3 "$here/handshakes/handshakes.py"

# --- the seed documents' examples ---------------------------------------------------------------
run_suite "examples" bash "$here/examples.sh"

# --- testcontainers / Spring: wait for "Ready to accept connections" on stdout, then PING ---------
run_suite "wait-strategy" python3 "$here/wait_strategy/ready_log.py"

# --- the container's command line, run without a container engine -------------------------------
run_suite "docker-config" "$py" "$here/docker_config.py"

echo
if [ "${#failures[@]}" -gt 0 ]; then
  echo "== failures"
  printf '   %s\n' "${failures[@]}"
fi
echo "== client suite took $((SECONDS - started_s))s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
