//! Blocking page reads from storage snapshots. Each function reads at most a
//! page; the async callers run them on `spawn_blocking`.

use std::collections::{HashMap, VecDeque};
use std::ops::Bound;

use bytes::Bytes;
use seq_core::SpaceOffset;
use seq_storage::{KeyRange, ScanOptions, Storage};
use uuid::Uuid;

use super::codec::{self, StoredStatus};
use super::keys;
use super::types::Entry;
use crate::error::{Error, Result};

/// Runs a blocking storage read off the async executor.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(Error::closed(format!(
            "a storage read was cancelled: {join}"
        ))),
    }
}

/// Reads a segment's stored status (the never-written status when absent).
pub(crate) fn read_status(
    storage: &dyn Storage,
    space: &str,
    segment: &str,
) -> Result<StoredStatus> {
    let key = keys::inv(space, segment);
    match storage.get(&key)? {
        Some(value) => codec::decode_status(&key, &value),
        None => Ok(StoredStatus::new()),
    }
}

/// One page of a segment.
#[derive(Debug, Default)]
pub(crate) struct SegmentPage {
    pub(crate) entries: Vec<Entry>,
    /// The snapshot held no more entries in the requested range.
    pub(crate) exhausted: bool,
}

/// Reads up to `count` entries of a segment from sequence `from` up to
/// `to` (inclusive), stopping early once `max_bytes` of payload are held.
#[allow(clippy::too_many_arguments)]
pub(crate) fn segment_page(
    storage: &dyn Storage,
    store_id: Uuid,
    space: &str,
    segment: &str,
    from: u64,
    to: u64,
    count: usize,
    max_bytes: usize,
) -> Result<SegmentPage> {
    let mut page = SegmentPage {
        entries: Vec::with_capacity(count.min(4096)),
        exhausted: false,
    };
    if from > to {
        page.exhausted = true;
        return Ok(page);
    }
    let range = KeyRange {
        start: Bound::Included(Bytes::from(keys::dat(space, segment, from))),
        end: Bound::Included(Bytes::from(keys::dat(space, segment, to))),
    };
    let mut bytes = 0usize;
    let mut seen = 0usize;
    for item in storage.scan(range, ScanOptions::forward().with_limit(count))? {
        let (key, value) = item?;
        seen += 1;
        let seq = keys::dat_seq(&key)?;
        let entry = codec::decode_entry(&key, &value, space, segment, seq, store_id)?;
        bytes += entry.payload.len();
        page.entries.push(entry);
        if bytes >= max_bytes {
            // Stopped for size, not because the range ran out.
            return Ok(page);
        }
    }
    page.exhausted = seen < count;
    Ok(page)
}

/// One page of a space, in merge order.
#[derive(Debug, Default)]
pub(crate) struct SpacePage {
    pub(crate) entries: Vec<Entry>,
    /// The last index position examined (entries trimmed between the index
    /// scan and the entry reads are skipped but still passed).
    pub(crate) last: Option<SpaceOffset>,
    /// The snapshot held no more index keys.
    pub(crate) exhausted: bool,
}

