//! The stream keyspaces (see `docs/design.md`):
//!
//! * `DAT` + space + segment + seq → entry
//! * `IDX` + space + ts → the runs one commit group appended to the space
//!   (the space-time index, see [`super::index`])
//! * `INV` + space + segment → segment status
//! * `IDM` + space + segment + `"k"` + idempotency key → original sequence
//! * `IDM` + space + segment + `"s"` + seq → idempotency key (eviction order)

use seq_core::keys::{KeyBuilder, KeyReader, keyspace, prefix_upper_bound};

use crate::error::{Error, Result};

/// Key of entry `seq` of a segment.
pub(crate) fn dat(space: &str, segment: &str, seq: u64) -> Vec<u8> {
    KeyBuilder::new(keyspace::DAT)
        .str(space)
        .str(segment)
        .u64(seq)
        .build()
}

/// Prefix of every entry of a segment.
pub(crate) fn dat_prefix(space: &str, segment: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::DAT)
        .str(space)
        .str(segment)
        .build()
}

/// The sequence of a `DAT` key (its last eight bytes).
pub(crate) fn dat_seq(key: &[u8]) -> Result<u64> {
    key.last_chunk::<8>()
        .map(|raw| u64::from_be_bytes(*raw))
        .ok_or_else(|| Error::corrupt_at(key, "entry key too short for its sequence"))
}

/// Key of the index record of the commit group that gave `space`
/// timestamp `ts` (see [`super::index`]).
pub(crate) fn idx(space: &str, ts: u64) -> Vec<u8> {
    KeyBuilder::new(keyspace::IDX).str(space).u64(ts).build()
}

/// Prefix of a space's index.
pub(crate) fn idx_prefix(space: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::IDX).str(space).build()
}

/// Reads the timestamp back from an index key.
pub(crate) fn parse_idx(key: &[u8]) -> Result<u64> {
    let decode = |e| Error::decode(key, e);
    let mut reader = KeyReader::new(key, keyspace::IDX).map_err(decode)?;
    reader.bytes().map_err(decode)?;
    let timestamp = reader.u64().map_err(decode)?;
    reader.finish().map_err(decode)?;
    Ok(timestamp)
}

/// Status key of a segment.
pub(crate) fn inv(space: &str, segment: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::INV)
        .str(space)
        .str(segment)
        .build()
}

/// Prefix of every status of a space.
pub(crate) fn inv_prefix(space: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::INV).str(space).build()
}

/// Prefix of every status.
pub(crate) fn inv_all() -> Vec<u8> {
    keyspace::INV.to_vec()
}

/// Reads `(space, segment)` back from a status key.
pub(crate) fn parse_inv(key: &[u8]) -> Result<(String, String)> {
    let mut reader = KeyReader::new(key, keyspace::INV).map_err(|e| Error::decode(key, e))?;
    let space = reader.str().map_err(|e| Error::decode(key, e))?;
    let segment = reader.str().map_err(|e| Error::decode(key, e))?;
    reader.finish().map_err(|e| Error::decode(key, e))?;
    Ok((space, segment))
}

/// Idempotency lookup key.
pub(crate) fn idm_key(space: &str, segment: &str, key: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::IDM)
        .str(space)
        .str(segment)
        .str("k")
        .str(key)
        .build()
}

/// Idempotency eviction-log key of the record with sequence `seq`.
pub(crate) fn idm_log(space: &str, segment: &str, seq: u64) -> Vec<u8> {
    KeyBuilder::new(keyspace::IDM)
        .str(space)
        .str(segment)
        .str("s")
        .u64(seq)
        .build()
}

/// The first key after every key starting with `prefix`.
pub(crate) fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    // Keyspace-tagged prefixes never consist of 0xFF bytes only.
    prefix_upper_bound(prefix).unwrap_or_else(|| vec![0xFF; prefix.len() + 1])
}
