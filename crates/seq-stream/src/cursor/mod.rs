//! Named durable consumer cursors (`CUR` + name).
//!
//! A cursor remembers, under a name, how far a consumer got:
//!
//! * per **space**, the [`SpaceOffset`] of the last entry consumed from that
//!   space's merged order (what `Entry::offset` returns; a space consume
//!   resumes strictly after it);
//! * per **segment** (`(space, segment)`), the sequence of the last entry
//!   consumed from that segment (a segment consume resumes at `sequence + 1`).
//!
//! A consumer may use either or both. Commits go through the single writer
//! and are durable when they return.
//!
//! **Cursors never go backwards.** [`Store::commit_cursor`] merges the given
//! position into the stored one and rejects, with [`Error::Conflict`] and
//! without writing anything, any space offset or segment sequence below the
//! stored one (typically a stale consumer racing a newer one). Only
//! [`Store::reset_cursor`] moves a cursor back.

mod record;

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use seq_core::SpaceOffset;
use seq_core::keys::{KeyBuilder, keyspace, prefix_upper_bound};
use seq_storage::{KeyRange, ScanOptions, Storage};

use crate::error::{Error, Result};
use crate::options::WriteOptions;
use crate::store::Store;

/// How far a consumer got: per space and/or per segment.
///
/// ```
/// use seq_core::SpaceOffset;
/// use seq_stream::CursorPosition;
///
/// let position = CursorPosition::new()
///     .with_space("orders", SpaceOffset { timestamp: 17, segment: "eu".into(), sequence: 4 })
///     .with_segment("orders", "us", 12);
/// assert_eq!(position.segment("orders", "us"), Some(12));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CursorPosition {
    /// Per space: the offset of the last entry consumed from the space's
    /// merged order. [`SpaceOffset::default`] means "nothing consumed yet".
    pub spaces: BTreeMap<String, SpaceOffset>,
    /// Per `(space, segment)`: the sequence of the last entry consumed from
    /// the segment (0 = nothing consumed yet).
    pub segments: BTreeMap<(String, String), u64>,
}

impl CursorPosition {
    /// An empty position.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same position with `space` at `offset`.
    pub fn with_space(mut self, space: impl Into<String>, offset: SpaceOffset) -> Self {
        self.spaces.insert(space.into(), offset);
        self
    }

    /// The same position with segment `(space, segment)` at `sequence`.
    pub fn with_segment(
        mut self,
        space: impl Into<String>,
        segment: impl Into<String>,
        sequence: u64,
    ) -> Self {
        self.segments
            .insert((space.into(), segment.into()), sequence);
        self
    }

    /// The offset recorded for `space`.
    pub fn space(&self, space: &str) -> Option<&SpaceOffset> {
        self.spaces.get(space)
    }

    /// The sequence recorded for `(space, segment)`.
    pub fn segment(&self, space: &str, segment: &str) -> Option<u64> {
        self.segments
            .get(&(space.to_owned(), segment.to_owned()))
            .copied()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.spaces.is_empty() && self.segments.is_empty()
    }

    fn validate(&self) -> Result<()> {
        for space in self.spaces.keys() {
            seq_core::validate_name("space", space)?;
        }
        for (space, segment) in self.segments.keys() {
            seq_core::validate_name("space", space)?;
            seq_core::validate_name("segment", segment)?;
        }
        Ok(())
    }

    /// Merges `newer` into `self`; [`Error::Conflict`] (and `self`
    /// unchanged) when anything in `newer` is below what `self` holds.
    fn advance(&mut self, cursor: &str, newer: CursorPosition) -> Result<()> {
        for (space, offset) in &newer.spaces {
            if let Some(stored) = self.spaces.get(space)
                && offset < stored
            {
                return Err(Error::Conflict {
                    what: format!(
                        "cursor {cursor:?}: offset {} for space {space:?} is below the committed {}",
                        offset.to_hex(),
                        stored.to_hex()
                    ),
                });
            }
        }
        for ((space, segment), sequence) in &newer.segments {
            if let Some(stored) = self.segments.get(&(space.clone(), segment.clone()))
                && sequence < stored
            {
                return Err(Error::Conflict {
                    what: format!(
                        "cursor {cursor:?}: sequence {sequence} for segment {space:?}/{segment:?} is below the committed {stored}"
                    ),
                });
            }
        }
        self.spaces.extend(newer.spaces);
        self.segments.extend(newer.segments);
        Ok(())
    }
}

