#!/usr/bin/env bash
# Runs every seed example under examples/ against the plain hashd of run.sh, each on a freshly
# flushed server, and compares its output with the .expected file beside it
# (see lib/compare_output.py). Prints PASS/FAIL lines for run.sh.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="${HASHD_ROOT:-$(cd "$here/../.." && pwd)}"
ex="$root/examples"
P=${HASHD_PORT:?}
export REDIS_URL="redis://127.0.0.1:$P"
py="$here/.venv/bin/python"
[ -x "$py" ] || py=python3
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
failed=0

check() { # check NAME EXPECTED-FILE COMMAND...
  local name="$1" expected="$2" why
  shift 2
  if ! redis-cli -p "$P" flushall >/dev/null 2>&1; then
    echo "FAIL examples $name: FLUSHALL before the example failed"
    failed=1
    return
  fi
  if ! timeout 60 "$@" >"$out" 2>&1 </dev/null; then
    echo "FAIL examples $name: exited non-zero: $(tail -5 "$out" | tr '\n' '|')"
    failed=1
    return
  fi
  if why="$(python3 "$here/lib/compare_output.py" "$expected" "$out")"; then
    echo "PASS examples $name"
  else
    echo "FAIL examples $name: $why"
    failed=1
  fi
}

for f in "$ex"/redis-cli/*.redis; do
  check "redis-cli/$(basename "$f")" "${f%.redis}.expected" "$ex/redis-cli/run.sh" "$f"
done
for f in "$ex"/python/*.py; do
  check "python/$(basename "$f")" "${f%.py}.expected" "$py" "$f"
done
for f in "$ex"/node/*.mjs; do
  check "node/$(basename "$f")" "${f%.mjs}.expected" node "$f"
done
for f in "$ex"/php/*.php; do
  check "php/$(basename "$f")" "${f%.php}.expected" php "$f"
done

# Rust: cargo examples (examples/*.rs), built with the dev profile that `cargo test` also uses.
if (cd "$root" && cargo build --quiet --examples) >"$out" 2>&1; then
  for f in "$ex"/*.rs; do
    name="$(basename "$f" .rs)"
    check "rust/$name" "$ex/$name.expected" "$root/target/debug/examples/$name"
  done
else
  echo "FAIL examples rust: cargo build --examples failed: $(tail -5 "$out" | tr '\n' '|')"
  failed=1
fi

exit "$failed"
