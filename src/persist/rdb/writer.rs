//! Streaming RDB writing: [`RdbWriter`] takes one hash at a time, so a snapshot never holds a
//! second copy of the dataset (nor of a 1M-field hash): the caller iterates its own data.
//!
//! What it writes, in Redis's order (`rdbSaveRio`):
//! * `REDIS0012`;
//! * AUX `redis-ver`, `redis-bits` ("64"), `ctime` (unix s), `used-mem`, then the caller's
//!   extra fields (Redis puts `repl-stream-db`/`repl-id`/`repl-offset` here when saving for a
//!   replica), `aof-base` ("0", or "1" for an AOF preamble), and `hashd-ver` (readers ignore
//!   unknown AUX fields, and it tells a human which program wrote the file);
//! * per database: SELECTDB, RESIZEDB, then each key: `0xFC` + deadline when it has a key TTL,
//!   the type (4 without field TTLs, 24 with), the key, the value;
//! * EOF and the CRC64 (zero when checksums are off, which loaders accept unchecked).
//!
//! Strings are encoded as `rdbSaveRawString` does: as an INT8/16/32 when the bytes are a
//! canonical integer that fits, else LZF when compression is on, the string is longer than
//! 20 bytes and LZF saves at least 4 bytes, else plain.

use std::io::{self, Write};

use super::crc64::Crc64;
use super::lzf::LzfCompressor;
use super::{enc, opcodes as op, types as t, RdbField, RdbKey, FIELD_EXPIRE_MAX_MS, RDB_VERSION};

const BUF_BYTES: usize = 64 * 1024;
/// Redis tries LZF only on strings longer than this.
const LZF_MIN_LEN: usize = 20;
/// Redis keeps LZF only if it saves at least this many bytes.
const LZF_MIN_SAVING: usize = 4;

/// What goes into the header, and how values are encoded.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// `rdbcompression`: LZF for long strings.
    pub compression: bool,
    /// `rdbchecksum`: a real CRC64 trailer (else eight zero bytes).
    pub checksum: bool,
    /// The `redis-ver` AUX field. Default "7.4.1": the oldest Redis that reads RDB 12; a
    /// server should pass the version it reports in INFO.
    pub redis_ver: String,
    /// The `ctime` AUX field, unix seconds.
    pub ctime_s: u64,
    /// The `used-mem` AUX field, bytes.
    pub used_mem: u64,
    /// The `aof-base` AUX field: true when this RDB is the preamble of an AOF.
    pub aof_base: bool,
    /// More AUX fields, written after `used-mem` (e.g. the replication ones).
    pub extra_aux: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: true,
            checksum: true,
            redis_ver: "7.4.1".into(),
            ctime_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            used_mem: 0,
            aof_base: false,
            extra_aux: Vec::new(),
        }
    }
}

/// One field as the writer takes it (borrowed from the caller's storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRef<'a> {
    pub field: &'a [u8],
    pub value: &'a [u8],
    pub expire_ms: Option<u64>,
}

impl<'a> From<&'a RdbField> for FieldRef<'a> {
    fn from(f: &'a RdbField) -> Self {
        FieldRef {
            field: &f.field,
            value: &f.value,
            expire_ms: f.expire_ms,
        }
    }
}

/// What the format needs to know before a hash's fields: their number and, for a hash with
/// field TTLs, a base no later than its earliest field deadline (any lower bound works: the
/// file stores each TTL relative to it, spec §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashHeader {
    pub len: usize,
    /// `Some` makes it a type-24 hash; `None` a type-4 hash, where no field may have a TTL.
    pub min_expire_ms: Option<u64>,
}

impl HashHeader {
    /// The header of a field list held in memory (one pass over it).
    pub fn of<'a>(fields: impl IntoIterator<Item = FieldRef<'a>>) -> Self {
        let mut len = 0;
        let mut min = None::<u64>;
        for f in fields {
            len += 1;
            if let Some(t) = f.expire_ms {
                min = Some(min.map_or(t, |m| m.min(t)));
            }
        }
        HashHeader {
            len,
            min_expire_ms: min,
        }
    }
}

/// Byte sink with the RDB primitive encodings, a checksum and a byte count. Shared by the
/// file writer and DUMP payloads.
pub(crate) struct Encoder<W> {
    out: W,
    buf: Vec<u8>,
    crc: Option<Crc64>,
    flushed: u64,
    compression: bool,
    /// Made on the first string long enough to try; DUMPs of short values never pay for it.
    lzf: Option<LzfCompressor>,
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(out: W, compression: bool, checksum: bool) -> Self {
        Encoder {
            out,
            buf: Vec::with_capacity(BUF_BYTES),
            crc: checksum.then(Crc64::new),
            flushed: 0,
            compression,
            lzf: None,
        }
    }

