//! Named sequences: `create`, `next`, `peek NAME`, `advance-to`, `list`,
//! `drop`.

use anyhow::Result;
use seq_core::SequenceOptions;
use seq_stream::SequenceInfo;
use serde::Serialize;

use crate::cli::CreateArgs;
use crate::context::Ctx;
use crate::output;

/// A sequence as `create` and `list` print it.
#[derive(Debug, Serialize)]
struct Info {
    name: String,
    start: i64,
    increment: i64,
    min: i64,
    max: i64,
    cycle: bool,
    block_size: u64,
    /// Ticks below this may have been handed out; a reopen resumes here.
    reserved_end: u64,
    gap_free: bool,
}

impl From<&SequenceInfo> for Info {
    fn from(info: &SequenceInfo) -> Self {
        Self {
            name: info.name.clone(),
            start: info.def.start,
            increment: info.def.increment,
            min: info.def.min,
            max: info.def.max,
            cycle: info.def.cycle,
            block_size: info.def.block_size,
            reserved_end: info.reserved_end,
            gap_free: info.is_gap_free(),
        }
    }
}

const INFO_HEADERS: [&str; 8] = [
    "name",
    "start",
    "increment",
    "min",
    "max",
    "cycle",
    "block size",
    "reserved ticks",
];

fn info_row(info: &Info) -> [String; 8] {
    [
        info.name.clone(),
        info.start.to_string(),
        info.increment.to_string(),
        info.min.to_string(),
        info.max.to_string(),
        info.cycle.to_string(),
        info.block_size.to_string(),
        info.reserved_end.to_string(),
    ]
}

/// `seq create`.
pub(crate) async fn create(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    let options = SequenceOptions {
        start: args.start,
        increment: args.increment,
        min: args.min,
        max: args.max,
        cycle: args.cycle,
        block_size: args.block_size,
    };
    let info = Info::from(&ctx.store.create_sequence(&args.name, options).await?);
    ctx.out.emit(&info, || {
        format!(
            "created sequence {:?}\n{}",
            info.name,
            output::table(&INFO_HEADERS, [info_row(&info)])
        )
    })
}

/// `seq next NAME [-n N]`: one value per line (a contiguous range for
/// `-n`); JSON gives the first and last value and the count.
pub(crate) async fn next(ctx: &Ctx, name: &str, count: u64) -> Result<()> {
    let sequence = ctx.store.sequence(name).await?;
    let range = sequence.next_n(count).await?;
    #[derive(Serialize)]
    struct Taken<'a> {
        name: &'a str,
        first: i64,
        last: i64,
        count: u64,
    }
    let taken = Taken {
        name,
        first: range.first(),
        last: range.last(),
        count: range.len(),
    };
    if ctx.out.is_json() {
        return ctx.out.emit(&taken, String::new);
    }
    let mut text = String::new();
    for (i, value) in range.into_iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&value.to_string());
        if text.len() >= 64 * 1024 {
            ctx.out.write(&text)?;
            text.clear();
        }
    }
    ctx.out.line(&text)
}

/// `seq peek NAME`.
pub(crate) async fn peek(ctx: &Ctx, name: &str) -> Result<()> {
    let sequence = ctx.store.sequence(name).await?;
    let next = sequence.peek()?;
    #[derive(Serialize)]
    struct Peeked<'a> {
        name: &'a str,
        next: i64,
    }
    ctx.out.emit(&Peeked { name, next }, || next.to_string())
}

/// `seq advance-to NAME VALUE`.
pub(crate) async fn advance_to(ctx: &Ctx, name: &str, value: i64) -> Result<()> {
    let sequence = ctx.store.sequence(name).await?;
    sequence.advance_to(value).await?;
    let next = sequence.peek()?;
    #[derive(Serialize)]
    struct Advanced<'a> {
        name: &'a str,
        advanced_to: i64,
        next: i64,
    }
    ctx.out.emit(
        &Advanced {
            name,
            advanced_to: value,
            next,
        },
        || format!("advanced {name:?} to {value}; the next value is {next}"),
    )
}

/// `seq list`.
pub(crate) async fn list(ctx: &Ctx) -> Result<()> {
    let infos: Vec<Info> = ctx
        .store
        .list_sequences()
        .await?
        .iter()
        .map(Info::from)
        .collect();
    ctx.out.emit(&infos, || {
        if infos.is_empty() {
            "no sequences".into()
        } else {
            output::table(&INFO_HEADERS, infos.iter().map(info_row))
        }
    })
}

/// `seq drop NAME`.
pub(crate) async fn drop(ctx: &Ctx, name: &str) -> Result<()> {
    ctx.store.drop_sequence(name).await?;
    #[derive(Serialize)]
    struct Dropped<'a> {
        dropped: &'a str,
    }
    ctx.out.emit(&Dropped { dropped: name }, || {
        format!("dropped sequence {name:?}")
    })
}
