//! CLIENT ID | SETNAME connection-name | GETNAME | SETINFO <LIB-NAME libname | LIB-VER libver>
//! CLIENT INFO | LIST [TYPE type] [ID client-id [client-id ...]]
//! CLIENT KILL <ip:port | <option value> [option value ...]>
//! CLIENT NO-EVICT <ON | OFF> | NO-TOUCH <ON | OFF> | HELP
//!
//! What clients send while connecting (SETNAME, SETINFO, ID) and what operators use to look
//! at and drop connections (INFO, LIST, KILL). Spec §12; clients.md §0, §5.
//!
//! CLIENT LIST lines keep Redis 8's field order. `qbuf` and `qbuf-free` are the query
//! buffer's as of the client's last read, `rbs` the reply buffer's size, `rbp` the most it
//! held since the last CLIENT LIST, `obl` what is waiting to be written to a client that
//! does not read, `tot-mem` the buffers plus the connection's state. hashd has one reply
//! buffer and no reply list, so `oll` and `omem` are 0, and `fd` is -1 (no descriptor is
//! exposed).

use std::sync::atomic::Ordering;

use super::keys::error_quoting;
use super::parse::{self, is};
use super::{flags, table, Args, Command, Ctx};
use crate::client::ClientShared;
use crate::error::CmdError;
use crate::protocol::Reply;

const INFO_FLAGS: u32 = flags::NOSCRIPT | flags::LOADING | flags::STALE;

const SUBCOMMANDS: &[Command] = &[
    Command::new("client|id", 2, id).flags(INFO_FLAGS).doc(
        "connection",
        "5.0.0",
        "Returns the unique client ID of the connection.",
        "O(1)",
        "",
    ),
    Command::new("client|setname", 3, setname)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "2.6.9",
            "Sets the connection name.",
            "O(1)",
            "connection-name",
        ),
    Command::new("client|getname", 2, getname)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "2.6.9",
            "Returns the name of the connection.",
            "O(1)",
            "",
        ),
    Command::new("client|setinfo", 4, setinfo)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "7.2.0",
            "Sets information specific to the client or connection.",
            "O(1)",
            "<LIB-NAME libname | LIB-VER libver>",
        ),
    Command::new("client|info", 2, info).flags(INFO_FLAGS).doc(
        "connection",
        "6.2.0",
        "Returns information about the connection.",
        "O(1)",
        "",
    ),
    Command::new("client|list", -2, list)
        .flags(flags::ADMIN | INFO_FLAGS)
        .doc(
            "connection",
            "2.4.0",
            "Lists open connections.",
            "O(N) where N is the number of client connections",
            "[TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]",
        ),
    Command::new("client|kill", -3, kill)
        .flags(flags::ADMIN | INFO_FLAGS)
        .doc(
            "connection",
            "2.4.0",
            "Terminates open connections.",
            "O(N) where N is the number of client connections",
            "<ip:port | [ID client-id] [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] \
             [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME <YES | NO>] \
             [MAXAGE maxage]>",
        ),
    Command::new("client|pause", -3, pause)
        .flags(flags::ADMIN | INFO_FLAGS)
        .doc(
            "connection",
            "3.0.0",
            "Suspends commands processing.",
            "O(1)",
            "timeout [WRITE | ALL]",
        ),
    Command::new("client|unpause", 2, unpause)
        .flags(flags::ADMIN | INFO_FLAGS)
        .doc(
            "connection",
            "6.2.0",
            "Resumes processing commands from paused clients.",
            "O(N) Where N is the number of paused clients",
            "",
        ),
    Command::new("client|no-evict", 3, on_off)
        .flags(flags::ADMIN | INFO_FLAGS)
        .doc(
            "connection",
            "7.0.0",
            "Sets the client eviction mode of the connection.",
            "O(1)",
            "<ON | OFF>",
        ),
    Command::new("client|tracking", -3, tracking)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "6.0.0",
            "Controls server-assisted client-side caching for the connection.",
            "O(1). Some options may introduce additional complexity.",
            "<ON | OFF> [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]",
        ),
    Command::new("client|caching", 3, caching)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "6.0.0",
            "Instructs the server whether to track the keys in the next request.",
            "O(1)",
            "<YES | NO>",
        ),
    Command::new("client|trackinginfo", 2, trackinginfo)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "6.2.0",
            "Returns information about server-assisted client-side caching for the connection.",
            "O(1)",
            "",
        ),
    Command::new("client|getredir", 2, getredir)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "6.0.0",
            "Returns the client ID to which the connection's tracking notifications are redirected.",
            "O(1)",
            "",
        ),
    Command::new("client|no-touch", 3, no_touch)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "7.2.0",
            "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
            "O(1)",
            "<ON | OFF>",
        ),
    Command::new("client|reply", 3, reply_mode)
        .flags(INFO_FLAGS)
        .doc(
            "connection",
            "3.2.0",
            "Instructs the server whether to reply to commands.",
            "O(1)",
            "<ON | OFF | SKIP>",
        ),
    Command::new("client|unblock", -3, unblock)
        .flags(flags::ADMIN | INFO_FLAGS)
        .doc(
            "connection",
            "5.0.0",
            "Unblocks a client blocked by a blocking command from a different connection.",
            "O(log N) where N is the number of client connections",
            "client-id [TIMEOUT | ERROR]",
        ),
    Command::new("client|help", 2, help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "connection",
            "5.0.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
];

