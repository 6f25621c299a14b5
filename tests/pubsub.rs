//! Pub/sub across real connections: delivery from one client to another in RESP2 and RESP3,
//! pattern subscriptions, PUBSUB introspection, the subscribed-mode restrictions, and the
//! cleanup when a subscriber goes away (by closing, RESET, CLIENT KILL, or by not reading).

mod common;

use std::time::Duration;

use common::{assert_bytes, show, wait_until, Client, TestServer, READ_TIMEOUT};

fn sub(kind: &str, name: &str, n: usize) -> Vec<u8> {
    format!(
        "*3\r\n${}\r\n{kind}\r\n${}\r\n{name}\r\n:{n}\r\n",
        kind.len(),
        name.len()
    )
    .into_bytes()
}

fn message(channel: &str, payload: &str) -> Vec<u8> {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        channel.len(),
        payload.len()
    )
    .into_bytes()
}

fn pmessage(pattern: &str, channel: &str, payload: &str) -> Vec<u8> {
    format!(
        "*4\r\n$8\r\npmessage\r\n${}\r\n{pattern}\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        pattern.len(),
        channel.len(),
        payload.len()
    )
    .into_bytes()
}

/// The same bytes with the RESP2 array header of a message turned into a RESP3 push.
fn as_push(mut resp2: Vec<u8>) -> Vec<u8> {
    assert_eq!(resp2[0], b'*');
    resp2[0] = b'>';
    resp2
}

const ONLY: &str =
    "only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context";

fn numsub(c: &mut Client, channel: &str) -> Vec<u8> {
    c.cmd(&["PUBSUB", "NUMSUB", channel])
}

fn numsub_is(n: usize, channel: &str) -> Vec<u8> {
    format!("*2\r\n${}\r\n{channel}\r\n:{n}\r\n", channel.len()).into_bytes()
}

/// Waits until PUBSUB NUMSUB (asked by `c`) reports `n` subscribers of `channel`.
#[track_caller]
fn wait_numsub(c: &mut Client, channel: &str, n: usize) {
    let want = numsub_is(n, channel);
    let mut last = Vec::new();
    let ok = wait_until(READ_TIMEOUT, || {
        last = numsub(c, channel);
        last == want
    });
    assert!(ok, "PUBSUB NUMSUB {channel}: {} (wanted {n})", show(&last));
}

#[test]
fn resp2_subscriber_receives_messages_from_another_client() {
    let srv = TestServer::start();
    let mut subscriber = srv.client();
    let mut publisher = srv.client();
    subscriber.expect("SUBSCRIBE news", &sub("subscribe", "news", 1));
    publisher.expect("PUBLISH news hello", b":1\r\n");
    publisher.expect("PUBLISH other nobody", b":0\r\n");
    publisher.expect("PUBLISH news \"two words\"", b":1\r\n");
    assert_bytes(
        &subscriber.read_reply(),
        &message("news", "hello"),
        "first message",
    );
    assert_bytes(
        &subscriber.read_reply(),
        &message("news", "two words"),
        "second message",
    );
}

