//! Oxia-style sequence keys on every backend.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

#[path = "support_sequences/mod.rs"]
mod support;

use std::time::Duration;

use seq_stream::{Error, WriteOptions};
use support::{Backend, Kind, dump};

per_backend!(
    should_generate_zero_padded_keys_per_level,
    should_order_keys_numerically,
    should_never_reuse_suffix_of_deleted_highest_key,
    should_reject_bad_deltas_and_change_nothing,
    should_stream_current_highest_then_new_keys,
    should_keep_prefixes_apart,
);

async fn should_generate_zero_padded_keys_per_level(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    let (k1, v1) = store.put_sequenced("a/b", "x", &[1]).await.unwrap();
    assert_eq!(k1, "a/b-00000000000000000001");
    let (k2, v2) = store.put_sequenced("a/b", "y", &[3, 2]).await.unwrap();
    assert_eq!(k2, "a/b-00000000000000000004-00000000000000000002");
    assert!(v2 > v1);
    let (k3, _) = store.put_sequenced("a/b", "z", &[1, 0, 5]).await.unwrap();
    assert_eq!(
        k3,
        "a/b-00000000000000000005-00000000000000000002-00000000000000000005"
    );
    let rec = store.get_sequenced(&k2).await.unwrap().unwrap();
    assert_eq!(
        (rec.key.as_str(), &rec.value[..], rec.version),
        (k2.as_str(), &b"y"[..], v2)
    );
    let store = backend.reopen(store).await;
    assert_eq!(store.get_sequenced(&k1).await.unwrap().unwrap().version, v1);
    let (k4, _) = store.put_sequenced("a/b", "w", &[1, 1, 1]).await.unwrap();
    assert!(k4 > k3);
    assert_eq!(store.get_sequenced("a/b-nope").await.unwrap(), None);
    store.close().await.unwrap();
}

async fn should_order_keys_numerically(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    let mut keys = Vec::new();
    for delta in [1, 8, 1, 90, 900, 9_000, u64::MAX / 2] {
        keys.push(store.put_sequenced("n", "v", &[delta]).await.unwrap().0);
    }
    let listed = store.range_sequenced("n", 100).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
        keys
    );
    assert_eq!(store.range_sequenced("n", 3).await.unwrap().len(), 3);
    // Overflow is exhaustion, nothing written.
    let before = dump(&store);
    let err = store
        .put_sequenced("n", "v", &[u64::MAX])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Exhausted { .. }), "{err}");
    assert_eq!(dump(&store), before);
    store.close().await.unwrap();
}

async fn should_never_reuse_suffix_of_deleted_highest_key(kind: Kind) {
    let mut backend = Backend::new(kind);
    let store = backend.open();
    let (k1, _) = store.put_sequenced("d", "1", &[1]).await.unwrap();
    let (k2, _) = store.put_sequenced("d", "2", &[1]).await.unwrap();
    assert!(store.delete_sequenced(&k2).await.unwrap());
    assert!(!store.delete_sequenced(&k2).await.unwrap());
    assert!(store.get_sequenced(&k2).await.unwrap().is_none());
    let (k3, _) = store.put_sequenced("d", "3", &[1]).await.unwrap();
    assert_eq!(k3, "d-00000000000000000003");
    assert!(store.delete_sequenced(&k3).await.unwrap());
    assert!(store.delete_sequenced(&k1).await.unwrap());
    let store = backend.crash(store).await;
    let (k4, _) = store.put_sequenced("d", "4", &[1]).await.unwrap();
    assert_eq!(k4, "d-00000000000000000004");
    assert_eq!(store.range_sequenced("d", 10).await.unwrap().len(), 1);
    store.close().await.unwrap();
}

