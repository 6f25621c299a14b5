//! Keyspace notifications: the first consumer of the effect record.
//!
//! [`Notifier`] turns each published [`Batch`] into Redis 8's pub/sub events, byte for
//! byte: the classic `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>` channels and
//! Redis 8.8's four subkey channels (`S`, `T`, `I`, `V`). The event names, their classes and
//! their order follow Redis (`notify.c`, `t_hash.c`, `db.c`; spec/formats.md §5):
//!
//! * a write's events come in the order of its effects on each key, one event per name
//!   with the fields of every effect that maps to it (HSET of three fields is one `hset`
//!   carrying three subkeys; HSETEX is `hset` then `hexpire`);
//! * fields reclaimed because they expired are one `hexpired` per key per pass (a command's
//!   lazy reclaim, or one sweeper batch), then `del` if the hash is gone;
//! * `new` comes before the first event of a key that a write created.
//!
//! Nothing is built unless a class and a channel type are enabled and some client is
//! subscribed to something ([`Notifier::interested`], asked when a command takes its locks).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::keyspace::{Batch, Cause, Change, Effect, EffectSink, TtlUpdate};
use crate::pubsub::PubSub;

/// Notification class and channel flags (`notify-keyspace-events` letters).
pub mod class {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 12; // d
    pub const NEW: u32 = 1 << 13; // n
    pub const OVERWRITTEN: u32 = 1 << 14; // o
    pub const TYPE_CHANGED: u32 = 1 << 15; // c
    pub const RATE_LIMIT: u32 = 1 << 16; // r
    pub const SUBKEYSPACE: u32 = 1 << 17; // S
    pub const SUBKEYEVENT: u32 = 1 << 18; // T
    pub const SUBKEYSPACEITEM: u32 = 1 << 19; // I
    pub const SUBKEYSPACEEVENT: u32 = 1 << 20; // V
    /// `A`: every class of data events (not m, n, o, c, r, nor any channel type).
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
    /// The channel types: without one of these nothing is published.
    pub const CHANNELS: u32 =
        KEYSPACE | KEYEVENT | SUBKEYSPACE | SUBKEYEVENT | SUBKEYSPACEITEM | SUBKEYSPACEEVENT;
    pub const SUBKEY_CHANNELS: u32 = SUBKEYSPACE | SUBKEYEVENT | SUBKEYSPACEITEM | SUBKEYSPACEEVENT;
}

/// Why a `notify-keyspace-events` value is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagsError {
    /// A letter Redis does not know (Redis's generic "Invalid event class character").
    Invalid,
    /// `m` (key-miss events): Redis knows it, hashd does not publish them, so it refuses
    /// rather than accept a setting it would ignore.
    KeyMissUnsupported,
}

impl std::fmt::Display for FlagsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Redis 7.4's text, letter list included.
            FlagsError::Invalid => {
                f.write_str("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
            }
            FlagsError::KeyMissUnsupported => {
                f.write_str("hashd does not publish key-miss ('m') events")
            }
        }
    }
}

/// Redis's `keyspaceEventsStringToFlags`.
pub fn parse_flags(text: &[u8]) -> Result<u32, FlagsError> {
    let mut flags = 0;
    for &c in text {
        flags |= match c {
            b'A' => class::ALL,
            b'g' => class::GENERIC,
            b'$' => class::STRING,
            b'l' => class::LIST,
            b's' => class::SET,
            b'h' => class::HASH,
            b'z' => class::ZSET,
            b'x' => class::EXPIRED,
            b'e' => class::EVICTED,
            b'K' => class::KEYSPACE,
            b'E' => class::KEYEVENT,
            b't' => class::STREAM,
            b'm' => return Err(FlagsError::KeyMissUnsupported),
            b'd' => class::MODULE,
            b'n' => class::NEW,
            b'o' => class::OVERWRITTEN,
            b'c' => class::TYPE_CHANGED,
            b'r' => class::RATE_LIMIT,
            b'S' => class::SUBKEYSPACE,
            b'T' => class::SUBKEYEVENT,
            b'I' => class::SUBKEYSPACEITEM,
            b'V' => class::SUBKEYSPACEEVENT,
            _ => return Err(FlagsError::Invalid),
        };
    }
    Ok(flags)
}

