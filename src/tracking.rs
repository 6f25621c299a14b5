//! Client-side caching (CLIENT TRACKING), as Redis's `tracking.c`.
//!
//! * **Default mode**: the keys a tracking client's read-only commands name go into the
//!   tracking table (key → client ids; keys of every database share one table, as in
//!   Redis). When a key changes, each client in its entry gets one invalidation and the
//!   entry goes: the next notice needs another read. OPTIN records only after `CLIENT
//!   CACHING yes`, OPTOUT skips after `CLIENT CACHING no`, for the next command.
//! * **BCAST**: no table; a change to a key under one of the client's prefixes (every
//!   key for none) is announced, the keys of one batch gathered per prefix.
//! * NOLOOP leaves out what the client itself changed. FLUSHDB and FLUSHALL send every
//!   tracking client a null invalidation and clear the table; SWAPDB, as in Redis, sends
//!   nothing.
//! * Delivery: the tracker is one more consumer of the keyspace's effect record, so
//!   writes, expiry (keys and fields) and evictions all invalidate. A RESP3 client gets
//!   `>2 invalidate [keys]` pushes; with REDIRECT the other client gets them, as a push if
//!   it speaks RESP3, else as a message on `__redis__:invalidate` if it subscribed.
//!   Messages go through the client's mailbox (`pubsub.rs`), which its connection drains
//!   after each reply: an invalidation a client's own write causes follows that write's
//!   reply, as in Redis 7.
//! * The table holds at most `tracking-table-max-keys` keys (0: no limit); past it, keys
//!   are invalidated for their clients and dropped.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::client::ClientShared;
use crate::keyspace::{Batch, Change};
use crate::pubsub::{Message, Outbox};

/// Redis's default `tracking-table-max-keys`.
pub const DEFAULT_MAX_KEYS: u64 = 1_000_000;

