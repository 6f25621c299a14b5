//! The multi-part AOF format (formats.md §2): the manifest, the command stream of base and
//! incr files, and the command-form base that `aof-use-rdb-preamble no` writes.
//!
//! Like [`super::rdb`], this module owns bytes only: no keyspace, no files, no clock. The
//! caller (the server's AOF layer) opens files, decides what a truncation means for it
//! (`aof-load-truncated`), replays commands and fsyncs.
//!
//! * [`manifest`]: `appendonly.aof.manifest` parsed exactly as Redis's
//!   `aofLoadManifestFromFile` accepts it (same error texts) and written byte for byte as
//!   `getAofManifestAsString`; the file names Redis derives from `appendfilename`.
//! * [`reader`]: a streaming reader of the command form (RESP arrays of bulk strings,
//!   `#TS:` annotations) that tells a clean end from a truncated tail or an unfinished
//!   `MULTI` (with the offset to truncate at) and from garbage (with its offset);
//!   [`open_base`] tells an RDB base (or preamble) from a command-form one.
//! * [`writer`]: RESP encoding of commands for incr files, and Redis 7.4's
//!   `rewriteAppendOnlyFileRio` form of a hash (`SELECT`, `HMSET`, `HPEXPIREAT`, `PEXPIREAT`).
//!
//! Nothing here panics on input or allocates more than the input holds.

pub mod manifest;
pub mod reader;
pub mod writer;

pub use manifest::{
    base_file_name, incr_file_name, manifest_file_name, temp_incr_file_name,
    temp_manifest_file_name, temp_rewrite_file_name, FileKind, Manifest, ManifestEntry,
    ManifestError, ManifestErrorKind,
};
pub use reader::{
    open_base, rdb_tail, AofEnd, AofError, AofItem, AofReader, Base, Peeked, TruncateReason,
};
pub use writer::{
    encode_command, encode_hash, write_array_header, write_bulk, write_bulk_i64, write_bulk_u64,
    write_timestamp_annotation, CommandBaseWriter, AOF_REWRITE_ITEMS_PER_CMD,
};
