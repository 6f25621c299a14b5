"""Connect sequences of clients that cannot be installed here (no Go, Maven or NuGet registry),
replayed as raw RESP against hashd, with the replies those clients need.

The sequences are the ones documented in shared/spec/clients.md §1.6–§1.9 (read from each
client's source): go-redis v9, Jedis (default, RESP3 and RESP3_PREFERRED), Lettuce, and
StackExchange.Redis (interactive and subscription connections, RESP2 and RESP3). Commands a
client writes in one packet are sent here in one write, so the server sees the same pipelining.
After each handshake the client's typical hash and field-TTL calls follow, in its own spelling
(case, option order). Python standard library only.

    python3 handshakes.py        (HASHD_PORT, HASHD_AUTH_PORT, HASHD_PASSWORD from run.sh)
"""

import os
import socket
import sys
import time

HOST = os.environ.get("HASHD_HOST", "127.0.0.1")
PORT = int(os.environ.get("HASHD_PORT", "6379"))
AUTH_PORT = int(os.environ.get("HASHD_AUTH_PORT", "0"))
PW = os.environ.get("HASHD_PASSWORD", "")
SUITE = "handshakes"
# Longest wait for one reply.
READ_TIMEOUT_S = 5.0


# ---- a small RESP2/RESP3 reader that keeps each reply's type byte ------------------------------
class Reply:
    def __init__(self, kind, value):
        self.kind = kind  # the RESP type byte: + - : $ * % ~ _ , # = ( > |
        self.value = value

    def __repr__(self):
        return f"{self.kind}{self.value!r}"


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=READ_TIMEOUT_S)
        self.buf = b""

    def send(self, *commands):
        """Writes all commands in one packet, like a pipelining client."""
        out = b""
        for cmd in commands:
            args = [a if isinstance(a, bytes) else str(a).encode() for a in cmd]
            out += b"*%d\r\n" % len(args)
            for a in args:
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = chr(line[0]), line[1:]
        if kind in "+-":
            return Reply(kind, rest.decode())
        if kind in ":(":
            return Reply(kind, int(rest))
        if kind == ",":
            return Reply(kind, rest.decode())
        if kind == "#":
            return Reply(kind, rest == b"t")
        if kind == "_":
            return Reply(kind, None)
        if kind in "$=!":
            n = int(rest)
            if n < 0:
                return Reply(kind, None)
            return Reply(kind, self._exact(n))
        if kind in "*~>":
            n = int(rest)
            if n < 0:
                return Reply(kind, None)
            return Reply(kind, [self.read() for _ in range(n)])
        if kind in "%|":
            n = int(rest)
            return Reply(kind, [(self.read(), self.read()) for _ in range(n)])
        raise ValueError(f"unknown RESP type byte {line[:1]!r} in {line!r}")

    def close(self):
        self.sock.close()


# ---- checks on one reply: each returns None when fine, or a reason -----------------------------
def text(r):
    v = r.value
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def ok(r):
    return None if (r.kind, r.value) == ("+", "OK") else f"expected +OK, got {r}"


def queued(r):
    return None if (r.kind, r.value) == ("+", "QUEUED") else f"expected +QUEUED, got {r}"


def integer(want=None):
    def check(r):
        if r.kind != ":":
            return f"expected an integer, got {r}"
        if want is not None and r.value != want:
            return f"expected :{want}, got {r}"
        return None
    return check


def bulk(want):
    want = want.encode() if isinstance(want, str) else want

    def check(r):
        return None if r.kind == "$" and r.value == want else f"expected bulk {want!r}, got {r}"
    return check


def null(r):
    return None if r.kind in "_$*" and r.value is None else f"expected a null, got {r}"


def error(prefix=""):
    def check(r):
        if r.kind != "-":
            return f"expected an error, got {r}"
        if not r.value.startswith(prefix):
            return f"expected an error starting {prefix!r}, got {r}"
        return None
    return check


def ok_or_error(r):
    """Replies a client sends fire-and-forget and ignores when they are errors."""
    return None if r.kind == "-" or (r.kind, r.value) == ("+", "OK") else f"expected +OK or an error, got {r}"


