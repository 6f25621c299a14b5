//! Configuration that is either done or refused (issue 14 item 4): settings hashd does not
//! implement stop it at start-up with an error naming them (unless given the value that
//! describes what hashd does), on the command line and in a redis.conf; and the ones that
//! used to be accepted and ignored now work — protected mode (with a client from a
//! non-loopback address), `timeout`, `pidfile`, `logfile`, `stop-writes-on-bgsave-error`,
//! `enable-debug-command`.

#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fresh_dir, TestServer};

const HASHD: &str = env!("CARGO_BIN_EXE_hashd");

/// Runs the binary with `args` expecting it to refuse to start: returns its stderr.
fn refused(args: &[&str]) -> String {
    let dir = fresh_dir("refused");
    let out = Command::new(HASHD)
        .args(["--port", "0", "--save", ""])
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run hashd");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should be refused; stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn settings_that_would_not_be_done_are_refused_at_start_up() {
    let e = refused(&["--maxmemory-clients", "256mb"]);
    assert!(
        e.contains("'maxmemory-clients 256mb' is not supported"),
        "{e}"
    );
    assert!(e.contains("hashd accepts only '0'"), "{e}");
    let e = refused(&["--maxmemory-policy", "sometimes"]);
    assert!(e.contains("maxmemory-policy"), "{e}");
    let e = refused(&["--replica-ignore-maxmemory", "no"]);
    assert!(e.contains("replica-ignore-maxmemory"), "{e}");
    // TLS without its certificate cannot be done: refused, saying what is missing.
    let e = refused(&["--tls-port", "6380"]);
    assert!(e.contains("tls-port needs tls-cert-file"), "{e}");
    let e = refused(&["--daemonize", "yes"]);
    assert!(e.contains("daemonize"), "{e}");
    // rename-command is implemented; a command that does not exist is Redis's error.
    let e = refused(&["--rename-command", "NOSUCH", ""]);
    assert!(e.contains("No such command in rename-command"), "{e}");
    let e = refused(&["--include", "/etc/redis.conf"]);
    assert!(e.contains("include"), "{e}");

    // The same in a redis.conf, naming the line.
    let dir = fresh_dir("conf");
    let conf = dir.join("redis.conf");
    std::fs::write(&conf, "port 0\nsave \"\"\nmaxmemory-clients 1gb\n").expect("write conf");
    let out = Command::new(HASHD)
        .arg(&conf)
        .current_dir(&dir)
        .output()
        .expect("run hashd");
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("line 3: 'maxmemory-clients 1gb'"), "{e}");
}

/// A started hashd process, killed on drop.
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

fn start(args: &[&str], dir: &std::path::Path) -> Proc {
    let port = free_port();
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
    Proc { child, port }
}

fn roundtrip(addr: (IpAddr, u16), request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the reply ends a line, or the server closes.
    while !out.ends_with(b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// An IPv4 address of this machine that is not loopback, if it has one.
fn non_loopback_ipv4() -> Option<Ipv4Addr> {
    // SAFETY: getifaddrs fills a list we walk read-only and free with freeifaddrs.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return None;
        }
        let mut found = None;
        let mut cur = list;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    found = Some(ip);
                    break;
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
        found
    }
}

#[test]
fn protected_mode_serves_only_loopback_clients_without_a_password() {
    let Some(ip) = non_loopback_ipv4() else {
        // The address check itself is covered by the unit tests of `is_loopback`.
        eprintln!("SKIP: this machine has no non-loopback IPv4 address to connect from");
        return;
    };
    let dir = fresh_dir("protected");
    let p = start(&["--bind", "0.0.0.0"], &dir);
    let remote = (IpAddr::V4(ip), p.port);
    let local = (IpAddr::V4(Ipv4Addr::LOCALHOST), p.port);
    let denied = roundtrip(remote, b"PING\r\n");
    assert_eq!(
        denied,
        hashd::server::PROTECTED_MODE_DENIED.as_bytes(),
        "a client from {ip} should get Redis's DENIED"
    );
    assert_eq!(roundtrip(local, b"PING\r\n"), b"+PONG\r\n");
    // CONFIG SET from loopback turns it off, as the message says.
    assert_eq!(
        roundtrip(local, b"CONFIG SET protected-mode no\r\n"),
        b"+OK\r\n"
    );
    assert_eq!(roundtrip(remote, b"PING\r\n"), b"+PONG\r\n");
    // With a password, protected mode does not apply.
    assert_eq!(
        roundtrip(local, b"CONFIG SET protected-mode yes\r\n"),
        b"+OK\r\n"
    );
    assert_eq!(
        roundtrip(local, b"CONFIG SET requirepass pw\r\n"),
        b"+OK\r\n"
    );
    assert_eq!(
        roundtrip(remote, b"PING\r\n"),
        b"-NOAUTH Authentication required.\r\n"
    );
    drop(p);
    let p = start(&["--bind", "0.0.0.0", "--protected-mode", "no"], &dir);
    assert_eq!(
        roundtrip((IpAddr::V4(ip), p.port), b"PING\r\n"),
        b"+PONG\r\n"
    );
}

