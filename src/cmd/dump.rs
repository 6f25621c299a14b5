//! DUMP key
//! RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
//!
//! A hash's value in Redis's DUMP format (formats.md §1.10): its RDB encoding, the RDB
//! version and a CRC64, built and checked by [`crate::persist::rdb`]. Field TTLs travel in
//! the payload as absolute deadlines; the key's own TTL does not (RESTORE's `ttl` sets it).
//!
//! Where hashd answers differently from Redis 7.4, and why:
//!
//! * A payload holding a value of another type (a string, a list …) is refused with
//!   `ERR Bad data format`. Redis would create that key; hashd serves only hashes, and this
//!   is the answer Redis gives for a payload it cannot turn into a value of its own.
//! * Fields whose deadline has already passed are not stored. Redis 7.4 loads them and lets
//!   them expire at once; nothing can read them either way. A payload that holds nothing
//!   else creates no key (with REPLACE the old key is still deleted) and answers OK, as a
//!   hash with no live field does not exist in hashd.
//! * IDLETIME and FREQ are validated exactly as in Redis and then ignored: hashd keeps no
//!   LRU or LFU clock, so OBJECT IDLETIME / OBJECT FREQ answer as they do for any key.
//! * The CRC is always checked, as in Redis 7.4 (Redis 8 also accepts an all-zero CRC).

use super::{flags, parse, Args, Command, Ctx};
use crate::error::CmdError;
use crate::keyspace::HashValue;
use crate::persist::rdb::{dump_payload, parse_dump_payload, RdbField};
use crate::protocol::Reply;

/// `O(N*M)` text shared by both commands' complexity, as Redis's docs give it.
const DUMP_COMPLEXITY: &str = "O(1) to access the key and additional O(N*M) to serialize it, \
where N is the number of Redis objects composing the value and M their average size. For \
small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).";

const RESTORE_COMPLEXITY: &str = "O(1) to create the new key and additional O(N*M) to \
reconstruct the serialized value, where N is the number of Redis objects composing the value \
and M their average size. For small string values the time complexity is thus O(1)+O(1*M) \
where M is small, so simply O(1). However for sorted set values the complexity is \
O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).";

pub const COMMANDS: &[Command] = &[
    Command::new("dump", 2, dump)
        .flags(flags::READONLY)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "2.6.0",
            "Returns a serialized representation of the value stored at a key.",
            DUMP_COMPLEXITY,
            "key",
        ),
    Command::new("restore", -4, restore)
        .flags(flags::WRITE | flags::DENYOOM)
        .keys(1, 1, 1)
        .acl(&["dangerous"])
        .doc(
            "generic",
            "2.6.0",
            "Creates a key from the serialized representation of a value.",
            RESTORE_COMPLEXITY,
            "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]",
        ),
];

/// Redis's `strcasecmp` on an argument: the bytes up to the first NUL against `keyword`.
fn is_keyword(arg: &[u8], keyword: &str) -> bool {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    parse::is(&arg[..end], keyword)
}

/// DUMP: nil for a missing key, else the live fields (expired ones skipped) as a payload,
/// compressed as with Redis's default `rdbcompression yes`.
fn dump(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let Some(value) = db.get(args.get(1), now) else {
        reply.null();
        return Ok(());
    };
    let fields: Vec<RdbField> = value
        .iter()
        .filter(|f| !f.is_expired(now))
        .map(|f| RdbField {
            field: f.field.to_vec(),
            value: f.value.to_vec(),
            expire_ms: f.expire_at,
        })
        .collect();
    if fields.is_empty() {
        // `get` reports a hash with no live field missing; this is only a safety net.
        reply.null();
        return Ok(());
    }
    // Fails only on data no stored hash holds (no field, a deadline past 2^48 − 1 ms).
    let payload =
        dump_payload(&fields, true).map_err(|e| CmdError::other(format!("ERR DUMP {e}")))?;
    reply.bulk(&payload);
    Ok(())
}

/// RESTORE's options, parsed as `restoreCommand` does: left to right, repeats allowed,
/// IDLETIME and FREQ exclusive (the second one given is a syntax error), a missing value
/// a syntax error.
#[derive(Debug, Default)]
struct RestoreOptions {
    replace: bool,
    absttl: bool,
}

