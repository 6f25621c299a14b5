//! The allocator: the system's (glibc malloc, chosen by measurement, see memory.rs), with
//! the bytes the process holds counted — INFO's `used_memory`, as Redis's zmalloc counts.
//!
//! Each thread adds its allocations and frees to a thread-local balance and moves it to
//! the shared total only once it passes [`FLUSH_BYTES`] either way, so the count costs a
//! thread-local add per call and a shared atomic add per 256 KiB, not one per
//! allocation. The total is therefore exact to within 256 KiB per thread (16 KiB while a
//! `maxmemory` limit is set, see [`set_precise`]). The number of live allocations is
//! counted the same way (exact to [`FLUSH_ALLOCATIONS`] per thread): with it, memory.rs
//! estimates what malloc holds for the program without asking malloc, whose own statistics
//! (`mallinfo2`) walk every free chunk under the arena's lock. What a thread
//! still holds in its balance when it exits is lost (worker threads live as long as the
//! server).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// A thread's balance is moved to the total past this many bytes.
const FLUSH_BYTES: isize = 256 * 1024;

/// The same while a memory limit is set: the total is then exact to 16 KiB per thread,
/// for one more shared add per 16 KiB allocated.
const PRECISE_FLUSH_BYTES: isize = 16 * 1024;

/// A thread's count of allocations is moved to the total past this many either way.
const FLUSH_ALLOCATIONS: isize = 1024;

/// The flush threshold in force (see [`set_precise`]).
static FLUSH_AT: AtomicIsize = AtomicIsize::new(FLUSH_BYTES);

static TOTAL: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // `const`: no lazy initialisation, so nothing here allocates.
    /// Bytes and allocations not yet moved to the totals.
    static BALANCE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

/// The system allocator, counted.
pub struct Counting;

#[inline]
fn note(bytes: isize, allocations: isize) {
    // try_with: during thread teardown the slot may be gone; the change is then dropped.
    let _ = BALANCE.try_with(|b| {
        let (v, n) = b.get();
        let (v, n) = (v + bytes, n + allocations);
        if v.abs() >= FLUSH_AT.load(Ordering::Relaxed) || n.abs() >= FLUSH_ALLOCATIONS {
            let total = TOTAL.fetch_add(v, Ordering::Relaxed) + v;
            if total > 0 {
                PEAK.fetch_max(total as usize, Ordering::Relaxed);
            }
            LIVE.fetch_add(n, Ordering::Relaxed);
            b.set((0, 0));
        } else {
            b.set((v, n));
        }
    });
}

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counting touches only a thread-local cell and atomics, and never allocates.
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            note(layout.size() as isize, 1);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            note(layout.size() as isize, 1);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        note(-(layout.size() as isize), -1);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize, 0);
        }
        p
    }
}

/// Counts `bytes` (negative: freed) taken from memory this allocator does not hand out:
/// the keyspace's slabs (keyspace/slab.rs), whose slots are part of what the process
/// uses as malloc's chunks are. Not an allocation of malloc's: no chunk overhead.
#[inline]
pub fn note_external(bytes: isize) {
    note(bytes, 0);
}

/// Bytes allocated and not freed, process-wide (to within 256 KiB per thread).
pub fn allocated() -> usize {
    TOTAL.load(Ordering::Relaxed).max(0) as usize
}

/// Allocations made and not freed, process-wide (to within [`FLUSH_ALLOCATIONS`] per
/// thread).
pub fn allocations() -> usize {
    LIVE.load(Ordering::Relaxed).max(0) as usize
}

/// Counts more precisely (`maxmemory` set) or more cheaply.
pub fn set_precise(precise: bool) {
    let at = if precise {
        PRECISE_FLUSH_BYTES
    } else {
        FLUSH_BYTES
    };
    FLUSH_AT.store(at, Ordering::Relaxed);
}

/// Moves this thread's balance to the total now, so that [`allocated`] reflects what the
/// thread just freed: eviction reads the total right after freeing, and a balance left
/// behind would make it evict again for memory already given back.
pub fn flush_thread_balance() {
    let _ = BALANCE.try_with(|b| {
        let (v, n) = b.replace((0, 0));
        TOTAL.fetch_add(v, Ordering::Relaxed);
        LIVE.fetch_add(n, Ordering::Relaxed);
    });
}

/// The most [`allocated`] has been.
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed).max(allocated())
}
