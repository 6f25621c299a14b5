//! PING [message]
//! ECHO message
//! HELLO [protover [AUTH username password] [SETNAME clientname]]
//! AUTH [username] password
//! QUIT
//! RESET
//!
//! The handshake commands every client sends first (spec §12, clients.md §2). hashd has one
//! user, `default`, whose password is `requirepass` (none: any password is accepted for it).

use super::parse::{self, is};
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::{Protocol, Reply};

/// The Redis version hashd reports (HELLO, INFO). Clients gate features on it.
pub const REDIS_VERSION: &str = "8.0.0";

/// Redis's wording, verbatim: clients surface it as is.
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, \
     otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the \
     client and select the RESP protocol version at the same time";

const AUTH_WITHOUT_PASSWORD: &str = "ERR AUTH <password> called without any password configured \
     for the default user. Are you sure your configuration is correct?";

const HANDSHAKE: u32 = flags::NOSCRIPT
    | flags::LOADING
    | flags::STALE
    | flags::FAST
    | flags::NO_AUTH
    | flags::ALLOW_BUSY;

pub const COMMANDS: &[Command] = &[
    Command::new("ping", -1, ping).flags(flags::FAST).doc(
        "connection",
        "1.0.0",
        "Returns the server's liveliness response.",
        "O(1)",
        "[message]",
    ),
    Command::new("echo", 2, echo)
        .flags(flags::LOADING | flags::STALE | flags::FAST)
        .doc(
            "connection",
            "1.0.0",
            "Returns the given string.",
            "O(1)",
            "message",
        ),
    Command::new("hello", -1, hello).flags(HANDSHAKE).doc(
        "connection",
        "6.0.0",
        "Handshakes with the Redis server.",
        "O(1)",
        "[protover [AUTH username password] [SETNAME clientname]]",
    ),
    Command::new("auth", -2, auth).flags(HANDSHAKE).doc(
        "connection",
        "1.0.0",
        "Authenticates the connection.",
        "O(N) where N is the number of passwords defined for the user",
        "[username] password",
    ),
    Command::new("quit", -1, quit)
        .flags(HANDSHAKE | flags::TXN_CONTROL)
        .doc("connection", "1.0.0", "Closes the connection.", "O(1)", ""),
    Command::new("reset", 1, reset)
        .flags(HANDSHAKE | flags::TXN_CONTROL)
        .doc("connection", "6.2.0", "Resets the connection.", "O(1)", ""),
];

/// PING [message]
fn ping(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    // The table's arity is -1; Redis checks the upper bound inside the command.
    if args.len() > 2 {
        return Err(CmdError::WrongArity("ping".into()));
    }
    if ctx.client.protocol == Protocol::Resp2 && ctx.client.in_pubsub_mode() {
        // Subscribed RESP2 clients read every reply as a message: ["pong", message-or-""].
        reply.array(2);
        reply.bulk(b"pong");
        reply.bulk(args.get(1));
    } else if args.len() == 1 {
        reply.simple("PONG");
    } else {
        reply.bulk(args.get(1));
    }
    Ok(())
}

/// ECHO message
fn echo(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.bulk(args.get(1));
    Ok(())
}

