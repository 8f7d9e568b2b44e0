//! Retention: trimming the oldest entries of a segment.
//!
//! A trim removes entries from the start of a segment through the writer,
//! in chunks of at most 4,096 entries per commit (so one trim never holds
//! the writer for long): each chunk deletes the entries' `DAT` records,
//! forgets their idempotency keys, moves the status's `first_sequence`, and
//! deletes the oldest space-index records whose runs are all trimmed now
//! ([`index::collect_garbage`]; readers skip trimmed entries the index
//! still names). The status keeps `last_sequence` and `last_timestamp`,
//! so the next produce continues above them even when everything was
//! trimmed (SPEC invariant 1).

use std::sync::Arc;

use bytes::Bytes;

use super::codec::{self, StoredStatus};
use super::idempotency;
use super::index;
use super::keys;
use super::status_record;
use super::types::{Trim, TrimReport};
use crate::error::{Error, Result};
use crate::options::WriteOptions;
use crate::store::Store;
use crate::writer::GroupTx;

/// Most entries one trim commit removes.
const TRIM_CHUNK: u64 = 4096;

/// Entries one trim commit removes on a backend that takes at most
/// `max_ops` operations per batch (etcd: 128 by default): forgetting an
/// entry's idempotency key is an operation of its own, and the status, the
/// entries' range and the index's range take a few more.
fn trim_chunk_for(max_ops: Option<usize>) -> u64 {
    match max_ops {
        Some(ops) => {
            u64::try_from(ops.saturating_sub(8)).map_or(TRIM_CHUNK, |n| n.clamp(1, TRIM_CHUNK))
        }
        None => TRIM_CHUNK,
    }
}

/// Most index records one trim commit examines for collection.
const INDEX_GARBAGE_RECORDS: usize = 1024;

impl Store {
    /// Removes the oldest entries of a segment as `trim` says and reports
    /// how many went. A trim that removes nothing (already trimmed that
    /// far, or the segment does not exist) is not an error. Large trims are
    /// committed in several durable steps of up to 4,096 entries (fewer on
    /// a backend with a small batch limit, such as etcd); if the call is
    /// interrupted, the steps already committed stay.
    ///
    /// Readers see each step atomically; a running consume skips the
    /// removed entries it had not reached.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an invalid name,
    /// [`Error::Corrupt`] when the status or an entry does not decode,
    /// [`Error::Storage`] / [`Error::Closed`] when a write fails.
    pub async fn trim(&self, space: &str, segment: &str, trim: Trim) -> Result<TrimReport> {
        seq_core::validate_name("space", space)?;
        seq_core::validate_name("segment", segment)?;
        let space: Arc<str> = space.into();
        let segment: Arc<str> = segment.into();
        let chunk = trim_chunk_for(self.storage().capabilities().max_batch_ops);
        let mut removed = 0;
        loop {
            let (sp, sg) = (space.clone(), segment.clone());
            let published = self.inner.streams.shared.publish_after(
                space.clone(),
                segment.clone(),
                |(_, removed, _): &(StoredStatus, u64, bool)| *removed > 0,
            );
            let ((status, n, more), _) = self
                .execute_after(
                    WriteOptions::default(),
                    false,
                    move |tx| trim_chunk(tx, &sp, &sg, trim, chunk),
                    Some(published),
                )
                .await?;
            removed += n;
            if !more {
                return Ok(TrimReport {
                    removed,
                    status: status.public(&space, &segment),
                });
            }
        }
    }
}

/// The entry's timestamp, as this request would see it.
fn timestamp_of(tx: &GroupTx<'_>, space: &str, segment: &str, seq: u64) -> Result<u64> {
    let key = keys::dat(space, segment, seq);
    match tx.get(&key)? {
        Some(value) => codec::entry_timestamp(&key, &value),
        None => Err(Error::corrupt_at(&key, "a retained entry is missing")),
    }
}

/// Removes one chunk; returns the new status, how many entries went and
/// whether more remain to reach the target.
fn trim_chunk(
    tx: &mut GroupTx<'_>,
    space: &str,
    segment: &str,
    trim: Trim,
    chunk: u64,
) -> Result<(StoredStatus, u64, bool)> {
    let status_record::Loaded { mut status, stored } = status_record::load(tx, space, segment)?;
    if stored == status_record::Stored::Absent {
        return Ok((status, 0, false));
    }
    let end_of_all = status.last.saturating_add(1);
    let target = match trim {
        Trim::BeforeSequence(n) => n,
        Trim::KeepLast(n) => end_of_all.saturating_sub(n),
        Trim::OlderThan(cutoff) => {
            // Timestamps never decrease within a segment: binary search for
            // the first entry at or after the cutoff.
            let (mut lo, mut hi) = (status.first, end_of_all);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if timestamp_of(tx, space, segment, mid)? < cutoff {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        }
    }
    .min(end_of_all);
    if target <= status.first {
        return Ok((status, 0, false));
    }
    let first = status.first;
    let end = target.min(first.saturating_add(chunk));

    let start_key = Bytes::from(keys::dat(space, segment, first));
    let end_key = Bytes::from(keys::dat(space, segment, end));
    tx.delete_range(start_key, end_key);
    idempotency::forget_through(tx, space, segment, &mut status, end - 1)?;
    status.first = end;
    status.first_ts = if end <= status.last {
        timestamp_of(tx, space, segment, end)?
    } else {
        0
    };
    status.commit = tx.commit;
    status_record::save(tx, space, segment, &status, stored, true);
    index::collect_garbage(tx, space, INDEX_GARBAGE_RECORDS)?;
    Ok((status, end - first, end < target))
}