def int_array(want, kind="*"):
    def check(r):
        if r.kind != kind:
            return f"expected a {kind} array, got {r}"
        got = [x.value if x.kind == ":" else repr(x) for x in r.value]
        return None if got == want else f"expected {want}, got {got}"
    return check


def bulk_array(want):
    def check(r):
        if r.kind != "*":
            return f"expected a * array, got {r}"
        got = [None if x.value is None else text(x) for x in r.value]
        return None if got == want else f"expected {want}, got {got}"
    return check


def hello(proto):
    """The HELLO reply: RESP3 %7 map or RESP2 *14 flat array, keys in Redis's order, typed as
    Lettuce and SE.Redis parse them (version/mode/role strings, proto/id integers)."""
    def check(r):
        if proto == 3:
            if r.kind != "%":
                return f"expected a % map, got {r}"
            pairs = r.value
        else:
            if r.kind != "*" or len(r.value) % 2:
                return f"expected a flat * array, got {r}"
            pairs = list(zip(r.value[0::2], r.value[1::2]))
        keys = [text(k) for k, _ in pairs]
        if keys != ["server", "version", "proto", "id", "mode", "role", "modules"]:
            return f"HELLO keys {keys}"
        d = {text(k): v for k, v in pairs}
        if d["server"].kind != "$" or text(d["server"]) != "redis":
            return f"server {d['server']}"
        if d["version"].kind != "$" or not text(d["version"])[:1].isdigit():
            return f"version {d['version']}"
        if d["proto"].kind != ":" or d["proto"].value != proto:
            return f"proto {d['proto']}"
        if d["id"].kind != ":":
            return f"id {d['id']}"
        if (d["mode"].kind, text(d["mode"])) != ("$", "standalone"):
            return f"mode {d['mode']}"
        if (d["role"].kind, text(d["role"])) != ("$", "master"):
            return f"role {d['role']}"
        if d["modules"].kind != "*" or d["modules"].value != []:
            return f"modules {d['modules']}"
        return None
    return check


def info_has(*needles):
    def check(r):
        if r.kind not in "$=":
            return f"expected INFO text (bulk or verbatim), got {r}"
        body = text(r)
        if r.kind == "=":
            body = body[4:]  # "txt:"
        lines = body.split("\r\n")
        missing = [n for n in needles if not any(line.startswith(n) for line in lines)]
        return f"INFO lacks {missing}" if missing else None
    return check


def config_pair(name, want=None, optional=False):
    def check(r):
        if r.kind not in "*%":
            return f"expected CONFIG GET pairs, got {r}"
        pairs = r.value if r.kind == "%" else list(zip(r.value[0::2], r.value[1::2]))
        d = {text(k): text(v) for k, v in pairs}
        if name not in d:
            return None if optional else f"CONFIG GET {name} gave {d}"
        if want is not None and d[name] != want:
            return f"CONFIG GET {name} = {d[name]!r}, expected {want!r}"
        return None
    return check


def subscribe_ack(channel, push):
    def check(r):
        want_kind = ">" if push else "*"
        if r.kind != want_kind or len(r.value) != 3:
            return f"expected a {want_kind}3 subscribe message, got {r}"
        a, b, c = r.value
        if text(a) != "subscribe" or text(b) != channel or c.value != 1:
            return f"subscribe message {r}"
        return None
    return check


def exec_array(n):
    """go-redis requires EXEC's reply to start with '*', also in RESP3."""
    def check(r):
        if r.kind != "*":
            return f"EXEC reply must be a * array (go-redis), got type {r.kind!r}: {r}"
        return None if len(r.value) == n else f"EXEC gave {len(r.value)} replies, expected {n}"
    return check


# ---- running sequences -------------------------------------------------------------------------
passed = failed = 0


def report(name, why):
    global passed, failed
    if why is None:
        passed += 1
        print(f"PASS {SUITE} {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {SUITE} {name}: {' '.join(str(why).split())[:600]}", flush=True)


