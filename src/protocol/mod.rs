//! The wire: request parsing ([`request`]) and reply encoding ([`reply`]) for RESP2 and
//! RESP3. Nothing outside this module writes protocol bytes.

pub mod reply;
pub mod request;

pub use reply::{Protocol, Reply};
pub use request::{parse_i64, ArgSource, ParseLimits, Parsed, RequestParser};
