//! The in-memory keyspace: databases → shards → entries (hash values), with key and field
//! expiry indexes per shard.
//!
//! Locking: a command's shards are locked by the dispatcher, in ascending `(db, shard)`
//! order, before its handler runs ([`Keyspace::lock`]). The handler sees the locked shards
//! through a [`DbView`], whose methods are the only way to read or change keys. Those
//! methods apply lazy key expiry, keep the expiry indexes true, delete a hash the moment it
//! has no fields, and mark WATCHers dirty on every change ([`HashMut`] does this on drop).

pub mod hash;
pub mod key;
pub mod packed;
mod prefetch;
pub mod shard;

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

pub use hash::{Encoding, EncodingLimits, HashValue, TtlUpdate};
pub use key::Key;
pub use packed::{FieldRef, MAX_FIELD_EXPIRE_MS};
pub use shard::{Deadline, Entry, Shard, SweepOutcome, WatchFlag, NEVER};

/// Counters the keyspace keeps for INFO stats.
#[derive(Debug, Default)]
pub struct KeyspaceStats {
    /// Keys removed because their TTL passed (`expired_keys`).
    pub expired_keys: AtomicU64,
    /// Hash fields removed because their TTL passed (`expired_subkeys`).
    pub expired_subkeys: AtomicU64,
}

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
    pub stats: KeyspaceStats,
}

struct Db {
    shards: Box<[Mutex<Shard>]>,
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

/// Shards held locked for the duration of one command (or one EXEC).
pub struct Locked<'a> {
    ks: &'a Keyspace,
    held: SmallVec<[Held<'a>; 2]>,
}

struct Held<'a> {
    db: usize,
    shard: usize,
    guard: MutexGuard<'a, Shard>,
}

