//! The space-merge offset: an order-preserving position in a space's merged
//! order `(timestamp, segment, sequence)`.

use crate::error::{Error, Result};
use crate::escape;

/// A position in a space's merged order. Derived `Ord` is the merge order,
/// and the byte order of [`encode`](Self::encode) (and of
/// [`to_hex`](Self::to_hex)) is the same order.
///
/// `SpaceOffset::default()` (all zero, empty segment) sorts before every
/// entry: it means "from the beginning".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SpaceOffset {
    /// Commit-group timestamp of the entry (microseconds).
    pub timestamp: u64,
    /// Segment of the entry.
    pub segment: String,
    /// Sequence of the entry in its segment.
    pub sequence: u64,
}

impl SpaceOffset {
    /// Timestamp big-endian, escaped segment, sequence big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.segment.len() + 18);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        escape::escape_into(&mut out, self.segment.as_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out
    }

    /// Decodes [`encode`](Self::encode)'s output; anything else is
    /// [`Error::Corrupt`].
    pub fn decode(b: &[u8]) -> Result<Self> {
        let Some((timestamp, rest)) = b.split_first_chunk::<8>() else {
            return Err(Error::corrupt("space offset too short for its timestamp"));
        };
        let (segment, used) = escape::unescape(rest)?;
        let segment = String::from_utf8(segment)
            .map_err(|e| Error::corrupt(format!("space offset segment is not UTF-8: {e}")))?;
        let rest = &rest[used..];
        let sequence: &[u8; 8] = rest.try_into().map_err(|_| {
            Error::corrupt(format!(
                "space offset needs 8 bytes of sequence, has {}",
                rest.len()
            ))
        })?;
        Ok(Self {
            timestamp: u64::from_be_bytes(*timestamp),
            segment,
            sequence: u64::from_be_bytes(*sequence),
        })
    }

    /// Lowercase hex of [`encode`](Self::encode); sorts like the offset.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let bytes = self.encode();
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
        }
        out
    }

    /// Parses [`to_hex`](Self::to_hex)'s output (either case); anything else
    /// is [`Error::Corrupt`].
    pub fn from_hex(s: &str) -> Result<Self> {
        if !s.len().is_multiple_of(2) {
            return Err(Error::corrupt(format!(
                "space offset hex has odd length {}",
                s.len()
            )));
        }
        let nibble = |c: u8| -> Result<u8> {
            char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
                .ok_or_else(|| {
                    Error::corrupt(format!(
                        "space offset hex has non-hex character {:?}",
                        char::from(c)
                    ))
                })
        };
        let bytes = s
            .as_bytes()
            .chunks_exact(2)
            .map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?))
            .collect::<Result<Vec<u8>>>()?;
        Self::decode(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(timestamp: u64, segment: &str, sequence: u64) -> SpaceOffset {
        SpaceOffset {
            timestamp,
            segment: segment.into(),
            sequence,
        }
    }

    #[test]
    fn should_round_trip_offset() {
        let o = off(1_700_000_000_000_000, "seg\0ment", 9);
        assert_eq!(SpaceOffset::decode(&o.encode()).unwrap(), o);
        assert_eq!(SpaceOffset::from_hex(&o.to_hex()).unwrap(), o);
        assert_eq!(
            SpaceOffset::from_hex(&o.to_hex().to_uppercase()).unwrap(),
            o
        );
    }

    #[test]
    fn should_sort_in_merge_order() {
        let ordered = [
            off(1, "b", 9),
            off(2, "a", 5),
            off(2, "a", 6),
            off(2, "a\0", 1),
            off(2, "ab", 0),
            off(3, "", 0),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].encode() < pair[1].encode());
            assert!(pair[0].to_hex() < pair[1].to_hex());
        }
    }

    #[test]
    fn should_start_before_everything_by_default() {
        assert!(SpaceOffset::default() <= off(0, "", 0));
        assert!(SpaceOffset::default().encode() < off(0, "a", 0).encode());
    }

    #[test]
    fn should_reject_bad_hex() {
        assert!(SpaceOffset::from_hex("abc").is_err());
        assert!(SpaceOffset::from_hex("zz").is_err());
        assert!(SpaceOffset::from_hex("").is_err());
    }
}
