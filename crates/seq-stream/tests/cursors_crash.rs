//! Crash simulation: a cursor's committed position never goes backwards
//! across `CrashStorage` crashes (with injected write and sync failures).
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

use seq_core::SpaceOffset;
use seq_storage::test_rng::TestRng as Rng;
use seq_storage::{CrashStorage, FaultPlan};
use seq_stream::{CursorPosition, Error, Store};

fn position(ts: u64, seq: u64) -> CursorPosition {
    CursorPosition::new()
        .with_space(
            "s",
            SpaceOffset {
                timestamp: ts,
                segment: "x".into(),
                sequence: 1,
            },
        )
        .with_segment("s", "x", seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_never_move_cursor_backwards_across_crashes() {
    for seed in 1..=24u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut storage = CrashStorage::new();
        let mut store = Store::open(storage.clone()).unwrap();
        // Highest acknowledged position, and highest attempted one.
        let (mut acked, mut tried) = (0u64, 0u64);
        for step in 0..60 {
            match rng.below(6) {
                0..=2 => {
                    let target = if rng.below(4) == 0 {
                        acked.saturating_sub(rng.below(3))
                    } else {
                        tried + 1 + rng.below(3)
                    };
                    tried = tried.max(target);
                    match store.commit_cursor("c", position(target, target)).await {
                        Ok(cursor) => {
                            assert!(
                                target >= acked,
                                "seed {seed} step {step}: went back from {acked} to {target}"
                            );
                            assert_eq!(cursor.position, position(target, target));
                            acked = target;
                        }
                        Err(Error::Conflict { .. }) => assert!(target < acked || target < tried),
                        Err(Error::Storage { .. } | Error::Closed { .. }) => {}
                        Err(other) => panic!("seed {seed} step {step}: {other:?}"),
                    }
                }
                3 => {
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
                    drop(std::mem::replace(
                        &mut store,
                        Store::open(after.clone()).unwrap(),
                    ));
                    storage = after;
                    let loaded = store.load_cursor("c").await.unwrap();
                    let at = loaded.map_or(0, |c| c.position.segment("s", "x").unwrap_or(0));
                    assert!(
                        at >= acked,
                        "seed {seed} step {step}: cursor at {at} below acknowledged {acked}"
                    );
                    assert!(
                        at <= tried,
                        "seed {seed} step {step}: cursor at {at} never committed"
                    );
                    // What survived is the new baseline (an unacknowledged
                    // commit may have reached the disk).
                    acked = at;
                }
            }
        }
    }
}
