//! Pub/sub delivery between connections.
//!
//! [`PubSub`] (in the server context) maps each channel and each pattern to the mailboxes of
//! the clients subscribed to it. A client gets its [`Subscriptions`] (its channel and pattern
//! sets plus the receiving end of a bounded mailbox) on its first SUBSCRIBE or PSUBSCRIBE;
//! clients that never subscribe carry nothing and their connection loop never polls a
//! mailbox.
//!
//! PUBLISH puts one shared [`Message`] in each receiver's mailbox and never waits: a
//! subscriber whose mailbox is full, or holds more than [`MAILBOX_LIMIT_BYTES`], is
//! disconnected, as Redis does when a pubsub client passes its output-buffer limit.
//! Messages are encoded when they are written out, in the subscriber's protocol.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::client::{ClientShared, ClientState};
use crate::protocol::Reply;

/// Messages a subscriber may have waiting before it is disconnected.
pub const MAILBOX_MESSAGES: usize = 64 * 1024;
/// Bytes of messages a subscriber may have waiting before it is disconnected: the hard
/// limit of Redis's default `client-output-buffer-limit pubsub 32mb 8mb 60`.
pub const MAILBOX_LIMIT_BYTES: usize = 32 * 1024 * 1024;
/// What one waiting message costs besides its bytes (RESP framing, bookkeeping).
const MESSAGE_OVERHEAD_BYTES: usize = 64;
/// Stop moving waiting messages into the output buffer once it holds this much; the
/// connection writes and comes back for the rest.
pub const DRAIN_BATCH_BYTES: usize = 64 * 1024;

/// The channel a RESP2 client redirected to by CLIENT TRACKING hears invalidations on.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// One message for a client's mailbox: published (shared by every receiver), or a
/// client-side caching notice (`tracking.rs`).
#[derive(Debug)]
pub enum Message {
    Published {
        /// The pattern that matched, for a `pmessage`.
        pattern: Option<Bytes>,
        channel: Bytes,
        payload: Bytes,
    },
    /// These keys changed (None: every key, after a flush).
    Invalidate(Option<Vec<Bytes>>),
    /// The client invalidations were redirected to is gone (its id).
    RedirectBroken(u64),
}

impl Message {
    fn cost(&self) -> usize {
        MESSAGE_OVERHEAD_BYTES
            + match self {
                Message::Published {
                    pattern,
                    channel,
                    payload,
                } => pattern.as_ref().map_or(0, Bytes::len) + channel.len() + payload.len(),
                Message::Invalidate(keys) => keys
                    .as_ref()
                    .map_or(0, |k| k.iter().map(|k| k.len() + 16).sum()),
                Message::RedirectBroken(_) => 0,
            }
    }

    /// `[message, channel, payload]` or `[pmessage, pattern, channel, payload]`: a push in
    /// RESP3, an array in RESP2. An invalidation is a `>2 invalidate [keys]` push in
    /// RESP3, and in RESP2 a `message` on `__redis__:invalidate` for a subscribed client
    /// (`subscribed`; others cannot tell it from a reply and get nothing, as in Redis).
    pub fn write(&self, reply: &mut Reply<'_>, subscribed: bool) {
        let resp3 = reply.protocol() == crate::protocol::Protocol::Resp3;
        match self {
            Message::Published {
                pattern,
                channel,
                payload,
            } => {
                match pattern {
                    None => {
                        reply.push(3);
                        reply.bulk(b"message");
                    }
                    Some(p) => {
                        reply.push(4);
                        reply.bulk(b"pmessage");
                        reply.bulk(p);
                    }
                }
                reply.bulk(channel);
                reply.bulk(payload);
            }
            Message::Invalidate(keys) => {
                if resp3 {
                    reply.push(2);
                    reply.bulk(b"invalidate");
                } else if subscribed {
                    reply.array(3);
                    reply.bulk(b"message");
                    reply.bulk(INVALIDATE_CHANNEL);
                } else {
                    return;
                }
                match keys {
                    Some(keys) => {
                        reply.array(keys.len());
                        keys.iter().for_each(|k| reply.bulk(k));
                    }
                    None => reply.null(),
                }
            }
            Message::RedirectBroken(id) => {
                if resp3 {
                    reply.push(2);
                    reply.bulk(b"tracking-redir-broken");
                    reply.int(*id as i64);
                }
            }
        }
    }
}

/// Where messages for one client go, outside the channel registry (client-side caching
/// delivers to a client by id).
#[derive(Clone, Debug)]
pub struct Outbox(Mailbox);

impl Outbox {
    pub fn send(&self, msg: Message) {
        self.0.deliver(Arc::new(msg));
    }

    /// The client it delivers to.
    pub fn client(&self) -> &Arc<ClientShared> {
        &self.0.client
    }
}

