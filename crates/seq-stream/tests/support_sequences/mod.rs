//! Shared harness of the sequence, sequence-key, oracle and writer tests:
//! one store per backend, with clean reopen and (where the backend can
//! simulate one) crash.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use seq_storage::{CrashStorage, KeyRange, MemoryStorage, ScanOptions, Storage};
use seq_stream::{Store, StoreOptions};

/// Which storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Crash,
    #[cfg(feature = "redb")]
    Redb,
    #[cfg(feature = "rocksdb")]
    Rocks,
}

enum Place {
    Memory(MemoryStorage),
    Crash(CrashStorage),
    Dir(tempfile::TempDir),
}

/// A store under test that can be reopened (and crashed).
pub struct Backend {
    pub kind: Kind,
    storage: Place,
}

impl Backend {
    pub fn new(kind: Kind) -> Self {
        let storage = match kind {
            Kind::Memory => Place::Memory(MemoryStorage::new()),
            Kind::Crash => Place::Crash(CrashStorage::new()),
            #[cfg(feature = "redb")]
            Kind::Redb => Place::Dir(tempfile::tempdir().unwrap()),
            #[cfg(feature = "rocksdb")]
            Kind::Rocks => Place::Dir(tempfile::tempdir().unwrap()),
        };
        Self { kind, storage }
    }

    /// The crash-simulating storage, when this backend is one.
    pub fn crash_storage(&self) -> Option<&CrashStorage> {
        match &self.storage {
            Place::Crash(c) => Some(c),
            _ => None,
        }
    }

    /// Opens a store on the current storage.
    pub fn open(&self) -> Store {
        self.open_with(StoreOptions::default())
    }

    pub fn open_with(&self, options: StoreOptions) -> Store {
        match &self.storage {
            Place::Memory(m) => Store::open_with(m.clone(), options).unwrap(),
            Place::Crash(c) => Store::open_with(c.clone(), options).unwrap(),
            Place::Dir(dir) => {
                // A dropped store may still be releasing its files (a
                // background task holding the last handle): retry briefly.
                let mut last = None;
                for _ in 0..200 {
                    match self.open_dir(dir.path()) {
                        Ok(store) => return store,
                        Err(e) => last = Some(e),
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                panic!("cannot reopen {:?}: {last:?}", self.kind)
            }
        }
    }

    fn open_dir(&self, dir: &std::path::Path) -> seq_stream::Result<Store> {
        match self.kind {
            #[cfg(feature = "redb")]
            Kind::Redb => Store::open_redb(dir),
            #[cfg(feature = "rocksdb")]
            Kind::Rocks => Store::open_rocksdb(dir),
            _ => unreachable!("{dir:?}"),
        }
    }

    /// Closes `store` cleanly and opens the storage again.
    pub async fn reopen(&mut self, store: Store) -> Store {
        store.close().await.unwrap();
        drop(store);
        if let Place::Crash(c) = &self.storage {
            let next = c.close_and_reopen();
            self.storage = Place::Crash(next);
        }
        self.open()
    }

    /// Crashes (CrashStorage: keeps only what was durable) or, on other
    /// backends, drops the store without closing it, then opens again.
    pub async fn crash(&mut self, store: Store) -> Store {
        if let Place::Crash(c) = &self.storage {
            let next = c.crash();
            self.storage = Place::Crash(next);
            drop(store);
            return self.open();
        }
        drop(store);
        self.open()
    }
}

/// Every key and value in `store`'s storage.
pub fn dump(store: &Store) -> Vec<(Bytes, Bytes)> {
    dump_storage(&**store.storage())
}

pub fn dump_storage(storage: &dyn Storage) -> Vec<(Bytes, Bytes)> {
    storage
        .scan(KeyRange::all(), ScanOptions::forward())
        .unwrap()
        .collect::<seq_storage::Result<Vec<_>>>()
        .unwrap()
}

/// Shares one storage between a test and a store.
pub fn open_arc(storage: Arc<dyn Storage>) -> Store {
    Store::open_arc(storage, StoreOptions::default()).unwrap()
}

/// Stamps `async fn case(kind: Kind)` into one multi-thread `#[tokio::test]`
/// per backend, so a failure names the case and the backend.
#[macro_export]
macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::support::Kind::Memory).await
                }
            )*
        }
        mod crash_sim {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::support::Kind::Crash).await
                }
            )*
        }
        #[cfg(feature = "redb")]
        mod redb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::support::Kind::Redb).await
                }
            )*
        }
        #[cfg(feature = "rocksdb")]
        mod rocks {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::support::Kind::Rocks).await
                }
            )*
        }
    };
}
