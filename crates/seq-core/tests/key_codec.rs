//! Property tests for the internal key codec: composite keys round-trip, and
//! byte order of keys equals the order of their component tuples.

use proptest::prelude::*;
use seq_core::keys::{KeyBuilder, KeyReader, keyspace, prefix_of, prefix_upper_bound};

/// Strings heavy in the bytes that matter to the escape (NUL, 0x01, U+00FF).
fn tricky_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('\0'),
            Just('\u{1}'),
            Just('a'),
            Just('b'),
            Just('\u{ff}'),
            any::<char>(),
        ],
        0..6,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Byte strings heavy in 0x00, 0x01 and 0xFF, including non-UTF-8.
fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), Just(b'a'), any::<u8>()],
        0..6,
    )
}

fn small_or_any_u64() -> impl Strategy<Value = u64> {
    prop_oneof![0..4u64, any::<u64>(), Just(u64::MAX)]
}

/// The `IDX` layout: space, timestamp, segment, sequence.
fn idx_key(space: &str, ts: u64, segment: &str, seq: u64) -> Vec<u8> {
    KeyBuilder::new(keyspace::IDX)
        .str(space)
        .u64(ts)
        .str(segment)
        .u64(seq)
        .build()
}

proptest! {
    #[test]
    fn should_round_trip_composite_keys(
        space in tricky_string(),
        ts in small_or_any_u64(),
        segment in tricky_string(),
        seq in small_or_any_u64(),
        raw in tricky_bytes(),
    ) {
        let key = KeyBuilder::new(keyspace::IDX)
            .str(&space)
            .u64(ts)
            .str(&segment)
            .bytes(&raw)
            .u64(seq)
            .build();
        let mut r = KeyReader::new(&key, keyspace::IDX).unwrap();
        prop_assert_eq!(r.str().unwrap(), space);
        prop_assert_eq!(r.u64().unwrap(), ts);
        prop_assert_eq!(r.str().unwrap(), segment);
        prop_assert_eq!(r.bytes().unwrap(), raw);
        prop_assert_eq!(r.u64().unwrap(), seq);
        r.finish().unwrap();
    }

    #[test]
    fn should_order_str_u64_keys_like_tuples(
        a in (tricky_string(), small_or_any_u64(), tricky_string(), small_or_any_u64()),
        b in (tricky_string(), small_or_any_u64(), tricky_string(), small_or_any_u64()),
    ) {
        let ka = idx_key(&a.0, a.1, &a.2, a.3);
        let kb = idx_key(&b.0, b.1, &b.2, b.3);
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
    }

    #[test]
    fn should_order_byte_string_keys_like_tuples(
        a in (tricky_bytes(), tricky_bytes()),
        b in (tricky_bytes(), tricky_bytes()),
    ) {
        let key = |t: &(Vec<u8>, Vec<u8>)| {
            KeyBuilder::new(keyspace::SKY).bytes(&t.0).bytes(&t.1).build()
        };
        prop_assert_eq!(key(&a).cmp(&key(&b)), a.cmp(&b));
    }

    #[test]
    fn should_order_u64_components_numerically(a in any::<u64>(), b in any::<u64>()) {
        let ka = KeyBuilder::new(keyspace::TXN).u64(a).build();
        let kb = KeyBuilder::new(keyspace::TXN).u64(b).build();
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
    }

    #[test]
    fn should_match_prefix_exactly_for_complete_components(
        space in tricky_string(),
        other in tricky_string(),
        segment in tricky_string(),
        seq in small_or_any_u64(),
    ) {
        let prefix = prefix_of(keyspace::DAT).str(&space).build();
        let key = KeyBuilder::new(keyspace::DAT).str(&other).str(&segment).u64(seq).build();
        prop_assert_eq!(key.starts_with(&prefix), space == other);
        if let Some(end) = prefix_upper_bound(&prefix) {
            prop_assert_eq!(key >= prefix && key < end, space == other);
        }
    }

    #[test]
    fn should_keep_keyspaces_apart(
        i in 0..keyspace::ALL.len(),
        j in 0..keyspace::ALL.len(),
        name in tricky_string(),
    ) {
        let key = KeyBuilder::new(keyspace::ALL[i]).str(&name).build();
        prop_assert_eq!(KeyReader::new(&key, keyspace::ALL[j]).is_ok(), i == j);
    }
}
