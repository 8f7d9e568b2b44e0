//! The single writer: group commit and close.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

#[path = "support_sequences/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use seq_storage::{
    Capabilities, Durability, KeyRange, MemoryStorage, ScanIter, ScanOptions, Storage, WriteBatch,
};
use seq_stream::{Error, Record, Store, StoreOptions};

/// Counts synced writes; each sync takes `sync_delay` (a stand-in for fsync)
/// and, while `gate` is closed, blocks.
#[derive(Debug, Default)]
struct SlowStorage {
    inner: MemoryStorage,
    writes: AtomicU64,
    syncs: AtomicU64,
    sync_delay: Duration,
    gated: AtomicBool,
    /// Microseconds each `get` takes (a cold read).
    get_delay_us: AtomicU64,
    gate: Mutex<bool>,
    opened: Condvar,
    blocked: AtomicBool,
}

impl SlowStorage {
    fn new(sync_delay: Duration) -> Self {
        Self {
            sync_delay,
            ..Self::default()
        }
    }

    fn close_gate(&self) {
        *self.gate.lock().unwrap() = false;
        self.gated.store(true, Ordering::SeqCst);
    }

    fn open_gate(&self) {
        self.gated.store(false, Ordering::SeqCst);
        *self.gate.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl Storage for SlowStorage {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn get(&self, key: &[u8]) -> seq_storage::Result<Option<Bytes>> {
        std::thread::sleep(Duration::from_micros(
            self.get_delay_us.load(Ordering::SeqCst),
        ));
        self.inner.get(key)
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> seq_storage::Result<ScanIter<'_>> {
        self.inner.scan(range, options)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> seq_storage::Result<()> {
        if self.gated.load(Ordering::SeqCst) {
            self.blocked.store(true, Ordering::SeqCst);
            let mut open = self.gate.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        if durability == Durability::Sync {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.sync_delay);
        }
        self.inner.write(batch, durability)
    }

    fn flush(&self) -> seq_storage::Result<()> {
        self.inner.flush()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn should_group_concurrent_writers_into_fewer_syncs() {
    let storage = Arc::new(SlowStorage::new(Duration::from_millis(2)));
    let store = Store::open_arc(storage.clone(), StoreOptions::default()).unwrap();
    let before = storage.syncs.load(Ordering::SeqCst);
    let mut tasks = Vec::new();
    for w in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut commits = Vec::new();
            for _ in 0..20 {
                commits.push(
                    store
                        .put_sequenced(&format!("w{w}"), "v", &[1])
                        .await
                        .unwrap()
                        .1,
                );
            }
            commits
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let commits = task.await.unwrap();
        assert!(commits.windows(2).all(|w| w[0] < w[1]));
        all.extend(commits);
    }
    let syncs = storage.syncs.load(Ordering::SeqCst) - before;
    let writes = all.len() as u64;
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len() as u64,
        writes,
        "every write has its own commit number"
    );
    assert!(
        syncs < writes,
        "{syncs} syncs for {writes} writes: no grouping"
    );
    eprintln!(
        "{writes} writes in {syncs} syncs ({:.1} per sync)",
        writes as f64 / syncs as f64
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_arriving_while_the_writer_prepares_a_group_joins_it() {
    let storage = Arc::new(SlowStorage::new(Duration::from_millis(2)));
    let store = Store::open_arc(storage.clone(), StoreOptions::default()).unwrap();
    let produce = |segment: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .produce("s", segment, vec![Record::new("x")], Default::default())
                .await
        })
    };
    // Teach the writer's pacing that callers come in numbers: a group of
    // one with two queued behind it, then a group of those two.
    store
        .produce("s", "warm", vec![Record::new("x")], Default::default())
        .await
        .unwrap();
    storage.close_gate();
    let first = produce("w1");
    while !storage.blocked.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (second, third) = (produce("w2"), produce("w3"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    storage.open_gate();
    for task in [first, second, third] {
        task.await.unwrap().unwrap();
    }

    // A new segment's status is a cold read: preparing `a` takes 100 ms,
    // long past any gathering wait. `b` arrives meanwhile and shares its
    // sync instead of waiting for a commit of its own.
    storage.get_delay_us.store(100_000, Ordering::SeqCst);
    let before = storage.syncs.load(Ordering::SeqCst);
    let a = produce("a");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let b = produce("b");
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert_eq!((a.last_sequence, b.last_sequence), (1, 1));
    assert_eq!(storage.syncs.load(Ordering::SeqCst) - before, 1);
    assert_eq!(a.last_timestamp, b.last_timestamp, "one commit group");
    storage.get_delay_us.store(0, Ordering::SeqCst);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn should_fail_pending_requests_with_closed_on_close() {
    let storage = Arc::new(SlowStorage::new(Duration::ZERO));
    let store = Store::open_arc(storage.clone(), StoreOptions::default()).unwrap();
    store.put_sequenced("warm", "v", &[1]).await.unwrap();
    storage.close_gate();
    // The first request is taken by the writer and blocks in storage.
    let inflight = {
        let store = store.clone();
        tokio::spawn(async move { store.put_sequenced("a", "first", &[1]).await })
    };
    while !storage.blocked.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // These queue behind it.
    let mut queued = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        queued.push(tokio::spawn(async move {
            store.put_sequenced("b", format!("{i}"), &[1]).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let closing = {
        let store = store.clone();
        tokio::spawn(async move { store.close().await })
    };
    // Queued requests fail at once, while the in-flight group still waits.
    for task in queued {
        let outcome = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(outcome, Err(Error::Closed { .. })), "{outcome:?}");
    }
    assert!(!inflight.is_finished());
    storage.open_gate();
    // The group the writer took is finished, not dropped.
    let (key, _) = inflight.await.unwrap().unwrap();
    closing.await.unwrap().unwrap();
    // After close every call fails with Closed.
    assert!(matches!(
        store.put_sequenced("c", "v", &[1]).await,
        Err(Error::Closed { .. })
    ));
    assert!(matches!(store.flush().await, Err(Error::Closed { .. })));
    let reopened = support::open_arc(Arc::new(storage.inner.clone()));
    assert!(reopened.get_sequenced(&key).await.unwrap().is_some());
    assert!(reopened.range_sequenced("b", 10).await.unwrap().is_empty());
    reopened.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_hand_out_sequence_numbers_while_writer_is_stalled() {
    // The sequence fast path never queues, so a full queue does not stall it.
    let storage = Arc::new(SlowStorage::new(Duration::ZERO));
    let mut options = StoreOptions::default();
    options.queue_capacity = 1;
    let store = Store::open_arc(storage.clone(), options).unwrap();
    store
        .create_sequence("s", seq_stream::SequenceOptions::default())
        .await
        .unwrap();
    let seq = store.sequence("s").await.unwrap();
    assert_eq!(seq.next().await.unwrap(), 1);
    storage.close_gate();
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move { store.put_sequenced("x", "v", &[1]).await })
    };
    while !storage.blocked.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for want in 2..100 {
        assert_eq!(seq.next().await.unwrap(), want);
    }
    storage.open_gate();
    blocked.await.unwrap().unwrap();
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_return_busy_from_try_write_when_queue_is_full() {
    let storage = Arc::new(SlowStorage::new(Duration::ZERO));
    let mut options = StoreOptions::default();
    options.queue_capacity = 1;
    let store = Store::open_arc(storage.clone(), options).unwrap();
    assert!(store.try_put_sequenced("t", "v", &[1]).await.is_ok());
    storage.close_gate();
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move { store.put_sequenced("t", "v", &[1]).await })
    };
    while !storage.blocked.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let before = support::dump_storage(&storage.inner);
    let err = store.try_put_sequenced("t", "w", &[1]).await.unwrap_err();
    assert!(matches!(err, Error::Busy), "{err}");
    assert_eq!(support::dump_storage(&storage.inner), before);
    storage.open_gate();
    blocked.await.unwrap().unwrap();
    let (key, _) = store.try_put_sequenced("t", "w", &[1]).await.unwrap();
    assert_eq!(key, "t-00000000000000000003");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn should_split_a_group_that_exceeds_the_backend_batch_limits() {
    use seq_storage::CrashStorage;
    use seq_stream::{ProduceOptions, Record};

    // At most 12 operations per batch: a produce writes its entries and
    // status, and each group a commit record and an index record, so 64
    // concurrent produces need many batches.
    let storage = Arc::new(
        CrashStorage::new().with_capabilities(Capabilities::persistent().with_max_batch_ops(12)),
    );
    let store = Store::open_arc(storage.clone(), StoreOptions::default()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .produce(
                    "s",
                    &format!("g{}", i % 4),
                    vec![Record::new(format!("r{i}"))],
                    ProduceOptions::default(),
                )
                .await
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .expect("every produce fits after the split");
    }
    let mut total = 0;
    for g in 0..4 {
        let status = store.status("s", &format!("g{g}")).await.unwrap();
        assert_eq!(status.count, 16);
        total += status.count;
    }
    assert_eq!(total, 64);

    // One produce that alone exceeds the limit is refused, typed, and
    // writes nothing.
    let records = (0..10).map(|i| Record::new(format!("big{i}"))).collect();
    let refused = store
        .produce("s", "big", records, ProduceOptions::default())
        .await;
    assert!(
        matches!(refused, Err(Error::TooLarge { .. })),
        "{refused:?}"
    );
    assert!(store.status("s", "big").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_trim_and_collect_the_index_within_the_backend_batch_limits() {
    use seq_storage::CrashStorage;
    use seq_stream::{ProduceOptions, Record, Trim};

    // At most 12 operations per batch, as on a tightly configured etcd.
    let storage = Arc::new(
        CrashStorage::new().with_capabilities(Capabilities::persistent().with_max_batch_ops(12)),
    );
    let store = Store::open_arc(storage.clone(), StoreOptions::default()).unwrap();
    // 60 groups, each its own index record, alternating two segments.
    for i in 0..60 {
        let segment = if i % 2 == 0 { "g" } else { "h" };
        store
            .produce(
                "s",
                segment,
                vec![Record::new(format!("r{i}"))],
                ProduceOptions::default(),
            )
            .await
            .unwrap();
    }
    let index_records = || {
        storage
            .scan(
                seq_storage::KeyRange::prefix(&b"IDX"[..]),
                seq_storage::ScanOptions::forward(),
            )
            .unwrap()
            .count()
    };
    assert_eq!(index_records(), 60);
    // Trimming "g" frees only the first record ("h" holds the second);
    // trimming "h" then frees all 59 left, more than one batch may name
    // one key at a time.
    store.trim("s", "g", Trim::KeepLast(0)).await.unwrap();
    assert_eq!(index_records(), 59);
    let report = store.trim("s", "h", Trim::KeepLast(0)).await.unwrap();
    assert_eq!(report.removed, 30);
    assert_eq!(index_records(), 0);
    assert_eq!(store.count_after("s", None).await.unwrap(), 0);

    // Forgetting idempotency keys takes an operation per entry: a trim of
    // such entries goes in steps that fit the limit.
    for i in 0..30 {
        let record = Record::new(format!("k{i}")).with_idempotency_key(format!("key-{i}"));
        store
            .produce("s", "k", vec![record], ProduceOptions::default())
            .await
            .unwrap();
    }
    let report = store.trim("s", "k", Trim::KeepLast(0)).await.unwrap();
    assert_eq!((report.removed, report.status.count), (30, 0));
    // The keys are forgotten with their entries: the same key appends again.
    let again = Record::new("again").with_idempotency_key("key-0");
    let receipt = store
        .produce_receipt("s", "k", vec![again], ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!((receipt.appended, receipt.sequences[0]), (1, 31));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_made_while_a_produce_is_written_yields_it() {
    let storage = Arc::new(SlowStorage::new(Duration::ZERO));
    let store = Store::open_arc(storage.clone(), StoreOptions::default()).unwrap();
    store
        .produce("s", "a", vec![Record::new("first")], Default::default())
        .await
        .unwrap();
    // The second produce is prepared and blocks in storage: its change is
    // decided but not yet applied when the subscription is made.
    storage.close_gate();
    let second = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .produce("s", "a", vec![Record::new("second")], Default::default())
                .await
        })
    };
    while !storage.blocked.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut segment = store.subscribe_segment("s", "a").await.unwrap();
    let mut space = store.subscribe_space("*").await.unwrap();
    assert_eq!(segment.snapshot[0].last_sequence, 1);
    assert_eq!(space.snapshot[0].last_sequence, 1);
    storage.open_gate();
    assert_eq!(second.await.unwrap().unwrap().last_sequence, 2);
    for subscription in [&mut segment, &mut space] {
        let update = tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .expect("the produce written after the snapshot reaches the subscription")
            .unwrap()
            .unwrap();
        assert_eq!((update.segment.as_str(), update.last_sequence), ("a", 2));
    }
    store.close().await.unwrap();
}
