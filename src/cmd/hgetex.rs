//! HGETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
//!   PXAT unix-time-milliseconds | PERSIST] FIELDS numfields field [field ...]

use super::hexpire::{expiry_option, parse_expire_time};
use super::httl::fields_block;
use super::parse::is;
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hgetex", -5, hgetex)
    .flags(flags::WRITE | flags::FAST)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "8.0.0",
        "Get the value of one or more fields of a given hash key, and optionally set their expiration.",
        "O(N) where N is the number of specified fields",
        "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST] FIELDS numfields field [field ...]",
    )];

/// What HGETEX does to the TTL of each live field it returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    Persist,
    /// Expire at this unix-ms deadline (deleting at once if it is not in the future).
    ExpireAt(u64),
}

fn hgetex(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    // Only argv[2] may hold the option; an unknown word there is left for the FIELDS check.
    let opt = args.get(2);
    let timed = expiry_option(opt, now);
    let (then, fields_at) = match timed {
        Some((unit, base)) => {
            let t = parse_expire_time(args.get(3), unit, base, "hgetex")?;
            (Then::ExpireAt(t), 4)
        }
        None if is(opt, "PERSIST") => (Then::Persist, 3),
        None => (Then::Nothing, 2),
    };
    let first = fields_block(
        args,
        fields_at,
        CmdError::NumFieldsNotPositiveInteger,
        "hgetex",
    )?;
    reply.array(args.len() - first);

    let mut db = ctx.db();
    let Some(mut hash) = db.get_mut(args.get(1), now) else {
        (first..args.len()).for_each(|_| reply.null());
        return Ok(());
    };
    // With a time option a listpack becomes a listpackex, as HEXPIRE makes it (PERSIST,
    // like HPERSIST, leaves it).
    if let Then::ExpireAt(_) = then {
        hash.mark_field_expiry();
    }
    // Every stored field is live now. Values are returned first, then the TTL changes.
    for field in args.from(first) {
        let expire_at = match hash.get(field) {
            Some(f) => {
                reply.bulk(f.value);
                f.expire_at
            }
            None => {
                reply.null();
                continue;
            }
        };
        match then {
            Then::Nothing => {}
            // Persisting a field without a TTL changes nothing (and signals nothing).
            Then::Persist if expire_at.is_none() => {}
            Then::Persist => {
                hash.set_expire(field, None);
            }
            Then::ExpireAt(t) if t <= now => {
                hash.remove(field);
            }
            Then::ExpireAt(t) => {
                hash.set_expire(field, Some(t));
            }
        }
    }
    // Dropping `hash` deletes the key if a past time emptied it.
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::httl::test_util::{bulks, exists, expired_subkeys, ints, stored, table_after};
    use crate::cmd::testing::{TestEnv, T0_MS};

    const FIELDS_MISSING: &str =
        "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n";
    const ARITY: &str = "-ERR wrong number of arguments for 'hgetex' command\r\n";

    #[test]
    fn table_entry() {
        let c = crate::cmd::table().get(b"hgetex").expect("hgetex");
        assert_eq!(c.arity, -5);
        assert_eq!(c.flags, crate::cmd::flags::WRITE | crate::cmd::flags::FAST);
        assert_eq!((c.first_key, c.last_key, c.step), (1, 1, 1));
    }

    /// Redis's "HGETEX - input validation" test, in its order.
    #[test]
    fn input_validation() {
        let mut env = TestEnv::new();
        for cmd in [
            "HGETEX",
            "HGETEX h1",
            "HGETEX h1 FIELDS",
            "HGETEX h1 FIELDS 0",
        ] {
            assert_eq!(env.run(cmd), ARITY, "{cmd}");
        }
        // Spec §8.2 #7.
        assert_eq!(env.run("HGETEX h1 FIELDS 1"), ARITY);
        assert_eq!(env.run("HGETEX h1 XFIELDX 1 a"), FIELDS_MISSING);
        assert_eq!(env.run("HGETEX h1 PXAT 1 1"), FIELDS_MISSING);
        assert_eq!(env.run("HGETEX h1 PERSIST 1 FIELDS 1 a"), FIELDS_MISSING);
        assert_eq!(env.run("HGETEX h1 EX 10 PX 10 FIELDS 1 a"), FIELDS_MISSING);
        assert_eq!(
            env.run("HGETEX h1 FIELDS 2 a"),
            "-ERR The `numfields` parameter must match the number of arguments\r\n"
        );
        assert_eq!(
            env.run("HGETEX h1 PERSIST FIELDS 1"),
            "-ERR The `numfields` parameter must match the number of arguments\r\n"
        );
        for n in ["0", "-1", "9223372036854775808", "x"] {
            assert_eq!(
                env.run(&format!("HGETEX h1 FIELDS {n} a")),
                "-ERR Number of fields must be a positive integer\r\n"
            );
        }
        // A time option whose FIELDS block is cut short before numfields.
        assert_eq!(env.run("HGETEX h1 EX 10 FIELDS"), ARITY);
    }

    #[test]
    fn expire_time_validation() {
        let mut env = TestEnv::new();
        env.run("HSET h1 a 1");
        for opt in ["EX", "PX", "EXAT", "PXAT"] {
            assert_eq!(
                env.run(&format!("HGETEX h1 {opt} abc FIELDS 1 a")),
                "-ERR value is not an integer or out of range\r\n"
            );
            assert_eq!(
                env.run(&format!("HGETEX h1 {opt} 9223372036854775808 FIELDS 1 a")),
                "-ERR value is not an integer or out of range\r\n"
            );
            assert_eq!(
                env.run(&format!("HGETEX h1 {opt} -1 FIELDS 1 a")),
                "-ERR invalid expire time, must be >= 0\r\n"
            );
            // The time is checked before FIELDS.
            assert_eq!(
                env.run(&format!("HGETEX h1 {opt} -1 NOTFIELDS 1 a")),
                "-ERR invalid expire time, must be >= 0\r\n"
            );
        }
        let too_big = "-ERR invalid expire time in 'hgetex' command\r\n";
        assert_eq!(env.run("HGETEX h1 EX 70368744178 FIELDS 1 a"), too_big);
        assert_eq!(env.run("HGETEX h1 EXAT 70368744178 FIELDS 1 a"), too_big);
        assert_eq!(env.run("HGETEX h1 PXAT 70368744177664 FIELDS 1 a"), too_big);
        let room = crate::keyspace::MAX_FIELD_EXPIRE_MS - T0_MS;
        assert_eq!(
            env.run(&format!("HGETEX h1 PX {} FIELDS 1 a", room + 1)),
            too_big
        );
        assert_eq!(
            env.run(&format!("HGETEX h1 PX {room} FIELDS 1 a")),
            bulks(&[Some("1")], false)
        );
        // Failed calls changed nothing else.
        assert_eq!(env.run("HGET h1 a"), "$1\r\n1\r\n");
    }

    #[test]
    fn plain_read() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2");
        env.run("HEXPIRE h 100 FIELDS 1 a");
        assert_eq!(
            env.run("HGETEX h FIELDS 3 a zz b"),
            bulks(&[Some("1"), None, Some("2")], false)
        );
        assert_eq!(env.run("HTTL h FIELDS 2 a b"), ints(&[100, -1]));
        env.resp3();
        assert_eq!(
            env.run("hgetex h fields 2 zz b"),
            bulks(&[None, Some("2")], true)
        );
        assert_eq!(env.run("HGETEX nokey FIELDS 2 a b"), "*2\r\n_\r\n_\r\n");
        assert!(!exists(&env, "nokey"));
    }

    #[test]
    fn sets_ttls() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2 c 3 d 4");
        assert_eq!(
            env.run("HGETEX h PX 5000 FIELDS 3 a zz a"),
            bulks(&[Some("1"), None, Some("1")], false)
        );
        assert_eq!(
            env.run("HGETEX h EX 60 FIELDS 1 b"),
            bulks(&[Some("2")], false)
        );
        let at_s = T0_MS / 1000 + 100;
        env.run(&format!("HGETEX h EXAT {at_s} FIELDS 1 c"));
        env.run(&format!("HGETEX h PXAT {} FIELDS 1 d", T0_MS + 7));
        assert_eq!(
            env.run("HPTTL h FIELDS 5 a b c d zz"),
            ints(&[5000, 60_000, 100_000, 7, -2])
        );
        // Missing fields are not created.
        assert_eq!(stored(&env, "h"), Some(4));
        env.run("HGETEX h persist FIELDS 2 a b");
        assert_eq!(env.run("HTTL h FIELDS 2 a b"), ints(&[-1, -1]));
        // PERSIST on a field without a TTL is a no-op.
        assert_eq!(
            env.run("HGETEX h PERSIST FIELDS 1 a"),
            bulks(&[Some("1")], false)
        );
    }

    #[test]
    fn past_time_returns_then_deletes() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2");
        // Spec bonus check: the value, then the field is gone.
        assert_eq!(
            env.run("HGETEX h PXAT 1 FIELDS 1 a"),
            bulks(&[Some("1")], false)
        );
        assert_eq!(env.run("HGET h a"), "$-1\r\n");
        // A repeated field: the value, then null.
        assert_eq!(
            env.run("HGETEX h PX 0 FIELDS 2 b b"),
            bulks(&[Some("2"), None], false)
        );
        assert!(!exists(&env, "h"));
        // Deadline == now is the past for setting.
        env.run("HSET h c 3");
        let now = env.now_ms();
        assert_eq!(
            env.run(&format!("HGETEX h PXAT {now} FIELDS 1 c")),
            bulks(&[Some("3")], false)
        );
        assert!(!exists(&env, "h"));
        env.run("HSET h e 5");
        assert_eq!(
            env.run("HGETEX h EX 0 FIELDS 1 e"),
            bulks(&[Some("5")], false)
        );
        assert!(!exists(&env, "h"));
        assert_eq!(expired_subkeys(&env), 0);
    }

    #[test]
    fn expired_fields_are_null_and_reclaimed() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2");
        env.run("HPEXPIRE h 10 FIELDS 1 a");
        env.advance_ms(11);
        assert_eq!(
            env.run("HGETEX h PERSIST FIELDS 2 a b"),
            bulks(&[None, Some("2")], false)
        );
        assert_eq!(stored(&env, "h"), Some(1));
        assert_eq!(expired_subkeys(&env), 1);
        env.run("HPEXPIRE h 10 FIELDS 1 b");
        env.advance_ms(11);
        assert_eq!(env.run("HGETEX h FIELDS 1 b"), bulks(&[None], false));
        assert!(!exists(&env, "h"));
    }

    #[test]
    fn table_encoded_hash() {
        let mut env = TestEnv::new();
        table_after(&env, 2);
        env.run("HSET h a 1 b 2 c 3");
        assert_eq!(
            env.run("HGETEX h PX 100 FIELDS 2 a b"),
            bulks(&[Some("1"), Some("2")], false)
        );
        assert_eq!(
            env.run("HGETEX h PX 0 FIELDS 1 b"),
            bulks(&[Some("2")], false)
        );
        assert_eq!(env.run("HPTTL h FIELDS 3 a b c"), ints(&[100, -2, -1]));
    }

    #[test]
    fn watch_sees_changes_only() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1");
        env.run("WATCH h");
        env.run("HGETEX h FIELDS 1 a");
        env.run("HGETEX h PERSIST FIELDS 1 a");
        env.run("HGETEX h EX 10 FIELDS 1 zz");
        env.run("MULTI");
        env.run("HSET h b 2");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
        env.run("WATCH h");
        env.run("HGETEX h EX 10 FIELDS 1 a");
        env.run("MULTI");
        env.run("HSET h b 3");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
    }
}
