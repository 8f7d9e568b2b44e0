//! The pure rules of seq: block math, sequence definitions, sequence-key
//! suffixes, monotonicity rules and order-preserving key codecs.
//!
//! Nothing here does I/O, reads a clock, spawns a thread or draws a random
//! number. State machines change memory and hand back *what to persist*; the
//! caller persists it (the raft-rs style). Every function is deterministic.
//!
//! ```
//! use seq_core::{BlockAllocator, BlockRecord, SequenceOptions};
//!
//! # fn main() -> seq_core::Result<()> {
//! // A sequence counting 10, 20, 30, ... reserving 100 ticks per block.
//! let def = SequenceOptions {
//!     start: Some(10),
//!     increment: 10,
//!     block_size: 100,
//!     ..SequenceOptions::default()
//! }
//! .validate()?;
//!
//! let mut alloc = BlockAllocator::new(def.block_size)?;
//! let got = alloc.allocate(3)?;
//! // The first allocation reserves a block the caller must persist first.
//! let block = got.block.expect("a fresh allocator has nothing reserved");
//! assert_eq!(block, BlockRecord::new(0, 100)?);
//! let stored = block.encode(); // ... write `stored` durably, then use the range.
//! let values: Vec<i64> = (got.first..got.first + got.count)
//!     .map(|tick| def.value_at(tick))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(values, [10, 20, 30]);
//!
//! // After a restart, allocation resumes after the persisted block: the
//! // unissued rest of it is skipped (at most one block).
//! let mut reopened = BlockAllocator::resume(Some(BlockRecord::decode(&stored)?), 100)?;
//! assert_eq!(def.value_at(reopened.allocate(1)?.first)?, 1010);
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! * [`frame`]: `[version][body][crc32]` framing for every stored record.
//! * [`block`], [`allocator`]: block records and the block allocator.
//! * [`sequence`]: PostgreSQL-style sequence options and tick → value mapping.
//! * [`seqkey`]: Oxia-style sequence-key suffixes and the counter record.
//! * [`oracle`], [`expected`], [`clock`]: monotonicity rules for commit
//!   numbers, segment sequences and timestamps.
//! * [`name`]: name validation.
//! * [`keys`], [`offset`]: order-preserving key codecs and the space offset.
//!
//! # Choices beyond the agreed API
//!
//! * [`BlockRecord::new`] with `size == 0` is [`Error::InvalidOptions`] (an
//!   overflowing end is [`Error::Exhausted`]); decoding such a record is
//!   [`Error::Corrupt`].
//! * [`BlockAllocator::allocate`] clamps a new block to the end of the `u64`
//!   tick space when the request fits but a full `block_size` would not. The
//!   usable ticks are `0..u64::MAX` (a range end must fit in a `u64`).
//! * [`BlockAllocator::take_reserved`] with `n == 0` returns `None`.
//! * [`BlockAllocator::extend`] with a block that does not start at
//!   [`BlockAllocator::reserved_end`] is [`Error::InvalidOptions`].
//! * [`BlockAllocator::advance_to_tick`] to the current tick is a no-op.
//! * [`SequenceDef`]'s fields are public, so its methods re-check the
//!   definition and return [`Error::InvalidOptions`] for a hand-built invalid
//!   one; `min == max` is allowed (PostgreSQL rejects it).
//! * [`SpaceOffset`] also derives `Default` (the "from the beginning" offset).
//! * Extra items: [`frame::OVERHEAD`], `VERSION` constants,
//!   [`Allocation::end`], [`keys::prefix_upper_bound`],
//!   [`keys::KeyBuilder::as_bytes`], [`keys::KeyReader::remaining`],
//!   [`keys::keyspace::ALL`], [`name::MAX_NAME_LEN`], [`seqkey::SEPARATOR`].

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod allocator;
pub mod block;
pub mod clock;
pub mod error;
mod escape;
pub mod expected;
pub mod frame;
pub mod keys;
pub mod name;
pub mod offset;
pub mod oracle;
pub mod seqkey;
pub mod sequence;

pub use allocator::{Allocation, BlockAllocator};
pub use block::BlockRecord;
pub use clock::{clamp_timestamp, next_group_timestamp};
pub use error::{Error, Result};
pub use expected::{ExpectedSequence, check_record_sequence};
pub use keys::{KeyBuilder, KeyReader, keyspace, prefix_of};
pub use name::validate_name;
pub use offset::SpaceOffset;
pub use oracle::CommitOracle;
pub use sequence::{SequenceDef, SequenceOptions};
