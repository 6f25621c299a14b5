"""redis-py 8.x against hashd: connect variants, every hash and field-TTL method, pipelines,
transactions, WATCH, big values, a 1,000-command pipeline and reconnect after a restart.

    python redis_py.py --protocol 3            # redis-py's default: HELLO 3, hiredis if installed
    python redis_py.py --protocol 2 --no-hiredis

--no-hiredis hides the hiredis module before redis-py is imported, so redis-py falls back to
its pure-Python parser (the same thing that happens when hiredis is not installed).
"""

import argparse
import datetime
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--protocol", type=int, choices=(2, 3), default=3)
parser.add_argument("--no-hiredis", action="store_true")
opts = parser.parse_args()
if opts.no_hiredis:
    sys.modules["hiredis"] = None  # makes `import hiredis` fail inside redis-py

import redis  # noqa: E402
import redis.utils  # noqa: E402
from redis.commands.core import HashDataPersistOptions  # noqa: E402

from harness import (  # noqa: E402
    AUTH_PORT,
    HOST,
    PASSWORD,
    PORT,
    Suite,
    eq,
    near,
    one_mib_bytes,
    poll,
    raises,
    restart_server,
)

parser_name = "hiredis" if redis.utils.HIREDIS_AVAILABLE else "python-parser"
suite = Suite(f"redis-py{redis.__version__}[resp{opts.protocol},{parser_name}]")
P = f"compat:py{opts.protocol}{'h' if redis.utils.HIREDIS_AVAILABLE else 'p'}:"


def client(**kw):
    kw.setdefault("host", HOST)
    kw.setdefault("port", PORT)
    kw.setdefault("protocol", opts.protocol)
    kw.setdefault("decode_responses", True)
    kw.setdefault("socket_timeout", 10)
    return redis.Redis(**kw)


r = client()
rb = client(decode_responses=False)


# ---- connect ----------------------------------------------------------------------------------
def t_parser_matches_request():
    eq(redis.utils.HIREDIS_AVAILABLE, not opts.no_hiredis, "HIREDIS_AVAILABLE")


def t_plain():
    eq(r.ping(), True, "PING")
    eq(r.echo("hi there"), "hi there", "ECHO")


def t_protocol_in_use():
    # CLIENT INFO reports resp=2|3 for this very connection.
    info = r.client_info()
    eq(str(info.get("resp")), str(opts.protocol), "CLIENT INFO resp")


def t_password():
    c = client(port=AUTH_PORT, password=PASSWORD)
    eq(c.ping(), True, "PING after auth")
    c.delete(P + "auth")
    eq(c.hset(P + "auth", "f", "v"), 1, "HSET after auth")
    c.close()


def t_username_password():
    c = client(port=AUTH_PORT, username="default", password=PASSWORD)
    eq(c.ping(), True)
    c.close()


def t_url_with_password_and_db():
    c = redis.from_url(
        f"redis://default:{PASSWORD}@{HOST}:{AUTH_PORT}/5?protocol={opts.protocol}",
        decode_responses=True,
    )
    eq(c.ping(), True)
    c.hset(P + "url", "f", "v")
    eq(client(port=AUTH_PORT, password=PASSWORD, db=5).hget(P + "url", "f"), "v", "db 5")
    c.close()


def t_wrong_password():
    c = client(port=AUTH_PORT, password="not-the-password")
    raises(redis.exceptions.AuthenticationError, c.ping)


def t_no_password_on_auth_server():
    c = client(port=AUTH_PORT)
    # RESP3: HELLO 3 → -NOAUTH HELLO must be called...; RESP2: PING → -NOAUTH Authentication required.
    raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError), c.ping)


def t_db_index():
    c3 = client(db=3)
    c3.delete(P + "db")
    eq(c3.hset(P + "db", "f", "in-db-3"), 1)
    eq(r.hget(P + "db", "f"), None, "the key must not be visible in db 0")
    eq(client(db=3).hget(P + "db", "f"), "in-db-3", "fresh client on db 3")
    c3.close()


