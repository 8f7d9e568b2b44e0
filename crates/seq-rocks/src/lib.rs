//! The RocksDB backend of seq: [`seq_storage::Storage`] on a RocksDB
//! directory.
//!
//! ```
//! use seq_rocks::RocksStorage;
//! use seq_storage::{Durability, KeyRange, ScanOptions, Storage, WriteBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = RocksStorage::open(dir.path().join("store"))?;
//! let mut batch = WriteBatch::new();
//! batch.require_absent(&b"seq/a"[..]).put(&b"seq/a"[..], &b"1"[..]);
//! store.write(batch, Durability::Sync)?;
//!
//! let keys: Vec<_> = store
//!     .scan(KeyRange::prefix(b"seq/"), ScanOptions::reverse())?
//!     .map(|entry| entry.map(|(key, _)| key))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(keys, [&b"seq/a"[..]]);
//! # Ok(())
//! # }
//! ```
//!
//! # Mapping
//!
//! * [`RocksStorage::open`] uses [`default_options`]: RocksDB's defaults
//!   with an 8 MiB block cache that also holds index and filter blocks,
//!   16 KiB data blocks, and no compression on levels 0 and 1, so memory
//!   stays bounded as the store grows and recent entries read fast;
//!   [`RocksStorage::open_with`] takes any options (re-exported
//!   [`rocksdb::Options`]).
//! * Data lives in the default column family; keys use RocksDB's default
//!   bytewise comparator, which is the `memcmp` order the trait requires.
//! * [`Storage::write`] is one RocksDB `WriteBatch`, written with
//!   `WriteOptions::set_sync(true)` for [`Durability::Sync`] and without sync
//!   (WAL written, not fsynced) for [`Durability::Buffered`]. Range deletes
//!   are native range tombstones; an empty or inverted range deletes nothing.
//! * RocksDB has no conditional writes, so preconditions are read and the
//!   batch written under one in-process mutex: writers in this process
//!   cannot interleave between check and write. Other processes cannot
//!   interfere because RocksDB lets only one process open a directory for
//!   writing (its `LOCK` file); a multi-process or networked store would need
//!   the engine's own transactions instead.
//! * [`Storage::flush`] is `flush_wal(true)`: the WAL, which holds every
//!   acknowledged write, is fsynced. Closing or dropping the storage also
//!   flushes the memtables, so the next open has no WAL to replay into
//!   memory (see [`RocksStorage::close`]).
//! * A scan is a RocksDB iterator with `iterate_lower_bound` /
//!   `iterate_upper_bound` set from the range. Its implicit snapshot is taken
//!   when [`Storage::scan`] is called, so it sees whole batches and nothing
//!   written after. It streams; the range is never loaded into memory. Keys
//!   and values are copied into shared 32 KiB buffers
//!   ([`seq_storage::ScanBuffer`]), one allocation per buffer rather than two
//!   per entry: a key or value kept after the scan keeps its buffer alive.
//! * Values are limited to 4 GiB − 1 (RocksDB's 32-bit slice lengths); larger
//!   ones are [`seq_storage::Error::TooLarge`].
//! * Every RocksDB error is converted in one function: `Corruption` becomes
//!   `Corrupt`, `IOError` `Io`, `ShutdownInProgress` `Closed`, the rest
//!   `Backend`.
//!
//! Every method blocks on file I/O; call it from a dedicated thread or
//! `spawn_blocking`.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
/// The `rocksdb` crate this backend is built on, for the [`Options`] that
/// [`RocksStorage::open_with`] takes.
pub use rocksdb;

use rocksdb::{
    BlockBasedOptions, Cache, DB, DBRawIteratorWithThreadMode, ErrorKind, Options, ReadOptions,
    WaitForCompactOptions, WriteOptions,
};
use seq_storage::{
    Capabilities, Direction, Durability, Error, KeyRange, KeyValue, Op, Result, ScanBuffer,
    ScanIter, ScanOptions, Storage, WriteBatch,
};

/// RocksDB slices carry 32-bit lengths.
const MAX_VALUE_LEN: usize = u32::MAX as usize;

/// The block cache [`default_options`] gives a database: 8 MiB.
pub const BLOCK_CACHE_BYTES: usize = 8 << 20;

/// The size of the data blocks [`default_options`] writes: 16 KiB.
pub const BLOCK_BYTES: usize = 16 << 10;

