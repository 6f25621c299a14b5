//! COMMAND
//! COMMAND COUNT | LIST [FILTERBY <MODULE name | ACLCAT category | PATTERN pattern>]
//! COMMAND INFO [command-name ...] | DOCS [command-name ...] | GETKEYS command [arg ...]
//! COMMAND GETKEYSANDFLAGS command [arg ...]
//! COMMAND HELP
//!
//! Introspection, generated from the command table so that it always describes what the
//! server does (spec §14). Cluster-aware clients read first/last/step from COMMAND;
//! redis-cli builds its hints from COMMAND DOCS and aborts on a malformed reply
//! (clients.md §1.1). For the commands Redis 7.4.1 has too, COMMAND DOCS answers with
//! Redis 7.4.1's own entry (history, deprecation, exact argument trees; `redis7.rs`) and
//! COMMAND INFO with its tips; a container's subcommands are hashd's own. For the rest
//! (Redis 8's HGETEX/HSETEX/HGETDEL, hashd's own subcommands) the argument trees derived
//! here from each command's `syntax` line are always well-formed: every argument has a
//! name and a known type, and every `block` or `oneof` has at least one child.

use super::parse::is;
use super::{flags, table, Args, Command, CommandTable, Ctx};
use crate::error::CmdError;
use crate::glob;
use crate::protocol::Reply;

const INTROSPECTION: u32 = flags::LOADING | flags::STALE;

const SUBCOMMANDS: &[Command] = &[
    Command::new("command|count", 2, count)
        .flags(INTROSPECTION)
        .acl(&["connection"])
        .doc(
            "server",
            "2.8.13",
            "Returns a count of commands.",
            "O(1)",
            "",
        ),
    Command::new("command|list", -2, list)
        .flags(INTROSPECTION)
        .acl(&["connection"])
        .doc(
            "server",
            "7.0.0",
            "Returns a list of command names.",
            "O(N) where N is the total number of Redis commands",
            "[FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]",
        ),
    Command::new("command|info", -2, info)
        .flags(INTROSPECTION)
        .acl(&["connection"])
        .doc(
            "server",
            "2.8.13",
            "Returns information about one, multiple or all commands.",
            "O(N) where N is the number of commands to look up",
            "[command-name [command-name ...]]",
        ),
    Command::new("command|docs", -2, docs)
        .flags(INTROSPECTION)
        .acl(&["connection"])
        .doc(
            "server",
            "7.0.0",
            "Returns documentary information about one, multiple or all commands.",
            "O(N) where N is the number of commands to look up",
            "[command-name [command-name ...]]",
        ),
    Command::new("command|getkeys", -3, getkeys)
        .flags(INTROSPECTION)
        .acl(&["connection"])
        .doc(
            "server",
            "2.8.13",
            "Extracts the key names from an arbitrary command.",
            "O(N) where N is the number of arguments to the command",
            "command [arg [arg ...]]",
        ),
    Command::new("command|getkeysandflags", -3, getkeysandflags)
        .flags(INTROSPECTION)
        .acl(&["connection"])
        .doc(
            "server",
            "7.0.0",
            "Extracts the key names and access flags for an arbitrary command.",
            "O(N) where N is the number of arguments to the command",
            "command [arg [arg ...]]",
        ),
    Command::new("command|help", 2, help)
        .flags(INTROSPECTION)
        .acl(&["connection"])
        .doc(
            "server",
            "5.0.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
];

/// `COMMAND` is a container that also runs by itself (arity -1).
pub const COMMANDS: &[Command] = &[Command {
    arity: -1,
    handler: all,
    ..Command::container("command", SUBCOMMANDS)
}
.flags(INTROSPECTION)
.acl(&["connection"])
.doc(
    "server",
    "2.8.13",
    "Returns detailed information about all commands.",
    "O(N) where N is the total number of Redis commands",
    "",
)];

// ---- COMMAND / COMMAND INFO entries ----

/// ACL categories in Redis's order (the order COMMAND lists them in).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// A command's ACL categories: its group's, its explicit ones, and those Redis implies
/// from flags (write, read, admin → admin + dangerous, fast; not fast → slow).
pub fn categories(cmd: &Command) -> Vec<&'static str> {
    let mut has = [false; CATEGORIES.len()];
    let mut mark = |name: &str| {
        let name = name.strip_prefix('@').unwrap_or(name);
        if let Some(i) = CATEGORIES.iter().position(|c| c.eq_ignore_ascii_case(name)) {
            has[i] = true;
        }
    };
    // A container's own entry carries no group category (Redis reports CLIENT as @slow).
    if cmd.subcommands.is_empty() {
        match cmd.group {
            "hash" => mark("hash"),
            // WAIT is generic but blocks a connection: @blocking @connection in Redis.
            "generic" if !cmd.has(flags::BLOCKING) => mark("keyspace"),
            "connection" => mark("connection"),
            "transactions" => mark("transaction"),
            // Pub/sub commands are @pubsub by their `pubsub` flag (PUBSUB HELP has none).
            _ => {}
        }
    }
    cmd.acl.iter().for_each(|a| mark(a));
    if cmd.has(flags::WRITE) {
        mark("write");
    }
    if cmd.has(flags::READONLY) {
        mark("read");
    }
    if cmd.has(flags::ADMIN) {
        mark("admin");
        mark("dangerous");
    }
    if cmd.has(flags::PUBSUB) {
        mark("pubsub");
    }
    if cmd.has(flags::BLOCKING) {
        mark("blocking");
    }
    if cmd.has(flags::FAST) {
        mark("fast");
    } else {
        mark("slow");
    }
    CATEGORIES
        .iter()
        .zip(has)
        .filter_map(|(c, h)| h.then_some(*c))
        .collect()
}

/// The key-spec flags Redis gives a command: what it does to its key (RW/RO/OW/RM) and
/// whether it reads, inserts, updates or deletes user data.
fn key_spec_flags(cmd: &Command) -> &'static [&'static str] {
    match cmd.name {
        "del" | "unlink" => &["RM", "delete"],
        "hdel" => &["RW", "delete"],
        "hgetdel" => &["RW", "access", "delete"],
        "hsetnx" => &["RW", "insert"],
        "hincrby" | "hincrbyfloat" | "hgetex" => &["RW", "access", "update"],
        // RESTORE overwrites whatever is there (REPLACE) without reading it.
        "restore" => &["OW", "update"],
        // Metadata only: no user data is returned. (HTTL and friends are `RO access` in
        // Redis 7.4.1, so they fall through to the read-only default.)
        "exists" | "type" | "touch" | "watch" | "hexists" | "hlen" | "hstrlen" | "memory|usage" => {
            &["RO"]
        }
        name if name.starts_with("object|") => &["RO"],
        _ if cmd.has(flags::WRITE) => &["RW", "update"],
        _ if cmd.has(flags::READONLY) => &["RO", "access"],
        _ => &["RO"],
    }
}

/// One key spec as COMMAND INFO shows it: `begin_search` by index, `find_keys` by range.
struct KeySpec {
    flags: &'static [&'static str],
    /// Index of the first key.
    begin: i32,
    /// Last key relative to `begin` (`>= 0`), or counted from the end (`< 0`).
    last: i32,
    step: i32,
}

impl KeySpec {
    /// Whether the key at `pos` of a request of `argc` arguments is one of this spec's.
    fn covers(&self, pos: usize, argc: usize) -> bool {
        let (pos, argc) = (pos as i64, argc as i64);
        let first = i64::from(self.begin);
        let last = if self.last >= 0 {
            first + i64::from(self.last)
        } else {
            argc + i64::from(self.last)
        };
        pos >= first && pos <= last && (pos - first) % i64::from(self.step.max(1)) == 0
    }
}

