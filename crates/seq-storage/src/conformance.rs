//! The conformance suite every [`Storage`] backend runs.
//!
//! Each case is a generic function taking a [`Harness`], which hands out a
//! fresh, empty store (plus a guard owning its files) per case, so no case
//! depends on another's leftovers. [`conformance_tests!`](crate::conformance_tests)
//! stamps one `#[test]` per case, so a failure names the case and the backend:
//!
//! ```text
//! // crates/my-backend/tests/conformance.rs
//! seq_storage::conformance_tests!(MyHarness);
//! ```
//!
//! A case whose capability the backend lacks (a reopen for an ephemeral
//! store, a crash for a backend that cannot simulate one, a size limit that
//! does not exist) prints `SKIPPED <case>: <why>` to stderr and passes: the
//! skip is visible in `cargo test -- --nocapture` output, never a silent
//! `#[ignore]`.
//!
//! [`run_all`] runs every case in one call, for harnesses outside `#[test]`
//! (see the crate docs for a complete custom backend).

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use crate::{Durability, Error, KeyRange, ScanOptions, Storage, WriteBatch};

/// Builds stores for the conformance cases.
pub trait Harness {
    /// The backend under test.
    type Store: Storage;
    /// Owns whatever must outlive the store (typically a
    /// [`tempfile::TempDir`]); dropped after the case.
    type Guard;

    /// A new, empty store.
    fn fresh(&self) -> (Self::Guard, Self::Store);

    /// Closes `store` cleanly and opens the same data again. Only called when
    /// [`crate::Capabilities::persistent`] is true; a persistent backend must
    /// return `Some`. The default returns `None`.
    fn reopen(&self, guard: &Self::Guard, store: Self::Store) -> Option<Self::Store> {
        let _ = (guard, store);
        None
    }

    /// Simulates a crash (power loss) of `store` and opens what survived, or
    /// `None` when the backend cannot simulate one (the crash cases are then
    /// skipped). The default returns `None`.
    fn crash_reopen(&self, guard: &Self::Guard, store: Self::Store) -> Option<Self::Store> {
        let _ = (guard, store);
        None
    }
}

/// A fresh temporary directory, for harnesses of on-disk backends.
///
/// # Panics
///
/// When the directory cannot be created.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("seq-storage-conformance-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Runs every case against `harness`, in order, panicking at the first
/// failure.
pub fn run_all<H: Harness>(harness: &H) {
    crate::__conformance_cases!(run_all, harness);
}

/// The name of every case, in the order [`run_all`] runs them.
pub const CASES: &[&str] = crate::__conformance_cases!(names,);

/// Stamps one `#[test]` per conformance case for a harness expression,
/// named after the case. Use it at the top level (or in a module) of an
/// integration test file.
///
/// ```
/// use seq_storage::MemoryStorage;
/// use seq_storage::conformance::Harness;
///
/// struct MyHarness;
///
/// impl Harness for MyHarness {
///     type Store = MemoryStorage;
///     type Guard = ();
///     fn fresh(&self) -> ((), MemoryStorage) {
///         ((), MemoryStorage::new())
///     }
/// }
///
/// seq_storage::conformance_tests!(MyHarness);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr $(,)?) => {
        $crate::__conformance_cases!(stamp, $harness);
    };
}

/// The list of cases, shared by [`conformance_tests!`], [`run_all`] and
/// [`CASES`] so they cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($mode:ident, $($arg:tt)*) => {
        $crate::__conformance_cases! {@$mode ($($arg)*) [
            get_missing_key_returns_none,
            put_then_get_returns_value,
            overwrite_replaces_value,
            delete_removes_key,
            delete_of_missing_key_is_ok,
            buffered_write_is_visible_at_once,
            batch_applies_every_op,
            later_op_in_batch_wins,
            empty_batch_is_ok,
            delete_range_removes_half_open_range,
            delete_range_empty_or_inverted_is_noop,
            delete_range_then_put_in_same_batch,
            require_absent_passes_then_conflicts,
            require_equals_passes_on_match_conflicts_on_mismatch,
            require_equals_on_missing_key_conflicts,
            failed_precondition_midway_applies_nothing,
            preconditions_see_state_before_the_batch,
            conflict_error_names_the_key,
            concurrent_creates_exactly_one_wins,
            concurrent_compare_and_set_loses_no_update,
            binary_keys_order_bytewise,
            empty_key_and_empty_value,
            scan_bounds_inclusive_and_exclusive,
            scan_unbounded_ends,
            reverse_scan_descends_within_bounds,
            scan_limit_forward,
            scan_limit_reverse,
            empty_and_inverted_ranges_yield_nothing,
            prefix_scan_returns_only_prefixed_keys,
            scan_skips_deleted_keys,
            one_mib_value_roundtrips,
            hundred_thousand_keys_scan_in_order,
            scan_reads_snapshot_taken_at_creation,
            scan_dropped_early_does_not_block_writes,
            readers_see_whole_batches_during_concurrent_writes,
            value_over_limit_is_too_large,
            batch_over_limit_is_too_large,
            flush_succeeds_and_keeps_data,
            synced_writes_survive_reopen,
            buffered_writes_survive_clean_reopen,
            deletes_survive_reopen,
            store_is_writable_after_reopen,
            synced_writes_survive_crash,
            crash_never_exposes_part_of_a_batch,
            flushed_writes_survive_crash,
        ]}
    };
    (@stamp ($harness:expr) [$($case:ident),* $(,)?]) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$harness);
            }
        )*
    };
    (@run_all ($harness:expr) [$($case:ident),* $(,)?]) => {
        $( $crate::conformance::$case($harness); )*
    };
    (@names () [$($case:ident),* $(,)?]) => {
        &[$(stringify!($case)),*]
    };
}

// ---------------------------------------------------------------- helpers

fn skip(case: &str, why: &str) {
    eprintln!("SKIPPED {case}: {why}");
}

fn key(k: &[u8]) -> Bytes {
    Bytes::copy_from_slice(k)
}

