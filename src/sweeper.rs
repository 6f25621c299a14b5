//! Background reclaim of expired keys and hash fields (active expiry).
//!
//! Every `1000/hz` ms the sweeper visits the shards one at a time and reclaims what is due,
//! oldest first, in bounded batches, so no shard lock is held for long. It stops for the
//! cycle when its CPU budget (`sweeper-cpu-percent` of one core) is spent, and goes again at
//! once, without waiting for the next tick, while work is overdue. Reads never depend on it:
//! lazy expiry keeps expired data invisible; the sweeper exists to give memory back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::ServerContext;

/// Keys or fields reclaimed per shard lock acquisition.
pub const SWEEP_BATCH: usize = 1_000;

/// Outcome of one sweep cycle.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CycleOutcome {
    pub keys: usize,
    pub fields: usize,
    /// Due work remains (the budget ran out first).
    pub more_due: bool,
}

/// One sweep over all shards, stopping when `budget` has elapsed. Synchronous, so tests can
/// drive it with a manual clock.
pub fn sweep_cycle(server: &ServerContext, budget: Duration) -> CycleOutcome {
    let started = Instant::now();
    let now = server.clock.now_ms();
    let mut out = CycleOutcome::default();
    let mut lag: Option<u64> = None;
    let ks = &server.keyspace;
    'dbs: for db in 0..ks.databases() {
        for shard in 0..ks.shards_per_db() {
            loop {
                let r = ks.with_shard(db, shard, |s| {
                    if let Some(t) = s.oldest_overdue(now) {
                        lag = Some(lag.map_or(now - t, |l| l.max(now - t)));
                    }
                    s.expire_due(now, SWEEP_BATCH)
                });
                out.keys += r.keys;
                out.fields += r.fields;
                if !r.more_due {
                    break;
                }
                if started.elapsed() >= budget {
                    out.more_due = true;
                    break 'dbs;
                }
            }
        }
    }
    ks.stats
        .expired_keys
        .fetch_add(out.keys as u64, Ordering::Relaxed);
    ks.stats
        .expired_subkeys
        .fetch_add(out.fields as u64, Ordering::Relaxed);
    let stats = &server.stats;
    stats.sweeper_cycles.fetch_add(1, Ordering::Relaxed);
    stats
        .sweeper_busy_us
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    let lag = lag.unwrap_or(0);
    stats.sweeper_last_lag_ms.store(lag, Ordering::Relaxed);
    stats.sweeper_max_lag_ms.fetch_max(lag, Ordering::Relaxed);
    out
}

/// The sweeper task: runs until shutdown.
pub async fn run(server: Arc<ServerContext>) {
    let mut shutdown = server.shutdown.subscribe();
    loop {
        let hz = server.config.hz.load(Ordering::Relaxed).clamp(1, 500);
        let period = Duration::from_millis(1000 / hz);
        let percent = server
            .config
            .sweeper_cpu_percent
            .load(Ordering::Relaxed)
            .clamp(1, 100);
        let budget = period * percent as u32 / 100;
        let mut overdue = false;
        if server.config.active_expire.load(Ordering::Relaxed) {
            let srv = Arc::clone(&server);
            // Reclaiming is CPU work under shard locks: keep it off the async workers' path.
            let outcome = tokio::task::spawn_blocking(move || sweep_cycle(&srv, budget)).await;
            overdue = outcome.map(|o| o.more_due).unwrap_or(false);
        }
        // Overdue work goes again after a pause that keeps the CPU share within budget.
        let pause = if overdue {
            period.saturating_sub(budget).min(period) / 4
        } else {
            period
        };
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(pause.max(Duration::from_millis(1))) => {}
        }
    }
}
