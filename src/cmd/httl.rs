//! HTTL key FIELDS numfields field [field ...]
//! HPTTL key FIELDS numfields field [field ...]
//! HEXPIRETIME key FIELDS numfields field [field ...]
//! HPEXPIRETIME key FIELDS numfields field [field ...]
//!
//! Read-only: a field past its TTL reports -2 but stays stored until something reclaims it.

use super::parse::{int, is};
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

const READ_FAST: u32 = flags::READONLY | flags::FAST;

const COMPLEXITY: &str = "O(N) where N is the number of specified fields";
const SYNTAX: &str = "key FIELDS numfields field [field ...]";

pub const COMMANDS: &[Command] = &[
    Command::new("httl", -5, httl)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "7.4.0",
            "Returns the TTL in seconds of a hash field.",
            COMPLEXITY,
            SYNTAX,
        ),
    Command::new("hpttl", -5, hpttl)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "7.4.0",
            "Returns the TTL in milliseconds of a hash field.",
            COMPLEXITY,
            SYNTAX,
        ),
    Command::new("hexpiretime", -5, hexpiretime)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "7.4.0",
            "Returns the expiration time of a hash field as a Unix timestamp, in seconds.",
            COMPLEXITY,
            SYNTAX,
        ),
    Command::new("hpexpiretime", -5, hpexpiretime)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "7.4.0",
            "Returns the expiration time of a hash field as a Unix timestamp, in msec.",
            COMPLEXITY,
            SYNTAX,
        ),
];

/// Per-field reply: the field is missing or logically expired.
pub(super) const NO_FIELD: i64 = -2;
/// Per-field reply: the field exists and has no TTL.
pub(super) const NO_TTL: i64 = -1;

/// Validates the `FIELDS numfields field [field ...]` block whose `FIELDS` keyword sits at
/// `at`, in Redis's order: the keyword, then `numfields` (1..=i64::MAX, else `count_error`),
/// then the count. Returns the position of the first field. `name` is for the arity error
/// when the block is cut off before `numfields` (HGETEX with a time option).
pub(super) fn fields_block(
    args: Args<'_>,
    at: usize,
    count_error: CmdError,
    name: &str,
) -> Result<usize, CmdError> {
    if at >= args.len() || !is(args.get(at), "FIELDS") {
        return Err(CmdError::FieldsMissing);
    }
    if at + 1 >= args.len() {
        return Err(CmdError::WrongArity(name.into()));
    }
    let n = match int(args.get(at + 1)) {
        Ok(n) if n >= 1 => n,
        _ => return Err(count_error),
    };
    let first = at + 2;
    if n as u64 != (args.len() - first) as u64 {
        return Err(CmdError::NumFieldsMismatch);
    }
    Ok(first)
}

/// Which number a command reports for a field with a TTL.
#[derive(Clone, Copy)]
enum Report {
    /// Remaining seconds, rounded up.
    TtlSeconds,
    TtlMillis,
    /// Unix seconds, rounded up.
    AtSeconds,
    AtMillis,
}

fn report(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
    what: Report,
    name: &str,
) -> Result<(), CmdError> {
    let first = fields_block(args, 2, CmdError::NumFieldsNotPositiveInteger, name)?;
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let hash = db.get(args.get(1), now);
    reply.array(args.len() - first);
    for field in args.from(first) {
        let code = match hash.and_then(|h| h.get(field)) {
            None => NO_FIELD,
            Some(f) if f.is_expired(now) => NO_FIELD,
            Some(f) => match f.expire_at {
                None => NO_TTL,
                Some(t) => {
                    // Not expired, so t >= now.
                    let left = t.saturating_sub(now);
                    (match what {
                        Report::TtlSeconds => left.div_ceil(1000),
                        Report::TtlMillis => left,
                        Report::AtSeconds => t.div_ceil(1000),
                        Report::AtMillis => t,
                    }) as i64
                }
            },
        };
        reply.int(code);
    }
    Ok(())
}

fn httl(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    report(ctx, args, reply, Report::TtlSeconds, "httl")
}

fn hpttl(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    report(ctx, args, reply, Report::TtlMillis, "hpttl")
}

fn hexpiretime(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    report(ctx, args, reply, Report::AtSeconds, "hexpiretime")
}

fn hpexpiretime(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    report(ctx, args, reply, Report::AtMillis, "hpexpiretime")
}

/// Helpers shared by the tests of the field-expiration commands.
#[cfg(test)]
pub(super) mod test_util {
    use crate::cmd::testing::TestEnv;
    use crate::keyspace::{EncodingLimits, LockPlan};

    /// A RESP integer array.
    pub fn ints(v: &[i64]) -> String {
        let mut s = format!("*{}\r\n", v.len());
        for n in v {
            s.push_str(&format!(":{n}\r\n"));
        }
        s
    }

