//! `seq-bench etcd`: seq on a local 3-member etcd cluster, several store
//! instances at once, beside the raw etcd transaction rate measured in the
//! same run (issue 8's figures).
//!
//! Every workload runs for a fixed time with three concurrent clients: three
//! raw etcd clients, or three `Store`s (three connections, three writers, as
//! three processes would have). Workloads:
//!
//! * raw: transactions of `B` puts of 100-byte values, one client each
//!   sending them back to back (`B` = 1 and [`BATCH`]); and transactions
//!   shaped like a produce of 1 and [`BATCH`] records (an entry per record,
//!   the commit group's index record, the status and the space clock, two
//!   compares), which
//!   separates etcd's cost of the extra keys from seq's own;
//! * seq `next()`: block 4096, one named sequence shared by the three stores,
//!   [`TASKS`] tasks per store;
//! * seq produce: batches of `B` 100-byte records, one producer per store
//!   (the same concurrency and batch size as the raw run), then [`TASKS`]
//!   producers per store (group commit). Each store produces to its own
//!   space: produces to one space serialise across writers (see seq-stream's
//!   "Multi-writer mode").
//!
//! Needs Debian's `etcd-server` (`cargo xtask prereq` installs it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use seq_core::SequenceOptions;
use seq_etcd::testing::Cluster;
use seq_stream::{ProduceOptions, Record, Store};
use serde::Serialize;

/// Concurrent clients (stores) in every workload.
const CLIENTS: usize = 3;
/// Tasks per store in the concurrent workloads.
const TASKS: usize = 8;
/// Records per produce (and puts per raw transaction) in the batch rows.
const BATCH: usize = 10;
/// Payload size of every record and raw value.
const VALUE: usize = 100;

/// One measured row.
#[derive(Debug, Serialize)]
struct Row {
    id: &'static str,
    label: String,
    unit: &'static str,
    ops: u64,
    seconds: f64,
    per_second: f64,
    /// The baseline row this is compared with, and the ratio.
    baseline: Option<&'static str>,
    ratio: Option<f64>,
    /// For produces: the raw transaction of the produce's own shape, and the
    /// ratio to it (what seq adds beyond the keys it writes).
    shape_baseline: Option<&'static str>,
    shape_ratio: Option<f64>,
    goal: Option<String>,
}

/// Runs the etcd workloads and prints a markdown table (stderr progress,
/// JSON on stdout).
pub(crate) fn run(quick: bool) -> Result<()> {
    let window = Duration::from_secs(if quick { 3 } else { 10 });
    eprintln!("seq-bench etcd: starting a local 3-member etcd cluster");
    let cluster = Cluster::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let rows = runtime.block_on(measure(&cluster, window))?;
    print_table(&rows);
    println!("{}", serde_json::to_string_pretty(&rows)?);
    Ok(())
}

async fn measure(cluster: &Cluster, window: Duration) -> Result<Vec<Row>> {
    let endpoints = cluster.endpoints();
    let mut rows = Vec::new();

    for (id, batch) in [("raw_txn_1", 1), ("raw_txn_batch", BATCH)] {
        eprintln!("seq-bench etcd: raw transactions of {batch} put(s)");
        let txns = raw_txns(&endpoints, batch, 0, window).await?;
        rows.push(row(
            id,
            format!("raw etcd txn, {batch} put(s) of {VALUE} B, {CLIENTS} clients"),
            "txns",
            txns,
            window,
        ));
    }
    // What a produce of `records` records sends: an entry per record, the
    // group's index record, the status and the space clock, two compares.
    for (id, records) in [
        ("raw_txn_produce_shape", BATCH),
        ("raw_txn_produce_shape_1", 1),
    ] {
        let shape = records + 3;
        eprintln!("seq-bench etcd: raw transactions shaped like a {records}-record produce");
        let txns = raw_txns(&endpoints, shape, 2, window).await?;
        rows.push(row(
            id,
            format!(
                "raw etcd txn, {shape} puts + 2 compares (a {records}-record produce's shape), {CLIENTS} clients"
            ),
            "txns",
            txns,
            window,
        ));
    }

    let prefix = format!("seq-bench-{}", uuid::Uuid::new_v4());
    let stores = open_stores(cluster, &prefix)?;

    eprintln!("seq-bench etcd: next(), block 4096, {CLIENTS} stores x {TASKS} tasks");
    stores[0]
        .create_sequence("ids", SequenceOptions::default())
        .await?;
    let numbers = sequence_next(&stores, window).await?;
    let mut next = row(
        "next_4096",
        format!("seq next(), block 4096, {CLIENTS} stores x {TASKS} tasks"),
        "numbers",
        numbers,
        window,
    );
    compare(&mut next, &rows[0], ">= 1000x");
    rows.push(next);

    // Rows 0 and 1: raw 1-put and BATCH-put transactions; rows 2 and 3:
    // raw transactions shaped like a BATCH-record and a 1-record produce.
    for (id, producers, batch, baseline, shape) in [
        ("produce_batch_1p", 1, BATCH, 1, 2),
        ("produce_1_1p", 1, 1, 0, 3),
        ("produce_batch_8p", TASKS, BATCH, 1, 2),
    ] {
        eprintln!("seq-bench etcd: produce {batch} record(s), {producers} producer(s) per store");
        let calls = produce(&stores, producers, batch, window).await?;
        let mut produced = row(
            id,
            format!(
                "seq produce, {batch} record(s) of {VALUE} B, {CLIENTS} stores x {producers} producer(s)"
            ),
            "produce calls",
            calls,
            window,
        );
        let goal = if producers == 1 { ">= 0.70x" } else { "" };
        compare(&mut produced, &rows[baseline], goal);
        produced.shape_baseline = Some(rows[shape].id);
        produced.shape_ratio =
            Some(produced.per_second / rows[shape].per_second.max(f64::MIN_POSITIVE));
        rows.push(produced);
    }
    for store in stores {
        store.close().await?;
    }
    Ok(rows)
}

