//! Scans against a `BTreeMap` model, with pages and windows small enough
//! that every scan crosses many of them; snapshot consistency across pages;
//! compaction of a scan's snapshot.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::LazyLock;

use bytes::Bytes;
use seq_etcd::testing::Cluster;
use seq_etcd::{EtcdError, EtcdStorage, etcd_error};
use seq_storage::test_rng::TestRng as Rng;
use seq_storage::{Direction, Durability, KeyRange, ScanOptions, Storage, WriteBatch};

static CLUSTER: LazyLock<Cluster> = LazyLock::new(|| Cluster::builder().members(1).start());

/// A store under a fresh prefix that reads `page_len` keys per page.
fn store(page_len: usize) -> EtcdStorage {
    let mut options = CLUSTER.options(uuid::Uuid::new_v4().as_bytes().to_vec());
    options.scan_page_len = page_len;
    EtcdStorage::connect(options).expect("connect")
}

/// Keys of several shapes: dense big-endian numbers, a cluster sharing a long
/// middle (bisection gives up on it), short binary keys rich in 0x00 and
/// 0xFF, and the empty key.
fn model(rng: &mut Rng) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut keys = BTreeMap::new();
    for i in 0..160u32 {
        let mut k = b"d/".to_vec();
        k.extend_from_slice(&(i * 3).to_be_bytes());
        keys.insert(k, i.to_be_bytes().to_vec());
    }
    for i in 0..40u16 {
        let mut k = b"c/".to_vec();
        k.extend_from_slice(&[0x41; 40]);
        k.extend_from_slice(&i.to_be_bytes());
        keys.insert(k, vec![1]);
    }
    let alphabet = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, b'd', b'c'];
    for _ in 0..60 {
        let len = rng.index(5);
        let k: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.index(alphabet.len())])
            .collect();
        keys.insert(k, vec![2]);
    }
    keys.insert(Vec::new(), b"empty".to_vec());
    keys
}

fn write_all(store: &EtcdStorage, keys: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let entries: Vec<_> = keys.iter().collect();
    for chunk in entries.chunks(100) {
        let mut batch = WriteBatch::new();
        for (k, v) in chunk {
            batch.put((*k).clone(), (*v).clone());
        }
        store.write(batch, Durability::Sync).expect("write");
    }
}

/// A bound at a model key, next to one, or anywhere.
fn bound(rng: &mut Rng, keys: &[&Vec<u8>]) -> Bound<Bytes> {
    let mut key = keys[rng.index(keys.len())].clone();
    match rng.index(4) {
        0 => key.push(0),
        1 => key.push(0xFF),
        _ => {}
    }
    match rng.index(5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(Bytes::from(key)),
        _ => Bound::Excluded(Bytes::from(key)),
    }
}

#[test]
fn scans_match_a_model_across_pages_and_windows() {
    let mut rng = Rng(0x5EED_0FE7_CD01);
    let keys = model(&mut rng);
    let sorted: Vec<&Vec<u8>> = keys.keys().collect();
    for (page_len, cases) in [(1, 8), (2, 20), (3, 20), (512, 20)] {
        let store = store(page_len);
        write_all(&store, &keys);
        for case in 0..cases {
            let range = KeyRange {
                start: bound(&mut rng, &sorted),
                end: bound(&mut rng, &sorted),
            };
            let direction = if rng.index(2) == 0 {
                Direction::Forward
            } else {
                Direction::Reverse
            };
            let limit = (rng.index(3) == 0).then(|| rng.index(12));
            // Every fourth case scans everything, so the long ones occur.
            let range = if case % 4 == 0 {
                KeyRange::all()
            } else {
                range
            };
            let options = ScanOptions { direction, limit };

            let mut expected: Vec<(Vec<u8>, Vec<u8>)> = keys
                .iter()
                .filter(|(k, _)| range.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if direction == Direction::Reverse {
                expected.reverse();
            }
            expected.truncate(limit.unwrap_or(usize::MAX));
            let got: Vec<(Vec<u8>, Vec<u8>)> = store
                .scan(range.clone(), options)
                .expect("scan")
                .map(|e| {
                    let (k, v) = e.expect("entry");
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            assert_eq!(
                got, expected,
                "page_len {page_len}, {range:?}, {direction:?}, limit {limit:?}"
            );
        }
    }
}

#[test]
fn a_scan_across_many_pages_never_sees_later_writes() {
    let store = store(2);
    let mut batch = WriteBatch::new();
    for i in 0..60u8 {
        batch.put(vec![b'k', i], vec![i]);
    }
    store.write(batch, Durability::Sync).expect("write");
    for options in [ScanOptions::forward(), ScanOptions::reverse()] {
        let mut scan = store.scan(KeyRange::prefix(b"k"), options).expect("scan");
        let mut seen = vec![scan.next().expect("an entry").expect("entry")];

        let mut change = WriteBatch::new();
        change.delete_range(vec![b'k', 10], vec![b'k', 50]);
        change.put(vec![b'k', 5], b"changed".to_vec());
        change.put(vec![b'k', 200], b"new".to_vec());
        store.write(change, Durability::Sync).expect("change");

        seen.extend(scan.map(|e| e.expect("entry")));
        let mut expected: Vec<u8> = (0..60).collect();
        if options.direction == Direction::Reverse {
            expected.reverse();
        }
        let keys: Vec<u8> = seen.iter().map(|(k, _)| k[1]).collect();
        assert_eq!(keys, expected, "{options:?}");
        assert!(seen.iter().all(|(k, v)| v[..] == [k[1]]), "{options:?}");

        // Restore for the other direction.
        let mut restore = WriteBatch::new();
        restore.delete(vec![b'k', 200]);
        for i in 0..60u8 {
            restore.put(vec![b'k', i], vec![i]);
        }
        store.write(restore, Durability::Sync).expect("restore");
    }
}

#[test]
fn a_scan_whose_snapshot_is_compacted_fails_with_a_typed_error() {
    // Its own cluster: compaction would break the other tests' scans.
    let cluster = Cluster::builder().members(1).start();
    let mut options = cluster.options("compacted");
    options.scan_page_len = 2;
    let store = EtcdStorage::connect(options).expect("connect");
    let mut batch = WriteBatch::new();
    for i in 0..20u8 {
        batch.put(vec![b'c', i], vec![i]);
    }
    store.write(batch, Durability::Sync).expect("write");
    let mut scan = store
        .scan(KeyRange::prefix(b"c"), ScanOptions::forward())
        .expect("scan");
    assert!(scan.next().is_some());

    let mut later = WriteBatch::new();
    later.put(b"c-later".to_vec(), b"x".to_vec());
    store.write(later, Durability::Sync).expect("write");
    cluster.compact();

    let err = scan
        .find_map(Result::err)
        .expect("the scan fails once its revision is gone");
    assert!(
        matches!(etcd_error(&err), Some(EtcdError::Compacted { revision }) if *revision > 0),
        "{err:?}"
    );
    assert!(seq_etcd::is_retriable(&err));
    assert!(scan.next().is_none(), "a failed scan ends");

    // A new scan reads the current state.
    let all = store
        .scan(KeyRange::prefix(b"c"), ScanOptions::forward())
        .expect("scan")
        .count();
    assert_eq!(all, 21);
}
