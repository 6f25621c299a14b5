//! `maxmemory`: keeping the data under the limit, as Redis's `performEvictions`.
//!
//! Before each command (when a limit is set) the dispatcher asks [`MaxMemory::enforce`]
//! whether memory is over the limit and, if so, frees memory until it is not:
//!
//! 1. everything already past its deadline (keys and fields) is reclaimed first: memory
//!    Redis leaves to active expiry, given back before any live key goes;
//! 2. then, unless the policy is `noeviction`, keys are evicted one by one by the policy
//!    (`keyspace/evict.rs`), for at most the time `maxmemory-eviction-tenacity` allows
//!    (Redis's `evictionTimeLimitUs`); what is left is evicted by later commands and by
//!    the sweeper's cycle, as Redis's eviction timer does.
//!
//! The memory compared with the limit is INFO's `used_memory` (the counting allocator,
//! `alloc.rs`, as Redis's `zmalloc_used_memory`; exact to 16 KiB per thread while a limit
//! is set) minus the replicas' output queues, which Redis does not count either
//! (`mem_not_counted_for_evict`). When nothing more can be
//! freed, commands flagged `denyoom` get
//! `-OOM command not allowed when used memory > 'maxmemory'.` (queued in MULTI, which
//! makes the EXEC fail); an EXEC whose queue holds such a command is aborted with it. Replicas ignore the limit (their master's evictions
//! arrive as DEL), as with Redis's default `replica-ignore-maxmemory yes`; so does a
//! server that is loading, or paused by CLIENT PAUSE.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

use crate::context::ServerContext;
use crate::keyspace::EvictionPolicy;

/// Overdue keys and fields reclaimed per shard in the pass before evicting.
const RECLAIM_BUDGET: usize = 10_000;

/// The pass that reclaims overdue keys and fields before evicting runs at most this
/// often: new overdue work accrues with time, and looking costs a load per shard.
const RECLAIM_EVERY_MS: u64 = 10;

/// Evictions between two looks at the clock (Redis checks every 16 keys).
const EVICTIONS_PER_CLOCK_CHECK: usize = 16;

/// The settings and counters of the memory limit.
#[derive(Debug)]
pub struct MaxMemory {
    /// Bytes; 0: no limit.
    pub limit: AtomicU64,
    policy: AtomicU8,
    pub samples: AtomicU64,
    pub tenacity: AtomicU64,
    pub lazy_eviction: AtomicBool,
    /// Microseconds since the epoch of this process's clock at which memory went over
    /// the limit, or 0 (INFO `current_eviction_exceeded_time`).
    exceeded_since_us: AtomicU64,
    /// Microseconds spent over the limit before the current stretch
    /// (`total_eviction_exceeded_time`).
    exceeded_total_us: AtomicU64,
    /// When the overdue pass last ran (unix ms).
    last_reclaim_ms: AtomicU64,
    epoch: Instant,
}

/// What [`MaxMemory::enforce`] concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Under the limit, or still evicting (the command may run).
    Fits,
    /// Over the limit with nothing more to free: `denyoom` commands are refused.
    OutOfMemory,
}

