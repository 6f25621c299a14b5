//! Per-command statistics (INFO commandstats) and the slow log (SLOWLOG).
//!
//! Every command is timed with [`quanta`]'s TSC clock — a few nanoseconds a read, where
//! `clock_gettime` costs tens, which at pipeline 16 would be several percent of a command.
//! A connection adds its commands' counts and times to a small list of its own and flushes
//! it into the shared counters once per batch (and when INFO runs on it), so two worker
//! threads running the same command do not fight over its counters' cache line per call.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
use smallvec::SmallVec;

/// Redis's defaults: `slowlog-log-slower-than 10000`, `slowlog-max-len 128`.
pub const DEFAULT_SLOWLOG_SLOWER_THAN_US: i64 = 10_000;
pub const DEFAULT_SLOWLOG_MAX_LEN: u64 = 128;
/// A slow log entry keeps at most this many arguments and bytes of each (Redis's
/// `SLOWLOG_ENTRY_MAX_ARGC` / `_MAX_STRING`).
const SLOWLOG_MAX_ARGC: usize = 32;
const SLOWLOG_MAX_STRING: usize = 128;

/// One command's totals.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

/// What one connection accumulated since its last flush, per command index.
#[derive(Debug, Default)]
pub struct Pending {
    items: SmallVec<[PendingItem; 4]>,
}

#[derive(Debug, Clone, Copy)]
struct PendingItem {
    index: u32,
    calls: u32,
    rejected: u32,
    failed: u32,
    nanos: u64,
}

impl Pending {
    #[inline]
    fn item(&mut self, index: usize) -> &mut PendingItem {
        let index = index as u32;
        // A batch mostly repeats one command: the last one first.
        if self.items.last().is_some_and(|i| i.index == index) {
            let last = self.items.len() - 1;
            return &mut self.items[last];
        }
        let pos = match self.items.iter().position(|i| i.index == index) {
            Some(p) => p,
            None => {
                self.items.push(PendingItem {
                    index,
                    calls: 0,
                    rejected: 0,
                    failed: 0,
                    nanos: 0,
                });
                self.items.len() - 1
            }
        };
        &mut self.items[pos]
    }

    /// A call of command `index` that took `nanos` (and failed, if `failed`).
    #[inline]
    pub fn call(&mut self, index: usize, nanos: u64, failed: bool) {
        let i = self.item(index);
        i.calls += 1;
        i.nanos += nanos;
        i.failed += u32::from(failed);
    }

    /// Command `index` was refused before it ran.
    pub fn rejected(&mut self, index: usize) {
        self.item(index).rejected += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// INFO commandstats' numbers of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandTotals {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// An entry of the slow log.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub unix_s: u64,
    pub micros: u64,
    pub args: Vec<Vec<u8>>,
    pub addr: String,
    pub name: Vec<u8>,
}

/// The shared counters and the slow log.
pub struct CommandStats {
    clock: quanta::Clock,
    counters: Box<[Counters]>,
    slowlog: Mutex<VecDeque<SlowEntry>>,
    next_slow_id: AtomicU64,
    /// `slowlog-log-slower-than` (µs; negative: off, 0: everything).
    pub slower_than_us: AtomicI64,
    pub slowlog_max_len: AtomicU64,
}

impl std::fmt::Debug for CommandStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandStats").finish_non_exhaustive()
    }
}

impl CommandStats {
    /// Counters for `commands` table entries.
    pub fn new(commands: usize, slower_than_us: i64, max_len: u64) -> Self {
        CommandStats {
            clock: quanta::Clock::new(),
            counters: (0..commands).map(|_| Counters::default()).collect(),
            slowlog: Mutex::new(VecDeque::new()),
            next_slow_id: AtomicU64::new(0),
            slower_than_us: AtomicI64::new(slower_than_us),
            slowlog_max_len: AtomicU64::new(max_len),
        }
    }

    /// A raw timestamp, for [`CommandStats::nanos_between`].
    #[inline]
    pub fn now(&self) -> u64 {
        self.clock.raw()
    }

    #[inline]
    pub fn nanos_between(&self, start: u64, end: u64) -> u64 {
        self.clock.delta_as_nanos(start, end)
    }

    /// Adds a connection's pending counts to the shared ones.
    pub fn flush(&self, pending: &mut Pending) {
        for i in pending.items.drain(..) {
            let Some(c) = self.counters.get(i.index as usize) else {
                continue;
            };
            if i.calls > 0 {
                c.calls.fetch_add(u64::from(i.calls), Ordering::Relaxed);
                c.nanos.fetch_add(i.nanos, Ordering::Relaxed);
            }
            if i.rejected > 0 {
                c.rejected
                    .fetch_add(u64::from(i.rejected), Ordering::Relaxed);
            }
            if i.failed > 0 {
                c.failed.fetch_add(u64::from(i.failed), Ordering::Relaxed);
            }
        }
    }