pub const COMMANDS: &[Command] = &[Command::container("client", SUBCOMMANDS).doc(
    "connection",
    "2.4.0",
    "A container for client connection commands.",
    "Depends on subcommand.",
    "",
)];

/// Redis's rule for names and library attributes: every byte in `!`..=`~`, so that a
/// CLIENT LIST line can always be split on spaces. The empty string is allowed (it clears).
pub fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

pub fn bad_name() -> CmdError {
    CmdError::other("ERR Client names cannot contain spaces, newlines or special characters.")
}

/// CLIENT ID
fn id(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.int(ctx.client.id as i64);
    Ok(())
}

/// CLIENT SETNAME connection-name
fn setname(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let name = args.get(2);
    if !valid_name(name) {
        return Err(bad_name());
    }
    ctx.client.shared.meta.lock().name = name.to_vec();
    reply.ok();
    Ok(())
}

/// CLIENT GETNAME
fn getname(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let meta = ctx.client.shared.meta.lock();
    if meta.name.is_empty() {
        reply.null();
    } else {
        reply.bulk(&meta.name);
    }
    Ok(())
}

/// CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>
fn setinfo(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let attr = args.get(2);
    let value = args.get(3);
    let lib_name = if is(attr, "lib-name") {
        true
    } else if is(attr, "lib-ver") {
        false
    } else {
        return Err(error_quoting("ERR Unrecognized option '", attr, "'"));
    };
    if !valid_name(value) {
        return Err(CmdError::other(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        )));
    }
    let mut meta = ctx.client.shared.meta.lock();
    if lib_name {
        meta.lib_name = value.to_vec();
    } else {
        meta.lib_ver = value.to_vec();
    }
    drop(meta);
    reply.ok();
    Ok(())
}

/// What a connection costs besides its buffers (its state and task), for `tot-mem`.
const CLIENT_STATE_BYTES: usize =
    std::mem::size_of::<crate::client::ClientState>() + std::mem::size_of::<ClientShared>();

/// One CLIENT LIST line (without the trailing `\n`). `argv_mem` is the size of the command
/// being run, for the client running it; idle clients hold no arguments.
pub fn client_line(c: &ClientShared, now_ms: u64, argv_mem: usize) -> Vec<u8> {
    let meta = c.meta.lock().clone();
    let multi = c.multi_len.load(Ordering::Relaxed);
    // Redis's flag order: P (pubsub) before x (MULTI); N alone when none is set.
    let mut flags = String::new();
    let mut multi = if multi == usize::MAX {
        -1
    } else {
        multi as i64
    };
    match c.kind() {
        crate::client::ClientKind::Replica => {
            flags.push('S');
            multi = -1;
        }
        crate::client::ClientKind::Master => {
            flags.push('M');
            multi = -1;
        }
        _ => {
            if c.is_pubsub() {
                flags.push('P');
            }
            if multi >= 0 {
                flags.push('x');
            }
        }
    }
    let tf = c.tracking_flags.load(Ordering::Relaxed);
    for (bit, letter) in [
        (crate::client::TRACKING_ON, 't'),
        (crate::client::TRACKING_BROKEN_REDIR, 'R'),
        (crate::client::TRACKING_BCAST, 'B'),
    ] {
        if tf & bit != 0 {
            flags.push(letter);
        }
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let cmd = table()
        .all
        .get(c.last_cmd.load(Ordering::Relaxed))
        .map_or("NULL", |c| c.name);
    let qbuf = c.qbuf.load(Ordering::Relaxed);
    let qbuf_free = c.qbuf_free.load(Ordering::Relaxed);
    let rbs = c.rbs.load(Ordering::Relaxed);
    // The peak is since the last look, as Redis's is over its last few seconds.
    let rbp = c.rbp.swap(0, Ordering::Relaxed);
    let obl = c.obl.load(Ordering::Relaxed);
    // The buffers and the connection's own state; a reply being written is in `rbs`.
    let tot_mem = qbuf + qbuf_free + rbs + argv_mem + CLIENT_STATE_BYTES;
    let age_s = now_ms.saturating_sub(c.created_ms) / 1000;
    let idle_s = now_ms.saturating_sub(c.last_interaction_ms.load(Ordering::Relaxed)) / 1000;
    let mut line = format!(
        "id={} addr={} laddr={} fd={} name=",
        c.id,
        c.addr,
        c.laddr,
        c.fd.load(Ordering::Relaxed)
    )
    .into_bytes();
    line.extend_from_slice(&meta.name);
    line.extend_from_slice(
        format!(
            " age={age_s} idle={idle_s} flags={flags} db={} sub={} psub={} ssub=0 multi={multi} \
             watch={} qbuf={qbuf} qbuf-free={qbuf_free} argv-mem={argv_mem} multi-mem=0 \
             rbs={rbs} rbp={rbp} obl={obl} oll=0 omem=0 tot-mem={tot_mem} events=r cmd={cmd} \
             user=",
            c.db.load(Ordering::Relaxed),
            c.subs.load(Ordering::Relaxed),
            c.psubs.load(Ordering::Relaxed),
            c.watched.load(Ordering::Relaxed),
        )
        .as_bytes(),
    );
    // Internal clients (the master's link) have no user; they show as the default one.
    line.extend_from_slice(if meta.user.is_empty() {
        crate::acl::DEFAULT_USER
    } else {
        &meta.user
    });
    line.extend_from_slice(
        format!(
            " redir={} resp={} lib-name=",
            c.tracking_redir.load(Ordering::Relaxed),
            c.resp.load(Ordering::Relaxed),
        )
        .as_bytes(),
    );
    line.extend_from_slice(&meta.lib_name);
    line.extend_from_slice(b" lib-ver=");
    line.extend_from_slice(&meta.lib_ver);
    line.extend_from_slice(b" io-thread=0");
    line
}

fn argv_mem(args: Args<'_>) -> usize {
    args.iter().map(<[u8]>::len).sum()
}

/// CLIENT INFO
fn info(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let mut text = client_line(&ctx.client.shared, ctx.now_ms, argv_mem(args));
    text.push(b'\n');
    reply.verbatim(&text);
    Ok(())
}

/// A TYPE filter of CLIENT LIST / CLIENT KILL: our replicas' links, our master's link,
/// subscribed clients, the others — as Redis's `getClientType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ClientType {
    #[default]
    Any,
    Normal,
    PubSub,
    Replica,
    Master,
}

