//! Options for opening a store and for individual writes.

/// How one write is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Return only once the write is durable (fsync). Default `true`. With
    /// `false` the call returns once the write is applied and visible; a crash
    /// before the next durable write or [`crate::Store::flush`] may lose it
    /// (never part of it).
    pub await_durable: bool,
    /// The commit number to give this write. `0` (the default) lets the store
    /// assign the next one; any other value must be strictly greater than the
    /// current maximum or the write fails with
    /// [`crate::Error::InvalidSeqnum`]. Later assigned numbers continue above
    /// it.
    pub seqnum: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            await_durable: true,
            seqnum: 0,
        }
    }
}

impl WriteOptions {
    /// Durable, store-assigned commit number (the default).
    pub fn durable() -> Self {
        Self::default()
    }

    /// Acknowledged once applied in memory; durable at the next sync.
    pub fn buffered() -> Self {
        Self {
            await_durable: false,
            seqnum: 0,
        }
    }

    /// The same options with a caller-supplied commit number.
    pub fn with_seqnum(mut self, seqnum: u64) -> Self {
        self.seqnum = seqnum;
        self
    }
}

/// Options for [`crate::Store::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Requests that may wait in the writer's queue; callers beyond it wait
    /// (or get [`crate::Error::Busy`] from `try_` calls). Default 4096.
    pub queue_capacity: usize,
    /// Most requests committed in one storage batch. Default 1024.
    pub max_group: usize,
    /// The longest the writer holds a commit group open for requests still
    /// on their way. Default 1 ms; zero turns the wait off.
    ///
    /// The wait is adaptive: it happens only while several callers are
    /// active (one caller in a loop never waits), for as many requests as
    /// the last group acknowledged, for at most half as long as the last
    /// commit took, and it ends once requests stop arriving for a quarter
    /// of that. With many callers that each await their acknowledgement
    /// before sending again, it lets a group hold nearly all of them instead
    /// of half (PostgreSQL's `commit_delay`, MySQL's
    /// `binlog_group_commit_sync_delay`). A single-writer store prepares the
    /// requests it has while it waits, so the wait costs little writer time.
    pub group_wait: std::time::Duration,
    /// Name of this node, recorded in every entry's TRX. Default: the host
    /// name from `HOSTNAME`, or `"local"`.
    pub node: String,
    /// Largest payload accepted in one stream record. Default 4 MiB.
    pub max_payload: usize,
    /// Largest number of records in one produce call. Default 10,000.
    pub max_batch_records: usize,
    /// Multi-writer mode: other `Store`s (processes, machines) write the
    /// same storage at the same time. Always on for a backend whose
    /// [`seq_storage::Capabilities::shared`] is set (etcd); set it yourself to
    /// share one in-process storage between several stores. See the crate
    /// docs' "Multi-writer mode" for what changes. Default `false`.
    pub shared: bool,
    /// Multi-writer mode: how often followers and subscriptions look for
    /// other writers' commits. Default 50 ms. On a backend that notifies of
    /// changes (etcd's watch) they are woken at once and this poll only
    /// backs the notifications up, at least 1 s apart.
    pub poll_interval: std::time::Duration,
    /// Multi-writer mode: how long a commit group that keeps losing races
    /// to other writers (another store changed a value it read) is prepared
    /// again before its requests fail with [`crate::Error::Conflict`].
    /// Default 10 s. Losing is not the caller's fault and some writer wins
    /// every race, so this bounds starvation, not ordinary contention;
    /// meanwhile the store's other requests wait behind the group. Zero
    /// fails a group at its first lost race.
    pub conflict_patience: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            max_group: 1024,
            group_wait: std::time::Duration::from_millis(1),
            node: std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
            max_payload: 4 << 20,
            max_batch_records: 10_000,
            shared: false,
            poll_interval: std::time::Duration::from_millis(50),
            conflict_patience: std::time::Duration::from_secs(10),
        }
    }
}
