//! A small deterministic random number generator for tests and workloads
//! (feature `test-util`): xorshift64*, seedable, no dependency. Not for
//! anything that needs real randomness.

/// xorshift64* over its `u64` state. The state must not be 0 (it would stay
/// 0); seed with an odd number, e.g. `TestRng(seed | 1)`.
#[derive(Debug, Clone)]
pub struct TestRng(pub u64);

impl TestRng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` must not be 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index in `0..len` (`len` must not be 0).
    pub fn index(&mut self, len: usize) -> usize {
        // A usize always fits in a u64 on supported targets, and the result
        // is below `len`.
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::TestRng;

    #[test]
    fn same_seed_gives_same_numbers_and_bounds_hold() {
        let (mut a, mut b) = (TestRng(7), TestRng(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.below(10) < 10);
            assert!(b.below(10) < 10);
            assert!(a.index(3) < 3);
            b.index(3);
        }
        assert_ne!(TestRng(7).next_u64(), TestRng(9).next_u64());
    }
}
