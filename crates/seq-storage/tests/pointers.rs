//! A storage behind `Arc` or `Box` is still that storage: every method,
//! overrides included, reaches the backend.

use std::sync::Arc;

use bytes::Bytes;
use seq_storage::{Durability, KeyRange, MemoryStorage, ScanOptions, Storage, WriteBatch};

/// Goes through `S`'s own `Storage` impl (the pointer's), not the pointee's.
fn exercise<S: Storage>(storage: &S) -> (bool, Option<Bytes>, usize) {
    let mut batch = WriteBatch::default();
    batch.put(Bytes::from_static(b"k"), Bytes::from_static(b"v"));
    storage.write(batch, Durability::Sync).expect("write");
    storage.flush().expect("flush");
    let scanned = storage
        .scan(KeyRange::all(), ScanOptions::forward())
        .expect("scan")
        .count();
    (
        storage.leases().is_some(),
        storage.get(b"k").expect("get"),
        scanned,
    )
}

#[test]
fn a_storage_behind_a_pointer_keeps_its_lease_service_and_its_data() {
    let expected = (true, Some(Bytes::from_static(b"v")), 1);
    assert_eq!(exercise(&Arc::new(MemoryStorage::with_leases())), expected);
    assert_eq!(exercise(&Box::new(MemoryStorage::with_leases())), expected);
    let shared: Arc<dyn Storage> = Arc::new(MemoryStorage::with_leases());
    assert_eq!(exercise(&Arc::new(shared)), expected);
}

#[test]
fn a_storage_without_leases_reports_none_through_a_pointer() {
    let (leases, ..) = exercise(&Box::new(MemoryStorage::new()));
    assert!(!leases);
}
