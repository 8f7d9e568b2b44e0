//! The stored lease record (`LSE` + key) and the checks the writer runs on
//! it.
//!
//! Body, framed by `seq_core::frame` version 1 (integers big-endian):
//! `holder [u8; 16], expires_at u64 (µs), token u64, ttl u64 (µs)`. A
//! released lease keeps its record (and so its token) with the nil holder and
//! `expires_at` 0: tokens keep increasing across releases, expiries and
//! restarts.
//!
//! On a backend with leases of its own ([`seq_storage::Leases`], etcd), a
//! grant also writes the **holder key** (`LSH` + key; body `holder [u8; 16],
//! token u64`) on the holder's backend lease. The backend deletes it when
//! that lease lapses, on its own clock: there the lease is held exactly while
//! the holder key exists, and the record's `expires_at` is only the grant's
//! estimate.

use seq_core::keys::{KeyBuilder, KeyReader, keyspace};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::writer::GroupTx;

const VERSION: u8 = 1;
const BODY_LEN: usize = 16 + 8 + 8 + 8;
const HOLDER_LEN: usize = 16 + 8;

/// Key of lease `key`.
pub(crate) fn key(lease: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::LSE).str(lease).build()
}

/// Key of the holder key of lease `key` (backends with leases).
pub(crate) fn holder_key(lease: &str) -> Vec<u8> {
    KeyBuilder::new(keyspace::LSH).str(lease).build()
}

/// The holder key's value: who holds the lease, with which token.
fn encode_holder(holder: Uuid, token: u64) -> Vec<u8> {
    let mut body = Vec::with_capacity(HOLDER_LEN);
    body.extend_from_slice(holder.as_bytes());
    body.extend_from_slice(&token.to_be_bytes());
    seq_core::frame::encode(VERSION, &body)
}

fn decode_holder(key: &[u8], value: &[u8]) -> Result<(Uuid, u64)> {
    let body = seq_core::frame::decode_expect(value, VERSION).map_err(|e| Error::decode(key, e))?;
    match body.split_first_chunk::<16>() {
        Some((holder, token)) if body.len() == HOLDER_LEN => {
            let token = <[u8; 8]>::try_from(token)
                .map_err(|_| Error::corrupt_at(key, "lease holder record has a short token"))?;
            Ok((Uuid::from_bytes(*holder), u64::from_be_bytes(token)))
        }
        _ => Err(Error::corrupt_at(
            key,
            format!(
                "lease holder record is {} bytes, not {HOLDER_LEN}",
                body.len()
            ),
        )),
    }
}

/// The live holder `(holder, token)` of lease `lease` on a backend with
/// leases, as `tx` sees it (read past the writer's cache: the backend
/// deletes the key by itself).
pub(crate) fn load_holder(tx: &GroupTx<'_>, lease: &str) -> Result<Option<(Uuid, u64)>> {
    let key = holder_key(lease);
    tx.get_uncached(&key)?
        .map(|bytes| decode_holder(&key, &bytes))
        .transpose()
}

/// The live holder of lease `lease`, read from `storage` directly.
pub(crate) fn read_holder(
    storage: &dyn seq_storage::Storage,
    lease: &str,
) -> Result<Option<(Uuid, u64)>> {
    let key = holder_key(lease);
    storage
        .get(&key)?
        .map(|bytes| decode_holder(&key, &bytes))
        .transpose()
}

/// Reads the lease key back from a record key.
pub(crate) fn name_of(key: &[u8]) -> Result<String> {
    let decode = |e| Error::decode(key, e);
    let mut reader = KeyReader::new(key, keyspace::LSE).map_err(decode)?;
    let name = reader.str().map_err(decode)?;
    reader.finish().map_err(decode)?;
    Ok(name)
}

