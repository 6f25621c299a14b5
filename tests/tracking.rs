//! Client-side caching (CLIENT TRACKING, CACHING, TRACKINGINFO, GETREDIR; issue 17
//! item 4): the same scripts run on hashd and on Redis 7.4.1, every reply and every
//! invalidation compared byte for byte (client ids aside), in RESP3 and through a RESP2
//! redirect; then what only hashd's tests can pin: invalidations from field expiry and
//! eviction, and the table's size limit.
//!
//! Without the reference Redis the scripts still run on hashd against the replies
//! written here.

mod common;

use std::time::Duration;

use common::{reference_redis, Client, RedisServer, TestServer};

/// One step: on connection `conn`, send `cmd` (`{id:N}` is connection N's client id) and
/// record the reply; or, with `cmd` empty, record what arrived unasked (invalidations).
type Step = (usize, &'static str);

/// Runs `steps` on `conns` fresh connections to `addr` (connection 0 and those in
/// `resp3` say HELLO 3 first); returns the transcript.
fn transcript(
    addr: std::net::SocketAddr,
    conns: usize,
    resp3: &[usize],
    steps: &[Step],
) -> Vec<String> {
    let mut cs: Vec<Client> = (0..conns).map(|_| Client::connect(addr)).collect();
    let mut ids = Vec::new();
    for (i, c) in cs.iter_mut().enumerate() {
        if resp3.contains(&i) {
            c.hello3();
        }
        match common::decode(&c.run("CLIENT ID")) {
            common::Value::Int(n) => ids.push(n),
            other => panic!("{other:?}"),
        }
    }
    let mut out = Vec::new();
    for &(i, cmd) in steps {
        if cmd.is_empty() {
            let mut got = Vec::new();
            while let Ok(f) = cs[i].try_read_reply_within(Duration::from_millis(150)) {
                got.extend(f);
            }
            let shown = common::show(&got);
            let shown = if shown.contains("tracking-redir-broken") {
                with_ids(shown, &ids)
            } else {
                shown
            };
            out.push(format!("{i} <- {shown}"));
            continue;
        }
        let mut line = cmd.to_string();
        for (n, id) in ids.iter().enumerate() {
            line = line.replace(&format!("{{id:{n}}}"), &id.to_string());
        }
        let mut reply = cs[i].run(&line);
        // Pushes sent before the reply come first: keep reading until the reply.
        while reply.starts_with(b">") {
            let mut more = cs[i].read_reply();
            reply.append(&mut more);
        }
        let shown = common::show(&reply);
        let shown = if cmd.contains("GETREDIR") || cmd.contains("TRACKINGINFO") {
            with_ids(shown, &ids)
        } else {
            shown
        };
        out.push(format!("{i} {cmd} -> {shown}"));
    }
    out
}

/// Client ids in integer replies shown as `{id:N}` (in the replies that carry ids), so
/// transcripts compare across servers.
fn with_ids(mut shown: String, ids: &[i64]) -> String {
    for (n, id) in ids.iter().enumerate() {
        shown = shown.replace(&format!(":{id}\\r\\n"), &format!(":{{id:{n}}}\\r\\n"));
    }
    shown
}

/// Runs the script on hashd, checks `expect` (pairs of step index and the reply's
/// expected text), and on Redis 7.4.1 when available, comparing every line.
fn check(conns: usize, resp3: &[usize], steps: &[Step], expect: &[(usize, &str)]) {
    let hashd = TestServer::start();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], hashd.port()));
    let got = transcript(addr, conns, resp3, steps);
    for &(i, want) in expect {
        assert!(
            got[i].ends_with(&format!("-> \"{want}\""))
                || got[i].ends_with(&format!("<- \"{want}\"")),
            "step {i}: {}\nwanted {want}",
            got[i]
        );
    }
    let Some(bin) = reference_redis() else {
        return;
    };
    let dir = common::fresh_dir("tracking");
    let redis = RedisServer::start(&bin, &dir, &[]);
    let want = transcript(redis.addr, conns, resp3, steps);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "hashd against Redis 7.4.1");
    }
}

