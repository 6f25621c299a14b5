//! HEXPIRE key seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
//! HPEXPIRE key milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
//! HEXPIREAT key unix-time-seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
//! HPEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]

use super::httl::{fields_block, NO_FIELD};
use super::parse::{int, is};
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::MAX_FIELD_EXPIRE_MS;
use crate::protocol::Reply;

const WRITE_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;

const COMPLEXITY: &str = "O(N) where N is the number of specified fields";

pub const COMMANDS: &[Command] = &[
    Command::new("hexpire", -6, hexpire)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "7.4.0",
            "Set expiry for hash field using relative time to expire (seconds)",
            COMPLEXITY,
            "key seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]",
        ),
    Command::new("hpexpire", -6, hpexpire)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "7.4.0",
            "Set expiry for hash field using relative time to expire (milliseconds)",
            COMPLEXITY,
            "key milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]",
        ),
    Command::new("hexpireat", -6, hexpireat)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "7.4.0",
            "Set expiry for hash field using an absolute Unix timestamp (seconds)",
            COMPLEXITY,
            "key unix-time-seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]",
        ),
    Command::new("hpexpireat", -6, hpexpireat)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "7.4.0",
            "Set expiry for hash field using an absolute Unix timestamp (milliseconds)",
            COMPLEXITY,
            "key unix-time-milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]",
        ),
];

/// Per-field reply: the NX/XX/GT/LT condition was not met.
const NOT_MET: i64 = 0;
/// Per-field reply: the TTL was set.
const SET: i64 = 1;
/// Per-field reply: the time was not in the future, so the field was deleted.
const DELETED: i64 = 2;

/// The unit of an expire-time argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Seconds,
    Millis,
}

/// Recognises the expiry options HGETEX and HSETEX share (EX, PX, EXAT, PXAT, any case):
/// the unit of the time that follows and its base (now for relative options, 0 for absolute).
pub(super) fn expiry_option(token: &[u8], now_ms: u64) -> Option<(Unit, u64)> {
    [
        ("EX", Unit::Seconds, now_ms),
        ("PX", Unit::Millis, now_ms),
        ("EXAT", Unit::Seconds, 0),
        ("PXAT", Unit::Millis, 0),
    ]
    .into_iter()
    .find(|(kw, _, _)| is(token, kw))
    .map(|(_, unit, base)| (unit, base))
}

/// Parses a field expire time the way every hash command does (Redis's `parseExpireTime`):
/// a strict integer, not negative, at most 2^46−1 ms once converted and added to `base_ms`
/// (now for relative times, 0 for absolute ones). Returns the absolute unix-ms deadline.
/// `name` is the lower-case command name for `invalid expire time in '<name>' command`.
pub(super) fn parse_expire_time(
    arg: &[u8],
    unit: Unit,
    base_ms: u64,
    name: &str,
) -> Result<u64, CmdError> {
    let max = MAX_FIELD_EXPIRE_MS as i64;
    let mut t = int(arg)?;
    if t < 0 {
        return Err(CmdError::ExpireNegative);
    }
    if unit == Unit::Seconds {
        if t > max / 1000 {
            return Err(CmdError::InvalidExpireTime(name.into()));
        }
        t *= 1000;
    }
    // base_ms is a real clock reading, far below 2^46 ms; saturate rather than trust that.
    let base = i64::try_from(base_ms).unwrap_or(i64::MAX);
    if t > max.saturating_sub(base) {
        return Err(CmdError::InvalidExpireTime(name.into()));
    }
    Ok((t + base) as u64)
}

/// The optional condition of the HEXPIRE family.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

impl Cond {
    fn parse(arg: &[u8]) -> Option<Cond> {
        [
            ("NX", Cond::Nx),
            ("XX", Cond::Xx),
            ("GT", Cond::Gt),
            ("LT", Cond::Lt),
        ]
        .into_iter()
        .find(|(kw, _)| is(arg, kw))
        .map(|(_, c)| c)
    }

