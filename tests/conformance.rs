//! Issue 17's conformance items, each sent byte for byte to hashd and to a real Redis
//! 7.4.1 side by side, in RESP2 and RESP3: EXPIRETIME's rounding near i64::MAX and the
//! field TTL family at its largest deadline (item 6), inline requests over 64 KiB
//! (item 7), `expired_subkeys` (item 8), error replies that keep the client's bytes and
//! inline requests with a NUL byte (item 9), COMMAND GETKEYS / GETKEYSANDFLAGS (item 5).
//!
//! Without the reference Redis (`../shared/tools/reference-redis`) this prints why and
//! passes, unless `HASHD_REQUIRE_TOOLS=1`.

mod common;

use std::time::Duration;

use common::{reference_redis, show, wait_until, Client, ReadError, RedisServer, TestServer};

/// How long "no reply" is waited for.
const QUIET: Duration = Duration::from_millis(200);

/// hashd and Redis, with a way to open a connection to each.
struct Pair {
    redis: RedisServer,
    hashd: TestServer,
}

impl Pair {
    fn start() -> Option<Pair> {
        let bin = reference_redis()?;
        let dir = common::fresh_dir("conformance");
        // hashd always allows DEBUG (its `enable-debug-command` is `yes`).
        let redis = RedisServer::start(
            &bin,
            &dir,
            &["--appendonly", "no", "--enable-debug-command", "yes"],
        );
        let hashd = TestServer::start();
        let mut h = hashd.client();
        assert!(
            wait_until(Duration::from_secs(20), || !h
                .run("EXISTS nokey")
                .starts_with(b"-LOADING")),
            "hashd stayed in LOADING"
        );
        Some(Pair { redis, hashd })
    }

    /// A connection to each, in RESP3 after HELLO 3 (whose replies differ by design and
    /// are not compared) when `resp3`.
    fn clients(&self, resp3: bool) -> (Client, Client) {
        let mut h = self.hashd.client();
        let mut r = Client::connect(self.redis.addr);
        if resp3 {
            h.hello3();
            r.hello3();
        }
        (h, r)
    }
}

/// Sends `args` to both; their replies must be the same bytes. Returns the reply.
fn both(h: &mut Client, r: &mut Client, args: &[&[u8]]) -> Vec<u8> {
    let (a, b) = (h.cmd(args), r.cmd(args));
    assert_eq!(
        show(&a),
        show(&b),
        "hashd (left) vs Redis 7.4.1 (right) for {:?}",
        args.iter().map(|a| show(a)).collect::<Vec<_>>()
    );
    a
}

