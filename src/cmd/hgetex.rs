//! HGETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
//!   PXAT unix-time-milliseconds | PERSIST] FIELDS numfields field [field ...]

use super::hexpire::{parse_expire_time, Unit};
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
    let timed = [
        ("EX", Unit::Seconds, now),
        ("PX", Unit::Millis, now),
        ("EXAT", Unit::Seconds, 0),
        ("PXAT", Unit::Millis, 0),
    ]
    .into_iter()
    .find(|(kw, _, _)| is(opt, kw));
    let (then, fields_at) = match timed {
        Some((_, unit, base)) => {
            let t = parse_expire_time(args.get(3), unit, base, "hgetex")?;
            (Then::ExpireAt(t), 4)
        }
        None if is(opt, "PERSIST") => (Then::Persist, 3),
        None => (Then::Nothing, 2),
    };
    let first = fields_block(args, fields_at, CmdError::NumFieldsNotPositiveInteger, "hgetex")?;
    reply.array(args.len() - first);

    let mut db = ctx.db();
    let Some(mut hash) = db.get_mut(args.get(1), now) else {
        (first..args.len()).for_each(|_| reply.null());
        return Ok(());
    };
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
