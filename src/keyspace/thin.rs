//! [`ThinBytes`]: an owned byte slice in one machine word, where a `Box<[u8]>` takes two.
//!
//! The shard table's bucket is a hash value, and a small hash is one buffer, so the size of
//! that buffer's handle is paid by every bucket, empty ones included: with 100k keys the
//! second word of a boxed slice costs about 10 bytes per key. The length of almost every
//! buffer fits in 16 bits and a user-space address in the low 48 (x86-64 and AArch64
//! Linux map nothing above 2^47 unless asked to), so the word holds both:
//!
//! ```text
//! bits 48..64: length (0xFFFF: "spilled")   bits 0..48: address (bit 0 always clear)
//! ```
//!
//! A buffer of 65,535 bytes or more (or, on a platform that breaks the assumption, one whose
//! address does not fit) is *spilled*: the word then points to a `Box<[u8]>` of its own,
//! one more allocation and indirection for a rare size. Bit 0 is always clear, so an owner
//! can use it as a tag (`hash.rs` tells a table from a compact buffer by it).
//!
//! A buffer of [`slab::MIN_LEN`]..=[`slab::MAX_LEN`] bytes (every small hash) is a slot
//! of the keyspace's slabs (slab.rs: no malloc header, even sizes); any other is a
//! `Box<[u8]>` (or a `Box<Box<[u8]>>`), made and freed through `Box`. The length tells
//! which, so the word needs no mark for it.

use super::slab;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

/// Where the length starts in the word.
const LEN_SHIFT: u32 = 48;
/// The length field's value for a spilled buffer.
const SPILLED: usize = 0xFFFF;
const ADDR_MASK: usize = (1 << LEN_SHIFT) - 1;

/// An owned `[u8]` in 8 bytes; see the module comment. Bit 0 of the word is always 0.
#[repr(transparent)]
pub struct ThinBytes {
    word: NonNull<u8>,
    _owns: PhantomData<Box<[u8]>>,
}

// SAFETY: ThinBytes owns its bytes as a Box<[u8]> does (no sharing, no interior
// mutability), so it is Send and Sync exactly when Box<[u8]> is.
unsafe impl Send for ThinBytes {}
unsafe impl Sync for ThinBytes {}

const _: () = assert!(std::mem::size_of::<ThinBytes>() == 8);
const _: () = assert!(usize::BITS == 64);

