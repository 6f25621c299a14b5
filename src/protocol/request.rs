//! Request parsing: RESP multibulk and telnet-style inline commands, with Redis's exact
//! protocol errors (networking.c `processMultibulkBuffer` / `processInlineBuffer`).
//!
//! The parser never copies multibulk arguments: it records byte spans into the connection's
//! read buffer, and the command runs on slices of that buffer. Inline commands need quote
//! processing, so their arguments are unescaped into a side buffer instead.
//!
//! We parse requests by hand rather than with the `redis-protocol` crate because Redis's
//! observable behaviour is in the quirks: which limit is checked when, the exact error text,
//! that the two bytes after a bulk payload are skipped unchecked, and `sdssplitargs` quoting.

use crate::error::ProtocolError;

/// Largest line (count or length header, or inline request) searched for its terminator.
/// An inline request longer than this is refused even when its newline is already
/// buffered (see [`RequestParser::parse`]'s inline case).
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Multibulk count accepted before authentication.
pub const UNAUTH_MAX_MULTIBULK_LEN: i64 = 10;
/// Bulk length accepted before authentication.
pub const UNAUTH_MAX_BULK_LEN: i64 = 16384;

/// Per-connection parsing limits.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`.
    pub max_bulk_len: i64,
    /// True while the client must still authenticate (tighter limits apply).
    pub unauthenticated: bool,
}

/// Where a request's arguments live after a successful parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgSource {
    /// Spans index the read buffer that was parsed.
    ReadBuffer,
    /// Spans index [`RequestParser::inline_buf`].
    InlineBuffer,
}

/// The outcome of one parse attempt at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough bytes yet for a whole request.
    Incomplete,
    /// A request with at least one argument; `consumed` bytes may be dropped after it runs.
    Request { consumed: usize, source: ArgSource },
    /// Bytes that form no command (`*0`, `*-1`, a blank inline line): drop them, no reply.
    Ignored { consumed: usize },
}

/// Reusable parse state for one connection: span and inline buffers are recycled between
/// requests so that parsing allocates nothing in the steady state.
///
/// A multibulk request that arrives in pieces is not re-parsed from the start on every
/// read: the parser remembers how far it got. So after `Incomplete`, the next call must pass
/// the same buffer, possibly extended (the connection only drops bytes after a request).
#[derive(Default, Debug)]
pub struct RequestParser {
    pub spans: Vec<(usize, usize)>,
    pub inline_buf: Vec<u8>,
    resume: Option<Resume>,
}

/// Where an incomplete multibulk request stopped.
#[derive(Clone, Copy, Debug)]
struct Resume {
    /// Offset of the next argument's `$` line.
    pos: usize,
    /// Arguments still to read.
    remaining: i64,
}

