//! DEBUG SET-ACTIVE-EXPIRE <0|1> | DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE] | DEBUG HELP
//! OBJECT ENCODING key | FREQ key | IDLETIME key | REFCOUNT key | HELP
//! MEMORY USAGE key [SAMPLES count] | MEMORY HELP
//!
//! The introspection test suites use (spec Appendix C). `DEBUG SET-ACTIVE-EXPIRE 0` stops
//! the background sweeper so that lazy expiry can be observed; `OBJECT ENCODING` reports
//! `listpack`, `listpackex` or `hashtable`. Unlike Redis, DEBUG needs no
//! `enable-debug-command` by default (hashd's default is `yes`; `no` and `local` work as in
//! Redis): its subcommands are harmless (RELOAD saves and reloads the snapshot, as SAVE
//! would write it).
//!
//! OBJECT IDLETIME and OBJECT FREQ read the key's access state (see `keyspace/evict.rs`)
//! without updating it, and answer Redis's errors under the other kind of policy.

use std::sync::atomic::Ordering;

use super::parse::{self, is};
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

const OBJECT_SUBCOMMANDS: &[Command] = &[
    Command::new("object|encoding", 3, object_encoding)
        .flags(flags::READONLY)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "2.2.3",
            "Returns the internal encoding of a Redis object.",
            "O(1)",
            "key",
        ),
    Command::new("object|freq", 3, object_freq)
        .flags(flags::READONLY)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "4.0.0",
            "Returns the logarithmic access frequency counter of a Redis object.",
            "O(1)",
            "key",
        ),
    Command::new("object|idletime", 3, object_idletime)
        .flags(flags::READONLY)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "2.2.3",
            "Returns the time since the last access to a Redis object.",
            "O(1)",
            "key",
        ),
    Command::new("object|refcount", 3, object_refcount)
        .flags(flags::READONLY)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "2.2.3",
            "Returns the reference count of a value of a key.",
            "O(1)",
            "key",
        ),
    Command::new("object|help", 2, object_help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "generic",
            "6.2.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
];

const MEMORY_SUBCOMMANDS: &[Command] = &[
    Command::new("memory|usage", -3, memory_usage)
        .flags(flags::READONLY)
        .keys(2, 2, 1)
        .doc(
            "server",
            "4.0.0",
            "Estimates the memory usage of a key.",
            "O(N) where N is the number of samples.",
            "key [SAMPLES count]",
        ),
    Command::new("memory|help", 2, memory_help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "server",
            "4.0.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
];

pub const COMMANDS: &[Command] = &[
    Command::new("debug", -2, debug)
        .flags(flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE)
        .doc(
            "server",
            "1.0.0",
            "A container for debugging commands.",
            "Depends on subcommand.",
            "",
        ),
    Command::container("object", OBJECT_SUBCOMMANDS).doc(
        "generic",
        "2.2.3",
        "A container for object introspection commands.",
        "Depends on subcommand.",
        "",
    ),
    Command::container("memory", MEMORY_SUBCOMMANDS).doc(
        "server",
        "4.0.0",
        "A container for memory diagnostics commands.",
        "Depends on subcommand.",
        "",
    ),
];

/// C's `atoi`, which Redis uses for SET-ACTIVE-EXPIRE: optional spaces and sign, then
/// digits up to the first non-digit; no digits is 0.
fn atoi(s: &[u8]) -> i64 {
    let s = match s.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &s[i..],
        None => return 0,
    };
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |n, &d| {
            n.wrapping_mul(10).wrapping_add(i64::from(d - b'0'))
        });
    if neg {
        n.wrapping_neg()
    } else {
        n
    }
}

