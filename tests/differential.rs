//! Issue 17, "What it must show": a seeded random differential test. Random sequences of
//! hash commands (HSET HMSET HGET HMGET HDEL HLEN HEXISTS HSTRLEN HINCRBY HINCRBYFLOAT
//! HKEYS HVALS HGETALL HSETNX HRANDFIELD HSCAN), the field TTL family (HEXPIRE HPEXPIRE
//! HEXPIREAT HPEXPIREAT HTTL HPTTL HEXPIRETIME HPEXPIRETIME HPERSIST, with their error
//! cases), key-space commands (DEL UNLINK TOUCH EXISTS TYPE RENAME RENAMENX EXPIRE PEXPIRE
//! EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME PERSIST DBSIZE SELECT SWAPDB FLUSHDB
//! over four databases), MULTI/EXEC/DISCARD, wrong arities and unknown commands, with
//! binary key and field names, numeric edge values and glob patterns, go to hashd and to
//! a real Redis 7.4.1 side by side, in RESP2 and in RESP3 (after `HELLO 3` on both, whose
//! own replies are not compared), and the raw reply bytes must match.
//!
//! Normalised, not byte-compared:
//! - HGETALL, HKEYS, HVALS and HSCAN from cursor 0 compare as sorted multisets of their
//!   elements (or field/value pairs) only on a hashtable, whose order is its seeded hash's,
//!   and inside MULTI; HRANDFIELD (whole-hash counts only) always. Outside MULTI both
//!   servers are asked OBJECT ENCODING out of band (the replies must match), and on a
//!   listpack the read is byte-compared, order included: insertion order, fields with a
//!   TTL first by deadline.
//! - Times: a relative TTL is set a few microseconds apart on the two servers. PTTL, HPTTL
//!   and PEXPIRETIME, HPEXPIRETIME compare their positive numbers within 2 s; EXPIRETIME
//!   and HEXPIRETIME within 1 s (two deadlines 1 ms apart may straddle a second); TTL and
//!   HTTL exactly, sent again (up to 5 times, each in the sequence) while they differ, as
//!   the remaining time may cross a rounding boundary between the two servers (within 1 s
//!   inside EXEC, where that is not possible). Codes (-2, -1) compare exactly.
//!
//! Avoided on purpose (hashd's deliberate differences): TTLs shorter than an hour (hashd
//! never counts expired fields, and a hash whose fields have all expired does not exist;
//! past absolute times delete at once in both and are sent), commands of other data types
//! and Redis 8-only commands, OBJECT/DEBUG/CONFIG/INFO/CLIENT/COMMAND; HRANDFIELD with a
//! huge negative count (hashd refuses past 16M picks, Redis builds the reply); HSCAN with
//! a nonzero cursor (a position in each server's own table layout); HRANDFIELD counts
//! that pick a part of the hash (random).
//!
//! Default: one seed, a few thousand commands per protocol. Longer:
//! `HASHD_DIFF_COMMANDS=1000000` (per protocol and seed), `HASHD_DIFF_SEED=<first seed>`,
//! `HASHD_DIFF_SEEDS=<how many consecutive seeds>`. On the first difference the test fails
//! with the seed, protocol, command index, the command sequence so far (also written to a
//! file) and both replies.
//!
//! Without the reference Redis (`../shared/tools/reference-redis`) this prints a SKIP line
//! and passes, unless `HASHD_REQUIRE_TOOLS=1`.

mod common;

use std::time::Duration;

use common::{
    encode_command, reference_redis, show, split_replies, wait_until, Client, RedisServer,
    TestServer,
};

const DEFAULT_COMMANDS: usize = 5000;
const DEFAULT_SEED: u64 = 17;

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

#[test]
fn differential_against_redis() {
    let Some(bin) = reference_redis() else { return };
    let dir = common::fresh_dir("differential");
    let redis = RedisServer::start(&bin, &dir, &["--appendonly", "no"]);
    let hashd = TestServer::start();
    let mut probe = hashd.client();
    assert!(
        wait_until(Duration::from_secs(20), || !probe
            .run("EXISTS nokey")
            .starts_with(b"-LOADING")),
        "hashd stayed in LOADING"
    );
    let commands = env_num("HASHD_DIFF_COMMANDS").unwrap_or(DEFAULT_COMMANDS as u64) as usize;
    let first = env_num("HASHD_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let seeds = env_num("HASHD_DIFF_SEEDS").unwrap_or(1);
    for seed in first..first + seeds {
        for resp3 in [false, true] {
            let mut h = hashd.client();
            let mut r = Client::connect(redis.addr);
            if resp3 {
                h.hello3();
                r.hello3();
            }
            run(seed, resp3, commands, &mut h, &mut r);
        }
    }
    eprintln!(
        "differential: {seeds} seed(s) from {first}, {commands} commands each in RESP2 and RESP3"
    );
}

// ---------------------------------------------------------------------------------------
// Comparison

/// How two replies are compared.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Byte for byte.
    Exact,
    /// An array of elements in any order (HKEYS, HVALS, HRANDFIELD without values).
    Items,
    /// Field/value pairs in any order: a flat RESP2 array or a RESP3 map, or RESP3
    /// HRANDFIELD's array of 2-arrays.
    Pairs,
    /// HSCAN's [cursor, items]; `true` when NOVALUES.
    Scan(bool),
    /// Integers (or arrays of them) that are times: positive ones within `tol`.
    Time(i64),
    /// Remaining seconds: exact, asked again while they differ (within 1 inside EXEC).
    Secs,
    /// EXEC: each element by the kind of the command queued at its place.
    Exec,
}

