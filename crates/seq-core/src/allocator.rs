//! The block allocator: hands out contiguous tick ranges from durable
//! reservations and says which block record must be persisted first.
//!
//! It is a pure state machine over `u64` ticks. It never writes: when a
//! request needs more than the current reservation holds, [`Allocation::block`]
//! carries the record the caller must make durable *before* using the range.
//! The allocator is `Copy`, so a caller can try an operation on a copy and
//! commit the copy only after the block is on disk.
//!
//! Gap bound: reserved-but-unissued ticks never exceed
//! `max(block_size, last request)` after [`allocate`](BlockAllocator::allocate),
//! and never exceed `block_size` after [`refill`](BlockAllocator::refill), so a
//! crash (which resumes at the end of the last persisted block) skips at most
//! that many ticks.

use crate::block::BlockRecord;
use crate::error::{Error, Result};

/// Block allocator state: the next tick, the end of the durable reservation
/// and the block size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockAllocator {
    next: u64,
    end: u64,
    block_size: u64,
}

/// The outcome of [`BlockAllocator::allocate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// First tick of the contiguous range `[first, first + count)`.
    pub first: u64,
    /// Number of ticks in the range.
    pub count: u64,
    /// A new block record that must be durable before any tick of the range
    /// is used; `None` when the existing reservation covered the request.
    pub block: Option<BlockRecord>,
}

impl Allocation {
    /// One past the last tick of the range.
    pub fn end(&self) -> u64 {
        // `allocate` guarantees `first + count` fits.
        self.first.saturating_add(self.count)
    }
}

impl BlockAllocator {
    /// A fresh allocator: nothing reserved, the first tick is 0.
    ///
    /// `block_size == 0` is [`Error::InvalidOptions`].
    pub fn new(block_size: u64) -> Result<Self> {
        Self::resume(None, block_size)
    }

    /// An allocator reloaded from the last persisted block: allocation starts
    /// at `last.end()` (0 when nothing was ever persisted). Whatever was left
    /// of that block before the restart is skipped.
    pub fn resume(last: Option<BlockRecord>, block_size: u64) -> Result<Self> {
        if block_size == 0 {
            return Err(Error::invalid_options("block_size must be at least 1"));
        }
        let end = last.map_or(0, |b| b.end());
        Ok(Self {
            next: end,
            end,
            block_size,
        })
    }

    /// An allocator holding the durable reservation `[start, end)`, nothing of
    /// it handed out yet: used when a reservation does not continue the
    /// previous one (a store sharing its sequence with other writers gets
    /// whichever block is next store-wide). `start == end` is an empty
    /// reservation whose next tick is `start`.
    ///
    /// `block_size == 0` or `start > end` is [`Error::InvalidOptions`].
    pub fn reserved(start: u64, end: u64, block_size: u64) -> Result<Self> {
        if block_size == 0 {
            return Err(Error::invalid_options("block_size must be at least 1"));
        }
        if start > end {
            return Err(Error::invalid_options(format!(
                "a reservation cannot start at {start} after its end {end}"
            )));
        }
        Ok(Self {
            next: start,
            end,
            block_size,
        })
    }

    /// Takes `n` contiguous ticks.
    ///
    /// The rest of the current reservation is used first; when it is short, a
    /// new block `{ base: reserved_end, size: max(n - remaining, block_size) }`
    /// (clamped to the end of the tick space if only the block size would
    /// overflow it) is returned in [`Allocation::block`] and must be durable
    /// before the range is used.
    ///
    /// `n == 0` is [`Error::InvalidOptions`]; a range past the `u64` tick space
    /// is [`Error::Exhausted`]. On error the state is unchanged.
    #[inline]
    pub fn allocate(&mut self, n: u64) -> Result<Allocation> {
        if let Some(first) = self.take_reserved(n) {
            return Ok(Allocation {
                first,
                count: n,
                block: None,
            });
        }
        self.allocate_with_block(n)
    }

    #[cold]
    fn allocate_with_block(&mut self, n: u64) -> Result<Allocation> {
        if n == 0 {
            return Err(Error::invalid_options("cannot allocate 0 ticks"));
        }
        let first = self.next;
        let needed = n - self.remaining();
        let Some(range_end) = first.checked_add(n) else {
            return Err(Error::exhausted(format!(
                "{n} ticks from tick {first} run past the u64 tick space"
            )));
        };
        let room = u64::MAX - self.end;
        let size = needed.max(self.block_size).min(room);
        let block = BlockRecord::new(self.end, size)?;
        self.end = block.end();
        self.next = range_end;
        Ok(Allocation {
            first,
            count: n,
            block: Some(block),
        })
    }

    /// The next tick that would be handed out; consumes nothing.
    pub fn peek(&self) -> u64 {
        self.next
    }

    /// Same as [`peek`](Self::peek).
    pub fn next_tick(&self) -> u64 {
        self.next
    }

    /// End of the durable reservation: ticks below it may have been handed out.
    pub fn reserved_end(&self) -> u64 {
        self.end
    }

