//! LZF, the compression RDB uses for strings longer than 20 bytes (`rdbcompression yes`).
//!
//! Decompression is the `lzf` crate (a pure-Rust port of liblzf, bounds-checked on corrupt
//! input). Compression is written here because both LZF crates allocate and zero a 256–512 KiB
//! hash table on every call, which for a snapshot of millions of short strings costs far more
//! than the compression itself; this encoder keeps one small table for the whole snapshot and
//! invalidates old entries by a moving base instead of clearing it. The output is plain
//! liblzf token format, which Redis's `lzf_decompress` reads.

/// A back reference reaches at most this far behind the current position.
const MAX_DISTANCE: usize = 1 << 13;
/// A back reference copies at most this many bytes (7 + 255 + 2).
const MAX_MATCH: usize = 264;
/// A literal run holds at most this many bytes.
const MAX_LITERAL: usize = 32;
/// The most output one input byte can stand for: a 3-byte token copies up to 264 bytes.
pub const MAX_EXPANSION: usize = 88;
const HASH_BITS: u32 = 14;

/// A reusable LZF encoder.
pub struct LzfCompressor {
    /// `base + position + 1` of the last place each 3-byte hash was seen; entries at or
    /// below `base` belong to earlier inputs and are ignored.
    table: Vec<u32>,
    base: u32,
}

impl Default for LzfCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl LzfCompressor {
    pub fn new() -> Self {
        LzfCompressor {
            table: vec![0; 1 << HASH_BITS],
            base: 0,
        }
    }

    /// Compresses `input`, or returns `None` when the result would be longer than
    /// `max_out` bytes (Redis keeps LZF only when it saves at least 4 bytes).
    pub fn compress(&mut self, input: &[u8], max_out: usize) -> Option<Vec<u8>> {
        let n = input.len();
        if n < 4 || n > (u32::MAX / 4) as usize {
            return None;
        }
        if u32::MAX - self.base <= n as u32 + 1 {
            self.table.fill(0);
            self.base = 0;
        }
        let base = self.base;
        // The next call's entries start above every position recorded in this one.
        self.base = base + n as u32 + 1;

        let mut out = Vec::with_capacity(max_out.min(n + n / 32 + 1));
        let mut literal_start = 0;
        let mut i = 0;
        while i + 2 < n {
            let slot = hash3(&input[i..i + 3]);
            let candidate = self.table[slot];
            self.table[slot] = base + i as u32 + 1;
            if candidate > base {
                let r = (candidate - base - 1) as usize;
                let distance = i - r;
                if distance <= MAX_DISTANCE && input[r..r + 3] == input[i..i + 3] {
                    let limit = MAX_MATCH.min(n - i);
                    let mut len = 3;
                    while len < limit && input[r + len] == input[i + len] {
                        len += 1;
                    }
                    push_literals(&mut out, &input[literal_start..i]);
                    push_backref(&mut out, len, distance - 1);
                    if out.len() > max_out {
                        return None;
                    }
                    // Index the positions the match covered, so later repeats find them.
                    for p in i + 1..(i + len).min(n.saturating_sub(2)) {
                        self.table[hash3(&input[p..p + 3])] = base + p as u32 + 1;
                    }
                    i += len;
                    literal_start = i;
                    continue;
                }
            }
            i += 1;
            if i - literal_start > max_out {
                return None;
            }
        }
        push_literals(&mut out, &input[literal_start..]);
        (out.len() <= max_out).then_some(out)
    }
}

fn hash3(b: &[u8]) -> usize {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    (v.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
}

fn push_literals(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.chunks(MAX_LITERAL) {
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
}

/// `len` is 3..=264, `offset` is distance − 1, 0..8192.
fn push_backref(out: &mut Vec<u8>, len: usize, offset: usize) {
    let l = len - 2;
    let hi = (offset >> 8) as u8;
    if l < 7 {
        out.push(((l as u8) << 5) | hi);
    } else {
        out.push((7 << 5) | hi);
        out.push((l - 7) as u8);
    }
    out.push(offset as u8);
}

/// Decompresses `data` into exactly `original_len` bytes. The length comes from the file, so
/// it is checked against what `data` can possibly expand to before anything is allocated.
pub fn decompress(data: &[u8], original_len: usize) -> Result<Vec<u8>, &'static str> {
    if data.is_empty() || original_len == 0 {
        return Err("empty LZF string");
    }
    if original_len > data.len().saturating_mul(MAX_EXPANSION) {
        return Err("LZF original length larger than its compressed data can hold");
    }
    match lzf::decompress(data, original_len) {
        Ok(out) if out.len() == original_len => Ok(out),
        Ok(_) => Err("LZF data shorter than its original length"),
        Err(_) => Err("invalid LZF compressed data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: &mut LzfCompressor, input: &[u8]) -> Option<usize> {
        let packed = c.compress(input, input.len() - 4)?;
        assert_eq!(decompress(&packed, input.len()).unwrap(), input);
        Some(packed.len())
    }

    #[test]
    fn compresses_repetitive_data_and_round_trips() {
        let mut c = LzfCompressor::new();
        let input = b"abcdefghabcdefghabcdefghabcdefghabcdefghabcdefgh".repeat(50);
        let n = round_trip(&mut c, &input).unwrap();
        assert!(n < input.len() / 10, "{n}");
        let zeros = vec![0u8; 100_000];
        assert!(round_trip(&mut c, &zeros).unwrap() < 1200);
    }

    #[test]
    fn incompressible_data_is_refused() {
        let mut c = LzfCompressor::new();
        let mut rng = fastrand::Rng::with_seed(7);
        let input: Vec<u8> = (0..300).map(|_| rng.u8(..)).collect();
        assert_eq!(c.compress(&input, input.len() - 4), None);
    }

    #[test]
    fn table_entries_from_earlier_inputs_are_never_used() {
        // Same compressor across many inputs: stale positions must not produce references
        // outside the current input.
        let mut c = LzfCompressor::new();
        let mut rng = fastrand::Rng::with_seed(1);
        for round in 0..2000 {
            let len = rng.usize(21..400);
            let alphabet = rng.u8(1..6);
            let input: Vec<u8> = (0..len).map(|_| b'a' + rng.u8(..alphabet)).collect();
            let _ = round_trip(&mut c, &input);
            if round == 1000 {
                c.base = u32::MAX - 10; // force the wrap-around reset
            }
        }
    }

    #[test]
    fn decompress_rejects_impossible_lengths_and_garbage() {
        assert!(decompress(&[0x00, b'a'], 1_000_000).is_err());
        assert!(decompress(&[], 1).is_err());
        assert!(decompress(&[0x20, 0x00], 3).is_err()); // back reference before the start
        assert!(decompress(&[0x05, b'a'], 6).is_err()); // literal run past the end
                                                        // one literal, then a 9-byte copy of it (7 + 2) at distance 1
        assert_eq!(
            decompress(&[0x00, b'a', 0xe0, 0x00, 0x00], 10).unwrap(),
            b"a".repeat(10)
        );
    }
}
