//! How a segment's status is kept in its `INV` record.
//!
//! A produce appends entries; rewriting the status record on every produce
//! as well would double the keys a commit group of single-record produces
//! writes (on RocksDB each key costs about as much as a small entry). So a
//! single-writer store writes the record only when something an entry
//! cannot tell changes (the segment is new, its first sequence or first
//! timestamp moves, or its idempotency floor does), and writes it as a
//! *bound* ([`Tail::Bound`]): its `last`, `last_ts` and `commit` are as of
//! that write, and the segment's newest entry, which carries its sequence
//! (in its key), timestamp and commit number, completes them. The writer
//! keeps each segment's exact status, its *view* ([`Tail::View`]), in its
//! group's writes and read cache, so a produce reads storage for it only
//! when the cache does not hold it.
//!
//! In multi-writer mode every produce rewrites the record, exactly
//! ([`Tail::Exact`]): its pinned read is what makes two writers appending
//! to one segment conflict. A single writer that finds an exact record
//! (written in multi-writer mode, or by a format-2 store, which rewrote it
//! on every produce) turns it into a bound on its first append, so an
//! exact record is never left behind its segment.
//!
//! A reader outside the writer reads the record and then the newest entry;
//! if the record changed in between (a trim), it reads both again, so a
//! status never pairs a first sequence from before a trim with a last one
//! from after it.

use bytes::Bytes;
use seq_storage::{KeyRange, ScanIter, ScanOptions, Storage};

use super::codec::{self, StoredStatus, Tail};
use super::keys;
use crate::error::Result;
use crate::writer::GroupTx;

/// Reads of a record and the newest entry a reader makes before it settles
/// for the last pair it read while trims keep changing the record.
const SETTLE_ATTEMPTS: usize = 8;

/// What the stored record of a segment is, as the writer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// There is none: the segment was never written.
    Absent,
    /// An exact record (see the module docs): a single writer rewrites it
    /// as a bound on its next change.
    Exact,
    /// A bound, which appends need not rewrite.
    Bound,
}

/// A segment's exact status on the writer thread, and its stored record.
pub(crate) struct Loaded {
    pub(crate) status: StoredStatus,
    pub(crate) stored: Stored,
}

/// Reads a segment's exact status on the writer thread: through the
/// group's writes and the read cache (which hold views), completing a bound
/// read from storage from the newest committed entry. Nothing uncommitted
/// can be newer: a request of this group that touched the segment left its
/// view in the group's writes.
pub(crate) fn load(tx: &GroupTx<'_>, space: &str, segment: &str) -> Result<Loaded> {
    let key = keys::inv(space, segment);
    let Some(value) = tx.get(&key)? else {
        return Ok(Loaded {
            status: StoredStatus::new(),
            stored: Stored::Absent,
        });
    };
    let (mut status, tail) = codec::decode_status_record(&key, &value)?;
    let stored = match tail {
        Tail::Exact => Stored::Exact,
        // A view stands for a bound: the writer leaves one only after
        // storing a bound, or where the record already was one.
        Tail::View => Stored::Bound,
        Tail::Bound => {
            complete_committed(tx, space, segment, &mut status)?;
            Stored::Bound
        }
    };
    Ok(Loaded { status, stored })
}

/// Completes a bound read from storage on the writer thread from the
/// segment's newest committed entry (not pinned in multi-writer mode).
pub(crate) fn complete_committed(
    tx: &GroupTx<'_>,
    space: &str,
    segment: &str,
    status: &mut StoredStatus,
) -> Result<()> {
    let (range, options) = newest_entry(space, segment);
    complete(status, tx.scan_committed(range, options)?)
}

/// Records a segment's new status on the writer thread. In multi-writer
/// mode the stored record is rewritten, exact. Otherwise it is rewritten,
/// as a bound, when `changed` (something besides the tail moved) or when
/// the stored record is not a bound yet, and the writer's view always gets
/// the exact status.
pub(crate) fn save(
    tx: &mut GroupTx<'_>,
    space: &str,
    segment: &str,
    status: &StoredStatus,
    stored: Stored,
    changed: bool,
) {
    let key = keys::inv(space, segment);
    if tx.multi_writer() {
        tx.put(key, codec::encode_status(status));
    } else if changed || stored != Stored::Bound {
        tx.put_seen_as(
            key,
            codec::encode_status_bound(status),
            codec::encode_status_view(status),
        );
    } else {
        tx.see_as(key, codec::encode_status_view(status));
    }
}

/// Reads a segment's status from storage (the never-written status when it
/// has no record), completing a bound from its newest entry.
pub(crate) fn read(storage: &dyn Storage, space: &str, segment: &str) -> Result<StoredStatus> {
    let key = keys::inv(space, segment);
    match storage.get(&key)? {
        Some(value) => settle(storage, space, segment, &key, value),
        None => Ok(StoredStatus::new()),
    }
}

