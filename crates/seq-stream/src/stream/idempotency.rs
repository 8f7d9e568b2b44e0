//! The idempotency window: which records of a produce were seen before.
//!
//! A keyed record writes two `IDM` records in its produce's batch: a lookup
//! (`"k"` + key → sequence) and a log entry (`"s"` + sequence → key) that
//! orders keys for forgetting. The segment status keeps `idem_floor`: keys
//! of sequences at or below it are forgotten (deleted, or ignored if a
//! deletion was missed), which happens once they fall
//! [`IDEMPOTENCY_WINDOW`] sequences behind the segment's last sequence, and
//! when retention trims their entries.

use std::collections::HashMap;

use bytes::Bytes;
use seq_storage::{KeyRange, ScanOptions};

use super::codec::{self, StoredStatus};
use super::keys;
use super::types::{IDEMPOTENCY_WINDOW, Record};
use crate::error::Result;
use crate::writer::GroupTx;

/// Keys are forgotten in steps of this many sequences.
const EVICT_STEP: u64 = 1024;

/// Most sequences one produce forgets keys for (the rest follow later).
const EVICT_MAX: u64 = 8 * EVICT_STEP;

/// What happens to one input record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Appended.
    New,
    /// Seen before: it has this sequence already.
    Seen(u64),
    /// Same key as the earlier input record at this index.
    SameAs(usize),
}

/// Decides, for each record, whether it is new or a retry.
pub(crate) fn resolve(
    tx: &GroupTx<'_>,
    space: &str,
    segment: &str,
    status: &StoredStatus,
    records: &[Record],
) -> Result<Vec<Slot>> {
    let mut first_with: HashMap<&str, usize> = HashMap::new();
    let mut slots = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let Some(key) = record.idempotency_key.as_deref() else {
            slots.push(Slot::New);
            continue;
        };
        if let Some(&earlier) = first_with.get(key) {
            slots.push(Slot::SameAs(earlier));
            continue;
        }
        first_with.insert(key, index);
        let lookup = keys::idm_key(space, segment, key);
        let seen = match tx.get(&lookup)? {
            Some(value) => {
                let seq = codec::decode_idm(&lookup, &value)?;
                (seq > status.idem_floor && seq >= status.first && seq <= status.last)
                    .then_some(seq)
            }
            None => None,
        };
        slots.push(seen.map_or(Slot::New, Slot::Seen));
    }
    Ok(slots)
}

/// Writes the idempotency records of an appended keyed record.
pub(crate) fn remember(tx: &mut GroupTx<'_>, space: &str, segment: &str, key: &str, seq: u64) {
    tx.put(keys::idm_key(space, segment, key), codec::encode_idm(seq));
    tx.put(
        keys::idm_log(space, segment, seq),
        codec::encode_idm_log(key),
    );
}

/// Forgets keys that fell out of the window after an append.
pub(crate) fn slide(
    tx: &mut GroupTx<'_>,
    space: &str,
    segment: &str,
    status: &mut StoredStatus,
) -> Result<()> {
    let Some(upto) = status.last.checked_sub(IDEMPOTENCY_WINDOW) else {
        return Ok(());
    };
    if upto < status.idem_floor.saturating_add(EVICT_STEP) {
        return Ok(());
    }
    forget_through(
        tx,
        space,
        segment,
        status,
        upto.min(status.idem_floor.saturating_add(EVICT_MAX)),
    )
}

/// Forgets the keys of every sequence up to `upto` (inclusive).
pub(crate) fn forget_through(
    tx: &mut GroupTx<'_>,
    space: &str,
    segment: &str,
    status: &mut StoredStatus,
    upto: u64,
) -> Result<()> {
    if upto <= status.idem_floor {
        return Ok(());
    }
    let start = Bytes::from(keys::idm_log(space, segment, status.idem_floor + 1));
    let end = Bytes::from(keys::idm_log(space, segment, upto.saturating_add(1)));
    let mut doomed = Vec::new();
    for item in tx.scan_committed(
        KeyRange::new(start.clone(), end.clone()),
        ScanOptions::forward(),
    )? {
        let (log_key, value) = item?;
        doomed.push(codec::decode_idm_log(&log_key, &value)?);
    }
    for key in doomed {
        tx.delete(keys::idm_key(space, segment, &key));
    }
    tx.delete_range(start, end);
    status.idem_floor = upto;
    Ok(())
}
