//! Giving freed memory back to the operating system.
//!
//! Small hashes (keyspace/slab.rs) and large hash tables (keyspace/table_alloc.rs) are not
//! malloc's: a large table is unmapped when freed, the slabs' empty spans at each look
//! below (before malloc's state is read). The rest is malloc's, and handled here.
//!
//! hashd uses the system allocator. glibc's malloc keeps what the program frees inside its
//! arenas (one per thread that allocates, so several) and returns only the free tail of the
//! main heap on its own; after FLUSHALL, a DEL of a large hash or a sweeper drain the
//! process keeps its peak resident size (INFO's `used_memory_rss`), although the bytes in
//! use (`used_memory`, counted in alloc.rs) dropped. `malloc_trim(0)` walks every arena and hands whole free pages back
//! (`MADV_DONTNEED`), wherever in the heap they are.
//!
//! Trimming costs a walk of the free lists under each arena's lock, so it is not done on
//! the request path nor on a timer regardless of need: the sweeper task looks about once a
//! second ([`Release::due`]) at how much of the resident size malloc holds free — the
//! resident size (`/proc/self/statm`) less what malloc has handed out — and trims, on a
//! blocking thread, only when that is at least [`TRIM_THRESHOLD`] more than right after
//! the previous trim (or at start-up; and than at start-up again once half the keys are
//! gone, see `effective_floor`). Memory a trim cannot return (code, stacks, pages partly
//! in use) is thus the baseline and never causes a trim by itself; and because the
//! rule looks at a state, not at how much was freed between two looks, a load and delete
//! that both fall between checks is caught.
//!
//! What malloc has handed out is estimated from the counting allocator (alloc.rs): the
//! bytes asked for plus [`CHUNK_OVERHEAD`] per live allocation (glibc's 8-byte chunk
//! header and its rounding to 16 bytes). malloc's own figure (`mallinfo2`) is exact but
//! walks every free chunk while holding the arena's lock: after a drain of a million
//! fields one look took 20–40 ms and stalled every connection that allocated meanwhile.
//! The estimate's error (rounding that differs from the mean, over many allocations) at
//! worst causes one early trim per couple of million allocations, and the floor moves
//! with every trim.
//!
//! On targets other than glibc both calls do nothing.

use std::time::{Duration, Instant};

/// Resident free bytes, beyond what the last trim left, that make a trim worthwhile.
pub const TRIM_THRESHOLD: usize = 16 << 20;

/// How often the sweeper task looks at the allocator.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What a glibc chunk costs beyond the bytes asked for, on average: its 8-byte size
/// header and the rounding of the chunk to 16 bytes (7.5 on average).
pub const CHUNK_OVERHEAD: usize = 16;

/// The resident size less what malloc has handed out (estimated, see the module comment):
/// resident memory malloc holds free, plus what is never malloc's (code, stacks). None
/// where it cannot be measured.
pub fn resident_not_in_use() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf takes no pointers and only reads state.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
        let handed_out =
            crate::alloc::allocated() + crate::alloc::allocations().saturating_mul(CHUNK_OVERHEAD);
        Some((pages * page).saturating_sub(handed_out))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Returns malloc's free pages to the operating system (glibc's `malloc_trim(0)`).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory malloc owns and no live allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The longest wait between two looks while writes go on and no trim was found worthwhile.
pub const CHECK_AT_MOST_EVERY: Duration = Duration::from_secs(32);

/// When the next look is due: the sweeper task's memory between looks.
#[derive(Debug)]
pub struct Release {
    last_check: Option<Instant>,
    /// The wait before the next look: [`CHECK_EVERY`] after a trim or when keys went away,
    /// doubling (up to [`CHECK_AT_MOST_EVERY`]) after each look that found nothing to trim.
    interval: Duration,
    /// The keyspace's change counter and key count at the last look.
    seen: (u64, usize),
    /// [`resident_not_in_use`] right after the last trim, or the lowest seen since.
    floor: Option<usize>,
    /// The first look's [`resident_not_in_use`] (at start-up: what is never malloc's).
    baseline: Option<usize>,
    /// Half the keys or more went since the last look (see [`Release::due`]).
    keys_went: bool,
}

