//! Housekeeping a store needs so that nothing grows forever: pruning the change
//! feed, and on a shared store (PostgreSQL) expired [`SharedState`] rows and old
//! directory tombstones.
//!
//! Owns the interface ([`Housekeeping`], a supertrait of
//! [`Backend`](super::Backend)), the pruning rule and its constants, and the
//! pure decision of how much of a mailbox's feed goes ([`prune_through`]). The
//! task that runs it on a schedule, once for all daemons, is
//! `retention::housekeeping`.
//!
//! **The feed's pruning rule.** A change stays while it is younger than
//! [`FEED_HORIZON`] (30 days) **or** one of its mailbox's latest
//! [`FEED_KEEP_LATEST`] (1,000) changes; only an unbroken run of the oldest
//! changes goes (a prefix of the mailbox's feed), so "every change after a
//! position is still there" is one comparison with the mailbox's
//! `pruned_seq`. Why: every reader of the feed holds a position (an IMAP
//! session's cursor, an EWS sync state or watermark, a QRESYNC MODSEQ) and
//! continues from it; a client that was away less than a month continues
//! incrementally (a laptop back from holidays), one away longer starts over,
//! which every client can do (Exchange invalidates old sync states; RFC 7162
//! lets VANISHED (EARLIER) name UIDs the client may never have seen). The
//! latest 1,000 keep a quiet mailbox's whole recent history whatever its age,
//! and bound a busy one to 30 days of changes. A mailbox's feed is thus at most
//! max(1,000, 30 days of changes) rows.
//!
//! **What a reader below the horizon gets.** The store remembers, per mailbox,
//! the highest pruned `seq` (`pruned_seq`) and, per folder, the highest MODSEQ
//! of a pruned expunge (`pruned_modseq`). `changes_since` from a position below
//! `pruned_seq`, and `expunged_since` from a MODSEQ below `pruned_modseq`,
//! answer [`StoreError::FeedPruned`](super::StoreError::FeedPruned) instead of
//! a feed with a hole: an IMAP view reloads its folder, QRESYNC answers every
//! UID the client may know that no longer exists, an EWS sync state is
//! ErrorInvalidSyncStateData, an EWS watermark ErrorInvalidWatermark.

use std::time::Duration;

use async_trait::async_trait;

use super::{MailboxId, Result};

/// Changes younger than this are never pruned.
pub const FEED_HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);
/// Each mailbox keeps at least its latest this many changes, however old.
pub const FEED_KEEP_LATEST: usize = 1000;
/// Feed rows deleted per store write: a write holds the mailbox (PostgreSQL's
/// row lock, SQLite's one writer) only briefly.
pub const FEED_PRUNE_BATCH: usize = 5000;
/// Directory tombstones (deleted tokens) younger than this are kept: a daemon
/// behind by more reloads its whole directory instead of catching up.
pub const TOMBSTONE_HORIZON: Duration = Duration::from_secs(24 * 3600);
/// Expired shared-state rows deleted per store write.
pub const SHARED_STATE_BATCH: usize = 5000;

/// The store's side of housekeeping. Each call is bounded (one batch) so the
/// task running it can pace itself and stop between calls.
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Mailboxes whose feed may hold more than `keep_latest` changes: those
    /// worth a [`Housekeeping::prune_feed`] (every mailbox where the store
    /// cannot tell cheaply).
    async fn feed_candidates(&self, keep_latest: usize) -> Result<Vec<String>>;
    /// Deletes up to `batch` of `mailbox`'s oldest changes that the rule allows
    /// (recorded before `older_than_ms` and not among its latest
    /// `keep_latest`), moving its `pruned_seq` and its folders'
    /// `pruned_modseq` in the same write; returns how many went (0: done).
    async fn prune_feed(
        &self,
        mailbox: &MailboxId,
        older_than_ms: i64,
        keep_latest: usize,
        batch: usize,
    ) -> Result<u64>;
    /// Deletes up to `batch` shared-state rows expired at `now_ms`; returns how
    /// many went. A store without shared state has none.
    async fn delete_expired_shared_state(&self, _now_ms: i64, _batch: usize) -> Result<u64> {
        Ok(0)
    }
    /// Deletes directory tombstones made before `older_than_ms` and records
    /// the highest version deleted, so a reader behind it reloads the whole
    /// directory; returns how many went. A store that keeps no tombstones
    /// (one daemon owns it) has none.
    async fn prune_tombstones(&self, _older_than_ms: i64) -> Result<u64> {
        Ok(0)
    }
}

/// The pure rule of [`Housekeeping::prune_feed`]: given a mailbox's oldest
/// changes that are not among its latest kept ones, as `(seq, recorded_ms)` in
/// `seq` order, the `seq` through which they may go: the end of the leading run
/// recorded before `older_than_ms` (a change recorded later stops the run, even
/// if older ones follow after a clock step back). `None`: nothing goes.
pub fn prune_through(oldest: &[(i64, i64)], older_than_ms: i64) -> Option<i64> {
    oldest
        .iter()
        .take_while(|&&(_, at)| at < older_than_ms)
        .last()
        .map(|&(seq, _)| seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_leading_run_of_old_changes_goes() {
        let rows = [(3, 10), (5, 20), (9, 30), (12, 40)];
        assert_eq!(prune_through(&rows, 25), Some(5));
        assert_eq!(prune_through(&rows, 100), Some(12));
        assert_eq!(
            prune_through(&rows, 10),
            None,
            "strictly before the horizon"
        );
        assert_eq!(prune_through(&[], 100), None);
        // A clock stepped back: the young change in the middle keeps the rest.
        let stepped = [(1, 10), (2, 90), (3, 5)];
        assert_eq!(prune_through(&stepped, 50), Some(1));
    }
}