fn put<S: Storage>(store: &S, k: &[u8], v: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(key(k), key(v));
    store.write(batch, Durability::Sync).expect("put");
}

fn put_buffered<S: Storage>(store: &S, k: &[u8], v: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(key(k), key(v));
    store
        .write(batch, Durability::Buffered)
        .expect("buffered put");
}

fn put_all<S: Storage>(store: &S, keys: &[&[u8]]) {
    let mut batch = WriteBatch::new();
    for k in keys {
        batch.put(key(k), key(k));
    }
    store.write(batch, Durability::Sync).expect("put all");
}

fn get<S: Storage>(store: &S, k: &[u8]) -> Option<Vec<u8>> {
    store.get(k).expect("get").map(|v| v.to_vec())
}

fn scan_keys<S: Storage>(store: &S, range: KeyRange, options: ScanOptions) -> Vec<Vec<u8>> {
    store
        .scan(range, options)
        .expect("scan")
        .map(|entry| entry.expect("scan entry").0.to_vec())
        .collect()
}

fn all_keys<S: Storage>(store: &S) -> Vec<Vec<u8>> {
    scan_keys(store, KeyRange::all(), ScanOptions::forward())
}

fn range(start: Bound<&[u8]>, end: Bound<&[u8]>) -> KeyRange {
    KeyRange {
        start: start.map(key),
        end: end.map(key),
    }
}

fn owned(keys: &[&[u8]]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.to_vec()).collect()
}

fn expect_conflict(result: crate::Result<()>, on: &[u8]) {
    match result {
        Err(Error::Conflict { key }) => assert_eq!(&key[..], on, "conflict names the wrong key"),
        other => panic!(
            "expected a conflict on {:?}, got {other:?}",
            crate::show_key(on)
        ),
    }
}

fn reopen<H: Harness>(
    harness: &H,
    case: &str,
    guard: &H::Guard,
    store: H::Store,
) -> Option<H::Store> {
    if !store.capabilities().persistent {
        skip(case, "the backend is not persistent");
        return None;
    }
    let reopened = harness.reopen(guard, store);
    assert!(
        reopened.is_some(),
        "a persistent backend's Harness::reopen must return Some"
    );
    reopened
}

fn crash<H: Harness>(
    harness: &H,
    case: &str,
    guard: &H::Guard,
    store: H::Store,
) -> Option<H::Store> {
    let crashed = harness.crash_reopen(guard, store);
    if crashed.is_none() {
        skip(case, "the harness cannot simulate a crash");
    }
    crashed
}

/// Limits above this are not exercised: the case would need that much memory.
const MAX_EXERCISED_LIMIT: usize = 64 << 20;

// ------------------------------------------------------- point operations

/// `get` of a key never written is `None`.
pub fn get_missing_key_returns_none<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    assert_eq!(get(&store, b"missing"), None);
    put(&store, b"present", b"1");
    assert_eq!(get(&store, b"missing"), None);
    assert_eq!(
        get(&store, b"presen"),
        None,
        "a prefix of a key is a different key"
    );
    assert_eq!(
        get(&store, b"present\0"),
        None,
        "an extension of a key is a different key"
    );
}

/// A put is read back by `get`.
pub fn put_then_get_returns_value<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put(&store, b"k", b"v");
    assert_eq!(get(&store, b"k").as_deref(), Some(&b"v"[..]));
}

/// A second put replaces the value.
pub fn overwrite_replaces_value<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put(&store, b"k", b"first");
    put(&store, b"k", b"second, longer value");
    assert_eq!(
        get(&store, b"k").as_deref(),
        Some(&b"second, longer value"[..])
    );
    put(&store, b"k", b"3");
    assert_eq!(get(&store, b"k").as_deref(), Some(&b"3"[..]));
    assert_eq!(all_keys(&store).len(), 1);
}

/// A delete removes the key from `get` and from scans.
pub fn delete_removes_key<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &[b"a", b"b", b"c"]);
    let mut batch = WriteBatch::new();
    batch.delete(key(b"b"));
    store.write(batch, Durability::Sync).expect("delete");
    assert_eq!(get(&store, b"b"), None);
    assert_eq!(all_keys(&store), owned(&[b"a", b"c"]));
}

/// Deleting a key that does not exist succeeds and changes nothing.
pub fn delete_of_missing_key_is_ok<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put(&store, b"a", b"1");
    let mut batch = WriteBatch::new();
    batch.delete(key(b"nope"));
    store
        .write(batch, Durability::Sync)
        .expect("delete of a missing key");
    assert_eq!(all_keys(&store), owned(&[b"a"]));
}

/// A buffered write is visible to `get` and `scan` as soon as it returns.
pub fn buffered_write_is_visible_at_once<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_buffered(&store, b"k", b"v");
    assert_eq!(get(&store, b"k").as_deref(), Some(&b"v"[..]));
    assert_eq!(all_keys(&store), owned(&[b"k"]));
}

// ---------------------------------------------------------------- batches

/// Every operation of a batch is applied.
pub fn batch_applies_every_op<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &[b"old"]);
    let mut batch = WriteBatch::new();
    batch
        .put(key(b"x"), key(b"1"))
        .put(key(b"y"), key(b"2"))
        .delete(key(b"old"));
    store.write(batch, Durability::Sync).expect("batch");
    assert_eq!(all_keys(&store), owned(&[b"x", b"y"]));
    assert_eq!(get(&store, b"y").as_deref(), Some(&b"2"[..]));
}

/// Operations apply in order: a later operation on the same key wins.
pub fn later_op_in_batch_wins<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    let mut batch = WriteBatch::new();
    batch.put(key(b"a"), key(b"1")).put(key(b"a"), key(b"2"));
    batch.put(key(b"b"), key(b"1")).delete(key(b"b"));
    batch.delete(key(b"c")).put(key(b"c"), key(b"3"));
    store.write(batch, Durability::Sync).expect("batch");
    assert_eq!(get(&store, b"a").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&store, b"b"), None);
    assert_eq!(get(&store, b"c").as_deref(), Some(&b"3"[..]));
}