/// The client's outbox, creating its mailbox if it has none yet (a tracking client that
/// never subscribed). Published in its shared state, for others to deliver to.
pub fn outbox(client: &mut ClientState) -> Outbox {
    let shared = &client.shared;
    let subs = client
        .pubsub
        .get_or_insert_with(|| Box::new(Subscriptions::new(Arc::clone(shared))));
    Outbox(subs.mailbox.clone())
}

/// The sending side of a subscriber's mailbox, held by the registry.
#[derive(Clone, Debug)]
struct Mailbox {
    tx: mpsc::Sender<Arc<Message>>,
    pending_bytes: Arc<AtomicUsize>,
    client: Arc<ClientShared>,
}

impl Mailbox {
    fn deliver(&self, msg: Arc<Message>) {
        let cost = msg.cost();
        let pending = self.pending_bytes.fetch_add(cost, Ordering::Relaxed) + cost;
        if pending > MAILBOX_LIMIT_BYTES {
            self.client.kill();
            return;
        }
        match self.tx.try_send(msg) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => self.client.kill(),
        }
    }
}

type Subscribers = HashMap<u64, Mailbox, ahash::RandomState>;
type ByName = HashMap<Bytes, Subscribers, ahash::RandomState>;

#[derive(Debug, Default)]
struct Registry {
    channels: ByName,
    patterns: ByName,
}

fn add(map: &mut ByName, name: &Bytes, mailbox: &Mailbox) {
    map.entry(name.clone())
        .or_default()
        .insert(mailbox.client.id, mailbox.clone());
}

fn remove(map: &mut ByName, name: &[u8], id: u64) {
    if let Some(subs) = map.get_mut(name) {
        subs.remove(&id);
        // A channel nobody listens to is forgotten, so that PUBSUB CHANNELS and memory
        // only ever reflect live subscriptions.
        if subs.is_empty() {
            map.remove(name);
        }
    }
}

/// A subscribed client with its channels and patterns.
pub type Subscriber = (Arc<ClientShared>, Vec<Bytes>, Vec<Bytes>);

/// Every channel and pattern subscription of the server.
#[derive(Debug, Default)]
pub struct PubSub {
    registry: RwLock<Registry>,
    /// Clients subscribed to at least one channel or pattern.
    clients: AtomicUsize,
}

impl PubSub {
    /// Delivers `payload` to the subscribers of `channel` and of every pattern matching it
    /// (Redis's order: channel subscribers first). Returns how many deliveries were made; a
    /// client subscribed both ways counts twice.
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let reg = self.registry.read();
        let direct = reg.channels.get(channel);
        let mut shared: Option<(Bytes, Bytes)> = None;
        let mut bytes = || {
            shared
                .get_or_insert_with(|| {
                    (
                        Bytes::copy_from_slice(channel),
                        Bytes::copy_from_slice(payload),
                    )
                })
                .clone()
        };
        let mut receivers = 0;
        if let Some(subs) = direct {
            let (channel, payload) = bytes();
            let msg = Arc::new(Message::Published {
                pattern: None,
                channel,
                payload,
            });
            for mailbox in subs.values() {
                mailbox.deliver(Arc::clone(&msg));
            }
            receivers += subs.len();
        }
        for (pattern, subs) in &reg.patterns {
            if !crate::glob::matches(pattern, channel, false) {
                continue;
            }
            let (channel, payload) = bytes();
            let msg = Arc::new(Message::Published {
                pattern: Some(pattern.clone()),
                channel,
                payload,
            });
            for mailbox in subs.values() {
                mailbox.deliver(Arc::clone(&msg));
            }
            receivers += subs.len();
        }
        receivers
    }

    /// Channels with at least one subscriber, matching `pattern` if given (PUBSUB CHANNELS).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.registry
            .read()
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| crate::glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel`, not counting pattern subscriptions (PUBSUB NUMSUB).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.registry
            .read()
            .channels
            .get(channel)
            .map_or(0, Subscribers::len)
    }

    /// Distinct patterns subscribed to by any client (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.registry.read().patterns.len()
    }

    /// Channels with at least one subscriber (INFO `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.registry.read().channels.len()
    }

    /// Every subscriber with its channels and patterns: (client, channels, patterns). For
    /// ACL changes, which disconnect subscribers whose subscriptions are no longer allowed.
    pub fn subscribers(&self) -> Vec<Subscriber> {
        let reg = self.registry.read();
        let mut by_client: HashMap<u64, Subscriber> = HashMap::new();
        for (name, subs) in &reg.channels {
            for m in subs.values() {
                by_client
                    .entry(m.client.id)
                    .or_insert_with(|| (Arc::clone(&m.client), Vec::new(), Vec::new()))
                    .1
                    .push(name.clone());
            }
        }
        for (name, subs) in &reg.patterns {
            for m in subs.values() {
                by_client
                    .entry(m.client.id)
                    .or_insert_with(|| (Arc::clone(&m.client), Vec::new(), Vec::new()))
                    .2
                    .push(name.clone());
            }
        }
        by_client.into_values().collect()
    }

    /// Clients subscribed to anything (INFO `pubsub_clients`).
    pub fn client_count(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }
}

