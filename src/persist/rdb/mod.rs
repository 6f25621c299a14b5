//! The RDB format: what Redis writes with SAVE and sends to a replica, for hashes with
//! per-field TTLs (formats.md §1), and the DUMP/RESTORE payload built from the same value
//! encoding (§1.10).
//!
//! This module owns the bytes only. It speaks neutral data ([`RdbKey`], [`RdbField`]), never
//! keyspace types, so a snapshot is the caller iterating its own data into an [`RdbWriter`]
//! one key at a time, and a load is the caller pulling keys out of an [`RdbReader`].
//!
//! * Writing: version 12 (`REDIS0012`, read by Redis 7.4 to 8.4 and every later version). A
//!   hash without field TTLs is type 4 (`RDB_TYPE_HASH`), one with any field TTL type 24
//!   (`RDB_TYPE_HASH_METADATA`). Both are plain string streams, which every Redis ≥ 7.4 loads
//!   and re-encodes to its own liking, so hashd never has to write listpacks.
//! * Reading: versions 1–12 (13+ with [`LoadOptions::relaxed_version`]), every hash encoding
//!   Redis ever wrote (types 4, 9, 13, 16, 22–25), every opcode, and enough of the other types
//!   to skip them when asked to.
//! * Nothing here panics on input or allocates more than the input holds: every failure is
//!   an [`RdbError`] naming what was wrong and where.

mod crc64;
mod dump;
mod listpack;
mod lzf;
mod reader;
mod writer;
mod ziplist;

pub use crc64::{crc64, Crc64};
pub use dump::{dump_payload, parse_dump_payload, DumpError};
pub use reader::{LoadOptions, LoadStats, RdbReader};
pub use writer::{write_rdb, FieldRef, HashHeader, RdbWriter, WriteOptions};

use thiserror::Error;

/// The RDB version hashd writes, and the newest it reads without `relaxed_version`.
pub const RDB_VERSION: u32 = 12;
/// The largest field deadline Redis accepts (`EB_EXPIRE_TIME_MAX`, 2^48 − 1 ms).
pub const FIELD_EXPIRE_MAX_MS: u64 = (1 << 48) - 1;

/// One hash field as stored: `expire_ms` is an absolute unix time in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RdbField {
    pub field: Vec<u8>,
    pub value: Vec<u8>,
    pub expire_ms: Option<u64>,
}

/// One key of an RDB file: a hash, its database and its key-level TTL (absolute unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RdbKey {
    pub db: usize,
    pub key: Vec<u8>,
    pub expire_ms: Option<u64>,
    pub fields: Vec<RdbField>,
}

/// Why an RDB file could not be read. Every variant carries the byte offset (from the start
/// of the file) where the problem was found.
#[derive(Debug, Error)]
pub enum RdbError {
    #[error("I/O error at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("RDB truncated at byte {offset} while reading {what}")]
    Truncated { offset: u64, what: &'static str },
    #[error("not an RDB file: it starts with {found}")]
    BadMagic { found: String },
    #[error("can't handle RDB format version {version}")]
    UnsupportedVersion { version: u32 },
    #[error(
        "wrong RDB checksum at byte {offset}: the file says {stored:#018x}, its content is {computed:#018x}"
    )]
    Checksum {
        offset: u64,
        stored: u64,
        computed: u64,
    },
    #[error("unknown RDB opcode or value type {byte} at byte {offset}")]
    UnknownType { offset: u64, byte: u8 },
    /// A key whose value hashd cannot store (strings, lists, sets …), when not skipping them.
    #[error(
        "key {key} in db {db} is a {type_name} (RDB type {type_id}) at byte {offset}; hashd stores only hashes"
    )]
    UnsupportedType {
        offset: u64,
        db: usize,
        /// The key, printable: non-printable bytes escaped as `\xNN`, in double quotes.
        key: String,
        type_name: &'static str,
        type_id: u8,
    },
    /// Data that is not a key but that hashd cannot keep (module aux data, functions), when
    /// not skipping them.
    #[error("the RDB holds {what} at byte {offset}, which hashd cannot load")]
    Unsupported { offset: u64, what: &'static str },
    #[error("corrupt RDB at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
}

impl RdbError {
    /// The byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            RdbError::Io { offset, .. }
            | RdbError::Truncated { offset, .. }
            | RdbError::Checksum { offset, .. }
            | RdbError::UnknownType { offset, .. }
            | RdbError::UnsupportedType { offset, .. }
            | RdbError::Unsupported { offset, .. }
            | RdbError::Corrupt { offset, .. } => Some(*offset),
            RdbError::BadMagic { .. } | RdbError::UnsupportedVersion { .. } => Some(0),
        }
    }
}

/// Value types (`src/rdb.h`).
pub(crate) mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    pub const HASH_METADATA_PRE_GA: u8 = 22;
    pub const HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    pub const HASH_METADATA: u8 = 24;
    pub const HASH_LISTPACK_EX: u8 = 25;

    /// The name Redis's TYPE command gives a value of this RDB type.
    pub fn name(t: u8) -> Option<&'static str> {
        Some(match t {
            STRING => "string",
            LIST | LIST_ZIPLIST | LIST_QUICKLIST | LIST_QUICKLIST_2 => "list",
            SET | SET_INTSET | SET_LISTPACK => "set",
            ZSET | ZSET_2 | ZSET_ZIPLIST | ZSET_LISTPACK => "zset",
            HASH
            | HASH_ZIPMAP
            | HASH_ZIPLIST
            | HASH_LISTPACK
            | HASH_METADATA_PRE_GA
            | HASH_LISTPACK_EX_PRE_GA
            | HASH_METADATA
            | HASH_LISTPACK_EX => "hash",
            MODULE_PRE_GA | MODULE_2 => "module",
            STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => "stream",
            _ => return None,
        })
    }
}

/// Opcodes (`src/rdb.h`).
pub(crate) mod opcodes {
    pub const SLOT_INFO: u8 = 0xF4;
    pub const FUNCTION2: u8 = 0xF5;
    pub const FUNCTION_PRE_GA: u8 = 0xF6;
    pub const MODULE_AUX: u8 = 0xF7;
    pub const IDLE: u8 = 0xF8;
    pub const FREQ: u8 = 0xF9;
    pub const AUX: u8 = 0xFA;
    pub const RESIZEDB: u8 = 0xFB;
    pub const EXPIRETIME_MS: u8 = 0xFC;
    pub const EXPIRETIME: u8 = 0xFD;
    pub const SELECTDB: u8 = 0xFE;
    pub const EOF: u8 = 0xFF;
}

/// String encodings after a `11xxxxxx` length byte.
pub(crate) mod enc {
    pub const INT8: u8 = 0;
    pub const INT16: u8 = 1;
    pub const INT32: u8 = 2;
    pub const LZF: u8 = 3;
}

/// `bytes` as a double-quoted printable string (`\"`, `\\`, `\n`, `\xNN`), for error texts.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7E => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_is_printable() {
        assert_eq!(escape_bytes(b"a\"b\\\n\xff"), "\"a\\\"b\\\\\\n\\xff\"");
    }
}