/// An empty batch, and a batch of preconditions only, succeed and change
/// nothing.
pub fn empty_batch_is_ok<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    store
        .write(WriteBatch::new(), Durability::Sync)
        .expect("empty synced batch");
    store
        .write(WriteBatch::new(), Durability::Buffered)
        .expect("empty buffered batch");
    let mut checks = WriteBatch::new();
    checks.require_absent(key(b"k"));
    store
        .write(checks, Durability::Sync)
        .expect("precondition-only batch");
    assert!(all_keys(&store).is_empty());
}

/// `delete_range(start, end)` removes `start..end`: start inclusive, end
/// exclusive.
pub fn delete_range_removes_half_open_range<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &[b"a", b"b", b"b\0", b"bz", b"c", b"d"]);
    let mut batch = WriteBatch::new();
    batch.delete_range(key(b"b"), key(b"d"));
    store.write(batch, Durability::Sync).expect("range delete");
    assert_eq!(all_keys(&store), owned(&[b"a", b"d"]));
}

/// A range delete whose end is not after its start deletes nothing.
pub fn delete_range_empty_or_inverted_is_noop<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &[b"a", b"b", b"c"]);
    let mut batch = WriteBatch::new();
    batch
        .delete_range(key(b"b"), key(b"b"))
        .delete_range(key(b"c"), key(b"a"));
    store
        .write(batch, Durability::Sync)
        .expect("empty range deletes");
    assert_eq!(all_keys(&store), owned(&[b"a", b"b", b"c"]));
}

/// A range delete removes keys put earlier in the same batch, and keys put
/// after it in the batch survive.
pub fn delete_range_then_put_in_same_batch<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &[b"k1", b"k2"]);
    let mut batch = WriteBatch::new();
    batch.put(key(b"k3"), key(b"x"));
    batch.delete_range(key(b"k"), key(b"l"));
    batch.put(key(b"k2"), key(b"new"));
    store.write(batch, Durability::Sync).expect("batch");
    assert_eq!(all_keys(&store), owned(&[b"k2"]));
    assert_eq!(get(&store, b"k2").as_deref(), Some(&b"new"[..]));
}

// ---------------------------------------------------------- preconditions

/// `require_absent` holds for a missing key and conflicts once it exists.
pub fn require_absent_passes_then_conflicts<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    let create = || {
        let mut batch = WriteBatch::new();
        batch.require_absent(key(b"k")).put(key(b"k"), key(b"v"));
        batch
    };
    store
        .write(create(), Durability::Sync)
        .expect("first create");
    expect_conflict(store.write(create(), Durability::Sync), b"k");
    assert_eq!(get(&store, b"k").as_deref(), Some(&b"v"[..]));
}

/// `require_equals` holds for the exact value and conflicts on any other.
pub fn require_equals_passes_on_match_conflicts_on_mismatch<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put(&store, b"k", b"v1");
    let mut cas = WriteBatch::new();
    cas.require_equals(key(b"k"), key(b"v1"))
        .put(key(b"k"), key(b"v2"));
    store
        .write(cas, Durability::Sync)
        .expect("matching compare-and-set");
    assert_eq!(get(&store, b"k").as_deref(), Some(&b"v2"[..]));

    for wrong in [&b"v1"[..], b"v", b"v2\0", b""] {
        let mut stale = WriteBatch::new();
        stale
            .require_equals(key(b"k"), key(wrong))
            .put(key(b"k"), key(b"v3"));
        expect_conflict(store.write(stale, Durability::Sync), b"k");
    }
    assert_eq!(get(&store, b"k").as_deref(), Some(&b"v2"[..]));
}

/// `require_equals` on a missing key conflicts, even for an empty value.
pub fn require_equals_on_missing_key_conflicts<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    for expected in [&b""[..], b"v"] {
        let mut batch = WriteBatch::new();
        batch
            .require_equals(key(b"k"), key(expected))
            .put(key(b"k"), key(b"x"));
        expect_conflict(store.write(batch, Durability::Sync), b"k");
    }
    assert_eq!(get(&store, b"k"), None);
}

/// When a later precondition fails, operations (and earlier, passing
/// preconditions) have no effect.
pub fn failed_precondition_midway_applies_nothing<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put(&store, b"b", b"actual");
    put(&store, b"d", b"keep");
    let mut batch = WriteBatch::new();
    batch.require_absent(key(b"a"));
    batch.require_equals(key(b"b"), key(b"expected"));
    batch.require_absent(key(b"c"));
    batch
        .put(key(b"a"), key(b"1"))
        .put(key(b"c"), key(b"3"))
        .delete(key(b"d"));
    batch.delete_range(key(b""), key(b"\xff"));
    expect_conflict(store.write(batch, Durability::Sync), b"b");
    assert_eq!(all_keys(&store), owned(&[b"b", b"d"]));
    assert_eq!(get(&store, b"b").as_deref(), Some(&b"actual"[..]));
}

/// Preconditions are checked against the state before the batch, not
/// against the batch's own operations.
pub fn preconditions_see_state_before_the_batch<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    let mut batch = WriteBatch::new();
    batch.put(key(b"k"), key(b"v"));
    batch.require_absent(key(b"k"));
    store
        .write(batch, Durability::Sync)
        .expect("absent before the batch");
    let mut batch = WriteBatch::new();
    batch.delete(key(b"k"));
    batch.require_equals(key(b"k"), key(b"v"));
    store
        .write(batch, Durability::Sync)
        .expect("equal before the batch");
    assert_eq!(get(&store, b"k"), None);
}

