//! Property tests for Oxia-style sequence keys: format/parse round-trip, key
//! order equals numeric order, each next key sorts above the current one, and
//! the counter record round-trips.

use proptest::prelude::*;
use seq_core::Error;
use seq_core::seqkey::{
    SUFFIX_DIGITS, decode_counters, encode_counters, format_key, next_counters, parse_key,
};

fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![0..12u64, any::<u64>(), Just(u64::MAX), Just(9), Just(10)]
}

fn counters() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(counter(), 1..4)
}

fn prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_owned()),
        "[a-z/_-]{0,8}",
        any::<String>()
    ]
}

proptest! {
    #[test]
    fn should_round_trip_key(prefix in prefix(), counters in counters()) {
        let key = format_key(&prefix, &counters);
        prop_assert_eq!(key.len(), prefix.len() + counters.len() * (SUFFIX_DIGITS + 1));
        prop_assert_eq!(parse_key(&prefix, &key).unwrap(), counters);
    }

    #[test]
    fn should_order_keys_numerically(prefix in prefix(), a in counters(), b in counters()) {
        let (ka, kb) = (format_key(&prefix, &a), format_key(&prefix, &b));
        prop_assert_eq!(ka.as_bytes().cmp(kb.as_bytes()), a.cmp(&b));
    }

    #[test]
    fn should_generate_keys_above_current(
        prefix in prefix(),
        current in prop::option::of(prop::collection::vec(0..1_000u64, 1..4)),
        first in 1..100u64,
        rest in prop::collection::vec(0..100u64, 0..4),
    ) {
        let mut deltas = vec![first];
        deltas.extend(rest);
        match next_counters(current.as_deref(), &deltas) {
            Ok(next) => {
                prop_assert_eq!(next.len(), deltas.len());
                if let Some(current) = &current {
                    prop_assert!(format_key(&prefix, &next) > format_key(&prefix, current));
                }
            }
            Err(Error::InvalidDeltas { .. }) => {
                let levels = current.as_ref().map_or(0, Vec::len);
                prop_assert!(deltas.len() < levels);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn should_exhaust_exactly_on_counter_overflow(current in counters(), level in 0..3usize) {
        let mut deltas = vec![1; current.len().max(level + 1)];
        deltas[level] = u64::MAX;
        let overflows = deltas.iter().enumerate().any(|(i, &d)| {
            current.get(i).copied().unwrap_or(0).checked_add(d).is_none()
        });
        let result = next_counters(Some(&current), &deltas);
        prop_assert_eq!(matches!(result, Err(Error::Exhausted { .. })), overflows, "{:?}", result);
        prop_assert_eq!(result.is_ok(), !overflows);
    }

    #[test]
    fn should_round_trip_counter_record(counters in prop::collection::vec(counter(), 0..6)) {
        prop_assert_eq!(decode_counters(&encode_counters(&counters)).unwrap(), counters);
    }
}
