//! Named-sequence definitions (PostgreSQL `bigint` semantics) and the mapping
//! from block ticks to values: `value = start + tick * increment`.

use crate::error::{Error, Result};
use crate::frame;

/// Options for creating a sequence, as a user writes them. Unset bounds and
/// start take PostgreSQL's defaults; [`validate`](Self::validate) turns them
/// into a complete [`SequenceDef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceOptions {
    /// First value; defaults to `min` counting up, `max` counting down.
    pub start: Option<i64>,
    /// Step between values; negative counts down; never 0.
    pub increment: i64,
    /// Lowest value; defaults to 1 counting up, `i64::MIN` counting down.
    pub min: Option<i64>,
    /// Highest value; defaults to `i64::MAX` counting up, -1 counting down.
    pub max: Option<i64>,
    /// Wrap to `min` (up) or `max` (down) after the bound instead of
    /// [`Error::Exhausted`].
    pub cycle: bool,
    /// Ticks reserved per persisted block.
    pub block_size: u64,
}

impl Default for SequenceOptions {
    fn default() -> Self {
        Self {
            start: None,
            increment: 1,
            min: None,
            max: None,
            cycle: false,
            block_size: 4096,
        }
    }
}

impl SequenceOptions {
    /// Fills in defaults and checks the options.
    ///
    /// `increment == 0`, `min > max`, `start` outside `[min, max]` and
    /// `block_size == 0` are [`Error::InvalidOptions`].
    pub fn validate(&self) -> Result<SequenceDef> {
        let ascending = self.increment > 0;
        let min = self.min.unwrap_or(if ascending { 1 } else { i64::MIN });
        let max = self.max.unwrap_or(if ascending { i64::MAX } else { -1 });
        let start = self.start.unwrap_or(if ascending { min } else { max });
        let def = SequenceDef {
            start,
            increment: self.increment,
            min,
            max,
            cycle: self.cycle,
            block_size: self.block_size,
        };
        def.check()?;
        Ok(def)
    }
}

/// A complete, validated sequence definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceDef {
    /// Value at tick 0.
    pub start: i64,
    /// Step between values; never 0.
    pub increment: i64,
    /// Lowest value.
    pub min: i64,
    /// Highest value.
    pub max: i64,
    /// Whether values wrap around after the bound.
    pub cycle: bool,
    /// Ticks reserved per persisted block.
    pub block_size: u64,
}

impl SequenceDef {
    /// Frame version of [`encode`](Self::encode).
    pub const VERSION: u8 = 1;

    const BODY_LEN: usize = 8 * 5 + 1;

    /// The value handed out at `tick`.
    ///
    /// Past the bound: [`Error::Exhausted`] without `cycle`; with `cycle` the
    /// sequence restarts at `min` (ascending) or `max` (descending), lap after
    /// lap, like PostgreSQL. Never overflows or panics.
    pub fn value_at(&self, tick: u64) -> Result<i64> {
        self.check()?;
        let t = i128::from(tick);
        let step = i128::from(self.increment).abs();
        let (start, min, max) = (
            i128::from(self.start),
            i128::from(self.min),
            i128::from(self.max),
        );
        let first_lap = self.first_lap_len();
        let value = if t < first_lap {
            start + t * i128::from(self.increment)
        } else if self.cycle {
            let lap = (max - min) / step + 1;
            let pos = (t - first_lap) % lap;
            if self.ascending() {
                min + pos * step
            } else {
                max - pos * step
            }
        } else {
            return Err(self.exhausted());
        };
        i64::try_from(value).map_err(|_| self.exhausted())
    }

    /// The tick whose value is the first one strictly beyond `value` in the
    /// sequence's direction, on the first lap (PostgreSQL `setval(v, true)`:
    /// the next value handed out follows `v`).
    ///
    /// A `value` before `start` gives tick 0. `value` outside `[min, max]` is
    /// [`Error::InvalidOptions`]; a tick past `u64` is [`Error::Exhausted`].
    pub fn tick_after_value(&self, value: i64) -> Result<u64> {
        self.check()?;
        if value < self.min || value > self.max {
            return Err(Error::invalid_options(format!(
                "value {value} is outside [{}, {}]",
                self.min, self.max
            )));
        }
        let step = i128::from(self.increment).abs();
        let (start, value) = (i128::from(self.start), i128::from(value));
        let distance = if self.ascending() {
            value - start
        } else {
            start - value
        };
        let tick = if distance < 0 { 0 } else { distance / step + 1 };
        u64::try_from(tick).map_err(|_| {
            Error::exhausted(format!(
                "value {value} lies beyond the u64 tick space of the sequence"
            ))
        })
    }

