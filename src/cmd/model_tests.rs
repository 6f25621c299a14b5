//! A seeded random-operations test of the whole command layer against a simple model.
//!
//! Each run drives a [`TestEnv`] (manual clock, RESP2) with a few hundred random commands
//! over a handful of keys and fields (some binary, one empty), and checks every reply
//! against what an in-test model says it must be:
//!
//! - hash commands: HSET, HSETNX, HDEL, HGET, HMGET, HGETALL / HKEYS / HVALS (compared as
//!   multisets, their order is unspecified), HLEN, HEXISTS, HSTRLEN, HINCRBY,
//!   HINCRBYFLOAT (on values whose sum is exact), HGETDEL, HGETEX, HSETEX;
//! - field TTLs: HEXPIRE / HPEXPIRE / HEXPIREAT / HPEXPIREAT with NX/XX/GT/LT and past
//!   times, HPERSIST, HTTL / HPTTL / HEXPIRETIME / HPEXPIRETIME;
//! - keys: DEL, EXISTS, TYPE, RENAME, RENAMENX, EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT
//!   (with their conditions), PERSIST, TTL / PTTL / EXPIRETIME / PEXPIRETIME, KEYS, a full
//!   SCAN, RANDOMKEY, OBJECT ENCODING (compact or table, which never converts back);
//! - time: TTLs of 0 ms (deletes at once), 1–50 ms or 100–3000 ms, and the clock moving
//!   0–30 ms between commands or jumping to a deadline or 1 ms past it, so `deadline ==
//!   now` (still live) and `deadline < now` (gone) are both met.
//!
//! The model is the state clients can observe (README, "Differences from Redis"): a field
//! is gone once `deadline < now`, a key once its deadline `< now`, and a hash without a
//! live field does not exist for any command. Writes reclaim expired fields first, so a
//! model that drops everything expired before each command answers exactly as hashd must.
//! Replies are compared byte for byte (RESP2), and `Keyspace::check_invariants` must hold
//! after every step. Every seed runs twice: with the default encoding limits (compact
//! hashes, tables only for values over 64 bytes) and with `hash-max-listpack-entries 4`
//! (mostly tables).
//!
//! A mismatch panics with the seed, the step, the command and the last commands run.
//! `HASHD_MODEL_SEED=<n>` runs that one seed instead of the built-in ones, and
//! `HASHD_MODEL_STEPS=<n>` changes the number of steps per run.

use super::testing::{TestEnv, T0_MS as T0};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

type Bytes = Vec<u8>;

const SEEDS: u64 = 20;
const STEPS: usize = 300;
const HISTORY: usize = 12;

const KEYS: &[&[u8]] = &[b"k1", b"k2", b"k3", b"k\x00\xfe", b"{user}:5"];
const FIELDS: &[&[u8]] = &[b"a", b"b", b"c", b"d", b"f\x00\xff", b""];
/// Values: integers (HINCRBY), non-numbers, CR LF inside, a near-overflow integer.
const VALUES: &[&[u8]] = &[
    b"v",
    b"",
    b"0",
    b"12",
    b"-7",
    b"abc",
    b"x\r\ny",
    b"9223372036854775800",
    b"2.5",
];
/// Longer than `hash-max-listpack-value` (64): writing it makes the hash a table.
const LONG_VALUE: &[u8] = &[b'L'; 70];
/// The weight of each operation of `Run::gen`, by its match arm (the last is "time
/// passes"): writes that build state and the TTL commands come most often.
#[rustfmt::skip]
const OP_WEIGHTS: [u32; 39] = [
    // HSET×2 HSETNX HDEL HGET HMGET HGETALL HKEYS/HVALS HLEN HEXISTS/HSTRLEN
    4, 4, 2, 2, 2, 1, 2, 1, 2, 2,
    // HINCRBY×2 HINCRBYFLOAT HEXPIRE×3 HTTL×2 HPERSIST HGETDEL
    2, 1, 2, 2, 2, 2, 2, 2, 2, 1,
    // HGETEX×2 HSETEX×2 DEL EXISTS TYPE RENAME EXPIRE×2
    2, 2, 2, 2, 1, 1, 1, 2, 3, 3,
    // TTL PERSIST KEYS SCAN RANDOMKEY OBJECT-ENCODING to-a-deadline×2 time-passes
    4, 2, 1, 1, 1, 2, 1, 1, 5,
];
const DEFAULT_MAX_COMPACT: usize = 512;
const MAX_COMPACT_VALUE: usize = 64;

/// One hash as clients see it: live fields only.
#[derive(Clone, Debug, Default)]
struct Hash {
    /// field -> (value, deadline in unix ms)
    fields: BTreeMap<Bytes, (Bytes, Option<u64>)>,
    /// The key's own TTL.
    deadline: Option<u64>,
    /// Whether the hash is table-encoded (compact hashes convert once, never back).
    table: bool,
}

impl Hash {
    /// Writes a field; returns true if it is new. Tracks the encoding as hashd converts.
    fn store(&mut self, limit: usize, field: &[u8], value: &[u8], ttl: Option<u64>) -> bool {
        let new = self
            .fields
            .insert(field.to_vec(), (value.to_vec(), ttl))
            .is_none();
        if field.len() > MAX_COMPACT_VALUE
            || value.len() > MAX_COMPACT_VALUE
            || self.fields.len() > limit
        {
            self.table = true;
        }
        new
    }
}

/// A RESP2 value: what the model expects, and what a reply parses to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Resp {
    Int(i64),
    Bulk(Option<Bytes>),
    Arr(Vec<Resp>),
    Simple(String),
    Err(String),
}

