//! Issue 17's conformance items, each sent byte for byte to hashd and to a real Redis
//! 7.4.1 side by side, in RESP2 and RESP3: EXPIRETIME's rounding near i64::MAX and the
//! field TTL family at its largest deadline (item 6), inline requests over 64 KiB
//! (item 7), `expired_subkeys` (item 8), error replies that keep the client's bytes and
//! inline requests with a NUL byte (item 9), COMMAND GETKEYS / GETKEYSANDFLAGS and
//! COMMAND DOCS / INFO of every command both serve (item 5), SCAN's TYPE filter.
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
/// subcommand list are sets in RESP3), whole replies for a few commands (every command is
/// compared by `item5_command_docs_and_info_match_redis`).
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

/// Sends each whitespace-separated command line to both (see [`both`]).
fn both_lines(h: &mut Client, r: &mut Client, lines: &[&str]) {
    for line in lines {
        let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        both(h, r, &args);
    }
}

/// Issue 17 item 1: a small hash's field order once fields have TTLs (Redis's listpackex:
/// the fields with a TTL first, by deadline, a new equal deadline before the old ones,
/// then the others in their order), as HGETALL, HKEYS, HVALS, HSCAN and HRANDFIELD (a
/// count covering the hash) return it. Deadlines are absolute, so both get the same ones.
#[test]
fn item1_compact_field_order_with_field_ttls() {
    let Some(pair) = Pair::start() else { return };
    let reads = |k: &str| -> Vec<String> {
        vec![
            format!("HGETALL {k}"),
            format!("HKEYS {k}"),
            format!("HVALS {k}"),
            format!("HSCAN {k} 0"),
            format!("HSCAN {k} 0 NOVALUES"),
            format!("HRANDFIELD {k} 100"),
            format!("HRANDFIELD {k} 100 WITHVALUES"),
            format!("OBJECT ENCODING {k}"),
        ]
    };
    let steps: &[&str] = &[
        "HSET k f3 -572 f4 -1 f1 3.5",
        "HEXPIRE k 1000 FIELDS 2 f3 f1",
        "HSET e a 1 b 2 c 3 d 4",
        "HEXPIREAT e 5000000000 FIELDS 1 c",
        // An equal deadline goes before the existing ones, an earlier one first.
        "HEXPIREAT e 5000000000 FIELDS 1 a",
        "HEXPIREAT e 5000000000 FIELDS 1 d",
        "HEXPIREAT e 4000000000 FIELDS 1 b",
        // Several fields of one command: each before the equal ones set before it.
        "HSET m a 1 b 2 c 3 d 4",
        "HPEXPIREAT m 5000000000000 FIELDS 3 d b c",
        // The same deadline again moves the field; a failed condition does not.
        "HSET s a 1 b 2 c 3",
        "HEXPIREAT s 5000000000 FIELDS 1 a",
        "HEXPIREAT s 5000000000 FIELDS 1 b",
        "HEXPIREAT s 5000000000 FIELDS 1 a",
        "HEXPIREAT s 5000000000 GT FIELDS 1 b",
        "HEXPIREAT s 4000000000 NX FIELDS 1 b",
        // HPERSIST moves to the end (after the fields without a TTL), and not a field
        // without one.
        "HPERSIST m FIELDS 1 b",
        "HPERSIST m FIELDS 1 a",
        "HPERSIST m FIELDS 1 d",
        // HINCRBY / HINCRBYFLOAT keep the field's TTL and place; HSET of a field with a
        // TTL moves it to the end, of one without keeps it; new fields go last.
        "HINCRBY e a 5",
        "HINCRBYFLOAT e a 1.5",
        "HSETNX e a 7",
        "HSET e d 9",
        "HSET e z 1",
        "HSET e z 2",
        "HSETNX e y 1",
        "HINCRBY e x 1",
        "HDEL e c",
        "HEXPIREAT e 4500000000 FIELDS 2 z x",
        "HPEXPIREAT e 4000000000000 FIELDS 1 y",
    ];
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        both(&mut h, &mut r, &[b"FLUSHALL"]);
        for step in steps {
            both_lines(&mut h, &mut r, &[step]);
            let key = step.split_whitespace().nth(1).unwrap();
            let lines = reads(key);
            both_lines(
                &mut h,
                &mut r,
                &lines.iter().map(String::as_str).collect::<Vec<_>>(),
            );
        }
        // Past deadlines delete; what is left keeps its order.
        both_lines(
            &mut h,
            &mut r,
            &[
                "HPEXPIRE e 0 FIELDS 2 b nope",
                "HGETALL e",
                "HPEXPIREAT e 1 FIELDS 1 a",
            ],
        );
        let lines = reads("e");
        both_lines(
            &mut h,
            &mut r,
            &lines.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
}

/// Issue 17 item 2: OBJECT ENCODING of a small hash. A field-expiration command makes a
/// listpack a listpackex once its arguments are valid and the key exists, even if it sets
/// nothing, and it stays one after the last TTL goes; HPERSIST and HTTL leave a listpack;
/// `hash-max-listpack-entries` counts the pairs a command gives, repeated fields included.
#[test]
fn item2_object_encoding_of_small_hashes() {
    let Some(pair) = Pair::start() else { return };
    let cases: &[&str] = &[
        "HSET k n -0",
        "OBJECT ENCODING k",
        "HPEXPIRE k 0 FIELDS 2 x f3",
        "OBJECT ENCODING k",
        "HGETALL k",
        "HSET a f 1",
        "HEXPIRE a 100 FIELDS 1 f",
        "OBJECT ENCODING a",
        "HPERSIST a FIELDS 1 f",
        "OBJECT ENCODING a",
        "HSET p f 1",
        "HPERSIST p FIELDS 1 f",
        "HTTL p FIELDS 1 f",
        "HPTTL p FIELDS 1 f",
        "HEXPIRETIME p FIELDS 1 f",
        "OBJECT ENCODING p",
        // Errors convert nothing.
        "HEXPIRE p 100 FIELDS 2 f",
        "HEXPIRE p -1 FIELDS 1 f",
        "HEXPIRE p 99999999999999999 FIELDS 1 f",
        "HEXPIRE p 100 FOO 1 f",
        "OBJECT ENCODING p",
        // A condition that holds for no field still converts.
        "HEXPIRE p 100 XX FIELDS 1 f",
        "OBJECT ENCODING p",
        "HSET q f 1 g 2",
        "HEXPIRE q 100 NX FIELDS 1 nope",
        "OBJECT ENCODING q",
        "HEXPIRE q 100 FIELDS 1 f",
        "HDEL q f",
        "OBJECT ENCODING q",
        // A past time deleting the last field deletes the key.
        "HSET d f 1",
        "HEXPIRE d 0 FIELDS 1 f",
        "EXISTS d",
        "CONFIG SET hash-max-listpack-entries 1",
        "HMSET k1 n a n b",
        "OBJECT ENCODING k1",
        "HLEN k1",
        "HSET k2 a 1",
        "HSET k2 a 2",
        "OBJECT ENCODING k2",
        "HSET k2 b 1",
        "OBJECT ENCODING k2",
        "CONFIG SET hash-max-listpack-entries 2",
        "HSET k3 a 1 b 2 a 2",
        "OBJECT ENCODING k3",
        "HSET k4 a 1",
        "HEXPIRE k4 100 FIELDS 1 a",
        "HSET k4 a 1 a 2 a 3",
        "OBJECT ENCODING k4",
        "HSET k5 a 1 b 2",
        "CONFIG SET hash-max-listpack-entries 0",
        "OBJECT ENCODING k5",
        "HSETNX k5 a 1",
        "OBJECT ENCODING k5",
        "HINCRBY k5 a 1",
        "OBJECT ENCODING k5",
        "HSETNX k6 a 1",
        "OBJECT ENCODING k6",
        "CONFIG SET hash-max-listpack-entries 128",
    ];
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        both(&mut h, &mut r, &[b"FLUSHALL"]);
        both_lines(&mut h, &mut r, cases);
    }
}

