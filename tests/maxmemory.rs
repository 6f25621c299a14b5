//! `maxmemory` and eviction (issue 14 item 1), over real sockets: the OOM replies byte for
//! byte against Redis 7.4.1 in RESP2 and RESP3, what each policy evicts, the `evicted`
//! notification and the DEL in the append-only file, and expired fields reclaimed before
//! any key is evicted.
//!
//! The eviction tests run hashd as its own process, so that the memory it counts is its
//! own (in-process servers share the test harness's allocator).

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{reference_redis, Client, RedisServer, TestServer};

const HASHD: &str = env!("CARGO_BIN_EXE_hashd");

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

/// A hashd process, killed on drop.
struct Proc {
    child: std::process::Child,
    port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(dir: &Path, args: &[&str]) -> Proc {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(HASHD)
            .args(["--port", &port.to_string(), "--save", ""])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hashd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "hashd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        let p = Proc { child, port };
        // Listening is not serving: with a log to load, commands get -LOADING first.
        let mut c = p.client();
        while c.run("PING") != b"+PONG\r\n" {
            assert!(Instant::now() < deadline, "hashd did not finish loading");
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    fn client(&self) -> Client {
        Client::connect(std::net::SocketAddr::from(([127, 0, 0, 1], self.port)))
    }
}

fn info_field(c: &mut Client, section: &str, name: &str) -> u64 {
    let text = match common::decode(&c.cmd(&["INFO", section])) {
        common::Value::Bulk(b) | common::Value::Verbatim(_, b) => {
            String::from_utf8_lossy(&b).into_owned()
        }
        other => panic!("INFO {section}: {other:?}"),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name} in INFO {section}"))
}

fn int(reply: &[u8]) -> i64 {
    match common::decode(reply) {
        common::Value::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

/// Writes `n` one-field hashes `prefix:i` with a 100-byte value, pipelined; with `ttl`,
/// each gets a key TTL of that many seconds.
fn fill(c: &mut Client, prefix: &str, n: usize, ttl: Option<u64>) {
    let value = "x".repeat(100);
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let mut batch = Vec::new();
        for i in chunk {
            let key = format!("{prefix}:{i}");
            batch.extend(common::encode_command(&["HSET", &key, "f", &value]));
            if let Some(s) = ttl {
                batch.extend(common::encode_command(&["EXPIRE", &key, &s.to_string()]));
            }
        }
        c.send(&batch);
        for _ in 0..chunk.len() * if ttl.is_some() { 2 } else { 1 } {
            let r = c.read_reply();
            assert!(!r.starts_with(b"-"), "{}", common::show(&r));
        }
    }
}

fn count_keys(c: &mut Client, prefix: &str) -> usize {
    match common::decode(&c.cmd(&["KEYS", &format!("{prefix}:*")])) {
        common::Value::Array(items) => items.len(),
        other => panic!("{other:?}"),
    }
}

/// The script whose replies must equal Redis's: writes refused, reads and deletes served,
/// a transaction with a refused write failing, PUBLISH and CONFIG still working.
const OOM_SCRIPT: &[&str] = &[
    "HSET k g v",
    "HGET k f",
    "HINCRBY k n 1",
    "HEXPIRE k 100 FIELDS 1 f",
    "HPERSIST k FIELDS 1 f",
    "HDEL k nosuch",
    "HGETALL k",
    "MULTI",
    "HGET k f",
    "EXEC",
    "MULTI",
    "HSET k a b",
    "HGET k f",
    "EXEC",
    "MULTI",
    "PING",
    "EXEC",
    "RENAME k k2",
    "EXPIRE k2 100",
    "TTL k2",
    "PUBLISH c m",
    "CONFIG GET maxmemory",
    "DEL k2",
    "EXISTS k2",
];

fn run_oom_script(c: &mut Client, resp3: bool) -> Vec<Vec<u8>> {
    if resp3 {
        c.hello3();
    }
    c.run("FLUSHALL");
    c.run("CONFIG SET maxmemory 0");
    c.run("HSET k f v");
    // One byte: always over, whatever else the process holds.
    c.run("CONFIG SET maxmemory 1");
    let replies = OOM_SCRIPT.iter().map(|l| c.run(l)).collect();
    c.run("CONFIG SET maxmemory 0");
    replies
}

#[test]
fn out_of_memory_replies_are_redis_s_byte_for_byte() {
    let hashd = TestServer::start();
    for resp3 in [false, true] {
        let mut h = hashd.client();
        let got = run_oom_script(&mut h, resp3);
        // Checked without the reference too: the refusal and what is still served.
        assert_eq!(got[0], OOM, "HSET");
        assert_eq!(got[1], b"$1\r\nv\r\n", "HGET");
        assert_eq!(got[11], OOM, "HSET in MULTI");
        assert_eq!(
            got[13],
            b"-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert_eq!(got[22], b":1\r\n", "DEL");
        let Some(bin) = reference_redis() else {
            continue;
        };
        let dir = common::fresh_dir("maxmemory-oom");
        let redis = RedisServer::start(&bin, &dir, &[]);
        let mut r = Client::connect(redis.addr);
        let want = run_oom_script(&mut r, resp3);
        for ((line, w), g) in OOM_SCRIPT.iter().zip(&want).zip(&got) {
            common::assert_bytes(g, w, &format!("{line} (RESP{})", if resp3 { 3 } else { 2 }));
        }
    }
}

#[test]
fn exec_is_aborted_when_memory_fills_after_a_write_was_queued() {
    let hashd = TestServer::start();
    let mut c = hashd.client();
    let mut admin = hashd.client();
    c.run("CONFIG SET maxmemory 0");
    c.expect("MULTI", b"+OK\r\n");
    c.expect("HSET k f v", b"+QUEUED\r\n");
    admin.run("CONFIG SET maxmemory 1");
    c.expect(
        "EXEC",
        b"-EXECABORT Transaction discarded because of: OOM command not allowed when used \
          memory > 'maxmemory'.\r\n",
    );
    // A read-only transaction still runs.
    c.expect("MULTI", b"+OK\r\n");
    c.expect("HGET k f", b"+QUEUED\r\n");
    c.expect("EXEC", b"*1\r\n$-1\r\n");
    admin.run("CONFIG SET maxmemory 0");
    c.expect("HSET k f v", b":1\r\n");
}

/// Room left above the memory in use when a limit is set: well past how far the counted
/// memory moves by itself (the allocator counts to 16 KiB per thread, and INFO's own
/// replies, buffers and the sweeper allocate too).
const MARGIN: u64 = 512 * 1024;

/// The process's counted memory once it settles, for a limit just above it.
fn settled_used(c: &mut Client) -> u64 {
    std::thread::sleep(Duration::from_millis(200));
    info_field(c, "memory", "used_memory")
}

#[test]
fn allkeys_lru_keeps_memory_under_the_limit_and_keeps_the_hot_keys() {
    let dir = common::fresh_dir("maxmemory-lru");
    let p = Proc::start(
        &dir,
        &[
            "--maxmemory-policy",
            "allkeys-lru",
            "--notify-keyspace-events",
            "Ee",
        ],
    );
    let mut c = p.client();
    let mut sub = p.client();
    sub.expect(
        "SUBSCRIBE __keyevent@0__:evicted",
        b"*3\r\n$9\r\nsubscribe\r\n$22\r\n__keyevent@0__:evicted\r\n:1\r\n",
    );
    fill(&mut c, "hot", 300, None);
    fill(&mut c, "cold", 10_000, None);
    // The LRU clock counts seconds: let the cold keys age, then use the hot ones.
    std::thread::sleep(Duration::from_millis(2100));
    for i in 0..300 {
        c.run(&format!("HGET hot:{i} f"));
    }
    let limit = settled_used(&mut c) + MARGIN;
    c.run(&format!("CONFIG SET maxmemory {limit}"));
    c.run("WATCH cold:0");
    // Room for these takes fewer evictions than there are cold keys: eviction never has
    // to reach for a recently used one.
    fill(&mut c, "new", 5000, None);
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    assert!(evicted > 100, "evicted_keys {evicted}");
    let used = info_field(&mut c, "memory", "used_memory");
    assert!(
        used <= limit + MARGIN,
        "used_memory {used} over the limit {limit}"
    );
    assert_eq!(count_keys(&mut c, "hot"), 300, "a hot key was evicted");
    assert!(count_keys(&mut c, "cold") < 10_000);
    // One notification per evicted key.
    let first = sub.read_reply();
    assert!(
        first.starts_with(b"*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:evicted\r\n"),
        "{}",
        common::show(&first)
    );
    // A WATCHed key that is evicted fails the transaction, as any change would.
    if int(&c.run("EXISTS cold:0")) == 0 {
        c.expect("MULTI", b"+OK\r\n");
        c.expect("HSET x f v", b"+QUEUED\r\n");
        c.expect("EXEC", b"*-1\r\n");
    }
}

#[test]
fn volatile_lru_evicts_only_keys_with_a_ttl_then_refuses_writes() {
    let dir = common::fresh_dir("maxmemory-volatile");
    let p = Proc::start(&dir, &["--maxmemory-policy", "volatile-lru"]);
    let mut c = p.client();
    fill(&mut c, "keep", 1000, None);
    fill(&mut c, "vol", 1000, Some(3600));
    let limit = settled_used(&mut c) + MARGIN;
    c.run(&format!("CONFIG SET maxmemory {limit}"));
    // Writes of persistent keys push the TTL keys out, then are refused.
    let value = "y".repeat(100);
    let mut refused_at = None;
    for i in 0..100_000 {
        let r = c.cmd(&["HSET", &format!("more:{i}"), "f", &value]);
        if r == OOM {
            refused_at = Some(i);
            break;
        }
    }
    assert!(refused_at.is_some(), "writes never refused");
    assert_eq!(
        count_keys(&mut c, "keep"),
        1000,
        "a key without TTL was evicted"
    );
    assert_eq!(
        count_keys(&mut c, "vol"),
        0,
        "refused while TTL keys remained"
    );
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), 1000);
    // Reads and deletes still work; a delete makes room again.
    c.expect(
        "HGET keep:0 f",
        format!("$100\r\n{value}\r\n").replace('y', "x").as_bytes(),
    );
    let mut freed = 0;
    for i in 0..1000 {
        freed += int(&c.run(&format!("DEL keep:{i}")));
    }
    assert_eq!(freed, 1000);
    // And the writes that filled it: the room made is then far more than the noise of
    // the connection's own buffers in used_memory (a few tens of kB).
    for i in 0..refused_at.unwrap_or(0) {
        c.run(&format!("DEL more:{i}"));
    }
    c.expect("HSET after f v", b":1\r\n");
}

#[test]
fn volatile_ttl_evicts_the_soonest_deadlines_first() {
    let dir = common::fresh_dir("maxmemory-ttl");
    let p = Proc::start(&dir, &["--maxmemory-policy", "volatile-ttl"]);
    let mut c = p.client();
    fill(&mut c, "late", 5000, Some(100_000));
    fill(&mut c, "soon", 5000, Some(1000));
    let limit = settled_used(&mut c) + MARGIN;
    c.run(&format!("CONFIG SET maxmemory {limit}"));
    // Room for these needs fewer evictions than there are "soon" keys.
    fill(&mut c, "p", 3000, None);
    assert!(info_field(&mut c, "stats", "evicted_keys") > 0);
    let soon = count_keys(&mut c, "soon");
    assert!(soon < 5000, "nothing evicted");
    assert_eq!(
        count_keys(&mut c, "late"),
        5000,
        "a later deadline went first"
    );
}

#[test]
fn expired_fields_are_reclaimed_before_any_key_is_evicted() {
    let dir = common::fresh_dir("maxmemory-reclaim");
    let p = Proc::start(&dir, &["--maxmemory-policy", "allkeys-lru"]);
    let mut c = p.client();
    c.expect("DEBUG SET-ACTIVE-EXPIRE 0", b"+OK\r\n");
    // Large fields that expire at once, and stay stored while active expiry is off.
    let value = "z".repeat(2000);
    for i in 0..1000 {
        let key = format!("h:{i}");
        c.cmd(&["HSET", &key, "keep", "1", "big", &value]);
        c.cmd(&["HPEXPIRE", &key, "1", "FIELDS", "1", "big"]);
    }
    std::thread::sleep(Duration::from_millis(20));
    let used = settled_used(&mut c);
    // Below what is stored, above what the live fields need.
    c.run(&format!("CONFIG SET maxmemory {}", used - 1000 * 1024));
    c.expect("HSET one f v", b":1\r\n");
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), 0);
    assert_eq!(info_field(&mut c, "stats", "expired_subkeys"), 1000);
    assert_eq!(count_keys(&mut c, "h"), 1000);
}