/// The header line (with its CRLF) and the frames after it, for an aggregate reply.
fn aggregate(raw: &[u8]) -> Option<(&[u8], Vec<Vec<u8>>)> {
    if !matches!(raw.first(), Some(b'*' | b'%' | b'~')) {
        return None;
    }
    let end = raw.windows(2).position(|w| w == b"\r\n")? + 2;
    let (frames, rest) = split_replies(&raw[end..]).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some((&raw[..end], frames))
}

fn sorted_items(raw: &[u8], pairs: bool) -> Vec<u8> {
    let Some((header, frames)) = aggregate(raw) else {
        return raw.to_vec();
    };
    let mut units: Vec<Vec<u8>> = if pairs && frames.len() % 2 == 0 {
        frames.chunks(2).map(|c| c.concat()).collect()
    } else {
        frames
    };
    units.sort();
    let mut out = header.to_vec();
    for u in units {
        out.extend_from_slice(&u);
    }
    out
}

/// The canonical form of an unordered reply.
fn canonical(kind: Kind, raw: &[u8], resp3: bool) -> Vec<u8> {
    match kind {
        Kind::Items => sorted_items(raw, false),
        // RESP3 HRANDFIELD WITHVALUES is an array of 2-arrays: sort those whole.
        Kind::Pairs => sorted_items(raw, !(resp3 && raw.first() == Some(&b'*'))),
        Kind::Scan(novalues) => match aggregate(raw) {
            Some((header, frames)) if frames.len() == 2 => {
                let mut out = header.to_vec();
                out.extend_from_slice(&frames[0]);
                out.extend_from_slice(&sorted_items(&frames[1], !novalues));
                out
            }
            _ => raw.to_vec(),
        },
        _ => raw.to_vec(),
    }
}

fn same_time(a: &[u8], b: &[u8], tol: i64) -> bool {
    if a.first() == Some(&b':') && b.first() == Some(&b':') {
        let num = |x: &[u8]| -> Option<i64> {
            std::str::from_utf8(&x[1..x.len().checked_sub(2)?])
                .ok()?
                .parse()
                .ok()
        };
        return match (num(a), num(b)) {
            (Some(x), Some(y)) => x == y || (x > 0 && y > 0 && (x - y).abs() <= tol),
            _ => a == b,
        };
    }
    match (aggregate(a), aggregate(b)) {
        (Some((ha, fa)), Some((hb, fb))) => {
            ha == hb
                && fa.len() == fb.len()
                && fa.iter().zip(&fb).all(|(x, y)| same_time(x, y, tol))
        }
        _ => a == b,
    }
}

fn same(kind: Kind, queued: &[Kind], a: &[u8], b: &[u8], resp3: bool) -> bool {
    match kind {
        Kind::Exact => a == b,
        Kind::Time(tol) => same_time(a, b, tol),
        Kind::Secs => a == b,
        Kind::Exec => match (aggregate(a), aggregate(b)) {
            (Some((ha, fa)), Some((hb, fb))) if fa.len() == queued.len() => {
                ha == hb
                    && fa.len() == fb.len()
                    && fa.iter().zip(&fb).zip(queued).all(|((x, y), k)| match k {
                        Kind::Secs => same_time(x, y, 1),
                        _ => same(*k, &[], x, y, resp3),
                    })
            }
            _ => a == b,
        },
        _ => canonical(kind, a, resp3) == canonical(kind, b, resp3),
    }
}

// ---------------------------------------------------------------------------------------
// The run

