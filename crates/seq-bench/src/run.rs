//! `seq-bench run`: every workload for one backend, in this process, one
//! after the other, on fresh stores in a temporary directory.
//!
//! The workloads themselves live in the library crates
//! (`seq_storage::baseline`, `seq_stream::sequence_bench`,
//! `seq_stream::stream_bench`); this module sizes them, runs them and turns
//! their measurements into [`Row`]s with ratios to their baselines.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use seq_storage::Storage;
use seq_storage::baseline;
use seq_stream::sequence_bench::{self, CountingStorage, Prefixes};
use seq_stream::stream_bench::Placement;
use seq_stream::{ProduceOptions, Record, SegmentQuery, Store, StoreOptions, stream_bench};

use crate::model::{BackendReport, Latency, Ratio, Row};

/// Waits until a backend's background work is done (RocksDB: memtable
/// flushes and compactions; nothing on redb), so a measurement does not
/// share this 2-core machine with a compaction of earlier workloads' data.
#[derive(Default)]
struct Settle(#[cfg(feature = "rocksdb")] Option<Arc<seq_rocks::RocksStorage>>);

impl Settle {
    async fn wait(&self) -> Result<()> {
        #[cfg(feature = "rocksdb")]
        if let Some(rocks) = &self.0 {
            let rocks = rocks.clone();
            tokio::task::spawn_blocking(move || rocks.wait_for_compactions()).await??;
        }
        Ok(())
    }
}

/// Which backend to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// The embedded redb backend.
    Redb,
    /// RocksDB (needs the `rocksdb` feature).
    Rocksdb,
}

impl Backend {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Redb => "redb",
            Self::Rocksdb => "rocksdb",
        }
    }

    /// Opens a store of this backend in `dir` (created if needed).
    pub(crate) fn open(self, dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        match self {
            Self::Redb => Ok(Store::open_redb(dir)?),
            #[cfg(feature = "rocksdb")]
            Self::Rocksdb => Ok(Store::open_rocksdb(dir)?),
            #[cfg(not(feature = "rocksdb"))]
            Self::Rocksdb => {
                bail!("this seq-bench was built without RocksDB; rebuild with `--features rocksdb`")
            }
        }
    }

    /// The raw storage of a fresh store in `dir` (the store itself
    /// closed), and how to wait for its background work.
    async fn raw_storage(self, dir: &Path) -> Result<(Arc<dyn Storage>, Settle)> {
        let (storage, settle) = match self {
            #[cfg(feature = "rocksdb")]
            Self::Rocksdb => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let rocks = Arc::new(seq_rocks::RocksStorage::open(dir)?);
                let storage: Arc<dyn Storage> = rocks.clone();
                let store = Store::open_arc(storage.clone(), StoreOptions::default())?;
                store.close().await?;
                (storage, Settle(Some(rocks)))
            }
            _ => {
                let store = self.open(dir)?;
                let storage = store.storage().clone();
                store.close().await?;
                (storage, Settle::default())
            }
        };
        Ok((storage, settle))
    }
}

/// The groups of workloads a run can be limited to (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Section {
    /// The machine's fdatasync rate.
    Machine,
    /// Raw backend baselines (commits, batches, range scan, naive counter).
    Raw,
    /// Sequences: allocation, durable `next()`, group commit.
    Sequences,
    /// Produce throughput against raw synced batches.
    Produce,
    /// consume_segment and consume_space against raw scans of the same keys.
    Consume,
    /// Follow latency.
    Follow,
    /// Peak RSS of a child process consuming one large segment.
    Memory,
}

/// Producer counts of the produce workloads (and the chart's x axis).
pub(crate) const PRODUCERS: [usize; 4] = [1, 4, 16, 64];
/// The producer count that is also measured appending to one shared
/// segment (the goal's count; the others only a segment each).
const ONE_SEGMENT_PRODUCERS: usize = 64;
/// Payload sizes of the produce workloads.
pub(crate) const PAYLOADS: [usize; 2] = [100, 1024];

/// How long and how big the workloads are.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Wall time each time-boxed workload aims for.
    target: Duration,
    /// Entries loaded for the raw range scan.
    scan_entries: u64,
    /// Entries loaded for the consume workloads.
    consume_entries: usize,
    /// Follow-latency samples.
    follow_samples: usize,
    /// Payload bytes of the segment the memory workload consumes.
    memory_bytes: u64,
}

