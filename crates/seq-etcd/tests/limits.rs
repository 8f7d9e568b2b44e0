//! etcd's limits at their defaults: what the store reports, that batches at
//! the limits are accepted by a default-configured etcd, and that batches
//! over them fail with `TooLarge` before anything is sent.

use std::sync::LazyLock;

use seq_etcd::testing::Cluster;
use seq_etcd::{ETCD_DEFAULT_MAX_REQUEST_BYTES, ETCD_DEFAULT_MAX_TXN_OPS, EtcdStorage};
use seq_storage::{Durability, Error, KeyRange, ScanOptions, Storage, WriteBatch};

/// One member with etcd's default `--max-request-bytes` and `--max-txn-ops`.
static CLUSTER: LazyLock<Cluster> = LazyLock::new(|| Cluster::builder().members(1).start());

fn store() -> EtcdStorage {
    let prefix = format!("limits/{}", uuid::Uuid::new_v4());
    EtcdStorage::connect(CLUSTER.options(prefix)).expect("connect")
}

fn count(store: &EtcdStorage) -> usize {
    store
        .scan(KeyRange::all(), ScanOptions::forward())
        .expect("scan")
        .count()
}

fn too_large(result: seq_storage::Result<()>) -> (&'static str, usize, usize) {
    match result {
        Err(Error::TooLarge { what, len, limit }) => (what, len, limit),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn capabilities_report_etcd_default_limits_less_headroom() {
    let caps = store().capabilities();
    assert!(caps.persistent && caps.shared);
    assert_eq!(caps.max_batch_ops, Some(ETCD_DEFAULT_MAX_TXN_OPS));
    let batch = caps.max_batch_bytes.expect("a batch limit");
    assert_eq!(batch, ETCD_DEFAULT_MAX_REQUEST_BYTES - (64 << 10));
    assert_eq!(caps.max_value_len, Some(batch - (4 << 10)));
}

#[test]
fn batches_at_the_limits_are_accepted_by_a_default_etcd() {
    let store = store();
    let caps = store.capabilities();

    let mut ops = WriteBatch::new();
    for i in 0..ETCD_DEFAULT_MAX_TXN_OPS {
        ops.put(format!("op/{i:04}").into_bytes(), vec![1u8; 100]);
    }
    store.write(ops, Durability::Sync).expect("128 operations");

    let value_limit = caps.max_value_len.expect("a value limit");
    let mut value = WriteBatch::new();
    value.put(vec![b'v'; 4000], vec![2u8; value_limit]);
    store
        .write(value, Durability::Sync)
        .expect("a value at the limit, with a 4000-byte key");

    // Fill the batch limit exactly with the most operations allowed.
    let batch_limit = caps.max_batch_bytes.expect("a batch limit");
    let per_op = batch_limit / ETCD_DEFAULT_MAX_TXN_OPS;
    let mut full = WriteBatch::new();
    for i in 0..ETCD_DEFAULT_MAX_TXN_OPS {
        let key = format!("full/{i:04}").into_bytes();
        let value_len = if i + 1 == ETCD_DEFAULT_MAX_TXN_OPS {
            batch_limit - full.byte_len() - key.len()
        } else {
            per_op - key.len()
        };
        full.put(key, vec![3u8; value_len]);
    }
    assert_eq!(full.byte_len(), batch_limit);
    // Preconditions on top, as an engine's batch would have.
    full.require_absent(b"full/none".to_vec());
    store
        .write(full, Durability::Sync)
        .expect("a batch at the byte and operation limits");
    assert_eq!(count(&store), 2 * ETCD_DEFAULT_MAX_TXN_OPS + 1);
}

#[test]
fn batch_over_the_operation_limit_is_too_large_and_writes_nothing() {
    let store = store();
    let mut batch = WriteBatch::new();
    for i in 0..=ETCD_DEFAULT_MAX_TXN_OPS {
        batch.put(format!("k/{i}").into_bytes(), b"v".to_vec());
    }
    let (what, len, limit) = too_large(store.write(batch, Durability::Sync));
    assert_eq!(what, "batch operations");
    assert_eq!((len, limit), (129, 128));
    assert_eq!(count(&store), 0);
}

#[test]
fn range_delete_split_around_later_puts_counts_every_piece() {
    let store = store();
    let mut batch = WriteBatch::new();
    batch.delete_range(b"a".to_vec(), b"z".to_vec());
    for i in 0..64u8 {
        batch.put(vec![b'm', i], b"v".to_vec());
    }
    // 65 operations, but etcd needs 64 puts and 65 pieces of the range delete.
    assert_eq!(batch.len(), 65);
    let (what, len, limit) = too_large(store.write(batch, Durability::Sync));
    assert!(what.starts_with("batch operations"), "{what}");
    assert_eq!((len, limit), (129, 128));
    assert_eq!(count(&store), 0);
}

#[test]
fn precondition_values_count_toward_the_request_size() {
    let store = store();
    let big = vec![9u8; 1 << 20];
    let mut seed = WriteBatch::new();
    seed.put(b"big".to_vec(), big.clone());
    store.write(seed, Durability::Sync).expect("seed");

    let mut batch = WriteBatch::new();
    batch.require_equals(b"big".to_vec(), big.clone());
    batch.put(b"big".to_vec(), big);
    let (what, len, limit) = too_large(store.write(batch, Durability::Sync));
    assert_eq!(what, "etcd request");
    assert!(len > 2 << 20 && limit < ETCD_DEFAULT_MAX_REQUEST_BYTES);
    assert_eq!(store.get(b"big").expect("get").map(|v| v[0]), Some(9));
}

#[test]
fn too_many_preconditions_is_too_large() {
    let store = store();
    let mut batch = WriteBatch::new();
    for i in 0..=ETCD_DEFAULT_MAX_TXN_OPS {
        batch.require_absent(format!("p/{i}").into_bytes());
    }
    batch.put(b"p".to_vec(), b"v".to_vec());
    let (what, ..) = too_large(store.write(batch, Durability::Sync));
    assert_eq!(what, "batch preconditions");
    assert_eq!(count(&store), 0);
}

#[test]
fn oversized_batches_are_rejected_without_contacting_etcd() {
    // A cluster of its own, stopped once the store is connected: an answer
    // other than TooLarge would need a round trip, which would fail.
    let cluster = Cluster::builder().members(1).start();
    let mut options = cluster.options("offline");
    options.request_timeout = std::time::Duration::from_secs(1);
    let store = EtcdStorage::connect(options).expect("connect");
    let caps = store.capabilities();
    cluster.kill(0);

    let mut value = WriteBatch::new();
    value.put(
        b"v".to_vec(),
        vec![0u8; caps.max_value_len.expect("limit") + 1],
    );
    assert_eq!(too_large(store.write(value, Durability::Sync)).0, "value");

    let mut ops = WriteBatch::new();
    for i in 0..=ETCD_DEFAULT_MAX_TXN_OPS {
        ops.put(format!("k/{i}").into_bytes(), b"v".to_vec());
    }
    assert_eq!(
        too_large(store.write(ops, Durability::Sync)).0,
        "batch operations"
    );

    let mut small = WriteBatch::new();
    small.put(b"k".to_vec(), b"v".to_vec());
    let err = store
        .write(small, Durability::Sync)
        .expect_err("no member is running");
    assert!(seq_etcd::is_retriable(&err), "{err:?}");
}

#[test]
fn a_scan_of_large_values_reads_smaller_pages_when_a_page_is_too_large() {
    let store = store();
    let len = store.capabilities().max_value_len.expect("a value limit");
    // 14 values at the limit: 20 MiB, more than the client decodes in one
    // answer (16 MiB), so a page of all of them must be split.
    for i in 0..14u8 {
        let mut batch = WriteBatch::new();
        batch.put(vec![b'L', i], vec![i; len]);
        store.write(batch, Durability::Sync).expect("large value");
    }
    for options in [ScanOptions::forward(), ScanOptions::reverse()] {
        let entries: Vec<_> = store
            .scan(KeyRange::prefix(b"L"), options)
            .expect("scan")
            .collect::<seq_storage::Result<_>>()
            .expect("entries");
        assert_eq!(entries.len(), 14, "{options:?}");
        for (key, value) in entries {
            assert_eq!(value.len(), len);
            assert!(value.iter().all(|&b| b == key[1]));
        }
    }
}
