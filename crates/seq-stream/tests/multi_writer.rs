//! Multi-writer mode on one in-process storage shared by several `Store`s
//! (each with its own writer), the way several processes share an etcd
//! cluster: numbers are never handed out twice, segments stay dense and in
//! order, idempotency keys, leases and fencing hold across writers.
//!
//! The same guarantees on a real etcd cluster with separate processes are
//! tested in `crates/seq-etcd` (it needs the cluster binaries).
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use seq_core::SequenceOptions;
use seq_storage::{MemoryStorage, Storage};
use seq_stream::{
    Error, ProduceOptions, Record, SegmentQuery, SpaceQuery, Store, StoreOptions, WriteOptions,
};

/// `n` stores in multi-writer mode on one shared storage.
fn stores(storage: &Arc<dyn Storage>, n: usize) -> Vec<Store> {
    (0..n)
        .map(|i| {
            let mut options = StoreOptions::default();
            options.shared = true;
            options.node = format!("node-{i}");
            options.poll_interval = Duration::from_millis(10);
            Store::open_arc(storage.clone(), options).unwrap()
        })
        .collect()
}

fn shared_memory() -> Arc<dyn Storage> {
    Arc::new(MemoryStorage::new())
}

fn blocks_of(size: u64) -> SequenceOptions {
    SequenceOptions {
        block_size: size,
        ..SequenceOptions::default()
    }
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_sharing_a_sequence_never_hand_out_the_same_number() {
    let storage = shared_memory();
    let stores = stores(&storage, 3);
    // Small blocks: the stores keep reserving past each other.
    stores[0]
        .create_sequence("ids", blocks_of(16))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for store in &stores {
        let seq = store.sequence("ids").await.unwrap();
        for _ in 0..8 {
            let seq = seq.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::with_capacity(300);
                for i in 0..300 {
                    if i % 50 == 0 {
                        let range = seq.next_n(20).await.unwrap();
                        got.extend(range.values());
                    } else {
                        got.push(seq.next().await.unwrap());
                    }
                }
                got
            }));
        }
    }
    let mut all = HashSet::new();
    for task in tasks {
        let got = task.await.unwrap();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "each task's numbers increase"
        );
        for value in got {
            assert!(all.insert(value), "{value} handed out twice");
        }
    }
    assert_eq!(all.len(), 24 * (294 + 6 * 20));

    // A store opened afterwards continues above everything handed out.
    for store in &stores {
        store.close().await.unwrap();
    }
    let late = stores_after(&storage);
    let next = late.sequence("ids").await.unwrap().next().await.unwrap();
    assert!(next > *all.iter().max().unwrap());
}

