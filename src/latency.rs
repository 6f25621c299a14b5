//! The latency monitor (LATENCY LATEST / HISTORY / RESET / DOCTOR), as Redis's
//! `latency.c`: with `latency-monitor-threshold` set (ms; 0, the default, is off), every
//! event at least that long is sampled — `command` (a command without the `fast` flag),
//! `fast-command`, `fork` (a snapshot or sync child), `expire-cycle` (a sweeper cycle).
//! Each event keeps its last 160 samples, at most one per second (the worst of that
//! second), and the worst ever.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
const SAMPLES: usize = 160;

#[derive(Debug, Default, Clone)]
pub struct Series {
    /// `(unix s, ms)`, oldest first.
    pub samples: VecDeque<(u64, u64)>,
    pub max_ms: u64,
}

#[derive(Debug, Default)]
pub struct LatencyMonitor {
    /// `latency-monitor-threshold` in ms; 0: off.
    pub threshold_ms: AtomicU64,
    events: Mutex<BTreeMap<&'static str, Series>>,
    /// Forks made (INFO's `total_forks`), the last one's duration (`latest_fork_usec`),
    /// and the bytes in use when it was made (for DOCTOR's fork rate).
    pub total_forks: AtomicU64,
    pub latest_fork_usec: AtomicU64,
    latest_fork_bytes: AtomicU64,
}

impl LatencyMonitor {
    pub fn new(threshold_ms: u64) -> Self {
        LatencyMonitor {
            threshold_ms: AtomicU64::new(threshold_ms),
            events: Mutex::new(BTreeMap::new()),
            total_forks: AtomicU64::new(0),
            latest_fork_usec: AtomicU64::new(0),
            latest_fork_bytes: AtomicU64::new(0),
        }
    }

    /// Whether an event of `micros` is worth sampling (one load while off).
    #[inline]
    pub fn wants(&self, micros: u64) -> bool {
        let t = self.threshold_ms.load(Ordering::Relaxed);
        t > 0 && micros / 1000 >= t
    }

    /// Samples `event` at `ms` (if at least the threshold), at unix second `now_s`.
    pub fn record(&self, event: &'static str, ms: u64, now_s: u64) {
        let t = self.threshold_ms.load(Ordering::Relaxed);
        if t == 0 || ms < t {
            return;
        }
        let mut events = self.events.lock();
        let s = events.entry(event).or_default();
        s.max_ms = s.max_ms.max(ms);
        match s.samples.back_mut() {
            Some(last) if last.0 == now_s => last.1 = last.1.max(ms),
            _ => {
                s.samples.push_back((now_s, ms));
                if s.samples.len() > SAMPLES {
                    s.samples.pop_front();
                }
            }
        }
    }

    /// A fork of `usec` made while `bytes` were in use: counted, and sampled as `fork`.
    pub fn note_fork(&self, usec: u64, bytes: u64, now_s: u64) {
        self.total_forks.fetch_add(1, Ordering::Relaxed);
        self.latest_fork_usec.store(usec, Ordering::Relaxed);
        self.latest_fork_bytes.store(bytes, Ordering::Relaxed);
        self.record("fork", usec / 1000, now_s);
    }

    /// GB of memory forked per second, from the last fork (Redis's `stat_fork_rate`).
    pub fn fork_rate_gb_per_s(&self) -> f64 {
        let usec = self.latest_fork_usec.load(Ordering::Relaxed).max(1);
        let bytes = self.latest_fork_bytes.load(Ordering::Relaxed);
        bytes as f64 * 1_000_000.0 / usec as f64 / (1024.0 * 1024.0 * 1024.0)
    }

    /// Every event: its name, last sample `(time, ms)`, and worst ms.
    pub fn latest(&self) -> Vec<(&'static str, (u64, u64), u64)> {
        self.events
            .lock()
            .iter()
            .filter_map(|(name, s)| s.samples.back().map(|&last| (*name, last, s.max_ms)))
            .collect()
    }

    pub fn history(&self, event: &[u8]) -> Vec<(u64, u64)> {
        self.events
            .lock()
            .iter()
            .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(event))
            .map(|(_, s)| s.samples.iter().copied().collect())
            .unwrap_or_default()
    }

    /// LATENCY RESET: the named events (every one when `names` is empty); returns how
    /// many were reset.
    pub fn reset(&self, names: &[&[u8]]) -> usize {
        let mut events = self.events.lock();
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        let before = events.len();
        events.retain(|name, _| {
            !names
                .iter()
                .any(|n| name.as_bytes().eq_ignore_ascii_case(n))
        });
        before - events.len()
    }

    /// All the series (LATENCY DOCTOR).
    pub fn all(&self) -> Vec<(&'static str, Series)> {
        self.events
            .lock()
            .iter()
            .map(|(n, s)| (*n, s.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_above_the_threshold_one_per_second() {
        let m = LatencyMonitor::new(0);
        m.record("command", 500, 1);
        assert!(m.latest().is_empty(), "off at 0");
        m.threshold_ms.store(10, Ordering::Relaxed);
        m.record("command", 5, 1);
        assert!(m.latest().is_empty(), "below the threshold");
        m.record("command", 20, 1);
        m.record("command", 30, 1);
        m.record("command", 15, 2);
        m.record("fork", 12, 2);
        assert_eq!(m.history(b"command"), vec![(1, 30), (2, 15)]);
        assert_eq!(
            m.latest(),
            vec![("command", (2, 15), 30), ("fork", (2, 12), 12)]
        );
        assert_eq!(m.reset(&[b"FORK", b"nosuch"]), 1);
        assert_eq!(m.reset(&[]), 1);
        for s in 0..200 {
            m.record("command", 10, s);
        }
        assert_eq!(m.history(b"command").len(), SAMPLES);
    }
}
