//! Oxia-style sequence keys: `prefix` followed, for each level, by `-` and the
//! level's counter as 20 zero-padded decimal digits, so the byte order of keys
//! equals the numeric order of their counters.

use crate::error::{Error, Result};
use crate::frame;

/// Digits in each counter suffix: enough for every `u64`.
pub const SUFFIX_DIGITS: usize = 20;

/// Separator written before each counter.
pub const SEPARATOR: char = '-';

/// Frame version of [`encode_counters`].
pub const COUNTERS_VERSION: u8 = 1;

/// `prefix` + `-{:020}` for each counter.
pub fn format_key(prefix: &str, counters: &[u64]) -> String {
    use std::fmt::Write as _;
    let mut key = String::with_capacity(prefix.len() + counters.len() * (SUFFIX_DIGITS + 1));
    key.push_str(prefix);
    for counter in counters {
        // Writing to a String cannot fail.
        let _ = write!(key, "{SEPARATOR}{counter:020}");
    }
    key
}

/// Parses the counters back out of a key made by [`format_key`] with the same
/// `prefix`. Anything else (wrong prefix, no suffix, wrong width, non-digits,
/// a value above `u64::MAX`) is [`Error::Corrupt`].
pub fn parse_key(prefix: &str, key: &str) -> Result<Vec<u64>> {
    let Some(suffix) = key.strip_prefix(prefix) else {
        return Err(Error::corrupt(format!(
            "sequence key {key:?} does not start with prefix {prefix:?}"
        )));
    };
    let suffix = suffix.as_bytes();
    const GROUP: usize = SUFFIX_DIGITS + 1;
    if suffix.is_empty() || !suffix.len().is_multiple_of(GROUP) {
        return Err(Error::corrupt(format!(
            "sequence key {key:?} has a suffix of {} bytes, expected a positive multiple of {GROUP}",
            suffix.len()
        )));
    }
    suffix
        .chunks_exact(GROUP)
        .map(|group| {
            parse_group(group).ok_or_else(|| {
                Error::corrupt(format!(
                    "sequence key {key:?} has a malformed counter {:?}",
                    String::from_utf8_lossy(group)
                ))
            })
        })
        .collect()
}

fn parse_group(group: &[u8]) -> Option<u64> {
    let (&sep, digits) = group.split_first()?;
    if sep != SEPARATOR as u8 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The counters of the next key, given the counters of the current highest
/// key (`None` when the prefix has none yet) and the deltas.
///
/// Level `i` becomes `current[i] + deltas[i]` (missing levels count as 0).
/// Empty deltas, `deltas[0] == 0` and fewer deltas than the current key has
/// levels are [`Error::InvalidDeltas`]; overflow is [`Error::Exhausted`].
pub fn next_counters(current: Option<&[u64]>, deltas: &[u64]) -> Result<Vec<u64>> {
    let current = current.unwrap_or(&[]);
    match deltas.first() {
        None => return Err(Error::invalid_deltas("at least one delta is required")),
        Some(0) => {
            return Err(Error::invalid_deltas(
                "the first delta must be greater than 0",
            ));
        }
        Some(_) => {}
    }
    if deltas.len() < current.len() {
        return Err(Error::invalid_deltas(format!(
            "{} deltas for a prefix that already uses {} levels",
            deltas.len(),
            current.len()
        )));
    }
    deltas
        .iter()
        .enumerate()
        .map(|(level, &delta)| {
            let base = current.get(level).copied().unwrap_or(0);
            base.checked_add(delta).ok_or_else(|| {
                Error::exhausted(format!(
                    "sequence key level {level}: {base} + {delta} overflows u64"
                ))
            })
        })
        .collect()
}

/// The counter record (last generated counters): a big-endian `u32` level
/// count and one big-endian `u64` per level, in a version-1 frame.
pub fn encode_counters(counters: &[u64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + counters.len() * 8);
    // More than u32::MAX levels cannot be produced by any caller; saturate
    // rather than panic, and decoding will then reject the record.
    let levels = u32::try_from(counters.len()).unwrap_or(u32::MAX);
    body.extend_from_slice(&levels.to_be_bytes());
    for c in counters {
        body.extend_from_slice(&c.to_be_bytes());
    }
    frame::encode(COUNTERS_VERSION, &body)
}

/// Decodes [`encode_counters`]'s output; anything else is [`Error::Corrupt`].
pub fn decode_counters(bytes: &[u8]) -> Result<Vec<u64>> {
    let body = frame::decode_expect(bytes, COUNTERS_VERSION)?;
    let Some((levels, rest)) = body.split_first_chunk::<4>() else {
        return Err(Error::corrupt("counter record has no level count"));
    };
    let levels = u32::from_be_bytes(*levels) as usize;
    if rest.len() / 8 != levels || !rest.len().is_multiple_of(8) {
        return Err(Error::corrupt(format!(
            "counter record claims {levels} levels but holds {} bytes",
            rest.len()
        )));
    }
    Ok(rest
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_be_bytes(w)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_format_twenty_digit_levels() {
        assert_eq!(
            format_key("a/b", &[1, 0]),
            "a/b-00000000000000000001-00000000000000000000"
        );
        assert_eq!(format_key("", &[u64::MAX]), "-18446744073709551615");
    }

    #[test]
    fn should_parse_formatted_key() {
        let key = format_key("p", &[7, u64::MAX, 0]);
        assert_eq!(parse_key("p", &key).unwrap(), [7, u64::MAX, 0]);
    }

    #[test]
    fn should_reject_malformed_keys() {
        for key in [
            "q-00000000000000000001",
            "p",
            "p-1",
            "p-0000000000000000000a",
            "p+00000000000000000001",
            "p-99999999999999999999",
            "p-00000000000000000001-",
        ] {
            assert!(
                matches!(parse_key("p", key), Err(Error::Corrupt { .. })),
                "{key}"
            );
        }
    }

    #[test]
    fn should_add_deltas_per_level() {
        assert_eq!(next_counters(None, &[1, 2]).unwrap(), [1, 2]);
        assert_eq!(next_counters(Some(&[1, 2]), &[1, 3]).unwrap(), [2, 5]);
        assert_eq!(next_counters(Some(&[4]), &[1, 0, 9]).unwrap(), [5, 0, 9]);
    }

    #[test]
    fn should_reject_zero_first_delta() {
        assert!(matches!(
            next_counters(None, &[0, 1]),
            Err(Error::InvalidDeltas { .. })
        ));
        assert!(matches!(
            next_counters(None, &[]),
            Err(Error::InvalidDeltas { .. })
        ));
    }

    #[test]
    fn should_reject_fewer_deltas_than_levels() {
        assert!(matches!(
            next_counters(Some(&[1, 1]), &[1]),
            Err(Error::InvalidDeltas { .. })
        ));
    }

    #[test]
    fn should_reject_counter_overflow() {
        assert!(matches!(
            next_counters(Some(&[u64::MAX]), &[1]),
            Err(Error::Exhausted { .. })
        ));
    }

    #[test]
    fn should_round_trip_counter_record() {
        for counters in [vec![], vec![1], vec![u64::MAX, 0, 42]] {
            assert_eq!(
                decode_counters(&encode_counters(&counters)).unwrap(),
                counters
            );
        }
    }
}
