//! Storage faults injected with `CrashStorage`'s `FaultPlan` into every
//! engine and stream API that writes or reads: a failed write, a failed
//! fsync, and failed reads of every stored key.
//!
//! For each operation and each fault the tests check that
//!
//! * the operation fails with a typed error (`Storage`, or `Closed` once the
//!   store refuses writes), never a panic or a wrong success;
//! * the store keeps working or refuses further writes with `Error::Closed`
//!   until it is reopened;
//! * in-memory state is not left ahead of storage: the open handles offer no
//!   number whose block was not written, and after a crash and reopen the
//!   store shows exactly what it showed before the failed operation;
//! * after the reopen the same operation succeeds, with fresh numbers.

// Helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use seq_storage::{CrashStorage, FaultPlan, KeyRange, ScanOptions, Storage};
use seq_stream::{
    CursorPosition, Error, LeaseOptions, ProduceOptions, Record, SegmentQuery, SequenceOptions,
    Store, Trim,
};

type OpFuture<'a> = Pin<Box<dyn Future<Output = seq_stream::Result<()>> + Send + 'a>>;

/// One API call under test.
struct Op {
    name: &'static str,
    run: for<'a> fn(&'a Store) -> OpFuture<'a>,
}

fn holder() -> LeaseOptions {
    LeaseOptions::new(Duration::from_secs(60))
        .without_renewal()
        .with_holder(uuid::Uuid::from_u128(7))
}

/// Every operation; each one writes (so a write or sync fault must hit it).
fn ops() -> Vec<Op> {
    vec![
        Op {
            name: "sequence next (needs a block)",
            run: |s| Box::pin(async move { s.sequence("b").await?.next().await.map(drop) }),
        },
        Op {
            name: "sequence next_n spanning blocks",
            run: |s| Box::pin(async move { s.sequence("b").await?.next_n(9).await.map(drop) }),
        },
        Op {
            name: "sequence advance_to",
            run: |s| Box::pin(async move { s.sequence("b").await?.advance_to(1000).await }),
        },
        Op {
            name: "gap-free next",
            run: |s| Box::pin(async move { s.sequence("g").await?.next().await.map(drop) }),
        },
        Op {
            name: "gap-free next_with",
            run: |s| {
                Box::pin(async move {
                    let seq = s.sequence("g").await?;
                    seq.next_with(|v| vec![(format!("inv/{v}").into_bytes(), Bytes::from("x"))])
                        .await
                        .map(drop)
                })
            },
        },
        Op {
            name: "create_sequence",
            run: |s| {
                Box::pin(async move {
                    s.create_sequence("fresh", SequenceOptions::default())
                        .await
                        .map(drop)
                })
            },
        },
        Op {
            name: "drop_sequence",
            run: |s| Box::pin(async move { s.drop_sequence("g").await }),
        },
        Op {
            name: "put_sequenced",
            run: |s| Box::pin(async move { s.put_sequenced("k", "v2", &[1]).await.map(drop) }),
        },
        Op {
            name: "delete_sequenced",
            run: |s| {
                Box::pin(
                    async move { s.delete_sequenced("k-00000000000000000001").await.map(drop) },
                )
            },
        },
        Op {
            name: "produce",
            run: |s| {
                Box::pin(async move {
                    let records = vec![Record::new("c"), Record::new("d")];
                    s.produce("s", "g", records, ProduceOptions::default())
                        .await
                        .map(drop)
                })
            },
        },
        Op {
            name: "trim",
            run: |s| Box::pin(async move { s.trim("s", "g", Trim::KeepLast(1)).await.map(drop) }),
        },
        Op {
            name: "commit_cursor",
            run: |s| {
                Box::pin(async move {
                    let position = CursorPosition::new().with_segment("s", "g", 2);
                    s.commit_cursor("c", position).await.map(drop)
                })
            },
        },
        Op {
            name: "acquire_lease",
            run: |s| {
                Box::pin(async move {
                    let lease = s.acquire_lease_with("L", holder()).await?;
                    // Keep the grant (a release would be a second write).
                    std::mem::forget(lease);
                    Ok(())
                })
            },
        },
        Op {
            name: "flush",
            run: |s| Box::pin(async move { s.flush().await.map(drop) }),
        },
    ]
}

