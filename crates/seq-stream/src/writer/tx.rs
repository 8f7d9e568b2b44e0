//! The view a request gets while the writer prepares it: reads that see the
//! writes of earlier requests in the same group, and a private batch that
//! joins the group's batch only if the request is accepted.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use seq_storage::{KeyRange, LeaseId, ScanIter, ScanOptions, Storage, WriteBatch};

use crate::error::Result;

/// Room left in a batch for the writer's own commit record.
const COMMIT_RECORD_ALLOWANCE: usize = 64;

/// Room for a group record's key and frame.
const APPEND_ALLOWANCE: usize = 128;

/// Point writes and range deletes not yet committed, in a form reads can
/// consult.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    batch: WriteBatch,
    /// The value each key put or deleted here now has (hashed: a group's
    /// reads and the read cache's update only look keys up one by one).
    points: HashMap<Bytes, Option<Bytes>>,
    deleted_ranges: Vec<(Bytes, Bytes)>,
    /// Keys whose stored value a precondition in `batch` pins (multi-writer
    /// mode only).
    guarded: HashSet<Bytes>,
    /// The backend leases `batch` puts keys on.
    leases: Vec<LeaseId>,
    /// Group records: per key, the parts accepted requests appended,
    /// framed into one put by [`Overlay::seal`].
    appends: BTreeMap<Bytes, Appended>,
    /// Bytes in `appends`.
    append_bytes: usize,
}

/// How a group record's parts continue one another: folds `next` into
/// `last`, the part appended before it, in place, when `next` continues it
/// (and says so); otherwise leaves `last` alone.
pub(crate) type Fold = fn(last: &mut [u8], next: &[u8]) -> bool;

/// A group record being built.
#[derive(Debug)]
struct Appended {
    version: u8,
    body: Vec<u8>,
    /// Where the last part starts in `body`.
    last: usize,
    fold: Fold,
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

    /// Writes `stored` to storage while reads through this overlay (and,
    /// once committed, the read cache) see `view`.
    fn put_seen_as(&mut self, key: Bytes, stored: Bytes, view: Bytes) {
        self.batch.put(key.clone(), stored);
        self.points.insert(key, Some(view));
    }

    /// Changes what reads through this overlay (and, once committed, the
    /// read cache) see at `key`, writing nothing to storage.
    fn see_as(&mut self, key: Bytes, view: Bytes) {
        self.points.insert(key, Some(view));
    }

    fn put_leased(&mut self, key: Bytes, value: Bytes, lease: LeaseId) {
        self.batch.put_leased(key.clone(), value.clone(), lease);
        self.points.insert(key, Some(value));
        if !self.leases.contains(&lease) {
            self.leases.push(lease);
        }
    }

    fn append(&mut self, key: Bytes, version: u8, part: &[u8], fold: Fold) {
        self.append_parts(key, version, part, 0, fold);
    }

    /// Appends `parts`, back to back, the last of them starting at `last`.
    /// Only a single part (`last == 0`) may fold into the part before it.
    fn append_parts(&mut self, key: Bytes, version: u8, parts: &[u8], last: usize, fold: Fold) {
        let record = self.appends.entry(key).or_insert_with(|| Appended {
            version,
            body: Vec::new(),
            last: 0,
            fold,
        });
        if last == 0
            && !record.body.is_empty()
            && (record.fold)(&mut record.body[record.last..], parts)
        {
            return;
        }
        record.last = record.body.len() + last;
        record.body.extend_from_slice(parts);
        self.append_bytes += parts.len();
    }

    /// Turns the group records into puts, each framed with its version.
    fn seal(&mut self) {
        for (key, record) in std::mem::take(&mut self.appends) {
            let framed = seq_core::frame::encode(record.version, &record.body);
            self.put(key, Bytes::from(framed));
        }
        self.append_bytes = 0;
    }

    /// The backend leases this overlay puts keys on.
    pub(crate) fn leases(&self) -> &[LeaseId] {
        &self.leases
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
        self.points.retain(|key, _| !(key >= start && key < end));
    }

