//! The stored form of a named sequence: `SEQ` + name → definition, the
//! incarnation that created it and the last durable block record.

use bytes::Bytes;
use seq_core::keys::{KeyBuilder, KeyReader, keyspace};
use seq_core::{BlockRecord, SequenceDef};

use crate::error::{Error, Result};

/// Frame version of [`SeqRecord::encode`].
const VERSION: u8 = 1;

/// Fixed part of the body: `created`, block `base`, block `size` (0 = none).
const FIXED_LEN: usize = 24;

/// One sequence as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqRecord {
    /// The definition it was created with.
    pub(crate) def: SequenceDef,
    /// The commit number of the `create` that made it: tells a re-created
    /// sequence of the same name apart from a dropped one.
    pub(crate) created: u64,
    /// The last durable block: ticks below its end may have been handed out.
    pub(crate) block: Option<BlockRecord>,
}

impl SeqRecord {
    /// End of the durable reservation (0 before the first block).
    pub(crate) fn reserved_end(&self) -> u64 {
        self.block.map_or(0, |b| b.end())
    }

    /// `[created u64][block base u64][block size u64 (0 = none)][definition frame]`
    /// in a version-1 frame; integers big-endian.
    pub(crate) fn encode(&self) -> Bytes {
        let def = self.def.encode();
        let mut body = Vec::with_capacity(FIXED_LEN + def.len());
        body.extend_from_slice(&self.created.to_be_bytes());
        let (base, size) = self.block.map_or((0, 0), |b| (b.base, b.size));
        body.extend_from_slice(&base.to_be_bytes());
        body.extend_from_slice(&size.to_be_bytes());
        body.extend_from_slice(&def);
        Bytes::from(seq_core::frame::encode(VERSION, &body))
    }

    /// Decodes the record stored at `key`; anything malformed is
    /// [`Error::Corrupt`] naming the key.
    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self> {
        let body =
            seq_core::frame::decode_expect(bytes, VERSION).map_err(|e| Error::decode(key, e))?;
        if body.len() < FIXED_LEN {
            return Err(Error::corrupt_at(key, "sequence record is too short"));
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&body[i..i + 8]);
            u64::from_be_bytes(w)
        };
        let (created, base, size) = (word(0), word(8), word(16));
        let block = if size == 0 {
            None
        } else {
            Some(BlockRecord::new(base, size).map_err(|e| Error::corrupt_at(key, e))?)
        };
        let def = SequenceDef::decode(&body[FIXED_LEN..]).map_err(|e| Error::decode(key, e))?;
        Ok(Self {
            def,
            created,
            block,
        })
    }
}

/// `SEQ` + name.
pub(crate) fn key(name: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::SEQ).str(name).build()
}

/// The name in a `SEQ` key.
pub(crate) fn name_of(key: &[u8]) -> Result<String> {
    let mut reader = KeyReader::new(key, keyspace::SEQ).map_err(|e| Error::decode(key, e))?;
    let name = reader.str().map_err(|e| Error::decode(key, e))?;
    reader.finish().map_err(|e| Error::decode(key, e))?;
    Ok(name)
}

/// Every `SEQ` key starts with this.
pub(crate) fn keyspace_prefix() -> Vec<u8> {
    keyspace::SEQ.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use seq_core::SequenceOptions;

    #[test]
    fn should_round_trip_record() {
        let def = SequenceOptions {
            increment: -3,
            ..SequenceOptions::default()
        }
        .validate()
        .unwrap();
        for block in [None, Some(BlockRecord::new(40, 4096).unwrap())] {
            let record = SeqRecord {
                def,
                created: 7,
                block,
            };
            let k = key("orders");
            assert_eq!(SeqRecord::decode(&k, &record.encode()).unwrap(), record);
            assert_eq!(name_of(&k).unwrap(), "orders");
        }
    }

    #[test]
    fn should_reject_corrupt_record() {
        let def = SequenceOptions::default().validate().unwrap();
        let mut bytes = SeqRecord {
            def,
            created: 1,
            block: None,
        }
        .encode()
        .to_vec();
        bytes[3] ^= 1;
        assert!(matches!(
            SeqRecord::decode(b"k", &bytes),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            SeqRecord::decode(b"k", b""),
            Err(Error::Corrupt { .. })
        ));
    }
}
