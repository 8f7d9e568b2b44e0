//! The values the stream API takes and returns: records in, entries and
//! statuses out, and the options and queries of each call.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use seq_core::{ExpectedSequence, SpaceOffset};
use uuid::Uuid;

use crate::lease::Fence;
use crate::options::WriteOptions;

/// One record to append with [`crate::Store::produce`].
///
/// ```
/// use seq_stream::Record;
///
/// let record = Record::new("hello")
///     .with_sequence(1)
///     .with_metadata("content-type", "text/plain")
///     .with_idempotency_key("order-42");
/// assert_eq!(record.payload, "hello");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The sequence this record must get: `0` (the default) takes the
    /// segment's next; any other value must equal it, else the whole produce
    /// fails with [`crate::Error::SequenceMismatch`].
    pub sequence: u64,
    /// The payload, at most [`crate::StoreOptions::max_payload`] bytes.
    pub payload: Bytes,
    /// Free-form string metadata stored with the entry.
    pub metadata: BTreeMap<String, String>,
    /// With a key, a retry of this record on the same segment returns the
    /// sequence it got the first time instead of appending it again (within
    /// the window described at [`IDEMPOTENCY_WINDOW`]).
    pub idempotency_key: Option<String>,
}

impl Record {
    /// A record with `payload`, sequence 0 ("next"), no metadata and no
    /// idempotency key.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            payload: payload.into(),
            ..Self::default()
        }
    }

    /// The same record, required to get `sequence` (0 = next).
    pub fn with_sequence(mut self, sequence: u64) -> Self {
        self.sequence = sequence;
        self
    }

    /// The same record with one more metadata pair (replacing `key`'s value).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The same record with an idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// How many sequences back a segment remembers idempotency keys.
///
/// A key is found again while the record it named is among the segment's
/// last `IDEMPOTENCY_WINDOW` sequences *and* has not been trimmed by
/// retention ([`crate::Store::trim`] forgets the keys of the entries it
/// removes). Older keys are forgotten in steps of 1,024 sequences, so the
/// window may briefly hold a little more.
pub const IDEMPOTENCY_WINDOW: u64 = 65_536;

/// The transaction that wrote an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Trx {
    /// The store's UUID.
    pub id: Uuid,
    /// The node name of the store that wrote it ([`crate::StoreOptions::node`]);
    /// shared between entries that carry the same one.
    pub node: Arc<str>,
    /// The commit number of the produce that wrote it.
    pub number: u64,
}

/// One entry read back from a segment.
///
/// Entries read together share their names (the [`Arc<str>`] fields are
/// reference-counted, not copied per entry) and their payload is a slice of
/// the buffer storage returned ([`Bytes`], not a copy). Keeping an entry
/// keeps that buffer alive: a backend may return several neighbouring
/// entries in one buffer (redb: up to 32 KiB), so copy a payload
/// ([`Bytes::copy_from_slice`]) to keep it long without its neighbours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The space.
    pub space: Arc<str>,
    /// The segment.
    pub segment: Arc<str>,
    /// Its sequence: dense within the segment, starting at 1.
    pub sequence: u64,
    /// Its commit group's timestamp (µs since the Unix epoch), never
    /// decreasing within a segment and strictly increasing between commit
    /// groups within a space.
    pub timestamp: u64,
    /// The transaction that wrote it.
    pub trx: Trx,
    /// The payload.
    pub payload: Bytes,
    /// The metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Entry {
    /// The entry's position in its space's merged order, to resume a
    /// [`crate::Store::consume_space`] strictly after it.
    pub fn offset(&self) -> SpaceOffset {
        SpaceOffset {
            timestamp: self.timestamp,
            segment: self.segment.to_string(),
            sequence: self.sequence,
        }
    }
}

/// What a segment holds.
///
/// `count == last_sequence + 1 - first_sequence` always holds:
///
/// * a segment never produced to has `first_sequence == 1`,
///   `last_sequence == 0`, `count == 0` and zero timestamps;
/// * a segment whose entries were all trimmed keeps its `last_sequence`
///   and `last_timestamp` (the next produce continues above them), has
///   `first_sequence == last_sequence + 1`, `count == 0` and
///   `first_timestamp == 0`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SegmentStatus {
    /// The space.
    pub space: String,
    /// The segment.
    pub segment: String,
    /// Sequence of the oldest retained entry (`last_sequence + 1` when none
    /// is retained).
    pub first_sequence: u64,
    /// Sequence of the newest entry ever produced (0 when none was);
    /// survives trims.
    pub last_sequence: u64,
    /// Timestamp of the oldest retained entry (0 when none is retained).
    pub first_timestamp: u64,
    /// Timestamp of the newest entry ever produced (0 when none was).
    pub last_timestamp: u64,
    /// Entries retained.
    pub count: u64,
}

