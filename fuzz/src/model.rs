//! The model-based target: random operations on a real [`Store`] over
//! [`CrashStorage`], checked step by step against a `BTreeMap` model, with
//! clean reboots and crashes (power loss: only what was synced survives) as
//! operations (the sled `fuzz_model` pattern).
//!
//! The input is read with `arbitrary` as a list of [`Op`]s. Every write in
//! the workload waits for durability, so a crash must lose nothing the model
//! holds; numbers handed out before a reboot or crash must never come back.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use seq_storage::CrashStorage;
use seq_stream::{
    Error, ExpectedSequence, ProduceOptions, Record, SegmentQuery, SequenceOptions, Store, Trim,
};

/// The sequences the model uses: (name, block size).
const SEQUENCES: &[(&str, u64)] = &[("b1", 1), ("b4", 4), ("b64", 64)];
/// Sequence-key prefixes and their level counts.
const PREFIXES: &[(&str, usize)] = &[("p", 1), ("q", 2)];
/// Segments of the one space.
const SEGMENTS: &[&str] = &["a", "b", "c"];
const SPACE: &str = "s";

/// One operation.
#[derive(Debug, Arbitrary)]
enum Op {
    Next {
        seq: u8,
    },
    NextN {
        seq: u8,
        n: u8,
    },
    AdvanceBy {
        seq: u8,
        by: u8,
    },
    Put {
        prefix: u8,
        first: u8,
        second: u8,
    },
    DeleteHighest {
        prefix: u8,
    },
    Produce {
        segment: u8,
        n: u8,
        expected: Expect,
    },
    Trim {
        segment: u8,
        keep: u8,
    },
    Flush,
    Reboot,
    Crash,
}

/// What a produce claims about the segment.
#[derive(Debug, Arbitrary)]
enum Expect {
    Nothing,
    /// Records with explicit sequences, starting this far from the right one.
    Explicit(i8),
    /// An expected last sequence this far from the right one.
    Last(i8),
}

#[derive(Debug, Default)]
struct SeqModel {
    /// The lowest tick the next allocation may return.
    floor: u64,
    /// The exact next tick, when known (within one session).
    exact: Option<u64>,
    block: u64,
}

#[derive(Debug, Default)]
struct Model {
    sequences: BTreeMap<&'static str, SeqModel>,
    /// Sequence keys: key → value.
    keys: BTreeMap<String, Bytes>,
    /// Highest key ever generated per prefix.
    key_high: BTreeMap<&'static str, String>,
    /// Per segment: retained entries (sequence → payload) and last sequence.
    segments: BTreeMap<&'static str, (BTreeMap<u64, Bytes>, u64)>,
    /// Highest commit number seen.
    commit: u64,
}

/// Runs one input. Panics on any divergence from the model.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    // Read ops until the input runs out (every byte string is a script).
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 48 {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    if std::env::var_os("SEQ_FUZZ_TRACE").is_some() {
        eprintln!("{ops:?}");
    }
    runtime.block_on(drive(ops));
}

fn pick<T: Copy>(items: &[T], i: u8) -> T {
    items[usize::from(i) % items.len()]
}

async fn open(storage: &CrashStorage) -> Store {
    Store::open(storage.clone()).expect("opening the store on intact storage")
}

