//! Consumes: paged reads of a segment, a space or several spaces, that can
//! follow the live tail.
//!
//! Every stream holds at most one page per source (a page is at most the
//! query's `page_size` entries, and stops early at [`PAGE_BYTES`] of
//! payload). It reads pages on `spawn_blocking` from storage snapshots and
//! keeps its position as "strictly after the last entry read", so the
//! switch from history to following is the same step as any other page:
//! nothing is skipped or repeated.
//!
//! Following waits on [`Store::watch_changes`]: the stream marks the current
//! commit seen *before* it reads a page, so a commit that lands after the
//! read wakes it. The stream ends when its limit is reached, when a bound of
//! the query is passed, when the store closes, or on [`EntryStream::close`];
//! dropping it cancels it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use seq_core::SpaceOffset;
use tokio::sync::watch;

use super::read::{self, SpacePage, blocking};
use super::types::{DEFAULT_PAGE_SIZE, Entry, MultiQuery, PAGE_BYTES, SegmentQuery, SpaceQuery};
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Reads a segment in sequence order, filtered by `query`.
    ///
    /// The stream yields the retained entries with `min_seq <= sequence <=
    /// max_seq` and `min_ts <= timestamp <= max_ts`, at most `limit` of them,
    /// then ends or, with `follow`, waits for new ones. Entries trimmed
    /// while the stream runs are skipped. The stream ends at `max_seq` or at
    /// the first entry above `max_ts` even when following.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] for an invalid name (at once); the
    /// stream's `next` returns [`crate::Error::Corrupt`] for an entry that
    /// does not decode and [`crate::Error::Storage`] when a read fails.
    pub fn consume_segment(
        &self,
        space: &str,
        segment: &str,
        query: SegmentQuery,
    ) -> Result<EntryStream> {
        seq_core::validate_name("space", space)?;
        seq_core::validate_name("segment", segment)?;
        let source = Source::Segment {
            space: space.into(),
            segment: segment.into(),
            next: query.min_seq.max(1),
            max_seq: query.max_seq.unwrap_or(u64::MAX),
            min_ts: query.min_ts.unwrap_or(0),
            max_ts: query.max_ts.unwrap_or(u64::MAX),
        };
        Ok(EntryStream::new(
            self,
            source,
            query.limit,
            query.follow,
            query.page_size,
        ))
    }

    /// Reads a space: every segment merged by `(timestamp, segment,
    /// sequence)` through the space index, strictly after `query.offset`.
    ///
    /// Resuming from the [`Entry::offset`] of the last entry handled
    /// neither skips nor repeats an entry (see the visibility watermark in
    /// the crate docs): entries committed later always sort after it.
    ///
    /// # Errors
    ///
    /// As [`Store::consume_segment`].
    pub fn consume_space(&self, space: &str, query: SpaceQuery) -> Result<EntryStream> {
        seq_core::validate_name("space", space)?;
        let cursor = SpaceCursor::new(space, query.offset.clone());
        let mut stream = EntryStream::new(
            self,
            Source::Space(cursor),
            query.limit,
            query.follow,
            query.page_size,
        );
        stream.yielded = query.offset;
        Ok(stream)
    }

    /// Reads several spaces merged by `(timestamp, space, segment,
    /// sequence)`, each strictly after its offset in `query.offsets`.
    ///
    /// The merge holds one page per space. Within each space the order is
    /// exact; across spaces it is exact for entries committed while the
    /// store's clock moves forward (a wall clock that stepped back across a
    /// restart can put a later space's entries behind an earlier one's, but
    /// never skips one: every space resumes after its own offset, see
    /// [`EntryStream::offsets`]).
    ///
    /// # Errors
    ///
    /// As [`Store::consume_segment`]; an empty `offsets` map is
    /// [`crate::Error::InvalidArgument`].
    pub fn consume(&self, query: MultiQuery) -> Result<EntryStream> {
        if query.offsets.is_empty() {
            return Err(crate::Error::invalid("consume needs at least one space"));
        }
        let mut lanes = Vec::with_capacity(query.offsets.len());
        for (space, offset) in query.offsets {
            seq_core::validate_name("space", &space)?;
            lanes.push(Lane {
                yielded: offset.clone(),
                cursor: SpaceCursor::new(&space, offset),
                buffer: VecDeque::new(),
                dry_at: None,
            });
        }
        Ok(EntryStream::new(
            self,
            Source::Multi(lanes),
            query.limit,
            query.follow,
            query.page_size,
        ))
    }
}

