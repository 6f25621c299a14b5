//! The `hashd` binary as a process, compared with redis-server's behaviour: the start-up log
//! in Redis's format and words, SIGHUP ignored, `maxclients` exact under a burst of
//! connections, and the open-files limit raised or `maxclients` lowered to fit it.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const HASHD: &str = env!("CARGO_BIN_EXE_hashd");
const MAXCLIENTS_ERR: &[u8] = b"-ERR max number of clients reached\r\n";

/// A running hashd whose stdout lines are collected as they come.
struct Server {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    dir: std::path::PathBuf,
}

impl Server {
    /// Starts the binary with `extra` flags, through `sh -c '<shell>; exec hashd ...'`
    /// when `shell` is given (to lower the open-files limit first), and waits for Redis's
    /// `Ready to accept connections` line.
    fn start(shell: Option<&str>, extra: &[&str]) -> Server {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hashd-process-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = match shell {
            Some(prefix) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(HASHD);
                c
            }
            None => Command::new(HASHD),
        };
        let mut child = cmd
            .args(["--port", "0", "--save", ""])
            .args(extra)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            port: 0,
            lines,
            dir,
        };
        let ready = server.wait_line(|l| l.contains("Ready to accept connections"));
        assert!(ready.is_some(), "no ready line: {:?}", server.log());
        let log = server.log();
        let port = log
            .iter()
            .find_map(|l| l.split("listening=127.0.0.1:").nth(1))
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .expect("a listening= line");
        server.port = port.parse().unwrap();
        server
    }

    fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line matching `f`, waiting up to 10 s for it.
    fn wait_line(&self, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(l) = self.log().into_iter().find(|l| f(l)) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    fn roundtrip(&self, request: &[u8]) -> Vec<u8> {
        roundtrip_on(&mut self.connect(), request)
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn roundtrip_on(s: &mut TcpStream, request: &[u8]) -> Vec<u8> {
    s.write_all(request).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// `<pid>:M <dd Mon yyyy HH:MM:SS.mmm> <level> <message>`: the message, if `line` is in
/// redis-server's format with the given pid and level mark.
fn redis_message(line: &str, pid: u32, level: char) -> Option<&str> {
    let rest = line.strip_prefix(&format!("{pid}:M "))?;
    let (date, rest) = rest.split_at_checked(24)?;
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shape = digits(0..2)
        && b[2] == b' '
        && b[3..6].iter().all(u8::is_ascii_alphabetic)
        && b[6] == b' '
        && digits(7..11)
        && b[11] == b' '
        && digits(12..14)
        && b[14] == b':'
        && digits(15..17)
        && b[17] == b':'
        && digits(18..20)
        && b[20] == b'.'
        && digits(21..24);
    if !shape {
        return None;
    }
    rest.strip_prefix(&format!(" {level} "))
}

#[test]
fn startup_log_is_in_redis_format_and_words() {
    let server = Server::start(None, &[]);
    let pid = server.child.id();
    let log = server.log();
    let messages: Vec<&str> = log
        .iter()
        .map(|l| redis_message(l, pid, '*').unwrap_or_else(|| panic!("not Redis's format: {l}")))
        .collect();
    let position = |want: &dyn Fn(&str) -> bool| {
        messages
            .iter()
            .position(|m| want(m))
            .unwrap_or_else(|| panic!("missing line in {messages:#?}"))
    };
    let starting = position(&|m| m == "oO0OoO0OoO0Oo hashd is starting oO0OoO0OoO0Oo");
    let version = position(&|m| {
        m == format!(
            "hashd version={}, bits=64, commit=00000000, modified=0, pid={pid}, just started",
            env!("CARGO_PKG_VERSION")
        )
    });
    let config = position(&|m| m.starts_with("Configuration loaded"));
    let running = position(&|m| {
        m == format!(
            "Running mode=standalone, port={}. listening=127.0.0.1:{}",
            server.port, server.port
        )
    });
    let initialized = position(&|m| m == "Server initialized");
    let ready = position(&|m| m == "Ready to accept connections tcp");
    assert!(starting < version && version < config && config < running);
    assert!(running < initialized && initialized < ready);
    // Once the line is out, the server answers (what a testcontainers wait relies on).
    assert_eq!(server.roundtrip(b"PING\r\n"), b"+PONG\r\n");

    server.signal("TERM");
    let bye = server.wait_line(|l| l.ends_with("# hashd is now ready to exit, bye bye..."));
    assert!(bye.is_some(), "{:?}", server.log());
    let log = server.log();
    assert!(
        log.iter()
            .any(|l| redis_message(l, pid, '#') == Some("Received SIGTERM scheduling shutdown...")),
        "{log:?}"
    );
}

#[test]
fn loglevel_warning_hides_the_notices() {
    // Redis prints no start-up notice at `loglevel warning`; neither does hashd.
    let dir = std::env::temp_dir();
    let mut child = Command::new(HASHD)
        .args(["--port", "0", "--save", "", "--loglevel", "warning"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.wait();
    assert_eq!(out, "", "a warning-level log printed notices");
}

#[test]
fn sighup_is_ignored() {
    let server = Server::start(None, &[]);
    let mut client = server.connect();
    assert_eq!(roundtrip_on(&mut client, b"HSET h f v\r\n"), b":1\r\n");
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "SIGHUP stopped hashd"
    );
    // The connection open before the signal and a new one are both served.
    assert_eq!(roundtrip_on(&mut client, b"HGET h f\r\n"), b"$1\r\nv\r\n");
    assert_eq!(server.roundtrip(b"PING\r\n"), b"+PONG\r\n");
}

/// What happened to one of a burst of connections: admitted (nothing unsolicited arrives,
/// and PING is answered) or refused with Redis's error and closed.
#[derive(Debug)]
enum Fate {
    Admitted(TcpStream),
    Refused,
}

/// `n` clients connect at once (after a barrier) and wait `quiet` for an unsolicited reply.
fn burst(port: u16, n: usize, quiet: Duration) -> Vec<Fate> {
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(quiet)).unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 64];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            assert!(got.is_empty(), "partial reply {got:?}");
                            return Fate::Admitted(s);
                        }
                        Err(e) => panic!("read failed: {e}"),
                    }
                }
                assert_eq!(got, MAXCLIENTS_ERR);
                Fate::Refused
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn admitted_count(fates: &mut [Fate]) -> usize {
    let mut admitted = 0;
    for fate in fates.iter_mut() {
        if let Fate::Admitted(s) = fate {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(roundtrip_on(s, b"PING\r\n"), b"+PONG\r\n");
            admitted += 1;
        }
    }
    admitted
}

