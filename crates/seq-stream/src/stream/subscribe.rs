//! Status subscriptions: a snapshot, then live updates.
//!
//! Produce and trim publish "segment changed at commit `c`" on a broadcast
//! channel from the writer thread, in commit order, once commit `c` is
//! applied. A subscription listens *before* it reads its snapshot, so a
//! change is in the snapshot (applied before the read) or in the channel
//! (published after it listened), or both; one prepared before it listened
//! and applied after its read is published then, so none is missed. For each
//! change it reads the segment's status from storage and yields it unless
//! it has already yielded that status or a newer one (a status's version is
//! its last and first sequence: produces only raise the one, trims the
//! other). Reading the current status coalesces bursts: several changes of
//! one segment may come out as one update with the latest status.
//! A subscription that falls more than 4,096 changes behind rescans the
//! statuses it watches and yields those that changed.

use std::collections::{HashMap, VecDeque};

use tokio::sync::{broadcast, watch};

use super::Change;
use super::read::blocking;
use super::status::list_statuses;
use super::status_record;
use super::types::SegmentStatus;
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Subscribes to one segment: [`Subscription::snapshot`] holds its
    /// current status (the empty status if it was never produced to), and
    /// [`Subscription::next`] yields each later change (produce or trim).
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] for an invalid name,
    /// [`crate::Error::Corrupt`] or [`crate::Error::Storage`] when the
    /// snapshot read fails.
    pub async fn subscribe_segment(&self, space: &str, segment: &str) -> Result<Subscription> {
        seq_core::validate_name("space", space)?;
        seq_core::validate_name("segment", segment)?;
        let filter = Filter {
            space: Some(space.to_owned()),
            segment: Some(segment.to_owned()),
        };
        self.subscribe(filter).await
    }

    /// Subscribes to every segment of `space`, or of every space for
    /// `"*"`: [`Subscription::snapshot`] holds their current statuses and
    /// [`Subscription::next`] yields each later change, including segments
    /// created after the snapshot. (A space literally named `"*"` is only
    /// watched through the wildcard or [`Store::subscribe_segment`].)
    ///
    /// # Errors
    ///
    /// As [`Store::subscribe_segment`].
    pub async fn subscribe_space(&self, space: &str) -> Result<Subscription> {
        let space = if space == "*" {
            None
        } else {
            seq_core::validate_name("space", space)?;
            Some(space.to_owned())
        };
        self.subscribe(Filter {
            space,
            segment: None,
        })
        .await
    }

    async fn subscribe(&self, filter: Filter) -> Result<Subscription> {
        // Listen first, then read: a change after the read is in the channel.
        let changes = self.inner.streams.shared.changes.subscribe();
        let closing = self.watch_commits();
        let storage = self.storage().clone();
        let scan = filter.clone();
        let statuses = blocking(move || scan.read(&*storage)).await?;
        let known = statuses
            .iter()
            .map(|status| {
                (
                    (status.space.clone(), status.segment.clone()),
                    version(status),
                )
            })
            .collect();
        let polls = self.is_multi_writer().then(|| self.watch_changes());
        Ok(Subscription {
            snapshot: statuses,
            store: self.clone(),
            filter,
            changes,
            closing,
            polls,
            known,
            pending: VecDeque::new(),
        })
    }
}

#[derive(Debug, Clone)]
struct Filter {
    space: Option<String>,
    segment: Option<String>,
}

impl Filter {
    fn matches(&self, change: &Change) -> bool {
        self.space.as_deref().is_none_or(|s| s == &*change.space)
            && self
                .segment
                .as_deref()
                .is_none_or(|s| s == &*change.segment)
    }

    fn read(&self, storage: &dyn seq_storage::Storage) -> Result<Vec<SegmentStatus>> {
        match (&self.space, &self.segment) {
            (Some(space), Some(segment)) => {
                let stored = status_record::read(storage, space, segment)?;
                Ok(vec![stored.public(space, segment)])
            }
            (space, _) => list_statuses(storage, space.as_deref()),
        }
    }
}

/// Segment statuses: a snapshot taken when subscribing, then live updates.
///
/// Made by [`Store::subscribe_segment`] and [`Store::subscribe_space`].
/// Updates may coalesce (several changes of one segment yield its latest
/// status once); none is missed between the snapshot and the first update.
/// Dropping the subscription ends it.
pub struct Subscription {
    /// The matching statuses when the subscription was made.
    pub snapshot: Vec<SegmentStatus>,
    store: Store,
    filter: Filter,
    changes: broadcast::Receiver<Change>,
    closing: watch::Receiver<u64>,
    /// Multi-writer mode: ticks on which to rescan for other writers'
    /// changes (they publish nothing here).
    polls: Option<watch::Receiver<u64>>,
    /// The version of the last status yielded (or in the snapshot), per
    /// segment.
    known: HashMap<(String, String), (u64, u64)>,
    pending: VecDeque<SegmentStatus>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("space", &self.filter.space)
            .field("segment", &self.filter.segment)
            .field("snapshot", &self.snapshot.len())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Waits for the next changed status; `None` once the store is closed.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Corrupt`] or [`crate::Error::Storage`] when reading
    /// the changed status fails (the subscription can be polled again).
    pub async fn next(&mut self) -> Result<Option<SegmentStatus>> {
        loop {
            if let Some(status) = self.pending.pop_front() {
                return Ok(Some(status));
            }
            let received = tokio::select! {
                received = self.changes.recv() => received,
                () = closed(&mut self.closing) => return Ok(None),
                () = poll_tick(self.polls.as_mut()) => Err(broadcast::error::RecvError::Lagged(0)),
            };
            match received {
                Ok(change) => {
                    if !self.filter.matches(&change) {
                        continue;
                    }
                    let storage = self.store.storage().clone();
                    let (space, segment) = (change.space.to_string(), change.segment.to_string());
                    let status = blocking(move || {
                        Ok(status_record::read(&*storage, &space, &segment)?
                            .public(&space, &segment))
                    })
                    .await?;
                    if self.remember(&status) {
                        return Ok(Some(status));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let storage = self.store.storage().clone();
                    let scan = self.filter.clone();
                    for status in blocking(move || scan.read(&*storage)).await? {
                        if self.remember(&status) {
                            self.pending.push_back(status);
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            }
        }
    }

    /// Records that `status` is being yielded; false when it (or a newer
    /// one) was yielded already.
    fn remember(&mut self, status: &SegmentStatus) -> bool {
        let key = (status.space.clone(), status.segment.clone());
        let seen = version(status);
        match self.known.get(&key) {
            Some(&(last, first)) if seen.0 <= last && seen.1 <= first => false,
            _ => {
                self.known.insert(key, seen);
                true
            }
        }
    }
}

/// A status's version: produces only raise the last sequence and trims only
/// the first, so a status is newer exactly when one of them is higher (this
/// holds across writers, whose commit numbers are not comparable).
fn version(status: &SegmentStatus) -> (u64, u64) {
    (status.last_sequence, status.first_sequence)
}

/// Resolves at the next multi-writer poll tick; never without polls (or
/// once they stop).
async fn poll_tick(polls: Option<&mut watch::Receiver<u64>>) {
    if let Some(polls) = polls
        && polls.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// Resolves once the store's writer has stopped.
async fn closed(commits: &mut watch::Receiver<u64>) {
    while commits.changed().await.is_ok() {}
}
