//! The wire protocol over real sockets (spec §2): every protocol error and the close that
//! follows it, ignored frames, inline commands, the cross-protocol guard, pipelining, RESP3,
//! the limits for unauthenticated clients, and the query-buffer limit.

mod common;

use common::{assert_bytes, decode, show, Client, TestServer, Value};

/// `*` or `$` followed by this many bytes without a `\r` is "too big" (PROTO_INLINE_MAX_SIZE).
const INLINE_MAX: usize = 64 * 1024;

/// One protocol-error case: the request bytes and the whole byte stream the server must
/// send before it closes the connection.
struct ErrCase {
    name: &'static str,
    request: Vec<u8>,
    expected: Vec<u8>,
}

fn case(name: &'static str, request: &[u8], expected: &str) -> ErrCase {
    ErrCase {
        name,
        request: request.to_vec(),
        expected: expected.as_bytes().to_vec(),
    }
}

/// Runs every case on its own connection; reports all failing cases by name at once.
fn run_error_cases(srv: &TestServer, cases: Vec<ErrCase>, fresh_client_reply: &[u8]) {
    let mut failures = Vec::new();
    for c in &cases {
        let mut client = srv.client();
        if let Err(e) = client.try_send(&c.request) {
            failures.push(format!("{}: write failed: {e}", c.name));
            continue;
        }
        let got = client.read_until_closed();
        if got != c.expected {
            failures.push(format!(
                "{}\n    expected: {}\n         got: {}",
                c.name,
                show(&c.expected),
                show(&got)
            ));
        }
    }
    // Whatever those connections did, the server still serves a fresh client.
    let mut ok = srv.client();
    assert_bytes(
        &ok.run("HGET nokey f"),
        fresh_client_reply,
        "a fresh client after the error cases",
    );
    assert!(
        failures.is_empty(),
        "{} of {} protocol-error cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

#[test]
fn protocol_errors_reply_then_close() {
    let srv = TestServer::start();
    let mut too_big_count = b"*".to_vec();
    too_big_count.extend(std::iter::repeat_n(b'1', INLINE_MAX));
    let mut too_big_bulk = b"*1\r\n$".to_vec();
    too_big_bulk.extend(std::iter::repeat_n(b'1', INLINE_MAX + 1));
    let mut too_big_inline = b"HGET".to_vec();
    too_big_inline.extend(std::iter::repeat_n(b'x', INLINE_MAX + 1 - 4));
    let mut too_big_inline_with_newline = too_big_inline.clone();
    too_big_inline_with_newline.extend_from_slice(b"\r\nPING\r\n");
    let mut nul_inline = b"PING a\0b\r\n".to_vec();
    nul_inline.resize(INLINE_MAX + 1, b'x');
    let mut nul_count = b"*1\0\r\n".to_vec();
    nul_count.resize(INLINE_MAX + 1, b'x');
    let mut nul_bulk = b"*1\r\n$4\0\r\n".to_vec();
    nul_bulk.resize(INLINE_MAX + 5, b'x');
    let cases = vec![
        case(
            "count not a number",
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        case(
            "count with a plus",
            b"*+1\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        case(
            "count with a leading zero",
            b"*01\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        case(
            "count empty",
            b"*\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        case(
            "count above i32::MAX",
            b"*2147483648\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        case(
            "count above i64::MAX",
            b"*9223372036854775808\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        case(
            "bulk length -1",
            b"*1\r\n$-1\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        case(
            "bulk length not a number",
            b"*1\r\n$abc\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        case(
            "bulk length with a plus",
            b"*1\r\n$+3\r\nfoo\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        case(
            "bulk length empty",
            b"*1\r\n$\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        case(
            "bulk length above proto-max-bulk-len",
            b"*1\r\n$536870913\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        case(
            "argument without $",
            b"*1\r\nfoo\r\n",
            "-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        case(
            "second argument without $",
            b"*2\r\n$4\r\nHGET\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        // The offending byte is a CR here; CR and LF in error text become spaces.
        case(
            "argument line empty",
            b"*1\r\n\r\n",
            "-ERR Protocol error: expected '$', got ' '\r\n",
        ),
        ErrCase {
            name: "argument starting with a non-ASCII byte",
            request: b"*1\r\n\xffoo\r\n".to_vec(),
            expected: b"-ERR Protocol error: expected '$', got '\xff'\r\n".to_vec(),
        },
        ErrCase {
            name: "count line over 64 KiB",
            request: too_big_count,
            expected: b"-ERR Protocol error: too big mbulk count string\r\n".to_vec(),
        },
        ErrCase {
            name: "bulk length line over 64 KiB",
            request: too_big_bulk,
            expected: b"-ERR Protocol error: too big bulk count string\r\n".to_vec(),
        },
        ErrCase {
            name: "inline line over 64 KiB",
            request: too_big_inline,
            expected: b"-ERR Protocol error: too big inline request\r\n".to_vec(),
        },
        ErrCase {
            // Refused even though its newline came with it (issue 17 item 7).
            name: "inline line over 64 KiB with its newline",
            request: too_big_inline_with_newline,
            expected: b"-ERR Protocol error: too big inline request\r\n".to_vec(),
        },
        ErrCase {
            // Redis finds the newline with strchr: a NUL hides it.
            name: "inline line with a NUL, then 64 KiB more",
            request: nul_inline,
            expected: b"-ERR Protocol error: too big inline request\r\n".to_vec(),
        },
        ErrCase {
            name: "count line with a NUL, then 64 KiB more",
            request: nul_count,
            expected: b"-ERR Protocol error: too big mbulk count string\r\n".to_vec(),
        },
        ErrCase {
            name: "bulk length line with a NUL, then 64 KiB more",
            request: nul_bulk,
            expected: b"-ERR Protocol error: too big bulk count string\r\n".to_vec(),
        },
        case(
            "inline unterminated double quote",
            b"HGET k \"f\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        case(
            "inline unterminated single quote",
            b"HGET k 'f\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        case(
            "inline text glued to a closing quote",
            b"HGET k \"a\"b\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        case(
            "inline text glued to a closing single quote",
            b"HGET k 'a'b\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    run_error_cases(&srv, cases, b"$-1\r\n");
}

#[test]
fn nothing_after_a_protocol_error_runs() {
    let srv = TestServer::start();
    let mut c = srv.client();
    let mut req = b"*1\r\n$-1\r\n".to_vec();
    req.extend_from_slice(b"*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$1\r\nf\r\n$1\r\nv\r\n");
    c.send(&req);
    c.expect_reply_then_close(
        b"-ERR Protocol error: invalid bulk length\r\n",
        "only the error, then the close",
    );
    let mut other = srv.client();
    assert_bytes(
        &other.run("HGET k f"),
        b"$-1\r\n",
        "the HSET after the bad frame never ran",
    );
}

#[test]
fn commands_before_a_bad_frame_are_answered_first() {
    let srv = TestServer::start();
    let mut c = srv.client();
    let mut req = common::encode_command(&["HSET", "k", "f", "v"]);
    req.extend_from_slice(&common::encode_command(&["HGET", "k", "f"]));
    req.extend_from_slice(b"HGET k f\r\n");
    req.extend_from_slice(b"*1\r\nxyz\r\n");
    req.extend_from_slice(&common::encode_command(&["HSET", "k", "f", "after"]));
    c.send(&req);
    c.expect_reply_then_close(
        b":1\r\n$1\r\nv\r\n$1\r\nv\r\n-ERR Protocol error: expected '$', got 'x'\r\n",
        "replies in order, then the protocol error, then the close",
    );
    let mut other = srv.client();
    assert_bytes(
        &other.run("HGET k f"),
        b"$1\r\nv\r\n",
        "nothing after the bad frame ran",
    );
}

#[test]
fn empty_and_null_multibulk_are_ignored() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.send(b"*0\r\n*-1\r\n*0\r\n");
    c.send(&common::encode_command(&["HSET", "k", "f", "v"]));
    // The first reply must be HSET's: the ignored frames produced nothing.
    assert_bytes(&c.read_reply(), b":1\r\n", "reply after *0 / *-1");
    assert_bytes(
        &c.run("HGET k f"),
        b"$1\r\nv\r\n",
        "the connection stays open",
    );
}

#[test]
fn bytes_after_a_bulk_payload_are_skipped_unchecked() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.expect("HSET k f v", b":1\r\n");
    c.send(b"*3\r\n$4\r\nHGETAB$1\r\nkXY$1\r\nf??");
    assert_bytes(
        &c.read_reply(),
        b"$1\r\nv\r\n",
        "HGET with garbage instead of CRLF",
    );
}

#[test]
fn inline_commands_with_quoting() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.send(b"HSET k \"a b\" 'c d'\r\n");
    assert_bytes(&c.read_reply(), b":1\r\n", "inline HSET with quotes");
    c.send(b"hget k \"a b\"\r\n");
    assert_bytes(
        &c.read_reply(),
        b"$3\r\nc d\r\n",
        "inline HGET, lower-case name",
    );
    c.send(b"HSET k esc \"\\x41\\n\\t\\\\\\\"\" sq 'it\\'s'\r\n");
    assert_bytes(&c.read_reply(), b":2\r\n", "inline HSET with escapes");
    assert_bytes(
        &c.run("HGET k esc"),
        b"$5\r\nA\n\t\\\"\r\n",
        "double-quote escapes",
    );
    assert_bytes(
        &c.run("HGET k sq"),
        b"$4\r\nit's\r\n",
        "single-quote escape",
    );
    // Bare LF ends a line too; blank and all-space lines are ignored without a reply.
    c.send(b"\r\n   \r\n\n\tHGET   k   sq  \n");
    assert_bytes(
        &c.read_reply(),
        b"$4\r\nit's\r\n",
        "blank lines ignored, LF-only line",
    );
    c.send(b"HSET k empty \"\"\r\n");
    assert_bytes(&c.read_reply(), b":1\r\n", "empty quoted argument");
    assert_bytes(&c.run("HGET k empty"), b"$0\r\n\r\n", "empty value stored");
    // Inline and multibulk mix freely in one buffer.
    let mut mixed = b"HGET k sq\r\n".to_vec();
    mixed.extend_from_slice(&common::encode_command(&["HGET", "k", "empty"]));
    mixed.extend_from_slice(b"HGET k \"a b\"\n");
    c.send(&mixed);
    assert_bytes(&c.read_reply(), b"$4\r\nit's\r\n", "mixed 1");
    assert_bytes(&c.read_reply(), b"$0\r\n\r\n", "mixed 2");
    assert_bytes(&c.read_reply(), b"$3\r\nc d\r\n", "mixed 3");
}

#[test]
fn http_requests_close_silently() {
    let srv = TestServer::start();
    let requests: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"post /x HTTP/1.0\r\n",
        b"Host: evil.example\r\n",
        b"HOST: evil.example\r\n",
        b"*1\r\n$4\r\nPOST\r\n",
        b"*2\r\n$5\r\nhost:\r\n$1\r\nx\r\n",
    ];
    for r in requests {
        let mut c = srv.client();
        c.send(r);
        let got = c.read_until_closed();
        assert!(
            got.is_empty(),
            "{}: expected a silent close, got {}",
            show(r),
            show(&got)
        );
    }
    let mut c = srv.client();
    assert_bytes(&c.run("HGET k f"), b"$-1\r\n", "server still serving");
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write() {
    const N: usize = 10_000;
    let srv = TestServer::start();
    let mut c = srv.client();
    let mut req = Vec::new();
    for i in 0..N {
        req.extend_from_slice(&common::encode_command(&[
            "HSET".to_string(),
            "p".to_string(),
            format!("f{i}"),
            format!("v{i}"),
        ]));
        req.extend_from_slice(&common::encode_command(&[
            "HGET".to_string(),
            "p".to_string(),
            format!("f{i}"),
        ]));
    }
    // Write from another thread while this one reads, so neither side's socket buffers
    // can fill up and deadlock the test.
    let mut writer = c.stream.try_clone().expect("clone the socket");
    let handle = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&req)
    });
    for i in 0..N {
        let r = c.read_reply();
        if r != b":1\r\n" {
            panic!("HSET #{i}: got {}", show(&r));
        }
        let want = format!("v{i}");
        let r = c.read_reply();
        let expected = format!("${}\r\n{want}\r\n", want.len());
        if r != expected.as_bytes() {
            panic!("HGET #{i}: expected {expected:?}, got {}", show(&r));
        }
    }
    handle
        .join()
        .expect("writer thread")
        .expect("the one big write succeeds");
}

