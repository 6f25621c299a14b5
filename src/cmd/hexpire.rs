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
        [("NX", Cond::Nx), ("XX", Cond::Xx), ("GT", Cond::Gt), ("LT", Cond::Lt)]
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

fn hexpireat(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    hexpire_generic(ctx, args, reply, "hexpireat", Unit::Seconds, false)
}

fn hpexpireat(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    hexpire_generic(ctx, args, reply, "hpexpireat", Unit::Millis, false)
}
