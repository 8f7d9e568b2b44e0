//! The error type shared by every rule in this crate.

/// Everything that can go wrong in seq-core.
///
/// Variants are named for the outcome a caller acts on; none of them is a
/// panic in disguise. Every operation that returns an error leaves its state
/// unchanged.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The number space ran out: past `u64` ticks, or past a sequence bound
    /// without `cycle`.
    #[error("exhausted: {what}")]
    Exhausted {
        /// What ran out.
        what: String,
    },

    /// A caller-supplied commit number was not strictly above the current max.
    #[error(
        "invalid sequence number: must be greater than the current max (provided={provided}, current={current})"
    )]
    InvalidSeqnum {
        /// The number the caller supplied.
        provided: u64,
        /// The current maximum.
        current: u64,
    },

    /// An append carried a sequence that does not match the segment.
    #[error("sequence mismatch: expected {expected}, got {actual}")]
    SequenceMismatch {
        /// The sequence the rule required.
        expected: u64,
        /// The sequence that was found or supplied.
        actual: u64,
    },

    /// Options (or an argument) that can never be satisfied.
    #[error("invalid sequence options: {reason}")]
    InvalidOptions {
        /// Why the options are invalid.
        reason: String,
    },

    /// A name that is empty, too long or contains a forbidden byte.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// What the name names: `"space"`, `"segment"`, `"sequence"`, ...
        kind: &'static str,
        /// The offending name.
        name: String,
        /// Why it is rejected.
        reason: String,
    },

    /// Sequence-key deltas that break the rules (empty, zero first delta,
    /// fewer levels than the prefix already uses).
    #[error("invalid deltas: {reason}")]
    InvalidDeltas {
        /// Why the deltas are rejected.
        reason: String,
    },

    /// An attempt to move a position backwards.
    #[error("not forward: {reason}")]
    NotForward {
        /// What would have gone backwards.
        reason: String,
    },

    /// Bytes that do not decode: truncated, bad checksum, unknown version,
    /// malformed body.
    #[error("corrupt record: {reason}")]
    Corrupt {
        /// What is wrong with the bytes.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            reason: reason.into(),
        }
    }

    pub(crate) fn exhausted(what: impl Into<String>) -> Self {
        Error::Exhausted { what: what.into() }
    }

    pub(crate) fn invalid_options(reason: impl Into<String>) -> Self {
        Error::InvalidOptions {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_deltas(reason: impl Into<String>) -> Self {
        Error::InvalidDeltas {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_render_invalid_seqnum_like_slatedb() {
        let err = Error::InvalidSeqnum {
            provided: 5,
            current: 7,
        };
        assert_eq!(
            err.to_string(),
            "invalid sequence number: must be greater than the current max (provided=5, current=7)"
        );
    }

    #[test]
    fn should_render_sequence_mismatch() {
        let err = Error::SequenceMismatch {
            expected: 3,
            actual: 9,
        };
        assert_eq!(err.to_string(), "sequence mismatch: expected 3, got 9");
    }

    #[test]
    fn should_quote_name_in_invalid_name() {
        let err = Error::InvalidName {
            kind: "space",
            name: "a\0b".into(),
            reason: "control character".into(),
        };
        assert_eq!(
            err.to_string(),
            "invalid space name \"a\\0b\": control character"
        );
    }
}
