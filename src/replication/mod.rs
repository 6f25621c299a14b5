//! Replication, as Redis does it: a master streams every change to its replicas, a replica
//! follows one master. Both sides speak Redis's protocol (`../shared/spec/formats.md` §3),
//! so a Redis replica can follow hashd and hashd can follow a Redis master.
//!
//! * [`Replication`] is the shared state: the role, the replication id and offset (and the
//!   previous id, psync2), the backlog, the attached replicas.
//! * On a master the stream is built from the effect record: [`Replication`] is one of the
//!   keyspace's effect consumers, and turns each batch into the commands that reproduce it
//!   (`persist::propagate`, the same as the append-only file), so a replica never expires
//!   anything itself — every reclaimed field arrives as an `HDEL`.
//! * [`master`] serves one replica: `PSYNC` / `SYNC`, the full sync (a forked child writes
//!   the snapshot to the socket's side of a pipe, or to a file), then the stream.
//! * [`replica`] is the link to our master: the handshake, loading its snapshot, applying
//!   its stream, acknowledging offsets, reconnecting with `PSYNC`.
//!
//! Lock order: a batch is published under its shard locks, and publishing takes the state
//! lock; a full sync takes every shard, then the state lock. Nothing takes them the other
//! way round.

pub mod backlog;
pub mod master;
pub mod replica;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::keyspace::{Batch, EffectSink};
use crate::persist::aof::encode_command;
use crate::persist::propagate::Propagator;
use backlog::Backlog;

/// Redis's defaults.
pub const DEFAULT_BACKLOG_SIZE: u64 = 1024 * 1024;
pub const DEFAULT_PING_PERIOD_S: u64 = 10;
pub const DEFAULT_TIMEOUT_S: u64 = 60;
pub const DEFAULT_DISKLESS_SYNC_DELAY_S: u64 = 5;
pub const DEFAULT_MIN_REPLICAS_MAX_LAG_S: u64 = 10;
pub const DEFAULT_REPLICA_PRIORITY: u64 = 100;
/// `client-output-buffer-limit replica 256mb 64mb 60`.
pub const DEFAULT_OBUF_HARD: u64 = 256 * 1024 * 1024;
pub const DEFAULT_OBUF_SOFT: u64 = 64 * 1024 * 1024;
pub const DEFAULT_OBUF_SOFT_S: u64 = 60;

/// The replication settings CONFIG SET may change.
#[derive(Debug)]
pub struct ReplSettings {
    pub backlog_size: AtomicU64,
    pub ping_period_s: AtomicU64,
    pub timeout_s: AtomicU64,
    pub diskless_sync: AtomicBool,
    pub diskless_sync_delay_s: AtomicU64,
    pub min_replicas_to_write: AtomicU64,
    pub min_replicas_max_lag_s: AtomicU64,
    pub read_only: AtomicBool,
    pub serve_stale_data: AtomicBool,
    pub priority: AtomicU64,
    pub obuf_hard: AtomicU64,
    pub obuf_soft: AtomicU64,
    pub obuf_soft_s: AtomicU64,
    pub masterauth: parking_lot::RwLock<Option<String>>,
    pub masteruser: parking_lot::RwLock<Option<String>>,
}

impl ReplSettings {
    pub fn from_config(c: &crate::config::Config) -> Self {
        // Validated at start-up; a bad value here could only come from a test.
        let obuf = c.replica_output_buffer_limit().unwrap_or((
            DEFAULT_OBUF_HARD,
            DEFAULT_OBUF_SOFT,
            DEFAULT_OBUF_SOFT_S,
        ));
        ReplSettings {
            backlog_size: AtomicU64::new(c.repl_backlog_size),
            ping_period_s: AtomicU64::new(c.repl_ping_replica_period),
            timeout_s: AtomicU64::new(c.repl_timeout),
            diskless_sync: AtomicBool::new(c.repl_diskless_sync),
            diskless_sync_delay_s: AtomicU64::new(c.repl_diskless_sync_delay),
            min_replicas_to_write: AtomicU64::new(c.min_replicas_to_write),
            min_replicas_max_lag_s: AtomicU64::new(c.min_replicas_max_lag),
            read_only: AtomicBool::new(c.replica_read_only),
            serve_stale_data: AtomicBool::new(c.replica_serve_stale_data),
            priority: AtomicU64::new(c.replica_priority),
            obuf_hard: AtomicU64::new(obuf.0),
            obuf_soft: AtomicU64::new(obuf.1),
            obuf_soft_s: AtomicU64::new(obuf.2),
            masterauth: parking_lot::RwLock::new(c.masterauth.clone()),
            masteruser: parking_lot::RwLock::new(c.masteruser.clone()),
        }
    }
}

/// INFO stats' replication counters.
#[derive(Debug, Default)]
pub struct ReplStats {
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
}