/// The options [`RocksStorage::open`] uses: RocksDB's defaults, with
/// `create_if_missing`, and memory bounded for a store embedded in someone
/// else's process:
///
/// * data blocks of [`BLOCK_BYTES`] (RocksDB's default is 4 KiB): streams
///   are read front to back, and larger blocks make a table's index four
///   times smaller and a scan of 4 KiB entries about three times faster;
/// * a block cache of [`BLOCK_CACHE_BYTES`] (RocksDB's default is 32 MiB)
///   that also holds the index and filter blocks, so the memory table
///   readers use stays within it however large the store grows (by
///   default every open table keeps its index outside any cache). Index
///   and filter blocks of level-0 tables stay pinned, as RocksDB
///   recommends when they are cached;
/// * no compression on levels 0 and 1, LZ4 on the other five (RocksDB's
///   usual advice):
///   recent entries, the ones followers and paged consumes read, sit in
///   level-0 files whose key ranges all overlap, so every seek of a paged
///   read decompresses a block in each of them. With LZ4 everywhere,
///   `consume_space` right after heavy writes ran at 0.15× a raw scan of
///   the same keys; with this, 0.45× (`seq-bench run --backend rocksdb
///   --quick --only raw,sequences,produce,consume`).
///
/// Measured with `seq-bench run --backend rocksdb --only memory` (a 1 GiB
/// segment of 4 KiB entries consumed by a fresh process, the database at
/// rest): peak RSS 44 MiB at 460 k entries/s, against 70 MiB at 170 k
/// entries/s with 4 KiB blocks, and 114–134 MiB with RocksDB's defaults.
/// Pass your own options to [`RocksStorage::open_with`] to change any of
/// this (start from this function's result).
pub fn default_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    let mut table = BlockBasedOptions::default();
    table.set_block_size(BLOCK_BYTES);
    table.set_block_cache(&Cache::new_lru_cache(BLOCK_CACHE_BYTES));
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    options.set_block_based_table_factory(&table);
    use rocksdb::DBCompressionType::{Lz4, None as Plain};
    options.set_compression_per_level(&[Plain, Plain, Lz4, Lz4, Lz4, Lz4, Lz4]);
    options
}

/// A [`Storage`] on a RocksDB directory. See the crate docs for how the
/// contract maps onto RocksDB.
pub struct RocksStorage {
    db: DB,
    /// Serialises precondition checks with the write they guard.
    write_lock: Mutex<()>,
    path: PathBuf,
}

impl std::fmt::Debug for RocksStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The one place RocksDB errors become [`seq_storage::Error`]s.
fn map_err(err: rocksdb::Error) -> Error {
    match err.kind() {
        ErrorKind::Corruption => Error::Corrupt {
            key: None,
            reason: err.into_string(),
        },
        ErrorKind::IOError => Error::Io {
            source: std::io::Error::other(err.into_string()),
        },
        ErrorKind::ShutdownInProgress => Error::Closed {
            reason: err.into_string(),
        },
        _ => Error::Backend {
            message: err.into_string(),
        },
    }
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

impl RocksStorage {
    /// Opens (creating if missing) the RocksDB directory at `path` with
    /// [`default_options`]. Only one process may have it open; a second open
    /// fails with [`Error::Io`] (the `LOCK` file is held).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &default_options())
    }

    /// Opens the directory at `path` with caller-chosen RocksDB options.
    pub fn open_with(path: impl AsRef<Path>, options: &Options) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = DB::open(options, &path).map_err(map_err)?;
        Ok(Self {
            db,
            write_lock: Mutex::new(()),
            path,
        })
    }

    /// Flushes the memtables and waits until RocksDB's background flushes
    /// and compactions have nothing left to do: the database at rest, as
    /// before a backup or a measurement. Returns early (still `Ok`) only if
    /// background work is paused; under a steady stream of writes it may
    /// wait as long as they go on.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] / [`Error::Backend`] when a flush or compaction fails.
    pub fn wait_for_compactions(&self) -> Result<()> {
        let mut options = WaitForCompactOptions::default();
        options.set_flush(true);
        options.set_abort_on_pause(true);
        self.db.wait_for_compact(&options).map_err(map_err)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the WAL, flushes the memtables to table files and closes the
    /// database, reporting any error.
    ///
    /// Dropping the storage flushes the memtables too (ignoring a failure):
    /// otherwise the next open replays the WAL into a memtable of up to
    /// 64 MiB (RocksDB's `write_buffer_size`), which that process then holds
    /// and flushes. A process consuming a 1 GiB segment right after another
    /// wrote it peaked at 62–78 MiB of RSS without the flush (five runs) and
    /// 43–53 MiB with it (ten runs) while RocksDB compacted (`seq-bench run
    /// --backend rocksdb --only memory`).
    pub fn close(self) -> Result<()> {
        self.flush()?;
        self.db.flush().map_err(map_err)?;
        drop(self);
        Ok(())
    }
}

