//! Raw-backend baselines: synced single-key commits, synced 1000-key
//! batches, a 100k-entry range scan, and the machine's fdatasync rate, so
//! later engine benchmarks can be compared with the bare backend in the same
//! run.
//!
//! `cargo bench -p seq-rocks --bench raw -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use seq_rocks::RocksStorage;
use seq_storage::baseline;

const SCAN_ENTRIES: u64 = 100_000;
const SCAN_VALUE_LEN: usize = 100;

fn raw(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = RocksStorage::open(dir.path().join("bench")).expect("open the store");

    let mut group = c.benchmark_group("rocks_raw");
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

    baseline::load_scan_range(&store, SCAN_ENTRIES, SCAN_VALUE_LEN).expect("load the scan range");
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

    let mut machine = c.benchmark_group("rocks_machine");
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
