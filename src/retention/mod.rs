//! Retention policies (WorkMail's PutRetentionPolicy family) and their
//! enforcement.
//!
//! Owns the policy model and its validation ([`policy`], pure), where a policy is
//! kept ([`stored`]: one tag per organization in the store's tag table), the
//! sweeper that applies every organization's policy to its mailboxes
//! ([`sweeper`]), and its metrics. The admin API's three actions call into
//! this module; `server` starts the sweeper through [`services`].
//!
//! Age is the item's internal date (arrival for delivered mail, the client's
//! date for IMAP APPEND; a move keeps it). The sweeper touches only the five
//! mail folders with a role (Inbox, Deleted Items, Sent Items, Drafts, Junk
//! Email), never their subfolders, Calendar, Contacts, Tasks, Notes, Outbox,
//! Archive or user folders.

pub mod metrics;
pub mod policy;
pub mod stored;
pub mod sweeper;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use policy::RetentionPolicy;
pub use sweeper::{SweepReport, Sweeper};

use crate::net::Services;
use crate::shared::Shared;

/// The most the first sweep waits after start (`retention.interval_secs` when shorter).
pub const FIRST_SWEEP_MAX: Duration = Duration::from_secs(60);

/// The sweeper as background work: first sweep one minute after start (or
/// after `retention.interval_secs`, when shorter), then every `interval_secs`
/// after the previous one ends, `batch_size` items per store write.
pub fn services(shared: &Shared) -> Services {
    let config = &shared.config.retention;
    let interval = Duration::from_secs(config.interval_secs);
    let sweeper = Sweeper::new(
        shared.store.clone(),
        shared.directory.clone(),
        metrics::RetentionMetrics::registered(&shared.metrics),
        config.batch_size,
    );
    let stop = shared.draining.clone();
    Services {
        background: vec![Box::pin(sweeper.run(
            interval.min(FIRST_SWEEP_MAX),
            interval,
            stop,
        ))],
        ..Services::default()
    }
}
