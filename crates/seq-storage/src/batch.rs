//! Atomic, conditional write batches.

use bytes::Bytes;

/// A condition on one key, checked before a batch is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// The key must not exist.
    Absent(Bytes),
    /// The key must exist and hold exactly this value.
    Equals(Bytes, Bytes),
}

impl Precondition {
    /// The key this condition is about.
    pub fn key(&self) -> &Bytes {
        match self {
            Self::Absent(key) | Self::Equals(key, _) => key,
        }
    }

    /// Whether the condition holds for a key whose current value is `current`.
    pub fn holds(&self, current: Option<&[u8]>) -> bool {
        match self {
            Self::Absent(_) => current.is_none(),
            Self::Equals(_, expected) => current == Some(&expected[..]),
        }
    }
}

/// One change in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Set `key` to `value`, attached to a backend lease: the backend deletes
    /// the key when the lease expires or is revoked (see [`crate::Leases`]).
    /// A later plain put or delete of the key detaches it.
    PutLeased {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
        /// The lease the key lives on.
        lease: crate::LeaseId,
    },
    /// Remove `key` (no error when it is absent).
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Remove every key in `start..end` (start inclusive, end exclusive).
    DeleteRange {
        /// First key removed.
        start: Bytes,
        /// First key kept.
        end: Bytes,
    },
}

/// A set of preconditions and operations applied all-or-nothing by
/// [`crate::Storage::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    preconditions: Vec<Precondition>,
    ops: Vec<Op>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a put of a key that lives on `lease` (see [`Op::PutLeased`]).
    /// Backends without [`crate::Capabilities::leases`] refuse the batch.
    pub fn put_leased(
        &mut self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        lease: crate::LeaseId,
    ) -> &mut Self {
        self.ops.push(Op::PutLeased {
            key: key.into(),
            value: value.into(),
            lease,
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl Into<Bytes>) -> &mut Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// Adds a range delete of `start..end`.
    pub fn delete_range(&mut self, start: impl Into<Bytes>, end: impl Into<Bytes>) -> &mut Self {
        self.ops.push(Op::DeleteRange {
            start: start.into(),
            end: end.into(),
        });
        self
    }

    /// Requires `key` to be absent when the batch is applied.
    pub fn require_absent(&mut self, key: impl Into<Bytes>) -> &mut Self {
        self.preconditions.push(Precondition::Absent(key.into()));
        self
    }

    /// Requires `key` to hold exactly `value` when the batch is applied.
    pub fn require_equals(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> &mut Self {
        self.preconditions
            .push(Precondition::Equals(key.into(), value.into()));
        self
    }

    /// Appends every precondition and operation of `other`, after this
    /// batch's own.
    pub fn extend(&mut self, other: WriteBatch) -> &mut Self {
        self.preconditions.extend(other.preconditions);
        self.ops.extend(other.ops);
        self
    }

    /// The preconditions, in the order they were added.
    pub fn preconditions(&self) -> &[Precondition] {
        &self.preconditions
    }

    /// The operations, in the order they are applied.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Drops every point operation (put, leased put, delete) that a later
    /// point operation on the same key overrides, keeping the order of the
    /// rest. The batch's effect is unchanged: the last point operation on a
    /// key decides it, and a range delete after it still removes it.
    /// A batch assembled from many requests that each rewrite one record
    /// (a counter, a status) then writes that record once.
    pub fn drop_overridden(&mut self) -> &mut Self {
        let mut seen = std::collections::HashSet::with_capacity(self.ops.len());
        let mut keep = vec![true; self.ops.len()];
        for (index, op) in self.ops.iter().enumerate().rev() {
            let key = match op {
                Op::Put { key, .. } | Op::PutLeased { key, .. } | Op::Delete { key } => key,
                Op::DeleteRange { .. } => continue,
            };
            keep[index] = seen.insert(key.clone());
        }
        if keep.contains(&false) {
            let mut keep = keep.into_iter();
            self.ops.retain(|_| keep.next().unwrap_or(true));
        }
        self
    }

    /// Splits the batch into its preconditions and operations.
    pub fn into_parts(self) -> (Vec<Precondition>, Vec<Op>) {
        (self.preconditions, self.ops)
    }

    /// True when the batch has neither preconditions nor operations.
    pub fn is_empty(&self) -> bool {
        self.preconditions.is_empty() && self.ops.is_empty()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Total key and value bytes of the operations, for size limits.
    pub fn byte_len(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } | Op::PutLeased { key, value, .. } => {
                    key.len() + value.len()
                }
                Op::Delete { key } => key.len(),
                Op::DeleteRange { start, end } => start.len() + end.len(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Applies `ops` in order to a map, as every backend must.
    fn apply(ops: &[Op]) -> BTreeMap<Bytes, Bytes> {
        let mut map = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put { key, value } | Op::PutLeased { key, value, .. } => {
                    map.insert(key.clone(), value.clone());
                }
                Op::Delete { key } => {
                    map.remove(key);
                }
                Op::DeleteRange { start, end } => {
                    map.retain(|key, _| key < start || key >= end);
                }
            }
        }
        map
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = || (0u8..6).prop_map(|k| Bytes::from(vec![b'k', k]));
        prop_oneof![
            (key(), any::<u8>()).prop_map(|(key, v)| Op::Put {
                key,
                value: Bytes::from(vec![v]),
            }),
            (key(), any::<u8>()).prop_map(|(key, v)| Op::PutLeased {
                key,
                value: Bytes::from(vec![v]),
                lease: crate::LeaseId(7),
            }),
            key().prop_map(|key| Op::Delete { key }),
            (key(), key()).prop_map(|(start, end)| Op::DeleteRange { start, end }),
        ]
    }

    proptest! {
        #[test]
        fn dropping_overridden_ops_keeps_the_effect(ops in prop::collection::vec(op(), 0..40)) {
            let mut batch = WriteBatch::new();
            batch.ops = ops.clone();
            batch.drop_overridden();
            prop_assert_eq!(apply(&batch.ops), apply(&ops));
            // Each key is named by at most one point operation.
            let mut named = std::collections::HashSet::new();
            for op in &batch.ops {
                if let Op::Put { key, .. } | Op::PutLeased { key, .. } | Op::Delete { key } = op {
                    prop_assert!(named.insert(key.clone()), "{key:?} twice");
                }
            }
        }
    }

    #[test]
    fn the_last_write_of_a_rewritten_record_is_the_one_kept() {
        let mut batch = WriteBatch::new();
        batch
            .put(&b"counter"[..], &b"1"[..])
            .put(&b"a"[..], &b"x"[..])
            .put(&b"counter"[..], &b"2"[..])
            .delete_range(&b"a"[..], &b"b"[..])
            .put(&b"counter"[..], &b"3"[..]);
        batch.drop_overridden();
        assert_eq!(
            batch.ops(),
            [
                Op::Put {
                    key: Bytes::from_static(b"a"),
                    value: Bytes::from_static(b"x")
                },
                Op::DeleteRange {
                    start: Bytes::from_static(b"a"),
                    end: Bytes::from_static(b"b")
                },
                Op::Put {
                    key: Bytes::from_static(b"counter"),
                    value: Bytes::from_static(b"3")
                },
            ]
        );
    }
}
