#!/usr/bin/env bash
# Replays a .redis file of seed commands through redis-cli, one command per line, and prints a
# transcript like the seed pages show: "> COMMAND" then redis-cli's terminal-style answer.
#
#   examples/redis-cli/run.sh examples/redis-cli/seed001_hash_tutorial.redis
#   REDIS_URL=redis://127.0.0.1:6380 examples/redis-cli/run.sh FILE
set -euo pipefail
url="${REDIS_URL:-redis://127.0.0.1:6379}"
while IFS= read -r line || [ -n "$line" ]; do
  [ -z "$line" ] && continue
  echo "> $line"
  # redis-cli splits the line itself, so quoting works as at its prompt.
  printf '%s\n' "$line" | redis-cli --no-raw -u "$url"
done <"${1:?usage: $0 FILE.redis}"
