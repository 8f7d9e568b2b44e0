//! Crash simulation: lease tokens never go backwards and are never reissued
//! across `CrashStorage` crashes (with injected write and sync failures).
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

use std::time::Duration;

use seq_storage::test_rng::TestRng as Rng;
use seq_storage::{CrashStorage, FaultPlan};
use seq_stream::{Error, Lease, LeaseOptions, Store};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_never_reissue_or_lower_lease_tokens_across_crashes() {
    for seed in 1..=24u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let holder = Uuid::new_v4();
        // One holder identity, so a re-acquire after a crash is granted
        // (with a new token) instead of waiting out the old grant.
        let options = LeaseOptions::new(Duration::from_secs(60))
            .without_renewal()
            .with_holder(holder);
        let mut storage = CrashStorage::new();
        let mut store = Store::open(storage.clone()).unwrap();
        let mut acked = 0u64;
        let mut held: Vec<Lease> = Vec::new();
        for step in 0..40 {
            match rng.below(6) {
                0..=2 => match store.acquire_lease_with("k", options.clone()).await {
                    Ok(lease) => {
                        assert!(
                            lease.token() > acked,
                            "seed {seed} step {step}: token {} after {acked}",
                            lease.token()
                        );
                        acked = lease.token();
                        held.push(lease);
                    }
                    Err(Error::Storage { .. } | Error::Closed { .. }) => {}
                    Err(other) => panic!("seed {seed} step {step}: {other:?}"),
                },
                3 => {
                    if let Some(lease) = held.pop() {
                        // Stale (re-granted) leases are fenced; faults fail.
                        let _ = lease.release().await;
                    }
                }
                4 => {
                    let plan = if rng.below(2) == 0 {
                        FaultPlan::new().fail_next_sync()
                    } else {
                        FaultPlan::new().fail_nth_write(1 + rng.below(2))
                    };
                    storage.set_faults(plan);
                }
                _ => {
                    let keep =
                        usize::try_from(rng.below(storage.pending_batches() as u64 + 1)).unwrap();
                    let after = storage.crash_keeping(keep);
                    held.clear();
                    drop(std::mem::replace(
                        &mut store,
                        Store::open(after.clone()).unwrap(),
                    ));
                    storage = after;
                    let token = store.lease_info("k").await.unwrap().map_or(0, |i| i.token);
                    assert!(
                        token >= acked,
                        "seed {seed} step {step}: stored token {token} below acknowledged {acked}"
                    );
                }
            }
        }
        let after = storage.crash();
        held.clear();
        drop(store);
        let store = Store::open(after).unwrap();
        let next = store.acquire_lease_with("k", options).await.unwrap();
        assert!(
            next.token() > acked,
            "seed {seed}: final token {} after {acked}",
            next.token()
        );
    }
}