impl RestoreOptions {
    fn parse(args: Args<'_>) -> Result<Self, CmdError> {
        let mut o = RestoreOptions::default();
        let (mut idletime, mut freq) = (false, false);
        let mut j = 4;
        while j < args.len() {
            let arg = args.get(j);
            let has_value = j + 1 < args.len();
            if is_keyword(arg, "replace") {
                o.replace = true;
            } else if is_keyword(arg, "absttl") {
                o.absttl = true;
            } else if is_keyword(arg, "idletime") && has_value && !freq {
                if parse::int(args.get(j + 1))? < 0 {
                    return Err(CmdError::other("ERR Invalid IDLETIME value, must be >= 0"));
                }
                idletime = true;
                j += 1;
            } else if is_keyword(arg, "freq") && has_value && !idletime {
                if !(0..=255).contains(&parse::int(args.get(j + 1))?) {
                    return Err(CmdError::other(
                        "ERR Invalid FREQ value, must be >= 0 and <= 255",
                    ));
                }
                freq = true;
                j += 1;
            } else {
                return Err(CmdError::Syntax);
            }
            j += 1;
        }
        Ok(o)
    }
}

/// RESTORE, in `restoreCommand`'s order: options, BUSYKEY, the TTL, the payload's version
/// and CRC, its contents; only then is anything changed. `ttl` 0 means no TTL; otherwise
/// it is milliseconds from now, or a unix-ms deadline with ABSTTL. A deadline at or before
/// now (Redis's `checkAlreadyExpired`; relative TTLs wrap past i64::MAX as Redis's C
/// addition does) creates nothing: with REPLACE the old key is deleted, and the answer is
/// OK either way.
fn restore(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let opts = RestoreOptions::parse(args)?;
    let key = args.get(1);
    let now = ctx.now_ms;
    if !opts.replace && ctx.db().exists(key, now) {
        return Err(CmdError::other("BUSYKEY Target key name already exists."));
    }
    let ttl = parse::int(args.get(2))?;
    if ttl < 0 {
        return Err(CmdError::other("ERR Invalid TTL value, must be >= 0"));
    }
    let fields = parse_dump_payload(args.get(3)).map_err(|e| CmdError::other(e.to_string()))?;

    let now_i = i64::try_from(now).unwrap_or(i64::MAX);
    let deadline = match ttl {
        0 => None,
        t if opts.absttl => Some(t),
        t => Some(t.wrapping_add(now_i)),
    };
    let value = match deadline {
        Some(d) if d <= now_i => None,
        _ => {
            let limits = ctx.server.keyspace.limits();
            // Live as every read sees it: a field expires once its deadline is before now.
            let live = fields
                .iter()
                .filter(|f| f.expire_ms.is_none_or(|t| t >= now));
            let value = HashValue::from_fields(
                live.map(|f| (&f.field[..], &f.value[..], f.expire_ms)),
                &limits,
            );
            (!value.is_empty()).then_some(value)
        }
    };
    let mut db = ctx.db();
    match value {
        // `deadline` is past `now` here, so positive.
        Some(value) => {
            db.restore(key, value, deadline.map(|d| d as u64), opts.replace, now);
        }
        None if opts.replace => {
            db.delete(key, now);
        }
        None => {}
    }
    reply.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::cmd::httl::test_util::{encoding, exists, table_after};
    use crate::cmd::testing::{TestEnv, T0_MS};
    use crate::keyspace::LockPlan;
    use crate::persist::rdb::{crc64, parse_dump_payload};

    type Stored = BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>;

    /// Every stored field of `key` in db 0 (name → value, deadline); None if missing.
    fn fields_of(env: &TestEnv, key: &[u8]) -> Option<Stored> {
        let now = env.now_ms();
        let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        let fields = db.get(key, now).map(|h| {
            h.iter()
                .map(|f| (f.field.to_vec(), (f.value.to_vec(), f.expire_at)))
                .collect()
        });
        fields
    }

    /// The payload of a DUMP reply.
    fn dumped(env: &mut TestEnv, key: &[u8]) -> Vec<u8> {
        let out = env.run_args(&[&b"DUMP"[..], key]);
        assert_eq!(
            out[0],
            b'$',
            "DUMP reply {:?}",
            String::from_utf8_lossy(&out)
        );
        let nl = out.iter().position(|&b| b == b'\n').unwrap();
        let n: usize = std::str::from_utf8(&out[1..nl - 1])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(out.len(), nl + 1 + n + 2);
        out[nl + 1..nl + 1 + n].to_vec()
    }

    fn restore(env: &mut TestEnv, key: &[u8], ttl: &str, payload: &[u8], opts: &[&str]) -> String {
        let mut args: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), payload];
        args.extend(opts.iter().map(|o| o.as_bytes()));
        String::from_utf8_lossy(&env.run_args(&args)).into_owned()
    }

    /// A payload from a raw value encoding, with a correct footer.
    fn payload_of(body: &[u8], version: u16) -> Vec<u8> {
        let mut p = body.to_vec();
        p.extend_from_slice(&version.to_le_bytes());
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    #[test]
    fn table_entries() {
        let t = crate::cmd::table();
        let d = t.get(b"dump").expect("dump");
        assert_eq!(d.arity, 2);
        assert_eq!(d.flags, crate::cmd::flags::READONLY);
        assert_eq!((d.first_key, d.last_key, d.step), (1, 1, 1));
        assert_eq!(
            crate::cmd::command::categories(d),
            ["keyspace", "read", "slow"]
        );
        let r = t.get(b"restore").expect("restore");
        assert_eq!(r.arity, -4);
        assert_eq!(
            r.flags,
            crate::cmd::flags::WRITE | crate::cmd::flags::DENYOOM
        );
        assert_eq!((r.first_key, r.last_key, r.step), (1, 1, 1));
        assert_eq!(
            crate::cmd::command::categories(r),
            ["keyspace", "write", "slow", "dangerous"]
        );
    }

    #[test]
    fn dump_of_a_missing_key_is_nil() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("DUMP nokey"), "$-1\r\n");
        env.resp3();
        assert_eq!(env.run("DUMP nokey"), "_\r\n");
        assert_eq!(
            env.run("DUMP"),
            "-ERR wrong number of arguments for 'dump' command\r\n"
        );
        assert_eq!(
            env.run("RESTORE k 0"),
            "-ERR wrong number of arguments for 'restore' command\r\n"
        );
    }

    #[test]
    fn dump_skips_expired_fields_and_a_gone_hash() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2");
        env.run("HPEXPIRE h 5 FIELDS 1 a");
        env.advance_ms(10);
        let fields = parse_dump_payload(&dumped(&mut env, b"h")).unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(
            (&fields[0].field[..], &fields[0].value[..]),
            (&b"b"[..], &b"2"[..])
        );
        env.run("HPEXPIRE h 5 FIELDS 1 b");
        env.advance_ms(10);
        assert_eq!(env.run("DUMP h"), "$-1\r\n");
    }

    #[test]
    fn round_trip_compact_with_field_and_key_ttls() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2 c 3");
        env.run("HPEXPIRE h 5000 FIELDS 1 a");
        env.run("HPEXPIREAT h 4102444800000 FIELDS 1 c");
        env.run("PEXPIRE h 10000");
        let p = dumped(&mut env, b"h");
        assert_eq!(p[0], 24, "a hash with field TTLs is RDB_TYPE_HASH_METADATA");
        assert_eq!(restore(&mut env, b"h2", "7000", &p, &[]), "+OK\r\n");
        assert_eq!(fields_of(&env, b"h2"), fields_of(&env, b"h"));
        // The fields with a TTL first, by deadline, as in h (and Redis's listpackex).
        assert_eq!(env.run("HGETALL h2"), env.run("HGETALL h"));
        assert_eq!(
            env.run("HGETALL h2"),
            "*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            env.run("HPEXPIRETIME h2 FIELDS 3 a b c"),
            format!("*3\r\n:{}\r\n:-1\r\n:4102444800000\r\n", T0_MS + 5000)
        );
        assert_eq!(env.run("PTTL h2"), ":7000\r\n");
        assert_eq!(encoding(&env, "h2"), Some("listpackex"));
        env.resp3();
        assert_eq!(
            env.run("HGETALL h2"),
            "%3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        // Without a ttl the key has none, and the field TTLs still run.
        assert_eq!(restore(&mut env, b"h3", "0", &p, &[]), "+OK\r\n");
        assert_eq!(env.run("PTTL h3"), ":-1\r\n");
        env.advance_ms(5001);
        assert_eq!(env.run("HLEN h3"), ":2\r\n");
    }

    #[test]
    fn round_trip_table_with_field_ttls() {
        let mut env = TestEnv::new();
        table_after(&env, 4);
        env.run("HSET t a 1 b 2 c 3 d 4 e 5 f 6");
        env.run("HPEXPIRE t 3000 FIELDS 2 b e");
        let long = "x".repeat(200);
        env.run(&format!("HSET t long {long}"));
        assert_eq!(encoding(&env, "t"), Some("hashtable"));
        let p = dumped(&mut env, b"t");
        assert_eq!(restore(&mut env, b"t2", "0", &p, &[]), "+OK\r\n");
        assert_eq!(fields_of(&env, b"t2"), fields_of(&env, b"t"));
        assert_eq!(encoding(&env, "t2"), Some("hashtable"));
        assert_eq!(
            env.run("HPEXPIRETIME t2 FIELDS 3 a b e"),
            format!("*3\r\n:-1\r\n:{0}\r\n:{0}\r\n", T0_MS + 3000)
        );
        assert_eq!(env.run("PTTL t2"), ":-1\r\n");
        // Without field TTLs the payload is a plain RDB_TYPE_HASH.
        env.run("HSET plain k v");
        assert_eq!(dumped(&mut env, b"plain")[0], 4);
        env.server.keyspace.check_invariants().unwrap();
    }

    #[test]
    fn busykey_replace_and_absttl() {
        let mut env = TestEnv::new();
        env.run("HSET src f v");
        let p = dumped(&mut env, b"src");
        env.run("HSET dst old 1");
        assert_eq!(
            restore(&mut env, b"dst", "0", &p, &[]),
            "-BUSYKEY Target key name already exists.\r\n"
        );
        assert_eq!(env.run("HGET dst old"), "$1\r\n1\r\n");
        assert_eq!(restore(&mut env, b"dst", "0", &p, &["replace"]), "+OK\r\n");
        assert_eq!(env.run("HGETALL dst"), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
        // REPLACE drops the old key's TTL along with its value.
        env.run("PEXPIRE dst 100");
        assert_eq!(restore(&mut env, b"dst", "0", &p, &["REPLACE"]), "+OK\r\n");
        assert_eq!(env.run("PTTL dst"), ":-1\r\n");
        let at = (T0_MS + 60_000).to_string();
        assert_eq!(
            restore(&mut env, b"abs", &at, &p, &["ABSTTL", "absttl"]),
            "+OK\r\n"
        );
        assert_eq!(env.run("PEXPIRETIME abs"), format!(":{at}\r\n"));
        assert_eq!(env.run("PTTL abs"), ":60000\r\n");
        // A key whose TTL passed is gone, so it is no BUSYKEY.
        env.run("PEXPIRE abs 5");
        env.advance_ms(6);
        assert_eq!(restore(&mut env, b"abs", "0", &p, &[]), "+OK\r\n");
        assert_eq!(env.run("PTTL abs"), ":-1\r\n");
        env.server.keyspace.check_invariants().unwrap();
    }

    #[test]
    fn a_deadline_already_past_creates_nothing() {
        let mut env = TestEnv::new();
        env.run("HSET src f v");
        let p = dumped(&mut env, b"src");
        let now = T0_MS.to_string();
        let past = (T0_MS - 1).to_string();
        // No key, nothing created.
        assert_eq!(restore(&mut env, b"k", &past, &p, &["ABSTTL"]), "+OK\r\n");
        assert!(!exists(&env, "k"));
        // At "now" counts as past (checkAlreadyExpired is <=).
        assert_eq!(restore(&mut env, b"k", &now, &p, &["ABSTTL"]), "+OK\r\n");
        assert!(!exists(&env, "k"));
        // A relative TTL that wraps past i64::MAX lands in the past, as in Redis.
        assert_eq!(
            restore(&mut env, b"k", "9223372036854775807", &p, &[]),
            "+OK\r\n"
        );
        assert!(!exists(&env, "k"));
        // An existing key without REPLACE: BUSYKEY comes first.
        env.run("HSET k old 1");
        assert_eq!(
            restore(&mut env, b"k", &past, &p, &["ABSTTL"]),
            "-BUSYKEY Target key name already exists.\r\n"
        );
        assert!(exists(&env, "k"));
        // With REPLACE the old key is deleted and nothing replaces it.
        env.run("WATCH k");
        assert_eq!(
            restore(&mut env, b"k", "1", &p, &["ABSTTL", "REPLACE"]),
            "+OK\r\n"
        );
        assert!(!exists(&env, "k"));
        env.run("MULTI");
        env.run("PING");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        // A large absolute deadline is kept as given.
        assert_eq!(
            restore(&mut env, b"far", "9223372036854775807", &p, &["ABSTTL"]),
            "+OK\r\n"
        );
        assert_eq!(env.run("PEXPIRETIME far"), ":9223372036854775807\r\n");
    }

    #[test]
    fn expired_fields_in_the_payload_are_dropped() {
        let mut env = TestEnv::new();
        env.run("HSET h a 1 b 2");
        env.run("HPEXPIRE h 100 FIELDS 1 a");
        let both = dumped(&mut env, b"h");
        env.run("HPEXPIRE h 100 FIELDS 1 b");
        let only_ttls = dumped(&mut env, b"h");
        env.advance_ms(101);
        assert_eq!(restore(&mut env, b"r", "0", &both, &[]), "+OK\r\n");
        assert_eq!(env.run("HGETALL r"), "*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
        assert_eq!(env.server.keyspace.stored_len(0, b"r"), Some(1));
        // Nothing live: no key, OK; REPLACE still deletes the old one.
        assert_eq!(restore(&mut env, b"none", "0", &only_ttls, &[]), "+OK\r\n");
        assert!(!exists(&env, "none"));
        assert_eq!(
            restore(&mut env, b"r", "0", &only_ttls, &["REPLACE"]),
            "+OK\r\n"
        );
        assert!(!exists(&env, "r"));
        env.server.keyspace.check_invariants().unwrap();
    }

    #[test]
    fn option_errors_in_redis_order() {
        let mut env = TestEnv::new();
        env.run("HSET src f v");
        let p = dumped(&mut env, b"src");
        let syntax = "-ERR syntax error\r\n";
        for opts in [
            &["foo"][..],
            &["IDLETIME"],
            &["FREQ"],
            &["IDLETIME", "1", "FREQ", "1"],
            &["FREQ", "1", "IDLETIME", "1"],
            &["REPLACE", "ABSTTL", "x"],
        ] {
            assert_eq!(restore(&mut env, b"src", "0", &p, opts), syntax, "{opts:?}");
        }
        assert_eq!(
            restore(&mut env, b"k", "0", &p, &["IDLETIME", "-1"]),
            "-ERR Invalid IDLETIME value, must be >= 0\r\n"
        );
        assert_eq!(
            restore(&mut env, b"k", "0", &p, &["IDLETIME", "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        for f in ["-1", "256"] {
            assert_eq!(
                restore(&mut env, b"k", "0", &p, &["FREQ", f]),
                "-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n"
            );
        }
        assert_eq!(
            restore(&mut env, b"k", "0", &p, &["FREQ", "1.5"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert!(!exists(&env, "k"));
        // Repeats are fine; the values are accepted and have no effect.
        assert_eq!(
            restore(
                &mut env,
                b"k",
                "0",
                &p,
                &["IDLETIME", "0", "idletime", "100", "REPLACE"]
            ),
            "+OK\r\n"
        );
        assert_eq!(
            restore(&mut env, b"k2", "0", &p, &["freq", "255", "FREQ", "0"]),
            "+OK\r\n"
        );
        assert_eq!(env.run("HGET k2 f"), "$1\r\nv\r\n");
        // Options are checked before BUSYKEY, BUSYKEY before the TTL, the TTL before the
        // payload.
        assert_eq!(restore(&mut env, b"src", "0", &p, &["nope"]), syntax);
        assert_eq!(
            restore(&mut env, b"src", "abc", b"junk", &[]),
            "-BUSYKEY Target key name already exists.\r\n"
        );
        assert_eq!(
            restore(&mut env, b"new", "-1", b"junk", &[]),
            "-ERR Invalid TTL value, must be >= 0\r\n"
        );
        for ttl in ["abc", "1.5", "9223372036854775808", ""] {
            assert_eq!(
                restore(&mut env, b"new", ttl, b"junk", &[]),
                "-ERR value is not an integer or out of range\r\n"
            );
        }
        assert!(!exists(&env, "new"));
    }

    #[test]
    fn bad_payloads() {
        let mut env = TestEnv::new();
        env.run("HSET src f v g w");
        let p = dumped(&mut env, b"src");
        let checksum = "-ERR DUMP payload version or checksum are wrong\r\n";
        let bad = "-ERR Bad data format\r\n";
        // A flipped byte anywhere breaks the CRC.
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 0x20;
            let r = restore(&mut env, b"k", "0", &q, &[]);
            // A flip in the version's high byte is "newer than ours": the same reply.
            assert_eq!(r, checksum, "byte {i}");
        }
        // Short payloads, including shorter than the 10-byte footer.
        for n in [0, 1, 9, 10, p.len() - 1] {
            assert_eq!(restore(&mut env, b"k", "0", &p[..n], &[]), checksum, "{n}");
        }
        // A newer RDB version with a correct CRC.
        let body = &p[..p.len() - 10];
        assert_eq!(
            restore(&mut env, b"k", "0", &payload_of(body, 13), &[]),
            checksum
        );
        // Well-formed footer, broken value: truncated, garbage, an empty hash.
        assert_eq!(
            restore(
                &mut env,
                b"k",
                "0",
                &payload_of(&body[..body.len() - 1], 12),
                &[]
            ),
            bad
        );
        assert_eq!(
            restore(&mut env, b"k", "0", &payload_of(b"\xee\x01\x02", 12), &[]),
            bad
        );
        assert_eq!(
            restore(&mut env, b"k", "0", &payload_of(b"\x04\x00", 12), &[]),
            bad
        );
        // A string value (type 0) is not a hash: Bad data format, REPLACE keeps the old key.
        let string = payload_of(b"\x00\x03foo", 11);
        assert_eq!(restore(&mut env, b"src", "0", &string, &["REPLACE"]), bad);
        assert_eq!(env.run("HLEN src"), ":2\r\n");
        // An older version is accepted.
        assert_eq!(
            restore(&mut env, b"old", "0", &payload_of(body, 9), &[]),
            "+OK\r\n"
        );
        assert_eq!(env.run("HLEN old"), ":2\r\n");
        assert!(!exists(&env, "k"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The fixtures write non-UTF-8 bytes as latin-1 code points.
    fn latin1(s: &str) -> Vec<u8> {
        s.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect()
    }

    #[test]
    fn every_redis_fixture_restores_to_its_fields() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/redis/dump");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut keys = 0;
        for path in &paths {
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            for (name, k) in json["keys"].as_object().unwrap() {
                let what = format!("{}: {name}", path.display());
                let payload = hex(k["payload_hex"].as_str().unwrap());
                let expires = k["field_expire_ms"].as_object().unwrap();
                let want: Stored = k["fields"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(f, v)| {
                        let t = expires.get(f).map(|t| t.as_u64().unwrap());
                        (latin1(f), (latin1(v.as_str().unwrap()), t))
                    })
                    .collect();
                let mut env = TestEnv::new();
                let key = latin1(name);
                assert_eq!(
                    restore(&mut env, &key, "0", &payload, &[]),
                    "+OK\r\n",
                    "{what}"
                );
                assert_eq!(fields_of(&env, &key), Some(want.clone()), "{what}");
                let enc = k["encoding"].as_str().unwrap();
                let now = env.now_ms();
                let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
                let got = l.db(0).get(&key, now).map(|h| h.encoding().name());
                drop(l);
                assert_eq!(got, Some(enc), "{what}");
                if let Some(t) = k["key_expire_ms"].as_u64() {
                    assert_eq!(
                        restore(
                            &mut env,
                            &key,
                            &t.to_string(),
                            &payload,
                            &["ABSTTL", "REPLACE"]
                        ),
                        "+OK\r\n"
                    );
                }
                // And hashd's own DUMP of it restores to the same fields.
                let again = dumped(&mut env, &key);
                assert_eq!(
                    restore(&mut env, b"copy", "0", &again, &[]),
                    "+OK\r\n",
                    "{what}"
                );
                assert_eq!(fields_of(&env, b"copy"), Some(want), "{what}");
                env.server.keyspace.check_invariants().unwrap();
                keys += 1;
            }
        }
        assert!(keys >= 8, "only {keys} fixture keys in {dir:?}");
    }

    #[test]
    fn restore_inside_multi_and_binary_keys() {
        let mut env = TestEnv::new();
        env.run_args(&[&b"HSET"[..], b"bin\0key", b"\0f", b"\r\n"]);
        let p = dumped(&mut env, b"bin\0key");
        env.run("MULTI");
        assert_eq!(restore(&mut env, b"m\0", "0", &p, &[]), "+QUEUED\r\n");
        assert_eq!(restore(&mut env, b"m\0", "0", &p, &[]), "+QUEUED\r\n");
        assert_eq!(
            env.run("EXEC"),
            "*2\r\n+OK\r\n-BUSYKEY Target key name already exists.\r\n"
        );
        assert_eq!(
            env.run_args(&[&b"HGET"[..], b"m\0", b"\0f"]),
            b"$2\r\n\r\n\r\n"
        );
    }
}
