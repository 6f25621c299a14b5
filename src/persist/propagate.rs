//! Effects as commands: the form in which the append-only file (and, next, the
//! replication stream) carries what changed.
//!
//! Each effect batch becomes the commands that reproduce its post-state exactly, whenever
//! they are replayed: relative TTLs are already absolute (`HPEXPIREAT`, `PEXPIREAT`), a
//! HINCRBYFLOAT is the resulting value, and every field reclaimed by expiry is an `HDEL`.
//! Only commands Redis 7.4 understands are written, so Redis can load what hashd logs:
//!
//! | effect | command |
//! |---|---|
//! | field set (+ its deadline) | `HSET key f v` (+ `HPEXPIREAT key t FIELDS 1 f`) |
//! | field TTL set / removed | `HPEXPIREAT key t FIELDS 1 f` / `HPERSIST key FIELDS 1 f` |
//! | field deleted (by a command or expiry) | `HDEL key f` |
//! | key TTL set / removed | `PEXPIREAT key t` / `PERSIST key` |
//! | key deleted (whole) | `DEL key` (a hash emptied by its `HDEL`s needs nothing more) |
//! | renamed | `RENAME from to` |
//! | restored | `DEL key`, `HSET …`, `HPEXPIREAT …`, `PEXPIREAT …` |
//! | flushed / swapped | `FLUSHDB` / `SWAPDB a b` |
//!
//! Consecutive field writes of one key with the same outcome are one command (`HSET key
//! f1 v1 f2 v2`, `HDEL key f1 f2`, `HPEXPIREAT key t FIELDS 2 f1 f2`). `SELECT` is written
//! whenever the database changes. A transaction (one batch of several commands that
//! changed something) is wrapped in `MULTI`/`EXEC`, so a replay applies it whole or not at
//! all, as Redis does.

use super::aof::encode_command;
use crate::keyspace::{Batch, Change, Effect};

/// Turns batches into commands, remembering the database the stream last selected.
#[derive(Debug, Default)]
pub struct Propagator {
    /// The database the last written command ran in (`None`: nothing selected yet).
    db: Option<usize>,
}

/// A command being gathered: its name, key and repeated arguments.
struct Pending<'a> {
    db: usize,
    kind: Kind,
    key: &'a [u8],
    /// HPEXPIREAT's deadline.
    deadline: u64,
    args: Vec<&'a [u8]>,
    /// For an HSET: the deadlines its fields got, `(deadline, field)` in order, written
    /// right after it.
    ttls: Vec<(u64, &'a [u8])>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hset,
    Hdel,
    HexpireAt,
    Hpersist,
}

impl Propagator {
    pub fn new() -> Self {
        Propagator::default()
    }

    /// Forgets the selected database: the next command writes `SELECT` (a new file).
    pub fn reset(&mut self) {
        self.db = None;
    }

    /// Appends the commands for `batch` to `out`.
    pub fn batch(&mut self, batch: &Batch, out: &mut Vec<u8>) {
        let wrap = batch.commands().count() > 1;
        if wrap {
            encode_command(out, &[b"MULTI"]);
        }
        for (_, effects) in batch.commands() {
            self.effects(effects, out);
        }
        if wrap {
            encode_command(out, &[b"EXEC"]);
        }
    }

