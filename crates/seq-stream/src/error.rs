//! The engine's error type: one variant per outcome a caller acts on.

use std::sync::Arc;

/// An engine result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. Every invalid input is rejected with one of these before
/// anything is written (SPEC invariant 6).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record's sequence (or an expected last sequence) did not match the
    /// segment.
    #[error("sequence mismatch: expected {expected}, got {actual}")]
    SequenceMismatch {
        /// What the segment required.
        expected: u64,
        /// What the caller supplied.
        actual: u64,
    },
    /// A caller-supplied commit number was not above the current maximum.
    #[error(
        "invalid sequence number: must be greater than the current max (provided={provided}, current={current})"
    )]
    InvalidSeqnum {
        /// The number supplied in `WriteOptions::seqnum`.
        provided: u64,
        /// The oracle's maximum when it was checked.
        current: u64,
    },
    /// A sequence, counter or oracle ran past its bound.
    #[error("exhausted: {what}")]
    Exhausted {
        /// What ran out.
        what: String,
    },
    /// A fenced write carried a token older than the lease's current one.
    #[error("fenced: lease {key:?} is held with token {current}, the write carried {token}")]
    Fenced {
        /// The lease key.
        key: String,
        /// The token the write carried.
        token: u64,
        /// The lease's current token.
        current: u64,
    },
    /// A compare-and-set lost to a concurrent change.
    #[error("conflict: {what}")]
    Conflict {
        /// What was contended.
        what: String,
    },
    /// An argument is invalid: a name with a forbidden byte, impossible
    /// options, bad deltas, an advance that goes backwards, an empty batch.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Why it was rejected.
        reason: String,
    },
    /// The named thing does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked up.
        what: String,
    },
    /// The named thing exists already.
    #[error("already exists: {what}")]
    AlreadyExists {
        /// What already exists.
        what: String,
    },
    /// A payload, record or batch is larger than the configured limit.
    #[error("too large: {what} is {len} bytes, the limit is {limit}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A stored record failed its checksum or could not be decoded.
    #[error("corrupt record at key {key}: {reason}")]
    Corrupt {
        /// The key, rendered readably.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The queue to the writer is full (returned by `try_` calls only).
    #[error("busy: the writer queue is full")]
    Busy,
    /// The store is closed, or a storage failure made it refuse writes until
    /// it is reopened.
    #[error("store closed: {reason}")]
    Closed {
        /// Why.
        reason: String,
    },
    /// The storage backend failed. The write it belonged to did not happen
    /// (or, for a failed sync, may not be durable: the store then refuses
    /// further writes until reopened).
    #[error("storage error: {source}")]
    Storage {
        /// The backend's error.
        #[source]
        source: Arc<seq_storage::Error>,
    },
}

impl Error {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            reason: reason.into(),
        }
    }

    pub(crate) fn closed(reason: impl Into<String>) -> Self {
        Self::Closed {
            reason: reason.into(),
        }
    }

    /// A [`Error::Corrupt`] for a record stored at `key`.
    pub(crate) fn corrupt_at(key: &[u8], reason: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            key: seq_storage::show_key(key),
            reason: reason.to_string(),
        }
    }

    /// Maps a seq-core decode error of the record stored at `key`.
    pub(crate) fn decode(key: &[u8], error: seq_core::Error) -> Self {
        match error {
            seq_core::Error::Corrupt { reason } => Self::corrupt_at(key, reason),
            other => Self::corrupt_at(key, other),
        }
    }
}

impl From<seq_storage::Error> for Error {
    fn from(error: seq_storage::Error) -> Self {
        match error {
            seq_storage::Error::Corrupt { key, reason } => Self::Corrupt {
                key: key
                    .map(|k| seq_storage::show_key(&k))
                    .unwrap_or_else(|| "?".into()),
                reason,
            },
            seq_storage::Error::Closed { reason } => Self::Closed { reason },
            // Nothing was written: the same typed error as a limit the
            // engine checks itself.
            seq_storage::Error::TooLarge { what, len, limit } => Self::TooLarge {
                what: format!("{what} (backend limit)"),
                len,
                limit,
            },
            other => Self::Storage {
                source: Arc::new(other),
            },
        }
    }
}

impl From<seq_core::Error> for Error {
    fn from(error: seq_core::Error) -> Self {
        use seq_core::Error as Core;
        match error {
            Core::Exhausted { what } => Self::Exhausted { what },
            Core::InvalidSeqnum { provided, current } => Self::InvalidSeqnum { provided, current },
            Core::SequenceMismatch { expected, actual } => {
                Self::SequenceMismatch { expected, actual }
            }
            Core::Corrupt { reason } => Self::Corrupt {
                key: "?".into(),
                reason,
            },
            other => Self::InvalidArgument {
                reason: other.to_string(),
            },
        }
    }
}