impl Plan {
    /// About 1 minute per backend with `quick`, 4 without.
    fn new(quick: bool) -> Self {
        let k: u32 = if quick { 1 } else { 4 };
        Self {
            target: Duration::from_millis(1500) * k,
            scan_entries: 200_000 * u64::from(k),
            consume_entries: 100_000 * k as usize,
            follow_samples: if quick { 200 } else { 1000 },
            memory_bytes: if quick { 256 << 20 } else { 1 << 30 },
        }
    }
}

/// What a chunk of a workload did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sample {
    ops: u64,
    bytes: u64,
    elapsed: Duration,
    syncs: u64,
    /// CPU time the whole process used meanwhile (all threads: the
    /// engine's writer and its callers, the backend's own), where
    /// measured.
    cpu: Option<Duration>,
}

impl Sample {
    fn new(ops: u64, bytes: u64, elapsed: Duration) -> Self {
        Self {
            ops,
            bytes,
            elapsed,
            syncs: 0,
            cpu: None,
        }
    }

    fn synced(mut self, syncs: u64) -> Self {
        self.syncs = syncs;
        self
    }

    /// Records the process CPU time used since `started` (a
    /// [`crate::process::cpu_time`] reading; nothing where it is `None`).
    fn with_cpu_since(mut self, started: Option<Duration>) -> Self {
        self.cpu = started
            .zip(crate::process::cpu_time())
            .map(|(before, after)| after.saturating_sub(before));
        self
    }

    fn add(&mut self, other: Self) {
        // CPU time is known for a sum only if it is for every part.
        self.cpu = match (self.cpu, other.cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (None, b) if self.ops == 0 => b,
            _ => None,
        };
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.elapsed += other.elapsed;
        self.syncs += other.syncs;
    }
}

/// Runs a workload in chunks until its measured time reaches `target`:
/// `f(n)` runs `n` units (calls, or calls per producer) of each of `N`
/// workloads measured side by side (a workload and its baseline alternate
/// chunk by chunk, so a disk whose speed drifts treats both alike). The
/// first chunk has `first` units; each later one aims at half the time left
/// (at least an eighth of the target) at the rate seen so far, so the run
/// ends close to `target` whatever the disk's speed, and a disk that slows
/// down midway overshoots by at most one chunk. Returns each workload's sum
/// over the chunks.
async fn time_boxed<const N: usize, F, Fut>(
    target: Duration,
    first: u64,
    mut f: F,
) -> Result<[Sample; N]>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<[Sample; N]>>,
{
    let mut totals = [Sample::default(); N];
    let mut units = 0u64;
    let mut n = first.max(1);
    loop {
        for (total, sample) in totals.iter_mut().zip(f(n).await?) {
            total.add(sample);
        }
        units += n;
        let elapsed: Duration = totals.iter().map(|t| t.elapsed).sum();
        if elapsed >= target {
            return Ok(totals);
        }
        let rate = units as f64 / elapsed.as_secs_f64().max(1e-6);
        let left = (target - elapsed).as_secs_f64();
        let aim = (left / 2.0).max(target.as_secs_f64() / 8.0);
        n = ((rate * aim) as u64).clamp(1, n.saturating_mul(64));
    }
}

/// Runs `work` and returns its sample with the synced writes it made
/// through `counting` and the process CPU time it took.
async fn counted<S, E>(
    counting: &CountingStorage<S>,
    work: impl Future<Output = std::result::Result<stream_bench::Measurement, E>>,
) -> std::result::Result<Sample, E> {
    let before = counting.syncs();
    let cpu = crate::process::cpu_time();
    let m = work.await?;
    let syncs = counting.syncs() - before;
    Ok(Sample::new(m.ops, m.bytes, m.elapsed)
        .synced(syncs)
        .with_cpu_since(cpu))
}

/// The row of a `raw_group_commit` baseline: `producers` callers served
/// by a channel and one thread writing synced batches (`placed` says where,
/// when not a segment each).
fn group_commit_row(
    id: String,
    producers: usize,
    payload: usize,
    placed: &str,
    sample: Sample,
) -> Row {
    let callers = if producers == 1 { "caller" } else { "callers" };
    let mut row = sample_row(
        id,
        format!(
            "raw group commit: {producers} {callers}{placed}, {payload} B, a channel and one thread"
        ),
        "records",
        sample,
    );
    row.concurrency = Some(producers as u64);
    row.payload = Some(payload as u64);
    row
}

