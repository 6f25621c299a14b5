//! HGET key field
//! HMGET key field [field ...]
//! HGETALL key
//! HKEYS key
//! HVALS key
//! HLEN key
//! HEXISTS key field
//! HSTRLEN key field

use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::LiveFields;
use crate::protocol::Reply;

const READ_FAST: u32 = flags::READONLY | flags::FAST;

/// A bulk string's bytes beyond its data when its length is below 100 (`$NN\r\n…\r\n`).
const SMALL_BULK_OVERHEAD_BYTES: usize = 7;

pub const COMMANDS: &[Command] = &[
    Command::new("hget", 3, hget)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Returns the value of a field in a hash.",
            "O(1)",
            "key field",
        ),
    Command::new("hmget", -3, hmget)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Returns the values of all fields in a hash.",
            "O(N) where N is the number of fields being requested.",
            "key field [field ...]",
        ),
    Command::new("hgetall", 2, hgetall)
        .flags(flags::READONLY)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Returns all fields and values in a hash.",
            "O(N) where N is the size of the hash.",
            "key",
        ),
    Command::new("hkeys", 2, hkeys)
        .flags(flags::READONLY)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Returns all fields in a hash.",
            "O(N) where N is the size of the hash.",
            "key",
        ),
    Command::new("hvals", 2, hvals)
        .flags(flags::READONLY)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Returns all values in a hash.",
            "O(N) where N is the size of the hash.",
            "key",
        ),
    Command::new("hlen", 2, hlen)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Returns the number of fields in a hash.",
            "O(1)",
            "key",
        ),
    Command::new("hexists", 3, hexists)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Determines whether a field exists in a hash.",
            "O(1)",
            "key field",
        ),
    Command::new("hstrlen", 3, hstrlen)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "3.2.0",
            "Returns the length of the value of a field.",
            "O(1)",
            "key field",
        ),
];

/// Lazily expired fields are deleted (spec §5.4), so HGET takes write access to the hash.
fn hget(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    match db
        .get_mut(args.get(1), now)
        .as_deref()
        .and_then(|h| h.get_live(args.get(2), now))
    {
        Some(v) => reply.bulk(v),
        None => reply.null(),
    }
    Ok(())
}

/// Like HGET, deletes the expired fields it meets; a missing key answers all nulls.
fn hmget(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let hash = db.get_mut(args.get(1), now);
    reply.array(args.len() - 2);
    for field in args.from(2) {
        match hash.as_deref().and_then(|h| h.get_live(field, now)) {
            Some(v) => reply.bulk(v),
            None => reply.null(),
        }
    }
    Ok(())
}

/// What HGETALL / HKEYS / HVALS return of each field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    Both,
    Fields,
    Values,
}

/// HGETALL, HKEYS and HVALS skip expired fields without deleting them (spec §5.4).
/// One pass over the encoding, straight into the reply: the header's count comes from the
/// encoding when it knows it (a compact hash always does), else it is written after the
/// elements, in front of them.
fn get_all(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>, parts: Parts) {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let header = |reply: &mut Reply<'_>, n: usize| {
        if parts == Parts::Both {
            reply.map(n);
        } else {
            reply.array(n);
        }
    };
    let Some(hash) = db.get(args.get(1), now) else {
        header(reply, 0);
        return;
    };
    let fields = hash.live_fields(now);
    let write = |reply: &mut Reply<'_>, fields: LiveFields<'_>| {
        let mut n = 0;
        fields.for_each(|(field, value)| {
            n += 1;
            if parts != Parts::Values {
                reply.bulk(field);
            }
            if parts != Parts::Fields {
                reply.bulk(value);
            }
        });
        n
    };
    match fields.exact_len() {
        Some(n) => {
            header(reply, n);
            // The names and values (with their lengths), plus each element's header.
            let per_pair = if parts == Parts::Both { 2 } else { 1 };
            reply.reserve(fields.bytes_hint() + n * per_pair * SMALL_BULK_OVERHEAD_BYTES);
            write(reply, fields);
        }
        None => {
            let mark = reply.defer();
            let n = write(reply, fields);
            reply.prepend(mark, |reply| header(reply, n));
        }
    }
}

