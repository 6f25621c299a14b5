//! Eviction under `maxmemory`, and the access clock it ranks keys by, as Redis's
//! `evict.c`:
//!
//! * Every key carries 24 bits of access state ([`Entry::access`]). Under an LRU policy
//!   (and every non-LFU one, as in Redis, so OBJECT IDLETIME is real) it is the last
//!   access in seconds, modulo 2^24; under an LFU policy, the last decrement time in
//!   minutes (16 bits) and a logarithmic access counter (8 bits), which starts at
//!   [`LFU_INIT_VAL`], grows with probability `1 / ((counter - 5) * lfu-log-factor + 1)`
//!   per access, and loses one per `lfu-decay-time` minutes idle. Switching between the
//!   two at run time reinterprets the bits, as Redis warns.
//! * Each eviction samples `maxmemory-samples` neighbouring keys of every database (in
//!   one shard chosen by its share of the keys, where Redis samples neighbours in the
//!   database's one table) into a pool of the 16 best candidates kept between
//!   evictions, and evicts the best one still there. The
//!   random policies take one random key, databases in turn. `volatile-ttl` reads the
//!   soonest deadlines straight from the shard's index, exactly where Redis samples.
//! * An evicted key is recorded with [`Cause::Evicted`]: an `evicted` notification, a DEL
//!   in the append-only file and the replication stream, WATCHers told.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use parking_lot::Mutex;
use smallvec::SmallVec;

use super::shard::{Deadline, Entry, Shard, NEVER};
use super::{lazyfree, Cause, Change, Keyspace, LockPlan};

/// An LFU counter's value for a new key, so it is not evicted before it had a chance.
pub const LFU_INIT_VAL: u32 = 5;
const LFU_COUNTER_MAX: u32 = 255;
const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
const MINUTES_MAX: u32 = 65535;
/// Candidates kept between evictions (Redis's `EVPOOL_SIZE`).
const POOL_SIZE: usize = 16;

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    NoEviction,
}

/// How a policy ranks its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rank {
    Lru,
    Lfu,
    Ttl,
    Random,
}

impl Policy {
    /// Every policy, in Redis's order (its CONFIG SET error lists them so).
    pub const ALL: [Policy; 8] = [
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllkeysLru,
        Policy::AllkeysLfu,
        Policy::AllkeysRandom,
        Policy::NoEviction,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
            Policy::AllkeysLru => "allkeys-lru",
            Policy::AllkeysLfu => "allkeys-lfu",
            Policy::AllkeysRandom => "allkeys-random",
            Policy::NoEviction => "noeviction",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }

    /// Keys with a key TTL only (`volatile-*`).
    fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn rank(self) -> Option<Rank> {
        match self {
            Policy::VolatileLru | Policy::AllkeysLru => Some(Rank::Lru),
            Policy::VolatileLfu | Policy::AllkeysLfu => Some(Rank::Lfu),
            Policy::VolatileTtl => Some(Rank::Ttl),
            Policy::VolatileRandom | Policy::AllkeysRandom => Some(Rank::Random),
            Policy::NoEviction => None,
        }
    }

    /// Whether keys keep an LFU counter instead of an access time.
    pub fn is_lfu(self) -> bool {
        self.rank() == Some(Rank::Lfu)
    }
}

/// The access state's interpretation and the LFU settings (`lfu-log-factor`,
/// `lfu-decay-time`).
#[derive(Debug)]
pub struct AccessClock {
    lfu: AtomicBool,
    pub log_factor: AtomicU32,
    pub decay_minutes: AtomicU32,
}

impl Default for AccessClock {
    fn default() -> Self {
        AccessClock {
            lfu: AtomicBool::new(false),
            log_factor: AtomicU32::new(10),
            decay_minutes: AtomicU32::new(1),
        }
    }
}

fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) & u64::from(LRU_CLOCK_MAX)) as u32
}

fn minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & u64::from(MINUTES_MAX)) as u32
}

impl AccessClock {
    pub fn set_lfu(&self, lfu: bool) {
        self.lfu.store(lfu, Ordering::Relaxed);
    }

