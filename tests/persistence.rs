//! RDB persistence end to end, over sockets: start-up loading of every Redis fixture, refusal
//! of damaged or unsupported files (the `hashd` binary exits 1 and leaves the file alone),
//! SAVE / BGSAVE round trips, BGSAVE's point in time under concurrent transactions, a
//! SIGKILL during BGSAVE, the final save on SIGTERM / SHUTDOWN, FLUSHALL's save, and
//! files exchanged both ways with a real Redis 7.4.1.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    decode, encode_command, fresh_dir, reference_redis, show, Client, RedisServer, TestServer,
    Value,
};

const HASHD: &str = env!("CARGO_BIN_EXE_hashd");
/// Databases both hashd and Redis have by default.
const DBS: usize = 16;
/// 2100-01-01T00:00:00Z: deadlines that stay in the future.
const FAR_MS: u64 = 4_102_444_800_000;
/// How long a server may take to load a snapshot or finish a background save.
const SLOW: Duration = Duration::from_secs(30);

/// field → (value, field deadline)
type Fields = BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>;
/// (db, key) → (fields, key deadline)
type Dataset = BTreeMap<(usize, Vec<u8>), (Fields, Option<u64>)>;

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/redis")
}

fn fixture_rdbs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["rdb", "rdb-7.0"] {
        for e in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rdb") {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 12, "fixtures missing: {v:?}");
    v
}

/// JSON strings hold bytes as latin-1 code points.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
        .collect()
}

/// The hashes of a fixture's JSON (non-hash keys left out).
fn json_dataset(path: &Path) -> Dataset {
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut d = Dataset::new();
    for (db, keys) in j["dbs"].as_object().unwrap() {
        for (key, v) in keys.as_object().unwrap() {
            if v.get("type").is_some() {
                continue;
            }
            let ttl = v["field_expire_ms"].as_object().unwrap();
            let fields = v["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(f, val)| {
                    let t = ttl.get(f).map(|t| t.as_u64().unwrap());
                    (latin1(f), (latin1(val.as_str().unwrap()), t))
                })
                .collect();
            d.insert(
                (db.parse().unwrap(), latin1(key)),
                (fields, v["key_expire_ms"].as_u64()),
            );
        }
    }
    d
}

// ---------------------------------------------------------------------------------------------
// RESP helpers (the harness client talks to hashd and to redis-server alike).

fn call<A: AsRef<[u8]>>(c: &mut Client, args: &[A]) -> Value {
    decode(&c.cmd(args))
}

