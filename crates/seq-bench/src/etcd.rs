//! `seq-bench etcd`: seq on a local 3-member etcd cluster, several store
//! instances at once, beside the raw etcd transaction rate measured in the
//! same run (issue 8's figures).
//!
//! Every workload runs with three concurrent clients: three raw etcd
//! clients, or three `Store`s (three connections, three writers, as three
//! processes would have). The workloads take turns in chunks of half a
//! second, round after round (6 rounds with `--quick`, 20 without), so each
//! sees the cluster as the others do: etcd slows as its history grows.
//! Workloads:
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
    let rounds = if quick { 6 } else { 20 };
    eprintln!("seq-bench etcd: starting a local 3-member etcd cluster");
    let cluster = Cluster::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let rows = runtime.block_on(measure(&cluster, rounds, CHUNK))?;
    print_table(&rows);
    println!("{}", serde_json::to_string_pretty(&rows)?);
    Ok(())
}

/// How long each workload runs per round.
const CHUNK: Duration = Duration::from_millis(500);

/// What one workload does for one chunk; its count of operations.
#[derive(Debug, Clone, Copy)]
enum Workload {
    /// Raw transactions of this many puts guarded by this many compares.
    Raw { puts: usize, compares: usize },
    /// `next()` from every store.
    Next,
    /// Produces of `batch` records from `producers` tasks per store.
    Produce { producers: usize, batch: usize },
}

/// The workloads, in the order of [`measure`]'s rows: rows 0 and 1 are raw
/// 1-put and [`BATCH`]-put transactions, rows 2 and 3 raw transactions
/// shaped like a [`BATCH`]-record and a 1-record produce (an entry per
/// record, the commit group's index record, the status and the space clock,
/// two compares).
const WORKLOADS: [Workload; 8] = [
    Workload::Raw {
        puts: 1,
        compares: 0,
    },
    Workload::Raw {
        puts: BATCH,
        compares: 0,
    },
    Workload::Raw {
        puts: BATCH + 3,
        compares: 2,
    },
    Workload::Raw {
        puts: 4,
        compares: 2,
    },
    Workload::Next,
    Workload::Produce {
        producers: 1,
        batch: BATCH,
    },
    Workload::Produce {
        producers: 1,
        batch: 1,
    },
    Workload::Produce {
        producers: TASKS,
        batch: BATCH,
    },
];

/// Runs every workload for `chunk` in turn, `rounds` times over (each
/// round starting one workload later), so that
/// each sees the cluster in the same state on average: etcd slows as its
/// history grows (a raw 1-put rate of about 1,570 transactions/s at the
/// start of a run fell to about 1,000 at its end when the raw workloads all
/// ran first), and a baseline measured only at the start would flatter it.
async fn measure(cluster: &Cluster, rounds: u32, chunk: Duration) -> Result<Vec<Row>> {
    let endpoints = cluster.endpoints();
    let prefix = format!("seq-bench-{}", uuid::Uuid::new_v4());
    let stores = open_stores(cluster, &prefix)?;
    stores[0]
        .create_sequence("ids", SequenceOptions::default())
        .await?;
    let mut done = [0u64; WORKLOADS.len()];
    for round in 0..rounds {
        eprintln!("seq-bench etcd: round {} of {rounds}", round + 1);
        // Each round starts one workload later, so that no workload always
        // follows the same one (the 8-producer produce leaves etcd busiest).
        for step in 0..WORKLOADS.len() {
            let index = (round as usize + step) % WORKLOADS.len();
            done[index] += match WORKLOADS[index] {
                Workload::Raw { puts, compares } => {
                    raw_txns(&endpoints, puts, compares, chunk).await?
                }
                Workload::Next => sequence_next(&stores, chunk).await?,
                Workload::Produce { producers, batch } => {
                    produce(&stores, producers, batch, chunk).await?
                }
            };
        }
    }
    for store in stores {
        store.close().await?;
    }
    let window = chunk * rounds;

    let mut rows = vec![
        row(
            "raw_txn_1",
            format!("raw etcd txn, 1 put(s) of {VALUE} B, {CLIENTS} clients"),
            "txns",
            done[0],
            window,
        ),
        row(
            "raw_txn_batch",
            format!("raw etcd txn, {BATCH} put(s) of {VALUE} B, {CLIENTS} clients"),
            "txns",
            done[1],
            window,
        ),
    ];
    for (id, records, count) in [
        ("raw_txn_produce_shape", BATCH, done[2]),
        ("raw_txn_produce_shape_1", 1, done[3]),
    ] {
        let shape = records + 3;
        rows.push(row(
            id,
            format!(
                "raw etcd txn, {shape} puts + 2 compares (a {records}-record produce's shape), {CLIENTS} clients"
            ),
            "txns",
            count,
            window,
        ));
    }

    let mut next = row(
        "next_4096",
        format!("seq next(), block 4096, {CLIENTS} stores x {TASKS} tasks"),
        "numbers",
        done[4],
        window,
    );
    compare(&mut next, &rows[0], ">= 1000x");
    rows.push(next);

    for (id, producers, batch, baseline, shape, count) in [
        ("produce_batch_1p", 1, BATCH, 1, 2, done[5]),
        ("produce_1_1p", 1, 1, 0, 3, done[6]),
        ("produce_batch_8p", TASKS, BATCH, 1, 2, done[7]),
    ] {
        let mut produced = row(
            id,
            format!(
                "seq produce, {batch} record(s) of {VALUE} B, {CLIENTS} stores x {producers} producer(s)"
            ),
            "produce calls",
            count,
            window,
        );
        let goal = if producers == 1 { ">= 0.70x" } else { "" };
        compare(&mut produced, &rows[baseline], goal);
        produced.shape_baseline = Some(rows[shape].id);
        produced.shape_ratio =
            Some(produced.per_second / rows[shape].per_second.max(f64::MIN_POSITIVE));
        rows.push(produced);
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
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(Client::connect(endpoints, None).await?);
    }
    // A fresh key space per call: chunks of one run never rewrite keys.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for (client_index, mut client) in clients.into_iter().enumerate() {
        let done = done.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let value = vec![b'x'; VALUE];
            let mut round = 0u64;
            while Instant::now() < deadline {
                let ops = (0..batch)
                    .map(|i| {
                        let key = format!("raw/{run}/{client_index}/{round}/{i}");
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
    let mut sequences = Vec::with_capacity(stores.len());
    for store in stores {
        sequences.push(store.sequence("ids").await?);
    }
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for seq in sequences {
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
