//! Leases with fencing tokens (`LSE` + key).
//!
//! A lease gives one holder at a time a named key for a time-to-live,
//! renewed in the background. Every grant takes the key's next **fencing
//! token** (1, 2, 3, …), persisted in the lease record and never reused:
//! tokens keep increasing across releases, expiries, crashes and restarts.
//!
//! # Rules
//!
//! * **Granted** when the key has no record, its grant expired, it was
//!   released, or the requester is the current holder (same holder UUID,
//!   see [`LeaseOptions::with_holder`]); each grant bumps the token, so a
//!   re-grant to the same holder fences that holder's older token too.
//!   Otherwise [`Error::Conflict`] (`lease "k" held until T (token N)`).
//! * **Time** is the writer's commit-group timestamp (µs since the Unix
//!   epoch, strictly increasing): a grant or renewal at store time `now`
//!   expires at `now + ttl`. The holder keeps a local deadline measured with
//!   tokio's clock from *before* it sent the request, so it always considers
//!   the lease lost no later than the store does.
//! * **Renewal** runs in a tokio task every `ttl / 3`. If a renewal fails
//!   (expired, granted to someone else, store closed or failing) or the
//!   local deadline passes, the lease's [`LeaseSignal`] fires with
//!   [`LeaseEnd::Lost`] and renewal stops.
//! * **Fencing** is a token comparison, as with ZooKeeper's zxid or etcd's
//!   revision fencing: a write carrying [`Fence`] `{ key, token }` is
//!   accepted while `token` is the key's current token and rejected with
//!   [`Error::Fenced`] `{ key, token, current }` otherwise. A key that never
//!   had a lease has current token 0, so every fence on it is rejected with
//!   `Fenced { current: 0, .. }`. Expiry or release alone does not fence:
//!   the next *grant* does. The check runs on the writer thread, in commit
//!   order, so a fenced write and a grant can never interleave.
//! * **One holder in a process**: when a store grants a key, an older grant
//!   of that key still held through the same store is lost, and its signal
//!   fires before the new [`Lease`] is returned (other processes learn it
//!   from their deadline or their next renewal).
//! * **Waiting**: [`Store::wait_lease`] and [`Store::with_lease`] retry when
//!   the lease is released in this process or its grant expires. The wake-up
//!   order of several waiters is not defined (no FIFO fairness).
//! * **Cancelling an acquire** (dropping its future) after the grant was
//!   committed leaves a grant nobody renews: it lapses at its ttl.
//!
//! # On backends with leases of their own (etcd)
//!
//! When the storage keeps leases itself ([`seq_storage::Storage::leases`]),
//! expiry is the backend's business, not the writers' clocks':
//!
//! * A grant first takes a backend lease (ttl at least
//!   [`MIN_BACKEND_LEASE_TTL`]; etcd counts whole seconds) and commits, with
//!   the lease record, a **holder key** attached to it. The lease is held
//!   while that key exists; the backend deletes it when the holder stops
//!   keeping its backend lease alive, on the backend's own clock. Clocks of
//!   the machines running seq need not agree.
//! * Renewal keeps the backend lease alive and checks that the holder key
//!   still names this grant; a lapsed backend lease, or a newer grant, ends
//!   the lease with [`LeaseEnd::Lost`]. The local deadline (`ttl` from
//!   before the request was sent) still applies, and is never later than the
//!   backend's.
//! * Release deletes the holder key with the record update and revokes the
//!   backend lease. A failed grant revokes the backend lease it took.
//! * Tokens and fencing are unchanged: a CAS counter in the lease record,
//!   checked on the writer thread on every fenced write.
//! * A grant whose backend lease lapsed before the grant committed (a writer
//!   stalled for over a second) fails with [`Error::Storage`] and writes
//!   nothing; the other requests of its commit group are prepared again
//!   without it.

mod record;
mod signal;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

pub use signal::{LeaseEnd, LeaseSignal};

