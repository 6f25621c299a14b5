//! Configuration: built-in defaults, overridden by a TOML file, overridden by
//! redis-server-style command-line flags. [`Config`] is what was asked for at start-up;
//! [`LiveConfig`] holds the parameters CONFIG SET may change while running.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Redis's default snapshot points: after 3600 s if 1 key changed, 300 s if 100, 60 s if
/// 10000.
pub const DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";

use clap::Parser;
use parking_lot::RwLock;
use serde::Deserialize;

use crate::error::StartupError;

pub const DEFAULT_PORT: u16 = 6379;
pub const DEFAULT_DATABASES: usize = 16;
pub const DEFAULT_MAXCLIENTS: u64 = 10_000;
pub const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
pub const DEFAULT_QUERY_BUFFER_LIMIT: u64 = 1024 * 1024 * 1024;
/// `proto-max-bulk-len` may not go below this (Redis's minimum).
pub const MIN_PROTO_MAX_BULK_LEN: u64 = 1024 * 1024;
pub const DEFAULT_HZ: u64 = 10;
/// Share of one core the sweeper may use, in percent.
pub const DEFAULT_SWEEPER_CPU_PERCENT: u64 = 25;

/// Command-line flags. Each overrides the same option of the config file.
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "hashd",
    version,
    about = "A Redis-protocol server for hashes with per-field expiration"
)]
pub struct Cli {
    /// Path to a TOML config file (see config/hashd.toml).
    pub config: Option<PathBuf>,
    /// TCP port to listen on.
    #[arg(long)]
    pub port: Option<u16>,
    /// Addresses to listen on (several allowed, like redis-server's `bind`).
    #[arg(long, num_args = 1..)]
    pub bind: Option<Vec<String>>,
    /// Password clients must AUTH with (user `default`).
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Number of databases (SELECT 0..N-1).
    #[arg(long)]
    pub databases: Option<usize>,
    /// Maximum simultaneous clients.
    #[arg(long)]
    pub maxclients: Option<u64>,
    /// Log level: debug, verbose, notice, warning (Redis names) or trace/info/warn/error.
    #[arg(long)]
    pub loglevel: Option<String>,
    /// Shards per database (rounded up to a power of two, at most 256).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Worker threads serving clients (0 = one per CPU core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Background expiry cycles per second.
    #[arg(long)]
    pub hz: Option<u64>,
    /// Largest bulk string a client may send, in bytes (units like 512mb allowed).
    #[arg(long = "proto-max-bulk-len", value_parser = parse_memory)]
    pub proto_max_bulk_len: Option<u64>,
    /// Largest query buffer per client, in bytes (units like 1gb allowed).
    #[arg(long = "client-query-buffer-limit", value_parser = parse_memory)]
    pub client_query_buffer_limit: Option<u64>,
    /// Hashes with more fields than this use the table encoding.
    #[arg(long = "hash-max-listpack-entries")]
    pub hash_max_listpack_entries: Option<usize>,
    /// Hashes with a field or value longer than this use the table encoding.
    #[arg(long = "hash-max-listpack-value")]
    pub hash_max_listpack_value: Option<usize>,
    /// Keyspace notification classes, as in Redis (`KEA`, `Kh`, `hSTIV`…; "" = off).
    #[arg(long = "notify-keyspace-events", allow_hyphen_values = true)]
    pub notify_keyspace_events: Option<String>,
    /// Snapshot points, `seconds changes` pairs as in redis.conf (`--save ''` disables).
    #[arg(long, num_args = 0..)]
    pub save: Option<Vec<String>>,
    /// Directory of the snapshot file.
    #[arg(long)]
    pub dir: Option<String>,
    /// Snapshot file name.
    #[arg(long)]
    pub dbfilename: Option<String>,
    /// Compress long strings in snapshots with LZF (yes/no).
    #[arg(long, value_parser = parse_yes_no)]
    pub rdbcompression: Option<bool>,
    /// Write and check the CRC64 trailer of snapshots (yes/no).
    #[arg(long, value_parser = parse_yes_no)]
    pub rdbchecksum: Option<bool>,
    /// Load a snapshot that holds types hashd does not serve, skipping those keys (yes/no).
    #[arg(long = "rdb-skip-unsupported-types", value_parser = parse_yes_no)]
    pub rdb_skip_unsupported_types: Option<bool>,
    /// Log every change to the append-only file (yes/no).
    #[arg(long, value_parser = parse_yes_no)]
    pub appendonly: Option<bool>,
    /// When the append-only file is fsynced: always, everysec, no.
    #[arg(long)]
    pub appendfsync: Option<String>,
    /// Directory of the append-only files, inside `dir`.
    #[arg(long)]
    pub appenddirname: Option<String>,
    /// Base name of the append-only files.
    #[arg(long)]
    pub appendfilename: Option<String>,
    /// Write the append-only file's base as an RDB (yes/no).
    #[arg(long = "aof-use-rdb-preamble", value_parser = parse_yes_no)]
    pub aof_use_rdb_preamble: Option<bool>,
    /// Load an append-only file whose last command is cut off, dropping it (yes/no).
    #[arg(long = "aof-load-truncated", value_parser = parse_yes_no)]
    pub aof_load_truncated: Option<bool>,
    /// Follow this master: `--replicaof <host> <port>` (or `--replicaof "<host> <port>"`).
    #[arg(long, alias = "slaveof", num_args = 1..=2, value_names = ["HOST", "PORT"])]
    pub replicaof: Option<Vec<String>>,
    /// Password to authenticate to the master with.
    #[arg(long)]
    pub masterauth: Option<String>,
    /// User to authenticate to the master as (with masterauth).
    #[arg(long)]
    pub masteruser: Option<String>,
    /// A replica refuses writes from its clients (yes/no).
    #[arg(long = "replica-read-only", alias = "slave-read-only", value_parser = parse_yes_no)]
    pub replica_read_only: Option<bool>,
    /// A replica serves reads while its master link is down (yes/no).
    #[arg(long = "replica-serve-stale-data", alias = "slave-serve-stale-data", value_parser = parse_yes_no)]
    pub replica_serve_stale_data: Option<bool>,
    /// Reported to failover tools (INFO slave_priority).
    #[arg(long = "replica-priority", alias = "slave-priority")]
    pub replica_priority: Option<u64>,
    /// Bytes of the replication stream kept for partial resyncs (units like 1mb allowed).
    #[arg(long = "repl-backlog-size", value_parser = parse_memory)]
    pub repl_backlog_size: Option<u64>,
    /// Send full syncs straight to the replica's socket instead of through a file (yes/no).
    #[arg(long = "repl-diskless-sync", value_parser = parse_yes_no)]
    pub repl_diskless_sync: Option<bool>,
    /// Seconds a diskless sync waits before it starts.
    #[arg(long = "repl-diskless-sync-delay")]
    pub repl_diskless_sync_delay: Option<u64>,
    /// Seconds between the PINGs a master sends its replicas.
    #[arg(long = "repl-ping-replica-period", alias = "repl-ping-slave-period")]
    pub repl_ping_replica_period: Option<u64>,
    /// Seconds of silence after which a replication link is dropped.
    #[arg(long = "repl-timeout")]
    pub repl_timeout: Option<u64>,
    /// Refuse writes unless this many replicas are connected and recent (0: off).
    #[arg(long = "min-replicas-to-write", alias = "min-slaves-to-write")]
    pub min_replicas_to_write: Option<u64>,
    /// Seconds since its last ACK for a replica to count for min-replicas-to-write.
    #[arg(long = "min-replicas-max-lag", alias = "min-slaves-max-lag")]
    pub min_replicas_max_lag: Option<u64>,
    /// Refuse clients from other hosts while no password is set (yes/no).
    #[arg(long = "protected-mode", value_parser = parse_yes_no)]
    pub protected_mode: Option<bool>,
    /// Seconds between TCP keepalive probes on client connections (0: off).
    #[arg(long = "tcp-keepalive")]
    pub tcp_keepalive: Option<u64>,
    /// Close clients idle for this many seconds (0: never).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Write the process id to this file.
    #[arg(long)]
    pub pidfile: Option<String>,
    /// Write the log to this file ("": standard output).
    #[arg(long)]
    pub logfile: Option<String>,
    /// Refuse writes while the last background save failed (yes/no).
    #[arg(long = "stop-writes-on-bgsave-error", value_parser = parse_yes_no)]
    pub stop_writes_on_bgsave_error: Option<bool>,
    /// Who may run DEBUG: yes, no, local (loopback clients only).
    #[arg(long = "enable-debug-command")]
    pub enable_debug_command: Option<String>,
    /// Commands slower than this many microseconds go to the slow log (-1: none, 0: all).
    #[arg(long = "slowlog-log-slower-than", allow_hyphen_values = true)]
    pub slowlog_log_slower_than: Option<i64>,
    /// Entries the slow log keeps.
    #[arg(long = "slowlog-max-len")]
    pub slowlog_max_len: Option<u64>,
    /// Sample events at least this many milliseconds long for LATENCY (0: off).
    #[arg(long = "latency-monitor-threshold")]
    pub latency_monitor_threshold: Option<u64>,
    /// Memory limit for the data (units like 256mb; 0: none). Past it, keys are evicted
    /// by `maxmemory-policy`, or writes refused with -OOM.
    #[arg(long = "maxmemory", value_parser = parse_memory)]
    pub maxmemory: Option<u64>,
    /// noeviction, allkeys-lru/-lfu/-random, volatile-lru/-lfu/-random/-ttl.
    #[arg(long = "maxmemory-policy")]
    pub maxmemory_policy: Option<String>,
    /// Keys sampled per eviction (1 to 64).
    #[arg(long = "maxmemory-samples")]
    pub maxmemory_samples: Option<u64>,
    /// How long one command may spend evicting (0 to 100; 100: unlimited).
    #[arg(long = "maxmemory-eviction-tenacity")]
    pub maxmemory_eviction_tenacity: Option<u64>,
    /// LFU counter growth: higher, slower.
    #[arg(long = "lfu-log-factor")]
    pub lfu_log_factor: Option<u64>,
    /// Minutes idle per point an LFU counter loses (0: never).
    #[arg(long = "lfu-decay-time")]
    pub lfu_decay_time: Option<u64>,
    /// Serve TLS clients on this port too (0: off); see docs/CONFIG.md for the tls-* set.
    #[arg(long = "tls-port")]
    pub tls_port: Option<u16>,
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<String>,
    #[arg(long = "tls-key-file")]
    pub tls_key_file: Option<String>,
    #[arg(long = "tls-key-file-pass")]
    pub tls_key_file_pass: Option<String>,
    #[arg(long = "tls-ca-cert-file")]
    pub tls_ca_cert_file: Option<String>,
    #[arg(long = "tls-ca-cert-dir")]
    pub tls_ca_cert_dir: Option<String>,
    /// yes (a client certificate is required), optional, no.
    #[arg(long = "tls-auth-clients")]
    pub tls_auth_clients: Option<String>,
    /// "TLSv1.2 TLSv1.3" (the default: both).
    #[arg(long = "tls-protocols")]
    pub tls_protocols: Option<String>,
    /// TLS 1.3 suites, `:`-separated (OpenSSL names).
    #[arg(long = "tls-ciphersuites")]
    pub tls_ciphersuites: Option<String>,
    /// TLS 1.2 ciphers, `:`-separated (OpenSSL names).
    #[arg(long = "tls-ciphers")]
    pub tls_ciphers: Option<String>,
    #[arg(long = "tls-prefer-server-ciphers", value_parser = parse_yes_no)]
    pub tls_prefer_server_ciphers: Option<bool>,
    #[arg(long = "tls-session-caching", value_parser = parse_yes_no)]
    pub tls_session_caching: Option<bool>,
    /// A replica connects to its master over TLS (yes/no).
    #[arg(long = "tls-replication", value_parser = parse_yes_no)]
    pub tls_replication: Option<bool>,
    /// The certificate a replica presents to its master (default: tls-cert-file).
    #[arg(long = "tls-client-cert-file")]
    pub tls_client_cert_file: Option<String>,
    #[arg(long = "tls-client-key-file")]
    pub tls_client_key_file: Option<String>,
    #[arg(long = "tls-client-key-file-pass")]
    pub tls_client_key_file_pass: Option<String>,
    /// Most keys the client-side caching table remembers (0: no limit).
    #[arg(long = "tracking-table-max-keys")]
    pub tracking_table_max_keys: Option<u64>,
    /// An ACL user and its rules, as redis.conf's `user` (`--user "alice on >pw ~* +@all"`;
    /// repeat for more users).
    #[arg(long = "user", allow_hyphen_values = true, action = clap::ArgAction::Append)]
    pub user: Vec<String>,
    /// Serve a command under another name, or not at all with "" (`--rename-command
    /// FLUSHALL ""`); repeat for more.
    #[arg(long = "rename-command", num_args = 2, allow_hyphen_values = true, action = clap::ArgAction::Append)]
    pub rename_command: Vec<String>,
    /// Cluster mode: hash slots, MOVED, CLUSTER commands, a topology pushed with CLUSTERX
    /// (yes/no).
    #[arg(long = "cluster-enabled", value_parser = parse_yes_no)]
    pub cluster_enabled: Option<bool>,
    /// Where the cluster topology is kept, in `dir`.
    #[arg(long = "cluster-config-file")]
    pub cluster_config_file: Option<String>,
    /// Refuse keyed commands while some slot has no master (yes/no).
    #[arg(long = "cluster-require-full-coverage", value_parser = parse_yes_no)]
    pub cluster_require_full_coverage: Option<bool>,
    /// The ACL file ACL LOAD reads and ACL SAVE writes (users are then defined there).
    #[arg(long = "aclfile")]
    pub aclfile: Option<String>,
    /// Entries ACL LOG keeps.
    #[arg(long = "acllog-max-len")]
    pub acllog_max_len: Option<u64>,
    /// Channels new ACL users may use: resetchannels (none, Redis 7's default) or
    /// allchannels.
    #[arg(long = "acl-pubsub-default")]
    pub acl_pubsub_default: Option<String>,
    /// Evicted large values are freed in the background (yes/no).
    #[arg(long = "lazyfree-lazy-eviction", value_parser = parse_yes_no)]
    pub lazyfree_lazy_eviction: Option<bool>,
    /// Keep a latency histogram per command (INFO latencystats, LATENCY HISTOGRAM) (yes/no).
    #[arg(long = "latency-tracking", value_parser = parse_yes_no)]
    pub latency_tracking: Option<bool>,
    /// The percentiles INFO latencystats reports (`50 99 99.9`; '' for none).
    #[arg(long = "latency-tracking-info-percentiles", num_args = 0..)]
    pub latency_tracking_info_percentiles: Option<Vec<String>>,
    /// DEL frees large values in the background, as UNLINK (yes/no).
    #[arg(long = "lazyfree-lazy-user-del", value_parser = parse_yes_no)]
    pub lazyfree_lazy_user_del: Option<bool>,
    /// FLUSHDB / FLUSHALL without ASYNC or SYNC free in the background (yes/no).
    #[arg(long = "lazyfree-lazy-user-flush", value_parser = parse_yes_no)]
    pub lazyfree_lazy_user_flush: Option<bool>,
    /// Serve Prometheus metrics (redis_exporter's names) on this port, on the `bind`
    /// addresses (0: off).
    #[arg(long = "metrics-port")]
    pub metrics_port: Option<u16>,
    /// Output buffer limits by class: `<class> <hard> <soft> <soft-seconds>` (the `replica`
    /// class is enforced).
    #[arg(
        long = "client-output-buffer-limit",
        num_args = 4,
        allow_hyphen_values = true
    )]
    pub client_output_buffer_limit: Option<Vec<String>>,
}