/// A client's subscriptions and the receiving end of its mailbox.
#[derive(Debug)]
pub struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    rx: mpsc::Receiver<Arc<Message>>,
    mailbox: Mailbox,
}

impl Subscriptions {
    fn new(client: Arc<ClientShared>) -> Self {
        let (tx, rx) = mpsc::channel(MAILBOX_MESSAGES);
        let mailbox = Mailbox {
            tx,
            pending_bytes: Arc::new(AtomicUsize::new(0)),
            client: Arc::clone(&client),
        };
        *client.outbox.lock() = Some(Outbox(mailbox.clone()));
        Subscriptions {
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            rx,
            mailbox,
        }
    }

    /// Channels plus patterns: the count every (un)subscribe message reports.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    fn taken(&self, msg: &Message) {
        self.mailbox
            .pending_bytes
            .fetch_sub(msg.cost(), Ordering::Relaxed);
    }

    /// The next message; waits for one. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Arc<Message>> {
        let msg = self.rx.recv().await?;
        self.taken(&msg);
        Some(msg)
    }

    fn try_recv(&mut self) -> Option<Arc<Message>> {
        let msg = self.rx.try_recv().ok()?;
        self.taken(&msg);
        Some(msg)
    }
}

/// Which kind of subscription a call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
}

impl Kind {
    fn set(self, subs: &mut Subscriptions) -> &mut BTreeSet<Bytes> {
        match self {
            Kind::Channel => &mut subs.channels,
            Kind::Pattern => &mut subs.patterns,
        }
    }

    fn map(self, reg: &mut Registry) -> &mut ByName {
        match self {
            Kind::Channel => &mut reg.channels,
            Kind::Pattern => &mut reg.patterns,
        }
    }
}