    /// Fixed-width big-endian body in a version-1 frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(Self::BODY_LEN);
        body.extend_from_slice(&self.start.to_be_bytes());
        body.extend_from_slice(&self.increment.to_be_bytes());
        body.extend_from_slice(&self.min.to_be_bytes());
        body.extend_from_slice(&self.max.to_be_bytes());
        body.push(u8::from(self.cycle));
        body.extend_from_slice(&self.block_size.to_be_bytes());
        frame::encode(Self::VERSION, &body)
    }

    /// Decodes [`encode`](Self::encode)'s output; anything else, including a
    /// well-framed but invalid definition, is [`Error::Corrupt`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let body = frame::decode_expect(bytes, Self::VERSION)?;
        let body: &[u8; Self::BODY_LEN] = body.try_into().map_err(|_| {
            Error::corrupt(format!(
                "sequence definition body is {} bytes, expected {}",
                body.len(),
                Self::BODY_LEN
            ))
        })?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&body[i..i + 8]);
            w
        };
        let cycle = match body[32] {
            0 => false,
            1 => true,
            other => {
                return Err(Error::corrupt(format!(
                    "sequence definition cycle flag is {other}, expected 0 or 1"
                )));
            }
        };
        let def = Self {
            start: i64::from_be_bytes(word(0)),
            increment: i64::from_be_bytes(word(8)),
            min: i64::from_be_bytes(word(16)),
            max: i64::from_be_bytes(word(24)),
            cycle,
            block_size: u64::from_be_bytes(word(33)),
        };
        def.check()
            .map_err(|e| Error::corrupt(format!("invalid sequence definition: {e}")))?;
        Ok(def)
    }

    fn ascending(&self) -> bool {
        self.increment > 0
    }

    /// Number of values from `start` to the bound (at least 1 once checked).
    fn first_lap_len(&self) -> i128 {
        let step = i128::from(self.increment).abs();
        let start = i128::from(self.start);
        if self.ascending() {
            (i128::from(self.max) - start) / step + 1
        } else {
            (start - i128::from(self.min)) / step + 1
        }
    }

    fn exhausted(&self) -> Error {
        let bound = if self.ascending() { self.max } else { self.min };
        Error::exhausted(format!("sequence reached its bound {bound}"))
    }

    /// The definition's invariants; fields are public, so every entry point
    /// re-checks them rather than trusting the caller.
    fn check(&self) -> Result<()> {
        if self.increment == 0 {
            return Err(Error::invalid_options("increment must not be 0"));
        }
        if self.block_size == 0 {
            return Err(Error::invalid_options("block_size must be at least 1"));
        }
        if self.min > self.max {
            return Err(Error::invalid_options(format!(
                "min {} is greater than max {}",
                self.min, self.max
            )));
        }
        if self.start < self.min || self.start > self.max {
            return Err(Error::invalid_options(format!(
                "start {} is outside [{}, {}]",
                self.start, self.min, self.max
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(increment: i64) -> SequenceOptions {
        SequenceOptions {
            increment,
            ..SequenceOptions::default()
        }
    }

    #[test]
    fn should_default_like_postgresql_ascending() {
        let def = SequenceOptions::default().validate().unwrap();
        assert_eq!(
            def,
            SequenceDef {
                start: 1,
                increment: 1,
                min: 1,
                max: i64::MAX,
                cycle: false,
                block_size: 4096
            }
        );
        assert_eq!(def.value_at(0).unwrap(), 1);
        assert_eq!(def.value_at(9).unwrap(), 10);
    }

    #[test]
    fn should_default_like_postgresql_descending() {
        let def = opts(-1).validate().unwrap();
        assert_eq!((def.start, def.min, def.max), (-1, i64::MIN, -1));
        assert_eq!(def.value_at(0).unwrap(), -1);
        assert_eq!(def.value_at(4).unwrap(), -5);
    }

    #[test]
    fn should_reject_zero_increment() {
        assert!(matches!(
            opts(0).validate(),
            Err(Error::InvalidOptions { .. })
        ));
    }

    #[test]
    fn should_reject_start_outside_bounds() {
        let o = SequenceOptions {
            start: Some(0),
            ..SequenceOptions::default()
        };
        assert!(matches!(o.validate(), Err(Error::InvalidOptions { .. })));
    }

    #[test]
    fn should_reject_min_above_max() {
        let o = SequenceOptions {
            min: Some(10),
            max: Some(5),
            ..SequenceOptions::default()
        };
        assert!(matches!(o.validate(), Err(Error::InvalidOptions { .. })));
    }

    #[test]
    fn should_reject_zero_block_size() {
        let o = SequenceOptions {
            block_size: 0,
            ..SequenceOptions::default()
        };
        assert!(matches!(o.validate(), Err(Error::InvalidOptions { .. })));
    }

    #[test]
    fn should_exhaust_without_cycle() {
        let def = SequenceOptions {
            max: Some(3),
            ..SequenceOptions::default()
        }
        .validate()
        .unwrap();
        assert_eq!(def.value_at(2).unwrap(), 3);
        assert!(matches!(def.value_at(3), Err(Error::Exhausted { .. })));
        assert!(matches!(
            def.value_at(u64::MAX),
            Err(Error::Exhausted { .. })
        ));
    }

    #[test]
    fn should_wrap_to_min_with_cycle() {
        let def = SequenceOptions {
            start: Some(3),
            increment: 2,
            min: Some(1),
            max: Some(6),
            cycle: true,
            ..SequenceOptions::default()
        }
        .validate()
        .unwrap();
        let values: Vec<i64> = (0..8).map(|t| def.value_at(t).unwrap()).collect();
        assert_eq!(values, [3, 5, 1, 3, 5, 1, 3, 5]);
    }

    #[test]
    fn should_wrap_to_max_with_cycle_descending() {
        let def = SequenceOptions {
            start: Some(2),
            increment: -2,
            min: Some(-1),
            max: Some(3),
            cycle: true,
            ..SequenceOptions::default()
        }
        .validate()
        .unwrap();
        let values: Vec<i64> = (0..7).map(|t| def.value_at(t).unwrap()).collect();
        assert_eq!(values, [2, 0, 3, 1, -1, 3, 1]);
    }

    #[test]
    fn should_not_overflow_at_extremes() {
        let def = SequenceOptions {
            start: Some(i64::MIN),
            increment: i64::MAX,
            min: Some(i64::MIN),
            max: Some(i64::MAX),
            cycle: true,
            ..SequenceOptions::default()
        }
        .validate()
        .unwrap();
        for t in [0, 1, 2, 3, u64::MAX - 1, u64::MAX] {
            let v = def.value_at(t).unwrap();
            assert!(v >= def.min && v <= def.max);
        }
    }

    #[test]
    fn should_map_value_to_following_tick() {
        let def = SequenceOptions {
            start: Some(10),
            increment: 5,
            min: Some(0),
            ..SequenceOptions::default()
        }
        .validate()
        .unwrap();
        // setval(20, true): the next value is 25, at tick 3.
        assert_eq!(def.tick_after_value(20).unwrap(), 3);
        assert_eq!(def.value_at(3).unwrap(), 25);
        // Between values: the next value is still the first one above.
        assert_eq!(def.tick_after_value(22).unwrap(), 3);
        // Before start.
        assert_eq!(def.tick_after_value(3).unwrap(), 0);
    }

    #[test]
    fn should_map_value_to_following_tick_descending() {
        let def = opts(-3).validate().unwrap();
        assert_eq!(def.tick_after_value(-7).unwrap(), 3);
        assert_eq!(def.value_at(3).unwrap(), -10);
    }

    #[test]
    fn should_reject_advance_to_value_outside_bounds() {
        let def = SequenceOptions::default().validate().unwrap();
        assert!(matches!(
            def.tick_after_value(0),
            Err(Error::InvalidOptions { .. })
        ));
    }

    #[test]
    fn should_exhaust_after_advancing_to_max() {
        let def = SequenceOptions {
            max: Some(100),
            ..SequenceOptions::default()
        }
        .validate()
        .unwrap();
        let tick = def.tick_after_value(100).unwrap();
        assert!(matches!(def.value_at(tick), Err(Error::Exhausted { .. })));
    }

    #[test]
    fn should_refuse_hand_built_invalid_definition() {
        let def = SequenceDef {
            start: 1,
            increment: 0,
            min: 1,
            max: 10,
            cycle: false,
            block_size: 1,
        };
        assert!(matches!(def.value_at(1), Err(Error::InvalidOptions { .. })));
        assert!(def.tick_after_value(1).is_err());
    }

    #[test]
    fn should_round_trip_definition() {
        let def = opts(-7).validate().unwrap();
        assert_eq!(SequenceDef::decode(&def.encode()).unwrap(), def);
    }
}