/// Collects rows and resolves baselines by id.
#[derive(Debug, Default)]
pub(crate) struct Rows(Vec<Row>);

impl Rows {
    fn get(&self, id: &str) -> Option<&Row> {
        self.0.iter().find(|r| r.id == id)
    }

    /// Adds `row`, comparing it with the rows `baselines` (by id) already
    /// added, and echoes it to stderr.
    pub(crate) fn push(&mut self, mut row: Row, baselines: &[&str]) {
        for id in baselines {
            let Some(base) = self.get(id) else { continue };
            let ratio = match (row.latency, base.latency) {
                (Some(lat), Some(base_lat)) => lat.p50_us / base_lat.p50_us.max(f64::MIN_POSITIVE),
                (Some(lat), None) => lat.p50_us / (1e6 / base.per_sec.max(f64::MIN_POSITIVE)),
                _ => row.per_sec / base.per_sec.max(f64::MIN_POSITIVE),
            };
            row.ratios.push(Ratio {
                baseline: base.id.clone(),
                baseline_name: base.name.clone(),
                ratio,
            });
        }
        eprintln!(
            "  {:<48} {:>14.0} {}/s{}{}{}{}",
            row.name,
            row.per_sec,
            row.unit,
            row.latency
                .map(|l| format!(" (p50 {:.0} µs, p99 {:.0} µs)", l.p50_us, l.p99_us))
                .unwrap_or_default(),
            row.memory
                .map(|m| format!(" (peak RSS {:.1} MiB)", m.peak_rss_mib))
                .unwrap_or_default(),
            row.cpu_per_op()
                .map(|cpu| format!(" ({cpu})"))
                .unwrap_or_default(),
            row.ratios
                .iter()
                .map(|r| format!(" {:.2}× {}", r.ratio, r.baseline))
                .collect::<String>()
        );
        self.0.push(row);
    }
}

/// Builds a row from the common parts of a measurement.
pub(crate) fn row(
    id: impl Into<String>,
    name: impl Into<String>,
    unit: &str,
    ops: u64,
    bytes: u64,
    elapsed: Duration,
) -> Row {
    let elapsed_s = elapsed.as_secs_f64();
    Row {
        id: id.into(),
        name: name.into(),
        unit: unit.to_owned(),
        ops,
        bytes,
        elapsed_s,
        per_sec: ops as f64 / elapsed_s.max(f64::MIN_POSITIVE),
        syncs: None,
        per_sync: None,
        concurrency: None,
        payload: None,
        latency: None,
        memory: None,
        cpu_s: None,
        ratios: Vec::new(),
    }
}

/// A row from a [`Sample`]; syncs are recorded when any were counted.
fn sample_row(id: impl Into<String>, name: impl Into<String>, unit: &str, m: Sample) -> Row {
    let mut r = row(id, name, unit, m.ops, m.bytes, m.elapsed);
    r.cpu_s = m.cpu.map(|cpu| cpu.as_secs_f64());
    if m.syncs > 0 {
        r.syncs = Some(m.syncs);
        r.per_sync = Some(m.ops as f64 / m.syncs as f64);
    }
    r
}

/// `count` calls of `AtomicU64::fetch_add(1)`: the floor any in-memory
/// allocator is compared with.
fn fetch_add(count: u64) -> Duration {
    let counter = AtomicU64::new(0);
    let started = Instant::now();
    for _ in 0..count {
        std::hint::black_box(counter.fetch_add(std::hint::black_box(1), Ordering::Relaxed));
    }
    started.elapsed()
}