/// Redis's `keyspaceEventsFlagsToString`: the canonical spelling CONFIG GET answers
/// (`KA` reads back as `AK`). As in Redis, `A` stands for the whole data-class set, and
/// `n`, `o`, `c`, `r` are only spelled out when `A` is not.
pub fn format_flags(flags: u32) -> String {
    use class::*;
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
            (OVERWRITTEN, 'o'),
            (TYPE_CHANGED, 'c'),
            (RATE_LIMIT, 'r'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [
        (KEYSPACE, 'K'),
        (KEYEVENT, 'E'),
        (KEY_MISS, 'm'),
        (SUBKEYSPACE, 'S'),
        (SUBKEYEVENT, 'T'),
        (SUBKEYSPACEITEM, 'I'),
        (SUBKEYSPACEEVENT, 'V'),
    ] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The keyspace-notification consumer of effect batches.
pub struct Notifier {
    flags: AtomicU32,
    pubsub: Arc<PubSub>,
}

impl Notifier {
    pub fn new(flags: u32, pubsub: Arc<PubSub>) -> Self {
        Notifier {
            flags: AtomicU32::new(flags),
            pubsub,
        }
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }
}

/// One event about to be published: its class, name, key and subkeys.
struct Event<'a> {
    class: u32,
    name: &'static str,
    db: usize,
    key: &'a [u8],
    fields: Vec<&'a [u8]>,
}

impl EffectSink for Notifier {
    fn interested(&self) -> bool {
        let f = self.flags();
        f & class::CHANNELS != 0 && f & !class::CHANNELS != 0 && self.pubsub.client_count() > 0
    }

    fn publish(&self, batch: &Batch) {
        let flags = self.flags();
        if flags & class::CHANNELS == 0 {
            return;
        }
        let mut out = Publisher {
            flags,
            pubsub: &self.pubsub,
            channel: Vec::new(),
            payload: Vec::new(),
        };
        for (command, effects) in batch.commands() {
            events_of(command, effects, &mut |e| out.publish(&e));
        }
    }
}

/// The name of the event a field write by `command` gives.
fn set_event(command: Option<&str>) -> &'static str {
    match command {
        Some("hincrby") => "hincrby",
        Some("hincrbyfloat") => "hincrbyfloat",
        _ => "hset",
    }
}

/// Maps one command's effects to its events, in Redis's order, calling `emit` for each.
fn events_of<'a>(command: Option<&str>, effects: &'a [Effect], emit: &mut impl FnMut(Event<'a>)) {
    // Events of the current key, in order of first appearance, fields accumulated.
    let mut run: Vec<Event<'a>> = Vec::new();
    let mut run_key: Option<(usize, &'a [u8])> = None;
    let flush = |run: &mut Vec<Event<'a>>, emit: &mut dyn FnMut(Event<'a>)| {
        for e in run.drain(..) {
            emit(e);
        }
    };
    for effect in effects {
        let key: &'a [u8] = &effect.key;
        if run_key != Some((effect.db, key)) {
            flush(&mut run, emit);
            run_key = Some((effect.db, key));
        }
        let mut add = |class: u32, name: &'static str, field: Option<&'a [u8]>| {
            let pos = match run.iter().position(|e| e.name == name) {
                Some(p) => p,
                None => {
                    run.push(Event {
                        class,
                        name,
                        db: effect.db,
                        key,
                        fields: Vec::new(),
                    });
                    run.len() - 1
                }
            };
            if let Some(f) = field {
                run[pos].fields.push(f);
            }
        };
        match &effect.change {
            Change::KeyCreated => add(class::NEW, "new", None),
            Change::FieldSet { field, ttl, .. } => {
                add(class::HASH, set_event(command), Some(field));
                if let TtlUpdate::Set(_) = ttl {
                    add(class::HASH, "hexpire", Some(field));
                }
            }
            Change::FieldTtl { field, deadline } => {
                let name = if deadline.is_some() {
                    "hexpire"
                } else {
                    "hpersist"
                };
                add(class::HASH, name, Some(field));
            }
            Change::FieldDeleted { field } => {
                let name = if effect.cause == Cause::Expired {
                    "hexpired"
                } else {
                    "hdel"
                };
                add(class::HASH, name, Some(field));
            }
            Change::KeyTtl { deadline } => {
                let name = if deadline.is_some() {
                    "expire"
                } else {
                    "persist"
                };
                add(class::GENERIC, name, None);
            }
            Change::KeyDeleted { emptied } => match (emptied, effect.cause) {
                (false, Cause::Expired) => add(class::EXPIRED, "expired", None),
                (false, Cause::Evicted) => add(class::EVICTED, "evicted", None),
                _ => add(class::GENERIC, "del", None),
            },
            Change::Renamed { to, replaced } => {
                flush(&mut run, emit);
                let to: &'a [u8] = to;
                let event = |class, name, key| Event {
                    class,
                    name,
                    db: effect.db,
                    key,
                    fields: Vec::new(),
                };
                // db.c renameGenericCommand: the destination is added (`new`), then the
                // two rename events, then `overwritten` if it replaced a key.
                emit(event(class::NEW, "new", to));
                emit(event(class::GENERIC, "rename_from", key));
                emit(event(class::GENERIC, "rename_to", to));
                if *replaced {
                    emit(event(class::OVERWRITTEN, "overwritten", to));
                }
                run_key = None;
            }
            Change::Restored { replaced, .. } => {
                // cluster.c restoreCommand: dbAdd (`new`), `restore`, then `overwritten`.
                add(class::NEW, "new", None);
                add(class::GENERIC, "restore", None);
                if *replaced {
                    add(class::OVERWRITTEN, "overwritten", None);
                }
            }
            // FLUSHDB, FLUSHALL and SWAPDB publish no keyspace events in Redis.
            Change::Flushed | Change::Swapped { .. } => {}
        }
    }
    flush(&mut run, emit);
}

