//! [`HashValue`]: the one type every hash command sees. It hides two encodings:
//!
//! * **compact** (Redis's `listpack`/`listpackex`): every field packed back to back in one
//!   buffer, in Redis's listpack order: the fields with a TTL first, by deadline, then the
//!   others in insertion order; lookups scan. Small hashes are the common case and this is
//!   where the memory goes, so it is as tight as we can make it.
//! * **table** (`hashtable`): one allocation per field in a hash table, plus an ordered
//!   index of the fields that have a TTL so that expired fields are found oldest-first
//!   without scanning.
//!
//! A compact hash becomes a table when it grows past `hash-max-listpack-entries` fields or
//! receives a field or value longer than `hash-max-listpack-value` (see [`EncodingLimits`]).
//! All of this is invisible to commands except through `OBJECT ENCODING`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::table_alloc::TableAlloc;
use hashbrown::HashTable;

#[cfg(test)]
use super::arena::SEGMENT_MAX;
use super::arena::{Arena, FieldAt};
use super::packed::{self, FieldRef};
use super::prefetch;
use super::thin::ThinBytes;
use smallvec::SmallVec;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Encoding thresholds (`hash-max-listpack-entries`, `hash-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodingLimits {
    pub max_compact_entries: usize,
    pub max_compact_value: usize,
}

impl EncodingLimits {
    /// The most fields a compact hash keeps: `hash-max-listpack-entries`, up to
    /// [`MAX_COMPACT_FIELDS`].
    pub fn compact_entries(&self) -> usize {
        self.max_compact_entries.min(MAX_COMPACT_FIELDS)
    }
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits {
            max_compact_entries: 512,
            max_compact_value: 64,
        }
    }
}

/// The encoding names `OBJECT ENCODING` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Listpack,
    ListpackEx,
    Hashtable,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Listpack => "listpack",
            Encoding::ListpackEx => "listpackex",
            Encoding::Hashtable => "hashtable",
        }
    }
}

/// What a write does to the TTL of the field it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlUpdate {
    /// The field becomes persistent (HSET, HSETEX without an expiry option).
    Clear,
    /// An existing field keeps its TTL; a new one has none (HINCRBY, HSETEX KEEPTTL).
    Keep,
    /// The field gets this deadline (HSETEX EX/PX/EXAT/PXAT).
    Set(u64),
}

/// A hash value. Field order while compact is Redis's listpackex order (see [`Compact`]);
/// arbitrary once a table.
#[derive(Clone, Debug, Default)]
pub struct HashValue {
    repr: Repr,
}

/// The encoding, in one word (the shard table's bucket is this value: 8 bytes instead of an
/// enum's 16): a compact hash's [`ThinBytes`] as it is (bit 0 clear), or a `Box<Table>`'s
/// address with bit 0 set. [`Repr::get`] and [`Repr::get_mut`] give it back as an enum.
#[repr(transparent)]
struct Repr {
    word: NonNull<u8>,
    _owns: PhantomData<(Compact, Box<Table>)>,
}

// SAFETY: Repr owns a Compact or a Box<Table>, both Send and Sync, and shares neither.
unsafe impl Send for Repr {}
unsafe impl Sync for Repr {}

/// A table's word has this bit set.
const TABLE_TAG: usize = 1;

enum ReprRef<'a> {
    Compact(&'a Compact),
    Table(&'a Table),
}

enum ReprMut<'a> {
    Compact(&'a mut Compact),
    Table(&'a mut Table),
}

impl Repr {
    fn compact(c: Compact) -> Repr {
        Repr {
            word: c.buf.0.into_raw(),
            _owns: PhantomData,
        }
    }

    fn table(t: Box<Table>) -> Repr {
        let ptr = Box::into_raw(t).cast::<u8>();
        // SAFETY: a Box's pointer is non-null and (Table being 8-aligned) has bit 0 clear, so
        // setting it keeps it non-null.
        let word = unsafe { NonNull::new_unchecked(ptr.map_addr(|a| a | TABLE_TAG)) };
        Repr {
            word,
            _owns: PhantomData,
        }
    }

    #[inline(always)]
    fn is_table(&self) -> bool {
        self.word.as_ptr().addr() & TABLE_TAG != 0
    }

    #[inline]
    fn is_compact(&self) -> bool {
        !self.is_table()
    }

    #[inline(always)]
    fn table_ptr(&self) -> *mut Table {
        self.word
            .as_ptr()
            .map_addr(|a| a & !TABLE_TAG)
            .cast::<Table>()
    }

    #[inline(always)]
    fn get(&self) -> ReprRef<'_> {
        if self.is_table() {
            // SAFETY: a tagged word is a live Box<Table> this value owns.
            ReprRef::Table(unsafe { &*self.table_ptr() })
        } else {
            // SAFETY: an untagged word is a ThinBytes; Compact, ExactBuf, ThinBytes and Repr
            // are all `repr(transparent)` over the same NonNull, so this is that Compact.
            ReprRef::Compact(unsafe { &*(self as *const Repr).cast::<Compact>() })
        }
    }

    #[inline(always)]
    fn get_mut(&mut self) -> ReprMut<'_> {
        if self.is_table() {
            // SAFETY: as in `get`; `&mut self` makes the access exclusive.
            ReprMut::Table(unsafe { &mut *self.table_ptr() })
        } else {
            // SAFETY: as in `get`. A Compact's buffer stays a ThinBytes (bit 0 clear)
            // whatever is done to it, so the tag still holds afterwards.
            ReprMut::Compact(unsafe { &mut *(self as *mut Repr).cast::<Compact>() })
        }
    }
}

impl Drop for Repr {
    fn drop(&mut self) {
        if self.is_table() {
            // SAFETY: a tagged word is a Box<Table> this value owns; it is not used again.
            drop(unsafe { Box::from_raw(self.table_ptr()) });
        } else {
            // SAFETY: an untagged word is a ThinBytes this value owns; it is not used again.
            drop(unsafe { ThinBytes::from_raw(self.word) });
        }
    }
}

impl Clone for Repr {
    fn clone(&self) -> Self {
        match self.get() {
            ReprRef::Compact(c) => Repr::compact(c.clone()),
            ReprRef::Table(t) => Repr::table(Box::new(t.clone())),
        }
    }
}

impl std::fmt::Debug for Repr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.get() {
            ReprRef::Compact(c) => f.debug_tuple("Compact").field(c).finish(),
            ReprRef::Table(t) => f.debug_tuple("Table").field(t).finish(),
        }
    }
}

impl Default for Repr {
    fn default() -> Self {
        Repr::compact(Compact::default())
    }
}

/// The compact encoding. Field order, as in Redis's listpackex: the fields with a TTL come
/// first, by deadline (a field given a deadline goes before those with the same one, as
/// `listpackExAddNew` puts it), then the fields without one in the order they were added.
/// Giving a field a TTL moves it into its place, removing its TTL (HPERSIST, or a write
/// that clears it) moves it to the end; a write that keeps the TTL keeps the place. A hash
/// that never had a TTL is therefore in insertion order, and a field without a TTL is
/// still appended or rewritten in place, paying nothing for the rule.
///
/// A hash stored in the keyspace is one allocation: this buffer also holds its key and the
/// key's bookkeeping, in a header before the fields (see [`header`]), so the shard table's
/// bucket is just this buffer's one-word handle ([`ThinBytes`]: address and length) and no
/// bucket pays for a key or deadlines inline, empty ones included.
#[derive(Clone, Debug)]
#[repr(transparent)]
struct Compact {
    buf: ExactBuf,
}

impl Default for Compact {
    fn default() -> Self {
        Compact {
            buf: ExactBuf(ThinBytes::from_slice(&[0; header::EMPTY])),
        }
    }
}

/// The header of a compact hash's buffer:
///
/// ```text
/// access u24 | count u5 flags u3 | varint(key length) key
///   [key deadline u64, if KEY_TTL] [field deadline u64, if FIELD_TTL]
///   [fields u16, if the count bits are 31] | fields…
/// ```
///
/// Integers are little-endian. The access state is Redis's 24 bits (`evict.rs`). The
/// fields are counted in the high five bits of the flags byte up to [`INLINE_COUNT_MAX`];
/// a larger hash stores 31 there and its count in 16 bits after the deadlines (a compact
/// hash holds at most [`MAX_COMPACT_FIELDS`] fields). So the fixed part is 4 bytes on the
/// common small hash, where it is most of what the header costs: two bytes fewer than a
/// 16-bit count took, for one branch in `count` (slots are even-sized, so a one-byte saving
/// would round away half the time). How many fields have a TTL is not stored: they are the
/// first ones, each marked in its own header. The key is at a fixed offset, so a lookup
/// compares it without reading the flags. A deadline is stored only while there is one
/// (most keys have neither), so setting the first moves the fields by 8 bytes: one copy
/// into a slot of the new size, as a field write is.
mod header {
    pub const ACCESS: usize = 0;
    /// The flags (low three bits) and the inline count (high five).
    pub const FLAGS: usize = 3;
    pub const FLAG_BITS: u8 = 0b111;
    pub const COUNT_SHIFT: u32 = 3;
    /// The inline count's value for "the count is stored after the deadlines".
    pub const COUNT_STORED: u8 = 31;
    /// The largest count kept in the flags byte.
    pub const INLINE_COUNT_MAX: u32 = COUNT_STORED as u32 - 1;
    /// Where the key's length starts.
    pub const FIXED: usize = 4;
    /// A header with no deadline and an empty key.
    pub const EMPTY: usize = FIXED + 1;
    pub const KEY_TTL: u8 = 1;
    pub const FIELD_TTL: u8 = 2;
    /// Set once a field-expiration command ran on the hash or a field got a TTL: it then
    /// reports `listpackex`, even with no TTL left, as Redis's encoding does.
    pub const EX: u8 = 4;
}

/// The most fields a compact hash holds whatever `hash-max-listpack-entries` says (its
/// count is 16 bits; one short of the most, since a hash is converted once it is past the
/// limit). Redis's default is 128 and listpacks this long are slow there too.
pub const MAX_COMPACT_FIELDS: usize = u16::MAX as usize - 1;

/// A table's key and bookkeeping (what a compact hash keeps in its buffer's header).
#[derive(Clone, Debug)]
struct Meta {
    key: Box<[u8]>,
    key_deadline: u64,
    field_deadline: u64,
    access: u32,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            key: Box::default(),
            key_deadline: NO_DEADLINE,
            field_deadline: NO_DEADLINE,
            access: 0,
        }
    }
}

/// "No deadline" in the header accessors (the keyspace's `NEVER`).
pub const NO_DEADLINE: u64 = u64::MAX;

/// A byte buffer always exactly as long as its contents, as a listpack is: a boxed slice in
/// one word ([`ThinBytes`]), where a `Vec` takes 24 bytes, and never any unused capacity (a
/// `Vec` keeps what a deletion freed).
#[derive(Clone, Debug, Default)]
#[repr(transparent)]
struct ExactBuf(ThinBytes);

impl std::ops::Deref for ExactBuf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl std::ops::DerefMut for ExactBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }
}

impl ExactBuf {
    fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes([self[at], self[at + 1]])
    }

    fn set_u16_at(&mut self, at: usize, v: u16) {
        self[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn u24_at(&self, at: usize) -> u32 {
        u32::from_le_bytes([self[at], self[at + 1], self[at + 2], 0])
    }

    fn set_u24_at(&mut self, at: usize, v: u32) {
        debug_assert!(v < 1 << 24);
        self[at..at + 3].copy_from_slice(&v.to_le_bytes()[..3]);
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self[at..at + 8]);
        u64::from_le_bytes(b)
    }

    /// Replaces `range` with `with`, stored at the exact size again.
    fn splice(&mut self, range: std::ops::Range<usize>, with: &[u8]) {
        let at = range.start;
        self.0.resize_gap(at, range.len(), with.len());
        self[at..at + with.len()].copy_from_slice(with);
    }

    /// Replaces the `remove` bytes at `at` with `insert` zeros, at the exact size again
    /// (see [`ThinBytes::resize_gap`]).
    fn resize_gap(&mut self, at: usize, remove: usize, insert: usize) {
        self.0.resize_gap(at, remove, insert);
    }

    /// Moves the `n` bytes at `pos` to `at` (an offset in the buffer without them) as `m`
    /// bytes that `write` fills: one copy into a buffer of the new size, or in place when
    /// the size stays (a field's new TTL keeps its encoding's size).
    fn move_entry(
        &mut self,
        pos: usize,
        n: usize,
        at: usize,
        m: usize,
        write: impl FnOnce(&mut [u8]),
    ) {
        if m == n {
            let b = &mut self[..];
            if at <= pos {
                b.copy_within(at..pos, at + m);
            } else {
                b.copy_within(pos + n..at + n, pos);
            }
            write(&mut b[at..at + m]);
            return;
        }
        let new_len = self.len() - n + m;
        self.0.rebuild(new_len, |old, new| {
            if at <= pos {
                new[..at].copy_from_slice(&old[..at]);
                new[at + m..pos + m].copy_from_slice(&old[at..pos]);
                new[pos + m..].copy_from_slice(&old[pos + n..]);
            } else {
                new[..pos].copy_from_slice(&old[..pos]);
                new[pos..at].copy_from_slice(&old[pos + n..at + n]);
                new[at + m..].copy_from_slice(&old[at + n..]);
            }
            write(&mut new[at..at + m]);
        });
    }
}

