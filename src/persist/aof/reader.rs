//! Reading the command form of an AOF file: what `loadSingleAppendOnlyFile` parses.
//!
//! A file is a sequence of RESP arrays of bulk strings (`*<n>\r\n` then `n` times
//! `$<len>\r\n<bytes>\r\n`), with `#…\r\n` annotation lines (`#TS:<unix-seconds>`, from
//! `aof-timestamp-enabled`) between commands. [`AofReader`] yields the commands one at a
//! time and ends with an [`AofEnd`]:
//!
//! * [`AofEnd::Clean`]: the input ended on a command boundary, outside `MULTI`;
//! * [`AofEnd::Truncated`]: the input ended inside a command ([`TruncateReason::ShortRead`]) or
//!   after a `MULTI` without its `EXEC`/`DISCARD` ([`TruncateReason::UnfinishedMulti`], Redis's
//!   "Revert incomplete MULTI/EXEC transaction"). `valid_up_to` is where to truncate the file
//!   (`aof-load-truncated yes`): the end of the last complete command, or the offset of the
//!   open `MULTI`. Commands read after that `MULTI` were yielded (a caller queues them until
//!   `EXEC`, as Redis's fake client does) and must be dropped.
//!
//! Anything else (a line not starting with `*`, a bad count or length, a payload not
//! followed by `\r\n`) is an [`AofError::Format`] naming the offset of the bad line.
//!
//! Where hashd differs from Redis's loader, it is on the safe side: CRLF is checked where
//! Redis skips two bytes unseen (as `redis-check-aof` checks it); a short read inside an
//! open `MULTI` truncates at the `MULTI` (Redis truncates inside the transaction, leaving a
//! `MULTI` that would swallow later appends); an incomplete annotation line at the end is a
//! truncation (Redis ignores it, and the next append would be glued to it). Offsets after
//! an RDB preamble count from the start of the file.
//!
//! Memory: argument buffers are reused from command to command, and a declared length only
//! reserves what has arrived (a lying `$9999999999` costs nothing until the bytes exist).

use std::io::{self, ErrorKind, Read};

use thiserror::Error;

use crate::persist::rdb::RdbReader;

const BUF_BYTES: usize = 64 * 1024;
/// Redis's `AOF_ANNOTATION_LINE_MAX_LEN`: `fgets` reads at most 1023 bytes of a line.
const MAX_LINE: usize = 1023;
/// Arguments reserved up front, whatever the declared count.
const MAX_PREALLOC_ARGS: usize = 1024;
/// Bytes reserved up front for one argument, whatever its declared length.
const MAX_PREALLOC_ARG: usize = 64 * 1024;

/// Why an AOF file could not be read.
#[derive(Debug, Error)]
pub enum AofError {
    #[error("I/O error reading the AOF at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// Garbage: Redis's "Bad file format reading the append only file".
    #[error("bad AOF format at byte {offset}: {what}")]
    Format { offset: u64, what: String },
}

impl AofError {
    pub fn offset(&self) -> u64 {
        match self {
            AofError::Io { offset, .. } | AofError::Format { offset, .. } => *offset,
        }
    }
}

/// Why a file's tail is to be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncateReason {
    /// The input ended inside a command (or an annotation line).
    ShortRead,
    /// A `MULTI` was never closed by `EXEC` or `DISCARD`.
    UnfinishedMulti,
}

/// How the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AofEnd {
    Clean,
    Truncated {
        /// Truncate the file to this many bytes.
        valid_up_to: u64,
        /// Bytes the input held.
        len: u64,
        reason: TruncateReason,
    },
}

/// One step of [`AofReader::next_item`].
#[derive(Debug, PartialEq, Eq)]
pub enum AofItem<'a> {
    /// A command's arguments (`argv[0]` is the name, as written: any case).
    Command(&'a [Vec<u8>]),
    /// The end; every later call returns it again.
    End(AofEnd),
}

enum Line {
    /// A complete line, `\r\n` stripped, in `self.line`.
    Ok,
    /// End of input before any byte.
    Eof,
    /// End of input inside the line.
    Partial,
}

