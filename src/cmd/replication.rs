//! REPLICAOF host port | NO ONE (and SLAVEOF)
//! REPLCONF option value [option value ...]
//! PSYNC replicationid offset
//! SYNC
//! WAIT numreplicas timeout
//!
//! The replication commands (`replication/` does the work). PSYNC and SYNC only mark the
//! connection: once their reply point is reached, `conn` hands the socket to
//! `replication::master`. WAIT marks the connection too: `conn` waits for the ACKs, then
//! answers.

use super::parse::is;
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::{parse_i64, Reply};

const ADMIN: u32 = flags::ADMIN | flags::NOSCRIPT;
/// Redis refuses these while it loads a stream asynchronously; hashd never does.
const SYNC_FLAGS: u32 = ADMIN | flags::NO_ASYNC_LOADING;

pub const COMMANDS: &[Command] = &[
    // Every shard: no command of the old master's link is halfway applied while the role
    // changes.
    Command::new("replicaof", 3, replicaof)
        .flags(SYNC_FLAGS | flags::STALE | flags::LOCK_ALL)
        .doc(
            "server",
            "5.0.0",
            "Configures a server as replica of another, or promotes it to a master.",
            "O(1)",
            "<host port | NO ONE>",
        ),
    Command::new("slaveof", 3, replicaof)
        .flags(SYNC_FLAGS | flags::STALE | flags::LOCK_ALL)
        .doc(
            "server",
            "1.0.0",
            "Sets a Redis server as a replica of another, or promotes it to being a master.",
            "O(1)",
            "<host port | NO ONE>",
        ),
    Command::new("replconf", -1, replconf)
        .flags(ADMIN | flags::LOADING | flags::STALE | flags::ALLOW_BUSY)
        .doc(
            "server",
            "3.0.0",
            "An internal command for configuring the replication stream.",
            "O(1)",
            "",
        ),
    Command::new("psync", -3, psync)
        .flags(SYNC_FLAGS | flags::NO_MULTI)
        .doc(
            "server",
            "2.8.0",
            "An internal command used in replication.",
            "",
            "replicationid offset",
        ),
    Command::new("sync", 1, sync)
        .flags(SYNC_FLAGS | flags::NO_MULTI)
        .doc(
            "server",
            "1.0.0",
            "An internal command used in replication.",
            "",
            "",
        ),
    Command::new("wait", 3, wait)
        .flags(flags::BLOCKING)
        .acl(&["connection"])
        .doc(
            "generic",
            "3.0.0",
            "Blocks until the asynchronous replication of all preceding write commands sent \
             by the connection is completed.",
            "O(1)",
            "numreplicas timeout",
        ),
];

/// REPLICAOF host port | NO ONE
fn replicaof(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let repl = &ctx.server.replication;
    if ctx.client.shared.kind() == crate::client::ClientKind::Replica {
        return Err(CmdError::other(
            "ERR Command is not valid when client is a replica.",
        ));
    }
    if is(args.get(1), "no") && is(args.get(2), "one") {
        if repl.become_master() {
            tracing::info!(
                "MASTER MODE enabled (user request from 'id={}')",
                ctx.client.id
            );
        }
        reply.ok();
        return Ok(());
    }
    let port = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let port = u16::try_from(port)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| CmdError::other("ERR Invalid master port"))?;
    let host = String::from_utf8_lossy(args.get(1)).into_owned();
    match repl.become_replica(&host, port) {
        Some(_) => {
            tracing::info!(
                "REPLICAOF {host}:{port} enabled (user request from 'id={}')",
                ctx.client.id
            );
            reply.ok();
        }
        None => reply.simple("OK Already connected to specified master"),
    }
    Ok(())
}

/// REPLCONF option value [option value ...]: what a replica tells its master before PSYNC,
/// and its ACKs (which only a replica link reads; elsewhere they get no reply, as in Redis).
fn replconf(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut i = 1;
    while i + 1 < args.len() {
        let (opt, value) = (args.get(i), args.get(i + 1));
        i += 2;
        if is(opt, "listening-port") {
            let port = parse_i64(value).ok_or(CmdError::NotInteger)?;
            ctx.client.repl.listening_port = port.max(0) as u64;
        } else if is(opt, "ip-address") {
            ctx.client.repl.ip_address = Some(String::from_utf8_lossy(value).into_owned());
        } else if is(opt, "capa") {
            if is(value, "eof") {
                ctx.client.repl.capa_eof = true;
            } else if is(value, "psync2") {
                ctx.client.repl.capa_psync2 = true;
            }
        } else if is(opt, "ack") || is(opt, "fack") || is(opt, "getack") {
            // Meaningful only on a replication link (read there, not dispatched).
            return Ok(());
        } else if is(opt, "rdb-only") || is(opt, "rdb-filter-only") {
            let v = parse_i64(value).ok_or(CmdError::NotInteger)?;
            if v != 0 && is(opt, "rdb-only") {
                return Err(CmdError::other(
                    "ERR hashd does not serve snapshot-only syncs (REPLCONF rdb-only 1)",
                ));
            }
        } else {
            let mut text = b"ERR Unrecognized REPLCONF option: ".to_vec();
            text.extend_from_slice(opt);
            return Err(CmdError::other_bytes(text));
        }
    }
    reply.ok();
    Ok(())
}