fn stores_after(storage: &Arc<dyn Storage>) -> Store {
    stores(storage, 1).pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_one_store_does_not_give_back_numbers_another_store_reserved_after_it() {
    let storage = shared_memory();
    let mut stores = stores(&storage, 2);
    stores[0]
        .create_sequence("ids", blocks_of(100))
        .await
        .unwrap();
    let a = stores[0].sequence("ids").await.unwrap();
    let b = stores[1].sequence("ids").await.unwrap();
    let from_a = a.next().await.unwrap();
    let from_b = b.next().await.unwrap();
    assert!(from_b > from_a);
    // A's reservation lies below B's: closing A must not shrink the stored
    // reservation below B's block.
    let a_store = stores.remove(0);
    drop(a);
    a_store.close().await.unwrap();
    let c = stores_after(&storage);
    let from_c = c.sequence("ids").await.unwrap().next().await.unwrap();
    let from_b_again = b.next().await.unwrap();
    assert!(from_c > from_b, "{from_c} vs {from_b}");
    assert_ne!(from_c, from_b_again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_opened_before_another_gives_back_still_takes_numbers() {
    let storage = shared_memory();
    let mut stores = stores(&storage, 1);
    stores[0]
        .create_sequence("ids", blocks_of(16))
        .await
        .unwrap();
    let a = stores[0].sequence("ids").await.unwrap();
    let from_a = a.next_n(10).await.unwrap();
    // B opens while A's block is the latest reservation...
    let b_store = stores_after(&storage);
    let b = b_store.sequence("ids").await.unwrap();
    // ...then A closes and gives back what it did not use, so the stored
    // reservation ends below where B first saw it.
    let a_store = stores.remove(0);
    drop(a);
    a_store.close().await.unwrap();
    let mut from_b = Vec::new();
    for _ in 0..3 {
        from_b.extend(b.next_n(20).await.unwrap().values());
    }
    assert!(from_b.windows(2).all(|w| w[0] < w[1]), "{from_b:?}");
    let last_a = from_a.last();
    assert!(from_b[0] > last_a, "{} vs {last_a}", from_b[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gap_free_numbers_from_several_stores_are_dense_and_written_with_their_records() {
    let storage = shared_memory();
    let stores = stores(&storage, 3);
    stores[0]
        .create_sequence("invoice", blocks_of(1))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for store in &stores {
        let seq = store.sequence("invoice").await.unwrap();
        for _ in 0..4 {
            let seq = seq.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..25 {
                    let n = seq
                        .next_with(|n| vec![(format!("inv/{n:06}").into_bytes(), Bytes::from("x"))])
                        .await
                        .unwrap();
                    got.push(n);
                }
                got
            }));
        }
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for n in task.await.unwrap() {
            assert!(all.insert(n), "{n} twice");
        }
    }
    let expected: BTreeSet<i64> = (1..=300).collect();
    assert_eq!(all, expected, "gap-free across stores: 1..=300, no gap");
    let records = stores[1].scan_records(b"inv/").await.unwrap();
    assert_eq!(records.len(), 300, "every number has its record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn producers_on_several_stores_keep_every_segment_dense_and_the_space_in_order() {
    let storage = shared_memory();
    let stores = stores(&storage, 3);
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..20 {
                    let segment = format!("seg-{}", (t + i) % 4);
                    let payload = format!("{s}/{t}/{i}");
                    let receipt = store
                        .produce_receipt(
                            "orders",
                            &segment,
                            vec![Record::new(payload.clone())],
                            ProduceOptions::default(),
                        )
                        .await
                        .unwrap();
                    acked.push((segment, receipt.sequences[0], payload));
                }
                acked
            }));
        }
    }
    let mut acked: BTreeMap<(String, u64), String> = BTreeMap::new();
    for task in tasks {
        for (segment, seq, payload) in task.await.unwrap() {
            assert!(
                acked.insert((segment.clone(), seq), payload).is_none(),
                "{segment}#{seq} acknowledged twice"
            );
        }
    }
    assert_eq!(acked.len(), 3 * 8 * 20);

    // Every segment is dense from 1 and holds exactly what was acknowledged.
    let reader = &stores[2];
    for s in 0..4 {
        let segment = format!("seg-{s}");
        let mut stream = reader
            .consume_segment("orders", &segment, SegmentQuery::default())
            .unwrap();
        let mut expected_seq = 1;
        let mut last_ts = 0;
        while let Some(entry) = stream.next().await.unwrap() {
            assert_eq!(entry.sequence, expected_seq, "{segment} is dense");
            assert!(entry.timestamp >= last_ts, "timestamps never decrease");
            last_ts = entry.timestamp;
            assert_eq!(
                acked.get(&(segment.clone(), entry.sequence)),
                Some(&String::from_utf8(entry.payload.to_vec()).unwrap())
            );
            expected_seq += 1;
        }
        let count = acked.keys().filter(|(seg, _)| *seg == segment).count();
        assert_eq!(expected_seq - 1, count as u64);
    }

    // The space merge yields each entry once, in (timestamp, segment, seq)
    // order, with each segment's sequences increasing.
    let mut stream = reader
        .consume_space("orders", SpaceQuery::default())
        .unwrap();
    let mut seen = 0;
    let mut previous: Option<(u64, String, u64)> = None;
    while let Some(entry) = stream.next().await.unwrap() {
        let key = (entry.timestamp, entry.segment.to_string(), entry.sequence);
        if let Some(previous) = &previous {
            assert!(previous < &key, "{previous:?} then {key:?}");
        }
        previous = Some(key);
        seen += 1;
    }
    assert_eq!(seen, acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_on_one_store_sees_entries_produced_through_another() {
    let storage = shared_memory();
    let stores = stores(&storage, 2);
    let query = SpaceQuery {
        follow: true,
        ..SpaceQuery::default()
    };
    let mut follower = stores[0].consume_space("events", query).unwrap();
    let producer = stores[1].clone();
    let produce = tokio::spawn(async move {
        for i in 0..30 {
            producer
                .produce(
                    "events",
                    "only",
                    vec![Record::new(format!("e{i}"))],
                    ProduceOptions::default(),
                )
                .await
                .unwrap();
        }
    });
    for expected in 1..=30 {
        let entry = within("follower", follower.next()).await.unwrap().unwrap();
        assert_eq!(entry.sequence, expected);
    }
    produce.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_explicit_sequence_lost_to_another_store_is_a_mismatch_and_writes_nothing() {
    let storage = shared_memory();
    let stores = stores(&storage, 2);
    stores[0]
        .produce(
            "s",
            "g",
            vec![Record::new("first").with_sequence(1)],
            ProduceOptions::default(),
        )
        .await
        .unwrap();
    let lost = stores[1]
        .produce(
            "s",
            "g",
            vec![Record::new("also first").with_sequence(1)],
            ProduceOptions::default(),
        )
        .await;
    assert!(
        matches!(
            lost,
            Err(Error::SequenceMismatch {
                expected: 2,
                actual: 1
            })
        ),
        "{lost:?}"
    );
    let status = stores[1].status("s", "g").await.unwrap();
    assert_eq!(status.last_sequence, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_is_recognised_by_every_store() {
    let storage = shared_memory();
    let stores = stores(&storage, 2);
    let record = || Record::new("pay 10").with_idempotency_key("payment-7");
    let first = stores[0]
        .produce_receipt("p", "acct", vec![record()], ProduceOptions::default())
        .await
        .unwrap();
    let retried = stores[1]
        .produce_receipt("p", "acct", vec![record()], ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(first.appended, 1);
    assert_eq!(retried.appended, 0);
    assert_eq!(retried.sequences, first.sequences);
    assert_eq!(retried.status.last_sequence, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_has_one_holder_across_stores_and_fences_the_previous_one() {
    let storage = shared_memory();
    let stores = stores(&storage, 2);
    let ttl = Duration::from_secs(30);
    let held = stores[0].acquire_lease("leader", ttl).await.unwrap();
    let refused = stores[1].acquire_lease("leader", ttl).await;
    assert!(
        matches!(refused, Err(Error::Conflict { .. })),
        "{refused:?}"
    );
    let old_fence = held.fence();
    held.release().await.unwrap();
    let next = stores[1].acquire_lease("leader", ttl).await.unwrap();
    assert!(next.token() > old_fence.token);
    let stale = stores[0]
        .produce(
            "s",
            "g",
            vec![Record::new("from the old leader")],
            ProduceOptions::default().with_fence(old_fence),
        )
        .await;
    assert!(matches!(stale, Err(Error::Fenced { .. })), "{stale:?}");
    stores[1]
        .produce(
            "s",
            "g",
            vec![Record::new("from the leader")],
            ProduceOptions::default().with_fence(next.fence()),
        )
        .await
        .unwrap();
    assert_eq!(stores[0].status("s", "g").await.unwrap().last_sequence, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_numbers_are_unique_across_stores_and_reopens() {
    let storage = shared_memory();
    let stores = stores(&storage, 3);
    let mut tasks = Vec::new();
    for store in &stores {
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut commits = Vec::new();
                for _ in 0..25 {
                    commits.push(store.flush().await.unwrap());
                }
                commits
            }));
        }
    }
    let mut all = HashSet::new();
    for task in tasks {
        for commit in task.await.unwrap() {
            assert!(all.insert(commit), "commit {commit} given twice");
        }
    }
    for store in &stores {
        store.close().await.unwrap();
    }
    let late = stores_after(&storage);
    let next = late.flush().await.unwrap();
    assert!(next > *all.iter().max().unwrap());

    // Caller-supplied commit numbers mean nothing with several writers.
    let refused = late
        .produce(
            "s",
            "g",
            vec![Record::new("x")],
            ProduceOptions::default().with_write(WriteOptions::durable().with_seqnum(u64::MAX / 2)),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::InvalidArgument { .. })),
        "{refused:?}"
    );
    assert!(late.status("s", "g").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn advance_to_on_one_store_moves_every_later_block_past_the_value() {
    let storage = shared_memory();
    let stores = stores(&storage, 2);
    stores[0]
        .create_sequence("ids", blocks_of(10))
        .await
        .unwrap();
    let a = stores[0].sequence("ids").await.unwrap();
    let b = stores[1].sequence("ids").await.unwrap();
    a.next().await.unwrap();
    a.advance_to(1_000).await.unwrap();
    assert_eq!(a.next().await.unwrap(), 1_001);
    // B had no block yet: its first block lies past A's.
    assert!(b.next().await.unwrap() > 1_001);
    let backwards = a.advance_to(5).await;
    assert!(
        matches!(backwards, Err(Error::InvalidArgument { .. })),
        "{backwards:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_dies_without_closing_skips_at_most_one_block() {
    let storage = shared_memory();
    let block = 50;
    stores(&storage, 1)[0]
        .create_sequence("ids", blocks_of(block))
        .await
        .unwrap();
    let mut last: Option<i64> = None;
    for round in 0..6 {
        // Another store works alongside, so blocks interleave.
        let others = stores(&storage, 1);
        let other = others[0].sequence("ids").await.unwrap();
        let dying = stores(&storage, 1).pop().unwrap();
        let seq = dying.sequence("ids").await.unwrap();
        let mut mine = Vec::new();
        for i in 0..(37 + round * 11) {
            mine.push(seq.next().await.unwrap());
            if i % 7 == 0 {
                other.next().await.unwrap();
            }
        }
        // The process "dies": no close, no give-back; its writer is
        // abandoned with whatever it had reserved.
        std::mem::forget(seq);
        std::mem::forget(dying);
        let first = *mine.first().unwrap();
        if let Some(last) = last {
            assert!(first > last, "round {round}: {first} after {last}");
        }
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
        let next = stores(&storage, 1)[0]
            .sequence("ids")
            .await
            .unwrap()
            .next()
            .await
            .unwrap();
        // Whatever the dead store held unissued is at most one block, plus
        // the blocks the live store reserved in between.
        let other_reserved = 2 * block as i64;
        assert!(
            next - mine.last().unwrap() <= block as i64 + other_reserved,
            "round {round}: {} then {next}",
            mine.last().unwrap()
        );
        last = Some(next);
        for store in others {
            store.close().await.unwrap();
        }
    }
}

/// A shared storage that behaves like a cluster under contention: every
/// read takes `read` and every write `write` (the writer thread blocks, as
/// on etcd), and once `outraced` is set every conditional write loses, as
/// if another writer always got there first.
struct Cluster {
    inner: MemoryStorage,
    read: Duration,
    write: Duration,
    outraced: std::sync::atomic::AtomicBool,
    /// Who asked for change notifications (an etcd watch each); each is
    /// called after every write.
    watchers: std::sync::Mutex<Vec<seq_storage::ChangeNotify>>,
}

impl Cluster {
    fn new(read: Duration, write: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStorage::new(),
            read,
            write,
            outraced: std::sync::atomic::AtomicBool::new(false),
            watchers: std::sync::Mutex::default(),
        })
    }

    fn watchers(&self) -> usize {
        self.watchers.lock().unwrap().len()
    }
}

impl Storage for Cluster {
    fn capabilities(&self) -> seq_storage::Capabilities {
        self.inner.capabilities()
    }

    fn get(&self, key: &[u8]) -> seq_storage::Result<Option<Bytes>> {
        std::thread::sleep(self.read);
        self.inner.get(key)
    }

    fn scan(
        &self,
        range: seq_storage::KeyRange,
        options: seq_storage::ScanOptions,
    ) -> seq_storage::Result<seq_storage::ScanIter<'_>> {
        std::thread::sleep(self.read);
        self.inner.scan(range, options)
    }

    fn write(
        &self,
        batch: seq_storage::WriteBatch,
        durability: seq_storage::Durability,
    ) -> seq_storage::Result<()> {
        std::thread::sleep(self.write);
        if self.outraced.load(std::sync::atomic::Ordering::SeqCst)
            && let Some(precondition) = batch.preconditions().first()
        {
            return Err(seq_storage::Error::Conflict {
                key: precondition.key().clone(),
            });
        }
        self.inner.write(batch, durability)?;
        for notify in self.watchers.lock().unwrap().iter() {
            notify();
        }
        Ok(())
    }

    fn flush(&self) -> seq_storage::Result<()> {
        self.inner.flush()
    }

    fn watch_changes(&self, notify: seq_storage::ChangeNotify) -> bool {
        // Established at once: say so, as a backend does after connecting.
        notify();
        self.watchers.lock().unwrap().push(notify);
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_asks_for_change_notifications_only_once_something_follows_it() {
    let cluster = Cluster::new(Duration::ZERO, Duration::ZERO);
    let storage: Arc<dyn Storage> = cluster.clone();
    let mut options = StoreOptions::default();
    options.shared = true;
    // Polling alone would take an hour: only a notification wakes the
    // follower below.
    options.poll_interval = Duration::from_secs(3600);
    let producer = Store::open_arc(storage.clone(), options.clone()).unwrap();
    let follower_store = Store::open_arc(storage, options).unwrap();
    let one = |text: &str| vec![Record::new(text.to_owned())];
    producer
        .produce("events", "only", one("before"), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(cluster.watchers(), 0, "nobody follows yet");

    let query = SpaceQuery {
        follow: true,
        ..SpaceQuery::default()
    };
    let mut follower = follower_store.consume_space("events", query).unwrap();
    let first = within("history", follower.next()).await.unwrap().unwrap();
    assert_eq!(first.payload, Bytes::from("before"));
    assert_eq!(cluster.watchers(), 1, "following started the notifications");
    drop(follower_store.watch_changes());
    assert_eq!(cluster.watchers(), 1, "they start once");

    producer
        .produce("events", "only", one("after"), ProduceOptions::default())
        .await
        .unwrap();
    let second = within("live entry", follower.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.payload, Bytes::from("after"));
    assert_eq!(cluster.watchers(), 1, "the producer never asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_contending_for_one_sequence_keep_retrying_instead_of_failing() {
    // Three stores whose tasks take numbers as fast as they can from one
    // sequence with small blocks, on a storage with a cluster's latency: the
    // block record is contended all the time, and a store that loses races
    // must keep trying (it is never refused for being slow).
    let storage: Arc<dyn Storage> =
        Cluster::new(Duration::from_micros(300), Duration::from_millis(1));
    let stores = stores(&storage, 3);
    stores[0]
        .create_sequence("hot", blocks_of(8))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2500);
    let mut tasks = Vec::new();
    for store in &stores {
        let seq = store.sequence("hot").await.unwrap();
        for _ in 0..8 {
            let seq = seq.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while tokio::time::Instant::now() < deadline {
                    got.push(seq.next().await?);
                }
                Ok::<_, Error>(got)
            }));
        }
    }
    let mut all = HashSet::new();
    for task in tasks {
        let got = within("contending tasks", task).await.unwrap().unwrap();
        for n in got {
            assert!(all.insert(n), "{n} handed out twice");
        }
    }
    assert!(all.len() > 100, "only {} numbers", all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_a_store_fails_a_write_that_keeps_losing_races_at_once() {
    let cluster = Cluster::new(Duration::ZERO, Duration::ZERO);
    let storage: Arc<dyn Storage> = cluster.clone();
    let store = stores(&storage, 1).remove(0);
    store.create_sequence("ids", blocks_of(4)).await.unwrap();
    let seq = store.sequence("ids").await.unwrap();
    cluster
        .outraced
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let pending = tokio::spawn(async move { seq.next().await });
    // Let it lose a few races, then close while it is still retrying.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "a lost race is retried, not failed");
    within("close", store.close()).await.unwrap();
    let outcome = within("the retried next()", pending).await.unwrap();
    assert!(matches!(outcome, Err(Error::Closed { .. })), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}, not at close",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_starved_past_its_patience_fails_with_conflict_and_writes_nothing() {
    let cluster = Cluster::new(Duration::ZERO, Duration::ZERO);
    let storage: Arc<dyn Storage> = cluster.clone();
    let mut options = StoreOptions::default();
    options.shared = true;
    options.conflict_patience = Duration::from_millis(200);
    let store = Store::open_arc(storage.clone(), options).unwrap();
    store
        .produce(
            "s",
            "g",
            vec![Record::new("before")],
            ProduceOptions::default(),
        )
        .await
        .unwrap();
    cluster
        .outraced
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let outcome = within(
        "a starved produce",
        store.produce(
            "s",
            "g",
            vec![Record::new("starved")],
            ProduceOptions::default(),
        ),
    )
    .await;
    assert!(
        matches!(outcome, Err(Error::Conflict { .. })),
        "{outcome:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    cluster
        .outraced
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(store.status("s", "g").await.unwrap().last_sequence, 1);
    store.close().await.unwrap();
}
