//! DEL key [key ...]
//! UNLINK key [key ...]
//! EXISTS key [key ...]
//! TYPE key
//! KEYS pattern
//! SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
//! RANDOMKEY
//! TOUCH key [key ...]
//! RENAME key newkey
//! RENAMENX key newkey
//!
//! Generic key-space commands (spec §11). Only hashes exist, so TYPE is `hash` or `none`
//! and SCAN's TYPE filter keeps everything (`hash`) or nothing (any other name: Redis
//! 7.4.1 compares the name with each key's type and has no error for an unknown one).

use super::{flags, parse, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

/// SCAN's COUNT when none is given, as in Redis.
const SCAN_DEFAULT_COUNT: usize = 10;

pub const COMMANDS: &[Command] = &[
    Command::new("del", -2, del)
        .flags(flags::WRITE)
        .keys(1, -1, 1)
        .doc(
            "generic",
            "1.0.0",
            "Deletes one or more keys.",
            "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
            "key [key ...]",
        ),
    Command::new("unlink", -2, del)
        .flags(flags::WRITE | flags::FAST)
        .keys(1, -1, 1)
        .doc(
            "generic",
            "4.0.0",
            "Asynchronously deletes one or more keys.",
            "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
            "key [key ...]",
        ),
    Command::new("exists", -2, exists)
        .flags(flags::READONLY | flags::FAST)
        .keys(1, -1, 1)
        .doc(
            "generic",
            "1.0.0",
            "Determines whether one or more keys exist.",
            "O(N) where N is the number of keys to check.",
            "key [key ...]",
        ),
    Command::new("type", 2, type_cmd)
        .flags(flags::READONLY | flags::FAST)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "1.0.0",
            "Determines the type of value stored at a key.",
            "O(1)",
            "key",
        ),
    Command::new("keys", 2, keys)
        .flags(flags::READONLY | flags::LOCK_DB)
        .acl(&["dangerous"])
        .doc(
            "generic",
            "1.0.0",
            "Returns all key names that match a pattern.",
            "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.",
            "pattern",
        ),
    Command::new("scan", -2, scan)
        .flags(flags::READONLY | flags::LOCK_DB)
        .doc(
            "generic",
            "2.8.0",
            "Iterates over the key names in the database.",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
            "cursor [MATCH pattern] [COUNT count] [TYPE type]",
        ),
    Command::new("randomkey", 1, randomkey)
        .flags(flags::READONLY | flags::LOCK_DB)
        .doc(
            "generic",
            "1.0.0",
            "Returns a random key name from the database.",
            "O(1)",
            "",
        ),
    Command::new("touch", -2, touch)
        .flags(flags::READONLY | flags::FAST)
        .keys(1, -1, 1)
        .doc(
            "generic",
            "3.2.1",
            "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
            "O(N) where N is the number of keys that will be touched.",
            "key [key ...]",
        ),
    Command::new("rename", 3, rename)
        .flags(flags::WRITE)
        .keys(1, 2, 1)
        .doc(
            "generic",
            "1.0.0",
            "Renames a key and overwrites the destination.",
            "O(1)",
            "key newkey",
        ),
    Command::new("renamenx", 3, renamenx)
        .flags(flags::WRITE | flags::FAST)
        .keys(1, 2, 1)
        .doc(
            "generic",
            "1.0.0",
            "Renames a key only when the target key name doesn't exist.",
            "O(1)",
            "key newkey",
        ),
];

/// C's `%s` on an argument: the bytes up to the first NUL, for quoting in an error.
pub(crate) fn c_str(arg: &[u8]) -> &[u8] {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    &arg[..end]
}

/// An error quoting a client's argument as Redis's `%s` does: `head`, the argument's
/// bytes up to a NUL (unchanged, UTF-8 or not), then `tail`.
pub(crate) fn error_quoting(head: &str, arg: &[u8], tail: &str) -> CmdError {
    let mut text = head.as_bytes().to_vec();
    text.extend_from_slice(c_str(arg));
    text.extend_from_slice(tail.as_bytes());
    CmdError::other_bytes(text)
}

