//! Streaming RDB loading: [`RdbReader`] pulls one hash at a time out of any `std::io::Read`.
//!
//! Rules for what is not a plain hash:
//! * Metadata that carries no data hashd keeps is read and dropped: AUX fields (kept in
//!   [`RdbReader::aux`]), RESIZEDB and SLOT_INFO (sizing hints), IDLE and FREQ (LRU/LFU state,
//!   which hashd does not have).
//! * Data hashd cannot keep (keys of other types, module values and module aux data, function
//!   libraries) is an error naming it, unless [`LoadOptions::skip_unsupported`] is set: then it
//!   is parsed past and counted in [`LoadStats`]. Pre-release formats Redis itself refuses
//!   (`FUNCTION_PRE_GA`, `MODULE_PRE_GA`) are always errors.
//! * With [`LoadOptions::now_ms`] set, what is already past its deadline is dropped and counted,
//!   as a master does: keys whose key TTL passed, fields whose TTL passed, and hashes left with
//!   no field. (Redis 7.4 keeps expired fields until its active expiry reclaims them, spec §1.9;
//!   Valkey 9.1 drops them at load. The result a client can see is the same.)
//! * Empty hashes are skipped, as Redis does.
//!
//! Keys are handed out before the trailing checksum is read: a caller that must not apply a
//! corrupt file keeps what it got until [`RdbReader::next_key`] returns `Ok(None)`.

use std::io::{ErrorKind, Read};

use super::crc64::Crc64;
use super::listpack::{Entry, Listpack};
use super::lzf;
use super::ziplist::Ziplist;
use super::{
    enc, escape_bytes, opcodes as op, types as t, RdbError, RdbField, RdbKey, FIELD_EXPIRE_MAX_MS,
    RDB_VERSION,
};

const BUF_BYTES: usize = 64 * 1024;
/// Initial capacity for a collection whose count comes from the file: enough to avoid early
/// reallocations, little enough that a lying count costs nothing.
const MAX_PREALLOC_ITEMS: usize = 4096;

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Drop keys and fields whose deadline is before this unix time (ms). `None` keeps
    /// everything, as a replica or an AOF preamble load does.
    pub now_ms: Option<u64>,
    /// Skip keys of other types (and module/function data) instead of failing.
    pub skip_unsupported: bool,
    /// Check the CRC64 trailer (a zero trailer means the writer had checksums off).
    pub verify_checksum: bool,
    /// Accept versions newer than 12 (hash types did not change after 7.4); anything unknown
    /// in such a file is still an error.
    pub relaxed_version: bool,
    /// SELECTDB beyond this is an error, as in Redis (`databases`).
    pub databases: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            now_ms: None,
            skip_unsupported: false,
            verify_checksum: true,
            relaxed_version: false,
            databases: 16,
        }
    }
}

/// What a load did besides returning keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Keys returned by `next_key`.
    pub keys_loaded: u64,
    /// Keys dropped because their key TTL had passed.
    pub keys_expired: u64,
    /// Fields dropped because their TTL had passed (in hashes kept or dropped).
    pub fields_expired: u64,
    /// Hashes dropped because every field had expired.
    pub hashes_all_fields_expired: u64,
    /// Keys of other types skipped under `skip_unsupported`.
    pub keys_skipped: u64,
    /// Empty hashes skipped.
    pub empty_keys_skipped: u64,
    /// MODULE_AUX records and FUNCTION2 libraries skipped under `skip_unsupported`.
    pub other_records_skipped: u64,
}

/// A buffered input that counts its offset and checksums what it consumes.
struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Absolute offset of `buf[0]`.
    base: u64,
    crc: Option<Crc64>,
    /// `buf[..crc_pos]` is already in `crc`.
    crc_pos: usize,
}

