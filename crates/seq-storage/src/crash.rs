//! A crash-simulating, fault-injecting in-memory backend.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::memory::{Map, SnapshotIter, apply_ops, check_preconditions};
use crate::{
    Capabilities, Durability, Error, KeyRange, Op, Result, ScanIter, ScanOptions, Storage,
    WriteBatch, show_key,
};

/// Faults a [`CrashStorage`] injects. Every injected failure is an
/// [`Error::Io`] whose message contains `"injected"`, and a write that fails
/// changes nothing.
///
/// Write attempts are counted from the moment the plan is installed (at
/// construction or by [`CrashStorage::set_faults`]); the first attempt is
/// number 1. An empty batch counts as an attempt; [`Storage::flush`] does not.
///
/// ```
/// use seq_storage::FaultPlan;
///
/// let plan = FaultPlan::new().fail_nth_write(3).fail_reads_of(&b"bad"[..]);
/// # let _ = plan;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    fail_nth_write: Option<u64>,
    fail_writes_after: Option<u64>,
    fail_next_sync: bool,
    fail_reads_of: Vec<Bytes>,
}

impl FaultPlan {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails write attempt number `n` (1-based, counted from installation).
    /// The store stays usable afterwards.
    pub fn fail_nth_write(mut self, n: u64) -> Self {
        self.fail_nth_write = Some(n);
        self
    }

    /// Fails every write attempt after the first `n` (so `0` fails them all),
    /// like a disk that filled up.
    pub fn fail_writes_after(mut self, n: u64) -> Self {
        self.fail_writes_after = Some(n);
        self
    }

    /// Fails the next [`Durability::Sync`] write or [`Storage::flush`] at its
    /// fsync. Like a real fsync failure this is fatal: the failed write is not
    /// applied, nothing buffered before it becomes durable, and the store
    /// refuses every later write and flush with [`Error::Closed`] until it is
    /// replaced by [`CrashStorage::crash`] (reads keep working).
    pub fn fail_next_sync(mut self) -> Self {
        self.fail_next_sync = true;
        self
    }

    /// Fails every read of `key`: [`Storage::get`] of it, and any scan when
    /// it reaches it (the scan yields the error and then ends).
    pub fn fail_reads_of(mut self, key: impl Into<Bytes>) -> Self {
        self.fail_reads_of.push(key.into());
        self
    }
}

/// An in-memory [`Storage`] that tracks what is durable separately from what
/// is applied, so tests can "crash" it and see exactly what would survive.
///
/// * A [`Durability::Sync`] write (or [`Storage::flush`]) makes itself and
///   every earlier write durable.
/// * A [`Durability::Buffered`] write is applied and visible at once but only
///   becomes durable at the next synced write or flush.
/// * [`CrashStorage::crash`] returns a new store holding exactly the durable
///   state; [`CrashStorage::crash_keeping`] also keeps a prefix of the
///   buffered batches, modelling a crash after some of them reached the disk
///   on their own. A batch is never kept in part, and never out of order.
/// * [`CrashStorage::close_and_reopen`] models a clean shutdown: everything
///   is kept.
///
/// After a crash or reopen the old handle (and its clones) is closed: every
/// call on it fails with [`Error::Closed`], which catches code that keeps
/// using a "dead process's" store.
///
/// Faults are injected with a [`FaultPlan`]. Clones share one store.
/// [`Capabilities::persistent`] is true; the size limits are none unless set
/// with [`CrashStorage::with_capabilities`].
///
/// ```
/// use seq_storage::{CrashStorage, Durability, Storage, WriteBatch};
///
/// # fn main() -> seq_storage::Result<()> {
/// let store = CrashStorage::new();
/// let mut synced = WriteBatch::new();
/// synced.put(&b"a"[..], &b"1"[..]);
/// store.write(synced, Durability::Sync)?;
/// let mut buffered = WriteBatch::new();
/// buffered.put(&b"b"[..], &b"2"[..]);
/// store.write(buffered, Durability::Buffered)?;
///
/// let after = store.crash();
/// assert!(after.get(b"a")?.is_some());
/// assert!(after.get(b"b")?.is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CrashStorage {
    inner: Arc<Mutex<State>>,
}

struct State {
    /// What a reader sees.
    live: Map,
    /// What survives a crash.
    durable: Map,
    /// Buffered batches applied to `live` since `durable` was taken, oldest
    /// first: replaying them on `durable` gives `live`.
    pending: Vec<Vec<Op>>,
    faults: FaultPlan,
    /// Write attempts since `faults` was installed.
    attempts: u64,
    /// Set when the store must refuse further use.
    closed: Option<String>,
    /// Set after a failed sync: writes are refused, reads still work.
    poisoned: Option<String>,
    capabilities: Capabilities,
}

impl fmt::Debug for CrashStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("CrashStorage")
            .field("live_keys", &state.live.len())
            .field("durable_keys", &state.durable.len())
            .field("pending_batches", &state.pending.len())
            .field("faults", &state.faults)
            .field("closed", &state.closed)
            .field("poisoned", &state.poisoned)
            .finish()
    }
}

impl Default for CrashStorage {
    fn default() -> Self {
        Self::new()
    }
}

/// An injected I/O failure.
pub(crate) fn injected(what: impl fmt::Display) -> Error {
    Error::Io {
        source: std::io::Error::other(format!("injected fault: {what}")),
    }
}

