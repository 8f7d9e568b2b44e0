//! Runs etcd-client's async calls for synchronous callers.
//!
//! The [`seq_storage::Storage`] trait is synchronous and is called from plain
//! threads and from inside other tokio runtimes. `Runtime::block_on` panics in
//! the latter, so the bridge owns a small runtime of its own, spawns every
//! call onto it and waits for the answer on a `std::sync::mpsc` channel,
//! which works from any thread.

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
