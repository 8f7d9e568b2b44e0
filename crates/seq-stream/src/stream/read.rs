//! Blocking page reads from storage snapshots. Each function reads at most a
//! page; the async callers run them on the blocking pool ([`blocking`], or
//! a [`ReadAhead`](super::read_ahead::ReadAhead) to read ahead).
//!
//! Pages hold [`RawEntry`]s: values as storage returned them, decoded (and
//! checksummed) only when a stream yields them. That puts the decoding on
//! the consumer's side, where it overlaps with the read of the next page.

use std::collections::HashMap;
use std::ops::Bound;
use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use seq_core::SpaceOffset;
use seq_storage::{KeyRange, ScanOptions, Storage};

use super::codec;
use super::index;
use super::keys;
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

/// An entry as a page read it: not decoded yet.
#[derive(Debug)]
pub(crate) struct RawEntry {
    /// Its segment, as an index into [`Page::segments`] (the reader does
    /// not touch the name's reference count per entry).
    pub(crate) segment: usize,
    pub(crate) sequence: u64,
    /// Its timestamp, from the space index or the value's header; the
    /// decode checks it.
    pub(crate) timestamp: u64,
    /// The stored value.
    pub(crate) value: Bytes,
}

/// One page of a segment or a space, in the order the stream yields it.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) entries: Vec<RawEntry>,
    /// The segments of the entries.
    pub(crate) segments: Vec<Arc<str>>,
    /// Space pages: the last index position examined (entries trimmed
    /// between the index scan and the entry reads are skipped but still
    /// passed).
    pub(crate) last: Option<SpaceOffset>,
    /// The snapshot held no more entries in the requested range (space
    /// pages: no more index records).
    pub(crate) exhausted: bool,
}

