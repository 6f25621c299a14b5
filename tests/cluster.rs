//! Cluster mode (issue 13 items 1 and 2): three masters and a replica each, hashd nodes on
//! loopback ports, the topology pushed with CLUSTERX SETNODEID / SETNODES as
//! kvrocks-controller does. Redirections and errors as Redis 7.4.1 gives them (MOVED,
//! CROSSSLOT, CLUSTERDOWN, SELECT), CLUSTER SLOTS / SHARDS / NODES / INFO from the one
//! topology, READONLY reads on replicas that follow their master, the redis crate's
//! cluster client writing and reading 10,000 hashes with field TTLs, and the topology
//! surviving a restart.

mod common;

use std::time::Duration;

use common::{Client, TestServer, Value};

const IDS: [&str; 6] = [
    "1111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222",
    "3333333333333333333333333333333333333333",
    "4444444444444444444444444444444444444444",
    "5555555555555555555555555555555555555555",
    "6666666666666666666666666666666666666666",
];

struct Cluster {
    nodes: Vec<TestServer>,
    dirs: Vec<String>,
}

fn node(dir: &str, port: u16) -> TestServer {
    try_node(dir, port).expect("bind 127.0.0.1 for the test server")
}

fn try_node(dir: &str, port: u16) -> std::io::Result<TestServer> {
    let d = dir.to_string();
    TestServer::builder()
        .port(port)
        .config(move |c| {
            c.cluster_enabled = true;
            c.dir = d;
        })
        .try_start()
}