#[test]
fn default_mode_optin_and_errors_match_redis_in_resp3() {
    let steps: &[Step] = &[
        (0, "CLIENT GETREDIR"),
        (0, "CLIENT TRACKINGINFO"),
        (0, "CLIENT TRACKING on REDIRECT 999999"),
        (0, "CLIENT TRACKING on PREFIX x"),
        (0, "CLIENT TRACKING on OPTIN OPTOUT"),
        (0, "CLIENT TRACKING on BCAST OPTIN"),
        (0, "CLIENT TRACKING on FOO"),
        (0, "CLIENT TRACKING maybe"),
        (0, "CLIENT CACHING yes"),
        (0, "CLIENT TRACKING on"),
        (0, "CLIENT TRACKING on BCAST"),
        (0, "CLIENT GETREDIR"),
        // 12: a read is remembered; another client's write invalidates it once.
        (0, "HGET k f"),
        (1, "HSET k f v"),
        (0, ""),
        (1, "HSET k f w"),
        (0, ""),
        // 17: the client's own write is announced after its reply.
        (0, "HGET k f"),
        (0, "HSET k f x"),
        (0, ""),
        // 20: RENAME invalidates the source; FLUSHALL sends one null notice.
        (0, "HGET k f"),
        (1, "RENAME k k2"),
        (0, ""),
        (0, "HGET k2 f"),
        (1, "FLUSHALL"),
        (0, ""),
        // 26: OPTIN: only after CLIENT CACHING yes, for the next command.
        (0, "CLIENT TRACKING on OPTIN"),
        (0, "CLIENT CACHING yes"),
        (0, "CLIENT TRACKINGINFO"),
        (0, "HGET a f"),
        (0, "HGET b f"),
        (1, "HSET a f 1"),
        (1, "HSET b f 1"),
        (0, ""),
        (0, "CLIENT CACHING no"),
        (0, "CLIENT TRACKING on OPTOUT"),
        (0, "CLIENT TRACKING off"),
        (0, "CLIENT TRACKINGINFO"),
        (0, "CLIENT GETREDIR"),
    ];
    check(
        2,
        &[0],
        steps,
        &[
            (1, "%3\\r\\n$5\\r\\nflags\\r\\n~1\\r\\n$3\\r\\noff\\r\\n$8\\r\\nredirect\\r\\n:-1\\r\\n$8\\r\\nprefixes\\r\\n*0\\r\\n"),
            (14, ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$1\\r\\nk\\r\\n"),
            (16, ""),
            (19, ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$1\\r\\nk\\r\\n"),
            (25, ">2\\r\\n$10\\r\\ninvalidate\\r\\n_\\r\\n"),
            (33, ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$1\\r\\na\\r\\n"),
        ],
    );
}

#[test]
fn bcast_prefixes_noloop_and_resp2_redirect_match_redis() {
    let steps: &[Step] = &[
        // Connection 0 (RESP3): BCAST with prefixes and NOLOOP.
        (0, "CLIENT TRACKING on BCAST PREFIX us PREFIX user"),
        (0, "CLIENT TRACKING on BCAST PREFIX a PREFIX b NOLOOP"),
        (0, "CLIENT TRACKING on BCAST PREFIX ab"),
        (0, "CLIENT TRACKINGINFO"),
        (1, "HSET a1 f v"),
        (0, ""),
        (1, "MULTI"),
        (1, "HSET a2 f v"),
        (1, "HSET b1 f v"),
        (1, "HSET c1 f v"),
        (1, "EXEC"),
        (0, ""),
        (0, "HSET a3 f v"),
        (0, ""),
        (0, "CLIENT TRACKING off"),
        // 15: connection 2 (RESP2) redirects to connection 3, subscribed.
        (3, "SUBSCRIBE __redis__:invalidate"),
        (2, "CLIENT TRACKING on REDIRECT {id:3}"),
        (2, "CLIENT GETREDIR"),
        (2, "HGET k2 f"),
        (1, "HSET k2 f v"),
        (3, ""),
        (2, "HGET k2 f"),
        (1, "FLUSHDB"),
        (3, ""),
        (2, "HGET k2 f"),
        (3, "QUIT"),
        (1, "HSET k2 f v"),
        (2, "CLIENT TRACKINGINFO"),
        (2, "CLIENT TRACKING on REDIRECT {id:3}"),
    ];
    check(
        4,
        &[0],
        steps,
        &[
            (5, ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$2\\r\\na1\\r\\n"),
            (13, ""),
            (
                20,
                "*3\\r\\n$7\\r\\nmessage\\r\\n$20\\r\\n__redis__:invalidate\\r\\n*1\\r\\n$2\\r\\nk2\\r\\n",
            ),
            (
                23,
                "*3\\r\\n$7\\r\\nmessage\\r\\n$20\\r\\n__redis__:invalidate\\r\\n$-1\\r\\n",
            ),
        ],
    );
}

#[test]
fn a_broken_redirect_is_announced_to_a_resp3_client_at_each_invalidation() {
    let steps: &[Step] = &[
        (0, "CLIENT TRACKING on REDIRECT {id:1}"),
        (0, "HGET k f"),
        (1, "QUIT"),
        (2, "HSET k f v"),
        (0, ""),
        (0, "HGET k f"),
        (2, "HSET k f w"),
        (0, ""),
        (0, "CLIENT TRACKINGINFO"),
    ];
    check(
        3,
        &[0, 1],
        steps,
        &[
            (
                4,
                ">2\\r\\n$21\\r\\ntracking-redir-broken\\r\\n:{id:1}\\r\\n",
            ),
            (
                7,
                ">2\\r\\n$21\\r\\ntracking-redir-broken\\r\\n:{id:1}\\r\\n",
            ),
        ],
    );
}

/// Field expiry (active), eviction and the table's limit all invalidate: hashd only
/// (Redis 7.4.1 has no timing-free way to show the first two).
#[test]
fn expiry_eviction_and_the_table_limit_invalidate() {
    let server = TestServer::start();
    let mut c = server.client();
    c.hello3();
    let mut w = server.client();
    c.expect("CLIENT TRACKING on", b"+OK\r\n");
    // CLIENT INFO shows it as Redis's does, with the socket's real descriptor.
    let info = String::from_utf8_lossy(&c.run("CLIENT INFO")).into_owned();
    assert!(
        info.contains(" flags=t ") && info.contains(" redir=0 "),
        "{info}"
    );
    assert!(!info.contains(" fd=-1 "), "{info}");
    w.run("HSET h f v g w");
    c.run("HGET h f");
    w.run("HPEXPIRE h 20 FIELDS 1 f");
    let first = c.read_reply();
    assert_eq!(first, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nh\r\n");
    // Read again; the field's expiry (the sweeper) changes the key.
    c.run("HGET h g");
    let expired = c
        .try_read_reply_within(Duration::from_secs(5))
        .expect("an invalidation when the field expires");
    assert_eq!(expired, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nh\r\n");
    // Eviction: a one-byte limit with allkeys-random evicts what is written.
    c.run("HGET e f");
    w.run("HSET e f v");
    c.read_reply();
    c.run("HGET e f");
    w.run("CONFIG SET maxmemory-policy allkeys-random");
    w.run("CONFIG SET maxmemory 1");
    w.run("HSET other f v");
    let evicted = c
        .try_read_reply_within(Duration::from_secs(5))
        .expect("an invalidation when the key is evicted");
    assert!(
        evicted.starts_with(b">2\r\n$10\r\ninvalidate\r\n*1\r\n"),
        "{}",
        common::show(&evicted)
    );
    w.run("CONFIG SET maxmemory 0");
    w.run("FLUSHALL");
    assert_eq!(c.read_reply(), b">2\r\n$10\r\ninvalidate\r\n_\r\n");
    // The table's limit: past it, the oldest-kept keys are invalidated and forgotten.
    w.expect("CONFIG SET tracking-table-max-keys 2", b"+OK\r\n");
    c.run("HGET t1 f");
    c.run("HGET t2 f");
    c.run("HGET t3 f");
    let dropped = c.read_reply();
    assert!(
        dropped.starts_with(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nt"),
        "{}",
        common::show(&dropped)
    );
    let stats = String::from_utf8_lossy(&w.run("INFO stats")).into_owned();
    assert!(stats.contains("tracking_total_keys:2\r\n"), "{stats}");
    let clients = String::from_utf8_lossy(&w.run("INFO clients")).into_owned();
    assert!(clients.contains("tracking_clients:1\r\n"), "{clients}");
    c.expect("RESET", b"+RESET\r\n");
    let clients = String::from_utf8_lossy(&w.run("INFO clients")).into_owned();
    assert!(clients.contains("tracking_clients:0\r\n"), "{clients}");
}
