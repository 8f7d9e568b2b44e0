//! Oxia-style sequence keys: `put_sequenced(prefix, value, deltas)` stores the
//! value under a key the writer generates, `prefix` followed by one
//! `-{counter:020}` group per delta, so byte order equals numeric order.
//!
//! The writer keeps the last generated counters of each prefix in a counter
//! record (`SKC` + prefix), so deleting the highest key never makes its suffix
//! reusable. Records live under `SKY` + key with their value and version (the
//! commit number that wrote them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use seq_core::keys::{KeyBuilder, KeyReader, keyspace};
use seq_core::seqkey;
use seq_storage::{KeyRange, ScanOptions};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::options::WriteOptions;
use crate::store::Store;
use crate::writer::{AfterCommit, GroupTx};

const RECORD_VERSION: u8 = 1;

/// A record stored with [`Store::put_sequenced`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedRecord {
    /// The generated key.
    pub key: String,
    /// The stored value.
    pub value: Bytes,
    /// The commit number of the write that stored it.
    pub version: u64,
}

/// Per-store registry of [`SequenceUpdates`] watchers: one watch per prefix
/// holding the highest key known so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct Registry {
    watchers: Arc<Mutex<HashMap<String, watch::Sender<Option<String>>>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<Option<String>>>> {
        self.watchers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes `key` as the newest key of `prefix` (keys only move up).
    fn publish(&self, prefix: &str, key: &str) {
        let mut watchers = self.lock();
        let Some(sender) = watchers.get(prefix) else {
            return;
        };
        if sender.receiver_count() == 0 {
            watchers.remove(prefix);
            return;
        }
        sender.send_if_modified(|current| raise(current, key));
    }

    /// Drops every watcher: open [`SequenceUpdates`] streams end.
    pub(crate) fn close(&self) {
        self.lock().clear();
    }
}

/// Sets `current` to `key` if `key` is higher; true when it changed.
fn raise(current: &mut Option<String>, key: &str) -> bool {
    if current.as_deref().is_some_and(|c| c >= key) {
        return false;
    }
    *current = Some(key.to_owned());
    true
}

/// A stream of the newest sequence keys of one prefix, from
/// [`Store::sequence_updates`].
///
/// The first item is the current highest key (when the prefix has one), then
/// each new key as it is committed. Keys that arrive in a burst may coalesce
/// to the latest; keys never go backwards.
#[derive(Debug)]
pub struct SequenceUpdates {
    receiver: watch::Receiver<Option<String>>,
    last: Option<String>,
}

impl SequenceUpdates {
    /// The next new highest key. `None` once the store is closed.
    ///
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Option<Result<String>> {
        loop {
            {
                let current = self.receiver.borrow_and_update();
                if let Some(key) = current.as_ref()
                    && self.last.as_ref().is_none_or(|last| key > last)
                {
                    let key = key.clone();
                    drop(current);
                    self.last = Some(key.clone());
                    return Some(Ok(key));
                }
            }
            if self.receiver.changed().await.is_err() {
                return None;
            }
        }
    }
}

fn counter_key(prefix: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::SKC).str(prefix).build()
}

fn record_key(key: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::SKY).str(key).build()
}

/// Storage prefix of every `SKY` key whose sequence key starts with
/// `prefix` + `-` (escaped bytes without the terminator).
fn record_prefix(prefix: &str) -> Vec<u8> {
    let mut built = record_key(&format!("{prefix}{}", seqkey::SEPARATOR));
    built.truncate(built.len() - 2);
    built
}

fn key_of(storage_key: &[u8]) -> Result<String> {
    let mut reader =
        KeyReader::new(storage_key, keyspace::SKY).map_err(|e| Error::decode(storage_key, e))?;
    let key = reader.str().map_err(|e| Error::decode(storage_key, e))?;
    reader.finish().map_err(|e| Error::decode(storage_key, e))?;
    Ok(key)
}

fn encode_record(value: &[u8], version: u64) -> Bytes {
    let mut body = Vec::with_capacity(8 + value.len());
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(value);
    Bytes::from(seq_core::frame::encode(RECORD_VERSION, &body))
}

