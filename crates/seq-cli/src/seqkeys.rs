//! Sequence keys: `put-seq`, `get-seq`, `range-seq`, `delete-seq`,
//! `watch-seq`.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context as _, Result};
use seq_stream::{SequencedRecord, Store};
use serde::Serialize;

use crate::context::{self, Ctx};
use crate::output::{self, show_bytes};

/// How often `watch-seq` looks for new keys. The store is closed in between
/// so that other `seq` processes can write to it.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// `seq put-seq PREFIX --deltas ... [VALUE]`.
pub(crate) async fn put(
    ctx: &Ctx,
    prefix: &str,
    deltas: &[u64],
    value: Option<String>,
) -> Result<()> {
    let value: Vec<u8> = match value {
        Some(value) => value.into_bytes(),
        None => read_stdin_value()?,
    };
    let (key, version) = ctx.store.put_sequenced(prefix, value, deltas).await?;
    #[derive(Serialize)]
    struct Put<'a> {
        key: &'a str,
        version: u64,
    }
    ctx.out.emit(&Put { key: &key, version }, || key.clone())
}

/// The whole of stdin, less one trailing newline (`echo v | seq put-seq p`
/// stores `v`).
fn read_stdin_value() -> Result<Vec<u8>> {
    let mut value = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut value)
        .context("cannot read the value from stdin")?;
    if value.ends_with(b"\n") {
        value.pop();
        if value.ends_with(b"\r") {
            value.pop();
        }
    }
    Ok(value)
}

/// A sequenced record for output.
#[derive(Debug, Serialize)]
struct Row {
    key: String,
    version: u64,
    value: String,
}

impl From<&SequencedRecord> for Row {
    fn from(record: &SequencedRecord) -> Self {
        Self {
            key: record.key.clone(),
            version: record.version,
            value: show_bytes(&record.value),
        }
    }
}

/// `seq get-seq KEY`.
pub(crate) async fn get(ctx: &Ctx, key: &str) -> Result<()> {
    let record = ctx
        .store
        .get_sequenced(key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no sequence key {key:?}"))?;
    let row = Row::from(&record);
    ctx.out.emit(&row, || {
        output::fields([
            ("key", row.key.clone()),
            ("version", row.version.to_string()),
            ("value", row.value.clone()),
        ])
    })
}

/// `seq range-seq PREFIX [--limit N]`.
pub(crate) async fn range(ctx: &Ctx, prefix: &str, limit: usize) -> Result<()> {
    let rows: Vec<Row> = ctx
        .store
        .range_sequenced(prefix, limit)
        .await?
        .iter()
        .map(Row::from)
        .collect();
    ctx.out.emit(&rows, || {
        if rows.is_empty() {
            format!("no keys with prefix {prefix:?}")
        } else {
            output::table(
                &["key", "version", "value"],
                rows.iter()
                    .map(|r| [r.key.clone(), r.version.to_string(), r.value.clone()]),
            )
        }
    })
}

/// `seq delete-seq KEY`.
pub(crate) async fn delete(ctx: &Ctx, key: &str) -> Result<()> {
    if !ctx.store.delete_sequenced(key).await? {
        anyhow::bail!("no sequence key {key:?}");
    }
    #[derive(Serialize)]
    struct Deleted<'a> {
        deleted: &'a str,
    }
    ctx.out.emit(&Deleted { deleted: key }, || {
        format!("deleted {key:?} (its suffix is never reused)")
    })
}

/// The highest key of `prefix` now, if any.
async fn highest(store: &Store, prefix: &str) -> Result<Option<String>> {
    let mut updates = store.sequence_updates(prefix).await?;
    // The current highest key, when there is one, is ready at once.
    match tokio::time::timeout(Duration::from_millis(50), updates.next()).await {
        Ok(Some(key)) => Ok(Some(key?)),
        Ok(None) | Err(_) => Ok(None),
    }
}

/// `seq watch-seq PREFIX [--limit N]`: the current highest key, then each
/// new highest key (keys created between two looks coalesce to the latest),
/// until Ctrl-C or `limit` keys.
///
/// Takes the context by value: the store is closed between looks.
pub(crate) async fn watch(ctx: Ctx, prefix: &str, limit: Option<u64>) -> Result<()> {
    #[derive(Serialize)]
    struct Key<'a> {
        key: &'a str,
    }
    let mut last: Option<String> = None;
    let mut printed = 0u64;
    let mut store = Some(ctx.store);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let current = match store.take() {
            Some(open) => {
                let found = highest(&open, prefix).await;
                open.close().await?;
                found?
            }
            None => {
                let open = context::open_async(&ctx.location).await?;
                let found = highest(&open, prefix).await;
                open.close().await?;
                found?
            }
        };
        if let Some(key) = current
            && last.as_ref().is_none_or(|seen| key > *seen)
        {
            ctx.out.item(&Key { key: &key }, || key.clone())?;
            printed += 1;
            last = Some(key);
            if limit.is_some_and(|limit| printed >= limit) {
                return Ok(());
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}
