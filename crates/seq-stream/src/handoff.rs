//! The handoff between request submitters and the store's single writer.
//!
//! Any number of threads or tasks [`Handoff::push`] requests; the one writer
//! takes them in arrival order, a whole group at a time, with
//! [`Handoff::next_group`]. [`Handoff::close`] stops intake and hands back
//! everything still queued so the caller can fail it: nothing is dropped
//! silently.
//!
//! Capacity (back-pressure) is enforced by the caller before pushing — the
//! store holds a semaphore permit per queued request — so `push` itself never
//! blocks and never waits on the writer.
//!
//! This type is public so the loom models in `tests/loom_*.rs` drive the same
//! code as the engine; applications do not need it.
//!
//! ```
//! use seq_stream::handoff::Handoff;
//!
//! let handoff = Handoff::new();
//! handoff.push(1).unwrap();
//! handoff.push(2).unwrap();
//! assert_eq!(handoff.next_group(16), Some(vec![1, 2]));
//! handoff.push(3).unwrap();
//! assert_eq!(handoff.close(), vec![3]);
//! assert_eq!(handoff.push(4), Err(4));
//! assert_eq!(handoff.next_group(16), None);
//! ```

use std::collections::VecDeque;

use crate::sync::{Condvar, Mutex, lock};

/// A multi-producer, single-consumer queue that hands requests to the writer
/// in groups.
#[derive(Debug)]
pub struct Handoff<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    closed: bool,
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Handoff<T> {
    /// An open, empty handoff.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    /// Queues `item` for the writer. After [`Handoff::close`] the item is
    /// returned as the error, untouched, so the caller can fail it.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(item);
        }
        state.queue.push_back(item);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Blocks until at least one request is queued, then takes up to `max` of
    /// them in arrival order. Returns `None` once the handoff is closed and
    /// empty: the writer's signal to stop.
    pub fn next_group(&self, max: usize) -> Option<Vec<T>> {
        let max = max.max(1);
        let mut state = lock(&self.state);
        loop {
            if !state.queue.is_empty() {
                let take = state.queue.len().min(max);
                return Some(state.queue.drain(..take).collect());
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Stops intake and returns every request still queued, in arrival order.
    /// A group the writer already took is not returned: the writer finishes
    /// it. Closing twice is harmless.
    pub fn close(&self) -> Vec<T> {
        let mut state = lock(&self.state);
        state.closed = true;
        let pending = state.queue.drain(..).collect();
        drop(state);
        self.ready.notify_all();
        pending
    }

    /// Whether [`Handoff::close`] was called.
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Requests queued and not yet taken by the writer.
    pub fn len(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
