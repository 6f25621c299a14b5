//! SELECT index
//! SWAPDB index1 index2
//! DBSIZE
//! FLUSHDB [ASYNC | SYNC]
//! FLUSHALL [ASYNC | SYNC]
//!
//! Whole-database commands (spec §11.6, §11.7, §11.14). SWAPDB locks every database.
//! SELECT locks nothing, but a transaction that queues it (or SWAPDB) locks everything
//! at EXEC, so the commands after it find their shards held whichever database they
//! address.

use std::sync::atomic::Ordering;

use super::{flags, parse, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[
    Command::new("select", 2, select)
        .flags(flags::LOADING | flags::STALE | flags::FAST | flags::TXN_LOCK_ALL)
        .doc(
            "connection",
            "1.0.0",
            "Changes the selected database.",
            "O(1)",
            "index",
        ),
    Command::new("swapdb", 3, swapdb)
        .flags(flags::WRITE | flags::FAST | flags::LOCK_ALL)
        .acl(&["keyspace", "dangerous"])
        .doc(
            "server",
            "4.0.0",
            "Swaps two Redis databases.",
            "O(N) where N is the count of clients watching or blocking on keys from both databases.",
            "index1 index2",
        ),
    Command::new("dbsize", 1, dbsize)
        .flags(flags::READONLY | flags::FAST | flags::LOCK_DB)
        .acl(&["keyspace"])
        .doc(
            "server",
            "1.0.0",
            "Returns the number of keys in the database.",
            "O(1)",
            "",
        ),
    Command::new("flushdb", -1, flushdb)
        .flags(flags::WRITE | flags::LOCK_DB)
        .acl(&["keyspace", "dangerous"])
        .doc(
            "server",
            "1.0.0",
            "Remove all keys from the current database.",
            "O(N) where N is the number of keys in the selected database",
            "[ASYNC | SYNC]",
        ),
    Command::new("flushall", -1, flushall)
        .flags(flags::WRITE | flags::LOCK_ALL)
        .acl(&["keyspace", "dangerous"])
        .doc(
            "server",
            "1.0.0",
            "Removes all keys from all databases.",
            "O(N) where N is the total number of keys in all databases",
            "[ASYNC | SYNC]",
        ),
];

/// Redis's `getIntFromObjectOrReply`: a strict integer that fits a C int. With a custom
/// message (`msg`), every failure gives that message; without, the generic texts.
fn int_arg(arg: &[u8], msg: Option<&str>) -> Result<i64, CmdError> {
    let custom = || msg.map(CmdError::other);
    let v = parse::int(arg).map_err(|e| custom().unwrap_or(e))?;
    if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) {
        return Err(custom()
            .unwrap_or_else(|| parse::range_error(i64::from(i32::MIN), i64::from(i32::MAX))));
    }
    Ok(v)
}

/// A database index, if it names one of the configured databases.
fn db_index(ctx: &Ctx<'_, '_>, v: i64) -> Option<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&i| i < ctx.locked.keyspace().databases())
}

fn select(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let v = int_arg(args.get(1), None)?;
    if ctx.server.cluster.enabled && v != 0 {
        return Err(CmdError::other("ERR SELECT is not allowed in cluster mode"));
    }
    let db = db_index(ctx, v).ok_or(CmdError::DbIndexOutOfRange)?;
    ctx.client.select(db);
    reply.ok();
    Ok(())
}

/// SWAPDB: clients stay on their index and see the other database's data; watchers of
/// keys present in either database before or after become dirty (`Locked::swap_dbs`).
fn swapdb(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if ctx.server.cluster.enabled {
        return Err(CmdError::other("ERR SWAPDB is not allowed in cluster mode"));
    }
    let a = int_arg(args.get(1), Some("ERR invalid first DB index"))?;
    let b = int_arg(args.get(2), Some("ERR invalid second DB index"))?;
    let (Some(a), Some(b)) = (db_index(ctx, a), db_index(ctx, b)) else {
        return Err(CmdError::DbIndexOutOfRange);
    };
    ctx.locked.swap_dbs(a, b);
    reply.ok();
    Ok(())
}

/// DBSIZE counts stored keys, including ones past their TTL not yet reclaimed.
fn dbsize(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let n = ctx.db().len();
    reply.int(n as i64);
    Ok(())
}

