//! The store-wide commit oracle, reached through `put_sequenced_with`.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

#[path = "support_sequences/mod.rs"]
mod support;

use seq_stream::{Error, WriteOptions};
use support::{Backend, Kind, dump};

per_backend!(
    should_start_commit_numbers_at_one,
    should_accept_supplied_seqnum_above_max_and_continue_above_it,
    should_reject_seqnum_not_above_max_and_write_nothing,
    should_recover_max_on_reopen,
    should_ack_buffered_writes_before_durable_and_flush_them,
);

async fn should_start_commit_numbers_at_one(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    assert_eq!(store.commit_seqnum(), 0);
    assert_eq!(store.durable_seqnum(), 0);
    let (_, first) = store.put_sequenced("k", "v", &[1]).await.unwrap();
    assert_eq!(first, 1);
    let (_, second) = store.put_sequenced("k", "v", &[1]).await.unwrap();
    assert_eq!(second, 2);
    assert_eq!(store.durable_seqnum(), 2);
    store.close().await.unwrap();
}

async fn should_accept_supplied_seqnum_above_max_and_continue_above_it(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store.put_sequenced("k", "v", &[1]).await.unwrap();
    let (_, v) = store
        .put_sequenced_with("k", "v", &[1], WriteOptions::default().with_seqnum(7))
        .await
        .unwrap();
    assert_eq!(v, 7);
    assert_eq!(store.commit_seqnum(), 7);
    let (_, next) = store.put_sequenced("k", "v", &[1]).await.unwrap();
    assert_eq!(next, 8);
    store.close().await.unwrap();
}

async fn should_reject_seqnum_not_above_max_and_write_nothing(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store
        .put_sequenced_with("k", "v", &[1], WriteOptions::default().with_seqnum(7))
        .await
        .unwrap();
    let before = dump(&store);
    for provided in [5, 7] {
        let err = store
            .put_sequenced_with(
                "k",
                "v",
                &[1],
                WriteOptions::default().with_seqnum(provided),
            )
            .await
            .unwrap_err();
        match &err {
            Error::InvalidSeqnum {
                provided: p,
                current: 7,
            } if *p == provided => {}
            other => panic!("unexpected {other:?}"),
        }
        if provided == 5 {
            assert_eq!(
                err.to_string(),
                "invalid sequence number: must be greater than the current max (provided=5, current=7)"
            );
        }
    }
    assert_eq!(dump(&store), before);
    assert_eq!(store.commit_seqnum(), 7);
    assert_eq!(store.range_sequenced("k", 10).await.unwrap().len(), 1);
    let (_, next) = store.put_sequenced("k", "v", &[1]).await.unwrap();
    assert_eq!(next, 8);
    store.close().await.unwrap();
}

async fn should_recover_max_on_reopen(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    store
        .put_sequenced_with("k", "v", &[1], WriteOptions::default().with_seqnum(41))
        .await
        .unwrap();
    let store = backend.reopen(store).await;
    assert_eq!(store.commit_seqnum(), 41);
    assert_eq!(store.durable_seqnum(), 41);
    let err = store
        .put_sequenced_with("k", "v", &[1], WriteOptions::default().with_seqnum(41))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidSeqnum {
                provided: 41,
                current: 41
            }
        ),
        "{err}"
    );
    let (_, next) = store.put_sequenced("k", "v", &[1]).await.unwrap();
    assert_eq!(next, 42);
    let store = backend.crash(store).await;
    let (_, next) = store.put_sequenced("k", "v", &[1]).await.unwrap();
    assert_eq!(next, 43);
    store.close().await.unwrap();
}

async fn should_ack_buffered_writes_before_durable_and_flush_them(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    let (_, durable) = store.put_sequenced("k", "v", &[1]).await.unwrap();
    let (key, buffered) = store
        .put_sequenced_with("k", "b", &[1], WriteOptions::buffered())
        .await
        .unwrap();
    assert_eq!(buffered, durable + 1);
    assert_eq!(store.commit_seqnum(), buffered);
    assert_eq!(
        store.durable_seqnum(),
        durable,
        "acknowledged before durable"
    );
    // Visible at once.
    assert!(store.get_sequenced(&key).await.unwrap().is_some());
    let mut watch = store.watch_durable();
    let flushed = store.flush().await.unwrap();
    assert!(flushed > buffered);
    assert_eq!(store.durable_seqnum(), flushed);
    assert_eq!(*watch.borrow_and_update(), flushed);
    // Flushed, so it survives a crash.
    let store = backend.crash(store).await;
    assert!(store.get_sequenced(&key).await.unwrap().is_some());
    // Unflushed buffered writes may be lost by a crash; acknowledged durable
    // ones never are.
    if kind == Kind::Crash {
        let (lost, _) = store
            .put_sequenced_with("k", "x", &[1], WriteOptions::buffered())
            .await
            .unwrap();
        let store = backend.crash(store).await;
        assert!(store.get_sequenced(&lost).await.unwrap().is_none());
        assert!(store.get_sequenced(&key).await.unwrap().is_some());
        store.close().await.unwrap();
    } else {
        store.close().await.unwrap();
    }
}
