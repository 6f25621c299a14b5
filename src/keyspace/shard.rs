//! One shard of one database: its keys, and the two expiry indexes that must agree with
//! them. Only methods here touch both, so they cannot drift apart.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::table_alloc::TableAlloc;
use hashbrown::HashTable;
use smallvec::SmallVec;

use super::effects::{Cause, Change, EffectLog};
use super::evict::AccessClock;
use super::hash::{HashValue, NO_DEADLINE};
use super::prefetch;

/// Shard tables smaller than this are not shrunk.
const MIN_SHRINK_CAPACITY: usize = 1024;

/// "No deadline" for the key TTL and the earliest-field deadline of an entry.
pub const NEVER: u64 = NO_DEADLINE;

/// One key of the keyspace: its hash, which also stores the key's name, its deadlines and
/// its access state (in a compact hash's buffer header, or a table's `Meta`), so that a
/// bucket of the shard table is 8 bytes (one tagged word, see `hash.rs`), full or empty.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) value: HashValue,
}

impl Entry {
    /// An entry for `key` holding `value`, registered under `value`'s earliest field
    /// deadline. `key_deadline` is a unix-ms TTL deadline or [`NEVER`]; `access` the LRU/LFU
    /// state (`evict.rs`).
    pub(super) fn new(key: &[u8], mut value: HashValue, key_deadline: u64, access: u32) -> Self {
        let field_deadline = value.min_expire().unwrap_or(NEVER);
        value.set_identity(key, key_deadline, field_deadline, access);
        Entry { value }
    }

    /// An entry for `key` with an empty hash and no TTL (a write about to add a field).
    pub(super) fn empty(key: &[u8], access: u32) -> Self {
        Entry {
            value: HashValue::empty_for_key(key, access),
        }
    }

    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        self.value.key()
    }

    /// Key-level TTL deadline (EXPIRE), unix ms, or [`NEVER`].
    #[inline]
    pub(super) fn key_deadline(&self) -> u64 {
        self.value.key_deadline()
    }

    /// The deadline this hash is registered under in the field-expiry index, or [`NEVER`].
    /// Always equals `value.min_expire()` once a command has finished with the key.
    #[inline]
    pub(super) fn field_deadline(&self) -> u64 {
        self.value.field_deadline()
    }

    /// When it was last used (LRU, seconds) or how often (LFU): see `evict.rs`.
    #[inline]
    pub(super) fn access(&self) -> u32 {
        self.value.access()
    }

    #[inline]
    pub(super) fn set_access(&mut self, a: u32) {
        self.value.set_access(a);
    }

    /// Removes up to `limit` fields expired at `now_ms`, noting each in `log` as an expired
    /// field of this key. Returns how many.
    pub(super) fn reap(
        &mut self,
        now_ms: u64,
        limit: usize,
        watchers: &Watchers,
        db: usize,
        log: &mut EffectLog,
    ) -> usize {
        // The key is stored with the fields being removed: a copy for the notes.
        let key: SmallVec<[u8; 64]> = SmallVec::from_slice(self.key());
        self.value.remove_expired(now_ms, limit, |f| {
            log.note_expired_field(watchers, db, &key, f)
        })
    }

    /// Records a use of the key in its access state.
    #[inline]
    pub(super) fn touch(&mut self, clock: &AccessClock, now_ms: u64) {
        let mut a = self.access();
        clock.touch(&mut a, now_ms);
        self.set_access(a);
    }

    /// Gone for every command although still stored: its key TTL passed, or every one of
    /// its fields expired (a hash with no live field does not exist).
    pub(super) fn is_dead(&self, now_ms: u64) -> bool {
        let key_deadline = self.key_deadline();
        let field_deadline = self.field_deadline();
        (key_deadline != NEVER && key_deadline < now_ms)
            || (field_deadline != NEVER
                && field_deadline < now_ms
                && self.value.all_expired(now_ms))
    }
}

/// A client's WATCH flag: set when any key it watches is modified.
#[derive(Debug, Default)]
pub struct WatchFlag {
    dirty: AtomicBool,
}

