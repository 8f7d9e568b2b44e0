//! Three processes share one store on a real 3-member etcd cluster.
//!
//! The test binary is its own child: run normally it starts the cluster,
//! creates the store, and spawns itself three times with `SEQ_ETCD_CHILD`
//! set; each child opens the same store (its own `Store`, its own writer)
//! and runs 8 tasks that take numbers from one named sequence and produce
//! to four shared segments until told to stop, printing every
//! acknowledgement. Meanwhile the parent kills a follower member (work must
//! go on), brings it back, then kills the leader (writes pause, then
//! resume). Finally it checks: every number distinct and increasing per
//! task; every segment dense from 1; every acknowledged entry present
//! exactly once with its payload; acknowledgements while a member was down
//! and after the leader came back.
//!
//! `harness = false` (see Cargo.toml); needs Debian's
//! `etcd-server` (`cargo xtask test` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap is a test failure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use seq_core::SequenceOptions;
use seq_etcd::EtcdOptions;
use seq_etcd::testing::Cluster;
use seq_stream::{ProduceOptions, Record, SegmentQuery, Store, StoreOptions};

const CHILD: &str = "SEQ_ETCD_CHILD";
const PROCESSES: usize = 3;
const TASKS: usize = 8;
const SEGMENTS: usize = 4;
const SPACE: &str = "orders";

fn main() {
    match std::env::var(CHILD) {
        Ok(index) => child(index.parse().expect("child index")),
        Err(_) => {
            parent();
            println!("etcd_processes: ok");
        }
    }
}

fn unix_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(now.as_millis()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn open(endpoints: &[String], prefix: &str, node: &str) -> Store {
    let mut options = StoreOptions::default();
    options.node = node.into();
    let etcd = EtcdOptions::new(endpoints.iter().cloned(), prefix.as_bytes().to_vec());
    Store::open_etcd_with(etcd, options).expect("open the store on etcd")
}

/// Runs `op` until it succeeds, for at most a minute: a write may fail while
/// the cluster elects a leader.
async fn retry<T, E: std::fmt::Display, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match op().await {
            Ok(value) => return value,
            Err(error) if Instant::now() < deadline => {
                eprintln!("retrying {what}: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("{what} kept failing for a minute: {error}"),
        }
    }
}

/// A child process: 8 tasks of `next()` + `produce` until the parent
/// creates the stop file (or, should the parent be gone, a deadline).
fn child(index: usize) {
    let endpoints: Vec<String> = std::env::var("SEQ_ETCD_ENDPOINTS")
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let prefix = std::env::var("SEQ_ETCD_PREFIX").unwrap();
    let stop_file = std::path::PathBuf::from(std::env::var("SEQ_ETCD_STOP_FILE").unwrap());
    let deadline: u64 = std::env::var("SEQ_ETCD_DEADLINE").unwrap().parse().unwrap();
    runtime().block_on(async move {
        let store = open(&endpoints, &prefix, &format!("proc-{index}"));
        let seq = store.sequence("ids").await.unwrap();
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let (store, seq, stop_file) = (store.clone(), seq.clone(), stop_file.clone());
            tasks.push(tokio::spawn(async move {
                let mut lines = Vec::new();
                let mut round = 0;
                while !stop_file.exists() && unix_ms() < deadline {
                    let n = retry("next", || seq.next()).await;
                    lines.push(format!("N {index} {task} {n}"));
                    let segment = format!("seg-{}", (task + round) % SEGMENTS);
                    let key = format!("p{index}-t{task}-r{round}");
                    let record = Record::new(key.clone()).with_idempotency_key(key.clone());
                    let receipt = retry("produce", || {
                        store.produce_receipt(
                            SPACE,
                            &segment,
                            vec![record.clone()],
                            ProduceOptions::default(),
                        )
                    })
                    .await;
                    lines.push(format!(
                        "P {segment} {} {key} {}",
                        receipt.sequences[0],
                        unix_ms()
                    ));
                    round += 1;
                }
                lines
            }));
        }
        let mut out = std::io::stdout().lock();
        for task in tasks {
            for line in task.await.unwrap() {
                writeln!(out, "{line}").unwrap();
            }
        }
        out.flush().unwrap();
        drop(out);
        store.close().await.unwrap();
    });
}

/// What the children acknowledged.
#[derive(Default)]
struct Acks {
    /// (process, task) → the numbers it got, in order.
    numbers: HashMap<(usize, usize), Vec<i64>>,
    /// (segment, sequence) → (idempotency key, unix ms of the ack).
    entries: BTreeMap<(String, u64), (String, u64)>,
}

fn parse(acks: &mut Acks, output: &str) {
    for line in output.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["N", process, task, n] => acks
                .numbers
                .entry((process.parse().unwrap(), task.parse().unwrap()))
                .or_default()
                .push(n.parse().unwrap()),
            ["P", segment, seq, key, ms] => {
                let slot = ((*segment).to_owned(), seq.parse().unwrap());
                let value = ((*key).to_owned(), ms.parse().unwrap());
                if let Some(earlier) = acks.entries.insert(slot.clone(), value) {
                    panic!("{slot:?} acknowledged twice (first for {earlier:?})");
                }
            }
            _ => panic!("unexpected child output: {line:?}"),
        }
    }
}