async fn should_reject_bad_deltas_and_change_nothing(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store.put_sequenced("p", "v", &[1, 1]).await.unwrap();
    let before = dump(&store);
    let commit = store.commit_seqnum();
    let cases: [(&str, &[u64]); 6] = [
        ("p", &[]),
        ("p", &[0]),
        ("p", &[0, 1]),
        ("p", &[1]), // fewer deltas than the two levels the prefix uses
        ("", &[1]),
        ("bad\0prefix", &[1]),
    ];
    for (prefix, deltas) in cases {
        let err = store.put_sequenced(prefix, "v", deltas).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{prefix:?} {deltas:?}: {err}"
        );
    }
    assert!(matches!(
        store.sequence_updates("x\ty").await,
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(dump(&store), before);
    assert_eq!(store.commit_seqnum(), commit);
    // The prefix still works.
    let (key, _) = store.put_sequenced("p", "v", &[1, 0]).await.unwrap();
    assert_eq!(key, "p-00000000000000000002-00000000000000000001");
    store.close().await.unwrap();
}

async fn should_stream_current_highest_then_new_keys(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store.put_sequenced("u", "1", &[1]).await.unwrap();
    let (k2, _) = store.put_sequenced("u", "2", &[1]).await.unwrap();
    let mut updates = store.sequence_updates("u").await.unwrap();
    assert_eq!(next(&mut updates).await.unwrap().unwrap(), k2);
    let (k3, _) = store.put_sequenced("u", "3", &[1]).await.unwrap();
    assert_eq!(next(&mut updates).await.unwrap().unwrap(), k3);
    // A burst may coalesce, but ends on the latest and never goes back.
    let mut last = String::new();
    for i in 0..20 {
        last = store
            .put_sequenced("u", format!("{i}"), &[1])
            .await
            .unwrap()
            .0;
    }
    let mut seen = k3.clone();
    while seen != last {
        let key = next(&mut updates).await.unwrap().unwrap();
        assert!(key > seen, "{key} after {seen}");
        seen = key;
    }
    // An empty prefix yields nothing until its first key.
    let mut empty = store.sequence_updates("fresh").await.unwrap();
    let waiting = tokio::spawn(async move { empty.next().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (first, _) = store.put_sequenced("fresh", "v", &[5]).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.unwrap().unwrap(), first);
    // Closing the store ends the stream.
    store.close().await.unwrap();
    assert!(next(&mut updates).await.is_none());
}

async fn should_keep_prefixes_apart(kind: Kind) {
    let backend = Backend::new(kind);
    let store = backend.open();
    store.put_sequenced("a", "1", &[1]).await.unwrap();
    store.put_sequenced("ab", "2", &[1]).await.unwrap();
    store.put_sequenced("a-x", "3", &[1]).await.unwrap();
    let a = store.range_sequenced("a", 10).await.unwrap();
    assert_eq!(
        a.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["a-00000000000000000001"]
    );
    assert_eq!(store.range_sequenced("ab", 10).await.unwrap().len(), 1);
    store.close().await.unwrap();
}

async fn next(updates: &mut seq_stream::SequenceUpdates) -> Option<seq_stream::Result<String>> {
    tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .unwrap()
}

/// `put_sequenced_with` reaches the commit oracle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_use_caller_seqnum_as_version() {
    let backend = Backend::new(Kind::Memory);
    let store = backend.open();
    let (key, version) = store
        .put_sequenced_with("o", "v", &[1], WriteOptions::default().with_seqnum(1_000))
        .await
        .unwrap();
    assert_eq!(version, 1_000);
    assert_eq!(
        store.get_sequenced(&key).await.unwrap().unwrap().version,
        1_000
    );
    let (_, next) = store.put_sequenced("o", "v", &[1]).await.unwrap();
    assert_eq!(next, 1_001);
    store.close().await.unwrap();
}

/// A caller that stops waiting once its put is queued does not keep the
/// write from committing, nor watchers from hearing of its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_publish_a_committed_key_whose_caller_stopped_waiting() {
    let backend = Backend::new(Kind::Memory);
    let store = backend.open();
    let mut updates = store.sequence_updates("gone").await.unwrap();
    // Poll the put once, which queues it, then drop it (it is almost
    // always still waiting for the writer then).
    let mut put = Box::pin(store.put_sequenced("gone", "v", &[1]));
    let _first = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(put.as_mut(), cx))
    })
    .await;
    drop(put);
    let key = next(&mut updates).await.unwrap().unwrap();
    assert_eq!(key, "gone-00000000000000000001");
    assert!(store.get_sequenced(&key).await.unwrap().is_some());
    store.close().await.unwrap();
}