impl WatchFlag {
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Relaxed)
    }
    pub fn reset(&self) {
        self.dirty.store(false, Ordering::Relaxed);
    }
}

/// The data of a shard: what SWAPDB exchanges between databases.
#[derive(Debug, Default)]
pub(super) struct ShardData {
    pub(super) entries: HashTable<Entry, TableAlloc>,
    /// `(key deadline, key hash)` for every key with a TTL.
    pub(super) key_deadlines: BTreeSet<(u64, u64)>,
    /// `(earliest field deadline, key hash)` for every hash with field TTLs.
    pub(super) field_deadlines: BTreeSet<(u64, u64)>,
    /// The key deadlines of every entry with a TTL, summed in units of
    /// [`TTL_SUM_UNIT_MS`] (INFO's `avg_ttl`; 2^64 units hold 10^8 keys at any date).
    pub(super) key_deadline_sum: u64,
    /// Bumped when entry positions may move (a full table rehashes on insert); SCAN cursors
    /// carry it so a scan across a move restarts the shard instead of skipping keys.
    pub(super) generation: u32,
    /// How many hashes have how many stored fields (INFO keysizes), by power of two.
    pub(super) sizes: SizeBins,
}

/// Bins of a power-of-two histogram of hash lengths: bin 0 counts empty hashes (only
/// ever transient, inside a command), bin `k` lengths in `2^(k-1) .. 2^k`.
pub const SIZE_BINS: usize = 48;

#[derive(Clone, Debug)]
pub(super) struct SizeBins(pub(super) [u64; SIZE_BINS]);

impl Default for SizeBins {
    fn default() -> Self {
        SizeBins([0; SIZE_BINS])
    }
}

impl SizeBins {
    #[inline]
    pub(super) fn bin(len: usize) -> usize {
        ((usize::BITS - len.leading_zeros()) as usize).min(SIZE_BINS - 1)
    }

    #[inline]
    pub(super) fn add(&mut self, len: usize) {
        self.0[Self::bin(len)] += 1;
    }

    #[inline]
    pub(super) fn remove(&mut self, len: usize) {
        let b = &mut self.0[Self::bin(len)];
        *b = b.saturating_sub(1);
    }

    /// A hash went from `old` to `new` stored fields.
    #[inline]
    pub(super) fn resize(&mut self, old: usize, new: usize) {
        let (a, b) = (Self::bin(old), Self::bin(new));
        if a != b {
            self.0[a] = self.0[a].saturating_sub(1);
            self.0[b] += 1;
        }
    }
}

/// The unit of [`ShardData::key_deadline_sum`], in ms (a shift of 4).
pub(super) const TTL_SUM_UNIT_SHIFT: u32 = 4;

/// A key deadline's share of [`ShardData::key_deadline_sum`]. Deadlines past 2^48 ms
/// (the year 10889) count as that, so a million keys with absurd deadlines cannot
/// overflow the sum (their `avg_ttl` is then only a lower bound).
#[inline]
pub(super) fn ttl_units(deadline: u64) -> u64 {
    deadline.min(1 << 48) >> TTL_SUM_UNIT_SHIFT
}

/// A shard's sizes, readable without its lock (INFO keyspace, DBSIZE-like summaries).
/// Written under the lock after every change to the indexes.
#[derive(Debug, Default)]
pub(super) struct ShardCounts {
    pub(super) keys: AtomicUsize,
    pub(super) key_ttls: AtomicUsize,
    pub(super) field_ttl_hashes: AtomicUsize,
    /// Changes made under this shard's lock (summed for `rdb_changes_since_last_save`).
    /// Only a holder of the lock writes it, so a plain load and store suffice.
    pub(super) changes: AtomicU64,
    /// Key lookups of read commands that found their key, or not (`keyspace_hits`,
    /// `keyspace_misses`), added once per lock set. CONFIG RESETSTAT zeroes them.
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    /// [`ShardData::key_deadline_sum`], published.
    pub(super) key_deadline_sum: AtomicU64,
}

