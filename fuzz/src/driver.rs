//! A self-contained, coverage-free fuzz loop: the fallback when libFuzzer
//! cannot be built, and a quick way to replay a corpus or one input.
//!
//! ```text
//! <target-binary> [--seconds N] [--runs N] [--seed S] [--max-len N] [PATH...]
//! ```
//!
//! Each `PATH` is a file (one input) or a directory (every file in it). The
//! loop first runs every input once, then until the time or run budget is
//! spent it mutates a randomly chosen input (seeded, so a run is
//! reproducible from its printed seed) and runs the target on it. When the
//! target panics, the input is written to `artifacts/<target>/crash-<hash>`
//! (relative to the working directory) and its path printed, and the process
//! exits non-zero, as libFuzzer does.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

thread_local! {
    /// The input being run, for the panic hook.
    static CURRENT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Options of one run.
#[derive(Debug, Clone)]
struct Options {
    seconds: Option<u64>,
    runs: Option<u64>,
    seed: u64,
    max_len: usize,
    paths: Vec<PathBuf>,
}

/// Runs `target` as the binary `name` with the process's arguments.
pub fn main(name: &str, target: fn(&[u8])) {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{name}: {message}");
            eprintln!("usage: {name} [--seconds N] [--runs N] [--seed S] [--max-len N] [PATH...]");
            std::process::exit(2);
        }
    };
    install_panic_hook(name);
    let stats = run(target, &options);
    println!(
        "fuzz {name}: {} runs ({} corpus inputs) in {:.1}s, seed {}, no failures",
        stats.runs,
        stats.corpus,
        stats.took.as_secs_f64(),
        options.seed
    );
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        seconds: None,
        runs: None,
        seed: seed_from_clock(),
        max_len: 4096,
        paths: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| -> Result<u64, String> {
            let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            v.parse().map_err(|e| format!("{flag} {v}: {e}"))
        };
        match arg.as_str() {
            "--seconds" => options.seconds = Some(value("--seconds")?),
            "--runs" => options.runs = Some(value("--runs")?),
            "--seed" => options.seed = value("--seed")?,
            "--max-len" => {
                options.max_len =
                    usize::try_from(value("--max-len")?).map_err(|e| e.to_string())?;
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path => options.paths.push(PathBuf::from(path)),
        }
    }
    if options.seconds.is_none() && options.runs.is_none() {
        options.seconds = Some(10);
    }
    Ok(options)
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed)
}

fn install_panic_hook(name: &str) {
    let name = name.to_owned();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let input = CURRENT.with(|c| c.borrow().clone());
        let dir = Path::new("artifacts").join(&name);
        let path = dir.join(format!("crash-{:016x}", fnv1a(&input)));
        let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &input));
        match saved {
            Ok(()) => eprintln!(
                "fuzz {name}: FAILED on input {} ({} bytes); reproduce with the same binary and that path",
                path.display(),
                input.len()
            ),
            Err(e) => eprintln!("fuzz {name}: FAILED on input {input:?} (could not save it: {e})"),
        }
        std::process::exit(1);
    }));
}

struct Stats {
    runs: u64,
    corpus: usize,
    took: Duration,
}

fn run(target: fn(&[u8]), options: &Options) -> Stats {
    let start = Instant::now();
    let mut pool = load(&options.paths);
    let corpus = pool.len();
    let mut runs = 0u64;
    for input in &pool {
        execute(target, input);
        runs += 1;
    }
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let deadline = options.seconds.map(|s| start + Duration::from_secs(s));
    let mut rng = Rng::new(options.seed);
    loop {
        if options.runs.is_some_and(|n| runs >= n) {
            break;
        }
        // Checking the clock every input would dominate the fast targets.
        if runs.is_multiple_of(64) && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let parent = &pool[rng.below(pool.len())];
        let mut input = parent.clone();
        let other = pool[rng.below(pool.len())].clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut input, &other, &mut rng, options.max_len);
        }
        execute(target, &input);
        runs += 1;
        // Keep some mutants to mutate further: a cheap stand-in for coverage.
        if rng.below(16) == 0 {
            if pool.len() < 4096 {
                pool.push(input);
            } else {
                let slot = corpus + rng.below(pool.len() - corpus);
                pool[slot] = input;
            }
        }
    }
    Stats {
        runs,
        corpus,
        took: start.elapsed(),
    }
}

fn execute(target: fn(&[u8]), input: &[u8]) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.clear();
        c.extend_from_slice(input);
    });
    target(input);
}

fn load(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                names.sort();
                files.extend(names.into_iter().filter(|p| p.is_file()));
            }
        } else if path.is_file() {
            files.push(path.clone());
        }
    }
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

/// Values that tend to hit edge cases of length fields and counters.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    16,
    20,
    21,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

fn mutate(input: &mut Vec<u8>, other: &[u8], rng: &mut Rng, max_len: usize) {
    match rng.below(10) {
        // Flip a bit.
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        // Set a random byte.
        1 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] = rng.next() as u8;
        }
        // Insert random bytes.
        2 => {
            let at = rng.below(input.len() + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
        // Delete a run.
        3 if !input.is_empty() => {
            let at = rng.below(input.len());
            let n = 1 + rng.below((input.len() - at).min(8));
            input.drain(at..at + n);
        }
        // Truncate.
        4 if !input.is_empty() => input.truncate(rng.below(input.len())),
        // Overwrite with an interesting big-endian word.
        5 => {
            let value = INTERESTING[rng.below(INTERESTING.len())];
            let width = [1usize, 2, 4, 8][rng.below(4)];
            let bytes = &value.to_be_bytes()[8 - width..];
            let at = rng.below(input.len() + 1);
            let end = (at + width).min(input.len());
            input.splice(at..end, bytes.iter().copied());
        }
        // Splice in part of another input.
        6 if !other.is_empty() => {
            let from = rng.below(other.len());
            let n = 1 + rng.below(other.len() - from);
            let at = rng.below(input.len() + 1);
            input.splice(at..at, other[from..from + n].iter().copied());
        }
        // Duplicate a run.
        7 if !input.is_empty() => {
            let from = rng.below(input.len());
            let n = 1 + rng.below((input.len() - from).min(32));
            let copy = input[from..from + n].to_vec();
            let at = rng.below(input.len() + 1);
            input.splice(at..at, copy);
        }
        // ASCII digits and separators (sequence keys, hex offsets).
        8 => {
            let alphabet = b"0123456789abcdefABCDEF-\x00\x01\xff";
            let at = rng.below(input.len() + 1);
            input.insert(at, alphabet[rng.below(alphabet.len())]);
        }
        _ => {
            let at = rng.below(input.len() + 1);
            input.insert(at, rng.next() as u8);
        }
    }
    input.truncate(max_len);
}

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}
