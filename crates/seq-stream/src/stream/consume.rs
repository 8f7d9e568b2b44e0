//! Consumes: paged reads of a segment, a space or several spaces, that can
//! follow the live tail.
//!
//! A stream reads pages on the blocking pool from storage snapshots and
//! keeps its position as "strictly after the last entry read", so the
//! switch from history to following is the same step as any other page:
//! nothing is skipped or repeated. How pages are sized, read ahead and
//! bounded is described at [`EntryStream`].
//!
//! # Following
//!
//! Following waits on [`Store::watch_changes`]: the stream marks the
//! current change counter seen *before* it starts reading a page, so a
//! commit that lands after the read started wakes it. After a page that
//! reached the tail, the next read waits for such a commit: reading the
//! tail again at once would find nothing (it saw every commit before its
//! read started), and a follower would pay a storage read beside every
//! produce it follows. The stream ends when
//! its limit is reached, when a bound of the query is passed, when the
//! store closes, or on [`EntryStream::close`]; dropping it cancels it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};

use seq_core::SpaceOffset;
use seq_storage::Storage;
use tokio::sync::watch;

use super::codec::{EntryDecoder, Parsed};
use super::keys;
use super::read::{self, Page, RawEntry};
use super::read_ahead::{Pages, ReadAhead};
use super::types::{DEFAULT_PAGE_SIZE, Entry, MultiQuery, PAGE_BYTES, SegmentQuery, SpaceQuery};
use crate::error::{Error, Result};
use crate::store::Store;

/// Entries in a stream's first page (fewer when the query's page size is
/// smaller); each full page doubles the next, up to the page size.
const FIRST_PAGE: usize = 64;

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
        let source = Source::Segment(SegmentCursor {
            space: space.into(),
            segment: segment.into(),
            next: query.min_seq.max(1),
            max_seq: query.max_seq.unwrap_or(u64::MAX),
            min_ts: query.min_ts.unwrap_or(0),
            max_ts: query.max_ts.unwrap_or(u64::MAX),
            size: PageSize::new(page_size(query.page_size)),
            ahead: None,
        });
        Ok(EntryStream::new(self, source, query.limit, query.follow))
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
        let cursor = SpaceCursor::new(space, query.offset.clone(), page_size(query.page_size));
        let mut stream = EntryStream::new(self, Source::Space(cursor), query.limit, query.follow);
        stream.yielded = query.offset;
        Ok(stream)
    }

    /// Reads several spaces merged by `(timestamp, space, segment,
    /// sequence)`, each strictly after its offset in `query.offsets`.
    ///
    /// Each space reads its next page while the merge works through its
    /// current one, so the merge holds at most two pages per space. Within
    /// each space the order is exact; across spaces it is exact for entries
    /// committed while the store's clock moves forward (a wall clock that
    /// stepped back across a restart can put a later space's entries behind
    /// an earlier one's, but never skips one: every space resumes after its
    /// own offset, see [`EntryStream::offsets`]).
    ///
    /// # Errors
    ///
    /// As [`Store::consume_segment`]; an empty `offsets` map is
    /// [`crate::Error::InvalidArgument`].
    pub fn consume(&self, query: MultiQuery) -> Result<EntryStream> {
        if query.offsets.is_empty() {
            return Err(crate::Error::invalid("consume needs at least one space"));
        }
        let size = page_size(query.page_size);
        let mut lanes = Vec::with_capacity(query.offsets.len());
        for (space, offset) in query.offsets {
            seq_core::validate_name("space", &space)?;
            let cursor = SpaceCursor::new(&space, offset.clone(), size);
            lanes.push(Lane {
                yielded: offset,
                decoder: EntryDecoder::new(self.id(), cursor.space().clone()),
                cursor,
                buffer: Buffer::default(),
                dry_at: None,
                read_at: 0,
            });
        }
        Ok(EntryStream::new(
            self,
            Source::Multi(lanes),
            query.limit,
            query.follow,
        ))
    }
}