fn printable(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| format!("\"{}\"", a.escape_ascii()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One connection to each server and what was sent on them.
struct Session<'a> {
    seed: u64,
    resp3: bool,
    h: &'a mut Client,
    r: &'a mut Client,
    history: Vec<Vec<Vec<u8>>>,
    /// HASHD_DIFF_VERBOSE=1: how often each error and each command/reply type came up.
    stats: Option<std::collections::BTreeMap<String, usize>>,
}

impl Session<'_> {
    /// Sends `args` to both, fails on a difference, returns Redis's reply.
    fn send(&mut self, args: Vec<Vec<u8>>, kind: Kind, queued: &[Kind]) -> Vec<u8> {
        let req = encode_command(&args);
        self.h.send(&req);
        self.r.send(&req);
        let (a, b) = (self.h.read_reply(), self.r.read_reply());
        if let Some(stats) = &mut self.stats {
            let what = if b.starts_with(b"-") {
                String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned()
            } else {
                format!("{} {}", printable(&args[..1]), char::from(b[0]))
            };
            *stats.entry(what).or_insert(0) += 1;
        }
        self.history.push(args);
        let (mut a, mut b) = (a, b);
        let mut tries = 0;
        while !same(kind, queued, &a, &b, self.resp3) {
            if !matches!(kind, Kind::Secs) || b.starts_with(b"+QUEUED") || tries == 5 {
                fail(self.seed, self.resp3, &self.history, &a, &b);
            }
            tries += 1;
            let again = self.history.last().expect("a command").clone();
            (a, b) = (self.h.cmd(&again), self.r.cmd(&again));
            self.history.push(again);
        }
        b
    }

    /// Whether `key` is held as a listpack (with or without field TTLs), whose order is
    /// defined (insertion order; fields with a TTL first, by deadline): hashd must then
    /// reply in the same order. A hashtable's order is its seeded hash's, so those replies
    /// compare as multisets. Both servers must report the same encoding. Asked out of band
    /// (OBJECT does not touch the key), and shown in the sequence only on a difference.
    fn listpack(&mut self, key: &[u8]) -> bool {
        let ask = vec![b"OBJECT".to_vec(), b"ENCODING".to_vec(), key.to_vec()];
        let (a, b) = (self.h.cmd(&ask), self.r.cmd(&ask));
        if a != b {
            self.history.push(ask);
            fail(self.seed, self.resp3, &self.history, &a, &b);
        }
        b == b"$8\r\nlistpack\r\n" || b == b"$10\r\nlistpackex\r\n"
    }
}

fn run(seed: u64, resp3: bool, commands: usize, h: &mut Client, r: &mut Client) {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(seed.wrapping_mul(2).wrapping_add(u64::from(resp3))),
        in_multi: false,
        queued: Vec::new(),
    };
    let verbose = std::env::var("HASHD_DIFF_VERBOSE").is_ok_and(|v| v == "1");
    let mut s = Session {
        seed,
        resp3,
        h,
        r,
        history: Vec::new(),
        stats: verbose.then(Default::default),
    };
    s.send(vec![b"FLUSHALL".to_vec()], Kind::Exact, &[]);
    for _ in 0..commands {
        // HRANDFIELD's single-pick and negative-count forms are deterministic only on a
        // hash of at most one field: ask Redis (read-only, not part of the sequence).
        let key = g.key();
        let small = !g.in_multi && g.rng.u8(..) < 40 && {
            let n = s.r.cmd(&[&b"HLEN"[..], &key]);
            n == b":0\r\n" || n == b":1\r\n"
        };
        let (args, kind) = g.command(key, small);
        let kind = if !g.in_multi && whole_hash_in_order(&args, kind) && s.listpack(&args[1]) {
            if let Some(stats) = &mut s.stats {
                *stats
                    .entry("(a listpack, compared in order)".into())
                    .or_insert(0) += 1;
            }
            Kind::Exact
        } else {
            kind
        };
        let plain = |name: &str| args.len() == 1 && args[0].eq_ignore_ascii_case(name.as_bytes());
        let (is_multi, is_exec, is_discard) = (plain("MULTI"), plain("EXEC"), plain("DISCARD"));
        let exec_with_args = args.len() > 1 && args[0].eq_ignore_ascii_case(b"EXEC");
        let kind = if is_exec && g.in_multi {
            Kind::Exec
        } else {
            kind
        };
        let reply = s.send(args, kind, &g.queued);
        if g.in_multi {
            // EXEC with arguments fails and still ends the transaction (Redis's
            // rejectCommand aborts it); DISCARD with arguments does not.
            if is_exec || is_discard || exec_with_args {
                g.in_multi = false;
                g.queued.clear();
            } else if reply == b"+QUEUED\r\n" {
                g.queued.push(kind);
            }
        } else if is_multi && reply == b"+OK\r\n" {
            g.in_multi = true;
            g.queued.clear();
        }
    }
    if g.in_multi {
        s.send(vec![b"DISCARD".to_vec()], Kind::Exact, &[]);
    }
    for (what, n) in s.stats.iter().flatten() {
        eprintln!("{n:8} {what:?}");
    }
}

