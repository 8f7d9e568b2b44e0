//! etcd backend for seq: [`EtcdStorage`] implements [`seq_storage::Storage`]
//! on an etcd v3 cluster, so that several processes on several machines
//! share one store.
//!
//! ```
//! use seq_etcd::testing::Cluster;
//! use seq_etcd::{EtcdOptions, EtcdStorage};
//! use seq_storage::{Durability, KeyRange, ScanOptions, Storage, WriteBatch};
//!
//! # fn main() -> seq_storage::Result<()> {
//! // Three etcd members on 127.0.0.1 with free ports (feature `testing`);
//! // in production, the endpoints of your cluster.
//! let cluster = Cluster::start();
//! let store = EtcdStorage::connect(EtcdOptions::new(cluster.endpoints(), "billing"))?;
//!
//! let mut batch = WriteBatch::new();
//! batch.require_absent(b"invoice/1".to_vec());
//! batch.put(b"invoice/1".to_vec(), b"paid".to_vec());
//! batch.put(b"invoice/2".to_vec(), b"open".to_vec());
//! store.write(batch, Durability::Sync)?;
//!
//! let rows = store
//!     .scan(KeyRange::prefix(b"invoice/"), ScanOptions::reverse())?
//!     .collect::<seq_storage::Result<Vec<_>>>()?;
//! assert_eq!(&rows[0].0[..], b"invoice/2");
//!
//! // Another store on the same cluster sees none of it.
//! let other = EtcdStorage::connect(EtcdOptions::new(cluster.endpoints(), "billing/eu"))?;
//! assert_eq!(other.get(b"invoice/1")?, None);
//! # Ok(())
//! # }
//! ```
//!
//! # How the trait maps onto etcd
//!
//! * **Namespace.** Every key of a store lives under its
//!   [`EtcdOptions::prefix`], encoded so that no store's keyspace contains
//!   another's (see [`EtcdStorage::namespace`]). Keys are arbitrary bytes,
//!   the empty key included.
//! * **[`Storage::get`]** is one linearizable range read of one key.
//! * **[`Storage::scan`]** reads [`EtcdOptions::scan_page_len`] keys per round
//!   trip, lazily. Every page is read at the revision of the first page, which
//!   is read when `scan` is called, so a scan is one consistent snapshot. If
//!   etcd compacts that revision before the scan ends, the scan yields
//!   [`EtcdError::Compacted`].
//! * **[`Storage::write`]** is one etcd transaction. `require_absent` compares
//!   the key's create revision with 0; `require_equals` compares its value
//!   (etcd fails a value comparison on a missing key, so the key must exist).
//!   etcd refuses a transaction that names a key twice, so operations are
//!   first coalesced per key: the last operation on a key wins, and a range
//!   delete is split around keys put after it. When a comparison fails, the
//!   transaction's failure branch reads every precondition key, so the
//!   [`Error::Conflict`] names the first failing key without a second round
//!   trip.
//! * **[`Storage::watch_changes`]** keeps an etcd watch on the store's
//!   prefix open and calls back after every change (and after every
//!   reconnection of the watch), so a multi-writer engine wakes its followers
//!   without polling.
//! * **Leases.** [`Storage::leases`] grants, keeps alive and revokes etcd
//!   leases, and a [`WriteBatch::put_leased`] is a put with the etcd lease,
//!   so etcd deletes the key when the lease expires or is revoked (a later
//!   plain put or delete detaches it). A ttl is rounded up to whole seconds,
//!   at least 1 s (etcd raises it to its own minimum, 2 s by default). Leases
//!   belong to the cluster, not to a store's prefix.
//! * **Durability.** etcd acknowledges a write only once a quorum of members
//!   has it in their fsynced write-ahead log, so [`Durability::Sync`] and
//!   [`Durability::Buffered`] are the same, and [`Storage::flush`] has nothing
//!   to do.
//!
//! # Limits
//!
//! etcd refuses requests over `--max-request-bytes` (1.5 MiB by default) and
//! transactions over `--max-txn-ops` operations (128). [`EtcdOptions`] names
//! the cluster's values; [`Storage::capabilities`] reports them (see
//! [`EtcdStorage::capabilities`] for the headroom kept), and every batch is
//! checked before it is sent: an oversized one is [`Error::TooLarge`] and
//! nothing is written.
//!
//! # Errors
//!
//! Conflicts, limits and corruption are the usual [`seq_storage::Error`]
//! variants. Transient etcd failures (no leader, no reachable member, a
//! timeout, a broken connection, a compacted scan) are [`Error::Io`] carrying
//! an [`EtcdError`]; [`etcd_error`] and [`is_retriable`] inspect them, and
//! [`EtcdError::write_may_have_applied`] says whether a failed write may have
//! been applied after all. Calls that etcd certainly did not apply (no
//! member reachable, no leader, a request still queued in the client when
//! its connection closed) are retried within
//! [`EtcdOptions::request_timeout`]; reads are also retried after other
//! transient failures.
//!
//! # Threads and runtimes
//!
//! etcd-client is async; the [`Storage`] trait is not. Each [`EtcdStorage`]
//! owns a small tokio runtime and runs every call on it, so its methods may be
//! called from any thread, including one that belongs to another tokio
//! runtime (where they block that thread, as every [`Storage`] call may).
//!
//! # Crate features
//!
//! * `testing` — exposes the `testing` module: a local N-member etcd cluster started
//!   from Debian's `etcd-server` binary, for tests and benchmarks.

