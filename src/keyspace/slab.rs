//! Size-class slabs for the small buffers compact hashes live in ([`ThinBytes`] of
//! [`MIN_LEN`]..=[`MAX_LEN`] bytes).
//!
//! A small hash is one buffer (key, header and fields), and with 100k hashes of 10 fields
//! that buffer is ~216 bytes. glibc's malloc puts an 8-byte size header before every chunk
//! and rounds chunks to 16 bytes: ~15 bytes a buffer on average over sizes (8 when the size
//! happens to fit), 4–7% of a small hash. jemalloc and mimalloc have no header but size
//! classes 16–32 bytes apart at these sizes, which costs as much. So these buffers come
//! from here instead: slots of every even size, no header, no per-slot rounding beyond
//! one byte. (Even: [`ThinBytes`] keeps bit 0 of its word for its owner's tag.)
//!
//! **Layout.** Memory comes straight from the kernel in spans of [`SPAN`] bytes, aligned
//! to their size. A span holds slots of one size after a [`HEADER`]-byte header, so the
//! span of a slot is its address rounded down and freeing needs only the address and the
//! length, which the owner keeps anyway. A span hands out never-used slots in address
//! order (pages it has not reached are not resident) and reuses freed ones first, from a
//! list threaded through the free slots themselves.
//!
//! **Locking.** There are [`STRIPES`] pools, each behind its own lock. A thread allocates
//! from the pool it was given (round-robin, on its first allocation), a free goes to the
//! pool of the slot's span, whichever thread frees. Every critical section is a few loads
//! and stores, takes no other lock and makes no system call; spans are mapped and unmapped
//! outside the locks.
//!
//! **Giving memory back.** A span whose last slot is freed leaves its class for its pool's
//! list of empty spans, which the next class that needs a span takes from (a hash that
//! grows moves to a new size class at every write: without it, a lone growing hash would
//! map and unmap a span per write). No free makes a system call: [`release_empty`], called
//! by the sweeper task's memory look (memory.rs, once a second while keys go), unmaps all
//! but [`KEEP_EMPTY`] of each pool's empty spans, off the request path. Unmapping while
//! requests are served costs them: every `munmap` of a threaded process interrupts the
//! other cores running it to flush their TLBs, and a drain of 100k small hashes empties
//! hundreds of spans. So FLUSHALL and large deletes return this memory within about a
//! second, without `malloc_trim`. Like any slab allocator (and jemalloc), a span partly in
//! use stays.
//!
//! **Counting.** The bytes of slots in use are counted in `used_memory` (alloc.rs), as the
//! rounding of jemalloc's size classes is in Redis's. Free slots in spans are not, as free
//! chunks are not: they show in the resident size only.
//!
//! **fork.** BGSAVE forks while other threads may be inside a pool's lock; fork handlers
//! take every pool's lock before a fork and release them after, in parent and child (as
//! glibc does for its arenas), so the child never finds one held.
//!
//! [`ThinBytes`]: super::thin::ThinBytes

use parking_lot::Mutex;
use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// A span's size and alignment.
pub const SPAN: usize = 32 * 1024;
/// The span header's size; slots start after it.
const HEADER: usize = 64;
/// The lengths served here. A free slot holds the offset of the next one, so none is
/// shorter than 4 bytes; below 8 there is nothing to gain over malloc's smallest chunk.
pub const MIN_LEN: usize = 8;
/// Above this, malloc's header and rounding are under 3% of a buffer.
pub const MAX_LEN: usize = 512;
/// Size classes: one per even slot size, indexed by size / 2.
const CLASSES: usize = MAX_LEN / 2 + 1;
/// The number of pools.
const STRIPES: usize = 8;
/// Empty spans a pool keeps for reuse.
pub const KEEP_EMPTY: usize = 4;

/// Whether a buffer of `len` bytes is kept in a slot.
#[inline(always)]
pub const fn serves(len: usize) -> bool {
    len >= MIN_LEN && len <= MAX_LEN
}

/// The slot size for `len` bytes: the next even size.
#[inline(always)]
pub const fn slot_size(len: usize) -> usize {
    (len + 1) & !1
}

/// A span's header, at its start.
#[repr(C)]
struct Span {
    /// Neighbours in the class's list of spans with room (when `listed`).
    prev: *mut Span,
    next: *mut Span,
    /// The slot size.
    slot: u32,
    /// Slots in use.
    live: u32,
    /// Offset of the first free slot, 0 for none (offset 0 is the header).
    free: u32,
    /// Offset of the first never-used slot.
    bump: u32,
    /// The pool the span belongs to.
    pool: u8,
    /// Whether the span is in its class's list (it has room).
    listed: bool,
}

