//! The seq engine: open a [`Store`] and get durable, strictly monotonic
//! sequences and ordered streams, embedded on redb (default) or RocksDB.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> seq_stream::Result<()> {
//! use seq_stream::Store;
//!
//! let store = Store::open(seq_storage::MemoryStorage::new())?;
//! let first = store.flush().await?;
//! assert_eq!(store.durable_seqnum(), first);
//! store.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The single writer
//!
//! Every write of a store goes through one writer thread. Callers on any
//! thread or task hand it a request and await the acknowledgement; the writer
//! takes everything queued (up to [`StoreOptions::max_group`]), gives each
//! request the next commit number, builds one atomic storage batch, syncs it
//! once, and only then acknowledges the requests in commit order. A full queue
//! makes callers wait (back-pressure). While several callers are active, the
//! writer holds a group open a little for the ones it just acknowledged
//! ([`StoreOptions::group_wait`]), so that callers awaiting each write share
//! one commit instead of alternating between two.
//!
//! # Sequences and sequence keys
//!
//! Named sequences count like PostgreSQL `bigint` sequences but persist one
//! block record per `block_size` numbers (default 4096) instead of one write
//! per number: [`Sequence::next`] hands numbers out on the caller's thread
//! from a durable reservation, topped up in the background. A restart resumes
//! after the last persisted block, so a crash skips at most one block. A
//! sequence with `block_size: 1` is gap-free: each number is committed with
//! the caller's records in one atomic write ([`Sequence::next_with`], the
//! invoice-numbering API).
//!
//! Sequence keys (Oxia style) store a value under a key the writer generates:
//! the prefix plus one zero-padded 20-digit counter per level, so key order is
//! numeric order; deleting the highest key never makes its suffix reusable.
//! Every write gets a store-wide commit number (the commit oracle), which is
//! the record's version; [`WriteOptions::seqnum`] supplies one explicitly.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> seq_stream::Result<()> {
//! use bytes::Bytes;
//! use seq_stream::{Error, SequenceOptions, Store, WriteOptions};
//!
//! let store = Store::open(seq_storage::MemoryStorage::new())?;
//!
//! // A block-allocated sequence: 1, 2, 3, ...
//! store.create_sequence("order-id", SequenceOptions::default()).await?;
//! let ids = store.sequence("order-id").await?;
//! assert_eq!(ids.next().await?, 1);
//! let range = ids.next_n(3).await?; // contiguous
//! assert_eq!(range.values().collect::<Vec<_>>(), [2, 3, 4]);
//! ids.advance_to(100).await?; // like setval(100, true)
//! assert_eq!(ids.next().await?, 101);
//! assert!(matches!(ids.advance_to(50).await, Err(Error::InvalidArgument { .. })));
//!
//! // A gap-free sequence: the number and the invoice commit together.
//! let gap_free = SequenceOptions { block_size: 1, ..SequenceOptions::default() };
//! store.create_sequence("invoice", gap_free).await?;
//! let invoices = store.sequence("invoice").await?;
//! let number = invoices
//!     .next_with(|n| vec![(format!("invoice/{n:06}").into_bytes(), Bytes::from("ACME, 42 EUR"))])
//!     .await?;
//! assert_eq!(number, 1);
//! assert_eq!(
//!     store.get_record(b"invoice/000001").await?.as_deref(),
//!     Some(&b"ACME, 42 EUR"[..])
//! );
//!
//! // Sequence keys, with the commit number as the version.
//! let (key, version) = store.put_sequenced("jobs", "first", &[1]).await?;
//! assert_eq!(key, "jobs-00000000000000000001");
//! let mut updates = store.sequence_updates("jobs").await?;
//! assert_eq!(updates.next().await.transpose()?, Some(key.clone()));
//! let (key2, _) = store.put_sequenced("jobs", "second", &[1]).await?;
//! assert_eq!(updates.next().await.transpose()?, Some(key2));
//! let listed = store.range_sequenced("jobs", 10).await?;
//! assert_eq!(listed.len(), 2);
//! assert_eq!(listed[0].version, version);
//!
//! // The commit oracle: a caller-supplied number must be above the max.
//! let above = WriteOptions::default().with_seqnum(version + 100);
//! let (_, v) = store.put_sequenced_with("jobs", "third", &[1], above).await?;
//! assert_eq!(v, version + 100);
//! let stale = WriteOptions::default().with_seqnum(version);
//! assert!(matches!(
//!     store.put_sequenced_with("jobs", "late", &[1], stale).await,
//!     Err(Error::InvalidSeqnum { .. })
//! ));
//! store.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Leases and cursors
//!
//! A **lease** gives one holder at a time a key for a ttl, renewed in the
//! background; each grant carries a **fencing token** that is strictly
//! increasing per key and persisted (it survives releases, expiries and
//! restarts). A write carrying a stale token is rejected with
//! [`Error::Fenced`]. A **cursor** is a named, durable consumer position (per
//! space and/or per segment) that never goes backwards unless reset; its lag
//! counts the entries after it. A [`StoreRoot`] keeps one store per UUID in
//! a directory.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> seq_stream::Result<()> {
//! use std::time::Duration;
//! use seq_stream::{CursorPosition, Error, Store};
//!
//! let store = Store::open(seq_storage::MemoryStorage::new())?;
//!
//! // Run work under a lease; the token fences writes of older holders.
//! let fence = store
//!     .with_lease("compactor", Duration::from_secs(10), |ctx| async move {
//!         // ... stop when `ctx.signal` fires; attach `ctx.fence` to writes ...
//!         ctx.fence
//!     })
//!     .await?;
//! let next = store.acquire_lease("compactor", Duration::from_secs(10)).await?;
//! assert_eq!(next.token(), fence.token + 1);
//! assert!(matches!(store.check_fence(&fence).await, Err(Error::Fenced { .. })));
//!
//! // Remember how far a consumer got.
//! store.commit_cursor("billing", CursorPosition::new().with_segment("orders", "eu", 42)).await?;
//! let cursor = store.load_cursor("billing").await?.expect("committed");
//! assert_eq!(cursor.position.segment("orders", "eu"), Some(42));
//! let backwards = CursorPosition::new().with_segment("orders", "eu", 41);
//! assert!(matches!(store.commit_cursor("billing", backwards).await, Err(Error::Conflict { .. })));
//! # Ok(())
//! # }
//! ```
//!
//! # Streams
//!
//! A store holds **spaces** of **segments** (both created on first
//! produce). [`Store::produce`] appends [`Record`]s to a segment as one
//! atomic batch; each becomes an [`Entry`] with a dense sequence from 1, its
//! commit group's timestamp and the TRX `{ id, node, number }` of its
//! commit. Reads stream in bounded pages: [`Store::consume_segment`] in
//! sequence order, [`Store::consume_space`] merged by `(timestamp, segment,
//! sequence)` and resumable from any [`Entry::offset`], [`Store::consume`]
//! across spaces; each can `follow` the live tail without a gap or repeat.
//! [`Store::peek`], [`Store::status`], [`Store::list_spaces`],
//! [`Store::list_segments`], [`Store::subscribe_segment`] /
//! [`Store::subscribe_space`] and [`Store::trim`] complete the API.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> seq_stream::Result<()> {
//! use seq_stream::{ProduceOptions, Record, SpaceQuery, Store, Trim};
//!
//! let store = Store::open(seq_storage::MemoryStorage::new())?;
//! let status = store
//!     .produce("orders", "eu", vec![Record::new("a"), Record::new("b")], ProduceOptions::default())
//!     .await?;
//! assert_eq!((status.first_sequence, status.last_sequence), (1, 2));
//! store.produce("orders", "us", vec![Record::new("c")], ProduceOptions::default()).await?;
//!
//! // The space, merged by timestamp; resume after the first entry.
//! let mut stream = store.consume_space("orders", SpaceQuery::default())?;
//! let first = stream.next().await?.expect("an entry");
//! assert_eq!((&*first.segment, first.sequence), ("eu", 1));
//! let mut rest = store.consume_space("orders", SpaceQuery { offset: Some(first.offset()), ..Default::default() })?;
//! assert_eq!(rest.next_batch(10).await?.len(), 2);
//!
//! // Retention keeps the numbering: the next entry is 3, not 1.
//! store.trim("orders", "eu", Trim::KeepLast(0)).await?;
//! let status = store.produce("orders", "eu", vec![Record::new("d")], ProduceOptions::default()).await?;
//! assert_eq!((status.first_sequence, status.count), (3, 1));
//! # drop((stream, rest));
//! # store.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Choices where the SPEC is silent:
//!
//! * **Visibility watermark.** Commit groups get strictly increasing
//!   timestamps and commit in order as atomic batches, and each space's
//!   timestamps are also kept above its stored maximum, so the space index
//!   only grows at its end: whatever offset a reader has passed, later
//!   entries sort after it, and no reader waits for in-flight commits.
//! * **Statuses.** `count == last_sequence + 1 - first_sequence`; an empty
//!   or trimmed-empty segment has `first_sequence == last_sequence + 1`, and
//!   `last_sequence` survives trims (see [`SegmentStatus`]).
//! * **Idempotency.** A record whose key the segment has seen within
//!   [`IDEMPOTENCY_WINDOW`] sequences (and that was not trimmed) is not
//!   appended again; [`Store::produce_receipt`] reports its original
//!   sequence. Mixed batches append only the new records.
//! * **Buffered produces.** With `WriteOptions { await_durable: false }` a
//!   crash may lose an acknowledged entry; the segment then continues densely
//!   from the last durable one, so such a sequence can be given again.
//!   Durably acknowledged sequences never are.
//! * **Subscriptions** may coalesce several changes of a segment into one
//!   update with its latest status; `subscribe_space("*")` watches every
//!   space.
//! * **Trims** of more than 4,096 entries commit in several steps.
//!
//! Choices where the contract is silent:
//!
//! * A block sequence tops its reservation up once half a block is used,
//!   never holding more than one block ahead (so a crash skips at most one
//!   block); `next()` throughput is therefore bounded by half a block of
//!   numbers per block-write latency. `next_n(n)` larger than a block
//!   reserves exactly what it lacks.
//! * [`Sequence::next_with`] is refused on block sequences: only a gap-free
//!   sequence can commit its number with the caller's records.
//! * [`Sequence::advance_to`] works in tick space: on a cycling sequence the
//!   value is taken on the first lap.
//! * A sequence-key prefix follows the name rules (non-empty, at most 255
//!   bytes, no control characters). A key written with
//!   `await_durable: false` and lost in a crash may be generated again.
//! * [`Store::sequence_updates`] starts from the highest *existing* key.
//! * A request the writer rejects (a duplicate name, bad deltas, ...) gives
//!   back its store-assigned commit number: nothing is consumed.
//!
//! # Multi-writer mode
//!
//! Several `Store`s (processes, machines) may share one storage when it is
//! a cluster such as etcd (a backend whose
//! [`Capabilities::shared`](seq_storage::Capabilities::shared) is set), or
//! when [`StoreOptions::shared`] is set for an in-process storage shared by
//! several stores. Each store keeps its own writer and group commit; what
//! changes:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> seq_stream::Result<()> {
//! use std::sync::Arc;
//! use seq_stream::{Store, StoreOptions};
//!
//! let storage: Arc<dyn seq_storage::Storage> = Arc::new(seq_storage::MemoryStorage::new());
//! let mut options = StoreOptions::default();
//! options.shared = true;
//! let (a, b) = (
//!     Store::open_arc(storage.clone(), options.clone())?,
//!     Store::open_arc(storage, options)?,
//! );
//! a.create_sequence("ids", Default::default()).await?;
//! let (x, y) = (
//!     a.sequence("ids").await?.next().await?,
//!     b.sequence("ids").await?.next().await?,
//! );
//! assert_ne!(x, y); // each store owns its own blocks
//! # Ok(())
//! # }
//! ```
//!
//! * **Optimistic concurrency.** Every value a request reads while the
//!   writer prepares it is pinned by a precondition in the group's batch; if
//!   another writer changed one, the group is prepared again from fresh
//!   reads after a short randomised pause (at most 8 ms), for as long as
//!   [`StoreOptions::conflict_patience`] (10 s by default); only a group
//!   that keeps losing that long fails with [`Error::Conflict`], and
//!   nothing of it is written.
//! * **Sequences.** A store takes its next block wherever the stored
//!   reservation ends (a compare-and-set on the block record), so stores own
//!   disjoint blocks (the TiDB/Leaf scheme). Each store's numbers increase;
//!   numbers from different stores interleave. A crash of one store skips at
//!   most its own block. Gap-free sequences stay dense across stores.
//!   `advance_to` moves the store-wide reservation; other stores may still
//!   hand out what they already hold (at most one block each).
//! * **Commit oracle.** Stores reserve commit numbers 4,096 at a time on the
//!   oracle record: numbers are unique store-wide and increase per store,
//!   but are not ordered across stores. Caller-supplied numbers
//!   ([`WriteOptions::seqnum`]) are refused with
//!   [`Error::InvalidArgument`]. `durable_seqnum` and the commit watches are
//!   per store.
//! * **Streams.** A produce pins its segment's status, so segments stay dense
//!   and a lost explicit `sequence` is [`Error::SequenceMismatch`].
//!   Idempotency keys are store-wide. Produces to one space also pin a
//!   per-space clock record, so across writers an entry committed later
//!   always sorts later and offsets resume exactly (produces to one space
//!   serialise across writers; different spaces do not contend).
//! * **Following and subscriptions** are woken by the backend's change
//!   notifications where it has them (an etcd watch on the store's prefix,
//!   opened by the store's first follow or subscription, so a store that
//!   only writes does not have every write streamed to it), and otherwise
//!   look again every [`StoreOptions::poll_interval`].
//! * **Leases** are decided on the pinned lease record: one holder at a
//!   time and strictly increasing tokens store-wide, and a fenced write
//!   pins the token it checked. On a backend with leases of its own (etcd)
//!   a grant lives on a backend lease ([`Lease::backend_lease`], at least
//!   [`MIN_BACKEND_LEASE_TTL`]) with a holder key attached: the lease is
//!   held while that key exists, so expiry follows the backend's clock, not
//!   the writers'. Renewal keeps the backend lease alive; release revokes
//!   it. Without backend leases, expiry compares the writers' wall clocks:
//!   keep them within a small fraction of the ttl.
//!
//! * **Failures.** A write that fails with [`Error::Storage`] (a cluster
//!   without a leader, a timeout) may or may not have landed, as with any
//!   networked database; the store keeps going (it caches nothing it would
//!   have to distrust) and never reuses a number the write may have used.
//!   Retry produces with an idempotency key to make them exactly-once.
//!
//! Embedded backends keep the single-writer fast path unless asked.
//!
//! # Crate features
//!
//! * `redb` (default) — [`Store::open_redb`], the embedded pure-Rust backend.
//! * `rocksdb` — `Store::open_rocksdb`; builds RocksDB's C++ (needs libclang).
//! * `etcd` — `Store::open_etcd`: many processes share one etcd cluster in
//!   multi-writer mode; building etcd-client needs `protoc`.

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