impl SegmentStatus {
    /// The status of a segment never produced to.
    pub fn empty(space: impl Into<String>, segment: impl Into<String>) -> Self {
        Self {
            space: space.into(),
            segment: segment.into(),
            first_sequence: 1,
            ..Self::default()
        }
    }

    /// Whether no entry is retained.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Options of one [`crate::Store::produce`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceOptions {
    /// Durability and commit number of the write.
    pub write: WriteOptions,
    /// A fencing token: the produce is accepted only while it is current
    /// ([`crate::Error::Fenced`] otherwise).
    pub fence: Option<Fence>,
    /// A check of the segment's last sequence before the append (e.g.
    /// [`ExpectedSequence::NoStream`] for "only if empty"); a miss is
    /// [`crate::Error::SequenceMismatch`] with `actual` = the last sequence.
    pub expected: Option<ExpectedSequence>,
}

impl ProduceOptions {
    /// The same options with a fencing token.
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// The same options with an expected last sequence.
    pub fn with_expected(mut self, expected: ExpectedSequence) -> Self {
        self.expected = Some(expected);
        self
    }

    /// The same options with these write options.
    pub fn with_write(mut self, write: WriteOptions) -> Self {
        self.write = write;
        self
    }
}

/// What [`crate::Store::produce_receipt`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceReceipt {
    /// The segment's status after the produce.
    pub status: SegmentStatus,
    /// The sequence of each input record, in input order: the new one, or
    /// for a duplicate idempotency key the one it got originally.
    pub sequences: Vec<u64>,
    /// How many records were appended (the rest were duplicates).
    pub appended: usize,
    /// The commit number of the produce (also for a pure retry, which
    /// commits nothing of its own).
    pub commit: u64,
}

/// What [`crate::Store::consume_segment`] reads. The default reads the
/// whole segment once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentQuery {
    /// Smallest sequence (inclusive); 0 or 1 = from the first retained.
    pub min_seq: u64,
    /// Largest sequence (inclusive); `None` = no bound.
    pub max_seq: Option<u64>,
    /// Smallest timestamp (inclusive).
    pub min_ts: Option<u64>,
    /// Largest timestamp (inclusive); the stream ends at the first entry
    /// above it (timestamps never decrease within a segment).
    pub max_ts: Option<u64>,
    /// Most entries to yield; `None` = no limit.
    pub limit: Option<u64>,
    /// After history, wait for new entries instead of ending.
    pub follow: bool,
    /// The most entries read per storage round trip (the first pages are
    /// smaller, see [`crate::EntryStream`]); 0 = [`DEFAULT_PAGE_SIZE`].
    pub page_size: usize,
}

/// What [`crate::Store::consume_space`] reads. The default reads the whole
/// space once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaceQuery {
    /// Resume strictly after this offset (from [`Entry::offset`]); `None` =
    /// from the beginning.
    pub offset: Option<SpaceOffset>,
    /// Most entries to yield; `None` = no limit.
    pub limit: Option<u64>,
    /// After history, wait for new entries instead of ending.
    pub follow: bool,
    /// The most entries read per storage round trip (the first pages are
    /// smaller, see [`crate::EntryStream`]); 0 = [`DEFAULT_PAGE_SIZE`].
    pub page_size: usize,
}

/// What [`crate::Store::consume`] reads: several spaces merged by
/// timestamp.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiQuery {
    /// The spaces to read, each resumed strictly after its offset (`None` =
    /// from its beginning).
    pub offsets: BTreeMap<String, Option<SpaceOffset>>,
    /// Most entries to yield; `None` = no limit.
    pub limit: Option<u64>,
    /// After history, wait for new entries instead of ending.
    pub follow: bool,
    /// The most entries read per storage round trip and space (the first
    /// pages are smaller, see [`crate::EntryStream`]); 0 =
    /// [`DEFAULT_PAGE_SIZE`].
    pub page_size: usize,
}

/// The most entries a consume reads per storage round trip unless its
/// query says otherwise (its first pages are smaller, see
/// [`crate::EntryStream`]).
pub const DEFAULT_PAGE_SIZE: usize = 4096;

/// Bytes a consume aims to hold per page: a page stops early once its
/// entries' stored values reach this size (a single larger entry still
/// makes a page). A segment or space stream holds at most two pages.
pub const PAGE_BYTES: usize = 2 << 20;

/// Which entries [`crate::Store::trim`] removes from the start of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// Every entry with a sequence below this one.
    BeforeSequence(u64),
    /// All but the newest `n` entries.
    KeepLast(u64),
    /// Every entry with a timestamp (µs) below this one.
    OlderThan(u64),
}

/// What [`crate::Store::trim`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrimReport {
    /// Entries removed.
    pub removed: u64,
    /// The segment's status afterwards.
    pub status: SegmentStatus,
}
