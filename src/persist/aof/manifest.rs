//! The AOF manifest (`<appendfilename>.manifest`) and the names of the files it lists.
//!
//! Parsing follows Redis's `aofLoadManifestFromFile` step by step, so hashd accepts and
//! refuses exactly the manifests Redis does, with Redis's error texts:
//!
//! * lines are read as `fgets` into a 1025-byte buffer would: a line (with its `\n`) longer
//!   than 1024 bytes, or a last line without `\n`, is "contains too long line";
//! * a line starting with `#` is a comment; a blank line is an error;
//! * a line is split with `sdssplitargs` (quotes, `\xHH` and `\n`-style escapes), must hold an
//!   even number ≥ 6 of words, and is `key value` pairs: `file`, `seq`, `type` in any order and
//!   any case, unknown keys ignored, a repeated key's last value kept;
//! * `seq` is read with `atoll` (0 or no digits means missing), `type` is the value's first
//!   byte (`b`, `h` or `i`), a name holding `/` or `\` is refused;
//! * at most one base (anywhere in the file), incr sequence numbers strictly increasing.
//!
//! Differences, because [`ManifestEntry`] is `String` + `u64`: a name that is not UTF-8 and a
//! negative sequence number on a base or history line are "Invalid AOF manifest file format"
//! (Redis would accept them; it never writes either).
//!
//! Writing is `getAofManifestAsString`: base, then history, then incr files, one
//! `file <name> seq <n> type <c>\n` line each, the name quoted as `sdscatrepr` does when
//! `sdsneedsrepr` says so.

use std::fmt;

/// Redis's `MANIFEST_MAX_LINE`.
pub const MANIFEST_MAX_LINE: usize = 1024;

/// What a manifest line says a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `b`: the snapshot of the last rewrite (RDB or commands).
    Base,
    /// `i`: commands since the base, in order.
    Incr,
    /// `h`: a file replaced by a rewrite, to be deleted.
    History,
}

impl FileKind {
    /// The manifest's type letter.
    pub fn letter(self) -> u8 {
        match self {
            FileKind::Base => b'b',
            FileKind::Incr => b'i',
            FileKind::History => b'h',
        }
    }

    fn from_letter(c: u8) -> Option<Self> {
        match c {
            b'b' => Some(FileKind::Base),
            b'i' => Some(FileKind::Incr),
            b'h' => Some(FileKind::History),
            _ => None,
        }
    }
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// A file name inside the AOF directory (never a path).
    pub name: String,
    pub seq: u64,
    pub kind: FileKind,
}

/// The manifest, classified as Redis keeps it (`aofManifest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<ManifestEntry>,
    /// History files, in manifest order.
    pub history: Vec<ManifestEntry>,
    /// Incr files, in load order (strictly increasing `seq`).
    pub incrs: Vec<ManifestEntry>,
    /// `curr_base_file_seq`: the last base's sequence number (the next base gets one more).
    pub curr_base_seq: u64,
    /// `curr_incr_file_seq`: the last incr's sequence number (the next incr gets one more).
    pub curr_incr_seq: u64,
}

/// Which of Redis's manifest errors (the `Display` texts are Redis's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestErrorKind {
    /// "Found an empty AOF manifest"
    Empty,
    /// "The AOF manifest file contains too long line"
    LineTooLong,
    /// "Invalid AOF manifest file format": blank line, bad quoting, fewer than 6 or an odd
    /// number of words, a missing `file`/`seq`/`type`.
    InvalidFormat,
    /// "File can't be a path, just a filename"
    NotABaseName,
    /// "Found duplicate base file information"
    DuplicateBase,
    /// "Found a non-monotonic sequence number"
    NonMonotonicSeq,
    /// "Unknown AOF file type"
    UnknownType,
}

