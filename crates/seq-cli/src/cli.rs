//! Command-line arguments (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Text shown after `seq --help`: exit codes and where to start.
const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the operation failed (bad value, wrong sequence, fenced, missing store, I/O ...);
     the reason is printed as `error: ...` on stderr
  2  usage error (unknown command or flag, missing or malformed argument)

Output is a human-readable table by default; `--json` prints JSON for scripts
(one JSON document, or one JSON object per line for streaming commands such as
`consume`, `watch-seq` and `lease`).

On etcd (`--backend etcd --endpoints URL,...`, when built with
`--features etcd`) --store names the store's key prefix in the cluster, and
any number of `seq` processes on any machines may use it at once.

A store directory is open in one process at a time. A command waits up to 10 s
(SEQ_OPEN_TIMEOUT_MS) for another `seq` to let go of it; `consume --follow` and
`watch-seq` close it between looks, `lease` keeps it open while it holds the lease.
A clean exit gives a sequence's unused block back, so `seq next` in the next
process continues exactly; after a crash (kill -9) it skips at most one block
(and never reissues a value).

Start with `seq demo`.";

/// `seq`: durable, strictly monotonic sequence numbers and ordered streams.
#[derive(Debug, Parser)]
#[command(name = "seq", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub(crate) struct Cli {
    /// The store directory, created by the first write [default: ./seq-data;
    /// `seq demo`: a fresh temporary directory].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
    /// The storage backend of the store.
    #[arg(long, global = true, value_enum, default_value_t = Backend::Redb)]
    pub(crate) backend: Backend,
    /// etcd client URLs, comma-separated (with `--backend etcd`).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        env = "SEQ_ETCD_ENDPOINTS",
        value_name = "URL,..."
    )]
    pub(crate) endpoints: Vec<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// A storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// redb: embedded, pure Rust (always built).
    Redb,
    /// RocksDB (only when seq was built with `--features rocksdb`).
    Rocksdb,
    /// etcd: a shared cluster, many processes at once (only when seq was
    /// built with `--features etcd`; needs --endpoints).
    Etcd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    // ---- sequences ----
    /// Create a named sequence.
    Create(CreateArgs),
    /// Take the next value(s) of a sequence.
    Next {
        /// The sequence name.
        name: String,
        /// How many values to take (a contiguous range).
        #[arg(short = 'n', long = "count", default_value_t = 1)]
        count: u64,
    },
    /// Show a sequence's next value without taking it (one argument), or the
    /// latest entry of a stream segment (two arguments: SPACE SEGMENT).
    Peek {
        /// The sequence name, or the space when SEGMENT is given.
        name: String,
        /// The segment: peek at a stream segment instead of a sequence.
        segment: Option<String>,
    },
    /// Move a sequence forward so that its next value is after VALUE
    /// (like PostgreSQL's `setval`; never backwards).
    AdvanceTo {
        /// The sequence name.
        name: String,
        /// The value to advance to.
        #[arg(allow_negative_numbers = true)]
        value: i64,
    },
    /// List the sequences.
    List,
    /// Drop a sequence.
    Drop {
        /// The sequence name.
        name: String,
    },

    // ---- sequence keys ----
    /// Put a value under a server-assigned sequence key PREFIX-<counter>...
    PutSeq {
        /// The key prefix.
        prefix: String,
        /// Delta per counter level, comma separated (the first must be > 0).
        #[arg(long, value_delimiter = ',', default_value = "1")]
        deltas: Vec<u64>,
        /// The value; read from stdin when absent.
        value: Option<String>,
    },
    /// Show the record under a sequence key.
    GetSeq {
        /// The full key, as `put-seq` printed it.
        key: String,
    },
    /// List the sequence keys of PREFIX in order.
    RangeSeq {
        /// The key prefix.
        prefix: String,
        /// Show at most this many keys.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Delete the record under a sequence key (its suffix is never reused).
    DeleteSeq {
        /// The full key.
        key: String,
    },
    /// Print the highest sequence key of PREFIX, then each new one (polling
    /// the store, so other `seq` processes can keep writing).
    WatchSeq {
        /// The key prefix.
        prefix: String,
        /// Exit after printing this many keys.
        #[arg(long)]
        limit: Option<u64>,
    },

    // ---- streams ----
    /// Append records to a segment: one record per stdin line (or per line of
    /// --file).
    Produce(ProduceArgs),
    /// Read entries of a segment, or of a whole space merged in order.
    Consume(ConsumeArgs),
    /// Show a segment's status (first/last sequence and timestamps).
    Status {
        /// The space.
        space: String,
        /// The segment.
        segment: String,
    },
    /// List the spaces.
    Spaces,
    /// List the segments of a space.
    Segments {
        /// The space.
        space: String,
    },
    /// Remove old entries of a segment (numbers are never reused).
    Trim(TrimArgs),

    // ---- cursors ----
    /// Named, durable consumer positions.
    #[command(subcommand)]
    Cursor(CursorCommand),

    // ---- leases ----
    /// Hold a lease and print its fencing token until interrupted (Ctrl-C).
    Lease {
        /// The lease key.
        key: String,
        /// Lease time-to-live (renewed in the background), e.g. `10s`, `500ms`.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        ttl: Duration,
        /// Release the lease after this long instead of waiting for Ctrl-C.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        hold_for: Option<Duration>,
    },

    /// List lease keys with their current fencing token and holder.
    Leases,

    // ---- debugging ----
    /// Dump the raw key layout of the store (for debugging).
    Inspect {
        /// Only this keyspace tag (MET, SEQ, SKC, SKY, DAT, IDX, INV, TXN, IDM,
        /// LSE, CUR, USR).
        #[arg(long, value_name = "TAG")]
        prefix: Option<String>,
        /// Show at most this many keys.
        #[arg(long)]
        limit: Option<usize>,
    },

    // ---- demo ----
    /// Run an end-to-end scenario on a fresh store and print what happened.
    Demo(DemoArgs),
}

