//! The space-time index (`IDX`): one record per commit group and space.
//!
//! A record is keyed `IDX + space + timestamp` (the group's timestamp for
//! that space, unique within the space) and lists the *runs* the group
//! appended to the space: `(segment, first, last)`, consecutive sequences
//! the group appended to one segment (one produce's, or several produces'
//! that continue one another, see [`continue_run`]). Expanding the records in
//! key order, and each record's runs sorted by `(segment, first)`, gives
//! every entry of the space in merge order `(timestamp, segment, sequence)`.
//!
//! One record per group and space, not one key per entry: a commit group of
//! 64 single-record produces to 64 segments writes one index record, and a
//! produce of 100 records one run.
//!
//! Record format, version 1, framed by [`seq_core::frame`]: runs back to
//! back, each `segment_len u16 | segment (UTF-8) | first u64 | last u64`,
//! in the order the group's requests appended them (the writer concatenates
//! each accepted request's run, or folds it into the one before when it
//! continues it, see [`crate::writer::GroupTx::append`]).
//!
//! Trims delete entries, not runs: readers skip entries that are gone, lag
//! counts clamp runs to their segment's first retained sequence, and a trim
//! deletes the oldest records once every run in them is trimmed
//! ([`collect_garbage`]).

use std::collections::HashMap;
use std::ops::{Bound, ControlFlow};

use bytes::Bytes;
use seq_core::{SpaceOffset, frame};
use seq_storage::{KeyRange, ScanOptions, Storage};

use super::codec;
use super::keys;
use crate::error::{Error, Result};
use crate::writer::GroupTx;

/// Version byte of an index record.
pub(crate) const INDEX_VERSION: u8 = 1;

/// Fixed bytes of a run besides its segment name.
const RUN_FIXED: usize = 2 + 8 + 8;

/// Consecutive entries `first..=last` of one segment, appended by the group
/// whose record holds the run (by one produce, or by several in a row).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Run {
    /// The segment's name, UTF-8 checked, as a slice of the record.
    pub(crate) segment: Bytes,
    pub(crate) first: u64,
    pub(crate) last: u64,
}

impl Run {
    /// The segment's name.
    pub(crate) fn segment_str(&self) -> &str {
        // Checked when decoded.
        std::str::from_utf8(&self.segment).unwrap_or_default()
    }
}

/// The bytes of one run, as a produce appends them to its group's record.
pub(crate) fn encode_run(segment: &str, first: u64, last: u64) -> Vec<u8> {
    debug_assert!(first <= last && segment.len() <= usize::from(u16::MAX));
    let mut out = Vec::with_capacity(RUN_FIXED + segment.len());
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(segment.as_bytes());
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&last.to_be_bytes());
    out
}

/// Folds the run `next` into the run `last` when it continues it: the same
/// segment, from the sequence after `last`'s. Produces of one group to one
/// segment then take one run between them, not one each. Each of `last`
/// and `next` must be exactly one run (a fold for [`GroupTx::append`]).
pub(crate) fn continue_run(last: &mut [u8], next: &[u8]) -> bool {
    // One run each: its name's length, then exactly name and sequences.
    let one_run = |run: &[u8]| {
        run.first_chunk::<2>()
            .map(|len| usize::from(u16::from_be_bytes(*len)) + RUN_FIXED)
            == Some(run.len())
    };
    if !one_run(last) || !one_run(next) || last.len() != next.len() {
        return false;
    }
    let name = last.len() - 16;
    if last[..name] != next[..name] {
        return false;
    }
    let sequence = |at: &[u8]| at.first_chunk::<8>().map(|raw| u64::from_be_bytes(*raw));
    let (Some(last_end), Some(next_first), Some(next_end)) = (
        sequence(&last[name + 8..]),
        sequence(&next[name..]),
        sequence(&next[name + 8..]),
    ) else {
        return false;
    };
    if last_end.checked_add(1) != Some(next_first) {
        return false;
    }
    last[name + 8..].copy_from_slice(&next_end.to_be_bytes());
    true
}