    pub fn is_lfu(&self) -> bool {
        self.lfu.load(Ordering::Relaxed)
    }

    /// A new key's state.
    pub(super) fn initial(&self, now_ms: u64) -> u32 {
        if self.is_lfu() {
            (minutes(now_ms) << 8) | LFU_INIT_VAL
        } else {
            lru_clock(now_ms)
        }
    }

    /// An access to a key (Redis's `lookupKey` updating `lru`).
    #[inline]
    pub(super) fn touch(&self, access: &mut u32, now_ms: u64) {
        if self.is_lfu() {
            let counter = self.frequency(*access, now_ms);
            *access = (minutes(now_ms) << 8) | self.log_incr(counter);
        } else {
            *access = lru_clock(now_ms);
        }
    }

    /// `LFULogIncr`: the counter grows ever more rarely as it rises.
    fn log_incr(&self, counter: u32) -> u32 {
        if counter >= LFU_COUNTER_MAX {
            return LFU_COUNTER_MAX;
        }
        let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
        let factor = self.log_factor.load(Ordering::Relaxed) as f64;
        let p = 1.0 / (base * factor + 1.0);
        if fastrand::f64() < p {
            counter + 1
        } else {
            counter
        }
    }

    /// `LFUDecrAndReturn`: the counter after the decay its idle minutes earn (OBJECT FREQ).
    pub fn frequency(&self, access: u32, now_ms: u64) -> u32 {
        let last = access >> 8;
        let counter = access & 0xff;
        let now = minutes(now_ms);
        let elapsed = if now >= last {
            now - last
        } else {
            MINUTES_MAX - last + now
        };
        let decay = self.decay_minutes.load(Ordering::Relaxed);
        let periods = elapsed.checked_div(decay).unwrap_or(0);
        counter.saturating_sub(periods)
    }

    /// `estimateObjectIdleTime`, in ms (OBJECT IDLETIME reports it in seconds).
    pub fn idle_ms(access: u32, now_ms: u64) -> u64 {
        let now = lru_clock(now_ms);
        let ticks = if now >= access {
            now - access
        } else {
            now + (LRU_CLOCK_MAX - access)
        };
        u64::from(ticks) * 1000
    }
}

/// Sampled keys that may enter the pool, with their scores.
type Scored = SmallVec<[(u64, Box<[u8]>); 16]>;

/// A key worth evicting, by how much (higher: sooner).
#[derive(Debug)]
struct Candidate {
    db: usize,
    key: Box<[u8]>,
    score: u64,
}

/// The candidate pool (kept between evictions, as Redis's) and the random policies'
/// next database.
#[derive(Debug, Default)]
pub(super) struct Evictor {
    pool: Mutex<Vec<Candidate>>,
    next_db: AtomicUsize,
}

impl Evictor {
    /// Adds a candidate, keeping the pool sorted by score (ascending) and at most
    /// [`POOL_SIZE`] long. A key sampled twice may hold two places, as in Redis: the
    /// second is skipped when its turn comes (the key is gone).
    fn offer(pool: &mut Vec<Candidate>, db: usize, key: Box<[u8]>, score: u64) {
        if pool.len() == POOL_SIZE {
            if pool[0].score >= score {
                return;
            }
            pool.remove(0);
        }
        let at = pool.partition_point(|c| c.score < score);
        pool.insert(at, Candidate { db, key, score });
    }

    /// The score a candidate must beat to enter the pool (0 while it has room).
    fn floor(&self) -> u64 {
        let pool = self.pool.lock();
        if pool.len() == POOL_SIZE {
            pool[0].score
        } else {
            0
        }
    }
}

/// The bytes a key and its value hold (what evicting it gives back, approximately).
fn footprint(e: &Entry) -> usize {
    // The value's heap bytes include the key, stored with it.
    std::mem::size_of::<Entry>() + e.value.heap_bytes()
}

