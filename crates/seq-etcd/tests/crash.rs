//! The conformance suite's crash cases, with a real crash: every member of
//! the cluster is killed with SIGKILL at once and started again on its data.
//! Each case owns its cluster (the crash would disturb other cases).

use seq_etcd::EtcdStorage;
use seq_etcd::testing::Cluster;
use seq_storage::conformance::{self, Harness};

struct CrashHarness;

impl Harness for CrashHarness {
    type Store = EtcdStorage;
    type Guard = Cluster;

    fn fresh(&self) -> (Cluster, EtcdStorage) {
        let cluster = Cluster::start();
        let store = EtcdStorage::connect(cluster.options("crash")).expect("connect");
        (cluster, store)
    }

    fn reopen(&self, cluster: &Cluster, store: EtcdStorage) -> Option<EtcdStorage> {
        drop(store);
        Some(EtcdStorage::connect(cluster.options("crash")).expect("reconnect"))
    }

    fn crash_reopen(&self, cluster: &Cluster, store: EtcdStorage) -> Option<EtcdStorage> {
        cluster.crash();
        drop(store);
        Some(EtcdStorage::connect(cluster.options("crash")).expect("connect after the crash"))
    }
}

#[test]
fn synced_writes_survive_a_crash_of_every_member() {
    conformance::synced_writes_survive_crash(&CrashHarness);
}

#[test]
fn a_crash_of_every_member_never_exposes_part_of_a_batch() {
    conformance::crash_never_exposes_part_of_a_batch(&CrashHarness);
}

#[test]
fn flushed_writes_survive_a_crash_of_every_member() {
    conformance::flushed_writes_survive_crash(&CrashHarness);
}
