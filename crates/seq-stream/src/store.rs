//! The store: the handle users open, owning the single writer.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use seq_core::CommitOracle;
use seq_storage::Storage;
use tokio::sync::{Semaphore, watch};
use uuid::Uuid;

use crate::changes::ChangeFeed;
use crate::error::{Error, Result};
use crate::handoff::Handoff;
use crate::meta;
use crate::options::{StoreOptions, WriteOptions};
use crate::writer::{AfterCommit, Committed, GroupTx, Job, Pacing, Request, Writer, job_fn};

/// A store: one storage instance, one writer, every capability of seq.
///
/// `Store` is a cheap handle (`Clone`); all clones share the writer. Writes
/// from any thread or task are handed to the writer, which commits them in
/// groups (one atomic batch and one sync per group) and acknowledges each in
/// commit order.
///
/// Dropping the last handle closes the store: queued requests fail with
/// [`Error::Closed`], the group being written finishes first.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) options: StoreOptions,
    pub(crate) id: Uuid,
    /// Multi-writer mode (see [`Store::is_multi_writer`]).
    pub(crate) multi: bool,
    handoff: Arc<Handoff<Request>>,
    permits: Arc<Semaphore>,
    writer: Mutex<Option<JoinHandle<()>>>,
    applied: watch::Receiver<u64>,
    changes: ChangeFeed,
    durable: watch::Receiver<u64>,
    pub(crate) sequences: crate::sequence::Registry,
    pub(crate) seqkeys: crate::seqkey::Registry,
    pub(crate) streams: crate::stream::Registry,
    pub(crate) leases: crate::lease::Registry,
}

impl Store {
    /// Opens a store on `storage` with default options. Blocks while it reads
    /// the store's metadata.
    pub fn open(storage: impl Storage) -> Result<Self> {
        Self::open_with(storage, StoreOptions::default())
    }

    /// Opens a store on `storage`.
    pub fn open_with(storage: impl Storage, options: StoreOptions) -> Result<Self> {
        Self::open_arc(Arc::new(storage), options)
    }