const _: () = assert!(std::mem::size_of::<Span>() <= HEADER);
const _: () =
    assert!(HEADER.is_multiple_of(2) && SPAN.is_power_of_two() && SPAN <= u32::MAX as usize);

impl Span {
    /// Whether a slot is left, free or never used.
    fn has_room(&self) -> bool {
        self.free != 0 || self.bump as usize + self.slot as usize <= SPAN
    }
}

struct Pool {
    /// Per class, the spans with room, doubly linked.
    avail: [*mut Span; CLASSES],
    /// Empty spans kept for reuse, linked through `next`.
    empty: *mut Span,
    empty_count: usize,
}

// SAFETY: the pointers are to spans only this pool's lock gives access to (a span's
// slots are owned by their ThinBytes, never read through the pool).
unsafe impl Send for Pool {}

impl Pool {
    const fn new() -> Self {
        Pool {
            avail: [ptr::null_mut(); CLASSES],
            empty: ptr::null_mut(),
            empty_count: 0,
        }
    }

    /// Puts `s` at the head of class `c`'s list.
    ///
    /// # Safety
    /// `s` is a span of this pool, not listed.
    unsafe fn link(&mut self, c: usize, s: *mut Span) {
        let head = self.avail[c];
        (*s).prev = ptr::null_mut();
        (*s).next = head;
        if !head.is_null() {
            (*head).prev = s;
        }
        self.avail[c] = s;
        (*s).listed = true;
    }

    /// Takes `s` out of class `c`'s list.
    ///
    /// # Safety
    /// `s` is a span of this pool, listed in class `c`.
    unsafe fn unlink(&mut self, c: usize, s: *mut Span) {
        let (prev, next) = ((*s).prev, (*s).next);
        if prev.is_null() {
            self.avail[c] = next;
        } else {
            (*prev).next = next;
        }
        if !next.is_null() {
            (*next).prev = prev;
        }
        (*s).listed = false;
    }

    /// Keeps an empty span for reuse (or for [`release_empty`]).
    ///
    /// # Safety
    /// `s` is a mapped span no list holds and no slot of which is in use.
    unsafe fn retire(&mut self, s: *mut Span) {
        (*s).next = self.empty;
        self.empty = s;
        self.empty_count += 1;
    }

    /// Takes all but `keep` of the empty spans out of the pool, linked through `next`.
    fn detach_empty(&mut self, keep: usize) -> *mut Span {
        let mut out = ptr::null_mut();
        while self.empty_count > keep {
            let s = self.empty;
            // SAFETY: `empty_count` spans are linked from `empty`, all mapped.
            unsafe {
                self.empty = (*s).next;
                (*s).next = out;
            }
            out = s;
            self.empty_count -= 1;
        }
        out
    }

    /// A slot of `slot` bytes, from a listed span, a kept empty one or `fresh` (a span
    /// just mapped by the caller, which gets it back if it was not needed). None: no span
    /// has room and no fresh one was given.
    ///
    /// # Safety
    /// `fresh`, if given, is a mapped span no one else uses; `me` is this pool's index.
    unsafe fn take(
        &mut self,
        me: usize,
        slot: usize,
        fresh: &mut Option<*mut Span>,
    ) -> Option<NonNull<u8>> {
        let c = slot / 2;
        let mut s = self.avail[c];
        if s.is_null() {
            s = if !self.empty.is_null() {
                let e = self.empty;
                self.empty = (*e).next;
                self.empty_count -= 1;
                e
            } else {
                fresh.take()?
            };
            s.write(Span {
                prev: ptr::null_mut(),
                next: ptr::null_mut(),
                slot: slot as u32,
                live: 0,
                free: 0,
                bump: HEADER as u32,
                pool: me as u8,
                listed: false,
            });
            self.link(c, s);
        }
        let base = s.cast::<u8>();
        let off = if (*s).free != 0 {
            let off = (*s).free;
            (*s).free = base.add(off as usize).cast::<u32>().read_unaligned();
            off
        } else {
            let off = (*s).bump;
            (*s).bump += slot as u32;
            off
        };
        (*s).live += 1;
        if !(*s).has_room() {
            self.unlink(c, s);
        }
        Some(NonNull::new_unchecked(base.add(off as usize)))
    }

    /// Frees the slot at `p` of span `s`.
    ///
    /// # Safety
    /// `p` is a slot in use of span `s`, which belongs to this pool.
    unsafe fn give(&mut self, s: *mut Span, p: *mut u8) {
        let c = (*s).slot as usize / 2;
        let off = p.addr() - s.addr();
        p.cast::<u32>().write_unaligned((*s).free);
        (*s).free = off as u32;
        (*s).live -= 1;
        if (*s).live == 0 {
            if (*s).listed {
                self.unlink(c, s);
            }
            self.retire(s);
        } else if !(*s).listed {
            self.link(c, s);
        }
    }
}

