//! `seq`: durable, strictly monotonic sequence numbers and ordered streams
//! from a terminal.
//!
//! Every command works on one store directory (`--store DIR`, default
//! `./seq-data`) on redb (the default) or RocksDB (`--backend rocksdb`, when
//! built with the `rocksdb` feature). Results print as tables, or as JSON with
//! `--json`.
//!
//! # Commands
//!
//! * **Sequences** — `create NAME [--start --increment --min --max --cycle
//!   --block-size]`, `next NAME [-n N]`, `peek NAME`, `advance-to NAME VALUE`,
//!   `list`, `drop NAME`.
//! * **Sequence keys** — `put-seq PREFIX --deltas 1,1 [VALUE]` (the value from
//!   the argument or stdin), `get-seq KEY`, `range-seq PREFIX`, `delete-seq
//!   KEY` and `watch-seq PREFIX [--limit N]`.
//! * **Streams** — `produce SPACE SEGMENT` (one record per stdin line, or
//!   `--file PATH` with a progress bar; `--meta k=v`), `consume SPACE [SEGMENT]
//!   [--from OFFSET_HEX|SEQ] [--follow] [--limit N]`, `peek SPACE SEGMENT`,
//!   `status SPACE SEGMENT`, `spaces`, `segments SPACE`, `trim SPACE SEGMENT
//!   (--before SEQ | --keep N | --older-than DURATION)`.
//! * **Cursors** — `cursor commit NAME SPACE OFFSET`, `cursor show NAME`,
//!   `cursor lag NAME`, `cursor list`.
//! * **Leases** — `lease KEY --ttl 10s [--hold-for DURATION]` holds a lease
//!   and prints its fencing token until interrupted; `leases` lists them;
//!   `produce --fence KEY:TOKEN` writes only while the token is current.
//! * **Debugging** — `inspect [--prefix TAG]` dumps the raw key layout.
//! * **`demo`** — runs a realistic scenario end to end on a fresh store and
//!   prints what happened and the throughput it saw.
//!
//! # One process at a time
//!
//! An embedded store is open in one process at a time. Commands wait (up to
//! `SEQ_OPEN_TIMEOUT_MS`, default 10 s) for another `seq` holding it; the
//! following commands (`consume --follow`, `watch-seq`) poll and close the
//! store between looks so that other processes can write meanwhile.
//!
//! # Exit codes
//!
//! `0` success, `1` the operation failed (printed as `error: ...`), `2` a
//! usage error (reported by clap).

// clap turns doc comments into `--help` text, where `<counter>` and the like
// are meant literally, not as HTML.
#![allow(rustdoc::invalid_html_tags)]

mod cli;
mod context;
mod cursors;
mod demo;
mod inspect;
mod leases;
mod output;
mod seqkeys;
mod sequences;
mod streams;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Ctx;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version print and exit 0; usage errors exit 2.
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A reader closed our stdout (e.g. `seq consume ... | head`): not an error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Opens the store, runs the command, closes the store.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Output::new(cli.json);
    if let Command::Demo(args) = &cli.command {
        return demo::run(args, cli.store.as_deref(), cli.location(), out).await;
    }
    let location = cli.location();
    let store = context::open(&location, cli.command.creates_store())?;
    let ctx = Ctx {
        store,
        out,
        location,
    };
    match cli.command {
        // These close and reopen the store themselves.
        Command::Consume(args) => streams::consume(ctx, args).await,
        Command::WatchSeq { prefix, limit } => seqkeys::watch(ctx, &prefix, limit).await,
        command => {
            let result = dispatch(&ctx, command).await;
            let closed = ctx.store.close().await;
            result?;
            closed?;
            Ok(())
        }
    }
}

async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Create(args) => sequences::create(ctx, args).await,
        Command::Next { name, count } => sequences::next(ctx, &name, count).await,
        Command::Peek {
            name,
            segment: None,
        } => sequences::peek(ctx, &name).await,
        Command::AdvanceTo { name, value } => sequences::advance_to(ctx, &name, value).await,
        Command::List => sequences::list(ctx).await,
        Command::Drop { name } => sequences::drop(ctx, &name).await,
        Command::PutSeq {
            prefix,
            deltas,
            value,
        } => seqkeys::put(ctx, &prefix, &deltas, value).await,
        Command::GetSeq { key } => seqkeys::get(ctx, &key).await,
        Command::RangeSeq { prefix, limit } => seqkeys::range(ctx, &prefix, limit).await,
        Command::DeleteSeq { key } => seqkeys::delete(ctx, &key).await,
        Command::Peek {
            name,
            segment: Some(segment),
        } => streams::peek(ctx, &name, &segment).await,
        Command::Produce(args) => streams::produce(ctx, args).await,
        Command::Status { space, segment } => streams::status(ctx, &space, &segment).await,
        Command::Spaces => streams::spaces(ctx).await,
        Command::Segments { space } => streams::segments(ctx, &space).await,
        Command::Trim(args) => streams::trim(ctx, args).await,
        Command::Cursor(command) => cursors::run(ctx, command).await,
        Command::Lease { key, ttl, hold_for } => leases::hold(ctx, &key, ttl, hold_for).await,
        Command::Leases => leases::list(ctx).await,
        Command::Inspect { prefix, limit } => inspect::run(ctx, prefix.as_deref(), limit).await,
        Command::Demo(_) | Command::Consume(_) | Command::WatchSeq { .. } => {
            Err(anyhow::anyhow!("this command manages its own store"))
        }
    }
}
