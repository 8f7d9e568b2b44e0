//! The JSON data model: what `seq-bench run` prints and `seq-bench report`
//! reads.

use serde::{Deserialize, Serialize};

/// Everything one `seq-bench run` measured on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BackendReport {
    /// `redb` or `rocksdb`.
    pub(crate) backend: String,
    /// Whether this was a `--quick` run.
    pub(crate) quick: bool,
    /// The machine's fdatasync rate measured at the start of the run.
    pub(crate) fdatasync_per_sec: f64,
    /// Wall time of the whole run, setup included.
    pub(crate) total_seconds: f64,
    /// One row per workload, in run order.
    pub(crate) rows: Vec<Row>,
}

/// One workload's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Row {
    /// Stable identifier, e.g. `produce_16p_100b`.
    pub(crate) id: String,
    /// Human-readable name.
    pub(crate) name: String,
    /// What `ops` counts: `syncs`, `commits`, `keys`, `entries`, `numbers`,
    /// `records`, `samples`.
    pub(crate) unit: String,
    /// Operations completed.
    pub(crate) ops: u64,
    /// Payload bytes moved (0 when not meaningful).
    pub(crate) bytes: u64,
    /// Wall time of the measured part, in seconds.
    pub(crate) elapsed_s: f64,
    /// `ops / elapsed_s`.
    pub(crate) per_sec: f64,
    /// Synced storage writes (and flushes) during the workload, when counted.
    pub(crate) syncs: Option<u64>,
    /// `ops / syncs`, when syncs were counted and non-zero.
    pub(crate) per_sync: Option<f64>,
    /// Concurrent producers or writers, for the concurrent workloads.
    pub(crate) concurrency: Option<u64>,
    /// Payload size in bytes, for the produce workloads.
    pub(crate) payload: Option<u64>,
    /// Latency percentiles, for the latency workloads.
    pub(crate) latency: Option<Latency>,
    /// This row compared with its baselines.
    pub(crate) ratios: Vec<Ratio>,
}

/// Latency percentiles of a sampled workload, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Latency {
    /// Samples taken.
    pub(crate) samples: u64,
    /// Median.
    pub(crate) p50_us: f64,
    /// 99th percentile.
    pub(crate) p99_us: f64,
    /// Mean.
    pub(crate) mean_us: f64,
}

/// A row's figure divided by a baseline row's figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ratio {
    /// The baseline row's id.
    pub(crate) baseline: String,
    /// The baseline row's name, for display.
    pub(crate) baseline_name: String,
    /// Throughput rows: this row's `per_sec` / the baseline's (higher is
    /// better). Latency rows: this row's p50 / the baseline's mean latency
    /// (lower is better).
    pub(crate) ratio: f64,
}

/// The combined file `--json` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Combined {
    /// How to read the figures.
    pub(crate) note: String,
    /// One report per backend run.
    pub(crate) backends: Vec<BackendReport>,
}
