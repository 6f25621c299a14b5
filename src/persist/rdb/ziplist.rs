//! Ziplist reading: the packed list of RDB type 13 (hashes written by Redis 3.2 – 6.2), and of
//! list/set/zset types that are only skipped. Checked like Redis's `ziplistValidateIntegrity`:
//! lengths inside the buffer, each entry's `prevlen` equal to the previous entry's size.

use super::listpack::Entry;

const HEADER_BYTES: usize = 10;
const END: u8 = 0xFF;
const BIG_PREVLEN: u8 = 0xFE;
const UNKNOWN_COUNT: u16 = u16::MAX;

/// A validating cursor over a ziplist's entries.
pub struct Ziplist<'a> {
    buf: &'a [u8],
    pos: usize,
    prev_len: usize,
    last_start: usize,
    seen: usize,
    declared: u16,
    tail: usize,
}

impl<'a> Ziplist<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, String> {
        if buf.len() < HEADER_BYTES + 1 {
            return Err(format!("ziplist of {} bytes is too short", buf.len()));
        }
        let total = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if total != buf.len() {
            return Err(format!(
                "ziplist header says {total} bytes, its string holds {}",
                buf.len()
            ));
        }
        if buf[buf.len() - 1] != END {
            return Err("ziplist does not end with 0xFF".into());
        }
        Ok(Ziplist {
            buf,
            pos: HEADER_BYTES,
            prev_len: 0,
            last_start: HEADER_BYTES,
            seen: 0,
            declared: u16::from_le_bytes([buf[8], buf[9]]),
            tail: u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize,
        })
    }

    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>, String> {
        let buf = self.buf;
        let p = self.pos;
        if buf[p] == END {
            if p != buf.len() - 1 {
                return Err(format!("ziplist end marker at byte {p}, before its end"));
            }
            if self.declared != UNKNOWN_COUNT && usize::from(self.declared) != self.seen {
                return Err(format!(
                    "ziplist header says {} entries, it holds {}",
                    self.declared, self.seen
                ));
            }
            if self.tail != self.last_start {
                return Err("ziplist tail offset does not point at its last entry".into());
            }
            return Ok(None);
        }
        let bad = || format!("ziplist entry at byte {p} runs past the end");
        // Every read below stays strictly before the end marker.
        let get = |from: usize, n: usize| -> Result<&'a [u8], String> {
            from.checked_add(n)
                .filter(|&end| end < buf.len())
                .map(|end| &buf[from..end])
                .ok_or_else(bad)
        };
        let (prevlen, mut q) = if buf[p] == BIG_PREVLEN {
            let s = get(p + 1, 4)?;
            (u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize, p + 5)
        } else {
            (usize::from(buf[p]), p + 1)
        };
        if prevlen != self.prev_len {
            return Err(format!("ziplist entry at byte {p} has a wrong prevlen"));
        }
        let e = get(q, 1)?[0];
        q += 1;
        let entry = match e {
            0x00..=0x3F => {
                let s = get(q, usize::from(e))?;
                q += s.len();
                Entry::Str(s)
            }
            0x40..=0x7F => {
                let n = (usize::from(e & 0x3F) << 8) | usize::from(get(q, 1)?[0]);
                let s = get(q + 1, n)?;
                q += 1 + n;
                Entry::Str(s)
            }
            0x80..=0xBF => {
                let h = get(q, 4)?;
                let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let s = get(q + 4, n)?;
                q += 4 + n;
                Entry::Str(s)
            }
            0xC0 => {
                let s = get(q, 2)?;
                q += 2;
                Entry::Int(i64::from(i16::from_le_bytes([s[0], s[1]])))
            }
            0xD0 => {
                let s = get(q, 4)?;
                q += 4;
                Entry::Int(i64::from(i32::from_le_bytes([s[0], s[1], s[2], s[3]])))
            }
            0xE0 => {
                let s = get(q, 8)?;
                q += 8;
                let mut v = [0u8; 8];
                v.copy_from_slice(s);
                Entry::Int(i64::from_le_bytes(v))
            }
            0xF0 => {
                let s = get(q, 3)?;
                q += 3;
                Entry::Int(i64::from(i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8))
            }
            0xFE => {
                let s = get(q, 1)?;
                q += 1;
                Entry::Int(i64::from(s[0] as i8))
            }
            0xF1..=0xFD => Entry::Int(i64::from(e & 0x0F) - 1),
            _ => {
                return Err(format!(
                    "ziplist entry at byte {p} has bad encoding {e:#04x}"
                ))
            }
        };
        self.last_start = p;
        self.prev_len = q - p;
        self.pos = q;
        self.seen += 1;
        Ok(Some(entry))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a ziplist the way Redis does (used by the reader's tests too).
    pub(crate) fn build(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut last = HEADER_BYTES;
        for e in entries {
            let start = body.len();
            last = HEADER_BYTES + start;
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(BIG_PREVLEN);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match *e {
                Entry::Str(s) if s.len() < 64 => {
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Entry::Str(s) if s.len() < 16384 => {
                    body.push(0x40 | (s.len() >> 8) as u8);
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Entry::Str(s) => {
                    body.push(0x80);
                    body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    body.extend_from_slice(s);
                }
                Entry::Int(v @ 0..=12) => body.push(0xF1 + v as u8),
                Entry::Int(v) if i8::try_from(v).is_ok() => {
                    body.push(0xFE);
                    body.push(v as i8 as u8);
                }
                Entry::Int(v) if i16::try_from(v).is_ok() => {
                    body.push(0xC0);
                    body.extend_from_slice(&(v as i16).to_le_bytes());
                }
                Entry::Int(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                    body.push(0xF0);
                    body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
                }
                Entry::Int(v) if i32::try_from(v).is_ok() => {
                    body.push(0xD0);
                    body.extend_from_slice(&(v as i32).to_le_bytes());
                }
                Entry::Int(v) => {
                    body.push(0xE0);
                    body.extend_from_slice(&v.to_le_bytes());
                }
            }
            prev = body.len() - start;
        }
        let mut zl = ((HEADER_BYTES + body.len() + 1) as u32)
            .to_le_bytes()
            .to_vec();
        zl.extend_from_slice(&(last as u32).to_le_bytes());
        zl.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(END);
        zl
    }

    pub(crate) fn all(buf: &[u8]) -> Result<Vec<Entry<'_>>, String> {
        let mut z = Ziplist::new(buf)?;
        let mut v = Vec::new();
        while let Some(e) = z.next_entry()? {
            v.push(e);
        }
        Ok(v)
    }

    #[test]
    fn round_trips_every_encoding() {
        let long = vec![b'x'; 300];
        let huge = vec![b'y'; 20000];
        let entries = [
            Entry::Str(b"f"),
            Entry::Int(7),
            Entry::Int(-5),
            Entry::Int(1000),
            Entry::Int(-70000),
            Entry::Int(1 << 30),
            Entry::Int(1 << 40),
            Entry::Str(&long),
            Entry::Str(&huge),
            Entry::Str(b""),
        ];
        let zl = build(&entries);
        assert_eq!(all(&zl).unwrap(), entries);
        for cut in 0..zl.len().min(400) {
            assert!(all(&zl[..cut]).is_err());
        }
    }

    #[test]
    fn wrong_prevlen_is_rejected() {
        let mut zl = build(&[Entry::Str(b"a"), Entry::Str(b"b")]);
        zl[HEADER_BYTES + 3] = 9; // second entry's prevlen
        assert!(all(&zl).is_err());
    }
}
