//! Crash simulation: random small workloads, a crash, a reopen, 1,000 times;
//! and injected storage faults on block writes.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

#[path = "support_sequences/mod.rs"]
mod support;

use std::collections::BTreeMap;

use seq_storage::test_rng::TestRng as Rng;
use seq_storage::{CrashStorage, FaultPlan};
use seq_stream::{Error, SequenceOptions, Store, WriteOptions};

const BLOCK: u64 = 4;

/// What has been acknowledged so far, across crashes.
#[derive(Default)]
struct Acked {
    /// Highest value handed out by the block sequence.
    block_max: i64,
    /// Lowest value the block sequence may hand out next.
    block_floor: i64,
    /// Last value of the gap-free sequence.
    gap_free_last: i64,
    /// Durably acknowledged sequence keys → version.
    durable_keys: BTreeMap<String, u64>,
    /// Highest durable commit number acknowledged.
    durable_commit: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_survive_1000_random_crashes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut storage = CrashStorage::new();
    let mut acked = Acked {
        block_floor: 1,
        ..Acked::default()
    };
    {
        let store = Store::open(storage.clone()).unwrap();
        let block = SequenceOptions {
            block_size: BLOCK,
            ..SequenceOptions::default()
        };
        store.create_sequence("blk", block).await.unwrap();
        let gap_free = SequenceOptions {
            block_size: 1,
            ..SequenceOptions::default()
        };
        store.create_sequence("gf", gap_free).await.unwrap();
        store.close().await.unwrap();
        storage = storage.close_and_reopen();
    }
    for iteration in 0..1_000 {
        let store = Store::open(storage.clone()).unwrap();
        check_recovered(&store, &acked, iteration).await;
        let blk = store.sequence("blk").await.unwrap();
        let gf = store.sequence("gf").await.unwrap();
        for _ in 0..rng.below(6) + 1 {
            match rng.below(6) {
                0 => {
                    let v = blk.next().await.unwrap();
                    assert!(
                        v >= acked.block_floor,
                        "reissued {v} (floor {})",
                        acked.block_floor
                    );
                    acked.block_max = v;
                    acked.block_floor = v + 1;
                }
                1 => {
                    let n = rng.below(9) + 1;
                    let range = blk.next_n(n).await.unwrap();
                    let values: Vec<i64> = range.values().collect();
                    assert_eq!(values.len() as u64, n);
                    assert!(values.windows(2).all(|w| w[1] == w[0] + 1));
                    assert!(range.first() >= acked.block_floor);
                    acked.block_max = range.last();
                    acked.block_floor = range.last() + 1;
                }
                2 => {
                    let target = acked.block_floor + i64::try_from(rng.below(12)).unwrap();
                    match blk.advance_to(target).await {
                        Ok(()) => acked.block_floor = acked.block_floor.max(target + 1),
                        Err(Error::InvalidArgument { .. }) => {}
                        Err(other) => panic!("advance_to: {other}"),
                    }
                }
                3 => {
                    let v = gf.next().await.unwrap();
                    assert_eq!(v, acked.gap_free_last + 1, "gap-free sequence skipped");
                    acked.gap_free_last = v;
                }
                4 => {
                    let (key, version) = store.put_sequenced("k", "v", &[1]).await.unwrap();
                    assert!(version > acked.durable_commit);
                    if let Some((last, _)) = acked.durable_keys.last_key_value() {
                        assert!(&key > last, "sequence key {key} reissued");
                    }
                    acked.durable_keys.insert(key, version);
                    acked.durable_commit = version;
                }
                _ => {
                    store
                        .put_sequenced_with("k", "b", &[1], WriteOptions::buffered())
                        .await
                        .unwrap();
                }
            }
        }
        drop((blk, gf));
        let keep = rng.below(storage.pending_batches() as u64 + 1) as usize;
        let next = storage.crash_keeping(keep);
        drop(store);
        storage = next;
    }
}

