//! HSETEX key [FNX | FXX] [EX seconds | PX milliseconds | EXAT unix-time-seconds |
//!   PXAT unix-time-milliseconds | KEEPTTL] FIELDS numfields field value [field value ...]

use super::hexpire::{expiry_option, parse_expire_time};
use super::keys::error_quoting;
use super::parse::is;
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::TtlUpdate;
use crate::protocol::parse_i64;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hsetex", -6, hsetex)
    .flags(flags::WRITE | flags::DENYOOM | flags::FAST)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "8.0.0",
        "Set the value of one or more fields of a given hash key, and optionally set their expiration.",
        "O(N) where N is the number of fields being set.",
        "key [FNX | FXX] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL] FIELDS numfields field value [field value ...]",
    )];

/// The field-level condition.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    /// Only if none of the fields exists.
    Fnx,
    /// Only if all of the fields exist.
    Fxx,
}

/// A parsed HSETEX request.
struct Request {
    cond: Cond,
    ttl: TtlUpdate,
    /// Position of the first field.
    first: usize,
}

const ONE_COND: &str = "ERR Only one of FXX or FNX arguments can be specified";
const ONE_EXPIRY: &str = "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified";

/// Redis's `hsetexParseArgs`: options in any order up to FIELDS, all checked before the key
/// is looked at.
fn parse(args: Args<'_>, now: u64) -> Result<Request, CmdError> {
    let arity = || CmdError::WrongArity("hsetex".into());
    let mut cond = Cond::Always;
    let mut ttl = TtlUpdate::Clear;
    let mut expiry_given = false;
    let mut i = 2;
    while i < args.len() {
        let tok = args.get(i);
        if is(tok, "FIELDS") {
            if i + 3 >= args.len() {
                return Err(arity());
            }
            let n = match parse_i64(args.get(i + 1)) {
                Some(n) if (1..=i64::from(i32::MAX)).contains(&n) => n as usize,
                _ => return Err(CmdError::other("ERR invalid number of fields")),
            };
            let remaining = args.len() - i - 2;
            if !remaining.is_multiple_of(2) || n != remaining / 2 {
                return Err(arity());
            }
            return Ok(Request {
                cond,
                ttl,
                first: i + 2,
            });
        }
        let timed = expiry_option(tok, now);
        if let Some((unit, base)) = timed {
            if expiry_given {
                return Err(CmdError::other(ONE_EXPIRY));
            }
            if i + 1 >= args.len() {
                return Err(CmdError::other("ERR missing expire time"));
            }
            expiry_given = true;
            i += 1;
            ttl = TtlUpdate::Set(parse_expire_time(args.get(i), unit, base, "hsetex")?);
        } else if is(tok, "KEEPTTL") {
            if expiry_given {
                return Err(CmdError::other(ONE_EXPIRY));
            }
            expiry_given = true;
            ttl = TtlUpdate::Keep;
        } else if is(tok, "FXX") || is(tok, "FNX") {
            if cond != Cond::Always {
                return Err(CmdError::other(ONE_COND));
            }
            cond = if is(tok, "FXX") { Cond::Fxx } else { Cond::Fnx };
        } else {
            // Redis's `addReplyErrorFormat(c, "unknown argument: %s", ...)`: the client's
            // bytes up to a NUL, unchanged (not made valid UTF-8).
            return Err(error_quoting("ERR unknown argument: ", tok, ""));
        }
        i += 1;
    }
    // Unreachable with arity -6: four option tokens cannot all be valid without FIELDS.
    Err(arity())
}

