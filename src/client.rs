//! Per-client state. [`ClientState`] is owned by the connection task and handed to every
//! command; [`ClientShared`] is the part other clients may read (CLIENT LIST, CLIENT KILL),
//! kept in the [`ClientRegistry`].

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::cmd::OwnedArgs;
use crate::keyspace::WatchFlag;
use crate::protocol::Protocol;
use crate::pubsub::Subscriptions;

/// Name and library attributes (CLIENT SETNAME / SETINFO).
#[derive(Debug, Default, Clone)]
pub struct ClientMeta {
    pub name: Vec<u8>,
    pub lib_name: Vec<u8>,
    pub lib_ver: Vec<u8>,
    /// The ACL user the connection is authenticated as (CLIENT LIST `user=`); empty for
    /// internal clients, which no ACL restricts.
    pub user: Vec<u8>,
}

/// What other connections can see of a client.
#[derive(Debug)]
pub struct ClientShared {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created_ms: u64,
    pub meta: Mutex<ClientMeta>,
    pub db: AtomicUsize,
    pub resp: AtomicUsize,
    pub last_interaction_ms: AtomicU64,
    /// Full name of the last command (`client|list`), as an index into the command list.
    pub last_cmd: AtomicUsize,
    /// Commands queued in MULTI, or -1 (as `usize::MAX`) outside MULTI.
    pub multi_len: AtomicUsize,
    pub watched: AtomicUsize,
    /// The query buffer: bytes held and room left (CLIENT LIST `qbuf`, `qbuf-free`), as of
    /// the connection's last read or batch.
    pub qbuf: AtomicUsize,
    pub qbuf_free: AtomicUsize,
    /// The reply buffer: its size, the most it held since CLIENT LIST last looked, and
    /// what is waiting to be written (CLIENT LIST `rbs`, `rbp`, `obl`).
    pub rbs: AtomicUsize,
    pub rbp: AtomicUsize,
    pub obl: AtomicUsize,
    /// Channels and patterns subscribed to (CLIENT LIST `sub=`, `psub=`).
    pub subs: AtomicUsize,
    pub psubs: AtomicUsize,
    /// What the client is to this server: [`ClientKind`] as a number.
    kind: std::sync::atomic::AtomicU8,
    /// Blocked in WAIT (CLIENT UNBLOCK may end it).
    blocked: AtomicBool,
    /// CLIENT UNBLOCK asked for an error reply rather than the timeout's.
    unblock_error: AtomicBool,
    unblocked: Notify,
    killed: AtomicBool,
    kill: Notify,
    /// Where messages for this client go (set once it has a mailbox): CLIENT TRACKING
    /// REDIRECT delivers here.
    pub outbox: Mutex<Option<crate::pubsub::Outbox>>,
    /// The socket's descriptor (CLIENT LIST `fd`; -1 for internal clients).
    pub fd: std::sync::atomic::AtomicI64,
    /// CLIENT TRACKING as CLIENT LIST shows it: `redir` (-1 off, 0 none, else the
    /// target's id) and the `t`/`R`/`B` flags ([`TRACKING_ON`] …).
    pub tracking_redir: std::sync::atomic::AtomicI64,
    pub tracking_flags: std::sync::atomic::AtomicU8,
}

/// [`ClientShared::tracking_flags`]: tracking on, its redirect target gone, BCAST.
pub const TRACKING_ON: u8 = 1;
pub const TRACKING_BROKEN_REDIR: u8 = 2;
pub const TRACKING_BCAST: u8 = 4;

/// A client's role in replication (CLIENT LIST `flags=S` / `M`, CLIENT KILL TYPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    Normal,
    /// A replica of ours, on its replication link.
    Replica,
    /// Our master's link, applying its stream.
    Master,
}

impl ClientShared {
    pub fn new(id: u64, addr: Option<SocketAddr>, laddr: Option<SocketAddr>, now_ms: u64) -> Self {
        let fmt = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        ClientShared {
            id,
            addr: fmt(addr),
            laddr: fmt(laddr),
            created_ms: now_ms,
            meta: Mutex::new(ClientMeta::default()),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            last_interaction_ms: AtomicU64::new(now_ms),
            last_cmd: AtomicUsize::new(usize::MAX),
            multi_len: AtomicUsize::new(usize::MAX),
            watched: AtomicUsize::new(0),
            qbuf: AtomicUsize::new(0),
            qbuf_free: AtomicUsize::new(0),
            rbs: AtomicUsize::new(0),
            rbp: AtomicUsize::new(0),
            obl: AtomicUsize::new(0),
            subs: AtomicUsize::new(0),
            psubs: AtomicUsize::new(0),
            kind: std::sync::atomic::AtomicU8::new(0),
            blocked: AtomicBool::new(false),
            unblock_error: AtomicBool::new(false),
            unblocked: Notify::new(),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            outbox: Mutex::new(None),
            fd: std::sync::atomic::AtomicI64::new(-1),
            tracking_redir: std::sync::atomic::AtomicI64::new(-1),
            tracking_flags: std::sync::atomic::AtomicU8::new(0),
        }
    }