impl ClientType {
    fn matches(self, c: &ClientShared) -> bool {
        use crate::client::ClientKind;
        match self {
            ClientType::Any => true,
            ClientType::Normal => c.kind() == ClientKind::Normal && !c.is_pubsub(),
            ClientType::PubSub => c.kind() == ClientKind::Normal && c.is_pubsub(),
            ClientType::Replica => c.kind() == ClientKind::Replica,
            ClientType::Master => c.kind() == ClientKind::Master,
        }
    }
}

/// `normal`, `master`, `replica`/`slave`, `pubsub`.
fn parse_type(t: &[u8]) -> Result<ClientType, CmdError> {
    if is(t, "normal") {
        Ok(ClientType::Normal)
    } else if is(t, "pubsub") {
        Ok(ClientType::PubSub)
    } else if is(t, "master") {
        Ok(ClientType::Master)
    } else if is(t, "replica") || is(t, "slave") {
        Ok(ClientType::Replica)
    } else {
        Err(error_quoting("ERR Unknown client type '", t, "'"))
    }
}

/// CLIENT LIST [TYPE type] [ID client-id [client-id ...]]
fn list(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let clients: Vec<_> = if args.len() == 4 && is(args.get(2), "type") {
        let ty = parse_type(args.get(3))?;
        let mut all = ctx.server.clients.snapshot();
        all.retain(|c| ty.matches(c));
        all
    } else if args.len() > 3 && is(args.get(2), "id") {
        let mut ids = Vec::with_capacity(args.len() - 3);
        for a in args.from(3) {
            ids.push(parse::int(a).map_err(|_| CmdError::other("ERR Invalid client ID"))?);
        }
        ids.into_iter()
            .filter_map(|id| u64::try_from(id).ok())
            .filter_map(|id| ctx.server.clients.get(id))
            .collect()
    } else if args.len() == 2 {
        ctx.server.clients.snapshot()
    } else {
        return Err(CmdError::Syntax);
    };
    let mut text = Vec::new();
    for c in &clients {
        let mem = if c.id == ctx.client.id {
            argv_mem(args)
        } else {
            0
        };
        text.extend_from_slice(&client_line(c, ctx.now_ms, mem));
        text.push(b'\n');
    }
    reply.verbatim(&text);
    Ok(())
}

/// The filters of CLIENT KILL; every one given must match.
#[derive(Default)]
struct KillFilter<'a> {
    id: Option<u64>,
    ty: ClientType,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    skipme: bool,
    max_age_s: Option<i64>,
    user: Option<&'a [u8]>,
}

impl KillFilter<'_> {
    fn matches(&self, c: &ClientShared, me: u64, now_ms: u64) -> bool {
        if !self.ty.matches(c) || (self.skipme && c.id == me) {
            return false;
        }
        if self.id.is_some_and(|id| id != c.id)
            || self.addr.is_some_and(|a| a != c.addr.as_bytes())
            || self.laddr.is_some_and(|a| a != c.laddr.as_bytes())
            || self.user.is_some_and(|u| u != client_user(c).as_slice())
        {
            return false;
        }
        let age_s = (now_ms.saturating_sub(c.created_ms) / 1000) as i64;
        self.max_age_s.is_none_or(|max| age_s > max)
    }
}

/// The user a client runs as (internal clients: the default user, as CLIENT LIST shows).
fn client_user(c: &ClientShared) -> Vec<u8> {
    let user = c.meta.lock().user.clone();
    if user.is_empty() {
        crate::acl::DEFAULT_USER.to_vec()
    } else {
        user
    }
}

