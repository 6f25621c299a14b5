//! Shared harness for the integration tests: a real hashd server on `127.0.0.1:0` in its own
//! thread and runtime, and a blocking raw-socket client that reads exactly one RESP2/RESP3
//! reply at a time. Every read has a deadline; nothing here sleeps to synchronise.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hashd::clock::Clock;
use hashd::config::Config;
use hashd::context::ServerContext;

/// Start of the manual clock (2024-01-01T00:00:00Z), as in the unit tests.
pub const T0_MS: u64 = 1_704_067_200_000;
/// How long a read waits for a reply before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to stop when a test ends.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a [`TestServer`] from a [`Config`] and clock choice.
pub struct ServerBuilder {
    config: Config,
    manual_clock: Option<u64>,
    active_expire: bool,
    port: u16,
}

impl ServerBuilder {
    pub fn requirepass(mut self, password: &str) -> Self {
        self.config.requirepass = Some(password.to_string());
        self
    }

    /// A clock that only moves through [`TestServer::advance_ms`].
    pub fn manual_clock(mut self, start_ms: u64) -> Self {
        self.manual_clock = Some(start_ms);
        self
    }

    /// Same effect as `DEBUG SET-ACTIVE-EXPIRE 0|1`: whether the sweeper reclaims anything.
    pub fn active_expire(mut self, on: bool) -> Self {
        self.active_expire = on;
        self
    }

    /// Listen on this port instead of a free one (a restart that clients must find again).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Any other configuration change.
    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    pub fn start(self) -> TestServer {
        self.try_start()
            .expect("bind 127.0.0.1 for the test server")
    }

    /// [`ServerBuilder::start`], with a failure to bind the port returned: a port picked
    /// free beforehand may have been taken since by a test running in parallel.
    pub fn try_start(self) -> std::io::Result<TestServer> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", self.port))?;
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = std_listener.local_addr().expect("listener address");
        let mut config = self.config;
        config.port = addr.port();
        let clock = match self.manual_clock {
            Some(t) => Clock::manual(t),
            None => Clock::system(),
        };
        let ctx = Arc::new(ServerContext::new(&config, clock));
        ctx.port.store(u64::from(addr.port()), Ordering::Relaxed);
        ctx.config
            .active_expire
            .store(self.active_expire, Ordering::Relaxed);

        let (done_tx, done_rx) = mpsc::channel();
        let server_ctx = Arc::clone(&ctx);
        let thread = std::thread::Builder::new()
            .name(format!("hashd-test-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime for the test server");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)
                        .expect("listener into tokio");
                    hashd::server::run(vec![listener], server_ctx).await;
                });
                drop(rt);
                let _ = done_tx.send(());
            })
            .expect("spawn the server thread");
        // The listener is bound before this returns, so clients may connect at once: the
        // kernel queues them until the accept loop runs.
        Ok(TestServer {
            addr,
            ctx,
            thread: Some(thread),
            done: done_rx,
        })
    }
}

/// A running server; stops (and is waited for) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub ctx: Arc<ServerContext>,
    thread: Option<JoinHandle<()>>,
    done: mpsc::Receiver<()>,
}

impl TestServer {
    /// Defaults, system clock, active expiry on.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Defaults, except: no save points, and a fresh empty directory for snapshots, so a
    /// test server never reads or writes the working directory's dump.rdb.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            config: Config {
                save: String::new(),
                dir: fresh_dir("data").display().to_string(),
                ..Config::default()
            },
            manual_clock: None,
            active_expire: true,
            port: 0,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `redis://127.0.0.1:<port>` plus `suffix` (e.g. `/3`, `?protocol=resp3`).
    pub fn url(&self, suffix: &str) -> String {
        format!("redis://{}{}", self.addr, suffix)
    }

    pub fn clock(&self) -> &Clock {
        &self.ctx.clock
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance_ms(&self, ms: u64) {
        self.ctx.clock.advance_ms(ms);
    }

    pub fn now_ms(&self) -> u64 {
        self.ctx.clock.now_ms()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.ctx.shutdown.trigger();
        match self.done.recv_timeout(STOP_TIMEOUT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !std::thread::panicking() {
                    panic!("test server did not stop within {STOP_TIMEOUT:?}");
                }
            }
        }
    }
}

