//! Per-command statistics (INFO commandstats, INFO latencystats, LATENCY HISTOGRAM) and
//! the slow log (SLOWLOG).
//!
//! Every command is timed with [`quanta`]'s TSC clock — a few nanoseconds a read, where
//! `clock_gettime` costs tens, which at pipeline 16 would be several percent of a command.
//! A connection adds its commands' counts and times to a small list of its own and flushes
//! it into the shared counters once per batch (and when INFO runs on it), so two worker
//! threads running the same command do not fight over its counters' cache line per call.
//!
//! With `latency-tracking yes` (the default) each call's time also goes into its command's
//! latency histogram, an HdrHistogram with Redis's bounds and precision. The connection
//! only appends the time to a buffer; the buffer is recorded at the same flush, into
//! histograms of the flushing thread's own shard (one uncontended lock per command per
//! batch; threads sharing one histogram would pass its cache lines back and forth at every
//! batch, which cost several percent at pipeline 16). INFO and LATENCY HISTOGRAM add the
//! shards up.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use smallvec::SmallVec;

/// Redis's defaults: `slowlog-log-slower-than 10000`, `slowlog-max-len 128`.
pub const DEFAULT_SLOWLOG_SLOWER_THAN_US: i64 = 10_000;
pub const DEFAULT_SLOWLOG_MAX_LEN: u64 = 128;
/// A slow log entry keeps at most this many arguments and bytes of each (Redis's
/// `SLOWLOG_ENTRY_MAX_ARGC` / `_MAX_STRING`).
const SLOWLOG_MAX_ARGC: usize = 32;
const SLOWLOG_MAX_STRING: usize = 128;

/// Redis's `LATENCY_HISTOGRAM_MIN_VALUE`, `_MAX_VALUE` (ns) and `_PRECISION` (significant
/// figures): times outside the bounds are clamped to them.
const HISTOGRAM_MIN_NS: u64 = 1;
const HISTOGRAM_MAX_NS: u64 = 1_000_000_000;
const HISTOGRAM_SIGFIG: u8 = 2;
/// A connection's buffered times are recorded once this many wait, even inside one batch,
/// so that a huge pipeline or transaction does not grow the buffer without bound.
const PENDING_SAMPLES_MAX: usize = 1024;
/// LATENCY HISTOGRAM's first bucket (ns) and the factor between buckets (`fillCommandCDF`).
const CDF_FIRST_BUCKET_NS: u64 = 1024;
const CDF_BUCKET_FACTOR: u64 = 2;
/// Redis's default `latency-tracking-info-percentiles`.
pub const DEFAULT_INFO_PERCENTILES: &str = "50 99 99.9";

/// One command's latency histogram (counts per HdrHistogram bucket, in ns).
pub type Histogram = hdrhistogram::Histogram<u64>;

