//! The handoff between request submitters and the store's single writer.
//!
//! Any number of threads or tasks [`Handoff::push`] requests; the one writer
//! takes them in arrival order, a whole group at a time, with
//! [`Handoff::next_group`]. [`Handoff::close`] stops intake and hands back
//! everything still queued so the caller can fail it: nothing is dropped
//! silently.
//!
//! [`Handoff::next_group_gathering`] may hold a group open a little while for
//! requests still on their way (a [`Gather`]): the group-commit delay of
//! PostgreSQL's `commit_delay` or MySQL's `binlog_group_commit_sync_delay`,
//! bounded by a quiet period and a limit.
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
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, MutexGuard, lock, wait_timeout};

/// How long [`Handoff::next_group_gathering`] may keep a group open once a
/// request is queued, for more that are expected shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gather {
    /// Taken as soon as this many requests are queued (or the group's
    /// maximum, if smaller).
    pub want: usize,
    /// Taken once this long passes without a request arriving (arrivals
    /// are looked at once per such period, not woken for one by one).
    pub quiet: Duration,
    /// Taken when gathering has lasted this long in all.
    pub limit: Duration,
}

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
    /// Requests ever pushed (tells a gathering writer that one arrived).
    pushed: u64,
    /// The writer sleeps until this many requests are queued (0: it is not
    /// sleeping). A push wakes it only then: while it commits, or gathers
    /// towards a larger group, pushes make no wake-up call at all.
    waiting_for: usize,
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
                pushed: 0,
                waiting_for: 0,
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
        state.pushed = state.pushed.wrapping_add(1);
        let wake = state.waiting_for != 0 && state.queue.len() >= state.waiting_for;
        if wake {
            // Woken once: later pushes need not call again.
            state.waiting_for = 0;
        }
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Blocks until at least one request is queued, then takes up to `max` of
    /// them in arrival order. Returns `None` once the handoff is closed and
    /// empty: the writer's signal to stop.
    pub fn next_group(&self, max: usize) -> Option<Vec<T>> {
        self.next_group_gathering(max, None)
    }

    /// Like [`Handoff::next_group`], but once a request is queued it waits,
    /// as `gather` allows, until `gather.want` are queued (or `max`) before
    /// taking the group. Gathering ends early when the handoff
    /// is closed: what is queued is taken, never dropped.
    pub fn next_group_gathering(&self, max: usize, gather: Option<Gather>) -> Option<Vec<T>> {
        let max = max.max(1);
        let mut state = lock(&self.state);
        loop {
            if !state.queue.is_empty() {
                break;
            }
            if state.closed {
                return None;
            }
            state.waiting_for = 1;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.waiting_for = 0;
        if let Some(gather) = gather {
            state = self.gather(state, max, gather);
            if state.queue.is_empty() {
                // Closed while gathering: `close` handed the queue back.
                return None;
            }
        }
        let take = state.queue.len().min(max);
        Some(state.queue.drain(..take).collect())
    }

    /// Waits, as `gather` allows, for more requests to join those queued.
    /// Pushes below `want` do not wake the writer; it looks at the arrival
    /// count once per quiet period instead.
    fn gather<'a>(
        &'a self,
        mut state: MutexGuard<'a, State<T>>,
        max: usize,
        gather: Gather,
    ) -> MutexGuard<'a, State<T>> {
        let want = gather.want.min(max);
        let started = Instant::now();
        let mut last_arrival = started;
        let mut seen = state.pushed;
        while state.queue.len() < want && !state.closed {
            let now = Instant::now();
            let left = gather.limit.saturating_sub(now.duration_since(started));
            let quiet_left = gather
                .quiet
                .saturating_sub(now.duration_since(last_arrival));
            let timeout = left.min(quiet_left);
            if timeout.is_zero() {
                break;
            }
            state.waiting_for = want;
            let timed_out;
            (state, timed_out) = wait_timeout(&self.ready, &self.state, state, timeout);
            state.waiting_for = 0;
            if state.pushed != seen {
                seen = state.pushed;
                last_arrival = Instant::now();
            } else if timed_out {
                break;
            }
        }
        state
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

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Gather, Handoff};

    const LONG: Duration = Duration::from_secs(30);

    fn gather(want: usize, quiet: Duration, limit: Duration) -> Option<Gather> {
        Some(Gather { want, quiet, limit })
    }

    #[test]
    fn gathering_waits_until_the_wanted_requests_are_queued() {
        let handoff = Arc::new(Handoff::new());
        handoff.push(0).unwrap();
        let late = {
            let handoff = handoff.clone();
            std::thread::spawn(move || {
                for i in 1..=3 {
                    std::thread::sleep(Duration::from_millis(5));
                    handoff.push(i).unwrap();
                }
            })
        };
        let group = handoff.next_group_gathering(16, gather(4, LONG, LONG));
        assert_eq!(group, Some(vec![0, 1, 2, 3]));
        late.join().unwrap();
    }

    #[test]
    fn gathering_never_takes_more_than_the_group_maximum() {
        let handoff = Handoff::new();
        for i in 0..5 {
            handoff.push(i).unwrap();
        }
        let group = handoff.next_group_gathering(3, gather(10, LONG, LONG));
        assert_eq!(group, Some(vec![0, 1, 2]));
        assert_eq!(handoff.len(), 2);
    }

    #[test]
    fn gathering_gives_up_when_requests_stop_arriving() {
        let handoff = Handoff::new();
        handoff.push(7).unwrap();
        let quiet = Duration::from_millis(20);
        let group = handoff.next_group_gathering(16, gather(5, quiet, LONG));
        assert_eq!(group, Some(vec![7]));
    }

    #[test]
    fn gathering_gives_up_at_its_limit_even_while_requests_keep_coming() {
        let handoff = Arc::new(Handoff::new());
        handoff.push(0).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let trickle = {
            let (handoff, stop) = (handoff.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 1;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(2));
                    if handoff.push(i).is_err() {
                        break;
                    }
                    i += 1;
                }
            })
        };
        let limit = Duration::from_millis(50);
        let group = handoff
            .next_group_gathering(usize::MAX, gather(usize::MAX, LONG, limit))
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        trickle.join().unwrap();
        // Taken in arrival order, and the wait ended without the impossible
        // count ever being reached.
        assert_eq!(group, (0..group.len()).collect::<Vec<_>>());
    }

    #[test]
    fn closing_during_a_gather_ends_it_and_hands_the_queue_to_the_closer() {
        let handoff = Arc::new(Handoff::new());
        handoff.push(1).unwrap();
        let writer = {
            let handoff = handoff.clone();
            std::thread::spawn(move || handoff.next_group_gathering(16, gather(8, LONG, LONG)))
        };
        // Whatever the interleaving, each request ends up in exactly one
        // place: the writer's group or the closer's leftovers.
        std::thread::sleep(Duration::from_millis(10));
        let leftover = handoff.close();
        let taken = writer.join().unwrap().unwrap_or_default();
        let mut all: Vec<i32> = leftover.into_iter().chain(taken).collect();
        all.sort_unstable();
        assert_eq!(all, [1]);
        assert_eq!(
            handoff.next_group_gathering(16, gather(8, LONG, LONG)),
            None
        );
    }
}
