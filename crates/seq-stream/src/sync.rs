//! The synchronisation primitives the engine's handoff is built on: `std`'s in
//! normal builds, loom's under `--cfg loom`, so the loom models exercise the
//! very code the writer runs (the tokio `src/loom` pattern).

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks `mutex`, recovering the data if a panicking thread poisoned it: every
/// critical section in this crate leaves its data consistent before it can
/// panic, so the data stays valid.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