/// One thread shard's histograms, by command index.
type HistogramShard = Box<[Mutex<Option<Box<Histogram>>>]>;

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
    /// Calls' times for the latency histograms, each `index << 32 | nanos` (clamped to
    /// Redis's maximum, one second, which fits 32 bits), in call order.
    samples: Vec<u64>,
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
        self.items.is_empty() && self.samples.is_empty()
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
    /// Per thread shard, per command: its latency histogram, made at its first recorded
    /// call there (24 KiB each, so only where used) and dropped by CONFIG RESETSTAT, as
    /// Redis drops its one histogram per command.
    histograms: Box<[HistogramShard]>,
    /// `latency-tracking`.
    pub latency_tracking: AtomicBool,
    /// `latency-tracking-info-percentiles`.
    info_percentiles: RwLock<Vec<f64>>,
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
            histograms: (0..histogram_shards())
                .map(|_| (0..commands).map(|_| Mutex::new(None)).collect())
                .collect(),
            latency_tracking: AtomicBool::new(true),
            info_percentiles: RwLock::new(vec![50.0, 99.0, 99.9]),
            slowlog: Mutex::new(VecDeque::new()),
            next_slow_id: AtomicU64::new(0),
            slower_than_us: AtomicI64::new(slower_than_us),
            slowlog_max_len: AtomicU64::new(max_len),
        }
    }

    /// Sets `latency-tracking` and `latency-tracking-info-percentiles`.
    pub fn with_latency_tracking(self, on: bool, percentiles: Vec<f64>) -> Self {
        self.latency_tracking.store(on, Ordering::Relaxed);
        *self.info_percentiles.write() = percentiles;
        self
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

    /// A call of command `index` that took `nanos`, for its latency histogram: buffered in
    /// the connection's `pending` (nothing at all with `latency-tracking no`).
    #[inline]
    pub fn sample(&self, pending: &mut Pending, index: usize, nanos: u64) {
        if !self.latency_tracking.load(Ordering::Relaxed) {
            return;
        }
        let nanos = nanos.clamp(HISTOGRAM_MIN_NS, HISTOGRAM_MAX_NS);
        pending.samples.push((index as u64) << 32 | nanos);
        if pending.samples.len() >= PENDING_SAMPLES_MAX {
            self.record_samples(pending);
        }
    }

    /// Records a connection's buffered times, holding each command's histogram once per
    /// run of its calls (a batch mostly repeats one command).
    #[cold]
    fn record_samples(&self, pending: &mut Pending) {
        let shard = &self.histograms[thread_shard(self.histograms.len())];
        let mut samples = pending.samples.drain(..).peekable();
        while let Some(first) = samples.next() {
            let index = (first >> 32) as usize;
            let Some(slot) = shard.get(index) else {
                continue;
            };
            let mut slot = slot.lock();
            let h = slot.get_or_insert_with(new_histogram);
            h.saturating_record(first & u64::from(u32::MAX));
            while let Some(s) = samples.next_if(|s| (s >> 32) as usize == index) {
                h.saturating_record(s & u64::from(u32::MAX));
            }
        }
    }

    /// Adds a connection's pending counts to the shared ones.
    pub fn flush(&self, pending: &mut Pending) {
        if !pending.samples.is_empty() {
            self.record_samples(pending);
        }
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
        for h in self.histograms.iter().flat_map(|shard| shard.iter()) {
            *h.lock() = None;
        }
    }

    /// Runs `f` on command `index`'s latency histogram (its shards added up), if it has one.
    pub fn with_histogram<R>(&self, index: usize, f: impl FnOnce(&Histogram) -> R) -> Option<R> {
        let mut total: Option<Box<Histogram>> = None;
        for shard in self.histograms.iter() {
            let slot = shard.get(index)?.lock();
            let Some(h) = slot.as_deref() else {
                continue;
            };
            match &mut total {
                // Same bounds on both sides: adding cannot fail.
                Some(t) => {
                    let _ = t.add(h);
                }
                None => total = Some(Box::new(h.clone())),
            }
        }
        total.as_deref().map(f)
    }

    pub fn info_percentiles(&self) -> Vec<f64> {
        self.info_percentiles.read().clone()
    }

    pub fn set_info_percentiles(&self, percentiles: Vec<f64>) {
        *self.info_percentiles.write() = percentiles;
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

/// One histogram shard per core (at most 16): a worker thread per core is tokio's default.
fn histogram_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(16))
}

/// The calling thread's histogram shard, out of `shards`. Threads are numbered at their
/// first flush; the numbering only spreads them over the shards, nothing depends on it.
fn thread_shard(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    NUMBER.with(|n| {
        if n.get() == usize::MAX {
            n.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        n.get() % shards
    })
}

fn new_histogram() -> Box<Histogram> {
    // Constant bounds hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
    Box::new(
        Histogram::new_with_bounds(HISTOGRAM_MIN_NS, HISTOGRAM_MAX_NS, HISTOGRAM_SIGFIG)
            .expect("Redis's histogram bounds are valid"),
    )
}

/// The histogram's counts in index order, as hdr_histogram's C code walks them: each
/// index's lowest value and its count. The reports below follow the C code step by step
/// rather than the crate's iterators, which round differently (`value_at_quantile` takes
/// the ceiling of the wanted count where C rounds it; `iter_log` reports the level where
/// C reports the highest value of the bucket it stopped in).
fn counts(h: &Histogram) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut next = 0;
    (0..h.distinct_values()).map(move |_| {
        let value = next;
        next = h.next_non_equivalent(value);
        (value, h.count_at(value))
    })
}

/// hdr_histogram's `hdr_value_at_percentile`.
pub fn value_at_percentile(h: &Histogram, percentile: f64) -> u64 {
    let requested = percentile.min(100.0);
    // C's `(int64_t)(x + 0.5)`: rounded half up, then at least the first recorded value.
    let wanted = (((requested / 100.0) * h.len() as f64 + 0.5) as u64).max(1);
    let mut seen = 0;
    for (value, n) in counts(h) {
        seen += n;
        if seen >= wanted {
            return if percentile == 0.0 {
                h.lowest_equivalent(value)
            } else {
                h.highest_equivalent(value)
            };
        }
    }
    0
}

