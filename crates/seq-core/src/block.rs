//! The block record: a durable reservation of ticks `[base, base + size)`.

use crate::error::{Error, Result};
use crate::frame;

/// A reservation of ticks `[base, base + size)`.
///
/// Persisting a block record is the promise that no tick below
/// [`end`](Self::end) will ever be handed out again after a restart: on open,
/// allocation resumes at `end()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRecord {
    /// First tick of the block.
    pub base: u64,
    /// Number of ticks in the block; never 0 for a record built by
    /// [`new`](Self::new) or [`decode`](Self::decode).
    pub size: u64,
}

impl BlockRecord {
    /// Frame version of [`encode`](Self::encode).
    pub const VERSION: u8 = 1;

    const BODY_LEN: usize = 16;

    /// A block of `size` ticks starting at `base`.
    ///
    /// `size == 0` is [`Error::InvalidOptions`]; `base + size` past `u64` is
    /// [`Error::Exhausted`].
    pub fn new(base: u64, size: u64) -> Result<Self> {
        if size == 0 {
            return Err(Error::invalid_options("block size must be at least 1"));
        }
        if base.checked_add(size).is_none() {
            return Err(Error::exhausted(format!(
                "block of {size} ticks at {base} runs past the u64 tick space"
            )));
        }
        Ok(Self { base, size })
    }

    /// One past the last tick of the block (saturating for records built by
    /// hand with overflowing fields).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Fixed-width big-endian body (`base`, `size`) in a version-1 frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = [0u8; Self::BODY_LEN];
        body[..8].copy_from_slice(&self.base.to_be_bytes());
        body[8..].copy_from_slice(&self.size.to_be_bytes());
        frame::encode(Self::VERSION, &body)
    }

    /// Decodes [`encode`](Self::encode)'s output; anything else is
    /// [`Error::Corrupt`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let body = frame::decode_expect(bytes, Self::VERSION)?;
        let body: &[u8; Self::BODY_LEN] = body.try_into().map_err(|_| {
            Error::corrupt(format!(
                "block record body is {} bytes, expected {}",
                body.len(),
                Self::BODY_LEN
            ))
        })?;
        let mut base = [0u8; 8];
        let mut size = [0u8; 8];
        base.copy_from_slice(&body[..8]);
        size.copy_from_slice(&body[8..]);
        let (base, size) = (u64::from_be_bytes(base), u64::from_be_bytes(size));
        Self::new(base, size)
            .map_err(|e| Error::corrupt(format!("invalid block record {base}+{size}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_compute_end() {
        assert_eq!(BlockRecord::new(10, 5).unwrap().end(), 15);
    }

    #[test]
    fn should_reject_empty_block() {
        assert!(matches!(
            BlockRecord::new(3, 0),
            Err(Error::InvalidOptions { .. })
        ));
    }

    #[test]
    fn should_reject_block_past_u64() {
        assert!(matches!(
            BlockRecord::new(u64::MAX, 1),
            Err(Error::Exhausted { .. })
        ));
        assert!(BlockRecord::new(u64::MAX - 1, 1).is_ok());
    }

    #[test]
    fn should_round_trip_fixed_width() {
        let b = BlockRecord::new(1 << 40, 4096).unwrap();
        let bytes = b.encode();
        assert_eq!(bytes.len(), 16 + frame::OVERHEAD);
        assert_eq!(BlockRecord::decode(&bytes).unwrap(), b);
    }

    #[test]
    fn should_reject_decoded_zero_size() {
        let bytes = frame::encode(BlockRecord::VERSION, &[0u8; 16]);
        assert!(matches!(
            BlockRecord::decode(&bytes),
            Err(Error::Corrupt { .. })
        ));
    }
}
