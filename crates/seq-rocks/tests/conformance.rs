//! The conformance suite on RocksDB.

use seq_rocks::RocksStorage;
use seq_storage::conformance::{Harness, temp_dir};
use tempfile::TempDir;

/// A fresh database directory in its own temporary directory per case.
struct RocksHarness;

impl Harness for RocksHarness {
    type Store = RocksStorage;
    type Guard = TempDir;

    fn fresh(&self) -> (TempDir, RocksStorage) {
        let dir = temp_dir();
        let store = RocksStorage::open(dir.path().join("store")).expect("open RocksDB");
        (dir, store)
    }

    fn reopen(&self, dir: &TempDir, store: RocksStorage) -> Option<RocksStorage> {
        store.close().expect("close RocksDB");
        Some(RocksStorage::open(dir.path().join("store")).expect("reopen RocksDB"))
    }
}

seq_storage::conformance_tests!(RocksHarness);
