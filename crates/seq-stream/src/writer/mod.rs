//! The store's single writer: one thread that takes queued requests a group
//! at a time, gives each its commit number, lets it build its writes, commits
//! the whole group as one atomic storage batch with at most one sync, and only
//! then acknowledges each request, in order.
//!
//! In single-writer mode the writer prepares a group while it gathers it
//! (see [`Pacing`]): it prepares the requests queued when it wakes, then
//! takes those that arrived meanwhile, a chunk at a time, until the group
//! is complete, so preparing overlaps the callers' way back. In
//! multi-writer mode it gathers the whole group first, since reserving
//! commit numbers needs the group's size.

mod job;
mod pacing;
mod tx;

pub use job::Committed;
pub(crate) use job::{AfterCommit, Job, Request, job_fn};
pub(crate) use pacing::Pacing;
pub(crate) use tx::{GroupTx, Overlay, ReadCache};

use std::sync::Arc;

use bytes::Bytes;
use seq_core::CommitOracle;
use seq_storage::{Durability, Storage};
use tokio::sync::watch;

use crate::error::Error;
use crate::handoff::{Gathering, Handoff};
use crate::meta;

/// Commit numbers a multi-writer store reserves at a time (one
/// compare-and-set on the oracle record per this many commits).
pub(crate) const ORACLE_BLOCK: u64 = 4096;

/// New arrivals that wake a writer preparing a group while it gathers: one
/// wake-up per this many requests rather than one per request.
const GATHER_CHUNK: usize = 8;

/// The longest pause between two attempts at a group that lost a race.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_millis(8);

/// What the writer owns. Only the writer thread touches it.
pub(crate) struct Writer {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) oracle: CommitOracle,
    pub(crate) last_timestamp: u64,
    pub(crate) node: String,
    pub(crate) max_group: usize,
    /// Highest commit number applied (visible to readers).
    pub(crate) applied: watch::Sender<u64>,
    /// Highest commit number known durable.
    pub(crate) durable: watch::Sender<u64>,
    /// Bumped after every applied group (see `Store::watch_changes`).
    pub(crate) changes: Arc<watch::Sender<u64>>,
    /// Set after a storage failure that leaves durability unknown; every
    /// later request fails with it until the store is reopened.
    pub(crate) failed: Option<String>,
    /// Values read and not changed since (see [`ReadCache`]).
    pub(crate) cache: std::cell::RefCell<ReadCache>,
    /// The backend's batch limits: a group that would exceed them is cut
    /// and its rest committed in the next batch.
    pub(crate) limits: seq_storage::Capabilities,
    /// Multi-writer mode: reads are pinned, conflicts retried, commit numbers
    /// reserved in blocks.
    pub(crate) multi: bool,
    /// Multi-writer mode: commit numbers up to here are reserved for this
    /// writer (the oracle record holds the store-wide reservation end).
    pub(crate) oracle_end: u64,
    /// Where requests arrive.
    pub(crate) handoff: Arc<Handoff<Request>>,
    /// Whether to hold the next group open for requests on their way.
    pub(crate) pacing: Pacing,
    /// Multi-writer mode: how long a group that keeps losing races is
    /// prepared again before it fails (see
    /// [`crate::StoreOptions::conflict_patience`]).
    pub(crate) conflict_patience: std::time::Duration,
}

/// How one attempt at a group ended.
enum Attempt {
    /// Every request was answered except these, which did not fit in the
    /// backend's batch limits: they form the next group.
    Done(Vec<Request>),
    /// Another writer changed something the group read (multi-writer mode):
    /// these requests must be prepared again.
    Lost(Vec<Request>, seq_storage::Error),
}

impl Writer {
    /// Runs until the handoff is closed and drained.
    pub(crate) fn run(mut self) {
        let handoff = self.handoff.clone();
        loop {
            let gather = self.pacing.gather();
            if self.multi {
                // A reservation of commit numbers needs the group's size
                // before anything is prepared: gather the whole group first.
                let Some(group) = handoff.next_group_gathering(self.max_group, gather) else {
                    break;
                };
                self.commit_group(group, None);
            } else {
                let Some((group, mut gathering)) =
                    handoff.start_group(self.max_group, gather, GATHER_CHUNK)
                else {
                    break;
                };
                self.commit_group(group, Some(&mut gathering));
            }
        }
        tracing::debug!("seq writer stopped");
    }

