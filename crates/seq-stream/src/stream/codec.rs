//! Stored record formats of the stream layer. Every value is framed by
//! [`seq_core::frame`] (version byte, body, CRC-32); a value that does not
//! check out decodes to [`Error::Corrupt`] naming its key.
//!
//! * Entry (`DAT`), version 1: `ts u64 | commit u64 | node_len u16 | node |
//!   meta_count u32 | (klen u32 | key | vlen u32 | value)* | payload`. The
//!   space, segment and sequence live in the key; the TRX id is the store's
//!   UUID (stores never share data).
//! * Status (`INV`), version 1: `first u64 | last u64 | first_ts u64 |
//!   last_ts u64 | commit u64 | idem_floor u64`, exact. Version 2, the same
//!   body, is a *bound*: `last`, `last_ts` and `commit` are as of the
//!   record's write, and the segment's newest entry, when it is newer,
//!   decides them (see [`Tail`]). Version 128 is the writer's exact view of
//!   a status, held in memory only and never stored.
//! * Idempotency lookup (`IDM` "k"), version 1: `seq u64`.
//! * Idempotency log (`IDM` "s"), version 1: the key's UTF-8 bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use seq_core::frame;

use super::types::{Entry, SegmentStatus, Trx};
use crate::error::{Error, Result};

const ENTRY_VERSION: u8 = 1;
const STATUS_VERSION: u8 = 1;
const STATUS_BOUND_VERSION: u8 = 2;
const STATUS_VIEW_VERSION: u8 = 128;
const IDM_VERSION: u8 = 1;

/// Size of an entry's fixed header: version, timestamp, commit.
const ENTRY_FIXED: usize = 1 + 8 + 8;

/// Encodes an entry value.
pub(crate) fn encode_entry(
    timestamp: u64,
    commit: u64,
    node: &str,
    metadata: &BTreeMap<String, String>,
    payload: &[u8],
) -> Result<Vec<u8>> {
    let node_len = u16::try_from(node.len())
        .map_err(|_| Error::invalid("node name longer than 65,535 bytes"))?;
    let count =
        u32::try_from(metadata.len()).map_err(|_| Error::invalid("too many metadata entries"))?;
    let mut meta_len = 0usize;
    for (key, value) in metadata {
        for part in [key, value] {
            u32::try_from(part.len())
                .map_err(|_| Error::invalid("metadata key or value longer than 4 GiB"))?;
        }
        meta_len += 8 + key.len() + value.len();
    }
    let body_len = 16 + 2 + node.len() + 4 + meta_len + payload.len();
    Ok(frame::encode_with(ENTRY_VERSION, body_len, |body| {
        body.extend_from_slice(&timestamp.to_be_bytes());
        body.extend_from_slice(&commit.to_be_bytes());
        body.extend_from_slice(&node_len.to_be_bytes());
        body.extend_from_slice(node.as_bytes());
        body.extend_from_slice(&count.to_be_bytes());
        for (key, value) in metadata {
            for part in [key, value] {
                // Checked above: every part's length fits in a u32.
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                body.extend_from_slice(&len.to_be_bytes());
                body.extend_from_slice(part.as_bytes());
            }
        }
        body.extend_from_slice(payload);
    }))
}

/// A cursor over a body that turns short reads into [`Error::Corrupt`].
struct Body<'a> {
    key: &'a [u8],
    rest: &'a [u8],
}

/// A big-endian `u64` from 8 bytes.
#[inline]
fn be_u64(raw: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(raw);
    u64::from_be_bytes(word)
}

impl<'a> Body<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::corrupt_at(self.key, "entry record is truncated"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    #[inline]
    fn u64(&mut self) -> Result<u64> {
        let raw = self.take(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(raw);
        Ok(u64::from_be_bytes(word))
    }

    #[inline]
    fn u32(&mut self) -> Result<u32> {
        let raw = self.take(4)?;
        Ok(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }

    fn string(&mut self, len: usize) -> Result<String> {
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::corrupt_at(self.key, "entry string is not UTF-8"))
    }
}