def scenario(name, port, steps):
    """steps: list of packets; a packet is a list of (command, check). A packet's commands go out
    in one write, then its replies are read in order."""
    try:
        c = Conn(port)
    except OSError as e:
        report(f"{name}/connect", e)
        return
    try:
        for i, packet in enumerate(steps):
            c.send(*[cmd for cmd, _ in packet])
            for cmd, check in packet:
                label = f"{name}/{i}:{' '.join(str(a) for a in cmd)[:60]}"
                try:
                    reply = c.read()
                except (OSError, ConnectionError, ValueError) as e:
                    report(label, f"no reply: {e}")
                    return
                report(label, check(reply))
    finally:
        c.close()


def key(name):
    return f"compat:hs:{name}"


now = int(time.time())
GUID = "c2e5b7a6-35fb-4f65-bd1d-0d4b1b7c2f9e"

# go-redis v9, default options (Protocol 0 → 3), no password, db 0.
scenario("go-redis/default", PORT, [
    [(["hello", "3"], hello(3))],
    [(["client", "maint_notifications", "on", "moving-endpoint-type", "internal-ip"], ok_or_error)],
    [(["client", "setinfo", "LIB-NAME", "go-redis(,go1.24.3)"], ok),
     (["client", "setinfo", "LIB-VER", "9.14.0"], ok)],
    [(["del", key("go")], integer())],
    # TxPipelined: MULTI, commands, EXEC in one write; EXEC must be a * array.
    [(["multi"], ok), (["hset", key("go"), "model", "Deimos", "price", "4972"], queued),
     (["hgetall", key("go")], queued), (["exec"], exec_array(2))],
    [(["HEXPIRE", key("go"), "100", "FIELDS", "1", "model"], int_array([1]))],
    [(["HTTL", key("go"), "FIELDS", "2", "model", "price"], int_array([100, -1]))],
    # HGetEXWithArgs / HSetEXWithArgs: condition before expiry
    [(["HGETEX", key("go"), "PX", "5000", "FIELDS", "1", "price"], bulk_array(["4972"]))],
    [(["HSETEX", key("go"), "FNX", "EX", "50", "FIELDS", "1", "brand", "Ergonom"], integer(1))],
    [(["HGETDEL", key("go"), "FIELDS", "2", "brand", "nope"], bulk_array(["Ergonom", None]))],
    [(["HPERSIST", key("go"), "FIELDS", "1", "model"], int_array([1]))],
])

# go-redis v9 with Password, DB and ClientName.
scenario("go-redis/password-db-name", AUTH_PORT, [
    [(["hello", "3", "auth", "default", PW, "setname", "goapp"], hello(3))],
    [(["select", "2"], ok), (["client", "setname", "goapp"], ok)],
    [(["client", "maint_notifications", "on", "moving-endpoint-type", "internal-ip"], ok_or_error)],
    [(["client", "setinfo", "LIB-NAME", "go-redis(,go1.24.3)"], ok),
     (["client", "setinfo", "LIB-VER", "9.14.0"], ok)],
    [(["client", "getname"], bulk("goapp"))],
])

# go-redis falls back to RESP2 on any HELLO error; a wrong password must be an error reply
# (not a dropped connection), and the follow-up AUTH must fail the same way.
scenario("go-redis/wrong-password", AUTH_PORT, [
    [(["hello", "3", "auth", "default", "wrong"], error("WRONGPASS"))],
    [(["auth", "wrong"], error("WRONGPASS"))],
])