/// Why a read ended without a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The server closed the connection (EOF or reset). Carries bytes of a partial reply.
    Closed(Vec<u8>),
    /// Nothing complete arrived before the deadline. Carries what did arrive.
    Timeout(Vec<u8>),
    /// The bytes are not RESP.
    Malformed(String),
}

/// A blocking client over a raw socket. Replies are returned as raw bytes, exactly as sent.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub timeout: Duration,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
            timeout: READ_TIMEOUT,
        }
    }

    /// Writes raw bytes. Panics if the write fails.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write of {} bytes failed: {e}", bytes.len()));
    }

    /// Writes raw bytes; the caller decides what a failure means (the server may already
    /// have closed the connection).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Closes our sending side; the server sees EOF.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads exactly one complete reply (RESP2 or RESP3) and returns its bytes.
    pub fn try_read_reply(&mut self) -> Result<Vec<u8>, ReadError> {
        self.try_read_reply_within(self.timeout)
    }

    pub fn try_read_reply_within(&mut self, timeout: Duration) -> Result<Vec<u8>, ReadError> {
        let deadline = Instant::now() + timeout;
        loop {
            match frame_len(&self.buf) {
                Ok(Some(n)) => return Ok(self.buf.drain(..n).collect()),
                Ok(None) => {}
                Err(e) => return Err(ReadError::Malformed(e)),
            }
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Eof => return Err(ReadError::Closed(std::mem::take(&mut self.buf))),
                Fill::Timeout => return Err(ReadError::Timeout(self.buf.clone())),
            }
        }
    }

    /// Reads one reply; panics on timeout, close or garbage.
    pub fn read_reply(&mut self) -> Vec<u8> {
        match self.try_read_reply() {
            Ok(r) => r,
            Err(e) => panic!("expected a reply, got {}", describe_read_error(&e)),
        }
    }

    /// Sends a command as a RESP multibulk request and reads its reply.
    /// Sends `args` as one request and checks the reply byte for byte.
    #[track_caller]
    pub fn expect_args<A: AsRef<[u8]>>(&mut self, args: &[A], expected: &[u8]) {
        let got = self.cmd(args);
        let shown: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
            .collect();
        assert_bytes(&got, expected, &shown.join(" "));
    }

    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(&encode_command(args));
        self.read_reply()
    }

    /// Like [`Client::cmd`], with the command written in redis-cli syntax (quotes allowed);
    /// it is still sent as multibulk.
    pub fn run(&mut self, line: &str) -> Vec<u8> {
        let args = split_line(line).unwrap_or_else(|| panic!("unbalanced quotes in {line:?}"));
        self.cmd(&args)
    }

    /// [`Client::run`], checked against an exact reply.
    #[track_caller]
    pub fn expect(&mut self, line: &str, expected: &[u8]) {
        let got = self.run(line);
        assert_bytes(&got, expected, line);
    }

    /// Switches to RESP3 with `HELLO 3`; checks the reply is a 7-entry map.
    #[track_caller]
    pub fn hello3(&mut self) {
        let r = self.run("HELLO 3");
        assert!(
            r.starts_with(b"%7\r\n"),
            "HELLO 3 should answer a %7 map, got {}",
            show(&r)
        );
    }

    #[track_caller]
    pub fn auth(&mut self, password: &str) {
        let r = self.cmd(&["AUTH", password]);
        assert_bytes(&r, b"+OK\r\n", "AUTH");
    }

    /// Waits for the server to close the connection and returns every byte that arrived
    /// before the close. Panics if it stays open past the deadline.
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.fill(deadline) {
                Fill::Data => {}
                Fill::Eof => return std::mem::take(&mut self.buf),
                Fill::Timeout => panic!(
                    "connection still open after {:?}; received so far: {}",
                    self.timeout,
                    show(&self.buf)
                ),
            }
        }
    }

    /// Asserts the server closes the connection without sending anything (more).
    #[track_caller]
    pub fn expect_closed_silently(&mut self) {
        let rest = self.read_until_closed();
        assert!(
            rest.is_empty(),
            "expected a silent close, got {}",
            show(&rest)
        );
    }

    /// Asserts the next bytes are exactly `expected` and that the connection then closes.
    #[track_caller]
    pub fn expect_reply_then_close(&mut self, expected: &[u8], what: &str) {
        let all = self.read_until_closed();
        assert_bytes(&all, expected, what);
    }

    fn fill(&mut self, deadline: Instant) -> Fill {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Fill::Timeout;
            }
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            match self.stream.read(&mut chunk) {
                Ok(0) => return Fill::Eof,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Fill::Data;
                }
                Err(e) => match e.kind() {
                    ErrorKind::WouldBlock | ErrorKind::TimedOut => return Fill::Timeout,
                    ErrorKind::Interrupted => continue,
                    // A close while our unread or unsent data sits in the server's
                    // buffers arrives as a reset: still a close.
                    ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe => return Fill::Eof,
                    _ => panic!("read failed: {e}"),
                },
            }
        }
    }
}

