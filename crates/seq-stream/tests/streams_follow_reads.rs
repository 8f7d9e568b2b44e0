//! A following stream reads storage again only after a commit: once a page
//! reaches the tail, the stream waits for the next commit instead of reading
//! the tail again at once (which would find nothing and cost a storage read
//! beside every produce it follows).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use seq_storage::{
    Capabilities, Durability, KeyRange, MemoryStorage, ScanIter, ScanOptions, Storage, WriteBatch,
};
use seq_stream::{
    EntryStream, MultiQuery, ProduceOptions, Record, SegmentQuery, SpaceQuery, Store,
};

/// Memory storage that counts its scans (a page read is one scan).
struct CountingStorage {
    inner: MemoryStorage,
    scans: Arc<AtomicUsize>,
}

impl Storage for CountingStorage {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn get(&self, key: &[u8]) -> seq_storage::Result<Option<Bytes>> {
        self.inner.get(key)
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> seq_storage::Result<ScanIter<'_>> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        self.inner.scan(range, options)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> seq_storage::Result<()> {
        self.inner.write(batch, durability)
    }

    fn flush(&self) -> seq_storage::Result<()> {
        self.inner.flush()
    }
}

fn open() -> (Store, Arc<AtomicUsize>) {
    let scans = Arc::new(AtomicUsize::new(0));
    let storage = CountingStorage {
        inner: MemoryStorage::new(),
        scans: scans.clone(),
    };
    (Store::open(storage).unwrap(), scans)
}

async fn produce(store: &Store, n: usize) {
    let records = (0..n)
        .map(|_| Record::new(Bytes::from_static(b"x")))
        .collect();
    store
        .produce("s", "g", records, ProduceOptions::default())
        .await
        .unwrap();
}

/// Follows `stream` past `n` produced entries while counting scans: none
/// while it waits at the tail, and reads again after each later produce.
async fn should_not_reread_the_tail_before_a_commit(
    store: &Store,
    scans: &AtomicUsize,
    mut stream: EntryStream,
) {
    let mut sequence = 0;
    for round in 1..=3 {
        // Yield everything produced so far; the last page ends at the tail.
        while sequence < round * 2 {
            let entry = stream.next().await.unwrap().unwrap();
            sequence += 1;
            assert_eq!(entry.sequence, sequence);
        }
        let before = scans.load(Ordering::SeqCst);
        // Nothing new: the follower waits without reading.
        let waited = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
        assert!(waited.is_err(), "round {round}: no entry is due yet");
        assert_eq!(
            scans.load(Ordering::SeqCst),
            before,
            "round {round}: the tail was read again before any commit"
        );
        produce(store, 2).await;
    }
    // And what a commit brings arrives, with a read after it.
    let before = scans.load(Ordering::SeqCst);
    let entry = stream.next().await.unwrap().unwrap();
    assert_eq!(entry.sequence, 7);
    assert!(scans.load(Ordering::SeqCst) > before);
}

#[tokio::test]
async fn a_segment_follower_waits_for_a_commit_before_reading_the_tail_again() {
    let (store, scans) = open();
    produce(&store, 2).await;
    let query = SegmentQuery {
        follow: true,
        ..SegmentQuery::default()
    };
    let stream = store.consume_segment("s", "g", query).unwrap();
    should_not_reread_the_tail_before_a_commit(&store, &scans, stream).await;
}

#[tokio::test]
async fn a_space_follower_waits_for_a_commit_before_reading_the_tail_again() {
    let (store, scans) = open();
    produce(&store, 2).await;
    let query = SpaceQuery {
        follow: true,
        ..SpaceQuery::default()
    };
    let stream = store.consume_space("s", query).unwrap();
    should_not_reread_the_tail_before_a_commit(&store, &scans, stream).await;
}

#[tokio::test]
async fn a_follower_of_several_spaces_waits_for_a_commit_before_reading_the_tail_again() {
    let (store, scans) = open();
    produce(&store, 2).await;
    let query = MultiQuery {
        offsets: [("s".to_owned(), None), ("t".to_owned(), None)].into(),
        follow: true,
        ..MultiQuery::default()
    };
    let stream = store.consume(query).unwrap();
    should_not_reread_the_tail_before_a_commit(&store, &scans, stream).await;
}
