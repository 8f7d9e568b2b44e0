//! Cursors: `cursor commit`, `cursor show`, `cursor lag`, `cursor list`.

use anyhow::{Result, anyhow};
use seq_core::SpaceOffset;
use seq_stream::{Cursor, CursorPosition};
use serde::Serialize;

use crate::cli::CursorCommand;
use crate::context::Ctx;
use crate::output::{self, timestamp};

/// One position of a cursor for output.
#[derive(Debug, Serialize)]
struct PositionOut {
    space: String,
    /// Set for a per-segment position.
    #[serde(skip_serializing_if = "Option::is_none")]
    segment: Option<String>,
    /// The hex offset (space) or the sequence (segment) of the last entry
    /// consumed.
    position: String,
}

/// A cursor for output.
#[derive(Debug, Serialize)]
struct CursorOut {
    name: String,
    commit: u64,
    updated_at: u64,
    positions: Vec<PositionOut>,
}

impl From<&Cursor> for CursorOut {
    fn from(c: &Cursor) -> Self {
        let spaces = c.position.spaces.iter().map(|(space, offset)| PositionOut {
            space: space.clone(),
            segment: None,
            position: offset.to_hex(),
        });
        let segments = c
            .position
            .segments
            .iter()
            .map(|((space, segment), seq)| PositionOut {
                space: space.clone(),
                segment: Some(segment.clone()),
                position: seq.to_string(),
            });
        Self {
            name: c.name.clone(),
            commit: c.commit,
            updated_at: c.updated_at,
            positions: spaces.chain(segments).collect(),
        }
    }
}

fn positions_table(c: &CursorOut) -> String {
    output::table(
        &["space", "segment", "last consumed (offset or sequence)"],
        c.positions.iter().map(|p| {
            [
                p.space.clone(),
                p.segment.clone().unwrap_or_else(|| "*".into()),
                p.position.clone(),
            ]
        }),
    )
}

/// Runs a `seq cursor ...` command.
pub(crate) async fn run(ctx: &Ctx, command: CursorCommand) -> Result<()> {
    match command {
        CursorCommand::Commit {
            name,
            space,
            offset,
            segment,
        } => commit(ctx, &name, &space, &offset, segment).await,
        CursorCommand::Show { name } => show(ctx, &name).await,
        CursorCommand::Lag { name } => lag(ctx, &name).await,
        CursorCommand::List => list(ctx).await,
    }
}

async fn commit(
    ctx: &Ctx,
    name: &str,
    space: &str,
    offset: &str,
    segment: Option<String>,
) -> Result<()> {
    let position = match segment {
        Some(segment) => {
            let seq: u64 = offset.parse().map_err(|_| {
                anyhow!(
                    "{offset:?}: with --segment, OFFSET is the sequence of the last entry consumed"
                )
            })?;
            CursorPosition::new().with_segment(space, segment, seq)
        }
        None => {
            let offset = SpaceOffset::from_hex(offset).map_err(|e| {
                anyhow!("{offset:?} is not a space offset (the hex `@...` printed by `seq consume SPACE`): {e}")
            })?;
            CursorPosition::new().with_space(space, offset)
        }
    };
    let cursor = CursorOut::from(&ctx.store.commit_cursor(name, position).await?);
    ctx.out.emit(&cursor, || {
        format!("committed cursor {name:?}\n{}", positions_table(&cursor))
    })
}

async fn show(ctx: &Ctx, name: &str) -> Result<()> {
    let cursor = ctx
        .store
        .load_cursor(name)
        .await?
        .ok_or_else(|| anyhow!("not found: cursor {name:?}"))?;
    let out = CursorOut::from(&cursor);
    ctx.out.emit(&out, || {
        format!(
            "cursor {name:?} (commit {}, updated {})\n{}",
            out.commit,
            timestamp(out.updated_at),
            positions_table(&out)
        )
    })
}

async fn lag(ctx: &Ctx, name: &str) -> Result<()> {
    let lag = ctx.store.cursor_lag(name).await?;
    #[derive(Serialize)]
    struct LagRow {
        space: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        segment: Option<String>,
        behind: u64,
    }
    #[derive(Serialize)]
    struct LagOut {
        name: String,
        total: u64,
        lag: Vec<LagRow>,
    }
    let rows = lag
        .spaces
        .iter()
        .map(|(space, n)| LagRow {
            space: space.clone(),
            segment: None,
            behind: *n,
        })
        .chain(lag.segments.iter().map(|((space, segment), n)| LagRow {
            space: space.clone(),
            segment: Some(segment.clone()),
            behind: *n,
        }))
        .collect();
    let out = LagOut {
        name: name.to_owned(),
        total: lag.total(),
        lag: rows,
    };
    ctx.out.emit(&out, || {
        format!(
            "{}\ncursor {name:?} is {} entries behind",
            output::table(
                &["space", "segment", "entries behind"],
                out.lag.iter().map(|r| {
                    [
                        r.space.clone(),
                        r.segment.clone().unwrap_or_else(|| "*".into()),
                        r.behind.to_string(),
                    ]
                }),
            ),
            out.total
        )
    })
}

async fn list(ctx: &Ctx) -> Result<()> {
    let cursors: Vec<CursorOut> = ctx
        .store
        .list_cursors()
        .await?
        .iter()
        .map(CursorOut::from)
        .collect();
    ctx.out.emit(&cursors, || {
        if cursors.is_empty() {
            return "no cursors".into();
        }
        output::table(
            &["name", "positions", "commit", "updated"],
            cursors.iter().map(|c| {
                [
                    c.name.clone(),
                    c.positions.len().to_string(),
                    c.commit.to_string(),
                    timestamp(c.updated_at),
                ]
            }),
        )
    })
}