    /// Pins `key` to the value a read found in storage, so the batch fails
    /// with a conflict if another writer changed it in the meantime. The
    /// first read of a key in a group pins it; later reads see the same
    /// value or the batch fails anyway.
    fn guard(&mut self, key: &[u8], found: Option<&Bytes>) {
        if self.guarded.contains(key) {
            return;
        }
        let key = Bytes::copy_from_slice(key);
        match found {
            Some(value) => self.batch.require_equals(key.clone(), value.clone()),
            None => self.batch.require_absent(key.clone()),
        };
        self.guarded.insert(key);
    }

    /// Whether this overlay plus `later` (plus one write of the writer's
    /// own, its commit record) stays within the backend's batch limits.
    pub(crate) fn fits_with(&self, later: &Overlay, limits: &seq_storage::Capabilities) -> bool {
        let ops_ok = limits.max_batch_ops.is_none_or(|limit| {
            let ops =
                self.batch.len() + later.batch.len() + self.appends.len() + later.appends.len() + 1;
            let checks = self.batch.preconditions().len() + later.batch.preconditions().len() + 1;
            ops.max(checks) <= limit
        });
        let bytes_ok = limits.max_batch_bytes.is_none_or(|limit| {
            let appends = self.append_bytes + later.append_bytes;
            let framing = (self.appends.len() + later.appends.len()) * APPEND_ALLOWANCE;
            self.batch.byte_len()
                + later.batch.byte_len()
                + appends
                + framing
                + COMMIT_RECORD_ALLOWANCE
                <= limit
        });
        ops_ok && bytes_ok
    }

    /// Adds `later`'s writes after this overlay's own.
    pub(crate) fn absorb(&mut self, later: Overlay) {
        for (start, end) in &later.deleted_ranges {
            self.forget_points_in(start, end);
        }
        self.deleted_ranges.extend(later.deleted_ranges);
        self.points.extend(later.points);
        self.guarded.extend(later.guarded);
        self.leases.extend(later.leases);
        self.batch.extend(later.batch);
        for (key, record) in later.appends {
            self.append_parts(key, record.version, &record.body, record.last, record.fold);
        }
    }

    /// Reads `key` from storage for the writer itself, pinning the value
    /// when `pin` is set (multi-writer mode).
    pub(crate) fn read_internal(
        &mut self,
        storage: &dyn Storage,
        key: &[u8],
        pin: bool,
    ) -> Result<Option<Bytes>> {
        if let Some(value) = self.lookup(key) {
            return Ok(value);
        }
        let found = storage.get(key)?;
        if pin {
            self.guard(key, found.as_ref());
        }
        Ok(found)
    }

    /// Adds a put made by the writer itself (not by a request).
    pub(crate) fn put_internal(&mut self, key: Bytes, value: Bytes) {
        self.put(key, value);
    }

    /// The batch to commit, and what it will change for the read cache.
    /// A record several requests of the group rewrote (a segment's status,
    /// a sequence-key counter) is written once, with its last value.
    pub(crate) fn into_parts(mut self) -> (WriteBatch, CacheUpdate) {
        self.seal();
        self.batch.drop_overridden();
        let update = CacheUpdate {
            points: self.points,
            deleted_ranges: self.deleted_ranges,
        };
        (self.batch, update)
    }
}

/// Entries the read cache holds at most; past it, it starts over.
const READ_CACHE_ENTRIES: usize = 16_384;

/// What the writer has read from storage and not changed since, so a
/// request reading the same key again (a segment's status, a space's clock,
/// a sequence's block record) needs no storage read. Keys enter only by
/// being read; a committed batch updates the ones present (a hash map: a
/// commit looks up each key it wrote, and only a range delete, a trim,
/// walks the whole cache).
///
/// In multi-writer mode another writer may have changed a cached key: a
/// value served from here is pinned like any other read, so the batch then
/// fails with a conflict, and the writer clears the cache before preparing
/// the group again.
#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    entries: HashMap<Bytes, Option<Bytes>>,
}