impl<R: Read> Input<R> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn truncated(&self, what: &'static str) -> RdbError {
        RdbError::Truncated {
            offset: self.offset(),
            what,
        }
    }

    /// Refills an exhausted buffer; `false` at end of input.
    fn fill(&mut self, what: &'static str) -> Result<bool, RdbError> {
        debug_assert_eq!(self.pos, self.end);
        if let Some(crc) = &mut self.crc {
            crc.update(&self.buf[self.crc_pos..self.end]);
        }
        self.base += self.end as u64;
        self.pos = 0;
        self.end = 0;
        self.crc_pos = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => return Err(self.truncated(what)),
                Ok(n) => {
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(RdbError::Io {
                        offset: self.offset(),
                        source,
                    })
                }
            }
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RdbError> {
        if self.pos == self.end {
            self.fill(what)?;
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn exact<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RdbError> {
        let mut out = [0u8; N];
        let mut got = 0;
        while got < N {
            if self.pos == self.end {
                self.fill(what)?;
            }
            let n = (N - got).min(self.end - self.pos);
            out[got..got + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            got += n;
        }
        Ok(out)
    }

    /// Reads `len` bytes; memory grows with what actually arrives, not with `len`.
    fn bytes(&mut self, len: u64, what: &'static str) -> Result<Vec<u8>, RdbError> {
        let len = usize::try_from(len).map_err(|_| self.truncated(what))?;
        let mut out = Vec::with_capacity(len.min(BUF_BYTES));
        while out.len() < len {
            if self.pos == self.end {
                self.fill(what)?;
            }
            let n = (len - out.len()).min(self.end - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
        }
        Ok(out)
    }

    fn skip(&mut self, mut len: u64, what: &'static str) -> Result<(), RdbError> {
        while len > 0 {
            if self.pos == self.end {
                self.fill(what)?;
            }
            let n = (self.end - self.pos).min(usize::try_from(len).unwrap_or(usize::MAX));
            self.pos += n;
            len -= n as u64;
        }
        Ok(())
    }

    /// The checksum of everything consumed so far; stops checksumming.
    fn take_crc(&mut self) -> Option<u64> {
        let mut crc = self.crc.take()?;
        crc.update(&self.buf[self.crc_pos..self.pos]);
        self.crc_pos = self.pos;
        Some(crc.finish())
    }
}

/// A decoded length-or-encoding prefix.
enum Len {
    Plain(u64),
    Special(u8),
}

/// Streaming RDB reader. See the module docs for what it keeps, skips and refuses.
///
/// It buffers internally (64 KiB), so a bare `File` or socket needs no `BufReader`; progress
/// is [`RdbReader::bytes_read`], which a caller can sample between keys.
pub struct RdbReader<R> {
    input: Input<R>,
    opts: LoadOptions,
    version: u32,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    db: usize,
    stats: LoadStats,
    done: bool,
    failed: bool,
    /// The key being decoded, for error texts.
    current_key: Option<Vec<u8>>,
}

impl<R: Read> RdbReader<R> {
    /// Reads and checks the header (`REDIS` + 4-digit version).
    pub fn new(inner: R, opts: LoadOptions) -> Result<Self, RdbError> {
        let mut input = Input {
            inner,
            buf: vec![0u8; BUF_BYTES].into_boxed_slice(),
            pos: 0,
            end: 0,
            base: 0,
            crc: opts.verify_checksum.then(Crc64::new),
            crc_pos: 0,
        };
        let magic: [u8; 9] = input.exact("the RDB header")?;
        if &magic[..5] != b"REDIS" || !magic[5..].iter().all(u8::is_ascii_digit) {
            return Err(RdbError::BadMagic {
                found: escape_bytes(&magic),
            });
        }
        let version = magic[5..]
            .iter()
            .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        if version < 1 || (version > RDB_VERSION && !opts.relaxed_version) {
            return Err(RdbError::UnsupportedVersion { version });
        }
        Ok(RdbReader {
            input,
            opts,
            version,
            aux: Vec::new(),
            db: 0,
            stats: LoadStats::default(),
            done: false,
            failed: false,
            current_key: None,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The AUX fields read so far (all of them precede the first key in files Redis writes).
    pub fn aux(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.aux
    }

    pub fn stats(&self) -> &LoadStats {
        &self.stats
    }

    /// Bytes consumed so far: the progress of the load.
    pub fn bytes_read(&self) -> u64 {
        self.input.offset()
    }

    /// The underlying reader and the bytes read ahead past the RDB (an AOF after an RDB
    /// preamble, the command stream after a replication payload).
    pub fn into_inner(self) -> (R, Vec<u8>) {
        let rest = self.input.buf[self.input.pos..self.input.end].to_vec();
        (self.input.inner, rest)
    }

    fn corrupt(&self, what: impl Into<String>) -> RdbError {
        let mut what = what.into();
        if let Some(key) = &self.current_key {
            what.push_str(" (in key ");
            what.push_str(&escape_bytes(key));
            what.push(')');
        }
        RdbError::Corrupt {
            offset: self.input.offset(),
            what,
        }
    }

    /// The next live hash, or `None` after the EOF opcode (and a verified checksum). After an
    /// error the reader is spent: every later call fails.
    pub fn next_key(&mut self) -> Result<Option<RdbKey>, RdbError> {
        if self.failed {
            return Err(RdbError::Corrupt {
                offset: self.input.offset(),
                what: "the reader already failed".into(),
            });
        }
        let result = self.next_key_inner();
        self.failed = result.is_err();
        result
    }

    fn next_key_inner(&mut self) -> Result<Option<RdbKey>, RdbError> {
        let mut expire_ms: Option<u64> = None;
        while !self.done {
            let at = self.input.offset();
            let code = self.input.u8("an opcode")?;
            match code {
                op::AUX => {
                    let k = self.string("an AUX key")?;
                    let v = self.string("an AUX value")?;
                    self.aux.push((k, v));
                }
                op::RESIZEDB => {
                    self.len("RESIZEDB")?;
                    self.len("RESIZEDB")?;
                }
                op::SLOT_INFO => {
                    for _ in 0..3 {
                        self.len("SLOT_INFO")?;
                    }
                }
                op::EXPIRETIME_MS => {
                    let ms = i64::from_le_bytes(self.input.exact("a key expire time")?);
                    // A negative deadline is simply long past.
                    expire_ms = Some(ms.max(0) as u64);
                }
                op::EXPIRETIME => {
                    let s = i32::from_le_bytes(self.input.exact("a key expire time")?);
                    expire_ms = Some((i64::from(s).max(0) as u64) * 1000);
                }
                op::IDLE => {
                    self.len("an IDLE time")?;
                }
                op::FREQ => {
                    self.input.u8("an LFU frequency")?;
                }
                op::SELECTDB => {
                    let db = self.len("a db number")?;
                    if db >= self.opts.databases as u64 {
                        return Err(RdbError::Corrupt {
                            offset: at,
                            what: format!(
                                "SELECTDB {db}, but only {} databases are configured",
                                self.opts.databases
                            ),
                        });
                    }
                    self.db = db as usize;
                }
                op::EOF => {
                    self.finish_file()?;
                }
                op::MODULE_AUX => {
                    self.unsupported_record(at, "module aux data")?;
                    let _module_id = self.len("a module id")?;
                    let when_opcode = self.len("a module aux opcode")?;
                    if when_opcode != MODULE_OPCODE_UINT {
                        return Err(self.corrupt("bad module aux 'when' opcode"));
                    }
                    self.len("a module aux 'when'")?;
                    self.skip_module_body()?;
                    self.stats.other_records_skipped += 1;
                }
                op::FUNCTION2 => {
                    self.unsupported_record(at, "a function library")?;
                    self.skip_string("a function library")?;
                    self.stats.other_records_skipped += 1;
                }
                op::FUNCTION_PRE_GA => {
                    return Err(RdbError::Unsupported {
                        offset: at,
                        what: "a pre-release (7.0 RC) function library",
                    })
                }
                type_id => {
                    let Some(type_name) = t::name(type_id) else {
                        return Err(RdbError::UnknownType {
                            offset: at,
                            byte: type_id,
                        });
                    };
                    let key = self.string("a key")?;
                    let key_expire = expire_ms.take();
                    if type_name != "hash" {
                        if !self.opts.skip_unsupported || type_id == t::MODULE_PRE_GA {
                            return Err(RdbError::UnsupportedType {
                                offset: at,
                                db: self.db,
                                key: escape_bytes(&key),
                                type_name,
                                type_id,
                            });
                        }
                        self.current_key = Some(key);
                        self.skip_value(type_id)?;
                        self.current_key = None;
                        self.stats.keys_skipped += 1;
                        continue;
                    }
                    self.current_key = Some(key);
                    let fields = self.hash_value(type_id)?;
                    let key = self.current_key.take().unwrap_or_default();
                    if let Some(k) = self.keep(key, key_expire, fields) {
                        self.stats.keys_loaded += 1;
                        return Ok(Some(k));
                    }
                }
            }
        }
        Ok(None)
    }

    fn unsupported_record(&self, at: u64, what: &'static str) -> Result<(), RdbError> {
        if self.opts.skip_unsupported {
            Ok(())
        } else {
            Err(RdbError::Unsupported { offset: at, what })
        }
    }

    /// The trailer: the CRC64 (from version 5 on) over everything up to and including EOF.
    fn finish_file(&mut self) -> Result<(), RdbError> {
        let computed = self.input.take_crc();
        if self.version >= 5 {
            let at = self.input.offset();
            let stored = u64::from_le_bytes(self.input.exact("the checksum")?);
            if let Some(computed) = computed {
                if stored != 0 && stored != computed {
                    return Err(RdbError::Checksum {
                        offset: at,
                        stored,
                        computed,
                    });
                }
            }
        }
        self.done = true;
        Ok(())
    }

    /// Applies the load-time rules to a decoded hash: empty → skipped, expired → dropped.
    fn keep(
        &mut self,
        key: Vec<u8>,
        expire_ms: Option<u64>,
        mut fields: Vec<RdbField>,
    ) -> Option<RdbKey> {
        if fields.is_empty() {
            self.stats.empty_keys_skipped += 1;
            return None;
        }
        if let Some(now) = self.opts.now_ms {
            if matches!(expire_ms, Some(t) if t < now) {
                self.stats.keys_expired += 1;
                return None;
            }
            let before = fields.len();
            fields.retain(|f| !matches!(f.expire_ms, Some(t) if t < now));
            self.stats.fields_expired += (before - fields.len()) as u64;
            if fields.is_empty() {
                self.stats.hashes_all_fields_expired += 1;
                return None;
            }
        }
        Some(RdbKey {
            db: self.db,
            key,
            expire_ms,
            fields,
        })
    }

    fn len_or_encoding(&mut self, what: &'static str) -> Result<Len, RdbError> {
        let b = self.input.u8(what)?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3F)),
            1 => Len::Plain((u64::from(b & 0x3F) << 8) | u64::from(self.input.u8(what)?)),
            3 => Len::Special(b & 0x3F),
            _ => match b {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.input.exact(what)?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.input.exact(what)?)),
                _ => return Err(self.corrupt(format!("unknown length encoding {b:#04x}"))),
            },
        })
    }

    fn len(&mut self, what: &'static str) -> Result<u64, RdbError> {
        match self.len_or_encoding(what)? {
            Len::Plain(n) => Ok(n),
            Len::Special(e) => Err(self.corrupt(format!(
                "expected a length for {what}, found string encoding {e}"
            ))),
        }
    }

    /// A string in any of its four forms (plain, INT8/16/32, LZF).
    fn string(&mut self, what: &'static str) -> Result<Vec<u8>, RdbError> {
        match self.len_or_encoding(what)? {
            Len::Plain(n) => self.input.bytes(n, what),
            Len::Special(enc::INT8) => Ok(decimal(i64::from(self.input.u8(what)? as i8))),
            Len::Special(enc::INT16) => Ok(decimal(i64::from(i16::from_le_bytes(
                self.input.exact(what)?,
            )))),
            Len::Special(enc::INT32) => Ok(decimal(i64::from(i32::from_le_bytes(
                self.input.exact(what)?,
            )))),
            Len::Special(enc::LZF) => {
                let clen = self.len(what)?;
                let len = self.len(what)?;
                if len > (clen.saturating_mul(lzf::MAX_EXPANSION as u64)) {
                    return Err(self.corrupt(format!(
                        "LZF string of {clen} bytes claims to expand to {len}"
                    )));
                }
                let packed = self.input.bytes(clen, what)?;
                lzf::decompress(&packed, len as usize).map_err(|e| self.corrupt(e))
            }
            Len::Special(e) => Err(self.corrupt(format!("unknown string encoding {e}"))),
        }
    }

    fn skip_string(&mut self, what: &'static str) -> Result<(), RdbError> {
        match self.len_or_encoding(what)? {
            Len::Plain(n) => self.input.skip(n, what),
            Len::Special(enc::INT8) => self.input.skip(1, what),
            Len::Special(enc::INT16) => self.input.skip(2, what),
            Len::Special(enc::INT32) => self.input.skip(4, what),
            Len::Special(enc::LZF) => {
                let clen = self.len(what)?;
                self.len(what)?;
                self.input.skip(clen, what)
            }
            Len::Special(e) => Err(self.corrupt(format!("unknown string encoding {e}"))),
        }
    }

    fn i64_le(&mut self, what: &'static str) -> Result<i64, RdbError> {
        Ok(i64::from_le_bytes(self.input.exact(what)?))
    }

    fn hash_value(&mut self, type_id: u8) -> Result<Vec<RdbField>, RdbError> {
        let fields = match type_id {
            t::HASH => {
                let n = self.len("a hash length")?;
                let mut fields = Vec::with_capacity(prealloc(n));
                for _ in 0..n {
                    let field = self.string("a hash field")?;
                    let value = self.string("a hash value")?;
                    fields.push(RdbField {
                        field,
                        value,
                        expire_ms: None,
                    });
                }
                fields
            }
            t::HASH_METADATA | t::HASH_METADATA_PRE_GA => {
                let min_expire = if type_id == t::HASH_METADATA {
                    let m = self.i64_le("a hash minExpire")? as u64;
                    if m > FIELD_EXPIRE_MAX_MS + 1 {
                        return Err(self.corrupt(format!("invalid hash minExpire {m}")));
                    }
                    Some(m)
                } else {
                    None
                };
                let n = self.len("a hash length")?;
                let mut fields = Vec::with_capacity(prealloc(n));
                for _ in 0..n {
                    let ttl = self.len("a field TTL")?;
                    let expire = match (ttl, min_expire) {
                        (0, _) => None,
                        (ttl, Some(min)) => Some((ttl - 1).saturating_add(min)),
                        (abs, None) => Some(abs),
                    };
                    if let Some(e) = expire.filter(|&e| e > FIELD_EXPIRE_MAX_MS) {
                        return Err(self.corrupt(format!("invalid field expireAt time {e}")));
                    }
                    let field = self.string("a hash field")?;
                    let value = self.string("a hash value")?;
                    fields.push(RdbField {
                        field,
                        value,
                        expire_ms: expire,
                    });
                }
                fields
            }
            t::HASH_LISTPACK | t::HASH_ZIPLIST => {
                let blob = self.string("a hash listpack")?;
                self.pairs(&blob, type_id == t::HASH_ZIPLIST)?
            }
            t::HASH_LISTPACK_EX | t::HASH_LISTPACK_EX_PRE_GA => {
                if type_id == t::HASH_LISTPACK_EX {
                    // minExpire: a hint Redis itself ignores on load.
                    self.i64_le("a hash minExpire")?;
                }
                let blob = self.string("a hash listpack")?;
                self.triplets(&blob)?
            }
            t::HASH_ZIPMAP => {
                let blob = self.string("a hash zipmap")?;
                zipmap_pairs(&blob).map_err(|e| self.corrupt(e))?
            }
            _ => return Err(self.corrupt(format!("type {type_id} is not a hash"))),
        };
        self.check_duplicates(&fields)?;
        Ok(fields)
    }

    fn pairs(&self, blob: &[u8], ziplist: bool) -> Result<Vec<RdbField>, RdbError> {
        let mut entries = PackedList::new(blob, ziplist).map_err(|e| self.corrupt(e))?;
        let mut fields = Vec::new();
        while let Some(field) = entries.next().map_err(|e| self.corrupt(e))? {
            let Some(value) = entries.next().map_err(|e| self.corrupt(e))? else {
                return Err(self.corrupt("hash listpack with an odd number of entries"));
            };
            fields.push(RdbField {
                field: field.to_bytes(),
                value: value.to_bytes(),
                expire_ms: None,
            });
        }
        Ok(fields)
    }

    fn triplets(&self, blob: &[u8]) -> Result<Vec<RdbField>, RdbError> {
        let mut lp = Listpack::new(blob).map_err(|e| self.corrupt(e))?;
        let mut fields = Vec::new();
        let bad_count =
            || self.corrupt("hash listpack-ex entries are not field/value/TTL triplets");
        while let Some(field) = lp.next_entry().map_err(|e| self.corrupt(e))? {
            let value = lp
                .next_entry()
                .map_err(|e| self.corrupt(e))?
                .ok_or_else(bad_count)?;
            let ttl = lp
                .next_entry()
                .map_err(|e| self.corrupt(e))?
                .ok_or_else(bad_count)?;
            let expire = match ttl {
                Entry::Int(0) => None,
                Entry::Int(v) if v > 0 && v as u64 <= FIELD_EXPIRE_MAX_MS => Some(v as u64),
                other => {
                    return Err(self.corrupt(format!("invalid field TTL {other:?} in listpack-ex")))
                }
            };
            fields.push(RdbField {
                field: field.to_bytes(),
                value: value.to_bytes(),
                expire_ms: expire,
            });
        }
        Ok(fields)
    }

    /// Redis refuses a hash that names a field twice ("Duplicate hash fields detected"); a
    /// keyspace built from one would break its own invariants.
    fn check_duplicates(&self, fields: &[RdbField]) -> Result<(), RdbError> {
        if fields.len() < 2 {
            return Ok(());
        }
        let mut seen = hashbrown::HashSet::with_capacity(fields.len());
        for f in fields {
            if !seen.insert(f.field.as_slice()) {
                return Err(
                    self.corrupt(format!("duplicate hash field {}", escape_bytes(&f.field)))
                );
            }
        }
        Ok(())
    }

    /// Parses past a value of a type hashd does not store.
    fn skip_value(&mut self, type_id: u8) -> Result<(), RdbError> {
        match type_id {
            t::STRING
            | t::LIST_ZIPLIST
            | t::SET_INTSET
            | t::ZSET_ZIPLIST
            | t::ZSET_LISTPACK
            | t::SET_LISTPACK => self.skip_string("a value"),
            t::LIST | t::SET | t::LIST_QUICKLIST => {
                let n = self.len("a collection length")?;
                for _ in 0..n {
                    self.skip_string("an element")?;
                }
                Ok(())
            }
            t::LIST_QUICKLIST_2 => {
                let n = self.len("a quicklist length")?;
                for _ in 0..n {
                    self.len("a quicklist container")?;
                    self.skip_string("a quicklist node")?;
                }
                Ok(())
            }
            t::ZSET => {
                let n = self.len("a zset length")?;
                for _ in 0..n {
                    self.skip_string("a zset member")?;
                    // Old text score: 253/254/255 are nan/+inf/-inf with no bytes.
                    let l = self.input.u8("a zset score")?;
                    if l < 253 {
                        self.input.skip(u64::from(l), "a zset score")?;
                    }
                }
                Ok(())
            }
            t::ZSET_2 => {
                let n = self.len("a zset length")?;
                for _ in 0..n {
                    self.skip_string("a zset member")?;
                    self.input.skip(8, "a zset score")?;
                }
                Ok(())
            }
            t::MODULE_2 => {
                self.len("a module id")?;
                self.skip_module_body()
            }
            t::STREAM_LISTPACKS | t::STREAM_LISTPACKS_2 | t::STREAM_LISTPACKS_3 => {
                self.skip_stream(type_id)
            }
            _ => Err(self.corrupt(format!("cannot skip a value of RDB type {type_id}"))),
        }
    }

    /// Module values are self-describing: opcode-tagged items up to an EOF opcode.
    fn skip_module_body(&mut self) -> Result<(), RdbError> {
        loop {
            match self.len("a module opcode")? {
                0 => return Ok(()),
                1 | 2 => {
                    self.len("a module integer")?;
                }
                3 => self.input.skip(4, "a module float")?,
                4 => self.input.skip(8, "a module double")?,
                5 => self.skip_string("a module string")?,
                other => return Err(self.corrupt(format!("unknown module opcode {other}"))),
            }
        }
    }

    fn skip_stream(&mut self, type_id: u8) -> Result<(), RdbError> {
        let nodes = self.len("stream listpacks")?;
        for _ in 0..nodes {
            self.skip_string("a stream node key")?;
            self.skip_string("a stream listpack")?;
        }
        self.len("a stream length")?;
        self.len("a stream last id")?;
        self.len("a stream last id")?;
        if type_id >= t::STREAM_LISTPACKS_2 {
            for _ in 0..5 {
                self.len("stream metadata")?;
            }
        }
        let groups = self.len("stream consumer groups")?;
        for _ in 0..groups {
            self.skip_string("a consumer group name")?;
            self.len("a group last id")?;
            self.len("a group last id")?;
            if type_id >= t::STREAM_LISTPACKS_2 {
                self.len("a group entries-read")?;
            }
            let pel = self.len("a group PEL size")?;
            for _ in 0..pel {
                self.input.skip(16 + 8, "a PEL entry")?;
                self.len("a PEL delivery count")?;
            }
            let consumers = self.len("stream consumers")?;
            for _ in 0..consumers {
                self.skip_string("a consumer name")?;
                self.input.skip(8, "a consumer seen time")?;
                if type_id >= t::STREAM_LISTPACKS_3 {
                    self.input.skip(8, "a consumer active time")?;
                }
                let pel = self.len("a consumer PEL size")?;
                self.input.skip(pel.saturating_mul(16), "a consumer PEL")?;
            }
        }
        Ok(())
    }
}