#[track_caller]
fn int(v: Value) -> i64 {
    match v {
        Value::Int(i) => i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[track_caller]
fn ok<A: AsRef<[u8]>>(c: &mut Client, args: &[A]) {
    let r = c.cmd(args);
    assert!(r == b"+OK\r\n", "expected +OK, got {}", show(&r));
}

fn select(c: &mut Client, db: usize) {
    ok(c, &["SELECT".to_string(), db.to_string()]);
}

/// Sends commands in batches and returns their replies, in order. Each reply must be small
/// (the server's replies are not read while a batch is written).
fn pipeline(c: &mut Client, cmds: &[Vec<Vec<u8>>]) -> Vec<Value> {
    let mut out = Vec::with_capacity(cmds.len());
    for batch in cmds.chunks(64) {
        let mut buf = Vec::new();
        for cmd in batch {
            buf.extend_from_slice(&encode_command(cmd));
        }
        c.send(&buf);
        for _ in batch {
            out.push(decode(&c.read_reply()));
        }
    }
    out
}

/// `INFO persistence` as a map.
fn info(c: &mut Client) -> BTreeMap<String, String> {
    let v = call(c, &["INFO", "persistence"]);
    let text = String::from_utf8(v.as_bytes().expect("INFO is a bulk string").to_vec()).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn info_u64(c: &mut Client, name: &str) -> u64 {
    let m = info(c);
    m.get(name)
        .unwrap_or_else(|| panic!("INFO has no {name}: {m:?}"))
        .parse()
        .unwrap()
}

/// Polls `INFO persistence` until the start-up load is over.
#[track_caller]
fn wait_loaded(c: &mut Client) {
    let deadline = Instant::now() + SLOW;
    loop {
        if info(c).get("loading").map(String::as_str) == Some("0") {
            return;
        }
        assert!(Instant::now() < deadline, "still loading after {SLOW:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts a BGSAVE and waits until it ended with success.
#[track_caller]
fn bgsave_and_wait(c: &mut Client) {
    let saves = info_u64(c, "rdb_saves");
    let r = c.cmd(&["BGSAVE"]);
    assert!(
        r == b"+Background saving started\r\n",
        "BGSAVE: {}",
        show(&r)
    );
    wait_bgsave(c, saves + 1);
}

/// Waits until no BGSAVE runs and `rdb_saves` reached `saves`; the last one must be ok.
#[track_caller]
fn wait_bgsave(c: &mut Client, saves: u64) {
    let deadline = Instant::now() + SLOW;
    loop {
        let m = info(c);
        let done = m["rdb_bgsave_in_progress"] == "0";
        if done && m["rdb_saves"].parse::<u64>().unwrap() >= saves {
            assert_eq!(m["rdb_last_bgsave_status"], "ok", "{m:?}");
            return;
        }
        if done {
            assert_eq!(m["rdb_last_bgsave_status"], "ok", "BGSAVE failed: {m:?}");
        }
        assert!(Instant::now() < deadline, "BGSAVE still running: {m:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn dbsizes(c: &mut Client) -> Vec<i64> {
    let sizes = (0..DBS)
        .map(|db| {
            select(c, db);
            int(call(c, &["DBSIZE"]))
        })
        .collect();
    select(c, 0);
    sizes
}

fn bulk(v: &Value) -> Vec<u8> {
    match v {
        Value::Bulk(b) => b.clone(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// Field → value of one hash: HGETALL, or HSCAN for big ones (re-parsing one huge reply per
/// socket read would be quadratic in the harness client).
fn hash_values(c: &mut Client, key: &[u8]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let len = int(call(c, &[b"HLEN".as_slice(), key])) as usize;
    let mut out = BTreeMap::new();
    if len <= 5_000 {
        let v = call(c, &[b"HGETALL".as_slice(), key]);
        let items = v.items().expect("HGETALL array");
        for p in items.chunks(2) {
            assert!(
                out.insert(bulk(&p[0]), bulk(&p[1])).is_none(),
                "HGETALL repeats a field"
            );
        }
    } else {
        let mut cursor = b"0".to_vec();
        loop {
            let v = call(c, &[b"HSCAN".as_slice(), key, &cursor, b"COUNT", b"2000"]);
            let items = v.items().expect("HSCAN array");
            cursor = bulk(&items[0]);
            for p in items[1].items().expect("HSCAN page").chunks(2) {
                out.insert(bulk(&p[0]), bulk(&p[1]));
            }
            if cursor == b"0" {
                break;
            }
        }
    }
    assert_eq!(out.len(), len, "HLEN of {}", show(key));
    out
}

/// Everything a server holds: every hash of every database with its field and key deadlines
/// (HGETALL, HPEXPIRETIME, PEXPIRETIME). Checks DBSIZE against KEYS.
fn fetch(c: &mut Client) -> Dataset {
    let mut d = Dataset::new();
    for db in 0..DBS {
        select(c, db);
        let n = int(call(c, &["DBSIZE"]));
        if n == 0 {
            continue;
        }
        let keys: Vec<Vec<u8>> = call(c, &["KEYS", "*"])
            .items()
            .expect("KEYS array")
            .iter()
            .map(bulk)
            .collect();
        assert_eq!(keys.len() as i64, n, "DBSIZE vs KEYS in db {db}");
        for key in keys {
            let values = hash_values(c, &key);
            let names: Vec<&Vec<u8>> = values.keys().collect();
            let mut cmds = Vec::new();
            for chunk in names.chunks(500) {
                let mut cmd: Vec<Vec<u8>> = vec![
                    b"HPEXPIRETIME".to_vec(),
                    key.clone(),
                    b"FIELDS".to_vec(),
                    chunk.len().to_string().into_bytes(),
                ];
                cmd.extend(chunk.iter().map(|f| f.to_vec()));
                cmds.push(cmd);
            }
            let mut ttls = Vec::new();
            for r in pipeline(c, &cmds) {
                ttls.extend(r.items().expect("HPEXPIRETIME array").to_vec());
            }
            assert_eq!(ttls.len(), values.len());
            let fields: Fields = values
                .into_iter()
                .zip(ttls)
                .map(|((f, v), t)| {
                    let t = int(t);
                    assert!(t >= -1, "HPEXPIRETIME {t} for an existing field");
                    (f, (v, (t >= 0).then_some(t as u64)))
                })
                .collect();
            let t = int(call(c, &[b"PEXPIRETIME".as_slice(), &key]));
            assert!(t >= -1, "PEXPIRETIME {t} for an existing key");
            d.insert((db, key), (fields, (t >= 0).then_some(t as u64)));
        }
    }
    select(c, 0);
    d
}

/// Writes a dataset with HSET, HPEXPIREAT and PEXPIREAT (pipelined).
fn write_dataset(c: &mut Client, d: &Dataset) {
    for db in 0..DBS {
        let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
        for ((_, key), (fields, key_ttl)) in d.range((db, Vec::new())..(db + 1, Vec::new())) {
            let all: Vec<_> = fields.iter().collect();
            for chunk in all.chunks(500) {
                let mut cmd = vec![b"HSET".to_vec(), key.clone()];
                for (f, (v, _)) in chunk {
                    cmd.push(f.to_vec());
                    cmd.push(v.clone());
                }
                cmds.push(cmd);
            }
            let mut by_deadline: BTreeMap<u64, Vec<&Vec<u8>>> = BTreeMap::new();
            for (f, (_, t)) in fields {
                if let Some(t) = t {
                    by_deadline.entry(*t).or_default().push(f);
                }
            }
            for (t, names) in by_deadline {
                for chunk in names.chunks(500) {
                    let mut cmd = vec![
                        b"HPEXPIREAT".to_vec(),
                        key.clone(),
                        t.to_string().into_bytes(),
                        b"FIELDS".to_vec(),
                        chunk.len().to_string().into_bytes(),
                    ];
                    cmd.extend(chunk.iter().map(|f| f.to_vec()));
                    cmds.push(cmd);
                }
            }
            if let Some(t) = key_ttl {
                cmds.push(vec![
                    b"PEXPIREAT".to_vec(),
                    key.clone(),
                    t.to_string().into_bytes(),
                ]);
            }
        }
        if cmds.is_empty() {
            continue;
        }
        select(c, db);
        for r in pipeline(c, &cmds) {
            match r {
                Value::Int(_) => {}
                Value::Array(items) if items.iter().all(|i| *i == Value::Int(1)) => {}
                other => panic!("writing the dataset: {other:?}"),
            }
        }
    }
    select(c, 0);
}

/// A hash of `n` fields `<prefix><i>`, a TTL on every `ttl_every`-th field (0: none).
fn big_hash(prefix: &str, n: usize, ttl_every: usize, value_len: usize) -> Fields {
    (0..n)
        .map(|i| {
            let ttl = (ttl_every > 0 && i % ttl_every == 0).then_some(FAR_MS + i as u64);
            let mut v = format!("v{i}:").into_bytes();
            v.resize(value_len.max(v.len()), b'x');
            (format!("{prefix}{i}").into_bytes(), (v, ttl))
        })
        .collect()
}

/// Compact and table hashes, binary names, empty values, key and field TTLs, three dbs.
fn rich_dataset(table_fields: usize) -> Dataset {
    let mut d = Dataset::new();
    let plain: Fields = [(b"f".to_vec(), (b"v".to_vec(), None))].into();
    d.insert((0, b"plain".to_vec()), (plain.clone(), None));
    d.insert((0, b"with-key-ttl".to_vec()), (plain.clone(), Some(FAR_MS)));
    let binary: Fields = [
        (b"\x00\xff\r\n".to_vec(), (b"\x00bin\xfe".to_vec(), None)),
        (b"".to_vec(), (b"empty field name".to_vec(), None)),
        (b"empty value".to_vec(), (b"".to_vec(), Some(FAR_MS - 7))),
        (b"12345".to_vec(), (b"-9223372036854775808".to_vec(), None)),
        ("caf\u{e9}".as_bytes().to_vec(), (vec![0x80; 300], None)),
    ]
    .into();
    d.insert((0, b"bin\x00key\xff\r\n".to_vec()), (binary, None));
    d.insert((0, b"compact-ttl".to_vec()), (big_hash("c", 4, 2, 8), None));
    d.insert(
        (0, b"table".to_vec()),
        (big_hash("t", table_fields, 3, 20), Some(FAR_MS + 1)),
    );
    d.insert((3, b"in3".to_vec()), (big_hash("x", 3, 0, 1), None));
    d.insert((3, b"plain".to_vec()), (plain, Some(FAR_MS + 2)));
    d.insert(
        (15, b"last-db-table".to_vec()),
        (big_hash("l", 300, 1, 64), None),
    );
    d
}

/// A second server loading `dir/dump.rdb` (copied from `src`, or `dir` itself).
fn load_copy(src: &Path, tag: &str) -> TestServer {
    let dir = fresh_dir(tag);
    std::fs::copy(src, dir.join("dump.rdb")).unwrap();
    serve_dir(&dir)
}

fn serve_dir(dir: &Path) -> TestServer {
    let d = dir.display().to_string();
    TestServer::builder().config(|c| c.dir = d).start()
}

// ---------------------------------------------------------------------------------------------
// The binary.

/// A running `hashd` process with its combined stdout/stderr log.
struct Proc {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// A spawned binary: the child, its log so far, the threads reading its pipes, its lines.
struct Spawned {
    child: Child,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    lines: mpsc::Receiver<String>,
}

fn spawn(dir: &Path, extra: &[&str]) -> Spawned {
    let mut child = Command::new(HASHD)
        .args(["--port", "0", "--bind", "127.0.0.1", "--loglevel", "notice"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("HASHD_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
    let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
    for pipe in [out, err] {
        let (log, tx) = (Arc::clone(&log), tx.clone());
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
                drop(l);
                let _ = tx.send(line);
            }
        }));
    }
    Spawned {
        child,
        log,
        readers,
        lines: rx,
    }
}

impl Proc {
    /// Starts the binary and waits for its `listening=` line.
    #[track_caller]
    fn start(dir: &Path, extra: &[&str]) -> Proc {
        let Spawned {
            mut child,
            log,
            readers,
            lines: rx,
        } = spawn(dir, extra);
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening=127.0.0.1:").nth(1) {
                        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        return Proc {
                            child,
                            port: port.parse().unwrap(),
                            log,
                            readers,
                        };
                    }
                }
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "hashd did not report its address; log:\n{}",
            log.lock().unwrap()
        );
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn client(&self) -> Client {
        Client::connect(self.addr())
    }

    /// A client once loading is over.
    fn ready_client(&self) -> Client {
        let mut c = self.client();
        wait_loaded(&mut c);
        c
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill {sig}");
    }

    /// Waits for the process to exit; returns its status and its whole log.
    #[track_caller]
    fn wait_exit(mut self) -> (ExitStatus, String) {
        let status = wait_child_exit(&mut self.child, &self.log);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[track_caller]
fn wait_child_exit(child: &mut Child, log: &Mutex<String>) -> ExitStatus {
    let deadline = Instant::now() + SLOW;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hashd did not exit; log:\n{}", log.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the binary until it exits by itself (a start-up failure); status and log.
#[track_caller]
fn run_to_exit(dir: &Path, extra: &[&str]) -> (ExitStatus, String) {
    let Spawned {
        mut child,
        log,
        readers,
        ..
    } = spawn(dir, extra);
    let status = wait_child_exit(&mut child, &log);
    for r in readers {
        let _ = r.join();
    }
    let log = log.lock().unwrap().clone();
    (status, log)
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("temp-"))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// 1. Start-up load of every fixture.

#[test]
fn every_fixture_loads_at_startup_with_its_json_dataset() {
    for path in fixture_rdbs() {
        if path.ends_with("non-hash-types.rdb") {
            continue;
        }
        let server = load_copy(&path, "fixture");
        let mut c = server.client();
        wait_loaded(&mut c);
        let expected = json_dataset(&path.with_extension("json"));
        let got = fetch(&mut c);
        assert_eq!(got, expected, "{path:?}");
        let mut sizes = vec![0i64; DBS];
        for (db, _) in expected.keys() {
            sizes[*db] += 1;
        }
        assert_eq!(dbsizes(&mut c), sizes, "DBSIZE per db, {path:?}");
        let m = info(&mut c);
        assert_eq!(
            m["rdb_last_load_keys_loaded"],
            expected.len().to_string(),
            "{path:?}"
        );
        if path.ends_with("rdb/expired-at-load.rdb") {
            // allgone had only expired fields; h.gone, t.f1, t.f2 are dropped from their hashes.
            assert_eq!(m["rdb_last_load_keys_expired"], "1", "{m:?}");
            select(&mut c, 0);
            assert_eq!(int(call(&mut c, &["EXISTS", "allgone"])), 0);
            assert_eq!(int(call(&mut c, &["HEXISTS", "h", "gone"])), 0);
            assert_eq!(int(call(&mut c, &["HEXISTS", "t", "f1"])), 0);
        } else {
            assert_eq!(m["rdb_last_load_keys_expired"], "0", "{path:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Files hashd must refuse, and must not overwrite.

#[test]
fn unsupported_types_stop_startup_unless_skipped() {
    let path = fixtures().join("rdb/non-hash-types.rdb");
    let original = std::fs::read(&path).unwrap();
    let dir = fresh_dir("nonhash");
    let dump = dir.join("dump.rdb");
    std::fs::write(&dump, &original).unwrap();

    let (status, log) = run_to_exit(&dir, &[]);
    assert_eq!(status.code(), Some(1), "log:\n{log}");
    assert!(
        log.contains("\"str\"") && log.contains("string"),
        "the error should name the key and its type:\n{log}"
    );
    assert!(log.contains(&dump.display().to_string()), "{log}");
    assert_eq!(std::fs::read(&dump).unwrap(), original, "file changed");

    let p = Proc::start(&dir, &["--rdb-skip-unsupported-types", "yes"]);
    let mut c = p.ready_client();
    assert_eq!(fetch(&mut c), json_dataset(&path.with_extension("json")));
    assert_eq!(dbsizes(&mut c)[0], 1);
    drop(p);
    assert_eq!(std::fs::read(&dump).unwrap(), original, "file changed");
}

#[test]
fn damaged_files_stop_startup_and_stay_untouched() {
    let original = std::fs::read(fixtures().join("rdb/hashtable.rdb")).unwrap();
    let mut truncated = original.clone();
    truncated.truncate(original.len() / 2);
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x20;
    for (what, bytes) in [("truncated", truncated), ("flipped", flipped)] {
        let dir = fresh_dir(what);
        let dump = dir.join("dump.rdb");
        std::fs::write(&dump, &bytes).unwrap();
        // Default save points: a server that went on would save over the file at exit.
        let (status, log) = run_to_exit(&dir, &[]);
        assert_eq!(status.code(), Some(1), "{what}: log:\n{log}");
        assert!(
            log.contains(&dump.display().to_string()) && log.contains("cannot load"),
            "{what}: the error should name the file:\n{log}"
        );
        assert_eq!(std::fs::read(&dump).unwrap(), bytes, "{what}: file changed");
        assert_eq!(leftovers(&dir), Vec::<String>::new(), "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. SAVE / BGSAVE round trips.

#[test]
fn save_and_bgsave_round_trip_everything() {
    let server = TestServer::start();
    let mut c = server.client();
    wait_loaded(&mut c);
    let lastsave0 = int(call(&mut c, &["LASTSAVE"]));
    ok(&mut c, &["CONFIG", "SET", "hash-max-listpack-entries", "4"]);
    let data = rich_dataset(2_000);
    write_dataset(&mut c, &data);
    assert_eq!(fetch(&mut c), data, "what was written");
    c.expect("OBJECT ENCODING table", b"$9\r\nhashtable\r\n");
    c.expect("OBJECT ENCODING compact-ttl", b"$10\r\nlistpackex\r\n");
    c.expect("OBJECT ENCODING plain", b"$8\r\nlistpack\r\n");
    assert!(info_u64(&mut c, "rdb_changes_since_last_save") > 0);

    // SAVE.
    c.expect("SAVE", b"+OK\r\n");
    assert_eq!(info_u64(&mut c, "rdb_changes_since_last_save"), 0);
    assert_eq!(info_u64(&mut c, "rdb_saves"), 1);
    let dump = server.ctx.config.rdb_path();
    {
        let copy = load_copy(&dump, "save-copy");
        let mut c2 = copy.client();
        wait_loaded(&mut c2);
        assert_eq!(fetch(&mut c2), data, "after SAVE");
    }

    // BGSAVE, after more changes, with a second server on the same directory.
    c.expect("HSET plain g w", b":1\r\n");
    c.expect("HPEXPIREAT plain 4102444800000 FIELDS 1 g", b"*1\r\n:1\r\n");
    assert_eq!(info_u64(&mut c, "rdb_changes_since_last_save"), 2);
    bgsave_and_wait(&mut c);
    assert_eq!(info_u64(&mut c, "rdb_changes_since_last_save"), 0);
    let now = fetch(&mut c);
    assert_ne!(now, data);
    {
        let second = serve_dir(dump.parent().unwrap());
        let mut c2 = second.client();
        wait_loaded(&mut c2);
        assert_eq!(fetch(&mut c2), now, "after BGSAVE");
        assert_eq!(
            info_u64(&mut c2, "rdb_last_load_keys_loaded") as usize,
            now.len()
        );
    }

    // BGSAVE SCHEDULE with nothing running starts one at once.
    let saves = info_u64(&mut c, "rdb_saves");
    c.expect("BGSAVE SCHEDULE", b"+Background saving started\r\n");
    wait_bgsave(&mut c, saves + 1);
    c.expect("BGSAVE NOW", b"-ERR syntax error\r\n");

    // A BGSAVE while one runs: with a bigger dataset the child takes long enough for the
    // next command to find it running (retried a few times; reported if never hit).
    let big = big_hash("b", 100_000, 10, 200);
    let big_set: Dataset = [((1, b"big".to_vec()), (big, None))].into();
    write_dataset(&mut c, &big_set);
    let mut hit = false;
    for _ in 0..5 {
        let saves = info_u64(&mut c, "rdb_saves");
        c.send(&[encode_command(&["BGSAVE"]), encode_command(&["BGSAVE"])].concat());
        let first = c.read_reply();
        assert_eq!(first, b"+Background saving started\r\n", "{}", show(&first));
        let second = c.read_reply();
        if second == b"-ERR Background save already in progress\r\n" {
            hit = true;
            c.expect("SAVE", b"-ERR Background save already in progress\r\n");
            // SCHEDULE while one runs: scheduled, and it runs after the current one.
            c.expect("BGSAVE SCHEDULE", b"+Background saving scheduled\r\n");
            wait_bgsave(&mut c, saves + 2);
            break;
        }
        assert_eq!(
            second,
            b"+Background saving started\r\n",
            "{}",
            show(&second)
        );
        wait_bgsave(&mut c, saves + 2);
    }
    if !hit {
        eprintln!("SKIP: never saw a BGSAVE still running (the child was always faster)");
    }

    // LASTSAVE moves forward (it has a one-second resolution).
    let moved = common::wait_until(Duration::from_secs(3), || {
        assert_eq!(c.cmd(&["SAVE"]), b"+OK\r\n");
        int(call(&mut c, &["LASTSAVE"])) > lastsave0
    });
    assert!(moved, "LASTSAVE stayed at {lastsave0}");
    let lastsave1 = int(call(&mut c, &["LASTSAVE"]));
    assert_eq!(
        info_u64(&mut c, "rdb_last_save_time") as i64,
        lastsave1,
        "INFO and LASTSAVE"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A BGSAVE is one point in time, whatever transactions run meanwhile.

#[test]
fn bgsave_is_a_point_in_time_under_concurrent_transactions() {
    const PAIRS: usize = 8;
    let server = TestServer::start();
    let mut c = server.client();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    // Pairs whose two keys live in different shards (when there is more than one).
    let ks = &server.ctx.keyspace;
    let pairs: Arc<Vec<(String, String)>> = Arc::new(
        (0..)
            .map(|i: usize| (format!("pit:a{{x{i}}}"), format!("pit:b{{y{i}}}")))
            .filter(|(a, b)| {
                ks.shards_per_db() == 1 || ks.shard_of(a.as_bytes()) != ks.shard_of(b.as_bytes())
            })
            .take(PAIRS)
            .collect(),
    );
    let pair = {
        let pairs = Arc::clone(&pairs);
        move |i: usize| pairs[i].clone()
    };
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            let pair = pair.clone();
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let (a, b) = pair(i % PAIRS);
                    let req = [
                        encode_command(&["MULTI"]),
                        encode_command(&["HINCRBY", &a, "n", "1"]),
                        encode_command(&["HINCRBY", &b, "n", "1"]),
                        encode_command(&["EXEC"]),
                    ]
                    .concat();
                    c.send(&req);
                    assert_eq!(c.read_reply(), b"+OK\r\n");
                    assert_eq!(c.read_reply(), b"+QUEUED\r\n");
                    assert_eq!(c.read_reply(), b"+QUEUED\r\n");
                    let exec = decode(&c.read_reply());
                    let items = exec.items().expect("EXEC array").to_vec();
                    assert_eq!(items.len(), 2);
                    assert_eq!(items[0], items[1], "a pair diverged live: {items:?}");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();

    let dump = server.ctx.config.rdb_path();
    let mut copies = Vec::new();
    for round in 0..5 {
        let before = done.load(Ordering::Relaxed);
        assert!(
            common::wait_until(Duration::from_secs(10), || done.load(Ordering::Relaxed)
                >= before + 500),
            "the transactions stalled"
        );
        bgsave_and_wait(&mut c);
        let copy = fresh_dir("pit");
        std::fs::copy(&dump, copy.join("dump.rdb")).unwrap();
        copies.push((round, copy));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    let mut totals = Vec::new();
    for (round, dir) in copies {
        let loaded = serve_dir(&dir);
        let mut c2 = loaded.client();
        wait_loaded(&mut c2);
        let mut total = 0;
        for i in 0..PAIRS {
            let (a, b) = pair(i);
            let va = call(&mut c2, &["HGET", &a, "n"]);
            let vb = call(&mut c2, &["HGET", &b, "n"]);
            assert_eq!(va, vb, "snapshot {round}: {a} and {b} differ");
            if let Value::Bulk(n) = va {
                total += String::from_utf8(n).unwrap().parse::<u64>().unwrap();
            }
        }
        totals.push(total);
    }
    assert!(
        totals.windows(2).all(|w| w[0] < w[1]) && totals[0] > 0,
        "each snapshot should hold more transactions than the one before: {totals:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A SIGKILL during BGSAVE keeps the previous snapshot.

#[test]
fn sigkill_during_bgsave_keeps_the_previous_snapshot() {
    let dir = fresh_dir("sigkill");
    let p = Proc::start(&dir, &["--save", ""]);
    let mut c = p.ready_client();
    c.expect("HSET marker gen 1", b":1\r\n");
    let first: Dataset = rich_dataset(500);
    write_dataset(&mut c, &first);
    c.expect("SAVE", b"+OK\r\n");
    let saved = std::fs::read(dir.join("dump.rdb")).unwrap();
    let sizes = dbsizes(&mut c);

    // Enough that the child needs a while: 300k fields of 100 bytes.
    let mut cmds = Vec::new();
    for k in 0..3 {
        for chunk in 0..200 {
            let mut cmd = vec![b"HSET".to_vec(), format!("bulk{k}").into_bytes()];
            for i in 0..500 {
                cmd.push(format!("f{chunk}:{i}").into_bytes());
                cmd.push(format!("{:0>100}", chunk * 500 + i).into_bytes());
            }
            cmds.push(cmd);
        }
    }
    pipeline(&mut c, &cmds);
    c.expect("HSET marker gen 2", b":0\r\n");
    c.expect("BGSAVE", b"+Background saving started\r\n");
    let mut p = p;
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    drop(c);
    let after_kill = leftovers(&dir);

    // The BGSAVE child dies with its parent (PR_SET_PDEATHSIG) before it can rename its
    // temporary file, so the snapshot stays the first one.
    let p2 = Proc::start(&dir, &["--save", ""]);
    let mut c = p2.ready_client();
    c.expect("HGET marker gen", b"$1\r\n1\r\n");
    assert_eq!(dbsizes(&mut c), sizes);
    let mut expected = first;
    expected.insert(
        (0, b"marker".to_vec()),
        ([(b"gen".to_vec(), (b"1".to_vec(), None))].into(), None),
    );
    assert_eq!(fetch(&mut c), expected);
    assert_eq!(std::fs::read(dir.join("dump.rdb")).unwrap(), saved);
    eprintln!(
        "NOTE: temp files after SIGKILL mid-BGSAVE: {after_kill:?}; after the restart: {:?}",
        leftovers(&dir)
    );
}

// ---------------------------------------------------------------------------------------------
// 6. The final save: SIGTERM, SHUTDOWN NOSAVE, SHUTDOWN SAVE.

#[test]
fn sigterm_with_save_points_saves_a_final_snapshot() {
    let dir = fresh_dir("sigterm");
    let data = rich_dataset(200);
    let p = Proc::start(&dir, &["--save", "3600 1"]);
    let mut c = p.ready_client();
    c.expect("CONFIG GET save", b"*2\r\n$4\r\nsave\r\n$6\r\n3600 1\r\n");
    write_dataset(&mut c, &data);
    assert!(!dir.join("dump.rdb").exists());
    p.signal("-TERM");
    let (status, log) = p.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(
        dir.join("dump.rdb").exists(),
        "no final snapshot; log:\n{log}"
    );
    assert_eq!(leftovers(&dir), Vec::<String>::new());

    let p = Proc::start(&dir, &["--save", ""]);
    let mut c = p.ready_client();
    assert_eq!(fetch(&mut c), data);
    // Without save points, SIGTERM writes nothing.
    c.expect("HSET extra f v", b":1\r\n");
    let before = std::fs::read(dir.join("dump.rdb")).unwrap();
    p.signal("-TERM");
    let (status, log) = p.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert_eq!(std::fs::read(dir.join("dump.rdb")).unwrap(), before);
}

#[test]
fn shutdown_nosave_keeps_the_older_snapshot_and_shutdown_save_saves() {
    let dir = fresh_dir("shutdown");
    let p = Proc::start(&dir, &["--save", "3600 1"]);
    let mut c = p.ready_client();
    c.expect("HSET h v 1", b":1\r\n");
    c.expect("SAVE", b"+OK\r\n");
    let v1 = std::fs::read(dir.join("dump.rdb")).unwrap();
    c.expect("HSET h v 2", b":0\r\n");
    c.expect("HSET other f v", b":1\r\n");
    c.send(&encode_command(&["SHUTDOWN", "NOSAVE"]));
    c.expect_closed_silently();
    let (status, log) = p.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert_eq!(std::fs::read(dir.join("dump.rdb")).unwrap(), v1);

    let p = Proc::start(&dir, &["--save", ""]);
    let mut c = p.ready_client();
    c.expect("HGET h v", b"$1\r\n1\r\n");
    c.expect("EXISTS other", b":0\r\n");
    c.expect("HSET h v 3", b":0\r\n");
    c.send(&encode_command(&["SHUTDOWN", "SAVE"]));
    c.expect_closed_silently();
    let (status, log) = p.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert_ne!(std::fs::read(dir.join("dump.rdb")).unwrap(), v1);

    let p = Proc::start(&dir, &["--save", ""]);
    let mut c = p.ready_client();
    c.expect("HGET h v", b"$1\r\n3\r\n");
    c.expect("DBSIZE", b":1\r\n");
}

// ---------------------------------------------------------------------------------------------
// 7. FLUSHALL with save points saves the empty dataset at once.

#[test]
fn flushall_with_save_points_saves_the_empty_dataset() {
    let server = TestServer::start();
    let mut c = server.client();
    let dump = server.ctx.config.rdb_path();
    write_dataset(&mut c, &rich_dataset(50));
    c.expect("SAVE", b"+OK\r\n");

    // Without save points FLUSHALL does not touch the file.
    let full = std::fs::read(&dump).unwrap();
    c.expect("FLUSHALL", b"+OK\r\n");
    assert_eq!(std::fs::read(&dump).unwrap(), full);
    write_dataset(&mut c, &rich_dataset(50));

    ok(&mut c, &["CONFIG", "SET", "save", "3600 1"]);
    c.expect("SAVE", b"+OK\r\n");
    assert_eq!(info_u64(&mut c, "rdb_changes_since_last_save"), 0);
    c.expect("FLUSHALL", b"+OK\r\n");
    assert_eq!(info_u64(&mut c, "rdb_changes_since_last_save"), 1);
    assert_ne!(std::fs::read(&dump).unwrap(), full);
    let copy = load_copy(&dump, "flushall");
    let mut c2 = copy.client();
    wait_loaded(&mut c2);
    assert_eq!(dbsizes(&mut c2), vec![0; DBS]);
    // The save point (1 change in an hour) does not fire for an hour; nothing else runs.
    c.expect("DBSIZE", b":0\r\n");
}

// ---------------------------------------------------------------------------------------------
// 8. Against a real Redis 7.4.1.

/// redis-server loading `dir/dbfilename` if present, and a client once it has loaded.
fn start_redis(bin: &Path, dir: &Path, dbfilename: &str) -> (RedisServer, Client) {
    let server = RedisServer::start(
        bin,
        dir,
        &["--appendonly", "no", "--dbfilename", dbfilename],
    );
    let c = Client::connect(server.addr);
    (server, c)
}

#[track_caller]
fn redis_check_rdb(bin: &Path, file: &Path) {
    let check = Command::new(bin.join("redis-check-rdb"))
        .arg(file)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && out.contains("RDB looks OK"),
        "redis-check-rdb {file:?}:\n{out}{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn real_redis_loads_what_hashd_saves_and_back() {
    let Some(bin) = reference_redis() else {
        return;
    };
    // (a) hashd → Redis.
    let server = TestServer::start();
    let mut c = server.client();
    let data = rich_dataset(2_000);
    write_dataset(&mut c, &data);
    c.expect("SAVE", b"+OK\r\n");
    let ours = fetch(&mut c);
    assert_eq!(ours, data);
    let dump = server.ctx.config.rdb_path();
    let rdir = fresh_dir("redis-a");
    std::fs::copy(&dump, rdir.join("from-hashd.rdb")).unwrap();
    redis_check_rdb(&bin, &rdir.join("from-hashd.rdb"));
    let sizes = dbsizes(&mut c);
    {
        let (_redis, mut r) = start_redis(&bin, &rdir, "from-hashd.rdb");
        assert_eq!(fetch(&mut r), ours, "Redis after loading hashd's file");
        assert_eq!(dbsizes(&mut r), sizes);
    }

    // (b) Redis → hashd: written with commands over Redis's socket, relative TTLs too.
    let bdir = fresh_dir("redis-b");
    let theirs = {
        let (_redis, mut r) = start_redis(&bin, &bdir, "dump.rdb");
        write_dataset(&mut r, &rich_dataset(1_500));
        r.expect("SELECT 7", b"+OK\r\n");
        r.expect("HSET rel a 1 b 2 c 3", b":3\r\n");
        r.expect("HPEXPIRE rel 3600000 FIELDS 2 a b", b"*2\r\n:1\r\n:1\r\n");
        r.expect("PEXPIRE rel 7200000", b":1\r\n");
        r.expect("SELECT 0", b"+OK\r\n");
        r.expect("SAVE", b"+OK\r\n");
        fetch(&mut r)
    };
    assert!(theirs.contains_key(&(7, b"rel".to_vec())));
    redis_check_rdb(&bin, &bdir.join("dump.rdb"));
    let loaded = serve_dir(&bdir);
    let mut h = loaded.client();
    wait_loaded(&mut h);
    assert_eq!(fetch(&mut h), theirs, "hashd after loading Redis's file");
    drop(h);
    drop(loaded);

    // (c) A 1M-field hash with field TTLs, hashd → Redis (about 12 s in a debug build).
    let server = TestServer::start();
    let mut c = server.client();
    let big: Dataset = [(
        (0, b"huge".to_vec()),
        (big_hash("f", 1_000_000, 7, 10), Some(FAR_MS)),
    )]
    .into();
    write_dataset(&mut c, &big);
    c.expect("SAVE", b"+OK\r\n");
    let dump = server.ctx.config.rdb_path();
    let cdir = fresh_dir("redis-c");
    std::fs::copy(&dump, cdir.join("big.rdb")).unwrap();
    redis_check_rdb(&bin, &cdir.join("big.rdb"));
    let (_redis, mut r) = start_redis(&bin, &cdir, "big.rdb");
    assert_eq!(fetch(&mut r), big, "Redis after loading a 1M-field hash");
}