/// A conflict names the failing key, in the variant and in its message.
pub fn conflict_error_names_the_key<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put(&store, b"taken\x00\xff", b"x");
    let mut batch = WriteBatch::new();
    batch
        .require_absent(key(b"free"))
        .require_absent(key(b"taken\x00\xff"));
    let err = store
        .write(batch, Durability::Sync)
        .expect_err("must conflict");
    assert!(err.is_conflict(), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("taken\\x00\\xff"),
        "message does not name the key: {message}"
    );
    expect_conflict(Err(err), b"taken\x00\xff");
}

/// Threads racing to create the same key with `require_absent`: exactly one
/// wins, the rest get `Conflict`.
pub fn concurrent_creates_exactly_one_wins<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    let wins = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for id in 0..4u8 {
            let (store, wins) = (&store, &wins);
            scope.spawn(move || {
                let mut batch = WriteBatch::new();
                batch
                    .require_absent(key(b"lock"))
                    .put(key(b"lock"), key(&[id]));
                match store.write(batch, Durability::Buffered) {
                    Ok(()) => {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(Error::Conflict { .. }) => {}
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            });
        }
    });
    assert_eq!(wins.load(Ordering::SeqCst), 1);
}

/// Threads incrementing one counter with compare-and-set retries lose no
/// increment: preconditions make concurrent writers safe.
pub fn concurrent_compare_and_set_loses_no_update<H: Harness>(h: &H) {
    const THREADS: u64 = 4;
    const EACH: u64 = 25;
    let (_guard, store) = h.fresh();
    put(&store, b"counter", &0u64.to_be_bytes());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let store = &store;
            scope.spawn(move || {
                let mut done = 0;
                while done < EACH {
                    let current = store.get(b"counter").expect("get").expect("counter exists");
                    let value = u64::from_be_bytes(current[..].try_into().expect("8 bytes"));
                    let mut batch = WriteBatch::new();
                    batch.require_equals(key(b"counter"), current);
                    batch.put(
                        key(b"counter"),
                        Bytes::copy_from_slice(&(value + 1).to_be_bytes()),
                    );
                    match store.write(batch, Durability::Buffered) {
                        Ok(()) => done += 1,
                        Err(Error::Conflict { .. }) => {}
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                }
            });
        }
    });
    assert_eq!(
        get(&store, b"counter"),
        Some((THREADS * EACH).to_be_bytes().to_vec())
    );
}

// ------------------------------------------------------- keys and ranges

/// Keys order as unsigned bytes: `0x00` and `0xFF` inside and at the ends of
/// keys, and a key before all of its extensions.
pub fn binary_keys_order_bytewise<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    let sorted: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x00, 0xFF],
        vec![0x01],
        vec![0x7F, 0xFF],
        vec![0x80],
        vec![0xFE, 0xFF, 0xFF],
        vec![0xFF],
        vec![0xFF, 0x00],
        vec![0xFF, 0xFF],
        vec![0xFF, 0xFF, 0x00],
    ];
    let mut batch = WriteBatch::new();
    for k in sorted
        .iter()
        .rev()
        .step_by(2)
        .chain(sorted.iter().skip(1).step_by(2))
    {
        batch.put(key(k), key(k));
    }
    store
        .write(batch, Durability::Sync)
        .expect("put binary keys");
    assert_eq!(all_keys(&store), sorted);
    let mut reversed = sorted.clone();
    reversed.reverse();
    assert_eq!(
        scan_keys(&store, KeyRange::all(), ScanOptions::reverse()),
        reversed
    );
    for (k, v) in store
        .scan(KeyRange::all(), ScanOptions::forward())
        .expect("scan")
        .map(|e| e.expect("entry"))
    {
        assert_eq!(k, v, "value stored with the wrong key");
    }
    assert_eq!(
        scan_keys(
            &store,
            range(Bound::Excluded(&[0x00]), Bound::Excluded(&[0x01])),
            ScanOptions::forward()
        ),
        vec![vec![0x00, 0x00], vec![0x00, 0xFF]],
    );
}

/// The empty key and the empty value are ordinary: stored, read, scanned
/// first, and distinct from a missing key.
pub fn empty_key_and_empty_value<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put(&store, b"", b"empty key");
    put(&store, b"e", b"");
    put(&store, b"\x00", b"x");
    assert_eq!(get(&store, b"").as_deref(), Some(&b"empty key"[..]));
    assert_eq!(
        get(&store, b"e").as_deref(),
        Some(&b""[..]),
        "an empty value is not a missing key"
    );
    assert_eq!(all_keys(&store), owned(&[b"", b"\x00", b"e"]));
    assert_eq!(
        scan_keys(
            &store,
            range(Bound::Excluded(b""), Bound::Unbounded),
            ScanOptions::forward()
        ),
        owned(&[b"\x00", b"e"]),
    );
    assert_eq!(
        scan_keys(
            &store,
            range(Bound::Unbounded, Bound::Included(b"")),
            ScanOptions::reverse()
        ),
        owned(&[b""]),
    );
    let mut batch = WriteBatch::new();
    batch
        .require_equals(key(b"e"), Bytes::new())
        .delete(key(b""));
    store
        .write(batch, Durability::Sync)
        .expect("equals an empty value");
    assert_eq!(get(&store, b""), None);
}

/// A scan range and the keys it must return.
type BoundsCase<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>, &'a [&'a [u8]]);

const ABCDE: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"e"];

/// All four combinations of inclusive and exclusive bounds.
pub fn scan_bounds_inclusive_and_exclusive<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &ABCDE);
    let cases: [BoundsCase<'_>; 6] = [
        (
            Bound::Included(b"b"),
            Bound::Included(b"d"),
            &[b"b", b"c", b"d"],
        ),
        (Bound::Included(b"b"), Bound::Excluded(b"d"), &[b"b", b"c"]),
        (Bound::Excluded(b"b"), Bound::Included(b"d"), &[b"c", b"d"]),
        (Bound::Excluded(b"b"), Bound::Excluded(b"d"), &[b"c"]),
        (Bound::Included(b"bb"), Bound::Included(b"cc"), &[b"c"]),
        (
            Bound::Excluded(b"a\0"),
            Bound::Excluded(b"c\0"),
            &[b"b", b"c"],
        ),
    ];
    for (start, end, expected) in cases {
        let got = scan_keys(&store, range(start, end), ScanOptions::forward());
        assert_eq!(got, owned(expected), "forward scan of {start:?}..{end:?}");
    }
}

