//! Store metadata records: the store's identity and the commit oracle's
//! high-water mark, in the `MET` keyspace.

use bytes::Bytes;
use seq_core::keys::{KeyBuilder, keyspace};
use seq_storage::Storage;
use uuid::Uuid;

use crate::error::{Error, Result};

/// Version of the on-disk layout this build writes. Version 3: a
/// single-writer store rewrites a segment's status record only when its
/// first sequence, first timestamp or idempotency floor moves, as a bound
/// that the segment's newest entry completes (version 2 rewrote it on every
/// produce). Version 2: one space-index record per commit group and space
/// (version 1 had one index key per entry).
pub(crate) const FORMAT_VERSION: u32 = 3;

/// The oldest layout this build reads: a format-2 store is a format-3 store
/// whose status records are all exact, so opening one for writing only
/// marks it format 3 (a build that reads only format 2 then refuses it
/// rather than misread a bound). Older stores are refused at open.
const OLDEST_READABLE: u32 = 2;

const RECORD_VERSION: u8 = 1;

/// Key of the store identity record.
pub(crate) fn store_key() -> Vec<u8> {
    KeyBuilder::new(keyspace::MET).str("store").build()
}

/// Key of the commit-number high-water mark.
pub(crate) fn commit_key() -> Vec<u8> {
    KeyBuilder::new(keyspace::MET).str("commit").build()
}

/// Key of a space's clock in multi-writer mode: the largest entry
/// timestamp any writer gave the space.
pub(crate) fn space_clock_key(space: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::MET)
        .str("clock")
        .str(space)
        .build()
}

/// Encodes a counter record (the commit high-water mark, a space clock).
pub(crate) fn encode_counter(max: u64) -> Bytes {
    Bytes::from(seq_core::frame::encode(RECORD_VERSION, &max.to_be_bytes()))
}

/// Reads the commit high-water mark (0 for a new store). In multi-writer
/// mode it is the end of the commit numbers reserved store-wide.
pub(crate) fn load_commit(storage: &dyn Storage) -> Result<u64> {
    let key = commit_key();
    match storage.get(&key)? {
        Some(bytes) => decode_counter(&key, &bytes),
        None => Ok(0),
    }
}

/// Decodes a counter record stored under `key`.
pub(crate) fn decode_counter(key: &[u8], bytes: &[u8]) -> Result<u64> {
    let body =
        seq_core::frame::decode_expect(bytes, RECORD_VERSION).map_err(|e| Error::decode(key, e))?;
    let raw: [u8; 8] = body
        .try_into()
        .map_err(|_| Error::corrupt_at(key, "counter record is not 8 bytes"))?;
    Ok(u64::from_be_bytes(raw))
}

/// Reads the store's identity, creating it on first open, and marks a
/// store of an older readable format as this build's (see
/// [`OLDEST_READABLE`]).
pub(crate) fn load_or_create_identity(storage: &dyn Storage) -> Result<Uuid> {
    match load_identity_and_format(storage)? {
        Some((id, FORMAT_VERSION)) => Ok(id),
        Some((id, _older)) => {
            upgrade_format(storage, id)?;
            Ok(id)
        }
        None => create_identity(storage, Uuid::new_v4()),
    }
}

/// Reads the store's identity (`None` when the storage holds no store yet).
pub(crate) fn load_identity(storage: &dyn Storage) -> Result<Option<Uuid>> {
    Ok(load_identity_and_format(storage)?.map(|(id, _)| id))
}

/// Reads the store's identity and format; a format this build cannot read
/// is [`Error::Corrupt`] naming it.
fn load_identity_and_format(storage: &dyn Storage) -> Result<Option<(Uuid, u32)>> {
    let key = store_key();
    let Some(bytes) = storage.get(&key)? else {
        return Ok(None);
    };
    let body = seq_core::frame::decode_expect(&bytes, RECORD_VERSION)
        .map_err(|e| Error::decode(&key, e))?;
    if body.len() != 20 {
        return Err(Error::corrupt_at(&key, "store record is not 20 bytes"));
    }
    let (id, version) = body.split_at(16);
    let version = u32::from_be_bytes([version[0], version[1], version[2], version[3]]);
    if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
        return Err(Error::corrupt_at(
            &key,
            format!(
                "store format {version} is not supported (this build reads formats \
                 {OLDEST_READABLE} to {FORMAT_VERSION})"
            ),
        ));
    }
    let id = Uuid::from_slice(id).map_err(|e| Error::corrupt_at(&key, e))?;
    Ok(Some((id, version)))
}

/// The identity record of store `id` in this build's format.
fn identity_record(id: Uuid) -> Vec<u8> {
    let mut body = id.as_bytes().to_vec();
    body.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    seq_core::frame::encode(RECORD_VERSION, &body)
}

/// Marks store `id` as this build's format (synced). Another process
/// doing the same at once is harmless: both write the same record.
fn upgrade_format(storage: &dyn Storage, id: Uuid) -> Result<()> {
    let mut batch = seq_storage::WriteBatch::new();
    batch.put(store_key(), identity_record(id));
    storage.write(batch, seq_storage::Durability::Sync)?;
    Ok(())
}

/// Writes the identity record with `id` (synced) unless one exists; returns
/// the identity the storage ends up with (the existing one if someone else
/// created it first). Used on first open and by `StoreRoot::create`, which
/// names the store's directory after `id`.
pub(crate) fn create_identity(storage: &dyn Storage, id: Uuid) -> Result<Uuid> {
    let key = store_key();
    let mut batch = seq_storage::WriteBatch::new();
    batch.require_absent(key.clone());
    batch.put(key, identity_record(id));
    match storage.write(batch, seq_storage::Durability::Sync) {
        Ok(()) => Ok(id),
        // Someone else created it first: use theirs.
        Err(seq_storage::Error::Conflict { .. }) => load_identity(storage)?
            .ok_or_else(|| Error::corrupt_at(&store_key(), "identity conflict but no record")),
        Err(e) => Err(e.into()),
    }
}
