//! HSET key field value [field value ...]
//! HMSET key field value [field value ...]
//! HSETNX key field value

use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::TtlUpdate;
use crate::protocol::Reply;
use smallvec::SmallVec;

const WRITE_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;

pub const COMMANDS: &[Command] = &[
    Command::new("hset", -4, hset)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Creates or modifies the value of a field in a hash.",
            "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
            "key field value [field value ...]",
        ),
    Command::new("hmset", -4, hmset)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Sets the values of multiple fields.",
            "O(N) where N is the number of fields being set.",
            "key field value [field value ...]",
        ),
    Command::new("hsetnx", 4, hsetnx)
        .flags(WRITE_FAST)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "2.0.0",
            "Sets the value of a field in a hash only when the field doesn't exist.",
            "O(1)",
            "key field value",
        ),
];

/// Writes the field/value pairs of HSET/HMSET; returns how many fields are new.
fn set_pairs(ctx: &mut Ctx<'_, '_>, args: Args<'_>, name: &str) -> Result<i64, CmdError> {
    // Odd pairs are an arity error, checked before the key is looked at (spec §6).
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(name.into()));
    }
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let mut hash = db.get_or_create(args.get(1), now);
    // Redis converts on the number of pairs given, repeated fields included.
    hash.fit_pairs((args.len() - 2) / 2);
    let pairs: SmallVec<[(&[u8], &[u8]); 16]> = (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    Ok(hash.set_pairs(&pairs) as i64)
}

fn hset(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let created = set_pairs(ctx, args, "hset")?;
    reply.int(created);
    Ok(())
}

fn hmset(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    set_pairs(ctx, args, "hmset")?;
    reply.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let mut hash = db.get_or_create(args.get(1), now);
    if hash.get(args.get(2)).is_some() {
        reply.int(0);
    } else {
        hash.set(args.get(2), args.get(3), TtlUpdate::Clear);
        reply.int(1);
    }
    Ok(())
}

