//! Raw-backend workloads for baseline benchmarks (feature `bench-util`).
//!
//! Each function runs one workload against any [`Storage`] and returns a
//! [`Measurement`] (operations, bytes, elapsed wall time), so criterion
//! benches and `cargo xtask bench` can compare the engine built on a backend
//! with the backend itself, in the same run and process.
//!
//! ```
//! use seq_storage::MemoryStorage;
//! use seq_storage::baseline::{range_scan, synced_batch_1000, synced_single_commits};
//!
//! # fn main() -> seq_storage::Result<()> {
//! let store = MemoryStorage::new();
//! let commits = synced_single_commits(&store, 100)?;
//! let batches = synced_batch_1000(&store, 2)?;
//! let scan = range_scan(&store, 10_000, 100)?;
//! assert_eq!((commits.ops, batches.ops, scan.ops), (100, 2000, 10_000));
//! println!("{commits}\n{batches}\n{scan}");
//! # Ok(())
//! # }
//! ```
//!
//! Timing claims belong in benchmarks, never in `#[test]`s: nothing here
//! asserts a speed.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Durability, Error, KeyRange, Result, ScanOptions, Storage, WriteBatch};

/// The result of one workload run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// What was measured, for display.
    pub name: &'static str,
    /// Operations completed (commits, keys or entries, per workload).
    pub ops: u64,
    /// Payload bytes moved (keys plus values).
    pub bytes: u64,
    /// Wall time of the measured part.
    pub elapsed: Duration,
}

impl Measurement {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Mebibytes (2^20 bytes) per second.
    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / (1u64 << 20) as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ops in {:.3?} = {:.0} ops/s, {:.1} MiB/s",
            self.name,
            self.ops,
            self.elapsed,
            self.ops_per_sec(),
            self.mib_per_sec()
        )
    }
}

/// The key prefix the workloads write under; they never touch other keys.
pub const PREFIX: &[u8] = b"\xffbaseline/";

fn bench_key(workload: u8, i: u64) -> Bytes {
    let mut key = Vec::with_capacity(PREFIX.len() + 9);
    key.extend_from_slice(PREFIX);
    key.push(workload);
    key.extend_from_slice(&i.to_be_bytes());
    Bytes::from(key)
}

/// `n` commits of one 100-byte value each, every one [`Durability::Sync`].
/// `ops` counts commits.
pub fn synced_single_commits<S: Storage + ?Sized>(store: &S, n: u64) -> Result<Measurement> {
    let value = Bytes::from(vec![0x5a; 100]);
    let start = Instant::now();
    for i in 0..n {
        let mut batch = WriteBatch::new();
        batch.put(bench_key(b's', i), value.clone());
        store.write(batch, Durability::Sync)?;
    }
    let elapsed = start.elapsed();
    Ok(Measurement {
        name: "synced single-key commits",
        ops: n,
        bytes: n * (PREFIX.len() as u64 + 9 + 100),
        elapsed,
    })
}

/// `batches` synced commits of 1000 keys (100-byte values) each. `ops`
/// counts keys.
pub fn synced_batch_1000<S: Storage + ?Sized>(store: &S, batches: u64) -> Result<Measurement> {
    let value = Bytes::from(vec![0xa5; 100]);
    let mut elapsed = Duration::ZERO;
    for b in 0..batches {
        let mut batch = WriteBatch::new();
        for i in 0..1000 {
            batch.put(bench_key(b'b', b * 1000 + i), value.clone());
        }
        let start = Instant::now();
        store.write(batch, Durability::Sync)?;
        elapsed += start.elapsed();
    }
    let keys = batches * 1000;
    Ok(Measurement {
        name: "synced 1000-key batches",
        ops: keys,
        bytes: keys * (PREFIX.len() as u64 + 9 + 100),
        elapsed,
    })
}

/// Loads `entries` keys with `value_len`-byte values (untimed, buffered then
/// flushed), then times one full forward scan of them. `ops` counts entries,
/// `bytes` the keys and values read.
pub fn range_scan<S: Storage + ?Sized>(
    store: &S,
    entries: u64,
    value_len: usize,
) -> Result<Measurement> {
    load_scan_range(store, entries, value_len)?;
    scan_loaded_range(store, entries)
}

/// The untimed part of [`range_scan`]: writes `entries` keys with
/// `value_len`-byte values and flushes. Idempotent for the same arguments.
pub fn load_scan_range<S: Storage + ?Sized>(
    store: &S,
    entries: u64,
    value_len: usize,
) -> Result<()> {
    let value = Bytes::from(vec![0x3c; value_len]);
    let mut i = 0;
    while i < entries {
        let mut batch = WriteBatch::new();
        let end = (i + 10_000).min(entries);
        for k in i..end {
            batch.put(bench_key(b'r', k), value.clone());
        }
        store.write(batch, Durability::Buffered)?;
        i = end;
    }
    store.flush()
}