/// Reads up to `count` entries of a segment from sequence `from` up to
/// `to` (inclusive), stopping early once the values read reach
/// `max_bytes`.
pub(crate) fn segment_page(
    storage: &dyn Storage,
    space: &str,
    segment: &Arc<str>,
    from: u64,
    to: u64,
    count: usize,
    max_bytes: usize,
) -> Result<Page> {
    let mut page = Page {
        entries: Vec::with_capacity(count.min(4096)),
        segments: vec![segment.clone()],
        ..Page::default()
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
    for item in storage.scan(range, ScanOptions::forward().with_limit(count))? {
        let (key, value) = item?;
        bytes += value.len();
        page.entries.push(RawEntry {
            segment: 0,
            sequence: keys::dat_seq(&key)?,
            // A value too short for a timestamp fails its decode.
            timestamp: codec::peek_timestamp(&value).unwrap_or(u64::MAX),
            value,
        });
        if bytes >= max_bytes {
            // Stopped for size, not because the range ran out.
            return Ok(page);
        }
    }
    page.exhausted = page.entries.len() < count;
    Ok(page)
}

/// Reads up to `count` entries of `space` strictly after `after`, in
/// `(timestamp, segment, sequence)` order: [`index_page`], then
/// [`data_page`].
pub(crate) fn space_page(
    storage: &dyn Storage,
    space: &str,
    after: Option<&SpaceOffset>,
    count: usize,
) -> Result<Page> {
    data_page(storage, space, index_page(storage, space, after, count)?)
}

/// A page of a space's index: the positions of the next entries in merge
/// order, and the segments they belong to.
#[derive(Debug, Default)]
struct IndexPage {
    /// Positions as (timestamp, segment index, sequence).
    positions: Vec<(u64, usize, u64)>,
    segments: Vec<PageSegment>,
    /// The last position read.
    last: Option<SpaceOffset>,
    /// The snapshot held no more index records.
    exhausted: bool,
}

/// Reads up to `count` positions of `space`'s index strictly after `after`
/// (see [`index::walk`]). A segment's name is decoded once per page: runs
/// are matched to the page's segments by their raw name bytes.
fn index_page(
    storage: &dyn Storage,
    space: &str,
    after: Option<&SpaceOffset>,
    count: usize,
) -> Result<IndexPage> {
    let count = count.max(1);
    // Positions as (timestamp, segment index, sequence).
    let mut positions: Vec<(u64, usize, u64)> = Vec::with_capacity(count.min(4096));
    let mut segments: Vec<PageSegment> = Vec::new();
    let mut lookup: HashMap<Bytes, usize> = HashMap::new();
    // Every record but the first names a position after `after`, so
    // `count + 1` records fill the page or end the index.
    let done = index::walk(storage, space, after, count + 1, |timestamp, run| {
        let index = match segments.last() {
            Some(last) if last.raw == run.segment => segments.len() - 1,
            _ => match lookup.get(&run.segment) {
                Some(&index) => index,
                None => {
                    let index = segments.len();
                    segments.push(PageSegment::new(
                        run.segment_str().into(),
                        run.segment.clone(),
                    ));
                    lookup.insert(run.segment.clone(), index);
                    index
                }
            },
        };
        let segment = &mut segments[index];
        let room = (count - positions.len()) as u64;
        let last = run.last.min(run.first.saturating_add(room - 1));
        segment.lo = segment.lo.min(run.first);
        segment.hi = segment.hi.max(last);
        positions.extend((run.first..=last).map(|sequence| (timestamp, index, sequence)));
        if positions.len() >= count {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    let last = positions
        .last()
        .map(|&(timestamp, index, sequence)| SpaceOffset {
            timestamp,
            segment: segments[index].name.to_string(),
            sequence,
        });
    Ok(IndexPage {
        positions,
        segments,
        last,
        exhausted: done,
    })
}

/// Reads the entries an index page names: one range scan per segment the
/// page touches (entries trimmed since the index scan are skipped).
fn data_page(storage: &dyn Storage, space: &str, index: IndexPage) -> Result<Page> {
    let IndexPage {
        positions,
        mut segments,
        last,
        exhausted,
    } = index;
    let count = positions.len();
    // Per segment, the page's entries are consecutive sequences (the index
    // holds every entry, and a segment's timestamps never decrease).
    for segment in &mut segments {
        let (lo, hi) = (segment.lo, segment.hi);
        if lo == hi {
            let key = keys::dat(space, &segment.name, lo);
            if let Some(value) = storage.get(&key)? {
                segment.values.push((lo, value));
            }
        } else {
            let range = KeyRange {
                start: Bound::Included(Bytes::from(keys::dat(space, &segment.name, lo))),
                end: Bound::Included(Bytes::from(keys::dat(space, &segment.name, hi))),
            };
            let expected = usize::try_from(hi - lo + 1).unwrap_or(usize::MAX);
            segment.values.reserve(expected.min(count));
            for item in storage.scan(range, ScanOptions::forward())? {
                let (key, value) = item?;
                segment.values.push((keys::dat_seq(&key)?, value));
            }
        }
    }

    // Merge: each segment's values are in sequence order, as are its
    // positions, so one cursor per segment walks its values once.
    let mut entries = Vec::with_capacity(positions.len());
    for &(timestamp, index, sequence) in &positions {
        let segment = &mut segments[index];
        while segment
            .values
            .get(segment.next)
            .is_some_and(|(seq, _)| *seq < sequence)
        {
            segment.next += 1;
        }
        let Some((seq, value)) = segment.values.get_mut(segment.next) else {
            continue;
        };
        if *seq != sequence {
            // Trimmed after the index scan: skip it.
            continue;
        }
        segment.next += 1;
        if codec::peek_timestamp(value) != Some(timestamp) {
            let key = keys::dat(space, &segment.name, sequence);
            let found = codec::entry_timestamp(&key, value)?;
            return Err(Error::corrupt_at(
                &key,
                format!("entry timestamp {found} differs from its index timestamp {timestamp}"),
            ));
        }
        entries.push(RawEntry {
            segment: index,
            sequence,
            timestamp,
            value: std::mem::take(value),
        });
    }
    Ok(Page {
        entries,
        segments: segments.into_iter().map(|s| s.name).collect(),
        last,
        exhausted,
    })
}

/// A segment met on a space page.
#[derive(Debug)]
struct PageSegment {
    name: Arc<str>,
    /// Its name's bytes as index records hold them.
    raw: Bytes,
    lo: u64,
    hi: u64,
    /// The values read, as (sequence, value), in sequence order.
    values: Vec<(u64, Bytes)>,
    /// The first value the merge has not passed.
    next: usize,
}

impl PageSegment {
    fn new(name: Arc<str>, raw: Bytes) -> Self {
        Self {
            name,
            raw,
            lo: u64::MAX,
            hi: 0,
            values: Vec::new(),
            next: 0,
        }
    }
}