    /// Ticks reserved but not yet handed out.
    pub fn remaining(&self) -> u64 {
        self.end - self.next
    }

    /// The configured block size.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Hands out `n` ticks only from the existing reservation and returns the
    /// first one; `None` (and nothing changes) when fewer than `n` remain or
    /// `n == 0`.
    #[inline]
    pub fn take_reserved(&mut self, n: u64) -> Option<u64> {
        if n == 0 || n > self.end - self.next {
            return None;
        }
        let first = self.next;
        self.next += n;
        Some(first)
    }

    /// The top-up block to persist when at most `low_watermark` ticks remain:
    /// `{ base: reserved_end, size: block_size - remaining }` (clamped to the
    /// tick space), so reserved-but-unissued ticks never exceed one block.
    /// `None` when above the watermark or when the top-up would be empty.
    ///
    /// Nothing changes until the caller persists the block and calls
    /// [`extend`](Self::extend).
    pub fn refill(&self, low_watermark: u64) -> Option<BlockRecord> {
        let remaining = self.remaining();
        if remaining > low_watermark {
            return None;
        }
        let size = self
            .block_size
            .saturating_sub(remaining)
            .min(u64::MAX - self.end);
        BlockRecord::new(self.end, size).ok()
    }

    /// Adds a persisted block to the reservation. The block must start exactly
    /// at [`reserved_end`](Self::reserved_end) and be well formed, else
    /// [`Error::InvalidOptions`] and nothing changes.
    pub fn extend(&mut self, block: BlockRecord) -> Result<()> {
        if block.base != self.end {
            return Err(Error::invalid_options(format!(
                "block at {} does not continue the reservation ending at {}",
                block.base, self.end
            )));
        }
        let block = BlockRecord::new(block.base, block.size)?;
        self.end = block.end();
        Ok(())
    }