/// Unbounded starts and ends, and `KeyRange::new` / `KeyRange::from`.
pub fn scan_unbounded_ends<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &ABCDE);
    let f = ScanOptions::forward();
    assert_eq!(scan_keys(&store, KeyRange::all(), f), owned(&ABCDE));
    assert_eq!(
        scan_keys(&store, range(Bound::Unbounded, Bound::Included(b"b")), f),
        owned(&[b"a", b"b"])
    );
    assert_eq!(
        scan_keys(&store, range(Bound::Unbounded, Bound::Excluded(b"b")), f),
        owned(&[b"a"])
    );
    assert_eq!(
        scan_keys(&store, range(Bound::Included(b"d"), Bound::Unbounded), f),
        owned(&[b"d", b"e"])
    );
    assert_eq!(
        scan_keys(&store, range(Bound::Excluded(b"d"), Bound::Unbounded), f),
        owned(&[b"e"])
    );
    assert_eq!(
        scan_keys(&store, KeyRange::new(key(b"b"), key(b"d")), f),
        owned(&[b"b", b"c"])
    );
    assert_eq!(
        scan_keys(&store, KeyRange::from(key(b"c")), f),
        owned(&[b"c", b"d", b"e"])
    );
}

/// Reverse scans return descending keys and honour every kind of bound.
pub fn reverse_scan_descends_within_bounds<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &ABCDE);
    let r = ScanOptions::reverse();
    let cases: [BoundsCase<'_>; 7] = [
        (
            Bound::Unbounded,
            Bound::Unbounded,
            &[b"e", b"d", b"c", b"b", b"a"],
        ),
        (
            Bound::Included(b"b"),
            Bound::Included(b"d"),
            &[b"d", b"c", b"b"],
        ),
        (Bound::Included(b"b"), Bound::Excluded(b"d"), &[b"c", b"b"]),
        (Bound::Excluded(b"b"), Bound::Included(b"d"), &[b"d", b"c"]),
        (Bound::Excluded(b"b"), Bound::Excluded(b"d"), &[b"c"]),
        (Bound::Unbounded, Bound::Excluded(b"c"), &[b"b", b"a"]),
        (Bound::Excluded(b"c"), Bound::Unbounded, &[b"e", b"d"]),
    ];
    for (start, end, expected) in cases {
        let got = scan_keys(&store, range(start, end), r);
        assert_eq!(got, owned(expected), "reverse scan of {start:?}..{end:?}");
    }
}

/// A limit stops a forward scan after that many entries from the start.
pub fn scan_limit_forward<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &ABCDE);
    let f = ScanOptions::forward();
    assert_eq!(
        scan_keys(&store, KeyRange::all(), f.with_limit(2)),
        owned(&[b"a", b"b"])
    );
    assert_eq!(
        scan_keys(&store, KeyRange::from(key(b"c")), f.with_limit(1)),
        owned(&[b"c"])
    );
    assert_eq!(
        scan_keys(&store, KeyRange::all(), f.with_limit(100)),
        owned(&ABCDE)
    );
    assert!(scan_keys(&store, KeyRange::all(), f.with_limit(0)).is_empty());
}

/// A limit stops a reverse scan after that many entries from the end.
pub fn scan_limit_reverse<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &ABCDE);
    let r = ScanOptions::reverse();
    assert_eq!(
        scan_keys(&store, KeyRange::all(), r.with_limit(2)),
        owned(&[b"e", b"d"])
    );
    assert_eq!(
        scan_keys(&store, KeyRange::new(key(b"a"), key(b"d")), r.with_limit(1)),
        owned(&[b"c"])
    );
    assert_eq!(scan_keys(&store, KeyRange::all(), r.with_limit(9)).len(), 5);
    assert!(scan_keys(&store, KeyRange::all(), r.with_limit(0)).is_empty());
}

/// Empty ranges (`a..a`, `(a, a]`) and inverted ranges (`d..b`) yield
/// nothing in either direction, without error.
pub fn empty_and_inverted_ranges_yield_nothing<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &ABCDE);
    let ranges = [
        range(Bound::Included(b"b"), Bound::Excluded(b"b")),
        range(Bound::Excluded(b"b"), Bound::Included(b"b")),
        range(Bound::Excluded(b"b"), Bound::Excluded(b"b")),
        range(Bound::Included(b"d"), Bound::Included(b"b")),
        range(Bound::Excluded(b"d"), Bound::Excluded(b"b")),
        range(Bound::Included(b"bb"), Bound::Excluded(b"c")),
    ];
    for r in ranges {
        assert!(
            scan_keys(&store, r.clone(), ScanOptions::forward()).is_empty(),
            "{r:?}"
        );
        assert!(
            scan_keys(&store, r.clone(), ScanOptions::reverse()).is_empty(),
            "{r:?}"
        );
    }
    assert!(
        scan_keys(
            &store,
            range(Bound::Included(b"b"), Bound::Included(b"b")),
            ScanOptions::forward()
        )
        .len()
            == 1
    );
}