/// A table shrinks once it is less than 1/`SHRINK_BELOW` full.
const SHRINK_BELOW: usize = 4;

/// Tables smaller than this are not shrunk (not worth a rehash).
const MIN_SHRINK_CAPACITY: usize = 64;

/// How far ahead the sweep of a table prefetches slots, and the fields they point to.
const SWEEP_PREFETCH_SLOTS: usize = 16;
const SWEEP_PREFETCH_FIELDS: usize = 8;

/// Width of one deadline bucket in a table's volatile-field index: 2^10 ms ≈ 1 s.
const WHEEL_BUCKET_SHIFT: u32 = 10;

#[derive(Clone, Debug)]
struct Table {
    /// The key and its bookkeeping.
    meta: Meta,
    /// Where each field is stored in `arena`.
    slots: HashTable<FieldAt, TableAlloc>,
    /// The fields' encodings.
    arena: Arena,
    /// The fields with a TTL, by deadline bucket: bucket id (`deadline >> WHEEL_BUCKET_SHIFT`)
    /// → slot positions. Four bytes per field instead of an ordered set's ~30. Entries go
    /// stale when a field is deleted or its TTL changes (the new deadline gets a new entry);
    /// stale ones are dropped when their bucket is swept, or all at once by a rebuild when
    /// they outnumber the live ones, so the index stays O(volatile fields).
    wheel: BTreeMap<u64, Vec<u32>>,
    /// Positions held by `wheel`, live and stale.
    wheel_entries: usize,
    /// Fields that have a TTL (exact).
    volatile: usize,
    /// A lower bound of the earliest field deadline (exact after a sweep).
    min_hint: u64,
    /// Bumped whenever slot positions may move (a full table rehashes on insert). HSCAN
    /// cursors carry it so a scan across a move restarts instead of skipping fields; the
    /// wheel, which stores positions, is rebuilt.
    generation: u32,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            meta: Meta::default(),
            slots: HashTable::new_in(TableAlloc),
            arena: Arena::default(),
            wheel: BTreeMap::new(),
            wheel_entries: 0,
            volatile: 0,
            min_hint: u64::MAX,
            generation: 0,
        }
    }
}

/// Keys of the field hasher: random per process, so field names cannot be chosen to collide.
fn field_hasher() -> &'static ahash::RandomState {
    static HASHER: OnceLock<ahash::RandomState> = OnceLock::new();
    HASHER.get_or_init(ahash::RandomState::new)
}

fn hash_field(field: &[u8]) -> u64 {
    field_hasher().hash_one(field)
}

/// The hasher a table rehashes its slots with.
fn slot_hasher(arena: &Arena) -> impl Fn(&FieldAt) -> u64 + '_ {
    move |at| hash_field(arena.name(*at))
}

impl Compact {
    fn flags(&self) -> u8 {
        self.buf[header::FLAGS] & header::FLAG_BITS
    }

    /// The count bits of the flags byte: the count, or [`header::COUNT_STORED`].
    #[inline]
    fn inline_count(&self) -> u8 {
        self.buf[header::FLAGS] >> header::COUNT_SHIFT
    }

    /// Where the key and the deadlines end: the stored count, if any, then the fields.
    #[inline]
    fn deadlines_end(&self) -> usize {
        self.key_span().2 + 8 * (self.flags() & 3).count_ones() as usize
    }

    /// Stored fields.
    #[inline]
    fn count(&self) -> u32 {
        match self.inline_count() {
            header::COUNT_STORED => u32::from(self.buf.u16_at(self.deadlines_end())),
            n => u32::from(n),
        }
    }

    /// Records `n` stored fields. Crossing [`header::INLINE_COUNT_MAX`] adds or removes the
    /// stored count: call it last in an edit, as the fields move by two bytes then.
    fn set_count(&mut self, n: u32) {
        debug_assert!(n as usize <= MAX_COMPACT_FIELDS + 1);
        let stored = self.inline_count() == header::COUNT_STORED;
        let at = self.deadlines_end();
        let inline = match (stored, n > header::INLINE_COUNT_MAX) {
            (false, false) => n as u8,
            (true, true) => {
                self.buf.set_u16_at(at, n as u16);
                header::COUNT_STORED
            }
            (false, true) => {
                self.buf.splice(at..at, &(n as u16).to_le_bytes());
                header::COUNT_STORED
            }
            (true, false) => {
                self.buf.splice(at..at + 2, &[]);
                n as u8
            }
        };
        let flags = self.flags();
        self.buf[header::FLAGS] = inline << header::COUNT_SHIFT | flags;
    }

    /// Fields with a TTL: the fields with a TTL come first, so they are the fields up to
    /// the first whose header has no TTL bit. Counted, not stored: every path that walks
    /// the TTL fields stops at the first field without one anyway, and the count would
    /// cost every small hash two bytes.
    fn volatile(&self) -> u32 {
        let mut pos = self.fields_start();
        let mut n = 0;
        while self.has_ttl_at(pos) {
            pos += packed::decode_at(&self.buf, pos).1;
            n += 1;
        }
        n
    }

    /// Whether a field with a TTL starts at `pos` (false at the end): the TTL bit is bit 0
    /// of the field's header, so of its first byte.
    #[inline]
    fn has_ttl_at(&self, pos: usize) -> bool {
        self.buf.get(pos).is_some_and(|b| b & 1 == 1)
    }

    fn is_ex(&self) -> bool {
        self.flags() & header::EX != 0
    }

    fn mark_ex(&mut self) {
        self.buf[header::FLAGS] |= header::EX;
    }

    /// Where the deadline `flag` names is (or would be) stored.
    fn deadline_at(&self, flag: u8) -> usize {
        let before = flag == header::FIELD_TTL && self.flags() & header::KEY_TTL != 0;
        self.key_span().2 + if before { 8 } else { 0 }
    }

    fn deadline(&self, flag: u8) -> u64 {
        if self.flags() & flag == 0 {
            NO_DEADLINE
        } else {
            self.buf.u64_at(self.deadline_at(flag))
        }
    }

    fn set_deadline(&mut self, flag: u8, t: u64) {
        let at = self.deadline_at(flag);
        let has = self.flags() & flag != 0;
        match (has, t == NO_DEADLINE) {
            (true, false) => self.buf[at..at + 8].copy_from_slice(&t.to_le_bytes()),
            (true, true) => {
                self.buf.splice(at..at + 8, &[]);
                self.buf[header::FLAGS] &= !flag;
            }
            (false, false) => {
                self.buf.splice(at..at, &t.to_le_bytes());
                self.buf[header::FLAGS] |= flag;
            }
            (false, true) => {}
        }
    }

    /// Where the key's length is, where the key starts and where it ends.
    #[inline]
    fn key_span(&self) -> (usize, usize, usize) {
        let at = header::FIXED;
        let (n, h) = match self.buf[at] {
            b if b < 0x80 => (usize::from(b), 1),
            _ => {
                let (n, h) = packed::get_varint(&self.buf, at);
                (n as usize, h)
            }
        };
        (at, at + h, at + h + n)
    }

    fn key(&self) -> &[u8] {
        let (_, start, end) = self.key_span();
        &self.buf[start..end]
    }

    /// Writes the key and both deadlines at once (one copy, where setting them one by
    /// one would move the fields up to three times: loading a snapshot does this per key).
    fn set_identity(&mut self, key: &[u8], key_deadline: u64, field_deadline: u64) {
        let mut enc = Vec::with_capacity(key.len() + 21);
        packed::put_varint(&mut enc, key.len() as u64);
        enc.extend_from_slice(key);
        let mut flags = self.flags() & !(header::KEY_TTL | header::FIELD_TTL);
        for (flag, t) in [
            (header::KEY_TTL, key_deadline),
            (header::FIELD_TTL, field_deadline),
        ] {
            if t != NO_DEADLINE {
                enc.extend_from_slice(&t.to_le_bytes());
                flags |= flag;
            }
        }
        let end = self.deadlines_end();
        self.buf.splice(header::FIXED..end, &enc);
        self.buf[header::FLAGS] = self.inline_count() << header::COUNT_SHIFT | flags;
    }

    /// Where the first field starts.
    #[inline]
    fn fields_start(&self) -> usize {
        let stored = self.inline_count() == header::COUNT_STORED;
        self.deadlines_end() + if stored { 2 } else { 0 }
    }

    /// Where a field with deadline `t` goes: before the first field without a TTL or with
    /// a later deadline, and with `before_equal` before those with the same deadline too.
    fn ttl_position(&self, t: u64, before_equal: bool) -> usize {
        self.ttl_position_skipping(t, before_equal, usize::MAX)
    }

    /// [`Compact::ttl_position`] as if the field starting at byte `skip` were not there
    /// in the buffer's present offsets.
    fn ttl_position_skipping(&self, t: u64, before_equal: bool, skip: usize) -> usize {
        let buf = &self.buf[..];
        let mut pos = self.fields_start();
        while pos < buf.len() {
            let (f, n) = packed::decode_at(buf, pos);
            if pos == skip {
                pos += n;
                continue;
            }
            match f.expire_at {
                Some(d) if d < t || (d == t && !before_equal) => pos += n,
                _ => break,
            }
        }
        pos
    }

    /// Inserts an encoded field at byte offset `pos`, growing the buffer by exactly the
    /// field's size, as listpack does: doubling would leave up to half the buffer unused in
    /// every small hash.
    fn insert_at(&mut self, pos: usize, field: &[u8], value: &[u8], t: Option<u64>) {
        let n = packed::encoded_len(field, value, t);
        self.buf.resize_gap(pos, 0, n);
        packed::encode_into(&mut self.buf[pos..pos + n], field, value, t);
    }

    /// Appends the `pending` pairs, new fields without a TTL, at the end in one resize,
    /// and counts them. Empties `pending`.
    fn append_pending(&mut self, pairs: &[(&[u8], &[u8])], pending: &mut SmallVec<[usize; 16]>) {
        if pending.is_empty() {
            return;
        }
        let total: usize = pending
            .iter()
            .map(|&i| packed::encoded_len(pairs[i].0, pairs[i].1, None))
            .sum();
        let mut at = self.buf.len();
        self.buf.resize_gap(at, 0, total);
        for &i in pending.iter() {
            let (field, value) = pairs[i];
            let n = packed::encoded_len(field, value, None);
            packed::encode_into(&mut self.buf[at..at + n], field, value, None);
            at += n;
        }
        self.set_count(self.count() + pending.len() as u32);
        pending.clear();
    }

    /// Removes the entry at `pos..pos + n` and stores the field again at the place its new
    /// TTL `t` gives it. Out of line: the writes that keep a field's place (every write of
    /// a field without a TTL) do not carry it.
    #[inline(never)]
    fn replace_and_place(
        &mut self,
        pos: usize,
        n: usize,
        field: &[u8],
        value: &[u8],
        t: Option<u64>,
        before_equal: bool,
    ) {
        // Where it goes once removed, then both moves in one edit: the buffer is copied
        // once, for the net change (or not at all when the size stays), where removing and
        // placing apart would shrink it and grow it back (two copies).
        let at = match t {
            None => self.buf.len(),
            Some(d) => self.ttl_position_skipping(d, before_equal, pos),
        };
        let at = if at > pos { at - n } else { at };
        let m = packed::encoded_len(field, value, t);
        self.buf.move_entry(pos, n, at, m, |out| {
            packed::encode_into(out, field, value, t)
        });
        if t.is_some() {
            self.mark_ex();
        }
    }

