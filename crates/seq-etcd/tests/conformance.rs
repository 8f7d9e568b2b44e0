//! The storage conformance suite on a local 3-member etcd cluster.
//!
//! One cluster serves the whole test binary; each case gets a store under a
//! fresh random prefix, so cases never see each other's keys. The cluster
//! allows transactions of up to 32,768 operations (etcd's default is 128):
//! `hundred_thousand_keys_scan_in_order` writes 25,000 keys per batch.

use std::sync::LazyLock;

use seq_etcd::EtcdStorage;
use seq_etcd::testing::Cluster;
use seq_storage::conformance::Harness;

/// `--max-txn-ops` of the suite's cluster.
const MAX_TXN_OPS: usize = 32 << 10;

static CLUSTER: LazyLock<Cluster> =
    LazyLock::new(|| Cluster::builder().max_txn_ops(MAX_TXN_OPS).start());

/// A store under a fresh prefix per case; `reopen` connects again to the
/// same prefix.
struct EtcdHarness;

impl Harness for EtcdHarness {
    type Store = EtcdStorage;
    /// The case's prefix.
    type Guard = Vec<u8>;

    fn fresh(&self) -> (Vec<u8>, EtcdStorage) {
        // 16 random bytes: short (the 25,000-key batches must fit in etcd's
        // 1.5 MiB requests, prefix included) and binary.
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
