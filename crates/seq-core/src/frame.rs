//! Generic record framing: `[version u8][body][crc32 BE of version + body]`.
//!
//! Every record seq stores is framed, so a torn or bit-flipped value is a
//! typed [`Error::Corrupt`], never a misread or a panic.

use crate::error::{Error, Result};

/// Bytes a frame adds around its body: one version byte and a 4-byte CRC.
pub const OVERHEAD: usize = 1 + CRC_LEN;

const CRC_LEN: usize = 4;

/// Frames `body` with `version` and a CRC-32 of both.
pub fn encode(version: u8, body: &[u8]) -> Vec<u8> {
    encode_with(version, body.len(), |out| out.extend_from_slice(body))
}

/// Frames the body `write` appends to the buffer it is given, with
/// `version` and a CRC-32 of both: [`encode`] without building the body
/// apart first. `body_len` sizes the one allocation (a guess is fine).
///
/// ```
/// use seq_core::frame;
///
/// let framed = frame::encode_with(3, 5, |body| body.extend_from_slice(b"hello"));
/// assert_eq!(framed, frame::encode(3, b"hello"));
/// assert_eq!(frame::decode(&framed).unwrap(), (3, &b"hello"[..]));
/// ```
pub fn encode_with(version: u8, body_len: usize, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(body_len + OVERHEAD);
    out.push(version);
    write(&mut out);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Checks length and checksum and returns `(version, body)`.
pub fn decode(bytes: &[u8]) -> Result<(u8, &[u8])> {
    if bytes.len() < OVERHEAD {
        return Err(Error::corrupt(format!(
            "frame too short: {} bytes, need at least {OVERHEAD}",
            bytes.len()
        )));
    }
    let (content, crc_bytes) = bytes.split_at(bytes.len() - CRC_LEN);
    let mut stored = [0u8; CRC_LEN];
    stored.copy_from_slice(crc_bytes);
    let stored = u32::from_be_bytes(stored);
    let actual = crc32fast::hash(content);
    if stored != actual {
        return Err(Error::corrupt(format!(
            "checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"
        )));
    }
    match content.split_first() {
        Some((&version, body)) => Ok((version, body)),
        None => Err(Error::corrupt("frame has no version byte")),
    }
}

/// Like [`decode`], and also requires the frame's version to be `version`.
pub fn decode_expect(bytes: &[u8], version: u8) -> Result<&[u8]> {
    let (found, body) = decode(bytes)?;
    if found != version {
        return Err(Error::corrupt(format!(
            "unsupported version {found} (expected {version})"
        )));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_round_trip_body_and_version() {
        let framed = encode(7, b"hello");
        assert_eq!(framed.len(), 5 + OVERHEAD);
        assert_eq!(decode(&framed).unwrap(), (7, &b"hello"[..]));
        assert_eq!(decode_expect(&framed, 7).unwrap(), b"hello");
    }

    #[test]
    fn should_round_trip_empty_body() {
        let framed = encode(1, b"");
        assert_eq!(decode(&framed).unwrap(), (1, &b""[..]));
    }

    #[test]
    fn should_reject_truncated_frame() {
        let framed = encode(1, b"abc");
        for len in 0..framed.len() {
            assert!(matches!(decode(&framed[..len]), Err(Error::Corrupt { .. })));
        }
    }

    #[test]
    fn should_reject_flipped_bit() {
        let framed = encode(1, b"abc");
        for i in 0..framed.len() {
            let mut bad = framed.clone();
            bad[i] ^= 0x10;
            assert!(matches!(decode(&bad), Err(Error::Corrupt { .. })));
        }
    }

    #[test]
    fn should_reject_unsupported_version() {
        let framed = encode(2, b"abc");
        let err = decode_expect(&framed, 1).unwrap_err();
        assert!(err.to_string().contains("unsupported version 2"), "{err}");
    }
}
