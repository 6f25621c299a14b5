//! MULTI / EXEC / DISCARD / WATCH / UNWATCH (spec §13).
//!
//! Atomicity comes from locking, not from a global lock: EXEC's lock plan is the union of
//! the shards its queued commands and watched keys touch (`exec_lock_plan`), so no other
//! client's command on those keys can run between the queued ones.

use std::sync::atomic::Ordering;

use super::{flags, run_locked, Args, Command, Ctx};
use crate::client::{ClientState, MultiState};
use crate::error::CmdError;
use crate::protocol::Reply;

/// MULTI, DISCARD, WATCH and UNWATCH: Redis's flags, and they run at once inside MULTI.
const TXN_FAST: u32 = flags::NOSCRIPT
    | flags::LOADING
    | flags::STALE
    | flags::FAST
    | flags::ALLOW_BUSY
    | flags::TXN_CONTROL;

pub const COMMANDS: &[Command] = &[
    Command::new("multi", 1, multi).flags(TXN_FAST).doc(
        "transactions",
        "1.2.0",
        "Starts a transaction.",
        "O(1)",
        "",
    ),
    Command::new("exec", 1, exec)
        .flags(
            flags::NOSCRIPT
                | flags::LOADING
                | flags::STALE
                | flags::SKIP_SLOWLOG
                | flags::TXN_CONTROL
                | flags::LOCK_EXEC,
        )
        .doc(
            "transactions",
            "1.2.0",
            "Executes all commands in a transaction.",
            "Depends on commands in the transaction",
            "",
        ),
    Command::new("discard", 1, discard).flags(TXN_FAST).doc(
        "transactions",
        "2.0.0",
        "Discards a transaction.",
        "O(N), when N is the number of queued commands",
        "",
    ),
    Command::new("watch", -2, watch)
        .flags(TXN_FAST)
        .keys(1, -1, 1)
        .doc(
            "transactions",
            "2.2.0",
            "Monitors changes to keys to determine the execution of a transaction.",
            "O(1) for every key.",
            "key [key ...]",
        ),
    Command::new("unwatch", 1, unwatch).flags(TXN_FAST).doc(
        "transactions",
        "2.2.0",
        "Forgets about watched keys of a transaction.",
        "O(1)",
        "",
    ),
];

