#!/usr/bin/env bash
# Cluster clients against three hashd masters with a replica each, the topology pushed with
# CLUSTERX SETNODEID / SETNODES (as kvrocks-controller does): redis-py RedisCluster,
# ioredis Cluster and node-redis createCluster each write and read 10,000 hashes with a
# field TTL, run a hash-tagged multi-key command, and are refused a cross-slot one with
# Redis's CROSSSLOT.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/server.sh
. "$here/../lib/server.sh"

pass() { echo "PASS cluster $1"; }
fail() { echo "FAIL cluster $1: $2"; }

ids=(1111111111111111111111111111111111111111 2222222222222222222222222222222222222222
  3333333333333333333333333333333333333333 4444444444444444444444444444444444444444
  5555555555555555555555555555555555555555 6666666666666666666666666666666666666666)
ranges=(0-5460 5461-10922 10923-16383)
ports=()
for i in 0 1 2 3 4 5; do
  ports+=("$(free_port)")
  mkdir -p "$HASHD_STATE/cluster$i"
  server_start "cluster$i" "${ports[$i]}" --cluster-enabled yes --dir "$HASHD_STATE/cluster$i" ||
    { fail "start" "node $i did not start"; exit 1; }
done
topology=""
for m in 0 1 2; do
  topology+="${ids[$m]} 127.0.0.1 ${ports[$m]} master - ${ranges[$m]}"$'\n'
done
for r in 0 1 2; do
  topology+="${ids[$((3 + r))]} 127.0.0.1 ${ports[$((3 + r))]} slave ${ids[$r]}"$'\n'
done
for i in 0 1 2 3 4 5; do
  redis-cli -p "${ports[$i]}" CLUSTERX SETNODEID "${ids[$i]}" >/dev/null
  got="$(redis-cli -p "${ports[$i]}" CLUSTERX SETNODES "$topology" 1)"
  [ "$got" = "OK" ] || { fail "topology" "node $i answered '$got'"; exit 1; }
done
got="$(redis-cli -p "${ports[0]}" CLUSTER INFO | head -1 | tr -d '\r')"
[ "$got" = "cluster_state:ok" ] && pass "topology pushed, cluster_state:ok" || fail "cluster_state" "$got"

got="$(redis-cli -c -p "${ports[0]}" HSET cli:a f v 2>&1)"
[ "$got" = "1" ] && pass "redis-cli -c follows MOVED" || fail "redis-cli -c" "got '$got'"

py="$HASHD_SUITE_DIR/.venv/bin/python"
[ -x "$py" ] || py=python3
got="$(PORT="${ports[0]}" "$py" - <<'PY' 2>&1
import os
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError
rc = RedisCluster(host="127.0.0.1", port=int(os.environ["PORT"]), decode_responses=True)
for i in range(10000):
    rc.hset(f"py:{i}", mapping={"name": str(i), "session": "s"})
    rc.hexpire(f"py:{i}", 3600, "session")
for i in range(0, 10000, 101):
    assert rc.hget(f"py:{i}", "name") == str(i)
    assert 3500 < rc.httl(f"py:{i}", "session")[0] <= 3600
rc.hset("{grp}a", "f", "1")
rc.hset("{grp}b", "f", "2")
assert rc.delete("{grp}a", "{grp}b") == 2
node = rc.get_node_from_key("py:1")
try:
    rc.execute_command("DEL", "py:1", "py:2", target_nodes=node)
    raise SystemExit("CROSSSLOT not raised")
except ResponseError as e:
    assert "hash to the same slot" in str(e), e
print("ok")
PY
)"
[ "$got" = "ok" ] && pass "redis-py RedisCluster: 10,000 hashes with field TTLs" || fail "redis-py RedisCluster" "$(echo "$got" | tail -3 | tr "\n" " ")"