# Jedis default (protocol null): AUTH, then pipelined SETNAME, SETINFO x2, SELECT. RESP2.
scenario("jedis/default", AUTH_PORT, [
    [(["AUTH", PW], ok)],
    [(["CLIENT", "SETNAME", "jedisapp"], ok), (["CLIENT", "SETINFO", "LIB-NAME", "jedis"], ok),
     (["CLIENT", "SETINFO", "LIB-VER", "6.0.0"], ok), (["SELECT", "2"], ok)],
    [(["DEL", key("jedis")], integer())],
    [(["HSET", key("jedis"), "model", "Deimos", "price", "4972"], integer(2))],
    [(["HGETALL", key("jedis")], bulk_array(["model", "Deimos", "price", "4972"]))],
    [(["HGET", key("jedis"), "nope"], null)],
    [(["HEXPIRE", key("jedis"), "100", "NX", "FIELDS", "1", "model"], int_array([1]))],
    [(["HGETEX", key("jedis"), "EX", "60", "FIELDS", "1", "price"], bulk_array(["4972"]))],
    [(["HSETEX", key("jedis"), "FXX", "KEEPTTL", "FIELDS", "1", "price", "5000"], integer(1))],
    [(["HTTL", key("jedis"), "FIELDS", "2", "model", "price"], int_array([100, 60]))],
    [(["MULTI"], ok), (["HINCRBY", key("jedis"), "price", "1"], queued), (["EXEC"], exec_array(1))],
])

# Jedis .protocol(RESP3): strict HELLO 3 with credentials.
scenario("jedis/resp3", AUTH_PORT, [
    [(["HELLO", "3", "AUTH", "default", PW], hello(3))],
    [(["CLIENT", "SETINFO", "LIB-NAME", "jedis"], ok), (["CLIENT", "SETINFO", "LIB-VER", "6.0.0"], ok)],
    [(["HGET", key("jedis"), "nope"], null)],
])

# Jedis RESP3_PREFERRED: HELLO 3 without credentials → NOAUTH → AUTH → HELLO 3.
scenario("jedis/resp3-preferred", AUTH_PORT, [
    [(["HELLO", "3"], error("NOAUTH HELLO must be called with the client already authenticated"))],
    [(["AUTH", PW], ok)],
    [(["HELLO", "3"], hello(3))],
])

# Lettuce: HELLO 3 AUTH SETNAME, SELECT, then fire-and-forget SETINFO (lower-case attributes).
scenario("lettuce/default", AUTH_PORT, [
    [(["HELLO", "3", "AUTH", "default", PW, "SETNAME", "lettuceapp"], hello(3))],
    [(["SELECT", "2"], ok)],
    [(["CLIENT", "SETINFO", "lib-name", "Lettuce"], ok), (["CLIENT", "SETINFO", "lib-ver", "6.6.0.RELEASE"], ok)],
    [(["CLIENT", "GETNAME"], bulk("lettuceapp"))],
    [(["DEL", key("lettuce")], integer())],
    [(["HSET", key("lettuce"), "a", "1", "b", "2"], integer(2))],
    [(["HGETALL", key("lettuce")], lambda r: None if r.kind == "%" and len(r.value) == 2 else f"expected a %2 map, got {r}")],
    [(["HPEXPIRE", key("lettuce"), "60000", "FIELDS", "1", "a"], int_array([1]))],
    [(["HEXPIRETIME", key("lettuce"), "FIELDS", "1", "b"], int_array([-1]))],
    [(["HSETEX", key("lettuce"), "FNX", "PX", "5000", "FIELDS", "1", "c", "3"], integer(1))],
    [(["HGETDEL", key("lettuce"), "FIELDS", "1", "c"], bulk_array(["3"]))],
    [(["MULTI"], ok), (["HLEN", key("lettuce")], queued), (["EXEC"], exec_array(1))],
])

# Lettuce without a password: a plain HELLO 3.
scenario("lettuce/no-password", PORT, [
    [(["HELLO", "3"], hello(3))],
    [(["CLIENT", "SETINFO", "lib-name", "Lettuce"], ok), (["PING"], lambda r: None if r.value == "PONG" else f"{r}")],
])

