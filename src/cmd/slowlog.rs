//! SLOWLOG GET [count] | LEN | RESET | HELP
//!
//! The commands that took at least `slowlog-log-slower-than` microseconds (10000 by
//! default; 0 logs everything, a negative value nothing), newest first, at most
//! `slowlog-max-len` of them; each entry as Redis's: id, unix time, microseconds, the
//! arguments (at most 32, each at most 128 bytes, saying how much was cut), the client's
//! address and name. The timing itself is in `cmd::run_locked` (see `cmdstats`).

use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::{parse_i64, Reply};

const ADMIN: u32 = flags::ADMIN | flags::LOADING | flags::STALE;

const SUBCOMMANDS: &[Command] = &[
    Command::new("slowlog|get", -2, get).flags(ADMIN).doc(
        "server",
        "2.2.12",
        "Returns the slow log's entries.",
        "O(N) where N is the number of entries returned",
        "[count]",
    ),
    Command::new("slowlog|len", 2, len).flags(ADMIN).doc(
        "server",
        "2.2.12",
        "Returns the number of entries in the slow log.",
        "O(1)",
        "",
    ),
    Command::new("slowlog|reset", 2, reset).flags(ADMIN).doc(
        "server",
        "2.2.12",
        "Clears all entries from the slow log.",
        "O(N) where N is the number of entries in the slowlog",
        "",
    ),
    Command::new("slowlog|help", 2, help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "server",
            "6.2.0",
            "Show helpful text about the different subcommands",
            "O(1)",
            "",
        ),
];

pub const COMMANDS: &[Command] = &[Command::container("slowlog", SUBCOMMANDS).doc(
    "server",
    "2.2.12",
    "A container for slow log commands.",
    "Depends on subcommand.",
    "",
)];

/// SLOWLOG GET [count]: 10 entries by default, -1 for all.
fn get(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(super::unknown_subcommand(args.get(0), args.get(1)));
    }
    let count = if args.len() == 3 {
        match parse_i64(args.get(2)) {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(n as usize),
            _ => {
                return Err(CmdError::other(
                    "ERR count should be greater than or equal to -1",
                ))
            }
        }
    } else {
        Some(10)
    };
    let entries = ctx.server.commands.slow_entries(count);
    reply.array(entries.len());
    for e in entries {
        reply.array(6);
        reply.int(e.id as i64);
        reply.int(e.unix_s as i64);
        reply.int(e.micros as i64);
        reply.array(e.args.len());
        for a in &e.args {
            reply.bulk(a);
        }
        reply.bulk(e.addr.as_bytes());
        reply.bulk(&e.name);
    }
    Ok(())
}

fn len(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.int(ctx.server.commands.slowlog_len() as i64);
    Ok(())
}

fn reset(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    ctx.server.commands.slowlog_reset();
    reply.ok();
    Ok(())
}

const HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
];

fn help(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    super::client::help_reply(reply, args.get(0), HELP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;

    #[test]
    fn slowlog_records_with_threshold_zero_and_resets() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("SLOWLOG LEN"), ":0\r\n");
        assert_eq!(env.run("CONFIG SET slowlog-log-slower-than 0"), "+OK\r\n");
        env.run("HSET k f v");
        // The CONFIG SET itself, then HSET.
        assert_eq!(env.run("SLOWLOG LEN"), ":2\r\n");
        // Newest first: SLOWLOG LEN (logged once it ran), HSET, CONFIG SET.
        let got = env.run("SLOWLOG GET 2");
        assert!(got.starts_with("*2\r\n*6\r\n:2\r\n:"), "{got:?}");
        assert!(
            got.contains("*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$1\r\nf\r\n$1\r\nv\r\n"),
            "{got:?}"
        );
        assert_eq!(
            env.run("SLOWLOG GET x"),
            "-ERR count should be greater than or equal to -1\r\n"
        );
        assert_eq!(env.run("SLOWLOG RESET"), "+OK\r\n");
        // RESET itself is logged once it ran.
        assert_eq!(env.run("SLOWLOG LEN"), ":1\r\n");
        assert_eq!(env.run("CONFIG SET slowlog-log-slower-than -1"), "+OK\r\n");
        env.run("SLOWLOG RESET");
        env.run("HSET k f v");
        assert_eq!(env.run("SLOWLOG LEN"), ":0\r\n");
        env.run("AUTH secret");
        assert_eq!(env.run("CONFIG SET slowlog-log-slower-than 0"), "+OK\r\n");
        env.run("AUTH secret");
        assert!(env
            .run("SLOWLOG GET 1")
            .contains("$4\r\nAUTH\r\n$10\r\n(redacted)\r\n"));
    }
}
