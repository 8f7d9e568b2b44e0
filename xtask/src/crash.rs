//! `cargo xtask crash`: the kill -9 crash harness.
//!
//! The harness itself is the `seq-crash` binary (crates/seq-crash): its
//! parent mode spawns itself as a workload child, SIGKILLs it at a seeded
//! random moment, reopens the store in-process and checks every invariant
//! against what the child acknowledged. This command only builds and runs it,
//! with every feature (RocksDB included) when that backend is asked for.

use anyhow::Result;

use crate::cmd;

/// Which backends to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// The embedded redb backend (default build).
    Redb,
    /// The RocksDB backend (builds RocksDB's C++).
    Rocksdb,
    /// Both, one after the other.
    All,
}

impl Backend {
    fn as_str(self) -> &'static str {
        match self {
            Self::Redb => "redb",
            Self::Rocksdb => "rocksdb",
            Self::All => "all",
        }
    }

    fn needs_rocksdb(self) -> bool {
        matches!(self, Self::Rocksdb | Self::All)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The backend(s).
    pub(crate) backend: Backend,
    /// Kill/reopen iterations per backend.
    pub(crate) iterations: u64,
    /// Seed (`None` = derived from the clock; printed either way).
    pub(crate) seed: Option<u64>,
    /// Build the harness in release mode.
    pub(crate) release: bool,
    /// Keep the store directories for inspection.
    pub(crate) keep: bool,
}

/// Builds and runs the harness; its exit code is the verdict.
pub(crate) fn run(opts: &Options) -> Result<()> {
    // The harness is built with the selection `cargo clippy` and `cargo
    // test --workspace --all-features` use (every binary, every feature):
    // `-p seq-crash` alone unifies the build scripts' dependencies with
    // other features, and cargo would compile RocksDB's C++ once more.
    let mut build = cmd::cargo();
    build.args(["build", "--quiet", "--workspace", "--bins"]);
    if opts.backend.needs_rocksdb() {
        build.arg("--all-features");
    }
    if opts.release {
        build.arg("--release");
    }
    cmd::run(&mut build)?;

    let profile = if opts.release { "release" } else { "debug" };
    let binary = cmd::target_dir_override()?
        .unwrap_or_else(|| cmd::workspace_root().join("target"))
        .join(profile)
        .join(format!("seq-crash{}", std::env::consts::EXE_SUFFIX));
    let mut harness = cmd::program(&binary);
    harness.args(["run", "--backend", opts.backend.as_str()]);
    harness.args(["--iterations", &opts.iterations.to_string()]);
    if let Some(seed) = opts.seed {
        harness.args(["--seed", &seed.to_string()]);
    }
    if opts.keep {
        harness.arg("--keep");
    }
    cmd::run(&mut harness)
}