use crate::cursor::blocking_read;
use crate::error::{Error, Result};
use crate::options::WriteOptions;
use crate::store::Store;
use crate::writer::GroupTx;
use record::{Grant, LeaseRecord};
use seq_storage::{LeaseId, Leases};
use signal::Trigger;

/// Shortest accepted ttl.
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(1);

/// Shortest ttl of the backend lease behind a grant on a backend with
/// leases (etcd's granularity is a second). The holder still counts its
/// lease lost after its own ttl without a renewal.
pub const MIN_BACKEND_LEASE_TTL: Duration = Duration::from_secs(1);

/// Longest a waiter sleeps before it looks at a held lease again (covers a
/// store clock running ahead of the wall clock, and backend leases, whose
/// expiry the store does not know).
const MAX_WAIT_POLL: Duration = Duration::from_millis(250);

/// Per-store state of leases: a counter bumped whenever a lease is released
/// in this process, which wakes waiters, and the latest grant of each key
/// made by this store.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    released: watch::Sender<u64>,
    /// Per key, the state of the newest grant this store made (one entry per
    /// key ever granted here; the state itself goes with its `Lease`).
    latest: Mutex<std::collections::HashMap<String, std::sync::Weak<State>>>,
}

impl Registry {
    fn notify_released(&self) {
        self.released.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records a new grant. An older grant of the same key still held in
    /// this process is lost from now on: its signal fires before the new
    /// holder gets its [`Lease`], whether or not its own timer has run yet.
    /// Grants may be recorded out of token order (two callers racing after
    /// a short ttl lapsed); the newest token stays recorded and the older
    /// grant is the one that is lost.
    fn granted(&self, state: &Arc<State>) {
        let mut latest = self
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recorded = latest.get(&state.key).and_then(std::sync::Weak::upgrade);
        let lost = match recorded {
            Some(newer) if newer.token > state.token => Some((state.clone(), newer.token)),
            Some(older) => {
                latest.insert(state.key.clone(), Arc::downgrade(state));
                (older.token < state.token).then_some((older, state.token))
            }
            None => {
                latest.insert(state.key.clone(), Arc::downgrade(state));
                None
            }
        };
        drop(latest);
        if let Some((lost, by)) = lost {
            lost.superseded_by
                .store(by, std::sync::atomic::Ordering::Release);
            lost.trigger.fire(LeaseEnd::Lost);
        }
    }
}

/// A fencing token a write carries: the write is accepted only while `token`
/// is the current token of lease `key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The lease key.
    pub key: String,
    /// The token the writer was granted.
    pub token: u64,
}

impl Fence {
    /// A fence on lease `key` with `token`.
    pub fn new(key: impl Into<String>, token: u64) -> Self {
        Self {
            key: key.into(),
            token,
        }
    }
}

/// Checks `fence` against the lease record, on the writer thread (seeing the
/// writes of earlier requests of the same group).
///
/// * `Ok(())` when `fence.token` is the lease's current token (whether or
///   not the grant has expired or was released: the next grant fences it).
/// * [`Error::Fenced`] `{ key, token, current }` when it is not; `current`
///   is 0 when the key never had a lease.
/// * [`Error::InvalidArgument`] when the key is not a valid lease key;
///   [`Error::Corrupt`] / [`Error::Storage`] when the record cannot be read.
pub(crate) fn check_fence(tx: &GroupTx<'_>, fence: &Fence) -> Result<()> {
    check_key(&fence.key)?;
    let current = record::load(tx, &fence.key)?.map_or(0, |r| r.token);
    if current == fence.token && current != 0 {
        Ok(())
    } else {
        Err(record::fenced(&fence.key, fence.token, current))
    }
}