#[test]
fn an_evicted_key_is_a_del_in_the_append_only_file() {
    let dir = common::fresh_dir("maxmemory-aof");
    let p = Proc::start(
        &dir,
        &[
            "--maxmemory-policy",
            "allkeys-random",
            "--appendonly",
            "yes",
        ],
    );
    let mut c = p.client();
    fill(&mut c, "a", 5000, None);
    let limit = settled_used(&mut c) + MARGIN;
    c.run(&format!("CONFIG SET maxmemory {limit}"));
    fill(&mut c, "b", 5000, None);
    // No more writes, so nothing more to evict: the count settles, and so does the log.
    c.run(&format!("CONFIG SET maxmemory {}", limit * 4));
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    assert!(evicted > 0);
    let dels = || {
        let mut log = Vec::new();
        for entry in std::fs::read_dir(dir.join("appendonlydir")).expect("appendonlydir") {
            let path = entry.expect("entry").path();
            if path.to_string_lossy().ends_with(".incr.aof") {
                log.extend(std::fs::read(&path).expect("read the log"));
            }
        }
        log.windows(9).filter(|w| w == b"$3\r\nDEL\r\n").count() as u64
    };
    assert!(
        common::wait_until(Duration::from_secs(5), || dels() == evicted),
        "{} DELs in the log for {evicted} evicted keys",
        dels()
    );
    assert_eq!(
        count_keys(&mut c, "a") + count_keys(&mut c, "b"),
        10_000 - evicted as usize
    );
}