async fn check_recovered(store: &Store, acked: &Acked, iteration: usize) {
    assert!(
        store.commit_seqnum() >= acked.durable_commit,
        "iteration {iteration}"
    );
    let blk = store.sequence("blk").await.unwrap();
    let next = blk.peek().unwrap();
    assert!(
        next >= acked.block_floor,
        "iteration {iteration}: {next} reissues"
    );
    let gap = next - acked.block_floor;
    assert!(
        gap <= BLOCK as i64,
        "iteration {iteration}: gap of {gap} ticks exceeds one block"
    );
    let gf = store.sequence("gf").await.unwrap();
    assert_eq!(
        gf.peek().unwrap(),
        acked.gap_free_last + 1,
        "iteration {iteration}"
    );
    // Every durably acknowledged record survived, at its version. (Checked
    // on a sample to keep the run short.)
    if iteration.is_multiple_of(50) || acked.durable_keys.len() < 5 {
        let stored = store.range_sequenced("k", usize::MAX).await.unwrap();
        let stored: BTreeMap<String, u64> =
            stored.into_iter().map(|r| (r.key, r.version)).collect();
        for (key, version) in &acked.durable_keys {
            assert_eq!(
                stored.get(key),
                Some(version),
                "iteration {iteration}: lost {key}"
            );
        }
    } else if let Some((key, version)) = acked.durable_keys.last_key_value() {
        let record = store.get_sequenced(key).await.unwrap();
        assert_eq!(
            record.map(|r| r.version),
            Some(*version),
            "iteration {iteration}: lost {key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_fail_first_block_write_and_hand_out_nothing() {
    let storage = CrashStorage::new();
    let store = Store::open(storage.clone()).unwrap();
    let options = SequenceOptions {
        block_size: 10,
        ..SequenceOptions::default()
    };
    store.create_sequence("s", options).await.unwrap();
    let seq = store.sequence("s").await.unwrap();
    storage.set_faults(FaultPlan::new().fail_nth_write(1));
    let err = seq.next().await.unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err}");
    // The reservation is unchanged.
    assert_eq!(seq.peek().unwrap(), 1);
    assert_eq!(seq.info().reserved_end, 0);
    // The store refuses writes until reopened; it does not invent numbers.
    assert!(seq.next().await.is_err());
    drop(seq);
    let storage = storage.crash();
    drop(store);
    let store = Store::open(storage).unwrap();
    let seq = store.sequence("s").await.unwrap();
    assert_eq!(seq.next().await.unwrap(), 1);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_never_hand_out_numbers_of_an_unwritten_block() {
    let storage = CrashStorage::new();
    let store = Store::open(storage.clone()).unwrap();
    let options = SequenceOptions {
        block_size: 10,
        ..SequenceOptions::default()
    };
    store.create_sequence("s", options).await.unwrap();
    let seq = store.sequence("s").await.unwrap();
    let mut handed = vec![seq.next().await.unwrap()];
    let durable_end = seq.info().reserved_end;
    // From now on every storage write fails.
    storage.set_faults(FaultPlan::new().fail_writes_after(0));
    let err = loop {
        match seq.next().await {
            Ok(v) => handed.push(v),
            Err(e) => break e,
        }
        assert!(handed.len() < 100, "numbers without a durable block");
    };
    assert!(
        matches!(err, Error::Storage { .. } | Error::Closed { .. }),
        "{err}"
    );
    let max = *handed.iter().max().unwrap();
    assert!(
        max as u64 <= durable_end,
        "{max} is beyond the durable block ending at {durable_end}"
    );
    drop(seq);
    let storage = storage.crash();
    drop(store);
    let store = Store::open(storage).unwrap();
    let seq = store.sequence("s").await.unwrap();
    let next = seq.next().await.unwrap();
    assert!(next > max, "{next} reissued after the failure");
    store.close().await.unwrap();
}
