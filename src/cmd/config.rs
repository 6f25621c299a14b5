//! CONFIG GET parameter [parameter ...]
//! CONFIG SET parameter value [parameter value ...]
//! CONFIG RESETSTAT
//! CONFIG HELP
//!
//! Spec §14. CONFIG GET answers for hashd's own parameters and for the Redis ones clients
//! and tools read at start-up (`save`, `appendonly`, `databases`, `timeout`,
//! `slave-read-only`, …), each with the value that describes what hashd actually does.
//!
//! CONFIG SET changes hashd's live parameters (`requirepass`, `maxclients`, `hz`,
//! `proto-max-bulk-len`, `client-query-buffer-limit`, `hash-max-listpack-entries`/`-value`,
//! `sweeper-cpu-percent`). The Redis parameters hashd has no machinery for (persistence,
//! eviction, idle timeouts, keyspace events) accept only the value hashd already has: a
//! test suite that sets `save ""` or `appendonly no` works, while `appendonly yes` fails
//! loudly instead of silently promising durability that does not exist. Start-up-only
//! parameters (`databases`, `dir`…) are immutable; `bind` and `port` rebind the listeners.

use std::sync::atomic::Ordering;

use super::parse::is;
use super::{flags, Args, Command, Ctx};
use crate::cmdstats::{format_percentile, parse_info_percentiles};
use crate::config::MIN_PROTO_MAX_BULK_LEN;
use crate::context::ServerContext;
use crate::error::CmdError;
use crate::glob;
use crate::keyspace::EncodingLimits;
use crate::keyspace::EvictionPolicy;
use crate::protocol::{parse_i64, Reply};

const ADMIN: u32 = flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE;

