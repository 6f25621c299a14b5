//! Multi-client stress over real sockets: several client threads, each on its own connection,
//! run a seeded random mix of hash commands (HSET, HDEL, HPEXPIRE/HPEXPIREAT/HEXPIRE 0 with
//! 0–50 ms TTLs, HPERSIST, RENAME, DEL, HINCRBY, HSCAN, MULTI/EXEC with and without WATCH)
//! against one server with the system clock and the sweeper running at a high `hz`. Only
//! correctness is asserted, never speed; every check is built to hold under any interleaving:
//!
//! 1. **No empty hash is visible.** `MULTI; EXISTS k; HLEN k; HKEYS k; HGETALL k; EXEC` is one
//!    atomic snapshot (EXEC reads "now" once and locks the key): EXISTS = 1 ⇔ HLEN > 0, HLEN =
//!    |HKEYS| = |HGETALL|/2, HKEYS has no duplicates and names the same fields as HGETALL.
//!    On the thread-private keys (below) a bare EXISTS must also be 0 once every field the
//!    thread set has passed its deadline.
//! 2. **No field is visible after its deadline.** Each thread keeps a model of its own private
//!    keys (no other thread, RENAME or DEL touches them; the sweeper and lazy expiry only
//!    remove expired fields). A TTL set by a command sent at client time `T0` and answered at
//!    `R0` has its server deadline in `[T0 + t, R0 + t]` (same process, same clock). A read sent
//!    at `T1` and answered at `R1` must not return a field whose deadline bound is below `T1`
//!    (minus a 2 ms slack) and must return one whose deadline is above `R1` (plus slack); in
//!    between either answer is right, and an "absent" settles it (expiry is monotonic).
//!    HPTTL must stay within `[lo − R1, hi − T1]` and never exceed the TTL that was set. The
//!    replies of HSET, HDEL, HPEXPIRE and HPERSIST on these keys are checked the same way.
//! 3. **No lost HINCRBY.** Counter keys are only ever incremented (alone, pipelined, or inside
//!    ledger transactions); at the end each counter equals the sum of acknowledged increments.
//! 4. **No EXEC applies after a conflicting write.** All threads contend on one ledger key:
//!    `WATCH ledger; HGET ledger v; MULTI; HSET ledger v <v+1>; HINCRBY counter; HSET shared;
//!    EXEC`. Every applied EXEC increments `v` by exactly one, so at the end `v` equals the
//!    number of applied EXECs, and the versions they wrote are exactly `1..=v` (a lost, doubled
//!    or stale apply breaks this). A thread that writes a key it watches before EXEC must see
//!    the EXEC abort.
//! 5. **The server survives and the sweeper reclaims.** After the run: PING answers; once every
//!    TTL is past, no visible field has a TTL, each private key holds exactly the model's
//!    persistent fields, and DBSIZE (polled until a deadline) comes down to the number of keys
//!    that still have a field.
//!
//! Transactions also check their own atomicity (HSET then HGET, RENAME then EXISTS inside one
//! EXEC). Some hashes pass `hash-max-listpack-entries` (set to 8) or get long values, so both
//! encodings are exercised. The RESP3 test repeats a shorter run after `HELLO 3`.
//!
//! `HASHD_STRESS_SECS` (default 2) sets the RESP2 run's length (RESP3 runs half of it);
//! `HASHD_STRESS_SEED` (decimal or 0x-hex) changes the base seed. Each failure names the base
//! seed, the thread, its operation number and the command it was checking. The interleaving
//! of threads is not reproducible, only each thread's sequence of operations.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{decode, describe_read_error, encode_command, show, Client, TestServer, Value};

const THREADS: usize = 6;
const SHARED_KEYS: usize = 16;
const PRIVATE_KEYS: usize = 3;
const COUNTERS: usize = 4;
/// Field names `f0..f11`: with `hash-max-listpack-entries` 8, full hashes become tables.
const FIELDS: usize = 12;
const LISTPACK_ENTRIES: usize = 8;
const MAX_TTL_MS: u64 = 50;
/// Allowance for the client's and server's reads of the (same) clock.
const SLACK_MS: u64 = 2;
const DEFAULT_SECS: f64 = 2.0;
const DEFAULT_SEED: u64 = 0x68a5_6d57_7e55_0001;
/// How long the sweeper gets to reclaim everything at the end.
const RECLAIM_TIMEOUT: Duration = Duration::from_secs(5);
const LEDGER: &str = "ledger";

type Cmd = Vec<Vec<u8>>;