/// Decodes the timestamp of an entry value (checking the frame).
pub(crate) fn entry_timestamp(key: &[u8], value: &[u8]) -> Result<u64> {
    let body = frame::decode_expect(value, ENTRY_VERSION).map_err(|e| Error::decode(key, e))?;
    Body { key, rest: body }.u64()
}

/// Decodes the entries of one space: the names every entry shares are
/// reference-counted once per stream ([`Arc<str>`]), and the node name is
/// reused while consecutive entries carry the same one, so decoding an
/// entry without metadata allocates nothing.
///
/// Decoding is two steps, so a caller can check a value before it gives up
/// its buffer: [`EntryDecoder::parse`] checks the frame and reads the
/// fields, [`EntryDecoder::build`] turns the value into the entry.
#[derive(Debug, Clone)]
pub(crate) struct EntryDecoder {
    store_id: uuid::Uuid,
    space: Arc<str>,
    /// The node name of the last entry parsed.
    node: Arc<str>,
}

/// The fields of an entry value that [`EntryDecoder::parse`] checked.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) timestamp: u64,
    number: u64,
    metadata: BTreeMap<String, String>,
    /// Where the payload lies in the value.
    payload: std::ops::Range<usize>,
}

impl EntryDecoder {
    /// A decoder for entries of `space` in the store `store_id`.
    pub(crate) fn new(store_id: uuid::Uuid, space: Arc<str>) -> Self {
        Self {
            store_id,
            space,
            node: Arc::from(""),
        }
    }

    /// The space this decoder builds entries of.
    pub(crate) fn space(&self) -> &Arc<str> {
        &self.space
    }

    /// Checks an entry value stored at `key` (frame, version, checksum,
    /// layout) and reads its fields; the node name is kept for
    /// [`EntryDecoder::build`].
    pub(crate) fn parse(&mut self, key: &[u8], value: &[u8]) -> Result<Parsed> {
        let body = frame::decode_expect(value, ENTRY_VERSION).map_err(|e| Error::decode(key, e))?;
        self.parse_body(key, value, body)
    }

    /// Reads the fields of `body`, the framed part of `value`.
    fn parse_body(&mut self, key: &[u8], value: &[u8], body: &[u8]) -> Result<Parsed> {
        let mut reader = Body { key, rest: body };
        // Timestamp, commit number and node length, with one bounds check.
        let fixed = reader.take(8 + 8 + 2)?;
        let timestamp = be_u64(&fixed[..8]);
        let number = be_u64(&fixed[8..16]);
        let node_len = usize::from(u16::from_be_bytes([fixed[16], fixed[17]]));
        let node = reader.take(node_len)?;
        if node != self.node.as_bytes() {
            let node = std::str::from_utf8(node)
                .map_err(|_| Error::corrupt_at(key, "entry string is not UTF-8"))?;
            self.node = Arc::from(node);
        }
        let count = reader.u32()?;
        let mut metadata = BTreeMap::new();
        for _ in 0..count {
            let klen = reader.u32()? as usize;
            let k = reader.string(klen)?;
            let vlen = reader.u32()? as usize;
            let v = reader.string(vlen)?;
            metadata.insert(k, v);
        }
        // The payload runs from here to the checksum.
        let end = value.len() - frame::OVERHEAD + 1;
        debug_assert!(end >= ENTRY_FIXED);
        Ok(Parsed {
            timestamp,
            number,
            metadata,
            payload: end - reader.rest.len()..end,
        })
    }

    /// The entry `sequence` of `segment` whose value `parse` just checked:
    /// its payload is `value` itself, narrowed to the payload's bytes (no
    /// copy).
    pub(crate) fn build(
        &self,
        mut value: Bytes,
        parsed: Parsed,
        segment: Arc<str>,
        sequence: u64,
    ) -> Entry {
        value.truncate(parsed.payload.end);
        value.advance(parsed.payload.start);
        Entry {
            space: self.space.clone(),
            segment,
            sequence,
            timestamp: parsed.timestamp,
            trx: Trx {
                id: self.store_id,
                node: self.node.clone(),
                number: parsed.number,
            },
            payload: value,
            metadata: parsed.metadata,
        }
    }

