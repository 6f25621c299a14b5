//! HINCRBY key field increment
//! HINCRBYFLOAT key field increment

use super::{flags, parse, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::TtlUpdate;
use crate::longdouble::LongDouble;
use crate::protocol::{parse_i64, Reply};

const WRITE_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;

pub const COMMANDS: &[Command] = &[
    Command::new("hincrby", 4, hincrby)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
            "O(1)",
            "key field increment",
        ),
    Command::new("hincrbyfloat", 4, hincrbyfloat)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.6.0",
            "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
            "O(1)",
            "key field increment",
        ),
];

/// The increment is parsed before the key is touched. A missing or expired field starts
/// at 0; an existing field keeps its TTL. On failure the hash is left as it was, and a key
/// created for the attempt vanishes again when the `HashMut` drops.
fn hincrby(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let incr = parse::int(args.get(3))?;
    let now = ctx.now_ms;
    let field = args.get(2);
    let mut db = ctx.db();
    let mut hash = db.get_or_create(args.get(1), now);
    let current = match hash.get_live(field, now) {
        Some(v) => parse_i64(v).ok_or(CmdError::HashValueNotInteger)?,
        None => 0,
    };
    let new = current.checked_add(incr).ok_or(CmdError::IncrOverflow)?;
    let mut text = itoa::Buffer::new();
    hash.set(field, text.format(new).as_bytes(), TtlUpdate::Keep);
    reply.int(new);
    Ok(())
}

