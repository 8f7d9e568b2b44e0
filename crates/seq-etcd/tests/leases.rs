//! etcd leases through the store, beyond the conformance suite: leases
//! belong to the cluster (any store may keep alive or revoke them), ttls are
//! rounded up to whole seconds, leased puts coalesce like plain puts, and
//! leased batches at etcd's default limits are accepted.

use std::sync::LazyLock;
use std::time::Duration;

use seq_etcd::testing::Cluster;
use seq_etcd::{ETCD_DEFAULT_MAX_TXN_OPS, EtcdStorage, is_retriable};
use seq_storage::conformance::all_keys;
use seq_storage::{Durability, Error, LeaseId, Leases, Storage, WriteBatch};

/// One member with etcd's default limits and election timeout (so its
/// minimum lease ttl is 2 s).
static CLUSTER: LazyLock<Cluster> = LazyLock::new(|| Cluster::builder().members(1).start());

fn store() -> EtcdStorage {
    let prefix = format!("leases/{}", uuid::Uuid::new_v4());
    EtcdStorage::connect(CLUSTER.options(prefix)).expect("connect")
}

fn leases(store: &EtcdStorage) -> &dyn Leases {
    store.leases().expect("etcd has leases")
}

#[test]
fn capabilities_report_leases() {
    let store = store();
    assert!(store.capabilities().leases);
    assert!(store.leases().is_some());
}

#[test]
fn a_lease_serves_every_store_on_the_cluster() {
    let (a, b) = (store(), store());
    let lease = leases(&a).grant(Duration::from_secs(30)).expect("grant");
    for store in [&a, &b] {
        let mut batch = WriteBatch::new();
        batch.put_leased(&b"k"[..], &b"v"[..], lease);
        store.write(batch, Durability::Sync).expect("leased put");
    }
    assert!(
        leases(&b).keep_alive(lease).expect("keep_alive").is_some(),
        "a lease granted through one store is kept alive through another"
    );
    leases(&b).revoke(lease).expect("revoke");
    assert!(all_keys(&a).is_empty() && all_keys(&b).is_empty());
}

#[test]
fn ttl_is_rounded_up_to_whole_seconds() {
    let store = store();
    let lease = leases(&store)
        .grant(Duration::from_millis(2_500))
        .expect("grant");
    let ttl = leases(&store).keep_alive(lease).expect("keep_alive");
    assert_eq!(ttl, Some(Duration::from_secs(3)));
    leases(&store).revoke(lease).expect("revoke");

    // Below etcd's minimum (2 s at the default election timeout): raised.
    let short = leases(&store).grant(Duration::ZERO).expect("grant");
    let ttl = leases(&store).keep_alive(short).expect("keep_alive");
    assert!(ttl.is_some_and(|ttl| ttl >= Duration::from_secs(1)));
    leases(&store).revoke(short).expect("revoke");
}

#[test]
fn the_last_put_of_a_key_in_a_batch_decides_its_lease() {
    let store = store();
    let lease = leases(&store)
        .grant(Duration::from_secs(30))
        .expect("grant");
    let mut batch = WriteBatch::new();
    batch
        .put_leased(&b"then-plain"[..], &b"1"[..], lease)
        .put(&b"then-plain"[..], &b"2"[..])
        .put(&b"then-leased"[..], &b"1"[..])
        .put_leased(&b"then-leased"[..], &b"2"[..], lease)
        .delete_range(&b"r"[..], &b"s"[..])
        .put_leased(&b"r1"[..], &b"1"[..], lease);
    store.write(batch, Durability::Sync).expect("batch");
    assert_eq!(
        all_keys(&store),
        vec![
            b"r1".to_vec(),
            b"then-leased".to_vec(),
            b"then-plain".to_vec()
        ]
    );
    leases(&store).revoke(lease).expect("revoke");
    assert_eq!(all_keys(&store), vec![b"then-plain".to_vec()]);
}

#[test]
fn lease_zero_is_not_found_and_nothing_is_sent() {
    let store = store();
    let mut batch = WriteBatch::new();
    batch
        .put(&b"plain"[..], &b"1"[..])
        .put_leased(&b"k"[..], &b"v"[..], LeaseId(0));
    match store.write(batch, Durability::Sync) {
        Err(err @ Error::LeaseNotFound { lease: LeaseId(0) }) => {
            assert!(!is_retriable(&err), "a missing lease is not transient");
        }
        other => panic!("expected LeaseNotFound for lease 0, got {other:?}"),
    }
    assert!(all_keys(&store).is_empty());
}

#[test]
fn revoked_lease_is_not_found_and_not_retriable() {
    let store = store();
    let lease = leases(&store)
        .grant(Duration::from_secs(30))
        .expect("grant");
    leases(&store).revoke(lease).expect("revoke");
    leases(&store).revoke(lease).expect("revoke again");
    assert_eq!(leases(&store).keep_alive(lease).expect("keep_alive"), None);
    let mut batch = WriteBatch::new();
    batch.put_leased(&b"k"[..], &b"v"[..], lease);
    match store.write(batch, Durability::Sync) {
        Err(err @ Error::LeaseNotFound { lease: named }) => {
            assert_eq!(named, lease);
            assert!(!is_retriable(&err));
        }
        other => panic!("expected LeaseNotFound, got {other:?}"),
    }
}

#[test]
fn leased_batches_at_the_limits_are_accepted_by_a_default_etcd() {
    let store = store();
    let lease = leases(&store)
        .grant(Duration::from_secs(30))
        .expect("grant");

    let mut ops = WriteBatch::new();
    for i in 0..ETCD_DEFAULT_MAX_TXN_OPS {
        ops.put_leased(format!("op/{i:04}").into_bytes(), vec![1u8; 100], lease);
    }
    store.write(ops, Durability::Sync).expect("128 leased puts");

    let value_limit = store.capabilities().max_value_len.expect("a value limit");
    let mut value = WriteBatch::new();
    value.put_leased(vec![b'v'; 4000], vec![2u8; value_limit], lease);
    store
        .write(value, Durability::Sync)
        .expect("a leased value at the limit, with a 4000-byte key");

    let mut over = WriteBatch::new();
    for i in 0..=ETCD_DEFAULT_MAX_TXN_OPS {
        over.put_leased(format!("over/{i:04}").into_bytes(), vec![1u8; 10], lease);
    }
    assert!(matches!(
        store.write(over, Durability::Sync),
        Err(Error::TooLarge { .. })
    ));

    leases(&store).revoke(lease).expect("revoke");
    assert!(all_keys(&store).is_empty());
}
