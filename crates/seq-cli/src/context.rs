//! Opening the store a command works on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use seq_stream::Store;

use crate::cli::Backend;
use crate::output::Output;

/// Where a store lives: a directory on an embedded backend, or a key prefix
/// on an etcd cluster.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    /// The backend.
    pub(crate) backend: Backend,
    /// The store directory (on etcd: the store's key prefix).
    pub(crate) dir: PathBuf,
    /// etcd client URLs (`--endpoints`).
    pub(crate) endpoints: Vec<String>,
}

impl Location {
    /// How the store is named in messages.
    pub(crate) fn describe(&self) -> String {
        match self.backend {
            Backend::Etcd => format!(
                "prefix {:?} on etcd {}",
                self.etcd_prefix(),
                self.endpoints.join(",")
            ),
            _ => self.dir.display().to_string(),
        }
    }

    /// The store's key prefix on etcd: `--store` and a `/`.
    fn etcd_prefix(&self) -> String {
        let name = self.dir.to_string_lossy();
        let name = name.trim_start_matches("./").trim_end_matches('/');
        format!("{name}/")
    }
}

/// What every command gets: the open store and the output.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The open store.
    pub(crate) store: Store,
    /// Where results go.
    pub(crate) out: Output,
    /// Where the store lives.
    pub(crate) location: Location,
}

/// Opens the context's store again (for commands that poll: they close the
/// store between looks so that other processes can use it).
pub(crate) async fn open_async(location: &Location) -> Result<Store> {
    let location = location.clone();
    tokio::task::spawn_blocking(move || open(&location, false)).await?
}

/// Opens (or, when `create` is set, creates) the store at `location`.
pub(crate) fn open(location: &Location, create: bool) -> Result<Store> {
    check_built(location.backend)?;
    if location.backend == Backend::Etcd {
        return open_etcd(location, create);
    }
    let (dir, backend) = (&location.dir, location.backend);
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

/// Whether the store at `location` exists (has been written to).
pub(crate) fn exists_at(location: &Location) -> Result<bool> {
    match location.backend {
        Backend::Etcd => {
            let storage = connect_etcd(location)?;
            Ok(Store::exists_in(&storage)?)
        }
        backend => Ok(exists(&location.dir, backend)),
    }
}

#[cfg(feature = "etcd")]
fn connect_etcd(location: &Location) -> Result<seq_etcd::EtcdStorage> {
    if location.endpoints.is_empty() {
        bail!("--backend etcd needs --endpoints URL,... (or SEQ_ETCD_ENDPOINTS)");
    }
    let options = seq_etcd::EtcdOptions::new(
        location.endpoints.iter().cloned(),
        location.etcd_prefix().into_bytes(),
    );
    seq_etcd::EtcdStorage::connect(options)
        .with_context(|| format!("cannot connect to etcd at {}", location.endpoints.join(",")))
}

#[cfg(not(feature = "etcd"))]
fn connect_etcd(_location: &Location) -> Result<std::sync::Arc<dyn seq_storage::Storage>> {
    bail!("this seq was built without etcd; rebuild with --features etcd")
}

/// Connects to the cluster and opens the store under `--store`'s prefix (in
/// multi-writer mode: other processes may use it at the same time).
fn open_etcd(location: &Location, create: bool) -> Result<Store> {
    let storage = connect_etcd(location)?;
    if !create && !Store::exists_in(&storage)? {
        bail!(
            "no store at {} (a store is created by its first write, e.g. `seq create` or `seq produce`; pick another with --store)",
            location.describe()
        );
    }
    Store::open(storage)
        .with_context(|| format!("cannot open the store at {}", location.describe()))
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
        Backend::Etcd => bail!("internal: etcd stores are opened by open_etcd"),
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
    if backend == Backend::Etcd && !cfg!(feature = "etcd") {
        bail!("this seq was built without etcd; rebuild with --features etcd");
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
        Backend::Etcd => return false,
    };
    marker.is_file()
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Redb => "redb",
        Backend::Rocksdb => "RocksDB",
        Backend::Etcd => "etcd",
    }
}
