#!/usr/bin/env bash
# redis-cli (Debian redis-tools, 7.x) against hashd: one-shot commands, stdin sessions (which
# send COMMAND DOCS first), -a/--user/--pass/-u/-n, --no-raw and --raw output, -3 (RESP3),
# -e, -x with a 1 MiB binary value, --pipe mass insert, a 1,000-command session, MULTI/EXEC,
# WATCH through a FIFO, and (pty_session.py) the interactive mode's hints and reconnect.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
P=${HASHD_PORT:?} AP=${HASHD_AUTH_PORT:?} PW=${HASHD_PASSWORD:?}
SUITE="redis-cli$(redis-cli --version | awk '{print $2}')"
K="compat:cli:"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0

pass() { echo "PASS $SUITE $1"; }
fail() {
  echo "FAIL $SUITE $1: $(printf '%s' "$2" | tr '\n' '|' | cut -c1-600)"
  failed=1
}
cli() { redis-cli -p "$P" "$@"; }
# expect NAME EXPECTED COMMAND...: stdout+stderr of COMMAND must equal EXPECTED exactly.
expect() {
  local name="$1" want="$2" got
  shift 2
  got="$("$@" 2>&1)"
  if [ "$got" == "$want" ]; then pass "$name"; else fail "$name" "expected [$want] got [$got]"; fi
}
# session NAME EXPECTED ARGS... <<< commands: one redis-cli process reading commands from stdin.
session() {
  local name="$1" want="$2" got
  shift 2
  got="$(redis-cli "$@" 2>&1)"
  if [ "$got" == "$want" ]; then pass "$name"; else fail "$name" "expected [$want] got [$got]"; fi
}

cli del "${K}h" "${K}e" "${K}tx" "${K}big" "${K}pipe" >/dev/null

# ---- connect --------------------------------------------------------------------------------
expect connect/ping "PONG" cli ping
expect connect/password "PONG" redis-cli -p "$AP" -a "$PW" --no-auth-warning ping
expect connect/REDISCLI_AUTH "PONG" env REDISCLI_AUTH="$PW" redis-cli -p "$AP" ping
expect connect/user+pass "PONG" redis-cli -p "$AP" --user default --pass "$PW" --no-auth-warning ping
expect connect/url-password-db "1" redis-cli --no-auth-warning -u "redis://default:$PW@127.0.0.1:$AP/4" hset "${K}url" f v
expect connect/url-db-isolated "v" redis-cli -p "$AP" -a "$PW" --no-auth-warning -n 4 hget "${K}url" f
# Docker healthchecks rely on this: ping exits 0 (and prints the error) on NOAUTH.
expect connect/missing-password "NOAUTH Authentication required." redis-cli -p "$AP" ping
if redis-cli -p "$AP" ping >/dev/null 2>&1; then pass connect/missing-password-exit-0; else fail connect/missing-password-exit-0 "exit $?"; fi
expect connect/wrong-password "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.
NOAUTH Authentication required." redis-cli -p "$AP" -a wrong --no-auth-warning ping
cli -n 3 del "${K}db" >/dev/null
expect connect/db-index "1" cli -n 3 hset "${K}db" f in-db-3
expect connect/db-index-isolated "" cli -n 0 hget "${K}db" f
expect connect/db-out-of-range "SELECT 16 failed: ERR DB index is out of range
PONG" cli -n 16 ping
session connect/client-name "OK
cli-test" -p "$P" <<<"client setname cli-test
client getname"
expect connect/unreachable-exit-1 "1" bash -c "redis-cli -p 1 ping >/dev/null 2>&1; echo \$?"

# ---- hash commands, formatted as a terminal shows them (--no-raw) ---------------------------
session hash/resp2-no-raw '(integer) 4
"Deimos"
(nil)
1) "Deimos"
2) "4972"
3) (nil)
1) "model"
2) "Deimos"
3) "brand"
4) "Ergonom"
5) "type"
6) "Enduro bikes"
7) "price"
8) "4972"
1) "model"
2) "brand"
3) "type"
4) "price"
1) "Deimos"
2) "Ergonom"
3) "Enduro bikes"
4) "4972"
(integer) 4
(integer) 1
(integer) 0
(integer) 12
(integer) 0
(integer) 1
OK
(integer) 5072
(integer) 4972
"10.5"
(error) ERR hash value is not an integer
(integer) 2
(integer) 0
(empty array)
(nil)' -p "$P" --no-raw <<EOF
hset ${K}h model Deimos brand Ergonom type 'Enduro bikes' price 4972
hget ${K}h model
hget ${K}h nope
hmget ${K}h model price nope
hgetall ${K}h
hkeys ${K}h
hvals ${K}h
hlen ${K}h
hexists ${K}h model
hexists ${K}h nope
hstrlen ${K}h type
hsetnx ${K}h model x
hsetnx ${K}h color red
hmset ${K}h color blue weight 10
hincrby ${K}h price 100
hincrby ${K}h price -100
hincrbyfloat ${K}h weight 0.5
hincrby ${K}h model 1
hdel ${K}h color weight nope
hdel ${K}h nope
hgetall ${K}nokey
hget ${K}nokey f
EOF