#[test]
fn resp3_after_hello_3() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.expect("HSET k f v", b":1\r\n");
    let hello = c.run("HELLO 3");
    match decode(&hello) {
        Value::Map(pairs) => {
            let keys: Vec<&[u8]> = pairs.iter().filter_map(|(k, _)| k.as_bytes()).collect();
            assert_eq!(
                keys,
                vec![
                    &b"server"[..],
                    b"version",
                    b"proto",
                    b"id",
                    b"mode",
                    b"role",
                    b"modules"
                ],
                "HELLO 3 map keys, in order"
            );
            assert_eq!(pairs[0].1, Value::Bulk(b"redis".to_vec()));
            assert_eq!(pairs[2].1, Value::Int(3));
            assert!(matches!(pairs[3].1, Value::Int(id) if id > 0));
            assert_eq!(pairs[4].1, Value::Bulk(b"standalone".to_vec()));
            assert_eq!(pairs[5].1, Value::Bulk(b"master".to_vec()));
            assert_eq!(pairs[6].1, Value::Array(vec![]));
        }
        other => panic!(
            "HELLO 3 should be a RESP3 map, got {other:?} from {}",
            show(&hello)
        ),
    }
    c.expect("HGET k nofield", b"_\r\n");
    c.expect("HGET nokey f", b"_\r\n");
    c.expect("HMGET k f nofield", b"*2\r\n$1\r\nv\r\n_\r\n");
    c.expect("HGETALL k", b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    c.expect("HGETALL nokey", b"%0\r\n");
    // EXEC aborted by WATCH is a RESP3 null.
    c.expect("WATCH k", b"+OK\r\n");
    c.expect("HSET k f v2", b":0\r\n");
    c.expect("MULTI", b"+OK\r\n");
    c.expect("HGET k f", b"+QUEUED\r\n");
    c.expect("EXEC", b"_\r\n");
    // HELLO 2 answers in RESP2 (a flat array) and switches back.
    let hello2 = c.run("HELLO 2");
    assert!(
        hello2.starts_with(b"*14\r\n"),
        "HELLO 2 reply: {}",
        show(&hello2)
    );
    c.expect("HGET k nofield", b"$-1\r\n");
    c.expect("HGETALL nokey", b"*0\r\n");
}

