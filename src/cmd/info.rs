//! INFO [section [section ...]]
//!
//! Redis's `key:value` report (spec §14), which clients parse: ioredis reads `loading` on
//! every connect, StackExchange.Redis reads `redis_version`, `redis_mode`, `role` and
//! `run_id`, test suites read `redis_version`, `arch_bits`, `cluster_enabled` and the
//! expiry counters. Lines hashd cannot measure are left out rather than made up, except
//! where a fixed value is the truth (no persistence, no replicas, no modules).
//!
//! Counters monitoring reads are measured as Redis measures them (tests/info_fidelity.rs
//! runs the same commands on Redis 7.4.1): `keyspace_hits`/`keyspace_misses` count the key
//! lookups of read commands (per lock set, in a held shard's counters), error replies are
//! counted by code (`total_error_replies`, `# Errorstats`), the network counters are the
//! bytes read from and written to clients, `instantaneous_*` are the mean of 16 samples
//! taken every 100 ms, and `avg_ttl` is the exact mean time left of the keys with a TTL
//! (Redis's is a running estimate).
//!
//! hashd adds three lines to `# Stats` about its background sweeper:
//! `expired_subkeys_lag_ms` (how overdue the oldest deadline was at the last sweep),
//! `expired_subkeys_max_lag_ms` (the worst seen) and `expire_cycles`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::connection::REDIS_VERSION;
use super::{flags, Args, Command, Ctx};
use crate::context::ServerContext;
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("info", -1, info)
    // Every shard is held so that `# Keyspace` can count keys even inside EXEC.
    .flags(flags::LOADING | flags::STALE)
    .acl(&["dangerous"])
    .doc(
        "server",
        "1.0.0",
        "Returns information and statistics about the server.",
        "O(1)",
        "[section [section ...]]",
    )];

/// Sections in output order. `default` is every one but `modules`-generated ones, which
/// hashd has none of; `all` and `everything` are therefore the same.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "keysizes",
];

/// Which sections a request asks for.
struct Selection {
    /// The default sections (INFO, INFO default).
    default: bool,
    /// Every section (INFO all / everything): the default ones, commandstats and
    /// latencystats.
    all: bool,
    names: Vec<String>,
}

/// Sections only `all` and `everything` (or their own name) bring, as in Redis.
const NOT_DEFAULT: &[&str] = &["commandstats", "latencystats", "keysizes"];

impl Selection {
    fn parse(args: Args<'_>) -> Self {
        if args.len() == 1 {
            return Selection {
                default: true,
                all: false,
                names: Vec::new(),
            };
        }
        let mut sel = Selection {
            default: false,
            all: false,
            names: Vec::new(),
        };
        for a in args.from(1) {
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            match name.as_str() {
                "all" | "everything" => sel.all = true,
                "default" => sel.default = true,
                // Redis lists loaded modules under either name.
                "modules" => sel.names.push("module_list".into()),
                _ => sel.names.push(name),
            }
        }
        sel
    }

    fn wants(&self, section: &str) -> bool {
        self.all
            || (self.default && !NOT_DEFAULT.contains(&section))
            || self.names.iter().any(|n| n == section)
    }
}

/// INFO [section [section ...]]
fn info(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let sel = Selection::parse(args);
    let mut out = String::new();
    for &section in SECTIONS {
        if !sel.wants(section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        match section {
            "server" => server(ctx, &mut out),
            "clients" => clients(ctx, &mut out),
            "memory" => memory(ctx.server, &mut out),
            "persistence" => persistence(ctx, &mut out),
            "stats" => stats(ctx.server, &mut out),
            "replication" => {
                replication(ctx, &mut out);
                // kvrocks-controller picks the failover candidate by this (Kvrocks's name
                // for the replication offset); only in cluster mode, where it manages nodes.
                if ctx.server.cluster.enabled {
                    out.push_str(&format!("sequence:{}\r\n", ctx.server.replication.offset()));
                }
            }
            "cpu" => cpu(&mut out),
            "module_list" => out.push_str("# Modules\r\n"),
            "commandstats" => commandstats(ctx, &mut out),
            "errorstats" => errorstats(ctx.server, &mut out),
            "latencystats" => latencystats(ctx, &mut out),
            "cluster" => out.push_str(if ctx.server.cluster.enabled {
                "# Cluster\r\ncluster_enabled:1\r\n"
            } else {
                "# Cluster\r\ncluster_enabled:0\r\n"
            }),
            "keyspace" => keyspace(ctx, &mut out),
            "keysizes" => keysizes(ctx, &mut out),
            _ => {}
        }
    }
    reply.verbatim(out.as_bytes());
    Ok(())
}

/// Appends `key:value\r\n`.
fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "{key}:{value}\r\n");
}

