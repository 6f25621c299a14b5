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
#[derive(Debug, Default)]
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
    batch: Batch,
    /// Command-caused changes so far, counted even when nothing is recorded: the
    /// dispatcher checks that a failing handler changed nothing.
    command_changes: usize,
    /// Expirations counted here and added to the keyspace's INFO counters once, when the
    /// locks are released.
    pub(super) expired_keys: u64,
    pub(super) expired_fields: u64,
}

impl EffectLog {
    pub(super) fn new(interest: bool) -> Self {
        EffectLog {
            interest,
            batch: Batch::default(),
            command_changes: 0,
            expired_keys: 0,
            expired_fields: 0,
        }
    }

    /// Whether changes are being recorded (a consumer is interested).
    pub fn recording(&self) -> bool {
        self.interest
    }

    /// Starts the segment of the next command (`None`: a sweeper batch).
    pub fn begin(&mut self, command: Option<&'static str>) {
        if self.interest {
            self.batch.segments.push(Segment {
                command,
                start: self.batch.effects.len(),
            });
        }
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
        if self.batch.segments.is_empty() {
            self.batch.segments.push(Segment {
                command: None,
                start: 0,
            });
        }
        self.batch.effects.push(Effect {
            db,
            key: key.to_vec(),
            cause,
            change,
        });
    }

    /// The batch so far (tests, and the sink at release).
    pub fn batch(&self) -> &Batch {
        &self.batch
    }
}

/// The installed consumer, shared by every lock acquisition.
pub(super) type SharedSink = Arc<dyn EffectSink>;