/// Test helpers shared by the hash command tests: direct keyspace access for what the
/// field-expiration commands (another family) would otherwise set up or reveal.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::cmd::testing::TestEnv;
    use crate::keyspace::{EncodingLimits, LockPlan, TtlUpdate};

    /// Stores `field` = `value` with an absolute deadline (unix ms).
    pub fn set_with_deadline(env: &TestEnv, key: &str, field: &str, value: &str, at_ms: u64) {
        let mut locked = env.server.keyspace.lock(&LockPlan::Db(env.client.db));
        let mut db = locked.db(env.client.db);
        db.get_or_create(key.as_bytes(), env.now_ms()).set(
            field.as_bytes(),
            value.as_bytes(),
            TtlUpdate::Set(at_ms),
        );
    }

    /// The stored deadline of a field, expired or not: None if the key or field is not
    /// stored, Some(None) if the field has no TTL. Never reclaims anything.
    pub fn field_deadline(env: &TestEnv, key: &str, field: &str) -> Option<Option<u64>> {
        let mut locked = env.server.keyspace.lock(&LockPlan::Db(env.client.db));
        let mut db = locked.db(env.client.db);
        db.get(key.as_bytes(), env.now_ms())
            .and_then(|h| h.get(field.as_bytes()))
            .map(|f| f.expire_at)
    }

    /// Stored fields of a key (expired ones included), or None if nothing is stored.
    /// Reclaims nothing.
    pub fn stored_len(env: &TestEnv, key: &str) -> Option<usize> {
        env.server
            .keyspace
            .stored_len(env.client.db, key.as_bytes())
    }

    /// Makes every hash with at least one field use the table encoding.
    pub fn force_table(env: &TestEnv) {
        env.server.keyspace.set_limits(EncodingLimits {
            max_compact_entries: 0,
            max_compact_value: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{field_deadline, force_table, set_with_deadline, stored_len};
    use crate::cmd::testing::TestEnv;

    #[test]
    fn hset_counts_new_fields_only() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HSET bike:1 model Deimos brand Ergonom type 'Enduro bikes' price 4972"),
            ":4\r\n"
        );
        assert_eq!(env.run("HSET bike:1 model Deimos2 extra x"), ":1\r\n");
        assert_eq!(env.run("HSET k f a f b"), ":1\r\n");
        assert_eq!(env.run("HGET k f"), "$1\r\nb\r\n");
    }

    /// The order Redis 7.4.1 gives (checked against it): a repeated field keeps its first
    /// place, and a field whose TTL HSET clears moves to the end at its turn, after the
    /// new fields named before it.
    #[test]
    fn hset_keeps_redis_order_with_repeats_and_cleared_ttls() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HSET k a 1 b 2 a 3 c 4 b 5"), ":3\r\n");
        assert_eq!(
            env.run("HGETALL k"),
            "*6\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n5\r\n$1\r\nc\r\n$1\r\n4\r\n"
        );
        assert_eq!(env.run("HEXPIRE k 100 FIELDS 1 a"), "*1\r\n:1\r\n");
        assert_eq!(env.run("HSET k n 6 a 7 m 8"), ":2\r\n");
        assert_eq!(
            env.run("HKEYS k"),
            "*5\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nn\r\n$1\r\na\r\n$1\r\nm\r\n"
        );
        assert_eq!(env.run("HTTL k FIELDS 1 a"), "*1\r\n:-1\r\n");
    }

    #[test]
    fn odd_pairs_are_an_arity_error() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HSET k f1 v1 f2"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(
            env.run("HMSET k f1 v1 f2"),
            "-ERR wrong number of arguments for 'hmset' command\r\n"
        );
        assert_eq!(
            env.run("HSET k f"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(env.run("HGET k f1"), "$-1\r\n");
    }

    #[test]
    fn hmset_replies_ok() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HMSET k a 1 b 2"), "+OK\r\n");
        assert_eq!(env.run("HGET k b"), "$1\r\n2\r\n");
    }

    #[test]
    fn hsetnx_only_creates() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HSETNX k f x"), ":1\r\n");
        assert_eq!(env.run("HSETNX k f y"), ":0\r\n");
        assert_eq!(env.run("HGET k f"), "$1\r\nx\r\n");
    }

    #[test]
    fn binary_and_empty_values() {
        let mut env = TestEnv::new();
        assert_eq!(env.run_args(&[&b"HSET"[..], b"k", b"", b""]), b":1\r\n");
        assert_eq!(env.run_args(&[&b"HGET"[..], b"k", b""]), b"$0\r\n\r\n");
        assert_eq!(
            env.run_args(&[&b"HSET"[..], b"k\0\xff", b"f\r\n", b"\x00\x01"]),
            b":1\r\n"
        );
        assert_eq!(
            env.run_args(&[&b"HGET"[..], b"k\0\xff", b"f\r\n"]),
            b"$2\r\n\x00\x01\r\n"
        );
    }

    #[test]
    fn resp3_replies_are_the_same() {
        let mut env = TestEnv::new();
        env.resp3();
        assert_eq!(env.run("HSET k a 1 b 2"), ":2\r\n");
        assert_eq!(env.run("HMSET k a 1"), "+OK\r\n");
        assert_eq!(env.run("HSETNX k a 1"), ":0\r\n");
        assert_eq!(env.run("HSETNX k c 1"), ":1\r\n");
    }

    #[test]
    fn arity() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HSETNX k f"),
            "-ERR wrong number of arguments for 'hsetnx' command\r\n"
        );
        assert_eq!(
            env.run("HSETNX k f v x"),
            "-ERR wrong number of arguments for 'hsetnx' command\r\n"
        );
        assert_eq!(
            env.run("HMSET k f"),
            "-ERR wrong number of arguments for 'hmset' command\r\n"
        );
        assert_eq!(stored_len(&env, "k"), None);
    }

    #[test]
    fn hset_clears_a_field_ttl_and_hsetnx_keeps_it() {
        // Spec §15 #28 and §5.5.
        let mut env = TestEnv::new();
        let t = env.now_ms() + 100_000;
        set_with_deadline(&env, "k", "f", "v", t);
        set_with_deadline(&env, "k", "g", "v", t);
        assert_eq!(env.run("HSETNX k f other"), ":0\r\n");
        assert_eq!(field_deadline(&env, "k", "f"), Some(Some(t)));
        assert_eq!(env.run("HSET k f v2"), ":0\r\n");
        assert_eq!(field_deadline(&env, "k", "f"), Some(None));
        assert_eq!(env.run("HMSET k g v2"), "+OK\r\n");
        assert_eq!(field_deadline(&env, "k", "g"), Some(None));
    }

    #[test]
    fn expired_fields_count_as_absent_for_writes() {
        // Writers reclaim expired fields first, so an expired field is new again.
        let mut env = TestEnv::new();
        env.run("HSET k keep 1");
        set_with_deadline(&env, "k", "f", "old", env.now_ms() + 1);
        set_with_deadline(&env, "k", "g", "old", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HSET k f new"), ":1\r\n");
        assert_eq!(field_deadline(&env, "k", "f"), Some(None));
        assert_eq!(field_deadline(&env, "k", "g"), None);
        assert_eq!(env.run("HGET k f"), "$3\r\nnew\r\n");
    }

    #[test]
    fn hsetnx_recreates_a_key_whose_fields_all_expired() {
        let mut env = TestEnv::new();
        set_with_deadline(&env, "k", "f", "old", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(stored_len(&env, "k"), Some(1));
        assert_eq!(env.run("HSETNX k f new"), ":1\r\n");
        assert_eq!(field_deadline(&env, "k", "f"), Some(None));
        assert_eq!(env.run("HGETALL k"), "*2\r\n$1\r\nf\r\n$3\r\nnew\r\n");
    }

    #[test]
    fn large_values_switch_encoding_transparently() {
        let mut env = TestEnv::new();
        let big = "x".repeat(100);
        assert_eq!(env.run("HSET k a 1"), ":1\r\n");
        assert_eq!(env.run(&format!("HSET k b {big}")), ":1\r\n");
        assert_eq!(env.run("HGET k a"), "$1\r\n1\r\n");
        assert_eq!(env.run("HGET k b"), format!("$100\r\n{big}\r\n"));
        assert_eq!(env.run("HSET k a 2"), ":0\r\n");
        assert_eq!(env.run("HLEN k"), ":2\r\n");
    }

    #[test]
    fn many_fields_in_a_table() {
        let mut env = TestEnv::new();
        force_table(&env);
        for i in 0..600 {
            assert_eq!(env.run(&format!("HSET k f{i} v{i}")), ":1\r\n");
        }
        assert_eq!(env.run("HSET k f7 x f600 y"), ":1\r\n");
        assert_eq!(env.run("HGET k f7"), "$1\r\nx\r\n");
        assert_eq!(env.run("HSETNX k f8 z"), ":0\r\n");
        assert_eq!(stored_len(&env, "k"), Some(601));
    }

    /// Redis 7.4.1 converts on the number of pairs a command gives, repeated fields
    /// included (`hash-max-listpack-entries 1`, `HMSET k1 n a n b` → hashtable).
    #[test]
    fn listpack_limit_counts_the_pairs_given() {
        use crate::cmd::httl::test_util::{encoding, table_after};
        let mut env = TestEnv::new();
        table_after(&env, 1);
        assert_eq!(env.run("HMSET k1 n a n b"), "+OK\r\n");
        assert_eq!(env.run("HLEN k1"), ":1\r\n");
        assert_eq!(encoding(&env, "k1"), Some("hashtable"));
        env.run("HSET k2 a 1");
        env.run("HSET k2 a 2");
        assert_eq!(encoding(&env, "k2"), Some("listpack"));
        // HSETNX of a field that is there converts nothing, even past the limit.
        table_after(&env, 0);
        assert_eq!(env.run("HSETNX k2 a 3"), ":0\r\n");
        assert_eq!(encoding(&env, "k2"), Some("listpack"));
        table_after(&env, 2);
        env.run("HSET k3 a 1 b 2 a 2");
        assert_eq!(encoding(&env, "k3"), Some("hashtable"));
        env.run("HSETEX k4 FIELDS 3 a 1 a 2 a 3");
        assert_eq!(encoding(&env, "k4"), Some("hashtable"));
        env.run("HSETEX k5 FIELDS 2 a 1 a 2");
        assert_eq!(encoding(&env, "k5"), Some("listpack"));
    }
}
