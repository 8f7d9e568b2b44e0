//! Fenced produce: a produce carrying a stale (or never granted) fencing
//! token fails with `Fenced` and writes nothing; a current one succeeds.
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

mod leases_support;

use std::time::Duration;

use leases_support::{Env, Kind};
use seq_stream::{Error, Fence, LeaseEnd, LeaseOptions, ProduceOptions, Record};

const LONG: Duration = Duration::from_secs(30);

async fn should_reject_stale_fence_and_write_nothing(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let old = store
        .acquire_lease_with(
            "writer",
            LeaseOptions::new(Duration::from_millis(100)).without_renewal(),
        )
        .await
        .unwrap();
    let fenced = ProduceOptions::default().with_fence(old.fence());
    let status = store
        .produce("s", "g", vec![Record::new("a")], fenced.clone())
        .await
        .unwrap();
    assert_eq!(status.last_sequence, 1);

    assert_eq!(old.signal().fired().await, LeaseEnd::Lost);
    let new = store
        .wait_lease("writer", LeaseOptions::new(LONG))
        .await
        .unwrap();
    let stale = store
        .produce("s", "g", vec![Record::new("b"), Record::new("c")], fenced)
        .await;
    assert!(
        matches!(stale, Err(Error::Fenced { ref key, token: 1, current: 2 }) if key == "writer"),
        "{stale:?}"
    );
    let after = store.status("s", "g").await.unwrap();
    assert_eq!(
        (after.last_sequence, after.count),
        (1, 1),
        "a fenced produce wrote something"
    );

    let current = ProduceOptions::default().with_fence(new.fence());
    let status = store
        .produce("s", "g", vec![Record::new("b")], current)
        .await
        .unwrap();
    assert_eq!(status.last_sequence, 2);
}

async fn should_reject_fence_on_key_never_leased(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let options = ProduceOptions::default().with_fence(Fence::new("nobody", 1));
    let result = store
        .produce("s", "g", vec![Record::new("a")], options)
        .await;
    assert!(
        matches!(result, Err(Error::Fenced { current: 0, .. })),
        "{result:?}"
    );
    assert_eq!(store.status("s", "g").await.unwrap().last_sequence, 0);
    let bad_key = ProduceOptions::default().with_fence(Fence::new("", 1));
    let result = store
        .produce("s", "g", vec![Record::new("a")], bad_key)
        .await;
    assert!(
        matches!(result, Err(Error::InvalidArgument { .. })),
        "{result:?}"
    );
    assert_eq!(store.status("s", "g").await.unwrap().last_sequence, 0);
}

async fn should_produce_under_with_lease(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let writer = store.clone();
    let last = store
        .with_lease("writer", LONG, |ctx| async move {
            let options = ProduceOptions::default().with_fence(ctx.fence);
            writer
                .produce("s", "g", vec![Record::new("x")], options)
                .await
                .unwrap()
                .last_sequence
        })
        .await
        .unwrap();
    assert_eq!(last, 1);
}

per_backend!(
    should_reject_stale_fence_and_write_nothing,
    should_reject_fence_on_key_never_leased,
    should_produce_under_with_lease,
);