impl ThinBytes {
    /// Takes ownership of `bytes`.
    pub fn from_box(bytes: Box<[u8]>) -> Self {
        let len = bytes.len();
        if len == 0 {
            return Self::empty();
        }
        if slab::serves(len) {
            return Self::from_slice(&bytes);
        }
        let ptr = Box::into_raw(bytes).cast::<u8>();
        let addr = ptr.addr();
        if len < SPILLED && addr & 1 == 0 && addr & !ADDR_MASK == 0 {
            // SAFETY: `ptr` came from a live Box, so it is non-null, and `len` is non-zero,
            // so the tagged address is non-null as well.
            let word = unsafe { NonNull::new_unchecked(ptr.map_addr(|a| a | len << LEN_SHIFT)) };
            return ThinBytes {
                word,
                _owns: PhantomData,
            };
        }
        // SAFETY: rebuilds the Box taken apart just above.
        let bytes = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) };
        let outer = Box::into_raw(Box::new(bytes)).cast::<u8>();
        if outer.addr() & !ADDR_MASK != 0 {
            // No supported target gives user space such an address; there is nothing
            // sound to fall back to, so stop before anything is misread.
            eprintln!("hashd: an allocation above 2^48 cannot be stored (unsupported platform)");
            std::process::abort();
        }
        // SAFETY: `outer` came from a live Box (non-null, 8-aligned: bit 0 clear).
        let word = unsafe { NonNull::new_unchecked(outer.map_addr(|a| a | SPILLED << LEN_SHIFT)) };
        ThinBytes {
            word,
            _owns: PhantomData,
        }
    }

    /// What the buffer takes from its allocator: a slab slot's size, or for malloc the
    /// length with glibc's 8-byte chunk header, rounded to its 16 bytes.
    pub fn allocation_size(&self) -> usize {
        let len = self.as_slice().len();
        match len {
            0 => 0,
            _ if slab::serves(len) => slab::slot_size(len),
            _ => (len + 8).next_multiple_of(16).max(32),
        }
    }

    /// A copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::with_len(bytes.len(), |b| b.copy_from_slice(bytes))
    }

    /// A buffer of `len` bytes, written by `fill` (it finds them initialised, to zeros or
    /// to anything).
    pub fn with_len(len: usize, fill: impl FnOnce(&mut [u8])) -> Self {
        if !slab::serves(len) {
            let mut b = vec![0; len].into_boxed_slice();
            fill(&mut b);
            return Self::from_box(b);
        }
        let p = slab::alloc(len);
        // SAFETY: a slot of `len` bytes (or more) this call owns; slab memory is always
        // initialised (mapped zeroed, or written before).
        fill(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) });
        Self::from_slot(p, len)
    }

    /// Wraps a slab slot of `len` bytes.
    fn from_slot(p: NonNull<u8>, len: usize) -> Self {
        let addr = p.as_ptr().addr();
        if addr & 1 != 0 || addr & !ADDR_MASK != 0 {
            eprintln!("hashd: an allocation above 2^48 cannot be stored (unsupported platform)");
            std::process::abort();
        }
        // SAFETY: `p` is non-null and `len` is non-zero, so the tagged word is non-null.
        let word = unsafe { NonNull::new_unchecked(p.as_ptr().map_addr(|a| a | len << LEN_SHIFT)) };
        ThinBytes {
            word,
            _owns: PhantomData,
        }
    }

    /// Replaces the `remove` bytes at `at` with `insert` zero bytes, moving the rest: one
    /// copy into storage of the new exact length, or none when the slot size stays (a
    /// large buffer is resized by `realloc`, which may grow it in place).
    ///
    /// Panics if `at + remove` is past the end (as `Vec::splice` does).
    pub fn resize_gap(&mut self, at: usize, remove: usize, insert: usize) {
        let len = self.len_field();
        let old_len = self.as_slice().len();
        assert!(at <= old_len && remove <= old_len - at, "gap out of range");
        let new_len = old_len - remove + insert;
        let tail = at + remove;
        if slab::serves(len)
            && slab::serves(new_len)
            && slab::slot_size(len) == slab::slot_size(new_len)
        {
            let p = self.ptr();
            // SAFETY: the slot holds slot_size(len) = slot_size(new_len) bytes, so both
            // ranges are inside it; ptr::copy allows overlap.
            unsafe {
                ptr::copy(p.add(tail), p.add(at + insert), old_len - tail);
                ptr::write_bytes(p.add(at), 0, insert);
            }
            let word = p.map_addr(|a| a | new_len << LEN_SHIFT);
            // SAFETY: a slot's address is non-null and new_len is non-zero (served).
            self.word = unsafe { NonNull::new_unchecked(word) };
            return;
        }
        if !slab::serves(len) && !slab::serves(new_len) && len != 0 {
            let mut v = std::mem::take(self).into_box().into_vec();
            if insert > remove {
                v.reserve_exact(insert - remove);
                v.resize(new_len, 0);
                v.copy_within(tail..old_len, at + insert);
            } else {
                v.copy_within(tail..old_len, at + insert);
                v.truncate(new_len);
            }
            v[at..at + insert].fill(0);
            *self = Self::from_box(v.into_boxed_slice());
            return;
        }
        self.rebuild(new_len, |old, b| {
            b[..at].copy_from_slice(&old[..at]);
            b[at..at + insert].fill(0);
            b[at + insert..].copy_from_slice(&old[tail..]);
        });
    }

    /// Replaces the bytes with `new_len` bytes that `fill` writes from the old ones (one
    /// allocation of the new size; the old storage is freed after).
    pub fn rebuild(&mut self, new_len: usize, fill: impl FnOnce(&[u8], &mut [u8])) {
        let moved = Self::with_len(new_len, |b| fill(self.as_slice(), b));
        *self = moved;
    }

    /// An empty buffer (no allocation).
    pub const fn empty() -> Self {
        ThinBytes {
            // A u16's dangling pointer: address 2, even and non-null.
            word: NonNull::<u16>::dangling().cast::<u8>(),
            _owns: PhantomData,
        }
    }

    /// The word itself (bit 0 clear), for an owner that tags it; [`ThinBytes::from_raw`]
    /// takes it back.
    pub fn into_raw(self) -> NonNull<u8> {
        std::mem::ManuallyDrop::new(self).word
    }

    /// Takes back a word from [`ThinBytes::into_raw`].
    ///
    /// # Safety
    /// `word` must come from `into_raw` and not have been taken back before.
    pub unsafe fn from_raw(word: NonNull<u8>) -> Self {
        ThinBytes {
            word,
            _owns: PhantomData,
        }
    }

    /// Gives the bytes back as the `Box` they are.
    pub fn into_box(self) -> Box<[u8]> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so ownership moves to the result.
        unsafe { this.take_box() }
    }

    #[inline(always)]
    fn len_field(&self) -> usize {
        self.word.as_ptr().addr() >> LEN_SHIFT
    }

    #[inline(always)]
    fn ptr(&self) -> *mut u8 {
        self.word.as_ptr().map_addr(|a| a & ADDR_MASK)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self.len_field() {
            SPILLED => self.as_slice().len(),
            n => n,
        }
    }

    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        let len = self.len_field();
        if len == SPILLED {
            // SAFETY: a spilled word points to a live Box<[u8]> this value owns.
            unsafe { &*self.ptr().cast::<Box<[u8]>>() }
        } else {
            // SAFETY: the address and length are those of a live Box<[u8]> or slab slot
            // this value owns (or of an empty slice, for which any non-null address is
            // valid).
            unsafe { std::slice::from_raw_parts(self.ptr(), len) }
        }
    }

    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len_field();
        if len == SPILLED {
            // SAFETY: as in `as_slice`, and `&mut self` makes the access exclusive.
            unsafe { &mut *self.ptr().cast::<Box<[u8]>>() }
        } else {
            // SAFETY: as in `as_slice`, and `&mut self` makes the access exclusive.
            unsafe { std::slice::from_raw_parts_mut(self.ptr(), len) }
        }
    }

    /// Rebuilds the owning Box.
    ///
    /// # Safety
    /// The caller must not use or drop `self` afterwards (the Box owns the bytes).
    unsafe fn take_box(&self) -> Box<[u8]> {
        let len = self.len_field();
        if slab::serves(len) {
            let b = Box::from(self.as_slice());
            slab::free(NonNull::new_unchecked(self.ptr()), len);
            return b;
        }
        if len == SPILLED {
            *Box::from_raw(self.ptr().cast::<Box<[u8]>>())
        } else {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr(), len))
        }
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        let len = self.len_field();
        if slab::serves(len) {
            // SAFETY: a slot of `len` bytes this value owns; it is not used again.
            unsafe { slab::free(NonNull::new_unchecked(self.ptr()), len) };
            return;
        }
        // SAFETY: `self` is being dropped; nothing uses it afterwards.
        drop(unsafe { self.take_box() });
    }
}

