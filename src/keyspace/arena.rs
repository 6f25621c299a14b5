//! [`Arena`]: where a table-encoded hash keeps its fields.
//!
//! A field of a table used to be its own allocation behind a 16-byte boxed slice in the
//! table's bucket. For the common big-hash field (a short name and a short value, ~26
//! packed bytes) glibc hands out a 48-byte chunk, and the fat pointer doubles the cost of
//! every bucket, empty ones included: 84 bytes per field against Redis's 73. Here the
//! fields are packed back to back ([`packed`] encoding) in segments of up to
//! [`SEGMENT_MAX`] bytes, and a bucket holds an 8-byte [`FieldAt`] (segment, offset).
//!
//! A field whose encoding keeps its length is rewritten in place; otherwise the new
//! encoding is appended and the old bytes become dead, counted per segment. A segment
//! more than half dead is compacted by the table ([`Arena::take_segment`] hands it over:
//! its live fields are appended again and their buckets repointed), so dead bytes stay
//! below the live ones and a compaction touches one segment: bounded work, never the
//! whole hash. Dead bytes are never overwritten, so a segment is always a sequence of
//! whole encodings, live or dead, that can be walked from its start.

use super::packed::{self, FieldRef};

/// The largest segment fields are appended to (offsets fit easily; a compaction moves at
/// most this many bytes).
pub const SEGMENT_MAX: usize = 64 * 1024;

/// Fields encoded to this size or more get a segment of their own, exactly their size:
/// appending them would leave too much of a segment unused at its end.
const OWN_SEGMENT_FROM: usize = SEGMENT_MAX / 8;

/// Dead bytes are kept below 1/`DEAD_SHARE` of the arena's used bytes (past a few
/// segments), so a table's fields cost at most an eighth more than their encodings.
const DEAD_SHARE: usize = 8;

/// Where a field is stored: segment index (high 32 bits) and byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldAt(u64);

impl FieldAt {
    pub fn at(segment: usize, offset: usize) -> Self {
        FieldAt((segment as u64) << 32 | offset as u64)
    }

    fn segment(self) -> usize {
        (self.0 >> 32) as usize
    }

    fn offset(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
}

#[derive(Clone, Debug, Default)]
struct Segment {
    /// Encodings back to back; `len` is how far the segment is used.
    bytes: Vec<u8>,
    /// Bytes of encodings no bucket points to any more.
    dead: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Arena {
    segments: Vec<Segment>,
    /// Indexes of freed segments, reused before the vector grows.
    free: Vec<u32>,
    /// The segment small fields are appended to.
    tail: Option<usize>,
    /// Bytes used by encodings in all segments, and of those the dead.
    used: usize,
    dead: usize,
    /// `dead` when the segments were last searched for the most dead one: the search is
    /// O(segments), so it waits until another eighth of a segment has died.
    dead_at_search: usize,
}

impl Arena {
    /// An arena whose first segment holds `bytes` (a compact hash being converted).
    pub fn with_capacity(bytes: usize) -> Self {
        let mut arena = Arena::default();
        if bytes > 0 {
            let seg = arena.new_segment(bytes.min(SEGMENT_MAX));
            arena.tail = Some(seg);
        }
        arena
    }

    /// The segment bytes holding `at`'s encoding, and its offset in them.
    #[inline]
    pub fn bytes(&self, at: FieldAt) -> (&[u8], usize) {
        (&self.segments[at.segment()].bytes, at.offset())
    }

    /// The encoding stored at `at`, as it is (for moving it).
    pub fn encoded(&self, at: FieldAt) -> &[u8] {
        let (bytes, off) = self.bytes(at);
        let (_, n) = packed::decode_at(bytes, off);
        &bytes[off..off + n]
    }

    /// The field stored at `at`.
    #[inline]
    pub fn field(&self, at: FieldAt) -> FieldRef<'_> {
        let (bytes, off) = self.bytes(at);
        packed::decode_at(bytes, off).0
    }

    /// The field stored at `at` and the size of its encoding.
    #[inline]
    pub fn entry(&self, at: FieldAt) -> (FieldRef<'_>, usize) {
        let (bytes, off) = self.bytes(at);
        packed::decode_at(bytes, off)
    }

    /// Just the field's name: what lookups and rehashes compare.
    #[inline]
    pub fn name(&self, at: FieldAt) -> &[u8] {
        let (bytes, off) = self.bytes(at);
        packed::name_at(bytes, off)
    }

    /// The address of `at`'s encoding (for prefetching).
    #[inline]
    pub fn addr(&self, at: FieldAt) -> usize {
        self.segments
            .get(at.segment())
            .map_or(0, |s| s.bytes.as_ptr() as usize + at.offset())
    }

    /// Rewrites the encoding at `at`, which must be `len` bytes long and stay so.
    pub fn rewrite(&mut self, at: FieldAt, field: &[u8], value: &[u8], t: Option<u64>) {
        let n = packed::encoded_len(field, value, t);
        let off = at.offset();
        packed::encode_into(
            &mut self.segments[at.segment()].bytes[off..off + n],
            field,
            value,
            t,
        );
    }