/// `seq create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The sequence name.
    pub(crate) name: String,
    /// First value (default: MIN counting up, MAX counting down).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) start: Option<i64>,
    /// Step between values; negative counts down.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1)]
    pub(crate) increment: i64,
    /// Lowest value (default 1 counting up, i64::MIN counting down).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) min: Option<i64>,
    /// Highest value (default i64::MAX counting up, -1 counting down).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) max: Option<i64>,
    /// Wrap around at the bound instead of failing with "exhausted".
    #[arg(long)]
    pub(crate) cycle: bool,
    /// Values reserved (and persisted) per block; a crash skips at most one.
    #[arg(long, default_value_t = 4096)]
    pub(crate) block_size: u64,
}

/// `seq produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// The space (created on first produce).
    pub(crate) space: String,
    /// The segment (created on first produce).
    pub(crate) segment: String,
    /// Read records from this file (one per line) with a progress bar.
    #[arg(long, value_name = "PATH")]
    pub(crate) file: Option<PathBuf>,
    /// Metadata added to every record, `key=value` (repeatable).
    #[arg(long = "meta", value_name = "K=V", value_parser = parse_meta)]
    pub(crate) meta: Vec<(String, String)>,
    /// Records per atomic produce call.
    #[arg(long, default_value_t = 1000)]
    pub(crate) batch: usize,
    /// The sequence the first record must get (fails with a sequence
    /// mismatch otherwise); later records follow it.
    #[arg(long, value_name = "SEQ")]
    pub(crate) expect: Option<u64>,
    /// Fence the produce with a lease: `KEY:TOKEN` (a stale token is rejected).
    #[arg(long, value_name = "KEY:TOKEN", value_parser = parse_fence)]
    pub(crate) fence: Option<(String, u64)>,
}

/// `seq consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// The space.
    pub(crate) space: String,
    /// Only this segment (strict sequence order); without it the whole space
    /// is merged by (timestamp, segment, sequence).
    pub(crate) segment: Option<String>,
    /// Where to start: a sequence number with SEGMENT, or a hex offset (as
    /// printed in the `offset` column) for a whole space. The entry at the
    /// offset itself is skipped; a sequence is inclusive.
    #[arg(long, value_name = "OFFSET_HEX|SEQ")]
    pub(crate) from: Option<String>,
    /// After the history, wait for new entries (until Ctrl-C or --limit).
    #[arg(long)]
    pub(crate) follow: bool,
    /// Stop after this many entries.
    #[arg(long)]
    pub(crate) limit: Option<u64>,
}