node_dir="$HASHD_SUITE_DIR/node"
got="$(cd "$node_dir" && PORT="${ports[0]}" node -e '
const { createCluster } = require("redis");
const Redis = require("ioredis");
const port = Number(process.env.PORT);
(async () => {
  const c = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${port}` }] });
  c.on("error", () => {});
  await c.connect();
  for (let i = 0; i < 10000; i++) {
    await c.hSet(`nr:${i}`, { name: String(i), session: "s" });
    await c.sendCommand(`nr:${i}`, false, ["HEXPIRE", `nr:${i}`, "3600", "FIELDS", "1", "session"]);
  }
  for (let i = 0; i < 10000; i += 101) {
    if (await c.hGet(`nr:${i}`, "name") !== String(i)) throw new Error("node-redis read " + i);
  }
  await c.hSet("{nr}a", "f", "1");
  await c.hSet("{nr}b", "f", "2");
  if (await c.del(["{nr}a", "{nr}b"]) !== 2) throw new Error("node-redis DEL with a hash tag");
  await c.quit();
  const io = new Redis.Cluster([{ host: "127.0.0.1", port }]);
  for (let i = 0; i < 10000; i++) {
    await io.hset(`io:${i}`, "name", String(i), "session", "s");
    await io.call("HEXPIRE", `io:${i}`, "3600", "FIELDS", "1", "session");
  }
  for (let i = 0; i < 10000; i += 101) {
    if (await io.hget(`io:${i}`, "name") !== String(i)) throw new Error("ioredis read " + i);
    const ttl = await io.call("HTTL", `io:${i}`, "FIELDS", "1", "session");
    if (!(ttl[0] > 3500)) throw new Error("ioredis ttl " + ttl);
  }
  let cross = "";
  try { await io.del("io:1", "io:2"); } catch (e) { cross = e.message; }
  if (!/CROSSSLOT/.test(cross)) throw new Error("ioredis CROSSSLOT: " + cross);
  await io.quit();
  console.log("ok");
})().catch(e => { console.log("error " + e.message); process.exit(0); });
' 2>&1 | tail -1)"
[ "$got" = "ok" ] && pass "node-redis createCluster and ioredis Cluster: 10,000 hashes each" ||
  fail "node-redis/ioredis cluster" "$got"

# Reads on a replica after READONLY: the replica of the master serving py:1, once its first
# sync is done (a diskless sync waits repl-diskless-sync-delay, 5 s, as in Redis).
served=""
for _ in $(seq 60); do
  for i in 3 4 5; do
    ok="$(printf 'READONLY\nHGET py:1 name\n' | redis-cli -p "${ports[$i]}" 2>&1 | tail -1)"
    [ "$ok" = "1" ] && served="$i"
  done
  [ -n "$served" ] && break
  sleep 0.5
done
[ -n "$served" ] && pass "READONLY read on a replica" || fail "READONLY read on a replica" "no replica served it"
# Failover as the controller does it: the first master dies, a new topology (version 2)
# names its replica master; a RedisCluster made before re-routes and reads every key back.
topology2="${ids[3]} 127.0.0.1 ${ports[3]} master - ${ranges[0]}"$'\n'
for m in 1 2; do topology2+="${ids[$m]} 127.0.0.1 ${ports[$m]} master - ${ranges[$m]}"$'\n'; done
for r in 1 2; do topology2+="${ids[$((3 + r))]} 127.0.0.1 ${ports[$((3 + r))]} slave ${ids[$r]}"$'\n'; done
got="$(PORTS="${ports[*]}" TOPO="$topology2" PIDFILE="$HASHD_STATE/cluster0.pid" "$py" - <<'PY' 2>&1
import os, signal, time
import redis
from redis.cluster import RedisCluster
ports = [int(p) for p in os.environ["PORTS"].split()]
rc = RedisCluster(host="127.0.0.1", port=ports[1], decode_responses=True)
keys = [f"fo:{i}" for i in range(2000)]
for k in keys:
    rc.hset(k, "v", k)
m0 = redis.Redis(port=ports[0])
m0.hset("{user1000}", "f", "v")
assert m0.execute_command("WAIT", 1, 10000) == 1, "the replica did not catch up"
os.kill(int(open(os.environ["PIDFILE"]).read()), signal.SIGKILL)
for p in ports[1:]:
    assert redis.Redis(port=p).execute_command("CLUSTERX", "SETNODES", os.environ["TOPO"], 2) == b"OK"
for k in keys:
    assert rc.hget(k, "v") == k, k
rc.hset("{user1000}", "g", "w")
print("ok")
PY
)"
[ "$got" = "ok" ] && pass "redis-py RedisCluster re-routes after a failover by topology" ||
  fail "redis-py failover" "$(echo "$got" | tail -3 | tr "\n" " ")"
for i in 0 1 2 3 4 5; do server_stop "cluster$i"; done