/// The key specs Redis 7.4.1 gives a command: one range from the table's first/last/step,
/// except where Redis tells the keys apart (RENAME's source is read and deleted, its
/// destination overwritten).
fn key_specs(cmd: &Command) -> Vec<KeySpec> {
    const SOURCE: &[&str] = &["RW", "access", "delete"];
    let one = |flags, begin| KeySpec {
        flags,
        begin,
        last: 0,
        step: 1,
    };
    match cmd.name {
        _ if cmd.first_key <= 0 => Vec::new(),
        "rename" => vec![one(SOURCE, 1), one(&["OW", "update"], 2)],
        "renamenx" => vec![one(SOURCE, 1), one(&["OW", "insert"], 2)],
        _ => vec![KeySpec {
            flags: key_spec_flags(cmd),
            begin: cmd.first_key,
            // Relative to the first key, as key specs count; a negative last key counts
            // from the end and stays as it is.
            last: if cmd.last_key >= 0 {
                cmd.last_key - cmd.first_key
            } else {
                cmd.last_key
            },
            step: cmd.step,
        }],
    }
}

/// What a key spec's flags make of its keys for ACL `%R~` / `%W~`: `access` reads,
/// `insert`/`update`/`delete` write.
fn spec_access(spec: &KeySpec) -> crate::acl::KeyAccess {
    let mut access = crate::acl::KeyAccess::default();
    for f in spec.flags {
        match *f {
            "access" => access.read = true,
            "insert" | "update" | "delete" => access.write = true,
            _ => {}
        }
    }
    access
}

/// The keys of a request of `argc` arguments to the command at table `index`, and what
/// the command does to each (from its key specs).
pub fn key_access(index: usize, cmd: &Command, argc: usize) -> Vec<(usize, crate::acl::KeyAccess)> {
    // Every command's specs with their access, built once: the ACL check asks on every
    // command of a user with key patterns.
    type Specs = Vec<(KeySpec, crate::acl::KeyAccess)>;
    static SPECS: std::sync::OnceLock<Vec<Specs>> = std::sync::OnceLock::new();
    let all = SPECS.get_or_init(|| {
        super::table()
            .all
            .iter()
            .map(|c| {
                key_specs(c)
                    .into_iter()
                    .map(|s| {
                        let a = spec_access(&s);
                        (s, a)
                    })
                    .collect()
            })
            .collect()
    });
    let Some(specs) = all.get(index) else {
        return Vec::new();
    };
    cmd.key_positions(argc)
        .map(|pos| {
            let mut access = crate::acl::KeyAccess::default();
            for (_, a) in specs.iter().filter(|(s, _)| s.covers(pos, argc)) {
                access.read |= a.read;
                access.write |= a.write;
            }
            (pos, access)
        })
        .collect()
}

/// Key-spec flags as Redis writes them: a set of status strings (an array in RESP2).
fn write_key_flags(reply: &mut Reply<'_>, flags: &[&str]) {
    reply.set(flags.len());
    flags.iter().for_each(|s| reply.simple(s));
}

fn write_key_specs(reply: &mut Reply<'_>, cmd: &Command) {
    let specs = key_specs(cmd);
    // A set in RESP3, as Redis's addReplyCommandKeySpecs writes it.
    reply.set(specs.len());
    for spec in &specs {
        reply.map(3);
        reply.bulk(b"flags");
        write_key_flags(reply, spec.flags);
        reply.bulk(b"begin_search");
        reply.map(2);
        reply.bulk(b"type");
        reply.bulk(b"index");
        reply.bulk(b"spec");
        reply.map(1);
        reply.bulk(b"index");
        reply.int(i64::from(spec.begin));
        reply.bulk(b"find_keys");
        reply.map(2);
        reply.bulk(b"type");
        reply.bulk(b"range");
        reply.bulk(b"spec");
        reply.map(3);
        reply.bulk(b"lastkey");
        reply.int(i64::from(spec.last));
        reply.bulk(b"keystep");
        reply.int(i64::from(spec.step));
        reply.bulk(b"limit");
        reply.int(0);
    }
}

/// One 10-element COMMAND entry.
fn write_entry(reply: &mut Reply<'_>, cmd: &Command) {
    reply.array(10);
    reply.bulk(cmd.name.as_bytes());
    reply.int(i64::from(cmd.arity));
    let names: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(f, _)| cmd.has(*f))
        .map(|(_, n)| *n)
        .collect();
    reply.set(names.len());
    names.iter().for_each(|n| reply.simple(n));
    reply.int(i64::from(cmd.first_key));
    reply.int(i64::from(cmd.last_key));
    reply.int(i64::from(cmd.step));
    let cats = categories(cmd);
    reply.set(cats.len());
    cats.iter().for_each(|c| reply.simple(&format!("@{c}")));
    // Tips and key specs are sets in RESP3, and so is the empty subcommand list (a
    // container's is an array), as Redis 7.4.1 writes them.
    let tips = tips(cmd.name);
    reply.set(tips.len());
    tips.iter().for_each(|t| reply.bulk(t.as_bytes()));
    write_key_specs(reply, cmd);
    if cmd.subcommands.is_empty() {
        reply.set(0);
    } else {
        reply.array(cmd.subcommands.len());
    }
    cmd.subcommands.iter().for_each(|s| write_entry(reply, s));
}

/// A command by full name, case-insensitively: `hset`, or `client|list` for a subcommand.
fn lookup_path(name: &[u8]) -> Option<&'static Command> {
    let mut parts = name.split(|&b| b == b'|');
    let base = table().get(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(base),
        (Some(sub), None) if !base.subcommands.is_empty() => CommandTable::subcommand(base, sub),
        _ => None,
    }
}

/// COMMAND
fn all(_ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let cmds = &table().commands;
    reply.array(cmds.len());
    cmds.iter().for_each(|c| write_entry(reply, c));
    Ok(())
}

/// COMMAND COUNT
fn count(_ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.int(table().commands.len() as i64);
    Ok(())
}

/// COMMAND INFO [command-name ...]
fn info(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() == 2 {
        return all(ctx, args, reply);
    }
    reply.array(args.len() - 2);
    for name in args.from(2) {
        match lookup_path(name) {
            Some(c) => write_entry(reply, c),
            None => reply.null(),
        }
    }
    Ok(())
}