/// A stream of entries from [`Store::consume_segment`],
/// [`Store::consume_space`] or [`Store::consume`].
///
/// Call [`EntryStream::next`] (or [`EntryStream::next_batch`]) until it
/// returns `None`. It holds at most one page per source in memory.
pub struct EntryStream {
    store: Store,
    source: Source,
    /// Entries read but not yielded (segment and space sources).
    buffer: VecDeque<Entry>,
    remaining: Option<u64>,
    follow: bool,
    page_size: usize,
    commits: watch::Receiver<u64>,
    done: bool,
    max_held: usize,
    /// Offset of the last entry yielded (space source).
    yielded: Option<SpaceOffset>,
}

impl std::fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryStream")
            .field("buffered", &self.held())
            .field("remaining", &self.remaining)
            .field("follow", &self.follow)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

enum Source {
    Segment {
        space: Arc<str>,
        segment: Arc<str>,
        /// The next sequence to read.
        next: u64,
        max_seq: u64,
        min_ts: u64,
        max_ts: u64,
    },
    Space(SpaceCursor),
    Multi(Vec<Lane>),
}

/// A position in a space and the page-size estimate for it.
struct SpaceCursor {
    space: Arc<str>,
    /// The last index position read.
    after: Option<SpaceOffset>,
    /// Average payload size of the last page (bytes), to keep pages near
    /// [`PAGE_BYTES`].
    avg_bytes: usize,
}

impl SpaceCursor {
    fn new(space: &str, after: Option<SpaceOffset>) -> Self {
        // Assume large entries until a page says otherwise, so the first
        // page cannot be huge.
        Self {
            space: space.into(),
            after,
            avg_bytes: PAGE_BYTES / 16,
        }
    }

    fn page_count(&self, page_size: usize) -> usize {
        (PAGE_BYTES / self.avg_bytes.max(1)).clamp(1, page_size)
    }

    async fn fetch(&mut self, store: &Store, page_size: usize) -> Result<SpacePage> {
        let count = self.page_count(page_size);
        let storage = store.storage().clone();
        let id = store.id();
        let space = self.space.clone();
        let after = self.after.clone();
        let page = blocking(move || read::space_page(&*storage, id, &space, after.as_ref(), count))
            .await?;
        if let Some(last) = &page.last {
            self.after = Some(last.clone());
        }
        if !page.entries.is_empty() {
            let bytes: usize = page.entries.iter().map(|e| e.payload.len()).sum();
            self.avg_bytes = (bytes / page.entries.len()).max(1);
        }
        Ok(page)
    }
}

/// One space of a multi-space merge.
struct Lane {
    cursor: SpaceCursor,
    buffer: VecDeque<Entry>,
    /// The commit number seen before the read that found this lane dry.
    dry_at: Option<u64>,
    yielded: Option<SpaceOffset>,
}

impl EntryStream {
    fn new(
        store: &Store,
        source: Source,
        limit: Option<u64>,
        follow: bool,
        page_size: usize,
    ) -> Self {
        let commits = store.watch_changes();
        Self {
            store: store.clone(),
            source,
            buffer: VecDeque::new(),
            remaining: limit,
            follow,
            page_size: if page_size == 0 {
                DEFAULT_PAGE_SIZE
            } else {
                page_size
            },
            commits,
            done: limit == Some(0),
            max_held: 0,
            yielded: None,
        }
    }

