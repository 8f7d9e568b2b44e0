//! Streams: `produce`, `consume`, `peek SPACE SEGMENT`, `status`, `spaces`,
//! `segments`, `trim`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use seq_core::SpaceOffset;
use seq_stream::{
    Entry, EntryStream, Fence, ProduceOptions, Record, SegmentQuery, SegmentStatus, SpaceQuery,
    Store, Trim,
};
use serde::Serialize;

use crate::cli::{ConsumeArgs, ProduceArgs, TrimArgs};
use crate::context::{self, Ctx};
use crate::output::{self, hex, show_bytes, thousands, timestamp};

/// How often a following consume looks for new entries. The store is closed
/// in between so that other `seq` processes can produce to it.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A segment status for output.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    space: String,
    segment: String,
    first_sequence: u64,
    last_sequence: u64,
    first_timestamp: u64,
    last_timestamp: u64,
    count: u64,
}

impl From<&SegmentStatus> for Status {
    fn from(s: &SegmentStatus) -> Self {
        Self {
            space: s.space.clone(),
            segment: s.segment.clone(),
            first_sequence: s.first_sequence,
            last_sequence: s.last_sequence,
            first_timestamp: s.first_timestamp,
            last_timestamp: s.last_timestamp,
            count: s.count,
        }
    }
}

const STATUS_HEADERS: [&str; 7] = [
    "space",
    "segment",
    "first seq",
    "last seq",
    "entries",
    "first time",
    "last time",
];

fn status_row(s: &Status) -> [String; 7] {
    [
        s.space.clone(),
        s.segment.clone(),
        s.first_sequence.to_string(),
        s.last_sequence.to_string(),
        s.count.to_string(),
        timestamp(s.first_timestamp),
        timestamp(s.last_timestamp),
    ]
}

/// An entry for output.
#[derive(Debug, Serialize)]
struct EntryOut {
    space: String,
    segment: String,
    sequence: u64,
    timestamp: u64,
    time: String,
    /// Hex space offset: pass it to `consume --from` or `cursor commit`.
    offset: String,
    trx: TrxOut,
    /// The payload as text (when it is UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    /// The payload as hex (when it is not UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_hex: Option<String>,
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct TrxOut {
    id: String,
    node: String,
    number: u64,
}

impl From<&Entry> for EntryOut {
    fn from(e: &Entry) -> Self {
        let (payload, payload_hex) = match std::str::from_utf8(&e.payload) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(hex(&e.payload))),
        };
        Self {
            space: e.space.to_string(),
            segment: e.segment.to_string(),
            sequence: e.sequence,
            timestamp: e.timestamp,
            time: timestamp(e.timestamp),
            offset: e.offset().to_hex(),
            trx: TrxOut {
                id: e.trx.id.to_string(),
                node: e.trx.node.to_string(),
                number: e.trx.number,
            },
            payload,
            payload_hex,
            metadata: e.metadata.clone(),
        }
    }
}

/// One line per entry for a terminal.
fn entry_line(e: &Entry, with_offset: bool) -> String {
    let mut line = format!(
        "{:<12} {:>8}  {}  {}",
        e.segment,
        e.sequence,
        timestamp(e.timestamp),
        show_bytes(&e.payload)
    );
    if !e.metadata.is_empty() {
        let meta: Vec<String> = e.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!("  {{{}}}", meta.join(", ")));
    }
    if with_offset {
        line.push_str(&format!("  @{}", e.offset().to_hex()));
    }
    line
}

