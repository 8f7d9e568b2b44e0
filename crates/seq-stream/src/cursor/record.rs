//! The stored cursor record (`CUR` + name) and its framing.
//!
//! Body (all integers big-endian), framed by `seq_core::frame` version 1:
//!
//! ```text
//! commit u64, updated_at u64,
//! spaces u32,   then per space:   space str, offset bytes (SpaceOffset::encode)
//! segments u32, then per segment: space str, segment str, sequence u64
//! ```
//!
//! where `str`/`bytes` are a `u32` length followed by the bytes.

use std::collections::BTreeMap;

use seq_core::SpaceOffset;
use seq_core::keys::{KeyBuilder, KeyReader, keyspace};

use super::{Cursor, CursorPosition};
use crate::error::{Error, Result};

const VERSION: u8 = 1;

/// Key of cursor `name`.
pub(crate) fn key(name: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::CUR).str(name).build()
}

/// Reads the cursor name back from its key.
pub(crate) fn name_of(key: &[u8]) -> Result<String> {
    let decode = |e| Error::decode(key, e);
    let mut reader = KeyReader::new(key, keyspace::CUR).map_err(decode)?;
    let name = reader.str().map_err(decode)?;
    reader.finish().map_err(decode)?;
    Ok(name)
}

/// Encodes a cursor's record.
pub(crate) fn encode(cursor: &Cursor) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&cursor.commit.to_be_bytes());
    body.extend_from_slice(&cursor.updated_at.to_be_bytes());
    put_len(&mut body, cursor.position.spaces.len());
    for (space, offset) in &cursor.position.spaces {
        put_bytes(&mut body, space.as_bytes());
        put_bytes(&mut body, &offset.encode());
    }
    put_len(&mut body, cursor.position.segments.len());
    for ((space, segment), sequence) in &cursor.position.segments {
        put_bytes(&mut body, space.as_bytes());
        put_bytes(&mut body, segment.as_bytes());
        body.extend_from_slice(&sequence.to_be_bytes());
    }
    seq_core::frame::encode(VERSION, &body)
}

/// Decodes the record stored at `key`; anything malformed is
/// [`Error::Corrupt`].
pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Cursor> {
    let name = name_of(key)?;
    let body = seq_core::frame::decode_expect(value, VERSION).map_err(|e| Error::decode(key, e))?;
    let mut r = Reader { rest: body, key };
    let commit = r.u64()?;
    let updated_at = r.u64()?;
    let mut spaces = BTreeMap::new();
    for _ in 0..r.u32()? {
        let space = r.string()?;
        let offset = SpaceOffset::decode(r.bytes()?).map_err(|e| Error::decode(key, e))?;
        spaces.insert(space, offset);
    }
    let mut segments = BTreeMap::new();
    for _ in 0..r.u32()? {
        let space = r.string()?;
        let segment = r.string()?;
        segments.insert((space, segment), r.u64()?);
    }
    if !r.rest.is_empty() {
        return Err(Error::corrupt_at(
            key,
            "trailing bytes after the cursor record",
        ));
    }
    Ok(Cursor {
        name,
        position: CursorPosition { spaces, segments },
        commit,
        updated_at,
    })
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Names are at most 255 bytes and offsets a little more; maps of more
    // than u32::MAX entries cannot be built in memory anyway.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    rest: &'a [u8],
    key: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::corrupt_at(self.key, "cursor record is truncated"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let raw = self.take(4)?;
        Ok(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(raw))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        self.take(len)
    }

    fn string(&mut self) -> Result<String> {
        let key = self.key;
        String::from_utf8(self.bytes()?.to_vec()).map_err(|e| {
            Error::corrupt_at(key, format!("cursor record holds a non-UTF-8 name: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        let position = CursorPosition::new()
            .with_space(
                "orders",
                SpaceOffset {
                    timestamp: 7,
                    segment: "a\0b".into(),
                    sequence: 3,
                },
            )
            .with_space("empty", SpaceOffset::default())
            .with_segment("orders", "eu", 42);
        Cursor {
            name: "c\0\u{1}x".into(),
            position,
            commit: 9,
            updated_at: 11,
        }
    }

    #[test]
    fn should_round_trip_cursor_record() {
        let cursor = sample();
        let key = key(&cursor.name);
        assert_eq!(decode(&key, &encode(&cursor)).unwrap(), cursor);
    }

    #[test]
    fn should_reject_truncated_or_flipped_record() {
        let cursor = sample();
        let key = key(&cursor.name);
        let value = encode(&cursor);
        for len in 0..value.len() {
            assert!(matches!(
                decode(&key, &value[..len]),
                Err(Error::Corrupt { .. })
            ));
        }
        for i in 0..value.len() {
            let mut bad = value.clone();
            bad[i] ^= 0x01;
            assert!(matches!(decode(&key, &bad), Err(Error::Corrupt { .. })));
        }
    }

    #[test]
    fn should_reject_trailing_body_bytes() {
        let cursor = sample();
        let key = key(&cursor.name);
        let (_, body) = seq_core::frame::decode(&encode(&cursor))
            .map(|(v, b)| (v, b.to_vec()))
            .unwrap();
        let mut longer = body;
        longer.push(0);
        let framed = seq_core::frame::encode(VERSION, &longer);
        assert!(matches!(decode(&key, &framed), Err(Error::Corrupt { .. })));
    }
}