/// Builds channels and payloads in reused buffers and publishes them.
struct Publisher<'p> {
    flags: u32,
    pubsub: &'p PubSub,
    channel: Vec<u8>,
    payload: Vec<u8>,
}

impl Publisher<'_> {
    /// Redis's `notifyKeyspaceEventImpl`: the class gate, then K, E, and (for events with
    /// subkeys) S, T, I, V in that order, with their skip rules.
    fn publish(&mut self, e: &Event<'_>) {
        use class::*;
        let flags = self.flags;
        if flags & e.class == 0 {
            return;
        }
        let db = itoa::Buffer::new().format(e.db).to_owned();
        if flags & KEYSPACE != 0 {
            self.channel(&["__keyspace@", &db, "__:"], &[e.key]);
            self.send(e.name.as_bytes());
        }
        if flags & KEYEVENT != 0 {
            self.channel(&["__keyevent@", &db, "__:", e.name], &[]);
            let key = e.key;
            self.send(key);
        }
        if e.fields.is_empty() || flags & SUBKEY_CHANNELS == 0 {
            return;
        }
        let bar_in_event = e.name.contains('|');
        if flags & SUBKEYSPACE != 0 && !bar_in_event {
            self.channel(&["__subkeyspace@", &db, "__:"], &[e.key]);
            self.payload.clear();
            self.payload.extend_from_slice(e.name.as_bytes());
            self.payload.push(b'|');
            self.subkeys(&e.fields);
            self.send_payload();
        }
        if flags & SUBKEYEVENT != 0 {
            self.channel(&["__subkeyevent@", &db, "__:", e.name], &[]);
            self.payload.clear();
            let _ = write!(Fmt(&mut self.payload), "{}:", e.key.len());
            self.payload.extend_from_slice(e.key);
            self.payload.push(b'|');
            self.subkeys(&e.fields);
            self.send_payload();
        }
        if flags & SUBKEYSPACEITEM != 0 && !e.key.contains(&b'\n') {
            for f in &e.fields {
                self.channel(&["__subkeyspaceitem@", &db, "__:"], &[e.key, b"\n", f]);
                self.send(e.name.as_bytes());
            }
        }
        if flags & SUBKEYSPACEEVENT != 0 && !bar_in_event {
            self.channel(&["__subkeyspaceevent@", &db, "__:", e.name, "|"], &[e.key]);
            self.payload.clear();
            self.subkeys(&e.fields);
            self.send_payload();
        }
    }

    fn channel(&mut self, text: &[&str], bytes: &[&[u8]]) {
        self.channel.clear();
        for t in text {
            self.channel.extend_from_slice(t.as_bytes());
        }
        for b in bytes {
            self.channel.extend_from_slice(b);
        }
    }

    /// `<len>:<subkey>` joined by `,` (notify.c `catSubkeysPayload`).
    fn subkeys(&mut self, fields: &[&[u8]]) {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.payload.push(b',');
            }
            let _ = write!(Fmt(&mut self.payload), "{}:", f.len());
            self.payload.extend_from_slice(f);
        }
    }

    fn send(&mut self, payload: &[u8]) {
        self.pubsub.publish(&self.channel, payload);
    }

    fn send_payload(&mut self) {
        self.pubsub.publish(&self.channel, &self.payload);
    }
}