fn decode_record(storage_key: &[u8], key: String, bytes: &[u8]) -> Result<SequencedRecord> {
    let body = seq_core::frame::decode_expect(bytes, RECORD_VERSION)
        .map_err(|e| Error::decode(storage_key, e))?;
    let Some((version, value)) = body.split_first_chunk::<8>() else {
        return Err(Error::corrupt_at(
            storage_key,
            "sequence-key record has no version",
        ));
    };
    Ok(SequencedRecord {
        key,
        value: Bytes::copy_from_slice(value),
        version: u64::from_be_bytes(*version),
    })
}

fn check_prefix(prefix: &str) -> Result<()> {
    seq_core::validate_name("sequence-key prefix", prefix).map_err(Error::from)
}

impl Store {
    /// Stores `value` under the next sequence key of `prefix` and returns the
    /// key and its version (the commit number). Durable before it returns.
    ///
    /// The key is `prefix` followed, for each delta, by `-` and a 20-digit
    /// zero-padded counter: level `i` becomes level `i` of the last generated
    /// key plus `deltas[i]` (missing levels count from 0). The last generated
    /// counters are kept in a record of their own, so a suffix is never
    /// generated twice, even after the highest key is deleted.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidArgument`]: `prefix` is empty, longer than 255 bytes
    ///   or holds a control byte; `deltas` is empty, `deltas[0] == 0`, or it
    ///   has fewer levels than the prefix already uses. Nothing is written.
    /// * [`Error::Exhausted`]: a counter would pass `u64::MAX`.
    /// * [`Error::Storage`] / [`Error::Closed`]: the write failed.
    pub async fn put_sequenced(
        &self,
        prefix: &str,
        value: impl Into<Bytes>,
        deltas: &[u64],
    ) -> Result<(String, u64)> {
        self.put_sequenced_with(prefix, value, deltas, WriteOptions::default())
            .await
    }

    /// [`Store::put_sequenced`] with explicit [`WriteOptions`]: a caller-chosen
    /// commit number (`seqnum`, becoming the record's version) and/or an
    /// acknowledgement before the write is durable (`await_durable: false`;
    /// a crash before the next sync may then lose the record, and its key may
    /// be generated again).
    ///
    /// # Errors
    ///
    /// As [`Store::put_sequenced`], plus [`Error::InvalidSeqnum`] when
    /// `options.seqnum` is not 0 and not above the current commit number
    /// (nothing is written).
    pub async fn put_sequenced_with(
        &self,
        prefix: &str,
        value: impl Into<Bytes>,
        deltas: &[u64],
        options: WriteOptions,
    ) -> Result<(String, u64)> {
        self.put_sequenced_inner(prefix, value.into(), deltas, options, false)
            .await
    }

    /// [`Store::put_sequenced`] that never waits for room in the writer's
    /// queue.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] at once when the queue is full (nothing is written);
    /// otherwise as [`Store::put_sequenced`].
    pub async fn try_put_sequenced(
        &self,
        prefix: &str,
        value: impl Into<Bytes>,
        deltas: &[u64],
    ) -> Result<(String, u64)> {
        self.put_sequenced_inner(prefix, value.into(), deltas, WriteOptions::default(), true)
            .await
    }