    /// A RESP array of bulk strings and nulls (RESP2 nulls unless `resp3`).
    pub fn bulks(v: &[Option<&str>], resp3: bool) -> String {
        let mut s = format!("*{}\r\n", v.len());
        for b in v {
            match b {
                Some(b) => s.push_str(&format!("${}\r\n{b}\r\n", b.len())),
                None if resp3 => s.push_str("_\r\n"),
                None => s.push_str("$-1\r\n"),
            }
        }
        s
    }

    /// Whether `key` exists in db 0, as EXISTS sees it (a hash with no live field does
    /// not, and is reclaimed by asking).
    pub fn exists(env: &TestEnv, key: &str) -> bool {
        let now = env.now_ms();
        let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
        let exists = l.db(0).exists(key.as_bytes(), now);
        exists
    }

    /// Fields stored at `key` in db 0, expired ones included; None if nothing is stored.
    /// Reclaims nothing.
    pub fn stored(env: &TestEnv, key: &str) -> Option<usize> {
        env.server.keyspace.stored_len(0, key.as_bytes())
    }

    /// The encoding name of `key` in db 0.
    pub fn encoding(env: &TestEnv, key: &str) -> Option<&'static str> {
        let now = env.now_ms();
        let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        db.get(key.as_bytes(), now).map(|h| h.encoding().name())
    }

    /// Hashes created from now on become tables once they hold more than `n` fields.
    pub fn table_after(env: &TestEnv, n: usize) {
        env.server.keyspace.set_limits(EncodingLimits {
            max_compact_entries: n,
            ..EncodingLimits::default()
        });
    }

    pub fn expired_subkeys(env: &TestEnv) -> u64 {
        let stats = &env.server.keyspace.stats;
        stats
            .expired_subkeys
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{encoding, exists, expired_subkeys, ints, stored, table_after};
    use crate::cmd::testing::{TestEnv, T0_MS};

    const T0_S: u64 = T0_MS / 1000;

    #[test]
    fn missing_key_answers_minus_two_per_field() {
        let mut env = TestEnv::new();
        for cmd in ["HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME"] {
            assert_eq!(
                env.run(&format!("{cmd} nokey FIELDS 2 a b")),
                ints(&[-2, -2])
            );
        }
        env.resp3();
        assert_eq!(env.run("HTTL nokey FIELDS 1 a"), ints(&[-2]));
    }

    #[test]
    fn no_ttl_and_missing_fields() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        for cmd in ["HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME"] {
            assert_eq!(
                env.run(&format!("{cmd} k FIELDS 3 f nope f")),
                ints(&[-1, -2, -1])
            );
        }
    }

    #[test]
    fn httl_rounds_up_and_hpttl_is_exact() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1 b 1 c 1 d 1");
        assert_eq!(env.run("HPEXPIRE k 1400 FIELDS 1 a"), ints(&[1]), "setup");
        env.run("HPEXPIRE k 1 FIELDS 1 b");
        env.run("HPEXPIRE k 1000 FIELDS 1 c");
        env.run("HPEXPIRE k 1001 FIELDS 1 d");
        // Spec #26: 1400 ms left is 2 seconds for HTTL (ceil), 1 ms left is 1.
        assert_eq!(env.run("HTTL k FIELDS 4 a b c d"), ints(&[2, 1, 1, 2]));
        assert_eq!(
            env.run("HPTTL k FIELDS 4 a b c d"),
            ints(&[1400, 1, 1000, 1001])
        );
        env.advance_ms(1);
        // b expires exactly now: still readable (expired means deadline < now).
        assert_eq!(env.run("HTTL k FIELDS 2 b a"), ints(&[0, 2]));
        assert_eq!(env.run("HPTTL k FIELDS 2 b a"), ints(&[0, 1399]));
        env.advance_ms(1);
        assert_eq!(env.run("HTTL k FIELDS 2 b a"), ints(&[-2, 2]));
        assert_eq!(env.run("HPTTL k FIELDS 2 b a"), ints(&[-2, 1398]));
    }

    #[test]
    fn expiretime_rounds_up() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1 b 1");
        let at = T0_MS + 86_400_500;
        env.run(&format!("HPEXPIREAT k {at} FIELDS 1 a"));
        env.run(&format!("HPEXPIREAT k {} FIELDS 1 b", T0_MS + 2000));
        assert_eq!(
            env.run("HEXPIRETIME k FIELDS 2 a b"),
            ints(&[(T0_S + 86_401) as i64, (T0_S + 2) as i64])
        );
        assert_eq!(
            env.run("HPEXPIRETIME k FIELDS 2 a b"),
            ints(&[at as i64, (T0_MS + 2000) as i64])
        );
        // The reply does not move with the clock.
        env.advance_ms(1500);
        assert_eq!(env.run("HPEXPIRETIME k FIELDS 1 a"), ints(&[at as i64]));
    }

    #[test]
    fn the_largest_field_deadline_does_not_overflow() {
        // HPEXPIREAT's largest time is 2^46 - 1 ms (Redis 7.4.1 refuses 2^46), so the
        // rounding up to seconds has room: Redis answers the same numbers.
        let mut env = TestEnv::new();
        env.run("HSET k a 1");
        assert_eq!(
            env.run("HPEXPIREAT k 70368744177664 FIELDS 1 a"),
            "-ERR invalid expire time in 'hpexpireat' command\r\n"
        );
        assert_eq!(
            env.run("HPEXPIREAT k 70368744177663 FIELDS 1 a"),
            ints(&[1])
        );
        let left = 70_368_744_177_663 - T0_MS as i64;
        for resp3 in [false, true] {
            if resp3 {
                env.resp3();
            }
            assert_eq!(env.run("HEXPIRETIME k FIELDS 1 a"), ints(&[70_368_744_178]));
            assert_eq!(
                env.run("HPEXPIRETIME k FIELDS 1 a"),
                ints(&[70_368_744_177_663])
            );
            assert_eq!(env.run("HPTTL k FIELDS 1 a"), ints(&[left]));
            assert_eq!(env.run("HTTL k FIELDS 1 a"), ints(&[(left + 999) / 1000]));
        }
    }

    #[test]
    fn expired_fields_answer_minus_two_and_stay_stored() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1 b 2");
        env.run("HPEXPIRE k 10 FIELDS 2 a b");
        env.advance_ms(11);
        for cmd in ["HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME"] {
            assert_eq!(env.run(&format!("{cmd} k FIELDS 2 a b")), ints(&[-2, -2]));
        }
        // No live field: the hash is gone, and reclaimed when met.
        assert_eq!(stored(&env, "k"), None);
        assert_eq!(expired_subkeys(&env), 2);
        // With a live field left, the TTL family reads without reclaiming.
        env.run("HSET k a 1 b 2 c 3");
        env.run("HPEXPIRE k 10 FIELDS 2 a b");
        env.advance_ms(11);
        for cmd in ["HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME"] {
            assert_eq!(env.run(&format!("{cmd} k FIELDS 2 a b")), ints(&[-2, -2]));
        }
        assert_eq!(stored(&env, "k"), Some(3));
        assert!(exists(&env, "k"));
        assert_eq!(expired_subkeys(&env), 2);
    }

    #[test]
    fn validation_order_and_errors() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        for cmd in ["httl", "hpttl", "hexpiretime", "hpexpiretime"] {
            let up = cmd.to_uppercase();
            assert_eq!(
                env.run(&format!("{up} k FIELDS 1")),
                format!("-ERR wrong number of arguments for '{cmd}' command\r\n")
            );
            assert_eq!(
                env.run(&format!("{up} k NOTFIELDS 1 f")),
                "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"
            );
            // FIELDS is checked before numfields, numfields before the count.
            assert_eq!(
                env.run(&format!("{up} k 1 FIELDS f")),
                "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"
            );
            for n in ["0", "-1", "abc", "9223372036854775808", "+1", "01"] {
                assert_eq!(
                    env.run(&format!("{up} k FIELDS {n} f")),
                    "-ERR Number of fields must be a positive integer\r\n",
                    "{cmd} numfields {n}"
                );
            }
            assert_eq!(
                env.run(&format!("{up} k FIELDS 2 f")),
                "-ERR The `numfields` parameter must match the number of arguments\r\n"
            );
            assert_eq!(
                env.run(&format!("{up} k FIELDS 1 f g")),
                "-ERR The `numfields` parameter must match the number of arguments\r\n"
            );
            // Missing keys are validated too.
            assert_eq!(
                env.run(&format!("{up} nokey FIELDS 0 f")),
                "-ERR Number of fields must be a positive integer\r\n"
            );
            assert_eq!(env.run(&format!("{up} k fields 1 f")), ints(&[-1]));
        }
    }

    #[test]
    fn table_encoded_hashes() {
        let mut env = TestEnv::new();
        table_after(&env, 2);
        env.run("HSET k a 1 b 2 c 3 d 4");
        assert_eq!(encoding(&env, "k"), Some("hashtable"));
        env.run("HPEXPIRE k 2500 FIELDS 2 a b");
        assert_eq!(env.run("HTTL k FIELDS 3 a c zz"), ints(&[3, -1, -2]));
        assert_eq!(env.run("HPTTL k FIELDS 1 b"), ints(&[2500]));
        env.advance_ms(2501);
        assert_eq!(env.run("HPTTL k FIELDS 2 a b"), ints(&[-2, -2]));
        assert_eq!(stored(&env, "k"), Some(4));
    }

    #[test]
    fn table_flags() {
        let c = crate::cmd::table().get(b"httl").expect("httl");
        assert_eq!(c.arity, -5);
        assert!(c.has(crate::cmd::flags::READONLY) && c.has(crate::cmd::flags::FAST));
        assert_eq!((c.first_key, c.last_key, c.step), (1, 1, 1));
        for name in ["hpttl", "hexpiretime", "hpexpiretime"] {
            let c = crate::cmd::table().get(name.as_bytes()).expect(name);
            assert_eq!((c.arity, c.flags), (-5, super::READ_FAST));
        }
    }
}
