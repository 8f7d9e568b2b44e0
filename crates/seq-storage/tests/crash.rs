//! Behaviour specific to the crash-simulating backend: what a crash keeps,
//! and that every injected fault fails cleanly and changes nothing.

use bytes::Bytes;
use seq_storage::{
    CrashStorage, Durability, Error, FaultPlan, KeyRange, ScanOptions, Storage, WriteBatch,
};

fn batch(keys: &[&str], value: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for k in keys {
        batch.put(
            Bytes::copy_from_slice(k.as_bytes()),
            Bytes::copy_from_slice(value.as_bytes()),
        );
    }
    batch
}

fn keys(store: &CrashStorage) -> Vec<String> {
    store
        .scan(KeyRange::all(), ScanOptions::forward())
        .expect("scan")
        .map(|e| String::from_utf8(e.expect("entry").0.to_vec()).expect("UTF-8 key"))
        .collect()
}

fn assert_injected(result: seq_storage::Result<()>) {
    match result {
        Err(Error::Io { source }) => assert!(source.to_string().contains("injected"), "{source}"),
        other => panic!("expected an injected I/O error, got {other:?}"),
    }
}

#[test]
fn should_lose_only_unsynced_writes_on_crash() {
    let store = CrashStorage::new();
    store.write(batch(&["a"], "1"), Durability::Sync).unwrap();
    store
        .write(batch(&["b", "c"], "2"), Durability::Buffered)
        .unwrap();
    assert_eq!(keys(&store), ["a", "b", "c"]);
    assert_eq!(store.pending_batches(), 1);
    let after = store.crash();
    assert_eq!(keys(&after), ["a"]);
    assert_eq!(after.pending_batches(), 0);
}

#[test]
fn should_make_earlier_buffered_writes_durable_on_sync() {
    let store = CrashStorage::new();
    store
        .write(batch(&["a"], "1"), Durability::Buffered)
        .unwrap();
    store.write(batch(&["b"], "1"), Durability::Sync).unwrap();
    store
        .write(batch(&["c"], "1"), Durability::Buffered)
        .unwrap();
    assert_eq!(keys(&store.crash()), ["a", "b"]);
}

#[test]
fn should_make_buffered_writes_durable_on_flush() {
    let store = CrashStorage::new();
    store
        .write(batch(&["a"], "1"), Durability::Buffered)
        .unwrap();
    store.flush().unwrap();
    assert_eq!(store.pending_batches(), 0);
    assert_eq!(keys(&store.crash()), ["a"]);
}

#[test]
fn should_keep_every_prefix_of_buffered_batches_and_never_part_of_one() {
    for kept in 0..=4 {
        let store = CrashStorage::new();
        store
            .write(batch(&["base"], "0"), Durability::Sync)
            .unwrap();
        store
            .write(batch(&["x1", "y1"], "1"), Durability::Buffered)
            .unwrap();
        let mut delete = WriteBatch::new();
        delete.delete(&b"base"[..]).put(&b"x2"[..], &b"2"[..]);
        store.write(delete, Durability::Buffered).unwrap();
        let mut range = WriteBatch::new();
        range.delete_range(&b"x"[..], &b"y"[..]);
        store.write(range, Durability::Buffered).unwrap();
        let expected: &[&str] = match kept {
            0 => &["base"],
            1 => &["base", "x1", "y1"],
            2 => &["x1", "x2", "y1"],
            _ => &["y1"],
        };
        assert_eq!(
            keys(&store.crash_keeping(kept)),
            expected,
            "keeping {kept} batches"
        );
    }
}

#[test]
fn should_keep_everything_on_clean_reopen() {
    let store = CrashStorage::new();
    store
        .write(batch(&["a"], "1"), Durability::Buffered)
        .unwrap();
    assert_eq!(keys(&store.close_and_reopen()), ["a"]);
}

#[test]
fn should_close_the_old_handle_after_crash_or_reopen() {
    let store = CrashStorage::new();
    let alias = store.clone();
    let _after = store.crash();
    assert!(matches!(alias.get(b"a"), Err(Error::Closed { .. })));
    assert!(matches!(
        alias.write(WriteBatch::new(), Durability::Sync),
        Err(Error::Closed { .. })
    ));
    assert!(alias.scan(KeyRange::all(), ScanOptions::forward()).is_err());
    let other = CrashStorage::new();
    let _reopened = other.close_and_reopen();
    assert!(matches!(other.flush(), Err(Error::Closed { .. })));
}

#[test]
fn should_fail_the_nth_write_and_change_nothing() {
    let store = CrashStorage::with_faults(FaultPlan::new().fail_nth_write(2));
    store.write(batch(&["a"], "1"), Durability::Sync).unwrap();
    let mut second = batch(&["b"], "2");
    second.delete(&b"a"[..]);
    assert_injected(store.write(second, Durability::Sync));
    assert_eq!(keys(&store), ["a"]);
    store.write(batch(&["c"], "3"), Durability::Sync).unwrap();
    assert_eq!(keys(&store.crash()), ["a", "c"]);
}

#[test]
fn should_count_writes_from_when_faults_are_set() {
    let store = CrashStorage::new();
    store.write(batch(&["a"], "1"), Durability::Sync).unwrap();
    store.set_faults(FaultPlan::new().fail_nth_write(1));
    assert_injected(store.write(batch(&["b"], "1"), Durability::Buffered));
    store
        .write(batch(&["b"], "1"), Durability::Buffered)
        .unwrap();
    assert_eq!(keys(&store), ["a", "b"]);
}

