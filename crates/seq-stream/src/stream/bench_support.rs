//! Stream workloads for benchmarks (`benches/streams.rs`, `cargo xtask
//! bench`): each runs against a [`Store`] (or its raw storage, for the
//! baseline) and returns a [`Measurement`]. Nothing here asserts a speed.

use std::ops::Bound;
use std::time::Instant;

use bytes::Bytes;
use seq_storage::{Durability, KeyRange, ScanOptions, Storage, WriteBatch};

use super::EntryStream;
use super::keys;
use super::types::{MultiQuery, ProduceOptions, Record, SegmentQuery, SpaceQuery};
use crate::error::{Error, Result};
use crate::store::Store;

pub use seq_storage::baseline::Measurement;

/// Where the producers of [`produce`] append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Each producer to a segment of its own (`p0`, `p1`, …): a commit
    /// group appends to as many segments as it has producers.
    SegmentEach,
    /// Every producer to segment `p0`, each record taking the next
    /// sequence: many clients appending to one log, so a commit group's
    /// entries are adjacent.
    OneSegment,
}

impl Placement {
    /// The segment producer `p` appends to.
    fn segment(self, p: usize) -> String {
        match self {
            Self::SegmentEach => format!("p{p}"),
            Self::OneSegment => "p0".to_owned(),
        }
    }
}

