//! How to reach a cluster and which of its limits to respect.

use std::time::Duration;

/// etcd's default `--max-request-bytes` (1.5 MiB).
pub const ETCD_DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// etcd's default `--max-txn-ops`.
pub const ETCD_DEFAULT_MAX_TXN_OPS: usize = 128;

/// Options of [`EtcdStorage::connect`](crate::EtcdStorage::connect).
///
/// The two limits describe the *server*: set them to the cluster's
/// `--max-request-bytes` and `--max-txn-ops` (their defaults are etcd's). The
/// store derives from them the limits it reports in
/// [`seq_storage::Capabilities`] and checks every batch before sending it, so
/// an oversized batch fails with [`seq_storage::Error::TooLarge`] without a
/// round trip.
///
/// ```
/// use std::time::Duration;
/// use seq_etcd::EtcdOptions;
///
/// let options = EtcdOptions {
///     request_timeout: Duration::from_secs(3),
///     ..EtcdOptions::new(["127.0.0.1:2379", "127.0.0.1:22379"], "billing")
/// };
/// assert_eq!(options.max_txn_ops, 128);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Client URLs of the cluster's members (`http://host:port` or
    /// `host:port`). Requests are balanced across them; one reachable member
    /// with a leader is enough.
    pub endpoints: Vec<String>,
    /// The store's namespace: every key lives under it, so many stores share
    /// one cluster. Any bytes, the empty prefix included; prefixes are
    /// encoded so that no store's keys fall inside another's, even when one
    /// prefix starts with another.
    pub prefix: Vec<u8>,
    /// How long one call (a get, a write, one page of a scan) may take,
    /// retries included, before it fails with
    /// [`EtcdError::TimedOut`](crate::EtcdError::TimedOut). Default 10 s.
    pub request_timeout: Duration,
    /// How long opening a connection to one member may take. Default 3 s.
    pub connect_timeout: Duration,
    /// The cluster's `--max-request-bytes`. Default 1.5 MiB, etcd's.
    pub max_request_bytes: usize,
    /// The cluster's `--max-txn-ops`. Default 128, etcd's.
    pub max_txn_ops: usize,
    /// Keys read per round trip by a scan. Default 512. A page whose answer
    /// would be too large to decode is fetched again in smaller pages.
    pub scan_page_len: usize,
}

impl EtcdOptions {
    /// Options for the store under `prefix` on the cluster at `endpoints`,
    /// with every other option at its default.
    pub fn new<E: Into<String>>(
        endpoints: impl IntoIterator<Item = E>,
        prefix: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: prefix.into(),
            ..Self::default()
        }
    }
}

impl Default for EtcdOptions {
    /// No endpoints, the empty prefix, and etcd's default limits.
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            prefix: Vec::new(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_request_bytes: ETCD_DEFAULT_MAX_REQUEST_BYTES,
            max_txn_ops: ETCD_DEFAULT_MAX_TXN_OPS,
            scan_page_len: 512,
        }
    }
}