/// Up to `n` occupied buckets found scanning forward (wrapping) from a random bucket,
/// as Redis's `dictGetSomeKeys`: neighbouring buckets share cache lines, where `n`
/// random probes would each miss. Scans at most `n * 16` buckets (a sparse table may
/// give fewer).
fn consecutive_buckets(shard: &Shard, n: usize, rng: &mut fastrand::Rng) -> SmallVec<[usize; 16]> {
    let mut found = SmallVec::new();
    if shard.len() == 0 || n == 0 {
        return found;
    }
    let buckets = shard.data.entries.num_buckets();
    let start = rng.usize(..buckets);
    for i in 0..buckets.min(n.saturating_mul(16)) {
        let b = (start + i) & (buckets - 1);
        if shard.entry_at(b).is_some() {
            found.push(b);
            if found.len() == n {
                break;
            }
        }
    }
    if found.is_empty() {
        // Every bucket scanned was empty: take one at random, so a sparse table still
        // yields a candidate.
        found.extend(random_bucket(shard, rng));
    }
    found
}

/// A random occupied bucket of the shard (None if it is empty).
fn random_bucket(shard: &Shard, rng: &mut fastrand::Rng) -> Option<usize> {
    if shard.len() == 0 {
        return None;
    }
    let buckets = shard.data.entries.num_buckets();
    loop {
        let b = rng.usize(..buckets);
        if shard.entry_at(b).is_some() {
            return Some(b);
        }
    }
}

/// A random key with a key TTL: a random point between the soonest and the latest
/// deadline, and the first key at or after it (biased towards keys after a gap in the
/// deadlines, which the pool's ranking evens out).
fn random_volatile_bucket(shard: &Shard, rng: &mut fastrand::Rng) -> Option<usize> {
    let index = &shard.data.key_deadlines;
    let (first, last) = (index.first()?.0, index.last()?.0);
    let at = rng.u64(first..=last);
    let &(t, h) = index.range((at, 0)..).next().or(index.last())?;
    shard.bucket_by_deadline(Deadline::Key, t, h)
}

impl Keyspace {
    /// Evicts one key under `policy` and returns the bytes it held, or None when no key
    /// qualifies (`noeviction`, an empty keyspace, no key with a TTL for `volatile-*`).
    pub fn evict_one(
        &self,
        policy: Policy,
        samples: usize,
        now_ms: u64,
        lazy: bool,
        rng: &mut fastrand::Rng,
    ) -> Option<usize> {
        let rank = policy.rank()?;
        if rank == Rank::Random {
            return self.evict_random(policy.volatile(), now_ms, lazy, rng);
        }
        // Rounds until a pooled candidate is still there to evict; each round samples
        // every database with keys. Bounded: keys vanishing under us (other clients'
        // deletes) empty the pool only so often.
        for _ in 0..64 {
            let mut sampled = 0;
            for db in 0..self.dbs.len() {
                sampled += self.sample_into_pool(db, policy, rank, samples, now_ms, rng);
            }
            if sampled == 0 {
                return None;
            }
            loop {
                let Some(c) = self.evictor.pool.lock().pop() else {
                    break;
                };
                if let Some(bytes) = self.evict_key(c.db, &c.key, policy.volatile(), lazy) {
                    return Some(bytes);
                }
            }
        }
        None
    }

    /// Samples `samples` keys of `db` into the pool: neighbours in one shard picked at
    /// random by its share of the qualifying keys, as Redis samples neighbours in the
    /// database's table (the pool, kept between evictions, gathers the best of many
    /// shards). `volatile-ttl` instead reads the soonest deadlines of every shard, so
    /// the pool sees the database's soonest. Returns how many keys were looked at.
    fn sample_into_pool(
        &self,
        db: usize,
        policy: Policy,
        rank: Rank,
        samples: usize,
        now_ms: u64,
        rng: &mut fastrand::Rng,
    ) -> usize {
        let volatile = policy.volatile();
        let shards: SmallVec<[usize; 64]> = if rank == Rank::Ttl {
            let counts = &self.dbs[db].counts;
            (0..counts.len())
                .filter(|&i| counts[i].key_ttls.load(Ordering::Relaxed) > 0)
                .collect()
        } else {
            self.weighted_shard(db, volatile, rng).into_iter().collect()
        };
        if shards.is_empty() {
            return 0;
        }
        let per_shard = samples.div_ceil(shards.len()).max(1);
        let mut looked = 0;
        for s in shards {
            let floor = self.evictor.floor();
            let (seen, found) =
                self.sample_shard(db, s, volatile, rank, per_shard, floor, now_ms, rng);
            looked += seen;
            let mut pool = self.evictor.pool.lock();
            for (score, key) in found {
                Evictor::offer(&mut pool, db, key, score);
            }
        }
        looked
    }