fn int(n: i64) -> Resp {
    Resp::Int(n)
}

fn bulk(b: &[u8]) -> Resp {
    Resp::Bulk(Some(b.to_vec()))
}

fn null() -> Resp {
    Resp::Bulk(None)
}

fn ints(v: impl IntoIterator<Item = i64>) -> Resp {
    Resp::Arr(v.into_iter().map(Resp::Int).collect())
}

fn err(s: &str) -> Resp {
    Resp::Err(s.to_string())
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn encode(v: &Resp, out: &mut Vec<u8>) {
    match v {
        Resp::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Resp::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        Resp::Bulk(Some(b)) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Resp::Arr(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            items.iter().for_each(|i| encode(i, out));
        }
        Resp::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        Resp::Err(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
    }
}

/// Parses one RESP2 value at the front of `buf`; returns it and the rest.
fn parse(buf: &[u8]) -> Option<(Resp, &[u8])> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let (head, rest) = (&buf[..end], &buf[end + 2..]);
    let (&kind, body) = head.split_first()?;
    let text = std::str::from_utf8(body).ok()?;
    match kind {
        b':' => Some((Resp::Int(text.parse().ok()?), rest)),
        b'+' => Some((Resp::Simple(text.into()), rest)),
        b'-' => Some((Resp::Err(text.into()), rest)),
        b'$' => {
            let n: i64 = text.parse().ok()?;
            if n < 0 {
                return Some((Resp::Bulk(None), rest));
            }
            let n = n as usize;
            if rest.len() < n + 2 || &rest[n..n + 2] != b"\r\n" {
                return None;
            }
            Some((Resp::Bulk(Some(rest[..n].to_vec())), &rest[n + 2..]))
        }
        b'*' => {
            let n: usize = text.parse().ok()?;
            let mut rest = rest;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let (item, r) = parse(rest)?;
                items.push(item);
                rest = r;
            }
            Some((Resp::Arr(items), rest))
        }
        _ => None,
    }
}

/// The whole reply as one value, or None if it is not exactly one well-formed value.
fn parse_all(buf: &[u8]) -> Option<Resp> {
    match parse(buf)? {
        (v, []) => Some(v),
        _ => None,
    }
}