/// `KeyRange::prefix` selects exactly the keys that start with the prefix,
/// including prefixes ending in `0xFF` and the all-`0xFF` prefix.
pub fn prefix_scan_returns_only_prefixed_keys<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(
        &store,
        &[
            b"ab",
            b"ab\x00",
            b"ab\xff",
            b"abc",
            b"ac",
            b"a\xff",
            b"a\xff\x00",
            b"b",
            b"\xff",
            b"\xff\xff\x01",
        ],
    );
    let f = ScanOptions::forward();
    assert_eq!(
        scan_keys(&store, KeyRange::prefix(b"ab"), f),
        owned(&[b"ab", b"ab\x00", b"abc", b"ab\xff"])
    );
    assert_eq!(
        scan_keys(&store, KeyRange::prefix(b"a\xff"), f),
        owned(&[b"a\xff", b"a\xff\x00"])
    );
    assert_eq!(
        scan_keys(&store, KeyRange::prefix(b"\xff"), f),
        owned(&[b"\xff", b"\xff\xff\x01"])
    );
    assert_eq!(
        scan_keys(&store, KeyRange::prefix(b"\xff\xff"), f),
        owned(&[b"\xff\xff\x01"])
    );
    assert_eq!(scan_keys(&store, KeyRange::prefix(b""), f).len(), 10);
    assert_eq!(
        scan_keys(
            &store,
            KeyRange::prefix(b"ab"),
            ScanOptions::reverse().with_limit(2)
        ),
        owned(&[b"ab\xff", b"abc"]),
    );
}

/// Scans do not return deleted or range-deleted keys, in either direction.
pub fn scan_skips_deleted_keys<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    let keys: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'k', i]).collect();
    let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    put_all(&store, &refs);
    let mut batch = WriteBatch::new();
    batch
        .delete(key(&[b'k', 0]))
        .delete(key(&[b'k', 19]))
        .delete_range(key(&[b'k', 5]), key(&[b'k', 15]));
    store.write(batch, Durability::Sync).expect("deletes");
    let expected: Vec<Vec<u8>> = (1..5u8).chain(15..19).map(|i| vec![b'k', i]).collect();
    assert_eq!(all_keys(&store), expected);
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(
        scan_keys(&store, KeyRange::prefix(b"k"), ScanOptions::reverse()),
        reversed
    );
    assert_eq!(
        scan_keys(
            &store,
            KeyRange::prefix(b"k"),
            ScanOptions::forward().with_limit(5)
        ),
        expected[..5].to_vec()
    );
}

// ------------------------------------------------------------------ volume

/// A 1 MiB value round-trips through `get` and `scan`.
pub fn one_mib_value_roundtrips<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    let value: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8).collect();
    if store
        .capabilities()
        .max_value_len
        .is_some_and(|limit| limit < value.len())
    {
        skip(
            "one_mib_value_roundtrips",
            "the backend's value limit is below 1 MiB",
        );
        return;
    }
    put(&store, b"big", &value);
    put(&store, b"small", b"s");
    assert_eq!(get(&store, b"big").as_deref(), Some(&value[..]));
    let entries: Vec<_> = store
        .scan(KeyRange::all(), ScanOptions::forward())
        .expect("scan")
        .collect::<crate::Result<Vec<_>>>()
        .expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(&entries[0].1[..], &value[..]);
}

/// 100,000 keys written in a few batches scan back complete and in order,
/// forward and in reverse.
pub fn hundred_thousand_keys_scan_in_order<H: Harness>(h: &H) {
    const KEYS: u32 = 100_000;
    const BATCHES: u32 = 4;
    let (_guard, store) = h.fresh();
    let per_batch = KEYS / BATCHES;
    for b in 0..BATCHES {
        let mut batch = WriteBatch::new();
        // Write each batch's keys in reverse to make order the store's job.
        for i in (b * per_batch..(b + 1) * per_batch).rev() {
            let mut k = b"n/".to_vec();
            k.extend_from_slice(&i.to_be_bytes());
            batch.put(
                Bytes::from(k),
                Bytes::copy_from_slice(&i.to_be_bytes()[2..]),
            );
        }
        store
            .write(batch, Durability::Buffered)
            .expect("write batch");
    }
    store.flush().expect("flush");
    let mut count = 0u32;
    for entry in store
        .scan(KeyRange::prefix(b"n/"), ScanOptions::forward())
        .expect("scan")
    {
        let (k, _) = entry.expect("entry");
        assert_eq!(&k[2..], &count.to_be_bytes(), "key out of order");
        count += 1;
    }
    assert_eq!(count, KEYS);
    let mut expected = KEYS;
    for entry in store
        .scan(KeyRange::prefix(b"n/"), ScanOptions::reverse())
        .expect("reverse scan")
    {
        let (k, _) = entry.expect("entry");
        expected -= 1;
        assert_eq!(
            &k[2..],
            &expected.to_be_bytes(),
            "key out of order in reverse"
        );
    }
    assert_eq!(expected, 0);
}

// -------------------------------------------------------------- isolation

/// A scan reads the snapshot taken when `scan` was called: later puts,
/// overwrites and deletes are invisible to it, whether it had started
/// iterating or not.
pub fn scan_reads_snapshot_taken_at_creation<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &[b"k1", b"k2", b"k3", b"k4", b"k5"]);
    let untouched = store
        .scan(KeyRange::prefix(b"k"), ScanOptions::forward())
        .expect("scan");
    let mut started = store
        .scan(KeyRange::prefix(b"k"), ScanOptions::reverse())
        .expect("reverse scan");
    let first = started.next().expect("an entry").expect("entry");
    assert_eq!(&first.0[..], b"k5");

    let mut batch = WriteBatch::new();
    batch
        .put(key(b"k0"), key(b"new"))
        .put(key(b"k6"), key(b"new"));
    batch.put(key(b"k2"), key(b"changed")).delete(key(b"k3"));
    batch.delete_range(key(b"k4"), key(b"k5"));
    store
        .write(batch, Durability::Sync)
        .expect("write during scans");

    let rest: Vec<_> = started.map(|e| e.expect("entry")).collect();
    let rest_keys: Vec<&[u8]> = rest.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(rest_keys, [&b"k4"[..], b"k3", b"k2", b"k1"]);
    assert_eq!(&rest[2].1[..], b"k2", "scan saw a later overwrite");

    let keys: Vec<Vec<u8>> = untouched.map(|e| e.expect("entry").0.to_vec()).collect();
    assert_eq!(keys, owned(&[b"k1", b"k2", b"k3", b"k4", b"k5"]));
    assert_eq!(
        all_keys(&store),
        owned(&[b"k0", b"k1", b"k2", b"k5", b"k6"])
    );
}

