//! Fuzz targets for seq: one per on-disk decoder, plus a model-based target
//! that drives the engine against a `BTreeMap` model (see [`model`]).
//!
//! Every target is a plain function `fn(&[u8])` here; `fuzz_targets/*.rs`
//! wraps each in [`seq_fuzz_target!`], which builds it either as a libFuzzer
//! target (feature `libfuzzer`, used by `cargo fuzz run`) or as a standalone
//! binary driven by the coverage-free loop in [`driver`]. `cargo xtask fuzz`
//! picks between the two (see `docs/reliability.md`).
//!
//! A decoder target checks three things for any input: the decoder does not
//! panic; when it fails, the error is `Corrupt` (a decoder has no other way to
//! fail); when it succeeds, encoding the result gives back exactly the input
//! (the formats are canonical), so nothing is silently misread.
//!
//! Framed records are nearly impossible to reach by mutating bytes (a CRC-32
//! guards them), so framed targets read their first byte as a mode: even
//! means "decode the rest as is", odd means "frame the rest with a valid
//! checksum first", which lets the fuzzer explore the bodies.

pub mod driver;
pub mod model;
pub mod stored;

use seq_core::keys::{KeyBuilder, KeyReader, keyspace};
use seq_core::seqkey::{decode_counters, encode_counters, format_key, parse_key};
use seq_core::{BlockRecord, SequenceDef, SpaceOffset, frame};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target: its name (the `fuzz_targets/<name>.rs` file) and function.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame_target),
    ("block_record", block_record),
    ("sequence_def", sequence_def),
    ("seqkey_counters", seqkey_counters),
    ("seqkey_parse_key", seqkey_parse_key),
    ("key_reader", key_reader),
    ("space_offset", space_offset),
    ("space_offset_hex", space_offset_hex),
    ("stream_codecs", stored::run),
    ("model", model::run),
];

/// Builds a fuzz target from a `fn(&[u8])`: a libFuzzer target with the
/// `libfuzzer` feature, else a `main` that runs [`driver::main`].
///
/// The binary must start with `#![cfg_attr(feature = "libfuzzer", no_main)]`.
#[macro_export]
macro_rules! seq_fuzz_target {
    ($name:literal, $target:path) => {
        #[cfg(feature = "libfuzzer")]
        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            $target(data);
        });

        #[cfg(not(feature = "libfuzzer"))]
        fn main() {
            $crate::driver::main($name, $target);
        }
    };
}

/// Panics unless `error` is `Corrupt`: a decoder has no other way to fail.
fn expect_corrupt(what: &str, error: &seq_core::Error) {
    assert!(
        matches!(error, seq_core::Error::Corrupt { .. }),
        "{what}: decoding failed with a non-Corrupt error: {error:?}"
    );
}

/// The bytes a framed target decodes: see the crate docs.
fn framed_input(data: &[u8], version: u8) -> Vec<u8> {
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 => {
            // Mostly the right version; sometimes whatever bit 1..8 say.
            let v = if mode & 0x80 == 0 { version } else { mode >> 1 };
            frame::encode(v, rest)
        }
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    }
}

/// `seq_core::frame::decode`: any bytes; success re-encodes to the input.
pub fn frame_target(data: &[u8]) {
    match frame::decode(data) {
        Ok((version, body)) => assert_eq!(frame::encode(version, body), data),
        Err(e) => expect_corrupt("frame", &e),
    }
}

/// `BlockRecord::decode`.
pub fn block_record(data: &[u8]) {
    let input = framed_input(data, BlockRecord::VERSION);
    match BlockRecord::decode(&input) {
        Ok(block) => {
            assert!(block.size > 0, "decoded an empty block: {block:?}");
            assert!(
                block.base.checked_add(block.size).is_some(),
                "{block:?} overflows"
            );
            assert_eq!(block.encode(), input);
        }
        Err(e) => expect_corrupt("BlockRecord", &e),
    }
}