/// Streaming reader of an AOF's command form. It buffers internally (64 KiB).
pub struct AofReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Absolute offset of `buf[0]`.
    base: u64,
    line: Vec<u8>,
    args: Vec<Vec<u8>>,
    argc: usize,
    valid_up_to: u64,
    command_offset: u64,
    multi_start: Option<u64>,
    last_timestamp: Option<u64>,
    commands: u64,
    finished: Option<AofEnd>,
    failed: bool,
}

impl<R: Read> AofReader<R> {
    /// A reader of a file from its first byte.
    pub fn new(inner: R) -> Self {
        Self::with_buffered(inner, Vec::new(), 0)
    }

    /// A reader whose input starts with `buffered` (bytes already taken from `inner`), the
    /// first of which is at absolute offset `offset`: the tail after an RDB preamble.
    pub fn with_buffered(inner: R, buffered: Vec<u8>, offset: u64) -> Self {
        let mut buf = buffered;
        let end = buf.len();
        if buf.len() < BUF_BYTES {
            buf.resize(BUF_BYTES, 0);
        }
        AofReader {
            inner,
            buf: buf.into_boxed_slice(),
            pos: 0,
            end,
            base: offset,
            line: Vec::new(),
            args: Vec::new(),
            argc: 0,
            valid_up_to: offset,
            command_offset: offset,
            multi_start: None,
            last_timestamp: None,
            commands: 0,
            finished: None,
            failed: false,
        }
    }

    /// Bytes consumed so far (absolute offset in the file).
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Offset of the last command returned.
    pub fn command_offset(&self) -> u64 {
        self.command_offset
    }

    /// The end of the last complete command (where a truncation would cut now).
    pub fn valid_up_to(&self) -> u64 {
        self.valid_up_to
    }

    /// Whether a `MULTI` is open.
    pub fn in_multi(&self) -> bool {
        self.multi_start.is_some()
    }

    /// The last `#TS:<secs>` annotation seen.
    pub fn last_timestamp(&self) -> Option<u64> {
        self.last_timestamp
    }

