//! The in-memory keyspace: databases → shards → entries (hash values), with key and field
//! expiry indexes per shard, and the record of every change ([`effects`]).
//!
//! Locking: a command's shards are locked by the dispatcher, in ascending `(db, shard)`
//! order, before its handler runs ([`Keyspace::lock`]). The handler sees the locked shards
//! through a [`DbView`], whose methods are the only way to read or change keys. Those
//! methods apply lazy expiry, keep the expiry indexes true, delete a hash the moment it
//! has no live field, and note every change in the lock set's [`EffectLog`] (which wakes
//! WATCHers, counts expirations and, when a consumer listens, records the change). The
//! record is handed to the installed [`EffectSink`] when the [`Locked`] set is released,
//! before its locks drop. Shard internals are private to this module.

mod arena;
pub mod effects;
mod evict;
mod hash;
pub mod lazyfree;
mod packed;
mod prefetch;
mod shard;
mod slab;
mod table_alloc;
mod thin;

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

pub use effects::{Batch, Cause, Change, Effect, EffectLog, EffectSink, Recorder, Segment};
pub use evict::{AccessClock, Policy as EvictionPolicy};
pub use hash::{Encoding, EncodingLimits, HashValue, LiveFields, TtlUpdate};
pub use packed::{FieldRef, MAX_FIELD_EXPIRE_MS};
pub use shard::{SweepOutcome, WatchFlag};

use effects::{NoSink, SharedSink};
use shard::{Deadline, Entry, Shard, ShardCounts, NEVER};

/// Counters the keyspace keeps for INFO stats.
#[derive(Debug, Default)]
pub struct KeyspaceStats {
    /// Keys removed because their TTL passed (`expired_keys`).
    pub expired_keys: AtomicU64,
    /// Hash fields removed because their TTL passed (`expired_subkeys`).
    pub expired_subkeys: AtomicU64,
    /// Keys removed by the memory limit (`evicted_keys`).
    pub evicted_keys: AtomicU64,
}

/// Debug builds check a shard's invariants after each sweeper batch up to this size.
#[cfg(debug_assertions)]
const DEBUG_CHECK_MAX_KEYS: usize = 10_000;
#[cfg(debug_assertions)]
const DEBUG_CHECK_MAX_FIELDS: usize = 20_000;

/// Most keys [`Keyspace::prefetch`] is given at once (a read holds about this many
/// requests at pipeline 16).
pub const PREFETCH_BATCH: usize = 16;

/// All databases.
pub struct Keyspace {
    dbs: Box<[Db]>,
    hasher: ahash::RandomState,
    shard_mask: usize,
    max_compact_entries: AtomicUsize,
    max_compact_value: AtomicUsize,
    /// Where effect batches go; none until [`Keyspace::set_sink`].
    sink: OnceLock<SharedSink>,
    pub stats: KeyspaceStats,
    /// A replica's keyspace: reads hide what expired without reclaiming it (its master's
    /// HDEL and DEL will), so both hold the same data at every offset.
    keep_expired: Arc<AtomicBool>,
    /// The same while CLIENT PAUSE is in force (see `pause.rs`).
    expiry_paused: Arc<AtomicBool>,
    /// Large values freed off the request path (UNLINK, FLUSH… ASYNC).
    pub lazyfree: lazyfree::LazyFree,
    /// How keys' access state is kept (LRU or LFU) and the LFU settings.
    pub access: AccessClock,
    evictor: evict::Evictor,
}

struct Db {
    shards: Box<[Mutex<Shard>]>,
    /// Each shard's sizes, readable without its lock.
    counts: Box<[Arc<ShardCounts>]>,
}

/// Unmaps the small-hash slabs' empty spans but a few (keyspace/slab.rs): what FLUSHALL,
/// DEL and drains emptied. Makes system calls; called by the sweeper task's memory look.
/// Returns the bytes given back.
pub fn release_free_slabs() -> usize {
    slab::release_empty(slab::KEEP_EMPTY)
}

/// Which shards a command needs, computed by the dispatcher before the handler runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockPlan {
    /// No keyspace access.
    Nothing,
    /// The shards of these keys in one database (sorted, deduplicated).
    Shards {
        db: usize,
        shards: SmallVec<[usize; 4]>,
    },
    /// Every shard of one database (KEYS, SCAN, FLUSHDB, DBSIZE…).
    Db(usize),
    /// Every shard of every database (FLUSHALL, SWAPDB, transactions that SELECT).
    All,
}

/// Shards held locked for the duration of one command (or one EXEC, or one sweeper
/// batch), with the record of what changed under them. Dropping it hands the record to
/// the keyspace's sink, and only then releases the locks.
pub struct Locked<'a> {
    ks: &'a Keyspace,
    held: SmallVec<[Held<'a>; 2]>,
    log: EffectLog,
    /// Lookups update the keys' access state (not for a CLIENT NO-TOUCH client).
    touch: bool,
}

struct Held<'a> {
    db: usize,
    shard: usize,
    guard: MutexGuard<'a, Shard>,
}

/// A key's access state, read both ways (which one holds depends on the policy).
#[derive(Clone, Copy, Debug)]
pub struct AccessState {
    /// Since the last access, as an LRU policy reads it.
    pub idle_ms: u64,
    /// The LFU counter after decay, as an LFU policy reads it.
    pub frequency: u32,
}

/// Per-database totals for INFO keyspace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbSummary {
    /// Stored keys, including expired ones not yet reclaimed.
    pub keys: usize,
    /// Keys with a key TTL.
    pub key_ttls: usize,
    /// Hashes with at least one field TTL.
    pub field_ttl_hashes: usize,
    /// The keys' TTL deadlines, summed (ms, to within 16 ms per key).
    pub key_deadline_sum_ms: u128,
}

impl DbSummary {
    /// INFO's `avg_ttl`: the mean time left (ms) of the keys with a TTL, 0 without any.
    pub fn avg_ttl_ms(&self, now_ms: u64) -> u64 {
        if self.key_ttls == 0 {
            return 0;
        }
        let mean = self.key_deadline_sum_ms / self.key_ttls as u128;
        u64::try_from(mean.saturating_sub(u128::from(now_ms))).unwrap_or(u64::MAX)
    }

    /// `(keys, key_ttls, field_ttl_hashes)`.
    pub fn as_tuple(&self) -> (usize, usize, usize) {
        (self.keys, self.key_ttls, self.field_ttl_hashes)
    }
}