    /// The next entry; `None` once the stream has ended.
    ///
    /// Cancel-safe at page granularity: dropping the future while it waits
    /// for new entries loses nothing, dropping it during a read may skip the
    /// page being read (drop the stream instead to cancel).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Corrupt`] for an entry or index key that does not
    /// decode, [`crate::Error::Storage`] for a failed read. The stream can be
    /// polled again after an error; it retries the same page.
    pub async fn next(&mut self) -> Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let entry = match &mut self.source {
            Source::Multi(_) => self.next_multi().await?,
            _ => self.next_single().await?,
        };
        match entry {
            Some(entry) => {
                if let Some(remaining) = &mut self.remaining {
                    *remaining -= 1;
                    if *remaining == 0 {
                        self.finish();
                    }
                }
                Ok(Some(entry))
            }
            None => {
                self.finish();
                Ok(None)
            }
        }
    }

    /// Up to `max` entries: waits for at least one (like
    /// [`EntryStream::next`]), then adds those available without another
    /// storage read. An empty vector means the stream has ended.
    ///
    /// # Errors
    ///
    /// As [`EntryStream::next`].
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let Some(first) = self.next().await? else {
            return Ok(out);
        };
        out.push(first);
        if !matches!(self.source, Source::Multi(_)) {
            // Single source: take what the page already holds in one go.
            self.drain_into(&mut out, max);
        }
        while out.len() < max && self.ready() {
            match self.next().await? {
                Some(entry) => out.push(entry),
                None => break,
            }
        }
        Ok(out)
    }

    /// Moves buffered entries (single source) into `out` up to `max`,
    /// honouring the limit, as repeated [`EntryStream::next`] calls would.
    fn drain_into(&mut self, out: &mut Vec<Entry>, max: usize) {
        if self.done {
            return;
        }
        let mut n = (max - out.len().min(max)).min(self.buffer.len());
        if let Some(remaining) = self.remaining {
            n = n.min(usize::try_from(remaining).unwrap_or(usize::MAX));
        }
        if n == 0 {
            return;
        }
        out.extend(self.buffer.drain(..n));
        if let Source::Space(_) = self.source
            && let Some(last) = out.last()
        {
            set_offset(&mut self.yielded, last);
        }
        if let Some(remaining) = &mut self.remaining {
            *remaining -= n as u64;
            if *remaining == 0 {
                self.finish();
            }
        }
    }

    /// Ends the stream: later calls return `None`. Dropping the stream does
    /// the same.
    pub fn close(&mut self) {
        self.finish();
    }

    /// For a [`Store::consume_space`] stream, the offset of the last entry
    /// yielded (the query's offset before the first): resume after it.
    pub fn offset(&self) -> Option<&SpaceOffset> {
        match &self.source {
            Source::Space(_) => self.yielded.as_ref(),
            _ => None,
        }
    }

    /// For a [`Store::consume`] stream, each space's offset of the last
    /// entry yielded: pass it back as [`MultiQuery::offsets`] to resume.
    pub fn offsets(&self) -> BTreeMap<String, Option<SpaceOffset>> {
        match &self.source {
            Source::Multi(lanes) => lanes
                .iter()
                .map(|lane| (lane.cursor.space.to_string(), lane.yielded.clone()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The most entries this stream has held in memory at once (for
    /// checking that reads stay page-bounded).
    #[doc(hidden)]
    pub fn max_held(&self) -> usize {
        self.max_held
    }

    fn held(&self) -> usize {
        match &self.source {
            Source::Multi(lanes) => lanes.iter().map(|lane| lane.buffer.len()).sum(),
            _ => self.buffer.len(),
        }
    }

    fn note_held(&mut self) {
        self.max_held = self.max_held.max(self.held());
    }

    fn finish(&mut self) {
        self.done = true;
        self.buffer = VecDeque::new();
        if let Source::Multi(lanes) = &mut self.source {
            for lane in lanes {
                lane.buffer = VecDeque::new();
            }
        }
    }

    /// Whether the next entry is available without a storage read.
    fn ready(&self) -> bool {
        if self.done {
            return false;
        }
        match &self.source {
            Source::Multi(lanes) => {
                let current = *self.commits.borrow();
                lanes.iter().any(|lane| !lane.buffer.is_empty())
                    && lanes.iter().all(|lane| {
                        !lane.buffer.is_empty()
                            || (lane.dry_at.is_some()
                                && (!self.follow || lane.dry_at == Some(current)))
                    })
            }
            _ => !self.buffer.is_empty(),
        }
    }

    /// Waits for the next commit; false when the store closed.
    async fn wait_for_commit(&mut self) -> bool {
        self.commits.changed().await.is_ok()
    }

    async fn next_single(&mut self) -> Result<Option<Entry>> {
        loop {
            if let Some(entry) = self.buffer.pop_front() {
                if let Source::Space(_) = self.source {
                    set_offset(&mut self.yielded, &entry);
                }
                return Ok(Some(entry));
            }
            self.commits.borrow_and_update();
            let exhausted = self.fill_single().await?;
            if self.done {
                return Ok(None);
            }
            if self.buffer.is_empty()
                && exhausted
                && (!self.follow || !self.wait_for_commit().await)
            {
                return Ok(None);
            }
        }
    }

    /// Reads one page into the buffer; returns whether the source ran dry.
    async fn fill_single(&mut self) -> Result<bool> {
        let page_size = self.page_size;
        match &mut self.source {
            Source::Segment {
                space,
                segment,
                next,
                max_seq,
                min_ts,
                max_ts,
            } => {
                if *next > *max_seq {
                    self.done = true;
                    return Ok(true);
                }
                let storage = self.store.storage().clone();
                let id = self.store.id();
                let (sp, sg, from, to) = (space.clone(), segment.clone(), *next, *max_seq);
                let page = blocking(move || {
                    read::segment_page(&*storage, id, &sp, &sg, from, to, page_size, PAGE_BYTES)
                })
                .await?;
                if let Some(last) = page.entries.last() {
                    *next = last.sequence.saturating_add(1);
                }
                let mut entries = page.entries;
                if let Some(cut) = entries.iter().position(|e| e.timestamp > *max_ts) {
                    // Timestamps never decrease within a segment: end
                    // after what is buffered.
                    *max_seq = entries[cut].sequence.saturating_sub(1);
                    entries.truncate(cut);
                }
                if *min_ts > 0 {
                    entries.retain(|e| e.timestamp >= *min_ts);
                }
                append(&mut self.buffer, entries);
                self.note_held();
                Ok(page.exhausted)
            }
            Source::Space(cursor) => {
                let page = cursor.fetch(&self.store, page_size).await?;
                append(&mut self.buffer, page.entries);
                self.note_held();
                Ok(page.exhausted)
            }
            Source::Multi(_) => Ok(true),
        }
    }

    async fn next_multi(&mut self) -> Result<Option<Entry>> {
        loop {
            let current = *self.commits.borrow_and_update();
            let page_size = self.page_size;
            let follow = self.follow;
            let Source::Multi(lanes) = &mut self.source else {
                return Ok(None);
            };
            for lane in lanes.iter_mut() {
                while lane.buffer.is_empty()
                    && (lane.dry_at.is_none() || (follow && lane.dry_at != Some(current)))
                {
                    let page = lane.cursor.fetch(&self.store, page_size).await?;
                    let empty = page.entries.is_empty();
                    append(&mut lane.buffer, page.entries);
                    if page.exhausted && empty {
                        lane.dry_at = Some(current);
                    } else if !empty {
                        lane.dry_at = None;
                    }
                }
            }
            let held: usize = lanes.iter().map(|lane| lane.buffer.len()).sum();
            self.max_held = self.max_held.max(held);
            let best = lanes
                .iter()
                .enumerate()
                .filter_map(|(index, lane)| lane.buffer.front().map(|e| (e, index)))
                .min_by(|(a, ia), (b, ib)| {
                    (a.timestamp, *ia, &a.segment, a.sequence).cmp(&(
                        b.timestamp,
                        *ib,
                        &b.segment,
                        b.sequence,
                    ))
                })
                .map(|(_, index)| index);
            if let Some(index) = best {
                let lane = &mut lanes[index];
                let entry = lane.buffer.pop_front();
                if let Some(entry) = &entry {
                    set_offset(&mut lane.yielded, entry);
                }
                return Ok(entry);
            }
            if !self.follow || !self.wait_for_commit().await {
                return Ok(None);
            }
        }
    }
}

/// Sets `slot` to `entry`'s offset, reusing the segment name's buffer.
fn set_offset(slot: &mut Option<SpaceOffset>, entry: &Entry) {
    match slot {
        Some(offset) => {
            offset.timestamp = entry.timestamp;
            offset.sequence = entry.sequence;
            if offset.segment != entry.segment {
                offset.segment.clear();
                offset.segment.push_str(&entry.segment);
            }
        }
        None => *slot = Some(entry.offset()),
    }
}

/// Appends a page to a buffer; an empty buffer takes the page's allocation
/// as it is (no per-entry move).
fn append(buffer: &mut VecDeque<Entry>, entries: Vec<Entry>) {
    if buffer.is_empty() {
        *buffer = VecDeque::from(entries);
    } else {
        buffer.extend(entries);
    }
}