/// `yes` / `no`, any case (Redis's boolean config values).
pub fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("'{text}' is not yes or no")),
    }
}

/// Redis's `save` value: `seconds changes` pairs, or empty (no automatic snapshots).
pub fn parse_save(text: &str) -> Result<Vec<(u64, u64)>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let bad = || "Invalid save parameters".to_string();
    if !words.len().is_multiple_of(2) {
        return Err(bad());
    }
    let n = |w: &str| {
        if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        w.parse::<u64>().map_err(|_| bad())
    };
    words
        .chunks(2)
        .map(|pair| {
            // As Redis: at least one second, any number of changes.
            let secs = n(pair[0])?;
            if secs < 1 {
                return Err(bad());
            }
            Ok((secs, n(pair[1])?))
        })
        .collect()
}

/// The canonical spelling of save points (CONFIG GET save).
pub fn format_save(points: &[(u64, u64)]) -> String {
    points
        .iter()
        .map(|(s, c)| format!("{s} {c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What hashd does with a Redis directive it has no machinery for.
#[derive(Clone, Copy, Debug)]
pub enum Unimplemented {
    /// No observable effect on hashd (it tunes other data types, threads, the allocator,
    /// logging details…): accepted and ignored, with a log line.
    NoEffect,
    /// Accepted only with one of these values, which describe what hashd does; any other
    /// is refused, naming why.
    Only(&'static [&'static str], &'static str),
    /// Refused whatever its value.
    Refused(&'static str),
}

use Unimplemented::{NoEffect, Only, Refused};

/// Redis directives hashd does not implement, and what it does with each. Settings that
/// change durability, limits or security are never accepted-and-ignored: only the value
/// matching what hashd does passes (`maxmemory 0`), so a redis.conf or command line that
/// asks for more fails at start-up instead of silently not getting it. docs/CONFIG.md
/// lists them.
const UNIMPLEMENTED: &[(&str, Unimplemented)] = &[
    ("tcp-backlog", NoEffect),
    ("always-show-logo", NoEffect),
    ("set-proc-title", NoEffect),
    ("proc-title-template", NoEffect),
    ("rdb-save-incremental-fsync", NoEffect),
    ("aof-rewrite-incremental-fsync", NoEffect),
    ("activerehashing", NoEffect),
    ("activedefrag", NoEffect),
    ("lua-time-limit", NoEffect),
    ("busy-reply-threshold", NoEffect),
    ("enable-protected-configs", NoEffect),
    ("enable-module-command", NoEffect),
    ("jemalloc-bg-thread", NoEffect),
    ("dynamic-hz", NoEffect),
    ("active-expire-effort", NoEffect),
    ("oom-score-adj-values", NoEffect),
    ("disable-thp", NoEffect),
    ("crash-log-enabled", NoEffect),
    ("crash-memcheck-enabled", NoEffect),
    ("locale-collate", NoEffect),
    ("ignore-warnings", NoEffect),
    ("hide-user-data-from-log", NoEffect),
    (
        "propagation-error-behavior",
        Only(
            &["ignore"],
            "errors in replicated commands are logged and ignored",
        ),
    ),
    ("sanitize-dump-payload", NoEffect),
    ("shutdown-timeout", NoEffect),
    ("io-threads", NoEffect),
    ("io-threads-do-reads", NoEffect),
    ("repl-diskless-sync-max-replicas", NoEffect),
    ("repl-backlog-ttl", NoEffect),
    ("repl-disable-tcp-nodelay", NoEffect),
    ("replica-announced", NoEffect),
    ("syslog-ident", NoEffect),
    ("syslog-facility", NoEffect),
    ("unixsocketperm", NoEffect),
    (
        "daemonize",
        Only(&["no"], "hashd runs in the foreground; use a supervisor"),
    ),
    (
        "supervised",
        Only(&["no"], "systemd/upstart notification is not implemented"),
    ),
    (
        "replica-ignore-maxmemory",
        Only(
            &["yes"],
            "a replica never evicts: its master's evictions arrive as DEL",
        ),
    ),
    (
        "maxmemory-clients",
        Only(&["0"], "client eviction is not implemented"),
    ),
    (
        "rdb-del-sync-files",
        Only(&["no"], "sync files are always kept"),
    ),
    (
        "no-appendfsync-on-rewrite",
        Only(
            &["no"],
            "the append-only file is fsynced during rewrites too",
        ),
    ),
    (
        "aof-timestamp-enabled",
        Only(&["no"], "timestamp annotations are not written"),
    ),
    (
        "aof-disable-auto-gc",
        Only(&["no"], "old append-only files are always removed"),
    ),
    (
        "oom-score-adj",
        Only(&["no"], "the OOM score is not adjusted"),
    ),
    ("syslog-enabled", Only(&["no"], "syslog is not implemented")),
    (
        "unixsocket",
        Only(&[""], "Unix sockets are not implemented"),
    ),
    (
        "shutdown-on-sigint",
        Only(&["default"], "SIGINT always shuts down as by default"),
    ),
    (
        "shutdown-on-sigterm",
        Only(&["default"], "SIGTERM always shuts down as by default"),
    ),
    (
        "tls-cluster",
        Only(&["no"], "hashd has no cluster bus to encrypt"),
    ),
    (
        "repl-diskless-load",
        Only(
            &["disabled"],
            "a replica always loads its master's snapshot from a file",
        ),
    ),
    (
        "bind-source-addr",
        Only(
            &[""],
            "outgoing connections use the system's source address",
        ),
    ),
    (
        "replica-announce-ip",
        Only(&[""], "a replica announces the address its master sees"),
    ),
    (
        "replica-announce-port",
        Only(&["0"], "a replica announces its own port"),
    ),
    (
        "include",
        Refused("configuration includes are not supported"),
    ),
    ("loadmodule", Refused("modules are not supported")),
];

/// Families with no observable effect on hashd (other data types' encodings, lazy
/// freeing, defragmentation, TLS files without `tls-port`…; the members hashd implements
/// are listed in `IMPLEMENTED_IN_FAMILIES`).
const NO_EFFECT_PREFIXES: &[&str] = &[
    "lazyfree-",
    "replica-lazy-",
    "list-",
    "set-max-",
    "zset-",
    "hll-",
    "stream-",
    "lfu-",
    "active-defrag-",
    "tracking-",
    "max-new-",
    "cluster-",
    "tls-",
];

/// Directives of a no-effect family that hashd implements.
const IMPLEMENTED_IN_FAMILIES: &[&str] = &[
    "cluster-enabled",
    "cluster-config-file",
    "cluster-require-full-coverage",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "lazyfree-lazy-eviction",
    "lfu-log-factor",
    "lfu-decay-time",
    "tracking-table-max-keys",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphersuites",
    "tls-ciphers",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-replication",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
];

/// What hashd does with the Redis directive `name`, if it is one hashd does not implement.
pub fn unimplemented_directive(name: &str) -> Option<Unimplemented> {
    let name = name.to_ascii_lowercase();
    if IMPLEMENTED_IN_FAMILIES.contains(&name.as_str()) {
        return None;
    }
    if let Some((_, u)) = UNIMPLEMENTED.iter().find(|(n, _)| *n == name) {
        return Some(*u);
    }
    NO_EFFECT_PREFIXES
        .iter()
        .any(|p| name.starts_with(p))
        .then_some(NoEffect)
}

/// True for a Redis directive hashd does not implement (accepted or refused by value).
pub fn is_ignored_directive(name: &str) -> bool {
    unimplemented_directive(name).is_some()
}

/// Whether `name values…` may be accepted and ignored: Err names why not.
pub fn check_unimplemented(name: &str, values: &[String]) -> Result<(), String> {
    let shown = || format!("'{name} {}'", values.join(" "));
    match unimplemented_directive(name) {
        None | Some(NoEffect) => Ok(()),
        Some(Refused(why)) => Err(format!("{} is not supported: {why}", shown())),
        Some(Only(allowed, why)) => {
            let value = values.join(" ");
            // Memory amounts may carry a unit (`0mb`).
            let same = |a: &str| {
                value.eq_ignore_ascii_case(a)
                    || (a == "0" && parse_memory(&value).is_ok_and(|v| v == 0))
            };
            if allowed.iter().any(|a| same(a)) {
                Ok(())
            } else {
                let only = allowed
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                Err(format!(
                    "{} is not supported: {why} (hashd accepts only {only})",
                    shown()
                ))
            }
        }
    }
}

/// `--user alice on >pw ~* +@all`, redis-server style, becomes one `--user` value with
/// the words after it (up to the next `--flag`) joined by spaces, as redis.conf's line.
pub fn join_user_flags(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::with_capacity(args.len());
    let mut joining: Option<String> = None;
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_string_lossy().into_owned();
        let is_flag = i > 0 && text.starts_with("--") && text.len() > 2;
        if let Some(words) = joining.as_mut() {
            if !is_flag {
                if !words.is_empty() {
                    words.push(' ');
                }
                words.push_str(&text);
                continue;
            }
            out.push(joining.take().unwrap_or_default().into());
        }
        if is_flag && text == "--user" {
            out.push(arg);
            joining = Some(String::new());
        } else {
            out.push(arg);
        }
    }
    if let Some(words) = joining {
        out.push(words.into());
    }
    out
}

/// Splits `--directive value…` pairs that hashd does not implement out of a
/// redis-server-style command line. Returns the arguments to parse and the directives
/// removed, with their values (for [`check_unimplemented`]).
pub fn strip_ignored_flags(
    args: Vec<std::ffi::OsString>,
) -> (Vec<std::ffi::OsString>, Vec<(String, Vec<String>)>) {
    let mut kept = Vec::with_capacity(args.len());
    let mut ignored: Vec<(String, Vec<String>)> = Vec::new();
    let mut skipping = false;
    for (i, arg) in args.into_iter().enumerate() {
        let flag = arg
            .to_str()
            .filter(|a| i > 0 && a.starts_with("--") && a.len() > 2)
            .map(|a| a[2..].split('=').next().unwrap_or_default().to_string());
        match flag {
            Some(name) if is_ignored_directive(&name) => {
                let inline = arg
                    .to_str()
                    .and_then(|a| a.split_once('='))
                    .map(|(_, v)| v.to_string());
                ignored.push((name, inline.into_iter().collect()));
                skipping = true;
            }
            Some(_) => {
                skipping = false;
                kept.push(arg);
            }
            // A directive's values (`--save 60 1`) go with it.
            None if skipping => {
                if let Some((_, values)) = ignored.last_mut() {
                    values.push(arg.to_string_lossy().into_owned());
                }
            }
            None => kept.push(arg),
        }
    }
    (kept, ignored)
}

/// The multiplier of a Redis memory unit (lower-case): `""`/`b` 1, `k` 1000, `kb` 1024,
/// `m`, `mb`, `g`, `gb` likewise.
pub fn memory_unit(unit: &str) -> Option<u64> {
    Some(match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    })
}

/// Redis's memory notation: a number with an optional unit `b`, `k` (1000), `kb` (1024),
/// `m`, `mb`, `g`, `gb`, any case.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let Some(mul) = memory_unit(unit) else {
        return Err(format!("'{text}' is not a memory size (like 512mb)"));
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("'{text}' is not a memory size (like 512mb)"))
}

