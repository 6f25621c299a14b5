//! HGETDEL key FIELDS numfields field [field ...]

use super::httl::fields_block;
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hgetdel", -5, hgetdel)
    .flags(flags::WRITE | flags::FAST)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "8.0.0",
        "Returns the value of a field and deletes it from the hash.",
        "O(N) where N is the number of specified fields",
        "key FIELDS numfields field [field ...]",
    )];

fn hgetdel(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let first = fields_block(args, 2, CmdError::NumFieldsNotPositiveInteger, "hgetdel")?;
    let now = ctx.now_ms;
    reply.array(args.len() - first);
    let mut db = ctx.db();
    let Some(mut hash) = db.get_mut(args.get(1), now) else {
        (first..args.len()).for_each(|_| reply.null());
        return Ok(());
    };
    // Expired fields are already reclaimed, so every stored field is live. A field named
    // twice answers its value once, then null.
    for field in args.from(first) {
        match hash.get(field) {
            Some(f) => {
                reply.bulk(f.value);
                hash.remove(field);
            }
            None => reply.null(),
        }
    }
    // Dropping `hash` deletes the key if it is now empty.
    Ok(())
}
