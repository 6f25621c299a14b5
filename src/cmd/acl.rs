//! ACL CAT | DELUSER | DRYRUN | GENPASS | GETUSER | LIST | LOAD | LOG | SAVE | SETUSER |
//! USERS | WHOAMI | HELP, and the permission check every command passes
//! ([`check_permissions`]), as Redis 7.4.
//!
//! The users and their rules are `crate::acl`'s; this is the command surface and the
//! consequences of a change for connected clients: a deleted user's connections close,
//! and a subscriber whose channels its user may no longer use is disconnected, as Redis
//! does.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{flags, Args, Command, Ctx};
use crate::acl::{self, Denied, LogContext, LogReason, User};
use crate::client::ClientState;
use crate::context::ServerContext;
use crate::error::CmdError;
use crate::protocol::{parse_i64, Reply};

const ADMIN: u32 = flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE;
const OPEN: u32 = flags::NOSCRIPT | flags::LOADING | flags::STALE;

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You \
    may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE \
    (assuming you have a Redis configuration file set) in order to store users in the Redis \
    configuration.";

const SUBCOMMANDS: &[Command] = &[
    Command::new("acl|cat", -2, cat).flags(OPEN).doc(
        "server",
        "6.0.0",
        "Lists the ACL categories, or the commands inside a category.",
        "O(1) since the categories and commands are a fixed set.",
        "[category]",
    ),
    Command::new("acl|deluser", -3, deluser).flags(ADMIN).doc(
        "server",
        "6.0.0",
        "Deletes ACL users, and terminates their connections.",
        "O(1) amortized time considering the typical user.",
        "username [username ...]",
    ),
    Command::new("acl|dryrun", -4, dryrun).flags(ADMIN).doc(
        "server",
        "7.0.0",
        "Simulates the execution of a command by a user, without executing the command.",
        "O(1).",
        "username command [arg [arg ...]]",
    ),
    Command::new("acl|genpass", -2, genpass).flags(OPEN).doc(
        "server",
        "6.0.0",
        "Generates a pseudorandom, secure password that can be used to identify ACL users.",
        "O(1)",
        "[bits]",
    ),
    Command::new("acl|getuser", 3, getuser).flags(ADMIN).doc(
        "server",
        "6.0.0",
        "Lists the ACL rules of a user.",
        "O(N). Where N is the number of password, command and pattern rules that the user has.",
        "username",
    ),
    Command::new("acl|help", 2, help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "server",
            "6.0.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
    Command::new("acl|list", 2, list).flags(ADMIN).doc(
        "server",
        "6.0.0",
        "Dumps the effective rules in ACL file format.",
        "O(N). Where N is the number of configured users.",
        "",
    ),
    Command::new("acl|load", 2, load).flags(ADMIN).doc(
        "server",
        "6.0.0",
        "Reloads the rules from the configured ACL file.",
        "O(N). Where N is the number of configured users.",
        "",
    ),
    Command::new("acl|log", -2, log).flags(ADMIN).doc(
        "server",
        "6.0.0",
        "Lists recent security events generated due to ACL rules.",
        "O(N) with N being the number of entries shown.",
        "[count | RESET]",
    ),
    Command::new("acl|save", 2, save).flags(ADMIN).doc(
        "server",
        "6.0.0",
        "Saves the effective ACL rules in the configured ACL file.",
        "O(N). Where N is the number of configured users.",
        "",
    ),
    Command::new("acl|setuser", -3, setuser).flags(ADMIN).doc(
        "server",
        "6.0.0",
        "Creates and modifies an ACL user and its rules.",
        "O(N). Where N is the number of rules provided.",
        "username [rule [rule ...]]",
    ),
    Command::new("acl|users", 2, users).flags(ADMIN).doc(
        "server",
        "6.0.0",
        "Lists all ACL users.",
        "O(N). Where N is the number of configured users.",
        "",
    ),
    Command::new("acl|whoami", 2, whoami).flags(OPEN).doc(
        "server",
        "6.0.0",
        "Returns the authenticated username of the current connection.",
        "O(1)",
        "",
    ),
];

pub const COMMANDS: &[Command] = &[Command::container("acl", SUBCOMMANDS).doc(
    "server",
    "6.0.0",
    "A container for Access List Control commands.",
    "Depends on subcommand.",
    "",
)];

// ---- the check every command passes ----

/// Picks up the connection's user's latest rules if the table changed. False if the user
/// was deleted (its connections are being closed).
fn refresh_user(server: &ServerContext, client: &mut ClientState) -> bool {
    let generation = server.acl.generation();
    if generation == client.acl_generation {
        return true;
    }
    let Some(name) = client.user.as_ref().map(|u| u.name.clone()) else {
        return true;
    };
    match server.acl.get_with_generation(&name) {
        Some((user, g)) => {
            client.user = Some(user);
            client.acl_generation = g;
            true
        }
        None => false,
    }
}

/// Where a refused command was: at the top level, queued in MULTI, or run by EXEC after
/// the rules changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    TopLevel,
    Queued,
    Exec,
}

