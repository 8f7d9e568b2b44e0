//! The order-preserving key codec for seq's internal keyspaces.
//!
//! A key is a three-byte keyspace tag followed by components: strings and
//! byte strings are escaped (`0x00` → `0x00 0xFF`) and terminated with
//! `0x00 0x01`; integers are fixed-width big-endian. Byte order of keys equals
//! the order of their component tuples, and no user name can forge or collide
//! with another key. A prefix built from complete components matches exactly
//! the keys that start with those components.

use crate::error::{Error, Result};
use crate::escape;

/// The keyspace tags (see `docs/design.md`).
pub mod keyspace {
    /// Store metadata: `MET` + name.
    pub const MET: &[u8; 3] = b"MET";
    /// Sequence definition and last durable block: `SEQ` + name.
    pub const SEQ: &[u8; 3] = b"SEQ";
    /// Sequence-key counter record: `SKC` + prefix.
    pub const SKC: &[u8; 3] = b"SKC";
    /// Sequence-key record: `SKY` + key.
    pub const SKY: &[u8; 3] = b"SKY";
    /// Segment entry: `DAT` + space + segment + seq.
    pub const DAT: &[u8; 3] = b"DAT";
    /// Space-time index: `IDX` + space + ts + segment + seq.
    pub const IDX: &[u8; 3] = b"IDX";
    /// Segment status: `INV` + space + segment.
    pub const INV: &[u8; 3] = b"INV";
    /// Commit record: `TXN` + commit.
    pub const TXN: &[u8; 3] = b"TXN";
    /// Idempotency record: `IDM` + space + segment + key.
    pub const IDM: &[u8; 3] = b"IDM";
    /// Lease: `LSE` + key.
    pub const LSE: &[u8; 3] = b"LSE";
    /// Cursor: `CUR` + name.
    pub const CUR: &[u8; 3] = b"CUR";
    /// Lease holder, on backends with leases of their own (etcd): `LSH` +
    /// key, attached to the holder's backend lease so it vanishes when that
    /// lease lapses.
    pub const LSH: &[u8; 3] = b"LSH";

    /// Every tag, for checks that they stay distinct.
    pub const ALL: [&[u8; 3]; 12] = [MET, SEQ, SKC, SKY, DAT, IDX, INV, TXN, IDM, LSE, CUR, LSH];
}

/// Builds a key component by component.
#[derive(Debug, Clone, Default)]
pub struct KeyBuilder {
    buf: Vec<u8>,
}

impl KeyBuilder {
    /// A key in the keyspace `tag`.
    pub fn new(tag: &[u8; 3]) -> Self {
        let mut buf = Vec::with_capacity(32);
        buf.extend_from_slice(tag);
        Self { buf }
    }

    /// Appends a string component.
    pub fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }

    /// Appends a byte-string component (escaped and terminated).
    pub fn bytes(mut self, b: &[u8]) -> Self {
        escape::escape_into(&mut self.buf, b);
        self
    }

    /// Appends a `u64` component (8 bytes big-endian).
    pub fn u64(mut self, v: u64) -> Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// The key so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The finished key.
    pub fn build(self) -> Vec<u8> {
        self.buf
    }
}

/// Starts a scan prefix in the keyspace `tag`; same as [`KeyBuilder::new`].
pub fn prefix_of(tag: &[u8; 3]) -> KeyBuilder {
    KeyBuilder::new(tag)
}

/// The smallest key greater than every key starting with `prefix` (an
/// exclusive upper bound for a prefix scan); `None` when no such key exists
/// (the prefix is empty or all `0xFF`).
pub fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Reads a key back, component by component, in the order it was built.
#[derive(Debug, Clone)]
pub struct KeyReader<'a> {
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    /// Starts reading `key`, which must be in the keyspace `tag`.
    pub fn new(key: &'a [u8], tag: &[u8; 3]) -> Result<Self> {
        match key.strip_prefix(&tag[..]) {
            Some(rest) => Ok(Self { rest }),
            None => Err(Error::corrupt(format!(
                "key does not start with keyspace tag {:?}",
                String::from_utf8_lossy(tag)
            ))),
        }
    }

    /// Reads a string component; non-UTF-8 content is [`Error::Corrupt`].
    pub fn str(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?)
            .map_err(|e| Error::corrupt(format!("string component is not UTF-8: {e}")))
    }

    /// Reads a byte-string component.
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        let (out, used) = escape::unescape(self.rest)?;
        self.rest = &self.rest[used..];
        Ok(out)
    }

    /// Reads a `u64` component.
    pub fn u64(&mut self) -> Result<u64> {
        let Some((word, rest)) = self.rest.split_first_chunk::<8>() else {
            return Err(Error::corrupt(format!(
                "u64 component needs 8 bytes, {} left",
                self.rest.len()
            )));
        };
        self.rest = rest;
        Ok(u64::from_be_bytes(*word))
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// Ends reading; trailing bytes are [`Error::Corrupt`].
    pub fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::corrupt(format!(
                "{} trailing bytes after the last key component",
                self.rest.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_back_composite_key() {
        let key = KeyBuilder::new(keyspace::DAT)
            .str("orders")
            .bytes(b"\0\xff")
            .u64(42)
            .build();
        let mut r = KeyReader::new(&key, keyspace::DAT).unwrap();
        assert_eq!(r.str().unwrap(), "orders");
        assert_eq!(r.bytes().unwrap(), b"\0\xff");
        assert_eq!(r.u64().unwrap(), 42);
        r.finish().unwrap();
    }

    #[test]
    fn should_reject_wrong_tag() {
        let key = KeyBuilder::new(keyspace::DAT).str("a").build();
        assert!(matches!(
            KeyReader::new(&key, keyspace::INV),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn should_reject_trailing_bytes() {
        let key = KeyBuilder::new(keyspace::TXN).u64(1).u64(2).build();
        let mut r = KeyReader::new(&key, keyspace::TXN).unwrap();
        r.u64().unwrap();
        assert!(matches!(r.finish(), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn should_reject_non_utf8_string_component() {
        let key = KeyBuilder::new(keyspace::CUR).bytes(&[0xC3]).build();
        let mut r = KeyReader::new(&key, keyspace::CUR).unwrap();
        assert!(matches!(r.str(), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn should_not_let_a_name_forge_a_neighbouring_key() {
        // ("a\0\x01b", "") must differ from ("a", "b\0\x01") and ("a", "b").
        let k1 = KeyBuilder::new(keyspace::INV)
            .str("a\0\x01b")
            .str("")
            .build();
        let k2 = KeyBuilder::new(keyspace::INV)
            .str("a")
            .str("b\0\x01")
            .build();
        let k3 = KeyBuilder::new(keyspace::INV).str("a").str("b").build();
        assert_ne!(k1, k2);
        assert_ne!(k1, k3);
        assert_ne!(k2, k3);
    }

    #[test]
    fn should_keep_keyspace_tags_distinct() {
        let mut tags = keyspace::ALL.to_vec();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), keyspace::ALL.len());
    }

    #[test]
    fn should_bound_prefix_scans() {
        let prefix = prefix_of(keyspace::DAT).str("s").build();
        let end = prefix_upper_bound(&prefix).unwrap();
        let inside = KeyBuilder::new(keyspace::DAT)
            .str("s")
            .str("z")
            .u64(u64::MAX)
            .build();
        let outside = KeyBuilder::new(keyspace::DAT).str("s\0").build();
        assert!(inside.starts_with(&prefix) && inside < end);
        assert!(!outside.starts_with(&prefix));
        assert_eq!(prefix_upper_bound(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xff"), None);
    }
}
