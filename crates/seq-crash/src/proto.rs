//! The line protocol between the workload child and the parent, and the
//! workload's fixed shape (sequences, prefixes, segments) both sides share.
//!
//! Every line is one operation event, fields separated by single spaces
//! (names never contain spaces):
//!
//! | line | meaning |
//! |---|---|
//! | `READY` | the store is open and the workload starts |
//! | `B <task> <op> <args…>` | task `<task>` starts an operation |
//! | `A <task> <op> <results…>` | the operation was acknowledged (durable) |
//! | `E <task> <op> <error>` | the operation failed (not acknowledged) |
//!
//! Each task runs one operation at a time, so a `B` line without a later `A`
//! or `E` line of the same task is the operation in flight at the kill.
//!
//! | op | `B` args | `A` results |
//! |---|---|---|
//! | `seq` | `<name> <n>` | `<name> <first value> <n>` |
//! | `inv` | `<name>` | `<name> <value>` (record `inv/<name>/<value>` written with it) |
//! | `key` | `<prefix> <seqnum>` | `<prefix> <key> <version> <value>` |
//! | `prod` | `<segment> <batch> <n>` | `<segment> <batch> <first> <last> <commit>` |
//! | `flush` | | `<commit>` |
//! | `cur` | `<cursor> <sequence>` | `<cursor> <sequence> <commit>` |
//! | `lease` | `<key>` | `<key> <fencing token>` |

use seq_stream::SequenceOptions;

/// The child's first line once the store is open.
pub(crate) const READY: &str = "READY";

/// The space every produce goes to.
pub(crate) const SPACE: &str = "crash";

/// Segments produced to.
pub(crate) const SEGMENTS: &[&str] = &["s0", "s1", "s2", "s3"];

/// Sequence-key prefixes and the deltas used with each (the level count of a
/// prefix never shrinks).
pub(crate) const PREFIXES: &[(&str, &[u64])] = &[("k1", &[1]), ("k2", &[1, 3]), ("k3", &[5])];

/// The named sequences of the workload and the largest `next_n` asked of each.
pub(crate) fn sequences() -> Vec<(&'static str, SequenceOptions, u64)> {
    vec![
        // Small blocks: many block boundaries, `next_n` spanning blocks.
        (
            "blk16",
            SequenceOptions {
                block_size: 16,
                ..SequenceOptions::default()
            },
            40,
        ),
        // The default block size.
        ("blk4096", SequenceOptions::default(), 8),
        // Counting down.
        (
            "down64",
            SequenceOptions {
                increment: -1,
                block_size: 64,
                ..SequenceOptions::default()
            },
            8,
        ),
        // Gap-free: every allocation is written with its block record.
        (
            "gapfree",
            SequenceOptions {
                block_size: 1,
                ..SequenceOptions::default()
            },
            3,
        ),
    ]
}

/// The payload of record `index` of produce batch `batch`.
pub(crate) fn payload(batch: &str, index: u64) -> String {
    format!(
        "{batch}:{index}:{}",
        "x".repeat(usize::try_from(index % 7).unwrap_or(0) * 9)
    )
}

/// The key of the caller record written with gap-free value `value`.
pub(crate) fn inv_key(name: &str, value: i64) -> String {
    format!("inv/{name}/{value}")
}