/// `producers` concurrent tasks each produce `per_producer` single-record,
/// synced batches of `payload` bytes to space `space`, placed by
/// `placement`.
///
/// # Errors
///
/// The first produce error.
pub async fn produce(
    store: &Store,
    space: &str,
    producers: usize,
    per_producer: usize,
    payload: usize,
    placement: Placement,
) -> Result<Measurement> {
    let body = Bytes::from(vec![0x5Au8; payload]);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(producers);
    for p in 0..producers {
        let store = store.clone();
        let body = body.clone();
        let space = space.to_owned();
        tasks.push(tokio::spawn(async move {
            let segment = placement.segment(p);
            for _ in 0..per_producer {
                store
                    .produce(
                        &space,
                        &segment,
                        vec![Record::new(body.clone())],
                        ProduceOptions::default(),
                    )
                    .await?;
            }
            Ok::<(), Error>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| Error::closed(format!("producer task failed: {e}")))??;
    }
    let ops = (producers * per_producer) as u64;
    Ok(Measurement {
        name: "produce",
        ops,
        bytes: ops * payload as u64,
        elapsed: started.elapsed(),
    })
}

/// The raw baseline for [`produce`]: `total` records of `payload` bytes
/// (one key each, shaped like an entry key) written straight to storage in
/// synced batches of `per_batch` records, the best grouping the writer
/// could achieve. Like a log, it appends: the keys are those of segment
/// `"raw"` of `space` from sequence `first_seq` on, so a caller that runs it
/// in chunks continues each chunk where the last ended (rewriting the same
/// keys would keep a B-tree backend's tree small and its pages hot, which a
/// log that grows never is).
///
/// # Errors
///
/// The first storage error.
pub fn raw_batch_write(
    storage: &dyn Storage,
    space: &str,
    first_seq: u64,
    total: usize,
    per_batch: usize,
    payload: usize,
) -> Result<Measurement> {
    let body = Bytes::from(vec![0x5Au8; payload]);
    let per_batch = per_batch.max(1);
    let started = Instant::now();
    let mut written = 0usize;
    while written < total {
        let mut batch = WriteBatch::new();
        for _ in 0..per_batch.min(total - written) {
            batch.put(
                keys::dat(space, "raw", first_seq + written as u64),
                body.clone(),
            );
            written += 1;
        }
        storage.write(batch, Durability::Sync)?;
    }
    let ops = total as u64;
    Ok(Measurement {
        name: "raw batch write",
        ops,
        bytes: ops * payload as u64,
        elapsed: started.elapsed(),
    })
}

/// A second raw baseline for [`produce`], shaped like its placement: `total`
/// records written as rounds of one record to each of `segments` segments
/// of `space` (entry keys, as [`produce`]'s producers write them), one
/// synced batch per round, appending from sequence `first_seq`. Where
/// [`raw_batch_write`] puts a batch in adjacent keys, this spreads it over
/// the segments, as many B-tree pages as a commit group of seq touches.
///
/// # Errors
///
/// The first storage error.
pub fn raw_spread_write(
    storage: &dyn Storage,
    space: &str,
    segments: usize,
    first_seq: u64,
    total: usize,
    payload: usize,
) -> Result<Measurement> {
    let body = Bytes::from(vec![0x5Au8; payload]);
    let segments = segments.max(1);
    let names: Vec<String> = (0..segments).map(|p| format!("p{p}")).collect();
    let started = Instant::now();
    let mut written = 0usize;
    let mut seq = first_seq;
    while written < total {
        let mut batch = WriteBatch::new();
        for name in names.iter().take(total - written) {
            batch.put(keys::dat(space, name, seq), body.clone());
            written += 1;
        }
        storage.write(batch, Durability::Sync)?;
        seq += 1;
    }
    let ops = total as u64;
    Ok(Measurement {
        name: "raw spread write",
        ops,
        bytes: ops * payload as u64,
        elapsed: started.elapsed(),
    })
}

/// A third baseline for [`produce`]: the least any group commit over the
/// raw backend does. `producers` tasks, shaped and placed as [`produce`]'s,
/// each send `per_producer` single records of `payload` bytes, awaiting
/// each acknowledgement, to one thread that writes whatever has queued as
/// one synced batch of entry keys of `space` and then acknowledges it: a
/// channel, a thread and the backend's write, with none of seq's numbering,
/// checks, index or pacing. Where [`raw_batch_write`] writes batches
/// prepared in a loop, this pays what serving callers who wait for their
/// acknowledgements costs on the machine (the thread wake-ups, the callers'
/// round trip), so a produce's ratio to it is what seq itself costs. The
/// thread numbers each segment's keys from `first_seq` on; a caller that
/// runs it in chunks passes a `first_seq` above the last chunk's, such as
/// the previous one plus the records written.
///
/// # Errors
///
/// The first storage error.
pub async fn raw_group_commit(
    storage: std::sync::Arc<dyn Storage>,
    space: &str,
    producers: usize,
    per_producer: usize,
    payload: usize,
    placement: Placement,
    first_seq: u64,
) -> Result<Measurement> {
    type Request = (usize, tokio::sync::oneshot::Sender<()>);
    let body = Bytes::from(vec![0x5Au8; payload]);
    let (sender, receiver) = std::sync::mpsc::channel::<Request>();
    let space_owned = space.to_owned();
    let writer = std::thread::spawn(move || {
        let segments: Vec<String> = (0..producers).map(|p| placement.segment(p)).collect();
        let mut next = vec![first_seq; producers];
        while let Ok(first) = receiver.recv() {
            let mut group = vec![first];
            group.extend(receiver.try_iter());
            let mut batch = WriteBatch::new();
            for (p, _) in &group {
                let lane = match placement {
                    Placement::SegmentEach => *p,
                    Placement::OneSegment => 0,
                };
                batch.put(
                    keys::dat(&space_owned, &segments[lane], next[lane]),
                    body.clone(),
                );
                next[lane] += 1;
            }
            // On a failed write the thread ends, and so do its callers.
            storage.write(batch, Durability::Sync)?;
            for (_, ack) in group {
                let _ = ack.send(());
            }
        }
        Ok::<(), seq_storage::Error>(())
    });
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(producers);
    for p in 0..producers {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_producer {
                let (ack, acked) = tokio::sync::oneshot::channel();
                sender
                    .send((p, ack))
                    .map_err(|_| Error::closed("the group commit thread ended"))?;
                acked
                    .await
                    .map_err(|_| Error::closed("the group commit thread ended"))?;
            }
            Ok::<(), Error>(())
        }));
    }
    drop(sender);
    let mut outcome = Ok(());
    for task in tasks {
        let ended = task
            .await
            .map_err(|e| Error::closed(format!("producer task failed: {e}")));
        if outcome.is_ok() {
            outcome = ended.and_then(|r| r);
        }
    }
    let elapsed = started.elapsed();
    // The thread's own error says why its callers ended.
    writer
        .join()
        .map_err(|_| Error::closed("the group commit thread panicked"))??;
    outcome?;
    let ops = (producers * per_producer) as u64;
    Ok(Measurement {
        name: "raw group commit",
        ops,
        bytes: ops * payload as u64,
        elapsed,
    })
}

/// Fills `segments` segments of `space` with `per_segment` entries of
/// `payload` bytes each, interleaved (batches of 256 records, buffered,
/// then one flush). Setup for the consume workloads.
///
/// # Errors
///
/// The first produce error.
pub async fn fill(
    store: &Store,
    space: &str,
    segments: usize,
    per_segment: usize,
    payload: usize,
) -> Result<()> {
    let body = Bytes::from(vec![0xA5u8; payload]);
    let mut done = 0;
    while done < per_segment {
        let n = 256.min(per_segment - done);
        for s in 0..segments {
            let records = (0..n).map(|_| Record::new(body.clone())).collect();
            let options = ProduceOptions::default().with_write(crate::WriteOptions::buffered());
            store
                .produce(space, &format!("s{s}"), records, options)
                .await?;
        }
        done += n;
    }
    store.flush().await?;
    Ok(())
}