/// The start-up configuration. Field names follow redis.conf with `-` as `_` in TOML,
/// and the TOML file may use either spelling (`hash-max-listpack-entries` or
/// `hash_max_listpack_entries`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    pub requirepass: Option<String>,
    pub databases: usize,
    pub maxclients: u64,
    pub loglevel: String,
    pub shards: usize,
    /// Worker threads serving clients; 0 means one per CPU core.
    pub threads: usize,
    pub hz: u64,
    /// Share of one core the background sweeper may use, in percent (1–100).
    pub sweeper_cpu_percent: u64,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    /// Keyspace notification classes (Redis letters; empty: none).
    pub notify_keyspace_events: String,
    /// Snapshot points, `seconds changes` pairs; empty: no automatic snapshots.
    pub save: String,
    /// Directory of the snapshot file (and, later, the append-only files).
    pub dir: String,
    pub dbfilename: String,
    pub rdbcompression: bool,
    pub rdbchecksum: bool,
    /// hashd's own: load a snapshot holding other types by skipping those keys (logged
    /// with a count) instead of refusing to start.
    pub rdb_skip_unsupported_types: bool,
    pub appendonly: bool,
    pub appendfsync: String,
    pub appenddirname: String,
    pub appendfilename: String,
    pub aof_use_rdb_preamble: bool,
    pub aof_load_truncated: bool,
    /// Rewrite the log when it has grown this many percent over its size after the last
    /// rewrite (0: never automatically)…
    pub auto_aof_rewrite_percentage: u64,
    /// …and is at least this big.
    pub auto_aof_rewrite_min_size: u64,
    /// `host port` of the master to follow, if any.
    pub replicaof: Option<String>,
    pub masterauth: Option<String>,
    pub masteruser: Option<String>,
    pub replica_read_only: bool,
    pub replica_serve_stale_data: bool,
    pub replica_priority: u64,
    pub repl_backlog_size: u64,
    pub repl_diskless_sync: bool,
    pub repl_diskless_sync_delay: u64,
    pub repl_ping_replica_period: u64,
    pub repl_timeout: u64,
    pub min_replicas_to_write: u64,
    pub min_replicas_max_lag: u64,
    pub protected_mode: bool,
    pub tcp_keepalive: u64,
    pub timeout: u64,
    /// "": none.
    pub pidfile: String,
    /// "": standard output.
    pub logfile: String,
    pub stop_writes_on_bgsave_error: bool,
    /// `yes`, `no` or `local`.
    pub enable_debug_command: String,
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// hashd's own: the Prometheus endpoint's port (0: off).
    pub metrics_port: u16,
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    pub latency_monitor_threshold: u64,
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    pub maxmemory_samples: u64,
    pub maxmemory_eviction_tenacity: u64,
    pub lfu_log_factor: u64,
    pub lfu_decay_time: u64,
    pub lazyfree_lazy_eviction: bool,
    pub tracking_table_max_keys: u64,
    /// `user` directives: each a user name and its ACL rules, space-separated.
    pub user: Vec<String>,
    pub aclfile: String,
    pub cluster_enabled: bool,
    pub cluster_config_file: String,
    pub cluster_require_full_coverage: bool,
    /// `rename-command` pairs: command, new name ("" to remove it).
    pub rename_command: Vec<(String, String)>,
    pub acllog_max_len: u64,
    pub acl_pubsub_default: String,
    pub tls_port: u16,
    pub tls_cert_file: String,
    pub tls_key_file: String,
    pub tls_key_file_pass: String,
    pub tls_ca_cert_file: String,
    pub tls_ca_cert_dir: String,
    pub tls_auth_clients: String,
    pub tls_protocols: String,
    pub tls_ciphersuites: String,
    pub tls_ciphers: String,
    pub tls_prefer_server_ciphers: bool,
    pub tls_session_caching: bool,
    pub tls_replication: bool,
    pub tls_client_cert_file: String,
    pub tls_client_key_file: String,
    pub tls_client_key_file_pass: String,
    pub latency_tracking: bool,
    /// Space-separated percentiles, as redis.conf writes them.
    pub latency_tracking_info_percentiles: String,
    /// `client-output-buffer-limit` classes, as redis.conf writes them (`replica 256mb
    /// 64mb 60 …`); empty: Redis's defaults.
    pub client_output_buffer_limit: String,
    /// Where the configuration came from, for the start-up banner.
    #[serde(skip)]
    pub source: String,
    /// Redis directives that were given and are ignored (logged at start-up).
    #[serde(skip)]
    pub ignored: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: DEFAULT_PORT,
            bind: vec!["127.0.0.1".into()],
            requirepass: None,
            databases: DEFAULT_DATABASES,
            maxclients: DEFAULT_MAXCLIENTS,
            loglevel: "notice".into(),
            shards: 8,
            threads: 0,
            hz: DEFAULT_HZ,
            sweeper_cpu_percent: DEFAULT_SWEEPER_CPU_PERCENT,
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            client_query_buffer_limit: DEFAULT_QUERY_BUFFER_LIMIT,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            notify_keyspace_events: String::new(),
            save: DEFAULT_SAVE.into(),
            dir: ".".into(),
            dbfilename: "dump.rdb".into(),
            rdbcompression: true,
            rdbchecksum: true,
            rdb_skip_unsupported_types: false,
            appendonly: false,
            appendfsync: "everysec".into(),
            appenddirname: "appendonlydir".into(),
            appendfilename: "appendonly.aof".into(),
            aof_use_rdb_preamble: true,
            aof_load_truncated: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            replicaof: None,
            masterauth: None,
            masteruser: None,
            replica_read_only: true,
            replica_serve_stale_data: true,
            replica_priority: crate::replication::DEFAULT_REPLICA_PRIORITY,
            repl_backlog_size: crate::replication::DEFAULT_BACKLOG_SIZE,
            repl_diskless_sync: true,
            repl_diskless_sync_delay: crate::replication::DEFAULT_DISKLESS_SYNC_DELAY_S,
            repl_ping_replica_period: crate::replication::DEFAULT_PING_PERIOD_S,
            repl_timeout: crate::replication::DEFAULT_TIMEOUT_S,
            min_replicas_to_write: 0,
            min_replicas_max_lag: crate::replication::DEFAULT_MIN_REPLICAS_MAX_LAG_S,
            client_output_buffer_limit: String::new(),
            protected_mode: true,
            tcp_keepalive: 300,
            timeout: 0,
            pidfile: String::new(),
            logfile: String::new(),
            stop_writes_on_bgsave_error: true,
            enable_debug_command: "yes".into(),
            slowlog_log_slower_than: crate::cmdstats::DEFAULT_SLOWLOG_SLOWER_THAN_US,
            slowlog_max_len: crate::cmdstats::DEFAULT_SLOWLOG_MAX_LEN,
            metrics_port: 0,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            latency_monitor_threshold: 0,
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            maxmemory_samples: 5,
            maxmemory_eviction_tenacity: 10,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            lazyfree_lazy_eviction: false,
            tracking_table_max_keys: crate::tracking::DEFAULT_MAX_KEYS,
            user: Vec::new(),
            aclfile: String::new(),
            rename_command: Vec::new(),
            cluster_enabled: false,
            cluster_config_file: "nodes.conf".into(),
            cluster_require_full_coverage: true,
            acllog_max_len: 128,
            acl_pubsub_default: "resetchannels".into(),
            tls_port: 0,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            tls_key_file_pass: String::new(),
            tls_ca_cert_file: String::new(),
            tls_ca_cert_dir: String::new(),
            tls_auth_clients: "yes".into(),
            tls_protocols: String::new(),
            tls_ciphersuites: String::new(),
            tls_ciphers: String::new(),
            tls_prefer_server_ciphers: false,
            tls_session_caching: true,
            tls_replication: false,
            tls_client_cert_file: String::new(),
            tls_client_key_file: String::new(),
            tls_client_key_file_pass: String::new(),
            latency_tracking: true,
            latency_tracking_info_percentiles: crate::cmdstats::DEFAULT_INFO_PERCENTILES.into(),
            source: "built-in defaults".into(),
            ignored: Vec::new(),
        }
    }
}

