//! The one error type of the storage layer.

use bytes::Bytes;

/// A storage result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a storage call. Variants name the outcome a caller acts
/// on; backend-specific errors are mapped into them in one function per
/// backend crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A precondition of a batch did not hold; nothing was written.
    #[error("conflict: precondition failed on key {}", show_key(key))]
    Conflict {
        /// The first key whose precondition failed.
        key: Bytes,
    },
    /// Stored bytes could not be decoded, or the backend reported corruption.
    #[error("corrupt data{}: {reason}", key.as_ref().map(|k| format!(" at key {}", show_key(k))).unwrap_or_default())]
    Corrupt {
        /// The key whose record is corrupt, when known.
        key: Option<Bytes>,
        /// What is wrong with it.
        reason: String,
    },
    /// A value or batch exceeds what the backend accepts; nothing was written.
    #[error("too large: {what} is {len} bytes, the limit is {limit}")]
    TooLarge {
        /// What was too large ("value", "batch").
        what: &'static str,
        /// Its size in bytes.
        len: usize,
        /// The backend's limit in bytes.
        limit: usize,
    },
    /// An I/O error (including faults injected by [`crate::CrashStorage`]).
    #[error("storage I/O error: {source}")]
    Io {
        /// The underlying error.
        #[from]
        source: std::io::Error,
    },
    /// The store was closed, or a previous failure made it refuse further use
    /// until it is reopened.
    #[error("storage is closed: {reason}")]
    Closed {
        /// Why it is closed.
        reason: String,
    },
    /// The backend cannot do what the batch asks (a leased put on a backend
    /// without [`crate::Capabilities::leases`]); nothing was written.
    #[error("unsupported by this backend: {what}")]
    Unsupported {
        /// What was asked.
        what: String,
    },
    /// A leased put named a lease that expired, was revoked or never
    /// existed; nothing was written.
    #[error("lease {lease} not found: it expired or was revoked")]
    LeaseNotFound {
        /// The lease.
        lease: crate::LeaseId,
    },
    /// The backend failed in a way that has no better variant. The message is
    /// the backend's own.
    #[error("storage backend error: {message}")]
    Backend {
        /// The backend's description of the failure.
        message: String,
    },
}

impl Error {
    /// A [`Error::Corrupt`] for `key`.
    pub fn corrupt(key: Option<&[u8]>, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            key: key.map(Bytes::copy_from_slice),
            reason: reason.into(),
        }
    }

    /// True for [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// Renders a key for an error message: printable ASCII as text, other bytes as
/// `\xNN`, shortened past 64 bytes.
pub fn show_key(key: &[u8]) -> String {
    let mut out = String::new();
    for &b in key.iter().take(64) {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if key.len() > 64 {
        out.push_str(&format!("…(+{} bytes)", key.len() - 64));
    }
    format!("\"{out}\"")
}
