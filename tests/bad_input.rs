//! Hostile and broken input over real sockets: malformed frames, lengths at and over the
//! limits, random bytes (seeded), absurd numbers, huge declared lengths with no payload and
//! slowloris-style partial frames. After each, the offender gets the right error (or none)
//! and a second, well-behaved client keeps being served with its data intact.
//!
//! Every loop is bounded and every read has a deadline.

mod common;

use std::time::Duration;

use common::{assert_bytes, encode_command, show, split_replies, Client, ReadError, TestServer};

/// How long "nothing happens" is watched for when a test must show the absence of a reply.
const QUIET_MS: u64 = 200;

/// A well-behaved client holding data that must survive whatever the others send.
struct Bystander {
    client: Client,
    big: Vec<u8>,
}

impl Bystander {
    fn new(srv: &TestServer) -> Self {
        let mut client = srv.client();
        let big: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert_bytes(
            &client.cmd(&[&b"HSET"[..], b"guard", b"f", b"value", b"big", &big]),
            b":2\r\n",
            "bystander setup",
        );
        Bystander { client, big }
    }

    #[track_caller]
    fn check(&mut self, after: &str) {
        let r = self.client.cmd(&["HGET", "guard", "f"]);
        assert_bytes(
            &r,
            b"$5\r\nvalue\r\n",
            &format!("bystander HGET after {after}"),
        );
        let mut want = format!("${}\r\n", self.big.len()).into_bytes();
        want.extend_from_slice(&self.big);
        want.extend_from_slice(b"\r\n");
        let r = self.client.cmd(&["HGET", "guard", "big"]);
        assert_bytes(&r, &want, &format!("bystander big value after {after}"));
    }
}