mod bridge;
mod error;
mod lease;
mod options;
mod scan;
mod txn;

#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, ConnectOptions, GetOptions, KvClient, LeaseClient, TxnOpResponse, WatchClient,
    WatchOptions,
};
use seq_storage::{
    Capabilities, ChangeNotify, Durability, Error, KeyRange, Leases, Result, ScanIter, ScanOptions,
    Storage, WriteBatch, check_limits,
};

use crate::bridge::Bridge;
use crate::error::{Failure, Request, Retry, map_failure, response_too_large, retry_class};
use crate::scan::{Page, Scan};
use crate::txn::{Limits, Namespace};

pub use crate::error::{EtcdError, etcd_error, is_retriable};
pub use crate::options::{ETCD_DEFAULT_MAX_REQUEST_BYTES, ETCD_DEFAULT_MAX_TXN_OPS, EtcdOptions};

/// Bytes a value at [`Capabilities::max_value_len`] leaves for its key within
/// [`Capabilities::max_batch_bytes`].
const KEY_ALLOWANCE: usize = 4 << 10;

/// The smallest `max_request_bytes` accepted.
const MIN_REQUEST_BYTES: usize = 16 << 10;

/// A [`Storage`] on an etcd v3 cluster, under one key prefix.
///
/// Cheap to share between threads (it is `Sync`); open one per store and
/// process. Dropping it closes its connections.
pub struct EtcdStorage {
    // Dropped before the runtime that serves it.
    kv: KvClient,
    watch: WatchClient,
    lease: LeaseClient,
    namespace: Namespace,
    options: EtcdOptions,
    bridge: Bridge,
}