    /// Commits one group: number, prepare, one batch, then acknowledge. In
    /// multi-writer mode a group that loses a race is prepared again from
    /// fresh reads after a short randomised pause (see [`backoff`]), for up
    /// to `conflict_patience`, or until the store closes.
    ///
    /// With `gathering` (single-writer mode), the requests that arrive while
    /// the first ones are prepared join the group until it is complete.
    pub(crate) fn commit_group(
        &mut self,
        group: Vec<Request>,
        mut gathering: Option<&mut Gathering>,
    ) {
        let mut group = if self.multi {
            refuse_caller_seqnums(group)
        } else {
            group
        };
        let mut attempt = 1;
        let mut first_loss = None;
        loop {
            match self.attempt(group, gathering.take()) {
                Attempt::Done(rest) if rest.is_empty() => return,
                Attempt::Done(rest) => {
                    attempt = 1;
                    first_loss = None;
                    group = rest;
                }
                Attempt::Lost(rest, conflict) => {
                    let since = *first_loss.get_or_insert_with(std::time::Instant::now);
                    let starved = since.elapsed() >= self.conflict_patience;
                    if starved || self.handoff.is_closed() {
                        let error = if starved {
                            Error::Conflict {
                                what: format!(
                                    "lost {attempt} races in a row to other writers of the \
                                     shared storage over {:.1} s ({conflict}); nothing was \
                                     written, retry",
                                    since.elapsed().as_secs_f64()
                                ),
                            }
                        } else {
                            Error::closed(format!(
                                "the store closed while its write was retrying after \
                                 losing a race ({conflict}); nothing was written"
                            ))
                        };
                        for request in rest {
                            request.job.finish(Err(error.clone()));
                        }
                        return;
                    }
                    backoff(attempt);
                    attempt += 1;
                    group = rest;
                }
            }
        }
    }

