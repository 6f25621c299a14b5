//! [`ServerContext`]: everything the server shares between connections, handed to every
//! command. There are no global singletons; tests build as many contexts as they like.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::client::ClientRegistry;
use crate::clock::Clock;
use crate::config::{Config, LiveConfig};
use crate::keyspace::{EffectSink, EncodingLimits, Fanout, Keyspace, Recorder};
use crate::notify::Notifier;
use crate::pubsub::PubSub;
use crate::shutdown::Shutdown;

/// Server-wide counters for INFO stats.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    /// Sweeper: cycles run, time spent (µs), and how late it ran at worst (ms).
    pub sweeper_cycles: AtomicU64,
    pub sweeper_busy_us: AtomicU64,
    pub sweeper_max_lag_ms: AtomicU64,
    /// The age (ms) of the oldest overdue deadline seen by the last sweep.
    pub sweeper_last_lag_ms: AtomicU64,
}

pub struct ServerContext {
    pub config: LiveConfig,
    pub keyspace: Keyspace,
    pub clients: ClientRegistry,
    /// Channel and pattern subscriptions (SUBSCRIBE, PUBLISH).
    pub pubsub: Arc<PubSub>,
    /// Keyspace notifications: a consumer of the keyspace's effects
    /// (`notify-keyspace-events`).
    pub notifier: Arc<Notifier>,
    /// Every effect batch, when the context was built with
    /// [`ServerContext::with_recorder`] (tests).
    pub recorder: Option<Arc<Recorder>>,
    pub stats: ServerStats,
    pub clock: Clock,
    pub shutdown: Shutdown,
    /// Unix ms at start-up.
    pub started_ms: u64,
    /// 40 hex characters, random per start (INFO run_id).
    pub run_id: String,
    /// The port actually bound (differs from the config when it asked for port 0).
    pub port: AtomicU64,
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
        let mut sinks: Vec<Arc<dyn EffectSink>> = vec![notifier.clone()];
        if let Some(r) = &recorder {
            sinks.push(r.clone());
        }
        keyspace.set_sink(Arc::new(Fanout::new(sinks)));
        ServerContext {
            config: LiveConfig::new(config),
            keyspace,
            clients: ClientRegistry::default(),
            pubsub,
            notifier,
            recorder,
            stats: ServerStats::default(),
            clock,
            shutdown: Shutdown::new(),
            started_ms,
            run_id,
            port: AtomicU64::new(u64::from(config.port)),
        }
    }

    /// A context for unit tests: defaults and a manual clock at `now_ms`.
    pub fn for_tests(now_ms: u64) -> Self {
        Self::new(&Config::default(), Clock::manual(now_ms))
    }
}