# HRANDFIELD and HSCAN answers vary; check their shape.
got="$(cli hrandfield "${K}h" -6)"
if [ "$(printf '%s\n' "$got" | grep -cxE 'model|brand|type|price')" = 6 ]; then pass hash/hrandfield; else fail hash/hrandfield "$got"; fi
got="$(cli hrandfield "${K}h" 2 withvalues | wc -l)"
if [ "$got" = 4 ]; then pass hash/hrandfield-withvalues; else fail hash/hrandfield-withvalues "$got lines"; fi
got="$(cli hscan "${K}h" 0 match 'p*')"
if [ "$got" == "0
price
4972" ]; then pass hash/hscan; else fail hash/hscan "$got"; fi
got="$(cli hscan "${K}h" 0 novalues)"
if [ "$got" == "0
model
brand
type
price" ]; then pass hash/hscan-novalues; else fail hash/hscan-novalues "$got"; fi
got="$(cli --scan --pattern "${K}h*" 2>&1)"
if [ "$got" == "${K}h" ]; then pass keys/--scan; else fail keys/--scan "$got"; fi

# ---- RESP3 (-3) -----------------------------------------------------------------------------
session resp3/hgetall-map '1# "model" => "Deimos"
2# "brand" => "Ergonom"
3# "type" => "Enduro bikes"
4# "price" => "4972"
(nil)
(empty hash)
1) "Deimos"
2) (nil)' -3 -p "$P" --no-raw <<EOF
hgetall ${K}h
hget ${K}h nope
hgetall ${K}nokey
hmget ${K}h model nope
EOF
got="$(cli -3 --no-raw hello 3 2>&1)"
if printf '%s\n' "$got" | grep -q '^1# "server" => "redis"' &&
  printf '%s\n' "$got" | grep -q '^3# "proto" => (integer) 3' &&
  printf '%s\n' "$got" | grep -q '^7# "modules" => (empty array)'; then
  pass resp3/hello
else fail resp3/hello "$got"; fi
got="$(cli -3 --no-raw hrandfield "${K}h" 2 withvalues 2>&1)"
if [ "$(printf '%s\n' "$got" | grep -c '^[12]) 1) "')" = 2 ]; then pass resp3/hrandfield-pairs; else fail resp3/hrandfield-pairs "$got"; fi
got="$(cli -3 info server 2>&1)"
if printf '%s\n' "$got" | grep -q '^redis_version:'; then pass resp3/info-verbatim; else fail resp3/info-verbatim "$got"; fi

# ---- field expiration -----------------------------------------------------------------------
now=$(date +%s)
at=$((now + 1000))
# Replies as redis-cli prints them, with the "(integer)", "1)" and quote decorations removed.
got="$(redis-cli -p "$P" --no-raw 2>&1 <<EOF | sed 's/^(integer) //;s/^[0-9]*) (integer) //;s/^[0-9]*) //;s/^"\(.*\)"$/\1/'
hset ${K}e a 1 b 2 c 3 d 4
hexpire ${K}e 100 FIELDS 3 a b nope
hexpire ${K}e 200 NX FIELDS 1 a
httl ${K}e FIELDS 3 a c nope
hpersist ${K}e FIELDS 3 b c nope
hexpireat ${K}e $at FIELDS 1 c
hexpiretime ${K}e FIELDS 1 c
hpexpire ${K}e 0 FIELDS 1 d
hsetex ${K}e FNX EX 50 FIELDS 1 a x
hsetex ${K}e EX 50 FIELDS 1 z 7
httl ${K}e FIELDS 1 z
hgetex ${K}e PERSIST FIELDS 3 c d zz
hgetdel ${K}e FIELDS 1 z
hlen ${K}e
EOF
)"
want="4
1
1
-2
0
100
-1
-2
1
-1
-2
1
$at
2
0
1
50
3
(nil)
(nil)
7
3"
if [ "$got" == "$want" ]; then pass hfe/commands; else fail hfe/commands "expected [$want] got [$got]"; fi
got="$(cli hpttl "${K}e" FIELDS 1 a)"
if [ "$got" -gt 98000 ] 2>/dev/null && [ "$got" -le 100000 ]; then pass hfe/hpttl; else fail hfe/hpttl "$got"; fi

