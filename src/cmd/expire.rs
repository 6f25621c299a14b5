//! EXPIRE key seconds [NX | XX | GT | LT]
//! PEXPIRE key milliseconds [NX | XX | GT | LT]
//! EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
//! PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
//! TTL key
//! PTTL key
//! EXPIRETIME key
//! PEXPIRETIME key
//! PERSIST key
//!
//! Key-level TTLs (spec §11.8–§11.10). They are independent of field TTLs: nothing here
//! reads or changes a field's expiry.

use super::{flags, parse, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

const WRITE_FAST: u32 = flags::WRITE | flags::FAST;
const READ_FAST: u32 = flags::READONLY | flags::FAST;

const MS_PER_SECOND: i64 = 1000;

pub const COMMANDS: &[Command] = &[
    Command::new("expire", -3, expire)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "1.0.0",
            "Sets the expiration time of a key in seconds.",
            "O(1)",
            "key seconds [NX | XX | GT | LT]",
        ),
    Command::new("pexpire", -3, pexpire)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "2.6.0",
            "Sets the expiration time of a key in milliseconds.",
            "O(1)",
            "key milliseconds [NX | XX | GT | LT]",
        ),
    Command::new("expireat", -3, expireat)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "1.2.0",
            "Sets the expiration time of a key to a Unix timestamp.",
            "O(1)",
            "key unix-time-seconds [NX | XX | GT | LT]",
        ),
    Command::new("pexpireat", -3, pexpireat)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "2.6.0",
            "Sets the expiration time of a key to a Unix milliseconds timestamp.",
            "O(1)",
            "key unix-time-milliseconds [NX | XX | GT | LT]",
        ),
    Command::new("ttl", 2, ttl)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "1.0.0",
            "Returns the expiration time in seconds of a key.",
            "O(1)",
            "key",
        ),
    Command::new("pttl", 2, pttl)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "2.6.0",
            "Returns the expiration time in milliseconds of a key.",
            "O(1)",
            "key",
        ),
    Command::new("expiretime", 2, expiretime)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "7.0.0",
            "Returns the expiration time of a key as a Unix timestamp.",
            "O(1)",
            "key",
        ),
    Command::new("pexpiretime", 2, pexpiretime)
        .flags(READ_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "7.0.0",
            "Returns the expiration time of a key as a Unix milliseconds timestamp.",
            "O(1)",
            "key",
        ),
    Command::new("persist", 2, persist)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "2.2.0",
            "Removes the expiration time of a key.",
            "O(1)",
            "key",
        ),
];

