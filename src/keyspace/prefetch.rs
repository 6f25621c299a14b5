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
//!
//! Prefetching a bucket of a `hashbrown::HashTable` before probing it needs its address, which
//! the table does not expose. It follows from hashbrown's layout: entries are stored
//! downwards from the control bytes (bucket `i` at `ctrl - (i + 1) * size_of::<T>()`, its
//! control byte at `ctrl + i`), and `ctrl` can be derived from any full bucket's address —
//! one the caller has just found, never one searched for (that search can cost more than the
//! prefetch saves). Unit tests pin this layout, so an upgrade that changed it fails them.

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

/// The control-byte address implied by `entry` sitting in `bucket`.
pub fn ctrl_from<T>(bucket: usize, entry: &T) -> usize {
    entry as *const T as usize + (bucket + 1) * std::mem::size_of::<T>()
}

/// Where the entry of `bucket` lives in a table whose control bytes are at `ctrl`.
pub fn bucket_addr<T>(ctrl: usize, bucket: usize) -> usize {
    ctrl.wrapping_sub(
        bucket
            .wrapping_add(1)
            .wrapping_mul(std::mem::size_of::<T>()),
    )
}

/// Starts loading the control byte and the entry of `bucket`.
#[inline]
pub fn prefetch_bucket<T>(ctrl: usize, bucket: usize) {
    prefetch_read(ctrl.wrapping_add(bucket));
    prefetch_range(bucket_addr::<T>(ctrl, bucket), std::mem::size_of::<T>(), 2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashbrown::HashTable;

    /// A full bucket of `table` and the control-byte address derived from it.
    fn table_ctrl<T>(table: &HashTable<T>) -> Option<(usize, usize)> {
        let bucket = table.iter_buckets().next()?;
        let entry = table.get_bucket(bucket)?;
        Some((bucket, ctrl_from(bucket, entry)))
    }

    #[test]
    fn bucket_addresses_follow_the_table_layout() {
        let mut table: HashTable<[u64; 3]> = HashTable::new();
        assert_eq!(table_ctrl(&table), None);
        let hasher = ahash::RandomState::new();
        for i in 0..1000u64 {
            let v = [i, i + 1, i + 2];
            table.insert_unique(hasher.hash_one(v), v, |v| hasher.hash_one(v));
            let (_, ctrl) = table_ctrl(&table).expect("non-empty");
            for b in table.iter_buckets() {
                let actual = table.get_bucket(b).map(|e| e as *const _ as usize);
                assert_eq!(actual, Some(bucket_addr::<[u64; 3]>(ctrl, b)));
            }
        }
    }
}
