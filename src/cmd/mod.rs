//! The command table and dispatch.
//!
//! Every command is a [`Command`] entry: name, arity, flags, key positions, documentation
//! and a synchronous handler. Families live one per file and export `COMMANDS`; the table
//! is their concatenation, and it alone answers COMMAND / COMMAND DOCS, so what the server
//! reports can never drift from what it does.
//!
//! [`dispatch`] runs Redis's checks in Redis's order (unknown command, unknown subcommand,
//! arity, authentication, MULTI queuing), then locks the shards the command's keys live in
//! and runs the handler. Handlers never lock and never await.

pub mod acl;
pub mod client;
pub mod cluster;
pub mod command;
pub mod config;
pub mod connection;
pub mod db;
pub mod debug;
pub mod dump;
pub mod expire;
pub mod hdel;
pub mod hexpire;
pub mod hget;
pub mod hgetdel;
pub mod hgetex;
pub mod hincrby;
pub mod hpersist;
pub mod hrandfield;
pub mod hscan;
pub mod hset;
pub mod hsetex;
pub mod httl;
pub mod info;
pub mod keys;
pub mod latency;
#[cfg(test)]
mod model_tests;
pub mod multi;
pub mod parse;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod slowlog;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use smallvec::SmallVec;

use crate::client::{ClientState, QueuedCommand};
use crate::context::ServerContext;
use crate::error::CmdError;
use crate::keyspace::{DbView, LockPlan, Locked};
use crate::protocol::{Protocol, Reply};

/// A command handler. It must validate before writing: on `Err` nothing may have been
/// written to the reply, and the dispatcher writes the error instead.
pub type Handler = fn(&mut Ctx<'_, '_>, Args<'_>, &mut Reply<'_>) -> Result<(), CmdError>;

/// Command flags. The first group is reported by COMMAND under Redis's names; the second
/// is hashd's own and steers dispatch.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const LOADING: u32 = 1 << 6;
    pub const STALE: u32 = 1 << 7;
    pub const FAST: u32 = 1 << 8;
    pub const NO_AUTH: u32 = 1 << 9;
    pub const NO_MULTI: u32 = 1 << 10;
    pub const ALLOW_BUSY: u32 = 1 << 11;
    pub const SKIP_SLOWLOG: u32 = 1 << 12;
    pub const SKIP_MONITOR: u32 = 1 << 13;
    /// Refused while Redis loads a replication stream asynchronously; hashd never does,
    /// so it only describes the command to COMMAND (SAVE, BGSAVE, BGREWRITEAOF).
    pub const NO_ASYNC_LOADING: u32 = 1 << 14;
    /// May block the client (WAIT); also makes the command `@blocking`.
    pub const BLOCKING: u32 = 1 << 15;

    /// Runs at once even inside MULTI (EXEC, DISCARD, MULTI, WATCH, UNWATCH, QUIT, RESET).
    pub const TXN_CONTROL: u32 = 1 << 24;
    /// Locks every shard of the client's database.
    pub const LOCK_DB: u32 = 1 << 25;
    /// Locks every shard of every database.
    pub const LOCK_ALL: u32 = 1 << 26;
    /// Locks what the queued transaction needs (EXEC).
    pub const LOCK_EXEC: u32 = 1 << 27;
    /// Needs no lock itself, but a transaction that queues it locks every database at
    /// EXEC, because the commands after it may address another one (SELECT).
    pub const TXN_LOCK_ALL: u32 = 1 << 28;

    /// Redis names of the reported flags, in COMMAND's order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// One command (or subcommand) of the table.
#[derive(Debug)]
pub struct Command {
    /// Lower-case full name: `hset`, or `client|setname` for a subcommand.
    pub name: &'static str,
    /// Redis convention: N > 0 exactly N arguments (name included), N < 0 at least |N|.
    pub arity: i32,
    pub flags: u32,
    /// Key positions as COMMAND reports them: first, last (negative counts from the end),
    /// step. (0, 0, 0) for commands without keys.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// COMMAND DOCS: group (`hash`, `generic`, `connection`, `server`, `transactions`),
    /// version introduced, summary, complexity.
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// The argument synopsis after the name, Redis documentation style:
    /// `key field value [field value ...]`. COMMAND DOCS derives its argument tree from it.
    pub syntax: &'static str,
    /// ACL categories besides the ones derived from group and flags.
    pub acl: &'static [&'static str],
    pub handler: Handler,
    pub subcommands: &'static [Command],
}

fn no_handler(_: &mut Ctx<'_, '_>, _: Args<'_>, _: &mut Reply<'_>) -> Result<(), CmdError> {
    Err(CmdError::Syntax)
}

impl Command {
    /// A command with no keys and no flags; refine with the builder methods.
    pub const fn new(name: &'static str, arity: i32, handler: Handler) -> Self {
        Command {
            name,
            arity,
            flags: 0,
            first_key: 0,
            last_key: 0,
            step: 0,
            group: "generic",
            since: "1.0.0",
            summary: "",
            complexity: "O(1)",
            syntax: "",
            acl: &[],
            handler,
            subcommands: &[],
        }
    }

    /// A container (CLIENT, CONFIG, …) whose subcommands do the work.
    pub const fn container(name: &'static str, subcommands: &'static [Command]) -> Self {
        let mut c = Command::new(name, -2, no_handler);
        c.subcommands = subcommands;
        c
    }

    pub const fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> Self {
        self.first_key = first;
        self.last_key = last;
        self.step = step;
        self
    }

    pub const fn doc(
        mut self,
        group: &'static str,
        since: &'static str,
        summary: &'static str,
        complexity: &'static str,
        syntax: &'static str,
    ) -> Self {
        self.group = group;
        self.since = since;
        self.summary = summary;
        self.complexity = complexity;
        self.syntax = syntax;
        self
    }

