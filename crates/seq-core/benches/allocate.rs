//! `BlockAllocator::allocate(1)` within a reserved block against a bare
//! `AtomicU64::fetch_add(1, Relaxed)`, in the same criterion group.
//!
//! The allocator gets one huge block up front, so every timed call takes the
//! within-block path (no block record is produced). `allocate` returns the
//! first tick (and whether a block must be persisted) into `black_box`, which
//! is what a caller consumes; `take_reserved` (the engine's per-number hot
//! path) returns just the first tick.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use seq_core::{BlockAllocator, BlockRecord};

fn allocate_one(c: &mut Criterion) {
    let mut group = c.benchmark_group("allocate_one");

    group.bench_function("block_allocator", |b| {
        let mut alloc = BlockAllocator::new(1 << 20).expect("block size is not 0");
        let huge = BlockRecord::new(0, u64::MAX / 2).expect("block fits the tick space");
        alloc
            .extend(huge)
            .expect("block starts at the reservation end");
        b.iter(|| {
            // What a caller uses: the first tick (and whether a block must be
            // persisted). Black-boxing the whole `Result` instead would time
            // the copy of the error type's size, not the allocator.
            let got = black_box(&mut alloc).allocate(black_box(1));
            debug_assert!(matches!(got, Ok(a) if a.block.is_none()));
            black_box(got.map(|a| (a.first, a.block.is_some())).ok())
        });
    });

    // The engine's hot path: ticks from the durable reservation only.
    group.bench_function("take_reserved", |b| {
        let mut alloc = BlockAllocator::new(1 << 20).expect("block size is not 0");
        let huge = BlockRecord::new(0, u64::MAX / 2).expect("block fits the tick space");
        alloc
            .extend(huge)
            .expect("block starts at the reservation end");
        b.iter(|| black_box(&mut alloc).take_reserved(black_box(1)));
    });

    group.bench_function("atomic_fetch_add", |b| {
        let counter = AtomicU64::new(0);
        b.iter(|| black_box(&counter).fetch_add(black_box(1), Ordering::Relaxed));
    });

    group.finish();
}

criterion_group!(benches, allocate_one);
criterion_main!(benches);