    /// Up to `n` keys of one shard looked at; those scoring above `floor` (the pool's
    /// worst, when full) are returned with their scores, the others not even copied.
    #[allow(clippy::too_many_arguments)]
    fn sample_shard(
        &self,
        db: usize,
        s: usize,
        volatile: bool,
        rank: Rank,
        n: usize,
        floor: u64,
        now_ms: u64,
        rng: &mut fastrand::Rng,
    ) -> (usize, Scored) {
        let shard = self.dbs[db].shards[s].lock();
        let mut found = SmallVec::new();
        let mut seen = 0;
        if rank == Rank::Ttl {
            // The soonest deadlines are the best candidates: read them, do not sample.
            for &(t, h) in shard.data.key_deadlines.iter().take(n) {
                seen += 1;
                let score = u64::MAX - t;
                if score <= floor {
                    continue;
                }
                if let Some(e) = shard
                    .bucket_by_deadline(Deadline::Key, t, h)
                    .and_then(|b| shard.entry_at(b))
                {
                    found.push((score, e.key().to_vec().into()));
                }
            }
            return (seen, found);
        }
        let picked: SmallVec<[usize; 16]> = if volatile {
            (0..n)
                .filter_map(|_| random_volatile_bucket(&shard, rng))
                .collect()
        } else {
            consecutive_buckets(&shard, n, rng)
        };
        for b in picked {
            let Some(e) = shard.entry_at(b) else {
                continue;
            };
            seen += 1;
            if e.is_dead(now_ms) {
                // Past its deadline: the reclaim pass before eviction frees it.
                continue;
            }
            let score = match rank {
                Rank::Lfu => u64::from(LFU_COUNTER_MAX - self.access.frequency(e.access(), now_ms)),
                _ => AccessClock::idle_ms(e.access(), now_ms),
            };
            if score > floor || floor == 0 {
                found.push((score, e.key().to_vec().into()));
            }
        }
        (seen, found)
    }

    /// A random shard of `db`, weighted by its keys (or keys with a TTL); lock-free.
    fn weighted_shard(&self, db: usize, volatile: bool, rng: &mut fastrand::Rng) -> Option<usize> {
        let counts = &self.dbs.get(db)?.counts;
        let count = |i: usize| {
            let c = &counts[i];
            if volatile {
                c.key_ttls.load(Ordering::Relaxed)
            } else {
                c.keys.load(Ordering::Relaxed)
            }
        };
        let total: usize = (0..counts.len()).map(count).sum();
        if total == 0 {
            return None;
        }
        let mut n = rng.usize(..total);
        (0..counts.len()).find(|&i| {
            let c = count(i);
            if n < c {
                true
            } else {
                n -= c;
                false
            }
        })
    }

    /// `allkeys-random` / `volatile-random`: a random key of the next database that has
    /// one.
    fn evict_random(
        &self,
        volatile: bool,
        now_ms: u64,
        lazy: bool,
        rng: &mut fastrand::Rng,
    ) -> Option<usize> {
        let dbs = self.dbs.len();
        for _ in 0..dbs * 4 {
            let db = self.evictor.next_db.fetch_add(1, Ordering::Relaxed) % dbs;
            let Some(s) = self.weighted_shard(db, volatile, rng) else {
                continue;
            };
            let key = {
                let shard = self.dbs[db].shards[s].lock();
                let b = if volatile {
                    random_volatile_bucket(&shard, rng)
                } else {
                    random_bucket(&shard, rng)
                };
                match b.and_then(|b| shard.entry_at(b)) {
                    Some(e) if !e.is_dead(now_ms) => e.key().to_vec(),
                    _ => continue,
                }
            };
            if let Some(bytes) = self.evict_key(db, &key, volatile, lazy) {
                return Some(bytes);
            }
        }
        None
    }

