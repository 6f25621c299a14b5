//! Hash slots: `crc16(tag) & 16383`, CRC16/XMODEM, where the tag is what lies between the
//! first `{` and the first `}` after it when that is not empty (Redis's `keyHashSlot`).

/// The number of hash slots.
pub const SLOTS: usize = 16384;

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// The slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    CRC16.checksum(tagged.unwrap_or(key)) & (SLOTS as u16 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_as_redis() {
        assert_eq!(CRC16.checksum(b"123456789"), 0x31C3);
        // Redis 7.4.1's CLUSTER KEYSLOT for the same keys.
        assert_eq!(key_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_slot(b"a"), 15495);
        assert_eq!(key_slot(b"{a}x"), 15495);
        // An empty tag hashes the whole key; only the first `{` counts.
        assert_eq!(key_slot(b"{}a"), CRC16.checksum(b"{}a") & 16383);
        assert_eq!(key_slot(b"x{a}{b}"), key_slot(b"a"));
        assert_eq!(key_slot(b"{a"), CRC16.checksum(b"{a") & 16383);
        assert_eq!(key_slot(b""), 0);
    }
}
