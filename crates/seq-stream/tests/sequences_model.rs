//! Model-based test: random operation sequences (next, next_n, peek,
//! advance_to, reopen, crash) against a real store on crash-simulating
//! storage, checked against a model that knows the next tick exactly while
//! the store runs and within one block after a restart.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use seq_storage::CrashStorage;
use seq_stream::{Error, SequenceOptions, Store};

#[derive(Debug, Clone)]
enum Op {
    Next,
    NextN(u64),
    Peek,
    /// Advance so that the next tick would be `model.lo + offset` (offset may
    /// point backwards of the real position after a restart).
    AdvanceBy(u64),
    Reopen,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Next),
        3 => (1u64..20).prop_map(Op::NextN),
        1 => Just(Op::Peek),
        2 => (0u64..30).prop_map(Op::AdvanceBy),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

/// The model: the real next tick lies in `lo..=hi`.
#[derive(Debug)]
struct Model {
    lo: u64,
    hi: u64,
    /// Ticks a restart may skip: one block, none when gap-free.
    gap: u64,
}

impl Model {
    fn saw(&mut self, tick: u64, count: u64) -> Result<(), TestCaseError> {
        prop_assert!(
            (self.lo..=self.hi).contains(&tick),
            "tick {tick} outside the model's {}..={}",
            self.lo,
            self.hi
        );
        self.lo = tick + count;
        self.hi = self.lo;
        Ok(())
    }
}

fn run(block_size: u64, increment: i64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let options = SequenceOptions {
            increment,
            block_size,
            ..SequenceOptions::default()
        };
        let def = options.validate().unwrap();
        let tick_of = |v: i64| u64::try_from((v - def.start) / def.increment).unwrap();
        let mut storage = CrashStorage::new();
        let mut store = Store::open(storage.clone()).unwrap();
        store.create_sequence("m", options).await.unwrap();
        let mut seq = store.sequence("m").await.unwrap();
        let mut model = Model {
            lo: 0,
            hi: 0,
            gap: if block_size == 1 { 0 } else { block_size },
        };
        for op in ops {
            match op {
                Op::Next => {
                    let v = seq.next().await.unwrap();
                    model.saw(tick_of(v), 1)?;
                }
                Op::NextN(n) => {
                    let range = seq.next_n(n).await.unwrap();
                    let ticks: Vec<u64> = range.values().map(tick_of).collect();
                    prop_assert_eq!(ticks.len() as u64, n);
                    prop_assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "not contiguous");
                    model.saw(ticks[0], n)?;
                }
                Op::Peek => {
                    let v = seq.peek().unwrap();
                    model.saw(tick_of(v), 0)?;
                }
                Op::AdvanceBy(offset) => {
                    // advance_to(v) makes the next tick `target`.
                    let target = model.lo + offset;
                    let Some(before) = target.checked_sub(1) else {
                        continue;
                    };
                    let value = def.value_at(before).unwrap();
                    match seq.advance_to(value).await {
                        Ok(()) => {
                            prop_assert!(target >= model.lo, "advanced backwards to {target}");
                            model.lo = target;
                            model.hi = target;
                        }
                        Err(Error::InvalidArgument { .. }) => {
                            prop_assert!(
                                target < model.hi,
                                "refused a forward advance to {target}"
                            );
                            // The real position is beyond the target.
                            model.lo = model.lo.max(target + 1);
                        }
                        Err(other) => prop_assert!(false, "advance_to: {other}"),
                    }
                }
                Op::Reopen | Op::Crash => {
                    drop(seq);
                    storage = if matches!(op, Op::Reopen) {
                        store.close().await.unwrap();
                        storage.close_and_reopen()
                    } else {
                        storage.crash()
                    };
                    drop(store);
                    store = Store::open(storage.clone()).unwrap();
                    seq = store.sequence("m").await.unwrap();
                    model.hi += model.gap;
                }
            }
        }
        store.close().await.unwrap();
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sequence_matches_model(
        block_size in prop_oneof![Just(1u64), 2u64..9],
        increment in prop_oneof![Just(1i64), Just(3), Just(-2)],
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run(block_size, increment, ops)?;
    }
}