    /// Moves the next tick forward to `tick` (ticks below it are skipped).
    ///
    /// `tick < peek()` is [`Error::NotForward`]; `tick == peek()` changes
    /// nothing. When `tick` lies beyond the reservation the returned block
    /// `{ base: reserved_end, size: tick - reserved_end }` must be persisted so
    /// that a restart resumes at `tick`, not below it.
    pub fn advance_to_tick(&mut self, tick: u64) -> Result<Option<BlockRecord>> {
        if tick < self.next {
            return Err(Error::NotForward {
                reason: format!("tick {tick} is below the next tick {}", self.next),
            });
        }
        let block = if tick > self.end {
            let block = BlockRecord::new(self.end, tick - self.end)?;
            self.end = tick;
            Some(block)
        } else {
            None
        };
        self.next = tick;
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_hands_out_exactly_its_range() {
        let mut alloc = BlockAllocator::reserved(100, 103, 8).unwrap();
        assert_eq!(alloc.peek(), 100);
        assert_eq!(alloc.remaining(), 3);
        assert_eq!(alloc.take_reserved(2), Some(100));
        assert_eq!(alloc.take_reserved(2), None);
        assert_eq!(alloc.take_reserved(1), Some(102));
        assert_eq!(alloc.remaining(), 0);
        assert!(BlockAllocator::reserved(5, 4, 8).is_err());
        assert!(BlockAllocator::reserved(4, 5, 0).is_err());
        let empty = BlockAllocator::reserved(7, 7, 8).unwrap();
        assert_eq!((empty.peek(), empty.reserved_end()), (7, 7));
    }

    fn block(base: u64, size: u64) -> BlockRecord {
        BlockRecord::new(base, size).unwrap()
    }

    #[test]
    fn should_reject_zero_block_size() {
        assert!(matches!(
            BlockAllocator::new(0),
            Err(Error::InvalidOptions { .. })
        ));
    }

    #[test]
    fn should_reserve_first_block_on_first_allocation() {
        let mut a = BlockAllocator::new(10).unwrap();
        let got = a.allocate(1).unwrap();
        assert_eq!(got.first, 0);
        assert_eq!(got.block, Some(block(0, 10)));
        assert_eq!(a.peek(), 1);
        assert_eq!(a.remaining(), 9);
    }

    #[test]
    fn should_not_persist_within_block() {
        let mut a = BlockAllocator::new(10).unwrap();
        a.allocate(1).unwrap();
        for i in 1..10 {
            let got = a.allocate(1).unwrap();
            assert_eq!((got.first, got.block), (i, None));
        }
    }

    #[test]
    fn should_span_blocks_contiguously() {
        let mut a = BlockAllocator::new(10).unwrap();
        a.allocate(7).unwrap();
        let got = a.allocate(5).unwrap();
        assert_eq!(got.first, 7);
        assert_eq!(got.count, 5);
        // 3 left in the old block, 2 needed, a full block reserved.
        assert_eq!(got.block, Some(block(10, 10)));
        assert_eq!(a.peek(), 12);
        assert_eq!(a.reserved_end(), 20);
    }

    #[test]
    fn should_reserve_request_larger_than_block() {
        let mut a = BlockAllocator::new(10).unwrap();
        a.allocate(4).unwrap();
        let got = a.allocate(100).unwrap();
        assert_eq!(got.first, 4);
        assert_eq!(got.block, Some(block(10, 94)));
        assert_eq!(a.remaining(), 0);
    }

    #[test]
    fn should_not_consume_on_peek() {
        let mut a = BlockAllocator::new(10).unwrap();
        assert_eq!(a.peek(), 0);
        assert_eq!(a.next_tick(), 0);
        assert_eq!(a.allocate(1).unwrap().first, 0);
    }

    #[test]
    fn should_reject_zero_allocation() {
        let mut a = BlockAllocator::new(10).unwrap();
        let before = a;
        assert!(matches!(a.allocate(0), Err(Error::InvalidOptions { .. })));
        assert_eq!(a, before);
    }

    #[test]
    fn should_resume_after_last_block_on_reopen() {
        let mut a = BlockAllocator::resume(Some(block(100, 10)), 10).unwrap();
        assert_eq!(a.peek(), 110);
        let got = a.allocate(1).unwrap();
        assert_eq!(got.first, 110);
        assert_eq!(got.block, Some(block(110, 10)));
    }

    #[test]
    fn should_exhaust_past_u64_without_wrapping() {
        let mut a = BlockAllocator::resume(Some(block(u64::MAX - 5, 5)), 10).unwrap();
        let before = a;
        assert!(matches!(a.allocate(1), Err(Error::Exhausted { .. })));
        assert_eq!(a, before);
    }

    #[test]
    fn should_clamp_last_block_to_tick_space() {
        let mut a = BlockAllocator::resume(Some(block(u64::MAX - 15, 10)), 10).unwrap();
        let got = a.allocate(2).unwrap();
        assert_eq!(got.block, Some(block(u64::MAX - 5, 5)));
        assert_eq!(a.allocate(3).unwrap().first, u64::MAX - 3);
        assert!(matches!(a.allocate(1), Err(Error::Exhausted { .. })));
    }

    #[test]
    fn should_take_only_from_reservation() {
        let mut a = BlockAllocator::new(4).unwrap();
        assert_eq!(a.take_reserved(1), None);
        a.extend(block(0, 4)).unwrap();
        assert_eq!(a.take_reserved(3), Some(0));
        assert_eq!(a.take_reserved(2), None);
        assert_eq!(a.take_reserved(0), None);
        assert_eq!(a.take_reserved(1), Some(3));
    }

    #[test]
    fn should_refill_to_one_block_at_low_watermark() {
        let mut a = BlockAllocator::new(10).unwrap();
        assert_eq!(a.refill(2), Some(block(0, 10)));
        a.extend(block(0, 10)).unwrap();
        assert_eq!(a.refill(2), None);
        a.take_reserved(8).unwrap();
        assert_eq!(a.refill(2), Some(block(10, 8)));
        a.extend(block(10, 8)).unwrap();
        assert_eq!(a.remaining(), 10);
    }

    #[test]
    fn should_not_refill_past_one_block() {
        let mut a = BlockAllocator::new(10).unwrap();
        a.extend(block(0, 10)).unwrap();
        assert_eq!(a.refill(u64::MAX), None);
    }

    #[test]
    fn should_reject_extend_with_gap_or_overlap() {
        let mut a = BlockAllocator::new(10).unwrap();
        a.extend(block(0, 10)).unwrap();
        let before = a;
        assert!(a.extend(block(11, 10)).is_err());
        assert!(a.extend(block(5, 10)).is_err());
        assert!(a.extend(BlockRecord { base: 10, size: 0 }).is_err());
        assert_eq!(a, before);
    }

    #[test]
    fn should_advance_forward_within_reservation() {
        let mut a = BlockAllocator::new(10).unwrap();
        a.allocate(1).unwrap();
        assert_eq!(a.advance_to_tick(5).unwrap(), None);
        assert_eq!(a.allocate(1).unwrap().first, 5);
    }

    #[test]
    fn should_persist_block_when_advancing_past_reservation() {
        let mut a = BlockAllocator::new(10).unwrap();
        a.allocate(1).unwrap();
        let b = a.advance_to_tick(25).unwrap();
        assert_eq!(b, Some(block(10, 15)));
        // A restart from that block resumes exactly at the advanced tick.
        let resumed = BlockAllocator::resume(b, 10).unwrap();
        assert_eq!(resumed.peek(), 25);
        assert_eq!(a.peek(), 25);
        assert_eq!(a.allocate(1).unwrap().block, Some(block(25, 10)));
    }

    #[test]
    fn should_reject_advance_backwards() {
        let mut a = BlockAllocator::new(10).unwrap();
        a.allocate(5).unwrap();
        let before = a;
        assert!(matches!(
            a.advance_to_tick(4),
            Err(Error::NotForward { .. })
        ));
        assert_eq!(a, before);
        assert_eq!(a.advance_to_tick(5).unwrap(), None);
    }
}
