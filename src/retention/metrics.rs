//! The sweeper's figures at `/metrics`: items moved to Deleted Items and items
//! deleted (counters), sweeps and failed mailbox sweeps (counters), and the last
//! sweep's end time and duration (gauges).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::events::Metrics;

/// The retention families, cloned into the sweeper.
#[derive(Clone, Default)]
pub struct RetentionMetrics {
    /// Items moved to Deleted Items (action DELETE).
    pub moved: Counter,
    /// Items expunged (PERMANENTLY_DELETE, or DELETE in Deleted Items).
    pub deleted: Counter,
    /// Sweeps finished.
    pub sweeps: Counter,
    /// Mailbox sweeps that failed on a store error (retried next sweep).
    pub errors: Counter,
    /// When the last sweep ended, epoch seconds.
    pub last_end: Gauge<f64, AtomicU64>,
    /// How long the last sweep took, seconds.
    pub last_duration: Gauge<f64, AtomicU64>,
}

impl RetentionMetrics {
    /// Creates the families and registers them with the daemon's registry.
    pub fn registered(metrics: &Metrics) -> RetentionMetrics {
        let m = RetentionMetrics::default();
        for (name, help, c) in [
            (
                "mailgate_retention_items_moved",
                "Items the retention policy moved to Deleted Items",
                &m.moved,
            ),
            (
                "mailgate_retention_items_deleted",
                "Items the retention policy deleted permanently",
                &m.deleted,
            ),
            (
                "mailgate_retention_sweeps",
                "Retention sweeps finished",
                &m.sweeps,
            ),
            (
                "mailgate_retention_errors",
                "Mailbox sweeps that failed (retried at the next sweep)",
                &m.errors,
            ),
        ] {
            metrics.register(name, help, c.clone());
        }
        metrics.register(
            "mailgate_retention_last_sweep_timestamp_seconds",
            "When the last retention sweep ended (epoch seconds)",
            m.last_end.clone(),
        );
        metrics.register(
            "mailgate_retention_last_sweep_duration_seconds",
            "How long the last retention sweep took",
            m.last_duration.clone(),
        );
        m
    }
}
