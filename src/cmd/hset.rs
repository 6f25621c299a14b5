//! HSET key field value [field value ...]
//! HMSET key field value [field value ...]
//! HSETNX key field value

use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::TtlUpdate;
use crate::protocol::Reply;

const WRITE_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;

pub const COMMANDS: &[Command] = &[
    Command::new("hset", -4, hset)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Creates or modifies the value of a field in a hash.",
            "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
            "key field value [field value ...]",
        ),
    Command::new("hmset", -4, hmset)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Sets the values of multiple fields.",
            "O(N) where N is the number of fields being set.",
            "key field value [field value ...]",
        ),
    Command::new("hsetnx", 4, hsetnx)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Sets the value of a field in a hash only when the field doesn't exist.",
            "O(1)",
            "key field value",
        ),
];

/// Writes the field/value pairs of HSET/HMSET; returns how many fields are new.
fn set_pairs(ctx: &mut Ctx<'_, '_>, args: Args<'_>, name: &str) -> Result<i64, CmdError> {
    // Odd pairs are an arity error, checked before the key is looked at (spec §6).
    if args.len() % 2 != 0 {
        return Err(CmdError::WrongArity(name.into()));
    }
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let mut hash = db.get_or_create(args.get(1), now);
    let mut created = 0;
    for i in (2..args.len()).step_by(2) {
        if hash.set(args.get(i), args.get(i + 1), TtlUpdate::Clear) {
            created += 1;
        }
    }
    Ok(created)
}

fn hset(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let created = set_pairs(ctx, args, "hset")?;
    reply.int(created);
    Ok(())
}

fn hmset(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    set_pairs(ctx, args, "hmset")?;
    reply.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let mut hash = db.get_or_create(args.get(1), now);
    if hash.get(args.get(2)).is_some() {
        reply.int(0);
    } else {
        hash.set(args.get(2), args.get(3), TtlUpdate::Clear);
        reply.int(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;

    #[test]
    fn hset_counts_new_fields_only() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HSET bike:1 model Deimos brand Ergonom type 'Enduro bikes' price 4972"),
            ":4\r\n"
        );
        assert_eq!(env.run("HSET bike:1 model Deimos2 extra x"), ":1\r\n");
        assert_eq!(env.run("HSET k f a f b"), ":1\r\n");
        assert_eq!(env.run("HGET k f"), "$1\r\nb\r\n");
    }

    #[test]
    fn odd_pairs_are_an_arity_error() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HSET k f1 v1 f2"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(
            env.run("HMSET k f1 v1 f2"),
            "-ERR wrong number of arguments for 'hmset' command\r\n"
        );
        assert_eq!(
            env.run("HSET k f"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(env.run("HGET k f1"), "$-1\r\n");
    }

    #[test]
    fn hmset_replies_ok() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HMSET k a 1 b 2"), "+OK\r\n");
        assert_eq!(env.run("HGET k b"), "$1\r\n2\r\n");
    }

    #[test]
    fn hsetnx_only_creates() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HSETNX k f x"), ":1\r\n");
        assert_eq!(env.run("HSETNX k f y"), ":0\r\n");
        assert_eq!(env.run("HGET k f"), "$1\r\nx\r\n");
    }

    #[test]
    fn binary_and_empty_values() {
        let mut env = TestEnv::new();
        assert_eq!(env.run_args(&[&b"HSET"[..], b"k", b"", b""]), b":1\r\n");
        assert_eq!(env.run_args(&[&b"HGET"[..], b"k", b""]), b"$0\r\n\r\n");
        assert_eq!(
            env.run_args(&[&b"HSET"[..], b"k\0\xff", b"f\r\n", b"\x00\x01"]),
            b":1\r\n"
        );
        assert_eq!(
            env.run_args(&[&b"HGET"[..], b"k\0\xff", b"f\r\n"]),
            b"$2\r\n\x00\x01\r\n"
        );
    }
}
