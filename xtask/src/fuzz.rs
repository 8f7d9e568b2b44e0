//! `cargo xtask fuzz`: the fuzz targets in `fuzz/` (a cargo-fuzz directory
//! outside the workspace).
//!
//! Two engines run the same targets:
//!
//! * **libFuzzer** (coverage-guided, AddressSanitizer) through `cargo fuzz`.
//!   cargo-fuzz needs nightly-only `-Z` flags; the machine has one stable
//!   toolchain, so they are unlocked with `RUSTC_BOOTSTRAP=1` (the sanitizer
//!   runtimes ship with the stable standard library). cargo-fuzz is installed
//!   with `cargo install cargo-fuzz --locked` when missing.
//! * **builtin**: the same targets built as plain binaries, driven by the
//!   seeded, coverage-free mutation loop in `fuzz/src/driver.rs`. `auto` (the
//!   default) falls back to it, saying why, when cargo-fuzz cannot be
//!   installed or the libFuzzer build fails.
//!
//! Committed seeds live in `fuzz/corpus/<target>/` and are only read; inputs
//! the fuzzer finds go to a scratch corpus under the target directory, and
//! failing inputs to `fuzz/artifacts/<target>/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Every fuzz target, in run order (the `fuzz/fuzz_targets/<name>.rs` files).
pub(crate) const TARGETS: &[&str] = &[
    "frame",
    "block_record",
    "sequence_def",
    "seqkey_counters",
    "seqkey_parse_key",
    "key_reader",
    "space_offset",
    "space_offset_hex",
    "stream_codecs",
    "model",
];

/// Which fuzzing engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Engine {
    /// libFuzzer when it builds here, else the builtin loop.
    Auto,
    /// libFuzzer through cargo-fuzz (fails if it cannot be used).
    Libfuzzer,
    /// The builtin coverage-free loop.
    Builtin,
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Seconds per target.
    pub(crate) seconds: u64,
    /// Only this target (`None` = all).
    pub(crate) target: Option<String>,
    /// The engine.
    pub(crate) engine: Engine,
    /// Seed (`None` = derived from the clock and printed).
    pub(crate) seed: Option<u64>,
    /// Keep the scratch corpus of earlier runs (default: start each target
    /// from the committed seeds only, so a run's time stays bounded).
    pub(crate) keep_corpus: bool,
}

/// One target's outcome.
struct Outcome {
    target: &'static str,
    runs: Option<u64>,
    took: Duration,
}

/// Runs the fuzz targets; fails on the first target that finds a failure.
pub(crate) fn run(opts: &Options) -> Result<()> {
    let targets: Vec<&'static str> = match &opts.target {
        Some(name) => match TARGETS.iter().find(|t| **t == name) {
            Some(t) => vec![*t],
            None => bail!(
                "unknown fuzz target `{name}`; targets: {}",
                TARGETS.join(", ")
            ),
        },
        None => TARGETS.to_vec(),
    };
    let seed = opts.seed.unwrap_or_else(clock_seed);
    let engine = match opts.engine {
        Engine::Builtin => Engine::Builtin,
        Engine::Libfuzzer => {
            ensure_cargo_fuzz()?;
            build_libfuzzer(&targets)?;
            Engine::Libfuzzer
        }
        Engine::Auto => match ensure_cargo_fuzz().and_then(|()| build_libfuzzer(&targets)) {
            Ok(()) => Engine::Libfuzzer,
            Err(err) => {
                eprintln!(
                    "fuzz: libFuzzer is not usable here ({err:#}); \
                     falling back to the builtin coverage-free loop"
                );
                Engine::Builtin
            }
        },
    };
    if engine == Engine::Builtin {
        build_builtin()?;
    }
    let name = if engine == Engine::Libfuzzer {
        "libfuzzer"
    } else {
        "builtin"
    };
    println!(
        "fuzz: engine {name}, {} target(s), {}s each, seed {seed}",
        targets.len(),
        opts.seconds
    );

    let mut outcomes = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        // One seed per target, derived from the run's seed.
        let target_seed = seed.wrapping_add(i as u64).wrapping_mul(0x9E37_79B9) & 0x7FFF_FFFF;
        let (result, took) = cmd::timed(|| match engine {
            Engine::Libfuzzer => run_libfuzzer(target, opts.seconds, target_seed, opts.keep_corpus),
            _ => run_builtin(target, opts.seconds, target_seed, opts.keep_corpus),
        });
        let runs = result.with_context(|| format!("fuzz target `{target}` failed"))?;
        let rate = runs
            .map(|r| format!("{r} runs"))
            .unwrap_or_else(|| "runs unknown".into());
        println!("fuzz: {target}: ok, {rate} in {}", cmd::human(took));
        outcomes.push(Outcome { target, runs, took });
    }
    let total: Duration = outcomes.iter().map(|o| o.took).sum();
    let runs: u64 = outcomes.iter().filter_map(|o| o.runs).sum();
    let names: Vec<&str> = outcomes.iter().map(|o| o.target).collect();
    println!(
        "fuzz: {} targets, {runs} runs, 0 failures in {} (engine {name}, seed {seed}): {}",
        outcomes.len(),
        cmd::human(total),
        names.join(", ")
    );
    Ok(())
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1)
}

