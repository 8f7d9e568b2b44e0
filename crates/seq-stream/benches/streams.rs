//! Stream benchmarks (criterion, short): produce throughput with 1 and 64
//! concurrent producers, synced, 100 B and 1 KiB payloads, against a raw
//! synced batch write of the same bytes; consume_segment and consume_space
//! against a raw range scan of the same keys. On redb (default feature) in a
//! temporary directory, else in memory.
//!
//! `cargo bench -p seq-stream --bench streams`; the workloads live in
//! `seq_stream::stream_bench` so `cargo xtask bench` can run them too.

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use seq_storage::Storage;
use seq_stream::stream_bench::{self, Placement};
use seq_stream::{Store, StoreOptions};

fn open(dir: &std::path::Path, name: &str) -> Store {
    #[cfg(feature = "redb")]
    let storage: Arc<dyn Storage> =
        Arc::new(seq_redb::RedbStorage::open(dir.join(format!("{name}.redb"))).expect("open redb"));
    #[cfg(not(feature = "redb"))]
    let storage: Arc<dyn Storage> = {
        let _ = (dir, name);
        Arc::new(seq_storage::MemoryStorage::new())
    };
    Store::open_arc(storage, StoreOptions::default()).expect("open store")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn produce(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path(), "produce");
    let raw = open(dir.path(), "raw");
    let mut group = c.benchmark_group("produce");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for payload in [100usize, 1024] {
        for producers in [1usize, 64] {
            let id = format!("{producers}p/{payload}B");
            group.throughput(Throughput::Elements(1));
            group.bench_function(BenchmarkId::new("engine", &id), |b| {
                b.iter_custom(|iters| {
                    let per = (iters as usize).div_ceil(producers);
                    let m = rt
                        .block_on(stream_bench::produce(
                            &store,
                            "bench",
                            producers,
                            per,
                            payload,
                            Placement::SegmentEach,
                        ))
                        .expect("produce");
                    m.elapsed.mul_f64(iters as f64 / m.ops as f64)
                })
            });
            let next_seq = std::cell::Cell::new(1u64);
            group.bench_function(BenchmarkId::new("raw", &id), |b| {
                b.iter_custom(|iters| {
                    let m = stream_bench::raw_batch_write(
                        &**raw.storage(),
                        &format!("raw-{id}"),
                        next_seq.get(),
                        iters as usize,
                        producers,
                        payload,
                    )
                    .expect("raw write");
                    next_seq.set(next_seq.get() + m.ops);
                    m.elapsed
                })
            });
        }
    }
    group.finish();
    rt.block_on(async {
        store.close().await.expect("close");
        raw.close().await.expect("close");
    });
}

fn consume(c: &mut Criterion) {
    const ENTRIES: usize = 20_000;
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path(), "consume");
    rt.block_on(async {
        stream_bench::fill(&store, "one", 1, ENTRIES, 100)
            .await
            .expect("fill");
        stream_bench::fill(&store, "four", 4, ENTRIES / 4, 100)
            .await
            .expect("fill");
    });
    let mut group = c.benchmark_group("consume");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.bench_function("consume_segment", |b| {
        b.iter(|| {
            rt.block_on(stream_bench::consume_segment(&store, "one", "s0"))
                .expect("consume")
        })
    });
    group.bench_function("raw_scan_segment", |b| {
        b.iter(|| stream_bench::raw_scan(&**store.storage(), "one", Some("s0")).expect("scan"))
    });
    group.bench_function("consume_space", |b| {
        b.iter(|| {
            rt.block_on(stream_bench::consume_space(&store, "four"))
                .expect("consume")
        })
    });
    group.bench_function("raw_scan_space", |b| {
        b.iter(|| stream_bench::raw_scan(&**store.storage(), "four", None).expect("scan"))
    });
    group.finish();
    rt.block_on(store.close()).expect("close");
}

criterion_group!(benches, produce, consume);
criterion_main!(benches);
