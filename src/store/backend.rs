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
use super::{Outbox, Result, Store, Tags};
use crate::access::AccessBackend;
use crate::config::{Config, StoreBackend};
use crate::directory::DirectoryBackend;

/// Everything the daemon stores, behind one object: mail ([`Store`]), the
/// outbound queue, the directory's and the access rules' persistence, and tags.
/// A new backend implements this (and its supertraits) and adds itself to
/// [`open`] and to the conformance suite's list.
pub trait Backend:
    Store + OutboundQueue + DirectoryBackend + AccessBackend + Tags + Outbox
{
    /// Group-commit counters, scraped by the metrics page.
    fn writer_stats(&self) -> &WriterStats;
    /// Writes announced to group commit ([`Store::expect_write`]) and not yet
    /// submitted: how tests see that a delivery announced itself.
    fn announced_writes(&self) -> usize;
    /// Whether other daemons may share this backend (PostgreSQL): the daemon
    /// then polls the directory and the access rules for their writes, and keeps
    /// its secrets in the backend ([`Backend::shared_secret`]) instead of files.
    fn is_shared(&self) -> bool {
        false
    }
    /// The secret stored under `name` (token keys, the generated admin key):
    /// the first daemon to ask stores `fresh()`, every daemon gets the stored
    /// value. `None` on a backend that keeps no secrets (the embedded one, whose
    /// secrets are files in the data directory). Blocking.
    fn shared_secret(&self, _name: &str, _fresh: &dyn Fn() -> String) -> Result<Option<String>> {
        Ok(None)
    }
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
}

/// Opens (creating if needed) the backend `[store]` names; refuses a corrupt
/// store or one written by a newer mailgate.
pub fn open(config: &Config) -> Result<Arc<dyn Backend>> {
    match config.store.backend {
        StoreBackend::Sqlite => open_embedded(&config.data_path(&config.store.path)),
        // Refused until the queue, directory, access rules, tags and outbox are
        // in PostgreSQL too: no daemon runs on half a backend (issue 19).
        StoreBackend::Postgres => Err(super::postgres::unsupported(
            "a daemon on PostgreSQL (the outbound queue, directory, access rules, tags and event outbox)",
        )),
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

    #[test]
    fn a_postgres_store_is_refused_until_complete() {
        let mut config = Config::embedded();
        config.store.backend = StoreBackend::Postgres;
        config.store.url = Some("postgres://mg@127.0.0.1:1/mail".into());
        let e = open(&config).err().expect("refused").to_string();
        assert!(
            e.contains("not yet supported by the postgres backend"),
            "{e}"
        );
    }
}