thread_local! {
    /// The client whose command is running on this thread (0: none, e.g. the sweeper):
    /// NOLOOP leaves its own changes out.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// Marks the client whose command runs on this thread until the returned guard drops.
pub fn running(client_id: u64) -> CurrentGuard {
    let before = CURRENT.with(|c| c.replace(client_id));
    CurrentGuard(before)
}

pub struct CurrentGuard(u64);

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

fn current() -> u64 {
    CURRENT.with(Cell::get)
}

/// How a client tracks (CLIENT TRACKING's options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

/// A client's tracking, as the connection keeps it (for its own commands).
#[derive(Clone, Debug, Default)]
pub struct ClientTracking {
    pub mode: Mode,
    /// The client invalidations go to (0: this one).
    pub redirect: u64,
    pub prefixes: Vec<Bytes>,
}

struct Tracked {
    mode: Mode,
    own: Outbox,
    redirect: Option<(u64, Weak<ClientShared>)>,
    prefixes: Vec<Bytes>,
    /// The redirect target was found gone (CLIENT TRACKINGINFO `broken_redirect`).
    broken: bool,
}

#[derive(Default)]
struct State {
    clients: HashMap<u64, Tracked>,
    /// The tracking table: key → clients that read it.
    keys: HashMap<Bytes, HashSet<u64>>,
    /// BCAST: prefix → clients.
    prefixes: BTreeMap<Bytes, HashSet<u64>>,
    /// Client entries in `keys`, summed (INFO `tracking_total_items`).
    items: usize,
}

/// Every tracking client, the tracking table and the BCAST prefixes.
pub struct Tracker {
    /// Tracking clients: when 0, the effect record is not built for us, and reads skip
    /// the table (one load).
    clients: AtomicUsize,
    state: Mutex<State>,
    /// `tracking-table-max-keys` (0: no limit).
    pub max_keys: AtomicU64,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl Tracker {
    pub fn new(max_keys: u64) -> Self {
        Tracker {
            clients: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            max_keys: AtomicU64::new(max_keys),
        }
    }

    #[inline]
    pub fn active(&self) -> bool {
        self.clients.load(Ordering::Relaxed) > 0
    }

    /// Starts (or, with the same mode, updates) a client's tracking. `redirect` is the
    /// target's id and shared state (already checked to exist).
    pub fn enable(
        &self,
        id: u64,
        own: Outbox,
        t: &ClientTracking,
        redirect: Option<Weak<ClientShared>>,
    ) {
        let mut st = self.state.lock();
        let st = &mut *st;
        let fresh = !st.clients.contains_key(&id);
        // BCAST prefixes accumulate over repeated CLIENT TRACKING ON, as in Redis.
        let mut prefixes = st
            .clients
            .get(&id)
            .map(|c| c.prefixes.clone())
            .unwrap_or_default();
        if t.mode.bcast {
            let wanted: Vec<Bytes> = if t.prefixes.is_empty() {
                vec![Bytes::new()]
            } else {
                t.prefixes.clone()
            };
            for p in wanted {
                if !prefixes.contains(&p) {
                    st.prefixes.entry(p.clone()).or_default().insert(id);
                    prefixes.push(p);
                }
            }
        }
        let shared = own.client();
        let mut flags = crate::client::TRACKING_ON;
        if t.mode.bcast {
            flags |= crate::client::TRACKING_BCAST;
        }
        shared.tracking_flags.store(flags, Ordering::Relaxed);
        shared
            .tracking_redir
            .store(t.redirect as i64, Ordering::Relaxed);
        st.clients.insert(
            id,
            Tracked {
                mode: t.mode,
                own,
                redirect: redirect.map(|w| (t.redirect, w)),
                prefixes,
                broken: false,
            },
        );
        if fresh {
            self.clients.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ends a client's tracking (CLIENT TRACKING OFF, RESET, disconnect). Its table
    /// entries are dropped lazily, when their keys are next invalidated.
    pub fn disable(&self, id: u64) {
        let mut st = self.state.lock();
        if let Some(c) = st.clients.remove(&id) {
            let shared = c.own.client();
            shared.tracking_flags.store(0, Ordering::Relaxed);
            shared.tracking_redir.store(-1, Ordering::Relaxed);
            for p in &c.prefixes {
                if let Some(set) = st.prefixes.get_mut(p) {
                    set.remove(&id);
                    if set.is_empty() {
                        st.prefixes.remove(p);
                    }
                }
            }
            self.clients.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The client's prefixes, in the order given (CLIENT TRACKINGINFO).
    pub fn prefixes(&self, id: u64) -> Vec<Bytes> {
        self.state
            .lock()
            .clients
            .get(&id)
            .map(|c| c.prefixes.clone())
            .unwrap_or_default()
    }

    /// Whether the client's redirect target was found gone.
    pub fn redirect_broken(&self, id: u64) -> bool {
        self.state.lock().clients.get(&id).is_some_and(|c| c.broken)
    }

    /// Remembers that client `id` read `keys` (default mode).
    pub fn remember<'k>(&self, id: u64, keys: impl Iterator<Item = &'k [u8]>) {
        let mut st = self.state.lock();
        let st = &mut *st;
        for key in keys {
            let set = st.keys.entry(Bytes::copy_from_slice(key)).or_default();
            if set.insert(id) {
                st.items += 1;
            }
        }
        let max = self.max_keys.load(Ordering::Relaxed) as usize;
        if max > 0 && st.keys.len() > max {
            let over = st.keys.len() - max;
            let victims: Vec<Bytes> = st.keys.keys().take(over).cloned().collect();
            for key in victims {
                Self::invalidate_key(st, &key, 0);
            }
        }
    }

    /// INFO: `(tracking_clients, tracking_total_keys, tracking_total_items,
    /// tracking_total_prefixes)`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let st = self.state.lock();
        (st.clients.len(), st.keys.len(), st.items, st.prefixes.len())
    }

    /// Sends `msg` for tracking client `id`: to it, or to its redirect target.
    fn deliver(st: &mut State, id: u64, msg: Message) {
        let Some(c) = st.clients.get_mut(&id) else {
            return;
        };
        match &c.redirect {
            None => c.own.send(msg),
            Some((target, weak)) => {
                let outbox = weak
                    .upgrade()
                    .filter(|t| !t.is_killed())
                    .and_then(|t| t.outbox.lock().clone());
                match outbox {
                    Some(o) => o.send(msg),
                    // Each time, as Redis does.
                    None => {
                        c.broken = true;
                        c.own
                            .client()
                            .tracking_flags
                            .fetch_or(crate::client::TRACKING_BROKEN_REDIR, Ordering::Relaxed);
                        c.own.send(Message::RedirectBroken(*target));
                    }
                }
            }
        }
    }

    /// One key changed: its table entry's clients are told, and the entry goes.
    fn invalidate_key(st: &mut State, key: &[u8], writer: u64) {
        let Some(ids) = st.keys.remove(key) else {
            return;
        };
        st.items -= ids.len();
        for id in ids {
            let Some(c) = st.clients.get(&id) else {
                continue;
            };
            if c.mode.bcast || (c.mode.noloop && id == writer) {
                continue;
            }
            Self::deliver(
                st,
                id,
                Message::Invalidate(Some(vec![Bytes::copy_from_slice(key)])),
            );
        }
    }

    /// Everything changed (a flush): every tracking client is told, the table emptied.
    fn invalidate_all(st: &mut State) {
        st.keys.clear();
        st.items = 0;
        let ids: Vec<u64> = st.clients.keys().copied().collect();
        for id in ids {
            Self::deliver(st, id, Message::Invalidate(None));
        }
    }

    /// The effect record of one lock set: what changed, in lock order.
    pub fn publish(&self, batch: &Batch) {
        if !self.active() {
            return;
        }
        let writer = current();
        let mut st = self.state.lock();
        let st = &mut *st;
        // BCAST: (client, prefix) → keys, in the order changed.
        let mut broadcast: Vec<((u64, Bytes), Vec<Bytes>)> = Vec::new();
        for (_, effects) in batch.commands() {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            let mut flushed = false;
            for e in effects {
                let keys: [Option<&[u8]>; 2] = match &e.change {
                    // FLUSHALL is one effect per database: one notice for the command.
                    Change::Flushed => {
                        if !flushed {
                            flushed = true;
                            Self::invalidate_all(st);
                        }
                        continue;
                    }
                    // Redis does not invalidate on SWAPDB.
                    Change::Swapped { .. } => continue,
                    Change::Renamed { to, .. } => [Some(&e.key), Some(to)],
                    _ => [Some(&e.key), None],
                };
                for key in keys.into_iter().flatten() {
                    if !seen.insert(key) {
                        continue;
                    }
                    Self::invalidate_key(st, key, writer);
                    for (prefix, ids) in st.prefixes.iter() {
                        if !key.starts_with(prefix) {
                            continue;
                        }
                        for &id in ids {
                            let noloop = st.clients.get(&id).is_some_and(|c| c.mode.noloop);
                            if noloop && id == writer {
                                continue;
                            }
                            let k = (id, prefix.clone());
                            match broadcast.iter_mut().find(|(x, _)| *x == k) {
                                Some((_, keys)) => keys.push(Bytes::copy_from_slice(key)),
                                None => broadcast.push((k, vec![Bytes::copy_from_slice(key)])),
                            }
                        }
                    }
                }
            }
        }
        for ((id, _), keys) in broadcast {
            Self::deliver(st, id, Message::Invalidate(Some(keys)));
        }
    }
}

/// The id and shared state of a client (for REDIRECT), if connected.
pub fn find_client(clients: &crate::client::ClientRegistry, id: u64) -> Option<Arc<ClientShared>> {
    clients.get(id).filter(|c| !c.is_killed())
}
