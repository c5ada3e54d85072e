//! The Prometheus page on the plain-HTTP `metrics` listener: the registry, with the
//! store's group-commit counters and the outbound queue's gauges read at scrape.
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
    ]
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