/// Whether `args` read a whole hash in its stored order: HKEYS, HVALS, HGETALL, and HSCAN
/// from cursor 0 (which returns a listpack whole).
fn whole_hash_in_order(args: &[Vec<u8>], kind: Kind) -> bool {
    let name = |n: &[u8]| args[0].eq_ignore_ascii_case(n);
    match kind {
        Kind::Items | Kind::Pairs => {
            args.len() == 2 && (name(b"HKEYS") || name(b"HVALS") || name(b"HGETALL"))
        }
        Kind::Scan(_) => args.len() >= 3 && name(b"HSCAN") && args[2] == b"0",
        _ => false,
    }
}

fn fail(seed: u64, resp3: bool, history: &[Vec<Vec<u8>>], hashd: &[u8], redis: &[u8]) -> ! {
    let proto = if resp3 {
        "RESP3 (after HELLO 3)"
    } else {
        "RESP2"
    };
    let mut seq = String::new();
    if resp3 {
        seq.push_str("   (HELLO 3, not compared)\n");
    }
    for (i, c) in history.iter().enumerate() {
        seq.push_str(&format!("{i:7} {}\n", printable(c)));
    }
    let file = std::env::temp_dir().join(format!(
        "hashd-differential-seed{seed}-{}.txt",
        if resp3 { 3 } else { 2 }
    ));
    let full = format!(
        "{seq}redis: \"{}\"\nhashd: \"{}\"\n",
        redis.escape_ascii(),
        hashd.escape_ascii()
    );
    let _ = std::fs::write(&file, full);
    let shown = if history.len() <= 20_000 {
        seq
    } else {
        format!("({} commands, see the file)\n", history.len())
    };
    panic!(
        "hashd and Redis 7.4.1 differ: seed {seed}, {proto}, command #{}\n\
         sequence so far (also in {}):\n{shown}\
         command: {}\n  redis: {}\n  hashd: {}",
        history.len() - 1,
        file.display(),
        printable(history.last().expect("a command")),
        show(redis),
        show(hashd),
    );
}

// ---------------------------------------------------------------------------------------
// The generator

const KEYS: &[&[u8]] = &[
    b"k",
    b"h",
    b"h2",
    b"\x00k",
    b"a\r\nb",
    b"\xff\xfe",
    b"",
    b"key with space",
];

const FIELDS: &[&[u8]] = &[
    b"f",
    b"g",
    b"",
    b"\x00",
    b"a\r\nb",
    b"\xff\x80",
    b"f1",
    b"f2",
    b"f3",
    b"12",
    b"-1",
    b"field:a-longer-name",
    b"*",
    b"[a]",
    b"?x",
    b"\\",
    b"]",
    b"a-b",
];

const VALUES: &[&str] = &[
    "v",
    "",
    "0",
    "1",
    "-1",
    "10",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-0",
    "1e308",
    "-1e308",
    "inf",
    "-inf",
    "nan",
    "  1",
    "1 ",
    "0x1",
    "1.5",
    "0.1",
    "3.0",
    "abc",
    "\0\r\n",
    "+1",
    "01",
    ".5",
    "5.",
    "1e-320",
    "2e+308",
    "17179869184",
    "1.7976931348623157e308",
];

const INCRS: &[&str] = &[
    "1",
    "-1",
    "0",
    "-0",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "  1",
    "1 ",
    "0x1",
    "1.5",
    "abc",
    "",
    "+5",
    "007",
];

const FLOATS: &[&str] = &[
    "1",
    "0x1p3",
    "0X1.8P1",
    "infinity",
    "INF",
    "-nan",
    "1e-4950",
    "1e4932",
    "1.18e4932",
    "1e+",
    "1.",
    "+.5e-3",
    "  ",
    "1_0",
    "5.0e3",
    "0.30000000000000004",
    "123456789012345678901234567890",
    "-9223372036854775809",
    "1.5",
    "-0",
    "0",
    "1e308",
    "-1e308",
    "inf",
    "-inf",
    "nan",
    "  1",
    "0x1",
    "1e-308",
    "0.1",
    "3.0e3",
    "abc",
    "",
    "5e-324",
    "1.7976931348623157e308",
    "9223372036854775807",
    "-1.5",
    "1e",
    ".5",
    "1e4000",
];

/// Relative seconds that are errors or delete at once, whatever the clock.
const BAD_SECS: &[&str] = &[
    "0",
    "-0",
    "+0",
    "00",
    "-1",
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "abc",
    "",
    "1.5",
    " 3600",
    "0x1",
    "100000000000",
    "70368744177",
];
/// Relative milliseconds, likewise.
const BAD_MS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "",
    "-1",
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "abc",
    "1.5",
    "70368744177664",
    "70368744177663",
];
/// Absolute seconds: past ones (delete at once), the largest field deadline's second and
/// past it, errors.
const BAD_AT_SECS: &[&str] = &[
    "0",
    "1",
    "1000000",
    "-1",
    "70368744177",
    "70368744178",
    "9223372036854775807",
    "abc",
    "9223372036854775808",
];
const BAD_AT_MS: &[&str] = &[
    "0",
    "1",
    "1000000000",
    "-1",
    "70368744177663",
    "70368744177664",
    "9223372036854775807",
    "abc",
];

