//! Streams: spaces of segments of dense, timestamped entries (the
//! Streamkit model, Store > Space > Segment > Entry).
//!
//! * [`produce`] — appends through the single writer (DAT entries, a run in
//!   the group's IDX index record, IDM idempotency records and, when it
//!   changes more than the tail, the INV status in the request's batch).
//! * [`status_record`] — how a segment's status is stored, read and
//!   completed from its newest entry.
//! * [`consume`] — paged, follow-capable reads of a segment, a space (merged
//!   through the IDX index) or several spaces (a k-way merge).
//! * [`read_ahead`] — the page reads behind a consume, which go on while
//!   their stream waits.
//! * [`status`] — peek, status, listings and lag counting.
//! * [`subscribe`] — status snapshots followed by live updates.
//! * [`index`] — the space-time index: one record of runs per commit group
//!   and space.
//! * [`retention`] — trims.
//! * [`idempotency`] — the dedupe window.
//!
//! # The visibility watermark
//!
//! The writer stamps commit groups with strictly increasing timestamps and
//! commits them in order, each as one atomic storage batch. Within a space
//! every entry of a later group therefore gets a larger timestamp (the
//! [`Registry`] clamps further against the space's stored maximum, which
//! covers a clock that stepped back across a restart), so the space index
//! (`IDX + space + ts`, one record per group, see [`index`]) only ever grows
//! at its end. A reader
//! scans storage snapshots, which hold whole groups only: whatever offset it
//! has passed, every entry committed later sorts after it. The end of the
//! index *is* the watermark, and no reader has to wait for in-flight commits.

pub(crate) mod codec;
pub(crate) mod consume;
pub(crate) mod idempotency;
pub(crate) mod index;
pub(crate) mod keys;
pub(crate) mod produce;
pub(crate) mod read;
pub(crate) mod read_ahead;
pub(crate) mod retention;
pub(crate) mod status;
pub(crate) mod status_record;
pub(crate) mod subscribe;
pub(crate) mod types;

#[doc(hidden)]
pub mod bench_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::writer::AfterCommit;

pub use consume::EntryStream;
pub use subscribe::Subscription;
pub use types::{
    DEFAULT_PAGE_SIZE, Entry, IDEMPOTENCY_WINDOW, MultiQuery, PAGE_BYTES, ProduceOptions,
    ProduceReceipt, Record, SegmentQuery, SegmentStatus, SpaceQuery, Trim, TrimReport, Trx,
};

/// Notifications a subscription can fall behind by before it rescans.
const CHANGE_CAPACITY: usize = 4096;

/// Per-store state of the stream layer, shared with the writer-thread
/// closures of produce and trim.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    pub(crate) shared: Arc<Shared>,
}

impl Default for Registry {
    fn default() -> Self {
        let (changes, _) = broadcast::channel(CHANGE_CAPACITY);
        Self {
            shared: Arc::new(Shared {
                clocks: Mutex::new(HashMap::new()),
                changes,
            }),
        }
    }
}

/// A segment changed (published on the writer thread, in commit order,
/// once the commit is applied; readers then read the status from storage).
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) space: Arc<str>,
    pub(crate) segment: Arc<str>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// Per space: the largest entry timestamp given out, and the group
    /// timestamp of the group that gave it out.
    clocks: Mutex<HashMap<String, SpaceClock>>,
    pub(crate) changes: broadcast::Sender<Change>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SpaceClock {
    max: u64,
    /// `tx.timestamp` of the group that set `max` (`None` after a load).
    by_group: Option<u64>,
}

impl Shared {
    fn clocks(&self) -> std::sync::MutexGuard<'_, HashMap<String, SpaceClock>> {
        self.clocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The timestamp for entries of `space` in the group stamped
    /// `group_ts`: the group's timestamp, raised above every timestamp an
    /// earlier group gave the space (equal to one this same group gave).
    /// `load` reads the space's stored maximum the first time. Call
    /// [`Shared::record`] once the request is accepted.
    pub(crate) fn space_timestamp(
        &self,
        space: &str,
        group_ts: u64,
        load: impl FnOnce() -> crate::Result<u64>,
    ) -> crate::Result<u64> {
        let known = self.clocks().get(space).copied();
        let clock = match known {
            Some(clock) => clock,
            None => SpaceClock {
                max: load()?,
                by_group: None,
            },
        };
        let floor = if clock.by_group == Some(group_ts) {
            clock.max
        } else if clock.max == 0 {
            0
        } else {
            clock.max.saturating_add(1)
        };
        Ok(group_ts.max(floor))
    }

    /// Records that the group stamped `group_ts` gave `space` entries at
    /// `ts`.
    pub(crate) fn record(&self, space: &str, group_ts: u64, ts: u64) {
        let mut clocks = self.clocks();
        let recorded = SpaceClock {
            max: ts,
            by_group: Some(group_ts),
        };
        // The space is almost always known: no key to allocate then.
        match clocks.get_mut(space) {
            Some(clock) if ts >= clock.max => *clock = recorded,
            Some(_) => {}
            None => {
                clocks.insert(space.to_owned(), recorded);
            }
        }
    }

    /// Tells subscriptions that `space`/`segment` changed in a commit that
    /// is applied. With nobody listening nothing is sent: a subscription
    /// made later reads its snapshot after the commit applied.
    fn publish(&self, space: Arc<str>, segment: Arc<str>) {
        if self.changes.receiver_count() == 0 {
            return;
        }
        let _ = self.changes.send(Change { space, segment });
    }

    /// The writer's after-commit work for a request that may change
    /// `space`/`segment`: once its group is applied, publishes the change
    /// if `changed` says its outcome made one. Run after the commit, not
    /// when the change is prepared, so a subscription never misses a change
    /// that was prepared before it listened and applied after it read its
    /// snapshot.
    pub(crate) fn publish_after<T: 'static>(
        self: &Arc<Self>,
        space: Arc<str>,
        segment: Arc<str>,
        changed: fn(&T) -> bool,
    ) -> AfterCommit<T> {
        let shared = self.clone();
        Box::new(move |outcome| {
            if changed(outcome) {
                shared.publish(space, segment);
            }
        })
    }
}
