//! The store-wide commit oracle (SlateDB `WriteOptions::seqnum` style).

use crate::error::{Error, Result};

/// Hands out strictly increasing commit numbers; the first is 1.
///
/// A request of `0` means "assign the next one"; a non-zero request must be
/// strictly greater than the current max and makes the oracle jump there, so
/// supplied and assigned numbers mix freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitOracle {
    current: u64,
}

impl CommitOracle {
    /// An oracle whose max is `recovered_max` (0 for an empty store).
    pub fn new(recovered_max: u64) -> Self {
        Self {
            current: recovered_max,
        }
    }

    /// The highest number handed out so far (0 if none).
    pub fn current(&self) -> u64 {
        self.current
    }

    /// Takes the commit number for one write.
    ///
    /// `0` gives `current + 1`; `requested > current` gives `requested`;
    /// anything else is [`Error::InvalidSeqnum`]. Running past `u64::MAX` is
    /// [`Error::Exhausted`]. On error nothing changes.
    pub fn assign(&mut self, requested: u64) -> Result<u64> {
        let number = if requested == 0 {
            self.current
                .checked_add(1)
                .ok_or_else(|| Error::exhausted("commit numbers reached u64::MAX"))?
        } else if requested > self.current {
            requested
        } else {
            return Err(Error::InvalidSeqnum {
                provided: requested,
                current: self.current,
            });
        };
        self.current = number;
        Ok(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_assign_from_one() {
        let mut o = CommitOracle::default();
        assert_eq!(o.assign(0).unwrap(), 1);
        assert_eq!(o.assign(0).unwrap(), 2);
    }

    #[test]
    fn should_jump_to_supplied_seqnum_and_continue_above() {
        let mut o = CommitOracle::new(3);
        assert_eq!(o.assign(10).unwrap(), 10);
        assert_eq!(o.assign(0).unwrap(), 11);
        assert_eq!(o.current(), 11);
    }

    #[test]
    fn should_reject_seqnum_not_above_max() {
        let mut o = CommitOracle::new(7);
        for provided in [5, 7] {
            let err = o.assign(provided).unwrap_err();
            assert_eq!(
                err,
                Error::InvalidSeqnum {
                    provided,
                    current: 7
                }
            );
        }
        assert_eq!(
            o.assign(5).unwrap_err().to_string(),
            "invalid sequence number: must be greater than the current max (provided=5, current=7)"
        );
        assert_eq!(o.current(), 7);
    }

    #[test]
    fn should_exhaust_at_u64_max() {
        let mut o = CommitOracle::new(u64::MAX - 1);
        assert_eq!(o.assign(0).unwrap(), u64::MAX);
        assert!(matches!(o.assign(0), Err(Error::Exhausted { .. })));
        assert!(matches!(
            o.assign(u64::MAX),
            Err(Error::InvalidSeqnum { .. })
        ));
        assert_eq!(o.current(), u64::MAX);
    }
}