/// What a lease key holds, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The holder of the latest grant; `None` once released (and, on a
    /// backend with leases, once the holder's backend lease lapsed).
    pub holder: Option<Uuid>,
    /// When the latest grant lapses (µs since the Unix epoch, store clock);
    /// 0 once released. On a backend with leases, the grant's estimate
    /// (grant time + ttl): the backend lease decides.
    pub expires_at: u64,
    /// The fencing token of the latest grant: the current token.
    pub token: u64,
}

/// How to take a lease.
///
/// ```
/// use std::time::Duration;
/// use seq_stream::LeaseOptions;
///
/// let options = LeaseOptions::new(Duration::from_secs(10)).without_renewal();
/// assert!(!options.auto_renew);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseOptions {
    /// Time to live of each grant and renewal; at least [`MIN_LEASE_TTL`].
    pub ttl: Duration,
    /// Renew in the background every `ttl / 3` (default `true`). Without it
    /// the lease is lost at its ttl unless [`Lease::renew`] is called.
    pub auto_renew: bool,
    /// The holder identity. Default: a fresh UUID per acquisition. A request
    /// by the current holder is granted again (with a new token).
    pub holder: Option<Uuid>,
}

impl LeaseOptions {
    /// Options with `ttl`, background renewal and a fresh holder.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            auto_renew: true,
            holder: None,
        }
    }

    /// The same options without background renewal.
    pub fn without_renewal(mut self) -> Self {
        self.auto_renew = false;
        self
    }

    /// The same options with a fixed holder identity.
    pub fn with_holder(mut self, holder: Uuid) -> Self {
        self.holder = Some(holder);
        self
    }

    /// The ttl in µs, validated.
    fn ttl_micros(&self) -> Result<u64> {
        if self.ttl < MIN_LEASE_TTL {
            return Err(Error::invalid(format!(
                "lease ttl {:?} is below the minimum {MIN_LEASE_TTL:?}",
                self.ttl
            )));
        }
        u64::try_from(self.ttl.as_micros())
            .map_err(|_| Error::invalid(format!("lease ttl {:?} is too long", self.ttl)))
    }
}

/// What the work of [`Store::with_lease`] gets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseContext {
    /// The fencing token of this grant.
    pub token: u64,
    /// The fence to attach to writes made under the lease.
    pub fence: Fence,
    /// Fires when the lease is lost, released, or the caller cancels.
    pub signal: LeaseSignal,
}

/// A held lease. Renews itself in the background (unless disabled) until it
/// is released, dropped or lost.
///
/// Dropping a `Lease` without [`Lease::release`] fires its signal with
/// [`LeaseEnd::Released`], stops renewal and releases the lease in the
/// background (best effort, when a tokio runtime is running; otherwise it
/// lapses at its ttl). A `Lease` holds a handle on its [`Store`].
#[derive(Debug)]
pub struct Lease {
    store: Store,
    state: Arc<State>,
    task: Option<JoinHandle<()>>,
    done: bool,
}

#[derive(Debug)]
struct State {
    key: String,
    holder: Uuid,
    token: u64,
    ttl: Duration,
    ttl_micros: u64,
    trigger: Trigger,
    /// When the last successful grant or renewal was *sent* (tokio clock).
    renewed: Mutex<Instant>,
    /// The backend lease behind this grant, on a backend with leases.
    backend: Option<LeaseId>,
    /// The token of a newer grant of the key made by this store (0: none
    /// known): this grant is fenced by it.
    superseded_by: std::sync::atomic::AtomicU64,
}

impl State {
    fn renewed(&self) -> Instant {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_renewed(&self, at: Instant) {
        let mut renewed = self.renewed.lock().unwrap_or_else(|p| p.into_inner());
        *renewed = (*renewed).max(at);
    }

    fn deadline(&self) -> Instant {
        self.renewed() + self.ttl
    }
}

impl Lease {
    /// The lease key.
    pub fn key(&self) -> &str {
        &self.state.key
    }

    /// The fencing token of this grant.
    pub fn token(&self) -> u64 {
        self.state.token
    }

