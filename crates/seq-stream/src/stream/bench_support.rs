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
