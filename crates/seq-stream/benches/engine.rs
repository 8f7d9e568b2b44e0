//! Engine benchmarks: `next()` through the store vs the in-memory allocator
//! vs one synced write per number, and group commit with 1 vs 64 writers.
//!
//! `cargo bench -p seq-stream --bench engine` (add `--features rocksdb` for
//! RocksDB). The workloads live in `seq_stream::sequence_bench` so that
//! `cargo xtask bench` can run them in-process too. After the criterion runs
//! a summary prints the ratios the engine is judged by.

// A benchmark may panic on a failed setup.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use seq_storage::Storage;
use seq_stream::Store;
use seq_stream::sequence_bench::{
    CountingStorage, Measurement, Prefixes, allocator_in_memory, group_commit,
    naive_synced_counter, sequence_next,
};

const BLOCK: u64 = 4096;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A persistent backend: its name, a counting storage and a store on it.
struct Backend {
    name: &'static str,
    _dir: tempfile::TempDir,
    counting: Arc<CountingStorage<Arc<dyn Storage>>>,
    store: Store,
    /// A second storage of the same kind for the naive loop.
    naive: Store,
    _naive_dir: tempfile::TempDir,
}

fn open(name: &'static str, open: fn(&std::path::Path) -> Store) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let raw = open(dir.path());
    let storage = raw.storage().clone();
    drop(raw);
    let counting = Arc::new(CountingStorage::new(storage));
    let store = Store::open_arc(counting.clone(), seq_stream::StoreOptions::default()).unwrap();
    let naive_dir = tempfile::tempdir().unwrap();
    let naive = open(naive_dir.path());
    Backend {
        name,
        _dir: dir,
        counting,
        store,
        naive,
        _naive_dir: naive_dir,
    }
}

#[allow(clippy::vec_init_then_push, unused_mut)] // pushes depend on features
fn backends() -> Vec<Backend> {
    let mut out = Vec::new();
    #[cfg(feature = "redb")]
    out.push(open("redb", |p| Store::open_redb(p).unwrap()));
    #[cfg(feature = "rocksdb")]
    out.push(open("rocksdb", |p| Store::open_rocksdb(p).unwrap()));
    out
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let backends = backends();
    let mut group = c.benchmark_group("sequence_next");
    group.bench_function("in_memory_allocator", |b| {
        b.iter_custom(|iters| allocator_in_memory(BLOCK, iters).elapsed)
    });
    for backend in &backends {
        let store = backend.store.clone();
        group.bench_function(format!("store_next_{}", backend.name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(sequence_next(&store, "bench", BLOCK, iters))
                    .unwrap()
                    .elapsed
            })
        });
        let naive = backend.naive.storage().clone();
        group.bench_function(format!("naive_synced_{}", backend.name), |b| {
            b.iter_custom(|iters| naive_synced_counter(&*naive, iters).unwrap().elapsed)
        });
    }
    group.finish();

    let mut group = c.benchmark_group("group_commit");
    for backend in &backends {
        for writers in [1usize, 64] {
            let store = backend.store.clone();
            let counting = backend.counting.clone();
            group.bench_function(format!("{}_writers_{writers}", backend.name), |b| {
                b.iter_custom(|iters| {
                    let per_writer = iters.div_ceil(writers as u64).max(1);
                    let m = rt
                        .block_on(group_commit(
                            &store,
                            writers,
                            per_writer,
                            Prefixes::PerWriter,
                            || counting.syncs(),
                        ))
                        .unwrap();
                    // Normalise to the iterations criterion asked for.
                    m.elapsed.mul_f64(iters as f64 / m.ops as f64)
                })
            });
        }
    }
    group.finish();
    summary(&rt, &backends);
}

fn summary(rt: &tokio::runtime::Runtime, backends: &[Backend]) {
    println!("\n== summary (single runs) ==");
    let alloc = allocator_in_memory(BLOCK, 20_000_000);
    println!("{alloc}");
    for backend in backends {
        let next = rt
            .block_on(sequence_next(&backend.store, "summary", BLOCK, 2_000_000))
            .unwrap();
        let naive = naive_synced_counter(&*backend.naive.storage().clone(), 200).unwrap();
        // The same with a reservation that never runs dry during the run:
        // the caller-thread fast path alone, without the fsync bound.
        let fast = rt
            .block_on(sequence_next(
                &backend.store,
                "summary-fast",
                1 << 22,
                2_000_000,
            ))
            .unwrap();
        println!("[{}] {next}", backend.name);
        println!(
            "[{}] fast path only (block 2^22): {fast} = {:.1}% of the in-memory allocator",
            backend.name,
            100.0 * fast.ops_per_sec() / alloc.ops_per_sec()
        );
        println!("[{}] {naive}", backend.name);
        println!(
            "[{}] next() = {:.1}% of the in-memory allocator, {:.0}x the naive loop",
            backend.name,
            100.0 * next.ops_per_sec() / alloc.ops_per_sec(),
            next.ops_per_sec() / naive.ops_per_sec()
        );
        let counting = backend.counting.clone();
        let one: Measurement = rt
            .block_on(group_commit(
                &backend.store,
                1,
                300,
                Prefixes::PerWriter,
                || counting.syncs(),
            ))
            .unwrap();
        let many: Measurement = rt
            .block_on(group_commit(
                &backend.store,
                64,
                100,
                Prefixes::PerWriter,
                || counting.syncs(),
            ))
            .unwrap();
        println!("[{}] 1 writer: {one}", backend.name);
        println!("[{}] 64 writers: {many}", backend.name);
        println!(
            "[{}] group commit: {:.1} records/sync, {:.1}x the throughput of 1 writer",
            backend.name,
            many.ops_per_sync().unwrap_or(0.0),
            many.ops_per_sec() / one.ops_per_sec()
        );
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = engine;
    config = config();
    targets = benches
}
criterion_main!(engine);