/// Where an attached replica is (INFO `slaveN:…,state=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplicaState {
    /// The snapshot is being prepared (disk) or not yet started.
    WaitBgsave = 0,
    /// The snapshot is being sent.
    SendBulk = 1,
    /// Sent; waiting for the replica's first ACK (diskless) before streaming.
    WaitAck = 2,
    Online = 3,
}

impl ReplicaState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => ReplicaState::WaitBgsave,
            1 => ReplicaState::SendBulk,
            2 => ReplicaState::WaitAck,
            _ => ReplicaState::Online,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk | ReplicaState::WaitAck => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// The stream bytes waiting to go to one replica.
#[derive(Debug, Default)]
struct OutQueue {
    buf: Vec<u8>,
    /// Since when the queue has been over the soft limit.
    soft_since: Option<Instant>,
}

/// A replica attached to this server.
#[derive(Debug)]
pub struct AttachedReplica {
    pub client_id: u64,
    pub ip: String,
    pub listening_port: u64,
    state: AtomicU8,
    /// The offset the replica acknowledged last (REPLCONF ACK).
    pub ack_offset: AtomicU64,
    /// Unix ms of its last ACK (INFO `lag`).
    pub last_ack_ms: AtomicU64,
    out: Mutex<OutQueue>,
    wake: Notify,
    /// Past its output buffer limit: the serving task closes the link.
    overflowed: AtomicBool,
}

impl AttachedReplica {
    pub fn state(&self) -> ReplicaState {
        ReplicaState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn set_state(&self, s: ReplicaState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    /// Takes what is queued for the replica.
    pub fn take_pending(&self) -> Vec<u8> {
        let mut q = self.out.lock();
        q.soft_since = None;
        std::mem::take(&mut q.buf)
    }

    /// Puts bytes back at the front of the queue (bytes taken but not sent).
    pub fn pending_len(&self) -> usize {
        self.out.lock().buf.len()
    }

    pub async fn wait_for_data(&self) {
        self.wake.notified().await
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    fn enqueue(&self, bytes: &[u8], settings: &ReplSettings) {
        if self.overflowed() {
            // Being dropped: nothing more is kept for it.
            return;
        }
        let mut q = self.out.lock();
        // A queue that already held bytes has a wake-up pending: its writer will take
        // these too. Waking it per batch would cost a task switch and a write per command.
        let was_empty = q.buf.is_empty();
        q.buf.extend_from_slice(bytes);
        let len = q.buf.len() as u64;
        let hard = settings.obuf_hard.load(Ordering::Relaxed);
        let soft = settings.obuf_soft.load(Ordering::Relaxed);
        let soft_s = settings.obuf_soft_s.load(Ordering::Relaxed);
        let mut over = hard > 0 && len > hard;
        if soft > 0 && len > soft {
            let since = *q.soft_since.get_or_insert_with(Instant::now);
            over |= since.elapsed().as_secs() >= soft_s;
        } else {
            q.soft_since = None;
        }
        if over && !self.overflowed.swap(true, Ordering::Relaxed) {
            // Nothing more is kept for a replica that is being dropped.
            q.buf = Vec::new();
            tracing::warn!(
                replica = %self.ip,
                bytes = len,
                "Client scheduled to be closed ASAP for overcoming of output buffer limits"
            );
        }
        drop(q);
        if was_empty || self.overflowed() {
            self.wake.notify_one();
        }
    }
}

/// What a replica knows of its master link (INFO replication, ROLE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStatus {
    /// Not connected; will try (`connect`).
    Connect,
    /// Connecting or in the handshake (`connecting`).
    Connecting,
    /// Receiving the snapshot (`sync`).
    Sync,
    /// Streaming (`connected`).
    Connected,
}

impl LinkStatus {
    pub fn role_name(self) -> &'static str {
        match self {
            LinkStatus::Connect => "connect",
            LinkStatus::Connecting => "connecting",
            LinkStatus::Sync => "sync",
            LinkStatus::Connected => "connected",
        }
    }
}

/// Stops one link task.
#[derive(Debug, Default)]
pub struct LinkControl {
    stopped: AtomicBool,
    notify: Notify,
}

impl LinkControl {
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Completes once the link is stopped.
    pub async fn stopped(&self) {
        loop {
            let n = self.notify.notified();
            if self.is_stopped() {
                return;
            }
            n.await;
        }
    }
}

/// The master a replica follows.
#[derive(Debug)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    pub status: LinkStatus,
    pub control: Arc<LinkControl>,
    /// Unix ms of the last byte from the master.
    pub last_io_ms: u64,
    /// Unix ms the link went down (or the link was configured).
    pub down_since_ms: u64,
    /// Snapshot transfer progress while `status` is `Sync`: (expected or -1, received).
    pub sync_bytes: (i64, u64),
    /// Unix ms of the last sync's start.
    pub sync_started_ms: u64,
}

