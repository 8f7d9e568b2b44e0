//! Page reads that go on while their stream waits.
//!
//! A stream reads its next page on the blocking pool while its caller works
//! through the current one. A caller faster than storage finishes its page
//! first and waits. If the read then simply ended, the stream would have to
//! wake, take the page and start the next read: two thread wake-ups per page
//! during which storage reads nothing (about 100 µs on a 2-core VM, an
//! eighth of a 4,096-entry page). Instead, a reader that finds its stream
//! waiting hands the page over and reads the next one on the same thread,
//! for as long as the stream keeps waiting and its [`Pages`] say more can
//! follow.
//!
//! # Two pages at most
//!
//! A reader goes on only when its stream waits with nothing held and no
//! page is left untaken, so what is in memory is the page handed over and
//! the one being read. A stream whose wait was cancelled (its future
//! dropped) still counts as waiting; the reader may then leave a second
//! page behind the first, but goes no further: it stops whenever a page is
//! left untaken. Either way a stream holds at most two pages.
//!
//! # Failures
//!
//! A failed read ends the run with its error, for the stream to report and
//! retry. A panic in a read reaches the stream, which resumes it; a read
//! the blocking pool drops without running (the runtime shutting down)
//! hands over [`Error::Closed`](crate::Error::Closed).

use std::any::Any;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::{Poll, Waker};

use super::read::Page;
use crate::error::{Error, Result};
use crate::sync::{Arc, Mutex, lock};

/// What a run of reads reads: a position that each page moves on.
pub(crate) trait Pages: Send + 'static {
    /// Reads the next page (blocking).
    fn read(&mut self) -> Result<Page>;

    /// Moves past `page`, just read; whether another page may follow it.
    fn advance(&mut self, page: &Page) -> bool;
}

/// The pages a run of reads has produced, for the stream to take.
pub(crate) struct ReadAhead {
    shared: Arc<Mutex<State>>,
}

/// What a reader hands over.
enum Outcome {
    Read(Result<Page>),
    Panicked(Box<dyn Any + Send>),
}

/// A page handed over and the entries the stream held while it was read.
struct Handed {
    outcome: Outcome,
    held: usize,
}

#[derive(Default)]
struct State {
    /// Pages read and not yet taken, oldest first (at most two).
    ready: VecDeque<Handed>,
    /// A read is running or queued on the blocking pool.
    running: bool,
    /// The stream waits for a page and holds none.
    waiting: bool,
    waker: Option<Waker>,
    /// The stream is gone: the reader stops at its next page.
    closed: bool,
}

impl ReadAhead {
    /// Starts reading `pages` on the blocking pool; `held` is what the
    /// stream holds while the first page is read.
    pub(crate) fn start(pages: impl Pages, held: usize) -> Self {
        let (ahead, reader) = Self::pair(held);
        tokio::task::spawn_blocking(move || reader.run(pages));
        ahead
    }

    /// A run of reads and the reader that will make them.
    fn pair(held: usize) -> (Self, Reader) {
        let shared = Arc::new(Mutex::new(State {
            running: true,
            ..State::default()
        }));
        let reader = Reader {
            shared: shared.clone(),
            held,
            ended: false,
        };
        (Self { shared }, reader)
    }