impl Keyspace {
    /// `databases` databases of `shards` shards each (`shards` is rounded up to a power of
    /// two, at most 256).
    pub fn new(databases: usize, shards: usize) -> Self {
        let shards = shards.clamp(1, 256).next_power_of_two();
        let hasher = ahash::RandomState::new();
        let dbs = (0..databases.max(1))
            .map(|_| Db {
                shards: (0..shards)
                    .map(|_| Mutex::new(Shard::new(hasher.clone())))
                    .collect(),
            })
            .collect();
        let limits = EncodingLimits::default();
        Keyspace {
            dbs,
            hasher,
            shard_mask: shards - 1,
            max_compact_entries: AtomicUsize::new(limits.max_compact_entries),
            max_compact_value: AtomicUsize::new(limits.max_compact_value),
            stats: KeyspaceStats::default(),
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
        // ...then, with the slots (mostly) arrived, every hash's own buffer. A key found
        // also tells its shard where its table is now, for the next batch's first pass.
        for (key, &h) in keys.iter().zip(&hashes) {
            if let Some(mut shard) = db.shards[self.shard_of_hash(h)].try_lock() {
                if let Some(b) = shard.bucket_of(h, key) {
                    if let Some(entry) = shard.entry_at(b) {
                        entry.value.prefetch();
                    }
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
    /// can deadlock.
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
        Locked { ks: self, held }
    }

    /// Runs `f` on each shard of each database in turn, one lock at a time (the sweeper,
    /// INFO). Not atomic across shards.
    pub fn for_each_shard(&self, mut f: impl FnMut(usize, usize, &mut Shard)) {
        for (d, db) in self.dbs.iter().enumerate() {
            for (s, shard) in db.shards.iter().enumerate() {
                f(d, s, &mut shard.lock());
            }
        }
    }

    /// Runs `f` on one shard under its lock.
    pub fn with_shard<R>(&self, db: usize, shard: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        f(&mut self.dbs[db].shards[shard].lock())
    }

    /// Per-database summary for INFO keyspace: (keys, keys with a TTL, hashes with field TTLs).
    pub fn db_summary(&self, db: usize) -> (usize, usize, usize) {
        let mut sum = (0, 0, 0);
        for shard in self.dbs[db].shards.iter() {
            let s = shard.lock();
            sum.0 += s.data.entries.len();
            sum.1 += s.data.key_deadlines.len();
            sum.2 += s.data.field_deadlines.len();
        }
        sum
    }
}

impl<'a> Locked<'a> {
    /// A view of database `db` through the held shards.
    pub fn db(&mut self, db: usize) -> DbView<'_, 'a> {
        DbView {
            ks: self.ks,
            db,
            held: &mut self.held,
        }
    }

    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    /// Whether shard `shard` of database `db` is held.
    pub fn holds(&self, db: usize, shard: usize) -> bool {
        self.held.iter().any(|h| h.db == db && h.shard == shard)
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
            self.held[ia].guard.touch_all_existing();
            self.held[ib].guard.touch_all_existing();
        }
    }
}

/// A key moved out of the keyspace with its TTLs (RENAME).
pub struct StoredKey {
    pub value: HashValue,
    pub key_deadline: u64,
}

/// One database, seen through the shards its command holds.
pub struct DbView<'l, 'a> {
    ks: &'a Keyspace,
    db: usize,
    held: &'l mut SmallVec<[Held<'a>; 2]>,
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

    /// The locked shard holding `key`, and the key's hash.
    fn shard_for(&mut self, key: &[u8]) -> (&mut Shard, u64) {
        let h = self.ks.key_hash(key);
        let pos = self.shard_pos(self.ks.shard_of_hash(h));
        (&mut self.held[pos].guard, h)
    }

    fn shards(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'l, 'a> {
        let db = self.db;
        self.held
            .iter_mut()
            .filter(move |h| h.db == db)
            .map(|h| &mut *h.guard)
    }

    /// Finds a live key: a key whose TTL has passed is deleted here (lazy key expiry).
    fn live_bucket(
        ks: &Keyspace,
        shard: &mut Shard,
        h: u64,
        key: &[u8],
        now_ms: u64,
    ) -> Option<usize> {
        let b = shard.bucket_of(h, key)?;
        let deadline = shard.entry_at(b)?.key_deadline;
        if deadline != NEVER && deadline < now_ms {
            shard.remove_at(h, b);
            shard.touch(key);
            ks.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(b)
    }

    /// The hash at `key`, for reading. Expired fields are still stored; readers skip them
    /// with `get_live`/`is_expired` (spec §5.4: HGETALL and friends do not delete).
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&HashValue> {
        let ks = self.ks;
        let (shard, h) = self.shard_for(key);
        let b = Self::live_bucket(ks, shard, h, key, now_ms)?;
        shard.entry_at(b).map(|e| &e.value)
    }

    /// The hash at `key`, for writing, with its expired fields already reclaimed (lazy
    /// field expiry). None if the key is missing, or vanished because every field expired.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<HashMut<'_>> {
        let ks = self.ks;
        let (shard, h) = self.shard_for(key);
        let b = Self::live_bucket(ks, shard, h, key, now_ms)?;
        let hm = HashMut::open(ks, shard, b, h, now_ms);
        if hm.is_empty() {
            drop(hm);
            return None;
        }
        Some(hm)
    }

    /// Like [`DbView::get_mut`], creating an empty hash if the key is missing. An empty
    /// hash is deleted again when the [`HashMut`] drops, so failed writes leave no key.
    pub fn get_or_create(&mut self, key: &[u8], now_ms: u64) -> HashMut<'_> {
        let ks = self.ks;
        let (shard, h) = self.shard_for(key);
        let b = match Self::live_bucket(ks, shard, h, key, now_ms) {
            Some(b) => b,
            None => shard.insert(
                h,
                Entry {
                    key: Key::new(key),
                    key_deadline: NEVER,
                    field_deadline: NEVER,
                    value: HashValue::new(),
                },
            ),
        };
        HashMut::open(ks, shard, b, h, now_ms)
    }

    /// True if `key` exists (a hash whose fields all expired but are not yet reclaimed
    /// still exists, as in Redis).
    pub fn exists(&mut self, key: &[u8], now_ms: u64) -> bool {
        let ks = self.ks;
        let (shard, h) = self.shard_for(key);
        Self::live_bucket(ks, shard, h, key, now_ms).is_some()
    }

    /// Deletes `key`. Returns true if it existed.
    pub fn delete(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.take(key, now_ms).is_some()
    }

    /// Removes `key` and returns its value and key TTL (RENAME, SWAPDB-like moves).
    pub fn take(&mut self, key: &[u8], now_ms: u64) -> Option<StoredKey> {
        let ks = self.ks;
        let (shard, h) = self.shard_for(key);
        let b = Self::live_bucket(ks, shard, h, key, now_ms)?;
        let e = shard.remove_at(h, b)?;
        shard.touch(key);
        Some(StoredKey {
            value: e.value,
            key_deadline: e.key_deadline,
        })
    }

    /// Stores `value` at `key`, replacing whatever was there (RENAME's destination).
    pub fn put(&mut self, key: &[u8], stored: StoredKey, now_ms: u64) {
        self.delete(key, now_ms);
        let (shard, h) = self.shard_for(key);
        let field_deadline = stored.value.min_expire().unwrap_or(NEVER);
        shard.insert(
            h,
            Entry {
                key: Key::new(key),
                key_deadline: stored.key_deadline,
                field_deadline,
                value: stored.value,
            },
        );
        shard.touch(key);
    }

    /// The key's TTL deadline: None if the key is missing, Some(None) if it has no TTL.
    pub fn key_deadline(&mut self, key: &[u8], now_ms: u64) -> Option<Option<u64>> {
        let ks = self.ks;
        let (shard, h) = self.shard_for(key);
        let b = Self::live_bucket(ks, shard, h, key, now_ms)?;
        let d = shard.entry_at(b)?.key_deadline;
        Some((d != NEVER).then_some(d))
    }

    /// Sets (Some) or removes (None) the key's TTL. Returns false if the key is missing.
    pub fn set_key_deadline(&mut self, key: &[u8], deadline: Option<u64>, now_ms: u64) -> bool {
        let ks = self.ks;
        let (shard, h) = self.shard_for(key);
        let Some(b) = Self::live_bucket(ks, shard, h, key, now_ms) else {
            return false;
        };
        shard.set_deadline(Deadline::Key, h, b, deadline.unwrap_or(NEVER));
        shard.touch(key);
        true
    }

    /// Signals a change of `key` to its watchers without changing it.
    pub fn touch(&mut self, key: &[u8]) {
        let (shard, _) = self.shard_for(key);
        shard.touch(key);
    }

    pub fn watch(&mut self, key: &[u8], flag: &Arc<WatchFlag>) {
        let (shard, _) = self.shard_for(key);
        shard.watch(key, flag);
    }

    pub fn unwatch(&mut self, key: &[u8], flag: &Arc<WatchFlag>) {
        let (shard, _) = self.shard_for(key);
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

    /// INFO keyspace through held shards: (keys, keys with a TTL, hashes with field TTLs),
    /// the same counts as [`Keyspace::db_summary`] for a command that holds the database.
    pub fn summary(&mut self) -> (usize, usize, usize) {
        self.shards().fold((0, 0, 0), |sum, s| {
            (
                sum.0 + s.data.entries.len(),
                sum.1 + s.data.key_deadlines.len(),
                sum.2 + s.data.field_deadlines.len(),
            )
        })
    }

    /// Deletes every key of this database (FLUSHDB).
    pub fn clear(&mut self) {
        self.shards().for_each(|s| s.clear());
    }

    /// Visits every live key (KEYS). Keys past their TTL are skipped, not deleted.
    pub fn for_each_key(&mut self, now_ms: u64, mut f: impl FnMut(&[u8], &HashValue)) {
        for shard in self.shards() {
            for e in shard.data.entries.iter() {
                if e.key_deadline == NEVER || e.key_deadline >= now_ms {
                    f(&e.key, &e.value);
                }
            }
        }
    }

    /// One step of SCAN: visits about `count` keys and returns the next cursor (0 = done).
    /// Cursor layout: shard generation (16 bits) | shard (8 bits) | bucket (40 bits). A
    /// cursor from before its shard's entries moved restarts that shard, so every key
    /// present for the whole scan is returned at least once. Expired keys met are skipped
    /// and deleted once the step is done (a deletion may shrink a table, which bumps its
    /// generation, so the next step restarts that shard rather than skip keys).
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut visit: impl FnMut(&[u8], &HashValue),
    ) -> u64 {
        let mut expired: Vec<Vec<u8>> = Vec::new();
        let next = self.scan_step(cursor, count.max(1), now_ms, &mut visit, &mut expired);
        for key in expired {
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
        expired: &mut Vec<Vec<u8>>,
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
                    if e.key_deadline == NEVER || e.key_deadline >= now_ms {
                        visit(&e.key, &e.value);
                        seen += 1;
                    } else {
                        expired.push(e.key.to_vec());
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

    /// A random live key (RANDOMKEY); expired keys met are deleted.
    pub fn random_key(&mut self, now_ms: u64, rng: &mut fastrand::Rng) -> Option<Vec<u8>> {
        let ks = self.ks;
        let db = self.db;
        loop {
            let total: usize = self.shards().map(|s| s.len()).sum();
            if total == 0 {
                return None;
            }
            // Pick a shard weighted by size, then a random occupied bucket in it.
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
            if e.key_deadline != NEVER && e.key_deadline < now_ms {
                let h = shard.hash_key(&e.key);
                if let Some(e) = shard.remove_at(h, b) {
                    shard.touch(&e.key);
                    ks.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            return Some(e.key.to_vec());
        }
    }
}

/// Write access to one hash. Dropping it settles the key: an empty hash is deleted, the
/// field-expiry index is brought up to date, and watchers see the change.
pub struct HashMut<'s> {
    shard: &'s mut Shard,
    bucket: usize,
    key_hash: u64,
    modified: bool,
    /// The field-deadline registration must be re-derived on drop even if nothing changed
    /// (a table's registered deadline is a lower bound that a fruitless reap moves forward).
    reindex: bool,
    limits: EncodingLimits,
    stats: &'s KeyspaceStats,
}

impl<'s> HashMut<'s> {
    /// Write access to the entry in `bucket`, with its expired fields reclaimed.
    fn open(
        ks: &'s Keyspace,
        shard: &'s mut Shard,
        bucket: usize,
        key_hash: u64,
        now_ms: u64,
    ) -> Self {
        let mut hm = HashMut {
            shard,
            bucket,
            key_hash,
            modified: false,
            reindex: false,
            limits: ks.limits(),
            stats: &ks.stats,
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

    /// The value, for a change that will happen (watchers are told on drop).
    fn value_mut(&mut self) -> &mut HashValue {
        self.modified = true;
        self.value_unmarked()
    }

    /// The value, for a change that may not happen; the caller marks `modified` if it does.
    fn value_unmarked(&mut self) -> &mut HashValue {
        &mut self
            .shard
            .entry_at_mut(self.bucket)
            .expect("HashMut bucket is occupied")
            .value
    }

    pub fn key(&self) -> &[u8] {
        &self.entry().key
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
        new
    }

    /// Sets or clears a field's TTL; false if the field is missing.
    pub fn set_expire(&mut self, field: &[u8], expire_at: Option<u64>) -> bool {
        self.value_mut().set_expire(field, expire_at)
    }

    /// Removes a field; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed = self.value_unmarked().remove(field);
        self.modified |= removed;
        removed
    }

    /// Reclaims every field expired at `now_ms`, counting them in `expired_subkeys`.
    pub fn reap_expired(&mut self, now_ms: u64) -> usize {
        let due = self.entry().field_deadline;
        if due == NEVER || due >= now_ms {
            return 0;
        }
        // Only a real removal is a change watchers must see.
        let n = self.value_unmarked().remove_expired(now_ms, usize::MAX);
        self.modified |= n > 0;
        self.reindex = true;
        self.stats
            .expired_subkeys
            .fetch_add(n as u64, Ordering::Relaxed);
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
        let empty = e.value.is_empty();
        if self.modified {
            self.shard.touch(&e.key);
        }
        if empty {
            self.shard.remove_at(h, b);
        } else if self.modified || self.reindex {
            let next = e.value.min_expire().unwrap_or(NEVER);
            self.shard.set_deadline(Deadline::Field, h, b, next);
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
        assert!(db.exists(b"k", 200), "EXISTS does not reap fields");
        assert!(db.get_mut(b"k", 200).is_none());
        assert!(!db.exists(b"k", 200));
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
        assert_eq!(ks.stats.expired_keys.load(Ordering::Relaxed), 1);
        drop(l);
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
        let out = ks.with_shard(0, 0, |s| s.expire_due(1000, 50));
        assert_eq!(out.keys + out.fields, 50);
        assert!(out.more_due);
        let out = ks.with_shard(0, 0, |s| s.expire_due(1000, usize::MAX));
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
