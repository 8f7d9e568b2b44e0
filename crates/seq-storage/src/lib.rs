//! The storage layer of seq: one trait for an ordered byte-key store, the
//! backends that live in this crate, and the conformance suite every backend
//! must pass.
//!
//! ```
//! use seq_storage::{Durability, KeyRange, MemoryStorage, ScanOptions, Storage, WriteBatch};
//!
//! # fn main() -> seq_storage::Result<()> {
//! let store = MemoryStorage::new();
//! let mut batch = WriteBatch::new();
//! batch.require_absent(b"invoice/1".to_vec());
//! batch.put(b"invoice/1".to_vec(), b"paid".to_vec());
//! batch.put(b"invoice/2".to_vec(), b"open".to_vec());
//! store.write(batch, Durability::Sync)?;
//!
//! let rows = store
//!     .scan(KeyRange::prefix(b"invoice/"), ScanOptions::default())?
//!     .collect::<seq_storage::Result<Vec<_>>>()?;
//! assert_eq!(rows.len(), 2);
//! assert_eq!(store.get(b"invoice/1")?.as_deref(), Some(&b"paid"[..]));
//! # Ok(())
//! # }
//! ```
//!
//! # The contract
//!
//! [`Storage`] is deliberately small so that an embedded engine (redb,
//! RocksDB), an in-memory map, or a networked multi-writer store (etcd, TiKV)
//! can all implement it:
//!
//! * [`Storage::get`] reads one key.
//! * [`Storage::scan`] streams a key range forward or in reverse from one
//!   consistent snapshot; it never loads the whole range into memory.
//! * [`Storage::write`] applies a [`WriteBatch`] atomically: every
//!   [`Precondition`] is checked and every operation applied, or nothing is.
//!   A failed precondition is [`Error::Conflict`]. Correctness across several
//!   writers comes from preconditions, never from assuming one process.
//! * [`Durability::Sync`] returns only after the batch is on stable storage;
//!   [`Durability::Buffered`] may return earlier, and [`Storage::flush`] makes
//!   every earlier write durable.
//!
//! Every method may block on I/O: call them from a dedicated thread or from
//! `tokio::task::spawn_blocking`, never directly on an async executor thread.
//!
//! # Writing a backend
//!
//! A backend implements the five methods of [`Storage`] and runs the
//! conformance suite (feature `test-util`). This one wraps [`MemoryStorage`]
//! to stay short; a real adapter maps its engine's transactions and errors
//! (see `seq-redb` and `seq-rocks`). In a test file, one line stamps a
//! `#[test]` per case: `seq_storage::conformance_tests!(MyHarness);`.
//!
//! ```
//! use seq_storage::conformance::{self, Harness};
//! use seq_storage::{
//!     Capabilities, Durability, KeyRange, MemoryStorage, Result, ScanIter, ScanOptions, Storage,
//!     WriteBatch,
//! };
//!
//! /// A backend: here a newtype, in practice a handle on some engine.
//! struct MyBackend(MemoryStorage);
//!
//! impl Storage for MyBackend {
//!     fn capabilities(&self) -> Capabilities {
//!         // Ephemeral: the suite skips (visibly) the reopen cases.
//!         Capabilities::ephemeral()
//!     }
//!     fn get(&self, key: &[u8]) -> Result<Option<bytes::Bytes>> {
//!         self.0.get(key)
//!     }
//!     fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>> {
//!         self.0.scan(range, options)
//!     }
//!     fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
//!         seq_storage::check_limits(&self.capabilities(), &batch)?;
//!         self.0.write(batch, durability)
//!     }
//!     fn flush(&self) -> Result<()> {
//!         self.0.flush()
//!     }
//! }
//!
//! /// Hands every case a fresh store. `Guard` would own a temporary
//! /// directory for an on-disk backend, and `reopen` would close and reopen it.
//! struct MyHarness;
//!
//! impl Harness for MyHarness {
//!     type Store = MyBackend;
//!     type Guard = ();
//!     fn fresh(&self) -> ((), MyBackend) {
//!         ((), MyBackend(MemoryStorage::new()))
//!     }
//! }
//!
//! // One case, then the whole suite (the macro is the usual way in tests).
//! conformance::require_equals_on_missing_key_conflicts(&MyHarness);
//! conformance::run_all(&MyHarness);
//! assert!(conformance::CASES.len() >= 30);
//! ```
//!
//! # Crate features
//!
//! * `test-util` — exposes `conformance`, the shared backend test suite, the
//!   `conformance_tests!` macro that stamps it into `#[test]`s, and
//!   `test_rng`, a deterministic test RNG.
//! * `bench-util` — exposes `baseline`, raw-backend workloads (synced
//!   commits, synced batches, range scans, `fdatasync` rate) that benchmarks
//!   run in-process against any [`Storage`].
//!
//! (Names without links are behind their feature.)

