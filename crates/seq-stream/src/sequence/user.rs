//! Caller records written together with a gap-free allocation: the `USR`
//! keyspace (`USR` + escaped user key → framed value).

use bytes::Bytes;
use seq_core::keys::{KeyBuilder, KeyReader};

use crate::error::{Error, Result};

/// Keyspace tag of caller records (`Sequence::next_with`).
pub(crate) const USR: &[u8; 3] = b"USR";

const VERSION: u8 = 1;

/// `USR` + the escaped, terminated user key.
pub(crate) fn key(user_key: &[u8]) -> Vec<u8> {
    KeyBuilder::new(USR).bytes(user_key).build()
}

/// The storage prefix of every user key starting with `prefix`: the escaped
/// bytes without the terminator (escaping is byte-wise, so the escaped form of
/// a prefix is a prefix of the escaped key, and the order is preserved).
pub(crate) fn prefix(user_prefix: &[u8]) -> Vec<u8> {
    let mut built = key(user_prefix);
    // Drop the two-byte terminator `0x00 0x01`.
    built.truncate(built.len() - 2);
    built
}

/// The user key in a `USR` key.
pub(crate) fn user_key_of(key: &[u8]) -> Result<Vec<u8>> {
    let mut reader = KeyReader::new(key, USR).map_err(|e| Error::decode(key, e))?;
    let user = reader.bytes().map_err(|e| Error::decode(key, e))?;
    reader.finish().map_err(|e| Error::decode(key, e))?;
    Ok(user)
}

/// Frames a caller value.
pub(crate) fn encode(value: &[u8]) -> Bytes {
    Bytes::from(seq_core::frame::encode(VERSION, value))
}

/// Unframes the value stored at `key`.
pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Bytes> {
    let body = seq_core::frame::decode_expect(bytes, VERSION).map_err(|e| Error::decode(key, e))?;
    Ok(Bytes::copy_from_slice(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_keep_prefixes_and_order() {
        let keys: Vec<&[u8]> = vec![b"", b"a", b"a\0", b"a\0\x01", b"a\x01", b"ab", b"b\xff"];
        let encoded: Vec<Vec<u8>> = keys.iter().map(|k| key(k)).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(sorted, encoded);
        for (k, e) in keys.iter().zip(&encoded) {
            assert_eq!(&user_key_of(e).unwrap()[..], *k);
            for (other, oe) in keys.iter().zip(&encoded) {
                assert_eq!(
                    other.starts_with(k),
                    oe.starts_with(&prefix(k)),
                    "{k:?} {other:?}"
                );
            }
        }
    }
}
