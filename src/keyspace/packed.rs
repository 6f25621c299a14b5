//! The byte layout of one hash field, shared by both hash encodings.
//!
//! ```text
//! varint(field_len << 1 | has_ttl)  field  varint(value_len)  value  [expire_at: 6 bytes LE]
//! ```
//!
//! A field without a TTL pays nothing for the feature; one with a TTL pays 6 bytes, which
//! hold any deadline up to 2^46 − 1 ms (Redis's cap on field expiry times).

/// Bytes used by a stored field deadline.
pub const TTL_BYTES: usize = 6;
/// Largest field deadline, in unix ms (`HFE_MAX_ABS_TIME_MSEC`).
pub const MAX_FIELD_EXPIRE_MS: u64 = (1 << 46) - 1;

/// A decoded view of one packed field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldRef<'a> {
    pub field: &'a [u8],
    pub value: &'a [u8],
    /// Absolute deadline in unix ms, if the field has a TTL.
    pub expire_at: Option<u64>,
}

impl FieldRef<'_> {
    /// Logically expired: the deadline is strictly before `now_ms` (spec §5.3).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expire_at, Some(t) if t < now_ms)
    }
}

/// `a == b`, without a `memcmp` call for the short names hash fields mostly have: a
/// compact hash's lookup compares the name it looks for with every stored name of that
/// length, and for names of a few bytes the call and its size dispatch cost more than the
/// comparison (profile of a 10-field HSET: `memcmp` 9.6% of the server's time). Up to 16
/// bytes, two overlapping loads from each end cover every byte.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    fn word<const W: usize>(s: &[u8], at: usize) -> [u8; W] {
        let mut w = [0; W];
        w.copy_from_slice(&s[at..at + W]);
        w
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        _ => a == b,
    }
}

pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes a varint into `out` (exactly [`varint_len`] bytes long).
pub fn put_varint_into(out: &mut [u8], mut v: u64) {
    let mut at = 0;
    while v >= 0x80 {
        out[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    out[at] = v as u8;
}

/// Reads a varint at `buf[pos..]`; returns (value, bytes used). The input is our own
/// encoding, never network data.
pub fn get_varint(buf: &[u8], pos: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    let mut i = pos;
    loop {
        let b = buf[i];
        v |= u64::from(b & 0x7f) << shift;
        i += 1;
        if b < 0x80 {
            return (v, i - pos);
        }
        shift += 7;
    }
}

/// Total encoded size of a field.
pub fn encoded_len(field: &[u8], value: &[u8], expire_at: Option<u64>) -> usize {
    varint_len((field.len() as u64) << 1)
        + field.len()
        + varint_len(value.len() as u64)
        + value.len()
        + if expire_at.is_some() { TTL_BYTES } else { 0 }
}

/// Appends an encoded field to `out`.
pub fn encode(out: &mut Vec<u8>, field: &[u8], value: &[u8], expire_at: Option<u64>) {
    put_varint(
        out,
        (field.len() as u64) << 1 | u64::from(expire_at.is_some()),
    );
    out.extend_from_slice(field);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
    if let Some(t) = expire_at {
        debug_assert!(t <= MAX_FIELD_EXPIRE_MS);
        out.extend_from_slice(&t.to_le_bytes()[..TTL_BYTES]);
    }
}

/// Writes the encoding of a field into `out`, which must be exactly `encoded_len` long
/// (rewriting a field in place, without a temporary buffer).
pub fn encode_into(out: &mut [u8], field: &[u8], value: &[u8], expire_at: Option<u64>) {
    fn put(out: &mut [u8], at: &mut usize, mut v: u64) {
        while v >= 0x80 {
            out[*at] = (v as u8) | 0x80;
            *at += 1;
            v >>= 7;
        }
        out[*at] = v as u8;
        *at += 1;
    }
    let mut at = 0;
    put(
        out,
        &mut at,
        (field.len() as u64) << 1 | u64::from(expire_at.is_some()),
    );
    out[at..at + field.len()].copy_from_slice(field);
    at += field.len();
    put(out, &mut at, value.len() as u64);
    out[at..at + value.len()].copy_from_slice(value);
    at += value.len();
    if let Some(t) = expire_at {
        out[at..at + TTL_BYTES].copy_from_slice(&t.to_le_bytes()[..TTL_BYTES]);
    }
}

/// Decodes the field starting at `buf[pos..]`; returns it and its encoded size.
pub fn decode_at(buf: &[u8], pos: usize) -> (FieldRef<'_>, usize) {
    let (hdr, h) = get_varint(buf, pos);
    let field_len = (hdr >> 1) as usize;
    let has_ttl = hdr & 1 == 1;
    let f_start = pos + h;
    let f_end = f_start + field_len;
    let (value_len, vh) = get_varint(buf, f_end);
    let v_start = f_end + vh;
    let v_end = v_start + value_len as usize;
    let mut end = v_end;
    let expire_at = if has_ttl {
        let mut t = [0u8; 8];
        t[..TTL_BYTES].copy_from_slice(&buf[v_end..v_end + TTL_BYTES]);
        end += TTL_BYTES;
        Some(u64::from_le_bytes(t))
    } else {
        None
    };
    (
        FieldRef {
            field: &buf[f_start..f_end],
            value: &buf[v_start..v_end],
            expire_at,
        },
        end - pos,
    )
}

/// The name and value of the field starting at `buf[pos..]`, and where the next one starts.
/// For readers that do not need the deadline (it is skipped, not decoded); one-byte
/// lengths, the common case, take no loop.
#[inline]
pub fn pair_at(buf: &[u8], pos: usize) -> (&[u8], &[u8], usize) {
    #[inline(always)]
    fn varint(buf: &[u8], pos: usize) -> (u64, usize) {
        match buf[pos] {
            b if b < 0x80 => (u64::from(b), 1),
            _ => get_varint(buf, pos),
        }
    }
    let (hdr, h) = varint(buf, pos);
    let f_start = pos + h;
    let f_end = f_start + (hdr >> 1) as usize;
    let (value_len, vh) = varint(buf, f_end);
    let v_start = f_end + vh;
    let v_end = v_start + value_len as usize;
    let next = v_end + if hdr & 1 == 1 { TTL_BYTES } else { 0 };
    (&buf[f_start..f_end], &buf[v_start..v_end], next)
}

/// Just the name of the field starting at `buf[pos..]` (table lookups compare it alone).
#[inline]
pub fn name_at(buf: &[u8], pos: usize) -> &[u8] {
    let (hdr, h) = match buf[pos] {
        b if b < 0x80 => (u64::from(b), 1),
        _ => get_varint(buf, pos),
    };
    let start = pos + h;
    &buf[start..start + (hdr >> 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_agrees_with_slice_equality_for_every_length_and_difference() {
        let a: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..=a.len() {
            assert!(same_bytes(&a[..n], &a[..n]));
            for at in 0..n {
                let mut b = a[..n].to_vec();
                b[at] ^= 0x80;
                assert!(!same_bytes(&a[..n], &b), "length {n}, byte {at}");
            }
        }
    }

    #[test]
    fn round_trip() {
        for (f, v, t) in [
            (&b""[..], &b""[..], None),
            (b"field", b"value", Some(MAX_FIELD_EXPIRE_MS)),
            (&[7u8; 300][..], &[9u8; 70000][..], Some(1)),
        ] {
            let mut buf = Vec::new();
            encode(&mut buf, f, v, t);
            assert_eq!(buf.len(), encoded_len(f, v, t));
            let (r, n) = decode_at(&buf, 0);
            assert_eq!(n, buf.len());
            assert_eq!(pair_at(&buf, 0), (f, v, buf.len()));
            assert_eq!(name_at(&buf, 0), f);
            let mut in_place = vec![0u8; buf.len()];
            encode_into(&mut in_place, f, v, t);
            assert_eq!(in_place, buf);
            assert_eq!((r.field, r.value, r.expire_at), (f, v, t));
        }
    }

    #[test]
    fn expiry_is_strictly_before_now() {
        let r = FieldRef {
            field: b"f",
            value: b"v",
            expire_at: Some(100),
        };
        assert!(!r.is_expired(100));
        assert!(r.is_expired(101));
    }
}
