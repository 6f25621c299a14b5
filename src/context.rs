//! [`ServerContext`]: everything the server shares between connections, handed to every
//! command. There are no global singletons; tests build as many contexts as they like.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::client::ClientRegistry;
use crate::clock::Clock;
use crate::config::{Config, LiveConfig};
use crate::keyspace::{Batch, EffectSink, EncodingLimits, Keyspace, Recorder};
use crate::notify::Notifier;
use crate::persist::appendonly::{Aof, FsyncPolicy};
use crate::pubsub::PubSub;
use crate::replication::{ReplSettings, Replication};
use crate::shutdown::Shutdown;

/// Server-wide counters for INFO stats.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Sweeper: cycles run, time spent (µs), and how late it ran at worst (ms).
    pub sweeper_cycles: AtomicU64,
    pub sweeper_busy_us: AtomicU64,
    pub sweeper_max_lag_ms: AtomicU64,
    /// The age (ms) of the oldest overdue deadline seen by the last sweep.
    pub sweeper_last_lag_ms: AtomicU64,
    /// Bytes read from and written to clients (`total_net_input_bytes` / `_output_`).
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub errors: ErrorStats,
    /// `instantaneous_*`: Redis's 16 samples, taken every 100 ms.
    pub instantaneous: Mutex<Instantaneous>,
}

/// Redis's `trackInstantaneousMetric`: per metric, the rate over each of the last 16
/// 100-ms intervals; INFO reports their mean.
#[derive(Debug, Default)]
pub struct Instantaneous {
    last: Option<(std::time::Instant, [u64; 3])>,
    /// Per sample: commands, input bytes, output bytes — per second.
    samples: [[f64; 3]; 16],
    next: usize,
}

impl Instantaneous {
    /// Records the counters' values now (every 100 ms or so).
    pub fn sample(&mut self, now: std::time::Instant, values: [u64; 3]) {
        if let Some((t, before)) = self.last {
            let dt = now.duration_since(t).as_secs_f64();
            if dt > 0.0 {
                for i in 0..3 {
                    self.samples[self.next][i] = values[i].saturating_sub(before[i]) as f64 / dt;
                }
                self.next = (self.next + 1) % self.samples.len();
            }
        }
        self.last = Some((now, values));
    }

    /// The mean rate per second of metric `i` (0 commands, 1 input, 2 output bytes).
    pub fn mean(&self, i: usize) -> f64 {
        self.samples.iter().map(|s| s[i]).sum::<f64>() / self.samples.len() as f64
    }
}

/// Error replies by their code, the first word (INFO `total_error_replies` and
/// `errorstats`), as Redis's `afterErrorReply`. Taken only when an error is sent.
#[derive(Debug, Default)]
pub struct ErrorStats {
    total: AtomicU64,
    by_code: Mutex<std::collections::BTreeMap<Vec<u8>, u64>>,
}

/// Distinct error codes tracked at most (Redis stops tracking new ones past 128).
const MAX_ERROR_CODES: usize = 128;

impl ErrorStats {
    /// Counts one error reply whose text (without the leading `-`) is `text`.
    pub fn note(&self, text: &[u8]) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let code = text.split(|&b| b == b' ').next().unwrap_or_default();
        let mut codes = self.by_code.lock();
        if let Some(n) = codes.get_mut(code) {
            *n += 1;
        } else if codes.len() < MAX_ERROR_CODES {
            codes.insert(code.to_vec(), 1);
        }
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// `(code, count)` in code order.
    pub fn by_code(&self) -> Vec<(Vec<u8>, u64)> {
        self.by_code
            .lock()
            .iter()
            .map(|(c, n)| (c.clone(), *n))
            .collect()
    }

    pub fn reset(&self) {
        self.total.store(0, Ordering::Relaxed);
        self.by_code.lock().clear();
    }
}

/// Every consumer of the keyspace's effect batches, asked in turn: the append-only file
/// first (durability), then the replication stream, then notifications, then a test
/// recorder. Concrete types, so the interest check every command makes is a few atomic
/// loads.
struct Consumers {
    aof: Arc<Aof>,
    replication: Arc<Replication>,
    notifier: Arc<Notifier>,
    tracker: Arc<crate::tracking::Tracker>,
    migration: crate::cluster::migrate::Capture,
    recorder: Option<Arc<Recorder>>,
}

impl EffectSink for Consumers {
    fn interested(&self) -> bool {
        self.aof.interested()
            || self.replication.interested()
            || self.notifier.interested()
            || self.tracker.active()
            || self.migration.interested()
            || self.recorder.is_some()
    }

    fn publish(&self, batch: &Batch) {
        if self.aof.interested() {
            self.aof.publish(batch);
        }
        if self.replication.interested() {
            self.replication.publish(batch);
        }
        if self.notifier.interested() {
            self.notifier.publish(batch);
        }
        if self.tracker.active() {
            self.tracker.publish(batch);
        }
        if self.migration.interested() {
            self.migration.publish(batch);
        }
        if let Some(r) = &self.recorder {
            r.publish(batch);
        }
    }
}