/// LATENCY HISTOGRAM's `histogram_usec` (Redis's `fillCommandCDF`): at each power-of-two
/// level from 1024 ns, the highest value (µs) of the bucket the log iterator stands in and
/// the calls up to it, where that count grew. Times in the last buckets, past 2^29 ns, are
/// never reported, as in Redis (the iterator runs out of buckets before 2^30).
pub fn cdf(h: &Histogram) -> Vec<(u64, u64)> {
    let total = h.len();
    let mut out = Vec::new();
    let mut level = CDF_FIRST_BUCKET_NS;
    let (mut cumulative, mut previous) = (0, 0);
    for (value, n) in counts(h) {
        cumulative += n;
        while value >= level {
            if cumulative > previous {
                out.push((h.highest_equivalent(value) / 1000, cumulative));
            }
            previous = cumulative;
            level *= CDF_BUCKET_FACTOR;
        }
        if previous == total {
            break;
        }
    }
    out
}

/// A percentile as Redis prints it (INFO's labels, CONFIG GET): `%f` with the trailing
/// zeros and point trimmed (`trimDoubleString`): `50`, `99.9`.
pub fn format_percentile(p: f64) -> String {
    let mut s = format!("{p:.6}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// `latency-tracking-info-percentiles`: words split on single spaces (as Redis splits a
/// multi-argument setting, so doubled spaces make an empty, invalid word); "" is none.
/// The error is Redis's CONFIG SET reason.
pub fn parse_info_percentiles(text: &str) -> Result<Vec<f64>, &'static str> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(' ')
        .map(|w| {
            let p = string2d(w).ok_or("Invalid latency-tracking-info-percentiles parameters")?;
            if (0.0..=100.0).contains(&p) {
                Ok(p)
            } else {
                Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
            }
        })
        .collect()
}

/// Redis's `string2d`: the whole word is one `strtod` number, not NaN, not out of range
/// (an overflow to infinity or an underflow to zero); `inf` itself is a number.
fn string2d(w: &str) -> Option<f64> {
    let unsigned = w.strip_prefix(['+', '-']).unwrap_or(w);
    let negative = w.starts_with('-');
    let (v, mantissa) = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        (
            parse_hex_float(hex)?,
            hex.split(['p', 'P']).next().unwrap_or(""),
        )
    } else {
        // Rust's syntax is strtod's for decimals, `inf`, `infinity` and `nan`.
        let v: f64 = unsigned.parse().ok()?;
        (v, unsigned.split(['e', 'E']).next().unwrap_or(""))
    };
    let literal_inf =
        unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity");
    let underflow = v == 0.0 && mantissa.bytes().any(|b| b.is_ascii_hexdigit() && b != b'0');
    if v.is_nan() || (v.is_infinite() && !literal_inf) || underflow {
        return None;
    }
    Some(if negative { -v } else { v })
}