impl MaxMemory {
    pub fn new(cfg: &crate::config::Config) -> Self {
        let policy =
            EvictionPolicy::parse(&cfg.maxmemory_policy).unwrap_or(EvictionPolicy::NoEviction);
        crate::alloc::set_precise(cfg.maxmemory > 0);
        MaxMemory {
            limit: AtomicU64::new(cfg.maxmemory),
            policy: AtomicU8::new(policy_index(policy)),
            samples: AtomicU64::new(cfg.maxmemory_samples),
            tenacity: AtomicU64::new(cfg.maxmemory_eviction_tenacity),
            lazy_eviction: AtomicBool::new(cfg.lazyfree_lazy_eviction),
            exceeded_since_us: AtomicU64::new(0),
            exceeded_total_us: AtomicU64::new(0),
            last_reclaim_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::ALL[usize::from(self.policy.load(Ordering::Relaxed))]
    }

    /// Sets the policy; the keys' access state switches between LRU and LFU with it.
    pub fn set_policy(&self, policy: EvictionPolicy, keyspace: &crate::keyspace::Keyspace) {
        self.policy.store(policy_index(policy), Ordering::Relaxed);
        keyspace.access.set_lfu(policy.is_lfu());
    }

    /// Sets the limit (0: none); the allocator counts more precisely while one is set.
    pub fn set_limit(&self, bytes: u64) {
        crate::alloc::set_precise(bytes > 0);
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// Whether a limit is set: the one load every command pays.
    #[inline]
    pub fn active(&self) -> bool {
        self.limit.load(Ordering::Relaxed) != 0
    }

    /// The memory that counts against the limit.
    pub fn used(&self, server: &ServerContext) -> u64 {
        let used = crate::alloc::allocated() as u64;
        used.saturating_sub(self.not_counted(server, used))
    }

    /// Replicas' output queues, looked at only when memory is over the limit anyway.
    fn not_counted(&self, server: &ServerContext, used: u64) -> u64 {
        if used <= self.limit.load(Ordering::Relaxed) {
            return 0;
        }
        server.replication.output_buffer_bytes() as u64
    }

    /// INFO `mem_not_counted_for_evict`.
    pub fn not_counted_now(&self, server: &ServerContext) -> u64 {
        server.replication.output_buffer_bytes() as u64
    }

    /// Frees memory until the data fits under the limit, or says it cannot.
    pub fn enforce(&self, server: &ServerContext) -> Verdict {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == 0 {
            return Verdict::Fits;
        }
        let used = crate::alloc::allocated() as u64;
        if used <= limit {
            self.note_within();
            return Verdict::Fits;
        }
        // A replica follows its master's evictions; loading and paused servers change
        // nothing on their own.
        if server.replication.is_replica()
            || server.keyspace.keeps_expired()
            || server.rdb.loading.load(Ordering::Relaxed)
        {
            return Verdict::Fits;
        }
        let used = used.saturating_sub(self.not_counted(server, used));
        if used <= limit {
            self.note_within();
            return Verdict::Fits;
        }
        self.note_exceeded();
        let now_ms = server.clock.now_ms();
        let last = self.last_reclaim_ms.load(Ordering::Relaxed);
        let reclaim_due = now_ms.saturating_sub(last) >= RECLAIM_EVERY_MS
            && self
                .last_reclaim_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if reclaim_due && server.keyspace.reclaim_overdue(now_ms, RECLAIM_BUDGET) > 0 {
            crate::alloc::flush_thread_balance();
            if self.used(server) <= limit {
                self.note_within();
                return Verdict::Fits;
            }
        }
        let policy = self.policy();
        if policy == EvictionPolicy::NoEviction {
            return Verdict::OutOfMemory;
        }
        let to_free = self.used(server).saturating_sub(limit);
        let samples = self.samples.load(Ordering::Relaxed).clamp(1, 64) as usize;
        let lazy = self.lazy_eviction.load(Ordering::Relaxed);
        let time_limit_us = eviction_time_limit_us(self.tenacity.load(Ordering::Relaxed));
        let started = Instant::now();
        let mut rng = fastrand::Rng::new();
        let (mut freed, mut evicted) = (0u64, 0usize);
        while freed < to_free {
            match server
                .keyspace
                .evict_one(policy, samples, now_ms, lazy, &mut rng)
            {
                Some(bytes) => {
                    freed += bytes as u64;
                    evicted += 1;
                }
                None => {
                    crate::alloc::flush_thread_balance();
                    self.note_cycle(server, started, evicted);
                    return if self.used(server) <= limit {
                        Verdict::Fits
                    } else {
                        Verdict::OutOfMemory
                    };
                }
            }
            if evicted % EVICTIONS_PER_CLOCK_CHECK == 0
                && started.elapsed().as_micros() as u64 > time_limit_us
            {
                // The rest is for the next commands and the sweeper's cycle.
                break;
            }
        }
        crate::alloc::flush_thread_balance();
        self.note_cycle(server, started, evicted);
        if self.used(server) <= limit {
            self.note_within();
        }
        Verdict::Fits
    }

    /// LATENCY's `eviction-cycle` event.
    fn note_cycle(&self, server: &ServerContext, started: Instant, evicted: usize) {
        if evicted > 0 {
            let ms = started.elapsed().as_millis() as u64;
            server
                .latency
                .record("eviction-cycle", ms, server.clock.now_ms() / 1000);
        }
    }

    fn now_us(&self) -> u64 {
        // Never 0, which means "not over the limit".
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    fn note_exceeded(&self) {
        if self.exceeded_since_us.load(Ordering::Relaxed) == 0 {
            let _ = self.exceeded_since_us.compare_exchange(
                0,
                self.now_us(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn note_within(&self) {
        let since = self.exceeded_since_us.swap(0, Ordering::Relaxed);
        if since != 0 {
            self.exceeded_total_us
                .fetch_add(self.now_us().saturating_sub(since), Ordering::Relaxed);
        }
    }

    /// INFO `current_eviction_exceeded_time` and `total_eviction_exceeded_time`, in ms.
    pub fn exceeded_ms(&self) -> (u64, u64) {
        let since = self.exceeded_since_us.load(Ordering::Relaxed);
        let current = if since == 0 {
            0
        } else {
            self.now_us().saturating_sub(since)
        };
        let total = self.exceeded_total_us.load(Ordering::Relaxed) + current;
        (current / 1000, total / 1000)
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        self.exceeded_total_us.store(0, Ordering::Relaxed);
        if self.exceeded_since_us.load(Ordering::Relaxed) != 0 {
            self.exceeded_since_us
                .store(self.now_us(), Ordering::Relaxed);
        }
    }
}

fn policy_index(p: EvictionPolicy) -> u8 {
    EvictionPolicy::ALL
        .iter()
        .position(|&q| q == p)
        .unwrap_or(EvictionPolicy::ALL.len() - 1) as u8
}

/// Redis's `evictionTimeLimitUs`: 50 µs per step up to 10 (the default, 500 µs), then
/// 15 % more per step, and no limit at 100.
fn eviction_time_limit_us(tenacity: u64) -> u64 {
    match tenacity {
        0..=10 => 50 * tenacity,
        11..=99 => (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64,
        _ => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenacity_maps_to_redis_time_limits() {
        assert_eq!(eviction_time_limit_us(0), 0);
        assert_eq!(eviction_time_limit_us(10), 500);
        assert_eq!(eviction_time_limit_us(11), 575);
        assert_eq!(eviction_time_limit_us(100), u64::MAX);
    }

    #[test]
    fn policies_round_trip_through_their_index() {
        for p in EvictionPolicy::ALL {
            assert_eq!(EvictionPolicy::ALL[usize::from(policy_index(p))], p);
        }
    }
}