async fn drive(ops: Vec<Op>) {
    let mut storage = CrashStorage::new();
    let mut store = open(&storage).await;
    let mut model = Model::default();
    for (name, block) in SEQUENCES {
        let options = SequenceOptions {
            block_size: *block,
            ..SequenceOptions::default()
        };
        store
            .create_sequence(name, options)
            .await
            .expect("create_sequence");
        model.sequences.insert(
            name,
            SeqModel {
                floor: 0,
                exact: Some(0),
                block: *block,
            },
        );
    }
    for op in ops {
        match op {
            Op::Next { seq } => take(&store, &mut model, pick(SEQUENCES, seq).0, 1).await,
            Op::NextN { seq, n } => {
                take(
                    &store,
                    &mut model,
                    pick(SEQUENCES, seq).0,
                    u64::from(n % 80) + 1,
                )
                .await;
            }
            Op::AdvanceBy { seq, by } => {
                let name = pick(SEQUENCES, seq).0;
                let handle = store.sequence(name).await.expect("sequence");
                let next = handle.peek().expect("peek");
                // tick t is value t + 1 (start 1, increment 1).
                let target = next + i64::from(by) - 1;
                let state = model.sequences.get_mut(name).expect("model sequence");
                match handle.advance_to(target).await {
                    Ok(()) => {
                        let tick = u64::try_from(target).expect("positive");
                        state.floor = state.floor.max(tick);
                        state.exact = Some(tick);
                    }
                    // Advancing to the value before next is "backwards" only
                    // when it would move back; at next - 1 it is a no-op or
                    // an InvalidArgument, never a change.
                    Err(Error::InvalidArgument { .. }) => assert_eq!(by, 0, "advance_to by {by}"),
                    Err(e) => panic!("advance_to({target}): {e}"),
                }
                assert_eq!(
                    handle.peek().expect("peek") as u64 - 1,
                    state.exact.expect("exact")
                );
            }
            Op::Put {
                prefix,
                first,
                second,
            } => {
                let (prefix, levels) = pick(PREFIXES, prefix);
                let mut deltas = vec![u64::from(first)];
                if levels == 2 {
                    deltas.push(u64::from(second));
                }
                let value = Bytes::from(format!("{first}.{second}"));
                match store.put_sequenced(prefix, value.clone(), &deltas).await {
                    Ok((key, version)) => {
                        assert_ne!(first, 0, "a zero first delta was accepted");
                        if let Some(high) = model.key_high.get(prefix) {
                            assert!(key > *high, "sequence key {key} not above {high}");
                        }
                        assert!(
                            version > model.commit,
                            "version {version} <= {}",
                            model.commit
                        );
                        model.commit = version;
                        model.key_high.insert(prefix, key.clone());
                        model.keys.insert(key, value);
                    }
                    Err(Error::InvalidArgument { .. }) => assert_eq!(first, 0),
                    Err(e) => panic!("put_sequenced: {e}"),
                }
            }
            Op::DeleteHighest { prefix } => {
                let (prefix, _) = pick(PREFIXES, prefix);
                if let Some(high) = model.key_high.get(prefix).cloned() {
                    let existed = store
                        .delete_sequenced(&high)
                        .await
                        .expect("delete_sequenced");
                    assert_eq!(existed, model.keys.remove(&high).is_some());
                }
            }
            Op::Produce {
                segment,
                n,
                expected,
            } => {
                produce(&store, &mut model, pick(SEGMENTS, segment), n, expected).await;
            }
            Op::Trim { segment, keep } => {
                let segment = pick(SEGMENTS, segment);
                let keep = u64::from(keep % 8);
                let report = store
                    .trim(SPACE, segment, Trim::KeepLast(keep))
                    .await
                    .expect("trim");
                let (entries, _) = model.segments.entry(segment).or_default();
                let remove = (entries.len() as u64).saturating_sub(keep);
                let doomed: Vec<u64> = entries.keys().take(remove as usize).copied().collect();
                for seq in &doomed {
                    entries.remove(seq);
                }
                assert_eq!(report.removed, remove, "trim KeepLast({keep})");
            }
            Op::Flush => {
                let commit = store.flush().await.expect("flush");
                assert!(
                    commit > model.commit,
                    "flush commit {commit} <= {}",
                    model.commit
                );
                model.commit = commit;
            }
            Op::Reboot | Op::Crash => {
                let crash = matches!(op, Op::Crash);
                if crash {
                    let image = storage.crash();
                    drop(store);
                    storage = image;
                } else {
                    store.close().await.expect("close");
                    drop(store);
                    storage = storage.close_and_reopen();
                }
                store = open(&storage).await;
                assert!(
                    store.commit_seqnum() >= model.commit,
                    "commit oracle went back"
                );
                for state in model.sequences.values_mut() {
                    // Allocation resumes somewhere in [floor, floor + block].
                    state.exact = None;
                }
            }
        }
        check(&store, &mut model).await;
    }
    store.close().await.expect("close");
}

async fn take(store: &Store, model: &mut Model, name: &'static str, n: u64) {
    let handle = store.sequence(name).await.expect("sequence");
    let range = handle.next_n(n).await.expect("next_n");
    let first = u64::try_from(range.first() - 1).expect("tick");
    assert_eq!(range.len(), n);
    let state = model.sequences.get_mut(name).expect("model sequence");
    assert!(
        first >= state.floor,
        "{name}: tick {first} reissued (floor {})",
        state.floor
    );
    assert_eq!(Some(first), state.exact, "{name}: not where peek said");
    state.floor = first + n;
    state.exact = Some(first + n);
}

