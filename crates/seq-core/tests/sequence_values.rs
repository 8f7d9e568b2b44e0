//! Property tests for tick → value mapping: values stay in bounds, move
//! strictly in the sequence's direction on the first lap, and
//! `tick_after_value` points just past the value it is given.

use proptest::prelude::*;
use seq_core::{Error, SequenceDef, SequenceOptions};

fn definition() -> impl Strategy<Value = SequenceDef> {
    let value = || prop_oneof![-50..50i64, any::<i64>(), Just(i64::MIN), Just(i64::MAX)];
    (
        prop::option::of(value()),
        prop_oneof![-7..=7i64, any::<i64>()],
        prop::option::of(value()),
        prop::option::of(value()),
        any::<bool>(),
    )
        .prop_filter_map(
            "options must be valid",
            |(start, increment, min, max, cycle)| {
                SequenceOptions {
                    start,
                    increment,
                    min,
                    max,
                    cycle,
                    block_size: 16,
                }
                .validate()
                .ok()
            },
        )
}

fn tick() -> impl Strategy<Value = u64> {
    prop_oneof![0..64u64, any::<u64>(), Just(u64::MAX)]
}

proptest! {
    #[test]
    fn should_stay_within_bounds(def in definition(), t in tick()) {
        match def.value_at(t) {
            Ok(v) => prop_assert!(def.min <= v && v <= def.max),
            Err(Error::Exhausted { .. }) => prop_assert!(!def.cycle),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn should_move_strictly_in_direction_until_bound(def in definition(), t in tick()) {
        let t = t.min(u64::MAX - 1);
        if let (Ok(a), Ok(b)) = (def.value_at(t), def.value_at(t + 1)) {
            let step = i128::from(b) - i128::from(a);
            if step != i128::from(def.increment) {
                // Only a cycle wrap may break the step, and only back to the start bound.
                prop_assert!(def.cycle);
                prop_assert_eq!(b, if def.increment > 0 { def.min } else { def.max });
            }
        }
    }

    #[test]
    fn should_exhaust_forever_once_exhausted(def in definition(), t in 0..64u64, later in 0..64u64) {
        if matches!(def.value_at(t), Err(Error::Exhausted { .. })) {
            prop_assert!(def.value_at(t + later).is_err());
        }
    }

    #[test]
    fn should_advance_just_past_value(def in definition(), t in 0..64u64) {
        // Take a value on the first lap and ask for the tick after it.
        let first_lap_value = def.value_at(t).ok().filter(|_| {
            (0..t).all(|s| match (def.value_at(s), def.value_at(s + 1)) {
                (Ok(a), Ok(b)) => i128::from(b) - i128::from(a) == i128::from(def.increment),
                _ => false,
            })
        });
        if let Some(v) = first_lap_value {
            prop_assert_eq!(def.tick_after_value(v).unwrap(), t + 1);
        }
    }

    #[test]
    fn should_land_beyond_any_value_in_bounds(def in definition(), v in any::<i64>()) {
        match def.tick_after_value(v) {
            Ok(t) => {
                prop_assert!(def.min <= v && v <= def.max);
                if t > 0 {
                    let before = def.value_at(t - 1).unwrap();
                    let not_past = if def.increment > 0 { before <= v } else { before >= v };
                    prop_assert!(not_past, "value {} at tick {} is already past {}", before, t - 1, v);
                }
                if let Ok(after) = def.value_at(t) {
                    // Beyond the bound a cycling sequence wraps; otherwise it is past v.
                    let wrapped = def.cycle && t > 0 && after == if def.increment > 0 { def.min } else { def.max }
                        && i128::from(after) - i128::from(def.value_at(t - 1).unwrap()) != i128::from(def.increment);
                    if !wrapped {
                        let past = if def.increment > 0 { after > v } else { after < v };
                        prop_assert!(past, "value {} at tick {} is not past {}", after, t, v);
                    }
                }
            }
            Err(Error::InvalidOptions { .. }) => prop_assert!(v < def.min || v > def.max),
            Err(Error::Exhausted { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}
