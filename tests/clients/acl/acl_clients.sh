#!/usr/bin/env bash
# ACL users through real clients: hashd started redis-server style with `--user` directives
# (a named user limited to app:* keys and the hash commands but HDEL) and a default-user
# password; redis-cli --user/--pass, redis-py (username=, RESP2 and RESP3), node-redis and
# ioredis log in as the named user, are refused what it may not do with Redis's -NOPERM,
# and a wrong password gets -WRONGPASS. (ioredis warns that its ready check's INFO is refused,
# as it does against Redis for such a user; only its result line is read.)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/server.sh
. "$here/../lib/server.sh"

pass() { echo "PASS acl $1"; }
fail() { echo "FAIL acl $1: $2"; }

port="$(free_port)"
server_start acl "$port" --requirepass adminpw \
  --user app on '>apppw' '~app:*' '&app.*' +@hash -hdel +@connection '+acl|whoami' \
  --user reader on '>readpw' '~*' +@read || { fail "start" "hashd did not start"; exit 1; }

cli=(redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning)
got="$("${cli[@]}" --user app --pass apppw HSET app:k f v 2>&1)"
[ "$got" = "1" ] && pass "redis-cli --user --pass HSET" || fail "redis-cli --user --pass HSET" "got '$got'"
got="$("${cli[@]}" --user app --pass apppw HDEL app:k f 2>&1)"
[ "$got" = "NOPERM User app has no permissions to run the 'hdel' command" ] &&
  pass "redis-cli NOPERM command" || fail "redis-cli NOPERM command" "got '$got'"
got="$("${cli[@]}" --user app --pass apppw HSET other f v 2>&1)"
[ "$got" = "NOPERM No permissions to access a key" ] &&
  pass "redis-cli NOPERM key" || fail "redis-cli NOPERM key" "got '$got'"
got="$("${cli[@]}" --user app --pass wrong PING 2>&1)"
case "$got" in
  *WRONGPASS*) pass "redis-cli wrong password" ;;
  *) fail "redis-cli wrong password" "got '$got'" ;;
esac
got="$("${cli[@]}" --user app --pass apppw ACL WHOAMI 2>&1)"
[ "$got" = "app" ] && pass "redis-cli ACL WHOAMI" || fail "redis-cli ACL WHOAMI" "got '$got'"
got="$("${cli[@]}" -a adminpw ACL LOG 1 2>&1 | head -2 | tr '\n' ' ')"
[ "$got" = "count 1 " ] || [ "$got" = "count 2 " ] && pass "redis-cli ACL LOG as admin" ||
  fail "redis-cli ACL LOG as admin" "got '$got'"

py="$HASHD_SUITE_DIR/.venv/bin/python"
[ -x "$py" ] || py=python3
got="$(PORT="$port" "$py" - <<'PY' 2>&1
import os, redis
port = int(os.environ["PORT"])
for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, username="app", password="apppw",
                    protocol=protocol, decode_responses=True)
    assert r.hset("app:py", mapping={"a": "1"}) in (0, 1)
    assert r.hgetall("app:py") == {"a": "1"}, r.hgetall("app:py")
    try:
        r.hdel("app:py", "a")
        raise SystemExit("HDEL was allowed")
    except redis.exceptions.NoPermissionError as e:
        assert "no permissions to run the 'hdel' command" in str(e), e
    ro = redis.Redis(host="127.0.0.1", port=port, username="reader", password="readpw",
                     protocol=protocol, decode_responses=True)
    assert ro.hget("app:py", "a") == "1"
    try:
        ro.hset("app:py", "b", "2")
        raise SystemExit("HSET was allowed for reader")
    except redis.exceptions.NoPermissionError:
        pass
    try:
        redis.Redis(host="127.0.0.1", port=port, username="app", password="bad",
                    protocol=protocol).ping()
        raise SystemExit("a wrong password was accepted")
    except redis.exceptions.AuthenticationError:
        pass
print("ok")
PY
)"
[ "$got" = "ok" ] && pass "redis-py username/password, RESP2 and RESP3" || fail "redis-py named users" "$got"

node_dir="$HASHD_SUITE_DIR/node"
got="$(cd "$node_dir" && PORT="$port" node -e '
const { createClient } = require("redis");
const Redis = require("ioredis");
(async () => {
  const c = createClient({ url: `redis://app:apppw@127.0.0.1:${process.env.PORT}` });
  c.on("error", () => {});
  await c.connect();
  await c.hSet("app:node", "f", "v");
  if (await c.hGet("app:node", "f") !== "v") throw new Error("node-redis read back");
  let refused = false;
  try { await c.hDel("app:node", "f"); } catch (e) { refused = /NOPERM/.test(e.message); }
  if (!refused) throw new Error("node-redis HDEL not refused");
  await c.quit();
  const io = new Redis({ host: "127.0.0.1", port: Number(process.env.PORT), username: "app",
    password: "apppw", lazyConnect: true, maxRetriesPerRequest: 0 });
  await io.connect();
  await io.hset("app:io", "f", "v");
  if (await io.hget("app:io", "f") !== "v") throw new Error("ioredis read back");
  let ioRefused = false;
  try { await io.hget("other", "f"); } catch (e) { ioRefused = /NOPERM/.test(e.message); }
  if (!ioRefused) throw new Error("ioredis key not refused");
  await io.quit();
  console.log("ok");
})().catch(e => { console.log("error " + e.message); process.exit(0); });
' 2>&1 | tail -1)"
[ "$got" = "ok" ] && pass "node-redis and ioredis as a named user" || fail "node-redis/ioredis named user" "$got"
server_stop acl