/// `SequenceDef::decode`.
pub fn sequence_def(data: &[u8]) {
    let input = framed_input(data, SequenceDef::VERSION);
    match SequenceDef::decode(&input) {
        Ok(def) => {
            assert_ne!(def.increment, 0);
            assert!(def.min <= def.max && def.block_size > 0, "{def:?}");
            assert_eq!(def.encode(), input);
            // A decoded definition must map ticks without panicking.
            for tick in [0, 1, def.block_size, u64::MAX / 2, u64::MAX] {
                let _ = def.value_at(tick);
            }
            let _ = def.tick_after_value(def.start);
        }
        Err(e) => expect_corrupt("SequenceDef", &e),
    }
}

/// `seqkey::decode_counters` (the sequence-key counter record).
pub fn seqkey_counters(data: &[u8]) {
    let input = framed_input(data, seq_core::seqkey::COUNTERS_VERSION);
    match decode_counters(&input) {
        Ok(counters) => assert_eq!(encode_counters(&counters), input),
        Err(e) => expect_corrupt("counters", &e),
    }
}

/// `seqkey::parse_key`: the first byte is the prefix length, then the prefix
/// and the key (both read as lossy UTF-8).
pub fn seqkey_parse_key(data: &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let (prefix, key) = rest.split_at(usize::from(len).min(rest.len()));
    let prefix = String::from_utf8_lossy(prefix);
    let key = String::from_utf8_lossy(key);
    match parse_key(&prefix, &key) {
        Ok(counters) => {
            assert!(!counters.is_empty());
            assert_eq!(format_key(&prefix, &counters), key);
        }
        Err(e) => expect_corrupt("parse_key", &e),
    }
}

/// One component of an internal key.
#[derive(Debug, Clone, Copy)]
enum Part {
    Str,
    Bytes,
    U64,
}

/// The shapes of seq's internal keys (`docs/design.md`, key layout).
const SHAPES: &[(&[u8; 3], &[Part])] = {
    use Part::{Bytes, Str, U64};
    &[
        (keyspace::MET, &[Str]),
        (keyspace::SEQ, &[Str]),
        (keyspace::SKC, &[Str]),
        (keyspace::SKY, &[Str]),
        (keyspace::DAT, &[Str, Str, U64]),
        (keyspace::IDX, &[Str, U64]),
        (keyspace::INV, &[Str, Str]),
        (keyspace::TXN, &[U64]),
        (keyspace::IDM, &[Str, Str, Str]),
        (keyspace::LSE, &[Str]),
        (keyspace::CUR, &[Str]),
        (keyspace::DAT, &[Bytes, U64, Bytes]),
    ]
};

/// `keys::KeyReader`: the first byte picks a key shape, the rest is the key.
/// A key read completely must rebuild byte for byte with `KeyBuilder`.
pub fn key_reader(data: &[u8]) {
    let Some((&pick, key)) = data.split_first() else {
        return;
    };
    let (tag, parts) = SHAPES[usize::from(pick) % SHAPES.len()];
    // Half the time keep the input's own first three bytes as the tag.
    let key = if pick & 0x80 == 0 {
        let mut k = tag.to_vec();
        k.extend_from_slice(key);
        k
    } else {
        key.to_vec()
    };
    let read = || -> seq_core::Result<KeyBuilder> {
        let mut reader = KeyReader::new(&key, tag)?;
        let mut rebuilt = KeyBuilder::new(tag);
        for part in parts {
            rebuilt = match part {
                Part::Str => rebuilt.str(&reader.str()?),
                Part::Bytes => rebuilt.bytes(&reader.bytes()?),
                Part::U64 => rebuilt.u64(reader.u64()?),
            };
        }
        reader.finish()?;
        Ok(rebuilt)
    };
    match read() {
        Ok(rebuilt) => assert_eq!(rebuilt.build(), key),
        Err(e) => expect_corrupt("KeyReader", &e),
    }
}

/// `SpaceOffset::decode`.
pub fn space_offset(data: &[u8]) {
    match SpaceOffset::decode(data) {
        Ok(offset) => assert_eq!(offset.encode(), data),
        Err(e) => expect_corrupt("SpaceOffset", &e),
    }
}

/// `SpaceOffset::from_hex` (lossy UTF-8 of the input).
pub fn space_offset_hex(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match SpaceOffset::from_hex(&text) {
        Ok(offset) => {
            assert_eq!(offset.to_hex(), text.to_ascii_lowercase());
            assert_eq!(SpaceOffset::decode(&offset.encode()).ok(), Some(offset));
        }
        Err(e) => expect_corrupt("SpaceOffset::from_hex", &e),
    }
}