impl Keyspace {
    /// `databases` databases of `shards` shards each (`shards` is rounded up to a power of
    /// two, at most 256).
    pub fn new(databases: usize, shards: usize) -> Self {
        let shards = shards.clamp(1, 256).next_power_of_two();
        let hasher = ahash::RandomState::new();
        let dbs = (0..databases.max(1))
            .map(|_| {
                let counts: Box<[Arc<ShardCounts>]> = (0..shards).map(|_| Arc::default()).collect();
                Db {
                    shards: counts
                        .iter()
                        .map(|c| Mutex::new(Shard::new(hasher.clone(), Arc::clone(c))))
                        .collect(),
                    counts,
                }
            })
            .collect();
        let limits = EncodingLimits::default();
        Keyspace {
            dbs,
            hasher,
            shard_mask: shards - 1,
            max_compact_entries: AtomicUsize::new(limits.max_compact_entries),
            max_compact_value: AtomicUsize::new(limits.max_compact_value),
            sink: OnceLock::new(),
            stats: KeyspaceStats::default(),
            keep_expired: Arc::new(AtomicBool::new(false)),
            expiry_paused: Arc::new(AtomicBool::new(false)),
            lazyfree: lazyfree::LazyFree::default(),
            access: AccessClock::default(),
            evictor: evict::Evictor::default(),
        }
    }

    /// The flag CLIENT PAUSE sets to stop expiry.
    pub fn expiry_paused_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.expiry_paused)
    }

    /// The flag that makes reads keep expired keys and fields (a replica's keyspace).
    pub fn keep_expired_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.keep_expired)
    }

    /// Reads keep what expired (a replica, or a pause): nothing is reclaimed.
    pub fn keeps_expired(&self) -> bool {
        self.keep_expired.load(Ordering::Relaxed) || self.expiry_paused.load(Ordering::Relaxed)
    }

    /// Installs the consumer of effect batches (once; later calls are ignored and return
    /// false).
    pub fn set_sink(&self, sink: Arc<dyn EffectSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    fn sink(&self) -> &dyn EffectSink {
        match self.sink.get() {
            Some(s) => &**s,
            None => &NoSink,
        }
    }

    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    pub fn shards_per_db(&self) -> usize {
        self.shard_mask + 1
    }

    pub fn key_hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard a key lives in. Uses bits the hash table does not use for placement.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.shard_of_hash(self.key_hash(key))
    }

    fn shard_of_hash(&self, h: u64) -> usize {
        (h >> 40) as usize & self.shard_mask
    }

    /// Starts loading the table slots, then the hashes, that commands on `keys` (in
    /// database `db`) are about to touch (see the `prefetch` module). Shards busy with
    /// another thread are skipped; nothing waits here.
    pub fn prefetch(&self, db: usize, keys: &[&[u8]]) {
        let Some(db) = self.dbs.get(db) else {
            return;
        };
        let hashes: SmallVec<[u64; PREFETCH_BATCH]> =
            keys.iter().map(|k| self.key_hash(k)).collect();
        // First every key's slot, so those misses overlap...
        for &h in &hashes {
            if let Some(shard) = db.shards[self.shard_of_hash(h)].try_lock() {
                shard.prefetch_slot(h);
            }
        }
        // ...then, with the slots (mostly) arrived, every hash's own buffer (which holds
        // its key too). A bucket found also tells its shard where its table is now, for
        // the next batch's first pass.
        for &h in &hashes {
            if let Some(mut shard) = db.shards[self.shard_of_hash(h)].try_lock() {
                if let Some(b) = shard.prefetch_value(h) {
                    shard.note_full_bucket(b);
                }
            }
        }
    }

    pub fn limits(&self) -> EncodingLimits {
        EncodingLimits {
            max_compact_entries: self.max_compact_entries.load(Ordering::Relaxed),
            max_compact_value: self.max_compact_value.load(Ordering::Relaxed),
        }
    }

    pub fn set_limits(&self, limits: EncodingLimits) {
        self.max_compact_entries
            .store(limits.max_compact_entries, Ordering::Relaxed);
        self.max_compact_value
            .store(limits.max_compact_value, Ordering::Relaxed);
    }

    /// Locks what `plan` names, in ascending `(db, shard)` order so that no two commands
    /// can deadlock. Whether the changes made under the locks are recorded is decided
    /// here, once, by asking the sink.
    #[inline]
    pub fn lock(&self, plan: &LockPlan) -> Locked<'_> {
        let mut held = SmallVec::new();
        let mut take = |db: usize, shard: usize| {
            held.push(Held {
                db,
                shard,
                guard: self.dbs[db].shards[shard].lock(),
            })
        };
        match plan {
            LockPlan::Nothing => {}
            LockPlan::Shards { db, shards } => shards.iter().for_each(|&s| take(*db, s)),
            LockPlan::Db(db) => (0..=self.shard_mask).for_each(|s| take(*db, s)),
            LockPlan::All => {
                for db in 0..self.dbs.len() {
                    (0..=self.shard_mask).for_each(|s| take(db, s));
                }
            }
        }
        let interest = !held.is_empty() && self.sink().interested();
        Locked {
            ks: self,
            held,
            log: EffectLog::new(interest),
            touch: true,
        }
    }

    /// One batch of active expiry in one shard: reclaims what is due at `now_ms`, at most
    /// `budget` keys and fields, and publishes what it reclaimed like any command's
    /// changes. Also returns how overdue the oldest due deadline was (ms), if any.
    pub fn sweep_shard(
        &self,
        db: usize,
        shard: usize,
        now_ms: u64,
        budget: usize,
    ) -> (SweepOutcome, Option<u64>) {
        let mut locked = self.lock(&LockPlan::Shards {
            db,
            shards: SmallVec::from_slice(&[shard]),
        });
        locked.log.begin(None);
        let Locked { held, log, .. } = &mut locked;
        let s = &mut *held[0].guard;
        let lag = s.oldest_overdue(now_ms).map(|t| now_ms - t);
        let out = s.expire_due(now_ms, budget, db, log);
        // Debug builds (the tests) check the shard's invariants after every batch of the
        // sweeper, while it is small enough for that to stay cheap.
        #[cfg(debug_assertions)]
        if s.len() <= DEBUG_CHECK_MAX_KEYS
            && s.data.entries.iter().map(|e| e.value.len()).sum::<usize>() <= DEBUG_CHECK_MAX_FIELDS
        {
            if let Err(e) = s.check_invariants() {
                panic!("db {db} shard {shard} after a sweep: {e}");
            }
        }
        (out, lag)
    }

    /// Forgets `flag` as a watcher of `key` (UNWATCH, a closing connection). Locks the
    /// key's shard itself: call it only when the caller holds no lock on that shard.
    pub fn unwatch(&self, db: usize, key: &[u8], flag: &Arc<WatchFlag>) {
        if let Some(d) = self.dbs.get(db) {
            d.shards[self.shard_of(key)].lock().unwatch(key, flag);
        }
    }

    /// Every change made so far (commands and expiry, one per recorded change): what
    /// `rdb_changes_since_last_save` counts from. Read without locks.
    /// `(keyspace_hits, keyspace_misses)` summed over every shard.
    pub fn lookups(&self) -> (u64, u64) {
        self.dbs
            .iter()
            .flat_map(|d| d.counts.iter())
            .fold((0, 0), |(h, m), c| {
                (
                    h + c.hits.load(Ordering::Relaxed),
                    m + c.misses.load(Ordering::Relaxed),
                )
            })
    }

    /// CONFIG RESETSTAT: zeroes the hit and miss counts.
    pub fn reset_lookups(&self) {
        for c in self.dbs.iter().flat_map(|d| d.counts.iter()) {
            c.hits.store(0, Ordering::Relaxed);
            c.misses.store(0, Ordering::Relaxed);
        }
    }

    pub fn changes(&self) -> u64 {
        self.dbs
            .iter()
            .flat_map(|d| d.counts.iter())
            .map(|c| c.changes.load(Ordering::Relaxed))
            .sum()
    }

    /// Per-database summary for INFO keyspace, read without taking any lock (each shard
    /// publishes its sizes; the sum is not one instant across shards).
    pub fn db_summary(&self, db: usize) -> DbSummary {
        let mut sum = DbSummary::default();
        if let Some(d) = self.dbs.get(db) {
            for c in d.counts.iter() {
                sum.keys += c.keys.load(Ordering::Relaxed);
                sum.key_ttls += c.key_ttls.load(Ordering::Relaxed);
                sum.field_ttl_hashes += c.field_ttl_hashes.load(Ordering::Relaxed);
                sum.key_deadline_sum_ms += u128::from(c.key_deadline_sum.load(Ordering::Relaxed))
                    << shard::TTL_SUM_UNIT_SHIFT;
            }
        }
        sum
    }

    /// Checks every shard's invariants (index ↔ entries, no empty hash, deadline bounds),
    /// locking one shard at a time. For tests and debug builds.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (d, db) in self.dbs.iter().enumerate() {
            for (s, shard) in db.shards.iter().enumerate() {
                shard
                    .lock()
                    .check_invariants()
                    .map_err(|e| format!("db {d} shard {s}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Stores a key read from a snapshot, replacing any key of that name. Nothing is
    /// recorded: loading is not a change to publish. Returns false if `db` does not exist.
    pub fn load_key<'a>(
        &self,
        db: usize,
        key: &[u8],
        key_deadline: Option<u64>,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8], Option<u64>)>,
    ) -> bool {
        let Some(d) = self.dbs.get(db) else {
            return false;
        };
        let value = HashValue::from_fields(fields, &self.limits());
        let h = self.key_hash(key);
        let mut shard = d.shards[self.shard_of_hash(h)].lock();
        let access = self.access.initial(crate::clock::Clock::system().now_ms());
        store_loaded(&mut shard, h, key, key_deadline, value, access);
        true
    }

    /// Fields stored at `key`, expired ones included, without reclaiming anything; None
    /// if no entry is stored (tests: what lazy expiry has not yet removed).
    pub fn stored_len(&self, db: usize, key: &[u8]) -> Option<usize> {
        let h = self.key_hash(key);
        let shard = self.dbs.get(db)?.shards[self.shard_of_hash(h)].lock();
        shard.find(h, key).map(|e| e.value.len())
    }

    /// Fields stored in one shard, expired ones included (tests and benchmarks).
    pub fn stored_fields_in(&self, db: usize, shard: usize) -> usize {
        self.dbs[db].shards[shard]
            .lock()
            .data
            .entries
            .iter()
            .map(|e| e.value.len())
            .sum()
    }
}