def t_client_name():
    c = client(client_name="compat-py")
    eq(c.client_getname(), "compat-py", "CLIENT GETNAME")
    eq(c.client_setname("renamed"), True, "CLIENT SETNAME")
    eq(c.client_getname(), "renamed")
    c.close()


def t_lib_name_reported():
    info = r.client_info()
    eq(info.get("lib-name"), "redis-py", "CLIENT INFO lib-name (from CLIENT SETINFO)")


for name, fn in [
    ("connect/parser", t_parser_matches_request),
    ("connect/plain", t_plain),
    ("connect/protocol-in-use", t_protocol_in_use),
    ("connect/password", t_password),
    ("connect/username+password", t_username_password),
    ("connect/url-password-db", t_url_with_password_and_db),
    ("connect/wrong-password", t_wrong_password),
    ("connect/missing-password", t_no_password_on_auth_server),
    ("connect/db-index", t_db_index),
    ("connect/client-name", t_client_name),
    ("connect/lib-name", t_lib_name_reported),
]:
    suite.check(name, fn)

# ---- classic hash commands --------------------------------------------------------------------
H = P + "h"


def t_hset():
    r.delete(H)
    eq(r.hset(H, "model", "Deimos"), 1)
    eq(r.hset(H, mapping={"brand": "Ergonom", "type": "Enduro bikes", "price": 4972}), 3)
    eq(r.hset(H, items=["model", "Deimos2", "year", 2024]), 1, "items=: 1 new, 1 updated")
    eq(r.hset(H, "model", "Deimos", mapping={"wheels": 2}), 1)


def t_hsetnx():
    eq(r.hsetnx(H, "model", "x"), False)
    eq(r.hsetnx(H, "color", "red"), True)


def t_hmset():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        eq(r.hmset(H, {"gears": 11, "color": "blue"}), True)


def t_hget_hmget():
    eq(r.hget(H, "model"), "Deimos")
    eq(r.hget(H, "nope"), None)
    eq(r.hget(P + "nokey", "f"), None)
    eq(r.hmget(H, ["model", "price", "nope"]), ["Deimos", "4972", None])
    eq(r.hmget(H, "model", "price"), ["Deimos", "4972"])


def t_hgetall_keys_vals():
    want = {
        "model": "Deimos",
        "brand": "Ergonom",
        "type": "Enduro bikes",
        "price": "4972",
        "year": "2024",
        "wheels": "2",
        "color": "blue",
        "gears": "11",
    }
    eq(r.hgetall(H), want, "HGETALL")
    # Small hashes keep insertion order (like Redis's listpack).
    eq(r.hkeys(H), list(want.keys()), "HKEYS")
    eq(r.hvals(H), list(want.values()), "HVALS")
    eq(r.hgetall(P + "nokey"), {}, "HGETALL missing key")


def t_hlen_hexists_hstrlen():
    eq(r.hlen(H), 8)
    eq(r.hexists(H, "model"), True)
    eq(r.hexists(H, "nope"), False)
    eq(r.hstrlen(H, "type"), len("Enduro bikes"))
    eq(r.hstrlen(H, "nope"), 0)


def t_hincrby():
    eq(r.hincrby(H, "price", 100), 5072)
    eq(r.hincrby(H, "price", -100), 4972)
    eq(r.hincrby(H, "rides"), 1, "missing field starts at 0")
    e = raises(redis.exceptions.ResponseError, lambda: r.hincrby(H, "model", 1))
    eq(str(e), "hash value is not an integer")


def t_hincrbyfloat():
    eq(r.hincrbyfloat(H, "weight", 10.5), 10.5)
    eq(r.hincrbyfloat(H, "weight", 0.1), 10.6)
    eq(r.hget(H, "weight"), "10.6")
    e = raises(redis.exceptions.ResponseError, lambda: r.hincrbyfloat(H, "model", 1))
    eq(str(e), "hash value is not a float")


def t_hdel():
    eq(r.hdel(H, "rides", "weight", "nope"), 2)
    eq(r.hdel(P + "nokey", "f"), 0)