/// Seed inputs for every target, as committed under `fuzz/corpus/<target>/`:
/// one or more valid encodings per decoder (with the mode byte where the
/// target has one), and a few operation scripts for the engine targets.
///
/// `SEQ_FUZZ_WRITE_SEEDS=1 cargo test --manifest-path fuzz/Cargo.toml`
/// rewrites the corpus directories' `seed-*` files from this list.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use seq_core::SequenceOptions;
    let with_mode = |mode: u8, bytes: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(bytes);
        v
    };
    let body = |framed: &[u8]| {
        frame::decode(framed)
            .map(|(_, b)| b.to_vec())
            .unwrap_or_default()
    };
    let block = BlockRecord {
        base: 77,
        size: 4096,
    }
    .encode();
    let def = SequenceOptions {
        increment: -2,
        cycle: true,
        ..SequenceOptions::default()
    }
    .validate()
    .map(|d| d.encode())
    .unwrap_or_default();
    let counters = encode_counters(&[3, u64::MAX, 0]);
    let offset = SpaceOffset {
        timestamp: 1_700_000_000_000_000,
        segment: "seg\0x".into(),
        sequence: 9,
    };
    let mut out = vec![
        ("frame", frame::encode(1, b"body")),
        ("frame", frame::encode(7, b"")),
        ("block_record", with_mode(0, &block)),
        ("block_record", with_mode(1, &body(&block))),
        ("sequence_def", with_mode(0, &def)),
        ("sequence_def", with_mode(1, &body(&def))),
        ("seqkey_counters", with_mode(0, &counters)),
        ("seqkey_counters", with_mode(1, &body(&counters))),
        (
            "seqkey_parse_key",
            with_mode(1, format!("p{}", format_key("p", &[1, 2])).as_bytes()),
        ),
        (
            "seqkey_parse_key",
            with_mode(
                3,
                format!("a-b{}", format_key("a-b", &[u64::MAX])).as_bytes(),
            ),
        ),
        ("space_offset", offset.encode()),
        ("space_offset", SpaceOffset::default().encode()),
        ("space_offset_hex", offset.to_hex().into_bytes()),
    ];
    for (i, (tag, parts)) in SHAPES.iter().enumerate() {
        let mut key = KeyBuilder::new(tag);
        for (j, part) in parts.iter().enumerate() {
            key = match part {
                Part::Str => key.str(if j == 0 { "space" } else { "seg\0ment" }),
                Part::Bytes => key.bytes(b"\x00\xff\x01"),
                Part::U64 => key.u64(42 + j as u64),
            };
        }
        let key = key.build();
        out.push(("key_reader", with_mode(i as u8, &key[3..])));
    }
    for pick in 0..14u8 {
        out.push((
            "stream_codecs",
            with_mode(pick, b"\x01\x00\x00\x00\x00\x00\x00\x00\x05garbage"),
        ));
    }
    // Operation scripts: `arbitrary` reads any bytes as a list of ops, so
    // the seeds are deterministic pseudo-random byte strings.
    let mut state = 0x5EED_u64;
    for len in [96usize, 192, 384] {
        let script = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        out.push(("model", script));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_accept_every_seed_without_failing() {
        for (target, input) in seeds() {
            let run = TARGETS
                .iter()
                .find(|(name, _)| *name == target)
                .expect("known target")
                .1;
            run(&input);
        }
    }

    #[test]
    fn should_have_seeds_for_every_target_on_disk() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        if std::env::var_os("SEQ_FUZZ_WRITE_SEEDS").is_some() {
            for (i, (target, input)) in seeds().into_iter().enumerate() {
                let dir = root.join(target);
                std::fs::create_dir_all(&dir).expect("corpus dir");
                std::fs::write(dir.join(format!("seed-{i:03}")), input).expect("seed file");
            }
        }
        for (target, _) in TARGETS {
            let dir = root.join(target);
            let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
            assert!(count > 0, "no seeds in {}", dir.display());
        }
    }
}