    /// Waits for the next page; returns it with the most entries the stream
    /// held while it was read (counting the page). An empty page when
    /// nothing is left to take (see [`ReadAhead::is_idle`]).
    ///
    /// Cancel-safe: a dropped wait loses nothing, the next call takes the
    /// page.
    pub(crate) async fn next(&mut self) -> Result<(Page, usize)> {
        let handed = poll_fn(|cx| {
            let mut state = lock(&self.shared);
            if let Some(handed) = state.ready.pop_front() {
                state.waiting = false;
                state.waker = None;
                return Poll::Ready(Some(handed));
            }
            if !state.running {
                return Poll::Ready(None);
            }
            state.waiting = true;
            match &mut state.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await;
        let Some(Handed { outcome, held }) = handed else {
            return Ok((Page::default(), 0));
        };
        match outcome {
            Outcome::Read(read) => read.map(|page| {
                let held = held + page.entries.len();
                (page, held)
            }),
            Outcome::Panicked(payload) => resume_unwind(payload),
        }
    }

    /// Whether nothing is left to take: no page waits and no read runs, so
    /// the stream starts the next read itself.
    pub(crate) fn is_idle(&self) -> bool {
        let state = lock(&self.shared);
        state.ready.is_empty() && !state.running
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.closed = true;
        // Pages nobody will take are freed now, not when the reader ends.
        let ready = std::mem::take(&mut state.ready);
        drop(state);
        drop(ready);
    }
}

/// The blocking side of a [`ReadAhead`].
struct Reader {
    shared: Arc<Mutex<State>>,
    /// What the stream holds while the current page is read.
    held: usize,
    /// The run has ended and said so.
    ended: bool,
}

impl Reader {
    fn run(mut self, mut pages: impl Pages) {
        loop {
            let (outcome, more, len) = match catch_unwind(AssertUnwindSafe(|| pages.read())) {
                Ok(Ok(page)) => {
                    let more = pages.advance(&page);
                    let len = page.entries.len();
                    (Outcome::Read(Ok(page)), more, len)
                }
                Ok(Err(error)) => (Outcome::Read(Err(error)), false, 0),
                Err(payload) => (Outcome::Panicked(payload), false, 0),
            };
            if !self.hand_over(outcome, more) {
                return;
            }
            // The page just handed over is held while the next is read.
            self.held = len;
        }
    }

    /// Hands a page over and wakes the stream; whether to read the next
    /// page (`more` and the stream waits with nothing left to take).
    fn hand_over(&mut self, outcome: Outcome, more: bool) -> bool {
        let mut state = lock(&self.shared);
        if state.closed {
            state.running = false;
            self.ended = true;
            return false;
        }
        let go_on = more && state.waiting && state.ready.is_empty();
        state.ready.push_back(Handed {
            outcome,
            held: self.held,
        });
        state.running = go_on;
        self.ended = !go_on;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        go_on
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if !self.ended {
            // Dropped without running (the blocking pool shut down) or
            // unwound outside a read: the stream must not wait forever.
            let error = Error::closed("a storage read was cancelled");
            self.hand_over(Outcome::Read(Err(error)), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::stream::read::RawEntry;

    /// Pages of `per` entries, sequences `next..=total`; counts its reads.
    /// With a gate, each read first waits for a token.
    struct Numbers {
        next: u64,
        per: u64,
        total: u64,
        reads: Arc<AtomicUsize>,
        fail_at: Option<u64>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl Numbers {
        fn new(per: u64, total: u64, reads: &Arc<AtomicUsize>) -> Self {
            Self {
                next: 1,
                per,
                total,
                reads: reads.clone(),
                fail_at: None,
                gate: None,
            }
        }
    }

    impl Pages for Numbers {
        fn read(&mut self) -> Result<Page> {
            if let Some(gate) = &self.gate {
                // A dropped sender opens the gate for good.
                let _ = gate.recv();
            }
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.fail_at == Some(self.next) {
                return Err(Error::closed("injected"));
            }
            let last = self.next.saturating_add(self.per - 1).min(self.total);
            let entries = (self.next..=last)
                .map(|sequence| RawEntry {
                    segment: 0,
                    sequence,
                    timestamp: sequence,
                    value: Bytes::new(),
                })
                .collect();
            Ok(Page {
                entries,
                exhausted: last == self.total,
                ..Page::default()
            })
        }

        fn advance(&mut self, page: &Page) -> bool {
            match page.entries.last() {
                Some(last) if !page.exhausted => {
                    self.next = last.sequence + 1;
                    true
                }
                _ => false,
            }
        }
    }

    /// A run over pages of `per` entries up to `total` whose reads each
    /// wait for a token on the returned sender; and its read counter.
    fn gated(per: u64, total: u64) -> (ReadAhead, Arc<AtomicUsize>, mpsc::Sender<()>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let (open, gate) = mpsc::channel();
        let mut pages = Numbers::new(per, total, &reads);
        pages.gate = Some(gate);
        (ReadAhead::start(pages, 0), reads, open)
    }

    fn sequences(page: &Page) -> Vec<u64> {
        page.entries.iter().map(|e| e.sequence).collect()
    }

    /// Waits (up to ten seconds) until `done` holds.
    async fn until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("timed out waiting until {what}");
    }

    /// Polls `future` once: its output, or `None` (and the future dropped).
    async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
        let mut future = std::pin::pin!(future);
        poll_fn(|cx| match future.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => Poll::Ready(None),
        })
        .await
    }

    /// Whether the run has ended with `pages` pages left to take.
    fn ended_with(ahead: &ReadAhead, pages: usize) -> bool {
        let state = lock(&ahead.shared);
        !state.running && state.ready.len() == pages
    }

    /// What [`read_like_a_stream`] saw.
    struct Read {
        sequences: Vec<u64>,
        most_held: usize,
        error: Option<Error>,
    }

    /// Takes pages the way a stream does: takes each page, and starts a new
    /// run after the last sequence seen whenever a run ends, until the
    /// pages are exhausted or a read fails.
    async fn read_like_a_stream(per: u64, total: u64, fail_at: Option<u64>) -> (Read, usize) {
        let reads = Arc::new(AtomicUsize::new(0));
        let mut read = Read {
            sequences: Vec::new(),
            most_held: 0,
            error: None,
        };
        let mut ahead: Option<ReadAhead> = None;
        loop {
            let run = ahead.get_or_insert_with(|| {
                let mut pages = Numbers::new(per, total, &reads);
                pages.next = read.sequences.last().map_or(1, |last| last + 1);
                pages.fail_at = fail_at;
                ReadAhead::start(pages, 0)
            });
            let taken = run.next().await;
            if run.is_idle() {
                ahead = None;
            }
            match taken {
                Ok((page, held)) => {
                    read.most_held = read.most_held.max(held);
                    read.sequences.extend(sequences(&page));
                    if page.exhausted {
                        return (read, reads.load(Ordering::SeqCst));
                    }
                }
                Err(error) => {
                    read.error = Some(error);
                    return (read, reads.load(Ordering::SeqCst));
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_arrive_in_order_each_read_once_and_two_at_most_held() {
        let (read, reads) = read_like_a_stream(10, 95, None).await;
        assert_eq!(read.sequences, (1..=95).collect::<Vec<_>>());
        assert_eq!(reads, 10);
        assert!(read.most_held <= 20, "held {}", read.most_held);
        assert!(read.error.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_goes_on_while_its_stream_waits() {
        let (mut ahead, reads, open) = gated(10, 95);
        let shared = ahead.shared.clone();
        let taken = Arc::new(AtomicUsize::new(0));
        let counter = taken.clone();
        let stream = tokio::spawn(async move {
            let mut seen = Vec::new();
            while !ahead.is_idle() {
                seen.extend(sequences(&ahead.next().await.unwrap().0));
                counter.fetch_add(1, Ordering::SeqCst);
            }
            seen
        });
        for page in 0..10 {
            // Let each read finish only once the stream waits for it.
            until("the stream waits", || {
                let state = lock(&shared);
                taken.load(Ordering::SeqCst) == page && state.waiting && state.ready.is_empty()
            })
            .await;
            open.send(()).unwrap();
        }
        // One run read every page: the stream never had to start another.
        assert_eq!(stream.await.unwrap(), (1..=95).collect::<Vec<_>>());
        assert_eq!(reads.load(Ordering::SeqCst), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_stops_after_a_page_when_its_stream_is_not_waiting() {
        let reads = Arc::new(AtomicUsize::new(0));
        let mut ahead = ReadAhead::start(Numbers::new(10, 100, &reads), 0);
        until("the page is handed over", || ended_with(&ahead, 1)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(!ahead.is_idle(), "the page waits to be taken");
        let (page, held) = ahead.next().await.unwrap();
        assert_eq!(sequences(&page), (1..=10).collect::<Vec<_>>());
        assert_eq!(held, 10);
        assert!(ahead.is_idle(), "the stream starts the next read");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_wait_leaves_two_pages_behind_and_no_more() {
        let (mut ahead, reads, open) = gated(10, 1000);
        // Wait, then give up before the page is read: the stream still
        // counts as waiting, holding nothing, but takes nothing more.
        assert!(poll_once(ahead.next()).await.is_none());
        drop(open);
        until("the run ends", || ended_with(&ahead, 2)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        let mut seen = Vec::new();
        while !ahead.is_idle() {
            seen.extend(sequences(&ahead.next().await.unwrap().0));
        }
        assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_read_ends_the_run_after_the_pages_before_it() {
        let (read, reads) = read_like_a_stream(10, 100, Some(31)).await;
        assert_eq!(read.sequences, (1..=30).collect::<Vec<_>>());
        assert!(
            matches!(read.error, Some(Error::Closed { .. })),
            "{:?}",
            read.error
        );
        assert_eq!(reads, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_a_read_reaches_the_stream() {
        struct Explodes;
        impl Pages for Explodes {
            fn read(&mut self) -> Result<Page> {
                panic!("read exploded")
            }
            fn advance(&mut self, _: &Page) -> bool {
                false
            }
        }
        let mut ahead = ReadAhead::start(Explodes, 0);
        let caught = tokio::spawn(async move { ahead.next().await }).await;
        let panic = caught.expect_err("the panic is resumed").into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"read exploded"));
    }

    #[tokio::test]
    async fn a_read_dropped_before_it_ran_hands_over_closed() {
        let (mut ahead, reader) = ReadAhead::pair(0);
        // What the blocking pool does with a queued read when it shuts down.
        drop(reader);
        let outcome = ahead.next().await;
        assert!(matches!(outcome, Err(Error::Closed { .. })), "{outcome:?}");
        assert!(ahead.is_idle());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_stream_stops_its_reader_at_the_next_page() {
        let (mut ahead, reads, open) = gated(10, u64::MAX);
        let shared = ahead.shared.clone();
        // Take the first page as a waiting stream: the reader goes on.
        let (first, ()) = tokio::join!(ahead.next(), async {
            until("the stream waits", || lock(&shared).waiting).await;
            open.send(()).unwrap();
        });
        assert_eq!(sequences(&first.unwrap().0), (1..=10).collect::<Vec<_>>());
        // A wait left behind, then the drop, while page 2 is being read.
        assert!(poll_once(ahead.next()).await.is_none());
        drop(ahead);
        drop(open);
        until("the reader lets go", || Arc::strong_count(&shared) == 1).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2, "no read after the drop");
        assert!(lock(&shared).ready.is_empty());
    }

    /// Loom models of the hand-over between a reader and its stream, run by
    /// `cargo xtask loom`: every interleaving of a reader finishing a page
    /// with its stream starting to wait, giving up a wait, taking a page,
    /// starting the next run or going away.
    #[cfg(loom)]
    mod loom_model {
        use std::task::Context;

        use loom::future::block_on;

        use super::*;

        /// Preemptions these small models explore at least: the drop model
        /// needs three to reach the page a reader without its `closed`
        /// check would read.
        const PREEMPTIONS: usize = 4;

        /// Runs `model` under loom with at least [`PREEMPTIONS`].
        fn check(model: impl Fn() + Sync + Send + 'static) {
            let mut builder = loom::model::Builder::new();
            builder.preemption_bound = Some(
                builder
                    .preemption_bound
                    .map_or(PREEMPTIONS, |bound| bound.max(PREEMPTIONS)),
            );
            builder.check(model);
        }

        /// A run of `pages` whose reader is a loom thread.
        fn start(pages: Numbers) -> (ReadAhead, loom::thread::JoinHandle<()>) {
            let (ahead, reader) = ReadAhead::pair(0);
            (ahead, loom::thread::spawn(move || reader.run(pages)))
        }

        /// Starts waiting for a page and gives up at once (a cancelled
        /// wait): the page, if one was there.
        fn wait_and_give_up(run: &mut ReadAhead) -> Option<Result<(Page, usize)>> {
            let mut wait = std::pin::pin!(run.next());
            let mut cx = Context::from_waker(Waker::noop());
            match wait.as_mut().poll(&mut cx) {
                Poll::Ready(taken) => Some(taken),
                Poll::Pending => None,
            }
        }

        /// Besides the page just taken, at most one more is untaken or
        /// being read: a stream holds two pages at most.
        fn assert_two_at_most(run: &ReadAhead) {
            let state = lock(&run.shared);
            let more = state.ready.len() + usize::from(state.running);
            assert!(more <= 1, "{more} pages besides the one taken");
        }

        #[test]
        fn loom_model_a_stream_takes_every_page_once_in_order_holding_two_at_most() {
            check(|| {
                let reads = Arc::new(AtomicUsize::new(0));
                let mut seen = Vec::new();
                let mut readers = Vec::new();
                let mut ahead: Option<ReadAhead> = None;
                // As a stream does: take each page, and start a new run
                // after the last sequence seen whenever a run ends. The
                // first wait is given up once.
                let mut give_up = true;
                loop {
                    let run = match &mut ahead {
                        Some(run) => run,
                        None => {
                            let mut pages = Numbers::new(1, 3, &reads);
                            pages.next = seen.last().map_or(1, |last| last + 1);
                            let (run, reader) = start(pages);
                            readers.push(reader);
                            ahead.insert(run)
                        }
                    };
                    let taken = match std::mem::take(&mut give_up) {
                        true => wait_and_give_up(run),
                        false => None,
                    };
                    let (page, _) = match taken {
                        Some(taken) => taken,
                        None => block_on(run.next()),
                    }
                    .unwrap();
                    assert_two_at_most(run);
                    if run.is_idle() {
                        ahead = None;
                    }
                    seen.extend(sequences(&page));
                    if page.exhausted {
                        break;
                    }
                }
                drop(ahead);
                for reader in readers {
                    reader.join().unwrap();
                }
                assert_eq!(seen, [1, 2, 3]);
                assert_eq!(reads.load(Ordering::SeqCst), 3, "each page read once");
            });
        }

        #[test]
        fn loom_model_a_dropped_stream_stops_its_reader() {
            check(|| {
                let reads = Arc::new(AtomicUsize::new(0));
                let (mut run, reader) = start(Numbers::new(1, 100, &reads));
                let (page, _) = block_on(run.next()).unwrap();
                assert_eq!(sequences(&page), [1]);
                // A wait given up, then the stream goes away: the reader may
                // be on page 2 and go on to page 3, but no further.
                let _ = wait_and_give_up(&mut run);
                drop(run);
                reader.join().unwrap();
                let read = reads.load(Ordering::SeqCst);
                assert!(read <= 3, "{read} pages read for a stream that left");
            });
        }
    }
}