fn server(ctx: &Ctx<'_, '_>, out: &mut String) {
    let s = ctx.server;
    let uptime_s = ctx.now_ms.saturating_sub(s.started_ms) / 1000;
    let hz = s.config.hz.load(Ordering::Relaxed);
    out.push_str("# Server\r\n");
    line(out, "redis_version", REDIS_VERSION);
    line(out, "hashd_version", env!("CARGO_PKG_VERSION"));
    line(out, "redis_git_sha1", "00000000");
    line(out, "redis_git_dirty", 0);
    line(out, "redis_mode", "standalone");
    line(out, "os", os_name());
    line(out, "arch_bits", usize::BITS);
    line(out, "multiplexing_api", multiplexing_api());
    line(out, "process_id", std::process::id());
    line(out, "process_supervised", "no");
    line(out, "run_id", &s.run_id);
    line(out, "tcp_port", s.port.load(Ordering::Relaxed));
    line(out, "server_time_usec", ctx.now_ms.saturating_mul(1000));
    line(out, "uptime_in_seconds", uptime_s);
    line(out, "uptime_in_days", uptime_s / 86_400);
    line(out, "hz", hz);
    line(out, "configured_hz", hz);
    if let Ok(exe) = std::env::current_exe() {
        line(out, "executable", exe.display());
    }
}

/// `uname -srm`, as Redis prints it, from /proc where there is one.
fn os_name() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    match (
        read("/proc/sys/kernel/ostype"),
        read("/proc/sys/kernel/osrelease"),
    ) {
        (Some(t), Some(r)) => format!("{t} {r} {}", std::env::consts::ARCH),
        _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    }
}

fn multiplexing_api() -> &'static str {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        "epoll"
    } else if cfg!(any(
        target_os = "macos",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )) {
        "kqueue"
    } else {
        "iocp"
    }
}

fn clients(ctx: &Ctx<'_, '_>, out: &mut String) {
    let all = ctx.server.clients.snapshot();
    let watched: Vec<usize> = all
        .iter()
        .map(|c| c.watched.load(Ordering::Relaxed))
        .collect();
    out.push_str("# Clients\r\n");
    line(out, "connected_clients", all.len());
    line(out, "cluster_connections", 0);
    line(
        out,
        "maxclients",
        ctx.server.config.maxclients.load(Ordering::Relaxed),
    );
    line(out, "blocked_clients", 0);
    line(out, "tracking_clients", ctx.server.tracker.counts().0);
    line(out, "pubsub_clients", ctx.server.pubsub.client_count());
    line(
        out,
        "watching_clients",
        watched.iter().filter(|&&w| w > 0).count(),
    );
    line(out, "clients_in_timeout_table", 0);
    line(out, "total_watched_keys", watched.iter().sum::<usize>());
    line(out, "total_blocking_keys", 0);
    line(out, "total_blocking_keys_on_nokey", 0);
}

/// Redis's `bytesToHuman`: B below 1 KiB, then two decimals with K, M, G, T, P.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    if n >= 1 << 60 {
        return format!("{n}B");
    }
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

/// Resident and peak resident memory of this process in bytes (Linux /proc), else zeros.
fn process_memory() -> (u64, u64) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn memory(s: &ServerContext, out: &mut String) {
    // `used_memory` is what the allocator hands out (counted in alloc.rs, as Redis's
    // zmalloc counts), the resident size is the kernel's.
    let (rss, _) = process_memory();
    let used = crate::alloc::allocated() as u64;
    let peak = (crate::alloc::peak() as u64).max(used);
    let startup = s.startup_memory as u64;
    out.push_str("# Memory\r\n");
    line(out, "used_memory", used);
    line(out, "used_memory_human", human_bytes(used));
    line(out, "used_memory_rss", rss);
    line(out, "used_memory_rss_human", human_bytes(rss));
    line(out, "used_memory_peak", peak);
    line(out, "used_memory_peak_human", human_bytes(peak));
    line(
        out,
        "used_memory_peak_perc",
        format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64),
    );
    line(out, "used_memory_startup", startup);
    line(out, "used_memory_dataset", used.saturating_sub(startup));
    let max = s.maxmemory.limit.load(Ordering::Relaxed);
    line(out, "maxmemory", max);
    line(out, "maxmemory_human", human_bytes(max));
    line(out, "maxmemory_policy", s.maxmemory.policy().name());
    line(
        out,
        "lazyfree_pending_objects",
        s.keyspace.lazyfree.pending(),
    );
    line(
        out,
        "mem_fragmentation_ratio",
        format!("{:.2}", rss as f64 / used.max(1) as f64),
    );
    line(out, "mem_fragmentation_bytes", rss as i64 - used as i64);
    line(
        out,
        "mem_not_counted_for_evict",
        s.maxmemory.not_counted_now(s),
    );
    line(out, "mem_allocator", "libc");
}

