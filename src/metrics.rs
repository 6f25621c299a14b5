//! A Prometheus endpoint (`--metrics-port`, off by default): `GET /metrics` answers the
//! numbers INFO reports, under the names redis_exporter gives them, so dashboards built for
//! redis_exporter work without running it beside hashd.
//!
//! The numbers are INFO's own: the endpoint runs `INFO everything` through the dispatcher
//! as an internal client and translates the text the way redis_exporter does (gauges and
//! `_total` counters from `key:value` lines, labelled series from the keyspace, commandstats
//! and errorstats lines). HTTP is the least a scraper needs: one request per connection,
//! `Connection: close`.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::context::ServerContext;

/// Serves scrapes on `listener` until the server shuts down.
pub async fn serve(listener: TcpListener, server: Arc<ServerContext>) {
    let mut shutdown = server.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(scrape(stream, Arc::clone(&server)));
            }
            Err(e) => {
                warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn scrape(mut stream: TcpStream, server: Arc<ServerContext>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    // The request line and headers; a scraper sends no body.
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    if !matches!(read, Ok(true)) {
        return;
    }
    let line = req.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body) = if method != b"GET" {
        ("405 Method Not Allowed", "only GET\n".to_string())
    } else if path == b"/metrics" {
        ("200 OK", render(&server))
    } else {
        ("404 Not Found", "see /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if let Err(e) = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await
    }
    .await
    {
        debug!(error = %e, "metrics endpoint: write failed");
    }
}

/// INFO everything, as its text.
fn info_text(server: &ServerContext) -> String {
    let out = crate::cmd::run_internal(server, &[b"INFO", b"everything"]);
    // A RESP2 bulk string: `$<len>\r\n<text>\r\n`.
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split_once("\r\n")
        .map(|(_, rest)| rest.trim_end_matches("\r\n").to_string())
        .unwrap_or_default()
}

/// INFO fields exported as counters (`redis_<name>_total`, redis_exporter's names).
const COUNTERS: &[(&str, &str)] = &[
    ("total_commands_processed", "commands_processed_total"),
    ("total_connections_received", "connections_received_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    ("expired_subkeys", "expired_subkeys_total"),
    ("evicted_keys", "evicted_keys_total"),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("total_error_replies", "total_error_replies"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
];

/// INFO fields exported as gauges.
const GAUGES: &[(&str, &str)] = &[
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("process_id", "process_id"),
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("maxclients", "config_maxclients"),
    ("pubsub_clients", "pubsub_clients"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("maxmemory", "memory_max_bytes"),
    ("instantaneous_ops_per_sec", "instantaneous_ops_per_sec"),
    ("instantaneous_input_kbps", "instantaneous_input_kbps"),
    ("instantaneous_output_kbps", "instantaneous_output_kbps"),
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("loading", "loading_dump_file"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("connected_slaves", "connected_slaves"),
    ("master_repl_offset", "master_repl_offset"),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("master_last_io_seconds_ago", "master_last_io_seconds_ago"),
    ("master_sync_in_progress", "master_sync_in_progress"),
];

/// The exposition text: every number of INFO everything that redis_exporter exports.
pub fn render(server: &ServerContext) -> String {
    use std::fmt::Write;
    let text = info_text(server);
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, labels: &str, value: &str| {
        let _ = writeln!(out, "# TYPE redis_{name} {kind}");
        let _ = writeln!(out, "redis_{name}{labels} {value}");
    };
    put("up", "gauge", "", "1");
    let mut info = Vec::new();
    let mut db_lines = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if let Some((_, metric)) = COUNTERS.iter().find(|(k, _)| *k == key) {
            put(metric, "counter", "", value);
        } else if let Some((_, metric)) = GAUGES.iter().find(|(k, _)| *k == key) {
            put(metric, "gauge", "", value);
        }
        match key {
            "redis_version" | "redis_mode" | "os" | "arch_bits" | "run_id" | "tcp_port"
            | "process_id" => info.push((key, value)),
            "role" => {
                info.push((key, value));
                // redis_exporter's 1/0 per role.
                put(
                    "instance_role_master",
                    "gauge",
                    "",
                    if value == "master" { "1" } else { "0" },
                );
            }
            "master_link_status" => put(
                "master_link_up",
                "gauge",
                "",
                if value == "up" { "1" } else { "0" },
            ),
            "rdb_last_bgsave_status" => put(
                "rdb_last_bgsave_status",
                "gauge",
                "",
                if value == "ok" { "1" } else { "0" },
            ),
            _ => {}
        }
        if let Some(db) = key.strip_prefix("db").filter(|d| d.parse::<u32>().is_ok()) {
            db_lines.push((format!("db{db}"), value.to_string()));
        }
    }
    let labels = info
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",");
    put("instance_info", "gauge", &format!("{{{labels}}}"), "1");
    for (db, fields) in &db_lines {
        for kv in fields.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let label = format!("{{db=\"{db}\"}}");
            match k {
                "keys" => put("db_keys", "gauge", &label, v),
                "expires" => put("db_keys_expiring", "gauge", &label, v),
                "avg_ttl" => {
                    let secs = v.parse::<f64>().unwrap_or(0.0) / 1000.0;
                    put("db_avg_ttl_seconds", "gauge", &label, &secs.to_string());
                }
                _ => {}
            }
        }
    }
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cmdstat_") {
            let Some((cmd, fields)) = rest.split_once(':') else {
                continue;
            };
            let label = format!("{{cmd=\"{}\"}}", escape(cmd));
            for kv in fields.split(',') {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                match k {
                    "calls" => put("commands_total", "counter", &label, v),
                    "usec" => {
                        let secs = v.parse::<f64>().unwrap_or(0.0) / 1e6;
                        put(
                            "commands_duration_seconds_total",
                            "counter",
                            &label,
                            &secs.to_string(),
                        );
                    }
                    "rejected_calls" => put("commands_rejected_calls_total", "counter", &label, v),
                    "failed_calls" => put("commands_failed_calls_total", "counter", &label, v),
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("errorstat_") {
            let Some((code, count)) = rest.split_once(":count=") else {
                continue;
            };
            let label = format!("{{err=\"{}\"}}", escape(code));
            put("errors_total", "counter", &label, count);
        }
    }
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_numbers_under_redis_exporter_names() {
        let server = ServerContext::for_tests(1_700_000_000_000);
        let mut client = crate::client::ClientState::for_tests();
        let mut out = Vec::new();
        for cmd in [
            &["HSET", "k", "f", "v"][..],
            &["HGET", "k", "f"],
            &["NOSUCH"],
        ] {
            let owned = crate::cmd::OwnedArgs::from_slices(cmd);
            crate::cmd::dispatch(&server, &mut client, owned.as_args(), &mut out);
        }
        server.commands.flush(&mut client.stats);
        let text = render(&server);
        for expected in [
            "redis_up 1\n",
            "# TYPE redis_keyspace_hits_total counter\nredis_keyspace_hits_total 1\n",
            "redis_db_keys{db=\"db0\"} 1\n",
            "redis_commands_total{cmd=\"hset\"} 1\n",
            "redis_errors_total{err=\"ERR\"} 1\n",
            "redis_instance_role_master 1\n",
            "redis_instance_info{redis_version=\"8.0.0\",",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
