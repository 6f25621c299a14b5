//! HPERSIST key FIELDS numfields field [field ...]

use super::httl::{fields_block, NO_FIELD, NO_TTL};
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hpersist", -5, hpersist)
    .flags(flags::WRITE | flags::FAST)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "7.4.0",
        "Removes the expiration time for each specified field",
        "O(N) where N is the number of specified fields",
        "key FIELDS numfields field [field ...]",
    )];

/// Per-field reply: the TTL was removed.
const PERSISTED: i64 = 1;

fn hpersist(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let first = fields_block(args, 2, CmdError::NumFieldsNotPositiveInteger, "hpersist")?;
    let now = ctx.now_ms;
    let key = args.get(1);
    let mut db = ctx.db();

    // Redis's HPERSIST never deletes expired fields (spec §5.4). Write access would reclaim
    // them, so take it only when some live field really has a TTL to remove; then the
    // reclaim cannot empty the hash, and it changes no answer.
    let has_work = db.get(key, now).is_some_and(|h| {
        args.from(first).any(|f| {
            h.get(f)
                .is_some_and(|f| f.expire_at.is_some() && !f.is_expired(now))
        })
    });
    reply.array(args.len() - first);
    if !has_work {
        let hash = db.get(key, now);
        for field in args.from(first) {
            let code = match hash.and_then(|h| h.get(field)) {
                Some(f) if !f.is_expired(now) => NO_TTL,
                _ => NO_FIELD,
            };
            reply.int(code);
        }
        return Ok(());
    }
    let Some(mut hash) = db.get_mut(key, now) else {
        // Unreachable: a live field was just seen under the same lock and the same "now".
        (first..args.len()).for_each(|_| reply.int(NO_FIELD));
        return Ok(());
    };
    for field in args.from(first) {
        let code = match hash.get(field).map(|f| f.expire_at) {
            None => NO_FIELD,
            Some(None) => NO_TTL,
            Some(Some(_)) => {
                hash.set_expire(field, None);
                PERSISTED
            }
        };
        reply.int(code);
    }
    Ok(())
}