    pub fn kind(&self) -> ClientKind {
        match self.kind.load(Ordering::Relaxed) {
            1 => ClientKind::Replica,
            2 => ClientKind::Master,
            _ => ClientKind::Normal,
        }
    }

    pub fn set_kind(&self, kind: ClientKind) {
        let v = match kind {
            ClientKind::Normal => 0,
            ClientKind::Replica => 1,
            ClientKind::Master => 2,
        };
        self.kind.store(v, Ordering::Relaxed);
    }

    /// Marks the client as blocked in WAIT (or no longer).
    pub fn set_blocked(&self, on: bool) {
        self.blocked.store(on, Ordering::Relaxed);
        self.unblock_error.store(false, Ordering::Relaxed);
    }

    /// CLIENT UNBLOCK: ends the client's WAIT; false if it is not blocked.
    pub fn unblock(&self, error: bool) -> bool {
        if !self.blocked.swap(false, Ordering::Relaxed) {
            return false;
        }
        self.unblock_error.store(error, Ordering::Relaxed);
        self.unblocked.notify_one();
        true
    }

    /// Completes when CLIENT UNBLOCK ends the wait; true if it asked for an error.
    pub async fn unblocked(&self) -> bool {
        self.unblocked.notified().await;
        self.unblock_error.load(Ordering::Relaxed)
    }

    /// CLIENT KILL: asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill.notify_one();
    }

    /// Subscribed to a channel or pattern: Redis's `CLIENT_PUBSUB` flag (`P`, type pubsub).
    pub fn is_pubsub(&self) -> bool {
        self.subs.load(Ordering::Relaxed) + self.psubs.load(Ordering::Relaxed) > 0
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Completes when the client is killed.
    pub async fn killed(&self) {
        if self.is_killed() {
            return;
        }
        self.kill.notified().await;
    }
}

/// All connected clients, by id.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<ClientShared>>>,
    next_id: AtomicU64,
}

impl ClientRegistry {
    /// A fresh id; ids only increase.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn register(&self, c: Arc<ClientShared>) {
        self.clients.lock().insert(c.id, c);
    }

    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every client, in id order.
    pub fn snapshot(&self) -> Vec<Arc<ClientShared>> {
        self.clients.lock().values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.clients.lock().get(&id).cloned()
    }
}

/// A command queued by MULTI: its table index and its arguments.
#[derive(Debug)]
pub struct QueuedCommand {
    pub command: &'static crate::cmd::Command,
    /// Its index in the command table (commandstats).
    pub index: usize,
    pub args: OwnedArgs,
}

/// The state of a MULTI block.
#[derive(Debug, Default)]
pub struct MultiState {
    pub queue: Vec<QueuedCommand>,
    /// Total bytes of the queued arguments; counts toward the query-buffer limit.
    pub queued_bytes: usize,
    /// A command failed to queue (unknown, wrong arity, NOAUTH): EXEC will abort.
    pub aborted: bool,
}

