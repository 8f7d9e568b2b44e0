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
    Capabilities, Direction, Durability, Error, KeyRange, KeyValue, Op, Result, ScanIter,
    ScanOptions, Storage, WriteBatch,
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
        let entries = entries.map(|entry| {
            let (k, v) = entry.map_err(map_err)?;
            Ok::<KeyValue, Error>((
                Bytes::copy_from_slice(k.value()),
                Bytes::copy_from_slice(v.value()),
            ))
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