/// Sends raw bytes to a fresh connection to each and returns everything up to the close;
/// the two must match.
fn both_until_closed(pair: &Pair, pieces: &[&[u8]], what: &str) -> Vec<u8> {
    let (mut h, mut r) = pair.clients(false);
    for c in [&mut h, &mut r] {
        for p in pieces {
            // The server may close while we still write: that is what is tested.
            if c.try_send(p).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (a, b) = (h.read_until_closed(), r.read_until_closed());
    assert_eq!(show(&a), show(&b), "hashd vs Redis 7.4.1: {what}");
    a
}

fn expect_quiet(c: &mut Client, what: &str) {
    match c.try_read_reply_within(QUIET) {
        Err(ReadError::Timeout(b)) if b.is_empty() => {}
        other => panic!("{what}: expected no reply, got {other:?}"),
    }
}

#[test]
fn item6_expiretime_near_i64_max() {
    let Some(pair) = Pair::start() else { return };
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        both(&mut h, &mut r, &[b"DEL", b"k", b"h"]);
        both(&mut h, &mut r, &[b"HSET", b"k", b"f", b"v"]);
        both(
            &mut h,
            &mut r,
            &[b"PEXPIREAT", b"k", b"9223372036854775807"],
        );
        let got = both(&mut h, &mut r, &[b"EXPIRETIME", b"k"]);
        assert_eq!(got, b":9223372036854776\r\n");
        both(&mut h, &mut r, &[b"PEXPIRETIME", b"k"]);
        both(&mut h, &mut r, &[b"EXPIREAT", b"k", b"9223372036854775"]);
        both(&mut h, &mut r, &[b"EXPIRETIME", b"k"]);
        both(&mut h, &mut r, &[b"PEXPIRETIME", b"k"]);
        both(&mut h, &mut r, &[b"PEXPIRE", b"k", b"9223372036854775807"]);
        both(&mut h, &mut r, &[b"EXPIRE", b"k", b"9223372036854775"]);
        // The field TTL family at its largest deadline (2^46 - 1 ms).
        both(&mut h, &mut r, &[b"HSET", b"h", b"f", b"v"]);
        for at in [
            &b"70368744177664"[..],
            b"9223372036854775807",
            b"70368744177663",
        ] {
            both(
                &mut h,
                &mut r,
                &[b"HPEXPIREAT", b"h", at, b"FIELDS", b"1", b"f"],
            );
        }
        let got = both(
            &mut h,
            &mut r,
            &[b"HEXPIRETIME", b"h", b"FIELDS", b"1", b"f"],
        );
        assert_eq!(got, b"*1\r\n:70368744178\r\n");
        both(
            &mut h,
            &mut r,
            &[b"HPEXPIRETIME", b"h", b"FIELDS", b"1", b"f"],
        );
        both(
            &mut h,
            &mut r,
            &[b"HEXPIREAT", b"h", b"70368744178", b"FIELDS", b"1", b"f"],
        );
    }
}

#[test]
fn item7_inline_requests_over_64k() {
    let Some(pair) = Pair::start() else { return };
    let too_big = b"-ERR Protocol error: too big inline request\r\n";
    // Longer than 64 KiB, newline included, in one write.
    let mut line = b"ECHO ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 100_000));
    line.extend_from_slice(b"\r\n");
    let got = both_until_closed(&pair, &[&line], "a 100 KB inline line with its newline");
    assert_eq!(got, too_big);
    // 66 000 bytes, then the newline.
    let mut line = b"ECHO ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 66_000));
    let got = both_until_closed(&pair, &[&line, b"\r\n"], "66 KB, then the newline");
    assert_eq!(got, too_big);
    // Exactly 64 KiB before the newline is served.
    let line = vec![b'x'; 64 * 1024];
    let (mut h, mut r) = pair.clients(false);
    for c in [&mut h, &mut r] {
        c.send(&line);
        std::thread::sleep(Duration::from_millis(20));
        c.send(b"\n");
    }
    let (a, b) = (h.read_reply(), r.read_reply());
    assert_eq!(show(&a), show(&b), "a 64 KiB inline line");
    assert!(a.starts_with(b"-ERR unknown command 'xxx"), "{}", show(&a));
}

#[test]
fn item9_error_replies_keep_their_bytes() {
    let Some(pair) = Pair::start() else { return };
    let cases: &[&[&[u8]]] = &[
        &[b"n\xffo", b"a\xfe", b"b"],
        &[b"CLIENT", b"s\xffub"],
        &[b"command", b"\xe9x"],
        &[b"config", b"a\r\nb"],
        &[b"expire", b"k", b"10", b"\xff\xfe"],
        &[b"obj\x00ect", b"x"],
        &[b"OBJECT", b"\xc3\x28"],
        // Arguments quoted with `%s`: up to a NUL, CR and LF as spaces, else unchanged.
        &[b"CLIENT", b"SETINFO", b"l\xffb\x00x", b"v"],
        &[b"CLIENT", b"SETINFO", b"a\r\n", b"v"],
        &[b"CLIENT", b"LIST", b"TYPE", b"n\xff\x00q"],
        &[b"CLIENT", b"KILL", b"TYPE", b"\xe9"],
        &[b"CLIENT", b"KILL", b"USER", b"u\xff\x00z"],
        &[b"CLIENT", b"KILL", b"ID", b"1", b"USER", b"\xc3\x28"],
        &[b"HELLO", b"3", b"\xffopt\x00z"],
        &[b"HELLO", b"2", b"x\r\n"],
        &[b"CONFIG", b"SET", b"m\xffx\x00y", b"1"],
        &[b"CONFIG", b"SET", b"maxmemory", b"x", b"\xe9", b"1"],
        // `%.128s`: also at most 128 bytes.
        &[b"DEBUG", b"s\xffub\x00x"],
        &[b"debug", b"\r\nx\xfe\r\n"],
        &[b"DEBUG", &[b'x'; 129]],
        &[b"PUBSUB", b"chAnnels", b"a", b"b"],
        // CR/LF at the message's end are trimmed, not turned into spaces.
        &[b"expire", b"k", b"10", b"x\r\n"],
        &[b"expire", b"k", b"10", b"\r\nx"],
    ];
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        for args in cases {
            let got = both(&mut h, &mut r, args);
            assert!(got.starts_with(b"-ERR "), "{}", show(&got));
        }
    }
}

