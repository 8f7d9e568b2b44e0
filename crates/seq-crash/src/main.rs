//! The kill -9 crash harness of seq (run it with `cargo xtask crash`).
//!
//! ```text
//! seq-crash run   [--backend redb|rocksdb|all] [--iterations N] [--seed S] [--keep]
//! seq-crash child --backend B --dir DIR --seed S --iteration I
//! ```
//!
//! `run` is the parent. For each iteration it spawns this same binary as a
//! `child`, which opens the store in `DIR` and runs a mixed workload from
//! several concurrent tasks (sequences `next`/`next_n`, gap-free
//! `next_with`, sequence keys, multi-record produces to several segments,
//! flushes and caller-chosen commit numbers). The child prints a line for
//! every operation it starts and every result acknowledged to it, flushed at
//! once, on stdout (the pipe). After a seeded random delay the parent kills
//! it with SIGKILL, reopens the store in-process as a library user would, and
//! checks the store against everything acknowledged so far, in this and every
//! earlier iteration on the same store (see [`check`]). The next iteration
//! continues the workload on the same store.
//!
//! Output ends with `crash: N iterations, N kills, L lost, R reissued`; the
//! exit code is non-zero on any violation, each printed with its details.

mod check;
mod proto;
mod rng;
mod workload;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::check::Model;
use crate::rng::Rng;

/// A storage backend the harness can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// redb (feature `redb`).
    Redb,
    /// RocksDB (feature `rocksdb`).
    Rocksdb,
}

impl Backend {
    fn parse(s: &str) -> Result<Vec<Self>> {
        Ok(match s {
            "redb" => vec![Self::Redb],
            "rocksdb" => vec![Self::Rocksdb],
            "all" => vec![Self::Redb, Self::Rocksdb],
            other => bail!("unknown backend {other:?} (redb, rocksdb or all)"),
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Redb => "redb",
            Self::Rocksdb => "rocksdb",
        }
    }

    /// Opens (creating) the store in `dir` with this backend.
    #[cfg_attr(
        not(any(feature = "redb", feature = "rocksdb")),
        allow(unused_variables)
    )]
    pub(crate) fn open(self, dir: &Path) -> Result<seq_stream::Store> {
        match self {
            #[cfg(feature = "redb")]
            Self::Redb => Ok(seq_stream::Store::open_redb(dir)?),
            #[cfg(feature = "rocksdb")]
            Self::Rocksdb => Ok(seq_stream::Store::open_rocksdb(dir)?),
            #[allow(unreachable_patterns)]
            other => bail!(
                "seq-crash was built without the `{}` feature (cargo xtask crash adds it)",
                other.name()
            ),
        }
    }
}

/// Parsed command line.
struct Args {
    mode: String,
    backend: String,
    iterations: u64,
    seed: Option<u64>,
    dir: Option<PathBuf>,
    iteration: u64,
    keep: bool,
    min_ms: u64,
    max_ms: u64,
}

fn parse_args() -> Result<Args> {
    let mut raw = std::env::args().skip(1);
    let mode = raw.next().context("usage: seq-crash run|child [options]")?;
    let mut args = Args {
        mode,
        backend: "redb".into(),
        iterations: 100,
        seed: None,
        dir: None,
        iteration: 0,
        keep: false,
        min_ms: 20,
        max_ms: 400,
    };
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--backend" => args.backend = value()?,
            "--iterations" => args.iterations = value()?.parse().context("--iterations")?,
            "--seed" => args.seed = Some(value()?.parse().context("--seed")?),
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "--iteration" => args.iteration = value()?.parse().context("--iteration")?,
            "--min-ms" => args.min_ms = value()?.parse().context("--min-ms")?,
            "--max-ms" => args.max_ms = value()?.parse().context("--max-ms")?,
            "--keep" => args.keep = true,
            other => bail!("unknown option {other}"),
        }
    }
    if args.max_ms < args.min_ms {
        bail!("--max-ms must not be below --min-ms");
    }
    Ok(args)
}

fn main() {
    let result = parse_args().and_then(|args| match args.mode.as_str() {
        "run" => run(&args),
        "child" => child(&args),
        other => Err(anyhow::anyhow!("unknown mode {other:?}; use run or child")),
    });
    if let Err(err) = result {
        eprintln!("seq-crash: error: {err:#}");
        std::process::exit(1);
    }
}

fn child(args: &Args) -> Result<()> {
    let backends = Backend::parse(&args.backend)?;
    let [backend] = backends[..] else {
        bail!("a child runs exactly one backend")
    };
    let dir = args.dir.clone().context("child needs --dir")?;
    let seed = args.seed.context("child needs --seed")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the child's runtime")?;
    runtime.block_on(workload::run(backend, &dir, seed, args.iteration))
}

/// Totals of one backend's run.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    iterations: u64,
    kills: u64,
    lost: u64,
    reissued: u64,
    other: u64,
    acks: u64,
}

