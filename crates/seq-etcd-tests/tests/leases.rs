//! Leases and fencing between two stores (two etcd clients, two writers) on
//! a real 3-member etcd cluster: a holder that stops renewing loses the
//! lease (its etcd lease lapses, on etcd's clock), the next holder's token
//! is higher, and the old holder's fenced produce fails with `Fenced` and
//! writes nothing.
#![allow(clippy::unwrap_used)] // A failed unwrap is a test failure.

use std::time::Duration;

use seq_etcd::testing::Cluster;
use seq_stream::{Error, LeaseOptions, ProduceOptions, Record, Store};

fn open(cluster: &Cluster, prefix: &str) -> Store {
    Store::open_etcd(cluster.options(prefix.as_bytes().to_vec())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_stops_renewing_is_fenced_out_by_the_next_holder() {
    let cluster = Cluster::start();
    let prefix = format!("leases-{}", uuid::Uuid::new_v4());
    let (a, b) = (open(&cluster, &prefix), open(&cluster, &prefix));
    assert!(a.is_multi_writer() && b.is_multi_writer());

    // A holds the lease but stops renewing (a paused or partitioned holder).
    let ttl = Duration::from_millis(800);
    let old = a
        .acquire_lease_with("leader", LeaseOptions::new(ttl).without_renewal())
        .await
        .unwrap();
    assert!(
        old.backend_lease().is_some(),
        "a grant on etcd lives on an etcd lease"
    );
    let refused = b.acquire_lease_with("leader", LeaseOptions::new(ttl)).await;
    assert!(
        matches!(refused, Err(Error::Conflict { .. })),
        "{refused:?}"
    );

    // After the ttl B gets it, with a higher token.
    let new = tokio::time::timeout(
        Duration::from_secs(20),
        b.wait_lease("leader", LeaseOptions::new(Duration::from_secs(30))),
    )
    .await
    .expect("B never got the lapsed lease")
    .unwrap();
    assert!(
        new.token() > old.token(),
        "{} vs {}",
        new.token(),
        old.token()
    );

    // A, unaware, writes with its stale token: refused, nothing written.
    let stale = a
        .produce(
            "jobs",
            "queue",
            vec![Record::new("from the old holder")],
            ProduceOptions::default().with_fence(old.fence()),
        )
        .await;
    assert!(matches!(stale, Err(Error::Fenced { .. })), "{stale:?}");
    assert!(b.status("jobs", "queue").await.unwrap().is_empty());

    // B's fenced write goes through and A sees it.
    b.produce(
        "jobs",
        "queue",
        vec![Record::new("from the new holder")],
        ProduceOptions::default().with_fence(new.fence()),
    )
    .await
    .unwrap();
    assert_eq!(a.status("jobs", "queue").await.unwrap().last_sequence, 1);

    // Tokens persist: a third store sees the current token.
    let c = open(&cluster, &prefix);
    let info = c.lease_info("leader").await.unwrap().unwrap();
    assert_eq!(info.token, new.token());
    assert_eq!(info.holder, Some(new.holder()));
    let token = new.token();
    new.release().await.unwrap();
    let info = c.lease_info("leader").await.unwrap().unwrap();
    assert_eq!((info.holder, info.token), (None, token));
    for store in [a, b, c] {
        store.close().await.unwrap();
    }
}