/// Publishes the client's subscription counts (CLIENT LIST) and keeps the count of
/// subscribed clients.
fn sync_counts(server: &PubSub, client: &ClientState) {
    let (subs, psubs) = client
        .pubsub
        .as_ref()
        .map_or((0, 0), |s| (s.channels.len(), s.patterns.len()));
    let was = client.shared.is_pubsub();
    client.shared.subs.store(subs, Ordering::Relaxed);
    client.shared.psubs.store(psubs, Ordering::Relaxed);
    match (was, subs + psubs > 0) {
        (false, true) => {
            server.clients.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            server.clients.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Subscribes the client to `name` (a no-op if it already is). Returns the client's
/// subscription count afterwards.
pub fn subscribe(server: &PubSub, client: &mut ClientState, kind: Kind, name: &[u8]) -> usize {
    let shared = &client.shared;
    let subs = client
        .pubsub
        .get_or_insert_with(|| Box::new(Subscriptions::new(Arc::clone(shared))));
    let set = kind.set(subs);
    if !set.contains(name) {
        let name = Bytes::copy_from_slice(name);
        set.insert(name.clone());
        add(kind.map(&mut server.registry.write()), &name, &subs.mailbox);
    }
    let count = subs.count();
    sync_counts(server, client);
    count
}

/// Unsubscribes the client from `name` (a no-op if it is not subscribed). Returns the
/// client's subscription count afterwards.
pub fn unsubscribe(server: &PubSub, client: &mut ClientState, kind: Kind, name: &[u8]) -> usize {
    let Some(subs) = client.pubsub.as_mut() else {
        return 0;
    };
    if kind.set(subs).remove(name) {
        remove(kind.map(&mut server.registry.write()), name, client.id);
    }
    let count = subs.count();
    sync_counts(server, client);
    count
}

/// The client's channels or patterns, in byte order.
pub fn subscribed(client: &ClientState, kind: Kind) -> Vec<Bytes> {
    client.pubsub.as_ref().map_or_else(Vec::new, |s| {
        let set = match kind {
            Kind::Channel => &s.channels,
            Kind::Pattern => &s.patterns,
        };
        set.iter().cloned().collect()
    })
}

/// Drops every subscription and the mailbox with whatever it still holds (RESET, and the
/// connection closing).
pub fn forget(server: &PubSub, client: &mut ClientState) {
    let Some(subs) = client.pubsub.take() else {
        return;
    };
    *client.shared.outbox.lock() = None;
    if subs.count() > 0 {
        let mut reg = server.registry.write();
        for c in &subs.channels {
            remove(&mut reg.channels, c, client.id);
        }
        for p in &subs.patterns {
            remove(&mut reg.patterns, p, client.id);
        }
    }
    sync_counts(server, client);
}

/// Moves waiting messages into `out`, encoded in the client's protocol, until the mailbox
/// is empty or `out` holds [`DRAIN_BATCH_BYTES`]. Costs one branch for a client that never
/// subscribed.
pub fn drain(client: &mut ClientState, out: &mut Vec<u8>) {
    let Some(subs) = client.pubsub.as_mut() else {
        return;
    };
    let subscribed = subs.count() > 0;
    let mut reply = Reply::new(out, client.protocol);
    while reply.len() < DRAIN_BATCH_BYTES {
        match subs.try_recv() {
            Some(msg) => msg.write(&mut reply, subscribed),
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    fn client(id: u64) -> ClientState {
        ClientState::new(Arc::new(ClientShared::new(id, None, None, 0)), true)
    }

    fn drained(c: &mut ClientState) -> String {
        let mut out = Vec::new();
        drain(c, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn publish_reaches_channel_then_pattern_subscribers() {
        let ps = PubSub::default();
        let mut a = client(1);
        let mut b = client(2);
        assert_eq!(subscribe(&ps, &mut a, Kind::Channel, b"news"), 1);
        assert_eq!(subscribe(&ps, &mut a, Kind::Pattern, b"n*"), 2);
        assert_eq!(subscribe(&ps, &mut b, Kind::Pattern, b"n*"), 1);
        assert_eq!(ps.publish(b"news", b"hi"), 3);
        assert_eq!(ps.publish(b"other", b"x"), 0);
        assert_eq!(
            drained(&mut a),
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n\
             *4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        b.set_protocol(Protocol::Resp3);
        assert_eq!(
            drained(&mut b),
            ">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(ps.numpat(), 1);
        assert_eq!(ps.numsub(b"news"), 1);
    }

    #[test]
    fn patterns_are_case_sensitive_globs() {
        let ps = PubSub::default();
        let mut a = client(1);
        subscribe(&ps, &mut a, Kind::Pattern, b"h[ae]llo");
        assert_eq!(ps.publish(b"hello", b""), 1);
        assert_eq!(ps.publish(b"hallo", b""), 1);
        assert_eq!(ps.publish(b"Hello", b""), 0);
        assert_eq!(ps.publish(b"hillo", b""), 0);
    }

    #[test]
    fn subscribing_twice_counts_once_and_forget_cleans_up() {
        let ps = PubSub::default();
        let mut a = client(1);
        assert_eq!(subscribe(&ps, &mut a, Kind::Channel, b"c"), 1);
        assert_eq!(subscribe(&ps, &mut a, Kind::Channel, b"c"), 1);
        assert_eq!(a.shared.subs.load(Ordering::Relaxed), 1);
        assert_eq!(ps.client_count(), 1);
        assert_eq!(ps.publish(b"c", b"x"), 1);
        assert_eq!(unsubscribe(&ps, &mut a, Kind::Channel, b"nope"), 1);
        forget(&ps, &mut a);
        assert!(a.pubsub.is_none());
        assert_eq!(a.shared.subs.load(Ordering::Relaxed), 0);
        assert_eq!(ps.client_count(), 0);
        assert_eq!(ps.channel_count(), 0);
        assert_eq!(ps.publish(b"c", b"x"), 0);
    }

    #[test]
    fn a_full_mailbox_disconnects_the_subscriber() {
        let ps = PubSub::default();
        let mut a = client(1);
        subscribe(&ps, &mut a, Kind::Channel, b"c");
        let big = vec![b'x'; MAILBOX_LIMIT_BYTES / 4];
        for _ in 0..3 {
            ps.publish(b"c", &big);
        }
        assert!(!a.shared.is_killed());
        ps.publish(b"c", &big);
        assert!(a.shared.is_killed());
    }

    #[test]
    fn draining_stops_at_the_batch_size() {
        let ps = PubSub::default();
        let mut a = client(1);
        subscribe(&ps, &mut a, Kind::Channel, b"c");
        let chunk = vec![b'x'; DRAIN_BATCH_BYTES / 2];
        for _ in 0..4 {
            ps.publish(b"c", &chunk);
        }
        let mut out = Vec::new();
        drain(&mut a, &mut out);
        assert!(out.len() >= DRAIN_BATCH_BYTES && out.len() < 2 * DRAIN_BATCH_BYTES);
        out.clear();
        drain(&mut a, &mut out);
        assert!(out.len() >= DRAIN_BATCH_BYTES);
        out.clear();
        drain(&mut a, &mut out);
        assert!(out.is_empty());
    }
}