impl Default for Release {
    fn default() -> Self {
        Release {
            last_check: None,
            interval: CHECK_EVERY,
            seen: (0, 0),
            floor: None,
            baseline: None,
            keys_went: false,
        }
    }
}

impl Release {
    pub fn new() -> Self {
        Release::default()
    }

    /// Whether to look now, given the keyspace's change counter and key count. Nothing is
    /// freed without a change, so an idle server never looks; a 64th of the keys gone
    /// since the last look (FLUSHALL, a large DEL or drain) brings the wait back to
    /// [`CHECK_EVERY`] — steady expiry churn does not (what it frees, its writes take
    /// again), so such a server looks only every [`CHECK_AT_MOST_EVERY`].
    pub fn due(&mut self, now: Instant, changes: u64, keys: usize) -> bool {
        if self.last_check.is_some() && changes == self.seen.0 {
            return false;
        }
        if many_fewer(keys, self.seen.1) {
            self.interval = CHECK_EVERY;
        }
        // Half the keys or more gone since the last look (FLUSHALL, a large DEL, a fast
        // drain): see `effective_floor`. Not on slower losses, so that a long drain of a
        // fragmented heap does not trim at every look.
        if keys <= self.seen.1 / 2 && self.seen.1 > 0 {
            self.keys_went = true;
        }
        if self
            .last_check
            .is_some_and(|t| now.duration_since(t) < self.interval)
        {
            return false;
        }
        self.last_check = Some(now);
        self.seen = (changes, keys);
        true
    }

    /// Looks at the allocator and trims when enough resident memory is free. Blocking: run
    /// it off the async workers. Returns whether it trimmed.
    pub fn check_and_trim(&mut self) -> bool {
        let released = crate::keyspace::release_free_slabs();
        if released > 0 {
            tracing::debug!(bytes = released, "unmapped empty slab spans");
        }
        let looked = Instant::now();
        let Some(slack) = resident_not_in_use() else {
            return false;
        };
        tracing::trace!(
            free_resident = slack,
            took_us = looked.elapsed().as_micros() as u64,
            "looked at the allocator"
        );
        let baseline = *self.baseline.get_or_insert(slack);
        let floor = effective_floor(
            *self.floor.get_or_insert(slack),
            baseline,
            std::mem::take(&mut self.keys_went),
        );
        if !should_trim(slack, floor) {
            self.floor = Some(floor.min(slack));
            self.interval = (self.interval * 2).min(CHECK_AT_MOST_EVERY);
            return false;
        }
        self.interval = CHECK_EVERY;
        let started = Instant::now();
        trim();
        self.floor = resident_not_in_use();
        tracing::debug!(
            free_resident = slack,
            after = self.floor.unwrap_or(0),
            took_us = started.elapsed().as_micros() as u64,
            "returned free memory to the system"
        );
        true
    }
}

/// At least a 64th of `before` (and at least one key) is gone.
fn many_fewer(now: usize, before: usize) -> bool {
    now < before && before - now >= (before / 64).max(1)
}

/// The floor a look compares with. What the last trim could not return (pages partly in
/// use) counts as the baseline until half the keys have gone (FLUSHALL, a large DEL):
/// those pages may be free now, so the floor goes back to the start-up one. Otherwise a
/// trim in the middle of a load, which leaves its fragmented heap as the floor, could keep
/// a later FLUSHALL from returning anything.
fn effective_floor(floor: usize, baseline: usize, keys_went: bool) -> usize {
    if keys_went {
        floor.min(baseline)
    } else {
        floor
    }
}