/// The keys clients WATCH in one shard. Empty unless someone watches, so a change pays
/// one `is_empty` check for the feature.
#[derive(Debug)]
pub(super) struct Watchers {
    by_key: HashMap<Box<[u8]>, Vec<Arc<WatchFlag>>, ahash::RandomState>,
}

impl Watchers {
    pub(super) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Marks every client watching `key` dirty.
    pub(super) fn touch(&self, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        if let Some(list) = self.by_key.get(key) {
            list.iter().for_each(|w| w.mark_dirty());
        }
    }
}

/// How many hashes due for field reclaim the sweep prefetches at a time.
const SWEEP_PREFETCH_KEYS: usize = 16;

/// One shard: data plus the keys clients WATCH in it.
#[derive(Debug)]
pub(super) struct Shard {
    pub(super) data: ShardData,
    /// Watched keys of this shard's database.
    pub(super) watchers: Watchers,
    /// Sizes published for lock-free readers.
    counts: Arc<ShardCounts>,
    hasher: ahash::RandomState,
    /// A bucket of `data.entries` recently seen full: where [`Shard::prefetch_slot`]
    /// derives the table's address from.
    known_full_bucket: Option<usize>,
}

/// Which deadline index a call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    Key,
    Field,
}

impl Entry {
    fn deadline(&self, which: Deadline) -> u64 {
        match which {
            Deadline::Key => self.key_deadline(),
            Deadline::Field => self.field_deadline(),
        }
    }
}

impl Shard {
    pub(super) fn new(hasher: ahash::RandomState, counts: Arc<ShardCounts>) -> Self {
        Shard {
            data: ShardData::default(),
            watchers: Watchers {
                by_key: HashMap::with_hasher(hasher.clone()),
            },
            counts,
            hasher,
            known_full_bucket: None,
        }
    }

    /// Adds `n` to the shard's change count (the caller holds the lock).
    /// Only the lock's holder adds (as for `changes`), so a plain load and store suffice;
    /// a CONFIG RESETSTAT racing with an add may keep that one lock set's counts.
    pub(super) fn add_lookups(&self, hits: u64, misses: u64) {
        let c = &self.counts;
        if hits > 0 {
            c.hits
                .store(c.hits.load(Ordering::Relaxed) + hits, Ordering::Relaxed);
        }
        if misses > 0 {
            c.misses
                .store(c.misses.load(Ordering::Relaxed) + misses, Ordering::Relaxed);
        }
    }

    pub(super) fn add_changes(&self, n: u64) {
        let c = &self.counts.changes;
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// Publishes the shard's sizes for lock-free readers.
    pub(super) fn sync_counts(&self) {
        let d = &self.data;
        let c = &self.counts;
        c.keys.store(d.entries.len(), Ordering::Relaxed);
        c.key_ttls.store(d.key_deadlines.len(), Ordering::Relaxed);
        c.key_deadline_sum
            .store(d.key_deadline_sum, Ordering::Relaxed);
        c.field_ttl_hashes
            .store(d.field_deadlines.len(), Ordering::Relaxed);
    }

    pub fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.data.entries.len()
    }

    /// Starts loading the control bytes and the entry slot where a lookup of hash `h`
    /// begins probing. Relies on hashbrown's layout (see the `prefetch` module; the unit
    /// test `prefetch_addresses_match_the_table_layout` pins it), and a wrong guess only
    /// wastes the prefetch. Does nothing until the table's address is known from a recent
    /// insert or lookup ([`Shard::note_full_bucket`]).
    pub fn prefetch_slot(&self, h: u64) {
        let Some(ctrl) = self.table_ctrl_addr() else {
            return;
        };
        let bucket = (h as usize) & (self.data.entries.num_buckets() - 1);
        prefetch::prefetch_bucket::<Entry>(ctrl, bucket);
    }

    /// Remembers `bucket`, just found full, as the reference point for the table's
    /// address.
    pub fn note_full_bucket(&mut self, bucket: usize) {
        self.known_full_bucket = Some(bucket);
    }

    /// Where [`Shard::prefetch_slot`] expects the entry of `bucket`.
    #[cfg(test)]
    fn predicted_addr(&self, bucket: usize) -> Option<usize> {
        let ctrl = self.table_ctrl_addr()?;
        Some(prefetch::bucket_addr::<Entry>(ctrl, bucket))
    }