    /// One try at committing `group`, and what `gathering` adds to it.
    fn attempt(&mut self, group: Vec<Request>, mut gathering: Option<&mut Gathering>) -> Attempt {
        if let Some(reason) = &self.failed {
            let error = Error::closed(format!(
                "an earlier storage failure left the store unwritable ({reason}); reopen it"
            ));
            for request in group {
                request.job.finish(Err(error.clone()));
            }
            return Attempt::Done(Vec::new());
        }
        let timestamp = seq_core::next_group_timestamp(self.last_timestamp, now_micros());
        let oracle_before = self.oracle;
        let mut overlay = Overlay::default();
        let reserved = if self.multi {
            match self.reserve(&mut overlay, group.len()) {
                Ok(reserved) => reserved,
                Err(error) => {
                    for request in group {
                        request.job.finish(Err(error.clone()));
                    }
                    return Attempt::Done(Vec::new());
                }
            }
        } else {
            None
        };
        let oracle_reserved = self.oracle;
        let mut accepted = Vec::with_capacity(group.len());
        // The backend leases each accepted request puts keys on.
        let mut leased = Vec::with_capacity(group.len());
        let mut deferred = Vec::new();
        let mut sync = false;
        let mut requests = group.into_iter();
        loop {
            let Some(mut request) = requests.next() else {
                // Everything taken is prepared: take what arrived meanwhile.
                let more = match gathering.as_deref_mut() {
                    Some(gathering) => self.handoff.more(gathering),
                    None => Vec::new(),
                };
                if more.is_empty() {
                    break;
                }
                requests = more.into_iter();
                continue;
            };
            let oracle_at_request = self.oracle;
            let commit = match self.oracle.assign(request.options.seqnum) {
                Ok(commit) => commit,
                Err(error) => {
                    request.job.finish(Err(error.into()));
                    continue;
                }
            };
            let mut tx = GroupTx::new(
                &*self.storage,
                &overlay,
                &self.cache,
                commit,
                timestamp,
                &self.node,
                self.multi,
            );
            match request.job.prepare(&mut tx) {
                Ok(()) => {
                    let own = tx.into_overlay();
                    if !accepted.is_empty() && !overlay.fits_with(&own, &self.limits) {
                        // Full: this request and the rest go in the next
                        // batch, prepared afresh; its number goes back.
                        self.oracle = oracle_at_request;
                        deferred.push(request);
                        deferred.extend(requests);
                        break;
                    }
                    leased.push(own.leases().to_vec());
                    overlay.absorb(own);
                    sync |= request.options.await_durable;
                    accepted.push((request, commit));
                }
                Err(error) => {
                    // A rejected request commits nothing: an assigned number
                    // goes back (it was the last one handed out). A number
                    // the caller supplied stays consumed (SPEC).
                    if request.options.seqnum == 0 {
                        self.oracle = oracle_at_request;
                    }
                    request.job.finish(Err(error));
                }
            }
        }
        if accepted.is_empty() && self.oracle.current() == oracle_reserved.current() {
            // Nothing to write; a reservation made for this group is not.
            self.oracle = oracle_before;
            self.pacing.idle();
            return Attempt::Done(deferred);
        }

        if !self.multi {
            // The oracle's high-water mark travels with the batch, so a
            // reopen never reissues a number that was handed out (consumed
            // numbers included). In multi-writer mode the reservation does.
            overlay.put_internal(
                Bytes::from(meta::commit_key()),
                meta::encode_counter(self.oracle.current()),
            );
        }
        let durability = if sync || reserved.is_some() {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        let (batch, cache_update) = overlay.into_parts();
        let write_started = std::time::Instant::now();
        let written = self.storage.write(batch, durability);
        if written.is_ok() {
            // Before the acknowledgements: what is queued now arrived while
            // the group committed, none of it from this group's callers.
            self.pacing
                .committed(accepted.len(), self.handoff.len(), write_started.elapsed());
        } else {
            self.pacing.idle();
        }
        match written {
            Ok(()) => {
                self.cache.get_mut().apply(cache_update);
                self.last_timestamp = timestamp;
                if let Some(end) = reserved {
                    self.oracle_end = end;
                }
                self.changes.send_modify(|n| *n = n.wrapping_add(1));
                let top = accepted.last().map(|(_, commit)| *commit);
                if let Some(top) = top {
                    self.applied.send_replace(top);
                    if sync {
                        self.durable.send_replace(top);
                    }
                }
                for (request, commit) in accepted {
                    request.job.finish(Ok(Committed {
                        commit,
                        timestamp,
                        durable: sync,
                    }));
                }
                Attempt::Done(deferred)
            }
            Err(lapsed @ seq_storage::Error::LeaseNotFound { lease })
                if leased.iter().any(|leases| leases.contains(&lease)) =>
            {
                // Nothing was written. Only the requests that put keys on
                // the lapsed lease fail; the others are prepared again.
                if self.multi {
                    self.oracle = oracle_before;
                }
                let error = Error::from(lapsed);
                let mut retry = Vec::with_capacity(accepted.len() + deferred.len());
                for ((request, _), leases) in accepted.into_iter().zip(leased) {
                    if leases.contains(&lease) {
                        request.job.finish(Err(error.clone()));
                    } else {
                        retry.push(request);
                    }
                }
                retry.extend(deferred);
                Attempt::Done(retry)
            }
            Err(conflict @ seq_storage::Error::Conflict { .. }) if self.multi => {
                self.oracle = oracle_before;
                self.cache.get_mut().clear();
                let retry = accepted.into_iter().map(|(request, _)| request);
                Attempt::Lost(retry.chain(deferred).collect(), conflict)
            }
            Err(storage_error) => {
                // Refusals: nothing was written.
                let refused = matches!(
                    storage_error,
                    seq_storage::Error::Conflict { .. }
                        | seq_storage::Error::TooLarge { .. }
                        | seq_storage::Error::LeaseNotFound { .. }
                        | seq_storage::Error::Unsupported { .. }
                );
                let error = Error::from(storage_error);
                if refused {
                    if self.multi {
                        self.oracle = oracle_before;
                    }
                } else if self.multi {
                    // The batch may or may not have landed (a cluster that
                    // lost its leader, a timeout). Nothing read is cached
                    // between groups in this mode, so the store carries on;
                    // the numbers this group used stay consumed and the rest
                    // of the reservation is dropped, so none is reused.
                    tracing::warn!(%error, "seq writer: a shared-storage write failed; its outcome is unknown");
                    self.oracle_end = self.oracle.current();
                    self.last_timestamp = timestamp;
                    self.cache.get_mut().clear();
                } else {
                    tracing::error!(%error, "seq writer: storage failed; refusing writes until reopen");
                    self.failed = Some(error.to_string());
                }
                for (request, _) in accepted {
                    request.job.finish(Err(error.clone()));
                }
                Attempt::Done(deferred)
            }
        }
    }

    /// Multi-writer mode: makes sure `n` commit numbers are reserved for this
    /// writer, reserving the next block of the store-wide oracle record in
    /// this group's batch (pinned, so two writers never reserve the same
    /// block). Returns the new reservation end when the batch carries one.
    fn reserve(&mut self, overlay: &mut Overlay, n: usize) -> Result<Option<u64>, Error> {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        if self.oracle.current().saturating_add(n) <= self.oracle_end {
            return Ok(None);
        }
        let key = Bytes::from(meta::commit_key());
        let stored = match overlay.read_internal(&*self.storage, &key, true)? {
            Some(bytes) => meta::decode_counter(&key, &bytes)?,
            None => 0,
        };
        let base = stored.max(self.oracle.current());
        let end = base.saturating_add(n.max(ORACLE_BLOCK));
        overlay.put_internal(key, meta::encode_counter(end));
        self.oracle = CommitOracle::new(base);
        Ok(Some(end))
    }
}

/// Multi-writer mode refuses caller-supplied commit numbers: "above the
/// store-wide maximum" has no meaning while other writers reserve numbers
/// concurrently. Fails those requests and returns the rest.
fn refuse_caller_seqnums(group: Vec<Request>) -> Vec<Request> {
    let mut rest = Vec::with_capacity(group.len());
    for request in group {
        if request.options.seqnum == 0 {
            rest.push(request);
        } else {
            let seqnum = request.options.seqnum;
            request.job.finish(Err(Error::invalid(format!(
                "a caller-supplied commit number ({seqnum}) needs a single-writer store; \
                 this store shares its storage with other writers"
            ))));
        }
    }
    rest
}

/// Pauses before attempt `attempt + 1`: a random time below 1 ms, then
/// below 2, 4 and at most [`MAX_BACKOFF`]. A loser competes with writers
/// that do not pause, so each attempt on a hot record has only a modest
/// chance however long it waited: the pause stays short so that the many
/// attempts starving would take fit in little time, and the randomness
/// lets competing writers drift apart.
fn backoff(attempt: u32) {
    let ceiling = (1_000u64 << attempt.saturating_sub(1).min(8))
        .min(u64::try_from(MAX_BACKOFF.as_micros()).unwrap_or(u64::MAX));
    std::thread::sleep(std::time::Duration::from_micros(random_u64() % ceiling));
}

/// A cheap random number (not for security): the standard library's
/// randomly keyed hasher.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_micros());
    hasher.finish()
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use seq_storage::{Leases, MemoryStorage, Storage};