#[test]
fn item9_inline_requests_with_a_nul_byte() {
    let Some(pair) = Pair::start() else { return };
    for request in [
        &b"PING a\0b\r\n"[..],
        b"\0PING\r\n",
        b"*1\0\r\n$4\r\nPING\r\n",
        b"*1\r\n$4\0\r\nPING\r\n",
    ] {
        let (mut h, mut r) = pair.clients(false);
        for (c, name) in [(&mut h, "hashd"), (&mut r, "Redis")] {
            c.send(b"PING\r\n");
            c.send(request);
            assert_eq!(show(&c.read_reply()), show(b"+PONG\r\n"), "{name}");
            expect_quiet(c, &format!("{name}: {}", show(request)));
            // More than 64 KiB later, the line is too big.
            c.send(&vec![b'x'; 64 * 1024]);
        }
        let (a, b) = (h.read_until_closed(), r.read_until_closed());
        assert_eq!(show(&a), show(&b), "{}", show(request));
        assert!(
            a.starts_with(b"-ERR Protocol error: too big"),
            "{}",
            show(&a)
        );
    }
}

#[test]
fn item5_command_getkeys_and_getkeysandflags() {
    let Some(pair) = Pair::start() else { return };
    let commands: &[&[&[u8]]] = &[
        &[b"hset", b"k", b"f", b"v"],
        &[b"hget", b"k", b"f"],
        &[b"hdel", b"k", b"f", b"g"],
        &[b"hgetall", b"k"],
        &[b"hexpire", b"k", b"10", b"FIELDS", b"1", b"f"],
        &[b"httl", b"k", b"FIELDS", b"1", b"f"],
        &[b"del", b"a", b"b", b"c"],
        &[b"exists", b"a", b"b"],
        &[b"rename", b"a", b"b"],
        &[b"renamenx", b"a", b"b"],
        &[b"restore", b"k", b"0", b"x"],
        &[b"watch", b"a", b"b"],
        &[b"object", b"encoding", b"k"],
        &[b"OBJECT", b"FREQ", b"k"],
        &[b"expire", b"k", b"10"],
        &[b"type", b"k"],
        // Errors, in Redis's order.
        &[b"ping"],
        &[b"PING", b"x"],
        &[b"command"],
        &[b"command", b"getkeys"],
        &[b"object"],
        &[b"nosuch", b"k"],
        &[b"object", b"nosuch", b"k"],
        &[b"hset", b"k"],
        &[b"watch"],
        &[b"hget", b"k", b"f", b"x"],
    ];
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        for sub in [&b"GETKEYS"[..], b"GETKEYSANDFLAGS", b"getkeysandflags"] {
            both(&mut h, &mut r, &[b"COMMAND", sub]);
            for args in commands {
                let mut full: Vec<&[u8]> = vec![b"COMMAND", sub];
                full.extend_from_slice(args);
                both(&mut h, &mut r, &full);
            }
        }
        // The key specs COMMAND INFO shows for the same commands.
        for name in [
            &b"rename"[..],
            b"renamenx",
            b"restore",
            b"httl",
            b"hset",
            b"del",
        ] {
            let (a, b) = (
                h.cmd(&[&b"COMMAND"[..], b"INFO", name]),
                r.cmd(&[&b"COMMAND"[..], b"INFO", name]),
            );
            let specs = |reply: &[u8]| {
                let v = common::decode(reply);
                format!("{:?}", v.items().and_then(|e| e[0].items()).map(|e| &e[8]))
            };
            assert_eq!(specs(&a), specs(&b), "key specs of {}", show(name));
        }
    }
}