mod batch;
mod crash;
mod error;
mod lease;
mod memory;
mod range;
mod scan_buffer;

#[cfg(feature = "test-util")]
pub mod conformance;
#[cfg(feature = "test-util")]
pub mod test_rng;

#[cfg(feature = "bench-util")]
pub mod baseline;

pub use batch::{Op, Precondition, WriteBatch};
pub use crash::{CrashStorage, FaultPlan};
pub use error::{Error, Result, show_key};
pub use lease::{LeaseId, Leases, leased_put_unsupported};
pub use memory::MemoryStorage;
pub use range::{Direction, KeyRange, ScanOptions, prefix_successor};
pub use scan_buffer::{SCAN_BUFFER_BYTES, ScanBuffer};

use bytes::Bytes;

/// One key and its value as returned by a scan.
pub type KeyValue = (Bytes, Bytes);

/// A streamed scan: yields entries in the requested [`Direction`] until the
/// range or the limit is exhausted. Items are `Result`s because a backend may
/// fail (or find corruption) part-way through.
pub type ScanIter<'a> = Box<dyn Iterator<Item = Result<KeyValue>> + Send + 'a>;

/// What [`Storage::watch_changes`] calls when the store may have changed.
pub type ChangeNotify = std::sync::Arc<dyn Fn() + Send + Sync>;

/// When a write must be on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Return only after the write is durable (fsync or the backend's
    /// equivalent). The default.
    #[default]
    Sync,
    /// Return once the write is applied and visible to readers; it becomes
    /// durable at the next synced write or [`Storage::flush`]. A crash may lose
    /// it, but never part of it.
    Buffered,
}

/// What a backend can and cannot do. The conformance suite skips, visibly,
/// the cases whose capability is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Data survives closing and reopening (false for [`MemoryStorage`]).
    pub persistent: bool,
    /// The largest value the backend accepts, if it has a limit.
    pub max_value_len: Option<usize>,
    /// The largest batch (sum of key and value bytes) the backend accepts in
    /// one [`Storage::write`], if it has a limit.
    pub max_batch_bytes: Option<usize>,
    /// The most operations ([`WriteBatch::len`]) the backend accepts in one
    /// [`Storage::write`], if it has a limit (etcd's `--max-txn-ops`).
    pub max_batch_ops: Option<usize>,
    /// Other processes may write the same keys at the same time (a shared
    /// cluster such as etcd). An engine on such a backend must not cache what
    /// it read across writes: it guards every read it acts on with a
    /// precondition and retries on [`Error::Conflict`].
    pub shared: bool,
    /// The backend keeps leases on its own clock ([`Storage::leases`]) and
    /// accepts [`WriteBatch::put_leased`]; without it a leased put is
    /// [`Error::Unsupported`].
    pub leases: bool,
}

impl Capabilities {
    /// Capabilities of a persistent store without size limits.
    pub const fn persistent() -> Self {
        Self {
            persistent: true,
            max_value_len: None,
            max_batch_bytes: None,
            max_batch_ops: None,
            shared: false,
            leases: false,
        }
    }

    /// Capabilities of a store that forgets everything when dropped.
    pub const fn ephemeral() -> Self {
        Self {
            persistent: false,
            max_value_len: None,
            max_batch_bytes: None,
            max_batch_ops: None,
            shared: false,
            leases: false,
        }
    }

    /// The same capabilities with a value size limit.
    pub const fn with_max_value_len(mut self, limit: usize) -> Self {
        self.max_value_len = Some(limit);
        self
    }

    /// The same capabilities, marked as written by several processes at once
    /// (see [`Capabilities::shared`]).
    pub const fn with_shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// The same capabilities, with backend leases (see
    /// [`Capabilities::leases`]).
    pub const fn with_leases(mut self) -> Self {
        self.leases = true;
        self
    }

    /// The same capabilities with a batch size limit (see
    /// [`WriteBatch::byte_len`]).
    pub const fn with_max_batch_bytes(mut self, limit: usize) -> Self {
        self.max_batch_bytes = Some(limit);
        self
    }