    /// Decodes an entry value stored at `key` (entry `sequence` of
    /// `segment`): [`EntryDecoder::parse`] then [`EntryDecoder::build`].
    pub(crate) fn decode(
        &mut self,
        key: &[u8],
        value: Bytes,
        segment: &Arc<str>,
        sequence: u64,
    ) -> Result<Entry> {
        let parsed = self.parse(key, &value)?;
        Ok(self.build(value, parsed, segment.clone(), sequence))
    }
}

/// The timestamp in an entry value's header, without checking the frame
/// (`None` when the value is too short to hold one). For ordering and
/// filtering before an entry is decoded; [`EntryDecoder::parse`] checks it.
pub(crate) fn peek_timestamp(value: &[u8]) -> Option<u64> {
    let raw = value.get(1..9)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(raw);
    Some(u64::from_be_bytes(word))
}

/// Decodes one entry value stored at `key` (see [`EntryDecoder`] to decode
/// many); the payload shares `value`'s buffer.
pub(crate) fn decode_entry(
    key: &[u8],
    value: &Bytes,
    space: &str,
    segment: &str,
    sequence: u64,
    store_id: uuid::Uuid,
) -> Result<Entry> {
    EntryDecoder::new(store_id, space.into()).decode(key, value.clone(), &segment.into(), sequence)
}

/// A segment status as stored, with the fields the API does not show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoredStatus {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) first_ts: u64,
    pub(crate) last_ts: u64,
    /// Commit number of the last change (produce or trim).
    pub(crate) commit: u64,
    /// Idempotency keys of sequences up to here have been forgotten.
    pub(crate) idem_floor: u64,
}

impl StoredStatus {
    /// The status of a segment never written.
    pub(crate) fn new() -> Self {
        Self {
            first: 1,
            ..Self::default()
        }
    }

    /// The public view.
    pub(crate) fn public(&self, space: &str, segment: &str) -> SegmentStatus {
        SegmentStatus {
            space: space.to_owned(),
            segment: segment.to_owned(),
            first_sequence: self.first,
            last_sequence: self.last,
            first_timestamp: self.first_ts,
            last_timestamp: self.last_ts,
            count: (self.last + 1).saturating_sub(self.first),
        }
    }
}

/// Encodes a status value whose fields are exact.
pub(crate) fn encode_status(status: &StoredStatus) -> Vec<u8> {
    encode_status_as(status, Tail::Exact)
}

/// Encodes a status value whose tail fields (`last`, `last_ts`, `commit`)
/// later appends will not rewrite: readers complete them from the
/// segment's newest entry.
pub(crate) fn encode_status_bound(status: &StoredStatus) -> Vec<u8> {
    encode_status_as(status, Tail::Bound)
}

/// Encodes the writer's exact view of a status whose stored record is a
/// bound (never stored itself).
pub(crate) fn encode_status_view(status: &StoredStatus) -> Vec<u8> {
    encode_status_as(status, Tail::View)
}

fn encode_status_as(status: &StoredStatus, tail: Tail) -> Vec<u8> {
    let mut body = Vec::with_capacity(48);
    for word in [
        status.first,
        status.last,
        status.first_ts,
        status.last_ts,
        status.commit,
        status.idem_floor,
    ] {
        body.extend_from_slice(&word.to_be_bytes());
    }
    let version = match tail {
        Tail::Exact => STATUS_VERSION,
        Tail::Bound => STATUS_BOUND_VERSION,
        Tail::View => STATUS_VIEW_VERSION,
    };
    frame::encode(version, &body)
}

/// What a stored status says about its segment's tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// `last`, `last_ts` and `commit` are exact.
    Exact,
    /// They are a lower bound: appends after the record's write did not
    /// rewrite it, and the segment's newest entry decides them when it is
    /// newer (a single-writer store rewrites a status only when its first
    /// sequence, first timestamp or idempotency floor moves).
    Bound,
    /// The writer's exact view of a segment whose stored record is a
    /// bound: held in its group's writes and read cache, never stored.
    View,
}