/// COMMAND LIST [FILTERBY <MODULE name | ACLCAT category | PATTERN pattern>]
fn list(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    enum Filter<'a> {
        All,
        Module,
        AclCat(&'a [u8]),
        Pattern(&'a [u8]),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if is(args.get(2), "filterby") => {
            let (kind, arg) = (args.get(3), args.get(4));
            if is(kind, "module") {
                Filter::Module
            } else if is(kind, "aclcat") {
                Filter::AclCat(arg)
            } else if is(kind, "pattern") {
                Filter::Pattern(arg)
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let names: Vec<&str> = table()
        .all
        .iter()
        .filter(|c| match filter {
            Filter::All => true,
            // hashd has no modules.
            Filter::Module => false,
            Filter::AclCat(cat) => categories(c)
                .iter()
                .any(|k| k.as_bytes().eq_ignore_ascii_case(cat)),
            Filter::Pattern(p) => glob::matches(p, c.name.as_bytes(), true),
        })
        .map(|c| c.name)
        .collect();
    reply.array(names.len());
    names.iter().for_each(|n| reply.bulk(n.as_bytes()));
    Ok(())
}

/// COMMAND GETKEYS command [arg ...]
fn getkeys(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    getkeys_generic(args, reply, false)
}

/// COMMAND GETKEYSANDFLAGS command [arg ...]: `[[key, [flag ...]], ...]`.
fn getkeysandflags(
    _ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    getkeys_generic(args, reply, true)
}

/// Redis's `getKeysSubcommandImpl`: the command (and subcommand) must exist, have keys,
/// and the argument count must fit its arity, in that order.
fn getkeys_generic(
    args: Args<'_>,
    reply: &mut Reply<'_>,
    with_flags: bool,
) -> Result<(), CmdError> {
    let argv: Vec<&[u8]> = args.from(2).collect();
    let Some(base) = table().get(argv[0]) else {
        return Err(CmdError::other("ERR Invalid command specified"));
    };
    let cmd = if base.subcommands.is_empty() || argv.len() == 1 {
        base
    } else {
        CommandTable::subcommand(base, argv[1])
            .ok_or_else(|| CmdError::other("ERR Invalid command specified"))?
    };
    if cmd.first_key <= 0 {
        return Err(CmdError::other("ERR The command has no key arguments"));
    }
    let argc = argv.len() as i64;
    let arity = i64::from(cmd.arity);
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::other(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let positions: Vec<usize> = cmd.key_positions(argv.len()).collect();
    if positions.is_empty() {
        return Err(CmdError::other(
            "ERR Invalid arguments specified for command",
        ));
    }
    let specs = key_specs(cmd);
    reply.array(positions.len());
    for pos in positions {
        if !with_flags {
            reply.bulk(argv[pos]);
            continue;
        }
        reply.array(2);
        reply.bulk(argv[pos]);
        let flags = specs
            .iter()
            .find(|s| s.covers(pos, argv.len()))
            .map_or(&[][..], |s| s.flags);
        write_key_flags(reply, flags);
    }
    Ok(())
}

const HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
];

/// COMMAND HELP
fn help(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    super::client::help_reply(reply, args.get(0), HELP);
    Ok(())
}

// ---- COMMAND DOCS ----

/// COMMAND DOCS [command-name ...]
fn docs(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let cmds: Vec<&Command> = if args.len() == 2 {
        table().commands.clone()
    } else {
        // Unknown names are left out.
        args.from(2).filter_map(lookup_path).collect()
    };
    reply.map(cmds.len());
    for c in cmds {
        reply.bulk(c.name.as_bytes());
        write_doc(reply, c);
    }
    Ok(())
}

/// Redis 7.4.1's COMMAND DOCS entries and COMMAND INFO tips (tests/conformance.rs writes
/// the file from the reference Redis and compares the answers).
mod redis7;

/// Redis 7.4.1's COMMAND DOCS map for `name` (RESP3, without `subcommands`), if hashd
/// serves the command as Redis 7.4.1 describes it.
fn redis_doc(name: &str) -> Option<&'static [u8]> {
    let i = redis7::DOCS.binary_search_by(|(n, _)| n.cmp(&name)).ok()?;
    Some(redis7::DOCS[i].1)
}

/// Redis 7.4.1's COMMAND INFO tips for `name` (`nondeterministic_output`,
/// `request_policy:all_shards`, …): what a client or proxy should know about the reply.
fn tips(name: &str) -> &'static [&'static str] {
    redis7::TIPS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .map_or(&[], |i| redis7::TIPS[i].1)
}

/// The header of the RESP aggregate at `pos` of `data`: its count and where its first
/// element starts.
fn stored_header(data: &[u8], pos: usize) -> Option<(usize, usize)> {
    let eol = pos + data.get(pos..)?.windows(2).position(|w| w == b"\r\n")?;
    let n = crate::protocol::parse_i64(data.get(pos + 1..eol)?)?;
    Some((usize::try_from(n).ok()?, eol + 2))
}

/// Writes the stored RESP3 value at `pos` of `data` through `reply` (so that a RESP2
/// client gets maps and sets as arrays, as Redis writes them) and returns where it ends.
/// Only the types COMMAND DOCS uses occur; anything else ends the data (the unit tests
/// replay every stored entry).
fn replay(reply: &mut Reply<'_>, data: &[u8], pos: usize) -> usize {
    if data.get(pos) == Some(&b'+') {
        let Some(len) = data[pos..].windows(2).position(|w| w == b"\r\n") else {
            return data.len();
        };
        reply.simple(std::str::from_utf8(&data[pos + 1..pos + len]).unwrap_or_default());
        return pos + len + 2;
    }
    let Some((n, next)) = stored_header(data, pos) else {
        return data.len();
    };
    match data[pos] {
        b'$' => match data.get(next..next + n) {
            Some(payload) => {
                reply.bulk(payload);
                next + n + 2
            }
            None => data.len(),
        },
        b':' => {
            reply.int(n as i64);
            next
        }
        kind @ (b'*' | b'~' | b'%') => {
            let items = match kind {
                b'*' => {
                    reply.array(n);
                    n
                }
                b'~' => {
                    reply.set(n);
                    n
                }
                _ => {
                    reply.map(n);
                    2 * n
                }
            };
            (0..items).fold(next, |at, _| replay(reply, data, at))
        }
        _ => data.len(),
    }
}

/// A stored entry, and the command's own subcommands (hashd's, not Redis's).
fn write_stored_doc(reply: &mut Reply<'_>, cmd: &Command, data: &[u8]) {
    let (n, mut pos) = stored_header(data, 0).unwrap_or((0, data.len()));
    reply.map(n + usize::from(!cmd.subcommands.is_empty()));
    for _ in 0..2 * n {
        pos = replay(reply, data, pos);
    }
    write_subcommand_docs(reply, cmd);
}

fn write_subcommand_docs(reply: &mut Reply<'_>, cmd: &Command) {
    if !cmd.subcommands.is_empty() {
        reply.bulk(b"subcommands");
        reply.map(cmd.subcommands.len());
        for s in cmd.subcommands {
            reply.bulk(s.name.as_bytes());
            write_doc(reply, s);
        }
    }
}

/// One COMMAND DOCS entry: Redis 7.4.1's where hashd serves the command as Redis does,
/// else derived from the table (hashd's own subcommands, Redis 8's hash commands).
fn write_doc(reply: &mut Reply<'_>, cmd: &Command) {
    if let Some(data) = redis_doc(cmd.name) {
        return write_stored_doc(reply, cmd, data);
    }
    let args = doc_args(cmd);
    let len = 4 + usize::from(!args.is_empty()) + usize::from(!cmd.subcommands.is_empty());
    reply.map(len);
    // Always present: redis-cli prints the summary of every entry without checking it.
    reply.bulk(b"summary");
    reply.bulk(cmd.summary.as_bytes());
    reply.bulk(b"since");
    reply.bulk(cmd.since.as_bytes());
    reply.bulk(b"group");
    reply.bulk(cmd.group.as_bytes());
    reply.bulk(b"complexity");
    reply.bulk(cmd.complexity.as_bytes());
    if !args.is_empty() {
        reply.bulk(b"arguments");
        write_args(reply, &args);
    }
    write_subcommand_docs(reply, cmd);
}

/// Argument types, with Redis's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    String,
    Integer,
    Double,
    Key,
    Pattern,
    UnixTime,
    PureToken,
    OneOf,
    Block,
}

impl ArgType {
    pub fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::Double => "double",
            ArgType::Key => "key",
            ArgType::Pattern => "pattern",
            ArgType::UnixTime => "unix-time",
            ArgType::PureToken => "pure-token",
            ArgType::OneOf => "oneof",
            ArgType::Block => "block",
        }
    }
}

/// One argument of COMMAND DOCS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocArg {
    pub name: String,
    pub kind: ArgType,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    /// The token is repeated with each value (`GET pattern [GET pattern ...]`).
    pub multiple_token: bool,
    /// Children of a `oneof` or `block` (never empty for those).
    pub args: Vec<DocArg>,
}

impl DocArg {
    fn new(name: String, kind: ArgType) -> Self {
        DocArg {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            args: Vec::new(),
        }
    }

    fn group(name: String, kind: ArgType, args: Vec<DocArg>) -> Self {
        DocArg {
            args,
            ..DocArg::new(name, kind)
        }
    }
}