    use crate::error::Error;
    use crate::options::WriteOptions;
    use crate::store::Store;
    use crate::stream::Record;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_on_a_lapsed_backend_lease_fails_alone_in_its_group() {
        let storage = MemoryStorage::with_leases();
        let store = Store::open(storage.clone()).unwrap();
        let leases: &dyn Leases = storage.leases().unwrap();
        let lapsed = leases.grant(Duration::from_secs(60)).unwrap();
        leases.revoke(lapsed).unwrap();

        // Many produces and one write on the lapsed lease, queued together
        // so that they share commit groups.
        let produces = (0..32).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .produce(
                        "s",
                        &format!("g{i}"),
                        vec![Record::new("x")],
                        Default::default(),
                    )
                    .await
            })
        });
        let produces: Vec<_> = produces.collect();
        let leased = store.execute(WriteOptions::durable(), move |tx| {
            tx.put_leased(&b"LSHdoomed"[..], &b"v"[..], lapsed);
            Ok(())
        });
        let outcome = leased.await;
        assert!(
            matches!(
                outcome,
                Err(Error::Storage { ref source })
                    if matches!(**source, seq_storage::Error::LeaseNotFound { lease } if lease == lapsed)
            ),
            "{outcome:?}"
        );
        for produce in produces {
            produce.await.unwrap().unwrap();
        }
        assert_eq!(storage.get(b"LSHdoomed").unwrap(), None);
        assert_eq!(store.list_segments("s").await.unwrap().len(), 32);
    }
}