/// A stream of entries from [`Store::consume_segment`],
/// [`Store::consume_space`] or [`Store::consume`].
///
/// Call [`EntryStream::next`] (or [`EntryStream::next_batch`]) until it
/// returns `None`.
///
/// # Pages and memory
///
/// A stream reads its source in pages, each from one storage snapshot. A
/// page is at most the query's `page_size` entries ([`DEFAULT_PAGE_SIZE`]
/// by default) and stops early once its stored values reach
/// [`PAGE_BYTES`]. Pages start small (64 entries: a quick first entry,
/// little waste on short reads) and double while they come back full.
///
/// A segment or space stream reads the next page while its caller works
/// through the current one, so it holds at most two pages: the one being
/// yielded and the one being read (a space page is read as its index
/// positions, 24 bytes each, then its entries). A stream whose caller is
/// faster than storage waits for its pages; its reader then hands each page
/// over and reads the next on the same thread, without handing back to the
/// stream in between (see `read_ahead`). A multi-space stream
/// ([`Store::consume`]) reads one page ahead per space, so it holds at most
/// two pages per space. Entries are decoded, and their checksums checked,
/// as they are yielded: on the caller's side of the read-ahead, so decoding
/// overlaps with reading.
pub struct EntryStream {
    store: Store,
    source: Source,
    /// Entries read but not yielded (segment and space sources).
    buffer: Buffer,
    /// Decodes the entries of the segment or space source.
    decoder: EntryDecoder,
    remaining: Option<u64>,
    follow: bool,
    commits: watch::Receiver<u64>,
    done: bool,
    /// The last page of the segment or space source reached the tail:
    /// following, the next read waits for a commit after that page's read
    /// started instead of reading the tail again at once.
    at_tail: bool,
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
    Segment(SegmentCursor),
    Space(SpaceCursor),
    Multi(Vec<Lane>),
}

/// The storage for a page read that started after the stream was created.
/// Reads hold the storage weakly until they run, so a read ahead that is
/// still queued when its stream and store are dropped neither keeps the
/// storage open nor reads it.
fn upgrade(storage: &Weak<dyn Storage>) -> Result<Arc<dyn Storage>> {
    storage
        .upgrade()
        .ok_or_else(|| Error::closed("the store was dropped"))
}

/// The query's page size (0 = [`DEFAULT_PAGE_SIZE`]).
fn page_size(requested: usize) -> usize {
    if requested == 0 {
        DEFAULT_PAGE_SIZE
    } else {
        requested
    }
}

/// Waits for the next page of the reads in `slot` (cancel-safe, see
/// [`ReadAhead::next`]) and empties the slot once they are done. Returns
/// the page and the most entries held while it was read.
async fn finish_read(slot: &mut Option<ReadAhead>) -> Result<(Page, usize)> {
    let Some(ahead) = slot else {
        return Ok((Page::default(), 0));
    };
    let result = ahead.next().await;
    if ahead.is_idle() {
        *slot = None;
    }
    result
}

/// The size of the next page: starts at [`FIRST_PAGE`], doubles after each
/// full page up to the query's page size.
#[derive(Debug, Clone, Copy)]
struct PageSize {
    next: usize,
    max: usize,
}

impl PageSize {
    fn new(max: usize) -> Self {
        Self {
            next: FIRST_PAGE.min(max),
            max,
        }
    }

    fn grow(&mut self) {
        self.next = self.next.saturating_mul(2).min(self.max);
    }
}

/// A position in a segment and the query's bounds.
struct SegmentCursor {
    space: Arc<str>,
    segment: Arc<str>,
    /// The next sequence to read.
    next: u64,
    max_seq: u64,
    min_ts: u64,
    max_ts: u64,
    size: PageSize,
    ahead: Option<ReadAhead>,
}

impl SegmentCursor {
    /// Starts reading from the next sequence, `count` entries at most in
    /// all; the reads go on while the stream waits (see [`ReadAhead`]).
    fn start(&mut self, store: &Store, count: usize, held: usize) {
        let pages = SegmentPages {
            storage: Arc::downgrade(store.storage()),
            space: self.space.clone(),
            segment: self.segment.clone(),
            from: self.next,
            to: self.max_seq,
            max_ts: self.max_ts,
            wanted: count,
            size: self.size,
        };
        self.ahead = Some(ReadAhead::start(pages, held));
    }
}

/// The pages of a segment from a sequence on, as a [`ReadAhead`] reads
/// them: it moves as the stream's [`SegmentCursor`] does, and stops where
/// the stream would end (the last sequence or timestamp wanted, the
/// entries wanted, the end of the segment).
struct SegmentPages {
    storage: Weak<dyn Storage>,
    space: Arc<str>,
    segment: Arc<str>,
    from: u64,
    to: u64,
    max_ts: u64,
    /// Entries still wanted.
    wanted: usize,
    size: PageSize,
}

