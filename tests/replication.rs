//! Replication over real sockets: hashd → hashd, hashd → Redis 7.4.1, Redis 7.4.1 → hashd;
//! partial resync after a cut, promotion with the history kept (psync2), a replica's
//! restart and a master's restart resuming by partial resync, a slow replica dropped at
//! its output buffer limit, WAIT and min-replicas-to-write.
//!
//! Each test ends by comparing the datasets key by key (fields, values, field deadlines
//! and key deadlines) after `WAIT`, so a replica that merely looks alive cannot pass.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

const DBS: usize = 4;
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// A hashd master whose full syncs start at once.
fn master() -> TestServer {
    TestServer::builder()
        .config(|c| c.repl_diskless_sync_delay = 0)
        .start()
}

fn replica_of(addr: SocketAddr) -> TestServer {
    let r = TestServer::builder()
        .config(|c| c.repl_diskless_sync_delay = 0)
        .start();
    let mut c = r.client();
    c.expect(&format!("REPLICAOF 127.0.0.1 {}", addr.port()), b"+OK\r\n");
    r
}

fn bulk_text(reply: &[u8]) -> String {
    match decode(reply) {
        Value::Bulk(b) | Value::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("expected a bulk reply, got {other:?}"),
    }
}

/// One INFO field (`section` as INFO takes it).
fn info(c: &mut Client, section: &str, field: &str) -> Option<String> {
    let text = bulk_text(&c.cmd(&["INFO", section]));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
}