#[test]
fn allkeys_lfu_keeps_the_frequently_used_keys_in_resp3() {
    let dir = common::fresh_dir("maxmemory-lfu");
    let p = Proc::start(
        &dir,
        &[
            "--maxmemory-policy",
            "allkeys-lfu",
            "--notify-keyspace-events",
            "Ee",
        ],
    );
    let mut c = p.client();
    c.hello3();
    let mut sub = p.client();
    sub.hello3();
    sub.expect(
        "SUBSCRIBE __keyevent@0__:evicted",
        b">3\r\n$9\r\nsubscribe\r\n$22\r\n__keyevent@0__:evicted\r\n:1\r\n",
    );
    fill(&mut c, "hot", 200, None);
    fill(&mut c, "cold", 10_000, None);
    // Every access counts (lfu-log-factor 0): the hot keys reach 25, the others stay at 5.
    c.expect("CONFIG SET lfu-log-factor 0", b"+OK\r\n");
    for _ in 0..20 {
        let batch: Vec<u8> = (0..200)
            .flat_map(|i| common::encode_command(&["HGET", &format!("hot:{i}"), "f"]))
            .collect();
        c.send(&batch);
        for _ in 0..200 {
            c.read_reply();
        }
    }
    c.expect("OBJECT FREQ hot:0", b":25\r\n");
    c.expect("OBJECT FREQ cold:0", b":5\r\n");
    let limit = settled_used(&mut c) + MARGIN;
    c.run(&format!("CONFIG SET maxmemory {limit}"));
    fill(&mut c, "new", 5000, None);
    assert!(info_field(&mut c, "stats", "evicted_keys") > 100);
    assert_eq!(
        count_keys(&mut c, "hot"),
        200,
        "a frequently used key was evicted"
    );
    let first = sub.read_reply();
    assert!(
        first.starts_with(b">3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:evicted\r\n"),
        "{}",
        common::show(&first)
    );
}