/// PSYNC replicationid offset (on a plain or a TLS connection alike, as in Redis).
fn psync(ctx: &mut Ctx<'_, '_>, args: Args<'_>, _reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if ctx.client.shared.kind() == crate::client::ClientKind::Replica {
        return Ok(());
    }
    let offset = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let id = String::from_utf8_lossy(args.get(1)).into_owned();
    ctx.client.repl.psync = Some((id, offset));
    ctx.client.become_replica = true;
    Ok(())
}

/// SYNC: the old full sync (no FULLRESYNC line, always `$<len>`), which test tools use.
fn sync(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, _reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if ctx.client.shared.kind() == crate::client::ClientKind::Replica {
        return Ok(());
    }
    ctx.client.repl.psync = None;
    ctx.client.become_replica = true;
    Ok(())
}

/// WAIT numreplicas timeout
fn wait(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let repl = &ctx.server.replication;
    if repl.is_replica() {
        return Err(CmdError::other(
            "ERR WAIT cannot be used with replica instances. Please also note that since \
             Redis 4.0 if a replica is configured to be writable (which is not the default) \
             writes to replicas are just local and are not propagated.",
        ));
    }
    let n = parse_i64(args.get(1)).ok_or(CmdError::NotInteger)?;
    let timeout = match parse_i64(args.get(2)) {
        Some(t) if t < 0 => return Err(CmdError::other("ERR timeout is negative")),
        Some(t) => t as u64,
        None => {
            return Err(CmdError::other(
                "ERR timeout is not an integer or out of range",
            ))
        }
    };
    let n = n.max(0) as usize;
    if ctx.client.in_exec {
        // A transaction cannot block: the count as it stands.
        reply.int(repl.acked_count(ctx.client.woff) as i64);
        return Ok(());
    }
    ctx.client.wait = Some((n, timeout));
    Ok(())
}

/// ROLE
pub fn role(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    match ctx.server.replication.role() {
        crate::replication::Role::Master { offset, replicas } => {
            reply.array(3);
            reply.bulk(b"master");
            reply.int(offset as i64);
            reply.array(replicas.len());
            for (ip, port, off) in replicas {
                reply.array(3);
                reply.bulk(ip.as_bytes());
                reply.bulk(port.to_string().as_bytes());
                reply.bulk(off.to_string().as_bytes());
            }
        }
        crate::replication::Role::Replica {
            host,
            port,
            state,
            offset,
        } => {
            reply.array(5);
            reply.bulk(b"slave");
            reply.bulk(host.as_bytes());
            reply.int(i64::from(port));
            reply.bulk(state.as_bytes());
            reply.int(offset);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;

    #[test]
    fn replconf_options_and_errors() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("REPLCONF listening-port 6380"), "+OK\r\n");
        assert_eq!(env.run("REPLCONF capa eof capa psync2"), "+OK\r\n");
        assert_eq!(env.run("REPLCONF"), "+OK\r\n");
        assert_eq!(env.run("REPLCONF capa"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("REPLCONF listening-port x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            env.run("REPLCONF nosuch 1"),
            "-ERR Unrecognized REPLCONF option: nosuch\r\n"
        );
        // An ACK outside a replication link gets no reply at all.
        assert_eq!(env.run("REPLCONF ACK 10"), "");
    }

    #[test]
    fn wait_and_role_on_a_master_without_replicas() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("WAIT 1 -1"), "-ERR timeout is negative\r\n");
        assert_eq!(
            env.run("WAIT 1 x"),
            "-ERR timeout is not an integer or out of range\r\n"
        );
        env.run("MULTI");
        env.run("WAIT 1 0");
        assert_eq!(env.run("EXEC"), "*1\r\n:0\r\n");
        assert_eq!(env.run("ROLE"), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    }

    #[test]
    fn replicaof_switches_role_and_back() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("REPLICAOF 127.0.0.1 notaport"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(env.run("REPLICAOF 127.0.0.1 6390"), "+OK\r\n");
        assert_eq!(
            env.run("REPLICAOF 127.0.0.1 6390"),
            "+OK Already connected to specified master\r\n"
        );
        assert_eq!(
            env.run("ROLE"),
            "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6390\r\n$7\r\nconnect\r\n:-1\r\n"
        );
        assert!(env
            .run("WAIT 0 0")
            .starts_with("-ERR WAIT cannot be used with replica"));
        let info = env.run("INFO replication");
        assert!(info.contains("role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6390\r\n"));
        assert!(info.contains("master_link_status:down\r\n"));
        assert_eq!(env.run("SLAVEOF NO ONE"), "+OK\r\n");
        assert!(env.run("INFO replication").contains("role:master\r\n"));
    }
}
