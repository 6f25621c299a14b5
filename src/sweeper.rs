//! Background reclaim of expired keys and hash fields (active expiry).
//!
//! Every `1000/hz` ms the sweeper visits the shards one at a time and reclaims what is due,
//! oldest first, in bounded batches, so no shard lock is held for long. Within a cycle the
//! shards take turns, one batch each, and the next cycle resumes after the shard where this
//! one stopped, so a deep backlog in one shard cannot starve the others. A cycle stops when
//! its CPU budget (`sweeper-cpu-percent` of one core) is spent; while work is overdue the
//! next cycle starts as soon as that share allows, instead of a full period later. Reads
//! never depend on the sweeper: lazy expiry keeps expired data invisible; the sweeper
//! exists to give memory back. `DEBUG SET-ACTIVE-EXPIRE 0` (config `active_expire`) stops it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::ServerContext;

/// Keys or fields reclaimed per shard lock acquisition.
pub const SWEEP_BATCH: usize = 250;

/// The shortest wait between two cycles, even when work is overdue and the budget is 100%.
pub const MIN_PAUSE_MS: u64 = 1;

/// Outcome of one sweep cycle.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CycleOutcome {
    pub keys: usize,
    pub fields: usize,
    /// The budget ran out before every shard was visited and emptied of due work, so work
    /// may remain.
    pub more_due: bool,
    /// Wall time the cycle took.
    pub busy: Duration,
}

/// The sweeper's memory between cycles: where the next cycle starts.
#[derive(Debug, Default)]
pub struct Sweeper {
    /// Index of the shard to visit first, counting every shard of every database in order.
    next_slot: usize,
}

impl Sweeper {
    pub fn new() -> Self {
        Sweeper::default()
    }

    /// One sweep over all shards. Work stops once `budget` has elapsed; idle shards cost a
    /// lock and two index lookups each and are always visited. Synchronous, so tests can
    /// drive it with a manual clock.
    pub fn cycle(&mut self, server: &ServerContext, budget: Duration) -> CycleOutcome {
        let started = Instant::now();
        let now = server.clock.now_ms();
        let ks = &server.keyspace;
        let per_db = ks.shards_per_db();
        let total = ks.databases() * per_db;
        let start = self.next_slot % total;
        let mut out = CycleOutcome::default();
        let mut lag: Option<u64> = None;
        // Each pass gives every shard that still has due work one batch.
        let mut pass: Vec<usize> = (0..total).map(|i| (start + i) % total).collect();
        'passes: while !pass.is_empty() {
            let mut again = Vec::new();
            for (pos, &slot) in pass.iter().enumerate() {
                let (r, overdue) = ks.sweep_shard(slot / per_db, slot % per_db, now, SWEEP_BATCH);
                if let Some(l) = overdue {
                    lag = Some(lag.map_or(l, |m: u64| m.max(l)));
                }
                out.keys += r.keys;
                out.fields += r.fields;
                if r.more_due {
                    again.push(slot);
                }
                if r.keys + r.fields > 0 && started.elapsed() >= budget {
                    let unvisited = pos + 1 < pass.len();
                    if unvisited || !again.is_empty() {
                        out.more_due = true;
                        self.next_slot = (slot + 1) % total;
                    }
                    break 'passes;
                }
            }
            pass = again;
        }
        out.busy = started.elapsed();
        // expired_keys / expired_subkeys were counted by each batch's effect log.
        let stats = &server.stats;
        stats.sweeper_cycles.fetch_add(1, Ordering::Relaxed);
        stats
            .sweeper_busy_us
            .fetch_add(out.busy.as_micros() as u64, Ordering::Relaxed);
        let lag = lag.unwrap_or(0);
        stats.sweeper_last_lag_ms.store(lag, Ordering::Relaxed);
        stats.sweeper_max_lag_ms.fetch_max(lag, Ordering::Relaxed);
        out
    }
}

/// One cycle from a fresh [`Sweeper`] (starting at the first shard): for one-off sweeps and
/// tests. The background task keeps its own `Sweeper` so that its cycles rotate.
pub fn sweep_cycle(server: &ServerContext, budget: Duration) -> CycleOutcome {
    Sweeper::new().cycle(server, budget)
}

/// The cycle period and the CPU percentage from the live config.
fn schedule(server: &ServerContext) -> (Duration, u64) {
    let hz = server.config.hz.load(Ordering::Relaxed).clamp(1, 500);
    let percent = server
        .config
        .sweeper_cpu_percent
        .load(Ordering::Relaxed)
        .clamp(1, 100);
    (Duration::from_millis(1000 / hz), percent)
}