impl Drop for RocksStorage {
    /// Flushes the memtables to table files before RocksDB closes (see
    /// [`RocksStorage::close`]); a failure here goes unreported, as nothing
    /// acknowledged depends on it: the WAL still holds every write.
    fn drop(&mut self) {
        let _ = self.db.flush();
    }
}

impl Storage for RocksStorage {
    fn capabilities(&self) -> Capabilities {
        Capabilities::persistent().with_max_value_len(MAX_VALUE_LEN)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let value = self.db.get_pinned(key).map_err(map_err)?;
        Ok(value.map(|v| Bytes::copy_from_slice(&v)))
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>> {
        if range.is_empty() || options.limit == Some(0) {
            return Ok(Box::new(std::iter::empty()));
        }
        let mut read = ReadOptions::default();
        match &range.start {
            Bound::Included(k) => read.set_iterate_lower_bound(k.to_vec()),
            Bound::Excluded(k) => read.set_iterate_lower_bound(successor(k)),
            Bound::Unbounded => {}
        }
        match &range.end {
            Bound::Included(k) => read.set_iterate_upper_bound(successor(k)),
            Bound::Excluded(k) => read.set_iterate_upper_bound(k.to_vec()),
            Bound::Unbounded => {}
        }
        // The iterator's implicit snapshot is taken here, not at first use.
        let iter = self.db.raw_iterator_opt(read);
        Ok(Box::new(RocksScan {
            iter,
            buffer: ScanBuffer::default(),
            direction: options.direction,
            remaining: options.limit,
            started: false,
            done: false,
        }))
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        seq_storage::check_limits(&self.capabilities(), &batch)?;
        let (preconditions, ops) = batch.into_parts();
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in &ops {
            match op {
                Op::Put { key, value } => rocks_batch.put(key, value),
                // Refused by `check_limits` already; no lease service.
                Op::PutLeased { key, .. } => return Err(seq_storage::leased_put_unsupported(key)),
                Op::Delete { key } => rocks_batch.delete(key),
                Op::DeleteRange { start, end } => {
                    if start < end {
                        rocks_batch.delete_range(start, end);
                    }
                }
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(durability == Durability::Sync);
        // The guarded data is `()`: a panic elsewhere cannot corrupt it.
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for precondition in &preconditions {
            let key = precondition.key();
            let current = self.db.get_pinned(key).map_err(map_err)?;
            if !precondition.holds(current.as_deref()) {
                return Err(Error::Conflict { key: key.clone() });
            }
        }
        self.db.write_opt(rocks_batch, &options).map_err(map_err)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(map_err)
    }
}

/// A streamed scan over a bounded RocksDB iterator.
struct RocksScan<'a> {
    iter: DBRawIteratorWithThreadMode<'a, DB>,
    buffer: ScanBuffer,
    direction: Direction,
    remaining: Option<usize>,
    started: bool,
    done: bool,
}

impl Iterator for RocksScan<'_> {
    type Item = Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.remaining == Some(0) {
            return None;
        }
        match (self.started, self.direction) {
            (false, Direction::Forward) => self.iter.seek_to_first(),
            (false, Direction::Reverse) => self.iter.seek_to_last(),
            (true, Direction::Forward) => self.iter.next(),
            (true, Direction::Reverse) => self.iter.prev(),
        }
        self.started = true;
        let Some((key, value)) = self.iter.item() else {
            self.done = true;
            return self.iter.status().err().map(|err| Err(map_err(err)));
        };
        if let Some(remaining) = &mut self.remaining {
            *remaining -= 1;
        }
        Some(Ok(self.buffer.copy(key, value)))
    }
}
