//! The store's single writer: one thread that takes queued requests a group
//! at a time, gives each its commit number, lets it build its writes, commits
//! the whole group as one atomic storage batch with at most one sync, and only
//! then acknowledges each request, in order.

mod job;
mod tx;

pub use job::Committed;
pub(crate) use job::{Job, Request, job_fn};
pub(crate) use tx::{GroupTx, Overlay};

use std::sync::Arc;

use bytes::Bytes;
use seq_core::CommitOracle;
use seq_storage::{Durability, Storage};
use tokio::sync::watch;

use crate::error::Error;
use crate::handoff::Handoff;
use crate::meta;

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
    /// Set after a storage failure that leaves durability unknown; every
    /// later request fails with it until the store is reopened.
    pub(crate) failed: Option<String>,
}

impl Writer {
    /// Runs until the handoff is closed and drained.
    pub(crate) fn run(mut self, handoff: Arc<Handoff<Request>>) {
        while let Some(group) = handoff.next_group(self.max_group) {
            self.commit_group(group);
        }
        tracing::debug!("seq writer stopped");
    }

    /// Commits one group: number, prepare, one batch, then acknowledge.
    pub(crate) fn commit_group(&mut self, group: Vec<Request>) {
        if let Some(reason) = &self.failed {
            let error = Error::closed(format!(
                "an earlier storage failure left the store unwritable ({reason}); reopen it"
            ));
            for request in group {
                request.job.finish(Err(error.clone()));
            }
            return;
        }

        let timestamp = seq_core::next_group_timestamp(self.last_timestamp, now_micros());
        let mut overlay = Overlay::default();
        let mut accepted = Vec::with_capacity(group.len());
        let mut sync = false;
        let oracle_before = self.oracle.current();
        for mut request in group {
            let oracle_at_request = self.oracle;
            let commit = match self.oracle.assign(request.options.seqnum) {
                Ok(commit) => commit,
                Err(error) => {
                    request.job.finish(Err(error.into()));
                    continue;
                }
            };
            let mut tx = GroupTx::new(&*self.storage, &overlay, commit, timestamp, &self.node);
            match request.job.prepare(&mut tx) {
                Ok(()) => {
                    let own = tx.into_overlay();
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
        if accepted.is_empty() && self.oracle.current() == oracle_before {
            return;
        }

        // The oracle's high-water mark travels with the batch, so a reopen
        // never reissues a number that was handed out (consumed numbers
        // included).
        overlay.put_internal(
            Bytes::from(meta::commit_key()),
            meta::encode_commit(self.oracle.current()),
        );
        debug_assert!(!overlay.is_empty());
        let durability = if sync {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        match self.storage.write(overlay.into_batch(), durability) {
            Ok(()) => {
                self.last_timestamp = timestamp;
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
            }
            Err(storage_error) => {
                let poisons = !matches!(
                    storage_error,
                    seq_storage::Error::Conflict { .. } | seq_storage::Error::TooLarge { .. }
                );
                let error = Error::from(storage_error);
                if poisons {
                    tracing::error!(%error, "seq writer: storage failed; refusing writes until reopen");
                    self.failed = Some(error.to_string());
                }
                for (request, _) in accepted {
                    request.job.finish(Err(error.clone()));
                }
            }
        }
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