fn parse_kill_filter<'a>(
    acl: &crate::acl::Acl,
    args: Args<'a>,
) -> Result<KillFilter<'a>, CmdError> {
    let mut f = KillFilter {
        skipme: true,
        ..KillFilter::default()
    };
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        if i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        let value = args.get(i + 1);
        if is(opt, "id") {
            let id = parse::int(value)
                .ok()
                .filter(|&id| id >= 1)
                .ok_or_else(|| CmdError::other("ERR client-id should be greater than 0"))?;
            f.id = Some(id as u64);
        } else if is(opt, "type") {
            f.ty = parse_type(value)?;
        } else if is(opt, "addr") {
            f.addr = Some(value);
        } else if is(opt, "laddr") {
            f.laddr = Some(value);
        } else if is(opt, "user") {
            if acl.get(value).is_none() {
                return Err(error_quoting("ERR No such user '", value, "'"));
            }
            f.user = Some(value);
        } else if is(opt, "skipme") {
            f.skipme = if is(value, "yes") {
                true
            } else if is(value, "no") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
        } else if is(opt, "maxage") {
            let age = crate::protocol::parse_i64(value)
                .ok_or_else(|| CmdError::other("ERR maxage is not an integer or out of range"))?;
            if age <= 0 {
                return Err(CmdError::other("ERR maxage should be greater than 0"));
            }
            f.max_age_s = Some(age);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(f)
}