/// Abandoning a scan part-way leaves the store fully usable.
pub fn scan_dropped_early_does_not_block_writes<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    put_all(&store, &ABCDE);
    for _ in 0..3 {
        let mut scan = store
            .scan(KeyRange::all(), ScanOptions::forward())
            .expect("scan");
        assert!(scan.next().is_some());
        drop(scan);
        put(&store, b"f", b"after");
    }
    let open = store
        .scan(KeyRange::all(), ScanOptions::forward())
        .expect("scan");
    put(&store, b"g", b"while a scan is open");
    assert_eq!(open.count(), 6);
    assert_eq!(all_keys(&store).len(), 7);
}

/// While a thread writes batches that rewrite a group of keys to a new
/// generation (and delete and re-create some of them), concurrent scans see
/// every key of one generation, never a mix.
pub fn readers_see_whole_batches_during_concurrent_writes<H: Harness>(h: &H) {
    const KEYS: u32 = 32;
    const GENERATIONS: u64 = 150;
    let (_guard, store) = h.fresh();
    let generation_batch = |generation: u64| {
        let mut batch = WriteBatch::new();
        batch.delete_range(key(b"g/"), key(b"g0"));
        for i in 0..KEYS {
            let mut k = b"g/".to_vec();
            k.extend_from_slice(&i.to_be_bytes());
            batch.put(
                Bytes::from(k),
                Bytes::copy_from_slice(&generation.to_be_bytes()),
            );
        }
        batch
    };
    store
        .write(generation_batch(0), Durability::Sync)
        .expect("generation 0");
    let done = AtomicBool::new(false);
    let scans = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (store_ref, done_ref) = (&store, &done);
        scope.spawn(move || {
            for generation in 1..=GENERATIONS {
                store_ref
                    .write(generation_batch(generation), Durability::Buffered)
                    .expect("generation");
            }
            done_ref.store(true, Ordering::SeqCst);
        });
        for direction in [ScanOptions::forward(), ScanOptions::reverse()] {
            let (store, done, scans) = (&store, &done, &scans);
            scope.spawn(move || {
                let mut last_seen = 0u64;
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let entries: Vec<_> = store
                        .scan(KeyRange::prefix(b"g/"), direction)
                        .expect("scan")
                        .collect::<crate::Result<Vec<_>>>()
                        .expect("entries");
                    assert_eq!(entries.len(), KEYS as usize, "a scan saw part of a batch");
                    let generation =
                        u64::from_be_bytes(entries[0].1[..].try_into().expect("8 bytes"));
                    assert!(
                        entries
                            .iter()
                            .all(|(_, v)| v[..] == generation.to_be_bytes()),
                        "a scan mixed generations"
                    );
                    assert!(generation >= last_seen, "generations went backwards");
                    last_seen = generation;
                    scans.fetch_add(1, Ordering::SeqCst);
                    if finished {
                        assert_eq!(generation, GENERATIONS);
                        break;
                    }
                }
            });
        }
    });
    assert!(scans.load(Ordering::SeqCst) >= 2);
}

// ----------------------------------------------------------------- limits

