//! Crash-sim: crashes at random points (CrashStorage::crash_keeping +
//! reopen) while producers run: durably acknowledged entries survive,
//! segments stay dense, no durably acknowledged sequence is reissued.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod streams_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use seq_storage::FaultPlan;
use seq_stream::{ProduceOptions, Record, Trim, WriteOptions};
use streams_common::{Harness, Kind, read_segment};

/// A small deterministic generator (no dev-dependency needed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

type Acked = Arc<Mutex<BTreeMap<String, BTreeMap<u64, Bytes>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn should_keep_acknowledged_entries_dense_and_never_reissue_across_crashes() {
    for seed in 0..12u64 {
        let mut rng = Lcg(seed);
        let mut h = Harness::new(Kind::Crash);
        let mut store = h.open();
        let acked: Acked = Arc::default();
        for round in 0..4 {
            let mut tasks = Vec::new();
            for p in 0..4 {
                let store = store.clone();
                let acked = acked.clone();
                let buffered = rng.below(3) == 0;
                let n = 5 + rng.below(20);
                tasks.push(tokio::spawn(async move {
                    let segment = format!("g{}", p % 3);
                    for i in 0..n {
                        let payload = Bytes::from(format!("{seed}-{round}-{p}-{i}"));
                        let write = if buffered {
                            WriteOptions::buffered()
                        } else {
                            WriteOptions::durable()
                        };
                        let options = ProduceOptions::default().with_write(write);
                        let records = vec![Record::new(payload.clone())];
                        match store.produce_receipt("s", &segment, records, options).await {
                            Ok(receipt) if !buffered => {
                                acked
                                    .lock()
                                    .unwrap()
                                    .entry(segment.clone())
                                    .or_default()
                                    .insert(receipt.sequences[0], payload);
                            }
                            Ok(_) => {}
                            Err(_) => return, // the crash closed the store
                        }
                    }
                }));
            }
            tokio::time::sleep(Duration::from_micros(rng.below(3000))).await;
            if rng.below(4) == 0 {
                let _ = store.trim("s", "g0", Trim::KeepLast(3)).await;
            }
            let keep = rng.below(3) as usize;
            store = h.crash_and_reopen(store, keep).await;
            for task in tasks {
                task.await.unwrap();
            }
            // Trims may have removed old acknowledged entries: check what is retained.
            let acked_now = acked.lock().unwrap().clone();
            for (segment, entries) in &acked_now {
                let status = store.status("s", segment).await.unwrap();
                let got = read_segment(&store, "s", segment).await;
                let seqs: Vec<u64> = got.iter().map(|e| e.sequence).collect();
                assert_eq!(
                    seqs,
                    (status.first_sequence..=status.last_sequence).collect::<Vec<_>>(),
                    "dense {segment}"
                );
                let max_acked = *entries.keys().last().unwrap();
                assert!(
                    status.last_sequence >= max_acked,
                    "seed {seed}: acknowledged {max_acked} lost"
                );
                for entry in &got {
                    if let Some(payload) = entries.get(&entry.sequence) {
                        assert_eq!(
                            &entry.payload, payload,
                            "seed {seed} seq {}",
                            entry.sequence
                        );
                    }
                }
                for (seq, _) in entries.range(status.first_sequence..) {
                    assert!(
                        seqs.contains(seq),
                        "seed {seed}: acknowledged {segment}/{seq} missing"
                    );
                }
                // No reissue: the next sequence is above every acknowledged one.
                let next = store
                    .produce(
                        "s",
                        segment,
                        vec![Record::new("probe")],
                        ProduceOptions::default(),
                    )
                    .await
                    .unwrap();
                assert!(next.last_sequence > max_acked);
                acked
                    .lock()
                    .unwrap()
                    .get_mut(segment)
                    .unwrap()
                    .insert(next.last_sequence, Bytes::from("probe"));
            }
        }
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_write_nothing_when_the_storage_write_fails() {
    let mut h = Harness::new(Kind::Crash);
    let store = h.open();
    store
        .produce("s", "g", vec![Record::new("a")], ProduceOptions::default())
        .await
        .unwrap();
    h.crash_storage()
        .set_faults(FaultPlan::new().fail_nth_write(1));
    let failed = store
        .produce(
            "s",
            "g",
            vec![Record::new("b"), Record::new("c")],
            ProduceOptions::default(),
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(read_segment(&store, "s", "g").await.len(), 1);
    let store = h.reopen(store).await;
    assert_eq!(read_segment(&store, "s", "g").await.len(), 1);
    let status = store
        .produce("s", "g", vec![Record::new("b")], ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(status.last_sequence, 2);
    store.close().await.unwrap();
}