/// strtod's hexadecimal form after `0x`: hex digits with an optional point, then an
/// optional binary exponent `p[+-]digits`.
fn parse_hex_float(text: &str) -> Option<f64> {
    let (digits, exp) = match text.find(['p', 'P']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut m = 0.0f64;
    for b in int.bytes().chain(frac.bytes()) {
        m = m * 16.0 + f64::from(char::from(b).to_digit(16)?);
    }
    let mut e: i32 = match exp {
        Some(x) => {
            let d = x.strip_prefix(['+', '-']).unwrap_or(x);
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            x.parse::<i32>().unwrap_or(if x.starts_with('-') {
                i32::MIN / 2
            } else {
                i32::MAX / 2
            })
        }
        None => 0,
    };
    e = e.saturating_sub(4 * frac.len() as i32);
    Some(m * 2f64.powi(e))
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

    fn histogram_of(values: &[u64]) -> Box<Histogram> {
        let mut h = new_histogram();
        for &v in values {
            h.saturating_record(v.clamp(HISTOGRAM_MIN_NS, HISTOGRAM_MAX_NS));
        }
        h
    }

    #[test]
    fn histogram_has_hdr_histogram_c_layout() {
        // hdr_init(1, 1e9, 2): 23 buckets of 128 half sub-buckets plus one, 3072 counts.
        let h = new_histogram();
        assert_eq!(h.distinct_values(), 3072);
        assert_eq!(counts(&h).last().map(|(v, _)| v), Some(255 << 22));
    }

    #[test]
    fn percentiles_round_the_wanted_count_as_c_does() {
        // p99 of 70 calls wants (69.3 + 0.5) as int = 69 calls: the fast bucket. The crate's
        // own value_at_percentile takes the ceiling, 70, and would answer the slow one.
        let mut values = vec![1000; 69];
        values.push(100_000);
        let h = histogram_of(&values);
        assert_eq!(value_at_percentile(&h, 99.0), 1003);
        assert_eq!(value_at_percentile(&h, 100.0), 100_351);
        assert_eq!(value_at_percentile(&h, 0.0), 1000);
        // Redis 7.4.1's INFO for one 26 µs HSET: p50=26.111.
        assert_eq!(value_at_percentile(&histogram_of(&[26_000]), 50.0), 26_111);
        assert_eq!(value_at_percentile(&new_histogram(), 50.0), 0);
    }

    #[test]
    fn cdf_reports_buckets_as_fill_command_cdf() {
        // Redis 7.4.1: one 26 µs HSET is `33 => 1`, one 5 µs CONFIG SET `8 => 1`, one
        // sub-µs command `1 => 1`.
        assert_eq!(cdf(&histogram_of(&[26_000])), [(33, 1)]);
        assert_eq!(cdf(&histogram_of(&[5_000])), [(8, 1)]);
        assert_eq!(cdf(&histogram_of(&[0])), [(1, 1)]);
        // Only levels where the count grew; the clamped one-second call never shows.
        let h = histogram_of(&[500, 3_000, 3_000, 5_000_000_000]);
        assert_eq!(h.len(), 4);
        assert_eq!(cdf(&h), [(1, 1), (4, 3)]);
        assert!(cdf(&new_histogram()).is_empty());
    }

    #[test]
    fn samples_reach_the_histograms_on_flush_unless_tracking_is_off() {
        let s = CommandStats::new(4, DEFAULT_SLOWLOG_SLOWER_THAN_US, 2);
        let mut p = Pending::default();
        for n in [1_000, 2_000, 3_000] {
            p.call(1, n, false);
            s.sample(&mut p, 1, n);
        }
        p.call(2, 7, false);
        s.sample(&mut p, 2, 7);
        assert!(
            s.with_histogram(1, |_| ()).is_none(),
            "recorded before the flush"
        );
        s.flush(&mut p);
        assert_eq!(s.with_histogram(1, |h| h.len()), Some(3));
        assert_eq!(s.with_histogram(2, |h| h.len()), Some(1));
        s.latency_tracking.store(false, Ordering::Relaxed);
        s.sample(&mut p, 3, 7);
        s.flush(&mut p);
        assert!(s.with_histogram(3, |_| ()).is_none());
        s.latency_tracking.store(true, Ordering::Relaxed);
        // A long batch is recorded as it goes, without waiting for the flush.
        for _ in 0..PENDING_SAMPLES_MAX {
            s.sample(&mut p, 3, 7);
        }
        assert_eq!(
            s.with_histogram(3, |h| h.len()),
            Some(PENDING_SAMPLES_MAX as u64)
        );
        s.reset();
        assert!(s.with_histogram(1, |_| ()).is_none());
    }

    #[test]
    fn percentile_settings_parse_and_print_as_redis() {
        let ok = |t: &str| parse_info_percentiles(t).unwrap();
        assert_eq!(ok("50 99 99.9"), [50.0, 99.0, 99.9]);
        assert!(ok("").is_empty());
        assert_eq!(
            ok("0x10 1e1 +5 .5 1. 0x1.8p1"),
            [16.0, 10.0, 5.0, 0.5, 1.0, 3.0]
        );
        let invalid = Err("Invalid latency-tracking-info-percentiles parameters");
        let range =
            Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]");
        for bad in [
            "abc", "50 abc", "nan", "  50", "50  99", "1,2", "1e-400", "1e400", "0x", "1e",
        ] {
            assert_eq!(parse_info_percentiles(bad), invalid, "{bad:?}");
        }
        for bad in ["101", "-1", "inf", "-Infinity"] {
            assert_eq!(parse_info_percentiles(bad), range, "{bad:?}");
        }
        let shown: Vec<String> = [50.0, 99.9, 100.0, 12.3456789, 99.99999, 1e-7]
            .into_iter()
            .map(format_percentile)
            .collect();
        assert_eq!(shown, ["50", "99.9", "100", "12.345679", "99.99999", "0"]);
    }
}