/// Changes the log's level at run time (CONFIG SET loglevel); Err for an unknown level.
pub type LogLevelSetter = Box<dyn Fn(&str) -> Result<(), ()> + Send + Sync>;

/// What the shutdown sequence does about a final snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalSave {
    /// Save if save points are configured (SIGTERM, plain SHUTDOWN).
    Default,
    /// SHUTDOWN SAVE: save even without save points.
    Save,
    /// SHUTDOWN NOSAVE.
    NoSave,
    /// SHUTDOWN already saved.
    Done,
}

pub struct ServerContext {
    pub config: LiveConfig,
    pub keyspace: Keyspace,
    pub clients: ClientRegistry,
    /// Channel and pattern subscriptions (SUBSCRIBE, PUBLISH).
    pub pubsub: Arc<PubSub>,
    /// Clients in MONITOR mode.
    pub monitors: crate::monitor::Monitors,
    /// CLIENT PAUSE.
    pub pause: crate::pause::Pause,
    /// Keyspace notifications: a consumer of the keyspace's effects
    /// (`notify-keyspace-events`).
    pub notifier: Arc<Notifier>,
    /// The append-only file (persist::appendonly).
    pub aof: Arc<Aof>,
    /// INFO commandstats and the slow log.
    pub commands: crate::cmdstats::CommandStats,
    /// LATENCY's samples.
    pub latency: crate::latency::LatencyMonitor,
    /// The memory limit and eviction.
    pub maxmemory: crate::maxmemory::MaxMemory,
    /// TLS for `tls-port` clients.
    pub tls: crate::tls::Tls,
    /// ACL users, ACL LOG and the `acl_access_denied_*` counters.
    pub acl: crate::acl::Acl,
    /// `rename-command`.
    pub renames: crate::cmd::Renames,
    /// Cluster mode: the topology and this node's id.
    pub cluster: crate::cluster::Cluster,
    /// Client-side caching (CLIENT TRACKING).
    pub tracker: Arc<crate::tracking::Tracker>,
    /// The client listeners' addresses, which CONFIG SET bind / port replace.
    pub listening: crate::listen::Listening,
    /// Role, replication history, backlog and replicas (replication).
    pub replication: Arc<Replication>,
    /// Snapshot state: loading, BGSAVE, the last save (persist::snapshot).
    pub rdb: Arc<crate::persist::snapshot::RdbStatus>,
    /// Every effect batch, when the context was built with
    /// [`ServerContext::with_recorder`] (tests).
    pub recorder: Option<Arc<Recorder>>,
    pub stats: ServerStats,
    pub clock: Clock,
    pub shutdown: Shutdown,
    /// Unix ms at start-up.
    pub started_ms: u64,
    /// Bytes allocated once the context was built (INFO `used_memory_startup`).
    pub startup_memory: usize,
    /// 40 hex characters, random per start (INFO run_id).
    pub run_id: String,
    /// The port actually bound (differs from the config when it asked for port 0).
    pub port: AtomicU64,
    /// Shutting down: no command runs any more (connections close without a reply).
    pub closing: AtomicBool,
    final_save: AtomicU8,
    /// Why the server must exit with an error (a snapshot that would not load…).
    failure: Mutex<Option<String>>,
    /// Installed by the binary, which owns the logger (tests run without one).
    log_level_setter: std::sync::OnceLock<LogLevelSetter>,
    /// `loglevel` as last set.
    pub log_level: parking_lot::RwLock<String>,
}

impl ServerContext {
    pub fn new(config: &Config, clock: Clock) -> Self {
        Self::build(config, clock, false)
    }

    /// Like [`ServerContext::new`], also recording every effect batch in `recorder`.
    pub fn with_recorder(config: &Config, clock: Clock) -> Self {
        Self::build(config, clock, true)
    }

