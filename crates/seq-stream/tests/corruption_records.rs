//! Corruption on disk: flip bits in (and truncate) the stored value of every
//! kind of record, through the `Storage` trait, then open the store and read
//! it through the public API. Every read of a damaged record reports
//! `Error::Corrupt` naming its key, a write that needs it is refused the same
//! way and changes nothing, and nothing panics.

// Helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use seq_core::keys::keyspace;
use seq_storage::{Durability, KeyRange, MemoryStorage, ScanOptions, Storage, WriteBatch};
use seq_stream::{
    CursorPosition, Error, LeaseOptions, ProduceOptions, Record, SegmentQuery, SequenceOptions,
    Store,
};

/// A store with one record of every kind, closed.
async fn populated() -> MemoryStorage {
    let storage = MemoryStorage::new();
    let store = Store::open(storage.clone()).unwrap();
    let block = SequenceOptions {
        block_size: 8,
        ..SequenceOptions::default()
    };
    store.create_sequence("b", block).await.unwrap();
    store.sequence("b").await.unwrap().next().await.unwrap();
    let gap_free = SequenceOptions {
        block_size: 1,
        ..SequenceOptions::default()
    };
    store.create_sequence("g", gap_free).await.unwrap();
    let seq = store.sequence("g").await.unwrap();
    seq.next_with(|v| vec![(format!("inv/{v}").into_bytes(), Bytes::from("paid"))])
        .await
        .unwrap();
    store.put_sequenced("k", "v", &[1]).await.unwrap();
    let records = vec![Record::new("a").with_metadata("m", "1"), Record::new("b")];
    store
        .produce("s", "g", records, ProduceOptions::default())
        .await
        .unwrap();
    store
        .commit_cursor("c", CursorPosition::new().with_segment("s", "g", 1))
        .await
        .unwrap();
    let options = LeaseOptions::new(Duration::from_secs(60)).without_renewal();
    store
        .acquire_lease_with("L", options)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    store.close().await.unwrap();
    storage
}

/// The first stored key starting with `prefix`, and its value.
fn first_record(storage: &MemoryStorage, prefix: &[u8]) -> (Bytes, Bytes) {
    storage
        .scan(KeyRange::prefix(prefix), ScanOptions::forward())
        .unwrap()
        .next()
        .unwrap_or_else(|| panic!("no record under {prefix:?}"))
        .unwrap()
}

fn put_raw(storage: &MemoryStorage, key: &Bytes, value: Bytes) {
    let mut batch = WriteBatch::new();
    batch.put(key.clone(), value);
    storage.write(batch, Durability::Sync).unwrap();
}

/// Every damaged form of `value`: each byte with its low or high bit
/// flipped, and each truncation.
fn damaged(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..value.len() {
        for bit in [0x01u8, 0x80] {
            let mut v = value.to_vec();
            v[i] ^= bit;
            out.push(v);
        }
    }
    for len in 0..value.len() {
        out.push(value[..len].to_vec());
    }
    out
}

/// Asserts `result` is `Corrupt` naming `key`.
fn assert_corrupt<T: std::fmt::Debug>(what: &str, key: &[u8], result: seq_stream::Result<T>) {
    match result {
        Err(Error::Corrupt { key: named, reason }) => {
            assert_eq!(
                named,
                seq_storage::show_key(key),
                "{what}: wrong key named ({reason})"
            );
        }
        other => panic!(
            "{what}: expected Corrupt at {}, got {other:?}",
            seq_storage::show_key(key)
        ),
    }
}

/// How a record kind is read back.
type Reader = for<'a> fn(
    &'a Store,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = seq_stream::Result<()>> + Send + 'a>,
>;

/// Corrupts the first record under `prefix` in every way, and checks that
/// each `reader` reports it.
async fn check_kind(kind: &str, prefix: &[u8], readers: &[(&str, Reader)]) {
    let storage = populated().await;
    let (key, original) = first_record(&storage, prefix);
    for bad in damaged(&original) {
        put_raw(&storage, &key, Bytes::from(bad.clone()));
        let store = Store::open(storage.clone()).unwrap();
        for (what, read) in readers {
            let what = format!("{kind}: {what} (value {bad:02x?})");
            assert_corrupt(&what, &key, read(&store).await);
        }
        // Nothing was rewritten over the damaged record.
        assert_eq!(
            storage.get(&key).unwrap().as_deref(),
            Some(&bad[..]),
            "{kind}: rewritten"
        );
        store.close().await.unwrap();
        put_raw(&storage, &key, original.clone());
    }
}

