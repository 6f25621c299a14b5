//! TIME
//! SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
//! ROLE | LASTSAVE | SAVE | BGSAVE
//! CLUSTER subcommand [argument ...] | READONLY | READWRITE
//!
//! Server-level commands clients and tools send. hashd is a standalone, memory-only server:
//! CLUSTER, READONLY and READWRITE give Redis's standalone answer ("cluster support
//! disabled"), which cluster-probing clients (StackExchange.Redis, go-redis) take as "not a
//! cluster". SAVE and BGSAVE fail with an explanation rather than pretend to persist data;
//! SHUTDOWN's SAVE/NOSAVE make no difference since there is nothing to save.

use super::parse::is;
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

pub const COMMANDS: &[Command] = &[
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
                | flags::ALLOW_BUSY,
        )
        .doc(
            "server",
            "1.0.0",
            "Shuts down the server.",
            "O(1)",
            "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]",
        ),
    Command::new("role", 1, role)
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
        .flags(flags::ADMIN | flags::NOSCRIPT | flags::NO_MULTI)
        .doc(
            "server",
            "1.0.0",
            "Synchronously saves the database(s) to disk.",
            "O(N) where N is the total number of keys in all databases",
            "",
        ),
    Command::new("bgsave", -1, save)
        .flags(flags::ADMIN | flags::NOSCRIPT)
        .doc(
            "server",
            "1.0.0",
            "Asynchronously saves the database(s) to disk.",
            "O(1)",
            "[SCHEDULE]",
        ),
    Command::new("cluster", -2, cluster_disabled)
        .flags(flags::STALE)
        .doc(
            "cluster",
            "3.0.0",
            "A container for Redis Cluster commands.",
            "Depends on subcommand.",
            "subcommand [argument [argument ...]]",
        ),
    Command::new("readonly", 1, cluster_disabled)
        .flags(flags::FAST | flags::LOADING | flags::STALE)
        .acl(&["connection"])
        .doc(
            "cluster",
            "3.0.0",
            "Enables read-only queries for a connection to a Redis Cluster replica node.",
            "O(1)",
            "",
        ),
    Command::new("readwrite", 1, cluster_disabled)
        .flags(flags::FAST | flags::LOADING | flags::STALE)
        .acl(&["connection"])
        .doc(
            "cluster",
            "3.0.0",
            "Enables read-write queries for a connection to a Redis Cluster replica node.",
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
    for a in args.from(1) {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") || is(a, "force") {
            other = true;
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
    ctx.server.shutdown.trigger();
    // No reply, as in Redis: the connection closes once earlier replies are out.
    ctx.client.close_after_reply = true;
    Ok(())
}

/// ROLE
fn role(_ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.array(3);
    reply.bulk(b"master");
    reply.int(0);
    reply.array(0);
    Ok(())
}

/// LASTSAVE
fn lastsave(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    // Nothing is ever saved; like Redis with no save yet, report the start-up time.
    reply.int((ctx.server.started_ms / 1000) as i64);
    Ok(())
}

/// SAVE, BGSAVE [SCHEDULE]
fn save(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, _reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() > 2 || (args.len() == 2 && !is(args.get(1), "schedule")) {
        return Err(CmdError::Syntax);
    }
    Err(CmdError::other(
        "ERR hashd keeps data in memory only and cannot save it to disk",
    ))
}

/// CLUSTER …, READONLY, READWRITE
fn cluster_disabled(
    _ctx: &mut Ctx<'_, '_>,
    _args: Args<'_>,
    _reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    Err(CmdError::other(CLUSTER_DISABLED))
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
    fn cluster_readonly_readwrite_are_disabled() {
        let mut env = TestEnv::new();
        for cmd in [
            "CLUSTER NODES",
            "cluster slots",
            "CLUSTER INFO",
            "CLUSTER ANYTHING at all",
            "READONLY",
            "READWRITE",
        ] {
            assert_eq!(
                env.run(cmd),
                "-ERR This instance has cluster support disabled\r\n",
                "{cmd}"
            );
        }
        assert_eq!(
            env.run("CLUSTER"),
            "-ERR wrong number of arguments for 'cluster' command\r\n"
        );
    }

    #[test]
    fn role_and_lastsave() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("ROLE"), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
        assert_eq!(env.run("LASTSAVE"), format!(":{}\r\n", T0_MS / 1000));
    }

    #[test]
    fn save_and_bgsave_refuse() {
        let mut env = TestEnv::new();
        let refusal = "-ERR hashd keeps data in memory only and cannot save it to disk\r\n";
        assert_eq!(env.run("SAVE"), refusal);
        assert_eq!(env.run("BGSAVE"), refusal);
        assert_eq!(env.run("BGSAVE SCHEDULE"), refusal);
        assert_eq!(env.run("BGSAVE NOW"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("SAVE x"),
            "-ERR wrong number of arguments for 'save' command\r\n"
        );
    }
}