    /// The holder identity of this grant.
    pub fn holder(&self) -> Uuid {
        self.state.holder
    }

    /// The ttl of each grant and renewal.
    pub fn ttl(&self) -> Duration {
        self.state.ttl
    }

    /// The backend lease behind this grant, on a backend with leases of its
    /// own (etcd's lease ID); `None` elsewhere.
    pub fn backend_lease(&self) -> Option<LeaseId> {
        self.state.backend
    }

    /// The fence to attach to writes made under this lease.
    pub fn fence(&self) -> Fence {
        Fence {
            key: self.state.key.clone(),
            token: self.state.token,
        }
    }

    /// A signal that fires when the lease is lost or released.
    pub fn signal(&self) -> LeaseSignal {
        self.state.trigger.signal()
    }

    /// Whether the lease is still held as far as this holder knows: not
    /// lost, not released, and its local deadline has not passed.
    pub fn is_held(&self) -> bool {
        !self.state.trigger.is_fired() && Instant::now() < self.state.deadline()
    }

    /// Renews the lease now for another ttl.
    ///
    /// # Errors
    ///
    /// * [`Error::Fenced`]: it was granted to someone else (or this holder
    ///   again) meanwhile, or released.
    /// * [`Error::Conflict`]: the grant expired.
    /// * [`Error::Storage`] / [`Error::Closed`]: the write failed.
    ///
    /// On any error the lease counts as lost and its signal fires with
    /// [`LeaseEnd::Lost`] (unless it fired already). After the signal
    /// fired, `renew` fails without writing: with [`Error::Fenced`] when
    /// this store granted the key again since, else [`Error::Conflict`].
    pub async fn renew(&self) -> Result<()> {
        let current = self
            .state
            .superseded_by
            .load(std::sync::atomic::Ordering::Acquire);
        if current != 0 {
            return Err(Error::Fenced {
                key: self.state.key.clone(),
                token: self.state.token,
                current,
            });
        }
        if let Some(reason) = self.signal().reason() {
            return Err(Error::Conflict {
                what: format!("lease {:?} already ended ({reason:?})", self.state.key),
            });
        }
        renew_once(&self.store, &self.state).await
    }

    /// Releases the lease: fires the signal with [`LeaseEnd::Released`],
    /// stops renewal, and marks the record released (keeping its token), so
    /// the next request is granted at once.
    ///
    /// # Errors
    ///
    /// [`Error::Fenced`] when the lease had been granted again meanwhile
    /// (nothing is written; the lease was lost before), [`Error::Storage`] /
    /// [`Error::Closed`] when the write failed (the grant then lapses at its
    /// ttl).
    pub async fn release(mut self) -> Result<()> {
        self.done = true;
        self.state.trigger.fire(LeaseEnd::Released);
        if let Some(task) = self.task.take() {
            task.abort();
        }
        release_record(&self.store, &self.state).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if self.done {
            return;
        }
        self.state.trigger.fire(LeaseEnd::Released);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let state = self.state.clone();
            runtime.spawn(async move {
                if let Err(error) = release_record(&store, &state).await {
                    tracing::debug!(%error, key = %state.key, "seq: releasing a dropped lease failed");
                }
            });
        }
    }
}

async fn release_record(store: &Store, state: &Arc<State>) -> Result<()> {
    let key = state.key.clone();
    let (holder, token) = (state.holder, state.token);
    let backend = state.backend;
    let result = store
        .execute(WriteOptions::durable(), move |tx| {
            record::release(tx, &key, holder, token, backend.is_some())
        })
        .await
        .map(|_| ());
    if let Some(lease) = backend {
        revoke_quietly(store, lease).await;
    }
    store.inner.leases.notify_released();
    result
}

