//! [`Key`]: a key's bytes, stored inside the entry when short.
//!
//! A lookup compares the probed entry's key with the request's. With the bytes behind a
//! pointer that is a second cache miss per command (profiles showed it as a quarter of the
//! CPU time under load); most keys (`user:1000`, `session:ab12…`) fit inline and cost
//! neither the miss nor an allocation.

use std::fmt;
use std::ops::Deref;

/// Longest key stored inline.
pub const INLINE_KEY_MAX: usize = 22;

#[derive(Clone)]
pub enum Key {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_MAX],
    },
    Heap(Box<[u8]>),
}

impl Key {
    pub fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE_KEY_MAX {
            let mut bytes = [0u8; INLINE_KEY_MAX];
            bytes[..key.len()].copy_from_slice(key);
            Key::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(key.into())
        }
    }
}

impl Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_inline_and_the_type_stays_small() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        assert!(matches!(Key::new(b"user:1000"), Key::Inline { .. }));
        assert!(matches!(Key::new(&[b'x'; 23]), Key::Heap(_)));
        for len in [0, 1, 22, 23, 100] {
            let k = vec![7u8; len];
            assert_eq!(&*Key::new(&k), &k[..]);
        }
    }
}