    pub(crate) fn written(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if let Some(crc) = &mut self.crc {
            crc.update(&self.buf);
        }
        self.out.write_all(&self.buf)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        if self.buf.len() + b.len() > BUF_BYTES {
            self.flush_buf()?;
            if b.len() > BUF_BYTES {
                // A big value goes straight out rather than through the buffer.
                if let Some(crc) = &mut self.crc {
                    crc.update(b);
                }
                self.out.write_all(b)?;
                self.flushed += b.len() as u64;
                return Ok(());
            }
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }

    pub(crate) fn u8(&mut self, b: u8) -> io::Result<()> {
        self.bytes(&[b])
    }

    /// `rdbSaveLen`: 6-bit, 14-bit big-endian, 32-bit or 64-bit big-endian.
    pub(crate) fn len(&mut self, n: u64) -> io::Result<()> {
        if n < 1 << 6 {
            self.u8(n as u8)
        } else if n < 1 << 14 {
            self.bytes(&[0x40 | (n >> 8) as u8, n as u8])
        } else if let Ok(n) = u32::try_from(n) {
            let b = n.to_be_bytes();
            self.bytes(&[0x80, b[0], b[1], b[2], b[3]])
        } else {
            self.u8(0x81)?;
            self.bytes(&n.to_be_bytes())
        }
    }

    /// `rdbSaveMillisecondTime`: 8 bytes little-endian.
    pub(crate) fn ms(&mut self, ms: u64) -> io::Result<()> {
        let ms = i64::try_from(ms).map_err(|_| invalid("a deadline beyond i64"))?;
        self.bytes(&ms.to_le_bytes())
    }

    pub(crate) fn string(&mut self, s: &[u8]) -> io::Result<()> {
        if let Some(v) = canonical_int(s) {
            if let Ok(v) = i8::try_from(v) {
                return self.bytes(&[0xC0 | enc::INT8, v as u8]);
            }
            if let Ok(v) = i16::try_from(v) {
                let b = v.to_le_bytes();
                return self.bytes(&[0xC0 | enc::INT16, b[0], b[1]]);
            }
            if let Ok(v) = i32::try_from(v) {
                let b = v.to_le_bytes();
                return self.bytes(&[0xC0 | enc::INT32, b[0], b[1], b[2], b[3]]);
            }
        }
        if self.compression && s.len() > LZF_MIN_LEN {
            let lzf = self.lzf.get_or_insert_with(LzfCompressor::new);
            if let Some(packed) = lzf.compress(s, s.len() - LZF_MIN_SAVING) {
                self.u8(0xC0 | enc::LZF)?;
                self.len(packed.len() as u64)?;
                self.len(s.len() as u64)?;
                return self.bytes(&packed);
            }
        }
        self.len(s.len() as u64)?;
        self.bytes(s)
    }

    /// A hash as a file holds it (type byte, key, value), or with `key` `None` as a DUMP
    /// payload's body (type byte, value).
    pub(crate) fn hash<'a>(
        &mut self,
        key: Option<&[u8]>,
        header: HashHeader,
        fields: impl IntoIterator<Item = FieldRef<'a>>,
    ) -> io::Result<()> {
        if header.len == 0 {
            return Err(invalid("an empty hash (it would not exist)"));
        }
        if header
            .min_expire_ms
            .is_some_and(|min| min > FIELD_EXPIRE_MAX_MS)
        {
            return Err(invalid("a field deadline beyond 2^48 - 1 ms"));
        }
        self.u8(match header.min_expire_ms {
            None => t::HASH,
            Some(_) => t::HASH_METADATA,
        })?;
        if let Some(key) = key {
            self.string(key)?;
        }
        if let Some(min) = header.min_expire_ms {
            self.ms(min)?;
        }
        self.len(header.len as u64)?;
        let mut count = 0usize;
        for f in fields {
            count += 1;
            if count > header.len {
                return Err(invalid("more fields than the hash header said"));
            }
            match (header.min_expire_ms, f.expire_ms) {
                (None, None) => {}
                (None, Some(_)) => {
                    return Err(invalid("a field TTL in a hash written without minExpire"))
                }
                // ttl = expireAt - minExpire + 1; 0 means "no TTL".
                (Some(_), None) => self.u8(0)?,
                (Some(min), Some(at)) => {
                    if at < min || at > FIELD_EXPIRE_MAX_MS {
                        return Err(invalid(
                            "a field deadline below minExpire or beyond 2^48 - 1 ms",
                        ));
                    }
                    self.len(at - min + 1)?;
                }
            }
            self.string(f.field)?;
            self.string(f.value)?;
        }
        if count != header.len {
            return Err(invalid("fewer fields than the hash header said"));
        }
        Ok(())
    }

