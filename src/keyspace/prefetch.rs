//! Cache prefetching for pipelined batches.
//!
//! A command's cost at pipeline depth is dominated by cache misses on the key's table slot
//! and on the hash's field buffer, taken one command at a time. When a read brings in a
//! batch of requests, the connection names their keys up front
//! ([`Keyspace::prefetch`](super::Keyspace::prefetch)), and the loads for all of them are
//! started at once, so that the misses overlap instead of queueing (Redis 8 does the same
//! for its I/O threads' batches).
//!
//! Everything here is a hint: a prefetch of a wrong or stale address costs a wasted load,
//! never a fault or a wrong answer.

/// Starts loading the cache line holding `addr` into every cache level.
#[inline(always)]
pub fn prefetch_read(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint; it never faults or changes architectural state,
    // whatever the address (SSE, which it needs, is part of x86-64's baseline).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Prefetches the `len` bytes starting at `addr`, at most `max_lines` cache lines of them.
#[inline]
pub fn prefetch_range(addr: usize, len: usize, max_lines: usize) {
    const LINE: usize = 64;
    let first = addr & !(LINE - 1);
    let end = addr.saturating_add(len);
    let mut line = first;
    for _ in 0..max_lines {
        if line >= end {
            break;
        }
        prefetch_read(line);
        line += LINE;
    }
}
