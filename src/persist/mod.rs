//! Persistence formats: byte-exact codecs for what Redis writes to disk and over the wire.
//!
//! Each submodule is pure data in, data out: it knows the file format and nothing of the
//! keyspace, so it can be tested against files real Redis wrote, and the code that snapshots
//! or loads the keyspace (which owns locking and timing) stays a thin caller.
//!
//! * [`aof`]: the multi-part AOF — manifest, command stream (reading with truncation
//!   reports, writing), the command-form base of `aof-use-rdb-preamble no`.
//! * [`rdb`]: RDB files (version 12, what Redis 7.4 – 8.4 read and write) and DUMP/RESTORE
//!   payloads, for hashes with per-field TTLs.
//! * [`appendonly`]: the append-only file's live side: buffering, the writer thread and its
//!   fsync policies, waiting for `appendfsync always`.
//! * [`propagate`]: effect batches as the commands that replay them (the append-only file
//!   and, next, the replication stream).
//! * [`snapshot`]: the server side — SAVE, BGSAVE (a forked child), save points, the final
//!   save at shutdown and loading at start-up.

pub mod aof;
pub mod appendonly;
pub mod propagate;
pub mod rdb;
pub mod snapshot;
