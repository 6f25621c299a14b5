//! HGETDEL key FIELDS numfields field [field ...]

use super::httl::fields_block;
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hgetdel", -5, hgetdel)
    .flags(flags::WRITE | flags::FAST)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "8.0.0",
        "Returns the value of a field and deletes it from the hash.",
        "O(N) where N is the number of specified fields",
        "key FIELDS numfields field [field ...]",
    )];

fn hgetdel(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let first = fields_block(args, 2, CmdError::NumFieldsNotPositiveInteger, "hgetdel")?;
    let now = ctx.now_ms;
    reply.array(args.len() - first);
    let mut db = ctx.db();
    let Some(mut hash) = db.get_mut(args.get(1), now) else {
        (first..args.len()).for_each(|_| reply.null());
        return Ok(());
    };
    // Expired fields are already reclaimed, so every stored field is live. A field named
    // twice answers its value once, then null.
    for field in args.from(first) {
        match hash.get(field) {
            Some(f) => {
                reply.bulk(f.value);
                hash.remove(field);
            }
            None => reply.null(),
        }
    }
    // Dropping `hash` deletes the key if it is now empty.
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::httl::test_util::{bulks, exists, ints, stored, table_after};
    use crate::cmd::testing::TestEnv;

    #[test]
    fn table_entry() {
        let c = crate::cmd::table().get(b"hgetdel").expect("hgetdel");
        assert_eq!(c.arity, -5);
        assert_eq!(c.flags, crate::cmd::flags::WRITE | crate::cmd::flags::FAST);
        assert_eq!((c.first_key, c.last_key, c.step), (1, 1, 1));
    }

    #[test]
    fn spec_example() {
        let mut env = TestEnv::new();
        env.run("HSET h f1 10 f2 value2 f3 value3");
        env.run("HPEXPIRE h 5 FIELDS 1 f2");
        env.advance_ms(15);
        assert_eq!(
            env.run("HGETDEL h FIELDS 2 f2 f3"),
            bulks(&[None, Some("value3")], false)
        );
        assert_eq!(stored(&env, "h"), Some(1));
        assert_eq!(env.run("HGET h f1"), "$2\r\n10\r\n");
        // The last field goes along with missing ones, and the key with it.
        assert_eq!(
            env.run("HGETDEL h FIELDS 4 f1 f2 f3 f4"),
            bulks(&[Some("10"), None, None, None], false)
        );
        assert!(!exists(&env, "h"));
    }

    #[test]
    fn repeated_field_and_resp3() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2");
        env.resp3();
        assert_eq!(
            env.run("HGETDEL h FIELDS 3 a a b"),
            bulks(&[Some("1"), None, Some("2")], true)
        );
        assert!(!exists(&env, "h"));
        assert_eq!(env.run("HGETDEL h FIELDS 1 a"), "*1\r\n_\r\n");
    }

    #[test]
    fn missing_key_and_binary_values() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HGETDEL nokey FIELDS 2 a b"),
            "*2\r\n$-1\r\n$-1\r\n"
        );
        assert!(!exists(&env, "nokey"));
        env.run_args(&[&b"HSET"[..], b"k", b"\0f", b"\r\n", b"g", b""]);
        assert_eq!(
            env.run_args(&[&b"HGETDEL"[..], b"k", b"FIELDS", b"1", b"\0f"]),
            b"*1\r\n$2\r\n\r\n\r\n"
        );
        assert_eq!(env.run("HGETDEL k FIELDS 1 g"), "*1\r\n$0\r\n\r\n");
        assert!(!exists(&env, "k"));
    }

    #[test]
    fn fully_expired_hash_is_gone() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1");
        env.run("HPEXPIRE h 5 FIELDS 1 a");
        env.advance_ms(6);
        assert_eq!(env.server.keyspace.stored_len(0, b"h"), Some(1));
        assert_eq!(env.run("HGETDEL h FIELDS 1 zz"), "*1\r\n$-1\r\n");
        assert_eq!(env.server.keyspace.stored_len(0, b"h"), None);
        assert!(!exists(&env, "h"));
    }

    #[test]
    fn table_encoded_hash() {
        let mut env = TestEnv::new();
        table_after(&env, 2);
        env.run("HSET h a 1 b 2 c 3 d 4");
        assert_eq!(
            env.run("HGETDEL h FIELDS 3 a c zz"),
            bulks(&[Some("1"), Some("3"), None], false)
        );
        assert_eq!(env.run("HTTL h FIELDS 4 a b c d"), ints(&[-2, -1, -2, -1]));
    }

    #[test]
    fn validation() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1");
        assert_eq!(
            env.run("HGETDEL h FIELDS 1"),
            "-ERR wrong number of arguments for 'hgetdel' command\r\n"
        );
        assert_eq!(
            env.run("HGETDEL h a FIELDS 1"),
            "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"
        );
        for n in ["0", "-1", "one", "9223372036854775808"] {
            assert_eq!(
                env.run(&format!("HGETDEL h FIELDS {n} a")),
                "-ERR Number of fields must be a positive integer\r\n"
            );
        }
        assert_eq!(
            env.run("HGETDEL h FIELDS 2 a"),
            "-ERR The `numfields` parameter must match the number of arguments\r\n"
        );
        // Nothing was deleted by the failed calls.
        assert_eq!(env.run("hgetdel h fields 1 a"), bulks(&[Some("1")], false));
    }

    #[test]
    fn watch_sees_deletes_only() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2");
        env.run("WATCH h");
        assert_eq!(env.run("HGETDEL h FIELDS 1 zz"), "*1\r\n$-1\r\n");
        env.run("MULTI");
        env.run("HSET h c 3");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
        env.run("WATCH h");
        env.run("HGETDEL h FIELDS 1 a");
        env.run("MULTI");
        env.run("HSET h c 4");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
    }
}
