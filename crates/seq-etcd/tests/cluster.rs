//! Member failures on a real 3-member cluster: a follower down, the leader
//! killed, quorum lost. Writes go on, pause with typed, retriable errors, and
//! resume; nothing acknowledged is lost. Each test owns its cluster.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use seq_etcd::testing::Cluster;
use seq_etcd::{EtcdError, EtcdOptions, EtcdStorage, etcd_error};
use seq_storage::{Durability, Error, KeyRange, ScanOptions, Storage, WriteBatch};

/// What a writer saw: acknowledged keys (with their values) and the errors
/// of writes that failed.
#[derive(Default)]
struct Log {
    acked: BTreeMap<Vec<u8>, Vec<u8>>,
    errors: Vec<Error>,
}

/// Writes `key/<n>` = `<n>` for n = 0, 1, … until `stop`, logging every
/// outcome; each write is a `require_absent` + put, so a write that failed
/// ambiguously and is retried as the next key cannot be confused with it.
fn writer(store: Arc<EtcdStorage>, stop: Arc<AtomicBool>, log: Arc<Mutex<Log>>) {
    let mut n = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let key = format!("key/{n:08}").into_bytes();
        let value = n.to_be_bytes().to_vec();
        let mut batch = WriteBatch::new();
        batch.require_absent(key.clone());
        batch.put(key.clone(), value.clone());
        let result = store.write(batch, Durability::Sync);
        let mut log = log.lock().expect("log");
        match result {
            Ok(()) => {
                log.acked.insert(key, value);
            }
            Err(err) => {
                log.errors.push(err);
                drop(log);
                thread::sleep(Duration::from_millis(20));
            }
        }
        n += 1;
    }
}

/// Runs a writer while `during` runs, and returns its log.
fn with_writer(store: &Arc<EtcdStorage>, during: impl FnOnce(&dyn Fn() -> usize)) -> Log {
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let handle = {
        let (store, stop, log) = (Arc::clone(store), Arc::clone(&stop), Arc::clone(&log));
        thread::spawn(move || writer(store, stop, log))
    };
    let acked = || log.lock().expect("log").acked.len();
    during(&acked);
    stop.store(true, Ordering::SeqCst);
    handle.join().expect("writer");
    Arc::try_unwrap(log)
        .ok()
        .expect("writer is done")
        .into_inner()
        .expect("log")
}

