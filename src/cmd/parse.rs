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

/// A cursor for SCAN/HSCAN: an unsigned 64-bit decimal, else `ERR invalid cursor`.
/// Redis tries `string2ll` first, then `strtoull` on the whole string; plain negative numbers
/// fail (strtoull would wrap them, but Redis rejects a leading '-').
pub fn cursor(arg: &[u8]) -> Result<u64, CmdError> {
    if let Some(v) = parse_i64(arg) {
        if v >= 0 {
            return Ok(v as u64);
        }
        return Err(CmdError::InvalidCursor);
    }
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return Err(CmdError::InvalidCursor);
    }
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(CmdError::InvalidCursor)
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