# ---- transactions ---------------------------------------------------------------------------
session tx/multi-exec 'OK
QUEUED
QUEUED
QUEUED
1) (integer) 1
2) (integer) 11
3) 1) "a"
   2) "11"' -p "$P" --no-raw <<EOF
multi
hset ${K}tx a 1
hincrby ${K}tx a 10
hgetall ${K}tx
exec
EOF
session tx/execabort 'OK
QUEUED
(error) ERR wrong number of arguments for '"'"'hget'"'"' command
(error) EXECABORT Transaction discarded because of previous errors.' -p "$P" --no-raw <<EOF
multi
hset ${K}tx a 1
hget ${K}tx
exec
EOF

# WATCH: one redis-cli reads commands from a FIFO while another one writes the watched key.
mkfifo "$work/fifo"
redis-cli -p "$P" --no-raw <"$work/fifo" >"$work/watch.out" 2>&1 &
watcher=$!
exec 7>"$work/fifo"
wait_lines() { # wait until the watcher printed $1 lines (bounded)
  local i
  for i in $(seq 1 200); do
    [ "$(wc -l <"$work/watch.out")" -ge "$1" ] && return 0
    sleep 0.02
  done
  return 1
}
echo "watch ${K}tx" >&7
wait_lines 1
cli hset "${K}tx" a 100 >/dev/null
printf 'multi\nhset %s a 2\nexec\n' "${K}tx" >&7
exec 7>&-
wait "$watcher"
got="$(cat "$work/watch.out")"
if [ "$got" == 'OK
OK
QUEUED
(nil)' ] && [ "$(cli hget "${K}tx" a)" = 100 ]; then pass tx/watch-conflict; else fail tx/watch-conflict "$got"; fi

# ---- big values and pipelines ---------------------------------------------------------------
head -c 1048576 /dev/urandom >"$work/blob"
expect big/1mib-value-x "1" bash -c "redis-cli -p $P -x hset ${K}big blob <'$work/blob'"
expect big/1mib-hstrlen "1048576" cli hstrlen "${K}big" blob
# --raw prints the value and one newline; drop the newline and compare bytes.
cli --raw hget "${K}big" blob | head -c 1048576 >"$work/blob.back"
if cmp -s "$work/blob" "$work/blob.back"; then pass big/1mib-roundtrip; else fail big/1mib-roundtrip "bytes differ"; fi

python3 - "$K" >"$work/mass.resp" <<'PY'
import sys
key = (sys.argv[1] + "pipe").encode()
out = sys.stdout.buffer
for i in range(10000):
    args = [b"HSET", key, b"f%d" % i, b"v%d" % i]
    out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
PY
got="$(redis-cli -p "$P" --pipe <"$work/mass.resp" 2>&1)"
if printf '%s\n' "$got" | grep -q 'errors: 0, replies: 10000' && [ "$(cli hlen "${K}pipe")" = 10000 ]; then
  pass big/--pipe-mass-insert-10000
else fail big/--pipe-mass-insert-10000 "$got"; fi

cli del "${K}pipe" >/dev/null
got="$(for i in $(seq 1 1000); do echo "hincrby ${K}pipe f$i $i"; done | redis-cli -p "$P")"
want="$(seq 1 1000)"
if [ "$got" == "$want" ]; then pass big/1000-command-session; else fail big/1000-command-session "$(printf '%s\n' "$got" | head -3)"; fi

# ---- exit codes -----------------------------------------------------------------------------
expect exit/-e-on-error "1" bash -c "redis-cli -p $P -e hincrby ${K}h model 1 >/dev/null 2>&1; echo \$?"
expect exit/no-e-on-error "0" bash -c "redis-cli -p $P hincrby ${K}h model 1 >/dev/null 2>&1; echo \$?"

# ---- interactive mode (pseudo-terminal): hints, completion, reconnect -----------------------
python3 "$here/pty_session.py" "$SUITE" || failed=1

exit "$failed"
