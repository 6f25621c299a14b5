//! TIME
//! SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
//! ROLE | LASTSAVE | SAVE | BGSAVE
//!
//! Server-level commands clients and tools send. SAVE, BGSAVE and SHUTDOWN's
//! save write the RDB snapshot (persist::snapshot); they hold every shard, so a snapshot is
//! one instant.

use std::sync::atomic::Ordering;

use super::parse::is;
use super::{flags, Args, Command, Ctx};
use crate::context::FinalSave;
use crate::error::CmdError;
use crate::persist::snapshot::{self, BgsaveError};
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[
    Command::new("monitor", 1, monitor)
        .flags(flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE)
        .doc(
            "server",
            "1.0.0",
            "Listens for all requests received by the server in real-time.",
            "",
            "",
        ),
    Command::new("time", 1, time)
        .flags(flags::LOADING | flags::STALE | flags::FAST)
        .doc("server", "2.6.0", "Returns the server time.", "O(1)", ""),
    Command::new("shutdown", -1, shutdown)
        .flags(
            flags::ADMIN
                | flags::NOSCRIPT
                | flags::LOADING
                | flags::STALE
                | flags::NO_MULTI
                | flags::ALLOW_BUSY
                | flags::LOCK_ALL,
        )
        .doc(
            "server",
            "1.0.0",
            "Synchronously saves the database(s) to disk and shuts down the Redis server.",
            "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
            "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]",
        ),
    Command::new("role", 1, super::replication::role)
        .flags(flags::NOSCRIPT | flags::LOADING | flags::STALE | flags::FAST)
        .acl(&["admin", "dangerous"])
        .doc(
            "server",
            "2.8.12",
            "Returns the replication role.",
            "O(1)",
            "",
        ),
    Command::new("lastsave", 1, lastsave)
        .flags(flags::LOADING | flags::STALE | flags::FAST)
        .acl(&["admin", "dangerous"])
        .doc(
            "server",
            "1.0.0",
            "Returns the Unix timestamp of the last successful save to disk.",
            "O(1)",
            "",
        ),
    Command::new("save", 1, save)
        .flags(
            flags::ADMIN
                | flags::NOSCRIPT
                | flags::NO_ASYNC_LOADING
                | flags::NO_MULTI
                | flags::LOCK_ALL,
        )
        .doc(
            "server",
            "1.0.0",
            "Synchronously saves the database(s) to disk.",
            "O(N) where N is the total number of keys in all databases",
            "",
        ),
    Command::new("bgsave", -1, bgsave)
        .flags(flags::ADMIN | flags::NOSCRIPT | flags::NO_ASYNC_LOADING | flags::LOCK_ALL)
        .doc(
            "server",
            "1.0.0",
            "Asynchronously saves the database(s) to disk.",
            "O(1)",
            "[SCHEDULE]",
        ),
    Command::new("bgrewriteaof", 1, bgrewriteaof)
        .flags(flags::ADMIN | flags::NOSCRIPT | flags::NO_ASYNC_LOADING | flags::LOCK_ALL)
        .acl(&["dangerous"])
        .doc(
            "server",
            "1.0.0",
            "Asynchronously rewrites the append-only file to disk.",
            "O(1)",
            "",
        ),
];

