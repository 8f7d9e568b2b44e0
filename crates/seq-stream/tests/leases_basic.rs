//! Leases with fencing tokens, on every backend: one holder at a time,
//! strictly increasing tokens (across grants and reopens), renewal, loss,
//! fencing, cancellation and bad input.
//!
//! Timing: ttls are short and every wait is bounded generously; no test
//! asserts how fast something happens, only what happens (and in which
//! order).
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

mod leases_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leases_support::{Env, Kind};
use seq_stream::{Error, Fence, LeaseEnd, LeaseOptions};
use tokio::sync::Mutex;
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(30);
const PATIENCE: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn should_issue_increasing_tokens_across_grants_and_reopen(kind: Kind) {
    let mut env = Env::new(kind);
    let store = env.open();
    let first = store.acquire_lease("leader", LONG).await.unwrap();
    assert_eq!(first.token(), 1);
    assert_eq!(first.fence(), Fence::new("leader", 1));
    first.release().await.unwrap();
    let second = store.acquire_lease("leader", LONG).await.unwrap();
    assert_eq!(second.token(), 2);
    // Another key counts on its own.
    assert_eq!(store.acquire_lease("other", LONG).await.unwrap().token(), 1);
    second.release().await.unwrap();

    let store = env.reopen(store).await;
    let info = store.lease_info("leader").await.unwrap().unwrap();
    assert_eq!((info.holder, info.token), (None, 2));
    let third = store.acquire_lease("leader", LONG).await.unwrap();
    assert_eq!(third.token(), 3);
    third.release().await.unwrap();
}

async fn should_refuse_second_holder_while_held(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let held = store.acquire_lease("k", LONG).await.unwrap();
    let refused = store.acquire_lease("k", LONG).await;
    assert!(
        matches!(refused, Err(Error::Conflict { .. })),
        "{refused:?}"
    );
    let info = store.lease_info("k").await.unwrap().unwrap();
    assert_eq!((info.holder, info.token), (Some(held.holder()), 1));
    held.release().await.unwrap();
    let next = store.acquire_lease("k", LONG).await.unwrap();
    assert_eq!(next.token(), 2);
}

async fn should_admit_one_holder_at_a_time(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (store, inside, tokens) = (store.clone(), inside.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                store
                    .with_lease("mutex", Duration::from_secs(5), |ctx| {
                        let (inside, tokens) = (inside.clone(), tokens.clone());
                        async move {
                            assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                            tokens.lock().await.push(ctx.token);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            assert!(!ctx.signal.is_fired());
                            inside.store(false, Ordering::SeqCst);
                        }
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        within("contending holders", task).await.unwrap();
    }
    let tokens = tokens.lock().await.clone();
    assert_eq!(
        tokens,
        (1..=6).collect::<Vec<u64>>(),
        "tokens in grant order"
    );
}

async fn should_lose_lease_that_is_not_renewed(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let options = LeaseOptions::new(Duration::from_millis(100)).without_renewal();
    let stale = store.acquire_lease_with("k", options).await.unwrap();
    let signal = stale.signal();
    assert_eq!(within("lost signal", signal.fired()).await, LeaseEnd::Lost);
    assert!(!stale.is_held());
    // Another holder gets it once it lapsed; the stale holder is fenced.
    let fresh = within(
        "waiting for the lapsed lease",
        store.wait_lease("k", LeaseOptions::new(LONG)),
    )
    .await
    .unwrap();
    assert_eq!(fresh.token(), 2);
    // It lapsed, and this store granted it again since: the stale holder
    // is told it is fenced, without a write.
    let renewed = stale.renew().await;
    assert!(
        matches!(
            renewed,
            Err(Error::Fenced {
                token: 1,
                current: 2,
                ..
            })
        ),
        "{renewed:?}"
    );
    let check = store.check_fence(&stale.fence()).await;
    assert!(
        matches!(check, Err(Error::Fenced { ref key, token: 1, current: 2 }) if key == "k"),
        "{check:?}"
    );
    store.check_fence(&fresh.fence()).await.unwrap();
    // Releasing a lease lost to someone else changes nothing.
    assert!(matches!(stale.release().await, Err(Error::Fenced { .. })));
    assert_eq!(
        store.lease_info("k").await.unwrap().unwrap().holder,
        Some(fresh.holder())
    );
}

async fn should_hand_lapsed_lease_to_waiter_and_fence_old_holder(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let first = store
        .acquire_lease_with(
            "k",
            LeaseOptions::new(Duration::from_millis(150)).without_renewal(),
        )
        .await
        .unwrap();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.wait_lease("k", LeaseOptions::new(LONG)).await })
    };
    let second = within("waiter", waiter).await.unwrap().unwrap();
    assert!(second.token() > first.token());
    assert!(first.signal().is_fired());
    assert!(matches!(
        store.check_fence(&first.fence()).await,
        Err(Error::Fenced { .. })
    ));
}

async fn should_keep_renewed_lease(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let lease = store
        .acquire_lease("k", Duration::from_millis(600))
        .await
        .unwrap();
    let before = store.lease_info("k").await.unwrap().unwrap().expires_at;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !lease.signal().is_fired(),
        "renewed lease was lost: {:?}",
        lease.signal().reason()
    );
    let info = store.lease_info("k").await.unwrap().unwrap();
    if kind == Kind::MemoryWithLeases {
        // Renewal keeps the backend lease alive; the record is not rewritten.
        assert_eq!(info.holder, Some(lease.holder()));
    } else {
        assert!(info.expires_at > before);
    }
    assert!(matches!(
        store.acquire_lease("k", LONG).await,
        Err(Error::Conflict { .. })
    ));
    lease.renew().await.unwrap();
    assert_eq!(lease.token(), 1);
    lease.release().await.unwrap();
}

