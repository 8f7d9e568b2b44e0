//! Shared harness of the `streams_*` tests: one fresh store per case and
//! backend, with clean reopen and (crash-sim only) crash-and-reopen.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use seq_storage::{CrashStorage, KeyRange, MemoryStorage, ScanOptions, Storage};
use seq_stream::{Entry, SegmentQuery, SpaceQuery, Store, StoreOptions};

/// Which backend a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Crash,
    #[cfg(feature = "redb")]
    Redb,
    #[cfg(feature = "rocksdb")]
    Rocks,
}

/// A fresh store factory for one case.
pub struct Harness {
    pub kind: Kind,
    pub options: StoreOptions,
    memory: MemoryStorage,
    crash: CrashStorage,
    dir: tempfile::TempDir,
}

impl Harness {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            options: StoreOptions::default(),
            memory: MemoryStorage::new(),
            crash: CrashStorage::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Opens the store on this case's storage.
    pub fn open(&mut self) -> Store {
        let storage: Arc<dyn Storage> = match self.kind {
            Kind::Memory => Arc::new(self.memory.clone()),
            Kind::Crash => Arc::new(self.crash.clone()),
            #[cfg(feature = "redb")]
            Kind::Redb => Arc::new(
                seq_redb::RedbStorage::open(self.dir.path().join("seq.redb")).expect("open redb"),
            ),
            #[cfg(feature = "rocksdb")]
            Kind::Rocks => {
                Arc::new(seq_rocks::RocksStorage::open(self.dir.path()).expect("open rocks"))
            }
        };
        Store::open_arc(storage, self.options.clone()).expect("open store")
    }

    /// Whether data survives a reopen.
    pub fn persistent(&self) -> bool {
        true
    }

    /// Closes `store` cleanly and opens it again.
    pub async fn reopen(&mut self, store: Store) -> Store {
        store.close().await.expect("close");
        drop(store);
        if self.kind == Kind::Crash {
            self.crash = self.crash.close_and_reopen();
        }
        self.open()
    }

    /// Crash-sim only: crashes keeping `keep` buffered batches, reopens.
    pub async fn crash_and_reopen(&mut self, store: Store, keep: usize) -> Store {
        assert_eq!(self.kind, Kind::Crash);
        let image = self.crash.crash_keeping(keep);
        // The old store's storage is closed now; closing the store may fail.
        let _ = store.close().await;
        drop(store);
        self.crash = image;
        self.open()
    }

    /// The crash-sim storage (for fault injection).
    pub fn crash_storage(&self) -> &CrashStorage {
        &self.crash
    }
}

/// Stamps one `#[tokio::test]` per case and backend.
#[macro_export]
macro_rules! backend_tests {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                super::$case(Harness::new(Kind::Memory)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn crash_sim() {
                super::$case(Harness::new(Kind::Crash)).await
            }

            #[cfg(feature = "redb")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redb() {
                super::$case(Harness::new(Kind::Redb)).await
            }

            #[cfg(feature = "rocksdb")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn rocks() {
                super::$case(Harness::new(Kind::Rocks)).await
            }
        }
    )*};
}

/// Every key and value except the store's commit high-water mark (which a
/// rejected request may still advance: its commit number is consumed).
pub fn dump(store: &Store) -> BTreeMap<Bytes, Bytes> {
    store
        .storage()
        .scan(KeyRange::all(), ScanOptions::forward())
        .expect("scan")
        .map(|item| item.expect("item"))
        .filter(|(key, _)| !key.starts_with(b"MET"))
        .collect()
}

/// Reads a whole segment.
pub async fn read_segment(store: &Store, space: &str, segment: &str) -> Vec<Entry> {
    let mut stream = store
        .consume_segment(space, segment, SegmentQuery::default())
        .expect("consume");
    let mut out = Vec::new();
    while let Some(entry) = stream.next().await.expect("next") {
        out.push(entry);
    }
    out
}

/// Reads a whole space.
pub async fn read_space(store: &Store, space: &str) -> Vec<Entry> {
    let mut stream = store
        .consume_space(space, SpaceQuery::default())
        .expect("consume");
    let mut out = Vec::new();
    while let Some(entry) = stream.next().await.expect("next") {
        out.push(entry);
    }
    out
}

/// Payloads of entries as strings.
pub fn payloads(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
        .collect()
}