    fn effects(&mut self, effects: &[Effect], out: &mut Vec<u8>) {
        let mut pending: Option<Pending<'_>> = None;
        for e in effects {
            let key: &[u8] = &e.key;
            match &e.change {
                Change::KeyCreated | Change::KeyDeleted { emptied: true } => continue,
                Change::FieldSet {
                    field,
                    value,
                    deadline,
                    ..
                } => {
                    let p = self.gather(&mut pending, out, e.db, Kind::Hset, key, 0);
                    p.args.push(field);
                    p.args.push(value);
                    if let Some(t) = deadline {
                        p.ttls.push((*t, field));
                    }
                    continue;
                }
                Change::FieldTtl {
                    field,
                    deadline: Some(t),
                } => {
                    let p = self.gather(&mut pending, out, e.db, Kind::HexpireAt, key, *t);
                    p.args.push(field);
                    continue;
                }
                Change::FieldTtl {
                    field,
                    deadline: None,
                } => {
                    let p = self.gather(&mut pending, out, e.db, Kind::Hpersist, key, 0);
                    p.args.push(field);
                    continue;
                }
                Change::FieldDeleted { field } => {
                    let p = self.gather(&mut pending, out, e.db, Kind::Hdel, key, 0);
                    p.args.push(field);
                    continue;
                }
                _ => {}
            }
            // Everything else is a command of its own.
            self.flush(&mut pending, out);
            self.select(e.db, out);
            match &e.change {
                Change::KeyTtl { deadline: Some(t) } => {
                    let t = itoa::Buffer::new().format(*t).to_owned();
                    encode_command(out, &[b"PEXPIREAT", key, t.as_bytes()]);
                }
                Change::KeyTtl { deadline: None } => encode_command(out, &[b"PERSIST", key]),
                Change::KeyDeleted { .. } => encode_command(out, &[b"DEL", key]),
                Change::Renamed { to, .. } => encode_command(out, &[b"RENAME", key, to]),
                Change::Restored {
                    fields, deadline, ..
                } => {
                    encode_command(out, &[b"DEL", key]);
                    let mut argv: Vec<&[u8]> = vec![b"HSET", key];
                    for (f, v, _) in fields {
                        argv.push(f);
                        argv.push(v);
                    }
                    encode_command(out, &argv);
                    for (f, _, t) in fields {
                        if let Some(t) = t {
                            write_hexpireat(out, key, *t, &[f]);
                        }
                    }
                    if let Some(t) = deadline {
                        let t = itoa::Buffer::new().format(*t).to_owned();
                        encode_command(out, &[b"PEXPIREAT", key, t.as_bytes()]);
                    }
                }
                Change::Flushed => encode_command(out, &[b"FLUSHDB"]),
                Change::Swapped { with } => {
                    let a = itoa::Buffer::new().format(e.db).to_owned();
                    let b = itoa::Buffer::new().format(*with).to_owned();
                    encode_command(out, &[b"SWAPDB", a.as_bytes(), b.as_bytes()]);
                }
                Change::KeyCreated
                | Change::FieldSet { .. }
                | Change::FieldTtl { .. }
                | Change::FieldDeleted { .. } => {}
            }
        }
        self.flush(&mut pending, out);
    }

    /// The pending command, if it is the same command on the same key (and deadline);
    /// otherwise the pending one is written and this one started.
    fn gather<'a, 'p>(
        &mut self,
        pending: &'p mut Option<Pending<'a>>,
        out: &mut Vec<u8>,
        db: usize,
        kind: Kind,
        key: &'a [u8],
        deadline: u64,
    ) -> &'p mut Pending<'a> {
        let same = pending.as_ref().is_some_and(|p| {
            p.db == db && p.kind == kind && p.key == key && p.deadline == deadline
        });
        if !same {
            self.flush(pending, out);
        }
        pending.get_or_insert_with(|| Pending {
            db,
            kind,
            key,
            deadline,
            args: Vec::new(),
            ttls: Vec::new(),
        })
    }

    fn flush(&mut self, pending: &mut Option<Pending<'_>>, out: &mut Vec<u8>) {
        let Some(p) = pending.take() else {
            return;
        };
        self.select(p.db, out);
        match p.kind {
            Kind::Hset => {
                let mut argv: Vec<&[u8]> = Vec::with_capacity(2 + p.args.len());
                argv.push(b"HSET");
                argv.push(p.key);
                argv.extend(p.args);
                encode_command(out, &argv);
                // Then the deadlines, one HPEXPIREAT per run of fields sharing one.
                let mut i = 0;
                while i < p.ttls.len() {
                    let t = p.ttls[i].0;
                    let run: Vec<&[u8]> = p.ttls[i..]
                        .iter()
                        .take_while(|(d, _)| *d == t)
                        .map(|(_, f)| *f)
                        .collect();
                    i += run.len();
                    write_hexpireat(out, p.key, t, &run);
                }
            }
            Kind::Hdel => {
                let mut argv: Vec<&[u8]> = vec![b"HDEL", p.key];
                argv.extend(p.args);
                encode_command(out, &argv);
            }
            Kind::HexpireAt => write_hexpireat(out, p.key, p.deadline, &p.args),
            Kind::Hpersist => {
                let n = itoa::Buffer::new().format(p.args.len()).to_owned();
                let mut argv: Vec<&[u8]> = vec![b"HPERSIST", p.key, b"FIELDS", n.as_bytes()];
                argv.extend(p.args);
                encode_command(out, &argv);
            }
        }
    }

    fn select(&mut self, db: usize, out: &mut Vec<u8>) {
        if self.db != Some(db) {
            let n = itoa::Buffer::new().format(db).to_owned();
            encode_command(out, &[b"SELECT", n.as_bytes()]);
            self.db = Some(db);
        }
    }
}