fn persistence(ctx: &Ctx<'_, '_>, out: &mut String) {
    let s = ctx.server;
    let st = &s.rdb;
    let get = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    let loading = st.loading.load(Ordering::Relaxed);
    out.push_str("# Persistence\r\n");
    line(out, "loading", u8::from(loading));
    line(out, "async_loading", 0);
    if loading {
        let total = get(&st.loading_total_bytes);
        let done = get(&st.loading_loaded_bytes);
        let start = get(&st.loading_started_s);
        let elapsed = (s.clock.now_ms() / 1000).saturating_sub(start);
        let perc = if total == 0 {
            0.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        let eta = if done == 0 {
            1
        } else {
            (total.saturating_sub(done) as f64 / (done as f64 / elapsed.max(1) as f64)) as u64
        };
        line(out, "loading_start_time", start);
        line(out, "loading_total_bytes", total);
        line(out, "loading_rdb_used_mem", 0);
        line(out, "loading_loaded_bytes", done);
        line(out, "loading_loaded_perc", format!("{perc:.2}"));
        line(out, "loading_eta_seconds", eta);
    }
    line(
        out,
        "rdb_changes_since_last_save",
        crate::persist::snapshot::changes_since_save(s),
    );
    line(
        out,
        "rdb_bgsave_in_progress",
        u8::from(st.bgsave_in_progress()),
    );
    line(out, "rdb_last_save_time", get(&st.last_save_s));
    let ok = st.last_bgsave_ok.load(Ordering::Relaxed);
    line(out, "rdb_last_bgsave_status", if ok { "ok" } else { "err" });
    line(
        out,
        "rdb_last_bgsave_time_sec",
        st.last_bgsave_time_s.load(Ordering::Relaxed),
    );
    line(out, "rdb_current_bgsave_time_sec", st.current_bgsave_s());
    line(out, "rdb_saves", get(&st.saves));
    line(
        out,
        "rdb_last_load_keys_expired",
        get(&st.last_load_keys_expired),
    );
    line(
        out,
        "rdb_last_load_keys_loaded",
        get(&st.last_load_keys_loaded),
    );
    let aof = &s.aof;
    let aof_on = aof.enabled();
    let rw = &aof.rewrite;
    line(out, "aof_enabled", u8::from(aof_on));
    line(out, "aof_rewrite_in_progress", u8::from(rw.in_progress()));
    line(
        out,
        "aof_rewrite_scheduled",
        u8::from(rw.scheduled.load(Ordering::Relaxed)),
    );
    line(
        out,
        "aof_last_rewrite_time_sec",
        rw.last_time_s.load(Ordering::Relaxed),
    );
    line(out, "aof_current_rewrite_time_sec", rw.current_s());
    let rw_ok = rw.last_ok.load(Ordering::Relaxed);
    line(
        out,
        "aof_last_bgrewrite_status",
        if rw_ok { "ok" } else { "err" },
    );
    line(out, "aof_rewrites", rw.rewrites.load(Ordering::Relaxed));
    let write_ok = aof.write_ok.load(Ordering::Relaxed);
    line(
        out,
        "aof_last_write_status",
        if write_ok { "ok" } else { "err" },
    );
    if aof_on {
        line(out, "aof_current_size", aof.current_size());
        line(out, "aof_base_size", aof.base_size());
        line(out, "aof_buffer_length", aof.buffered());
        line(
            out,
            "aof_delayed_fsync",
            aof.delayed_fsync.load(Ordering::Relaxed),
        );
    }
}

fn stats(s: &ServerContext, out: &mut String) {
    let st = &s.stats;
    let ks = &s.keyspace.stats;
    let get = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    out.push_str("# Stats\r\n");
    line(
        out,
        "total_connections_received",
        get(&st.total_connections_received),
    );
    line(
        out,
        "total_commands_processed",
        get(&st.total_commands_processed),
    );
    let (ops, input, output) = {
        let i = st.instantaneous.lock();
        (i.mean(0), i.mean(1), i.mean(2))
    };
    line(out, "instantaneous_ops_per_sec", ops.round() as u64);
    line(out, "total_net_input_bytes", get(&st.net_input_bytes));
    line(out, "total_net_output_bytes", get(&st.net_output_bytes));
    line(
        out,
        "instantaneous_input_kbps",
        format!("{:.2}", input / 1024.0),
    );
    line(
        out,
        "instantaneous_output_kbps",
        format!("{:.2}", output / 1024.0),
    );
    line(out, "rejected_connections", get(&st.rejected_connections));
    let rs = &s.replication.stats;
    line(out, "sync_full", get(&rs.sync_full));
    line(out, "sync_partial_ok", get(&rs.sync_partial_ok));
    line(out, "sync_partial_err", get(&rs.sync_partial_err));
    line(out, "expired_keys", get(&ks.expired_keys));
    line(out, "expired_subkeys", get(&ks.expired_subkeys));
    line(
        out,
        "expire_cycle_cpu_milliseconds",
        get(&st.sweeper_busy_us) / 1000,
    );
    line(out, "expired_subkeys_lag_ms", get(&st.sweeper_last_lag_ms));
    line(
        out,
        "expired_subkeys_max_lag_ms",
        get(&st.sweeper_max_lag_ms),
    );
    line(out, "expire_cycles", get(&st.sweeper_cycles));
    line(out, "evicted_keys", get(&ks.evicted_keys));
    line(out, "evicted_clients", 0);
    let (current, total) = s.maxmemory.exceeded_ms();
    line(out, "total_eviction_exceeded_time", total);
    line(out, "current_eviction_exceeded_time", current);
    let (hits, misses) = s.keyspace.lookups();
    line(out, "keyspace_hits", hits);
    line(out, "keyspace_misses", misses);
    line(out, "pubsub_channels", s.pubsub.channel_count());
    line(out, "pubsub_patterns", s.pubsub.numpat());
    line(out, "pubsubshard_channels", 0);
    line(
        out,
        "latest_fork_usec",
        s.latency.latest_fork_usec.load(Ordering::Relaxed),
    );
    line(
        out,
        "total_forks",
        s.latency.total_forks.load(Ordering::Relaxed),
    );
    let (_, keys, items, prefixes) = s.tracker.counts();
    line(out, "tracking_total_keys", keys);
    line(out, "tracking_total_items", items);
    line(out, "tracking_total_prefixes", prefixes);
    line(out, "total_error_replies", st.errors.total());
    line(out, "lazyfreed_objects", s.keyspace.lazyfree.freed());
    let denied = &s.acl.denied;
    line(out, "acl_access_denied_auth", get(&denied.auth));
    line(out, "acl_access_denied_cmd", get(&denied.command));
    line(out, "acl_access_denied_key", get(&denied.key));
    line(out, "acl_access_denied_channel", get(&denied.channel));
}

/// `cmdstat_<name>:calls=…,usec=…,usec_per_call=…,rejected_calls=…,failed_calls=…` for
/// every command (and subcommand, `client|list`) used since the last reset.
fn commandstats(ctx: &mut Ctx<'_, '_>, out: &mut String) {
    // This client's own commands count at once, as in Redis.
    ctx.server.commands.flush(&mut ctx.client.stats);
    out.push_str("# Commandstats\r\n");
    for (i, cmd) in super::table().all.iter().enumerate() {
        let Some(t) = ctx.server.commands.totals(i) else {
            continue;
        };
        if t.calls == 0 && t.rejected == 0 && t.failed == 0 {
            continue;
        }
        let per_call = if t.calls == 0 {
            0.0
        } else {
            t.usec as f64 / t.calls as f64
        };
        line(
            out,
            &format!("cmdstat_{}", cmd.name),
            format!(
                "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                t.calls, t.usec, t.rejected, t.failed
            ),
        );
    }
}

/// `latency_percentiles_usec_<name>:p50=…,p99=…,p99.9=…` for every command (and
/// subcommand) with a latency histogram, in µs with three decimals (Redis's
/// `fillPercentileDistributionLatencies`); only the header with `latency-tracking no`.
fn latencystats(ctx: &mut Ctx<'_, '_>, out: &mut String) {
    let stats = &ctx.server.commands;
    stats.flush(&mut ctx.client.stats);
    out.push_str("# Latencystats\r\n");
    if !stats.latency_tracking.load(Ordering::Relaxed) {
        return;
    }
    let percentiles = stats.info_percentiles();
    let labels: Vec<String> = percentiles
        .iter()
        .map(|&p| crate::cmdstats::format_percentile(p))
        .collect();
    for (i, cmd) in super::table().all.iter().enumerate() {
        let values = stats.with_histogram(i, |h| {
            percentiles
                .iter()
                .map(|&p| crate::cmdstats::value_at_percentile(h, p))
                .collect::<Vec<u64>>()
        });
        let Some(values) = values else {
            continue;
        };
        let _ = write!(out, "latency_percentiles_usec_{}:", cmd.name);
        for (j, (label, v)) in labels.iter().zip(values).enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "p{label}={:.3}", v as f64 / 1000.0);
        }
        out.push_str("\r\n");
    }
}