    /// Opens a store on shared storage.
    pub fn open_arc(storage: Arc<dyn Storage>, options: StoreOptions) -> Result<Self> {
        if options.queue_capacity == 0 || options.max_group == 0 {
            return Err(Error::invalid(
                "queue_capacity and max_group must be at least 1",
            ));
        }
        let id = meta::load_or_create_identity(&*storage)?;
        let recovered = meta::load_commit(&*storage)?;
        let multi = options.shared || storage.capabilities().shared;
        let (applied_tx, applied) = watch::channel(recovered);
        let (changes, changes_tx) = ChangeFeed::open(&storage, multi, options.poll_interval)?;
        let (durable_tx, durable) = watch::channel(recovered);
        let handoff = Arc::new(Handoff::new());
        let writer = Writer {
            storage: storage.clone(),
            oracle: CommitOracle::new(recovered),
            last_timestamp: 0,
            node: options.node.clone(),
            max_group: options.max_group,
            applied: applied_tx,
            changes: changes_tx,
            durable: durable_tx,
            failed: None,
            cache: std::cell::RefCell::default(),
            limits: storage.capabilities(),
            multi,
            oracle_end: recovered,
            handoff: handoff.clone(),
            pacing: Pacing::new(options.group_wait),
            conflict_patience: options.conflict_patience,
        };
        let handle = std::thread::Builder::new()
            .name("seq-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::closed(format!("cannot start the writer thread: {e}")))?;
        let inner = Inner {
            sequences: crate::sequence::Registry::default(),
            seqkeys: crate::seqkey::Registry::default(),
            streams: crate::stream::Registry::default(),
            leases: crate::lease::Registry::default(),
            storage,
            permits: Arc::new(Semaphore::new(options.queue_capacity)),
            options,
            id,
            multi,
            handoff,
            writer: Mutex::new(Some(handle)),
            applied,
            changes,
            durable,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Opens (creating if needed) a redb-backed store in directory `dir`,
    /// with redb's page cache limited to [`REDB_CACHE_BYTES`] (redb's own
    /// default is 1 GiB, which a long consume fills). For another size, open
    /// `seq_redb::RedbStorage::open_with_cache_size(dir.join("seq.redb"),
    /// bytes)` and pass it to [`Store::open`].
    #[cfg(feature = "redb")]
    pub fn open_redb(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::open(redb_storage(dir.as_ref())?)
    }

    /// Opens (creating if needed) a RocksDB-backed store in directory `dir`,
    /// with `seq_rocks::default_options` (bounded memory; see there). For
    /// other options open `seq_rocks::RocksStorage::open_with(dir, &options)`
    /// and pass it to [`Store::open`].
    #[cfg(feature = "rocksdb")]
    pub fn open_rocksdb(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let storage = seq_rocks::RocksStorage::open(dir.as_ref())?;
        Self::open(storage)
    }

    /// Opens (creating if needed) a store on an etcd cluster, under
    /// `options.prefix`, in multi-writer mode: any number of processes may
    /// open the same prefix at once (see the crate docs, "Multi-writer
    /// mode"). Blocks while it connects and reads the store's metadata.
    #[cfg(feature = "etcd")]
    pub fn open_etcd(options: seq_etcd::EtcdOptions) -> Result<Self> {
        Self::open_etcd_with(options, StoreOptions::default())
    }

    /// [`Store::open_etcd`] with store options (multi-writer mode whatever
    /// `store.shared` says: etcd's capabilities mark it shared).
    #[cfg(feature = "etcd")]
    pub fn open_etcd_with(options: seq_etcd::EtcdOptions, store: StoreOptions) -> Result<Self> {
        Self::open_with(seq_etcd::EtcdStorage::connect(options)?, store)
    }

    /// Whether `storage` holds a store (one was opened on it before):
    /// lets a tool refuse to create a store by accident, e.g. on a mistyped
    /// etcd prefix.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the read fails, [`Error::Corrupt`] when the
    /// store's identity record does not decode.
    pub fn exists_in(storage: &dyn Storage) -> Result<bool> {
        Ok(meta::load_identity(storage)?.is_some())
    }

    /// The store's UUID, fixed when it was created.
    pub fn id(&self) -> Uuid {
        self.inner.id
    }

    /// The storage this store runs on.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// Whether this store runs in multi-writer mode: other stores write the
    /// same storage concurrently ([`StoreOptions::shared`], or a backend
    /// whose capabilities say it is shared). See the crate docs.
    pub fn is_multi_writer(&self) -> bool {
        self.inner.multi
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// True once [`Store::close`] has started (or the last handle dropped).
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.permits.is_closed()
    }

    /// The highest commit number applied (visible to readers).
    pub fn commit_seqnum(&self) -> u64 {
        *self.inner.applied.borrow()
    }

    /// A watch on the highest applied commit number; it changes after every
    /// committed group.
    pub fn watch_commits(&self) -> watch::Receiver<u64> {
        self.inner.applied.clone()
    }

    /// A watch that changes whenever new data may have become visible: after
    /// every commit group of this store and, in multi-writer mode, every
    /// [`StoreOptions::poll_interval`] (other writers' commits are found by
    /// reading again). Its value is a counter with no other meaning. It
    /// closes when the store's writer stops.
    ///
    /// In multi-writer mode on a backend that notifies of changes (etcd),
    /// the first call starts the notifications (a watch on the store's
    /// prefix), after which other writers' commits wake the watch at once
    /// and the poll runs at most once a second. A store that is never
    /// followed or subscribed to never asks for them, so the cluster does
    /// not stream it every write. Read after taking the receiver: a write
    /// made before the notifications were established is covered by a bump
    /// once they are.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// The highest commit number known to be durable.
    pub fn durable_seqnum(&self) -> u64 {
        *self.inner.durable.borrow()
    }

    /// A watch on [`Store::durable_seqnum`].
    pub fn watch_durable(&self) -> watch::Receiver<u64> {
        self.inner.durable.clone()
    }

    /// Makes every write acknowledged so far durable; returns the durable
    /// commit number.
    pub async fn flush(&self) -> Result<u64> {
        let (_, committed) = self.execute(WriteOptions::durable(), |_tx| Ok(())).await?;
        Ok(committed.commit)
    }

    /// Closes the store: stops intake, fails queued requests with
    /// [`Error::Closed`], waits for the writer to finish the group it is
    /// committing, then flushes storage. Later calls on any handle fail with
    /// [`Error::Closed`].
    ///
    /// The storage itself (the redb file, the RocksDB directory and their
    /// locks) is released when the last handle — this `Store`, its clones,
    /// and any [`crate::Sequence`] or [`crate::EntryStream`] made from it — is
    /// dropped; drop them before reopening the same directory in this
    /// process.
    pub async fn close(&self) -> Result<()> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.shutdown())
            .await
            .map_err(|e| Error::closed(format!("close panicked: {e}")))?
    }

    /// Hands `prepare` to the writer and waits for its commit. `prepare` runs
    /// on the writer thread and builds the request's writes; its value comes
    /// back with the commit.
    pub(crate) async fn execute<T, F>(
        &self,
        options: WriteOptions,
        prepare: F,
    ) -> Result<(T, Committed)>
    where
        F: FnMut(&mut GroupTx<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.execute_after(options, false, prepare, None).await
    }

    /// [`Store::execute`], and `after` runs with the value once the
    /// request's group committed, on the writer thread, even if this future
    /// was dropped meanwhile. With `try_only` a full queue is
    /// [`Error::Busy`] at once instead of a wait.
    pub(crate) async fn execute_after<T, F>(
        &self,
        options: WriteOptions,
        try_only: bool,
        prepare: F,
        after: Option<AfterCommit<T>>,
    ) -> Result<(T, Committed)>
    where
        F: FnMut(&mut GroupTx<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let permits = self.inner.permits.clone();
        let permit = if try_only {
            match permits.try_acquire_owned() {
                Ok(permit) => permit,
                Err(tokio::sync::TryAcquireError::NoPermits) => return Err(Error::Busy),
                Err(tokio::sync::TryAcquireError::Closed) => {
                    return Err(Error::closed("store is closed"));
                }
            }
        } else {
            permits
                .acquire_owned()
                .await
                .map_err(|_| Error::closed("store is closed"))?
        };
        let (job, reply) = job_fn(prepare, after);
        self.enqueue(job, options, permit)?;
        reply
            .await
            .map_err(|_| Error::closed("the writer stopped before answering"))?
    }

    fn enqueue(
        &self,
        job: Box<dyn Job>,
        options: WriteOptions,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<()> {
        let request = Request {
            job,
            options,
            _permit: permit,
        };
        // A request refused here was never queued: the caller gets the error
        // directly and the reply channel is dropped with it.
        self.inner
            .handoff
            .push(request)
            .map_err(|_refused| Error::closed("store is closed"))
    }
}

impl Inner {
    fn shutdown(&self) -> Result<()> {
        self.permits.close();
        // Ends open `SequenceUpdates` streams.
        self.seqkeys.close();
        for request in self.handoff.close() {
            request.job.finish(Err(Error::closed(
                "store closed before this request was written",
            )));
        }
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                return Err(Error::closed("the writer thread panicked"));
            }
            // The writer has stopped: nothing else writes now.
            self.sequences.give_back(&*self.storage);
            self.storage.flush()?;
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(%error, "seq store: close on drop failed");
        }
    }
}

/// The page cache [`Store::open_redb`] gives redb: 16 MiB keeps a store's
/// memory small (consuming a 1 GiB segment peaks near 50 MiB of RSS) while
/// the operating system's page cache still holds the file.
#[cfg(feature = "redb")]
pub const REDB_CACHE_BYTES: usize = 16 << 20;

/// The redb storage of the store in `dir` (created if needed), with
/// [`REDB_CACHE_BYTES`] of page cache.
#[cfg(feature = "redb")]
pub(crate) fn redb_storage(dir: &std::path::Path) -> Result<seq_redb::RedbStorage> {
    std::fs::create_dir_all(dir).map_err(seq_storage::Error::from)?;
    Ok(seq_redb::RedbStorage::open_with_cache_size(
        dir.join("seq.redb"),
        REDB_CACHE_BYTES,
    )?)
}