/// A value over [`crate::Capabilities::max_value_len`] is `TooLarge` and the
/// batch changes nothing.
pub fn value_over_limit_is_too_large<H: Harness>(h: &H) {
    const CASE: &str = "value_over_limit_is_too_large";
    let (_guard, store) = h.fresh();
    let Some(limit) = store.capabilities().max_value_len else {
        return skip(CASE, "the backend has no value size limit");
    };
    if limit >= MAX_EXERCISED_LIMIT {
        return skip(
            CASE,
            "the backend's value limit is too large to exercise in a test",
        );
    }
    let mut batch = WriteBatch::new();
    batch.put(key(b"ok"), key(b"fine"));
    batch.put(key(b"big"), Bytes::from(vec![7u8; limit + 1]));
    match store.write(batch, Durability::Sync) {
        Err(Error::TooLarge {
            len,
            limit: reported,
            ..
        }) => {
            assert!(
                len > reported,
                "TooLarge must report a length above the limit"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(
        all_keys(&store).is_empty(),
        "a rejected batch wrote something"
    );
    put(&store, b"at-limit", &vec![1u8; limit]);
}

/// A batch over [`crate::Capabilities::max_batch_bytes`] is `TooLarge` and
/// changes nothing.
pub fn batch_over_limit_is_too_large<H: Harness>(h: &H) {
    const CASE: &str = "batch_over_limit_is_too_large";
    let (_guard, store) = h.fresh();
    let caps = store.capabilities();
    let Some(limit) = caps.max_batch_bytes else {
        return skip(CASE, "the backend has no batch size limit");
    };
    if limit >= MAX_EXERCISED_LIMIT {
        return skip(
            CASE,
            "the backend's batch limit is too large to exercise in a test",
        );
    }
    let chunk = caps.max_value_len.unwrap_or(limit).clamp(1, 64 << 10);
    let mut batch = WriteBatch::new();
    let mut i = 0u32;
    while batch.byte_len() <= limit {
        batch.put(
            Bytes::copy_from_slice(&i.to_be_bytes()),
            Bytes::from(vec![0u8; chunk]),
        );
        i += 1;
    }
    assert!(matches!(
        store.write(batch, Durability::Sync),
        Err(Error::TooLarge { .. })
    ));
    assert!(
        all_keys(&store).is_empty(),
        "a rejected batch wrote something"
    );
}

// ------------------------------------------------------------- durability

/// `flush` succeeds, with and without buffered writes, and loses nothing.
pub fn flush_succeeds_and_keeps_data<H: Harness>(h: &H) {
    let (_guard, store) = h.fresh();
    store.flush().expect("flush of an empty store");
    put_buffered(&store, b"a", b"1");
    store.flush().expect("flush");
    store.flush().expect("flush twice");
    assert_eq!(get(&store, b"a").as_deref(), Some(&b"1"[..]));
}

/// Synced writes survive closing and reopening the store.
pub fn synced_writes_survive_reopen<H: Harness>(h: &H) {
    let (guard, store) = h.fresh();
    put(&store, b"a", b"1");
    put(&store, b"\x00\xff", b"binary");
    let Some(store) = reopen(h, "synced_writes_survive_reopen", &guard, store) else {
        return;
    };
    assert_eq!(get(&store, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&store, b"\x00\xff").as_deref(), Some(&b"binary"[..]));
    assert_eq!(all_keys(&store), owned(&[b"\x00\xff", b"a"]));
}

/// After a clean close, buffered (never explicitly flushed) writes are kept
/// too.
pub fn buffered_writes_survive_clean_reopen<H: Harness>(h: &H) {
    let (guard, store) = h.fresh();
    put(&store, b"synced", b"1");
    put_buffered(&store, b"buffered", b"2");
    let mut batch = WriteBatch::new();
    batch.put(key(b"b1"), key(b"x")).put(key(b"b2"), key(b"y"));
    store
        .write(batch, Durability::Buffered)
        .expect("buffered batch");
    let Some(store) = reopen(h, "buffered_writes_survive_clean_reopen", &guard, store) else {
        return;
    };
    assert_eq!(
        all_keys(&store),
        owned(&[b"b1", b"b2", b"buffered", b"synced"])
    );
}

/// Deletes and range deletes survive reopening.
pub fn deletes_survive_reopen<H: Harness>(h: &H) {
    let (guard, store) = h.fresh();
    put_all(&store, &ABCDE);
    let mut batch = WriteBatch::new();
    batch.delete(key(b"a")).delete_range(key(b"c"), key(b"e"));
    store.write(batch, Durability::Sync).expect("deletes");
    let Some(store) = reopen(h, "deletes_survive_reopen", &guard, store) else {
        return;
    };
    assert_eq!(all_keys(&store), owned(&[b"b", b"e"]));
}

/// A reopened store accepts writes, checks preconditions against the
/// reopened data and can be reopened again.
pub fn store_is_writable_after_reopen<H: Harness>(h: &H) {
    const CASE: &str = "store_is_writable_after_reopen";
    let (guard, store) = h.fresh();
    put(&store, b"k", b"1");
    let Some(store) = reopen(h, CASE, &guard, store) else {
        return;
    };
    let mut stale = WriteBatch::new();
    stale.require_absent(key(b"k")).put(key(b"k"), key(b"2"));
    expect_conflict(store.write(stale, Durability::Sync), b"k");
    let mut cas = WriteBatch::new();
    cas.require_equals(key(b"k"), key(b"1"))
        .put(key(b"k"), key(b"2"));
    store
        .write(cas, Durability::Sync)
        .expect("compare-and-set after reopen");
    let Some(store) = reopen(h, CASE, &guard, store) else {
        return;
    };
    assert_eq!(get(&store, b"k").as_deref(), Some(&b"2"[..]));
}

/// Synced writes survive a crash.
pub fn synced_writes_survive_crash<H: Harness>(h: &H) {
    let (guard, store) = h.fresh();
    put(&store, b"a", b"1");
    put_buffered(&store, b"b", b"2");
    put(&store, b"c", b"3");
    put_buffered(&store, b"d", b"4");
    let Some(store) = crash(h, "synced_writes_survive_crash", &guard, store) else {
        return;
    };
    assert_eq!(get(&store, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(
        get(&store, b"b").as_deref(),
        Some(&b"2"[..]),
        "a synced write made earlier ones durable"
    );
    assert_eq!(get(&store, b"c").as_deref(), Some(&b"3"[..]));
    if let Some(d) = get(&store, b"d") {
        assert_eq!(d, b"4");
    }
}

/// A crash keeps a buffered batch whole or loses it whole, and keeps
/// buffered batches in order (a later one never without an earlier one).
pub fn crash_never_exposes_part_of_a_batch<H: Harness>(h: &H) {
    let (guard, store) = h.fresh();
    put(&store, b"base", b"0");
    for generation in 1..=5u8 {
        let mut batch = WriteBatch::new();
        for i in 0..10u8 {
            batch.put(key(&[b'x', i]), key(&[generation]));
        }
        batch.put(key(&[b'g', generation]), key(b""));
        store
            .write(batch, Durability::Buffered)
            .expect("buffered batch");
    }
    let Some(store) = crash(h, "crash_never_exposes_part_of_a_batch", &guard, store) else {
        return;
    };
    assert_eq!(get(&store, b"base").as_deref(), Some(&b"0"[..]));
    let markers = scan_keys(&store, KeyRange::prefix(b"g"), ScanOptions::forward());
    let survived = markers.len() as u8;
    let expected: Vec<Vec<u8>> = (1..=survived).map(|g| vec![b'g', g]).collect();
    assert_eq!(markers, expected, "buffered batches survived out of order");
    let values: Vec<_> = store
        .scan(KeyRange::prefix(b"x"), ScanOptions::forward())
        .expect("scan")
        .map(|e| e.expect("entry").1.to_vec())
        .collect();
    if survived == 0 {
        assert!(values.is_empty(), "part of a batch survived");
    } else {
        assert_eq!(values, vec![vec![survived]; 10], "part of a batch survived");
    }
}

/// `flush` makes earlier buffered writes survive a crash.
pub fn flushed_writes_survive_crash<H: Harness>(h: &H) {
    let (guard, store) = h.fresh();
    put_buffered(&store, b"a", b"1");
    let mut batch = WriteBatch::new();
    batch.put(key(b"b"), key(b"2")).delete(key(b"a"));
    store
        .write(batch, Durability::Buffered)
        .expect("buffered batch");
    store.flush().expect("flush");
    let Some(store) = crash(h, "flushed_writes_survive_crash", &guard, store) else {
        return;
    };
    assert_eq!(all_keys(&store), owned(&[b"b"]));
}