    /// Whether a field whose current deadline is `cur` (None: no TTL, i.e. infinite) may
    /// take the new deadline `t`.
    fn allows(self, cur: Option<u64>, t: u64) -> bool {
        match (self, cur) {
            (Cond::Always, _) => true,
            (Cond::Nx, cur) => cur.is_none(),
            (Cond::Xx, cur) => cur.is_some(),
            (Cond::Gt, None) => false,
            (Cond::Gt, Some(cur)) => t > cur,
            (Cond::Lt, None) => true,
            (Cond::Lt, Some(cur)) => t < cur,
        }
    }
}

fn hexpire_generic(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
    name: &str,
    unit: Unit,
    relative: bool,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let base = if relative { now } else { 0 };
    let deadline = parse_expire_time(args.get(2), unit, base, name)?;
    let (cond, fields_at) = match Cond::parse(args.get(3)) {
        Some(c) => (c, 4),
        None => (Cond::Always, 3),
    };
    let first = fields_block(args, fields_at, CmdError::NumFieldsNotPositive, name)?;
    reply.array(args.len() - first);

    let mut db = ctx.db();
    // Expired fields are reclaimed here, so they answer -2 (a decided difference from
    // Redis, which would revive them).
    let Some(mut hash) = db.get_mut(args.get(1), now) else {
        (first..args.len()).for_each(|_| reply.int(NO_FIELD));
        return Ok(());
    };
    // A listpack becomes a listpackex here, whatever the fields answer.
    hash.mark_field_expiry();
    for field in args.from(first) {
        let code = match hash.get(field).map(|f| f.expire_at) {
            None => NO_FIELD,
            // The condition comes first: a failed condition answers 0 even for a past time.
            Some(cur) if !cond.allows(cur, deadline) => NOT_MET,
            Some(_) if deadline <= now => {
                hash.remove(field);
                DELETED
            }
            Some(_) => {
                hash.set_expire(field, Some(deadline));
                SET
            }
        };
        reply.int(code);
    }
    // Dropping `hash` deletes the key if the deletions emptied it.
    Ok(())
}

fn hexpire(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    hexpire_generic(ctx, args, reply, "hexpire", Unit::Seconds, true)
}

fn hpexpire(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    hexpire_generic(ctx, args, reply, "hpexpire", Unit::Millis, true)
}

fn hexpireat(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    hexpire_generic(ctx, args, reply, "hexpireat", Unit::Seconds, false)
}