enum Fill {
    Data,
    Eof,
    Timeout,
}

pub fn describe_read_error(e: &ReadError) -> String {
    match e {
        ReadError::Closed(b) if b.is_empty() => "the connection closed".into(),
        ReadError::Closed(b) => format!("the connection closed after a partial {}", show(b)),
        ReadError::Timeout(b) if b.is_empty() => "nothing (timeout)".into(),
        ReadError::Timeout(b) => format!("an incomplete reply (timeout): {}", show(b)),
        ReadError::Malformed(m) => format!("malformed RESP: {m}"),
    }
}

/// Bytes as a readable, escaped string for failure messages.
pub fn show(bytes: &[u8]) -> String {
    let s = bytes.escape_ascii().to_string();
    if s.len() > 600 {
        format!("\"{}…\" ({} bytes)", &s[..600], bytes.len())
    } else {
        format!("\"{s}\"")
    }
}

#[track_caller]
pub fn assert_bytes(got: &[u8], expected: &[u8], what: &str) {
    assert!(
        got == expected,
        "{what}\n  expected: {}\n       got: {}",
        show(expected),
        show(got)
    );
}

/// Encodes a request as a RESP multibulk array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Splits a redis-cli style line (`sdssplitargs`): whitespace-separated words, `"..."` with
/// `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` with `\'`. None on unbalanced quotes.
pub fn split_line(line: &str) -> Option<Vec<Vec<u8>>> {
    let s = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == s.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            if in_dq {
                let c = *s.get(i)?;
                let hex_at = |k: usize| s.get(k).is_some_and(|b| b.is_ascii_hexdigit());
                if c == b'\\' && s.get(i + 1) == Some(&b'x') && hex_at(i + 2) && hex_at(i + 3) {
                    let hex = std::str::from_utf8(&s[i + 2..i + 4]).ok()?;
                    cur.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 4;
                } else if c == b'\\' && i + 1 < s.len() {
                    cur.push(match s[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                } else if c == b'"' {
                    if s.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                    i += 1;
                }
            } else if in_sq {
                let c = *s.get(i)?;
                if c == b'\\' && s.get(i + 1) == Some(&b'\'') {
                    cur.push(b'\'');
                    i += 2;
                } else if c == b'\'' {
                    if s.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                    i += 1;
                }
            } else {
                match s.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => {
                        in_dq = true;
                        i += 1;
                    }
                    Some(b'\'') => {
                        in_sq = true;
                        i += 1;
                    }
                    Some(&c) => {
                        cur.push(c);
                        i += 1;
                    }
                }
            }
        }
        args.push(cur);
    }
}

/// A decoded reply, for tests that need structure rather than bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` and RESP3 `_`.
    Null,
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Push(Vec<Value>),
    /// RESP3 verbatim string: format and payload.
    Verbatim(String, Vec<u8>),
    Double(String),
    Bool(bool),
    BigNumber(String),
}

impl Value {
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) | Value::Verbatim(_, b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }
}

/// Decodes one complete reply. Panics (with the bytes) if `bytes` is not exactly one reply.
#[track_caller]
pub fn decode(bytes: &[u8]) -> Value {
    match parse(bytes, 0) {
        Ok(Some((v, n))) if n == bytes.len() => v,
        Ok(Some((_, n))) => panic!(
            "{} trailing bytes after a reply in {}",
            bytes.len() - n,
            show(bytes)
        ),
        Ok(None) => panic!("incomplete reply {}", show(bytes)),
        Err(e) => panic!("malformed reply {}: {e}", show(bytes)),
    }
}

/// The length of the complete reply at the front of `buf`, None if more bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    Ok(parse(buf, 0)?.map(|(_, n)| n))
}