fn fuzz_dir() -> PathBuf {
    cmd::workspace_root().join("fuzz")
}

/// `$CARGO_TARGET_DIR/fuzz` (or `fuzz/target`): the fuzz builds use other
/// RUSTFLAGS than the workspace, so they get a directory of their own.
fn target_dir() -> Result<PathBuf> {
    Ok(cmd::target_dir_override()?
        .map_or_else(|| fuzz_dir().join("target"), |dir| dir.join("fuzz")))
}

fn cargo_in_fuzz() -> Result<Command> {
    let mut cargo = cmd::cargo();
    cargo
        .env("CARGO_TARGET_DIR", target_dir()?)
        // The workspace's flags (e.g. `--cfg loom`) must not leak in.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    Ok(cargo)
}

/// Installs cargo-fuzz when `cargo fuzz` does not run.
fn ensure_cargo_fuzz() -> Result<()> {
    if cmd::probe(cmd::cargo().args(["fuzz", "--version"])).is_some() {
        return Ok(());
    }
    eprintln!("fuzz: cargo-fuzz is missing; installing it");
    cmd::run(cmd::cargo().args(["install", "cargo-fuzz", "--locked"]))
        .context("installing cargo-fuzz")
}

fn build_libfuzzer(targets: &[&str]) -> Result<()> {
    let mut cargo = cargo_in_fuzz()?;
    cargo
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "build", "--fuzz-dir"])
        .arg(fuzz_dir());
    cargo.args(["--features", "libfuzzer"]);
    if let [only] = targets {
        cargo.arg(only);
    }
    cmd::run(&mut cargo)
}

fn build_builtin() -> Result<()> {
    let mut cargo = cargo_in_fuzz()?;
    cargo
        .args(["build", "--release", "--bins", "--manifest-path"])
        .arg(fuzz_dir().join("Cargo.toml"));
    cmd::run(&mut cargo)
}

/// The committed seeds of `target` (read only).
fn seeds(target: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(target)
}

