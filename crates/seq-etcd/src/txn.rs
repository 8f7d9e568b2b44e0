//! From a [`seq_storage::WriteBatch`] to one etcd transaction: the store's namespace,
//! coalescing of operations per key, and the request's encoded size.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use etcd_client::{Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOp};
use seq_storage::{Error, LeaseId, Op, Precondition, Result};

/// Encoded size, at most, of a put's lease field (a tag and a 64-bit varint).
const LEASE_FIELD_BYTES: usize = 1 + 10;

/// Bytes of the raft envelope etcd wraps around a transaction before it
/// compares the request with `--max-request-bytes` (a request header with an
/// id; well under this).
pub(crate) const RAFT_ENVELOPE_BYTES: usize = 512;

/// A store's namespace in etcd's keyspace: `escape(prefix) ++ [0x00, 0x01]`,
/// where `escape` doubles every `0x00` as `0x00 0xFF`. No namespace is a
/// prefix of another (a `0x00 0x01` occurs only at the end), so stores never
/// see each other's keys, and it is never empty (etcd rejects the empty key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Namespace {
    bytes: Vec<u8>,
}

impl Namespace {
    pub(crate) fn new(prefix: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(prefix.len() + 2);
        for &b in prefix {
            bytes.push(b);
            if b == 0 {
                bytes.push(0xFF);
            }
        }
        bytes.extend_from_slice(&[0x00, 0x01]);
        Self { bytes }
    }

    /// The namespace itself: the etcd key of the store's empty key.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The etcd key of the store's `key`.
    pub(crate) fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + key.len() + 1);
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(key);
        out
    }

    /// The etcd key just after every key of the store's `key` (`key ++ 0x00`).
    pub(crate) fn key_successor(&self, key: &[u8]) -> Vec<u8> {
        let mut out = self.key(key);
        out.push(0);
        out
    }

    /// The first etcd key after the whole namespace.
    pub(crate) fn end(&self) -> Vec<u8> {
        let mut end = self.bytes.clone();
        if let Some(last) = end.last_mut() {
            *last += 1; // the namespace ends in 0x01
        }
        end
    }

    /// The store's key for an etcd key read from inside the namespace.
    pub(crate) fn strip(&self, etcd_key: Vec<u8>) -> Result<Bytes> {
        if !etcd_key.starts_with(&self.bytes) {
            return Err(Error::corrupt(
                Some(&etcd_key),
                "etcd returned a key outside the store's prefix",
            ));
        }
        let mut key = Bytes::from(etcd_key);
        Ok(key.split_off(self.bytes.len()))
    }

    /// The etcd range `[lo, hi)` of a store key range.
    pub(crate) fn range(&self, range: &seq_storage::KeyRange) -> (Vec<u8>, Vec<u8>) {
        let lo = match &range.start {
            Bound::Unbounded => self.key(b""),
            Bound::Included(s) => self.key(s),
            Bound::Excluded(s) => self.key_successor(s),
        };
        let hi = match &range.end {
            Bound::Unbounded => self.end(),
            Bound::Excluded(e) => self.key(e),
            Bound::Included(e) => self.key_successor(e),
        };
        (lo, hi)
    }
}

/// What the store enforces before sending a transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The server's `--max-request-bytes`.
    pub(crate) max_request_bytes: usize,
    /// The server's `--max-txn-ops`.
    pub(crate) max_txn_ops: usize,
}

/// A transaction ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) txn: Txn,
    /// Encoded size of the transaction (an upper bound).
    pub(crate) request_len: usize,
    /// The preconditions, to tell which one failed.
    pub(crate) preconditions: Vec<Precondition>,
    /// The distinct precondition keys, in the order of the failure branch's
    /// reads.
    pub(crate) read_keys: Vec<Bytes>,
    /// The distinct leases of the transaction's leased puts, in the order
    /// the batch first names them, to tell which one etcd did not find.
    pub(crate) leases: Vec<LeaseId>,
}

/// What a coalesced put writes: the value, and the lease it attaches the key
/// to (`None`: no lease, which detaches the key from any lease it had).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Put {
    pub(crate) value: Bytes,
    pub(crate) lease: Option<LeaseId>,
}

/// The final effect of a batch's operations: applied in order, a later
/// operation on a key wins, so each key ends up put (once) or deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Coalesced {
    /// Keys whose last operation is a put, with what it put.
    pub(crate) puts: BTreeMap<Bytes, Put>,
    /// Disjoint, sorted `[start, end)` ranges to delete, none containing a
    /// key of `puts`.
    pub(crate) deletes: Vec<(Bytes, Bytes)>,
}