    /// Commands returned so far.
    pub fn commands_read(&self) -> u64 {
        self.commands
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next command, or the end. After an error every call fails. (Not an `Iterator`:
    /// the command borrows the reader's reused buffers.)
    pub fn next_item(&mut self) -> Result<AofItem<'_>, AofError> {
        if self.failed {
            return Err(self.format(self.offset(), "the reader already failed"));
        }
        if let Some(end) = self.finished {
            return Ok(AofItem::End(end));
        }
        match self.read_command() {
            Ok(true) => Ok(AofItem::Command(&self.args[..self.argc])),
            Ok(false) => Ok(AofItem::End(self.finished.unwrap_or(AofEnd::Clean))),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// The next command as owned arguments; `Ok(None)` at the end (see [`Self::end`]).
    pub fn next_owned(&mut self) -> Result<Option<Vec<Vec<u8>>>, AofError> {
        Ok(match self.next_item()? {
            AofItem::Command(argv) => Some(argv.to_vec()),
            AofItem::End(_) => None,
        })
    }

    /// How the input ended, once [`Self::next_item`] has returned [`AofItem::End`].
    pub fn end(&self) -> Option<AofEnd> {
        self.finished
    }

    fn format(&self, offset: u64, what: impl Into<String>) -> AofError {
        AofError::Format {
            offset,
            what: what.into(),
        }
    }

    fn finish(&mut self, short_read: bool) {
        let len = self.offset();
        self.finished = Some(match (self.multi_start, short_read) {
            (None, false) => AofEnd::Clean,
            (None, true) => AofEnd::Truncated {
                valid_up_to: self.valid_up_to,
                len,
                reason: TruncateReason::ShortRead,
            },
            (Some(m), short) => AofEnd::Truncated {
                valid_up_to: m,
                len,
                reason: if short {
                    TruncateReason::ShortRead
                } else {
                    TruncateReason::UnfinishedMulti
                },
            },
        });
    }

    /// `true` with a command in `args[..argc]`; `false` at the end (`finished` set).
    fn read_command(&mut self) -> Result<bool, AofError> {
        loop {
            let start = self.offset();
            match self.read_line()? {
                Line::Eof => {
                    self.finish(false);
                    return Ok(false);
                }
                Line::Partial => {
                    self.finish(true);
                    return Ok(false);
                }
                Line::Ok => {}
            }
            match self.line.first() {
                Some(b'#') => {
                    if let Some(ts) = self.line.strip_prefix(b"#TS:") {
                        if let Some(t) = parse_decimal(ts) {
                            self.last_timestamp = Some(t);
                        }
                    }
                    continue;
                }
                Some(b'*') => {}
                _ => {
                    return Err(self.format(
                        start,
                        format!(
                            "expected '*' at the start of a command, found {}",
                            crate::persist::rdb::escape_bytes(
                                &self.line[..self.line.len().min(32)]
                            )
                        ),
                    ))
                }
            }
            let argc = match parse_decimal(&self.line[1..]) {
                Some(n) if n >= 1 && n <= i32::MAX as u64 => n as usize,
                _ => {
                    return Err(self.format(
                        start,
                        format!(
                            "invalid argument count {}",
                            crate::persist::rdb::escape_bytes(&self.line[1..])
                        ),
                    ))
                }
            };
            if self.args.len() < argc.min(MAX_PREALLOC_ARGS) {
                self.args.resize_with(argc.min(MAX_PREALLOC_ARGS), Vec::new);
            }
            for j in 0..argc {
                let line_start = self.offset();
                match self.read_line()? {
                    Line::Ok => {}
                    Line::Eof | Line::Partial => {
                        self.finish(true);
                        return Ok(false);
                    }
                }
                if self.line.first() != Some(&b'$') {
                    return Err(self.format(
                        line_start,
                        format!(
                            "expected '$' before argument {} of {argc}, found {}",
                            j + 1,
                            crate::persist::rdb::escape_bytes(
                                &self.line[..self.line.len().min(32)]
                            )
                        ),
                    ));
                }
                let Some(len) = parse_decimal(&self.line[1..]).filter(|&n| n <= i64::MAX as u64)
                else {
                    return Err(self.format(
                        line_start,
                        format!(
                            "invalid bulk length {}",
                            crate::persist::rdb::escape_bytes(&self.line[1..])
                        ),
                    ));
                };
                if j == self.args.len() {
                    self.args.push(Vec::new());
                }
                let mut arg = std::mem::take(&mut self.args[j]);
                arg.clear();
                let complete = self.read_bytes(len, &mut arg);
                self.args[j] = arg;
                if !complete? {
                    self.finish(true);
                    return Ok(false);
                }
                let crlf_at = self.offset();
                let mut crlf = [0u8; 2];
                let mut got = 0;
                while got < 2 {
                    match self.byte()? {
                        Some(b) => crlf[got] = b,
                        None => {
                            self.finish(true);
                            return Ok(false);
                        }
                    }
                    got += 1;
                }
                if &crlf != b"\r\n" {
                    return Err(self.format(crlf_at, "expected \\r\\n after a bulk string"));
                }
            }
            self.argc = argc;
            self.command_offset = start;
            let name = &self.args[0];
            if name.eq_ignore_ascii_case(b"multi") {
                // A nested MULTI (which Redis would refuse) keeps the outer one's offset.
                self.multi_start.get_or_insert(self.valid_up_to);
            } else if name.eq_ignore_ascii_case(b"exec") || name.eq_ignore_ascii_case(b"discard") {
                self.multi_start = None;
            }
            self.valid_up_to = self.offset();
            self.commands += 1;
            return Ok(true);
        }
    }

    /// Refills an exhausted buffer; `false` at end of input.
    fn fill(&mut self) -> Result<bool, AofError> {
        debug_assert_eq!(self.pos, self.end);
        self.base += self.end as u64;
        self.pos = 0;
        self.end = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(AofError::Io {
                        offset: self.offset(),
                        source,
                    })
                }
            }
        }
    }