/// A scratch corpus for what the fuzzer finds, outside the repository;
/// emptied first unless `keep`. (libFuzzer replays its whole corpus before
/// fuzzing, which for the slow engine targets would grow without bound.)
fn scratch_corpus(target: &str, keep: bool) -> Result<PathBuf> {
    let dir = target_dir()?.join("corpus").join(target);
    if !keep && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The host target triple (cargo-fuzz builds for it explicitly, so its
/// binaries land in `<target-dir>/<triple>/release/`).
fn host_triple() -> Result<String> {
    let out = cmd::probe(cmd::program("rustc").arg("-vV")).context("running `rustc -vV`")?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no host line")
}

/// Runs one libFuzzer target binary (built by [`build_libfuzzer`]) directly,
/// skipping `cargo fuzz run`'s per-target cargo invocation; returns the
/// number of runs it reported.
fn run_libfuzzer(target: &str, seconds: u64, seed: u64, keep: bool) -> Result<Option<u64>> {
    let artifacts = fuzz_dir().join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts)
        .with_context(|| format!("creating {}", artifacts.display()))?;
    let binary = target_dir()?
        .join(host_triple()?)
        .join("release")
        .join(target);
    let mut command = cmd::program(&binary);
    command
        // What `cargo fuzz run` sets too.
        .env("ASAN_OPTIONS", "detect_odr_violation=0")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-seed={seed}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(scratch_corpus(target, keep)?)
        .arg(seeds(target));
    let log = run_logged(&mut command, target)?;
    Ok(parse_runs(&log, "Done ", " runs"))
}

/// Runs one builtin target; returns the number of runs it reported.
fn run_builtin(target: &str, seconds: u64, seed: u64, keep: bool) -> Result<Option<u64>> {
    let binary = target_dir()?.join("release").join(target);
    let mut command = cmd::program(&binary);
    command
        .current_dir(fuzz_dir())
        .args([
            "--seconds",
            &seconds.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg(seeds(target))
        .arg(scratch_corpus(target, keep)?);
    let log = run_logged(&mut command, target)?;
    Ok(parse_runs(&log, &format!("fuzz {target}: "), " runs"))
}

/// Runs `command` with its output captured to a log file; on failure prints
/// the end of the log (where libFuzzer and the driver name the failing
/// input) and fails.
fn run_logged(command: &mut Command, target: &str) -> Result<String> {
    let line = cmd::render(command);
    eprintln!("$ {line}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    let mut log = String::from_utf8_lossy(&output.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    let log_path = target_dir()?.join(format!("fuzz-{target}.log"));
    // The log is a convenience; failing to write it must not hide the result.
    let _ = std::fs::write(&log_path, &log);
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        for l in tail.iter().rev() {
            eprintln!("  | {l}");
        }
        bail!(
            "`{line}` failed ({}); full log: {}; failing inputs are kept in fuzz/artifacts/{target}/",
            output.status,
            log_path.display()
        );
    }
    Ok(log)
}

/// Finds `<before><number><after>` in `log` (the last occurrence).
fn parse_runs(log: &str, before: &str, after: &str) -> Option<u64> {
    log.lines().rev().find_map(|line| {
        let start = line.find(before)? + before.len();
        let rest = &line[start..];
        let end = rest.find(after)?;
        rest[..end].trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Whether `path` holds at least one file.
    fn has_seeds(path: &Path) -> bool {
        std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some())
    }

    #[test]
    fn should_parse_libfuzzer_and_builtin_run_counts() {
        let libfuzzer = "#1024 pulse\nDone 1153216 runs in 11 second(s)\n";
        assert_eq!(parse_runs(libfuzzer, "Done ", " runs"), Some(1_153_216));
        let builtin = "fuzz frame: 42 runs (3 corpus inputs) in 1.0s, seed 7, no failures";
        assert_eq!(parse_runs(builtin, "fuzz frame: ", " runs"), Some(42));
        assert_eq!(parse_runs("nothing", "Done ", " runs"), None);
    }

    #[test]
    fn should_have_committed_seeds_for_every_target() {
        for target in TARGETS {
            assert!(
                has_seeds(&seeds(target)),
                "fuzz/corpus/{target}/ has no seed"
            );
        }
    }

    #[test]
    fn should_list_every_fuzz_target_file() {
        let dir = fuzz_dir().join("fuzz_targets");
        for target in TARGETS {
            assert!(
                dir.join(format!("{target}.rs")).is_file(),
                "no fuzz_targets/{target}.rs"
            );
        }
    }
}