    /// The totals of command `index`.
    pub fn totals(&self, index: usize) -> Option<CommandTotals> {
        let c = self.counters.get(index)?;
        Some(CommandTotals {
            calls: c.calls.load(Ordering::Relaxed),
            usec: c.nanos.load(Ordering::Relaxed) / 1000,
            rejected: c.rejected.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        })
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in self.counters.iter() {
            for v in [&c.calls, &c.nanos, &c.rejected, &c.failed] {
                v.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Whether a command that took `micros` belongs in the slow log.
    #[inline]
    pub fn is_slow(&self, micros: u64) -> bool {
        let t = self.slower_than_us.load(Ordering::Relaxed);
        t >= 0 && micros >= t as u64
    }

    /// Logs a slow command, Redis's way: at most 32 arguments (the last saying how many
    /// more there were) of at most 128 bytes each (saying how many more bytes).
    pub fn log_slow<'a>(
        &self,
        args: impl ExactSizeIterator<Item = &'a [u8]>,
        micros: u64,
        unix_s: u64,
        addr: &str,
        name: &[u8],
    ) {
        let max_len = self.slowlog_max_len.load(Ordering::Relaxed) as usize;
        let argc = args.len();
        let shown = argc.min(SLOWLOG_MAX_ARGC);
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(shown);
        for (i, a) in args.enumerate().take(shown) {
            if i == SLOWLOG_MAX_ARGC - 1 && argc > SLOWLOG_MAX_ARGC {
                kept.push(
                    format!("... ({} more arguments)", argc - SLOWLOG_MAX_ARGC + 1).into_bytes(),
                );
                break;
            }
            if a.len() > SLOWLOG_MAX_STRING {
                let mut s = a[..SLOWLOG_MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_STRING).as_bytes(),
                );
                kept.push(s);
            } else {
                kept.push(a.to_vec());
            }
        }
        let entry = SlowEntry {
            id: self.next_slow_id.fetch_add(1, Ordering::Relaxed),
            unix_s,
            micros,
            args: kept,
            addr: addr.to_string(),
            name: name.to_vec(),
        };
        let mut log = self.slowlog.lock();
        log.push_front(entry);
        log.truncate(max_len);
    }

    /// The newest `count` entries (all with `None`).
    pub fn slow_entries(&self, count: Option<usize>) -> Vec<SlowEntry> {
        let log = self.slowlog.lock();
        let n = count.unwrap_or(log.len()).min(log.len());
        log.iter().take(n).cloned().collect()
    }

    pub fn slowlog_len(&self) -> usize {
        self.slowlog.lock().len()
    }

    pub fn slowlog_reset(&self) {
        self.slowlog.lock().clear();
    }

    /// Applies a new `slowlog-max-len` to what is logged already.
    pub fn set_slowlog_max_len(&self, n: u64) {
        self.slowlog_max_len.store(n, Ordering::Relaxed);
        self.slowlog.lock().truncate(n as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_counts_reach_the_totals_on_flush() {
        let s = CommandStats::new(4, DEFAULT_SLOWLOG_SLOWER_THAN_US, 2);
        let mut p = Pending::default();
        p.call(1, 2_500, false);
        p.call(1, 1_500, true);
        p.rejected(3);
        assert_eq!(s.totals(1).unwrap().calls, 0);
        s.flush(&mut p);
        assert!(p.is_empty());
        let t = s.totals(1).unwrap();
        assert_eq!((t.calls, t.usec, t.rejected, t.failed), (2, 4, 0, 1));
        assert_eq!(s.totals(3).unwrap().rejected, 1);
        s.reset();
        assert_eq!(s.totals(1).unwrap().calls, 0);
    }

    #[test]
    fn slow_log_truncates_like_redis() {
        let s = CommandStats::new(1, 0, 2);
        let long = vec![b'x'; 130];
        let args: Vec<Vec<u8>> = (0..40).map(|i| format!("a{i}").into_bytes()).collect();
        s.log_slow(args.iter().map(Vec::as_slice), 5, 1, "127.0.0.1:1", b"");
        s.log_slow(
            [&b"HSET"[..], &long].into_iter(),
            7,
            2,
            "127.0.0.1:1",
            b"app",
        );
        s.log_slow([&b"PING"[..]].into_iter(), 9, 3, "127.0.0.1:1", b"");
        let e = s.slow_entries(None);
        assert_eq!(e.len(), 2, "max-len 2 keeps the newest two");
        assert_eq!(e[0].id, 2);
        assert_eq!(e[1].args[1].len(), 128 + "... (2 more bytes)".len());
        assert!(e[1].args[1].ends_with(b"... (2 more bytes)"));
        let first = CommandStats::new(1, 0, 10);
        first.log_slow(args.iter().map(Vec::as_slice), 5, 1, "a", b"");
        let e = first.slow_entries(Some(1));
        assert_eq!(e[0].args.len(), 32);
        assert_eq!(e[0].args[31], b"... (9 more arguments)");
        assert!(s.is_slow(0));
        s.slower_than_us.store(-1, Ordering::Relaxed);
        assert!(!s.is_slow(1_000_000));
    }
}