    /// Deletes `key` of `db` as evicted, if it is still there (and still has a key TTL
    /// when `volatile`). Returns the bytes it held.
    fn evict_key(&self, db: usize, key: &[u8], volatile: bool, lazy: bool) -> Option<usize> {
        let h = self.key_hash(key);
        let shard = self.shard_of_hash(h);
        let mut locked = self.lock(&LockPlan::Shards {
            db,
            shards: SmallVec::from_slice(&[shard]),
        });
        locked.log.begin(None);
        let super::Locked { held, log, .. } = &mut locked;
        let s = &mut *held[0].guard;
        let b = s.bucket_of(h, key)?;
        if volatile && s.entry_at(b)?.key_deadline() == NEVER {
            return None;
        }
        let entry = s.remove_at(h, b)?;
        let bytes = footprint(&entry);
        log.note(&s.watchers, db, key, Cause::Evicted, || {
            Change::KeyDeleted { emptied: false }
        });
        self.stats.evicted_keys.fetch_add(1, Ordering::Relaxed);
        if lazy && entry.value.free_effort() > lazyfree::LAZYFREE_THRESHOLD {
            self.lazyfree.free(entry.value, 1);
        } else {
            // Freed here, before the caller reads the allocator's count again.
            drop(entry);
        }
        Some(bytes)
    }

