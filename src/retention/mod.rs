//! Retention policies (WorkMail's PutRetentionPolicy family) and their
//! enforcement.
//!
//! Owns the policy model and its validation ([`policy`], pure), where a policy is
//! kept ([`stored`]: one tag per organization in the store's tag table), the
//! sweeper that applies every organization's policy to its mailboxes
//! ([`sweeper`]), and its metrics; also the store's own housekeeping
//! ([`housekeeping`]: change feed pruning and the like), which runs beside the
//! sweeper the same way. The admin API's three actions call into
//! this module; `server` starts the sweeper through [`services`]. It sits on
//! the floor of `access` and `events`: it uses `store`, `directory`, the
//! metrics registry and the leaves, never a protocol, `shared` or `server`.
//!
//! Age is the item's internal date (arrival for delivered mail, the client's
//! date for IMAP APPEND; a move keeps it). The sweeper touches only the five
//! mail folders with a role (Inbox, Deleted Items, Sent Items, Drafts, Junk
//! Email), never their subfolders, Calendar, Contacts, Tasks, Notes, Outbox,
//! Archive or user folders.

pub mod housekeeping;
pub mod metrics;
pub mod policy;
pub mod stored;
pub mod sweeper;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use policy::RetentionPolicy;
pub use sweeper::{SweepReport, Sweeper};

use crate::config::RetentionSection;
use crate::directory::Directory;
use crate::events::Metrics;
use crate::net::Services;
use crate::store::Backend;

/// The most the first sweep waits after start (`retention.interval_secs` when shorter).
pub const FIRST_SWEEP_MAX: Duration = Duration::from_secs(60);

/// The sweeper as background work for `server` to run: first sweep one minute
/// after start (or after `retention.interval_secs`, when shorter), then every
/// `interval_secs` after the previous one ends, `batch_size` items per store
/// write, until `draining` is cancelled; beside it the store's housekeeping
/// ([`housekeeping`], hourly). Their metrics register in `metrics`.
pub fn services(
    config: &RetentionSection,
    store: &Arc<dyn Backend>,
    directory: &Arc<Directory>,
    metrics: &Metrics,
    draining: &CancellationToken,
) -> Services {
    let interval = Duration::from_secs(config.interval_secs);
    let sweeper = Sweeper::new(
        store.clone(),
        directory.clone(),
        metrics::RetentionMetrics::registered(metrics),
        config.batch_size,
    );
    let first = interval.min(FIRST_SWEEP_MAX);
    let housekeeper = housekeeping::Housekeeper::new(
        store.clone(),
        housekeeping::HousekeepingMetrics::registered(metrics),
    );
    Services {
        background: vec![
            Box::pin(sweeper.run(first, interval, draining.clone())),
            Box::pin(housekeeper.run(housekeeping::FIRST_ROUND, draining.clone())),
        ],
        ..Services::default()
    }
}