/// Runs the workloads of the sections in `only` (every section when it is
/// empty) on `backend` under `dir` and returns the report.
pub(crate) async fn run(
    backend: Backend,
    quick: bool,
    only: &[Section],
    dir: &Path,
    options: StoreOptions,
) -> Result<BackendReport> {
    let started = Instant::now();
    let load_start = crate::process::load_average();
    let name = backend.as_str();
    eprintln!(
        "seq-bench: {name}{} in {}",
        if quick { " (quick)" } else { "" },
        dir.display()
    );
    let plan = Plan::new(quick);
    let target = plan.target;
    let mut rows = Rows::default();
    let want = |section| only.is_empty() || only.contains(&section);

    // The machine.
    let mut fsync_rate = 0.0;
    if want(Section::Machine) {
        let [m] = time_boxed(target, 20, |n| async move {
            let m = baseline::fdatasync_rate(dir, n)?;
            Ok([Sample::new(m.ops, m.bytes, m.elapsed)])
        })
        .await?;
        rows.push(
            sample_row("fdatasync", "machine: fdatasync (4 KiB)", "syncs", m),
            &[],
        );
        fsync_rate = m.ops as f64 / m.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    }

    // Raw backend baselines, on a storage of their own.
    let (raw_storage, raw_settle) = backend.raw_storage(&dir.join("raw")).await?;
    let raw = &*raw_storage;
    // The group commit baseline's syncs are counted like the engine's.
    let raw_counting = &Arc::new(CountingStorage::new(raw_storage.clone()));
    if want(Section::Raw) {
        let [m] = time_boxed(target, 20, |n| async move {
            let m = baseline::synced_single_commits(raw, n)?;
            Ok([Sample::new(m.ops, m.bytes, m.elapsed).synced(m.ops)])
        })
        .await?;
        rows.push(
            sample_row(
                "raw_single_commit",
                "raw: synced single-key commit",
                "commits",
                m,
            ),
            &["fdatasync"],
        );
        let [m] = time_boxed(target, 2, |n| async move {
            let m = baseline::synced_batch_1000(raw, n)?;
            Ok([Sample::new(m.ops, m.bytes, m.elapsed).synced(n)])
        })
        .await?;
        rows.push(
            sample_row("raw_batch_1000", "raw: synced 1000-key batch", "keys", m),
            &["raw_single_commit"],
        );
        baseline::load_scan_range(raw, plan.scan_entries, 100)?;
        let m = best_of(3, || {
            baseline::scan_loaded_range(raw, plan.scan_entries)
                .map(|m| Sample::new(m.ops, m.bytes, m.elapsed))
        })?;
        rows.push(
            sample_row(
                "raw_range_scan",
                "raw: range scan (100 B values)",
                "keys",
                m,
            ),
            &[],
        );
        let [m] = time_boxed(target, 20, |n| async move {
            let m = sequence_bench::naive_synced_counter(raw, n)?;
            Ok([Sample::new(m.ops, 0, m.elapsed).synced(m.ops)])
        })
        .await?;
        rows.push(
            sample_row(
                "naive_synced_counter",
                "raw: naive synced counter",
                "numbers",
                m,
            ),
            &["raw_single_commit"],
        );
    }

    // The engine, on a counting storage so syncs can be attributed.
    let (counting, settle) = {
        let (storage, settle) = backend.raw_storage(&dir.join("engine")).await?;
        (Arc::new(CountingStorage::new(storage)), settle)
    };
    let store = Store::open_arc(counting.clone(), options)?;
    let store = &store;
    let counting = &*counting;

    // Sequences.
    if want(Section::Sequences) {
        let [m] = time_boxed(target / 2, 1_000_000, |n| async move {
            Ok([Sample::new(n, 0, fetch_add(n))])
        })
        .await?;
        rows.push(
            sample_row("fetch_add", "AtomicU64::fetch_add(1)", "numbers", m),
            &[],
        );
        let [m] = time_boxed(target / 2, 1_000_000, |n| async move {
            let m = sequence_bench::allocator_in_memory(4096, n);
            Ok([Sample::new(m.ops, 0, m.elapsed)])
        })
        .await?;
        rows.push(
            sample_row(
                "allocate_in_memory",
                "seq: in-memory allocate(1)",
                "numbers",
                m,
            ),
            &["fetch_add"],
        );
        for (id, label, block, first, baselines) in [
            (
                "next_4096",
                "seq: durable next(), block 4096",
                4096,
                100_000,
                &["allocate_in_memory", "naive_synced_counter"][..],
            ),
            (
                "next_block_1",
                "seq: next(), block 1 (forced refills)",
                1,
                20,
                &["naive_synced_counter"][..],
            ),
        ] {
            let sequence = format!("bench-{id}");
            let sequence = sequence.as_str();
            let [m] = time_boxed(target, first, |n| async move {
                let before = counting.syncs();
                let m = sequence_bench::sequence_next(store, sequence, block, n).await?;
                Ok([Sample::new(m.ops, 0, m.elapsed).synced(counting.syncs() - before)])
            })
            .await?;
            rows.push(sample_row(id, label, "numbers", m), baselines);
        }
        for (id, label, writers, prefixes, baseline) in [
            (
                "group_commit_1",
                "seq: put_sequenced, 1 writer",
                1usize,
                Prefixes::PerWriter,
                "raw_single_commit",
            ),
            (
                "group_commit_64",
                "seq: put_sequenced, 64 writers, a prefix each",
                64,
                Prefixes::PerWriter,
                "group_commit_1",
            ),
            (
                "group_commit_64_shared",
                "seq: put_sequenced, 64 writers, one prefix",
                64,
                Prefixes::Shared,
                "group_commit_1",
            ),
        ] {
            let [m] = time_boxed(target, 5, |n| async move {
                let m =
                    sequence_bench::group_commit(store, writers, n, prefixes, || counting.syncs())
                        .await?;
                Ok([Sample::new(m.ops, 0, m.elapsed).synced(m.syncs.unwrap_or(0))])
            })
            .await?;
            let mut r = sample_row(id, label, "records", m);
            r.concurrency = Some(writers as u64);
            rows.push(r, &[baseline]);
        }
    }

    // Produce, against a raw synced write of the same records grouped as
    // well as the writer could group them (one batch per round of
    // producers).
    if want(Section::Produce) {
        for payload in PAYLOADS {
            for producers in PRODUCERS {
                let space = format!("produce-{payload}");
                let space = space.as_str();
                let spread_space = format!("raw-spread-{producers}p-{payload}");
                let spread_space = spread_space.as_str();
                let spread_seq = &std::cell::Cell::new(1u64);
                let raw_space = format!("raw-{producers}p-{payload}");
                let raw_space = raw_space.as_str();
                let raw_seq = &std::cell::Cell::new(1u64);
                let one_segment = producers == ONE_SEGMENT_PRODUCERS;
                let one_space = format!("produce-one-{payload}");
                let one_space = one_space.as_str();
                let group_space = format!("raw-group-{producers}p-{payload}");
                let group_space = group_space.as_str();
                let group_seq = &std::cell::Cell::new(1u64);
                // The engine and its raw baselines alternate chunks; the
                // baselines write the same records in synced batches of
                // `producers`: in adjacent keys, and spread one per segment.
                // Like the engine's segments, both append: each chunk goes on
                // from where the last ended.
                // With 64 producers the engine also runs with every
                // producer on one segment, whose entries are adjacent.
                // A third baseline serves the same callers through the least
                // a group commit does (`raw_group_commit`), in both shapes.
                let workloads = if one_segment { 6 } else { 4 };
                let [m, r, s, o, g, go] = time_boxed(target * workloads, 5, |n| async move {
                    let produce = |space, placement| {
                        counted(
                            counting,
                            stream_bench::produce(
                                store, space, producers, n as usize, payload, placement,
                            ),
                        )
                    };
                    let m = produce(space, Placement::SegmentEach).await?;
                    let r_cpu = crate::process::cpu_time();
                    let r = stream_bench::raw_batch_write(
                        raw,
                        raw_space,
                        raw_seq.get(),
                        m.ops as usize,
                        producers,
                        payload,
                    )?;
                    let r = Sample::new(r.ops, r.bytes, r.elapsed).with_cpu_since(r_cpu);
                    raw_seq.set(raw_seq.get() + r.ops);
                    let first = spread_seq.get();
                    let s_cpu = crate::process::cpu_time();
                    let s = stream_bench::raw_spread_write(
                        raw,
                        spread_space,
                        producers,
                        first,
                        m.ops as usize,
                        payload,
                    )?;
                    let s = Sample::new(s.ops, s.bytes, s.elapsed).with_cpu_since(s_cpu);
                    spread_seq.set(first + m.ops.div_ceil(producers as u64));
                    let group = |placement| async move {
                        let g = counted(
                            raw_counting,
                            stream_bench::raw_group_commit(
                                raw_counting.clone(),
                                group_space,
                                producers,
                                n as usize,
                                payload,
                                placement,
                                group_seq.get(),
                            ),
                        )
                        .await?;
                        group_seq.set(group_seq.get() + g.ops);
                        Ok::<_, seq_stream::Error>(g)
                    };
                    let g = group(Placement::SegmentEach).await?;
                    let (o, go) = if one_segment {
                        (
                            produce(one_space, Placement::OneSegment).await?,
                            group(Placement::OneSegment).await?,
                        )
                    } else {
                        (Sample::default(), Sample::default())
                    };
                    let batches = r.ops.div_ceil(producers as u64);
                    Ok([m, r.synced(batches), s.synced(batches), o, g, go])
                })
                .await?;
                let spread_id = format!("raw_spread_{producers}p_{payload}b");
                if producers > 1 {
                    let mut spread_row = sample_row(
                        spread_id.clone(),
                        format!(
                            "raw: synced batches of {producers} × {payload} B, one per segment"
                        ),
                        "records",
                        s,
                    );
                    spread_row.concurrency = Some(producers as u64);
                    spread_row.payload = Some(payload as u64);
                    rows.push(spread_row, &[]);
                }
                let raw_id = format!("raw_write_{producers}p_{payload}b");
                let mut raw_row = sample_row(
                    raw_id.clone(),
                    format!("raw: synced batches of {producers} × {payload} B"),
                    "records",
                    r,
                );
                raw_row.concurrency = Some(producers as u64);
                raw_row.payload = Some(payload as u64);
                rows.push(raw_row, &[]);
                let mut engine_row = sample_row(
                    format!("produce_{producers}p_{payload}b"),
                    format!(
                        "seq: produce, {producers} producer{}, {payload} B, synced",
                        if producers == 1 { "" } else { "s" }
                    ),
                    "records",
                    m,
                );
                engine_row.concurrency = Some(producers as u64);
                engine_row.payload = Some(payload as u64);
                let group_id = format!("raw_group_commit_{producers}p_{payload}b");
                rows.push(
                    group_commit_row(group_id.clone(), producers, payload, "", g),
                    &[],
                );
                let mut baselines = vec![raw_id.as_str()];
                if producers > 1 {
                    baselines.push(spread_id.as_str());
                }
                baselines.push(group_id.as_str());
                rows.push(engine_row, &baselines);
                if one_segment {
                    let one_group_id =
                        format!("raw_group_commit_{producers}p_{payload}b_one_segment");
                    rows.push(
                        group_commit_row(
                            one_group_id.clone(),
                            producers,
                            payload,
                            " on 1 segment",
                            go,
                        ),
                        &[],
                    );
                    let mut one_row = sample_row(
                        format!("produce_{producers}p_{payload}b_one_segment"),
                        format!("seq: produce, {producers} producers on 1 segment, {payload} B"),
                        "records",
                        o,
                    );
                    one_row.concurrency = Some(producers as u64);
                    one_row.payload = Some(payload as u64);
                    rows.push(one_row, &[raw_id.as_str(), one_group_id.as_str()]);
                }
            }
        }
    }

    if want(Section::Consume) {
        consume(store, [&settle, &raw_settle], &plan, &mut rows).await?;
    }

    // Follow latency: produce one entry, time until a following consumer
    // yields it; compared with the produce's own acknowledgement (same
    // samples) and with one raw synced commit.
    if want(Section::Follow) {
        let (follow, ack) = follow_latency(store, plan.follow_samples).await?;
        for (id, name, latency, baselines) in [
            (
                "produce_ack_latency",
                "seq: produce ack latency",
                ack,
                &["raw_single_commit"][..],
            ),
            (
                "follow_latency",
                "seq: follow latency (produce → consumer)",
                follow,
                &["produce_ack_latency", "raw_single_commit"][..],
            ),
        ] {
            let mut r = row(
                id,
                name,
                "samples",
                latency.samples,
                0,
                Duration::from_secs_f64(latency.mean_us * latency.samples as f64 / 1e6),
            );
            r.latency = Some(latency);
            rows.push(r, baselines);
        }
    }
    store.close().await?;

    if want(Section::Memory) {
        crate::memory::run(backend, plan.memory_bytes, &dir.join("memory"), &mut rows).await?;
    }

    Ok(BackendReport {
        backend: name.to_owned(),
        quick,
        fdatasync_per_sec: fsync_rate,
        total_seconds: started.elapsed().as_secs_f64(),
        load: load_start.zip(crate::process::load_average()),
        rows: rows.0,
    })
}

