//! Backend leases: keys that vanish when their lease lapses on the
//! backend's own clock.
//!
//! A shared backend such as etcd keeps time for its clients: a client is
//! granted a lease with a ttl, keeps it alive, and every key it wrote with
//! [`crate::WriteBatch::put_leased`] is deleted by the backend when the lease
//! expires or is revoked. Nothing depends on the clients' clocks agreeing,
//! which is what seq's lease expiry needs across machines.
//!
//! Backends that offer leases return them from [`crate::Storage::leases`] and
//! set [`crate::Capabilities::leases`]; the others refuse a batch holding a
//! leased put with [`crate::Error::Unsupported`] and write nothing.

use std::time::Duration;

use crate::{Error, Result, show_key};

/// A lease granted by a backend (etcd's lease ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// The lease service of a backend that expires keys on its own clock.
///
/// Like [`crate::Storage`], every method may block on I/O.
pub trait Leases: Send + Sync {
    /// Grants a lease that expires `ttl` from now (backend clock, rounded up
    /// to the backend's granularity: whole seconds on etcd) unless it is kept
    /// alive. Transient failures are retriable [`crate::Error::Io`] errors.
    fn grant(&self, ttl: Duration) -> Result<LeaseId>;

    /// Renews `lease` for its full ttl and returns the time left, or
    /// `Ok(None)` when it has already expired or was revoked (its keys are
    /// gone, or going).
    fn keep_alive(&self, lease: LeaseId) -> Result<Option<Duration>>;

    /// Revokes `lease` now, deleting every key attached to it. Revoking a
    /// lease that expired or was revoked already is not an error.
    fn revoke(&self, lease: LeaseId) -> Result<()>;
}

/// The [`Error::Unsupported`] a backend without leases returns for a leased
/// put of `key` ([`crate::check_limits`] returns it before anything is
/// written).
pub fn leased_put_unsupported(key: &[u8]) -> Error {
    Error::Unsupported {
        what: format!(
            "a put attached to a lease (key {}): this backend has no leases",
            show_key(key)
        ),
    }
}
