//! The `hashd` binary as a user runs it: flags, config errors, signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HASHD: &str = env!("CARGO_BIN_EXE_hashd");
static NEXT_DIR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn version_and_help() {
    let out = Command::new(HASHD).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new(HASHD).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--requirepass"));
}

#[test]
fn bad_flags_and_files_exit_nonzero_naming_the_option() {
    let out = Command::new(HASHD).args(["--hz", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'hz'"),
        "{out:?}"
    );

    let out = Command::new(HASHD)
        .args(["--port", "notaport"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--port"),
        "{out:?}"
    );

    let dir = std::env::temp_dir().join(format!("hashd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "databases = 0\n").unwrap();
    let out = Command::new(HASHD).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'databases'"),
        "{out:?}"
    );
    std::fs::write(&file, "nosuch = 1\n").unwrap();
    let out = Command::new(HASHD).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nosuch"),
        "{out:?}"
    );
    let out = Command::new(HASHD)
        .arg(dir.join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.toml"),
        "{out:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Starts the binary on a free port and returns it with the port it reports.
fn start(extra: &[&str]) -> (std::process::Child, u16) {
    // Its own working directory: with the default save points a stopped server writes
    // dump.rdb there (and a started one loads it).
    let dir = std::env::temp_dir().join(format!(
        "hashd-cli-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(HASHD)
        .args(["--port", "0", "--loglevel", "notice"])
        .args(extra)
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening=127.0.0.1:").nth(1) {
            let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return (child, port.parse().unwrap());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("hashd did not report its address");
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "hashd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn roundtrip(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn sigterm_shuts_down_gracefully_with_status_zero() {
    let (mut child, port) = start(&[]);
    assert_eq!(roundtrip(port, b"PING\r\n"), b"+PONG\r\n");
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}

#[test]
fn shutdown_command_exits_zero() {
    let (mut child, port) = start(&["--requirepass", "pw"]);
    assert_eq!(roundtrip(port, b"AUTH pw\r\nSHUTDOWN\r\n"), b"+OK\r\n");
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}

#[test]
fn redis_server_directives_are_accepted() {
    let (mut child, port) = start(&["--save", "", "--appendonly", "no", "--protected-mode", "no"]);
    assert_eq!(roundtrip(port, b"HSET k f v\r\n"), b":1\r\n");
    child.kill().unwrap();
    let _ = child.wait();
}