/// Stores a loaded key in its (locked) shard, replacing one of that name; an empty value
/// stores nothing.
fn store_loaded(
    shard: &mut Shard,
    h: u64,
    key: &[u8],
    key_deadline: Option<u64>,
    value: HashValue,
    access: u32,
) {
    if value.is_empty() {
        return;
    }
    if let Some(b) = shard.bucket_of(h, key) {
        shard.remove_at(h, b);
    }
    shard.insert(
        h,
        Entry::new(key, value, key_deadline.unwrap_or(NEVER), access),
    );
}

impl Keyspace {
    /// Runs `f` on one shard under its lock (this module's tests).
    #[cfg(test)]
    fn with_shard<R>(&self, db: usize, shard: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        f(&mut self.dbs[db].shards[shard].lock())
    }
}

impl<'a> Locked<'a> {
    /// A view of database `db` through the held shards.
    pub fn db(&mut self, db: usize) -> DbView<'_, 'a> {
        DbView {
            ks: self.ks,
            db,
            held: &mut self.held,
            log: &mut self.log,
            touch: self.touch,
        }
    }

    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    /// Whether shard `shard` of database `db` is held.
    /// How many hashes of `db` hold how many stored fields, by power of two (INFO
    /// keysizes): bin `k` counts lengths `2^(k-1) .. 2^k`. Shards these locks hold are
    /// read through them (INFO inside EXEC); the others are locked in turn, briefly.
    pub fn size_histogram(&self, db: usize) -> [u64; shard::SIZE_BINS] {
        let mut bins = [0; shard::SIZE_BINS];
        let Some(d) = self.ks.dbs.get(db) else {
            return bins;
        };
        let mut add = |sizes: &shard::SizeBins| {
            for (b, n) in bins.iter_mut().zip(sizes.0.iter()) {
                *b += n;
            }
        };
        for (i, c) in d.counts.iter().enumerate() {
            if c.keys.load(Ordering::Relaxed) == 0 {
                continue;
            }
            match self.held.iter().find(|h| h.db == db && h.shard == i) {
                Some(h) => add(&h.guard.data.sizes),
                None => add(&d.shards[i].lock().data.sizes),
            }
        }
        bins
    }

    pub fn holds(&self, db: usize, shard: usize) -> bool {
        self.held.iter().any(|h| h.db == db && h.shard == shard)
    }

    /// The record of the changes made so far under these locks.
    pub fn log(&self) -> &EffectLog {
        &self.log
    }

    /// Visits every live key of database `db` through the held shards (a snapshot): its
    /// name, key TTL and value. Keys that are gone (TTL passed, no live field) are skipped;
    /// the caller skips expired fields. Nothing is reclaimed or recorded.
    pub fn for_each_live(
        &self,
        db: usize,
        now_ms: u64,
        mut f: impl FnMut(&[u8], Option<u64>, &HashValue),
    ) {
        for h in self.held.iter().filter(|h| h.db == db) {
            for e in h.guard.data.entries.iter() {
                if !e.is_dead(now_ms) {
                    let ttl = (e.key_deadline() != NEVER).then_some(e.key_deadline());
                    f(e.key(), ttl, &e.value);
                }
            }
        }
    }