/// DEL / UNLINK: the keys go at once; UNLINK (and DEL with `lazyfree-lazy-user-del yes`)
/// leaves freeing a large hash's memory to the lazyfree thread.
fn del(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let lazy = super::parse::is(args.get(0), "unlink")
        || ctx
            .server
            .config
            .lazyfree_lazy_user_del
            .load(std::sync::atomic::Ordering::Relaxed);
    let mut db = ctx.db();
    let removed = args
        .from(1)
        .filter(|k| db.delete_lazily(k, now, lazy))
        .count();
    reply.int(removed as i64);
    Ok(())
}

/// EXISTS counts a key once per time it is named.
fn exists(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let found = args.from(1).filter(|k| db.exists(k, now)).count();
    reply.int(found as i64);
    Ok(())
}

/// TOUCH refreshes the keys' access state (LRU/LFU; also for a CLIENT NO-TOUCH client,
/// as in Redis) and counts those that exist. No WATCH signal: nothing changed.
fn touch(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let found = args.from(1).filter(|k| db.get(k, now).is_some()).count();
    reply.int(found as i64);
    Ok(())
}

/// TYPE does not reclaim expired fields: a hash whose fields all expired is still a hash.
fn type_cmd(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    if ctx.db().exists(args.get(1), now) {
        reply.simple("hash");
    } else {
        reply.simple("none");
    }
    Ok(())
}

/// KEYS skips keys past their TTL without deleting them.
fn keys(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let pattern = args.get(1);
    let all = pattern == b"*";
    let mut found: Vec<Vec<u8>> = Vec::new();
    ctx.db().for_each_key(now, |key, _| {
        if all || crate::glob::matches(pattern, key, false) {
            found.push(key.to_vec());
        }
    });
    reply.array(found.len());
    for k in &found {
        reply.bulk(k);
    }
    Ok(())
}

/// SCAN's options, validated before the keyspace is touched.
struct ScanOptions<'a> {
    count: usize,
    pattern: Option<&'a [u8]>,
    /// False when TYPE names a type no key here can have.
    type_matches: bool,
}

fn parse_scan_options<'a>(args: Args<'a>) -> Result<ScanOptions<'a>, CmdError> {
    let mut opts = ScanOptions {
        count: SCAN_DEFAULT_COUNT,
        pattern: None,
        type_matches: true,
    };
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        let has_value = args.len() - i >= 2;
        if has_value && parse::is(opt, "count") {
            let n = parse::int(args.get(i + 1))?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            opts.count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 2;
        } else if has_value && parse::is(opt, "match") {
            let p = args.get(i + 1);
            // Exactly "*" matches everything; skip the matcher.
            opts.pattern = (p != b"*").then_some(p);
            i += 2;
        } else if has_value && parse::is(opt, "type") {
            // Redis 7.4.1's `strcasecmp(typename, getObjectTypeName(o))`: the name up to
            // a NUL against "hash"; an unknown name simply matches no key.
            opts.type_matches = parse::is(c_str(args.get(i + 1)), "hash");
            i += 2;
        } else if parse::is(opt, "novalues") {
            return Err(CmdError::other(
                "ERR NOVALUES option can only be used in HSCAN",
            ));
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(opts)
}

/// SCAN: expired keys met on the way are deleted and left out (DbView::scan).
fn scan(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let cursor = parse::cursor(args.get(1))?;
    let opts = parse_scan_options(args)?;
    let now = ctx.now_ms;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = ctx.db().scan(cursor, opts.count, now, |key, _| {
        if !opts.type_matches {
            return;
        }
        // As Redis, "*" is no pattern at all: it lists the empty key too.
        if let Some(p) = opts.pattern.filter(|p| *p != b"*") {
            if !crate::glob::matches(p, key, false) {
                return;
            }
        }
        found.push(key.to_vec());
    });
    reply.array(2);
    reply.bulk_u64(next);
    reply.array(found.len());
    for k in &found {
        reply.bulk(k);
    }
    Ok(())
}