/// MULTI
fn multi(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if ctx.client.in_multi() {
        return Err(CmdError::MultiNested);
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.client.shared.multi_len.store(0, Ordering::Relaxed);
    reply.ok();
    Ok(())
}

/// Leaves MULTI state (EXEC, DISCARD, RESET).
pub fn end_multi(client: &mut ClientState) {
    client.multi = None;
    client.shared.multi_len.store(usize::MAX, Ordering::Relaxed);
}

/// Forgets every watched key: through the held shards where this runs inside EXEC,
/// otherwise the keyspace locks each key's shard in turn.
pub fn unwatch_all(ctx: &mut Ctx<'_, '_>) {
    let watched = std::mem::take(&mut ctx.client.watched);
    let flag = ctx.client.watch_flag.clone();
    for (db, key) in &watched {
        let shard = ctx.server.keyspace.shard_of(key);
        if ctx.locked.holds(*db, shard) {
            ctx.locked.db(*db).unwatch(key, &flag);
        } else {
            ctx.server.keyspace.unwatch(*db, key, &flag);
        }
    }
    flag.reset();
    ctx.client.shared.watched.store(0, Ordering::Relaxed);
}

/// EXEC
fn exec(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let Some(multi) = ctx.client.multi.take() else {
        return Err(CmdError::ExecWithoutMulti);
    };
    end_multi(ctx.client);
    if multi.aborted {
        unwatch_all(ctx);
        return Err(CmdError::ExecAbort);
    }
    // A watched key that expired since WATCH is deleted here, which dirties the flag.
    let now = ctx.now_ms;
    let watched: Vec<(usize, Vec<u8>)> = ctx.client.watched.iter().cloned().collect();
    for (db, key) in &watched {
        ctx.locked.db(*db).exists(key, now);
    }
    if ctx.client.watch_flag.is_dirty() {
        unwatch_all(ctx);
        reply.null_array();
        return Ok(());
    }
    unwatch_all(ctx);
    reply.array(multi.queue.len());
    ctx.client.in_exec = true;
    for q in &multi.queue {
        // The rules may have changed since the command was queued (Redis checks again).
        if ctx.client.user.is_some() {
            let stage = super::acl::Stage::Exec;
            let (server, args) = (ctx.server, q.args.as_args());
            if let Err(e) =
                super::acl::check_permissions(server, ctx.client, q.command, q.index, args, stage)
            {
                super::error_reply(ctx.server, reply, &e);
                continue;
            }
        }
        run_locked(ctx, q.command, q.index, q.args.as_args(), reply);
        // HELLO/RESET inside EXEC change the protocol for the following replies.
        reply.set_protocol(ctx.client.protocol);
    }
    ctx.client.in_exec = false;
    Ok(())
}

/// DISCARD
fn discard(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if ctx.client.multi.is_none() {
        return Err(CmdError::DiscardWithoutMulti);
    }
    end_multi(ctx.client);
    unwatch_all(ctx);
    reply.ok();
    Ok(())
}

/// WATCH key [key ...]
fn watch(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if ctx.client.in_multi() {
        return Err(CmdError::WatchInsideMulti);
    }
    let now = ctx.now_ms;
    let db = ctx.client.db;
    let flag = ctx.client.watch_flag.clone();
    for key in args.from(1) {
        // A set, so that watching many keys stays linear while this holds their shards.
        if !ctx.client.watched.insert((db, key.to_vec())) {
            continue;
        }
        let mut view = ctx.db();
        // Settle lazy expiry first, so that a key already expired is not a change later.
        view.exists(key, now);
        view.watch(key, &flag);
    }
    ctx.client
        .shared
        .watched
        .store(ctx.client.watched.len(), Ordering::Relaxed);
    reply.ok();
    Ok(())
}

/// UNWATCH
fn unwatch(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    unwatch_all(ctx);
    reply.ok();
    Ok(())
}

/// Used by RESET and by the connection on close: leave MULTI and drop every watch.
pub fn reset_transaction_state(ctx: &mut Ctx<'_, '_>) {
    end_multi(ctx.client);
    unwatch_all(ctx);
}

/// Drops every watch of a closing connection (no command context available).
pub fn forget_watches(server: &crate::context::ServerContext, client: &mut ClientState) {
    let flag = client.watch_flag.clone();
    for (db, key) in std::mem::take(&mut client.watched) {
        server.keyspace.unwatch(db, &key, &flag);
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;

    #[test]
    fn queue_and_exec() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("MULTI"), "+OK\r\n");
        assert_eq!(env.run("HSET k f v"), "+QUEUED\r\n");
        assert_eq!(env.run("HGET k f"), "+QUEUED\r\n");
        assert_eq!(env.run("EXEC"), "*2\r\n:1\r\n$1\r\nv\r\n");
    }

    #[test]
    fn errors_outside_and_inside() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("EXEC"), "-ERR EXEC without MULTI\r\n");
        assert_eq!(env.run("DISCARD"), "-ERR DISCARD without MULTI\r\n");
        env.run("MULTI");
        assert_eq!(env.run("MULTI"), "-ERR MULTI calls can not be nested\r\n");
        assert_eq!(
            env.run("WATCH k"),
            "-ERR WATCH inside MULTI is not allowed\r\n"
        );
        assert_eq!(env.run("HSET k f v"), "+QUEUED\r\n");
        assert_eq!(
            env.run("EXEC"),
            "*1\r\n:1\r\n",
            "MULTI/WATCH errors do not abort"
        );
    }

    #[test]
    fn queue_time_error_aborts() {
        let mut env = TestEnv::new();
        env.run("MULTI");
        assert!(env.run("NOSUCH").starts_with("-ERR unknown command"));
        assert_eq!(
            env.run("HSET k f"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(
            env.run("EXEC"),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert_eq!(env.run("HGET k f"), "$-1\r\n");
    }

    #[test]
    fn exec_with_extra_argument() {
        let mut env = TestEnv::new();
        env.run("MULTI");
        // Spec §13: rejecting EXEC itself aborts and discards the transaction.
        assert_eq!(
            env.run("EXEC extra"),
            "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"
        );
        assert_eq!(env.run("EXEC"), "-ERR EXEC without MULTI\r\n");
    }

    #[test]
    fn watch_conflict_returns_null() {
        let mut env = TestEnv::new();
        env.run("WATCH k");
        env.run("HSET k f v");
        env.run("MULTI");
        env.run("HSET k f w");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        assert_eq!(env.run("HGET k f"), "$1\r\nv\r\n");
        // The watch is gone after EXEC.
        env.run("MULTI");
        env.run("HSET k f w");
        assert_eq!(env.run("EXEC"), "*1\r\n:0\r\n");
        env.resp3();
        env.run("WATCH k");
        env.run("HSET k f z");
        env.run("MULTI");
        assert_eq!(env.run("EXEC"), "_\r\n");
    }

    #[test]
    fn discard_unwatches() {
        let mut env = TestEnv::new();
        env.run("WATCH k");
        env.run("MULTI");
        assert_eq!(env.run("DISCARD"), "+OK\r\n");
        env.run("HSET k f v");
        env.run("MULTI");
        env.run("HGET k f");
        assert_eq!(env.run("EXEC"), "*1\r\n$1\r\nv\r\n");
    }
}
