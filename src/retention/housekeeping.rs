//! The housekeeper: the background task that keeps the store from growing
//! forever. Every hour (with jitter, the first round a few minutes after start)
//! it prunes each mailbox's change feed by the rule of `store::housekeeping`,
//! deletes expired shared-state rows and prunes old directory tombstones (both
//! PostgreSQL only; the embedded store has neither).
//!
//! One daemon does it for all: a round runs under `Backend::singleton`
//! ("housekeeping"), so on a shared store the daemons never prune at once.
//! Bounded like the retention sweep: one batch per store write, and after each
//! write a pause as long as the write took, so deliveries queued meanwhile go
//! first. No body sweep: a body goes in the transaction that expunges its last
//! message, on both backends.
//!
//! Counted at `/metrics` (`mailgate_housekeeping_*`) and logged at info when a
//! round deleted anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

use crate::events::Metrics;
use crate::store::housekeeping::{
    FEED_HORIZON, FEED_KEEP_LATEST, FEED_PRUNE_BATCH, SHARED_STATE_BATCH, TOMBSTONE_HORIZON,
};
use crate::store::{Backend, StoreError};

/// Time between the end of one round and the start of the next, before jitter.
pub const INTERVAL: Duration = Duration::from_secs(3600);
/// The first round's wait after start, before jitter: late enough not to slow
/// a start, soon enough that a daemon restarted often still prunes.
pub const FIRST_ROUND: Duration = Duration::from_secs(300);
/// Each wait is lengthened by up to this much at random, so daemons started
/// together do not all ask for the singleton in the same second.
pub const JITTER: Duration = Duration::from_secs(300);

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HousekeepingReport {
    /// Mailboxes whose feed was looked at (those holding more than the kept latest).
    pub mailboxes: u64,
    /// Change feed rows deleted.
    pub changes: u64,
    /// Expired shared-state rows deleted.
    pub shared_state: u64,
    /// Directory tombstones deleted.
    pub tombstones: u64,
    /// Steps that stopped on a store error (retried next round).
    pub errors: u64,
}

/// The housekeeping families at `/metrics`.
#[derive(Clone, Default)]
pub struct HousekeepingMetrics {
    /// Rounds finished.
    pub rounds: Counter,
    /// Change feed rows pruned.
    pub changes: Counter,
    /// Expired shared-state rows deleted.
    pub shared_state: Counter,
    /// Directory tombstones pruned.
    pub tombstones: Counter,
    /// Steps that failed on a store error.
    pub errors: Counter,
}

impl HousekeepingMetrics {
    /// Creates the families and registers them with the daemon's registry.
    pub fn registered(metrics: &Metrics) -> HousekeepingMetrics {
        let m = HousekeepingMetrics::default();
        for (name, help, c) in [
            (
                "mailgate_housekeeping_rounds",
                "Housekeeping rounds finished",
                &m.rounds,
            ),
            (
                "mailgate_housekeeping_changes_pruned",
                "Change feed entries pruned",
                &m.changes,
            ),
            (
                "mailgate_housekeeping_shared_state_deleted",
                "Expired shared-state rows deleted",
                &m.shared_state,
            ),
            (
                "mailgate_housekeeping_tombstones_pruned",
                "Directory tombstones pruned",
                &m.tombstones,
            ),
            (
                "mailgate_housekeeping_errors",
                "Housekeeping steps that failed on a store error (retried next round)",
                &m.errors,
            ),
        ] {
            metrics.register(name, help, c.clone());
        }
        m
    }
}

/// Runs housekeeping over one store.
pub struct Housekeeper {
    store: Arc<dyn Backend>,
    metrics: HousekeepingMetrics,
}

impl Housekeeper {
    /// A housekeeper counting into `metrics`.
    pub fn new(store: Arc<dyn Backend>, metrics: HousekeepingMetrics) -> Housekeeper {
        Housekeeper { store, metrics }
    }

    /// A round after `first`, then every [`INTERVAL`] after the end of the
    /// previous one, each wait plus up to [`JITTER`], until `stop` is cancelled
    /// (a round in progress stops between writes).
    pub async fn run(self, first: Duration, stop: CancellationToken) {
        let mut wait = first;
        loop {
            let jitter = JITTER.mul_f64(rand::random::<f64>());
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait + jitter) => {}
            }
            wait = INTERVAL;
            let Some(_held) = super::sweeper::hold(&*self.store, "housekeeping").await else {
                continue;
            };
            let started = Instant::now();
            let report = self.round(crate::clock::now_ms(), &stop).await;
            let seconds = started.elapsed().as_secs_f64();
            if report.changes + report.shared_state + report.tombstones + report.errors > 0 {
                tracing::info!(?report, seconds, "housekeeping");
            } else {
                tracing::debug!(?report, seconds, "housekeeping");
            }
        }
    }

    /// One round as of `now_ms` (the tests' clock: they pass a time instead of
    /// ageing the feed).
    pub async fn round(&self, now_ms: i64, stop: &CancellationToken) -> HousekeepingReport {
        let mut report = HousekeepingReport::default();
        let feed_before = now_ms.saturating_sub(millis(FEED_HORIZON));
        match self.store.feed_candidates(FEED_KEEP_LATEST).await {
            Ok(mailboxes) => {
                for mailbox in mailboxes {
                    if stop.is_cancelled() {
                        break;
                    }
                    report.mailboxes += 1;
                    let pruned = paced(stop, || {
                        self.store.prune_feed(
                            &mailbox,
                            feed_before,
                            FEED_KEEP_LATEST,
                            FEED_PRUNE_BATCH,
                        )
                    })
                    .await;
                    report.changes += self.settle(pruned, &self.metrics.changes, &mut report);
                }
            }
            Err(e) => self.failed(e, &mut report),
        }
        let expired = paced(stop, || {
            self.store
                .delete_expired_shared_state(now_ms, SHARED_STATE_BATCH)
        })
        .await;
        report.shared_state += self.settle(expired, &self.metrics.shared_state, &mut report);
        if !stop.is_cancelled() {
            let before = now_ms.saturating_sub(millis(TOMBSTONE_HORIZON));
            let gone = self
                .store
                .prune_tombstones(before)
                .await
                .map_err(|e| (0, e));
            report.tombstones += self.settle(gone, &self.metrics.tombstones, &mut report);
        }
        self.metrics.rounds.inc();
        report
    }

    /// A step's count, added to its metric; its failure counted in `report`.
    fn settle(
        &self,
        done: Result<u64, (u64, StoreError)>,
        metric: &Counter,
        report: &mut HousekeepingReport,
    ) -> u64 {
        let n = match done {
            Ok(n) => n,
            Err((n, e)) => {
                self.failed(e, report);
                n
            }
        };
        metric.inc_by(n);
        n
    }

    fn failed(&self, e: StoreError, report: &mut HousekeepingReport) {
        tracing::warn!(error = %e, "housekeeping step failed");
        report.errors += 1;
        self.metrics.errors.inc();
    }
}