/// Builds a store with one of everything, then reopens it cleanly, so that
/// the block sequence has nothing reserved and its next `next` must write.
async fn setup() -> (CrashStorage, Store) {
    let storage = CrashStorage::new();
    let store = Store::open(storage.clone()).unwrap();
    let block = SequenceOptions {
        block_size: 4,
        ..SequenceOptions::default()
    };
    store.create_sequence("b", block).await.unwrap();
    let gap_free = SequenceOptions {
        block_size: 1,
        ..SequenceOptions::default()
    };
    store.create_sequence("g", gap_free).await.unwrap();
    store.sequence("b").await.unwrap().next_n(4).await.unwrap();
    store.sequence("g").await.unwrap().next().await.unwrap();
    store.put_sequenced("k", "v1", &[1]).await.unwrap();
    let records = vec![Record::new("a"), Record::new("b")];
    store
        .produce("s", "g", records, ProduceOptions::default())
        .await
        .unwrap();
    let position = CursorPosition::new().with_segment("s", "g", 1);
    store.commit_cursor("c", position).await.unwrap();
    store
        .acquire_lease_with("L", holder())
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    store.close().await.unwrap();
    drop(store);
    let storage = storage.close_and_reopen();
    let store = Store::open(storage.clone()).unwrap();
    (storage, store)
}

/// Everything a user can see, except the commit number (which a failed
/// write may consume).
#[derive(Debug, PartialEq, Eq)]
struct View {
    sequences: Vec<(String, u64)>,
    peeks: BTreeMap<String, i64>,
    keys: Vec<(String, Bytes)>,
    records: Vec<(Vec<u8>, Bytes)>,
    entries: Vec<(u64, Bytes)>,
    last_sequence: u64,
    cursor: Option<u64>,
    lease_token: Option<u64>,
}

async fn view(store: &Store) -> View {
    let sequences: Vec<(String, u64)> = store
        .list_sequences()
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.reserved_end))
        .collect();
    let mut peeks = BTreeMap::new();
    for (name, _) in &sequences {
        peeks.insert(
            name.clone(),
            store.sequence(name).await.unwrap().peek().unwrap(),
        );
    }
    let keys = store
        .range_sequenced("k", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    let mut entries = Vec::new();
    let mut stream = store
        .consume_segment("s", "g", SegmentQuery::default())
        .unwrap();
    while let Some(entry) = stream.next().await.unwrap() {
        entries.push((entry.sequence, entry.payload));
    }
    View {
        sequences,
        peeks,
        keys,
        records: store.scan_records(b"").await.unwrap(),
        entries,
        last_sequence: store.status("s", "g").await.unwrap().last_sequence,
        cursor: store
            .load_cursor("c")
            .await
            .unwrap()
            .and_then(|c| c.position.segment("s", "g")),
        lease_token: store.lease_info("L").await.unwrap().map(|i| i.token),
    }
}

/// The peeks the open handles offer (in memory, no storage read).
async fn peeks(store: &Store) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for name in ["b", "g"] {
        if let Ok(seq) = store.sequence(name).await
            && let Ok(peek) = seq.peek()
        {
            out.insert(name.to_owned(), peek);
        }
    }
    out
}

