//! Property tests for the space-merge offset: it round-trips through bytes
//! and hex, and both sort exactly like `(timestamp, segment, sequence)`.

use proptest::prelude::*;
use seq_core::SpaceOffset;

fn offset() -> impl Strategy<Value = SpaceOffset> {
    let segment = prop::collection::vec(
        prop_oneof![
            Just('\0'),
            Just('\u{1}'),
            Just('a'),
            Just('\u{ff}'),
            any::<char>()
        ],
        0..5,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>());
    (
        prop_oneof![0..3u64, any::<u64>()],
        segment,
        prop_oneof![0..3u64, any::<u64>()],
    )
        .prop_map(|(timestamp, segment, sequence)| SpaceOffset {
            timestamp,
            segment,
            sequence,
        })
}

proptest! {
    #[test]
    fn should_round_trip_space_offset(o in offset()) {
        prop_assert_eq!(SpaceOffset::decode(&o.encode()).unwrap(), o.clone());
        prop_assert_eq!(SpaceOffset::from_hex(&o.to_hex()).unwrap(), o);
    }

    #[test]
    fn should_sort_bytes_and_hex_in_merge_order(a in offset(), b in offset()) {
        prop_assert_eq!(a.encode().cmp(&b.encode()), a.cmp(&b));
        prop_assert_eq!(a.to_hex().cmp(&b.to_hex()), a.cmp(&b));
    }

    #[test]
    fn should_sort_merge_order_by_timestamp_first(a in offset(), b in offset()) {
        if a.timestamp != b.timestamp {
            prop_assert_eq!(a.cmp(&b), a.timestamp.cmp(&b.timestamp));
        }
    }
}