fn int(reply: &[u8]) -> i64 {
    match decode(reply) {
        Value::Int(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// Waits until the replica at `addr` streams from its master.
fn wait_link_up(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    let up = wait_until(SYNC_TIMEOUT, || {
        info(&mut c, "replication", "master_link_status").as_deref() == Some("up")
    });
    assert!(
        up,
        "the replica's link did not come up: {:?}",
        bulk_text(&c.cmd(&["INFO", "replication"]))
    );
}

/// Waits until the replica `c` is connected to has lost its master link.
fn wait_link_down(c: &mut Client) {
    let down = wait_until(SYNC_TIMEOUT, || {
        info(c, "replication", "master_link_status").as_deref() == Some("down")
    });
    assert!(down, "the replica's link stayed up");
}

/// `WAIT n` on the master must see `n` replicas.
#[track_caller]
fn wait_replicas(master: &mut Client, n: i64) {
    let got = int(&master.cmd(&["WAIT", &n.to_string(), "10000"]));
    assert_eq!(got, n, "WAIT {n}: only {got} replicas acknowledged");
}

#[track_caller]
fn assert_same_data(master: SocketAddr, replica: SocketAddr) {
    let (m, r) = (dataset(master, DBS), dataset(replica, DBS));
    assert!(
        !m.is_empty(),
        "the master holds nothing: the test proves nothing"
    );
    if m != r {
        let only_m: Vec<_> = m.keys().filter(|k| !r.contains_key(*k)).collect();
        let only_r: Vec<_> = r.keys().filter(|k| !m.contains_key(*k)).collect();
        let differ: Vec<_> = m
            .iter()
            .filter(|(k, v)| r.get(*k).is_some_and(|w| w != *v))
            .map(|(k, v)| (k, v, &r[k]))
            .collect();
        panic!(
            "datasets differ: only on the master {only_m:?}, only on the replica {only_r:?}, \
             different {differ:?}"
        );
    }
}

/// Writes of every kind the stream must carry, in several databases.
fn write_mix(c: &mut Client, round: usize) {
    let k = |name: &str| format!("{name}:{round}");
    for line in [
        format!("HSET {} a 1 b 2 c 3 d 4", k("h")),
        format!("HEXPIRE {} 1000 FIELDS 2 a nosuch", k("h")),
        format!("HPEXPIRE {} 500000 FIELDS 1 b", k("h")),
        format!("HINCRBYFLOAT {} c 1.25", k("h")),
        format!("HINCRBY {} n 7", k("h")),
        format!("HSETEX {} PX 600000 FIELDS 2 s1 v1 s2 v2", k("sx")),
        format!("HGETEX {} PERSIST FIELDS 1 s1", k("sx")),
        format!("HGETDEL {} FIELDS 1 d", k("h")),
        format!("HPERSIST {} FIELDS 1 b", k("h")),
        format!("HSET {} f v", k("gone")),
        format!("DEL {}", k("gone")),
        format!("HSET {} f v", k("ttl")),
        format!("PEXPIRE {} 900000", k("ttl")),
        // A past deadline deletes the fields (HDEL in the stream).
        format!("HEXPIREAT {} 1 FIELDS 1 a", k("h")),
        "SELECT 2".to_string(),
        format!("HSET {} x y", k("db2")),
        format!("HSET {} x y", k("ren")),
        format!("RENAME {} {}", k("ren"), k("renamed")),
        "MULTI".to_string(),
        format!("HSET {} t 1", k("tx")),
        format!("HINCRBY {} t 1", k("tx")),
        "EXEC".to_string(),
        "SELECT 0".to_string(),
    ] {
        let r = c.run(&line);
        assert!(!r.starts_with(b"-"), "{line}: {}", show(&r));
    }
}

#[test]
fn a_hashd_replica_follows_a_hashd_master() {
    let m = master();
    let mut mc = m.client();
    write_mix(&mut mc, 0);
    mc.expect("SELECT 3", b"+OK\r\n");
    mc.expect("HSET before-sync f v", b":1\r\n");
    mc.expect("SELECT 0", b"+OK\r\n");
    let r = replica_of(m.addr);
    wait_link_up(r.addr);
    for round in 1..4 {
        write_mix(&mut mc, round);
    }
    // SWAPDB and FLUSHDB travel too.
    mc.expect("SELECT 1", b"+OK\r\n");
    mc.expect("HSET flushed f v", b":1\r\n");
    mc.expect("FLUSHDB", b"+OK\r\n");
    mc.expect("HSET swapped f v", b":1\r\n");
    mc.expect("SWAPDB 1 3", b"+OK\r\n");
    mc.expect("SELECT 0", b"+OK\r\n");
    wait_replicas(&mut mc, 1);
    assert_same_data(m.addr, r.addr);

    let mut rc = r.client();
    rc.expect(
        "HSET h:1 a 1",
        b"-READONLY You can't write against a read only replica.\r\n",
    );
    assert_eq!(
        info(&mut rc, "replication", "role").as_deref(),
        Some("slave")
    );
    assert_eq!(
        info(&mut mc, "replication", "connected_slaves").as_deref(),
        Some("1")
    );
    let slave0 = info(&mut mc, "replication", "slave0").expect("slave0");
    assert!(
        slave0.starts_with(&format!(
            "ip=127.0.0.1,port={},state=online,offset=",
            r.port()
        )),
        "{slave0}"
    );
    assert_eq!(info(&mut mc, "stats", "sync_full").as_deref(), Some("1"));
    // Both report the same replication id and offset once caught up.
    assert_eq!(
        info(&mut mc, "replication", "master_replid"),
        info(&mut rc, "replication", "master_replid")
    );
    // ROLE on both sides.
    let role = items(decode(&mc.run("ROLE")));
    assert_eq!(role[0], Value::Bulk(b"master".to_vec()));
    let role = items(decode(&rc.run("ROLE")));
    assert_eq!(role[0], Value::Bulk(b"slave".to_vec()));
    assert_eq!(role[3], Value::Bulk(b"connected".to_vec()));
}

#[test]
fn a_replica_hides_expired_fields_and_reclaims_only_on_the_masters_hdel() {
    let m = TestServer::builder()
        .config(|c| c.repl_diskless_sync_delay = 0)
        .active_expire(false)
        .start();
    let mut mc = m.client();
    mc.expect("HSET k short 1 long 2", b":2\r\n");
    let r = replica_of(m.addr);
    wait_link_up(r.addr);
    mc.expect("HPEXPIRE k 100 FIELDS 1 short", b"*1\r\n:1\r\n");
    wait_replicas(&mut mc, 1);
    std::thread::sleep(Duration::from_millis(150));
    let mut rc = r.client();
    // Expired on the replica's clock: hidden from every read…
    rc.expect("HGET k short", b"$-1\r\n");
    rc.expect("HLEN k", b":1\r\n");
    rc.expect("HEXISTS k short", b":0\r\n");
    assert_eq!(
        decode(&rc.run("HGETALL k")),
        decode(b"*2\r\n$4\r\nlong\r\n$1\r\n2\r\n")
    );
    rc.expect("HRANDFIELD k", b"$4\r\nlong\r\n");
    // …but still stored: only the master decides.
    assert_eq!(r.ctx.keyspace.stored_len(0, b"k"), Some(2));
    // The master reclaims it on access and streams the HDEL.
    mc.expect("HGET k short", b"$-1\r\n");
    wait_replicas(&mut mc, 1);
    assert!(wait_until(SYNC_TIMEOUT, || r
        .ctx
        .keyspace
        .stored_len(0, b"k")
        == Some(1)));
    // A key whose every field expired reads as missing on the replica and stays stored.
    mc.expect("HSET gone f v", b":1\r\n");
    mc.expect("HPEXPIRE gone 50 FIELDS 1 f", b"*1\r\n:1\r\n");
    wait_replicas(&mut mc, 1);
    std::thread::sleep(Duration::from_millis(100));
    rc.expect("EXISTS gone", b":0\r\n");
    rc.expect("HGETALL gone", b"*0\r\n");
    assert_eq!(r.ctx.keyspace.stored_len(0, b"gone"), Some(1));
    mc.expect("EXISTS gone", b":0\r\n");
    wait_replicas(&mut mc, 1);
    assert!(wait_until(SYNC_TIMEOUT, || r
        .ctx
        .keyspace
        .stored_len(0, b"gone")
        .is_none()));
}

/// Writers on several connections while the replica syncs and streams.
fn concurrent_writers(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..3)
        .map(|w| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}:{}", i % 50);
                    let f = format!("f{}", i % 7);
                    let lines = [
                        format!("HSET {key} {f} {i}"),
                        format!("HINCRBY {key} counter 1"),
                        format!("HPEXPIRE {key} {} FIELDS 1 {f}", 20 + i % 200),
                        format!("HSETEX {key} PX 3600000 FIELDS 1 keep {i}"),
                    ];
                    let r = c.run(&lines[(i % 4) as usize]);
                    assert!(!r.starts_with(b"-"), "{}", show(&r));
                    i += 1;
                }
            })
        })
        .collect()
}