/// consume_segment, consume_space and a consume of both spaces merged, each
/// against raw range scans of the same entry keys (one segment; every
/// segment of the space; every segment of both spaces, one after the
/// other). The engine and
/// its baseline alternate run by run and each keeps its fastest run, so a
/// disk or a neighbour whose speed drifts treats both alike. Both read a
/// backend at rest: a compaction of the produce workloads' data, in the
/// engine's storage or the raw baselines' (`settles` waits for both), would
/// take one of this machine's two cores, which a consume (reader and
/// decoder) needs and a raw scan (one thread) does not.
async fn consume(store: &Store, settles: [&Settle; 2], plan: &Plan, rows: &mut Rows) -> Result<()> {
    let entries = plan.consume_entries;
    stream_bench::fill(store, "consume-one", 1, entries, 100).await?;
    stream_bench::fill(store, "consume-four", 4, entries / 4, 100).await?;
    for settle in settles {
        settle.wait().await?;
    }
    // What each workload reads: a segment of a space, a whole space, or
    // several spaces merged (their raw baseline scans each in turn).
    enum Read {
        Segment(&'static str, &'static str),
        Space(&'static str),
        Spaces(&'static [&'static str]),
    }
    for (read, label_raw, id, label, baseline) in [
        (
            Read::Segment("consume-one", "s0"),
            "raw: scan of the segment's keys",
            "consume_segment",
            "seq: consume_segment (100 B)",
            "raw_scan_segment",
        ),
        (
            Read::Space("consume-four"),
            "raw: scan of the space's keys",
            "consume_space",
            "seq: consume_space (4 segments, 100 B)",
            "raw_scan_space",
        ),
        (
            Read::Spaces(&["consume-one", "consume-four"]),
            "raw: scans of both spaces' keys",
            "consume_spaces",
            "seq: consume of 2 spaces merged (1 + 4 segments, 100 B)",
            "raw_scan_spaces",
        ),
    ] {
        // (sample, CPU time) of the fastest run of each.
        type Best = Option<(Sample, Option<Duration>)>;
        let keep = |best: &mut Best, m: stream_bench::Measurement, cpu| {
            if best.is_none_or(|(b, _)| m.elapsed < b.elapsed) {
                *best = Some((Sample::new(m.ops, m.bytes, m.elapsed), cpu));
            }
        };
        let (mut raw_best, mut best): (Best, Best) = (None, None);
        for _ in 0..CONSUME_ROUNDS {
            let cpu = crate::process::cpu_time();
            let r = match read {
                Read::Segment(space, segment) => {
                    stream_bench::raw_scan(&**store.storage(), space, Some(segment))?
                }
                Read::Space(space) => stream_bench::raw_scan(&**store.storage(), space, None)?,
                Read::Spaces(spaces) => {
                    let mut all = stream_bench::Measurement {
                        name: "raw scans",
                        ops: 0,
                        bytes: 0,
                        elapsed: Duration::ZERO,
                    };
                    for space in spaces {
                        let r = stream_bench::raw_scan(&**store.storage(), space, None)?;
                        all.ops += r.ops;
                        all.bytes += r.bytes;
                        all.elapsed += r.elapsed;
                    }
                    all
                }
            };
            let cpu = cpu
                .zip(crate::process::cpu_time())
                .map(|(a, b)| b.saturating_sub(a));
            keep(&mut raw_best, r, cpu);
            let cpu = crate::process::cpu_time();
            let m = match read {
                Read::Segment(space, segment) => {
                    stream_bench::consume_segment(store, space, segment).await?
                }
                Read::Space(space) => stream_bench::consume_space(store, space).await?,
                Read::Spaces(spaces) => stream_bench::consume_multi(store, spaces).await?,
            };
            let cpu = cpu
                .zip(crate::process::cpu_time())
                .map(|(a, b)| b.saturating_sub(a));
            keep(&mut best, m, cpu);
        }
        let (Some((r, r_cpu)), Some((m, m_cpu))) = (raw_best, best) else {
            bail!("no consume runs");
        };
        if r.ops != m.ops {
            bail!(
                "{id} read {} entries but the raw scan of the same keys {}",
                m.ops,
                r.ops
            );
        }
        let mut raw_row = sample_row(baseline, label_raw, "entries", r);
        raw_row.cpu_s = r_cpu.map(|d| d.as_secs_f64());
        rows.push(raw_row, &[]);
        let mut engine_row = sample_row(id, label, "entries", m);
        engine_row.cpu_s = m_cpu.map(|d| d.as_secs_f64());
        rows.push(engine_row, &[baseline]);
    }
    Ok(())
}

