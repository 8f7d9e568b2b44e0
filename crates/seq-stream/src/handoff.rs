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
//! bounded by a quiet period and a limit. [`Handoff::start_group`] and
//! [`Handoff::more`] gather the same way a part at a time, so the writer
//! prepares the requests it has while the rest are on their way.
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

use crate::sync::{Condvar, Mutex, lock, wait_timeout};

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

/// A group being gathered: what [`Handoff::start_group`] began and
/// [`Handoff::more`] continues.
#[derive(Debug)]
pub struct Gathering {
    /// How long to hold the group open (`None`: not at all).
    rule: Option<Gather>,
    /// The group is complete at this many requests.
    goal: usize,
    /// The group's maximum size.
    max: usize,
    /// New arrivals that wake the writer while it waits.
    chunk: usize,
    /// Requests taken into the group so far.
    taken: usize,
    started: Instant,
    last_arrival: Instant,
    /// The push count when arrivals were last looked at.
    seen: u64,
    /// The group is complete: [`Handoff::more`] takes nothing more.
    done: bool,
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
        let (mut group, mut gathering) = self.start_group(max, gather, usize::MAX)?;
        loop {
            let more = self.more(&mut gathering);
            if more.is_empty() {
                return Some(group);
            }
            group.extend(more);
        }
    }

    /// The incremental form of [`Handoff::next_group_gathering`], for a
    /// writer that prepares a group while it gathers: blocks until at least
    /// one request is queued, then takes up to `max` of them at once and
    /// returns them with the [`Gathering`] that [`Handoff::more`] continues.
    /// `chunk` is how many new arrivals wake the writer while it waits for
    /// more (`usize::MAX`: only `gather.want` does). Returns `None` once the
    /// handoff is closed and empty.
    pub fn start_group(
        &self,
        max: usize,
        gather: Option<Gather>,
        chunk: usize,
    ) -> Option<(Vec<T>, Gathering)> {
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
        let take = state.queue.len().min(max);
        let group: Vec<T> = state.queue.drain(..take).collect();
        let now = Instant::now();
        let gathering = Gathering {
            goal: gather.map_or(0, |g| g.want.min(max)),
            rule: gather,
            max,
            chunk: chunk.max(1),
            taken: group.len(),
            started: now,
            last_arrival: now,
            seen: state.pushed,
            done: false,
        };
        Some((group, gathering))
    }

    /// Waits, as `gathering`'s rule allows, for more requests to join the
    /// group and takes them: at least `gathering`'s chunk of new arrivals
    /// (or what the group still wants, if fewer), or whatever is queued
    /// when a quiet period or the limit runs out. Returns an empty vector
    /// once the group is complete (the rule is satisfied or ran out, the
    /// group is at its maximum, or the handoff closed); every later call
    /// does too. Pushes below the chunk do not wake the writer; it looks at
    /// the arrival count once per quiet period instead.
    pub fn more(&self, gathering: &mut Gathering) -> Vec<T> {
        let Some(rule) = gathering.rule else {
            return Vec::new();
        };
        if gathering.done || gathering.taken >= gathering.goal || gathering.taken >= gathering.max {
            gathering.done = true;
            return Vec::new();
        }
        let mut state = lock(&self.state);
        loop {
            if state.pushed != gathering.seen {
                gathering.seen = state.pushed;
                gathering.last_arrival = Instant::now();
            }
            let need = (gathering.goal - gathering.taken).min(gathering.chunk);
            if state.queue.len() >= need || state.closed {
                break;
            }
            let now = Instant::now();
            let left = rule
                .limit
                .saturating_sub(now.duration_since(gathering.started));
            let quiet_left = rule
                .quiet
                .saturating_sub(now.duration_since(gathering.last_arrival));
            let timeout = left.min(quiet_left);
            if timeout.is_zero() {
                gathering.done = true;
                break;
            }
            state.waiting_for = need;
            let timed_out;
            (state, timed_out) = wait_timeout(&self.ready, &self.state, state, timeout);
            state.waiting_for = 0;
            if timed_out && state.pushed == gathering.seen {
                gathering.done = true;
                break;
            }
        }
        if state.closed {
            // `close` handed the queue back: nothing is left to take.
            gathering.done = true;
        }
        let take = state.queue.len().min(gathering.max - gathering.taken);
        gathering.taken += take;
        state.queue.drain(..take).collect()
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
    fn an_incremental_gather_takes_what_arrived_while_the_writer_worked() {
        let handoff = Arc::new(Handoff::new());
        handoff.push(0).unwrap();
        let (first, mut gathering) = handoff.start_group(16, gather(5, LONG, LONG), 2).unwrap();
        assert_eq!(first, [0]);
        // Arrived while the writer prepared the first: taken at once.
        for i in 1..=3 {
            handoff.push(i).unwrap();
        }
        assert_eq!(handoff.more(&mut gathering), [1, 2, 3]);
        // One more is wanted: the writer waits for it.
        let late = {
            let handoff = handoff.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                handoff.push(4).unwrap();
            })
        };
        assert_eq!(handoff.more(&mut gathering), [4]);
        late.join().unwrap();
        // Complete: what comes now is the next group's.
        handoff.push(5).unwrap();
        assert!(handoff.more(&mut gathering).is_empty());
        assert!(handoff.more(&mut gathering).is_empty());
        assert_eq!(handoff.next_group(16), Some(vec![5]));
    }

    #[test]
    fn an_incremental_gather_stays_within_the_group_maximum() {
        let handoff = Handoff::new();
        handoff.push(0).unwrap();
        let (first, mut gathering) = handoff.start_group(3, gather(10, LONG, LONG), 1).unwrap();
        assert_eq!(first, [0]);
        for i in 1..=4 {
            handoff.push(i).unwrap();
        }
        assert_eq!(handoff.more(&mut gathering), [1, 2]);
        assert!(handoff.more(&mut gathering).is_empty());
        assert_eq!(handoff.len(), 2);
    }

    #[test]
    fn an_incremental_gather_ends_for_good_once_requests_stop_arriving() {
        let handoff = Handoff::new();
        handoff.push(0).unwrap();
        let quiet = Duration::from_millis(20);
        let (_, mut gathering) = handoff.start_group(16, gather(5, quiet, LONG), 1).unwrap();
        assert!(handoff.more(&mut gathering).is_empty());
        // A late arrival does not reopen the group.
        handoff.push(1).unwrap();
        assert!(handoff.more(&mut gathering).is_empty());
        assert_eq!(handoff.len(), 1);
    }

    #[test]
    fn without_a_gather_rule_a_group_is_what_was_queued() {
        let handoff = Handoff::new();
        handoff.push(0).unwrap();
        let (first, mut gathering) = handoff.start_group(16, None, 1).unwrap();
        handoff.push(1).unwrap();
        assert_eq!(first, [0]);
        assert!(handoff.more(&mut gathering).is_empty());
        assert_eq!(handoff.len(), 1);
    }

    #[test]
    fn closing_during_an_incremental_gather_ends_it_and_loses_nothing() {
        let handoff = Arc::new(Handoff::new());
        handoff.push(1).unwrap();
        let writer = {
            let handoff = handoff.clone();
            std::thread::spawn(move || {
                let (mut group, mut gathering) =
                    handoff.start_group(16, gather(8, LONG, LONG), 1).unwrap();
                loop {
                    let more = handoff.more(&mut gathering);
                    if more.is_empty() {
                        return group;
                    }
                    group.extend(more);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(10));
        handoff.push(2).unwrap();
        let leftover = handoff.close();
        let taken = writer.join().unwrap();
        let mut all: Vec<i32> = leftover.into_iter().chain(taken).collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
        assert_eq!(handoff.start_group(16, None, 1).map(|(g, _)| g), None);
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