#[derive(Debug)]
struct State {
    replid: String,
    replid2: String,
    /// The first offset that `replid2` does not cover, or -1 (`second_repl_offset`).
    second_offset: i64,
    /// master_repl_offset: bytes of the stream produced (master) or applied (replica).
    offset: u64,
    backlog: Option<Backlog>,
    propagator: Propagator,
    scratch: Vec<u8>,
    replicas: Vec<Arc<AttachedReplica>>,
    master: Option<MasterLink>,
    /// A link REPLICAOF asked for, not yet started (see [`replica::supervise`]).
    pending_link: Option<(Arc<LinkControl>, String, u16)>,
    /// No history worth offering a master: `replicaof` in the configuration and nothing
    /// loaded, so the first PSYNC asks for a full sync (`PSYNC ? -1`), as Redis's does.
    no_history: bool,
}

/// Replication's shared state. See the module documentation.
pub struct Replication {
    state: Mutex<State>,
    /// The effect consumer is interested: a master with a backlog.
    feeding: AtomicBool,
    /// Shared with the keyspace, whose reads keep expired data on a replica.
    is_replica: Arc<AtomicBool>,
    /// `master_repl_offset`, readable without the lock.
    offset: AtomicU64,
    /// On a replica: the offset after the last command from the master applied (set under
    /// that command's locks, so a snapshot's recorded offset matches its data).
    applied: AtomicU64,
    /// On a replica: the database the master's stream has selected at `applied` (a
    /// partial resync continues in it; snapshots record it as `repl-stream-db`).
    stream_db: std::sync::atomic::AtomicUsize,
    /// Notified on every ACK (WAIT).
    acked: Notify,
    /// Notified when REPLICAOF asks for a new link.
    link_wake: Notify,
    pub settings: ReplSettings,
    pub stats: ReplStats,
    clock: crate::clock::Clock,
}

/// 40 random lower-case hex characters (a replication id).
pub fn random_id() -> String {
    let mut rng = fastrand::Rng::new();
    (0..40)
        .map(|_| char::from_digit(rng.u32(..16), 16).unwrap_or('0'))
        .collect()
}

/// `REPLCONF GETACK *` as it appears in the stream.
const GETACK: &[&[u8]] = &[b"REPLCONF", b"GETACK", b"*"];

/// Why a PSYNC cannot continue: the reason Redis logs.
#[derive(Debug)]
pub enum PsyncRefusal {
    /// `PSYNC ? -1`: the replica asked for a full sync.
    Asked,
    IdMismatch,
    OutOfBacklog,
}

/// A partial resync that can go ahead: the id to announce and the bytes to send first.
#[derive(Debug)]
pub struct Continue {
    pub replid: String,
    pub replica: Arc<AttachedReplica>,
}

/// A full sync's starting point, fixed under every shard lock.
#[derive(Debug)]
pub struct FullSyncPoint {
    pub replid: String,
    pub offset: u64,
    /// The stream's database at `offset` (`repl-stream-db`).
    pub db: usize,
    pub replica: Arc<AttachedReplica>,
}

impl Replication {
    /// `is_replica` is the keyspace's [`crate::keyspace::Keyspace::keep_expired_flag`].
    pub fn new(
        settings: ReplSettings,
        clock: crate::clock::Clock,
        is_replica: Arc<AtomicBool>,
    ) -> Self {
        is_replica.store(false, Ordering::Relaxed);
        Replication {
            state: Mutex::new(State {
                replid: random_id(),
                replid2: "0".repeat(40),
                second_offset: -1,
                offset: 0,
                backlog: None,
                propagator: Propagator::new(),
                scratch: Vec::new(),
                replicas: Vec::new(),
                master: None,
                pending_link: None,
                no_history: false,
            }),
            feeding: AtomicBool::new(false),
            is_replica,
            offset: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            stream_db: std::sync::atomic::AtomicUsize::new(0),
            acked: Notify::new(),
            link_wake: Notify::new(),
            settings,
            stats: ReplStats::default(),
            clock,
        }
    }

    pub fn is_replica(&self) -> bool {
        self.is_replica.load(Ordering::Relaxed)
    }

    /// The memory held by replicas' output queues: what maxmemory does not count, as
    /// Redis's `freeMemoryGetNotCountedMemory` (INFO `mem_not_counted_for_evict`), so a
    /// slow replica cannot make the master evict its data.
    pub fn output_buffer_bytes(&self) -> usize {
        // No backlog, no replica: nothing to look at (and no lock to take per command
        // while memory is over the limit).
        if !self.feeding.load(Ordering::Relaxed) {
            return 0;
        }
        self.state
            .lock()
            .replicas
            .iter()
            .map(|r| r.out.lock().buf.capacity())
            .sum()
    }