/// Decodes the record stored at `key` into its runs, sorted by
/// `(segment, first)`: the merge order within the record.
pub(crate) fn decode(key: &[u8], value: &Bytes) -> Result<Vec<Run>> {
    let body = frame::decode_expect(value, INDEX_VERSION).map_err(|e| Error::decode(key, e))?;
    // Where the body starts in `value`, to slice names without copying.
    let base = 1;
    let mut runs = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        let rest = &body[at..];
        if rest.len() < RUN_FIXED {
            return Err(Error::corrupt_at(key, "index record is truncated"));
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < RUN_FIXED + len {
            return Err(Error::corrupt_at(key, "index record is truncated"));
        }
        let name = &rest[2..2 + len];
        if name.is_empty() || std::str::from_utf8(name).is_err() {
            return Err(Error::corrupt_at(
                key,
                "index record names an invalid segment",
            ));
        }
        let word = |from: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&rest[from..from + 8]);
            u64::from_be_bytes(raw)
        };
        let (first, last) = (word(2 + len), word(2 + len + 8));
        if first == 0 || first > last {
            return Err(Error::corrupt_at(
                key,
                format!("index run {first}..={last} is impossible"),
            ));
        }
        let start = base + at + 2;
        runs.push(Run {
            segment: value.slice(start..start + len),
            first,
            last,
        });
        at += RUN_FIXED + len;
    }
    if runs.is_empty() {
        return Err(Error::corrupt_at(key, "index record holds no run"));
    }
    runs.sort_unstable();
    Ok(runs)
}

/// Walks the runs of `space` strictly after `after` (from the start for
/// `None`) in merge order, each cut to the entries after `after`; `f`
/// returns [`ControlFlow::Break`] to stop. Reads at most `max_records`
/// records. Returns whether the walk reached the end of the index (no
/// break, no record left unread).
pub(crate) fn walk(
    storage: &dyn Storage,
    space: &str,
    after: Option<&SpaceOffset>,
    max_records: usize,
    mut f: impl FnMut(u64, Run) -> ControlFlow<()>,
) -> Result<bool> {
    let prefix = keys::idx_prefix(space);
    let start = match after {
        Some(offset) => keys::idx(space, offset.timestamp),
        None => prefix.clone(),
    };
    let range = KeyRange {
        start: Bound::Included(Bytes::from(start)),
        end: Bound::Excluded(Bytes::from(keys::after_prefix(&prefix))),
    };
    let max_records = max_records.max(1);
    let mut read = 0usize;
    for item in storage.scan(range, ScanOptions::forward().with_limit(max_records))? {
        let (key, value) = item?;
        read += 1;
        let timestamp = keys::parse_idx(&key)?;
        for mut run in decode(&key, &value)? {
            if let Some(offset) = after
                && timestamp == offset.timestamp
            {
                match run.segment_str().cmp(offset.segment.as_str()) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => {
                        if run.last <= offset.sequence {
                            continue;
                        }
                        run.first = run.first.max(offset.sequence + 1);
                    }
                    std::cmp::Ordering::Greater => {}
                }
            }
            if f(timestamp, run).is_break() {
                return Ok(false);
            }
        }
    }
    Ok(read < max_records)
}

/// The first retained sequence of each segment that runs name, read once
/// per segment through `read` (a segment without a status has trimmed
/// nothing: 1).
#[derive(Debug, Default)]
struct Firsts(HashMap<Bytes, u64>);

impl Firsts {
    fn get(
        &mut self,
        space: &str,
        run: &Run,
        read: impl FnOnce(&[u8]) -> Result<Option<Bytes>>,
    ) -> Result<u64> {
        if let Some(first) = self.0.get(&run.segment) {
            return Ok(*first);
        }
        let key = keys::inv(space, run.segment_str());
        let first = match read(&key)? {
            Some(value) => codec::decode_status(&key, &value)?.first,
            None => 1,
        };
        self.0.insert(run.segment.clone(), first);
        Ok(first)
    }
}