impl Default for ThinBytes {
    fn default() -> Self {
        Self::empty()
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> Self {
        Self::from_slice(self.as_slice())
    }
}

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Box<[u8]> {
        (0..n).map(|i| (i * 7 + n) as u8).collect()
    }

    #[test]
    fn round_trips_every_kind_of_length() {
        for n in [
            0,
            1,
            2,
            15,
            16,
            215,
            4096,
            SPILLED - 1,
            SPILLED,
            SPILLED + 1,
            200_000,
        ] {
            let t = ThinBytes::from_box(bytes(n));
            assert_eq!(t.len(), n);
            assert_eq!(t.as_slice(), &*bytes(n), "length {n}");
            assert_eq!(t.word.as_ptr().addr() & 1, 0, "bit 0 is free for a tag");
            let c = t.clone();
            assert_eq!(c.as_slice(), t.as_slice());
            assert_eq!(&*t.into_box(), &*bytes(n));
            drop(c);
        }
    }

    #[test]
    fn writes_go_to_the_owned_bytes() {
        for n in [3, SPILLED + 3] {
            let mut t = ThinBytes::from_box(bytes(n));
            t.as_mut_slice()[2] = 0xAB;
            assert_eq!(t.as_slice()[2], 0xAB);
            let mut v = t.into_box().into_vec();
            v.push(1);
            let t = ThinBytes::from_box(v.into_boxed_slice());
            assert_eq!(
                (t.len(), t.as_slice()[2], t.as_slice()[n]),
                (n + 1, 0xAB, 1)
            );
        }
    }