#[test]
fn malformed_frames_then_others_keep_being_served() {
    let srv = TestServer::start();
    let mut by = Bystander::new(&srv);
    let cases: &[(&str, &[u8], &[u8])] = &[
        (
            "bulk where count expected",
            b"*$3\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            "count with spaces",
            b"* 1\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            "count with trailing garbage",
            b"*1x\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        ("count -2", b"*-2\r\n", b""),
        (
            "negative bulk length",
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            "bulk length with spaces",
            b"*1\r\n$ 1\r\nx\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            "bulk length i64 overflow",
            b"*1\r\n$99999999999999999999\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            "integer instead of bulk",
            b"*1\r\n:1\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            "nested array",
            b"*1\r\n*1\r\n$1\r\nx\r\n",
            b"-ERR Protocol error: expected '$', got '*'\r\n",
        ),
        (
            "quote soup",
            b"\"\"\"\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            "quote glued",
            b"HSET k 'a''b' c\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (name, request, expected) in cases {
        let mut c = srv.client();
        c.send(request);
        if expected.is_empty() {
            // Ignored, no reply: a following command is answered normally.
            c.send(&encode_command(&["HGET", "guard", "f"]));
            assert_bytes(&c.read_reply(), b"$5\r\nvalue\r\n", name);
        } else {
            c.expect_reply_then_close(expected, name);
        }
        by.check(name);
    }

    // A NUL byte where `$` is expected hides the line's `\r` (Redis finds it with
    // strchr): Redis 7.4.1 waits, then refuses the line once it passes 64 KiB.
    let mut c = srv.client();
    c.send(b"*1\r\n\0\r\n");
    assert!(matches!(
        c.try_read_reply_within(Duration::from_millis(QUIET_MS)),
        Err(ReadError::Timeout(ref b)) if b.is_empty()
    ));
    c.send(&[b'x'; 64 * 1024]);
    c.expect_reply_then_close(
        b"-ERR Protocol error: too big bulk count string\r\n",
        "NUL byte where $ expected, then 64 KiB more",
    );
    by.check("NUL byte where $ expected");
}

#[test]
fn lengths_at_and_over_the_limits() {
    const INLINE_MAX: usize = 64 * 1024;
    const MAX_BULK: u64 = 1024 * 1024;
    let srv = TestServer::builder()
        .config(|c| c.proto_max_bulk_len = MAX_BULK)
        .start();
    let mut by = Bystander::new(&srv);

    // A bulk of exactly proto-max-bulk-len is accepted…
    let mut c = srv.client();
    let value = vec![b'z'; MAX_BULK as usize];
    assert_bytes(
        &c.cmd(&[&b"HSET"[..], b"max", b"f", &value]),
        b":1\r\n",
        "bulk of exactly proto-max-bulk-len",
    );
    let mut want = format!("${MAX_BULK}\r\n").into_bytes();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\n");
    assert!(
        c.cmd(&["HGET", "max", "f"]) == want,
        "the 1 MiB value comes back whole"
    );
    // …one byte more is not.
    c.send(format!("*3\r\n$4\r\nHGET\r\n$3\r\nmax\r\n${}\r\n", MAX_BULK + 1).as_bytes());
    c.expect_reply_then_close(
        b"-ERR Protocol error: invalid bulk length\r\n",
        "bulk one over the limit",
    );
    by.check("bulk over the limit");

    // A count line of exactly 64 KiB without CR is still waited for; the CR then makes it
    // an (invalid) number rather than a too-big line.
    let mut c = srv.client();
    let mut line = b"*".to_vec();
    line.extend(std::iter::repeat_n(b'1', INLINE_MAX - 1));
    c.send(&line);
    assert!(matches!(
        c.try_read_reply_within(Duration::from_millis(QUIET_MS)),
        Err(ReadError::Timeout(ref b)) if b.is_empty()
    ));
    c.send(b"\r\n");
    c.expect_reply_then_close(
        b"-ERR Protocol error: invalid multibulk length\r\n",
        "count line at 64 KiB",
    );

    // One more byte and it is too big.
    let mut c = srv.client();
    line.push(b'1');
    c.send(&line);
    c.expect_reply_then_close(
        b"-ERR Protocol error: too big mbulk count string\r\n",
        "count line over 64 KiB",
    );

    // The same boundary for a bulk length line.
    let mut c = srv.client();
    let mut line = b"*1\r\n$".to_vec();
    line.extend(std::iter::repeat_n(b'7', INLINE_MAX - 1));
    c.send(&line);
    c.send(b"\r\n");
    c.expect_reply_then_close(
        b"-ERR Protocol error: invalid bulk length\r\n",
        "bulk length line at 64 KiB",
    );

    // An inline request of exactly 64 KiB is served (as an unknown command, name cut to
    // 128 bytes); one byte more is refused.
    let mut c = srv.client();
    let mut inline = vec![b'x'; INLINE_MAX];
    c.send(&inline);
    c.send(b"\n");
    let expected = format!(
        "-ERR unknown command '{}', with args beginning with: \r\n",
        "x".repeat(128)
    );
    assert_bytes(
        &c.read_reply(),
        expected.as_bytes(),
        "inline of exactly 64 KiB",
    );
    inline.push(b'x');
    c.send(&inline);
    c.expect_reply_then_close(
        b"-ERR Protocol error: too big inline request\r\n",
        "inline over 64 KiB",
    );

    // The largest multibulk count is accepted (and must not be allocated up front).
    let mut c = srv.client();
    c.send(b"*2147483647\r\n$1\r\nx\r\n");
    assert!(matches!(
        c.try_read_reply_within(Duration::from_millis(QUIET_MS)),
        Err(ReadError::Timeout(ref b)) if b.is_empty()
    ));
    drop(c);
    by.check("limits");
}

#[test]
fn huge_declared_lengths_without_payload() {
    // If the server reserved what these frames announce, 16 × 512 MiB would take it down.
    let srv = TestServer::start();
    let mut by = Bystander::new(&srv);
    let mut idle = Vec::new();
    for i in 0..16 {
        let mut c = srv.client();
        if i % 2 == 0 {
            c.send(b"*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$1\r\nf\r\n$536870912\r\n");
        } else {
            c.send(b"*2147483647\r\n");
        }
        idle.push(c);
        by.check("a huge declaration");
    }
    // They are still open and waiting, not errored.
    for c in &mut idle {
        assert!(matches!(
            c.try_read_reply_within(Duration::from_millis(20)),
            Err(ReadError::Timeout(ref b)) if b.is_empty()
        ));
    }
    // A little payload, then hang up: the server drops the half-read request.
    for c in &mut idle {
        let _ = c.try_send(&[b'p'; 4096]);
        c.shutdown_write();
        assert!(c.read_until_closed().is_empty());
    }
    drop(idle);
    by.check("hanging up mid-payload");
    let mut c = srv.client();
    assert_bytes(&c.run("HGET k f"), b"$-1\r\n", "no half-read HSET ran");
}

/// Output for any input must be a sequence of complete replies, and a protocol error can
/// only be the last of them (the connection closes after it).
fn check_output(input: &[u8], output: &[u8]) -> Result<(), String> {
    let (replies, rest) =
        split_replies(output).map_err(|e| format!("malformed output {e}: {}", show(output)))?;
    if !rest.is_empty() {
        return Err(format!("partial reply at the end: {}", show(&rest)));
    }
    for (i, r) in replies.iter().enumerate() {
        if r.starts_with(b"-ERR Protocol error:") && i + 1 != replies.len() {
            return Err(format!(
                "reply after a protocol error for input {}: {}",
                show(input),
                show(output)
            ));
        }
    }
    Ok(())
}

fn mutate(rng: &mut fastrand::Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.usize(1..4) {
        match rng.u8(0..4) {
            0 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] = rng.u8(..);
            }
            1 => {
                let i = rng.usize(..=v.len());
                v.insert(
                    i,
                    *rng.choice(b"*$\r\n:-0123456789 \"'x".iter())
                        .unwrap_or(&b'x'),
                );
            }
            2 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v.remove(i);
            }
            _ => {
                let cut = rng.usize(..=v.len());
                v.truncate(cut);
            }
        }
    }
    v
}