impl EtcdStorage {
    /// Connects to the cluster at [`EtcdOptions::endpoints`] and checks,
    /// with one linearizable read, that it answers.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] of kind [`io::ErrorKind::InvalidInput`] for unusable
    /// options (no endpoints, a malformed endpoint, limits too small to be
    /// etcd's), and an [`EtcdError`] when the cluster cannot be reached or has
    /// no leader within [`EtcdOptions::request_timeout`].
    pub fn connect(options: EtcdOptions) -> Result<Self> {
        validate(&options)?;
        let bridge = Bridge::new("seq-etcd")?;
        let endpoints = options.endpoints.clone();
        let connect = ConnectOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(options.connect_timeout)
            // HTTP/2 pings notice a silently dead member. etcd refuses pings
            // more often than every 5 s, or on idle connections (it answers
            // with GOAWAY), hence 10 s and only while requests are open.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(false)
            .with_require_leader(true);
        let client = bridge
            .run(async move { Client::connect(endpoints, Some(connect)).await })
            .ok_or_else(stopped)?
            .map_err(|e| map_failure(Failure::Etcd(e), Request::Read { revision: 0 }))?;
        // Large values in a full page of a scan can exceed tonic's default
        // 4 MiB; a page that still does is read again in smaller pages.
        let decode_limit = options.max_request_bytes.saturating_mul(2).max(16 << 20);
        let kv = client.kv_client().max_decoding_message_size(decode_limit);
        let store = Self {
            kv,
            watch: client.watch_client(),
            lease: client.lease_client(),
            namespace: Namespace::new(&options.prefix),
            options,
            bridge,
        };
        let probe = GetOptions::new().with_count_only();
        store.range(store.namespace.as_bytes().to_vec(), probe, 1, 0)?;
        Ok(store)
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &EtcdOptions {
        &self.options
    }

    /// Where the store's keys live in etcd: a store key `k` is the etcd key
    /// `namespace ++ k`. The namespace is the prefix with every `0x00` byte
    /// written as `0x00 0xFF`, followed by `0x00 0x01` (so `b"billing"` is
    /// `b"billing\x00\x01"`).
    pub fn namespace(&self) -> &[u8] {
        self.namespace.as_bytes()
    }

    /// Runs a call on the store's runtime and maps its failure.
    fn run<T, F>(&self, call: F, request: Request) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, Failure>> + Send + 'static,
        T: Send + 'static,
    {
        match self.bridge.run(call) {
            Some(Ok(value)) => Ok(value),
            Some(Err(failure)) => Err(map_failure(failure, request)),
            None => Err(stopped()),
        }
    }

    /// Reads up to `limit` keys from `key` with `options` (range end, sort,
    /// revision), halving the page while its answer is too large to decode.
    pub(crate) fn range(
        &self,
        key: Vec<u8>,
        options: GetOptions,
        limit: usize,
        revision: i64,
    ) -> Result<Page> {
        let kv = self.kv.clone();
        let timeout = self.options.request_timeout;
        let read = async move {
            let mut limit = limit.max(1);
            loop {
                let page = options
                    .clone()
                    .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
                let result = with_retries(timeout, false, || {
                    let (mut kv, key, page) = (kv.clone(), key.clone(), page.clone());
                    async move { kv.get(key, Some(page)).await }
                })
                .await;
                match result {
                    Err(Failure::Etcd(err)) if limit > 1 && response_too_large(&err) => {
                        limit /= 2;
                    }
                    Err(failure) => return Err(failure),
                    Ok(mut response) => {
                        return Ok(Page {
                            revision: response.header().map_or(0, |h| h.revision()),
                            more: response.more(),
                            count: response.count(),
                            kvs: response
                                .take_kvs()
                                .into_iter()
                                .map(|kv| kv.into_key_value())
                                .collect(),
                            page_len: limit,
                        });
                    }
                }
            }
        };
        self.run(read, Request::Read { revision })
    }

    fn limits(&self) -> Limits {
        Limits {
            max_request_bytes: self.options.max_request_bytes,
            max_txn_ops: self.options.max_txn_ops,
        }
    }

    /// [`Capabilities::max_batch_bytes`]: the server's request limit less a
    /// headroom of 1/16 of it, at most 64 KiB, for the prefix, the protobuf
    /// framing of each operation and the preconditions.
    fn max_batch_bytes(&self) -> usize {
        let limit = self.options.max_request_bytes;
        limit - (limit / 16).min(64 << 10)
    }
}

impl Storage for EtcdStorage {
    /// Persistent and shared, with limits derived from the server's:
    ///
    /// * `max_batch_bytes`: `max_request_bytes` less 1/16 of it, at most
    ///   64 KiB (1,507,328 bytes at etcd's defaults);
    /// * `max_value_len`: 4 KiB less than that, so a value at the limit fits in
    ///   a batch with its key;
    /// * `max_batch_ops`: `max_txn_ops`;
    /// * `leases`: etcd leases (see [`Storage::leases`]).
    ///
    /// The transaction actually sent is checked too, before sending: its
    /// encoded size (prefixed keys, framing, precondition values) against
    /// `max_request_bytes`, and its operations after coalescing (a range
    /// delete split around puts counts once per piece) and its preconditions
    /// against `max_txn_ops`.
    fn capabilities(&self) -> Capabilities {
        let batch = self.max_batch_bytes();
        Capabilities::persistent()
            .with_shared()
            .with_max_batch_bytes(batch)
            .with_max_value_len(batch.saturating_sub(KEY_ALLOWANCE))
            .with_max_batch_ops(self.options.max_txn_ops)
            .with_leases()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let kv = self.kv.clone();
        let key = self.namespace.key(key);
        let read = with_retries(self.options.request_timeout, false, move || {
            let (mut kv, key) = (kv.clone(), key.clone());
            async move { kv.get(key, None).await }
        });
        let mut response = self.run(read, Request::Read { revision: 0 })?;
        Ok(response
            .take_kvs()
            .into_iter()
            .next()
            .map(|kv| Bytes::from(kv.into_key_value().1)))
    }

    fn scan(&self, range: KeyRange, options: ScanOptions) -> Result<ScanIter<'_>> {
        if range.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let (lo, hi) = self.namespace.range(&range);
        let scan = Scan::start(self, lo, hi, options.direction, options.limit)?;
        Ok(Box::new(scan))
    }