    #[test]
    fn the_empty_buffer_allocates_nothing_and_reads_empty() {
        let t = ThinBytes::default();
        assert_eq!(t.word.as_ptr().addr(), 2);
        assert!(t.as_slice().is_empty());
        assert_eq!(t.len(), 0);
        assert!(t.into_box().is_empty());
    }

    #[test]
    fn resize_gap_matches_a_vec_across_every_storage() {
        // Lengths wander over malloc-small, slab, malloc-large and (once) spilled sizes.
        let mut rng = fastrand::Rng::with_seed(16);
        let mut model: Vec<u8> = Vec::new();
        let mut t = ThinBytes::empty();
        for step in 0..20_000u32 {
            let len = model.len();
            let at = rng.usize(..=len);
            let remove = rng.usize(..=(len - at).min(40));
            let insert = match step {
                10_000 => SPILLED + 10,
                _ if len > 1_500 => rng.usize(..8),
                _ => rng.usize(..48),
            };
            t.resize_gap(at, remove, insert);
            model.splice(at..at + remove, std::iter::repeat_n(0, insert));
            // Write into the gap so a wrong move shows.
            for (i, b) in t.as_mut_slice()[at..at + insert].iter_mut().enumerate() {
                *b = (step as usize + i) as u8;
            }
            for (i, b) in model[at..at + insert].iter_mut().enumerate() {
                *b = (step as usize + i) as u8;
            }
            assert_eq!(t.as_slice(), &model[..], "step {step}");
            assert_eq!(t.word.as_ptr().addr() & 1, 0);
            if step == 10_001 {
                model.truncate(100);
                t.resize_gap(100, t.as_slice().len() - 100, 0);
                assert_eq!(t.as_slice(), &model[..]);
            }
        }
        let c = t.clone();
        assert_eq!(c.as_slice(), &model[..]);
        assert_eq!(&*t.into_box(), &model[..]);
    }

    #[test]
    fn slab_sizes_live_in_slots_and_round_trip_through_box() {
        for n in [slab::MIN_LEN, 9, 215, 216, slab::MAX_LEN] {
            let t = ThinBytes::from_box(bytes(n));
            assert_eq!(t.len_field(), n);
            assert_eq!(t.as_slice(), &*bytes(n));
            let mut r = t.clone();
            r.rebuild(n + 1, |old, new| {
                new[..n].copy_from_slice(old);
                new[n] = 7;
            });
            assert_eq!(&r.as_slice()[..n], &*bytes(n));
            assert_eq!(r.as_slice()[n], 7);
            assert_eq!(&*t.into_box(), &*bytes(n));
        }
    }
}
