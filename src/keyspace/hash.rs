//! [`HashValue`]: the one type every hash command sees. It hides two encodings:
//!
//! * **compact** (Redis's `listpack`/`listpackex`): every field packed back to back in one
//!   buffer, in insertion order; lookups scan. Small hashes are the common case and this is
//!   where the memory goes, so it is as tight as we can make it.
//! * **table** (`hashtable`): one allocation per field in a hash table, plus an ordered
//!   index of the fields that have a TTL so that expired fields are found oldest-first
//!   without scanning.
//!
//! A compact hash becomes a table when it grows past `hash-max-listpack-entries` fields or
//! receives a field or value longer than `hash-max-listpack-value` (see [`EncodingLimits`]).
//! All of this is invisible to commands except through `OBJECT ENCODING`.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use hashbrown::HashTable;

use super::packed::{self, FieldRef};

/// Encoding thresholds (`hash-max-listpack-entries`, `hash-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodingLimits {
    pub max_compact_entries: usize,
    pub max_compact_value: usize,
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

/// A hash value. Field order: insertion order while compact, arbitrary once a table.
#[derive(Clone, Debug, Default)]
pub struct HashValue {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Compact(Compact),
    Table(Box<Table>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Compact(Compact::default())
    }
}

#[derive(Clone, Debug, Default)]
struct Compact {
    buf: Vec<u8>,
    len: u32,
    volatile: u32,
}

/// A field stored in a table: one packed field in its own allocation.
type Slot = Box<[u8]>;

#[derive(Clone, Debug, Default)]
struct Table {
    slots: HashTable<Slot>,
    /// `(deadline, field hash)` for every field with a TTL. Field hashes, not field names,
    /// keep this small; the rare fields that share a hash are told apart by their deadline
    /// and, if need be, looked at one by one.
    volatile: BTreeSet<(u64, u64)>,
    /// Bumped whenever slot positions may move, so HSCAN cursors from before a move restart
    /// instead of skipping fields.
    generation: u32,
}

/// Keys of the field hasher: random per process, so field names cannot be chosen to collide.
fn field_hasher() -> &'static ahash::RandomState {
    static HASHER: OnceLock<ahash::RandomState> = OnceLock::new();
    HASHER.get_or_init(ahash::RandomState::new)
}

fn hash_field(field: &[u8]) -> u64 {
    field_hasher().hash_one(field)
}

fn slot_hash(slot: &Slot) -> u64 {
    hash_field(packed::decode(slot).field)
}

fn make_slot(field: &[u8], value: &[u8], expire_at: Option<u64>) -> Slot {
    let mut v = Vec::with_capacity(packed::encoded_len(field, value, expire_at));
    packed::encode(&mut v, field, value, expire_at);
    v.into_boxed_slice()
}

impl Compact {
    /// Byte offset and decoded form of `field`, if present.
    fn find(&self, field: &[u8]) -> Option<(usize, usize, FieldRef<'_>)> {
        let mut pos = 0;
        while pos < self.buf.len() {
            let (f, n) = packed::decode_at(&self.buf, pos);
            if f.field == field {
                return Some((pos, n, f));
            }
            pos += n;
        }
        None
    }

