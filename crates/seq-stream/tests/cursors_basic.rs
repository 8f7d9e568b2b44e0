//! Cursors: commit, load, list, delete, lag, and "never backwards", on every
//! backend.
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

mod leases_support;

use bytes::Bytes;
use leases_support::{Env, Kind};
use seq_core::SpaceOffset;
use seq_core::keys::{KeyBuilder, keyspace};
use seq_storage::{Durability, WriteBatch};
use seq_stream::{CursorPosition, Error, Store};

fn off(timestamp: u64, segment: &str, sequence: u64) -> SpaceOffset {
    SpaceOffset {
        timestamp,
        segment: segment.into(),
        sequence,
    }
}

/// Writes index records and entry keys as the stream layer lays them out
/// (`docs/design.md`: `IDX` + space + ts → runs `segment_len u16 | segment
/// | first u64 | last u64`, framed; `DAT` + space + segment + seq), one
/// single-entry run per entry, so lag can be checked without producing.
fn write_entries(store: &Store, space: &str, entries: &[(u64, &str, u64)]) {
    let mut batch = WriteBatch::new();
    let mut records: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
    for &(ts, segment, seq) in entries {
        let run = records.entry(ts).or_default();
        run.extend_from_slice(&u16::try_from(segment.len()).unwrap().to_be_bytes());
        run.extend_from_slice(segment.as_bytes());
        run.extend_from_slice(&seq.to_be_bytes());
        run.extend_from_slice(&seq.to_be_bytes());
        let dat = KeyBuilder::new(keyspace::DAT)
            .str(space)
            .str(segment)
            .u64(seq)
            .build();
        batch.put(Bytes::from(dat), Bytes::from_static(b"payload"));
    }
    for (ts, body) in records {
        let idx = KeyBuilder::new(keyspace::IDX).str(space).u64(ts).build();
        batch.put(
            Bytes::from(idx),
            Bytes::from(seq_core::frame::encode(1, &body)),
        );
    }
    store.storage().write(batch, Durability::Sync).unwrap();
}

async fn should_commit_and_load_cursor(kind: Kind) {
    let mut env = Env::new(kind);
    let store = env.open();
    assert_eq!(store.load_cursor("c").await.unwrap(), None);
    let position = CursorPosition::new()
        .with_space("orders", off(10, "eu", 3))
        .with_segment("orders", "us", 7);
    let committed = store.commit_cursor("c", position.clone()).await.unwrap();
    assert_eq!(committed.name, "c");
    assert_eq!(committed.position, position);
    assert!(committed.commit > 0 && committed.updated_at > 0);
    assert_eq!(
        store.load_cursor("c").await.unwrap(),
        Some(committed.clone())
    );

    let store = env.reopen(store).await;
    assert_eq!(store.load_cursor("c").await.unwrap(), Some(committed));
}

async fn should_merge_commits_forward(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    store
        .commit_cursor("c", CursorPosition::new().with_space("a", off(5, "x", 1)))
        .await
        .unwrap();
    let merged = store
        .commit_cursor(
            "c",
            CursorPosition::new()
                .with_space("b", off(1, "y", 1))
                .with_segment("a", "x", 4),
        )
        .await
        .unwrap();
    assert_eq!(merged.position.space("a"), Some(&off(5, "x", 1)));
    assert_eq!(merged.position.space("b"), Some(&off(1, "y", 1)));
    assert_eq!(merged.position.segment("a", "x"), Some(4));
    // Equal positions are accepted (a retried commit).
    let again = store
        .commit_cursor("c", CursorPosition::new().with_space("a", off(5, "x", 1)))
        .await
        .unwrap();
    assert_eq!(again.position, merged.position);
    assert!(again.commit > merged.commit);
}

