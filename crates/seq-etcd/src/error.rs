//! etcd's failures, typed, and the one function that maps them onto
//! [`seq_storage::Error`].

use std::error::Error as _;
use std::io;
use std::time::Duration;

use etcd_client::Error as ClientError;
use seq_storage::{Error, LeaseId};
use tonic::Code;

/// An etcd failure a caller may want to act on. It reaches callers inside
/// [`seq_storage::Error::Io`]; [`etcd_error`] digs it out.
///
/// Every variant is transient: the same call may succeed later. What differs
/// is whether a failed *write* may still have been applied (see
/// [`EtcdError::write_may_have_applied`]): then a retry must be made safe with
/// a precondition, as it always is when several writers share a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// No member could be reached, or the member reached has no leader (an
    /// election is under way, or there is no quorum). Nothing was applied.
    /// Reported as [`io::ErrorKind::NotConnected`].
    #[error("etcd is unavailable: {reason}")]
    Unavailable {
        /// What etcd or the transport said.
        reason: String,
    },
    /// No answer within the request timeout
    /// ([`EtcdOptions::request_timeout`](crate::EtcdOptions::request_timeout)),
    /// or etcd itself gave up waiting for its cluster. A write may or may not
    /// have been applied. Reported as [`io::ErrorKind::TimedOut`].
    #[error("etcd request timed out: {reason}")]
    TimedOut {
        /// What timed out.
        reason: String,
    },
    /// The connection broke, the member stopped or the leader changed while
    /// the request was in flight. A write may or may not have been applied.
    /// Reported as [`io::ErrorKind::ConnectionAborted`].
    #[error("etcd request interrupted: {reason}")]
    Interrupted {
        /// What etcd or the transport said.
        reason: String,
    },
    /// A scan reads every page at the revision of its first page; etcd
    /// compacted that revision away before the scan finished. Start the scan
    /// again. Reported as [`io::ErrorKind::Other`].
    #[error("etcd compacted revision {revision} while a scan was reading it")]
    Compacted {
        /// The scan's snapshot revision.
        revision: i64,
    },
}

impl EtcdError {
    /// Whether a write that failed with this error may nevertheless have
    /// been applied (the request may have reached the leader).
    pub fn write_may_have_applied(&self) -> bool {
        matches!(self, Self::TimedOut { .. } | Self::Interrupted { .. })
    }

    fn io_kind(&self) -> io::ErrorKind {
        match self {
            Self::Unavailable { .. } => io::ErrorKind::NotConnected,
            Self::TimedOut { .. } => io::ErrorKind::TimedOut,
            Self::Interrupted { .. } => io::ErrorKind::ConnectionAborted,
            Self::Compacted { .. } => io::ErrorKind::Other,
        }
    }
}

impl From<EtcdError> for Error {
    fn from(err: EtcdError) -> Self {
        Error::Io {
            source: io::Error::new(err.io_kind(), err),
        }
    }
}

/// The [`EtcdError`] inside `err`, when `err` is one of this backend's
/// transient etcd failures.
///
/// ```
/// use seq_etcd::{EtcdError, etcd_error};
///
/// let err: seq_storage::Error = EtcdError::Compacted { revision: 7 }.into();
/// assert!(matches!(etcd_error(&err), Some(EtcdError::Compacted { revision: 7 })));
/// assert!(etcd_error(&seq_storage::Error::corrupt(None, "bad")).is_none());
/// ```
pub fn etcd_error(err: &Error) -> Option<&EtcdError> {
    match err {
        Error::Io { source } => source.get_ref()?.downcast_ref::<EtcdError>(),
        _ => None,
    }
}

/// Whether `err` is transient: the same call may succeed if made again
/// (after an election, a restart, a reconnect). True for every
/// [`EtcdError`]; false for conflicts, limits and corruption.
pub fn is_retriable(err: &Error) -> bool {
    etcd_error(err).is_some()
}

/// What the failed request was, for the error it maps to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request {
    /// A read; `revision` is the scan's snapshot revision (0 for none yet).
    Read { revision: i64 },
    /// A transaction whose encoded size is `request_len` bytes; `lease` is
    /// the first lease its leased puts name, if any.
    Write {
        request_len: usize,
        limit: usize,
        lease: Option<LeaseId>,
    },
    /// A call of the lease service.
    Lease,
}

/// Why a request failed: etcd's answer, or our own deadline.
#[derive(Debug)]
pub(crate) enum Failure {
    Etcd(ClientError),
    Deadline(Duration),
}

