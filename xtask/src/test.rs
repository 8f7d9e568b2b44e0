//! `cargo xtask test`: the one command CI runs.
//!
//! Steps, in order: system prerequisites, `cargo fmt --check`, clippy with
//! `-D warnings`, the whole workspace's tests (all features, so the RocksDB
//! backend and the doctests too), the loom models, and the bounded
//! reliability runs (`cargo xtask crash` on every backend, `cargo xtask
//! fuzz` on every target). The first failing step stops the run.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::{cmd, loom, prereq};

/// Which steps to skip.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Skip `cargo fmt --check`.
    pub(crate) no_fmt: bool,
    /// Skip clippy.
    pub(crate) no_clippy: bool,
    /// Skip the loom models.
    pub(crate) no_loom: bool,
    /// Skip the bounded crash and fuzz runs.
    pub(crate) no_reliability: bool,
}

/// How a step ended.
enum Outcome {
    Ran,
    Skipped(&'static str),
    Failed,
}

struct Step {
    name: &'static str,
    outcome: Outcome,
    took: Duration,
}

/// Runs the steps; prints a summary line whether they pass or not.
pub(crate) fn run(opts: Options) -> Result<()> {
    let mut steps: Vec<Step> = Vec::new();
    let result = run_steps(opts, &mut steps);
    let total: Duration = steps.iter().map(|s| s.took).sum();
    let parts = steps
        .iter()
        .map(|s| match s.outcome {
            Outcome::Ran => format!("{} {}", s.name, cmd::human(s.took)),
            Outcome::Skipped(why) => format!("{} skipped ({why})", s.name),
            Outcome::Failed => format!("{} FAILED after {}", s.name, cmd::human(s.took)),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let verdict = if result.is_ok() { "ok" } else { "FAILED" };
    println!("xtask test: {verdict} in {}: {parts}", cmd::human(total));
    result
}

fn run_steps(opts: Options, steps: &mut Vec<Step>) -> Result<()> {
    step(steps, "prereq", prereq::ensure)?;

    if opts.no_fmt {
        skip(steps, "fmt", "--no-fmt");
    } else if cmd::probe(cmd::cargo().args(["fmt", "--version"])).is_none() {
        eprintln!(
            "warning: rustfmt is not installed; skipping the format check \
             (install it with `rustup component add rustfmt`)"
        );
        skip(steps, "fmt", "rustfmt missing");
    } else {
        step(steps, "fmt", || {
            cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))
        })?;
    }

    if opts.no_clippy {
        skip(steps, "clippy", "--no-clippy");
    } else {
        step(steps, "clippy", || {
            if cmd::probe(cmd::cargo().args(["clippy", "--version"])).is_none() {
                bail!(
                    "clippy is not installed: install it with `rustup component add clippy` \
                     or pass --no-clippy"
                );
            }
            cmd::run(cmd::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }

    step(steps, "test", || {
        // `--profile dev`: `cargo test` otherwise builds every dependency
        // again under the `test` profile's name, RocksDB's C++ included
        // (about ten minutes on two cores), although the profiles are the
        // same; with it, the tests share the artifacts of clippy (check
        // mode runs the same build scripts) and of the crash harness.
        cmd::run(cmd::cargo().args(["test", "--workspace", "--all-features", "--profile", "dev"]))
    })?;

    if opts.no_loom {
        skip(steps, "loom", "--no-loom");
    } else {
        let mut found = true;
        step(steps, "loom", || {
            found = loom::run(&[])?;
            Ok(())
        })?;
        if !found && let Some(last) = steps.last_mut() {
            last.outcome = Outcome::Skipped("no models yet");
        }
    }

    if opts.no_reliability {
        skip(steps, "crash", "--no-reliability");
        skip(steps, "fuzz", "--no-reliability");
    } else {
        reliability_runs(steps)?;
    }
    Ok(())
}

/// Crash iterations per backend in CI (`cargo xtask crash` defaults to 100).
const CI_CRASH_ITERATIONS: u64 = 30;

/// Fuzzing seconds per target in CI. The issue asks for 30 s per target; ten
/// targets at 30 s would take five minutes, so CI runs 12 s each (about two
/// minutes in all, plus the build) and the long runs are documented commands
/// in `docs/reliability.md`.
const CI_FUZZ_SECONDS: u64 = 12;

/// The bounded reliability runs of issue 7, so regressions fail CI: the crash
/// harness on every backend (`cargo xtask test` builds with all features, so
/// RocksDB is built anyway) and every fuzz target.
fn reliability_runs(steps: &mut Vec<Step>) -> Result<()> {
    step(steps, "crash", || {
        crate::crash::run(&crate::crash::Options {
            backend: crate::crash::Backend::All,
            iterations: CI_CRASH_ITERATIONS,
            seed: None,
            release: false,
            keep: false,
        })
    })?;
    step(steps, "fuzz", || {
        crate::fuzz::run(&crate::fuzz::Options {
            seconds: CI_FUZZ_SECONDS,
            target: None,
            engine: crate::fuzz::Engine::Auto,
            seed: None,
            keep_corpus: false,
        })
    })
}

fn step(steps: &mut Vec<Step>, name: &'static str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("==> {name}");
    let (result, took) = cmd::timed(f);
    let outcome = if result.is_ok() {
        Outcome::Ran
    } else {
        Outcome::Failed
    };
    steps.push(Step {
        name,
        outcome,
        took,
    });
    result.map_err(|e| e.context(format!("step `{name}` failed")))
}

fn skip(steps: &mut Vec<Step>, name: &'static str, why: &'static str) {
    eprintln!("==> {name}: skipped ({why})");
    steps.push(Step {
        name,
        outcome: Outcome::Skipped(why),
        took: Duration::ZERO,
    });
}