/// The status that the record `value`, read at `key`, gives with the
/// segment's newest entry in storage (see the module docs for the re-read).
pub(crate) fn settle(
    storage: &dyn Storage,
    space: &str,
    segment: &str,
    key: &[u8],
    mut value: Bytes,
) -> Result<StoredStatus> {
    let mut attempts = 0;
    loop {
        let (mut status, tail) = codec::decode_status_record(key, &value)?;
        if tail == Tail::Exact {
            return Ok(status);
        }
        // A bound (a view is never stored; should one be, completing it
        // is still right).
        let (range, options) = newest_entry(space, segment);
        complete(&mut status, storage.scan(range, options)?)?;
        attempts += 1;
        match storage.get(key)? {
            Some(again) if again != value && attempts < SETTLE_ATTEMPTS => value = again,
            _ => return Ok(status),
        }
    }
}

/// The scan whose one item is a segment's newest entry.
fn newest_entry(space: &str, segment: &str) -> (KeyRange, ScanOptions) {
    (
        KeyRange::prefix(keys::dat_prefix(space, segment)),
        ScanOptions::reverse().with_limit(1),
    )
}

/// Completes a bound `status` with the segment's newest entry (the item of
/// the [`newest_entry`] scan `newest`), when it is newer than the bound.
fn complete(status: &mut StoredStatus, mut newest: ScanIter<'_>) -> Result<()> {
    let Some((key, value)) = newest.next().transpose()? else {
        return Ok(());
    };
    let sequence = keys::dat_seq(&key)?;
    if sequence > status.last {
        let (timestamp, commit) = codec::entry_stamp(&key, &value)?;
        status.last = sequence;
        status.last_ts = timestamp;
        status.commit = commit;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    use seq_storage::{
        Capabilities, Durability, KeyRange, MemoryStorage, ScanIter, ScanOptions, Storage,
        WriteBatch,
    };

    use super::*;

    fn put_entry(batch: &mut WriteBatch, seq: u64, timestamp: u64) {
        let value = codec::encode_entry(timestamp, seq, "", &BTreeMap::new(), b"x").unwrap();
        batch.put(keys::dat("s", "g", seq), value);
    }

    fn bound(first: u64, last: u64) -> Vec<u8> {
        codec::encode_status_bound(&StoredStatus {
            first,
            last,
            first_ts: first * 10,
            last_ts: last * 10,
            commit: last,
            idem_floor: 0,
        })
    }

    /// A storage on which a trim of entries 1 and 2 and an append of entry
    /// 5 land just before the first scan: between a reader's read of the
    /// status record and its read of the newest entry.
    struct TrimDuringRead {
        inner: MemoryStorage,
        armed: AtomicBool,
    }

    impl Storage for TrimDuringRead {
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        fn get(&self, key: &[u8]) -> seq_storage::Result<Option<Bytes>> {
            self.inner.get(key)
        }
        fn scan(&self, range: KeyRange, options: ScanOptions) -> seq_storage::Result<ScanIter<'_>> {
            if self.armed.swap(false, Ordering::SeqCst) {
                let mut batch = WriteBatch::new();
                batch.delete(keys::dat("s", "g", 1));
                batch.delete(keys::dat("s", "g", 2));
                batch.put(keys::inv("s", "g"), bound(3, 4));
                put_entry(&mut batch, 5, 50);
                self.inner.write(batch, Durability::Sync)?;
            }
            self.inner.scan(range, options)
        }
        fn write(&self, batch: WriteBatch, durability: Durability) -> seq_storage::Result<()> {
            self.inner.write(batch, durability)
        }
        fn flush(&self) -> seq_storage::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn a_bound_is_completed_from_the_newest_entry() {
        let storage = MemoryStorage::new();
        let mut batch = WriteBatch::new();
        batch.put(keys::inv("s", "g"), bound(1, 1));
        for seq in 1..=4 {
            put_entry(&mut batch, seq, seq * 10);
        }
        storage.write(batch, Durability::Sync).unwrap();
        let status = read(&storage, "s", "g").unwrap();
        assert_eq!((status.first, status.last), (1, 4));
        assert_eq!((status.last_ts, status.commit), (40, 4));
        assert_eq!(read(&storage, "s", "other").unwrap(), StoredStatus::new());
    }

    #[test]
    fn a_reader_never_pairs_a_first_sequence_from_before_a_trim_with_a_last_from_after() {
        let storage = TrimDuringRead {
            inner: MemoryStorage::new(),
            armed: AtomicBool::new(true),
        };
        let mut batch = WriteBatch::new();
        batch.put(keys::inv("s", "g"), bound(1, 1));
        for seq in 1..=4 {
            put_entry(&mut batch, seq, seq * 10);
        }
        storage.inner.write(batch, Durability::Sync).unwrap();
        let status = read(&storage, "s", "g").unwrap();
        // Not (1, 5): entries 1 and 2 were gone by the time 5 was read.
        assert_eq!((status.first, status.last), (3, 5));
        assert_eq!(status.last_ts, 50);
    }
}