/// AUTH and HELLO AUTH: runs the connection as `user` if the password is right (the user
/// must be on); otherwise the failure is counted (INFO `acl_access_denied_auth`) and
/// logged (ACL LOG, reason `auth`), as in Redis.
fn login(ctx: &mut Ctx<'_, '_>, args: Args<'_>, user: &[u8], pass: &[u8]) -> Result<(), CmdError> {
    let found = ctx
        .server
        .acl
        .get_with_generation(user)
        .filter(|(u, _)| u.accepts(pass));
    match found {
        Some((u, generation)) => {
            ctx.client.set_user(u, generation);
            ctx.client.authenticated = true;
            Ok(())
        }
        None => {
            ctx.server
                .acl
                .denied
                .auth
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            super::acl::log_event(
                ctx.server,
                ctx.client,
                args,
                crate::acl::LogReason::Auth,
                b"AUTH",
                user,
            );
            Err(CmdError::WrongPass)
        }
    }
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let mut proto = None;
    let mut next = 1;
    if args.len() >= 2 {
        let ver = parse::int(args.get(1)).map_err(|_| {
            CmdError::other("ERR Protocol version is not an integer or out of range")
        })?;
        proto = Some(match ver {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(CmdError::other("NOPROTO unsupported protocol version")),
        });
        next = 2;
    }

    let mut credentials = None;
    let mut name = None;
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j);
        if is(opt, "auth") && more >= 2 {
            credentials = Some((args.get(j + 1), args.get(j + 2)));
            j += 3;
        } else if is(opt, "setname") && more >= 1 {
            let n = args.get(j + 1);
            if !super::client::valid_name(n) {
                return Err(super::client::bad_name());
            }
            name = Some(n);
            j += 2;
        } else {
            return Err(super::keys::error_quoting(
                "ERR Syntax error in HELLO option '",
                opt,
                "'",
            ));
        }
    }

    if let Some((user, pass)) = credentials {
        login(ctx, args, user, pass)?;
    }
    if !ctx.client.authenticated {
        return Err(CmdError::other(HELLO_NOAUTH));
    }
    if let Some(n) = name {
        ctx.client.shared.meta.lock().name = n.to_vec();
    }
    // The reply itself is in the new protocol.
    if let Some(p) = proto {
        ctx.client.set_protocol(p);
        reply.set_protocol(p);
    }

    reply.map(7);
    reply.bulk(b"server");
    reply.bulk(b"redis");
    reply.bulk(b"version");
    reply.bulk(REDIS_VERSION.as_bytes());
    reply.bulk(b"proto");
    reply.int(ctx.client.protocol.version());
    reply.bulk(b"id");
    reply.int(ctx.client.id as i64);
    reply.bulk(b"mode");
    reply.bulk(if ctx.server.cluster.enabled {
        b"cluster".as_slice()
    } else {
        b"standalone"
    });
    reply.bulk(b"role");
    reply.bulk(b"master");
    reply.bulk(b"modules");
    reply.array(0);
    Ok(())
}

/// AUTH [username] password
fn auth(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let (user, pass) = if args.len() == 2 {
        // The old form, for the default user: refused while it needs no password.
        if ctx.server.acl.default_user().nopass {
            return Err(CmdError::other(AUTH_WITHOUT_PASSWORD));
        }
        (crate::acl::DEFAULT_USER, args.get(1))
    } else {
        (args.get(1), args.get(2))
    };
    login(ctx, args, user, pass)?;
    reply.ok();
    Ok(())
}

