//! The in-memory backend, and the snapshot machinery it shares with
//! [`crate::CrashStorage`].

use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use imbl::OrdMap;

use crate::{
    Capabilities, Direction, Durability, Error, KeyRange, KeyValue, Op, Precondition, Result,
    ScanIter, ScanOptions, Storage, WriteBatch,
};

/// The persistent (structurally shared) map both in-crate backends keep their
/// data in. Cloning it is O(1), so a reader can take a snapshot under a lock
/// and walk it after releasing the lock.
pub(crate) type Map = OrdMap<Bytes, Bytes>;

/// An ephemeral [`Storage`] kept in memory.
///
/// Clones share the same data, like clones of an `Arc`. A scan takes an O(1)
/// snapshot of the map (structural sharing, [`imbl::OrdMap`]) and streams it
/// without holding any lock, so it sees exactly the batches committed before
/// it started. A write checks its preconditions and applies every operation
/// under one write lock, so readers see all of a batch or none of it.
///
/// [`Durability`] is ignored (nothing is ever on disk) and
/// [`Capabilities::persistent`] is false: the conformance suite skips the
/// reopen cases for it.
///
/// ```
/// use seq_storage::{Durability, MemoryStorage, Storage, WriteBatch};
///
/// # fn main() -> seq_storage::Result<()> {
/// let store = MemoryStorage::new();
/// let alias = store.clone();
/// let mut batch = WriteBatch::new();
/// batch.put(&b"k"[..], &b"v"[..]);
/// store.write(batch, Durability::Buffered)?;
/// assert_eq!(alias.get(b"k")?.as_deref(), Some(&b"v"[..]));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    map: Arc<RwLock<Map>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys currently stored.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> RwLockReadGuard<'_, Map> {
        // A panic while holding the lock cannot leave the map half-written:
        // every write checks first and then only applies infallible
        // operations, so the poison flag carries no information.
        self.map
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Map> {
        self.map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Storage for MemoryStorage {
    fn capabilities(&self) -> Capabilities {
        Capabilities::ephemeral()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.read().get(key).cloned())
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>> {
        let snapshot = self.read().clone();
        Ok(Box::new(SnapshotIter::new(snapshot, range, options)))
    }

    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<()> {
        let (preconditions, ops) = batch.into_parts();
        let mut map = self.write_lock();
        check_preconditions(&map, &preconditions)?;
        apply_ops(&mut map, &ops);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// Returns [`Error::Conflict`] naming the first precondition that does not
/// hold in `map`.
pub(crate) fn check_preconditions(map: &Map, preconditions: &[Precondition]) -> Result<()> {
    for precondition in preconditions {
        let key = precondition.key();
        if !precondition.holds(map.get(&key[..]).map(|v| &v[..])) {
            return Err(Error::Conflict { key: key.clone() });
        }
    }
    Ok(())
}

/// Applies `ops` in order. Infallible, so a batch whose preconditions held is
/// applied whole.
pub(crate) fn apply_ops(map: &mut Map, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put { key, value } => {
                map.insert(key.clone(), value.clone());
            }
            Op::Delete { key } => {
                map.remove(&key[..]);
            }
            Op::DeleteRange { start, end } => {
                if start >= end {
                    continue;
                }
                let doomed: Vec<Bytes> = map
                    .range::<_, [u8]>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    map.remove(&key[..]);
                }
            }
        }
    }
}

/// A streamed scan over an owned snapshot of a [`Map`].
///
/// It keeps the not-yet-visited part of the range as its cursor and looks up
/// the next entry with one O(log n) range query per step, so it needs no
/// borrow of the snapshot and never copies the range.
pub(crate) struct SnapshotIter {
    map: Map,
    remaining: KeyRange,
    direction: Direction,
    limit: Option<usize>,
    failing_keys: Vec<Bytes>,
    done: bool,
}

impl SnapshotIter {
    pub(crate) fn new(map: Map, range: KeyRange, options: ScanOptions) -> Self {
        Self {
            map,
            remaining: range,
            direction: options.direction,
            limit: options.limit,
            failing_keys: Vec::new(),
            done: false,
        }
    }

    /// Makes the iterator yield an injected I/O error instead of any entry
    /// whose key is in `keys` (used by [`crate::CrashStorage`]).
    pub(crate) fn failing_on(mut self, keys: Vec<Bytes>) -> Self {
        self.failing_keys = keys;
        self
    }
}

fn as_slice_bound(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(&k[..]),
        Bound::Excluded(k) => Bound::Excluded(&k[..]),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Iterator for SnapshotIter {
    type Item = Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.limit == Some(0) || self.remaining.is_empty() {
            self.done = true;
            return None;
        }
        let bounds = (
            as_slice_bound(&self.remaining.start),
            as_slice_bound(&self.remaining.end),
        );
        let mut entries = self.map.range::<_, [u8]>(bounds);
        let found = match self.direction {
            Direction::Forward => entries.next(),
            Direction::Reverse => entries.next_back(),
        };
        let Some((key, value)) = found.map(|(k, v)| (k.clone(), v.clone())) else {
            self.done = true;
            return None;
        };
        match self.direction {
            Direction::Forward => self.remaining.start = Bound::Excluded(key.clone()),
            Direction::Reverse => self.remaining.end = Bound::Excluded(key.clone()),
        }
        if let Some(limit) = &mut self.limit {
            *limit -= 1;
        }
        if self.failing_keys.contains(&key) {
            self.done = true;
            return Some(Err(crate::crash::injected(format!(
                "read of key {}",
                crate::error::show_key(&key)
            ))));
        }
        Some(Ok((key, value)))
    }
}