fn errorstats(s: &ServerContext, out: &mut String) {
    out.push_str("# Errorstats\r\n");
    for (code, n) in s.stats.errors.by_code() {
        line(
            out,
            &format!("errorstat_{}", String::from_utf8_lossy(&code)),
            format!("count={n}"),
        );
    }
}

/// CONFIG RESETSTAT: zeroes the counters INFO stats reports.
pub fn reset_stats(s: &ServerContext) {
    let st = &s.stats;
    for v in [
        &st.total_connections_received,
        &st.total_commands_processed,
        &st.rejected_connections,
        &st.sweeper_cycles,
        &st.sweeper_busy_us,
        &st.sweeper_max_lag_ms,
        &st.net_input_bytes,
        &st.net_output_bytes,
        &s.keyspace.stats.expired_keys,
        &s.keyspace.stats.expired_subkeys,
        &s.keyspace.stats.evicted_keys,
        &s.latency.total_forks,
        &s.latency.latest_fork_usec,
        &s.replication.stats.sync_full,
        &s.replication.stats.sync_partial_ok,
        &s.replication.stats.sync_partial_err,
    ] {
        v.store(0, Ordering::Relaxed);
    }
    s.keyspace.reset_lookups();
    s.commands.reset();
    st.errors.reset();
    s.keyspace.lazyfree.reset_stats();
    s.maxmemory.reset_stats();
}