def t_hrandfield():
    fields = set(r.hkeys(H))
    one = r.hrandfield(H)
    eq(one in fields, True, f"HRANDFIELD {one!r} in hash")
    three = r.hrandfield(H, 3)
    eq(len(three), 3)
    eq(len(set(three)), 3, "positive count gives distinct fields")
    eq(set(three) <= fields, True)
    many = r.hrandfield(H, -20)
    eq(len(many), 20, "negative count allows repeats")
    wv = r.hrandfield(H, 2, withvalues=True)
    # redis-py gives a flat list or (RESP3, some parsers) field/value pairs.
    if wv and isinstance(wv[0], list):
        wv = [x for pair in wv for x in pair]
    eq(len(wv), 4, "WITHVALUES: two field/value pairs")
    all_ = r.hgetall(H)
    eq(all_[wv[0]], wv[1])
    eq(all_[wv[2]], wv[3])
    eq(r.hrandfield(P + "nokey"), None)
    eq(r.hrandfield(P + "nokey", 3), [])


def t_hscan():
    big = P + "scan"
    r.delete(big)
    r.hset(big, mapping={f"f{i}": i for i in range(300)})
    seen = {}
    cursor = 0
    rounds = 0
    while True:
        cursor, page = r.hscan(big, cursor, count=50)
        seen.update(page)
        rounds += 1
        if cursor == 0:
            break
        if rounds > 1000:
            raise AssertionError("HSCAN never returned cursor 0")
    eq(len(seen), 300, "HSCAN saw every field")
    eq(seen["f7"], "7")
    eq(dict(r.hscan_iter(big, match="f1?")), {f"f1{i}": str(10 + i) for i in range(10)}, "MATCH")
    cursor, keys = r.hscan(H, 0, no_values=True)
    eq(cursor, 0)
    eq(sorted(keys), sorted(r.hkeys(H)), "NOVALUES")


for name, fn in [
    ("hash/hset", t_hset),
    ("hash/hsetnx", t_hsetnx),
    ("hash/hmset", t_hmset),
    ("hash/hget+hmget", t_hget_hmget),
    ("hash/hgetall+hkeys+hvals", t_hgetall_keys_vals),
    ("hash/hlen+hexists+hstrlen", t_hlen_hexists_hstrlen),
    ("hash/hincrby", t_hincrby),
    ("hash/hincrbyfloat", t_hincrbyfloat),
    ("hash/hdel", t_hdel),
    ("hash/hrandfield", t_hrandfield),
    ("hash/hscan", t_hscan),
]:
    suite.check(name, fn)

# ---- field expiration -------------------------------------------------------------------------
E = P + "hfe"


def fresh_e():
    r.delete(E)
    r.hset(E, mapping={"a": 1, "b": 2, "c": 3, "d": 4})


def t_hexpire():
    fresh_e()
    eq(r.hexpire(E, 100, "a", "b", "nope"), [1, 1, -2])
    eq(r.hexpire(E, 200, "a", nx=True), [0], "NX on a field with a TTL")
    eq(r.hexpire(E, 200, "a", gt=True), [1], "GT with a larger TTL")
    eq(r.hexpire(E, 50, "a", gt=True), [0], "GT with a smaller TTL")
    eq(r.hexpire(E, 50, "a", lt=True), [1])
    eq(r.hexpire(E, 50, "c", xx=True), [0], "XX on a field without TTL")
    eq(r.hexpire(E, datetime.timedelta(seconds=70), "c"), [1], "timedelta")
    eq(r.hexpire(P + "nokey", 10, "a"), [-2], "missing key")
    eq(r.httl(E, "a", "b", "c", "d", "nope"), [50, 100, 70, -1, -2])


def t_hpexpire():
    fresh_e()
    eq(r.hpexpire(E, 100000, "a"), [1])
    near(r.hpttl(E, "a")[0], 100000, 2000, "HPTTL")
    eq(r.hpttl(E, "b", "nope"), [-1, -2])


