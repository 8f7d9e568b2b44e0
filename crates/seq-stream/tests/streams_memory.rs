//! Consumes hold at most two pages per segment or space stream (the page
//! being yielded and the one read ahead) and one page per space of a
//! multi-space stream: checked through the stream's high-water mark of held
//! entries (the page-size logic, not RSS).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod streams_common;

use std::collections::BTreeMap;

use bytes::Bytes;
use seq_stream::{
    MultiQuery, PAGE_BYTES, ProduceOptions, Record, SegmentQuery, SpaceQuery, WriteOptions,
};
use streams_common::{Harness, Kind};

async fn fill(
    store: &seq_stream::Store,
    space: &str,
    segments: &[&str],
    per_segment: usize,
    payload: usize,
) {
    let body = Bytes::from(vec![7u8; payload]);
    let options = ProduceOptions::default().with_write(WriteOptions::buffered());
    let mut done = 0;
    while done < per_segment {
        let n = 500.min(per_segment - done);
        for segment in segments {
            let batch = (0..n).map(|_| Record::new(body.clone())).collect();
            store
                .produce(space, segment, batch, options.clone())
                .await
                .unwrap();
        }
        done += n;
    }
    store.flush().await.unwrap();
}

async fn should_hold_at_most_two_pages_while_consuming(mut h: Harness) {
    let store = h.open();
    fill(&store, "big", &["g"], 20_000, 16).await;
    fill(&store, "four", &["a", "b", "c", "d"], 2_500, 16).await;

    let mut stream = store
        .consume_segment(
            "big",
            "g",
            SegmentQuery {
                page_size: 256,
                ..Default::default()
            },
        )
        .unwrap();
    let mut expect = 1;
    while let Some(entry) = stream.next().await.unwrap() {
        assert_eq!(entry.sequence, expect);
        expect += 1;
    }
    assert_eq!(expect, 20_001);
    assert!(stream.max_held() <= 2 * 256, "held {}", stream.max_held());
    assert!(
        stream.max_held() >= 200,
        "pages are actually used: {}",
        stream.max_held()
    );
    drop(stream);

    let mut stream = store
        .consume_space(
            "four",
            SpaceQuery {
                page_size: 256,
                ..Default::default()
            },
        )
        .unwrap();
    let mut n = 0;
    let mut last = None;
    loop {
        let batch = stream.next_batch(100).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for entry in batch {
            assert!(last < Some(entry.offset()));
            last = Some(entry.offset());
            n += 1;
        }
    }
    assert_eq!(n, 10_000);
    assert!(stream.max_held() <= 2 * 256, "held {}", stream.max_held());
    drop(stream);

    let offsets = BTreeMap::from([("big".to_string(), None), ("four".to_string(), None)]);
    let mut stream = store
        .consume(MultiQuery {
            offsets,
            page_size: 128,
            ..Default::default()
        })
        .unwrap();
    let mut n = 0;
    while stream.next().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 30_000);
    // Each space reads its next page while the merge works through one.
    let spaces = 2;
    assert!(
        stream.max_held() <= spaces * 2 * 128,
        "held {}",
        stream.max_held()
    );
    assert!(
        stream.max_held() > 2 * 128,
        "the spaces read ahead: {}",
        stream.max_held()
    );
    drop(stream);
    store.close().await.unwrap();
}

async fn should_bound_pages_by_bytes_for_large_payloads(mut h: Harness) {
    let store = h.open();
    let payload = 1 << 20;
    fill(&store, "large", &["g"], 24, payload).await;
    let per_page = PAGE_BYTES / payload;

    let mut stream = store
        .consume_segment("large", "g", SegmentQuery::default())
        .unwrap();
    let mut n = 0;
    while stream.next().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 24);
    assert!(
        stream.max_held() <= 2 * per_page,
        "held {}",
        stream.max_held()
    );
    drop(stream);

    let mut stream = store.consume_space("large", SpaceQuery::default()).unwrap();
    let mut n = 0;
    while stream.next().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 24);
    // The first page guesses (at most 16 entries), later pages adapt.
    assert!(stream.max_held() <= 2 * 16, "held {}", stream.max_held());
    drop(stream);
    store.close().await.unwrap();
}

/// Polls `stream.next()` once and drops the future if it is not ready (a
/// caller's `select!` losing the race).
async fn next_or_cancel(stream: &mut seq_stream::EntryStream) -> Option<Option<u64>> {
    tokio::select! {
        biased;
        next = stream.next() => Some(next.unwrap().map(|e| e.sequence)),
        () = std::future::ready(()) => None,
    }
}

async fn should_lose_nothing_when_next_is_cancelled_during_a_read(mut h: Harness) {
    let store = h.open();
    fill(&store, "c", &["g"], 3_000, 16).await;
    fill(&store, "c4", &["a", "b", "c", "d"], 700, 16).await;

    // Every call is dropped after one poll unless it is ready at once, so
    // calls are cancelled whenever a page read is in flight: the read is
    // kept, and no entry is skipped or repeated.
    let mut stream = store
        .consume_segment("c", "g", SegmentQuery::default())
        .unwrap();
    let mut seen = Vec::new();
    loop {
        match next_or_cancel(&mut stream).await {
            Some(Some(sequence)) => seen.push(sequence),
            Some(None) => break,
            None => tokio::task::yield_now().await,
        }
    }
    assert_eq!(seen, (1..=3_000).collect::<Vec<u64>>());

    let mut stream = store.consume_space("c4", SpaceQuery::default()).unwrap();
    let (mut n, mut last) = (0, None);
    loop {
        let next = tokio::select! {
            biased;
            next = stream.next() => Some(next.unwrap()),
            () = std::future::ready(()) => None,
        };
        match next {
            Some(Some(entry)) => {
                assert!(last < Some(entry.offset()));
                last = Some(entry.offset());
                n += 1;
            }
            Some(None) => break,
            None => tokio::task::yield_now().await,
        }
    }
    assert_eq!(n, 2_800);
    store.close().await.unwrap();
}

async fn should_not_read_past_a_small_limit(mut h: Harness) {
    let store = h.open();
    fill(&store, "l", &["g", "h"], 2_000, 16).await;
    for limit in [1u64, 10, 100] {
        let mut stream = store
            .consume_segment(
                "l",
                "g",
                SegmentQuery {
                    limit: Some(limit),
                    ..Default::default()
                },
            )
            .unwrap();
        let mut n = 0;
        while stream.next().await.unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, limit);
        assert!(
            stream.max_held() as u64 <= limit,
            "held {}",
            stream.max_held()
        );

        let mut stream = store
            .consume_space(
                "l",
                SpaceQuery {
                    limit: Some(limit),
                    ..Default::default()
                },
            )
            .unwrap();
        let mut n = 0;
        loop {
            let batch = stream.next_batch(1_000).await.unwrap();
            if batch.is_empty() {
                break;
            }
            n += batch.len() as u64;
        }
        assert_eq!(n, limit);
        assert!(
            stream.max_held() as u64 <= limit,
            "held {}",
            stream.max_held()
        );
    }
    store.close().await.unwrap();
}

backend_tests!(
    should_hold_at_most_two_pages_while_consuming,
    should_bound_pages_by_bytes_for_large_payloads,
    should_lose_nothing_when_next_is_cancelled_during_a_read,
    should_not_read_past_a_small_limit
);

#[test]
fn kinds() {
    assert_ne!(Kind::Memory, Kind::Crash);
}
