//! Reply encoding. Handlers describe replies through typed calls on [`Reply`] (`bulk`,
//! `null`, `map`, …) and never write wire text themselves; this module alone knows how each
//! shape looks in RESP2 and in RESP3 (spec §1).
//!
//! Replies are appended to the connection's output buffer as they are produced, so a
//! pipelined batch of commands is answered with one write.

use crate::error::{CmdError, ProtocolError};

/// The protocol a connection speaks; switched by HELLO and RESET.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// Bytes a bulk string takes beyond its data when its length has at most 20 digits:
/// `$`, the digits, and two CRLFs.
pub const BULK_OVERHEAD_BYTES: usize = 25;

/// Where a deferred reply starts ([`Reply::defer`]).
#[must_use = "a deferred reply needs its header (Reply::prepend)"]
pub struct Deferred(usize);

/// A typed reply sink over an output buffer.
///
/// Aggregates are written header-first: call `array(n)` and then write exactly `n` elements
/// (`map(n)` takes `2n`: key, value, key, value …).
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    proto: Protocol,
}

impl<'a> Reply<'a> {
    pub fn new(out: &'a mut Vec<u8>, proto: Protocol) -> Self {
        Reply { out, proto }
    }

    pub fn protocol(&self) -> Protocol {
        self.proto
    }

    /// Switches the encoding for the replies that follow (HELLO answers in the new protocol).
    pub fn set_protocol(&mut self, proto: Protocol) {
        self.proto = proto;
    }

    /// Bytes written so far; lets callers measure or roll back (`truncate`).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Drops everything written after `len`.
    pub fn truncate(&mut self, len: usize) {
        self.out.truncate(len);
    }

    fn line(&mut self, prefix: u8, n: i64) {
        self.out.push(prefix);
        let mut b = itoa::Buffer::new();
        self.out.extend_from_slice(b.format(n).as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply (`+PONG`). `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.out.push(b'+');
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error reply. CR and LF at either end of the message are dropped and those inside
    /// become spaces, as Redis's `sdstrim` then `sdsmapchars` do.
    pub fn error(&mut self, e: &CmdError) {
        self.error_text(&e.reply_text());
    }

    /// A protocol error reply (the connection closes after it).
    pub fn protocol_error(&mut self, e: &ProtocolError) {
        self.error_text(&e.reply_text());
    }

    fn error_text(&mut self, text: &[u8]) {
        let newline = |b: &u8| *b == b'\r' || *b == b'\n';
        let start = text.iter().position(|b| !newline(b)).unwrap_or(text.len());
        let end = text
            .iter()
            .rposition(|b| !newline(b))
            .map_or(start, |i| i + 1);
        let text = &text[start..end];
        self.out.push(b'-');
        self.out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.line(b':', n);
    }

    /// `$<len>\r\n<data>\r\n`. Lengths below 100 (field names, most values) are written
    /// without formatting, and the space for the whole element is reserved once.
    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        let n = data.len();
        self.out.reserve(n + BULK_OVERHEAD_BYTES);
        if n < 10 {
            self.out
                .extend_from_slice(&[b'$', b'0' + n as u8, b'\r', b'\n']);
        } else if n < 100 {
            self.out.extend_from_slice(&[
                b'$',
                b'0' + (n / 10) as u8,
                b'0' + (n % 10) as u8,
                b'\r',
                b'\n',
            ]);
        } else {
            self.line(b'$', n as i64);
        }
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\r\n");
    }

    /// Makes room for at least `bytes` more without reallocating (a reply whose size is
    /// known before it is written).
    pub fn reserve(&mut self, bytes: usize) {
        self.out.reserve(bytes);
    }

    /// Starts a reply whose header depends on what follows it (an aggregate whose length
    /// is known only once its elements are written): write the elements, then
    /// [`Reply::prepend`] the header. Like Redis's `addReplyDeferredLen`, so the
    /// elements are visited once, not counted first.
    pub fn defer(&mut self) -> Deferred {
        Deferred(self.out.len())
    }

    /// Writes what `header` writes in front of everything written since `mark`.
    pub fn prepend(&mut self, mark: Deferred, header: impl FnOnce(&mut Self)) {
        let body_end = self.out.len();
        header(self);
        let header_len = self.out.len() - body_end;
        self.out[mark.0..].rotate_right(header_len);
    }

    /// A bulk string holding the decimal form of `n` (cursors, CONFIG values).
    pub fn bulk_u64(&mut self, n: u64) {
        let mut b = itoa::Buffer::new();
        let s = b.format(n);
        self.bulk(s.as_bytes());
    }

    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// A missing aggregate (EXEC aborted by WATCH): `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    pub fn array(&mut self, n: usize) {
        self.line(b'*', n as i64);
    }

    /// A map of `n` pairs: `%n` in RESP3, a flat `*2n` array in RESP2.
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.line(b'*', 2 * n as i64),
            Protocol::Resp3 => self.line(b'%', n as i64),
        }
    }