    fn byte(&mut self) -> Result<Option<u8>, AofError> {
        if self.pos == self.end && !self.fill()? {
            return Ok(None);
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }

    /// One `\r\n`-terminated line into `self.line` (without the terminator).
    fn read_line(&mut self) -> Result<Line, AofError> {
        self.line.clear();
        let start = self.offset();
        loop {
            if self.pos == self.end && !self.fill()? {
                return Ok(if self.line.is_empty() {
                    Line::Eof
                } else {
                    Line::Partial
                });
            }
            let avail = &self.buf[self.pos..self.end];
            let room = MAX_LINE + 1 - self.line.len();
            match memchr::memchr(b'\n', &avail[..avail.len().min(room)]) {
                Some(i) => {
                    self.line.extend_from_slice(&avail[..i]);
                    self.pos += i + 1;
                    if self.line.pop() != Some(b'\r') {
                        return Err(self.format(start, "a line not ended by \\r\\n"));
                    }
                    if self.line.len() + 2 > MAX_LINE {
                        return Err(self.format(start, "a line longer than 1023 bytes"));
                    }
                    return Ok(Line::Ok);
                }
                None => {
                    let n = avail.len().min(room);
                    self.line.extend_from_slice(&avail[..n]);
                    self.pos += n;
                    if self.line.len() > MAX_LINE {
                        return Err(self.format(start, "a line longer than 1023 bytes"));
                    }
                }
            }
        }
    }

    /// `len` bytes into `out`; `false` if the input ends first.
    fn read_bytes(&mut self, len: u64, out: &mut Vec<u8>) -> Result<bool, AofError> {
        let Ok(len) = usize::try_from(len) else {
            // More than the address space: the input cannot hold it; consume what there is.
            while self.pos < self.end || self.fill()? {
                self.pos = self.end;
            }
            return Ok(false);
        };
        out.reserve(len.min(MAX_PREALLOC_ARG));
        while out.len() < len {
            if self.pos == self.end && !self.fill()? {
                return Ok(false);
            }
            let n = (len - out.len()).min(self.end - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
        }
        Ok(true)
    }
}

/// Strict unsigned decimal: digits only, no sign, no spaces, at most 19 digits.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0')))
}

/// A reader with the bytes taken to sniff the format put back in front.
pub type Peeked<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// What kind of file [`open_base`] found.
pub enum Base<R> {
    /// Commands from byte 0 (also an empty file).
    Commands(AofReader<Peeked<R>>),
    /// The file starts with `REDIS`: read it with
    /// [`RdbReader::new`](crate::persist::rdb::RdbReader::new) (with `now_ms: None`: an AOF base
    /// keeps what has expired, as Redis does) from this reader, which yields the file from
    /// byte 0; then [`rdb_tail`] for any commands after the RDB (Redis reads them; a base
    /// Redis writes has none).
    Rdb(Peeked<R>),
}

/// Sniffs a file's first 5 bytes as `loadSingleAppendOnlyFile` does (for a base or, as Redis
/// also allows, any file of the manifest).
pub fn open_base<R: Read>(mut inner: R) -> io::Result<Base<R>> {
    let mut sig = Vec::with_capacity(5);
    (&mut inner).take(5).read_to_end(&mut sig)?;
    let is_rdb = sig == b"REDIS";
    let peeked = io::Cursor::new(sig).chain(inner);
    Ok(if is_rdb {
        Base::Rdb(peeked)
    } else {
        Base::Commands(AofReader::new(peeked))
    })
}

/// The command reader for what follows an RDB that `rdb` has read to its end (offsets keep
/// counting from the start of the file).
pub fn rdb_tail<R: Read>(rdb: RdbReader<R>) -> AofReader<R> {
    let offset = rdb.bytes_read();
    let (inner, rest) = rdb.into_inner();
    AofReader::with_buffered(inner, rest, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8]) -> (Vec<Vec<Vec<u8>>>, Result<AofEnd, AofError>) {
        let mut r = AofReader::new(data);
        let mut cmds = Vec::new();
        loop {
            match r.next_item() {
                Ok(AofItem::Command(a)) => cmds.push(a.to_vec()),
                Ok(AofItem::End(e)) => return (cmds, Ok(e)),
                Err(e) => return (cmds, Err(e)),
            }
        }
    }

    const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

    #[test]
    fn commands_and_annotations() {
        let data = [
            b"#TS:1700000000\r\n".as_slice(),
            PING,
            b"#TS:1700000001\r\n",
            PING,
        ]
        .concat();
        let mut r = AofReader::new(&data[..]);
        assert_eq!(
            r.next_item().unwrap(),
            AofItem::Command(&[b"PING".to_vec()])
        );
        assert_eq!(r.command_offset(), 16);
        assert_eq!(r.last_timestamp(), Some(1_700_000_000));
        assert!(matches!(r.next_item().unwrap(), AofItem::Command(_)));
        assert_eq!(r.last_timestamp(), Some(1_700_000_001));
        assert_eq!(r.next_item().unwrap(), AofItem::End(AofEnd::Clean));
        assert_eq!(r.next_item().unwrap(), AofItem::End(AofEnd::Clean));
    }

