//! Named sequences on every backend: concurrency, blocks and reopen, ranges,
//! advance, cycle, exhaustion, gap-free allocation, drop, and bad input.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

#[path = "support_sequences/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use seq_stream::sequence_bench::CountingStorage;
use seq_stream::{Error, SequenceOptions, Store};
use support::{Backend, Kind, dump};

fn block(block_size: u64) -> SequenceOptions {
    SequenceOptions {
        block_size,
        ..SequenceOptions::default()
    }
}

per_backend!(
    should_hand_out_distinct_increasing_values_to_16_tasks,
    should_resume_after_last_block_on_crash,
    should_continue_exactly_after_clean_close,
    should_return_contiguous_ranges_spanning_blocks,
    should_advance_forward_only,
    should_wrap_with_cycle,
    should_exhaust_without_cycle_and_consume_nothing,
    should_count_down_with_negative_increment,
    should_not_leave_gaps_in_gap_free_sequence_across_reopen,
    should_write_caller_records_with_gap_free_number,
    should_drop_sequence_without_touching_others,
    should_reject_bad_input_and_change_nothing,
    should_share_one_reservation_between_handles,
    should_list_sequences_in_name_order,
    should_peek_without_consuming,
    should_fail_handles_after_close,
);

async fn should_hand_out_distinct_increasing_values_to_16_tasks(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("ids", block(4096)).await.unwrap();
    let seq = store.sequence("ids").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(10_000);
            for _ in 0..10_000 {
                got.push(seq.next().await.unwrap());
            }
            got
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        let got = task.await.unwrap();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "a task's values must increase"
        );
        for v in got {
            assert!(all.insert(v), "{v} handed out twice");
        }
    }
    assert_eq!(all.len(), 160_000);
    // Reserved but unissued never exceeds one block.
    let info = seq.info();
    let next_tick = u64::try_from(seq.peek().unwrap() - 1).unwrap();
    assert!(info.reserved_end - next_tick <= 4096, "{info:?}");
    store.close().await.unwrap();
}

async fn should_resume_after_last_block_on_crash(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("s", block(10)).await.unwrap();
    let seq = store.sequence("s").await.unwrap();
    // Two of ten: above the top-up watermark, so only the first block is
    // persisted.
    for want in 1..=2 {
        assert_eq!(seq.next().await.unwrap(), want);
    }
    assert_eq!(seq.info().reserved_end, 10);
    drop(seq);
    let crash_sim = matches!(kind, Kind::Crash);
    let store = backend.crash(store).await;
    let seq = store.sequence("s").await.unwrap();
    if crash_sim {
        // A real crash: the rest of the first block (ticks 2..10) is skipped.
        assert_eq!(seq.peek().unwrap(), 11);
        assert_eq!(seq.next().await.unwrap(), 11);
        assert_eq!(seq.next().await.unwrap(), 12);
    } else {
        // Elsewhere `crash` drops the store unclosed, and dropping is a clean
        // shutdown: the unused reservation was given back.
        assert_eq!(seq.next().await.unwrap(), 3);
    }
    store.close().await.unwrap();
}

async fn should_continue_exactly_after_clean_close(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("s", block(10)).await.unwrap();
    store
        .create_sequence(
            "down",
            SequenceOptions {
                increment: -1,
                block_size: 10,
                ..SequenceOptions::default()
            },
        )
        .await
        .unwrap();
    let seq = store.sequence("s").await.unwrap();
    let down = store.sequence("down").await.unwrap();
    for want in 1..=2 {
        assert_eq!(seq.next().await.unwrap(), want);
    }
    assert_eq!(down.next().await.unwrap(), -1);
    // A closed store hands out nothing more, so nothing given back is reused.
    drop((seq, down));
    let store = backend.reopen(store).await;
    let seq = store.sequence("s").await.unwrap();
    let down = store.sequence("down").await.unwrap();
    assert_eq!(seq.peek().unwrap(), 3);
    assert_eq!(seq.next().await.unwrap(), 3);
    assert_eq!(down.next().await.unwrap(), -2);
    // An untouched sequence gives nothing back and stays unreserved.
    store.create_sequence("fresh", block(10)).await.unwrap();
    drop((seq, down));
    let store = backend.reopen(store).await;
    assert_eq!(
        store.sequence("fresh").await.unwrap().next().await.unwrap(),
        1
    );
    assert_eq!(store.sequence("s").await.unwrap().next().await.unwrap(), 4);
    store.close().await.unwrap();
}

