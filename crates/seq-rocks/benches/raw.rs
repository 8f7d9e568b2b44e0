//! Raw-backend baselines on RocksDB: synced single-key commits, synced
//! 1000-key batches, a 100k-entry range scan, and the machine's fdatasync
//! rate (`cargo xtask bench` runs the same workloads beside the engine's).
//!
//! `cargo bench -p seq-rocks --bench raw -- --warm-up-time 1 --measurement-time 3`

seq_storage::raw_backend_benches!("rocks", |dir: &std::path::Path| {
    seq_rocks::RocksStorage::open(dir.join("bench")).expect("open the store")
});
