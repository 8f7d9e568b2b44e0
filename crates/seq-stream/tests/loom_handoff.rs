//! Loom models of the handoff between producers and the single writer.
//!
//! Run with `cargo xtask loom` (which sets `RUSTFLAGS="--cfg loom"` and a
//! separate target directory). The commit itself is modelled as one atomic
//! step; what is checked is the handoff the real writer uses: every request
//! is acknowledged exactly once, acknowledged numbers are contiguous and
//! strictly increasing in commit order, nothing is acknowledged before its
//! commit, and closing with requests queued fails them instead of losing
//! them.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use seq_core::CommitOracle;
use seq_stream::handoff::{Gather, Handoff};

/// What a request's submitter eventually learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Committed with this number.
    Committed(u64),
    /// Failed because the store closed first.
    Closed,
}

/// One queued request: who sent it, and the slot its answer lands in.
struct Request {
    producer: usize,
    slot: Arc<Mutex<Vec<Outcome>>>,
}

impl Request {
    fn answer(&self, outcome: Outcome) {
        self.slot.lock().unwrap().push(outcome);
    }
}

/// The modelled writer: numbers each group with the real oracle, commits it
/// in one atomic step, then acknowledges in order.
fn writer(
    handoff: Arc<Handoff<Request>>,
    committed: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<(usize, u64)>>>,
) {
    writer_gathering(handoff, committed, log, None, 1);
}

/// [`writer`], holding each group open as `gather` says (the real writer's
/// pacing) and numbering its requests as they are taken, the way the
/// single-writer engine prepares a group while it gathers: the first
/// requests, then each arrival (a chunk of one) until the group is
/// complete; `chunk` arrivals wake it (`usize::MAX`: only the wanted
/// count, as in multi-writer mode, which gathers the whole group first).
/// Loom has no clock: each timed wait may run out at any moment.
fn writer_gathering(
    handoff: Arc<Handoff<Request>>,
    committed: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<(usize, u64)>>>,
    gather: Option<Gather>,
    chunk: usize,
) {
    let mut oracle = CommitOracle::new(0);
    while let Some((first, mut gathering)) = handoff.start_group(2, gather, chunk) {
        assert!(!first.is_empty(), "the writer was handed an empty group");
        let mut numbered: Vec<(Request, u64)> = Vec::new();
        let mut taken = first;
        while !taken.is_empty() {
            for request in taken {
                let number = oracle.assign(0).unwrap();
                numbered.push((request, number));
            }
            taken = handoff.more(&mut gathering);
        }
        assert!(numbered.len() <= 2, "a group exceeded its maximum");
        let top = numbered.last().map(|(_, n)| *n).unwrap();
        // The atomic commit of the whole group.
        committed.store(top, Ordering::SeqCst);
        for (request, number) in numbered {
            assert!(
                committed.load(Ordering::SeqCst) >= number,
                "acknowledged before commit"
            );
            log.lock().unwrap().push((request.producer, number));
            request.answer(Outcome::Committed(number));
        }
    }
}

fn producer(
    handoff: &Handoff<Request>,
    producer: usize,
    count: usize,
) -> Vec<Arc<Mutex<Vec<Outcome>>>> {
    (0..count)
        .map(|_| {
            let slot = Arc::new(Mutex::new(Vec::new()));
            let request = Request {
                producer,
                slot: slot.clone(),
            };
            if let Err(refused) = handoff.push(request) {
                refused.answer(Outcome::Closed);
            }
            slot
        })
        .collect()
}

fn exactly_one(slot: &Arc<Mutex<Vec<Outcome>>>) -> Outcome {
    let answers = slot.lock().unwrap();
    assert_eq!(
        answers.len(),
        1,
        "a request was answered {} times",
        answers.len()
    );
    answers[0]
}