async fn should_regrant_to_same_holder_with_new_token(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let holder = Uuid::new_v4();
    let options = LeaseOptions::new(LONG).with_holder(holder);
    let first = store
        .acquire_lease_with("k", options.clone())
        .await
        .unwrap();
    let second = store.acquire_lease_with("k", options).await.unwrap();
    assert_eq!((first.holder(), second.holder()), (holder, holder));
    assert_eq!(second.token(), first.token() + 1);
    assert!(matches!(
        first.renew().await,
        Err(Error::Fenced {
            token: 1,
            current: 2,
            ..
        })
    ));
    assert_eq!(
        within("first lost", first.signal().fired()).await,
        LeaseEnd::Lost
    );
    assert!(!second.signal().is_fired());
}

async fn should_check_fences_by_token(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let never = store.check_fence(&Fence::new("nobody", 1)).await;
    assert!(
        matches!(
            never,
            Err(Error::Fenced {
                token: 1,
                current: 0,
                ..
            })
        ),
        "{never:?}"
    );
    assert!(matches!(
        store.check_fence(&Fence::new("", 1)).await,
        Err(Error::InvalidArgument { .. })
    ));

    let lease = store.acquire_lease("k", LONG).await.unwrap();
    store.check_fence(&lease.fence()).await.unwrap();
    assert!(matches!(
        store.check_fence(&Fence::new("k", 0)).await,
        Err(Error::Fenced { current: 1, .. })
    ));
    assert!(matches!(
        store.check_fence(&Fence::new("k", 2)).await,
        Err(Error::Fenced { current: 1, .. })
    ));
    // Release alone does not fence; the next grant does.
    let fence = lease.fence();
    lease.release().await.unwrap();
    store.check_fence(&fence).await.unwrap();
    let next = store.acquire_lease("k", LONG).await.unwrap();
    assert!(matches!(
        store.check_fence(&fence).await,
        Err(Error::Fenced {
            token: 1,
            current: 2,
            ..
        })
    ));
    store.check_fence(&next.fence()).await.unwrap();
}

async fn should_signal_cancel_and_release_after_work(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = store.clone();
    let handle = tokio::spawn(async move {
        worker
            .with_lease_until(
                "k",
                LeaseOptions::new(LONG),
                async move {
                    let _ = cancel_rx.await;
                },
                |ctx| async move {
                    let reason = ctx.signal.fired().await;
                    (ctx.token, reason)
                },
            )
            .await
    });
    // Wait until the lease is held, then cancel.
    within("lease held", async {
        while store
            .lease_info("k")
            .await
            .unwrap()
            .and_then(|i| i.holder)
            .is_none()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    cancel_tx.send(()).unwrap();
    let (token, reason) = within("cancelled work", handle).await.unwrap().unwrap();
    assert_eq!((token, reason), (1, LeaseEnd::Cancelled));
    let info = store.lease_info("k").await.unwrap().unwrap();
    assert_eq!((info.holder, info.token), (None, 1));
}

async fn should_release_when_with_lease_future_is_dropped(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel();
    let holder = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .with_lease("k", LONG, |ctx| async move {
                    let _ = signal_tx.send(ctx.signal.clone());
                    std::future::pending::<()>().await;
                })
                .await
        })
    };
    let signal = within("holder started", signal_rx).await.unwrap();
    holder.abort();
    assert_eq!(
        within("signal on drop", signal.fired()).await,
        LeaseEnd::Released
    );
    let next = within(
        "lease after drop",
        store.wait_lease("k", LeaseOptions::new(LONG)),
    )
    .await
    .unwrap();
    assert_eq!(next.token(), 2);
}

async fn should_reject_bad_lease_input_and_change_nothing(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    for key in ["", "a\0b", "nl\n", &"x".repeat(256)] {
        let result = store.acquire_lease(key, LONG).await;
        assert!(
            matches!(result, Err(Error::InvalidArgument { .. })),
            "{key:?}: {result:?}"
        );
        assert!(matches!(
            store.lease_info(key).await,
            Err(Error::InvalidArgument { .. })
        ));
    }
    for ttl in [Duration::ZERO, Duration::from_micros(999), Duration::MAX] {
        let result = store.acquire_lease("k", ttl).await;
        assert!(
            matches!(result, Err(Error::InvalidArgument { .. })),
            "{ttl:?}: {result:?}"
        );
    }
    assert!(store.list_leases().await.unwrap().is_empty());
}

async fn should_list_leases(kind: Kind) {
    let env = Env::new(kind);
    let store = env.open();
    let b = store.acquire_lease("b", LONG).await.unwrap();
    store
        .acquire_lease("a", LONG)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    let listed = store.list_leases().await.unwrap();
    let summary: Vec<(String, Option<Uuid>, u64)> = listed
        .into_iter()
        .map(|(k, i)| (k, i.holder, i.token))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a".to_owned(), None, 1),
            ("b".to_owned(), Some(b.holder()), 1)
        ]
    );
}

per_backend!(
    should_issue_increasing_tokens_across_grants_and_reopen,
    should_refuse_second_holder_while_held,
    should_admit_one_holder_at_a_time,
    should_lose_lease_that_is_not_renewed,
    should_hand_lapsed_lease_to_waiter_and_fence_old_holder,
    should_keep_renewed_lease,
    should_regrant_to_same_holder_with_new_token,
    should_check_fences_by_token,
    should_signal_cancel_and_release_after_work,
    should_release_when_with_lease_future_is_dropped,
    should_reject_bad_lease_input_and_change_nothing,
    should_list_leases,
);