#[test]
fn should_fail_every_write_after_the_limit() {
    let store = CrashStorage::with_faults(FaultPlan::new().fail_writes_after(2));
    store.write(batch(&["a"], "1"), Durability::Sync).unwrap();
    store
        .write(batch(&["b"], "1"), Durability::Buffered)
        .unwrap();
    for _ in 0..3 {
        assert_injected(store.write(batch(&["c"], "1"), Durability::Sync));
    }
    assert_eq!(keys(&store), ["a", "b"]);
    store.flush().unwrap();
    assert_eq!(keys(&store.crash()), ["a", "b"]);
}

#[test]
fn should_fail_a_sync_write_then_refuse_writes_until_crash() {
    let store = CrashStorage::with_faults(FaultPlan::new().fail_next_sync());
    store
        .write(batch(&["buffered"], "1"), Durability::Buffered)
        .unwrap();
    assert_injected(store.write(batch(&["synced"], "1"), Durability::Sync));
    assert_eq!(
        keys(&store),
        ["buffered"],
        "the failed write must not be applied"
    );
    assert!(matches!(
        store.write(batch(&["later"], "1"), Durability::Buffered),
        Err(Error::Closed { .. })
    ));
    assert!(matches!(store.flush(), Err(Error::Closed { .. })));
    assert_eq!(
        store.get(b"buffered").unwrap().as_deref(),
        Some(&b"1"[..]),
        "reads keep working"
    );
    let after = store.crash();
    assert!(keys(&after).is_empty(), "nothing became durable");
    after
        .write(batch(&["fresh"], "1"), Durability::Sync)
        .unwrap();
}

#[test]
fn should_fail_a_flush_and_leave_buffered_writes_not_durable() {
    let store = CrashStorage::new();
    store.write(batch(&["a"], "1"), Durability::Sync).unwrap();
    store
        .write(batch(&["b"], "1"), Durability::Buffered)
        .unwrap();
    store.set_faults(FaultPlan::new().fail_next_sync());
    match store.flush() {
        Err(Error::Io { source }) => assert!(source.to_string().contains("injected")),
        other => panic!("expected an injected flush failure, got {other:?}"),
    }
    assert!(matches!(
        store.write(WriteBatch::new(), Durability::Sync),
        Err(Error::Closed { .. })
    ));
    assert_eq!(
        keys(&store.close_and_reopen()),
        ["a"],
        "a failed fsync keeps only what was durable"
    );
}

#[test]
fn should_not_consume_the_sync_fault_with_buffered_writes() {
    let store = CrashStorage::with_faults(FaultPlan::new().fail_next_sync());
    store
        .write(batch(&["a"], "1"), Durability::Buffered)
        .unwrap();
    store
        .write(batch(&["b"], "1"), Durability::Buffered)
        .unwrap();
    assert!(store.flush().is_err());
}

#[test]
fn should_not_consume_the_sync_fault_with_a_conflicting_write() {
    let store = CrashStorage::with_faults(FaultPlan::new().fail_next_sync());
    let mut conflicting = WriteBatch::new();
    conflicting.require_equals(&b"missing"[..], &b"x"[..]);
    assert!(
        store
            .write(conflicting, Durability::Sync)
            .unwrap_err()
            .is_conflict()
    );
    assert_injected(store.write(batch(&["a"], "1"), Durability::Sync));
}

#[test]
fn should_fail_reads_of_a_key_in_get_and_scan() {
    let store = CrashStorage::with_faults(FaultPlan::new().fail_reads_of(&b"b"[..]));
    store
        .write(batch(&["a", "b", "c"], "1"), Durability::Sync)
        .unwrap();
    match store.get(b"b") {
        Err(Error::Io { source }) => assert!(source.to_string().contains("injected")),
        other => panic!("expected an injected read failure, got {other:?}"),
    }
    assert!(store.get(b"a").unwrap().is_some());
    let forward: Vec<_> = store
        .scan(KeyRange::all(), ScanOptions::forward())
        .unwrap()
        .collect();
    assert_eq!(forward.len(), 2, "the scan stops at the failure");
    assert!(forward[0].is_ok());
    assert!(
        matches!(&forward[1], Err(Error::Io { source }) if source.to_string().contains("injected"))
    );
    let reverse: Vec<_> = store
        .scan(KeyRange::all(), ScanOptions::reverse())
        .unwrap()
        .collect();
    assert_eq!(reverse.len(), 2);
    assert!(reverse[1].is_err());
    let around: Vec<_> = store
        .scan(KeyRange::from(&b"c"[..]), ScanOptions::forward())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(around.len(), 1, "a scan not reaching the key is unaffected");
    // Writes to the key still work, and the fault goes away with a new plan.
    store.write(batch(&["b"], "2"), Durability::Sync).unwrap();
    store.set_faults(FaultPlan::new());
    assert_eq!(store.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn should_enforce_configured_size_limits_without_writing() {
    use seq_storage::Capabilities;
    let store =
        CrashStorage::new().with_capabilities(Capabilities::persistent().with_max_value_len(4));
    let mut big = batch(&["ok"], "1");
    big.put(&b"big"[..], &b"12345"[..]);
    assert!(matches!(
        store.write(big, Durability::Sync),
        Err(Error::TooLarge {
            what: "value",
            len: 5,
            limit: 4
        })
    ));
    assert!(keys(&store).is_empty());
}
