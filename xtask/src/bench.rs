//! `cargo xtask bench`: seq against its raw backends, side by side.
//!
//! The measuring happens in the release-built `seq-bench` binary
//! (crates/seq-bench), never in xtask: this command builds it (with the
//! `rocksdb` feature when that backend is asked for), runs
//! `seq-bench run --backend B` once per backend with its JSON stdout saved
//! to `target/bench/B.json`, then `seq-bench report` prints a markdown
//! table per backend, writes the SVG chart and, with `--json`, the combined
//! data. `--backend etcd` instead runs `seq-bench etcd` (feature `etcd`):
//! a local 3-member etcd cluster, three stores at once beside the raw etcd
//! transaction rate, its JSON saved to `target/bench/etcd.json`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Which backends to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// The embedded redb backend (default build).
    Redb,
    /// The RocksDB backend (builds RocksDB's C++).
    Rocksdb,
    /// Both embedded backends, one process each, then one report.
    All,
    /// A local 3-member etcd cluster (Debian's etcd-server), three stores
    /// at once.
    Etcd,
}

impl Backend {
    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Redb => &["redb"],
            Self::Rocksdb => &["rocksdb"],
            Self::All => &["redb", "rocksdb"],
            Self::Etcd => &["etcd"],
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
    /// Smaller, time-boxed workloads (under 3 minutes for both backends).
    pub(crate) quick: bool,
    /// Where to write the combined JSON.
    pub(crate) json: Option<PathBuf>,
    /// Where to write the SVG chart (default `target/bench/produce.svg`).
    pub(crate) svg: Option<PathBuf>,
}

/// Builds `seq-bench`, runs it per backend and prints the report.
pub(crate) fn run(opts: &Options) -> Result<()> {
    let root = cmd::workspace_root();
    let out_dir = root.join("target").join("bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    if opts.backend == Backend::Etcd {
        return run_etcd(opts, &out_dir);
    }
    let features: &[&str] = if opts.backend.needs_rocksdb() {
        &["--features", "rocksdb"]
    } else {
        &[]
    };

    let mut build = cmd::cargo();
    build
        .args(["build", "--release", "-p", "seq-bench"])
        .args(features);
    cmd::run(&mut build)?;

    let started = std::time::Instant::now();
    let mut inputs = Vec::new();
    for backend in opts.backend.names() {
        let mut run = cmd::cargo();
        run.args(["run", "--quiet", "--release", "-p", "seq-bench"])
            .args(features)
            .args(["--", "run", "--backend", backend]);
        if opts.quick {
            run.arg("--quick");
        }
        let path = out_dir.join(format!("{backend}.json"));
        capture(&mut run, &path)?;
        inputs.push(path);
    }
    let measured = started.elapsed();

    let svg = opts
        .svg
        .clone()
        .unwrap_or_else(|| out_dir.join("produce.svg"));
    let mut report = cmd::cargo();
    report
        .args(["run", "--quiet", "--release", "-p", "seq-bench"])
        .args(features)
        .args(["--", "report"])
        .args(&inputs)
        .arg("--svg")
        .arg(absolute(&svg)?);
    if let Some(json) = &opts.json {
        report.arg("--json").arg(absolute(json)?);
    }
    cmd::run(&mut report)?;
    println!(
        "bench: {} measured in {} (build excluded)",
        opts.backend.names().join(" + "),
        cmd::human(measured)
    );
    Ok(())
}

/// `--backend etcd`: `seq-bench etcd`, whose table goes to stderr and JSON
/// to `target/bench/etcd.json` (and `--json`, when given).
fn run_etcd(opts: &Options, out_dir: &Path) -> Result<()> {
    crate::prereq::ensure()?;
    let mut run = cmd::cargo();
    run.args(["run", "--quiet", "--release", "-p", "seq-bench"])
        .args(["--features", "etcd", "--", "etcd"]);
    if opts.quick {
        run.arg("--quick");
    }
    let path = out_dir.join("etcd.json");
    let started = std::time::Instant::now();
    capture(&mut run, &path)?;
    if let Some(json) = &opts.json {
        std::fs::copy(&path, json).with_context(|| format!("writing {}", json.display()))?;
    }
    println!("bench: etcd measured in {}", cmd::human(started.elapsed()));
    Ok(())
}

/// Runs `cmd` with stderr inherited (progress) and its stdout saved to
/// `path`; fails if it exits non-zero.
fn capture(command: &mut std::process::Command, path: &Path) -> Result<()> {
    let line = cmd::render(command);
    eprintln!("$ {line} > {}", path.display());
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed ({})", output.status);
    }
    std::fs::write(path, &output.stdout).with_context(|| format!("writing {}", path.display()))
}

/// `path` made absolute against the current directory (the report runs
/// from the workspace root, the user may not).
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("reading the current directory")?
            .join(path))
    }
}
