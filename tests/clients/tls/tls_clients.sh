#!/usr/bin/env bash
# TLS clients against hashd's tls-port: redis-cli --tls, redis-py (ssl=True) and node-redis
# (socket.tls), each with a client certificate from a test CA made here with openssl (X.509
# v3, as rustls requires), and one without a certificate refused (tls-auth-clients yes).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/server.sh
. "$here/../lib/server.sh"

pass() { echo "PASS tls $1"; }
fail() { echo "FAIL tls $1: $2"; }

command -v openssl >/dev/null || { fail "openssl" "openssl is not installed"; exit 1; }
d="$HASHD_STATE/tls"
mkdir -p "$d"
(
  cd "$d" || exit 1
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
    -subj "/CN=hashd suite CA" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >server.ext
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >client.ext
  for who in server client; do
    openssl req -newkey rsa:2048 -nodes -keyout "$who.key" -out "$who.csr" -subj "/CN=$who" 2>/dev/null
    openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$who.crt" \
      -days 2 -extfile "$who.ext" 2>/dev/null
  done
) || { fail "certificates" "openssl failed"; exit 1; }

plain="$(free_port)"
tls="$(free_port)"
server_start tls "$plain" --tls-port "$tls" --tls-cert-file "$d/server.crt" \
  --tls-key-file "$d/server.key" --tls-ca-cert-file "$d/ca.crt" || { fail "start" "hashd did not start"; exit 1; }
wait_port_open "$tls" || { fail "start" "tls-port not open"; exit 1; }

cli=(redis-cli -h 127.0.0.1 -p "$tls" --tls --cacert "$d/ca.crt" --cert "$d/client.crt" --key "$d/client.key")
got="$("${cli[@]}" HSET tls:k f v 2>&1)"
[ "$got" = "1" ] && pass "redis-cli --tls HSET" || fail "redis-cli --tls HSET" "got '$got'"
got="$(redis-cli -h 127.0.0.1 -p "$tls" --tls --cacert "$d/ca.crt" PING 2>&1)"
[ "$got" != "PONG" ] && pass "redis-cli --tls without a client certificate refused" ||
  fail "redis-cli --tls without a client certificate refused" "got PONG"

py="$HASHD_SUITE_DIR/.venv/bin/python"
[ -x "$py" ] || py=python3
got="$(TLS_PORT="$tls" TLS_DIR="$d" "$py" - <<'PY' 2>&1
import os, redis
d = os.environ["TLS_DIR"]
for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=int(os.environ["TLS_PORT"]), ssl=True,
                    ssl_ca_certs=f"{d}/ca.crt", ssl_certfile=f"{d}/client.crt",
                    ssl_keyfile=f"{d}/client.key", protocol=protocol, decode_responses=True)
    assert r.hset("tls:py", mapping={"a": "1"}) in (0, 1)
    assert r.hgetall("tls:py") == {"a": "1"}, r.hgetall("tls:py")
print("ok")
PY
)"
[ "$got" = "ok" ] && pass "redis-py ssl=True, RESP2 and RESP3" || fail "redis-py ssl=True" "$got"

node_dir="$HASHD_SUITE_DIR/node"
got="$(cd "$node_dir" && TLS_PORT="$tls" TLS_DIR="$d" node -e '
const { createClient } = require("redis");
const fs = require("fs");
const d = process.env.TLS_DIR;
(async () => {
  const c = createClient({ socket: { host: "127.0.0.1", port: Number(process.env.TLS_PORT), tls: true,
    servername: "localhost", ca: fs.readFileSync(d + "/ca.crt"), cert: fs.readFileSync(d + "/client.crt"),
    key: fs.readFileSync(d + "/client.key") } });
  c.on("error", () => {});
  await c.connect();
  await c.hSet("tls:node", "f", "v");
  const v = await c.hGet("tls:node", "f");
  await c.quit();
  console.log(v === "v" ? "ok" : "got " + v);
})().catch(e => { console.log("error " + e.message); });
' 2>&1)"
[ "$got" = "ok" ] && pass "node-redis socket.tls" || fail "node-redis socket.tls" "$got"
server_stop tls
