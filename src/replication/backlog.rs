//! The replication backlog: the last `repl-backlog-size` bytes of the replication stream,
//! so a replica that lost its link briefly can continue from its offset (`+CONTINUE`)
//! instead of taking a whole new snapshot.
//!
//! Offsets are Redis's: the stream's first byte has offset 1, and `first_offset` is the
//! offset of the oldest byte still held (`repl_backlog_first_byte_offset`).

/// A ring of the stream's most recent bytes.
#[derive(Debug)]
pub struct Backlog {
    ring: Vec<u8>,
    /// Where the next byte goes in `ring`.
    head: usize,
    /// Bytes held (`repl_backlog_histlen`), at most `ring.len()`.
    len: usize,
    /// Offset of the byte after the newest one held (`master_repl_offset + 1`).
    end: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte will have offset `next_offset`.
    pub fn new(size: usize, next_offset: u64) -> Self {
        Backlog {
            ring: vec![0; size.max(1)],
            head: 0,
            len: 0,
            end: next_offset,
        }
    }

    pub fn size(&self) -> usize {
        self.ring.len()
    }

    pub fn histlen(&self) -> usize {
        self.len
    }

    /// Offset of the oldest byte held (the next one's when empty).
    pub fn first_offset(&self) -> u64 {
        self.end - self.len as u64
    }

    /// Appends stream bytes.
    pub fn push(&mut self, mut bytes: &[u8]) {
        let cap = self.ring.len();
        self.end += bytes.len() as u64;
        if bytes.len() >= cap {
            // Only the last `cap` bytes survive.
            bytes = &bytes[bytes.len() - cap..];
            self.ring.copy_from_slice(bytes);
            self.head = 0;
            self.len = cap;
            return;
        }
        let first = (cap - self.head).min(bytes.len());
        self.ring[self.head..self.head + first].copy_from_slice(&bytes[..first]);
        let rest = bytes.len() - first;
        self.ring[..rest].copy_from_slice(&bytes[first..]);
        self.head = (self.head + bytes.len()) % cap;
        self.len = (self.len + bytes.len()).min(cap);
    }

    /// The bytes from `offset` to the end, if the backlog still holds all of them
    /// (`offset` may be the next byte's: nothing is missing then).
    pub fn since(&self, offset: u64) -> Option<Vec<u8>> {
        if offset < self.first_offset() || offset > self.end {
            return None;
        }
        let n = (self.end - offset) as usize;
        let cap = self.ring.len();
        // The newest byte is just before `head`; the one at `offset` is `n` before it.
        let start = (self.head + cap - n) % cap;
        let mut out = Vec::with_capacity(n);
        let first = (cap - start).min(n);
        out.extend_from_slice(&self.ring[start..start + first]);
        out.extend_from_slice(&self.ring[..n - first]);
        Some(out)
    }

    /// Changes the size, keeping the newest bytes that fit (CONFIG SET repl-backlog-size).
    pub fn resize(&mut self, size: usize) {
        let keep = self.len.min(size.max(1));
        let tail = self.since(self.end - keep as u64).unwrap_or_default();
        let end = self.end;
        *self = Backlog::new(size, end - keep as u64);
        self.push(&tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_newest_bytes_with_their_offsets() {
        let mut b = Backlog::new(8, 1);
        assert_eq!(b.first_offset(), 1);
        assert_eq!(b.since(1), Some(vec![]));
        b.push(b"abcde");
        assert_eq!((b.first_offset(), b.histlen()), (1, 5));
        assert_eq!(b.since(3).as_deref(), Some(&b"cde"[..]));
        b.push(b"fghij");
        // 10 bytes pushed into 8: offsets 3..=10 remain.
        assert_eq!((b.first_offset(), b.histlen()), (3, 8));
        assert_eq!(b.since(2), None);
        assert_eq!(b.since(3).as_deref(), Some(&b"cdefghij"[..]));
        assert_eq!(b.since(9).as_deref(), Some(&b"ij"[..]));
        assert_eq!(b.since(11).as_deref(), Some(&b""[..]));
        assert_eq!(b.since(12), None);
        b.push(b"0123456789xyz");
        assert_eq!(b.first_offset(), 16);
        assert_eq!(b.since(16).as_deref(), Some(&b"56789xyz"[..]));
    }

    #[test]
    fn wraps_and_resizes() {
        let mut b = Backlog::new(4, 101);
        for chunk in [&b"ab"[..], b"cd", b"ef", b"g"] {
            b.push(chunk);
        }
        assert_eq!(b.since(104).as_deref(), Some(&b"defg"[..]));
        b.resize(2);
        assert_eq!((b.first_offset(), b.histlen(), b.size()), (106, 2, 2));
        assert_eq!(b.since(106).as_deref(), Some(&b"fg"[..]));
        b.resize(6);
        b.push(b"hij");
        assert_eq!(b.since(106).as_deref(), Some(&b"fghij"[..]));
    }
}