    /// A set of `n` elements: `~n` in RESP3, `*n` in RESP2.
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.line(b'*', n as i64),
            Protocol::Resp3 => self.line(b'~', n as i64),
        }
    }

    /// A push message header (pub/sub): `>n` in RESP3, `*n` in RESP2.
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.line(b'*', n as i64),
            Protocol::Resp3 => self.line(b'>', n as i64),
        }
    }

    /// Human-readable text (INFO, CLIENT LIST): a RESP2 bulk string, or a RESP3 verbatim
    /// string of format `txt` (the length counts the 4 bytes of `txt:`).
    /// A double: RESP3's `,`, a bulk string in RESP2; the shortest text that reads back
    /// as the same number.
    pub fn double(&mut self, v: f64) {
        let text = v.to_string();
        match self.proto {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => {
                self.out.push(b',');
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    pub fn verbatim(&mut self, text: &[u8]) {
        match self.proto {
            Protocol::Resp2 => self.bulk(text),
            Protocol::Resp3 => {
                self.line(b'=', text.len() as i64 + 4);
                self.out.extend_from_slice(b"txt:");
                self.out.extend_from_slice(text);
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(f: impl Fn(&mut Reply)) -> (String, String) {
        let mut a = Vec::new();
        f(&mut Reply::new(&mut a, Protocol::Resp2));
        let mut b = Vec::new();
        f(&mut Reply::new(&mut b, Protocol::Resp3));
        (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
    }

    #[test]
    fn shapes_per_protocol() {
        assert_eq!(both(|r| r.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|r| r.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|r| r.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|r| r.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
        assert_eq!(both(|r| r.int(-2)), (":-2\r\n".into(), ":-2\r\n".into()));
        assert_eq!(
            both(|r| r.verbatim(b"a:1\r\n")),
            ("$5\r\na:1\r\n\r\n".into(), "=9\r\ntxt:a:1\r\n\r\n".into())
        );
        assert_eq!(both(|r| r.bulk(b"")).0, "$0\r\n\r\n");
        assert_eq!(both(|r| r.bulk_u64(0)).0, "$1\r\n0\r\n");
    }

    #[test]
    fn bulk_headers_at_every_width() {
        for n in [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65536] {
            let data = vec![b'x'; n];
            let mut out = Vec::new();
            Reply::new(&mut out, Protocol::Resp2).bulk(&data);
            let mut want = format!("${n}\r\n").into_bytes();
            want.extend_from_slice(&data);
            want.extend_from_slice(b"\r\n");
            assert_eq!(out, want, "length {n}");
        }
    }

    #[test]
    fn deferred_headers_go_before_their_elements() {
        let (a, b) = both(|r| {
            r.ok();
            let mark = r.defer();
            r.bulk(b"f");
            r.bulk(b"v");
            r.prepend(mark, |r| r.map(1));
            r.int(7);
        });
        assert_eq!(a, "+OK\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n:7\r\n");
        assert_eq!(b, "+OK\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n:7\r\n");
        let (a, _) = both(|r| {
            let mark = r.defer();
            r.prepend(mark, |r| {
                r.array(2);
                r.bulk_u64(0);
                r.array(0);
            });
        });
        assert_eq!(a, "*2\r\n$1\r\n0\r\n*0\r\n");
    }

    #[test]
    fn errors_are_single_line() {
        let (a, _) = both(|r| r.error(&CmdError::other("ERR a\r\nb")));
        assert_eq!(a, "-ERR a  b\r\n");
        let (a, _) = both(|r| r.error(&CmdError::other("\nERR Unsupported option x\r\n\r")));
        assert_eq!(a, "-ERR Unsupported option x\r\n");
        let (a, _) = both(|r| r.error(&CmdError::other("\r\n")));
        assert_eq!(a, "-\r\n");
        let (a, _) = both(|r| r.error(&CmdError::WrongArity("hset".into())));
        assert_eq!(a, "-ERR wrong number of arguments for 'hset' command\r\n");
        let (a, _) = both(|r| r.protocol_error(&ProtocolError::ExpectedDollar(b'x')));
        assert_eq!(a, "-ERR Protocol error: expected '$', got 'x'\r\n");
    }

    #[test]
    fn errors_keep_their_bytes() {
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let mut out = Vec::new();
            let e = CmdError::other_bytes(b"ERR unknown command 'n\xffo'\r\n".to_vec());
            Reply::new(&mut out, protocol).error(&e);
            // Redis trims CR/LF at the ends before mapping the inner ones to spaces.
            assert_eq!(out, b"-ERR unknown command 'n\xffo'\r\n");
        }
    }
}
