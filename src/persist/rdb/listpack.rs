//! Listpack reading: the packed list inside RDB types 16 (hash), 25 (hash with TTLs) and
//! others that are only skipped. Every length is checked against the buffer, and every entry's
//! trailing back-length must match the entry, as Redis's integrity check demands.

/// One element of a listpack or ziplist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Entry<'_> {
    /// The element as the string Redis would return for it (integers in decimal).
    pub fn to_bytes(self) -> Vec<u8> {
        match self {
            Entry::Str(s) => s.to_vec(),
            Entry::Int(v) => itoa::Buffer::new().format(v).as_bytes().to_vec(),
        }
    }
}

const HEADER_BYTES: usize = 6;
const END: u8 = 0xFF;
/// `num entries` says "count them yourself" when the list has 65535 or more.
const UNKNOWN_COUNT: u16 = u16::MAX;

/// A validating cursor over a listpack's entries.
pub struct Listpack<'a> {
    buf: &'a [u8],
    pos: usize,
    seen: usize,
    declared: u16,
}

impl<'a> Listpack<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, String> {
        if buf.len() < HEADER_BYTES + 1 {
            return Err(format!("listpack of {} bytes is too short", buf.len()));
        }
        let total = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if total != buf.len() {
            return Err(format!(
                "listpack header says {total} bytes, its string holds {}",
                buf.len()
            ));
        }
        if buf[buf.len() - 1] != END {
            return Err("listpack does not end with 0xFF".into());
        }
        Ok(Listpack {
            buf,
            pos: HEADER_BYTES,
            seen: 0,
            declared: u16::from_le_bytes([buf[4], buf[5]]),
        })
    }

    /// The next entry, or `None` at the end marker (after checking the entry count).
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>, String> {
        let buf = self.buf;
        let p = self.pos;
        let b = buf[p]; // `pos` never passes the end marker, which `new` checked exists
        if b == END {
            if p != buf.len() - 1 {
                return Err(format!("listpack end marker at byte {p}, before its end"));
            }
            if self.declared != UNKNOWN_COUNT && usize::from(self.declared) != self.seen {
                return Err(format!(
                    "listpack header says {} entries, it holds {}",
                    self.declared, self.seen
                ));
            }
            return Ok(None);
        }
        let need = |n: usize| -> Result<&'a [u8], String> {
            buf.get(p..p.saturating_add(n))
                .filter(|_| p + n < buf.len())
                .ok_or_else(|| format!("listpack entry at byte {p} runs past the end"))
        };
        let (entry, len) = match b {
            0x00..=0x7F => (Entry::Int(i64::from(b)), 1),
            0x80..=0xBF => {
                let n = usize::from(b & 0x3F);
                let s = need(1 + n)?;
                (Entry::Str(&s[1..]), 1 + n)
            }
            0xC0..=0xDF => {
                let s = need(2)?;
                let v = (i64::from(b & 0x1F) << 8) | i64::from(s[1]);
                (Entry::Int(if v >= 1 << 12 { v - (1 << 13) } else { v }), 2)
            }
            0xE0..=0xEF => {
                let n = (usize::from(b & 0x0F) << 8) | usize::from(need(2)?[1]);
                let s = need(2 + n)?;
                (Entry::Str(&s[2..]), 2 + n)
            }
            0xF0 => {
                let h = need(5)?;
                let n = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
                let s = need(5usize.saturating_add(n))?;
                (Entry::Str(&s[5..]), 5 + n)
            }
            0xF1 => {
                let s = need(3)?;
                (Entry::Int(i64::from(i16::from_le_bytes([s[1], s[2]]))), 3)
            }
            0xF2 => {
                let s = need(4)?;
                let v = i32::from_le_bytes([0, s[1], s[2], s[3]]) >> 8;
                (Entry::Int(i64::from(v)), 4)
            }
            0xF3 => {
                let s = need(5)?;
                (
                    Entry::Int(i64::from(i32::from_le_bytes([s[1], s[2], s[3], s[4]]))),
                    5,
                )
            }
            0xF4 => {
                let s = need(9)?;
                let mut v = [0u8; 8];
                v.copy_from_slice(&s[1..9]);
                (Entry::Int(i64::from_le_bytes(v)), 9)
            }
            _ => {
                return Err(format!(
                    "listpack entry at byte {p} has bad encoding {b:#04x}"
                ))
            }
        };
        let mut expected = [0u8; 5];
        let back = encode_backlen(len, &mut expected);
        let stored = need(len + back)?;
        if stored[len..] != expected[..back] {
            return Err(format!(
                "listpack entry at byte {p} has a wrong back-length"
            ));
        }
        self.pos = p + len + back;
        self.seen += 1;
        Ok(Some(entry))
    }
}