    /// Reclaims what is past its deadline everywhere (keys and fields), up to `budget`
    /// units of work per shard: memory Redis would leave to active expiry, freed before
    /// any live key is evicted. Returns the keys and fields reclaimed.
    pub fn reclaim_overdue(&self, now_ms: u64, budget: usize) -> usize {
        if self.keeps_expired() {
            return 0;
        }
        let mut done = 0;
        for (db, d) in self.dbs.iter().enumerate() {
            for (s, c) in d.counts.iter().enumerate() {
                if c.key_ttls.load(Ordering::Relaxed) == 0
                    && c.field_ttl_hashes.load(Ordering::Relaxed) == 0
                {
                    continue;
                }
                let overdue = d.shards[s].lock().oldest_overdue(now_ms).is_some();
                if overdue {
                    let (out, _) = self.sweep_shard(db, s, now_ms, budget);
                    done += out.keys + out.fields;
                }
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::TtlUpdate;

    const T0: u64 = 1_700_000_000_000;

    fn plan(ks: &Keyspace, db: usize, key: &[u8]) -> LockPlan {
        LockPlan::Shards {
            db,
            shards: SmallVec::from_slice(&[ks.shard_of(key)]),
        }
    }

    /// Writes a one-field hash at `key`, with a key TTL deadline if given.
    fn put(ks: &Keyspace, db: usize, key: &str, now: u64, deadline: Option<u64>) {
        let mut l = ks.lock(&plan(ks, db, key.as_bytes()));
        let mut v = l.db(db);
        v.get_or_create(key.as_bytes(), now)
            .set(b"f", b"v", TtlUpdate::Clear);
        if deadline.is_some() {
            v.set_key_deadline(key.as_bytes(), deadline, now);
        }
    }

    /// Reads `key` at `now` (an access).
    fn read(ks: &Keyspace, key: &str, now: u64) {
        let mut l = ks.lock(&plan(ks, 0, key.as_bytes()));
        assert!(l.db(0).get(key.as_bytes(), now).is_some(), "{key}");
    }

    fn exists(ks: &Keyspace, db: usize, key: &str, now: u64) -> bool {
        let mut l = ks.lock(&plan(ks, db, key.as_bytes()));
        l.db(db).exists(key.as_bytes(), now)
    }

    /// Evicts until nothing qualifies; the keys in eviction order.
    fn evict_all(ks: &Keyspace, policy: Policy, now: u64) -> Vec<String> {
        let mut rng = fastrand::Rng::with_seed(7);
        let before: Vec<(usize, String)> = (0..ks.databases())
            .flat_map(|db| {
                let mut l = ks.lock(&LockPlan::Db(db));
                let mut keys = Vec::new();
                l.db(db).for_each_key(now, |k, _| {
                    keys.push((db, String::from_utf8_lossy(k).into()))
                });
                keys
            })
            .collect();
        let mut order = Vec::new();
        while ks.evict_one(policy, 64, now, false, &mut rng).is_some() {
            let gone: Vec<String> = before
                .iter()
                .filter(|(db, k)| !order.contains(k) && !exists(ks, *db, k, now))
                .map(|(_, k)| k.clone())
                .collect();
            assert_eq!(gone.len(), 1, "one key per eviction: {gone:?}");
            order.extend(gone);
            assert!(order.len() <= before.len(), "evicted more than there was");
        }
        order
    }

    #[test]
    fn allkeys_lru_evicts_the_least_recently_used_first() {
        let ks = Keyspace::new(1, 1);
        for k in ["a", "b", "c", "d", "e"] {
            put(&ks, 0, k, T0, None);
        }
        for (i, k) in ["b", "d", "a", "c", "e"].iter().enumerate() {
            read(&ks, k, T0 + (i as u64 + 1) * 10_000);
        }
        assert_eq!(
            evict_all(&ks, Policy::AllkeysLru, T0 + 100_000),
            ["b", "d", "a", "c", "e"]
        );
        assert_eq!(ks.stats.evicted_keys.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn allkeys_lfu_evicts_the_least_frequently_used_first() {
        let ks = Keyspace::new(1, 1);
        ks.access.set_lfu(true);
        // Every access counts (no logarithmic damping), for a deterministic order.
        ks.access.log_factor.store(0, Ordering::Relaxed);
        for k in ["cold", "warm", "hot"] {
            put(&ks, 0, k, T0, None);
        }
        for (k, n) in [("warm", 10), ("hot", 40), ("cold", 1)] {
            for _ in 0..n {
                read(&ks, k, T0);
            }
        }
        assert_eq!(
            evict_all(&ks, Policy::AllkeysLfu, T0),
            ["cold", "warm", "hot"]
        );
    }

    #[test]
    fn volatile_ttl_evicts_the_soonest_deadline_and_never_a_persistent_key() {
        let ks = Keyspace::new(2, 4);
        put(&ks, 0, "persistent", T0, None);
        put(&ks, 0, "late", T0, Some(T0 + 300_000));
        put(&ks, 1, "soon", T0, Some(T0 + 50_000));
        put(&ks, 0, "middle", T0, Some(T0 + 100_000));
        assert_eq!(
            evict_all(&ks, Policy::VolatileTtl, T0),
            ["soon", "middle", "late"]
        );
        assert!(exists(&ks, 0, "persistent", T0));
    }

    #[test]
    fn volatile_policies_touch_only_keys_with_a_ttl() {
        for policy in [
            Policy::VolatileLru,
            Policy::VolatileLfu,
            Policy::VolatileRandom,
        ] {
            let ks = Keyspace::new(2, 4);
            ks.access.set_lfu(policy.is_lfu());
            for i in 0..20 {
                put(&ks, i % 2, &format!("p{i}"), T0, None);
                put(
                    &ks,
                    i % 2,
                    &format!("v{i}"),
                    T0,
                    Some(T0 + 1_000_000 + i as u64),
                );
            }
            let order = evict_all(&ks, policy, T0 + 1000);
            assert_eq!(order.len(), 20, "{policy:?}: {order:?}");
            assert!(
                order.iter().all(|k| k.starts_with('v')),
                "{policy:?}: {order:?}"
            );
        }
    }

    #[test]
    fn allkeys_random_and_noeviction() {
        let ks = Keyspace::new(3, 4);
        for i in 0..30 {
            put(
                &ks,
                i % 3,
                &format!("k{i}"),
                T0,
                (i % 2 == 0).then_some(T0 + 1_000_000),
            );
        }
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            ks.evict_one(Policy::NoEviction, 5, T0, false, &mut rng),
            None
        );
        assert_eq!(evict_all(&ks, Policy::AllkeysRandom, T0).len(), 30);
    }

    #[test]
    fn past_deadlines_are_reclaimed_not_evicted() {
        let ks = Keyspace::new(1, 2);
        put(&ks, 0, "gone", T0, Some(T0 + 10));
        put(&ks, 0, "live", T0, None);
        assert_eq!(ks.reclaim_overdue(T0 + 100, 1000), 1);
        assert_eq!(ks.stats.expired_keys.load(Ordering::Relaxed), 1);
        // The dead key is not an eviction candidate either.
        assert_eq!(evict_all(&ks, Policy::AllkeysLru, T0 + 100), ["live"]);
    }

    #[test]
    fn policies_parse_and_name_as_redis() {
        for p in Policy::ALL {
            assert_eq!(Policy::parse(p.name()), Some(p));
        }
        assert_eq!(Policy::parse("ALLKEYS-LRU"), Some(Policy::AllkeysLru));
        assert_eq!(Policy::parse("lru"), None);
    }

    #[test]
    fn lru_idle_time_wraps_like_redis() {
        let now = 1_000_000_000_000u64;
        let t = lru_clock(now);
        assert_eq!(AccessClock::idle_ms(t, now), 0);
        assert_eq!(AccessClock::idle_ms(t, now + 5_000), 5_000);
        // The clock wraps every 2^24 s; an access just before the wrap is still recent.
        let before_wrap = LRU_CLOCK_MAX - 1;
        let after = u64::from(LRU_CLOCK_MAX + 1) * 1000 + 2_000;
        assert_eq!(lru_clock(after), 2);
        assert_eq!(AccessClock::idle_ms(before_wrap, after), 3_000);
    }

    #[test]
    fn lfu_counter_starts_at_five_grows_logarithmically_and_decays() {
        let clock = AccessClock::default();
        clock.set_lfu(true);
        let now = 10 * 60_000;
        let mut a = clock.initial(now);
        assert_eq!(clock.frequency(a, now), LFU_INIT_VAL);
        for _ in 0..1000 {
            clock.touch(&mut a, now);
        }
        let hot = clock.frequency(a, now);
        // With lfu-log-factor 10, a thousand hits reach about 18 (Redis's table).
        assert!((10..40).contains(&hot), "{hot}");
        // One point lost per idle minute (lfu-decay-time 1).
        assert_eq!(clock.frequency(a, now + 3 * 60_000), hot - 3);
        assert_eq!(clock.frequency(a, now + 1000 * 60_000), 0);
        clock.decay_minutes.store(0, Ordering::Relaxed);
        assert_eq!(clock.frequency(a, now + 1000 * 60_000), hot);
    }

    #[test]
    fn the_pool_keeps_the_best_sixteen_sorted() {
        let mut pool = Vec::new();
        for i in 0..40u64 {
            Evictor::offer(
                &mut pool,
                0,
                format!("k{i}").into_bytes().into(),
                (i * 7) % 40,
            );
        }
        assert_eq!(pool.len(), POOL_SIZE);
        assert!(pool.windows(2).all(|w| w[0].score <= w[1].score));
        assert_eq!(pool.last().map(|c| c.score), Some(39));
        // Below the worst of a full pool: not taken.
        let worst = pool[0].score;
        Evictor::offer(&mut pool, 0, b"low".to_vec().into(), worst);
        assert!(pool.iter().all(|c| &*c.key != b"low"));
        Evictor::offer(&mut pool, 0, b"k1".to_vec().into(), 1000);
        assert_eq!(pool.last().map(|c| &*c.key), Some(&b"k1"[..]));
    }
}