/// Waits until the writer has `more` acknowledgements beyond `from`.
fn wait_for_acks(acked: &dyn Fn() -> usize, more: usize, within: Duration) {
    let target = acked() + more;
    let deadline = Instant::now() + within;
    while acked() < target {
        assert!(
            Instant::now() < deadline,
            "writes did not make progress: {} of {target} acknowledged after {within:?}",
            acked()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Every acknowledged key is present with its value, read through `store`.
fn assert_nothing_lost(store: &EtcdStorage, acked: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let stored: BTreeMap<Vec<u8>, Vec<u8>> = store
        .scan(KeyRange::prefix(b"key/"), ScanOptions::forward())
        .expect("scan")
        .map(|e| {
            let (k, v) = e.expect("entry");
            (k.to_vec(), v.to_vec())
        })
        .collect();
    for (key, value) in acked {
        assert_eq!(
            stored.get(key),
            Some(value),
            "acknowledged key {} is missing",
            String::from_utf8_lossy(key)
        );
    }
}

/// Every error is one of etcd's transient failures.
fn assert_all_retriable(errors: &[Error]) {
    for err in errors {
        assert!(
            seq_etcd::is_retriable(err),
            "a failure that is not a typed, retriable etcd error: {err:?}"
        );
    }
}

fn connect(cluster: &Cluster, timeout: Duration) -> Arc<EtcdStorage> {
    let options = EtcdOptions {
        request_timeout: timeout,
        ..cluster.options("failover")
    };
    Arc::new(EtcdStorage::connect(options).expect("connect"))
}

#[test]
fn writes_continue_while_a_follower_is_down() {
    let cluster = Cluster::start();
    let store = connect(&cluster, Duration::from_secs(5));
    let leader = cluster.leader();
    let follower = (leader + 1) % cluster.len();
    let log = with_writer(&store, |acked| {
        wait_for_acks(acked, 30, Duration::from_secs(30));
        cluster.kill(follower);
        wait_for_acks(acked, 100, Duration::from_secs(30));
        cluster.restart(follower);
        wait_for_acks(acked, 30, Duration::from_secs(30));
    });
    assert!(log.acked.len() >= 160);
    eprintln!(
        "follower {follower} killed and restarted: {} writes acknowledged, failures: {:?}",
        log.acked.len(),
        log.errors
    );
    assert_all_retriable(&log.errors);
    // Requests to the killed member are refused before being sent and retried
    // on the others, so its death costs at most the writes in flight.
    assert!(
        log.errors.len() <= 2,
        "{} writes failed while a follower was down: {:?}",
        log.errors.len(),
        log.errors
    );
    assert_nothing_lost(&store, &log.acked);
    // The restarted follower has caught up: read through it alone.
    let through_follower =
        EtcdStorage::connect(EtcdOptions::new([cluster.endpoint(follower)], "failover"))
            .expect("connect to the follower");
    assert_nothing_lost(&through_follower, &log.acked);
}

#[test]
fn killing_the_leader_pauses_writes_which_resume_after_reelection_losing_nothing() {
    let cluster = Cluster::start();
    let store = connect(&cluster, Duration::from_secs(5));
    let old_leader = cluster.leader();
    let mut new_leader = old_leader;
    let log = with_writer(&store, |acked| {
        wait_for_acks(acked, 30, Duration::from_secs(30));
        cluster.kill(old_leader);
        new_leader = cluster.leader();
        wait_for_acks(acked, 100, Duration::from_secs(30));
    });
    assert_ne!(new_leader, old_leader, "a new leader was elected");
    assert_all_retriable(&log.errors);
    for err in &log.errors {
        // While there is no leader, etcd refuses writes up front; a write in
        // flight to the killed leader has an unknown outcome.
        match etcd_error(err) {
            Some(EtcdError::Unavailable { .. })
            | Some(EtcdError::TimedOut { .. })
            | Some(EtcdError::Interrupted { .. }) => {}
            other => panic!("unexpected failure {other:?}"),
        }
    }
    eprintln!(
        "leader {old_leader} killed, {new_leader} elected: {} writes acknowledged, failures: {:?}",
        log.acked.len(),
        log.errors
    );
    assert_nothing_lost(&store, &log.acked);

    cluster.restart(old_leader);
    for member in 0..cluster.len() {
        let alone = EtcdStorage::connect(EtcdOptions::new([cluster.endpoint(member)], "failover"))
            .expect("connect to one member");
        assert_nothing_lost(&alone, &log.acked);
    }
}

#[test]
fn without_quorum_writes_fail_with_a_retriable_error_then_resume() {
    let cluster = Cluster::start();
    let store = connect(&cluster, Duration::from_secs(2));
    let mut batch = WriteBatch::new();
    batch.put(b"key/before".to_vec(), b"1".to_vec());
    store.write(batch, Durability::Sync).expect("write");

    let leader = cluster.leader();
    let down: Vec<usize> = (0..cluster.len()).filter(|&m| m != leader).collect();
    for &member in &down {
        cluster.kill(member);
    }
    let started = Instant::now();
    let mut batch = WriteBatch::new();
    batch.put(b"key/during".to_vec(), b"2".to_vec());
    let err = store
        .write(batch, Durability::Sync)
        .expect_err("no quorum, no write");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed only after {:?}",
        started.elapsed()
    );
    assert!(seq_etcd::is_retriable(&err), "{err:?}");
    let read = store
        .get(b"key/before")
        .expect_err("no quorum, no linearizable read");
    assert!(seq_etcd::is_retriable(&read), "{read:?}");

    for &member in &down {
        cluster.restart(member);
    }
    let mut batch = WriteBatch::new();
    batch.put(b"key/after".to_vec(), b"3".to_vec());
    store
        .write(batch, Durability::Sync)
        .expect("quorum is back");
    assert_eq!(
        store.get(b"key/before").expect("get").as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn a_store_left_idle_while_the_whole_cluster_restarted_writes_again_without_error() {
    // Nothing used the connection while its members went away: it must
    // have noticed and reconnect, rather than fail the next write. (A
    // connection driven only by its callers, tried for speed, failed here
    // with "connection closed".)
    let cluster = Cluster::start();
    let store = connect(&cluster, Duration::from_secs(10));
    let put = |key: &[u8]| {
        let mut batch = WriteBatch::new();
        batch.require_absent(key.to_vec());
        batch.put(key.to_vec(), b"v".to_vec());
        store.write(batch, Durability::Sync)
    };
    put(b"before").expect("write before the restart");
    cluster.crash();
    put(b"after").expect("the first write after the restart");
    assert_eq!(store.get(b"before").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.get(b"after").unwrap().as_deref(), Some(&b"v"[..]));
}
