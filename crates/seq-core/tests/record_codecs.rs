//! Property tests for the framed records: block records and sequence
//! definitions round-trip, and block records sort by `(base, size)`.

use proptest::prelude::*;
use seq_core::{BlockRecord, SequenceDef, SequenceOptions};

fn block() -> impl Strategy<Value = BlockRecord> {
    (
        prop_oneof![0..5u64, any::<u64>()],
        prop_oneof![1..5u64, any::<u64>()],
    )
        .prop_filter_map("block must fit in the tick space", |(base, size)| {
            BlockRecord::new(base, size).ok()
        })
}

fn bound() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(prop_oneof![
        -5..5i64,
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX)
    ])
}

fn definition() -> impl Strategy<Value = SequenceDef> {
    (
        bound(),
        prop_oneof![-3..3i64, any::<i64>()],
        bound(),
        bound(),
        any::<bool>(),
        prop_oneof![1..10u64, any::<u64>()],
    )
        .prop_filter_map(
            "options must be valid",
            |(start, increment, min, max, cycle, block_size)| {
                SequenceOptions {
                    start,
                    increment,
                    min,
                    max,
                    cycle,
                    block_size,
                }
                .validate()
                .ok()
            },
        )
}

proptest! {
    #[test]
    fn should_round_trip_block_record(b in block()) {
        prop_assert_eq!(BlockRecord::decode(&b.encode()).unwrap(), b);
    }

    #[test]
    fn should_order_block_records_by_base_then_size(a in block(), b in block()) {
        // The checksum trails the fixed-width body, so it never decides order.
        prop_assert_eq!(
            a.encode().cmp(&b.encode()),
            (a.base, a.size).cmp(&(b.base, b.size))
        );
    }

    #[test]
    fn should_round_trip_sequence_definition(def in definition()) {
        prop_assert_eq!(SequenceDef::decode(&def.encode()).unwrap(), def);
    }
}