impl Coalesced {
    /// Operations in the etcd transaction.
    pub(crate) fn len(&self) -> usize {
        self.puts.len() + self.deletes.len()
    }
}

/// Coalesces `ops` so that each key is named once, as etcd requires ("duplicate
/// key given in txn request" also covers a put inside a deleted range).
pub(crate) fn coalesce(ops: Vec<Op>) -> Coalesced {
    let mut puts: BTreeMap<Bytes, Put> = BTreeMap::new();
    let mut deleted: Vec<(Bytes, Bytes)> = Vec::new();
    for op in ops {
        match op {
            Op::Put { key, value } => {
                puts.insert(key, Put { value, lease: None });
            }
            Op::PutLeased { key, value, lease } => {
                let lease = Some(lease);
                puts.insert(key, Put { value, lease });
            }
            Op::Delete { key } => {
                puts.remove(&key);
                let mut end = key.to_vec();
                end.push(0);
                deleted.push((key, Bytes::from(end)));
            }
            Op::DeleteRange { start, end } => {
                if start >= end {
                    continue;
                }
                let doomed: Vec<Bytes> = puts
                    .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    puts.remove(&key);
                }
                deleted.push((start, end));
            }
        }
    }

    // Merge overlapping and touching ranges.
    deleted.sort();
    let mut merged: Vec<(Bytes, Bytes)> = Vec::with_capacity(deleted.len());
    for (start, end) in deleted {
        match merged.last_mut() {
            Some((_, last_end)) if start <= *last_end => {
                if end > *last_end {
                    *last_end = end;
                }
            }
            _ => merged.push((start, end)),
        }
    }

    // A key put after a range delete survives it: cut it out of the range.
    let mut deletes = Vec::with_capacity(merged.len());
    for (start, end) in merged {
        let mut from = start;
        for key in puts
            .range::<[u8], _>((Bound::Included(&from[..]), Bound::Excluded(&end[..])))
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
        {
            if from < key {
                deletes.push((from, key.clone()));
            }
            let mut next = key.to_vec();
            next.push(0);
            from = Bytes::from(next);
        }
        if from < end {
            deletes.push((from, end));
        }
    }
    Coalesced { puts, deletes }
}

/// Builds the transaction for a batch, or `None` when it has nothing to do.
/// Fails with [`Error::TooLarge`] when etcd would reject it for its size or
/// its number of operations, and with [`Error::LeaseNotFound`] for a leased
/// put on lease 0 (etcd's "no lease", never granted).
///
/// A leased put that a later operation on the same key overrides is not
/// sent, so its lease is not checked.
pub(crate) fn plan(
    namespace: &Namespace,
    preconditions: Vec<Precondition>,
    ops: Vec<Op>,
    limits: Limits,
) -> Result<Option<Plan>> {
    let mut named: Vec<LeaseId> = Vec::new();
    for op in &ops {
        if let Op::PutLeased { lease, .. } = op
            && !named.contains(lease)
        {
            named.push(*lease);
        }
    }
    let coalesced = coalesce(ops);
    let leases: Vec<LeaseId> = named
        .into_iter()
        .filter(|lease| coalesced.puts.values().any(|put| put.lease == Some(*lease)))
        .collect();
    if let Some(&lease) = leases.iter().find(|lease| lease.0 == 0) {
        return Err(Error::LeaseNotFound { lease });
    }
    if preconditions.is_empty() && coalesced.len() == 0 {
        return Ok(None);
    }
    if coalesced.len() > limits.max_txn_ops {
        return Err(Error::TooLarge {
            what: "batch operations (after splitting range deletes around puts)",
            len: coalesced.len(),
            limit: limits.max_txn_ops,
        });
    }
    if preconditions.len() > limits.max_txn_ops {
        return Err(Error::TooLarge {
            what: "batch preconditions",
            len: preconditions.len(),
            limit: limits.max_txn_ops,
        });
    }

    let mut size = 0usize;
    let mut compares = Vec::with_capacity(preconditions.len());
    for precondition in &preconditions {
        let key = namespace.key(precondition.key());
        let compare_len = match precondition {
            // A missing key has create_revision 0.
            Precondition::Absent(_) => {
                compares.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0));
                2 + 2 + field(key.len()) + 2
            }
            // etcd fails a value comparison on a missing key, even with the
            // empty value, so this also requires the key to exist.
            Precondition::Equals(_, value) => {
                compares.push(Compare::value(
                    key.clone(),
                    CompareOp::Equal,
                    value.to_vec(),
                ));
                2 + 2 + field(key.len()) + field(value.len())
            }
        };
        size += field(compare_len);
    }

    let mut success = Vec::with_capacity(coalesced.len());
    for (start, end) in &coalesced.deletes {
        let key = namespace.key(start);
        let is_point =
            end.len() == start.len() + 1 && end.starts_with(start) && end.ends_with(&[0]);
        let request_len = if is_point {
            success.push(TxnOp::delete(key.clone(), None));
            field(key.len())
        } else {
            let range_end = namespace.key(end);
            let len = field(key.len()) + field(range_end.len());
            success.push(TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_range(range_end)),
            ));
            len
        };
        size += field(field(request_len));
    }
    for (key, put) in &coalesced.puts {
        let key = namespace.key(key);
        let mut request_len = field(key.len()) + field(put.value.len());
        // No lease (0) detaches the key from the lease it had, if any.
        let options = put.lease.map(|lease| {
            request_len += LEASE_FIELD_BYTES;
            PutOptions::new().with_lease(lease.0)
        });
        size += field(field(request_len));
        success.push(TxnOp::put(key, put.value.to_vec(), options));
    }

    let mut read_keys: Vec<Bytes> = Vec::new();
    for precondition in &preconditions {
        if !read_keys.contains(precondition.key()) {
            read_keys.push(precondition.key().clone());
        }
    }
    let failure: Vec<TxnOp> = read_keys
        .iter()
        .map(|key| {
            let key = namespace.key(key);
            size += field(field(field(key.len())));
            TxnOp::get(key, None)
        })
        .collect();

    let limit = limits.max_request_bytes.saturating_sub(RAFT_ENVELOPE_BYTES);
    if size > limit {
        return Err(Error::TooLarge {
            what: "etcd request",
            len: size,
            limit,
        });
    }
    let txn = Txn::new().when(compares).and_then(success).or_else(failure);
    Ok(Some(Plan {
        txn,
        request_len: size,
        preconditions,
        read_keys,
        leases,
    }))
}