fn replication(ctx: &Ctx<'_, '_>, out: &mut String) {
    out.push_str("# Replication\r\n");
    ctx.server.replication.info(out);
}

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ, fixed at 100 on Linux).
const PROC_TICKS_PER_SECOND: u64 = 100;

/// (user, system) CPU seconds of this process, from /proc/self/stat; zeros elsewhere.
fn process_cpu() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // The command name is in parentheses and may contain spaces; fields follow the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (0.0, 0.0);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' come field 3 (state) onwards; utime and stime are fields 14 and 15.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let secs = |t: u64| t as f64 / PROC_TICKS_PER_SECOND as f64;
    (secs(ticks(11)), secs(ticks(12)))
}

fn cpu(out: &mut String) {
    let (user, sys) = process_cpu();
    out.push_str("# CPU\r\n");
    line(out, "used_cpu_sys", format!("{sys:.6}"));
    line(out, "used_cpu_user", format!("{user:.6}"));
    line(out, "used_cpu_sys_children", "0.000000");
    line(out, "used_cpu_user_children", "0.000000");
}

fn keyspace(ctx: &mut Ctx<'_, '_>, out: &mut String) {
    out.push_str("# Keyspace\r\n");
    for db in 0..ctx.server.keyspace.databases() {
        let s = ctx.server.keyspace.db_summary(db);
        let (keys, expires, subexpiry) = (s.keys, s.key_ttls, s.field_ttl_hashes);
        if keys > 0 {
            // Exact (to 16 ms a key) where Redis's is a running estimate from its expiry
            // cycle's samples, which starts at 0 and approaches the mean over many cycles.
            let avg_ttl = s.avg_ttl_ms(ctx.now_ms);
            let _ = write!(
                out,
                "db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl},subexpiry={subexpiry}\r\n"
            );
        }
    }
}

/// Redis 8.2's `# Keysizes`: per database with hashes, how many hold how many fields
/// (stored ones, expired ones not yet reclaimed included, as Redis counts), by power of
/// two: `db0_distrib_hashes_items:1=3,2=1,4=7,1K=2`.
fn keysizes(ctx: &mut Ctx<'_, '_>, out: &mut String) {
    out.push_str("# Keysizes\r\n");
    for db in 0..ctx.server.keyspace.databases() {
        if ctx.server.keyspace.db_summary(db).keys == 0 {
            continue;
        }
        let bins = ctx.locked.size_histogram(db);
        let shown: Vec<String> = bins
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(b, n)| {
                let low = if b == 0 { 0 } else { 1u64 << (b - 1) };
                format!("{}={n}", power_of_two_label(low))
            })
            .collect();
        if !shown.is_empty() {
            let _ = write!(out, "db{db}_distrib_hashes_items:{}\r\n", shown.join(","));
        }
    }
}