impl ManifestErrorKind {
    /// Redis's text for it.
    pub fn text(self) -> &'static str {
        match self {
            ManifestErrorKind::Empty => "Found an empty AOF manifest",
            ManifestErrorKind::LineTooLong => "The AOF manifest file contains too long line",
            ManifestErrorKind::InvalidFormat => "Invalid AOF manifest file format",
            ManifestErrorKind::NotABaseName => "File can't be a path, just a filename",
            ManifestErrorKind::DuplicateBase => "Found duplicate base file information",
            ManifestErrorKind::NonMonotonicSeq => "Found a non-monotonic sequence number",
            ManifestErrorKind::UnknownType => "Unknown AOF file type",
        }
    }
}

/// A manifest Redis would refuse: what, at which line (1-based, comments counted, as Redis
/// counts), and the line (trimmed, lossy UTF-8) when Redis would print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub kind: ManifestErrorKind,
    pub line_number: usize,
    pub line: Option<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.line {
            Some(line) => write!(
                f,
                "{} (manifest line {}: '{}')",
                self.kind.text(),
                self.line_number,
                line
            ),
            None => f.write_str(self.kind.text()),
        }
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// Parses a manifest's bytes as `aofLoadManifestFromFile` does.
    pub fn parse(data: &[u8]) -> Result<Manifest, ManifestError> {
        let mut am = Manifest::default();
        let mut maxseq: i64 = 0;
        let mut pos = 0;
        let mut linenum = 0usize;
        loop {
            if pos >= data.len() {
                if linenum == 0 {
                    return Err(ManifestError {
                        kind: ManifestErrorKind::Empty,
                        line_number: 0,
                        line: None,
                    });
                }
                break;
            }
            // fgets(buf, MANIFEST_MAX_LINE + 1): at most 1024 bytes, through the first '\n'.
            let window = &data[pos..data.len().min(pos + MANIFEST_MAX_LINE)];
            let chunk = match window.iter().position(|&b| b == b'\n') {
                Some(i) => &window[..=i],
                None => window,
            };
            pos += chunk.len();
            linenum += 1;
            if chunk[0] == b'#' {
                continue;
            }
            // From here on the buffer is a C string.
            let cstr = until_nul(chunk);
            let err = |kind, line: Option<&[u8]>| ManifestError {
                kind,
                line_number: linenum,
                line: line.map(|l| String::from_utf8_lossy(l).into_owned()),
            };
            if !cstr.contains(&b'\n') {
                return Err(err(ManifestErrorKind::LineTooLong, None));
            }
            let line = trim(cstr, b" \t\r\n");
            if line.is_empty() {
                return Err(err(ManifestErrorKind::InvalidFormat, Some(line)));
            }
            let invalid = || err(ManifestErrorKind::InvalidFormat, Some(line));
            let argv = split_args(line).ok_or_else(invalid)?;
            if argv.len() < 6 || argv.len() % 2 != 0 {
                return Err(invalid());
            }
            let mut name: Option<&[u8]> = None;
            let mut seq: i64 = 0;
            let mut kind_letter: u8 = 0;
            for pair in argv.chunks_exact(2) {
                let key = until_nul(&pair[0]);
                let value = until_nul(&pair[1]);
                if key.eq_ignore_ascii_case(b"file") {
                    if value.contains(&b'/') || value.contains(&b'\\') {
                        return Err(err(ManifestErrorKind::NotABaseName, Some(line)));
                    }
                    name = Some(value);
                } else if key.eq_ignore_ascii_case(b"seq") {
                    seq = atoll(value);
                } else if key.eq_ignore_ascii_case(b"type") {
                    kind_letter = value.first().copied().unwrap_or(0);
                }
            }
            let (Some(name), true, true) = (name, seq != 0, kind_letter != 0) else {
                return Err(invalid());
            };
            let name = std::str::from_utf8(name).map_err(|_| invalid())?.to_owned();
            match FileKind::from_letter(kind_letter) {
                Some(FileKind::Base) => {
                    if am.base.is_some() {
                        return Err(err(ManifestErrorKind::DuplicateBase, Some(line)));
                    }
                    let seq = u64::try_from(seq).map_err(|_| invalid())?;
                    am.base = Some(ManifestEntry {
                        name,
                        seq,
                        kind: FileKind::Base,
                    });
                    am.curr_base_seq = seq;
                }
                Some(FileKind::History) => {
                    let seq = u64::try_from(seq).map_err(|_| invalid())?;
                    am.history.push(ManifestEntry {
                        name,
                        seq,
                        kind: FileKind::History,
                    });
                }
                Some(FileKind::Incr) => {
                    if seq <= maxseq {
                        return Err(err(ManifestErrorKind::NonMonotonicSeq, Some(line)));
                    }
                    maxseq = seq;
                    // seq > maxseq ≥ 0
                    let seq = seq as u64;
                    am.incrs.push(ManifestEntry {
                        name,
                        seq,
                        kind: FileKind::Incr,
                    });
                    am.curr_incr_seq = seq;
                }
                None => return Err(err(ManifestErrorKind::UnknownType, Some(line))),
            }
        }
        Ok(am)
    }

    /// The manifest as Redis writes it (`getAofManifestAsString`): base, history, incrs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in self
            .base
            .iter()
            .chain(self.history.iter())
            .chain(self.incrs.iter())
        {
            write_entry(&mut out, e);
        }
        out
    }

    /// The files to load, in order: the base (if any), then the incr files.
    pub fn files_to_load(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.base.iter().chain(self.incrs.iter())
    }

    /// `getNewBaseFileNameAndMarkPreAsHistory`: the previous base becomes the first history
    /// file and a new base named from `appendfilename` takes the next base sequence number.
    /// Returns the new base's name.
    pub fn new_base(&mut self, appendfilename: &str, rdb: bool) -> &str {
        if let Some(mut old) = self.base.take() {
            old.kind = FileKind::History;
            self.history.insert(0, old);
        }
        self.curr_base_seq += 1;
        let entry = self.base.insert(ManifestEntry {
            name: base_file_name(appendfilename, self.curr_base_seq, rdb),
            seq: self.curr_base_seq,
            kind: FileKind::Base,
        });
        &entry.name
    }

    /// `getNewIncrAofName`: appends an incr file with the next incr sequence number.
    pub fn new_incr(&mut self, appendfilename: &str) -> &str {
        self.curr_incr_seq += 1;
        self.incrs.push(ManifestEntry {
            name: incr_file_name(appendfilename, self.curr_incr_seq),
            seq: self.curr_incr_seq,
            kind: FileKind::Incr,
        });
        let last = self.incrs.len() - 1;
        &self.incrs[last].name
    }

    /// `markRewrittenIncrAofAsHistory`: after a rewrite, every incr file becomes history
    /// (placed before the existing history, order kept), except the last one when
    /// `keep_last` (AOF on: it is the file being appended to).
    pub fn mark_rewritten_incrs_as_history(&mut self, keep_last: bool) {
        let keep = usize::from(keep_last && !self.incrs.is_empty());
        let moved: Vec<ManifestEntry> = self
            .incrs
            .drain(..self.incrs.len() - keep)
            .map(|mut e| {
                e.kind = FileKind::History;
                e
            })
            .collect();
        self.history.splice(0..0, moved);
    }
}