impl ReadCache {
    fn get(&self, key: &[u8]) -> Option<Option<Bytes>> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: &[u8], value: Option<Bytes>) {
        if self.entries.len() >= READ_CACHE_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(Bytes::copy_from_slice(key), value);
    }

    /// Applies a committed batch's writes to the keys present.
    pub(crate) fn apply(&mut self, update: CacheUpdate) {
        for (start, end) in update.deleted_ranges {
            if start < end {
                for (key, value) in &mut self.entries {
                    if key >= &start && key < &end {
                        *value = None;
                    }
                }
            }
        }
        for (key, value) in update.points {
            if let Some(slot) = self.entries.get_mut(&key) {
                *slot = value;
            }
        }
    }

    /// Forgets everything (after a conflict or a write of unknown outcome).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A batch's effect on the read cache, applied once it committed.
#[derive(Debug)]
pub(crate) struct CacheUpdate {
    points: HashMap<Bytes, Option<Bytes>>,
    deleted_ranges: Vec<(Bytes, Bytes)>,
}

/// What a request sees and writes while the writer prepares it.
///
/// Reads through [`GroupTx::get`] see committed data plus the writes of the
/// requests accepted earlier in the same group, plus this request's own.
/// Scans ([`GroupTx::scan_committed`]) see committed data only.
///
/// In multi-writer mode every value `get` reads from storage is pinned by a
/// precondition in the batch (optimistic concurrency: the group commits only
/// if nothing it read has changed, else the writer prepares it again).
/// Scans are not pinned: what they read must be guarded by a key that is
/// (a segment's entries by its status record, for example).
pub(crate) struct GroupTx<'a> {
    storage: &'a dyn Storage,
    group: &'a Overlay,
    own: Overlay,
    cache: &'a RefCell<ReadCache>,
    /// Multi-writer mode: pin what `get` reads.
    pin_reads: bool,
    /// Preconditions for the values `get` read from storage.
    reads: RefCell<Overlay>,
    /// The commit number given to this request.
    pub(crate) commit: u64,
    /// The timestamp of this commit group (µs since the epoch, strictly
    /// increasing per group across the store).
    pub(crate) timestamp: u64,
    /// This store's node name.
    pub(crate) node: &'a str,
}

impl<'a> GroupTx<'a> {
    #[allow(clippy::too_many_arguments)] // All of it is the request's view.
    pub(crate) fn new(
        storage: &'a dyn Storage,
        group: &'a Overlay,
        cache: &'a RefCell<ReadCache>,
        commit: u64,
        timestamp: u64,
        node: &'a str,
        pin_reads: bool,
    ) -> Self {
        Self {
            storage,
            group,
            own: Overlay::default(),
            cache,
            pin_reads,
            reads: RefCell::new(Overlay::default()),
            commit,
            timestamp,
            node,
        }
    }

