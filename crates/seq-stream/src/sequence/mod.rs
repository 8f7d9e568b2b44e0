//! Named durable sequences (SpacetimeDB / PostgreSQL style) and the gap-free
//! "invoice numbering" API.
//!
//! A sequence hands out *ticks* of a `u64` block space mapped to values
//! (`value = start + tick * increment`, see [`SequenceDef::value_at`]). Its
//! stored record (`SEQ` + name) holds the definition and the last durable
//! block `{ base, size }`: ticks below the block's end may have been handed
//! out, so a reopen resumes there.
//!
//! **Block sequences** (`block_size > 1`) hand numbers out on the caller's
//! thread from the durable reservation (a briefly held mutex, no writer round
//! trip) and top the reservation up in the background when it runs low. A
//! caller waits only when the reservation is truly empty, and concurrent
//! waiters share one block write.
//!
//! **Gap-free sequences** (`block_size == 1`) allocate through the writer:
//! every allocation is committed in the same atomic batch as its block record
//! (and, with [`Sequence::next_with`], the caller's own records), so a crash
//! skips nothing.

pub mod bench;
mod handle;
mod record;
mod user;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use seq_core::{SequenceDef, SequenceOptions};
use seq_storage::{KeyRange, ScanOptions};

pub(crate) use handle::{GiveBack, Shared};
pub use handle::{Sequence, SequenceRange, SequenceValues, UserRecords};
use record::SeqRecord;

use crate::error::{Error, Result};
use crate::options::WriteOptions;
use crate::store::Store;

/// What a sequence is: its name, definition and durable reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceInfo {
    /// The sequence's name.
    pub name: String,
    /// Its complete definition (defaults filled in).
    pub def: SequenceDef,
    /// End of the durable reservation in ticks: every tick below it may have
    /// been handed out, and a reopen resumes here.
    pub reserved_end: u64,
    /// The commit number of the `create` that made this sequence.
    pub created: u64,
}

impl SequenceInfo {
    /// True for a gap-free sequence (`block_size == 1`): every allocation is
    /// written through the writer, a crash skips nothing.
    pub fn is_gap_free(&self) -> bool {
        self.def.block_size == 1
    }
}

/// Per-store state of the open sequences: one shared allocator per name, so
/// that every handle of a sequence draws from the same reservation.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    open: tokio::sync::Mutex<HashMap<String, Arc<Shared>>>,
}

impl Registry {
    /// Gives back the unused reservation of every open sequence: called once
    /// the writer has stopped, on a clean close. Each sequence's stored block
    /// record is shrunk to end at the first tick never handed out, so the next
    /// open continues exactly where this one stopped instead of skipping the
    /// rest of the block. Allocation is stopped first, so a racing `next()`
    /// fails with [`Error::Closed`] rather than taking a tick that is then
    /// given back. Best effort: a failure (or a registry busy at this instant)
    /// only leaves the gap a crash would have left.
    pub(crate) fn give_back(&self, storage: &dyn seq_storage::Storage) {
        let Ok(open) = self.open.try_lock() else {
            return;
        };
        for shared in open.values() {
            let Some(unused) = shared.close_for_give_back() else {
                continue;
            };
            if let Err(error) = give_back_one(storage, &unused) {
                tracing::warn!(%error, sequence = unused.name, "could not give back the unused reservation");
            }
        }
    }
}

/// Shrinks the stored reservation of the sequence to end at `unused.next`,
/// if it still ends where this store's reservation ends (in multi-writer
/// mode another writer may have reserved beyond it: then nothing is given
/// back, as shrinking would reissue that writer's numbers).
fn give_back_one(storage: &dyn seq_storage::Storage, unused: &GiveBack<'_>) -> Result<()> {
    let next = unused.next;
    let key = record::key(unused.name);
    let Some(stored) = storage.get(&key)? else {
        return Ok(());
    };
    let mut rec = SeqRecord::decode(&key, &stored)?;
    if rec.created != unused.created || rec.reserved_end() != unused.end {
        return Ok(());
    }
    rec.block = match (rec.block, next) {
        (_, 0) | (None, _) => None,
        (Some(block), next) => {
            let base = block.base.min(next - 1);
            Some(seq_core::BlockRecord::new(base, next - base)?)
        }
    };
    let mut batch = seq_storage::WriteBatch::new();
    batch.require_equals(key.clone(), stored);
    batch.put(key, rec.encode());
    // Buffered: the close that calls this flushes once afterwards, so many
    // open sequences cost one sync, not one each. Losing the write in a crash
    // only keeps the larger (safe) reservation.
    storage.write(batch, seq_storage::Durability::Buffered)?;
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    seq_core::validate_name("sequence", name).map_err(Error::from)
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        what: format!("sequence {name:?}"),
    }
}