    /// [`Keyspace::load_key`] through the held shards (DEBUG RELOAD, which holds them all).
    pub fn load_key<'f>(
        &mut self,
        db: usize,
        key: &[u8],
        key_deadline: Option<u64>,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8], Option<u64>)>,
    ) -> bool {
        let ks = self.ks;
        let h = ks.key_hash(key);
        let shard = ks.shard_of_hash(h);
        let Some(held) = self
            .held
            .iter_mut()
            .find(|x| x.db == db && x.shard == shard)
        else {
            return false;
        };
        let value = HashValue::from_fields(fields, &ks.limits());
        let access = ks.access.initial(crate::clock::Clock::system().now_ms());
        store_loaded(&mut held.guard, h, key, key_deadline, value, access);
        true
    }

    /// Empties every held shard without recording anything (DEBUG RELOAD: the data comes
    /// back from the snapshot). Watchers of existing keys are told.
    pub fn clear_unrecorded(&mut self) {
        for h in self.held.iter_mut() {
            h.guard.clear();
        }
    }

    /// Starts the record of the next command run under these locks; `reads` makes its key
    /// lookups count as keyspace hits and misses.
    pub fn begin_command(&mut self, name: &'static str, reads: bool) {
        self.log.begin(Some(name));
        self.log.count_lookups(reads);
    }

    /// Whether the next commands' lookups update the keys' access state (LRU/LFU).
    pub fn set_touch(&mut self, touch: bool) {
        self.touch = touch;
    }

    /// Exchanges the contents of two databases (SWAPDB); requires [`LockPlan::All`].
    /// Watchers stay with their database and see the swap as a change.
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        let shards = self.ks.shards_per_db();
        for s in 0..shards {
            let ia = self.held.iter().position(|h| h.db == a && h.shard == s);
            let ib = self.held.iter().position(|h| h.db == b && h.shard == s);
            let (Some(ia), Some(ib)) = (ia, ib) else {
                continue;
            };
            self.held[ia].guard.touch_all_existing();
            self.held[ib].guard.touch_all_existing();
            let (lo, hi) = (ia.min(ib), ia.max(ib));
            let (left, right) = self.held.split_at_mut(hi);
            std::mem::swap(&mut left[lo].guard.data, &mut right[0].guard.data);
            for i in [ia, ib] {
                self.held[i].guard.touch_all_existing();
                self.held[i].guard.sync_counts();
            }
        }
        self.log.note_db(a, Change::Swapped { with: b });
    }
}

impl Drop for Locked<'_> {
    /// Publishes the record while the shards are still held (the guards drop after this),
    /// so consumers see batches in lock order.
    #[inline]
    fn drop(&mut self) {
        let log = &mut self.log;
        let changes = log.command_changes() as u64 + log.expired_keys + log.expired_fields;
        // Counted in a held shard: no shared counter for every command to contend on.
        if changes > 0 {
            if let Some(h) = self.held.first() {
                h.guard.add_changes(changes);
            }
        }
        if log.hits + log.misses > 0 {
            if let Some(h) = self.held.first() {
                h.guard.add_lookups(log.hits, log.misses);
            }
        }
        if log.expired_keys > 0 {
            self.ks
                .stats
                .expired_keys
                .fetch_add(log.expired_keys, Ordering::Relaxed);
        }
        if log.expired_fields > 0 {
            self.ks
                .stats
                .expired_subkeys
                .fetch_add(log.expired_fields, Ordering::Relaxed);
        }
        if let Some(batch) = log.batch().filter(|b| !b.is_empty()) {
            self.ks.sink().publish(batch);
        }
    }
}

/// One database, seen through the shards its command holds.
pub struct DbView<'l, 'a> {
    ks: &'a Keyspace,
    db: usize,
    held: &'l mut SmallVec<[Held<'a>; 2]>,
    log: &'l mut EffectLog,
    touch: bool,
}

impl<'l, 'a> DbView<'l, 'a> {
    pub fn index(&self) -> usize {
        self.db
    }

    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    fn shard_pos(&self, shard: usize) -> usize {
        let db = self.db;
        match self
            .held
            .binary_search_by(|h| (h.db, h.shard).cmp(&(db, shard)))
        {
            Ok(i) => i,
            // The dispatcher locks every shard a command's key spec names; reaching this
            // means a command table entry does not describe its keys.
            Err(_) => panic!("shard {shard} of db {db} is not locked for this command"),
        }
    }

    /// The locked shard holding `key`, the key's hash, and the log.
    #[inline]
    fn shard_for(&mut self, key: &[u8]) -> (&mut Shard, u64, &mut EffectLog) {
        let h = self.ks.key_hash(key);
        let pos = self.shard_pos(self.ks.shard_of_hash(h));
        (&mut self.held[pos].guard, h, &mut *self.log)
    }

    fn shards(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'l, 'a> {
        let db = self.db;
        self.held
            .iter_mut()
            .filter(move |h| h.db == db)
            .map(|h| &mut *h.guard)
    }

    /// Finds a live key. A key that is gone although still stored — its TTL passed, or
    /// every one of its fields expired — is reclaimed here, with its effects (lazy expiry),
    /// and reported missing.
    ///
    /// With `reclaim` false (reads on a replica) a gone key is reported missing and left
    /// stored.
    fn live_bucket(
        shard: &mut Shard,
        log: &mut EffectLog,
        db: usize,
        h: u64,
        key: &[u8],
        now_ms: u64,
        reclaim: bool,
    ) -> Option<usize> {
        let Some(b) = shard.bucket_of(h, key) else {
            log.note_lookup(false);
            return None;
        };
        let e = shard.entry_at(b)?;
        let live = !e.is_dead(now_ms);
        log.note_lookup(live);
        if live {
            return Some(b);
        }
        if !reclaim {
            return None;
        }
        let key_expired = e.key_deadline() != NEVER && e.key_deadline() < now_ms;
        let e = shard.remove_at(h, b)?;
        if key_expired {
            log.note_expired_key(&shard.watchers, db, key);
        } else {
            for f in e.value.iter() {
                log.note_expired_field(&shard.watchers, db, key, f.field);
            }
            log.note(&shard.watchers, db, key, Cause::Expired, || {
                Change::KeyDeleted { emptied: true }
            });
        }
        None
    }

    /// The hash at `key`, for reading. Expired fields may still be stored; readers skip
    /// them with `get_live`/`is_expired` (spec §5.4: HGETALL and friends do not delete).
    /// A hash none of whose fields is live is reclaimed and reported missing.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&HashValue> {
        let db = self.db;
        let ks = self.ks;
        let reclaim = !ks.keeps_expired();
        let touch = self.touch;
        let (shard, h, log) = self.shard_for(key);
        let b = Self::live_bucket(shard, log, db, h, key, now_ms, reclaim)?;
        let e = shard.entry_at_mut(b)?;
        if touch {
            e.touch(&ks.access, now_ms);
        }
        Some(&e.value)
    }