fn check_numbers(outcomes: &[Vec<Outcome>]) {
    let mut all = Vec::new();
    for per_producer in outcomes {
        let mine: Vec<u64> = per_producer
            .iter()
            .filter_map(|o| match o {
                Outcome::Committed(n) => Some(*n),
                Outcome::Closed => None,
            })
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "a producer's numbers went backwards: {mine:?}"
        );
        all.extend(mine);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=all.len() as u64).collect();
    assert_eq!(
        all, expected,
        "acknowledged numbers are not contiguous from 1"
    );
}

/// Two producers (one request, then `second` requests) and a writer that
/// gathers as `gather` says; the store closes once both producers are done.
/// Every request is answered once, numbers are contiguous and strictly
/// increasing in commit order, and nothing is acknowledged before commit.
fn two_producers_then_close(gather: Option<Gather>, chunk: usize, second: usize) {
    let handoff = Arc::new(Handoff::new());
    let committed = Arc::new(AtomicU64::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer_thread = {
        let (handoff, committed, log) = (handoff.clone(), committed.clone(), log.clone());
        thread::spawn(move || writer_gathering(handoff, committed, log, gather, chunk))
    };
    let second_thread = {
        let handoff = handoff.clone();
        thread::spawn(move || producer(&handoff, 1, second))
    };
    let first_slots = producer(&handoff, 0, 1);
    let second_slots = second_thread.join().unwrap();
    // Everything pushed before close must be answered by the writer.
    for request in handoff.close() {
        request.answer(Outcome::Closed);
    }
    writer_thread.join().unwrap();

    let outcomes: Vec<Vec<Outcome>> = [first_slots, second_slots]
        .iter()
        .map(|slots| slots.iter().map(exactly_one).collect())
        .collect();
    check_numbers(&outcomes);
    // The commit log is in commit order and strictly increasing.
    let log = log.lock().unwrap();
    assert!(log.windows(2).all(|w| w[0].1 < w[1].1));
    assert_eq!(committed.load(Ordering::SeqCst), log.len() as u64);
}

#[test]
fn every_request_is_acknowledged_once_in_commit_order() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| two_producers_then_close(None, 1, 2));
}

/// The gather of the loom models: loom has no clock, so each timed wait
/// may run out at any moment; the long periods only keep real time out of
/// the model.
fn gather_three() -> Gather {
    let long = std::time::Duration::from_secs(3600);
    Gather {
        want: 3,
        quiet: long,
        limit: long,
    }
}

#[test]
fn a_gathering_writer_acknowledges_every_request_once_and_loses_none_on_close() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| two_producers_then_close(Some(gather_three()), usize::MAX, 1));
}

#[test]
fn a_writer_taking_arrivals_while_it_prepares_acknowledges_each_once_and_loses_none() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| two_producers_then_close(Some(gather_three()), 1, 1));
}

#[test]
fn close_with_pending_requests_fails_them_and_loses_none() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let handoff = Arc::new(Handoff::new());
        let committed = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer_thread = {
            let (handoff, committed, log) = (handoff.clone(), committed.clone(), log.clone());
            thread::spawn(move || writer(handoff, committed, log))
        };
        let producer_thread = {
            let handoff = handoff.clone();
            thread::spawn(move || producer(&handoff, 0, 2))
        };
        // Close races with the producer and the writer.
        for request in handoff.close() {
            request.answer(Outcome::Closed);
        }
        let slots = producer_thread.join().unwrap();
        writer_thread.join().unwrap();

        let outcomes: Vec<Outcome> = slots.iter().map(exactly_one).collect();
        check_numbers(&[outcomes.clone()]);
        // Once one request is refused, every later one is too (close is final).
        let first_closed = outcomes.iter().position(|o| *o == Outcome::Closed);
        if let Some(i) = first_closed {
            assert!(outcomes[i..].iter().all(|o| *o == Outcome::Closed));
        }
        assert_eq!(
            log.lock().unwrap().len() as u64,
            committed.load(Ordering::SeqCst)
        );
    });
}