fn hgetall(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    get_all(ctx, args, reply, Parts::Both);
    Ok(())
}

fn hkeys(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    get_all(ctx, args, reply, Parts::Fields);
    Ok(())
}

fn hvals(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    get_all(ctx, args, reply, Parts::Values);
    Ok(())
}

/// Counts live fields only: a deliberate difference from Redis, whose HLEN also counts
/// expired fields that are not yet reclaimed. It reclaims them, like HGET does.
fn hlen(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    // Reclaiming the expired fields first makes the count exact and O(1) afterwards, where
    // skipping them would re-count a large hash on every call.
    // A replica reclaims nothing (its master's HDELs do): count the live ones there.
    let keeps_expired = ctx.server.replication.is_replica();
    let mut db = ctx.db();
    let n = db.get_mut(args.get(1), now).map_or(0, |h| {
        if keeps_expired {
            h.live_len(now)
        } else {
            h.len()
        }
    });
    reply.int(n as i64);
    Ok(())
}

/// The live value of `field`, deleting it (and maybe the key) if it has expired.
fn reaped_value_len(ctx: &mut Ctx<'_, '_>, key: &[u8], field: &[u8]) -> Option<usize> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let hash = db.get_mut(key, now);
    hash.as_deref()
        .and_then(|h| h.get_live(field, now))
        .map(<[u8]>::len)
}

