//! Shared by the `stores_*`, `cursors_*` and `leases_*` tests: one store per
//! backend, reopenable, and a macro stamping one test per case per backend.
#![allow(dead_code, unreachable_pub)]

use seq_storage::{CrashStorage, MemoryStorage};
use seq_stream::Store;

/// The backends a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    /// Memory with backend leases: leases take the path they take on etcd.
    MemoryWithLeases,
    Crash,
    Redb,
}

/// A store's backing storage across reopens.
pub struct Env {
    pub kind: Kind,
    memory: MemoryStorage,
    memory_with_leases: MemoryStorage,
    pub crash: CrashStorage,
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            memory: MemoryStorage::new(),
            memory_with_leases: MemoryStorage::with_leases(),
            crash: CrashStorage::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Opens the store on the current storage.
    pub fn open(&self) -> Store {
        match self.kind {
            Kind::Memory => Store::open(self.memory.clone()).expect("open memory store"),
            Kind::MemoryWithLeases => {
                Store::open(self.memory_with_leases.clone()).expect("open memory store")
            }
            Kind::Crash => Store::open(self.crash.clone()).expect("open crash store"),
            Kind::Redb => Store::open_redb(self.dir.path()).expect("open redb store"),
        }
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
}

/// Stamps `#[tokio::test]`s for every `async fn case(kind: Kind)` listed, one
/// module per backend, so a failure names the case and the backend.
#[macro_export]
macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::leases_support::Kind::Memory).await;
                }
            )*
        }
        mod memory_with_leases {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::leases_support::Kind::MemoryWithLeases).await;
                }
            )*
        }
        mod crash_sim {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::leases_support::Kind::Crash).await;
                }
            )*
        }
        mod redb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::leases_support::Kind::Redb).await;
                }
            )*
        }
    };
}