impl Pages for SegmentPages {
    fn read(&mut self) -> Result<Page> {
        read::segment_page(
            &*upgrade(&self.storage)?,
            &self.space,
            &self.segment,
            self.from,
            self.to,
            self.wanted.clamp(1, self.size.next),
            PAGE_BYTES,
        )
    }

    fn advance(&mut self, page: &Page) -> bool {
        let Some(last) = page.entries.last() else {
            return false;
        };
        // Timestamps never decrease within a segment: past `max_ts` the
        // stream ends.
        if page.exhausted || last.timestamp > self.max_ts {
            return false;
        }
        self.from = last.sequence.saturating_add(1);
        self.wanted = self.wanted.saturating_sub(page.entries.len());
        self.size.grow();
        self.from <= self.to && self.wanted > 0
    }
}

/// A position in a space and the page-size estimates for it.
#[derive(Clone)]
struct SpacePosition {
    space: Arc<str>,
    /// The last index position read: the next page starts after it.
    after: Option<SpaceOffset>,
    /// Average value size of the last page (bytes), to keep pages near
    /// [`PAGE_BYTES`].
    avg_bytes: usize,
    size: PageSize,
}

impl SpacePosition {
    /// The next page's size for `wanted` more entries.
    fn count(&self, wanted: usize) -> usize {
        wanted
            .min(self.size.next)
            .min(PAGE_BYTES / self.avg_bytes.max(1))
            .max(1)
    }

    /// Moves past `page`, just read, and adapts the estimates to it.
    fn advance(&mut self, page: &Page) {
        if let Some(last) = &page.last {
            self.after = Some(last.clone());
        }
        if !page.entries.is_empty() {
            let bytes: usize = page.entries.iter().map(|e| e.value.len()).sum();
            self.avg_bytes = (bytes / page.entries.len()).max(1);
        }
        if !page.exhausted {
            self.size.grow();
        }
    }
}

/// A space stream's position and the reads ahead of it. Each page is read
/// in one step: its index positions, then its entries (see
/// [`read::space_page`]). A single-space stream's reads go on while it
/// waits (see [`ReadAhead`]); a multi-space stream reads one page ahead per
/// space.
struct SpaceCursor {
    position: SpacePosition,
    ahead: Option<ReadAhead>,
}

impl SpaceCursor {
    fn new(space: &str, after: Option<SpaceOffset>, page_size: usize) -> Self {
        Self {
            position: SpacePosition {
                space: space.into(),
                after,
                // Assume large entries until a page says otherwise, so the
                // first page cannot be huge.
                avg_bytes: PAGE_BYTES / 16,
                size: PageSize::new(page_size),
            },
            ahead: None,
        }
    }

    fn space(&self) -> &Arc<str> {
        &self.position.space
    }

    /// Starts reading after the position, `wanted` entries at most in all;
    /// past the first page only with `go_on`. `held` is what the stream
    /// holds meanwhile.
    fn start(&mut self, store: &Store, wanted: usize, held: usize, go_on: bool) {
        let pages = SpacePages {
            storage: Arc::downgrade(store.storage()),
            position: self.position.clone(),
            wanted,
            go_on,
        };
        self.ahead = Some(ReadAhead::start(pages, held));
    }
}

/// The pages of a space after a position, as a [`ReadAhead`] reads them:
/// it moves as the stream's [`SpaceCursor`] does.
struct SpacePages {
    storage: Weak<dyn Storage>,
    position: SpacePosition,
    /// Entries still wanted.
    wanted: usize,
    /// Whether more than one page may be read.
    go_on: bool,
}

impl Pages for SpacePages {
    fn read(&mut self) -> Result<Page> {
        let position = &self.position;
        read::space_page(
            &*upgrade(&self.storage)?,
            &position.space,
            position.after.as_ref(),
            position.count(self.wanted),
        )
    }

    fn advance(&mut self, page: &Page) -> bool {
        if !self.go_on || page.exhausted || page.last.is_none() {
            return false;
        }
        self.position.advance(page);
        self.wanted = self.wanted.saturating_sub(page.entries.len());
        self.wanted > 0
    }
}

/// One space of a multi-space merge.
struct Lane {
    cursor: SpaceCursor,
    buffer: Buffer,
    decoder: EntryDecoder,
    /// The change counter seen before the read that found this lane dry.
    dry_at: Option<u64>,
    /// The change counter seen before the current read started.
    read_at: u64,
    yielded: Option<SpaceOffset>,
}