fn write_entry(out: &mut Vec<u8>, e: &ManifestEntry) {
    out.extend_from_slice(b"file ");
    let name = e.name.as_bytes();
    if needs_repr(name) {
        cat_repr(out, name);
    } else {
        out.extend_from_slice(name);
    }
    out.extend_from_slice(b" seq ");
    out.extend_from_slice(itoa::Buffer::new().format(e.seq).as_bytes());
    out.extend_from_slice(b" type ");
    out.push(e.kind.letter());
    out.push(b'\n');
}

/// `<appendfilename>.<seq>.base.rdb` or `.base.aof`.
pub fn base_file_name(appendfilename: &str, seq: u64, rdb: bool) -> String {
    let suffix = if rdb { ".rdb" } else { ".aof" };
    format!("{appendfilename}.{seq}.base{suffix}")
}

/// `<appendfilename>.<seq>.incr.aof`.
pub fn incr_file_name(appendfilename: &str, seq: u64) -> String {
    format!("{appendfilename}.{seq}.incr.aof")
}

/// `<appendfilename>.manifest`.
pub fn manifest_file_name(appendfilename: &str) -> String {
    format!("{appendfilename}.manifest")
}

/// `temp-<appendfilename>.manifest`: written, fsynced, then renamed over the manifest.
pub fn temp_manifest_file_name(appendfilename: &str) -> String {
    format!("temp-{appendfilename}.manifest")
}

