//! Group pacing: whether the writer holds the next commit group open for
//! requests that are on their way.
//!
//! Callers that each wait for their acknowledgement before sending again
//! (every `produce(..).await` loop) defeat plain group commit: while one
//! group commits, only the callers *not* in it can queue, so with `n` such
//! callers the groups settle at about `n / 2` and every caller waits for two
//! commits. The callers a group just acknowledged are back within
//! microseconds, so the writer waits for them, like PostgreSQL's
//! `commit_delay` or MySQL's `binlog_group_commit_sync_delay`, but only as
//! far as the last commit shows it pays:
//!
//! * only when there are several callers: the last group had more than one
//!   request, or requests arrived while it committed (one caller in a loop
//!   never waits);
//! * for as many as the last group acknowledged, on top of those that
//!   arrived while it committed;
//! * for at most half as long as the last commit took (a wait that saves a
//!   whole commit is worth at most that), and at most
//!   [`crate::StoreOptions::group_wait`];
//! * and no longer than a quarter of that once requests stop arriving.

use std::time::Duration;

use crate::handoff::Gather;

/// The shortest quiet period worth waiting for: below it, scheduling noise
/// alone ends every wait.
const MIN_QUIET: Duration = Duration::from_micros(20);

/// What the writer remembers of its last group to pace the next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    /// The most a group is held open; zero turns pacing off.
    max_wait: Duration,
    /// Requests the last group acknowledged.
    acknowledged: usize,
    /// Requests that were queued when the last group's commit finished
    /// (they arrived while it committed).
    queued_meanwhile: usize,
    /// How long the last group's storage write took.
    commit: Duration,
}

impl Pacing {
    pub(crate) fn new(max_wait: Duration) -> Self {
        Self {
            max_wait,
            acknowledged: 0,
            queued_meanwhile: 0,
            commit: Duration::ZERO,
        }
    }

    /// Records a committed group: `acknowledged` requests, `queued_meanwhile`
    /// others waiting when its write finished, after a write of `commit`.
    pub(crate) fn committed(
        &mut self,
        acknowledged: usize,
        queued_meanwhile: usize,
        commit: Duration,
    ) {
        self.acknowledged = acknowledged;
        self.queued_meanwhile = queued_meanwhile;
        self.commit = commit;
    }

    /// Records a group that committed nothing (every request rejected, or
    /// nothing to write): no reason to wait for anyone next time.
    pub(crate) fn idle(&mut self) {
        self.acknowledged = 0;
        self.queued_meanwhile = 0;
    }

    /// How to gather the next group, or `None` to take what is queued.
    pub(crate) fn gather(&self) -> Option<Gather> {
        if self.acknowledged + self.queued_meanwhile < 2 {
            return None;
        }
        let limit = self.max_wait.min(self.commit / 2);
        if limit.is_zero() {
            return None;
        }
        Some(Gather {
            want: self.acknowledged + self.queued_meanwhile,
            quiet: (limit / 4).max(MIN_QUIET).min(limit),
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_single_caller_in_a_loop_never_waits() {
        let mut pacing = Pacing::new(MS);
        pacing.committed(1, 0, MS);
        assert_eq!(pacing.gather(), None);
    }

    #[test]
    fn two_alternating_callers_are_gathered_into_one_group() {
        let mut pacing = Pacing::new(MS);
        // One acknowledged, the other arrived while it committed.
        pacing.committed(1, 1, MS);
        let gather = pacing.gather().unwrap();
        assert_eq!(gather.want, 2);
        assert_eq!(gather.limit, MS / 2);
    }

    #[test]
    fn the_wait_is_at_most_half_the_last_commit_and_the_configured_maximum() {
        let mut pacing = Pacing::new(Duration::from_micros(300));
        pacing.committed(32, 32, 10 * MS);
        let gather = pacing.gather().unwrap();
        assert_eq!(gather.want, 64);
        assert_eq!(gather.limit, Duration::from_micros(300));
        assert_eq!(gather.quiet, Duration::from_micros(75));

        pacing.committed(32, 32, Duration::from_micros(100));
        let gather = pacing.gather().unwrap();
        assert_eq!(gather.limit, Duration::from_micros(50));
        assert_eq!(gather.quiet, MIN_QUIET);
    }

    #[test]
    fn pacing_turned_off_or_after_an_idle_group_does_not_wait() {
        let mut off = Pacing::new(Duration::ZERO);
        off.committed(64, 64, MS);
        assert_eq!(off.gather(), None);

        let mut pacing = Pacing::new(MS);
        pacing.committed(64, 64, MS);
        pacing.idle();
        assert_eq!(pacing.gather(), None);
    }

    #[test]
    fn a_commit_too_quick_to_measure_does_not_wait() {
        let mut pacing = Pacing::new(MS);
        pacing.committed(8, 8, Duration::ZERO);
        assert_eq!(pacing.gather(), None);
    }
}