/// A stored cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The cursor's name.
    pub name: String,
    /// Its position.
    pub position: CursorPosition,
    /// Commit number of the last commit or reset.
    pub commit: u64,
    /// Timestamp (µs since the Unix epoch) of the last commit or reset.
    pub updated_at: u64,
}

/// How far a cursor is behind the heads of what it tracks: the number of
/// retained entries after its position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lag {
    /// Per space of the cursor: entries of the space after its offset.
    pub spaces: BTreeMap<String, u64>,
    /// Per segment of the cursor: entries of the segment after its sequence.
    pub segments: BTreeMap<(String, String), u64>,
}

impl Lag {
    /// The sum over spaces and segments (an entry tracked both through its
    /// space and its segment counts twice).
    pub fn total(&self) -> u64 {
        self.spaces
            .values()
            .chain(self.segments.values())
            .fold(0u64, |a, b| a.saturating_add(*b))
    }
}

fn check_name(name: &str) -> Result<()> {
    seq_core::validate_name("cursor", name).map_err(Error::from)
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        what: format!("cursor {name:?}"),
    }
}

impl Store {
    /// Commits `position` to cursor `name` (creating the cursor) and returns
    /// the stored cursor. The position is merged into the stored one: spaces
    /// and segments it names are moved forward (or kept equal), others are
    /// kept. Durable when it returns.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidArgument`]: an invalid cursor, space or segment name
    ///   (empty, over 255 bytes, a control byte).
    /// * [`Error::Conflict`]: an offset or sequence is below the committed
    ///   one (cursors never go backwards; see [`Store::reset_cursor`]).
    ///   Nothing is written.
    /// * [`Error::Corrupt`]: the stored record does not decode.
    /// * [`Error::Storage`] / [`Error::Closed`]: the write failed or the store
    ///   is closed.
    pub async fn commit_cursor(&self, name: &str, position: CursorPosition) -> Result<Cursor> {
        self.write_cursor(name, position, false).await
    }

    /// Sets cursor `name` to exactly `position` (creating it), moving it
    /// backwards if need be: spaces and segments not in `position` are
    /// forgotten. For replays and operator fixes.
    ///
    /// # Errors
    ///
    /// As [`Store::commit_cursor`], except that it never fails with
    /// [`Error::Conflict`].
    pub async fn reset_cursor(&self, name: &str, position: CursorPosition) -> Result<Cursor> {
        self.write_cursor(name, position, true).await
    }

    async fn write_cursor(
        &self,
        name: &str,
        position: CursorPosition,
        reset: bool,
    ) -> Result<Cursor> {
        check_name(name)?;
        position.validate()?;
        let key = record::key(name);
        let name = name.to_owned();
        let (cursor, _) = self
            .execute(WriteOptions::durable(), move |tx| {
                let mut stored = match tx.get(&key)? {
                    Some(bytes) if !reset => record::decode(&key, &bytes)?.position,
                    _ => CursorPosition::default(),
                };
                stored.advance(&name, position.clone())?;
                let cursor = Cursor {
                    name: name.clone(),
                    position: stored,
                    commit: tx.commit,
                    updated_at: tx.timestamp,
                };
                tx.put(key.clone(), record::encode(&cursor));
                Ok(cursor)
            })
            .await?;
        Ok(cursor)
    }

