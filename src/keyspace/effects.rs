//! The effect record: what each write changed, as data, in the order it happened.
//!
//! Storage records every change here — the write handles ([`super::DbView`],
//! [`super::HashMut`]) and the shard's sweep do, never the commands — so no command can
//! forget to report one. A record is in *post-state* form with absolute unix-ms deadlines:
//! a field set carries its resulting value and deadline, a relative TTL is already a
//! deadline, HINCRBYFLOAT's field carries the resulting number, and every field that lazy
//! or active expiry reclaims is a deletion. Replaying a record therefore reproduces the
//! state exactly, whenever it is replayed.
//!
//! One hook, [`EffectLog::note`], does every job a change triggers: it marks WATCHers of the
//! key dirty, counts expirations for INFO, and — only when a consumer is interested —
//! copies the change into the record. With nobody listening, a change costs a branch.
//!
//! The record of one lock acquisition (one command, one EXEC, one sweeper batch) is handed
//! to the keyspace's [`EffectSink`] when the shards are released, *before* the locks drop
//! (see [`super::Locked`]), so consumers receive batches in lock order.

use std::sync::Arc;

use super::shard::Watchers;
use super::TtlUpdate;

/// Why something changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A client's command did it.
    Command,
    /// A deadline passed (lazy expiry on access, or the sweeper).
    Expired,
    /// The memory limit removed it.
    Evicted,
}

/// One change, in post-state form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new key came into existence (its first field follows).
    KeyCreated,
    /// A field now holds `value` and expires at `deadline`. `ttl` says what the write asked
    /// for the TTL (kept, cleared, or set), which the deadline alone cannot tell.
    FieldSet {
        field: Vec<u8>,
        value: Vec<u8>,
        deadline: Option<u64>,
        ttl: TtlUpdate,
    },
    /// A field's TTL was set (`Some`) or removed (`None`).
    FieldTtl {
        field: Vec<u8>,
        deadline: Option<u64>,
    },
    /// A field was removed (by a command, or reclaimed because it expired).
    FieldDeleted { field: Vec<u8> },
    /// The key's TTL was set (`Some`) or removed (`None`).
    KeyTtl { deadline: Option<u64> },
    /// The key was removed. `emptied`: because its last field went (the field deletions
    /// precede this), rather than as a whole (DEL, an expired key TTL, eviction).
    KeyDeleted { emptied: bool },
    /// The key moved to `to`, with its value and every TTL, replacing whatever `to` held
    /// (`replaced`: `to` existed).
    Renamed { to: Vec<u8>, replaced: bool },
    /// The key now holds exactly `fields` (name, value, deadline) and key TTL `deadline`,
    /// replacing whatever it held (`replaced`: it existed) — RESTORE.
    Restored {
        fields: Vec<(Vec<u8>, Vec<u8>, Option<u64>)>,
        deadline: Option<u64>,
        replaced: bool,
    },
    /// Every key of the database was removed (FLUSHDB; FLUSHALL is one per database).
    Flushed,
    /// The database exchanged its contents with database `with` (SWAPDB).
    Swapped { with: usize },
}

/// One recorded change of one key (or database, for [`Change::Flushed`] and
/// [`Change::Swapped`], whose key is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub db: usize,
    pub key: Vec<u8>,
    pub cause: Cause,
    pub change: Change,
}

/// The effects of one command within a batch (an EXEC has one per queued command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The command's lower-case name; `None` for the sweeper's batches.
    pub command: Option<&'static str>,
    /// Index of the segment's first effect in [`Batch::effects`].
    pub start: usize,
}

/// What one lock acquisition changed, as consumers see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub segments: Vec<Segment>,
    pub effects: Vec<Effect>,
}