/// A fresh directory for the stop file (under the system's temp dir).
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("seq-etcd-processes-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn parent() {
    let cluster = Cluster::start();
    let endpoints = cluster.endpoints();
    let prefix = format!("seq-test-{}", uuid::Uuid::new_v4());
    let rt = runtime();
    rt.block_on(async {
        let store = open(&endpoints, &prefix, "parent");
        // Small blocks: the processes keep reserving past each other.
        let options = SequenceOptions {
            block_size: 32,
            ..SequenceOptions::default()
        };
        store.create_sequence("ids", options).await.unwrap();
        store.close().await.unwrap();
    });

    let started = unix_ms();
    let stop = tempfile_dir();
    let stop_file = stop.join("stop");
    let children: Vec<_> = (0..PROCESSES)
        .map(|index| {
            Command::new(std::env::current_exe().unwrap())
                .env(CHILD, index.to_string())
                .env("SEQ_ETCD_ENDPOINTS", endpoints.join(","))
                .env("SEQ_ETCD_PREFIX", &prefix)
                .env("SEQ_ETCD_STOP_FILE", &stop_file)
                .env("SEQ_ETCD_DEADLINE", (started + 120_000).to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();

    // Disruptions: a follower down for a while, then the leader.
    std::thread::sleep(Duration::from_millis(2_000));
    let follower = (0..cluster.len()).find(|&m| m != cluster.leader()).unwrap();
    cluster.kill(follower);
    let follower_down = unix_ms();
    std::thread::sleep(Duration::from_millis(3_000));
    let follower_up = unix_ms();
    cluster.restart(follower);
    std::thread::sleep(Duration::from_millis(1_000));
    let leader = cluster.leader();
    cluster.kill(leader);
    std::thread::sleep(Duration::from_millis(2_000));
    cluster.restart(leader);
    let leader_back = unix_ms();
    // Some work after the leader is back, then stop.
    std::thread::sleep(Duration::from_millis(3_000));
    std::fs::write(&stop_file, b"stop").unwrap();

    let mut acks = Acks::default();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a child failed: {:?}",
            output.status
        );
        parse(&mut acks, &String::from_utf8(output.stdout).unwrap());
    }

    // Numbers: distinct store-wide, increasing per task.
    let mut all = HashSet::new();
    for ((process, task), numbers) in &acks.numbers {
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "process {process} task {task}: numbers not increasing"
        );
        for n in numbers {
            assert!(all.insert(*n), "{n} handed out twice");
        }
    }
    assert_eq!(acks.numbers.len(), PROCESSES * TASKS, "every task ran");

    // Work went on with a follower down, and after the leader came back.
    let during = |from: u64, to: u64| {
        acks.entries
            .values()
            .filter(|(_, ms)| (from..to).contains(ms))
            .count()
    };
    assert!(
        during(follower_down + 500, follower_up) > 0,
        "no write acknowledged while a follower was down"
    );
    assert!(
        during(leader_back, u64::MAX) > 0,
        "no write acknowledged after the leader came back"
    );

    // Segments: dense, and holding exactly the acknowledged entries once.
    rt.block_on(async {
        let store = open(&endpoints, &prefix, "checker");
        let mut keys = HashSet::new();
        let mut total = 0;
        for s in 0..SEGMENTS {
            let segment = format!("seg-{s}");
            let mut stream = store
                .consume_segment(SPACE, &segment, SegmentQuery::default())
                .unwrap();
            let mut expected = 1;
            while let Some(entry) = stream.next().await.unwrap() {
                assert_eq!(entry.sequence, expected, "{segment} is not dense");
                let key = String::from_utf8(entry.payload.to_vec()).unwrap();
                assert!(keys.insert(key.clone()), "{key} appended twice");
                if let Some((acked, _)) = acks.entries.get(&(segment.clone(), entry.sequence)) {
                    assert_eq!(acked, &key, "{segment}#{expected} holds another entry");
                }
                expected += 1;
                total += 1;
            }
        }
        for ((segment, seq), (key, _)) in &acks.entries {
            assert!(
                keys.contains(key),
                "acknowledged {segment}#{seq} ({key}) is lost"
            );
        }
        // A produce whose acknowledgement was lost to a failure but whose
        // retry found it by its idempotency key is counted once; nothing else
        // may be there.
        assert_eq!(total, acks.entries.len(), "entries nobody acknowledged");
        store.close().await.unwrap();
    });
    println!(
        "etcd_processes: {} numbers, {} entries from {PROCESSES} processes x {TASKS} tasks",
        all.len(),
        acks.entries.len()
    );
    let _ = std::fs::remove_dir_all(&stop);
}