/// Span buffers that grew past this (a request with very many arguments) are released.
const KEEP_SPANS_CAPACITY: usize = 4096;

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the request at the front of `buf`.
    pub fn parse(&mut self, buf: &[u8], limits: ParseLimits) -> Result<Parsed, ProtocolError> {
        if let Some(r) = self.resume.take() {
            return self.parse_bulks(buf, limits, r.pos, r.remaining);
        }
        if self.spans.capacity() > KEEP_SPANS_CAPACITY {
            self.spans = Vec::new();
        }
        self.spans.clear();
        match buf.first() {
            None => Ok(Parsed::Incomplete),
            Some(b'*') => self.parse_multibulk(buf, limits),
            Some(_) => self.parse_inline(buf),
        }
    }

    fn parse_multibulk(
        &mut self,
        buf: &[u8],
        limits: ParseLimits,
    ) -> Result<Parsed, ProtocolError> {
        let Some(cr) = find_cr(buf, 1) else {
            if buf.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ProtocolError::TooBigMbulkCount);
            }
            return Ok(Parsed::Incomplete);
        };
        // Redis wants the byte after '\r' to be buffered too before it trusts the line.
        if cr + 1 >= buf.len() {
            return Ok(Parsed::Incomplete);
        }
        let count = match parse_i64(&buf[1..cr]) {
            Some(n) if n <= i32::MAX as i64 => n,
            _ => return Err(ProtocolError::InvalidMultibulkLength),
        };
        if limits.unauthenticated && count > UNAUTH_MAX_MULTIBULK_LEN {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        let pos = cr + 2;
        if count <= 0 {
            return Ok(Parsed::Ignored { consumed: pos });
        }
        // Cap the pre-allocation: a hostile count must not reserve gigabytes up front.
        self.spans.reserve((count as usize).min(1024));
        self.parse_bulks(buf, limits, pos, count)
    }

    /// Reads the `remaining` bulk arguments starting at `pos`.
    fn parse_bulks(
        &mut self,
        buf: &[u8],
        limits: ParseLimits,
        mut pos: usize,
        mut remaining: i64,
    ) -> Result<Parsed, ProtocolError> {
        while remaining > 0 {
            let Some(cr) = find_cr(buf, pos) else {
                if buf.len() - pos > PROTO_INLINE_MAX_SIZE {
                    return Err(ProtocolError::TooBigBulkCount);
                }
                return Ok(self.incomplete(pos, remaining));
            };
            if cr + 1 >= buf.len() {
                return Ok(self.incomplete(pos, remaining));
            }
            if buf[pos] != b'$' {
                return Err(ProtocolError::ExpectedDollar(buf[pos]));
            }
            let len = match parse_i64(&buf[pos + 1..cr]) {
                Some(n) if n >= 0 && n <= limits.max_bulk_len => n,
                _ => return Err(ProtocolError::InvalidBulkLength),
            };
            if limits.unauthenticated && len > UNAUTH_MAX_BULK_LEN {
                return Err(ProtocolError::UnauthenticatedBulkLength);
            }
            let start = cr + 2;
            let len = len as usize;
            // Payload plus the two trailing bytes, which Redis skips without checking.
            if buf.len() < start + len + 2 {
                return Ok(self.incomplete(pos, remaining));
            }
            self.spans.push((start, start + len));
            pos = start + len + 2;
            remaining -= 1;
        }
        Ok(Parsed::Request {
            consumed: pos,
            source: ArgSource::ReadBuffer,
        })
    }

    /// Notes where a multibulk request stopped, for the next call.
    fn incomplete(&mut self, pos: usize, remaining: i64) -> Parsed {
        self.resume = Some(Resume { pos, remaining });
        Parsed::Incomplete
    }

    /// An inline request: the line up to `\n`. Redis looks for the newline with `strchr`,
    /// so a NUL byte before it hides it: such a request is never complete, and is refused
    /// once more than 64 KiB are buffered. A line longer than 64 KiB is refused even when
    /// its newline is already here: Redis reads 16 KiB at a time and refuses a request
    /// that has no newline after a read once past 64 KiB, so whether Redis accepts a
    /// line of 64–80 KiB depends on how its reads fall; hashd's answer does not depend on
    /// how the bytes arrive.
    fn parse_inline(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        let nl = find_line_end(buf, 0, b'\n');
        let Some(nl) = nl.filter(|&nl| nl <= PROTO_INLINE_MAX_SIZE) else {
            if buf.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(Parsed::Incomplete);
        };
        let mut line = &buf[..nl];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        self.inline_buf.clear();
        split_args(line, &mut self.inline_buf, &mut self.spans)?;
        let consumed = nl + 1;
        if self.spans.is_empty() {
            Ok(Parsed::Ignored { consumed })
        } else {
            Ok(Parsed::Request {
                consumed,
                source: ArgSource::InlineBuffer,
            })
        }
    }
}

/// Most arguments a request may have for [`peek_keys`] to look past it.
const PEEK_MAX_ARGS: i64 = 64;