/// Decodes a status value stored at `key`, either kind: callers that need
/// the tail fields exact use [`decode_status_record`] (or
/// [`super::status_record::read`]).
pub(crate) fn decode_status(key: &[u8], value: &[u8]) -> Result<StoredStatus> {
    Ok(decode_status_record(key, value)?.0)
}

/// The tail fields of an entry value (its timestamp and commit number),
/// checking the frame.
pub(crate) fn entry_stamp(key: &[u8], value: &[u8]) -> Result<(u64, u64)> {
    let body = frame::decode_expect(value, ENTRY_VERSION).map_err(|e| Error::decode(key, e))?;
    let mut reader = Body { key, rest: body };
    Ok((reader.u64()?, reader.u64()?))
}

/// Decodes a status value stored at `key`, and whether its tail fields are
/// exact.
pub(crate) fn decode_status_record(key: &[u8], value: &[u8]) -> Result<(StoredStatus, Tail)> {
    let (version, body) = frame::decode(value).map_err(|e| Error::decode(key, e))?;
    let tail = match version {
        STATUS_VERSION => Tail::Exact,
        STATUS_BOUND_VERSION => Tail::Bound,
        STATUS_VIEW_VERSION => Tail::View,
        other => {
            return Err(Error::corrupt_at(
                key,
                format!("status record version {other} is not supported"),
            ));
        }
    };
    if body.len() != 48 {
        return Err(Error::corrupt_at(
            key,
            format!("status record is {} bytes, not 48", body.len()),
        ));
    }
    let mut reader = Body { key, rest: body };
    let status = StoredStatus {
        first: reader.u64()?,
        last: reader.u64()?,
        first_ts: reader.u64()?,
        last_ts: reader.u64()?,
        commit: reader.u64()?,
        idem_floor: reader.u64()?,
    };
    if status.first == 0 || status.first > status.last.saturating_add(1) {
        return Err(Error::corrupt_at(
            key,
            format!(
                "status range {}..={} is impossible",
                status.first, status.last
            ),
        ));
    }
    Ok((status, tail))
}

/// Encodes an idempotency lookup value.
pub(crate) fn encode_idm(seq: u64) -> Vec<u8> {
    frame::encode(IDM_VERSION, &seq.to_be_bytes())
}

/// Decodes an idempotency lookup value stored at `key`.
pub(crate) fn decode_idm(key: &[u8], value: &[u8]) -> Result<u64> {
    let body = frame::decode_expect(value, IDM_VERSION).map_err(|e| Error::decode(key, e))?;
    let raw: [u8; 8] = body
        .try_into()
        .map_err(|_| Error::corrupt_at(key, "idempotency record is not 8 bytes"))?;
    Ok(u64::from_be_bytes(raw))
}

/// Encodes an idempotency log value (the key).
pub(crate) fn encode_idm_log(idempotency_key: &str) -> Vec<u8> {
    frame::encode(IDM_VERSION, idempotency_key.as_bytes())
}

