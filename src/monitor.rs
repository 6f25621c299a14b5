//! MONITOR: every command run, as the line Redis sends its monitors —
//! `+<unix s>.<µs> [<db> <ip:port>] "ARG" "ARG" …` with each argument escaped as
//! `sdscatrepr` does.
//!
//! A command is shown once it has run (its database is the one it left selected), failed
//! or not; commands refused before running (unknown, wrong arity), administrative ones
//! (CONFIG, MONITOR…) and those flagged `skip_monitor` are not, and AUTH's arguments are
//! `(redacted)` — all as Redis 7.4. A transaction's commands appear when EXEC runs them,
//! before EXEC itself. Nothing is formatted while nobody monitors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// Lines a monitor may have waiting before it is disconnected (a monitor that does not
/// read must not hold the server's memory).
const MAILBOX_LINES: usize = 1 << 16;

/// One monitoring client: its id, its mailbox, and what is needed to drop it.
type Monitor = (u64, mpsc::Sender<Bytes>, Arc<crate::client::ClientShared>);

/// The clients in MONITOR mode.
#[derive(Debug, Default)]
pub struct Monitors {
    count: AtomicUsize,
    senders: Mutex<Vec<Monitor>>,
}

impl Monitors {
    /// Whether anyone monitors (one atomic load per command).
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Turns `client` into a monitor; returns where its lines arrive.
    pub fn add(&self, client: &Arc<crate::client::ClientShared>) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(MAILBOX_LINES);
        let mut s = self.senders.lock();
        s.retain(|(id, _, _)| *id != client.id);
        s.push((client.id, tx, Arc::clone(client)));
        self.count.store(s.len(), Ordering::Relaxed);
        rx
    }

    pub fn remove(&self, id: u64) {
        let mut s = self.senders.lock();
        s.retain(|(i, _, _)| *i != id);
        self.count.store(s.len(), Ordering::Relaxed);
    }

    /// Sends the line for a command that ran to every monitor (itself included, as Redis).
    pub fn feed<'a>(
        &self,
        db: usize,
        addr: &str,
        args: impl Iterator<Item = &'a [u8]>,
        redact: bool,
    ) {
        let line = Bytes::from(format_line(db, addr, args, redact));
        let mut s = self.senders.lock();
        s.retain(|(_, tx, client)| match tx.try_send(line.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                client.kill();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        self.count.store(s.len(), Ordering::Relaxed);
    }
}

/// `+1700000000.123456 [0 127.0.0.1:5000] "HSET" "k" "f" "v"\r\n`.
fn format_line<'a>(
    db: usize,
    addr: &str,
    args: impl Iterator<Item = &'a [u8]>,
    redact: bool,
) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = format!(
        "+{}.{:06} [{db} {addr}]",
        now.as_secs(),
        now.subsec_micros()
    )
    .into_bytes();
    for (i, a) in args.enumerate() {
        out.push(b' ');
        repr(&mut out, if redact && i > 0 { b"(redacted)" } else { a });
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Redis's `sdscatrepr`: quoted, with `\\ \" \n \r \t \a \b` escaped and other bytes that
/// are not printable ASCII as `\xHH`.
pub fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_escape_like_sdscatrepr() {
        let line = format_line(
            2,
            "127.0.0.1:5",
            [&b"HSET"[..], b"a b", b"x\ny\x01\"\\\xff"].into_iter(),
            false,
        );
        let text = String::from_utf8(line).unwrap();
        let (_, rest) = text.split_once(' ').unwrap();
        assert_eq!(
            rest,
            "[2 127.0.0.1:5] \"HSET\" \"a b\" \"x\\ny\\x01\\\"\\\\\\xff\"\r\n"
        );
        assert!(text.starts_with('+'));
        let secs = text[1..].split('.').next().unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
        let redacted = format_line(0, "a", [&b"AUTH"[..], b"pw"].into_iter(), true);
        assert!(redacted.ends_with(b"[0 a] \"AUTH\" \"(redacted)\"\r\n"));
    }
}
