//! TLS on `tls-port` (issue 15 item 3, first part): certificates from a test CA (rcgen),
//! clients with rustls and the reference redis-cli `--tls`; client certificates required,
//! optional or not asked for; CONFIG SET of the certificate files; what is refused.

#[path = "common/certs.rs"]
mod certs;
mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use certs::{connect, roundtrip, Certs};

const HASHD: &str = env!("CARGO_BIN_EXE_hashd");

struct Proc {
    child: std::process::Child,
    tls_port: u16,
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

fn start(certs: &Certs, extra: &[&str]) -> Proc {
    // Ports are picked free and then bound by the child: another test may take one in
    // between, and the child then exits on the bind error. Start again on fresh ports.
    for _ in 0..5 {
        let tls_port = free_port();
        let mut child = Command::new(HASHD)
            .args(["--port", &free_port().to_string(), "--save", ""])
            .args(["--tls-port", &tls_port.to_string()])
            .args(["--tls-cert-file", &certs.path("server.crt")])
            .args(["--tls-key-file", &certs.path("server.key")])
            .args(["--tls-ca-cert-file", &certs.path("ca.crt")])
            .args(extra)
            .current_dir(&certs.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hashd");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut exited = false;
        while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "hashd did not listen on tls-port"
            );
            if child.try_wait().ok().flatten().is_some() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whoever answered, the port must be this child's.
        std::thread::sleep(Duration::from_millis(30));
        if !exited && child.try_wait().ok().flatten().is_none() {
            return Proc { child, tls_port };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("hashd did not start on free ports in 5 attempts");
}

#[test]
fn clients_with_a_certificate_are_served_and_others_refused_by_default() {
    let certs = Certs::make("tls-default");
    let p = start(&certs, &[]);
    let mut c = connect(&certs, p.tls_port, true).expect("connect");
    assert_eq!(roundtrip(&mut c, b"PING\r\n").expect("ping"), b"+PONG\r\n");
    assert_eq!(
        roundtrip(&mut c, b"HSET k f v\r\n").expect("hset"),
        b":1\r\n"
    );
    assert_eq!(
        roundtrip(&mut c, b"HGET k f\r\n").expect("hget"),
        b"$1\r\nv\r\n"
    );
    // A replica may sync over TLS (tests/tls_replication.rs follows one through).
    assert!(roundtrip(&mut c, b"PSYNC ? -1\r\n")
        .expect("psync")
        .starts_with(b"+FULLRESYNC "));
    // tls-auth-clients yes (Redis's default): no certificate, no service.
    let refused = connect(&certs, p.tls_port, false)
        .and_then(|mut c| roundtrip(&mut c, b"PING\r\n"))
        .map(|r| r == b"+PONG\r\n");
    assert!(
        !matches!(refused, Ok(true)),
        "served without a client certificate"
    );
}

#[test]
fn optional_and_no_client_authentication() {
    let certs = Certs::make("tls-optional");
    let p = start(&certs, &["--tls-auth-clients", "optional"]);
    for with_cert in [true, false] {
        let mut c = connect(&certs, p.tls_port, with_cert).expect("connect");
        assert_eq!(roundtrip(&mut c, b"PING\r\n").expect("ping"), b"+PONG\r\n");
    }
    let q = start(
        &certs,
        &["--tls-auth-clients", "no", "--tls-protocols", "TLSv1.3"],
    );
    let mut c = connect(&certs, q.tls_port, false).expect("connect");
    assert_eq!(
        roundtrip(&mut c, b"CONFIG GET tls-auth-clients\r\n").expect("config"),
        b"*2\r\n$16\r\ntls-auth-clients\r\n$2\r\nno\r\n"
    );
}

#[test]
fn config_set_of_the_certificates_is_checked_and_applies_to_new_connections() {
    let certs = Certs::make("tls-config");
    let p = start(&certs, &["--tls-auth-clients", "no"]);
    let mut c = connect(&certs, p.tls_port, false).expect("connect");
    let bad = b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$13\r\ntls-cert-file\r\n$12\r\n/nonexistent\r\n";
    assert_eq!(
        roundtrip(&mut c, bad).expect("config set"),
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to \
          update TLS configuration. Check server logs.\r\n"
    );
    // Still served, with the old configuration; a valid change is kept.
    let path = certs.path("server.crt");
    let good = format!(
        "*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$13\r\ntls-cert-file\r\n${}\r\n{path}\r\n",
        path.len()
    );
    assert_eq!(
        roundtrip(&mut c, good.as_bytes()).expect("config set"),
        b"+OK\r\n"
    );
    let mut d = connect(&certs, p.tls_port, false).expect("connect again");
    assert_eq!(roundtrip(&mut d, b"PING\r\n").expect("ping"), b"+PONG\r\n");
}

#[test]
fn redis_cli_connects_with_tls() {
    let Some(bin) = common::reference_redis() else {
        return;
    };
    let certs = Certs::make("tls-cli");
    let p = start(&certs, &[]);
    let out = Command::new(bin.join("redis-cli"))
        .args(["-p", &p.tls_port.to_string(), "--tls"])
        .args(["--cacert", &certs.path("ca.crt")])
        .args(["--cert", &certs.path("client.crt")])
        .args(["--key", &certs.path("client.key")])
        .args(["HSET", "k", "f", "v"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{out:?}");
}

#[test]
fn settings_hashd_cannot_honour_stop_start_up() {
    let certs = Certs::make("tls-refused");
    let run = |args: &[&str]| {
        Command::new(HASHD)
            .args(["--port", "0", "--save", ""])
            .args(args)
            .current_dir(&certs.dir)
            .output()
            .expect("run hashd")
    };
    let port = free_port().to_string();
    let out = run(&["--tls-port", &port]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tls-port needs tls-cert-file"),
        "{out:?}"
    );
    let out = run(&[
        "--tls-port",
        &port,
        "--tls-cert-file",
        &certs.path("server.crt"),
        "--tls-key-file",
        &certs.path("server.key"),
        "--tls-key-file-pass",
        "secret",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("encrypted private keys"),
        "{out:?}"
    );
    // tls-replication needs a certificate and a CA, as in Redis.
    let out = run(&["--tls-replication", "yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No tls-cert-file configured!"),
        "{out:?}"
    );
    let out = run(&[
        "--tls-replication",
        "yes",
        "--tls-cert-file",
        &certs.path("server.crt"),
        "--tls-key-file",
        &certs.path("server.key"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Either tls-ca-cert-file or tls-ca-cert-dir must be specified"),
        "{out:?}"
    );
    let _ = Path::new(&certs.dir);
}

#[test]
fn config_set_tls_port_binds_and_closes_the_tls_listener_as_redis() {
    let certs = Certs::make("tls-config-port");
    let (cert, key, ca) = (
        certs.path("server.crt"),
        certs.path("server.key"),
        certs.path("ca.crt"),
    );
    let s = common::TestServer::builder()
        .config(|c| {
            c.tls_cert_file = cert;
            c.tls_key_file = key;
            c.tls_ca_cert_file = ca;
        })
        .start();
    let mut c = s.client();
    c.expect(
        "CONFIG GET tls-port",
        b"*2\r\n$8\r\ntls-port\r\n$1\r\n0\r\n",
    );
    // A port that is taken: Redis 7.4.1's reply, and nothing changes.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    c.expect(
        &format!("CONFIG SET tls-port {taken_port}"),
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-port') - Unable to listen \
          on this port. Check server logs.\r\n",
    );
    c.expect(
        "CONFIG GET tls-port",
        b"*2\r\n$8\r\ntls-port\r\n$1\r\n0\r\n",
    );
    c.expect(
        "CONFIG SET tls-port 70000",
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-port') - argument must be \
          between 0 and 65535 inclusive\r\n",
    );
    // A free one serves TLS clients at once (bound before the reply).
    let port = free_port();
    c.expect(&format!("CONFIG SET tls-port {port}"), b"+OK\r\n");
    let mut t = connect(&certs, port, true).expect("connect over TLS");
    assert_eq!(roundtrip(&mut t, b"PING\r\n").expect("ping"), b"+PONG\r\n");
    let shown = format!(
        "*2\r\n$8\r\ntls-port\r\n${}\r\n{port}\r\n",
        port.to_string().len()
    );
    c.expect("CONFIG GET tls-port", shown.as_bytes());
    // CONFIG SET bind moves the TLS listeners too (here: onto the same address).
    c.expect("CONFIG SET bind 127.0.0.1", b"+OK\r\n");
    let mut u = connect(&certs, port, true).expect("connect over TLS after bind");
    assert_eq!(roundtrip(&mut u, b"PING\r\n").expect("ping"), b"+PONG\r\n");
    // The same port again changes nothing.
    c.expect(&format!("CONFIG SET tls-port {port}"), b"+OK\r\n");
    assert_eq!(roundtrip(&mut t, b"PING\r\n").expect("ping"), b"+PONG\r\n");
    // 0 closes the listener; the connection already open stays.
    c.expect("CONFIG SET tls-port 0", b"+OK\r\n");
    assert!(
        common::wait_until(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_err()),
        "the TLS listener stayed open"
    );
    assert_eq!(roundtrip(&mut t, b"PING\r\n").expect("ping"), b"+PONG\r\n");
    c.expect(
        "CONFIG GET tls-port",
        b"*2\r\n$8\r\ntls-port\r\n$1\r\n0\r\n",
    );
    c.expect("PING", b"+PONG\r\n");

    // Without a certificate, as Redis: the TLS configuration cannot be made.
    let bare = common::TestServer::start();
    let mut b = bare.client();
    let port = free_port();
    b.expect(
        &format!("CONFIG SET tls-port {port}"),
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-port') - Unable to update \
          TLS configuration. Check server logs.\r\n",
    );
    b.expect(
        "CONFIG SET tls-replication yes",
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-replication') - Unable to \
          update TLS configuration. Check server logs.\r\n",
    );
    b.expect(
        "CONFIG GET tls-replication",
        b"*2\r\n$15\r\ntls-replication\r\n$2\r\nno\r\n",
    );
    // With the certificates and a CA it is mutable, as in Redis.
    c.expect("CONFIG SET tls-replication yes", b"+OK\r\n");
    c.expect(
        "CONFIG GET tls-replication",
        b"*2\r\n$15\r\ntls-replication\r\n$3\r\nyes\r\n",
    );
    c.expect("CONFIG SET tls-replication no", b"+OK\r\n");
    drop(taken);
}
