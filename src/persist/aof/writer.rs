//! Writing the command form: RESP arrays of bulk strings for incr files, and the base that a
//! rewrite with `aof-use-rdb-preamble no` produces.
//!
//! The base is Redis 7.4's `rewriteAppendOnlyFileRio` for hashes, byte for byte:
//!
//! * `SELECT <db>` before the first key of each database (`*2\r\n$6\r\nSELECT\r\n…`);
//! * a hash with no field TTL: `HMSET key f v …` with at most 64 pairs per command
//!   ([`AOF_REWRITE_ITEMS_PER_CMD`]);
//! * a hash with any field TTL: for every field `HMSET key f v`, followed, when that field
//!   has a TTL, by `HPEXPIREAT key <ms> FIELDS 1 f` (`rewriteHashObject`);
//! * then, if the key has a TTL, `PEXPIREAT key <ms>`.

use std::io::{self, Write};

use crate::persist::rdb::FieldRef;

/// Redis's `AOF_REWRITE_ITEMS_PER_CMD`.
pub const AOF_REWRITE_ITEMS_PER_CMD: usize = 64;

/// `*<n>\r\n`.
pub fn write_array_header(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n<bytes>\r\n`.
pub fn write_bulk(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(s.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// A bulk string holding `v` in decimal (`rioWriteBulkLongLong`), formatted on the stack.
pub fn write_bulk_i64(out: &mut Vec<u8>, v: i64) {
    write_bulk(out, itoa::Buffer::new().format(v).as_bytes());
}

/// A bulk string holding `v` in decimal, formatted on the stack.
pub fn write_bulk_u64(out: &mut Vec<u8>, v: u64) {
    write_bulk(out, itoa::Buffer::new().format(v).as_bytes());
}

/// `argv` as one RESP array of bulk strings, appended to `out`.
pub fn encode_command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    let len: usize = argv.iter().map(|a| a.len() + 24).sum();
    out.reserve(len + 16);
    write_array_header(out, argv.len());
    for a in argv {
        write_bulk(out, a);
    }
}

/// `#TS:<unix-seconds>\r\n`, the annotation `aof-timestamp-enabled yes` writes.
pub fn write_timestamp_annotation(out: &mut Vec<u8>, unix_secs: u64) {
    out.extend_from_slice(b"#TS:");
    out.extend_from_slice(itoa::Buffer::new().format(unix_secs).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes a command-form base (or any command stream of whole keys) to `out`, one key at a
/// time, through a buffer flushed past 64 KiB.
pub struct CommandBaseWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    db: Option<usize>,
    written: u64,
}

const FLUSH_AT: usize = 64 * 1024;

impl<W: Write> CommandBaseWriter<W> {
    pub fn new(out: W) -> Self {
        CommandBaseWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            db: None,
            written: 0,
        }
    }

    /// `#TS:` at the start, as a rewrite does with `aof-timestamp-enabled yes`.
    pub fn timestamp(&mut self, unix_secs: u64) -> io::Result<()> {
        write_timestamp_annotation(&mut self.buf, unix_secs);
        self.maybe_flush()
    }

    /// One hash of database `db` (keys of a database must come together, as Redis writes a
    /// `SELECT` per database). `fields` in the order to write them.
    pub fn hash(
        &mut self,
        db: usize,
        key: &[u8],
        key_expire_ms: Option<u64>,
        fields: &[FieldRef<'_>],
    ) -> io::Result<()> {
        if self.db != Some(db) {
            self.buf.extend_from_slice(b"*2\r\n$6\r\nSELECT\r\n");
            write_bulk_u64(&mut self.buf, db as u64);
            self.db = Some(db);
        }
        encode_hash(&mut self.buf, key, key_expire_ms, fields);
        self.maybe_flush()
    }

    /// Bytes handed to the writer so far (flushed or buffered).
    pub fn bytes(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes what is buffered, flushes and returns the writer (the caller fsyncs).
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_buf()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The commands rebuilding one hash (no `SELECT`), as `rewriteHashObject` and the key TTL
/// step of `rewriteAppendOnlyFileRio` write them. An empty field list writes only the
/// `PEXPIREAT` (Redis never holds an empty hash).
pub fn encode_hash(
    out: &mut Vec<u8>,
    key: &[u8],
    key_expire_ms: Option<u64>,
    fields: &[FieldRef<'_>],
) {
    if fields.iter().any(|f| f.expire_ms.is_some()) {
        for f in fields {
            out.extend_from_slice(b"*4\r\n$5\r\nHMSET\r\n");
            write_bulk(out, key);
            write_bulk(out, f.field);
            write_bulk(out, f.value);
            if let Some(ms) = f.expire_ms {
                out.extend_from_slice(b"*6\r\n$10\r\nHPEXPIREAT\r\n");
                write_bulk(out, key);
                write_bulk_u64(out, ms);
                write_bulk(out, b"FIELDS");
                write_bulk(out, b"1");
                write_bulk(out, f.field);
            }
        }
    } else {
        for batch in fields.chunks(AOF_REWRITE_ITEMS_PER_CMD) {
            write_array_header(out, 2 + batch.len() * 2);
            write_bulk(out, b"HMSET");
            write_bulk(out, key);
            for f in batch {
                write_bulk(out, f.field);
                write_bulk(out, f.value);
            }
        }
    }
    if let Some(ms) = key_expire_ms {
        out.extend_from_slice(b"*3\r\n$9\r\nPEXPIREAT\r\n");
        write_bulk(out, key);
        write_bulk_u64(out, ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f<'a>(field: &'a [u8], value: &'a [u8], expire_ms: Option<u64>) -> FieldRef<'a> {
        FieldRef {
            field,
            value,
            expire_ms,
        }
    }

    #[test]
    fn command_encoding() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"HSET", b"h", b"", b"\r\n"]);
        assert_eq!(
            out,
            b"*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$0\r\n\r\n$2\r\n\r\n\r\n"
        );
        out.clear();
        write_bulk_i64(&mut out, -12);
        write_timestamp_annotation(&mut out, 7);
        assert_eq!(out, b"$3\r\n-12\r\n#TS:7\r\n");
    }

    #[test]
    fn hash_forms() {
        let mut w = CommandBaseWriter::new(Vec::new());
        w.hash(
            0,
            b"h",
            Some(99),
            &[f(b"a", b"1", None), f(b"b", b"2", None)],
        )
        .unwrap();
        w.hash(
            0,
            b"t",
            None,
            &[f(b"a", b"1", Some(5)), f(b"b", b"2", None)],
        )
        .unwrap();
        w.hash(3, b"x", None, &[f(b"y", b"z", None)]).unwrap();
        let out = w.finish().unwrap();
        let expected = [
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n",
            "*6\r\n$5\r\nHMSET\r\n$1\r\nh\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
            "*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nh\r\n$2\r\n99\r\n",
            "*4\r\n$5\r\nHMSET\r\n$1\r\nt\r\n$1\r\na\r\n$1\r\n1\r\n",
            "*6\r\n$10\r\nHPEXPIREAT\r\n$1\r\nt\r\n$1\r\n5\r\n$6\r\nFIELDS\r\n$1\r\n1\r\n$1\r\na\r\n",
            "*4\r\n$5\r\nHMSET\r\n$1\r\nt\r\n$1\r\nb\r\n$1\r\n2\r\n",
            "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n",
            "*4\r\n$5\r\nHMSET\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n",
        ]
        .concat();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn batches_of_64_pairs() {
        let names: Vec<Vec<u8>> = (0..130).map(|i| format!("f{i}").into_bytes()).collect();
        let fields: Vec<FieldRef> = names.iter().map(|n| f(n, b"v", None)).collect();
        let mut out = Vec::new();
        encode_hash(&mut out, b"k", None, &fields);
        let mut r = super::super::AofReader::new(&out[..]);
        let mut sizes = Vec::new();
        while let Some(argv) = r.next_owned().unwrap() {
            assert_eq!(argv[0], b"HMSET");
            sizes.push(argv.len());
        }
        assert_eq!(sizes, vec![2 + 128, 2 + 128, 2 + 4]);
    }
}