// ---- COMMAND DOCS / COMMAND INFO against Redis 7.4.1 (issue 17 item 5) ----

/// Left out of the COMMAND DOCS / INFO comparison on purpose.
const DOCS_NOT_COMPARED: &[(&str, &str)] = &[(
    "cluster",
    "hashd has no cluster mode: its CLUSTER is one command that answers that cluster \
     support is disabled, not Redis's container of cluster subcommands",
)];

/// Left out of the COMMAND INFO comparison (their COMMAND DOCS are compared): none now.
const INFO_NOT_COMPARED: &[&str] = &[];

/// The elements of the RESP aggregate `reply` (its header's count of them; a map's keys
/// and values count one each), as raw bytes.
fn elements(reply: &[u8]) -> Vec<&[u8]> {
    let eol = reply.windows(2).position(|w| w == b"\r\n").expect("header");
    let mut n: usize = std::str::from_utf8(&reply[1..eol])
        .unwrap()
        .parse()
        .unwrap();
    if reply[0] == b'%' {
        n *= 2;
    }
    let mut rest = &reply[eol + 2..];
    let mut out = Vec::new();
    for _ in 0..n {
        let len = common::frame_len(rest).unwrap().expect("complete reply");
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    assert!(rest.is_empty(), "trailing bytes in {}", show(reply));
    out
}

/// An aggregate of `items`, with the header type of `like` (a map counts pairs).
fn aggregate(like: u8, items: &[&[u8]]) -> Vec<u8> {
    let n = if like == b'%' {
        items.len() / 2
    } else {
        items.len()
    };
    let mut out = format!("{}{n}\r\n", like as char).into_bytes();
    items.iter().for_each(|i| out.extend_from_slice(i));
    out
}

/// The one entry of a `COMMAND DOCS name` reply, without its `subcommands`: Redis lists
/// them in the random order of its dictionary, and each is compared on its own.
fn docs_entry(reply: &[u8]) -> Vec<u8> {
    let outer = elements(reply);
    if outer.len() != 2 {
        return reply.to_vec();
    }
    let fields = elements(outer[1]);
    let kept: Vec<&[u8]> = fields
        .chunks(2)
        .filter(|kv| kv[0] != b"$11\r\nsubcommands\r\n")
        .flatten()
        .copied()
        .collect();
    aggregate(outer[1][0], &kept)
}

/// The one entry of a `COMMAND INFO name` reply, without its subcommands (as above).
fn info_entry(reply: &[u8]) -> Vec<u8> {
    let outer = elements(reply);
    if outer.len() != 1 || outer[0].starts_with(b"_") || outer[0].starts_with(b"*-1") {
        return reply.to_vec();
    }
    let fields = elements(outer[0]);
    aggregate(outer[0][0], &fields[..fields.len().min(9)])
}

/// The names COMMAND DOCS / INFO are compared for: every command and subcommand hashd
/// serves that Redis 7.4.1 has too (HGETEX, HSETEX and HGETDEL are Redis 8's; the
/// subcommands Redis 7.4.1 lacks are hashd's own), less [`DOCS_NOT_COMPARED`].
fn compared_names(h: &mut Client, r: &mut Client) -> Vec<String> {
    let list = common::decode(&h.cmd(&["COMMAND", "LIST"]));
    let mut names: Vec<String> = list
        .items()
        .unwrap()
        .iter()
        .map(|v| String::from_utf8(v.as_bytes().unwrap().to_vec()).unwrap())
        .filter(|n| !DOCS_NOT_COMPARED.iter().any(|(x, _)| x == n))
        .filter(|n| {
            let info = common::decode(&r.cmd(&["COMMAND", "INFO", n.as_str()]));
            info.items().unwrap()[0] != common::Value::Null
        })
        .collect();
    names.sort();
    names
}

/// COMMAND DOCS and COMMAND INFO of every command both serve, byte for byte in RESP2 and
/// RESP3 (containers without their subcommand lists, see [`docs_entry`]).
#[test]
fn item5_command_docs_and_info_match_redis() {
    let Some(pair) = Pair::start() else { return };
    let mut differ: Vec<String> = Vec::new();
    let mut compared = 0;
    let (mut docs_same, mut info_same) = (0, 0);
    let (mut h2, mut r2) = pair.clients(false);
    let names = compared_names(&mut h2, &mut r2);
    let (mut h3, mut r3) = pair.clients(true);
    for name in &names {
        compared += 1;
        let mut docs_ok = true;
        let mut info_ok = true;
        for (h, r, proto) in [(&mut h2, &mut r2, 2), (&mut h3, &mut r3, 3)] {
            let args = ["COMMAND", "DOCS", name.as_str()];
            let (a, b) = (docs_entry(&h.cmd(&args)), docs_entry(&r.cmd(&args)));
            if a != b {
                docs_ok = false;
                differ.push(format!(
                    "COMMAND DOCS {name} (RESP{proto}):\n  hashd {}\n  redis {}",
                    show(&a),
                    show(&b)
                ));
            }
            if INFO_NOT_COMPARED.contains(&name.as_str()) {
                continue;
            }
            let args = ["COMMAND", "INFO", name.as_str()];
            let (a, b) = (info_entry(&h.cmd(&args)), info_entry(&r.cmd(&args)));
            if a != b {
                info_ok = false;
                differ.push(format!(
                    "COMMAND INFO {name} (RESP{proto}):\n  hashd {}\n  redis {}",
                    show(&a),
                    show(&b)
                ));
            }
        }
        docs_same += usize::from(docs_ok);
        info_same += usize::from(info_ok && !INFO_NOT_COMPARED.contains(&name.as_str()));
    }
    eprintln!(
        "{compared} commands compared: COMMAND DOCS the same for {docs_same}, COMMAND INFO \
         for {info_same} of {}",
        compared - INFO_NOT_COMPARED.len()
    );
    assert!(compared > 100, "only {compared} commands compared");
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// Writes src/cmd/command/redis7.rs, the COMMAND DOCS entries (without `subcommands`) and
/// COMMAND INFO tips of Redis 7.4.1 for the commands [`compared_names`] lists, which
/// hashd's COMMAND DOCS / INFO answer with. Run it again when a command is added:
/// `cargo test --test conformance write_redis7_docs -- --ignored`.
#[test]
#[ignore = "writes src/cmd/command/redis7.rs from the reference Redis"]
fn write_redis7_docs() {
    let Some(pair) = Pair::start() else { return };
    let (mut h, mut r) = pair.clients(true);
    let names = compared_names(&mut h, &mut r);
    let mut out = String::from(
        "//! Redis 7.4.1's COMMAND DOCS entries (as RESP3, without their `subcommands`, which\n\
         //! hashd lists from its own table) and COMMAND INFO tips, for the commands hashd\n\
         //! serves that Redis 7.4.1 has. Written by\n\
         //! `cargo test --test conformance write_redis7_docs -- --ignored`; do not edit.\n\n\
         /// (full name, its COMMAND DOCS map in RESP3), sorted by name.\n\
         pub const DOCS: &[(&str, &[u8])] = &[\n",
    );
    let mut tips = String::new();
    for name in &names {
        let entry = docs_entry(&r.cmd(&["COMMAND", "DOCS", name.as_str()]));
        out.push_str(&format!("    (\n        \"{name}\",\n        b\""));
        // Where the current line starts, and whether it is a bulk string's payload.
        let (mut line_start, mut payload) = (0, false);
        for (i, &b) in entry.iter().enumerate() {
            match b {
                b'\r' => out.push_str("\\r"),
                b'\n' => {
                    out.push_str("\\n");
                    let header = !payload && entry[line_start] == b'$';
                    payload = header;
                    line_start = i + 1;
                    // Break the line after each element, a bulk string's length and
                    // payload together (never before a space, which the continuation
                    // would drop).
                    if !header && entry.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                        out.push_str("\\\n          ");
                    }
                }
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                0x20..=0x7e => out.push(b as char),
                _ => out.push_str(&format!("\\x{b:02x}")),
            }
        }
        out.push_str("\",\n    ),\n");
        let info = common::decode(&r.cmd(&["COMMAND", "INFO", name.as_str()]));
        let entry = &info.items().unwrap()[0];
        let list: Vec<String> = entry.items().unwrap()[7]
            .items()
            .unwrap()
            .iter()
            .map(|t| format!("{:?}", String::from_utf8_lossy(t.as_bytes().unwrap())))
            .collect();
        if !list.is_empty() {
            tips.push_str(&format!("    (\"{name}\", &[{}]),\n", list.join(", ")));
        }
    }
    out.push_str(
        "];\n\n/// (full name, its COMMAND INFO tips), sorted by name; those without tips are \
         left out.\npub const TIPS: &[(&str, &[&str])] = &[\n",
    );
    out.push_str(&tips);
    out.push_str("];\n");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/cmd/command/redis7.rs");
    std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, out).unwrap();
    // Formatted as the rest of the tree (the byte strings stay as written).
    let fmt = std::process::Command::new("rustfmt")
        .args(["--edition", "2021", path])
        .status();
    assert!(fmt.is_ok_and(|s| s.success()), "rustfmt {path}");
}