/// The bulks of a flat array reply, or None if it is something else.
fn bulks_of(v: &Resp) -> Option<Vec<Bytes>> {
    let Resp::Arr(items) = v else { return None };
    items
        .iter()
        .map(|i| match i {
            Resp::Bulk(Some(b)) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// How a reply is checked.
enum Check {
    /// Byte-exact.
    Exact(Resp),
    /// An array of bulks, in any order.
    Multiset(Vec<Bytes>),
    /// A flat field/value array (HGETALL), pairs in any order.
    Pairs(Vec<(Bytes, Bytes)>),
    /// RANDOMKEY: null if there are no keys, else one of them.
    NullOrOneOf(Vec<Bytes>),
    /// OBJECT ENCODING: null for a missing key, else table or one of the compact names.
    Encoding(Option<bool>),
}

/// Redis's strict `string2ll`: no sign but `-`, no leading zeros, no `-0`, fits in i64.
fn strict_i64(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == b.len(),
        [first, ..] => (b'1'..=b'9').contains(first),
    };
    if !canonical || b.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// What HINCRBYFLOAT would do with a stored value, if the model can say exactly:
/// `Some(Ok(x))` for a number whose sums with the test's increments are exact (and print
/// as Rust prints them), `Some(Err(()))` for a value that is not a float at all, None
/// for anything else (the operation is then skipped).
fn float_value(v: &[u8]) -> Option<Result<f64, ()>> {
    if v.is_empty() || v == b"abc" || v == b"x\r\ny" || v == b"v" || v == LONG_VALUE {
        return Some(Err(()));
    }
    let x: f64 = std::str::from_utf8(v).ok()?.parse().ok()?;
    (x.abs() < 1e9 && (x * 4.0).fract() == 0.0).then_some(Ok(x))
}

/// HINCRBYFLOAT's printing of an exact quarter: `%.17Lf` with zeros trimmed, no `-0`.
fn print_float(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x}")
    }
}

fn show(args: &[Bytes]) -> String {
    args.iter()
        .map(|a| format!("\"{}\"", a.escape_ascii()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The model, readably: `key [ttl=deadline] {field=value@deadline ...}`, times relative to
/// the test's start.
fn show_model(model: &BTreeMap<Bytes, Hash>) -> String {
    let t = |d: Option<u64>| d.map_or(String::new(), |d| format!("@{}", d as i64 - T0 as i64));
    model
        .iter()
        .map(|(k, h)| {
            let fields: Vec<String> = h
                .fields
                .iter()
                .map(|(f, (v, d))| format!("{}={}{}", f.escape_ascii(), v.escape_ascii(), t(*d)))
                .collect();
            format!(
                "\n  {}{}{} {{{}}}",
                k.escape_ascii(),
                t(h.deadline),
                if h.table { " table" } else { "" },
                fields.join(" ")
            )
        })
        .collect()
}

/// A field TTL condition of the HEXPIRE family.
#[derive(Clone, Copy)]
enum FieldCond {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

impl FieldCond {
    fn allows(self, cur: Option<u64>, t: u64) -> bool {
        match (self, cur) {
            (FieldCond::Always, _) => true,
            (FieldCond::Nx, cur) => cur.is_none(),
            (FieldCond::Xx, cur) => cur.is_some(),
            (FieldCond::Gt, None) => false,
            (FieldCond::Gt, Some(c)) => t > c,
            (FieldCond::Lt, None) => true,
            (FieldCond::Lt, Some(c)) => t < c,
        }
    }

    fn word(self) -> Option<&'static [u8]> {
        match self {
            FieldCond::Always => None,
            FieldCond::Nx => Some(b"NX"),
            FieldCond::Xx => Some(b"XX"),
            FieldCond::Gt => Some(b"GT"),
            FieldCond::Lt => Some(b"LT"),
        }
    }
}

/// HSETEX's TTL option.
#[derive(Clone, Copy)]
enum SetTtl {
    Clear,
    Keep,
    At(u64),
}

struct Run {
    seed: u64,
    /// hash-max-listpack-entries for this run.
    limit: usize,
    env: TestEnv,
    model: BTreeMap<Bytes, Hash>,
    rng: fastrand::Rng,
    history: VecDeque<String>,
    step: usize,
    /// OBJECT ENCODING answers seen: (compact, table).
    encodings: (usize, usize),
}

impl Run {
    fn new(seed: u64, limit: usize) -> Self {
        let mut env = TestEnv::new();
        let set = env.run(&format!("CONFIG SET hash-max-listpack-entries {limit}"));
        assert_eq!(set, "+OK\r\n");
        Run {
            seed,
            limit,
            env,
            model: BTreeMap::new(),
            rng: fastrand::Rng::with_seed(seed),
            history: VecDeque::new(),
            step: 0,
            encodings: (0, 0),
        }
    }

    fn fail(&self, cmd: &str, expected: &str, got: &str) -> ! {
        let history: Vec<&str> = self.history.iter().map(String::as_str).collect();
        panic!(
            "model mismatch: seed {} (hash-max-listpack-entries {}), step {} \
             (rerun: HASHD_MODEL_SEED={0})\n\
             command:  {cmd}\nexpected: {expected}\ngot:      {got}\n\
             model after the command: {}\nlast commands (oldest first, t = ms since start):\n  {}",
            self.seed,
            self.limit,
            self.step,
            show_model(&self.model),
            history.join("\n  ")
        );
    }

    /// Runs a command, recording it in the history; returns the raw reply.
    fn exec(&mut self, args: &[Bytes]) -> Vec<u8> {
        let reply = self.env.run_args(args);
        let t = self.env.now_ms() - T0;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history
            .push_back(format!("t={t} {} -> {}", show(args), reply.escape_ascii()));
        reply
    }

    /// Drops what has expired by `now`, and hashes left without fields.
    fn settle(&mut self, now: u64) {
        self.model.retain(|_, h| {
            if h.deadline.is_some_and(|d| d < now) {
                return false;
            }
            h.fields.retain(|_, (_, d)| !d.is_some_and(|d| d < now));
            !h.fields.is_empty()
        });
    }

    fn key(&mut self) -> Bytes {
        KEYS[self.rng.usize(..KEYS.len())].to_vec()
    }

    /// A field name for an operation on `key`; a third of the time one of its fields with
    /// a TTL, if it has any (they are rare otherwise, and the interesting ones).
    fn field(&mut self, key: &[u8]) -> Bytes {
        if self.rng.usize(..3) == 0 {
            let volatile: Vec<&Bytes> = self.model.get(key).map_or_else(Vec::new, |h| {
                h.fields
                    .iter()
                    .filter(|(_, (_, d))| d.is_some())
                    .map(|(f, _)| f)
                    .collect()
            });
            if !volatile.is_empty() {
                return volatile[self.rng.usize(..volatile.len())].clone();
            }
        }
        FIELDS[self.rng.usize(..FIELDS.len())].to_vec()
    }

    /// 1–3 fields, repeats allowed.
    fn fields(&mut self, key: &[u8]) -> Vec<Bytes> {
        let n = self.rng.usize(1..=3);
        (0..n).map(|_| self.field(key)).collect()
    }

    fn value(&mut self) -> Bytes {
        if self.rng.usize(..12) == 0 {
            LONG_VALUE.to_vec()
        } else {
            VALUES[self.rng.usize(..VALUES.len())].to_vec()
        }
    }

    /// A relative TTL in ms: 0 (deletes at once), short (1–50, expires within a few steps)
    /// or long (100–3000, outlives many).
    fn ttl_ms(&mut self) -> u64 {
        match self.rng.usize(..6) {
            0 => 0,
            1..=3 => self.rng.u64(1..=50),
            _ => self.rng.u64(100..=3000),
        }
    }

    fn field_cond(&mut self) -> FieldCond {
        match self.rng.usize(..8) {
            0 => FieldCond::Nx,
            1 => FieldCond::Xx,
            2 => FieldCond::Gt,
            3 => FieldCond::Lt,
            _ => FieldCond::Always,
        }
    }

    fn live_field(&self, key: &[u8], field: &[u8]) -> Option<&(Bytes, Option<u64>)> {
        self.model.get(key).and_then(|h| h.fields.get(field))
    }

    /// `FIELDS n f...` appended to `args`.
    fn push_fields(args: &mut Vec<Bytes>, fields: &[Bytes]) {
        args.push(b"FIELDS".to_vec());
        args.push(fields.len().to_string().into_bytes());
        args.extend(fields.iter().cloned());
    }

    fn run(mut self, steps: usize) -> Self {
        for step in 0..steps {
            self.step = step;
            let now = self.env.now_ms();
            self.settle(now);
            self.one_op(now);
            self.settle(now);
            if let Err(e) = self.env.server.keyspace.check_invariants() {
                self.fail("(after the last command)", "keyspace invariants hold", &e);
            }
        }
        self
    }

    fn one_op(&mut self, now: u64) {
        let Some((args, check)) = self.gen(now) else {
            return;
        };
        let reply = self.exec(&args);
        self.check(&args, &reply, check);
    }

    fn check(&self, args: &[Bytes], reply: &[u8], check: Check) {
        let cmd = show(args);
        let got = reply.escape_ascii().to_string();
        let parsed = parse_all(reply);
        match check {
            Check::Exact(exp) => {
                let mut want = Vec::new();
                encode(&exp, &mut want);
                if want != reply {
                    self.fail(&cmd, &want.escape_ascii().to_string(), &got);
                }
            }
            Check::Multiset(mut want) => {
                want.sort();
                let mut have = parsed.as_ref().and_then(bulks_of);
                if let Some(h) = have.as_mut() {
                    h.sort();
                }
                if have.as_ref() != Some(&want) {
                    self.fail(&cmd, &format!("any order of {want:?}"), &got);
                }
            }
            Check::Pairs(mut want) => {
                want.sort();
                let have = parsed.as_ref().and_then(bulks_of).and_then(|b| {
                    if b.len() % 2 != 0 {
                        return None;
                    }
                    let mut pairs: Vec<(Bytes, Bytes)> =
                        b.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
                    pairs.sort();
                    Some(pairs)
                });
                if have.as_ref() != Some(&want) {
                    self.fail(&cmd, &format!("any order of {want:?}"), &got);
                }
            }
            Check::NullOrOneOf(keys) => {
                let fine = match &parsed {
                    Some(Resp::Bulk(None)) => keys.is_empty(),
                    Some(Resp::Bulk(Some(k))) => keys.contains(k),
                    _ => false,
                };
                if !fine {
                    self.fail(&cmd, &format!("null iff none, else one of {keys:?}"), &got);
                }
            }
            Check::Encoding(want) => {
                let fine = match (&parsed, want) {
                    (Some(Resp::Bulk(None)), None) => true,
                    (Some(Resp::Bulk(Some(e))), Some(true)) => e == b"hashtable",
                    (Some(Resp::Bulk(Some(e))), Some(false)) => {
                        e == b"listpack" || e == b"listpackex"
                    }
                    _ => false,
                };
                if !fine {
                    let want = match want {
                        None => "null",
                        Some(true) => "hashtable",
                        Some(false) => "listpack or listpackex",
                    };
                    self.fail(&cmd, want, &got);
                }
            }
        }
    }

    /// Picks an operation, applies it to the model and returns the command and how to check
    /// its reply. None when the step only moved the clock (or ran its own checks).
    fn gen(&mut self, now: u64) -> Option<(Vec<Bytes>, Check)> {
        let limit = self.limit;
        let key = self.key();
        let op = {
            let total: u32 = OP_WEIGHTS.iter().sum();
            let mut r = self.rng.u32(..total);
            OP_WEIGHTS
                .iter()
                .position(|&w| {
                    let hit = r < w;
                    r = r.saturating_sub(w);
                    hit
                })
                .expect("r < total")
        };
        let mut args: Vec<Bytes>;
        let check = match op {
            // HSET (twice the weight: it fills the hashes).
            0 | 1 => {
                let pairs: Vec<(Bytes, Bytes)> = (0..self.rng.usize(1..=3))
                    .map(|_| (self.field(&key), self.value()))
                    .collect();
                args = vec![b"HSET".to_vec(), key.clone()];
                let h = self.model.entry(key).or_default();
                let mut created = 0;
                for (f, v) in pairs {
                    created += i64::from(h.store(limit, &f, &v, None));
                    args.push(f);
                    args.push(v);
                }
                Check::Exact(int(created))
            }
            2 => {
                let (f, v) = (self.field(&key), self.value());
                args = vec![b"HSETNX".to_vec(), key.clone(), f.clone(), v.clone()];
                let h = self.model.entry(key).or_default();
                if h.fields.contains_key(&f) {
                    Check::Exact(int(0))
                } else {
                    h.store(limit, &f, &v, None);
                    Check::Exact(int(1))
                }
            }
            3 => {
                let fields = self.fields(&key);
                args = vec![b"HDEL".to_vec(), key.clone()];
                args.extend(fields.iter().cloned());
                let removed = match self.model.get_mut(&key) {
                    Some(h) => fields
                        .iter()
                        .filter(|f| h.fields.remove(*f).is_some())
                        .count(),
                    None => 0,
                };
                Check::Exact(int(removed as i64))
            }
            4 => {
                let f = self.field(&key);
                let exp = match self.live_field(&key, &f) {
                    Some((v, _)) => bulk(v),
                    None => null(),
                };
                args = vec![b"HGET".to_vec(), key, f];
                Check::Exact(exp)
            }
            5 => {
                let fields = self.fields(&key);
                let exp = fields
                    .iter()
                    .map(|f| match self.live_field(&key, f) {
                        Some((v, _)) => bulk(v),
                        None => null(),
                    })
                    .collect();
                args = vec![b"HMGET".to_vec(), key];
                args.extend(fields);
                Check::Exact(Resp::Arr(exp))
            }
            6 => {
                let h = self.model.get(&key);
                let pairs = h.map_or_else(Vec::new, |h| {
                    h.fields
                        .iter()
                        .map(|(f, (v, _))| (f.clone(), v.clone()))
                        .collect()
                });
                args = vec![b"HGETALL".to_vec(), key];
                Check::Pairs(pairs)
            }
            7 => {
                let keys = self.rng.bool();
                let h = self.model.get(&key);
                let items: Vec<Bytes> = match h {
                    None => Vec::new(),
                    Some(h) if keys => h.fields.keys().cloned().collect(),
                    Some(h) => h.fields.values().map(|(v, _)| v.clone()).collect(),
                };
                let name: &[u8] = if keys { b"HKEYS" } else { b"HVALS" };
                args = vec![name.to_vec(), key];
                Check::Multiset(items)
            }
            8 => {
                let n = self.model.get(&key).map_or(0, |h| h.fields.len());
                args = vec![b"HLEN".to_vec(), key];
                Check::Exact(int(n as i64))
            }
            9 => {
                let f = self.field(&key);
                let live = self.live_field(&key, &f).map(|(v, _)| v.len());
                let exp = if self.rng.bool() {
                    args = vec![b"HEXISTS".to_vec(), key, f];
                    i64::from(live.is_some())
                } else {
                    args = vec![b"HSTRLEN".to_vec(), key, f];
                    live.unwrap_or(0) as i64
                };
                Check::Exact(int(exp))
            }
            10 | 11 => {
                let f = self.field(&key);
                let incr: i64 = match self.rng.usize(..10) {
                    0 => i64::MAX,
                    1 => i64::MIN + 1,
                    _ => self.rng.i64(-20..=20),
                };
                args = vec![
                    b"HINCRBY".to_vec(),
                    key.clone(),
                    f.clone(),
                    incr.to_string().into_bytes(),
                ];
                let current = self.live_field(&key, &f).cloned();
                let exp = match current {
                    None => {
                        let h = self.model.entry(key).or_default();
                        h.store(limit, &f, incr.to_string().as_bytes(), None);
                        int(incr)
                    }
                    Some((v, ttl)) => match strict_i64(&v).map(|c| c.checked_add(incr)) {
                        None => err("ERR hash value is not an integer"),
                        Some(None) => err("ERR increment or decrement would overflow"),
                        Some(Some(n)) => {
                            let h = self.model.get_mut(&key).expect("live key");
                            h.store(limit, &f, n.to_string().as_bytes(), ttl);
                            int(n)
                        }
                    },
                };
                Check::Exact(exp)
            }
            12 => {
                let f = self.field(&key);
                let (text, incr) = [("1.5", 1.5), ("-0.25", -0.25), ("2", 2.0), ("-3.5", -3.5)]
                    [self.rng.usize(..4)];
                let current = self.live_field(&key, &f).cloned();
                let exp = match current {
                    None => {
                        let out = print_float(incr);
                        let h = self.model.entry(key.clone()).or_default();
                        h.store(limit, &f, out.as_bytes(), None);
                        bulk(out.as_bytes())
                    }
                    Some((v, ttl)) => match float_value(&v) {
                        // Not exactly modelled: a plain read instead.
                        None => return self.gen_hget(key, f),
                        Some(Err(())) => err("ERR hash value is not a float"),
                        Some(Ok(x)) => {
                            let out = print_float(x + incr);
                            let h = self.model.get_mut(&key).expect("live key");
                            h.store(limit, &f, out.as_bytes(), ttl);
                            bulk(out.as_bytes())
                        }
                    },
                };
                args = vec![b"HINCRBYFLOAT".to_vec(), key, f, text.into()];
                Check::Exact(exp)
            }
            // The HEXPIRE family.
            13..=15 => {
                let (name, time, deadline): (&[u8], u64, u64) = match self.rng.usize(..4) {
                    0 => {
                        let s = self.rng.u64(0..=3);
                        (b"HEXPIRE", s, now + s * 1000)
                    }
                    1 => {
                        let ms = self.ttl_ms();
                        (b"HPEXPIRE", ms, now + ms)
                    }
                    2 => {
                        let s = now / 1000 + self.rng.u64(0..=1);
                        (b"HEXPIREAT", s, s * 1000)
                    }
                    _ => {
                        let at = now + self.ttl_ms() - self.rng.u64(0..=10);
                        (b"HPEXPIREAT", at, at)
                    }
                };
                let cond = self.field_cond();
                let fields = self.fields(&key);
                args = vec![name.to_vec(), key.clone(), time.to_string().into_bytes()];
                args.extend(cond.word().map(<[u8]>::to_vec));
                Self::push_fields(&mut args, &fields);
                let codes: Vec<i64> = match self.model.get_mut(&key) {
                    None => fields.iter().map(|_| -2).collect(),
                    Some(h) => fields
                        .iter()
                        .map(|f| match h.fields.get_mut(f) {
                            None => -2,
                            Some((_, cur)) if !cond.allows(*cur, deadline) => 0,
                            Some(_) if deadline <= now => {
                                h.fields.remove(f);
                                2
                            }
                            Some((_, cur)) => {
                                *cur = Some(deadline);
                                1
                            }
                        })
                        .collect(),
                };
                Check::Exact(ints(codes))
            }
            // The HTTL family.
            16 | 17 => {
                let fields = self.fields(&key);
                let which = self.rng.usize(..4);
                let name: &[u8] = [&b"HTTL"[..], b"HPTTL", b"HEXPIRETIME", b"HPEXPIRETIME"][which];
                let codes: Vec<i64> = fields
                    .iter()
                    .map(|f| match self.live_field(&key, f) {
                        None => -2,
                        Some((_, None)) => -1,
                        Some((_, Some(t))) => {
                            (match which {
                                0 => (t - now).div_ceil(1000),
                                1 => t - now,
                                2 => t.div_ceil(1000),
                                _ => *t,
                            }) as i64
                        }
                    })
                    .collect();
                args = vec![name.to_vec(), key];
                Self::push_fields(&mut args, &fields);
                Check::Exact(ints(codes))
            }
            18 => {
                let fields = self.fields(&key);
                args = vec![b"HPERSIST".to_vec(), key.clone()];
                Self::push_fields(&mut args, &fields);
                let codes: Vec<i64> = fields
                    .iter()
                    .map(
                        |f| match self.model.get_mut(&key).and_then(|h| h.fields.get_mut(f)) {
                            None => -2,
                            Some((_, None)) => -1,
                            Some((_, ttl)) => {
                                *ttl = None;
                                1
                            }
                        },
                    )
                    .collect();
                Check::Exact(ints(codes))
            }
            19 => {
                let fields = self.fields(&key);
                args = vec![b"HGETDEL".to_vec(), key.clone()];
                Self::push_fields(&mut args, &fields);
                let values = fields
                    .iter()
                    .map(
                        |f| match self.model.get_mut(&key).and_then(|h| h.fields.remove(f)) {
                            Some((v, _)) => bulk(&v),
                            None => null(),
                        },
                    )
                    .collect();
                Check::Exact(Resp::Arr(values))
            }
            20 | 21 => {
                // None: no option; Some(None): PERSIST; Some(Some(t)): expire at t.
                let mut opt: Vec<Bytes> = Vec::new();
                let then: Option<Option<u64>> = match self.rng.usize(..6) {
                    0 => None,
                    1 => {
                        opt.push(b"PERSIST".to_vec());
                        Some(None)
                    }
                    2 => {
                        let s = self.rng.u64(0..=1);
                        opt = vec![b"EX".to_vec(), s.to_string().into_bytes()];
                        Some(Some(now + s * 1000))
                    }
                    3 => {
                        let s = now / 1000 + self.rng.u64(0..=1);
                        opt = vec![b"EXAT".to_vec(), s.to_string().into_bytes()];
                        Some(Some(s * 1000))
                    }
                    4 => {
                        let at = now + self.ttl_ms() - self.rng.u64(0..=10);
                        opt = vec![b"PXAT".to_vec(), at.to_string().into_bytes()];
                        Some(Some(at))
                    }
                    _ => {
                        let ms = self.ttl_ms();
                        opt = vec![b"PX".to_vec(), ms.to_string().into_bytes()];
                        Some(Some(now + ms))
                    }
                };
                let fields = self.fields(&key);
                args = vec![b"HGETEX".to_vec(), key.clone()];
                args.extend(opt);
                Self::push_fields(&mut args, &fields);
                let h = self.model.get_mut(&key);
                let values = match h {
                    None => fields.iter().map(|_| null()).collect(),
                    Some(h) => fields
                        .iter()
                        .map(|f| {
                            let Some((v, ttl)) = h.fields.get_mut(f) else {
                                return null();
                            };
                            let reply = bulk(v);
                            match then {
                                None => {}
                                Some(None) => *ttl = None,
                                Some(Some(t)) if t <= now => {
                                    h.fields.remove(f);
                                }
                                Some(Some(t)) => *ttl = Some(t),
                            }
                            reply
                        })
                        .collect(),
                };
                Check::Exact(Resp::Arr(values))
            }
            22 | 23 => {
                let cond = self.rng.usize(..3); // 0 none, 1 FNX, 2 FXX
                let cond_opt: Vec<Bytes> = match cond {
                    1 => vec![b"FNX".to_vec()],
                    2 => vec![b"FXX".to_vec()],
                    _ => vec![],
                };
                let mut ttl_opt: Vec<Bytes> = Vec::new();
                let ttl = match self.rng.usize(..5) {
                    0 => SetTtl::Clear,
                    1 => {
                        ttl_opt.push(b"KEEPTTL".to_vec());
                        SetTtl::Keep
                    }
                    2 => {
                        let s = self.rng.u64(0..=1);
                        ttl_opt = vec![b"EX".to_vec(), s.to_string().into_bytes()];
                        SetTtl::At(now + s * 1000)
                    }
                    _ => {
                        let ms = self.ttl_ms();
                        ttl_opt = vec![b"PX".to_vec(), ms.to_string().into_bytes()];
                        SetTtl::At(now + ms)
                    }
                };
                // The options may come in any order.
                let opts = if self.rng.bool() {
                    [cond_opt, ttl_opt].concat()
                } else {
                    [ttl_opt, cond_opt].concat()
                };
                let pairs: Vec<(Bytes, Bytes)> = (0..self.rng.usize(1..=3))
                    .map(|_| (self.field(&key), self.value()))
                    .collect();
                args = vec![b"HSETEX".to_vec(), key.clone()];
                args.extend(opts);
                args.push(b"FIELDS".to_vec());
                args.push(pairs.len().to_string().into_bytes());
                for (f, v) in &pairs {
                    args.push(f.clone());
                    args.push(v.clone());
                }
                let exists = self.model.contains_key(&key);
                let holds = match cond {
                    1 => pairs
                        .iter()
                        .all(|(f, _)| self.live_field(&key, f).is_none()),
                    2 => {
                        exists
                            && pairs
                                .iter()
                                .all(|(f, _)| self.live_field(&key, f).is_some())
                    }
                    _ => true,
                };
                if holds {
                    let h = self.model.entry(key).or_default();
                    for (f, v) in &pairs {
                        let old = h.fields.get(f).and_then(|(_, t)| *t);
                        match ttl {
                            SetTtl::At(t) if t <= now => {
                                // Written, then deleted at once.
                                h.store(limit, f, v, None);
                                h.fields.remove(f);
                            }
                            SetTtl::At(t) => {
                                h.store(limit, f, v, Some(t));
                            }
                            SetTtl::Keep => {
                                h.store(limit, f, v, old);
                            }
                            SetTtl::Clear => {
                                h.store(limit, f, v, None);
                            }
                        }
                    }
                }
                Check::Exact(int(i64::from(holds)))
            }
            24 => {
                let keys: Vec<Bytes> = (0..self.rng.usize(1..=3)).map(|_| self.key()).collect();
                let removed = keys
                    .iter()
                    .filter(|k| self.model.remove(*k).is_some())
                    .count();
                args = vec![if self.rng.bool() {
                    b"DEL".to_vec()
                } else {
                    b"UNLINK".to_vec()
                }];
                args.extend(keys);
                Check::Exact(int(removed as i64))
            }
            25 => {
                let keys: Vec<Bytes> = (0..self.rng.usize(1..=3)).map(|_| self.key()).collect();
                let n = keys.iter().filter(|k| self.model.contains_key(*k)).count();
                args = vec![b"EXISTS".to_vec()];
                args.extend(keys);
                Check::Exact(int(n as i64))
            }
            26 => {
                let t = if self.model.contains_key(&key) {
                    "hash"
                } else {
                    "none"
                };
                args = vec![b"TYPE".to_vec(), key];
                Check::Exact(Resp::Simple(t.into()))
            }
            27 => {
                let dst = self.key();
                let nx = self.rng.usize(..3) == 0;
                args = vec![
                    if nx {
                        b"RENAMENX".to_vec()
                    } else {
                        b"RENAME".to_vec()
                    },
                    key.clone(),
                    dst.clone(),
                ];
                let exp = if !self.model.contains_key(&key) {
                    err("ERR no such key")
                } else if key == dst {
                    if nx {
                        int(0)
                    } else {
                        ok()
                    }
                } else if nx && self.model.contains_key(&dst) {
                    int(0)
                } else {
                    let h = self.model.remove(&key).expect("checked");
                    self.model.insert(dst, h);
                    if nx {
                        int(1)
                    } else {
                        ok()
                    }
                };
                Check::Exact(exp)
            }
            // The EXPIRE family.
            28 | 29 => {
                let (name, time, when): (&[u8], i64, i64) = {
                    let now = now as i64;
                    match self.rng.usize(..4) {
                        0 => {
                            let s = self.rng.i64(-1..=3);
                            (b"EXPIRE", s, now + s * 1000)
                        }
                        1 => {
                            let ms = self.ttl_ms() as i64 - self.rng.i64(0..=5);
                            (b"PEXPIRE", ms, now + ms)
                        }
                        2 => {
                            let s = now / 1000 + self.rng.i64(0..=2);
                            (b"EXPIREAT", s, s * 1000)
                        }
                        _ => {
                            let at = now + self.ttl_ms() as i64 - self.rng.i64(0..=5);
                            (b"PEXPIREAT", at, at)
                        }
                    }
                };
                let (nx, xx, gt, lt) = match self.rng.usize(..10) {
                    0 => (true, false, false, false),
                    1 => (false, true, false, false),
                    2 => (false, false, true, false),
                    3 => (false, false, false, true),
                    4 => (false, true, true, false),
                    5 if self.rng.bool() => (true, false, true, false),
                    5 => (false, false, true, true),
                    _ => (false, false, false, false),
                };
                args = vec![name.to_vec(), key.clone(), time.to_string().into_bytes()];
                for (on, word) in [(nx, "NX"), (xx, "XX"), (gt, "GT"), (lt, "LT")] {
                    if on {
                        args.push(word.into());
                    }
                }
                let exp = if nx && (xx || gt || lt) {
                    err("ERR NX and XX, GT or LT options at the same time are not compatible")
                } else if gt && lt {
                    err("ERR GT and LT options at the same time are not compatible")
                } else if let Some(h) = self.model.get_mut(&key) {
                    let cur = h.deadline.map(|d| d as i64);
                    let allowed = !(nx && cur.is_some()
                        || xx && cur.is_none()
                        || gt && cur.is_none_or(|c| when <= c)
                        || lt && cur.is_some_and(|c| when >= c));
                    if !allowed {
                        int(0)
                    } else if when <= now as i64 {
                        self.model.remove(&key);
                        int(1)
                    } else {
                        h.deadline = Some(when as u64);
                        int(1)
                    }
                } else {
                    int(0)
                };
                Check::Exact(exp)
            }
            30 => {
                let which = self.rng.usize(..4);
                let name: &[u8] = [&b"TTL"[..], b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"][which];
                let exp = match self.model.get(&key).map(|h| h.deadline) {
                    None => -2,
                    Some(None) => -1,
                    Some(Some(d)) => {
                        (match which {
                            0 => (d - now + 500) / 1000,
                            1 => d - now,
                            2 => (d + 500) / 1000,
                            _ => d,
                        }) as i64
                    }
                };
                args = vec![name.to_vec(), key];
                Check::Exact(int(exp))
            }
            31 => {
                let removed = self
                    .model
                    .get_mut(&key)
                    .is_some_and(|h| h.deadline.take().is_some());
                args = vec![b"PERSIST".to_vec(), key];
                Check::Exact(int(i64::from(removed)))
            }
            32 => {
                args = vec![b"KEYS".to_vec(), b"*".to_vec()];
                Check::Multiset(self.model.keys().cloned().collect())
            }
            33 => {
                self.full_scan();
                return None;
            }
            34 => {
                args = vec![b"RANDOMKEY".to_vec()];
                Check::NullOrOneOf(self.model.keys().cloned().collect())
            }
            35 => {
                let want = self.model.get(&key).map(|h| h.table);
                match want {
                    Some(true) => self.encodings.1 += 1,
                    Some(false) => self.encodings.0 += 1,
                    None => {}
                }
                args = vec![b"OBJECT".to_vec(), b"ENCODING".to_vec(), key];
                Check::Encoding(want)
            }
            // Time passes: to a deadline, just past it, or by 0–30 ms.
            36 | 37 => {
                let deadlines: Vec<u64> = self
                    .model
                    .values()
                    .flat_map(|h| h.fields.values().filter_map(|(_, d)| *d).chain(h.deadline))
                    .filter(|&d| d >= now)
                    .collect();
                if !deadlines.is_empty() {
                    let d = deadlines[self.rng.usize(..deadlines.len())];
                    self.env.advance_ms(d - now + self.rng.u64(0..=1));
                }
                return None;
            }
            _ => {
                self.env.advance_ms(self.rng.u64(0..=30));
                return None;
            }
        };
        Some((args, check))
    }

    fn gen_hget(&mut self, key: Bytes, f: Bytes) -> Option<(Vec<Bytes>, Check)> {
        let exp = match self.live_field(&key, &f) {
            Some((v, _)) => bulk(v),
            None => null(),
        };
        Some((vec![b"HGET".to_vec(), key, f], Check::Exact(exp)))
    }

    /// SCAN from 0 until the cursor is 0 again; every key must come back (duplicates are
    /// allowed), and nothing else.
    fn full_scan(&mut self) {
        let want: BTreeSet<Bytes> = self.model.keys().cloned().collect();
        let mut seen = BTreeSet::new();
        let mut cursor = b"0".to_vec();
        for _ in 0..10_000 {
            let count = self.rng.usize(1..=5).to_string().into_bytes();
            let args = vec![b"SCAN".to_vec(), cursor.clone(), b"COUNT".to_vec(), count];
            let reply = self.exec(&args);
            let page = match parse_all(&reply) {
                Some(Resp::Arr(v)) if v.len() == 2 => v,
                _ => self.fail(
                    &show(&args),
                    "[cursor, keys]",
                    &reply.escape_ascii().to_string(),
                ),
            };
            match (&page[0], bulks_of(&page[1])) {
                (Resp::Bulk(Some(c)), Some(keys)) => {
                    cursor = c.clone();
                    seen.extend(keys);
                }
                _ => self.fail(
                    &show(&args),
                    "[cursor, keys]",
                    &reply.escape_ascii().to_string(),
                ),
            }
            if cursor == b"0" {
                if seen != want {
                    self.fail("a full SCAN", &format!("{want:?}"), &format!("{seen:?}"));
                }
                return;
            }
        }
        self.fail("a full SCAN", "the cursor back to 0", "10000 pages");
    }
}

/// Steps per run: `HASHD_MODEL_STEPS` or [`STEPS`].
fn steps() -> usize {
    std::env::var("HASHD_MODEL_STEPS")
        .map_or(STEPS, |s| s.parse().expect("HASHD_MODEL_STEPS is a number"))
}

fn seeds() -> Vec<u64> {
    match std::env::var("HASHD_MODEL_SEED") {
        Ok(s) => vec![s.parse().expect("HASHD_MODEL_SEED is a u64")],
        Err(_) => (0..SEEDS).map(|i| 0x5eed_0000 + i).collect(),
    }
}

#[test]
fn commands_match_the_model_compact_hashes() {
    let mut seen = (0, 0);
    for seed in seeds() {
        let run = Run::new(seed, DEFAULT_MAX_COMPACT).run(steps());
        seen.0 += run.encodings.0;
        seen.1 += run.encodings.1;
    }
    // Mostly compact; long values make the odd table.
    assert!(seen.0 > seen.1, "encodings (compact, table) seen: {seen:?}");
}

#[test]
fn commands_match_the_model_table_hashes() {
    let mut seen = (0, 0);
    for seed in seeds() {
        let run = Run::new(seed, 4).run(steps());
        seen.0 += run.encodings.0;
        seen.1 += run.encodings.1;
    }
    assert!(seen.1 > 0, "encodings (compact, table) seen: {seen:?}");
}

#[test]
fn the_reply_codec_round_trips() {
    let v = Resp::Arr(vec![
        int(-2),
        bulk(b"x\r\ny"),
        null(),
        Resp::Arr(vec![]),
        ok(),
        err("ERR no such key"),
    ]);
    let mut out = Vec::new();
    encode(&v, &mut out);
    assert_eq!(
        out,
        b"*6\r\n:-2\r\n$4\r\nx\r\ny\r\n$-1\r\n*0\r\n+OK\r\n-ERR no such key\r\n"
    );
    assert_eq!(parse_all(&out), Some(v));
    assert_eq!(parse_all(b"*2\r\n:1\r\n"), None);
    assert_eq!(strict_i64(b"-7"), Some(-7));
    for bad in [
        &b"+1"[..],
        b"01",
        b"-0",
        b"",
        b"-",
        b"1.5",
        b"9223372036854775808",
    ] {
        assert_eq!(strict_i64(bad), None, "{}", bad.escape_ascii());
    }
}