impl Lane {
    /// Starts reading this space's next page, `wanted` entries at most;
    /// the stream holds `held` entries meanwhile and has seen the change
    /// counter at `mark`. One page per read: a lane reads one page ahead.
    fn start(&mut self, store: &Store, wanted: usize, held: usize, mark: u64) {
        self.read_at = mark;
        self.cursor.start(store, wanted, held, false);
    }
}

impl EntryStream {
    fn new(store: &Store, source: Source, limit: Option<u64>, follow: bool) -> Self {
        let commits = store.watch_changes();
        let space = match &source {
            Source::Segment(cursor) => cursor.space.clone(),
            Source::Space(cursor) => cursor.space().clone(),
            Source::Multi(_) => Arc::from(""),
        };
        Self {
            store: store.clone(),
            source,
            buffer: Buffer::default(),
            decoder: EntryDecoder::new(store.id(), space),
            remaining: limit,
            follow,
            commits,
            done: limit == Some(0),
            at_tail: false,
            max_held: 0,
            yielded: None,
        }
    }

    /// The next entry; `None` once the stream has ended.
    ///
    /// Cancel-safe: dropping the future while it waits for new entries or
    /// for a page loses nothing (a page read keeps running, and the next
    /// call takes it).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Corrupt`] for an entry or index record that does not
    /// decode, [`crate::Error::Storage`] for a failed read. The stream can be
    /// polled again after an error; it retries the same page or entry.
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
    /// As [`EntryStream::next`]; an entry that does not decode after the
    /// first ends the batch early, and the next call returns its error.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let Some(first) = self.next().await? else {
            return Ok(out);
        };
        out.reserve(max.min(self.buffer.len() + 1));
        out.push(first);
        if !matches!(self.source, Source::Multi(_)) {
            // Single source: take what the page already holds in one go.
            self.drain_into(&mut out, max);
        }
        while out.len() < max && self.ready() {
            match self.next().await {
                Ok(Some(entry)) => out.push(entry),
                // The error comes again on the next call.
                Ok(None) | Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Moves buffered entries (single source) into `out` up to `max`,
    /// honouring the limit, as repeated [`EntryStream::next`] calls would.
    /// Stops before an entry that does not decode.
    fn drain_into(&mut self, out: &mut Vec<Entry>, max: usize) {
        if self.done {
            return;
        }
        let mut n = (max - out.len().min(max)).min(self.buffer.len());
        if let Some(remaining) = self.remaining {
            n = n.min(usize::try_from(remaining).unwrap_or(usize::MAX));
        }
        let mut taken = 0;
        while taken < n {
            match decode_front(&mut self.decoder, &mut self.buffer) {
                Ok(Some(entry)) => out.push(entry),
                Ok(None) | Err(_) => break,
            }
            taken += 1;
        }
        if taken == 0 {
            return;
        }
        if let Source::Space(_) = self.source
            && let Some(last) = out.last()
        {
            set_offset(&mut self.yielded, last);
        }
        if let Some(remaining) = &mut self.remaining {
            *remaining -= taken as u64;
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
                .map(|lane| (lane.cursor.space().to_string(), lane.yielded.clone()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The most entries this stream has held in memory at once, counting a
    /// page being read ahead with the entries held while it was read (for
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

    fn note_held(&mut self, held: usize) {
        self.max_held = self.max_held.max(held).max(self.held());
    }

    fn finish(&mut self) {
        self.done = true;
        self.buffer = Buffer::default();
        match &mut self.source {
            Source::Segment(cursor) => cursor.ahead = None,
            Source::Space(cursor) => cursor.ahead = None,
            Source::Multi(lanes) => {
                for lane in lanes {
                    lane.buffer = Buffer::default();
                    lane.cursor.ahead = None;
                }
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

    /// Waits for a commit after the change counter was last marked seen
    /// (before the last read started; at once if one came meanwhile); false
    /// when the store closed.
    async fn wait_for_commit(&mut self) -> bool {
        let committed = self.commits.changed().await.is_ok();
        if committed {
            self.at_tail = false;
        }
        committed
    }

    /// Whether the next read of the segment or space source is a new one
    /// (none is running or done ahead) that would start where the last page
    /// reached the tail.
    fn rereads_tail(&self) -> bool {
        self.at_tail
            && match &self.source {
                Source::Segment(cursor) => cursor.ahead.is_none() && cursor.next <= cursor.max_seq,
                Source::Space(cursor) => cursor.ahead.is_none(),
                Source::Multi(_) => false,
            }
    }

    /// Entries still wanted beyond those buffered (`usize::MAX` without a
    /// limit).
    fn wanted(&self) -> usize {
        match self.remaining {
            Some(remaining) => usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .saturating_sub(self.buffer.len()),
            None => usize::MAX,
        }
    }

    async fn next_single(&mut self) -> Result<Option<Entry>> {
        loop {
            if let Some(entry) = decode_front(&mut self.decoder, &mut self.buffer)? {
                if let Source::Space(_) = self.source {
                    set_offset(&mut self.yielded, &entry);
                }
                return Ok(Some(entry));
            }
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

    /// Takes the page read ahead (or reads one) into the empty buffer and
    /// starts reading the next one when there is more to read; returns
    /// whether the source ran dry.
    async fn fill_single(&mut self) -> Result<bool> {
        // The page just yielded ended at the tail and saw every commit from
        // before its read started. Reading again before a later commit would
        // find nothing new: a follower waits for one first (a store that
        // closes meanwhile ends the stream as an empty read would).
        if self.follow && self.rereads_tail() && !self.wait_for_commit().await {
            return Ok(true);
        }
        let wanted = self.wanted();
        let page = match &mut self.source {
            Source::Segment(cursor) => {
                if cursor.ahead.is_none() {
                    if cursor.next > cursor.max_seq {
                        self.done = true;
                        return Ok(true);
                    }
                    // Mark the change counter seen before the read starts.
                    self.commits.borrow_and_update();
                    cursor.start(&self.store, wanted, 0);
                }
                let (mut page, held) = finish_read(&mut cursor.ahead).await?;
                let entries = &mut page.entries;
                // Timestamps never decrease within a segment: end after the
                // last entry within `max_ts`. An entry the bounds act on is
                // checked first, so a corrupt one is reported, not skipped.
                let cut = entries.iter().position(|e| e.timestamp > cursor.max_ts);
                if let Some(cut) = cut {
                    parse(&mut self.decoder, &cursor.segment, &entries[cut])?;
                }
                if cursor.min_ts > 0 {
                    for entry in entries.iter().filter(|e| e.timestamp < cursor.min_ts) {
                        parse(&mut self.decoder, &cursor.segment, entry)?;
                    }
                }
                if let Some(last) = entries.last() {
                    cursor.next = last.sequence.saturating_add(1);
                }
                if let Some(cut) = cut {
                    cursor.max_seq = entries[cut].sequence.saturating_sub(1);
                    entries.truncate(cut);
                }
                if cursor.min_ts > 0 {
                    let min_ts = cursor.min_ts;
                    entries.retain(|e| e.timestamp >= min_ts);
                }
                if !page.exhausted {
                    cursor.size.grow();
                }
                (page, held)
            }
            Source::Space(cursor) => {
                if cursor.ahead.is_none() {
                    // Mark the change counter seen before the read starts.
                    self.commits.borrow_and_update();
                    cursor.start(&self.store, wanted, 0, true);
                }
                let (page, held) = finish_read(&mut cursor.ahead).await?;
                cursor.position.advance(&page);
                (page, held)
            }
            Source::Multi(_) => return Ok(true),
        };
        let (page, held) = page;
        let exhausted = page.exhausted;
        self.at_tail = exhausted;
        self.buffer.append(page);
        self.note_held(held);
        // Read ahead while the caller works through this page.
        let wanted = self.wanted();
        let held = self.buffer.len();
        if !exhausted && !self.done && wanted > 0 {
            match &mut self.source {
                // A run of reads still going on reads the next page already
                // (its change counter mark is the one from its start).
                Source::Segment(cursor)
                    if cursor.next <= cursor.max_seq && cursor.ahead.is_none() =>
                {
                    self.commits.borrow_and_update();
                    cursor.start(&self.store, wanted, held);
                }
                Source::Space(cursor) if cursor.ahead.is_none() => {
                    self.commits.borrow_and_update();
                    cursor.start(&self.store, wanted, held, true);
                }
                _ => {}
            }
        }
        Ok(exhausted)
    }

    async fn next_multi(&mut self) -> Result<Option<Entry>> {
        loop {
            let current = *self.commits.borrow_and_update();
            let follow = self.follow;
            let wanted = self.wanted();
            let Source::Multi(lanes) = &mut self.source else {
                return Ok(None);
            };
            for index in 0..lanes.len() {
                while lanes[index].buffer.is_empty()
                    && (lanes[index].dry_at.is_none()
                        || (follow && lanes[index].dry_at != Some(current)))
                {
                    if lanes[index].cursor.ahead.is_none() {
                        let held = lanes.iter().map(|lane| lane.buffer.len()).sum();
                        lanes[index].start(&self.store, wanted, held, current);
                    }
                    let lane = &mut lanes[index];
                    let (page, held) = finish_read(&mut lane.cursor.ahead).await?;
                    self.max_held = self.max_held.max(held);
                    // What the page shows is as of its read's start.
                    let read_at = lane.read_at;
                    lane.cursor.position.advance(&page);
                    let empty = page.entries.is_empty();
                    let exhausted = page.exhausted;
                    lane.buffer.append(page);
                    // A page that reached the tail saw every commit before
                    // its read: following, the lane reads again only after
                    // a later one (see `EntryStream::rereads_tail`).
                    if exhausted && (empty || follow) {
                        lane.dry_at = Some(read_at);
                    } else if !empty {
                        lane.dry_at = None;
                    }
                    // Read this space's next page while the merge works
                    // through this one.
                    if !exhausted && lanes[index].cursor.ahead.is_none() {
                        let held = lanes.iter().map(|lane| lane.buffer.len()).sum();
                        let mark = *self.commits.borrow();
                        lanes[index].start(&self.store, wanted, held, mark);
                    }
                }
            }
            let held: usize = lanes.iter().map(|lane| lane.buffer.len()).sum();
            self.max_held = self.max_held.max(held);
            let best = lanes
                .iter()
                .enumerate()
                .filter_map(|(index, lane)| {
                    let front = lane.buffer.entries.front()?;
                    let segment = lane.buffer.segment(front);
                    Some((front.timestamp, index, segment, front.sequence))
                })
                .min()
                .map(|(_, index, _, _)| index);
            if let Some(index) = best {
                let lane = &mut lanes[index];
                let entry = decode_front(&mut lane.decoder, &mut lane.buffer)?;
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

/// Entries read but not yielded, with the names of their segments.
#[derive(Default)]
struct Buffer {
    entries: VecDeque<RawEntry>,
    segments: Vec<Arc<str>>,
}

impl Buffer {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The segment of `raw`, an entry of this buffer.
    fn segment(&self, raw: &RawEntry) -> &Arc<str> {
        &self.segments[raw.segment]
    }

    /// Appends a page; an empty buffer takes the page's allocations as they
    /// are (no per-entry move).
    fn append(&mut self, page: Page) {
        if self.entries.is_empty() {
            self.entries = VecDeque::from(page.entries);
            self.segments = page.segments;
        } else {
            let base = self.segments.len();
            self.segments.extend(page.segments);
            self.entries
                .extend(page.entries.into_iter().map(|raw| RawEntry {
                    segment: base + raw.segment,
                    ..raw
                }));
        }
    }
}

/// Checks the entry `raw` of `segment` decodes (see
/// [`EntryDecoder::parse`]).
fn parse(decoder: &mut EntryDecoder, segment: &str, raw: &RawEntry) -> Result<Parsed> {
    // The key only names the entry in an error: built only then.
    decoder.parse(&[], &raw.value).map_err(|error| match error {
        Error::Corrupt { reason, .. } => {
            Error::corrupt_at(&keys::dat(decoder.space(), segment, raw.sequence), reason)
        }
        other => other,
    })
}

/// Decodes the entry at the front of `buffer` and removes it; an entry that
/// does not decode stays in front (its error comes again).
#[inline]
fn decode_front(decoder: &mut EntryDecoder, buffer: &mut Buffer) -> Result<Option<Entry>> {
    let Some(raw) = buffer.entries.front() else {
        return Ok(None);
    };
    let parsed = parse(decoder, buffer.segment(raw), raw)?;
    let Some(raw) = buffer.entries.pop_front() else {
        return Ok(None);
    };
    let segment = buffer.segments[raw.segment].clone();
    Ok(Some(decoder.build(
        raw.value,
        parsed,
        segment,
        raw.sequence,
    )))
}

/// Sets `slot` to `entry`'s offset, reusing the segment name's buffer.
fn set_offset(slot: &mut Option<SpaceOffset>, entry: &Entry) {
    match slot {
        Some(offset) => {
            offset.timestamp = entry.timestamp;
            offset.sequence = entry.sequence;
            if offset.segment.as_str() != &*entry.segment {
                offset.segment.clear();
                offset.segment.push_str(&entry.segment);
            }
        }
        None => *slot = Some(entry.offset()),
    }
}
