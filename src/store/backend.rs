//! The one trait a store backend implements ([`Backend`]) and the factory that
//! builds the configured one from `[store]`.
//!
//! Owns the bundle of storage contracts the daemon hands around as
//! `Arc<dyn Backend>` (upcast to `Arc<dyn Store>`, `Arc<dyn OutboundQueue>`, ...
//! where a consumer needs only one) and the choice of backend; the backends
//! themselves live in their own submodules and are named nowhere else.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::queue::OutboundQueue;
use super::shared_state::SharedState;
use super::{Housekeeping, Outbox, Result, Store, Tags};
use crate::access::AccessBackend;
use crate::config::{Config, StoreBackend};
use crate::directory::DirectoryBackend;

/// Everything the daemon stores, behind one object: mail ([`Store`]), the
/// outbound queue, the directory's and the access rules' persistence, tags,
/// and the housekeeping that keeps them from growing forever ([`Housekeeping`]).
/// A new backend implements this (and its supertraits) and adds itself to
/// [`open`] and to the conformance suite's list.
pub trait Backend:
    Store + OutboundQueue + DirectoryBackend + AccessBackend + Tags + Outbox + Housekeeping
{
    /// Group-commit counters, scraped by the metrics page.
    fn writer_stats(&self) -> &WriterStats;
    /// Writes announced to group commit ([`Store::expect_write`]) and not yet
    /// submitted: how tests see that a delivery announced itself.
    fn announced_writes(&self) -> usize;
    /// Values every daemon on this store shares (login throttling), when other
    /// daemons can share the store; `None` for a store one daemon owns.
    fn shared_state(&self) -> Option<&dyn SharedState> {
        None
    }
    /// Connection-pool and cross-daemon figures for /metrics, from a backend
    /// that has them (PostgreSQL); the embedded store has none.
    fn backend_metrics(&self) -> Option<BackendMetrics> {
        None
    }
    /// State changes (directory, access rules, tags) made by other daemons on
    /// the same database, for whoever keeps a copy of that state to reload it;
    /// `None` where no other daemon can write (the embedded store).
    fn state_changes(&self) -> Option<tokio::sync::broadcast::Receiver<StateChange>> {
        None
    }
    /// Whether other daemons may share this backend (PostgreSQL): the daemon
    /// then polls the directory and the access rules for their writes, and keeps
    /// its secrets in the backend ([`Backend::shared_secret`]) instead of files.
    fn is_shared(&self) -> bool {
        false
    }
    /// Holds the job `name` (a periodic sweep) for this daemon while the guard
    /// lives, or `None` when another daemon on this store holds it now: work that
    /// one daemon must do for all runs on one. A store one daemon owns always
    /// grants it.
    fn singleton<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, Result<Option<Singleton>>> {
        Box::pin(async { Ok(Some(Singleton(Box::new(())))) })
    }
    /// This daemon's name on a shared store (stable across its restarts), for
    /// work only it may resume; empty for a store one daemon owns.
    fn node(&self) -> &str {
        ""
    }
    /// The secret stored under `name` (token keys, the generated admin key):
    /// the first daemon to ask stores `fresh()`, every daemon gets the stored
    /// value. `None` on a backend that keeps no secrets (the embedded one, whose
    /// secrets are files in the data directory). Blocking.
    fn shared_secret(&self, _name: &str, _fresh: &dyn Fn() -> String) -> Result<Option<String>> {
        Ok(None)
    }
    /// Replaces the secret under `name` with `new` if it still holds `expected`
    /// (a rotation; false when another daemon rotated first), and tells the
    /// other daemons. A `Conflict` on a backend that keeps no secrets. Blocking.
    fn replace_shared_secret(&self, _name: &str, _expected: &str, _new: &str) -> Result<bool> {
        Err(super::StoreError::Conflict(
            "this store keeps no secrets (they are files in the data directory)".into(),
        ))
    }
    /// The version of `kind` on a shared store: it moves with every write of
    /// that kind by any daemon, so one cheap read tells a poller whether to
    /// reload. Always 0 on a store one daemon owns. Blocking.
    fn state_version(&self, _kind: Versioned) -> Result<u64> {
        Ok(0)
    }
}