/// The rule: trim when [`TRIM_THRESHOLD`] more resident memory is free than after the
/// last trim.
fn should_trim(slack: usize, floor: usize) -> bool {
    slack >= floor.saturating_add(TRIM_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_past_the_threshold_above_the_floor() {
        assert!(!should_trim(0, 0));
        assert!(!should_trim(TRIM_THRESHOLD - 1, 0));
        assert!(should_trim(TRIM_THRESHOLD, 0));
        // What the last trim could not return does not trigger another one.
        assert!(!should_trim(40 << 20, 30 << 20));
        assert!(should_trim(46 << 20, 30 << 20));
    }

    #[test]
    fn many_keys_gone_bring_the_floor_back_to_the_start_up_baseline() {
        // A trim during a load left 30 MiB it could not return; the load is flushed.
        let (after_trim, baseline) = (30 << 20, 7 << 20);
        assert_eq!(effective_floor(after_trim, baseline, false), after_trim);
        assert!(!should_trim(
            40 << 20,
            effective_floor(after_trim, baseline, false)
        ));
        assert!(should_trim(
            40 << 20,
            effective_floor(after_trim, baseline, true)
        ));
        // A floor already below the baseline stays.
        assert_eq!(effective_floor(5 << 20, baseline, true), 5 << 20);
        let mut r = Release::new();
        let t0 = Instant::now();
        assert!(r.due(t0, 1, 1000));
        assert!(!r.keys_went);
        assert!(r.due(t0 + CHECK_EVERY, 2, 600));
        assert!(!r.keys_went, "400 of 1000 keys gone");
        assert!(r.due(t0 + CHECK_EVERY * 2, 3, 0));
        assert!(r.keys_went, "the 600 left gone");
    }

    #[test]
    fn looks_at_most_once_a_second_and_only_after_changes() {
        let mut r = Release::new();
        let t0 = Instant::now();
        let sec = |n: u64| t0 + CHECK_EVERY * n as u32;
        assert!(r.due(t0, 0, 0));
        assert!(!r.due(t0 + Duration::from_millis(500), 5, 10));
        assert!(r.due(sec(1), 5, 10));
        // No change since: an idle server does not look.
        assert!(!r.due(sec(5), 5, 10));
        assert!(r.due(sec(5), 6, 10));
    }

    #[test]
    fn backs_off_while_nothing_is_worth_trimming_and_comes_back_when_keys_go() {
        let mut r = Release::new();
        let t0 = Instant::now();
        r.last_check = Some(t0);
        r.interval = CHECK_EVERY * 8;
        assert!(!r.due(t0 + CHECK_EVERY, 1, 0));
        assert!(r.due(t0 + CHECK_EVERY * 8, 2, 1000));
        // A few keys fewer (expiry churn): the wait stays.
        assert!(!r.due(t0 + CHECK_EVERY * 9, 3, 999));
        // Many fewer keys than at the last look: back to once a second.
        assert!(r.due(t0 + CHECK_EVERY * 9, 4, 400));
        assert_eq!(r.interval, CHECK_EVERY);
        assert!(many_fewer(0, 1));
        assert!(!many_fewer(6400, 6450));
        assert!(many_fewer(6300, 6400));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_is_seen_and_trimmed() {
        // 64 MiB in 64 KiB pieces, below glibc's mmap threshold, so they come from an
        // arena and stay there when freed.
        let pieces: Vec<Vec<u8>> = (0..1024).map(|i| vec![i as u8; 64 << 10]).collect();
        let mut r = Release::new();
        assert!(!r.check_and_trim(), "the first look only sets the baseline");
        // Keep the last piece so the arena's top is in use and malloc cannot simply shrink it.
        let mut pieces = pieces;
        let keep = pieces.pop();
        drop(pieces);
        let slack = resident_not_in_use().expect("measurable on glibc");
        assert!(
            r.check_and_trim(),
            "64 MiB freed, {slack} resident and free"
        );
        let after = resident_not_in_use().expect("measurable on glibc");
        assert!(after < slack, "trim returned nothing: {slack} -> {after}");
        drop(keep);
    }
}