/// `seq produce SPACE SEGMENT`.
pub(crate) async fn produce(ctx: &Ctx, args: ProduceArgs) -> Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (reader, progress): (Box<dyn BufRead + Send>, ProgressBar) = match &args.file {
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = if ctx.out.is_json() {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(len)
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {bytes}/{total_bytes} {msg} ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            (Box::new(std::io::BufReader::new(file)), bar)
        }
        None => (
            Box::new(std::io::BufReader::new(std::io::stdin())),
            ProgressBar::hidden(),
        ),
    };
    // Typed lines go out one by one; piped input in batches.
    let batch_size = if args.file.is_none() && std::io::stdin().is_terminal() {
        1
    } else {
        args.batch
    };
    let mut options = ProduceOptions::default();
    if let Some((key, token)) = &args.fence {
        options = options.with_fence(Fence {
            key: key.clone(),
            token: *token,
        });
    }
    let mut next_expected = args.expect;
    let mut produced = 0u64;
    let mut first_sequence = None;
    let mut status = None;
    let mut batch = Vec::with_capacity(batch_size);
    let mut lines = reader.split(b'\n');
    loop {
        let line = lines
            .next()
            .transpose()
            .context("cannot read the records")?;
        let done = line.is_none();
        if let Some(mut line) = line {
            progress.inc(line.len() as u64 + 1);
            if line.ends_with(b"\r") {
                line.pop();
            }
            let mut record = Record::new(line);
            if let Some(seq) = &mut next_expected {
                record = record.with_sequence(*seq);
                *seq += 1;
            }
            for (k, v) in &args.meta {
                record = record.with_metadata(k.clone(), v.clone());
            }
            batch.push(record);
        }
        if batch.len() >= batch_size || (done && !batch.is_empty()) {
            let n = batch.len() as u64;
            let records = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            let new = ctx
                .store
                .produce(&args.space, &args.segment, records, options.clone())
                .await
                .with_context(|| {
                    format!(
                        "produce to {}/{} failed after {produced} records",
                        args.space, args.segment
                    )
                })?;
            first_sequence.get_or_insert(new.last_sequence + 1 - n);
            produced += n;
            progress.set_message(format!("{} records", thousands(produced)));
            status = Some(new);
        }
        if done {
            break;
        }
    }
    progress.finish_and_clear();
    let Some(status) = status else {
        bail!("no records to produce (stdin was empty; one record per line)");
    };
    #[derive(Serialize)]
    struct Produced {
        produced: u64,
        first_sequence: u64,
        last_sequence: u64,
        status: Status,
    }
    let out = Produced {
        produced,
        first_sequence: first_sequence.unwrap_or(status.last_sequence),
        last_sequence: status.last_sequence,
        status: Status::from(&status),
    };
    ctx.out.emit(&out, || {
        format!(
            "produced {} records to {}/{}: sequences {}..={}",
            thousands(out.produced),
            out.status.space,
            out.status.segment,
            out.first_sequence,
            out.last_sequence
        )
    })
}

/// Where a consume stands, to resume it after reopening the store.
#[derive(Debug, Clone)]
enum Position {
    /// A segment: the next sequence to read.
    Segment { segment: String, next: u64 },
    /// A space: strictly after this offset (`None`: from the start).
    Space(Option<SpaceOffset>),
}

fn open_stream(
    store: &Store,
    space: &str,
    position: &Position,
    limit: Option<u64>,
) -> Result<EntryStream> {
    Ok(match position {
        Position::Segment { segment, next } => store.consume_segment(
            space,
            segment,
            SegmentQuery {
                min_seq: *next,
                limit,
                ..SegmentQuery::default()
            },
        )?,
        Position::Space(offset) => store.consume_space(
            space,
            SpaceQuery {
                offset: offset.clone(),
                limit,
                ..SpaceQuery::default()
            },
        )?,
    })
}

