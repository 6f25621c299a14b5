//! The three kinds of failure hashd knows.
//!
//! * [`CmdError`]: a command failed; the client gets Redis's exact error reply and the
//!   connection stays open. `Display` is the reply text without the leading `-`.
//! * [`ProtocolError`]: the request stream is unreadable; the client gets the error reply and
//!   then the connection closes. Only the request parser produces these.
//! * [`StartupError`]: configuration or bind failures; printed once, then a non-zero exit.

use thiserror::Error;

/// A command-level error. Each variant's text is byte-identical to Redis 8's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// Carries the lower-case full command name (`hset`, `client|setname`).
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is out of range")]
    OutOfRange,
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR hash value is not an integer")]
    HashValueNotInteger,
    #[error("ERR hash value is not a float")]
    HashValueNotFloat,
    #[error("ERR increment or decrement would overflow")]
    IncrOverflow,
    #[error("ERR value is NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR increment would produce NaN or Infinity")]
    IncrNanOrInfinity,
    #[error("ERR invalid cursor")]
    InvalidCursor,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR invalid expire time, must be >= 0")]
    ExpireNegative,
    /// Carries the lower-case command name (`hexpire`, `pexpireat`).
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpireTime(String),
    #[error("ERR Mandatory argument FIELDS is missing or not at the right position")]
    FieldsMissing,
    #[error("ERR Parameter `numFields` should be greater than 0")]
    NumFieldsNotPositive,
    #[error("ERR Number of fields must be a positive integer")]
    NumFieldsNotPositiveInteger,
    #[error("ERR The `numfields` parameter must match the number of arguments")]
    NumFieldsMismatch,
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("LOADING Redis is loading the dataset in memory")]
    Loading,
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    #[error("ERR MULTI calls can not be nested")]
    MultiNested,
    #[error("ERR EXEC without MULTI")]
    ExecWithoutMulti,
    #[error("ERR DISCARD without MULTI")]
    DiscardWithoutMulti,
    #[error("ERR WATCH inside MULTI is not allowed")]
    WatchInsideMulti,
    #[error("EXECABORT Transaction discarded because of previous errors.")]
    ExecAbort,
    /// Any other message, given in full with its prefix (`ERR …`, `NOPROTO …`).
    #[error("{0}")]
    Other(String),
    /// Like `Other`, for a message that quotes a client's bytes and is not valid UTF-8
    /// (an unknown command's name): the reply carries the bytes unchanged, as Redis's
    /// does. `Display` shows them lossily; only [`CmdError::reply_text`] is exact.
    #[error("{}", String::from_utf8_lossy(.0))]
    OtherBytes(Vec<u8>),
}

impl CmdError {
    /// A free-form error; `text` must carry its own prefix, e.g. `"ERR unknown argument: x"`.
    pub fn other(text: impl Into<String>) -> Self {
        CmdError::Other(text.into())
    }

    /// A free-form error from raw bytes (with its prefix): `Other` when they are UTF-8,
    /// else `OtherBytes`, so the reply repeats them exactly.
    pub fn other_bytes(text: Vec<u8>) -> Self {
        match String::from_utf8(text) {
            Ok(s) => CmdError::Other(s),
            Err(e) => CmdError::OtherBytes(e.into_bytes()),
        }
    }

    /// The error line as Redis writes it (without the leading `-`; CR and LF are still
    /// to be replaced by the reply writer).
    pub fn reply_text(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            CmdError::OtherBytes(b) => std::borrow::Cow::Borrowed(b),
            CmdError::Other(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            other => std::borrow::Cow::Owned(other.to_string().into_bytes()),
        }
    }
}

/// A malformed request. The reply is sent, then the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("ERR Protocol error: too big mbulk count string")]
    TooBigMbulkCount,
    #[error("ERR Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("ERR Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// Carries the byte found where `$` was expected.
    #[error("ERR Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    #[error("ERR Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("ERR Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    #[error("ERR Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("ERR Protocol error: too big inline request")]
    TooBigInline,
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

impl ProtocolError {
    /// The error line as Redis writes it. `ExpectedDollar` carries a raw byte, which Redis
    /// copies verbatim (it is not necessarily valid UTF-8).
    pub fn reply_text(&self) -> Vec<u8> {
        match self {
            ProtocolError::ExpectedDollar(b) => {
                let mut t = b"ERR Protocol error: expected '$', got '".to_vec();
                t.push(*b);
                t.push(b'\'');
                t
            }
            other => other.to_string().into_bytes(),
        }
    }
}

/// Failures before the server is serving: a bad config file or flag, or a bind error.
#[derive(Debug, Error)]
pub enum StartupError {
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    ConfigParse { path: String, message: String },
    #[error("invalid value for '{option}': {reason}")]
    InvalidOption { option: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// The server stopped because of an error after start-up (a snapshot that does not
    /// load, a final save that failed).
    #[error("{0}")]
    Fatal(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_bytes_is_other_when_utf8() {
        assert_eq!(
            CmdError::other_bytes(b"ERR x \xc3\xa9".to_vec()),
            CmdError::other("ERR x \u{e9}")
        );
        let e = CmdError::other_bytes(b"ERR x \xff".to_vec());
        assert_eq!(e, CmdError::OtherBytes(b"ERR x \xff".to_vec()));
        assert_eq!(&*e.reply_text(), b"ERR x \xff");
        assert_eq!(e.to_string(), "ERR x \u{fffd}");
        assert_eq!(&*CmdError::Syntax.reply_text(), b"ERR syntax error");
    }
}
