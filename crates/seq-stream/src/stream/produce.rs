//! Produce: validated on the caller's task, appended on the writer thread in
//! the request's share of a commit group.

use std::sync::Arc;

use seq_core::{ExpectedSequence, KeyBuilder, keyspace};
use seq_storage::{KeyRange, ScanOptions};

use super::Shared;
use super::codec::{self, StoredStatus};
use super::idempotency::{self, Slot};
use super::index;
use super::keys;
use super::status_record;
use super::types::{ProduceOptions, ProduceReceipt, Record, SegmentStatus};
use crate::error::{Error, Result};
use crate::lease::Fence;
use crate::store::Store;
use crate::writer::GroupTx;

impl Store {
    /// Appends `records` to segment `segment` of space `space` (both created
    /// on first use) as one atomic batch and returns the segment's new
    /// status.
    ///
    /// Each record gets the next sequence (dense from 1), the commit group's
    /// timestamp (never below the segment's last one) and the TRX of this
    /// commit. A record whose idempotency key the segment has seen (see
    /// [`crate::IDEMPOTENCY_WINDOW`]) is not appended again; see
    /// [`Store::produce_receipt`] for the sequences and for mixed batches.
    /// With default [`ProduceOptions`] the call returns once the batch is
    /// durable.
    ///
    /// # Errors
    ///
    /// Nothing is written when any of these is returned:
    ///
    /// * [`Error::InvalidArgument`]: an invalid space, segment or
    ///   idempotency key name (empty, over 255 bytes, control characters),
    ///   an empty batch, or more than [`crate::StoreOptions::max_batch_records`]
    ///   records.
    /// * [`Error::TooLarge`]: a record's payload plus metadata exceeds
    ///   [`crate::StoreOptions::max_payload`], or the batch exceeds the
    ///   backend's value or batch limits.
    /// * [`Error::SequenceMismatch`]: a record's non-zero `sequence` is not
    ///   the segment's next (`expected` = next, `actual` = the record's), or
    ///   [`ProduceOptions::expected`] does not hold (`actual` = the last
    ///   sequence).
    /// * [`Error::Fenced`] (or the lease's error): the fencing token is stale.
    /// * [`Error::InvalidSeqnum`]: a caller-supplied commit number is not
    ///   above the current one.
    /// * [`Error::Exhausted`]: the segment reached sequence `u64::MAX`.
    /// * [`Error::Corrupt`]: the segment's stored status does not decode.
    /// * [`Error::Storage`] / [`Error::Closed`]: the write failed or the
    ///   store is closed.
    pub async fn produce(
        &self,
        space: &str,
        segment: &str,
        records: Vec<Record>,
        options: ProduceOptions,
    ) -> Result<SegmentStatus> {
        Ok(self
            .produce_receipt(space, segment, records, options)
            .await?
            .status)
    }

    /// Like [`Store::produce`], and also reports each record's sequence.
    ///
    /// Idempotency: every record with an idempotency key the segment has
    /// seen within its window is a *duplicate*: it is not appended and its
    /// [`ProduceReceipt::sequences`] slot is the sequence it got originally
    /// (its own `sequence` field is not checked). Repeating a key within one
    /// batch makes the later records duplicates of the first. When every
    /// record is a duplicate (a retried batch) nothing is appended,
    /// [`ProduceOptions::expected`] is not checked and the current status is
    /// returned. In a mixed batch the new records are appended in their
    /// input order with consecutive sequences, and both the expected check
    /// and each new record's `sequence` apply as if the duplicates were not
    /// in the batch.
    ///
    /// # Errors
    ///
    /// As [`Store::produce`].
    pub async fn produce_receipt(
        &self,
        space: &str,
        segment: &str,
        records: Vec<Record>,
        options: ProduceOptions,
    ) -> Result<ProduceReceipt> {
        self.validate_produce(space, segment, &records)?;
        let shared = self.inner.streams.shared.clone();
        let space_owned: Arc<str> = space.into();
        let segment_owned: Arc<str> = segment.into();
        let (space_c, segment_c) = (space_owned.clone(), segment_owned.clone());
        let ProduceOptions {
            write,
            fence,
            expected,
        } = options;
        let published = shared.publish_after(
            space_owned.clone(),
            segment_owned.clone(),
            |(_, _, appended): &(StoredStatus, Vec<u64>, usize)| *appended > 0,
        );
        let ((status, sequences, appended), committed) = self
            .execute_after(
                write,
                false,
                move |tx| {
                    append(
                        tx,
                        &shared,
                        &space_c,
                        &segment_c,
                        &records,
                        fence.as_ref(),
                        expected,
                    )
                },
                Some(published),
            )
            .await?;
        Ok(ProduceReceipt {
            status: status.public(&space_owned, &segment_owned),
            sequences,
            appended,
            commit: committed.commit,
        })
    }

    fn validate_produce(&self, space: &str, segment: &str, records: &[Record]) -> Result<()> {
        seq_core::validate_name("space", space)?;
        seq_core::validate_name("segment", segment)?;
        let options = self.options();
        if records.is_empty() {
            return Err(Error::invalid("a produce needs at least one record"));
        }
        if records.len() > options.max_batch_records {
            return Err(Error::invalid(format!(
                "a produce of {} records exceeds max_batch_records ({})",
                records.len(),
                options.max_batch_records
            )));
        }
        let capabilities = self.storage().capabilities();
        let mut batch_bytes = 0usize;
        for record in records {
            if let Some(key) = &record.idempotency_key {
                seq_core::validate_name("idempotency key", key)?;
            }
            let meta: usize = record.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
            let len = record.payload.len() + meta;
            if len > options.max_payload {
                return Err(Error::TooLarge {
                    what: "record payload and metadata".into(),
                    len,
                    limit: options.max_payload,
                });
            }
            // Entry header, key and the index/idempotency keys, roughly.
            let stored =
                len + 8 * record.metadata.len() + 128 + space.len() * 2 + segment.len() * 2;
            if let Some(limit) = capabilities.max_value_len
                && stored > limit
            {
                return Err(Error::TooLarge {
                    what: "stored entry".into(),
                    len: stored,
                    limit,
                });
            }
            batch_bytes += stored;
        }
        if let Some(limit) = capabilities.max_batch_bytes
            && batch_bytes > limit
        {
            return Err(Error::TooLarge {
                what: "produce batch".into(),
                len: batch_bytes,
                limit,
            });
        }
        Ok(())
    }
}