fn hsetex(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let req = parse(args, now)?;
    let mut db = ctx.db();
    let key = args.get(1);
    let mut hash = if req.cond == Cond::Fxx {
        // FXX can never hold on a missing key, and must not create it.
        match db.get_mut(key, now) {
            Some(h) => h,
            None => {
                reply.int(0);
                return Ok(());
            }
        }
    } else {
        db.get_or_create(key, now)
    };
    let pairs = || (req.first..args.len()).step_by(2);
    // Expired fields are already reclaimed, so "exists" means "exists and is live".
    let holds = match req.cond {
        Cond::Always => true,
        Cond::Fnx => pairs().all(|i| hash.get(args.get(i)).is_none()),
        Cond::Fxx => pairs().all(|i| hash.get(args.get(i)).is_some()),
    };
    if !holds {
        // Dropping `hash` deletes the key if the reclaim emptied it.
        reply.int(0);
        return Ok(());
    }
    // Converted on the number of pairs given, repeated fields included, as HSET; with a
    // time a listpack becomes a listpackex, as HEXPIRE makes it (even a past time).
    hash.fit_pairs((args.len() - req.first) / 2);
    let past = matches!(req.ttl, TtlUpdate::Set(t) if t <= now);
    if matches!(req.ttl, TtlUpdate::Set(_)) {
        hash.mark_field_expiry();
    }
    for i in pairs() {
        let field = args.get(i);
        if past {
            // Written, then deleted at once: a time that is not in the future (Redis
            // reports `hset` then `hdel` for it, never `hexpire`).
            hash.set(field, args.get(i + 1), TtlUpdate::Clear);
            hash.remove(field);
        } else {
            hash.set(field, args.get(i + 1), req.ttl);
        }
    }
    reply.int(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::httl::test_util::{exists, expired_subkeys, ints, stored, table_after};
    use crate::cmd::testing::{TestEnv, T0_MS};
    use crate::cmd::OwnedArgs;

    const ARITY: &str = "-ERR wrong number of arguments for 'hsetex' command\r\n";
    const ONE_COND_ERR: &str = "-ERR Only one of FXX or FNX arguments can be specified\r\n";
    const ONE_EXPIRY_ERR: &str =
        "-ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified\r\n";
    const BAD_COUNT: &str = "-ERR invalid number of fields\r\n";

    #[test]
    fn table_entry() {
        let c = crate::cmd::table().get(b"hsetex").expect("hsetex");
        assert_eq!(c.arity, -6);
        assert_eq!(
            c.flags,
            crate::cmd::flags::WRITE | crate::cmd::flags::DENYOOM | crate::cmd::flags::FAST
        );
        assert_eq!((c.first_key, c.last_key, c.step), (1, 1, 1));
    }

    /// Redis 8's `addReplyErrorFormat(c, "unknown argument: %s", ...)` quotes the client's
    /// bytes as they are, up to a NUL; inner CR/LF become spaces, trailing ones go.
    #[test]
    fn unknown_argument_quotes_the_clients_bytes() {
        let mut env = TestEnv::new();
        let run = |env: &mut TestEnv, opt: &[u8]| {
            env.run_args(&[&b"HSETEX"[..], b"k", opt, b"FIELDS", b"1", b"a", b"b"])
        };
        assert_eq!(
            run(&mut env, b"b\xffd\x00x"),
            b"-ERR unknown argument: b\xffd\r\n"
        );
        assert_eq!(
            run(&mut env, "\u{e9}t\u{e9}".as_bytes()),
            "-ERR unknown argument: \u{e9}t\u{e9}\r\n".as_bytes()
        );
        assert_eq!(
            run(&mut env, b"\xc3\x28"),
            b"-ERR unknown argument: \xc3\x28\r\n"
        );
        assert_eq!(run(&mut env, b"x\r\ny"), b"-ERR unknown argument: x  y\r\n");
        assert_eq!(run(&mut env, b"x\r\n"), b"-ERR unknown argument: x\r\n");
        assert_eq!(env.run("EXISTS k"), ":0\r\n");
    }

    #[test]
    fn option_errors() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HSETEX k NX FIELDS 1 a b"),
            "-ERR unknown argument: NX\r\n"
        );
        assert_eq!(
            env.run("HSETEX k nx FIELDS 1 a b"),
            "-ERR unknown argument: nx\r\n"
        );
        assert_eq!(
            env.run("HSETEX k 1 FIELDS 1 a b"),
            "-ERR unknown argument: 1\r\n"
        );
        assert_eq!(env.run("HSETEX k FNX FXX FIELDS 1 a b"), ONE_COND_ERR);
        assert_eq!(env.run("HSETEX k FXX FXX FIELDS 1 a b"), ONE_COND_ERR);
        assert_eq!(env.run("HSETEX k EX 10 PX 10 FIELDS 1 a b"), ONE_EXPIRY_ERR);
        assert_eq!(env.run("HSETEX k EX 10 EX 10 FIELDS 1 a b"), ONE_EXPIRY_ERR);
        assert_eq!(
            env.run("HSETEX k KEEPTTL KEEPTTL FIELDS 1 a b"),
            ONE_EXPIRY_ERR
        );
        assert_eq!(
            env.run("HSETEX k EX 60 KEEPTTL FIELDS 1 a b"),
            ONE_EXPIRY_ERR
        );
        assert_eq!(
            env.run("HSETEX k KEEPTTL PXAT 1 FIELDS 1 a b"),
            ONE_EXPIRY_ERR
        );
        // The word after EX is taken as the time, whatever it is.
        assert_eq!(
            env.run("HSETEX k EX FIELDS 1 a b"),
            "-ERR value is not an integer or out of range\r\n"
        );
        // Errors come in argument order.
        assert_eq!(
            env.run("HSETEX k EX abc FNX FXX FIELDS 1 a b"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("HSETEX k FNX FXX EX abc FIELDS 1 a b"),
            ONE_COND_ERR
        );
        assert_eq!(
            env.run("HSETEX k bogus EX abc FIELDS 1 a b"),
            "-ERR unknown argument: bogus\r\n"
        );
        for opt in ["EX", "PX", "EXAT", "PXAT"] {
            assert_eq!(
                env.run(&format!("HSETEX k {opt} -1 FIELDS 1 a b")),
                "-ERR invalid expire time, must be >= 0\r\n"
            );
        }
        let too_big = "-ERR invalid expire time in 'hsetex' command\r\n";
        assert_eq!(env.run("HSETEX k EX 70368744178 FIELDS 1 a b"), too_big);
        assert_eq!(env.run("HSETEX k EXAT 70368744178 FIELDS 1 a b"), too_big);
        assert_eq!(
            env.run("HSETEX k PXAT 70368744177664 FIELDS 1 a b"),
            too_big
        );
        let room = crate::keyspace::MAX_FIELD_EXPIRE_MS - T0_MS;
        assert_eq!(
            env.run(&format!("HSETEX k PX {} FIELDS 1 a b", room + 1)),
            too_big
        );
        assert!(!exists(&env, "k"), "no error created the key");
        assert_eq!(
            env.run(&format!("HSETEX k PX {room} FIELDS 1 a b")),
            ":1\r\n"
        );
    }

    #[test]
    fn missing_expire_time() {
        // Unreachable through dispatch (arity -6 leaves no room), but the parser has it.
        let args = OwnedArgs::from_slices(&["HSETEX", "k", "FXX", "EX"]);
        assert_eq!(
            parse(args.as_args(), T0_MS).err(),
            Some(CmdError::other("ERR missing expire time"))
        );
        let args = OwnedArgs::from_slices(&["HSETEX", "k", "FXX", "EX", "10"]);
        assert!(parse(args.as_args(), T0_MS).is_err());
    }

    #[test]
    fn fields_count_errors() {
        let mut env = TestEnv::new();
        // Spec #22 and #23.
        assert_eq!(env.run("HSETEX k FIELDS 0 f v"), BAD_COUNT);
        for n in ["-1", "abc", "2147483648", "9223372036854775808"] {
            assert_eq!(
                env.run(&format!("HSETEX k FIELDS {n} f v")),
                BAD_COUNT,
                "{n}"
            );
        }
        assert_eq!(env.run("HSETEX k FIELDS 2 a b c"), ARITY);
        assert_eq!(env.run("hsetex k fields 1 a b unknown"), ARITY);
        assert_eq!(env.run("HSETEX k FIELDS 2 a b"), ARITY);
        assert_eq!(env.run("HSETEX k FIELDS 1 a"), ARITY);
        assert_eq!(env.run("HSETEX k EX 10 FIELDS 1 a"), ARITY);
        assert_eq!(
            env.run("HSETEX k FXX FIELDS 0 a"),
            ARITY,
            "too short is checked first"
        );
        assert!(!exists(&env, "k"));
    }

    #[test]
    fn plain_set_clears_ttls_and_answers_one() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HSETEX k FIELDS 2 a 1 b 2"), ":1\r\n");
        env.run("HEXPIRE k 100 FIELDS 2 a b");
        assert_eq!(env.run("HSETEX k FIELDS 2 a 10 c 3"), ":1\r\n");
        assert_eq!(env.run("HTTL k FIELDS 3 a b c"), ints(&[-1, 100, -1]));
        assert_eq!(env.run("HGET k a"), "$2\r\n10\r\n");
        // A repeated field: the last value wins.
        assert_eq!(env.run("HSETEX k FIELDS 2 d 1 d 2"), ":1\r\n");
        assert_eq!(env.run("HGET k d"), "$1\r\n2\r\n");
        env.resp3();
        assert_eq!(env.run("HSETEX k FIELDS 1 e 5"), ":1\r\n");
    }

    #[test]
    fn expiry_options() {
        let mut env = TestEnv::new();
        env.run("HSETEX k EX 60 FIELDS 1 a 1");
        env.run("HSETEX k PX 1500 FIELDS 1 b 2");
        let at_s = T0_MS / 1000 + 100;
        env.run(&format!("HSETEX k EXAT {at_s} FIELDS 1 c 3"));
        env.run(&format!("HSETEX k PXAT {} FIELDS 1 d 4", T0_MS + 7));
        assert_eq!(
            env.run("HPTTL k FIELDS 4 a b c d"),
            ints(&[60_000, 1500, 100_000, 7])
        );
        // KEEPTTL keeps existing TTLs; new fields get none.
        assert_eq!(env.run("HSETEX k KEEPTTL FIELDS 2 a x e 5"), ":1\r\n");
        assert_eq!(env.run("HPTTL k FIELDS 2 a e"), ints(&[60_000, -1]));
        assert_eq!(env.run("HGET k a"), "$1\r\nx\r\n");
        // A new TTL replaces the old one, longer or shorter.
        env.run("HSETEX k PX 10 FIELDS 2 a y e 6");
        assert_eq!(env.run("HPTTL k FIELDS 2 a e"), ints(&[10, 10]));
        // Options in any order.
        assert_eq!(env.run("HSETEX k PX 5000 FXX FIELDS 1 a z"), ":1\r\n");
        assert_eq!(env.run("HPTTL k FIELDS 1 a"), ints(&[5000]));
        assert_eq!(env.run("hsetex k fnx keepttl fields 1 new v"), ":1\r\n");
    }

    #[test]
    fn past_time_writes_then_deletes() {
        let mut env = TestEnv::new();
        env.run("HSET k keep v");
        assert_eq!(env.run("HSETEX k PX 0 FIELDS 2 a 1 keep 2"), ":1\r\n");
        assert!(!exists(&env, "k"), "the key goes with its last field");
        assert_eq!(env.run("HSETEX k EXAT 1 FIELDS 1 a 1"), ":1\r\n");
        assert!(!exists(&env, "k"), "a new key is not left behind");
        env.run("HSET k b 2");
        let now = env.now_ms();
        assert_eq!(
            env.run(&format!("HSETEX k PXAT {now} FIELDS 1 a 1")),
            ":1\r\n"
        );
        assert_eq!(stored(&env, "k"), Some(1));
        assert_eq!(env.run("HGET k a"), "$-1\r\n");
        assert_eq!(expired_subkeys(&env), 0);
    }

    #[test]
    fn fxx_and_fnx() {
        let mut env = TestEnv::new();
        // Bonus check: FXX on a missing key answers 0 and creates nothing.
        assert_eq!(env.run("HSETEX k FXX FIELDS 1 f v"), ":0\r\n");
        assert!(!exists(&env, "k"));
        assert_eq!(env.run("HSETEX k FXX EX 10 FIELDS 1 f v"), ":0\r\n");
        assert!(!exists(&env, "k"));
        // FNX on a missing key proceeds.
        assert_eq!(env.run("HSETEX k FNX FIELDS 2 a 1 b 2"), ":1\r\n");
        // FNX: any existing field fails the whole command.
        assert_eq!(env.run("HSETEX k FNX FIELDS 2 c 3 a 9"), ":0\r\n");
        assert_eq!(env.run("HGET k c"), "$-1\r\n");
        assert_eq!(env.run("HGET k a"), "$1\r\n1\r\n");
        // FXX: any missing field fails the whole command.
        assert_eq!(env.run("HSETEX k FXX FIELDS 2 a 9 c 3"), ":0\r\n");
        assert_eq!(env.run("HGET k a"), "$1\r\n1\r\n");
        assert_eq!(env.run("HSETEX k FXX PX 100 FIELDS 2 a 9 b 8"), ":1\r\n");
        assert_eq!(env.run("HPTTL k FIELDS 2 a b"), ints(&[100, 100]));
        // Expired fields do not exist for FNX/FXX.
        env.advance_ms(101);
        assert_eq!(env.run("HSETEX k FXX FIELDS 1 a 1"), ":0\r\n");
        assert!(
            !exists(&env, "k"),
            "FXX reclaimed the expired fields and the empty key"
        );
        env.run("HSETEX k PX 10 FIELDS 1 a 1");
        env.run("HSET k b 2");
        env.advance_ms(11);
        assert_eq!(env.run("HSETEX k FNX FIELDS 1 a 2"), ":1\r\n");
        assert_eq!(env.run("HPTTL k FIELDS 1 a"), ints(&[-1]));
        // FNX with a repeated new field writes it (the check precedes the writes).
        assert_eq!(env.run("HSETEX k FNX FIELDS 2 z 1 z 2"), ":1\r\n");
        assert_eq!(env.run("HGET k z"), "$1\r\n2\r\n");
        // FNX on a fully expired hash starts from an empty one; a failed FXX deletes it.
        env.run("HSETEX e PX 10 FIELDS 1 a 1");
        env.advance_ms(11);
        assert_eq!(env.run("HSETEX e FNX FIELDS 1 b 1"), ":1\r\n");
        env.run("HSETEX e PX 10 FIELDS 1 b 1");
        env.advance_ms(11);
        assert_eq!(env.run("HSETEX e FXX FIELDS 1 b 1"), ":0\r\n");
        assert!(!exists(&env, "e"));
    }

    #[test]
    fn table_encoded_hash() {
        let mut env = TestEnv::new();
        table_after(&env, 2);
        assert_eq!(env.run("HSETEX k PX 100 FIELDS 3 a 1 b 2 c 3"), ":1\r\n");
        assert_eq!(env.run("HSETEX k KEEPTTL FIELDS 2 a 9 d 4"), ":1\r\n");
        assert_eq!(
            env.run("HPTTL k FIELDS 4 a b c d"),
            ints(&[100, 100, 100, -1])
        );
        assert_eq!(env.run("HSETEX k PX 0 FIELDS 1 b 1"), ":1\r\n");
        assert_eq!(stored(&env, "k"), Some(3));
        // A long value converts a compact hash; that path must keep TTLs too.
        table_after(&env, 512);
        let long = "x".repeat(100);
        env.run("HSETEX s PX 50 FIELDS 1 a 1");
        assert_eq!(
            env.run(&format!("HSETEX s KEEPTTL FIELDS 1 a {long}")),
            ":1\r\n"
        );
        assert_eq!(env.run("HPTTL s FIELDS 1 a"), ints(&[50]));
    }

    #[test]
    fn watch_sees_writes_not_failed_conditions() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1");
        env.run("WATCH k");
        assert_eq!(env.run("HSETEX k FNX FIELDS 1 a 2"), ":0\r\n");
        env.run("MULTI");
        env.run("HSET k b 2");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
        env.run("WATCH k");
        env.run("HSETEX k FXX FIELDS 1 a 2");
        env.run("MULTI");
        env.run("HSET k b 3");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
    }
}