impl Store {
    /// Creates the sequence `name` and returns its definition.
    ///
    /// `options` follow PostgreSQL `bigint` sequences (defaults: start 1,
    /// increment 1, min 1, max `i64::MAX`, no cycle; counting down: max -1,
    /// min `i64::MIN`) and reserve `block_size` ticks per durable block
    /// (default 4096). `block_size == 1` makes the sequence gap-free.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidArgument`]: `name` is empty, longer than 255 bytes or
    ///   holds a control byte; the options are impossible (increment 0,
    ///   `min > max`, start outside the bounds, block size 0).
    /// * [`Error::AlreadyExists`]: a sequence of that name exists.
    /// * [`Error::Storage`] / [`Error::Closed`]: the write failed or the store
    ///   is closed.
    pub async fn create_sequence(
        &self,
        name: &str,
        options: SequenceOptions,
    ) -> Result<SequenceInfo> {
        check_name(name)?;
        let def = options.validate()?;
        let mut open = self.inner.sequences.open.lock().await;
        let key = record::key(name);
        let owned = name.to_owned();
        let (record, _) = self
            .execute(WriteOptions::durable(), move |tx| {
                if tx.get(&key)?.is_some() {
                    return Err(Error::AlreadyExists {
                        what: format!("sequence {owned:?}"),
                    });
                }
                let record = SeqRecord {
                    def,
                    created: tx.commit,
                    block: None,
                };
                tx.put(key.clone(), record.encode());
                Ok(record)
            })
            .await?;
        open.insert(
            name.to_owned(),
            Arc::new(Shared::new(
                name.to_owned(),
                record,
                self.is_multi_writer(),
            )?),
        );
        Ok(SequenceInfo {
            name: name.to_owned(),
            def,
            reserved_end: 0,
            created: record.created,
        })
    }

    /// A handle on the existing sequence `name`. Handles are cheap to clone
    /// and all handles of one name share one reservation.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidArgument`]: `name` is not a valid name.
    /// * [`Error::NotFound`]: no sequence has that name.
    /// * [`Error::Corrupt`]: its stored record does not decode.
    /// * [`Error::Storage`] / [`Error::Closed`]: the read failed.
    pub async fn sequence(&self, name: &str) -> Result<Sequence> {
        check_name(name)?;
        if self.is_closed() {
            return Err(Error::closed("store is closed"));
        }
        let mut open = self.inner.sequences.open.lock().await;
        if let Some(shared) = open.get(name) {
            return Ok(Sequence::new(self.clone(), shared.clone()));
        }
        let key = record::key(name);
        let stored = self
            .seq_read(move |storage| {
                storage
                    .get(&key)?
                    .map(|bytes| SeqRecord::decode(&key, &bytes))
                    .transpose()
            })
            .await?;
        let record = stored.ok_or_else(|| not_found(name))?;
        let shared = Arc::new(Shared::new(
            name.to_owned(),
            record,
            self.is_multi_writer(),
        )?);
        open.insert(name.to_owned(), shared.clone());
        Ok(Sequence::new(self.clone(), shared))
    }

    /// Every sequence of the store, in name order, as stored (the durable
    /// reservation, not what open handles have handed out).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for a record that does not decode;
    /// [`Error::Storage`] / [`Error::Closed`] when the scan fails.
    pub async fn list_sequences(&self) -> Result<Vec<SequenceInfo>> {
        self.seq_read(|storage| {
            let mut out = Vec::new();
            let range = KeyRange::prefix(record::keyspace_prefix());
            for item in storage.scan(range, ScanOptions::forward())? {
                let (key, value) = item?;
                let record = SeqRecord::decode(&key, &value)?;
                out.push(SequenceInfo {
                    name: record::name_of(&key)?,
                    def: record.def,
                    reserved_end: record.reserved_end(),
                    created: record.created,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Drops the sequence `name`. Open handles fail with [`Error::NotFound`]
    /// from then on; a later [`Store::create_sequence`] of the same name
    /// starts afresh. Other sequences are unaffected.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an invalid name, [`Error::NotFound`]
    /// when it does not exist, [`Error::Storage`] / [`Error::Closed`] when
    /// the write fails.
    pub async fn drop_sequence(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let mut open = self.inner.sequences.open.lock().await;
        let key = record::key(name);
        let owned = name.to_owned();
        self.execute(WriteOptions::durable(), move |tx| {
            if tx.get(&key)?.is_none() {
                return Err(not_found(&owned));
            }
            tx.delete(key.clone());
            Ok(())
        })
        .await?;
        if let Some(shared) = open.remove(name) {
            shared.mark_dropped();
        }
        Ok(())
    }

    /// The caller record stored under `key` by [`Sequence::next_with`]
    /// (`None` when there is none).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when the stored value does not decode;
    /// [`Error::Storage`] / [`Error::Closed`] when the read fails.
    pub async fn get_record(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let key = user::key(key);
        self.seq_read(move |storage| {
            storage
                .get(&key)?
                .map(|bytes| user::decode(&key, &bytes))
                .transpose()
        })
        .await
    }

    /// Every caller record whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    ///
    /// As [`Store::get_record`].
    pub async fn scan_records(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Bytes)>> {
        let prefix = user::prefix(prefix);
        self.seq_read(move |storage| {
            let mut out = Vec::new();
            for item in storage.scan(KeyRange::prefix(&prefix), ScanOptions::forward())? {
                let (key, value) = item?;
                out.push((user::user_key_of(&key)?, user::decode(&key, &value)?));
            }
            Ok(out)
        })
        .await
    }

    /// Runs a read on the blocking pool (storage calls may block on I/O).
    pub(crate) async fn seq_read<T, F>(&self, read: F) -> Result<T>
    where
        F: FnOnce(&dyn seq_storage::Storage) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let storage = self.storage().clone();
        tokio::task::spawn_blocking(move || read(&*storage))
            .await
            .map_err(|e| Error::closed(format!("a storage read panicked: {e}")))?
    }
}