/// One lease's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseRecord {
    /// The holder; nil once released.
    pub(crate) holder: Uuid,
    /// When the grant lapses (µs since the epoch, store clock); 0 once
    /// released.
    pub(crate) expires_at: u64,
    /// The fencing token of the latest grant.
    pub(crate) token: u64,
    /// The ttl of the latest grant or renewal (µs).
    pub(crate) ttl: u64,
}

impl LeaseRecord {
    /// Whether someone holds the lease at store time `now`.
    pub(crate) fn is_held_at(&self, now: u64) -> bool {
        !self.holder.is_nil() && self.expires_at > now
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(BODY_LEN);
        body.extend_from_slice(self.holder.as_bytes());
        body.extend_from_slice(&self.expires_at.to_be_bytes());
        body.extend_from_slice(&self.token.to_be_bytes());
        body.extend_from_slice(&self.ttl.to_be_bytes());
        seq_core::frame::encode(VERSION, &body)
    }

    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Self> {
        let body =
            seq_core::frame::decode_expect(value, VERSION).map_err(|e| Error::decode(key, e))?;
        let Some((holder, rest)) = body.split_first_chunk::<16>() else {
            return Err(Error::corrupt_at(key, "lease record is too short"));
        };
        let word = |i: usize| -> Result<u64> {
            rest.get(i * 8..i * 8 + 8)
                .and_then(|raw| <[u8; 8]>::try_from(raw).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| Error::corrupt_at(key, "lease record is too short"))
        };
        if body.len() != BODY_LEN {
            return Err(Error::corrupt_at(
                key,
                format!("lease record is {} bytes, not {BODY_LEN}", body.len()),
            ));
        }
        Ok(Self {
            holder: Uuid::from_bytes(*holder),
            expires_at: word(0)?,
            token: word(1)?,
            ttl: word(2)?,
        })
    }
}

/// Loads lease `lease` as `tx` sees it.
pub(crate) fn load(tx: &GroupTx<'_>, lease: &str) -> Result<Option<LeaseRecord>> {
    let key = key(lease);
    tx.get(&key)?
        .map(|bytes| LeaseRecord::decode(&key, &bytes))
        .transpose()
}

/// What a grant attempt found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grant {
    /// Granted with this record.
    Granted(LeaseRecord),
    /// Someone else holds it, until `expires_at` (store clock, µs) when the
    /// store keeps time; `None` when the backend's lease decides.
    Held { expires_at: Option<u64>, token: u64 },
}

/// Grants `lease` to `holder` for `ttl` µs if it is free, expired, released
/// or already held by `holder`; each grant takes the next token.
///
/// With `backend` (the holder's lease on a backend with leases) the lease is
/// free when its holder key is gone, and the grant writes the holder key on
/// `backend`.
pub(crate) fn grant(
    tx: &mut GroupTx<'_>,
    lease: &str,
    holder: Uuid,
    ttl: u64,
    backend: Option<seq_storage::LeaseId>,
) -> Result<Grant> {
    let now = tx.timestamp;
    let current = load(tx, lease)?;
    let held_by_other = match backend {
        Some(_) => load_holder(tx, lease)?.is_some_and(|(who, _)| who != holder),
        None => current.is_some_and(|c| c.is_held_at(now) && c.holder != holder),
    };
    if held_by_other && let Some(current) = current {
        return Ok(Grant::Held {
            expires_at: backend.is_none().then_some(current.expires_at),
            token: current.token,
        });
    }
    let last = current.map_or(0, |c| c.token);
    let token = last.checked_add(1).ok_or_else(|| Error::Exhausted {
        what: format!("fencing tokens of lease {lease:?}"),
    })?;
    let record = LeaseRecord {
        holder,
        expires_at: now.saturating_add(ttl),
        token,
        ttl,
    };
    tx.put(key(lease), record.encode());
    if let Some(backend) = backend {
        tx.put_leased(holder_key(lease), encode_holder(holder, token), backend);
    }
    Ok(Grant::Granted(record))
}