struct Gen {
    rng: fastrand::Rng,
    in_multi: bool,
    queued: Vec<Kind>,
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

impl Gen {
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.rng.usize(..from.len())]
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.rng.u8(..100) < percent
    }

    fn key(&mut self) -> Vec<u8> {
        self.pick(KEYS).to_vec()
    }

    fn field(&mut self) -> Vec<u8> {
        if self.chance(3) {
            return format!("bulk{}", self.rng.u32(..140)).into_bytes();
        }
        if self.chance(1) {
            // Longer than hash-max-listpack-value.
            return format!("{:F<70}", self.rng.u8(..4)).into_bytes();
        }
        self.pick(FIELDS).to_vec()
    }

    fn value(&mut self) -> Vec<u8> {
        match self.rng.u8(..10) {
            0 => self.rng.i64(..).to_string().into_bytes(),
            1 => self.rng.i32(-1000..1000).to_string().into_bytes(),
            2 => format!("{}", self.rng.f64() * 1000.0 - 500.0).into_bytes(),
            3 if self.chance(20) => vec![b'x'; 70 + self.rng.usize(..20)],
            4 if self.chance(30) => self.binary(),
            _ => b(self.pick(VALUES)),
        }
    }

    fn incr(&mut self) -> Vec<u8> {
        if self.chance(60) {
            return self.rng.i64(-100..100).to_string().into_bytes();
        }
        b(self.pick(INCRS))
    }

    fn float(&mut self) -> Vec<u8> {
        match self.rng.u8(..10) {
            0..=2 => format!(
                "{}",
                (self.rng.f64() - 0.5) * 10f64.powi(self.rng.i32(-5..10))
            )
            .into_bytes(),
            3 => format!("{:e}", self.rng.f64() * 3.0).into_bytes(),
            4 => {
                // Up to 21 significant digits and any exponent a double or long double has.
                let digits: String = (0..1 + self.rng.usize(..21))
                    .map(|_| char::from(b'0' + self.rng.u8(..10)))
                    .collect();
                let sign = self.pick(&["", "-", "+"]);
                format!("{sign}{digits}e{}", self.rng.i32(-330..330)).into_bytes()
            }
            _ => b(self.pick(FLOATS)),
        }
    }

    fn fields(&mut self) -> Vec<Vec<u8>> {
        let most = if self.chance(5) { 20 } else { 3 };
        let n = 1 + self.rng.usize(..most);
        (0..n).map(|_| self.field()).collect()
    }

    /// A relative time in seconds (or ms) of at least an hour, spread wide enough that two
    /// of them never land within the few ms the servers see apart, or an edge case.
    fn rel_time(&mut self, ms: bool) -> Vec<u8> {
        if self.chance(12) {
            return b(self.pick(if ms { BAD_MS } else { BAD_SECS }));
        }
        if ms {
            self.rng
                .u64(3_600_000..1_000_000_000_000)
                .to_string()
                .into_bytes()
        } else {
            self.rng.u64(3_600..1_000_000_000).to_string().into_bytes()
        }
    }

    /// An absolute time past 2096 (and before the field TTL limit), or an edge case.
    fn abs_time(&mut self, ms: bool) -> Vec<u8> {
        if self.chance(12) {
            return b(self.pick(if ms { BAD_AT_MS } else { BAD_AT_SECS }));
        }
        let s = self.rng.u64(4_000_000_000..5_000_000_000);
        if ms {
            (s * 1000 + self.rng.u64(..1000)).to_string().into_bytes()
        } else {
            s.to_string().into_bytes()
        }
    }

    fn flag(&mut self) -> Option<Vec<u8>> {
        if self.chance(50) {
            return None;
        }
        Some(b(self.pick(&["NX", "XX", "GT", "LT", "nx", "gt", "XY"])))
    }

    /// `FIELDS numfields field...`, sometimes wrong.
    fn fields_part(&mut self, out: &mut Vec<Vec<u8>>) {
        let fields = self.fields();
        let n = fields.len();
        let keyword = if self.chance(3) {
            self.pick(&["FIELD", "fields", "NX"])
        } else {
            "FIELDS"
        };
        let count = if self.chance(8) {
            self.pick(&[
                (n + 1).to_string().as_str(),
                (n.saturating_sub(1)).to_string().as_str(),
                "0",
                "-1",
                "abc",
                "99999999999999999999",
                "9223372036854775807",
                "2147483648",
                "+1",
                " 1",
                "01",
                "1.0",
            ])
            .to_string()
        } else {
            n.to_string()
        };
        if self.chance(2) {
            // No FIELDS part at all.
            return;
        }
        out.push(b(keyword));
        out.push(b(&count));
        out.extend(fields);
        if self.chance(3) {
            // A flag or a field after the fields.
            let extra = if self.chance(50) {
                b("NX")
            } else {
                self.field()
            };
            out.push(extra);
        }
    }

    fn field_ttl_set(&mut self, key: Vec<u8>) -> Vec<Vec<u8>> {
        let (name, time) = match self.rng.u8(..4) {
            0 => ("HEXPIRE", self.rel_time(false)),
            1 => ("HPEXPIRE", self.rel_time(true)),
            2 => ("HEXPIREAT", self.abs_time(false)),
            _ => ("HPEXPIREAT", self.abs_time(true)),
        };
        let mut args = vec![b(name), key, time];
        if let Some(f) = self.flag() {
            args.push(f);
            if self.chance(15) {
                let second = self.flag().unwrap_or(b("XX"));
                args.push(second);
            }
        }
        self.fields_part(&mut args);
        args
    }

    fn field_ttl_get(&mut self, key: Vec<u8>) -> (Vec<Vec<u8>>, Kind) {
        let (name, kind) = self.pick(&[
            ("HTTL", Kind::Secs),
            ("HPTTL", Kind::Time(2000)),
            ("HEXPIRETIME", Kind::Time(1)),
            ("HPEXPIRETIME", Kind::Time(2000)),
            ("HPERSIST", Kind::Exact),
        ]);
        let mut args = vec![b(name), key];
        self.fields_part(&mut args);
        (args, kind)
    }

    fn hscan(&mut self, key: Vec<u8>) -> (Vec<Vec<u8>>, Kind) {
        // Only cursor 0 and invalid cursors: a nonzero cursor into a hashtable-encoded
        // hash (over 128 fields) names a position in that server's own table layout.
        let cursor = if self.chance(90) {
            "0"
        } else {
            self.pick(&["abc", "-1", "18446744073709551616", " 0", "0x0"])
        };
        let mut args = vec![b("HSCAN"), key, b(cursor)];
        let mut novalues = false;
        let mut count = false;
        for _ in 0..self.rng.usize(..3) {
            match self.rng.u8(..3) {
                0 => {
                    args.push(b("MATCH"));
                    args.push(self.pattern());
                }
                1 => {
                    novalues = true;
                    args.push(b("NOVALUES"));
                }
                _ => {
                    count = true;
                    args.push(b("COUNT"));
                    args.push(b(self.pick(&["1000", "1000", "0", "-1", "abc"])));
                }
            }
        }
        if !count {
            // A whole hash in one call: hashtable hashes (more than 128 fields) would
            // otherwise answer a part and a cursor, which is not comparable.
            args.push(b("COUNT"));
            args.push(b("1000"));
        }
        if self.chance(3) {
            args.push(b("BOGUS"));
        }
        (args, Kind::Scan(novalues))
    }

    fn pattern(&mut self) -> Vec<u8> {
        if self.chance(10) {
            return self.binary();
        }
        self.pick(&[
            &b"*"[..],
            b"f*",
            b"?",
            b"[a-f]*",
            b"\\*",
            b"",
            b"*\x01*",
            b"bulk1*",
            b"[^f]*",
            b"*2",
            b"[",
            b"[]",
            b"[a-",
            b"[z-a]*",
            b"\\",
            b"a\\",
            b"*\\",
            b"[\\]]",
            b"[!f]*",
            b"[^]",
            b"??",
            b"f?",
            b"*[0-9]",
            b"**",
            b"*\x00*",
            b"[\x00-\x7f]*",
            b"[\xff]*",
            b"b*k*1*",
            b"*]",
            b"[]]",
            b"[a-]",
            b"[-a]",
            b"\\[a]",
            b"*[",
            b"?\\x",
            b"[\\",
            b"a-b",
        ])
        .to_vec()
    }

    fn hrandfield(&mut self, key: Vec<u8>, small: bool) -> (Vec<Vec<u8>>, Kind) {
        let mut args = vec![b("HRANDFIELD"), key];
        if small && self.chance(30) {
            return (args, Kind::Exact);
        }
        let count = if small && self.chance(40) {
            self.rng.i64(-5..=-1).to_string()
        } else {
            self.pick(&[
                "1000",
                "1000",
                "99999",
                "0",
                "abc",
                "-0",
                "+1000",
                " 1000",
                "1000 ",
                "9223372036854775807",
                "-9223372036854775808",
                "4611686018427387904",
            ])
            .to_string()
        };
        args.push(b(&count));
        let with = self.chance(50);
        if with {
            args.push(b(self.pick(&[
                "WITHVALUES",
                "withvalues",
                "WITHVALUES",
                "NOVALUES",
            ])));
        }
        (args, if with { Kind::Pairs } else { Kind::Items })
    }

    fn key_expire(&mut self, key: Vec<u8>) -> Vec<Vec<u8>> {
        let ms = self.chance(50);
        let mut args = vec![
            b(if ms { "PEXPIRE" } else { "EXPIRE" }),
            key,
            self.rel_time(ms),
        ];
        if let Some(f) = self.flag() {
            args.push(f);
            if self.chance(10) {
                let second = self.flag().unwrap_or(b("GT"));
                args.push(second);
            }
        }
        args
    }

    fn wrong_arity(&mut self) -> Vec<Vec<u8>> {
        let k = self.key();
        let f = self.field();
        let v: &[&[Vec<u8>]] = &[
            &[b("HGET"), k.clone()],
            &[b("HSET"), k.clone(), f.clone()],
            &[b("HSET"), k.clone(), f.clone(), b("v"), f.clone()],
            &[b("HSETNX"), k.clone(), f.clone()],
            &[b("HMGET"), k.clone()],
            &[b("HDEL"), k.clone()],
            &[b("HLEN")],
            &[b("HLEN"), k.clone(), k.clone()],
            &[b("HEXISTS"), k.clone()],
            &[b("HSTRLEN"), k.clone()],
            &[b("HINCRBY"), k.clone(), f.clone()],
            &[b("HINCRBYFLOAT"), k.clone(), f.clone(), b("1"), b("2")],
            &[b("HKEYS")],
            &[b("HVALS"), k.clone(), k.clone()],
            &[b("HGETALL")],
            &[b("HRANDFIELD")],
            &[b("HSCAN"), k.clone()],
            &[b("HEXPIRE"), k.clone(), b("3600")],
            &[b("HPEXPIREAT"), k.clone(), b("3600"), b("FIELDS")],
            &[b("HTTL"), k.clone(), b("FIELDS")],
            &[b("HPERSIST"), k.clone()],
            &[b("HEXPIRETIME"), k.clone(), b("FIELDS"), b("1")],
            &[b("DEL")],
            &[b("EXISTS")],
            &[b("TYPE")],
            &[b("RENAME"), k.clone()],
            &[b("RENAMENX"), k.clone(), k.clone(), k.clone()],
            &[b("EXPIRE"), k.clone()],
            &[b("PEXPIRE")],
            &[b("TTL")],
            &[b("PERSIST"), k.clone(), k.clone()],
            &[b("DBSIZE"), b("x")],
            &[b("SELECT")],
            &[b("SELECT"), b("1"), b("2")],
            &[b("MULTI"), b("x")],
            &[b("EXEC"), b("x")],
            &[b("DISCARD"), b("x")],
            &[b("hGeT"), k.clone()],
        ];
        self.pick(v).to_vec()
    }

    fn unknown(&mut self) -> Vec<Vec<u8>> {
        let name = if self.chance(5) {
            // Long names are cut in the error message.
            vec![b'Z'; 100 + self.rng.usize(..200)]
        } else {
            b(self.pick(&[
                "NOSUCHCMD",
                "nosuchcmd",
                "HFOO",
                "HGETX",
                "",
                "X\r\nY",
                "\r\nQ\r\n",
                "h\x00get",
            ]))
        };
        let mut args = vec![name];
        let n = if self.chance(10) { 20 } else { 3 };
        for _ in 0..self.rng.usize(..n) {
            let a = match self.rng.u8(..4) {
                0 => self.key(),
                1 => self.value(),
                2 => self.binary(),
                _ => vec![b'a'; self.rng.usize(..200)],
            };
            args.push(a);
        }
        args
    }

    /// Random bytes, mostly the awkward ones.
    fn binary(&mut self) -> Vec<u8> {
        let n = self.rng.usize(..8);
        (0..n)
            .map(|_| {
                self.pick(&[
                    0u8, b'\r', b'\n', b' ', b'\'', b'"', 0xff, 0x80, b'a', b'*', b'$',
                ])
            })
            .collect()
    }

    /// One command and how its reply is compared; now and then with its name in mixed case.
    fn command(&mut self, key: Vec<u8>, small: bool) -> (Vec<Vec<u8>>, Kind) {
        let (mut args, kind) = self.command_upper(key, small);
        if self.chance(10) {
            for c in args[0].iter_mut() {
                if self.chance(50) {
                    *c = c.to_ascii_lowercase();
                }
            }
        }
        (args, kind)
    }

    fn command_upper(&mut self, key: Vec<u8>, small: bool) -> (Vec<Vec<u8>>, Kind) {
        use Kind::*;
        // Transactions: open now and then, close after a few commands.
        if self.in_multi && (self.chance(12) || self.queued.len() > 8) {
            let which = self.pick(&["EXEC", "EXEC", "EXEC", "DISCARD", "MULTI"]);
            return (vec![b(which)], Exact);
        }
        let roll = self.rng.u16(..1000);
        let (args, kind) = match roll {
            0..=119 => {
                let mut args = vec![b(if self.chance(10) { "HMSET" } else { "HSET" }), key];
                if self.chance(2) {
                    for i in 0..self.rng.usize(120..150) {
                        args.push(format!("bulk{i}").into_bytes());
                        args.push(self.value());
                    }
                } else {
                    for _ in 0..1 + self.rng.usize(..3) {
                        args.push(self.field());
                        args.push(self.value());
                    }
                }
                (args, Exact)
            }
            120..=169 => (vec![b("HGET"), key, self.field()], Exact),
            170..=199 => {
                let mut args = vec![b("HMGET"), key];
                args.extend(self.fields());
                (args, Exact)
            }
            200..=239 => {
                let mut args = vec![b("HDEL"), key];
                args.extend(self.fields());
                (args, Exact)
            }
            240..=259 => (vec![b("HLEN"), key], Exact),
            260..=279 => (vec![b("HEXISTS"), key, self.field()], Exact),
            280..=299 => (vec![b("HSTRLEN"), key, self.field()], Exact),
            300..=339 => (vec![b("HINCRBY"), key, self.field(), self.incr()], Exact),
            340..=379 => (
                vec![b("HINCRBYFLOAT"), key, self.field(), self.float()],
                Exact,
            ),
            380..=394 => (vec![b("HKEYS"), key], Items),
            395..=409 => (vec![b("HVALS"), key], Items),
            410..=429 => (vec![b("HGETALL"), key], Pairs),
            430..=449 => (vec![b("HSETNX"), key, self.field(), self.value()], Exact),
            450..=469 => self.hrandfield(key, small),
            470..=484 => self.hscan(key),
            485..=589 => (self.field_ttl_set(key), Exact),
            590..=679 => self.field_ttl_get(key),
            680..=699 => {
                let name = self.pick(&["DEL", "EXISTS", "EXISTS", "DEL", "UNLINK", "TOUCH"]);
                let mut args = vec![b(name), key];
                for _ in 0..self.rng.usize(..3) {
                    args.push(self.key());
                }
                (args, Exact)
            }
            700..=714 => (vec![b("TYPE"), key], Exact),
            715..=734 => {
                let name = if self.chance(50) {
                    "RENAME"
                } else {
                    "RENAMENX"
                };
                (vec![b(name), key, self.key()], Exact)
            }
            735..=754 => (self.key_expire(key), Exact),
            755..=764 => {
                let ms = self.chance(50);
                let name = if ms { "PEXPIREAT" } else { "EXPIREAT" };
                let mut args = vec![b(name), key, self.abs_time(ms)];
                if let Some(f) = self.flag() {
                    args.push(f);
                }
                (args, Exact)
            }
            765..=779 => {
                let (name, kind) = self.pick(&[
                    ("TTL", Secs),
                    ("PTTL", Time(2000)),
                    ("EXPIRETIME", Time(1)),
                    ("PEXPIRETIME", Time(2000)),
                ]);
                (vec![b(name), key], kind)
            }
            780..=794 => (vec![b("PERSIST"), key], Exact),
            795..=809 => (vec![b("DBSIZE")], Exact),
            810..=834 => {
                let db = if self.chance(90) {
                    self.rng.u8(..4).to_string()
                } else {
                    self.pick(&[
                        "16",
                        "-1",
                        "abc",
                        "99999999999999999999",
                        " 1",
                        "+1",
                        "01",
                        "1.0",
                        "",
                        "2147483648",
                    ])
                    .to_string()
                };
                (vec![b("SELECT"), b(&db)], Exact)
            }
            835..=837 => {
                let mut args = vec![b("FLUSHDB")];
                if self.chance(40) {
                    args.push(b(self.pick(&["ASYNC", "SYNC", "sync", "LAZY"])));
                }
                (args, Exact)
            }
            838..=839 => {
                let mut db = || {
                    if self.chance(90) {
                        self.rng.u8(..4).to_string()
                    } else {
                        self.pick(&["16", "-1", "abc", ""]).to_string()
                    }
                };
                let (x, y) = (db(), db());
                (vec![b("SWAPDB"), b(&x), b(&y)], Exact)
            }
            840..=869 => {
                let which = if self.in_multi {
                    "MULTI"
                } else {
                    self.pick(&["MULTI", "MULTI", "MULTI", "MULTI", "EXEC", "DISCARD"])
                };
                (vec![b(which)], Exact)
            }
            870..=934 => (self.wrong_arity(), Exact),
            _ => (self.unknown(), Exact),
        };
        (args, kind)
    }
}