/// Runs of each consume workload and of its baseline (the fastest counts).
/// A consume hands every entry from its page reader to the consumer on the
/// other core, and on this VM moving memory between the cores costs more
/// in some seconds than in others (two threads passing a cache line back
/// and forth took 67 to 198 ns a round trip over 40 tries). A quick run's
/// consume takes about 25 ms, so with 5 runs a row could fall wholly in a
/// slow spell (RocksDB `consume_segment` 0.71-1.29x over 14 `--only
/// consume` runs); with 15 it rarely does (0.82-0.88x over 8).
const CONSUME_ROUNDS: usize = 15;

/// Runs `f` `n` times and keeps the fastest run: for short in-memory
/// scans, where one run is noisy.
fn best_of<E>(n: usize, mut f: impl FnMut() -> Result<Sample, E>) -> Result<Sample>
where
    anyhow::Error: From<E>,
{
    let mut best: Option<Sample> = None;
    for _ in 0..n {
        let m = f()?;
        if best.is_none_or(|b| m.elapsed < b.elapsed) {
            best = Some(m);
        }
    }
    best.context("no runs")
}

/// `samples` times: produce one 100-byte entry (synced) and wait until a
/// consumer following the segment yields it. Returns the latencies from
/// the start of the produce call to the consumer's yield and to the
/// produce's acknowledgement.
async fn follow_latency(store: &Store, samples: usize) -> Result<(Latency, Latency)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let query = SegmentQuery {
        follow: true,
        ..SegmentQuery::default()
    };
    let mut stream = store.consume_segment("follow", "f", query)?;
    let consumer = tokio::spawn(async move {
        while let Some(entry) = stream.next().await? {
            if tx.send((entry.sequence, Instant::now())).is_err() {
                break;
            }
        }
        Ok::<(), seq_stream::Error>(())
    });
    let body = vec![0x5au8; 100];
    let mut latencies = Vec::with_capacity(samples);
    let mut acks = Vec::with_capacity(samples);
    for i in 0..samples {
        let sent = Instant::now();
        store
            .produce(
                "follow",
                "f",
                vec![Record::new(body.clone())],
                ProduceOptions::default(),
            )
            .await?;
        acks.push(sent.elapsed());
        let Some((sequence, seen)) = rx.recv().await else {
            consumer.abort();
            bail!("the following consumer ended early");
        };
        if sequence != i as u64 + 1 {
            bail!(
                "the following consumer yielded sequence {sequence}, expected {}",
                i + 1
            );
        }
        latencies.push(seen.duration_since(sent));
    }
    consumer.abort();
    Ok((percentiles(&mut latencies), percentiles(&mut acks)))
}