/// Extends the grant `(holder, token)` of `lease` by `ttl` µs from now.
/// [`Error::Fenced`] when the lease was granted again (or released),
/// [`Error::Conflict`] when it expired.
pub(crate) fn renew(
    tx: &mut GroupTx<'_>,
    lease: &str,
    holder: Uuid,
    token: u64,
    ttl: u64,
) -> Result<u64> {
    let now = tx.timestamp;
    let current = check_holder(tx, lease, holder, token)?;
    if current.expires_at <= now {
        return Err(Error::Conflict {
            what: format!(
                "lease {lease:?} expired at {} (now {now})",
                current.expires_at
            ),
        });
    }
    let expires_at = now.saturating_add(ttl);
    tx.put(
        key(lease),
        LeaseRecord {
            expires_at,
            ttl,
            ..current
        }
        .encode(),
    );
    Ok(expires_at)
}

/// Releases the grant `(holder, token)` of `lease`, keeping its token, and
/// deletes its holder key when the backend has leases (`backend_leases`).
/// [`Error::Fenced`] when the lease was granted again meanwhile; a lease
/// released already is fine.
pub(crate) fn release(
    tx: &mut GroupTx<'_>,
    lease: &str,
    holder: Uuid,
    token: u64,
    backend_leases: bool,
) -> Result<()> {
    let current = match load(tx, lease)? {
        Some(current) if current.token == token && current.holder.is_nil() => return Ok(()),
        _ => check_holder(tx, lease, holder, token)?,
    };
    let released = LeaseRecord {
        holder: Uuid::nil(),
        expires_at: 0,
        ..current
    };
    tx.put(key(lease), released.encode());
    if backend_leases {
        tx.delete(holder_key(lease));
    }
    Ok(())
}

fn check_holder(tx: &GroupTx<'_>, lease: &str, holder: Uuid, token: u64) -> Result<LeaseRecord> {
    let current = load(tx, lease)?;
    match current {
        Some(current) if current.token == token && current.holder == holder => Ok(current),
        Some(current) => Err(fenced(lease, token, current.token)),
        None => Err(fenced(lease, token, 0)),
    }
}

pub(crate) fn fenced(lease: &str, token: u64, current: u64) -> Error {
    Error::Fenced {
        key: lease.to_owned(),
        token,
        current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_round_trip_lease_record() {
        let record = LeaseRecord {
            holder: Uuid::new_v4(),
            expires_at: 5,
            token: 7,
            ttl: 9,
        };
        let key = key("k\0");
        assert_eq!(LeaseRecord::decode(&key, &record.encode()).unwrap(), record);
        assert_eq!(name_of(&key).unwrap(), "k\0");
    }

    #[test]
    fn should_reject_damaged_lease_record() {
        let record = LeaseRecord {
            holder: Uuid::new_v4(),
            expires_at: 5,
            token: 7,
            ttl: 9,
        };
        let key = key("k");
        let value = record.encode();
        for len in 0..value.len() {
            assert!(matches!(
                LeaseRecord::decode(&key, &value[..len]),
                Err(Error::Corrupt { .. })
            ));
        }
        for i in 0..value.len() {
            let mut bad = value.clone();
            bad[i] ^= 0x40;
            assert!(matches!(
                LeaseRecord::decode(&key, &bad),
                Err(Error::Corrupt { .. })
            ));
        }
        let long = seq_core::frame::encode(VERSION, &[0u8; BODY_LEN + 1]);
        assert!(matches!(
            LeaseRecord::decode(&key, &long),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn should_count_released_and_expired_as_free() {
        let held = LeaseRecord {
            holder: Uuid::new_v4(),
            expires_at: 10,
            token: 1,
            ttl: 10,
        };
        assert!(held.is_held_at(9));
        assert!(!held.is_held_at(10));
        assert!(
            !LeaseRecord {
                holder: Uuid::nil(),
                ..held
            }
            .is_held_at(0)
        );
    }
}
