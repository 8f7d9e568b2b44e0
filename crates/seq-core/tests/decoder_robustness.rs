//! Every decoder fed truncated, corrupted, wrong-version and random bytes
//! returns a typed `Corrupt` error and never panics.

use proptest::prelude::*;
use seq_core::keys::{KeyReader, keyspace};
use seq_core::seqkey::{decode_counters, encode_counters, parse_key};
use seq_core::{BlockRecord, Error, Result, SequenceDef, SequenceOptions, SpaceOffset, frame};

/// A decoder under test, reduced to "did it accept the bytes".
type Decoder = fn(&[u8]) -> Result<()>;

/// A framed decoder and a valid encoding for it.
struct Framed {
    name: &'static str,
    valid: Vec<u8>,
    decode: Decoder,
}

fn framed_decoders() -> Vec<Framed> {
    let def = SequenceOptions {
        increment: -2,
        cycle: true,
        ..SequenceOptions::default()
    }
    .validate()
    .expect("valid options");
    vec![
        Framed {
            name: "BlockRecord",
            valid: BlockRecord::new(77, 4096).expect("valid block").encode(),
            decode: |b| BlockRecord::decode(b).map(drop),
        },
        Framed {
            name: "SequenceDef",
            valid: def.encode(),
            decode: |b| SequenceDef::decode(b).map(drop),
        },
        Framed {
            name: "counters",
            valid: encode_counters(&[3, u64::MAX, 0]),
            decode: |b| decode_counters(b).map(drop),
        },
        Framed {
            name: "frame",
            valid: frame::encode(1, b"body"),
            decode: |b| frame::decode_expect(b, 1).map(drop),
        },
    ]
}

/// Every decoder in the crate, framed or not.
fn all_decoders() -> Vec<(&'static str, Decoder)> {
    let mut all: Vec<(&'static str, Decoder)> = framed_decoders()
        .into_iter()
        .map(|f| (f.name, f.decode))
        .collect();
    all.push(("frame::decode", |b| frame::decode(b).map(drop)));
    all.push(("SpaceOffset", |b| SpaceOffset::decode(b).map(drop)));
    all.push(("SpaceOffset hex", |b| {
        SpaceOffset::from_hex(&String::from_utf8_lossy(b)).map(drop)
    }));
    all.push(("parse_key", |b| {
        parse_key("p", &String::from_utf8_lossy(b)).map(drop)
    }));
    all.push(("KeyReader", |b| {
        let mut r = KeyReader::new(b, keyspace::IDX)?;
        r.str()?;
        r.u64()?;
        r.bytes()?;
        r.u64()?;
        r.finish()
    }));
    all
}

fn assert_corrupt(name: &str, result: Result<()>) -> std::result::Result<(), TestCaseError> {
    match result {
        Ok(()) | Err(Error::Corrupt { .. }) => Ok(()),
        Err(other) => Err(TestCaseError::fail(format!(
            "{name}: expected Corrupt, got {other:?}"
        ))),
    }
}

#[test]
fn should_reject_every_truncation_of_framed_records() {
    for f in framed_decoders() {
        for len in 0..f.valid.len() {
            assert!(
                matches!((f.decode)(&f.valid[..len]), Err(Error::Corrupt { .. })),
                "{} truncated to {len}",
                f.name
            );
        }
        (f.decode)(&f.valid).unwrap();
    }
}

#[test]
fn should_reject_every_truncation_of_space_offset() {
    let valid = SpaceOffset {
        timestamp: 5,
        segment: "s\0g".into(),
        sequence: 9,
    }
    .encode();
    for len in 0..valid.len() {
        assert!(matches!(
            SpaceOffset::decode(&valid[..len]),
            Err(Error::Corrupt { .. })
        ));
    }
}

#[test]
fn should_reject_wrong_version() {
    for f in framed_decoders() {
        let (_, body) = frame::decode(&f.valid).unwrap();
        for version in [0u8, 2, 255] {
            let err = (f.decode)(&frame::encode(version, body)).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("unsupported version {version}")),
                "{}: {err}",
                f.name
            );
        }
    }
}

#[test]
fn should_reject_well_framed_but_invalid_bodies() {
    let bad_block = [0u8; 16]; // size 0
    assert!(matches!(
        BlockRecord::decode(&frame::encode(1, &bad_block)),
        Err(Error::Corrupt { .. })
    ));
    let mut overflow = [0xFFu8; 16]; // base + size overflows
    overflow[8..].copy_from_slice(&2u64.to_be_bytes());
    assert!(matches!(
        BlockRecord::decode(&frame::encode(1, &overflow)),
        Err(Error::Corrupt { .. })
    ));
    let mut def = frame::decode(&SequenceOptions::default().validate().unwrap().encode())
        .unwrap()
        .1
        .to_vec();
    def[32] = 7; // cycle flag
    assert!(matches!(
        SequenceDef::decode(&frame::encode(1, &def)),
        Err(Error::Corrupt { .. })
    ));
    def[32] = 0;
    def[8..16].copy_from_slice(&0i64.to_be_bytes()); // increment 0
    assert!(matches!(
        SequenceDef::decode(&frame::encode(1, &def)),
        Err(Error::Corrupt { .. })
    ));
    let mut counters = frame::decode(&encode_counters(&[1, 2])).unwrap().1.to_vec();
    counters[3] = 3; // claims 3 levels, holds 2
    assert!(matches!(
        decode_counters(&frame::encode(1, &counters)),
        Err(Error::Corrupt { .. })
    ));
}

proptest! {
    #[test]
    fn should_reject_corrupted_framed_records(
        which in 0..4usize,
        at in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let f = &framed_decoders()[which];
        let mut bad = f.valid.clone();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        // CRC-32 detects every error confined to one byte.
        prop_assert!(
            matches!((f.decode)(&bad), Err(Error::Corrupt { .. })),
            "{} with byte {} ^ {:#04x}", f.name, i, flip
        );
    }

    #[test]
    fn should_never_panic_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        for (name, decode) in all_decoders() {
            assert_corrupt(name, decode(&bytes))?;
        }
    }

    #[test]
    fn should_never_panic_on_random_framed_bodies(
        version in prop_oneof![Just(1u8), any::<u8>()],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = frame::encode(version, &body);
        for (name, decode) in all_decoders() {
            assert_corrupt(name, decode(&bytes))?;
        }
    }

    #[test]
    fn should_never_panic_on_random_keys(
        tag in 0..keyspace::ALL.len(),
        rest in prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()], 0..40),
    ) {
        let mut key = keyspace::ALL[tag].to_vec();
        key.extend(rest);
        for (name, decode) in all_decoders() {
            assert_corrupt(name, decode(&key))?;
        }
    }

    #[test]
    fn should_never_panic_on_random_hex_and_key_text(text in "[0-9a-fA-F\\-p]{0,60}|\\PC{0,20}") {
        assert_corrupt("from_hex", SpaceOffset::from_hex(&text).map(drop))?;
        assert_corrupt("parse_key", parse_key("p", &text).map(drop))?;
    }
}