/// State whose writes a shared store numbers ([`Backend::state_version`]) for
/// daemons that cache it (the directory and access rules have their own
/// catch-up reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioned {
    /// Resource tags (email monitoring is configured as tags).
    Tags,
    /// The shared secrets (token keys, the generated admin key).
    Secrets,
}

/// How often a daemon on a shared store polls the versions of what it caches
/// (directory, access rules, secrets, tags): the bound on how long another
/// daemon's change takes to be enforced here when its notification is lost.
pub const STATE_POLL: std::time::Duration = std::time::Duration::from_millis(300);

/// The next change another daemon made, from [`Backend::state_changes`]: a
/// receiver that fell behind gets `Missed` (reload everything); never, without
/// notifications or once they end.
pub async fn next_state_change(
    changes: &mut Option<tokio::sync::broadcast::Receiver<StateChange>>,
) -> StateChange {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let Some(rx) = changes else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(change) => return change,
            Err(RecvError::Lagged(_)) => return StateChange::Missed,
            Err(RecvError::Closed) => *changes = None,
        }
    }
}

/// A future a [`Backend`] method returns (the trait stays object-safe).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Proof that this daemon holds a [`Backend::singleton`] job; dropping it lets
/// another daemon take the job.
pub struct Singleton(pub Box<dyn Send + Sync>);

/// What another daemon changed, as told by [`Backend::state_changes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    /// Organizations, users, groups, aliases, resources, permissions, tokens.
    Directory,
    /// Access control rules and impersonation roles.
    Access,
    /// Resource tags.
    Tags,
    /// A shared secret was rotated (token keys, the generated admin key).
    Secrets,
    /// Notifications may have been lost (the listener reconnected): reload all.
    /// A receiver that lags (`RecvError::Lagged`) should do the same.
    Missed,
}

/// A snapshot of a networked backend's connection figures (see
/// [`Backend::backend_metrics`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendMetrics {
    /// Connections the pool may open at most.
    pub pool_max: u64,
    /// Connections open now.
    pub pool_open: u64,
    /// Connections lent out now.
    pub pool_in_use: u64,
    /// Callers waiting for a connection now.
    pub pool_waiting: u64,
    /// Whole write transactions run again (serialization failure, deadlock).
    pub write_retries: u64,
    /// Notifications received, and the sum of their lags (sender's send time to
    /// receipt), milliseconds: their ratio is the mean lag.
    pub notify_received: u64,
    pub notify_lag_sum_ms: u64,
    /// The lag of the latest notification, and the largest, milliseconds.
    pub notify_last_lag_ms: u64,
    pub notify_max_lag_ms: u64,
    /// Coalesced NOTIFY statements sent, and those that failed.
    pub notify_sent: u64,
    pub notify_send_failures: u64,
    /// Times the listener connection was lost or failed to connect.
    pub listener_reconnects: u64,
}

/// Counters of a backend's writer: how well group commit is batching.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed (one WAL fsync each).
    pub commits: AtomicU64,
    /// Writes performed.
    pub writes: AtomicU64,
    /// Batches run a second time, one savepoint per job, because a job failed.
    pub redone: AtomicU64,
    /// Batches that waited for announced writes.
    pub lingered: AtomicU64,
    /// Outbound recipients whose expired lease this store took over from another
    /// daemon (a crashed or stalled one); PostgreSQL only, 0 on SQLite.
    pub lease_takeovers: AtomicU64,
    /// Finishes and defers that changed nothing because another daemon had
    /// taken the recipient over; PostgreSQL only, 0 on SQLite.
    pub lease_fenced: AtomicU64,
}

/// Opens (creating if needed) the backend `[store]` names; refuses a corrupt
/// store or one written by a newer mailgate. PostgreSQL's notify tasks start on
/// the calling runtime.
pub async fn open(config: &Config) -> Result<Arc<dyn Backend>> {
    match config.store.backend {
        StoreBackend::Sqlite => open_embedded(&config.data_path(&config.store.path)),
        StoreBackend::Postgres => open_postgres(config).await,
    }
}

