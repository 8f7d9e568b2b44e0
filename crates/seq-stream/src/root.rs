//! A directory of stores, each identified by its UUID.
//!
//! A [`StoreRoot`] is a directory holding one storage instance (a
//! subdirectory) per store, named by the store's UUID in its hyphenated
//! lowercase form:
//!
//! ```text
//! <root>/
//!   0a8f…-…/          one store: seq.redb (redb) or RocksDB's files
//!   5c21…-…/
//!   .creating-<uuid>/ a create in progress (or interrupted by a crash)
//!   .dropping-<uuid>/ a drop in progress (or interrupted by a crash)
//! ```
//!
//! Stores never share data: each has its own storage instance, writer and
//! keyspace. A store directory is also a plain store directory:
//! [`Store::open_redb`] on it opens the same store.

#![cfg(any(feature = "redb", feature = "rocksdb"))]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use seq_storage::Storage;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::meta;
use crate::options::StoreOptions;
use crate::store::{Inner, Store};

/// Name prefix of a store directory being created.
const CREATING: &str = ".creating-";
/// Name prefix of a store directory being dropped.
const DROPPING: &str = ".dropping-";

/// The storage backend of the stores of a [`StoreRoot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// redb: one `seq.redb` file per store directory (feature `redb`).
    #[cfg(feature = "redb")]
    Redb,
    /// RocksDB: one RocksDB instance per store directory (feature `rocksdb`).
    #[cfg(feature = "rocksdb")]
    RocksDb,
}

/// A root directory of stores, each in its own subdirectory named by its
/// UUID.
///
/// Opening the same store twice through one `StoreRoot` (or its clones)
/// returns the same running [`Store`], so a store never gets a second writer
/// in this process. Different `StoreRoot` values on the same directory do not
/// share that registry; the backends' own file locks then refuse the second
/// open. All methods block on file-system I/O; call them from a blocking
/// context (or `spawn_blocking`) in latency-sensitive async code.
///
/// ```
/// # fn main() -> seq_stream::Result<()> {
/// use seq_stream::{Backend, StoreRoot};
///
/// let dir = tempfile::tempdir().expect("temp dir");
/// let root = StoreRoot::open(dir.path(), Backend::Redb)?;
/// let store = root.create()?;
/// assert_eq!(root.list()?, vec![store.id()]);
/// assert_eq!(root.open_store(store.id())?.id(), store.id());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StoreRoot {
    shared: Arc<RootShared>,
}

#[derive(Debug)]
struct RootShared {
    dir: PathBuf,
    backend: Backend,
    options: StoreOptions,
    /// Stores opened through this root, by id. Weak, so that dropping every
    /// handle of a store still closes it.
    open: Mutex<HashMap<Uuid, Weak<Inner>>>,
}

impl StoreRoot {
    /// Opens (creating if needed) the root directory `dir` whose stores use
    /// `backend`, with default [`StoreOptions`] for every store.
    ///
    /// Leftovers of a create or drop interrupted by a crash (`.creating-*`,
    /// `.dropping-*`) are removed, so a root directory should be used by one
    /// process at a time.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the directory cannot be created or read.
    pub fn open(dir: impl AsRef<Path>, backend: Backend) -> Result<Self> {
        Self::open_with(dir, backend, StoreOptions::default())
    }