async fn renew_once(store: &Store, state: &Arc<State>) -> Result<()> {
    let key = state.key.clone();
    let (holder, token, ttl) = (state.holder, state.token, state.ttl_micros);
    let sent = Instant::now();
    let result = match state.backend {
        Some(lease) => keep_alive(store, lease, key, holder, token).await,
        None => store
            .execute(WriteOptions::durable(), move |tx| {
                record::renew(tx, &key, holder, token, ttl)
            })
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => {
            state.set_renewed(sent);
            Ok(())
        }
        Err(error) => {
            state.trigger.fire(LeaseEnd::Lost);
            Err(error)
        }
    }
}

/// Renewal on a backend with leases: keeps the backend lease alive, then
/// checks that the holder key still names this grant.
async fn keep_alive(
    store: &Store,
    lease: LeaseId,
    key: String,
    holder: Uuid,
    token: u64,
) -> Result<()> {
    blocking_read(store, move |storage| {
        let expired = || Error::Conflict {
            what: format!("lease {key:?} expired: its backend lease {lease} lapsed"),
        };
        if backend_leases(storage)?.keep_alive(lease)?.is_none() {
            return Err(expired());
        }
        match record::read_holder(storage, &key)? {
            Some((who, current)) if who == holder && current == token => Ok(()),
            Some((_, current)) => Err(record::fenced(&key, token, current)),
            None => Err(expired()),
        }
    })
    .await
}

/// The storage's lease service (the caller checked it has one).
fn backend_leases(storage: &dyn seq_storage::Storage) -> Result<&dyn Leases> {
    storage
        .leases()
        .ok_or_else(|| Error::closed("internal: the storage has no leases"))
}

/// Revokes backend lease `lease`, logging a failure (it then lapses at its
/// ttl).
async fn revoke_quietly(store: &Store, lease: LeaseId) {
    let result = blocking_read(store, move |storage| {
        backend_leases(storage)?.revoke(lease)?;
        Ok(())
    })
    .await;
    if let Err(error) = result {
        tracing::debug!(%error, %lease, "seq: revoking a backend lease failed; it lapses at its ttl");
    }
}

/// The background task of a lease: renews every `ttl / 3` (if enabled) and
/// fires [`LeaseEnd::Lost`] when a renewal fails or the local deadline
/// passes. Ends when the signal fires.
async fn run_lease(store: Store, state: Arc<State>, auto_renew: bool) {
    let signal = state.trigger.signal();
    loop {
        let deadline = state.deadline();
        let wake = if auto_renew {
            deadline.min(state.renewed() + state.ttl / 3)
        } else {
            deadline
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            _ = signal.fired() => return,
        }
        if state.trigger.is_fired() {
            return;
        }
        if Instant::now() >= state.deadline() {
            state.trigger.fire(LeaseEnd::Lost);
            return;
        }
        if auto_renew && let Err(error) = renew_once(&store, &state).await {
            tracing::debug!(%error, key = %state.key, "seq: lease renewal failed; lease lost");
            return;
        }
    }
}

/// What lease `key` holds, from its record and (on a backend with leases)
/// its holder key.
fn info(storage: &dyn seq_storage::Storage, key: &str, r: LeaseRecord) -> Result<LeaseInfo> {
    let holder = if storage.leases().is_some() {
        record::read_holder(storage, key)?
            .filter(|&(_, token)| token == r.token)
            .map(|(holder, _)| holder)
    } else {
        (!r.holder.is_nil()).then_some(r.holder)
    };
    Ok(LeaseInfo {
        holder,
        expires_at: r.expires_at,
        token: r.token,
    })
}

fn check_key(key: &str) -> Result<()> {
    seq_core::validate_name("lease", key).map_err(Error::from)
}