    /// Loads cursor `name` (`None` when it does not exist).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an invalid name, [`Error::Corrupt`]
    /// when the record does not decode, [`Error::Storage`] /
    /// [`Error::Closed`] when the read fails.
    pub async fn load_cursor(&self, name: &str) -> Result<Option<Cursor>> {
        check_name(name)?;
        let key = record::key(name);
        blocking_read(self, move |storage| {
            storage
                .get(&key)?
                .map(|bytes| record::decode(&key, &bytes))
                .transpose()
        })
        .await
    }

    /// Deletes cursor `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an invalid name, [`Error::NotFound`]
    /// when it does not exist, [`Error::Storage`] / [`Error::Closed`] when
    /// the write fails.
    pub async fn delete_cursor(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let key = record::key(name);
        let owned = name.to_owned();
        self.execute(WriteOptions::durable(), move |tx| {
            if tx.get(&key)?.is_none() {
                return Err(not_found(&owned));
            }
            tx.delete(key.clone());
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Every cursor, in name order.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for a record that does not decode;
    /// [`Error::Storage`] / [`Error::Closed`] when the scan fails.
    pub async fn list_cursors(&self) -> Result<Vec<Cursor>> {
        blocking_read(self, |storage| {
            let mut out = Vec::new();
            for item in storage.scan(KeyRange::prefix(keyspace::CUR), ScanOptions::forward())? {
                let (key, value) = item?;
                out.push(record::decode(&key, &value)?);
            }
            Ok(out)
        })
        .await
    }

    /// How far cursor `name` is behind: per space of its position, the
    /// entries of the space after its offset (counted in the space-time
    /// index `IDX`, a run of entries at a time); per segment, the entries of
    /// the segment after its sequence (counted in `DAT`). Only retained
    /// entries count: trimmed ones are not "behind". Each segment, and each
    /// page of a space's index, is counted on its own storage snapshot, so
    /// under concurrent produces the figures are a lower bound of the lag
    /// when the call returns. Counting walks the index records and the
    /// segments' entries, so its cost grows with the lag.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an invalid name, [`Error::NotFound`]
    /// when the cursor does not exist, [`Error::Corrupt`] /
    /// [`Error::Storage`] / [`Error::Closed`] as for
    /// [`Store::load_cursor`].
    pub async fn cursor_lag(&self, name: &str) -> Result<Lag> {
        let cursor = self
            .load_cursor(name)
            .await?
            .ok_or_else(|| not_found(name))?;
        blocking_read(self, move |storage| {
            let mut lag = Lag::default();
            for (space, offset) in cursor.position.spaces {
                let behind = crate::stream::index::count_after(storage, &space, Some(&offset))?;
                lag.spaces.insert(space, behind);
            }
            for ((space, segment), sequence) in cursor.position.segments {
                let after = KeyBuilder::new(keyspace::DAT)
                    .str(&space)
                    .str(&segment)
                    .u64(sequence)
                    .build();
                let prefix = KeyBuilder::new(keyspace::DAT)
                    .str(&space)
                    .str(&segment)
                    .build();
                lag.segments
                    .insert((space, segment), count_after(storage, after, &prefix)?);
            }
            Ok(lag)
        })
        .await
    }
}

/// Counts the keys above `after` that start with `prefix`.
fn count_after(storage: &dyn Storage, after: Vec<u8>, prefix: &[u8]) -> Result<u64> {
    let end = match prefix_upper_bound(prefix) {
        Some(end) => Bound::Excluded(Bytes::from(end)),
        None => Bound::Unbounded,
    };
    let range = KeyRange {
        start: Bound::Excluded(Bytes::from(after)),
        end,
    };
    let mut count = 0u64;
    for item in storage.scan(range, ScanOptions::forward())? {
        item?;
        count += 1;
    }
    Ok(count)
}

/// Runs a read on the blocking pool (storage calls may block on I/O).
pub(crate) async fn blocking_read<T, F>(store: &Store, read: F) -> Result<T>
where
    F: FnOnce(&dyn Storage) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let storage = store.storage().clone();
    tokio::task::spawn_blocking(move || read(&*storage))
        .await
        .map_err(|e| Error::closed(format!("a storage read panicked: {e}")))?
}