    async fn put_sequenced_inner(
        &self,
        prefix: &str,
        value: Bytes,
        deltas: &[u64],
        options: WriteOptions,
        try_only: bool,
    ) -> Result<(String, u64)> {
        check_prefix(prefix)?;
        // Rejects empty deltas and a zero first delta before queueing.
        seqkey::next_counters(None, deltas)?;
        let deltas = deltas.to_vec();
        let prefix = prefix.to_owned();
        let registry = self.inner.seqkeys.clone();
        let published = prefix.clone();
        let prepare = move |tx: &mut GroupTx<'_>| {
            let ckey = counter_key(&prefix);
            let current = match tx.get(&ckey)? {
                Some(bytes) => {
                    Some(seqkey::decode_counters(&bytes).map_err(|e| Error::decode(&ckey, e))?)
                }
                None => None,
            };
            let next = seqkey::next_counters(current.as_deref(), &deltas)?;
            let key = seqkey::format_key(&prefix, &next);
            tx.put(ckey, Bytes::from(seqkey::encode_counters(&next)));
            tx.put(record_key(&key), encode_record(&value, tx.commit));
            Ok(key)
        };
        // Watchers hear of the key from the writer thread once it is
        // committed, even when the caller stops waiting.
        let after: AfterCommit<String> = Box::new(move |key| registry.publish(&published, key));
        let (key, committed) = self
            .execute_after(options, try_only, prepare, Some(after))
            .await?;
        Ok((key, committed.commit))
    }

    /// The record stored under sequence key `key`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when it does not decode; [`Error::Storage`] /
    /// [`Error::Closed`] when the read fails.
    pub async fn get_sequenced(&self, key: &str) -> Result<Option<SequencedRecord>> {
        let storage_key = record_key(key);
        let key = key.to_owned();
        self.seq_read(move |storage| {
            storage
                .get(&storage_key)?
                .map(|bytes| decode_record(&storage_key, key, &bytes))
                .transpose()
        })
        .await
    }

    /// Up to `limit` records of `prefix`, in key order (which is numeric
    /// order of the counters).
    ///
    /// # Errors
    ///
    /// As [`Store::get_sequenced`].
    pub async fn range_sequenced(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<SequencedRecord>> {
        let owned = prefix.to_owned();
        self.seq_read(move |storage| {
            let range = KeyRange::prefix(record_prefix(&owned));
            let mut out = Vec::new();
            for item in storage.scan(range, ScanOptions::forward())? {
                if out.len() >= limit {
                    break;
                }
                let (storage_key, bytes) = item?;
                let key = key_of(&storage_key)?;
                // Skip keys of a longer prefix that happens to start alike.
                if seqkey::parse_key(&owned, &key).is_err() {
                    continue;
                }
                out.push(decode_record(&storage_key, key, &bytes)?);
            }
            Ok(out)
        })
        .await
    }

    /// Deletes the record under `key`; true when there was one. Its suffix is
    /// never generated again. Durable before it returns.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] / [`Error::Closed`] when the write fails.
    pub async fn delete_sequenced(&self, key: &str) -> Result<bool> {
        let storage_key = record_key(key);
        let (existed, _) = self
            .execute(WriteOptions::durable(), move |tx| {
                let existed = tx.get(&storage_key)?.is_some();
                if existed {
                    tx.delete(storage_key.clone());
                }
                Ok(existed)
            })
            .await?;
        Ok(existed)
    }

    /// A stream of the newest keys of `prefix`: the current highest key
    /// first (if any), then each new one as it is committed (bursts may
    /// coalesce to the latest). The stream ends when the store closes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an invalid prefix; [`Error::Corrupt`],
    /// [`Error::Storage`] or [`Error::Closed`] when reading the current
    /// highest key fails.
    pub async fn sequence_updates(&self, prefix: &str) -> Result<SequenceUpdates> {
        check_prefix(prefix)?;
        if self.is_closed() {
            return Err(Error::closed("store is closed"));
        }
        // Subscribe first, then read: a key committed in between is seen
        // either way, and the watch only ever moves up.
        let receiver = {
            let mut watchers = self.inner.seqkeys.lock();
            watchers
                .entry(prefix.to_owned())
                .or_insert_with(|| watch::channel(None).0)
                .subscribe()
        };
        let owned = prefix.to_owned();
        let highest = self
            .seq_read(move |storage| {
                let range = KeyRange::prefix(record_prefix(&owned));
                for item in storage.scan(range, ScanOptions::reverse())? {
                    let (storage_key, _) = item?;
                    let key = key_of(&storage_key)?;
                    if seqkey::parse_key(&owned, &key).is_ok() {
                        return Ok(Some(key));
                    }
                }
                Ok(None)
            })
            .await?;
        if let Some(key) = highest {
            self.inner.seqkeys.publish(prefix, &key);
        }
        let mut updates = SequenceUpdates {
            receiver,
            last: None,
        };
        updates.receiver.mark_changed();
        Ok(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_only_raise_the_watched_key() {
        let mut current = None;
        assert!(raise(&mut current, "p-2"));
        assert!(!raise(&mut current, "p-1"));
        assert!(!raise(&mut current, "p-2"));
        assert!(raise(&mut current, "p-3"));
        assert_eq!(current.as_deref(), Some("p-3"));
    }

    #[test]
    fn should_round_trip_record() {
        let key = record_key("p-00000000000000000001");
        let rec = decode_record(&key, "k".into(), &encode_record(b"v", 9)).unwrap();
        assert_eq!((rec.value.as_ref(), rec.version), (&b"v"[..], 9));
        assert_eq!(key_of(&key).unwrap(), "p-00000000000000000001");
        assert!(key.starts_with(&record_prefix("p")));
        assert!(!record_key("q-00000000000000000001").starts_with(&record_prefix("p")));
    }
}