    #[test]
    fn empty_and_binary_arguments() {
        let (cmds, end) = read_all(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$2\r\n\r\n\r\n");
        assert_eq!(cmds, vec![vec![b"SET".to_vec(), vec![], b"\r\n".to_vec()]]);
        assert_eq!(end.unwrap(), AofEnd::Clean);
    }

    #[test]
    fn truncation_and_multi() {
        let data = [PING, b"*2\r\n$3\r\nGET\r\n$1\r"].concat();
        let (cmds, end) = read_all(&data);
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            end.unwrap(),
            AofEnd::Truncated {
                valid_up_to: PING.len() as u64,
                len: data.len() as u64,
                reason: TruncateReason::ShortRead
            }
        );
        let data = [PING, b"*1\r\n$5\r\nMULTI\r\n", PING].concat();
        let (cmds, end) = read_all(&data);
        assert_eq!(cmds.len(), 3);
        assert_eq!(
            end.unwrap(),
            AofEnd::Truncated {
                valid_up_to: PING.len() as u64,
                len: data.len() as u64,
                reason: TruncateReason::UnfinishedMulti
            }
        );
        let data = [
            PING,
            b"*1\r\n$5\r\nmulti\r\n",
            PING,
            b"*1\r\n$4\r\nexec\r\n",
        ]
        .concat();
        assert_eq!(read_all(&data).1.unwrap(), AofEnd::Clean);
        // Short read inside MULTI: cut at the MULTI.
        let data = [PING, b"*1\r\n$5\r\nMULTI\r\n", PING, b"*1\r\n"].concat();
        assert!(matches!(
            read_all(&data).1.unwrap(),
            AofEnd::Truncated {
                valid_up_to: 14,
                reason: TruncateReason::ShortRead,
                ..
            }
        ));
        // An unfinished annotation line is a truncation too.
        let data = [PING, b"#TS:17"].concat();
        assert!(matches!(
            read_all(&data).1.unwrap(),
            AofEnd::Truncated {
                valid_up_to: 14,
                ..
            }
        ));
    }

    #[test]
    fn format_errors_carry_offsets() {
        for (tail, at) in [
            (b"+OK\r\n".as_slice(), 14),
            (b"*0\r\n", 14),
            (b"*-1\r\n", 14),
            (b"*x\r\n", 14),
            (b"*1\n", 14),
            (b"*1\r\n:4\r\n", 18),
            (b"*1\r\n$-1\r\n", 18),
            (b"*1\r\n$4\r\nPINGxx", 26),
        ] {
            let data = [PING, tail].concat();
            let (cmds, end) = read_all(&data);
            assert_eq!(cmds.len(), 1);
            let err = end.unwrap_err();
            assert!(matches!(err, AofError::Format { .. }), "{err}");
            assert_eq!(
                err.offset(),
                at,
                "{:?}: {err}",
                String::from_utf8_lossy(tail)
            );
        }
        let long = [PING, &[b'#'; 2000], b"\r\n"].concat();
        assert_eq!(read_all(&long).1.unwrap_err().offset(), 14);
    }

    #[test]
    fn huge_declared_lengths_cost_nothing() {
        let (_, end) = read_all(b"*2147483647\r\n$9223372036854775807\r\nab");
        assert!(matches!(
            end.unwrap(),
            AofEnd::Truncated { valid_up_to: 0, .. }
        ));
        let (_, end) = read_all(b"*99999999999999999999\r\n");
        assert!(end.is_err());
    }

    #[test]
    fn sniffing() {
        match open_base(&b"REDIS0012rest"[..]).unwrap() {
            Base::Rdb(mut r) => {
                let mut all = Vec::new();
                r.read_to_end(&mut all).unwrap();
                assert_eq!(all, b"REDIS0012rest");
            }
            Base::Commands(_) => panic!("not sniffed"),
        }
        for data in [PING, b"", b"RED"] {
            match open_base(data).unwrap() {
                Base::Commands(mut r) => while let AofItem::Command(_) = r.next_item().unwrap() {},
                Base::Rdb(_) => panic!("sniffed"),
            }
        }
    }
}