/// Writes the back-length of an entry of `len` bytes as `lpEncodeBacklen` does; returns its size.
fn encode_backlen(len: usize, out: &mut [u8; 5]) -> usize {
    let size = match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    for (i, byte) in out.iter_mut().take(size).enumerate() {
        let shift = 7 * (size - 1 - i);
        let mut v = ((len >> shift) & 0x7F) as u8;
        if i > 0 {
            v |= 0x80;
        }
        *byte = v;
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listpack of spec §1.7's key h2, captured from a real Redis.
    const H2: &[u8] = &[
        0x35, 0x00, 0x00, 0x00, 0x09, 0x00, 0x82, 0x66, 0x31, 0x03, 0x82, 0x76, 0x31, 0x03, 0xf4,
        0x00, 0xd8, 0xc3, 0x2c, 0xbb, 0x03, 0x00, 0x00, 0x09, 0x82, 0x66, 0x33, 0x03, 0x82, 0x76,
        0x33, 0x03, 0xf4, 0xe8, 0xdb, 0xc3, 0x2c, 0xbb, 0x03, 0x00, 0x00, 0x09, 0x82, 0x66, 0x32,
        0x03, 0x82, 0x76, 0x32, 0x03, 0x00, 0x01, 0xff,
    ];

    fn all(buf: &[u8]) -> Result<Vec<Entry<'_>>, String> {
        let mut lp = Listpack::new(buf)?;
        let mut v = Vec::new();
        while let Some(e) = lp.next_entry()? {
            v.push(e);
        }
        Ok(v)
    }

    #[test]
    fn reads_the_spec_sample() {
        let e = all(H2).unwrap();
        assert_eq!(e.len(), 9);
        assert_eq!(e[0], Entry::Str(b"f1"));
        assert_eq!(e[2], Entry::Int(4102444800000));
        assert_eq!(e[5], Entry::Int(4102444801000));
        assert_eq!(e[8], Entry::Int(0));
    }

    #[test]
    fn every_truncation_and_flip_is_an_error_or_valid() {
        for cut in 0..H2.len() {
            assert!(all(&H2[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..H2.len() {
            for bit in 0..8 {
                let mut b = H2.to_vec();
                b[i] ^= 1 << bit;
                let _ = all(&b); // must not panic
            }
        }
    }

    #[test]
    fn backlen_matches_redis_layout() {
        let mut out = [0u8; 5];
        assert_eq!(encode_backlen(5, &mut out), 1);
        assert_eq!(out[0], 5);
        assert_eq!(encode_backlen(200, &mut out), 2);
        assert_eq!(&out[..2], &[200 >> 7, (200 & 127) | 128]);
    }

    #[test]
    fn integer_encodings() {
        // 13-bit -1, int16 -300, int24 -70000, int32 2^30
        let mut body = vec![];
        for (enc, len) in [
            (vec![0xDF, 0xFF], 2),
            (vec![0xF1, 0xD4, 0xFE], 3),
            (vec![0xF2, 0x90, 0xEE, 0xFE], 4),
            (vec![0xF3, 0, 0, 0, 0x40], 5),
        ] {
            body.extend_from_slice(&enc);
            body.push(len);
        }
        let total = (6 + body.len() + 1) as u32;
        let mut lp = total.to_le_bytes().to_vec();
        lp.extend_from_slice(&4u16.to_le_bytes());
        lp.extend_from_slice(&body);
        lp.push(0xFF);
        assert_eq!(
            all(&lp).unwrap(),
            vec![
                Entry::Int(-1),
                Entry::Int(-300),
                Entry::Int(-70000),
                Entry::Int(1 << 30)
            ]
        );
    }
}