fn write_hexpireat(out: &mut Vec<u8>, key: &[u8], t: u64, fields: &[&[u8]]) {
    let t = itoa::Buffer::new().format(t).to_owned();
    let n = itoa::Buffer::new().format(fields.len()).to_owned();
    let mut argv: Vec<&[u8]> = vec![b"HPEXPIREAT", key, t.as_bytes(), b"FIELDS", n.as_bytes()];
    argv.extend_from_slice(fields);
    encode_command(out, &argv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientState;
    use crate::clock::Clock;
    use crate::cmd::testing::{TestEnv, T0_MS};
    use crate::config::Config;
    use crate::context::ServerContext;
    use crate::keyspace::LockPlan;
    use std::collections::BTreeMap;

    type Dataset =
        BTreeMap<(usize, Vec<u8>), (Option<u64>, BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>)>;

    fn recording_env() -> TestEnv {
        let config = Config {
            save: String::new(),
            ..Config::default()
        };
        TestEnv {
            server: ServerContext::with_recorder(&config, Clock::manual(T0_MS)),
            client: ClientState::for_tests(),
        }
    }

    /// Every key of every database with its TTL and fields, leaving out what is due at
    /// `now` or before. (A deadline equal to now is still live, but a replay at that very
    /// millisecond deletes it, as Redis's own replay would: `HPEXPIREAT` with a time that is
    /// not in the future deletes. Real replays come later; the comparison skips that edge.)
    fn dataset(env: &TestEnv) -> Dataset {
        let now = env.now_ms();
        let locked = env.server.keyspace.lock(&LockPlan::All);
        let mut out = Dataset::new();
        let live = |t: Option<u64>| t.is_none_or(|t| t > now);
        for db in 0..env.server.keyspace.databases() {
            locked.for_each_live(db, now, |key, ttl, value| {
                let fields: BTreeMap<_, _> = value
                    .iter()
                    .filter(|f| live(f.expire_at))
                    .map(|f| (f.field.to_vec(), (f.value.to_vec(), f.expire_at)))
                    .collect();
                if live(ttl) && !fields.is_empty() {
                    out.insert((db, key.to_vec()), (ttl, fields));
                }
            });
        }
        out
    }

    /// Splits a stream of RESP arrays of bulk strings into argument lists.
    fn commands(mut s: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut cmds = Vec::new();
        let line = |s: &mut &[u8]| -> Vec<u8> {
            let end = s.windows(2).position(|w| w == b"\r\n").unwrap();
            let l = s[..end].to_vec();
            *s = &s[end + 2..];
            l
        };
        while !s.is_empty() {
            let head = line(&mut s);
            let n: usize = std::str::from_utf8(&head[1..]).unwrap().parse().unwrap();
            let mut argv = Vec::new();
            for _ in 0..n {
                let h = line(&mut s);
                let len: usize = std::str::from_utf8(&h[1..]).unwrap().parse().unwrap();
                argv.push(s[..len].to_vec());
                s = &s[len + 2..];
            }
            cmds.push(argv);
        }
        cmds
    }

    /// Runs `steps` on a recording server, turns every published batch into commands, replays
    /// them on a fresh server at the same final time, and compares the datasets.
    fn replays_exactly(steps: &[&str]) -> Vec<Vec<Vec<u8>>> {
        let mut env = recording_env();
        let mut stream = Vec::new();
        let mut p = Propagator::new();
        for step in steps {
            if let Some(ms) = step.strip_prefix('+') {
                env.advance_ms(ms.parse().unwrap());
            } else if *step == "sweep" {
                crate::sweeper::sweep_cycle(&env.server, std::time::Duration::from_secs(60));
            } else {
                env.run(step);
            }
            for b in env.server.recorder.as_ref().unwrap().take() {
                p.batch(&b, &mut stream);
            }
        }
        let cmds = commands(&stream);
        let mut replay = recording_env();
        replay.advance_ms(env.now_ms() - T0_MS);
        replay.client.replaying = true;
        for argv in &cmds {
            let out = replay.run_args(argv);
            assert!(
                !out.starts_with(b"-"),
                "replaying {:?}: {}",
                argv.iter()
                    .map(|a| String::from_utf8_lossy(a))
                    .collect::<Vec<_>>(),
                String::from_utf8_lossy(&out)
            );
        }
        assert_eq!(dataset(&replay), dataset(&env), "steps {steps:?}");
        cmds
    }

    fn text(cmds: &[Vec<Vec<u8>>]) -> Vec<String> {
        cmds.iter()
            .map(|a| {
                a.iter()
                    .map(|x| String::from_utf8_lossy(x).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn commands_in_redis_7_4_forms() {
        let t = |ms: u64| (T0_MS + ms).to_string();
        let cmds = replays_exactly(&[
            "HSET h a 1 b 2",
            "HEXPIRE h 100 FIELDS 2 a nosuch",
            "HINCRBYFLOAT h a 0.5",
            "HPERSIST h FIELDS 1 a",
            "HPEXPIRE h 0 FIELDS 1 b",
            "SELECT 2",
            "HSETEX s PX 500 FIELDS 2 x 1 y 2",
            "PEXPIRE s 9000",
            "PERSIST s",
            "RENAME s s2",
        ]);
        assert_eq!(
            text(&cmds),
            [
                "SELECT 0".to_string(),
                "HSET h a 1 b 2".into(),
                format!("HPEXPIREAT h {} FIELDS 1 a", t(100_000)),
                "HSET h a 1.5".into(),
                format!("HPEXPIREAT h {} FIELDS 1 a", t(100_000)),
                "HPERSIST h FIELDS 1 a".into(),
                "HDEL h b".into(),
                "SELECT 2".into(),
                "HSET s x 1 y 2".into(),
                format!("HPEXPIREAT s {} FIELDS 2 x y", t(500)),
                format!("PEXPIREAT s {}", t(9000)),
                "PERSIST s".into(),
                "RENAME s s2".into(),
            ]
        );
    }

    #[test]
    fn expiry_transactions_and_whole_database_changes_replay_exactly() {
        let cmds = replays_exactly(&[
            "HSET a f 1 g 2 h 3",
            "HPEXPIRE a 10 FIELDS 2 f g",
            "HSET b f 1",
            "PEXPIRE b 10",
            "+11",
            "HGET a f",
            "sweep",
            "MULTI",
            "HSET c x 1",
            "HDEL a h",
            "HGET c x",
            "EXEC",
            "HGETDEL c FIELDS 1 x",
            "HSET d f 1",
            "HGETEX d PX 5000 FIELDS 1 f",
            "SELECT 1",
            "HSET e f 1",
            "SWAPDB 0 1",
            "FLUSHDB",
            "HSET z f 1",
            "HSETEX z PXAT 1 FIELDS 1 q 1",
        ]);
        let text = text(&cmds);
        // The reclaimed fields are HDELs (in the hash's order: g was given the same
        // deadline after f, so it comes first), the expired key a DEL, the transaction whole.
        assert!(text.contains(&"HDEL a g f".to_string()), "{text:?}");
        assert!(text.contains(&"DEL b".to_string()), "{text:?}");
        let multi = text.iter().position(|c| c == "MULTI").expect("MULTI");
        assert_eq!(text[multi + 1..multi + 3], ["HSET c x 1", "HDEL a h"]);
        assert_eq!(text[multi + 3], "EXEC");
    }

    #[test]
    fn random_operations_replay_exactly() {
        for seed in 0..30u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let keys = ["k1", "k2", "k3"];
            let fields = ["a", "b", "c", "d"];
            let mut steps: Vec<String> = Vec::new();
            for _ in 0..60 {
                let k = keys[rng.usize(..keys.len())];
                let f = fields[rng.usize(..fields.len())];
                let g = fields[rng.usize(..fields.len())];
                steps.push(match rng.u32(..14) {
                    0 => format!("HSET {k} {f} {} {g} x", rng.u32(..100)),
                    1 => format!("HDEL {k} {f}"),
                    2 => format!("HPEXPIRE {k} {} FIELDS 2 {f} {g}", rng.u32(..40)),
                    3 => format!("HPERSIST {k} FIELDS 1 {f}"),
                    4 => format!("HINCRBY {k} n {}", rng.i32(-5..5)),
                    5 => format!("HINCRBYFLOAT {k} r 0.25"),
                    6 => format!("PEXPIRE {k} {}", rng.u32(1..60)),
                    7 => format!("RENAME {k} {}", keys[rng.usize(..keys.len())]),
                    8 => format!("HGET {k} {f}"),
                    9 => format!("+{}", rng.u32(..25)),
                    10 => "sweep".into(),
                    11 => format!("HSETEX {k} PX {} FIELDS 1 {f} v", rng.u32(1..50)),
                    12 => format!("HGETDEL {k} FIELDS 1 {f}"),
                    _ => format!("DEL {k}"),
                });
            }
            let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
            replays_exactly(&refs);
        }
    }
}