fn run(args: &Args) -> Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    let backends = Backend::parse(&args.backend)?;
    println!(
        "crash: seed {seed}, backend {}, {} iterations, kill after {}-{} ms \
         (reproduce: cargo xtask crash --backend {} --iterations {} --seed {seed})",
        args.backend, args.iterations, args.min_ms, args.max_ms, args.backend, args.iterations
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut all = Totals::default();
    for backend in backends {
        let totals = run_backend(&runtime, args, backend, seed)?;
        println!(
            "crash[{}]: {} iterations, {} kills, {} lost, {} reissued, {} other violations, {} acknowledgements checked",
            backend.name(),
            totals.iterations,
            totals.kills,
            totals.lost,
            totals.reissued,
            totals.other,
            totals.acks
        );
        all.iterations += totals.iterations;
        all.kills += totals.kills;
        all.lost += totals.lost;
        all.reissued += totals.reissued;
        all.other += totals.other;
        all.acks += totals.acks;
    }
    println!(
        "crash: {} iterations, {} kills, {} lost, {} reissued",
        all.iterations, all.kills, all.lost, all.reissued
    );
    if all.lost + all.reissued + all.other > 0 {
        bail!(
            "crash harness found {} violation(s) (seed {seed}); see the lines above",
            all.lost + all.reissued + all.other
        );
    }
    Ok(())
}

fn run_backend(
    runtime: &tokio::runtime::Runtime,
    args: &Args,
    backend: Backend,
    seed: u64,
) -> Result<Totals> {
    let parent = std::env::temp_dir();
    let dir = parent.join(format!(
        "seq-crash-{}-{}-{seed}",
        backend.name(),
        std::process::id()
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("locating the seq-crash binary")?;
    let mut rng = Rng::new(seed ^ backend_salt(backend));
    let mut model = Model::default();
    let mut totals = Totals::default();
    let started = Instant::now();
    for iteration in 1..=args.iterations {
        let child_seed = rng.next_u64();
        let delay = Duration::from_millis(rng.range(args.min_ms, args.max_ms + 1));
        let lines = spawn_and_kill(&exe, backend, &dir, child_seed, iteration, delay)?;
        totals.kills += u64::from(lines.killed);
        totals.iterations += 1;
        let acks = model.absorb(iteration, &lines.lines);
        totals.acks += acks;
        let report = runtime.block_on(check::verify(backend, &dir, &mut model, iteration))?;
        totals.lost += report.lost;
        totals.reissued += report.reissued;
        totals.other += report.other;
        for problem in &report.problems {
            println!(
                "crash[{}] iteration {iteration}: VIOLATION: {problem}",
                backend.name()
            );
        }
        if iteration % 10 == 0 || iteration == args.iterations || !report.problems.is_empty() {
            println!(
                "crash[{}]: iteration {iteration}/{} ok={} after {:.1}s: {} acks this run ({})",
                backend.name(),
                args.iterations,
                report.problems.is_empty(),
                started.elapsed().as_secs_f64(),
                acks,
                model.summary()
            );
        }
        if !report.problems.is_empty() {
            // The store is no longer trustworthy for later iterations.
            break;
        }
    }
    if args.keep {
        println!("crash[{}]: store kept at {}", backend.name(), dir.display());
    } else {
        // Best effort: a leftover temp directory is not a test failure.
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(totals)
}

fn backend_salt(backend: Backend) -> u64 {
    match backend {
        Backend::Redb => 0,
        Backend::Rocksdb => 0x0123_4567_89AB_CDEF,
    }
}

/// What one child printed before it was killed.
struct ChildRun {
    lines: Vec<String>,
    killed: bool,
}

/// Starts a child, waits for its `READY` line, lets it run for `delay`, then
/// SIGKILLs it and returns every complete line it printed.
fn spawn_and_kill(
    exe: &Path,
    backend: Backend,
    dir: &Path,
    seed: u64,
    iteration: u64,
    delay: Duration,
) -> Result<ChildRun> {
    let mut child = Command::new(exe)
        .arg("child")
        .args(["--backend", backend.name()])
        .arg("--dir")
        .arg(dir)
        .args(["--seed", &seed.to_string()])
        .args(["--iteration", &iteration.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawning the workload child")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                // A line cut short by the kill has no newline: drop it.
                Ok(0) | Err(_) => break,
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    if tx.send(line.trim_end().to_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut lines = Vec::new();
    // Wait (bounded) for the child to open the store and start.
    let ready_deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = false;
    while !ready {
        let left = ready_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                ready = line == proto::READY;
                lines.push(line);
            }
            Err(_) => break,
        }
    }
    if !ready {
        let _ = child.kill();
        let status = child.wait().context("waiting for the child")?;
        bail!("the workload child did not start (status {status}); its output: {lines:?}");
    }
    std::thread::sleep(delay);
    let exited_early = child.try_wait().context("polling the child")?;
    if let Some(status) = exited_early {
        bail!("the workload child exited on its own before the kill: {status}");
    }
    // `Child::kill` sends SIGKILL on unix.
    child.kill().context("killing the child")?;
    let status = child.wait().context("waiting for the killed child")?;
    let killed = {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(9)
    };
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the output reader panicked"))?;
    lines.extend(rx.try_iter());
    Ok(ChildRun { lines, killed })
}
