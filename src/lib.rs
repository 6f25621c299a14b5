//! hashd: a Redis-protocol server for hashes with per-field expiration.
//!
//! ```text
//!  TCP ──► server (accept, maxclients) ──► conn (one task per client)
//!                                           │ read into a buffer
//!                                           │ protocol::request: parse every complete frame
//!                                           ▼
//!                                      cmd::dispatch  (table lookup, arity, auth, MULTI)
//!                                           │ lock the command's shards, in order
//!                                           ▼
//!                                      cmd::<family> handler (synchronous)
//!                                           │ DbView / HashMut
//!                                           ▼
//!                                      keyspace: dbs → shards → HashValue
//!                                           ▲ expiry indexes
//!                           sweeper ────────┘ (reclaims expired keys/fields under a CPU budget)
//!
//!  replies: handler ──► protocol::reply (RESP2/RESP3) ──► one output buffer ──► one write
//! ```
//!
//! The module list below is the architecture; `docs/ARCHITECTURE.md` walks through it.

pub mod acl;
pub mod alloc;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod cmd;
pub mod cmdstats;
pub mod config;
pub mod conn;
pub mod context;
pub mod error;
pub mod glob;
pub mod keyspace;
pub mod latency;
pub mod listen;
pub mod longdouble;
pub mod maxmemory;
pub mod memory;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod pause;
pub mod persist;
pub mod protocol;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod shutdown;
pub mod sweeper;
pub mod tls;
pub mod tracking;

/// The system allocator, with the bytes held counted (INFO `used_memory`).
#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;