    /// The address of the entry table's control bytes, derived from the remembered bucket
    /// if it is still full (in whatever table the shard holds now: a moved or rebuilt
    /// table gives its own address, or none). Never searches for another full bucket:
    /// that can mean scanning a long empty stretch, which would cost more than the
    /// prefetch saves.
    fn table_ctrl_addr(&self) -> Option<usize> {
        let bucket = self.known_full_bucket?;
        let entry = self.data.entries.get_bucket(bucket)?;
        Some(prefetch::ctrl_from(bucket, entry))
    }

    /// Starts loading the hash of the first entry whose tag matches hash `h` (the one a
    /// lookup of its key almost always finds) and returns its bucket, without comparing
    /// keys: the key is stored with the hash, so reading it would wait for the very load
    /// this starts.
    pub fn prefetch_value(&self, h: u64) -> Option<usize> {
        self.data.entries.find_bucket_index(h, |e| {
            e.value.prefetch();
            true
        })
    }

    pub fn bucket_of(&self, h: u64, key: &[u8]) -> Option<usize> {
        self.data.entries.find_bucket_index(h, |e| e.key() == key)
    }

    pub fn entry_at(&self, bucket: usize) -> Option<&Entry> {
        self.data.entries.get_bucket(bucket)
    }

    pub fn entry_at_mut(&mut self, bucket: usize) -> Option<&mut Entry> {
        self.data.entries.get_bucket_mut(bucket)
    }

    pub fn find(&self, h: u64, key: &[u8]) -> Option<&Entry> {
        self.data.entries.find(h, |e| e.key() == key)
    }

    /// Marks every watcher of this shard dirty if its key exists now (FLUSHDB, SWAPDB).
    pub fn touch_all_existing(&self) {
        for (key, list) in &self.watchers.by_key {
            let h = self.hash_key(key);
            if self.find(h, key).is_some() {
                list.iter().for_each(|w| w.mark_dirty());
            }
        }
    }

    pub fn watch(&mut self, key: &[u8], flag: &Arc<WatchFlag>) {
        let list = self.watchers.by_key.entry(key.into()).or_default();
        if !list.iter().any(|w| Arc::ptr_eq(w, flag)) {
            list.push(Arc::clone(flag));
        }
    }

    pub fn unwatch(&mut self, key: &[u8], flag: &Arc<WatchFlag>) {
        if let Some(list) = self.watchers.by_key.get_mut(key) {
            list.retain(|w| !Arc::ptr_eq(w, flag));
            if list.is_empty() {
                self.watchers.by_key.remove(key);
            }
        }
    }

    /// Inserts a new entry (the key must be absent) and indexes its deadlines.
    /// Returns its bucket.
    pub fn insert(&mut self, h: u64, entry: Entry) -> usize {
        let d = &mut self.data;
        if d.entries.len() == d.entries.capacity() {
            d.generation = d.generation.wrapping_add(1);
        }
        let (key_deadline, field_deadline) = (entry.key_deadline(), entry.field_deadline());
        if key_deadline != NEVER {
            d.key_deadlines.insert((key_deadline, h));
            d.key_deadline_sum = d.key_deadline_sum.wrapping_add(ttl_units(key_deadline));
        }
        if field_deadline != NEVER {
            d.field_deadlines.insert((field_deadline, h));
        }
        d.sizes.add(entry.value.len());
        let hasher = &self.hasher;
        let occupied = d
            .entries
            .insert_unique(h, entry, |e| hasher.hash_one(e.key()));
        let bucket = occupied.bucket_index();
        self.note_full_bucket(bucket);
        self.sync_counts();
        bucket
    }

