//! The conformance suite on the in-crate backends.

use seq_storage::conformance::Harness;
use seq_storage::{Capabilities, CrashStorage, MemoryStorage};

/// Fresh [`MemoryStorage`] per case; not persistent, so reopen cases skip.
struct MemoryHarness;

impl Harness for MemoryHarness {
    type Store = MemoryStorage;
    type Guard = ();

    fn fresh(&self) -> ((), MemoryStorage) {
        ((), MemoryStorage::new())
    }
}

/// Fresh [`MemoryStorage::with_leases`] per case, so the lease cases run
/// (and the one for backends without leases skips).
struct MemoryLeasesHarness;

impl Harness for MemoryLeasesHarness {
    type Store = MemoryStorage;
    type Guard = ();

    fn fresh(&self) -> ((), MemoryStorage) {
        ((), MemoryStorage::with_leases())
    }
}

/// Fresh [`CrashStorage`] per case, with small size limits so the
/// `TooLarge` cases run too.
struct CrashHarness;

impl Harness for CrashHarness {
    type Store = CrashStorage;
    type Guard = ();

    fn fresh(&self) -> ((), CrashStorage) {
        let caps = Capabilities::persistent()
            .with_max_value_len(2 << 20)
            .with_max_batch_bytes(32 << 20);
        ((), CrashStorage::new().with_capabilities(caps))
    }

    fn reopen(&self, _guard: &(), store: CrashStorage) -> Option<CrashStorage> {
        Some(store.close_and_reopen())
    }

    fn crash_reopen(&self, _guard: &(), store: CrashStorage) -> Option<CrashStorage> {
        Some(store.crash())
    }
}

mod memory {
    seq_storage::conformance_tests!(super::MemoryHarness);
}

mod memory_leases {
    seq_storage::conformance_tests!(super::MemoryLeasesHarness);
}

mod crash_sim {
    seq_storage::conformance_tests!(super::CrashHarness);
}

#[test]
fn case_list_is_long_enough_and_unique() {
    let cases = seq_storage::conformance::CASES;
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut sorted = cases.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), cases.len());
}
