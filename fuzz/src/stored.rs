//! The `stream_codecs` target: the decoders of the engine's stored records
//! (stream entries and segment statuses, sequence records, sequence-key
//! counters and records, store metadata), reached black-box through the
//! public API.
//!
//! The engine's codecs are private, so the target builds a real store on
//! [`MemoryStorage`], replaces the value of one of its records with the
//! fuzz input (framed with a valid checksum when the first byte is odd, to
//! get past the CRC), and then calls the API that reads that record. A read
//! must succeed or fail with [`Error::Corrupt`]; a write may fail with any
//! typed error; nothing may panic.

use bytes::Bytes;
use seq_core::frame;
use seq_core::keys::keyspace;
use seq_storage::{Durability, KeyRange, MemoryStorage, ScanOptions, Storage, WriteBatch};
use seq_stream::{Error, ProduceOptions, Record, SegmentQuery, SequenceOptions, Store};

/// Keyspaces whose records the target corrupts.
const TAGS: &[&[u8; 3]] = &[
    keyspace::DAT,
    keyspace::INV,
    keyspace::SEQ,
    keyspace::SKC,
    keyspace::SKY,
    keyspace::MET,
    keyspace::IDX,
];

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let tag = TAGS[usize::from(pick >> 1) % TAGS.len()];
    let value = if pick & 1 == 1 {
        let (version, body) = rest
            .split_first()
            .map_or((1, &[][..]), |(v, b)| (*v % 3, b));
        frame::encode(version, body)
    } else {
        rest.to_vec()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(drive(tag, Bytes::from(value)));
}

/// A read must succeed or report corruption.
fn read_ok<T>(what: &str, result: seq_stream::Result<T>) {
    if let Err(e) = result {
        assert!(
            matches!(e, Error::Corrupt { .. }),
            "{what}: expected Corrupt, got {e:?}"
        );
    }
}

/// Reads up to four entries of a consume: a failure to start or to read is
/// held to [`read_ok`]'s rule.
async fn read_some(what: &str, stream: seq_stream::Result<seq_stream::EntryStream>) {
    let mut stream = match stream {
        Ok(stream) => stream,
        Err(e) => return read_ok(what, Err::<(), _>(e)),
    };
    for _ in 0..4 {
        match stream.next().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return read_ok(what, Err::<(), _>(e)),
        }
    }
}

async fn drive(tag: &[u8; 3], value: Bytes) {
    let storage = MemoryStorage::new();
    let store = Store::open(storage.clone()).expect("open");
    let options = SequenceOptions {
        block_size: 8,
        ..SequenceOptions::default()
    };
    store
        .create_sequence("n", options)
        .await
        .expect("create_sequence");
    store
        .sequence("n")
        .await
        .expect("sequence")
        .next()
        .await
        .expect("next");
    store
        .put_sequenced("k", "v", &[1])
        .await
        .expect("put_sequenced");
    let records = vec![
        Record::new("one").with_metadata("m", "1"),
        Record::new("two"),
    ];
    store
        .produce("s", "g", records, ProduceOptions::default())
        .await
        .expect("produce");
    store.close().await.expect("close");
    drop(store);

    // Overwrite the first record of the chosen keyspace.
    let first = storage
        .scan(KeyRange::prefix(&tag[..]), ScanOptions::forward())
        .expect("scan")
        .next()
        .map(|item| item.expect("scan item").0);
    let Some(key) = first else { return };
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    storage.write(batch, Durability::Sync).expect("overwrite");

    let store = match Store::open(storage.clone()) {
        Ok(store) => store,
        Err(e) => {
            assert!(
                matches!(e, Error::Corrupt { .. }),
                "open: expected Corrupt, got {e:?}"
            );
            return;
        }
    };
    read_ok("status", store.status("s", "g").await);
    read_ok("peek", store.peek("s", "g").await);
    read_ok("list_segments", store.list_segments("s").await);
    read_some(
        "consume_segment",
        store.consume_segment("s", "g", SegmentQuery::default()),
    )
    .await;
    read_some(
        "consume_space",
        store.consume_space("s", seq_stream::SpaceQuery::default()),
    )
    .await;
    read_ok(
        "get_sequenced",
        store.get_sequenced("k-00000000000000000001").await,
    );
    read_ok("list_sequences", store.list_sequences().await);
    match store.sequence("n").await {
        Ok(seq) => {
            let _ = seq.peek();
            let _ = seq.next().await;
        }
        Err(e) => read_ok("sequence", Err::<(), _>(e)),
    }
    // Writes over the damaged record: any typed error, never a panic.
    let _ = store.put_sequenced("k", "w", &[1]).await;
    let _ = store
        .produce(
            "s",
            "g",
            vec![Record::new("three")],
            ProduceOptions::default(),
        )
        .await;
    let _ = store.close().await;
}