async fn should_reject_backwards_commit_and_change_nothing(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let position = CursorPosition::new()
        .with_space("a", off(5, "x", 2))
        .with_segment("a", "x", 9);
    let stored = store.commit_cursor("c", position).await.unwrap();

    let back_space = CursorPosition::new()
        .with_space("a", off(5, "x", 1))
        .with_space("b", off(1, "y", 1));
    assert!(matches!(
        store.commit_cursor("c", back_space).await,
        Err(Error::Conflict { .. })
    ));
    let back_segment = CursorPosition::new()
        .with_segment("a", "x", 8)
        .with_segment("a", "z", 1);
    assert!(matches!(
        store.commit_cursor("c", back_segment).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(store.load_cursor("c").await.unwrap(), Some(stored));
}

async fn should_reset_cursor_backwards(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    store
        .commit_cursor(
            "c",
            CursorPosition::new()
                .with_space("a", off(5, "x", 2))
                .with_segment("a", "x", 9),
        )
        .await
        .unwrap();
    let reset = store
        .reset_cursor("c", CursorPosition::new().with_segment("a", "x", 1))
        .await
        .unwrap();
    assert_eq!(
        reset.position,
        CursorPosition::new().with_segment("a", "x", 1)
    );
    store
        .commit_cursor("c", CursorPosition::new().with_segment("a", "x", 2))
        .await
        .unwrap();
}

async fn should_list_and_delete_cursors(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    for name in ["b", "a", "c\u{e9}"] {
        store
            .commit_cursor(name, CursorPosition::new())
            .await
            .unwrap();
    }
    let names: Vec<String> = store
        .list_cursors()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["a", "b", "c\u{e9}"]);
    store.delete_cursor("b").await.unwrap();
    assert!(matches!(
        store.delete_cursor("b").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.load_cursor("b").await.unwrap(), None);
    assert_eq!(store.list_cursors().await.unwrap().len(), 2);
}

async fn should_count_lag_after_position(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    write_entries(
        &store,
        "s",
        &[
            (10, "x", 1),
            (10, "y", 1),
            (11, "x", 2),
            (12, "x", 3),
            (13, "y", 2),
        ],
    );
    write_entries(&store, "s2", &[(10, "x", 1)]);
    write_entries(&store, "t", &[(9, "x", 1)]);

    let position = CursorPosition::new()
        .with_space("s", off(10, "y", 1))
        .with_space("empty", SpaceOffset::default())
        .with_space("t", SpaceOffset::default())
        .with_segment("s", "x", 1)
        .with_segment("s", "y", 0)
        .with_segment("s", "none", 0);
    store.commit_cursor("c", position).await.unwrap();
    let lag = store.cursor_lag("c").await.unwrap();
    assert_eq!(lag.spaces["s"], 3, "{lag:?}");
    assert_eq!(lag.spaces["empty"], 0);
    assert_eq!(lag.spaces["t"], 1);
    assert_eq!(lag.segments[&("s".to_owned(), "x".to_owned())], 2);
    assert_eq!(lag.segments[&("s".to_owned(), "y".to_owned())], 2);
    assert_eq!(lag.segments[&("s".to_owned(), "none".to_owned())], 0);
    assert_eq!(lag.total(), 8);

    store
        .commit_cursor("c", CursorPosition::new().with_space("s", off(13, "y", 2)))
        .await
        .unwrap();
    assert_eq!(store.cursor_lag("c").await.unwrap().spaces["s"], 0);
    assert!(matches!(
        store.cursor_lag("missing").await,
        Err(Error::NotFound { .. })
    ));
}

async fn should_reject_bad_cursor_input_and_change_nothing(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let ok = CursorPosition::new();
    for name in ["", "a\0b", "tab\t", &"x".repeat(256)] {
        assert!(
            matches!(
                store.commit_cursor(name, ok.clone()).await,
                Err(Error::InvalidArgument { .. })
            ),
            "{name:?}"
        );
        assert!(matches!(
            store.load_cursor(name).await,
            Err(Error::InvalidArgument { .. })
        ));
    }
    let bad_space = CursorPosition::new().with_space("", SpaceOffset::default());
    assert!(matches!(
        store.commit_cursor("c", bad_space).await,
        Err(Error::InvalidArgument { .. })
    ));
    let bad_segment = CursorPosition::new().with_segment("s", "a\u{7f}", 1);
    assert!(matches!(
        store.commit_cursor("c", bad_segment).await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(store.list_cursors().await.unwrap().is_empty());
}

per_backend!(
    should_commit_and_load_cursor,
    should_merge_commits_forward,
    should_reject_backwards_commit_and_change_nothing,
    should_reset_cursor_backwards,
    should_list_and_delete_cursors,
    should_count_lag_after_position,
    should_reject_bad_cursor_input_and_change_nothing,
);
