//! HGET key field
//! (HMGET, HGETALL, HKEYS, HVALS, HLEN, HEXISTS, HSTRLEN: to do)

use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hget", 3, hget)
    .flags(flags::READONLY | flags::FAST)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "2.0.0",
        "Returns the value of a field in a hash.",
        "O(1)",
        "key field",
    )];

/// Lazily expired fields are deleted (spec §5.4), so HGET takes write access to the hash.
fn hget(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    match db
        .get_mut(args.get(1), now)
        .as_deref()
        .and_then(|h| h.get_live(args.get(2), now))
    {
        Some(v) => reply.bulk(v),
        None => reply.null(),
    }
    Ok(())
}
