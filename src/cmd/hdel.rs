//! HDEL key field [field ...]

use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hdel", -3, hdel)
    .flags(flags::WRITE | flags::FAST)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "2.0.0",
        "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
        "O(N) where N is the number of fields to be removed.",
        "key field [field ...]",
    )];

/// Expired fields are reclaimed before the deletes, so deleting one counts 0. A field
/// named twice is removed (and counted) once.
fn hdel(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let mut deleted = 0;
    if let Some(mut hash) = db.get_mut(args.get(1), now) {
        for field in args.from(2) {
            if hash.remove(field) {
                deleted += 1;
                // The key is gone with its last field; the rest cannot match anything.
                if hash.is_empty() {
                    break;
                }
            }
        }
    }
    reply.int(deleted);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::hset::fixtures::{force_table, set_with_deadline, stored_len};
    use crate::cmd::testing::TestEnv;

    #[test]
    fn counts_removed_fields_once() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2 c 3 d 4");
        assert_eq!(env.run("HDEL h a a nope"), ":1\r\n");
        assert_eq!(env.run("HDEL h b c"), ":2\r\n");
        assert_eq!(env.run("HKEYS h"), "*1\r\n$1\r\nd\r\n");
        assert_eq!(env.run("HDEL nokey a"), ":0\r\n");
        env.resp3();
        assert_eq!(env.run("HDEL h nope"), ":0\r\n");
        assert_eq!(
            env.run("HDEL h"),
            "-ERR wrong number of arguments for 'hdel' command\r\n"
        );
    }

    #[test]
    fn removing_the_last_field_deletes_the_key() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2 c 3");
        assert_eq!(env.run("HDEL h a b c d e"), ":3\r\n");
        assert_eq!(stored_len(&env, "h"), None);
        assert_eq!(env.run("HLEN h"), ":0\r\n");
        // The key starts over from nothing.
        assert_eq!(env.run("HSET h x 1"), ":1\r\n");
        assert_eq!(env.run("HGETALL h"), "*2\r\n$1\r\nx\r\n$1\r\n1\r\n");
    }

    #[test]
    fn expired_fields_are_not_counted() {
        let mut env = TestEnv::new();
        env.run("HSET h keep 1");
        set_with_deadline(&env, "h", "gone", "x", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HDEL h gone"), ":0\r\n");
        assert_eq!(stored_len(&env, "h"), Some(1));
        assert_eq!(env.run("HDEL h keep gone"), ":1\r\n");
        assert_eq!(stored_len(&env, "h"), None);
    }

    #[test]
    fn live_fields_with_a_ttl_are_deleted() {
        let mut env = TestEnv::new();
        set_with_deadline(&env, "h", "f", "x", env.now_ms() + 1000);
        assert_eq!(env.run("HDEL h f"), ":1\r\n");
        assert_eq!(stored_len(&env, "h"), None);
    }

    #[test]
    fn table_encoded_hash() {
        let mut env = TestEnv::new();
        force_table(&env);
        for i in 0..50 {
            env.run(&format!("HSET h f{i} v"));
        }
        let all: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
        assert_eq!(
            env.run(&format!("HDEL h f0 f0 {}", all.join(" "))),
            ":50\r\n"
        );
        assert_eq!(stored_len(&env, "h"), None);
    }
}