    /// Removes the entry in `bucket` and its index entries. May shrink the table, which
    /// moves entries: bucket positions held by the caller are invalid afterwards.
    pub fn remove_at(&mut self, h: u64, bucket: usize) -> Option<Entry> {
        let occupied = self.data.entries.get_bucket_entry(bucket).ok()?;
        let (entry, _) = occupied.remove();
        self.data.sizes.remove(entry.value.len());
        let (key_deadline, field_deadline) = (entry.key_deadline(), entry.field_deadline());
        if key_deadline != NEVER {
            self.unindex(Deadline::Key, key_deadline, h);
            self.data.key_deadline_sum = self
                .data
                .key_deadline_sum
                .wrapping_sub(ttl_units(key_deadline));
        }
        if field_deadline != NEVER {
            self.unindex(Deadline::Field, field_deadline, h);
        }
        self.shrink_if_sparse();
        self.sync_counts();
        Some(entry)
    }

    /// Gives memory back once three quarters of the table is empty; also keeps RANDOMKEY's
    /// random bucket probes cheap. Amortised O(1) per removal.
    fn shrink_if_sparse(&mut self) {
        let d = &mut self.data;
        let (len, cap) = (d.entries.len(), d.entries.capacity());
        if cap > MIN_SHRINK_CAPACITY && len * 4 < cap {
            let hasher = &self.hasher;
            d.entries.shrink_to(len * 2, |e| hasher.hash_one(e.key()));
            d.generation = d.generation.wrapping_add(1);
        }
    }

    /// Removes `(t, h)` from an index unless another key with hash `h` still has deadline
    /// `t` there (two keys sharing a 64-bit keyed hash and a deadline: rare, but handled).
    fn unindex(&mut self, which: Deadline, t: u64, h: u64) {
        let shared = self
            .data
            .entries
            .iter_hash(h)
            .any(|e| e.deadline(which) == t && self.hasher.hash_one(e.key()) == h);
        if !shared {
            let index = match which {
                Deadline::Key => &mut self.data.key_deadlines,
                Deadline::Field => &mut self.data.field_deadlines,
            };
            index.remove(&(t, h));
        }
    }

    /// Changes the deadline of the entry in `bucket` in one index, keeping the index true.
    pub fn set_deadline(&mut self, which: Deadline, h: u64, bucket: usize, new: u64) {
        let Some(e) = self.data.entries.get_bucket_mut(bucket) else {
            return;
        };
        let old = e.deadline(which);
        if old == new {
            return;
        }
        match which {
            Deadline::Key => {
                e.value.set_key_deadline(new);
                let sum = &mut self.data.key_deadline_sum;
                if old != NEVER {
                    *sum = sum.wrapping_sub(ttl_units(old));
                }
                if new != NEVER {
                    *sum = sum.wrapping_add(ttl_units(new));
                }
            }
            Deadline::Field => e.value.set_field_deadline(new),
        }
        if old != NEVER {
            self.unindex(which, old, h);
        }
        if new != NEVER {
            let index = match which {
                Deadline::Key => &mut self.data.key_deadlines,
                Deadline::Field => &mut self.data.field_deadlines,
            };
            index.insert((new, h));
        }
        self.sync_counts();
    }

    /// The bucket of an entry registered under `(t, h)` in `which`, if any.
    pub(super) fn bucket_by_deadline(&self, which: Deadline, t: u64, h: u64) -> Option<usize> {
        self.data.entries.find_bucket_index(h, |e| {
            e.deadline(which) == t && self.hasher.hash_one(e.key()) == h
        })
    }

    /// Removes all entries (FLUSHDB). Watchers of keys that existed become dirty.
    pub fn clear(&mut self) {
        drop(self.take_all());
    }

    /// Empties the shard and hands back what it held (for freeing elsewhere).
    pub(super) fn take_all(&mut self) -> ShardData {
        self.touch_all_existing();
        let old = std::mem::take(&mut self.data);
        self.sync_counts();
        old
    }

    /// Brings the key in `bucket` back to its invariants after its hash changed: deleted if
    /// it has no field left (recorded as the key's removal, `cause` being what removed its
    /// last field), otherwise registered under its earliest field deadline. The one place
    /// commands ([`super::HashMut`]) and the sweeper settle a hash. Returns true if the key
    /// was deleted; bucket positions are invalid then.
    #[inline]
    pub(super) fn settle(
        &mut self,
        h: u64,
        bucket: usize,
        db: usize,
        log: &mut EffectLog,
        cause: Cause,
    ) -> bool {
        let Some(e) = self.data.entries.get_bucket(bucket) else {
            return false;
        };
        if e.value.is_empty() {
            log.note(&self.watchers, db, e.key(), cause, || Change::KeyDeleted {
                emptied: true,
            });
            self.remove_at(h, bucket);
            true
        } else {
            let next = e.value.min_expire().unwrap_or(NEVER);
            self.set_deadline(Deadline::Field, h, bucket, next);
            false
        }
    }