# StackExchange.Redis, RESP2: the whole handshake and auto-configure in one write.
scenario("se.redis/interactive", AUTH_PORT, [
    [(["AUTH", PW], ok),
     (["CLIENT", "SETNAME", "seapp"], ok),
     (["CLIENT", "SETINFO", "lib-name", "SE.Redis"], ok),
     (["CLIENT", "SETINFO", "lib-ver", "2.8.58.35101"], ok),
     (["CLIENT", "ID"], integer()),
     (["CONFIG", "GET", "timeout"], config_pair("timeout", optional=True)),
     (["CONFIG", "GET", "slave-read-only"], config_pair("slave-read-only", optional=True)),
     (["CONFIG", "GET", "databases"], config_pair("databases", "16")),
     (["SENTINEL", "MASTERS"], error("ERR")),
     (["INFO", "replication"], info_has("role:master")),
     (["INFO", "server"], info_has("redis_version:", "redis_mode:standalone", "run_id:")),
     (["CLUSTER", "NODES"], error("ERR")),
     # hashd has only hashes, so GET is an unknown command; SE.Redis ignores the error.
     (["GET", "__Booksleeve_TieBreak"], lambda r: None if r.kind == "-" or r.value is None else f"{r}"),
     (["ECHO", GUID], bulk(GUID))],
    [(["DEL", key("se")], integer())],
    # HashSet(HashEntry[]) → HMSET; HashFieldExpire(TimeSpan whole seconds) → HEXPIRE
    [(["HMSET", key("se"), "model", "Deimos", "price", "4972"], ok)],
    [(["HEXPIRE", key("se"), "100", "FIELDS", "1", "model"], int_array([1]))],
    [(["HPEXPIRE", key("se"), "1500", "FIELDS", "1", "price"], int_array([1]))],
    [(["HPTTL", key("se"), "FIELDS", "1", "nope"], int_array([-2]))],
    [(["HPEXPIREAT", key("se"), str((now + 3600) * 1000), "FIELDS", "1", "model"], int_array([1]))],
    [(["HPEXPIRETIME", key("se"), "FIELDS", "1", "model"], int_array([(now + 3600) * 1000]))],
    [(["HPERSIST", key("se"), "FIELDS", "2", "model", "price"], int_array([1, 1]))],
    [(["WATCH", key("se")], ok), (["MULTI"], ok), (["HSET", key("se"), "x", "1"], queued), (["EXEC"], exec_array(1))],
])

# StackExchange.Redis subscription connection: same prefix, then SUBSCRIBE to its own channel.
scenario("se.redis/subscription", AUTH_PORT, [
    [(["AUTH", PW], ok),
     (["CLIENT", "SETNAME", "seapp"], ok),
     (["CLIENT", "SETINFO", "lib-name", "SE.Redis"], ok),
     (["CLIENT", "SETINFO", "lib-ver", "2.8.58.35101"], ok),
     (["CLIENT", "ID"], integer()),
     (["SUBSCRIBE", "__Booksleeve_MasterChanged"], subscribe_ack("__Booksleeve_MasterChanged", push=False))],
    # The tracer PING of a subscribed RESP2 connection: *2 ["pong", ""]
    [(["PING"], lambda r: None if r.kind == "*" and [text(x) for x in r.value] == ["pong", ""] else f"{r}")],
])

# StackExchange.Redis with protocol=resp3 in the config string.
scenario("se.redis/resp3", AUTH_PORT, [
    [(["HELLO", "3", "AUTH", "default", PW, "SETNAME", "seapp"], hello(3)),
     (["CLIENT", "SETINFO", "lib-name", "SE.Redis"], ok),
     (["CLIENT", "SETINFO", "lib-ver", "2.8.58.35101"], ok),
     (["CLIENT", "ID"], integer()),
     (["CONFIG", "GET", "databases"], config_pair("databases", "16")),
     (["INFO", "server"], info_has("redis_version:", "redis_mode:standalone")),
     (["ECHO", GUID], bulk(GUID))],
])

# Predis 3.x (source only): HELLO 2 with AUTH and SETNAME must work too.
scenario("predis3/hello2", AUTH_PORT, [
    [(["HELLO", "2", "AUTH", "default", PW, "SETNAME", "predis"], hello(2))],
    [(["CLIENT", "SETINFO", "LIB-NAME", "predis"], ok), (["CLIENT", "SETINFO", "LIB-VER", "3.0.0"], ok)],
])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