fn invalid(option: &str, reason: impl Into<String>) -> StartupError {
    StartupError::InvalidOption {
        option: option.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// Defaults ← config file (if given) ← flags; then validation.
    pub fn load(cli: &Cli) -> Result<Config, StartupError> {
        let mut cfg = match &cli.config {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        cfg.apply_cli(cli);
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Config, StartupError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| StartupError::ConfigRead {
            path: display.clone(),
            source,
        })?;
        let is_redis_conf = path.extension().is_some_and(|e| e == "conf");
        let parsed = if is_redis_conf {
            Self::from_redis_conf(&text)
        } else {
            Self::from_toml(&text)
        };
        let mut cfg = parsed.map_err(|message| StartupError::ConfigParse {
            path: display.clone(),
            message,
        })?;
        cfg.source = display;
        Ok(cfg)
    }

    /// Parses TOML text; keys may use `-` or `_`.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let value: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let normalized: toml::Table = value
            .into_iter()
            .map(|(k, v)| (k.replace('_', "-"), v))
            .collect();
        Config::deserialize(toml::Value::Table(normalized)).map_err(|e| e.message().to_string())
    }

    /// Parses redis.conf syntax (`name arg…` per line, `#` comments, Redis quoting). hashd's
    /// own options map by name; ignored Redis directives are skipped; anything else is an
    /// error naming the line, as Redis's "FATAL CONFIG FILE ERROR" does.
    pub fn from_redis_conf(text: &str) -> Result<Config, String> {
        let mut cfg = Config::default();
        // `save` lines accumulate, replacing the defaults at the first one.
        let mut save: Option<Vec<String>> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut data = Vec::new();
            let mut spans = Vec::new();
            let bad = |why: &str| format!("line {}: '{line}': {why}", n + 1);
            crate::protocol::request::split_args(line.as_bytes(), &mut data, &mut spans)
                .map_err(|_| bad("unbalanced quotes"))?;
            let words: Vec<String> = spans
                .iter()
                .map(|&(a, b)| String::from_utf8_lossy(&data[a..b]).into_owned())
                .collect();
            let Some((name, args)) = words.split_first() else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            let one = || match args {
                [v] => Ok(v.as_str()),
                _ => Err(bad("wrong number of arguments")),
            };
            let num = |v: &str| v.parse::<u64>().map_err(|_| bad("not a number"));
            match name.as_str() {
                "port" => cfg.port = one()?.parse().map_err(|_| bad("not a port"))?,
                "bind" => {
                    if args.is_empty() {
                        return Err(bad("wrong number of arguments"));
                    }
                    cfg.bind = args.to_vec();
                }
                "requirepass" => {
                    let v = one()?;
                    cfg.requirepass = (!v.is_empty()).then(|| v.to_string());
                }
                "databases" => cfg.databases = num(one()?)? as usize,
                "maxclients" => cfg.maxclients = num(one()?)?,
                "loglevel" => cfg.loglevel = one()?.to_string(),
                "hz" => cfg.hz = num(one()?)?,
                "proto-max-bulk-len" => {
                    cfg.proto_max_bulk_len = parse_memory(one()?).map_err(|e| bad(&e))?
                }
                "client-query-buffer-limit" => {
                    cfg.client_query_buffer_limit = parse_memory(one()?).map_err(|e| bad(&e))?
                }
                "hash-max-listpack-entries" | "hash-max-ziplist-entries" => {
                    cfg.hash_max_listpack_entries = num(one()?)? as usize
                }
                "hash-max-listpack-value" | "hash-max-ziplist-value" => {
                    cfg.hash_max_listpack_value = num(one()?)? as usize
                }
                "notify-keyspace-events" => cfg.notify_keyspace_events = one()?.to_string(),
                "save" => {
                    let all = save.get_or_insert_with(Vec::new);
                    if args.len() == 1 && args[0].is_empty() {
                        all.clear();
                    } else {
                        all.extend(args.iter().cloned());
                    }
                }
                "dir" => cfg.dir = one()?.to_string(),
                "dbfilename" => cfg.dbfilename = one()?.to_string(),
                "rdbcompression" => {
                    cfg.rdbcompression = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "rdbchecksum" => cfg.rdbchecksum = parse_yes_no(one()?).map_err(|e| bad(&e))?,
                "rdb-skip-unsupported-types" => {
                    cfg.rdb_skip_unsupported_types = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "appendonly" => cfg.appendonly = parse_yes_no(one()?).map_err(|e| bad(&e))?,
                "appendfsync" => cfg.appendfsync = one()?.to_string(),
                "appenddirname" => cfg.appenddirname = one()?.to_string(),
                "appendfilename" => cfg.appendfilename = one()?.to_string(),
                "aof-use-rdb-preamble" => {
                    cfg.aof_use_rdb_preamble = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "aof-load-truncated" => {
                    cfg.aof_load_truncated = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "auto-aof-rewrite-percentage" => cfg.auto_aof_rewrite_percentage = num(one()?)?,
                "auto-aof-rewrite-min-size" => {
                    cfg.auto_aof_rewrite_min_size = parse_memory(one()?).map_err(|e| bad(&e))?
                }
                "replicaof" | "slaveof" => {
                    let [host, port] = args else {
                        return Err(bad("wrong number of arguments"));
                    };
                    cfg.replicaof = Some(format!("{host} {port}"));
                }
                "masterauth" => {
                    let v = one()?;
                    cfg.masterauth = (!v.is_empty()).then(|| v.to_string());
                }
                "masteruser" => {
                    let v = one()?;
                    cfg.masteruser = (!v.is_empty()).then(|| v.to_string());
                }
                "replica-read-only" | "slave-read-only" => {
                    cfg.replica_read_only = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "replica-serve-stale-data" | "slave-serve-stale-data" => {
                    cfg.replica_serve_stale_data = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "replica-priority" | "slave-priority" => cfg.replica_priority = num(one()?)?,
                "repl-backlog-size" => {
                    cfg.repl_backlog_size = parse_memory(one()?).map_err(|e| bad(&e))?
                }
                "repl-diskless-sync" => {
                    cfg.repl_diskless_sync = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "repl-diskless-sync-delay" => cfg.repl_diskless_sync_delay = num(one()?)?,
                "repl-ping-replica-period" | "repl-ping-slave-period" => {
                    cfg.repl_ping_replica_period = num(one()?)?
                }
                "repl-timeout" => cfg.repl_timeout = num(one()?)?,
                "min-replicas-to-write" | "min-slaves-to-write" => {
                    cfg.min_replicas_to_write = num(one()?)?
                }
                "min-replicas-max-lag" | "min-slaves-max-lag" => {
                    cfg.min_replicas_max_lag = num(one()?)?
                }
                "protected-mode" => {
                    cfg.protected_mode = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "tcp-keepalive" => cfg.tcp_keepalive = num(one()?)?,
                "timeout" => cfg.timeout = num(one()?)?,
                "pidfile" => cfg.pidfile = one()?.to_string(),
                "logfile" => cfg.logfile = one()?.to_string(),
                "stop-writes-on-bgsave-error" => {
                    cfg.stop_writes_on_bgsave_error = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "enable-debug-command" => cfg.enable_debug_command = one()?.to_ascii_lowercase(),
                "slowlog-log-slower-than" => {
                    cfg.slowlog_log_slower_than = one()?.parse().map_err(|_| bad("not a number"))?
                }
                "slowlog-max-len" => cfg.slowlog_max_len = num(one()?)?,
                "metrics-port" => {
                    cfg.metrics_port = one()?.parse().map_err(|_| bad("not a port"))?
                }
                "latency-monitor-threshold" => cfg.latency_monitor_threshold = num(one()?)?,
                "maxmemory" => cfg.maxmemory = parse_memory(one()?).map_err(|e| bad(&e))?,
                "maxmemory-policy" => cfg.maxmemory_policy = one()?.to_string(),
                "maxmemory-samples" => cfg.maxmemory_samples = num(one()?)?,
                "maxmemory-eviction-tenacity" => cfg.maxmemory_eviction_tenacity = num(one()?)?,
                "lfu-log-factor" => cfg.lfu_log_factor = num(one()?)?,
                "lfu-decay-time" => cfg.lfu_decay_time = num(one()?)?,
                "tracking-table-max-keys" => cfg.tracking_table_max_keys = num(one()?)?,
                "user" => {
                    if args.is_empty() {
                        return Err(bad("wrong number of arguments"));
                    }
                    cfg.user.push(args.join(" "));
                }
                "aclfile" => cfg.aclfile = one()?.to_string(),
                "rename-command" => match args {
                    [from, to] => cfg.rename_command.push((from.clone(), to.clone())),
                    _ => return Err(bad("wrong number of arguments")),
                },
                "acllog-max-len" => cfg.acllog_max_len = num(one()?)?,
                "acl-pubsub-default" => cfg.acl_pubsub_default = one()?.to_string(),
                "tls-port" => cfg.tls_port = one()?.parse().map_err(|_| bad("not a port"))?,
                "tls-cert-file" => cfg.tls_cert_file = one()?.to_string(),
                "tls-key-file" => cfg.tls_key_file = one()?.to_string(),
                "tls-key-file-pass" => cfg.tls_key_file_pass = one()?.to_string(),
                "tls-ca-cert-file" => cfg.tls_ca_cert_file = one()?.to_string(),
                "tls-ca-cert-dir" => cfg.tls_ca_cert_dir = one()?.to_string(),
                "tls-auth-clients" => cfg.tls_auth_clients = one()?.to_string(),
                "tls-protocols" => cfg.tls_protocols = args.join(" "),
                "tls-ciphersuites" => cfg.tls_ciphersuites = one()?.to_string(),
                "tls-ciphers" => cfg.tls_ciphers = one()?.to_string(),
                "tls-prefer-server-ciphers" => {
                    cfg.tls_prefer_server_ciphers = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "tls-replication" => {
                    cfg.tls_replication = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "tls-client-cert-file" => cfg.tls_client_cert_file = one()?.to_string(),
                "tls-client-key-file" => cfg.tls_client_key_file = one()?.to_string(),
                "tls-client-key-file-pass" => cfg.tls_client_key_file_pass = one()?.to_string(),
                "tls-session-caching" => {
                    cfg.tls_session_caching = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "lazyfree-lazy-eviction" => {
                    cfg.lazyfree_lazy_eviction = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "cluster-enabled" => {
                    cfg.cluster_enabled = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "cluster-config-file" => cfg.cluster_config_file = one()?.to_string(),
                "cluster-require-full-coverage" => {
                    cfg.cluster_require_full_coverage = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "latency-tracking" => {
                    cfg.latency_tracking = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "latency-tracking-info-percentiles" => {
                    cfg.latency_tracking_info_percentiles = args.join(" ")
                }
                "lazyfree-lazy-user-del" => {
                    cfg.lazyfree_lazy_user_del = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "lazyfree-lazy-user-flush" => {
                    cfg.lazyfree_lazy_user_flush = parse_yes_no(one()?).map_err(|e| bad(&e))?
                }
                "client-output-buffer-limit" => {
                    if args.len() != 4 {
                        return Err(bad("wrong number of arguments"));
                    }
                    if !cfg.client_output_buffer_limit.is_empty() {
                        cfg.client_output_buffer_limit.push(' ');
                    }
                    cfg.client_output_buffer_limit.push_str(&args.join(" "));
                }
                other if is_ignored_directive(other) => {
                    check_unimplemented(other, args).map_err(|e| bad(&e))?;
                    cfg.ignored.push(other.to_string());
                }
                _ => return Err(bad("Bad directive or wrong number of arguments")),
            }
        }
        if let Some(words) = save {
            cfg.save = words.join(" ");
        }
        Ok(cfg)
    }

    fn apply_cli(&mut self, cli: &Cli) {
        let mut from_flags = false;
        macro_rules! take {
            ($field:ident) => {
                if let Some(v) = &cli.$field {
                    self.$field = v.clone();
                    from_flags = true;
                }
            };
        }
        take!(port);
        take!(bind);
        take!(databases);
        take!(maxclients);
        take!(loglevel);
        take!(shards);
        take!(threads);
        take!(hz);
        take!(proto_max_bulk_len);
        take!(client_query_buffer_limit);
        take!(hash_max_listpack_entries);
        take!(hash_max_listpack_value);
        take!(notify_keyspace_events);
        take!(dir);
        take!(dbfilename);
        take!(rdbcompression);
        take!(rdbchecksum);
        take!(rdb_skip_unsupported_types);
        take!(appendonly);
        take!(appendfsync);
        take!(appenddirname);
        take!(appendfilename);
        take!(aof_use_rdb_preamble);
        take!(aof_load_truncated);
        take!(replica_read_only);
        take!(replica_serve_stale_data);
        take!(replica_priority);
        take!(repl_backlog_size);
        take!(repl_diskless_sync);
        take!(repl_diskless_sync_delay);
        take!(repl_ping_replica_period);
        take!(repl_timeout);
        take!(min_replicas_to_write);
        take!(min_replicas_max_lag);
        take!(protected_mode);
        take!(tcp_keepalive);
        take!(timeout);
        take!(pidfile);
        take!(logfile);
        take!(stop_writes_on_bgsave_error);
        take!(enable_debug_command);
        take!(slowlog_log_slower_than);
        take!(slowlog_max_len);
        take!(metrics_port);
        take!(lazyfree_lazy_user_del);
        take!(latency_monitor_threshold);
        take!(maxmemory);
        take!(maxmemory_policy);
        take!(maxmemory_samples);
        take!(maxmemory_eviction_tenacity);
        take!(lfu_log_factor);
        take!(lfu_decay_time);
        take!(lazyfree_lazy_eviction);
        take!(tracking_table_max_keys);
        if !cli.user.is_empty() {
            // One user per `--user` (its words joined by [`join_user_flags`]).
            self.user.extend(cli.user.iter().cloned());
            from_flags = true;
        }
        take!(aclfile);
        take!(cluster_enabled);
        take!(cluster_config_file);
        take!(cluster_require_full_coverage);
        for pair in cli.rename_command.chunks(2) {
            if let [from, to] = pair {
                self.rename_command.push((from.clone(), to.clone()));
                from_flags = true;
            }
        }
        take!(acllog_max_len);
        take!(acl_pubsub_default);
        take!(tls_port);
        take!(tls_cert_file);
        take!(tls_key_file);
        take!(tls_key_file_pass);
        take!(tls_ca_cert_file);
        take!(tls_ca_cert_dir);
        take!(tls_auth_clients);
        take!(tls_protocols);
        take!(tls_ciphersuites);
        take!(tls_ciphers);
        take!(tls_prefer_server_ciphers);
        take!(tls_session_caching);
        take!(tls_replication);
        take!(tls_client_cert_file);
        take!(tls_client_key_file);
        take!(tls_client_key_file_pass);
        take!(latency_tracking);
        if let Some(words) = &cli.latency_tracking_info_percentiles {
            self.latency_tracking_info_percentiles = words.join(" ");
            from_flags = true;
        }
        take!(lazyfree_lazy_user_flush);
        if let Some(words) = &cli.replicaof {
            self.replicaof = Some(words.join(" "));
            from_flags = true;
        }
        if let Some(words) = &cli.client_output_buffer_limit {
            self.client_output_buffer_limit = words.join(" ");
            from_flags = true;
        }
        for (field, value) in [
            (&mut self.masterauth, &cli.masterauth),
            (&mut self.masteruser, &cli.masteruser),
        ] {
            if let Some(v) = value {
                *field = (!v.is_empty()).then(|| v.clone());
                from_flags = true;
            }
        }
        if let Some(words) = &cli.save {
            self.save = words.join(" ");
            from_flags = true;
        }
        if let Some(p) = &cli.requirepass {
            self.requirepass = (!p.is_empty()).then(|| p.clone());
            from_flags = true;
        }
        if from_flags {
            self.source = format!("{} + command-line flags", self.source);
        }
    }

    /// `replicaof`'s host and port.
    pub fn master_addr(&self) -> Result<Option<(String, u16)>, String> {
        let Some(text) = &self.replicaof else {
            return Ok(None);
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        match words[..] {
            [host, port] => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .map(|p| Some((host.to_string(), p)))
                .ok_or_else(|| format!("'{port}' is not a valid port")),
            _ => Err("expects <host> <port>".into()),
        }
    }

    /// The `replica` class of `client-output-buffer-limit`: (hard, soft, soft seconds).
    pub fn replica_output_buffer_limit(&self) -> Result<(u64, u64, u64), String> {
        parse_output_buffer_limits(&self.client_output_buffer_limit)
    }

    pub fn validate(&self) -> Result<(), StartupError> {
        if !matches!(
            self.acl_pubsub_default.as_str(),
            "resetchannels" | "allchannels"
        ) {
            return Err(invalid(
                "acl-pubsub-default",
                "must be one of resetchannels, allchannels",
            ));
        }
        crate::acl::startup_table(self).map_err(|why| invalid("user", why))?;
        crate::cmd::Renames::new(&self.rename_command)
            .map_err(|why| invalid("rename-command", why))?;
        if self.cluster_enabled {
            let file = std::path::Path::new(&self.dir).join(&self.cluster_config_file);
            crate::cluster::load_file(&file).map_err(|why| invalid("cluster-config-file", why))?;
        }
        if self.tls_port != 0 {
            crate::tls::server_config(&crate::tls::TlsSettings::from_config(self))
                .map_err(|why| invalid("tls-port", why))?;
        }
        if self.tls_replication {
            crate::tls::client_config(&crate::tls::TlsSettings::from_config(self))
                .map_err(|why| invalid("tls-replication", why))?;
        }
        if crate::keyspace::EvictionPolicy::parse(&self.maxmemory_policy).is_none() {
            return Err(invalid(
                "maxmemory-policy",
                "must be one of volatile-lru, volatile-lfu, volatile-random, volatile-ttl, \
                 allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
            ));
        }
        if !(1..=64).contains(&self.maxmemory_samples) {
            return Err(invalid("maxmemory-samples", "must be between 1 and 64"));
        }
        if self.maxmemory_eviction_tenacity > 100 {
            return Err(invalid(
                "maxmemory-eviction-tenacity",
                "must be between 0 and 100",
            ));
        }
        if self.lfu_log_factor > i32::MAX as u64 || self.lfu_decay_time > i32::MAX as u64 {
            return Err(invalid(
                "lfu-log-factor",
                "must be between 0 and 2147483647",
            ));
        }
        if !matches!(
            self.enable_debug_command.to_ascii_lowercase().as_str(),
            "yes" | "no" | "local"
        ) {
            return Err(invalid("enable-debug-command", "must be yes, no or local"));
        }
        if let Err(e) = self.master_addr() {
            return Err(invalid("replicaof", e));
        }
        if let Err(e) = self.replica_output_buffer_limit() {
            return Err(invalid("client-output-buffer-limit", e));
        }
        if self.repl_backlog_size < 16 * 1024 {
            return Err(invalid(
                "repl-backlog-size",
                "must be at least 16384 (16kb)",
            ));
        }
        if self.repl_timeout == 0 || self.repl_ping_replica_period == 0 {
            return Err(invalid(
                "repl-timeout",
                "repl-timeout and repl-ping-replica-period must be at least 1",
            ));
        }
        if let Err(e) = parse_save(&self.save) {
            return Err(invalid("save", e));
        }
        if let Err(e) =
            crate::cmdstats::parse_info_percentiles(&self.latency_tracking_info_percentiles)
        {
            return Err(invalid("latency-tracking-info-percentiles", e));
        }
        if self.dbfilename.is_empty() || self.dbfilename.contains('/') {
            return Err(invalid("dbfilename", "must be a file name, not a path"));
        }
        if crate::persist::appendonly::FsyncPolicy::parse(&self.appendfsync).is_none() {
            return Err(invalid("appendfsync", "must be always, everysec or no"));
        }
        if self.appendfilename.is_empty() || self.appendfilename.contains('/') {
            return Err(invalid("appendfilename", "must be a file name, not a path"));
        }
        if self.appenddirname.is_empty() || self.appenddirname.contains('/') {
            return Err(invalid(
                "appenddirname",
                "must be a directory name, not a path",
            ));
        }
        if let Err(e) = crate::notify::parse_flags(self.notify_keyspace_events.as_bytes()) {
            return Err(invalid("notify-keyspace-events", e.to_string()));
        }
        if self.bind.is_empty() {
            return Err(invalid("bind", "at least one address is required"));
        }
        if !(1..=1_000_000).contains(&self.databases) {
            return Err(invalid("databases", "must be between 1 and 1000000"));
        }
        if self.maxclients == 0 {
            return Err(invalid("maxclients", "must be at least 1"));
        }
        if !(1..=256).contains(&self.shards) {
            return Err(invalid("shards", "must be between 1 and 256"));
        }
        if self.threads > 1024 {
            return Err(invalid(
                "threads",
                "must be between 0 (one per core) and 1024",
            ));
        }
        if !(1..=500).contains(&self.hz) {
            return Err(invalid("hz", "must be between 1 and 500"));
        }
        if !(1..=100).contains(&self.sweeper_cpu_percent) {
            return Err(invalid("sweeper-cpu-percent", "must be between 1 and 100"));
        }
        if self.proto_max_bulk_len < MIN_PROTO_MAX_BULK_LEN {
            return Err(invalid(
                "proto-max-bulk-len",
                "must be at least 1048576 (1mb)",
            ));
        }
        if self.client_query_buffer_limit < 1024 * 1024 {
            return Err(invalid(
                "client-query-buffer-limit",
                "must be at least 1048576 (1mb)",
            ));
        }
        if tracing_level(&self.loglevel).is_none() {
            return Err(invalid(
                "loglevel",
                "must be one of debug, verbose, notice, warning, nothing, trace, info, warn, error",
            ));
        }
        Ok(())
    }
}

/// `client-output-buffer-limit`'s classes (`<class> <hard> <soft> <seconds>` repeated, as
/// CONFIG SET and redis.conf take them); returns the `replica` class's limits, Redis's
/// defaults when it is not given. `normal` and `pubsub` are checked and not enforced
/// (docs/OPERATIONS.md says so).
pub fn parse_output_buffer_limits(text: &str) -> Result<(u64, u64, u64), String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut replica = (
        crate::replication::DEFAULT_OBUF_HARD,
        crate::replication::DEFAULT_OBUF_SOFT,
        crate::replication::DEFAULT_OBUF_SOFT_S,
    );
    for w in words.chunks(4) {
        let class = w[0].to_ascii_lowercase();
        if !matches!(class.as_str(), "normal" | "replica" | "slave" | "pubsub") {
            return Err("Invalid client class specified in buffer limit configuration.".into());
        }
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory(w[1]).map_err(|_| bad())?;
        let soft = parse_memory(w[2]).map_err(|_| bad())?;
        let secs = w[3].parse::<u64>().map_err(|_| bad())?;
        if class == "replica" || class == "slave" {
            replica = (hard, soft, secs);
        }
    }
    Ok(replica)
}

/// Maps Redis log level names (and tracing's own) onto a tracing filter directive.
pub fn tracing_level(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" | "verbose" => "debug",
        "notice" | "info" => "info",
        "warning" | "warn" => "warn",
        "error" => "error",
        "nothing" | "off" => "off",
        _ => return None,
    })
}

/// Parameters that CONFIG SET may change at run time.
#[derive(Debug)]
pub struct LiveConfig {
    pub requirepass: RwLock<Option<String>>,
    pub maxclients: AtomicU64,
    pub hz: AtomicU64,
    pub sweeper_cpu_percent: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    pub client_query_buffer_limit: AtomicU64,
    /// DEBUG SET-ACTIVE-EXPIRE: whether the sweeper runs.
    pub active_expire: AtomicBool,
    /// Snapshot points (`save`).
    pub save_points: RwLock<Vec<(u64, u64)>>,
    /// Where snapshots go (`dir`, made absolute at start-up, and `dbfilename`).
    pub dir: RwLock<PathBuf>,
    pub dbfilename: RwLock<String>,
    pub rdbcompression: AtomicBool,
    pub rdbchecksum: AtomicBool,
    pub aof_use_rdb_preamble: AtomicBool,
    pub auto_aof_rewrite_percentage: AtomicU64,
    pub auto_aof_rewrite_min_size: AtomicU64,
    /// Refuse non-loopback clients while the default user has no password.
    pub protected_mode: AtomicBool,
    pub tcp_keepalive: AtomicU64,
    /// Idle seconds after which a client is closed (0: never).
    pub timeout: AtomicU64,
    pub stop_writes_on_bgsave_error: AtomicBool,
    pub lazyfree_lazy_user_del: AtomicBool,
    pub lazyfree_lazy_user_flush: AtomicBool,
    /// The start-up configuration (read-only values such as port and databases).
    pub startup: Config,
}

impl LiveConfig {
    pub fn new(cfg: &Config) -> Self {
        LiveConfig {
            requirepass: RwLock::new(cfg.requirepass.clone()),
            maxclients: AtomicU64::new(cfg.maxclients),
            hz: AtomicU64::new(cfg.hz),
            sweeper_cpu_percent: AtomicU64::new(cfg.sweeper_cpu_percent),
            proto_max_bulk_len: AtomicU64::new(cfg.proto_max_bulk_len),
            client_query_buffer_limit: AtomicU64::new(cfg.client_query_buffer_limit),
            active_expire: AtomicBool::new(true),
            save_points: RwLock::new(parse_save(&cfg.save).unwrap_or_default()),
            dir: RwLock::new(
                std::path::absolute(&cfg.dir).unwrap_or_else(|_| PathBuf::from(&cfg.dir)),
            ),
            dbfilename: RwLock::new(cfg.dbfilename.clone()),
            rdbcompression: AtomicBool::new(cfg.rdbcompression),
            rdbchecksum: AtomicBool::new(cfg.rdbchecksum),
            aof_use_rdb_preamble: AtomicBool::new(cfg.aof_use_rdb_preamble),
            auto_aof_rewrite_percentage: AtomicU64::new(cfg.auto_aof_rewrite_percentage),
            auto_aof_rewrite_min_size: AtomicU64::new(cfg.auto_aof_rewrite_min_size),
            protected_mode: AtomicBool::new(cfg.protected_mode),
            tcp_keepalive: AtomicU64::new(cfg.tcp_keepalive),
            timeout: AtomicU64::new(cfg.timeout),
            stop_writes_on_bgsave_error: AtomicBool::new(cfg.stop_writes_on_bgsave_error),
            lazyfree_lazy_user_del: AtomicBool::new(cfg.lazyfree_lazy_user_del),
            lazyfree_lazy_user_flush: AtomicBool::new(cfg.lazyfree_lazy_user_flush),
            startup: cfg.clone(),
        }
    }

    /// The snapshot file's path.
    pub fn rdb_path(&self) -> PathBuf {
        self.dir.read().join(&*self.dbfilename.read())
    }

    pub fn get(&self, v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::load(&Cli::default()).unwrap();
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, vec!["127.0.0.1".to_string()]);
        assert_eq!(c.databases, 16);
        assert_eq!(c.maxclients, 10_000);
        assert_eq!(c.requirepass, None);
    }

    #[test]
    fn flags_override_file() {
        let mut cfg = Config::from_toml("port = 7000\nhash_max_listpack_entries = 8\n").unwrap();
        assert_eq!(cfg.port, 7000);
        assert_eq!(cfg.hash_max_listpack_entries, 8);
        let cli = Cli::try_parse_from(["hashd", "--port", "7001", "--requirepass", "pw"]).unwrap();
        cfg.apply_cli(&cli);
        assert_eq!(cfg.port, 7001);
        assert_eq!(cfg.requirepass.as_deref(), Some("pw"));
    }

    #[test]
    fn bad_values_name_the_option() {
        let err = Config::from_toml("port = \"x\"").unwrap_err();
        assert!(
            err.contains("port") || err.contains("invalid type"),
            "{err}"
        );
        let err = Config::from_toml("nosuch = 1").unwrap_err();
        assert!(err.contains("nosuch"), "{err}");
        let cfg = Config {
            hz: 0,
            ..Config::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("'hz'"));
    }

    #[test]
    fn redis_directives_are_stripped_from_the_command_line() {
        let argv = [
            "hashd",
            "--save",
            "60",
            "1",
            "--appendonly",
            "yes",
            "--port",
            "6380",
            "--maxmemory-clients",
            "0",
        ];
        let (kept, ignored) = strip_ignored_flags(argv.iter().map(Into::into).collect());
        assert_eq!(
            ignored,
            vec![("maxmemory-clients".to_string(), vec!["0".to_string()])]
        );
        assert_eq!(
            check_unimplemented("maxmemory-clients", &ignored[0].1),
            Ok(())
        );
        let cli = Cli::try_parse_from(kept).unwrap();
        assert_eq!(cli.port, Some(6380));
        assert_eq!(cli.appendonly, Some(true));
        assert_eq!(cli.save, Some(vec!["60".to_string(), "1".to_string()]));
        // `--save ''` disables snapshots, as for redis-server.
        let cli = Cli::try_parse_from(["hashd", "--save", "", "--port", "1"]).unwrap();
        let mut cfg = Config::default();
        cfg.apply_cli(&cli);
        assert_eq!(cfg.save, "");
        assert_eq!(cli.port, Some(1));
        let (kept, _) =
            strip_ignored_flags(["hashd", "--nosuch", "x"].iter().map(Into::into).collect());
        assert!(
            Cli::try_parse_from(kept).is_err(),
            "unknown flags are still errors"
        );
    }

    #[test]
    fn unimplemented_settings_pass_only_with_what_hashd_does() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_unimplemented("maxmemory-clients", &v(&["0mb"])),
            Ok(())
        );
        let e = check_unimplemented("maxmemory-clients", &v(&["256mb"])).unwrap_err();
        assert!(
            e.contains("'maxmemory-clients 256mb' is not supported"),
            "{e}"
        );
        assert!(e.contains("(hashd accepts only '0')"), "{e}");
        assert_eq!(
            check_unimplemented("REPLICA-IGNORE-MAXMEMORY", &v(&["Yes"])),
            Ok(())
        );
        assert!(check_unimplemented("replica-ignore-maxmemory", &v(&["no"])).is_err());
        assert!(check_unimplemented("daemonize", &v(&["yes"])).is_err());
        assert_eq!(check_unimplemented("daemonize", &v(&["no"])), Ok(()));
        assert_eq!(
            check_unimplemented("lazyfree-lazy-user-del", &v(&["yes"])),
            Ok(())
        );
        assert_eq!(check_unimplemented("unixsocket", &v(&[""])), Ok(()));
        assert!(check_unimplemented("unixsocket", &v(&["/tmp/redis.sock"])).is_err());
        // Implemented settings are not in the table at all.
        for implemented in [
            "protected-mode",
            "timeout",
            "tcp-keepalive",
            "pidfile",
            "logfile",
            "latency-tracking",
            "latency-tracking-info-percentiles",
        ] {
            assert!(
                unimplemented_directive(implemented).is_none(),
                "{implemented}"
            );
        }
        let e = Config::from_redis_conf("maxmemory-clients 100mb\n").unwrap_err();
        assert!(e.contains("line 1: 'maxmemory-clients 100mb'"), "{e}");
        let cfg = Config::from_redis_conf(
            "maxmemory 100mb\nmaxmemory-policy allkeys-lfu\nmaxmemory-samples 10\n\
             lfu-log-factor 20\nlfu-decay-time 0\nlazyfree-lazy-eviction yes\n",
        )
        .unwrap();
        assert_eq!(cfg.maxmemory, 100 << 20);
        assert_eq!(cfg.maxmemory_policy, "allkeys-lfu");
        assert_eq!(
            (
                cfg.maxmemory_samples,
                cfg.lfu_log_factor,
                cfg.lfu_decay_time
            ),
            (10, 20, 0)
        );
        assert!(cfg.lazyfree_lazy_eviction);
        assert!(cfg.validate().is_ok());
        let cfg =
            Config::from_redis_conf("protected-mode no\ntcp-keepalive 60\ntimeout 5\n").unwrap();
        assert!(!cfg.protected_mode);
        assert_eq!((cfg.tcp_keepalive, cfg.timeout), (60, 5));
    }

    #[test]
    fn latency_tracking_settings_from_files_and_flags() {
        let cfg = Config::from_redis_conf(
            "latency-tracking no\nlatency-tracking-info-percentiles 50 99.99\n",
        )
        .unwrap();
        assert!(!cfg.latency_tracking);
        assert_eq!(cfg.latency_tracking_info_percentiles, "50 99.99");
        let cfg = Config::from_redis_conf("latency-tracking-info-percentiles \"\"\n").unwrap();
        assert_eq!(cfg.latency_tracking_info_percentiles, "");
        assert!(cfg.validate().is_ok());
        let bad = Config::from_redis_conf("latency-tracking-info-percentiles 50 101\n").unwrap();
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("should sit between [0.0,100.0]"), "{e}");
        let cli = Cli::try_parse_from([
            "hashd",
            "--latency-tracking",
            "no",
            "--latency-tracking-info-percentiles",
            "90",
            "99",
        ])
        .unwrap();
        let mut cfg = Config::default();
        cfg.apply_cli(&cli);
        assert!(!cfg.latency_tracking);
        assert_eq!(cfg.latency_tracking_info_percentiles, "90 99");
    }

    #[test]
    fn redis_conf_files() {
        let text = "# a comment\nport 7000\nbind 127.0.0.1 -::1\nrequirepass \"s3cret pw\"\n\
                    save 900 1\nappendonly no\nmaxmemory 0\nproto-max-bulk-len 2mb\n\
                    hash-max-ziplist-entries 128\nlazyfree-lazy-eviction no\n";
        let cfg = Config::from_redis_conf(text).unwrap();
        assert_eq!(cfg.port, 7000);
        assert_eq!(cfg.bind, vec!["127.0.0.1".to_string(), "-::1".to_string()]);
        assert_eq!(cfg.requirepass.as_deref(), Some("s3cret pw"));
        assert_eq!(cfg.proto_max_bulk_len, 2 * 1024 * 1024);
        assert_eq!(cfg.hash_max_listpack_entries, 128);
        assert!(cfg.ignored.is_empty(), "{:?}", cfg.ignored);
        assert_eq!(cfg.maxmemory, 0);
        // A `save` line replaces Redis's default points; lines accumulate; "" clears.
        assert_eq!(cfg.save, "900 1");
        let cfg = Config::from_redis_conf("save 900 1\nsave 300 10\n").unwrap();
        assert_eq!(cfg.save, "900 1 300 10");
        let cfg = Config::from_redis_conf("save 900 1\nsave \"\"\n").unwrap();
        assert_eq!(cfg.save, "");
        assert_eq!(Config::default().save, DEFAULT_SAVE);
        let err = Config::from_redis_conf("port 1\nnosuchthing yes\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("nosuchthing"),
            "{err}"
        );
        assert!(Config::from_redis_conf("port")
            .unwrap_err()
            .contains("wrong number"));
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("512mb"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_memory("1GB"), Ok(1 << 30));
        assert_eq!(parse_memory("1k"), Ok(1000));
        assert_eq!(parse_memory("100"), Ok(100));
        assert!(parse_memory("12xb").is_err());
        assert!(parse_memory("").is_err());
    }

    #[test]
    fn example_config_file_parses_to_defaults() {
        let text = include_str!("../config/hashd.toml");
        let mut cfg = Config::from_toml(text).unwrap();
        cfg.source = Config::default().source;
        assert_eq!(cfg, Config::default());
    }
}