/// `temp-<appendfilename>.incr`: the incr file opened while a rewrite runs with AOF off
/// (`getTempIncrAofName`).
pub fn temp_incr_file_name(appendfilename: &str) -> String {
    format!("temp-{appendfilename}.incr")
}

/// `temp-rewriteaof-bg-<pid>.aof`: the base a rewrite child writes before the rename.
pub fn temp_rewrite_file_name(pid: u32) -> String {
    format!("temp-rewriteaof-bg-{pid}.aof")
}

fn until_nul(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

fn trim<'a>(mut s: &'a [u8], set: &[u8]) -> &'a [u8] {
    while let [first, rest @ ..] = s {
        if !set.contains(first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !set.contains(last) {
            break;
        }
        s = rest;
    }
    s
}

/// C's `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C's `isprint` in the C locale.
fn is_print(b: u8) -> bool {
    (0x20..=0x7e).contains(&b)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Redis's `sdssplitargs` on a C string (`line` holds no NUL): `None` for unbalanced quotes
/// or a closing quote followed by something other than a space.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut p = 0;
    let mut out = Vec::new();
    loop {
        while at(p) != 0 && is_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Some(out);
        }
        let mut current = Vec::new();
        let (mut inq, mut insq, mut done) = (false, false, false);
        while !done {
            let c = at(p);
            if inq {
                if c == b'\\' && at(p + 1) == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(at(p + 2)), hex_val(at(p + 3))) {
                        current.push(h * 16 + l);
                        p += 3;
                        p += 1;
                        continue;
                    }
                }
                if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    other => current.push(other),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        out.push(current);
    }
}

/// `atoll` (as glibc's `strtoll`: saturating).
fn atoll(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(d @ b'0'..=b'9') = s.get(i).copied() {
        let d = i64::from(d - b'0');
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
        i += 1;
    }
    v
}

/// `sdsneedsrepr`.
pub fn needs_repr(s: &[u8]) -> bool {
    s.iter().any(|&b| {
        matches!(b, b'\\' | b'"' | b'\n' | b'\r' | b'\t' | 0x07 | 0x08)
            || !is_print(b)
            || is_space(b)
    })
}

