//! `seq demo`: a realistic scenario, end to end, on a fresh store.
//!
//! 1. A named sequence `order-id` hands out order ids.
//! 2. Concurrent producers append orders to the segments of the `orders`
//!    space (one atomic batch per produce) and give each batch an invoice
//!    under a per-customer sequence key.
//! 3. A follow consumer merges the whole space as it is written and checks
//!    that it sees every entry exactly once, in order.
//! 4. A lease with fencing tokens rejects a stale writer.
//! 5. The store is closed and reopened: sequences and sequence keys resume
//!    above everything handed out before.
//!
//! Every step is checked; a failed check ends the demo with exit code 1.

mod workload;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use seq_core::SequenceOptions;
use seq_stream::{ProduceOptions, Record, Store};
use serde::Serialize;

use crate::cli::{Backend, DemoArgs};
use crate::context::{self, Location};
use crate::output::{self, Output, per_second, thousands};
use workload::{CUSTOMERS, ORDER_SEQUENCE, SPACE};

/// How long the follow consumer may take to see everything.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(45);

/// What the demo measured (printed as JSON with `--json`).
#[derive(Debug, Default, Serialize)]
struct Report {
    backend: String,
    store: String,
    producers: usize,
    segments: usize,
    orders: u64,
    produce_calls: u64,
    produce_seconds: f64,
    orders_per_second: f64,
    produce_calls_per_second: f64,
    commits: u64,
    follow_entries: u64,
    follow_catch_up_ms: f64,
    invoice_keys: u64,
    sequence_next_calls: u64,
    sequence_next_per_second: f64,
    max_order_id: i64,
    order_id_after_restart: i64,
    lease: String,
    checks: Vec<String>,
}

/// Narrates the demo (silent with `--json`).
struct Narrator {
    out: Output,
    checks: std::cell::RefCell<Vec<String>>,
}

impl Narrator {
    fn say(&self, text: impl AsRef<str>) -> Result<()> {
        if self.out.is_json() {
            Ok(())
        } else {
            self.out.line(text.as_ref())
        }
    }

    fn check(&self, text: impl Into<String>) -> Result<()> {
        let text = text.into();
        self.say(format!("  ok  {text}"))?;
        self.checks.borrow_mut().push(text);
        Ok(())
    }
}

