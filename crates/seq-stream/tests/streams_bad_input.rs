//! SPEC invariant 6 for streams: every bad input gets its typed error and
//! changes nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod streams_common;

use bytes::Bytes;
use seq_storage::{Durability, KeyRange, ScanOptions, WriteBatch};
use seq_stream::{
    Error, Fence, ProduceOptions, Record, SegmentQuery, SpaceQuery, Trim, WriteOptions,
};
use streams_common::{Harness, Kind, dump, read_segment};

fn one(payload: &str) -> Vec<Record> {
    vec![Record::new(payload.to_string())]
}

async fn should_reject_bad_names_sizes_and_batches_and_change_nothing(mut h: Harness) {
    h.options.max_payload = 1024;
    h.options.max_batch_records = 3;
    let store = h.open();
    store
        .produce("s", "g", one("ok"), ProduceOptions::default())
        .await
        .unwrap();
    let before = dump(&store);
    let opts = ProduceOptions::default;

    for (space, segment) in [
        ("s\0x", "g"),
        ("s", "g\x01"),
        ("", "g"),
        ("s", ""),
        ("s\x7f", "g"),
    ] {
        let got = store.produce(space, segment, one("x"), opts()).await;
        assert!(
            matches!(got, Err(Error::InvalidArgument { .. })),
            "{space:?}/{segment:?}: {got:?}"
        );
        assert!(matches!(
            store.status(space, segment).await,
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            store.trim(space, segment, Trim::KeepLast(0)).await,
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            store.consume_segment(space, segment, SegmentQuery::default()),
            Err(Error::InvalidArgument { .. })
        ));
    }
    assert!(matches!(
        store.consume_space("a\0", SpaceQuery::default()),
        Err(Error::InvalidArgument { .. })
    ));
    let bad_key = vec![Record::new("x").with_idempotency_key("k\n")];
    assert!(matches!(
        store.produce("s", "g", bad_key, opts()).await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.produce("s", "g", Vec::new(), opts()).await,
        Err(Error::InvalidArgument { .. })
    ));
    let four = (0..4).map(|_| Record::new("x")).collect();
    assert!(matches!(
        store.produce("s", "g", four, opts()).await,
        Err(Error::InvalidArgument { .. })
    ));

    let big = vec![Record::new("a"), Record::new(Bytes::from(vec![0u8; 1025]))];
    match store.produce("s", "g", big, opts()).await {
        Err(Error::TooLarge {
            len: 1025,
            limit: 1024,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let with_meta = vec![
        Record::new(Bytes::from(vec![0u8; 1000])).with_metadata("k".repeat(20), "v".repeat(10)),
    ];
    assert!(matches!(
        store.produce("s", "g", with_meta, opts()).await,
        Err(Error::TooLarge { .. })
    ));

    let wrong = vec![Record::new("a"), Record::new("b").with_sequence(2)];
    assert!(matches!(
        store.produce("s", "g", wrong, opts()).await,
        Err(Error::SequenceMismatch {
            expected: 3,
            actual: 2
        })
    ));
    let wrong = vec![Record::new("a").with_sequence(1)];
    assert!(matches!(
        store.produce("s", "g", wrong, opts()).await,
        Err(Error::SequenceMismatch {
            expected: 2,
            actual: 1
        })
    ));

    let current = store.commit_seqnum();
    let stale_seqnum = opts().with_write(WriteOptions::default().with_seqnum(current));
    assert!(matches!(
        store.produce("s", "g", one("x"), stale_seqnum).await,
        Err(Error::InvalidSeqnum { .. })
    ));

    // A fenced produce the lease layer refuses writes nothing.
    let fenced = opts().with_fence(Fence {
        key: "no-such-lease".into(),
        token: 1,
    });
    assert!(store.produce("s", "g", one("x"), fenced).await.is_err());

    assert_eq!(dump(&store), before);
    assert_eq!(
        store
            .produce("s", "g", one("next"), opts())
            .await
            .unwrap()
            .last_sequence,
        2
    );
    store.close().await.unwrap();
}

async fn should_report_corrupt_records_as_corrupt(mut h: Harness) {
    let store = h.open();
    store
        .produce(
            "s",
            "g",
            vec![Record::new("a"), Record::new("b")],
            ProduceOptions::default(),
        )
        .await
        .unwrap();
    store
        .produce("s", "h", vec![Record::new("c")], ProduceOptions::default())
        .await
        .unwrap();

    // Flip a byte of entry 2's value.
    let entries: Vec<_> = store
        .storage()
        .scan(KeyRange::prefix(b"DAT"), ScanOptions::forward())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (key, value) = entries[1].clone();
    let mut bad = value.to_vec();
    bad[3] ^= 0x40;
    let mut batch = WriteBatch::new();
    batch.put(key, bad);
    store.storage().write(batch, Durability::Sync).unwrap();

    let mut stream = store
        .consume_segment("s", "g", SegmentQuery::default())
        .unwrap();
    // Entries are checked as they are yielded: entry 1 comes, entry 2 is
    // an error, again on every later call.
    assert_eq!(stream.next().await.unwrap().unwrap().payload, "a");
    assert!(matches!(stream.next().await, Err(Error::Corrupt { .. })));
    assert!(matches!(stream.next().await, Err(Error::Corrupt { .. })));
    // A stream holds the store (and its storage) open: drop it before the
    // reopen below.
    drop(stream);
    assert!(matches!(
        store.peek("s", "g").await,
        Err(Error::Corrupt { .. })
    ));
    let mut stream = store.consume_space("s", SpaceQuery::default()).unwrap();
    assert!(matches!(stream.next().await, Err(Error::Corrupt { .. })));
    drop(stream);
    // Segment "h" is unaffected.
    assert_eq!(read_segment(&store, "s", "h").await.len(), 1);

    // A corrupt status: produce and trim refuse and change nothing.
    let inv: Vec<_> = store
        .storage()
        .scan(KeyRange::prefix(b"INV"), ScanOptions::forward())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut batch = WriteBatch::new();
    batch.put(inv[1].0.clone(), Bytes::from_static(b"\x01garbage"));
    store.storage().write(batch, Durability::Sync).unwrap();
    // The running writer keeps the statuses it read and wrote in memory
    // (its read cache); a corrupt record is found when a store reads it
    // from storage, as after a reopen.
    let store = h.reopen(store).await;
    let before = dump(&store);
    assert!(matches!(
        store
            .produce("s", "h", vec![Record::new("x")], ProduceOptions::default())
            .await,
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        store.trim("s", "h", Trim::KeepLast(0)).await,
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        store.status("s", "h").await,
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        store.list_segments("s").await,
        Err(Error::Corrupt { .. })
    ));
    assert_eq!(dump(&store), before);
    store.close().await.unwrap();
}

backend_tests!(
    should_reject_bad_names_sizes_and_batches_and_change_nothing,
    should_report_corrupt_records_as_corrupt,
);

#[test]
fn backends_are_listed() {
    assert_ne!(Kind::Memory, Kind::Crash);
}
