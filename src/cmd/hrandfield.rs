//! HRANDFIELD key [count [WITHVALUES]]

use std::collections::HashSet;

use super::{flags, parse, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::{Encoding, FieldRef, HashValue};
use crate::protocol::{Protocol, Reply};

pub const COMMANDS: &[Command] = &[Command::new("hrandfield", -2, hrandfield)
    .flags(flags::READONLY)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "6.2.0",
        "Returns one or more random fields from a hash.",
        "O(N) where N is the number of fields returned",
        "key [count [WITHVALUES]]",
    )];

/// Largest negative count served. Redis has no limit and would build the reply until
/// memory runs out (`HRANDFIELD k -9223372036854775807`); hashd refuses past this with
/// Redis's own "value is out of range" rather than let one request exhaust the server.
const MAX_REPEATED_PICKS: u64 = 16 * 1024 * 1024;

/// Largest reply a negative count may build: the reply is assembled in memory before it is
/// sent, so its size, not only the count, is bounded (a 1 MB value picked 16M times would be
/// 16 TB). Refused with the same error as the count limit.
const MAX_REPLY_BYTES: u64 = 512 * 1024 * 1024;

/// The average reply bytes of one pick (the field, its value with WITHVALUES, framing).
fn pick_bytes(hash: &HashValue, with_values: bool) -> u64 {
    let len = hash.len().max(1) as u64;
    let payload: u64 = hash
        .iter()
        .map(|f| f.field.len() as u64 + if with_values { f.value.len() as u64 } else { 0 })
        .sum();
    payload / len + if with_values { 32 } else { 16 }
}

/// With WITHVALUES, |count| may not exceed `LONG_MAX / 2` (the reply holds 2 × count).
const MAX_COUNT_WITH_VALUES: i64 = i64::MAX / 2;

/// Every form first reclaims all expired fields of the hash (spec §5.4), which may delete
/// the key; that is why it takes write access.
fn hrandfield(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    // The count and options are checked before the key is looked up.
    let count = if args.len() >= 3 {
        let count = parse::int(args.get(2))?;
        if count == i64::MIN {
            return Err(parse::range_error(-i64::MAX, i64::MAX));
        }
        Some(count)
    } else {
        None
    };
    if args.len() > 4 || (args.len() == 4 && !parse::is(args.get(3), "withvalues")) {
        return Err(CmdError::Syntax);
    }
    let with_values = args.len() == 4;
    if let Some(count) = count {
        if with_values && !(-MAX_COUNT_WITH_VALUES..=MAX_COUNT_WITH_VALUES).contains(&count) {
            return Err(CmdError::OutOfRange);
        }
    }

    let now = ctx.now_ms;
    let db_index = ctx.client.db;
    let keeps_expired = ctx.server.replication.is_replica();
    let limits = ctx.server.keyspace.limits();
    let rng = &mut ctx.client.rng;
    let mut db = ctx.locked.db(db_index);
    let hash = db.get_mut(args.get(1), now);
    let Some(hash) = hash.as_deref() else {
        match count {
            None => reply.null(),
            Some(_) => reply.array(0),
        }
        return Ok(());
    };
    // A replica keeps expired fields until its master's HDEL: pick among a copy of the
    // live ones then (O(N), on replicas only, and only while some field is expired).
    let live_copy;
    let hash = if keeps_expired && hash.live_len(now) != hash.len() {
        live_copy = crate::keyspace::HashValue::from_fields(
            hash.iter()
                .filter(|f| !f.is_expired(now))
                .map(|f| (f.field, f.value, f.expire_at)),
            &limits,
        );
        &live_copy
    } else {
        hash
    };
    match count {
        None => match hash.random_field(rng) {
            Some(f) => reply.bulk(f.field),
            None => reply.null(),
        },
        Some(count) => {
            let shape = Shape {
                with_values,
                nested: reply.protocol() == Protocol::Resp3,
            };
            if count < 0 {
                let picks = count.unsigned_abs();
                if picks > MAX_REPEATED_PICKS
                    || picks.saturating_mul(pick_bytes(hash, with_values)) > MAX_REPLY_BYTES
                {
                    return Err(CmdError::OutOfRange);
                }
                with_repeats(hash, count.unsigned_abs(), shape, rng, reply);
            } else {
                distinct(hash, count as u64, shape, rng, reply);
            }
        }
    }
    Ok(())
}

/// How the picked fields are written.
#[derive(Clone, Copy)]
struct Shape {
    with_values: bool,
    /// RESP3 WITHVALUES: an array of `[field, value]` arrays instead of a flat array.
    nested: bool,
}