/// `<id> 127.0.0.1 <port> master - <slots>` for three masters, a replica for each.
fn topology(ports: &[u16]) -> String {
    let ranges = ["0-5460", "5461-10922", "10923-16383"];
    let mut t = String::new();
    for m in 0..3 {
        t.push_str(&format!(
            "{} 127.0.0.1 {} master - {}\n",
            IDS[m], ports[m], ranges[m]
        ));
    }
    for r in 0..3 {
        t.push_str(&format!(
            "{} 127.0.0.1 {} slave {}\n",
            IDS[3 + r],
            ports[3 + r],
            IDS[r]
        ));
    }
    t
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_cluster() -> Cluster {
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let dirs: Vec<String> = (0..6)
        .map(|i| {
            common::fresh_dir(&format!("cluster{i}"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    // The ports are picked free, then bound a moment later: a test running in parallel
    // can take one in between, so pick them again if a bind fails.
    let mut ports = ports;
    let mut attempts = 0;
    let nodes: Vec<TestServer> = loop {
        match (0..6)
            .map(|i| try_node(&dirs[i], ports[i]))
            .collect::<std::io::Result<Vec<_>>>()
        {
            Ok(nodes) => break nodes,
            Err(e) => {
                attempts += 1;
                assert!(attempts < 20, "no six free ports: {e}");
                ports = (0..6).map(|_| free_port()).collect();
            }
        }
    };
    let text = topology(&ports);
    for (i, n) in nodes.iter().enumerate() {
        let mut c = n.client();
        c.expect(&format!("CLUSTERX SETNODEID {}", IDS[i]), b"+OK\r\n");
        c.cmd(&["CLUSTERX", "SETNODES", &text, "1"]);
    }
    Cluster { nodes, dirs }
}

fn port(n: &TestServer) -> u16 {
    n.port()
}

fn text(reply: &[u8]) -> String {
    match common::decode(reply) {
        Value::Bulk(b) | Value::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn redirections_and_errors_match_redis() {
    let cl = start_cluster();
    let p: Vec<u16> = cl.nodes.iter().map(port).collect();
    let mut c = cl.nodes[0].client();
    // Slot 15495 ("a") is the third master's; 3443 ({user1000}) the first's.
    c.expect("CLUSTER KEYSLOT a", b":15495\r\n");
    c.expect("CLUSTER KEYSLOT {user1000}.following", b":3443\r\n");
    c.expect(
        "HSET a f v",
        format!("-MOVED 15495 127.0.0.1:{}\r\n", p[2]).as_bytes(),
    );
    c.expect(
        "HSET {a}x f v",
        format!("-MOVED 15495 127.0.0.1:{}\r\n", p[2]).as_bytes(),
    );
    c.expect(
        "DEL a b",
        b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",
    );
    c.expect("HSET {user1000}.a f v", b":1\r\n");
    c.expect("SELECT 0", b"+OK\r\n");
    c.expect(
        "SELECT 1",
        b"-ERR SELECT is not allowed in cluster mode\r\n",
    );
    c.expect(
        "SWAPDB 0 1",
        b"-ERR SWAPDB is not allowed in cluster mode\r\n",
    );
    // A transaction: a command for another node flags it; EXEC across slots is CROSSSLOT.
    c.expect("MULTI", b"+OK\r\n");
    c.expect(
        "HSET a f v",
        format!("-MOVED 15495 127.0.0.1:{}\r\n", p[2]).as_bytes(),
    );
    c.expect("HSET {user1000}.b f v", b"+QUEUED\r\n");
    c.expect(
        "EXEC",
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    c.expect("MULTI", b"+OK\r\n");
    c.expect("HSET {user1000}.b f v", b"+QUEUED\r\n");
    c.expect("HSET {user1000}.c f v", b"+QUEUED\r\n");
    c.expect("EXEC", b"*2\r\n:1\r\n:1\r\n");
    c.expect("CLUSTER COUNTKEYSINSLOT 3443", b":3\r\n");
    c.expect("CLUSTER COUNTKEYSINSLOT 20000", b"-ERR Invalid slot\r\n");
    c.expect(
        "CLUSTER COUNTKEYSINSLOT x",
        b"-ERR value is not an integer or out of range\r\n",
    );
    c.expect(
        "CLUSTER GETKEYSINSLOT 1 -1",
        b"-ERR Invalid slot or number of keys\r\n",
    );
    let one = String::from_utf8_lossy(&c.run("CLUSTER GETKEYSINSLOT 3443 1")).into_owned();
    assert!(one.starts_with("*1\r\n$12\r\n{user1000}."), "{one}");
    c.expect(
        "CLUSTER NOSUCH",
        b"-ERR unknown subcommand 'NOSUCH'. Try CLUSTER HELP.\r\n",
    );
    c.expect("CLUSTERX VERSION", b":1\r\n");
    c.expect("CLUSTER MYID", format!("$40\r\n{}\r\n", IDS[0]).as_bytes());
    // HELLO says cluster; INFO says it too.
    let hello = String::from_utf8_lossy(&c.run("HELLO 3")).into_owned();
    assert!(hello.contains("$4\r\nmode\r\n$7\r\ncluster\r\n"), "{hello}");
    assert!(text(&c.run("INFO cluster")).contains("cluster_enabled:1"));
}

#[test]
fn cluster_replies_come_from_one_topology() {
    let cl = start_cluster();
    let p: Vec<u16> = cl.nodes.iter().map(port).collect();
    let mut c = cl.nodes[1].client();
    let info = text(&c.run("CLUSTER INFO"));
    for line in [
        "cluster_state:ok",
        "cluster_slots_assigned:16384",
        "cluster_slots_ok:16384",
        "cluster_known_nodes:6",
        "cluster_size:3",
        "cluster_current_epoch:1",
    ] {
        assert!(info.contains(&format!("{line}\r\n")), "{line} in {info}");
    }
    let nodes = text(&c.run("CLUSTER NODES"));
    assert!(nodes.contains(&format!(
        "{} 127.0.0.1:{}@{} myself,master - 0 0 1 connected 5461-10922\n",
        IDS[1],
        p[1],
        u32::from(p[1]) + 10000
    )));
    assert!(nodes.contains(&format!(
        "{} 127.0.0.1:{}@{} slave {} 0 0 1 connected\n",
        IDS[4],
        p[4],
        u32::from(p[4]) + 10000,
        IDS[1]
    )));
    // CLUSTER SLOTS: [start, end, [ip, port, id, {}], replica…], ranges in slot order.
    let slots = c.run("CLUSTER SLOTS");
    let want_first = format!(
        "*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:{}\r\n$40\r\n{}\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n:{}\r\n$40\r\n{}\r\n*0\r\n",
        p[0], IDS[0], p[3], IDS[3]
    );
    assert!(
        slots.starts_with(want_first.as_bytes()),
        "{}",
        common::show(&slots)
    );
    c.hello3();
    let slots3 = c.run("CLUSTER SLOTS");
    assert!(String::from_utf8_lossy(&slots3).contains("%0\r\n"));
    let shards = c.run("CLUSTER SHARDS");
    let shown = String::from_utf8_lossy(&shards);
    assert!(shown.starts_with("*3\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n%7\r\n$2\r\nid\r\n"), "{shown}");
    assert!(shown.contains("$4\r\nrole\r\n$7\r\nreplica\r\n"), "{shown}");
    // A topology with an older version is refused; the same one is accepted as is.
    let t = topology(&p);
    let mut c = cl.nodes[1].client();
    c.expect_args(
        &["CLUSTERX", "SETNODES", &t, "0"],
        b"-ERR Invalid cluster version\r\n",
    );
    c.expect_args(&["CLUSTERX", "SETNODES", &t, "1"], b"+OK\r\n");
    c.expect_args(
        &["CLUSTERX", "SETNODES", "x y", "2"],
        b"-ERR Invalid cluster nodes info: Invalid cluster node line 'x y'\r\n",
    );
    // SETSLOT moves one slot as the next version.
    c.expect_args(
        &["CLUSTERX", "SETSLOT", "0", "NODE", IDS[1], "3"],
        b"-ERR Invalid cluster version\r\n",
    );
    c.expect_args(
        &["CLUSTERX", "SETSLOT", "0", "NODE", IDS[1], "2"],
        b"+OK\r\n",
    );
    c.expect("CLUSTERX VERSION", b":2\r\n");
    let info = text(&c.run("CLUSTER NODES"));
    assert!(
        info.contains("myself,master - 0 0 2 connected 0 5461-10922"),
        "{info}"
    );
}

fn wait_for(c: &mut Client, cmd: &str, want: &[u8]) {
    let ok = common::wait_until(Duration::from_secs(20), || c.run(cmd) == want);
    assert!(ok, "{cmd} never answered {}", common::show(want));
}

#[test]
fn replicas_follow_their_masters_and_serve_readonly_reads() {
    let cl = start_cluster();
    let p: Vec<u16> = cl.nodes.iter().map(port).collect();
    let mut m = cl.nodes[2].client();
    m.expect("HSET a f v", b":1\r\n");
    m.expect("HEXPIRE a 1000 FIELDS 1 f", b"*1\r\n:1\r\n");
    let mut r = cl.nodes[5].client();
    let role = String::from_utf8_lossy(&r.run("ROLE")).into_owned();
    assert!(role.starts_with("*5\r\n$5\r\nslave\r\n"), "{role}");
    r.expect(
        "HGET a f",
        format!("-MOVED 15495 127.0.0.1:{}\r\n", p[2]).as_bytes(),
    );
    r.expect("READONLY", b"+OK\r\n");
    wait_for(&mut r, "HGET a f", b"$1\r\nv\r\n");
    // The field's TTL came with it (less the time the link took to come up).
    match common::decode(&r.run("HTTL a FIELDS 1 f")) {
        Value::Array(v) => assert!(matches!(v[0], Value::Int(t) if (900..=1000).contains(&t))),
        other => panic!("{other:?}"),
    }
    // Writes still go to the master; another master's slot still moves.
    r.expect(
        "HSET a g w",
        format!("-MOVED 15495 127.0.0.1:{}\r\n", p[2]).as_bytes(),
    );
    r.expect(
        "HGET {user1000} f",
        format!("-MOVED 3443 127.0.0.1:{}\r\n", p[0]).as_bytes(),
    );
    r.expect("READWRITE", b"+OK\r\n");
    r.expect(
        "HGET a f",
        format!("-MOVED 15495 127.0.0.1:{}\r\n", p[2]).as_bytes(),
    );
}

#[test]
fn the_topology_survives_a_restart() {
    let mut cl = start_cluster();
    let before = text(&cl.nodes[0].client().run("CLUSTER NODES"));
    let port0 = cl.nodes[0].port();
    let dir0 = cl.dirs[0].clone();
    drop(cl.nodes.remove(0));
    let n = node(&dir0, port0);
    let mut c = n.client();
    assert_eq!(text(&c.run("CLUSTER NODES")), before);
    c.expect("CLUSTERX VERSION", b":1\r\n");
    c.expect("HSET {user1000} f v", b":1\r\n");
}

#[test]
fn before_a_topology_keys_are_not_served() {
    let dir = common::fresh_dir("cluster-empty");
    let n = node(&dir.to_string_lossy(), 0);
    let mut c = n.client();
    c.expect("HSET a f v", b"-CLUSTERDOWN Hash slot not served\r\n");
    c.expect("PING", b"+PONG\r\n");
    c.expect("CLUSTERX VERSION", b":-1\r\n");
    c.expect(
        "CONFIG GET cluster-enabled",
        b"*2\r\n$15\r\ncluster-enabled\r\n$3\r\nyes\r\n",
    );
    let info = text(&c.run("CLUSTER INFO"));
    assert!(
        info.starts_with("cluster_state:fail\r\ncluster_slots_assigned:0\r\n"),
        "{info}"
    );
    c.expect("CLUSTER SLOTS", b"*0\r\n");
    // Part of the slots: down while full coverage is required (the default), up without.
    c.expect_args(
        &[
            "CLUSTERX",
            "SETNODES",
            &format!("{} 127.0.0.1 1 master - 0-99", IDS[0]),
            "1",
        ],
        b"+OK\r\n",
    );
    assert!(text(&c.run("CLUSTER INFO")).starts_with("cluster_state:fail"));
    c.expect("CONFIG SET cluster-require-full-coverage no", b"+OK\r\n");
    assert!(text(&c.run("CLUSTER INFO")).starts_with("cluster_state:ok"));
    c.expect("HSET a f v", b"-CLUSTERDOWN Hash slot not served\r\n");
    c.expect("CLUSTERX SETNODES x 0", b"-ERR Invalid cluster version\r\n");
    c.expect("CLUSTER RESET", b"+OK\r\n");
    c.expect("CLUSTERX VERSION", b":-1\r\n");
}

/// The redis crate's cluster client (it discovers with CLUSTER SLOTS and follows MOVED)
/// writes and reads 10,000 hashes with field TTLs, and a hash-tagged multi-key command.
#[test]
fn the_redis_crate_cluster_client_reads_and_writes() {
    let cl = start_cluster();
    let urls: Vec<String> = cl.nodes[..3]
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}/", n.port()))
        .collect();
    let client = redis::cluster::ClusterClient::new(urls).expect("cluster client");
    let mut con = client.get_connection().expect("connect to the cluster");
    for i in 0..10_000 {
        let key = format!("user:{i}");
        let _: i64 = redis::cmd("HSET")
            .arg(&key)
            .arg("name")
            .arg(i)
            .arg("session")
            .arg("s")
            .query(&mut con)
            .expect("HSET");
        let _: Vec<i64> = redis::cmd("HEXPIRE")
            .arg(&key)
            .arg(3600)
            .arg("FIELDS")
            .arg(1)
            .arg("session")
            .query(&mut con)
            .expect("HEXPIRE");
    }
    for i in (0..10_000).step_by(97) {
        let key = format!("user:{i}");
        let name: String = redis::cmd("HGET")
            .arg(&key)
            .arg("name")
            .query(&mut con)
            .expect("HGET");
        assert_eq!(name, i.to_string());
        let ttl: Vec<i64> = redis::cmd("HTTL")
            .arg(&key)
            .arg("FIELDS")
            .arg(1)
            .arg("session")
            .query(&mut con)
            .expect("HTTL");
        assert!(ttl[0] > 3500, "{ttl:?}");
    }
    let deleted: i64 = redis::cmd("DEL")
        .arg("{grp}a")
        .arg("{grp}b")
        .query(&mut con)
        .expect("DEL with a hash tag");
    assert_eq!(deleted, 0);
    // Every node holds only its own slots' keys.
    let mut total = 0;
    for n in &cl.nodes[..3] {
        let mut c = n.client();
        match common::decode(&c.run("DBSIZE")) {
            Value::Int(k) => {
                assert!(k > 2000, "a master holds {k} of the keys");
                total += k;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(total, 10_000);
}

/// A cluster-aware raw client: follows MOVED, retries TRYAGAIN; returns the final reply.
fn routed(
    ports: &[u16],
    conns: &mut std::collections::HashMap<u16, Client>,
    start: u16,
    args: &[&str],
) -> Vec<u8> {
    let mut port = start;
    for _ in 0..200 {
        let c = conns
            .entry(port)
            .or_insert_with(|| Client::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))));
        let reply = c.cmd(args);
        let text = String::from_utf8_lossy(&reply).into_owned();
        if let Some(rest) = text.strip_prefix("-MOVED ") {
            let endpoint = rest.split_whitespace().nth(1).unwrap_or_default();
            port = endpoint
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(port);
            assert!(ports.contains(&port), "MOVED to an unknown node: {text}");
            continue;
        }
        if text.starts_with("-TRYAGAIN") {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        return reply;
    }
    panic!("no node served {args:?}");
}

fn cluster_info_field(c: &mut Client, name: &str) -> Option<String> {
    text(&c.run("CLUSTER INFO")).lines().find_map(|l| {
        l.strip_prefix(&format!("{name}:"))
            .map(|v| v.trim().to_string())
    })
}

/// CLUSTERX MIGRATE under concurrent writes: every key arrives with its field TTLs, every
/// acknowledged increment is counted exactly once, the source answers MOVED afterwards
/// and keeps nothing of the slot, and the controller's SETSLOT makes it permanent.
#[test]
fn a_slot_migrates_live_without_losing_or_repeating_a_write() {
    let cl = start_cluster();
    let p: Vec<u16> = cl.nodes.iter().map(port).collect();
    // "{c}" hashes to slot 7365, on the second master; it moves to the third.
    let mut src = cl.nodes[1].client();
    src.expect("CLUSTER KEYSLOT {c}", b":7365\r\n");
    for i in 0..2000 {
        src.cmd(&["HSET", &format!("{{c}}:{i}"), "a", "1", "b", "2"]);
        src.cmd(&["HEXPIRE", &format!("{{c}}:{i}"), "3600", "FIELDS", "1", "b"]);
    }
    src.expect("PEXPIRE {c}:0 7200000", b":1\r\n");
    // A writer increments a counter through the migration, counting acknowledgements.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, ports) = (stop.clone(), p.clone());
        std::thread::spawn(move || {
            let mut conns = std::collections::HashMap::new();
            let mut acked = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = routed(
                    &ports,
                    &mut conns,
                    ports[1],
                    &["HINCRBY", "{c}:counter", "n", "1"],
                );
                assert!(r.starts_with(b":"), "{}", common::show(&r));
                acked += 1;
            }
            acked
        })
    };
    // And one through the redis crate's cluster client: MOVED and TRYAGAIN must not reach
    // the application.
    let app = {
        let stop = stop.clone();
        let urls: Vec<String> = p[..3]
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}/"))
            .collect();
        std::thread::spawn(move || {
            let client = redis::cluster::ClusterClient::new(urls).expect("cluster client");
            let mut con = client.get_connection().expect("connect");
            let mut acked = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: i64 = redis::cmd("HINCRBY")
                    .arg("{c}:app")
                    .arg("n")
                    .arg(1)
                    .query(&mut con)
                    .expect("the cluster client saw an error");
                acked += 1;
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    src.expect(&format!("CLUSTERX MIGRATE 7365 {}", IDS[2]), b"+OK\r\n");
    let done = common::wait_until(Duration::from_secs(30), || {
        cluster_info_field(&mut src, "migrating_state").as_deref() == Some("success")
    });
    assert!(
        done,
        "migration did not succeed: {:?}",
        cluster_info_field(&mut src, "migrating_state")
    );
    assert_eq!(
        cluster_info_field(&mut src, "migrating_slot").as_deref(),
        Some("7365")
    );
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.join().expect("writer");
    let app_acked = app.join().expect("cluster-client writer");
    assert!(acked > 0 && app_acked > 0);
    // The source sends clients on; the target serves the slot before any new topology.
    src.expect(
        "HGET {c}:1 a",
        format!("-MOVED 7365 127.0.0.1:{}\r\n", p[2]).as_bytes(),
    );
    let mut dst = cl.nodes[2].client();
    dst.expect("HGET {c}:1 a", b"$1\r\n1\r\n");
    dst.expect(
        "HGET {c}:counter n",
        format!("${}\r\n{acked}\r\n", acked.to_string().len()).as_bytes(),
    );
    dst.expect(
        "HGET {c}:app n",
        format!("${}\r\n{app_acked}\r\n", app_acked.to_string().len()).as_bytes(),
    );
    dst.expect("CLUSTER COUNTKEYSINSLOT 7365", b":2002\r\n");
    match common::decode(&dst.run("HTTL {c}:1999 FIELDS 2 a b")) {
        Value::Array(v) => {
            assert_eq!(v[0], Value::Int(-1));
            assert!(matches!(v[1], Value::Int(t) if t > 3500));
        }
        other => panic!("{other:?}"),
    }
    match common::decode(&dst.run("PTTL {c}:0")) {
        Value::Int(t) => assert!(t > 7_000_000, "{t}"),
        other => panic!("{other:?}"),
    }
    // The source's copy is gone.
    let mut internal_view = cl.nodes[1].client();
    internal_view.expect("CLUSTER COUNTKEYSINSLOT 7365", b":0\r\n");
    // The controller makes it permanent on every node.
    for n in &cl.nodes {
        n.client().expect_args(
            &["CLUSTERX", "SETSLOT", "7365", "NODE", IDS[2], "2"],
            b"+OK\r\n",
        );
    }
    src.expect(
        "HGET {c}:1 a",
        format!("-MOVED 7365 127.0.0.1:{}\r\n", p[2]).as_bytes(),
    );
    dst.expect("HGET {c}:1 a", b"$1\r\n1\r\n");
    let nodes = text(&dst.run("CLUSTER NODES"));
    assert!(nodes.contains("7365"), "{nodes}");
}

/// A migration to a target that cannot be reached fails and leaves the source serving the
/// slot with all its data.
#[test]
fn a_failed_migration_leaves_the_slot_where_it_was() {
    let cl = start_cluster();
    let p: Vec<u16> = cl.nodes.iter().map(port).collect();
    let dead = free_port();
    // A topology whose third master's address has nobody listening.
    let mut t = topology(&p);
    t = t.replace(
        &format!("127.0.0.1 {} master", p[2]),
        &format!("127.0.0.1 {dead} master"),
    );
    let mut src = cl.nodes[1].client();
    src.expect_args(&["CLUSTERX", "SETNODES", &t, "5"], b"+OK\r\n");
    src.expect("HSET {c}:1 a 1", b":1\r\n");
    src.expect(&format!("CLUSTERX MIGRATE 7365 {}", IDS[2]), b"+OK\r\n");
    let failed = common::wait_until(Duration::from_secs(30), || {
        cluster_info_field(&mut src, "migrating_state").as_deref() == Some("fail")
    });
    assert!(failed);
    src.expect("HGET {c}:1 a", b"$1\r\n1\r\n");
    src.expect("HSET {c}:2 a 2", b":1\r\n");
    src.expect(
        &format!("CLUSTERX MIGRATE 7365 {}", IDS[1]),
        b"-ERR Can't find the target node id\r\n",
    );
    src.expect(
        &format!("CLUSTERX MIGRATE 0 {}", IDS[2]),
        b"-ERR Can't migrate slot which doesn't belong to me\r\n",
    );
}

/// Failover the way the controller does it: the master of slots 0-5460 dies, and a new
/// topology (the next version) names its replica master of them; the replica stops
/// following, and a cluster client re-routes and finds every key it wrote.
#[test]
fn failover_by_a_new_topology_promotes_the_replica() {
    let mut cl = start_cluster();
    let p: Vec<u16> = cl.nodes.iter().map(port).collect();
    let urls: Vec<String> = p[..3]
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}/"))
        .collect();
    let client = redis::cluster::ClusterClient::builder(urls)
        .retries(10)
        .build()
        .expect("cluster client");
    let mut con = client.get_connection().expect("connect");
    for i in 0..3000 {
        let _: i64 = redis::cmd("HSET")
            .arg(format!("fo:{i}"))
            .arg("v")
            .arg(i)
            .query(&mut con)
            .expect("HSET");
    }
    // Everything the first master acknowledged has reached its replica.
    let mut m0 = cl.nodes[0].client();
    m0.expect("HSET {user1000} f v", b":1\r\n");
    let synced = common::wait_until(Duration::from_secs(30), || {
        m0.run("WAIT 1 1000") == b":1\r\n"
    });
    assert!(synced, "the replica did not catch up");
    drop(m0);
    drop(cl.nodes.remove(0));
    // The new topology: the replica (IDS[3]) serves 0-5460; the dead master is gone.
    let ranges = ["0-5460", "5461-10922", "10923-16383"];
    let mut t = format!("{} 127.0.0.1 {} master - {}\n", IDS[3], p[3], ranges[0]);
    for m in 1..3 {
        t.push_str(&format!(
            "{} 127.0.0.1 {} master - {}\n",
            IDS[m], p[m], ranges[m]
        ));
    }
    for r in 1..3 {
        t.push_str(&format!(
            "{} 127.0.0.1 {} slave {}\n",
            IDS[3 + r],
            p[3 + r],
            IDS[r]
        ));
    }
    for n in &cl.nodes {
        n.client()
            .expect_args(&["CLUSTERX", "SETNODES", &t, "2"], b"+OK\r\n");
    }
    let mut promoted = cl.nodes[2].client();
    let role = String::from_utf8_lossy(&promoted.run("ROLE")).into_owned();
    assert!(role.starts_with("*3\r\n$6\r\nmaster\r\n"), "{role}");
    promoted.expect("HGET {user1000} f", b"$1\r\nv\r\n");
    // A client seeded with live nodes finds the new master of 0-5460 and reads every key
    // back; writes work there. (The redis crate's sync client keeps retrying a dead node
    // it already knew; redis-py re-routes by itself: tests/clients/cluster.)
    let client = redis::cluster::ClusterClient::builder(
        p[1..4]
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}/"))
            .collect::<Vec<_>>(),
    )
    .retries(10)
    .build()
    .expect("cluster client");
    let mut con = client.get_connection().expect("connect after failover");
    for i in 0..3000 {
        let v: String = redis::cmd("HGET")
            .arg(format!("fo:{i}"))
            .arg("v")
            .query(&mut con)
            .expect("HGET after failover");
        assert_eq!(v, i.to_string());
    }
    let _: i64 = redis::cmd("HSET")
        .arg("{user1000}")
        .arg("g")
        .arg("w")
        .query(&mut con)
        .expect("a write on the promoted master");
}

/// A range of slots migrates as one (kvrocks-controller sends ranges).
#[test]
fn a_range_of_slots_migrates() {
    let cl = start_cluster();
    let p: Vec<u16> = cl.nodes.iter().map(port).collect();
    let mut src = cl.nodes[0].client();
    // Keys in slots 0-999 (the first master's), found by trying names.
    let mut moved = Vec::new();
    for i in 0..20_000 {
        let key = format!("r:{i}");
        if let Value::Int(s) = common::decode(&src.cmd(&["CLUSTER", "KEYSLOT", &key])) {
            if s < 1000 {
                src.cmd(&["HSET", &key, "f", &i.to_string()]);
                moved.push(key);
            }
        }
    }
    assert!(moved.len() > 500, "{}", moved.len());
    src.expect(&format!("CLUSTERX MIGRATE 0-999 {}", IDS[1]), b"+OK\r\n");
    let done = common::wait_until(Duration::from_secs(30), || {
        cluster_info_field(&mut src, "migrating_state").as_deref() == Some("success")
    });
    assert!(done);
    assert_eq!(
        cluster_info_field(&mut src, "migrating_slot(s)").as_deref(),
        Some("0-999")
    );
    let mut dst = cl.nodes[1].client();
    for key in &moved {
        let slot = match common::decode(&src.cmd(&["CLUSTER", "KEYSLOT", key])) {
            Value::Int(s) => s,
            other => panic!("{other:?}"),
        };
        src.expect(
            &format!("HGET {key} f"),
            format!("-MOVED {slot} 127.0.0.1:{}\r\n", p[1]).as_bytes(),
        );
        assert!(dst.cmd(&["HGET", key, "f"]).starts_with(b"$"));
    }
    src.expect("CLUSTERX MIGRATE 999-5 x", b"-ERR Invalid slot range\r\n");
}