/// Computes in x87 extended precision and stores what it replies (see `longdouble`).
/// The reply is a bulk string in RESP3 too, never a double.
fn hincrbyfloat(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let incr = LongDouble::parse(args.get(3)).ok_or(CmdError::NotFloat)?;
    if !incr.is_finite() {
        return Err(CmdError::NanOrInfinity);
    }
    let now = ctx.now_ms;
    let field = args.get(2);
    let mut db = ctx.db();
    let mut hash = db.get_or_create(args.get(1), now);
    let current = match hash.get_live(field, now) {
        Some(v) => LongDouble::parse(v).ok_or(CmdError::HashValueNotFloat)?,
        None => LongDouble::ZERO,
    };
    let sum = current + incr;
    if !sum.is_finite() {
        return Err(CmdError::IncrNanOrInfinity);
    }
    let text = sum.to_human();
    hash.set(field, text.as_bytes(), TtlUpdate::Keep);
    reply.bulk(text.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::hset::fixtures::{field_deadline, set_with_deadline, stored_len};
    use crate::cmd::testing::TestEnv;

    const NOT_INTEGER: &str = "-ERR value is not an integer or out of range\r\n";
    const HASH_NOT_INTEGER: &str = "-ERR hash value is not an integer\r\n";
    const OVERFLOW: &str = "-ERR increment or decrement would overflow\r\n";
    const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";
    const NAN_OR_INF: &str = "-ERR value is NaN or Infinity\r\n";
    const HASH_NOT_FLOAT: &str = "-ERR hash value is not a float\r\n";
    const PRODUCES_INF: &str = "-ERR increment would produce NaN or Infinity\r\n";

    #[test]
    fn hincrby_counts_from_zero() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HINCRBY k f 5"), ":5\r\n");
        assert_eq!(env.run("HINCRBY k f -7"), ":-2\r\n");
        assert_eq!(env.run("HGET k f"), "$2\r\n-2\r\n");
        assert_eq!(env.run("HINCRBY k g 0"), ":0\r\n");
        assert_eq!(env.run("HGET k g"), "$1\r\n0\r\n");
        env.resp3();
        assert_eq!(env.run("HINCRBY k f 2"), ":0\r\n");
        assert_eq!(
            env.run("HINCRBY k f"),
            "-ERR wrong number of arguments for 'hincrby' command\r\n"
        );
    }

    #[test]
    fn hincrby_increment_is_strict_and_checked_first() {
        // Spec §15 #9.
        let mut env = TestEnv::new();
        for bad in [
            "+1",
            "01",
            "' 1'",
            "'1 '",
            "1.5",
            "''",
            "abc",
            "-0",
            "9223372036854775808",
        ] {
            assert_eq!(env.run(&format!("HINCRBY k f {bad}")), NOT_INTEGER, "{bad}");
        }
        assert_eq!(
            stored_len(&env, "k"),
            None,
            "a failed HINCRBY creates no key"
        );
        env.run("HSET k f notanumber");
        assert_eq!(env.run("HINCRBY k f x"), NOT_INTEGER);
        assert_eq!(
            env.run("HINCRBY k f -9223372036854775808"),
            HASH_NOT_INTEGER
        );
    }

    #[test]
    fn hincrby_stored_value_must_be_a_strict_integer() {
        // Spec §15 #10.
        let mut env = TestEnv::new();
        for stored in [
            "' 11'",
            "'11 '",
            "1.5",
            "''",
            "abc",
            "+1",
            "011",
            "99999999999999999999",
        ] {
            env.run(&format!("HSET k f {stored}"));
            assert_eq!(env.run("HINCRBY k f 1"), HASH_NOT_INTEGER, "{stored}");
        }
        env.run("HSET k f ' 11'");
        assert_eq!(env.run("HGET k f"), "$3\r\n 11\r\n");
        env.run_args(&[&b"HSET"[..], b"k", b"n", b"1\x002"]);
        assert_eq!(env.run("HINCRBY k n 1"), HASH_NOT_INTEGER);
    }

    #[test]
    fn hincrby_overflow_leaves_the_value() {
        // Spec §15 #11.
        let mut env = TestEnv::new();
        env.run("HSET k n -9223372036854775484");
        assert_eq!(env.run("HINCRBY k n -10000"), OVERFLOW);
        assert_eq!(env.run("HGET k n"), "$20\r\n-9223372036854775484\r\n");
        assert_eq!(env.run("HINCRBY k n -324"), ":-9223372036854775808\r\n");
        assert_eq!(env.run("HINCRBY k n -1"), OVERFLOW);
        env.run("HSET k p 9223372036854775807");
        assert_eq!(env.run("HINCRBY k p 1"), OVERFLOW);
        assert_eq!(env.run("HINCRBY k p 0"), ":9223372036854775807\r\n");
        assert_eq!(env.run("HINCRBY k p -9223372036854775807"), ":0\r\n");
        assert_eq!(
            env.run("HINCRBY k q 9223372036854775807"),
            ":9223372036854775807\r\n"
        );
    }

    #[test]
    fn hincrby_keeps_the_ttl() {
        // Spec §15 #28 (second half) and §5.5.
        let mut env = TestEnv::new();
        let t = env.now_ms() + 60_000;
        set_with_deadline(&env, "k", "f", "10", t);
        assert_eq!(env.run("HINCRBY k f 5"), ":15\r\n");
        assert_eq!(field_deadline(&env, "k", "f"), Some(Some(t)));
        assert_eq!(env.run("HINCRBYFLOAT k f 0.5"), "$4\r\n15.5\r\n");
        assert_eq!(field_deadline(&env, "k", "f"), Some(Some(t)));
    }

    #[test]
    fn hincrby_on_an_expired_field_starts_over_without_ttl() {
        // Spec §15 #29.
        let mut env = TestEnv::new();
        set_with_deadline(&env, "k", "f", "10", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HINCRBY k f 1"), ":1\r\n");
        assert_eq!(field_deadline(&env, "k", "f"), Some(None));
        set_with_deadline(&env, "k", "g", "10", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HINCRBYFLOAT k g 1.5"), "$3\r\n1.5\r\n");
        assert_eq!(field_deadline(&env, "k", "g"), Some(None));
    }

    #[test]
    fn hincrby_fails_cleanly_when_the_key_only_had_expired_fields() {
        let mut env = TestEnv::new();
        set_with_deadline(&env, "k", "f", "x", env.now_ms() + 1);
        env.advance_ms(2);
        // The increment error comes first; the key is untouched (still stored).
        assert_eq!(env.run("HINCRBY k f x"), NOT_INTEGER);
        assert_eq!(stored_len(&env, "k"), Some(1));
        assert_eq!(env.run("HINCRBY k f 3"), ":3\r\n");
        assert_eq!(stored_len(&env, "k"), Some(1));
    }

    fn incr_float(env: &mut TestEnv, before: Option<&str>, by: &str) -> String {
        env.run("HDEL k f");
        if let Some(b) = before {
            env.run(&format!("HSET k f {b}"));
        }
        let reply = env.run(&format!("HINCRBYFLOAT k f {by}"));
        // What is stored is what was replied.
        assert_eq!(env.run("HGET k f"), reply);
        reply
    }

    #[test]
    fn hincrbyfloat_spec_table() {
        let mut env = TestEnv::new();
        let rows = [
            (None, "1.23", "1.23"),
            (Some("1.23"), "0.77", "2"),
            (Some("2"), "-0.1", "1.9"),
            (Some("0.1"), "0.2", "0.3"),
            (Some("10.5"), "0.1", "10.6"),
            (None, "1e-20", "0"),
            (None, "3.0e3", "3000"),
            (Some("10000000000"), "0.1", "10000000000.09999999962747097"),
            (Some("17179869184"), "1", "17179869185"),
            (None, "2.5", "2.5"),
            (Some("5.0e3"), "2.0e2", "5200"),
            (Some("0x1p3"), "0x1p-1", "8.5"),
            (Some("-1"), "1", "0"),
            (Some("-0.1"), "0.1", "0"),
            (Some("1"), "-1e-20", "1"),
            (None, "-1e-20", "0"),
        ];
        for (before, by, want) in rows {
            let expected = format!("${}\r\n{want}\r\n", want.len());
            assert_eq!(
                incr_float(&mut env, before, by),
                expected,
                "{before:?} + {by}"
            );
        }
        env.resp3();
        assert_eq!(incr_float(&mut env, Some("0.1"), "0.2"), "$3\r\n0.3\r\n");
        assert_eq!(
            env.run("HINCRBYFLOAT k f"),
            "-ERR wrong number of arguments for 'hincrbyfloat' command\r\n"
        );
    }

    #[test]
    fn hincrbyfloat_increment_errors() {
        // Spec §15 #14: an infinite increment is rejected before the key is created.
        let mut env = TestEnv::new();
        for inf in ["+inf", "inf", "-inf", "INFINITY", "-Infinity"] {
            assert_eq!(
                env.run(&format!("HINCRBYFLOAT newk f {inf}")),
                NAN_OR_INF,
                "{inf}"
            );
        }
        for bad in [
            "nan", "NaN", "abc", "''", "' 1'", "'1 '", "1e", "0x", "1e5000", "1e-5000", "1.5.5",
            "--1",
        ] {
            assert_eq!(
                env.run(&format!("HINCRBYFLOAT newk f {bad}")),
                NOT_FLOAT,
                "{bad}"
            );
        }
        assert_eq!(
            env.run(&format!("HINCRBYFLOAT newk f {}", "1".repeat(5120))),
            NOT_FLOAT
        );
        assert_eq!(
            env.run_args(&[&b"HINCRBYFLOAT"[..], b"newk", b"f", b"1\x00"]),
            NOT_FLOAT.as_bytes()
        );
        assert_eq!(stored_len(&env, "newk"), None);
        // Accepted forms that integers would reject.
        assert_eq!(env.run("HINCRBYFLOAT k f +5"), "$1\r\n5\r\n");
        assert_eq!(env.run("HINCRBYFLOAT k f 0x10"), "$2\r\n21\r\n");
        assert_eq!(env.run("HINCRBYFLOAT k f .5"), "$4\r\n21.5\r\n");
        assert_eq!(env.run("HINCRBYFLOAT k f 1E2"), "$5\r\n121.5\r\n");
    }

    #[test]
    fn hincrbyfloat_stored_value_errors() {
        let mut env = TestEnv::new();
        for stored in ["abc", "' 1'", "'1 '", "''", "nan", "1e5000", "1.2.3"] {
            env.run(&format!("HSET k f {stored}"));
            assert_eq!(env.run("HINCRBYFLOAT k f 1"), HASH_NOT_FLOAT, "{stored}");
        }
        env.run_args(&[&b"HSET"[..], b"k", b"f", b"1\x002"]);
        assert_eq!(env.run("HINCRBYFLOAT k f 1"), HASH_NOT_FLOAT);
        // An increment error still comes first.
        assert_eq!(env.run("HINCRBYFLOAT k f x"), NOT_FLOAT);
        assert_eq!(env.run("HINCRBYFLOAT k f inf"), NAN_OR_INF);
    }

    #[test]
    fn hincrbyfloat_result_must_be_finite() {
        let mut env = TestEnv::new();
        let max = "1.18973149535723176502e+4932";
        env.run(&format!("HSET k f {max}"));
        assert_eq!(env.run(&format!("HINCRBYFLOAT k f {max}")), PRODUCES_INF);
        assert_eq!(env.run("HGET k f"), format!("${}\r\n{max}\r\n", max.len()));
        env.run("HSET k g inf");
        assert_eq!(env.run("HINCRBYFLOAT k g 1"), PRODUCES_INF);
        env.run("HSET k g -infinity");
        assert_eq!(env.run("HINCRBYFLOAT k g 1"), PRODUCES_INF);
        // Huge but finite results print in full, without an exponent.
        env.run("HSET k h 1e30");
        assert_eq!(
            env.run("HINCRBYFLOAT k h 0"),
            "$31\r\n1000000000000000000024696061952\r\n"
        );
    }

    #[test]
    fn hincrbyfloat_reads_integer_counters() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HINCRBY k f 41"), ":41\r\n");
        assert_eq!(env.run("HINCRBYFLOAT k f 1.5"), "$4\r\n42.5\r\n");
        assert_eq!(env.run("HINCRBY k f 1"), HASH_NOT_INTEGER);
        assert_eq!(env.run("HINCRBYFLOAT k f 0.5"), "$2\r\n43\r\n");
        assert_eq!(env.run("HINCRBY k f 1"), ":44\r\n");
    }
}