/// The timed part of [`range_scan`]: one forward scan of the range loaded by
/// [`load_scan_range`]. Fails with [`Error::Backend`] if the count is off.
pub fn scan_loaded_range<S: Storage + ?Sized>(store: &S, entries: u64) -> Result<Measurement> {
    let range = KeyRange::new(bench_key(b'r', 0), bench_key(b'r', entries));
    let start = Instant::now();
    let (mut ops, mut bytes) = (0u64, 0u64);
    for entry in store.scan(range, ScanOptions::forward())? {
        let (k, v) = entry?;
        ops += 1;
        bytes += (k.len() + v.len()) as u64;
    }
    let elapsed = start.elapsed();
    if ops != entries {
        return Err(Error::Backend {
            message: format!("range scan saw {ops} entries, expected {entries}"),
        });
    }
    Ok(Measurement {
        name: "range scan",
        ops,
        bytes,
        elapsed,
    })
}

/// The machine's raw `fdatasync` rate: `n` times, write 4 KiB at the start
/// of a file in `dir` and `File::sync_data` it. `ops` counts syncs. The
/// file is removed afterwards.
pub fn fdatasync_rate(dir: &Path, n: u64) -> std::io::Result<Measurement> {
    let path = dir.join("seq-baseline-fdatasync.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let block = [0x42u8; 4096];
    file.write_all(&block)?;
    file.sync_all()?;
    let start = Instant::now();
    for _ in 0..n {
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(&block)?;
        file.sync_data()?;
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(Measurement {
        name: "fdatasync (4 KiB write + sync_data)",
        ops: n,
        bytes: n * 4096,
        elapsed,
    })
}

/// Stamps out a criterion benchmark binary (`benches/raw.rs` of a backend
/// crate) measuring the raw baselines above on one backend: synced single-key
/// commits, synced 1000-key batches, a 100k-entry range scan (entries and
/// bytes), and the machine's fdatasync rate. `$name` prefixes the criterion
/// groups; `$open` is a closure from a fresh temporary directory to the store.
/// The calling crate needs `criterion` and `tempfile` as dev-dependencies.
///
/// ```ignore
/// seq_storage::raw_backend_benches!("redb", |dir: &std::path::Path| {
///     seq_redb::RedbStorage::open(dir.join("bench.redb")).expect("open the store")
/// });
/// ```
#[macro_export]
macro_rules! raw_backend_benches {
    ($name:literal, $open:expr) => {
        use criterion::{Criterion, Throughput, criterion_group, criterion_main};
        use $crate::baseline;

        const SCAN_ENTRIES: u64 = 100_000;
        const SCAN_VALUE_LEN: usize = 100;

        fn raw(c: &mut Criterion) {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = ($open)(dir.path());

            let mut group = c.benchmark_group(concat!($name, "_raw"));
            group.sample_size(10);
            group.throughput(Throughput::Elements(1));
            group.bench_function("synced_single_commit", |b| {
                b.iter_custom(|iters| {
                    baseline::synced_single_commits(&store, iters)
                        .expect("commits")
                        .elapsed
                })
            });
            group.throughput(Throughput::Elements(1000));
            group.bench_function("synced_batch_1000", |b| {
                b.iter_custom(|iters| {
                    baseline::synced_batch_1000(&store, iters)
                        .expect("batches")
                        .elapsed
                })
            });
            baseline::load_scan_range(&store, SCAN_ENTRIES, SCAN_VALUE_LEN)
                .expect("load the scan range");
            let scan = |iters: u64| {
                (0..iters)
                    .map(|_| {
                        baseline::scan_loaded_range(&store, SCAN_ENTRIES)
                            .expect("scan")
                            .elapsed
                    })
                    .sum()
            };
            group.throughput(Throughput::Elements(SCAN_ENTRIES));
            group.bench_function("range_scan_entries", |b| b.iter_custom(scan));
            let bytes = baseline::scan_loaded_range(&store, SCAN_ENTRIES)
                .expect("scan")
                .bytes;
            group.throughput(Throughput::Bytes(bytes));
            group.bench_function("range_scan_bytes", |b| b.iter_custom(scan));
            group.finish();

            let mut machine = c.benchmark_group(concat!($name, "_machine"));
            machine.sample_size(10);
            machine.throughput(Throughput::Elements(1));
            machine.bench_function("fdatasync_4k", |b| {
                b.iter_custom(|iters| {
                    baseline::fdatasync_rate(dir.path(), iters)
                        .expect("fdatasync")
                        .elapsed
                })
            });
            machine.finish();
        }

        criterion_group!(benches, raw);
        criterion_main!(benches);
    };
}