#[tokio::test]
async fn should_report_a_corrupt_block_record_by_key() {
    check_kind(
        "sequence record (definition + block)",
        keyspace::SEQ,
        &[
            ("sequence", |s| {
                Box::pin(async move { s.sequence("b").await.map(drop) })
            }),
            ("list_sequences", |s| {
                Box::pin(async move { s.list_sequences().await.map(drop) })
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn should_report_a_corrupt_entry_by_key() {
    check_kind(
        "stream entry",
        keyspace::DAT,
        &[
            ("consume_segment", |s| {
                Box::pin(async move {
                    let mut stream = s.consume_segment("s", "g", SegmentQuery::default())?;
                    while stream.next().await?.is_some() {}
                    Ok(())
                })
            }),
            ("consume_space", |s| {
                Box::pin(async move {
                    let mut stream = s.consume_space("s", seq_stream::SpaceQuery::default())?;
                    while stream.next().await?.is_some() {}
                    Ok(())
                })
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn should_report_a_corrupt_space_index_record_by_key() {
    check_kind(
        "space index record",
        keyspace::IDX,
        &[
            ("consume_space", |s| {
                Box::pin(async move {
                    let mut stream = s.consume_space("s", seq_stream::SpaceQuery::default())?;
                    while stream.next().await?.is_some() {}
                    Ok(())
                })
            }),
            ("count_after", |s| {
                Box::pin(async move { s.count_after("s", None).await.map(drop) })
            }),
            ("head_offset", |s| {
                Box::pin(async move { s.head_offset("s").await.map(drop) })
            }),
            // A trim collects index records: it is refused, and its entry
            // deletes are not written either.
            ("trim", |s| {
                Box::pin(async move {
                    s.trim("s", "g", seq_stream::Trim::KeepLast(0))
                        .await
                        .map(drop)
                })
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn should_report_a_corrupt_segment_status_by_key() {
    check_kind(
        "segment status",
        keyspace::INV,
        &[
            ("status", |s| {
                Box::pin(async move { s.status("s", "g").await.map(drop) })
            }),
            ("list_segments", |s| {
                Box::pin(async move { s.list_segments("s").await.map(drop) })
            }),
            ("produce", |s| {
                Box::pin(async move {
                    s.produce("s", "g", vec![Record::new("c")], ProduceOptions::default())
                        .await
                        .map(drop)
                })
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn should_report_a_corrupt_sequence_key_counter_and_record_by_key() {
    check_kind(
        "sequence-key counter",
        keyspace::SKC,
        &[("put_sequenced", |s| {
            Box::pin(async move { s.put_sequenced("k", "w", &[1]).await.map(drop) })
        })],
    )
    .await;
    check_kind(
        "sequence-key record",
        keyspace::SKY,
        &[
            ("get_sequenced", |s| {
                Box::pin(async move { s.get_sequenced("k-00000000000000000001").await.map(drop) })
            }),
            ("range_sequenced", |s| {
                Box::pin(async move { s.range_sequenced("k", 10).await.map(drop) })
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn should_report_a_corrupt_cursor_and_lease_by_key() {
    check_kind(
        "cursor",
        keyspace::CUR,
        &[
            ("load_cursor", |s| {
                Box::pin(async move { s.load_cursor("c").await.map(drop) })
            }),
            ("commit_cursor", |s| {
                Box::pin(async move {
                    let position = CursorPosition::new().with_segment("s", "g", 2);
                    s.commit_cursor("c", position).await.map(drop)
                })
            }),
        ],
    )
    .await;
    check_kind(
        "lease",
        keyspace::LSE,
        &[
            ("lease_info", |s| {
                Box::pin(async move { s.lease_info("L").await.map(drop) })
            }),
            ("acquire_lease", |s| {
                Box::pin(async move {
                    s.acquire_lease("L", Duration::from_secs(60))
                        .await
                        .map(drop)
                })
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn should_report_a_corrupt_gap_free_caller_record_by_key() {
    check_kind(
        "gap-free caller record",
        b"USR",
        &[
            ("get_record", |s| {
                Box::pin(async move { s.get_record(b"inv/1").await.map(drop) })
            }),
            ("scan_records", |s| {
                Box::pin(async move { s.scan_records(b"inv/").await.map(drop) })
            }),
        ],
    )
    .await;
}

#[tokio::test]
async fn should_refuse_to_open_a_store_with_corrupt_metadata() {
    let storage = populated().await;
    let mut metas = Vec::new();
    for item in storage
        .scan(KeyRange::prefix(keyspace::MET), ScanOptions::forward())
        .unwrap()
    {
        metas.push(item.unwrap());
    }
    assert!(metas.len() >= 2, "expected the identity and commit records");
    for (key, original) in metas {
        for bad in damaged(&original) {
            put_raw(&storage, &key, Bytes::from(bad.clone()));
            assert_corrupt("Store::open", &key, Store::open(storage.clone()));
            assert_eq!(storage.get(&key).unwrap().as_deref(), Some(&bad[..]));
            put_raw(&storage, &key, original.clone());
        }
    }
    // Intact again: it opens.
    Store::open(storage).unwrap().close().await.unwrap();
}

/// A store whose identity record names a format this build cannot read
/// (format 1 had one index key per entry; format 4 is from the future) is
/// refused at open, naming the format, and left as it was.
#[tokio::test]
async fn should_refuse_to_open_a_store_of_another_format() {
    let storage = populated().await;
    let key = store_record_key();
    let current = storage.get(&key).unwrap().unwrap();
    let body = seq_core::frame::decode_expect(&current, 1).unwrap();
    assert_eq!(
        &body[16..],
        3u32.to_be_bytes(),
        "this build writes format 3"
    );
    for format in [1u32, 4] {
        let old = identity_with_format(body, format);
        put_raw(&storage, &key, old.clone());
        match Store::open(storage.clone()) {
            Err(Error::Corrupt { reason, .. }) => assert!(
                reason.contains(&format!("store format {format} is not supported")),
                "{reason}"
            ),
            other => panic!("format {format}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(storage.get(&key).unwrap(), Some(old));
    }
    put_raw(&storage, &key, current);
    Store::open(storage).unwrap().close().await.unwrap();
}

/// A format-2 store (every status record exact, rewritten on every
/// produce) opens, is marked format 3 by the open (so that a build that
/// reads only format 2 refuses it from then on), and its exact status
/// records stay right as it goes on: the first append turns one into a
/// bound, which the newest entry completes.
#[tokio::test]
async fn should_open_a_format_2_store_mark_it_format_3_and_keep_its_statuses_right() {
    let storage = populated().await;
    let key = store_record_key();
    let current = storage.get(&key).unwrap().unwrap();
    let body = seq_core::frame::decode_expect(&current, 1)
        .unwrap()
        .to_vec();
    put_raw(&storage, &key, identity_with_format(&body, 2));
    // Format 2 wrote status records as version 1 (exact).
    let inv = Bytes::from(
        seq_core::keys::KeyBuilder::new(keyspace::INV)
            .str("s")
            .str("g")
            .build(),
    );
    let stored = storage.get(&inv).unwrap().unwrap();
    let status_body = seq_core::frame::decode(&stored).unwrap().1.to_vec();
    put_raw(
        &storage,
        &inv,
        Bytes::from(seq_core::frame::encode(1, &status_body)),
    );

    let store = Store::open(storage.clone()).unwrap();
    assert_eq!(storage.get(&key).unwrap(), Some(current));
    assert_eq!(store.status("s", "g").await.unwrap().last_sequence, 2);
    store
        .produce("s", "g", vec![Record::new("c")], ProduceOptions::default())
        .await
        .unwrap();
    let rewritten = storage.get(&inv).unwrap().unwrap();
    assert_eq!(
        seq_core::frame::decode(&rewritten).unwrap().0,
        2,
        "now a bound"
    );
    store
        .produce("s", "g", vec![Record::new("d")], ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(store.status("s", "g").await.unwrap().last_sequence, 4);
    store.close().await.unwrap();
    let reopened = Store::open(storage).unwrap();
    let status = reopened.status("s", "g").await.unwrap();
    assert_eq!((status.first_sequence, status.last_sequence), (1, 4));
    reopened.close().await.unwrap();
}

fn store_record_key() -> Bytes {
    Bytes::from(
        seq_core::keys::KeyBuilder::new(keyspace::MET)
            .str("store")
            .build(),
    )
}

/// The identity record `body` (UUID, format) with `format` instead.
fn identity_with_format(body: &[u8], format: u32) -> Bytes {
    let mut record = body[..16].to_vec();
    record.extend_from_slice(&format.to_be_bytes());
    Bytes::from(seq_core::frame::encode(1, &record))
}