/// The PostgreSQL store of `[store]`, with its pool size and its notify tasks.
async fn open_postgres(config: &Config) -> Result<Arc<dyn Backend>> {
    let store = &config.store;
    let settings = super::postgres::Settings {
        url: store.url.clone().unwrap_or_default(),
        pool_size: store.pool_size,
    };
    // The queue runner's smarthost timeouts are the `[smtp]` ones.
    let lease = super::postgres::queue::queue_lease(
        std::time::Duration::from_secs(config.smtp.command_timeout_secs),
        std::time::Duration::from_secs(config.smtp.data_timeout_secs),
    );
    let pg = super::postgres::PgStore::open(&settings)
        .await?
        .with_queue_lease(lease)
        .with_node(node_name(&config.server.data_dir)?);
    pg.start_notify(super::postgres::SAFETY_POLL);
    Ok(Arc::new(pg))
}

/// This daemon's name on a shared store: a random id kept in `data_dir/node-id`
/// (written on first start), so a restart with the same data directory is the
/// same daemon (its undelivered events wait for it) and two data directories are
/// two daemons.
fn node_name(data_dir: &Path) -> Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(super::StoreError::Io(format!("{}: {e}", path.display()))),
    }
    let name = format!("{:032x}", rand::random::<u128>());
    std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(&path, format!("{name}\n")))
        .map_err(|e| super::StoreError::Io(format!("{}: {e}", path.display())))?;
    Ok(name)
}

/// What `check-config` verifies of the store beyond the config file: for
/// PostgreSQL, that the server answers, acknowledges commits durably and holds
/// no schema newer than this build (nothing is migrated). The embedded store
/// is checked when the daemon opens it.
pub async fn check(config: &Config) -> Result<()> {
    match config.store.backend {
        StoreBackend::Sqlite => Ok(()),
        StoreBackend::Postgres => {
            super::postgres::check(config.store.url.as_deref().unwrap_or_default()).await
        }
    }
}

/// Opens the embedded store file at `path`: for tools and tests that work on a
/// data directory without a config.
pub fn open_embedded(path: &Path) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(super::sqlite::SqliteStore::open(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lagging_receiver_hears_missed_and_a_closed_one_waits_forever() {
        let (tx, rx) = tokio::sync::broadcast::channel(1);
        let mut changes = Some(rx);
        tx.send(StateChange::Directory).unwrap();
        tx.send(StateChange::Tags).unwrap();
        assert_eq!(next_state_change(&mut changes).await, StateChange::Missed);
        assert_eq!(next_state_change(&mut changes).await, StateChange::Tags);
        drop(tx);
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            next_state_change(&mut changes),
        )
        .await;
        assert!(waited.is_err() && changes.is_none());
    }

    #[tokio::test]
    async fn the_embedded_store_has_no_backend_metrics_nor_state_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_embedded(&dir.path().join("s.sqlite")).unwrap();
        assert!(store.backend_metrics().is_none());
        assert!(store.state_changes().is_none());
        assert!(check(&Config::embedded()).await.is_ok());
    }

    /// Everything `open` does for PostgreSQL but the refusal: the pool of the
    /// configured size, a working store, the notify tasks running.
    #[tokio::test]
    async fn postgres_opens_with_its_pool_size_and_notify_tasks() {
        if !crate::store::postgres::testing::available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::embedded();
        config.store.backend = StoreBackend::Postgres;
        config.store.url = Some(crate::store::postgres::testing::create_database(dir.path()).await);
        config.store.pool_size = 3;
        config.server.data_dir = dir.path().join("data");
        let store = open_postgres(&config).await.unwrap();
        store.create_mailbox("u", 1 << 20).await.unwrap();
        let m = store.backend_metrics().expect("postgres has metrics");
        assert_eq!(m.pool_max, 3);
        assert!(store.state_changes().is_some());
        // The store's own writes come back through its listener (lag counted)
        // once it listens.
        let target = || crate::store::Target {
            folder: crate::store::FolderRef::Kind("u".into(), crate::store::FolderKind::Inbox),
            flags: vec![],
            properties: vec![],
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.backend_metrics().unwrap().notify_received == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no notification came back"
            );
            let body: Arc<[u8]> = Arc::from(&b"Subject: x\r\n\r\nx\r\n"[..]);
            store.deliver(body, 0, vec![target()]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(check(&config).await.is_ok());
    }
}