/// Calls `each` with the second argument (the key, for the commands that have one) of each
/// complete multibulk request at the front of `buf`, up to `max` requests, so that their
/// keys can be prefetched before the batch runs. Only a hint: it stops quietly at the first
/// thing it does not expect (an inline command, a partial request, a long one); the real
/// parse still decides what every byte means.
pub fn peek_keys<'a>(buf: &'a [u8], max: usize, mut each: impl FnMut(&'a [u8])) {
    let mut pos = 0;
    for _ in 0..max {
        let Some((argc, mut at)) = peek_header(buf, pos, b'*') else {
            return;
        };
        if !(1..=PEEK_MAX_ARGS).contains(&argc) {
            return;
        }
        let mut key = None;
        for i in 0..argc {
            let Some((len, start)) = peek_header(buf, at, b'$') else {
                return;
            };
            let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
                return;
            };
            if end.saturating_add(2) > buf.len() {
                return;
            }
            if i == 1 {
                key = Some(&buf[start..end]);
            }
            at = end + 2;
        }
        if let Some(key) = key {
            each(key);
        }
        pos = at;
    }
}

/// A `<marker><integer>\r\n` line at `pos`: the integer and the offset after the line.
/// Only non-negative counts of at most 18 digits are taken (anything else ends the peek),
/// so the digits are summed as they are read, in one pass: a request of many arguments is
/// walked header by header here before the parser walks it again, and on a 10-field HSET
/// the strict `\r` search then `parse_i64` was ~9% of the server's time.
fn peek_header(buf: &[u8], pos: usize, marker: u8) -> Option<(i64, usize)> {
    const MAX_DIGITS: usize = 18;
    let rest = buf.get(pos..)?;
    if rest.first() != Some(&marker) {
        return None;
    }
    let mut n: i64 = 0;
    let mut end = 1;
    while let Some(&d) = rest.get(end).filter(|d| d.is_ascii_digit()) {
        if end > MAX_DIGITS {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
        end += 1;
    }
    (end > 1 && rest.get(end..end + 2) == Some(b"\r\n")).then_some((n, pos + end + 2))
}

/// Where Redis finds the `\r` ending a count or length line: `strchr` stops at a NUL
/// byte, so a NUL before the `\r` leaves the line unterminated.
fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    find_line_end(buf, from, b'\r')
}

/// The first `end` byte at or after `from`, as C's `strchr` finds it: not past a NUL.
fn find_line_end(buf: &[u8], from: usize, end: u8) -> Option<usize> {
    let i = memchr::memchr2(end, 0, buf.get(from..)?)? + from;
    (buf[i] == end).then_some(i)
}

