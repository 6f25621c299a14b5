//! HSETEX key [FNX | FXX] [EX seconds | PX milliseconds | EXAT unix-time-seconds |
//!   PXAT unix-time-milliseconds | KEEPTTL] FIELDS numfields field value [field value ...]

use super::hexpire::{parse_expire_time, Unit};
use super::parse::is;
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::TtlUpdate;
use crate::protocol::Reply;
use crate::protocol::parse_i64;

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
            if remaining % 2 != 0 || n != remaining / 2 {
                return Err(arity());
            }
            return Ok(Request {
                cond,
                ttl,
                first: i + 2,
            });
        }
        let timed = [
            ("EX", Unit::Seconds, now),
            ("PX", Unit::Millis, now),
            ("EXAT", Unit::Seconds, 0),
            ("PXAT", Unit::Millis, 0),
        ]
        .into_iter()
        .find(|(kw, _, _)| is(tok, kw));
        if let Some((_, unit, base)) = timed {
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
            // Redis formats the token with %s, which stops at a NUL byte.
            let shown = tok.split(|&b| b == 0).next().unwrap_or_default();
            let mut text = b"ERR unknown argument: ".to_vec();
            text.extend_from_slice(shown);
            return Err(CmdError::other(String::from_utf8_lossy(&text).into_owned()));
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
    let past = matches!(req.ttl, TtlUpdate::Set(t) if t <= now);
    for i in pairs() {
        let field = args.get(i);
        hash.set(field, args.get(i + 1), req.ttl);
        if past {
            // Written, then deleted at once: a time that is not in the future.
            hash.remove(field);
        }
    }
    reply.int(1);
    Ok(())
}