impl Store {
    /// Takes lease `key` for `ttl` with background renewal, or fails at once
    /// if someone else holds it. Durable when it returns.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidArgument`]: `key` is empty, longer than 255 bytes
    ///   or holds a control byte; `ttl` is below [`MIN_LEASE_TTL`].
    /// * [`Error::Conflict`]: another holder has it (`lease "k" held until T
    ///   (token N)`).
    /// * [`Error::Exhausted`]: the key's tokens ran out (after `u64::MAX`
    ///   grants).
    /// * [`Error::Corrupt`] / [`Error::Storage`] / [`Error::Closed`]: the
    ///   record could not be read or written, or the store is closed.
    pub async fn acquire_lease(&self, key: &str, ttl: Duration) -> Result<Lease> {
        self.acquire_lease_with(key, LeaseOptions::new(ttl)).await
    }

    /// Like [`Store::acquire_lease`], with options.
    ///
    /// # Errors
    ///
    /// As [`Store::acquire_lease`].
    pub async fn acquire_lease_with(&self, key: &str, options: LeaseOptions) -> Result<Lease> {
        match self.try_grant(key, &options).await? {
            Ok(lease) => Ok(lease),
            Err((Some(expires_at), token)) => Err(Error::Conflict {
                what: format!("lease {key:?} held until {expires_at} (token {token})"),
            }),
            Err((None, token)) => Err(Error::Conflict {
                what: format!(
                    "lease {key:?} held (token {token}) while its holder's backend lease lives"
                ),
            }),
        }
    }