#[test]
fn pidfile_and_logfile_are_written() {
    let dir = fresh_dir("pidlog");
    let pidfile = dir.join("hashd.pid");
    let logfile = dir.join("hashd.log");
    let p = start(
        &[
            "--pidfile",
            pidfile.to_str().expect("utf-8"),
            "--logfile",
            logfile.to_str().expect("utf-8"),
        ],
        &dir,
    );
    let pid = std::fs::read_to_string(&pidfile).expect("pid file");
    assert_eq!(pid.trim(), p.child.id().to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(&logfile).unwrap_or_default();
        if log.contains("Ready to accept connections") {
            break;
        }
        assert!(Instant::now() < deadline, "log file: {log:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGTERM: a clean exit removes the pid file.
    let mut p = p;
    // SAFETY: kill on our own child's pid.
    unsafe {
        libc::kill(p.child.id() as i32, libc::SIGTERM);
    }
    let _ = p.child.wait();
    assert!(!pidfile.exists(), "the pid file outlived the server");
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let server = TestServer::builder().config(|c| c.timeout = 1).start();
    let mut idle = server.client();
    idle.expect("PING", b"+PONG\r\n");
    let mut subscriber = server.client();
    subscriber.run("SUBSCRIBE ch");
    let started = Instant::now();
    let _ = idle.read_until_closed();
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A subscriber is not closed for idling.
    let mut c = server.client();
    c.expect("PUBLISH ch hi", b":1\r\n");
    let msg = subscriber.read_reply();
    assert!(msg.ends_with(b"$2\r\nhi\r\n"), "{}", common::show(&msg));
    c.expect("CONFIG GET timeout", b"*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n");
}

#[test]
fn a_failed_background_save_stops_writes_until_one_succeeds() {
    let dir = fresh_dir("misconf");
    let server = TestServer::builder()
        .config(|c| c.save = "3600 1".into())
        .start();
    let mut c = server.client();
    let gone = dir.join("gone");
    std::fs::create_dir_all(&gone).expect("dir");
    c.expect(&format!("CONFIG SET dir {}", gone.display()), b"+OK\r\n");
    std::fs::remove_dir_all(&gone).expect("remove");
    c.expect("BGSAVE", b"+Background saving started\r\n");
    assert!(common::wait_until(Duration::from_secs(10), || {
        let info = c.run("INFO persistence");
        String::from_utf8_lossy(&info).contains("rdb_last_bgsave_status:err")
    }));
    let misconf = c.run("HSET k f v");
    assert!(
        misconf.starts_with(b"-MISCONF Redis is configured to save RDB snapshots"),
        "{}",
        common::show(&misconf)
    );
    assert!(c.run("PING").starts_with(b"-MISCONF"));
    c.expect("HGET k f", b"$-1\r\n");
    c.expect("CONFIG SET stop-writes-on-bgsave-error no", b"+OK\r\n");
    c.expect("HSET k f v", b":1\r\n");
    c.expect("CONFIG SET stop-writes-on-bgsave-error yes", b"+OK\r\n");
    std::fs::create_dir_all(&gone).expect("dir again");
    c.expect("BGSAVE", b"+Background saving started\r\n");
    assert!(common::wait_until(Duration::from_secs(10), || c
        .run("HSET k g v")
        == b":1\r\n"));
}

#[test]
fn enable_debug_command_no_refuses_debug() {
    let server = TestServer::builder()
        .config(|c| c.enable_debug_command = "no".into())
        .start();
    let mut c = server.client();
    let r = c.run("DEBUG SET-ACTIVE-EXPIRE 0");
    assert!(
        r.starts_with(b"-ERR DEBUG command not allowed. If the enable-debug-command option"),
        "{}",
        common::show(&r)
    );
    let server = TestServer::builder()
        .config(|c| c.enable_debug_command = "local".into())
        .start();
    server
        .client()
        .expect("DEBUG SET-ACTIVE-EXPIRE 1", b"+OK\r\n");
}

/// `qbuf-free` from this connection's own CLIENT INFO line.
fn qbuf_free(c: &mut common::Client) -> usize {
    let line = String::from_utf8_lossy(&c.run("CLIENT INFO")).into_owned();
    line.split(' ')
        .find_map(|kv| kv.strip_prefix("qbuf-free="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no qbuf-free in {line}"))
}

#[test]
fn a_large_request_does_not_keep_its_read_buffer() {
    let server = TestServer::start();
    let mut c = server.client();
    let small = qbuf_free(&mut c);
    assert!(
        small <= 64 * 1024,
        "qbuf-free {small} before any large request"
    );
    let big = "v".repeat(20 << 20);
    c.cmd(&["HSET", "k", "f", big.as_str()]);
    // The next read finds the buffer empty and gives the 20 MB back.
    let after = qbuf_free(&mut c);
    assert!(
        after <= 64 * 1024,
        "qbuf-free {after} after a 20 MB request"
    );
}

#[test]
fn client_pause_holds_writes_and_expiry_until_unpause() {
    let server = TestServer::builder().start();
    let mut admin = server.client();
    let mut writer = server.client();
    let mut reader = server.client();
    writer.expect("HSET k f v short x", b":2\r\n");
    writer.expect("HPEXPIRE k 50 FIELDS 1 short", b"*1\r\n:1\r\n");
    admin.expect("CLIENT PAUSE 60000 WRITE", b"+OK\r\n");
    // Reads run; the write waits.
    reader.expect("HGET k f", b"$1\r\nv\r\n");
    writer.send(&common::encode_command(&["HSET", "k", "g", "w"]));
    assert!(
        matches!(
            writer.try_read_reply_within(Duration::from_millis(300)),
            Err(common::ReadError::Timeout(_))
        ),
        "a write ran during CLIENT PAUSE WRITE"
    );
    // Nothing expires while paused: hidden from reads, still stored.
    std::thread::sleep(Duration::from_millis(100));
    reader.expect("HGET k short", b"$-1\r\n");
    assert_eq!(server.ctx.keyspace.stored_len(0, b"k"), Some(2));
    admin.expect("CLIENT UNPAUSE", b"+OK\r\n");
    assert_eq!(writer.read_reply(), b":1\r\n");
    assert!(common::wait_until(Duration::from_secs(5), || server
        .ctx
        .keyspace
        .stored_len(0, b"k")
        == Some(2)
        && reader.run("HEXISTS k short") == b":0\r\n"));
    // A pause ends by itself.
    admin.expect("CLIENT PAUSE 100", b"+OK\r\n");
    reader.expect("PING", b"+PONG\r\n");
    admin.expect(
        "CLIENT PAUSE x",
        b"-ERR timeout is not an integer or out of range\r\n",
    );
    admin.expect(
        "CLIENT PAUSE 1 NOPE",
        b"-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n",
    );
}

/// A field of `id`'s CLIENT LIST line, as seen from `c`.
fn client_field(c: &mut common::Client, id: i64, name: &str) -> usize {
    let [v] = client_fields(c, id, [name]);
    v
}

/// Fields of `id`'s CLIENT LIST line, all from the same line.
fn client_fields<const N: usize>(c: &mut common::Client, id: i64, names: [&str; N]) -> [usize; N] {
    let list = String::from_utf8_lossy(&c.run("CLIENT LIST")).into_owned();
    let line = list
        .lines()
        .find(|l| l.contains(&format!("id={id} ")))
        .unwrap_or_else(|| panic!("client {id} not in {list}"));
    names.map(|name| {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    })
}

#[test]
fn client_list_shows_a_reply_waiting_for_a_client_that_does_not_read() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut args = vec!["HSET".to_string(), "big".to_string()];
    for f in 0..10_000 {
        args.push(format!("field{f}"));
        args.push("v".repeat(10));
    }
    c.cmd(&args);
    let mut slow = server.client();
    let id = match common::decode(&slow.run("CLIENT ID")) {
        common::Value::Int(n) => n,
        other => panic!("{other:?}"),
    };
    // Replies far past what the sockets buffer, never read.
    let request = common::encode_command(&["HGETALL", "big"]).repeat(300);
    let _ = slow.try_send(&request);
    assert!(
        common::wait_until(Duration::from_secs(10), || client_field(&mut c, id, "obl")
            > 0),
        "obl stayed 0 for a client that does not read"
    );
    // Both from one CLIENT LIST line: the reply keeps growing between two of them.
    let [rbs, obl] = client_fields(&mut c, id, ["rbs", "obl"]);
    assert!(rbs >= obl, "rbs={rbs} obl={obl}");
    // The first sight of a pending reply may be the tail of one write; the pile-up follows.
    assert!(
        common::wait_until(Duration::from_secs(10), || client_field(
            &mut c, id, "tot-mem"
        ) > 64 * 1024),
        "tot-mem stayed small for a client that does not read"
    );
}

/// CONFIG SET port / bind rebind the listeners at run time, as Redis's: the new address
/// serves, the old one closes, connections already open stay; an address that cannot be
/// bound leaves everything as it was, with Redis's error.
#[test]
fn config_set_port_and_bind_move_the_listener() {
    let server = TestServer::start();
    let old = server.port();
    let mut c = server.client();
    // A port someone else holds: Redis's error, and nothing changes.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr").port();
    assert_eq!(
        c.run(&format!("CONFIG SET port {taken}")),
        b"-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on \
          this port. Check server logs.\r\n"
    );
    assert!(TcpStream::connect(("127.0.0.1", old)).is_ok());
    assert_eq!(
        c.run("CONFIG SET port 70000"),
        b"-ERR CONFIG SET failed (possibly related to argument 'port') - argument must be \
          between 0 and 65535 inclusive\r\n"
    );
    assert_eq!(
        c.run("CONFIG SET bind 192.0.2.1"),
        b"-ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to \
          specified addresses.\r\n"
    );
    drop(holder);
    let new = free_port();
    assert_eq!(c.run(&format!("CONFIG SET port {new}")), b"+OK\r\n");
    assert_eq!(
        c.run("CONFIG GET port"),
        format!(
            "*2\r\n$4\r\nport\r\n${}\r\n{new}\r\n",
            new.to_string().len()
        )
        .as_bytes()
    );
    // The open connection stays; a new one goes to the new port only.
    assert_eq!(c.run("PING"), b"+PONG\r\n");
    let mut fresh = common::Client::connect(std::net::SocketAddr::from(([127, 0, 0, 1], new)));
    assert_eq!(fresh.run("PING"), b"+PONG\r\n");
    assert!(
        common::wait_until(Duration::from_secs(5), || TcpStream::connect((
            "127.0.0.1",
            old
        ))
        .is_err()),
        "the old port still accepts"
    );
    let info = String::from_utf8_lossy(&fresh.run("INFO server")).into_owned();
    assert!(info.contains(&format!("tcp_port:{new}\r\n")), "{info}");
    // bind: an optional address that fails is skipped, as at start-up.
    assert_eq!(
        fresh.run("CONFIG SET bind \"127.0.0.1 -192.0.2.1\""),
        b"+OK\r\n"
    );
    assert_eq!(
        fresh.run("CONFIG GET bind"),
        b"*2\r\n$4\r\nbind\r\n$20\r\n127.0.0.1 -192.0.2.1\r\n"
    );
    let mut again = common::Client::connect(std::net::SocketAddr::from(([127, 0, 0, 1], new)));
    assert_eq!(again.run("PING"), b"+PONG\r\n");
    // Both at once, applied together.
    let third = free_port();
    assert_eq!(
        again.run(&format!("CONFIG SET bind 127.0.0.1 port {third}")),
        b"+OK\r\n"
    );
    let mut last = common::Client::connect(std::net::SocketAddr::from(([127, 0, 0, 1], third)));
    assert_eq!(
        last.run("CONFIG GET bind"),
        b"*2\r\n$4\r\nbind\r\n$9\r\n127.0.0.1\r\n"
    );
    // What hashd refuses where Redis would stop listening altogether.
    assert!(last
        .run("CONFIG SET port 0")
        .starts_with(b"-ERR CONFIG SET failed"));
    assert!(last
        .run("CONFIG SET bind \"\"")
        .starts_with(b"-ERR CONFIG SET failed"));
}
