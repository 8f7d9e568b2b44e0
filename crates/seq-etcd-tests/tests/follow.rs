//! A follower on one store is woken by another store's produce through
//! etcd's watch, not by polling: the stores poll once an hour.
#![allow(clippy::unwrap_used)] // A failed unwrap is a test failure.

use std::time::Duration;

use seq_etcd::testing::Cluster;
use seq_stream::{ProduceOptions, Record, SpaceQuery, Store, StoreOptions};

fn open(cluster: &Cluster, prefix: &str) -> Store {
    let mut options = StoreOptions::default();
    options.poll_interval = Duration::from_secs(3600);
    Store::open_etcd_with(cluster.options(prefix.as_bytes().to_vec()), options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_is_woken_by_another_stores_produce_through_the_watch() {
    let cluster = Cluster::start();
    let prefix = format!("follow-{}", uuid::Uuid::new_v4());
    let (reader, writer) = (open(&cluster, &prefix), open(&cluster, &prefix));
    let query = SpaceQuery {
        follow: true,
        ..SpaceQuery::default()
    };
    let mut follower = reader.consume_space("events", query).unwrap();
    // The follower waits first; each produce lands while it waits.
    let follow = tokio::spawn(async move {
        let mut sequences = Vec::new();
        while sequences.len() < 5 {
            let entry = follower.next().await.unwrap().unwrap();
            sequences.push(entry.sequence);
        }
        sequences
    });
    for i in 1..=5u64 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        writer
            .produce(
                "events",
                "s",
                vec![Record::new(format!("e{i}"))],
                ProduceOptions::default(),
            )
            .await
            .unwrap();
    }
    let sequences = tokio::time::timeout(Duration::from_secs(30), follow)
        .await
        .expect("the follower was not woken")
        .unwrap();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    reader.close().await.unwrap();
    writer.close().await.unwrap();
}
