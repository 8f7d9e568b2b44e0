//! Peek, status, listings and lag counting.

use std::ops::Bound;

use bytes::Bytes;
use seq_core::SpaceOffset;
use seq_storage::{KeyRange, ScanOptions};

use super::codec;
use super::index;
use super::keys;
use super::read::blocking;
use super::status_record;
use super::types::{Entry, SegmentStatus, Trx};
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// The latest entry of a segment. A segment with no retained entry
    /// (never produced to, or trimmed empty) gives an entry with `space` and
    /// `segment` set, sequence 0, timestamp 0, an empty payload and a TRX
    /// with this store's id, no node and number 0.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] for an invalid name,
    /// [`crate::Error::Corrupt`] when the entry does not decode,
    /// [`crate::Error::Storage`] when the read fails.
    pub async fn peek(&self, space: &str, segment: &str) -> Result<Entry> {
        seq_core::validate_name("space", space)?;
        seq_core::validate_name("segment", segment)?;
        let storage = self.storage().clone();
        let id = self.id();
        let (space, segment) = (space.to_owned(), segment.to_owned());
        blocking(move || {
            let prefix = keys::dat_prefix(&space, &segment);
            let newest = storage
                .scan(
                    KeyRange::prefix(prefix),
                    ScanOptions::reverse().with_limit(1),
                )?
                .next();
            match newest {
                Some(item) => {
                    let (key, value) = item?;
                    let seq = keys::dat_seq(&key)?;
                    codec::decode_entry(&key, &value, &space, &segment, seq, id)
                }
                None => Ok(Entry {
                    space: space.into(),
                    segment: segment.into(),
                    trx: Trx {
                        id,
                        ..Trx::default()
                    },
                    ..Entry::default()
                }),
            }
        })
        .await
    }

    /// A segment's status (see [`SegmentStatus`] for empty and trimmed
    /// segments).
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] for an invalid name,
    /// [`crate::Error::Corrupt`] when the stored status does not decode,
    /// [`crate::Error::Storage`] when the read fails.
    pub async fn status(&self, space: &str, segment: &str) -> Result<SegmentStatus> {
        seq_core::validate_name("space", space)?;
        seq_core::validate_name("segment", segment)?;
        let storage = self.storage().clone();
        let (space, segment) = (space.to_owned(), segment.to_owned());
        blocking(move || {
            Ok(status_record::read(&*storage, &space, &segment)?.public(&space, &segment))
        })
        .await
    }

    /// Every space that has been produced to, in name order. Spaces stay
    /// listed after their entries are trimmed.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Corrupt`] for a status key that does not decode,
    /// [`crate::Error::Storage`] when a read fails.
    pub async fn list_spaces(&self) -> Result<Vec<String>> {
        let storage = self.storage().clone();
        blocking(move || {
            let mut spaces = Vec::new();
            let all = keys::inv_all();
            let end = Bound::Excluded(Bytes::from(keys::after_prefix(&all)));
            let mut start = Bound::Included(Bytes::from(all));
            loop {
                let range = KeyRange {
                    start,
                    end: end.clone(),
                };
                let Some(item) = storage
                    .scan(range, ScanOptions::forward().with_limit(1))?
                    .next()
                else {
                    break;
                };
                let (key, _) = item?;
                let (space, _) = keys::parse_inv(&key)?;
                // Skip the rest of this space's segments in one seek.
                start = Bound::Included(Bytes::from(keys::after_prefix(&keys::inv_prefix(&space))));
                spaces.push(space);
            }
            Ok(spaces)
        })
        .await
    }

    /// The status of every segment of `space`, in segment name order.
    ///
    /// # Errors
    ///
    /// As [`Store::list_spaces`], and [`crate::Error::InvalidArgument`] for
    /// an invalid name.
    pub async fn list_segments(&self, space: &str) -> Result<Vec<SegmentStatus>> {
        seq_core::validate_name("space", space)?;
        let storage = self.storage().clone();
        let space = space.to_owned();
        blocking(move || list_statuses(&*storage, Some(&space))).await
    }

    /// How many entries of `space` lie strictly after `offset` (all of them
    /// for `None`): a consumer's lag. Reads the space index from `offset` to
    /// its end in pages; trimmed entries do not count.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] for an invalid name,
    /// [`crate::Error::Corrupt`] for an index record that does not decode,
    /// [`crate::Error::Storage`] when a read fails.
    pub async fn count_after(&self, space: &str, offset: Option<&SpaceOffset>) -> Result<u64> {
        seq_core::validate_name("space", space)?;
        let mut after = offset.cloned();
        let mut total = 0;
        loop {
            let storage = self.storage().clone();
            let space = space.to_owned();
            let from = after.clone();
            let (n, last, done) = blocking(move || {
                index::count_page(&*storage, &space, from.as_ref(), index::COUNT_RECORDS)
            })
            .await?;
            total += n;
            if done || last.is_none() {
                return Ok(total);
            }
            after = last;
        }
    }

    /// Where a consumer that has read everything in `space` stands: the
    /// offset of the newest entry the space index names (`None` when it
    /// names none). When the newest entries were trimmed this is a trimmed
    /// entry's offset, past every retained one: resuming from it skips
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] for an invalid name,
    /// [`crate::Error::Corrupt`] for an index record that does not decode,
    /// [`crate::Error::Storage`] when the read fails.
    pub async fn head_offset(&self, space: &str) -> Result<Option<SpaceOffset>> {
        seq_core::validate_name("space", space)?;
        let storage = self.storage().clone();
        let space = space.to_owned();
        blocking(move || index::head(&*storage, &space)).await
    }
}

/// The statuses of one space, or of every space for `None`, each with the
/// commit number of its last change.
pub(crate) fn list_statuses(
    storage: &dyn seq_storage::Storage,
    space: Option<&str>,
) -> Result<Vec<SegmentStatus>> {
    let prefix = match space {
        Some(space) => keys::inv_prefix(space),
        None => keys::inv_all(),
    };
    let mut out = Vec::new();
    for item in storage.scan(KeyRange::prefix(prefix), ScanOptions::forward())? {
        let (key, value) = item?;
        let (space, segment) = keys::parse_inv(&key)?;
        let stored = status_record::settle(storage, &space, &segment, &key, value)?;
        out.push(stored.public(&space, &segment));
    }
    Ok(out)
}
