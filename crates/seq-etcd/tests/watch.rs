//! `Storage::watch_changes` on etcd: another client's write to the same
//! store wakes the watcher; writes to another store's prefix do not count.
#![allow(clippy::unwrap_used)] // A failed unwrap is a test failure.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use seq_etcd::EtcdStorage;
use seq_etcd::testing::Cluster;
use seq_storage::{Durability, Storage, WriteBatch};

fn put(storage: &EtcdStorage, key: &str) {
    let mut batch = WriteBatch::new();
    batch.put(key.as_bytes().to_vec(), b"v".to_vec());
    storage.write(batch, Durability::Sync).unwrap();
}

#[test]
fn a_write_by_another_client_to_the_same_store_wakes_the_watcher() {
    let cluster = Cluster::start();
    let prefix = format!("watch-{}", uuid::Uuid::new_v4());
    let watcher = EtcdStorage::connect(cluster.options(prefix.clone().into_bytes())).unwrap();
    let writer = EtcdStorage::connect(cluster.options(prefix.clone().into_bytes())).unwrap();
    let elsewhere =
        EtcdStorage::connect(cluster.options(format!("{prefix}-other").into_bytes())).unwrap();

    let (tx, rx) = mpsc::channel();
    let notify: seq_storage::ChangeNotify = Arc::new(move || {
        let _ = tx.send(());
    });
    assert!(watcher.watch_changes(notify));
    // The first call comes once the watch is open.
    rx.recv_timeout(Duration::from_secs(20))
        .expect("no notification when the watch opened");

    // Another store's prefix (which begins with this one's name) is not
    // this store.
    put(&elsewhere, "k");
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "a write to another store's prefix woke the watcher"
    );

    put(&writer, "k");
    rx.recv_timeout(Duration::from_secs(20))
        .expect("another client's write did not wake the watcher");
}
