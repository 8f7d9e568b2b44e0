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

/// Bytes in the files of `dir` with extension `ext`.
fn bytes_in(dir: &std::path::Path, ext: &str) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == ext))
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum()
}

#[test]
fn waiting_for_compactions_flushes_and_keeps_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStorage::open(dir.path().join("db")).unwrap();
    fill(&store, 20_000, 512);
    store.wait_for_compactions().unwrap();
    // Flushed: the data now lives in table files, and all of it reads back.
    assert!(
        bytes_in(&dir.path().join("db"), "sst") > 0,
        "no table file after the flush"
    );
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

#[test]
fn closing_or_dropping_leaves_the_writes_in_table_files_so_reopening_replays_no_log() {
    for close in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = RocksStorage::open(&path).unwrap();
        fill(&store, 5_000, 200);
        assert_eq!(bytes_in(&path, "sst"), 0, "written to the memtable only");
        if close {
            store.close().unwrap();
        } else {
            drop(store);
        }
        // About 1 MB was written; the table files hold it now, so the next
        // open has nothing to replay from the write-ahead log.
        assert!(bytes_in(&path, "sst") > 500_000, "close = {close}");
        let store = RocksStorage::open(&path).unwrap();
        assert_eq!(count_keys(&store), 5_000);
        assert!(
            bytes_in(&path, "log") < 1000,
            "close = {close}: a log left to replay"
        );
    }
}