    /// Reads `key` as this request would see it if it committed now.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.get_with(key, true, self.pin_reads)
    }

    /// Like [`GroupTx::get`], but always from storage, bypassing the read
    /// cache: for keys the backend changes by itself (a key on a backend
    /// lease vanishes when the lease lapses).
    pub(crate) fn get_uncached(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.get_with(key, false, self.pin_reads)
    }

    /// Like [`GroupTx::get`], but never pinned in multi-writer mode: for a
    /// value that only moves one way, where acting on a stale read errs on
    /// the safe side (a segment's first sequence, for index collection).
    pub(crate) fn get_unpinned(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.get_with(key, true, false)
    }

    fn get_with(&self, key: &[u8], use_cache: bool, pin: bool) -> Result<Option<Bytes>> {
        if let Some(value) = self.own.lookup(key) {
            return Ok(value);
        }
        if let Some(value) = self.group.lookup(key) {
            return Ok(value);
        }
        let cached = if use_cache {
            self.cache.borrow().get(key)
        } else {
            None
        };
        let found = match cached {
            Some(value) => value,
            None => {
                let value = self.storage.get(key)?;
                if use_cache {
                    self.cache.borrow_mut().insert(key, value.clone());
                }
                value
            }
        };
        if pin && !self.group.guarded.contains(key) {
            self.reads.borrow_mut().guard(key, found.as_ref());
        }
        Ok(found)
    }

    /// Whether this store shares its storage with other writers (reads are
    /// pinned; in-memory caches of stored state must not be trusted).
    pub(crate) fn multi_writer(&self) -> bool {
        self.pin_reads
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

    /// Writes `stored` at `key`, while this group's later reads and the
    /// writer's read cache see `view` instead: for a record whose stored
    /// form is a bound the writer knows more precisely (a segment's
    /// status, see [`crate::stream::status_record`]). Single-writer mode
    /// only: in multi-writer mode other writers read the stored form.
    pub(crate) fn put_seen_as(
        &mut self,
        key: impl Into<Bytes>,
        stored: impl Into<Bytes>,
        view: impl Into<Bytes>,
    ) {
        debug_assert!(!self.pin_reads, "a view the other writers cannot see");
        self.own.put_seen_as(key.into(), stored.into(), view.into());
    }

    /// Like [`GroupTx::put_seen_as`], writing nothing to storage: only the
    /// writer's view of `key` changes.
    pub(crate) fn see_as(&mut self, key: impl Into<Bytes>, view: impl Into<Bytes>) {
        debug_assert!(!self.pin_reads, "a view the other writers cannot see");
        self.own.see_as(key.into(), view.into());
    }

    /// Sets `key` on backend lease `lease` (see [`seq_storage::Leases`]);
    /// read it back with [`GroupTx::get_uncached`].
    pub(crate) fn put_leased(
        &mut self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        lease: LeaseId,
    ) {
        self.own.put_leased(key.into(), value.into(), lease);
    }

    /// Appends `part` to the group record at `key`: the record the group
    /// commits holds the parts of every accepted request, in order, framed
    /// once with `version` ([`seq_core::frame`]); a part that `fold` finds
    /// continuing the one before it is folded into that one instead. Only
    /// for keys no other group writes (the space index, keyed by a
    /// timestamp of this group); the record cannot be read back before it
    /// commits.
    pub(crate) fn append(&mut self, key: impl Into<Bytes>, version: u8, part: &[u8], fold: Fold) {
        self.own.append(key.into(), version, part, fold);
    }

    /// Removes `key`.
    pub(crate) fn delete(&mut self, key: impl Into<Bytes>) {
        self.own.delete(key.into());
    }

    /// Removes every key in `start..end`.
    pub(crate) fn delete_range(&mut self, start: impl Into<Bytes>, end: impl Into<Bytes>) {
        self.own.delete_range(start.into(), end.into());
    }

    /// This request's writes, preceded by the preconditions of its reads.
    pub(crate) fn into_overlay(self) -> Overlay {
        let mut out = self.reads.into_inner();
        if out.guarded.is_empty() {
            // Nothing pinned (always so in single-writer mode).
            return self.own;
        }
        out.absorb(self.own);
        out
    }
}

#[cfg(test)]
mod tests {
    use seq_storage::{MemoryStorage, Storage};

    use super::*;