const SUBCOMMANDS: &[Command] = &[
    Command::new("config|get", -3, get).flags(ADMIN).doc(
        "server",
        "2.0.0",
        "Returns the effective values of configuration parameters.",
        "O(N) when N is the number of configuration parameters provided",
        "parameter [parameter ...]",
    ),
    // Holds every shard: switching appendonly on writes a base of the dataset as one instant.
    Command::new("config|set", -4, set)
        .flags(ADMIN | flags::LOCK_ALL)
        .doc(
            "server",
            "2.0.0",
            "Sets configuration parameters in-flight.",
            "O(N) when N is the number of configuration parameters provided",
            "parameter value [parameter value ...]",
        ),
    Command::new("config|resetstat", 2, resetstat)
        .flags(ADMIN)
        .doc(
            "server",
            "2.0.0",
            "Resets the server's statistics.",
            "O(1)",
            "",
        ),
    Command::new("config|help", 2, help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "server",
            "5.0.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
];

pub const COMMANDS: &[Command] = &[Command::container("config", SUBCOMMANDS).doc(
    "server",
    "2.0.0",
    "A container for server configuration commands.",
    "Depends on subcommand.",
    "",
)];

/// How CONFIG SET treats a parameter.
#[derive(Clone, Copy)]
enum Setter {
    /// Fixed at start-up.
    Immutable,
    Requirepass,
    /// An integer in `min..=max`; `unsigned` selects Redis's bound message for unsigned
    /// types (a negative input wraps and is reported out of range), `memory` accepts unit
    /// suffixes (`1mb`).
    Int {
        min: i64,
        max: i64,
        memory: bool,
        apply: fn(&ServerContext, i64),
    },
    /// `notify-keyspace-events`: Redis's class letters.
    NotifyFlags,
    /// `appendonly`: switching the log on writes a base of the dataset first.
    Appendonly,
    /// `bind` / `port`: the listeners are rebound (see `listen.rs`).
    Bind,
    Port,
    /// `tls-port`: the TLS listeners are rebound, TLS served from or to 0.
    TlsPort,
    /// A `tls-*` setting: checked by `check`, stored by `apply`, and the TLS
    /// configuration rebuilt (new connections use it).
    Tls {
        check: fn(&[u8]) -> Result<(), String>,
        apply: fn(&mut crate::tls::TlsSettings, &[u8]),
    },
    /// A value checked by `check`, then stored by `apply`.
    Text {
        check: fn(&[u8]) -> Result<(), String>,
        apply: fn(&ServerContext, &[u8]),
    },
    /// A Redis parameter hashd has no machinery for: only `value` is accepted.
    Only {
        check: Check,
        value: &'static str,
        why: &'static str,
    },
}

/// How an `Only` parameter's value is validated before it is compared with the one
/// accepted value (so that malformed input gets Redis's error).
#[derive(Clone, Copy)]
enum Check {
    Memory,
    YesNo,
}

struct Param {
    name: &'static str,
    /// Parameters that are one setting under two names share `canonical`.
    canonical: &'static str,
    get: fn(&ServerContext) -> String,
    set: Setter,
}

const fn param(name: &'static str, get: fn(&ServerContext) -> String, set: Setter) -> Param {
    Param {
        name,
        canonical: name,
        get,
        set,
    }
}

const fn alias(of: &Param, name: &'static str) -> Param {
    Param {
        name,
        canonical: of.name,
        get: of.get,
        set: of.set,
    }
}

const fn only(check: Check, value: &'static str, why: &'static str) -> Setter {
    Setter::Only { check, value, why }
}

fn live(v: &std::sync::atomic::AtomicU64) -> String {
    v.load(Ordering::Relaxed).to_string()
}

const INT_MAX: i64 = i32::MAX as i64;
const UINT_MAX: i64 = u32::MAX as i64;

const HASH_ENTRIES: Param = param(
    "hash-max-listpack-entries",
    |s| s.keyspace.limits().max_compact_entries.to_string(),
    Setter::Int {
        min: 0,
        max: i64::MAX,
        memory: false,
        apply: |s, v| {
            s.keyspace.set_limits(EncodingLimits {
                max_compact_entries: v as usize,
                ..s.keyspace.limits()
            })
        },
    },
);

const HASH_VALUE: Param = param(
    "hash-max-listpack-value",
    |s| s.keyspace.limits().max_compact_value.to_string(),
    Setter::Int {
        min: 0,
        max: i64::MAX,
        // A memory value in Redis: `1kb`, `2K`, "" (0).
        memory: true,
        apply: |s, v| {
            s.keyspace.set_limits(EncodingLimits {
                max_compact_value: v as usize,
                ..s.keyspace.limits()
            })
        },
    },
);

/// A yes/no replication setting.
macro_rules! repl_bool {
    ($name:expr, $field:ident) => {
        param(
            $name,
            |s| yes_no(s.replication.settings.$field.load(Ordering::Relaxed)),
            Setter::Text {
                check: check_yes_no,
                apply: |s, v| {
                    s.replication
                        .settings
                        .$field
                        .store(is(v, "yes"), Ordering::Relaxed)
                },
            },
        )
    };
}

/// An integer replication setting.
macro_rules! repl_int {
    ($name:expr, $field:ident, $min:expr, $max:expr, $memory:expr) => {
        param(
            $name,
            |s| live(&s.replication.settings.$field),
            Setter::Int {
                min: $min,
                max: $max,
                memory: $memory,
                apply: |s, v| {
                    s.replication
                        .settings
                        .$field
                        .store(v as u64, Ordering::Relaxed)
                },
            },
        )
    };
}

const REPLICA_READ_ONLY: Param = repl_bool!("replica-read-only", read_only);
const REPLICA_SERVE_STALE: Param = repl_bool!("replica-serve-stale-data", serve_stale_data);
const REPLICA_PRIORITY: Param = repl_int!("replica-priority", priority, 0, INT_MAX, false);
const PING_PERIOD: Param = repl_int!("repl-ping-replica-period", ping_period_s, 1, INT_MAX, false);
const MIN_REPLICAS: Param = repl_int!(
    "min-replicas-to-write",
    min_replicas_to_write,
    0,
    INT_MAX,
    false
);
const MIN_REPLICAS_LAG: Param = repl_int!(
    "min-replicas-max-lag",
    min_replicas_max_lag_s,
    0,
    INT_MAX,
    false
);

/// `masterauth` / `masteruser`: "" clears.
fn set_opt_text(slot: &parking_lot::RwLock<Option<String>>, v: &[u8]) {
    *slot.write() = (!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned());
}

fn output_buffer_limits(s: &ServerContext) -> String {
    let st = &s.replication.settings;
    format!(
        "normal 0 0 0 slave {} {} {} pubsub 33554432 8388608 60",
        st.obuf_hard.load(Ordering::Relaxed),
        st.obuf_soft.load(Ordering::Relaxed),
        st.obuf_soft_s.load(Ordering::Relaxed)
    )
}

/// Every parameter, in the order CONFIG GET reports pattern matches.
const PARAMS: &[Param] = &[
    param("bind", |s| s.listening.bind().join(" "), Setter::Bind),
    param(
        "port",
        |s| s.port.load(Ordering::Relaxed).to_string(),
        Setter::Port,
    ),
    param(
        "databases",
        |s| s.config.startup.databases.to_string(),
        Setter::Immutable,
    ),
    param(
        "requirepass",
        |s| s.config.requirepass.read().clone().unwrap_or_default(),
        Setter::Requirepass,
    ),
    param(
        "maxclients",
        |s| live(&s.config.maxclients),
        Setter::Int {
            min: 1,
            max: UINT_MAX,
            memory: false,
            apply: |s, v| s.config.maxclients.store(v as u64, Ordering::Relaxed),
        },
    ),
    param(
        "hz",
        |s| live(&s.config.hz),
        Setter::Int {
            min: 0,
            max: INT_MAX,
            memory: false,
            // Redis accepts any int and runs at 1..=500 of it.
            apply: |s, v| s.config.hz.store(v.clamp(1, 500) as u64, Ordering::Relaxed),
        },
    ),
    param(
        "proto-max-bulk-len",
        |s| live(&s.config.proto_max_bulk_len),
        Setter::Int {
            min: MIN_PROTO_MAX_BULK_LEN as i64,
            max: i64::MAX,
            memory: true,
            apply: |s, v| {
                s.config
                    .proto_max_bulk_len
                    .store(v as u64, Ordering::Relaxed)
            },
        },
    ),
    param(
        "client-query-buffer-limit",
        |s| live(&s.config.client_query_buffer_limit),
        Setter::Int {
            min: 1024 * 1024,
            max: i64::MAX,
            memory: true,
            apply: |s, v| {
                s.config
                    .client_query_buffer_limit
                    .store(v as u64, Ordering::Relaxed)
            },
        },
    ),
    HASH_ENTRIES,
    alias(&HASH_ENTRIES, "hash-max-ziplist-entries"),
    HASH_VALUE,
    alias(&HASH_VALUE, "hash-max-ziplist-value"),
    param(
        "sweeper-cpu-percent",
        |s| live(&s.config.sweeper_cpu_percent),
        Setter::Int {
            min: 1,
            max: 100,
            memory: false,
            apply: |s, v| {
                s.config
                    .sweeper_cpu_percent
                    .store(v as u64, Ordering::Relaxed)
            },
        },
    ),
    param(
        "shards",
        |s| s.keyspace.shards_per_db().to_string(),
        Setter::Immutable,
    ),
    param(
        "loglevel",
        |s| s.log_level.read().clone(),
        Setter::Text {
            check: |v| {
                let name = std::str::from_utf8(v)
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                // Redis's names (hashd also takes tracing's at start-up).
                if ["debug", "verbose", "notice", "warning", "nothing"].contains(&name.as_str()) {
                    Ok(())
                } else {
                    Err(
                        "argument(s) must be one of the following: debug, verbose, notice, \
                         warning, nothing"
                            .into(),
                    )
                }
            },
            apply: |s, v| s.set_log_level(&String::from_utf8_lossy(v)),
        },
    ),
    param(
        "dir",
        |s| s.config.dir.read().display().to_string(),
        Setter::Text {
            check: check_dir,
            apply: |s, v| {
                let dir = std::path::PathBuf::from(String::from_utf8_lossy(v).into_owned());
                *s.config.dir.write() = std::path::absolute(&dir).unwrap_or(dir);
            },
        },
    ),
    param(
        "save",
        |s| crate::config::format_save(&s.config.save_points.read()),
        Setter::Text {
            check: |v| {
                let text = std::str::from_utf8(v).map_err(|_| "Invalid save parameters")?;
                crate::config::parse_save(text).map(|_| ())
            },
            apply: |s, v| {
                let points =
                    crate::config::parse_save(&String::from_utf8_lossy(v)).unwrap_or_default();
                *s.config.save_points.write() = points;
            },
        },
    ),
    param(
        "dbfilename",
        |s| s.config.dbfilename.read().clone(),
        Setter::Text {
            check: |v| {
                if v.contains(&b'/') {
                    return Err("dbfilename can't be a path, just a filename".into());
                }
                std::str::from_utf8(v).map_err(|_| "argument must be valid UTF-8")?;
                Ok(())
            },
            apply: |s, v| *s.config.dbfilename.write() = String::from_utf8_lossy(v).into_owned(),
        },
    ),
    param(
        "rdbcompression",
        |s| yes_no(s.config.rdbcompression.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| {
                s.config
                    .rdbcompression
                    .store(is(v, "yes"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "rdbchecksum",
        |s| yes_no(s.config.rdbchecksum.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| s.config.rdbchecksum.store(is(v, "yes"), Ordering::Relaxed),
        },
    ),
    param(
        "appendonly",
        |s| yes_no(s.aof.enabled()),
        Setter::Appendonly,
    ),
    param(
        "appendfsync",
        |s| s.aof.policy().name().into(),
        Setter::Text {
            check: |v| {
                let ok = std::str::from_utf8(v)
                    .ok()
                    .and_then(crate::persist::appendonly::FsyncPolicy::parse);
                match ok {
                    Some(_) => Ok(()),
                    None => {
                        Err("argument(s) must be one of the following: always, everysec, no".into())
                    }
                }
            },
            apply: |s, v| {
                if let Some(p) = std::str::from_utf8(v)
                    .ok()
                    .and_then(crate::persist::appendonly::FsyncPolicy::parse)
                {
                    s.aof.set_policy(p);
                }
            },
        },
    ),
    param(
        "appenddirname",
        |s| s.config.startup.appenddirname.clone(),
        Setter::Immutable,
    ),
    param(
        "appendfilename",
        |s| s.config.startup.appendfilename.clone(),
        Setter::Immutable,
    ),
    param(
        "aof-use-rdb-preamble",
        |s| yes_no(s.config.aof_use_rdb_preamble.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| {
                s.config
                    .aof_use_rdb_preamble
                    .store(is(v, "yes"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "auto-aof-rewrite-percentage",
        |s| live(&s.config.auto_aof_rewrite_percentage),
        Setter::Int {
            min: 0,
            max: INT_MAX,
            memory: false,
            apply: |s, v| {
                s.config
                    .auto_aof_rewrite_percentage
                    .store(v as u64, Ordering::Relaxed)
            },
        },
    ),
    param(
        "auto-aof-rewrite-min-size",
        |s| live(&s.config.auto_aof_rewrite_min_size),
        Setter::Int {
            min: 0,
            max: i64::MAX,
            memory: true,
            apply: |s, v| {
                s.config
                    .auto_aof_rewrite_min_size
                    .store(v as u64, Ordering::Relaxed)
            },
        },
    ),
    param(
        "aof-load-truncated",
        |s| yes_no(s.config.startup.aof_load_truncated),
        Setter::Immutable,
    ),
    param(
        "maxmemory",
        |s| live(&s.maxmemory.limit),
        Setter::Int {
            min: 0,
            max: i64::MAX,
            memory: true,
            apply: |s, v| {
                let used = crate::alloc::allocated() as u64;
                if v > 0 && (v as u64) < used {
                    tracing::warn!(
                        "WARNING: the new maxmemory value set via CONFIG SET ({v}) is smaller \
                         than the current memory usage ({used}). This will result in key \
                         eviction and/or the inability to accept new write commands depending \
                         on the maxmemory-policy."
                    );
                }
                s.maxmemory.set_limit(v as u64)
            },
        },
    ),
    param(
        "maxmemory-policy",
        |s| s.maxmemory.policy().name().into(),
        Setter::Text {
            check: |v| {
                let name = std::str::from_utf8(v).unwrap_or_default();
                match EvictionPolicy::parse(name) {
                    Some(_) => Ok(()),
                    None => Err(format!(
                        "argument(s) must be one of the following: {}",
                        EvictionPolicy::ALL.map(EvictionPolicy::name).join(", ")
                    )),
                }
            },
            apply: |s, v| {
                let name = std::str::from_utf8(v).unwrap_or_default();
                if let Some(p) = EvictionPolicy::parse(name) {
                    s.maxmemory.set_policy(p, &s.keyspace);
                }
            },
        },
    ),
    param(
        "maxmemory-samples",
        |s| live(&s.maxmemory.samples),
        Setter::Int {
            min: 1,
            max: 64,
            memory: false,
            apply: |s, v| s.maxmemory.samples.store(v as u64, Ordering::Relaxed),
        },
    ),
    param(
        "maxmemory-eviction-tenacity",
        |s| live(&s.maxmemory.tenacity),
        Setter::Int {
            min: 0,
            max: 100,
            memory: false,
            apply: |s, v| s.maxmemory.tenacity.store(v as u64, Ordering::Relaxed),
        },
    ),
    param(
        "maxmemory-clients",
        |_| "0".into(),
        only(
            Check::Memory,
            "0",
            "hashd does not evict clients; only 0 is supported",
        ),
    ),
    param(
        "lfu-log-factor",
        |s| {
            s.keyspace
                .access
                .log_factor
                .load(Ordering::Relaxed)
                .to_string()
        },
        Setter::Int {
            min: 0,
            max: INT_MAX,
            memory: false,
            apply: |s, v| {
                s.keyspace
                    .access
                    .log_factor
                    .store(v as u32, Ordering::Relaxed)
            },
        },
    ),
    param(
        "lfu-decay-time",
        |s| {
            s.keyspace
                .access
                .decay_minutes
                .load(Ordering::Relaxed)
                .to_string()
        },
        Setter::Int {
            min: 0,
            max: INT_MAX,
            memory: false,
            apply: |s, v| {
                s.keyspace
                    .access
                    .decay_minutes
                    .store(v as u32, Ordering::Relaxed)
            },
        },
    ),
    param(
        "aclfile",
        |s| {
            s.acl
                .file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        },
        Setter::Immutable,
    ),
    param(
        "acllog-max-len",
        |s| s.acl.log_max_len.load(Ordering::Relaxed).to_string(),
        Setter::Int {
            min: 0,
            max: i64::MAX,
            memory: false,
            apply: |s, v| {
                s.acl.log_max_len.store(v as usize, Ordering::Relaxed);
                s.acl.log.lock().trim(v as usize);
            },
        },
    ),
    param(
        "acl-pubsub-default",
        |s| {
            if s.acl.pubsub_default() {
                "allchannels".into()
            } else {
                "resetchannels".into()
            }
        },
        Setter::Text {
            check: |v| {
                if is(v, "allchannels") || is(v, "resetchannels") {
                    Ok(())
                } else {
                    Err(
                        "argument(s) must be one of the following: allchannels, resetchannels"
                            .into(),
                    )
                }
            },
            apply: |s, v| {
                s.acl
                    .all_channels_default
                    .store(is(v, "allchannels"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "tracking-table-max-keys",
        |s| live(&s.tracker.max_keys),
        Setter::Int {
            min: 0,
            max: i64::MAX,
            memory: false,
            apply: |s, v| s.tracker.max_keys.store(v as u64, Ordering::Relaxed),
        },
    ),
    param(
        "lazyfree-lazy-eviction",
        |s| yes_no(s.maxmemory.lazy_eviction.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| {
                s.maxmemory
                    .lazy_eviction
                    .store(is(v, "yes"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "replica-ignore-maxmemory",
        |_| "yes".into(),
        only(
            Check::YesNo,
            "yes",
            "a replica never evicts, its master's evictions arrive as DEL; only 'yes' is \
             supported",
        ),
    ),
    param(
        "notify-keyspace-events",
        |s| crate::notify::format_flags(s.notifier.flags()),
        Setter::NotifyFlags,
    ),
    param(
        "timeout",
        |s| live(&s.config.timeout),
        Setter::Int {
            min: 0,
            max: INT_MAX,
            memory: false,
            apply: |s, v| s.config.timeout.store(v as u64, Ordering::Relaxed),
        },
    ),
    param(
        "tcp-keepalive",
        |s| live(&s.config.tcp_keepalive),
        Setter::Int {
            min: 0,
            max: INT_MAX,
            memory: false,
            apply: |s, v| s.config.tcp_keepalive.store(v as u64, Ordering::Relaxed),
        },
    ),
    param(
        "protected-mode",
        |s| yes_no(s.config.protected_mode.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| {
                s.config
                    .protected_mode
                    .store(is(v, "yes"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "latency-monitor-threshold",
        |s| live(&s.latency.threshold_ms),
        Setter::Int {
            min: 0,
            max: i64::MAX,
            memory: false,
            apply: |s, v| s.latency.threshold_ms.store(v as u64, Ordering::Relaxed),
        },
    ),
    param(
        "latency-tracking",
        |s| yes_no(s.commands.latency_tracking.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| {
                s.commands
                    .latency_tracking
                    .store(is(v, "yes"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "latency-tracking-info-percentiles",
        |s| {
            let p = s.commands.info_percentiles();
            let words: Vec<String> = p.into_iter().map(format_percentile).collect();
            words.join(" ")
        },
        Setter::Text {
            check: |v| {
                parse_info_percentiles(&String::from_utf8_lossy(v))
                    .map(|_| ())
                    .map_err(Into::into)
            },
            apply: |s, v| {
                if let Ok(p) = parse_info_percentiles(&String::from_utf8_lossy(v)) {
                    s.commands.set_info_percentiles(p);
                }
            },
        },
    ),
    param(
        "lazyfree-lazy-user-del",
        |s| yes_no(s.config.lazyfree_lazy_user_del.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| {
                s.config
                    .lazyfree_lazy_user_del
                    .store(is(v, "yes"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "lazyfree-lazy-user-flush",
        |s| yes_no(s.config.lazyfree_lazy_user_flush.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| {
                s.config
                    .lazyfree_lazy_user_flush
                    .store(is(v, "yes"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "stop-writes-on-bgsave-error",
        |s| yes_no(s.config.stop_writes_on_bgsave_error.load(Ordering::Relaxed)),
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| {
                s.config
                    .stop_writes_on_bgsave_error
                    .store(is(v, "yes"), Ordering::Relaxed)
            },
        },
    ),
    param(
        "pidfile",
        |s| s.config.startup.pidfile.clone(),
        Setter::Immutable,
    ),
    param(
        "logfile",
        |s| s.config.startup.logfile.clone(),
        Setter::Immutable,
    ),
    param(
        "slowlog-log-slower-than",
        |s| {
            s.commands
                .slower_than_us
                .load(Ordering::Relaxed)
                .to_string()
        },
        Setter::Int {
            min: -1,
            max: i64::MAX,
            memory: false,
            apply: |s, v| s.commands.slower_than_us.store(v, Ordering::Relaxed),
        },
    ),
    param(
        "slowlog-max-len",
        |s| {
            s.commands
                .slowlog_max_len
                .load(Ordering::Relaxed)
                .to_string()
        },
        Setter::Int {
            min: 0,
            max: i64::MAX,
            memory: false,
            apply: |s, v| s.commands.set_slowlog_max_len(v as u64),
        },
    ),
    REPLICA_READ_ONLY,
    alias(&REPLICA_READ_ONLY, "slave-read-only"),
    REPLICA_SERVE_STALE,
    alias(&REPLICA_SERVE_STALE, "slave-serve-stale-data"),
    REPLICA_PRIORITY,
    alias(&REPLICA_PRIORITY, "slave-priority"),
    param(
        "replicaof",
        |s| {
            s.replication
                .master_addr()
                .map(|(h, p)| format!("{h} {p}"))
                .unwrap_or_default()
        },
        Setter::Immutable,
    ),
    param(
        "masterauth",
        |s| {
            s.replication
                .settings
                .masterauth
                .read()
                .clone()
                .unwrap_or_default()
        },
        Setter::Text {
            check: |_| Ok(()),
            apply: |s, v| set_opt_text(&s.replication.settings.masterauth, v),
        },
    ),
    param(
        "masteruser",
        |s| {
            s.replication
                .settings
                .masteruser
                .read()
                .clone()
                .unwrap_or_default()
        },
        Setter::Text {
            check: |_| Ok(()),
            apply: |s, v| set_opt_text(&s.replication.settings.masteruser, v),
        },
    ),
    param(
        "repl-backlog-size",
        |s| live(&s.replication.settings.backlog_size),
        Setter::Int {
            min: 16 * 1024,
            max: i64::MAX,
            memory: true,
            apply: |s, v| s.replication.resize_backlog(v as u64),
        },
    ),
    repl_bool!("repl-diskless-sync", diskless_sync),
    repl_int!(
        "repl-diskless-sync-delay",
        diskless_sync_delay_s,
        0,
        INT_MAX,
        false
    ),
    PING_PERIOD,
    alias(&PING_PERIOD, "repl-ping-slave-period"),
    repl_int!("repl-timeout", timeout_s, 1, INT_MAX, false),
    MIN_REPLICAS,
    alias(&MIN_REPLICAS, "min-slaves-to-write"),
    MIN_REPLICAS_LAG,
    alias(&MIN_REPLICAS_LAG, "min-slaves-max-lag"),
    param(
        "client-output-buffer-limit",
        output_buffer_limits,
        Setter::Text {
            check: |v| {
                let text = std::str::from_utf8(v).map_err(|_| "Invalid argument")?;
                crate::config::parse_output_buffer_limits(text).map(|_| ())
            },
            apply: |s, v| {
                let text = String::from_utf8_lossy(v);
                // Only the classes given change; the replica class is the one enforced.
                if text
                    .split_whitespace()
                    .any(|w| is(w.as_bytes(), "replica") || is(w.as_bytes(), "slave"))
                {
                    if let Ok((h, soft, secs)) = crate::config::parse_output_buffer_limits(&text) {
                        let st = &s.replication.settings;
                        st.obuf_hard.store(h, Ordering::Relaxed);
                        st.obuf_soft.store(soft, Ordering::Relaxed);
                        st.obuf_soft_s.store(secs, Ordering::Relaxed);
                    }
                }
            },
        },
    ),
    param("daemonize", |_| "no".into(), Setter::Immutable),
    param(
        "cluster-enabled",
        |s| yes_no(s.cluster.enabled),
        Setter::Immutable,
    ),
    param(
        "cluster-config-file",
        |s| s.config.startup.cluster_config_file.clone(),
        Setter::Immutable,
    ),
    param(
        "cluster-require-full-coverage",
        |s| {
            yes_no(
                s.cluster
                    .require_full_coverage
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
        },
        Setter::Text {
            check: check_yes_no,
            apply: |s, v| s.cluster.set_require_full_coverage(is(v, "yes")),
        },
    ),
    param(
        "enable-debug-command",
        |s| s.config.startup.enable_debug_command.to_ascii_lowercase(),
        Setter::Immutable,
    ),
];

/// CONFIG SET appendonly: on writes a base of the dataset (under the every-shard lock CONFIG
/// SET holds) and starts logging; off stops logging after an fsync.
fn set_appendonly(ctx: &mut Ctx<'_, '_>, on: bool) -> Result<(), CmdError> {
    let server = ctx.server;
    if on == server.aof.enabled() {
        return Ok(());
    }
    if !on {
        server.aof.stop();
        return Ok(());
    }
    let dir = crate::persist::appendonly::aof_dir(server);
    let manifest = std::fs::read(dir.join(crate::persist::aof::manifest_file_name(
        &server.config.startup.appendfilename,
    )))
    .ok()
    .and_then(|t| crate::persist::aof::Manifest::parse(&t).ok());
    crate::persist::appendonly::rewrite_locked(server, ctx.locked, manifest).map_err(|e| {
        tracing::warn!(error = %e, "cannot switch the append-only file on");
        CmdError::other("ERR Failed to set appendonly (check server logs)")
    })?;
    Ok(())
}

fn yes_no(v: bool) -> String {
    if v { "yes" } else { "no" }.into()
}

fn check_yes_no(v: &[u8]) -> Result<(), String> {
    if is(v, "yes") || is(v, "no") {
        Ok(())
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

/// CONFIG SET dir: the directory must exist (Redis chdir()s into it and reports errno).
fn check_dir(v: &[u8]) -> Result<(), String> {
    let path = std::path::PathBuf::from(String::from_utf8_lossy(v).into_owned());
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err("Not a directory".into()),
        Err(_) => Err("No such file or directory".into()),
    }
}

/// Every parameter: the general ones, then TLS's.
fn all_params() -> impl Iterator<Item = &'static Param> {
    PARAMS.iter().chain(TLS_PARAMS.iter())
}

fn lookup(name: &[u8]) -> Option<&'static Param> {
    all_params().find(|p| p.name.as_bytes().eq_ignore_ascii_case(name))
}

/// CONFIG GET parameter [parameter ...]
fn get(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    // (name as it is reported, parameter)
    let mut matches: Vec<(Vec<u8>, &Param)> = Vec::new();
    let seen =
        |m: &[(Vec<u8>, &Param)], name: &[u8]| m.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    for pattern in args.from(2) {
        if !pattern.iter().any(|b| matches!(b, b'[' | b'*' | b'?')) {
            // An exact name comes back as typed.
            if !seen(&matches, pattern) {
                if let Some(p) = lookup(pattern) {
                    matches.push((pattern.to_vec(), p));
                }
            }
            continue;
        }
        // Aliases (`hash-max-ziplist-entries`) match patterns too, as in Redis.
        for p in all_params() {
            if !seen(&matches, p.name.as_bytes()) && glob::matches(pattern, p.name.as_bytes(), true)
            {
                matches.push((p.name.as_bytes().to_vec(), p));
            }
        }
    }
    reply.map(matches.len());
    for (name, p) in matches {
        reply.bulk(&name);
        reply.bulk((p.get)(ctx.server).as_bytes());
    }
    Ok(())
}

/// Redis's `memtoull`: digits with an optional unit (`b`, `k`, `kb`, `m`, `mb`, `g`, `gb`,
/// any case). The result is reinterpreted as signed by the caller, as Redis does.
fn parse_memory(v: &[u8]) -> Option<u64> {
    if v.first() == Some(&b'-') {
        return None;
    }
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    let unit = std::str::from_utf8(&v[digits..]).ok()?.to_ascii_lowercase();
    let mul = crate::config::memory_unit(&unit)?;
    // strtoull: no digits is 0, and an overflow saturates.
    let n = std::str::from_utf8(&v[..digits])
        .ok()?
        .parse::<u64>()
        .unwrap_or(if digits == 0 { 0 } else { u64::MAX });
    n.checked_mul(mul)
}

/// Parses and range-checks an integer parameter; the error is Redis's reason text.
fn parse_int(v: &[u8], min: i64, max: i64, memory: bool) -> Result<i64, String> {
    let n = if memory {
        parse_memory(v)
            .map(|n| n as i64)
            .ok_or_else(|| "argument must be a memory value".to_string())?
    } else {
        parse_i64(v).ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?
    };
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

/// A validated change, applied once every pair has validated.
enum Change {
    Requirepass(Option<String>),
    Int(fn(&ServerContext, i64), i64),
    NotifyFlags(u32),
    Appendonly(bool),
    Text(fn(&ServerContext, &[u8]), Vec<u8>),
    Bind(Vec<String>),
    Port(u16),
    TlsPort(u16),
    Tls(fn(&mut crate::tls::TlsSettings, &[u8]), Vec<u8>),
    Nothing,
}

fn validate(set: Setter, value: &[u8]) -> Result<Change, String> {
    match set {
        Setter::Immutable => Err("can't set immutable config".into()),
        Setter::Requirepass => {
            let pw = std::str::from_utf8(value)
                .map_err(|_| "argument must be valid UTF-8".to_string())?;
            Ok(Change::Requirepass(
                (!pw.is_empty()).then(|| pw.to_string()),
            ))
        }
        Setter::Int {
            min,
            max,
            memory,
            apply,
        } => Ok(Change::Int(apply, parse_int(value, min, max, memory)?)),
        Setter::Text { check, apply } => {
            check(value)?;
            Ok(Change::Text(apply, value.to_vec()))
        }
        Setter::Appendonly => {
            check_yes_no(value)?;
            Ok(Change::Appendonly(is(value, "yes")))
        }
        Setter::Tls { check, apply } => {
            check(value)?;
            Ok(Change::Tls(apply, value.to_vec()))
        }
        Setter::Port => match parse_int(value, 0, 65535, false)? {
            // Redis would close every TCP listener (serving only a Unix socket).
            0 => Err(
                "hashd serves clients over TCP only; port 0 would close every \
                      listener"
                    .into(),
            ),
            p => Ok(Change::Port(p as u16)),
        },
        Setter::TlsPort => Ok(Change::TlsPort(parse_int(value, 0, 65535, false)? as u16)),
        Setter::Bind => {
            let addrs: Vec<String> = String::from_utf8_lossy(value)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if addrs.is_empty() {
                // Redis would close every listener.
                return Err("hashd needs at least one address to listen on".into());
            }
            Ok(Change::Bind(addrs))
        }
        Setter::NotifyFlags => crate::notify::parse_flags(value)
            .map(Change::NotifyFlags)
            .map_err(|e| e.to_string()),
        Setter::Only {
            check,
            value: accepted,
            why,
        } => {
            let same = match check {
                Check::Memory => parse_int(value, 0, i64::MAX, true)?.to_string() == accepted,
                Check::YesNo => {
                    check_yes_no(value)?;
                    is(value, accepted)
                }
            };
            if same {
                Ok(Change::Nothing)
            } else {
                Err(why.into())
            }
        }
    }
}

fn set_failed(name: &[u8], reason: &str) -> CmdError {
    CmdError::other(format!(
        "ERR CONFIG SET failed (possibly related to argument '{}') - {reason}",
        String::from_utf8_lossy(name)
    ))
}

/// CONFIG SET parameter value [parameter value ...]
fn set(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    // Redis's order of checks: an unknown name anywhere wins; otherwise the first
    // immutable or repeated parameter; then the values, in order.
    let mut unknown: Option<&[u8]> = None;
    let mut failed: Option<(&[u8], &str)> = None;
    let mut chosen: Vec<(&[u8], &Param, &[u8])> = Vec::new();
    let mut i = 2;
    while i + 1 < args.len() {
        let (name, value) = (args.get(i), args.get(i + 1));
        i += 2;
        let Some(p) = lookup(name) else {
            unknown.get_or_insert(name);
            continue;
        };
        if unknown.is_some() || failed.is_some() {
            continue;
        }
        if matches!(p.set, Setter::Immutable) {
            failed = Some((name, "can't set immutable config"));
        } else if chosen.iter().any(|(_, q, _)| q.canonical == p.canonical) {
            failed = Some((name, "duplicate parameter"));
        } else {
            chosen.push((name, p, value));
        }
    }
    if let Some(name) = unknown {
        return Err(super::keys::error_quoting(
            "ERR Unknown option or number of arguments for CONFIG SET - '",
            name,
            "'",
        ));
    }
    if let Some((name, reason)) = failed {
        return Err(set_failed(name, reason));
    }
    let mut changes = Vec::with_capacity(chosen.len());
    for (name, p, value) in chosen {
        changes.push(validate(p.set, value).map_err(|reason| set_failed(name, &reason))?);
    }
    // The listeners first: they are the one change that can fail once valid, and then
    // nothing else is applied.
    let bind = changes.iter().find_map(|c| match c {
        Change::Bind(b) => Some(b.clone()),
        _ => None,
    });
    let port = changes.iter().find_map(|c| match c {
        Change::Port(p) => Some(*p),
        _ => None,
    });
    let tls_port = changes.iter().find_map(|c| match c {
        Change::TlsPort(p) => Some(*p),
        _ => None,
    });
    let server = ctx.server;
    // The TLS settings are checked before any listener moves: a new tls-port needs a
    // valid server configuration, tls-replication yes a client one.
    let tls: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Tls(apply, v) => Some((*apply, v.clone())),
            _ => None,
        })
        .collect();
    let prepared = if !tls.is_empty() || tls_port.is_some() {
        let r = server.tls.prepare(
            |t| {
                for (apply, v) in &tls {
                    apply(t, v);
                }
            },
            tls_port.map(|p| p != 0),
        );
        match r {
            Ok(p) => Some(p),
            Err(why) => {
                tracing::warn!(error = %why, "CONFIG SET: cannot update the TLS configuration");
                let name = chosen_tls_name(args);
                return Err(set_failed(
                    name,
                    "Unable to update TLS configuration. Check server logs.",
                ));
            }
        }
    } else {
        None
    };
    // The listeners next: they are the one change that can fail once valid, and then
    // nothing else is applied.
    if bind.is_some() || port.is_some() {
        if let Err(e) = server.listening.rebind(&server.port, bind.clone(), port) {
            tracing::warn!(address = %e.addr, error = %e.source, "CONFIG SET: cannot listen");
            return Err(if bind.is_some() {
                set_failed(b"bind", "Failed to bind to specified addresses.")
            } else {
                set_failed(b"port", "Unable to listen on this port. Check server logs.")
            });
        }
    }
    // tls-port, or the TLS listeners following a new bind (as Redis's changeBindAddr).
    let current_tls_port = server.listening.tls_port();
    let tls_target =
        tls_port.or((bind.is_some() && current_tls_port != 0).then_some(current_tls_port));
    if let Some(p) = tls_target {
        if let Err(e) = server.listening.rebind_tls(bind.as_deref(), p) {
            tracing::warn!(address = %e.addr, error = %e.source, "CONFIG SET: cannot listen (TLS)");
            return Err(if tls_port.is_some() {
                set_failed(
                    b"tls-port",
                    "Unable to listen on this port. Check server logs.",
                )
            } else {
                set_failed(b"bind", "Failed to bind to specified addresses.")
            });
        }
    }
    if let Some(p) = prepared {
        server.tls.commit(p);
    }
    for change in changes {
        match change {
            Change::Requirepass(pw) => {
                // The default user's password, as Redis's: `resetpass >pw` or `nopass`.
                ctx.server.acl.set_default_password(pw.as_deref());
                *ctx.server.config.requirepass.write() = pw;
            }
            Change::Int(apply, v) => apply(ctx.server, v),
            Change::NotifyFlags(f) => ctx.server.notifier.set_flags(f),
            Change::Appendonly(on) => set_appendonly(ctx, on)?,
            Change::Text(apply, v) => apply(ctx.server, &v),
            Change::Bind(_)
            | Change::Port(_)
            | Change::TlsPort(_)
            | Change::Tls(..)
            | Change::Nothing => {}
        }
    }
    reply.ok();
    Ok(())
}

/// The first `tls-*` parameter a CONFIG SET names (for its error).
fn chosen_tls_name<'a>(args: Args<'a>) -> &'a [u8] {
    let mut i = 2;
    while i + 1 < args.len() {
        let name = args.get(i);
        if name.len() > 4 && name[..4].eq_ignore_ascii_case(b"tls-") {
            return name;
        }
        i += 2;
    }
    b"tls"
}

/// A `tls-*` text parameter (a path or a list).
macro_rules! tls_text {
    ($name:expr, $field:ident) => {
        param(
            $name,
            |s| s.tls.settings().$field,
            Setter::Tls {
                check: |_| Ok(()),
                apply: |t, v| t.$field = String::from_utf8_lossy(v).into_owned(),
            },
        )
    };
}

/// A `tls-*` yes/no parameter.
macro_rules! tls_bool {
    ($name:expr, $field:ident) => {
        param(
            $name,
            |s| yes_no(s.tls.settings().$field),
            Setter::Tls {
                check: check_yes_no,
                apply: |t, v| t.$field = is(v, "yes"),
            },
        )
    };
}

const TLS_PARAMS: &[Param] = &[
    param(
        "tls-port",
        |s| s.listening.tls_port().to_string(),
        Setter::TlsPort,
    ),
    tls_text!("tls-cert-file", cert_file),
    tls_text!("tls-key-file", key_file),
    tls_text!("tls-key-file-pass", key_file_pass),
    tls_text!("tls-ca-cert-file", ca_cert_file),
    tls_text!("tls-ca-cert-dir", ca_cert_dir),
    param(
        "tls-auth-clients",
        |s| s.tls.settings().auth_clients,
        Setter::Tls {
            check: |v| {
                if is(v, "yes") || is(v, "no") || is(v, "optional") {
                    Ok(())
                } else {
                    Err("argument(s) must be one of the following: no, yes, optional".into())
                }
            },
            apply: |t, v| t.auth_clients = String::from_utf8_lossy(v).to_ascii_lowercase(),
        },
    ),
    tls_text!("tls-protocols", protocols),
    tls_text!("tls-ciphersuites", ciphersuites),
    tls_text!("tls-ciphers", ciphers),
    tls_bool!("tls-prefer-server-ciphers", prefer_server_ciphers),
    tls_bool!("tls-session-caching", session_caching),
    tls_bool!("tls-replication", replication),
    tls_text!("tls-client-cert-file", client_cert_file),
    tls_text!("tls-client-key-file", client_key_file),
    tls_text!("tls-client-key-file-pass", client_key_file_pass),
];

/// CONFIG RESETSTAT
fn resetstat(
    ctx: &mut Ctx<'_, '_>,
    _args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    super::info::reset_stats(ctx.server);
    reply.ok();
    Ok(())
}

const HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
];

/// CONFIG HELP
fn help(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    super::client::help_reply(reply, args.get(0), HELP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::TestEnv;

    fn pairs(items: &[(&str, &str)]) -> String {
        let mut s = format!("*{}\r\n", items.len() * 2);
        for (k, v) in items {
            s.push_str(&format!("${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()));
        }
        s
    }

    #[test]
    fn get_exact_names_as_typed() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("CONFIG GET databases"),
            pairs(&[("databases", "16")])
        );
        assert_eq!(
            env.run("config get DATABASES"),
            pairs(&[("DATABASES", "16")])
        );
        assert_eq!(env.run("CONFIG GET nosuch"), "*0\r\n");
        assert_eq!(
            env.run("CONFIG GET save appendonly"),
            pairs(&[("save", ""), ("appendonly", "no")])
        );
        assert_eq!(
            env.run("CONFIG GET timeout slave-read-only replica-read-only"),
            pairs(&[
                ("timeout", "0"),
                ("slave-read-only", "yes"),
                ("replica-read-only", "yes")
            ])
        );
        assert_eq!(
            env.run("CONFIG GET maxmemory notify-keyspace-events hz"),
            pairs(&[
                ("maxmemory", "0"),
                ("notify-keyspace-events", ""),
                ("hz", "10")
            ])
        );
        assert_eq!(
            env.run("CONFIG GET proto-max-bulk-len client-query-buffer-limit"),
            pairs(&[
                ("proto-max-bulk-len", "536870912"),
                ("client-query-buffer-limit", "1073741824")
            ])
        );
        assert_eq!(
            env.run("CONFIG GET hash-max-listpack-entries hash-max-ziplist-value"),
            pairs(&[
                ("hash-max-listpack-entries", "512"),
                ("hash-max-ziplist-value", "64")
            ])
        );
        assert_eq!(
            env.run("CONFIG GET port bind requirepass maxclients"),
            pairs(&[
                ("port", "6379"),
                ("bind", "127.0.0.1"),
                ("requirepass", ""),
                ("maxclients", "10000")
            ])
        );
        // A name asked for twice is reported once.
        assert_eq!(env.run("CONFIG GET hz HZ"), pairs(&[("hz", "10")]));
    }

    #[test]
    fn get_resp3_map() {
        let mut env = TestEnv::new();
        env.resp3();
        assert_eq!(
            env.run("CONFIG GET databases"),
            "%1\r\n$9\r\ndatabases\r\n$2\r\n16\r\n"
        );
        assert_eq!(env.run("CONFIG GET nosuch"), "%0\r\n");
    }

    #[test]
    fn get_patterns_are_case_insensitive_and_include_aliases() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("CONFIG GET HASH-MAX-*"),
            pairs(&[
                ("hash-max-listpack-entries", "512"),
                ("hash-max-ziplist-entries", "512"),
                ("hash-max-listpack-value", "64"),
                ("hash-max-ziplist-value", "64")
            ])
        );
        assert_eq!(
            env.run("CONFIG GET *read-only"),
            pairs(&[("replica-read-only", "yes"), ("slave-read-only", "yes")])
        );
        assert_eq!(env.run("CONFIG GET h?"), pairs(&[("hz", "10")]));
        // Exact names and patterns together, without repeats.
        assert_eq!(env.run("CONFIG GET hz h[z]"), pairs(&[("hz", "10")]));
        let all = env.run("CONFIG GET *");
        let n: usize = all[1..all.find("\r\n").unwrap()].parse().unwrap();
        assert_eq!(n, 2 * (PARAMS.len() + TLS_PARAMS.len()));
        assert_eq!(
            env.run("CONFIG GET"),
            "-ERR wrong number of arguments for 'config|get' command\r\n"
        );
    }

    #[test]
    fn latency_tracking_parameters_as_redis() {
        let mut env = TestEnv::new();
        let get = "CONFIG GET latency-tracking*";
        let defaults = pairs(&[
            ("latency-tracking", "yes"),
            ("latency-tracking-info-percentiles", "50 99 99.9"),
        ]);
        assert_eq!(env.run(get), defaults);
        assert_eq!(
            env.run("CONFIG SET latency-tracking-info-percentiles \"12.3456789 0x10 1e1\""),
            "+OK\r\n"
        );
        assert_eq!(
            env.run("CONFIG GET latency-tracking-info-percentiles"),
            pairs(&[("latency-tracking-info-percentiles", "12.345679 16 10")])
        );
        assert_eq!(
            env.run("CONFIG SET latency-tracking-info-percentiles \"50 101\""),
            "-ERR CONFIG SET failed (possibly related to argument \
             'latency-tracking-info-percentiles') - latency-tracking-info-percentiles \
             parameters should sit between [0.0,100.0]\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET latency-tracking maybe"),
            "-ERR CONFIG SET failed (possibly related to argument 'latency-tracking') - \
             argument must be 'yes' or 'no'\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET latency-tracking-info-percentiles \"\""),
            "+OK\r\n"
        );
        assert_eq!(env.run("CONFIG SET latency-tracking no"), "+OK\r\n");
        assert_eq!(
            env.run(get),
            pairs(&[
                ("latency-tracking", "no"),
                ("latency-tracking-info-percentiles", ""),
            ])
        );
    }

    #[test]
    fn set_live_parameters() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("CONFIG SET hz 100"), "+OK\r\n");
        assert_eq!(env.run("CONFIG GET hz"), pairs(&[("hz", "100")]));
        assert_eq!(env.run("CONFIG SET hz 1000"), "+OK\r\n");
        assert_eq!(env.run("CONFIG GET hz"), pairs(&[("hz", "500")]));
        assert_eq!(env.run("CONFIG SET hz 0"), "+OK\r\n");
        assert_eq!(env.run("CONFIG GET hz"), pairs(&[("hz", "1")]));
        assert_eq!(
            env.run("CONFIG SET maxclients 5 sweeper-cpu-percent 50"),
            "+OK\r\n"
        );
        assert_eq!(env.server.config.maxclients.load(Ordering::Relaxed), 5);
        assert_eq!(
            env.server
                .config
                .sweeper_cpu_percent
                .load(Ordering::Relaxed),
            50
        );
        assert_eq!(env.run("CONFIG SET proto-max-bulk-len 2mb"), "+OK\r\n");
        assert_eq!(
            env.run("CONFIG GET proto-max-bulk-len"),
            pairs(&[("proto-max-bulk-len", "2097152")])
        );
        assert_eq!(
            env.run("CONFIG SET client-query-buffer-limit 1GB"),
            "+OK\r\n"
        );
        assert_eq!(
            env.server
                .config
                .client_query_buffer_limit
                .load(Ordering::Relaxed),
            1 << 30
        );
    }

    #[test]
    fn set_hash_limits_changes_the_keyspace() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("CONFIG SET hash-max-listpack-entries 0"), "+OK\r\n");
        assert_eq!(env.run("config set HASH-MAX-ZIPLIST-VALUE 8"), "+OK\r\n");
        assert_eq!(
            env.server.keyspace.limits(),
            EncodingLimits {
                max_compact_entries: 0,
                max_compact_value: 8
            }
        );
        assert_eq!(
            env.run("CONFIG GET hash-max-ziplist-entries"),
            pairs(&[("hash-max-ziplist-entries", "0")])
        );
    }

    #[test]
    fn set_requirepass() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("CONFIG SET requirepass s3cret"), "+OK\r\n");
        // It is the default user's password now.
        assert!(!env.server.acl.default_open());
        assert!(env.server.acl.default_user().accepts(b"s3cret"));
        assert!(!env.server.acl.default_user().accepts(b"other"));
        // The connection that set it stays authenticated.
        assert_eq!(env.run("PING"), "+PONG\r\n");
        assert_eq!(
            env.run("CONFIG GET requirepass"),
            pairs(&[("requirepass", "s3cret")])
        );
        assert_eq!(env.run("CONFIG SET requirepass \"\""), "+OK\r\n");
        assert!(env.server.acl.default_open());
    }

    #[test]
    fn set_values_matching_hashd_are_accepted() {
        let mut env = TestEnv::new();
        for ok in [
            "CONFIG SET save \"\"",
            "CONFIG SET appendonly NO",
            "CONFIG SET maxmemory 0mb",
            "CONFIG SET maxmemory-policy noeviction",
            "CONFIG SET notify-keyspace-events \"\"",
            "CONFIG SET timeout 0",
            "CONFIG SET slave-read-only yes",
        ] {
            assert_eq!(env.run(ok), "+OK\r\n", "{ok}");
        }
    }

    #[test]
    fn set_values_hashd_cannot_honour_fail() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("CONFIG SET appendonly maybe"),
            "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument \
             must be 'yes' or 'no'\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET save \"900\""),
            "-ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save \
             parameters\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET maxmemory-clients 100mb"),
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - hashd \
             does not evict clients; only 0 is supported\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET replica-ignore-maxmemory maybe"),
            "-ERR CONFIG SET failed (possibly related to argument 'replica-ignore-maxmemory') - \
             argument must be 'yes' or 'no'\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET maxmemory lots"),
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument \
             must be a memory value\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET maxmemory-policy sometimes"),
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - \
             argument(s) must be one of the following: volatile-lru, volatile-lfu, \
             volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, \
             noeviction\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET notify-keyspace-events KEQ"),
            "-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - \
             Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET notify-keyspace-events Km"),
            "-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - \
             hashd does not publish key-miss ('m') events\r\n"
        );
    }

    #[test]
    fn notify_keyspace_events_reads_back_canonical() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("CONFIG SET notify-keyspace-events KA"), "+OK\r\n");
        assert_eq!(
            env.run("CONFIG GET notify-keyspace-events"),
            "*2\r\n$22\r\nnotify-keyspace-events\r\n$2\r\nAK\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET notify-keyspace-events VhEnKTIS"),
            "+OK\r\n"
        );
        assert_eq!(
            env.run("CONFIG GET notify-keyspace-events"),
            "*2\r\n$22\r\nnotify-keyspace-events\r\n$8\r\nhnKESTIV\r\n"
        );
    }

    #[test]
    fn set_errors_in_redis_order() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("CONFIG SET hz"),
            "-ERR wrong number of arguments for 'config|set' command\r\n"
        );
        // An odd count that passes the arity check is a syntax error.
        assert_eq!(
            env.run("CONFIG SET hz 10 maxclients"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET nosuch 1"),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
        );
        // An unknown name anywhere wins over an earlier immutable one.
        assert_eq!(
            env.run("CONFIG SET port 1 nosuch 1 other 2"),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET databases 4"),
            "-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set \
             immutable config\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET hz 5 HZ 6"),
            "-ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate \
             parameter\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET hash-max-listpack-value 1 hash-max-ziplist-value 2"),
            "-ERR CONFIG SET failed (possibly related to argument 'hash-max-ziplist-value') - \
             duplicate parameter\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET hz abc"),
            "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't \
             be parsed into an integer\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET hz -1"),
            "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be \
             between 0 and 2147483647 inclusive\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET maxclients 0"),
            "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument \
             must be between 1 and 4294967295 inclusive\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET proto-max-bulk-len 1000"),
            "-ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - \
             argument must be between 1048576 and 9223372036854775807 inclusive\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET proto-max-bulk-len 1xb"),
            "-ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - \
             argument must be a memory value\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET hash-max-listpack-entries -1"),
            "-ERR CONFIG SET failed (possibly related to argument 'hash-max-listpack-entries') \
             - argument must be between 0 and 9223372036854775807 inclusive\r\n"
        );
        assert_eq!(
            env.run("CONFIG SET sweeper-cpu-percent 101"),
            "-ERR CONFIG SET failed (possibly related to argument 'sweeper-cpu-percent') - \
             argument must be between 1 and 100 inclusive\r\n"
        );
        // Nothing is applied when any pair fails.
        assert_eq!(
            env.run("CONFIG SET hz 50 maxclients 0"),
            "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument \
             must be between 1 and 4294967295 inclusive\r\n"
        );
        assert_eq!(env.run("CONFIG GET hz"), pairs(&[("hz", "10")]));
    }

    #[test]
    fn memory_values() {
        assert_eq!(parse_memory(b"1mb"), Some(1 << 20));
        assert_eq!(parse_memory(b"1M"), Some(1_000_000));
        assert_eq!(parse_memory(b"2Kb"), Some(2048));
        assert_eq!(parse_memory(b"7b"), Some(7));
        assert_eq!(parse_memory(b""), Some(0));
        assert_eq!(parse_memory(b"-1"), None);
        assert_eq!(parse_memory(b"1 mb"), None);
        assert_eq!(parse_memory(b"99999999999999999999gb"), None);
    }

    #[test]
    fn resetstat_and_help() {
        let mut env = TestEnv::new();
        env.server
            .keyspace
            .stats
            .expired_subkeys
            .store(9, Ordering::Relaxed);
        assert_eq!(env.run("CONFIG RESETSTAT"), "+OK\r\n");
        assert_eq!(
            env.server
                .keyspace
                .stats
                .expired_subkeys
                .load(Ordering::Relaxed),
            0
        );
        assert_eq!(
            env.run("CONFIG RESETSTAT now"),
            "-ERR wrong number of arguments for 'config|resetstat' command\r\n"
        );
        let help = env.run("config help");
        assert!(help.starts_with(
            "*9\r\n+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
        ));
        assert_eq!(
            env.run("CONFIG REWRITE"),
            "-ERR unknown subcommand 'REWRITE'. Try CONFIG HELP.\r\n"
        );
    }

    /// An unknown name is quoted as the client sent it, up to a NUL (Redis 7.4.1's `%s`).
    #[test]
    fn unknown_parameter_error_keeps_the_client_bytes() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run_args(&[b"CONFIG".as_slice(), b"SET", b"m\xffx\x00y", b"1"]),
            b"-ERR Unknown option or number of arguments for CONFIG SET - 'm\xffx'\r\n"
        );
        // The unknown name wins over an earlier bad value, bytes and all.
        assert_eq!(
            env.run_args(&[
                b"CONFIG".as_slice(),
                b"SET",
                b"maxmemory",
                b"x",
                b"\xe9",
                b"1"
            ]),
            b"-ERR Unknown option or number of arguments for CONFIG SET - '\xe9'\r\n"
        );
    }
}
