//! Opening the store a command works on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use seq_stream::Store;

use crate::cli::Backend;
use crate::output::Output;

/// What every command gets: the open store and the output.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The open store.
    pub(crate) store: Store,
    /// Where results go.
    pub(crate) out: Output,
    /// The store directory.
    pub(crate) dir: PathBuf,
    /// The store's backend.
    pub(crate) backend: Backend,
}

/// Opens the context's store again (for commands that poll: they close the
/// store between looks so that other processes can use it).
pub(crate) async fn open_async(dir: &Path, backend: Backend) -> Result<Store> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || open(&dir, backend, false)).await?
}

/// Opens (or, when `create` is set, creates) the store at `dir`.
pub(crate) fn open(dir: &Path, backend: Backend, create: bool) -> Result<Store> {
    check_built(backend)?;
    if !create && !exists(dir, backend) {
        bail!(
            "no {} store at {} (a store is created by its first write, e.g. `seq create` or `seq produce`; pick another with --store)",
            backend_name(backend),
            dir.display()
        );
    }
    // An embedded store is open in one process at a time: wait a while for
    // another `seq` (a follower polling, a lease holder) to let go.
    let deadline = Instant::now() + open_timeout();
    loop {
        match open_backend(dir, backend) {
            Ok(store) => return Ok(store),
            Err(error) if is_locked(&error) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(error) if is_locked(&error) => {
                return Err(error).with_context(|| {
                    format!(
                        "the store at {} is in use by another process (waited {:?}; set SEQ_OPEN_TIMEOUT_MS to wait longer)",
                        dir.display(),
                        open_timeout()
                    )
                });
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot open the store at {}", dir.display()));
            }
        }
    }
}

/// How long to wait for a store another process holds (`SEQ_OPEN_TIMEOUT_MS`,
/// default 10 s).
fn open_timeout() -> Duration {
    std::env::var("SEQ_OPEN_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// Whether opening failed because another process holds the store.
fn is_locked(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}").to_ascii_lowercase();
    text.contains("already open")
        || text.contains("lock file")
        || text.contains("temporarily unavailable")
}

fn open_backend(dir: &Path, backend: Backend) -> Result<Store> {
    match backend {
        Backend::Redb => Ok(Store::open_redb(dir)?),
        Backend::Rocksdb => open_rocksdb(dir),
    }
}

#[cfg(feature = "rocksdb")]
fn open_rocksdb(dir: &Path) -> Result<Store> {
    Ok(Store::open_rocksdb(dir)?)
}

/// Fails for a backend this build lacks.
fn check_built(backend: Backend) -> Result<()> {
    if backend == Backend::Rocksdb && !cfg!(feature = "rocksdb") {
        bail!("this seq was built without RocksDB; rebuild with --features rocksdb");
    }
    Ok(())
}

#[cfg(not(feature = "rocksdb"))]
fn open_rocksdb(_dir: &Path) -> Result<Store> {
    bail!("this seq was built without RocksDB; rebuild with --features rocksdb")
}

/// Whether a store of `backend` exists in `dir`.
fn exists(dir: &Path, backend: Backend) -> bool {
    let marker: PathBuf = match backend {
        Backend::Redb => dir.join("seq.redb"),
        Backend::Rocksdb => dir.join("CURRENT"),
    };
    marker.is_file()
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Redb => "redb",
        Backend::Rocksdb => "RocksDB",
    }
}