    fn bytes(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn a_committed_range_delete_empties_the_cached_keys_inside_it_only() {
        let mut cache = ReadCache::default();
        for key in ["a", "b", "c", "d"] {
            cache.insert(key.as_bytes(), Some(bytes(key)));
        }
        let mut overlay = Overlay::default();
        overlay.put(bytes("d"), bytes("new d"));
        overlay.delete_range(bytes("b"), bytes("d"));
        let (_, update) = overlay.into_parts();
        cache.apply(update);
        assert_eq!(cache.get(b"a"), Some(Some(bytes("a"))));
        assert_eq!(cache.get(b"b"), Some(None));
        assert_eq!(cache.get(b"c"), Some(None));
        assert_eq!(cache.get(b"d"), Some(Some(bytes("new d"))));
        assert_eq!(cache.get(b"e"), None, "a key never read is not cached");
    }

    #[test]
    fn a_range_delete_hides_the_earlier_puts_of_its_group_in_it() {
        let mut group = Overlay::default();
        group.put(bytes("k1"), bytes("v1"));
        group.put(bytes("k5"), bytes("v5"));
        let mut later = Overlay::default();
        later.delete_range(bytes("k0"), bytes("k2"));
        group.absorb(later);
        assert_eq!(group.lookup(b"k1"), Some(None));
        assert_eq!(group.lookup(b"k5"), Some(Some(bytes("v5"))));
        assert_eq!(group.lookup(b"k9"), None);
    }

    #[test]
    fn an_unpinned_request_reads_its_group_and_hands_over_its_own_writes() {
        let storage = MemoryStorage::new();
        let mut batch = WriteBatch::new();
        batch.put(&b"stored"[..], &b"s"[..]);
        storage.write(batch, seq_storage::Durability::Sync).unwrap();
        let mut group = Overlay::default();
        group.put(bytes("earlier"), bytes("e"));
        let cache = RefCell::new(ReadCache::default());
        let mut tx = GroupTx::new(&storage, &group, &cache, 7, 1, "n", false);
        assert_eq!(tx.get(b"earlier").unwrap(), Some(bytes("e")));
        assert_eq!(tx.get(b"stored").unwrap(), Some(bytes("s")));
        tx.put(bytes("mine"), bytes("m"));
        assert_eq!(tx.get(b"mine").unwrap(), Some(bytes("m")));
        let own = tx.into_overlay();
        assert!(own.batch.preconditions().is_empty());
        assert_eq!(own.batch.len(), 1);
        group.absorb(own);
        assert_eq!(group.lookup(b"mine"), Some(Some(bytes("m"))));
        assert_eq!(cache.borrow().get(b"stored"), Some(Some(bytes("s"))));
    }

    #[test]
    fn requests_whose_appended_parts_continue_each_other_leave_one_part() {
        use crate::stream::index::{INDEX_VERSION, continue_run, decode, encode_run};

        let storage = MemoryStorage::new();
        let cache = RefCell::new(ReadCache::default());
        let mut group = Overlay::default();
        for (segment, first, last) in [("g", 1, 1), ("g", 2, 3), ("h", 1, 1), ("g", 4, 4)] {
            let mut tx = GroupTx::new(&storage, &group, &cache, 1, 1, "n", false);
            let part = encode_run(segment, first, last);
            tx.append(bytes("idx"), INDEX_VERSION, &part, continue_run);
            let own = tx.into_overlay();
            group.absorb(own);
        }
        let (batch, _) = group.into_parts();
        let [seq_storage::Op::Put { key, value }] = batch.ops() else {
            panic!("one record: {:?}", batch.ops());
        };
        let decoded = decode(key, value).unwrap();
        let runs: Vec<(&str, u64, u64)> = decoded
            .iter()
            .map(|run| (run.segment_str(), run.first, run.last))
            .collect();
        // The last "g" run follows "h": it starts a part of its own.
        assert_eq!(runs, [("g", 1, 3), ("g", 4, 4), ("h", 1, 1)]);
    }

    #[test]
    fn a_pinned_request_hands_over_its_reads_before_its_writes() {
        let storage = MemoryStorage::new();
        let group = Overlay::default();
        let cache = RefCell::new(ReadCache::default());
        let mut tx = GroupTx::new(&storage, &group, &cache, 7, 1, "n", true);
        assert_eq!(tx.get(b"absent").unwrap(), None);
        tx.put(bytes("absent"), bytes("now"));
        let own = tx.into_overlay();
        assert_eq!(own.batch.preconditions().len(), 1);
        assert!(own.guarded.contains(&b"absent"[..]));
        assert_eq!(own.lookup(b"absent"), Some(Some(bytes("now"))));
    }
}