/// How a failure may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The request was not applied (no connection, no leader): any request,
    /// write or read, may be sent again.
    Any,
    /// The request may have been applied: only a read may be sent again.
    ReadsOnly,
    /// Sending it again would fail the same way.
    Never,
}

/// How `err` may be retried.
pub(crate) fn retry_class(err: &ClientError) -> Retry {
    match err {
        ClientError::GRpcStatus(status) => match status.code() {
            Code::Unavailable if refused(status) || not_applied(status.message()) => Retry::Any,
            Code::Unavailable | Code::Cancelled | Code::Unknown if dropped_unsent(status) => {
                Retry::Any
            }
            Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::Unknown => {
                Retry::ReadsOnly
            }
            _ => Retry::Never,
        },
        ClientError::TransportError(_) => Retry::Any,
        ClientError::IoError(e) if e.kind() == io::ErrorKind::ConnectionRefused => Retry::Any,
        ClientError::IoError(_) => Retry::ReadsOnly,
        _ => Retry::Never,
    }
}

/// Whether a scan page failed only because the response exceeded the
/// client's decoding limit (then a smaller page will do).
pub(crate) fn response_too_large(err: &ClientError) -> bool {
    matches!(err, ClientError::GRpcStatus(status)
        if status.message().contains("message length too large"))
}

/// The one mapping from etcd and transport failures to [`seq_storage::Error`].
pub(crate) fn map_failure(failure: Failure, request: Request) -> Error {
    let err = match failure {
        Failure::Deadline(after) => {
            return EtcdError::TimedOut {
                reason: format!("no answer within {after:?}"),
            }
            .into();
        }
        Failure::Etcd(err) => err,
    };
    let status = match err {
        ClientError::GRpcStatus(status) => status,
        ClientError::TransportError(e) => {
            return EtcdError::Unavailable { reason: chain(&e) }.into();
        }
        ClientError::IoError(e) => {
            let reason = e.to_string();
            return if e.kind() == io::ErrorKind::ConnectionRefused {
                EtcdError::Unavailable { reason }.into()
            } else {
                EtcdError::Interrupted { reason }.into()
            };
        }
        ClientError::InvalidArgs(reason) => {
            return io::Error::new(io::ErrorKind::InvalidInput, reason).into();
        }
        ClientError::InvalidUri(e) => {
            return io::Error::new(io::ErrorKind::InvalidInput, e).into();
        }
        other => {
            return Error::Backend {
                message: other.to_string(),
            };
        }
    };
    let message = status.message();
    let reason = if status.source().is_some() {
        format!("{message} ({})", chain(&status))
    } else {
        message.to_owned()
    };
    match status.code() {
        Code::Unavailable if refused(&status) || not_applied(message) => {
            EtcdError::Unavailable { reason }.into()
        }
        Code::Unavailable | Code::Unknown | Code::Cancelled if dropped_unsent(&status) => {
            EtcdError::Unavailable { reason }.into()
        }
        Code::Unavailable if message.contains("timed out") => EtcdError::TimedOut { reason }.into(),
        Code::Unavailable | Code::Unknown | Code::Cancelled if is_timeout(&status) => {
            EtcdError::TimedOut { reason }.into()
        }
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted => {
            EtcdError::Interrupted { reason }.into()
        }
        Code::DeadlineExceeded => EtcdError::TimedOut { reason }.into(),
        Code::OutOfRange if message.contains("compacted") => {
            let revision = match request {
                Request::Read { revision } => revision,
                Request::Write { .. } | Request::Lease => 0,
            };
            EtcdError::Compacted { revision }.into()
        }
        Code::InvalidArgument
            if message.contains("request is too large")
                || message.contains("too many operations") =>
        {
            let (len, limit) = match request {
                Request::Write {
                    request_len, limit, ..
                } => (request_len, limit),
                Request::Read { .. } | Request::Lease => (0, 0),
            };
            Error::TooLarge {
                what: "etcd request (rejected by the server)",
                len,
                limit,
            }
        }
        // etcd refuses a transaction whose put names a lease it does not
        // have (expired, revoked, never granted) with "etcdserver: requested
        // lease not found"; nothing was applied.
        Code::NotFound if message.contains(LEASE_NOT_FOUND) => match request {
            Request::Write {
                lease: Some(lease), ..
            } => Error::LeaseNotFound { lease },
            _ => Error::Backend {
                message: format!("etcd ({:?}): {reason}", status.code()),
            },
        },
        Code::ResourceExhausted if message.contains("space exceeded") => {
            io::Error::new(io::ErrorKind::StorageFull, format!("etcd: {reason}")).into()
        }
        Code::DataLoss => Error::corrupt(None, format!("etcd: {reason}")),
        _ => Error::Backend {
            message: format!("etcd ({:?}): {reason}", status.code()),
        },
    }
}

