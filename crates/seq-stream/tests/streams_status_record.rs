//! How a segment's status is stored: a single-writer store rewrites the
//! status record only when more than the tail moves, as a bound the newest
//! entry completes; multi-writer mode rewrites it, exact, on every produce;
//! and a store that switches between the two keeps every status right.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use bytes::Bytes;
use seq_core::keys::{KeyBuilder, keyspace};
use seq_storage::{MemoryStorage, Storage};
use seq_stream::{ProduceOptions, Record, SegmentStatus, Store, StoreOptions, Trim};

fn status_key(space: &str, segment: &str) -> Bytes {
    Bytes::from(
        KeyBuilder::new(keyspace::INV)
            .str(space)
            .str(segment)
            .build(),
    )
}

/// The stored status record's frame version: 1 exact, 2 a bound.
fn record_version(storage: &MemoryStorage, space: &str, segment: &str) -> u8 {
    let value = storage.get(&status_key(space, segment)).unwrap().unwrap();
    seq_core::frame::decode(&value).unwrap().0
}

async fn produce(store: &Store, segment: &str, n: usize) -> SegmentStatus {
    let records = (0..n).map(|i| Record::new(format!("r{i}"))).collect();
    store
        .produce("s", segment, records, ProduceOptions::default())
        .await
        .unwrap()
}

fn span(status: &SegmentStatus) -> (u64, u64, u64) {
    (status.first_sequence, status.last_sequence, status.count)
}

#[tokio::test]
async fn appends_leave_the_status_record_alone_and_the_newest_entry_completes_it() {
    let storage = MemoryStorage::new();
    let store = Store::open(storage.clone()).unwrap();
    produce(&store, "g", 1).await;
    let written = storage.get(&status_key("s", "g")).unwrap();
    assert_eq!(record_version(&storage, "s", "g"), 2, "a bound");

    let status = produce(&store, "g", 2).await;
    assert_eq!(span(&status), (1, 3, 3));
    let status = produce(&store, "g", 1).await;
    assert_eq!(span(&status), (1, 4, 4));
    assert_eq!(
        storage.get(&status_key("s", "g")).unwrap(),
        written,
        "appends did not rewrite the record"
    );

    // Readers complete the bound from the newest entry: status, listings,
    // and a store opened afresh, whose writer goes on after sequence 4.
    let read = store.status("s", "g").await.unwrap();
    assert_eq!(span(&read), (1, 4, 4));
    assert_eq!(read.last_timestamp, status.last_timestamp);
    let listed = store.list_segments("s").await.unwrap();
    assert_eq!(listed, vec![read.clone()]);
    store.close().await.unwrap();
    let store = Store::open(storage.clone()).unwrap();
    assert_eq!(store.status("s", "g").await.unwrap(), read);
    assert_eq!(span(&produce(&store, "g", 1).await), (1, 5, 5));
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_trim_rewrites_the_status_record_and_the_next_append_goes_on_above_it() {
    let storage = MemoryStorage::new();
    let store = Store::open(storage.clone()).unwrap();
    produce(&store, "g", 5).await;
    produce(&store, "g", 5).await;
    let before = storage.get(&status_key("s", "g")).unwrap();
    store.trim("s", "g", Trim::KeepLast(0)).await.unwrap();
    assert_ne!(storage.get(&status_key("s", "g")).unwrap(), before);
    let emptied = store.status("s", "g").await.unwrap();
    assert_eq!(span(&emptied), (11, 10, 0));
    store.close().await.unwrap();

    let store = Store::open(storage.clone()).unwrap();
    assert_eq!(store.status("s", "g").await.unwrap(), emptied);
    let status = produce(&store, "g", 2).await;
    assert_eq!(span(&status), (11, 12, 2));
    assert_eq!(store.status("s", "g").await.unwrap(), status);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_store_switching_between_single_and_multi_writer_mode_keeps_every_status_right() {
    let storage = MemoryStorage::new();
    let mut shared = StoreOptions::default();
    shared.shared = true;

    // Single writer: a bound that lags three appends.
    let store = Store::open(storage.clone()).unwrap();
    produce(&store, "g", 1).await;
    produce(&store, "g", 3).await;
    store.close().await.unwrap();

    // Multi-writer mode completes it, goes on after it, and stores the
    // record exact.
    let store = Store::open_arc(Arc::new(storage.clone()), shared.clone()).unwrap();
    assert_eq!(span(&produce(&store, "g", 1).await), (1, 5, 5));
    assert_eq!(record_version(&storage, "s", "g"), 1, "exact");
    store.close().await.unwrap();

    // A single writer again: its first append turns the exact record into
    // a bound (so it never lags behind as an exact one), later ones leave
    // it alone.
    let store = Store::open(storage.clone()).unwrap();
    assert_eq!(span(&produce(&store, "g", 1).await), (1, 6, 6));
    assert_eq!(record_version(&storage, "s", "g"), 2, "a bound again");
    assert_eq!(span(&produce(&store, "g", 2).await), (1, 8, 8));
    store.close().await.unwrap();

    let store = Store::open_arc(Arc::new(storage.clone()), shared).unwrap();
    assert_eq!(span(&store.status("s", "g").await.unwrap()), (1, 8, 8));
    assert_eq!(span(&produce(&store, "g", 1).await), (1, 9, 9));
    store.close().await.unwrap();
}