/// Reads `stream` to its end in batches of 1024; returns the entries and
/// payload bytes read.
///
/// # Errors
///
/// The first read error.
pub async fn read_to_end(stream: &mut EntryStream) -> Result<(u64, u64)> {
    let (mut entries, mut bytes) = (0u64, 0u64);
    loop {
        let batch = stream.next_batch(1024).await?;
        if batch.is_empty() {
            return Ok((entries, bytes));
        }
        entries += batch.len() as u64;
        bytes += batch.iter().map(|e| e.payload.len() as u64).sum::<u64>();
    }
}

/// Reads segment `segment` of `space` to its end with
/// [`Store::consume_segment`].
///
/// # Errors
///
/// The first read error.
pub async fn consume_segment(store: &Store, space: &str, segment: &str) -> Result<Measurement> {
    let started = Instant::now();
    let mut stream = store.consume_segment(space, segment, SegmentQuery::default())?;
    let (ops, bytes) = read_to_end(&mut stream).await?;
    Ok(Measurement {
        name: "consume_segment",
        ops,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Reads `space` to its end with [`Store::consume_space`].
///
/// # Errors
///
/// The first read error.
pub async fn consume_space(store: &Store, space: &str) -> Result<Measurement> {
    let started = Instant::now();
    let mut stream = store.consume_space(space, SpaceQuery::default())?;
    let (ops, bytes) = read_to_end(&mut stream).await?;
    Ok(Measurement {
        name: "consume_space",
        ops,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Reads `spaces` to their ends merged, with [`Store::consume`].
///
/// # Errors
///
/// The first read error.
pub async fn consume_multi(store: &Store, spaces: &[&str]) -> Result<Measurement> {
    let started = Instant::now();
    let offsets = spaces
        .iter()
        .map(|space| (space.to_string(), None))
        .collect();
    let mut stream = store.consume(MultiQuery {
        offsets,
        ..MultiQuery::default()
    })?;
    let (ops, bytes) = read_to_end(&mut stream).await?;
    Ok(Measurement {
        name: "consume",
        ops,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// The raw baseline for the consumes: one range scan over the entry keys
/// of `space` (segment `segment` only, or every segment for `None`),
/// counting values. Blocking.
///
/// # Errors
///
/// The first storage error.
pub fn raw_scan(storage: &dyn Storage, space: &str, segment: Option<&str>) -> Result<Measurement> {
    let prefix = match segment {
        Some(segment) => keys::dat_prefix(space, segment),
        None => seq_core::KeyBuilder::new(seq_core::keyspace::DAT)
            .str(space)
            .build(),
    };
    let started = Instant::now();
    let range = KeyRange {
        start: Bound::Included(Bytes::from(prefix.clone())),
        end: Bound::Excluded(Bytes::from(keys::after_prefix(&prefix))),
    };
    let (mut ops, mut bytes) = (0u64, 0u64);
    for item in storage.scan(range, ScanOptions::forward())? {
        let (_, value) = item?;
        ops += 1;
        bytes += value.len() as u64;
    }
    Ok(Measurement {
        name: "raw scan",
        ops,
        bytes,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use seq_storage::{CrashStorage, FaultPlan, MemoryStorage};

    use super::*;

    fn present(storage: &dyn Storage, segment: &str, sequences: std::ops::Range<u64>) -> Vec<u64> {
        sequences
            .filter(|&s| storage.get(&keys::dat("g", segment, s)).unwrap().is_some())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_raw_group_commit_numbers_each_producers_segment_from_the_first_sequence() {
        let storage = Arc::new(MemoryStorage::new());
        let m = raw_group_commit(storage.clone(), "g", 4, 5, 10, Placement::SegmentEach, 7)
            .await
            .unwrap();
        assert_eq!((m.ops, m.bytes), (20, 200));
        for p in 0..4 {
            let segment = format!("p{p}");
            assert_eq!(
                present(&*storage, &segment, 0..20),
                (7..12).collect::<Vec<_>>()
            );
            let value = storage.get(&keys::dat("g", &segment, 7)).unwrap().unwrap();
            assert_eq!(value, Bytes::from(vec![0x5Au8; 10]));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_raw_group_commit_on_one_segment_writes_dense_keys() {
        let storage = Arc::new(MemoryStorage::new());
        let m = raw_group_commit(storage.clone(), "g", 4, 5, 10, Placement::OneSegment, 1)
            .await
            .unwrap();
        assert_eq!(m.ops, 20);
        assert_eq!(present(&*storage, "p0", 0..30), (1..21).collect::<Vec<_>>());
        assert!(present(&*storage, "p1", 0..30).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_raw_group_commit_whose_write_fails_returns_the_storage_error() {
        let storage = Arc::new(CrashStorage::with_faults(
            FaultPlan::new().fail_writes_after(2),
        ));
        let err = raw_group_commit(storage, "g", 4, 50, 10, Placement::SegmentEach, 1)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    }
}