/// Redis's `string2ll`: an optional `-`, then `0` alone or a non-zero digit followed by
/// digits; must fit in i64. Rejects `+1`, `01`, `-0`, spaces, the empty string and any
/// input of 21 bytes or more.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Redis's `sdssplitargs`: whitespace-separated arguments with `"…"` (escapes
/// `\n \r \t \b \a \\ \" \xHH`) and `'…'` (only `\'`) quoting. A closing quote must be
/// followed by whitespace or the end. Arguments are written to `out`, spans into `spans`.
/// The input is a C string to Redis, so a NUL byte ends it.
pub fn split_args(
    line: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), ProtocolError> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let at = |i: usize| line.get(i).copied();
    let mut p = 0;
    loop {
        while at(p).is_some_and(is_c_space) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(());
        }
        let start = out.len();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let Some(c) = at(p) else {
                if in_dq || in_sq {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                break;
            };
            if in_dq {
                if c == b'\\'
                    && at(p + 1) == Some(b'x')
                    && at(p + 2).is_some_and(is_hex)
                    && at(p + 3).is_some_and(is_hex)
                {
                    out.push(hex_val(line[p + 2]) * 16 + hex_val(line[p + 3]));
                    p += 3;
                } else if c == b'\\' && at(p + 1).is_some() {
                    p += 1;
                    out.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1).is_some_and(|n| !is_c_space(n)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(p + 1) == Some(b'\'') {
                    p += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1).is_some_and(|n| !is_c_space(n)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else {
                    out.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        p += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => out.push(c),
                }
            }
            p += 1;
        }
        spans.push((start, out.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peeked(buf: &[u8], max: usize) -> Vec<&[u8]> {
        let mut keys = Vec::new();
        peek_keys(buf, max, |k| keys.push(k));
        keys
    }

    #[test]
    fn peek_keys_names_the_second_argument_of_complete_requests() {
        let buf = b"*3\r\n$4\r\nHGET\r\n$2\r\nk1\r\n$1\r\nf\r\n*1\r\n$4\r\nPING\r\n\
                    *2\r\n$4\r\nHLEN\r\n$0\r\n\r\n*2\r\n$4\r\nHLEN\r\n$2\r\nk";
        assert_eq!(peeked(buf, 16), vec![&b"k1"[..], &b""[..]]);
        assert_eq!(peeked(buf, 1), vec![&b"k1"[..]]);
    }

    #[test]
    fn peek_keys_stops_quietly_at_anything_unexpected() {
        let stops: &[&[u8]] = &[
            b"PING k\r\n",
            b"*2\r\n$4\r\nHLEN\r\n$-1\r\n",
            b"*2\r\n$4\r\nHLEN\r\n$99999999999999999999\r\n",
            b"*2\r\n$4\r\nHLEN\r\n$9223372036854775807\r\nk\r\n",
            b"*0\r\n*2\r\n$4\r\nHLEN\r\n$1\r\nk\r\n",
            b"*100\r\n$4\r\nHLEN\r\n$1\r\nk\r\n",
            b"*2\r\n$4\r\nHLEN\r\n:1\r\n",
            b"*2\n$4\r\nHLEN\r\n$1\r\nk\r\n",
            b"*2\r\n$4\r\nHLEN\r\n$1\r\nk",
            b"*2\r\n$4\r\nHLEN\r\n$\r\nk\r\n",
            b"*2\r\n$4\r\nHLEN\r\n$1 \r\nk\r\n",
            b"*2\r\n$4\r\nHLEN\r\n$1\r",
            b"*2\r\n$4\r\nHLEN\r\n$1",
            b"*2\r\n$4\r\nHLEN\r\n$999999999999999999\r\nk\r\n",
            b"",
        ];
        for buf in stops {
            assert!(
                peeked(buf, 16).is_empty(),
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    const OPEN: ParseLimits = ParseLimits {
        max_bulk_len: 512 * 1024 * 1024,
        unauthenticated: false,
    };

    fn args(p: &RequestParser, buf: &[u8], src: ArgSource) -> Vec<Vec<u8>> {
        let base = match src {
            ArgSource::ReadBuffer => buf,
            ArgSource::InlineBuffer => &p.inline_buf[..],
        };
        p.spans.iter().map(|&(s, e)| base[s..e].to_vec()).collect()
    }

    fn parse_one(input: &[u8]) -> Result<(Parsed, Vec<Vec<u8>>), ProtocolError> {
        let mut p = RequestParser::new();
        let r = p.parse(input, OPEN)?;
        let a = match r {
            Parsed::Request { source, .. } => args(&p, input, source),
            _ => vec![],
        };
        Ok((r, a))
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-",
            b"1a",
            b"000000000000000000001",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn multibulk_complete_and_partial() {
        let full = b"*2\r\n$4\r\nHGET\r\n$1\r\nk\r\n";
        let (r, a) = parse_one(full).unwrap();
        assert_eq!(
            r,
            Parsed::Request {
                consumed: full.len(),
                source: ArgSource::ReadBuffer
            }
        );
        assert_eq!(a, vec![b"HGET".to_vec(), b"k".to_vec()]);
        for cut in 0..full.len() {
            let mut p = RequestParser::new();
            assert_eq!(
                p.parse(&full[..cut], OPEN).unwrap(),
                Parsed::Incomplete,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn a_request_arriving_in_pieces_resumes_where_it_stopped() {
        let full = b"*3\r\n$4\r\nHSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n*1\r\n$4\r\nPING\r\n";
        let first_len = full.len() - 14;
        for step in [1, 2, 3, 7] {
            let mut p = RequestParser::new();
            let mut end = 0;
            let consumed = loop {
                end = (end + step).min(first_len);
                match p.parse(&full[..end], OPEN).unwrap() {
                    Parsed::Incomplete => continue,
                    Parsed::Request { consumed, .. } => break consumed,
                    other => panic!("{other:?}"),
                }
            };
            assert_eq!(consumed, first_len, "step {step}");
            assert_eq!(
                args(&p, full, ArgSource::ReadBuffer),
                vec![b"HSET".to_vec(), b"k".to_vec(), b"0123456789".to_vec()]
            );
            // The next request starts afresh at the front of the remaining bytes.
            let rest = &full[consumed..];
            assert!(matches!(
                p.parse(rest, OPEN).unwrap(),
                Parsed::Request { consumed: 14, .. }
            ));
            assert_eq!(
                args(&p, rest, ArgSource::ReadBuffer),
                vec![b"PING".to_vec()]
            );
        }
    }

    #[test]
    fn trailing_bytes_after_payload_are_not_checked() {
        let (r, a) = parse_one(b"*1\r\n$4\r\nPINGxx").unwrap();
        assert!(matches!(r, Parsed::Request { consumed: 14, .. }));
        assert_eq!(a, vec![b"PING".to_vec()]);
    }

    #[test]
    fn empty_and_negative_counts_are_ignored() {
        assert_eq!(
            parse_one(b"*0\r\n").unwrap().0,
            Parsed::Ignored { consumed: 4 }
        );
        assert_eq!(
            parse_one(b"*-1\r\n").unwrap().0,
            Parsed::Ignored { consumed: 5 }
        );
    }

    #[test]
    fn multibulk_errors() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*x\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*2147483648\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\r\n$-1\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$abc\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$536870913\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n:1\r\n", ProtocolError::ExpectedDollar(b':')),
        ];
        for (input, want) in cases {
            assert_eq!(parse_one(input).unwrap_err(), *want);
        }
        let long = [b"*".as_slice(), &[b'1'; PROTO_INLINE_MAX_SIZE + 1]].concat();
        assert_eq!(
            parse_one(&long).unwrap_err(),
            ProtocolError::TooBigMbulkCount
        );
        let long = [b"*1\r\n$".as_slice(), &[b'1'; PROTO_INLINE_MAX_SIZE + 1]].concat();
        assert_eq!(
            parse_one(&long).unwrap_err(),
            ProtocolError::TooBigBulkCount
        );
    }

    #[test]
    fn unauthenticated_limits() {
        let mut p = RequestParser::new();
        let lim = ParseLimits {
            unauthenticated: true,
            ..OPEN
        };
        assert_eq!(
            p.parse(b"*11\r\n", lim).unwrap_err(),
            ProtocolError::UnauthenticatedMultibulkLength
        );
        assert_eq!(
            p.parse(b"*1\r\n$16385\r\n", lim).unwrap_err(),
            ProtocolError::UnauthenticatedBulkLength
        );
        assert_eq!(
            p.parse(b"*1\r\n$16384\r\n", lim).unwrap(),
            Parsed::Incomplete
        );
    }

    #[test]
    fn inline_splitting() {
        let (r, a) = parse_one(b"HSET k \"a b\" 'c\\'d'\r\n").unwrap();
        assert!(matches!(r, Parsed::Request { consumed: 21, .. }));
        assert_eq!(
            a,
            vec![
                b"HSET".to_vec(),
                b"k".to_vec(),
                b"a b".to_vec(),
                b"c'd".to_vec()
            ]
        );
        let (_, a) = parse_one(b"set \"\\x41\\n\\t\\\\\" x\n").unwrap();
        assert_eq!(a[1], b"A\n\t\\".to_vec());
        assert_eq!(
            parse_one(b"   \r\n").unwrap().0,
            Parsed::Ignored { consumed: 5 }
        );
        assert_eq!(parse_one(b"\n").unwrap().0, Parsed::Ignored { consumed: 1 });
        assert_eq!(parse_one(b"PING").unwrap().0, Parsed::Incomplete);
        let (_, a) = parse_one(b"echo \"\"\n").unwrap();
        assert_eq!(a, vec![b"echo".to_vec(), vec![]]);
    }

    #[test]
    fn inline_errors() {
        for bad in [
            &b"HSET \"abc\n"[..],
            b"HSET 'abc\n",
            b"HSET \"a\"b\n",
            b"HSET 'a'b\n",
        ] {
            assert_eq!(parse_one(bad).unwrap_err(), ProtocolError::UnbalancedQuotes);
        }
        let long = vec![b'a'; PROTO_INLINE_MAX_SIZE + 1];
        assert_eq!(parse_one(&long).unwrap_err(), ProtocolError::TooBigInline);
    }

    #[test]
    fn an_inline_line_over_64k_is_refused_even_with_its_newline() {
        // Exactly 64 KiB before the newline is served.
        let mut line = vec![b'a'; PROTO_INLINE_MAX_SIZE];
        line.push(b'\n');
        assert!(matches!(
            parse_one(&line).unwrap().0,
            Parsed::Request { consumed, .. } if consumed == PROTO_INLINE_MAX_SIZE + 1
        ));
        // One byte more (here the `\r`) is refused, however the bytes arrived.
        let mut line = vec![b'a'; PROTO_INLINE_MAX_SIZE];
        line.extend_from_slice(b"\r\n");
        assert_eq!(parse_one(&line).unwrap_err(), ProtocolError::TooBigInline);
        let mut line = b"ECHO ".to_vec();
        line.extend(std::iter::repeat_n(b'a', 200_000));
        line.extend_from_slice(b"\r\nPING\r\n");
        assert_eq!(parse_one(&line).unwrap_err(), ProtocolError::TooBigInline);
    }

    #[test]
    fn a_nul_byte_hides_the_line_end_as_strchr_does() {
        // Inline: no answer until more than 64 KiB are buffered, then refused.
        for input in [&b"PING a\0b\r\n"[..], b"\0PING\r\n", b"PING\0\n"] {
            assert_eq!(parse_one(input).unwrap().0, Parsed::Incomplete);
            let mut more = input.to_vec();
            more.resize(PROTO_INLINE_MAX_SIZE, b'x');
            assert_eq!(parse_one(&more).unwrap().0, Parsed::Incomplete);
            more.push(b'\n');
            assert_eq!(parse_one(&more).unwrap_err(), ProtocolError::TooBigInline);
        }
        // A NUL after the newline belongs to the next request.
        let (r, a) = parse_one(b"PING\r\nPING\0\r\n").unwrap();
        assert!(matches!(r, Parsed::Request { consumed: 6, .. }));
        assert_eq!(a, vec![b"PING".to_vec()]);
        // Count and length lines: the same, with their own errors.
        assert_eq!(
            parse_one(b"*1\0\r\n$4\r\nPING\r\n").unwrap().0,
            Parsed::Incomplete
        );
        assert_eq!(
            parse_one(b"*1\r\n$4\0\r\nPING\r\n").unwrap().0,
            Parsed::Incomplete
        );
        let mut count = b"*1\0\r\n".to_vec();
        count.resize(PROTO_INLINE_MAX_SIZE + 1, b'x');
        assert_eq!(
            parse_one(&count).unwrap_err(),
            ProtocolError::TooBigMbulkCount
        );
        let mut bulk = b"*1\r\n$4\0\r\n".to_vec();
        bulk.resize(PROTO_INLINE_MAX_SIZE + 5, b'x');
        assert_eq!(
            parse_one(&bulk).unwrap_err(),
            ProtocolError::TooBigBulkCount
        );
        // In a bulk payload a NUL is data.
        let (_, a) = parse_one(b"*1\r\n$4\r\nPI\0G\r\n").unwrap();
        assert_eq!(a, vec![b"PI\0G".to_vec()]);
    }
}
