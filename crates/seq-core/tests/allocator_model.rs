//! Model test for the block allocator: random allocations, reservation-only
//! takes, background top-ups, failed persists, forward jumps and reloads
//! against a simple model of what has been issued and what is durable.
//!
//! Checked after every step:
//! * never reissued and contiguous: each range starts exactly where the model
//!   says the next tick is, which is above everything issued before;
//! * durable before used: every issued tick lies below the end of the last
//!   persisted block, and persisted blocks tile the tick space without gaps;
//! * bounded gap: reserved-but-unissued ticks (what a crash skips) never
//!   exceed one block (and so never `max(block_size, last request)`).

use proptest::prelude::*;
use seq_core::{BlockAllocator, BlockRecord, Error};

#[derive(Debug, Clone)]
enum Op {
    /// `allocate(n)`, persisting the returned block.
    Allocate(u64),
    /// `allocate(n)` on a copy whose block fails to persist: nothing changes.
    AllocateFailedPersist(u64),
    /// `take_reserved(n)` from the reservation only.
    TakeReserved(u64),
    /// `refill(low_watermark)` then persist and `extend`.
    Refill(u64),
    /// `refill` whose persist fails: nothing changes.
    RefillFailedPersist(u64),
    /// `advance_to_tick(next + delta)`, persisting the returned block.
    AdvanceBy(u64),
    /// `advance_to_tick(next - delta - 1)`: must be refused.
    AdvanceBackBy(u64),
    /// Crash and reload from the last persisted block.
    Reload,
}

fn op(block_size: u64) -> impl Strategy<Value = Op> {
    let n = 1..=block_size * 3;
    prop_oneof![
        4 => n.clone().prop_map(Op::Allocate),
        1 => n.clone().prop_map(Op::AllocateFailedPersist),
        2 => n.prop_map(Op::TakeReserved),
        2 => (0..=block_size).prop_map(Op::Refill),
        1 => (0..=block_size).prop_map(Op::RefillFailedPersist),
        1 => (0..=block_size * 2).prop_map(Op::AdvanceBy),
        1 => (0..=block_size).prop_map(Op::AdvanceBackBy),
        1 => Just(Op::Reload),
    ]
}

fn scenario() -> impl Strategy<Value = (u64, Vec<Op>)> {
    (1..=40u64).prop_flat_map(|block_size| {
        (
            Just(block_size),
            prop::collection::vec(op(block_size), 1..60),
        )
    })
}

/// What the model knows: the next tick to issue and the durable state.
struct Model {
    block_size: u64,
    /// The next tick the allocator must hand out.
    next: u64,
    /// One past the highest tick ever issued (or skipped on purpose).
    issued_end: u64,
    /// The last persisted block; the durable high-water mark is its end.
    persisted: Option<BlockRecord>,
}

impl Model {
    fn durable_end(&self) -> u64 {
        self.persisted.map_or(0, |b| b.end())
    }

    fn persist(&mut self, block: BlockRecord) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            block.base,
            self.durable_end(),
            "blocks must tile the tick space"
        );
        prop_assert!(block.size > 0);
        self.persisted = Some(block);
        Ok(())
    }

    fn issue(&mut self, first: u64, n: u64) -> Result<(), TestCaseError> {
        prop_assert_eq!(first, self.next, "ranges must be contiguous");
        prop_assert!(first >= self.issued_end, "tick {} reissued", first);
        self.next = first + n;
        self.issued_end = self.next;
        prop_assert!(
            self.issued_end <= self.durable_end(),
            "issued up to {} but durable only to {}",
            self.issued_end,
            self.durable_end()
        );
        Ok(())
    }

    fn check(&self, a: &BlockAllocator) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.peek(), self.next);
        prop_assert_eq!(a.next_tick(), self.next);
        prop_assert_eq!(a.reserved_end(), self.durable_end());
        prop_assert_eq!(a.remaining(), self.durable_end() - self.next);
        prop_assert!(
            a.remaining() <= self.block_size,
            "a crash now would skip {} ticks, more than one block of {}",
            a.remaining(),
            self.block_size
        );
        Ok(())
    }
}

