//! Project automation for the seq workspace, run as `cargo xtask <command>`
//! (an alias in `.cargo/config.toml`).
//!
//! Every command runs from the workspace root, calls cargo through `$CARGO`,
//! echoes each command before running it, and exits non-zero with a message
//! naming the step that failed.

mod bench;
mod cmd;
mod crash;
mod fuzz;
mod loom;
mod prereq;
mod test;

use clap::{Parser, Subcommand};

/// Project automation for seq.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The one test command (what CI runs): prerequisites, fmt check, clippy,
    /// the whole workspace's tests, the loom models, then bounded crash and
    /// fuzz runs.
    Test {
        /// Skip `cargo fmt --check`.
        #[arg(long)]
        no_fmt: bool,
        /// Skip clippy.
        #[arg(long)]
        no_clippy: bool,
        /// Skip the loom models.
        #[arg(long)]
        no_loom: bool,
        /// Skip the bounded crash-harness and fuzz runs.
        #[arg(long)]
        no_reliability: bool,
        /// Only prerequisites and the workspace tests (same as
        /// `--no-fmt --no-clippy --no-loom --no-reliability`).
        #[arg(long)]
        quick: bool,
    },
    /// Run seq-stream's loom models (`tests/loom_*.rs`) with `--cfg loom`.
    ///
    /// LOOM_MAX_PREEMPTIONS defaults to 2. Builds into
    /// `$CARGO_TARGET_DIR/loom` (or `target/loom`), without RocksDB or redb.
    Loom {
        /// Arguments for the test binaries, e.g. a test-name filter.
        #[arg(last = true)]
        test_args: Vec<String>,
    },
    /// Check the system prerequisites (libclang, C/C++ compilers); installs
    /// missing ones with apt-get when run as root.
    Prereq,
    /// Benchmarks: seq against its raw backends, in one release process per
    /// backend (the `seq-bench` binary).
    ///
    /// Measures fdatasync/s, raw backend baselines, sequences, produce with
    /// 1/4/16/64 producers, consumes and follow latency; prints a markdown
    /// table per backend with ratios to the baselines and records per sync,
    /// and writes an SVG chart of produce throughput vs producers.
    Bench {
        /// Time-boxed short workloads (under 3 minutes for both backends,
        /// build excluded); the full run takes about 4 minutes per backend.
        #[arg(long)]
        quick: bool,
        /// Backend(s) to measure; rocksdb builds RocksDB's C++.
        #[arg(long, value_enum, default_value = "redb")]
        backend: bench::Backend,
        /// Also write the combined results as JSON here.
        #[arg(long, value_name = "PATH")]
        json: Option<std::path::PathBuf>,
        /// Where to write the SVG chart [default: target/bench/produce.svg].
        #[arg(long, value_name = "PATH")]
        svg: Option<std::path::PathBuf>,
    },
    /// The kill -9 crash harness: a child runs a mixed workload and reports
    /// each acknowledged write; it is SIGKILLed at a random moment and the
    /// reopened store is checked against what was acknowledged.
    ///
    /// Prints `crash: N iterations, N kills, 0 lost, 0 reissued` and exits
    /// non-zero on any violation. Reproduce a run with its printed seed.
    Crash {
        /// Backend(s) to crash; rocksdb builds RocksDB's C++.
        #[arg(long, value_enum, default_value = "redb")]
        backend: crash::Backend,
        /// Kill/reopen iterations per backend.
        #[arg(long, default_value_t = 100)]
        iterations: u64,
        /// Seed of the run (default: from the clock; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        /// Build the harness in release mode.
        #[arg(long)]
        release: bool,
        /// Keep the store directories (printed) for inspection.
        #[arg(long)]
        keep: bool,
    },
    /// Run the fuzz targets in `fuzz/` (decoders and the engine model).
    ///
    /// Uses libFuzzer through cargo-fuzz on the stable toolchain
    /// (`RUSTC_BOOTSTRAP=1`), installing cargo-fuzz when missing, and falls
    /// back to a builtin coverage-free loop when that cannot work.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Only this target (default: all).
        #[arg(long)]
        target: Option<String>,
        /// Fuzzing engine.
        #[arg(long, value_enum, default_value = "auto")]
        engine: fuzz::Engine,
        /// Seed (default: from the clock; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        /// Keep (and grow) the scratch corpus of earlier runs instead of
        /// starting from the committed seeds.
        #[arg(long)]
        keep_corpus: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test {
            no_fmt,
            no_clippy,
            no_loom,
            no_reliability,
            quick,
        } => test::run(test::Options {
            no_fmt: no_fmt || quick,
            no_clippy: no_clippy || quick,
            no_loom: no_loom || quick,
            no_reliability: no_reliability || quick,
        }),
        Command::Bench {
            quick,
            backend,
            json,
            svg,
        } => bench::run(&bench::Options {
            backend,
            quick,
            json,
            svg,
        }),
        Command::Loom { test_args } => loom::run(&test_args).map(drop),
        Command::Prereq => prereq::ensure().map(|()| println!("prereq: ok")),
        Command::Crash {
            backend,
            iterations,
            seed,
            release,
            keep,
        } => crash::run(&crash::Options {
            backend,
            iterations,
            seed,
            release,
            keep,
        }),
        Command::Fuzz {
            seconds,
            target,
            engine,
            seed,
            keep_corpus,
        } => fuzz::run(&fuzz::Options {
            seconds,
            target,
            engine,
            seed,
            keep_corpus,
        }),
    };
    if let Err(err) = result {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}