    fn iter(&self) -> CompactIter<'_> {
        CompactIter {
            buf: &self.buf,
            pos: 0,
        }
    }

    /// Replaces the entry at `pos..pos+old_len` with a new encoding of the field.
    fn rewrite(&mut self, pos: usize, old_len: usize, field: &[u8], value: &[u8], t: Option<u64>) {
        let mut enc = Vec::with_capacity(packed::encoded_len(field, value, t));
        packed::encode(&mut enc, field, value, t);
        self.buf.splice(pos..pos + old_len, enc);
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

impl Table {
    fn find(&self, field: &[u8]) -> Option<&Slot> {
        self.slots
            .find(hash_field(field), |s| packed::decode(s).field == field)
    }

    /// Removes `(t, h)` from the volatile index unless another field with hash `h` still
    /// has deadline `t`.
    fn unindex(&mut self, t: u64, h: u64) {
        let still_used = self
            .slots
            .iter_hash(h)
            .any(|s| packed::decode(s).expire_at == Some(t) && slot_hash(s) == h);
        if !still_used {
            self.volatile.remove(&(t, h));
        }
    }

    fn insert_new(&mut self, h: u64, slot: Slot) {
        // A full table rehashes on insert, which may move every slot (see `generation`).
        if self.slots.len() == self.slots.capacity() {
            self.generation = self.generation.wrapping_add(1);
        }
        if let Some(t) = packed::decode(&slot).expire_at {
            self.volatile.insert((t, h));
        }
        self.slots.insert_unique(h, slot, slot_hash);
    }

    /// Stores `slot` for `field` (hash `h`), replacing any previous slot. Returns the old
    /// deadline if the field existed (`Some(None)` = existed without a TTL).
    fn upsert(&mut self, h: u64, field: &[u8], slot: Slot) -> Option<Option<u64>> {
        let new_t = packed::decode(&slot).expire_at;
        match self.slots.find_mut(h, |s| packed::decode(s).field == field) {
            Some(existing) => {
                let old_t = packed::decode(existing).expire_at;
                *existing = slot;
                if old_t != new_t {
                    if let Some(t) = old_t {
                        self.unindex(t, h);
                    }
                    if let Some(t) = new_t {
                        self.volatile.insert((t, h));
                    }
                }
                Some(old_t)
            }
            None => {
                self.insert_new(h, slot);
                None
            }
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let h = hash_field(field);
        match self
            .slots
            .find_entry(h, |s| packed::decode(s).field == field)
        {
            Ok(entry) => {
                let (slot, _) = entry.remove();
                if let Some(t) = packed::decode(&slot).expire_at {
                    self.unindex(t, h);
                }
                true
            }
            Err(_) => false,
        }
    }
}

impl HashValue {
    pub fn new() -> Self {
        HashValue::default()
    }

    /// Stored fields, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Compact(c) => c.len as usize,
            Repr::Table(t) => t.slots.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fields that carry a TTL.
    pub fn volatile_len(&self) -> usize {
        match &self.repr {
            Repr::Compact(c) => c.volatile as usize,
            Repr::Table(t) => t.volatile.len(),
        }
    }

    pub fn encoding(&self) -> Encoding {
        match &self.repr {
            Repr::Compact(c) if c.volatile > 0 => Encoding::ListpackEx,
            Repr::Compact(_) => Encoding::Listpack,
            Repr::Table(_) => Encoding::Hashtable,
        }
    }

    /// The field as stored, expired or not.
    pub fn get(&self, field: &[u8]) -> Option<FieldRef<'_>> {
        match &self.repr {
            Repr::Compact(c) => c.find(field).map(|(_, _, f)| f),
            Repr::Table(t) => t.find(field).map(|s| packed::decode(s)),
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
        let (compact, table) = match &self.repr {
            Repr::Compact(c) => (Some(c.iter()), None),
            Repr::Table(t) => (None, Some(t.slots.iter().map(|s| packed::decode(s)))),
        };
        compact
            .into_iter()
            .flatten()
            .chain(table.into_iter().flatten())
    }

    /// Sets `field` to `value`, treating its TTL as `ttl` says. Returns true if the field
    /// is new. Does not change the encoding; see [`HashValue::fit_encoding`].
    pub fn set(&mut self, field: &[u8], value: &[u8], ttl: TtlUpdate) -> bool {
        match &mut self.repr {
            Repr::Compact(c) => match c.find(field) {
                Some((pos, n, old)) => {
                    let old_t = old.expire_at;
                    let new_t = match ttl {
                        TtlUpdate::Clear => None,
                        TtlUpdate::Keep => old_t,
                        TtlUpdate::Set(t) => Some(t),
                    };
                    c.volatile =
                        c.volatile + u32::from(new_t.is_some()) - u32::from(old_t.is_some());
                    c.rewrite(pos, n, field, value, new_t);
                    false
                }
                None => {
                    let t = match ttl {
                        TtlUpdate::Set(t) => Some(t),
                        _ => None,
                    };
                    packed::encode(&mut c.buf, field, value, t);
                    c.len += 1;
                    c.volatile += u32::from(t.is_some());
                    true
                }
            },
            Repr::Table(t) => {
                let h = hash_field(field);
                let keep = match ttl {
                    TtlUpdate::Keep => t.find(field).and_then(|s| packed::decode(s).expire_at),
                    _ => None,
                };
                let new_t = match ttl {
                    TtlUpdate::Clear => None,
                    TtlUpdate::Keep => keep,
                    TtlUpdate::Set(d) => Some(d),
                };
                t.upsert(h, field, make_slot(field, value, new_t)).is_none()
            }
        }
    }

    /// Sets or clears the TTL of an existing field. Returns false if the field is missing.
    pub fn set_expire(&mut self, field: &[u8], expire_at: Option<u64>) -> bool {
        match &mut self.repr {
            Repr::Compact(c) => {
                let Some((pos, n, old)) = c.find(field) else {
                    return false;
                };
                if old.expire_at == expire_at {
                    return true;
                }
                let value = old.value.to_vec();
                c.volatile = c.volatile + u32::from(expire_at.is_some())
                    - u32::from(old.expire_at.is_some());
                c.rewrite(pos, n, field, &value, expire_at);
                true
            }
            Repr::Table(t) => {
                let Some(old) = t.find(field).map(|s| packed::decode(s)) else {
                    return false;
                };
                if old.expire_at == expire_at {
                    return true;
                }
                let slot = make_slot(field, old.value, expire_at);
                t.upsert(hash_field(field), field, slot);
                true
            }
        }
    }

    /// Removes a field (expired or not). Returns true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Compact(c) => match c.find(field) {
                Some((pos, n, f)) => {
                    c.volatile -= u32::from(f.expire_at.is_some());
                    c.buf.drain(pos..pos + n);
                    c.len -= 1;
                    if c.buf.capacity() > 2 * c.buf.len() + 64 {
                        c.buf.shrink_to_fit();
                    }
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.remove(field),
        }
    }

    /// The earliest field deadline, if any field has a TTL.
    pub fn min_expire(&self) -> Option<u64> {
        match &self.repr {
            Repr::Compact(c) if c.volatile == 0 => None,
            Repr::Compact(c) => c.iter().filter_map(|f| f.expire_at).min(),
            Repr::Table(t) => t.volatile.first().map(|&(d, _)| d),
        }
    }

    /// Removes up to `limit` fields that are expired at `now_ms`, earliest first in a table
    /// (in any order when compact, where all of them go in one pass). Returns how many.
    pub fn remove_expired(&mut self, now_ms: u64, limit: usize) -> usize {
        match &mut self.repr {
            Repr::Compact(c) => {
                if c.volatile == 0 || limit == 0 {
                    return 0;
                }
                let mut removed = 0;
                let mut out = Vec::with_capacity(c.buf.len());
                let mut pos = 0;
                while pos < c.buf.len() {
                    let (f, n) = packed::decode_at(&c.buf, pos);
                    if removed < limit && f.is_expired(now_ms) {
                        removed += 1;
                    } else {
                        out.extend_from_slice(&c.buf[pos..pos + n]);
                    }
                    pos += n;
                }
                c.buf = out;
                c.len -= removed as u32;
                c.volatile -= removed as u32;
                removed
            }
            Repr::Table(t) => {
                let mut removed = 0;
                while removed < limit {
                    let Some(&(d, h)) = t.volatile.first() else {
                        break;
                    };
                    if d >= now_ms {
                        break;
                    }
                    t.volatile.pop_first();
                    // Every field with this hash and this deadline goes.
                    while let Ok(entry) = t.slots.find_entry(h, |s| {
                        packed::decode(s).expire_at == Some(d) && slot_hash(s) == h
                    }) {
                        entry.remove();
                        removed += 1;
                    }
                }
                removed
            }
        }
    }

    /// Incremental iteration for HSCAN. Calls `visit` for the fields of one step (expired
    /// ones included; the caller filters) and returns the next cursor, 0 when done.
    /// A compact hash is returned whole in one step, as Redis does. In a table the cursor
    /// is `generation << 32 | bucket`; a cursor from before slots moved restarts the scan,
    /// so every field present for the whole scan is returned at least once.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(FieldRef<'_>)) -> u64 {
        match &self.repr {
            Repr::Compact(c) => {
                c.iter().for_each(visit);
                0
            }
            Repr::Table(t) => {
                let generation = (cursor >> 32) as u32;
                let mut bucket = (cursor & 0xffff_ffff) as usize;
                if generation != t.generation {
                    bucket = 0;
                }
                let buckets = t.slots.num_buckets();
                let mut seen = 0;
                while bucket < buckets && seen < count.max(1) {
                    if let Some(s) = t.slots.get_bucket(bucket) {
                        visit(packed::decode(s));
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
        match &self.repr {
            Repr::Compact(c) => {
                if c.len == 0 {
                    return None;
                }
                c.iter().nth(rng.usize(..c.len as usize))
            }
            Repr::Table(t) => {
                if t.slots.is_empty() {
                    return None;
                }
                let buckets = t.slots.num_buckets();
                // Load factor is at least ~40%, so this takes a couple of probes on average.
                loop {
                    if let Some(s) = t.slots.get_bucket(rng.usize(..buckets)) {
                        return Some(packed::decode(s));
                    }
                }
            }
        }
    }

    /// True if writing `field`/`value` would push a compact hash past the limits.
    pub fn needs_table_for(&self, field: &[u8], value: &[u8], limits: &EncodingLimits) -> bool {
        matches!(self.repr, Repr::Compact(_))
            && (field.len() > limits.max_compact_value || value.len() > limits.max_compact_value)
    }

    /// Converts a compact hash that has grown past `limits` into a table. Tables stay
    /// tables, as in Redis.
    pub fn fit_encoding(&mut self, limits: &EncodingLimits) {
        if let Repr::Compact(c) = &self.repr {
            if c.len as usize > limits.max_compact_entries {
                self.convert_to_table();
            }
        }
    }

    /// Switches to the table encoding (no-op if already a table).
    pub fn convert_to_table(&mut self) {
        let Repr::Compact(c) = &self.repr else { return };
        let mut t = Table {
            slots: HashTable::with_capacity(c.len as usize),
            ..Table::default()
        };
        for f in c.iter() {
            t.insert_new(
                hash_field(f.field),
                make_slot(f.field, f.value, f.expire_at),
            );
        }
        self.repr = Repr::Table(Box::new(t));
    }

    /// Approximate heap bytes (MEMORY USAGE, INFO memory estimates).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Compact(c) => c.buf.capacity(),
            Repr::Table(t) => {
                t.slots.allocation_size()
                    + t.slots.iter().map(|s| s.len()).sum::<usize>()
                    + t.volatile.len() * 24
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
            assert_eq!(h.remove_expired(15, 3), 3);
            assert_eq!(h.remove_expired(15, 100), 2);
            assert_eq!(h.len(), 6);
            assert_eq!(h.min_expire(), Some(15));
            assert_eq!(h.remove_expired(u64::MAX, usize::MAX), 5);
            assert_eq!(h.volatile_len(), 0);
            assert_eq!(h.len(), 1);
        }
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
}
