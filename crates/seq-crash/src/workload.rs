//! The workload child: opens the store, makes sure the workload's sequences
//! exist, prints `READY`, then runs [`TASKS`] concurrent tasks of random
//! operations until it is killed. Every event is one line on stdout, written
//! and flushed under a lock (see [`crate::proto`]).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use std::time::Duration;

use seq_stream::{
    CursorPosition, Error, LeaseOptions, ProduceOptions, Record, Store, WriteOptions,
};
use uuid::Uuid;

use crate::Backend;
use crate::proto::{self, PREFIXES, SEGMENTS, SPACE};
use crate::rng::Rng;

/// Set in the child's environment, makes it acknowledge a write it never
/// made (the harness's own self-test: the parent must catch it).
pub(crate) const LIE_ENV: &str = "SEQ_CRASH_LIE";

/// Concurrent workload tasks (so commit groups hold several requests).
pub(crate) const TASKS: u64 = 4;

/// Writes one event line and flushes it: the parent may kill us any moment.
#[derive(Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn line(&self, line: &str) {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut lock = guard.lock();
        // A closed pipe means the parent is gone: nothing left to report to.
        if writeln!(lock, "{line}")
            .and_then(|()| lock.flush())
            .is_err()
        {
            std::process::exit(3);
        }
    }
}

/// Runs the workload until killed.
pub(crate) async fn run(backend: Backend, dir: &Path, seed: u64, iteration: u64) -> Result<()> {
    let store = backend
        .open(dir)
        .context("opening the store in the child")?;
    for (name, options, _) in proto::sequences() {
        match store.create_sequence(name, options).await {
            Ok(_) | Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e).with_context(|| format!("creating sequence {name}")),
        }
    }
    let out = Out(Arc::new(Mutex::new(std::io::stdout())));
    out.line(proto::READY);
    if std::env::var_os(LIE_ENV).is_some() {
        // Self-test of the parent's checks: acknowledge a batch that was
        // never written. The parent must report it lost.
        out.line(&format!(
            "A 99 prod s0 lie.{iteration} 999999999 999999999 {}",
            1u64 << 60
        ));
    }
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let out = out.clone();
        let rng = Rng::new(seed ^ (task + 1).wrapping_mul(0xA076_1D64_78BD_642F));
        tasks.push(tokio::spawn(async move {
            task_loop(store, out, rng, iteration, task).await
        }));
    }
    for task in tasks {
        task.await.context("a workload task panicked")??;
    }
    Ok(())
}

