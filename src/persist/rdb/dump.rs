//! DUMP / RESTORE payloads (`createDumpPayload`, `verifyDumpPayload`): one value in its RDB
//! encoding, then the RDB version (2 bytes LE) and a CRC64 (8 bytes LE) of everything before
//! it. No key, no header, no EOF.

use std::io;

use thiserror::Error;

use super::crc64::crc64;
use super::reader::RdbReader;
use super::writer::{Encoder, FieldRef, HashHeader};
use super::{RdbError, RdbField, RDB_VERSION};

/// Footer: 2-byte version + 8-byte CRC.
const FOOTER_BYTES: usize = 10;

/// Why RESTORE refuses a payload. `Display` is Redis's exact reply text (without the `-`).
#[derive(Debug, Error)]
pub enum DumpError {
    /// Too short, from a newer RDB version, or the CRC does not match.
    #[error("ERR DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    /// The value does not decode; the detail is for logs.
    #[error("ERR Bad data format")]
    BadFormat(String),
    /// A well-formed value of a type hashd does not store (a string, list …).
    #[error("ERR Bad data format")]
    UnsupportedType(&'static str),
}

/// The DUMP payload of a hash: type 4 without field TTLs, 24 with (which every Redis ≥ 7.4
/// RESTOREs). `compression` is `rdbcompression`. Fails only on data no hash can hold (no
/// fields, a field deadline past 2^48 − 1 ms).
pub fn dump_payload(fields: &[RdbField], compression: bool) -> io::Result<Vec<u8>> {
    let mut enc = Encoder::new(Vec::new(), compression, false);
    let header = HashHeader::of(fields.iter().map(FieldRef::from));
    enc.hash(None, header, fields.iter().map(FieldRef::from))?;
    let (mut out, _, _) = enc.finish()?;
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Checks and decodes a payload as RESTORE does (versions up to 12, the CRC always checked).
/// Returns every field, expired or not: what to do with those is the caller's rule.
pub fn parse_dump_payload(payload: &[u8]) -> Result<Vec<RdbField>, DumpError> {
    let Some(body_len) = payload.len().checked_sub(FOOTER_BYTES) else {
        return Err(DumpError::VersionOrChecksum);
    };
    let footer = &payload[body_len..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if u32::from(version) > RDB_VERSION {
        return Err(DumpError::VersionOrChecksum);
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if crc64(&payload[..body_len + 2]) != u64::from_le_bytes(crc) {
        return Err(DumpError::VersionOrChecksum);
    }
    let mut reader = RdbReader::for_value(&payload[..body_len]);
    match reader.value() {
        Ok(fields) if fields.is_empty() => Err(DumpError::BadFormat("an empty hash".into())),
        Ok(fields) => Ok(fields),
        Err(RdbError::UnsupportedType { type_name, .. }) => {
            Err(DumpError::UnsupportedType(type_name))
        }
        Err(e) => Err(DumpError::BadFormat(e.to_string())),
    }
}