static POOLS: [Mutex<Pool>; STRIPES] = [const { Mutex::new(Pool::new()) }; STRIPES];

/// The next pool to give a thread.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's pool.
#[inline]
fn stripe() -> usize {
    STRIPE
        .try_with(|s| match s.get() {
            usize::MAX => {
                let v = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
                s.set(v);
                v
            }
            v => v,
        })
        .unwrap_or(0)
}

/// A slot for `len` bytes ([`serves`]`(len)`), its contents unspecified but initialised
/// (zeros or bytes written before). Aborts, as `Box` does, if no memory can be mapped.
pub fn alloc(len: usize) -> NonNull<u8> {
    debug_assert!(serves(len));
    let slot = slot_size(len);
    let me = stripe();
    let mut fresh = None;
    loop {
        let got = {
            let mut pool = POOLS[me].lock();
            // SAFETY: `fresh` is a span this call mapped and nothing else has seen.
            unsafe { pool.take(me, slot, &mut fresh) }
        };
        if let Some(p) = got {
            if let Some(unused) = fresh {
                // Another thread's free made room meanwhile: keep the span as an empty
                // one (unmapping it here would be a system call on the request path).
                // SAFETY: `unused` was mapped by `map`, never handed out, and is empty.
                unsafe { POOLS[me].lock().retire(unused) };
            }
            crate::alloc::note_external(slot as isize);
            return p;
        }
        fresh = Some(map().unwrap_or_else(|| {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; SPAN]>())
        }));
    }
}

/// Frees a slot from [`alloc`].
///
/// # Safety
/// `p` came from `alloc(len)` with this `len` and is not used again.
pub unsafe fn free(p: NonNull<u8>, len: usize) {
    debug_assert!(serves(len));
    let s = p.as_ptr().map_addr(|a| a & !(SPAN - 1)).cast::<Span>();
    debug_assert_eq!((*s).slot as usize, slot_size(len));
    let pool = (*s).pool as usize;
    POOLS[pool].lock().give(s, p.as_ptr());
    crate::alloc::note_external(-(slot_size(len) as isize));
}

/// Unmaps all but `keep` of each pool's empty spans; returns the bytes unmapped. Makes
/// system calls: not for the request path (see the module comment).
pub fn release_empty(keep: usize) -> usize {
    let mut released = 0;
    for pool in &POOLS {
        let mut s = pool.lock().detach_empty(keep);
        while !s.is_null() {
            // SAFETY: detached spans are empty, mapped and no longer reachable from a pool.
            unsafe {
                let next = (*s).next;
                unmap(s);
                s = next;
            }
            released += SPAN;
        }
    }
    released
}