fn randomkey(
    ctx: &mut Ctx<'_, '_>,
    _args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let db = ctx.client.db;
    match ctx.locked.db(db).random_key(now, &mut ctx.client.rng) {
        Some(k) => reply.bulk(&k),
        None => reply.null(),
    }
    Ok(())
}

/// RENAME / RENAMENX. Returns whether the key moved; `Err(NoSuchKey)` if the source is
/// missing. The key TTL and every field TTL travel with the value (spec §5.5).
fn rename_generic(ctx: &mut Ctx<'_, '_>, args: Args<'_>, nx: bool) -> Result<bool, CmdError> {
    let now = ctx.now_ms;
    let (src, dst) = (args.get(1), args.get(2));
    let mut db = ctx.db();
    if !db.exists(src, now) {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(false);
    }
    if nx && db.exists(dst, now) {
        return Ok(false);
    }
    if !db.rename(src, dst, now) {
        return Err(CmdError::NoSuchKey);
    }
    Ok(true)
}

fn rename(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    rename_generic(ctx, args, false)?;
    reply.ok();
    Ok(())
}

fn renamenx(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let moved = rename_generic(ctx, args, true)?;
    reply.int(i64::from(moved));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::cmd::testing::TestEnv;
    use crate::keyspace::LockPlan;

    /// Gives `field` of `key` (db 0) an absolute expiry time, bypassing HEXPIRE.
    fn set_field_expire(env: &TestEnv, key: &[u8], field: &[u8], at_ms: u64) {
        let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        let mut h = db.get_mut(key, env.now_ms()).expect("key exists");
        assert!(h.set_expire(field, Some(at_ms)));
    }

    fn field_expire(env: &TestEnv, key: &[u8], field: &[u8]) -> Option<u64> {
        let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
        let mut db = l.db(0);
        db.get(key, env.now_ms())
            .and_then(|h| h.get(field))
            .and_then(|f| f.expire_at)
    }

    /// Parses a flat RESP array of bulk strings (KEYS) into a sorted set.
    fn bulk_set(reply: &str) -> BTreeSet<String> {
        let mut lines = reply.split("\r\n");
        let head = lines.next().unwrap_or_default();
        assert!(head.starts_with('*'), "not an array: {reply:?}");
        let mut out = BTreeSet::new();
        while let Some(l) = lines.next() {
            if l.starts_with('$') {
                out.insert(lines.next().unwrap_or_default().to_string());
            }
        }
        out
    }

    /// Splits a SCAN reply into (cursor, keys).
    fn scan_reply(reply: &str) -> (String, Vec<String>) {
        let parts: Vec<&str> = reply.split("\r\n").collect();
        assert_eq!(parts[0], "*2", "{reply:?}");
        assert!(parts[1].starts_with('$'));
        let cursor = parts[2].to_string();
        assert!(parts[3].starts_with('*'));
        let n: usize = parts[3][1..].parse().expect("array length");
        let keys = (0..n).map(|i| parts[5 + 2 * i].to_string()).collect();
        (cursor, keys)
    }

    /// Runs a full SCAN iteration with `opts` and returns every key seen.
    fn scan_all(env: &mut TestEnv, opts: &str) -> BTreeSet<String> {
        let mut cursor = "0".to_string();
        let mut seen = BTreeSet::new();
        loop {
            let (next, keys) = scan_reply(&env.run(&format!("SCAN {cursor} {opts}")));
            seen.extend(keys);
            if next == "0" {
                return seen;
            }
            cursor = next;
        }
    }

    #[test]
    fn del_and_unlink_count_removed_keys() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        env.run("HSET b f v");
        assert_eq!(env.run("DEL a nokey a"), ":1\r\n");
        assert_eq!(env.run("EXISTS a"), ":0\r\n");
        assert_eq!(env.run("UNLINK b c"), ":1\r\n");
        assert_eq!(env.run("DEL b"), ":0\r\n");
        assert_eq!(
            env.run("DEL"),
            "-ERR wrong number of arguments for 'del' command\r\n"
        );
        assert_eq!(
            env.run("unlink"),
            "-ERR wrong number of arguments for 'unlink' command\r\n"
        );
    }

    #[test]
    fn del_treats_expired_keys_as_absent() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("PEXPIRE k 100");
        env.advance_ms(101);
        assert_eq!(env.run("DEL k"), ":0\r\n");
    }

    #[test]
    fn exists_counts_repeats() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        assert_eq!(env.run("EXISTS a a nokey a"), ":3\r\n");
        assert_eq!(env.run("EXISTS nokey"), ":0\r\n");
        assert_eq!(
            env.run("EXISTS"),
            "-ERR wrong number of arguments for 'exists' command\r\n"
        );
    }

    #[test]
    fn expired_key_is_gone_at_deadline_plus_one() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("PEXPIRE k 100");
        env.advance_ms(100);
        // Still there at exactly its deadline (strict comparison).
        assert_eq!(env.run("EXISTS k"), ":1\r\n");
        env.advance_ms(1);
        assert_eq!(env.run("EXISTS k"), ":0\r\n");
        assert_eq!(env.run("TYPE k"), "+none\r\n");
    }

    #[test]
    fn hash_with_only_expired_fields_does_not_exist() {
        // Unlike Redis (spec §15 #30), a hash whose every field expired is gone for every
        // command that names or lists keys, and is reclaimed when met.
        for cmd in [
            "EXISTS k",
            "TYPE k",
            "TOUCH k",
            "TTL k",
            "PTTL k",
            "EXPIRETIME k",
            "PERSIST k",
            "DEL k",
            "OBJECT ENCODING k",
            "RENAME k k2",
            "KEYS *",
            "SCAN 0",
            "RANDOMKEY",
            "EXPIRE k 100",
            "MEMORY USAGE k",
        ] {
            let mut env = TestEnv::new();
            env.run("HSET k f v");
            set_field_expire(&env, b"k", b"f", env.now_ms() + 10);
            env.advance_ms(11);
            let reply = env.run(cmd);
            assert!(
                matches!(
                    reply.as_str(),
                    ":0\r\n"
                        | ":-2\r\n"
                        | "+none\r\n"
                        | "$-1\r\n"
                        | "*0\r\n"
                        | "*2\r\n$1\r\n0\r\n*0\r\n"
                        | "-ERR no such key\r\n"
                ),
                "{cmd}: {reply:?}"
            );
            assert_eq!(env.server.keyspace.stored_len(0, b"k"), None, "{cmd}");
            assert_eq!(env.run("DBSIZE"), ":0\r\n", "{cmd}");
        }
    }

    #[test]
    fn type_is_hash_or_none() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        assert_eq!(env.run("TYPE k"), "+hash\r\n");
        assert_eq!(env.run("TYPE nokey"), "+none\r\n");
        env.resp3();
        assert_eq!(env.run("TYPE k"), "+hash\r\n");
        assert_eq!(
            env.run("TYPE"),
            "-ERR wrong number of arguments for 'type' command\r\n"
        );
        assert_eq!(
            env.run("TYPE a b"),
            "-ERR wrong number of arguments for 'type' command\r\n"
        );
    }

    #[test]
    fn touch_counts_existing_keys() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        assert_eq!(env.run("TOUCH a b a"), ":2\r\n");
        assert_eq!(
            env.run("TOUCH"),
            "-ERR wrong number of arguments for 'touch' command\r\n"
        );
    }

    #[test]
    fn touch_does_not_dirty_watchers() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        env.run("WATCH a");
        env.run("TOUCH a");
        env.run("EXISTS a");
        env.run("TYPE a");
        env.run("MULTI");
        env.run("EXISTS a");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
    }

    #[test]
    fn keys_matches_glob_and_skips_expired() {
        let mut env = TestEnv::new();
        for k in ["hello", "hallo", "hxllo", "hllo", "heeeello", "other"] {
            env.run(&format!("HSET {k} f v"));
        }
        assert_eq!(
            bulk_set(&env.run("KEYS h?llo")),
            ["hallo", "hello", "hxllo"]
                .map(String::from)
                .into_iter()
                .collect()
        );
        assert_eq!(bulk_set(&env.run("KEYS h*llo")).len(), 5);
        assert_eq!(
            bulk_set(&env.run("KEYS h[ae]llo")),
            ["hallo", "hello"].map(String::from).into_iter().collect()
        );
        assert_eq!(
            bulk_set(&env.run("KEYS h[^e]llo")),
            ["hallo", "hxllo"].map(String::from).into_iter().collect()
        );
        assert_eq!(bulk_set(&env.run("KEYS *")).len(), 6);
        assert_eq!(env.run("KEYS nomatch*"), "*0\r\n");
        assert_eq!(env.run("KEYS other"), "*1\r\n$5\r\nother\r\n");
        // An expired key is left out, and reclaimed once KEYS is done.
        env.run("PEXPIRE other 5");
        env.advance_ms(6);
        assert_eq!(env.run("DBSIZE"), ":6\r\n");
        assert_eq!(env.run("KEYS other"), "*0\r\n");
        assert_eq!(env.run("DBSIZE"), ":5\r\n");
        env.resp3();
        assert_eq!(env.run("KEYS hllo"), "*1\r\n$4\r\nhllo\r\n");
        assert_eq!(
            env.run("KEYS"),
            "-ERR wrong number of arguments for 'keys' command\r\n"
        );
        assert_eq!(
            env.run("KEYS a b"),
            "-ERR wrong number of arguments for 'keys' command\r\n"
        );
    }

    #[test]
    fn keys_on_binary_names() {
        let mut env = TestEnv::new();
        env.run_args(&[&b"HSET"[..], b"a\x00b", b"f", b"v"]);
        assert_eq!(
            env.run_args(&[&b"KEYS"[..], b"a?b"]),
            b"*1\r\n$3\r\na\x00b\r\n"
        );
    }

    #[test]
    fn scan_empty_db() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("SCAN 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
        env.resp3();
        assert_eq!(env.run("SCAN 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
    }

    #[test]
    fn scan_single_key() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        assert_eq!(
            env.run("SCAN 0 COUNT 1000"),
            "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"
        );
    }

    #[test]
    fn scan_covers_every_key() {
        let mut env = TestEnv::new();
        for i in 0..200 {
            env.run(&format!("HSET key:{i} f v"));
        }
        let all = scan_all(&mut env, "");
        assert_eq!(all.len(), 200);
        assert_eq!(scan_all(&mut env, "COUNT 3").len(), 200);
        let matched = scan_all(&mut env, "MATCH key:1?");
        assert_eq!(matched.len(), 10);
        assert!(matched.iter().all(|k| k.starts_with("key:1")));
        assert_eq!(scan_all(&mut env, "MATCH * COUNT 50").len(), 200);
        assert_eq!(scan_all(&mut env, "TYPE hash").len(), 200);
        assert_eq!(scan_all(&mut env, "TYPE HASH MATCH key:5").len(), 1);
        assert!(scan_all(&mut env, "TYPE string").is_empty());
        assert!(scan_all(&mut env, "type Stream count 100").is_empty());
        assert!(scan_all(&mut env, "TYPE nosuchtype").is_empty());
        assert_eq!(
            env.run_args(&[&b"SCAN"[..], b"0", b"COUNT", b"1000", b"TYPE", b"hAsh\x00x"])
                .len(),
            env.run("SCAN 0 COUNT 1000 TYPE hash").len()
        );
    }

    #[test]
    fn scan_deletes_expired_keys_it_meets() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        env.run("HSET b f v");
        env.run("PEXPIRE a 10");
        env.advance_ms(11);
        assert_eq!(env.run("DBSIZE"), ":2\r\n");
        assert_eq!(
            scan_all(&mut env, "COUNT 100"),
            ["b".to_string()].into_iter().collect()
        );
        assert_eq!(env.run("DBSIZE"), ":1\r\n");
    }

    #[test]
    fn scan_errors() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        assert_eq!(env.run("SCAN x"), "-ERR invalid cursor\r\n");
        assert_eq!(env.run("SCAN -1"), "-ERR invalid cursor\r\n");
        // The cursor is checked before the options.
        assert_eq!(env.run("SCAN x COUNT 0"), "-ERR invalid cursor\r\n");
        assert_eq!(env.run("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(env.run("SCAN 0 COUNT -1"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("SCAN 0 COUNT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("SCAN 0 COUNT 9223372036854775808"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(env.run("SCAN 0 COUNT"), "-ERR syntax error\r\n");
        assert_eq!(env.run("SCAN 0 MATCH"), "-ERR syntax error\r\n");
        assert_eq!(env.run("SCAN 0 TYPE"), "-ERR syntax error\r\n");
        assert_eq!(env.run("SCAN 0 FOO bar"), "-ERR syntax error\r\n");
        // Redis 7.4.1 has no error for an unknown type: nothing matches it.
        assert_eq!(env.run("SCAN 0 TYPE nosuch"), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(
            env.run("SCAN 0 NOVALUES"),
            "-ERR NOVALUES option can only be used in HSCAN\r\n"
        );
        // Options are checked left to right.
        assert_eq!(
            env.run("SCAN 0 NOVALUES COUNT 0"),
            "-ERR NOVALUES option can only be used in HSCAN\r\n"
        );
        assert_eq!(env.run("SCAN 0 COUNT 0 NOVALUES"), "-ERR syntax error\r\n");
        assert_eq!(env.run("SCAN 0 TYPE bad COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("SCAN"),
            "-ERR wrong number of arguments for 'scan' command\r\n"
        );
    }

    #[test]
    fn scan_huge_cursor_ends_the_iteration() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        let (cursor, _) = scan_reply(&env.run("SCAN 18446744073709551615"));
        assert_eq!(cursor, "0");
    }

    #[test]
    fn randomkey_returns_a_live_key_or_null() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("RANDOMKEY"), "$-1\r\n");
        env.resp3();
        assert_eq!(env.run("RANDOMKEY"), "_\r\n");
        env.run("HSET k f v");
        assert_eq!(env.run("RANDOMKEY"), "$1\r\nk\r\n");
        env.run("PEXPIRE k 1");
        env.advance_ms(2);
        assert_eq!(env.run("RANDOMKEY"), "_\r\n");
        assert_eq!(env.run("DBSIZE"), ":0\r\n", "the expired key was deleted");
        assert_eq!(
            env.run("RANDOMKEY x"),
            "-ERR wrong number of arguments for 'randomkey' command\r\n"
        );
    }

    #[test]
    fn randomkey_picks_among_keys() {
        let mut env = TestEnv::new();
        for k in ["a", "b", "c"] {
            env.run(&format!("HSET {k} f v"));
        }
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.insert(env.run("RANDOMKEY"));
        }
        assert!(seen.len() > 1);
        assert!(seen
            .iter()
            .all(|r| ["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"].contains(&r.as_str())));
    }

    #[test]
    fn rename_moves_value() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        assert_eq!(env.run("RENAME a b"), "+OK\r\n");
        assert_eq!(env.run("EXISTS a"), ":0\r\n");
        assert_eq!(env.run("HGET b f"), "$1\r\nv\r\n");
        // Overwrites the destination.
        env.run("HSET c g w");
        assert_eq!(env.run("RENAME b c"), "+OK\r\n");
        assert_eq!(env.run("HGET c f"), "$1\r\nv\r\n");
        assert_eq!(env.run("HGET c g"), "$-1\r\n");
        assert_eq!(env.run("DBSIZE"), ":1\r\n");
    }

    #[test]
    fn rename_errors_and_same_name() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("RENAME nokey x"), "-ERR no such key\r\n");
        assert_eq!(env.run("RENAMENX nokey x"), "-ERR no such key\r\n");
        assert_eq!(env.run("RENAME nokey nokey"), "-ERR no such key\r\n");
        assert_eq!(env.run("RENAMENX nokey nokey"), "-ERR no such key\r\n");
        env.run("HSET k f v");
        assert_eq!(env.run("RENAME k k"), "+OK\r\n");
        assert_eq!(env.run("RENAMENX k k"), ":0\r\n");
        assert_eq!(env.run("HGET k f"), "$1\r\nv\r\n");
        assert_eq!(
            env.run("RENAME k"),
            "-ERR wrong number of arguments for 'rename' command\r\n"
        );
        assert_eq!(
            env.run("RENAMENX k a b"),
            "-ERR wrong number of arguments for 'renamenx' command\r\n"
        );
    }

    #[test]
    fn rename_of_expired_key_is_no_such_key() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("PEXPIRE k 10");
        env.advance_ms(11);
        assert_eq!(env.run("RENAME k x"), "-ERR no such key\r\n");
    }

    #[test]
    fn renamenx_respects_existing_destination() {
        let mut env = TestEnv::new();
        env.run("HSET a f 1");
        env.run("HSET b f 2");
        assert_eq!(env.run("RENAMENX a b"), ":0\r\n");
        assert_eq!(env.run("HGET a f"), "$1\r\n1\r\n");
        assert_eq!(env.run("HGET b f"), "$1\r\n2\r\n");
        assert_eq!(env.run("RENAMENX a c"), ":1\r\n");
        assert_eq!(env.run("HGET c f"), "$1\r\n1\r\n");
        assert_eq!(env.run("EXISTS a"), ":0\r\n");
        // An expired destination does not count as existing.
        env.run("PEXPIRE b 10");
        env.advance_ms(11);
        assert_eq!(env.run("RENAMENX c b"), ":1\r\n");
        assert_eq!(env.run("HGET b f"), "$1\r\n1\r\n");
    }

    #[test]
    fn rename_keeps_key_ttl_and_field_ttls() {
        let mut env = TestEnv::new();
        env.run("HSET a f1 v f2 v");
        env.run("PEXPIRE a 5000");
        let at = env.now_ms() + 1000;
        set_field_expire(&env, b"a", b"f1", at);
        assert_eq!(env.run("RENAME a b"), "+OK\r\n");
        assert_eq!(env.run("PTTL b"), ":5000\r\n");
        assert_eq!(field_expire(&env, b"b", b"f1"), Some(at));
        assert_eq!(field_expire(&env, b"b", b"f2"), None);
        // A destination's own TTL is replaced by the source's.
        env.run("HSET d f v");
        env.run("PEXPIRE d 100");
        assert_eq!(env.run("RENAME b d"), "+OK\r\n");
        assert_eq!(env.run("PTTL d"), ":5000\r\n");
        env.run("PERSIST d");
        env.run("HSET e f v");
        env.run("PEXPIRE e 100");
        assert_eq!(env.run("RENAME d e"), "+OK\r\n");
        assert_eq!(env.run("PTTL e"), ":-1\r\n");
        assert_eq!(field_expire(&env, b"e", b"f1"), Some(at));
        // The moved field still expires on schedule.
        env.advance_ms(1001);
        assert_eq!(env.run("HGET e f1"), "$-1\r\n");
        assert_eq!(env.run("HGET e f2"), "$1\r\nv\r\n");
    }

    #[test]
    fn rename_dirties_watchers_of_both_names() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        env.run("WATCH b");
        env.run("RENAME a b");
        env.run("MULTI");
        env.run("EXISTS b");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        env.run("WATCH b");
        env.run("RENAME b a");
        env.run("MULTI");
        env.run("EXISTS b");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
    }

    #[test]
    fn rename_inside_multi() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        env.run("MULTI");
        assert_eq!(env.run("RENAME a b"), "+QUEUED\r\n");
        assert_eq!(env.run("RENAME a b"), "+QUEUED\r\n");
        assert_eq!(env.run("EXEC"), "*2\r\n+OK\r\n-ERR no such key\r\n");
    }

    #[test]
    fn error_quoting_keeps_bytes_up_to_a_nul() {
        assert_eq!(super::c_str(b"a\xff\x00b"), b"a\xff");
        assert_eq!(
            &*super::error_quoting("ERR x '", b"\xfe\x00z", "'").reply_text(),
            b"ERR x '\xfe'"
        );
    }
}
