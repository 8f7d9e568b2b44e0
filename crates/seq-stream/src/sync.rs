//! The synchronisation primitives the engine's handoffs are built on (the
//! writer's queue, a consume's read-ahead): `std`'s in normal builds,
//! loom's under `--cfg loom`, so the loom models exercise the very code the
//! engine runs (the tokio `src/loom` pattern).

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use std::time::Duration;

/// Locks `mutex`, recovering the data if a panicking thread poisoned it: every
/// critical section in this crate leaves its data consistent before it can
/// panic, so the data stays valid.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar` (paired with `mutex`, which `guard` locks) for at most
/// `timeout`; returns the guard and whether the time ran out. Spurious
/// wake-ups are the caller's to handle, as with `Condvar::wait_timeout`.
#[cfg(not(loom))]
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    _mutex: &'a Mutex<T>,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> (MutexGuard<'a, T>, bool) {
    let (guard, result) = condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    (guard, result.timed_out())
}

/// Loom has no clock: a timed wait is modelled as a deadline that may pass
/// at any moment. The lock is released, other threads get to run, and the
/// wait reports that its time ran out, so the models explore arrivals
/// interleaved with a gathering writer that then gives up.
#[cfg(loom)]
pub(crate) fn wait_timeout<'a, T>(
    _condvar: &Condvar,
    mutex: &'a Mutex<T>,
    guard: MutexGuard<'a, T>,
    _timeout: Duration,
) -> (MutexGuard<'a, T>, bool) {
    drop(guard);
    loom::thread::yield_now();
    (lock(mutex), true)
}
