//! Model test for the commit oracle: random mixes of assigned (0) and
//! supplied numbers stay strictly increasing, and refused numbers change
//! nothing.

use proptest::prelude::*;
use seq_core::{CommitOracle, Error};

proptest! {
    #[test]
    fn should_hand_out_strictly_increasing_numbers(
        recovered in prop_oneof![0..10u64, Just(u64::MAX - 5)],
        requests in prop::collection::vec(prop_oneof![Just(0u64), 0..40u64, any::<u64>()], 1..50),
    ) {
        let mut oracle = CommitOracle::new(recovered);
        let mut max = recovered;
        for requested in requests {
            match oracle.assign(requested) {
                Ok(n) => {
                    prop_assert!(n > max);
                    prop_assert!(requested == 0 || n == requested);
                    prop_assert!(requested != 0 || n == max + 1);
                    max = n;
                }
                Err(Error::InvalidSeqnum { provided, current }) => {
                    prop_assert_eq!((provided, current), (requested, max));
                    prop_assert!(requested != 0 && requested <= max);
                }
                Err(Error::Exhausted { .. }) => prop_assert!(requested == 0 && max == u64::MAX),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
            prop_assert_eq!(oracle.current(), max);
        }
    }
}
