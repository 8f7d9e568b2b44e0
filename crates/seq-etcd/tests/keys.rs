//! Keys and prefixes: binary keys, the empty key, stores sharing a cluster
//! under prefixes that start with one another; connecting; calls from inside
//! a tokio runtime.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use seq_etcd::testing::Cluster;
use seq_etcd::{EtcdError, EtcdOptions, EtcdStorage, etcd_error};
use seq_storage::conformance::all_keys;
use seq_storage::{Durability, Error, KeyRange, ScanOptions, Storage, WriteBatch};

static CLUSTER: LazyLock<Cluster> = LazyLock::new(Cluster::start);

fn connect(prefix: &[u8]) -> EtcdStorage {
    EtcdStorage::connect(CLUSTER.options(prefix)).expect("connect")
}

/// A prefix no other test uses.
fn unique(tag: &str) -> Vec<u8> {
    format!("keys/{}/{tag}", uuid::Uuid::new_v4()).into_bytes()
}

fn put(store: &EtcdStorage, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(key.to_vec(), value.to_vec());
    store.write(batch, Durability::Sync).expect("put");
}

#[test]
fn binary_keys_with_zero_and_ff_bytes_and_the_empty_key_round_trip() {
    let store = connect(&unique("binary"));
    let all: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x00, 0xFF],
        vec![0x01],
        vec![0xFF],
        vec![0xFF, 0x00],
        vec![0xFF, 0xFF, 0xFF],
    ];
    for key in all.iter().rev() {
        put(&store, key, key);
    }
    assert_eq!(all_keys(&store), all);
    for key in &all {
        assert_eq!(store.get(key).expect("get").as_deref(), Some(&key[..]));
    }
    let reversed: Vec<Vec<u8>> = store
        .scan(KeyRange::prefix([0xFF]), ScanOptions::reverse())
        .expect("scan")
        .map(|e| e.expect("entry").0.to_vec())
        .collect();
    assert_eq!(
        reversed,
        vec![vec![0xFF, 0xFF, 0xFF], vec![0xFF, 0x00], vec![0xFF]]
    );
    // The empty key holds the empty value (itself), which is not "absent".
    let mut absent = WriteBatch::new();
    absent.require_absent(Vec::new());
    assert!(
        store
            .write(absent, Durability::Sync)
            .is_err_and(|e| e.is_conflict())
    );
    let mut batch = WriteBatch::new();
    batch.require_equals(Vec::new(), Vec::new()).delete(vec![]);
    store
        .write(batch, Durability::Sync)
        .expect("the empty key equals the empty value");
    assert_eq!(store.get(b"").expect("get"), None);
    let mut batch = WriteBatch::new();
    batch.delete_range(vec![], vec![0xFF]);
    store.write(batch, Durability::Sync).expect("range delete");
    assert_eq!(
        all_keys(&store),
        vec![vec![0xFF], vec![0xFF, 0x00], vec![0xFF, 0xFF, 0xFF]]
    );
}

#[test]
fn stores_whose_prefixes_start_with_one_another_are_isolated() {
    let base = unique("iso");
    let with = |tail: &[u8]| {
        let mut p = base.clone();
        p.extend_from_slice(tail);
        p
    };
    // Each prefix extends the one before, with the bytes that would let a
    // naive prefix scheme leak keys: `a` + `\0\x01…` is the namespace of `a`.
    let prefixes = [
        with(b""),
        with(b"a"),
        with(b"a\x00"),
        with(b"a\x00\x01"),
        with(b"a\xff"),
    ];
    let stores: Vec<EtcdStorage> = prefixes.iter().map(|p| connect(p)).collect();
    for (i, store) in stores.iter().enumerate() {
        put(store, b"", &[i as u8]);
        put(store, b"\x00\x01k", &[i as u8]);
        put(store, b"\xff", &[i as u8]);
    }
    for (i, store) in stores.iter().enumerate() {
        assert_eq!(
            all_keys(store),
            vec![b"".to_vec(), b"\x00\x01k".to_vec(), b"\xff".to_vec()]
        );
        for (_, v) in store
            .scan(KeyRange::all(), ScanOptions::reverse())
            .expect("scan")
            .map(|e| e.expect("entry"))
        {
            assert_eq!(v[..], [i as u8], "store {i} saw another store's value");
        }
    }
    // A range delete of everything in one store leaves the others alone.
    let mut wipe = WriteBatch::new();
    wipe.delete_range(vec![], vec![0xFF]);
    stores[1].write(wipe, Durability::Sync).expect("wipe");
    assert_eq!(all_keys(&stores[1]), vec![b"\xff".to_vec()]);
    for i in [0, 2, 3, 4] {
        assert_eq!(all_keys(&stores[i]).len(), 3, "store {i}");
    }
    assert!(stores[1].namespace().starts_with(&prefixes[1]));
    assert!(stores[1].namespace().ends_with(b"\x00\x01"));
}

#[test]
fn a_store_reconnected_to_its_prefix_sees_its_data() {
    let prefix = unique("again");
    put(&connect(&prefix), b"k", b"v");
    assert_eq!(
        connect(&prefix).get(b"k").expect("get").as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn connect_rejects_unusable_options() {
    let no_endpoints = EtcdStorage::connect(EtcdOptions::new(Vec::<String>::new(), "p"));
    assert!(
        matches!(&no_endpoints, Err(Error::Io { source }) if source.kind() == std::io::ErrorKind::InvalidInput),
        "{no_endpoints:?}"
    );
    let tiny = EtcdStorage::connect(EtcdOptions {
        max_request_bytes: 1000,
        ..CLUSTER.options("p")
    });
    assert!(tiny.is_err());
    let no_ops = EtcdStorage::connect(EtcdOptions {
        max_txn_ops: 0,
        ..CLUSTER.options("p")
    });
    assert!(no_ops.is_err());
}

#[test]
fn connecting_to_no_cluster_fails_with_a_retriable_error_in_time() {
    // Nothing listens on the discard port.
    let started = Instant::now();
    let err = EtcdStorage::connect(EtcdOptions {
        request_timeout: Duration::from_millis(800),
        ..EtcdOptions::new(["127.0.0.1:9"], "nowhere")
    })
    .expect_err("nothing to connect to");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(etcd_error(&err), Some(EtcdError::Unavailable { .. })),
        "{err:?}"
    );
    assert!(seq_etcd::is_retriable(&err));
}

#[test]
fn a_store_is_usable_and_droppable_inside_a_tokio_runtime() {
    for flavor in ["current_thread", "multi_thread"] {
        let runtime = if flavor == "current_thread" {
            tokio::runtime::Builder::new_current_thread().build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
        }
        .expect("runtime");
        let prefix = unique(flavor);
        runtime.block_on(async move {
            let store = EtcdStorage::connect(CLUSTER.options(prefix)).expect("connect in async");
            put(&store, b"k", b"v");
            assert_eq!(store.get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
            assert_eq!(all_keys(&store).len(), 1);
            let task = tokio::spawn(async move {
                put(&store, b"k2", b"v2");
                // Dropped inside a task: must not panic.
                drop(store);
            });
            task.await.expect("task");
        });
    }
}