impl Batch {
    /// Each segment with its effects, in order; segments that changed nothing are left out.
    pub fn commands(&self) -> impl Iterator<Item = (Option<&'static str>, &[Effect])> + '_ {
        self.segments.iter().enumerate().filter_map(|(i, s)| {
            let end = self
                .segments
                .get(i + 1)
                .map_or(self.effects.len(), |n| n.start);
            (end > s.start).then(|| (s.command, &self.effects[s.start..end]))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }
}

/// A consumer of effect batches: keyspace notifications now; the append-only file and the
/// replication stream next.
pub trait EffectSink: Send + Sync {
    /// Whether a batch should be built at all. Asked once per lock acquisition, so it must
    /// be cheap (an atomic load or two).
    fn interested(&self) -> bool;
    /// Called with the shards of the batch still locked.
    fn publish(&self, batch: &Batch);
}

/// A sink that keeps every batch (tests): always interested.
#[derive(Default)]
pub struct Recorder {
    batches: parking_lot::Mutex<Vec<Batch>>,
}

impl Recorder {
    /// The batches published since the last call.
    pub fn take(&self) -> Vec<Batch> {
        std::mem::take(&mut self.batches.lock())
    }
}

impl EffectSink for Recorder {
    fn interested(&self) -> bool {
        true
    }
    fn publish(&self, batch: &Batch) {
        self.batches.lock().push(batch.clone());
    }
}

/// The sink used when none is installed: never interested.
pub(super) struct NoSink;

impl EffectSink for NoSink {
    fn interested(&self) -> bool {
        false
    }
    fn publish(&self, _: &Batch) {}
}

/// The recorder of one lock acquisition.
pub struct EffectLog {
    /// A consumer wants the changes themselves (asked once when the locks were taken).
    interest: bool,
    /// Only allocated when a consumer is interested, so a lock set that records nothing
    /// carries one word for it.
    batch: Option<Box<Batch>>,
    /// Command-caused changes so far, counted even when nothing is recorded: the
    /// dispatcher checks that a failing handler changed nothing.
    command_changes: usize,
    /// Expirations counted here and added to the keyspace's INFO counters once, when the
    /// locks are released.
    pub(super) expired_keys: u64,
    pub(super) expired_fields: u64,
    /// The running command reads: its key lookups count as hits or misses (Redis counts
    /// `lookupKeyRead`s, not writes nor KEYS/SCAN).
    pub(super) counting_lookups: bool,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl EffectLog {
    pub(super) fn new(interest: bool) -> Self {
        EffectLog {
            interest,
            batch: interest.then(Box::default),
            command_changes: 0,
            expired_keys: 0,
            expired_fields: 0,
            counting_lookups: false,
            hits: 0,
            misses: 0,
        }
    }

    /// Whether the next lookups count for `keyspace_hits` / `keyspace_misses`.
    pub fn count_lookups(&mut self, on: bool) {
        self.counting_lookups = on;
    }

    #[inline]
    pub(super) fn note_lookup(&mut self, found: bool) {
        if self.counting_lookups {
            if found {
                self.hits += 1;
            } else {
                self.misses += 1;
            }
        }
    }

    /// Whether changes are being recorded (a consumer is interested).
    pub fn recording(&self) -> bool {
        self.interest
    }

    /// Starts the segment of the next command (`None`: a sweeper batch).
    pub fn begin(&mut self, command: Option<&'static str>) {
        if let Some(b) = self.batch.as_mut() {
            let start = b.effects.len();
            b.segments.push(Segment { command, start });
        }
    }

    /// Counts `n` command changes that need no other handling (nobody watches or records).
    pub(super) fn count_command_changes(&mut self, n: usize) {
        self.command_changes += n;
    }

    /// How many command-caused changes have been noted (recorded or not).
    pub fn command_changes(&self) -> usize {
        self.command_changes
    }

    /// The single hook every change goes through: wakes the key's WATCHers, counts
    /// command changes, and records the change if anyone is interested. `change` is only
    /// called then, so nothing is copied otherwise.
    pub(super) fn note(
        &mut self,
        watchers: &Watchers,
        db: usize,
        key: &[u8],
        cause: Cause,
        change: impl FnOnce() -> Change,
    ) {
        watchers.touch(key);
        if cause == Cause::Command {
            self.command_changes += 1;
        }
        if self.interest {
            self.push(db, key, cause, change());
        }
    }

    /// [`EffectLog::note`] for a field reclaimed because it expired, or a key removed
    /// because its TTL passed: these feed INFO's `expired_subkeys` / `expired_keys`.
    pub(super) fn note_expired_field(
        &mut self,
        watchers: &Watchers,
        db: usize,
        key: &[u8],
        field: &[u8],
    ) {
        watchers.touch(key);
        self.expired_fields += 1;
        if self.interest {
            self.push(
                db,
                key,
                Cause::Expired,
                Change::FieldDeleted {
                    field: field.to_vec(),
                },
            );
        }
    }

    pub(super) fn note_expired_key(&mut self, watchers: &Watchers, db: usize, key: &[u8]) {
        watchers.touch(key);
        self.expired_keys += 1;
        if self.interest {
            self.push(
                db,
                key,
                Cause::Expired,
                Change::KeyDeleted { emptied: false },
            );
        }
    }

    /// A database-wide change (FLUSHDB, SWAPDB): watchers were told by the shards.
    pub(super) fn note_db(&mut self, db: usize, change: Change) {
        self.command_changes += 1;
        if self.interest {
            self.push(db, &[], Cause::Command, change);
        }
    }

    fn push(&mut self, db: usize, key: &[u8], cause: Cause, change: Change) {
        let Some(b) = self.batch.as_mut() else {
            return;
        };
        if b.segments.is_empty() {
            b.segments.push(Segment {
                command: None,
                start: 0,
            });
        }
        b.effects.push(Effect {
            db,
            key: key.to_vec(),
            cause,
            change,
        });
    }

    /// The batch so far, if changes are being recorded.
    pub fn batch(&self) -> Option<&Batch> {
        self.batch.as_deref()
    }
}

/// The installed consumer, shared by every lock acquisition.
pub(super) type SharedSink = Arc<dyn EffectSink>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientState;
    use crate::clock::Clock;
    use crate::cmd::testing::{TestEnv, T0_MS};
    use crate::config::Config;
    use crate::context::ServerContext;

    fn env() -> TestEnv {
        TestEnv {
            server: ServerContext::with_recorder(&Config::default(), Clock::manual(T0_MS)),
            client: ClientState::for_tests(),
        }
    }

    /// The batches the commands run since the last call published.
    fn batches(env: &TestEnv) -> Vec<Batch> {
        env.server.recorder.as_ref().expect("recorder").take()
    }

    /// The one batch of the last command, as (command, effects) segments.
    fn only(env: &TestEnv) -> Vec<(Option<&'static str>, Vec<Effect>)> {
        let b = batches(env);
        assert_eq!(b.len(), 1, "{b:#?}");
        b[0].commands().map(|(c, e)| (c, e.to_vec())).collect()
    }

    fn eff(key: &str, cause: Cause, change: Change) -> Effect {
        Effect {
            db: 0,
            key: key.as_bytes().to_vec(),
            cause,
            change,
        }
    }

    fn set(field: &str, value: &str, deadline: Option<u64>, ttl: TtlUpdate) -> Change {
        Change::FieldSet {
            field: field.into(),
            value: value.into(),
            deadline,
            ttl,
        }
    }

    #[test]
    fn a_write_records_its_post_state() {
        let mut env = env();
        env.run("HSET k a 1 b 2");
        assert_eq!(
            only(&env),
            [(
                Some("hset"),
                vec![
                    eff("k", Cause::Command, Change::KeyCreated),
                    eff("k", Cause::Command, set("a", "1", None, TtlUpdate::Clear)),
                    eff("k", Cause::Command, set("b", "2", None, TtlUpdate::Clear)),
                ]
            )]
        );
        // Relative TTLs are recorded as absolute deadlines.
        env.run("HPEXPIRE k 500 FIELDS 2 a zz");
        assert_eq!(
            only(&env),
            [(
                Some("hpexpire"),
                vec![eff(
                    "k",
                    Cause::Command,
                    Change::FieldTtl {
                        field: b"a".to_vec(),
                        deadline: Some(T0_MS + 500)
                    }
                )]
            )]
        );
        // HINCRBYFLOAT records the resulting value, and the field keeps its deadline.
        env.run("HINCRBYFLOAT k a 0.5");
        assert_eq!(
            only(&env)[0].1,
            [eff(
                "k",
                Cause::Command,
                set("a", "1.5", Some(T0_MS + 500), TtlUpdate::Keep)
            )]
        );
        env.run("EXPIRE k 10");
        assert_eq!(
            only(&env)[0].1,
            [eff(
                "k",
                Cause::Command,
                Change::KeyTtl {
                    deadline: Some(T0_MS + 10_000)
                }
            )]
        );
        env.run("RENAME k j");
        assert_eq!(
            only(&env)[0].1,
            [eff(
                "k",
                Cause::Command,
                Change::Renamed {
                    to: b"j".to_vec(),
                    replaced: false
                }
            )]
        );
    }

    #[test]
    fn reads_that_reclaim_record_the_deletion_first() {
        let mut env = env();
        env.run("HSET k a 1 b 2");
        env.run("HPEXPIRE k 10 FIELDS 1 a");
        batches(&env);
        env.advance_ms(11);
        assert_eq!(env.run("HGET k a"), "$-1\r\n");
        assert_eq!(
            only(&env),
            [(
                Some("hget"),
                vec![eff(
                    "k",
                    Cause::Expired,
                    Change::FieldDeleted {
                        field: b"a".to_vec()
                    }
                )]
            )]
        );
        assert_eq!(
            env.server
                .keyspace
                .stats
                .expired_subkeys
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // A pure read records nothing.
        env.run("HGETALL k");
        env.run("HGET k nope");
        assert!(batches(&env).is_empty());
        // The last field going takes the key with it.
        env.run("HPEXPIRE k 10 FIELDS 1 b");
        batches(&env);
        env.advance_ms(11);
        assert_eq!(env.run("EXISTS k"), ":0\r\n");
        assert_eq!(
            only(&env)[0].1,
            [
                eff(
                    "k",
                    Cause::Expired,
                    Change::FieldDeleted {
                        field: b"b".to_vec()
                    }
                ),
                eff("k", Cause::Expired, Change::KeyDeleted { emptied: true }),
            ]
        );
    }

    #[test]
    fn exec_is_one_batch_of_segments() {
        let mut env = env();
        env.run("MULTI");
        env.run("HSET k a 1");
        env.run("HGET k a");
        env.run("HDEL k a");
        env.run("DEL nokey");
        assert!(batches(&env).is_empty(), "queued commands change nothing");
        env.run("EXEC");
        let segs = only(&env);
        let names: Vec<_> = segs.iter().map(|(c, _)| *c).collect();
        // Segments that changed nothing are left out.
        assert_eq!(names, [Some("hset"), Some("hdel")]);
        assert_eq!(
            segs[1].1,
            [
                eff(
                    "k",
                    Cause::Command,
                    Change::FieldDeleted {
                        field: b"a".to_vec()
                    }
                ),
                eff("k", Cause::Command, Change::KeyDeleted { emptied: true }),
            ]
        );
    }

    #[test]
    fn failed_commands_and_no_ops_record_nothing() {
        let mut env = env();
        env.run("HSET k a x");
        batches(&env);
        assert!(env.run("HINCRBY k a 1").starts_with("-ERR"));
        assert!(env.run("HINCRBY new a x").starts_with("-ERR"));
        assert_eq!(env.run("HSETEX k FNX FIELDS 1 a 1"), ":0\r\n");
        assert_eq!(env.run("HSETEX nokey FXX FIELDS 1 a 1"), ":0\r\n");
        assert_eq!(env.run("HDEL k zz"), ":0\r\n");
        assert_eq!(env.run("PERSIST k"), ":0\r\n");
        assert!(batches(&env).is_empty());
        assert_eq!(env.run("EXISTS new nokey"), ":0\r\n");
    }

    #[test]
    fn whole_database_changes_and_the_sweeper() {
        let mut env = env();
        env.run("HSET k a 1");
        env.run("HPEXPIRE k 10 FIELDS 1 a");
        env.run("HSET j a 1");
        env.run("PEXPIRE j 10");
        batches(&env);
        env.advance_ms(11);
        crate::sweeper::sweep_cycle(&env.server, std::time::Duration::from_secs(60));
        let all: Vec<Effect> = batches(&env)
            .iter()
            .flat_map(|b| {
                b.commands().flat_map(|(c, e)| {
                    assert_eq!(c, None, "sweeper batches have no command");
                    e.to_vec()
                })
            })
            .collect();
        assert!(all.contains(&eff(
            "j",
            Cause::Expired,
            Change::KeyDeleted { emptied: false }
        )));
        assert!(all.contains(&eff(
            "k",
            Cause::Expired,
            Change::FieldDeleted {
                field: b"a".to_vec()
            }
        )));
        assert!(all.contains(&eff(
            "k",
            Cause::Expired,
            Change::KeyDeleted { emptied: true }
        )));
        env.run("HSET k a 1");
        env.run("SELECT 3");
        batches(&env);
        env.run("FLUSHDB");
        env.run("SWAPDB 0 3");
        let changes: Vec<(usize, Change)> = batches(&env)
            .iter()
            .flat_map(|b| b.effects.iter().map(|e| (e.db, e.change.clone())))
            .collect();
        assert_eq!(
            changes,
            [(3, Change::Flushed), (0, Change::Swapped { with: 3 })]
        );
    }
}