mod changes;
mod cursor;
mod error;
pub mod handoff;
mod lease;
mod meta;
mod options;
mod root;
mod seqkey;
mod sequence;
mod store;
mod stream;
mod sync;
mod writer;

pub use error::{Error, Result};
pub use options::{StoreOptions, WriteOptions};
#[cfg(feature = "redb")]
pub use store::REDB_CACHE_BYTES;
pub use store::Store;
pub use writer::Committed;

// Sequences and sequence keys (sequence/, seqkey/).
pub use seq_core::{SequenceDef, SequenceOptions};
pub use seqkey::{SequenceUpdates, SequencedRecord};
#[doc(hidden)]
pub use sequence::bench as sequence_bench;
pub use sequence::{Sequence, SequenceInfo, SequenceRange, SequenceValues, UserRecords};

// Streams (stream/).
pub use seq_core::{ExpectedSequence, SpaceOffset};
#[doc(hidden)]
pub use stream::bench_support as stream_bench;
pub use stream::{
    DEFAULT_PAGE_SIZE, Entry, EntryStream, IDEMPOTENCY_WINDOW, MultiQuery, PAGE_BYTES,
    ProduceOptions, ProduceReceipt, Record, SegmentQuery, SegmentStatus, SpaceQuery, Subscription,
    Trim, TrimReport, Trx,
};

// Stores, cursors and leases (root.rs, cursor/, lease/).
pub use cursor::{Cursor, CursorPosition, Lag};
pub use lease::{
    Fence, Lease, LeaseContext, LeaseEnd, LeaseInfo, LeaseOptions, LeaseSignal,
    MIN_BACKEND_LEASE_TTL, MIN_LEASE_TTL,
};
#[cfg(any(feature = "redb", feature = "rocksdb"))]
pub use root::{Backend, StoreRoot};