#[test]
fn redis_7_4_replica_follows_a_hashd_master_under_writes_and_expiry() {
    let Some(bin) = reference_redis() else {
        return;
    };
    let m = master();
    let mut mc = m.client();
    write_mix(&mut mc, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = concurrent_writers(m.addr, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(200));
    let dir = fresh_dir("redis-replica");
    let master_port = m.port().to_string();
    let redis = RedisServer::start(&bin, &dir, &["--replicaof", "127.0.0.1", &master_port]);
    wait_link_up(redis.addr);
    for round in 1..3 {
        write_mix(&mut mc, round);
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    // Let the short field TTLs run out and the master's sweeper stream their HDELs.
    std::thread::sleep(Duration::from_millis(400));
    wait_replicas(&mut mc, 1);
    assert_same_data(m.addr, redis.addr);
    // The Redis replica reports the same offset as the master once it acknowledged.
    let mut rc = Client::connect(redis.addr);
    assert_eq!(
        info(&mut rc, "replication", "master_replid"),
        info(&mut mc, "replication", "master_replid")
    );
}

#[test]
fn a_hashd_replica_follows_a_redis_7_4_master() {
    let Some(bin) = reference_redis() else {
        return;
    };
    let dir = fresh_dir("redis-master");
    let redis = RedisServer::start(&bin, &dir, &["--repl-diskless-sync-delay", "0"]);
    let mut mc = Client::connect(redis.addr);
    mc.expect("HSET h a 1 b 2 c 3", b":3\r\n");
    mc.expect("HEXPIRE h 1000 FIELDS 1 a", b"*1\r\n:1\r\n");
    mc.expect("SELECT 2", b"+OK\r\n");
    mc.expect("HSET other f v", b":1\r\n");
    mc.expect("SELECT 0", b"+OK\r\n");
    let r = replica_of(redis.addr);
    wait_link_up(r.addr);
    for line in [
        "HSET h d 4",
        "HPEXPIRE h 100 FIELDS 1 b",
        "HINCRBYFLOAT h c 0.5",
        "HPERSIST h FIELDS 1 a",
        "HEXPIREAT h 1 FIELDS 1 d",
        "MULTI",
        "HSET tx a 1",
        "HINCRBY tx a 2",
        "EXEC",
        "PEXPIRE tx 900000",
        "SELECT 1",
        "HSET one f v",
        "SELECT 0",
    ] {
        let reply = mc.run(line);
        assert!(!reply.starts_with(b"-"), "{line}: {}", show(&reply));
    }
    // Let b expire on the master, whose active expiry streams an HDEL.
    std::thread::sleep(Duration::from_millis(300));
    wait_replicas(&mut mc, 1);
    assert_same_data(redis.addr, r.addr);

    // A type hashd does not serve: the link goes down and the data stays as it was.
    mc.expect("SET plain string", b"+OK\r\n");
    let mut rc = r.client();
    wait_link_down(&mut rc);
    rc.expect("HGET one f", b"$-1\r\n");
    rc.expect("SELECT 1", b"+OK\r\n");
    rc.expect("HGET one f", b"$1\r\nv\r\n");
}

/// A TCP relay between a replica and its master that the test can cut.
struct Relay {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<parking_lot::Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listener");
        let addr = listener.local_addr().expect("relay address");
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<parking_lot::Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, cs) = (Arc::clone(&open), Arc::clone(&conns));
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { return };
                if !o.load(Ordering::Relaxed) {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(target) else {
                    continue;
                };
                for s in [&inbound, &outbound] {
                    if let Ok(c) = s.try_clone() {
                        cs.lock().push(c);
                    }
                }
                for (mut from, mut to) in [
                    (
                        inbound.try_clone().expect("clone"),
                        outbound.try_clone().expect("clone"),
                    ),
                    (outbound, inbound),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, open, conns }
    }

    /// Closes every relayed connection and refuses new ones until [`Relay::restore`].
    fn cut(&self) {
        self.open.store(false, Ordering::Relaxed);
        for c in self.conns.lock().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_cut_link_resumes_by_partial_resync_or_full_sync_past_the_backlog() {
    let m = TestServer::builder()
        .config(|c| {
            c.repl_diskless_sync_delay = 0;
            c.repl_backlog_size = 16 * 1024;
        })
        .start();
    let relay = Relay::to(m.addr);
    let r = replica_of(relay.addr);
    let mut mc = m.client();
    mc.expect("HSET k a 1", b":1\r\n");
    wait_link_up(r.addr);
    wait_replicas(&mut mc, 1);

    // A short cut: the writes meanwhile fit in the backlog. The stream has selected
    // database 2 before the cut and sends no SELECT after it: the replica must go on
    // writing there.
    mc.expect("SELECT 2", b"+OK\r\n");
    mc.expect("HSET in2 a 1", b":1\r\n");
    wait_replicas(&mut mc, 1);
    relay.cut();
    let mut rc = r.client();
    wait_link_down(&mut rc);
    for i in 0..20 {
        mc.run(&format!("HSET k f{i} {i}"));
    }
    mc.expect("SELECT 0", b"+OK\r\n");
    relay.restore();
    wait_link_up(r.addr);
    wait_replicas(&mut mc, 1);
    assert_eq!(
        info(&mut mc, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(info(&mut mc, "stats", "sync_full").as_deref(), Some("1"));
    assert_same_data(m.addr, r.addr);

    // A long one: more than the backlog holds was written, so a full sync it is. (The
    // first PSYNC, with the replica's own id as REPLICAOF makes it send, failed too.)
    let partial_err = info(&mut mc, "stats", "sync_partial_err").expect("sync_partial_err");
    assert_eq!(partial_err, "1");
    relay.cut();
    wait_link_down(&mut rc);
    let big = "x".repeat(1000);
    for i in 0..40 {
        mc.run(&format!("HSET big f{i} {big}"));
    }
    relay.restore();
    wait_link_up(r.addr);
    wait_replicas(&mut mc, 1);
    assert_eq!(info(&mut mc, "stats", "sync_full").as_deref(), Some("2"));
    assert_eq!(
        info(&mut mc, "stats", "sync_partial_err").as_deref(),
        Some("2")
    );
    assert_same_data(m.addr, r.addr);
}

#[test]
fn a_promoted_replica_keeps_the_history_so_the_others_continue_from_it() {
    let m = master();
    let mut mc = m.client();
    mc.expect("HSET k a 1", b":1\r\n");
    let r1 = replica_of(m.addr);
    let r2 = replica_of(m.addr);
    wait_link_up(r1.addr);
    wait_link_up(r2.addr);
    write_mix(&mut mc, 0);
    wait_replicas(&mut mc, 2);
    drop(mc);
    drop(m);

    let mut c1 = r1.client();
    c1.expect("REPLICAOF NO ONE", b"+OK\r\n");
    assert_eq!(
        info(&mut c1, "replication", "role").as_deref(),
        Some("master")
    );
    let old_id = {
        let mut c2 = r2.client();
        info(&mut c2, "replication", "master_replid").expect("replid")
    };
    assert_eq!(
        info(&mut c1, "replication", "master_replid2").as_deref(),
        Some(old_id.as_str())
    );
    let mut c2 = r2.client();
    c2.expect(&format!("REPLICAOF 127.0.0.1 {}", r1.port()), b"+OK\r\n");
    wait_link_up(r2.addr);
    assert_eq!(
        info(&mut c1, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(info(&mut c1, "stats", "sync_full").as_deref(), Some("0"));
    c1.expect("HSET after promotion 1", b":1\r\n");
    wait_replicas(&mut c1, 1);
    assert_same_data(r1.addr, r2.addr);
}

#[test]
fn restarts_with_persistence_resume_by_partial_resync() {
    let mdir = fresh_dir("repl-master");
    let rdir = fresh_dir("repl-replica");
    let start_master = |port: u16| {
        let d = mdir.display().to_string();
        TestServer::builder()
            .port(port)
            .config(move |c| {
                c.repl_diskless_sync_delay = 0;
                c.save = "3600 1".into();
                c.dir = d;
            })
            .start()
    };
    let m = start_master(0);
    let port = m.port();
    let start_replica = || {
        let d = rdir.display().to_string();
        TestServer::builder()
            .config(move |c| {
                c.repl_diskless_sync_delay = 0;
                c.save = "3600 1".into();
                c.dir = d;
                c.replicaof = Some(format!("127.0.0.1 {port}"));
            })
            .start()
    };
    let mut mc = m.client();
    write_mix(&mut mc, 0);
    let r = start_replica();
    wait_link_up(r.addr);
    wait_replicas(&mut mc, 1);

    // The replica restarts: its snapshot holds the master's id and its offset.
    drop(r);
    write_mix(&mut mc, 1);
    let r = start_replica();
    wait_link_up(r.addr);
    wait_replicas(&mut mc, 1);
    assert_eq!(
        info(&mut mc, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(info(&mut mc, "stats", "sync_full").as_deref(), Some("1"));
    assert_same_data(m.addr, r.addr);

    // The master restarts on the same port: its final snapshot kept id and offset, so the
    // replica (which had everything) continues.
    drop(mc);
    drop(m);
    let m = start_master(port);
    let mut mc = m.client();
    wait_link_up(r.addr);
    assert_eq!(
        info(&mut mc, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(info(&mut mc, "stats", "sync_full").as_deref(), Some("0"));
    write_mix(&mut mc, 2);
    wait_replicas(&mut mc, 1);
    assert_same_data(m.addr, r.addr);
}

#[test]
fn a_replica_that_stops_reading_is_dropped_at_its_output_buffer_limit() {
    let m = TestServer::builder()
        .config(|c| c.client_output_buffer_limit = "replica 256kb 0 0".into())
        .start();
    let mut mc = m.client();
    mc.expect("HSET k f v", b":1\r\n");
    // A replica that takes its snapshot and then never reads again.
    let mut slow = m.client();
    slow.send(b"SYNC\r\n");
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\r\n") {
        slow.stream.read_exact(&mut byte).expect("snapshot header");
        if header.is_empty() && byte[0] == b'\n' {
            continue;
        }
        header.push(byte[0]);
    }
    let len: usize = std::str::from_utf8(&header[1..header.len() - 2])
        .expect("length")
        .parse()
        .expect("length");
    let mut rdb = vec![0u8; len];
    slow.stream.read_exact(&mut rdb).expect("snapshot");
    assert!(rdb.starts_with(b"REDIS0012"));
    assert_eq!(
        info(&mut mc, "replication", "connected_slaves").as_deref(),
        Some("1")
    );
    let value = "v".repeat(10_000);
    let dropped = wait_until(SYNC_TIMEOUT, || {
        for i in 0..50 {
            mc.run(&format!("HSET big f{i} {value}"));
        }
        info(&mut mc, "replication", "connected_slaves").as_deref() == Some("0")
    });
    assert!(dropped, "the stuck replica was never disconnected");
    // Other clients were served all along.
    mc.expect("HGET k f", b"$1\r\nv\r\n");
}

#[test]
fn min_replicas_to_write_refuses_writes_without_enough_replicas() {
    let m = TestServer::builder()
        .config(|c| {
            c.repl_diskless_sync_delay = 0;
            c.min_replicas_to_write = 1;
        })
        .start();
    let mut mc = m.client();
    mc.expect(
        "HSET k f v",
        b"-NOREPLICAS Not enough good replicas to write.\r\n",
    );
    mc.expect("MULTI", b"+OK\r\n");
    mc.expect(
        "HSET k f v",
        b"-NOREPLICAS Not enough good replicas to write.\r\n",
    );
    mc.expect(
        "EXEC",
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    mc.expect("HGET k f", b"$-1\r\n");
    let r = replica_of(m.addr);
    wait_link_up(r.addr);
    assert!(wait_until(SYNC_TIMEOUT, || mc.run("HSET k f v") == b":1\r\n"));
    wait_replicas(&mut mc, 1);
    let mut rc = r.client();
    rc.expect("HGET k f", b"$1\r\nv\r\n");
    // WAIT with a timeout returns what it has when fewer replicas answer.
    assert_eq!(int(&mc.run("WAIT 2 100")), 1);
}

#[test]
fn flushall_auth_disk_sync_and_chained_replicas() {
    // A master with a password, full syncs through a file; a replica that authenticates;
    // a replica of that replica.
    let m = TestServer::builder()
        .requirepass("s3cret")
        .config(|c| {
            c.repl_diskless_sync = false;
        })
        .start();
    let mut mc = m.client();
    mc.auth("s3cret");
    write_mix(&mut mc, 0);
    let r = TestServer::builder()
        .config(|c| c.masterauth = Some("s3cret".into()))
        .start();
    let mut rc = r.client();
    rc.expect(&format!("REPLICAOF 127.0.0.1 {}", m.port()), b"+OK\r\n");
    wait_link_up(r.addr);
    let chained = replica_of(r.addr);
    wait_link_up(chained.addr);
    mc.expect("FLUSHALL", b"+OK\r\n");
    write_mix(&mut mc, 1);
    mc.expect("HSET after-flush f v", b":1\r\n");
    wait_replicas(&mut mc, 1);

    // Without the password the link stays down.
    let unauth = replica_of(m.addr);
    let mut uc = unauth.client();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        info(&mut uc, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    drop(unauth);

    // (The comparison below connects without AUTH.)
    mc.expect("CONFIG SET requirepass \"\"", b"+OK\r\n");
    assert_same_data(m.addr, r.addr);
    // The chained replica has the same history: same id, and the same data once it has
    // caught up with its master's offset.
    let offset = info(&mut rc, "replication", "master_repl_offset").expect("offset");
    let mut cc = chained.client();
    assert!(wait_until(SYNC_TIMEOUT, || {
        info(&mut cc, "replication", "master_repl_offset").as_deref() == Some(offset.as_str())
    }));
    assert_eq!(
        info(&mut cc, "replication", "master_replid"),
        info(&mut mc, "replication", "master_replid")
    );
    assert_same_data(r.addr, chained.addr);
    assert_eq!(
        info(&mut rc, "replication", "connected_slaves").as_deref(),
        Some("1")
    );
}

#[test]
fn replica_serve_stale_data_no_refuses_while_the_link_is_down() {
    let r = TestServer::builder()
        .config(|c| c.replica_serve_stale_data = false)
        .start();
    let mut rc = r.client();
    // A master that is not there.
    let nobody = TcpListener::bind("127.0.0.1:0").expect("port");
    let port = nobody.local_addr().expect("addr").port();
    drop(nobody);
    rc.expect(&format!("REPLICAOF 127.0.0.1 {port}"), b"+OK\r\n");
    rc.expect(
        "HGET k f",
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
    );
    // So does PING, as in Redis 7.4.1; commands flagged `stale` still run.
    rc.expect(
        "PING",
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
    );
    assert_eq!(
        info(&mut rc, "replication", "role").as_deref(),
        Some("slave")
    );
    rc.expect("REPLICAOF NO ONE", b"+OK\r\n");
    rc.expect("HGET k f", b"$-1\r\n");
}

#[test]
fn a_redis_master_holding_other_types_is_refused_and_the_data_stays() {
    let Some(bin) = reference_redis() else {
        return;
    };
    let dir = fresh_dir("redis-master-mixed");
    let redis = RedisServer::start(&bin, &dir, &["--repl-diskless-sync-delay", "0"]);
    let mut mc = Client::connect(redis.addr);
    mc.expect("HSET h f v", b":1\r\n");
    mc.expect("SET plain string", b"+OK\r\n");
    let r = TestServer::start();
    let mut rc = r.client();
    rc.expect("HSET mine f v", b":1\r\n");
    rc.expect(
        &format!("REPLICAOF 127.0.0.1 {}", redis.addr.port()),
        b"+OK\r\n",
    );
    // The snapshot is fetched and refused, again and again: the link never comes up.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        info(&mut rc, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    let mut redis_side = Client::connect(redis.addr);
    assert!(
        info(&mut redis_side, "stats", "sync_full")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 1),
        "the replica never asked for the snapshot"
    );
    rc.expect("HGET mine f", b"$1\r\nv\r\n");
    rc.expect("HGET h f", b"$-1\r\n");
}

#[test]
fn a_redis_replica_of_hashd_continues_after_a_cut() {
    let Some(bin) = reference_redis() else {
        return;
    };
    let m = master();
    let relay = Relay::to(m.addr);
    let mut mc = m.client();
    write_mix(&mut mc, 0);
    let dir = fresh_dir("redis-replica-cut");
    let port = relay.addr.port().to_string();
    let redis = RedisServer::start(&bin, &dir, &["--replicaof", "127.0.0.1", &port]);
    wait_link_up(redis.addr);
    wait_replicas(&mut mc, 1);
    relay.cut();
    let mut rc = Client::connect(redis.addr);
    wait_link_down(&mut rc);
    write_mix(&mut mc, 1);
    relay.restore();
    wait_link_up(redis.addr);
    wait_replicas(&mut mc, 1);
    assert_eq!(
        info(&mut mc, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(info(&mut mc, "stats", "sync_full").as_deref(), Some("1"));
    assert_same_data(m.addr, redis.addr);
}

#[test]
fn client_unblock_ends_a_wait() {
    let m = master();
    let mut waiter = m.client();
    let id = int(&waiter.run("CLIENT ID"));
    let mut admin = m.client();
    for (reason, expected) in [
        ("TIMEOUT", &b":0\r\n"[..]),
        (
            "ERROR",
            b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
        ),
    ] {
        waiter.send(b"WAIT 1 0\r\n");
        // Until the WAIT is blocked, CLIENT UNBLOCK finds nothing to unblock.
        assert!(wait_until(SYNC_TIMEOUT, || {
            admin.run(&format!("CLIENT UNBLOCK {id} {reason}")) == b":1\r\n"
        }));
        assert_eq!(waiter.read_reply(), expected);
    }
    admin.expect(&format!("CLIENT UNBLOCK {id}"), b":0\r\n");
}

#[test]
fn a_master_shutting_down_sends_its_replicas_what_it_acknowledged() {
    let m = master();
    let r = replica_of(m.addr);
    wait_link_up(r.addr);
    let mut mc = m.client();
    // Acknowledged writes, then at once the shutdown: no WAIT in between.
    let mut batch = Vec::new();
    for i in 0..5000 {
        batch.extend(encode_command(&[
            "HSET",
            &format!("k{}", i % 50),
            &format!("f{i}"),
            "v",
        ]));
    }
    mc.send(&batch);
    for _ in 0..5000 {
        mc.read_reply();
    }
    drop(mc);
    drop(m);
    // The replica applies what it received before it sees the link close.
    let mut rc = r.client();
    let mut total = 0;
    let complete = wait_until(SYNC_TIMEOUT, || {
        total = (0..50)
            .map(|i| int(&rc.run(&format!("HLEN k{i}"))))
            .sum::<i64>();
        total == 5000
    });
    assert!(
        complete,
        "the replica has {total} of 5000 acknowledged writes"
    );
}

#[test]
fn a_replica_gone_mid_sync_leaves_no_child_or_file_behind() {
    let dir = fresh_dir("repl-gone");
    let d = dir.display().to_string();
    let m = TestServer::builder()
        .config(move |c| {
            c.repl_diskless_sync = false;
            c.dir = d;
        })
        .start();
    let mut mc = m.client();
    let mut batch = Vec::new();
    for i in 0..2000 {
        let mut args = vec!["HSET".to_string(), format!("h{i}")];
        for f in 0..50 {
            args.push(format!("field{f}"));
            args.push("v".repeat(20));
        }
        batch.extend(encode_command(&args));
    }
    mc.send(&batch);
    for _ in 0..2000 {
        mc.read_reply();
    }
    for _ in 0..3 {
        let mut gone = m.client();
        gone.send(b"SYNC\r\n");
        std::thread::sleep(Duration::from_millis(20));
        drop(gone);
    }
    let temp_files = || {
        std::fs::read_dir(&dir)
            .map(|e| {
                e.flatten()
                    .filter(|f| f.file_name().to_string_lossy().starts_with("temp-"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(
        wait_until(SYNC_TIMEOUT, || temp_files() == 0),
        "snapshot files left in {}",
        dir.display()
    );
    // And the master still serves full syncs.
    let r = replica_of(m.addr);
    wait_link_up(r.addr);
    wait_replicas(&mut mc, 1);
    let mut rc = r.client();
    assert_eq!(rc.run("DBSIZE"), b":2000\r\n");
    assert_eq!(rc.run("HLEN h1999"), b":50\r\n");
}
