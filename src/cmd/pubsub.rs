//! SUBSCRIBE channel [channel ...]
//! UNSUBSCRIBE [channel [channel ...]]
//! PSUBSCRIBE pattern [pattern ...]
//! PUNSUBSCRIBE [pattern [pattern ...]]
//! PUBLISH channel message
//! PUBSUB CHANNELS [pattern] | NUMSUB [channel [channel ...]] | NUMPAT | HELP
//! PUBSUB SHARDCHANNELS [pattern] | SHARDNUMSUB [shardchannel [shardchannel ...]]
//!
//! Redis pub/sub (pubsub.c); delivery lives in `crate::pubsub`. Each (un)subscription is
//! answered with its own `[kind, name, count]` message, where count is the client's
//! channels plus patterns afterwards. hashd has no sharded pub/sub (SSUBSCRIBE), so the
//! SHARD* introspection answers as Redis does with no shard channel subscribed.

use super::client::help_reply;
use super::{flags, Args, Command, Ctx};
use crate::error::CmdError;
use crate::protocol::Reply;
use crate::pubsub::{self, Kind};

/// The flags Redis gives the (un)subscribe commands.
const SUBSCRIBE_FLAGS: u32 = flags::PUBSUB | flags::NOSCRIPT | flags::LOADING | flags::STALE;
const INTROSPECTION_FLAGS: u32 = flags::PUBSUB | flags::LOADING | flags::STALE;

const SUBCOMMANDS: &[Command] = &[
    Command::new("pubsub|channels", -2, channels)
        .flags(INTROSPECTION_FLAGS)
        .doc(
            "pubsub",
            "2.8.0",
            "Returns the active channels.",
            "O(N) where N is the number of active channels, and assuming constant time \
             pattern matching (relatively short channels and patterns)",
            "[pattern]",
        ),
    Command::new("pubsub|numsub", -2, numsub)
        .flags(INTROSPECTION_FLAGS)
        .doc(
            "pubsub",
            "2.8.0",
            "Returns a count of subscribers to channels.",
            "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
            "[channel [channel ...]]",
        ),
    Command::new("pubsub|numpat", 2, numpat)
        .flags(INTROSPECTION_FLAGS)
        .doc(
            "pubsub",
            "2.8.0",
            "Returns a count of unique pattern subscriptions.",
            "O(1)",
            "",
        ),
    Command::new("pubsub|shardchannels", -2, shardchannels)
        .flags(INTROSPECTION_FLAGS)
        .doc(
            "pubsub",
            "7.0.0",
            "Returns the active shard channels.",
            "O(N) where N is the number of active shard channels, and assuming constant \
             time pattern matching (relatively short shard channels).",
            "[pattern]",
        ),
    Command::new("pubsub|shardnumsub", -2, shardnumsub)
        .flags(INTROSPECTION_FLAGS)
        .doc(
            "pubsub",
            "7.0.0",
            "Returns the count of subscribers of shard channels.",
            "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard \
             channels",
            "[shardchannel [shardchannel ...]]",
        ),
    Command::new("pubsub|help", 2, help)
        .flags(flags::LOADING | flags::STALE)
        .doc(
            "pubsub",
            "6.2.0",
            "Returns helpful text about the different subcommands.",
            "O(1)",
            "",
        ),
];

pub const COMMANDS: &[Command] = &[
    Command::new("subscribe", -2, subscribe)
        .flags(SUBSCRIBE_FLAGS)
        .doc(
            "pubsub",
            "2.0.0",
            "Listens for messages published to channels.",
            "O(N) where N is the number of channels to subscribe to.",
            "channel [channel ...]",
        ),
    Command::new("unsubscribe", -1, unsubscribe)
        .flags(SUBSCRIBE_FLAGS)
        .doc(
            "pubsub",
            "2.0.0",
            "Stops listening to messages posted to channels.",
            "O(N) where N is the number of channels to unsubscribe.",
            "[channel [channel ...]]",
        ),
    Command::new("psubscribe", -2, psubscribe)
        .flags(SUBSCRIBE_FLAGS)
        .doc(
            "pubsub",
            "2.0.0",
            "Listens for messages published to channels that match one or more patterns.",
            "O(N) where N is the number of patterns to subscribe to.",
            "pattern [pattern ...]",
        ),
    Command::new("punsubscribe", -1, punsubscribe)
        .flags(SUBSCRIBE_FLAGS)
        .doc(
            "pubsub",
            "2.0.0",
            "Stops listening to messages published to channels that match one or more \
             patterns.",
            "O(N) where N is the number of patterns to unsubscribe.",
            "[pattern [pattern ...]]",
        ),
    Command::new("publish", 3, publish)
        .flags(flags::PUBSUB | flags::LOADING | flags::STALE | flags::FAST)
        .doc(
            "pubsub",
            "2.0.0",
            "Posts a message to a channel.",
            "O(N+M) where N is the number of clients subscribed to the receiving channel and \
             M is the total number of subscribed patterns (by any client).",
            "channel message",
        ),
    Command::container("pubsub", SUBCOMMANDS).doc(
        "pubsub",
        "2.8.0",
        "A container for Pub/Sub commands.",
        "Depends on subcommand.",
        "",
    ),
];

