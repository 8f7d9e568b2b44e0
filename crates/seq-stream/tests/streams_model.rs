//! Model test: random produce / consume / trim / reopen sequences against a
//! simple in-memory model, on memory, crash-sim and redb (and rocks).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod streams_common;

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use seq_stream::{Error, ProduceOptions, Record, SegmentQuery, SpaceQuery, Trim};
use streams_common::{Harness, Kind, read_space};

const SEGMENTS: [&str; 3] = ["a", "b", "a!"];

#[derive(Debug, Clone)]
enum Op {
    /// Produce `n` records; `wrong` makes the first record's sequence wrong.
    Produce {
        seg: usize,
        n: usize,
        wrong: bool,
        key: Option<u8>,
    },
    /// 0 = before sequence, 1 = keep last, 2 = older than an entry's timestamp.
    Trim {
        seg: usize,
        kind: u8,
        arg: u64,
    },
    ConsumeSegment {
        seg: usize,
        from: u64,
        limit: Option<u64>,
    },
    /// Resume the space after the `index`-th retained entry (None = start).
    ConsumeSpace {
        index: Option<usize>,
        limit: Option<u64>,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..3usize, 1..4usize, prop::bool::weighted(0.15), prop::option::weighted(0.3, 0..4u8))
            .prop_map(|(seg, n, wrong, key)| Op::Produce { seg, n, wrong, key }),
        1 => (0..3usize, 0..3u8, 0..12u64).prop_map(|(seg, kind, arg)| Op::Trim { seg, kind, arg }),
        2 => (0..3usize, 0..12u64, prop::option::of(1..5u64))
            .prop_map(|(seg, from, limit)| Op::ConsumeSegment { seg, from, limit }),
        2 => (prop::option::of(0..30usize), prop::option::of(1..6u64))
            .prop_map(|(index, limit)| Op::ConsumeSpace { index, limit }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelEntry {
    segment: usize,
    seq: u64,
    ts: u64,
    payload: Bytes,
}

#[derive(Default)]
struct Model {
    /// Retained entries in merge order (production order).
    log: Vec<ModelEntry>,
    last: [u64; 3],
    /// Keys seen per segment (key → sequence), forgotten when trimmed.
    keys: [BTreeMap<u8, u64>; 3],
    counter: u64,
}

impl Model {
    fn first(&self, seg: usize) -> u64 {
        self.log
            .iter()
            .find(|e| e.segment == seg)
            .map_or(self.last[seg] + 1, |e| e.seq)
    }
}

async fn run(kind: Kind, ops: Vec<Op>) {
    let mut h = Harness::new(kind);
    let mut store = h.open();
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Produce { seg, n, wrong, key } => {
                let mut records = Vec::new();
                for i in 0..n {
                    m.counter += 1;
                    let mut r = Record::new(format!("p{}", m.counter));
                    if i == 0 && wrong {
                        r = r.with_sequence(m.last[seg] + 2);
                    }
                    if i == 0
                        && let Some(k) = key
                    {
                        r = r.with_idempotency_key(format!("key{k}"));
                    }
                    records.push(r);
                }
                let got = store
                    .produce_receipt(
                        "s",
                        SEGMENTS[seg],
                        records.clone(),
                        ProduceOptions::default(),
                    )
                    .await;
                let dup = key.and_then(|k| m.keys[seg].get(&k).copied());
                if wrong && dup.is_none() {
                    assert!(
                        matches!(got, Err(Error::SequenceMismatch { .. })),
                        "{got:?}"
                    );
                    continue;
                }
                let receipt = got.unwrap();
                let ts = receipt.status.last_timestamp;
                let mut next = m.last[seg];
                for (i, record) in records.iter().enumerate() {
                    if i == 0
                        && let Some(original) = dup
                    {
                        assert_eq!(receipt.sequences[0], original);
                        continue;
                    }
                    next += 1;
                    assert_eq!(receipt.sequences[i], next);
                    if i == 0
                        && let Some(k) = key
                    {
                        m.keys[seg].insert(k, next);
                    }
                    m.log.push(ModelEntry {
                        segment: seg,
                        seq: next,
                        ts,
                        payload: record.payload.clone(),
                    });
                }
                m.last[seg] = next;
                assert_eq!(receipt.status.last_sequence, m.last[seg]);
            }
            Op::Trim { seg, kind, arg } => {
                let first = m.first(seg);
                let trim = match kind {
                    0 => Trim::BeforeSequence(first + arg / 3),
                    1 => Trim::KeepLast(arg / 2),
                    _ => {
                        let entries: Vec<&ModelEntry> =
                            m.log.iter().filter(|e| e.segment == seg).collect();
                        let cutoff = entries
                            .get(arg as usize % (entries.len() + 1))
                            .map_or(u64::MAX, |e| e.ts);
                        Trim::OlderThan(cutoff)
                    }
                };
                let cut = match trim {
                    Trim::BeforeSequence(n) => n,
                    Trim::KeepLast(n) => (m.last[seg] + 1).saturating_sub(n),
                    Trim::OlderThan(ts) => m
                        .log
                        .iter()
                        .find(|e| e.segment == seg && e.ts >= ts)
                        .map_or(m.last[seg] + 1, |e| e.seq),
                };
                let before = m.log.len();
                m.log.retain(|e| e.segment != seg || e.seq >= cut);
                m.keys[seg].retain(|_, s| *s >= cut);
                let report = store.trim("s", SEGMENTS[seg], trim).await.unwrap();
                assert_eq!(report.removed, (before - m.log.len()) as u64);
                assert_eq!(report.status.first_sequence, m.first(seg));
            }
            Op::ConsumeSegment { seg, from, limit } => {
                let query = SegmentQuery {
                    min_seq: from,
                    limit,
                    page_size: 2,
                    ..Default::default()
                };
                let mut stream = store.consume_segment("s", SEGMENTS[seg], query).unwrap();
                let mut got = Vec::new();
                while let Some(e) = stream.next().await.unwrap() {
                    got.push((e.sequence, e.payload));
                }
                let want: Vec<(u64, Bytes)> = m
                    .log
                    .iter()
                    .filter(|e| e.segment == seg && e.seq >= from)
                    .take(limit.map_or(usize::MAX, |l| l as usize))
                    .map(|e| (e.seq, e.payload.clone()))
                    .collect();
                assert_eq!(got, want);
            }
            Op::ConsumeSpace { index, limit } => {
                let all = read_space(&store, "s").await;
                let model: Vec<(String, u64, Bytes)> = m
                    .log
                    .iter()
                    .map(|e| (SEGMENTS[e.segment].to_string(), e.seq, e.payload.clone()))
                    .collect();
                let real: Vec<(String, u64, Bytes)> = all
                    .iter()
                    .map(|e| (e.segment.to_string(), e.sequence, e.payload.clone()))
                    .collect();
                assert_eq!(real, model);
                let start = index.filter(|i| *i < all.len());
                let offset = start.map(|i| all[i].offset());
                let mut stream = store
                    .consume_space(
                        "s",
                        SpaceQuery {
                            offset: offset.clone(),
                            limit,
                            page_size: 3,
                            ..Default::default()
                        },
                    )
                    .unwrap();
                let mut got = Vec::new();
                while let Some(e) = stream.next().await.unwrap() {
                    got.push(e);
                }
                let from = start.map_or(0, |i| i + 1);
                let want: Vec<_> = all[from..]
                    .iter()
                    .take(limit.map_or(usize::MAX, |l| l as usize))
                    .cloned()
                    .collect();
                assert_eq!(got, want);
                // Lag counts exactly the retained entries after the offset.
                let behind = store.count_after("s", offset.as_ref()).await.unwrap();
                assert_eq!(behind, (all.len() - from) as u64);
                // The head is at or past the newest retained entry, and
                // nothing follows it.
                let head = store.head_offset("s").await.unwrap();
                if let Some(newest) = all.last() {
                    assert!(head.as_ref() >= Some(&newest.offset()), "{head:?}");
                }
                if head.is_some() {
                    assert_eq!(store.count_after("s", head.as_ref()).await.unwrap(), 0);
                }
            }
            Op::Reopen => store = h.reopen(store).await,
        }
        for (seg, name) in SEGMENTS.iter().enumerate() {
            let status = store.status("s", name).await.unwrap();
            assert_eq!(status.last_sequence, m.last[seg]);
            assert_eq!(status.first_sequence, m.first(seg));
            assert_eq!(
                status.count,
                m.log.iter().filter(|e| e.segment == seg).count() as u64
            );
        }
    }
    store.close().await.unwrap();
}

fn check(kind: Kind, ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(kind, ops));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn should_match_the_model_on_memory(ops in prop::collection::vec(op(), 1..40)) {
        check(Kind::Memory, ops);
    }

    #[test]
    fn should_match_the_model_on_crash_sim(ops in prop::collection::vec(op(), 1..40)) {
        check(Kind::Crash, ops);
    }
}

#[cfg(feature = "redb")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn should_match_the_model_on_redb(ops in prop::collection::vec(op(), 1..30)) {
        check(Kind::Redb, ops);
    }
}

#[cfg(feature = "rocksdb")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn should_match_the_model_on_rocks(ops in prop::collection::vec(op(), 1..30)) {
        check(Kind::Rocks, ops);
    }
}