async fn produce(store: &Store, model: &mut Model, segment: &'static str, n: u8, expected: Expect) {
    let n = u64::from(n % 4) + 1;
    let (entries, last) = model.segments.entry(segment).or_default();
    let next = *last + 1;
    let mut options = ProduceOptions::default();
    let mut wrong = false;
    let mut records: Vec<Record> = (0..n)
        .map(|i| Record::new(Bytes::from(format!("{segment}{}", next + i))))
        .collect();
    match expected {
        Expect::Nothing => {}
        Expect::Explicit(off) => {
            let start = i128::from(next) + i128::from(off);
            if start < 1 {
                // 0 means "next", which is not what this case tests.
                return;
            }
            wrong = off != 0;
            for (i, record) in records.iter_mut().enumerate() {
                record.sequence = u64::try_from(start).expect("positive") + i as u64;
            }
        }
        Expect::Last(off) => {
            let claimed = i128::from(*last) + i128::from(off);
            let Ok(claimed) = u64::try_from(claimed) else {
                return;
            };
            wrong = off != 0;
            options.expected = Some(if claimed == 0 {
                ExpectedSequence::NoStream
            } else {
                ExpectedSequence::Exact(claimed)
            });
            if claimed == 0 && *last != 0 {
                wrong = true;
            }
        }
    }
    match store.produce(SPACE, segment, records, options).await {
        Ok(status) => {
            assert!(
                !wrong,
                "{segment}: a produce with a wrong expectation was accepted"
            );
            assert_eq!(status.last_sequence, *last + n);
            for i in 0..n {
                entries.insert(next + i, Bytes::from(format!("{segment}{}", next + i)));
            }
            *last += n;
        }
        Err(Error::SequenceMismatch { .. }) => assert!(wrong, "{segment}: spurious mismatch"),
        Err(e) => panic!("produce on {segment}: {e}"),
    }
}

/// Compares the store with the model.
async fn check(store: &Store, model: &mut Model) {
    for (name, state) in &mut model.sequences {
        let peek = store
            .sequence(name)
            .await
            .expect("sequence")
            .peek()
            .expect("peek");
        let tick = u64::try_from(peek - 1).expect("tick");
        assert!(
            tick >= state.floor,
            "{name}: peek {peek} below the floor {}",
            state.floor
        );
        match state.exact {
            Some(exact) => assert_eq!(tick, exact, "{name}: peek"),
            None => {
                // After a reboot or crash: at most one block skipped (none
                // for a gap-free sequence).
                let bound = if state.block > 1 { state.block } else { 0 };
                assert!(
                    tick - state.floor <= bound,
                    "{name}: skipped {} ticks after a reboot (block {})",
                    tick - state.floor,
                    state.block
                );
                state.exact = Some(tick);
            }
        }
    }
    for (prefix, _) in PREFIXES {
        let stored = store
            .range_sequenced(prefix, usize::MAX)
            .await
            .expect("range_sequenced");
        let expected: Vec<(&String, &Bytes)> = model
            .keys
            .iter()
            .filter(|(k, _)| is_key_of(prefix, k))
            .collect();
        let got: Vec<(&String, &Bytes)> = stored.iter().map(|r| (&r.key, &r.value)).collect();
        assert_eq!(got, expected, "sequence keys of {prefix}");
    }
    for segment in SEGMENTS {
        let (entries, last) = model.segments.get(segment).cloned().unwrap_or_default();
        let status = store.status(SPACE, segment).await.expect("status");
        assert_eq!(status.last_sequence, last, "{segment}: last sequence");
        assert_eq!(status.count, entries.len() as u64, "{segment}: count");
        let mut stream = store
            .consume_segment(SPACE, segment, SegmentQuery::default())
            .expect("consume");
        let mut got = BTreeMap::new();
        while let Some(entry) = stream.next().await.expect("consume next") {
            got.insert(entry.sequence, entry.payload);
        }
        assert_eq!(got, entries, "{segment}: entries");
    }
    let commit = store.commit_seqnum();
    assert!(
        commit >= model.commit,
        "commit number went back: {commit} < {}",
        model.commit
    );
    model.commit = commit;
}

fn is_key_of(prefix: &str, key: &str) -> bool {
    seq_core::seqkey::parse_key(prefix, key).is_ok()
}