/// Counts the retained entries of `space` strictly after `after`, reading
/// at most `max_records` index records; returns the count, the position
/// the count reached (to continue from) and whether it reached the end.
pub(crate) fn count_page(
    storage: &dyn Storage,
    space: &str,
    after: Option<&SpaceOffset>,
    max_records: usize,
) -> Result<(u64, Option<SpaceOffset>, bool)> {
    let mut firsts = Firsts::default();
    let mut total = 0u64;
    let mut last = None;
    let mut failed = None;
    let done = walk(
        storage,
        space,
        after,
        max_records,
        |timestamp, run| match firsts.get(space, &run, |key| Ok(storage.get(key)?)) {
            Ok(first) => {
                total += (run.last + 1).saturating_sub(run.first.max(first));
                last = Some((timestamp, run));
                ControlFlow::Continue(())
            }
            Err(error) => {
                failed = Some(error);
                ControlFlow::Break(())
            }
        },
    )?;
    if let Some(error) = failed {
        return Err(error);
    }
    let last = last.map(|(timestamp, run)| SpaceOffset {
        timestamp,
        segment: run.segment_str().to_owned(),
        sequence: run.last,
    });
    Ok((total, last, done))
}

/// Counts the retained entries of `space` strictly after `after`, in pages
/// of index records on one snapshot each.
pub(crate) fn count_after(
    storage: &dyn Storage,
    space: &str,
    after: Option<&SpaceOffset>,
) -> Result<u64> {
    let mut after = after.cloned();
    let mut total = 0;
    loop {
        let (n, last, done) = count_page(storage, space, after.as_ref(), COUNT_RECORDS)?;
        total += n;
        if done || last.is_none() {
            return Ok(total);
        }
        after = last;
    }
}

/// Index records one [`count_page`] reads.
pub(crate) const COUNT_RECORDS: usize = 4096;

/// The position of the newest entry the index of `space` names.
pub(crate) fn head(storage: &dyn Storage, space: &str) -> Result<Option<SpaceOffset>> {
    let range = KeyRange::prefix(keys::idx_prefix(space));
    let Some(item) = storage
        .scan(range, ScanOptions::reverse().with_limit(1))?
        .next()
    else {
        return Ok(None);
    };
    let (key, value) = item?;
    let timestamp = keys::parse_idx(&key)?;
    Ok(decode(&key, &value)?.pop().map(|run| SpaceOffset {
        timestamp,
        segment: run.segment_str().to_owned(),
        sequence: run.last,
    }))
}