/// Commands a RESP2 client may still send while subscribed (server.c `processCommand`).
pub fn allowed_while_subscribed(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "ping" | "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "quit" | "reset"
    )
}

/// The error for any other command: Redis names it by its full lower-case name
/// (`client|list`).
pub fn not_allowed_while_subscribed(cmd: &Command) -> CmdError {
    CmdError::other(format!(
        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET \
         are allowed in this context",
        cmd.name
    ))
}

/// `[kind, name, count]`: a push in RESP3, an array in RESP2. A missing name (an
/// unsubscribe-all with nothing subscribed) is a null.
fn notify(reply: &mut Reply<'_>, kind: &str, name: Option<&[u8]>, count: usize) {
    reply.push(3);
    reply.bulk(kind.as_bytes());
    match name {
        Some(n) => reply.bulk(n),
        None => reply.null(),
    }
    reply.int(count as i64);
}

fn subscribe_all(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>, kind: Kind) {
    let word = match kind {
        Kind::Channel => "subscribe",
        Kind::Pattern => "psubscribe",
    };
    for name in args.from(1) {
        let count = pubsub::subscribe(&ctx.server.pubsub, ctx.client, kind, name);
        notify(reply, word, Some(name), count);
    }
}

fn unsubscribe_all(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>, kind: Kind) {
    let word = match kind {
        Kind::Channel => "unsubscribe",
        Kind::Pattern => "punsubscribe",
    };
    if args.len() > 1 {
        for name in args.from(1) {
            let count = pubsub::unsubscribe(&ctx.server.pubsub, ctx.client, kind, name);
            notify(reply, word, Some(name), count);
        }
        return;
    }
    let names = pubsub::subscribed(ctx.client, kind);
    if names.is_empty() {
        let count = ctx.client.pubsub.as_ref().map_or(0, |s| s.count());
        notify(reply, word, None, count);
    }
    for name in &names {
        let count = pubsub::unsubscribe(&ctx.server.pubsub, ctx.client, kind, name);
        notify(reply, word, Some(name), count);
    }
}

/// SUBSCRIBE channel [channel ...]
fn subscribe(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    subscribe_all(ctx, args, reply, Kind::Channel);
    Ok(())
}

/// UNSUBSCRIBE [channel [channel ...]]
fn unsubscribe(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    unsubscribe_all(ctx, args, reply, Kind::Channel);
    Ok(())
}

/// PSUBSCRIBE pattern [pattern ...]
fn psubscribe(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    subscribe_all(ctx, args, reply, Kind::Pattern);
    Ok(())
}

/// PUNSUBSCRIBE [pattern [pattern ...]]
fn punsubscribe(
    ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    unsubscribe_all(ctx, args, reply, Kind::Pattern);
    Ok(())
}

/// PUBLISH channel message
fn publish(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let receivers = ctx.server.pubsub.publish(args.get(1), args.get(2));
    reply.int(receivers as i64);
    Ok(())
}

/// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try PUBSUB HELP.`
pub fn subcommand_syntax(args: Args<'_>) -> CmdError {
    // Redis's `%.128s`: at most 128 bytes, up to a NUL, unchanged (UTF-8 or not).
    let sub = args.get(1);
    let mut text = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    text.extend_from_slice(super::keys::c_str(&sub[..sub.len().min(128)]));
    text.extend_from_slice(b"'. Try ");
    text.extend(args.get(0).iter().map(u8::to_ascii_uppercase));
    text.extend_from_slice(b" HELP.");
    CmdError::other_bytes(text)
}

/// PUBSUB CHANNELS [pattern]
fn channels(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let pattern = (args.len() == 3).then(|| args.get(2));
    let names = ctx.server.pubsub.channels(pattern);
    reply.array(names.len());
    names.iter().for_each(|n| reply.bulk(n));
    Ok(())
}