const MODULE_OPCODE_UINT: u64 = 2;

fn prealloc(n: u64) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .min(MAX_PREALLOC_ITEMS)
}

fn decimal(v: i64) -> Vec<u8> {
    itoa::Buffer::new().format(v).as_bytes().to_vec()
}

/// Listpack or ziplist behind one cursor.
enum PackedList<'a> {
    Listpack(Listpack<'a>),
    Ziplist(Ziplist<'a>),
}

impl<'a> PackedList<'a> {
    fn new(blob: &'a [u8], ziplist: bool) -> Result<Self, String> {
        Ok(if ziplist {
            PackedList::Ziplist(Ziplist::new(blob)?)
        } else {
            PackedList::Listpack(Listpack::new(blob)?)
        })
    }

    fn next(&mut self) -> Result<Option<Entry<'a>>, String> {
        match self {
            PackedList::Listpack(l) => l.next_entry(),
            PackedList::Ziplist(z) => z.next_entry(),
        }
    }
}

/// The zipmap of RDB type 9 (Redis ≤ 2.4): `<zmlen>` then `<len>field<len><free>value<free
/// bytes>` pairs up to 0xFF; a length byte of 254 is followed by a 4-byte little-endian length.
fn zipmap_pairs(buf: &[u8]) -> Result<Vec<RdbField>, String> {
    fn length(buf: &[u8], p: &mut usize) -> Result<Option<usize>, String> {
        let b = *buf.get(*p).ok_or("zipmap truncated")?;
        *p += 1;
        match b {
            0..=253 => Ok(Some(usize::from(b))),
            254 => {
                let s = buf.get(*p..*p + 4).ok_or("zipmap truncated")?;
                *p += 4;
                Ok(Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize))
            }
            255 => Ok(None),
        }
    }
    fn take<'a>(buf: &'a [u8], p: &mut usize, n: usize) -> Result<&'a [u8], String> {
        let s = p
            .checked_add(n)
            .and_then(|end| buf.get(*p..end))
            .ok_or("zipmap truncated")?;
        *p += n;
        Ok(s)
    }
    let mut p = 1; // zmlen: a count hint only
    let mut fields = Vec::new();
    while let Some(flen) = length(buf, &mut p)? {
        let field = take(buf, &mut p, flen)?.to_vec();
        let vlen = length(buf, &mut p)?.ok_or("zipmap field without a value")?;
        let free = usize::from(*buf.get(p).ok_or("zipmap truncated")?);
        p += 1;
        let value = take(buf, &mut p, vlen)?.to_vec();
        take(buf, &mut p, free)?;
        fields.push(RdbField {
            field,
            value,
            expire_ms: None,
        });
    }
    if p != buf.len() {
        return Err("zipmap has bytes after its end marker".into());
    }
    Ok(fields)
}