/// A request from anything that displays: `cmd!["HSET", key, field, 5]`.
macro_rules! cmd {
    ($($a:expr),+ $(,)?) => { vec![$($a.to_string().into_bytes()),+] };
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn shared_key(i: usize) -> String {
    format!("s:{i}")
}

fn private_key(thread: usize, i: usize) -> String {
    format!("p:{thread}:{i}")
}

fn counter_key(i: usize) -> String {
    format!("c:{i}")
}

fn field_name(i: usize) -> String {
    format!("f{i}")
}

/// Every key the run can create: RENAME only moves between shared keys.
fn universe() -> Vec<String> {
    let mut keys: Vec<String> = (0..SHARED_KEYS).map(shared_key).collect();
    for t in 0..THREADS {
        keys.extend((0..PRIVATE_KEYS).map(|i| private_key(t, i)));
    }
    keys.extend((0..COUNTERS).map(counter_key));
    keys.push(LEDGER.into());
    keys
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn env_secs() -> f64 {
    match std::env::var("HASHD_STRESS_SECS") {
        Ok(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or_else(|| panic!("HASHD_STRESS_SECS={s:?} is not a positive number")),
        Err(_) => DEFAULT_SECS,
    }
}

fn env_seed() -> u64 {
    match std::env::var("HASHD_STRESS_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            };
            parsed.unwrap_or_else(|| panic!("HASHD_STRESS_SEED={s:?} is not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// A reply, readably, for failure messages.
fn fmt_value(v: &Value) -> String {
    let list = |items: &[Value]| items.iter().map(fmt_value).collect::<Vec<_>>().join(", ");
    match v {
        Value::Simple(s) => format!("+{s}"),
        Value::Error(e) => format!("(error {e})"),
        Value::Int(n) => n.to_string(),
        Value::Bulk(b) | Value::Verbatim(_, b) => show(b),
        Value::Null => "nil".into(),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            format!("[{}]", list(items))
        }
        Value::Map(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", fmt_value(k), fmt_value(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Double(d) => format!(",{d}"),
        Value::Bool(b) => format!("#{b}"),
        Value::BigNumber(n) => format!("({n}"),
    }
}

fn fmt_cmd(c: &Cmd) -> String {
    c.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Bounds on a field's server-side deadline, and the TTL that was asked for.
#[derive(Clone, Copy, Debug)]
struct Ttl {
    lo: u64,
    hi: u64,
    asked_ms: u64,
}

/// What the owning thread knows about one field of a private key.
#[derive(Clone, Debug)]
struct Field {
    value: String,
    ttl: Option<Ttl>,
}

/// What a read sent at `t1` and answered at `r1` may see of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Present,
    Absent,
    Either,
}

fn seen(f: Option<&Field>, t1: u64, r1: u64) -> Seen {
    match f {
        None => Seen::Absent,
        Some(Field { ttl: None, .. }) => Seen::Present,
        Some(Field { ttl: Some(d), .. }) => {
            if d.hi + SLACK_MS < t1 {
                Seen::Absent
            } else if d.lo > r1 + SLACK_MS {
                Seen::Present
            } else {
                Seen::Either
            }
        }
    }
}

/// What a worker hands back for the final checks.
#[derive(Default)]
struct Outcome {
    counter_sums: [i64; COUNTERS],
    counter_acks: [u64; COUNTERS],
    /// The ledger versions this thread's applied EXECs wrote.
    ledger_versions: Vec<i64>,
    ledger_aborts: u64,
    own_conflict_aborts: u64,
    txn_applied: u64,
    txn_aborted: u64,
    /// Upper bound of every deadline this thread set.
    last_deadline: u64,
    ops: u64,
    snapshots: u64,
    field_expired_seen: u64,
    private: Vec<BTreeMap<String, Field>>,
}

/// Sets the stop flag if the thread unwinds, so the others end early.
struct StopOnPanic(Arc<AtomicBool>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

struct Worker {
    id: usize,
    base_seed: u64,
    seed: u64,
    resp3: bool,
    rng: fastrand::Rng,
    conn: Client,
    op: u64,
    what: String,
    out: Outcome,
}

impl Worker {
    fn new(srv: &TestServer, id: usize, base_seed: u64, resp3: bool) -> Self {
        let seed = splitmix(base_seed ^ ((id as u64) << 32) ^ u64::from(resp3));
        let mut conn = srv.client();
        if resp3 {
            conn.hello3();
        }
        Worker {
            id,
            base_seed,
            seed,
            resp3,
            rng: fastrand::Rng::with_seed(seed),
            conn,
            op: 0,
            what: String::new(),
            out: Outcome {
                private: vec![BTreeMap::new(); PRIVATE_KEYS],
                ..Outcome::default()
            },
        }
    }

    #[track_caller]
    fn fail(&self, msg: String) -> ! {
        panic!(
            "{msg}\n  while: {}\n  base seed {:#x} (HASHD_STRESS_SEED), thread {} (seed {:#x}), \
             {}, operation #{}",
            self.what,
            self.base_seed,
            self.id,
            self.seed,
            if self.resp3 { "RESP3" } else { "RESP2" },
            self.op
        )
    }

    /// Sends all `cmds` in one write and reads one reply each.
    fn pipeline(&mut self, cmds: &[Cmd]) -> Vec<Value> {
        let mut bytes = Vec::new();
        for c in cmds {
            bytes.extend_from_slice(&encode_command(c));
        }
        if let Err(e) = self.conn.try_send(&bytes) {
            self.fail(format!("write failed: {e}"));
        }
        let mut replies = Vec::with_capacity(cmds.len());
        for c in cmds {
            match self.conn.try_read_reply() {
                Ok(r) => replies.push(decode(&r)),
                Err(e) => self.fail(format!(
                    "no reply to {}: {}",
                    fmt_cmd(c),
                    describe_read_error(&e)
                )),
            }
        }
        replies
    }

    fn one(&mut self, c: Cmd) -> Value {
        self.pipeline(std::slice::from_ref(&c)).remove(0)
    }

    /// A reply that must not be an error.
    #[track_caller]
    fn ok_reply(&self, c: &Cmd, v: &Value) {
        if let Value::Error(e) = v {
            self.fail(format!("{} answered the error {e:?}", fmt_cmd(c)));
        }
    }

    #[track_caller]
    fn int(&self, v: &Value, ctx: &str) -> i64 {
        match v {
            Value::Int(n) => *n,
            other => self.fail(format!(
                "{ctx}: expected an integer, got {}",
                fmt_value(other)
            )),
        }
    }

    #[track_caller]
    fn ints(&self, v: &Value, n: usize, ctx: &str) -> Vec<i64> {
        match v.items() {
            Some(items) if items.len() == n => items.iter().map(|i| self.int(i, ctx)).collect(),
            _ => self.fail(format!(
                "{ctx}: expected an array of {n} integers, got {}",
                fmt_value(v)
            )),
        }
    }

    /// A bulk string or nil.
    #[track_caller]
    fn bulk(&self, v: &Value, ctx: &str) -> Option<Vec<u8>> {
        match v {
            Value::Null => None,
            Value::Bulk(b) => Some(b.clone()),
            other => self.fail(format!(
                "{ctx}: expected a bulk or nil, got {}",
                fmt_value(other)
            )),
        }
    }

    #[track_caller]
    fn list(&self, v: &Value, ctx: &str) -> Vec<Vec<u8>> {
        match v.items() {
            Some(items) => items
                .iter()
                .map(|i| match i {
                    Value::Bulk(b) => b.clone(),
                    other => self.fail(format!(
                        "{ctx}: expected bulk strings, got {} in {}",
                        fmt_value(other),
                        fmt_value(v)
                    )),
                })
                .collect(),
            None => self.fail(format!("{ctx}: expected an array, got {}", fmt_value(v))),
        }
    }

    /// HGETALL's reply (an array in RESP2, a map in RESP3) as field/value pairs.
    #[track_caller]
    fn pairs(&self, v: &Value, ctx: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        match v {
            Value::Map(m) if self.resp3 => m
                .iter()
                .map(|(k, v)| match (k, v) {
                    (Value::Bulk(k), Value::Bulk(v)) => (k.clone(), v.clone()),
                    _ => self.fail(format!("{ctx}: non-bulk map entry in {}", fmt_value(v))),
                })
                .collect(),
            Value::Array(_) if !self.resp3 => {
                let flat = self.list(v, ctx);
                if !flat.len().is_multiple_of(2) {
                    self.fail(format!(
                        "{ctx}: odd-length field/value list {}",
                        fmt_value(v)
                    ));
                }
                flat.chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect()
            }
            other => self.fail(format!(
                "{ctx}: expected field/value pairs as {}, got {}",
                if self.resp3 { "a map" } else { "an array" },
                fmt_value(other)
            )),
        }
    }

    /// MULTI, the commands, EXEC in one write. None if EXEC aborted (WATCH).
    fn exec(&mut self, cmds: &[Cmd]) -> Option<Vec<Value>> {
        let mut all = vec![cmd!["MULTI"]];
        all.extend(cmds.iter().cloned());
        all.push(cmd!["EXEC"]);
        let mut replies = self.pipeline(&all);
        let exec = replies.pop().expect("EXEC reply");
        if replies[0] != Value::Simple("OK".into()) {
            self.fail(format!("MULTI answered {}", fmt_value(&replies[0])));
        }
        for (c, r) in cmds.iter().zip(&replies[1..]) {
            if *r != Value::Simple("QUEUED".into()) {
                self.fail(format!(
                    "{} inside MULTI answered {}",
                    fmt_cmd(c),
                    fmt_value(r)
                ));
            }
        }
        match exec {
            Value::Null => None,
            Value::Array(items) if items.len() == cmds.len() => {
                for (c, r) in cmds.iter().zip(&items) {
                    self.ok_reply(c, r);
                }
                Some(items)
            }
            other => self.fail(format!(
                "EXEC of {} commands answered {}",
                cmds.len(),
                fmt_value(&other)
            )),
        }
    }

    fn watch(&mut self, keys: &[&str]) {
        let mut c = cmd!["WATCH"];
        c.extend(keys.iter().map(|k| k.as_bytes().to_vec()));
        let r = self.one(c);
        if r != Value::Simple("OK".into()) {
            self.fail(format!("WATCH answered {}", fmt_value(&r)));
        }
    }

    fn some_fields(&mut self, max: usize) -> Vec<String> {
        let n = self.rng.usize(1..=max);
        let mut idx: Vec<usize> = (0..FIELDS).collect();
        self.rng.shuffle(&mut idx);
        idx[..n].iter().map(|&i| field_name(i)).collect()
    }

    fn value(&mut self) -> String {
        if self.rng.u32(0..12) == 0 {
            // Longer than hash-max-listpack-value: the hash becomes a table.
            format!("long-{}-{}", self.rng.u64(..), "x".repeat(64))
        } else {
            format!("v{}", self.rng.u32(..))
        }
    }

    fn any_shared(&mut self) -> String {
        shared_key(self.rng.usize(0..SHARED_KEYS))
    }

    fn run(mut self, deadline: Instant, stop: &AtomicBool) -> Outcome {
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            self.op += 1;
            match self.rng.u32(0..100) {
                0..=34 => self.private_op(),
                35..=42 => self.hincrby(),
                43..=50 => self.ledger_txn(),
                51..=58 => self.shared_txn(),
                59..=67 => {
                    let key = self.any_shared();
                    self.what = format!("snapshot of shared key {key}");
                    self.snapshot(&key);
                }
                68..=70 => self.hscan_shared(),
                _ => self.shared_write(),
            }
        }
        self.out.ops = self.op;
        self.out
    }

    // ---- check 1: atomic snapshots -------------------------------------------------------

    /// `MULTI; EXISTS; HLEN; HKEYS; HGETALL; EXEC` and the consistency of its four answers.
    fn snapshot(&mut self, key: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.out.snapshots += 1;
        let Some(r) = self.exec(&[
            cmd!["EXISTS", key],
            cmd!["HLEN", key],
            cmd!["HKEYS", key],
            cmd!["HGETALL", key],
        ]) else {
            self.fail("EXEC without WATCH aborted".into())
        };
        let exists = self.int(&r[0], "EXISTS");
        let hlen = self.int(&r[1], "HLEN");
        let keys = self.list(&r[2], "HKEYS");
        let pairs = self.pairs(&r[3], "HGETALL");
        let all = format!(
            "EXISTS {exists}, HLEN {hlen}, HKEYS {}, HGETALL {}",
            fmt_value(&r[2]),
            fmt_value(&r[3])
        );
        if !(exists == 0 || exists == 1) {
            self.fail(format!("[check 1] EXISTS {key} answered {exists}"));
        }
        if (exists == 1) != (hlen > 0) {
            self.fail(format!(
                "[check 1: empty hash visible] in one MULTI/EXEC on {key}: {all} \
                 (EXISTS = 1 must hold exactly when HLEN > 0)"
            ));
        }
        if hlen as usize != keys.len() || keys.len() != pairs.len() {
            self.fail(format!(
                "[check 1] in one MULTI/EXEC on {key}, HLEN, |HKEYS| and |HGETALL|/2 differ: {all}"
            ));
        }
        let unique: BTreeSet<&Vec<u8>> = keys.iter().collect();
        if unique.len() != keys.len() {
            self.fail(format!("[check 1] HKEYS {key} has duplicates: {all}"));
        }
        let from_pairs: BTreeSet<&Vec<u8>> = pairs.iter().map(|(f, _)| f).collect();
        if from_pairs != unique {
            self.fail(format!(
                "[check 1] HKEYS and HGETALL name different fields in one MULTI/EXEC on {key}: {all}"
            ));
        }
        pairs
    }

    // ---- check 2: the private keys' model ------------------------------------------------

    fn private_op(&mut self) {
        let k = self.rng.usize(0..PRIVATE_KEYS);
        match self.rng.u32(0..100) {
            0..=19 => self.p_hset(k),
            20..=26 => self.p_hdel(k),
            27..=44 => self.p_expire(k),
            45..=51 => self.p_persist(k),
            52..=60 => self.p_hgetall(k),
            61..=70 => self.p_hmget(k),
            71..=78 => self.p_hpttl(k),
            79..=84 => self.p_hscan(k),
            85..=93 => self.p_snapshot(k),
            _ => self.p_exists(k),
        }
    }

    fn model(&self, k: usize) -> &BTreeMap<String, Field> {
        &self.out.private[k]
    }

    fn describe(&self, k: usize, field: &str) -> String {
        match self.model(k).get(field) {
            None => "not set (never, or deleted / seen expired)".into(),
            Some(Field { value, ttl: None }) => format!("{value:?}, no TTL"),
            Some(Field {
                value,
                ttl: Some(t),
            }) => format!(
                "{value:?}, {} ms TTL, server deadline within [{}, {}]",
                t.asked_ms, t.lo, t.hi
            ),
        }
    }

    /// Checks one field as seen by a read sent at `t1` and answered at `r1` (`window`).
    /// `value` is None when the read tells presence only (HEXISTS). Settles an `Either` seen
    /// absent.
    fn observe(
        &mut self,
        k: usize,
        field: &str,
        present: bool,
        value: Option<&[u8]>,
        window: (u64, u64),
        how: &str,
    ) {
        let (t1, r1) = window;
        let key = private_key(self.id, k);
        let state = seen(self.model(k).get(field), t1, r1);
        let model = self.describe(k, field);
        match (state, present) {
            (Seen::Absent, true) => {
                let late = match self.model(k).get(field).and_then(|f| f.ttl) {
                    Some(t) => format!(
                        "[check 2: field visible after its deadline] the read was sent {} ms \
                         after the latest possible deadline",
                        t1 - t.hi
                    ),
                    None => "[check 2] a field this thread does not hold is visible".into(),
                };
                self.fail(format!(
                    "{late}: {how} on private key {key} (sent at {t1}, answered at {r1}) \
                     returned {field} = {}; model: {model}",
                    value.map_or("(present)".into(), show)
                ));
            }
            (Seen::Present, false) => self.fail(format!(
                "[check 2] {how} on private key {key} (sent at {t1}, answered at {r1}) does \
                 not return {field}, which must be there; model: {model}"
            )),
            (_, true) => {
                let want = &self.model(k)[field].value;
                if let Some(v) = value {
                    if v != want.as_bytes() {
                        self.fail(format!(
                            "[check 2] {how} on private key {key} returned {field} = {}; \
                             model: {model}",
                            show(v)
                        ));
                    }
                }
            }
            (Seen::Either, false) => {
                self.out.field_expired_seen += 1;
                self.out.private[k].remove(field);
            }
            (Seen::Absent, false) => {
                self.out.private[k].remove(field);
            }
        }
    }

    /// Counts of (surely there, maybe there) among `fields` for a command sent at `t1`,
    /// answered at `r1`.
    fn present_range(&self, k: usize, fields: &[String], t1: u64, r1: u64) -> (usize, usize) {
        let mut sure = 0;
        let mut maybe = 0;
        for f in fields {
            match seen(self.model(k).get(f), t1, r1) {
                Seen::Present => sure += 1,
                Seen::Either => maybe += 1,
                Seen::Absent => {}
            }
        }
        (sure, sure + maybe)
    }

    fn p_hset(&mut self, k: usize) {
        let key = private_key(self.id, k);
        let fields = self.some_fields(4);
        let values: Vec<String> = fields.iter().map(|_| self.value()).collect();
        let mut c = cmd!["HSET", key];
        for (f, v) in fields.iter().zip(&values) {
            c.extend(cmd![f, v]);
        }
        self.what = fmt_cmd(&c);
        let t1 = now_ms();
        let r = self.one(c);
        let r1 = now_ms();
        let added = self.int(&r, "HSET");
        let (sure, maybe) = self.present_range(k, &fields, t1, r1);
        let (lo, hi) = (fields.len() - maybe, fields.len() - sure);
        if !(lo..=hi).contains(&(added as usize)) {
            self.fail(format!(
                "[check 2] HSET on private key {key} added {added} fields, expected {lo}..={hi} \
                 from the model"
            ));
        }
        for (f, v) in fields.into_iter().zip(values) {
            self.out.private[k].insert(
                f,
                Field {
                    value: v,
                    ttl: None,
                },
            );
        }
    }

    fn p_hdel(&mut self, k: usize) {
        let key = private_key(self.id, k);
        let fields = self.some_fields(3);
        let mut c = cmd!["HDEL", key];
        c.extend(fields.iter().map(|f| f.as_bytes().to_vec()));
        self.what = fmt_cmd(&c);
        let t1 = now_ms();
        let r = self.one(c);
        let r1 = now_ms();
        let removed = self.int(&r, "HDEL") as usize;
        let (lo, hi) = self.present_range(k, &fields, t1, r1);
        if !(lo..=hi).contains(&removed) {
            self.fail(format!(
                "[check 2] HDEL on private key {key} removed {removed} fields, expected \
                 {lo}..={hi} from the model"
            ));
        }
        for f in &fields {
            self.out.private[k].remove(f);
        }
    }

    fn p_expire(&mut self, k: usize) {
        let key = private_key(self.id, k);
        let fields = self.some_fields(3);
        let t1 = now_ms();
        // (command, TTL asked, absolute deadline for HPEXPIREAT, deletes at once)
        let (mut c, ms, at, deletes) = match self.rng.u32(0..20) {
            0 => (cmd!["HEXPIRE", key, 0], 0, None, true),
            1 => (cmd!["HPEXPIRE", key, 0], 0, None, true),
            2..=5 => {
                let ms = self.rng.u64(1..=MAX_TTL_MS);
                (cmd!["HPEXPIREAT", key, t1 + ms], ms, Some(t1 + ms), false)
            }
            _ => {
                let ms = self.rng.u64(1..=MAX_TTL_MS);
                (cmd!["HPEXPIRE", key, ms], ms, None, false)
            }
        };
        c.extend(cmd!["FIELDS", fields.len()]);
        c.extend(fields.iter().map(|f| f.as_bytes().to_vec()));
        self.what = fmt_cmd(&c);
        let r = self.one(c);
        let r1 = now_ms();
        let codes = self.ints(&r, fields.len(), "HPEXPIRE");
        for (f, code) in fields.iter().zip(codes) {
            let state = seen(self.model(k).get(f), t1, r1);
            // 1 = TTL set, 2 = deleted (TTL 0 or a deadline already past), -2 = no field.
            let allowed: &[i64] = match (state, deletes, at.is_some()) {
                (Seen::Absent, _, _) => &[-2],
                (Seen::Present, true, _) => &[2],
                (Seen::Present, false, false) => &[1],
                (Seen::Present, false, true) => &[1, 2],
                (Seen::Either, true, _) => &[2, -2],
                (Seen::Either, false, false) => &[1, -2],
                (Seen::Either, false, true) => &[1, 2, -2],
            };
            if !allowed.contains(&code) {
                self.fail(format!(
                    "[check 2] {} answered {code} for {f} of private key {key}, expected one of \
                     {allowed:?}; model: {}",
                    self.what,
                    self.describe(k, f)
                ));
            }
            if code == 1 {
                let (lo, hi) = at.map_or((t1 + ms, r1 + ms), |at| (at, at));
                self.out.last_deadline = self.out.last_deadline.max(hi);
                let field = self.out.private[k]
                    .get_mut(f)
                    .expect("a field that was set");
                field.ttl = Some(Ttl {
                    lo,
                    hi,
                    asked_ms: ms,
                });
            } else {
                self.out.private[k].remove(f);
            }
        }
    }

    fn p_persist(&mut self, k: usize) {
        let key = private_key(self.id, k);
        let fields = self.some_fields(3);
        let mut c = cmd!["HPERSIST", key, "FIELDS", fields.len()];
        c.extend(fields.iter().map(|f| f.as_bytes().to_vec()));
        self.what = fmt_cmd(&c);
        let t1 = now_ms();
        let r = self.one(c);
        let r1 = now_ms();
        let codes = self.ints(&r, fields.len(), "HPERSIST");
        for (f, code) in fields.iter().zip(codes) {
            let has_ttl = self.model(k).get(f).is_some_and(|x| x.ttl.is_some());
            // 1 = TTL removed, -1 = no TTL, -2 = no field.
            let allowed: &[i64] = match (seen(self.model(k).get(f), t1, r1), has_ttl) {
                (Seen::Absent, _) => &[-2],
                (Seen::Present, false) => &[-1],
                (Seen::Present, true) => &[1],
                (Seen::Either, _) => &[1, -2],
            };
            if !allowed.contains(&code) {
                self.fail(format!(
                    "[check 2] HPERSIST answered {code} for {f} of private key {key}, expected \
                     one of {allowed:?}; model: {}",
                    self.describe(k, f)
                ));
            }
            match code {
                1 => self.out.private[k].get_mut(f).expect("a field").ttl = None,
                -2 => {
                    self.out.private[k].remove(f);
                }
                _ => {}
            }
        }
    }

    /// Checks a full field/value listing of private key `k` against the model.
    fn check_listing(
        &mut self,
        k: usize,
        pairs: &[(Vec<u8>, Vec<u8>)],
        t1: u64,
        r1: u64,
        how: &str,
    ) {
        let mut got: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (f, v) in pairs {
            if got.insert(text(f), v.clone()).is_some() {
                self.fail(format!("[check 2] {how} returned field {} twice", show(f)));
            }
        }
        let names: BTreeSet<String> = got
            .keys()
            .cloned()
            .chain(self.model(k).keys().cloned())
            .collect();
        for f in names {
            let v = got.get(&f);
            self.observe(k, &f, v.is_some(), v.map(Vec::as_slice), (t1, r1), how);
        }
    }

    fn p_hgetall(&mut self, k: usize) {
        let key = private_key(self.id, k);
        self.what = format!("HGETALL {key}");
        let t1 = now_ms();
        let r = self.one(cmd!["HGETALL", key]);
        let r1 = now_ms();
        let pairs = self.pairs(&r, "HGETALL");
        self.check_listing(k, &pairs, t1, r1, "HGETALL");
    }

    fn p_hmget(&mut self, k: usize) {
        let key = private_key(self.id, k);
        let fields = self.some_fields(4);
        match self.rng.u32(0..3) {
            0 => {
                let mut c = cmd!["HMGET", key];
                c.extend(fields.iter().map(|f| f.as_bytes().to_vec()));
                self.what = fmt_cmd(&c);
                let t1 = now_ms();
                let r = self.one(c);
                let r1 = now_ms();
                let items = match r.items() {
                    Some(items) if items.len() == fields.len() => items.to_vec(),
                    _ => self.fail(format!("HMGET answered {}", fmt_value(&r))),
                };
                for (f, item) in fields.iter().zip(&items) {
                    let v = self.bulk(item, "HMGET");
                    self.observe(k, f, v.is_some(), v.as_deref(), (t1, r1), "HMGET");
                }
            }
            1 => {
                let f = &fields[0];
                self.what = format!("HGET {key} {f}");
                let t1 = now_ms();
                let r = self.one(cmd!["HGET", key, f]);
                let r1 = now_ms();
                let v = self.bulk(&r, "HGET");
                self.observe(k, f, v.is_some(), v.as_deref(), (t1, r1), "HGET");
            }
            _ => {
                let f = &fields[0];
                self.what = format!("HEXISTS {key} {f}");
                let t1 = now_ms();
                let r = self.one(cmd!["HEXISTS", key, f]);
                let r1 = now_ms();
                let n = self.int(&r, "HEXISTS");
                if !(n == 0 || n == 1) {
                    self.fail(format!("HEXISTS answered {n}"));
                }
                self.observe(k, f, n == 1, None, (t1, r1), "HEXISTS");
            }
        }
    }

    fn p_hpttl(&mut self, k: usize) {
        let key = private_key(self.id, k);
        let fields = self.some_fields(4);
        let mut c = cmd!["HPTTL", key, "FIELDS", fields.len()];
        c.extend(fields.iter().map(|f| f.as_bytes().to_vec()));
        self.what = fmt_cmd(&c);
        let t1 = now_ms();
        let r = self.one(c);
        let r1 = now_ms();
        let ttls = self.ints(&r, fields.len(), "HPTTL");
        for (f, ttl) in fields.iter().zip(ttls) {
            let model = self.model(k).get(f).cloned();
            let state = seen(model.as_ref(), t1, r1);
            let has_field = self.model(k).contains_key(f);
            let mut gone = false;
            let problem: Option<String> = match (ttl, model.and_then(|m| m.ttl)) {
                (-2, _) if state == Seen::Present => Some("the field must be there".into()),
                (-2, _) => {
                    gone = true;
                    None
                }
                (_, _) if state == Seen::Absent => Some(if has_field {
                    "[field visible after its deadline]".into()
                } else {
                    "the field is not set".into()
                }),
                (-1, None) => None,
                (-1, Some(_)) => Some("the field has a TTL".into()),
                (ms, None) => Some(format!("the field has no TTL (got {ms})")),
                (ms, Some(t)) => {
                    let most = t.hi as i64 - t1 as i64 + SLACK_MS as i64;
                    let least = t.lo as i64 - r1 as i64 - SLACK_MS as i64;
                    (ms < 0 || ms > t.asked_ms as i64 || ms > most || ms < least).then(|| {
                        format!("expected 0..={} and within [{least}, {most}]", t.asked_ms)
                    })
                }
            };
            if let Some(why) = problem {
                self.fail(format!(
                    "[check 2] HPTTL answered {ttl} for {f} of private key {key} (sent at {t1}, \
                     answered at {r1}): {why}; model: {}",
                    self.describe(k, f)
                ));
            }
            if gone {
                self.out.private[k].remove(f);
            }
        }
    }

    fn p_hscan(&mut self, k: usize) {
        let key = private_key(self.id, k);
        let count = self.rng.usize(1..=6);
        let novalues = self.rng.u32(0..4) == 0;
        self.what = format!(
            "HSCAN {key} (full iteration, COUNT {count}{})",
            if novalues { ", NOVALUES" } else { "" }
        );
        let t_start = now_ms();
        let seen_fields = self.scan_all(&key, count, novalues, false);
        let r_end = now_ms();
        for (f, v) in &seen_fields {
            match self.model(k).get(f) {
                None => self.fail(format!(
                    "[check 2] HSCAN of private key {key} returned {f}, which this thread does \
                     not hold"
                )),
                Some(m) => {
                    if let Some(v) = v {
                        if v != m.value.as_bytes() {
                            self.fail(format!(
                                "[check 2] HSCAN of private key {key} returned {f} = {}; \
                                 model: {}",
                                show(v),
                                self.describe(k, f)
                            ));
                        }
                    }
                }
            }
        }
        // A field there for the whole scan is returned; one gone before it began is not.
        for (f, m) in self.model(k) {
            let state = seen(Some(m), t_start, r_end);
            let got = seen_fields.contains_key(f);
            if state == Seen::Present && !got {
                self.fail(format!(
                    "[check 2] HSCAN of private key {key} (from {t_start} to {r_end}) missed \
                     {f}; model: {}",
                    self.describe(k, f)
                ));
            }
            if state == Seen::Absent && got {
                self.fail(format!(
                    "[check 2: field visible after its deadline] HSCAN of private key {key} \
                     (from {t_start} to {r_end}) returned {f}; model: {}",
                    self.describe(k, f)
                ));
            }
        }
    }

    /// Every field (and value unless NOVALUES) of a full HSCAN iteration. With `stable` (a
    /// private key, which nobody else writes), duplicates (which HSCAN allows) must agree on
    /// the value.
    fn scan_all(
        &mut self,
        key: &str,
        count: usize,
        novalues: bool,
        stable: bool,
    ) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut out: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        let mut cursor = b"0".to_vec();
        for _ in 0..10_000 {
            let mut c = cmd!["HSCAN", key];
            c.push(cursor.clone());
            c.extend(cmd!["COUNT", count]);
            if novalues {
                c.extend(cmd!["NOVALUES"]);
            }
            let r = self.one(c);
            let (next, items) = match r.items() {
                Some([next, items]) => (
                    self.bulk(next, "HSCAN cursor"),
                    self.list(items, "HSCAN items"),
                ),
                _ => self.fail(format!("HSCAN answered {}", fmt_value(&r))),
            };
            let Some(next) = next else {
                self.fail(format!("HSCAN answered a nil cursor: {}", fmt_value(&r)));
            };
            if novalues {
                for f in items {
                    out.insert(text(&f), None);
                }
            } else {
                if !items.len().is_multiple_of(2) {
                    self.fail(format!("HSCAN returned an odd list: {}", fmt_value(&r)));
                }
                for p in items.chunks(2) {
                    let f = text(&p[0]);
                    if let (true, Some(Some(old))) = (stable, out.get(&f)) {
                        if *old != p[1] {
                            self.fail(format!(
                                "HSCAN {key} returned {f} twice with different values {} and {}",
                                show(old),
                                show(&p[1])
                            ));
                        }
                    }
                    out.insert(f, Some(p[1].clone()));
                }
            }
            if next == b"0" {
                return out;
            }
            cursor = next;
        }
        self.fail(format!("HSCAN {key} did not finish in 10000 calls"));
    }

    fn p_snapshot(&mut self, k: usize) {
        let key = private_key(self.id, k);
        self.what = format!("snapshot of private key {key}");
        let t1 = now_ms();
        let pairs = self.snapshot(&key);
        let r1 = now_ms();
        self.check_listing(k, &pairs, t1, r1, "HGETALL in MULTI/EXEC");
    }

    fn p_exists(&mut self, k: usize) {
        let key = private_key(self.id, k);
        self.what = format!("EXISTS {key}");
        let t1 = now_ms();
        let r = self.one(cmd!["EXISTS", &key]);
        let r1 = now_ms();
        let n = self.int(&r, "EXISTS");
        let states: Vec<Seen> = self
            .model(k)
            .values()
            .map(|f| seen(Some(f), t1, r1))
            .collect();
        let must = states.contains(&Seen::Present);
        let may = must || states.contains(&Seen::Either);
        let ok = match n {
            1 => may,
            0 => !must,
            _ => false,
        };
        if !ok {
            let model: Vec<String> = self
                .model(k)
                .keys()
                .map(|f| format!("{f}: {}", self.describe(k, f)))
                .collect();
            let tag = if n == 1 {
                "[check 1: empty hash visible] every field this thread set has passed its \
                 deadline, yet EXISTS says the key exists"
            } else {
                "[check 2] a field that must be there is missing"
            };
            self.fail(format!(
                "{tag}: EXISTS {key} = {n} (sent at {t1}, answered at {r1}); model: {model:?}"
            ));
        }
        if n == 0 {
            let gone: Vec<String> = self.model(k).keys().cloned().collect();
            self.out.field_expired_seen += gone.len() as u64;
            self.out.private[k].clear();
        }
    }

    // ---- check 3: counters -----------------------------------------------------------------

    fn hincrby(&mut self) {
        let n = if self.rng.u32(0..4) == 0 {
            self.rng.usize(2..=8)
        } else {
            1
        };
        let incs: Vec<(usize, i64)> = (0..n)
            .map(|_| (self.rng.usize(0..COUNTERS), self.rng.i64(-5..=20)))
            .collect();
        let cmds: Vec<Cmd> = incs
            .iter()
            .map(|&(i, d)| cmd!["HINCRBY", counter_key(i), "n", d])
            .collect();
        self.what = format!("{n} pipelined HINCRBY");
        let replies = self.pipeline(&cmds);
        for ((i, d), r) in incs.into_iter().zip(&replies) {
            self.int(r, "HINCRBY");
            self.out.counter_sums[i] += d;
            self.out.counter_acks[i] += 1;
        }
    }

    // ---- check 4: the contended ledger -----------------------------------------------------

    fn ledger_txn(&mut self) {
        let shared = self.any_shared();
        let watch_shared = self.rng.u32(0..4) == 0;
        // Writing a watched key on this very connection must abort the EXEC.
        let own_conflict = watch_shared && self.rng.u32(0..3) == 0;
        self.what = format!(
            "ledger transaction{}{}",
            if watch_shared {
                format!(" also watching {shared}")
            } else {
                String::new()
            },
            if own_conflict {
                format!(", after writing {shared} itself")
            } else {
                String::new()
            }
        );
        if watch_shared {
            self.watch(&[LEDGER, &shared]);
        } else {
            self.watch(&[LEDGER]);
        }
        let r = self.one(cmd!["HGET", LEDGER, "v"]);
        let v = match self.bulk(&r, "HGET ledger v") {
            None => 0,
            Some(b) => text(&b)
                .parse::<i64>()
                .unwrap_or_else(|_| self.fail(format!("ledger v is {}", show(&b)))),
        };
        if own_conflict {
            let c = cmd!["HSET", &shared, "own", self.op];
            let r = self.one(c.clone());
            self.ok_reply(&c, &r);
        } else if self.rng.bool() {
            // Unrelated work between WATCH and EXEC (other threads write meanwhile too).
            let what = std::mem::take(&mut self.what);
            self.shared_write();
            self.what = format!("{what}, after {}", self.what);
        }
        let counter = self.rng.usize(0..COUNTERS);
        let d = self.rng.i64(-5..=20);
        let val = self.value();
        let f = field_name(self.rng.usize(0..FIELDS));
        let Some(r) = self.exec(&[
            cmd!["HSET", LEDGER, "v", v + 1],
            cmd!["HINCRBY", counter_key(counter), "n", d],
            cmd!["HSET", &shared, f, val],
        ]) else {
            self.out.ledger_aborts += 1;
            if own_conflict {
                self.out.own_conflict_aborts += 1;
            }
            return;
        };
        if own_conflict {
            self.fail(format!(
                "[check 4] EXEC applied although this connection wrote the watched key {shared} \
                 after WATCH: {}",
                fmt_value(&Value::Array(r))
            ));
        }
        let created = self.int(&r[0], "HSET ledger v");
        if created != i64::from(v == 0) {
            self.fail(format!(
                "[check 4] EXEC applied after the ledger changed: WATCH read v = {v}, but HSET \
                 ledger v inside EXEC answered {created}"
            ));
        }
        self.int(&r[1], "HINCRBY in EXEC");
        self.int(&r[2], "HSET in EXEC");
        self.out.counter_sums[counter] += d;
        self.out.counter_acks[counter] += 1;
        self.out.ledger_versions.push(v + 1);
    }

    // ---- the shared keys: random writes, transactions, scans -------------------------------

    fn shared_txn(&mut self) {
        let a = self.any_shared();
        let mut b = self.any_shared();
        while b == a {
            b = self.any_shared();
        }
        let fi = self.rng.usize(0..FIELDS);
        let f = field_name(fi);
        let g = field_name((fi + self.rng.usize(1..FIELDS)) % FIELDS);
        let x = self.value();
        let watched = self.rng.bool();
        if watched {
            self.watch(&[&a, &b]);
            let r = self.one(cmd!["HGET", &a, &f]);
            self.bulk(&r, "HGET");
        }
        let ms = self.rng.u64(1..=MAX_TTL_MS);
        let variant = self.rng.u32(0..3);
        let cmds = match variant {
            0 => vec![
                cmd!["HSET", &a, &f, &x],
                cmd!["HPEXPIRE", &a, ms, "FIELDS", 1, &g],
                cmd!["HGET", &a, &f],
                cmd!["HLEN", &a],
            ],
            1 => vec![
                cmd!["HSET", &a, &f, &x],
                cmd!["RENAME", &a, &b],
                cmd!["EXISTS", &a],
                cmd!["HGET", &b, &f],
                cmd!["HLEN", &b],
            ],
            _ => vec![
                cmd!["HDEL", &a, &f, &g],
                cmd!["DEL", &b],
                cmd!["EXISTS", &b],
                cmd!["HSET", &b, &f, &x],
                cmd!["HEXISTS", &b, &f],
            ],
        };
        self.what = format!(
            "{}MULTI {} EXEC",
            if watched {
                format!("WATCH {a} {b}; ")
            } else {
                String::new()
            },
            cmds.iter().map(fmt_cmd).collect::<Vec<_>>().join("; ")
        );
        let r = self.exec(&cmds);
        let r1 = now_ms();
        let Some(r) = r else {
            if !watched {
                self.fail("EXEC without WATCH aborted".into());
            }
            self.out.txn_aborted += 1;
            return;
        };
        self.out.txn_applied += 1;
        if variant == 0 {
            self.out.last_deadline = self.out.last_deadline.max(r1 + ms);
        }
        let all = fmt_value(&Value::Array(r.clone()));
        let expect = |ok: bool, what: &str| {
            if !ok {
                self.fail(format!(
                    "[atomicity] inside one EXEC, {what}; EXEC answered {all}"
                ));
            }
        };
        let xb = Value::Bulk(x.clone().into_bytes());
        match variant {
            0 => {
                expect(r[2] == xb, "HGET after HSET does not return the value");
                expect(
                    matches!(r[3], Value::Int(n) if n >= 1),
                    "HLEN after HSET is < 1",
                );
            }
            1 => {
                expect(
                    r[1] == Value::Simple("OK".into()),
                    "RENAME of a key just written failed",
                );
                expect(r[2] == Value::Int(0), "the renamed key still exists");
                expect(r[3] == xb, "the field did not move with RENAME");
                expect(
                    matches!(r[4], Value::Int(n) if n >= 1),
                    "HLEN of the target is < 1",
                );
            }
            _ => {
                expect(r[2] == Value::Int(0), "EXISTS after DEL is not 0");
                expect(
                    r[3] == Value::Int(1),
                    "HSET after DEL did not create the field",
                );
                expect(r[4] == Value::Int(1), "HEXISTS after HSET is not 1");
            }
        }
    }

    fn hscan_shared(&mut self) {
        let key = self.any_shared();
        let count = self.rng.usize(1..=10);
        let novalues = self.rng.u32(0..4) == 0;
        self.what = format!("HSCAN {key} full iteration, COUNT {count}");
        self.scan_all(&key, count, novalues, false);
    }

    fn shared_write(&mut self) {
        let a = self.any_shared();
        let c = match self.rng.u32(0..100) {
            0..=29 => {
                let fields = self.some_fields(4);
                let mut c = cmd!["HSET", &a];
                for f in fields {
                    let v = self.value();
                    c.extend(cmd![f, v]);
                }
                c
            }
            30..=39 => {
                let mut c = cmd!["HDEL", &a];
                c.extend(self.some_fields(3).into_iter().map(String::into_bytes));
                c
            }
            40..=61 => {
                let ms = self.rng.u64(1..=MAX_TTL_MS);
                let mut c = cmd!["HPEXPIRE", &a, ms];
                match self.rng.u32(0..8) {
                    0 => c.extend(cmd!["NX"]),
                    1 => c.extend(cmd!["XX"]),
                    2 => c.extend(cmd!["GT"]),
                    3 => c.extend(cmd!["LT"]),
                    _ => {}
                }
                let fields = self.some_fields(4);
                c.extend(cmd!["FIELDS", fields.len()]);
                c.extend(fields.into_iter().map(String::into_bytes));
                c
            }
            62..=65 => {
                let fields = self.some_fields(2);
                let mut c = cmd!["HEXPIRE", &a, 0, "FIELDS", fields.len()];
                c.extend(fields.into_iter().map(String::into_bytes));
                c
            }
            66..=72 => {
                let fields = self.some_fields(3);
                let mut c = cmd!["HPERSIST", &a, "FIELDS", fields.len()];
                c.extend(fields.into_iter().map(String::into_bytes));
                c
            }
            73..=85 => {
                let b = self.any_shared();
                cmd!["RENAME", &a, b]
            }
            86..=89 => cmd!["DEL", &a],
            90..=94 => {
                let mut c = cmd!["HMGET", &a];
                c.extend(self.some_fields(4).into_iter().map(String::into_bytes));
                c
            }
            _ => cmd!["HLEN", &a],
        };
        self.what = fmt_cmd(&c);
        let r = self.one(c.clone());
        if c[0] == b"HPEXPIRE" {
            let ms: u64 = text(&c[2]).parse().expect("a TTL");
            self.out.last_deadline = self.out.last_deadline.max(now_ms() + ms);
        }
        if c[0] == b"RENAME" && r == Value::Error("ERR no such key".into()) {
            return;
        }
        self.ok_reply(&c, &r);
    }
}

fn stress(resp3: bool, secs: f64) {
    let base_seed = env_seed();
    let proto = if resp3 { "RESP3" } else { "RESP2" };
    let srv = TestServer::builder()
        .active_expire(true)
        .config(|c| {
            c.hz = 100;
            c.sweeper_cpu_percent = 50;
            c.hash_max_listpack_entries = LISTPACK_ENTRIES;
        })
        .start();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|id| {
            let worker = Worker::new(&srv, id, base_seed, resp3);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("stress-{proto}-{id}"))
                .spawn(move || {
                    let _guard = StopOnPanic(Arc::clone(&stop));
                    worker.run(deadline, &stop)
                })
                .expect("spawn a client thread")
        })
        .collect();
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for (id, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(o) => outcomes.push(o),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(non-string panic)".into());
                failures.push(format!("thread {id}: {msg}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{proto} stress (base seed {base_seed:#x}) failed:\n{}",
        failures.join("\n")
    );
    let ran = started.elapsed();
    let ctx = format!("{proto} stress, base seed {base_seed:#x}");

    // ---- check 5a: the server still answers --------------------------------------------------
    let mut c = srv.client();
    if resp3 {
        c.hello3();
    }
    let pong = c.cmd(&["PING"]);
    assert!(
        pong == b"+PONG\r\n",
        "[check 5] PING after the run answered {} ({ctx})",
        show(&pong)
    );
    let get = |c: &mut Client, args: &[&str]| decode(&c.cmd(args));

    // ---- check 3: counters ---------------------------------------------------------------------
    for i in 0..COUNTERS {
        let sum: i64 = outcomes.iter().map(|o| o.counter_sums[i]).sum();
        let acks: u64 = outcomes.iter().map(|o| o.counter_acks[i]).sum();
        let key = counter_key(i);
        let got = get(&mut c, &["HGET", &key, "n"]);
        let want = if acks == 0 {
            Value::Null
        } else {
            Value::Bulk(sum.to_string().into_bytes())
        };
        assert!(
            got == want,
            "[check 3: lost HINCRBY] HGET {key} n = {}, but {acks} acknowledged increments sum \
             to {sum} ({ctx})",
            fmt_value(&got)
        );
    }

    // ---- check 4: the ledger -------------------------------------------------------------------
    let mut versions: Vec<i64> = outcomes
        .iter()
        .flat_map(|o| o.ledger_versions.iter().copied())
        .collect();
    versions.sort_unstable();
    let applied = versions.len();
    let got = get(&mut c, &["HGET", LEDGER, "v"]);
    let want = if applied == 0 {
        Value::Null
    } else {
        Value::Bulk(applied.to_string().into_bytes())
    };
    assert!(
        got == want,
        "[check 4] HGET ledger v = {}, but {applied} EXECs were applied ({ctx})",
        fmt_value(&got)
    );
    let expected: Vec<i64> = (1..=applied as i64).collect();
    if versions != expected {
        let dup: Vec<_> = versions
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        panic!(
            "[check 4] the applied EXECs wrote versions other than 1..={applied}: duplicated \
             {dup:?} ({ctx})"
        );
    }

    // ---- check 5b: after every deadline, only persistent fields remain -------------------------
    let last_deadline = outcomes.iter().map(|o| o.last_deadline).max().unwrap_or(0);
    while now_ms() <= last_deadline + SLACK_MS {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut models: BTreeMap<String, BTreeMap<String, Field>> = BTreeMap::new();
    for (t, o) in outcomes.iter().enumerate() {
        for (i, m) in o.private.iter().enumerate() {
            models.insert(private_key(t, i), m.clone());
        }
    }
    let mut live_keys = BTreeSet::new();
    for key in universe() {
        let pairs = match get(&mut c, &["HGETALL", &key]) {
            Value::Array(items) => items
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect::<Vec<_>>(),
            Value::Map(m) => m,
            other => panic!("HGETALL {key} answered {} ({ctx})", fmt_value(&other)),
        };
        if pairs.is_empty() {
            continue;
        }
        live_keys.insert(key.clone());
        let mut ttl_cmd: Vec<Vec<u8>> = cmd!["HPTTL", &key, "FIELDS", pairs.len()];
        ttl_cmd.extend(pairs.iter().map(|(f, _)| f.as_bytes().unwrap().to_vec()));
        let ttls = decode(&c.cmd(&ttl_cmd));
        let all_persistent = ttls
            .items()
            .is_some_and(|t| t.len() == pairs.len() && t.iter().all(|v| *v == Value::Int(-1)));
        assert!(
            all_persistent,
            "[check 5] after every deadline passed, {key} still shows fields with a TTL: \
             HPTTL {} ({ctx})",
            fmt_value(&ttls)
        );
        if let Some(model) = models.get(&key) {
            let want: BTreeMap<String, String> = model
                .iter()
                .filter(|(_, f)| f.ttl.is_none())
                .map(|(n, f)| (n.clone(), f.value.clone()))
                .collect();
            let got: BTreeMap<String, String> = pairs
                .iter()
                .map(|(f, v)| (text(f.as_bytes().unwrap()), text(v.as_bytes().unwrap())))
                .collect();
            assert!(
                got == want,
                "[check 2] at the end, private key {key} holds {got:?}, the model's persistent \
                 fields are {want:?} ({ctx})"
            );
        }
    }
    for (key, model) in &models {
        if !live_keys.contains(key) {
            assert!(
                model.values().all(|f| f.ttl.is_some()),
                "[check 2] at the end, private key {key} is empty but the model holds \
                 persistent fields {model:?} ({ctx})"
            );
        }
    }

    // ---- check 5c: the sweeper reclaims every emptied key ------------------------------------
    let mut dbsize = Value::Null;
    let want = Value::Int(live_keys.len() as i64);
    let reclaimed = common::wait_until(RECLAIM_TIMEOUT, || {
        dbsize = get(&mut c, &["DBSIZE"]);
        dbsize == want
    });
    if !reclaimed {
        let existing: Vec<String> = universe()
            .into_iter()
            .filter(|k| get(&mut c, &["EXISTS", k]) == Value::Int(1))
            .collect();
        panic!(
            "[check 5] the sweeper did not reclaim within {RECLAIM_TIMEOUT:?}: DBSIZE = {}, but \
             only {} keys have a field ({live_keys:?}); EXISTS says these exist: {existing:?} \
             ({ctx})",
            fmt_value(&dbsize),
            live_keys.len()
        );
    }
    for key in universe() {
        let e = get(&mut c, &["EXISTS", &key]);
        let want = Value::Int(i64::from(live_keys.contains(&key)));
        assert!(
            e == want,
            "[check 1/5] after the sweep, EXISTS {key} = {} but the key {} fields ({ctx})",
            fmt_value(&e),
            if live_keys.contains(&key) {
                "has"
            } else {
                "has no"
            }
        );
    }
    let pong = c.cmd(&["PING"]);
    assert!(
        pong == b"+PONG\r\n",
        "[check 5] final PING answered {} ({ctx})",
        show(&pong)
    );

    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let mut summary = String::new();
    let _ = write!(
        summary,
        "{ctx}: {} threads, {} ops in {:.2?}; {} snapshots; ledger {applied} applied / {} aborted \
         ({} by own write); other transactions {} applied / {} aborted; {} fields seen expired; \
         {} keys left",
        THREADS,
        sum(|o| o.ops),
        ran,
        sum(|o| o.snapshots),
        sum(|o| o.ledger_aborts),
        sum(|o| o.own_conflict_aborts),
        sum(|o| o.txn_applied),
        sum(|o| o.txn_aborted),
        sum(|o| o.field_expired_seen),
        live_keys.len()
    );
    eprintln!("{summary}");
}

#[test]
fn stress_resp2() {
    stress(false, env_secs());
}

#[test]
fn stress_resp3() {
    stress(true, env_secs() / 2.0);
}