/// Whether the connection's user may run `cmd` with `args`. A refusal is counted (INFO
/// `acl_access_denied_*`), logged (ACL LOG) and answered with Redis's `-NOPERM` text.
pub fn check_permissions(
    server: &ServerContext,
    client: &mut ClientState,
    cmd: &Command,
    index: usize,
    args: Args<'_>,
    stage: Stage,
) -> Result<(), CmdError> {
    if !refresh_user(server, client) {
        client.close_now = true;
        return Err(CmdError::other(
            "NOPERM the user of this connection was deleted",
        ));
    }
    let Some(user) = client.user.as_ref() else {
        return Ok(());
    };
    if user.root.unrestricted() {
        return Ok(());
    }
    let Err(refusal) = acl::check(user, index, cmd, args) else {
        return Ok(());
    };
    let user = Arc::clone(user);
    let (reason, counter) = match refusal.denied {
        Denied::Command => (LogReason::Command, &server.acl.denied.command),
        Denied::Key(_) => (LogReason::Key, &server.acl.denied.key),
        Denied::Channel(_) => (LogReason::Channel, &server.acl.denied.channel),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let context = if stage == Stage::TopLevel {
        LogContext::TopLevel
    } else {
        LogContext::Multi
    };
    log_at(
        server,
        client,
        args,
        reason,
        context,
        &refusal.object,
        &user.name,
    );
    let mut text = b"NOPERM ".to_vec();
    if stage == Stage::Exec {
        text.extend_from_slice(
            b"ACLs rules changed between the moment the transaction was accumulated and the \
              EXEC call. This command is no longer allowed for the following reason: ",
        );
        text.extend_from_slice(match refusal.denied {
            Denied::Command => b"no permission to execute the command or subcommand".as_slice(),
            Denied::Key(_) => b"no permission to touch the specified keys",
            Denied::Channel(_) => b"no permission to access one of the channels used as arguments",
        });
    } else {
        text.extend_from_slice(&acl::denial_message(&user.name, cmd, &refusal, false));
    }
    Err(CmdError::other_bytes(text))
}

/// Adds an ACL LOG entry for this client (at the top level, or in EXEC).
pub fn log_event(
    server: &ServerContext,
    client: &ClientState,
    args: Args<'_>,
    reason: LogReason,
    object: &[u8],
    username: &[u8],
) {
    let context = if client.in_exec {
        LogContext::Multi
    } else {
        LogContext::TopLevel
    };
    log_at(server, client, args, reason, context, object, username);
}

fn log_at(
    server: &ServerContext,
    client: &ClientState,
    args: Args<'_>,
    reason: LogReason,
    context: LogContext,
    object: &[u8],
    username: &[u8],
) {
    let now = server.clock.now_ms();
    let argv_mem = args.iter().map(<[u8]>::len).sum();
    let client_info = super::client::client_line(&client.shared, now, argv_mem);
    let max = server.acl.log_max_len.load(Ordering::Relaxed);
    server.acl.log.lock().add(
        acl::Event {
            reason,
            context,
            object,
            username,
            client_info,
        },
        now,
        max,
    );
}

// ---- consequences of a change ----

/// Closes every connection authenticated as `name` (the caller's after its reply).
fn kill_clients_of(ctx: &mut Ctx<'_, '_>, name: &[u8]) {
    for c in ctx.server.clients.snapshot() {
        if c.meta.lock().user != name {
            continue;
        }
        if c.id == ctx.client.id {
            ctx.client.close_after_reply = true;
        } else {
            c.kill();
        }
    }
}

/// Disconnects subscribers authenticated as `user` whose channels or patterns it may no
/// longer use (Redis's `ACLKillPubsubClientsIfNeeded`).
fn kill_disallowed_subscribers(ctx: &mut Ctx<'_, '_>, user: &User) {
    if user.selectors().any(|s| s.all_channels) {
        return;
    }
    let allowed =
        |name: &[u8], pattern: bool| user.selectors().any(|s| s.channel_allowed(name, pattern));
    for (c, channels, patterns) in ctx.server.pubsub.subscribers() {
        if c.meta.lock().user != user.name {
            continue;
        }
        let ok = channels.iter().all(|ch| allowed(ch, false))
            && patterns.iter().all(|p| allowed(p, true));
        if ok {
            continue;
        }
        if c.id == ctx.client.id {
            ctx.client.close_after_reply = true;
        } else {
            c.kill();
        }
    }
}

// ---- subcommands ----

/// ACL CAT [category]
fn cat(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(super::pubsub::subcommand_syntax(args));
    }
    if args.len() == 2 {
        let cats = super::command::CATEGORIES;
        reply.array(cats.len());
        cats.iter().for_each(|c| reply.bulk(c.as_bytes()));
        return Ok(());
    }
    let Some(cat) = acl::category_index(args.get(2)) else {
        return Err(super::keys::error_quoting(
            "ERR Unknown category '",
            args.get(2),
            "'",
        ));
    };
    let table = super::table();
    let masks = acl::category_masks();
    let names: Vec<&str> = table
        .all
        .iter()
        .zip(masks)
        .filter(|(_, m)| *m & (1 << cat) != 0)
        .map(|(c, _)| c.name)
        .collect();
    reply.array(names.len());
    names.iter().for_each(|n| reply.bulk(n.as_bytes()));
    Ok(())
}