fn write_args(reply: &mut Reply<'_>, args: &[DocArg]) {
    reply.array(args.len());
    for a in args {
        let nested = matches!(a.kind, ArgType::OneOf | ArgType::Block);
        let flags: Vec<&str> = [
            (a.optional, "optional"),
            (a.multiple, "multiple"),
            (a.multiple_token, "multiple_token"),
        ]
        .iter()
        .filter_map(|&(on, n)| on.then_some(n))
        .collect();
        let len = 3
            + usize::from(a.kind == ArgType::Key)
            + usize::from(a.token.is_some())
            + usize::from(!flags.is_empty());
        reply.map(len);
        reply.bulk(b"name");
        reply.bulk(a.name.as_bytes());
        reply.bulk(b"type");
        reply.bulk(a.kind.name().as_bytes());
        if !nested {
            reply.bulk(b"display_text");
            reply.bulk(a.name.as_bytes());
        }
        if a.kind == ArgType::Key {
            // hashd describes each command's keys with one key spec.
            reply.bulk(b"key_spec_index");
            reply.int(0);
        }
        if let Some(t) = &a.token {
            reply.bulk(b"token");
            reply.bulk(t.as_bytes());
        }
        if !flags.is_empty() {
            reply.bulk(b"flags");
            reply.set(flags.len());
            flags.iter().for_each(|f| reply.simple(f));
        }
        if nested {
            reply.bulk(b"arguments");
            write_args(reply, &a.args);
        }
    }
}

/// Redis 8's names for option groups a synopsis leaves unnamed (its hgetex.json and
/// hsetex.json; Redis 7.4.1 has neither command): (command, derived name, Redis's name).
const GROUP_NAMES: &[(&str, &str, &str)] = &[
    ("hgetex", "choice", "expiration"),
    ("hsetex", "fnx-fxx", "condition"),
    ("hsetex", "choice", "expiration"),
];

/// The argument tree of a command, from its `syntax` line.
pub fn doc_args(cmd: &Command) -> Vec<DocArg> {
    let hints = Hints {
        has_keys: cmd.first_key > 0,
        float: cmd.name.contains("float"),
    };
    let mut args = parse_syntax(cmd.syntax, hints);
    for a in &mut args {
        if let Some((_, _, name)) = GROUP_NAMES
            .iter()
            .find(|(c, derived, _)| *c == cmd.name && a.name == *derived)
        {
            a.name = (*name).to_string();
        }
    }
    args
}

/// What the argument types are inferred from besides the names.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints {
    /// The command has keys: `key`-like names are keys (otherwise plain strings).
    pub has_keys: bool,
    /// An `increment` is a double (HINCRBYFLOAT).
    pub float: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Open(u8),
    Close,
    Bar,
    Word(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Word(String),
    Ellipsis,
    Group {
        optional: bool,
        alts: Vec<Vec<Node>>,
    },
    Repeat(Vec<Node>),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, toks: &mut Vec<Tok>| {
        if !word.is_empty() {
            toks.push(Tok::Word(std::mem::take(word)));
        }
    };
    for ch in s.chars() {
        match ch {
            '[' | '<' => {
                flush(&mut word, &mut toks);
                toks.push(Tok::Open(ch as u8));
            }
            ']' | '>' => {
                flush(&mut word, &mut toks);
                toks.push(Tok::Close);
            }
            '|' => {
                flush(&mut word, &mut toks);
                toks.push(Tok::Bar);
            }
            c if c.is_whitespace() => flush(&mut word, &mut toks),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut toks);
    toks
}

/// Parses alternatives up to the matching close (or the end). Unbalanced input is
/// tolerated: a missing close ends at the end, a stray one at top level is skipped.
fn parse_alts(toks: &[Tok], pos: &mut usize, nested: bool) -> Vec<Vec<Node>> {
    let mut alts: Vec<Vec<Node>> = vec![Vec::new()];
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        let current = alts.last_mut().expect("alts is never empty");
        match t {
            Tok::Open(c) => {
                let inner = parse_alts(toks, pos, true);
                current.push(Node::Group {
                    optional: *c == b'[',
                    alts: inner,
                });
            }
            Tok::Close if nested => break,
            Tok::Close => {}
            Tok::Bar => alts.push(Vec::new()),
            Tok::Word(w) if w == "..." => current.push(Node::Ellipsis),
            Tok::Word(w) => current.push(Node::Word(w.clone())),
        }
    }
    alts
}

/// Turns `x [x ...]` (and `a b [a b ...]`) into one repeated item, recursively.
fn fold_repeats(seq: Vec<Node>) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    for node in seq {
        match node {
            Node::Ellipsis => match out.pop() {
                Some(Node::Repeat(body)) => out.push(Node::Repeat(body)),
                Some(prev) => out.push(Node::Repeat(vec![prev])),
                None => {}
            },
            Node::Group { optional, alts }
                if optional
                    && alts.len() == 1
                    && alts[0].len() > 1
                    && alts[0].last() == Some(&Node::Ellipsis) =>
            {
                let mut body = alts.into_iter().next().unwrap_or_default();
                body.pop();
                let body = fold_repeats(body);
                let k = body.len();
                if k > 0 && out.len() >= k && out[out.len() - k..] == body[..] {
                    out.truncate(out.len() - k);
                    out.push(Node::Repeat(body));
                } else if k > 0 {
                    // `[x ...]` alone: zero or more.
                    out.push(Node::Group {
                        optional: true,
                        alts: vec![vec![Node::Repeat(body)]],
                    });
                }
            }
            Node::Group { optional, alts } => out.push(Node::Group {
                optional,
                alts: alts.into_iter().map(fold_repeats).collect(),
            }),
            other => out.push(other),
        }
    }
    out
}

/// A bare upper-case word (or number) is a literal token: `FIELDS`, `NX`, `LIB-NAME`, `0`.
fn is_token(w: &str) -> bool {
    w.chars().any(|c| c.is_ascii_alphanumeric())
        && w.chars().all(|c| {
            c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | ':' | '.')
        })
        && !w.chars().any(|c| c.is_ascii_lowercase())
}

const INTEGER_NAMES: &[&str] = &[
    "count",
    "numfields",
    "numkeys",
    "seconds",
    "milliseconds",
    "index",
    "db",
    "timeout",
    "cursor",
    "client-id",
    "port",
    "protover",
    "maxage",
    "offset",
    "limit",
    "samples",
];

const KEY_NAMES: &[&str] = &["key", "newkey", "destination", "source"];

fn leaf(name: &str, hints: Hints) -> DocArg {
    let kind = if hints.has_keys && KEY_NAMES.contains(&name) {
        ArgType::Key
    } else if name == "pattern" {
        ArgType::Pattern
    } else if name.contains("unix-time") {
        ArgType::UnixTime
    } else if name == "increment" && hints.float {
        ArgType::Double
    } else if name == "increment" || INTEGER_NAMES.contains(&name) {
        ArgType::Integer
    } else {
        ArgType::String
    };
    DocArg::new(name.to_string(), kind)
}

/// Longest generated group name; past it a generic name reads better.
const MAX_JOINED_NAME: usize = 32;

/// A name for a group the synopsis does not name: its members' names joined
/// (`nx-xx-gt-lt`, `count-withvalues`) when they are plain and few, else `fallback`.
fn joined_name(args: &[DocArg], fallback: &str) -> String {
    let plain = args
        .iter()
        .all(|a| !matches!(a.kind, ArgType::OneOf | ArgType::Block));
    let joined = args
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join("-");
    if plain && joined.len() <= MAX_JOINED_NAME {
        joined
    } else {
        fallback.to_string()
    }
}

/// Several arguments as one: itself if there is one, a block otherwise.
fn single(mut args: Vec<DocArg>) -> Option<DocArg> {
    match args.len() {
        0 => None,
        1 => args.pop(),
        _ => Some(DocArg::group(
            joined_name(&args, "options"),
            ArgType::Block,
            args,
        )),
    }
}

enum Item {
    Token(String),
    Arg(DocArg),
}