/// Maps a span, aligned to its size: twice its size, less the ends. None if the kernel
/// refuses.
fn map() -> Option<*mut Span> {
    register_fork_handlers();
    #[cfg(unix)]
    // SAFETY: an anonymous private mapping, then unmapping parts of it that no one uses.
    unsafe {
        let len = 2 * SPAN;
        let raw = libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if raw == libc::MAP_FAILED {
            return None;
        }
        let raw = raw.cast::<u8>();
        let lead = raw.addr().next_multiple_of(SPAN) - raw.addr();
        if lead > 0 {
            libc::munmap(raw.cast(), lead);
        }
        let span = raw.add(lead);
        let tail = len - lead - SPAN;
        if tail > 0 {
            libc::munmap(span.add(SPAN).cast(), tail);
        }
        Some(span.cast())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Unmaps a span.
///
/// # Safety
/// `s` came from [`map`] and nothing uses it.
unsafe fn unmap(s: *mut Span) {
    #[cfg(unix)]
    libc::munmap(s.cast(), SPAN);
}

fn register_fork_handlers() {
    static ONCE: Once = Once::new();
    #[cfg(unix)]
    ONCE.call_once(|| {
        extern "C" fn before_fork() {
            for p in &POOLS {
                std::mem::forget(p.lock());
            }
        }
        extern "C" fn after_fork() {
            for p in &POOLS {
                // SAFETY: `before_fork` took every lock and leaked its guard; this is the
                // matching release, in the parent and in the child.
                unsafe { p.force_unlock() };
            }
        }
        // SAFETY: registers handlers that only take and release the pools' locks.
        unsafe {
            libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(p: NonNull<u8>, len: usize, seed: u8) {
        // SAFETY: `p` is a slot of at least `len` bytes the test owns.
        unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) }.fill(seed);
    }

    fn holds(p: NonNull<u8>, len: usize, seed: u8) -> bool {
        // SAFETY: as in `fill`.
        unsafe { std::slice::from_raw_parts(p.as_ptr(), len) }
            .iter()
            .all(|&b| b == seed)
    }

    #[test]
    fn slots_are_even_disjoint_and_keep_their_bytes() {
        let mut live = Vec::new();
        for i in 0..5_000usize {
            let len = MIN_LEN + i % (MAX_LEN - MIN_LEN + 1);
            let p = alloc(len);
            assert_eq!(p.as_ptr().addr() & 1, 0, "bit 0 stays free");
            fill(p, len, i as u8);
            live.push((p, len, i as u8));
            if i % 3 == 0 {
                let (p, len, seed) = live.swap_remove(i % live.len());
                assert!(holds(p, len, seed));
                // SAFETY: allocated above with this length, freed once.
                unsafe { free(p, len) };
            }
        }
        for (p, len, seed) in live {
            assert!(holds(p, len, seed), "a slot was overwritten");
            // SAFETY: as above.
            unsafe { free(p, len) };
        }
    }

    #[test]
    fn a_freed_slot_is_reused_first() {
        // Odd length in a class no other test uses, so the span is this test's alone.
        let len = 477;
        let a = alloc(len);
        let b = alloc(len);
        // SAFETY: allocated above, freed once.
        unsafe { free(a, len) };
        let c = alloc(len);
        assert_eq!(c, a);
        // SAFETY: as above.
        unsafe {
            free(b, len);
            free(c, len);
        }
    }

    #[test]
    fn emptied_spans_wait_for_the_release_which_keeps_a_few() {
        // A pool of the test's own, so other tests' allocations do not interfere.
        let mut pool = Pool::new();
        let slot = slot_size(501);
        let per_span = (SPAN - HEADER) / slot;
        let mut slots = Vec::new();
        for _ in 0..per_span * 40 {
            let mut fresh = None;
            // SAFETY: `fresh` is a span mapped here and given to this pool only.
            let p = unsafe { pool.take(0, slot, &mut fresh) }.unwrap_or_else(|| {
                let mut fresh = map();
                // SAFETY: as above.
                unsafe { pool.take(0, slot, &mut fresh) }.expect("a fresh span has room")
            });
            slots.push(p);
        }
        for p in slots {
            let s = p.as_ptr().map_addr(|a| a & !(SPAN - 1)).cast::<Span>();
            // SAFETY: a slot in use of a span of this pool, freed once.
            unsafe { pool.give(s, p.as_ptr()) };
        }
        assert_eq!(pool.empty_count, 40, "freeing unmaps nothing");
        let mut s = pool.detach_empty(KEEP_EMPTY);
        let mut detached = 0;
        while !s.is_null() {
            // SAFETY: detached spans are empty, mapped and reachable from nothing else.
            unsafe {
                let next = (*s).next;
                unmap(s);
                s = next;
            }
            detached += 1;
        }
        assert_eq!((detached, pool.empty_count), (40 - KEEP_EMPTY, KEEP_EMPTY));
        let mut kept = pool.detach_empty(0);
        while !kept.is_null() {
            // SAFETY: as above.
            unsafe {
                let next = (*kept).next;
                unmap(kept);
                kept = next;
            }
        }
    }

    /// A slot's pointer, moved to another thread to be freed there.
    struct Owned(NonNull<u8>, usize, u8);
    // SAFETY: the slot is owned by whoever holds this; nothing else refers to it.
    unsafe impl Send for Owned {}

    #[test]
    fn frees_from_other_threads_are_safe_while_the_owner_allocates() {
        let len = 333;
        let made: Vec<Owned> = std::thread::spawn(move || {
            (0..4_000)
                .map(|i| {
                    let p = alloc(len);
                    fill(p, len, i as u8);
                    Owned(p, len, i as u8)
                })
                .collect()
        })
        .join()
        .unwrap();
        let mut made = made.into_iter();
        let freers: Vec<_> = (0..4)
            .map(|_| {
                let part: Vec<Owned> = made.by_ref().take(1_000).collect();
                std::thread::spawn(move || {
                    for Owned(p, len, seed) in part {
                        assert!(holds(p, len, seed));
                        // SAFETY: allocated with this length, freed once.
                        unsafe { free(p, len) };
                    }
                })
            })
            .collect();
        // Meanwhile this thread allocates and frees in the same class.
        for i in 0..4_000 {
            let p = alloc(len);
            fill(p, len, i as u8);
            assert!(holds(p, len, i as u8));
            // SAFETY: as above.
            unsafe { free(p, len) };
        }
        for f in freers {
            f.join().unwrap();
        }
    }
}