    /// One etcd transaction; `durability` makes no difference (see the
    /// crate docs). A leased put is a put with the etcd lease; when etcd
    /// no longer has a lease a leased put names, it refuses the whole
    /// transaction and the error is [`Error::LeaseNotFound`], naming the
    /// first of the batch's leases that etcd says is gone (or the first of
    /// them, if it cannot tell). etcd evaluates the preconditions first, so
    /// a batch with both a failing precondition and a missing lease is an
    /// [`Error::Conflict`]; and a leased put that a later operation on the
    /// same key overrides is not sent, so its lease is not checked.
    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<()> {
        check_limits(&self.capabilities(), &batch)?;
        let (preconditions, ops) = batch.into_parts();
        let Some(mut plan) = txn::plan(&self.namespace, preconditions, ops, self.limits())? else {
            return Ok(());
        };
        let txn = std::mem::take(&mut plan.txn);
        let kv = self.kv.clone();
        let call = with_retries(self.options.request_timeout, true, move || {
            let (mut kv, txn) = (kv.clone(), txn.clone());
            async move { kv.txn(txn).await }
        });
        let request = Request::Write {
            request_len: plan.request_len,
            limit: self.options.max_request_bytes,
            lease: plan.leases.first().copied(),
        };
        let response = match self.run(call, request) {
            Err(Error::LeaseNotFound { .. }) => {
                let lease = self.missing_lease(&plan.leases);
                return Err(Error::LeaseNotFound { lease });
            }
            other => other?,
        };
        if response.succeeded() {
            return Ok(());
        }
        let read: Vec<Option<Vec<u8>>> = response
            .op_responses()
            .into_iter()
            .map(|op| match op {
                TxnOpResponse::Get(mut get) => get
                    .take_kvs()
                    .into_iter()
                    .next()
                    .map(|kv| kv.into_key_value().1),
                _ => None,
            })
            .collect();
        let key = txn::failed_precondition(&plan, &read)?;
        Err(Error::Conflict { key })
    }

    /// Nothing to do: etcd acknowledged every write only once a quorum had
    /// fsynced it.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// An etcd watch on the store's prefix, kept open on the store's
    /// runtime: `notify` runs after every watch response that carries
    /// events, and after each (re)connection of the watch, which is retried
    /// every 200 ms while the cluster is unreachable. It stops when the
    /// storage is dropped.
    fn watch_changes(&self, notify: ChangeNotify) -> bool {
        let mut client = self.watch.clone();
        let prefix = self.namespace.as_bytes().to_vec();
        self.bridge.spawn(async move {
            loop {
                let options = WatchOptions::new().with_prefix();
                if let Ok(mut stream) = client.watch(prefix.clone(), Some(options)).await {
                    // Writes made while no watch was open are not replayed.
                    notify();
                    while let Ok(Some(response)) = stream.message().await {
                        if !response.events().is_empty() {
                            notify();
                        }
                        if response.canceled() {
                            break;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        true
    }

    /// etcd's leases (see the [`Leases`] impl of [`EtcdStorage`]).
    fn leases(&self) -> Option<&dyn Leases> {
        Some(self)
    }
}

impl fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStorage")
            .field("endpoints", &self.options.endpoints)
            .field("prefix", &seq_storage::show_key(&self.options.prefix))
            .finish_non_exhaustive()
    }
}

/// Makes one call, again after failures that allow it, until it succeeds,
/// fails for good or `timeout` has passed. A write (`write`) is sent again
/// only when etcd certainly did not apply it.
async fn with_retries<T, F, Fut>(
    timeout: Duration,
    write: bool,
    mut attempt: F,
) -> std::result::Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        let err = match tokio::time::timeout_at(deadline, attempt()).await {
            Err(_) => return Err(Failure::Deadline(timeout)),
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => err,
        };
        let again = match retry_class(&err) {
            Retry::Any => true,
            Retry::ReadsOnly => !write,
            Retry::Never => false,
        };
        if !again || tokio::time::Instant::now() + pause >= deadline {
            return Err(Failure::Etcd(err));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

fn validate(options: &EtcdOptions) -> Result<()> {
    let invalid = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why).into());
    if options.endpoints.is_empty() {
        return invalid("EtcdOptions::endpoints is empty".to_owned());
    }
    if options.max_request_bytes < MIN_REQUEST_BYTES {
        return invalid(format!(
            "EtcdOptions::max_request_bytes is {}, below the {MIN_REQUEST_BYTES} this backend needs",
            options.max_request_bytes
        ));
    }
    if options.max_txn_ops == 0 {
        return invalid("EtcdOptions::max_txn_ops is 0".to_owned());
    }
    if options.request_timeout.is_zero() {
        return invalid("EtcdOptions::request_timeout is zero".to_owned());
    }
    Ok(())
}

fn stopped() -> Error {
    Error::Closed {
        reason: "the etcd client's runtime stopped before answering".to_owned(),
    }
}