#[test]
fn resp3_subscriber_receives_pushes() {
    let srv = TestServer::start();
    let mut subscriber = srv.client();
    let mut publisher = srv.client();
    subscriber.hello3();
    subscriber.expect(
        "SUBSCRIBE news",
        b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    subscriber.expect(
        "PSUBSCRIBE n*",
        b">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n",
    );
    publisher.expect("PUBLISH news x", b":2\r\n");
    assert_bytes(
        &subscriber.read_reply(),
        &as_push(message("news", "x")),
        "message push",
    );
    assert_bytes(
        &subscriber.read_reply(),
        &as_push(pmessage("n*", "news", "x")),
        "pmessage push",
    );
    // A RESP3 subscriber keeps running ordinary commands.
    subscriber.expect("HSET h f v", b":1\r\n");
    subscriber.expect("PING", b"+PONG\r\n");
}

#[test]
fn each_subscriber_gets_messages_in_its_own_protocol() {
    let srv = TestServer::start();
    let mut resp2 = srv.client();
    let mut resp3 = srv.client();
    let mut publisher = srv.client();
    publisher.hello3();
    resp2.expect("SUBSCRIBE c", &sub("subscribe", "c", 1));
    resp3.hello3();
    resp3.run("SUBSCRIBE c");
    publisher.expect("PUBLISH c m", b":2\r\n");
    assert_bytes(&resp2.read_reply(), &message("c", "m"), "RESP2 subscriber");
    assert_bytes(
        &resp3.read_reply(),
        &as_push(message("c", "m")),
        "RESP3 subscriber",
    );
}

#[test]
fn pattern_subscriptions_deliver_pmessages() {
    let srv = TestServer::start();
    let mut subscriber = srv.client();
    let mut publisher = srv.client();
    subscriber.expect("PSUBSCRIBE news.*", &sub("psubscribe", "news.*", 1));
    subscriber.expect("PSUBSCRIBE h?llo", &sub("psubscribe", "h?llo", 2));
    publisher.expect("PUBLISH news.tech a", b":1\r\n");
    publisher.expect("PUBLISH News.tech case-sensitive", b":0\r\n");
    publisher.expect("PUBLISH hallo b", b":1\r\n");
    assert_bytes(
        &subscriber.read_reply(),
        &pmessage("news.*", "news.tech", "a"),
        "news.* match",
    );
    assert_bytes(
        &subscriber.read_reply(),
        &pmessage("h?llo", "hallo", "b"),
        "h?llo match",
    );
    subscriber.expect("PUNSUBSCRIBE news.*", &sub("punsubscribe", "news.*", 1));
    publisher.expect("PUBLISH news.tech c", b":0\r\n");
}

#[test]
fn pubsub_introspection_sees_every_client() {
    let srv = TestServer::start();
    let mut a = srv.client();
    let mut b = srv.client();
    let mut observer = srv.client();
    a.run("SUBSCRIBE shared only-a");
    b.run("SUBSCRIBE shared");
    a.run("PSUBSCRIBE p*");
    b.run("PSUBSCRIBE p*");
    b.run("PSUBSCRIBE q*");
    observer.expect(
        "PUBSUB NUMSUB shared only-a none",
        b"*6\r\n$6\r\nshared\r\n:2\r\n$6\r\nonly-a\r\n:1\r\n$4\r\nnone\r\n:0\r\n",
    );
    observer.expect("PUBSUB NUMPAT", b":2\r\n");
    observer.expect("PUBSUB CHANNELS only*", b"*1\r\n$6\r\nonly-a\r\n");
    let all = observer.run("PUBSUB CHANNELS");
    assert!(
        all.starts_with(b"*2\r\n")
            && all.windows(8).any(|w| w == b"\r\nshared")
            && all.windows(8).any(|w| w == b"\r\nonly-a"),
        "{}",
        show(&all)
    );
    // A publish reaches two channel subscribers and the two clients of the p* pattern.
    observer.expect("PUBLISH shared x", b":2\r\n");
    observer.expect("PUBLISH pq y", b":2\r\n");
    observer.expect("PUBLISH qq z", b":1\r\n");
}

#[test]
fn subscribed_resp2_connection_is_restricted() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.expect(
        "SUBSCRIBE __Booksleeve_MasterChanged",
        &sub("subscribe", "__Booksleeve_MasterChanged", 1),
    );
    c.expect("PING", b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    c.expect("PING tracer", b"*2\r\n$4\r\npong\r\n$6\r\ntracer\r\n");
    c.expect(
        "HGET h f",
        format!("-ERR Can't execute 'hget': {ONLY}\r\n").as_bytes(),
    );
    c.expect(
        "CONFIG GET timeout",
        format!("-ERR Can't execute 'config|get': {ONLY}\r\n").as_bytes(),
    );
    c.expect(
        "PUBSUB NUMPAT",
        format!("-ERR Can't execute 'pubsub|numpat': {ONLY}\r\n").as_bytes(),
    );
    c.expect(
        "UNSUBSCRIBE",
        &sub("unsubscribe", "__Booksleeve_MasterChanged", 0),
    );
    c.expect("PING", b"+PONG\r\n");
    c.expect("HGET h f", b"$-1\r\n");
}

#[test]
fn unsubscribe_all_and_with_nothing_subscribed() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.expect("UNSUBSCRIBE", b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    c.expect(
        "PUNSUBSCRIBE",
        b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n",
    );
    c.run("SUBSCRIBE b a");
    c.read_reply();
    // Redis leaves the order open; hashd goes in byte order.
    c.expect("UNSUBSCRIBE", &sub("unsubscribe", "a", 1));
    assert_bytes(
        &c.read_reply(),
        &sub("unsubscribe", "b", 0),
        "second channel",
    );
    c.expect("PING", b"+PONG\r\n");
}

#[test]
fn pipelined_subscribe_and_ping() {
    let srv = TestServer::start();
    let mut c = srv.client();
    let mut batch = common::encode_command(&["SUBSCRIBE", "a", "b"]);
    batch.extend(common::encode_command(&["PING"]));
    batch.extend(common::encode_command(&["HSET", "h", "f", "v"]));
    c.send(&batch);
    assert_bytes(&c.read_reply(), &sub("subscribe", "a", 1), "first channel");
    assert_bytes(&c.read_reply(), &sub("subscribe", "b", 2), "second channel");
    assert_bytes(&c.read_reply(), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n", "PING");
    assert_bytes(
        &c.read_reply(),
        format!("-ERR Can't execute 'hset': {ONLY}\r\n").as_bytes(),
        "HSET",
    );
}

#[test]
fn closing_a_subscriber_unsubscribes_it() {
    let srv = TestServer::start();
    let mut observer = srv.client();
    {
        let mut c = srv.client();
        c.run("SUBSCRIBE gone");
        c.run("PSUBSCRIBE gone*");
        observer.expect("PUBSUB NUMSUB gone", &numsub_is(1, "gone"));
        observer.expect("PUBSUB NUMPAT", b":1\r\n");
    }
    wait_numsub(&mut observer, "gone", 0);
    observer.expect("PUBSUB NUMPAT", b":0\r\n");
    observer.expect("PUBSUB CHANNELS", b"*0\r\n");
    observer.expect("PUBLISH gone x", b":0\r\n");
}

#[test]
fn reset_unsubscribes() {
    let srv = TestServer::start();
    let mut c = srv.client();
    let mut observer = srv.client();
    c.run("SUBSCRIBE ch");
    c.expect("RESET", b"+RESET\r\n");
    observer.expect("PUBSUB NUMSUB ch", &numsub_is(0, "ch"));
    c.expect("HSET h f v", b":1\r\n");
}

#[test]
fn client_kill_type_pubsub_disconnects_subscribers_only() {
    let srv = TestServer::start();
    let mut subscriber = srv.client();
    let mut normal = srv.client();
    subscriber.run("SUBSCRIBE ch");
    let list = normal.run("CLIENT LIST TYPE pubsub");
    let text = String::from_utf8_lossy(&list);
    assert!(
        text.contains(" flags=P ") && text.contains(" sub=1 psub=0 "),
        "{text}"
    );
    assert_eq!(text.matches("id=").count(), 1, "{text}");
    normal.expect("CLIENT KILL TYPE pubsub", b":1\r\n");
    subscriber.read_until_closed();
    wait_numsub(&mut normal, "ch", 0);
    normal.expect("PING", b"+PONG\r\n");
}

#[test]
fn a_subscriber_that_does_not_read_is_disconnected() {
    let srv = TestServer::start();
    let mut slow = srv.client();
    let mut publisher = srv.client();
    slow.expect("SUBSCRIBE firehose", &sub("subscribe", "firehose", 1));
    // Past the 32 MB pubsub limit plus whatever the socket buffers absorb.
    let payload = vec![b'x'; 1024 * 1024];
    let publish = common::encode_command(&[b"PUBLISH".as_slice(), b"firehose", &payload]);
    let mut sent = 0;
    let gone = wait_until(Duration::from_secs(30), || {
        if sent < 256 {
            publisher.send(&publish);
            publisher.read_reply();
            sent += 1;
        }
        numsub(&mut publisher, "firehose") == numsub_is(0, "firehose")
    });
    assert!(
        gone,
        "the slow subscriber was not disconnected after {sent} MB"
    );
    // Whatever it had been sent so far, the connection then ends.
    slow.timeout = Duration::from_secs(10);
    let _ = slow.read_until_closed();
}