/// Runs `seq demo`.
pub(crate) async fn run(
    args: &DemoArgs,
    store: Option<&Path>,
    mut location: Location,
    out: Output,
) -> Result<()> {
    let (producers, segments, orders) = if args.quick {
        (2, 2, 50)
    } else {
        (args.producers, args.segments, args.orders)
    };
    if producers == 0 || segments == 0 || orders == 0 {
        bail!("--producers, --segments and --orders must be at least 1");
    }
    if location.backend == Backend::Etcd {
        // A fresh prefix on the cluster unless --store names one.
        if let Some(name) = store {
            location.dir = name.to_path_buf();
        } else {
            location.dir = format!("seq-demo-{}", uuid::Uuid::new_v4()).into();
        }
        let probe = location.clone();
        if tokio::task::spawn_blocking(move || context::exists_at(&probe)).await?? {
            bail!(
                "`seq demo` needs a fresh store, but {} holds one (omit --store for a fresh prefix)",
                location.describe()
            );
        }
        return scenario(&location, out, producers, segments, orders).await;
    }
    // A fresh store: a temporary directory unless --store names one.
    let (dir, temp) = match store {
        Some(dir) => (dir.to_path_buf(), None),
        None => {
            let temp = tempfile::Builder::new().prefix("seq-demo-").tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        bail!(
            "`seq demo` needs a fresh store, but {} is not empty (omit --store to use a temporary directory)",
            dir.display()
        );
    }
    location.dir = dir;
    let result = scenario(&location, out, producers, segments, orders).await;
    match temp {
        Some(temp) if args.keep => {
            let kept = temp.keep();
            if !out.is_json() {
                eprintln!("kept the demo store at {}", kept.display());
            }
        }
        Some(temp) => temp.close().context("cannot remove the demo store")?,
        None => {}
    }
    result
}

async fn open(location: &Location) -> Result<Store> {
    let location = location.clone();
    tokio::task::spawn_blocking(move || context::open(&location, true)).await?
}

async fn scenario(
    location: &Location,
    out: Output,
    producers: usize,
    segments: usize,
    orders: u64,
) -> Result<()> {
    let say = Narrator {
        out,
        checks: Default::default(),
    };
    let mut report = Report {
        backend: format!("{:?}", location.backend).to_lowercase(),
        store: location.describe(),
        producers,
        segments,
        orders: producers as u64 * orders,
        ..Report::default()
    };
    let total = report.orders;
    let names = workload::segment_names(segments);
    say.say(format!(
        "seq demo: a fresh {} store at {}",
        report.backend,
        location.describe()
    ))?;
    let store = open(location).await?;

    // 1. Sequences.
    say.say(format!(
        "\n1. named sequence {ORDER_SEQUENCE:?} hands out order ids"
    ))?;
    store
        .create_sequence(
            ORDER_SEQUENCE,
            SequenceOptions {
                start: Some(1000),
                ..SequenceOptions::default()
            },
        )
        .await?;
    say.check(format!(
        "created {ORDER_SEQUENCE:?} (start 1000, blocks of 4096 persisted once each)"
    ))?;
    let bench = store
        .create_sequence("bench-ids", SequenceOptions::default())
        .await?;
    let handle = store.sequence(&bench.name).await?;
    let calls: u64 = if total <= 1000 { 20_000 } else { 200_000 };
    let started = Instant::now();
    let mut previous = 0;
    for _ in 0..calls {
        let value = handle.next().await?;
        ensure!(
            value > previous,
            "sequence went backwards: {value} after {previous}"
        );
        previous = value;
    }
    let elapsed = started.elapsed();
    // Every handle keeps the store (and its file) open: let go before the
    // restart below.
    drop(handle);
    report.sequence_next_calls = calls;
    report.sequence_next_per_second = calls as f64 / elapsed.as_secs_f64().max(1e-9);
    say.check(format!(
        "{} next() calls served from durable blocks, strictly increasing: {}",
        thousands(calls),
        per_second(calls, elapsed)
    ))?;

    // 2 + 3. Producers and the follow consumer.
    say.say(format!(
        "\n2. {producers} producers append {} orders to {segments} segments of {SPACE:?}, batches of {}, with invoice keys per customer",
        thousands(total),
        workload::BATCH
    ))?;
    say.say(format!(
        "3. a follow consumer merges {SPACE:?} while it is written"
    ))?;
    let follower = tokio::spawn(workload::follower(store.clone(), total, FOLLOW_TIMEOUT));
    let commits_before = store.commit_seqnum();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(producers);
    for p in 0..producers {
        tasks.push(tokio::spawn(workload::producer(
            store.clone(),
            p,
            orders,
            names.clone(),
        )));
    }
    let mut produced = Vec::with_capacity(producers);
    for task in tasks {
        produced.push(task.await.context("a producer panicked")??);
    }
    let produce_time = started.elapsed();
    let produced_at = Instant::now();
    report.commits = store.commit_seqnum() - commits_before;
    report.produce_calls = produced.iter().map(|p| p.calls).sum();
    report.produce_seconds = produce_time.as_secs_f64();
    report.orders_per_second = total as f64 / produce_time.as_secs_f64().max(1e-9);
    report.produce_calls_per_second =
        report.produce_calls as f64 / produce_time.as_secs_f64().max(1e-9);
    say.check(format!(
        "{} orders in {} durable produce calls in {:.2}s ({} orders/s, {} calls/s, {} commits)",
        thousands(total),
        thousands(report.produce_calls),
        produce_time.as_secs_f64(),
        thousands(report.orders_per_second.round() as u64),
        thousands(report.produce_calls_per_second.round() as u64),
        thousands(report.commits)
    ))?;
    let mut all_ids: Vec<i64> = Vec::with_capacity(total as usize);
    for (p, done) in produced.iter().enumerate() {
        ensure!(
            done.ids.windows(2).all(|w| w[0] < w[1]),
            "producer {p} got order ids that do not increase"
        );
        all_ids.extend(&done.ids);
    }
    all_ids.sort_unstable();
    let before = all_ids.len();
    all_ids.dedup();
    ensure!(
        all_ids.len() == before,
        "{} order ids were handed out twice",
        before - all_ids.len()
    );
    say.check(format!(
        "{} order ids, all distinct, increasing per producer",
        thousands(total)
    ))?;

    let followed = follower.await.context("the follow consumer panicked")??;
    report.follow_entries = followed.ids.len() as u64;
    report.follow_catch_up_ms = followed.last_at.map_or(0.0, |at| {
        at.saturating_duration_since(produced_at).as_secs_f64() * 1000.0
    });
    let mut seen = followed.ids.clone();
    seen.sort_unstable();
    ensure!(
        seen == all_ids,
        "the follow consumer did not see exactly the orders produced"
    );
    say.check(
        format!(
            "follower saw all {} entries exactly once, in (timestamp, segment, sequence) order, each segment dense from 1 (last entry {:.1} ms after the producers finished)",
            thousands(total),
            report.follow_catch_up_ms
        ),
    )?;
    let mut statuses = Vec::new();
    for name in &names {
        statuses.push(store.status(SPACE, name).await?);
    }
    let appended: u64 = statuses.iter().map(|s| s.last_sequence).sum();
    ensure!(
        appended == total,
        "segments hold {appended} entries, expected {total}"
    );
    if !out.is_json() {
        say.say(output::table(
            &["segment", "entries", "last seq"],
            statuses.iter().map(|s| {
                [
                    s.segment.clone(),
                    s.count.to_string(),
                    s.last_sequence.to_string(),
                ]
            }),
        ))?;
    }

    let mut invoices: BTreeMap<u64, u64> = BTreeMap::new();
    for done in &produced {
        for (customer, n) in &done.invoices {
            *invoices.entry(*customer).or_default() += n;
        }
    }
    for (customer, n) in &invoices {
        let keys = store
            .range_sequenced(&workload::invoice_prefix(*customer), usize::MAX)
            .await?;
        ensure!(
            keys.len() as u64 == *n,
            "customer {customer} has {} invoice keys, expected {n}",
            keys.len()
        );
        let expected_last =
            seq_core::seqkey::format_key(&workload::invoice_prefix(*customer), &[*n]);
        ensure!(
            keys.last().map(|r| r.key.as_str()) == Some(expected_last.as_str()),
            "customer {customer}: invoice keys are not dense from 1"
        );
    }
    report.invoice_keys = invoices.values().sum();
    say.check(format!(
        "{} invoice keys over {} customers, dense per customer (e.g. {})",
        report.invoice_keys,
        invoices.len().min(CUSTOMERS as usize),
        seq_core::seqkey::format_key(&workload::invoice_prefix(0), &[1])
    ))?;

    // 4. Leases.
    say.say("\n4. a lease with fencing tokens rejects a stale writer")?;
    report.lease = lease_step(&store, &say).await?;

    // 5. Restart.
    say.say("\n5. close and reopen the store")?;
    report.max_order_id = all_ids.last().copied().unwrap_or(0);
    store.close().await?;
    drop(store);
    let store = open(location).await?;
    let resumed = store.sequence(ORDER_SEQUENCE).await?.next().await?;
    report.order_id_after_restart = resumed;
    ensure!(
        resumed == report.max_order_id + 1,
        "after the clean restart {ORDER_SEQUENCE:?} handed out {resumed}, not the next id after {}",
        report.max_order_id
    );
    say.check(
        format!(
            "{ORDER_SEQUENCE:?} resumes at {resumed}, right after the last id handed out ({}): a clean close gives the unused block back (a crash would skip at most one block, never reissue)",
            report.max_order_id
        ),
    )?;
    let (key, _) = store
        .put_sequenced(&workload::invoice_prefix(0), "after restart", &[1])
        .await?;
    let want = seq_core::seqkey::format_key(
        &workload::invoice_prefix(0),
        &[invoices.get(&0).copied().unwrap_or(0) + 1],
    );
    ensure!(
        key == want,
        "after the restart the next invoice key was {key}, expected {want}"
    );
    say.check(format!("invoice keys continue: {key}"))?;
    let status = store.status(SPACE, &names[0]).await?;
    ensure!(
        status.last_sequence == statuses[0].last_sequence,
        "segment {} lost entries across the restart",
        names[0]
    );
    say.check(format!(
        "segments keep their entries (e.g. {} up to #{})",
        names[0], status.last_sequence
    ))?;
    store.close().await?;

    report.checks = say.checks.take();
    if out.is_json() {
        out.emit(&report, String::new)?;
    } else {
        say.say(format!(
            "\nall {} checks passed: {} orders/s through {} producers ({} durable produce calls/s), {} sequence ids/s",
            report.checks.len(),
            thousands(report.orders_per_second.round() as u64),
            producers,
            thousands(report.produce_calls_per_second.round() as u64),
            thousands(report.sequence_next_per_second.round() as u64)
        ))?;
    }
    Ok(())
}

/// The lease step: a writer holds the lease and writes with its fencing
/// token; the lease fails over to a new holder; the old writer's next write
/// is rejected with `Fenced`, the new holder's goes through.
async fn lease_step(store: &Store, say: &Narrator) -> Result<String> {
    const KEY: &str = "orders-writer";
    let segment = "audit";
    let first = store.acquire_lease(KEY, Duration::from_secs(5)).await?;
    let stale = first.fence();
    store
        .produce(
            SPACE,
            segment,
            vec![Record::new("written by holder 1")],
            ProduceOptions::default().with_fence(stale.clone()),
        )
        .await
        .context("the lease holder's fenced write was rejected")?;
    say.check(format!(
        "writer 1 holds {KEY:?} with token {} and writes with it",
        stale.token
    ))?;
    first.release().await?;
    let second = store.acquire_lease(KEY, Duration::from_secs(5)).await?;
    let fresh = second.fence();
    ensure!(
        fresh.token > stale.token,
        "the new grant's token {} is not above {}",
        fresh.token,
        stale.token
    );
    match store
        .produce(SPACE, segment, vec![Record::new("stale write")], ProduceOptions::default().with_fence(stale.clone()))
        .await
    {
        Err(seq_stream::Error::Fenced { token, current, .. }) => say.check(format!(
            "after failover to writer 2 (token {current}), writer 1's write with token {token} is rejected: Fenced"
        ))?,
        Err(other) => bail!("the stale writer got {other} instead of Fenced"),
        Ok(_) => bail!("the stale writer's write was accepted"),
    }
    store
        .produce(
            SPACE,
            segment,
            vec![Record::new("written by holder 2")],
            ProduceOptions::default().with_fence(fresh.clone()),
        )
        .await
        .context("the new holder's fenced write was rejected")?;
    second.release().await?;
    let status = store.status(SPACE, segment).await?;
    ensure!(
        status.last_sequence == 2,
        "the audit segment holds {} entries, expected 2",
        status.last_sequence
    );
    say.check(format!(
        "writer 2's write with token {} goes through; the rejected write left no entry",
        fresh.token
    ))?;
    Ok(format!(
        "stale token {} fenced by token {}",
        stale.token, fresh.token
    ))
}
