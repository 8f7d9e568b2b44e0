//! The storage conformance suite on a local 3-member etcd cluster.
//!
//! One cluster serves the whole test binary; each case gets a store under a
//! fresh random prefix, so cases never see each other's keys. The cluster
//! runs with etcd's default limits (128 operations per transaction, 1.5 MiB
//! requests): cases that write large volumes split their batches by the
//! backend's [`seq_storage::Capabilities`].

use std::sync::LazyLock;

use seq_etcd::EtcdStorage;
use seq_etcd::testing::Cluster;
use seq_storage::conformance::Harness;

static CLUSTER: LazyLock<Cluster> = LazyLock::new(|| Cluster::builder().start());

/// A store under a fresh prefix per case; `reopen` connects again to the
/// same prefix.
struct EtcdHarness;

impl Harness for EtcdHarness {
    type Store = EtcdStorage;
    /// The case's prefix.
    type Guard = Vec<u8>;

    fn fresh(&self) -> (Vec<u8>, EtcdStorage) {
        // 16 random bytes: short and binary.
        let prefix = uuid::Uuid::new_v4().as_bytes().to_vec();
        let store = EtcdStorage::connect(CLUSTER.options(prefix.clone())).expect("connect");
        (prefix, store)
    }

    fn reopen(&self, prefix: &Vec<u8>, store: EtcdStorage) -> Option<EtcdStorage> {
        drop(store);
        Some(EtcdStorage::connect(CLUSTER.options(prefix.clone())).expect("reconnect"))
    }
}

seq_storage::conformance_tests!(EtcdHarness);