/// The connection's own view of its client, passed to every command.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    /// CLIENT TRACKING, when on.
    pub tracking: Option<crate::tracking::ClientTracking>,
    /// CLIENT CACHING yes/no, for the next command (or transaction).
    pub caching: Option<bool>,
    /// READONLY (cluster mode): reads of slots this replica's master serves are served here.
    pub cluster_readonly: bool,
    /// ASKING: the next command may use a slot this node is importing.
    pub cluster_asking: bool,
    /// The connection of a migration's source (CLUSTERX IMPORT): it writes the slots this
    /// node imports.
    pub cluster_importer: bool,
    /// CLIENT NO-TOUCH: this client's commands leave keys' access state alone.
    pub no_touch: bool,
    pub db: usize,
    pub protocol: Protocol,
    pub authenticated: bool,
    /// The ACL user whose rules apply; `None` for internal clients (the master's link,
    /// the append-only file's replay), which Redis runs without a user.
    pub user: Option<Arc<crate::acl::User>>,
    /// The ACL table's generation `user` was taken at ([`crate::acl::Acl::generation`]).
    pub acl_generation: u64,
    pub multi: Option<MultiState>,
    /// Shared by every key this client WATCHes; set when any of them changes.
    pub watch_flag: Arc<WatchFlag>,
    /// `(db, key)` pairs this client WATCHes.
    pub watched: HashSet<(usize, Vec<u8>)>,
    /// Close the connection once the pending replies are written (QUIT, protocol errors).
    pub close_after_reply: bool,
    /// Close at once without a reply (cross-protocol guard: `POST`, `Host:`).
    pub close_now: bool,
    pub shared: Arc<ClientShared>,
    pub rng: fastrand::Rng,
    /// Created by the first SUBSCRIBE or PSUBSCRIBE; `None` for clients that never did.
    pub pubsub: Option<Box<Subscriptions>>,
    /// Replaying a log (the append-only file): commands run as at time 0, so nothing in
    /// the log counts as expired while it is replayed — as Redis does while loading —
    /// and every command finds what the original found. Expiry resumes after the load.
    pub replaying: bool,
    /// A command changed something while `appendfsync always` is on: the replies wait
    /// until the append-only file is fsynced past it.
    pub aof_wait: bool,
    /// What REPLCONF told us about this client, should it become a replica.
    pub repl: crate::replication::master::SyncRequest,
    /// PSYNC / SYNC ran: once its reply is written, the connection becomes a replica link.
    pub become_replica: bool,
    /// WAIT ran: (replicas, timeout ms); the connection answers once they acknowledged.
    pub wait: Option<(usize, u64)>,
    /// The replication offset after this client's last write (WAIT waits for it).
    pub woff: u64,
    /// Our master's link: the stream's offset after the command being applied.
    pub master_offset_after: Option<u64>,
    /// Our master's link: the stream bytes up to that offset not yet passed on (the
    /// command's, and an open transaction's), which `cmd::execute` feeds on under the
    /// command's locks.
    pub master_pending: Vec<u8>,
    /// Our master's link: which link this client applies for.
    pub master_link: Option<Arc<crate::replication::LinkControl>>,
    /// EXEC is running this client's queued commands (they cannot block).
    pub in_exec: bool,
    /// Command counts and times not yet added to INFO commandstats (flushed per batch).
    pub stats: crate::cmdstats::Pending,
    /// MONITOR ran: the lines of every command run arrive here.
    pub monitor: Option<tokio::sync::mpsc::Receiver<bytes::Bytes>>,
    /// CLIENT REPLY's state.
    pub replies: ReplyMode,
}

/// CLIENT REPLY: `off` drops every reply until ON; `skip_next` drops the next command's
/// (it becomes `skip` once the SKIP command is done).
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplyMode {
    pub off: bool,
    pub skip: bool,
    pub skip_next: bool,
}

impl ClientState {
    pub fn new(shared: Arc<ClientShared>, authenticated: bool) -> Self {
        ClientState {
            id: shared.id,
            tracking: None,
            caching: None,
            no_touch: false,
            cluster_readonly: false,
            cluster_asking: false,
            cluster_importer: false,
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            user: None,
            acl_generation: 0,
            multi: None,
            watch_flag: Arc::new(WatchFlag::default()),
            watched: HashSet::new(),
            close_after_reply: false,
            close_now: false,
            shared,
            rng: fastrand::Rng::new(),
            pubsub: None,
            replaying: false,
            aof_wait: false,
            repl: Default::default(),
            become_replica: false,
            wait: None,
            woff: 0,
            master_offset_after: None,
            master_pending: Vec::new(),
            master_link: None,
            in_exec: false,
            stats: Default::default(),
            monitor: None,
            replies: ReplyMode::default(),
        }
    }

    /// A client for unit tests: id 1, authenticated, RESP2, db 0.
    pub fn for_tests() -> Self {
        Self::new(Arc::new(ClientShared::new(1, None, None, 0)), true)
    }

    /// Subscribed to at least one channel or pattern (Redis's `CLIENT_PUBSUB`).
    pub fn in_pubsub_mode(&self) -> bool {
        self.pubsub.as_ref().is_some_and(|s| s.count() > 0)
    }

    pub fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.shared.db.store(db, Ordering::Relaxed);
    }

    /// Runs as the default user, authenticated if it is on and needs no password (a new
    /// connection, RESET; Redis's `clientSetDefaultAuth`).
    pub fn log_in_as_default(&mut self, acl: &crate::acl::Acl) {
        let (user, generation) = acl.default_with_generation();
        self.authenticated = user.enabled && user.nopass;
        self.set_user(user, generation);
    }

    /// Runs as `user` from now on (AUTH, HELLO AUTH, a new connection, RESET).
    pub fn set_user(&mut self, user: Arc<crate::acl::User>, generation: u64) {
        self.shared.meta.lock().user = user.name.clone();
        self.user = Some(user);
        self.acl_generation = generation;
    }

    pub fn set_protocol(&mut self, p: Protocol) {
        self.protocol = p;
        self.shared
            .resp
            .store(p.version() as usize, Ordering::Relaxed);
    }
}