/// After etcd reported a failed comparison: the first precondition that does
/// not hold, given the values the failure branch read (in `read_keys` order).
pub(crate) fn failed_precondition(plan: &Plan, read: &[Option<Vec<u8>>]) -> Result<Bytes> {
    for precondition in &plan.preconditions {
        let at = plan
            .read_keys
            .iter()
            .position(|k| k == precondition.key())
            .and_then(|i| read.get(i));
        let Some(current) = at else {
            break;
        };
        if !precondition.holds(current.as_deref()) {
            return Ok(precondition.key().clone());
        }
    }
    Err(Error::Backend {
        message: "etcd reported a failed comparison, but every precondition holds \
                  in the values it read"
            .to_owned(),
    })
}

/// Encoded size of a length-delimited protobuf field (tag below 16) whose
/// payload is `len` bytes.
fn field(len: usize) -> usize {
    1 + varint_len(len) + len
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    fn put(k: &[u8], v: &[u8]) -> Op {
        Op::Put {
            key: b(k),
            value: b(v),
        }
    }

    #[test]
    fn namespaces_never_contain_one_another() {
        let prefixes: [&[u8]; 7] = [b"", b"a", b"a/", b"a\x00", b"a\x00\x01", b"\x00", b"\xff"];
        for p in prefixes {
            for q in prefixes {
                if p != q {
                    let (np, nq) = (Namespace::new(p), Namespace::new(q));
                    assert!(
                        !nq.as_bytes().starts_with(np.as_bytes()),
                        "{p:?} contains {q:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn namespace_end_is_after_every_key_in_it() {
        let ns = Namespace::new(b"p\xff");
        for key in [&b""[..], b"\xff\xff\xff", b"\x00"] {
            assert!(ns.key(key) < ns.end());
            assert!(ns.key(key) >= ns.key(b""));
        }
        assert_eq!(ns.strip(ns.key(b"\x00k")).expect("inside"), b(b"\x00k"));
        assert!(ns.strip(b"other".to_vec()).is_err());
    }

    #[test]
    fn later_put_wins_and_delete_after_put_removes_it() {
        let c = coalesce(vec![
            put(b"a", b"1"),
            put(b"a", b"2"),
            put(b"b", b"1"),
            Op::Delete { key: b(b"b") },
            Op::Delete { key: b(b"c") },
            put(b"c", b"3"),
        ]);
        assert_eq!(
            c.puts
                .into_iter()
                .map(|(k, put)| (k, put.value))
                .collect::<Vec<_>>(),
            vec![(b(b"a"), b(b"2")), (b(b"c"), b(b"3"))]
        );
        assert_eq!(c.deletes, vec![(b(b"b"), b(b"b\0"))]);
    }

    #[test]
    fn range_delete_is_split_around_later_puts() {
        let c = coalesce(vec![
            put(b"k3", b"x"),
            Op::DeleteRange {
                start: b(b"k"),
                end: b(b"l"),
            },
            put(b"k2", b"new"),
        ]);
        assert_eq!(c.puts.len(), 1);
        assert_eq!(
            c.deletes,
            vec![(b(b"k"), b(b"k2")), (b(b"k2\0"), b(b"l"))],
            "k3 is deleted, k2 survives"
        );
    }

    #[test]
    fn overlapping_and_empty_range_deletes_merge() {
        let c = coalesce(vec![
            Op::DeleteRange {
                start: b(b"a"),
                end: b(b"c"),
            },
            Op::DeleteRange {
                start: b(b"b"),
                end: b(b"d"),
            },
            Op::DeleteRange {
                start: b(b"x"),
                end: b(b"x"),
            },
            Op::DeleteRange {
                start: b(b"z"),
                end: b(b"y"),
            },
            Op::Delete { key: b(b"d") },
        ]);
        assert_eq!(c.deletes, vec![(b(b"a"), b(b"d\0"))]);
    }

    fn put_leased(k: &[u8], v: &[u8], lease: i64) -> Op {
        Op::PutLeased {
            key: b(k),
            value: b(v),
            lease: LeaseId(lease),
        }
    }

    #[test]
    fn last_put_of_a_key_decides_its_lease() {
        let c = coalesce(vec![
            put_leased(b"a", b"1", 7),
            put(b"a", b"2"),
            put(b"b", b"1"),
            put_leased(b"b", b"2", 8),
        ]);
        let leases: Vec<_> = c.puts.values().map(|put| put.lease).collect();
        assert_eq!(leases, vec![None, Some(LeaseId(8))]);
    }

    #[test]
    fn plan_lists_the_sent_leases_in_batch_order() {
        let ns = Namespace::new(b"p");
        let limits = Limits {
            max_request_bytes: 10_000,
            max_txn_ops: 10,
        };
        let ops = vec![
            put_leased(b"z", b"v", 3),
            put_leased(b"overridden", b"v", 4),
            put(b"overridden", b"v"),
            put_leased(b"a", b"v", 5),
            put_leased(b"b", b"v", 3),
        ];
        let plan = plan(&ns, Vec::new(), ops, limits)
            .expect("fits")
            .expect("has work");
        assert_eq!(plan.leases, vec![LeaseId(3), LeaseId(5)]);

        let plain = super::plan(&ns, Vec::new(), vec![put(b"k", b"v")], limits)
            .expect("fits")
            .expect("has work");
        let leased = super::plan(&ns, Vec::new(), vec![put_leased(b"k", b"v", 1)], limits)
            .expect("fits")
            .expect("has work");
        assert!(leased.request_len >= plain.request_len + LEASE_FIELD_BYTES);

        assert!(matches!(
            super::plan(&ns, Vec::new(), vec![put_leased(b"k", b"v", 0)], limits),
            Err(Error::LeaseNotFound { lease: LeaseId(0) })
        ));
    }

    #[test]
    fn plan_counts_ops_after_coalescing_and_estimates_size() {
        let ns = Namespace::new(b"p");
        let limits = Limits {
            max_request_bytes: 10_000,
            max_txn_ops: 3,
        };
        let ops: Vec<Op> = (0..10u8).map(|_| put(b"same", b"v")).collect();
        let plan = plan(&ns, Vec::new(), ops, limits)
            .expect("fits")
            .expect("has work");
        assert!(plan.request_len > 0 && plan.request_len < 100);

        let many: Vec<Op> = (0..4u8).map(|i| put(&[i], b"v")).collect();
        assert!(matches!(
            super::plan(&ns, Vec::new(), many, limits),
            Err(Error::TooLarge {
                len: 4,
                limit: 3,
                ..
            })
        ));

        let big = vec![put(b"k", &[0u8; 9_500])];
        assert!(matches!(
            super::plan(&ns, Vec::new(), big, limits),
            Err(Error::TooLarge { .. })
        ));
        assert!(
            super::plan(&ns, Vec::new(), Vec::new(), limits)
                .expect("empty")
                .is_none()
        );
    }
}