    /// Stores a new encoding of the field.
    pub fn push(&mut self, field: &[u8], value: &[u8], t: Option<u64>) -> FieldAt {
        let n = packed::encoded_len(field, value, t);
        let seg = self.room_for(n);
        let bytes = &mut self.segments[seg].bytes;
        let off = bytes.len();
        packed::encode(bytes, field, value, t);
        self.used += n;
        FieldAt::at(seg, off)
    }

    /// Stores an encoding as it is (a compaction moving it).
    pub fn push_encoded(&mut self, encoded: &[u8]) -> FieldAt {
        let seg = self.room_for(encoded.len());
        let bytes = &mut self.segments[seg].bytes;
        let off = bytes.len();
        bytes.extend_from_slice(encoded);
        self.used += encoded.len();
        FieldAt::at(seg, off)
    }

    /// Marks the `len` bytes at `at` dead. Returns a segment now due for compaction: this
    /// one if it is more than half dead, or, once dead bytes are more than [`DEAD_SHARE`]
    /// of the arena, the one with the most (searched for at most once per eighth of a
    /// segment released); a segment wholly dead is freed here.
    #[must_use]
    pub fn release(&mut self, at: FieldAt, len: usize) -> Option<usize> {
        let seg = at.segment();
        let s = &mut self.segments[seg];
        s.dead += len;
        self.dead += len;
        debug_assert!(s.dead <= s.bytes.len());
        if s.dead >= s.bytes.len() {
            if self.tail == Some(seg) {
                // Nothing in it is pointed to: start it over, keeping its capacity.
                self.used -= s.bytes.len();
                self.dead -= s.dead;
                self.dead_at_search = self.dead_at_search.min(self.dead);
                s.bytes.clear();
                s.dead = 0;
            } else {
                self.free_segment(seg);
            }
            None
        } else if self.half_dead(seg) {
            Some(seg)
        } else if self.dead * DEAD_SHARE > self.used
            && self.used > 4 * SEGMENT_MAX
            && self.dead >= self.dead_at_search + SEGMENT_MAX / 8
        {
            // Dead bytes spread thinly over many segments (a pass that gives every field
            // a TTL moves each one): the segment that gives back the most for its copy.
            self.dead_at_search = self.dead;
            self.most_dead()
        } else {
            None
        }
    }

    /// Takes a segment's bytes out for compaction. Its index stays reserved until
    /// [`Arena::free_taken`], so no field moved meanwhile gets a handle equal to one the
    /// compaction is still looking for.
    /// The tail is replaced by a new one sized for the live bytes it held.
    pub fn take_segment(&mut self, seg: usize) -> Vec<u8> {
        let s = &mut self.segments[seg];
        let live = s.bytes.len() - s.dead;
        self.used -= s.bytes.len();
        self.dead -= s.dead;
        self.dead_at_search = self.dead_at_search.min(self.dead);
        s.dead = 0;
        let bytes = std::mem::take(&mut s.bytes);
        if self.tail == Some(seg) {
            self.tail = None;
            if live > 0 {
                self.tail = Some(self.new_segment(live.min(SEGMENT_MAX)));
            }
        }
        bytes
    }

    /// Whether dead bytes are past the share [`Arena::release`] keeps them under (after
    /// releases whose compactions were skipped, as a drain of expired fields does).
    pub fn mostly_dead(&self) -> bool {
        self.dead * DEAD_SHARE > self.used
    }

    /// The segment with the most dead bytes, if any has some.
    pub fn most_dead(&self) -> Option<usize> {
        self.segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.dead > 0)
            .max_by_key(|(_, s)| s.dead)
            .map(|(i, _)| i)
    }

    /// Whether segment `seg` is more than half dead.
    pub fn half_dead(&self, seg: usize) -> bool {
        self.segments
            .get(seg)
            .is_some_and(|s| s.dead * 2 > s.bytes.len())
    }

    /// Bytes of live encodings.
    pub fn live(&self) -> usize {
        self.used - self.dead
    }

    /// Frees a segment emptied by [`Arena::take_segment`].
    pub fn free_taken(&mut self, seg: usize) {
        self.free_segment(seg);
    }