/// Turns an unexpected allocator error into a test failure.
fn ok<T>(result: seq_core::Result<T>) -> Result<T, TestCaseError> {
    result.map_err(|e| TestCaseError::fail(format!("unexpected error: {e}")))
}

fn run(block_size: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut a = ok(BlockAllocator::new(block_size))?;
    let mut m = Model {
        block_size,
        next: 0,
        issued_end: 0,
        persisted: None,
    };
    for op in ops {
        match op {
            Op::Allocate(n) => {
                let got = ok(a.allocate(n))?;
                prop_assert_eq!(got.count, n);
                prop_assert_eq!(got.end(), got.first + n);
                match got.block {
                    Some(block) => {
                        prop_assert!(block.size >= block_size.min(n));
                        m.persist(block)?;
                    }
                    None => prop_assert!(got.end() <= m.durable_end()),
                }
                m.issue(got.first, n)?;
            }
            Op::AllocateFailedPersist(n) => {
                let mut attempt = a;
                ok(attempt.allocate(n))?;
                // The persist failed: the attempt is dropped, `a` is untouched.
            }
            Op::TakeReserved(n) => match a.take_reserved(n) {
                Some(first) => m.issue(first, n)?,
                None => prop_assert!(n > m.durable_end() - m.next),
            },
            Op::Refill(low) => {
                let remaining = a.remaining();
                match a.refill(low) {
                    Some(block) => {
                        prop_assert!(remaining <= low);
                        prop_assert_eq!(block.size, block_size - remaining);
                        m.persist(block)?;
                        ok(a.extend(block))?;
                        prop_assert_eq!(a.remaining(), block_size);
                    }
                    None => prop_assert!(remaining > low || remaining == block_size),
                }
            }
            Op::RefillFailedPersist(low) => {
                let _ = a.refill(low);
            }
            Op::AdvanceBy(delta) => {
                let target = m.next + delta;
                if let Some(block) = ok(a.advance_to_tick(target))? {
                    prop_assert_eq!(block.end(), target);
                    m.persist(block)?;
                }
                m.next = target;
                m.issued_end = target;
            }
            Op::AdvanceBackBy(delta) => {
                if let Some(target) = m.next.checked_sub(delta + 1) {
                    let before = a;
                    let refused =
                        matches!(a.advance_to_tick(target), Err(Error::NotForward { .. }));
                    prop_assert!(refused);
                    prop_assert_eq!(a, before);
                }
            }
            Op::Reload => {
                let gap = m.durable_end() - m.next;
                prop_assert!(gap <= block_size, "crash skips {} ticks", gap);
                a = ok(BlockAllocator::resume(m.persisted, block_size))?;
                m.next = m.durable_end();
                m.issued_end = m.next;
            }
        }
        m.check(&a)?;
    }
    Ok(())
}

proptest! {
    #[test]
    fn should_never_reissue_and_bound_the_gap((block_size, ops) in scenario()) {
        run(block_size, ops)?;
    }

    #[test]
    fn should_exhaust_at_end_of_tick_space_without_change(
        left in 0..20u64,
        block_size in 1..10u64,
        requests in prop::collection::vec(1..8u64, 1..20),
    ) {
        let start = BlockRecord::new(u64::MAX - left - 1, 1).unwrap();
        let mut a = BlockAllocator::resume(Some(start), block_size).unwrap();
        let mut next = a.peek();
        for n in requests {
            let before = a;
            match a.allocate(n) {
                Ok(got) => {
                    prop_assert_eq!(got.first, next);
                    next = got.first + n;
                    prop_assert!(a.reserved_end() >= next);
                }
                Err(Error::Exhausted { .. }) => {
                    prop_assert!(u64::MAX - next < n);
                    prop_assert_eq!(a, before);
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}
