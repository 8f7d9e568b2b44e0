//! Concurrency: 8 producers on 4 segments of one space while 2 followers
//! consume the space: each follower sees every entry exactly once, in merge
//! order, and both end at the same offset.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod streams_common;

use std::collections::BTreeMap;
use std::time::Duration;

use seq_stream::{Entry, MultiQuery, ProduceOptions, Record, SpaceQuery, Store};
use streams_common::{Harness, Kind, read_space};

const PRODUCERS: usize = 8;
const BATCHES: usize = 40;

async fn follow(store: Store, total: usize, page_size: usize) -> Vec<Entry> {
    let mut stream = store
        .consume_space(
            "live",
            SpaceQuery {
                follow: true,
                page_size,
                ..Default::default()
            },
        )
        .unwrap();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let batch = tokio::time::timeout(Duration::from_secs(30), stream.next_batch(64))
            .await
            .expect("follower stalled")
            .unwrap();
        assert!(!batch.is_empty());
        out.extend(batch);
    }
    assert_eq!(stream.offset(), out.last().map(|e| e.offset()).as_ref());
    out
}

async fn should_deliver_every_entry_once_in_order_to_every_follower(mut h: Harness) {
    let store = h.open();
    // Batch sizes 1..=3 by producer and round: the total is known up front.
    let size = |p: usize, b: usize| 1 + (p + b) % 3;
    let total: usize = (0..PRODUCERS)
        .flat_map(|p| (0..BATCHES).map(move |b| size(p, b)))
        .sum();

    let followers = [
        tokio::spawn(follow(store.clone(), total, 7)),
        tokio::spawn(follow(store.clone(), total, 512)),
    ];
    let multi = {
        let store = store.clone();
        tokio::spawn(async move {
            let offsets = BTreeMap::from([("live".to_string(), None), ("quiet".to_string(), None)]);
            let mut stream = store
                .consume(MultiQuery {
                    offsets,
                    follow: true,
                    page_size: 16,
                    ..Default::default()
                })
                .unwrap();
            let mut out = Vec::new();
            while out.len() < total {
                out.push(stream.next().await.unwrap().unwrap());
            }
            out
        })
    };
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let store = store.clone();
        producers.push(tokio::spawn(async move {
            let segment = format!("seg{}", p % 4);
            for b in 0..BATCHES {
                let records = (0..size(p, b))
                    .map(|i| Record::new(format!("{p}-{b}-{i}")))
                    .collect();
                store
                    .produce("live", &segment, records, ProduceOptions::default())
                    .await
                    .unwrap();
            }
        }));
    }
    for producer in producers {
        producer.await.unwrap();
    }
    let [a, b] = followers;
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let multi = multi.await.unwrap();
    let history = read_space(&store, "live").await;
    assert_eq!(history.len(), total);
    assert_eq!(a, history);
    assert_eq!(b, history);
    assert_eq!(multi, history);
    for pair in history.windows(2) {
        assert!(pair[0].offset() < pair[1].offset(), "merge order");
        assert!(pair[0].timestamp <= pair[1].timestamp);
    }
    // Every segment dense from 1, each entry once.
    let mut per_segment: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for entry in &history {
        per_segment
            .entry(&entry.segment)
            .or_default()
            .push(entry.sequence);
    }
    for (segment, seqs) in per_segment {
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "{segment}"
        );
    }
    assert_eq!(a.last().unwrap().offset(), b.last().unwrap().offset());
    store.close().await.unwrap();
}

backend_tests!(should_deliver_every_entry_once_in_order_to_every_follower);

#[test]
fn kinds() {
    assert_ne!(Kind::Memory, Kind::Crash);
}
