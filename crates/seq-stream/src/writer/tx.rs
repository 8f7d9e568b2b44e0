//! The view a request gets while the writer prepares it: reads that see the
//! writes of earlier requests in the same group, and a private batch that
//! joins the group's batch only if the request is accepted.

use std::collections::BTreeMap;

use bytes::Bytes;
use seq_storage::{KeyRange, ScanIter, ScanOptions, Storage, WriteBatch};

use crate::error::Result;

/// Point writes and range deletes not yet committed, in a form reads can
/// consult.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    batch: WriteBatch,
    points: BTreeMap<Bytes, Option<Bytes>>,
    deleted_ranges: Vec<(Bytes, Bytes)>,
}

impl Overlay {
    /// `Some(value)` when this overlay decides the key: `Some(None)` for a
    /// deleted key, `None` when storage must be asked.
    fn lookup(&self, key: &[u8]) -> Option<Option<Bytes>> {
        if let Some(value) = self.points.get(key) {
            return Some(value.clone());
        }
        self.deleted_ranges
            .iter()
            .any(|(start, end)| key >= &start[..] && key < &end[..])
            .then_some(None)
    }

    fn put(&mut self, key: Bytes, value: Bytes) {
        self.batch.put(key.clone(), value.clone());
        self.points.insert(key, Some(value));
    }

    fn delete(&mut self, key: Bytes) {
        self.batch.delete(key.clone());
        self.points.insert(key, None);
    }

    fn delete_range(&mut self, start: Bytes, end: Bytes) {
        self.batch.delete_range(start.clone(), end.clone());
        self.forget_points_in(&start, &end);
        self.deleted_ranges.push((start, end));
    }

    /// Drops the point writes in `start..end`: a range delete overrides them.
    fn forget_points_in(&mut self, start: &Bytes, end: &Bytes) {
        if start >= end {
            return;
        }
        let doomed: Vec<Bytes> = self
            .points
            .range(start.clone()..end.clone())
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            self.points.remove(&key);
        }
    }

    /// Adds `later`'s writes after this overlay's own.
    pub(crate) fn absorb(&mut self, later: Overlay) {
        for (start, end) in &later.deleted_ranges {
            self.forget_points_in(start, end);
        }
        self.deleted_ranges.extend(later.deleted_ranges);
        self.points.extend(later.points);
        self.batch.extend(later.batch);
    }

    /// Adds a put made by the writer itself (not by a request).
    pub(crate) fn put_internal(&mut self, key: Bytes, value: Bytes) {
        self.put(key, value);
    }

    /// The batch to commit.
    pub(crate) fn into_batch(self) -> WriteBatch {
        self.batch
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

/// What a request sees and writes while the writer prepares it.
///
/// Reads through [`GroupTx::get`] see committed data plus the writes of the
/// requests accepted earlier in the same group, plus this request's own.
/// Scans ([`GroupTx::scan_committed`]) see committed data only.
pub(crate) struct GroupTx<'a> {
    storage: &'a dyn Storage,
    group: &'a Overlay,
    own: Overlay,
    /// The commit number given to this request.
    pub(crate) commit: u64,
    /// The timestamp of this commit group (µs since the epoch, strictly
    /// increasing per group across the store).
    pub(crate) timestamp: u64,
    /// This store's node name.
    pub(crate) node: &'a str,
}

impl<'a> GroupTx<'a> {
    pub(crate) fn new(
        storage: &'a dyn Storage,
        group: &'a Overlay,
        commit: u64,
        timestamp: u64,
        node: &'a str,
    ) -> Self {
        Self {
            storage,
            group,
            own: Overlay::default(),
            commit,
            timestamp,
            node,
        }
    }

    /// Reads `key` as this request would see it if it committed now.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        if let Some(value) = self.own.lookup(key) {
            return Ok(value);
        }
        if let Some(value) = self.group.lookup(key) {
            return Ok(value);
        }
        Ok(self.storage.get(key)?)
    }

    /// Scans committed data only (not this group's pending writes).
    pub(crate) fn scan_committed(
        &self,
        range: KeyRange,
        options: ScanOptions,
    ) -> Result<ScanIter<'a>> {
        Ok(self.storage.scan(range, options)?)
    }

    /// Sets `key`.
    pub(crate) fn put(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.own.put(key.into(), value.into());
    }

    /// Removes `key`.
    pub(crate) fn delete(&mut self, key: impl Into<Bytes>) {
        self.own.delete(key.into());
    }

    /// Removes every key in `start..end`.
    pub(crate) fn delete_range(&mut self, start: impl Into<Bytes>, end: impl Into<Bytes>) {
        self.own.delete_range(start.into(), end.into());
    }

    pub(crate) fn into_overlay(self) -> Overlay {
        self.own
    }
}