fn node_item(node: Node, hints: Hints) -> Option<Item> {
    match node {
        Node::Word(w) if is_token(&w) => Some(Item::Token(w)),
        Node::Word(w) => Some(Item::Arg(leaf(&w, hints))),
        Node::Ellipsis => None,
        Node::Repeat(body) => {
            let mut args = seq_args(body, hints);
            let mut arg = match args.len() {
                0 => return None,
                1 => args.pop()?,
                _ => DocArg::group("data".into(), ArgType::Block, args),
            };
            arg.multiple = true;
            arg.multiple_token = arg.token.is_some();
            Some(Item::Arg(arg))
        }
        Node::Group { optional, alts } => {
            let mut arg = if alts.len() > 1 {
                let choices: Vec<DocArg> = alts
                    .into_iter()
                    .filter_map(|alt| single(seq_args(alt, hints)))
                    .collect();
                if choices.len() > 1 {
                    DocArg::group(joined_name(&choices, "choice"), ArgType::OneOf, choices)
                } else {
                    single(choices)?
                }
            } else {
                single(seq_args(alts.into_iter().next()?, hints))?
            };
            arg.optional |= optional;
            Some(Item::Arg(arg))
        }
    }
}

/// A sequence's arguments. A literal token takes the arguments after it up to the next
/// token: `MATCH pattern` is one argument with a token, `FIELDS numfields field [field ...]`
/// a block, and a token alone a pure token.
fn seq_args(seq: Vec<Node>, hints: Hints) -> Vec<DocArg> {
    let items: Vec<Item> = seq
        .into_iter()
        .filter_map(|n| node_item(n, hints))
        .collect();
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while let Some(item) = it.next() {
        match item {
            Item::Arg(a) => out.push(a),
            Item::Token(t) => {
                let mut taken = Vec::new();
                while let Some(Item::Arg(_)) = it.peek() {
                    if let Some(Item::Arg(a)) = it.next() {
                        taken.push(a);
                    }
                }
                let lower = t.to_ascii_lowercase();
                let mut arg = match taken.len() {
                    0 => DocArg::new(lower, ArgType::PureToken),
                    1 if taken[0].token.is_none() && !taken[0].optional => taken
                        .pop()
                        .unwrap_or_else(|| DocArg::new(lower, ArgType::String)),
                    _ => DocArg::group(lower, ArgType::Block, taken),
                };
                arg.token = Some(t);
                out.push(arg);
            }
        }
    }
    out
}