const DEBUG_HELP: &[&str] = &[
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Options: NOSAVE (reload what",
    "    is on disk), NOFLUSH (keep the current data, loaded keys replace theirs), MERGE.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys and hash fields in background when they are",
    "    not accessed (otherwise the default behavior). Setting it to 1 reenables it.",
];

/// DEBUG <subcommand> [argument ...]
/// `enable-debug-command`: `yes` (hashd's default), `no`, or `local` (loopback clients
/// only), with Redis's refusal.
fn debug_allowed(ctx: &Ctx<'_, '_>) -> Result<(), CmdError> {
    let setting = ctx.server.config.startup.enable_debug_command.as_str();
    let local = || {
        ctx.client
            .shared
            .addr
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| crate::server::is_loopback(a.ip()))
    };
    if setting.eq_ignore_ascii_case("yes") || (setting.eq_ignore_ascii_case("local") && local()) {
        return Ok(());
    }
    Err(CmdError::other(
        "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", \
         you can run it from a local connection, otherwise you need to set this option in the \
         configuration file, and then restart the server.",
    ))
}

fn debug(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    debug_allowed(ctx)?;
    let sub = args.get(1);
    if is(sub, "help") && args.len() == 2 {
        super::client::help_reply(reply, args.get(0), DEBUG_HELP);
    } else if is(sub, "reload") {
        // The dispatcher holds every shard for DEBUG RELOAD (cmd::lock_plan).
        let rdb = &ctx.server.rdb;
        if rdb.loading.load(Ordering::Relaxed) {
            return Err(CmdError::Loading);
        }
        if rdb.bgsave_in_progress() {
            // Its file could replace the one written here before it is read back.
            return Err(CmdError::other("ERR Background save already in progress"));
        }
        let (mut save, mut flush) = (true, true);
        for opt in args.from(2) {
            if is(opt, "nosave") {
                save = false;
            } else if is(opt, "noflush") || is(opt, "merge") {
                flush = false;
            } else {
                return Err(CmdError::other(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                ));
            }
        }
        if !save && !ctx.server.config.rdb_path().exists() {
            return Err(CmdError::other(
                "ERR Error trying to load the RDB dump, check server logs.",
            ));
        }
        if let Err(e) = crate::persist::snapshot::reload_locked(ctx.server, ctx.locked, save, flush)
        {
            // The dataset may be partly flushed: serving it, and saving it over the file at
            // the next save point, would lose data. Redis exits here too.
            tracing::error!(error = %e, "DEBUG RELOAD could not load the snapshot back");
            ctx.server.fail(format!(
                "DEBUG RELOAD could not load the snapshot back: {e}"
            ));
            return Err(CmdError::other(
                "ERR Error trying to load the RDB dump, check server logs.",
            ));
        }
        reply.ok();
    } else if is(sub, "set-active-expire") && args.len() == 3 {
        ctx.server
            .config
            .active_expire
            .store(atoi(args.get(2)) != 0, Ordering::Relaxed);
        reply.ok();
    } else {
        // DEBUG is not a container, so its own syntax error names the subcommand.
        // Redis's `%.128s`: at most 128 bytes, up to a NUL, unchanged (UTF-8 or not).
        let mut text = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
        text.extend_from_slice(super::keys::c_str(&sub[..sub.len().min(128)]));
        text.extend_from_slice(b"'. Try ");
        text.extend(args.get(0).iter().map(u8::to_ascii_uppercase));
        text.extend_from_slice(b" HELP.");
        return Err(CmdError::other_bytes(text));
    }
    Ok(())
}

/// OBJECT ENCODING key
fn object_encoding(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    match ctx.db().get(args.get(2), now) {
        Some(h) => reply.bulk(h.encoding().name().as_bytes()),
        None => reply.null(),
    }
    Ok(())
}

/// OBJECT FREQ key
fn object_freq(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let lfu = ctx.server.keyspace.access.is_lfu();
    let Some(access) = ctx.db().access_state(args.get(2), now) else {
        reply.null();
        return Ok(());
    };
    if !lfu {
        return Err(CmdError::other(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
             Please note that when switching between policies at runtime LRU and LFU data \
             will take some time to adjust.",
        ));
    }
    reply.int(i64::from(access.frequency));
    Ok(())
}

