//! Keeping this daemon's directory, access rules, secrets and email monitoring
//! routes current when other daemons share the backend (PostgreSQL): a task
//! asks each for the backend's versions
//! every [`EVERY`] (one cheap query each when nothing moved) and brings in what
//! other daemons wrote; a refresh moves the generation, so live sessions
//! re-check. A change notification (LISTEN/NOTIFY) can call the same
//! `refresh()` methods sooner; this poll is the fallback that bounds the delay.
//! The embedded backend has one process and needs none.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use std::sync::atomic::{AtomicU64, Ordering};

use super::secrets::Secrets;
use crate::admin::start::route_monitoring;
use crate::shared::Shared;
use crate::store::Versioned;
use crate::store::{StateChange, next_state_change};

/// The poll interval: a change made on another daemon is enforced here within
/// this plus one query.
pub const EVERY: Duration = crate::store::STATE_POLL;

/// Whether the last round failed, so an outage is logged once when it starts
/// and once when it ends, not three times a second.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    failing: bool,
}

/// What to log after a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Nothing (still fine, or still failing).
    Quiet,
    /// The first failure after a good round (with its message).
    Failing(String),
    /// The first good round after failures.
    Recovered,
}

impl Health {
    /// Records a round's outcome (`Err` with the failure's message) and says
    /// what to log.
    pub fn after(&mut self, outcome: Result<(), String>) -> Report {
        let was = std::mem::replace(&mut self.failing, outcome.is_err());
        match (was, outcome) {
            (false, Err(e)) => Report::Failing(e),
            (true, Ok(())) => Report::Recovered,
            _ => Report::Quiet,
        }
    }
}

/// One piece of cached state the refresher keeps current: a blocking call that
/// brings in what other daemons wrote, its error naming what failed.
pub type Follower = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The followers of a daemon: its directory, its access rules, its secrets and
/// its email monitoring routes (settings kept as tags: routed again when the
/// store's `tags` version moved, and at the first round).
pub fn followers(shared: &Shared, secrets: Arc<Secrets>) -> Vec<Follower> {
    let (directory, access, config) = (
        shared.directory.clone(),
        shared.access.clone(),
        shared.config.clone(),
    );
    let (routed_dir, store, events, routed_config) = (
        shared.directory.clone(),
        shared.store.clone(),
        shared.events.clone(),
        shared.config.clone(),
    );
    let routed_at = AtomicU64::new(u64::MAX);
    vec![
        Box::new(move || {
            directory
                .refresh()
                .map(drop)
                .map_err(|e| format!("directory: {e}"))
        }),
        Box::new(move || {
            access
                .refresh()
                .map(drop)
                .map_err(|e| format!("access rules: {e}"))
        }),
        Box::new(move || secrets.follow(&config).map(drop)),
        Box::new(move || {
            let version = store
                .state_version(Versioned::Tags)
                .map_err(|e| format!("tags version: {e}"))?;
            if routed_at.swap(version, Ordering::Relaxed) != version {
                route_monitoring(&routed_dir, &store, &events, &routed_config);
            }
            Ok(())
        }),
    ]
}

/// One round: every follower, on a blocking thread (the backends block).
async fn round(followers: &Arc<Vec<Follower>>) -> Result<(), String> {
    let all = followers.clone();
    let done = tokio::task::spawn_blocking(move || {
        let errors: Vec<String> = all.iter().filter_map(|f| f().err()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    })
    .await;
    done.map_err(|e| format!("refresh task: {e}"))?
}

/// Starts the refresher: a round at each of `changes` (another daemon's write,
/// told by LISTEN/NOTIFY) and at least every [`EVERY`]; it stops when
/// `draining` is cancelled.
pub fn spawn(
    followers: Vec<Follower>,
    mut changes: Option<broadcast::Receiver<StateChange>>,
    draining: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let followers = Arc::new(followers);
    tokio::spawn(async move {
        let mut health = Health::default();
        loop {
            tokio::select! {
                _ = draining.cancelled() => break,
                _ = tokio::time::sleep(EVERY) => {}
                _ = next_state_change(&mut changes) => {}
            }
            match health.after(round(&followers).await) {
                Report::Quiet => {}
                Report::Failing(e) => tracing::warn!(
                    error = %e,
                    "cannot refresh the directory, access rules and secrets from the store; \
                     serving what was loaded until it answers"
                ),
                Report::Recovered => {
                    tracing::info!("directory, access rules and secrets refresh again")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AccessEngine;
    use crate::directory::Directory;

    #[test]
    fn an_outage_is_reported_when_it_starts_and_when_it_ends() {
        let mut h = Health::default();
        assert_eq!(h.after(Ok(())), Report::Quiet);
        assert_eq!(h.after(Err("down".into())), Report::Failing("down".into()));
        assert_eq!(h.after(Err("still".into())), Report::Quiet);
        assert_eq!(h.after(Ok(())), Report::Recovered);
        assert_eq!(h.after(Ok(())), Report::Quiet);
    }

    #[test]
    fn the_poll_bounds_the_delay_well_under_a_second() {
        assert!(EVERY >= Duration::from_millis(250) && EVERY <= Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_refresher_brings_in_the_other_daemons_writes_and_stops_when_draining() {
        let backend = Arc::new(crate::directory::MemoryBackend::new());
        let a = Directory::open(backend.clone()).unwrap();
        let b = Arc::new(Directory::open(backend).unwrap());
        let keys = crate::access::TokenKeys::generate("k1");
        let access_backend = Arc::new(crate::access::MemoryBackend::new());
        let access =
            Arc::new(AccessEngine::open(access_backend, Default::default(), keys).unwrap());
        let draining = CancellationToken::new();
        let followers: Vec<Follower> = vec![
            Box::new({
                let b = b.clone();
                move || b.refresh().map(drop).map_err(|e| e.to_string())
            }),
            Box::new(move || access.refresh().map(drop).map_err(|e| e.to_string())),
            Box::new(|| Err("a follower that fails does not stop the others".into())),
        ];
        let task = spawn(followers, None, draining.clone());
        a.create_organization("acme", "acme.test").unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while b.list_organizations().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "not refreshed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        draining.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