/// What etcd's "no such lease" answer says
/// (`rpctypes.ErrGRPCLeaseNotFound`: "etcdserver: requested lease not
/// found", gRPC `NotFound`).
const LEASE_NOT_FOUND: &str = "requested lease not found";

/// Whether etcd answered that the lease a request named does not exist (it
/// expired, was revoked, or was never granted).
pub(crate) fn lease_not_found(err: &ClientError) -> bool {
    matches!(err, ClientError::GRpcStatus(status)
        if status.code() == Code::NotFound && status.message().contains(LEASE_NOT_FOUND))
}

/// etcd's answers that guarantee the request was rejected before it was
/// proposed to raft.
fn not_applied(message: &str) -> bool {
    message.contains("no leader")
        || message.contains("too many requests")
        || message.contains("not capable")
}

/// Whether the transport could not connect at all (so nothing was sent).
fn refused(status: &tonic::Status) -> bool {
    let mut source = status.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if err.to_string().contains("tcp connect error") {
            return true;
        }
        source = err.source();
    }
    false
}

/// Whether the request was dropped from the client's queue because its
/// connection closed before taking it: hyper then fails it as cancelled
/// with "connection closed" (and hands the request back), so it never
/// reached etcd. A request the connection had taken fails otherwise (a
/// broken pipe, a reset stream, "dispatch task is gone").
fn dropped_unsent(status: &tonic::Status) -> bool {
    let mut source = status.source();
    while let Some(err) = source {
        let cause = err.source();
        if err.to_string() == "operation was canceled"
            && cause.is_some_and(|cause| cause.to_string() == "connection closed")
        {
            return true;
        }
        source = cause;
    }
    false
}

/// Whether the client's own per-request timeout fired.
fn is_timeout(status: &tonic::Status) -> bool {
    let message = status.message().to_ascii_lowercase();
    message.contains("timeout") || message.contains("timed out") || message.contains("deadline")
}

/// `err` and its sources, joined.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    /// A transport error as tonic nests them: a message and its cause.
    #[derive(Debug)]
    struct Transport(&'static str, Option<Box<Transport>>);

    impl fmt::Display for Transport {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Transport {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// A status whose source is "transport error", caused by `error`
    /// caused by `cause` (hyper's error and its cause).
    fn status(code: Code, error: &'static str, cause: &'static str) -> ClientError {
        let hyper = Transport(error, Some(Box::new(Transport(cause, None))));
        let mut status = tonic::Status::new(code, "transport error");
        status.set_source(std::sync::Arc::new(Transport(
            "transport error",
            Some(Box::new(hyper)),
        )));
        ClientError::GRpcStatus(status)
    }

    #[test]
    fn a_request_dropped_unsent_when_its_connection_closed_may_be_sent_again() {
        for code in [Code::Cancelled, Code::Unavailable, Code::Unknown] {
            let unsent = status(code, "operation was canceled", "connection closed");
            assert_eq!(retry_class(&unsent), Retry::Any, "{code:?}");
        }
    }

    #[test]
    fn a_write_dropped_unsent_that_stays_failed_is_reported_as_not_applied() {
        let unsent = status(
            Code::Cancelled,
            "operation was canceled",
            "connection closed",
        );
        let write = Request::Write {
            request_len: 10,
            limit: 100,
            lease: None,
        };
        let error = map_failure(Failure::Etcd(unsent), write);
        let etcd = etcd_error(&error).expect("an etcd error");
        assert!(matches!(etcd, EtcdError::Unavailable { .. }), "{etcd:?}");
        assert!(!etcd.write_may_have_applied());
    }

    #[test]
    fn a_request_the_connection_had_taken_is_retried_only_if_it_reads() {
        for (error, cause) in [
            ("operation was canceled", "dispatch task is gone"),
            ("connection error", "stream closed because of a broken pipe"),
        ] {
            let taken = status(Code::Cancelled, error, cause);
            assert_eq!(retry_class(&taken), Retry::ReadsOnly, "{cause}");
        }
    }
}