/// Splits a byte stream into complete replies; returns them and the unparsed rest.
pub fn split_replies(mut buf: &[u8]) -> Result<(Vec<Vec<u8>>, Vec<u8>), String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        match frame_len(buf)? {
            Some(n) => {
                out.push(buf[..n].to_vec());
                buf = &buf[n..];
            }
            None => break,
        }
    }
    Ok((out, buf.to_vec()))
}

fn parse(buf: &[u8], pos: usize) -> Result<Option<(Value, usize)>, String> {
    let Some(&ty) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(rel) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = &buf[pos + 1..pos + rel];
    let next = pos + rel + 2;
    let text = || String::from_utf8_lossy(line).into_owned();
    let number = || -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| format!("bad length/integer {:?} at byte {pos}", text()))
    };
    let value = match ty {
        b'+' => Value::Simple(text()),
        b'-' => Value::Error(text()),
        b':' => Value::Int(number()?),
        b'_' => {
            if !line.is_empty() {
                return Err(format!("null with payload at byte {pos}"));
            }
            Value::Null
        }
        b',' => Value::Double(text()),
        b'(' => Value::BigNumber(text()),
        b'#' => match line {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(format!("bad boolean at byte {pos}")),
        },
        b'$' | b'!' | b'=' => {
            let n = number()?;
            if n < 0 {
                if ty == b'$' && n == -1 {
                    return Ok(Some((Value::Null, next)));
                }
                return Err(format!("negative length {n} at byte {pos}"));
            }
            let end = next + n as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(format!("payload at byte {next} not followed by CRLF"));
            }
            let payload = buf[next..end].to_vec();
            let v = match ty {
                b'$' => Value::Bulk(payload),
                b'!' => Value::Error(String::from_utf8_lossy(&payload).into_owned()),
                _ => {
                    if payload.len() < 4 || payload[3] != b':' {
                        return Err(format!("verbatim string without a format at byte {pos}"));
                    }
                    Value::Verbatim(
                        String::from_utf8_lossy(&payload[..3]).into_owned(),
                        payload[4..].to_vec(),
                    )
                }
            };
            return Ok(Some((v, end + 2)));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = number()?;
            if n < 0 {
                if ty == b'*' && n == -1 {
                    return Ok(Some((Value::Null, next)));
                }
                return Err(format!("negative count {n} at byte {pos}"));
            }
            let children = if matches!(ty, b'%' | b'|') { 2 * n } else { n };
            let mut items = Vec::new();
            let mut at = next;
            for _ in 0..children {
                match parse(buf, at)? {
                    Some((v, end)) => {
                        items.push(v);
                        at = end;
                    }
                    None => return Ok(None),
                }
            }
            let v = match ty {
                b'*' => Value::Array(items),
                b'~' => Value::Set(items),
                b'>' => Value::Push(items),
                b'%' => Value::Map(pairs(items)),
                _ => {
                    // An attribute annotates the reply that follows it.
                    return parse(buf, at);
                }
            };
            return Ok(Some((v, at)));
        }
        other => {
            return Err(format!(
                "unexpected type byte {:?} at byte {pos}",
                char::from(other)
            ))
        }
    };
    Ok(Some((value, next)))
}

