//! A request to the writer and the trait its work implements.

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::GroupTx;
use crate::error::{Error, Result};
use crate::options::WriteOptions;

/// What the writer reports for an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The commit number the request's writes were given.
    pub commit: u64,
    /// The commit group's timestamp (µs since the Unix epoch).
    pub timestamp: u64,
    /// Whether the group was synced before this acknowledgement.
    pub durable: bool,
}

/// The work of one request, run on the writer thread.
pub(crate) trait Job: Send + 'static {
    /// Builds this request's writes into `tx`. An error rejects this request
    /// alone: none of its writes are committed.
    fn prepare(&mut self, tx: &mut GroupTx<'_>) -> Result<()>;

    /// Delivers the outcome: `Ok` once the group's batch is applied (and
    /// durable when the request asked for it), or the error that stopped it.
    /// Called exactly once.
    fn finish(self: Box<Self>, outcome: Result<Committed>);
}

/// A queued request.
pub(crate) struct Request {
    pub(crate) job: Box<dyn Job>,
    pub(crate) options: WriteOptions,
    /// Holds a slot of the queue's capacity until the request is finished.
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// Work a [`job_fn`] job does with its value once its group committed: on
/// the writer thread, in commit order, before the reply is sent, and whether
/// or not the caller still waits for the reply.
pub(crate) type AfterCommit<T> = Box<dyn FnOnce(&T) + Send>;

/// A job built from a closure that prepares the writes and returns a value,
/// sent back with the commit when the group lands.
pub(crate) struct FnJob<F, T> {
    prepare: F,
    output: Option<T>,
    after: Option<AfterCommit<T>>,
    reply: oneshot::Sender<Result<(T, Committed)>>,
}

/// Where a [`job_fn`] job's value and commit arrive.
pub(crate) type Reply<T> = oneshot::Receiver<Result<(T, Committed)>>;

/// Boxes `prepare` (and what to do `after` its commit) as a [`Job`]; the
/// receiver yields its value and commit.
pub(crate) fn job_fn<F, T>(prepare: F, after: Option<AfterCommit<T>>) -> (Box<dyn Job>, Reply<T>)
where
    F: FnMut(&mut GroupTx<'_>) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let (reply, receiver) = oneshot::channel();
    (
        Box::new(FnJob {
            prepare,
            output: None,
            after,
            reply,
        }),
        receiver,
    )
}

impl<F, T> Job for FnJob<F, T>
where
    F: FnMut(&mut GroupTx<'_>) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    fn prepare(&mut self, tx: &mut GroupTx<'_>) -> Result<()> {
        self.output = Some((self.prepare)(tx)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<Committed>) {
        let this = *self;
        let result = match (outcome, this.output) {
            (Ok(committed), Some(output)) => {
                if let Some(after) = this.after {
                    after(&output);
                }
                Ok((output, committed))
            }
            (Ok(_), None) => Err(Error::closed(
                "internal: job finished without being prepared",
            )),
            (Err(error), _) => Err(error),
        };
        // The caller may have stopped waiting; the outcome is then dropped
        // (the write itself is unaffected).
        let _ = this.reply.send(result);
    }
}