impl<'a> RdbReader<&'a [u8]> {
    /// A reader positioned at a bare value (type byte + encoding), for DUMP payloads.
    pub(crate) fn for_value(body: &'a [u8]) -> Self {
        RdbReader {
            input: Input {
                inner: body,
                buf: vec![0u8; body.len().clamp(1, BUF_BYTES)].into_boxed_slice(),
                pos: 0,
                end: 0,
                base: 0,
                crc: None,
                crc_pos: 0,
            },
            opts: LoadOptions::default(),
            version: RDB_VERSION,
            aux: Vec::new(),
            db: 0,
            stats: LoadStats::default(),
            done: false,
            failed: false,
            current_key: None,
        }
    }

    /// Decodes the one hash value of a DUMP payload.
    pub(crate) fn value(&mut self) -> Result<Vec<RdbField>, RdbError> {
        let type_id = self.input.u8("a value type")?;
        match t::name(type_id) {
            Some("hash") => self.hash_value(type_id),
            Some(type_name) => Err(RdbError::UnsupportedType {
                offset: 0,
                db: 0,
                key: String::new(),
                type_name,
                type_id,
            }),
            None => Err(RdbError::UnknownType {
                offset: 0,
                byte: type_id,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ziplist::tests::build as ziplist;
    use super::*;

    /// A version-12 file holding `body` between the header and EOF, checksum off.
    fn file(body: &[u8]) -> Vec<u8> {
        [b"REDIS0012".as_slice(), body, &[op::EOF], &[0; 8]].concat()
    }

    fn load(bytes: &[u8], opts: LoadOptions) -> Result<(Vec<RdbKey>, LoadStats), RdbError> {
        let mut r = RdbReader::new(bytes, opts)?;
        let mut keys = Vec::new();
        while let Some(k) = r.next_key()? {
            keys.push(k);
        }
        Ok((keys, r.stats().clone()))
    }

    fn fields(keys: &[RdbKey]) -> Vec<(&[u8], &[u8], Option<u64>)> {
        keys.iter()
            .flat_map(|k| k.fields.iter())
            .map(|f| (f.field.as_slice(), f.value.as_slice(), f.expire_ms))
            .collect()
    }

    fn string(s: &[u8]) -> Vec<u8> {
        assert!(s.len() < 64);
        [&[s.len() as u8], s].concat()
    }

    #[test]
    fn ziplist_hash_type_13() {
        let zl = ziplist(&[
            Entry::Str(b"f"),
            Entry::Int(-7),
            Entry::Int(12),
            Entry::Str(b"v"),
        ]);
        let mut body = vec![t::HASH_ZIPLIST, 1, b'k', 0x40, zl.len() as u8];
        body.extend_from_slice(&zl);
        let (keys, _) = load(&file(&body), LoadOptions::default()).unwrap();
        assert_eq!(
            fields(&keys),
            [(&b"f"[..], &b"-7"[..], None), (b"12", b"v", None)]
        );
        // An odd entry count is corrupt.
        let zl = ziplist(&[Entry::Str(b"f")]);
        let mut body = vec![t::HASH_ZIPLIST, 1, b'k', zl.len() as u8];
        body.extend_from_slice(&zl);
        assert!(load(&file(&body), LoadOptions::default()).is_err());
    }

    #[test]
    fn zipmap_hash_type_9() {
        // zmlen 2, "a"→"1" with 1 free byte, "bb"→"" , end.
        let zm = [2, 1, b'a', 1, 1, b'1', 0, 2, b'b', b'b', 0, 0, 0xFF];
        let mut body = vec![t::HASH_ZIPMAP, 1, b'k', zm.len() as u8];
        body.extend_from_slice(&zm);
        let (keys, _) = load(&file(&body), LoadOptions::default()).unwrap();
        assert_eq!(
            fields(&keys),
            [(&b"a"[..], &b"1"[..], None), (b"bb", b"", None)]
        );
        for cut in 1..zm.len() {
            let mut body = vec![t::HASH_ZIPMAP, 1, b'k', cut as u8];
            body.extend_from_slice(&zm[..cut]);
            assert!(load(&file(&body), LoadOptions::default()).is_err());
        }
    }

    #[test]
    fn pre_ga_types_22_and_23_hold_absolute_deadlines() {
        // 22: n, then (absolute ttl, field, value); 5000 as a 14-bit length.
        let mut body = vec![t::HASH_METADATA_PRE_GA, 1, b'k', 2];
        body.extend_from_slice(&[0x53, 0x88]);
        body.extend(string(b"f"));
        body.extend(string(b"v"));
        body.push(0);
        body.extend(string(b"g"));
        body.extend(string(b"w"));
        let (keys, _) = load(&file(&body), LoadOptions::default()).unwrap();
        assert_eq!(
            fields(&keys),
            [(&b"f"[..], &b"v"[..], Some(5000)), (b"g", b"w", None)]
        );
        // 23: a listpack of triplets with no minExpire before it.
        let lp = [
            14, 0, 0, 0, 3, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0x7F, 1, 0xFF,
        ];
        let mut lp = lp.to_vec();
        lp[0] = lp.len() as u8;
        let mut body = vec![t::HASH_LISTPACK_EX_PRE_GA, 1, b'k', lp.len() as u8];
        body.extend_from_slice(&lp);
        let (keys, _) = load(&file(&body), LoadOptions::default()).unwrap();
        assert_eq!(fields(&keys), [(&b"f"[..], &b"v"[..], Some(127))]);
    }

    #[test]
    fn duplicate_fields_are_corrupt() {
        let mut body = vec![t::HASH, 1, b'k', 2];
        for _ in 0..2 {
            body.extend(string(b"f"));
            body.extend(string(b"v"));
        }
        let e = load(&file(&body), LoadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("duplicate hash field \"f\""), "{e}");
        assert!(e.to_string().contains("in key \"k\""), "{e}");
    }

    #[test]
    fn empty_hashes_are_skipped() {
        let body = [t::HASH, 1, b'k', 0];
        let (keys, stats) = load(&file(&body), LoadOptions::default()).unwrap();
        assert!(keys.is_empty());
        assert_eq!(stats.empty_keys_skipped, 1);
    }

    #[test]
    fn metadata_opcodes_are_read_past() {
        let mut body = vec![op::AUX];
        body.extend(string(b"x"));
        body.extend(string(b"y"));
        body.extend_from_slice(&[op::SELECTDB, 2, op::RESIZEDB, 1, 0]);
        body.extend_from_slice(&[op::SLOT_INFO, 1, 1, 0]);
        body.extend_from_slice(&[op::IDLE, 5, op::FREQ, 9]);
        body.push(op::EXPIRETIME);
        body.extend_from_slice(&100u32.to_le_bytes());
        body.extend_from_slice(&[t::HASH, 1, b'k', 1]);
        body.extend(string(b"f"));
        body.extend(string(b"v"));
        let (keys, _) = load(&file(&body), LoadOptions::default()).unwrap();
        assert_eq!(keys[0].db, 2);
        assert_eq!(keys[0].expire_ms, Some(100_000));
    }

    #[test]
    fn module_aux_functions_and_other_types_need_skip_unsupported() {
        let mut module = vec![op::MODULE_AUX, 0x81, 0, 0, 0, 0, 0, 0, 0, 1, 2, 2];
        module.extend_from_slice(&[2, 7, 5]); // UINT 7, STRING "ab"
        module.extend(string(b"ab"));
        module.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // DOUBLE, EOF
        let mut function = vec![op::FUNCTION2];
        function.extend(string(b"#!lua name=x"));
        let mut zset2 = vec![t::ZSET_2, 1, b'z', 1];
        zset2.extend(string(b"m"));
        zset2.extend_from_slice(&1.5f64.to_le_bytes());
        let mut quicklist2 = vec![t::LIST_QUICKLIST_2, 1, b'l', 1, 2];
        quicklist2.extend(string(b"opaque"));
        let mut stream = vec![t::STREAM_LISTPACKS_3, 1, b's', 1];
        stream.extend(string(&[0; 16]));
        stream.extend(string(b"lp"));
        stream.extend_from_slice(&[1, 5, 0, 5, 0, 0, 0, 1]); // length, last, first, max-del, added
        stream.extend_from_slice(&[1]); // one group
        stream.extend(string(b"g"));
        stream.extend_from_slice(&[5, 0, 1, 1]); // last id, entries-read, one PEL entry
        stream.extend_from_slice(&[0; 24]);
        stream.extend_from_slice(&[1, 1]); // delivery count, one consumer
        stream.extend(string(b"c"));
        stream.extend_from_slice(&[0; 16]); // seen, active
        stream.extend_from_slice(&[1]);
        stream.extend_from_slice(&[0; 16]);
        for (record, what) in [
            (module, "module"),
            (function, "function"),
            (zset2, "zset"),
            (quicklist2, "list"),
            (stream, "stream"),
        ] {
            let mut body = record.clone();
            body.extend_from_slice(&[t::HASH, 1, b'k', 1]);
            body.extend(string(b"f"));
            body.extend(string(b"v"));
            let e = load(&file(&body), LoadOptions::default()).unwrap_err();
            assert!(e.to_string().contains(what), "{e}");
            let skip = LoadOptions {
                skip_unsupported: true,
                ..LoadOptions::default()
            };
            let (keys, stats) = load(&file(&body), skip).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(keys.len(), 1, "{what}");
            assert_eq!(stats.keys_skipped + stats.other_records_skipped, 1);
        }
    }

    #[test]
    fn bad_type_24_deadlines_are_corrupt() {
        // minExpire 2^48 - 1, ttl 2 → 2^48: past the limit.
        let mut body = vec![t::HASH_METADATA, 1, b'k'];
        body.extend_from_slice(&((1u64 << 48) - 1).to_le_bytes());
        body.extend_from_slice(&[1, 2]);
        body.extend(string(b"f"));
        body.extend(string(b"v"));
        let e = load(&file(&body), LoadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("invalid field expireAt"), "{e}");
    }
}