    /// Flushes and returns the output, the byte count and the checksum of everything written.
    pub(crate) fn finish(mut self) -> io::Result<(W, u64, Option<u64>)> {
        self.flush_buf()?;
        let crc = self.crc.take().map(Crc64::finish);
        Ok((self.out, self.flushed, crc))
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("RDB writer given {what}"),
    )
}

/// `string2ll` + round trip: the bytes are exactly how Redis would print that integer (no sign
/// on positives, no leading zeros, at most 11 bytes as `rdbSaveRawString` checks first).
fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 11 {
        return None;
    }
    let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (itoa::Buffer::new().format(v).as_bytes() == s).then_some(v)
}

/// Writes an RDB file one database and one hash at a time.
///
/// An error leaves a partial file; the writer then refuses further calls.
pub struct RdbWriter<W: Write> {
    enc: Encoder<W>,
    db: Option<usize>,
    failed: bool,
}

impl<W: Write> RdbWriter<W> {
    /// Writes the header and AUX fields.
    pub fn new(out: W, opts: &WriteOptions) -> io::Result<Self> {
        let mut w = RdbWriter {
            enc: Encoder::new(out, opts.compression, opts.checksum),
            db: None,
            failed: false,
        };
        w.enc.bytes(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
        let mut num = itoa::Buffer::new();
        w.aux(b"redis-ver", opts.redis_ver.as_bytes())?;
        w.aux(b"redis-bits", b"64")?;
        w.aux(b"ctime", num.format(opts.ctime_s).as_bytes())?;
        w.aux(b"used-mem", num.format(opts.used_mem).as_bytes())?;
        for (k, v) in &opts.extra_aux {
            w.aux(k, v)?;
        }
        w.aux(b"aof-base", if opts.aof_base { b"1" } else { b"0" })?;
        w.aux(b"hashd-ver", env!("CARGO_PKG_VERSION").as_bytes())?;
        Ok(w)
    }

    fn aux(&mut self, k: &[u8], v: &[u8]) -> io::Result<()> {
        self.enc.u8(op::AUX)?;
        self.enc.string(k)?;
        self.enc.string(v)
    }

    fn guard(&mut self, r: io::Result<()>) -> io::Result<()> {
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn check(&self) -> io::Result<()> {
        if self.failed {
            Err(io::Error::other("RDB writer used after an error"))
        } else {
            Ok(())
        }
    }

    /// Starts database `db`; `keys` and `expires` are RESIZEDB's sizing hints (the number of
    /// keys, and of keys with a key TTL).
    pub fn select_db(&mut self, db: usize, keys: u64, expires: u64) -> io::Result<()> {
        self.check()?;
        let r = (|| {
            self.enc.u8(op::SELECTDB)?;
            self.enc.len(db as u64)?;
            self.enc.u8(op::RESIZEDB)?;
            self.enc.len(keys)?;
            self.enc.len(expires)
        })();
        self.db = Some(db);
        self.guard(r)
    }

    /// Writes one hash into the current database. `fields` must yield exactly `header.len`
    /// fields, and field TTLs only if `header.min_expire_ms` is set and not after any of them.
    pub fn write_hash<'a>(
        &mut self,
        key: &[u8],
        expire_ms: Option<u64>,
        header: HashHeader,
        fields: impl IntoIterator<Item = FieldRef<'a>>,
    ) -> io::Result<()> {
        self.check()?;
        if self.db.is_none() {
            self.failed = true;
            return Err(invalid("a key before any select_db"));
        }
        let r = (|| {
            if let Some(at) = expire_ms {
                self.enc.u8(op::EXPIRETIME_MS)?;
                self.enc.ms(at)?;
            }
            self.enc.hash(Some(key), header, fields)
        })();
        self.guard(r)
    }

    /// Writes a hash held as an [`RdbKey`]; its `db` must be the current database.
    pub fn write_key(&mut self, key: &RdbKey) -> io::Result<()> {
        if self.db != Some(key.db) {
            self.check()?;
            self.failed = true;
            return Err(invalid("a key of another db than the current one"));
        }
        let header = HashHeader::of(key.fields.iter().map(FieldRef::from));
        self.write_hash(
            &key.key,
            key.expire_ms,
            header,
            key.fields.iter().map(FieldRef::from),
        )
    }

    /// Bytes written so far (including buffered ones).
    pub fn bytes_written(&self) -> u64 {
        self.enc.written()
    }

    /// Writes EOF and the checksum, flushes, and returns the output and the file's size.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.check()?;
        self.enc.u8(op::EOF)?;
        let (mut out, n, crc) = self.enc.finish()?;
        out.write_all(&crc.unwrap_or(0).to_le_bytes())?;
        out.flush()?;
        Ok((out, n + 8))
    }
}