/// `512`, `1K`, `2M`…: a power of two in Redis's keysizes notation (units of 1024).
fn power_of_two_label(n: u64) -> String {
    const UNITS: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024 && unit + 1 < UNITS.len() {
        v /= 1024;
        unit += 1;
    }
    format!("{v}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::TestEnv;
    use crate::keyspace::{LockPlan, TtlUpdate};

    /// INFO keysizes without its header, lines joined by spaces.
    fn hist(env: &mut TestEnv) -> String {
        let text = payload(&env.run("INFO keysizes"));
        let body = text
            .strip_prefix("# Keysizes\r\n")
            .unwrap_or_else(|| panic!("{text:?}"));
        body.split("\r\n")
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Redis's `info-keysizes.tcl` hash cases, in both encodings: each step's histogram.
    #[test]
    fn keysizes_follow_every_hash_write_as_redis_8() {
        for entries in ["512", "0"] {
            let mut env = TestEnv::new();
            env.run(&format!("CONFIG SET hash-max-listpack-entries {entries}"));
            let h = "db0_distrib_hashes_items";
            let steps: &[(&str, String)] = &[
                ("FLUSHALL", String::new()),
                ("HSETNX h1 1 1", format!("{h}:1=1")),
                ("HSETNX h1 2 2", format!("{h}:2=1")),
                ("FLUSHALL", String::new()),
                ("HSET h2 1 1", format!("{h}:1=1")),
                ("HSET h2 2 2", format!("{h}:2=1")),
                ("HDEL h2 1", format!("{h}:1=1")),
                ("HDEL h2 2", String::new()),
                ("HSET h2 1 1 2 2", format!("{h}:2=1")),
                ("HDEL h2 1 2", String::new()),
                ("HSETEX h2 FIELDS 1 1 1", format!("{h}:1=1")),
                ("HSETEX h2 FIELDS 1 2 2", format!("{h}:2=1")),
                ("HGETDEL h2 FIELDS 1 1", format!("{h}:1=1")),
                ("HGETDEL h2 FIELDS 1 3", format!("{h}:1=1")),
                ("HGETDEL h2 FIELDS 1 2", String::new()),
                ("HSETEX h1 FIELDS 2 f1 1 f2 1", format!("{h}:2=1")),
                ("HGETEX h1 PXAT 1 FIELDS 1 f1", format!("{h}:1=1")),
                ("HSETEX h1 FIELDS 1 f3 1", format!("{h}:2=1")),
                ("HMSET h3 1 1 2 2 3 3", format!("{h}:2=2")),
                ("HMSET h3 1 1 2 2 3 3 4 4", format!("{h}:2=1,4=1")),
                ("HINCRBY h4 f1 10", format!("{h}:1=1,2=1,4=1")),
                ("HINCRBYFLOAT h4 f2 1.5", format!("{h}:2=2,4=1")),
                ("RENAME h4 h5", format!("{h}:2=2,4=1")),
                ("SELECT 1", format!("{h}:2=2,4=1")),
                (
                    "HSET d1 a 1",
                    format!("{h}:2=2,4=1 db1_distrib_hashes_items:1=1"),
                ),
                (
                    "SWAPDB 0 1",
                    format!("{h}:1=1 db1_distrib_hashes_items:2=2,4=1"),
                ),
                ("FLUSHDB", format!("{h}:1=1")),
                ("FLUSHALL", String::new()),
            ];
            for (cmd, want) in steps {
                env.run(cmd);
                assert_eq!(&hist(&mut env), want, "after {cmd} (entries {entries})");
            }
            env.run("SELECT 0");
            // Lazy expiry: the count drops when the expired field is reclaimed.
            env.run("HSET big f0 v");
            for i in 1..1500 {
                env.run(&format!("HSET big f{i} v"));
            }
            assert_eq!(hist(&mut env), format!("{h}:1K=1"));
            env.run("HSET e a 1 b 2");
            env.run("HPEXPIRE e 10 FIELDS 1 a");
            assert_eq!(hist(&mut env), format!("{h}:2=1,1K=1"));
            env.advance_ms(20);
            assert_eq!(
                hist(&mut env),
                format!("{h}:2=1,1K=1"),
                "stored until reclaimed"
            );
            env.run("HGET e b");
            assert_eq!(hist(&mut env), format!("{h}:1=1,1K=1"));
            env.run("DEL big");
            assert_eq!(hist(&mut env), format!("{h}:1=1"));
            // Inside EXEC, with the key's shard held.
            env.run("MULTI");
            env.run("HSET e c 3");
            env.run("INFO keysizes");
            let exec = env.run("EXEC");
            assert!(exec.contains(&format!("{h}:2=1")), "{exec}");
            env.server.keyspace.check_invariants().unwrap();
        }
        assert_eq!(power_of_two_label(512), "512");
        assert_eq!(power_of_two_label(1 << 20), "1M");
        assert_eq!(power_of_two_label(1 << 30), "1G");
    }

    /// The text of a RESP2 bulk reply.
    fn payload(reply: &str) -> String {
        let (head, rest) = reply.split_once("\r\n").unwrap();
        let len: usize = head[1..].parse().unwrap();
        assert_eq!(rest.len(), len + 2, "{reply:?}");
        assert!(rest.ends_with("\r\n"));
        rest[..len].to_string()
    }

    fn headers(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.starts_with("# ")).collect()
    }

    /// Writes a hash straight into the keyspace (hash commands live in other files).
    fn put(env: &TestEnv, db: usize, key: &str, field_ttl: Option<u64>, key_ttl: Option<u64>) {
        let now = env.now_ms();
        let mut locked = env.server.keyspace.lock(&LockPlan::All);
        let mut view = locked.db(db);
        {
            let mut h = view.get_or_create(key.as_bytes(), now);
            let ttl = field_ttl.map_or(TtlUpdate::Clear, TtlUpdate::Set);
            h.set(b"f", b"v", ttl);
            h.set(b"g", b"v", TtlUpdate::Clear);
        }
        if let Some(t) = key_ttl {
            view.set_key_deadline(key.as_bytes(), Some(t), now);
        }
    }

    #[test]
    fn keyspace_section_exact() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("INFO keyspace"), "$12\r\n# Keyspace\r\n\r\n");
        let now = env.now_ms();
        put(&env, 0, "a", Some(now + 10_000), None);
        put(&env, 0, "b", None, Some(now + 10_000));
        put(&env, 0, "c", None, None);
        put(&env, 3, "x", None, None);
        // avg_ttl: the one key with a TTL has 10 s left.
        let text = "# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=10000,subexpiry=1\r\n\
                    db3:keys=1,expires=0,avg_ttl=0,subexpiry=0\r\n";
        assert_eq!(
            env.run("INFO keyspace"),
            format!("${}\r\n{text}\r\n", text.len())
        );
        env.resp3();
        assert_eq!(
            env.run("info KEYSPACE"),
            format!("={}\r\ntxt:{text}\r\n", text.len() + 4)
        );
    }

    #[test]
    fn keyspace_inside_exec_does_not_deadlock() {
        let mut env = TestEnv::new();
        put(&env, 0, "k", None, None);
        env.run("WATCH k");
        env.run("MULTI");
        env.run("INFO keyspace");
        let reply = env.run("EXEC");
        assert!(
            reply.contains("db0:keys=1,expires=0,avg_ttl=0,subexpiry=0"),
            "{reply}"
        );
    }

    #[test]
    fn fixed_sections_exact() {
        let mut env = TestEnv::new();
        assert_eq!(
            payload(&env.run("INFO cluster")),
            "# Cluster\r\ncluster_enabled:0\r\n"
        );
        assert_eq!(payload(&env.run("INFO errorstats")), "# Errorstats\r\n");
        assert_eq!(payload(&env.run("INFO modules")), "# Modules\r\n");
        assert_eq!(payload(&env.run("INFO module_list")), "# Modules\r\n");
        let replid = env.server.replication.replid();
        assert_eq!(
            payload(&env.run("INFO replication")),
            format!(
                "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\
                 master_failover_state:no-failover\r\nmaster_replid:{replid}\r\n\
                 master_replid2:0000000000000000000000000000000000000000\r\n\
                 master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n\
                 repl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\n\
                 repl_backlog_histlen:0\r\n"
            )
        );
        let started = env.server.started_ms / 1000;
        assert_eq!(
            payload(&env.run("INFO persistence")),
            format!(
                "# Persistence\r\nloading:0\r\nasync_loading:0\r\n\
                 rdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\n\
                 rdb_last_save_time:{started}\r\nrdb_last_bgsave_status:ok\r\n\
                 rdb_last_bgsave_time_sec:-1\r\nrdb_current_bgsave_time_sec:-1\r\n\
                 rdb_saves:0\r\nrdb_last_load_keys_expired:0\r\n\
                 rdb_last_load_keys_loaded:0\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n\
                 aof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\n\
                 aof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\n\
                 aof_rewrites:0\r\naof_last_write_status:ok\r\n"
            )
        );
    }

    #[test]
    fn default_all_and_everything() {
        let mut env = TestEnv::new();
        let all_headers = vec![
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace",
        ];
        // `all` and `everything` add commandstats, latencystats and (Redis 8.2) keysizes.
        let mut with_commandstats = all_headers.clone();
        with_commandstats.insert(8, "# Commandstats");
        with_commandstats.insert(10, "# Latencystats");
        with_commandstats.push("# Keysizes");
        for cmd in ["INFO", "INFO default", "INFO all", "INFO EVERYTHING"] {
            let text = payload(&env.run(cmd));
            let expected = if cmd.ends_with("all") || cmd.ends_with("EVERYTHING") {
                &with_commandstats
            } else {
                &all_headers
            };
            assert_eq!(&headers(&text), expected, "{cmd}");
            // Sections are separated by one blank line, and the text ends with a line.
            assert_eq!(text.matches("\r\n\r\n").count(), expected.len() - 1);
            assert!(text.starts_with("# Server\r\nredis_version:8.0.0\r\n"));
            assert!(text.ends_with("# Keyspace\r\n") || text.ends_with("# Keysizes\r\n"));
        }
    }

    #[test]
    fn sections_are_case_insensitive_ordered_and_unknown_ones_ignored() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("INFO nosuch"), "$0\r\n\r\n");
        env.resp3();
        assert_eq!(env.run("INFO nosuch"), "=4\r\ntxt:\r\n");
        env.client.set_protocol(crate::protocol::Protocol::Resp2);
        let text = payload(&env.run("INFO Keyspace nosuch CLUSTER server"));
        // Output follows Redis's section order, not the request's.
        assert_eq!(headers(&text), vec!["# Server", "# Cluster", "# Keyspace"]);
        // Asking twice prints once.
        let text = payload(&env.run("INFO cluster cluster"));
        assert_eq!(text, "# Cluster\r\ncluster_enabled:0\r\n");
    }

    #[test]
    fn server_section_fields() {
        let mut env = TestEnv::new();
        env.advance_ms(90_061_000);
        let text = payload(&env.run("INFO server"));
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:")))
                .unwrap_or_else(|| panic!("{k} missing in {text}"))
                .to_string()
        };
        assert_eq!(get("redis_version"), "8.0.0");
        assert_eq!(get("hashd_version"), env!("CARGO_PKG_VERSION"));
        assert_eq!(get("redis_mode"), "standalone");
        assert_eq!(get("arch_bits"), "64");
        assert_eq!(get("run_id"), env.server.run_id);
        assert_eq!(get("run_id").len(), 40);
        assert_eq!(get("tcp_port"), "6379");
        assert_eq!(get("uptime_in_seconds"), "90061");
        assert_eq!(get("uptime_in_days"), "1");
        assert_eq!(get("hz"), "10");
        assert_eq!(get("process_id"), std::process::id().to_string());
        assert_eq!(get("server_time_usec"), (env.now_ms() * 1000).to_string());
        // Every line is key:value.
        for l in text.lines().skip(1) {
            assert!(l.contains(':'), "{l}");
        }
    }

    #[test]
    fn stats_counters_and_sweeper_lines() {
        let mut env = TestEnv::new();
        env.server
            .keyspace
            .stats
            .expired_subkeys
            .store(5, Ordering::Relaxed);
        env.server
            .keyspace
            .stats
            .expired_keys
            .store(2, Ordering::Relaxed);
        env.server
            .stats
            .sweeper_busy_us
            .store(12_345, Ordering::Relaxed);
        env.server
            .stats
            .sweeper_last_lag_ms
            .store(7, Ordering::Relaxed);
        let text = payload(&env.run("INFO stats"));
        for expected in [
            "expired_keys:2\r\n",
            "expired_subkeys:5\r\n",
            "expire_cycle_cpu_milliseconds:12\r\n",
            "expired_subkeys_lag_ms:7\r\n",
            "keyspace_hits:0\r\n",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        // INFO itself counts as processed.
        assert!(text.contains("total_commands_processed:1\r\n"), "{text}");
        reset_stats(&env.server);
        let text = payload(&env.run("INFO stats"));
        assert!(text.contains("expired_subkeys:0\r\n"));
        assert!(text.contains("expired_keys:0\r\n"));
    }

    /// `expired_subkeys` counts each reclaimed field once, whichever path reclaims it —
    /// lazily (a write to the hash) or actively (the sweeper) — and a field reported
    /// expired but still stored is not counted until it is reclaimed. Redis 7.4.1 counts
    /// the same way, and a hash emptied by field expiry is not an expired key there either.
    #[test]
    fn expired_subkeys_counts_each_reclaimed_field_once() {
        let mut env = TestEnv::new();
        let stat = |env: &mut TestEnv, name: &str| -> String {
            let text = payload(&env.run("INFO stats"));
            let at = text.find(&format!("\r\n{name}:")).expect(name) + name.len() + 3;
            text[at..].split("\r\n").next().unwrap().to_string()
        };
        // Lazy: a read sees the fields gone but leaves them stored; the write reclaims them.
        env.run("HSET lazy a 1 b 2 c 3");
        env.run("HPEXPIRE lazy 10 FIELDS 2 a b");
        env.advance_ms(11);
        assert_eq!(env.run("HTTL lazy FIELDS 2 a b"), "*2\r\n:-2\r\n:-2\r\n");
        assert_eq!(stat(&mut env, "expired_subkeys"), "0");
        assert_eq!(env.run("HSET lazy d 4"), ":1\r\n");
        assert_eq!(stat(&mut env, "expired_subkeys"), "2");
        assert_eq!(env.run("HSET lazy e 5"), ":1\r\n");
        assert_eq!(stat(&mut env, "expired_subkeys"), "2", "counted once");

        // Active: the sweeper reclaims both fields of a hash and the hash with them.
        env.run("HSET active a 1 b 2");
        env.run("HPEXPIRE active 10 FIELDS 2 a b");
        env.advance_ms(11);
        let now = env.now_ms();
        for shard in 0..env.server.keyspace.shards_per_db() {
            env.server.keyspace.sweep_shard(0, shard, now, usize::MAX);
        }
        assert_eq!(stat(&mut env, "expired_subkeys"), "4");
        assert_eq!(env.run("EXISTS active"), ":0\r\n");
        assert_eq!(stat(&mut env, "expired_subkeys"), "4", "counted once");
        assert_eq!(stat(&mut env, "expired_keys"), "0");
    }

    #[test]
    fn clients_section_counts_registered_clients() {
        let mut env = TestEnv::new();
        env.server
            .clients
            .register(std::sync::Arc::clone(&env.client.shared));
        env.run("WATCH a b");
        let text = payload(&env.run("INFO clients"));
        assert!(
            text.starts_with("# Clients\r\nconnected_clients:1\r\n"),
            "{text}"
        );
        assert!(text.contains("maxclients:10000\r\n"));
        assert!(text.contains("watching_clients:1\r\n"));
        assert!(text.contains("total_watched_keys:2\r\n"));
    }

    #[test]
    fn memory_and_cpu_have_redis_formats() {
        let mut env = TestEnv::new();
        let text = payload(&env.run("INFO memory cpu"));
        assert!(text.contains("maxmemory:0\r\nmaxmemory_human:0B\r\n"));
        assert!(text.contains("maxmemory_policy:noeviction\r\n"));
        let cpu = text.split("# CPU\r\n").nth(1).unwrap();
        for l in cpu.lines() {
            let v = l.split_once(':').unwrap().1;
            let (int, frac) = v.split_once('.').unwrap();
            assert!(int.parse::<u64>().is_ok() && frac.len() == 6, "{l}");
        }
    }

    #[test]
    fn human_bytes_matches_redis() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.00K");
        assert_eq!(human_bytes(1_069_547), "1.02M");
        assert_eq!(human_bytes(3 << 30), "3.00G");
        assert_eq!(human_bytes(5 << 40), "5.00T");
    }
}