/// The NX / XX / GT / LT conditions of the EXPIRE family.
#[derive(Debug, Default, Clone, Copy)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Conditions {
    /// Parses argv[3..] (any order, repeats allowed), before the time argument is looked
    /// at, as Redis does.
    fn parse(args: Args<'_>) -> Result<Self, CmdError> {
        let mut c = Conditions::default();
        for opt in args.from(3) {
            if parse::is(opt, "nx") {
                c.nx = true;
            } else if parse::is(opt, "xx") {
                c.xx = true;
            } else if parse::is(opt, "gt") {
                c.gt = true;
            } else if parse::is(opt, "lt") {
                c.lt = true;
            } else {
                // C's `%s`: the option's bytes up to a NUL, UTF-8 or not.
                let end = opt.iter().position(|&b| b == 0).unwrap_or(opt.len());
                let mut text = b"ERR Unsupported option ".to_vec();
                text.extend_from_slice(&opt[..end]);
                return Err(CmdError::other_bytes(text));
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::other(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(CmdError::other(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether a key whose current deadline is `current` (None: no TTL) may get `when`.
    /// No TTL counts as infinite: GT always fails against it, LT always succeeds.
    fn allow(self, current: Option<i64>, when: i64) -> bool {
        if self.nx && current.is_some() {
            return false;
        }
        if self.xx && current.is_none() {
            return false;
        }
        if self.gt && current.is_none_or(|c| when <= c) {
            return false;
        }
        if self.lt && current.is_some_and(|c| when >= c) {
            return false;
        }
        true
    }
}

/// The shared body of EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT. `unit_ms` is what one unit
/// of the time argument is worth; `relative` adds "now".
fn expire_generic(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
    name: &str,
    unit_ms: i64,
    relative: bool,
) -> Result<(), CmdError> {
    let cond = Conditions::parse(args)?;
    let t = parse::int(args.get(2))?;
    let invalid = || CmdError::InvalidExpireTime(name.into());
    // Negative times are allowed (they delete the key); only overflow is an error.
    let when = t.checked_mul(unit_ms).ok_or_else(invalid)?;
    let now = ctx.now_ms;
    let base = if relative {
        i64::try_from(now).unwrap_or(i64::MAX)
    } else {
        0
    };
    let when = when.checked_add(base).ok_or_else(invalid)?;

    let key = args.get(1);
    let mut db = ctx.db();
    let Some(current) = db.key_deadline(key, now) else {
        reply.int(0);
        return Ok(());
    };
    let current = current.map(|d| i64::try_from(d).unwrap_or(i64::MAX));
    if !cond.allow(current, when) {
        reply.int(0);
        return Ok(());
    }
    // A deadline at or before "now" deletes at once (Redis's checkAlreadyExpired).
    if when <= i64::try_from(now).unwrap_or(i64::MAX) {
        db.delete(key, now);
    } else {
        // `when` is positive here.
        db.set_key_deadline(key, Some(when as u64), now);
    }
    reply.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, reply, "expire", MS_PER_SECOND, true)
}

fn pexpire(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, reply, "pexpire", 1, true)
}

fn expireat(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, reply, "expireat", MS_PER_SECOND, false)
}

fn pexpireat(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    expire_generic(ctx, args, reply, "pexpireat", 1, false)
}

/// The shared body of TTL / PTTL / EXPIRETIME / PEXPIRETIME: -2 missing, -1 no TTL.
/// Seconds are rounded half up from milliseconds (`(ms + 500) / 1000`), unlike HTTL's
/// ceiling. The rounding does not overflow: a deadline of i64::MAX ms is
/// 9223372036854776 s, as Redis 7.4.1 answers (not the wrapped -9223372036854775).
fn ttl_generic(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
    in_ms: bool,
    absolute: bool,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let value = match ctx.db().key_deadline(args.get(1), now) {
        None => -2,
        Some(None) => -1,
        Some(Some(deadline)) => {
            let deadline = i64::try_from(deadline).unwrap_or(i64::MAX);
            let ms = if absolute {
                deadline
            } else {
                deadline.wrapping_sub(i64::try_from(now).unwrap_or(i64::MAX))
            }
            .max(0);
            if in_ms {
                ms
            } else {
                // `ms` is not negative: in u64 the rounding cannot overflow, and the
                // quotient fits in i64.
                ((ms as u64 + 500) / MS_PER_SECOND as u64) as i64
            }
        }
    };
    reply.int(value);
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, args, reply, false, false)
}

fn pttl(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    ttl_generic(ctx, args, reply, true, false)
}

fn expiretime(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    ttl_generic(ctx, args, reply, false, true)
}

fn pexpiretime(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    ttl_generic(ctx, args, reply, true, true)
}

/// PERSIST: 1 only if a TTL was removed; a key without one is not modified (no WATCH signal).
fn persist(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let key = args.get(1);
    let mut db = ctx.db();
    let removed =
        matches!(db.key_deadline(key, now), Some(Some(_))) && db.set_key_deadline(key, None, now);
    reply.int(i64::from(removed));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::{TestEnv, T0_MS};
    use crate::keyspace::LockPlan;

    fn env_with_key() -> TestEnv {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env
    }

    #[test]
    fn expire_sets_and_ttl_reads() {
        let mut env = env_with_key();
        assert_eq!(env.run("TTL k"), ":-1\r\n");
        assert_eq!(env.run("PTTL k"), ":-1\r\n");
        assert_eq!(env.run("EXPIRETIME k"), ":-1\r\n");
        assert_eq!(env.run("PEXPIRETIME k"), ":-1\r\n");
        assert_eq!(env.run("EXPIRE k 100"), ":1\r\n");
        assert_eq!(env.run("TTL k"), ":100\r\n");
        assert_eq!(env.run("PTTL k"), ":100000\r\n");
        assert_eq!(
            env.run("PEXPIRETIME k"),
            format!(":{}\r\n", T0_MS + 100_000)
        );
        assert_eq!(
            env.run("EXPIRETIME k"),
            format!(":{}\r\n", T0_MS / 1000 + 100)
        );
        env.resp3();
        assert_eq!(env.run("TTL k"), ":100\r\n");
    }

    #[test]
    fn missing_keys() {
        let mut env = TestEnv::new();
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(env.run(&format!("{cmd} nokey")), ":-2\r\n", "{cmd}");
        }
        for cmd in ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"] {
            assert_eq!(env.run(&format!("{cmd} nokey 100")), ":0\r\n", "{cmd}");
            assert_eq!(env.run(&format!("{cmd} nokey -1")), ":0\r\n", "{cmd}");
        }
        assert_eq!(env.run("PERSIST nokey"), ":0\r\n");
        assert_eq!(env.run("EXISTS nokey"), ":0\r\n");
    }

    #[test]
    fn ttl_rounds_half_up() {
        // Spec §15 #26: a key with 1400 ms left has TTL 1.
        let mut env = env_with_key();
        env.run("PEXPIRE k 1400");
        assert_eq!(env.run("TTL k"), ":1\r\n");
        env.run("PEXPIRE k 1500");
        assert_eq!(env.run("TTL k"), ":2\r\n");
        env.run("PEXPIRE k 1499");
        assert_eq!(env.run("TTL k"), ":1\r\n");
        env.run("PEXPIRE k 499");
        assert_eq!(env.run("TTL k"), ":0\r\n");
        assert_eq!(env.run("PTTL k"), ":499\r\n");
        // At the deadline itself the key is still there, with 0 left.
        env.advance_ms(499);
        assert_eq!(env.run("PTTL k"), ":0\r\n");
        assert_eq!(env.run("TTL k"), ":0\r\n");
        env.advance_ms(1);
        assert_eq!(env.run("PTTL k"), ":-2\r\n");
        assert_eq!(env.run("TTL k"), ":-2\r\n");
    }

    #[test]
    fn expiretime_rounds_half_up() {
        let mut env = env_with_key();
        env.run("PEXPIREAT k 1704067300499");
        assert_eq!(env.run("EXPIRETIME k"), ":1704067300\r\n");
        env.run("PEXPIREAT k 1704067300500");
        assert_eq!(env.run("EXPIRETIME k"), ":1704067301\r\n");
        assert_eq!(env.run("PEXPIRETIME k"), ":1704067300500\r\n");
        env.run("EXPIREAT k 1704067400");
        assert_eq!(env.run("PEXPIRETIME k"), ":1704067400000\r\n");
    }

    #[test]
    fn the_key_expires() {
        let mut env = env_with_key();
        env.run("EXPIRE k 1");
        env.advance_ms(1000);
        assert_eq!(env.run("EXISTS k"), ":1\r\n");
        env.advance_ms(1);
        assert_eq!(env.run("EXISTS k"), ":0\r\n");
        assert_eq!(env.run("HGET k f"), "$-1\r\n");
    }

    #[test]
    fn negative_or_past_times_delete() {
        for cmd in [
            "EXPIRE k -1",
            "EXPIRE k 0",
            "PEXPIRE k 0",
            "PEXPIRE k -9223372036854775808",
            "EXPIREAT k 1",
            "EXPIREAT k -100",
            "PEXPIREAT k 0",
            "PEXPIREAT k 1704067200000", // exactly now
        ] {
            let mut env = env_with_key();
            assert_eq!(env.run(cmd), ":1\r\n", "{cmd}");
            assert_eq!(env.run("EXISTS k"), ":0\r\n", "{cmd}");
            assert_eq!(env.run("DBSIZE"), ":0\r\n", "{cmd}");
        }
        let mut env = env_with_key();
        assert_eq!(env.run("PEXPIREAT k 1704067200001"), ":1\r\n");
        assert_eq!(env.run("PTTL k"), ":1\r\n");
    }

    #[test]
    fn past_time_delete_dirties_watchers() {
        let mut env = env_with_key();
        env.run("WATCH k");
        env.run("EXPIRE k -1");
        env.run("MULTI");
        env.run("EXISTS k");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
    }

    #[test]
    fn expire_dirties_watchers() {
        let mut env = env_with_key();
        env.run("WATCH k");
        env.run("EXPIRE k 100");
        env.run("MULTI");
        env.run("EXISTS k");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
    }

    #[test]
    fn options_are_parsed_first() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("EXPIRE nokey abc FOO"),
            "-ERR Unsupported option FOO\r\n"
        );
        assert_eq!(
            env.run("EXPIRE nokey abc NX XX"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            env.run("PEXPIRE nokey 10 gt nx"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            env.run("PEXPIREAT nokey 10 nx lt"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            env.run("EXPIREAT nokey abc GT LT"),
            "-ERR GT and LT options at the same time are not compatible\r\n"
        );
        // An unknown option wins over incompatible ones before it.
        assert_eq!(
            env.run("EXPIRE nokey 10 NX XX BAD"),
            "-ERR Unsupported option BAD\r\n"
        );
        assert_eq!(
            env.run("EXPIRE nokey abc"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("EXPIRE nokey +1"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("EXPIRE nokey 9223372036854775808"),
            "-ERR value is not an integer or out of range\r\n"
        );
        // Repeats and XX with GT/LT are fine.
        assert_eq!(env.run("EXPIRE nokey 10 nx NX"), ":0\r\n");
        assert_eq!(env.run("EXPIRE nokey 10 XX GT"), ":0\r\n");
        assert_eq!(env.run("EXPIRE nokey 10 XX LT"), ":0\r\n");
    }

    #[test]
    fn unsupported_option_text_stops_at_nul() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run_args(&[&b"EXPIRE"[..], b"k", b"10", b"ab\0cd"]),
            b"-ERR Unsupported option ab\r\n"
        );
        // Other bytes are echoed unchanged (Redis 7.4.1 too), not as U+FFFD.
        assert_eq!(
            env.run_args(&[&b"EXPIRE"[..], b"k", b"10", b"\xff\xfe"]),
            b"-ERR Unsupported option \xff\xfe\r\n"
        );
    }

    #[test]
    fn overflow_is_invalid_expire_time() {
        let mut env = env_with_key();
        assert_eq!(
            env.run("EXPIRE k 9223372036854776"),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(
            env.run("EXPIRE k -9223372036854776"),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(
            env.run("EXPIREAT k 9223372036854776"),
            "-ERR invalid expire time in 'expireat' command\r\n"
        );
        assert_eq!(
            env.run("PEXPIRE k 9223372036854775807"),
            "-ERR invalid expire time in 'pexpire' command\r\n"
        );
        // The overflow check comes before the key lookup.
        assert_eq!(
            env.run("PEXPIRE nokey 9223372036854775807"),
            "-ERR invalid expire time in 'pexpire' command\r\n"
        );
        // No cap apart from overflow.
        assert_eq!(env.run("PEXPIREAT k 9223372036854775807"), ":1\r\n");
        assert_eq!(env.run("PEXPIRETIME k"), ":9223372036854775807\r\n");
        // Rounded to seconds without overflowing (Redis 7.4.1: 9223372036854776).
        assert_eq!(env.run("EXPIRETIME k"), ":9223372036854776\r\n");
        let left = i64::MAX - T0_MS as i64;
        assert_eq!(env.run("PTTL k"), format!(":{left}\r\n"));
        assert_eq!(env.run("TTL k"), format!(":{}\r\n", (left + 500) / 1000));
        // The rest is the same in RESP3 (integers and errors do not change shape).
        env.resp3();
        assert_eq!(env.run("EXPIRETIME k"), ":9223372036854776\r\n");
        // Seconds are scaled, then "now" is added: either step may overflow.
        assert_eq!(
            env.run("EXPIRE k 9223372036854775"),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(env.run("EXPIREAT k 9223372036854775"), ":1\r\n");
        assert_eq!(env.run("PEXPIRETIME k"), ":9223372036854775000\r\n");
        assert_eq!(env.run("EXISTS k"), ":1\r\n");
        assert_eq!(
            env.run("EXPIRE k 9223372036854775 FOO"),
            "-ERR Unsupported option FOO\r\n"
        );
        assert_eq!(
            env.run("EXPIRE k -9223372036854775"),
            ":1\r\n",
            "the most negative accepted value deletes"
        );
    }

    #[test]
    fn nx_and_xx() {
        let mut env = env_with_key();
        assert_eq!(env.run("EXPIRE k 100 XX"), ":0\r\n");
        assert_eq!(env.run("TTL k"), ":-1\r\n");
        assert_eq!(env.run("EXPIRE k 100 NX"), ":1\r\n");
        assert_eq!(env.run("EXPIRE k 200 NX"), ":0\r\n");
        assert_eq!(env.run("TTL k"), ":100\r\n");
        assert_eq!(env.run("EXPIRE k 200 XX"), ":1\r\n");
        assert_eq!(env.run("TTL k"), ":200\r\n");
    }

    #[test]
    fn gt_and_lt() {
        let mut env = env_with_key();
        // No TTL is infinite: GT fails, LT succeeds.
        assert_eq!(env.run("EXPIRE k 100 GT"), ":0\r\n");
        assert_eq!(env.run("TTL k"), ":-1\r\n");
        assert_eq!(env.run("EXPIRE k 100 LT"), ":1\r\n");
        assert_eq!(env.run("EXPIRE k 100 GT"), ":0\r\n", "equal is not greater");
        assert_eq!(env.run("EXPIRE k 100 LT"), ":0\r\n", "equal is not less");
        assert_eq!(env.run("EXPIRE k 50 GT"), ":0\r\n");
        assert_eq!(env.run("EXPIRE k 200 GT"), ":1\r\n");
        assert_eq!(env.run("TTL k"), ":200\r\n");
        assert_eq!(env.run("EXPIRE k 300 LT"), ":0\r\n");
        assert_eq!(env.run("EXPIRE k 150 XX LT"), ":1\r\n");
        assert_eq!(env.run("TTL k"), ":150\r\n");
        // The condition is checked before the past-time delete.
        assert_eq!(env.run("EXPIRE k -1 GT"), ":0\r\n");
        assert_eq!(env.run("EXISTS k"), ":1\r\n");
        assert_eq!(env.run("EXPIRE k -1 NX"), ":0\r\n");
        assert_eq!(env.run("EXISTS k"), ":1\r\n");
        assert_eq!(env.run("EXPIRE k -1 LT"), ":1\r\n");
        assert_eq!(env.run("EXISTS k"), ":0\r\n");
    }

    #[test]
    fn failed_condition_does_not_dirty_watchers() {
        let mut env = env_with_key();
        env.run("WATCH k");
        assert_eq!(env.run("EXPIRE k 100 XX"), ":0\r\n");
        assert_eq!(env.run("PERSIST k"), ":0\r\n");
        env.run("MULTI");
        env.run("EXISTS k");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
    }

    #[test]
    fn persist_removes_the_ttl() {
        let mut env = env_with_key();
        assert_eq!(env.run("PERSIST k"), ":0\r\n");
        env.run("EXPIRE k 10");
        assert_eq!(env.run("PERSIST k"), ":1\r\n");
        assert_eq!(env.run("TTL k"), ":-1\r\n");
        assert_eq!(env.run("PERSIST k"), ":0\r\n");
        env.advance_ms(20_000);
        assert_eq!(env.run("EXISTS k"), ":1\r\n");
        // An already expired key cannot be persisted.
        env.run("PEXPIRE k 5");
        env.advance_ms(6);
        assert_eq!(env.run("PERSIST k"), ":0\r\n");
        assert_eq!(env.run("EXISTS k"), ":0\r\n");
    }

    #[test]
    fn key_ttl_leaves_field_ttls_alone() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1 b 2");
        let at = env.now_ms() + 5000;
        {
            let now = env.now_ms();
            let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
            let mut db = l.db(0);
            let mut h = db.get_mut(b"k", now).expect("k exists");
            assert!(h.set_expire(b"a", Some(at)));
        }
        env.run("EXPIRE k 100");
        env.run("PERSIST k");
        let now = env.now_ms();
        let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        let h = db.get(b"k", now).expect("k exists");
        assert_eq!(h.get(b"a").and_then(|f| f.expire_at), Some(at));
        assert_eq!(h.get(b"b").and_then(|f| f.expire_at), None);
    }

    #[test]
    fn expire_on_hash_with_only_expired_fields() {
        // A hash with no live field does not exist: EXPIRE reclaims it and answers 0.
        let mut env = env_with_key();
        {
            let now = env.now_ms();
            let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
            let mut db = l.db(0);
            let mut h = db.get_mut(b"k", now).expect("k exists");
            assert!(h.set_expire(b"f", Some(now + 1)));
        }
        env.advance_ms(2);
        assert_eq!(env.run("EXPIRE k 100"), ":0\r\n");
        assert_eq!(env.run("TTL k"), ":-2\r\n");
        assert_eq!(env.server.keyspace.stored_len(0, b"k"), None);
    }

    #[test]
    fn arity() {
        let mut env = TestEnv::new();
        for (cmd, name) in [
            ("EXPIRE k", "expire"),
            ("pexpire k", "pexpire"),
            ("EXPIREAT k", "expireat"),
            ("PEXPIREAT k", "pexpireat"),
            ("TTL", "ttl"),
            ("PTTL k x", "pttl"),
            ("EXPIRETIME", "expiretime"),
            ("PEXPIRETIME k x", "pexpiretime"),
            ("PERSIST", "persist"),
        ] {
            assert_eq!(
                env.run(cmd),
                format!("-ERR wrong number of arguments for '{name}' command\r\n")
            );
        }
    }

    #[test]
    fn inside_multi_time_is_fixed() {
        let mut env = env_with_key();
        env.run("MULTI");
        env.run("PEXPIRE k 1000");
        env.run("PTTL k");
        assert_eq!(env.run("EXEC"), "*2\r\n:1\r\n:1000\r\n");
    }
}