/// COMMAND INFO, byte for byte in both protocols (tips, key specs and an empty
/// subcommand list are sets in RESP3), for commands whose tips hashd has too (none).
#[test]
fn item5_command_info_shapes() {
    let Some(pair) = Pair::start() else { return };
    let names: &[&[u8]] = &[
        b"hget",
        b"hset",
        b"hdel",
        b"hlen",
        b"hexists",
        b"httl",
        b"hexpire",
        b"hpersist",
        b"rename",
        b"renamenx",
        b"restore",
        b"expire",
        b"type",
        b"hincrby",
        b"hmget",
        b"hstrlen",
        b"watch",
        b"echo",
    ];
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        for name in names {
            both(&mut h, &mut r, &[b"COMMAND", b"INFO", name]);
        }
    }
}

/// SCAN's TYPE filter: Redis 7.4.1 compares the name with each key's type name, so an
/// unknown type is no error, it just matches nothing.
#[test]
fn scan_type_filter() {
    let Some(pair) = Pair::start() else { return };
    let cases: &[&[&[u8]]] = &[
        &[b"SCAN", b"0", b"TYPE", b"nosuchtype"],
        &[b"SCAN", b"0", b"TYPE", b"hash"],
        &[b"SCAN", b"0", b"type", b"HaSh"],
        &[b"SCAN", b"0", b"TYPE", b"hash\x00x"],
        &[b"SCAN", b"0", b"TYPE", b"string"],
        &[b"SCAN", b"0", b"TYPE", b"\xff"],
        &[b"SCAN", b"0", b"TYPE", b""],
        &[b"SCAN", b"0", b"TYPE", b"nosuchtype", b"COUNT", b"0"],
        &[b"SCAN", b"0", b"TYPE", b"nosuchtype", b"MATCH", b"*"],
        &[b"SCAN", b"0", b"TYPE"],
    ];
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        both(&mut h, &mut r, &[b"FLUSHALL"]);
        for args in cases {
            both(&mut h, &mut r, args);
        }
        both(&mut h, &mut r, &[b"HSET", b"k", b"f", b"v"]);
        for args in cases {
            both(&mut h, &mut r, args);
        }
    }
}

#[test]
fn item8_expired_subkeys_counts_reclaimed_fields_once() {
    let Some(pair) = Pair::start() else { return };
    let (mut h, mut r) = pair.clients(false);
    both(
        &mut h,
        &mut r,
        &[b"HSET", b"h", b"a", b"1", b"b", b"2", b"c", b"3"],
    );
    both(&mut h, &mut r, &[b"HSET", b"gone", b"a", b"1", b"b", b"2"]);
    both(
        &mut h,
        &mut r,
        &[b"HPEXPIRE", b"h", b"20", b"FIELDS", b"2", b"a", b"b"],
    );
    both(
        &mut h,
        &mut r,
        &[b"HPEXPIRE", b"gone", b"20", b"FIELDS", b"2", b"a", b"b"],
    );
    let stat = |c: &mut Client, name: &str| -> String {
        let reply = c.cmd(&[&b"INFO"[..], b"stats"]);
        let text = String::from_utf8_lossy(&reply).into_owned();
        let at = text.find(&format!("\r\n{name}:")).expect(name) + name.len() + 3;
        text[at..].split("\r\n").next().unwrap().to_string()
    };
    // Active expiry reclaims the four fields (and the emptied hash) on both.
    for (c, who) in [(&mut h, "hashd"), (&mut r, "Redis")] {
        assert!(
            wait_until(Duration::from_secs(5), || stat(c, "expired_subkeys") == "4"),
            "{who}: expired_subkeys {}",
            stat(c, "expired_subkeys")
        );
    }
    both(&mut h, &mut r, &[b"HGETALL", b"h"]);
    both(&mut h, &mut r, &[b"EXISTS", b"gone"]);
    both(&mut h, &mut r, &[b"HSET", b"h", b"d", b"4"]);
    assert_eq!(
        stat(&mut h, "expired_subkeys"),
        stat(&mut r, "expired_subkeys")
    );
    assert_eq!(stat(&mut h, "expired_keys"), stat(&mut r, "expired_keys"));
}
