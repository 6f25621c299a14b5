//! [`TableAlloc`]: the allocator of the keyspace's hash tables (each shard's table of keys,
//! a big hash's table of fields).
//!
//! A hash table grows by doubling: it allocates the new table, moves the entries and frees
//! the old one. Through malloc, the freed tables of a growing keyspace (and every table
//! after FLUSHALL or a DEL) stay in malloc's heap, resident, until something reuses them
//! or `malloc_trim` runs; small hashes, which live in slabs (slab.rs), never reuse them.
//! With 100k keys that was ~1 MB held for nothing, ~8 bytes per key. So a table of
//! [`MAPPED_FROM`] bytes or more is mapped from the kernel on its own and unmapped when
//! freed: its pages go back at once. A table grows rarely (log₂ of its size times), so
//! the system calls cost nothing measurable; smaller tables stay with malloc.
//!
//! Mapped tables count in `used_memory` as malloc's allocations do (alloc.rs).

use allocator_api2::alloc::{AllocError, Allocator, Global, Layout};
use std::ptr::NonNull;

/// Tables this large or larger are mapped on their own.
pub const MAPPED_FROM: usize = 32 * 1024;

/// What the mapping of `size` bytes takes: whole pages.
fn mapped_len(size: usize) -> usize {
    size.next_multiple_of(4096)
}

/// Whether `layout` is mapped on its own (see the module comment). Mapping gives page
/// alignment, more than any table asks for.
fn mapped(layout: Layout) -> bool {
    cfg!(unix) && layout.size() >= MAPPED_FROM && layout.align() <= 4096
}

/// The keyspace tables' allocator: see the module comment.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableAlloc;

// SAFETY: a block from `allocate` stays valid until `deallocate` (malloc's, or a private
// mapping of at least the layout's size, page-aligned, that only `deallocate` unmaps), and
// `deallocate` sends every layout back where `allocate` took it from (same test on the
// same layout). Copies of the (stateless) allocator are interchangeable.
unsafe impl Allocator for TableAlloc {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if !mapped(layout) {
            return Global.allocate(layout);
        }
        #[cfg(unix)]
        {
            let len = mapped_len(layout.size());
            // SAFETY: an anonymous private mapping; no pointer is passed in.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(AllocError);
            }
            let p = NonNull::new(p.cast::<u8>()).ok_or(AllocError)?;
            crate::alloc::note_external(len as isize);
            Ok(NonNull::slice_from_raw_parts(p, layout.size()))
        }
        #[cfg(not(unix))]
        Err(AllocError)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if !mapped(layout) {
            return Global.deallocate(ptr, layout);
        }
        #[cfg(unix)]
        {
            let len = mapped_len(layout.size());
            libc::munmap(ptr.as_ptr().cast(), len);
            crate::alloc::note_external(-(len as isize));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashbrown::HashTable;

    #[test]
    fn small_and_mapped_tables_hold_their_entries() {
        let mut t: HashTable<u64, TableAlloc> = HashTable::new_in(TableAlloc);
        // Grows through malloc'd sizes into mapped ones, then shrinks back.
        for i in 0..100_000u64 {
            t.insert_unique(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i, |v| {
                v.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            });
        }
        assert!(t.allocation_size() >= MAPPED_FROM);
        for i in 0..100_000u64 {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert_eq!(t.find(h, |v| *v == i), Some(&i));
        }
        let c = t.clone();
        t.retain(|v| *v < 10);
        t.shrink_to_fit(|v| v.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        assert!(t.allocation_size() < MAPPED_FROM);
        assert_eq!(t.len(), 10);
        assert_eq!(c.len(), 100_000);
    }
}
