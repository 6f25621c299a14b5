//! Argument parsing shared by many commands, with Redis's exact rules and errors.

use crate::error::CmdError;
use crate::protocol::parse_i64;

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// A strict integer argument (`string2ll`), else `ERR value is not an integer or out of range`.
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// A cursor for SCAN/HSCAN, parsed like Redis's `string2ull`: `string2ll` first (negative
/// values rejected), then C's `strtoull` on the whole string, which also takes leading
/// whitespace, a sign (`-` wraps around, as in C) and leading zeros. Else `ERR invalid cursor`.
pub fn cursor(arg: &[u8]) -> Result<u64, CmdError> {
    if let Some(v) = parse_i64(arg) {
        return u64::try_from(v).map_err(|_| CmdError::InvalidCursor);
    }
    strtoull(arg).ok_or(CmdError::InvalidCursor)
}

/// C's `strtoull(s, &end, 10)` requiring the whole (NUL-free) input to be consumed.
fn strtoull(s: &[u8]) -> Option<u64> {
    let mut i = s
        .iter()
        .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .count();
    let negative = match s.get(i) {
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
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// `ERR value is out of range, value must between <min> and <max>`.
pub fn range_error(min: i64, max: i64) -> CmdError {
    CmdError::other(format!(
        "ERR value is out of range, value must between {min} and {max}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(cursor(b"0"), Ok(0));
        assert_eq!(cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(cursor(b"-1"), Err(CmdError::InvalidCursor));
        assert_eq!(cursor(b"x"), Err(CmdError::InvalidCursor));
        assert_eq!(cursor(b""), Err(CmdError::InvalidCursor));
        assert_eq!(
            cursor(b"18446744073709551616"),
            Err(CmdError::InvalidCursor)
        );
    }

    #[test]
    fn keywords_ignore_case() {
        assert!(is(b"FiElDs", "fields"));
        assert!(!is(b"field", "fields"));
    }
}