fn hexists(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let found = reaped_value_len(ctx, args.get(1), args.get(2)).is_some();
    reply.int(i64::from(found));
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let len = reaped_value_len(ctx, args.get(1), args.get(2)).unwrap_or(0);
    reply.int(len as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::hset::fixtures::{field_deadline, force_table, set_with_deadline, stored_len};
    use crate::cmd::testing::TestEnv;

    #[test]
    fn hget_values_and_nulls() {
        let mut env = TestEnv::new();
        env.run("HSET h f1 v1 f2 v2");
        assert_eq!(env.run("HGET h f1"), "$2\r\nv1\r\n");
        assert_eq!(env.run("HGET h nope"), "$-1\r\n");
        assert_eq!(env.run("HGET nokey f"), "$-1\r\n");
        env.resp3();
        assert_eq!(env.run("HGET h nope"), "_\r\n");
        assert_eq!(env.run("HGET nokey f"), "_\r\n");
        assert_eq!(
            env.run("HGET h"),
            "-ERR wrong number of arguments for 'hget' command\r\n"
        );
        assert_eq!(
            env.run("HGET h f1 f2"),
            "-ERR wrong number of arguments for 'hget' command\r\n"
        );
    }

    #[test]
    fn hmget_in_request_order_with_duplicates() {
        let mut env = TestEnv::new();
        env.run("HSET h f1 v1 f2 v2");
        assert_eq!(env.run("HMGET h f1 nope"), "*2\r\n$2\r\nv1\r\n$-1\r\n");
        assert_eq!(
            env.run("HMGET h f2 f1 f2"),
            "*3\r\n$2\r\nv2\r\n$2\r\nv1\r\n$2\r\nv2\r\n"
        );
        assert_eq!(env.run("HMGET nokey a b"), "*2\r\n$-1\r\n$-1\r\n");
        env.resp3();
        assert_eq!(env.run("HMGET h f1 nope"), "*2\r\n$2\r\nv1\r\n_\r\n");
        assert_eq!(env.run("HMGET nokey a"), "*1\r\n_\r\n");
        assert_eq!(
            env.run("HMGET h"),
            "-ERR wrong number of arguments for 'hmget' command\r\n"
        );
    }

    #[test]
    fn hgetall_shapes() {
        let mut env = TestEnv::new();
        env.run("HSET h f1 v1 f2 v2");
        assert_eq!(
            env.run("HGETALL h"),
            "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"
        );
        assert_eq!(env.run("HGETALL nokey"), "*0\r\n");
        assert_eq!(env.run("HKEYS h"), "*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n");
        assert_eq!(env.run("HVALS h"), "*2\r\n$2\r\nv1\r\n$2\r\nv2\r\n");
        assert_eq!(env.run("HKEYS nokey"), "*0\r\n");
        assert_eq!(env.run("HVALS nokey"), "*0\r\n");
        env.resp3();
        assert_eq!(
            env.run("HGETALL h"),
            "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"
        );
        assert_eq!(env.run("HGETALL nokey"), "%0\r\n");
        assert_eq!(env.run("HKEYS h"), "*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n");
        assert_eq!(env.run("HKEYS nokey"), "*0\r\n");
        assert_eq!(env.run("HVALS nokey"), "*0\r\n");
        for cmd in ["hgetall", "hkeys", "hvals", "hlen"] {
            assert_eq!(
                env.run(&format!("{cmd} a b")),
                format!("-ERR wrong number of arguments for '{cmd}' command\r\n")
            );
        }
    }

    #[test]
    fn insertion_order_survives_updates_and_deletes() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2 c 3");
        env.run("HSET h a 10");
        env.run("HDEL h b");
        env.run("HSET h b 20");
        assert_eq!(
            env.run("HKEYS h"),
            "*3\r\n$1\r\na\r\n$1\r\nc\r\n$1\r\nb\r\n"
        );
        assert_eq!(
            env.run("HVALS h"),
            "*3\r\n$2\r\n10\r\n$1\r\n3\r\n$2\r\n20\r\n"
        );
    }

    #[test]
    fn hgetall_of_a_table_hash_returns_everything() {
        let mut env = TestEnv::new();
        force_table(&env);
        for i in 0..100 {
            env.run(&format!("HSET big f{i} v{i}"));
        }
        let all = env.run("HGETALL big");
        assert!(all.starts_with("*200\r\n"));
        for i in 0..100 {
            assert!(all.contains(&format!("\r\nf{i}\r\n$")));
        }
        assert_eq!(env.run("HLEN big"), ":100\r\n");
    }

    #[test]
    fn expired_fields_are_skipped_by_readers_without_deleting() {
        // Spec §15 #27, with hashd's deliberate HLEN difference (live fields only).
        let mut env = TestEnv::new();
        env.run("HSET k b 2");
        set_with_deadline(&env, "k", "a", "1", env.now_ms() + 1);
        assert_eq!(env.run("HLEN k"), ":2\r\n");
        env.advance_ms(2);
        assert_eq!(env.run("HGETALL k"), "*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
        assert_eq!(env.run("HKEYS k"), "*1\r\n$1\r\nb\r\n");
        assert_eq!(env.run("HVALS k"), "*1\r\n$1\r\n2\r\n");
        env.resp3();
        assert_eq!(env.run("HGETALL k"), "%1\r\n$1\r\nb\r\n$1\r\n2\r\n");
        // None of those deleted the expired field.
        assert_eq!(stored_len(&env, "k"), Some(2));
        // HGET does, and so does HLEN, which then counts exactly.
        assert_eq!(env.run("HGET k a"), "_\r\n");
        assert_eq!(stored_len(&env, "k"), Some(1));
        assert_eq!(env.run("HLEN k"), ":1\r\n");
    }

    #[test]
    fn a_table_with_expired_fields_lists_the_live_ones_under_the_right_count() {
        // A table whose earliest deadline has passed writes its header after the fields.
        let mut env = TestEnv::new();
        force_table(&env);
        env.run("HSET t a 1 b 2 c 3");
        set_with_deadline(&env, "t", "x", "gone", env.now_ms() + 1);
        set_with_deadline(&env, "t", "y", "later", env.now_ms() + 100);
        env.advance_ms(2);
        let all = env.run("HGETALL t");
        assert!(all.starts_with("*8\r\n$1\r\n"), "{all:?}");
        for pair in ["$1\r\na\r\n$1\r\n1\r\n", "$1\r\ny\r\n$5\r\nlater\r\n"] {
            assert!(all.contains(pair), "{all:?}");
        }
        assert!(!all.contains("gone"));
        assert!(env.run("HKEYS t").starts_with("*4\r\n$1\r\n"));
        assert_eq!(env.run("HVALS t").len(), "*4\r\n".len() + 3 * 7 + 11);
        env.resp3();
        assert!(env.run("HGETALL t").starts_with("%4\r\n$1\r\n"));
        assert_eq!(stored_len(&env, "t"), Some(5));
        // Inside EXEC the header goes after the replies before it, not at the buffer's start.
        env.run("MULTI");
        env.run("HGET t a");
        env.run("HKEYS t");
        let exec = env.run("EXEC");
        assert!(
            exec.starts_with("*2\r\n$1\r\n1\r\n*4\r\n$1\r\n"),
            "{exec:?}"
        );
        // Compact again: the expired field is a prefix, counted without a second pass.
        let mut env = TestEnv::new();
        env.run("HSET k a 1 b 2");
        set_with_deadline(&env, "k", "x", "gone", env.now_ms() + 1);
        set_with_deadline(&env, "k", "y", "later", env.now_ms() + 100);
        env.advance_ms(2);
        assert_eq!(
            env.run("HGETALL k"),
            "*6\r\n$1\r\ny\r\n$5\r\nlater\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
    }

    #[test]
    fn a_field_is_readable_at_its_deadline() {
        let mut env = TestEnv::new();
        let deadline = env.now_ms() + 10;
        set_with_deadline(&env, "k", "f", "v", deadline);
        env.advance_ms(10);
        assert_eq!(env.run("HGET k f"), "$1\r\nv\r\n");
        env.advance_ms(1);
        assert_eq!(env.run("HGET k f"), "$-1\r\n");
    }

    #[test]
    fn all_expired_hash_reads_empty_and_is_reclaimed_when_met() {
        let mut env = TestEnv::new();
        set_with_deadline(&env, "k", "f", "v", env.now_ms() + 1);
        set_with_deadline(&env, "k", "g", "w", env.now_ms() + 1);
        set_with_deadline(&env, "p", "f", "v", env.now_ms() + 1);
        env.run("HSET p live 1");
        env.advance_ms(5);
        // A hash with no live field does not exist: the first read reclaims it.
        assert_eq!(stored_len(&env, "k"), Some(2));
        assert_eq!(env.run("HGETALL k"), "*0\r\n");
        assert_eq!(stored_len(&env, "k"), None);
        assert_eq!(env.run("HKEYS k"), "*0\r\n");
        env.resp3();
        assert_eq!(env.run("HGETALL k"), "%0\r\n");
        assert_eq!(env.run("HGET k f"), "_\r\n");
        assert_eq!(env.run("HLEN k"), ":0\r\n");
        // With a live field left, HGETALL skips the expired one without deleting it.
        assert_eq!(env.run("HGETALL p"), "%1\r\n$4\r\nlive\r\n$1\r\n1\r\n");
        assert_eq!(stored_len(&env, "p"), Some(2));
    }

    #[test]
    fn hlen_reclaims_expired_fields_and_the_emptied_key() {
        let mut env = TestEnv::new();
        set_with_deadline(&env, "k", "f", "v", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HLEN k"), ":0\r\n");
        assert_eq!(stored_len(&env, "k"), None);
    }

    #[test]
    fn hmget_deletes_expired_fields_and_fills_nulls() {
        let mut env = TestEnv::new();
        set_with_deadline(&env, "k", "f", "v", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HMGET k f g"), "*2\r\n$-1\r\n$-1\r\n");
        assert_eq!(stored_len(&env, "k"), None);
        env.run("HSET k live 1");
        set_with_deadline(&env, "k", "dead", "x", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HMGET k dead live"), "*2\r\n$-1\r\n$1\r\n1\r\n");
        assert_eq!(field_deadline(&env, "k", "dead"), None);
    }

    #[test]
    fn hlen_hexists_hstrlen() {
        let mut env = TestEnv::new();
        env.run("HSET h f hello e ''");
        assert_eq!(env.run("HLEN h"), ":2\r\n");
        assert_eq!(env.run("HLEN nokey"), ":0\r\n");
        assert_eq!(env.run("HEXISTS h f"), ":1\r\n");
        assert_eq!(env.run("HEXISTS h e"), ":1\r\n");
        assert_eq!(env.run("HEXISTS h nope"), ":0\r\n");
        assert_eq!(env.run("HEXISTS nokey f"), ":0\r\n");
        assert_eq!(env.run("HSTRLEN h f"), ":5\r\n");
        assert_eq!(env.run("HSTRLEN h e"), ":0\r\n");
        assert_eq!(env.run("HSTRLEN h nope"), ":0\r\n");
        assert_eq!(env.run("HSTRLEN nokey f"), ":0\r\n");
        env.resp3();
        assert_eq!(env.run("HSTRLEN h f"), ":5\r\n");
        assert_eq!(env.run("HEXISTS h f"), ":1\r\n");
        for cmd in ["hexists", "hstrlen"] {
            assert_eq!(
                env.run(&format!("{cmd} h")),
                format!("-ERR wrong number of arguments for '{cmd}' command\r\n")
            );
        }
    }

    #[test]
    fn hexists_and_hstrlen_delete_expired_fields() {
        let mut env = TestEnv::new();
        env.run("HSET k keep 1");
        set_with_deadline(&env, "k", "a", "aaa", env.now_ms() + 1);
        set_with_deadline(&env, "k", "b", "bbb", env.now_ms() + 1);
        assert_eq!(env.run("HSTRLEN k a"), ":3\r\n");
        env.advance_ms(2);
        assert_eq!(env.run("HEXISTS k a"), ":0\r\n");
        assert_eq!(field_deadline(&env, "k", "a"), None);
        assert_eq!(env.run("HSTRLEN k b"), ":0\r\n");
        assert_eq!(stored_len(&env, "k"), Some(1));
    }

    #[test]
    fn binary_fields_and_values() {
        let mut env = TestEnv::new();
        env.run_args(&[&b"HSET"[..], b"k", b"\x00f", b"v\r\n\xff"]);
        assert_eq!(
            env.run_args(&[&b"HGETALL"[..], b"k"]),
            b"*2\r\n$2\r\n\x00f\r\n$4\r\nv\r\n\xff\r\n"
        );
        assert_eq!(env.run_args(&[&b"HSTRLEN"[..], b"k", b"\x00f"]), b":4\r\n");
        assert_eq!(env.run_args(&[&b"HEXISTS"[..], b"k", b"f"]), b":0\r\n");
    }

    #[test]
    fn seed_hash_tutorial() {
        // /work/shared/seeds/001: the redis-cli blocks of the hashes tutorial.
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HSET bike:1 model Deimos brand Ergonom type 'Enduro bikes' price 4972"),
            ":4\r\n"
        );
        assert_eq!(env.run("HGET bike:1 model"), "$6\r\nDeimos\r\n");
        assert_eq!(env.run("HGET bike:1 price"), "$4\r\n4972\r\n");
        assert_eq!(
            env.run("HGETALL bike:1"),
            "*8\r\n$5\r\nmodel\r\n$6\r\nDeimos\r\n$5\r\nbrand\r\n$7\r\nErgonom\r\n\
             $4\r\ntype\r\n$12\r\nEnduro bikes\r\n$5\r\nprice\r\n$4\r\n4972\r\n"
        );
        assert_eq!(
            env.run("HMGET bike:1 model price no-such-field"),
            "*3\r\n$6\r\nDeimos\r\n$4\r\n4972\r\n$-1\r\n"
        );
        assert_eq!(env.run("HINCRBY bike:1 price 100"), ":5072\r\n");
        assert_eq!(env.run("HINCRBY bike:1 price -100"), ":4972\r\n");

        assert_eq!(env.run("HINCRBY bike:1:stats rides 1"), ":1\r\n");
        assert_eq!(env.run("HINCRBY bike:1:stats rides 1"), ":2\r\n");
        assert_eq!(env.run("HINCRBY bike:1:stats rides 1"), ":3\r\n");
        assert_eq!(env.run("HINCRBY bike:1:stats crashes 1"), ":1\r\n");
        assert_eq!(env.run("HINCRBY bike:1:stats owners 1"), ":1\r\n");
        assert_eq!(env.run("HGET bike:1:stats rides"), "$1\r\n3\r\n");
        assert_eq!(
            env.run("HMGET bike:1:stats owners crashes"),
            "*2\r\n$1\r\n1\r\n$1\r\n1\r\n"
        );
    }
}