async fn task_loop(store: Store, out: Out, mut rng: Rng, iteration: u64, task: u64) -> Result<()> {
    let sequences = proto::sequences();
    let mut counter = 0u64;
    // Continue this task's cursor from where the last run left it.
    let mut cursor_at = store
        .load_cursor(&format!("c{task}"))
        .await
        .context("loading the task's cursor")?
        .and_then(|c| c.position.segment(SPACE, SEGMENTS[0]))
        .unwrap_or(0);
    loop {
        counter += 1;
        match rng.below(100) {
            // Named sequences: next / next_n.
            0..=29 => {
                let (name, _, max_n) = &sequences[rng.below(sequences.len())];
                let n = if rng.below(2) == 0 {
                    1
                } else {
                    rng.range(1, max_n + 1)
                };
                out.line(&format!("B {task} seq {name} {n}"));
                let result = async {
                    let seq = store.sequence(name).await?;
                    if n == 1 {
                        seq.next().await.map(|v| (v, 1))
                    } else {
                        seq.next_n(n).await.map(|r| (r.first(), r.len()))
                    }
                }
                .await;
                match result {
                    Ok((first, len)) => out.line(&format!("A {task} seq {name} {first} {len}")),
                    Err(e) => out.line(&format!("E {task} seq {}", one_line(&e))),
                }
            }
            // Gap-free allocation written with a caller record.
            30..=37 => {
                let name = "gapfree";
                out.line(&format!("B {task} inv {name}"));
                let result = async {
                    let seq = store.sequence(name).await?;
                    seq.next_with(move |value| {
                        vec![(
                            proto::inv_key(name, value).into_bytes(),
                            Bytes::from(value.to_string()),
                        )]
                    })
                    .await
                }
                .await;
                match result {
                    Ok(value) => out.line(&format!("A {task} inv {name} {value}")),
                    Err(e) => out.line(&format!("E {task} inv {}", one_line(&e))),
                }
            }
            // Sequence keys, sometimes with a caller-chosen commit number.
            38..=59 => {
                let (prefix, deltas) = PREFIXES[rng.below(PREFIXES.len())];
                let seqnum = if rng.below(8) == 0 {
                    store.commit_seqnum() + rng.range(1, 50)
                } else {
                    0
                };
                let value = format!("v{iteration}.{task}.{counter}");
                out.line(&format!("B {task} key {prefix} {seqnum}"));
                let options = WriteOptions::default().with_seqnum(seqnum);
                match store
                    .put_sequenced_with(prefix, value.clone(), deltas, options)
                    .await
                {
                    Ok((key, version)) => {
                        out.line(&format!("A {task} key {prefix} {key} {version} {value}"));
                    }
                    Err(e) => out.line(&format!("E {task} key {}", one_line(&e))),
                }
            }
            // Multi-record produces to several segments.
            60..=91 => {
                let segment = SEGMENTS[rng.below(SEGMENTS.len())];
                let n = rng.range(1, 6);
                let batch = format!("b{iteration}.{task}.{counter}");
                let records: Vec<Record> = (0..n)
                    .map(|i| {
                        Record::new(proto::payload(&batch, i))
                            .with_metadata("batch", batch.clone())
                            .with_metadata("n", n.to_string())
                            .with_metadata("i", i.to_string())
                    })
                    .collect();
                out.line(&format!("B {task} prod {segment} {batch} {n}"));
                match store
                    .produce_receipt(SPACE, segment, records, ProduceOptions::default())
                    .await
                {
                    Ok(receipt) => {
                        let first = receipt.sequences.first().copied().unwrap_or(0);
                        let last = receipt.sequences.last().copied().unwrap_or(0);
                        out.line(&format!(
                            "A {task} prod {segment} {batch} {first} {last} {}",
                            receipt.commit
                        ));
                    }
                    Err(e) => out.line(&format!("E {task} prod {}", one_line(&e))),
                }
            }
            // Cursor commits: each task moves its own cursor forward.
            92..=94 => {
                let name = format!("c{task}");
                cursor_at += rng.range(1, 10);
                out.line(&format!("B {task} cur {name} {cursor_at}"));
                let position = CursorPosition::new().with_segment(SPACE, SEGMENTS[0], cursor_at);
                match store.commit_cursor(&name, position).await {
                    Ok(cursor) => {
                        out.line(&format!(
                            "A {task} cur {name} {cursor_at} {}",
                            cursor.commit
                        ));
                    }
                    Err(e) => out.line(&format!("E {task} cur {}", one_line(&e))),
                }
            }
            // Lease grants: each task re-acquires its own lease (same
            // holder, so a grant left by a killed child does not block it)
            // and releases it.
            95..=97 => {
                let key = format!("L{task}");
                out.line(&format!("B {task} lease {key}"));
                let options = LeaseOptions::new(Duration::from_secs(30))
                    .without_renewal()
                    .with_holder(Uuid::from_u128(u128::from(task) + 1));
                match store.acquire_lease_with(&key, options).await {
                    Ok(lease) => {
                        out.line(&format!("A {task} lease {key} {}", lease.token()));
                        if let Err(e) = lease.release().await {
                            out.line(&format!("E {task} release {}", one_line(&e)));
                        }
                    }
                    Err(e) => out.line(&format!("E {task} lease {}", one_line(&e))),
                }
            }
            // Flush: a commit number of its own.
            _ => {
                out.line(&format!("B {task} flush"));
                match store.flush().await {
                    Ok(commit) => out.line(&format!("A {task} flush {commit}")),
                    Err(e) => out.line(&format!("E {task} flush {}", one_line(&e))),
                }
            }
        }
    }
}

fn one_line(error: &Error) -> String {
    error.to_string().replace(['\n', '\r'], " ")
}