/// Builds one produce's writes on the writer thread; returns the new status,
/// each record's sequence and how many were appended.
fn append(
    tx: &mut GroupTx<'_>,
    shared: &Shared,
    space: &str,
    segment: &str,
    records: &[Record],
    fence: Option<&Fence>,
    expected: Option<ExpectedSequence>,
) -> Result<(StoredStatus, Vec<u64>, usize)> {
    if let Some(fence) = fence {
        crate::lease::check_fence(tx, fence)?;
    }
    let status_record::Loaded { mut status, stored } = status_record::load(tx, space, segment)?;
    let slots = idempotency::resolve(tx, space, segment, &status, records)?;
    let appended = slots.iter().filter(|slot| **slot == Slot::New).count();
    // Filled in input order (a `SameAs` slot points to an earlier one).
    // Not `vec![0; n]`: glibc's calloc skips its per-thread cache and takes
    // the allocator's slow path, on the writer thread for every produce.
    let mut sequences = Vec::with_capacity(records.len());
    if appended == 0 {
        for slot in &slots {
            let seq = match *slot {
                Slot::Seen(seq) => seq,
                Slot::SameAs(earlier) => sequences[earlier],
                Slot::New => 0,
            };
            sequences.push(seq);
        }
        return Ok((status, sequences, 0));
    }
    if let Some(expected) = expected {
        expected.check(status.last)?;
    }

    let ts = if tx.multi_writer() {
        shared_space_timestamp(tx, space)?
    } else {
        shared.space_timestamp(space, tx.timestamp, || load_space_max(tx, space))?
    }
    .max(status.last_ts);
    let was_empty = status.first > status.last;
    let first_new = status.last.saturating_add(1);
    let mut next = status.last;
    for (record, slot) in records.iter().zip(&slots) {
        let seq = match *slot {
            Slot::Seen(seq) => seq,
            Slot::SameAs(earlier) => sequences[earlier],
            Slot::New => {
                next = next.checked_add(1).ok_or_else(|| Error::Exhausted {
                    what: format!("segment {space:?}/{segment:?} reached sequence u64::MAX"),
                })?;
                let seq = seq_core::check_record_sequence(record.sequence, next)?;
                let value =
                    codec::encode_entry(ts, tx.commit, tx.node, &record.metadata, &record.payload)?;
                tx.put(keys::dat(space, segment, seq), value);
                if let Some(key) = &record.idempotency_key {
                    idempotency::remember(tx, space, segment, key, seq);
                }
                seq
            }
        };
        sequences.push(seq);
    }
    // The new records are consecutive: one run in the group's index record.
    tx.append(
        keys::idx(space, ts),
        index::INDEX_VERSION,
        &index::encode_run(segment, first_new, next),
        index::continue_run,
    );
    status.last = next;
    if was_empty {
        status.first_ts = ts;
    }
    status.last_ts = ts;
    status.commit = tx.commit;
    let floor = status.idem_floor;
    idempotency::slide(tx, space, segment, &mut status)?;
    // The newest entry tells the rest: the record is rewritten only for
    // what it cannot.
    let changed = was_empty || status.idem_floor != floor;
    status_record::save(tx, space, segment, &status, stored, changed);
    shared.record(space, tx.timestamp, ts);
    Ok((status, sequences, appended))
}

/// Multi-writer mode: the timestamp for this request's entries of `space`,
/// above every timestamp any writer gave the space. The space's clock
/// record is read pinned and rewritten, so produces to one space from
/// different writers commit in timestamp order (the visibility watermark
/// then holds across writers: an entry committed later sorts later).
fn shared_space_timestamp(tx: &mut GroupTx<'_>, space: &str) -> Result<u64> {
    let key = crate::meta::space_clock_key(space);
    let last = match tx.get(&key)? {
        Some(bytes) => crate::meta::decode_counter(&key, &bytes)?,
        // First produce in multi-writer mode: what single-writer produces
        // left behind (the clock's absence is pinned, so a racing first
        // produce elsewhere conflicts).
        None => load_space_max(tx, space)?,
    };
    let ts = tx.timestamp.max(last.saturating_add(1));
    tx.put(key, crate::meta::encode_counter(ts));
    Ok(ts)
}

/// The largest timestamp any segment of `space` has stored (committed
/// data: the callers ask before this group touched the space).
fn load_space_max(tx: &GroupTx<'_>, space: &str) -> Result<u64> {
    let prefix = KeyBuilder::new(keyspace::INV).str(space).build();
    let mut max = 0;
    let mut bounds = Vec::new();
    for item in tx.scan_committed(KeyRange::prefix(prefix), ScanOptions::forward())? {
        let (key, value) = item?;
        let (status, tail) = codec::decode_status_record(&key, &value)?;
        if tail == codec::Tail::Exact {
            max = max.max(status.last_ts);
        } else {
            bounds.push((keys::parse_inv(&key)?.1, status));
        }
    }
    for (segment, mut status) in bounds {
        status_record::complete_committed(tx, space, &segment, &mut status)?;
        max = max.max(status.last_ts);
    }
    Ok(max)
}
