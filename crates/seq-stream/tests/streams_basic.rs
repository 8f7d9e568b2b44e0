//! Streams: produce, consume, follow, peek, status, listings, subscriptions,
//! idempotency and retention, on every backend.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod streams_common;

use std::collections::BTreeMap;
use std::time::Duration;

use seq_stream::{
    Error, ExpectedSequence, MultiQuery, ProduceOptions, Record, SegmentQuery, SegmentStatus,
    SpaceQuery, Trim,
};
use streams_common::{Harness, Kind, dump, payloads, read_segment, read_space};

fn recs(items: &[&str]) -> Vec<Record> {
    items.iter().map(|p| Record::new(p.to_string())).collect()
}

async fn should_produce_and_consume_a_segment(mut h: Harness) {
    let store = h.open();
    let status = store
        .produce("orders", "eu", recs(&["a", "b"]), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (status.first_sequence, status.last_sequence, status.count),
        (1, 2, 2)
    );
    let record = Record::new("c").with_metadata("k", "v").with_sequence(3);
    let status = store
        .produce("orders", "eu", vec![record], ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(status.last_sequence, 3);
    assert!(status.first_timestamp <= status.last_timestamp);

    let entries = read_segment(&store, "orders", "eu").await;
    assert_eq!(payloads(&entries), ["a", "b", "c"]);
    assert_eq!(
        entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        entries[0].timestamp, entries[1].timestamp,
        "one batch, one timestamp"
    );
    assert!(entries[2].timestamp > entries[1].timestamp);
    assert_eq!(entries[2].metadata.get("k").map(String::as_str), Some("v"));
    assert_eq!(entries[0].trx.id, store.id());
    assert!(entries[2].trx.number > entries[0].trx.number);

    // Filters.
    let mut stream = store
        .consume_segment(
            "orders",
            "eu",
            SegmentQuery {
                min_seq: 2,
                limit: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().sequence, 2);
    assert!(stream.next().await.unwrap().is_none());
    drop(stream);
    let mut stream = store
        .consume_segment(
            "orders",
            "eu",
            SegmentQuery {
                max_ts: Some(entries[0].timestamp),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(stream.next_batch(10).await.unwrap().len(), 2);
    assert!(stream.next().await.unwrap().is_none());
    drop(stream);
    let mut stream = store
        .consume_segment(
            "orders",
            "eu",
            SegmentQuery {
                min_ts: Some(entries[2].timestamp),
                max_seq: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().sequence, 3);
    assert!(stream.next().await.unwrap().is_none());
    drop(stream); // streams hold the store open

    // Peek, status, listings.
    let peeked = store.peek("orders", "eu").await.unwrap();
    assert_eq!(peeked, entries[2]);
    let empty = store.peek("orders", "nowhere").await.unwrap();
    assert_eq!(
        (&*empty.space, &*empty.segment, empty.sequence),
        ("orders", "nowhere", 0)
    );
    assert!(empty.payload.is_empty());
    assert_eq!(
        store.status("orders", "nowhere").await.unwrap(),
        SegmentStatus::empty("orders", "nowhere")
    );
    store
        .produce("billing", "x", recs(&["z"]), ProduceOptions::default())
        .await
        .unwrap();
    store
        .produce("orders", "us", recs(&["u"]), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(store.list_spaces().await.unwrap(), ["billing", "orders"]);
    let segments = store.list_segments("orders").await.unwrap();
    assert_eq!(
        segments
            .iter()
            .map(|s| s.segment.as_str())
            .collect::<Vec<_>>(),
        ["eu", "us"]
    );
    assert_eq!(segments[0], store.status("orders", "eu").await.unwrap());

    // Everything survives a reopen, and sequences continue.
    let store = h.reopen(store).await;
    assert_eq!(
        payloads(&read_segment(&store, "orders", "eu").await),
        ["a", "b", "c"]
    );
    let status = store
        .produce("orders", "eu", recs(&["d"]), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(status.last_sequence, 4);
    let again = read_segment(&store, "orders", "eu").await;
    assert!(again[3].timestamp > again[2].timestamp);
    store.close().await.unwrap();
}

async fn should_merge_a_space_and_resume_from_offsets(mut h: Harness) {
    let store = h.open();
    let mut expected = Vec::new();
    for round in 0..5 {
        for segment in ["b", "a", "c"] {
            let payload = format!("{segment}{round}");
            store
                .produce("s", segment, recs(&[&payload]), ProduceOptions::default())
                .await
                .unwrap();
            expected.push(payload);
        }
    }
    // One batch of two in segment "a": same timestamp, sequence order.
    store
        .produce("s", "a", recs(&["a5", "a6"]), ProduceOptions::default())
        .await
        .unwrap();
    expected.extend(["a5".to_string(), "a6".to_string()]);
    let all = read_space(&store, "s").await;
    assert_eq!(payloads(&all), expected);
    for pair in all.windows(2) {
        assert!(pair[0].offset() < pair[1].offset());
    }

    // Resume from every offset: exactly the rest.
    for (index, entry) in all.iter().enumerate() {
        let mut stream = store
            .consume_space(
                "s",
                SpaceQuery {
                    offset: Some(entry.offset()),
                    page_size: 2,
                    ..Default::default()
                },
            )
            .unwrap();
        let mut rest = Vec::new();
        while let Some(e) = stream.next().await.unwrap() {
            rest.push(e);
        }
        assert_eq!(rest, all[index + 1..]);
    }
    assert_eq!(
        store.count_after("s", None).await.unwrap(),
        all.len() as u64
    );
    assert_eq!(
        store
            .count_after("s", Some(&all[3].offset()))
            .await
            .unwrap(),
        (all.len() - 4) as u64
    );
    assert_eq!(
        store.head_offset("s").await.unwrap(),
        all.last().map(|e| e.offset())
    );

    // Multi-space merge by timestamp.
    store
        .produce("t", "x", recs(&["t0"]), ProduceOptions::default())
        .await
        .unwrap();
    store
        .produce("s", "a", recs(&["a7"]), ProduceOptions::default())
        .await
        .unwrap();
    store
        .produce("t", "x", recs(&["t1"]), ProduceOptions::default())
        .await
        .unwrap();
    let mut offsets = BTreeMap::new();
    offsets.insert("s".to_string(), Some(all.last().unwrap().offset()));
    offsets.insert("t".to_string(), None);
    let mut stream = store
        .consume(MultiQuery {
            offsets,
            page_size: 1,
            ..Default::default()
        })
        .unwrap();
    let mut got = Vec::new();
    while let Some(e) = stream.next().await.unwrap() {
        got.push(e);
    }
    assert_eq!(payloads(&got), ["t0", "a7", "t1"]);
    let resume = stream.offsets();
    assert_eq!(resume["t"], Some(got[2].offset()));
    assert_eq!(resume["s"], Some(got[1].offset()));
    store.close().await.unwrap();
}

async fn should_follow_without_gap_or_repeat(mut h: Harness) {
    let store = h.open();
    store
        .produce("f", "a", recs(&["0", "1"]), ProduceOptions::default())
        .await
        .unwrap();
    let mut seg = store
        .consume_segment(
            "f",
            "a",
            SegmentQuery {
                follow: true,
                page_size: 1,
                ..Default::default()
            },
        )
        .unwrap();
    let mut space = store
        .consume_space(
            "f",
            SpaceQuery {
                follow: true,
                ..Default::default()
            },
        )
        .unwrap();
    let producer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 2..40 {
                store
                    .produce("f", "a", recs(&[&i.to_string()]), ProduceOptions::default())
                    .await
                    .unwrap();
                if i % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    for want in 0..40u64 {
        let e = seg.next().await.unwrap().unwrap();
        assert_eq!(
            (e.sequence, payloads(std::slice::from_ref(&e))[0].clone()),
            (want + 1, want.to_string())
        );
        let e = space.next().await.unwrap().unwrap();
        assert_eq!(e.sequence, want + 1);
    }
    producer.await.unwrap();
    // Nothing more: a following read waits.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), seg.next())
            .await
            .is_err()
    );
    seg.close();
    assert!(seg.next().await.unwrap().is_none());
    drop(space);
    store.close().await.unwrap();
}

async fn should_reject_a_wrong_sequence_and_change_nothing(mut h: Harness) {
    let store = h.open();
    store
        .produce("s", "g", recs(&["a"]), ProduceOptions::default())
        .await
        .unwrap();
    let before = dump(&store);
    let bad = vec![Record::new("b"), Record::new("c").with_sequence(5)];
    match store
        .produce("s", "g", bad, ProduceOptions::default())
        .await
    {
        Err(Error::SequenceMismatch {
            expected: 3,
            actual: 5,
        }) => {}
        other => panic!("{other:?}"),
    }
    let expect = ProduceOptions::default().with_expected(ExpectedSequence::Exact(7));
    match store.produce("s", "g", recs(&["b"]), expect).await {
        Err(Error::SequenceMismatch {
            expected: 7,
            actual: 1,
        }) => {}
        other => panic!("{other:?}"),
    }
    let none = ProduceOptions::default().with_expected(ExpectedSequence::NoStream);
    assert!(matches!(
        store.produce("s", "g", recs(&["b"]), none.clone()).await,
        Err(Error::SequenceMismatch {
            expected: 0,
            actual: 1
        })
    ));
    assert_eq!(dump(&store), before);
    let status = store.produce("s", "new", recs(&["x"]), none).await.unwrap();
    assert_eq!(status.last_sequence, 1);
    let ok = ProduceOptions::default().with_expected(ExpectedSequence::Exact(1));
    assert_eq!(
        store
            .produce("s", "g", recs(&["b"]), ok)
            .await
            .unwrap()
            .last_sequence,
        2
    );
    store.close().await.unwrap();
}

async fn should_dedupe_idempotent_retries(mut h: Harness) {
    let store = h.open();
    let batch = || {
        vec![
            Record::new("a").with_idempotency_key("k1"),
            Record::new("b").with_idempotency_key("k2"),
        ]
    };
    let first = store
        .produce_receipt("s", "g", batch(), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!((first.sequences.clone(), first.appended), (vec![1, 2], 2));
    store
        .produce("s", "g", recs(&["c"]), ProduceOptions::default())
        .await
        .unwrap();

    // A retry appends nothing, even with a now-stale expectation.
    let stale = ProduceOptions::default().with_expected(ExpectedSequence::Exact(0));
    let retry = store
        .produce_receipt("s", "g", batch(), stale)
        .await
        .unwrap();
    assert_eq!(
        (retry.sequences, retry.appended, retry.status.last_sequence),
        (vec![1, 2], 0, 3)
    );

    // Mixed: new records get the next sequences, duplicates their originals,
    // a key repeated in the batch maps to its first occurrence.
    let mixed = vec![
        Record::new("d").with_idempotency_key("k3"),
        Record::new("a")
            .with_idempotency_key("k1")
            .with_sequence(99),
        Record::new("e").with_sequence(5),
        Record::new("d2").with_idempotency_key("k3"),
    ];
    let receipt = store
        .produce_receipt("s", "g", mixed, ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!((receipt.sequences, receipt.appended), (vec![4, 1, 5, 4], 2));
    assert_eq!(
        payloads(&read_segment(&store, "s", "g").await),
        ["a", "b", "c", "d", "e"]
    );

    // The window survives a reopen; other segments have their own keys.
    let store = h.reopen(store).await;
    let retry = store
        .produce_receipt("s", "g", batch(), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(retry.appended, 0);
    let other = store
        .produce_receipt("s", "other", batch(), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(other.appended, 2);

    // Trimming forgets the keys of the removed entries.
    store.trim("s", "g", Trim::BeforeSequence(2)).await.unwrap();
    let after = store
        .produce_receipt("s", "g", batch(), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!((after.sequences, after.appended), (vec![6, 2], 1));
    store.close().await.unwrap();
}

async fn should_trim_and_continue_above_the_old_last_sequence(mut h: Harness) {
    let store = h.open();
    for i in 0..10 {
        store
            .produce("s", "g", recs(&[&i.to_string()]), ProduceOptions::default())
            .await
            .unwrap();
        store
            .produce("s", "h", recs(&[&i.to_string()]), ProduceOptions::default())
            .await
            .unwrap();
    }
    let report = store.trim("s", "g", Trim::BeforeSequence(4)).await.unwrap();
    assert_eq!(
        (
            report.removed,
            report.status.first_sequence,
            report.status.count
        ),
        (3, 4, 7)
    );
    let entries = read_segment(&store, "s", "g").await;
    assert_eq!(entries[0].sequence, 4);
    assert_eq!(report.status.first_timestamp, entries[0].timestamp);
    assert_eq!(
        store
            .trim("s", "g", Trim::BeforeSequence(2))
            .await
            .unwrap()
            .removed,
        0
    );
    assert_eq!(
        store
            .trim("s", "g", Trim::KeepLast(5))
            .await
            .unwrap()
            .status
            .first_sequence,
        6
    );
    let cutoff = entries[4].timestamp; // sequence 8
    assert_eq!(
        store
            .trim("s", "g", Trim::OlderThan(cutoff))
            .await
            .unwrap()
            .status
            .first_sequence,
        8
    );
    // The space index lost exactly the trimmed entries.
    let space = read_space(&store, "s").await;
    assert_eq!(
        space
            .iter()
            .filter(|e| &*e.segment == "g")
            .map(|e| e.sequence)
            .collect::<Vec<_>>(),
        [8, 9, 10]
    );
    assert_eq!(space.iter().filter(|e| &*e.segment == "h").count(), 10);

    // Trim everything, reopen: the next produce continues above 10.
    let all = store.trim("s", "g", Trim::KeepLast(0)).await.unwrap();
    assert_eq!(
        (
            all.status.count,
            all.status.first_sequence,
            all.status.last_sequence
        ),
        (0, 11, 10)
    );
    assert_eq!(all.status.first_timestamp, 0);
    assert_eq!(store.peek("s", "g").await.unwrap().sequence, 0);
    let store = h.reopen(store).await;
    let status = store
        .produce("s", "g", recs(&["new"]), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (status.first_sequence, status.last_sequence, status.count),
        (11, 11, 1)
    );
    assert!(status.last_timestamp > all.status.last_timestamp);
    assert_eq!(read_segment(&store, "s", "g").await[0].sequence, 11);
    store.close().await.unwrap();
}

/// Index records of the space (`IDX` + space), as stored.
fn index_records(store: &seq_stream::Store, space: &str) -> usize {
    let prefix = seq_core::keys::KeyBuilder::new(seq_core::keys::keyspace::IDX)
        .str(space)
        .build();
    dump(store)
        .keys()
        .filter(|key| key.starts_with(&prefix))
        .count()
}

async fn should_count_and_collect_the_index_as_segments_are_trimmed(mut h: Harness) {
    let store = h.open();
    for i in 0..10 {
        for segment in ["g", "h"] {
            store
                .produce(
                    "s",
                    segment,
                    recs(&[&i.to_string()]),
                    ProduceOptions::default(),
                )
                .await
                .unwrap();
        }
    }
    // One record per commit group, each produce its own group here.
    assert_eq!(index_records(&store, "s"), 20);
    assert_eq!(store.count_after("s", None).await.unwrap(), 20);
    let all = read_space(&store, "s").await;
    let fifth = all[4].offset();
    assert_eq!(store.count_after("s", Some(&fifth)).await.unwrap(), 15);

    // Each record holds one run: trimming "g" collects the records before
    // the first that names a retained entry ("h"'s first), and readers skip
    // the rest of "g"'s runs.
    store.trim("s", "g", Trim::KeepLast(0)).await.unwrap();
    assert_eq!(
        index_records(&store, "s"),
        19,
        "only the leading record goes"
    );
    assert_eq!(store.count_after("s", None).await.unwrap(), 10);
    assert_eq!(store.count_after("s", Some(&fifth)).await.unwrap(), 8);
    let rest = read_space(&store, "s").await;
    assert!(rest.iter().all(|e| &*e.segment == "h"));
    assert_eq!(rest.len(), 10);
    assert_eq!(
        store.head_offset("s").await.unwrap(),
        Some(all[19].offset())
    );

    // Once every run is trimmed, every record goes.
    store.trim("s", "h", Trim::KeepLast(0)).await.unwrap();
    assert_eq!(index_records(&store, "s"), 0);
    assert_eq!(store.count_after("s", None).await.unwrap(), 0);
    assert_eq!(store.head_offset("s").await.unwrap(), None);
    assert!(read_space(&store, "s").await.is_empty());
    store.close().await.unwrap();
}

async fn should_trim_large_segments_in_chunks(mut h: Harness) {
    let store = h.open();
    for _ in 0..5 {
        let batch = (0..2000)
            .map(|i| {
                Record::new(format!("{i}")).with_idempotency_key(format!("k{i}-{}", rand_tag()))
            })
            .collect();
        store
            .produce("s", "g", batch, ProduceOptions::default())
            .await
            .unwrap();
    }
    let report = store.trim("s", "g", Trim::KeepLast(1000)).await.unwrap();
    assert_eq!((report.removed, report.status.first_sequence), (9000, 9001));
    assert_eq!(read_space(&store, "s").await.len(), 1000);
    store.close().await.unwrap();
}

fn rand_tag() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn should_subscribe_to_snapshot_then_updates(mut h: Harness) {
    let store = h.open();
    store
        .produce("s", "a", recs(&["1"]), ProduceOptions::default())
        .await
        .unwrap();
    let mut all = store.subscribe_space("*").await.unwrap();
    let mut space = store.subscribe_space("s").await.unwrap();
    let mut seg = store.subscribe_segment("s", "b").await.unwrap();
    assert_eq!(all.snapshot.len(), 1);
    assert_eq!(space.snapshot, all.snapshot);
    assert_eq!(seg.snapshot, vec![SegmentStatus::empty("s", "b")]);

    store
        .produce("s", "b", recs(&["1", "2"]), ProduceOptions::default())
        .await
        .unwrap();
    store
        .produce("other", "x", recs(&["1"]), ProduceOptions::default())
        .await
        .unwrap();
    store.trim("s", "b", Trim::BeforeSequence(2)).await.unwrap();

    let update = seg.next().await.unwrap().unwrap();
    assert_eq!(update.segment, "b");
    // Updates may coalesce: read until the trim shows.
    let mut last = update;
    while last.first_sequence != 2 {
        last = seg.next().await.unwrap().unwrap();
    }
    assert_eq!((last.last_sequence, last.count), (2, 1));
    let mut seen = Vec::new();
    while seen.iter().all(|s: &SegmentStatus| s.space != "other") {
        seen.push(all.next().await.unwrap().unwrap());
    }
    let first = space.next().await.unwrap().unwrap();
    assert_eq!((first.space.as_str(), first.segment.as_str()), ("s", "b"));
    assert!(
        tokio::time::timeout(Duration::from_millis(30), async {
            loop {
                let s = space.next().await.unwrap().unwrap();
                assert_eq!(s.space, "s");
            }
        })
        .await
        .is_err()
    );
    drop((all, space, seg));
    store.close().await.unwrap();
}

async fn should_keep_segments_of_names_that_look_alike_apart(mut h: Harness) {
    let store = h.open();
    store
        .produce("a", "b c", recs(&["1"]), ProduceOptions::default())
        .await
        .unwrap();
    store
        .produce("a b", "c", recs(&["2"]), ProduceOptions::default())
        .await
        .unwrap();
    store
        .produce("ab", "c", recs(&["3"]), ProduceOptions::default())
        .await
        .unwrap();
    store
        .produce("ünï", "*", recs(&["4"]), ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(payloads(&read_space(&store, "a").await), ["1"]);
    assert_eq!(payloads(&read_space(&store, "a b").await), ["2"]);
    assert_eq!(
        store.list_spaces().await.unwrap(),
        ["a", "a b", "ab", "ünï"]
    );
    assert_eq!(payloads(&read_segment(&store, "ünï", "*").await), ["4"]);
    store.close().await.unwrap();
}

async fn should_keep_timestamps_strictly_increasing_across_reopen(mut h: Harness) {
    let mut store = h.open();
    let mut last = 0;
    for round in 0..3 {
        for segment in ["g", "h"] {
            let status = store
                .produce("s", segment, recs(&["x"]), ProduceOptions::default())
                .await
                .unwrap();
            assert!(status.last_timestamp > last, "round {round}");
            last = status.last_timestamp;
        }
        store = h.reopen(store).await;
    }
    store.close().await.unwrap();
}

async fn should_follow_several_spaces_past_a_page_read_ahead_before_a_commit(mut h: Harness) {
    let store = h.open();
    store
        .produce(
            "a",
            "g",
            recs(&["1", "2", "3", "4"]),
            ProduceOptions::default(),
        )
        .await
        .unwrap();
    let offsets = BTreeMap::from([("a".to_string(), None), ("quiet".to_string(), None)]);
    let mut stream = store
        .consume(MultiQuery {
            offsets,
            follow: true,
            page_size: 4,
            ..Default::default()
        })
        .unwrap();
    for expected in 1..=4 {
        assert_eq!(stream.next().await.unwrap().unwrap().sequence, expected);
    }
    // Space "a" read its next page ahead while those were yielded and found
    // it empty; the entry committed now is past that read.
    tokio::time::sleep(Duration::from_millis(100)).await;
    store
        .produce("a", "g", recs(&["late"]), ProduceOptions::default())
        .await
        .unwrap();
    let late = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an entry committed after a page read ahead comes through")
        .unwrap()
        .unwrap();
    assert_eq!((late.sequence, &late.payload[..]), (5, &b"late"[..]));
    drop(stream);
    store.close().await.unwrap();
}

backend_tests!(
    should_follow_several_spaces_past_a_page_read_ahead_before_a_commit,
    should_produce_and_consume_a_segment,
    should_merge_a_space_and_resume_from_offsets,
    should_follow_without_gap_or_repeat,
    should_reject_a_wrong_sequence_and_change_nothing,
    should_dedupe_idempotent_retries,
    should_trim_and_continue_above_the_old_last_sequence,
    should_trim_large_segments_in_chunks,
    should_count_and_collect_the_index_as_segments_are_trimmed,
    should_subscribe_to_snapshot_then_updates,
    should_keep_segments_of_names_that_look_alike_apart,
    should_keep_timestamps_strictly_increasing_across_reopen,
);

#[test]
fn harness_kinds_are_distinct() {
    assert_ne!(Kind::Memory, Kind::Crash);
}