    /// Stores a field that is not in the buffer (any more) at its place: appended without
    /// a TTL, among the TTL fields by deadline with one. Does not count it in `len`.
    #[inline(never)]
    fn place(&mut self, field: &[u8], value: &[u8], t: Option<u64>, before_equal: bool) {
        match t {
            None => self.insert_at(self.buf.len(), field, value, None),
            Some(d) => {
                let at = self.ttl_position(d, before_equal);
                self.insert_at(at, field, value, t);
                self.mark_ex();
            }
        }
    }

    /// Whether the fields are in the order [`Compact`] describes (tests' invariant check).
    fn order_holds(&self) -> bool {
        let mut last = 0;
        let mut seen = 0u32;
        // Counted from the TTL bits once: a scan, no longer a stored count.
        let volatile = self.volatile();
        for (i, f) in self.iter().enumerate() {
            let volatile_part = (i as u32) < volatile;
            match f.expire_at {
                Some(d) if volatile_part && d >= last => last = d,
                None if !volatile_part => {}
                _ => return false,
            }
            seen += 1;
        }
        seen == self.count() && (volatile == 0 || self.is_ex())
    }

    /// Byte offset, encoded size and decoded form of `field`, if present. Fields whose
    /// length differs are skipped from their headers alone: lookups are linear scans, and
    /// most fields they pass are not the one asked for.
    fn find(&self, field: &[u8]) -> Option<(usize, usize, FieldRef<'_>)> {
        let buf = &self.buf[..];
        let mut pos = self.fields_start();
        while pos < buf.len() {
            let (hdr, h) = packed::get_varint(buf, pos);
            let f_start = pos + h;
            let f_end = f_start + (hdr >> 1) as usize;
            if f_end - f_start == field.len() && packed::same_bytes(&buf[f_start..f_end], field) {
                let (f, n) = packed::decode_at(buf, pos);
                return Some((pos, n, f));
            }
            let (value_len, vh) = packed::get_varint(buf, f_end);
            pos =
                f_end + vh + value_len as usize + if hdr & 1 == 1 { packed::TTL_BYTES } else { 0 };
        }
        None
    }

    fn iter(&self) -> CompactIter<'_> {
        CompactIter {
            buf: &self.buf,
            pos: self.fields_start(),
        }
    }

    /// Replaces the entry at `pos..pos+old_len` with a new encoding of the field, in place:
    /// the gap is resized (exactly, as listpack does) and the field encoded into it.
    fn rewrite(&mut self, pos: usize, old_len: usize, field: &[u8], value: &[u8], t: Option<u64>) {
        let new_len = packed::encoded_len(field, value, t);
        let old_end = pos + old_len;
        if new_len > old_len {
            self.buf.resize_gap(old_end, 0, new_len - old_len);
        } else if new_len < old_len {
            self.buf.resize_gap(pos + new_len, old_len - new_len, 0);
        }
        packed::encode_into(&mut self.buf[pos..pos + new_len], field, value, t);
    }
}

struct CompactIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for CompactIter<'a> {
    type Item = FieldRef<'a>;
    fn next(&mut self) -> Option<FieldRef<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let (f, n) = packed::decode_at(self.buf, self.pos);
        self.pos += n;
        Some(f)
    }
}

/// The live fields of a hash at one instant, as (name, value) pairs in encoding order:
/// [`HashValue::live_fields`]. Borrowed straight from the encoding: nothing is copied or
/// allocated, and a compact hash is read front to back once.
pub struct LiveFields<'a> {
    len: Option<usize>,
    inner: LiveInner<'a>,
}

enum LiveInner<'a> {
    /// A compact buffer from its first live field on (none after it needs a check).
    Compact { buf: &'a [u8], pos: usize },
    /// A table's slots; with `check`, some may be expired at `now_ms` and are skipped.
    Table {
        slots: hashbrown::hash_table::Iter<'a, FieldAt>,
        arena: &'a Arena,
        now_ms: u64,
        check: bool,
    },
}

impl LiveFields<'_> {
    /// How many pairs follow, when known before visiting them: always for a compact hash,
    /// and for a table none of whose fields can have expired yet. Otherwise count them.
    pub fn exact_len(&self) -> Option<usize> {
        self.len
    }

    /// At least the bytes of the names and values that follow, when cheap to know (a
    /// compact hash's remaining buffer, which also holds their lengths and deadlines);
    /// 0 for a table. For reserving output space once.
    pub fn bytes_hint(&self) -> usize {
        match &self.inner {
            LiveInner::Compact { buf, pos } => buf.len() - pos,
            LiveInner::Table { .. } => 0,
        }
    }
}

impl<'a> Iterator for LiveFields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            LiveInner::Compact { buf, pos } => {
                if *pos >= buf.len() {
                    return None;
                }
                let (f, v, next) = packed::pair_at(buf, *pos);
                *pos = next;
                Some((f, v))
            }
            LiveInner::Table {
                slots,
                arena,
                now_ms,
                check,
            } => slots.find_map(|s| {
                let f = arena.field(*s);
                (!*check || !f.is_expired(*now_ms)).then_some((f.field, f.value))
            }),
        }
    }

    /// One loop per encoding instead of a branch on it per pair (`for_each` and `count`
    /// come through here).
    #[inline]
    fn fold<B, F: FnMut(B, Self::Item) -> B>(self, init: B, mut f: F) -> B {
        match self.inner {
            LiveInner::Compact { buf, mut pos } => {
                let mut acc = init;
                while pos < buf.len() {
                    let (name, value, next) = packed::pair_at(buf, pos);
                    pos = next;
                    acc = f(acc, (name, value));
                }
                acc
            }
            LiveInner::Table {
                slots,
                arena,
                check: false,
                ..
            } => slots.fold(init, |acc, s| {
                let (bytes, off) = arena.bytes(*s);
                let (name, value, _) = packed::pair_at(bytes, off);
                f(acc, (name, value))
            }),
            LiveInner::Table {
                slots,
                arena,
                now_ms,
                ..
            } => slots.fold(init, |acc, s| {
                let field = arena.field(*s);
                if field.is_expired(now_ms) {
                    acc
                } else {
                    f(acc, (field.field, field.value))
                }
            }),
        }
    }
}