#[test]
fn random_bytes_are_survived() {
    const ROUNDS: usize = 300;
    let srv = TestServer::start();
    let mut by = Bystander::new(&srv);
    let mut rng = fastrand::Rng::with_seed(0x6861_7368_6400);
    let mut seeds: Vec<Vec<u8>> = vec![
        encode_command(&["HSET", "fuzz", "field", "value"]),
        encode_command(&["HGET", "fuzz", "field"]),
        encode_command(&["HMGET", "fuzz", "a", "b", "c"]),
        encode_command(&["HINCRBY", "fuzz", "n", "1"]),
        encode_command(&["HEXPIRE", "fuzz", "100", "FIELDS", "1", "field"]),
        b"HSET fuzz \"a b\" 'c'\r\n".to_vec(),
        b"*0\r\n*-1\r\n".to_vec(),
    ];
    let pipeline: Vec<u8> = seeds.concat();
    seeds.push(pipeline);
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let input = match round % 3 {
            0 => {
                let n = rng.usize(1..2048);
                (0..n).map(|_| rng.u8(..)).collect::<Vec<u8>>()
            }
            1 => {
                let mut v = vec![b'*'];
                v.extend(
                    (0..rng.usize(0..64))
                        .map(|_| *rng.choice(b"*$\r\n0123456789-+:x ".iter()).unwrap_or(&b'x')),
                );
                v
            }
            _ => {
                let base = &seeds[rng.usize(..seeds.len())];
                mutate(&mut rng, base)
            }
        };
        let mut c = srv.client();
        if c.try_send(&input).is_err() {
            continue;
        }
        c.shutdown_write();
        let output = c.read_until_closed();
        if let Err(e) = check_output(&input, &output) {
            failures.push(format!("round {round}: {e}"));
        }
        if round % 25 == 0 {
            by.check(&format!("random round {round}"));
        }
    }
    by.check("all random rounds");
    assert!(
        failures.is_empty(),
        "{} rounds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn absurd_numbers() {
    let srv = TestServer::start();
    let mut by = Bystander::new(&srv);
    let mut c = srv.client();
    c.expect("HSET h a 1 b 2 c 3", b":3\r\n");
    // (command, exact reply; a trailing '…' means prefix)
    let table: &[(&str, &str)] = &[
        (
            "HRANDFIELD h 9223372036854775807",
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
        ),
        (
            "HRANDFIELD h 9223372036854775807 WITHVALUES",
            "-ERR value is out of range\r\n",
        ),
        (
            "HRANDFIELD h -9223372036854775807 WITHVALUES",
            "-ERR value is out of range\r\n",
        ),
        (
            "HRANDFIELD h 9223372036854775808",
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            "HSCAN h 18446744073709551615 COUNT 9223372036854775807",
            "*2\r\n$…",
        ),
        (
            "HSCAN h 0 COUNT 9223372036854775808",
            "-ERR value is not an integer or out of range\r\n",
        ),
        ("HSCAN h 99999999999999999999999", "-ERR invalid cursor\r\n"),
        (
            "SCAN 18446744073709551615 COUNT 9223372036854775807",
            "*2\r\n$…",
        ),
        (
            "HEXPIRE h 9223372036854775807 FIELDS 1 a",
            "-ERR invalid expire time in 'hexpire' command\r\n",
        ),
        (
            "HPEXPIRE h 9223372036854775807 FIELDS 1 a",
            "-ERR invalid expire time in 'hpexpire' command\r\n",
        ),
        (
            "HEXPIREAT h 9223372036854775807 FIELDS 1 a",
            "-ERR invalid expire time in 'hexpireat' command\r\n",
        ),
        (
            "HPEXPIREAT h 9223372036854775807 FIELDS 1 a",
            "-ERR invalid expire time in 'hpexpireat' command\r\n",
        ),
        (
            "HEXPIRE h -9223372036854775808 FIELDS 1 a",
            "-ERR invalid expire time, must be >= 0\r\n",
        ),
        (
            "HEXPIRE h 10 FIELDS 9223372036854775807 a",
            "-ERR The `numfields` parameter must match the number of arguments\r\n",
        ),
        (
            "HEXPIRE h 10 FIELDS 9223372036854775808 a",
            "-ERR Parameter `numFields` should be greater than 0\r\n",
        ),
        (
            "HTTL h FIELDS 9223372036854775807 a",
            "-ERR The `numfields` parameter must match the number of arguments\r\n",
        ),
        (
            "HTTL h FIELDS -9223372036854775808 a",
            "-ERR Number of fields must be a positive integer\r\n",
        ),
        (
            "HGETEX h EX 9223372036854775807 FIELDS 1 a",
            "-ERR invalid expire time in 'hgetex' command\r\n",
        ),
        (
            "HSETEX h EX 9223372036854775807 FIELDS 1 a b",
            "-ERR invalid expire time in 'hsetex' command\r\n",
        ),
        (
            "HSETEX h FIELDS 2147483647 a b",
            "-ERR wrong number of arguments for 'hsetex' command\r\n",
        ),
        (
            "HINCRBY h n 9223372036854775807",
            ":9223372036854775807\r\n",
        ),
        (
            "HINCRBY h n 1",
            "-ERR increment or decrement would overflow\r\n",
        ),
        (
            "HINCRBY h m -9223372036854775808",
            ":-9223372036854775808\r\n",
        ),
        (
            "HINCRBY h m -1",
            "-ERR increment or decrement would overflow\r\n",
        ),
        ("HINCRBY h m 0", ":-9223372036854775808\r\n"),
        (
            "HINCRBYFLOAT h x 1e5000",
            "-ERR value is not a valid float\r\n",
        ),
        (
            "EXPIRE h 9223372036854775807",
            "-ERR invalid expire time in 'expire' command\r\n",
        ),
        (
            "PEXPIRE h 9223372036854775807",
            "-ERR invalid expire time in 'pexpire' command\r\n",
        ),
        (
            "SELECT 9223372036854775807",
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n",
        ),
        (
            "HELLO 9223372036854775807",
            "-NOPROTO unsupported protocol version\r\n",
        ),
        ("HELLO -1", "-NOPROTO unsupported protocol version\r\n"),
        ("HGET h a", "$1\r\n1\r\n"),
    ];
    let mut failures = Vec::new();
    for (cmd, expected) in table {
        let got = match c.try_send(&encode_command(
            &common::split_line(cmd).unwrap_or_default(),
        )) {
            Ok(()) => c.try_read_reply(),
            Err(e) => {
                failures.push(format!("{cmd}: write failed: {e}"));
                break;
            }
        };
        let got = match got {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{cmd}: {}", common::describe_read_error(&e)));
                break;
            }
        };
        let ok = match expected.strip_suffix('…') {
            Some(prefix) => got.starts_with(prefix.as_bytes()),
            None => got == expected.as_bytes(),
        };
        if !ok {
            failures.push(format!(
                "{cmd}\n    expected: {}\n         got: {}",
                show(expected.as_bytes()),
                show(&got)
            ));
        }
    }
    by.check("absurd numbers");
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

