//! The conformance suite on redb.

use seq_redb::RedbStorage;
use seq_storage::conformance::{Harness, temp_dir};
use tempfile::TempDir;

/// A fresh database file in its own temporary directory per case.
struct RedbHarness;

impl Harness for RedbHarness {
    type Store = RedbStorage;
    type Guard = TempDir;

    fn fresh(&self) -> (TempDir, RedbStorage) {
        let dir = temp_dir();
        let store = RedbStorage::open(dir.path().join("store.redb")).expect("open redb");
        (dir, store)
    }

    fn reopen(&self, dir: &TempDir, store: RedbStorage) -> Option<RedbStorage> {
        store.close().expect("close redb");
        Some(RedbStorage::open(dir.path().join("store.redb")).expect("reopen redb"))
    }
}

seq_storage::conformance_tests!(RedbHarness);