fn hpexpireat(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    hexpire_generic(ctx, args, reply, "hpexpireat", Unit::Millis, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::httl::test_util::{
        encoding, exists, expired_subkeys, ints, stored, table_after,
    };
    use crate::cmd::testing::{TestEnv, T0_MS};

    const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
    const NEGATIVE: &str = "-ERR invalid expire time, must be >= 0\r\n";
    const FIELDS_MISSING: &str =
        "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n";
    const NUMFIELDS: &str = "-ERR Parameter `numFields` should be greater than 0\r\n";
    const MISMATCH: &str = "-ERR The `numfields` parameter must match the number of arguments\r\n";

    fn too_big(cmd: &str) -> String {
        format!("-ERR invalid expire time in '{cmd}' command\r\n")
    }

    #[test]
    fn table_entries() {
        for name in ["hexpire", "hpexpire", "hexpireat", "hpexpireat"] {
            let c = crate::cmd::table().get(name.as_bytes()).expect(name);
            assert_eq!(c.arity, -6, "{name}");
            assert_eq!(c.flags, WRITE_FAST, "{name}");
            assert_eq!((c.first_key, c.last_key, c.step), (1, 1, 1));
        }
    }

    #[test]
    fn arity() {
        let mut env = TestEnv::new();
        for cmd in ["hexpire", "hpexpire", "hexpireat", "hpexpireat"] {
            assert_eq!(
                env.run(&format!("{cmd} k 10 FIELDS 1")),
                format!("-ERR wrong number of arguments for '{cmd}' command\r\n")
            );
        }
    }

    #[test]
    fn missing_key_answers_minus_two_per_field() {
        let mut env = TestEnv::new();
        // Spec #16: not an empty array.
        assert_eq!(
            env.run("HEXPIRE nokey 10 FIELDS 2 a b"),
            "*2\r\n:-2\r\n:-2\r\n"
        );
        assert_eq!(env.run("HPEXPIREAT nokey 1 NX FIELDS 1 a"), ints(&[-2]));
        assert!(!exists(&env, "nokey"));
        env.resp3();
        assert_eq!(env.run("HPEXPIRE nokey 10 FIELDS 1 a"), ints(&[-2]));
    }

    #[test]
    fn time_validation() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        for cmd in ["HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT"] {
            for bad in ["abc", "1.5", "+1", "01", "", "9223372036854775808"] {
                assert_eq!(
                    env.run_args(&[cmd, "k", bad, "FIELDS", "1", "f"]),
                    NOT_INT.as_bytes(),
                    "{cmd} {bad:?}"
                );
            }
            // Spec #20.
            assert_eq!(env.run(&format!("{cmd} k -1 FIELDS 1 f")), NEGATIVE);
            // The time is checked before the condition and FIELDS.
            assert_eq!(env.run(&format!("{cmd} k abc NX XX FIELDS 1 f")), NOT_INT);
            assert_eq!(env.run(&format!("{cmd} k -5 FIELDS 0 f")), NEGATIVE);
        }
        // Seconds: above 2^46-1 ms / 1000 fails before the conversion.
        assert_eq!(
            env.run("HEXPIREAT k 70368744178 FIELDS 1 f"),
            too_big("hexpireat")
        );
        assert_eq!(env.run("HEXPIREAT k 70368744177 FIELDS 1 f"), ints(&[1]));
        assert_eq!(
            env.run("HEXPIRE k 70368744178 FIELDS 1 f"),
            too_big("hexpire")
        );
        // Relative times may not push the deadline past 2^46-1 ms either.
        assert_eq!(
            env.run("HEXPIRE k 70368744177 FIELDS 1 f"),
            too_big("hexpire")
        );
        let room = MAX_FIELD_EXPIRE_MS - T0_MS;
        assert_eq!(
            env.run(&format!("HPEXPIRE k {} FIELDS 1 f", room + 1)),
            too_big("hpexpire")
        );
        assert_eq!(
            env.run(&format!("HPEXPIRE k {room} FIELDS 1 f")),
            ints(&[1])
        );
        assert_eq!(
            env.run("HPEXPIRETIME k FIELDS 1 f"),
            ints(&[MAX_FIELD_EXPIRE_MS as i64])
        );
        // Spec #21.
        assert_eq!(
            env.run("HPEXPIREAT k 70368744177664 FIELDS 1 f"),
            too_big("hpexpireat")
        );
        assert_eq!(
            env.run("HPEXPIREAT k 70368744177663 FIELDS 1 f"),
            ints(&[1])
        );
        // Validation does not depend on the key existing.
        assert_eq!(
            env.run("HPEXPIREAT nokey 70368744177664 FIELDS 1 f"),
            too_big("hpexpireat")
        );
    }

    #[test]
    fn condition_and_fields_validation() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        // Spec #24: a second condition sits where FIELDS should be.
        assert_eq!(env.run("HEXPIRE k 10 NX XX FIELDS 1 f"), FIELDS_MISSING);
        assert_eq!(env.run("HEXPIRE k 10 FOO FIELDS 1 f"), FIELDS_MISSING);
        assert_eq!(env.run("HEXPIRE k 10 1 f FIELDS 1"), FIELDS_MISSING);
        // Spec #22: the HEXPIRE wording, for every unusable numfields.
        for n in ["0", "-1", "abc", "9223372036854775808"] {
            assert_eq!(
                env.run(&format!("HEXPIRE k 10 FIELDS {n} f")),
                NUMFIELDS,
                "{n}"
            );
            assert_eq!(env.run(&format!("HEXPIRE k 10 GT FIELDS {n} f")), NUMFIELDS);
        }
        assert_eq!(env.run("HEXPIRE k 10 FIELDS 2 f"), MISMATCH);
        assert_eq!(env.run("HEXPIRE k 10 FIELDS 1 f g"), MISMATCH);
        assert_eq!(env.run("HEXPIRE k 10 NX FIELDS 1"), MISMATCH);
        // Keywords ignore case.
        assert_eq!(env.run("hexpire k 10 nx fields 1 f"), ints(&[1]));
        assert_eq!(env.run("HEXPIRE k 20 gT FiElDs 1 f"), ints(&[1]));
        assert_eq!(env.run("HTTL k FIELDS 1 f"), ints(&[20]));
        // Errors leave the hash alone.
        assert_eq!(env.run("HEXPIRE k 0 FIELDS 2 f"), MISMATCH);
        assert_eq!(env.run("HGET k f"), "$1\r\nv\r\n");
    }

    #[test]
    fn sets_ttls_per_unit() {
        let mut env = TestEnv::new();
        env.run("HSET h f1 v1 f2 v2");
        // Appendix B.
        assert_eq!(
            env.run("HEXPIRE h 100 FIELDS 3 f1 f2 zz"),
            "*3\r\n:1\r\n:1\r\n:-2\r\n"
        );
        assert_eq!(env.run("HTTL h FIELDS 1 f1"), "*1\r\n:100\r\n");
        assert_eq!(env.run("HPEXPIRE h 1500 FIELDS 1 f1"), ints(&[1]));
        assert_eq!(env.run("HPTTL h FIELDS 2 f1 f2"), ints(&[1500, 100_000]));
        let at_s = T0_MS / 1000 + 3600;
        assert_eq!(
            env.run(&format!("HEXPIREAT h {at_s} FIELDS 1 f1")),
            ints(&[1])
        );
        assert_eq!(
            env.run("HPEXPIRETIME h FIELDS 1 f1"),
            ints(&[(at_s * 1000) as i64])
        );
        let at_ms = T0_MS + 12_345;
        assert_eq!(
            env.run(&format!("HPEXPIREAT h {at_ms} FIELDS 1 f2")),
            ints(&[1])
        );
        assert_eq!(env.run("HPTTL h FIELDS 1 f2"), ints(&[12_345]));
        // Setting the same deadline again still answers 1.
        assert_eq!(
            env.run(&format!("HPEXPIREAT h {at_ms} FIELDS 2 f2 f2")),
            ints(&[1, 1])
        );
        assert_eq!(encoding(&env, "h"), Some("listpackex"));
    }

    #[test]
    fn past_time_deletes_and_empties_the_key() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        // Spec #17.
        assert_eq!(env.run("HEXPIRE k 0 FIELDS 1 f"), "*1\r\n:2\r\n");
        assert!(!exists(&env, "k"));
        // A repeated field is gone the second time.
        env.run("HSET k f v g w");
        assert_eq!(env.run("HEXPIRE k 0 FIELDS 2 f f"), ints(&[2, -2]));
        assert_eq!(stored(&env, "k"), Some(1));
        // "now" itself counts as the past for setting.
        let now = env.now_ms();
        assert_eq!(
            env.run(&format!("HPEXPIREAT k {now} FIELDS 1 g")),
            ints(&[2])
        );
        assert!(!exists(&env, "k"));
        env.run("HSET k a 1 b 2");
        assert_eq!(
            env.run(&format!("HPEXPIREAT k {} FIELDS 1 a", now + 1)),
            ints(&[1])
        );
        assert_eq!(env.run("HPEXPIRE k 0 FIELDS 1 b"), ints(&[2]));
        assert_eq!(env.run("HEXPIREAT k 1 FIELDS 1 a"), ints(&[2]));
        assert!(!exists(&env, "k"));
        // An explicit delete is not an expiry.
        assert_eq!(expired_subkeys(&env), 0);
    }

    #[test]
    fn conditions() {
        let mut env = TestEnv::new();
        // f1, f2 without TTL; f3 missing; f4 with a TTL (the spec's example).
        env.run("HSET k f1 v f2 v f4 v");
        env.run("HEXPIRE k 100 FIELDS 1 f4");
        assert_eq!(
            env.run("HPEXPIREAT k 1 NX FIELDS 4 f1 f2 f3 f4"),
            ints(&[2, 2, -2, 0])
        );
        // Spec #18: the failed condition wins over the past time.
        assert_eq!(env.run("HPEXPIREAT k 1 NX FIELDS 1 f4"), ints(&[0]));
        assert_eq!(env.run("HTTL k FIELDS 1 f4"), ints(&[100]));

        let mut env = TestEnv::new();
        env.run("HSET k none v ttl v");
        env.run("HEXPIRE k 100 FIELDS 1 ttl");
        // Spec #19: no TTL counts as infinite.
        assert_eq!(env.run("HEXPIRE k 100 GT FIELDS 1 none"), ints(&[0]));
        assert_eq!(env.run("HEXPIRE k 100 XX FIELDS 1 none"), ints(&[0]));
        assert_eq!(env.run("HEXPIRE k 100 NX FIELDS 1 ttl"), ints(&[0]));
        assert_eq!(
            env.run("HEXPIRE k 100 GT FIELDS 1 ttl"),
            ints(&[0]),
            "equal is not greater"
        );
        assert_eq!(
            env.run("HEXPIRE k 100 LT FIELDS 1 ttl"),
            ints(&[0]),
            "equal is not less"
        );
        assert_eq!(env.run("HEXPIRE k 101 GT FIELDS 1 ttl"), ints(&[1]));
        assert_eq!(env.run("HEXPIRE k 100 GT FIELDS 1 ttl"), ints(&[0]));
        assert_eq!(env.run("HEXPIRE k 50 LT FIELDS 1 ttl"), ints(&[1]));
        assert_eq!(env.run("HEXPIRE k 70 XX FIELDS 1 ttl"), ints(&[1]));
        assert_eq!(env.run("HTTL k FIELDS 2 none ttl"), ints(&[-1, 70]));
        assert_eq!(env.run("HEXPIRE k 100 LT FIELDS 1 none"), ints(&[1]));
        assert_eq!(env.run("HTTL k FIELDS 1 none"), ints(&[100]));
        env.run("HSET k fresh v");
        assert_eq!(
            env.run("HEXPIRE k 30 NX FIELDS 2 fresh fresh"),
            ints(&[1, 0])
        );
        // Past times with a passing condition delete.
        assert_eq!(env.run("HEXPIRE k 0 XX FIELDS 1 fresh"), ints(&[2]));
        assert_eq!(env.run("HEXPIRE k 0 LT FIELDS 2 ttl nope"), ints(&[2, -2]));
        assert_eq!(env.run("HEXPIRE k 0 GT FIELDS 1 none"), ints(&[0]));
        assert_eq!(stored(&env, "k"), Some(1));
    }

    #[test]
    fn expired_fields_are_reclaimed_first() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1 b 2");
        env.run("HPEXPIRE k 10 FIELDS 1 a");
        env.advance_ms(11);
        // A decided difference from Redis (which would revive `a`): it is reclaimed and -2.
        assert_eq!(env.run("HEXPIRE k 100 FIELDS 2 a b"), ints(&[-2, 1]));
        assert_eq!(expired_subkeys(&env), 1);
        assert_eq!(stored(&env, "k"), Some(1));
        // When every field expired, the key goes and the answer is as for a missing key.
        env.run("HPEXPIRE k 10 FIELDS 1 b");
        env.advance_ms(11);
        assert_eq!(stored(&env, "k"), Some(1));
        assert_eq!(env.run("HEXPIRE k 100 FIELDS 1 b"), ints(&[-2]));
        assert_eq!(stored(&env, "k"), None);
        assert!(!exists(&env, "k"));
    }

    #[test]
    fn hset_clears_and_field_expires_lazily() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("HEXPIRE k 10 FIELDS 1 f");
        // Spec #28: HSET makes the field persistent.
        env.run("HSET k f v2");
        assert_eq!(env.run("HTTL k FIELDS 1 f"), "*1\r\n:-1\r\n");
        // Spec #30: the last field expires; the key is stored until something meets it,
        // but no longer exists for any command.
        env.run("HPEXPIRE k 100 FIELDS 1 f");
        env.advance_ms(101);
        assert_eq!(stored(&env, "k"), Some(1));
        assert_eq!(env.run("HGET k f"), "$-1\r\n");
        assert_eq!(stored(&env, "k"), None);
        assert!(!exists(&env, "k"));
    }

    #[test]
    fn table_encoded_hashes() {
        let mut env = TestEnv::new();
        table_after(&env, 4);
        let fields: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
        let mut cmd = String::from("HSET big");
        for f in &fields {
            cmd.push_str(&format!(" {f} v"));
        }
        assert_eq!(env.run(&cmd), ":50\r\n");
        assert_eq!(encoding(&env, "big"), Some("hashtable"));
        let list = fields.join(" ");
        let reply = env.run(&format!("HPEXPIRE big 100 FIELDS 50 {list}"));
        assert_eq!(reply, ints(&[1; 50]));
        assert_eq!(env.run("HPEXPIRE big 50 LT FIELDS 2 f0 f1"), ints(&[1, 1]));
        assert_eq!(env.run("HPEXPIRE big 0 FIELDS 2 f2 f2"), ints(&[2, -2]));
        assert_eq!(env.run("HPTTL big FIELDS 3 f0 f2 f3"), ints(&[50, -2, 100]));
        env.advance_ms(51);
        assert_eq!(env.run("HPEXPIRE big 10 FIELDS 2 f0 f3"), ints(&[-2, 1]));
        assert_eq!(stored(&env, "big"), Some(47));
        assert_eq!(
            env.run(&format!("HEXPIRE big 0 FIELDS 50 {list}"))
                .matches(":2\r\n")
                .count(),
            47
        );
        assert!(!exists(&env, "big"));
    }

    #[test]
    fn watch_sees_lazy_field_expiry() {
        let mut env = TestEnv::new();
        env.run("HSET k f v g w");
        env.run("HPEXPIRE k 10 FIELDS 1 f");
        assert_eq!(env.run("WATCH k"), "+OK\r\n");
        env.advance_ms(11);
        // Nothing touched k yet: the transaction would run.
        // A read that reclaims the expired field is a change of k.
        assert_eq!(env.run("HGET k f"), "$-1\r\n");
        assert_eq!(env.run("MULTI"), "+OK\r\n");
        assert_eq!(env.run("HSET k x y"), "+QUEUED\r\n");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        assert_eq!(env.run("HGET k x"), "$-1\r\n");

        // Control: expiry that nobody observed does not abort.
        env.run("HPEXPIRE k 10 FIELDS 1 g");
        env.run("HSET j a b");
        env.run("WATCH j");
        env.advance_ms(11);
        env.run("MULTI");
        env.run("HSET j x y");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
    }

    #[test]
    fn watch_sees_hexpire_but_not_no_ops() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("WATCH k");
        // Only -2 and 0 answers: nothing changed.
        assert_eq!(env.run("HEXPIRE k 10 XX FIELDS 2 f nope"), ints(&[0, -2]));
        env.run("MULTI");
        env.run("HSET k a b");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
        env.run("WATCH k");
        assert_eq!(env.run("HEXPIRE k 10 FIELDS 1 f"), ints(&[1]));
        env.run("MULTI");
        env.run("HSET k a c");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
    }

    /// Seed 001's Python examples on `sensor:sensor1`, with an exact manual clock.
    #[test]
    fn seed_001_sensor_example() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HSET sensor:sensor1 air_quality 256 battery_level 89"),
            ":2\r\n"
        );
        // r.hexpire('sensor:sensor1', 60, 'air_quality', 'battery_level')
        assert_eq!(
            env.run("HEXPIRE sensor:sensor1 60 FIELDS 2 air_quality battery_level"),
            "*2\r\n:1\r\n:1\r\n"
        );
        // r.httl(...) -> [60, 60]
        assert_eq!(
            env.run("HTTL sensor:sensor1 FIELDS 2 air_quality battery_level"),
            "*2\r\n:60\r\n:60\r\n"
        );
        // r.hpexpire('sensor:sensor1', 60000, 'air_quality'); r.hpttl(...)
        assert_eq!(
            env.run("HPEXPIRE sensor:sensor1 60000 FIELDS 1 air_quality"),
            "*1\r\n:1\r\n"
        );
        assert_eq!(
            env.run("HPTTL sensor:sensor1 FIELDS 1 air_quality"),
            "*1\r\n:60000\r\n"
        );
        env.advance_ms(6);
        assert_eq!(
            env.run("HPTTL sensor:sensor1 FIELDS 1 air_quality"),
            "*1\r\n:59994\r\n"
        );
        // r.hexpireat('sensor:sensor1', now + 24h, 'air_quality'); r.hexpiretime(...)
        let at = env.now_ms() / 1000 + 86_400;
        assert_eq!(
            env.run(&format!(
                "HEXPIREAT sensor:sensor1 {at} FIELDS 1 air_quality"
            )),
            "*1\r\n:1\r\n"
        );
        assert_eq!(
            env.run("HEXPIRETIME sensor:sensor1 FIELDS 1 air_quality"),
            format!("*1\r\n:{at}\r\n")
        );
        env.resp3();
        assert_eq!(
            env.run("HEXPIRETIME sensor:sensor1 FIELDS 1 air_quality"),
            format!("*1\r\n:{at}\r\n")
        );
        // "you will likely need to refresh the key after its fields expire"
        env.advance_ms(60_000);
        assert_eq!(env.run("HGET sensor:sensor1 battery_level"), "_\r\n");
        assert_eq!(env.run("HGET sensor:sensor1 air_quality"), "$3\r\n256\r\n");
    }

    fn keys(env: &mut TestEnv, key: &str) -> String {
        env.run(&format!("HKEYS {key}"))
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Redis 7.4.1's listpackex order (tests/conformance.rs compares these side by side):
    /// the fields with a TTL first by deadline, a new equal deadline before the old ones,
    /// HPERSIST and HSET moving a field with a TTL to the end, HINCRBY keeping its place.
    #[test]
    fn compact_order_is_redis_listpackex_order() {
        let mut env = TestEnv::new();
        env.run("HSET k f3 -572 f4 -1 f1 3.5");
        assert_eq!(
            env.run("HEXPIRE k 1000 FIELDS 2 f3 f1"),
            "*2\r\n:1\r\n:1\r\n"
        );
        assert_eq!(
            env.run("HGETALL k"),
            "*6\r\n$2\r\nf1\r\n$3\r\n3.5\r\n$2\r\nf3\r\n$4\r\n-572\r\n$2\r\nf4\r\n$2\r\n-1\r\n"
        );
        env.run("DEL k");
        env.run("HSET k a 1 b 2 c 3 d 4");
        let at = T0_MS / 1000 + 5000;
        env.run(&format!("HEXPIREAT k {at} FIELDS 1 c"));
        env.run(&format!("HEXPIREAT k {at} FIELDS 1 a"));
        assert_eq!(keys(&mut env, "k"), "a c b d");
        env.run(&format!("HEXPIREAT k {} FIELDS 1 b", at - 1));
        assert_eq!(keys(&mut env, "k"), "b a c d");
        env.run(&format!("HEXPIREAT k {at} FIELDS 1 c"));
        assert_eq!(keys(&mut env, "k"), "b c a d");
        // A condition that fails moves nothing.
        assert_eq!(
            env.run(&format!("HEXPIREAT k {at} GT FIELDS 1 a")),
            "*1\r\n:0\r\n"
        );
        assert_eq!(keys(&mut env, "k"), "b c a d");
        env.run("HPERSIST k FIELDS 1 b");
        assert_eq!(keys(&mut env, "k"), "c a d b");
        env.run("HINCRBY k a 5");
        env.run("HINCRBYFLOAT k a 1.5");
        assert_eq!(keys(&mut env, "k"), "c a d b");
        env.run("HSET k c 9");
        assert_eq!(keys(&mut env, "k"), "a d b c");
        env.run("HSET k d 9 e 1");
        assert_eq!(keys(&mut env, "k"), "a d b c e");
        assert!(env.server.keyspace.check_invariants().is_ok());
    }

    /// Redis 7.4.1: a field-expiration command makes a listpack a listpackex once its
    /// arguments are valid and the key exists, whatever it sets; HPERSIST does not, and
    /// removing the last TTL does not make it a listpack again.
    #[test]
    fn field_expiration_commands_make_a_listpackex() {
        let mut env = TestEnv::new();
        env.run("HSET k n -0");
        assert_eq!(encoding(&env, "k"), Some("listpack"));
        assert_eq!(
            env.run("HPEXPIRE k 0 FIELDS 2 x f3"),
            "*2\r\n:-2\r\n:-2\r\n"
        );
        assert_eq!(encoding(&env, "k"), Some("listpackex"));
        env.run("DEL k");
        env.run("HSET k a 1");
        assert_eq!(env.run("HPERSIST k FIELDS 1 a"), "*1\r\n:-1\r\n");
        assert_eq!(encoding(&env, "k"), Some("listpack"));
        env.run("HEXPIRE k 10 FIELDS 2 a");
        env.run("HEXPIRE k -1 FIELDS 1 a");
        env.run("HEXPIRE k 99999999999999999 FIELDS 1 a");
        assert_eq!(encoding(&env, "k"), Some("listpack"));
        assert_eq!(env.run("HEXPIRE k 100 XX FIELDS 1 a"), "*1\r\n:0\r\n");
        assert_eq!(encoding(&env, "k"), Some("listpackex"));
        env.run("DEL k");
        env.run("HSET k a 1 b 2");
        env.run("HEXPIRE k 100 FIELDS 1 a");
        env.run("HPERSIST k FIELDS 1 a");
        assert_eq!(encoding(&env, "k"), Some("listpackex"));
        env.run("HDEL k a");
        assert_eq!(encoding(&env, "k"), Some("listpackex"));
        // HGETEX with a time and HSETEX with one do what HEXPIRE does (Redis 8).
        env.run("HSET g a 1");
        env.run("HGETEX g PERSIST FIELDS 1 a");
        env.run("HGETEX g FIELDS 1 a");
        assert_eq!(encoding(&env, "g"), Some("listpack"));
        env.run("HGETEX g EX 100 FIELDS 1 nope");
        assert_eq!(encoding(&env, "g"), Some("listpackex"));
        env.run("HSET s a 1");
        env.run("HSETEX s KEEPTTL FIELDS 1 a 2");
        assert_eq!(encoding(&env, "s"), Some("listpack"));
        env.run(&format!("HSETEX s PXAT {} FIELDS 1 b 2", T0_MS - 1));
        assert_eq!(encoding(&env, "s"), Some("listpackex"));
        assert!(env.server.keyspace.check_invariants().is_ok());
    }
}
