//! The redb backend of seq: [`seq_storage::Storage`] on one redb database
//! file.
//!
//! ```
//! use seq_redb::RedbStorage;
//! use seq_storage::{Durability, KeyRange, ScanOptions, Storage, WriteBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = RedbStorage::open(dir.path().join("store.redb"))?;
//! let mut batch = WriteBatch::new();
//! batch.require_absent(&b"seq/a"[..]).put(&b"seq/a"[..], &b"1"[..]);
//! store.write(batch, Durability::Sync)?;
//!
//! let keys: Vec<_> = store
//!     .scan(KeyRange::prefix(b"seq/"), ScanOptions::forward())?
//!     .map(|entry| entry.map(|(key, _)| key))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(keys, [&b"seq/a"[..]]);
//! # Ok(())
//! # }
//! ```
//!
//! # Mapping
//!
//! * All data lives in one table (`seq`) of `&[u8] -> &[u8]`.
//! * [`Storage::write`] is one redb write transaction: preconditions are read
//!   inside it (redb has a single writer, so nothing can change between the
//!   check and the commit) and the transaction is dropped uncommitted on a
//!   conflict.
//! * [`Durability::Sync`] commits with `redb::Durability::Immediate` (fsync
//!   before returning). [`Durability::Buffered`] commits with
//!   `redb::Durability::None`: visible at once, durable at the next immediate
//!   commit. [`Storage::flush`] is an empty immediate commit, which persists
//!   every earlier non-durable commit. Dropping the store (or
//!   [`RedbStorage::close`]) also makes them durable. redb cannot reuse pages
//!   freed by non-durable commits until the next durable one, so long runs of
//!   buffered writes without a flush grow the file.
//! * [`Storage::get`] and [`Storage::scan`] each open a read transaction: a
//!   scan streams a redb range that keeps its transaction (its snapshot)
//!   alive until the iterator is dropped, so it never sees later writes and
//!   never loads the range into memory. An open scan does not block writers.
//! * A scan copies each key and value out of redb's pages once, into
//!   buffers of 32 KiB that consecutive entries share (one allocation per
//!   buffer, not two per entry; a larger entry gets its own). A key or
//!   value kept after the scan keeps its whole buffer alive: copy it
//!   (`Bytes::copy_from_slice`) to keep it long without its neighbours.
//! * redb caches the pages it reads and writes, up to 1 GiB by default:
//!   that cache, not the scans, is what a long read grows the process by.
//!   [`RedbStorage::open_with_cache_size`] bounds it.
//! * Values are limited to redb's 3 GiB; larger ones are
//!   [`seq_storage::Error::TooLarge`].
//! * Every redb error is converted to [`seq_storage::Error`] in one function:
//!   corruption becomes `Corrupt`, I/O errors `Io`, a database held by another
//!   process or a closed one `Closed`, the rest `Backend`.
//!
//! Every method blocks on file I/O; call it from a dedicated thread or
//! `spawn_blocking`.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use seq_storage::{
    Capabilities, Direction, Durability, Error, KeyRange, KeyValue, Op, Result, ScanBuffer,
    ScanIter, ScanOptions, Storage, WriteBatch,
};

/// The single table holding every key.
const TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> = TableDefinition::new("seq");

/// redb's maximum value length (3 GiB).
const MAX_VALUE_LEN: usize = 3 << 30;

/// A [`Storage`] on one redb database file. See the crate docs for how the
/// contract maps onto redb.
pub struct RedbStorage {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbStorage {
    /// Opens the database file at `path`, creating it (but not its parent
    /// directory) if missing. Only one `RedbStorage` may have a file open at a
    /// time; a second open fails with [`Error::Closed`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(map_err)?;
        Self::init(db, path)
    }

