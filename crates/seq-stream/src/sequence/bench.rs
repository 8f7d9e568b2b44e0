//! Benchmark workloads for sequences and group commit, public (hidden) so
//! criterion benches and `cargo xtask bench` run the same code in-process.
//!
//! Nothing here asserts a speed; timing claims belong in benchmarks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use seq_core::BlockAllocator;
use seq_storage::{Capabilities, Durability, KeyRange, ScanIter, ScanOptions, Storage, WriteBatch};

use crate::SequenceOptions;
use crate::error::Result;
use crate::store::Store;

/// The outcome of one workload run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// What was measured.
    pub name: &'static str,
    /// Operations completed (numbers handed out, records written).
    pub ops: u64,
    /// Synced storage writes during the run, when counted.
    pub syncs: Option<u64>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Measurement {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Operations per synced write (when syncs were counted and non-zero).
    pub fn ops_per_sync(&self) -> Option<f64> {
        self.syncs
            .filter(|&s| s > 0)
            .map(|s| self.ops as f64 / s as f64)
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ops in {:?} ({:.0} ops/s",
            self.name,
            self.ops,
            self.elapsed,
            self.ops_per_sec()
        )?;
        if let (Some(syncs), Some(per)) = (self.syncs, self.ops_per_sync()) {
            write!(f, ", {syncs} syncs, {per:.1} ops/sync")?;
        }
        write!(f, ")")
    }
}

/// A [`Storage`] wrapper that counts writes and synced writes.
#[derive(Debug)]
pub struct CountingStorage<S> {
    inner: S,
    writes: AtomicU64,
    syncs: AtomicU64,
}

impl<S> CountingStorage<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            writes: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        }
    }

    /// Batches written so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Synced batches and flushes so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Storage> Storage for CountingStorage<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn get(&self, key: &[u8]) -> seq_storage::Result<Option<Bytes>> {
        self.inner.get(key)
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> seq_storage::Result<ScanIter<'_>> {
        self.inner.scan(range, options)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> seq_storage::Result<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        if durability == Durability::Sync {
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.write(batch, durability)
    }

    fn flush(&self) -> seq_storage::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.flush()
    }
}

/// `count` calls of [`crate::Sequence::next`] on one task, on sequence
/// `name` (created with `block_size` if missing).
///
/// # Errors
///
/// Whatever the store returns.
pub async fn sequence_next(
    store: &Store,
    name: &str,
    block_size: u64,
    count: u64,
) -> Result<Measurement> {
    let seq = match store.sequence(name).await {
        Ok(seq) => seq,
        Err(crate::Error::NotFound { .. }) => {
            store
                .create_sequence(
                    name,
                    SequenceOptions {
                        block_size,
                        ..SequenceOptions::default()
                    },
                )
                .await?;
            store.sequence(name).await?
        }
        Err(other) => return Err(other),
    };
    let started = Instant::now();
    for _ in 0..count {
        std::hint::black_box(seq.next().await?);
    }
    Ok(Measurement {
        name: "sequence next()",
        ops: count,
        syncs: None,
        elapsed: started.elapsed(),
    })
}

/// `count` calls of the pure in-memory [`BlockAllocator::allocate`]`(1)`
/// (blocks are "persisted" by doing nothing): the ceiling for `next()`.
pub fn allocator_in_memory(block_size: u64, count: u64) -> Measurement {
    let started = Instant::now();
    if let Ok(mut alloc) = BlockAllocator::new(block_size) {
        for _ in 0..count {
            std::hint::black_box(alloc.allocate(std::hint::black_box(1)).ok());
        }
    }
    Measurement {
        name: "in-memory allocate(1)",
        ops: count,
        syncs: None,
        elapsed: started.elapsed(),
    }
}

/// The naive design: one synced storage write per number (read the counter,
/// write counter + 1, fsync), `count` times, on `storage`.
///
/// # Errors
///
/// Storage errors.
pub fn naive_synced_counter(storage: &dyn Storage, count: u64) -> Result<Measurement> {
    let key: &[u8] = b"bench/naive-counter";
    let started = Instant::now();
    for _ in 0..count {
        let current = storage
            .get(key)?
            .and_then(|b| <[u8; 8]>::try_from(&b[..]).ok())
            .map_or(0, u64::from_be_bytes);
        let mut batch = WriteBatch::new();
        batch.put(key.to_vec(), (current + 1).to_be_bytes().to_vec());
        storage.write(batch, Durability::Sync)?;
    }
    Ok(Measurement {
        name: "naive synced write per number",
        ops: count,
        syncs: Some(count),
        elapsed: started.elapsed(),
    })
}

/// Which sequence-key prefixes the writers of [`group_commit`] use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefixes {
    /// A prefix of its own per writer: each writer appends to its own key
    /// range, so a commit group touches as many places as it has writers.
    PerWriter,
    /// One prefix for all: the writers append to one ordered log, so a
    /// commit group's keys are adjacent.
    Shared,
}

/// Group commit: `writers` concurrent tasks each doing `per_writer` durable
/// single-record writes ([`Store::put_sequenced`]) under `prefixes`.
/// `syncs` reads the synced write count of the storage under the store
/// (e.g. a [`CountingStorage`]).
///
/// # Errors
///
/// Whatever the store returns.
pub async fn group_commit(
    store: &Store,
    writers: usize,
    per_writer: u64,
    prefixes: Prefixes,
    syncs: impl Fn() -> u64,
) -> Result<Measurement> {
    let before = syncs();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let prefix = match prefixes {
                Prefixes::PerWriter => format!("bench-writer-{w}"),
                Prefixes::Shared => "bench-log".to_owned(),
            };
            for _ in 0..per_writer {
                store
                    .put_sequenced(&prefix, Bytes::from_static(b"payload-0123456789"), &[1])
                    .await?;
            }
            Ok::<_, crate::Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| crate::Error::Closed {
            reason: format!("bench task failed: {e}"),
        })??;
    }
    let elapsed = started.elapsed();
    let ops = writers as u64 * per_writer;
    Ok(Measurement {
        name: "group commit put_sequenced",
        ops,
        syncs: Some(syncs() - before),
        elapsed,
    })
}

/// Opens a store on `storage` wrapped in a [`CountingStorage`], returning
/// both.
///
/// # Errors
///
/// As [`Store::open_arc`].
pub fn open_counting<S: Storage>(storage: S) -> Result<(Store, Arc<CountingStorage<S>>)> {
    let counting = Arc::new(CountingStorage::new(storage));
    let store = Store::open_arc(counting.clone(), crate::StoreOptions::default())?;
    Ok((store, counting))
}