/// The time budget of one cycle: `percent` of the period.
fn budget(period: Duration, percent: u64) -> Duration {
    period * percent as u32 / 100
}

/// How long to wait before the next cycle. With nothing overdue (or the sweeper off), a
/// full period. With work overdue, the shortest pause that keeps the sweeper's share of one
/// core at `percent`: busy / (busy + pause) = percent / 100.
fn pause_after(outcome: Option<&CycleOutcome>, period: Duration, percent: u64) -> Duration {
    let pause = match outcome {
        Some(o) if o.more_due => o.busy * (100 - percent) as u32 / percent as u32,
        _ => period,
    };
    pause.max(Duration::from_millis(MIN_PAUSE_MS))
}

/// The sweeper task: runs until shutdown.
pub async fn run(server: Arc<ServerContext>) {
    let mut shutdown = server.shutdown.subscribe();
    let mut sweeper = Sweeper::new();
    let mut release = crate::memory::Release::new();
    loop {
        // Give freed memory back to the system (after FLUSHALL, large deletes, drains),
        // off the async workers: see memory.rs. Not gated on active expiry.
        let ks = &server.keyspace;
        let keys = (0..ks.databases()).map(|db| ks.db_summary(db).keys).sum();
        // While the lazyfree thread frees (FLUSHALL ASYNC, UNLINK), what it frees is what
        // a look would find: wait for it, and count each object it freed as a change, so
        // that a look made before it finished is followed by one after.
        let changes = ks.changes().wrapping_add(ks.lazyfree.freed());
        if ks.lazyfree.pending() == 0 && release.due(Instant::now(), changes, keys) {
            let mut r = std::mem::take(&mut release);
            // A panic in the allocator calls would lose the state: start afresh.
            release = tokio::task::spawn_blocking(move || {
                r.check_and_trim();
                r
            })
            .await
            .unwrap_or_default();
        }
        let (period, percent) = schedule(&server);
        let mut outcome = None;
        // Not while a snapshot or log loads: a replayed command must find what the original
        // found (a RENAME of a key that has expired since), as in Redis.
        // Nor on a replica: its master's HDEL and DEL say what expired, so both hold the
        // same data at every offset.
        server.pause.refresh();
        if server.config.active_expire.load(Ordering::Relaxed)
            && !server.rdb.loading.load(Ordering::Relaxed)
            && !server.replication.is_replica()
            && !server.keyspace.keeps_expired()
        {
            let srv = Arc::clone(&server);
            let budget = budget(period, percent);
            // Reclaiming is CPU work under shard locks: keep it off the async workers' path.
            let done = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let outcome = sweeper.cycle(&srv, budget);
                let ms = started.elapsed().as_millis() as u64;
                srv.latency
                    .record("expire-cycle", ms, srv.clock.now_ms() / 1000);
                (outcome, sweeper)
            })
            .await;
            match done {
                Ok((o, s)) => {
                    outcome = Some(o);
                    sweeper = s;
                }
                // The cycle panicked; start the next one afresh.
                Err(_) => sweeper = Sweeper::new(),
            }
        }
        // Eviction left unfinished by commands (its time limit), or needed with no command
        // arriving (CONFIG SET maxmemory lowered): Redis's eviction timer.
        if server.maxmemory.active() {
            let srv = Arc::clone(&server);
            let _ = tokio::task::spawn_blocking(move || srv.maxmemory.enforce(&srv)).await;
        }
        let pause = pause_after(outcome.as_ref(), period, percent);
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{TestEnv, T0_MS};
    use crate::context::ServerContext;
    use crate::keyspace::{EncodingLimits, LockPlan, TtlUpdate};

    /// Budget large enough that no test cycle is cut short by time.
    const NO_LIMIT: Duration = Duration::from_secs(3600);

    fn counter(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Keys, key-TTL index entries and field-TTL index entries across every database.
    fn totals(server: &ServerContext) -> (usize, usize, usize) {
        let ks = &server.keyspace;
        ks.check_invariants().expect("keyspace invariants");
        (0..ks.databases())
            .map(|db| ks.db_summary(db).as_tuple())
            .fold((0, 0, 0), |t, s| (t.0 + s.0, t.1 + s.1, t.2 + s.2))
    }

    /// Fields stored in one shard of db 0, expired ones included.
    fn fields_in_shard(server: &ServerContext, shard: usize) -> usize {
        server.keyspace.stored_fields_in(0, shard)
    }

    /// `count` keys of db 0 that live in `shard`.
    fn keys_in_shard(server: &ServerContext, shard: usize, count: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("key:{i}"))
            .filter(|k| server.keyspace.shard_of(k.as_bytes()) == shard)
            .take(count)
            .collect()
    }

    /// HSETEX `key` PX `ttl_ms` with `n` fields.
    fn hsetex(env: &mut TestEnv, key: &str, ttl_ms: u64, n: usize) {
        let mut args = vec![
            "HSETEX".to_string(),
            key.to_string(),
            "PX".into(),
            ttl_ms.to_string(),
            "FIELDS".into(),
            n.to_string(),
        ];
        for f in 0..n {
            args.push(format!("field:{f}"));
            args.push("value".into());
        }
        assert_eq!(env.run_args(&args), b":1\r\n");
    }

    /// Sweeps with `budget` until nothing is due; returns the number of cycles and totals.
    fn sweep_until_done(
        sweeper: &mut Sweeper,
        server: &ServerContext,
        budget: Duration,
    ) -> (usize, CycleOutcome) {
        let mut sum = CycleOutcome::default();
        for cycles in 1..=10_000 {
            let o = sweeper.cycle(server, budget);
            sum.keys += o.keys;
            sum.fields += o.fields;
            if !o.more_due {
                return (cycles, sum);
            }
        }
        panic!("the sweeper never finished");
    }

    #[test]
    fn reclaims_100k_fields_across_10k_hashes() {
        let mut env = TestEnv::new();
        // Half the hashes compact, half tables; deadlines spread over 500 ms.
        for i in 0..10_000u64 {
            if i == 5_000 {
                env.server.keyspace.set_limits(EncodingLimits {
                    max_compact_entries: 4,
                    ..EncodingLimits::default()
                });
            }
            hsetex(&mut env, &format!("hash:{i}"), 10 + i % 500, 10);
        }
        assert_eq!(totals(&env.server), (10_000, 0, 10_000));

        // Nothing is due yet: a cycle reclaims nothing.
        let o = sweep_cycle(&env.server, NO_LIMIT);
        assert_eq!((o.keys, o.fields, o.more_due), (0, 0, false));

        env.advance_ms(1_000);
        let mut sweeper = Sweeper::new();
        let (_, sum) = sweep_until_done(&mut sweeper, &env.server, NO_LIMIT);
        assert_eq!((sum.keys, sum.fields), (0, 100_000));
        let ks = &env.server.keyspace;
        assert_eq!(counter(&ks.stats.expired_subkeys), 100_000);
        assert_eq!(
            counter(&ks.stats.expired_keys),
            0,
            "emptied hashes are not key expiries"
        );
        // No key left behind, no index entry left behind.
        assert_eq!(totals(&env.server), (0, 0, 0));
        for db in 0..ks.databases() {
            assert_eq!(ks.db_summary(db).as_tuple(), (0, 0, 0));
        }
        assert_eq!(env.run("HGET hash:0 field:0"), "$-1\r\n");
        // The oldest deadline was 990 ms overdue; a later idle cycle sees no lag.
        let stats = &env.server.stats;
        assert_eq!(counter(&stats.sweeper_last_lag_ms), 990);
        sweep_cycle(&env.server, NO_LIMIT);
        assert_eq!(counter(&stats.sweeper_last_lag_ms), 0);
        assert_eq!(counter(&stats.sweeper_max_lag_ms), 990);
        assert_eq!(counter(&stats.sweeper_cycles), 3);
    }

    #[test]
    fn only_due_fields_go() {
        let mut env = TestEnv::new();
        env.run("HSET k keep 1 soon 2 later 3");
        env.run("HPEXPIRE k 10 FIELDS 1 soon");
        env.run("HPEXPIRE k 1000 FIELDS 1 later");
        env.run("HSET gone a 1");
        env.run("HPEXPIRE gone 10 FIELDS 1 a");
        env.advance_ms(10);
        // At the deadline nothing is expired yet (expired means deadline < now).
        assert_eq!(sweep_cycle(&env.server, NO_LIMIT).fields, 0);
        env.advance_ms(1);
        let o = sweep_cycle(&env.server, NO_LIMIT);
        assert_eq!((o.keys, o.fields, o.more_due), (0, 2, false));
        assert_eq!(totals(&env.server), (1, 0, 1));
        assert_eq!(
            env.run("HPTTL k FIELDS 3 keep soon later"),
            "*3\r\n:-1\r\n:-2\r\n:989\r\n"
        );
        env.advance_ms(1000);
        assert_eq!(sweep_cycle(&env.server, NO_LIMIT).fields, 1);
        assert_eq!(totals(&env.server), (1, 0, 0));
        assert_eq!(env.run("HGET k keep"), "$1\r\n1\r\n");
    }

    #[test]
    fn a_tiny_budget_leaves_work_for_later_cycles() {
        let mut env = TestEnv::new();
        for i in 0..2_000 {
            hsetex(&mut env, &format!("h{i}"), 5, 10);
        }
        env.advance_ms(6);
        let mut sweeper = Sweeper::new();
        // A zero budget allows exactly one batch of work per cycle.
        let o = sweeper.cycle(&env.server, Duration::ZERO);
        assert!(o.more_due);
        assert_eq!(o.keys + o.fields, SWEEP_BATCH);
        let (cycles, sum) = sweep_until_done(&mut sweeper, &env.server, Duration::ZERO);
        assert_eq!(sum.fields + o.fields, 20_000);
        // One batch per cycle, plus at most one partial batch per shard.
        let shards = env.server.keyspace.shards_per_db();
        let full = 20_000 / SWEEP_BATCH - 1;
        assert!(cycles >= full && cycles <= full + shards, "{cycles} cycles");
        assert_eq!(totals(&env.server), (0, 0, 0));
        assert_eq!(counter(&env.server.keyspace.stats.expired_subkeys), 20_000);
    }

    #[test]
    fn shards_take_turns_when_the_budget_is_short() {
        let mut env = TestEnv::new();
        let shards = env.server.keyspace.shards_per_db();
        // 2,500 due fields in every shard of db 0: more than two batches each.
        const { assert!(2_500 > 2 * SWEEP_BATCH) };
        for shard in 0..shards {
            for key in keys_in_shard(&env.server, shard, 250) {
                hsetex(&mut env, &key, 5, 10);
            }
            assert_eq!(fields_in_shard(&env.server, shard), 2_500);
        }
        env.advance_ms(6);
        let mut sweeper = Sweeper::new();
        for _ in 0..shards {
            assert!(sweeper.cycle(&env.server, Duration::ZERO).more_due);
        }
        // One batch from each shard, none from the same shard twice.
        for shard in 0..shards {
            assert_eq!(
                fields_in_shard(&env.server, shard),
                2_500 - SWEEP_BATCH,
                "shard {shard}"
            );
        }
        // Within one unhurried cycle they also take turns, and all finish.
        let o = sweeper.cycle(&env.server, NO_LIMIT);
        assert_eq!(
            (o.fields, o.more_due),
            ((2_500 - SWEEP_BATCH) * shards, false)
        );
        assert_eq!(totals(&env.server), (0, 0, 0));
    }

    #[test]
    fn key_ttls_are_reclaimed_and_counted() {
        let env = TestEnv::new();
        let server = &env.server;
        {
            let mut l = server.keyspace.lock(&LockPlan::All);
            for db in [0, 3] {
                let mut view = l.db(db);
                for i in 0..1_500u64 {
                    let key = format!("k{i}");
                    let mut h = view.get_or_create(key.as_bytes(), T0_MS);
                    h.set(b"f", b"v", TtlUpdate::Clear);
                    // Some also carry field TTLs that are not yet due.
                    if i % 3 == 0 {
                        h.set(b"g", b"v", TtlUpdate::Set(T0_MS + 1_000_000));
                    }
                    drop(h);
                    if i % 2 == 0 {
                        assert!(view.set_key_deadline(key.as_bytes(), Some(T0_MS + 10 + i), T0_MS));
                    }
                }
            }
        }
        assert_eq!(totals(server), (3_000, 1_500, 1_000));
        env.advance_ms(10 + 1_500);
        let (_, sum) = sweep_until_done(&mut Sweeper::new(), server, Duration::ZERO);
        assert_eq!((sum.keys, sum.fields), (1_500, 0));
        assert_eq!(counter(&server.keyspace.stats.expired_keys), 1_500);
        assert_eq!(counter(&server.keyspace.stats.expired_subkeys), 0);
        // The survivors are the keys without a TTL, still with their field TTLs indexed.
        assert_eq!(totals(server), (1_500, 0, 500));
        assert_eq!(server.keyspace.db_summary(3).as_tuple(), (750, 0, 250));
    }

    #[test]
    fn watch_sees_active_field_expiry() {
        let mut env = TestEnv::new();
        env.run("HSET k f v g w");
        env.run("HPEXPIRE k 10 FIELDS 1 f");
        assert_eq!(env.run("WATCH k"), "+OK\r\n");
        env.advance_ms(11);
        assert_eq!(sweep_cycle(&env.server, NO_LIMIT).fields, 1);
        env.run("MULTI");
        env.run("HSET k x y");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        // And when the sweeper deletes the whole key.
        env.run("HPEXPIRE k 10 FIELDS 1 g");
        env.run("WATCH k");
        env.advance_ms(11);
        assert_eq!(sweep_cycle(&env.server, NO_LIMIT).fields, 1);
        assert_eq!(totals(&env.server), (0, 0, 0));
        env.run("MULTI");
        env.run("HSET k x y");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        // A sweep that finds nothing for k leaves the watch clean.
        env.run("HSET k a b");
        env.run("WATCH k");
        sweep_cycle(&env.server, NO_LIMIT);
        env.run("MULTI");
        env.run("HSET k x y");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
    }

    /// Runs the real background task until it first waits, with shutdown already triggered
    /// so that it returns there: one iteration of the loop, no timing involved.
    fn run_one_iteration(server: Arc<ServerContext>) {
        server.shutdown.trigger();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(run(server));
    }

    #[test]
    fn active_expire_off_means_the_task_does_nothing() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("HPEXPIRE k 10 FIELDS 1 f");
        env.advance_ms(11);
        let server = Arc::new(std::mem::replace(
            &mut env.server,
            ServerContext::for_tests(T0_MS),
        ));
        server.config.active_expire.store(false, Ordering::Relaxed);
        run_one_iteration(Arc::clone(&server));
        assert_eq!(counter(&server.stats.sweeper_cycles), 0);
        assert_eq!(counter(&server.keyspace.stats.expired_subkeys), 0);
        assert_eq!(
            totals(&server),
            (1, 0, 1),
            "the expired field is still stored"
        );
    }

    #[test]
    fn active_expire_on_means_the_task_sweeps() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("HPEXPIRE k 10 FIELDS 1 f");
        env.advance_ms(11);
        let server = Arc::new(std::mem::replace(
            &mut env.server,
            ServerContext::for_tests(T0_MS),
        ));
        run_one_iteration(Arc::clone(&server));
        assert_eq!(counter(&server.stats.sweeper_cycles), 1);
        assert_eq!(counter(&server.keyspace.stats.expired_subkeys), 1);
        assert_eq!(totals(&server), (0, 0, 0));
    }

    #[test]
    fn pauses_keep_the_cpu_share_honest() {
        let period = Duration::from_millis(100);
        let busy = |ms, more_due| CycleOutcome {
            more_due,
            busy: Duration::from_millis(ms),
            ..CycleOutcome::default()
        };
        // Sweeper off, or nothing overdue: a full period.
        assert_eq!(pause_after(None, period, 25), period);
        assert_eq!(pause_after(Some(&busy(25, false)), period, 25), period);
        // Overdue: busy / (busy + pause) == percent.
        assert_eq!(
            pause_after(Some(&busy(25, true)), period, 25),
            Duration::from_millis(75)
        );
        assert_eq!(
            pause_after(Some(&busy(10, true)), period, 50),
            Duration::from_millis(10)
        );
        // An overlong cycle earns a proportionally longer rest, even beyond a period.
        assert_eq!(
            pause_after(Some(&busy(50, true)), period, 25),
            Duration::from_millis(150)
        );
        // At 100% the sweeper still yields for a moment.
        assert_eq!(
            pause_after(Some(&busy(30, true)), period, 100),
            Duration::from_millis(MIN_PAUSE_MS)
        );
        assert_eq!(budget(period, 25), Duration::from_millis(25));
        let server = ServerContext::for_tests(T0_MS);
        assert_eq!(schedule(&server), (Duration::from_millis(100), 25));
        server.config.hz.store(1000, Ordering::Relaxed);
        server
            .config
            .sweeper_cpu_percent
            .store(0, Ordering::Relaxed);
        assert_eq!(schedule(&server), (Duration::from_millis(2), 1));
    }
}