/// PUBSUB NUMSUB [channel [channel ...]]: a flat array of channel, count pairs in both
/// protocols, as Redis sends it.
fn numsub(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.array((args.len() - 2) * 2);
    for channel in args.from(2) {
        reply.bulk(channel);
        reply.int(ctx.server.pubsub.numsub(channel) as i64);
    }
    Ok(())
}

/// PUBSUB NUMPAT
fn numpat(ctx: &mut Ctx<'_, '_>, _args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    reply.int(ctx.server.pubsub.numpat() as i64);
    Ok(())
}

/// PUBSUB SHARDCHANNELS [pattern]: no shard channel can exist.
fn shardchannels(
    _ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    reply.array(0);
    Ok(())
}

/// PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]
fn shardnumsub(
    _ctx: &mut Ctx<'_, '_>,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), CmdError> {
    reply.array((args.len() - 2) * 2);
    for channel in args.from(2) {
        reply.bulk(channel);
        reply.int(0);
    }
    Ok(())
}

const HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];

/// PUBSUB HELP
fn help(_ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    help_reply(reply, args.get(0), HELP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestEnv;

    const ONLY: &str = "only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are \
                        allowed in this context";

    fn sub(kind: &str, name: &str, n: usize) -> String {
        format!(
            "*3\r\n${}\r\n{kind}\r\n${}\r\n{name}\r\n:{n}\r\n",
            kind.len(),
            name.len()
        )
    }

    fn push(kind: &str, name: &str, n: usize) -> String {
        format!(
            ">3\r\n${}\r\n{kind}\r\n${}\r\n{name}\r\n:{n}\r\n",
            kind.len(),
            name.len()
        )
    }

    #[test]
    fn subscribe_replies_one_message_per_channel() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("SUBSCRIBE a b a"),
            format!(
                "{}{}{}",
                sub("subscribe", "a", 1),
                sub("subscribe", "b", 2),
                sub("subscribe", "a", 2)
            )
        );
        assert_eq!(env.run("PSUBSCRIBE x*"), sub("psubscribe", "x*", 3));
        assert_eq!(
            env.run("UNSUBSCRIBE b nope"),
            format!(
                "{}{}",
                sub("unsubscribe", "b", 2),
                sub("unsubscribe", "nope", 2)
            )
        );
        assert_eq!(env.run("PUNSUBSCRIBE x*"), sub("punsubscribe", "x*", 1));
        assert_eq!(env.run("UNSUBSCRIBE"), sub("unsubscribe", "a", 0));
        assert!(!env.client.in_pubsub_mode());
    }

    #[test]
    fn resp3_uses_push_messages() {
        let mut env = TestEnv::new();
        env.resp3();
        assert_eq!(env.run("SUBSCRIBE ch"), push("subscribe", "ch", 1));
        assert_eq!(env.run("PSUBSCRIBE p?"), push("psubscribe", "p?", 2));
        assert_eq!(env.run("PUNSUBSCRIBE"), push("punsubscribe", "p?", 1));
        assert_eq!(env.run("UNSUBSCRIBE ch"), push("unsubscribe", "ch", 0));
        assert_eq!(
            env.run("UNSUBSCRIBE"),
            ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"
        );
    }

    #[test]
    fn unsubscribe_all_with_nothing_subscribed_names_no_channel() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("UNSUBSCRIBE"),
            "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(
            env.run("PUNSUBSCRIBE"),
            "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
        );
        // The count covers both kinds: patterns remain after dropping every channel.
        env.run("PSUBSCRIBE p");
        assert_eq!(
            env.run("UNSUBSCRIBE"),
            "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n"
        );
        assert_eq!(env.run("UNSUBSCRIBE x"), sub("unsubscribe", "x", 1));
    }

    #[test]
    fn unsubscribe_all_lists_every_channel() {
        let mut env = TestEnv::new();
        env.run("SUBSCRIBE c b a");
        assert_eq!(
            env.run("UNSUBSCRIBE"),
            format!(
                "{}{}{}",
                sub("unsubscribe", "a", 2),
                sub("unsubscribe", "b", 1),
                sub("unsubscribe", "c", 0)
            )
        );
        assert_eq!(env.server.pubsub.channel_count(), 0);
    }

    #[test]
    fn subscribed_resp2_client_may_only_run_pubsub_commands() {
        let mut env = TestEnv::new();
        env.run("SUBSCRIBE ch");
        assert_eq!(
            env.run("HSET k f v"),
            format!("-ERR Can't execute 'hset': {ONLY}\r\n")
        );
        assert_eq!(
            env.run("client list"),
            format!("-ERR Can't execute 'client|list': {ONLY}\r\n")
        );
        assert_eq!(
            env.run("PUBLISH ch x"),
            format!("-ERR Can't execute 'publish': {ONLY}\r\n")
        );
        assert_eq!(
            env.run("MULTI"),
            format!("-ERR Can't execute 'multi': {ONLY}\r\n")
        );
        // Unknown commands and wrong arity are still reported first.
        assert_eq!(
            env.run("NOSUCH"),
            "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
        );
        assert_eq!(
            env.run("HSET k"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(env.run("PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        assert_eq!(env.run("PING hi"), "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
        assert_eq!(
            env.run("PING a b"),
            "-ERR wrong number of arguments for 'ping' command\r\n"
        );
        assert_eq!(env.run("PSUBSCRIBE p"), sub("psubscribe", "p", 2));
        assert_eq!(env.run("PUNSUBSCRIBE"), sub("punsubscribe", "p", 1));
        assert_eq!(env.run("UNSUBSCRIBE"), sub("unsubscribe", "ch", 0));
        assert_eq!(env.run("PING"), "+PONG\r\n");
        assert_eq!(env.run("HSET k f v"), ":1\r\n");
    }

    #[test]
    fn subscribed_resp3_client_may_run_anything() {
        let mut env = TestEnv::new();
        env.resp3();
        env.run("SUBSCRIBE ch");
        assert_eq!(env.run("PING"), "+PONG\r\n");
        assert_eq!(env.run("HSET k f v"), ":1\r\n");
        // A message published to oneself follows the PUBLISH reply.
        assert_eq!(
            env.run("PUBLISH ch hi"),
            ":1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        // Switching back to RESP2 while subscribed brings the restrictions back.
        env.run("HELLO 2");
        assert_eq!(
            env.run("HGET k f"),
            format!("-ERR Can't execute 'hget': {ONLY}\r\n")
        );
    }

    #[test]
    fn publish_to_self_inside_multi_follows_exec() {
        let mut env = TestEnv::new();
        env.resp3();
        env.run("SUBSCRIBE foo");
        env.run("MULTI");
        env.run("PING abc");
        env.run("PUBLISH foo bar");
        env.run("PUBLISH foo vaz");
        assert_eq!(
            env.run("EXEC"),
            "*3\r\n$3\r\nabc\r\n:1\r\n:1\r\n\
             >3\r\n$7\r\nmessage\r\n$3\r\nfoo\r\n$3\r\nbar\r\n\
             >3\r\n$7\r\nmessage\r\n$3\r\nfoo\r\n$3\r\nvaz\r\n"
        );
    }

    #[test]
    fn publish_counts_receivers() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("PUBLISH ch x"), ":0\r\n");
        assert_eq!(
            env.run("PUBLISH ch"),
            "-ERR wrong number of arguments for 'publish' command\r\n"
        );
    }

    #[test]
    fn reset_leaves_subscribed_mode() {
        let mut env = TestEnv::new();
        env.run("SUBSCRIBE a");
        env.run("PSUBSCRIBE b*");
        assert_eq!(env.run("RESET"), "+RESET\r\n");
        assert!(env.client.pubsub.is_none());
        assert_eq!(env.run("PUBSUB NUMSUB a"), "*2\r\n$1\r\na\r\n:0\r\n");
        assert_eq!(env.run("PUBSUB NUMPAT"), ":0\r\n");
        assert_eq!(env.run("PING"), "+PONG\r\n");
    }

    #[test]
    fn pubsub_introspection() {
        let mut env = TestEnv::new();
        assert_eq!(env.run("PUBSUB CHANNELS"), "*0\r\n");
        assert_eq!(env.run("PUBSUB NUMSUB"), "*0\r\n");
        assert_eq!(env.run("PUBSUB NUMPAT"), ":0\r\n");
        env.resp3();
        env.run("SUBSCRIBE news.a news.b other");
        env.run("PSUBSCRIBE news.* n*");
        let mut listed: Vec<_> = env
            .run("PUBSUB CHANNELS")
            .split("\r\n")
            .map(str::to_string)
            .collect();
        assert_eq!(listed[0], "*3");
        listed.sort();
        assert!(listed.contains(&"news.a".to_string()) && listed.contains(&"other".to_string()));
        assert_eq!(env.run("PUBSUB CHANNELS oth*"), "*1\r\n$5\r\nother\r\n");
        assert_eq!(env.run("PUBSUB CHANNELS NEWS*"), "*0\r\n");
        assert_eq!(
            env.run("PUBSUB NUMSUB news.a nope"),
            "*4\r\n$6\r\nnews.a\r\n:1\r\n$4\r\nnope\r\n:0\r\n"
        );
        assert_eq!(env.run("PUBSUB NUMPAT"), ":2\r\n");
        assert_eq!(env.run("PUBSUB SHARDCHANNELS"), "*0\r\n");
        assert_eq!(env.run("PUBSUB SHARDNUMSUB x"), "*2\r\n$1\r\nx\r\n:0\r\n");
    }

    #[test]
    fn pubsub_errors() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run("PUBSUB CHANNELS a b"),
            "-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
        );
        assert_eq!(
            env.run("pubsub shardchannels a b"),
            "-ERR unknown subcommand or wrong number of arguments for 'shardchannels'. Try PUBSUB HELP.\r\n"
        );
        assert_eq!(
            env.run("PUBSUB NUMPAT x"),
            "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n"
        );
        assert_eq!(
            env.run("PUBSUB nope"),
            "-ERR unknown subcommand 'nope'. Try PUBSUB HELP.\r\n"
        );
        assert_eq!(
            env.run("PUBSUB"),
            "-ERR wrong number of arguments for 'pubsub' command\r\n"
        );
        assert_eq!(
            env.run("SUBSCRIBE"),
            "-ERR wrong number of arguments for 'subscribe' command\r\n"
        );
        assert_eq!(
            env.run("PSUBSCRIBE"),
            "-ERR wrong number of arguments for 'psubscribe' command\r\n"
        );
    }

    #[test]
    fn pubsub_help() {
        let mut env = TestEnv::new();
        let reply = env.run("PUBSUB HELP");
        assert!(reply.starts_with(
            "*14\r\n+PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n\
             +CHANNELS [<pattern>]\r\n"
        ));
        assert!(reply.ends_with("+HELP\r\n+    Print this help.\r\n"));
    }

    #[test]
    fn client_list_shows_subscriptions() {
        let mut env = TestEnv::new();
        let me = std::sync::Arc::clone(&env.client.shared);
        env.server.clients.register(me);
        env.resp3();
        env.run("SUBSCRIBE a b");
        env.run("PSUBSCRIBE p");
        let line = env.run("CLIENT INFO");
        assert!(
            line.contains(" flags=P db=0 sub=2 psub=1 ssub=0 "),
            "{line}"
        );
        assert!(env.run("CLIENT LIST TYPE pubsub").contains("id=1 "));
        assert_eq!(env.run("CLIENT LIST TYPE normal"), "=4\r\ntxt:\r\n");
        env.run("UNSUBSCRIBE");
        env.run("PUNSUBSCRIBE");
        let line = env.run("CLIENT INFO");
        assert!(
            line.contains(" flags=N db=0 sub=0 psub=0 ssub=0 "),
            "{line}"
        );
        assert_eq!(env.run("CLIENT LIST TYPE pubsub"), "=4\r\ntxt:\r\n");
    }

    #[test]
    fn binary_channels_and_payloads() {
        let mut env = TestEnv::new();
        env.resp3();
        let ch: &[u8] = b"c\r\n\x00\xff";
        let out = env.run_args(&[b"SUBSCRIBE".as_slice(), ch]);
        assert_eq!(
            out,
            b">3\r\n$9\r\nsubscribe\r\n$5\r\nc\r\n\x00\xff\r\n:1\r\n"
        );
        let out = env.run_args(&[b"PUBLISH".as_slice(), ch, b"\x00"]);
        assert_eq!(
            out,
            b":1\r\n>3\r\n$7\r\nmessage\r\n$5\r\nc\r\n\x00\xff\r\n$1\r\n\x00\r\n"
        );
    }

    /// The subcommand is quoted as Redis 7.4.1's `%.128s` does (here as the client
    /// spelled it).
    #[test]
    fn subcommand_syntax_error_quotes_the_client_bytes() {
        let mut env = TestEnv::new();
        assert_eq!(
            env.run_args(&[b"pubsub".as_slice(), b"chAnnels", b"a", b"b"]),
            b"-ERR unknown subcommand or wrong number of arguments for 'chAnnels'. Try \
              PUBSUB HELP.\r\n"
        );
    }
}
