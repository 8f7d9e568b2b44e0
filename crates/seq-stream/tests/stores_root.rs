//! A root directory of stores: create, list, open, drop; ids match their
//! directories; stores never share data; one running store per id.
//!
//! A store root is directory-based, so these run on redb (the lead runs the
//! RocksDB variant with `--features rocksdb`).
#![allow(clippy::unwrap_used)] // Helpers of tests: a failed unwrap is a test failure.

use std::time::Duration;

use seq_core::SpaceOffset;
use seq_stream::{Backend, CursorPosition, Error, StoreRoot};
use uuid::Uuid;

fn backends() -> Vec<Backend> {
    #[allow(unused_mut)]
    let mut backends = vec![Backend::Redb];
    #[cfg(feature = "rocksdb")]
    backends.push(Backend::RocksDb);
    backends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_create_list_open_and_drop_stores() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let root = StoreRoot::open(dir.path(), backend).unwrap();
        assert!(root.list().unwrap().is_empty());

        let a = root.create().unwrap();
        let b = root.create().unwrap();
        assert_ne!(a.id(), b.id());
        let mut expected = vec![a.id(), b.id()];
        expected.sort();
        assert_eq!(root.list().unwrap(), expected);
        assert!(root.store_dir(a.id()).is_dir());
        let (a_id, b_id) = (a.id(), b.id());

        // Close and drop every handle, then reopen through a new root.
        a.close().await.unwrap();
        b.close().await.unwrap();
        drop((a, b));
        let root = StoreRoot::open(dir.path(), backend).unwrap();
        assert_eq!(root.list().unwrap(), expected);
        let a = root.open_store(a_id).unwrap();
        assert_eq!(a.id(), a_id);

        // Refused while open; allowed once closed.
        assert!(matches!(root.drop_store(a_id), Err(Error::Conflict { .. })));
        a.close().await.unwrap();
        root.drop_store(a_id).unwrap();
        assert_eq!(root.list().unwrap(), vec![b_id]);
        assert!(matches!(root.open_store(a_id), Err(Error::NotFound { .. })));
        assert!(matches!(root.drop_store(a_id), Err(Error::NotFound { .. })));
        assert!(!root.store_dir(a_id).exists());

        // Dropping every handle also closes the store, so it can be dropped.
        let b = root.open_store(b_id).unwrap();
        drop(b);
        root.drop_store(b_id).unwrap();
        assert!(root.list().unwrap().is_empty());
        assert!(matches!(
            root.open_store(Uuid::new_v4()),
            Err(Error::NotFound { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_return_the_running_store_when_opened_twice() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let root = StoreRoot::open(dir.path(), backend).unwrap();
        let created = root.create().unwrap();
        let again = root.open_store(created.id()).unwrap();
        let third = root.clone().open_store(created.id()).unwrap();
        // One writer: a commit through one handle is seen by the others'
        // commit counters at once (separate instances would not share them).
        let commit = created.flush().await.unwrap();
        assert_eq!(again.commit_seqnum(), commit);
        assert_eq!(third.commit_seqnum(), commit);

        // After close (and dropping every handle: a closed store keeps its
        // storage open until then), opening gives a fresh running store.
        created.close().await.unwrap();
        let id = created.id();
        drop((created, again, third));
        let reopened = root.open_store(id).unwrap();
        assert!(reopened.flush().await.unwrap() > commit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_keep_stores_apart() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let root = StoreRoot::open(dir.path(), backend).unwrap();
        let a = root.create().unwrap();
        let b = root.create().unwrap();
        let position = CursorPosition::new().with_space("s", SpaceOffset::default());
        a.commit_cursor("c", position).await.unwrap();
        assert!(b.load_cursor("c").await.unwrap().is_none());
        assert!(b.list_cursors().await.unwrap().is_empty());
        // Lease tokens count per store.
        let la = a.acquire_lease("k", Duration::from_secs(30)).await.unwrap();
        let lb = b.acquire_lease("k", Duration::from_secs(30)).await.unwrap();
        assert_eq!((la.token(), lb.token()), (1, 1));
        assert!(
            b.check_fence(&la.fence()).await.is_ok(),
            "same token, other store: its own lease"
        );
        la.release().await.unwrap();
        assert!(
            a.acquire_lease("k", Duration::from_secs(30))
                .await
                .unwrap()
                .token()
                == 2
        );
        assert!(matches!(
            b.acquire_lease("k", Duration::from_secs(30)).await,
            Err(Error::Conflict { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_ignore_foreign_and_half_made_directories() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(format!(".creating-{}", Uuid::new_v4()));
        std::fs::create_dir(&stale).unwrap();
        std::fs::create_dir(dir.path().join("not-a-store")).unwrap();
        std::fs::write(dir.path().join(Uuid::new_v4().to_string()), b"a file").unwrap();
        let empty = Uuid::new_v4();
        std::fs::create_dir(dir.path().join(empty.to_string())).unwrap();

        let root = StoreRoot::open(dir.path(), backend).unwrap();
        assert!(!stale.exists(), "an interrupted create is cleaned up");
        assert_eq!(root.list().unwrap(), vec![empty]);
        // A UUID-named directory without a store is corrupt, not a new store.
        assert!(matches!(root.open_store(empty), Err(Error::Corrupt { .. })));

        // A store directory renamed to another UUID is refused.
        let store = root.create().unwrap();
        let id = store.id();
        store.close().await.unwrap();
        drop(store);
        let moved = Uuid::new_v4();
        std::fs::rename(root.store_dir(id), root.store_dir(moved)).unwrap();
        assert!(matches!(root.open_store(moved), Err(Error::Corrupt { .. })));
    }
}