    /// `master_repl_offset`.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Acquire)
    }

    pub fn replid(&self) -> String {
        self.state.lock().replid.clone()
    }

    /// Appends stream bytes: to the backlog and every attached replica's queue.
    fn feed_locked(&self, st: &mut State, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        st.offset += bytes.len() as u64;
        self.offset.store(st.offset, Ordering::Release);
        if let Some(b) = st.backlog.as_mut() {
            b.push(bytes);
        }
        for r in &st.replicas {
            r.enqueue(bytes, &self.settings);
        }
    }

    /// Creates the backlog if there is none (the first replica): from then on every change
    /// is streamed into it.
    fn ensure_backlog(&self, st: &mut State) {
        if st.backlog.is_none() {
            let size = self.settings.backlog_size.load(Ordering::Relaxed) as usize;
            st.backlog = Some(Backlog::new(size, st.offset + 1));
            // The first command streamed selects its database.
            st.propagator.reset();
        }
        self.feeding.store(st.master.is_none(), Ordering::Relaxed);
    }

    /// A replica's stream bytes from our master, applied: kept in our backlog and passed on
    /// to our own replicas unchanged (chained replication), so the offsets stay the
    /// master's. Only while `link` is still our master's link: bytes a stopped link applied
    /// meanwhile are not streamed as well as published. Commands feed this under their
    /// shard locks, so a full sync (every shard held) sees data and offset agree.
    pub fn feed_from_master(&self, link: &Arc<LinkControl>, bytes: &[u8]) {
        let mut st = self.state.lock();
        if !st
            .master
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(&m.control, link))
        {
            return;
        }
        self.ensure_backlog(&mut st);
        self.feed_locked(&mut st, bytes);
    }

    /// Whether `link` is still the link to our master.
    pub fn is_current_link(&self, link: &Arc<LinkControl>) -> bool {
        self.state
            .lock()
            .master
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(&m.control, link))
    }

    /// The database the master's stream has selected (see `stream_db`).
    pub fn stream_db(&self) -> usize {
        self.stream_db.load(Ordering::Relaxed)
    }

    /// Sends a PING down the stream (every `repl-ping-replica-period`), if any replica is
    /// attached; a replica does not (its master's PINGs pass through).
    pub fn ping_replicas(&self) {
        let mut st = self.state.lock();
        if st.master.is_some() || st.replicas.is_empty() {
            return;
        }
        let mut ping = Vec::new();
        encode_command(&mut ping, &[b"PING"]);
        self.feed_locked(&mut st, &ping);
    }

    /// Asks every replica for its offset (WAIT).
    pub fn request_acks(&self) {
        let mut st = self.state.lock();
        if st.master.is_some() || st.replicas.is_empty() {
            return;
        }
        let mut cmd = Vec::new();
        encode_command(&mut cmd, GETACK);
        self.feed_locked(&mut st, &cmd);
    }

    /// A replica acknowledged `offset`.
    pub fn record_ack(&self, replica: &AttachedReplica, offset: u64) {
        replica.ack_offset.fetch_max(offset, Ordering::Relaxed);
        replica
            .last_ack_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
        self.acked.notify_waiters();
    }

    /// Online replicas whose ACK reached `offset`.
    pub fn acked_count(&self, offset: u64) -> usize {
        self.state
            .lock()
            .replicas
            .iter()
            .filter(|r| {
                r.state() == ReplicaState::Online && r.ack_offset.load(Ordering::Relaxed) >= offset
            })
            .count()
    }

    /// WAIT: completes when `n` replicas acknowledged `offset`, or after `timeout_ms` (0:
    /// never); returns how many did.
    pub async fn wait_for_acks(&self, n: usize, offset: u64, timeout_ms: u64) -> usize {
        let done = self.acked_count(offset);
        if done >= n {
            return done;
        }
        self.request_acks();
        let deadline = (timeout_ms > 0)
            .then(|| tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms));
        loop {
            let notified = self.acked.notified();
            let done = self.acked_count(offset);
            if done >= n {
                return done;
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        return self.acked_count(offset);
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Replicas online with an ACK at most `min-replicas-max-lag` seconds old.
    pub fn good_replicas(&self) -> usize {
        self.good_among(&self.state.lock().replicas)
    }

    fn good_among(&self, replicas: &[Arc<AttachedReplica>]) -> usize {
        let max_lag_ms = self.settings.min_replicas_max_lag_s.load(Ordering::Relaxed) * 1000;
        let now = self.clock.now_ms();
        replicas
            .iter()
            .filter(|r| {
                r.state() == ReplicaState::Online
                    && now.saturating_sub(r.last_ack_ms.load(Ordering::Relaxed)) <= max_lag_ms
            })
            .count()
    }

    /// `min-replicas-to-write` is set and not met: writes are refused (`-NOREPLICAS`).
    pub fn writes_refused(&self) -> bool {
        let min = self.settings.min_replicas_to_write.load(Ordering::Relaxed);
        min > 0 && !self.is_replica() && (self.good_replicas() as u64) < min
    }

    /// PSYNC `replid offset`: registers the replica to continue from `offset` if the
    /// history and the backlog allow it. The queue starts with the backlog's bytes from
    /// there, under the same lock as the stream, so nothing is missed or repeated.
    pub fn try_continue(
        &self,
        replid: &str,
        offset: i64,
        client_id: u64,
        ip: &str,
        listening_port: u64,
    ) -> Result<Continue, PsyncRefusal> {
        let mut st = self.state.lock();
        if replid == "?" {
            return Err(PsyncRefusal::Asked);
        }
        let known = replid == st.replid
            || (replid == st.replid2 && st.second_offset >= 0 && offset <= st.second_offset);
        if !known {
            return Err(PsyncRefusal::IdMismatch);
        }
        let from = u64::try_from(offset).map_err(|_| PsyncRefusal::OutOfBacklog)?;
        let Some(bytes) = st.backlog.as_ref().and_then(|b| b.since(from)) else {
            return Err(PsyncRefusal::OutOfBacklog);
        };
        let replica = Arc::new(self.attached(client_id, ip, listening_port, ReplicaState::Online));
        replica.out.lock().buf = bytes;
        // An ACK is as good as the offset the replica said it had.
        replica
            .ack_offset
            .store(from.saturating_sub(1), Ordering::Relaxed);
        st.replicas.push(Arc::clone(&replica));
        self.ensure_backlog(&mut st);
        Ok(Continue {
            replid: st.replid.clone(),
            replica,
        })
    }

    fn attached(
        &self,
        client_id: u64,
        ip: &str,
        port: u64,
        state: ReplicaState,
    ) -> AttachedReplica {
        AttachedReplica {
            client_id,
            ip: ip.to_string(),
            listening_port: port,
            state: AtomicU8::new(state as u8),
            ack_offset: AtomicU64::new(0),
            last_ack_ms: AtomicU64::new(self.clock.now_ms()),
            out: Mutex::new(OutQueue::default()),
            wake: Notify::new(),
            overflowed: AtomicBool::new(false),
        }
    }

    /// A full sync starts: called with every shard held, so the snapshot and the stream
    /// that follows it meet at exactly this offset. The next streamed command selects its
    /// database (the replica's loaded snapshot says nothing about it).
    pub fn begin_full_sync(&self, client_id: u64, ip: &str, listening_port: u64) -> FullSyncPoint {
        let mut st = self.state.lock();
        self.ensure_backlog(&mut st);
        // A master's next command selects its database; a replica passes its master's
        // stream on as it is, so the snapshot says where it stands (`repl-stream-db`).
        st.propagator.reset();
        let db = if st.master.is_some() {
            self.stream_db()
        } else {
            0
        };
        let replica =
            Arc::new(self.attached(client_id, ip, listening_port, ReplicaState::WaitBgsave));
        st.replicas.push(Arc::clone(&replica));
        FullSyncPoint {
            replid: st.replid.clone(),
            offset: st.offset,
            db,
            replica,
        }
    }

    /// The replica's link ended.
    pub fn detach(&self, replica: &Arc<AttachedReplica>) {
        let mut st = self.state.lock();
        st.replicas.retain(|r| !Arc::ptr_eq(r, replica));
        drop(st);
        self.acked.notify_waiters();
    }

    /// Disconnects every attached replica (they reconnect and resync): after our own
    /// history changed (a full sync from our master, a new replication id).
    fn drop_replicas(st: &mut State) {
        for r in st.replicas.drain(..) {
            r.overflowed.store(true, Ordering::Relaxed);
            r.wake.notify_one();
        }
    }

    /// REPLICAOF NO ONE: becomes a master. The master's replication id becomes our
    /// previous one (psync2), valid up to the offset reached, so the other replicas of the
    /// old master can continue from us.
    pub fn become_master(&self) -> bool {
        let mut st = self.state.lock();
        let Some(link) = st.master.take() else {
            return false;
        };
        link.control.stop();
        st.replid2 = std::mem::replace(&mut st.replid, random_id());
        st.second_offset = st.offset as i64 + 1;
        st.propagator.reset();
        Self::drop_replicas(&mut st);
        self.is_replica.store(false, Ordering::Relaxed);
        self.feeding.store(st.backlog.is_some(), Ordering::Relaxed);
        true
    }

    /// REPLICAOF host port: follows that master from now on. Returns the new link's
    /// control, or None if it already follows exactly that master.
    pub fn become_replica(&self, host: &str, port: u16) -> Option<Arc<LinkControl>> {
        let mut st = self.state.lock();
        if let Some(m) = &st.master {
            if m.host == host && m.port == port {
                return None;
            }
            m.control.stop();
        }
        let control = Arc::new(LinkControl::default());
        st.master = Some(MasterLink {
            host: host.to_string(),
            port,
            status: LinkStatus::Connect,
            control: Arc::clone(&control),
            last_io_ms: 0,
            // 0: never connected (INFO shows -1, as Redis's repl_down_since 0).
            down_since_ms: 0,
            sync_bytes: (-1, 0),
            sync_started_ms: 0,
        });
        // Our replicas must learn of the new history.
        Self::drop_replicas(&mut st);
        st.pending_link = Some((Arc::clone(&control), host.to_string(), port));
        self.is_replica.store(true, Ordering::Relaxed);
        self.feeding.store(false, Ordering::Relaxed);
        drop(st);
        self.link_wake.notify_one();
        Some(control)
    }

    /// Completes when REPLICAOF may have asked for a link.
    pub async fn link_requested(&self) {
        self.link_wake.notified().await
    }

    /// The link REPLICAOF asked for, if it is still the current one.
    pub fn take_link_request(&self) -> Option<(Arc<LinkControl>, String, u16)> {
        self.state
            .lock()
            .pending_link
            .take()
            .filter(|(c, _, _)| !c.is_stopped())
    }

    /// Updates the link's status, if `control` is still the current link.
    pub fn update_link(&self, control: &Arc<LinkControl>, f: impl FnOnce(&mut MasterLink)) {
        let mut st = self.state.lock();
        if let Some(m) = st
            .master
            .as_mut()
            .filter(|m| Arc::ptr_eq(&m.control, control))
        {
            f(m);
        }
    }

    /// What the replica asks its master for: `(replid, offset + 1)`, continuing our own
    /// history (psync2: a demoted master or a restarted replica may continue).
    pub fn psync_request(&self) -> (String, i64) {
        let st = self.state.lock();
        if st.no_history {
            return ("?".into(), -1);
        }
        (st.replid.clone(), st.offset as i64 + 1)
    }

    /// `replicaof` from the configuration, at start-up: like REPLICAOF, except that our
    /// own history (unless a snapshot brings one) is not offered to the master.
    pub fn become_replica_at_startup(&self, host: &str, port: u16) {
        self.state.lock().no_history = true;
        self.become_replica(host, port);
    }

    /// A full sync from our master was loaded: its history is ours now, the stream going
    /// on in database `db` (the snapshot's `repl-stream-db`).
    pub fn adopt_master_history(&self, replid: &str, offset: u64, db: usize) {
        self.stream_db.store(db, Ordering::Relaxed);
        let mut st = self.state.lock();
        st.replid = replid.to_string();
        st.replid2 = "0".repeat(40);
        st.second_offset = -1;
        st.offset = offset;
        st.no_history = false;
        self.offset.store(offset, Ordering::Release);
        self.applied.store(offset, Ordering::Release);
        let size = self.settings.backlog_size.load(Ordering::Relaxed) as usize;
        st.backlog = Some(Backlog::new(size, offset + 1));
        Self::drop_replicas(&mut st);
    }

    /// `+CONTINUE <newid>`: the master's id changed (it was promoted); ours follows, the old
    /// one stays valid up to here.
    pub fn continue_with_id(&self, new_id: &str) {
        let mut st = self.state.lock();
        if st.replid != new_id {
            st.replid2 = std::mem::replace(&mut st.replid, new_id.to_string());
            st.second_offset = st.offset as i64 + 1;
            Self::drop_replicas(&mut st);
        }
    }

    /// Restores the history saved in a snapshot (`repl-id`, `repl-offset`), so that a
    /// restarted replica can continue where it stopped, and a restarted master's replicas
    /// can continue from it (with an empty backlog: only if they had everything).
    pub fn restore_history(&self, replid: &str, offset: u64, db: usize) {
        if replid.len() != 40 || !replid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return;
        }
        self.stream_db.store(db, Ordering::Relaxed);
        let mut st = self.state.lock();
        st.replid = replid.to_string();
        st.offset = offset;
        st.no_history = false;
        self.offset.store(offset, Ordering::Release);
        self.applied.store(offset, Ordering::Release);
        let size = self.settings.backlog_size.load(Ordering::Relaxed) as usize;
        st.backlog = Some(Backlog::new(size, offset + 1));
        st.propagator.reset();
        self.feeding.store(st.master.is_none(), Ordering::Relaxed);
    }

    /// The history as it stands: `(replid, offset)`.
    pub fn history(&self) -> (String, u64) {
        let st = self.state.lock();
        (st.replid.clone(), st.offset)
    }

    /// The history a snapshot taken now (under every shard lock) records, if there is one
    /// to record: on a replica the offset of the last command applied under those locks,
    /// on a master with a backlog the stream's offset.
    /// Also the stream's database there (a master's next command selects its own).
    pub fn snapshot_history(&self) -> Option<(String, u64, usize)> {
        let st = self.state.lock();
        if st.master.is_some() {
            Some((
                st.replid.clone(),
                self.applied.load(Ordering::Acquire),
                self.stream_db(),
            ))
        } else if st.backlog.is_some() {
            Some((st.replid.clone(), st.offset, 0))
        } else {
            None
        }
    }

    /// A command from our master was applied, under its locks; the stream stands at
    /// `offset` after it (outside a transaction), in database `db`.
    pub fn note_applied(&self, offset: u64, db: usize) {
        self.applied.store(offset, Ordering::Release);
        self.stream_db.store(db, Ordering::Relaxed);
    }

    /// Applies CONFIG SET repl-backlog-size.
    pub fn resize_backlog(&self, size: u64) {
        self.settings.backlog_size.store(size, Ordering::Relaxed);
        if let Some(b) = self.state.lock().backlog.as_mut() {
            b.resize(size as usize);
        }
    }

    /// The master link's host and port, if we are a replica.
    pub fn master_addr(&self) -> Option<(String, u16)> {
        self.state
            .lock()
            .master
            .as_ref()
            .map(|m| (m.host.clone(), m.port))
    }

    /// The link is up and streaming.
    pub fn link_up(&self) -> bool {
        self.state
            .lock()
            .master
            .as_ref()
            .is_some_and(|m| m.status == LinkStatus::Connected)
    }

    /// INFO replication.
    pub fn info(&self, out: &mut String) {
        use std::fmt::Write;
        fn line(out: &mut String, k: &str, v: impl std::fmt::Display) {
            let _ = write!(out, "{k}:{v}\r\n");
        }
        let st = self.state.lock();
        let now = self.clock.now_ms();
        if let Some(m) = &st.master {
            line(out, "role", "slave");
            line(out, "master_host", &m.host);
            line(out, "master_port", m.port);
            let up = m.status == LinkStatus::Connected;
            line(out, "master_link_status", if up { "up" } else { "down" });
            let io = if m.last_io_ms == 0 {
                -1
            } else {
                (now.saturating_sub(m.last_io_ms) / 1000) as i64
            };
            line(out, "master_last_io_seconds_ago", io);
            let syncing = m.status == LinkStatus::Sync;
            line(out, "master_sync_in_progress", u8::from(syncing));
            line(out, "slave_read_repl_offset", st.offset);
            line(out, "slave_repl_offset", st.offset);
            if syncing {
                let (total, read) = m.sync_bytes;
                line(out, "master_sync_total_bytes", total);
                line(out, "master_sync_read_bytes", read);
                line(
                    out,
                    "master_sync_left_bytes",
                    if total < 0 { -1 } else { total - read as i64 },
                );
                let perc = if total > 0 {
                    read as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                line(out, "master_sync_perc", format!("{perc:.2}"));
                line(
                    out,
                    "master_sync_last_io_seconds_ago",
                    now.saturating_sub(m.last_io_ms) / 1000,
                );
            }
            if !up {
                let down = if m.down_since_ms == 0 {
                    -1
                } else {
                    (now.saturating_sub(m.down_since_ms) / 1000) as i64
                };
                line(out, "master_link_down_since_seconds", down);
            }
            line(
                out,
                "slave_priority",
                self.settings.priority.load(Ordering::Relaxed),
            );
            line(
                out,
                "slave_read_only",
                u8::from(self.settings.read_only.load(Ordering::Relaxed)),
            );
            line(out, "replica_announced", 1);
        } else {
            line(out, "role", "master");
        }
        line(out, "connected_slaves", st.replicas.len());
        if st.master.is_none() && self.settings.min_replicas_to_write.load(Ordering::Relaxed) > 0 {
            line(out, "min_slaves_good_slaves", self.good_among(&st.replicas));
        }
        for (i, r) in st.replicas.iter().enumerate() {
            let lag = now.saturating_sub(r.last_ack_ms.load(Ordering::Relaxed)) / 1000;
            line(
                out,
                &format!("slave{i}"),
                format!(
                    "ip={},port={},state={},offset={},lag={}",
                    r.ip,
                    r.listening_port,
                    r.state().name(),
                    r.ack_offset.load(Ordering::Relaxed),
                    lag
                ),
            );
        }
        line(out, "master_failover_state", "no-failover");
        line(out, "master_replid", &st.replid);
        line(out, "master_replid2", &st.replid2);
        line(out, "master_repl_offset", st.offset);
        line(out, "second_repl_offset", st.second_offset);
        match &st.backlog {
            Some(b) => {
                line(out, "repl_backlog_active", 1);
                line(out, "repl_backlog_size", b.size());
                line(out, "repl_backlog_first_byte_offset", b.first_offset());
                line(out, "repl_backlog_histlen", b.histlen());
            }
            None => {
                line(out, "repl_backlog_active", 0);
                line(
                    out,
                    "repl_backlog_size",
                    self.settings.backlog_size.load(Ordering::Relaxed),
                );
                line(out, "repl_backlog_first_byte_offset", 0);
                line(out, "repl_backlog_histlen", 0);
            }
        }
    }

    /// ROLE.
    pub fn role(&self) -> Role {
        let st = self.state.lock();
        match &st.master {
            Some(m) => Role::Replica {
                host: m.host.clone(),
                port: m.port,
                state: m.status.role_name(),
                offset: if m.status == LinkStatus::Connected {
                    st.offset as i64
                } else {
                    -1
                },
            },
            None => Role::Master {
                offset: st.offset,
                replicas: st
                    .replicas
                    .iter()
                    .filter(|r| r.state() == ReplicaState::Online)
                    .map(|r| {
                        (
                            r.ip.clone(),
                            r.listening_port,
                            r.ack_offset.load(Ordering::Relaxed),
                        )
                    })
                    .collect(),
            },
        }
    }

    /// Wakes every replica's writer (at shutdown, to send what is queued and finish).
    pub fn wake_all(&self) {
        for r in &self.state.lock().replicas {
            r.wake.notify_one();
        }
    }

    /// Client ids of the attached replicas (CLIENT LIST's `flags=S`, CLIENT KILL TYPE).
    pub fn replica_client_ids(&self) -> Vec<u64> {
        self.state
            .lock()
            .replicas
            .iter()
            .map(|r| r.client_id)
            .collect()
    }
}

/// The master's PING to its replicas, every `repl-ping-replica-period` seconds.
pub async fn ping_replicas(server: Arc<crate::context::ServerContext>) {
    loop {
        let period = server
            .replication
            .settings
            .ping_period_s
            .load(Ordering::Relaxed)
            .max(1);
        tokio::time::sleep(std::time::Duration::from_secs(period)).await;
        server.replication.ping_replicas();
    }
}

/// ROLE's answer.
#[derive(Debug)]
pub enum Role {
    Master {
        offset: u64,
        replicas: Vec<(String, u64, u64)>,
    },
    Replica {
        host: String,
        port: u16,
        state: &'static str,
        offset: i64,
    },
}

impl EffectSink for Replication {
    fn interested(&self) -> bool {
        self.feeding.load(Ordering::Relaxed)
    }

    fn publish(&self, batch: &Batch) {
        let mut st = self.state.lock();
        if st.master.is_some() || st.backlog.is_none() {
            return;
        }
        let mut scratch = std::mem::take(&mut st.scratch);
        scratch.clear();
        st.propagator.batch(batch, &mut scratch);
        self.feed_locked(&mut st, &scratch);
        if scratch.capacity() <= 64 * 1024 {
            st.scratch = scratch;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repl() -> Replication {
        Replication::new(
            ReplSettings::from_config(&crate::config::Config::default()),
            crate::clock::Clock::manual(1_000_000),
            Arc::new(AtomicBool::new(false)),
        )
    }

    #[test]
    fn continue_needs_the_id_and_the_backlog() {
        let r = repl();
        let id = r.replid();
        let full = r.begin_full_sync(1, "127.0.0.1", 6380);
        assert_eq!(full.offset, 0);
        r.feed_locked(&mut r.state.lock(), b"0123456789");
        // (feed_from_master is the replica path; as a master with a backlog it streams too)
        assert_eq!(r.offset(), 10);
        assert_eq!(full.replica.take_pending(), b"0123456789");
        assert!(matches!(
            r.try_continue("?", -1, 2, "h", 1),
            Err(PsyncRefusal::Asked)
        ));
        assert!(matches!(
            r.try_continue(&"f".repeat(40), 5, 2, "h", 1),
            Err(PsyncRefusal::IdMismatch)
        ));
        let c = r.try_continue(&id, 6, 2, "h", 1).expect("continues");
        assert_eq!(c.replid, id);
        assert_eq!(c.replica.take_pending(), b"56789");
        assert!(matches!(
            r.try_continue(&id, 12, 3, "h", 1),
            Err(PsyncRefusal::OutOfBacklog)
        ));
    }

    #[test]
    fn promotion_keeps_the_old_id_valid_up_to_the_offset() {
        let r = repl();
        let ctl = r.become_replica("127.0.0.1", 6379).expect("new link");
        r.adopt_master_history(&"a".repeat(40), 100, 0);
        r.feed_from_master(&ctl, b"xyz");
        // A stopped link's bytes are not streamed.
        let old = Arc::new(LinkControl::default());
        r.feed_from_master(&old, b"zzz");
        assert!(r.become_master());
        assert!(ctl.is_stopped());
        let (new_id, offset) = r.history();
        assert_ne!(new_id, "a".repeat(40));
        assert_eq!(offset, 103);
        // Another replica of the old master, at 101, continues from us with the old id.
        let c = r
            .try_continue(&"a".repeat(40), 101, 7, "h", 1)
            .expect("psync2");
        assert_eq!(c.replid, new_id);
        assert_eq!(c.replica.take_pending(), b"xyz");
        // Past the switch the old id is no longer ours.
        assert!(r.try_continue(&"a".repeat(40), 105, 8, "h", 1).is_err());
    }

    #[test]
    fn output_limit_marks_the_replica_overflowed() {
        let r = repl();
        r.settings.obuf_hard.store(8, Ordering::Relaxed);
        let full = r.begin_full_sync(1, "127.0.0.1", 6380);
        r.feed_locked(&mut r.state.lock(), b"12345");
        assert!(!full.replica.overflowed());
        r.feed_locked(&mut r.state.lock(), b"6789");
        assert!(full.replica.overflowed());
        assert_eq!(full.replica.pending_len(), 0);
    }
}
