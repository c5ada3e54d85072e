//! The Prometheus page on the plain-HTTP `metrics` listener: the registry, with the
//! store's group-commit counters and the outbound queue's gauges read at scrape,
//! and a networked backend's pool and notify figures (PostgreSQL only).
//!
//! Owns only this page; the metrics themselves live in `events::Metrics`.

use std::sync::Arc;

use crate::events::Metrics;
use crate::net::http::{self, HttpRequest, Route};
use crate::store::Backend;

/// The `metrics` listener's route: `GET /metrics`.
pub fn route(metrics: Arc<Metrics>, store: Arc<dyn Backend>) -> Route {
    Route::exact("/metrics", Arc::new(MetricsPage { metrics, store }))
        .when(|head: &HttpRequest| head.method == "GET")
}

/// The store's group-commit counters: writes per commit is the batch size.
pub fn store_counters(store: &Arc<dyn Backend>) -> Vec<crate::events::ScrapedCounter> {
    use crate::store::WriterStats;
    use std::sync::atomic::{AtomicU64, Ordering};
    let counter = |name, help, field: fn(&WriterStats) -> &AtomicU64| {
        let store = store.clone();
        let read = move || field(store.writer_stats()).load(Ordering::Relaxed);
        (
            name,
            help,
            Box::new(read) as Box<dyn Fn() -> u64 + Send + Sync>,
        )
    };
    vec![
        counter(
            "mailgate_store_commits",
            "Store transactions committed, one WAL fsync each",
            |s| &s.commits,
        ),
        counter(
            "mailgate_store_writes",
            "Store writes run (writes / commits = the group-commit batch size)",
            |s| &s.writes,
        ),
        counter(
            "mailgate_store_lingered",
            "Commits that waited for announced deliveries",
            |s| &s.lingered,
        ),
        counter(
            "mailgate_store_redone",
            "Batches run again with a savepoint per write because a write failed",
            |s| &s.redone,
        ),
        counter(
            "mailgate_queue_lease_takeovers",
            "Outbound recipients taken over from another daemon's expired lease (shared store)",
            |s| &s.lease_takeovers,
        ),
        counter(
            "mailgate_queue_lease_fenced",
            "Outbound settles dropped because another daemon had taken the recipient over",
            |s| &s.lease_fenced,
        ),
    ]
}

/// Registers the figures of a backend that has them ([`Backend::backend_metrics`]:
/// PostgreSQL's pool, retries, notify lag, listener reconnects); nothing for the
/// embedded store, whose page stays as it is.
pub fn register_backend_metrics(metrics: &crate::events::Metrics, store: &Arc<dyn Backend>) {
    use crate::store::BackendMetrics;
    if store.backend_metrics().is_none() {
        return;
    }
    let read = |field: fn(&BackendMetrics) -> u64| {
        let store = store.clone();
        move || store.backend_metrics().map_or(0, |m| field(&m))
    };
    let counter = |name, help, field| {
        let read = read(field);
        (
            name,
            help,
            Box::new(read) as Box<dyn Fn() -> u64 + Send + Sync>,
        )
    };
    let gauge = |name, help, field| {
        let read = read(field);
        (
            name,
            help,
            Box::new(move || i64::try_from(read()).unwrap_or(i64::MAX))
                as Box<dyn Fn() -> i64 + Send + Sync>,
        )
    };
    metrics.count_at_scrape(vec![
        counter(
            "mailgate_postgres_write_retries",
            "Whole write transactions run again after a serialization failure or deadlock",
            |m| m.write_retries,
        ),
        counter(
            "mailgate_postgres_notify_received",
            "Cross-daemon notifications received",
            |m| m.notify_received,
        ),
        counter(
            "mailgate_postgres_notify_lag_ms_sum",
            "Sum of notification lags (sender's send time to receipt), milliseconds",
            |m| m.notify_lag_sum_ms,
        ),
        counter(
            "mailgate_postgres_notify_sent",
            "Coalesced NOTIFY statements sent",
            |m| m.notify_sent,
        ),
        counter(
            "mailgate_postgres_notify_send_failures",
            "NOTIFY statements that failed (other daemons catch up by their safety poll)",
            |m| m.notify_send_failures,
        ),
        counter(
            "mailgate_postgres_listener_reconnects",
            "Times the LISTEN connection was lost or could not connect",
            |m| m.listener_reconnects,
        ),
    ]);
    metrics.gauge_at_scrape(vec![
        gauge(
            "mailgate_postgres_pool_max",
            "Connections the pool may open (store.pool_size)",
            |m| m.pool_max,
        ),
        gauge("mailgate_postgres_pool_open", "Connections open", |m| {
            m.pool_open
        }),
        gauge(
            "mailgate_postgres_pool_in_use",
            "Connections lent out",
            |m| m.pool_in_use,
        ),
        gauge(
            "mailgate_postgres_pool_waiting",
            "Callers waiting for a pooled connection",
            |m| m.pool_waiting,
        ),
        gauge(
            "mailgate_postgres_notify_last_lag_ms",
            "Lag of the latest notification, milliseconds",
            |m| m.notify_last_lag_ms,
        ),
        gauge(
            "mailgate_postgres_notify_max_lag_ms",
            "Largest notification lag since start, milliseconds",
            |m| m.notify_max_lag_ms,
        ),
    ]);
}

/// `GET /metrics`: the registry, with the gauges read from the store refreshed first.
struct MetricsPage {
    metrics: Arc<Metrics>,
    store: Arc<dyn Backend>,
}

impl http::Handler for MetricsPage {
    fn handle(self: Arc<Self>, _req: HttpRequest) -> http::HandlerFuture {
        Box::pin(async move {
            if let Ok(n) = self.store.queued_recipients().await {
                self.metrics
                    .queue_depth
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            // Not `due`, which leases what it returns on a shared database.
            if let Ok(oldest) = self.store.oldest_enqueued_ms().await {
                let age_ms = oldest.map_or(0, |t| crate::clock::now_ms() - t);
                self.metrics
                    .queue_oldest_age
                    .set(age_ms.max(0) as f64 / 1000.0);
            }
            http::HttpResponse::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Metrics;

    /// The embedded store's page is unchanged: no PostgreSQL figures.
    #[test]
    fn the_embedded_store_adds_no_backend_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_embedded(&dir.path().join("s.sqlite")).unwrap();
        let metrics = Metrics::new();
        let before = metrics.render();
        register_backend_metrics(&metrics, &store);
        assert_eq!(metrics.render(), before);
    }
}