    /// The hash at `key`, for writing, with its expired fields already reclaimed (lazy
    /// field expiry). None if the key is missing, or vanished because every field expired.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<HashMut<'_>> {
        let db = self.db;
        let limits = self.ks.limits();
        // On a replica nothing is reclaimed: the hash keeps its expired fields (readers
        // skip them with `get_live`), and a hash with none live reads as missing.
        let ks = self.ks;
        let reclaim = !ks.keeps_expired();
        let touch = self.touch;
        let (shard, h, log) = self.shard_for(key);
        let b = Self::live_bucket(shard, log, db, h, key, now_ms, reclaim)?;
        if touch {
            if let Some(e) = shard.entry_at_mut(b) {
                e.touch(&ks.access, now_ms);
            }
        }
        let reap_at = if reclaim { now_ms } else { 0 };
        let hm = HashMut::open(shard, log, db, b, h, limits, false, reap_at);
        if hm.is_empty() {
            drop(hm);
            return None;
        }
        Some(hm)
    }

    /// Like [`DbView::get_mut`], creating an empty hash if the key is missing. The new key
    /// is reported (as created) with its first field; a hash left empty is deleted again
    /// when the [`HashMut`] drops, so failed writes leave no key and no record.
    pub fn get_or_create(&mut self, key: &[u8], now_ms: u64) -> HashMut<'_> {
        let db = self.db;
        let ks = self.ks;
        let limits = ks.limits();
        let touch = self.touch;
        let (shard, h, log) = self.shard_for(key);
        let (b, created) = match Self::live_bucket(shard, log, db, h, key, now_ms, true) {
            Some(b) => {
                if touch {
                    if let Some(e) = shard.entry_at_mut(b) {
                        e.touch(&ks.access, now_ms);
                    }
                }
                (b, false)
            }
            None => (
                shard.insert(h, Entry::empty(key, ks.access.initial(now_ms))),
                true,
            ),
        };
        HashMut::open(shard, log, db, b, h, limits, created, now_ms)
    }

    /// True if `key` exists: it is stored, its TTL has not passed, and it has a live
    /// field. A key that fails the last two is reclaimed here.
    pub fn exists(&mut self, key: &[u8], now_ms: u64) -> bool {
        let db = self.db;
        let reclaim = !self.ks.keeps_expired();
        let (shard, h, log) = self.shard_for(key);
        Self::live_bucket(shard, log, db, h, key, now_ms, reclaim).is_some()
    }

    /// A live key's access state (OBJECT IDLETIME / FREQ), read without updating it.
    pub fn access_state(&mut self, key: &[u8], now_ms: u64) -> Option<AccessState> {
        let db = self.db;
        let ks = self.ks;
        let reclaim = !ks.keeps_expired();
        let (shard, h, log) = self.shard_for(key);
        let b = Self::live_bucket(shard, log, db, h, key, now_ms, reclaim)?;
        let access = shard.entry_at(b)?.access();
        Some(AccessState {
            idle_ms: AccessClock::idle_ms(access, now_ms),
            frequency: ks.access.frequency(access, now_ms),
        })
    }

    /// Deletes `key` (DEL). Returns true if it existed.
    pub fn delete(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.delete_lazily(key, now_ms, false)
    }

    /// Deletes `key`; with `lazy` (UNLINK), a large hash's memory is freed by the lazyfree
    /// thread instead of here.
    pub fn delete_lazily(&mut self, key: &[u8], now_ms: u64, lazy: bool) -> bool {
        let db = self.db;
        let ks = self.ks;
        let (shard, h, log) = self.shard_for(key);
        let Some(b) = Self::live_bucket(shard, log, db, h, key, now_ms, true) else {
            return false;
        };
        let Some(entry) = shard.remove_at(h, b) else {
            return false;
        };
        if lazy && entry.value.free_effort() > lazyfree::LAZYFREE_THRESHOLD {
            ks.lazyfree.free(entry.value, 1);
        }
        log.note(&shard.watchers, db, key, Cause::Command, || {
            Change::KeyDeleted { emptied: false }
        });
        true
    }

    /// Moves `src` to `dst` with its value and every TTL, replacing whatever `dst` held
    /// (RENAME). Returns false, changing nothing, if `src` does not exist. The caller
    /// handles `src == dst` and RENAMENX's check first.
    pub fn rename(&mut self, src: &[u8], dst: &[u8], now_ms: u64) -> bool {
        let db = self.db;
        let (shard, h, log) = self.shard_for(src);
        let Some(b) = Self::live_bucket(shard, log, db, h, src, now_ms, true) else {
            return false;
        };
        let Some(moved) = shard.remove_at(h, b) else {
            return false;
        };
        let (dst_shard, dh, log) = self.shard_for(dst);
        let replaced = match Self::live_bucket(dst_shard, log, db, dh, dst, now_ms, true) {
            Some(b) => dst_shard.remove_at(dh, b).is_some(),
            None => false,
        };
        let (key_deadline, access) = (moved.key_deadline(), moved.access());
        dst_shard.insert(dh, Entry::new(dst, moved.value, key_deadline, access));
        dst_shard.watchers.touch(dst);
        let (shard, _, log) = self.shard_for(src);
        log.note(&shard.watchers, db, src, Cause::Command, || {
            Change::Renamed {
                to: dst.to_vec(),
                replaced,
            }
        });
        true
    }

    /// Stores `value` at `key` with key TTL `deadline` (RESTORE), replacing a live key only
    /// if `replace`. Returns false, changing nothing, if the key exists and `replace` is
    /// not set, or `value` is empty.
    pub fn restore(
        &mut self,
        key: &[u8],
        value: HashValue,
        deadline: Option<u64>,
        replace: bool,
        now_ms: u64,
    ) -> bool {
        let db = self.db;
        let access = self.ks.access.initial(now_ms);
        let (shard, h, log) = self.shard_for(key);
        let existing = Self::live_bucket(shard, log, db, h, key, now_ms, true);
        if value.is_empty() || (existing.is_some() && !replace) {
            return false;
        }
        if let Some(b) = existing {
            shard.remove_at(h, b);
        }
        let b = shard.insert(h, Entry::new(key, value, deadline.unwrap_or(NEVER), access));
        let Some(e) = shard.entry_at(b) else {
            return true;
        };
        log.note(&shard.watchers, db, key, Cause::Command, || {
            Change::Restored {
                fields: e
                    .value
                    .iter()
                    .map(|f| (f.field.to_vec(), f.value.to_vec(), f.expire_at))
                    .collect(),
                deadline,
                replaced: existing.is_some(),
            }
        });
        true
    }

    /// The key's TTL deadline: None if the key is missing, Some(None) if it has no TTL.
    pub fn key_deadline(&mut self, key: &[u8], now_ms: u64) -> Option<Option<u64>> {
        let db = self.db;
        let reclaim = !self.ks.keeps_expired();
        let (shard, h, log) = self.shard_for(key);
        let b = Self::live_bucket(shard, log, db, h, key, now_ms, reclaim)?;
        let d = shard.entry_at(b)?.key_deadline();
        Some((d != NEVER).then_some(d))
    }

    /// Sets (Some) or removes (None) the key's TTL. Returns false if the key is missing.
    pub fn set_key_deadline(&mut self, key: &[u8], deadline: Option<u64>, now_ms: u64) -> bool {
        let db = self.db;
        let (shard, h, log) = self.shard_for(key);
        let Some(b) = Self::live_bucket(shard, log, db, h, key, now_ms, true) else {
            return false;
        };
        shard.set_deadline(Deadline::Key, h, b, deadline.unwrap_or(NEVER));
        log.note(&shard.watchers, db, key, Cause::Command, || {
            Change::KeyTtl { deadline }
        });
        true
    }

    pub fn watch(&mut self, key: &[u8], flag: &Arc<WatchFlag>) {
        let (shard, _, _) = self.shard_for(key);
        shard.watch(key, flag);
    }

    pub fn unwatch(&mut self, key: &[u8], flag: &Arc<WatchFlag>) {
        let (shard, _, _) = self.shard_for(key);
        shard.unwatch(key, flag);
    }

    // ---- whole-database operations: need LockPlan::Db or LockPlan::All ----

    /// Number of keys, including logically expired ones not yet reclaimed (DBSIZE).
    pub fn len(&mut self) -> usize {
        self.shards().map(|s| s.len()).sum()
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Deletes every key of this database (FLUSHDB).
    pub fn clear(&mut self) {
        self.clear_lazily(false);
    }

    /// FLUSHDB; with `lazy` (ASYNC) the keys' memory is freed by the lazyfree thread.
    pub fn clear_lazily(&mut self, lazy: bool) {
        let ks = self.ks;
        for s in self.shards() {
            let old = s.take_all();
            let keys = old.entries.len();
            if lazy && keys > 0 {
                ks.lazyfree.free(old, keys);
            }
        }
        self.log.note_db(self.db, Change::Flushed);
    }

    /// Visits every live key (KEYS). Keys found gone (key TTL passed, or no live field)
    /// are skipped, and reclaimed once the visit is over.
    pub fn for_each_key(&mut self, now_ms: u64, mut f: impl FnMut(&[u8], &HashValue)) {
        let mut dead: Vec<Vec<u8>> = Vec::new();
        for shard in self.shards() {
            for e in shard.data.entries.iter() {
                if e.is_dead(now_ms) {
                    dead.push(e.key().to_vec());
                } else {
                    f(e.key(), &e.value);
                }
            }
        }
        self.log.count_lookups(false);
        for key in dead {
            self.exists(&key, now_ms);
        }
    }

    /// One step of SCAN: visits about `count` keys and returns the next cursor (0 = done).
    /// Cursor layout: shard generation (16 bits) | shard (8 bits) | bucket (40 bits). A
    /// cursor from before its shard's entries moved restarts that shard, so every key
    /// present for the whole scan is returned at least once. Gone keys met are skipped
    /// and reclaimed once the step is done (a deletion may shrink a table, which bumps its
    /// generation, so the next step restarts that shard rather than skip keys).
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut visit: impl FnMut(&[u8], &HashValue),
    ) -> u64 {
        let mut dead: Vec<Vec<u8>> = Vec::new();
        let next = self.scan_step(cursor, count.max(1), now_ms, &mut visit, &mut dead);
        self.log.count_lookups(false);
        for key in dead {
            self.exists(&key, now_ms);
        }
        next
    }

    fn scan_step(
        &mut self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        visit: &mut impl FnMut(&[u8], &HashValue),
        dead: &mut Vec<Vec<u8>>,
    ) -> u64 {
        let nshards = self.ks.shards_per_db();
        let mut shard_idx = ((cursor >> 40) & 0xff) as usize;
        let mut bucket = (cursor & ((1 << 40) - 1)) as usize;
        let generation = (cursor >> 48) as u16;
        if shard_idx >= nshards {
            return 0;
        }
        let mut seen = 0;
        let mut first = true;
        while shard_idx < nshards {
            let pos = self.shard_pos(shard_idx);
            let shard = &mut *self.held[pos].guard;
            if first && cursor != 0 && shard.data.generation as u16 != generation {
                bucket = 0;
            }
            first = false;
            let buckets = shard.data.entries.num_buckets();
            while bucket < buckets && seen < count {
                if let Some(e) = shard.entry_at(bucket) {
                    if e.is_dead(now_ms) {
                        dead.push(e.key().to_vec());
                    } else {
                        visit(e.key(), &e.value);
                        seen += 1;
                    }
                }
                bucket += 1;
            }
            if bucket < buckets {
                let g = u64::from(shard.data.generation as u16);
                return g << 48 | (shard_idx as u64) << 40 | bucket as u64;
            }
            shard_idx += 1;
            bucket = 0;
            if seen >= count && shard_idx < nshards {
                let pos = self.shard_pos(shard_idx);
                let g = u64::from(self.held[pos].guard.data.generation as u16);
                return g << 48 | (shard_idx as u64) << 40;
            }
        }
        0
    }

    /// A random live key (RANDOMKEY); gone keys met are reclaimed.
    /// On a replica, where gone keys stay, it gives up after 100 of them and returns the
    /// last one met, as Redis does (the whole database may be expired there).
    pub fn random_key(&mut self, now_ms: u64, rng: &mut fastrand::Rng) -> Option<Vec<u8>> {
        let mut tries_left = if self.ks.keeps_expired() {
            100
        } else {
            usize::MAX
        };
        self.log.count_lookups(false);
        loop {
            let total: usize = self.shards().map(|s| s.len()).sum();
            if total == 0 {
                return None;
            }
            // Pick a shard weighted by size, then a random occupied bucket in it.
            let db = self.db;
            let mut n = rng.usize(..total);
            let pos = self.held.iter().position(|h| {
                if h.db != db {
                    return false;
                }
                let len = h.guard.len();
                if n < len {
                    true
                } else {
                    n -= len;
                    false
                }
            })?;
            let shard = &mut *self.held[pos].guard;
            let buckets = shard.data.entries.num_buckets();
            let b = loop {
                let b = rng.usize(..buckets);
                if shard.entry_at(b).is_some() {
                    break b;
                }
            };
            let e = shard.entry_at(b)?;
            if e.is_dead(now_ms) {
                let key = e.key().to_vec();
                tries_left -= 1;
                if tries_left == 0 {
                    return Some(key);
                }
                self.exists(&key, now_ms);
                continue;
            }
            return Some(e.key().to_vec());
        }
    }
}

