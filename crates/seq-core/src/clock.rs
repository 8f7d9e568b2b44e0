//! Timestamp rules. The clock itself lives outside this crate: callers pass
//! `now` in (microseconds since the Unix epoch).

/// A per-segment timestamp that never decreases: a clock that steps back is
/// clamped to `last`.
pub fn clamp_timestamp(last: u64, now: u64) -> u64 {
    last.max(now)
}

/// The timestamp of the next commit group: `max(now, last + 1)`, strictly
/// increasing store-wide (saturating at `u64::MAX`).
pub fn next_group_timestamp(last: u64, now: u64) -> u64 {
    now.max(last.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_clamp_clock_stepping_back() {
        assert_eq!(clamp_timestamp(100, 90), 100);
        assert_eq!(clamp_timestamp(100, 120), 120);
    }

    #[test]
    fn should_strictly_increase_group_timestamps() {
        assert_eq!(next_group_timestamp(100, 90), 101);
        assert_eq!(next_group_timestamp(100, 100), 101);
        assert_eq!(next_group_timestamp(100, 500), 500);
        assert_eq!(next_group_timestamp(u64::MAX, 0), u64::MAX);
    }
}