/// Runs a batch step until it deletes nothing or `stop` is cancelled, pausing
/// after each write as long as it took; the rows deleted, with the error that
/// ended it early.
async fn paced<F, Fut>(stop: &CancellationToken, mut step: F) -> Result<u64, (u64, StoreError)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<u64>>,
{
    let mut done = 0;
    while !stop.is_cancelled() {
        let started = Instant::now();
        match step().await {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => return Err((done, e)),
        }
        tokio::time::sleep(started.elapsed()).await;
    }
    Ok(done)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FolderKind, NewMessage};

    /// A store whose mailbox `u` has `n` changes in its feed (one append).
    async fn store_with_changes(dir: &std::path::Path, n: usize) -> Arc<dyn Backend> {
        let store = crate::store::testing::open(&dir.join("s.sqlite"));
        store.create_mailbox("u", 1 << 30).await.unwrap();
        let inbox = store
            .folders("u")
            .await
            .unwrap()
            .into_iter()
            .find(|f| f.kind == Some(FolderKind::Inbox))
            .unwrap();
        let messages = (0..n)
            .map(|_| NewMessage {
                body: Arc::from(&b"Subject: x\r\n\r\nx\r\n"[..]),
                internal_date: 0,
                flags: vec![],
                properties: vec![],
            })
            .collect();
        store.append_all(inbox.id, messages).await.unwrap().unwrap();
        store
    }

    #[tokio::test]
    async fn a_round_prunes_only_changes_past_the_horizon_and_beyond_the_latest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_changes(dir.path(), FEED_KEEP_LATEST + 7).await;
        let metrics = Metrics::new();
        let keeper = Housekeeper::new(store.clone(), HousekeepingMetrics::registered(&metrics));
        let stop = CancellationToken::new();

        // Within the horizon: nothing goes.
        let report = keeper.round(crate::clock::now_ms(), &stop).await;
        assert_eq!((report.mailboxes, report.changes), (1, 0));
        assert!(store.changes_since("u", 0, 10).await.is_ok());

        // A month and a day later: all but the latest kept.
        let later = crate::clock::now_ms() + millis(FEED_HORIZON) + 86_400_000;
        let report = keeper.round(later, &stop).await;
        assert_eq!(report.changes, 7);
        assert_eq!(report.errors, 0);
        let kept = store.changes_since("u", 7, 10_000);
        assert!(matches!(
            store.changes_since("u", 0, 10).await,
            Err(StoreError::FeedPruned)
        ));
        let latest = store.latest_change("u").await.unwrap();
        let kept = kept.await.unwrap_or_default();
        assert!(kept.len() <= FEED_KEEP_LATEST && kept.last().map(|c| c.seq) == Some(latest));
        let text = metrics.render();
        assert!(
            text.contains("mailgate_housekeeping_changes_pruned_total 7"),
            "{text}"
        );
        assert!(
            text.contains("mailgate_housekeeping_rounds_total 2"),
            "{text}"
        );

        // Nothing left to do: the mailbox is no longer a candidate.
        let report = keeper.round(later, &stop).await;
        assert_eq!(report, HousekeepingReport::default());
    }

    #[tokio::test]
    async fn a_stopped_round_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_changes(dir.path(), FEED_KEEP_LATEST + 3).await;
        let keeper = Housekeeper::new(store.clone(), HousekeepingMetrics::default());
        let stop = CancellationToken::new();
        stop.cancel();
        let later = crate::clock::now_ms() + millis(FEED_HORIZON) + 86_400_000;
        let report = keeper.round(later, &stop).await;
        assert_eq!(report.changes, 0);
        assert!(store.changes_since("u", 0, 10).await.is_ok());
    }

    /// `run` ends on drain while waiting for its first round.
    #[tokio::test]
    async fn run_stops_on_drain() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_changes(dir.path(), 1).await;
        let keeper = Housekeeper::new(store, HousekeepingMetrics::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(keeper.run(FIRST_ROUND, stop.clone()));
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ended")
            .unwrap();
    }
}