    /// The same capabilities with a limit on the number of operations in one
    /// batch (see [`WriteBatch::len`]).
    pub const fn with_max_batch_ops(mut self, limit: usize) -> Self {
        self.max_batch_ops = Some(limit);
        self
    }
}

/// Checks `batch` against the size limits in `capabilities`: returns
/// [`Error::TooLarge`] for the first value over
/// [`Capabilities::max_value_len`], or for a batch whose
/// [`WriteBatch::byte_len`] exceeds [`Capabilities::max_batch_bytes`], or
/// whose [`WriteBatch::len`] exceeds [`Capabilities::max_batch_ops`] (then
/// `len` and `limit` count operations, not bytes); and
/// [`Error::Unsupported`] for a leased put when the backend has no
/// [`Capabilities::leases`]. Backends call it before writing anything.
pub fn check_limits(capabilities: &Capabilities, batch: &WriteBatch) -> Result<()> {
    if !capabilities.leases
        && let Some(Op::PutLeased { key, .. }) = batch
            .ops()
            .iter()
            .find(|op| matches!(op, Op::PutLeased { .. }))
    {
        return Err(leased_put_unsupported(key));
    }
    if let Some(limit) = capabilities.max_value_len {
        for op in batch.ops() {
            if let Op::Put { value, .. } | Op::PutLeased { value, .. } = op
                && value.len() > limit
            {
                return Err(Error::TooLarge {
                    what: "value",
                    len: value.len(),
                    limit,
                });
            }
        }
    }
    if let Some(limit) = capabilities.max_batch_bytes {
        let len = batch.byte_len();
        if len > limit {
            return Err(Error::TooLarge {
                what: "batch",
                len,
                limit,
            });
        }
    }
    if let Some(limit) = capabilities.max_batch_ops
        && batch.len() > limit
    {
        return Err(Error::TooLarge {
            what: "batch operations",
            len: batch.len(),
            limit,
        });
    }
    Ok(())
}

/// An ordered byte-key store with atomic, conditional write batches.
///
/// Keys compare as unsigned byte strings (`memcmp` order); the empty key is a
/// valid key. Implementations must be safe to share between threads; all
/// methods may block on I/O.
pub trait Storage: Send + Sync + 'static {
    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// Reads one key. `Ok(None)` when it is absent.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;

    /// Streams the entries of `range` in `options.direction`, stopping after
    /// `options.limit` entries when a limit is set. The iterator reads from one
    /// snapshot taken when `scan` is called: it never observes part of a batch
    /// and never sees writes made after it was created.
    fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>>;

    /// Applies `batch` atomically. Preconditions are checked first against the
    /// current state; if any fails the result is [`Error::Conflict`] naming the
    /// key and nothing is written. Operations are applied in order, so a later
    /// operation on the same key wins.
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()>;

    /// Makes every write acknowledged so far durable.
    fn flush(&self) -> Result<()>;

    /// For a shared backend ([`Capabilities::shared`]): calls `notify`, from
    /// any thread, soon after any process commits a write to this store, and
    /// once more whenever the backend had to re-establish its notifications
    /// (a write may have gone unseen meanwhile), for as long as the storage
    /// lives. Returns `false` when the backend cannot notify (the default):
    /// whoever waits for other processes' writes must then poll.
    fn watch_changes(&self, notify: ChangeNotify) -> bool {
        drop(notify);
        false
    }

    /// The backend's lease service, when it keeps leases on its own clock
    /// (see [`Capabilities::leases`]); `None` by default.
    fn leases(&self) -> Option<&dyn Leases> {
        None
    }
}

/// Implements [`Storage`] for a pointer to one by forwarding every method,
/// so both pointers forward the same methods (a method left out would
/// silently fall back to its default instead of the backend's override).
macro_rules! forward_storage {
    ($($pointer:ident)::+) => {
        impl<S: Storage + ?Sized> Storage for $($pointer)::+<S> {
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }

            fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
                (**self).get(key)
            }

            fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>> {
                (**self).scan(range, options)
            }

            fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
                (**self).write(batch, durability)
            }

            fn flush(&self) -> Result<()> {
                (**self).flush()
            }

            fn watch_changes(&self, notify: ChangeNotify) -> bool {
                (**self).watch_changes(notify)
            }

            fn leases(&self) -> Option<&dyn Leases> {
                (**self).leases()
            }
        }
    };
}

forward_storage!(std::sync::Arc);
forward_storage!(Box);