/// `seq consume SPACE [SEGMENT] [--from ...] [--follow] [--limit N]`.
///
/// Takes the context by value: a following consume closes the store between
/// looks (so other processes can produce), and the store must not stay open
/// through another handle.
pub(crate) async fn consume(ctx: Ctx, args: ConsumeArgs) -> Result<()> {
    let mut position = match (&args.segment, &args.from) {
        (Some(segment), from) => {
            let next = match from {
                Some(text) => text.parse::<u64>().map_err(|_| {
                    anyhow::anyhow!(
                        "--from {text:?}: with a SEGMENT, --from takes a sequence number (e.g. --from 10)"
                    )
                })?,
                None => 1,
            };
            Position::Segment { segment: segment.clone(), next }
        }
        (None, Some(text)) => Position::Space(Some(SpaceOffset::from_hex(text).map_err(|e| {
            anyhow::anyhow!(
                "--from {text:?}: for a whole space, --from takes a hex offset as printed by `seq consume` ({e})"
            )
        })?)),
        (None, None) => Position::Space(None),
    };
    let with_offset = matches!(position, Position::Space(_));
    let show_progress =
        !ctx.out.is_json() && !std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let progress = if show_progress {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} entries ({per_sec}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut seen = 0u64;
    let mut store = Some(ctx.store);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let open = match store.take() {
            Some(open) => open,
            None => context::open_async(&ctx.location).await?,
        };
        let remaining = args.limit.map(|limit| limit - seen);
        let mut stream = open_stream(&open, &args.space, &position, remaining)?;
        let drained = loop {
            let next = tokio::select! {
                _ = &mut ctrl_c => break false,
                next = stream.next() => next,
            };
            let Some(entry) = next? else { break true };
            position = match position {
                Position::Segment { segment, .. } => Position::Segment {
                    segment,
                    next: entry.sequence + 1,
                },
                Position::Space(_) => Position::Space(Some(entry.offset())),
            };
            progress.suspend(|| {
                ctx.out
                    .item(&EntryOut::from(&entry), || entry_line(&entry, with_offset))
            })?;
            progress.inc(1);
            seen += 1;
        };
        drop(stream);
        open.close().await?;
        drop(open);
        let reached_limit = args.limit.is_some_and(|limit| seen >= limit);
        if !drained || !args.follow || reached_limit {
            break;
        }
        tokio::select! {
            _ = &mut ctrl_c => break,
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
    progress.finish_and_clear();
    if !ctx.out.is_json() && seen == 0 && !args.follow {
        eprintln!("no entries");
    }
    Ok(())
}

/// `seq peek SPACE SEGMENT`.
pub(crate) async fn peek(ctx: &Ctx, space: &str, segment: &str) -> Result<()> {
    let entry = ctx.store.peek(space, segment).await?;
    let out = EntryOut::from(&entry);
    ctx.out.emit(&out, || {
        if entry.sequence == 0 {
            return format!("{space}/{segment} has no entries");
        }
        let meta: Vec<String> = entry
            .metadata
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        output::fields([
            ("space", out.space.clone()),
            ("segment", out.segment.clone()),
            ("sequence", out.sequence.to_string()),
            ("time", out.time.clone()),
            ("commit", out.trx.number.to_string()),
            ("node", out.trx.node.clone()),
            ("payload", show_bytes(&entry.payload)),
            ("metadata", meta.join(", ")),
            ("offset", out.offset.clone()),
        ])
    })
}

/// `seq status SPACE SEGMENT`.
pub(crate) async fn status(ctx: &Ctx, space: &str, segment: &str) -> Result<()> {
    let status = Status::from(&ctx.store.status(space, segment).await?);
    ctx.out.emit(&status, || {
        output::table(&STATUS_HEADERS, [status_row(&status)])
    })
}

/// `seq spaces`.
pub(crate) async fn spaces(ctx: &Ctx) -> Result<()> {
    let spaces = ctx.store.list_spaces().await?;
    ctx.out.emit(&spaces, || {
        if spaces.is_empty() {
            "no spaces".into()
        } else {
            output::table(&["space"], spaces.iter().map(|s| [s.clone()]))
        }
    })
}

/// `seq segments SPACE`.
pub(crate) async fn segments(ctx: &Ctx, space: &str) -> Result<()> {
    let statuses: Vec<Status> = ctx
        .store
        .list_segments(space)
        .await?
        .iter()
        .map(Status::from)
        .collect();
    ctx.out.emit(&statuses, || {
        if statuses.is_empty() {
            format!("space {space:?} has no segments")
        } else {
            output::table(&STATUS_HEADERS, statuses.iter().map(status_row))
        }
    })
}

/// `seq trim SPACE SEGMENT (--before SEQ | --keep N | --older-than D)`.
pub(crate) async fn trim(ctx: &Ctx, args: TrimArgs) -> Result<()> {
    let rule = match (args.before, args.keep, args.older_than) {
        (Some(seq), None, None) => Trim::BeforeSequence(seq),
        (None, Some(n), None) => Trim::KeepLast(n),
        (None, None, Some(age)) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let cutoff = now.saturating_sub(age).as_micros();
            Trim::OlderThan(u64::try_from(cutoff).unwrap_or(u64::MAX))
        }
        _ => bail!("give exactly one of --before, --keep, --older-than"),
    };
    let report = ctx.store.trim(&args.space, &args.segment, rule).await?;
    #[derive(Serialize)]
    struct Trimmed {
        removed: u64,
        status: Status,
    }
    let out = Trimmed {
        removed: report.removed,
        status: Status::from(&report.status),
    };
    ctx.out.emit(&out, || {
        format!(
            "removed {} entries from {}/{}\n{}",
            thousands(out.removed),
            args.space,
            args.segment,
            output::table(&STATUS_HEADERS, [status_row(&out.status)])
        )
    })
}