#[test]
fn slowloris_partial_frames() {
    let srv = TestServer::start();
    let mut by = Bystander::new(&srv);

    // One byte per write, with the bystander served in between.
    let mut slow = srv.client();
    let frame = encode_command(&["HSET", "slow", "f", "v"]);
    for (i, b) in frame.iter().enumerate() {
        slow.send(&[*b]);
        if i % 8 == 0 {
            by.check("a slow client's partial frame");
        }
    }
    assert_bytes(&slow.read_reply(), b":1\r\n", "the byte-by-byte HSET");

    // Many clients stuck mid-frame at once, each at a different point.
    let mut stuck = Vec::new();
    let frame = encode_command(&["HSET", "many", "f", "v"]);
    for cut in 1..frame.len() {
        let mut c = srv.client();
        c.send(&frame[..cut]);
        stuck.push((c, cut));
    }
    by.check("clients stuck mid-frame");
    for (c, _) in &mut stuck {
        assert!(matches!(
            c.try_read_reply_within(Duration::from_millis(5)),
            Err(ReadError::Timeout(ref b)) if b.is_empty()
        ));
    }
    // They all complete when the rest arrives.
    for (c, cut) in &mut stuck {
        c.send(&frame[*cut..]);
    }
    let mut new_fields = 0;
    for (c, cut) in &mut stuck {
        let r = c.read_reply();
        match r.as_slice() {
            b":1\r\n" => new_fields += 1,
            b":0\r\n" => {}
            other => panic!("stuck client cut at {cut}: {}", show(other)),
        }
    }
    assert_eq!(new_fields, 1, "exactly one of the HSETs created the field");

    // A slow client that never finishes keeps its connection, and costs nobody anything.
    let mut forever = srv.client();
    forever.send(b"*3\r\n$4\r\nHGET\r\n$5\r\nguard\r\n$1");
    for _ in 0..20 {
        by.check("a client stalled forever");
    }
    forever.send(b"\r\nf\r\n");
    assert_bytes(
        &forever.read_reply(),
        b"$5\r\nvalue\r\n",
        "the stalled client finally completes",
    );
}