def t_hexpireat():
    fresh_e()
    at = int(time.time()) + 1000
    eq(r.hexpireat(E, at, "a"), [1])
    eq(r.hexpiretime(E, "a", "b", "nope"), [at, -1, -2])
    eq(r.hpexpiretime(E, "a"), [at * 1000])
    when = datetime.datetime.now() + datetime.timedelta(hours=24)
    eq(r.hexpireat(E, when, "b"), [1], "datetime")
    near(r.hexpiretime(E, "b")[0], int(when.timestamp()), 2)


def t_hpexpireat():
    fresh_e()
    at_ms = int(time.time() * 1000) + 500000
    eq(r.hpexpireat(E, at_ms, "a", "b"), [1, 1])
    eq(r.hpexpiretime(E, "a", "b"), [at_ms, at_ms])
    eq(r.hexpiretime(E, "a"), [(at_ms + 999) // 1000], "HEXPIRETIME rounds up")


def t_hpersist():
    fresh_e()
    r.hexpire(E, 100, "a")
    eq(r.hpersist(E, "a", "b", "nope"), [1, -1, -2])
    eq(r.httl(E, "a"), [-1])
    eq(r.hpersist(P + "nokey", "a"), [-2])


def t_expire_zero_deletes():
    fresh_e()
    eq(r.hexpire(E, 0, "a"), [2], "a zero TTL deletes the field")
    eq(r.hexists(E, "a"), False)
    eq(r.hpexpireat(E, 1, "b"), [2], "a past time deletes the field")
    eq(r.hlen(E), 2)


def t_fields_really_expire():
    fresh_e()
    eq(r.hpexpire(E, 50, "a", "b"), [1, 1])
    poll(lambda: r.hmget(E, "a", "b") == [None, None], what="fields a and b expired")
    eq(r.hgetall(E), {"c": "3", "d": "4"})
    eq(r.hlen(E), 2)
    eq(r.hpexpire(E, 50, "c", "d"), [1, 1])
    poll(lambda: r.exists(E) == 0, what="the emptied hash deleted")


def t_hset_clears_ttl():
    fresh_e()
    r.hexpire(E, 100, "a")
    eq(r.hset(E, "a", "new"), 0)
    eq(r.httl(E, "a"), [-1], "HSET clears the field's TTL")


def t_hgetex():
    fresh_e()
    eq(r.hgetex(E, "a", "b", "nope", px=5000), ["1", "2", None])
    near(r.hpttl(E, "a")[0], 5000, 1000)
    eq(r.hgetex(E, "c", ex=60), ["3"])
    eq(r.httl(E, "c"), [60])
    at = int(time.time()) + 600
    eq(r.hgetex(E, "d", exat=at), ["4"])
    eq(r.hexpiretime(E, "d"), [at])
    at_ms = int(time.time() * 1000) + 700000
    eq(r.hgetex(E, "d", pxat=at_ms), ["4"])
    eq(r.hpexpiretime(E, "d"), [at_ms])
    eq(r.hgetex(E, "a", "c", persist=True), ["1", "3"])
    eq(r.httl(E, "a", "c"), [-1, -1])
    eq(r.hgetex(E, "a"), ["1"], "no option: plain read")
    eq(r.hgetex(P + "nokey", "a", "b"), [None, None])
    eq(r.hgetex(E, "b", pxat=1), ["2"], "past time")
    eq(r.hexists(E, "b"), False, "HGETEX with a past time deletes after reading")


def t_hsetex():
    r.delete(E)
    eq(r.hsetex(E, "a", "1", ex=50), 1)
    eq(r.httl(E, "a"), [50])
    eq(r.hsetex(E, mapping={"a": "x", "b": "2"}, ex=60, data_persist_option=HashDataPersistOptions.FNX), 0,
       "FNX with an existing field")
    eq(r.hget(E, "a"), "1", "failed FNX changes nothing")
    eq(r.hsetex(E, mapping={"b": "2", "c": "3"}, px=70000, data_persist_option=HashDataPersistOptions.FNX), 1)
    near(r.hpttl(E, "b")[0], 70000, 2000)
    eq(r.hsetex(E, items=["a", "A", "z", "Z"], data_persist_option=HashDataPersistOptions.FXX), 0,
       "FXX with a missing field")
    eq(r.hsetex(E, "a", "A", keepttl=True, data_persist_option=HashDataPersistOptions.FXX), 1)
    eq(r.hget(E, "a"), "A")
    eq(r.httl(E, "a"), [50], "KEEPTTL keeps the TTL")
    eq(r.hsetex(E, "a", "AA"), 1)
    eq(r.httl(E, "a"), [-1], "no option clears the TTL")
    at = int(time.time()) + 900
    eq(r.hsetex(E, "d", "4", exat=at), 1)
    eq(r.hexpiretime(E, "d"), [at])
    at_ms = int(time.time() * 1000) + 900000
    eq(r.hsetex(E, "d", "4", pxat=at_ms), 1)
    eq(r.hpexpiretime(E, "d"), [at_ms])
    eq(r.hsetex(P + "nokey2", "a", "1", data_persist_option=HashDataPersistOptions.FXX), 0)
    eq(r.exists(P + "nokey2"), 0, "failed FXX does not create the key")


def t_hgetdel():
    fresh_e()
    eq(r.hgetdel(E, "a", "nope", "b"), ["1", None, "2"])
    eq(r.hkeys(E), ["c", "d"])
    eq(r.hgetdel(E, "c", "d"), ["3", "4"])
    eq(r.exists(E), 0, "emptied hash is deleted")
    eq(r.hgetdel(P + "nokey", "a"), [None])


for name, fn in [
    ("hfe/hexpire+httl", t_hexpire),
    ("hfe/hpexpire+hpttl", t_hpexpire),
    ("hfe/hexpireat+hexpiretime", t_hexpireat),
    ("hfe/hpexpireat+hpexpiretime", t_hpexpireat),
    ("hfe/hpersist", t_hpersist),
    ("hfe/zero-or-past-deletes", t_expire_zero_deletes),
    ("hfe/fields-really-expire", t_fields_really_expire),
    ("hfe/hset-clears-ttl", t_hset_clears_ttl),
    ("hfe/hgetex", t_hgetex),
    ("hfe/hsetex", t_hsetex),
    ("hfe/hgetdel", t_hgetdel),
]:
    suite.check(name, fn)

# ---- pipelines, transactions, WATCH -----------------------------------------------------------
T = P + "tx"


def t_pipeline():
    r.delete(T)
    pipe = r.pipeline(transaction=False)
    pipe.hset(T, "a", 1).hincrby(T, "a", 5).hget(T, "a").hgetall(T).hexpire(T, 100, "a").httl(T, "a")
    eq(pipe.execute(), [1, 6, "6", {"a": "6"}, [1], [100]])


def t_pipeline_error_in_middle():
    pipe = r.pipeline(transaction=False)
    pipe.hset(T, "s", "text").hincrby(T, "s", 1).hget(T, "s")
    res = pipe.execute(raise_on_error=False)
    eq(res[0], 1)
    eq(isinstance(res[1], redis.exceptions.ResponseError), True, "error element")
    eq(res[2], "text")


def t_multi_exec():
    r.delete(T)
    pipe = r.pipeline()  # transaction=True: MULTI ... EXEC
    pipe.hset(T, mapping={"a": 1, "b": 2}).hincrby(T, "a", 10).hgetall(T).hgetdel(T, "b")
    eq(pipe.execute(), [2, 11, {"a": "11", "b": "2"}, ["2"]])


def t_multi_exec_runtime_error():
    r.delete(T)
    pipe = r.pipeline()
    pipe.hset(T, "s", "text").hincrby(T, "s", 1).hset(T, "t", "2")
    e = raises(redis.exceptions.ResponseError, pipe.execute)
    eq("hash value is not an integer" in str(e), True, str(e))
    eq(r.hget(T, "t"), "2", "later commands of the transaction still ran")


def t_watch_conflict():
    r.delete(T)
    r.hset(T, "n", 1)
    other = client()
    with r.pipeline() as pipe:
        pipe.watch(T)
        eq(pipe.hget(T, "n"), "1", "immediate read while watching")
        other.hset(T, "n", 100)  # someone else writes the watched key
        pipe.multi()
        pipe.hset(T, "n", 2)
        raises(redis.exceptions.WatchError, pipe.execute)
    eq(r.hget(T, "n"), "100", "the transaction did not run")
    other.close()


def t_watch_no_conflict():
    with r.pipeline() as pipe:
        pipe.watch(T)
        pipe.multi()
        pipe.hset(T, "n", 3)
        eq(pipe.execute(), [0])
    eq(r.hget(T, "n"), "3")


def t_watch_field_expiry_dirties():
    r.delete(T)
    r.hset(T, mapping={"n": 1, "keep": 1})
    r.hpexpire(T, 30, "n")
    with r.pipeline() as pipe:
        pipe.watch(T)
        poll(lambda: client().hget(T, "n") is None, what="field n expired")
        pipe.multi()
        pipe.hset(T, "x", 1)
        raises(redis.exceptions.WatchError, pipe.execute)


for name, fn in [
    ("pipeline/plain", t_pipeline),
    ("pipeline/error-element", t_pipeline_error_in_middle),
    ("tx/multi-exec", t_multi_exec),
    ("tx/runtime-error", t_multi_exec_runtime_error),
    ("tx/watch-conflict", t_watch_conflict),
    ("tx/watch-no-conflict", t_watch_no_conflict),
    ("tx/watch-field-expiry", t_watch_field_expiry_dirties),
]:
    suite.check(name, fn)

# ---- big values, big pipelines ----------------------------------------------------------------
B = P + "big"


def t_one_mib_value():
    rb.delete(B)
    value = one_mib_bytes()
    eq(rb.hset(B, "blob", value), 1)
    got = rb.hget(B, "blob")
    eq(len(got), len(value), "length")
    eq(got == value, True, "1 MiB binary value round-trips")
    eq(rb.hstrlen(B, "blob"), 1024 * 1024)
    eq(rb.hgetall(B)[b"blob"] == value, True, "HGETALL of the 1 MiB value")


def t_thousand_command_pipeline():
    r.delete(B)
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.hset(B, f"f{i}", i)
    res = pipe.execute()
    eq(res, [1] * 1000)
    eq(r.hlen(B), 1000)
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.hget(B, f"f{i}")
    eq(pipe.execute(), [str(i) for i in range(1000)], "1,000 HGET replies in order")


def t_thousand_command_transaction():
    pipe = r.pipeline()
    for i in range(1000):
        pipe.hincrby(B, f"f{i}", 1)
    eq(pipe.execute(), [i + 1 for i in range(1000)])


for name, fn in [
    ("big/1mib-value", t_one_mib_value),
    ("big/1000-command-pipeline", t_thousand_command_pipeline),
    ("big/1000-command-transaction", t_thousand_command_transaction),
]:
    suite.check(name, fn)


# ---- keyspace notifications: hexpired from active expiry --------------------------------------
N = P + "notify"
# The field's TTL, how late after its deadline the sweeper's `hexpired` may arrive, and how early
# (the server stamps the deadline in whole ms, a little after the client sent HPEXPIRE).
NOTIFY_TTL_MS = 300
NOTIFY_LATE_MS = 100
NOTIFY_EARLY_MS = 5
# The sweeper runs every 1000/hz ms: at the default hz 10 a pass may come ~100 ms after the
# deadline, the whole allowance. hz 50 (a pass every 20 ms) leaves room for scheduling.
NOTIFY_HZ = "50"


def await_hexpired(ps, channel, want_data):
    """Subscribes ps to channel, gives field `ttl` of N a NOTIFY_TTL_MS TTL (field `keep` none)
    and waits for the message on channel with payload want_data. Returns its delay in ms after
    the deadline (time just before sending HPEXPIRE + TTL)."""
    ps.subscribe(channel)
    msg = ps.get_message(timeout=5)
    eq(msg and msg["type"], "subscribe", "SUBSCRIBE confirmation")
    r.delete(N)
    eq(r.hset(N, mapping={"ttl": "gone-soon", "keep": "stays"}), 2)
    sent = time.monotonic()
    eq(r.hpexpire(N, NOTIFY_TTL_MS, "ttl"), [1], "HPEXPIRE")
    deadline = sent + NOTIFY_TTL_MS / 1000
    # Nobody touches N until the message came, so only active expiry can reclaim the field.
    others = []
    while True:
        left = deadline + 2.0 - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {channel} {want_data!r} within 2 s of the deadline; got {others!r}")
        msg = ps.get_message(timeout=left)
        arrived = time.monotonic()
        if msg is None:
            continue
        if msg["type"] == "message" and msg["data"] == want_data:
            eq(msg["channel"] in (channel, channel.encode()), True, f"channel {msg['channel']!r}")
            break
        others.append(msg)
    delay_ms = (arrived - deadline) * 1000
    print(f"INFO {suite.name} {channel}: arrived {delay_ms:+.1f} ms after the deadline", flush=True)
    if delay_ms < -NOTIFY_EARLY_MS:
        raise AssertionError(f"hexpired {-delay_ms:.1f} ms before the field's deadline")
    if delay_ms > NOTIFY_LATE_MS:
        raise AssertionError(f"hexpired {delay_ms:.1f} ms after the deadline (allowed {NOTIFY_LATE_MS} ms)")
    eq(r.hgetall(N), {"keep": "stays"}, "after hexpired only the persistent field is left")
    eq(r.httl(N, "keep"), [-1], "the persistent field has no TTL")
    return delay_ms


def with_notify(flags, fn):
    """Runs fn() with notify-keyspace-events = flags and hz = NOTIFY_HZ, then restores both."""
    old_hz = r.config_get("hz")["hz"]
    try:
        eq(r.config_set("hz", NOTIFY_HZ), True, "CONFIG SET hz")
        eq(r.config_set("notify-keyspace-events", flags), True, "CONFIG SET notify-keyspace-events")
        return fn()
    finally:
        r.config_set("notify-keyspace-events", "")
        r.config_set("hz", old_hz)


def t_notify_keyevent_hexpired():
    ps = r.pubsub()
    try:
        with_notify("Eh", lambda: await_hexpired(ps, "__keyevent@0__:hexpired", N))
    finally:
        ps.close()
    eq(r.config_get("notify-keyspace-events")["notify-keyspace-events"], "", "reset")


def t_notify_subkeyevent_hexpired():
    ps = rb.pubsub()  # bytes: the payload is compared byte for byte
    key = N.encode()
    want = b"%d:%s|%d:%s" % (len(key), key, len(b"ttl"), b"ttl")
    try:
        with_notify("hT", lambda: await_hexpired(ps, "__subkeyevent@0__:hexpired", want))
    finally:
        ps.close()
    eq(r.config_get("notify-keyspace-events")["notify-keyspace-events"], "", "reset")


for name, fn in [
    ("notify/keyevent-hexpired", t_notify_keyevent_hexpired),
    ("notify/subkeyevent-hexpired", t_notify_subkeyevent_hexpired),
]:
    suite.check(name, fn)


# ---- reconnect --------------------------------------------------------------------------------
def t_reconnect():
    R = P + "restart"
    eq(r.hset(R, "f", "before"), 1)
    restart_server("plain")
    # redis-py's default Retry reconnects on the ConnectionError of the dead socket.
    eq(r.ping(), True, "PING through the same client after restart")
    eq(r.hget(R, "f"), None, "a restarted in-memory server is empty")
    eq(r.hset(R, "f", "after"), 1)
    eq(r.hget(R, "f"), "after")


suite.check("reconnect/after-restart", t_reconnect)
suite.finish()
