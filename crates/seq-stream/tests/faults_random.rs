//! Storage faults at random points of a mixed workload (sequences, gap-free
//! allocations, sequence keys, produces, cursors, leases, flushes), then a
//! crash and a reopen: every acknowledged result survives, nothing handed
//! out comes back, and every failure was a typed error.

// Helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use seq_storage::test_rng::TestRng as Rng;
use seq_storage::{CrashStorage, FaultPlan, KeyRange, ScanOptions, Storage};
use seq_stream::{
    CursorPosition, Error, LeaseOptions, ProduceOptions, Record, SegmentQuery, SequenceOptions,
    Store,
};

/// What was acknowledged, over every run of one case.
#[derive(Default)]
struct Acked {
    /// Highest value acknowledged per sequence.
    values: BTreeMap<&'static str, i64>,
    /// Sequence keys.
    keys: BTreeMap<String, Bytes>,
    /// Segment entries: sequence → payload.
    entries: BTreeMap<u64, Bytes>,
    cursor: u64,
    token: u64,
    commit: u64,
}

fn fault(rng: &mut Rng, storage: &CrashStorage) -> FaultPlan {
    match rng.below(4) {
        0 => FaultPlan::new().fail_nth_write(1 + rng.below(3)),
        1 => FaultPlan::new().fail_next_sync(),
        2 => FaultPlan::new().fail_writes_after(rng.below(3)),
        _ => {
            let keys = storage
                .scan(KeyRange::all(), ScanOptions::forward())
                .unwrap();
            let mut plan = FaultPlan::new();
            for item in keys {
                let key = item.unwrap().0;
                if rng.below(3) == 0 {
                    plan = plan.fail_reads_of(key);
                }
            }
            plan
        }
    }
}

/// One random operation; records what it acknowledged. Failures must be
/// typed storage failures or the refusal that follows them.
async fn step(store: &Store, rng: &mut Rng, acked: &mut Acked, n: u64) {
    let result: seq_stream::Result<()> = async {
        match rng.below(7) {
            0 | 1 => {
                let name = if rng.below(2) == 0 { "b" } else { "g" };
                let count = 1 + rng.below(6);
                let range = store.sequence(name).await?.next_n(count).await?;
                let max = acked.values.entry(name).or_insert(0);
                assert!(
                    range.first() > *max,
                    "{name}: {} reissued (max {max})",
                    range.first()
                );
                *max = range.last();
            }
            2 => {
                let value = Bytes::from(format!("v{n}"));
                let (key, version) = store.put_sequenced("k", value.clone(), &[1]).await?;
                if let Some((last, _)) = acked.keys.last_key_value() {
                    assert!(key > *last, "sequence key {key} not above {last}");
                }
                acked.commit = acked.commit.max(version);
                acked.keys.insert(key, value);
            }
            3 => {
                let payload = Bytes::from(format!("p{n}"));
                let receipt = store
                    .produce_receipt(
                        "s",
                        "g",
                        vec![Record::new(payload.clone())],
                        ProduceOptions::default(),
                    )
                    .await?;
                let seq = receipt.sequences[0];
                assert!(
                    !acked.entries.contains_key(&seq),
                    "segment sequence {seq} reissued"
                );
                acked.entries.insert(seq, payload);
                acked.commit = acked.commit.max(receipt.commit);
            }
            4 => {
                let next = acked.cursor + 1;
                let position = CursorPosition::new().with_segment("s", "g", next);
                store.commit_cursor("c", position).await?;
                acked.cursor = next;
            }
            5 => {
                let options = LeaseOptions::new(Duration::from_secs(60))
                    .without_renewal()
                    .with_holder(uuid::Uuid::from_u128(1));
                let lease = store.acquire_lease_with("L", options).await?;
                assert!(
                    lease.token() > acked.token,
                    "fencing token {} reissued",
                    lease.token()
                );
                acked.token = lease.token();
                std::mem::forget(lease);
            }
            _ => {
                let commit = store.flush().await?;
                assert!(
                    commit > acked.commit || acked.commit == 0,
                    "commit {commit} reissued"
                );
                acked.commit = acked.commit.max(commit);
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        assert!(
            matches!(e, Error::Storage { .. } | Error::Closed { .. }),
            "a fault surfaced as {e:?}"
        );
    }
}

async fn check(store: &Store, acked: &Acked, case: u64) {
    for (name, max) in &acked.values {
        let peek = store.sequence(name).await.unwrap().peek().unwrap();
        assert!(
            peek > *max,
            "case {case}: {name} would reissue {peek} (acknowledged {max})"
        );
    }
    let keys: BTreeMap<String, Bytes> = store
        .range_sequenced("k", usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    for (key, value) in &acked.keys {
        assert_eq!(
            keys.get(key),
            Some(value),
            "case {case}: sequence key {key} lost"
        );
    }
    let mut stream = store
        .consume_segment("s", "g", SegmentQuery::default())
        .unwrap();
    let mut entries = BTreeMap::new();
    while let Some(entry) = stream.next().await.unwrap() {
        entries.insert(entry.sequence, entry.payload);
    }
    for (seq, payload) in &acked.entries {
        assert_eq!(
            entries.get(seq),
            Some(payload),
            "case {case}: entry {seq} lost"
        );
    }
    let dense: Vec<u64> = (1..=entries.len() as u64).collect();
    assert_eq!(
        entries.keys().copied().collect::<Vec<_>>(),
        dense,
        "case {case}: not dense"
    );
    let cursor = store
        .load_cursor("c")
        .await
        .unwrap()
        .and_then(|c| c.position.segment("s", "g"));
    assert!(
        cursor.unwrap_or(0) >= acked.cursor,
        "case {case}: cursor lost"
    );
    let token = store.lease_info("L").await.unwrap().map_or(0, |i| i.token);
    assert!(
        token >= acked.token,
        "case {case}: fencing token {token} below {}",
        acked.token
    );
    assert!(
        store.commit_seqnum() >= acked.commit,
        "case {case}: commit oracle went back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_keep_every_acknowledged_result_with_faults_at_random_points() {
    for case in 0..120u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (case + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut storage = CrashStorage::new();
        let mut store = Store::open(storage.clone()).unwrap();
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
        let mut acked = Acked::default();
        let mut n = 0;
        for _run in 0..3 {
            let fault_at = rng.below(12);
            for i in 0..16 {
                if i == fault_at {
                    storage.set_faults(fault(&mut rng, &storage));
                }
                n += 1;
                step(&store, &mut rng, &mut acked, n).await;
            }
            let image = storage.crash();
            drop(store);
            storage = image;
            store = Store::open(storage.clone()).unwrap();
            check(&store, &acked, case).await;
        }
        store.close().await.unwrap();
    }
}