/// Runs every operation against a write fault (`plan`), crashes, reopens
/// and checks the invariants.
async fn sweep_write_fault(plan: fn() -> FaultPlan, fault: &str) {
    for op in ops() {
        let (storage, store) = setup().await;
        let before = view(&store).await;
        let commit_before = store.commit_seqnum();
        storage.set_faults(plan());
        let err = (op.run)(&store).await.expect_err(op.name);
        assert!(
            matches!(err, Error::Storage { .. }),
            "{}: {fault}: expected Error::Storage, got {err:?}",
            op.name
        );
        // In memory, nothing moved ahead of storage.
        assert_eq!(
            peeks(&store).await,
            before.peeks,
            "{}: {fault}: handles moved",
            op.name
        );
        // The store refuses further writes with a clear error (or works).
        storage.set_faults(FaultPlan::new());
        match store.flush().await {
            Ok(_) => {}
            Err(Error::Closed { reason }) => {
                assert!(
                    reason.contains("reopen"),
                    "{}: {fault}: unclear: {reason}",
                    op.name
                );
            }
            Err(other) => panic!("{}: {fault}: after the fault: {other:?}", op.name),
        }
        // After a crash the store shows exactly what it showed before.
        let image = storage.crash();
        drop(store);
        let store = Store::open(image).unwrap();
        assert_eq!(
            view(&store).await,
            before,
            "{}: {fault}: state changed",
            op.name
        );
        assert!(
            store.commit_seqnum() >= commit_before,
            "{}: {fault}: oracle went back",
            op.name
        );
        // And the operation now succeeds.
        (op.run)(&store)
            .await
            .unwrap_or_else(|e| panic!("{}: retry after reopen: {e}", op.name));
        let after = view(&store).await;
        for (name, peek) in &after.peeks {
            if let Some(old) = before.peeks.get(name) {
                assert!(
                    peek >= old,
                    "{}: {fault}: {name} went back: {peek} < {old}",
                    op.name
                );
            }
        }
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_fail_every_operation_cleanly_when_its_write_fails() {
    sweep_write_fault(|| FaultPlan::new().fail_nth_write(1), "failed write").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_fail_every_operation_cleanly_when_its_fsync_fails() {
    sweep_write_fault(|| FaultPlan::new().fail_next_sync(), "failed fsync").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_fail_every_operation_cleanly_when_the_disk_fills_up() {
    sweep_write_fault(|| FaultPlan::new().fail_writes_after(0), "disk full").await;
}

/// Every stored key: a read fault on all of them hits whatever an operation
/// reads.
fn all_keys(storage: &CrashStorage) -> Vec<Bytes> {
    storage
        .scan(KeyRange::all(), ScanOptions::forward())
        .unwrap()
        .map(|item| item.unwrap().0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_fail_reads_with_a_typed_error_and_keep_working() {
    for op in ops() {
        let (storage, store) = setup().await;
        let before = view(&store).await;
        let mut plan = FaultPlan::new();
        for key in all_keys(&storage) {
            plan = plan.fail_reads_of(key);
        }
        storage.set_faults(plan);
        let result = (op.run)(&store).await;
        storage.set_faults(FaultPlan::new());
        match result {
            // An operation that read nothing (served from memory) may pass.
            Ok(()) => {}
            Err(Error::Storage { source }) => {
                assert!(
                    source.to_string().contains("injected"),
                    "{}: {source}",
                    op.name
                );
                // A failed read rejects the request alone: nothing changed
                // and the store works on without a reopen.
                assert_eq!(
                    view(&store).await,
                    before,
                    "{}: read fault changed state",
                    op.name
                );
                (op.run)(&store)
                    .await
                    .unwrap_or_else(|e| panic!("{}: retry: {e}", op.name));
            }
            Err(other) => panic!(
                "{}: read fault: expected Error::Storage, got {other:?}",
                op.name
            ),
        }
        // Reads of every API fail typed too while the fault is on.
        let mut plan = FaultPlan::new();
        for key in all_keys(&storage) {
            plan = plan.fail_reads_of(key);
        }
        storage.set_faults(plan);
        // (A key the operation deleted has nothing left to fail: `None`.)
        for (what, result) in [
            ("status", store.status("s", "g").await.map(|_| true)),
            ("peek", store.peek("s", "g").await.map(|_| true)),
            (
                "get_sequenced",
                store
                    .get_sequenced("k-00000000000000000001")
                    .await
                    .map(|r| r.is_some()),
            ),
            (
                "load_cursor",
                store.load_cursor("c").await.map(|r| r.is_some()),
            ),
            (
                "lease_info",
                store.lease_info("L").await.map(|r| r.is_some()),
            ),
            ("list_sequences", store.list_sequences().await.map(|_| true)),
        ] {
            assert!(
                matches!(result, Err(Error::Storage { .. }) | Ok(false)),
                "{}: {what} under a read fault: {result:?}",
                op.name
            );
        }
        storage.set_faults(FaultPlan::new());
        store.close().await.unwrap();
    }
}