/// p50, p99 and mean of `samples` (sorted in place), in microseconds.
pub(crate) fn percentiles(samples: &mut [Duration]) -> Latency {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        us(samples[rank - 1])
    };
    let mean = if samples.is_empty() {
        0.0
    } else {
        samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64
    };
    Latency {
        samples: samples.len() as u64,
        p50_us: at(0.50),
        p99_us: at(0.99),
        mean_us: mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let lat = percentiles(&mut samples);
        assert_eq!(lat.samples, 100);
        assert_eq!(lat.p50_us, 50.0);
        assert_eq!(lat.p99_us, 99.0);
        assert_eq!(lat.mean_us, 50.5);
        assert_eq!(percentiles(&mut []).p99_us, 0.0);
    }

    #[tokio::test]
    async fn time_boxed_runs_chunks_until_the_target() {
        // A fake workload whose every unit "takes" 1 ms.
        let [total, twice] = time_boxed(Duration::from_millis(800), 10, |n| async move {
            Ok([
                Sample::new(n, 0, Duration::from_millis(n)).synced(n),
                Sample::new(2 * n, 0, Duration::ZERO),
            ])
        })
        .await
        .expect("time_boxed");
        assert!(total.elapsed >= Duration::from_millis(800));
        assert!(total.elapsed <= Duration::from_millis(1000));
        assert_eq!(total.syncs, total.ops);
        assert_eq!(twice.ops, 2 * total.ops);
    }

    #[test]
    fn a_sum_of_samples_knows_its_cpu_time_only_if_every_part_does() {
        let with = |cpu_ms| Sample {
            cpu: Some(Duration::from_millis(cpu_ms)),
            ..Sample::new(10, 0, Duration::from_millis(5))
        };
        let mut total = Sample::default();
        total.add(with(3));
        total.add(with(4));
        assert_eq!(total.cpu, Some(Duration::from_millis(7)));
        assert_eq!(total.ops, 20);
        total.add(Sample::new(10, 0, Duration::from_millis(5)));
        assert_eq!(total.cpu, None);
        total.add(with(1));
        assert_eq!(total.cpu, None, "a part without CPU time stays unknown");
        let row = sample_row("r", "r", "records", with(2));
        assert_eq!(row.cpu_s, Some(0.002));
    }
}
