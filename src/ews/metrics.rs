//! EWS requests and their latency per operation, at `/metrics`
//! (`mailgate_ews_requests_total{operation}`, `mailgate_ews_request_seconds`).
//! Operation names outside the served table count as `unsupported`, so a client
//! cannot grow the label set.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::events::Metrics;

/// `operation` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The EWS families.
#[derive(Clone)]
pub struct EwsMetrics {
    requests: Family<OperationLabel, Counter>,
    seconds: Family<OperationLabel, Histogram, fn() -> Histogram>,
}

impl EwsMetrics {
    /// Creates the families and registers them with the daemon's registry.
    pub fn registered(metrics: &Metrics) -> EwsMetrics {
        let m = EwsMetrics::default();
        metrics.register(
            "mailgate_ews_requests",
            "EWS requests per operation",
            m.requests.clone(),
        );
        metrics.register(
            "mailgate_ews_request_seconds",
            "EWS request latency per operation",
            m.seconds.clone(),
        );
        m
    }

    /// Counts one request of `operation` that took `seconds`.
    pub fn observe(&self, operation: &'static str, seconds: f64) {
        let l = OperationLabel { operation };
        self.requests.get_or_create(&l).inc();
        self.seconds.get_or_create(&l).observe(seconds);
    }
}

impl Default for EwsMetrics {
    fn default() -> Self {
        EwsMetrics {
            requests: Family::default(),
            seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}