    /// Active expiry of this shard (database `db`), oldest deadline first: whole keys whose
    /// TTL passed, then fields. Does at most `budget` units of work (one per key or field
    /// reclaimed) so the lock is held briefly. Everything reclaimed is recorded in `log`,
    /// one hash at a time (so a hash's fields reclaimed in one call are one `hexpired`).
    /// Returns what it reclaimed and whether due work remains.
    pub(super) fn expire_due(
        &mut self,
        now_ms: u64,
        budget: usize,
        db: usize,
        log: &mut EffectLog,
    ) -> SweepOutcome {
        let mut out = SweepOutcome::default();
        while out.work() < budget {
            let Some(&(t, h)) = self.data.key_deadlines.first() else {
                break;
            };
            if t >= now_ms {
                break;
            }
            match self.bucket_by_deadline(Deadline::Key, t, h) {
                Some(b) => {
                    if let Some(e) = self.remove_at(h, b) {
                        log.note_expired_key(&self.watchers, db, e.key());
                        out.keys += 1;
                    }
                }
                None => {
                    // Stale index entry; cannot happen while the invariants hold.
                    self.data.key_deadlines.remove(&(t, h));
                }
            }
        }
        let mut warmed = 0;
        while out.work() < budget {
            if warmed == 0 {
                warmed = self.prefetch_due_fields(now_ms);
            }
            warmed = warmed.saturating_sub(1);
            let Some(&(t, h)) = self.data.field_deadlines.first() else {
                break;
            };
            if t >= now_ms {
                break;
            }
            let Some(b) = self.bucket_by_deadline(Deadline::Field, t, h) else {
                self.data.field_deadlines.remove(&(t, h));
                continue;
            };
            let room = budget - out.work();
            let Some(e) = self.data.entries.get_bucket_mut(b) else {
                break;
            };
            let before = e.value.len();
            let removed = e.reap(now_ms, room, &self.watchers, db, log);
            let after = e.value.len();
            self.data.sizes.resize(before, after);
            out.fields += removed;
            // Also when nothing was due after all: the registered deadline moves forward.
            self.settle(h, b, db, log, Cause::Expired);
        }
        out.more_due = self
            .data
            .key_deadlines
            .first()
            .is_some_and(|&(t, _)| t < now_ms)
            || self
                .data
                .field_deadlines
                .first()
                .is_some_and(|&(t, _)| t < now_ms);
        out
    }