/// QUIT
fn quit(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// RESET
fn reset(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    super::multi::reset_transaction_state(ctx);
    // RESET ends client-side caching, as in Redis.
    if ctx.client.tracking.take().is_some() {
        ctx.server.tracker.disable(ctx.client.id);
    }
    ctx.client.caching = None;
    crate::pubsub::forget(&ctx.server.pubsub, ctx.client);
    ctx.client.select(0);
    ctx.client.no_touch = false;
    ctx.client.cluster_readonly = false;
    ctx.client.set_protocol(Protocol::Resp2);
    reply.set_protocol(Protocol::Resp2);
    // Back to the default user, who is authenticated only if it has no password. The
    // library attributes describe the connection, not the session, and stay.
    ctx.client.log_in_as_default(&ctx.server.acl);
    ctx.client.shared.meta.lock().name.clear();
    reply.simple("RESET");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;

    fn with_password(pw: &str) -> TestEnv {
        let env = TestEnv::new();
        *env.server.config.requirepass.write() = Some(pw.to_string());
        env.server.acl.set_default_password(Some(pw));
        env
    }

    fn unauthenticated(pw: &str) -> TestEnv {
        let mut env = with_password(pw);
        env.client.authenticated = false;
        env
    }

    const HELLO_NOAUTH: &str = "-NOAUTH HELLO must be called with the client already \
        authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to \
        authenticate the client and select the RESP protocol version at the same time\r\n";

    fn hello_reply(proto: u8, resp3: bool) -> String {
        let head = if resp3 { "%7" } else { "*14" };
        format!(
            "{head}\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n8.0.0\r\n\
             $5\r\nproto\r\n:{proto}\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
             $4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
        )
    }

    #[test]
    fn ping_and_echo() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("PING"), "+PONG\r\n");
        assert_eq!(env.run("ping hello"), "$5\r\nhello\r\n");
        assert_eq!(env.run("PING \"\""), "$0\r\n\r\n");
        assert_eq!(
            env.run("PING a b"),
            "-ERR wrong number of arguments for 'ping' command\r\n"
        );
        env.resp3();
        assert_eq!(env.run("PING"), "+PONG\r\n");
        assert_eq!(env.run("ECHO x"), "$1\r\nx\r\n");
    }

    #[test]
    fn echo_is_binary_exact() {
        let mut env = TestEnv::new();
        let id: &[u8] = b"__Booksleeve\r\n\x00\xff";
        let mut expected = b"$16\r\n".to_vec();
        expected.extend_from_slice(id);
        expected.extend_from_slice(b"\r\n");
        assert_eq!(env.run_args(&[b"ECHO".as_slice(), id]), expected);
        assert_eq!(
            env.run("ECHO"),
            "-ERR wrong number of arguments for 'echo' command\r\n"
        );
        assert_eq!(
            env.run("ECHO a b"),
            "-ERR wrong number of arguments for 'echo' command\r\n"
        );
    }

    #[test]
    fn hello_switches_protocol_before_replying() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HELLO 3"), hello_reply(3, true));
        assert_eq!(env.client.protocol, crate::protocol::Protocol::Resp3);
        assert_eq!(
            env.client
                .shared
                .resp
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
        assert_eq!(env.run("CLIENT GETNAME"), "_\r\n");
        assert_eq!(env.run("HELLO 2"), hello_reply(2, false));
        assert_eq!(env.run("CLIENT GETNAME"), "$-1\r\n");
    }

    #[test]
    fn hello_without_arguments_reports_without_switching() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("HELLO"), hello_reply(2, false));
        env.resp3();
        assert_eq!(env.run("hello"), hello_reply(3, true));
        assert_eq!(env.run("HELLO 2"), hello_reply(2, false));
        assert_eq!(env.run("HELLO"), hello_reply(2, false));
    }

    #[test]
    fn hello_version_errors() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HELLO 4"),
            "-NOPROTO unsupported protocol version\r\n"
        );
        assert_eq!(
            env.run("HELLO 1"),
            "-NOPROTO unsupported protocol version\r\n"
        );
        assert_eq!(
            env.run("HELLO -3"),
            "-NOPROTO unsupported protocol version\r\n"
        );
        for bad in ["x", "+3", "03", "3.0", "\"\""] {
            assert_eq!(
                env.run(&format!("HELLO {bad}")),
                "-ERR Protocol version is not an integer or out of range\r\n",
                "{bad}"
            );
        }
        // The version is checked before the options.
        assert_eq!(
            env.run("HELLO 4 BOGUS"),
            "-NOPROTO unsupported protocol version\r\n"
        );
        assert_eq!(env.client.protocol, crate::protocol::Protocol::Resp2);
    }

    #[test]
    fn hello_option_errors() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HELLO 3 BOGUS"),
            "-ERR Syntax error in HELLO option 'BOGUS'\r\n"
        );
        assert_eq!(
            env.run("HELLO 3 AUTH default"),
            "-ERR Syntax error in HELLO option 'AUTH'\r\n"
        );
        assert_eq!(
            env.run("HELLO 3 setname"),
            "-ERR Syntax error in HELLO option 'setname'\r\n"
        );
        assert_eq!(
            env.run("HELLO 3 SETNAME \"a b\""),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        // Options are checked in order: a bad name before a later bad option.
        assert_eq!(
            env.run("HELLO 3 SETNAME \"a b\" BOGUS"),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(
            env.run("HELLO 3 SETNAME ok BOGUS"),
            "-ERR Syntax error in HELLO option 'BOGUS'\r\n"
        );
        // Nothing changed.
        assert_eq!(env.client.protocol, crate::protocol::Protocol::Resp2);
        assert_eq!(env.run("CLIENT GETNAME"), "$-1\r\n");
    }

    #[test]
    fn hello_setname_and_auth_without_password() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("HELLO 3 AUTH default anything SETNAME app"),
            hello_reply(3, true)
        );
        assert_eq!(env.run("CLIENT GETNAME"), "$3\r\napp\r\n");
        // Only the default user exists.
        assert_eq!(
            env.run("HELLO 3 AUTH someone pw"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        // The last SETNAME wins.
        env.run("HELLO 2 SETNAME a SETNAME b");
        assert_eq!(env.run("CLIENT GETNAME"), "$1\r\nb\r\n");
    }

    #[test]
    fn hello_requires_authentication() {
        let mut env = unauthenticated("secret");
        assert_eq!(env.run("HELLO 3"), HELLO_NOAUTH);
        assert_eq!(env.run("HELLO"), HELLO_NOAUTH);
        assert_eq!(env.client.protocol, crate::protocol::Protocol::Resp2);
        assert_eq!(
            env.run("HELLO 3 AUTH default wrong"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(env.client.protocol, crate::protocol::Protocol::Resp2);
        assert!(!env.client.authenticated);
        // A bad name fails before authentication happens.
        assert_eq!(
            env.run("HELLO 3 AUTH default secret SETNAME \"a\nb\""),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert!(!env.client.authenticated);
        assert_eq!(
            env.run("HELLO 3 AUTH default secret SETNAME app"),
            hello_reply(3, true)
        );
        assert!(env.client.authenticated);
        assert_eq!(env.run("CLIENT GETNAME"), "$3\r\napp\r\n");
    }

    #[test]
    fn auth_without_requirepass() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("AUTH pw"),
            "-ERR AUTH <password> called without any password configured for the default \
             user. Are you sure your configuration is correct?\r\n"
        );
        assert_eq!(env.run("AUTH default anything"), "+OK\r\n");
        assert_eq!(
            env.run("AUTH other anything"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(env.run("AUTH a b c"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("AUTH"),
            "-ERR wrong number of arguments for 'auth' command\r\n"
        );
    }

    #[test]
    fn auth_with_requirepass() {
        let mut env = unauthenticated("secret");
        assert_eq!(env.run("PING"), "-NOAUTH Authentication required.\r\n");
        assert_eq!(
            env.run("AUTH wrong"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(
            env.run("AUTH Default secret"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(env.run("AUTH a b c"), "-ERR syntax error\r\n");
        assert!(!env.client.authenticated);
        assert_eq!(env.run("AUTH secret"), "+OK\r\n");
        assert_eq!(env.run("PING"), "+PONG\r\n");
        // A failed AUTH does not log an authenticated client out.
        assert_eq!(
            env.run("AUTH nope"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(env.run("PING"), "+PONG\r\n");

        let mut env = unauthenticated("secret");
        assert_eq!(env.run("AUTH default secret"), "+OK\r\n");
        assert!(env.client.authenticated);
    }

    #[test]
    fn quit_replies_then_closes() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("QUIT"), "+OK\r\n");
        assert!(env.client.close_after_reply);
        // No authentication needed, and extra arguments are tolerated.
        let mut env = unauthenticated("pw");
        assert_eq!(env.run("quit now"), "+OK\r\n");
        assert!(env.client.close_after_reply);
    }

    #[test]
    fn quit_and_reset_run_inside_multi() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("MULTI"), "+OK\r\n");
        assert_eq!(env.run("PING"), "+QUEUED\r\n");
        assert_eq!(env.run("RESET"), "+RESET\r\n");
        assert!(!env.client.in_multi());
        assert_eq!(env.run("EXEC"), "-ERR EXEC without MULTI\r\n");
        env.run("MULTI");
        assert_eq!(env.run("QUIT"), "+OK\r\n");
        assert!(env.client.close_after_reply);
    }

    #[test]
    fn reset_restores_connection_defaults() {
        let mut env = TestEnv::new();
        env.run("HELLO 3 SETNAME app");
        env.run("CLIENT SETINFO LIB-NAME lib");
        env.client.select(3);
        env.run("WATCH k");
        env.run("MULTI");
        assert_eq!(env.run("RESET"), "+RESET\r\n");
        assert_eq!(env.client.protocol, crate::protocol::Protocol::Resp2);
        assert_eq!(env.client.db, 0);
        assert!(!env.client.in_multi());
        assert!(env.client.watched.is_empty());
        assert_eq!(env.run("CLIENT GETNAME"), "$-1\r\n");
        assert_eq!(env.client.shared.meta.lock().lib_name, b"lib");
        assert!(env.client.authenticated);
        assert_eq!(
            env.run("RESET x"),
            "-ERR wrong number of arguments for 'reset' command\r\n"
        );
    }

    #[test]
    fn reset_requires_auth_again_with_requirepass() {
        let mut env = with_password("pw");
        assert!(env.client.authenticated);
        assert_eq!(env.run("RESET"), "+RESET\r\n");
        assert!(!env.client.authenticated);
        assert_eq!(env.run("PING"), "-NOAUTH Authentication required.\r\n");
        assert_eq!(env.run("RESET"), "+RESET\r\n");
        assert_eq!(env.run("AUTH pw"), "+OK\r\n");
        assert_eq!(env.run("PING"), "+PONG\r\n");
    }

    /// The option is quoted as the client sent it, up to a NUL (Redis 7.4.1's `%s`).
    #[test]
    fn hello_option_error_keeps_the_client_bytes() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run_args(&[b"HELLO".as_slice(), b"3", b"\xffopt\x00z"]),
            b"-ERR Syntax error in HELLO option '\xffopt'\r\n"
        );
        assert_eq!(
            env.run_args(&[b"HELLO".as_slice(), b"2", b"x\r\n"]),
            b"-ERR Syntax error in HELLO option 'x  '\r\n"
        );
    }
}