/// OBJECT IDLETIME key
fn object_idletime(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    let lfu = ctx.server.keyspace.access.is_lfu();
    let Some(access) = ctx.db().access_state(args.get(2), now) else {
        reply.null();
        return Ok(());
    };
    if lfu {
        return Err(CmdError::other(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that \
             when switching between policies at runtime LRU and LFU data will take some time \
             to adjust.",
        ));
    }
    reply.int((access.idle_ms / 1000) as i64);
    Ok(())
}

/// OBJECT REFCOUNT key
fn object_refcount(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let now = ctx.now_ms;
    if ctx.db().exists(args.get(2), now) {
        reply.int(1);
    } else {
        reply.null();
    }
    Ok(())
}

const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

/// OBJECT HELP
fn object_help(
    _ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    super::client::help_reply(reply, args.get(0), OBJECT_HELP);
    Ok(())
}

/// What a key costs besides its value's heap bytes (which hold the key itself and the
/// allocator's rounding): its 8-byte bucket and control byte in the shard table, at the
/// table's typical fill (7/8 to 7/16).
const KEY_OVERHEAD_BYTES: usize = 12;

/// MEMORY USAGE key [SAMPLES count]
fn memory_usage(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    let mut j = 3;
    while j < args.len() {
        if is(args.get(j), "samples") && j + 1 < args.len() {
            // hashd measures exactly, so the sample count is only validated.
            if parse::int(args.get(j + 1))? < 0 {
                return Err(CmdError::Syntax);
            }
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = args.get(2);
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        Some(h) => reply.int((h.heap_bytes() + KEY_OVERHEAD_BYTES) as i64),
        None => reply.null(),
    }
    Ok(())
}

const MEMORY_HELP: &[&str] = &[
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

/// MEMORY HELP
fn memory_help(
    _ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    super::client::help_reply(reply, args.get(0), MEMORY_HELP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::TestEnv;
    use crate::keyspace::{LockPlan, TtlUpdate};

    /// Writes fields straight into the keyspace (hash commands live in other files).
    fn put(env: &TestEnv, key: &str, fields: &[(&str, &str, Option<u64>)]) {
        let now = env.now_ms();
        let mut locked = env.server.keyspace.lock(&LockPlan::All);
        let mut view = locked.db(0);
        let mut h = view.get_or_create(key.as_bytes(), now);
        for (f, v, ttl) in fields {
            let t = ttl.map_or(TtlUpdate::Clear, TtlUpdate::Set);
            h.set(f.as_bytes(), v.as_bytes(), t);
        }
    }

    #[test]
    fn debug_reload_saves_and_loads_back() {
        let dir = std::env::temp_dir().join(format!("hashd-unit-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut env = TestEnv::new();
        env.run(&format!("CONFIG SET dir {}", dir.display()));
        env.run("CONFIG SET dbfilename reload.rdb");
        env.run("HSET k a 1 b 2");
        env.run("HPEXPIRE k 5000 FIELDS 1 a");
        assert_eq!(env.run("DEBUG RELOAD"), "+OK\r\n");
        assert_eq!(env.run("HGET k b"), "$1\r\n2\r\n");
        assert_eq!(env.run("HPTTL k FIELDS 1 a"), "*1\r\n:5000\r\n");
        // NOSAVE reloads what is on disk: a change since is gone.
        env.run("HSET k c 3");
        assert_eq!(env.run("DEBUG RELOAD NOSAVE"), "+OK\r\n");
        assert_eq!(env.run("HEXISTS k c"), ":0\r\n");
        // Inside a transaction it holds every shard too.
        env.run("MULTI");
        env.run("HSET j x 1");
        env.run("DEBUG RELOAD");
        env.run("HGET j x");
        assert_eq!(env.run("EXEC"), "*3\r\n:1\r\n+OK\r\n$1\r\n1\r\n");
        assert_eq!(
            env.run("DEBUG RELOAD BOGUS"),
            "-ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.\r\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn set_active_expire() {
        let mut env = TestEnv::new();
        let active = |env: &TestEnv| env.server.config.active_expire.load(Ordering::Relaxed);
        assert!(active(&env));
        assert_eq!(env.run("DEBUG SET-ACTIVE-EXPIRE 0"), "+OK\r\n");
        assert!(!active(&env));
        assert_eq!(env.run("debug set-active-expire 1"), "+OK\r\n");
        assert!(active(&env));
        // atoi: anything non-numeric is 0.
        assert_eq!(env.run("DEBUG SET-ACTIVE-EXPIRE no"), "+OK\r\n");
        assert!(!active(&env));
        assert_eq!(env.run("DEBUG SET-ACTIVE-EXPIRE \" 2x\""), "+OK\r\n");
        assert!(active(&env));
    }

    #[test]
    fn debug_errors_and_help() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("DEBUG SET-ACTIVE-EXPIRE"),
            "-ERR unknown subcommand or wrong number of arguments for 'SET-ACTIVE-EXPIRE'. \
             Try DEBUG HELP.\r\n"
        );
        assert_eq!(
            env.run("debug sleep 0"),
            "-ERR unknown subcommand or wrong number of arguments for 'sleep'. Try DEBUG \
             HELP.\r\n"
        );
        assert_eq!(
            env.run("DEBUG"),
            "-ERR wrong number of arguments for 'debug' command\r\n"
        );
        let help = env.run("DEBUG HELP");
        assert!(help.starts_with(
            "*9\r\n+DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
        ));
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi(b"1"), 1);
        assert_eq!(atoi(b"  -3z"), -3);
        assert_eq!(atoi(b"+7"), 7);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b""), 0);
    }

    #[test]
    fn object_encoding_reports_the_three_encodings() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("OBJECT ENCODING nokey"), "$-1\r\n");
        put(&env, "small", &[("a", "1", None)]);
        assert_eq!(env.run("OBJECT ENCODING small"), "$8\r\nlistpack\r\n");
        let later = env.now_ms() + 60_000;
        put(&env, "ttl", &[("a", "1", Some(later))]);
        assert_eq!(env.run("object encoding ttl"), "$10\r\nlistpackex\r\n");
        let long = "x".repeat(100);
        put(&env, "big", &[("a", &long, None)]);
        assert_eq!(env.run("OBJECT ENCODING big"), "$9\r\nhashtable\r\n");
        env.resp3();
        assert_eq!(env.run("OBJECT ENCODING nokey"), "_\r\n");
        assert_eq!(
            env.run("OBJECT ENCODING"),
            "-ERR wrong number of arguments for 'object|encoding' command\r\n"
        );
    }

    #[test]
    fn object_encoding_follows_config_set() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("CONFIG SET hash-max-listpack-entries 0"), "+OK\r\n");
        put(&env, "h", &[("a", "1", None)]);
        assert_eq!(env.run("OBJECT ENCODING h"), "$9\r\nhashtable\r\n");
    }

    #[test]
    fn object_freq_idletime_refcount_help() {
        let mut env = TestEnv::new();
        put(&env, "h", &[("a", "1", None)]);
        assert_eq!(env.run("OBJECT IDLETIME h"), ":0\r\n");
        assert_eq!(env.run("OBJECT REFCOUNT h"), ":1\r\n");
        assert_eq!(env.run("OBJECT REFCOUNT nokey"), "$-1\r\n");
        assert_eq!(env.run("OBJECT FREQ nokey"), "$-1\r\n");
        assert!(env
            .run("OBJECT FREQ h")
            .starts_with("-ERR An LFU maxmemory policy is not selected"));
        assert_eq!(
            env.run("OBJECT FOO h"),
            "-ERR unknown subcommand 'FOO'. Try OBJECT HELP.\r\n"
        );
        assert!(env
            .run("OBJECT HELP")
            .starts_with("*15\r\n+OBJECT <subcommand>"));
    }

    #[test]
    fn idle_time_counts_from_the_last_access_but_not_for_no_touch_clients() {
        let mut env = TestEnv::new();
        env.run("HSET h f v");
        env.advance_ms(5_000);
        // OBJECT itself does not touch the key.
        assert_eq!(env.run("OBJECT IDLETIME h"), ":5\r\n");
        assert_eq!(env.run("OBJECT IDLETIME h"), ":5\r\n");
        env.run("HGET h f");
        assert_eq!(env.run("OBJECT IDLETIME h"), ":0\r\n");
        env.advance_ms(3_000);
        assert_eq!(env.run("CLIENT NO-TOUCH on"), "+OK\r\n");
        env.run("HGET h f");
        env.run("HSET h g v");
        assert_eq!(env.run("OBJECT IDLETIME h"), ":3\r\n");
        // TOUCH touches even for a NO-TOUCH client, as in Redis.
        assert_eq!(env.run("TOUCH h nokey"), ":1\r\n");
        assert_eq!(env.run("OBJECT IDLETIME h"), ":0\r\n");
        assert_eq!(env.run("CLIENT NO-TOUCH maybe"), "-ERR syntax error\r\n");
        env.run("RESET");
        env.advance_ms(2_000);
        env.run("HGET h f");
        assert_eq!(
            env.run("OBJECT IDLETIME h"),
            ":0\r\n",
            "RESET ends NO-TOUCH"
        );
    }

    #[test]
    fn frequency_under_an_lfu_policy() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("CONFIG SET maxmemory-policy allkeys-lfu"),
            "+OK\r\n"
        );
        env.run("HSET h f v");
        // A new key starts at 5; the first accesses count with probability 1/(1+0).
        assert_eq!(env.run("OBJECT FREQ h"), ":5\r\n");
        assert_eq!(env.run("CONFIG SET lfu-log-factor 0"), "+OK\r\n");
        for _ in 0..10 {
            env.run("HGET h f");
        }
        assert_eq!(env.run("OBJECT FREQ h"), ":15\r\n");
        // One point lost per idle minute.
        env.advance_ms(4 * 60_000);
        assert_eq!(env.run("OBJECT FREQ h"), ":11\r\n");
        assert!(env
            .run("OBJECT IDLETIME h")
            .starts_with("-ERR An LFU maxmemory policy is selected, idle time not tracked."));
    }

    #[test]
    fn memory_usage() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("MEMORY USAGE nokey"), "$-1\r\n");
        put(&env, "h", &[("a", "1", None)]);
        let r = env.run("MEMORY USAGE h");
        let n: i64 = r[1..r.len() - 2].parse().unwrap();
        assert!(n > KEY_OVERHEAD_BYTES as i64, "{r}");
        assert_eq!(env.run("MEMORY USAGE h SAMPLES 0"), r);
        assert_eq!(
            env.run("MEMORY USAGE h SAMPLES -1"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            env.run("MEMORY USAGE h SAMPLES x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(env.run("MEMORY USAGE h FOO"), "-ERR syntax error\r\n");
        assert_eq!(env.run("MEMORY USAGE h SAMPLES"), "-ERR syntax error\r\n");
        assert!(env.run("MEMORY HELP").starts_with("*6\r\n"));
    }

    /// The subcommand is quoted as Redis 7.4.1's `%.128s` does: at most 128 bytes, up to
    /// a NUL, unchanged.
    #[test]
    fn unknown_subcommand_keeps_the_client_bytes() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run_args(&[b"debug".as_slice(), b"s\xffub\x00x"]),
            b"-ERR unknown subcommand or wrong number of arguments for 's\xffub'. Try DEBUG \
              HELP.\r\n"
        );
        let mut long = vec![b'x'; 128];
        long.push(0xff);
        let mut want = b"-ERR unknown subcommand or wrong number of arguments for '".to_vec();
        want.extend_from_slice(&long[..128]);
        want.extend_from_slice(b"'. Try DEBUG HELP.\r\n");
        assert_eq!(env.run_args(&[b"DEBUG".as_slice(), &long]), want);
    }
}