    pub const fn acl(mut self, acl: &'static [&'static str]) -> Self {
        self.acl = acl;
        self
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The container name for a subcommand (`client` for `client|setname`).
    pub fn container_name(&self) -> Option<&'static str> {
        self.name.split_once('|').map(|(c, _)| c)
    }

    /// The subcommand part of the name (`setname` for `client|setname`), or the name.
    pub fn short_name(&self) -> &'static str {
        self.name.split_once('|').map_or(self.name, |(_, s)| s)
    }

    fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Argument positions of this command's keys in `args`.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 {
            (argc as i64 + i64::from(self.last_key)).max(0) as usize
        } else {
            (self.last_key as usize).min(argc.saturating_sub(1))
        };
        let step = self.step.max(1) as usize;
        let range = if first == 0 { 0..0 } else { first..last + 1 };
        range.step_by(step)
    }
}

/// The arguments of one request (the command name is `get(0)`), borrowed from the
/// connection's read buffer.
#[derive(Clone, Copy, Debug)]
pub struct Args<'a> {
    data: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    pub fn new(data: &'a [u8], spans: &'a [(usize, usize)]) -> Self {
        Args { data, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`. The dispatcher has checked arity, so handlers index within it freely;
    /// past the end this returns an empty slice rather than panicking.
    pub fn get(&self, i: usize) -> &'a [u8] {
        match self.spans.get(i) {
            Some(&(s, e)) => &self.data[s..e],
            None => &[],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.spans.iter().map(|&(s, e)| &self.data[s..e])
    }

    /// Arguments from `from` on.
    pub fn from(&self, from: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.spans
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .map(|&(s, e)| &self.data[s..e])
    }

    pub fn to_owned_args(&self) -> OwnedArgs {
        let mut data = Vec::with_capacity(self.spans.iter().map(|&(s, e)| e - s).sum());
        let mut spans = Vec::with_capacity(self.spans.len());
        for a in self.iter() {
            let start = data.len();
            data.extend_from_slice(a);
            spans.push((start, data.len()));
        }
        OwnedArgs { data, spans }
    }
}

/// Arguments that own their bytes (queued in MULTI, built in tests).
#[derive(Clone, Debug, Default)]
pub struct OwnedArgs {
    data: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl OwnedArgs {
    pub fn as_args(&self) -> Args<'_> {
        Args::new(&self.data, &self.spans)
    }

    pub fn from_slices<T: AsRef<[u8]>>(items: &[T]) -> Self {
        let mut o = OwnedArgs::default();
        for it in items {
            let start = o.data.len();
            o.data.extend_from_slice(it.as_ref());
            o.spans.push((start, o.data.len()));
        }
        o
    }
}

/// What a handler works with: the server, its client, the time, and its locked shards.
pub struct Ctx<'c, 'k> {
    pub server: &'k ServerContext,
    pub client: &'c mut ClientState,
    /// "Now" for the whole command (for the whole EXEC).
    pub now_ms: u64,
    pub locked: &'c mut Locked<'k>,
}

impl<'k> Ctx<'_, 'k> {
    /// The client's selected database, through the shards this command holds.
    pub fn db(&mut self) -> DbView<'_, 'k> {
        self.locked.db(self.client.db)
    }
}

/// The command table, built once from the families' `COMMANDS` lists.
pub struct CommandTable {
    /// Lower-case name → position in `all`.
    by_name: HashMap<&'static [u8], usize, ahash::RandomState>,
    /// Top-level commands in table order (COMMAND, COMMAND DOCS).
    pub commands: Vec<&'static Command>,
    /// Every command and subcommand; indexes are stable (CLIENT LIST's `cmd=`).
    pub all: Vec<&'static Command>,
}

const FAMILIES: &[&[Command]] = &[
    hset::COMMANDS,
    hget::COMMANDS,
    hdel::COMMANDS,
    hincrby::COMMANDS,
    hrandfield::COMMANDS,
    hscan::COMMANDS,
    hexpire::COMMANDS,
    httl::COMMANDS,
    hpersist::COMMANDS,
    hgetex::COMMANDS,
    hsetex::COMMANDS,
    hgetdel::COMMANDS,
    keys::COMMANDS,
    expire::COMMANDS,
    dump::COMMANDS,
    db::COMMANDS,
    connection::COMMANDS,
    client::COMMANDS,
    multi::COMMANDS,
    info::COMMANDS,
    config::COMMANDS,
    command::COMMANDS,
    debug::COMMANDS,
    server::COMMANDS,
    pubsub::COMMANDS,
    replication::COMMANDS,
    slowlog::COMMANDS,
    latency::COMMANDS,
    acl::COMMANDS,
    cluster::COMMANDS,
];

/// Allocator overhead of a queued command's two buffers, counted against the query-buffer
/// limit so that MULTI cannot queue unbounded memory in tiny commands.
const QUEUED_COMMAND_OVERHEAD_BYTES: usize = 32;

/// Longest command name we look up; anything longer is unknown.
const MAX_NAME_LEN: usize = 32;

impl CommandTable {
    fn build() -> Self {
        let mut by_name = HashMap::with_hasher(ahash::RandomState::new());
        let mut commands = Vec::new();
        let mut all = Vec::new();
        for family in FAMILIES {
            for c in family.iter() {
                by_name.insert(c.name.as_bytes(), all.len());
                commands.push(c);
                all.push(c);
                all.extend(c.subcommands.iter());
            }
        }
        CommandTable {
            by_name,
            commands,
            all,
        }
    }

    /// Case-insensitive lookup of a top-level command; returns it with its index in `all`.
    pub fn lookup(&self, name: &[u8]) -> Option<(usize, &'static Command)> {
        if name.len() > MAX_NAME_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        let &i = self.by_name.get(&*lower)?;
        Some((i, self.all[i]))
    }

    /// Case-insensitive lookup of a top-level command by name.
    pub fn get(&self, name: &[u8]) -> Option<&'static Command> {
        self.lookup(name).map(|(_, c)| c)
    }

    /// Case-insensitive lookup of a subcommand of `container`.
    pub fn subcommand(container: &'static Command, sub: &[u8]) -> Option<&'static Command> {
        container
            .subcommands
            .iter()
            .find(|s| s.short_name().as_bytes().eq_ignore_ascii_case(sub))
    }

    /// Case-insensitive lookup of a subcommand of the container at index `container`;
    /// returns it with its index in `all` (subcommands follow their container there).
    pub fn lookup_sub(&self, container: usize, sub: &[u8]) -> Option<(usize, &'static Command)> {
        let c = self.all[container];
        c.subcommands
            .iter()
            .position(|s| s.short_name().as_bytes().eq_ignore_ascii_case(sub))
            .map(|p| (container + 1 + p, &c.subcommands[p]))
    }
}

/// `rename-command`: commands served under another name, or not at all (renamed to
/// `""`), for the server's clients. Internal clients (the append-only file's replay, the
/// master's stream) keep the real names, which is what hashd writes there.
#[derive(Debug, Default)]
pub struct Renames {
    /// Lower-case names no longer served.
    hidden: std::collections::HashSet<Vec<u8>>,
    /// Lower-case new name → the command's index in the table.
    aliases: HashMap<Vec<u8>, usize>,
}

impl Renames {
    /// From `(command, new name)` pairs, with Redis's errors: the command must be a
    /// top-level command, and the new name must not be one already served.
    pub fn new(pairs: &[(String, String)]) -> Result<Renames, String> {
        let t = table();
        let mut r = Renames::default();
        for (from, to) in pairs {
            let from_l = from.to_ascii_lowercase().into_bytes();
            let to_l = to.to_ascii_lowercase().into_bytes();
            let index = match r.aliases.remove(&from_l) {
                Some(i) => i,
                None if r.hidden.contains(&from_l) => {
                    return Err("No such command in rename-command".into());
                }
                None => match t.lookup(&from_l) {
                    Some((i, _)) => {
                        r.hidden.insert(from_l.clone());
                        i
                    }
                    None => return Err("No such command in rename-command".into()),
                },
            };
            if to_l.is_empty() {
                continue;
            }
            let taken = r.aliases.contains_key(&to_l)
                || (t.lookup(&to_l).is_some() && !r.hidden.contains(&to_l));
            if taken {
                return Err("Target command name already exists".into());
            }
            r.hidden.remove(&to_l);
            r.aliases.insert(to_l, index);
        }
        Ok(r)
    }

    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty() && self.aliases.is_empty()
    }

    /// The command a client's name means.
    fn lookup(&self, name: &[u8]) -> Option<(usize, &'static Command)> {
        let t = table();
        if name.len() > MAX_NAME_LEN * 4 {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        if let Some(&i) = self.aliases.get(&lower) {
            return Some((i, t.all[i]));
        }
        if self.hidden.contains(&lower) {
            return None;
        }
        t.lookup(name)
    }
}

/// The command table.
pub fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(CommandTable::build)
}

/// At most this many bytes of a name or argument are quoted in an error, as in Redis.
const ERR_QUOTE_MAX: usize = 128;

/// C's `%.*s`: at most `max` bytes, stopping at a NUL.
fn c_str_prefix(s: &[u8], max: usize) -> &[u8] {
    let s = &s[..s.len().min(max)];
    match s.iter().position(|&b| b == 0) {
        Some(n) => &s[..n],
        None => s,
    }
}

fn unknown_command(args: Args<'_>) -> CmdError {
    let mut listed: Vec<u8> = Vec::new();
    for a in args.from(1) {
        if listed.len() >= ERR_QUOTE_MAX {
            break;
        }
        let room = ERR_QUOTE_MAX - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(c_str_prefix(a, room));
        listed.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(c_str_prefix(args.get(0), ERR_QUOTE_MAX));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&listed);
    // The client's bytes are echoed as they are, UTF-8 or not (Redis's %s).
    CmdError::other_bytes(text)
}

/// `ERR unknown subcommand '<sub>'. Try <CONTAINER> HELP.` The subcommand's bytes are
/// echoed as they are, UTF-8 or not.
pub fn unknown_subcommand(container: &[u8], sub: &[u8]) -> CmdError {
    let mut text = b"ERR unknown subcommand '".to_vec();
    text.extend_from_slice(c_str_prefix(sub, ERR_QUOTE_MAX));
    text.extend_from_slice(b"'. Try ");
    text.extend(container.iter().map(u8::to_ascii_uppercase));
    text.extend_from_slice(b" HELP.");
    CmdError::other_bytes(text)
}

/// Resolves `args` to a command and its index in the table, or the error Redis gives for
/// it (checks 1–3 of spec §3).
/// On error, also the command's index when it is known (a wrong arity counts as that
/// command's `rejected_calls`).
fn resolve(args: Args<'_>) -> Result<(usize, &'static Command), (Option<usize>, CmdError)> {
    resolve_renamed(None, args)
}

/// [`resolve`] through `rename-command`'s names, when there are any.
fn resolve_renamed(
    renames: Option<&Renames>,
    args: Args<'_>,
) -> Result<(usize, &'static Command), (Option<usize>, CmdError)> {
    let t = table();
    let found = match renames {
        Some(r) => r.lookup(args.get(0)),
        None => t.lookup(args.get(0)),
    };
    let Some((index, cmd)) = found else {
        return Err((None, unknown_command(args)));
    };
    let (index, cmd) = if cmd.subcommands.is_empty() {
        (index, cmd)
    } else if args.len() < 2 {
        // A container runs itself when its arity allows no subcommand (plain `COMMAND`).
        if !cmd.arity_ok(args.len()) {
            return Err((Some(index), CmdError::WrongArity(cmd.name.into())));
        }
        (index, cmd)
    } else {
        match t.lookup_sub(index, args.get(1)) {
            Some(found) => found,
            None => return Err((None, unknown_subcommand(args.get(0), args.get(1)))),
        }
    };
    if !cmd.arity_ok(args.len()) {
        return Err((Some(index), CmdError::WrongArity(cmd.name.into())));
    }
    Ok((index, cmd))
}

/// [`resolve`] for ACL DRYRUN and the ACL checks: the command `args` names, or the
/// error Redis gives for it.
pub fn resolve_for_acl(args: Args<'_>) -> Result<(usize, &'static Command), CmdError> {
    resolve(args).map_err(|(_, e)| e)
}

/// `rename-command`'s names, for the server's clients only (internal clients — the
/// append-only file's replay, the master's stream — use the real names).
fn renames_for<'s>(server: &'s ServerContext, client: &ClientState) -> Option<&'s Renames> {
    (!server.renames.is_empty() && client.user.is_some()).then_some(&server.renames)
}

/// Runs one command as an internal client (no user, so no ACL, slot check or renamed
/// names) and returns its reply, RESP2.
pub fn run_internal(server: &ServerContext, args: &[&[u8]]) -> Vec<u8> {
    let shared = std::sync::Arc::new(crate::client::ClientShared::new(0, None, None, 0));
    let mut client = ClientState::new(shared, true);
    let owned = OwnedArgs::from_slices(args);
    let mut out = Vec::new();
    dispatch(server, &mut client, owned.as_args(), &mut out);
    out
}

/// Runs one request and appends its reply to `out`.
pub fn dispatch(
    server: &ServerContext,
    client: &mut ClientState,
    args: Args<'_>,
    out: &mut Vec<u8>,
) {
    // Shutting down: nothing runs any more, and the final snapshot holds every write that
    // was acknowledged. The connection closes without a reply, as when Redis has exited.
    if server.closing.load(Ordering::Relaxed) {
        client.close_now = true;
        return;
    }
    // Messages published before this command go out before its reply, as in Redis, where
    // they were already in the output buffer.
    crate::pubsub::drain(client, out);
    let mut reply = Reply::new(out, client.protocol);
    let name = args.get(0);
    // Cross-protocol scripting guard: an HTTP request is dropped without a reply.
    if name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:") {
        client.close_now = true;
        return;
    }
    let renames = renames_for(server, client);
    let (index, cmd) = match resolve_renamed(renames, args) {
        Ok(found) => found,
        Err((known, e)) if name.eq_ignore_ascii_case(b"exec") => {
            if let Some(i) = known {
                client.stats.rejected(i);
            }
            abort_exec(server, client, &e, &mut reply);
            return;
        }
        Err((known, e)) => {
            if let Some(i) = known {
                client.stats.rejected(i);
            }
            if let Some(m) = client.multi.as_mut() {
                m.aborted = true;
            }
            error_reply(server, &mut reply, &e);
            return;
        }
    };
    // Redis's `authRequired`: not logged in while the default user needs a password.
    if !client.authenticated && !cmd.has(flags::NO_AUTH) && !server.acl.default_open() {
        refuse(server, client, cmd, index, &CmdError::NoAuth, &mut reply);
        return;
    }
    client.shared.last_cmd.store(index, Ordering::Relaxed);
    if let Some(m) = client.multi.as_mut() {
        if cmd.has(flags::NO_MULTI) && !cmd.has(flags::TXN_CONTROL) {
            m.aborted = true;
            client.stats.rejected(index);
            error_reply(
                server,
                &mut reply,
                &CmdError::other("ERR Command not allowed inside a transaction"),
            );
            return;
        }
    }
    // ACLs (internal clients have no user and no limits).
    if client.user.is_some() {
        let stage = if client.multi.is_some() {
            acl::Stage::Queued
        } else {
            acl::Stage::TopLevel
        };
        if let Err(e) = acl::check_permissions(server, client, cmd, index, args, stage) {
            if client.close_now {
                return;
            }
            refuse(server, client, cmd, index, &e, &mut reply);
            return;
        }
    }
    // Cluster mode: the keys must be this node's (the internal clients' always are).
    if server.cluster.enabled && client.user.is_some() {
        if let Err(r) = cluster_route(server, client, cmd, args) {
            let e = r.error();
            if cmd.name == "exec" {
                // Redis discards the transaction and answers the redirect itself.
                client.stats.rejected(index);
                multi::end_multi(client);
                multi::forget_watches(server, client);
                client.watch_flag.reset();
                client.shared.watched.store(0, Ordering::Relaxed);
                error_reply(server, &mut reply, &e);
                return;
            }
            refuse(server, client, cmd, index, &e, &mut reply);
            return;
        }
    }
    if server.maxmemory.active()
        && !client.replaying
        && server.maxmemory.enforce(server) == crate::maxmemory::Verdict::OutOfMemory
        && refused_when_out_of_memory(client, cmd)
    {
        let e = CmdError::other("OOM command not allowed when used memory > 'maxmemory'.");
        refuse(server, client, cmd, index, &e, &mut reply);
        return;
    }
    if let Some(e) = replication_refusal(server, client, cmd) {
        refuse(server, client, cmd, index, &e, &mut reply);
        return;
    }
    if server.rdb.loading.load(Ordering::Relaxed) && !cmd.has(flags::LOADING) && !client.replaying {
        refuse(server, client, cmd, index, &CmdError::Loading, &mut reply);
        return;
    }
    // A subscribed RESP2 connection cannot tell replies from messages, so Redis refuses
    // everything but the pub/sub commands there; RESP3 marks messages as pushes instead.
    if client.protocol == Protocol::Resp2
        && client.in_pubsub_mode()
        && !pubsub::allowed_while_subscribed(cmd)
    {
        let e = pubsub::not_allowed_while_subscribed(cmd);
        refuse(server, client, cmd, index, &e, &mut reply);
        return;
    }
    if let Some(m) = client.multi.as_mut() {
        if !cmd.has(flags::TXN_CONTROL) {
            // Count what the queue really holds: the bytes, a span per argument, and the
            // queued command itself (Redis counts `argv_len_sums` plus an robj per argument).
            m.queued_bytes += args.iter().map(<[u8]>::len).sum::<usize>()
                + args.len() * std::mem::size_of::<(usize, usize)>()
                + std::mem::size_of::<QueuedCommand>()
                + QUEUED_COMMAND_OVERHEAD_BYTES;
            m.queue.push(QueuedCommand {
                command: cmd,
                index,
                args: args.to_owned_args(),
            });
            client
                .shared
                .multi_len
                .store(m.queue.len(), Ordering::Relaxed);
            reply.simple("QUEUED");
            return;
        }
    }
    execute(server, client, cmd, index, args, &mut reply);
    // ASKING covers the next command only, as in Redis.
    if client.cluster_asking && cmd.name != "asking" {
        client.cluster_asking = false;
    }
    // CLIENT CACHING covers the next command (a transaction: through its EXEC), and
    // CLIENT's own subcommands do not use it up, as in Redis.
    if client.caching.is_some() && client.multi.is_none() && !cmd.name.starts_with("client|") {
        client.caching = None;
    }
    // Messages published while the command ran (to this client too) follow its reply.
    crate::pubsub::drain(client, out);
}

/// Where a command's keys are served in cluster mode (Redis's `getNodeByQuery`): EXEC
/// takes every queued command's keys together.
fn cluster_route(
    server: &ServerContext,
    client: &ClientState,
    cmd: &Command,
    args: Args<'_>,
) -> Result<(), crate::cluster::Redirect> {
    let flags = crate::cluster::ClientFlags {
        readonly: client.cluster_readonly,
        asking: client.cluster_asking,
        importer: client.cluster_importer,
    };
    if cmd.first_key > 0 {
        let keys = cmd.key_positions(args.len()).map(|i| args.get(i));
        return server
            .cluster
            .route(keys, cmd.has(self::flags::WRITE), flags);
    }
    if cmd.has(self::flags::LOCK_EXEC) {
        let Some(m) = client.multi.as_ref() else {
            return Ok(());
        };
        let write = m.queue.iter().any(|q| q.command.has(self::flags::WRITE));
        let keys = m.queue.iter().flat_map(|q| {
            let a = q.args.as_args();
            q.command.key_positions(a.len()).map(move |i| a.get(i))
        });
        return server.cluster.route(keys, write, flags);
    }
    Ok(())
}

/// Whether the request in `args` may change data, for CLIENT PAUSE WRITE: a write
/// command, PUBLISH, or an EXEC whose transaction writes (commands queued in MULTI are not
/// held, their EXEC is). Unknown commands are not (they fail anyway).
pub fn may_write(server: &ServerContext, client: &ClientState, args: Args<'_>) -> bool {
    if client.replaying {
        return false;
    }
    let renames = renames_for(server, client);
    let Ok((_, cmd)) = resolve_renamed(renames, args) else {
        return false;
    };
    if cmd.name == "exec" {
        return client
            .multi
            .as_ref()
            .is_some_and(|m| m.queue.iter().any(|q| q.command.has(flags::WRITE)));
    }
    if client.multi.is_some() && !cmd.has(flags::TXN_CONTROL) {
        return false;
    }
    cmd.has(flags::WRITE) || cmd.name == "publish"
}

/// What memory over the limit refuses, as Redis 7.4's `processCommand`: commands flagged
/// `denyoom` (queued in MULTI too, which then fails at EXEC), and an EXEC whose queue
/// holds one.
fn refused_when_out_of_memory(client: &ClientState, cmd: &Command) -> bool {
    if cmd.name == "exec" {
        return client
            .multi
            .as_ref()
            .is_some_and(|m| m.queue.iter().any(|q| q.command.has(flags::DENYOOM)));
    }
    cmd.has(flags::DENYOOM)
}

/// Answers `e` instead of running `cmd`, as Redis's `rejectCommand`: EXEC itself is
/// aborted, a command refused inside MULTI makes the transaction fail at EXEC.
fn refuse(
    server: &ServerContext,
    client: &mut ClientState,
    cmd: &Command,
    index: usize,
    e: &CmdError,
    reply: &mut Reply<'_>,
) {
    client.stats.rejected(index);
    if cmd.name == "exec" {
        abort_exec(server, client, e, reply);
        return;
    }
    if let Some(m) = client.multi.as_mut() {
        m.aborted = true;
    }
    error_reply(server, reply, e);
}

/// Writes an error reply and counts it (INFO `total_error_replies`, `errorstats`).
pub fn error_reply(server: &ServerContext, reply: &mut Reply<'_>, e: &CmdError) {
    server.stats.errors.note(&e.reply_text());
    reply.error(e);
}

/// `stop-writes-on-bgsave-error yes` (the default) with save points and a failed last
/// background save, or an append-only file that cannot be written: writes (and PING) get
/// Redis's `-MISCONF`, as in `writeCommandsDeniedByDiskError`, on a master only.
fn disk_error(server: &ServerContext, cmd: &Command, write: impl Fn() -> bool) -> Option<CmdError> {
    if server.replication.is_replica() || !(write() || cmd.name == "ping") {
        return None;
    }
    let rdb_failed = server
        .config
        .stop_writes_on_bgsave_error
        .load(Ordering::Relaxed)
        && !server.rdb.last_bgsave_ok.load(Ordering::Relaxed)
        && !server.config.save_points.read().is_empty();
    if rdb_failed {
        return Some(CmdError::other(
            "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to \
             persist to disk. Commands that may modify the data set are disabled, because this \
             instance is configured to report errors during writes if RDB snapshotting fails \
             (stop-writes-on-bgsave-error option). Please check the Redis logs for details \
             about the RDB error.",
        ));
    }
    if server.aof.enabled() && !server.aof.write_ok.load(Ordering::Relaxed) {
        return Some(CmdError::other(
            "MISCONF Errors writing to the AOF file: see the server's log",
        ));
    }
    None
}

/// What replication refuses, in Redis's order: writes without enough good replicas
/// (`min-replicas-to-write`), writes on a read-only replica, and on a replica whose link is
/// down with `replica-serve-stale-data no`, every command not flagged `stale`. Our
/// master's commands are never refused.
fn replication_refusal(
    server: &ServerContext,
    client: &ClientState,
    cmd: &Command,
) -> Option<CmdError> {
    let repl = &server.replication;
    if client.replaying {
        return None;
    }
    // The common case in a few loads, before any name is compared: a master that saves
    // fine, with no replica requirement.
    let maybe = repl.is_replica()
        || !server.rdb.last_bgsave_ok.load(Ordering::Relaxed)
        || !server.aof.write_ok.load(Ordering::Relaxed)
        || repl.settings.min_replicas_to_write.load(Ordering::Relaxed) > 0;
    if !maybe {
        return None;
    }
    let write = || {
        cmd.has(flags::WRITE)
            || (cmd.name == "exec"
                && client
                    .multi
                    .as_ref()
                    .is_some_and(|m| m.queue.iter().any(|q| q.command.has(flags::WRITE))))
    };
    if let Some(e) = disk_error(server, cmd, write) {
        return Some(e);
    }
    if repl.writes_refused() && write() {
        return Some(CmdError::other(
            "NOREPLICAS Not enough good replicas to write.",
        ));
    }
    if repl.is_replica() {
        if repl.settings.read_only.load(Ordering::Relaxed) && write() {
            return Some(CmdError::other(
                "READONLY You can't write against a read only replica.",
            ));
        }
        if !cmd.has(flags::STALE)
            && !repl.settings.serve_stale_data.load(Ordering::Relaxed)
            && !repl.link_up()
        {
            return Some(CmdError::other(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ));
        }
    }
    None
}

/// Redis rejects EXEC itself (wrong arity, NOAUTH) through `execCommandAbort`, in or out of
/// MULTI: the transaction and the watches are dropped and the error comes back wrapped in
/// EXECABORT, without its `ERR` prefix.
fn abort_exec(
    server: &ServerContext,
    client: &mut ClientState,
    e: &CmdError,
    reply: &mut Reply<'_>,
) {
    multi::end_multi(client);
    multi::forget_watches(server, client);
    client.watch_flag.reset();
    client.shared.watched.store(0, Ordering::Relaxed);
    let text = e.to_string();
    let why = text.strip_prefix("ERR ").unwrap_or(&text);
    error_reply(
        server,
        reply,
        &CmdError::other(format!("EXECABORT Transaction discarded because of: {why}")),
    );
}

/// Locks what `cmd` needs and runs it.
fn execute(
    server: &ServerContext,
    client: &mut ClientState,
    cmd: &'static Command,
    index: usize,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) {
    server
        .stats
        .total_commands_processed
        .fetch_add(1, Ordering::Relaxed);
    // For NOLOOP: the changes published when the locks drop are this client's.
    let _running = crate::tracking::running(client.id);
    let plan = lock_plan(server, client, cmd, args);
    let mut locked = server.keyspace.lock(&plan);
    // Shutdown may have begun while this waited for its locks (SHUTDOWN's save holds them
    // all): the final snapshot is taken, so nothing may change or be acknowledged now.
    if server.closing.load(Ordering::Relaxed) {
        client.close_now = true;
        return;
    }
    let now_ms = if client.replaying {
        0
    } else {
        server.clock.now_ms()
    };
    let mut ctx = Ctx {
        server,
        client,
        now_ms,
        locked: &mut locked,
    };
    run_locked(&mut ctx, cmd, index, args, reply);
    if let Some(offset) = client.master_offset_after {
        // Under the command's locks: a snapshot (or a full sync of our own replica) sees
        // this offset, and the stream up to it, with this command's data.
        if client.multi.is_none() {
            if let Some(link) = &client.master_link {
                server
                    .replication
                    .feed_from_master(link, &client.master_pending);
            }
            client.master_pending.clear();
            server.replication.note_applied(offset, client.db);
        }
    }
    let changed = locked.log().command_changes() > 0;
    if changed && server.aof.must_wait() {
        client.aof_wait = true;
    }
    // The batch is published (and streamed) as the locks go.
    drop(locked);
    if changed {
        client.woff = server.replication.offset();
    }
}

/// CLIENT TRACKING (default mode): the keys a read named go into the tracking table,
/// unless OPTIN without `CLIENT CACHING yes` or OPTOUT with `CLIENT CACHING no`.
#[cold]
fn remember_tracked_keys(ctx: &mut Ctx<'_, '_>, cmd: &Command, args: Args<'_>) {
    let Some(t) = &ctx.client.tracking else {
        return;
    };
    let caching = ctx.client.caching;
    if t.mode.bcast
        || (t.mode.optin && caching != Some(true))
        || (t.mode.optout && caching == Some(false))
    {
        return;
    }
    ctx.server.tracker.remember(
        ctx.client.id,
        cmd.key_positions(args.len()).map(|i| args.get(i)),
    );
}

/// Runs a handler whose shards are already held (directly, or inside EXEC).
#[inline]
pub fn run_locked(
    ctx: &mut Ctx<'_, '_>,
    cmd: &'static Command,
    index: usize,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) {
    // While a migration is on or has handed a slot over: a command admitted before the
    // hand-over is checked again now that it holds its locks, so no write reaches the slot
    // here after the barrier (it may have waited for its locks through the whole of it).
    if ctx.server.cluster.enabled
        && ctx.client.user.is_some()
        && ctx.server.cluster.migrations_active()
    {
        if let Err(r) = cluster_route(ctx.server, ctx.client, cmd, args) {
            error_reply(ctx.server, reply, &r.error());
            return;
        }
    }
    let mark = reply.len();
    ctx.locked.begin_command(cmd.name, cmd.has(flags::READONLY));
    // As Redis's lookups: not for a NO-TOUCH client (but its TOUCH), and not while a
    // forked child shares the pages an update would copy.
    ctx.locked.set_touch(
        (!ctx.client.no_touch || cmd.name == "touch")
            && !crate::persist::snapshot::children_running(),
    );
    #[cfg(debug_assertions)]
    let changes = ctx.locked.log().command_changes();
    let stats = &ctx.server.commands;
    let started = stats.now();
    let result = (cmd.handler)(ctx, args, reply);
    if ctx.client.tracking.is_some() && cmd.has(flags::READONLY) {
        remember_tracked_keys(ctx, cmd, args);
    }
    let nanos = stats.nanos_between(started, stats.now());
    ctx.client.stats.call(index, nanos, result.is_err());
    stats.sample(&mut ctx.client.stats, index, nanos);
    let micros = nanos / 1000;
    if stats.is_slow(micros) && !cmd.has(flags::SKIP_SLOWLOG) {
        log_slow(ctx, cmd, args, micros);
    }
    if ctx.server.latency.wants(micros) {
        let event = if cmd.has(flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        let server = ctx.server;
        server
            .latency
            .record(event, micros / 1000, server.clock.now_ms() / 1000);
    }
    let server = ctx.server;
    if server.monitors.active()
        && !cmd.has(flags::ADMIN | flags::SKIP_MONITOR)
        && !server.rdb.loading.load(Ordering::Relaxed)
    {
        server.monitors.feed(
            ctx.client.db,
            &ctx.client.shared.addr,
            args.iter(),
            cmd.name == "auth",
        );
    }
    if let Err(e) = result {
        // A handler validates before it writes: failing after a change would leave that
        // change applied (and published) behind an error reply.
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            ctx.locked.log().command_changes(),
            changes,
            "{} changed the keyspace and then failed",
            cmd.name
        );
        // A handler must not write before failing; if one did, its partial reply goes.
        reply.truncate(mark);
        error_reply(ctx.server, reply, &e);
    }
}

/// Adds a command to the slow log, with AUTH's secrets redacted as Redis does.
#[cold]
fn log_slow(ctx: &Ctx<'_, '_>, cmd: &Command, args: Args<'_>, micros: u64) {
    let redact = cmd.name == "auth";
    let shown: Vec<&[u8]> = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if redact && i > 0 {
                &b"(redacted)"[..]
            } else {
                a
            }
        })
        .collect();
    let name = ctx.client.shared.meta.lock().name.clone();
    ctx.server.commands.log_slow(
        shown.into_iter(),
        micros,
        ctx.server.clock.now_ms() / 1000,
        &ctx.client.shared.addr,
        &name,
    );
}

/// Which shards a command needs.
fn lock_plan(
    server: &ServerContext,
    client: &ClientState,
    cmd: &Command,
    args: Args<'_>,
) -> LockPlan {
    if cmd.has(flags::LOCK_ALL) {
        return LockPlan::All;
    }
    if cmd.has(flags::LOCK_DB) {
        return LockPlan::Db(client.db);
    }
    if cmd.has(flags::LOCK_EXEC) {
        return exec_lock_plan(server, client);
    }
    if is_debug_reload(cmd, args) {
        return LockPlan::All;
    }
    let mut shards: SmallVec<[usize; 4]> = cmd
        .key_positions(args.len())
        .map(|i| server.keyspace.shard_of(args.get(i)))
        .collect();
    if shards.is_empty() {
        return LockPlan::Nothing;
    }
    shards.sort_unstable();
    shards.dedup();
    LockPlan::Shards {
        db: client.db,
        shards,
    }
}

/// DEBUG is one command with many subcommands; RELOAD alone replaces the whole dataset,
/// so it holds every shard (in or out of a transaction).
fn is_debug_reload(cmd: &Command, args: Args<'_>) -> bool {
    cmd.name == "debug" && args.get(1).eq_ignore_ascii_case(b"reload")
}

/// EXEC holds the union of what its queued commands and the client's watched keys need,
/// so that no other client's command interleaves with the transaction.
fn exec_lock_plan(server: &ServerContext, client: &ClientState) -> LockPlan {
    let Some(multi) = &client.multi else {
        return LockPlan::Nothing;
    };
    if client.watched.iter().any(|(db, _)| *db != client.db) {
        return LockPlan::All;
    }
    // Checked before any LOCK_DB command can return early: a SELECT queued after DBSIZE
    // moves the later commands to a database `Db(client.db)` would not hold.
    if multi.queue.iter().any(|q| {
        q.command.has(flags::LOCK_ALL)
            || q.command.has(flags::TXN_LOCK_ALL)
            || is_debug_reload(q.command, q.args.as_args())
    }) {
        return LockPlan::All;
    }
    let mut shards: SmallVec<[usize; 4]> = SmallVec::new();
    for q in &multi.queue {
        let c = q.command;
        if c.has(flags::LOCK_DB) {
            return LockPlan::Db(client.db);
        }
        let a = q.args.as_args();
        shards.extend(
            c.key_positions(a.len())
                .map(|i| server.keyspace.shard_of(a.get(i))),
        );
    }
    shards.extend(
        client
            .watched
            .iter()
            .map(|(_, k)| server.keyspace.shard_of(k)),
    );
    if shards.is_empty() {
        return LockPlan::Nothing;
    }
    shards.sort_unstable();
    shards.dedup();
    LockPlan::Shards {
        db: client.db,
        shards,
    }
}

/// Unit-test support: a server context with a manual clock and one client, driven with
/// inline-syntax commands and answering raw RESP.
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::protocol::Protocol;

    /// Start of the manual clock in unit tests (2024-01-01T00:00:00Z).
    pub const T0_MS: u64 = 1_704_067_200_000;

    pub struct TestEnv {
        pub server: ServerContext,
        pub client: ClientState,
    }

    impl Default for TestEnv {
        fn default() -> Self {
            Self::new()
        }
    }

    impl TestEnv {
        pub fn new() -> Self {
            TestEnv {
                server: ServerContext::for_tests(T0_MS),
                client: ClientState::for_tests(),
            }
        }

        /// Runs one command given in redis-cli inline syntax (quotes allowed); returns the
        /// raw reply.
        pub fn run(&mut self, line: &str) -> String {
            let mut data = Vec::new();
            let mut spans = Vec::new();
            crate::protocol::request::split_args(line.as_bytes(), &mut data, &mut spans)
                .expect("balanced quotes in test command");
            let mut out = Vec::new();
            dispatch(
                &self.server,
                &mut self.client,
                Args::new(&data, &spans),
                &mut out,
            );
            String::from_utf8_lossy(&out).into_owned()
        }

        /// Runs one command given as raw arguments.
        pub fn run_args<T: AsRef<[u8]>>(&mut self, args: &[T]) -> Vec<u8> {
            let owned = OwnedArgs::from_slices(args);
            let mut out = Vec::new();
            dispatch(&self.server, &mut self.client, owned.as_args(), &mut out);
            out
        }

        pub fn resp3(&mut self) {
            self.client.set_protocol(Protocol::Resp3);
        }

        pub fn advance_ms(&self, ms: u64) {
            self.server.clock.advance_ms(ms);
        }

        pub fn now_ms(&self) -> u64 {
            self.server.clock.now_ms()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestEnv;
    use super::*;

    #[test]
    fn names_are_unique_lowercase_and_arities_sane() {
        let t = table();
        let mut seen = std::collections::HashSet::new();
        for c in &t.all {
            assert!(seen.insert(c.name), "duplicate command {}", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(c.arity != 0, "{} has arity 0", c.name);
            assert!(
                !c.summary.is_empty() || !c.subcommands.is_empty(),
                "{} lacks a summary",
                c.name
            );
            if c.has(flags::WRITE) {
                assert!(
                    !c.has(flags::READONLY),
                    "{} is both write and readonly",
                    c.name
                );
            }
        }
    }

    #[test]
    fn rejected_exec_is_an_execabort_and_discards() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("EXEC extra"),
            "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"
        );
        assert_eq!(env.run("MULTI"), "+OK\r\n");
        assert_eq!(env.run("HSET k f v"), "+QUEUED\r\n");
        assert!(env.run("EXEC extra").starts_with("-EXECABORT"));
        assert_eq!(env.run("EXEC"), "-ERR EXEC without MULTI\r\n");
    }

    #[test]
    fn dispatch_errors_in_redis_order() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("FOO a b"),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
        );
        assert_eq!(
            env.run("FOO"),
            "-ERR unknown command 'FOO', with args beginning with: \r\n"
        );
        assert_eq!(
            env.run("hset k"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
    }

    #[test]
    fn unknown_command_quotes_at_most_128_bytes() {
        let mut env = TestEnv::new();
        let long = "x".repeat(200);
        let reply = env.run(&format!("nosuch {long} b"));
        let quoted = format!("'{}' ", "x".repeat(128));
        assert_eq!(
            reply,
            format!("-ERR unknown command 'nosuch', with args beginning with: {quoted}\r\n")
        );
    }

    #[test]
    fn no_multi_commands_are_refused_inside_multi() {
        let mut env = TestEnv::new();
        env.run("MULTI");
        assert_eq!(
            env.run("SHUTDOWN"),
            "-ERR Command not allowed inside a transaction\r\n"
        );
        assert_eq!(
            env.run("EXEC"),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert!(!env.server.shutdown.is_triggered());
    }

    #[test]
    fn loading_refuses_commands_without_the_loading_flag() {
        use std::sync::atomic::Ordering;
        let mut env = TestEnv::new();
        env.server.rdb.loading.store(true, Ordering::Relaxed);
        let loading = "-LOADING Redis is loading the dataset in memory\r\n";
        assert_eq!(env.run("HSET k f v"), loading);
        assert_eq!(env.run("HGET k f"), loading);
        assert_eq!(env.run("PING"), loading);
        // Commands Redis marks `loading` still run: INFO, SELECT, CONFIG GET, SHUTDOWN…
        assert!(env.run("INFO persistence").contains("loading:1\r\n"));
        assert_eq!(env.run("SELECT 1"), "+OK\r\n");
        env.run("MULTI");
        assert_eq!(env.run("HSET k f v"), loading);
        assert_eq!(
            env.run("EXEC"),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        env.server.rdb.loading.store(false, Ordering::Relaxed);
        assert_eq!(env.run("HSET k f v"), ":1\r\n");
    }

    #[test]
    fn nothing_runs_once_shutdown_began() {
        use std::sync::atomic::Ordering;
        let mut env = TestEnv::new();
        env.server.closing.store(true, Ordering::Relaxed);
        assert_eq!(env.run("HSET k f v"), "");
        assert!(env.client.close_now);
    }

    #[test]
    fn cross_protocol_guard_closes_silently() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("POST / HTTP/1.1"), "");
        assert!(env.client.close_now);
    }

    #[test]
    fn key_positions_follow_the_spec() {
        let c = Command::new("x", -2, no_handler).keys(1, -1, 1);
        assert_eq!(c.key_positions(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let c = Command::new("x", 3, no_handler).keys(1, 2, 1);
        assert_eq!(c.key_positions(3).collect::<Vec<_>>(), vec![1, 2]);
        let c = Command::new("x", 1, no_handler);
        assert_eq!(c.key_positions(1).count(), 0);
    }
}