/// Write access to one hash. Every change goes through its methods and is noted in the
/// lock set's record; dropping it settles the key ([`Shard::settle`]): an empty hash is
/// deleted, and the field-expiry index is brought up to date.
pub struct HashMut<'s> {
    shard: &'s mut Shard,
    log: &'s mut EffectLog,
    db: usize,
    bucket: usize,
    key_hash: u64,
    /// Stored fields when opened (expired ones included): where the size histogram
    /// counts the hash until the handle drops.
    len_at_open: usize,
    modified: bool,
    /// The field-deadline registration must be re-derived on drop even if nothing changed
    /// (a table's registered deadline is a lower bound that a fruitless reap moves forward).
    reindex: bool,
    /// The key was created for this handle and has not been reported yet: it is, with its
    /// first field, or it vanishes unreported if it stays empty.
    unreported_new: bool,
    /// What removed the last field, should the hash end up empty.
    last_removal: Cause,
    limits: EncodingLimits,
}

impl<'s> HashMut<'s> {
    /// Write access to the entry in `bucket`, with its expired fields reclaimed.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn open(
        shard: &'s mut Shard,
        log: &'s mut EffectLog,
        db: usize,
        bucket: usize,
        key_hash: u64,
        limits: EncodingLimits,
        created: bool,
        now_ms: u64,
    ) -> Self {
        let len_at_open = shard.entry_at(bucket).map_or(0, |e| e.value.len());
        let mut hm = HashMut {
            shard,
            log,
            db,
            bucket,
            key_hash,
            len_at_open,
            modified: false,
            reindex: false,
            unreported_new: created,
            last_removal: Cause::Command,
            limits,
        };
        hm.reap_expired(now_ms);
        hm
    }

    fn entry(&self) -> &Entry {
        // The bucket cannot change while we hold the shard exclusively.
        self.shard
            .entry_at(self.bucket)
            .expect("HashMut bucket is occupied")
    }

    fn value_mut(&mut self) -> &mut HashValue {
        &mut self
            .shard
            .entry_at_mut(self.bucket)
            .expect("HashMut bucket is occupied")
            .value
    }

    /// Notes a change of this hash made by the command; `change` sees the value after it.
    fn note(&mut self, change: impl FnOnce(&HashValue) -> Change) {
        self.modified = true;
        let shard = &*self.shard;
        if !self.log.recording() && shard.watchers.is_empty() {
            // Nobody to tell and nothing to record: only the count (the common case).
            self.log
                .count_command_changes(1 + usize::from(self.unreported_new));
            self.unreported_new = false;
            return;
        }
        let Some(e) = shard.entry_at(self.bucket) else {
            return;
        };
        if self.unreported_new {
            self.unreported_new = false;
            self.log
                .note(&shard.watchers, self.db, e.key(), Cause::Command, || {
                    Change::KeyCreated
                });
        }
        self.log
            .note(&shard.watchers, self.db, e.key(), Cause::Command, || {
                change(&e.value)
            });
    }

    pub fn key(&self) -> &[u8] {
        self.entry().key()
    }

    /// Sets a field; returns true if it is new. Converts the encoding when needed.
    pub fn set(&mut self, field: &[u8], value: &[u8], ttl: TtlUpdate) -> bool {
        let limits = self.limits;
        let v = self.value_mut();
        if v.needs_table_for(field, value, &limits) {
            v.convert_to_table();
        }
        let new = v.set(field, value, ttl);
        v.fit_encoding(&limits);
        self.note(|v| Change::FieldSet {
            field: field.to_vec(),
            value: value.to_vec(),
            deadline: v.get(field).and_then(|f| f.expire_at),
            ttl,
        });
        new
    }

    /// HSET's write of `pairs`, in order; returns how many fields are new. The same as
    /// [`HashMut::set`] on each pair with [`TtlUpdate::Clear`] (that is what it does when
    /// a pair may convert the encoding), with the new fields of a compact hash appended at
    /// once.
    pub fn set_pairs(&mut self, pairs: &[(&[u8], &[u8])]) -> usize {
        let limits = self.limits;
        if !self.value_mut().set_pairs_fits(pairs, &limits) {
            return pairs
                .iter()
                .filter(|&&(f, v)| self.set(f, v, TtlUpdate::Clear))
                .count();
        }
        let created = self.value_mut().set_pairs(pairs);
        // HSET clears every TTL it writes: no field needs looking up again for its deadline.
        for &(field, value) in pairs {
            self.note(|_| Change::FieldSet {
                field: field.to_vec(),
                value: value.to_vec(),
                deadline: None,
                ttl: TtlUpdate::Clear,
            });
        }
        created
    }

    /// Converts a compact hash to a table if a command writes more field/value pairs than
    /// `hash-max-listpack-entries`, repeated fields included (Redis's
    /// `hashTypeTryConversion`, which counts the arguments before writing any).
    pub fn fit_pairs(&mut self, pairs: usize) {
        if pairs > self.limits.compact_entries() {
            self.value_mut().convert_to_table();
        }
    }

    /// What a field-expiration command does to a compact hash before it looks at the
    /// fields: it becomes `listpackex`, even if no TTL is set in the end. Not a change.
    pub fn mark_field_expiry(&mut self) {
        self.value_mut().mark_field_expiry();
    }

    /// Sets or clears a field's TTL; false if the field is missing.
    pub fn set_expire(&mut self, field: &[u8], expire_at: Option<u64>) -> bool {
        if !self.value_mut().set_expire(field, expire_at) {
            return false;
        }
        self.note(|_| Change::FieldTtl {
            field: field.to_vec(),
            deadline: expire_at,
        });
        true
    }

    /// Removes a field; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if !self.value_mut().remove(field) {
            return false;
        }
        self.last_removal = Cause::Command;
        self.note(|_| Change::FieldDeleted {
            field: field.to_vec(),
        });
        true
    }

    /// Reclaims every field expired at `now_ms` (lazy field expiry), noting each.
    #[inline]
    pub fn reap_expired(&mut self, now_ms: u64) -> usize {
        let due = self.entry().field_deadline();
        if due == NEVER || due >= now_ms {
            return 0;
        }
        self.reap_due(now_ms)
    }

    /// The part of [`HashMut::reap_expired`] that runs when something is due.
    #[inline(never)]
    fn reap_due(&mut self, now_ms: u64) -> usize {
        self.reindex = true;
        let (db, bucket) = (self.db, self.bucket);
        let Shard { data, watchers, .. } = &mut *self.shard;
        let Some(entry) = data.entries.get_bucket_mut(bucket) else {
            return 0;
        };
        let n = entry.reap(now_ms, usize::MAX, watchers, db, self.log);
        // Only a real removal is a change (watchers were told by the note).
        if n > 0 {
            self.modified = true;
            self.last_removal = Cause::Expired;
        }
        n
    }
}

