//! A lean pipelined load generator, for measuring a server rather than its client.
//!
//! redis-benchmark builds a reply object (hiredis, one allocation per element) for every
//! reply it reads. For HGETALL of 10 fields at pipeline 16 that is most of a core on this
//! machine, so against two fast servers it measures itself: both come out at the speed of
//! the client. This tool only walks each reply's RESP framing to find where it ends (no
//! allocation, no copy), so a 2-core machine can give one core to the server and keep the
//! server the bottleneck. `scripts/bench-compare --only lean` builds (`cargo build --release --example loadgen`) and runs it against hashd and
//! Redis side by side; it is not a replacement for redis-benchmark's figures, which the
//! main tables keep.
//!
//! ```text
//! cargo run --release --example loadgen -- --port 6379 --conns 4 --pipeline 16 \
//!     --requests 1000000 --keyspace 10000 hgetall bh:__rand_int__
//! ```
//!
//! `__rand_int__` in an argument becomes a random 12-digit number below `--keyspace`, as in
//! redis-benchmark's `-r`. Prints `rps=<requests per second> errors=<error replies>`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

struct Options {
    host: String,
    port: u16,
    conns: usize,
    pipeline: usize,
    requests: u64,
    keyspace: u64,
    command: Vec<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        host: "127.0.0.1".into(),
        port: 6379,
        conns: 4,
        pipeline: 16,
        requests: 1_000_000,
        keyspace: 10_000,
        command: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--host" => o.host = value("--host")?,
            "--port" => {
                o.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--conns" => o.conns = value("--conns")?.parse().map_err(|e| format!("{e}"))?,
            "--pipeline" => {
                o.pipeline = value("--pipeline")?.parse().map_err(|e| format!("{e}"))?
            }
            "--requests" => {
                o.requests = value("--requests")?.parse().map_err(|e| format!("{e}"))?
            }
            "--keyspace" => {
                o.keyspace = value("--keyspace")?.parse().map_err(|e| format!("{e}"))?
            }
            _ => {
                o.command.push(a);
                o.command.extend(args.by_ref());
            }
        }
    }
    if o.command.is_empty() || o.conns == 0 || o.pipeline == 0 || o.keyspace == 0 {
        return Err(
            "usage: loadgen [--port P] [--conns C] [--pipeline N] [--requests N] \
                    [--keyspace N] command args..."
                .into(),
        );
    }
    Ok(o)
}

/// One request, `__rand_int__` replaced by a random key number.
fn encode(command: &[String], rng: &mut fastrand::Rng, keyspace: u64, out: &mut Vec<u8>) {
    let n = format!("{:012}", rng.u64(..keyspace));
    out.extend_from_slice(format!("*{}\r\n", command.len()).as_bytes());
    for a in command {
        let a = a.replace("__rand_int__", &n);
        out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
    }
}

/// Where the line starting at `pos` ends (past its CRLF), if it is complete.
fn line_end(buf: &[u8], pos: usize) -> Option<usize> {
    memchr::memchr(b'\n', &buf[pos..]).map(|i| pos + i + 1)
}

/// The integer on the line starting at `pos + 1` (a length or count header).
fn header_int(buf: &[u8], pos: usize, end: usize) -> Option<i64> {
    std::str::from_utf8(&buf[pos + 1..end - 2])
        .ok()?
        .parse()
        .ok()
}

/// Where the RESP2/RESP3 frame starting at `pos` ends, if it is complete; and whether it
/// is an error. Walks headers and skips payloads: nothing is built.
fn frame_end(buf: &[u8], pos: usize) -> Option<(usize, bool)> {
    let end = line_end(buf, pos)?;
    match buf.get(pos)? {
        b'$' | b'=' | b'!' => {
            let n = header_int(buf, pos, end)?;
            if n < 0 {
                return Some((end, false));
            }
            let stop = end + n as usize + 2;
            (stop <= buf.len()).then_some((stop, buf[pos] == b'!'))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = header_int(buf, pos, end)?;
            let items = if matches!(buf[pos], b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut at = end;
            for _ in 0..items.max(0) {
                at = frame_end(buf, at)?.0;
            }
            if buf[pos] == b'|' {
                // An attribute precedes the frame it describes.
                return frame_end(buf, at);
            }
            Some((at, false))
        }
        b'-' => Some((end, true)),
        _ => Some((end, false)),
    }
}

fn run_connection(
    o: &Options,
    left: &AtomicU64,
    errors: &AtomicU64,
    seed: u64,
) -> Result<(), String> {
    let mut s =
        TcpStream::connect((o.host.as_str(), o.port)).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut rng = fastrand::Rng::with_seed(seed);
    // Batches made in advance, cycled: encoding is not what is measured.
    let batches: Vec<Vec<u8>> = (0..64)
        .map(|_| {
            let mut b = Vec::new();
            for _ in 0..o.pipeline {
                encode(&o.command, &mut rng, o.keyspace, &mut b);
            }
            b
        })
        .collect();
    let mut buf = vec![0u8; 1 << 20];
    let mut round = 0usize;
    loop {
        let take = o.pipeline as u64;
        if left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_sub(take)
            })
            .is_err()
        {
            return Ok(());
        }
        s.write_all(&batches[round % batches.len()])
            .map_err(|e| format!("write: {e}"))?;
        round += 1;
        let (mut filled, mut parsed, mut replies) = (0usize, 0usize, 0usize);
        while replies < o.pipeline {
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = s
                .read(&mut buf[filled..])
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            filled += n;
            while replies < o.pipeline {
                match frame_end(&buf[..filled], parsed) {
                    Some((end, is_error)) => {
                        if is_error {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        parsed = end;
                        replies += 1;
                    }
                    None => break,
                }
            }
        }
        // Replies to one batch end together with it, so nothing is carried over.
        if parsed != filled {
            return Err("more bytes than the replies asked for".into());
        }
    }
}

fn main() {
    let o = match parse_options() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let left = Arc::new(AtomicU64::new(o.requests));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..o.conns)
        .map(|i| {
            let (o, left, errors) = (Arc::clone(&o), Arc::clone(&left), Arc::clone(&errors));
            std::thread::spawn(move || run_connection(&o, &left, &errors, 1 + i as u64))
        })
        .collect();
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("loadgen: {e}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let done = o.requests - o.requests % o.pipeline as u64;
    println!(
        "rps={:.0} errors={}",
        done as f64 / secs,
        errors.load(Ordering::Relaxed)
    );
}
