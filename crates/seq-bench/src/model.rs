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
    /// The machine's 1-minute load average when the run started and ended
    /// (other work on the machine skews wall-time figures).
    #[serde(default)]
    pub(crate) load: Option<(f64, f64)>,
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
    /// Peak memory, for the memory workload.
    #[serde(default)]
    pub(crate) memory: Option<Memory>,
    /// CPU time of every thread of the process during the measured part,
    /// in seconds, where measured (the produce and consume workloads and
    /// their baselines): read-ahead can make wall time shorter than CPU
    /// time, and a produce's CPU per record shows what the engine costs
    /// beside the storage write.
    #[serde(default)]
    pub(crate) cpu_s: Option<f64>,
    /// This row compared with its baselines.
    pub(crate) ratios: Vec<Ratio>,
}

impl Row {
    /// The process CPU time per operation, as `"CPU 376 ns/entry"`, where
    /// measured.
    pub(crate) fn cpu_per_op(&self) -> Option<String> {
        let cpu = self.cpu_s.filter(|_| self.ops > 0)?;
        let unit = match self.unit.as_str() {
            "entries" => "entry",
            unit => unit.strip_suffix('s').unwrap_or(unit),
        };
        Some(format!("CPU {:.0} ns/{unit}", cpu * 1e9 / self.ops as f64))
    }
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

/// What the memory workload measured: its child process's RSS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Memory {
    /// Payload size of the segment consumed, MiB.
    pub(crate) segment_mib: f64,
    /// RSS once the store was open, just before the consume, MiB.
    pub(crate) start_rss_mib: f64,
    /// Peak RSS (VmHWM) of the process, MiB.
    pub(crate) peak_rss_mib: f64,
    /// Whether the high-water mark was reset before the consume (else the
    /// peak also covers opening the store).
    pub(crate) hwm_reset: bool,
    /// Most entries the stream held at once.
    pub(crate) max_held_entries: u64,
    /// The goal for the peak, MiB.
    pub(crate) goal_mib: f64,
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
