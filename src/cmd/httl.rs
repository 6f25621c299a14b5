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