/// KEYS, SCAN and PSUBSCRIBE with an empty key or channel: "" matches only the empty
/// pattern (Redis's stringmatchlen), while "*" as a whole lists everything in KEYS and
/// SCAN (found by tests/differential.rs for HSCAN).
#[test]
fn empty_names_and_glob_patterns() {
    let Some(pair) = Pair::start() else {
        return;
    };
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        for cmd in [
            &[&b"FLUSHALL"[..]][..],
            &[b"HSET", b"", b"f", b"v"],
            &[b"HSET", b"x", b"f", b"v"],
            &[b"KEYS", b"**"],
            &[b"KEYS", b"?*"],
            &[b"KEYS", b""],
            &[b"SCAN", b"0", b"MATCH", b"**", b"COUNT", b"1000"],
        ] {
            both(&mut h, &mut r, cmd);
        }
        // KEYS * and SCAN MATCH * list the empty key too (order aside).
        fn names(v: common::Value) -> Vec<Vec<u8>> {
            let mut out: Vec<Vec<u8>> = match v {
                common::Value::Array(items) => items
                    .into_iter()
                    .flat_map(|i| match i {
                        common::Value::Array(inner) => inner,
                        other => vec![other],
                    })
                    .filter_map(|i| i.as_bytes().map(<[u8]>::to_vec))
                    .collect(),
                other => panic!("{other:?}"),
            };
            out.sort();
            out
        }
        for cmd in [
            &[&b"KEYS"[..], b"*"][..],
            &[b"SCAN", b"0", b"MATCH", b"*", b"COUNT", b"1000"],
        ] {
            h.send(&common::encode_command(cmd));
            r.send(&common::encode_command(cmd));
            let (hn, rn) = (
                names(common::decode(&h.read_reply())),
                names(common::decode(&r.read_reply())),
            );
            assert_eq!(hn, rn, "{cmd:?}");
            assert!(hn.contains(&Vec::new()), "{cmd:?} lists the empty key");
        }
    }
}