impl CrashStorage {
    /// An empty store without faults.
    pub fn new() -> Self {
        Self::with_faults(FaultPlan::new())
    }

    /// An empty store that injects `faults`.
    pub fn with_faults(faults: FaultPlan) -> Self {
        Self::from_state(Map::new(), faults, Capabilities::persistent())
    }

    fn from_state(map: Map, faults: FaultPlan, capabilities: Capabilities) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                live: map.clone(),
                durable: map,
                pending: Vec::new(),
                faults,
                attempts: 0,
                closed: None,
                poisoned: None,
                capabilities,
            })),
        }
    }

    /// The same store reporting (and enforcing) `capabilities`' size limits,
    /// for exercising [`Error::TooLarge`] paths. `persistent` is kept true.
    pub fn with_capabilities(self, capabilities: Capabilities) -> Self {
        self.lock().capabilities = Capabilities {
            persistent: true,
            ..capabilities
        };
        self
    }

    /// Replaces the fault plan and restarts the write-attempt count.
    pub fn set_faults(&self, faults: FaultPlan) {
        let mut state = self.lock();
        state.faults = faults;
        state.attempts = 0;
    }

    /// Number of buffered batches that a crash now would lose.
    pub fn pending_batches(&self) -> usize {
        self.lock().pending.len()
    }

    /// Simulates a crash (power loss): returns a new store holding exactly
    /// the durable state, and closes this one. Buffered writes since the last
    /// sync are lost; synced ones never are. The new store has no faults.
    pub fn crash(&self) -> CrashStorage {
        self.crash_keeping(0)
    }

    /// Like [`CrashStorage::crash`], but the first `n` buffered batches
    /// (clamped to [`CrashStorage::pending_batches`]) reached the disk before
    /// the crash. Tests use it to check that every prefix of buffered writes
    /// is a state their recovery handles.
    pub fn crash_keeping(&self, n: usize) -> CrashStorage {
        let mut state = self.lock();
        let mut image = state.durable.clone();
        for ops in state.pending.iter().take(n) {
            apply_ops(&mut image, ops);
        }
        state.closed = Some("the store crashed; use the store returned by crash()".into());
        Self::from_state(image, FaultPlan::new(), state.capabilities)
    }

    /// Simulates a clean shutdown and restart: everything applied is kept
    /// (as if flushed at close) and this handle is closed. The new store has
    /// no faults. After a failed sync this keeps only the durable state, as
    /// the flush at close would fail too.
    pub fn close_and_reopen(&self) -> CrashStorage {
        let mut state = self.lock();
        let image = if state.poisoned.is_some() {
            state.durable.clone()
        } else {
            state.live.clone()
        };
        state.closed =
            Some("the store was closed; use the store returned by close_and_reopen()".into());
        Self::from_state(image, FaultPlan::new(), state.capabilities)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Writes check everything before mutating, so a poisoned lock still
        // guards a consistent state.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn check_open(&self) -> Result<()> {
        match &self.closed {
            Some(reason) => Err(Error::Closed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        match &self.poisoned {
            Some(reason) => Err(Error::Closed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_read(&self, key: &[u8]) -> Result<()> {
        if self.faults.fail_reads_of.iter().any(|k| k[..] == *key) {
            return Err(injected(format!("read of key {}", show_key(key))));
        }
        Ok(())
    }

    /// Consumes a pending sync fault, poisoning the store.
    fn take_sync_fault(&mut self) -> Result<()> {
        if self.faults.fail_next_sync {
            self.faults.fail_next_sync = false;
            self.poisoned =
                Some("an earlier fsync failed; crash() or reopen the store to continue".into());
            return Err(injected("fsync"));
        }
        Ok(())
    }

    fn make_durable(&mut self) {
        self.durable = self.live.clone();
        self.pending.clear();
    }
}

impl Storage for CrashStorage {
    fn capabilities(&self) -> Capabilities {
        self.lock().capabilities
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let state = self.lock();
        state.check_open()?;
        state.check_read(key)?;
        Ok(state.live.get(key).cloned())
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>> {
        let state = self.lock();
        state.check_open()?;
        let iter = SnapshotIter::new(state.live.clone(), range, options)
            .failing_on(state.faults.fail_reads_of.clone());
        Ok(Box::new(iter))
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let mut state = self.lock();
        state.check_writable()?;
        state.attempts += 1;
        let attempt = state.attempts;
        if state.faults.fail_nth_write == Some(attempt) {
            return Err(injected(format!("write attempt {attempt}")));
        }
        if state.faults.fail_writes_after.is_some_and(|n| attempt > n) {
            return Err(injected(format!(
                "write attempt {attempt} (writes fail after a limit)"
            )));
        }
        crate::check_limits(&state.capabilities, &batch)?;
        let (preconditions, ops) = batch.into_parts();
        check_preconditions(&state.live, &preconditions)?;
        if durability == Durability::Sync {
            state.take_sync_fault()?;
        }
        apply_ops(&mut state.live, &ops);
        match durability {
            Durability::Sync => state.make_durable(),
            Durability::Buffered => state.pending.push(ops),
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let mut state = self.lock();
        state.check_writable()?;
        state.take_sync_fault()?;
        state.make_durable();
        Ok(())
    }
}
