//! Freed memory goes back to the operating system, and INFO's used_memory shows it.
//!
//! The in-process tests read used_memory; the resident size is read from a hashd process
//! of its own (the test process's would count the other tests' allocations).

mod common;

use std::time::{Duration, Instant};

use common::{encode_command, wait_until, TestServer};

/// How long the server may take to give memory back (its check runs about once a second).
const GIVE_BACK_WITHIN: Duration = Duration::from_secs(30);

fn used_memory(c: &mut common::Client) -> u64 {
    let reply = c.cmd(&["INFO", "memory"]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO memory has no used_memory: {text}"))
}

/// `count` HSET requests, pipelined `depth` at a time (small enough that the connection's
/// buffers stay small beside what is measured).
fn load(
    c: &mut common::Client,
    count: usize,
    depth: usize,
    request: impl Fn(usize) -> Vec<Vec<u8>>,
) {
    let mut i = 0;
    while i < count {
        let batch = (i..count.min(i + depth))
            .map(|n| encode_command(&request(n)))
            .collect::<Vec<_>>();
        c.send(&batch.concat());
        for _ in 0..batch.len() {
            let r = c.read_reply();
            assert_eq!(r[0], b':', "{}", String::from_utf8_lossy(&r));
        }
        i += batch.len();
    }
}

/// How much [`load_small_hashes`] must grow the measure, in both tests: it takes about
/// 22 MB; the floor shows that the load landed, not its exact size (the layout shrinks).
const SMALL_HASHES_GROWTH: u64 = 16 << 20;

/// How much [`load_big_hash`] must grow the measure: 400k fields of about 28 bytes of data
/// and their table measure 16-18 MB, and where the table's growth stands at the moment of
/// measuring varies (one CI run saw 16.76 MB), so the floor only shows that the load landed.
const BIG_HASH_GROWTH: u64 = 12 << 20;

/// 100k small hashes of 10 fields with 16-byte values: about 22 MB.
fn load_small_hashes(c: &mut common::Client) {
    load(c, 100_000, 200, |h| {
        let mut args = vec![b"HSET".to_vec(), format!("h:{h}").into_bytes()];
        for f in 0..10 {
            args.push(format!("f{f}").into_bytes());
            args.push(vec![b'v'; 16]);
        }
        args
    });
}

/// One hash `big` of 400k fields with 16-byte values: 16-18 MB.
fn load_big_hash(c: &mut common::Client) {
    load(c, 400, 4, |n| {
        let mut args = vec![b"HSET".to_vec(), b"big".to_vec()];
        for f in 0..1000 {
            args.push(format!("field:{n}:{f}").into_bytes());
            args.push(vec![b'v'; 16]);
        }
        args
    });
}

/// Loads with `load` from `base`, checks that `measure` grew by at least `min_growth`,
/// runs `free` (which must reply `reply`), and checks that `measure` falls back within
/// [`GIVE_BACK_WITHIN`] to at most a third of the growth above `base`: most of what the
/// load took comes back (not all: the keyspace keeps some capacity, and pages partly used
/// by the connection's buffers stay). Returns the value it fell to.
#[allow(clippy::too_many_arguments)]
fn grows_then_falls(
    c: &mut common::Client,
    what: &str,
    measure: &mut dyn FnMut(&mut common::Client) -> u64,
    base: u64,
    load: fn(&mut common::Client),
    min_growth: u64,
    free: &str,
    reply: &[u8],
) -> u64 {
    load(c);
    let loaded = measure(c);
    assert!(
        loaded >= base + min_growth,
        "loading grew {what} only from {base} to {loaded}"
    );
    c.expect(free, reply);
    let target = base + (loaded - base) / 3;
    let deadline = Instant::now() + GIVE_BACK_WITHIN;
    let after = loop {
        let now = measure(c);
        if now <= target || Instant::now() >= deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        after <= target,
        "{what} {base} before, {loaded} loaded, still {after} {GIVE_BACK_WITHIN:?} after {free}"
    );
    after
}

#[test]
fn memory_is_given_back_after_flushall_and_a_large_del() {
    let server = TestServer::start();
    let mut c = server.client();
    let idle = used_memory(&mut c);
    let after = grows_then_falls(
        &mut c,
        "used_memory",
        &mut used_memory,
        idle,
        load_small_hashes,
        SMALL_HASHES_GROWTH,
        "FLUSHALL",
        b"+OK\r\n",
    );
    grows_then_falls(
        &mut c,
        "used_memory",
        &mut used_memory,
        after,
        load_big_hash,
        BIG_HASH_GROWTH,
        "DEL big",
        b":1\r\n",
    );
}

fn stat(c: &mut common::Client, section: &str, name: &str) -> u64 {
    let text = String::from_utf8_lossy(&c.cmd(&["INFO", section])).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO {section}"))
}

#[test]
fn unlink_and_flush_async_free_in_the_background() {
    let server = TestServer::start();
    let mut c = server.client();
    let big = |c: &mut common::Client, key: &str| {
        let mut args = vec!["HSET".to_string(), key.to_string()];
        for f in 0..5000 {
            args.push(format!("f{f}"));
            args.push("v".to_string());
        }
        c.cmd(&args);
    };
    big(&mut c, "a");
    big(&mut c, "b");
    c.expect("HSET small f v", b":1\r\n");
    // UNLINK: gone at once, freed by the lazyfree thread.
    c.expect("UNLINK a small", b":2\r\n");
    c.expect("EXISTS a", b":0\r\n");
    assert!(wait_until(Duration::from_secs(10), || stat(
        &mut c,
        "stats",
        "lazyfreed_objects"
    ) == 1));
    assert_eq!(stat(&mut c, "memory", "lazyfree_pending_objects"), 0);
    // DEL frees here, unless lazyfree-lazy-user-del.
    c.expect("DEL b", b":1\r\n");
    assert_eq!(stat(&mut c, "stats", "lazyfreed_objects"), 1);
    c.expect("CONFIG SET lazyfree-lazy-user-del yes", b"+OK\r\n");
    big(&mut c, "b");
    c.expect("DEL b", b":1\r\n");
    assert!(wait_until(Duration::from_secs(10), || stat(
        &mut c,
        "stats",
        "lazyfreed_objects"
    ) == 2));
    // FLUSHALL ASYNC: every key's memory in the background.
    for i in 0..10 {
        c.expect(&format!("HSET k{i} f v"), b":1\r\n");
    }
    c.expect("FLUSHALL ASYNC", b"+OK\r\n");
    c.expect("DBSIZE", b":0\r\n");
    assert!(wait_until(Duration::from_secs(10), || stat(
        &mut c,
        "stats",
        "lazyfreed_objects"
    ) == 12));
}

/// The resident size of process `pid` (Linux's /proc), in bytes.
#[cfg(target_os = "linux")]
fn resident(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm's resident field");
    pages * 4096
}

/// The resident size (not only used_memory) falls back after FLUSHALL and after a DEL of a
/// big hash, measured on a hashd process of its own: small hashes' slab spans and large
/// tables are unmapped, malloc's free pages trimmed.
#[cfg(target_os = "linux")]
#[test]
fn the_resident_size_falls_after_flushall_and_a_large_del() {
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = std::env::temp_dir();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hashd"))
        .args(["--port", &port.to_string(), "--save", "", "--threads", "1"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start hashd");
    let proc = Killed(child);
    let pid = proc.0.id();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(addr).is_ok()
        }),
        "hashd did not listen"
    );
    let mut c = common::Client::connect(addr);
    let mut rss = |_: &mut common::Client| resident(pid);
    let idle = resident(pid);
    let after = grows_then_falls(
        &mut c,
        "RSS",
        &mut rss,
        idle,
        load_small_hashes,
        SMALL_HASHES_GROWTH,
        "FLUSHALL",
        b"+OK\r\n",
    );
    grows_then_falls(
        &mut c,
        "RSS",
        &mut rss,
        after,
        load_big_hash,
        BIG_HASH_GROWTH,
        "DEL big",
        b":1\r\n",
    );
}