/// CLIENT KILL ip:port | CLIENT KILL <option value> [option value ...]
fn kill(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    // The old form names one address and may kill the caller itself.
    let old_form = args.len() == 3;
    let filter = if old_form {
        KillFilter {
            addr: Some(args.get(2)),
            ..KillFilter::default()
        }
    } else {
        parse_kill_filter(&ctx.server.acl, args)?
    };
    let me = ctx.client.id;
    let mut killed = 0i64;
    let mut kill_me = false;
    for c in ctx.server.clients.snapshot() {
        if !filter.matches(&c, me, ctx.now_ms) {
            continue;
        }
        if c.id == me {
            kill_me = true;
        } else {
            c.kill();
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            return Err(CmdError::other("ERR No such client"));
        }
        reply.ok();
    } else {
        reply.int(killed);
    }
    // The caller goes only once its reply is out.
    if kill_me {
        ctx.client.close_after_reply = true;
    }
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP],
/// with Redis's checks in Redis's order (see `tracking.rs`).
fn tracking(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    use crate::tracking::{ClientTracking, Mode};
    let server = ctx.server;
    let id = ctx.client.id;
    let mut mode = Mode::default();
    let mut redirect = 0u64;
    let mut target = None;
    let mut prefixes: Vec<bytes::Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let a = args.get(j);
        let more = j + 1 < args.len();
        if is(a, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return Err(CmdError::other(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let wanted = super::parse::int(args.get(j))?;
            // The target must exist now, though it may go later (Redis's sanity check).
            let found = u64::try_from(wanted)
                .ok()
                .and_then(|w| crate::tracking::find_client(&server.clients, w));
            let Some(t) = found else {
                return Err(CmdError::other(
                    "ERR The client ID you want redirect to does not exist",
                ));
            };
            redirect = t.id;
            target = Some(std::sync::Arc::downgrade(&t));
        } else if is(a, "bcast") {
            mode.bcast = true;
        } else if is(a, "optin") {
            mode.optin = true;
        } else if is(a, "optout") {
            mode.optout = true;
        } else if is(a, "noloop") {
            mode.noloop = true;
        } else if is(a, "prefix") && more {
            j += 1;
            prefixes.push(bytes::Bytes::copy_from_slice(args.get(j)));
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    match args.get(2) {
        a if is(a, "on") => {}
        a if is(a, "off") => {
            server.tracker.disable(id);
            ctx.client.tracking = None;
            ctx.client.caching = None;
            reply.ok();
            return Ok(());
        }
        _ => return Err(CmdError::Syntax),
    }
    if !mode.bcast && !prefixes.is_empty() {
        return Err(CmdError::other(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let old = ctx.client.tracking.as_ref().map(|t| t.mode);
    if old.is_some_and(|m| m.bcast != mode.bcast) {
        return Err(CmdError::other(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this \
             client, and then re-enabling it with a different mode.",
        ));
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err(CmdError::other(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if mode.optin && mode.optout {
        return Err(CmdError::other(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if old.is_some_and(|m| (mode.optin && m.optout) || (mode.optout && m.optin)) {
        return Err(CmdError::other(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this \
             client, and then re-enabling it with a different mode.",
        ));
    }
    // Prefixes of one client must not overlap, among themselves or with those it has.
    let existing = server.tracker.prefixes(id);
    for (i, p) in prefixes.iter().enumerate() {
        for q in &existing {
            if p.starts_with(q) || q.starts_with(p) {
                return Err(CmdError::other(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a \
                     single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(q)
                )));
            }
        }
        for q in &prefixes[i + 1..] {
            if p.starts_with(q) || q.starts_with(p) {
                return Err(CmdError::other(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for \
                     a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(q)
                )));
            }
        }
    }
    let t = ClientTracking {
        mode,
        redirect,
        prefixes,
    };
    let outbox = crate::pubsub::outbox(ctx.client);
    server.tracker.enable(id, outbox, &t, target);
    ctx.client.tracking = Some(t);
    reply.ok();
    Ok(())
}

/// CLIENT CACHING YES|NO: whether the next command's reads are tracked (OPTIN / OPTOUT).
fn caching(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let mode = ctx.client.tracking.as_ref().map(|t| t.mode);
    let Some(mode) = mode.filter(|m| m.optin || m.optout) else {
        return Err(CmdError::other(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with \
             OPTIN or OPTOUT mode enabled",
        ));
    };
    match args.get(2) {
        a if is(a, "yes") => {
            if !mode.optin {
                return Err(CmdError::other(
                    "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
                ));
            }
            ctx.client.caching = Some(true);
        }
        a if is(a, "no") => {
            if !mode.optout {
                return Err(CmdError::other(
                    "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
                ));
            }
            ctx.client.caching = Some(false);
        }
        _ => return Err(CmdError::Syntax),
    }
    reply.ok();
    Ok(())
}

/// CLIENT TRACKINGINFO: a map of `flags`, `redirect` and `prefixes`, as Redis's.
fn trackinginfo(
    ctx: &mut Ctx<'_, '_>,
    _args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let server = ctx.server;
    let id = ctx.client.id;
    let mut flag_names: Vec<&str> = Vec::new();
    let (redirect, prefixes) = match &ctx.client.tracking {
        None => {
            flag_names.push("off");
            (-1, Vec::new())
        }
        Some(t) => {
            flag_names.push("on");
            if t.mode.bcast {
                flag_names.push("bcast");
            }
            if t.mode.optin {
                flag_names.push("optin");
                if ctx.client.caching == Some(true) {
                    flag_names.push("caching-yes");
                }
            }
            if t.mode.optout {
                flag_names.push("optout");
                if ctx.client.caching == Some(false) {
                    flag_names.push("caching-no");
                }
            }
            if t.mode.noloop {
                flag_names.push("noloop");
            }
            if server.tracker.redirect_broken(id) {
                flag_names.push("broken_redirect");
            }
            (t.redirect as i64, server.tracker.prefixes(id))
        }
    };
    reply.map(3);
    reply.bulk(b"flags");
    reply.set(flag_names.len());
    for f in flag_names {
        reply.bulk(f.as_bytes());
    }
    reply.bulk(b"redirect");
    reply.int(redirect);
    reply.bulk(b"prefixes");
    reply.array(prefixes.len());
    for p in prefixes {
        reply.bulk(&p);
    }
    Ok(())
}

/// CLIENT GETREDIR: -1 when not tracking, 0 without a redirect, else the target's id.
fn getredir(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.int(
        ctx.client
            .tracking
            .as_ref()
            .map_or(-1, |t| t.redirect as i64),
    );
    Ok(())
}

/// CLIENT NO-TOUCH <ON | OFF>: whether this client's commands (but TOUCH) leave the keys'
/// access state (LRU/LFU) as it was.
fn no_touch(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let on = match args.get(2) {
        a if is(a, "on") => true,
        a if is(a, "off") => false,
        _ => return Err(CmdError::Syntax),
    };
    ctx.client.no_touch = on;
    reply.ok();
    Ok(())
}

/// CLIENT REPLY ON | OFF | SKIP: ON answers +OK; OFF and SKIP answer nothing (the
/// connection drops the replies, see `conn`).
fn reply_mode(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let r = &mut ctx.client.replies;
    match args.get(2) {
        m if is(m, "on") => {
            *r = Default::default();
            reply.ok();
        }
        m if is(m, "off") => r.off = true,
        m if is(m, "skip") => {
            if !r.off {
                r.skip_next = true;
            }
        }
        _ => return Err(CmdError::Syntax),
    }
    Ok(())
}

/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]: ends another client's WAIT.
fn unblock(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let id = crate::protocol::parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let error = match args.len() {
        3 => false,
        4 if is(args.get(3), "timeout") => false,
        4 if is(args.get(3), "error") => true,
        _ => {
            return Err(CmdError::other(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let done = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.server.clients.get(id))
        .is_some_and(|c| c.unblock(error));
    reply.int(i64::from(done));
    Ok(())
}

/// CLIENT PAUSE timeout [WRITE | ALL]
fn pause(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() > 4 {
        return Err(CmdError::Syntax);
    }
    let ms = match crate::protocol::parse_i64(args.get(2)) {
        Some(t) if t < 0 => return Err(CmdError::other("ERR timeout is negative")),
        Some(t) => t as u64,
        None => {
            return Err(CmdError::other(
                "ERR timeout is not an integer or out of range",
            ))
        }
    };
    let all = match args.len() {
        3 => true,
        _ if is(args.get(3), "all") => true,
        _ if is(args.get(3), "write") => false,
        _ => {
            return Err(CmdError::other(
                "ERR CLIENT PAUSE mode must be WRITE or ALL",
            ))
        }
    };
    ctx.server.pause.pause(ms, all);
    reply.ok();
    Ok(())
}

/// CLIENT UNPAUSE
fn unpause(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    ctx.server.pause.unpause();
    reply.ok();
    Ok(())
}

/// CLIENT NO-EVICT <ON | OFF>: hashd never evicts clients (`maxmemory-clients` is only 0),
/// so either mode is what it does.
fn on_off(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if !is(args.get(2), "on") && !is(args.get(2), "off") {
        return Err(CmdError::Syntax);
    }
    reply.ok();
    Ok(())
}

/// Writes a HELP reply in Redis's layout: a header line naming the command, the given
/// lines, and the closing HELP entry, all as status strings.
pub fn help_reply(reply: &mut Reply<'_>, command: &[u8], lines: &[&str]) {
    reply.array(lines.len() + 3);
    reply.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        String::from_utf8_lossy(command).to_ascii_uppercase()
    ));
    for l in lines {
        reply.simple(l);
    }
    reply.simple("HELP");
    reply.simple("    Print this help.");
}

const HELP: &[&str] = &[
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "    * MAXAGE <maxage>",
    "      Kill connections older than the specified age.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients with the specified IDs.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
];

/// CLIENT HELP
fn help(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    help_reply(reply, args.get(0), HELP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use super::*;
    use crate::cmd::testing::{TestEnv, T0_MS};

    /// A test env whose own client is registered, as the connection does.
    fn registered() -> TestEnv {
        let env = TestEnv::new();
        env.server.clients.register(Arc::clone(&env.client.shared));
        env
    }

    fn other_client(env: &TestEnv, id: u64, port: u16) -> Arc<ClientShared> {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let laddr: SocketAddr = "127.0.0.1:6379".parse().unwrap();
        let c = Arc::new(ClientShared::new(id, Some(addr), Some(laddr), T0_MS));
        env.server.clients.register(Arc::clone(&c));
        c
    }

    /// The payload of a RESP2 bulk reply.
    fn bulk_payload(reply: &str) -> &str {
        let (head, rest) = reply.split_once("\r\n").unwrap();
        let len: usize = head[1..].parse().unwrap();
        assert_eq!(rest.len(), len + 2, "{reply:?}");
        &rest[..len]
    }

    #[test]
    fn id_setname_getname() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("CLIENT ID"), ":1\r\n");
        assert_eq!(env.run("client getname"), "$-1\r\n");
        assert_eq!(env.run("CLIENT SETNAME app-1"), "+OK\r\n");
        assert_eq!(env.run("CLIENT GETNAME"), "$5\r\napp-1\r\n");
        assert_eq!(env.run("CLIENT SETNAME \"\""), "+OK\r\n");
        assert_eq!(env.run("CLIENT GETNAME"), "$-1\r\n");
        env.resp3();
        assert_eq!(env.run("CLIENT GETNAME"), "_\r\n");
    }

    #[test]
    fn setname_rejects_special_characters() {
        let mut env = TestEnv::new();
        env.run("CLIENT SETNAME good");
        for bad in [
            "\"a b\"",
            "\"a\\nb\"",
            "\"\\x7f\"",
            "\"\\xc3\\xa9\"",
            "\"\\x00\"",
        ] {
            assert_eq!(
                env.run(&format!("CLIENT SETNAME {bad}")),
                "-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
                "{bad}"
            );
        }
        assert_eq!(env.run("CLIENT GETNAME"), "$4\r\ngood\r\n");
        assert_eq!(
            env.run("CLIENT SETNAME a b"),
            "-ERR wrong number of arguments for 'client|setname' command\r\n"
        );
    }

    #[test]
    fn setinfo() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("CLIENT SETINFO LIB-NAME redis-py"), "+OK\r\n");
        assert_eq!(env.run("client setinfo lib-ver 8.1.0"), "+OK\r\n");
        {
            let meta = env.client.shared.meta.lock();
            assert_eq!(meta.lib_name, b"redis-py");
            assert_eq!(meta.lib_ver, b"8.1.0");
        }
        assert_eq!(
            env.run("CLIENT SETINFO lib-nam x"),
            "-ERR Unrecognized option 'lib-nam'\r\n"
        );
        assert_eq!(
            env.run("CLIENT SETINFO Lib-Name \"a b\""),
            "-ERR Lib-Name cannot contain spaces, newlines or special characters.\r\n"
        );
        // The attribute is checked before the value.
        assert_eq!(
            env.run("CLIENT SETINFO nope \"a b\""),
            "-ERR Unrecognized option 'nope'\r\n"
        );
        assert_eq!(
            env.run("CLIENT SETINFO LIB-NAME"),
            "-ERR wrong number of arguments for 'client|setinfo' command\r\n"
        );
        assert_eq!(env.run("CLIENT SETINFO LIB-NAME \"\""), "+OK\r\n");
        assert!(env.client.shared.meta.lock().lib_name.is_empty());
    }

    #[test]
    fn unknown_subcommand_and_bare_container() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("CLIENT MAINT_NOTIFICATIONS ON moving-endpoint-type internal-fqdn"),
            "-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n"
        );
        assert_eq!(
            env.run("client foo"),
            "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"
        );
        assert_eq!(
            env.run("CLIENT"),
            "-ERR wrong number of arguments for 'client' command\r\n"
        );
    }

    #[test]
    fn info_line_format() {
        let mut env = registered();
        env.run("CLIENT SETNAME app");
        env.run("CLIENT SETINFO LIB-NAME redis-rs");
        env.run("CLIENT SETINFO LIB-VER 1.8.1");
        env.advance_ms(2500);
        let reply = env.run("CLIENT INFO");
        // No connection task here: empty buffers, so tot-mem is the state and argv-mem.
        let expected = format!(
            "id=1 addr= laddr= fd=-1 name=app age=1706 idle=1706 flags=N db=0 \
            sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=10 multi-mem=0 \
            rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem={} events=r cmd=client|info user=default \
            redir=-1 resp=2 lib-name=redis-rs lib-ver=1.8.1 io-thread=0\n",
            super::CLIENT_STATE_BYTES + 10
        );
        // The test client was created at time 0 of the manual clock's epoch; only compare
        // the fields after the timing ones exactly.
        let line = bulk_payload(&reply);
        assert!(line.ends_with('\n'));
        let tail = |s: &str| s.split_once(" flags=").unwrap().1.to_string();
        assert_eq!(tail(line), tail(&expected));
        assert!(line.starts_with("id=1 addr= laddr= fd=-1 name=app age="));
    }

    #[test]
    fn info_is_verbatim_in_resp3_and_tracks_state() {
        let mut env = registered();
        env.resp3();
        env.client.select(2);
        env.run("WATCH a b");
        env.run("MULTI");
        env.run("PING");
        // CLIENT INFO is queued inside MULTI; check the shared state directly instead.
        env.run("DISCARD");
        let reply = env.run("CLIENT INFO");
        assert!(reply.starts_with('='), "{reply}");
        let (head, rest) = reply.split_once("\r\n").unwrap();
        let len: usize = head[1..].parse().unwrap();
        assert_eq!(rest.len(), len + 2);
        assert!(rest.starts_with("txt:id=1 "));
        assert!(rest.contains(" db=2 "));
        assert!(rest.contains(" multi=-1 watch=0 "));
        assert!(rest.contains(" resp=3 "));

        env.run("WATCH a b");
        env.run("MULTI");
        env.run("PING");
        let line = String::from_utf8(client_line(&env.client.shared, env.now_ms(), 0)).unwrap();
        assert!(line.contains(" flags=x db=2 "), "{line}");
        assert!(line.contains(" multi=1 watch=2 "), "{line}");
    }

    #[test]
    fn list_all_by_type_and_by_id() {
        let mut env = registered();
        let other = other_client(&env, 7, 50000);
        other.meta.lock().name = b"worker".to_vec();
        let reply = env.run("CLIENT LIST");
        let text = bulk_payload(&reply);
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("id=1 "));
        assert!(lines[0].contains(" cmd=client|list "));
        assert!(lines[1]
            .starts_with("id=7 addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=-1 name=worker age="));
        assert!(lines[1].contains(" argv-mem=0 "));
        assert!(lines[1].contains(" cmd=NULL "));
        assert!(text.ends_with('\n'));

        assert_eq!(
            bulk_payload(&env.run("CLIENT LIST TYPE normal"))
                .lines()
                .count(),
            2
        );
        assert_eq!(env.run("CLIENT LIST TYPE pubsub"), "$0\r\n\r\n");
        assert_eq!(env.run("CLIENT LIST type REPLICA"), "$0\r\n\r\n");
        assert_eq!(
            env.run("CLIENT LIST TYPE bogus"),
            "-ERR Unknown client type 'bogus'\r\n"
        );

        let reply = env.run("CLIENT LIST ID 7 99 -1");
        let text = bulk_payload(&reply);
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("id=7 "));
        assert_eq!(env.run("CLIENT LIST ID 7 x"), "-ERR Invalid client ID\r\n");
        assert_eq!(env.run("CLIENT LIST ID"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("CLIENT LIST TYPE normal x"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(env.run("CLIENT LIST foo"), "-ERR syntax error\r\n");

        env.resp3();
        assert_eq!(env.run("CLIENT LIST TYPE master"), "=4\r\ntxt:\r\n");
    }

    #[test]
    fn kill_new_form() {
        let mut env = registered();
        let a = other_client(&env, 7, 50000);
        let b = other_client(&env, 8, 50001);
        assert_eq!(env.run("CLIENT KILL ID 7"), ":1\r\n");
        assert!(a.is_killed());
        assert!(!b.is_killed());
        assert_eq!(env.run("CLIENT KILL ID 99"), ":0\r\n");
        assert_eq!(env.run("CLIENT KILL TYPE pubsub"), ":0\r\n");
        assert_eq!(
            env.run("CLIENT KILL ADDR 127.0.0.1:50001 TYPE normal"),
            ":1\r\n"
        );
        assert!(b.is_killed());
        // SKIPME defaults to yes: the caller survives a filter that matches everyone.
        assert_eq!(
            env.run("CLIENT KILL USER default LADDR 127.0.0.1:6379"),
            ":2\r\n"
        );
        assert!(!env.client.close_after_reply);
        assert_eq!(env.run("CLIENT KILL ID 1"), ":0\r\n");
        assert_eq!(env.run("CLIENT KILL ID 1 SKIPME no"), ":1\r\n");
        assert!(env.client.close_after_reply);
    }

    #[test]
    fn kill_errors() {
        let mut env = registered();
        assert_eq!(
            env.run("CLIENT KILL"),
            "-ERR wrong number of arguments for 'client|kill' command\r\n"
        );
        assert_eq!(
            env.run("CLIENT KILL ID 0"),
            "-ERR client-id should be greater than 0\r\n"
        );
        assert_eq!(
            env.run("CLIENT KILL ID x"),
            "-ERR client-id should be greater than 0\r\n"
        );
        assert_eq!(
            env.run("CLIENT KILL TYPE x"),
            "-ERR Unknown client type 'x'\r\n"
        );
        assert_eq!(
            env.run("CLIENT KILL USER bob"),
            "-ERR No such user 'bob'\r\n"
        );
        assert_eq!(env.run("CLIENT KILL SKIPME maybe"), "-ERR syntax error\r\n");
        assert_eq!(env.run("CLIENT KILL ID 1 SKIPME"), "-ERR syntax error\r\n");
        assert_eq!(env.run("CLIENT KILL FOO bar"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("CLIENT KILL MAXAGE x"),
            "-ERR maxage is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("CLIENT KILL MAXAGE -1"),
            "-ERR maxage should be greater than 0\r\n"
        );
        assert!(!env.client.close_after_reply);
    }

    #[test]
    fn kill_old_form() {
        let mut env = registered();
        let a = other_client(&env, 7, 50000);
        assert_eq!(
            env.run("CLIENT KILL 127.0.0.1:1"),
            "-ERR No such client\r\n"
        );
        assert_eq!(env.run("CLIENT KILL 127.0.0.1:50000"), "+OK\r\n");
        assert!(a.is_killed());
        // The old form can kill the caller (whose address is empty in tests).
        assert_eq!(env.run("CLIENT KILL \"\""), "+OK\r\n");
        assert!(env.client.close_after_reply);
    }

    #[test]
    fn kill_maxage() {
        let mut env = registered();
        let a = other_client(&env, 7, 50000);
        env.advance_ms(10_000);
        assert_eq!(env.run("CLIENT KILL MAXAGE 20"), ":0\r\n");
        assert!(!a.is_killed());
        assert_eq!(env.run("CLIENT KILL MAXAGE 5 ID 7"), ":1\r\n");
        assert!(a.is_killed());
    }

    #[test]
    fn no_evict_and_no_touch() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("CLIENT NO-EVICT on"), "+OK\r\n");
        assert_eq!(env.run("CLIENT NO-EVICT OFF"), "+OK\r\n");
        assert_eq!(env.run("CLIENT NO-TOUCH ON"), "+OK\r\n");
        assert_eq!(env.run("CLIENT NO-TOUCH maybe"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("CLIENT NO-EVICT"),
            "-ERR wrong number of arguments for 'client|no-evict' command\r\n"
        );
    }

    #[test]
    fn help_lists_subcommands() {
        let mut env = TestEnv::new();
        let reply = env.run("client help");
        assert!(reply.starts_with(&format!(
            "*{}\r\n+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n",
            HELP.len() + 3
        )));
        assert!(reply.ends_with("+HELP\r\n+    Print this help.\r\n"));
        assert!(reply.contains("+SETINFO <option> <value>\r\n"));
    }

    /// Quoted arguments are the client's bytes up to a NUL, unchanged (Redis 7.4.1's
    /// `%s`), not U+FFFD.
    #[test]
    fn errors_keep_the_client_bytes() {
        let mut env = TestEnv::new();
        let cases: &[(&[&[u8]], &[u8])] = &[
            (
                &[b"CLIENT", b"SETINFO", b"l\xffb\x00x", b"v"],
                b"-ERR Unrecognized option 'l\xffb'\r\n",
            ),
            (
                &[b"CLIENT", b"LIST", b"TYPE", b"n\xff\x00q"],
                b"-ERR Unknown client type 'n\xff'\r\n",
            ),
            (
                &[b"CLIENT", b"KILL", b"TYPE", b"\xe9"],
                b"-ERR Unknown client type '\xe9'\r\n",
            ),
            (
                &[b"CLIENT", b"KILL", b"USER", b"u\xff\x00z"],
                b"-ERR No such user 'u\xff'\r\n",
            ),
            (
                &[b"CLIENT", b"KILL", b"ID", b"1", b"USER", b"\xc3\x28"],
                b"-ERR No such user '\xc3\x28'\r\n",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(env.run_args(args), *want, "{args:?}");
        }
    }
}
