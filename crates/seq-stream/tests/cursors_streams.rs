//! Cursor lag against entries written by `produce`: the stream layer's key
//! layout and the cursor's counting agree.
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

mod leases_support;

use leases_support::{Env, Kind};
use seq_stream::{CursorPosition, ProduceOptions, Record, SpaceQuery};

async fn should_count_lag_of_produced_entries(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    for (segment, n) in [("a", 3), ("b", 2), ("a", 1)] {
        let records = (0..n)
            .map(|i| Record::new(format!("{segment}{i}")))
            .collect();
        store
            .produce("s", segment, records, ProduceOptions::default())
            .await
            .unwrap();
    }
    let mut stream = store.consume_space("s", SpaceQuery::default()).unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let second = stream.next().await.unwrap().unwrap();
    let position = CursorPosition::new()
        .with_space("s", second.offset())
        .with_segment("s", &*first.segment, first.sequence);
    store.commit_cursor("c", position).await.unwrap();
    let lag = store.cursor_lag("c").await.unwrap();
    assert_eq!(lag.spaces["s"], 4, "{lag:?}");
    assert_eq!(
        lag.segments[&("s".to_owned(), first.segment.to_string())],
        3
    );

    // Consume the rest and commit: no lag.
    let mut last = second;
    while let Some(entry) = stream.next().await.unwrap() {
        last = entry;
    }
    store
        .commit_cursor("c", CursorPosition::new().with_space("s", last.offset()))
        .await
        .unwrap();
    assert_eq!(store.cursor_lag("c").await.unwrap().spaces["s"], 0);
}

per_backend!(should_count_lag_of_produced_entries);