/// Reads up to `count` entries of `space` strictly after `after`, in
/// `(timestamp, segment, sequence)` order: one index scan, then one entry
/// range scan per segment the page touches.
///
/// Index keys are parsed without allocating: a key's segment component is
/// compared in its escaped form with the segments already seen on the page,
/// and only a new one is decoded (and checked) in full.
pub(crate) fn space_page(
    storage: &dyn Storage,
    store_id: Uuid,
    space: &str,
    after: Option<&SpaceOffset>,
    count: usize,
) -> Result<SpacePage> {
    let prefix = keys::idx_prefix(space);
    let start = match after {
        Some(offset) => Bound::Excluded(Bytes::from(keys::idx_of(space, offset))),
        None => Bound::Included(Bytes::from(prefix.clone())),
    };
    let range = KeyRange {
        start,
        end: Bound::Excluded(Bytes::from(keys::after_prefix(&prefix))),
    };
    // Positions as (timestamp, segment index, sequence).
    let mut positions: Vec<(u64, usize, u64)> = Vec::with_capacity(count.min(4096));
    let mut segments: Vec<PageSegment> = Vec::new();
    let mut lookup: HashMap<Bytes, usize> = HashMap::new();
    // Fixed parts around the segment: timestamp, then terminator and seq.
    let (head, tail) = (prefix.len() + 8, 2 + 8);
    for item in storage.scan(range, ScanOptions::forward().with_limit(count))? {
        let (key, _) = item?;
        let fast = key.len() >= head + tail
            && key.starts_with(&prefix)
            && key[key.len() - tail..key.len() - 8] == [0x00, 0x01];
        let escaped = if fast {
            key.slice(head..key.len() - tail)
        } else {
            Bytes::new()
        };
        let known = if fast {
            match segments.last() {
                Some(last) if last.escaped == escaped => Some(segments.len() - 1),
                _ => lookup.get(&escaped).copied(),
            }
        } else {
            None
        };
        let (timestamp, index, sequence) = match known {
            Some(index) => {
                let raw = key.last_chunk::<8>().copied().unwrap_or_default();
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&key[prefix.len()..head]);
                (u64::from_be_bytes(ts), index, u64::from_be_bytes(raw))
            }
            None => {
                let offset = keys::parse_idx(&key)?;
                // A key that parses always has the fixed shape, so its
                // escaped segment is new on this page.
                debug_assert!(fast);
                let index = segments.len();
                segments.push(PageSegment::new(offset.segment, escaped.clone()));
                lookup.insert(escaped, index);
                (offset.timestamp, index, offset.sequence)
            }
        };
        let segment = &mut segments[index];
        segment.lo = segment.lo.min(sequence);
        segment.hi = segment.hi.max(sequence);
        positions.push((timestamp, index, sequence));
    }
    let exhausted = positions.len() < count;
    let last = positions
        .last()
        .map(|&(timestamp, index, sequence)| SpaceOffset {
            timestamp,
            segment: segments[index].name.clone(),
            sequence,
        });

    // Per segment, the page's entries are consecutive sequences (the index
    // holds every entry, and a segment's timestamps never decrease).
    for segment in &mut segments {
        let (lo, hi, name) = (segment.lo, segment.hi, segment.name.as_str());
        if lo == hi {
            let key = keys::dat(space, name, lo);
            if let Some(value) = storage.get(&key)? {
                segment.entries.push_back(codec::decode_entry(
                    &key, &value, space, name, lo, store_id,
                )?);
            }
        } else {
            let range = KeyRange {
                start: Bound::Included(Bytes::from(keys::dat(space, name, lo))),
                end: Bound::Included(Bytes::from(keys::dat(space, name, hi))),
            };
            let expected = usize::try_from(hi - lo + 1).unwrap_or(usize::MAX);
            segment.entries.reserve(expected.min(count));
            for item in storage.scan(range, ScanOptions::forward())? {
                let (key, value) = item?;
                let seq = keys::dat_seq(&key)?;
                segment.entries.push_back(codec::decode_entry(
                    &key, &value, space, name, seq, store_id,
                )?);
            }
        }
    }

    let mut entries = Vec::with_capacity(positions.len());
    for &(timestamp, index, sequence) in &positions {
        let queue = &mut segments[index].entries;
        while queue.front().is_some_and(|e| e.sequence < sequence) {
            queue.pop_front();
        }
        if queue.front().is_some_and(|e| e.sequence == sequence)
            && let Some(entry) = queue.pop_front()
        {
            if entry.timestamp != timestamp {
                let key = keys::dat(space, &segments[index].name, sequence);
                return Err(Error::corrupt_at(
                    &key,
                    format!(
                        "entry timestamp {} differs from its index timestamp {}",
                        entry.timestamp, timestamp
                    ),
                ));
            }
            entries.push(entry);
        }
        // Otherwise the entry was trimmed after the index scan: skip it.
    }
    Ok(SpacePage {
        entries,
        last,
        exhausted,
    })
}

/// A segment met on a space page.
struct PageSegment {
    name: String,
    /// Its escaped key component (empty when not usable for matching).
    escaped: Bytes,
    lo: u64,
    hi: u64,
    entries: VecDeque<Entry>,
}

impl PageSegment {
    fn new(name: String, escaped: Bytes) -> Self {
        Self {
            name,
            escaped,
            lo: u64::MAX,
            hi: 0,
            entries: VecDeque::new(),
        }
    }
}

/// Counts the index keys of `space` strictly after `after`, reading at most
/// `count` keys; returns the count and the last position read.
pub(crate) fn count_page(
    storage: &dyn Storage,
    space: &str,
    after: Option<&[u8]>,
    count: usize,
) -> Result<(u64, Option<Bytes>)> {
    let prefix = keys::idx_prefix(space);
    let start = match after {
        Some(key) => Bound::Excluded(Bytes::copy_from_slice(key)),
        None => Bound::Included(Bytes::from(prefix.clone())),
    };
    let range = KeyRange {
        start,
        end: Bound::Excluded(Bytes::from(keys::after_prefix(&prefix))),
    };
    let mut n = 0u64;
    let mut last = None;
    for item in storage.scan(range, ScanOptions::forward().with_limit(count))? {
        let (key, _) = item?;
        n += 1;
        last = Some(key);
    }
    Ok((n, last))
}