/// TIME
fn time(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    // The command's "now" has millisecond resolution; microseconds follow from it.
    reply.array(2);
    reply.bulk_u64(ctx.now_ms / 1000);
    reply.bulk_u64((ctx.now_ms % 1000) * 1000);
    Ok(())
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
fn shutdown(ctx: &mut Ctx<'_, '_>, args: Args<'_>, _reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let (mut save, mut nosave, mut other, mut abort) = (false, false, false, false);
    let mut force = false;
    for a in args.from(1) {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") {
            other = true;
        } else if is(a, "force") {
            other = true;
            force = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (abort && (save || nosave || other)) || (save && nosave) {
        return Err(CmdError::Syntax);
    }
    if abort {
        // A shutdown here is immediate, so none is ever pending.
        return Err(CmdError::other("ERR No shutdown in progress."));
    }
    let server = ctx.server;
    // While a snapshot loads, what is in memory is partial: saving it would replace the
    // file with less than it holds (Redis forces NOSAVE then too).
    let loading = server.rdb.loading.load(Ordering::Relaxed);
    let wanted = !loading && (save || (!nosave && !server.config.save_points.read().is_empty()));
    // From here no other command runs: the snapshot taken under these locks holds every
    // acknowledged write.
    server.closing.store(true, Ordering::Relaxed);
    if wanted {
        server.rdb.kill_child();
        if let Err(e) = snapshot::save_locked(server, ctx.locked) {
            tracing::warn!(error = %e, "error trying to save the DB, can't exit");
            if !force {
                server.closing.store(false, Ordering::Relaxed);
                return Err(CmdError::other(
                    "ERR Errors trying to SHUTDOWN. Check logs.",
                ));
            }
        }
    }
    server.set_final_save(FinalSave::Done);
    server.shutdown.trigger();
    // No reply, as in Redis: the connection closes once earlier replies are out.
    ctx.client.close_after_reply = true;
    Ok(())
}

/// MONITOR: from now on the connection also receives a line per command run (see
/// `monitor.rs`).
fn monitor(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if ctx.client.monitor.is_none() {
        ctx.client.monitor = Some(ctx.server.monitors.add(&ctx.client.shared));
    }
    reply.ok();
    Ok(())
}

/// LASTSAVE: the last successful save (the start-up time until one happens).
fn lastsave(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.int(ctx.server.rdb.last_save_s.load(Ordering::Relaxed) as i64);
    Ok(())
}

const BGSAVE_IN_PROGRESS: &str = "ERR Background save already in progress";

/// SAVE: writes the snapshot now, with every shard held (other clients wait, as in Redis).
fn save(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if ctx.server.rdb.bgsave_in_progress() {
        return Err(CmdError::other(BGSAVE_IN_PROGRESS));
    }
    match snapshot::save_locked(ctx.server, ctx.locked) {
        Ok(_) => reply.ok(),
        Err(e) => {
            tracing::warn!(error = %e, "SAVE failed");
            return Err(CmdError::other("ERR"));
        }
    }
    Ok(())
}

/// BGSAVE [SCHEDULE]: forks a child that writes the snapshot of this instant.
fn bgsave(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let schedule = match args.len() {
        1 => false,
        2 if is(args.get(1), "schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    if ctx.server.rdb.bgsave_in_progress() {
        if schedule {
            ctx.server.rdb.scheduled.store(true, Ordering::Relaxed);
            reply.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::other(BGSAVE_IN_PROGRESS));
    }
    match snapshot::bgsave_locked(ctx.server, ctx.locked) {
        Ok(()) => reply.simple("Background saving started"),
        Err(BgsaveError::InProgress) => return Err(CmdError::other(BGSAVE_IN_PROGRESS)),
        Err(BgsaveError::Fork(e)) => {
            tracing::warn!(error = %e, "Can't save in background: fork failed");
            return Err(CmdError::other("ERR"));
        }
    }
    Ok(())
}

/// BGREWRITEAOF: the log moves to a new incr file and a forked child writes a new base.
fn bgrewriteaof(
    ctx: &mut Ctx<'_, '_>,
    _args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    use crate::persist::appendonly::{bgrewrite_locked, Rewrite};
    match bgrewrite_locked(ctx.server, ctx.locked).map_err(CmdError::other)? {
        Rewrite::Started => reply.simple("Background append only file rewriting started"),
        Rewrite::Scheduled => reply.simple("Background append only file rewriting scheduled"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::{TestEnv, T0_MS};

    #[test]
    fn time_is_seconds_and_microseconds() {
        let mut env = TestEnv::new();
        env.advance_ms(1_234);
        let secs = (T0_MS + 1_234) / 1000;
        assert_eq!(
            env.run("TIME"),
            format!("*2\r\n$10\r\n{secs}\r\n$6\r\n234000\r\n")
        );
        env.advance_ms(766);
        assert_eq!(
            env.run("TIME"),
            format!("*2\r\n$10\r\n{}\r\n$1\r\n0\r\n", secs + 1)
        );
        assert_eq!(
            env.run("TIME x"),
            "-ERR wrong number of arguments for 'time' command\r\n"
        );
    }

    #[test]
    fn shutdown_triggers_and_closes_without_reply() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("SHUTDOWN NOSAVE NOW"), "");
        assert!(env.server.shutdown.is_triggered());
        assert!(env.client.close_after_reply);
        let mut env = TestEnv::new();
        assert_eq!(env.run("shutdown"), "");
        assert!(env.server.shutdown.is_triggered());
    }

    #[test]
    fn shutdown_option_errors() {
        let mut env = TestEnv::new();
        for bad in [
            "SHUTDOWN NOW LATER",
            "SHUTDOWN SAVE NOSAVE",
            "SHUTDOWN ABORT NOW",
            "SHUTDOWN ABORT SAVE",
        ] {
            assert_eq!(env.run(bad), "-ERR syntax error\r\n", "{bad}");
        }
        assert_eq!(
            env.run("SHUTDOWN ABORT"),
            "-ERR No shutdown in progress.\r\n"
        );
        assert!(!env.server.shutdown.is_triggered());
        assert!(!env.client.close_after_reply);
    }

    #[test]
    fn role_and_lastsave() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("ROLE"), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
        assert_eq!(env.run("LASTSAVE"), format!(":{}\r\n", T0_MS / 1000));
    }

    #[test]
    fn save_writes_a_snapshot_that_loads_back() {
        let dir = std::env::temp_dir().join(format!("hashd-unit-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut env = TestEnv::new();
        assert_eq!(
            env.run(&format!("CONFIG SET dir {}", dir.display())),
            "+OK\r\n"
        );
        env.run("CONFIG SET dbfilename unit.rdb");
        env.run("HSET k a 1 b 2");
        env.run("HPEXPIRE k 5000 FIELDS 1 a");
        env.run("PEXPIRE k 9000");
        env.run("SELECT 3");
        env.run("HSET other f v");
        env.run("HSET gone f v");
        env.run("HPEXPIRE gone 10 FIELDS 1 f");
        env.advance_ms(20);
        assert!(env
            .run("INFO persistence")
            .contains("rdb_changes_since_last_save:"));
        assert_eq!(env.run("SAVE"), "+OK\r\n");
        assert_eq!(env.run("LASTSAVE"), format!(":{}\r\n", env.now_ms() / 1000));
        assert!(env
            .run("INFO persistence")
            .contains("rdb_changes_since_last_save:0\r\n"));
        assert!(env.run("INFO persistence").contains("rdb_saves:1\r\n"));

        // A fresh server on the same directory loads what was saved (less what expired).
        let mut fresh = TestEnv::new();
        fresh.run(&format!("CONFIG SET dir {}", dir.display()));
        fresh.run("CONFIG SET dbfilename unit.rdb");
        fresh.advance_ms(20);
        assert_eq!(
            crate::persist::snapshot::load(&fresh.server).ok(),
            Some(true)
        );
        assert_eq!(fresh.run("HGET k b"), "$1\r\n2\r\n");
        assert_eq!(
            fresh.run("HPEXPIRETIME k FIELDS 1 a"),
            format!("*1\r\n:{}\r\n", T0_MS + 5000)
        );
        assert_eq!(fresh.run("PEXPIRETIME k"), format!(":{}\r\n", T0_MS + 9000));
        fresh.run("SELECT 3");
        assert_eq!(fresh.run("DBSIZE"), ":1\r\n");
        assert_eq!(fresh.run("HGET other f"), "$1\r\nv\r\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bgsave_arguments() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("BGSAVE NOW"), "-ERR syntax error\r\n");
        assert_eq!(env.run("BGSAVE SCHEDULE x"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("SAVE x"),
            "-ERR wrong number of arguments for 'save' command\r\n"
        );
        env.run("MULTI");
        assert_eq!(
            env.run("SAVE"),
            "-ERR Command not allowed inside a transaction\r\n"
        );
    }
}