impl Table {
    fn find(&self, field: &[u8]) -> Option<FieldRef<'_>> {
        let arena = &self.arena;
        self.slots
            .find(hash_field(field), |&at| arena.name(at) == field)
            .map(|&at| arena.field(at))
    }

    /// The field in bucket `pos`, if it is full.
    fn field_in(&self, pos: usize) -> Option<FieldRef<'_>> {
        self.slots.get_bucket(pos).map(|&at| self.arena.field(at))
    }

    fn wheel_add(&mut self, pos: usize, deadline: u64) {
        self.wheel
            .entry(deadline >> WHEEL_BUCKET_SHIFT)
            .or_default()
            .push(pos as u32);
        self.wheel_entries += 1;
        self.min_hint = self.min_hint.min(deadline);
    }

    /// Re-derives the wheel from the slots: after slots moved, or when stale entries
    /// outnumber live ones. O(fields), amortised over the changes that made it necessary.
    fn rebuild_wheel(&mut self) {
        let Table {
            slots,
            arena,
            wheel,
            wheel_entries,
            min_hint,
            ..
        } = self;
        wheel.clear();
        *wheel_entries = 0;
        *min_hint = u64::MAX;
        for pos in slots.iter_buckets() {
            let Some(t) = slots
                .get_bucket(pos)
                .and_then(|&at| arena.field(at).expire_at)
            else {
                continue;
            };
            wheel
                .entry(t >> WHEEL_BUCKET_SHIFT)
                .or_default()
                .push(pos as u32);
            *wheel_entries += 1;
            *min_hint = (*min_hint).min(t);
        }
    }

    /// Called when an entry went stale. Stale entries are kept to half the live ones, so
    /// the searches that skip them (`all_expired`) stay short.
    fn note_stale(&mut self) {
        if self.wheel_entries > self.volatile + self.volatile / 2 + 64 {
            self.rebuild_wheel();
        }
    }

    /// Stores a field known not to be in the table (hash `h`).
    fn insert_new(&mut self, h: u64, field: &[u8], value: &[u8], t: Option<u64>) {
        let at = self.arena.push(field, value, t);
        // A full table rehashes on insert, which may move every slot.
        let moves = self.slots.len() == self.slots.capacity();
        let pos = self
            .slots
            .insert_unique(h, at, slot_hasher(&self.arena))
            .bucket_index();
        self.volatile += usize::from(t.is_some());
        if moves {
            self.generation = self.generation.wrapping_add(1);
            self.rebuild_wheel();
        } else if let Some(t) = t {
            self.wheel_add(pos, t);
        }
    }

    /// Stores `field` (hash `h`) with `value` and deadline `new_t`, replacing any previous
    /// value. Returns the old deadline if the field existed (`Some(None)` = existed
    /// without a TTL). `value` must not be borrowed from this table.
    fn upsert(
        &mut self,
        h: u64,
        field: &[u8],
        value: &[u8],
        new_t: Option<u64>,
    ) -> Option<Option<u64>> {
        let arena = &self.arena;
        let Some(pos) = self
            .slots
            .find_bucket_index(h, |&at| arena.name(at) == field)
        else {
            self.insert_new(h, field, value, new_t);
            return None;
        };
        let at = *self.slots.get_bucket(pos)?;
        let (old, old_len) = self.arena.entry(at);
        let old_t = old.expire_at;
        if packed::encoded_len(field, value, new_t) == old_len {
            self.arena.rewrite(at, field, value, new_t);
        } else {
            let moved = self.arena.push(field, value, new_t);
            *self.slots.get_bucket_mut(pos)? = moved;
            self.release(at, old_len);
        }
        self.volatile = self.volatile + usize::from(new_t.is_some()) - usize::from(old_t.is_some());
        if old_t != new_t {
            if let Some(t) = new_t {
                self.wheel_add(pos, t);
            }
            if old_t.is_some() {
                self.note_stale();
            }
        }
        Some(old_t)
    }

    /// Marks an encoding no slot points to any more dead, compacting its segment if that
    /// made it more than half dead: its live fields are stored again and their slots
    /// repointed (slot positions do not change, so cursors and the wheel stay valid).
    fn release(&mut self, at: FieldAt, len: usize) {
        if let Some(seg) = self.arena.release(at, len) {
            self.compact(seg);
        }
    }

    /// Moves segment `seg`'s live fields to the end of the arena and frees it.
    fn compact(&mut self, seg: usize) {
        let Table { slots, arena, .. } = self;
        let old = arena.take_segment(seg);
        let mut pos = 0;
        while pos < old.len() {
            let (f, n) = packed::decode_at(&old, pos);
            let was = FieldAt::at(seg, pos);
            if let Some(slot) = slots.find_mut(hash_field(f.field), |&x| x == was) {
                *slot = arena.push_encoded(&old[pos..pos + n]);
            }
            pos += n;
        }
        arena.free_taken(seg);
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let h = hash_field(field);
        let arena = &self.arena;
        match self.slots.find_entry(h, |&at| arena.name(at) == field) {
            Ok(entry) => {
                let (at, _) = entry.remove();
                let (f, len) = self.arena.entry(at);
                let had_ttl = f.expire_at.is_some();
                self.release(at, len);
                if had_ttl {
                    self.volatile -= 1;
                    self.note_stale();
                }
                self.shrink_if_sparse();
                true
            }
            Err(_) => false,
        }
    }

    /// Gives memory back once three quarters of the table is empty. Besides memory, this
    /// keeps random picks (HRANDFIELD), which probe random buckets, at a few probes each.
    /// Halving at a quarter full is amortised O(1) per removal.
    fn shrink_if_sparse(&mut self) {
        let (len, cap) = (self.slots.len(), self.slots.capacity());
        if cap > MIN_SHRINK_CAPACITY && len * SHRINK_BELOW < cap {
            self.slots.shrink_to(len * 2, slot_hasher(&self.arena));
            // Slots moved: HSCAN cursors restart and the wheel's positions are re-derived.
            self.generation = self.generation.wrapping_add(1);
            self.rebuild_wheel();
            self.repack();
        }
    }

    /// Stores every field again in a fresh arena sized for them: after most fields went,
    /// the segments they left (a tail grown for many more, ones below the compaction
    /// threshold) are given back. O(fields left), like the shrink that calls it.
    fn repack(&mut self) {
        let Table { slots, arena, .. } = self;
        let mut fresh = Arena::with_capacity(arena.live());
        for at in slots.iter_mut() {
            *at = fresh.push_encoded(arena.encoded(*at));
        }
        *arena = fresh;
    }

    /// A lower bound of the earliest deadline; None when no field has a TTL.
    fn min_expire(&self) -> Option<u64> {
        if self.volatile == 0 {
            return None;
        }
        let first_bucket = self
            .wheel
            .first_key_value()
            .map_or(u64::MAX, |(&b, _)| b << WHEEL_BUCKET_SHIFT);
        Some(self.min_hint.max(first_bucket))
    }

    /// Whether every field has a TTL that is past at `now_ms`. Every live field with a TTL
    /// has a current wheel entry in its deadline's bucket, so a field still live at `now_ms`
    /// is found in the buckets from `now_ms`'s on; they are searched latest first, where
    /// one is found at once unless the whole hash expires within the current bucket.
    fn all_expired(&self, now_ms: u64) -> bool {
        if self.volatile == 0 || self.volatile < self.slots.len() {
            return false;
        }
        for (&bucket, positions) in self.wheel.range(now_ms >> WHEEL_BUCKET_SHIFT..).rev() {
            for &pos in positions.iter().rev() {
                let deadline = self.field_in(pos as usize).and_then(|f| f.expire_at);
                if let Some(t) = deadline {
                    if t >> WHEEL_BUCKET_SHIFT == bucket && t >= now_ms {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Removes up to `limit` fields expired at `now_ms`, bucket by bucket (oldest first),
    /// telling `removed` each one's name.
    fn remove_expired(
        &mut self,
        now_ms: u64,
        limit: usize,
        removed_field: &mut impl FnMut(&[u8]),
    ) -> usize {
        if now_ms == 0 || self.volatile == 0 {
            return 0;
        }
        let due: Vec<u64> = self
            .wheel
            .range(..=((now_ms - 1) >> WHEEL_BUCKET_SHIFT))
            .map(|(&b, _)| b)
            .collect();
        let mut removed = 0;
        let mut kept_min = u64::MAX;
        let mut finished = true;
        // Slot positions are known ahead, in no useful memory order: load each slot, and
        // then the field it points to, a few positions before they are needed, so that
        // the sweep's cache misses overlap. The table's address comes from one of those
        // positions that is still full.
        let mut ctrl = None;
        for bucket in due {
            let Some(mut positions) = self.wheel.remove(&bucket) else {
                continue;
            };
            if ctrl.is_none() {
                ctrl = positions.iter().rev().take(8).find_map(|&p| {
                    let p = p as usize;
                    self.slots.get_bucket(p).map(|s| prefetch::ctrl_from(p, s))
                });
            }
            // Work from the end so a batch that stops early puts the rest back without
            // copying it (a bucket can hold a million fields, swept a batch at a time).
            let mut keep = Vec::new();
            while let Some(pos) = positions.pop() {
                if removed >= limit {
                    positions.push(pos);
                    finished = false;
                    break;
                }
                if let Some(ctrl) = ctrl {
                    let ahead = |d: usize| positions.len().checked_sub(d).map(|i| positions[i]);
                    if let Some(p) = ahead(SWEEP_PREFETCH_SLOTS) {
                        prefetch::prefetch_bucket::<FieldAt>(ctrl, p as usize);
                    }
                    if let Some(&at) =
                        ahead(SWEEP_PREFETCH_FIELDS).and_then(|p| self.slots.get_bucket(p as usize))
                    {
                        prefetch::prefetch_read(self.arena.addr(at));
                    }
                }
                let deadline = self.field_in(pos as usize).and_then(|f| f.expire_at);
                match deadline {
                    // The entry is current only if the field's deadline is in this bucket.
                    Some(t) if t >> WHEEL_BUCKET_SHIFT == bucket => {
                        if t < now_ms {
                            if let Ok(entry) = self.slots.get_bucket_entry(pos as usize) {
                                let (at, _) = entry.remove();
                                let (f, len) = self.arena.entry(at);
                                removed_field(f.field);
                                // No compaction mid-drain: it would copy fields that
                                // are about to go too. Wholly dead segments are freed
                                // at once; the rest is settled when the drain ends.
                                let _ = self.arena.release(at, len);
                                self.volatile -= 1;
                                removed += 1;
                            }
                            self.wheel_entries -= 1;
                        } else {
                            kept_min = kept_min.min(t);
                            keep.push(pos);
                        }
                    }
                    _ => self.wheel_entries -= 1,
                }
            }
            positions.append(&mut keep);
            if !positions.is_empty() {
                self.wheel.insert(bucket, positions);
            }
            if !finished {
                break;
            }
        }
        if finished {
            // Every due bucket was swept: what is left is at or after `now_ms`.
            let next_bucket = self
                .wheel
                .range(((now_ms - 1) >> WHEEL_BUCKET_SHIFT) + 1..)
                .next()
                .map_or(u64::MAX, |(&b, _)| b << WHEEL_BUCKET_SHIFT);
            self.min_hint = kept_min.min(next_bucket);
        }
        // Not while due fields remain: every shrink rehashes and rebuilds the wheel (O(fields
        // left)), and halving at each quarter on the way down a 1M-field drain cost more than
        // the drain itself. No reader sees the sparse table meanwhile: HRANDFIELD, the one
        // that probes random buckets, reclaims what is due first, which ends the drain. Checked
        // even when this call removed nothing: the batch that removed the last due field may
        // have stopped at its limit, and no later sweep comes for a hash with nothing due.
        if finished || self.volatile == 0 {
            self.shrink_if_sparse();
            // What the drain left dead: the segments more than half dead, most dead first,
            // as release would have compacted them (each copies less than it frees, so this
            // costs less than the drain did); thinner dead bytes are left to later writes.
            while self.arena.mostly_dead() {
                match self
                    .arena
                    .most_dead()
                    .filter(|&seg| self.arena.half_dead(seg))
                {
                    Some(seg) => self.compact(seg),
                    None => break,
                }
            }
        }
        removed
    }
}

impl HashValue {
    pub fn new() -> Self {
        HashValue::default()
    }

    // ---- the key and its bookkeeping, stored with the fields (the keyspace's only) ----

    /// The key this hash is stored under (empty for a value not in the keyspace).
    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        match self.repr.get() {
            ReprRef::Compact(c) => c.key(),
            ReprRef::Table(t) => &t.meta.key,
        }
    }

    /// An empty hash already stored under `key` (no TTL): one allocation of the header's
    /// exact size, where `new` and then `set_identity` would take two.
    pub(super) fn empty_for_key(key: &[u8], access: u32) -> Self {
        let key_at = header::FIXED + packed::varint_len(key.len() as u64);
        let buf = ThinBytes::with_len(key_at + key.len(), |b| {
            b[..header::FIXED].fill(0);
            b[header::ACCESS..header::ACCESS + 3].copy_from_slice(&access.to_le_bytes()[..3]);
            packed::put_varint_into(&mut b[header::FIXED..key_at], key.len() as u64);
            b[key_at..].copy_from_slice(key);
        });
        HashValue {
            repr: Repr::compact(Compact { buf: ExactBuf(buf) }),
        }
    }

    /// Stores the value under `key` with these deadlines ([`NO_DEADLINE`] for none) and
    /// access state: what the keyspace does when it stores a value.
    pub(super) fn set_identity(
        &mut self,
        key: &[u8],
        key_deadline: u64,
        field_deadline: u64,
        access: u32,
    ) {
        match self.repr.get_mut() {
            ReprMut::Compact(c) => c.set_identity(key, key_deadline, field_deadline),
            ReprMut::Table(t) => {
                t.meta.key = key.into();
                t.meta.key_deadline = key_deadline;
                t.meta.field_deadline = field_deadline;
            }
        }
        self.set_access(access);
    }

    /// The key's TTL deadline, or [`NO_DEADLINE`].
    #[inline]
    pub(super) fn key_deadline(&self) -> u64 {
        match self.repr.get() {
            ReprRef::Compact(c) => c.deadline(header::KEY_TTL),
            ReprRef::Table(t) => t.meta.key_deadline,
        }
    }

    pub(super) fn set_key_deadline(&mut self, t: u64) {
        match self.repr.get_mut() {
            ReprMut::Compact(c) => c.set_deadline(header::KEY_TTL, t),
            ReprMut::Table(tb) => tb.meta.key_deadline = t,
        }
    }

    /// The deadline the keyspace registered this hash under in its field-expiry index,
    /// or [`NO_DEADLINE`].
    #[inline]
    pub(super) fn field_deadline(&self) -> u64 {
        match self.repr.get() {
            ReprRef::Compact(c) => c.deadline(header::FIELD_TTL),
            ReprRef::Table(t) => t.meta.field_deadline,
        }
    }

    pub(super) fn set_field_deadline(&mut self, t: u64) {
        match self.repr.get_mut() {
            ReprMut::Compact(c) => c.set_deadline(header::FIELD_TTL, t),
            ReprMut::Table(tb) => tb.meta.field_deadline = t,
        }
    }

    /// The key's LRU/LFU access state (`evict.rs`).
    #[inline]
    pub(super) fn access(&self) -> u32 {
        match self.repr.get() {
            ReprRef::Compact(c) => c.buf.u24_at(header::ACCESS),
            ReprRef::Table(t) => t.meta.access,
        }
    }

    #[inline]
    pub(super) fn set_access(&mut self, a: u32) {
        match self.repr.get_mut() {
            ReprMut::Compact(c) => c.buf.set_u24_at(header::ACCESS, a),
            ReprMut::Table(t) => t.meta.access = a,
        }
    }

    /// Starts loading the fields a command on this hash reads first: a compact hash's
    /// buffer (its first lines, where the scan starts) or a table's struct.
    pub fn prefetch(&self) {
        match self.repr.get() {
            ReprRef::Compact(c) => {
                prefetch::prefetch_range(c.buf.as_ptr() as usize, c.buf.len(), 2)
            }
            ReprRef::Table(t) => prefetch::prefetch_read(t as *const Table as usize),
        }
    }

    /// Stored fields, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        match self.repr.get() {
            ReprRef::Compact(c) => c.count() as usize,
            ReprRef::Table(t) => t.slots.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fields that carry a TTL.
    pub fn volatile_len(&self) -> usize {
        match self.repr.get() {
            ReprRef::Compact(c) => c.volatile() as usize,
            ReprRef::Table(t) => t.volatile,
        }
    }

    /// How much freeing this value costs, as Redis's `lazyfreeGetFreeEffort`: one
    /// allocation for a compact hash, one per field for a table.
    pub fn free_effort(&self) -> usize {
        match self.repr.get() {
            ReprRef::Compact(_) => 1,
            ReprRef::Table(_) => self.len(),
        }
    }

    pub fn encoding(&self) -> Encoding {
        match self.repr.get() {
            ReprRef::Compact(c) if c.is_ex() => Encoding::ListpackEx,
            ReprRef::Compact(_) => Encoding::Listpack,
            ReprRef::Table(_) => Encoding::Hashtable,
        }
    }

    /// The field as stored, expired or not.
    pub fn get(&self, field: &[u8]) -> Option<FieldRef<'_>> {
        match self.repr.get() {
            ReprRef::Compact(c) => c.find(field).map(|(_, _, f)| f),
            ReprRef::Table(t) => t.find(field),
        }
    }

    /// The field's value unless it is missing or expired at `now_ms`.
    pub fn get_live(&self, field: &[u8], now_ms: u64) -> Option<&[u8]> {
        self.get(field)
            .filter(|f| !f.is_expired(now_ms))
            .map(|f| f.value)
    }

    /// Fields that are not expired at `now_ms`.
    pub fn live_len(&self, now_ms: u64) -> usize {
        match self.min_expire() {
            Some(t) if t < now_ms => self.iter().filter(|f| !f.is_expired(now_ms)).count(),
            _ => self.len(),
        }
    }

    /// Every stored field, expired or not, in encoding order.
    pub fn iter(&self) -> impl Iterator<Item = FieldRef<'_>> + '_ {
        let (compact, table) = match self.repr.get() {
            ReprRef::Compact(c) => (Some(c.iter()), None),
            ReprRef::Table(t) => (None, Some(t.slots.iter().map(|&at| t.arena.field(at)))),
        };
        compact
            .into_iter()
            .flatten()
            .chain(table.into_iter().flatten())
    }

    /// The fields that are live at `now_ms`, in encoding order (what HGETALL, HKEYS and
    /// HVALS list), with their count when it is known without visiting them.
    pub fn live_fields(&self, now_ms: u64) -> LiveFields<'_> {
        match self.repr.get() {
            ReprRef::Compact(c) => {
                // The fields with a TTL come first, earliest first: the expired ones are a
                // prefix, and every field after it is live.
                let mut pos = c.fields_start();
                let mut expired = 0;
                while c.has_ttl_at(pos) {
                    let (f, n) = packed::decode_at(&c.buf, pos);
                    if !f.is_expired(now_ms) {
                        break;
                    }
                    pos += n;
                    expired += 1;
                }
                LiveFields {
                    len: Some((c.count() - expired) as usize),
                    inner: LiveInner::Compact { buf: &c.buf, pos },
                }
            }
            ReprRef::Table(t) => {
                // Only when the earliest deadline (a lower bound) has passed can a field be
                // expired; then each is checked and the count is known at the end.
                let check = t.min_expire().is_some_and(|m| m < now_ms);
                LiveFields {
                    len: if check { None } else { Some(t.slots.len()) },
                    inner: LiveInner::Table {
                        slots: t.slots.iter(),
                        arena: &t.arena,
                        now_ms,
                        check,
                    },
                }
            }
        }
    }

    /// Sets `field` to `value`, treating its TTL as `ttl` says. Returns true if the field
    /// is new. Does not change the encoding; see [`HashValue::fit_encoding`].
    #[inline]
    pub fn set(&mut self, field: &[u8], value: &[u8], ttl: TtlUpdate) -> bool {
        self.set_placed(field, value, ttl, true)
    }

    /// [`HashValue::set`]; a compact hash places a field given a deadline before the
    /// fields with the same one when `before_equal` (a command), after them otherwise
    /// (loading, which keeps the order it reads).
    #[inline]
    fn set_placed(
        &mut self,
        field: &[u8],
        value: &[u8],
        ttl: TtlUpdate,
        before_equal: bool,
    ) -> bool {
        match self.repr.get_mut() {
            ReprMut::Compact(c) => match c.find(field) {
                Some((pos, n, old)) => {
                    let old_t = old.expire_at;
                    match (ttl, old_t) {
                        // The value changes, the TTL and so the place do not: in place.
                        (TtlUpdate::Keep, _) | (TtlUpdate::Clear, None) => {
                            c.rewrite(pos, n, field, value, old_t)
                        }
                        // Redis removes the field and adds it again: it moves to its place
                        // (the end without a TTL; before equal deadlines with one).
                        (TtlUpdate::Clear, Some(_)) | (TtlUpdate::Set(_), _) => {
                            let t = match ttl {
                                TtlUpdate::Set(t) => Some(t),
                                _ => None,
                            };
                            c.replace_and_place(pos, n, field, value, t, before_equal);
                        }
                    }
                    false
                }
                None => {
                    match ttl {
                        TtlUpdate::Set(t) => c.place(field, value, Some(t), before_equal),
                        _ => {
                            // Appended, growing to the exact size as listpack does: doubling
                            // would leave up to half the buffer unused in every small hash.
                            c.insert_at(c.buf.len(), field, value, None);
                        }
                    }
                    c.set_count(c.count() + 1);
                    true
                }
            },
            ReprMut::Table(t) => {
                let h = hash_field(field);
                let keep = match ttl {
                    TtlUpdate::Keep => t.find(field).and_then(|f| f.expire_at),
                    _ => None,
                };
                let new_t = match ttl {
                    TtlUpdate::Clear => None,
                    TtlUpdate::Keep => keep,
                    TtlUpdate::Set(d) => Some(d),
                };
                t.upsert(h, field, value, new_t).is_none()
            }
        }
    }

    /// HSET's write of `pairs` in order (each field's TTL cleared); returns how many fields
    /// are new. The same result as [`HashValue::set`] on each pair in turn, and for a
    /// table that is what it does; a compact hash takes the fields it does not hold yet in
    /// one append at the end, instead of one new allocation and copy of the buffer per
    /// field (a 10-field HSET of a new key made ten). The caller keeps the encoding limits
    /// ([`HashValue::set_pairs_fits`]): the append does not convert.
    pub fn set_pairs(&mut self, pairs: &[(&[u8], &[u8])]) -> usize {
        let c = match self.repr.get_mut() {
            ReprMut::Compact(c) => c,
            ReprMut::Table(_) => {
                return pairs
                    .iter()
                    .filter(|&&(f, v)| self.set(f, v, TtlUpdate::Clear))
                    .count();
            }
        };
        let mut created = 0;
        // Indices into `pairs` of the new fields not yet written, in order.
        let mut pending: SmallVec<[usize; 16]> = SmallVec::new();
        for (i, &(field, value)) in pairs.iter().enumerate() {
            match c.find(field) {
                // A field with a TTL loses it and moves to the end: what was appended
                // before it must be in place first, so that the order is the one-by-one
                // order.
                Some((_, _, old)) if old.expire_at.is_some() => {
                    c.append_pending(pairs, &mut pending);
                    if let Some((pos, n, _)) = c.find(field) {
                        c.replace_and_place(pos, n, field, value, None, true);
                    }
                }
                Some((pos, n, _)) => c.rewrite(pos, n, field, value, None),
                // Named earlier in this command: written now, it is rewritten in place.
                None if pending.iter().any(|&j| pairs[j].0 == field) => {
                    c.append_pending(pairs, &mut pending);
                    if let Some((pos, n, _)) = c.find(field) {
                        c.rewrite(pos, n, field, value, None);
                    }
                }
                None => {
                    pending.push(i);
                    created += 1;
                }
            }
        }
        c.append_pending(pairs, &mut pending);
        created
    }

    /// Whether [`HashValue::set_pairs`] of `pairs` leaves a compact hash within `limits`
    /// (every name and value short enough, and room for all of them as new fields): then it
    /// needs no conversion, before or after.
    pub fn set_pairs_fits(&self, pairs: &[(&[u8], &[u8])], limits: &EncodingLimits) -> bool {
        match self.repr.get() {
            ReprRef::Compact(c) => {
                c.count() as usize + pairs.len() <= limits.compact_entries()
                    && pairs
                        .iter()
                        .all(|&(f, v)| !self.needs_table_for(f, v, limits))
            }
            ReprRef::Table(_) => true,
        }
    }

    /// Sets or clears the TTL of an existing field. Returns false if the field is missing.
    pub fn set_expire(&mut self, field: &[u8], expire_at: Option<u64>) -> bool {
        match self.repr.get_mut() {
            ReprMut::Compact(c) => {
                let Some((pos, n, old)) = c.find(field) else {
                    return false;
                };
                let old_t = old.expire_at;
                // Persisting a field without a TTL changes nothing; setting a deadline,
                // even the one it has, moves it before the fields with the same one, as in
                // Redis (which removes the field and adds it again).
                if expire_at.is_none() && old_t.is_none() {
                    return true;
                }
                let value = old.value.to_vec();
                c.replace_and_place(pos, n, field, &value, expire_at, true);
                true
            }
            ReprMut::Table(t) => {
                let Some(old) = t.find(field) else {
                    return false;
                };
                if old.expire_at == expire_at {
                    return true;
                }
                // Copied out: the new encoding may go to the segment the old one is in.
                let value = old.value.to_vec();
                t.upsert(hash_field(field), field, &value, expire_at);
                true
            }
        }
    }

    /// Removes a field (expired or not). Returns true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.repr.get_mut() {
            ReprMut::Compact(c) => match c.find(field) {
                Some((pos, n, _)) => {
                    c.buf.resize_gap(pos, n, 0);
                    c.set_count(c.count() - 1);
                    true
                }
                None => false,
            },
            ReprMut::Table(t) => t.remove(field),
        }
    }

    /// The earliest field deadline, if any field has a TTL. Exact for compact hashes; for
    /// tables a lower bound, at most one wheel bucket (~1 s) early once `remove_expired` has
    /// swept past it. Callers use it to schedule the sweeper, where an early visit costs
    /// little and a late one would be a bug.
    pub fn min_expire(&self) -> Option<u64> {
        match self.repr.get() {
            ReprRef::Compact(c) if !c.has_ttl_at(c.fields_start()) => None,
            // The fields with a TTL come first, earliest first.
            ReprRef::Compact(c) => packed::decode_at(&c.buf, c.fields_start()).0.expire_at,
            ReprRef::Table(t) => t.min_expire(),
        }
    }

    /// Whether the hash has fields and every one of them is expired at `now_ms`: such a
    /// hash does not exist for any command.
    pub fn all_expired(&self, now_ms: u64) -> bool {
        match self.repr.get() {
            ReprRef::Compact(c) => {
                // The last field has a TTL (so every field has one: those without come
                // last) and it has passed (so every deadline has: they come in order).
                c.count() > 0 && c.iter().last().is_some_and(|f| f.is_expired(now_ms))
            }
            ReprRef::Table(t) => t.all_expired(now_ms),
        }
    }

    /// Removes up to `limit` fields that are expired at `now_ms`, earliest first (in a table
    /// by deadline bucket; within one, in any order), calling
    /// `removed_field` with each one's name. Returns how many.
    pub fn remove_expired(
        &mut self,
        now_ms: u64,
        limit: usize,
        mut removed_field: impl FnMut(&[u8]),
    ) -> usize {
        match self.repr.get_mut() {
            ReprMut::Compact(c) => {
                // The fields with a TTL come first, earliest first: the expired ones are a
                // prefix of the buffer.
                let mut removed = 0;
                let start = c.fields_start();
                let mut end = start;
                while removed < limit && end < c.buf.len() {
                    let (f, n) = packed::decode_at(&c.buf, end);
                    if !f.is_expired(now_ms) {
                        break;
                    }
                    removed_field(f.field);
                    removed += 1;
                    end += n;
                }
                if removed == 0 {
                    return 0;
                }
                c.buf.resize_gap(start, end - start, 0);
                c.set_count(c.count() - removed as u32);
                removed
            }
            ReprMut::Table(t) => t.remove_expired(now_ms, limit, &mut removed_field),
        }
    }

    /// Incremental iteration for HSCAN. Calls `visit` for the fields of one step (expired
    /// ones included; the caller filters) and returns the next cursor, 0 when done.
    /// A compact hash is returned whole in one step, as Redis does. In a table the cursor
    /// is `generation << 32 | bucket`; a cursor from before slots moved restarts the scan,
    /// so every field present for the whole scan is returned at least once.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(FieldRef<'_>)) -> u64 {
        match self.repr.get() {
            ReprRef::Compact(c) => {
                c.iter().for_each(visit);
                0
            }
            ReprRef::Table(t) => {
                let generation = (cursor >> 32) as u32;
                let mut bucket = (cursor & 0xffff_ffff) as usize;
                if generation != t.generation {
                    bucket = 0;
                }
                let buckets = t.slots.num_buckets();
                let mut seen = 0;
                while bucket < buckets && seen < count.max(1) {
                    if let Some(s) = t.slots.get_bucket(bucket) {
                        visit(t.arena.field(*s));
                        seen += 1;
                    }
                    bucket += 1;
                }
                if bucket >= buckets {
                    0
                } else {
                    u64::from(t.generation) << 32 | bucket as u64
                }
            }
        }
    }

    /// A uniformly random stored field, or None when empty.
    pub fn random_field(&self, rng: &mut fastrand::Rng) -> Option<FieldRef<'_>> {
        match self.repr.get() {
            ReprRef::Compact(c) => {
                if c.count() == 0 {
                    return None;
                }
                c.iter().nth(rng.usize(..c.count() as usize))
            }
            ReprRef::Table(t) => {
                if t.slots.is_empty() {
                    return None;
                }
                let buckets = t.slots.num_buckets();
                // Tables shrink below a quarter full, so this takes a few probes on average.
                // (A table mid-way through a sweep is not shrunk yet, but HRANDFIELD reclaims
                // what is due before it picks, which finishes the drain and shrinks it.)
                loop {
                    if let Some(s) = t.slots.get_bucket(rng.usize(..buckets)) {
                        return Some(t.arena.field(*s));
                    }
                }
            }
        }
    }

    /// A hash holding `fields` (name, value, deadline), encoded as `limits` say (loading
    /// a snapshot, RESTORE). A repeated name keeps its last value. Compact, fields with
    /// the same deadline keep the order they come in (a listpackex read back keeps its
    /// order).
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8], Option<u64>)>,
        limits: &EncodingLimits,
    ) -> Self {
        let mut h = HashValue::new();
        for (field, value, deadline) in fields {
            if h.needs_table_for(field, value, limits) {
                h.convert_to_table();
            }
            // Deadlines past what a field can hold (Redis allows up to 2^48 − 1 ms, hashd
            // 2^46 − 1: the year 4199) are kept at the latest it can.
            let ttl = match deadline {
                Some(t) => TtlUpdate::Set(t.min(packed::MAX_FIELD_EXPIRE_MS)),
                None => TtlUpdate::Clear,
            };
            h.set_placed(field, value, ttl, false);
            h.fit_encoding(limits);
        }
        h
    }

    /// True if writing `field`/`value` would push a compact hash past the limits.
    pub fn needs_table_for(&self, field: &[u8], value: &[u8], limits: &EncodingLimits) -> bool {
        self.repr.is_compact()
            && (field.len() > limits.max_compact_value || value.len() > limits.max_compact_value)
    }

    /// Converts a compact hash that has grown past `limits` into a table. Tables stay
    /// tables, as in Redis.
    pub fn fit_encoding(&mut self, limits: &EncodingLimits) {
        if let ReprRef::Compact(c) = self.repr.get() {
            if c.count() as usize > limits.compact_entries() {
                self.convert_to_table();
            }
        }
    }

    /// Marks a compact hash `listpackex`: what a field-expiration command does to a
    /// listpack in Redis even when it sets no TTL (`hashTypeSetExInit`). No-op for tables.
    pub fn mark_field_expiry(&mut self) {
        if let ReprMut::Compact(c) = self.repr.get_mut() {
            c.mark_ex();
        }
    }

    /// Whether a compact hash's fields are in its encoding's order and counted right, and
    /// a table's arena accounts for exactly the bytes its slots point to (the keyspace's
    /// invariant check).
    pub fn order_holds(&self) -> bool {
        match self.repr.get() {
            ReprRef::Compact(c) => c.order_holds(),
            ReprRef::Table(t) => {
                let pointed: usize = t.slots.iter().map(|&at| t.arena.entry(at).1).sum();
                let volatile = t
                    .slots
                    .iter()
                    .filter(|&&at| t.arena.field(at).expire_at.is_some());
                t.arena.used_and_dead().map(|(used, dead)| used - dead) == Some(pointed)
                    && volatile.count() == t.volatile
            }
        }
    }

    /// Switches to the table encoding (no-op if already a table).
    pub fn convert_to_table(&mut self) {
        let ReprRef::Compact(c) = self.repr.get() else {
            return;
        };
        let mut t = Table {
            slots: HashTable::with_capacity_in(c.count() as usize, TableAlloc),
            arena: Arena::with_capacity(c.buf.len() - c.fields_start()),
            meta: Meta {
                key: c.key().into(),
                key_deadline: c.deadline(header::KEY_TTL),
                field_deadline: c.deadline(header::FIELD_TTL),
                access: c.buf.u24_at(header::ACCESS),
            },
            ..Table::default()
        };
        for f in c.iter() {
            t.insert_new(hash_field(f.field), f.field, f.value, f.expire_at);
        }
        self.repr = Repr::table(Box::new(t));
    }

    /// Approximate heap bytes (MEMORY USAGE, INFO memory estimates).
    pub fn heap_bytes(&self) -> usize {
        match self.repr.get() {
            ReprRef::Compact(c) => c.buf.0.allocation_size(),
            ReprRef::Table(t) => {
                std::mem::size_of::<Table>()
                    + t.meta.key.len()
                    + t.slots.allocation_size()
                    + t.arena.heap_bytes()
                    + t.wheel_entries * 4
                    + t.wheel.len() * 64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both_encodings() -> Vec<HashValue> {
        let mut t = HashValue::new();
        t.convert_to_table();
        vec![HashValue::new(), t]
    }

    /// The count lives in the flags byte up to 30 fields and after the deadlines beyond:
    /// growing and shrinking across that line, with deadlines, the access state and the
    /// key changed on either side, keeps every field, the count, and the header's parts.
    #[test]
    fn the_count_moves_out_of_the_flags_byte_and_back_intact() {
        let limits = EncodingLimits::default();
        let mut h = HashValue::empty_for_key(b"key", 0x00ab_cdef);
        let name = |i: u32| format!("field{i}").into_bytes();
        let check = |h: &HashValue, n: u32, key: &[u8], key_t: u64, field_t: u64| {
            assert_eq!(h.len(), n as usize);
            assert_eq!(h.encoding(), Encoding::ListpackEx);
            assert_eq!(h.key(), key);
            assert_eq!(h.key_deadline(), key_t);
            assert_eq!(h.field_deadline(), field_t);
            assert_eq!(h.access(), 0x00ab_cdef);
            assert_eq!(h.iter().count(), n as usize);
            for i in 0..n {
                assert_eq!(
                    h.get(&name(i)).map(|f| f.value),
                    Some(&name(i)[..]),
                    "{i}/{n}"
                );
            }
            assert!(h.order_holds(), "{n} fields");
        };
        h.mark_field_expiry();
        for n in 0..40u32 {
            // Deadlines come and go on both sides of the line.
            let key_t = if n % 3 == 0 {
                5_000 + u64::from(n)
            } else {
                NO_DEADLINE
            };
            let field_t = if n % 2 == 0 { 9_000 } else { NO_DEADLINE };
            h.set_key_deadline(key_t);
            h.set_field_deadline(field_t);
            check(&h, n, b"key", key_t, field_t);
            let ttl = match n % 4 {
                0 => TtlUpdate::Set(1_000_000 + u64::from(n % 7)),
                _ => TtlUpdate::Clear,
            };
            h.set(&name(n), &name(n), ttl);
            assert!(!h.needs_table_for(&name(n), &name(n), &limits));
        }
        h.set_identity(b"another key", 77, 88, 0x00ab_cdef);
        check(&h, 40, b"another key", 77, 88);
        for n in (0..40u32).rev() {
            assert!(h.remove(&name(n)));
            check(&h, n, b"another key", 77, 88);
        }
    }

    /// HSET's batched write gives what writing its pairs one by one gives: the same fields
    /// in the same order, values, TTLs and count of new fields, on both encodings, with
    /// repeated fields, fields already there, and fields whose TTL a write clears.
    #[test]
    fn set_pairs_is_set_on_each_pair_in_turn() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let names: Vec<Vec<u8>> = (0..12).map(|i| format!("f{i}").into_bytes()).collect();
        for round in 0..400 {
            let mut start = if round % 5 == 4 {
                let mut t = HashValue::new();
                t.convert_to_table();
                t
            } else {
                HashValue::new()
            };
            for _ in 0..next(8) {
                let f = &names[next(12) as usize];
                let ttl = match next(3) {
                    0 => TtlUpdate::Set(1_000 + next(3)),
                    _ => TtlUpdate::Clear,
                };
                start.set(f, &vec![b'x'; next(20) as usize], ttl);
            }
            let values: Vec<Vec<u8>> = (0..10).map(|i| vec![b'a' + i; next(30) as usize]).collect();
            let pairs: Vec<(&[u8], &[u8])> = (0..next(10) + 1)
                .map(|i| (&names[next(12) as usize][..], &values[i as usize][..]))
                .collect();
            let mut one_by_one = start.clone();
            let created_one = pairs
                .iter()
                .filter(|&&(f, v)| one_by_one.set(f, v, TtlUpdate::Clear))
                .count();
            let mut batched = start.clone();
            let created = batched.set_pairs(&pairs);
            assert_eq!(created, created_one, "round {round}: {pairs:?}");
            assert_eq!(batched.len(), one_by_one.len(), "round {round}");
            assert!(
                batched.iter().eq(one_by_one.iter()),
                "round {round}: {pairs:?}\n{:?}\n{:?}",
                batched.iter().collect::<Vec<_>>(),
                one_by_one.iter().collect::<Vec<_>>()
            );
            assert_eq!(
                batched.min_expire(),
                one_by_one.min_expire(),
                "round {round}"
            );
        }
    }

    #[test]
    fn set_get_remove() {
        for mut h in both_encodings() {
            assert!(h.set(b"a", b"1", TtlUpdate::Clear));
            assert!(h.set(b"b", b"2", TtlUpdate::Clear));
            assert!(!h.set(b"a", b"3", TtlUpdate::Clear));
            assert_eq!(h.get_live(b"a", 0), Some(&b"3"[..]));
            assert_eq!(h.len(), 2);
            assert!(h.remove(b"a"));
            assert!(!h.remove(b"a"));
            assert_eq!(h.len(), 1);
            assert_eq!(h.get(b"a"), None);
        }
    }

    #[test]
    fn compact_rewrites_in_the_middle_keep_neighbours_intact() {
        let mut h = HashValue::new();
        for f in ["a", "b", "c"] {
            h.set(f.as_bytes(), b"0123", TtlUpdate::Clear);
        }
        let cases: [(&[u8], TtlUpdate); 6] = [
            (b"x".as_slice(), TtlUpdate::Clear),
            (
                b"a much longer value than before".as_slice(),
                TtlUpdate::Clear,
            ),
            (b"4567".as_slice(), TtlUpdate::Set(99)),
            (b"8901".as_slice(), TtlUpdate::Keep),
            (&[7u8; 300], TtlUpdate::Clear),
            (b"".as_slice(), TtlUpdate::Set(5)),
        ];
        for (value, ttl) in cases {
            assert!(!h.set(b"b", value, ttl));
            assert_eq!(h.get_live(b"a", 0), Some(&b"0123"[..]));
            assert_eq!(h.get_live(b"b", 0), Some(value));
            assert_eq!(h.get_live(b"c", 0), Some(&b"0123"[..]));
            assert_eq!(h.len(), 3);
        }
        assert_eq!(h.get(b"b").unwrap().expire_at, Some(5));
        assert_eq!(h.volatile_len(), 1);
        // The field with a TTL comes first (listpackex order).
        let order: Vec<_> = h.iter().map(|f| f.field.to_vec()).collect();
        assert_eq!(order, vec![b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn compact_keeps_insertion_order() {
        let mut h = HashValue::new();
        for f in ["model", "brand", "type", "price"] {
            h.set(f.as_bytes(), b"x", TtlUpdate::Clear);
        }
        h.set(b"brand", b"updated", TtlUpdate::Clear);
        let order: Vec<_> = h.iter().map(|f| f.field.to_vec()).collect();
        assert_eq!(
            order,
            vec![
                b"model".to_vec(),
                b"brand".to_vec(),
                b"type".to_vec(),
                b"price".to_vec()
            ]
        );
    }

    fn order(h: &HashValue) -> String {
        let names: Vec<_> = h
            .iter()
            .map(|f| String::from_utf8_lossy(f.field).into_owned())
            .collect();
        names.join(" ")
    }

    fn compact_of(fields: &str) -> HashValue {
        let mut h = HashValue::new();
        for f in fields.split(' ') {
            h.set(f.as_bytes(), b"v", TtlUpdate::Clear);
        }
        h
    }

    /// Redis 7.4.1: `HSET k f3 -572 f4 -1 f1 3.5`, `HEXPIRE k 1000 FIELDS 2 f3 f1`,
    /// `HGETALL k` → f1 3.5 f3 -572 f4 -1 (tests/conformance.rs compares the commands).
    #[test]
    fn compact_ttl_fields_come_first_by_deadline() {
        let mut h = HashValue::new();
        h.set(b"f3", b"-572", TtlUpdate::Clear);
        h.set(b"f4", b"-1", TtlUpdate::Clear);
        h.set(b"f1", b"3.5", TtlUpdate::Clear);
        assert_eq!(h.encoding(), Encoding::Listpack);
        h.set_expire(b"f3", Some(1_000));
        h.set_expire(b"f1", Some(1_000));
        assert_eq!(order(&h), "f1 f3 f4");
        let values: Vec<_> = h.iter().map(|f| f.value.to_vec()).collect();
        assert_eq!(values, [&b"3.5"[..], b"-572", b"-1"]);
        assert_eq!(h.encoding(), Encoding::ListpackEx);
        assert!(h.order_holds());
    }

    /// Every move Redis 7.4.1 makes (its replies in tests/conformance.rs).
    #[test]
    fn compact_order_follows_every_ttl_change() {
        let mut h = compact_of("a b c d");
        h.set_expire(b"c", Some(50));
        assert_eq!(order(&h), "c a b d");
        // An equal deadline goes before the existing ones.
        h.set_expire(b"a", Some(50));
        assert_eq!(order(&h), "a c b d");
        h.set_expire(b"d", Some(50));
        assert_eq!(order(&h), "d a c b");
        // An earlier one before them, a later one after.
        h.set_expire(b"b", Some(40));
        assert_eq!(order(&h), "b d a c");
        h.set_expire(b"b", Some(60));
        assert_eq!(order(&h), "d a c b");
        // The same deadline again moves the field before its equals.
        h.set_expire(b"c", Some(50));
        assert_eq!(order(&h), "c d a b");
        // Persisting moves it to the end, after the fields without a TTL.
        h.set_expire(b"d", None);
        assert_eq!(order(&h), "c a b d");
        // Persisting a field without a TTL changes nothing.
        h.set_expire(b"d", None);
        assert_eq!(order(&h), "c a b d");
        // A write that keeps the TTL keeps the place; one that clears it moves it last.
        h.set(b"a", b"new", TtlUpdate::Keep);
        assert_eq!(order(&h), "c a b d");
        h.set(b"a", b"newer", TtlUpdate::Clear);
        assert_eq!(order(&h), "c b d a");
        // A field without a TTL written again stays where it is.
        h.set(b"d", b"x", TtlUpdate::Clear);
        assert_eq!(order(&h), "c b d a");
        // New fields: without a TTL at the end, with one at its place (HSETEX).
        h.set(b"e", b"x", TtlUpdate::Clear);
        h.set(b"f", b"x", TtlUpdate::Set(55));
        assert_eq!(order(&h), "c f b d a e");
        // HSETEX of an existing field: written, then given its deadline.
        h.set(b"e", b"y", TtlUpdate::Set(50));
        assert_eq!(order(&h), "e c f b d a");
        assert_eq!(h.min_expire(), Some(50));
        assert_eq!(h.volatile_len(), 4);
        assert!(h.order_holds());
        // Removal and expiry keep the order of what is left.
        h.remove(b"f");
        assert_eq!(h.remove_expired(51, usize::MAX, |_| {}), 2);
        assert_eq!(order(&h), "b d a");
        assert_eq!(h.min_expire(), Some(60));
        assert!(h.order_holds());
    }

    /// Redis 7.4.1 keeps `listpackex` once a field-expiration command ran, even with no
    /// TTL set by it or none left; a listpack never touched by one stays `listpack`.
    #[test]
    fn listpackex_is_sticky() {
        let mut h = compact_of("a b");
        assert_eq!(h.encoding(), Encoding::Listpack);
        h.set_expire(b"a", None);
        assert_eq!(h.encoding(), Encoding::Listpack);
        h.mark_field_expiry();
        assert_eq!(h.encoding(), Encoding::ListpackEx);
        let mut h = compact_of("a b");
        h.set_expire(b"a", Some(10));
        h.set_expire(b"a", None);
        assert_eq!((h.encoding(), h.volatile_len()), (Encoding::ListpackEx, 0));
        h.remove(b"a");
        assert_eq!(h.encoding(), Encoding::ListpackEx);
        assert!(h.order_holds());
        let mut t = table();
        t.mark_field_expiry();
        assert_eq!(t.encoding(), Encoding::Hashtable);
    }

    /// Loading keeps the order it reads: a listpackex read back is the same listpackex.
    #[test]
    fn from_fields_keeps_a_sorted_order() {
        let fields: [(&[u8], &[u8], Option<u64>); 5] = [
            (b"x", b"1", Some(5)),
            (b"y", b"2", Some(5)),
            (b"z", b"3", Some(7)),
            (b"p", b"4", None),
            (b"q", b"5", None),
        ];
        let h = HashValue::from_fields(fields, &EncodingLimits::default());
        assert_eq!(order(&h), "x y z p q");
        assert!(h.order_holds());
        // Unsorted input is sorted (stably) into the encoding's order.
        let fields: [(&[u8], &[u8], Option<u64>); 4] = [
            (b"p", b"4", None),
            (b"z", b"3", Some(7)),
            (b"x", b"1", Some(5)),
            (b"y", b"2", Some(5)),
        ];
        let h = HashValue::from_fields(fields, &EncodingLimits::default());
        assert_eq!(order(&h), "x y z p");
    }

    #[test]
    fn ttl_rules() {
        for mut h in both_encodings() {
            h.set(b"f", b"1", TtlUpdate::Set(100));
            assert_eq!(h.volatile_len(), 1);
            assert_eq!(h.min_expire(), Some(100));
            h.set(b"f", b"2", TtlUpdate::Keep);
            assert_eq!(h.get(b"f").unwrap().expire_at, Some(100));
            h.set(b"f", b"3", TtlUpdate::Clear);
            assert_eq!(h.get(b"f").unwrap().expire_at, None);
            assert_eq!(h.volatile_len(), 0);
            assert!(h.set_expire(b"f", Some(50)));
            assert!(!h.set_expire(b"nope", Some(50)));
            assert_eq!(h.min_expire(), Some(50));
            assert!(h.get(b"f").unwrap().is_expired(51));
            assert_eq!(h.get_live(b"f", 51), None);
            assert_eq!(h.live_len(51), 0);
            assert_eq!(h.live_len(50), 1);
        }
    }

    #[test]
    fn remove_expired_oldest_first_with_limit() {
        for mut h in both_encodings() {
            for i in 0..10u64 {
                h.set(format!("f{i}").as_bytes(), b"v", TtlUpdate::Set(10 + i));
            }
            h.set(b"keep", b"v", TtlUpdate::Clear);
            assert_eq!(h.remove_expired(15, 3, |_| {}), 3);
            assert_eq!(h.remove_expired(15, 100, |_| {}), 2);
            assert_eq!(h.len(), 6);
            assert_eq!(h.min_expire(), Some(15));
            assert_eq!(h.remove_expired(u64::MAX, usize::MAX, |_| {}), 5);
            assert_eq!(h.volatile_len(), 0);
            assert_eq!(h.len(), 1);
        }
    }

    fn table_buckets(h: &HashValue) -> usize {
        match h.repr.get() {
            ReprRef::Table(t) => t.slots.num_buckets(),
            ReprRef::Compact(_) => panic!("table expected"),
        }
    }

    /// A table drained in batches is not rehashed at every quarter on the way down (each
    /// rehash rebuilds the wheel), only once the drain is over.
    #[test]
    fn table_drained_in_batches_shrinks_once_at_the_end() {
        let mut h = HashValue::new();
        h.convert_to_table();
        for i in 0..5000u64 {
            h.set(
                format!("f{i}").as_bytes(),
                b"v",
                TtlUpdate::Set(100 + i % 7),
            );
        }
        for i in 0..1000u64 {
            h.set(
                format!("later{i}").as_bytes(),
                b"v",
                TtlUpdate::Set(1 << 40),
            );
        }
        let full = table_buckets(&h);
        let mut removed = 0;
        while removed < 5000 {
            let n = h.remove_expired(1000, 1000, |_| {});
            assert!(n > 0, "progress");
            removed += n;
            if removed < 5000 {
                assert_eq!(table_buckets(&h), full, "no rehash mid-drain");
            }
        }
        assert_eq!(h.len(), 1000);
        assert!(table_buckets(&h) < full, "shrunk after the drain");
        assert_eq!(h.min_expire(), Some(1 << 40));
        assert_eq!(h.get_live(b"later7", 1000), Some(&b"v"[..]));
    }

    /// The batch that removes the last due field may stop at its limit with only stale
    /// wheel entries left; the table must still shrink then, since no later sweep comes.
    #[test]
    fn table_shrinks_when_a_drain_ends_exactly_at_the_limit() {
        let mut h = HashValue::new();
        h.convert_to_table();
        for i in 0..5000u64 {
            h.set(format!("f{i}").as_bytes(), b"v", TtlUpdate::Set(100));
        }
        for i in 0..10u64 {
            let field = format!("p{i}");
            h.set(field.as_bytes(), b"v", TtlUpdate::Set(2000));
            h.set(field.as_bytes(), b"v", TtlUpdate::Clear);
        }
        let full = table_buckets(&h);
        let mut removed = 0;
        for _ in 0..5 {
            removed += h.remove_expired(3000, 1000, |_| {});
        }
        assert_eq!(removed, 5000);
        assert_eq!(h.len(), 10);
        assert!(
            table_buckets(&h) < full / 16,
            "shrunk: {}",
            table_buckets(&h)
        );
        assert_eq!(h.remove_expired(3000, 1000, |_| {}), 0);
        assert_eq!(h.min_expire(), None);
    }

    #[test]
    fn compact_removal_keeps_an_exact_buffer() {
        let mut h = HashValue::new();
        for i in 0..10u64 {
            h.set(
                format!("f{i}").as_bytes(),
                b"0123456789abcdef",
                TtlUpdate::Set(10 + i),
            );
        }
        assert_eq!(h.remove_expired(15, usize::MAX, |_| {}), 5);
        let ReprRef::Compact(c) = h.repr.get() else {
            panic!("compact expected")
        };
        // The buffer's slot is its length rounded to even: nothing kept past the fields.
        assert!(h.heap_bytes() - c.buf.len() <= 1, "{}", h.heap_bytes());
        assert_eq!(h.remove_expired(15, usize::MAX, |_| {}), 0);
        assert_eq!(h.remove_expired(100, usize::MAX, |_| {}), 5);
        assert!(h.is_empty());
    }

    #[test]
    fn a_compact_hash_stops_at_its_16_bit_count_whatever_the_limit() {
        let limits = EncodingLimits {
            max_compact_entries: usize::MAX,
            max_compact_value: 64,
        };
        assert_eq!(limits.compact_entries(), MAX_COMPACT_FIELDS);
        let names: Vec<String> = (0..=MAX_COMPACT_FIELDS).map(|i| format!("{i}")).collect();
        let fields = |n: usize| {
            names[..n]
                .iter()
                .map(|f| (f.as_bytes(), &b"v"[..], (f.len() == 3).then_some(5)))
        };
        // One build (it is quadratic while compact): full, then one more field.
        let mut h = HashValue::from_fields(fields(MAX_COMPACT_FIELDS), &limits);
        assert_eq!(h.encoding(), Encoding::ListpackEx);
        assert_eq!(h.len(), MAX_COMPACT_FIELDS);
        assert!(h.order_holds());
        let last = names[MAX_COMPACT_FIELDS].as_bytes();
        h.set(last, b"v", TtlUpdate::Clear);
        h.fit_encoding(&limits);
        assert_eq!(h.encoding(), Encoding::Hashtable);
        assert_eq!(h.len(), MAX_COMPACT_FIELDS + 1);
        assert_eq!(h.get(b"123").map(|f| f.expire_at), Some(Some(5)));
        assert_eq!(h.get(last).map(|f| f.value), Some(&b"v"[..]));
    }

    #[test]
    fn a_compact_buffer_past_64_kib_is_spilled_and_back_without_loss() {
        let limits = EncodingLimits {
            max_compact_entries: 512,
            max_compact_value: 20_000,
        };
        let value = |i: u8| vec![i; 15_000];
        let mut h = HashValue::from_fields(
            [(&b"a"[..], &value(1)[..], None), (b"b", &value(2), Some(9))],
            &limits,
        );
        h.set_identity(b"big", 7, NO_DEADLINE, 5);
        // Past 65,535 bytes: the buffer moves behind its own box, and everything still reads.
        for i in 3..=6u8 {
            h.set(&[b'a' + i], &value(i), TtlUpdate::Clear);
        }
        assert!(h.heap_bytes() > 65_535);
        assert_eq!(h.encoding(), Encoding::ListpackEx);
        assert_eq!(
            (h.len(), h.key(), h.key_deadline(), h.access()),
            (6, &b"big"[..], 7, 5)
        );
        assert_eq!(
            h.get(b"b").map(|f| (f.value.len(), f.expire_at)),
            Some((15_000, Some(9)))
        );
        assert!(h.order_holds());
        let copy = h.clone();
        // And back under it: inline again.
        for i in 3..=6u8 {
            assert!(h.remove(&[b'a' + i]));
        }
        assert!(h.heap_bytes() < 65_535);
        assert_eq!(h.get(b"a").map(|f| f.value), Some(&value(1)[..]));
        assert_eq!(copy.len(), 6);
        assert_eq!(copy.get(b"g").map(|f| f.value), Some(&value(6)[..]));
        let mut t = copy.clone();
        t.convert_to_table();
        assert_eq!(
            (t.encoding(), t.len(), t.key()),
            (Encoding::Hashtable, 6, &b"big"[..])
        );
        assert!(t.order_holds());
    }

    #[test]
    fn the_header_keeps_24_bits_of_access_state_beside_the_counts() {
        let mut h = HashValue::new();
        h.set(b"a", b"1", TtlUpdate::Set(7));
        h.set(b"b", b"2", TtlUpdate::Clear);
        h.set_identity(b"key", 9, NO_DEADLINE, 0xff_ffff);
        assert_eq!(h.access(), 0xff_ffff);
        h.set_access(0x12_3456);
        assert_eq!(
            (h.access(), h.len(), h.key(), h.key_deadline()),
            (0x12_3456, 2, &b"key"[..], 9)
        );
        assert_eq!(h.encoding(), Encoding::ListpackEx);
        assert!(h.order_holds());
    }

    #[test]
    fn conversion_preserves_fields_and_ttls() {
        let mut h = HashValue::new();
        for i in 0..600u64 {
            let ttl = if i % 2 == 0 {
                TtlUpdate::Set(1000 + i)
            } else {
                TtlUpdate::Clear
            };
            h.set(format!("f{i}").as_bytes(), format!("v{i}").as_bytes(), ttl);
            h.fit_encoding(&EncodingLimits::default());
        }
        assert_eq!(h.encoding(), Encoding::Hashtable);
        assert_eq!(h.len(), 600);
        assert_eq!(h.volatile_len(), 300);
        assert_eq!(h.get(b"f10").unwrap().expire_at, Some(1010));
        assert_eq!(h.get_live(b"f11", 0), Some(&b"v11"[..]));
        assert_eq!(h.min_expire(), Some(1000));
    }

    #[test]
    fn table_scan_covers_everything_once_without_changes() {
        let mut h = HashValue::new();
        h.convert_to_table();
        for i in 0..1000 {
            h.set(format!("f{i}").as_bytes(), b"v", TtlUpdate::Clear);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = h.scan(cursor, 10, |f| {
                seen.insert(f.field.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
    }

    fn table() -> HashValue {
        let mut h = HashValue::new();
        h.convert_to_table();
        h
    }

    fn wheel_entries(h: &HashValue) -> usize {
        match h.repr.get() {
            ReprRef::Table(t) => t.wheel_entries,
            ReprRef::Compact(_) => 0,
        }
    }

    #[test]
    fn wheel_stays_bounded_under_ttl_refreshes() {
        let mut h = table();
        for i in 0..1000u64 {
            h.set(format!("f{i}").as_bytes(), b"v", TtlUpdate::Set(10_000 + i));
        }
        // A session-refresh pattern: every field's TTL pushed out again and again.
        for round in 1..=20u64 {
            for i in 0..1000u64 {
                h.set_expire(format!("f{i}").as_bytes(), Some(10_000 + round * 5_000 + i));
            }
            assert!(
                wheel_entries(&h) <= 2 * 1000 + 64,
                "round {round}: {}",
                wheel_entries(&h)
            );
        }
        assert_eq!(h.volatile_len(), 1000);
        // Nothing is due before the refreshed deadlines, whatever stale entries said.
        assert_eq!(h.remove_expired(10_000 + 20 * 5_000, usize::MAX, |_| {}), 0);
        assert_eq!(h.len(), 1000);
        assert_eq!(h.remove_expired(u64::MAX, usize::MAX, |_| {}), 1000);
        assert!(h.is_empty());
    }

    #[test]
    fn wheel_survives_table_growth_and_deletes() {
        let mut h = table();
        for i in 0..5000u64 {
            h.set(
                format!("f{i}").as_bytes(),
                b"v",
                TtlUpdate::Set(1_000 * (i % 50) + 1),
            );
            if i % 7 == 0 {
                h.remove(format!("f{}", i / 2).as_bytes());
            }
        }
        let live: Vec<(Vec<u8>, u64)> = h
            .iter()
            .map(|f| (f.field.to_vec(), f.expire_at.unwrap()))
            .collect();
        for now in (0..=50_000u64).step_by(997) {
            h.remove_expired(now, usize::MAX, |_| {});
            for (f, t) in &live {
                assert_eq!(
                    h.get(f).is_some(),
                    *t >= now,
                    "field {f:?} deadline {t} at {now}"
                );
            }
        }
    }

    #[test]
    fn table_min_expire_is_a_lower_bound_made_exact_by_sweeping() {
        let mut h = table();
        h.set(b"a", b"v", TtlUpdate::Set(5_000));
        h.set(b"b", b"v", TtlUpdate::Set(9_000));
        assert_eq!(h.min_expire(), Some(5_000));
        h.remove(b"a");
        let bound = h.min_expire().unwrap();
        assert!(bound <= 9_000);
        assert_eq!(h.remove_expired(8_000, usize::MAX, |_| {}), 0);
        let bound = h.min_expire().unwrap();
        assert!(
            (8_192..=9_000).contains(&bound),
            "at most one bucket early: {bound}"
        );
        assert_eq!(h.remove_expired(8_500, usize::MAX, |_| {}), 0);
        assert_eq!(
            h.min_expire(),
            Some(9_000),
            "exact once its bucket was swept"
        );
        h.set(b"b", b"v", TtlUpdate::Clear);
        assert_eq!(h.min_expire(), None);
    }

    #[test]
    fn emptied_tables_shrink_and_random_picks_stay_cheap() {
        let mut h = table();
        for i in 0..100_000u64 {
            let t = if i % 2 == 0 {
                TtlUpdate::Set(1_000_000 + i)
            } else {
                TtlUpdate::Clear
            };
            h.set(format!("f{i}").as_bytes(), b"v", t);
        }
        for i in 1..100_000u64 {
            h.remove(format!("f{i}").as_bytes());
        }
        let ReprRef::Table(t) = h.repr.get() else {
            unreachable!()
        };
        assert!(
            t.slots.capacity() < 64 * 4,
            "capacity {}",
            t.slots.capacity()
        );
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..1000 {
            assert_eq!(h.random_field(&mut rng).unwrap().field, b"f0");
        }
        assert_eq!(
            h.min_expire(),
            Some(1_000_000),
            "the wheel survived the rehashes"
        );
        assert_eq!(h.remove_expired(u64::MAX, usize::MAX, |_| {}), 1);
    }

    #[test]
    fn live_fields_skip_the_expired_and_know_their_count_when_cheap() {
        for mut h in both_encodings() {
            let table = h.encoding() == Encoding::Hashtable;
            h.set(b"a", b"1", TtlUpdate::Clear);
            h.set(b"x", b"gone", TtlUpdate::Set(100));
            h.set(b"y", b"later", TtlUpdate::Set(300));
            h.set(b"b", b"2", TtlUpdate::Clear);
            fn sorted_pairs(h: &HashValue, now: u64, table: bool) -> Vec<(&[u8], &[u8])> {
                let mut v: Vec<_> = h.live_fields(now).collect();
                let mut by_fold = Vec::new();
                h.live_fields(now).for_each(|p| by_fold.push(p));
                assert_eq!(v, by_fold);
                if table {
                    v.sort();
                }
                v
            }
            let pairs = |h, now| sorted_pairs(h, now, table);
            let all: Vec<(&[u8], &[u8])> = if table {
                vec![
                    (b"a", b"1"),
                    (b"b", b"2"),
                    (b"x", b"gone"),
                    (b"y", b"later"),
                ]
            } else {
                // Compact: the fields with a TTL first, by deadline.
                vec![
                    (b"x", b"gone"),
                    (b"y", b"later"),
                    (b"a", b"1"),
                    (b"b", b"2"),
                ]
            };
            assert_eq!(pairs(&h, 100), all, "a field is live at its deadline");
            assert_eq!(h.live_fields(100).exact_len(), Some(4));
            let live: Vec<_> = all.iter().copied().filter(|p| p.0 != b"x").collect();
            assert_eq!(pairs(&h, 101), live);
            // A compact hash counts its expired prefix; a table finds out as it goes.
            let expect = if table { None } else { Some(3) };
            assert_eq!(h.live_fields(101).exact_len(), expect);
            assert_eq!(pairs(&h, 301).len(), 2);
            assert!(h.live_fields(50).bytes_hint() >= if table { 0 } else { 12 });
        }
    }

    #[test]
    fn random_field_is_stored() {
        let mut rng = fastrand::Rng::with_seed(7);
        for mut h in both_encodings() {
            assert!(h.random_field(&mut rng).is_none());
            h.set(b"a", b"1", TtlUpdate::Clear);
            h.set(b"b", b"2", TtlUpdate::Clear);
            for _ in 0..20 {
                let f = h.random_field(&mut rng).unwrap();
                assert!(f.field == b"a" || f.field == b"b");
            }
        }
    }

    fn arena_used_and_dead(h: &HashValue) -> (usize, usize) {
        match h.repr.get() {
            ReprRef::Table(t) => t.arena.used_and_dead().expect("counts agree"),
            ReprRef::Compact(_) => (0, 0),
        }
    }

    /// Sets, value changes that keep or change the encoding's length, TTLs given and taken
    /// away, deletes and expiry, on a table large enough to fill many segments, against a
    /// model: every field stays readable through every compaction, and the arena's dead
    /// bytes stay below its live ones.
    #[test]
    fn table_churn_compacts_segments_and_loses_nothing() {
        use std::collections::BTreeMap;
        let mut rng = fastrand::Rng::with_seed(11);
        let mut h = table();
        let mut model: BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> = BTreeMap::new();
        let mut now = 1_000u64;
        for step in 0..60_000 {
            let field = format!("field:{}", rng.usize(..8_000)).into_bytes();
            match rng.usize(..10) {
                0..=4 => {
                    let value = vec![b'a' + rng.u8(..26); rng.usize(1..40)];
                    h.set(&field, &value, TtlUpdate::Clear);
                    model.insert(field, (value, None));
                }
                5 => {
                    let t = now + rng.u64(1..5_000);
                    if h.set_expire(&field, Some(t)) {
                        model.get_mut(&field).expect("in the model").1 = Some(t);
                    } else {
                        assert!(!model.contains_key(&field));
                    }
                }
                6 => {
                    if h.set_expire(&field, None) {
                        model.get_mut(&field).expect("in the model").1 = None;
                    }
                }
                7 | 8 => assert_eq!(h.remove(&field), model.remove(&field).is_some()),
                _ => {
                    now += rng.u64(..200);
                    let mut gone = Vec::new();
                    h.remove_expired(now, rng.usize(1..200), |f| gone.push(f.to_vec()));
                    for f in gone {
                        let (_, t) = model.remove(&f).expect("removed a stored field");
                        assert!(t.is_some_and(|t| t < now), "removed a live field");
                    }
                }
            }
            if step % 1_000 == 0 {
                assert!(h.order_holds(), "step {step}");
                let (used, dead) = arena_used_and_dead(&h);
                assert!(
                    dead * 2 <= used + 2 * SEGMENT_MAX,
                    "step {step}: {dead} of {used}"
                );
            }
        }
        assert!(h.order_holds());
        assert_eq!(h.len(), model.len());
        for (f, (v, t)) in &model {
            let got = h.get(f).expect("stored");
            assert_eq!((got.value, got.expire_at), (&v[..], *t));
        }
    }

    /// A drain compacts nothing while it runs, and settles what it left dead when it ends:
    /// no segment stays more than half dead, and the fields left are all there.
    #[test]
    fn a_drain_settles_the_dead_bytes_it_leaves() {
        let mut h = table();
        for i in 0..20_000 {
            let t = (i % 2 != 0).then_some(100 + i as u64 % 7);
            let ttl = t.map_or(TtlUpdate::Clear, TtlUpdate::Set);
            h.set(format!("field:{i}").as_bytes(), &[b'v'; 24], ttl);
        }
        let mut removed = 0;
        while removed < 10_000 {
            let n = h.remove_expired(1_000, 1_000, |_| {});
            assert!(n > 0, "stalled at {removed}");
            removed += n;
        }
        // Half the fields are left: not sparse enough for the table to shrink (and repack).
        assert_eq!(h.len(), 10_000);
        assert!(h.order_holds());
        let ReprRef::Table(t) = h.repr.get() else {
            panic!("a table")
        };
        let (used, dead) = t.arena.used_and_dead().expect("counts agree");
        assert!(dead * 2 <= used, "{dead} of {used} bytes dead");
        for i in (0..20_000).step_by(2) {
            assert!(h.get(format!("field:{i}").as_bytes()).is_some());
        }
    }
}