/// Writes a whole dataset held in memory, databases in ascending order: for tests and small
/// tools (a server streams through [`RdbWriter`] instead).
pub fn write_rdb<W: Write>(out: W, opts: &WriteOptions, keys: &[RdbKey]) -> io::Result<(W, u64)> {
    let mut w = RdbWriter::new(out, opts)?;
    let mut dbs: Vec<usize> = keys.iter().map(|k| k.db).collect();
    dbs.sort_unstable();
    dbs.dedup();
    for db in dbs {
        let in_db = || keys.iter().filter(move |k| k.db == db);
        let expires = in_db().filter(|k| k.expire_ms.is_some()).count();
        w.select_db(db, in_db().count() as u64, expires as u64)?;
        for k in in_db() {
            w.write_key(k)?;
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: impl FnOnce(&mut Encoder<Vec<u8>>) -> io::Result<()>) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new(), true, false);
        f(&mut e).unwrap();
        e.finish().unwrap().0
    }

    #[test]
    fn lengths_use_redis_byte_orders() {
        assert_eq!(encoded(|e| e.len(63)), [0x3F]);
        assert_eq!(encoded(|e| e.len(64)), [0x40, 0x40]);
        assert_eq!(encoded(|e| e.len(16383)), [0x7F, 0xFF]);
        assert_eq!(encoded(|e| e.len(16384)), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(encoded(|e| e.len(1 << 32)), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(
            encoded(|e| e.ms(4102444800000)),
            [0x00, 0xd8, 0xc3, 0x2c, 0xbb, 0x03, 0x00, 0x00]
        );
    }

    #[test]
    fn strings_pick_the_encoding_redis_would() {
        assert_eq!(encoded(|e| e.string(b"2")), [0xC0, 2]);
        assert_eq!(encoded(|e| e.string(b"-128")), [0xC0, 0x80]);
        assert_eq!(encoded(|e| e.string(b"12345")), [0xC1, 0x39, 0x30]);
        assert_eq!(encoded(|e| e.string(b"-2147483648")), [0xC2, 0, 0, 0, 0x80]);
        // Too big for INT32, or not canonical: plain.
        assert_eq!(encoded(|e| e.string(b"2147483648"))[0], 10);
        for s in [&b"007"[..], b"+5", b"-0", b" 1", b""] {
            assert_eq!(encoded(|e| e.string(s))[0] as usize, s.len(), "{s:?}");
        }
        // 20 bytes are never compressed, 21 repetitive ones are.
        assert_eq!(encoded(|e| e.string(&[b'a'; 20]))[0], 20);
        assert_eq!(encoded(|e| e.string(&[b'a'; 21]))[0], 0xC3);
        let mut e = Encoder::new(Vec::new(), false, false);
        e.string(&[b'a'; 21]).unwrap();
        assert_eq!(e.finish().unwrap().0[0], 21);
    }

    #[test]
    fn type_24_matches_a_real_redis_dump() {
        // spec §1.7: DUMP h3 (x @4102444800000, y no TTL) from a real Redis.
        let fields = [
            FieldRef {
                field: b"y",
                value: b"2",
                expire_ms: None,
            },
            FieldRef {
                field: b"x",
                value: b"1",
                expire_ms: Some(4102444800000),
            },
        ];
        let bytes = encoded(|e| e.hash(None, HashHeader::of(fields), fields));
        let expected = [
            0x18, 0x00, 0xd8, 0xc3, 0x2c, 0xbb, 0x03, 0x00, 0x00, 0x02, 0x00, 0x01, 0x79, 0xc0,
            0x02, 0x01, 0x01, 0x78, 0xc0, 0x01,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn header_starts_like_redis() {
        let opts = WriteOptions {
            ctime_s: 1_700_000_000,
            ..WriteOptions::default()
        };
        let (bytes, _) = RdbWriter::new(Vec::new(), &opts).unwrap().finish().unwrap();
        assert!(bytes.starts_with(b"REDIS0012\xfa\x09redis-ver\x057.4.1\xfa\x0aredis-bits\xc0\x40"));
        assert_eq!(bytes[bytes.len() - 9], op::EOF);
        let crc = super::super::crc64(&bytes[..bytes.len() - 8]);
        assert_eq!(bytes[bytes.len() - 8..], crc.to_le_bytes());
    }
}