    /// Checks that the shard's indexes agree with its entries: every key TTL and earliest
    /// field deadline is indexed exactly as the entry says, nothing else is indexed, no
    /// hash is empty, and a hash's registered field deadline is a lower bound of its
    /// deadlines (exact for compact hashes). Tests and debug builds run it.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        let d = &self.data;
        let mut keys = 0;
        let mut fields = 0;
        let mut deadline_sum = 0u64;
        for e in d.entries.iter() {
            let h = self.hash_key(e.key());
            let name = String::from_utf8_lossy(e.key());
            let (key_deadline, field_deadline) = (e.key_deadline(), e.field_deadline());
            if e.value.is_empty() {
                return Err(format!("key {name:?} holds an empty hash"));
            }
            if key_deadline != NEVER {
                keys += 1;
                deadline_sum = deadline_sum.wrapping_add(ttl_units(key_deadline));
                if !d.key_deadlines.contains(&(key_deadline, h)) {
                    return Err(format!("key {name:?}: key TTL not indexed"));
                }
            }
            match e.value.min_expire() {
                None if field_deadline != NEVER => {
                    return Err(format!("key {name:?}: field deadline registered, no TTL"))
                }
                Some(_) if field_deadline == NEVER => {
                    return Err(format!("key {name:?}: field TTLs not registered"))
                }
                Some(m) if field_deadline > m => {
                    return Err(format!(
                        "key {name:?}: registered field deadline {field_deadline} after the earliest {m}"
                    ))
                }
                _ => {}
            }
            if field_deadline != NEVER {
                fields += 1;
                if !d.field_deadlines.contains(&(field_deadline, h)) {
                    return Err(format!("key {name:?}: field deadline not indexed"));
                }
            }
            if !e.value.order_holds() {
                return Err(format!(
                    "key {name:?}: compact fields out of their order (TTL fields by deadline first)"
                ));
            }
            let volatile = e.value.iter().filter(|f| f.expire_at.is_some()).count();
            if volatile != e.value.volatile_len() || e.value.iter().count() != e.value.len() {
                return Err(format!(
                    "key {name:?}: hash counts disagree with its fields"
                ));
            }
        }
        let mut sizes = SizeBins::default();
        d.entries.iter().for_each(|e| sizes.add(e.value.len()));
        if sizes.0 != d.sizes.0 {
            return Err(format!(
                "the size histogram is {:?} but the entries make {:?}",
                d.sizes.0, sizes.0
            ));
        }
        // Every index entry belongs to a key (keys sharing a hash and deadline share one).
        if deadline_sum != d.key_deadline_sum {
            return Err(format!(
                "the key deadline sum is {} but the entries add up to {deadline_sum}",
                d.key_deadline_sum
            ));
        }
        if d.key_deadlines.len() > keys || d.field_deadlines.len() > fields {
            return Err(format!(
                "stale index entries: {} key TTLs for {keys} keys, {} field deadlines for {fields} hashes",
                d.key_deadlines.len(),
                d.field_deadlines.len()
            ));
        }
        for &(t, h) in &d.key_deadlines {
            if self.bucket_by_deadline(Deadline::Key, t, h).is_none() {
                return Err(format!("key TTL index entry ({t}, {h:x}) has no key"));
            }
        }
        for &(t, h) in &d.field_deadlines {
            if self.bucket_by_deadline(Deadline::Field, t, h).is_none() {
                return Err(format!(
                    "field deadline index entry ({t}, {h:x}) has no key"
                ));
            }
        }
        let c = &self.counts;
        if c.keys.load(Ordering::Relaxed) != d.entries.len()
            || c.key_ttls.load(Ordering::Relaxed) != d.key_deadlines.len()
            || c.field_ttl_hashes.load(Ordering::Relaxed) != d.field_deadlines.len()
        {
            return Err("published counts disagree with the shard".into());
        }
        Ok(())
    }

    /// Starts loading the entries, then the hashes, of the next few hashes due for field
    /// reclaim, so the sweep's cache misses overlap. Returns how many it covered (at least
    /// one, so the caller's countdown moves).
    fn prefetch_due_fields(&mut self, now_ms: u64) -> usize {
        let due: SmallVec<[(u64, u64); SWEEP_PREFETCH_KEYS]> = self
            .data
            .field_deadlines
            .iter()
            .take_while(|&&(t, _)| t < now_ms)
            .take(SWEEP_PREFETCH_KEYS)
            .copied()
            .collect();
        for &(_, h) in &due {
            self.prefetch_slot(h);
        }
        for &(_, h) in &due {
            if let Some(b) = self.prefetch_value(h) {
                self.note_full_bucket(b);
            }
        }
        due.len().max(1)
    }

    /// The earliest deadline in either index that is already past at `now_ms`, if any
    /// (how late the sweeper is running).
    pub fn oldest_overdue(&self, now_ms: u64) -> Option<u64> {
        let k = self.data.key_deadlines.first().map(|&(t, _)| t);
        let f = self.data.field_deadlines.first().map(|&(t, _)| t);
        [k, f].into_iter().flatten().filter(|&t| t < now_ms).min()
    }
}

/// What one [`Shard::expire_due`] call reclaimed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    pub keys: usize,
    pub fields: usize,
    pub more_due: bool,
}

