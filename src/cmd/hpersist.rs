//! HPERSIST key FIELDS numfields field [field ...]

use super::httl::{fields_block, NO_FIELD, NO_TTL};
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hpersist", -5, hpersist)
    .flags(flags::WRITE | flags::FAST)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "7.4.0",
        "Removes the expiration time for each specified field",
        "O(N) where N is the number of specified fields",
        "key FIELDS numfields field [field ...]",
    )];

/// Per-field reply: the TTL was removed.
const PERSISTED: i64 = 1;

fn hpersist(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let first = fields_block(args, 2, CmdError::NumFieldsNotPositiveInteger, "hpersist")?;
    let now = ctx.now_ms;
    let key = args.get(1);
    let mut db = ctx.db();

    // Redis's HPERSIST never deletes expired fields (spec §5.4). Write access would reclaim
    // them, so take it only when some live field really has a TTL to remove; then the
    // reclaim cannot empty the hash, and it changes no answer.
    let has_work = db.get(key, now).is_some_and(|h| {
        args.from(first).any(|f| {
            h.get(f)
                .is_some_and(|f| f.expire_at.is_some() && !f.is_expired(now))
        })
    });
    reply.array(args.len() - first);
    if !has_work {
        let hash = db.get(key, now);
        for field in args.from(first) {
            let code = match hash.and_then(|h| h.get(field)) {
                Some(f) if !f.is_expired(now) => NO_TTL,
                _ => NO_FIELD,
            };
            reply.int(code);
        }
        return Ok(());
    }
    let Some(mut hash) = db.get_mut(key, now) else {
        // Unreachable: a live field was just seen under the same lock and the same "now".
        (first..args.len()).for_each(|_| reply.int(NO_FIELD));
        return Ok(());
    };
    for field in args.from(first) {
        let code = match hash.get(field).map(|f| f.expire_at) {
            None => NO_FIELD,
            Some(None) => NO_TTL,
            Some(Some(_)) => {
                hash.set_expire(field, None);
                PERSISTED
            }
        };
        reply.int(code);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::httl::test_util::{exists, expired_subkeys, ints, stored, table_after};
    use crate::cmd::testing::TestEnv;

    #[test]
    fn table_entry() {
        let c = crate::cmd::table().get(b"hpersist").expect("hpersist");
        assert_eq!(c.arity, -5);
        assert_eq!(c.flags, crate::cmd::flags::WRITE | crate::cmd::flags::FAST);
        assert_eq!((c.first_key, c.last_key, c.step), (1, 1, 1));
    }

    #[test]
    fn removes_ttls() {
        let mut env = TestEnv::new();
        env.run("HSET h f1 v1 f2 v2 nottl v");
        assert_eq!(
            env.run("HEXPIRE h 100 FIELDS 3 f1 f2 zz"),
            ints(&[1, 1, -2])
        );
        // Appendix B: the second f1 has no TTL left.
        assert_eq!(env.run("HPERSIST h FIELDS 2 f1 f1"), "*2\r\n:1\r\n:-1\r\n");
        assert_eq!(env.run("HTTL h FIELDS 2 f1 f2"), ints(&[-1, 100]));
        // Bonus check from the spec.
        assert_eq!(
            env.run("HPERSIST h FIELDS 2 nottl missing"),
            "*2\r\n:-1\r\n:-2\r\n"
        );
        env.resp3();
        assert_eq!(env.run("HPERSIST h FIELDS 3 f2 f2 f1"), ints(&[1, -1, -1]));
        // The fields really are persistent: they survive any amount of time.
        env.advance_ms(1_000_000);
        assert_eq!(env.run("HGET h f2"), "$2\r\nv2\r\n");
    }

    #[test]
    fn missing_key() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HPERSIST nokey FIELDS 2 a b"),
            "*2\r\n:-2\r\n:-2\r\n"
        );
        assert!(!exists(&env, "nokey"));
    }

    #[test]
    fn expired_fields_answer_minus_two_and_stay_stored() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1 b 2");
        env.run("HPEXPIRE k 10 FIELDS 2 a b");
        env.advance_ms(11);
        assert_eq!(env.run("HPERSIST k FIELDS 3 a b c"), ints(&[-2, -2, -2]));
        // A hash with no live field does not exist: HPERSIST found it gone and
        // reclaimed it (its fields count as expired).
        assert_eq!(stored(&env, "k"), None);
        assert!(!exists(&env, "k"));
        assert_eq!(expired_subkeys(&env), 2);
        env.run("HSET k a 1 b 2");
        env.run("HPEXPIRE k 10 FIELDS 2 a b");
        env.advance_ms(11);
        // With a live field to persist, the expired one still answers -2.
        env.run("HSET k c 3");
        env.run("HPEXPIRE k 100 FIELDS 1 c");
        assert_eq!(env.run("HPERSIST k FIELDS 3 a c c"), ints(&[-2, 1, -1]));
        assert_eq!(env.run("HTTL k FIELDS 3 a b c"), ints(&[-2, -2, -1]));
        assert_eq!(env.run("HGET k c"), "$1\r\n3\r\n");
    }

    #[test]
    fn at_the_deadline_the_field_is_still_live() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1");
        env.run("HPEXPIRE k 10 FIELDS 1 a");
        env.advance_ms(10);
        assert_eq!(env.run("HPERSIST k FIELDS 1 a"), ints(&[1]));
        env.advance_ms(10);
        assert_eq!(env.run("HGET k a"), "$1\r\n1\r\n");
    }

    #[test]
    fn validation() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        assert_eq!(
            env.run("HPERSIST k FIELDS 1"),
            "-ERR wrong number of arguments for 'hpersist' command\r\n"
        );
        assert_eq!(
            env.run("HPERSIST k FIELD 1 f"),
            "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"
        );
        for n in ["0", "-1", "x", "9223372036854775808"] {
            assert_eq!(
                env.run(&format!("HPERSIST k FIELDS {n} f")),
                "-ERR Number of fields must be a positive integer\r\n"
            );
        }
        assert_eq!(
            env.run("HPERSIST k FIELDS 3 f f"),
            "-ERR The `numfields` parameter must match the number of arguments\r\n"
        );
        assert_eq!(env.run("hpersist k fields 1 f"), ints(&[-1]));
    }

    #[test]
    fn table_encoded_hash() {
        let mut env = TestEnv::new();
        table_after(&env, 2);
        env.run("HSET k a 1 b 2 c 3");
        env.run("HEXPIRE k 100 FIELDS 2 a b");
        assert_eq!(env.run("HPERSIST k FIELDS 3 a b c"), ints(&[1, 1, -1]));
        assert_eq!(env.run("HTTL k FIELDS 3 a b c"), ints(&[-1, -1, -1]));
    }

    #[test]
    fn watch_sees_only_real_changes() {
        let mut env = TestEnv::new();
        env.run("HSET k f v g w");
        env.run("HEXPIRE k 100 FIELDS 1 g");
        env.run("WATCH k");
        assert_eq!(env.run("HPERSIST k FIELDS 2 f nope"), ints(&[-1, -2]));
        env.run("MULTI");
        env.run("HSET k a b");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
        env.run("WATCH k");
        assert_eq!(env.run("HPERSIST k FIELDS 1 g"), ints(&[1]));
        env.run("MULTI");
        env.run("HSET k a c");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
    }
}
