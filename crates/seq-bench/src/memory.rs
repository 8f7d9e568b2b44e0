//! The memory workload: the peak resident set size (RSS) of a process that
//! consumes one large segment.
//!
//! The parent fills segment `s0` of space `memory` with 4 KiB entries up to
//! the planned size (1 GiB, 256 MiB with `--quick`) in a fresh store, closes
//! the store, and re-runs this binary as a child (`seq-bench consume-child`,
//! hidden) that only opens the store, consumes the segment to its end with
//! `consume_segment` (the same loop as the throughput workload: batches of
//! 1,024 entries, dropped once counted) and reports the peak RSS of its
//! process. A child keeps the producer's heap out of the figure; in it, the
//! high-water mark (`VmHWM` in `/proc/self/status`) is reset just before
//! the consume by writing `5` to `/proc/self/clear_refs` (when permitted;
//! otherwise the peak also covers opening the store).
//!
//! The figure is the whole process's: the runtime, the stream's pages and
//! the backend's own caches. redb caches the pages it reads up to its cache
//! size, so the child runs twice on redb: with the cache `Store::open_redb`
//! gives (`seq_stream::REDB_CACHE_BYTES`, 16 MiB) and with redb's own default
//! (1 GiB), which shows what that cap saves. On RocksDB the child also runs
//! twice: right after the fill, while RocksDB compacts the level-0 files the
//! fill left (its compaction buffers count too), and once the database is at
//! rest (`RocksStorage::wait_for_compactions`), which is what consuming costs
//! by itself (the `consume_memory` row, measured against the goal).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use seq_stream::{SegmentQuery, Store, StoreOptions, stream_bench};

use crate::model::Memory;
use crate::process::status_kib;
use crate::run::{Backend, Rows, row};

/// The space and segment the workload fills and consumes.
const SPACE: &str = "memory";
const SEGMENT: &str = "s0";
/// Payload bytes per entry.
const PAYLOAD: usize = 4096;
/// The goal: peak RSS while consuming a 1 GiB segment.
pub(crate) const GOAL_MIB: f64 = 64.0;
/// redb's own default cache size, for the second child run.
const REDB_DEFAULT_CACHE: usize = 1 << 30;

/// What the child reports on its stdout (one JSON object).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct ChildReport {
    /// Entries consumed.
    entries: u64,
    /// Payload bytes consumed.
    bytes: u64,
    /// Wall time of the consume.
    elapsed_s: f64,
    /// RSS just before the consume, KiB.
    start_rss_kib: u64,
    /// Peak RSS (VmHWM), KiB.
    peak_rss_kib: u64,
    /// Whether the high-water mark was reset before the consume.
    hwm_reset: bool,
    /// Most entries the stream held at once.
    max_held: u64,
}

