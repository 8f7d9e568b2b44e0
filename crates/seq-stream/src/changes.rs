//! The change feed behind [`crate::Store::watch_changes`]: a counter bumped
//! whenever new data may have become visible, which followers and
//! subscriptions wait on.
//!
//! The writer bumps it after every group it applies. In multi-writer mode
//! other writers' commits must be found too:
//!
//! * a poller thread bumps it every [`crate::StoreOptions::poll_interval`]
//!   (followers then read again);
//! * on a backend that notifies ([`Storage::watch_changes`], etcd's watch),
//!   the backend bumps it at once and the poll only backs it up, at least
//!   [`NOTIFIED_POLL_INTERVAL`] apart. The backend's notifications start
//!   with the first [`ChangeFeed::subscribe`], not at open: etcd sends a
//!   watcher every write under the store's prefix, keys and values, which
//!   costs the cluster work on every commit of every instance, so a store
//!   that nobody follows does not ask for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::Duration;

use seq_storage::Storage;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// Multi-writer mode on a backend that notifies of changes: the slowest the
/// backup poll runs.
const NOTIFIED_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The receiving side of a store's change counter, with what it takes to
/// start the backend's notifications on first use.
pub(crate) struct ChangeFeed {
    receiver: watch::Receiver<u64>,
    /// Multi-writer mode only.
    notifications: Option<Notifications>,
}

/// A backend's change notifications, started once.
struct Notifications {
    storage: Arc<dyn Storage>,
    sender: Weak<watch::Sender<u64>>,
    started: Once,
    /// The poller's interval, in microseconds: slowed once the backend
    /// notifies.
    poll_micros: Arc<AtomicU64>,
}

impl ChangeFeed {
    /// The feed of a store on `storage`, and the sender its writer bumps.
    /// In multi-writer mode this starts the poller thread, which stops when
    /// the sender is dropped.
    pub(crate) fn open(
        storage: &Arc<dyn Storage>,
        multi: bool,
        poll_interval: Duration,
    ) -> Result<(Self, Arc<watch::Sender<u64>>)> {
        let (sender, receiver) = watch::channel(0);
        let sender = Arc::new(sender);
        let notifications = if multi {
            let poll_micros = Arc::new(AtomicU64::new(micros(poll_interval)));
            spawn_poller(Arc::downgrade(&sender), poll_micros.clone())?;
            Some(Notifications {
                storage: storage.clone(),
                sender: Arc::downgrade(&sender),
                started: Once::new(),
                poll_micros,
            })
        } else {
            None
        };
        let feed = Self {
            receiver,
            notifications,
        };
        Ok((feed, sender))
    }

    /// A receiver of the counter; in multi-writer mode the first call also
    /// starts the backend's notifications, if it has any. Whoever waits on
    /// the receiver reads after subscribing: a write made before the
    /// backend's notifications began is covered by the bump the backend
    /// makes once they are established.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        if let Some(notifications) = &self.notifications {
            notifications.start();
        }
        self.receiver.clone()
    }
}

impl Notifications {
    fn start(&self) {
        self.started.call_once(|| {
            let sender = self.sender.clone();
            let notify: seq_storage::ChangeNotify = Arc::new(move || {
                if let Some(sender) = sender.upgrade() {
                    sender.send_modify(|n| *n = n.wrapping_add(1));
                }
            });
            if self.storage.watch_changes(notify) {
                self.poll_micros
                    .fetch_max(micros(NOTIFIED_POLL_INTERVAL), Ordering::Relaxed);
            }
        });
    }
}

/// Bumps the counter every `interval` (re-read each time) until the writer,
/// which owns the sender, stops.
fn spawn_poller(changes: Weak<watch::Sender<u64>>, interval: Arc<AtomicU64>) -> Result<()> {
    std::thread::Builder::new()
        .name("seq-change-poll".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_micros(interval.load(Ordering::Relaxed)));
                let Some(sender) = changes.upgrade() else {
                    return;
                };
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        })
        .map(drop)
        .map_err(|e| Error::closed(format!("cannot start the change poller: {e}")))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