/// Deletes the oldest index records of `space` whose runs are all trimmed,
/// examining at most `limit` records and stopping at the first that still
/// names a retained entry (a segment never trimmed keeps the records
/// after its oldest entry). The doomed records are the first ones of the
/// space, so they go in one range delete: one operation of the batch
/// however many there are. Statuses are read unpinned: a segment's first
/// sequence only grows, so a stale one keeps a record, never drops a live
/// one. Returns how many records go.
pub(crate) fn collect_garbage(tx: &mut GroupTx<'_>, space: &str, limit: usize) -> Result<usize> {
    let prefix = keys::idx_prefix(space);
    let mut firsts = Firsts::default();
    let mut doomed: Option<Bytes> = None;
    let mut n = 0;
    let options = ScanOptions::forward().with_limit(limit.max(1));
    'records: for item in tx.scan_committed(KeyRange::prefix(prefix.clone()), options)? {
        let (key, value) = item?;
        for run in decode(&key, &value)? {
            if run.last >= firsts.get(space, &run, |key| tx.get_unpinned(key))? {
                break 'records;
            }
        }
        doomed = Some(key);
        n += 1;
    }
    if let Some(last) = doomed {
        let mut end = last.to_vec();
        end.push(0);
        tx.delete_range(prefix, end);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(runs: &[(&str, u64, u64)]) -> Bytes {
        let mut body = Vec::new();
        for &(segment, first, last) in runs {
            // By hand, so impossible runs can be written too.
            body.extend_from_slice(&(segment.len() as u16).to_be_bytes());
            body.extend_from_slice(segment.as_bytes());
            body.extend_from_slice(&first.to_be_bytes());
            body.extend_from_slice(&last.to_be_bytes());
        }
        Bytes::from(frame::encode(INDEX_VERSION, &body))
    }

    #[test]
    fn an_encoded_run_decodes() {
        let value = Bytes::from(frame::encode(INDEX_VERSION, &encode_run("eu", 3, 7)));
        let runs = decode(b"k", &value).unwrap();
        assert_eq!(
            runs.iter()
                .map(|r| (r.segment_str(), r.first, r.last))
                .collect::<Vec<_>>(),
            [("eu", 3, 7)]
        );
    }

    #[test]
    fn runs_come_back_in_merge_order() {
        let value = record(&[("b", 4, 4), ("a", 7, 9), ("b", 1, 3)]);
        let runs = decode(b"k", &value).unwrap();
        let flat: Vec<(&str, u64, u64)> = runs
            .iter()
            .map(|r| (r.segment_str(), r.first, r.last))
            .collect();
        assert_eq!(flat, [("a", 7, 9), ("b", 1, 3), ("b", 4, 4)]);
    }

    #[test]
    fn every_truncation_and_flip_is_corrupt() {
        let value = record(&[("seg", 1, 2), ("x", 5, 5)]);
        for len in 0..value.len() {
            assert!(matches!(
                decode(b"k", &value.slice(..len)),
                Err(Error::Corrupt { .. })
            ));
        }
        for i in 0..value.len() {
            let mut bad = value.to_vec();
            bad[i] ^= 0x01;
            assert!(matches!(
                decode(b"k", &Bytes::from(bad)),
                Err(Error::Corrupt { .. })
            ));
        }
    }

    fn runs(body: &[u8]) -> Vec<(String, u64, u64)> {
        let value = Bytes::from(frame::encode(INDEX_VERSION, body));
        decode(b"k", &value)
            .unwrap()
            .iter()
            .map(|r| (r.segment_str().to_owned(), r.first, r.last))
            .collect()
    }

    #[test]
    fn a_run_continuing_the_last_one_folds_into_it() {
        let mut last = encode_run("eu", 3, 7);
        assert!(continue_run(&mut last, &encode_run("eu", 8, 8)));
        assert!(continue_run(&mut last, &encode_run("eu", 9, 12)));
        assert_eq!(runs(&last), [("eu".to_owned(), 3, 12)]);
    }

    #[test]
    fn runs_that_do_not_continue_stay_apart() {
        for next in [
            encode_run("eu", 9, 9),                                    // a gap
            encode_run("eu", 7, 9),                                    // an overlap
            encode_run("us", 8, 8),                                    // another segment
            encode_run("eux", 8, 8),                                   // a longer name
            [encode_run("eu", 8, 8), encode_run("eu", 9, 9)].concat(), // two runs
        ] {
            let mut last = encode_run("eu", 3, 7);
            assert!(!continue_run(&mut last, &next), "{next:?}");
            assert_eq!(last, encode_run("eu", 3, 7));
        }
        let mut last = encode_run("eu", 1, u64::MAX);
        assert!(!continue_run(&mut last, &encode_run("eu", 0, 0)));
    }

    proptest::proptest! {
        /// Appending runs, folding where they continue, describes the same
        /// entries as appending each run on its own.
        #[test]
        fn folding_keeps_the_entries_a_record_lists(
            steps in proptest::collection::vec((0u8..3, 0u64..3, 1u64..4), 1..40),
        ) {
            let mut next = [1u64; 3];
            let (mut folded, mut plain): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
            let mut last_part = 0;
            for (segment, gap, len) in steps {
                let name = ["a", "b", "c"][usize::from(segment)];
                let first = next[usize::from(segment)] + gap;
                let last = first + len - 1;
                next[usize::from(segment)] = last + 1;
                let part = encode_run(name, first, last);
                plain.extend_from_slice(&part);
                if folded.is_empty() || !continue_run(&mut folded[last_part..], &part) {
                    last_part = folded.len();
                    folded.extend_from_slice(&part);
                }
            }
            let expand = |runs: Vec<(String, u64, u64)>| -> Vec<(String, u64)> {
                let mut all: Vec<(String, u64)> = runs
                    .into_iter()
                    .flat_map(|(s, first, last)| (first..=last).map(move |q| (s.clone(), q)))
                    .collect();
                all.sort();
                all
            };
            proptest::prop_assert!(folded.len() <= plain.len());
            proptest::prop_assert_eq!(expand(runs(&folded)), expand(runs(&plain)));
        }
    }

    #[test]
    fn impossible_runs_are_corrupt() {
        for runs in [
            &[("a", 0, 1)][..],
            &[("a", 3, 2)][..],
            &[("", 1, 1)][..],
            &[][..],
        ] {
            assert!(
                matches!(decode(b"k", &record(runs)), Err(Error::Corrupt { .. })),
                "{runs:?}"
            );
        }
    }
}