fn pairs(items: Vec<Value>) -> Vec<(Value, Value)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// Polls `cond` until it holds or `timeout` passes. For waiting on the server's background
/// work (the sweeper) without guessing a sleep.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// True if the `HASHD_REQUIRE_TOOLS=1` environment variable asks for external tools to be
/// mandatory (CI), instead of skipping tests that need them.
pub fn tools_required() -> bool {
    std::env::var("HASHD_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// The reference Redis 7.4.1's bin directory, installed by `../shared/tools/reference-redis`
/// (idempotent, about a minute the first time). None, with a SKIP line, when it cannot be
/// had — unless `HASHD_REQUIRE_TOOLS=1`, which makes that a failure.
pub fn reference_redis() -> Option<std::path::PathBuf> {
    use std::process::{Command, Stdio};
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/reference-redis");
    let dir = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match dir.filter(|d| d.join("redis-server").exists()) {
        Some(d) => Some(d),
        None => {
            if tools_required() {
                panic!("reference Redis unavailable and HASHD_REQUIRE_TOOLS=1");
            }
            eprintln!("SKIP: reference Redis unavailable ({script:?})");
            None
        }
    }
}

/// A reference redis-server on a free loopback port, killed on drop.
pub struct RedisServer {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl RedisServer {
    /// `bin/redis-server --save '' --dir <dir>` plus `args`, once it answers PING with
    /// `+PONG` (while it loads a file it answers `-LOADING`).
    pub fn start(bin: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> RedisServer {
        use std::process::{Command, Stdio};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let child = Command::new(bin.join("redis-server"))
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server");
        let server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = TcpStream::connect(server.addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reply = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new empty directory under the system's temporary directory, unique to this process
/// and call.
pub fn fresh_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hashd-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a test directory");
    dir
}

#[cfg(test)]
mod harness_tests {
    use super::*;

    #[test]
    fn frame_len_handles_every_type() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-5\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"_\r\n",
            b"$3\r\na\r\n\r\n",
            b"*2\r\n$1\r\na\r\n_\r\n",
            b"%1\r\n$1\r\nk\r\n*0\r\n",
            b"=8\r\ntxt:abcd\r\n",
            b"~1\r\n:1\r\n",
            b",1.5\r\n",
            b"#t\r\n",
        ];
        for c in cases {
            assert_eq!(frame_len(c), Ok(Some(c.len())), "{}", show(c));
            assert_eq!(frame_len(&c[..c.len() - 1]), Ok(None), "{}", show(c));
        }
    }

    #[test]
    fn split_line_follows_sdssplitargs() {
        let args = split_line(r#"HSET k "a b" 'c d' "\x41\n" x"#).unwrap();
        assert_eq!(
            args,
            vec![
                b"HSET".to_vec(),
                b"k".to_vec(),
                b"a b".to_vec(),
                b"c d".to_vec(),
                b"A\n".to_vec(),
                b"x".to_vec()
            ]
        );
        assert_eq!(split_line(r#""a"b"#), None);
        assert_eq!(split_line(r#""abc"#), None);
        assert_eq!(split_line("").unwrap().len(), 0);
        assert_eq!(split_line(r#""""#).unwrap(), vec![Vec::<u8>::new()]);
    }
}

/// Everything a key holds: fields with values and deadlines, and the key's deadline.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyState {
    pub fields: BTreeMap<Vec<u8>, (Vec<u8>, i64)>,
    pub key_deadline: i64,
}

/// (database, key) → what it holds.
pub type Dataset = BTreeMap<(usize, Vec<u8>), KeyState>;

/// The elements of an array reply.
#[track_caller]
pub fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(v) => v,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// A string reply's bytes (empty for anything else).
pub fn bytes(v: &Value) -> Vec<u8> {
    v.as_bytes().map(<[u8]>::to_vec).unwrap_or_default()
}

#[track_caller]
fn int_value(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// The whole dataset of the first `dbs` databases at `addr`, read through SCAN, HGETALL,
/// HPEXPIRETIME and PEXPIRETIME (to compare a replica with its master).
pub fn dataset(addr: SocketAddr, dbs: usize) -> Dataset {
    let mut c = Client::connect(addr);
    let mut out = Dataset::new();
    for db in 0..dbs {
        c.expect(&format!("SELECT {db}"), b"+OK\r\n");
        let mut cursor = b"0".to_vec();
        loop {
            let mut reply = items(decode(&c.cmd(&[&b"SCAN"[..], &cursor, b"COUNT", b"1000"])));
            let keys = items(reply.pop().expect("keys"));
            cursor = bytes(&reply[0]);
            for k in keys {
                let key = bytes(&k);
                let all = items(decode(&c.cmd(&[&b"HGETALL"[..], &key])));
                let mut fields = BTreeMap::new();
                for pair in all.chunks(2) {
                    let f = bytes(&pair[0]);
                    let t = items(decode(&c.cmd(&[
                        &b"HPEXPIRETIME"[..],
                        &key,
                        b"FIELDS",
                        b"1",
                        &f,
                    ])));
                    let t = t
                        .first()
                        .map_or_else(|| panic!("HPEXPIRETIME: no reply"), int_value);
                    fields.insert(f, (bytes(&pair[1]), t));
                }
                let key_deadline = int_value(&decode(&c.cmd(&[&b"PEXPIRETIME"[..], &key])));
                out.insert(
                    (db, key),
                    KeyState {
                        fields,
                        key_deadline,
                    },
                );
            }
            if cursor == b"0" {
                break;
            }
        }
    }
    out
}