#[test]
fn maxclients_is_exact_under_a_burst() {
    let server = Server::start(None, &["--maxclients", "100"]);
    for round in 0..2 {
        let mut fates = burst(server.port, 300, Duration::from_millis(1500));
        let admitted = admitted_count(&mut fates);
        assert_eq!(admitted, 100, "round {round}");
        assert_eq!(fates.len() - admitted, 200);
        let info = String::from_utf8(server_info(&mut fates)).unwrap();
        assert!(info.contains("connected_clients:100\r\n"), "{info}");
        // Closing every connection gives their places back for the next round.
        drop(fates);
        std::thread::sleep(Duration::from_millis(300));
    }
    let info = String::from_utf8(server.roundtrip(b"INFO stats\r\n")).unwrap();
    assert!(info.contains("rejected_connections:400\r\n"), "{info}");
}

/// INFO clients through one of the admitted connections.
fn server_info(fates: &mut [Fate]) -> Vec<u8> {
    let s = fates
        .iter_mut()
        .find_map(|f| match f {
            Fate::Admitted(s) => Some(s),
            Fate::Refused => None,
        })
        .unwrap();
    roundtrip_on(s, b"INFO clients\r\n")
}

fn config_get_maxclients(server: &Server) -> Vec<u8> {
    server.roundtrip(b"CONFIG GET maxclients\r\n")
}

#[test]
fn a_low_open_files_limit_lowers_maxclients_with_redis_warning() {
    // Soft and hard limit 64: the limit cannot be raised, maxclients becomes 64 - 32.
    let server = Server::start(Some("ulimit -n 64"), &["--maxclients", "100"]);
    let pid = server.child.id();
    let log = server.log();
    if log
        .iter()
        .any(|l| l.contains("Increased maximum number of open files"))
    {
        // Privileged (CAP_SYS_RESOURCE): the hard limit could be raised; nothing to lower.
        eprintln!("skipped: this process may raise its hard open-files limit");
        return;
    }
    let warnings: Vec<&str> = log
        .iter()
        .filter_map(|l| redis_message(l, pid, '#'))
        .collect();
    assert_eq!(
        warnings,
        [
            "You requested maxclients of 100 requiring at least 132 max file descriptors.",
            "Server can't set maximum open files to 132 because of OS error: Operation not permitted.",
            "Current maximum open files is 64. maxclients has been reduced to 32 to compensate \
             for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
        ],
        "{log:#?}"
    );
    assert_eq!(
        config_get_maxclients(&server),
        b"*2\r\n$10\r\nmaxclients\r\n$2\r\n32\r\n"
    );
    // Past 32 clients, connections are refused with the error instead of hanging on a
    // process out of descriptors. (The CONFIG GET connection's place is given back once
    // the server has seen it close: let it, as between the rounds below.)
    std::thread::sleep(Duration::from_millis(300));
    let mut fates = burst(server.port, 50, Duration::from_millis(1500));
    assert_eq!(admitted_count(&mut fates), 32);
    assert_eq!(
        fates.iter().filter(|f| matches!(f, Fate::Refused)).count(),
        18
    );
}

#[test]
fn a_raisable_open_files_limit_is_raised() {
    // Soft limit 64 under a higher hard limit: raised to maxclients + 32, as Redis does.
    let server = Server::start(Some("ulimit -S -n 64"), &["--maxclients", "100"]);
    let pid = server.child.id();
    let log = server.log();
    assert!(
        log.iter().any(|l| redis_message(l, pid, '*')
            == Some(
                "Increased maximum number of open files to 132 (it was originally set to 64)."
            )),
        "{log:#?}"
    );
    assert_eq!(
        config_get_maxclients(&server),
        b"*2\r\n$10\r\nmaxclients\r\n$3\r\n100\r\n"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open_files.split_whitespace().nth(3),
        Some("132"),
        "{open_files}"
    );
}

#[test]
fn too_low_an_open_files_limit_exits_like_redis() {
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 30; exec \"$0\" \"$@\"")
        .arg(HASHD)
        .args(["--port", "0", "--save", "", "--maxclients", "100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "# Your current 'ulimit -n' of 30 is not enough for the server to start. \
             Please increase your open file limit to at least 132. Exiting."
        ),
        "{stdout}"
    );
}