/// Decodes an idempotency log value stored at `key`.
pub(crate) fn decode_idm_log(key: &[u8], value: &[u8]) -> Result<String> {
    let body = frame::decode_expect(value, IDM_VERSION).map_err(|e| Error::decode(key, e))?;
    String::from_utf8(body.to_vec())
        .map_err(|_| Error::corrupt_at(key, "idempotency key is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_round_trip_entry() {
        let mut meta = BTreeMap::new();
        meta.insert("a".to_owned(), "1".to_owned());
        meta.insert("".to_owned(), "".to_owned());
        let value = Bytes::from(encode_entry(7, 9, "node-1", &meta, b"payload").unwrap());
        let id = uuid::Uuid::new_v4();
        let entry = decode_entry(b"k", &value, "s", "g", 3, id).unwrap();
        assert_eq!(entry.timestamp, 7);
        assert_eq!(
            entry.trx,
            Trx {
                id,
                node: "node-1".into(),
                number: 9
            }
        );
        assert_eq!(entry.metadata, meta);
        assert_eq!(entry.payload, "payload");
        assert_eq!(entry_timestamp(b"k", &value).unwrap(), 7);
    }

    #[test]
    fn should_decode_without_copying_payloads_or_names() {
        let id = uuid::Uuid::new_v4();
        let mut decoder = EntryDecoder::new(id, "s".into());
        let segment: Arc<str> = "g".into();
        let values: Vec<Bytes> = ["node-1", "node-1", "node-2"]
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let ts = 10 + i as u64;
                Bytes::from(encode_entry(ts, 1, node, &BTreeMap::new(), b"payload").unwrap())
            })
            .collect();
        let entries: Vec<Entry> = values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                assert_eq!(peek_timestamp(value), Some(10 + i as u64));
                decoder
                    .decode(b"k", value.clone(), &segment, i as u64 + 1)
                    .unwrap()
            })
            .collect();
        for (entry, value) in entries.iter().zip(&values) {
            assert_eq!(entry.payload, "payload");
            // The payload is a slice of the stored value.
            let start = value.as_ptr() as usize;
            let at = entry.payload.as_ptr() as usize;
            assert!(at > start && at + entry.payload.len() < start + value.len());
            assert!(Arc::ptr_eq(&entry.segment, &segment));
            assert!(Arc::ptr_eq(&entry.space, &entries[0].space));
        }
        assert!(Arc::ptr_eq(&entries[0].trx.node, &entries[1].trx.node));
        assert_eq!(&*entries[2].trx.node, "node-2");
        assert_eq!(
            (entries[2].timestamp, entries[2].sequence, entries[2].trx.id),
            (12, 3, id)
        );
        assert_eq!(peek_timestamp(b"\x01short"), None);
    }

    #[test]
    fn should_reject_every_truncation_and_flip_as_corrupt() {
        let value = encode_entry(1, 2, "n", &BTreeMap::new(), b"xyz").unwrap();
        let id = uuid::Uuid::nil();
        for len in 0..value.len() {
            let cut = Bytes::copy_from_slice(&value[..len]);
            assert!(matches!(
                decode_entry(b"k", &cut, "s", "g", 1, id),
                Err(Error::Corrupt { .. })
            ));
        }
        for i in 0..value.len() {
            let mut bad = value.clone();
            bad[i] ^= 0x01;
            let bad = Bytes::from(bad);
            assert!(matches!(
                decode_entry(b"k", &bad, "s", "g", 1, id),
                Err(Error::Corrupt { .. })
            ));
        }
    }

    #[test]
    fn should_round_trip_status() {
        let status = StoredStatus {
            first: 3,
            last: 9,
            first_ts: 10,
            last_ts: 20,
            commit: 5,
            idem_floor: 2,
        };
        assert_eq!(
            decode_status(b"k", &encode_status(&status)).unwrap(),
            status
        );
        assert_eq!(status.public("s", "g").count, 7);
        let bad = StoredStatus {
            first: 11,
            ..status
        };
        assert!(decode_status(b"k", &encode_status(&bad)).is_err());
        assert_eq!(
            decode_status_record(b"k", &encode_status_bound(&status)).unwrap(),
            (status, Tail::Bound)
        );
        assert_eq!(
            decode_status_record(b"k", &encode_status(&status)).unwrap(),
            (status, Tail::Exact)
        );
        assert_eq!(
            decode_status_record(b"k", &encode_status_view(&status)).unwrap(),
            (status, Tail::View)
        );
        let unknown = frame::encode(3, &encode_status(&status)[1..49]);
        assert!(matches!(
            decode_status_record(b"k", &unknown),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn should_round_trip_idempotency_records() {
        assert_eq!(decode_idm(b"k", &encode_idm(42)).unwrap(), 42);
        assert_eq!(decode_idm_log(b"k", &encode_idm_log("key")).unwrap(), "key");
    }
}
