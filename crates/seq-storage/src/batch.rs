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