    /// Heap bytes held (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.segments.capacity() * std::mem::size_of::<Segment>()
            + self.free.capacity() * 4
            + self
                .segments
                .iter()
                .map(|s| s.bytes.capacity())
                .sum::<usize>()
    }

    /// Bytes used by encodings, live and dead, and of those the dead, summed over the
    /// segments (invariant checks); None if that disagrees with the running counts.
    pub fn used_and_dead(&self) -> Option<(usize, usize)> {
        let sums = self
            .segments
            .iter()
            .fold((0, 0), |(u, d), s| (u + s.bytes.len(), d + s.dead));
        (sums == (self.used, self.dead)).then_some(sums)
    }

    /// A segment with room for `n` more bytes.
    fn room_for(&mut self, n: usize) -> usize {
        if n >= OWN_SEGMENT_FROM {
            return self.new_segment(n);
        }
        if let Some(seg) = self.tail {
            let bytes = &mut self.segments[seg].bytes;
            let (len, cap) = (bytes.len(), bytes.capacity());
            if len + n <= cap {
                return seg;
            }
            if len + n <= SEGMENT_MAX {
                // Grown by half again (exactly, so the segment never holds more than a
                // third unused), up to the largest segment.
                let want = (cap + cap / 2).clamp(len + n, SEGMENT_MAX);
                bytes.reserve_exact(want - len);
                return seg;
            }
        }
        // The first segment is exactly as big as its first field (a small table of long
        // values must not pay for a segment it does not fill); later ones start as big as
        // the last one.
        let grown = self.tail.map_or(0, |seg| {
            self.segments[seg].bytes.capacity().min(SEGMENT_MAX)
        });
        let seg = self.new_segment(grown.max(n));
        self.tail = Some(seg);
        seg
    }

    fn new_segment(&mut self, capacity: usize) -> usize {
        let segment = Segment {
            bytes: Vec::with_capacity(capacity),
            dead: 0,
        };
        match self.free.pop() {
            Some(i) => {
                self.segments[i as usize] = segment;
                i as usize
            }
            None => {
                self.segments.push(segment);
                self.segments.len() - 1
            }
        }
    }

    fn free_segment(&mut self, seg: usize) {
        let s = std::mem::take(&mut self.segments[seg]);
        self.used -= s.bytes.len();
        self.dead -= s.dead;
        self.dead_at_search = self.dead_at_search.min(self.dead);
        if self.tail == Some(seg) {
            self.tail = None;
        }
        if seg + 1 == self.segments.len() {
            self.segments.pop();
            // Freed segments at the end go too, so the vector shrinks with the hash.
            while self
                .segments
                .last()
                .is_some_and(|s| s.bytes.capacity() == 0)
                && self.tail != Some(self.segments.len() - 1)
            {
                self.segments.pop();
            }
            let len = self.segments.len();
            self.free.retain(|&i| (i as usize) < len);
        } else {
            self.free.push(seg as u32);
        }
        if self.segments.is_empty() {
            *self = Arena::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_rewrites_stay_in_place() {
        let mut a = Arena::default();
        let x = a.push(b"f1", b"v1", None);
        let y = a.push(b"f2", b"value2", Some(42));
        assert_eq!(a.field(x).value, b"v1");
        assert_eq!(a.name(y), b"f2");
        assert_eq!(a.field(y).expire_at, Some(42));
        a.rewrite(x, b"f1", b"w1", None);
        assert_eq!(a.field(x).value, b"w1");
        assert_eq!(a.field(y).value, b"value2");
    }

    #[test]
    fn big_fields_get_their_own_segment_and_free_it() {
        let mut a = Arena::default();
        let small = a.push(b"s", b"v", None);
        let big_value = vec![7u8; OWN_SEGMENT_FROM];
        let big = a.push(b"b", &big_value, None);
        assert_ne!(big.segment(), small.segment());
        let (_, n) = a.entry(big);
        assert_eq!(a.release(big, n), None);
        assert_eq!(a.used_and_dead(), Some((a.entry(small).1, 0)));
    }

    #[test]
    fn a_half_dead_full_segment_is_due_and_a_dead_tail_starts_over() {
        let mut a = Arena::default();
        let value = [1u8; 100];
        let mut handles = Vec::new();
        while handles.len() < 2 * SEGMENT_MAX / 100 {
            handles.push(a.push(b"field", &value, None));
        }
        let first = handles[0].segment();
        assert_ne!(
            Some(first),
            a.tail,
            "appending moved on to a second segment"
        );
        let n = a.entry(handles[0]).1;
        let in_first: Vec<_> = handles.iter().filter(|h| h.segment() == first).collect();
        let mut due = None;
        for h in &in_first[..in_first.len() / 2 + 1] {
            due = due.or(a.release(**h, n));
        }
        assert_eq!(due, Some(first));
        // The tail, wholly dead, is reused from its start (on the way it was due too).
        let tail = a.tail.expect("a tail");
        let in_tail: Vec<_> = handles.iter().filter(|h| h.segment() == tail).collect();
        for h in &in_tail[..in_tail.len() - 1] {
            let _ = a.release(**h, n);
        }
        assert_eq!(a.release(*in_tail[in_tail.len() - 1], n), None);
        assert_eq!(a.push(b"f", b"v", None), FieldAt::at(tail, 0));
    }

    #[test]
    fn freed_segments_are_reused_and_trailing_ones_dropped() {
        let mut a = Arena::default();
        let big = vec![0u8; OWN_SEGMENT_FROM];
        let b1 = a.push(b"1", &big, None);
        let b2 = a.push(b"2", &big, None);
        let b3 = a.push(b"3", &big, None);
        let n = a.entry(b1).1;
        assert_eq!(a.release(b2, n), None);
        let b4 = a.push(b"4", &big, None);
        assert_eq!(b4.segment(), b2.segment());
        for h in [b1, b3, b4] {
            assert_eq!(a.release(h, n), None);
        }
        assert!(a.segments.is_empty() && a.free.is_empty());
    }
}