/// Issue 17 items 3 and 4: memory values in CONFIG SET, CLIENT KILL MAXAGE's checks,
/// CLIENT REPLY ON/OFF/SKIP and CLIENT UNBLOCK's replies, side by side.
#[test]
fn config_memory_values_and_client_reply_kill_unblock() {
    let Some(pair) = Pair::start() else {
        return;
    };
    for resp3 in [false, true] {
        let (mut h, mut r) = pair.clients(resp3);
        for cmd in [
            &[&b"CONFIG"[..], b"SET", b"hash-max-listpack-value", b"1kb"][..],
            &[b"CONFIG", b"GET", b"hash-max-listpack-value"],
            &[b"CONFIG", b"SET", b"hash-max-listpack-value", b"2K"],
            &[b"CONFIG", b"GET", b"hash-max-listpack-value"],
            &[b"CONFIG", b"SET", b"hash-max-listpack-value", b""],
            &[b"CONFIG", b"GET", b"hash-max-listpack-value"],
            &[b"CONFIG", b"SET", b"hash-max-listpack-value", b"x"],
            &[b"CONFIG", b"SET", b"hash-max-listpack-value", b"-1"],
            &[b"CONFIG", b"SET", b"hash-max-listpack-value", b"64"],
            &[b"CONFIG", b"SET", b"loglevel", b"warning"],
            &[b"CONFIG", b"GET", b"loglevel"],
            &[b"CONFIG", b"SET", b"loglevel", b"bogus"],
            &[b"CONFIG", b"SET", b"loglevel", b"notice"],
            &[b"CONFIG", b"SET", b"timeout", b"0"],
            &[b"CONFIG", b"SET", b"tcp-keepalive", b"300"],
            &[b"CONFIG", b"GET", b"tcp-keepalive"],
            &[b"CLIENT", b"KILL", b"MAXAGE", b"-1"],
            &[b"CLIENT", b"KILL", b"MAXAGE", b"0"],
            &[b"CLIENT", b"KILL", b"MAXAGE", b"x"],
            &[b"CLIENT", b"REPLY", b"bogus"],
            &[b"CLIENT", b"UNBLOCK", b"99999"],
            &[b"CLIENT", b"UNBLOCK", b"x"],
            &[b"CLIENT", b"UNBLOCK", b"99999", b"bogus"],
        ] {
            both(&mut h, &mut r, cmd);
        }
        // Replies dropped: OFF until ON; SKIP drops the next one only (not while OFF).
        let script = b"CLIENT REPLY OFF\r\nPING\r\nCLIENT REPLY SKIP\r\nPING\r\nPING\r\n\
                       CLIENT REPLY ON\r\nPING\r\nCLIENT REPLY SKIP\r\nECHO a\r\nECHO b\r\n";
        h.send(script);
        r.send(script);
        let (rh, rr) = (h.read_reply(), r.read_reply());
        assert_eq!(rh, rr, "CLIENT REPLY ON");
        for _ in 0..2 {
            assert_eq!(h.read_reply(), r.read_reply());
        }
    }
}
