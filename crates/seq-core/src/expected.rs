//! Expected-sequence rules for appends to a segment.

use crate::error::{Error, Result};

/// What a producer expects a segment's last sequence to be before its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedSequence {
    /// No expectation.
    Any,
    /// The segment must be empty (its last sequence is 0).
    NoStream,
    /// The segment's last sequence must be exactly this.
    Exact(u64),
}

impl ExpectedSequence {
    /// Checks the expectation against the segment's last sequence (0 when
    /// empty); a miss is [`Error::SequenceMismatch`] with `actual: last`.
    pub fn check(self, last: u64) -> Result<()> {
        let expected = match self {
            ExpectedSequence::Any => return Ok(()),
            ExpectedSequence::NoStream => 0,
            ExpectedSequence::Exact(n) => n,
        };
        if last == expected {
            Ok(())
        } else {
            Err(Error::SequenceMismatch {
                expected,
                actual: last,
            })
        }
    }
}

/// The sequence a record gets: `provided == 0` takes `next`; otherwise it
/// must equal `next`, else [`Error::SequenceMismatch`] with
/// `expected: next, actual: provided`.
pub fn check_record_sequence(provided: u64, next: u64) -> Result<u64> {
    if provided == 0 || provided == next {
        Ok(next)
    } else {
        Err(Error::SequenceMismatch {
            expected: next,
            actual: provided,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_accept_anything_with_any() {
        assert!(ExpectedSequence::Any.check(0).is_ok());
        assert!(ExpectedSequence::Any.check(99).is_ok());
    }

    #[test]
    fn should_require_empty_segment_with_no_stream() {
        assert!(ExpectedSequence::NoStream.check(0).is_ok());
        assert_eq!(
            ExpectedSequence::NoStream.check(4),
            Err(Error::SequenceMismatch {
                expected: 0,
                actual: 4
            })
        );
    }

    #[test]
    fn should_reject_wrong_expected_sequence() {
        assert!(ExpectedSequence::Exact(3).check(3).is_ok());
        assert_eq!(
            ExpectedSequence::Exact(3).check(5),
            Err(Error::SequenceMismatch {
                expected: 3,
                actual: 5
            })
        );
    }

    #[test]
    fn should_assign_next_for_zero_record_sequence() {
        assert_eq!(check_record_sequence(0, 8).unwrap(), 8);
        assert_eq!(check_record_sequence(8, 8).unwrap(), 8);
    }

    #[test]
    fn should_reject_record_sequence_other_than_next() {
        for provided in [7, 9] {
            assert_eq!(
                check_record_sequence(provided, 8),
                Err(Error::SequenceMismatch {
                    expected: 8,
                    actual: provided
                })
            );
        }
    }
}