    fn build(config: &Config, clock: Clock, record: bool) -> Self {
        let keyspace = Keyspace::new(config.databases, config.shards);
        keyspace.set_limits(EncodingLimits {
            max_compact_entries: config.hash_max_listpack_entries,
            max_compact_value: config.hash_max_listpack_value,
        });
        let mut rng = fastrand::Rng::new();
        let run_id = (0..40)
            .map(|_| char::from_digit(rng.u32(..16), 16).unwrap_or('0'))
            .collect();
        let started_ms = clock.now_ms();
        let pubsub = Arc::new(PubSub::default());
        // The configuration was validated; a bad value here could only come from a test.
        let flags = crate::notify::parse_flags(config.notify_keyspace_events.as_bytes())
            .unwrap_or_default();
        let notifier = Arc::new(Notifier::new(flags, Arc::clone(&pubsub)));
        let recorder = record.then(|| Arc::new(Recorder::default()));
        let policy = FsyncPolicy::parse(&config.appendfsync).unwrap_or(FsyncPolicy::EverySec);
        let aof = Aof::new(policy);
        let pause = crate::pause::Pause::new(keyspace.expiry_paused_flag());
        let maxmemory = crate::maxmemory::MaxMemory::new(config);
        maxmemory.set_policy(maxmemory.policy(), &keyspace);
        keyspace.access.log_factor.store(
            config.lfu_log_factor.min(u32::MAX as u64) as u32,
            Ordering::Relaxed,
        );
        keyspace.access.decay_minutes.store(
            config.lfu_decay_time.min(u32::MAX as u64) as u32,
            Ordering::Relaxed,
        );
        let replication = Arc::new(Replication::new(
            ReplSettings::from_config(config),
            clock.clone(),
            keyspace.keep_expired_flag(),
        ));
        let tracker = Arc::new(crate::tracking::Tracker::new(
            config.tracking_table_max_keys,
        ));
        let migrations = Arc::new(crate::cluster::migrate::Migrations::default());
        keyspace.set_sink(Arc::new(Consumers {
            aof: Arc::clone(&aof),
            replication: Arc::clone(&replication),
            notifier: Arc::clone(&notifier),
            tracker: Arc::clone(&tracker),
            migration: crate::cluster::migrate::Capture(Arc::clone(&migrations)),
            recorder: recorder.clone(),
        }));
        ServerContext {
            config: LiveConfig::new(config),
            keyspace,
            clients: ClientRegistry::default(),
            pubsub,
            monitors: Default::default(),
            pause,
            notifier,
            aof,
            latency: crate::latency::LatencyMonitor::new(config.latency_monitor_threshold),
            maxmemory,
            acl: crate::acl::Acl::from_config(config),
            // Validated at start-up; a failure here could only come from a test.
            renames: crate::cmd::Renames::new(&config.rename_command).unwrap_or_default(),
            cluster: crate::cluster::Cluster::from_config(config, migrations),
            listening: crate::listen::Listening::new(&config.bind, config.tls_port),
            // Validated at start-up (Config::validate); a configuration that still fails
            // here serves no TLS rather than half of it.
            tls: crate::tls::Tls::new(
                crate::tls::TlsSettings::from_config(config),
                config.tls_port != 0,
            )
            .unwrap_or_else(|_| {
                crate::tls::Tls::disabled(crate::tls::TlsSettings::from_config(config))
            }),
            tracker,
            commands: crate::cmdstats::CommandStats::new(
                crate::cmd::table().all.len(),
                config.slowlog_log_slower_than,
                config.slowlog_max_len,
            )
            .with_latency_tracking(
                config.latency_tracking,
                // Validated at start-up (Config::validate); a test's config may skip that.
                crate::cmdstats::parse_info_percentiles(&config.latency_tracking_info_percentiles)
                    .unwrap_or_else(|_| vec![50.0, 99.0, 99.9]),
            ),
            replication,
            rdb: Arc::new(crate::persist::snapshot::RdbStatus::new(clock.clone())),
            recorder,
            stats: ServerStats::default(),
            clock,
            shutdown: Shutdown::new(),
            started_ms,
            startup_memory: crate::alloc::allocated(),
            run_id,
            port: AtomicU64::new(u64::from(config.port)),
            closing: AtomicBool::new(false),
            final_save: AtomicU8::new(0),
            failure: Mutex::new(None),
            log_level_setter: std::sync::OnceLock::new(),
            log_level: parking_lot::RwLock::new(config.loglevel.clone()),
        }
    }

    pub fn set_log_level_setter(&self, f: LogLevelSetter) {
        let _ = self.log_level_setter.set(f);
    }

    /// CONFIG SET loglevel: applied to the logger when there is one.
    pub fn set_log_level(&self, name: &str) {
        if let Some(f) = self.log_level_setter.get() {
            let _ = f(name);
        }
        *self.log_level.write() = name.to_ascii_lowercase();
    }

    pub fn set_final_save(&self, mode: FinalSave) {
        let v = match mode {
            FinalSave::Default => 0,
            FinalSave::Save => 1,
            FinalSave::NoSave => 2,
            FinalSave::Done => 3,
        };
        self.final_save.store(v, Ordering::Relaxed);
    }

    pub fn final_save(&self) -> FinalSave {
        match self.final_save.load(Ordering::Relaxed) {
            1 => FinalSave::Save,
            2 => FinalSave::NoSave,
            3 => FinalSave::Done,
            _ => FinalSave::Default,
        }
    }

    /// Records a fatal error and starts the shutdown; the process then exits with it.
    pub fn fail(&self, why: String) {
        self.failure.lock().get_or_insert(why);
        self.shutdown.trigger();
    }

    /// The fatal error, if one was recorded.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// A context for unit tests: defaults and a manual clock at `now_ms`.
    /// No save points, and snapshots (SAVE) in the system's temporary directory, so unit
    /// tests never write into the working directory.
    pub fn for_tests(now_ms: u64) -> Self {
        let config = Config {
            save: String::new(),
            dir: std::env::temp_dir().display().to_string(),
            dbfilename: format!("hashd-unit-{}.rdb", std::process::id()),
            ..Config::default()
        };
        Self::new(&config, Clock::manual(now_ms))
    }
}