/// Parses a Redis-documentation-style synopsis (`key field [field ...]`,
/// `[NX | XX | GT | LT]`, `FIELDS numfields field [field ...]`) into DOCS arguments.
pub fn parse_syntax(syntax: &str, hints: Hints) -> Vec<DocArg> {
    let toks = tokenize(syntax);
    let mut pos = 0;
    let mut alts = parse_alts(&toks, &mut pos, false);
    if alts.len() > 1 {
        // A top-level `a | b`: one required choice.
        let node = Node::Group {
            optional: false,
            alts,
        };
        return seq_args(fold_repeats(vec![node]), hints);
    }
    seq_args(fold_repeats(alts.pop().unwrap_or_default()), hints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::TestEnv;

    // ---- a small RESP3 reader, to check reply shapes the way clients do ----

    #[derive(Debug, Clone, PartialEq)]
    enum V {
        Simple(String),
        Err(String),
        Int(i64),
        Bulk(String),
        Null,
        Array(Vec<V>),
        Map(Vec<(V, V)>),
        Set(Vec<V>),
    }

    fn read(s: &[u8], pos: &mut usize) -> V {
        let end = s[*pos..].windows(2).position(|w| w == b"\r\n").unwrap() + *pos;
        let line = std::str::from_utf8(&s[*pos + 1..end]).unwrap().to_string();
        let kind = s[*pos];
        *pos = end + 2;
        let n = || line.parse::<i64>().unwrap();
        match kind {
            b'+' => V::Simple(line),
            b'-' => V::Err(line),
            b':' => V::Int(n()),
            b'_' => V::Null,
            b'$' | b'=' => {
                if n() < 0 {
                    return V::Null;
                }
                let len = n() as usize;
                let body = String::from_utf8(s[*pos..*pos + len].to_vec()).unwrap();
                *pos += len + 2;
                V::Bulk(body)
            }
            b'*' | b'~' => {
                if n() < 0 {
                    return V::Null;
                }
                let items = (0..n()).map(|_| read(s, pos)).collect();
                if kind == b'*' {
                    V::Array(items)
                } else {
                    V::Set(items)
                }
            }
            b'%' => V::Map(
                (0..n())
                    .map(|_| {
                        let k = read(s, pos);
                        (k, read(s, pos))
                    })
                    .collect(),
            ),
            other => panic!("unexpected type byte {}", other as char),
        }
    }

    fn parse(reply: &str) -> V {
        let mut pos = 0;
        let v = read(reply.as_bytes(), &mut pos);
        assert_eq!(pos, reply.len(), "trailing bytes in {reply:?}");
        v
    }

    fn bulk(v: &V) -> &str {
        match v {
            V::Bulk(s) => s,
            other => panic!("expected bulk, got {other:?}"),
        }
    }

    /// The checks redis-cli 7 asserts on a COMMAND DOCS argument list.
    fn check_cli_args(args: &V) {
        let V::Array(list) = args else {
            panic!("arguments must be an array: {args:?}")
        };
        for a in list {
            let V::Map(fields) = a else {
                panic!("argument must be a map: {a:?}")
            };
            let mut has_name = false;
            let mut kind = String::new();
            let mut children = None;
            for (k, v) in fields {
                match bulk(k) {
                    "name" | "display_text" | "token" | "since" | "summary"
                    | "deprecated_since" => {
                        assert!(!bulk(v).is_empty() || bulk(k) == "token");
                        has_name |= bulk(k) == "name";
                    }
                    "type" => kind = bulk(v).to_string(),
                    "key_spec_index" => assert!(matches!(v, V::Int(0..))),
                    "flags" => {
                        let V::Set(fl) = v else {
                            panic!("flags must be a set")
                        };
                        for f in fl {
                            let V::Simple(f) = f else {
                                panic!("flag must be a simple string")
                            };
                            assert!(
                                ["optional", "multiple", "multiple_token"].contains(&f.as_str())
                            );
                        }
                    }
                    "arguments" => children = Some(v),
                    other => panic!("unexpected argument key {other}"),
                }
            }
            assert!(has_name);
            assert!(
                [
                    "string",
                    "integer",
                    "double",
                    "key",
                    "pattern",
                    "unix-time",
                    "pure-token",
                    "oneof",
                    "block"
                ]
                .contains(&kind.as_str()),
                "{kind}"
            );
            let nested = kind == "oneof" || kind == "block";
            assert_eq!(nested, children.is_some(), "{a:?}");
            if let Some(V::Array(c)) = children {
                assert!(!c.is_empty(), "empty {kind}: {a:?}");
            }
            if let Some(c) = children {
                check_cli_args(c);
            }
        }
    }

    fn check_cli_doc(doc: &V) {
        let V::Map(fields) = doc else {
            panic!("doc must be a map: {doc:?}")
        };
        // redis-cli reads `summary` unconditionally when printing help.
        assert!(fields.iter().any(|(k, _)| bulk(k) == "summary"), "{doc:?}");
        for (k, v) in fields {
            match bulk(k) {
                "summary" | "since" | "group" | "complexity" | "deprecated_since"
                | "replaced_by" => {
                    bulk(v);
                }
                // Redis's: `[[version, text], ...]` (a set in RESP3), and a set of flags.
                "history" => {
                    let V::Set(h) = v else {
                        panic!("history must be a set: {v:?}")
                    };
                    for e in h {
                        let V::Array(pair) = e else { panic!("{e:?}") };
                        assert_eq!(pair.len(), 2);
                        pair.iter().for_each(|x| {
                            bulk(x);
                        });
                    }
                }
                "doc_flags" => {
                    let V::Set(f) = v else { panic!("{v:?}") };
                    assert!(f.iter().all(|x| matches!(x, V::Simple(_))));
                }
                "arguments" => check_cli_args(v),
                "subcommands" => {
                    let V::Map(subs) = v else {
                        panic!("subcommands must be a map")
                    };
                    for (name, d) in subs {
                        assert!(bulk(name).contains('|'));
                        check_cli_doc(d);
                    }
                }
                other => panic!("unexpected doc key {other}"),
            }
        }
    }

    #[test]
    fn docs_of_the_whole_table_satisfy_redis_cli() {
        let mut env = TestEnv::new();
        env.resp3();
        let V::Map(all) = parse(&env.run("COMMAND DOCS")) else {
            panic!("COMMAND DOCS must be a map")
        };
        assert_eq!(all.len(), table().commands.len());
        for (name, doc) in &all {
            assert!(lookup_path(bulk(name).as_bytes()).is_some());
            check_cli_doc(doc);
        }
        // RESP2 carries the same content as flat arrays.
        env.client.set_protocol(crate::protocol::Protocol::Resp2);
        let V::Array(flat) = parse(&env.run("COMMAND DOCS")) else {
            panic!()
        };
        assert_eq!(flat.len(), 2 * all.len());
    }

    /// The stored Redis 7.4.1 entries replay to exactly their own bytes in RESP3, are
    /// sorted (they are binary-searched) and name commands hashd serves.
    #[test]
    fn stored_redis_docs_replay_exactly() {
        use crate::protocol::Protocol;
        assert!(redis7::DOCS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(redis7::TIPS.windows(2).all(|w| w[0].0 < w[1].0));
        for (name, data) in redis7::DOCS {
            assert!(lookup_path(name.as_bytes()).is_some(), "{name}");
            let mut out = Vec::new();
            let mut reply = Reply::new(&mut out, Protocol::Resp3);
            assert_eq!(replay(&mut reply, data, 0), data.len(), "{name}");
            assert_eq!(&out[..], &data[..], "{name}");
            check_cli_doc(&parse(std::str::from_utf8(data).unwrap()));
        }
        for (name, _) in redis7::TIPS {
            assert!(redis_doc(name).is_some(), "{name}");
        }
        // Truncated data ends the replay instead of reading past it.
        let mut out = Vec::new();
        let mut reply = Reply::new(&mut out, Protocol::Resp3);
        assert_eq!(replay(&mut reply, b"*2\r\n$5\r\nab", 0), 10);
    }

    /// The table's own `.doc(...)` metadata says what Redis 7.4.1's entry says, where
    /// COMMAND DOCS answers with the latter (an empty complexity is Redis's absent one).
    #[test]
    fn table_docs_agree_with_the_stored_ones() {
        for (name, data) in redis7::DOCS {
            let cmd = lookup_path(name.as_bytes()).unwrap();
            let V::Map(fields) = parse(std::str::from_utf8(data).unwrap()) else {
                panic!("{name}")
            };
            let field = |key: &str| {
                fields
                    .iter()
                    .find(|(k, _)| bulk(k) == key)
                    .map_or("", |(_, v)| bulk(v))
                    .to_string()
            };
            assert_eq!(cmd.summary, field("summary"), "{name}");
            assert_eq!(cmd.since, field("since"), "{name}");
            assert_eq!(cmd.group, field("group"), "{name}");
            assert_eq!(cmd.complexity, field("complexity"), "{name}");
        }
    }

    /// HGETEX, HSETEX and HGETDEL are Redis 8's: their trees have the shape and names of
    /// its hgetex.json, hsetex.json and hgetdel.json.
    #[test]
    fn redis8_hash_commands_docs() {
        let names = |cmd: &str| -> Vec<(String, &'static str, Vec<String>)> {
            doc_args(table().get(cmd.as_bytes()).unwrap())
                .into_iter()
                .map(|a| {
                    let kids = a.args.iter().map(|c| c.name.clone()).collect();
                    (a.name, a.kind.name(), kids)
                })
                .collect()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let expiry = ["seconds", "milliseconds", "unix-time-seconds"];
        let mut hgetex_expiry = s(&expiry);
        hgetex_expiry.extend(s(&["unix-time-milliseconds", "persist"]));
        assert_eq!(
            names("hgetex"),
            vec![
                ("key".into(), "key", vec![]),
                ("expiration".into(), "oneof", hgetex_expiry),
                ("fields".into(), "block", s(&["numfields", "field"])),
            ]
        );
        let mut hsetex_expiry = s(&expiry);
        hsetex_expiry.extend(s(&["unix-time-milliseconds", "keepttl"]));
        assert_eq!(
            names("hsetex"),
            vec![
                ("key".into(), "key", vec![]),
                ("condition".into(), "oneof", s(&["fnx", "fxx"])),
                ("expiration".into(), "oneof", hsetex_expiry),
                ("fields".into(), "block", s(&["numfields", "data"])),
            ]
        );
        assert_eq!(
            names("hgetdel"),
            vec![
                ("key".into(), "key", vec![]),
                ("fields".into(), "block", s(&["numfields", "field"])),
            ]
        );
    }

    #[test]
    fn docs_exact_bytes_for_one_command() {
        let mut env = TestEnv::new();
        env.resp3();
        assert_eq!(
            env.run("COMMAND DOCS echo"),
            "%1\r\n$4\r\necho\r\n%5\r\n\
             $7\r\nsummary\r\n$25\r\nReturns the given string.\r\n\
             $5\r\nsince\r\n$5\r\n1.0.0\r\n\
             $5\r\ngroup\r\n$10\r\nconnection\r\n\
             $10\r\ncomplexity\r\n$4\r\nO(1)\r\n\
             $9\r\narguments\r\n*1\r\n%3\r\n\
             $4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n\
             $12\r\ndisplay_text\r\n$7\r\nmessage\r\n"
        );
        // No arguments: no `arguments` key. Unknown names are left out.
        assert_eq!(
            env.run("COMMAND DOCS nosuch client|id"),
            "%1\r\n$9\r\nclient|id\r\n%4\r\n\
             $7\r\nsummary\r\n$47\r\nReturns the unique client ID of the connection.\r\n\
             $5\r\nsince\r\n$5\r\n5.0.0\r\n\
             $5\r\ngroup\r\n$10\r\nconnection\r\n\
             $10\r\ncomplexity\r\n$4\r\nO(1)\r\n"
        );
        assert_eq!(env.run("COMMAND DOCS nosuch"), "%0\r\n");
    }

    #[test]
    fn docs_of_a_container_list_subcommands() {
        let mut env = TestEnv::new();
        env.resp3();
        let V::Map(m) = parse(&env.run("COMMAND DOCS CLIENT")) else {
            panic!()
        };
        let V::Map(doc) = &m[0].1 else { panic!() };
        let subs = doc
            .iter()
            .find(|(k, _)| bulk(k) == "subcommands")
            .map(|(_, v)| v)
            .unwrap();
        let V::Map(subs) = subs else { panic!() };
        let names: Vec<&str> = subs.iter().map(|(k, _)| bulk(k)).collect();
        assert!(names.contains(&"client|setinfo"));
        assert!(names.contains(&"client|list"));
    }

    fn tok(name: &str, token: &str) -> DocArg {
        DocArg {
            token: Some(token.into()),
            ..DocArg::new(name.into(), ArgType::PureToken)
        }
    }

    fn arg(name: &str, kind: ArgType) -> DocArg {
        DocArg::new(name.into(), kind)
    }

    fn opt(mut a: DocArg) -> DocArg {
        a.optional = true;
        a
    }

    fn multi(mut a: DocArg) -> DocArg {
        a.multiple = true;
        a
    }

    fn with_token(mut a: DocArg, t: &str) -> DocArg {
        a.token = Some(t.into());
        a
    }

    const KEYED: Hints = Hints {
        has_keys: true,
        float: false,
    };

    #[test]
    fn syntax_hset_and_hdel() {
        assert_eq!(
            parse_syntax("key field value [field value ...]", KEYED),
            vec![
                arg("key", ArgType::Key),
                multi(DocArg::group(
                    "data".into(),
                    ArgType::Block,
                    vec![arg("field", ArgType::String), arg("value", ArgType::String)]
                )),
            ]
        );
        assert_eq!(
            parse_syntax("key field [field ...]", KEYED),
            vec![
                arg("key", ArgType::Key),
                multi(arg("field", ArgType::String))
            ]
        );
        assert_eq!(
            parse_syntax("key [key ...]", KEYED),
            vec![multi(arg("key", ArgType::Key))]
        );
    }

    #[test]
    fn syntax_hexpire() {
        let nx = ["NX", "XX", "GT", "LT"].map(|t| tok(&t.to_ascii_lowercase(), t));
        assert_eq!(
            parse_syntax(
                "key seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]",
                KEYED
            ),
            vec![
                arg("key", ArgType::Key),
                arg("seconds", ArgType::Integer),
                opt(DocArg::group(
                    "nx-xx-gt-lt".into(),
                    ArgType::OneOf,
                    nx.to_vec()
                )),
                with_token(
                    DocArg::group(
                        "fields".into(),
                        ArgType::Block,
                        vec![
                            arg("numfields", ArgType::Integer),
                            multi(arg("field", ArgType::String))
                        ]
                    ),
                    "FIELDS"
                ),
            ]
        );
    }

    #[test]
    fn syntax_hsetex_expiry_choices() {
        let args = parse_syntax(
            "key [FNX | FXX] [EX seconds | PX milliseconds | EXAT unix-time-seconds | \
             PXAT unix-time-milliseconds | KEEPTTL] FIELDS numfields field value \
             [field value ...]",
            KEYED,
        );
        assert_eq!(args.len(), 4);
        assert_eq!(
            args[2],
            opt(DocArg::group(
                "choice".into(),
                ArgType::OneOf,
                vec![
                    with_token(arg("seconds", ArgType::Integer), "EX"),
                    with_token(arg("milliseconds", ArgType::Integer), "PX"),
                    with_token(arg("unix-time-seconds", ArgType::UnixTime), "EXAT"),
                    with_token(arg("unix-time-milliseconds", ArgType::UnixTime), "PXAT"),
                    tok("keepttl", "KEEPTTL"),
                ]
            ))
        );
        let fields = &args[3];
        assert_eq!(fields.token.as_deref(), Some("FIELDS"));
        assert_eq!(fields.args[1].name, "data");
        assert!(fields.args[1].multiple);
    }

    #[test]
    fn syntax_scan_options_and_nested_optionals() {
        assert_eq!(
            parse_syntax("key cursor [MATCH pattern] [COUNT count] [NOVALUES]", KEYED),
            vec![
                arg("key", ArgType::Key),
                arg("cursor", ArgType::Integer),
                opt(with_token(arg("pattern", ArgType::Pattern), "MATCH")),
                opt(with_token(arg("count", ArgType::Integer), "COUNT")),
                opt(tok("novalues", "NOVALUES")),
            ]
        );
        assert_eq!(
            parse_syntax("key [count [WITHVALUES]]", KEYED),
            vec![
                arg("key", ArgType::Key),
                opt(DocArg::group(
                    "count-withvalues".into(),
                    ArgType::Block,
                    vec![
                        arg("count", ArgType::Integer),
                        opt(tok("withvalues", "WITHVALUES"))
                    ]
                )),
            ]
        );
        assert_eq!(
            parse_syntax("[section [section ...]]", Hints::default()),
            vec![opt(multi(arg("section", ArgType::String)))]
        );
        assert_eq!(
            parse_syntax("[username] password", Hints::default()),
            vec![
                opt(arg("username", ArgType::String)),
                arg("password", ArgType::String)
            ]
        );
    }

    #[test]
    fn syntax_hello_and_client_list() {
        let hello = parse_syntax(
            "[protover [AUTH username password] [SETNAME clientname]]",
            Hints::default(),
        );
        assert_eq!(hello.len(), 1);
        assert_eq!(hello[0].kind, ArgType::Block);
        // Groups of groups get a generic name rather than a long joined one.
        assert_eq!(hello[0].name, "options");
        assert!(hello[0].optional);
        assert_eq!(hello[0].args[0], arg("protover", ArgType::Integer));
        assert_eq!(
            hello[0].args[1],
            opt(with_token(
                DocArg::group(
                    "auth".into(),
                    ArgType::Block,
                    vec![
                        arg("username", ArgType::String),
                        arg("password", ArgType::String)
                    ]
                ),
                "AUTH"
            ))
        );
        let list = parse_syntax(
            "[TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]",
            Hints::default(),
        );
        assert_eq!(list[0].kind, ArgType::OneOf);
        assert_eq!(list[0].token.as_deref(), Some("TYPE"));
        assert_eq!(list[0].args.len(), 4);
        assert_eq!(
            list[1],
            opt(with_token(multi(arg("client-id", ArgType::Integer)), "ID"))
        );
    }

    #[test]
    fn syntax_without_keys_and_odd_input_stays_well_formed() {
        // A key name on a command without keys is a plain string.
        assert_eq!(
            parse_syntax("key", Hints::default()),
            vec![arg("key", ArgType::String)]
        );
        assert_eq!(
            parse_syntax("<0 | 1>", Hints::default())[0].kind,
            ArgType::OneOf
        );
        assert_eq!(parse_syntax("", Hints::default()), vec![]);
        assert_eq!(parse_syntax("[]", Hints::default()), vec![]);
        assert_eq!(parse_syntax("...", Hints::default()), vec![]);
        assert_eq!(parse_syntax("| |", Hints::default()), vec![]);
        // Unbalanced brackets do not panic and still give well-formed arguments.
        for s in [
            "[a",
            "a]",
            "[[a | b]",
            "<a | [b>",
            "[GET pattern [GET pattern ...]]",
        ] {
            for a in parse_syntax(s, KEYED) {
                assert_well_formed(&a);
            }
        }
        let get = parse_syntax("[GET pattern [GET pattern ...]]", KEYED);
        assert_eq!(get.len(), 1);
        assert!(get[0].multiple && get[0].multiple_token && get[0].optional);
    }

    fn assert_well_formed(a: &DocArg) {
        assert!(!a.name.is_empty(), "{a:?}");
        match a.kind {
            ArgType::OneOf | ArgType::Block => {
                assert!(!a.args.is_empty(), "{a:?}");
                a.args.iter().for_each(assert_well_formed);
            }
            _ => assert!(a.args.is_empty(), "{a:?}"),
        }
        if a.kind == ArgType::PureToken {
            assert!(a.token.is_some());
        }
    }

    #[test]
    fn random_syntax_is_always_well_formed() {
        let atoms = [
            "[", "]", "<", ">", "|", "...", "key", "field", "FIELDS", "NX", "count", " ",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5_000 {
            let s: String = (0..rng.usize(0..16))
                .map(|_| format!("{} ", atoms[rng.usize(..atoms.len())]))
                .collect();
            for a in parse_syntax(&s, KEYED) {
                assert_well_formed(&a);
            }
        }
    }

    #[test]
    fn command_entries() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("COMMAND INFO ping"),
            "*1\r\n*10\r\n$4\r\nping\r\n:-1\r\n*1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n\
             *2\r\n+@fast\r\n+@connection\r\n\
             *2\r\n$25\r\nrequest_policy:all_shards\r\n$29\r\nresponse_policy:all_succeeded\r\n\
             *0\r\n*0\r\n"
        );
        env.resp3();
        assert_eq!(
            env.run("COMMAND INFO ping nosuch"),
            "*2\r\n*10\r\n$4\r\nping\r\n:-1\r\n~1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n\
             ~2\r\n+@fast\r\n+@connection\r\n\
             ~2\r\n$25\r\nrequest_policy:all_shards\r\n$29\r\nresponse_policy:all_succeeded\r\n\
             ~0\r\n~0\r\n_\r\n"
        );
    }

    #[test]
    fn command_entry_with_keys_and_subcommands() {
        let mut env = TestEnv::new();
        env.resp3();
        assert_eq!(
            env.run("COMMAND INFO object|encoding"),
            "*1\r\n*10\r\n$15\r\nobject|encoding\r\n:3\r\n~1\r\n+readonly\r\n\
             :2\r\n:2\r\n:1\r\n~3\r\n+@keyspace\r\n+@read\r\n+@slow\r\n\
             ~1\r\n$23\r\nnondeterministic_output\r\n\
             ~1\r\n%3\r\n$5\r\nflags\r\n~1\r\n+RO\r\n\
             $12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n\
             %1\r\n$5\r\nindex\r\n:2\r\n\
             $9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n\
             %3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n\
             ~0\r\n"
        );
        let V::Array(entries) = parse(&env.run("COMMAND INFO CLIENT")) else {
            panic!()
        };
        let V::Array(e) = &entries[0] else { panic!() };
        assert_eq!(e[0], V::Bulk("client".into()));
        assert_eq!(e[1], V::Int(-2));
        assert_eq!(e[6], V::Set(vec![V::Simple("@slow".into())]));
        let V::Array(subs) = &e[9] else { panic!() };
        assert_eq!(
            subs.len(),
            table().get(b"client").unwrap().subcommands.len()
        );
        let V::Array(kill) = subs
            .iter()
            .find(|s| matches!(s, V::Array(x) if x[0] == V::Bulk("client|kill".into())))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            kill[6],
            V::Set(vec![
                V::Simple("@admin".into()),
                V::Simple("@slow".into()),
                V::Simple("@dangerous".into()),
                V::Simple("@connection".into())
            ])
        );
    }

    #[test]
    fn plain_command_count_and_list() {
        let mut env = TestEnv::new();
        let n = table().commands.len();
        assert_eq!(env.run("COMMAND COUNT"), format!(":{n}\r\n"));
        let V::Array(all) = parse(&env.run("COMMAND")) else {
            panic!()
        };
        assert_eq!(all.len(), n);
        for e in &all {
            let V::Array(e) = e else { panic!() };
            assert_eq!(e.len(), 10);
            assert!(matches!(e[1], V::Int(_)));
            assert!(matches!(e[3], V::Int(_)));
        }
        assert_eq!(parse(&env.run("COMMAND INFO")), V::Array(all));
        let V::Array(names) = parse(&env.run("COMMAND LIST")) else {
            panic!()
        };
        assert_eq!(names.len(), table().all.len());
        assert!(names.contains(&V::Bulk("config|get".into())));
        assert_eq!(
            env.run("COMMAND LIST FILTERBY PATTERN config|g*"),
            "*1\r\n$10\r\nconfig|get\r\n"
        );
        assert_eq!(env.run("COMMAND LIST FILTERBY MODULE x"), "*0\r\n");
        let V::Array(tx) = parse(&env.run("COMMAND LIST FILTERBY ACLCAT transaction")) else {
            panic!()
        };
        assert!(tx.contains(&V::Bulk("multi".into())));
        assert_eq!(env.run("COMMAND LIST FILTERBY ACLCAT nosuch"), "*0\r\n");
        assert_eq!(
            env.run("COMMAND LIST FILTERBY bogus x"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(env.run("COMMAND LIST FILTERBY"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("COMMAND COUNT x"),
            "-ERR wrong number of arguments for 'command|count' command\r\n"
        );
        assert_eq!(
            env.run("COMMAND nosuch"),
            "-ERR unknown subcommand 'nosuch'. Try COMMAND HELP.\r\n"
        );
    }

    #[test]
    fn getkeys() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("COMMAND GETKEYS WATCH a b c"),
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
        );
        assert_eq!(
            env.run("COMMAND GETKEYS object encoding k"),
            "*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(
            env.run("COMMAND GETKEYS nosuch a"),
            "-ERR Invalid command specified\r\n"
        );
        assert_eq!(
            env.run("COMMAND GETKEYS ping a"),
            "-ERR The command has no key arguments\r\n"
        );
        assert_eq!(
            env.run("COMMAND GETKEYS object encoding"),
            "-ERR Invalid number of arguments specified for command\r\n"
        );
        // Arity -3, as in Redis 7.4.1: the command name alone reaches the checks.
        assert_eq!(
            env.run("COMMAND GETKEYS watch"),
            "-ERR Invalid number of arguments specified for command\r\n"
        );
        assert_eq!(
            env.run("COMMAND GETKEYS"),
            "-ERR wrong number of arguments for 'command|getkeys' command\r\n"
        );
        assert_eq!(
            env.run("COMMAND GETKEYSANDFLAGS"),
            "-ERR wrong number of arguments for 'command|getkeysandflags' command\r\n"
        );
        for no_keys in ["ping", "PING", "command", "command getkeys", "object"] {
            for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
                assert_eq!(
                    env.run(&format!("COMMAND {sub} {no_keys}")),
                    "-ERR The command has no key arguments\r\n",
                    "{sub} {no_keys}"
                );
            }
        }
        assert_eq!(
            env.run("COMMAND GETKEYSANDFLAGS nosuch k"),
            "-ERR Invalid command specified\r\n"
        );
        assert_eq!(
            env.run("COMMAND GETKEYSANDFLAGS hset k"),
            "-ERR Invalid number of arguments specified for command\r\n"
        );
    }

    #[test]
    fn getkeysandflags() {
        // Each key with its key spec's flags, as Redis 7.4.1 answers; a set in RESP3.
        /// A key and its flags.
        type Key = (&'static str, &'static [&'static str]);
        let cases: &[(&str, &[Key])] = &[
            ("hset k f v", &[("k", &["RW", "update"])]),
            ("hget k f", &[("k", &["RO", "access"])]),
            ("hdel k f", &[("k", &["RW", "delete"])]),
            (
                "del a b",
                &[("a", &["RM", "delete"]), ("b", &["RM", "delete"])],
            ),
            (
                "rename a b",
                &[("a", &["RW", "access", "delete"]), ("b", &["OW", "update"])],
            ),
            (
                "renamenx a b",
                &[("a", &["RW", "access", "delete"]), ("b", &["OW", "insert"])],
            ),
            ("object encoding k", &[("k", &["RO"])]),
            ("httl k FIELDS 1 f", &[("k", &["RO", "access"])]),
            ("restore k 0 x", &[("k", &["OW", "update"])]),
        ];
        for resp3 in [false, true] {
            let mut env = TestEnv::new();
            if resp3 {
                env.resp3();
            }
            for (cmd, keys) in cases {
                let mut want = format!("*{}\r\n", keys.len());
                for (key, flags) in *keys {
                    let set = if resp3 { '~' } else { '*' };
                    want.push_str(&format!("*2\r\n${}\r\n{key}\r\n", key.len()));
                    want.push_str(&format!("{set}{}\r\n", flags.len()));
                    flags
                        .iter()
                        .for_each(|f| want.push_str(&format!("+{f}\r\n")));
                }
                assert_eq!(
                    env.run(&format!("COMMAND GETKEYSANDFLAGS {cmd}")),
                    want,
                    "{cmd} resp3 {resp3}"
                );
            }
        }
    }

    #[test]
    fn rename_has_two_key_specs() {
        let mut env = TestEnv::new();
        let info = env.run("COMMAND INFO rename");
        assert!(
            info.contains("*2\r\n*6\r\n$5\r\nflags\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n"),
            "{info}"
        );
        assert!(
            info.contains("*2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n"),
            "{info}"
        );
    }

    #[test]
    fn help() {
        let mut env = TestEnv::new();
        let reply = env.run("COMMAND HELP");
        assert!(reply.starts_with(&format!(
            "*{}\r\n+COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n",
            HELP.len() + 3
        )));
    }

    #[test]
    fn categories_follow_flags_and_group() {
        let c = Command::new("x", 1, all)
            .flags(flags::WRITE | flags::FAST)
            .doc("hash", "1.0.0", "s", "O(1)", "");
        assert_eq!(categories(&c), vec!["write", "hash", "fast"]);
        let c = Command::new("y", 1, all)
            .flags(flags::ADMIN)
            .acl(&["@keyspace"])
            .doc("server", "1.0.0", "s", "O(1)", "");
        assert_eq!(
            categories(&c),
            vec!["keyspace", "admin", "slow", "dangerous"]
        );
    }
}