/// `seq trim`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("rule").required(true).args(["before", "keep", "older_than"])))]
pub(crate) struct TrimArgs {
    /// The space.
    pub(crate) space: String,
    /// The segment.
    pub(crate) segment: String,
    /// Remove entries with a sequence below SEQ.
    #[arg(long, value_name = "SEQ")]
    pub(crate) before: Option<u64>,
    /// Keep only the newest N entries.
    #[arg(long, value_name = "N")]
    pub(crate) keep: Option<u64>,
    /// Remove entries older than this, e.g. `1h`, `30m`, `7d`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) older_than: Option<Duration>,
}

/// `seq cursor ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CursorCommand {
    /// Save a consumer's position in a space.
    Commit {
        /// The cursor name.
        name: String,
        /// The space it reads.
        space: String,
        /// The position: the hex offset (`@...`) of the last entry consumed,
        /// as printed by `seq consume SPACE`; with --segment, its sequence.
        offset: String,
        /// Commit a per-segment position (OFFSET is then a sequence).
        #[arg(long)]
        segment: Option<String>,
    },
    /// Show a cursor.
    Show {
        /// The cursor name.
        name: String,
    },
    /// How many entries the cursor is behind the end of its space.
    Lag {
        /// The cursor name.
        name: String,
    },
    /// List the cursors.
    List,
}

/// `seq demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Concurrent producers.
    #[arg(long, default_value_t = 4)]
    pub(crate) producers: usize,
    /// Segments of the "orders" space.
    #[arg(long, default_value_t = 4)]
    pub(crate) segments: usize,
    /// Orders each producer writes.
    #[arg(long, default_value_t = 1000)]
    pub(crate) orders: u64,
    /// A small run (for tests): 2 producers x 2 segments x 50 orders.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Keep the demo store (only when it is a fresh temporary directory).
    #[arg(long)]
    pub(crate) keep: bool,
}

impl Cli {
    /// The store directory: `--store` or `./seq-data`.
    pub(crate) fn store_dir(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| PathBuf::from("./seq-data"))
    }

    /// Where the store lives: `--backend`, `--store` and `--endpoints`.
    pub(crate) fn location(&self) -> crate::context::Location {
        crate::context::Location {
            backend: self.backend,
            dir: self.store_dir(),
            endpoints: self.endpoints.clone(),
        }
    }
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `7d` (a unit is required).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a duration (try 10s, 500ms, 2m, 1h, 7d)"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (bad number {number:?})"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "sec" | "secs" => value,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        "" => {
            return Err(format!(
                "{text:?} needs a unit: ms, s, m, h or d (e.g. 10s)"
            ));
        }
        other => {
            return Err(format!(
                "{other:?} is not a duration unit (use ms, s, m, h or d)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?} is out of range: {e}"))
}

/// Parses `key=value`.
fn parse_meta(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

/// Parses `KEY:TOKEN` (the key may itself contain `:`; the token is after the
/// last one).
fn parse_fence(text: &str) -> Result<(String, u64), String> {
    let Some((key, token)) = text.rsplit_once(':') else {
        return Err(format!("{text:?} is not KEY:TOKEN"));
    };
    let token = token
        .parse()
        .map_err(|_| format!("{token:?} is not a fencing token (a u64)"))?;
    Ok((key.to_owned(), token))
}

impl Command {
    /// Whether the command may create the store on first use. Read-only
    /// commands fail on a missing store instead of creating an empty one.
    pub(crate) fn creates_store(&self) -> bool {
        matches!(
            self,
            Command::Create(_)
                | Command::Next { .. }
                | Command::AdvanceTo { .. }
                | Command::PutSeq { .. }
                | Command::DeleteSeq { .. }
                | Command::Produce(_)
                | Command::Cursor(CursorCommand::Commit { .. })
                | Command::Lease { .. }
                | Command::Demo(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn should_have_a_consistent_clap_definition() {
        Cli::command().debug_assert();
    }

    #[test]
    fn should_parse_durations_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10y").is_err());
    }

    #[test]
    fn should_parse_meta_and_fence() {
        assert_eq!(parse_meta("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_meta("=b").is_err());
        assert_eq!(parse_fence("lease:a:7"), Ok(("lease:a".into(), 7)));
        assert!(parse_fence("nokey").is_err());
        assert!(parse_fence("k:x").is_err());
    }
}