fn row(id: &'static str, label: String, unit: &'static str, ops: u64, window: Duration) -> Row {
    let seconds = window.as_secs_f64();
    Row {
        id,
        label,
        unit,
        ops,
        seconds,
        per_second: ops as f64 / seconds,
        baseline: None,
        ratio: None,
        shape_baseline: None,
        shape_ratio: None,
        goal: None,
    }
}

fn compare(row: &mut Row, baseline: &Row, goal: &str) {
    row.baseline = Some(baseline.id);
    row.ratio = Some(row.per_second / baseline.per_second.max(f64::MIN_POSITIVE));
    row.goal = (!goal.is_empty()).then(|| goal.to_owned());
}

fn open_stores(cluster: &Cluster, prefix: &str) -> Result<Vec<Store>> {
    (0..CLIENTS)
        .map(|_| {
            Ok(Store::open_etcd(
                cluster.options(prefix.as_bytes().to_vec()),
            )?)
        })
        .collect()
}

/// Transactions of `batch` puts (guarded by `compares` compares that hold),
/// back to back from each of [`CLIENTS`] clients, for `window`.
async fn raw_txns(
    endpoints: &[String],
    batch: usize,
    compares: usize,
    window: Duration,
) -> Result<u64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let mut client = Client::connect(endpoints, None).await?;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let value = vec![b'x'; VALUE];
            let mut round = 0u64;
            while Instant::now() < deadline {
                let ops = (0..batch)
                    .map(|i| {
                        let key = format!("raw/{client_index}/{round}/{i}");
                        TxnOp::put(key, value.clone(), None)
                    })
                    .collect::<Vec<_>>();
                let guards = (0..compares)
                    .map(|i| Compare::version(format!("raw/absent/{i}"), CompareOp::Equal, 0))
                    .collect::<Vec<_>>();
                client.txn(Txn::new().when(guards).and_then(ops)).await?;
                done.fetch_add(1, Ordering::Relaxed);
                round += 1;
            }
            Ok::<(), etcd_client::Error>(())
        }));
    }
    finish(tasks, &done).await
}

/// `next()` from [`TASKS`] tasks on each store, for `window`.
async fn sequence_next(stores: &[Store], window: Duration) -> Result<u64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for store in stores {
        let seq = store.sequence("ids").await?;
        for _ in 0..TASKS {
            let (seq, done) = (seq.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut count = 0u64;
                while Instant::now() < deadline {
                    // Check the clock once per 1024 numbers.
                    for _ in 0..1024 {
                        std::hint::black_box(seq.next().await?);
                    }
                    count += 1024;
                }
                done.fetch_add(count, Ordering::Relaxed);
                Ok::<(), seq_stream::Error>(())
            }));
        }
    }
    finish(tasks, &done).await
}

/// Produces of `batch` records from `producers` tasks per store, each store
/// to its own space, for `window`; returns the produce calls completed.
async fn produce(
    stores: &[Store],
    producers: usize,
    batch: usize,
    window: Duration,
) -> Result<u64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    for (index, store) in stores.iter().enumerate() {
        for producer in 0..producers {
            let (store, done) = (store.clone(), done.clone());
            let space = format!("bench-{run}-{index}");
            tasks.push(tokio::spawn(async move {
                let payload = Bytes::from(vec![b'x'; VALUE]);
                let segment = format!("p{producer}");
                while Instant::now() < deadline {
                    let records = (0..batch).map(|_| Record::new(payload.clone())).collect();
                    store
                        .produce(&space, &segment, records, ProduceOptions::default())
                        .await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), seq_stream::Error>(())
            }));
        }
    }
    finish(tasks, &done).await
}

/// Waits for every task; the count `done` reached, or the first failure.
async fn finish<E>(
    tasks: Vec<tokio::task::JoinHandle<std::result::Result<(), E>>>,
    done: &AtomicU64,
) -> Result<u64>
where
    E: std::error::Error + Send + Sync + 'static,
{
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed))
}

fn print_table(rows: &[Row]) {
    eprintln!("\n| workload | rate | vs | goal |");
    eprintln!("|---|---|---|---|");
    for row in rows {
        let mut versus = match (row.baseline, row.ratio) {
            (Some(baseline), Some(ratio)) => format!("{ratio:.2}x {baseline}"),
            _ => String::new(),
        };
        if let (Some(shape), Some(ratio)) = (row.shape_baseline, row.shape_ratio) {
            versus.push_str(&format!("; {ratio:.2}x {shape}"));
        }
        eprintln!(
            "| {} | {:.0} {}/s | {} | {} |",
            row.label,
            row.per_second,
            row.unit,
            versus,
            row.goal.as_deref().unwrap_or("")
        );
    }
}