#[test]
fn hello_errors_keep_the_protocol() {
    let srv = TestServer::start();
    let mut c = srv.client();
    c.expect("HELLO 4", b"-NOPROTO unsupported protocol version\r\n");
    c.expect("HGET k f", b"$-1\r\n");
    c.expect(
        "HELLO abc",
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    c.expect("HGET k f", b"$-1\r\n");
}

#[test]
fn unauthenticated_clients_have_tight_limits() {
    let srv = TestServer::builder().requirepass("s3cret").start();
    let cases = vec![
        case(
            "multibulk count above 10 before AUTH",
            b"*11\r\n",
            "-ERR Protocol error: unauthenticated multibulk length\r\n",
        ),
        case(
            "bulk length above 16384 before AUTH",
            b"*1\r\n$16385\r\n",
            "-ERR Protocol error: unauthenticated bulk length\r\n",
        ),
        // Checks run in order: a bad length still wins over the unauthenticated limit.
        case(
            "bad count before AUTH",
            b"*x\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ];
    run_error_cases(&srv, cases, b"-NOAUTH Authentication required.\r\n");

    let mut c = srv.client();
    // At the limits exactly: no protocol error, just NOAUTH.
    c.send(b"*10\r\n");
    for _ in 0..10 {
        c.send(b"$1\r\nx\r\n");
    }
    assert_bytes(
        &c.read_reply(),
        b"-ERR unknown command 'x', with args beginning with: 'x' 'x' 'x' 'x' 'x' 'x' 'x' 'x' 'x' \r\n",
        "10 arguments: unknown command comes before NOAUTH",
    );
    let big_key = "k".repeat(16384);
    assert_bytes(
        &c.cmd(&["HGET", big_key.as_str(), "f"]),
        b"-NOAUTH Authentication required.\r\n",
        "16384-byte argument before AUTH",
    );
    c.expect(
        "AUTH wrong",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    c.expect("HSET k f v", b"-NOAUTH Authentication required.\r\n");
    c.auth("s3cret");
    // After AUTH the limits are gone.
    c.expect("HSET k a 1 b 2 c 3 d 4 e 5 f 6", b":6\r\n");
    let big_value = "v".repeat(100_000);
    assert_bytes(
        &c.cmd(&["HSET", "k", "big", big_value.as_str()]),
        b":1\r\n",
        "100 KB value after AUTH",
    );
    let mut expected = b"$100000\r\n".to_vec();
    expected.extend_from_slice(big_value.as_bytes());
    expected.extend_from_slice(b"\r\n");
    assert_bytes(&c.run("HGET k big"), &expected, "100 KB value read back");
}

#[test]
fn query_buffer_limit_closes_without_reply() {
    const LIMIT: u64 = 1024 * 1024;
    let srv = TestServer::builder()
        .config(|c| c.client_query_buffer_limit = LIMIT)
        .start();
    let mut bystander = srv.client();
    bystander.expect("HSET safe f v", b":1\r\n");

    let mut c = srv.client();
    // A single 2 MB argument: the buffer passes 1 MiB before the frame completes.
    let payload_len = 2 * LIMIT as usize;
    let header = format!("*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$1\r\nf\r\n${payload_len}\r\n");
    let mut sent_ok = c.try_send(header.as_bytes()).is_ok();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent_ok && sent < payload_len {
        // The server may close mid-way: a failed write is the expected outcome.
        sent_ok = c.try_send(&chunk).is_ok();
        sent += chunk.len();
    }
    let got = c.read_until_closed();
    assert!(got.is_empty(), "closed without a reply; got {}", show(&got));
    assert_bytes(
        &bystander.run("HGET safe f"),
        b"$1\r\nv\r\n",
        "bystander still served",
    );
    assert_bytes(
        &bystander.run("HGET k f"),
        b"$-1\r\n",
        "the oversized HSET never ran",
    );
}

#[test]
fn query_buffer_limit_set_at_run_time() {
    let srv = TestServer::start();
    let mut admin = srv.client();
    admin.expect("CONFIG SET client-query-buffer-limit 1048576", b"+OK\r\n");
    let mut c = srv.client();
    let mut big = b"*3\r\n$4\r\nHGET\r\n$1\r\nk\r\n$2000000\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'y', 1_200_000));
    let _ = c.try_send(&big);
    let got = c.read_until_closed();
    assert!(got.is_empty(), "closed without a reply; got {}", show(&got));
    admin.expect("HGET k f", b"$-1\r\n");
}

/// Pipelined requests split at every possible byte boundary still parse the same.
#[test]
fn requests_split_across_writes() {
    let srv = TestServer::start();
    let mut c = srv.client();
    let mut req = common::encode_command(&["HSET", "k", "field", "value"]);
    req.extend_from_slice(b"HGET k field\r\n");
    req.extend_from_slice(&common::encode_command(&["HGET", "k", "field"]));
    for split in [1, 2, 3, 5, 9, 17, 30] {
        for piece in req.chunks(split) {
            c.send(piece);
        }
        let first = c.read_reply();
        assert!(
            first == b":1\r\n" || first == b":0\r\n",
            "split {split}: {}",
            show(&first)
        );
        assert_bytes(
            &c.read_reply(),
            b"$5\r\nvalue\r\n",
            "inline HGET after split writes",
        );
        assert_bytes(
            &c.read_reply(),
            b"$5\r\nvalue\r\n",
            "multibulk HGET after split writes",
        );
    }
}

#[test]
fn client_helper_reads_exactly_one_reply() {
    // The harness itself: two replies in one segment are returned one at a time.
    let srv = TestServer::start();
    let mut c: Client = srv.client();
    let mut two = common::encode_command(&["HSET", "k", "f", "v"]);
    two.extend_from_slice(b"MULTI\r\nHGET k f\r\nHGET k g\r\nEXEC\r\n");
    c.send(&two);
    assert_bytes(&c.read_reply(), b":1\r\n", "first");
    assert_bytes(&c.read_reply(), b"+OK\r\n", "MULTI");
    assert_bytes(&c.read_reply(), b"+QUEUED\r\n", "queued 1");
    assert_bytes(&c.read_reply(), b"+QUEUED\r\n", "queued 2");
    assert_bytes(&c.read_reply(), b"*2\r\n$1\r\nv\r\n$-1\r\n", "EXEC");
}

/// Spec §2.3: arguments queued by MULTI count toward the query-buffer limit too.
#[test]
fn queued_multi_arguments_count_toward_the_query_buffer_limit() {
    const LIMIT: u64 = 1024 * 1024;
    let srv = TestServer::builder()
        .config(|c| c.client_query_buffer_limit = LIMIT)
        .start();
    let mut c = srv.client();
    c.expect("MULTI", b"+OK\r\n");
    let value = vec![b'q'; 400_000];
    for field in ["a", "b"] {
        assert_bytes(
            &c.cmd(&[&b"HSET"[..], b"k", field.as_bytes(), &value]),
            b"+QUEUED\r\n",
            "queued under the limit",
        );
    }
    // 800 KB queued plus 400 KB buffered passes 1 MiB: closed with no reply.
    c.timeout = std::time::Duration::from_secs(2);
    let _ = c.try_send(&common::encode_command(&[&b"HSET"[..], b"k", b"c", &value]));
    let got = c.read_until_closed();
    assert!(got.is_empty(), "closed without a reply; got {}", show(&got));
    let mut other = srv.client();
    other.expect("HGET k a", b"$-1\r\n");
}

/// An inline request with a NUL byte gets no answer, as from Redis 7.4.1 (its `strchr`
/// stops at the NUL, so the newline is never seen); the requests before it are answered.
#[test]
fn an_inline_request_with_a_nul_byte_is_never_complete() {
    let srv = TestServer::start();
    for request in [
        &b"PING a\0b\r\n"[..],
        b"\0PING\r\n",
        b"*1\0\r\n$4\r\nPING\r\n",
        b"*1\r\n$4\0\r\nPING\r\n",
    ] {
        let mut c = srv.client();
        c.send(b"PING\r\n");
        c.send(request);
        assert_bytes(&c.read_reply(), b"+PONG\r\n", "the request before");
        match c.try_read_reply_within(std::time::Duration::from_millis(200)) {
            Err(common::ReadError::Timeout(b)) if b.is_empty() => {}
            other => panic!("{}: expected no reply, got {other:?}", show(request)),
        }
    }
    // In a bulk payload a NUL is data.
    let mut c = srv.client();
    c.send(b"*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n");
    assert_bytes(&c.read_reply(), b"$3\r\na\0b\r\n", "ECHO a NUL b");
}