/// ACL DELUSER username [username ...]
fn deluser(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.from(2).any(|n| n == acl::DEFAULT_USER) {
        return Err(CmdError::other("ERR The 'default' user cannot be removed"));
    }
    let mut deleted = 0;
    for name in args.from(2) {
        if ctx.server.acl.remove(name) {
            deleted += 1;
            kill_clients_of(ctx, name);
        }
    }
    reply.int(deleted);
    Ok(())
}

/// ACL DRYRUN username command [arg ...]
fn dryrun(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let Some(user) = ctx.server.acl.get(args.get(2)) else {
        return Err(super::keys::error_quoting(
            "ERR User '",
            args.get(2),
            "' not found",
        ));
    };
    let owned = super::OwnedArgs::from_slices(&args.from(3).collect::<Vec<_>>());
    let sub = owned.as_args();
    let table = super::table();
    let not_found = || super::keys::error_quoting("ERR Command '", sub.get(0), "' not found");
    let (mut index, mut command) = table.lookup(sub.get(0)).ok_or_else(not_found)?;
    if !command.subcommands.is_empty() && sub.len() >= 2 {
        (index, command) = table.lookup_sub(index, sub.get(1)).ok_or_else(not_found)?;
    }
    let argc = sub.len() as i64;
    let arity = i64::from(command.arity);
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::WrongArity(command.name.into()));
    }
    match acl::check(&user, index, command, sub) {
        Ok(()) => reply.ok(),
        Err(r) => reply.bulk(&acl::denial_message(&user.name, command, &r, true)),
    }
    Ok(())
}

/// ACL GENPASS [bits]
fn genpass(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(super::pubsub::subcommand_syntax(args));
    }
    let bits = if args.len() == 3 {
        let n = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
        if !(1..=4096).contains(&n) {
            return Err(CmdError::other(
                "ERR ACL GENPASS argument must be the number of bits for the output password, \
                 a positive number up to 4096",
            ));
        }
        n as usize
    } else {
        256
    };
    let password = acl::generate_password(bits)
        .ok_or_else(|| CmdError::other("ERR the system's random generator failed"))?;
    reply.bulk(password.as_bytes());
    Ok(())
}

/// ACL GETUSER username
fn getuser(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let Some(user) = ctx.server.acl.get(args.get(2)) else {
        reply.null();
        return Ok(());
    };
    reply.map(6);
    reply.bulk(b"flags");
    let flags = user.flags();
    reply.set(flags.len());
    flags.iter().for_each(|f| reply.bulk(f.as_bytes()));
    reply.bulk(b"passwords");
    reply.array(user.passwords.len());
    user.passwords.iter().for_each(|p| reply.bulk(p));
    reply.bulk(b"commands");
    reply.bulk(&user.root.describe_commands());
    reply.bulk(b"keys");
    reply.bulk(&user.root.describe_keys());
    reply.bulk(b"channels");
    reply.bulk(&user.root.describe_channels());
    reply.bulk(b"selectors");
    reply.array(user.extra.len());
    for s in &user.extra {
        reply.map(3);
        reply.bulk(b"commands");
        reply.bulk(&s.describe_commands());
        reply.bulk(b"keys");
        reply.bulk(&s.describe_keys());
        reply.bulk(b"channels");
        reply.bulk(&s.describe_channels());
    }
    Ok(())
}

