//! The signal a lease holder watches: it fires once, with the reason the
//! lease ended for this holder.

use tokio::sync::watch;

/// Why a [`LeaseSignal`] fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeaseEnd {
    /// The lease was lost: a renewal failed (the lease expired, was granted
    /// to someone else, or the store failed or closed) or its local deadline
    /// passed without a renewal. Stop fenced work: the next holder's writes
    /// fence this holder's.
    Lost,
    /// The holder released the lease (or dropped its [`crate::Lease`]).
    Released,
    /// The caller cancelled the work (see [`crate::Store::with_lease_until`]).
    Cancelled,
}

/// Fires once when a lease ends for its holder: lost, released, or
/// cancelled. Cheap to clone; every clone sees the same firing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> seq_stream::Result<()> {
/// use std::time::Duration;
/// use seq_stream::{LeaseEnd, Store};
///
/// let store = Store::open(seq_storage::MemoryStorage::new())?;
/// let lease = store.acquire_lease("leader", Duration::from_secs(5)).await?;
/// let signal = lease.signal();
/// assert!(!signal.is_fired());
/// lease.release().await?;
/// assert_eq!(signal.fired().await, LeaseEnd::Released);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LeaseSignal {
    rx: watch::Receiver<Option<LeaseEnd>>,
}

impl LeaseSignal {
    /// Whether the signal has fired.
    pub fn is_fired(&self) -> bool {
        self.rx.borrow().is_some()
    }

    /// Why it fired, if it has.
    pub fn reason(&self) -> Option<LeaseEnd> {
        *self.rx.borrow()
    }

    /// Waits until the signal fires and returns why (at once if it has).
    /// Cancel-safe.
    pub async fn fired(&self) -> LeaseEnd {
        let mut rx = self.rx.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.unwrap_or(LeaseEnd::Released),
            // Every sender is gone: the lease's state was dropped, which
            // only happens after it was released or dropped.
            Err(_) => self.reason().unwrap_or(LeaseEnd::Released),
        }
    }
}

/// The firing side.
#[derive(Debug)]
pub(crate) struct Trigger {
    tx: watch::Sender<Option<LeaseEnd>>,
}

impl Trigger {
    pub(crate) fn new() -> Self {
        Self {
            tx: watch::Sender::new(None),
        }
    }

    /// Fires with `reason` unless fired already; true if this call fired it.
    pub(crate) fn fire(&self, reason: LeaseEnd) -> bool {
        self.tx.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            *state = Some(reason);
            true
        })
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.tx.borrow().is_some()
    }

    pub(crate) fn signal(&self) -> LeaseSignal {
        LeaseSignal {
            rx: self.tx.subscribe(),
        }
    }
}
