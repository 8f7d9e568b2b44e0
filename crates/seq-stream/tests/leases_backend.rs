//! Leases on a backend that keeps leases itself (etcd; here
//! `MemoryStorage::with_leases`, which takes the same path): the backend's
//! lease decides expiry, not the store's clock.
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

use std::time::Duration;

use seq_storage::{MemoryStorage, Storage};
use seq_stream::{Error, LeaseEnd, LeaseOptions, ProduceOptions, Record, Store};

const LONG: Duration = Duration::from_secs(30);

fn open() -> (MemoryStorage, Store) {
    let storage = MemoryStorage::with_leases();
    let store = Store::open(storage.clone()).unwrap();
    (storage, store)
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_lives_on_a_backend_lease_and_release_revokes_it() {
    let (storage, store) = open();
    let lease = store.acquire_lease("k", LONG).await.unwrap();
    let backend = lease.backend_lease().expect("a backend lease");
    let leases = storage.leases().unwrap();
    assert!(leases.keep_alive(backend).unwrap().is_some());
    let info = store.lease_info("k").await.unwrap().unwrap();
    assert_eq!((info.holder, info.token), (Some(lease.holder()), 1));

    lease.release().await.unwrap();
    assert_eq!(leases.keep_alive(backend).unwrap(), None, "not revoked");
    let info = store.lease_info("k").await.unwrap().unwrap();
    assert_eq!((info.holder, info.token), (None, 1));
    let next = store.acquire_lease("k", LONG).await.unwrap();
    assert_eq!(next.token(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_backend_lease_frees_the_key_and_fences_the_old_holder() {
    let (_storage, store) = open();
    let old = store
        .acquire_lease_with(
            "k",
            LeaseOptions::new(Duration::from_millis(100)).without_renewal(),
        )
        .await
        .unwrap();
    assert_eq!(
        within("local deadline", old.signal().fired()).await,
        LeaseEnd::Lost
    );

    // Free once the backend lease (at least a second) lapses, not before.
    let started = tokio::time::Instant::now();
    let new = within("waiter", store.wait_lease("k", LeaseOptions::new(LONG)))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(new.token(), 2);

    let stale = store
        .produce(
            "s",
            "g",
            vec![Record::new("late")],
            ProduceOptions::default().with_fence(old.fence()),
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(Error::Fenced {
                token: 1,
                current: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    let written = store
        .status("s", "g")
        .await
        .map_or(0, |status| status.count);
    assert_eq!(written, 0, "a fenced produce wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_lease_not_the_store_clock_decides_expiry() {
    let (storage, store) = open();
    // The record's expiry passes at once; the backend lease is kept alive
    // by hand (as a holder whose clock runs slow would).
    let holder = store
        .acquire_lease_with(
            "k",
            LeaseOptions::new(Duration::from_millis(50)).without_renewal(),
        )
        .await
        .unwrap();
    let backend = holder.backend_lease().unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            storage
                .leases()
                .unwrap()
                .keep_alive(backend)
                .unwrap()
                .is_some()
        );
    }
    let attempt = store.acquire_lease("k", LONG).await;
    assert!(
        matches!(attempt, Err(Error::Conflict { ref what }) if what.contains("backend lease")),
        "{attempt:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_backend_lease_is_lost_at_the_next_renewal() {
    let (storage, store) = open();
    let lease = store
        .acquire_lease("k", Duration::from_millis(300))
        .await
        .unwrap();
    // A partition or an operator revokes the backend lease.
    storage
        .leases()
        .unwrap()
        .revoke(lease.backend_lease().unwrap())
        .unwrap();
    assert_eq!(
        within("renewal", lease.signal().fired()).await,
        LeaseEnd::Lost
    );
    let info = store.lease_info("k").await.unwrap().unwrap();
    assert_eq!(info.holder, None);
    let next = store.acquire_lease("k", LONG).await.unwrap();
    assert_eq!(next.token(), 2);
    assert!(matches!(
        store.check_fence(&lease.fence()).await,
        Err(Error::Fenced { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_without_backend_leases_grant_none() {
    let store = Store::open(MemoryStorage::new()).unwrap();
    let lease = store.acquire_lease("k", LONG).await.unwrap();
    assert_eq!(lease.backend_lease(), None);
}