impl SweepOutcome {
    fn work(&self) -> usize {
        self.keys + self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key costs a table bucket of this size (plus a control byte), full or not, so
    /// it is kept in check: one tagged word, a compact buffer's `ThinBytes` or a table's
    /// box; the key and its bookkeeping live in what it points to.
    #[test]
    fn an_entry_is_8_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 8);
    }

    fn entry(key: &[u8]) -> Entry {
        Entry::empty(key, 0)
    }

    #[test]
    fn an_entry_keeps_its_key_and_bookkeeping_through_every_change() {
        let mut e = entry(b"user:1000");
        assert_eq!(
            (e.key(), e.key_deadline(), e.field_deadline(), e.access()),
            (&b"user:1000"[..], NEVER, NEVER, 0)
        );
        e.value.set_key_deadline(1_000);
        e.value.set_field_deadline(2_000);
        e.set_access(0x00ab_cdef);
        for table in [false, true] {
            if table {
                e.value.convert_to_table();
            }
            e.value.set(b"f", b"v", crate::keyspace::TtlUpdate::Clear);
            assert_eq!(
                (e.key(), e.key_deadline(), e.field_deadline(), e.access()),
                (&b"user:1000"[..], 1_000, 2_000, 0x00ab_cdef),
                "table: {table}"
            );
            assert_eq!(e.value.get_live(b"f", 0), Some(&b"v"[..]));
        }
        let mut c = entry(&[b'k'; 300]);
        c.value.set(b"a", b"1", crate::keyspace::TtlUpdate::Set(50));
        c.value.set_field_deadline(50);
        c.value.set_key_deadline(70);
        c.value.set_identity(b"renamed", 70, 50, 9);
        assert_eq!(
            (c.key(), c.key_deadline(), c.access()),
            (&b"renamed"[..], 70, 9)
        );
        c.value.set_key_deadline(NEVER);
        assert_eq!(
            (c.key(), c.key_deadline(), c.field_deadline()),
            (&b"renamed"[..], NEVER, 50)
        );
        assert_eq!(
            c.value.get(b"a").map(|f| (f.value, f.expire_at)),
            Some((&b"1"[..], Some(50)))
        );
        assert!(c.value.order_holds());
    }

    /// `prefetch_slot` computes addresses from hashbrown's memory layout; if an upgrade
    /// changed it, this fails (the server would only lose the speed-up).
    #[test]
    fn prefetch_addresses_match_the_table_layout() {
        let mut shard = Shard::new(ahash::RandomState::new(), Arc::default());
        assert_eq!(
            shard.table_ctrl_addr(),
            None,
            "an empty table has no address"
        );
        for round in 0..3 {
            for i in 0..500 {
                let key = format!("key:{round}:{i}");
                let h = shard.hash_key(key.as_bytes());
                shard.insert(h, entry(key.as_bytes()));
                shard.prefetch_slot(h);
            }
            let full: Vec<usize> = shard.data.entries.iter_buckets().collect();
            for bucket in full {
                let actual = shard.entry_at(bucket).map(|e| e as *const Entry as usize);
                let predicted = shard.predicted_addr(bucket).expect("non-empty");
                assert_eq!(actual, Some(predicted), "bucket {bucket}, round {round}");
            }
            // Shrinking moves the table: the address must follow it, or be unknown until a
            // lookup names a full bucket again.
            let keys: Vec<Vec<u8>> = shard
                .data
                .entries
                .iter()
                .map(|e| e.key().to_vec())
                .collect();
            for key in keys.iter().skip(20) {
                let h = shard.hash_key(key);
                if let Some(b) = shard.bucket_of(h, key) {
                    shard.remove_at(h, b);
                }
            }
            let b = shard
                .data
                .entries
                .iter_buckets()
                .next()
                .expect("entries left");
            let actual = shard.entry_at(b).map(|e| e as *const Entry as usize);
            if let Some(predicted) = shard.predicted_addr(b) {
                assert_eq!(actual, Some(predicted), "a stale address was trusted");
            }
            shard.note_full_bucket(b);
            assert_eq!(actual, shard.predicted_addr(b));
        }
    }
}
