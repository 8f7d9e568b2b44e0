//! Runs etcd-client's async calls for synchronous callers.
//!
//! The [`seq_storage::Storage`] trait is synchronous and is called from plain
//! threads and from inside other tokio runtimes. The bridge owns a small
//! runtime of its own, whose workers drive the connections. A plain thread
//! (the store's writer) polls a call itself with `Handle::block_on`, so the
//! answer wakes it directly. `block_on` panics inside another runtime, so a
//! call from there is spawned onto the bridge's runtime and its answer
//! awaited on a `std::sync::mpsc` channel, which works from any thread.

use std::future::Future;
use std::io;

use tokio::runtime::{Builder, Handle, Runtime};

/// A private multi-thread tokio runtime for one store (or one test cluster).
pub(crate) struct Bridge {
    /// `None` only while dropping.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Bridge {
    /// Starts the runtime; its worker threads are named `name`.
    pub(crate) fn new(name: &str) -> io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_io()
            .enable_time()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Self {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Runs `future` on the runtime and blocks the calling thread (which may
    /// belong to another runtime) until it finishes. `None` when the task did
    /// not finish: it panicked, or the runtime is shutting down.
    pub(crate) fn run<T, F>(&self, future: F) -> Option<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        if Handle::try_current().is_err() {
            // A plain thread (the store's writer): poll the call right here,
            // inside the runtime's context, so its answer wakes this thread
            // directly instead of a worker that then wakes it.
            let handle = &self.handle;
            return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handle.block_on(future)
            }))
            .ok();
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            // The receiver only goes away if the caller's thread died.
            let _ = tx.send(future.await);
        });
        rx.recv().ok()
    }
}

impl Bridge {
    /// Runs `future` on the runtime in the background, until it ends or the
    /// runtime shuts down.
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(future);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which panics when
        // done from async code; shutting down in the background does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer() -> u32 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        42
    }

    #[test]
    fn a_call_from_a_plain_thread_is_polled_there_and_answers() {
        let bridge = Bridge::new("test-bridge").unwrap();
        let on_thread = std::thread::current().id();
        let polled_on = bridge.run(async move {
            let value = answer().await;
            (value, std::thread::current().id())
        });
        assert_eq!(polled_on, Some((42, on_thread)));
    }

    #[test]
    fn a_call_from_inside_another_runtime_answers() {
        let bridge = Bridge::new("test-bridge").unwrap();
        let other = Builder::new_current_thread().build().unwrap();
        let value = other.block_on(async { bridge.run(answer()) });
        assert_eq!(value, Some(42));
    }

    #[test]
    fn a_call_that_panics_answers_none_on_either_path() {
        let bridge = Bridge::new("test-bridge").unwrap();
        assert_eq!(
            bridge.run(async { panic!("from a plain thread") }),
            None::<u32>
        );
        let other = Builder::new_current_thread().build().unwrap();
        let value = other.block_on(async { bridge.run(async { panic!("from a runtime") }) });
        assert_eq!(value, None::<u32>);
    }
}
