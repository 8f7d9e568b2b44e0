//! `cargo xtask loom`: the loom models of seq-stream's concurrency.
//!
//! The models live in `crates/seq-stream/tests/loom_*.rs` (the writer's
//! handoff, through its public module) and in the library's own tests,
//! named `loom_model` (a consume's read-ahead, which is private). Both are
//! built with
//! `--cfg loom`, in release mode, without default features (so neither
//! RocksDB nor redb is compiled), in a target directory of their own so the
//! `cfg(loom)` build never invalidates the normal one.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cmd;

/// Default `LOOM_MAX_PREEMPTIONS` when the environment does not set one.
const DEFAULT_MAX_PREEMPTIONS: &str = "2";

/// Runs the loom models; `test_args` go to the test binaries (after `--`).
/// Returns `false` (after saying so) when no model exists yet.
pub(crate) fn run(test_args: &[String]) -> Result<bool> {
    let models = models()?;
    if models.is_empty() {
        println!("loom: no loom models found");
        return Ok(false);
    }
    eprintln!(
        "loom: models: {} and seq-stream's {LIB_MODELS} tests",
        models.join(", ")
    );

    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !rustflags.split_whitespace().any(|f| f == "--cfg=loom") && !rustflags.contains("--cfg loom")
    {
        if !rustflags.trim().is_empty() {
            rustflags.push(' ');
        }
        rustflags.push_str("--cfg loom");
    }
    let preemptions = std::env::var_os("LOOM_MAX_PREEMPTIONS")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from(DEFAULT_MAX_PREEMPTIONS));

    let target = target_dir()?;
    // The library's models run alone (its other tests are not loom models):
    // its run keeps the flags of `test_args` but not their name filters,
    // which libtest would add to `loom_model` rather than narrow it.
    let flags: Vec<String> = test_args
        .iter()
        .filter(|arg| arg.starts_with('-'))
        .cloned()
        .collect();
    for (targets, args) in [
        (&["--test", "loom_*"][..], test_args.to_vec()),
        (
            &["--lib"][..],
            std::iter::once(LIB_MODELS.to_owned())
                .chain(flags)
                .collect(),
        ),
    ] {
        let mut cargo = cmd::cargo();
        cargo
            .env("RUSTFLAGS", &rustflags)
            .env("LOOM_MAX_PREEMPTIONS", &preemptions)
            // Would take precedence over RUSTFLAGS and drop `--cfg loom`.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .args([
                "test",
                "--release",
                "-p",
                "seq-stream",
                "--no-default-features",
            ])
            .args(targets)
            .arg("--target-dir")
            .arg(&target);
        if !args.is_empty() {
            cargo.arg("--").args(args);
        }
        cmd::run(&mut cargo)?;
    }
    Ok(true)
}

/// The name every loom model inside seq-stream's library carries.
const LIB_MODELS: &str = "loom_model";

/// Names of the `loom_*.rs` test files in seq-stream.
fn models() -> Result<Vec<String>> {
    let dir = cmd::workspace_root().join("crates/seq-stream/tests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("loom_") && name.ends_with(".rs") && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `$CARGO_TARGET_DIR/loom` when `CARGO_TARGET_DIR` is set (so a CI cache
/// directory is reused), else `<workspace>/target/loom`.
fn target_dir() -> Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        // Cargo reads a relative CARGO_TARGET_DIR against the directory it was
        // started in, which is our own working directory.
        Some(dir) => Ok(std::path::absolute(PathBuf::from(dir))
            .context("resolving CARGO_TARGET_DIR")?
            .join("loom")),
        None => Ok(cmd::workspace_root().join("target").join("loom")),
    }
}