/// `sdscatrepr`: `s` in double quotes with C-style escapes.
pub fn cat_repr(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            b if is_print(b) => out.push(b),
            b => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &[u8]) -> ManifestErrorKind {
        Manifest::parse(text).unwrap_err().kind
    }

    #[test]
    fn parses_what_redis_writes() {
        let text = b"file appendonly.aof.2.base.rdb seq 2 type b\n\
                     file appendonly.aof.1.incr.aof seq 1 type h\n\
                     file appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.2.base.rdb");
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.incrs[0].seq, 2);
        assert_eq!((m.curr_base_seq, m.curr_incr_seq), (2, 2));
        assert_eq!(m.to_bytes(), text);
    }

    #[test]
    fn keys_in_any_order_and_case_unknown_ignored() {
        let m = Manifest::parse(b"TYPE i Seq 7 x y FILE a.aof\n# comment\n").unwrap();
        assert_eq!(
            m.incrs,
            vec![ManifestEntry {
                name: "a.aof".into(),
                seq: 7,
                kind: FileKind::Incr
            }]
        );
        // The type is the value's first byte; seq is atoll.
        let m = Manifest::parse(b"file b seq 3xyz type base\n").unwrap();
        assert_eq!(m.base.unwrap().seq, 3);
    }

    #[test]
    fn quoted_names_round_trip() {
        for name in ["has space", "tab\there", "quote\"d", "ctl\x01\x7f", "é"] {
            let m = Manifest {
                base: Some(ManifestEntry {
                    name: name.into(),
                    seq: 1,
                    kind: FileKind::Base,
                }),
                ..Manifest::default()
            };
            let bytes = m.to_bytes();
            let back = Manifest::parse(&bytes).unwrap();
            assert_eq!(
                back.base.unwrap().name,
                name,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let mut out = Vec::new();
        cat_repr(&mut out, b"a b\n\"\\\x00\xff");
        assert_eq!(out, b"\"a b\\n\\\"\\\\\\x00\\xff\"");
    }

    #[test]
    fn split_args_like_sds() {
        assert_eq!(
            split_args(b"  a \"b c\" 'd\\'e' \"\\x41\\n\"").unwrap(),
            vec![
                b"a".to_vec(),
                b"b c".to_vec(),
                b"d'e".to_vec(),
                b"A\n".to_vec()
            ]
        );
        assert!(split_args(b"\"unterminated").is_none());
        assert!(split_args(b"\"a\"b").is_none());
        assert!(split_args(b"'a'b").is_none());
        assert_eq!(split_args(b"x\"y z\"").unwrap(), vec![b"xy z".to_vec()]);
    }

    #[test]
    fn errors() {
        assert_eq!(kind(b""), ManifestErrorKind::Empty);
        assert_eq!(kind(b"\n"), ManifestErrorKind::InvalidFormat);
        assert_eq!(kind(b"file a seq 1 type b"), ManifestErrorKind::LineTooLong);
        assert_eq!(
            kind(b"file a/b seq 1 type b\n"),
            ManifestErrorKind::NotABaseName
        );
        assert_eq!(
            kind(b"file a seq 0 type b\n"),
            ManifestErrorKind::InvalidFormat
        );
        assert_eq!(
            kind(b"file a seq 1 type \"\"\n"),
            ManifestErrorKind::InvalidFormat
        );
        assert_eq!(
            kind(b"file a seq -1 type i\n"),
            ManifestErrorKind::NonMonotonicSeq
        );
        assert_eq!(
            kind(b"file \"a seq 1 type i\n"),
            ManifestErrorKind::InvalidFormat
        );
        // A line of exactly 1024 bytes with its newline is fine; one more is too long.
        let mut line = b"file a seq 1 type i ".to_vec();
        line.resize(MANIFEST_MAX_LINE - 1, b' ');
        line.push(b'\n');
        assert!(Manifest::parse(&line).is_ok());
        line.insert(0, b' ');
        assert_eq!(kind(&line), ManifestErrorKind::LineTooLong);
        // Only comments: not empty, no files.
        assert_eq!(
            Manifest::parse(b"# nothing\n").unwrap(),
            Manifest::default()
        );
    }

    #[test]
    fn rewrite_bookkeeping() {
        let mut m = Manifest::parse(
            b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
        )
        .unwrap();
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.2.incr.aof");
        assert_eq!(
            m.new_base("appendonly.aof", false),
            "appendonly.aof.2.base.aof"
        );
        m.mark_rewritten_incrs_as_history(true);
        assert_eq!(
            String::from_utf8(m.to_bytes()).unwrap(),
            "file appendonly.aof.2.base.aof seq 2 type b\n\
             file appendonly.aof.1.incr.aof seq 1 type h\n\
             file appendonly.aof.1.base.rdb seq 1 type h\n\
             file appendonly.aof.2.incr.aof seq 2 type i\n"
        );
        assert_eq!(temp_manifest_file_name("x"), "temp-x.manifest");
        assert_eq!(
            manifest_file_name("appendonly.aof"),
            "appendonly.aof.manifest"
        );
    }
}
