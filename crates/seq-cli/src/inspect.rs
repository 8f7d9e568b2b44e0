//! `seq inspect`: the raw key layout, for debugging.

use anyhow::{Result, bail};
use seq_core::keys::{KeyReader, keyspace};
use seq_storage::{KeyRange, ScanOptions};
use serde::Serialize;

use crate::context::Ctx;
use crate::output::{self, hex};

/// One stored key as `seq inspect` shows it.
#[derive(Debug, Serialize)]
struct Row {
    /// The three-byte keyspace tag (or `?` when the key has none).
    tag: String,
    /// The decoded key components, or `None` when they do not decode.
    components: Option<Vec<Component>>,
    /// The raw key in hex.
    key_hex: String,
    /// Length of the stored value in bytes.
    value_len: usize,
}

/// One decoded key component.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Component {
    /// A string component.
    Str(String),
    /// A byte-string component that is not UTF-8 (hex).
    Bytes { hex: String },
    /// A `u64` component.
    U64(u64),
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Component::Str(s) => write!(f, "{s:?}"),
            Component::Bytes { hex } => write!(f, "0x{hex}"),
            Component::U64(n) => write!(f, "{n}"),
        }
    }
}

/// The shape of a key in each keyspace (see `docs/design.md`).
#[derive(Clone, Copy)]
enum Part {
    Str,
    Bytes,
    U64,
}

/// Keyspace tags `seq inspect` knows: the documented ones plus `USR`
/// (caller records written with a gap-free allocation).
const TAGS: [&[u8; 3]; 12] = [
    keyspace::MET,
    keyspace::SEQ,
    keyspace::SKC,
    keyspace::SKY,
    keyspace::DAT,
    keyspace::IDX,
    keyspace::INV,
    keyspace::TXN,
    keyspace::IDM,
    keyspace::LSE,
    keyspace::CUR,
    b"USR",
];

/// The layouts a key of keyspace `tag` may have, tried in order.
fn layouts(tag: &[u8; 3]) -> &'static [&'static [Part]] {
    use Part::*;
    match tag {
        b"MET" | b"SEQ" | b"SKC" | b"SKY" | b"LSE" | b"CUR" => &[&[Str]],
        b"USR" => &[&[Bytes]],
        b"DAT" => &[&[Str, Str, U64]],
        b"IDX" => &[&[Str, U64]],
        b"INV" => &[&[Str, Str]],
        b"TXN" => &[&[U64]],
        // Idempotency lookups (`k` + key) and their eviction log (`s` + seq).
        b"IDM" => &[
            &[Str, Str, Str, Str],
            &[Str, Str, Str, U64],
            &[Str, Str, Bytes],
        ],
        _ => &[],
    }
}

/// Decodes `key` by its keyspace's layout; `None` when none fits (a
/// keyspace laid out differently than documented, or a corrupt key).
fn decode(key: &[u8]) -> Option<Vec<Component>> {
    let tag: &[u8; 3] = key.get(..3)?.try_into().ok()?;
    layouts(tag)
        .iter()
        .find_map(|parts| decode_as(key, tag, parts))
}

fn decode_as(key: &[u8], tag: &[u8; 3], parts: &[Part]) -> Option<Vec<Component>> {
    let mut reader = KeyReader::new(key, tag).ok()?;
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        out.push(match part {
            Part::Str | Part::Bytes => {
                let raw = reader.bytes().ok()?;
                match String::from_utf8(raw) {
                    Ok(s) => Component::Str(s),
                    Err(e) => Component::Bytes {
                        hex: hex(e.as_bytes()),
                    },
                }
            }
            Part::U64 => Component::U64(reader.u64().ok()?),
        });
    }
    reader.finish().ok()?;
    Some(out)
}

/// Parses `--prefix TAG`.
fn parse_tag(text: &str) -> Result<&'static [u8; 3]> {
    let upper = text.to_ascii_uppercase();
    match TAGS.iter().find(|tag| tag[..] == *upper.as_bytes()) {
        Some(tag) => Ok(tag),
        None => {
            let known: Vec<String> = TAGS
                .iter()
                .map(|t| String::from_utf8_lossy(&t[..]).into_owned())
                .collect();
            bail!(
                "unknown keyspace tag {text:?}; known tags: {}",
                known.join(", ")
            )
        }
    }
}

/// Runs `seq inspect`.
pub(crate) async fn run(ctx: &Ctx, prefix: Option<&str>, limit: Option<usize>) -> Result<()> {
    let range = match prefix {
        Some(tag) => KeyRange::prefix(&parse_tag(tag)?[..]),
        None => KeyRange::all(),
    };
    let mut options = ScanOptions::forward();
    if let Some(limit) = limit {
        options = options.with_limit(limit);
    }
    let storage = ctx.store.storage().clone();
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for item in storage.scan(range, options)? {
            let (key, value) = item?;
            let tag = match key.get(..3) {
                Some(t) if t.iter().all(u8::is_ascii_uppercase) => {
                    String::from_utf8_lossy(t).into_owned()
                }
                _ => "?".into(),
            };
            rows.push(Row {
                tag,
                components: decode(&key),
                key_hex: hex(&key),
                value_len: value.len(),
            });
        }
        Ok(rows)
    })
    .await??;
    ctx.out.emit(&rows, || {
        let count = rows.len();
        let table = output::table(
            &["tag", "key", "value bytes"],
            rows.iter().map(|row| {
                let key = match &row.components {
                    Some(parts) => parts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" / "),
                    None => format!("0x{}", row.key_hex),
                };
                [row.tag.clone(), key, row.value_len.to_string()]
            }),
        );
        format!("{table}\n{count} keys")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use seq_core::KeyBuilder;

    #[test]
    fn should_decode_a_segment_entry_key() {
        let key = KeyBuilder::new(keyspace::DAT)
            .str("orders")
            .str("eu")
            .u64(7)
            .build();
        let parts = decode(&key).unwrap();
        let shown: Vec<String> = parts.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["\"orders\"", "\"eu\"", "7"]);
    }

    #[test]
    fn should_not_decode_a_key_with_trailing_bytes() {
        let mut key = KeyBuilder::new(keyspace::TXN).u64(1).build();
        key.push(0);
        assert!(decode(&key).is_none());
        assert!(decode(b"zz").is_none());
    }

    #[test]
    fn should_decode_both_idempotency_layouts() {
        let lookup = KeyBuilder::new(keyspace::IDM)
            .str("s")
            .str("g")
            .str("k")
            .str("id")
            .build();
        let log = KeyBuilder::new(keyspace::IDM)
            .str("s")
            .str("g")
            .str("s")
            .u64(9)
            .build();
        assert_eq!(decode(&lookup).map(|p| p.len()), Some(4));
        assert_eq!(decode(&log).map(|p| p.len()), Some(4));
    }

    #[test]
    fn should_reject_unknown_tags() {
        assert!(parse_tag("dat").is_ok());
        assert!(parse_tag("XYZ").is_err());
    }
}