    /// Like [`RedbStorage::open`], with redb's page cache limited to
    /// `bytes` instead of redb's default (1 GiB). redb keeps the pages it
    /// reads and writes in this cache, so it bounds the memory the store
    /// holds beyond what callers keep.
    pub fn open_with_cache_size(path: impl AsRef<Path>, bytes: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = Database::builder()
            .set_cache_size(bytes)
            .create(&path)
            .map_err(map_err)?;
        Self::init(db, path)
    }

    /// Creates the table if missing.
    fn init(db: Database, path: PathBuf) -> Result<Self> {
        let txn = db.begin_write().map_err(map_err)?;
        txn.open_table(TABLE).map_err(map_err)?;
        txn.commit().map_err(map_err)?;
        Ok(Self { db, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every write durable and closes the file, reporting any error
    /// (dropping the store does the same, but cannot report an error).
    pub fn close(self) -> Result<()> {
        self.flush()?;
        self.db.close().map_err(map_err)
    }

    fn write_txn(&self, durability: Durability) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write().map_err(map_err)?;
        txn.set_durability(match durability {
            Durability::Sync => redb::Durability::Immediate,
            Durability::Buffered => redb::Durability::None,
        })
        .map_err(map_err)?;
        Ok(txn)
    }
}

/// The one place redb errors become [`seq_storage::Error`]s.
fn map_err(err: impl Into<redb::Error>) -> Error {
    match err.into() {
        redb::Error::Corrupted(reason) => Error::Corrupt { key: None, reason },
        redb::Error::Io(source) => Error::Io { source },
        redb::Error::ValueTooLarge(len) => Error::TooLarge {
            what: "value",
            len,
            limit: MAX_VALUE_LEN,
        },
        redb::Error::DatabaseAlreadyOpen => Error::Closed {
            reason: "the database file is already open elsewhere".into(),
        },
        redb::Error::DatabaseClosed => Error::Closed {
            reason: "the database is closed".into(),
        },
        err @ redb::Error::PreviousIo => Error::Closed {
            reason: err.to_string(),
        },
        other => Error::Backend {
            message: other.to_string(),
        },
    }
}

fn slice_bound(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(&k[..]),
        Bound::Excluded(k) => Bound::Excluded(&k[..]),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Storage for RedbStorage {
    fn capabilities(&self) -> Capabilities {
        Capabilities::persistent().with_max_value_len(MAX_VALUE_LEN)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let txn = self.db.begin_read().map_err(map_err)?;
        let table = txn.open_table(TABLE).map_err(map_err)?;
        let value = table.get(key).map_err(map_err)?;
        Ok(value.map(|v| Bytes::copy_from_slice(v.value())))
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>> {
        if range.is_empty() || options.limit == Some(0) {
            return Ok(Box::new(std::iter::empty()));
        }
        let txn = self.db.begin_read().map_err(map_err)?;
        let table = txn.open_table(TABLE).map_err(map_err)?;
        // A ReadOnlyTable's range is 'static: it holds the read transaction
        // (and so the snapshot) until the iterator is dropped.
        let entries = table
            .range::<&[u8]>((slice_bound(&range.start), slice_bound(&range.end)))
            .map_err(map_err)?;
        let mut chunk = ScanBuffer::default();
        let entries = entries.map(move |entry| {
            let (k, v) = entry.map_err(map_err)?;
            Ok::<KeyValue, Error>(chunk.copy(k.value(), v.value()))
        });
        let limit = options.limit.unwrap_or(usize::MAX);
        Ok(match options.direction {
            Direction::Forward => Box::new(entries.take(limit)),
            Direction::Reverse => Box::new(entries.rev().take(limit)),
        })
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        seq_storage::check_limits(&self.capabilities(), &batch)?;
        let (preconditions, ops) = batch.into_parts();
        let txn = self.write_txn(durability)?;
        {
            let mut table = txn.open_table(TABLE).map_err(map_err)?;
            for precondition in &preconditions {
                let key = precondition.key();
                let current = table.get(&key[..]).map_err(map_err)?;
                if !precondition.holds(current.as_ref().map(|v| v.value())) {
                    // Dropping the transaction uncommitted aborts it.
                    return Err(Error::Conflict { key: key.clone() });
                }
            }
            for op in &ops {
                match op {
                    Op::Put { key, value } => {
                        table.insert(&key[..], &value[..]).map_err(map_err)?;
                    }
                    // Refused by `check_limits` already; no lease service.
                    Op::PutLeased { key, .. } => {
                        return Err(seq_storage::leased_put_unsupported(key));
                    }
                    Op::Delete { key } => {
                        table.remove(&key[..]).map_err(map_err)?;
                    }
                    Op::DeleteRange { start, end } => {
                        if start < end {
                            table
                                .retain_in::<&[u8], _>(&start[..]..&end[..], |_, _| false)
                                .map_err(map_err)?;
                        }
                    }
                }
            }
        }
        txn.commit().map_err(map_err)
    }

    fn flush(&self) -> Result<()> {
        // An immediate commit persists every earlier non-durable commit.
        self.write_txn(Durability::Sync)?.commit().map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;
    use seq_storage::SCAN_BUFFER_BYTES;

    fn store() -> (tempfile::TempDir, RedbStorage) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStorage::open_with_cache_size(dir.path().join("t.redb"), 1 << 20).unwrap();
        (dir, store)
    }

    #[test]
    fn should_scan_values_of_every_size_intact_and_share_buffers_between_small_ones() {
        let (_dir, store) = store();
        // Empty, small, around a quarter chunk, and larger than a chunk.
        let sizes = [
            0,
            1,
            100,
            SCAN_BUFFER_BYTES / 4 - 3,
            SCAN_BUFFER_BYTES / 4 + 1,
            SCAN_BUFFER_BYTES + 7,
            100,
            0,
        ];
        let mut batch = WriteBatch::new();
        for (i, size) in sizes.iter().enumerate() {
            let value: Vec<u8> = (0..*size).map(|b| (b + i) as u8).collect();
            batch.put(vec![b'k', i as u8], value);
        }
        store.write(batch, Durability::Sync).unwrap();
        for direction in [ScanOptions::forward(), ScanOptions::reverse()] {
            let rows: Vec<KeyValue> = store
                .scan(KeyRange::prefix(&b"k"[..]), direction)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(rows.len(), sizes.len());
            for (key, value) in &rows {
                let i = usize::from(key[1]);
                assert_eq!(key[..], [b'k', key[1]]);
                assert_eq!(value.len(), sizes[i]);
                assert!(value.iter().enumerate().all(|(b, v)| *v == (b + i) as u8));
            }
        }
        // Forward, the first small entries sit back to back in one buffer.
        let rows: Vec<KeyValue> = store
            .scan(KeyRange::prefix(&b"k"[..]), ScanOptions::forward())
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        let (key, value) = &rows[2];
        assert_eq!(key.as_ptr().wrapping_add(key.len()), value.as_ptr());
        let (previous_key, previous_value) = &rows[1];
        assert_eq!(
            previous_key.as_ptr().wrapping_add(2),
            previous_value.as_ptr()
        );
        assert_eq!(previous_value.as_ptr().wrapping_add(1), key.as_ptr());
    }

    #[test]
    fn should_respect_the_limit_with_chunked_copies() {
        let (_dir, store) = store();
        let mut batch = WriteBatch::new();
        for i in 0..50u8 {
            batch.put(vec![b'k', i], vec![i; 64]);
        }
        store.write(batch, Durability::Sync).unwrap();
        let rows: Vec<KeyValue> = store
            .scan(
                KeyRange::prefix(&b"k"[..]),
                ScanOptions::forward().with_limit(7),
            )
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        let keys: Vec<u8> = rows.iter().map(|(k, _)| k[1]).collect();
        assert_eq!(keys, (0..7).collect::<Vec<u8>>());
        assert!(rows.iter().all(|(k, v)| v[..] == [k[1]; 64]));
    }
}
