//! LATENCY LATEST | HISTORY event | RESET [event ...] | DOCTOR | HISTOGRAM [command ...] | HELP
//!
//! The latency monitor's reports (see `latency.rs`) and the per-command latency
//! histograms (see `cmdstats.rs`), in Redis's reply shapes.

use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

const ADMIN: u32 = flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE;

const SUBCOMMANDS: &[Command] = &[
    Command::new("latency|latest", 2, latest).flags(ADMIN).doc(
        "server",
        "2.8.13",
        "Returns the latest latency samples for all events.",
        "O(1)",
        "",
    ),
    Command::new("latency|history", 3, history)
        .flags(ADMIN)
        .doc(
            "server",
            "2.8.13",
            "Returns timestamp-latency samples for an event.",
            "O(1)",
            "event",
        ),
    Command::new("latency|reset", -2, reset).flags(ADMIN).doc(
        "server",
        "2.8.13",
        "Resets the latency data for one or more events.",
        "O(1)",
        "[event [event ...]]",
    ),
    Command::new("latency|doctor", 2, doctor).flags(ADMIN).doc(
        "server",
        "2.8.13",
        "Returns a human-readable latency analysis report.",
        "O(1)",
        "",
    ),
    Command::new("latency|histogram", -2, histogram)
        .flags(ADMIN)
        .doc(
            "server",
            "7.0.0",
            "Returns the cumulative distribution of latencies of a subset or all commands.",
            "O(N) where N is the number of commands with latency information being retrieved.",
            "[command [command ...]]",
        ),
    Command::new("latency|help", 2, help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "server",
            "2.8.13",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
];

pub const COMMANDS: &[Command] = &[Command::container("latency", SUBCOMMANDS).doc(
    "server",
    "2.8.13",
    "A container for latency diagnostics commands.",
    "Depends on subcommand.",
    "",
)];

fn latest(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let events = ctx.server.latency.latest();
    reply.array(events.len());
    for (name, (time, ms), max) in events {
        reply.array(4);
        reply.bulk(name.as_bytes());
        reply.int(time as i64);
        reply.int(ms as i64);
        reply.int(max as i64);
    }
    Ok(())
}

fn history(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let samples = ctx.server.latency.history(args.get(2));
    reply.array(samples.len());
    for (time, ms) in samples {
        reply.array(2);
        reply.int(time as i64);
        reply.int(ms as i64);
    }
    Ok(())
}

/// LATENCY HISTOGRAM [command ...]: a map of command name → its calls and
/// `histogram_usec` (Redis's `latencyAllCommandsFillCDF` / `latencySpecificCommandsFillCDF`).
/// Only commands with a histogram appear; a container names its subcommands; unknown names
/// are skipped and repeated ones repeated, as in Redis.
fn histogram(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let stats = &ctx.server.commands;
    // This client's own earlier commands count at once, as in Redis.
    stats.flush(&mut ctx.client.stats);
    let table = super::table();
    let wanted: Vec<usize> = if args.len() == 2 {
        (0..table.all.len()).collect()
    } else {
        let mut wanted = Vec::new();
        for name in args.from(2) {
            let Some(i) = lookup_full_name(name) else {
                continue;
            };
            // A container's subcommands follow it in the table.
            wanted.extend(i..=i + table.all[i].subcommands.len());
        }
        wanted
    };
    // (name, calls, histogram_usec)
    type Entry = (&'static str, u64, Vec<(u64, u64)>);
    let entries: Vec<Entry> = wanted
        .into_iter()
        .filter_map(|i| {
            stats
                .with_histogram(i, |h| (h.len(), crate::cmdstats::cdf(h)))
                .map(|(calls, cdf)| (table.all[i].name, calls, cdf))
        })
        .collect();
    reply.map(entries.len());
    for (name, calls, cdf) in entries {
        reply.bulk(name.as_bytes());
        reply.map(2);
        reply.bulk(b"calls");
        reply.int(calls as i64);
        reply.bulk(b"histogram_usec");
        reply.map(cdf.len());
        for (usec, count) in cdf {
            reply.int(usec as i64);
            reply.int(count as i64);
        }
    }
    Ok(())
}

/// Redis's `lookupCommandBySds`: `name` or `container|sub`, any case; its index in the
/// table.
fn lookup_full_name(name: &[u8]) -> Option<usize> {
    let table = super::table();
    let mut parts = name.split(|&b| b == b'|');
    let (i, _) = table.lookup(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(i),
        (Some(sub), None) => table.lookup_sub(i, sub).map(|(j, _)| j),
        _ => None,
    }
}

fn reset(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let names: Vec<&[u8]> = args.from(2).collect();
    reply.int(ctx.server.latency.reset(&names) as i64);
    Ok(())
}

/// Redis's report (`createLatencyReport`): a line per event with its statistics, then
/// the advice that fits the events seen. Only the events hashd produces have advice here.
fn doctor(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    use std::sync::atomic::Ordering;
    let server = ctx.server;
    let m = &server.latency;
    let threshold = m.threshold_ms.load(Ordering::Relaxed);
    let events = m.all();
    if events.is_empty() && threshold == 0 {
        reply.verbatim(DISABLED.as_bytes());
        return Ok(());
    }
    let now_s = server.clock.now_ms() / 1000;
    let slower_than = server.commands.slower_than_us.load(Ordering::Relaxed);
    let mut advice = Advice::default();
    let mut text = String::new();
    for (i, (name, series)) in events.iter().enumerate() {
        if i == 0 {
            text.push_str(
                "Dave, I have observed latency spikes in this Redis instance. \
                 You don't mind talking about it, do you Dave?\n\n",
            );
        }
        let st = Stats::of(series, now_s);
        text.push_str(&format!(
            "{}. {name}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). \
             Worst all time event {}ms.",
            i + 1,
            st.samples,
            st.avg,
            st.mad,
            st.period as f64 / st.samples.max(1) as f64,
            series.max_ms
        ));
        match *name {
            "fork" => {
                let rate = m.fork_rate_gb_per_s();
                let quality = match rate {
                    r if r < 10.0 => "terrible",
                    r if r < 25.0 => "poor",
                    r if r < 100.0 => "good",
                    _ => "excellent",
                };
                advice.better_vm |= rate < 25.0;
                text.push_str(&format!(" Fork rate is {rate:.2} GB/sec ({quality})."));
            }
            "command" => {
                if slower_than < 0 {
                    advice.slowlog_enable = true;
                } else if (slower_than / 1000) as u64 > threshold {
                    advice.slowlog_tune = true;
                }
                advice.slowlog_inspect = true;
                advice.large_objects = true;
            }
            "fast-command" => advice.scheduler = true,
            "expire-cycle" => {
                advice.hz = true;
                advice.large_objects = true;
            }
            "eviction-del" => advice.large_objects = true,
            "eviction-cycle" => advice.mass_eviction = true,
            _ => {}
        }
        text.push('\n');
    }
    let hz = server.config.hz.load(Ordering::Relaxed);
    advice.hz &= hz < 100;
    if events.is_empty() {
        text.push_str(
            "Dave, no latency spike was observed during the lifetime of this Redis instance, \
             not in the slightest bit. I honestly think you ought to sit down calmly, take a \
             stress pill, and think things over.\n",
        );
    } else if !advice.any() {
        text.push_str(
            "\nWhile there are latency events logged, I'm not able to suggest any easy fix. \
             Please use the Redis community to get some help, providing this report in your \
             help request.\n",
        );
    } else {
        text.push_str("\nI have a few advices for you:\n\n");
        advice.write(&mut text, threshold);
    }
    reply.verbatim(text.as_bytes());
    Ok(())
}

const DISABLED: &str = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this \
    Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in \
    order to enable it. If we weren't in a deep space mission I'd suggest to take a look at \
    https://redis.io/topics/latency-monitor.\n";

/// `analyzeLatencyForEvent`: sample count, mean, mean absolute deviation, and the seconds
/// since the oldest sample (at least 1).
struct Stats {
    samples: u64,
    avg: u64,
    mad: u64,
    period: u64,
}

impl Stats {
    fn of(series: &crate::latency::Series, now_s: u64) -> Stats {
        let samples = series.samples.len() as u64;
        if samples == 0 {
            return Stats {
                samples,
                avg: 0,
                mad: 0,
                period: 0,
            };
        }
        let avg = series.samples.iter().map(|s| s.1).sum::<u64>() / samples;
        let mad = series
            .samples
            .iter()
            .map(|s| s.1.abs_diff(avg))
            .sum::<u64>()
            / samples;
        let oldest = series.samples.iter().map(|s| s.0).min().unwrap_or(now_s);
        Stats {
            samples,
            avg,
            mad,
            period: now_s.saturating_sub(oldest).max(1),
        }
    }
}

/// The advice the report ends with, in Redis's order.
#[derive(Default)]
struct Advice {
    better_vm: bool,
    slowlog_enable: bool,
    slowlog_tune: bool,
    slowlog_inspect: bool,
    scheduler: bool,
    hz: bool,
    large_objects: bool,
    mass_eviction: bool,
}

impl Advice {
    fn any(&self) -> bool {
        self.better_vm
            || self.slowlog_enable
            || self.slowlog_tune
            || self.slowlog_inspect
            || self.scheduler
            || self.hz
            || self.large_objects
            || self.mass_eviction
    }

    fn write(&self, t: &mut String, threshold_ms: u64) {
        if self.better_vm {
            t.push_str(
                "- If you are using a virtual machine, consider upgrading it with a faster one \
                 using a hypervisior that provides less latency during fork() calls. Xen is known \
                 to have poor fork() performance. Even in the context of the same VM provider, \
                 certain kinds of instances can execute fork faster than others.\n",
            );
        }
        if self.slowlog_enable {
            t.push_str(&format!(
                "- There are latency issues with potentially slow commands you are using. Try to \
                 enable the Slow Log Redis feature using the command 'CONFIG SET \
                 slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to \
                 log slow commands execution for you.\n",
                threshold_ms * 1000
            ));
        }
        if self.slowlog_tune {
            t.push_str(&format!(
                "- Your current Slow Log configuration only logs events that are slower than \
                 your configured latency monitor threshold. Please use 'CONFIG SET \
                 slowlog-log-slower-than {}'.\n",
                threshold_ms * 1000
            ));
        }
        if self.slowlog_inspect {
            t.push_str(
                "- Check your Slow Log to understand what are the commands you are running which \
                 are too slow to execute. Please check https://redis.io/commands/slowlog for more \
                 information.\n",
            );
        }
        if self.scheduler {
            t.push_str(
                "- The system is slow to execute Redis code paths not containing system calls. \
                 This usually means the system does not provide Redis CPU time to run for long \
                 periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / \
                 VM just for Redis if you are running other software in the same system.\n  3) \
                 Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli \
                 --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) \
                 Check if the problem is allocator-related by recompiling Redis with \
                 MALLOC=libc, if you are using Jemalloc. However this may create fragmentation \
                 problems.\n",
            );
        }
        if self.hz {
            t.push_str(
                "- In order to make the Redis keys expiring process more incremental, try to set \
                 the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n",
            );
        }
        if self.large_objects {
            t.push_str(
                "- Deleting, expiring or evicting (because of maxmemory policy) large objects is \
                 a blocking operation. If you have very large objects that are often deleted, \
                 expired, or evicted, try to fragment those objects into multiple smaller \
                 objects.\n",
            );
        }
        if self.mass_eviction {
            t.push_str(
                "- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of \
                 large objects via sets or sorted sets intersections, STORE option of SORT, Redis \
                 Cluster large keys migrations (RESTORE command), may create sudden memory \
                 pressure forcing the server to block trying to evict keys. \n",
            );
        }
    }
}

const HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

fn help(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    super::client::help_reply(reply, args.get(0), HELP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;
    use std::sync::atomic::Ordering;

    fn text(reply: &str) -> String {
        // A RESP2 bulk string: `$<len>\r\n<text>\r\n`.
        let body = reply.split_once("\r\n").map(|x| x.1).unwrap_or("");
        body.strip_suffix("\r\n").unwrap_or(body).to_string()
    }

    #[test]
    fn doctor_speaks_as_redis_when_off_quiet_and_spiking() {
        let mut env = TestEnv::new();
        assert!(text(&env.run("LATENCY DOCTOR")).starts_with("I'm sorry, Dave, I can't do that."));
        assert_eq!(env.run("LATENCY LATEST"), "*0\r\n");
        assert_eq!(env.run("CONFIG SET latency-monitor-threshold 1"), "+OK\r\n");
        assert_eq!(
            text(&env.run("LATENCY DOCTOR")),
            "Dave, no latency spike was observed during the lifetime of this Redis instance, \
             not in the slightest bit. I honestly think you ought to sit down calmly, take a \
             stress pill, and think things over.\n"
        );
        let now_s = env.server.clock.now_ms() / 1000;
        env.server.latency.record("command", 50, now_s);
        let report = text(&env.run("LATENCY DOCTOR"));
        assert!(
            report.starts_with(
                "Dave, I have observed latency spikes in this Redis instance. You don't mind \
                 talking about it, do you Dave?\n\n1. command: 1 latency spikes (average 50ms, \
                 mean deviation 0ms, period 1.00 sec). Worst all time event 50ms.\n\nI have a \
                 few advices for you:\n\n- Your current Slow Log configuration only logs events \
                 that are slower than your configured latency monitor threshold. Please use \
                 'CONFIG SET slowlog-log-slower-than 1000'.\n- Check your Slow Log"
            ),
            "{report}"
        );
        assert_eq!(
            env.run("LATENCY LATEST"),
            format!("*1\r\n*4\r\n$7\r\ncommand\r\n:{now_s}\r\n:50\r\n:50\r\n")
        );
        assert_eq!(
            env.run("LATENCY HISTORY COMMAND"),
            format!("*1\r\n*2\r\n:{now_s}\r\n:50\r\n")
        );
        assert_eq!(env.run("LATENCY HISTORY nosuch"), "*0\r\n");
        assert_eq!(env.run("LATENCY RESET fork command"), ":1\r\n");
        assert_eq!(env.run("LATENCY RESET"), ":0\r\n");
        assert_eq!(
            env.run("LATENCY HISTORY"),
            "-ERR wrong number of arguments for 'latency|history' command\r\n"
        );
        assert_eq!(
            env.run("LATENCY foo"),
            "-ERR unknown subcommand 'foo'. Try LATENCY HELP.\r\n"
        );
        assert_eq!(env.server.latency.threshold_ms.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_fork_is_counted_and_rated() {
        let env = TestEnv::new();
        env.server.latency.threshold_ms.store(1, Ordering::Relaxed);
        // 1 GiB in 10 ms: 100 GB/s.
        env.server.latency.note_fork(10_000, 1 << 30, 5);
        assert_eq!(env.server.latency.total_forks.load(Ordering::Relaxed), 1);
        assert!((env.server.latency.fork_rate_gb_per_s() - 100.0).abs() < 1e-9);
        assert_eq!(env.server.latency.history(b"fork"), vec![(5, 10)]);
    }

    #[test]
    fn histogram_replies_per_command_as_redis() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("LATENCY HISTOGRAM"), "*0\r\n");
        env.run("HSET k f v");
        env.run("HSET k f w");
        env.run("CONFIG SET latency-tracking yes");
        let got = env.run("LATENCY HISTOGRAM hset NOSUCH config hset|x config|set");
        // hset, then config's subcommands (config|set), then config|set again.
        assert!(
            got.starts_with(
                "*6\r\n$4\r\nhset\r\n*4\r\n$5\r\ncalls\r\n:2\r\n$14\r\nhistogram_usec\r\n*"
            ),
            "{got:?}"
        );
        assert_eq!(got.matches("$10\r\nconfig|set\r\n").count(), 2, "{got:?}");
        env.resp3();
        let got = env.run("LATENCY HISTOGRAM hset");
        assert!(
            got.starts_with(
                "%1\r\n$4\r\nhset\r\n%2\r\n$5\r\ncalls\r\n:2\r\n$14\r\nhistogram_usec\r\n%"
            ),
            "{got:?}"
        );
        // Off: no new calls recorded, what was recorded still replied; RESETSTAT drops it.
        env.run("CONFIG SET latency-tracking no");
        env.run("HSET k f x");
        assert!(env.run("LATENCY HISTOGRAM hset").contains(":2\r\n"));
        env.run("CONFIG RESETSTAT");
        assert_eq!(env.run("LATENCY HISTOGRAM"), "%0\r\n");
    }

    #[test]
    fn info_latencystats_lists_commands_with_histograms() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("CONFIG SET latency-tracking-info-percentiles \"50 99.9 0x10\"");
        let info = env.run("INFO latencystats");
        let line = info
            .lines()
            .find(|l| l.starts_with("latency_percentiles_usec_hset:"))
            .unwrap_or_default();
        let values: Vec<&str> = line
            .split_once(':')
            .map(|(_, v)| v.split(',').collect())
            .unwrap_or_default();
        assert_eq!(values.len(), 3, "{info:?}");
        for (v, label) in values.iter().zip(["p50=", "p99.9=", "p16="]) {
            let num = v.strip_prefix(label).unwrap_or("x");
            assert!(
                num.parse::<f64>().is_ok() && num.split('.').nth(1).map(str::len) == Some(3),
                "{v}"
            );
        }
        assert!(info.contains("latency_percentiles_usec_config|set:"));
        assert!(!env.run("INFO").contains("# Latencystats"));
        assert!(env.run("INFO everything").contains("# Latencystats\r\n"));
        env.run("CONFIG SET latency-tracking no");
        assert!(env
            .run("INFO latencystats")
            .ends_with("# Latencystats\r\n\r\n"));
    }
}