impl Deref for HashMut<'_> {
    type Target = HashValue;
    fn deref(&self) -> &HashValue {
        &self.entry().value
    }
}

impl Drop for HashMut<'_> {
    fn drop(&mut self) {
        let (h, b) = (self.key_hash, self.bucket);
        let Some(e) = self.shard.entry_at(b) else {
            return;
        };
        let len = e.value.len();
        self.shard.data.sizes.resize(self.len_at_open, len);
        if self.unreported_new && len == 0 {
            // Created for a write that did not happen: it never existed.
            self.shard.remove_at(h, b);
        } else if self.modified || self.reindex {
            self.shard
                .settle(h, b, self.db, self.log, self.last_removal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(ks: &Keyspace, keys: &[&[u8]]) -> LockPlan {
        let mut shards: SmallVec<[usize; 4]> = keys.iter().map(|k| ks.shard_of(k)).collect();
        shards.sort_unstable();
        shards.dedup();
        LockPlan::Shards { db: 0, shards }
    }

    #[test]
    fn empty_hash_never_exists() {
        let ks = Keyspace::new(16, 4);
        let mut l = ks.lock(&plan_for(&ks, &[b"k"]));
        let mut db = l.db(0);
        drop(db.get_or_create(b"k", 0));
        assert!(!db.exists(b"k", 0));
        let mut h = db.get_or_create(b"k", 0);
        h.set(b"f", b"v", TtlUpdate::Clear);
        drop(h);
        assert!(db.exists(b"k", 0));
        let mut h = db.get_mut(b"k", 0).unwrap();
        assert!(h.remove(b"f"));
        drop(h);
        assert!(!db.exists(b"k", 0));
    }

    #[test]
    fn lazy_field_expiry_deletes_the_key_with_its_last_field() {
        let ks = Keyspace::new(1, 1);
        let mut l = ks.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        let mut h = db.get_or_create(b"k", 0);
        h.set(b"f", b"v", TtlUpdate::Set(100));
        drop(h);
        assert!(db.get_mut(b"k", 200).is_none());
        assert!(!db.exists(b"k", 200));
        drop(l);
        // Counted when the locks are released.
        assert_eq!(ks.stats.expired_subkeys.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn key_ttl_is_lazy_and_indexed() {
        let ks = Keyspace::new(1, 1);
        let mut l = ks.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        db.get_or_create(b"k", 0).set(b"f", b"v", TtlUpdate::Clear);
        assert!(db.set_key_deadline(b"k", Some(50), 0));
        assert_eq!(db.key_deadline(b"k", 10), Some(Some(50)));
        assert_eq!(db.key_deadline(b"k", 51), None);
        drop(l);
        assert_eq!(ks.stats.expired_keys.load(Ordering::Relaxed), 1);
        ks.with_shard(0, 0, |s| assert!(s.data.key_deadlines.is_empty()));
    }

    #[test]
    fn sweeper_reclaims_fields_and_keys() {
        let ks = Keyspace::new(1, 1);
        {
            let mut l = ks.lock(&LockPlan::Db(0));
            let mut db = l.db(0);
            for i in 0..100u64 {
                let key = format!("k{i}");
                let mut h = db.get_or_create(key.as_bytes(), 0);
                h.set(b"a", b"1", TtlUpdate::Set(10 + i));
                h.set(b"b", b"1", TtlUpdate::Set(10 + i));
                if i % 2 == 0 {
                    h.set(b"keep", b"1", TtlUpdate::Clear);
                }
            }
            db.get_or_create(b"ttl", 0)
                .set(b"f", b"v", TtlUpdate::Clear);
            db.set_key_deadline(b"ttl", Some(5), 0);
        }
        let out = ks.sweep_shard(0, 0, 1000, 50).0;
        assert_eq!(out.keys + out.fields, 50);
        assert!(out.more_due);
        let out = ks.sweep_shard(0, 0, 1000, usize::MAX).0;
        assert!(!out.more_due);
        ks.with_shard(0, 0, |s| {
            assert_eq!(s.len(), 50);
            assert!(s.data.field_deadlines.is_empty());
            assert!(s.data.key_deadlines.is_empty());
        });
    }

    #[test]
    fn watchers_see_writes_and_expiry() {
        let ks = Keyspace::new(1, 1);
        let flag = Arc::new(WatchFlag::default());
        let mut l = ks.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        db.watch(b"k", &flag);
        db.get_or_create(b"other", 0)
            .set(b"f", b"v", TtlUpdate::Clear);
        assert!(!flag.is_dirty());
        db.get_or_create(b"k", 0)
            .set(b"f", b"v", TtlUpdate::Set(10));
        assert!(flag.is_dirty());
        flag.reset();
        let _ = db.get_mut(b"k", 100);
        assert!(flag.is_dirty(), "lazy field expiry is a change");
    }

    #[test]
    fn a_fruitless_reap_does_not_dirty_watchers() {
        let ks = Keyspace::new(1, 1);
        let flag = Arc::new(WatchFlag::default());
        let mut l = ks.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        let mut h = db.get_or_create(b"k", 0);
        h.set(b"a", b"v", TtlUpdate::Set(5_000));
        h.set(b"b", b"v", TtlUpdate::Set(9_000));
        drop(h);
        db.get_mut(b"k", 0).unwrap().value_mut().convert_to_table();
        // Removing "a" leaves the table's registered deadline behind as a lower bound.
        db.get_mut(b"k", 0).unwrap().remove(b"a");
        db.watch(b"k", &flag);
        // Past the stale bound, before "b" expires: nothing is reclaimed, nothing changed.
        assert!(db.get_mut(b"k", 8_500).is_some());
        assert!(!flag.is_dirty());
        assert_eq!(db.get(b"k", 8_500).unwrap().min_expire(), Some(9_000));
        let _ = db.get_mut(b"k", 9_001);
        assert!(flag.is_dirty(), "a real expiry is a change");
    }

    #[test]
    fn scan_covers_all_keys() {
        let ks = Keyspace::new(1, 4);
        let mut l = ks.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        for i in 0..500 {
            db.get_or_create(format!("k{i}").as_bytes(), 0)
                .set(b"f", b"v", TtlUpdate::Clear);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = db.scan(cursor, 7, 0, |k, _| {
                seen.insert(k.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 500);
        assert_eq!(db.len(), 500);
        let mut rng = fastrand::Rng::with_seed(1);
        assert!(db.random_key(0, &mut rng).is_some());
    }

    #[test]
    fn swapdb_moves_data_and_field_ttls() {
        let ks = Keyspace::new(2, 2);
        let mut l = ks.lock(&LockPlan::All);
        l.db(0)
            .get_or_create(b"k", 0)
            .set(b"f", b"v", TtlUpdate::Set(99));
        l.swap_dbs(0, 1);
        assert!(!l.db(0).exists(b"k", 0));
        assert_eq!(l.db(1).get(b"k", 0).unwrap().min_expire(), Some(99));
    }
}