impl Shape {
    fn header(self, reply: &mut Reply<'_>, n: u64) {
        let flat = self.with_values && !self.nested;
        reply.array((if flat { n * 2 } else { n }) as usize);
    }

    fn write(self, reply: &mut Reply<'_>, f: FieldRef<'_>) {
        if self.with_values && self.nested {
            reply.array(2);
        }
        reply.bulk(f.field);
        if self.with_values {
            reply.bulk(f.value);
        }
    }
}

/// Negative count: exactly `n` fields, each drawn independently (repeats allowed).
fn with_repeats(
    hash: &HashValue,
    n: u64,
    shape: Shape,
    rng: &mut fastrand::Rng,
    reply: &mut Reply<'_>,
) {
    shape.header(reply, n);
    if hash.encoding() == Encoding::Hashtable {
        for _ in 0..n {
            if let Some(f) = hash.random_field(rng) {
                shape.write(reply, f);
            }
        }
    } else {
        // A compact hash finds a field by scanning; index it once instead.
        let fields: Vec<FieldRef<'_>> = hash.iter().collect();
        for _ in 0..n {
            shape.write(reply, fields[rng.usize(..fields.len())]);
        }
    }
}

/// Positive count: min(n, len) distinct fields; the whole hash in iteration order when
/// n covers it.
fn distinct(
    hash: &HashValue,
    n: u64,
    shape: Shape,
    rng: &mut fastrand::Rng,
    reply: &mut Reply<'_>,
) {
    let len = hash.len() as u64;
    if n >= len {
        shape.header(reply, len);
        hash.iter().for_each(|f| shape.write(reply, f));
        return;
    }
    shape.header(reply, n);
    if hash.encoding() != Encoding::Hashtable || n * 3 > len {
        // Selection sampling (Knuth's algorithm S): one pass, each n-subset equally
        // likely, emitted in iteration order.
        let mut wanted = n;
        let mut remaining = len;
        for f in hash.iter() {
            if wanted == 0 {
                break;
            }
            if rng.u64(..remaining) < wanted {
                shape.write(reply, f);
                wanted -= 1;
            }
            remaining -= 1;
        }
    } else {
        // Few fields out of many: draw at random and skip repeats. With n at most a third
        // of the hash, each draw is new with probability at least 2/3.
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(n as usize);
        while (seen.len() as u64) < n {
            let Some(f) = hash.random_field(rng) else {
                break;
            };
            if seen.insert(f.field) {
                shape.write(reply, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::cmd::hset::fixtures::{force_table, set_with_deadline, stored_len};
    use crate::cmd::testing::TestEnv;
    use crate::keyspace::LockPlan;

    /// Splits a flat RESP2 array of bulk strings into its elements.
    fn bulks(reply: &str) -> Vec<String> {
        let mut lines = reply.split("\r\n");
        let header = lines.next().unwrap_or_default();
        assert!(header.starts_with('*'), "not an array: {reply:?}");
        let n: usize = header[1..].parse().unwrap_or(0);
        let mut out = Vec::new();
        while out.len() < n {
            let len_line = lines.next().unwrap_or_default();
            assert!(len_line.starts_with('$'), "not a bulk: {reply:?}");
            out.push(lines.next().unwrap_or_default().to_string());
        }
        out
    }

    fn env_with(fields: usize, table: bool) -> TestEnv {
        let mut env = TestEnv::new();
        env.client.rng = fastrand::Rng::with_seed(42);
        if table {
            force_table(&env);
        }
        for i in 0..fields {
            env.run(&format!("HSET h f{i} v{i}"));
        }
        env
    }

    #[test]
    fn missing_key() {
        // Spec §15 #5.
        let mut env = TestEnv::new();
        assert_eq!(env.run("HRANDFIELD nokey"), "$-1\r\n");
        assert_eq!(env.run("HRANDFIELD nokey 5"), "*0\r\n");
        assert_eq!(env.run("HRANDFIELD nokey -5 WITHVALUES"), "*0\r\n");
        env.resp3();
        assert_eq!(env.run("HRANDFIELD nokey"), "_\r\n");
        assert_eq!(env.run("HRANDFIELD nokey 5"), "*0\r\n");
        assert_eq!(stored_len(&env, "nokey"), None);
    }

    #[test]
    fn argument_errors_in_order() {
        // Spec §15 #8; all checked before the key is looked up.
        let mut env = TestEnv::new();
        env.run("HSET h a 1");
        assert_eq!(
            env.run("HRANDFIELD h -9223372036854775808"),
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
        );
        for bad in ["x", "1.5", "+1", "9223372036854775808", "''"] {
            assert_eq!(
                env.run(&format!("HRANDFIELD nokey {bad} foo")),
                "-ERR value is not an integer or out of range\r\n",
                "{bad}"
            );
        }
        assert_eq!(env.run("HRANDFIELD h 1 foo"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("HRANDFIELD h 1 WITHVALUES x"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            env.run("HRANDFIELD nokey 4611686018427387904 WITHVALUES"),
            "-ERR value is out of range\r\n"
        );
        assert_eq!(
            env.run("HRANDFIELD nokey -4611686018427387904 withvalues"),
            "-ERR value is out of range\r\n"
        );
        assert_eq!(
            env.run("HRANDFIELD nokey 4611686018427387903 WithValues"),
            "*0\r\n"
        );
        assert_eq!(
            env.run("HRANDFIELD nokey -4611686018427387903 WITHVALUES"),
            "*0\r\n"
        );
        assert_eq!(
            env.run("HRANDFIELD h 9223372036854775807"),
            "*1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            env.run("HRANDFIELD"),
            "-ERR wrong number of arguments for 'hrandfield' command\r\n"
        );
    }

    #[test]
    fn count_zero_is_empty() {
        let mut env = env_with(3, false);
        assert_eq!(env.run("HRANDFIELD h 0"), "*0\r\n");
        assert_eq!(env.run("HRANDFIELD h 0 WITHVALUES"), "*0\r\n");
        env.resp3();
        assert_eq!(env.run("HRANDFIELD h 0 WITHVALUES"), "*0\r\n");
    }

    #[test]
    fn single_field_form() {
        let mut env = env_with(3, false);
        for _ in 0..20 {
            let r = env.run("HRANDFIELD h");
            assert!(
                ["$2\r\nf0\r\n", "$2\r\nf1\r\n", "$2\r\nf2\r\n"].contains(&r.as_str()),
                "{r}"
            );
        }
        env.resp3();
        assert!(env.run("HRANDFIELD h").starts_with("$2\r\nf"));
    }

    #[test]
    fn negative_count_is_bounded_by_reply_size() {
        let mut env = TestEnv::new();
        env.run_args(&[b"HSET".as_slice(), b"h", b"f", &vec![b'x'; 1000]]);
        assert_eq!(
            env.run("HRANDFIELD h -2000000 WITHVALUES"),
            "-ERR value is out of range\r\n"
        );
        assert!(env.run("HRANDFIELD h -2000000").starts_with("*2000000\r\n"));
    }

    #[test]
    fn absurd_negative_count_is_refused() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1");
        assert_eq!(
            env.run("HRANDFIELD h -9223372036854775807"),
            "-ERR value is out of range\r\n"
        );
        assert!(env.run("HRANDFIELD h -3").starts_with("*3\r\n"));
    }

    #[test]
    fn negative_count_repeats() {
        // Spec §15 #6.
        let mut env = env_with(0, false);
        env.run("HSET one f v");
        assert_eq!(
            env.run("HRANDFIELD one -5"),
            "*5\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n"
        );
        assert_eq!(
            env.run("HRANDFIELD one -2 WITHVALUES"),
            "*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        env.resp3();
        assert_eq!(
            env.run("HRANDFIELD one -2 WITHVALUES"),
            "*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
    }

    #[test]
    fn negative_count_draws_from_the_whole_hash() {
        for table in [false, true] {
            let mut env = env_with(5, table);
            let picks = bulks(&env.run("HRANDFIELD h -500 WITHVALUES"));
            assert_eq!(picks.len(), 1000);
            let mut seen = HashSet::new();
            for pair in picks.chunks(2) {
                assert_eq!(pair[0][1..], pair[1][1..], "value matches its field");
                seen.insert(pair[0].clone());
            }
            assert_eq!(seen.len(), 5, "every field drawn at some point");
        }
    }

    #[test]
    fn whole_hash_in_iteration_order_when_count_covers_it() {
        // Spec §15 #7.
        let mut env = TestEnv::new();
        env.run("HSET h f1 v1 f2 v2");
        assert_eq!(
            env.run("HRANDFIELD h 2 WITHVALUES"),
            "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"
        );
        assert_eq!(env.run("HRANDFIELD h 10"), "*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n");
        env.resp3();
        assert_eq!(
            env.run("HRANDFIELD h 2 WITHVALUES"),
            "*2\r\n*2\r\n$2\r\nf1\r\n$2\r\nv1\r\n*2\r\n$2\r\nf2\r\n$2\r\nv2\r\n"
        );
        assert_eq!(env.run("HRANDFIELD h 3"), "*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n");
    }

    #[test]
    fn resp3_pairs_appendix_b() {
        let mut env = TestEnv::new();
        env.run("HSET h f1 v1");
        assert_eq!(
            env.run("HRANDFIELD h 1 WITHVALUES"),
            "*2\r\n$2\r\nf1\r\n$2\r\nv1\r\n"
        );
        env.resp3();
        assert_eq!(
            env.run("HRANDFIELD h 1 WITHVALUES"),
            "*1\r\n*2\r\n$2\r\nf1\r\n$2\r\nv1\r\n"
        );
    }

    #[test]
    fn positive_count_is_distinct() {
        for (fields, table) in [(10, false), (10, true), (300, true), (300, false)] {
            let mut env = env_with(fields, table);
            for count in [1, 2, 3, 5, 9, 50, 99, 100, 101, 299] {
                if count >= fields {
                    continue;
                }
                for _ in 0..5 {
                    let picks = bulks(&env.run(&format!("HRANDFIELD h {count}")));
                    assert_eq!(picks.len(), count);
                    let unique: HashSet<_> = picks.iter().collect();
                    assert_eq!(unique.len(), count, "{fields} fields, count {count}");
                    assert!(picks.iter().all(|f| f.starts_with('f')));
                    let pairs = bulks(&env.run(&format!("HRANDFIELD h {count} WITHVALUES")));
                    assert_eq!(pairs.len(), 2 * count);
                    for pair in pairs.chunks(2) {
                        assert_eq!(pair[0][1..], pair[1][1..]);
                    }
                }
            }
        }
    }

    #[test]
    fn positive_count_covers_every_field_over_many_calls() {
        for table in [false, true] {
            let mut env = env_with(40, table);
            let mut seen = HashSet::new();
            for _ in 0..200 {
                seen.extend(bulks(&env.run("HRANDFIELD h 3")));
            }
            assert_eq!(seen.len(), 40);
        }
    }

    #[test]
    fn expired_fields_are_reclaimed_first() {
        let mut env = TestEnv::new();
        env.run("HSET h live 1");
        set_with_deadline(&env, "h", "dead", "x", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(stored_len(&env, "h"), Some(2));
        assert_eq!(
            env.run("HRANDFIELD h -3"),
            "*3\r\n$4\r\nlive\r\n$4\r\nlive\r\n$4\r\nlive\r\n"
        );
        assert_eq!(stored_len(&env, "h"), Some(1));
        assert_eq!(env.run("HRANDFIELD h 5"), "*1\r\n$4\r\nlive\r\n");
    }

    #[test]
    fn a_hash_that_empties_on_reclaim_answers_empty_and_is_deleted() {
        let mut env = TestEnv::new();
        set_with_deadline(&env, "a", "f", "v", env.now_ms() + 1);
        set_with_deadline(&env, "b", "f", "v", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HRANDFIELD a"), "$-1\r\n");
        assert_eq!(stored_len(&env, "a"), None);
        env.resp3();
        assert_eq!(env.run("HRANDFIELD b -3 WITHVALUES"), "*0\r\n");
        assert_eq!(stored_len(&env, "b"), None);
    }

    /// The sweeper does not shrink a table while it is still reclaiming from it, but
    /// HRANDFIELD, which probes random buckets, reclaims what is due first: the drain ends
    /// and the table shrinks before the first pick.
    #[test]
    fn a_table_swept_part_way_is_shrunk_before_random_picks() {
        let mut env = TestEnv::new();
        let due = env.now_ms() + 1;
        for i in 0..5000 {
            set_with_deadline(&env, "big", &format!("f{i}"), "v", due);
        }
        env.run("HSET big live 1");
        env.advance_ms(2);
        let heap = |env: &TestEnv| {
            let mut locked = env.server.keyspace.lock(&LockPlan::Db(0));
            let mut db = locked.db(0);
            db.get(b"big", env.now_ms()).map(|h| h.heap_bytes())
        };
        let shard = env.server.keyspace.shard_of(b"big");
        let now = env.now_ms();
        let (swept, _) = env.server.keyspace.sweep_shard(0, shard, now, 4000);
        assert_eq!(swept.fields, 4000);
        assert!(swept.more_due);
        let before = heap(&env).expect("hash");
        assert_eq!(
            env.run("HRANDFIELD big -2"),
            "*2\r\n$4\r\nlive\r\n$4\r\nlive\r\n"
        );
        assert_eq!(stored_len(&env, "big"), Some(1));
        let after = heap(&env).expect("hash");
        assert!(after * 10 < before, "shrunk: {before} -> {after} bytes");
    }
}