/// Fills the segment under `dir`, runs the child on it and adds its rows.
pub(crate) async fn run(backend: Backend, bytes: u64, dir: &Path, rows: &mut Rows) -> Result<()> {
    let entries = usize::try_from(bytes / PAYLOAD as u64).context("segment too large")?;
    let started = Instant::now();
    {
        let store = backend.open(dir)?;
        stream_bench::fill(&store, SPACE, 1, entries, PAYLOAD).await?;
        store.close().await?;
    }
    let mib = bytes as f64 / f64::from(1u32 << 20);
    eprintln!(
        "  (filled a {mib:.0} MiB segment, {entries} × {PAYLOAD} B, in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    // (redb cache, what the run is, row id, label suffix)
    let mut runs: Vec<(Option<usize>, Run, &str, &str)> = Vec::new();
    match backend {
        Backend::Redb => {
            runs.push((
                None,
                Run::AsIs,
                "consume_memory",
                ", Store::open_redb (16 MiB redb cache)",
            ));
            runs.push((
                Some(REDB_DEFAULT_CACHE),
                Run::AsIs,
                "consume_memory_redb_default_cache",
                ", redb's default 1 GiB cache",
            ));
        }
        Backend::Rocksdb => {
            runs.push((
                None,
                Run::AsIs,
                "consume_memory_while_compacting",
                ", RocksDB compacting the fill meanwhile",
            ));
            runs.push((None, Run::AtRest, "consume_memory", ", RocksDB at rest"));
        }
    }
    for (cache, what, id, suffix) in runs {
        if what == Run::AtRest {
            wait_for_compactions(backend, dir)?;
        }
        let report = spawn_child(backend, dir, cache)?;
        if report.entries != entries as u64 {
            bail!(
                "the memory child consumed {} entries, expected {entries}",
                report.entries
            );
        }
        let name =
            format!("seq: consume_segment, {mib:.0} MiB segment (4 KiB), own process{suffix}");
        let mut r = row(
            id,
            name,
            "entries",
            report.entries,
            report.bytes,
            Duration::from_secs_f64(report.elapsed_s),
        );
        let kib = |k: u64| k as f64 / 1024.0;
        r.memory = Some(Memory {
            segment_mib: mib,
            start_rss_mib: kib(report.start_rss_kib),
            peak_rss_mib: kib(report.peak_rss_kib),
            hwm_reset: report.hwm_reset,
            max_held_entries: report.max_held,
            goal_mib: GOAL_MIB,
        });
        rows.push(r, &[]);
    }
    Ok(())
}

/// When a memory child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Right after the fill, with whatever background work it left.
    AsIs,
    /// Once the backend has flushed and compacted everything (RocksDB).
    AtRest,
}

/// Waits until the RocksDB store in `dir` has no flush or compaction left.
fn wait_for_compactions(backend: Backend, dir: &Path) -> Result<()> {
    match backend {
        #[cfg(feature = "rocksdb")]
        Backend::Rocksdb => {
            let started = Instant::now();
            seq_rocks::RocksStorage::open(dir)?.wait_for_compactions()?;
            eprintln!(
                "  (RocksDB flushed and compacted in {:.1} s)",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        _ => {
            // Only RocksDB compacts in the background.
            let _ = dir;
            Ok(())
        }
    }
}

/// Runs `seq-bench consume-child` on the store in `dir`.
fn spawn_child(backend: Backend, dir: &Path, cache: Option<usize>) -> Result<ChildReport> {
    let exe = std::env::current_exe().context("finding the seq-bench binary")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("consume-child")
        .args(["--backend", backend.as_str()])
        .arg("--dir")
        .arg(dir);
    if let Some(cache) = cache {
        command.args(["--redb-cache", &cache.to_string()]);
    }
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("starting the memory child")?;
    if !output.status.success() {
        bail!("the memory child failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("parsing the memory child's report")
}

/// The child: opens the store in `dir`, consumes the segment and prints a
/// [`ChildReport`] as JSON.
pub(crate) fn child(backend: Backend, dir: &Path, redb_cache: Option<usize>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = runtime.block_on(async {
        let store = match redb_cache {
            Some(cache) => {
                if backend != Backend::Redb {
                    bail!("--redb-cache needs --backend redb");
                }
                let storage =
                    seq_redb::RedbStorage::open_with_cache_size(dir.join("seq.redb"), cache)?;
                Store::open_arc(Arc::new(storage), StoreOptions::default())?
            }
            None => backend.open(dir)?,
        };
        let start_rss_kib = status_kib("VmRSS").unwrap_or(0);
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let started = Instant::now();
        let mut stream = store.consume_segment(SPACE, SEGMENT, SegmentQuery::default())?;
        let (entries, bytes) = stream_bench::read_to_end(&mut stream).await?;
        let elapsed_s = started.elapsed().as_secs_f64();
        let peak_rss_kib = status_kib("VmHWM").context("reading VmHWM from /proc/self/status")?;
        let max_held = stream.max_held() as u64;
        drop(stream);
        store.close().await?;
        Ok(ChildReport {
            entries,
            bytes,
            elapsed_s,
            start_rss_kib,
            peak_rss_kib,
            hwm_reset,
            max_held,
        })
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