/// The optional ASYNC / SYNC word of FLUSHDB / FLUSHALL: whether the keys' memory is freed
/// by the lazyfree thread (ASYNC) or here (SYNC); without it, `lazyfree-lazy-user-flush`.
fn check_flush_mode(ctx: &Ctx<'_, '_>, args: Args<'_>) -> Result<bool, CmdError> {
    match args.len() {
        1 => Ok(ctx
            .server
            .config
            .lazyfree_lazy_user_flush
            .load(Ordering::Relaxed)),
        2 if parse::is(args.get(1), "async") => Ok(true),
        2 if parse::is(args.get(1), "sync") => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// FLUSHDB: watchers of keys that existed become dirty (`Shard::clear`).
fn flushdb(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let lazy = check_flush_mode(ctx, args)?;
    ctx.db().clear_lazily(lazy);
    reply.ok();
    Ok(())
}

/// FLUSHALL: as Redis's `flushAllDataAndResetRDB`, with save points configured it stops a
/// running BGSAVE and saves the (now empty) dataset at once, so a restart does not bring
/// the flushed data back; the change counter then reads 1.
fn flushall(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let lazy = check_flush_mode(ctx, args)?;
    for i in 0..ctx.locked.keyspace().databases() {
        ctx.locked.db(i).clear_lazily(lazy);
    }
    let server = ctx.server;
    if !server.config.save_points.read().is_empty() {
        server.rdb.kill_child();
        match crate::persist::snapshot::save_locked(server, ctx.locked) {
            Ok(_) => {
                // This command's own changes are counted when its locks are released;
                // Redis's counter reads 1 after FLUSHALL's save.
                let pending = ctx.locked.log().command_changes() as u64;
                let now = server.keyspace.changes();
                server
                    .rdb
                    .changes_at_last_save
                    .store((now + pending).saturating_sub(1), Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "FLUSHALL could not save the empty dataset"),
        }
    }
    reply.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;
    use crate::keyspace::LockPlan;

    #[test]
    fn select_switches_database() {
        let mut env = TestEnv::new();
        env.run("HSET k f v0");
        assert_eq!(env.run("SELECT 1"), "+OK\r\n");
        assert_eq!(env.client.db, 1);
        assert_eq!(env.run("EXISTS k"), ":0\r\n");
        env.run("HSET k f v1");
        assert_eq!(env.run("SELECT 15"), "+OK\r\n");
        assert_eq!(env.run("DBSIZE"), ":0\r\n");
        assert_eq!(env.run("SELECT 0"), "+OK\r\n");
        assert_eq!(env.run("HGET k f"), "$2\r\nv0\r\n");
        env.run("SELECT 1");
        assert_eq!(env.run("HGET k f"), "$2\r\nv1\r\n");
        env.resp3();
        assert_eq!(env.run("SELECT 0"), "+OK\r\n");
    }

    #[test]
    fn select_errors() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("SELECT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("SELECT 01"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("SELECT 9223372036854775808"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("SELECT 2147483648"),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
        );
        assert_eq!(
            env.run("SELECT -2147483649"),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
        );
        assert_eq!(env.run("SELECT 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(env.run("SELECT -1"), "-ERR DB index is out of range\r\n");
        assert_eq!(
            env.run("SELECT 2147483647"),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            env.run("SELECT -2147483648"),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(env.client.db, 0);
        assert_eq!(
            env.run("SELECT"),
            "-ERR wrong number of arguments for 'select' command\r\n"
        );
        assert_eq!(
            env.run("SELECT 1 2"),
            "-ERR wrong number of arguments for 'select' command\r\n"
        );
    }

    #[test]
    fn select_inside_multi_moves_later_commands() {
        let mut env = TestEnv::new();
        env.run("HSET k f v0");
        env.run("MULTI");
        assert_eq!(env.run("DBSIZE"), "+QUEUED\r\n");
        assert_eq!(env.run("SELECT 3"), "+QUEUED\r\n");
        assert_eq!(env.run("HSET k f v3"), "+QUEUED\r\n");
        assert_eq!(env.run("DBSIZE"), "+QUEUED\r\n");
        assert_eq!(env.run("SELECT 99"), "+QUEUED\r\n");
        assert_eq!(
            env.run("EXEC"),
            "*5\r\n:1\r\n+OK\r\n:1\r\n:1\r\n-ERR DB index is out of range\r\n"
        );
        assert_eq!(env.client.db, 3, "the selection outlives the transaction");
        assert_eq!(env.run("HGET k f"), "$2\r\nv3\r\n");
    }

    #[test]
    fn dbsize_counts_keys_including_unreclaimed_expired_ones() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("DBSIZE"), ":0\r\n");
        env.run("HSET a f v");
        env.run("HSET b f v");
        assert_eq!(env.run("DBSIZE"), ":2\r\n");
        env.run("PEXPIRE a 1");
        env.advance_ms(2);
        assert_eq!(env.run("DBSIZE"), ":2\r\n");
        assert_eq!(env.run("EXISTS a"), ":0\r\n");
        assert_eq!(env.run("DBSIZE"), ":1\r\n");
        assert_eq!(
            env.run("DBSIZE x"),
            "-ERR wrong number of arguments for 'dbsize' command\r\n"
        );
    }

    #[test]
    fn flushdb_empties_only_the_selected_db() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        env.run("SELECT 1");
        env.run("HSET b f v");
        env.run("PEXPIRE b 100");
        assert_eq!(env.run("FLUSHDB"), "+OK\r\n");
        assert_eq!(env.run("DBSIZE"), ":0\r\n");
        env.run("HSET b f v");
        assert_eq!(env.run("FLUSHDB async"), "+OK\r\n");
        env.run("HSET b f v");
        assert_eq!(env.run("FLUSHDB SYNC"), "+OK\r\n");
        assert_eq!(env.run("DBSIZE"), ":0\r\n");
        env.run("SELECT 0");
        assert_eq!(env.run("DBSIZE"), ":1\r\n");
        // No TTL state survives a flush.
        env.run("SELECT 1");
        env.run("HSET b f v");
        assert_eq!(env.run("TTL b"), ":-1\r\n");
        let s = env.server.keyspace.db_summary(1);
        assert_eq!((s.key_ttls, s.field_ttl_hashes), (0, 0));
    }

    #[test]
    fn flushdb_clears_field_ttl_state() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        {
            let now = env.now_ms();
            let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
            let mut db = l.db(0);
            let mut h = db.get_mut(b"k", now).expect("k exists");
            h.set_expire(b"f", Some(now + 100));
        }
        assert_eq!(env.server.keyspace.db_summary(0).as_tuple(), (1, 0, 1));
        env.run("FLUSHDB");
        assert_eq!(env.server.keyspace.db_summary(0).as_tuple(), (0, 0, 0));
    }

    #[test]
    fn flush_syntax_errors() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        for cmd in ["FLUSHDB", "FLUSHALL"] {
            assert_eq!(env.run(&format!("{cmd} LAZY")), "-ERR syntax error\r\n");
            assert_eq!(
                env.run(&format!("{cmd} ASYNC SYNC")),
                "-ERR syntax error\r\n"
            );
            assert_eq!(
                env.run(&format!("{cmd} SYNC SYNC")),
                "-ERR syntax error\r\n"
            );
        }
        assert_eq!(env.run("DBSIZE"), ":1\r\n", "nothing was flushed");
    }

    #[test]
    fn flushall_empties_every_db() {
        let mut env = TestEnv::new();
        for db in [0, 5, 15] {
            env.run(&format!("SELECT {db}"));
            env.run("HSET k f v");
        }
        env.run("SELECT 5");
        assert_eq!(env.run("FLUSHALL"), "+OK\r\n");
        for db in [0, 5, 15] {
            env.run(&format!("SELECT {db}"));
            assert_eq!(env.run("DBSIZE"), ":0\r\n");
        }
        env.run("HSET k f v");
        assert_eq!(env.run("flushall Async"), "+OK\r\n");
        assert_eq!(env.run("DBSIZE"), ":0\r\n");
    }

    #[test]
    fn flush_dirties_watchers_of_existing_keys_only() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("WATCH k");
        env.run("FLUSHDB");
        env.run("MULTI");
        env.run("EXISTS k");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        // A watched key that did not exist is not changed by a flush.
        env.run("WATCH nokey");
        env.run("FLUSHDB");
        env.run("MULTI");
        env.run("EXISTS nokey");
        assert_eq!(env.run("EXEC"), "*1\r\n:0\r\n");
        // FLUSHALL reaches watchers in other databases.
        env.run("SELECT 2");
        env.run("HSET w f v");
        env.run("WATCH w");
        env.run("SELECT 0");
        env.run("FLUSHALL");
        env.run("MULTI");
        env.run("DBSIZE");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        // FLUSHDB of another database leaves a watcher clean.
        env.run("SELECT 2");
        env.run("HSET w f v");
        env.run("WATCH w");
        env.run("SELECT 3");
        env.run("HSET w f v");
        env.run("FLUSHDB");
        env.run("MULTI");
        env.run("DBSIZE");
        assert_eq!(env.run("EXEC"), "*1\r\n:0\r\n");
    }

    #[test]
    fn flushdb_inside_multi() {
        let mut env = TestEnv::new();
        env.run("HSET a f v");
        env.run("MULTI");
        env.run("FLUSHDB");
        env.run("DBSIZE");
        assert_eq!(env.run("EXEC"), "*2\r\n+OK\r\n:0\r\n");
    }

    #[test]
    fn swapdb_swaps_contents_and_ttls() {
        let mut env = TestEnv::new();
        env.run("HSET a f v0");
        env.run("PEXPIRE a 5000");
        let at = env.now_ms() + 1000;
        {
            let now = env.now_ms();
            let mut l = env.server.keyspace.lock(&LockPlan::Db(0));
            let mut db = l.db(0);
            let mut h = db.get_mut(b"a", now).expect("a exists");
            h.set_expire(b"f", Some(at));
        }
        env.run("SELECT 1");
        env.run("HSET b f v1");
        env.run("HSET c f v1");
        assert_eq!(env.run("SWAPDB 0 1"), "+OK\r\n");
        // This client stays on db 1, which now holds db 0's data.
        assert_eq!(env.run("DBSIZE"), ":1\r\n");
        assert_eq!(env.run("HGET a f"), "$2\r\nv0\r\n");
        assert_eq!(env.run("PTTL a"), ":5000\r\n");
        {
            let now = env.now_ms();
            let mut l = env.server.keyspace.lock(&LockPlan::Db(1));
            let mut db = l.db(1);
            let h = db.get(b"a", now).expect("a moved");
            assert_eq!(h.get(b"f").and_then(|f| f.expire_at), Some(at));
        }
        env.run("SELECT 0");
        assert_eq!(env.run("DBSIZE"), ":2\r\n");
        // The moved field TTL still fires.
        env.run("SELECT 1");
        env.advance_ms(1001);
        assert_eq!(env.run("HGET a f"), "$-1\r\n");
        assert_eq!(env.run("EXISTS a"), ":0\r\n");
        // Swapping a database with itself is allowed.
        assert_eq!(env.run("SWAPDB 0 0"), "+OK\r\n");
        env.run("SELECT 0");
        assert_eq!(env.run("DBSIZE"), ":2\r\n");
    }

    #[test]
    fn swapdb_errors() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("SWAPDB x 0"), "-ERR invalid first DB index\r\n");
        assert_eq!(env.run("SWAPDB x y"), "-ERR invalid first DB index\r\n");
        assert_eq!(
            env.run("SWAPDB 2147483648 0"),
            "-ERR invalid first DB index\r\n"
        );
        assert_eq!(env.run("SWAPDB 0 y"), "-ERR invalid second DB index\r\n");
        assert_eq!(
            env.run("SWAPDB 0 -2147483649"),
            "-ERR invalid second DB index\r\n"
        );
        // Both are parsed before either is range-checked.
        assert_eq!(env.run("SWAPDB 16 y"), "-ERR invalid second DB index\r\n");
        assert_eq!(env.run("SWAPDB 16 0"), "-ERR DB index is out of range\r\n");
        assert_eq!(env.run("SWAPDB 0 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(env.run("SWAPDB -1 0"), "-ERR DB index is out of range\r\n");
        assert_eq!(
            env.run("SWAPDB 0"),
            "-ERR wrong number of arguments for 'swapdb' command\r\n"
        );
    }

    #[test]
    fn swapdb_dirties_watchers() {
        let mut env = TestEnv::new();
        // Watched key exists before the swap.
        env.run("HSET k f v");
        env.run("WATCH k");
        env.run("SWAPDB 0 1");
        env.run("MULTI");
        env.run("DBSIZE");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        // Watched key appears through the swap.
        env.run("WATCH k");
        env.run("SWAPDB 0 1");
        env.run("MULTI");
        env.run("DBSIZE");
        assert_eq!(env.run("EXEC"), "*-1\r\n");
        // A watched key absent from both databases stays clean.
        env.run("WATCH nokey");
        env.run("SWAPDB 0 1");
        env.run("MULTI");
        env.run("DBSIZE");
        assert_eq!(env.run("EXEC"), "*1\r\n:0\r\n");
        // Databases not involved are untouched.
        env.run("HSET k f v");
        env.run("WATCH k");
        env.run("SWAPDB 2 3");
        env.run("MULTI");
        env.run("DBSIZE");
        assert_eq!(env.run("EXEC"), "*1\r\n:1\r\n");
    }

    #[test]
    fn swapdb_inside_multi() {
        let mut env = TestEnv::new();
        env.run("HSET k f v");
        env.run("MULTI");
        env.run("SWAPDB 0 1");
        env.run("EXISTS k");
        env.run("SELECT 1");
        env.run("EXISTS k");
        assert_eq!(env.run("EXEC"), "*4\r\n+OK\r\n:0\r\n+OK\r\n:1\r\n");
    }
}