/// `fmt::Write` into a byte buffer.
struct Fmt<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientState;
    use crate::cmd::testing::TestEnv;
    use crate::cmd::OwnedArgs;
    use crate::protocol::Protocol;

    #[test]
    fn flags_parse_and_format_like_redis() {
        let canon = |s: &str| format_flags(parse_flags(s.as_bytes()).unwrap());
        assert_eq!(canon("KA"), "AK");
        assert_eq!(canon("KEA"), "AKE");
        assert_eq!(canon("Khg"), "ghK");
        assert_eq!(canon("Ex"), "xE");
        assert_eq!(canon(""), "");
        assert_eq!(canon("hSTIV"), "hSTIV");
        assert_eq!(canon("VITShK"), "hKSTIV");
        assert_eq!(canon("KEn"), "nKE");
        assert_eq!(canon("g$lshzxetd"), "A");
        // As in Redis, `A` hides n/o/c when printing.
        assert_eq!(canon("AnK"), "AK");
        assert_eq!(parse_flags(b"KEQ"), Err(FlagsError::Invalid));
        assert_eq!(parse_flags(b"Km"), Err(FlagsError::KeyMissUnsupported));
    }

    /// A second client of the test server, subscribed to every notification channel.
    struct Subscriber {
        client: ClientState,
    }

    impl Subscriber {
        fn new(env: &TestEnv, protocol: Protocol) -> Self {
            let mut client = ClientState::for_tests();
            client.set_protocol(protocol);
            let mut out = Vec::new();
            let args = OwnedArgs::from_slices(&["PSUBSCRIBE", "__*"]);
            crate::cmd::dispatch(&env.server, &mut client, args.as_args(), &mut out);
            Subscriber { client }
        }

        /// Raw frames received since the last call.
        fn raw(&mut self) -> Vec<u8> {
            let mut out = Vec::new();
            crate::pubsub::drain(&mut self.client, &mut out);
            out
        }

        /// `(channel, payload)` of each pmessage received since the last call.
        fn messages(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
            let raw = self.raw();
            let mut pos = 0;
            let line = |pos: &mut usize| -> Vec<u8> {
                let end = raw[*pos..].windows(2).position(|w| w == b"\r\n").unwrap() + *pos;
                let l = raw[*pos..end].to_vec();
                *pos = end + 2;
                l
            };
            let mut msgs = Vec::new();
            while pos < raw.len() {
                let head = line(&mut pos);
                assert!(head == b"*4" || head == b">4", "{head:?}");
                let mut parts = Vec::new();
                for _ in 0..4 {
                    let len: usize = std::str::from_utf8(&line(&mut pos)[1..])
                        .unwrap()
                        .parse()
                        .unwrap();
                    parts.push(raw[pos..pos + len].to_vec());
                    pos += len + 2;
                }
                msgs.push((parts[2].clone(), parts[3].clone()));
            }
            msgs
        }

        /// The keyspace-channel events since the last call, as `event key`.
        fn events(&mut self) -> Vec<String> {
            self.messages()
                .into_iter()
                .filter_map(|(c, p)| {
                    let c = String::from_utf8(c).unwrap();
                    let key = c
                        .strip_prefix("__keyspace@")?
                        .split_once("__:")?
                        .1
                        .to_string();
                    Some(format!("{} {key}", String::from_utf8(p).unwrap()))
                })
                .collect()
        }
    }

    /// Runs `setup`, then `cmds`, with `flags`; returns the keyspace events of `cmds`.
    fn events_for(flags: &str, setup: &[&str], cmds: &[&str], protocol: Protocol) -> Vec<String> {
        let mut env = TestEnv::new();
        env.run(&format!("CONFIG SET notify-keyspace-events {flags}"));
        let mut sub = Subscriber::new(&env, protocol);
        for c in setup {
            run_step(&mut env, c);
        }
        sub.events();
        for c in cmds {
            run_step(&mut env, c);
        }
        sub.events()
    }

    /// A command, or a test step: `+N` advances the clock N ms, `sweep` runs an active
    /// expiry cycle.
    fn run_step(env: &mut TestEnv, step: &str) {
        if let Some(ms) = step.strip_prefix('+') {
            env.advance_ms(ms.parse().unwrap());
        } else if step == "sweep" {
            crate::sweeper::sweep_cycle(&env.server, std::time::Duration::from_secs(60));
        } else {
            let reply = env.run(step);
            assert!(!reply.starts_with('-'), "{step}: {reply}");
        }
    }

    /// Every command and event of spec §5.1 and the 8.8 source, in Redis's order.
    #[test]
    fn events_per_command_in_redis_order() {
        let base = ["HSET k a 1 b 2"];
        let ttl_a = ["HSET k a 1 b 2", "HPEXPIRE k 10 FIELDS 1 a"];
        let rows: &[(&[&str], &[&str], &[&str])] = &[
            (&[], &["HSET k a 1 b 2"], &["new k", "hset k"]),
            (&base, &["HSET k a 3"], &["hset k"]),
            (&base, &["HMSET k c 1"], &["hset k"]),
            (&base, &["HSETNX k a 9", "HSETNX k c 9"], &["hset k"]),
            (&base, &["HDEL k a x"], &["hdel k"]),
            (&base, &["HDEL k a b"], &["hdel k", "del k"]),
            (&base, &["HDEL k zz"], &[]),
            (&base, &["HINCRBY k n 1"], &["hincrby k"]),
            (&base, &["HINCRBYFLOAT k n 1.5"], &["hincrbyfloat k"]),
            (&base, &["HEXPIRE k 100 FIELDS 2 a zz"], &["hexpire k"]),
            (
                &base,
                &["HEXPIRE k 100 NX FIELDS 1 a", "HEXPIRE k 100 NX FIELDS 1 a"],
                &["hexpire k"],
            ),
            (&base, &["HPEXPIRE k 0 FIELDS 1 a"], &["hdel k"]),
            (
                &base,
                &["HPEXPIREAT k 1 FIELDS 2 a b"],
                &["hdel k", "del k"],
            ),
            (&ttl_a, &["HPERSIST k FIELDS 2 a b"], &["hpersist k"]),
            (&base, &["HPERSIST k FIELDS 1 a"], &[]),
            (&base, &["HGETDEL k FIELDS 1 a"], &["hdel k"]),
            (&base, &["HGETDEL k FIELDS 2 a b"], &["hdel k", "del k"]),
            (
                &ttl_a,
                &["+11", "HGETDEL k FIELDS 2 a b"],
                &["hexpired k", "hdel k", "del k"],
            ),
            (&base, &["HGETEX k EX 100 FIELDS 1 a"], &["hexpire k"]),
            (&ttl_a, &["HGETEX k PERSIST FIELDS 2 a b"], &["hpersist k"]),
            (
                &base,
                &["HGETEX k PXAT 1 FIELDS 2 a b"],
                &["hdel k", "del k"],
            ),
            (&base, &["HGETEX k FIELDS 1 a"], &[]),
            (
                &[],
                &["HSETEX k EX 100 FIELDS 1 a 1"],
                &["new k", "hset k", "hexpire k"],
            ),
            (&base, &["HSETEX k KEEPTTL FIELDS 1 a 1"], &["hset k"]),
            (
                &[],
                &["HSETEX k PXAT 1 FIELDS 1 a 1"],
                &["new k", "hset k", "hdel k", "del k"],
            ),
            (&base, &["HSETEX k FXX FIELDS 1 zz 1"], &[]),
            // Lazy expiry: one hexpired per key per pass, then del if the hash is gone.
            (&ttl_a, &["+11", "HGET k a"], &["hexpired k"]),
            (&ttl_a, &["+11", "HGETALL k"], &[]),
            (
                &["HSET k a 1 b 2", "HPEXPIRE k 10 FIELDS 2 a b"],
                &["+11", "HMGET k a b"],
                &["hexpired k", "del k"],
            ),
            (
                &["HSET k a 1 b 2", "HPEXPIRE k 10 FIELDS 2 a b"],
                &["+11", "EXISTS k"],
                &["hexpired k", "del k"],
            ),
            (&ttl_a, &["+11", "HSET k c 3"], &["hexpired k", "hset k"]),
            // Active expiry: the same, from the sweeper.
            (&ttl_a, &["+11", "sweep"], &["hexpired k"]),
            // Key-level commands.
            (&base, &["DEL k nokey"], &["del k"]),
            (&base, &["UNLINK k"], &["del k"]),
            (
                &base,
                &["EXPIRE k 100", "PERSIST k", "PERSIST k"],
                &["expire k", "persist k"],
            ),
            (&base, &["PEXPIRE k 0"], &["del k"]),
            (
                &base,
                &["PEXPIRE k 10", "+11", "EXISTS k"],
                &["expire k", "expired k"],
            ),
            (
                &base,
                &["PEXPIRE k 10", "+11", "HSET k a 1"],
                &["expire k", "expired k", "new k", "hset k"],
            ),
            (
                &base,
                &["PEXPIRE k 10", "+11", "sweep"],
                &["expire k", "expired k"],
            ),
            (
                &base,
                &["RENAME k k2"],
                &["new k2", "rename_from k", "rename_to k2"],
            ),
            (
                &["HSET k a 1", "HSET k2 b 1"],
                &["RENAME k k2"],
                &["new k2", "rename_from k", "rename_to k2", "overwritten k2"],
            ),
            (&["HSET k a 1", "HSET k2 b 1"], &["RENAMENX k k2"], &[]),
            (
                &base,
                &[
                    "FLUSHDB",
                    "HSET k a 1",
                    "FLUSHALL",
                    "HSET j a 1",
                    "SWAPDB 0 1",
                ],
                &["new k", "hset k", "new j", "hset j"],
            ),
            // A transaction's events are its commands' events, in order.
            (
                &base,
                &["MULTI", "HSET k c 1", "HDEL k a b c", "HSET j a 1", "EXEC"],
                &["hset k", "hdel k", "del k", "new j", "hset j"],
            ),
        ];
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            for (setup, cmds, want) in rows {
                let got = events_for("KAno", setup, cmds, protocol);
                assert_eq!(got, *want, "{cmds:?} after {setup:?} ({protocol:?})");
            }
        }
    }

    /// The sweeper publishes per key: each hash's `hexpired`, then its `del` (the order
    /// between keys is the shards' order, so each key's sequence is checked alone).
    #[test]
    fn sweeper_events_are_per_key() {
        let setup = [
            "HSET k a 1 b 2",
            "HPEXPIRE k 10 FIELDS 2 a b",
            "HSET j a 1 b 2",
            "HPEXPIRE j 10 FIELDS 1 a",
        ];
        let mut got = events_for("KAno", &setup, &["+11", "sweep"], Protocol::Resp2);
        got.sort_by_key(|e| e.rsplit(' ').next().map(str::to_string));
        assert_eq!(got, ["hexpired j", "hexpired k", "del k"]);
    }

    #[test]
    fn classes_and_channel_types_gate_events() {
        let run = |flags: &str| {
            let mut env = TestEnv::new();
            env.run(&format!("CONFIG SET notify-keyspace-events {flags}"));
            let mut sub = Subscriber::new(&env, Protocol::Resp2);
            env.run("HSET k a 1");
            env.run("EXPIRE k 100");
            env.run("HDEL k a");
            sub.messages()
                .into_iter()
                .map(|(c, p)| {
                    format!(
                        "{} {}",
                        String::from_utf8(c).unwrap(),
                        String::from_utf8(p).unwrap()
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run("Eh"),
            ["__keyevent@0__:hset k", "__keyevent@0__:hdel k"]
        );
        assert_eq!(
            run("Kg"),
            ["__keyspace@0__:k expire", "__keyspace@0__:k del"]
        );
        assert!(run("").is_empty());
        // A class without a channel type, or channel types without a class: nothing.
        assert!(run("h").is_empty());
        assert!(run("KEST").is_empty());
        assert_eq!(run("KEn"), ["__keyspace@0__:k new", "__keyevent@0__:new k"]);
    }

    /// Redis 8.8's four subkey channels, with binary field names and the skip rules.
    #[test]
    fn subkey_channels_byte_exact() {
        let mut env = TestEnv::new();
        env.run("CONFIG SET notify-keyspace-events hSTIV");
        let mut sub = Subscriber::new(&env, Protocol::Resp3);
        env.run_args(&[&b"HSET"[..], b"myhash", b"field1", b"v", b"f\x00\xff", b"w"]);
        let got = sub.messages();
        let want: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (
                b"__subkeyspace@0__:myhash".to_vec(),
                b"hset|6:field1,3:f\x00\xff".to_vec(),
            ),
            (
                b"__subkeyevent@0__:hset".to_vec(),
                b"6:myhash|6:field1,3:f\x00\xff".to_vec(),
            ),
            (
                b"__subkeyspaceitem@0__:myhash\nfield1".to_vec(),
                b"hset".to_vec(),
            ),
            (
                b"__subkeyspaceitem@0__:myhash\nf\x00\xff".to_vec(),
                b"hset".to_vec(),
            ),
            (
                b"__subkeyspaceevent@0__:hset|myhash".to_vec(),
                b"6:field1,3:f\x00\xff".to_vec(),
            ),
        ];
        assert_eq!(got, want);
        // Key-level events carry no subkeys: nothing on these channels.
        env.run("EXPIRE myhash 100");
        assert!(sub.messages().is_empty());
        // A key containing a newline gets no per-item messages.
        env.run_args(&[&b"HDEL"[..], b"myhash", b"field1"]);
        env.run_args(&[&b"HSET"[..], b"a\nb", b"f", b"v"]);
        let channels: Vec<Vec<u8>> = sub.messages().into_iter().map(|(c, _)| c).collect();
        assert_eq!(
            channels,
            [
                &b"__subkeyspace@0__:myhash"[..],
                b"__subkeyevent@0__:hdel",
                b"__subkeyspaceitem@0__:myhash\nfield1",
                b"__subkeyspaceevent@0__:hdel|myhash",
                b"__subkeyspace@0__:a\nb",
                b"__subkeyevent@0__:hset",
                b"__subkeyspaceevent@0__:hset|a\nb",
            ]
        );
        // Classic and subkey channels together: K and E first, then S T I V.
        env.run("CONFIG SET notify-keyspace-events KEhST");
        env.run("HINCRBY n f 1");
        let channels: Vec<Vec<u8>> = sub.messages().into_iter().map(|(c, _)| c).collect();
        assert_eq!(
            channels,
            [
                &b"__keyspace@0__:n"[..],
                b"__keyevent@0__:hincrby",
                b"__subkeyspace@0__:n",
                b"__subkeyevent@0__:hincrby",
            ]
        );
    }

    #[test]
    fn resp3_subscribers_get_push_frames_and_nothing_is_built_without_subscribers() {
        let mut env = TestEnv::new();
        env.run("CONFIG SET notify-keyspace-events KEA");
        // No subscriber: the notifier is not interested, so nothing is recorded.
        assert!(!env.server.notifier.interested());
        let mut sub = Subscriber::new(&env, Protocol::Resp3);
        assert!(env.server.notifier.interested());
        env.run("HSET k a 1");
        assert_eq!(
            String::from_utf8(sub.raw()).unwrap(),
            ">4\r\n$8\r\npmessage\r\n$3\r\n__*\r\n$16\r\n__keyspace@0__:k\r\n$4\r\nhset\r\n\
             >4\r\n$8\r\npmessage\r\n$3\r\n__*\r\n$19\r\n__keyevent@0__:hset\r\n$1\r\nk\r\n"
        );
        env.run("CONFIG SET notify-keyspace-events \"\"");
        assert!(!env.server.notifier.interested());
        assert_eq!(
            env.run("CONFIG GET notify-keyspace-events"),
            "*2\r\n$22\r\nnotify-keyspace-events\r\n$0\r\n\r\n"
        );
    }
}
