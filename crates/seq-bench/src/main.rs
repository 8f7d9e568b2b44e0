//! `seq-bench`: the measuring half of `cargo xtask bench`.
//!
//! * `seq-bench run --backend redb|rocksdb [--quick] [--only SECTION...]`
//!   runs every workload (or those of the sections named) for one backend
//!   in this (release-built) process, on fresh stores in a temporary
//!   directory, and prints the results as JSON on stdout (progress goes to
//!   stderr). The memory section re-runs this binary as a child that only
//!   consumes, to measure its peak RSS.
//! * `seq-bench etcd [--quick]` (feature `etcd`) starts a local 3-member
//!   etcd cluster and measures three stores at once beside the raw etcd
//!   transaction rate.
//! * `seq-bench report FILE...` reads such results and prints a markdown
//!   table per backend (absolute figures, ratios to the baselines, records
//!   per sync), writes the SVG chart of produce throughput against the
//!   number of producers, and optionally the combined JSON.
//!
//! Nothing here asserts a speed; the tests only cover formatting.

#[cfg(feature = "etcd")]
mod etcd;
mod memory;
mod model;
mod process;
mod report;
mod run;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::model::{BackendReport, Combined};

/// Benchmarks of seq against its raw backends.
#[derive(Debug, Parser)]
#[command(name = "seq-bench", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every workload on one backend; print JSON on stdout.
    Run {
        /// The backend to measure.
        #[arg(long, value_enum, default_value = "redb")]
        backend: run::Backend,
        /// Smaller workloads (the whole run well under 90 s).
        #[arg(long)]
        quick: bool,
        /// Directory for the stores (default: a temporary directory; it
        /// should be on the disk you care about, not a tmpfs).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Run only these sections (repeat or separate with commas).
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<run::Section>,
        /// The store's `group_wait` in microseconds (default: the store's
        /// default; 0 turns group pacing off, to compare).
        #[arg(long, value_name = "US")]
        group_wait_us: Option<u64>,
    },
    /// The memory workload's child: consume the filled segment of the store
    /// in `dir` and print its peak RSS as JSON.
    #[command(hide = true)]
    ConsumeChild {
        /// The backend of the store.
        #[arg(long, value_enum)]
        backend: run::Backend,
        /// The store's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Open redb with this cache size (bytes) instead of its default.
        #[arg(long)]
        redb_cache: Option<usize>,
    },
    /// seq on a local 3-member etcd cluster, three stores at once, beside
    /// the raw etcd transaction rate (needs the `etcd` feature).
    #[cfg(feature = "etcd")]
    Etcd {
        /// 3-second windows instead of 10.
        #[arg(long)]
        quick: bool,
    },
    /// Print markdown tables and write the chart from `run` outputs.
    Report {
        /// JSON files written by `seq-bench run`.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Write the combined data here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the SVG chart here.
        #[arg(long, default_value = "target/bench/produce.svg")]
        svg: PathBuf,
    },
}

fn main() {
    let result = match Cli::parse().command {
        Command::Run {
            backend,
            quick,
            dir,
            only,
            group_wait_us,
        } => run_command(backend, quick, &only, dir, group_wait_us),
        Command::ConsumeChild {
            backend,
            dir,
            redb_cache,
        } => memory::child(backend, &dir, redb_cache),
        Command::Report { inputs, json, svg } => report_command(&inputs, json, &svg),
        #[cfg(feature = "etcd")]
        Command::Etcd { quick } => etcd::run(quick),
    };
    if let Err(err) = result {
        eprintln!("seq-bench: error: {err:#}");
        std::process::exit(1);
    }
}

fn run_command(
    backend: run::Backend,
    quick: bool,
    only: &[run::Section],
    dir: Option<PathBuf>,
    group_wait_us: Option<u64>,
) -> Result<()> {
    let mut options = seq_stream::StoreOptions::default();
    if let Some(us) = group_wait_us {
        options.group_wait = std::time::Duration::from_micros(us);
    }
    let temp = match &dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            tempfile::tempdir_in(dir)
        }
        None => tempfile::tempdir(),
    }
    .context("creating a temporary directory")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = runtime.block_on(run::run(backend, quick, only, temp.path(), options))?;
    drop(runtime);
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    Ok(())
}

fn report_command(inputs: &[PathBuf], json: Option<PathBuf>, svg: &PathBuf) -> Result<()> {
    let mut backends = Vec::new();
    for input in inputs {
        let text = std::fs::read_to_string(input)
            .with_context(|| format!("reading {}", input.display()))?;
        let report: BackendReport =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", input.display()))?;
        backends.push(report);
    }
    for report in &backends {
        println!("{}", report::markdown(report));
    }
    println!("{}\n", report::RATIO_NOTE);
    let names: Vec<&str> = backends.iter().map(|b| b.backend.as_str()).collect();
    let title = format!("seq produce throughput, synced ({})", names.join(" vs "));
    write(
        svg,
        &report::svg(&report::produce_series(&backends), &title),
    )?;
    println!("chart: {}", svg.display());
    if let Some(path) = json {
        let combined = Combined {
            note: report::RATIO_NOTE.to_owned(),
            backends,
        };
        write(
            &path,
            &format!("{}\n", serde_json::to_string_pretty(&combined)?),
        )?;
        println!("json: {}", path.display());
    }
    Ok(())
}

fn write(path: &PathBuf, contents: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