    /// Like [`StoreRoot::open`], opening every store with `options`.
    ///
    /// # Errors
    ///
    /// As [`StoreRoot::open`].
    pub fn open_with(
        dir: impl AsRef<Path>,
        backend: Backend,
        options: StoreOptions,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io)?;
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(CREATING) || name.starts_with(DROPPING) {
                std::fs::remove_dir_all(entry.path()).map_err(io)?;
            }
        }
        let shared = RootShared {
            dir,
            backend,
            options,
            open: Mutex::new(HashMap::new()),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The backend of this root's stores.
    pub fn backend(&self) -> Backend {
        self.shared.backend
    }

    /// The directory of store `id` (whether or not it exists).
    pub fn store_dir(&self, id: Uuid) -> PathBuf {
        self.shared.dir.join(id.hyphenated().to_string())
    }

    /// Creates a new, empty store with a fresh UUID and opens it. The store's
    /// [`Store::id`] is the UUID its directory is named by.
    ///
    /// The store is built in a `.creating-<uuid>` directory (identity record
    /// written and synced) and then renamed into place, so [`StoreRoot::list`]
    /// never shows a half-created store, even after a crash.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when a directory or the storage cannot be created.
    pub fn create(&self) -> Result<Store> {
        let id = Uuid::new_v4();
        let staging = self
            .shared
            .dir
            .join(format!("{CREATING}{}", id.hyphenated()));
        let result = self.build(id, &staging);
        if result.is_err() {
            // Best effort: a leftover is removed at the next StoreRoot::open.
            let _ = std::fs::remove_dir_all(&staging);
        }
        result?;
        let mut open = self.registry();
        let store = self.open_dir(id)?;
        open.insert(id, Arc::downgrade(&store.inner));
        Ok(store)
    }

    fn build(&self, id: Uuid, staging: &Path) -> Result<()> {
        std::fs::create_dir(staging).map_err(io)?;
        {
            let storage = open_storage(self.shared.backend, staging)?;
            let created = meta::create_identity(&*storage, id)?;
            if created != id {
                return Err(Error::corrupt_at(
                    &meta::store_key(),
                    "new store directory already held a store",
                ));
            }
            storage.flush()?;
            // Dropping the storage closes it before the rename.
        }
        std::fs::rename(staging, self.store_dir(id)).map_err(io)?;
        sync_dir(&self.shared.dir)
    }

    /// Opens store `id`, or returns the running [`Store`] if it is open in
    /// this process already (through this root). A store closed with
    /// [`Store::close`] is opened afresh; a closed store keeps its storage
    /// open until its last handle is dropped, so on a backend that locks its
    /// files (RocksDB) drop the old handles first.
    ///
    /// # Errors
    ///
    /// * [`Error::NotFound`]: no store `id` in this root.
    /// * [`Error::Corrupt`]: the directory holds no store, or a store with a
    ///   different id.
    /// * [`Error::Storage`]: the storage cannot be opened (for example, it
    ///   is locked by another process).
    pub fn open_store(&self, id: Uuid) -> Result<Store> {
        let mut open = self.registry();
        if let Some(store) = open
            .get(&id)
            .and_then(Weak::upgrade)
            .map(|inner| Store { inner })
            && !store.is_closed()
        {
            return Ok(store);
        }
        open.remove(&id);
        if !self.store_dir(id).is_dir() {
            return Err(not_found(id));
        }
        let store = self.open_dir(id)?;
        open.insert(id, Arc::downgrade(&store.inner));
        Ok(store)
    }

    /// Opens the storage in the directory of `id` and checks its identity
    /// before starting a writer (which would otherwise create one).
    fn open_dir(&self, id: Uuid) -> Result<Store> {
        let dir = self.store_dir(id);
        if !holds_storage(self.shared.backend, &dir) {
            return Err(Error::corrupt_at(
                &meta::store_key(),
                format!("directory {} holds no store", dir.display()),
            ));
        }
        let storage = open_storage(self.shared.backend, &dir)?;
        match meta::load_identity(&*storage)? {
            Some(found) if found == id => {}
            Some(found) => {
                return Err(Error::corrupt_at(
                    &meta::store_key(),
                    format!("directory {} holds store {found}", dir.display()),
                ));
            }
            None => {
                return Err(Error::corrupt_at(
                    &meta::store_key(),
                    format!("directory {} holds no store", dir.display()),
                ));
            }
        }
        Store::open_arc(storage, self.shared.options.clone())
    }

    /// The ids of every store in this root, sorted. Directories whose names
    /// are not UUIDs are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] when the directory cannot be read.
    pub fn list(&self) -> Result<Vec<Uuid>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.shared.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if !entry.file_type().map_err(io)?.is_dir() {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Ok(id) = Uuid::parse_str(name)
                && id.hyphenated().to_string() == name
            {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Deletes store `id` and all its data.
    ///
    /// Refused while the store is open through this root: close it
    /// ([`Store::close`]) or drop every handle first. The directory is first
    /// renamed to `.dropping-<uuid>` (so the store disappears from
    /// [`StoreRoot::list`] at once) and then removed.
    ///
    /// # Errors
    ///
    /// * [`Error::NotFound`]: no store `id` in this root.
    /// * [`Error::Conflict`]: the store is open.
    /// * [`Error::Storage`]: the directory cannot be removed.
    pub fn drop_store(&self, id: Uuid) -> Result<()> {
        let mut open = self.registry();
        if let Some(inner) = open.get(&id).and_then(Weak::upgrade) {
            let store = Store { inner };
            if !store.is_closed() {
                return Err(Error::Conflict {
                    what: format!("store {id} is open; close it first"),
                });
            }
        }
        open.remove(&id);
        let dir = self.store_dir(id);
        if !dir.is_dir() {
            return Err(not_found(id));
        }
        let doomed = self
            .shared
            .dir
            .join(format!("{DROPPING}{}", id.hyphenated()));
        std::fs::rename(&dir, &doomed).map_err(io)?;
        sync_dir(&self.shared.dir)?;
        std::fs::remove_dir_all(&doomed).map_err(io)
    }

    fn registry(&self) -> MutexGuard<'_, HashMap<Uuid, Weak<Inner>>> {
        let mut open = self.shared.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, weak| weak.strong_count() > 0);
        open
    }
}

/// Opens the backend's storage in `dir` (the same layout as
/// [`Store::open_redb`] / `Store::open_rocksdb`).
fn open_storage(backend: Backend, dir: &Path) -> Result<Arc<dyn Storage>> {
    match backend {
        #[cfg(feature = "redb")]
        Backend::Redb => {
            std::fs::create_dir_all(dir).map_err(io)?;
            Ok(Arc::new(crate::store::redb_storage(dir)?))
        }
        #[cfg(feature = "rocksdb")]
        Backend::RocksDb => Ok(Arc::new(seq_rocks::RocksStorage::open(dir)?)),
    }
}

/// Whether `dir` holds the backend's files (checked before opening, which
/// would create them).
fn holds_storage(backend: Backend, dir: &Path) -> bool {
    match backend {
        #[cfg(feature = "redb")]
        Backend::Redb => dir.join("seq.redb").is_file(),
        #[cfg(feature = "rocksdb")]
        Backend::RocksDb => dir.join("CURRENT").is_file(),
    }
}

/// Makes a rename or create inside `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io)
}

fn io(error: std::io::Error) -> Error {
    Error::from(seq_storage::Error::from(error))
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound {
        what: format!("store {id}"),
    }
}
