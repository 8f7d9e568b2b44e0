//! seq's RocksDB defaults and the maintenance calls beside them.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use bytes::Bytes;
use seq_rocks::{RocksStorage, default_options};
use seq_storage::{Durability, KeyRange, ScanOptions, Storage, WriteBatch};

/// Writes `n` keys of `len`-byte values in batches of 1,000, buffered.
fn fill(store: &RocksStorage, n: u32, len: usize) {
    let value = Bytes::from(vec![0xA5u8; len]);
    for chunk in 0..n.div_ceil(1000) {
        let mut batch = WriteBatch::new();
        for i in chunk * 1000..((chunk + 1) * 1000).min(n) {
            batch.put(Bytes::from(format!("k{i:08}")), value.clone());
        }
        store.write(batch, Durability::Buffered).unwrap();
    }
}

/// How many keys `store` holds.
fn count_keys(store: &RocksStorage) -> usize {
    store
        .scan(KeyRange::all(), ScanOptions::forward())
        .unwrap()
        .count()
}

#[test]
fn waiting_for_compactions_flushes_and_keeps_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStorage::open(dir.path().join("db")).unwrap();
    fill(&store, 20_000, 512);
    store.wait_for_compactions().unwrap();
    // Flushed: the data now lives in table files, and all of it reads back.
    let tables = std::fs::read_dir(dir.path().join("db"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sst")
        })
        .count();
    assert!(tables > 0, "no table file after the flush");
    assert_eq!(count_keys(&store), 20_000);
    // Nothing pending: a second wait returns at once and changes nothing.
    store.wait_for_compactions().unwrap();
    store.close().unwrap();
}

#[test]
fn a_store_written_with_the_defaults_reopens_with_caller_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = RocksStorage::open(&path).unwrap();
    fill(&store, 3_000, 100);
    store.close().unwrap();
    // The defaults are RocksDB's plus table and cache settings, so a caller
    // starting from them (or from RocksDB's own) reads the same data.
    for options in [default_options(), {
        let mut plain = seq_rocks::rocksdb::Options::default();
        plain.create_if_missing(false);
        plain
    }] {
        let store = RocksStorage::open_with(&path, &options).unwrap();
        assert_eq!(count_keys(&store), 3_000);
        store.close().unwrap();
    }
}