    /// Takes lease `key`, waiting while someone else holds it (until it is
    /// released in this process or its grant expires). Drop the future to
    /// stop waiting.
    ///
    /// # Errors
    ///
    /// As [`Store::acquire_lease`], except [`Error::Conflict`].
    pub async fn wait_lease(&self, key: &str, options: LeaseOptions) -> Result<Lease> {
        let mut released = self.inner.leases.released.subscribe();
        loop {
            released.borrow_and_update();
            match self.try_grant(key, &options).await? {
                Ok(lease) => return Ok(lease),
                Err((expires_at, _)) => {
                    let wait = expires_at.map_or(MAX_WAIT_POLL, |at| {
                        let now = crate::writer::now_micros();
                        Duration::from_micros(at.saturating_sub(now).saturating_add(1))
                            .min(MAX_WAIT_POLL)
                    });
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = released.changed() => {}
                    }
                }
            }
        }
    }

    /// Runs `f` while holding lease `key` (waiting for it first, as
    /// [`Store::wait_lease`]), renewing it in the background, and releases
    /// it when `f`'s future completes. `f` gets a [`LeaseContext`] with the
    /// fencing token, a [`Fence`] for its writes and a [`LeaseSignal`] that
    /// fires if the lease is lost; `f` should then stop and return. Returns
    /// `f`'s output.
    ///
    /// Dropping the returned future drops `f`'s future, fires the signal
    /// ([`LeaseEnd::Released`]) for any clones `f` passed on, and releases
    /// the lease in the background. A failed release at the end is logged,
    /// not returned (the grant then lapses at its ttl).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> seq_stream::Result<()> {
    /// use std::time::Duration;
    /// use seq_stream::Store;
    ///
    /// let store = Store::open(seq_storage::MemoryStorage::new())?;
    /// let token = store
    ///     .with_lease("compactor", Duration::from_secs(10), |ctx| async move {
    ///         assert!(!ctx.signal.is_fired());
    ///         ctx.token
    ///     })
    ///     .await?;
    /// assert_eq!(token, 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Store::wait_lease`]: only taking the lease can fail.
    pub async fn with_lease<F, Fut>(&self, key: &str, ttl: Duration, f: F) -> Result<Fut::Output>
    where
        F: FnOnce(LeaseContext) -> Fut,
        Fut: Future,
    {
        self.with_lease_until(key, LeaseOptions::new(ttl), std::future::pending::<()>(), f)
            .await
    }

    /// Like [`Store::with_lease`], with options and a cancellation future:
    /// when `cancel` completes while `f` runs (for example
    /// `token.cancelled()` of a tokio-util `CancellationToken`, or a
    /// oneshot receiver), the signal fires with [`LeaseEnd::Cancelled`],
    /// renewal stops, and `f` is expected to wind down; its output is still
    /// awaited and returned. `cancel` is not watched while waiting for the
    /// lease: drop the future to stop waiting.
    ///
    /// # Errors
    ///
    /// As [`Store::wait_lease`].
    pub async fn with_lease_until<F, Fut, C>(
        &self,
        key: &str,
        options: LeaseOptions,
        cancel: C,
        f: F,
    ) -> Result<Fut::Output>
    where
        F: FnOnce(LeaseContext) -> Fut,
        Fut: Future,
        C: Future<Output = ()>,
    {
        let lease = self.wait_lease(key, options).await?;
        let context = LeaseContext {
            token: lease.token(),
            fence: lease.fence(),
            signal: lease.signal(),
        };
        let work = f(context);
        tokio::pin!(work);
        tokio::pin!(cancel);
        let mut cancelled = false;
        let output = loop {
            tokio::select! {
                output = &mut work => break output,
                () = &mut cancel, if !cancelled => {
                    cancelled = true;
                    lease.state.trigger.fire(LeaseEnd::Cancelled);
                }
            }
        };
        let key = lease.state.key.clone();
        if let Err(error) = lease.release().await {
            tracing::debug!(%error, %key, "seq: releasing a lease after with_lease failed");
        }
        Ok(output)
    }

    /// The stored state of lease `key` (`None` if it never had a lease).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an invalid key, [`Error::Corrupt`]
    /// when the record does not decode, [`Error::Storage`] /
    /// [`Error::Closed`] when the read fails.
    pub async fn lease_info(&self, key: &str) -> Result<Option<LeaseInfo>> {
        check_key(key)?;
        let key = key.to_owned();
        blocking_read(self, move |storage| {
            let stored = record::key(&key);
            storage
                .get(&stored)?
                .map(|bytes| info(storage, &key, LeaseRecord::decode(&stored, &bytes)?))
                .transpose()
        })
        .await
    }

    /// Every lease key that ever had a lease, with its stored state, in key
    /// order.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for a record that does not decode;
    /// [`Error::Storage`] / [`Error::Closed`] when the scan fails.
    pub async fn list_leases(&self) -> Result<Vec<(String, LeaseInfo)>> {
        blocking_read(self, |storage| {
            let mut out = Vec::new();
            let range = seq_storage::KeyRange::prefix(seq_core::keys::keyspace::LSE);
            for item in storage.scan(range, seq_storage::ScanOptions::forward())? {
                let (key, value) = item?;
                let name = record::name_of(&key)?;
                let info = info(storage, &name, LeaseRecord::decode(&key, &value)?)?;
                out.push((name, info));
            }
            Ok(out)
        })
        .await
    }

    /// Checks `fence` against the committed lease record: `Ok` while its
    /// token is current. Advisory (the lease may change right after); the
    /// authoritative check is the one a fenced produce runs on the writer
    /// thread, atomically with its write.
    ///
    /// # Errors
    ///
    /// * [`Error::Fenced`] `{ key, token, current }`: the token is not the
    ///   current one (`current` 0: the key never had a lease).
    /// * [`Error::InvalidArgument`]: the key is not a valid lease key.
    /// * [`Error::Corrupt`] / [`Error::Storage`] / [`Error::Closed`]: the
    ///   record could not be read.
    pub async fn check_fence(&self, fence: &Fence) -> Result<()> {
        check_key(&fence.key)?;
        let current = self
            .lease_info(&fence.key)
            .await?
            .map_or(0, |info| info.token);
        if current == fence.token && current != 0 {
            Ok(())
        } else {
            Err(record::fenced(&fence.key, fence.token, current))
        }
    }

    /// One grant attempt: the lease, or `(expires_at, token)` of the current
    /// holder's grant (`expires_at` is `None` when a backend lease decides).
    async fn try_grant(
        &self,
        key: &str,
        options: &LeaseOptions,
    ) -> Result<Result<Lease, (Option<u64>, u64)>> {
        check_key(key)?;
        let ttl_micros = options.ttl_micros()?;
        let holder = options.holder.unwrap_or_else(Uuid::new_v4);
        let owned = key.to_owned();
        let sent = Instant::now();
        let backend = if self.storage().leases().is_some() {
            let ttl = options.ttl.max(MIN_BACKEND_LEASE_TTL);
            Some(
                blocking_read(
                    self,
                    move |storage| Ok(backend_leases(storage)?.grant(ttl)?),
                )
                .await?,
            )
        } else {
            None
        };
        let outcome = self
            .execute(WriteOptions::durable(), move |tx| {
                record::grant(tx, &owned, holder, ttl_micros, backend)
            })
            .await;
        let record = match outcome {
            Ok((Grant::Granted(record), _)) => record,
            Ok((Grant::Held { expires_at, token }, _)) => {
                if let Some(lease) = backend {
                    revoke_quietly(self, lease).await;
                }
                return Ok(Err((expires_at, token)));
            }
            Err(error) => {
                if let Some(lease) = backend {
                    revoke_quietly(self, lease).await;
                }
                return Err(error);
            }
        };
        let state = Arc::new(State {
            key: key.to_owned(),
            holder,
            token: record.token,
            ttl: options.ttl,
            ttl_micros,
            trigger: Trigger::new(),
            renewed: Mutex::new(sent),
            backend,
            superseded_by: std::sync::atomic::AtomicU64::new(0),
        });
        self.inner.leases.granted(&state);
        let task = tokio::spawn(run_lease(self.clone(), state.clone(), options.auto_renew));
        Ok(Ok(Lease {
            store: self.clone(),
            state,
            task: Some(task),
            done: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(key: &str, token: u64) -> Arc<State> {
        Arc::new(State {
            key: key.to_owned(),
            holder: Uuid::new_v4(),
            token,
            ttl: Duration::from_secs(1),
            ttl_micros: 1_000_000,
            trigger: Trigger::new(),
            renewed: Mutex::new(Instant::now()),
            backend: None,
            superseded_by: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn superseded_by(state: &State) -> u64 {
        state
            .superseded_by
            .load(std::sync::atomic::Ordering::Acquire)
    }

    #[tokio::test]
    async fn a_newer_grant_makes_the_older_one_lost() {
        let registry = Registry::default();
        let (old, new) = (grant("k", 1), grant("k", 2));
        registry.granted(&old);
        registry.granted(&new);
        assert_eq!(old.trigger.signal().reason(), Some(LeaseEnd::Lost));
        assert_eq!(superseded_by(&old), 2);
        assert!(!new.trigger.signal().is_fired());
    }

    #[tokio::test]
    async fn an_older_grant_recorded_late_is_the_one_lost() {
        let registry = Registry::default();
        let (old, new, newest) = (grant("k", 1), grant("k", 2), grant("k", 3));
        registry.granted(&new);
        registry.granted(&old);
        assert_eq!(old.trigger.signal().reason(), Some(LeaseEnd::Lost));
        assert_eq!(superseded_by(&old), 2);
        assert!(!new.trigger.signal().is_fired());
        // The newest grant stays recorded, so the next one fences it.
        registry.granted(&newest);
        assert_eq!(superseded_by(&new), 3);
        assert_eq!(new.trigger.signal().reason(), Some(LeaseEnd::Lost));
    }

    #[tokio::test]
    async fn grants_of_other_keys_do_not_interfere() {
        let registry = Registry::default();
        let (a, b) = (grant("a", 1), grant("b", 2));
        registry.granted(&a);
        registry.granted(&b);
        assert!(!a.trigger.signal().is_fired());
        assert_eq!(superseded_by(&a), 0);
    }
}
