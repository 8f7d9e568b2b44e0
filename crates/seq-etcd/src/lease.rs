//! [`Leases`] on etcd leases: etcd keeps the time, and deletes a lease's keys
//! when it expires or is revoked.

use std::io;
use std::time::Duration;

use etcd_client::{Error as ClientError, LeaseClient};
use seq_storage::{LeaseId, Leases, Result};

use crate::error::{Request, lease_not_found};
use crate::{EtcdStorage, with_retries};

/// The ttl etcd is asked for: `ttl` in whole seconds, rounded up, at least
/// one second.
pub(crate) fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .max(1);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// etcd-client's own error when a keep-alive answer has no ttl left (the
/// lease expired, was revoked or never existed).
fn keep_alive_not_found(err: &ClientError) -> bool {
    matches!(err, ClientError::LeaseKeepAliveError(message) if message == "lease not found")
}

/// The keep-alive stream ended without an answer: the connection broke.
fn stream_ended() -> ClientError {
    ClientError::IoError(io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "etcd closed the lease keep-alive stream without answering",
    ))
}

/// One keep-alive of `id` on a fresh stream: `Ok(None)` when etcd no longer
/// has the lease, else the ttl it was renewed for, in seconds.
///
/// etcd-client's `keep_alive` sends the first keep-alive itself and reads
/// its answer, but keeps only whether the lease was found; a second
/// keep-alive on the open stream reads the ttl.
async fn keep_alive_once(
    mut client: LeaseClient,
    id: i64,
) -> std::result::Result<Option<i64>, ClientError> {
    let (mut keeper, mut stream) = match client.keep_alive(id).await {
        Ok(opened) => opened,
        Err(err) if keep_alive_not_found(&err) => return Ok(None),
        Err(ClientError::WatchError(_)) => return Err(stream_ended()),
        Err(err) => return Err(err),
    };
    keeper.keep_alive().await?;
    match stream.message().await? {
        Some(answer) if answer.ttl() > 0 => Ok(Some(answer.ttl())),
        Some(_) => Ok(None),
        None => Err(stream_ended()),
    }
}

/// etcd leases, shared by every client of the cluster (a lease granted
/// through one store may be kept alive or revoked through another).
///
/// Calls that certainly did not reach etcd are retried within
/// [`EtcdOptions::request_timeout`](crate::EtcdOptions::request_timeout), as
/// writes are; `keep_alive` and `revoke`, which may be repeated safely, are
/// also retried after other transient failures. What is left is a retriable
/// [`seq_storage::Error::Io`] (see [`crate::is_retriable`]).
impl Leases for EtcdStorage {
    /// An etcd lease of `ttl` rounded up to whole seconds, at least 1 s.
    /// etcd raises a ttl below its own minimum (1.5 election timeouts,
    /// rounded up: 2 s with the default 1 s election timeout) to that
    /// minimum.
    fn grant(&self, ttl: Duration) -> Result<LeaseId> {
        let secs = ttl_secs(ttl);
        let client = self.lease.clone();
        let call = with_retries(self.options.request_timeout, true, move || {
            let mut client = client.clone();
            async move { client.grant(secs, None).await }
        });
        let granted = self.run(call, Request::Lease)?;
        if !granted.error().is_empty() {
            return Err(seq_storage::Error::Backend {
                message: format!("etcd refused a lease grant: {}", granted.error()),
            });
        }
        Ok(LeaseId(granted.id()))
    }

    /// Renews the lease on a fresh etcd keep-alive stream and returns the
    /// ttl etcd renewed it for; `Ok(None)` once etcd no longer has the lease
    /// (it answers a keep-alive with ttl 0). etcd-client reads the first
    /// answer itself and drops its ttl, so two keep-alives go out on the
    /// stream, one after the other.
    fn keep_alive(&self, lease: LeaseId) -> Result<Option<Duration>> {
        let client = self.lease.clone();
        let call = with_retries(self.options.request_timeout, false, move || {
            keep_alive_once(client.clone(), lease.0)
        });
        let ttl = self.run(call, Request::Lease)?;
        Ok(ttl.map(|secs| Duration::from_secs(secs.unsigned_abs())))
    }

    /// etcd's lease revoke; a lease etcd does not have ("requested lease not
    /// found") is already gone, which is success.
    fn revoke(&self, lease: LeaseId) -> Result<()> {
        let client = self.lease.clone();
        let call = with_retries(self.options.request_timeout, false, move || {
            let mut client = client.clone();
            async move {
                match client.revoke(lease.0).await {
                    Err(err) if lease_not_found(&err) => Ok(()),
                    other => other.map(drop),
                }
            }
        });
        self.run(call, Request::Lease)
    }
}

impl EtcdStorage {
    /// After etcd refused a transaction for a missing lease (its answer does
    /// not say which): the first of `leases` (the transaction's, in batch
    /// order, at least one) that etcd no longer has, asking etcd about each
    /// in turn. Falls back to the first lease when each one asked about is
    /// alive, or when asking fails or takes longer than the request timeout.
    pub(crate) fn missing_lease(&self, leases: &[LeaseId]) -> LeaseId {
        let Some(&first) = leases.first() else {
            return LeaseId(0);
        };
        if leases.len() == 1 {
            return first;
        }
        let client = self.lease.clone();
        let leases = leases.to_vec();
        let timeout = self.options.request_timeout;
        let ask = async move {
            let ask_each = async {
                for lease in leases {
                    let mut client = client.clone();
                    match client.time_to_live(lease.0, None).await {
                        Ok(answer) if answer.ttl() < 0 => return Some(lease),
                        Err(err) if lease_not_found(&err) => return Some(lease),
                        Ok(_) => {}
                        Err(_) => return None,
                    }
                }
                None
            };
            tokio::time::timeout(timeout, ask_each).await.ok().flatten()
        };
        self.bridge.run(ask).flatten().unwrap_or(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds_and_at_least_one() {
        assert_eq!(ttl_secs(Duration::ZERO), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::from_secs(1)), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1_001)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(30)), 30);
        assert_eq!(ttl_secs(Duration::MAX), i64::MAX);
    }
}