async fn should_return_contiguous_ranges_spanning_blocks(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    let seq = {
        store.create_sequence("r", block(10)).await.unwrap();
        store.sequence("r").await.unwrap()
    };
    let a = seq.next_n(7).await.unwrap();
    assert_eq!(a.values().collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
    let b = seq.next_n(8).await.unwrap();
    assert_eq!((b.first(), b.last(), b.len()), (8, 15, 8));
    // Larger than a block: one contiguous range all the same.
    let c = seq.next_n(25).await.unwrap();
    assert_eq!(
        c.values().collect::<Vec<_>>(),
        (16..=40).collect::<Vec<_>>()
    );
    assert_eq!(seq.next().await.unwrap(), 41);
    let info = seq.info();
    assert!(info.reserved_end - 41 <= 10, "{info:?}");
    assert!(matches!(
        seq.next_n(0).await,
        Err(Error::InvalidArgument { .. })
    ));
    store.close().await.unwrap();
}

async fn should_advance_forward_only(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("a", block(10)).await.unwrap();
    let seq = store.sequence("a").await.unwrap();
    assert_eq!(seq.next().await.unwrap(), 1);
    // Within the reservation.
    seq.advance_to(5).await.unwrap();
    assert_eq!(seq.next().await.unwrap(), 6);
    // Beyond it: persisted.
    seq.advance_to(100).await.unwrap();
    assert_eq!(seq.next().await.unwrap(), 101);
    // Backwards (and to the current position's past) is refused, nothing moves.
    for v in [50, 100] {
        let err = seq.advance_to(v).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }
    assert!(matches!(
        seq.advance_to(0).await,
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(seq.next().await.unwrap(), 102);
    drop(seq);
    let store = backend.reopen(store).await;
    let seq = store.sequence("a").await.unwrap();
    let v = seq.next().await.unwrap();
    assert!(v > 102 && v <= 102 + 10 + 1, "{v}");
    // An advance that is durable survives a reopen exactly.
    seq.advance_to(1_000).await.unwrap();
    drop(seq);
    let store = backend.reopen(store).await;
    let seq = store.sequence("a").await.unwrap();
    assert_eq!(seq.next().await.unwrap(), 1_001);
    store.close().await.unwrap();
}

async fn should_wrap_with_cycle(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    let options = SequenceOptions {
        max: Some(3),
        cycle: true,
        block_size: 2,
        ..Default::default()
    };
    store.create_sequence("c", options).await.unwrap();
    let seq = store.sequence("c").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..7 {
        got.push(seq.next().await.unwrap());
    }
    assert_eq!(got, [1, 2, 3, 1, 2, 3, 1]);
    assert_eq!(
        seq.next_n(4).await.unwrap().values().collect::<Vec<_>>(),
        [2, 3, 1, 2]
    );
    store.close().await.unwrap();
}

async fn should_exhaust_without_cycle_and_consume_nothing(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    let options = SequenceOptions {
        max: Some(5),
        block_size: 2,
        ..Default::default()
    };
    store.create_sequence("e", options).await.unwrap();
    let seq = store.sequence("e").await.unwrap();
    assert_eq!(seq.next_n(4).await.unwrap().last(), 4);
    // Two do not fit: refused, and the last value is still there.
    assert!(matches!(seq.next_n(2).await, Err(Error::Exhausted { .. })));
    assert_eq!(seq.next().await.unwrap(), 5);
    for _ in 0..3 {
        assert!(matches!(seq.next().await, Err(Error::Exhausted { .. })));
    }
    assert!(matches!(seq.peek(), Err(Error::Exhausted { .. })));
    store.close().await.unwrap();
}

async fn should_count_down_with_negative_increment(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    let options = SequenceOptions {
        increment: -2,
        block_size: 3,
        ..Default::default()
    };
    let info = store.create_sequence("down", options).await.unwrap();
    assert_eq!(
        (info.def.start, info.def.max, info.def.min),
        (-1, -1, i64::MIN)
    );
    let seq = store.sequence("down").await.unwrap();
    let got: Vec<i64> = seq.next_n(5).await.unwrap().values().collect();
    assert_eq!(got, [-1, -3, -5, -7, -9]);
    seq.advance_to(-20).await.unwrap();
    assert_eq!(seq.next().await.unwrap(), -21);
    store.close().await.unwrap();
}

async fn should_not_leave_gaps_in_gap_free_sequence_across_reopen(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    let info = store.create_sequence("inv", block(1)).await.unwrap();
    assert!(info.is_gap_free());
    let mut expected = 1;
    let mut store = store;
    for round in 0..4 {
        let seq = store.sequence("inv").await.unwrap();
        assert!(seq.is_gap_free());
        assert_eq!(seq.peek().unwrap(), expected);
        for _ in 0..3 {
            assert_eq!(seq.next().await.unwrap(), expected);
            expected += 1;
        }
        let range = seq.next_n(2).await.unwrap();
        assert_eq!((range.first(), range.last()), (expected, expected + 1));
        expected += 2;
        drop(seq);
        store = if round % 2 == 0 {
            backend.reopen(store).await
        } else {
            backend.crash(store).await
        };
    }
    // Concurrent gap-free allocations are dense too.
    let seq = store.sequence("inv").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..20 {
                got.push(seq.next().await.unwrap());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (expected..expected + 160).collect::<Vec<_>>());
    store.close().await.unwrap();
}

async fn should_write_caller_records_with_gap_free_number(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("invoice", block(1)).await.unwrap();
    let seq = store.sequence("invoice").await.unwrap();
    for customer in ["acme", "globex", "initech"] {
        let number = seq
            .next_with(move |n| {
                vec![(
                    format!("invoice/{n:08}").into_bytes(),
                    Bytes::from(format!("{customer}:{n}")),
                )]
            })
            .await
            .unwrap();
        assert!(number >= 1);
    }
    // A record builder that panics writes nothing and consumes nothing.
    let err = seq.next_with(|_| panic!("boom")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert_eq!(seq.peek().unwrap(), 4);
    drop(seq);
    let store = backend.crash(store).await;
    let records = store.scan_records(b"invoice/").await.unwrap();
    let keys: Vec<String> = records
        .iter()
        .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
        .collect();
    assert_eq!(
        keys,
        ["invoice/00000001", "invoice/00000002", "invoice/00000003"]
    );
    assert_eq!(
        store
            .get_record(b"invoice/00000002")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"globex:2"[..])
    );
    assert_eq!(store.get_record(b"invoice/9").await.unwrap(), None);
    assert!(store.scan_records(b"other/").await.unwrap().is_empty());
    // Block sequences cannot promise that: refused.
    store.create_sequence("blocky", block(16)).await.unwrap();
    let blocky = store.sequence("blocky").await.unwrap();
    assert!(matches!(
        blocky.next_with(|_| Vec::new()).await,
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(blocky.peek().unwrap(), 1);
    let seq = store.sequence("invoice").await.unwrap();
    assert_eq!(seq.next().await.unwrap(), 4);
    store.close().await.unwrap();
}

async fn should_drop_sequence_without_touching_others(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("a", block(10)).await.unwrap();
    store.create_sequence("b", block(10)).await.unwrap();
    let a = store.sequence("a").await.unwrap();
    let b = store.sequence("b").await.unwrap();
    for _ in 0..25 {
        a.next().await.unwrap();
    }
    assert_eq!(b.next().await.unwrap(), 1);
    store.drop_sequence("a").await.unwrap();
    assert!(matches!(a.next().await, Err(Error::NotFound { .. })));
    assert!(matches!(a.peek(), Err(Error::NotFound { .. })));
    assert!(matches!(
        store.sequence("a").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.drop_sequence("a").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(b.next().await.unwrap(), 2);
    // Re-created: starts afresh; the old handle stays dead.
    store.create_sequence("a", block(10)).await.unwrap();
    let a2 = store.sequence("a").await.unwrap();
    assert_eq!(a2.next().await.unwrap(), 1);
    assert!(matches!(a.next().await, Err(Error::NotFound { .. })));
    drop((a, a2, b));
    let store = backend.reopen(store).await;
    let names: Vec<String> = store
        .list_sequences()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    // `b` handed out 1 and 2; the clean close gave the rest of its block back.
    assert_eq!(store.sequence("b").await.unwrap().next().await.unwrap(), 3);
    store.close().await.unwrap();
}

async fn should_reject_bad_input_and_change_nothing(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("ok", block(100)).await.unwrap();
    let seq = store.sequence("ok").await.unwrap();
    for want in 1..=3 {
        assert_eq!(seq.next().await.unwrap(), want);
    }
    let before = dump(&store);
    let commit = store.commit_seqnum();

    for name in ["", "nul\0byte", "tab\tname", "bell\x07", &"x".repeat(256)] {
        let err = store.create_sequence(name, block(4)).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{name:?}: {err}"
        );
        assert!(matches!(
            store.sequence(name).await,
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            store.drop_sequence(name).await,
            Err(Error::InvalidArgument { .. })
        ));
    }
    for options in [
        SequenceOptions {
            increment: 0,
            ..Default::default()
        },
        SequenceOptions {
            block_size: 0,
            ..Default::default()
        },
        SequenceOptions {
            min: Some(10),
            max: Some(5),
            ..Default::default()
        },
        SequenceOptions {
            start: Some(0),
            ..Default::default()
        },
    ] {
        let err = store
            .create_sequence("new", options.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{options:?}: {err}"
        );
    }
    let err = store.create_sequence("ok", block(4)).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(matches!(
        store.sequence("missing").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.drop_sequence("missing").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        seq.next_n(0).await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        seq.advance_to(0).await,
        Err(Error::InvalidArgument { .. })
    ));
    let err = seq.advance_to(1).await.unwrap_err();
    assert!(err.to_string().contains("backwards"), "{err}");

    assert_eq!(dump(&store), before, "a rejected call changed storage");
    assert_eq!(
        store.commit_seqnum(),
        commit,
        "a rejected call consumed a commit number"
    );
    assert_eq!(seq.next().await.unwrap(), 4);
    assert_eq!(store.list_sequences().await.unwrap().len(), 1);
    store.close().await.unwrap();
}

async fn should_share_one_reservation_between_handles(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("shared", block(8)).await.unwrap();
    let h1 = store.sequence("shared").await.unwrap();
    let h2 = store.sequence("shared").await.unwrap();
    let mut seen = HashSet::new();
    for _ in 0..50 {
        assert!(seen.insert(h1.next().await.unwrap()));
        assert!(seen.insert(h2.next().await.unwrap()));
    }
    assert_eq!(seen.len(), 100);
    store.close().await.unwrap();
}

async fn should_list_sequences_in_name_order(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    for name in ["zeta", "alpha", "mid dle", "ünï"] {
        store.create_sequence(name, block(5)).await.unwrap();
    }
    let listed = store.list_sequences().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["alpha", "mid dle", "zeta", "ünï"]);
    assert!(
        listed
            .iter()
            .all(|i| i.reserved_end == 0 && i.def.block_size == 5)
    );
    let seq = store.sequence("zeta").await.unwrap();
    seq.next().await.unwrap();
    let zeta = store
        .list_sequences()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == "zeta");
    assert_eq!(zeta.map(|i| i.reserved_end), Some(5));
    store.close().await.unwrap();
}

async fn should_peek_without_consuming(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    let options = SequenceOptions {
        start: Some(100),
        increment: 7,
        block_size: 3,
        ..Default::default()
    };
    store.create_sequence("p", options).await.unwrap();
    let seq = store.sequence("p").await.unwrap();
    for want in [100, 107, 114, 121, 128] {
        assert_eq!(seq.peek().unwrap(), want);
        assert_eq!(seq.peek().unwrap(), want);
        assert_eq!(seq.next().await.unwrap(), want);
    }
    store.close().await.unwrap();
}

async fn should_fail_handles_after_close(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store.create_sequence("c", block(100)).await.unwrap();
    let seq = store.sequence("c").await.unwrap();
    seq.next().await.unwrap();
    store.close().await.unwrap();
    assert!(matches!(seq.next().await, Err(Error::Closed { .. })));
    assert!(matches!(
        store.sequence("c").await,
        Err(Error::Closed { .. })
    ));
    assert!(matches!(
        store.create_sequence("d", block(1)).await,
        Err(Error::Closed { .. })
    ));
}

/// Concurrent callers that find the reservation empty share one block write
/// instead of each writing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn should_share_one_block_write_between_waiters() {
    let counting = Arc::new(CountingStorage::new(seq_storage::MemoryStorage::new()));
    let store = support::open_arc(counting.clone());
    store.create_sequence("w", block(1000)).await.unwrap();
    let seq = store.sequence("w").await.unwrap();
    let before = counting.syncs();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..1000 {
                seq.next().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let block_writes = counting.syncs() - before;
    // 16,000 numbers, topped up at least a quarter block (250) at a time:
    // ≤ 64 writes plus the first.
    assert!(block_writes <= 66, "{block_writes} block writes");
    store.close().await.unwrap();
}

/// `Store` is usable from many runtimes' worth of handles; sanity check that
/// the fast path does not need the writer at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_hand_out_from_reservation_without_writer_round_trip() {
    let counting = Arc::new(CountingStorage::new(seq_storage::MemoryStorage::new()));
    let store = support::open_arc(counting.clone());
    store.create_sequence("f", block(4096)).await.unwrap();
    let seq = store.sequence("f").await.unwrap();
    seq.next().await.unwrap();
    let writes = counting.writes();
    let commits = store.commit_seqnum();
    for _ in 0..1000 {
        seq.next().await.unwrap();
    }
    // Well above the low watermark: nothing written, no commit taken.
    assert_eq!(counting.writes(), writes);
    assert_eq!(store.commit_seqnum(), commits);
    let _: &Store = &store;
    store.close().await.unwrap();
}
