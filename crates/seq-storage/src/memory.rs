//! The in-memory backend, and the snapshot machinery it shares with
//! [`crate::CrashStorage`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use imbl::OrdMap;

use crate::{
    Capabilities, Direction, Durability, Error, KeyRange, KeyValue, LeaseId, Leases, Op,
    Precondition, Result, ScanIter, ScanOptions, Storage, WriteBatch,
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
/// [`MemoryStorage::with_leases`] adds backend leases ([`Leases`]) kept on
/// this process's monotonic clock, so engines can exercise the code path
/// they use on etcd without a cluster.
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
    leases: Option<Arc<Mutex<LeaseTable>>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with backend leases: [`Storage::leases`] grants
    /// leases that lapse on this process's monotonic clock, and keys put with
    /// [`WriteBatch::put_leased`] vanish when their lease does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use seq_storage::{Durability, MemoryStorage, Storage, WriteBatch};
    ///
    /// # fn main() -> seq_storage::Result<()> {
    /// let store = MemoryStorage::with_leases();
    /// let leases = store.leases().expect("leases");
    /// let lease = leases.grant(Duration::from_secs(10))?;
    /// let mut batch = WriteBatch::new();
    /// batch.put_leased(&b"holder"[..], &b"me"[..], lease);
    /// store.write(batch, Durability::Sync)?;
    /// assert!(store.get(b"holder")?.is_some());
    /// leases.revoke(lease)?;
    /// assert!(store.get(b"holder")?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_leases() -> Self {
        Self {
            map: Arc::default(),
            leases: Some(Arc::default()),
        }
    }

    /// Number of keys currently stored.
    pub fn len(&self) -> usize {
        self.expire();
        self.read().len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.expire();
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
        write_map(&self.map)
    }

    /// The lease table, locked (before the map, always in that order).
    fn lease_table(&self) -> Option<MutexGuard<'_, LeaseTable>> {
        self.leases.as_ref().map(|table| {
            table
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
    }

    /// Deletes the keys of every lease past its deadline.
    fn expire(&self) {
        if let Some(mut table) = self.lease_table() {
            table.expire(&self.map, Instant::now());
        }
    }
}

impl Storage for MemoryStorage {
    fn capabilities(&self) -> Capabilities {
        let capabilities = Capabilities::ephemeral();
        if self.leases.is_some() {
            capabilities.with_leases()
        } else {
            capabilities
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.expire();
        Ok(self.read().get(key).cloned())
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>> {
        self.expire();
        let snapshot = self.read().clone();
        Ok(Box::new(SnapshotIter::new(snapshot, range, options)))
    }

    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<()> {
        crate::check_limits(&self.capabilities(), &batch)?;
        let (preconditions, ops) = batch.into_parts();
        let mut table = self.lease_table();
        if let Some(table) = table.as_mut() {
            table.expire(&self.map, Instant::now());
        }
        let mut map = self.write_lock();
        // Preconditions first, then leases: the order etcd reports them in.
        check_preconditions(&map, &preconditions)?;
        if let Some(table) = table.as_ref() {
            table.check_live(&ops)?;
        }
        apply_ops(&mut map, &ops);
        if let Some(table) = table.as_mut() {
            table.attach(&ops);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn leases(&self) -> Option<&dyn Leases> {
        self.leases.is_some().then_some(self as &dyn Leases)
    }
}

impl Leases for MemoryStorage {
    fn grant(&self, ttl: Duration) -> Result<LeaseId> {
        let mut table = self.lease_table().ok_or_else(no_leases)?;
        table.next_id += 1;
        let id = LeaseId(table.next_id);
        table.leases.insert(
            id,
            Lease {
                ttl,
                deadline: Instant::now() + ttl,
                keys: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    fn keep_alive(&self, lease: LeaseId) -> Result<Option<Duration>> {
        let mut table = self.lease_table().ok_or_else(no_leases)?;
        let now = Instant::now();
        table.expire(&self.map, now);
        Ok(table.leases.get_mut(&lease).map(|lease| {
            lease.deadline = now + lease.ttl;
            lease.ttl
        }))
    }

    fn revoke(&self, lease: LeaseId) -> Result<()> {
        let mut table = self.lease_table().ok_or_else(no_leases)?;
        table.drop_leases(&[lease], &self.map);
        Ok(())
    }
}

/// `map` locked for writing (see [`MemoryStorage::read`] on poisoning).
fn write_map(map: &RwLock<Map>) -> RwLockWriteGuard<'_, Map> {
    map.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn no_leases() -> Error {
    Error::Unsupported {
        what: "leases: this MemoryStorage was not made with MemoryStorage::with_leases".into(),
    }
}

/// The leases of a [`MemoryStorage::with_leases`] and the keys they hold.
#[derive(Debug, Default)]
struct LeaseTable {
    next_id: i64,
    leases: HashMap<LeaseId, Lease>,
    /// Which lease each leased key lives on.
    owner: BTreeMap<Bytes, LeaseId>,
}

#[derive(Debug)]
struct Lease {
    ttl: Duration,
    deadline: Instant,
    keys: BTreeSet<Bytes>,
}

impl LeaseTable {
    /// Drops every lease past its deadline at `now`, with its keys.
    fn expire(&mut self, map: &RwLock<Map>, now: Instant) {
        let expired: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        if !expired.is_empty() {
            self.drop_leases(&expired, map);
        }
    }

    /// Removes `ids` and deletes the keys still attached to them.
    fn drop_leases(&mut self, ids: &[LeaseId], map: &RwLock<Map>) {
        let mut map = write_map(map);
        for id in ids {
            let Some(lease) = self.leases.remove(id) else {
                continue;
            };
            for key in lease.keys {
                self.owner.remove(&key);
                map.remove(&key[..]);
            }
        }
    }

    /// [`Error::LeaseNotFound`] for the first leased put whose lease is gone.
    fn check_live(&self, ops: &[Op]) -> Result<()> {
        for op in ops {
            if let Op::PutLeased { lease, .. } = op
                && !self.leases.contains_key(lease)
            {
                return Err(Error::LeaseNotFound { lease: *lease });
            }
        }
        Ok(())
    }

    /// Records which keys `ops` (just applied) attached to or detached from
    /// a lease.
    fn attach(&mut self, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Put { key, .. } | Op::Delete { key } => self.detach(key),
                Op::PutLeased { key, lease, .. } => {
                    self.detach(key);
                    if let Some(entry) = self.leases.get_mut(lease) {
                        entry.keys.insert(key.clone());
                        self.owner.insert(key.clone(), *lease);
                    }
                }
                Op::DeleteRange { start, end } => {
                    if start >= end {
                        continue;
                    }
                    let doomed: Vec<Bytes> = self
                        .owner
                        .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                        .map(|(key, _)| key.clone())
                        .collect();
                    for key in doomed {
                        self.detach(&key);
                    }
                }
            }
        }
    }

    fn detach(&mut self, key: &Bytes) {
        if let Some(lease) = self.owner.remove(key)
            && let Some(entry) = self.leases.get_mut(&lease)
        {
            entry.keys.remove(key);
        }
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
            Op::Put { key, value } | Op::PutLeased { key, value, .. } => {
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