/// ACL LIST
fn list(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let users = ctx.server.acl.users();
    reply.array(users.len());
    users.iter().for_each(|u| reply.bulk(&u.line()));
    Ok(())
}

/// ACL LOAD: the ACL file replaces every user, or nothing changes. Connections of users
/// that are gone are closed; the others go on under their users' new rules.
fn load(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let acl = &ctx.server.acl;
    let Some(path) = acl.file.clone() else {
        return Err(CmdError::other(NO_ACL_FILE));
    };
    let table = acl::file::load(&path, acl.pubsub_default())
        .map_err(|why| CmdError::other_bytes(format!("ERR {why}").into_bytes()))?;
    let gone: Vec<Vec<u8>> = acl
        .users()
        .iter()
        .map(|u| u.name.clone())
        .filter(|n| n != acl::DEFAULT_USER && !table.contains_key(n))
        .collect();
    acl.replace(table);
    for name in gone {
        kill_clients_of(ctx, &name);
    }
    for user in ctx.server.acl.users() {
        kill_disallowed_subscribers(ctx, &user);
    }
    reply.ok();
    Ok(())
}

/// ACL LOG [count | RESET]
fn log(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(super::pubsub::subcommand_syntax(args));
    }
    let mut count = 10;
    if args.len() == 3 {
        if args.get(2).eq_ignore_ascii_case(b"reset") {
            ctx.server.acl.log.lock().reset();
            reply.ok();
            return Ok(());
        }
        let n = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
        count = n.max(0) as usize;
    }
    let now = ctx.server.clock.now_ms();
    let entries = ctx.server.acl.log.lock().newest(count);
    reply.array(entries.len());
    for e in entries {
        reply.map(10);
        reply.bulk(b"count");
        reply.int(e.count as i64);
        reply.bulk(b"reason");
        reply.bulk(e.reason.name().as_bytes());
        reply.bulk(b"context");
        reply.bulk(e.context.name().as_bytes());
        reply.bulk(b"object");
        reply.bulk(&e.object);
        reply.bulk(b"username");
        reply.bulk(&e.username);
        reply.bulk(b"age-seconds");
        reply.double(now.saturating_sub(e.updated_ms) as f64 / 1000.0);
        reply.bulk(b"client-info");
        reply.bulk(&e.client_info);
        reply.bulk(b"entry-id");
        reply.int(e.entry_id as i64);
        reply.bulk(b"timestamp-created");
        reply.int(e.created_ms as i64);
        reply.bulk(b"timestamp-last-updated");
        reply.int(e.updated_ms as i64);
    }
    Ok(())
}

/// ACL SAVE
fn save(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let Some(path) = ctx.server.acl.file.clone() else {
        return Err(CmdError::other(NO_ACL_FILE));
    };
    if let Err(e) = acl::file::save(&path, &ctx.server.acl.users()) {
        tracing::warn!(error = %e, path = %path.display(), "ACL SAVE failed");
        return Err(CmdError::other(
            "ERR There was an error trying to save the ACLs. Please check the server logs for \
             more information",
        ));
    }
    reply.ok();
    Ok(())
}

/// ACL SETUSER username [rule ...]: all the rules apply, or none.
fn setuser(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let name = args.get(2);
    if !acl::valid_name(name) {
        return Err(CmdError::other(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    let acl = &ctx.server.acl;
    let rules: Vec<&[u8]> = args.from(3).collect();
    let merged =
        acl::merge_selector_args(&rules).map_err(|e| CmdError::other_bytes(e.reply_text()))?;
    let base = acl
        .get(name)
        .map(|u| (*u).clone())
        .unwrap_or_else(|| User::new(name, acl.pubsub_default()));
    let user = base
        .with_rules(&merged, acl.pubsub_default())
        .map_err(|e| CmdError::other_bytes(e.reply_text()))?;
    let user = acl.put(user);
    kill_disallowed_subscribers(ctx, &user);
    reply.ok();
    Ok(())
}

/// ACL USERS
fn users(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let users = ctx.server.acl.users();
    reply.array(users.len());
    users.iter().for_each(|u| reply.bulk(&u.name));
    Ok(())
}

/// ACL WHOAMI
fn whoami(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    match &ctx.client.user {
        Some(u) => reply.bulk(&u.name),
        None => reply.bulk(acl::DEFAULT_USER),
    }
    Ok(())
}

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

fn help(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    super::client::help_reply(reply, args.get(0), HELP);
    Ok(())
}
