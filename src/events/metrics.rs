//! Prometheus metrics: the WorkMail CloudWatch metrics, derived here from the
//! records producers already emit (so no producer counts anything itself), plus
//! listener, queue and sink health.
//!
//! Naming: the WorkMail metric names are kept verbatim (`OrganizationEmailReceived`
//! becomes the counter `OrganizationEmailReceived_total`), so a WorkMail dashboard
//! maps one to one. WorkMail's 0/1 datapoint metrics (`AuthenticationFailure`,
//! `AccessDenied`, `ActionDenied`, `AvailabilityProviderFailure`) become a counter
//! with a `datapoint` label: `datapoint="1"` counts failures/denials (CloudWatch Sum),
//! the sum over both labels counts attempts (SampleCount).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use super::audit::AuditEvent;
use super::email::EmailEvent;

/// `datapoint` of a WorkMail 0/1 metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Datapoint {
    /// `"1"` failure or denial, `"0"` success or grant.
    pub datapoint: &'static str,
}

/// `sink` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    /// The sink's configured name.
    pub sink: String,
}

/// `listener` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    /// The listener's name (`smtp`, `https`, ...).
    pub listener: &'static str,
}

/// Counters and gauges of one sink, shared with its writer thread.
#[derive(Clone, Default)]
pub struct SinkStats {
    /// Records not taken: the in-memory queue or the spool was full.
    pub dropped: Counter,
    /// Records written to the on-disk spool (HTTP sinks).
    pub spooled: Counter,
    /// Records delivered: written to the file or stdout, or acknowledged by the receiver.
    pub sent: Counter,
    /// Failed writes or POSTs (each retried, for HTTP).
    pub failed: Counter,
    /// Records queued in memory, not yet taken by the writer thread.
    pub lag: Gauge,
    /// Bytes waiting in the spool.
    pub spool_bytes: Gauge,
}

/// Connection and session counts of one listener (defined by `net`, whose accept
/// loop updates them).
pub use crate::net::ListenerStats;

/// Every metric of the daemon and the registry that renders them.
pub struct Metrics {
    registry: Mutex<Registry>,
    org_received: Counter,
    mailbox_delivered: Counter,
    incoming_bounced: Counter,
    outgoing_bounced: Counter,
    outgoing_sent: Counter,
    auth_failure: Family<Datapoint, Counter>,
    access_denied: Family<Datapoint, Counter>,
    action_denied: Family<Datapoint, Counter>,
    availability_failure: Family<Datapoint, Counter>,
    sink_dropped: Family<SinkLabel, Counter>,
    sink_spooled: Family<SinkLabel, Counter>,
    sink_sent: Family<SinkLabel, Counter>,
    sink_failed: Family<SinkLabel, Counter>,
    sink_lag: Family<SinkLabel, Gauge>,
    sink_spool_bytes: Family<SinkLabel, Gauge>,
    connections: Family<ListenerLabel, Counter>,
    refused: Family<ListenerLabel, Counter>,
    proxy_untrusted: Family<ListenerLabel, Counter>,
    proxy_bad_header: Family<ListenerLabel, Counter>,
    sessions: Family<ListenerLabel, Gauge>,
    /// Recipients waiting in the outbound queue, set just before each scrape.
    pub queue_depth: Gauge,
    /// Age of the oldest queued message in seconds (0 when empty), set before each scrape.
    pub queue_oldest_age: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family, so a scrape shows them all from the start.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            org_received: Counter::default(),
            mailbox_delivered: Counter::default(),
            incoming_bounced: Counter::default(),
            outgoing_bounced: Counter::default(),
            outgoing_sent: Counter::default(),
            auth_failure: Family::default(),
            access_denied: Family::default(),
            action_denied: Family::default(),
            availability_failure: Family::default(),
            sink_dropped: Family::default(),
            sink_spooled: Family::default(),
            sink_sent: Family::default(),
            sink_failed: Family::default(),
            sink_lag: Family::default(),
            sink_spool_bytes: Family::default(),
            connections: Family::default(),
            refused: Family::default(),
            proxy_untrusted: Family::default(),
            proxy_bad_header: Family::default(),
            sessions: Family::default(),
            queue_depth: Gauge::default(),
            queue_oldest_age: Gauge::default(),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
            let wm = [
                (
                    "OrganizationEmailReceived",
                    "Messages received by the organization",
                    &m.org_received,
                ),
                (
                    "MailboxEmailDelivered",
                    "Deliveries to mailboxes",
                    &m.mailbox_delivered,
                ),
                (
                    "IncomingEmailBounced",
                    "Inbound recipients bounced",
                    &m.incoming_bounced,
                ),
                (
                    "OutgoingEmailBounced",
                    "External recipients that could not be delivered",
                    &m.outgoing_bounced,
                ),
                (
                    "OutgoingEmailSent",
                    "External recipients delivered",
                    &m.outgoing_sent,
                ),
            ];
            for (name, help, c) in wm {
                r.register(name, help, c.clone());
            }
            let dp = [
                (
                    "AuthenticationFailure",
                    "Authentication attempts; datapoint=1 failed",
                    &m.auth_failure,
                ),
                (
                    "AccessDenied",
                    "Access control evaluations; datapoint=1 denied",
                    &m.access_denied,
                ),
                (
                    "ActionDenied",
                    "Actions on mailbox data; datapoint=1 denied",
                    &m.action_denied,
                ),
                (
                    "AvailabilityProviderFailure",
                    "Availability provider requests; datapoint=1 failed",
                    &m.availability_failure,
                ),
            ];
            for (name, help, f) in dp {
                r.register(name, help, f.clone());
            }
            r.register(
                "mailgate_events_sink_dropped",
                "Event records dropped by a sink",
                m.sink_dropped.clone(),
            );
            r.register(
                "mailgate_events_sink_spooled",
                "Event records written to a sink's on-disk spool",
                m.sink_spooled.clone(),
            );
            r.register(
                "mailgate_events_sink_sent",
                "Event records delivered by a sink",
                m.sink_sent.clone(),
            );
            r.register(
                "mailgate_events_sink_failed",
                "Failed sink writes or POSTs",
                m.sink_failed.clone(),
            );
            r.register(
                "mailgate_events_sink_lag_records",
                "Event records queued in memory for a sink",
                m.sink_lag.clone(),
            );
            r.register(
                "mailgate_events_sink_spool_bytes",
                "Bytes in a sink's on-disk spool",
                m.sink_spool_bytes.clone(),
            );
            r.register(
                "mailgate_listener_connections",
                "Connections accepted per listener",
                m.connections.clone(),
            );
            r.register(
                "mailgate_listener_refused",
                "Connections refused by the limits per listener",
                m.refused.clone(),
            );
            r.register(
                "mailgate_listener_proxy_untrusted",
                "Connections to a PROXY-protocol listener from an address not in proxy_from",
                m.proxy_untrusted.clone(),
            );
            r.register(
                "mailgate_listener_proxy_bad_header",
                "Connections to a PROXY-protocol listener closed for a missing, malformed or late header",
                m.proxy_bad_header.clone(),
            );
            r.register(
                "mailgate_listener_sessions",
                "Sessions running per listener",
                m.sessions.clone(),
            );
            r.register(
                "mailgate_outbound_queue_recipients",
                "Recipients waiting in the outbound queue",
                m.queue_depth.clone(),
            );
            r.register(
                "mailgate_outbound_queue_oldest_age_seconds",
                "Age of the oldest message in the outbound queue",
                m.queue_oldest_age.clone(),
            );
        }
        m
    }

    /// Registers a protocol's own metric family (EWS keeps its per-operation
    /// families with its handler and registers them here once).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.register(name, help, metric);
    }

    /// The counters of sink `name`.
    pub fn sink(&self, name: &str) -> SinkStats {
        let l = SinkLabel { sink: name.into() };
        SinkStats {
            dropped: self.sink_dropped.get_or_create(&l).clone(),
            spooled: self.sink_spooled.get_or_create(&l).clone(),
            sent: self.sink_sent.get_or_create(&l).clone(),
            failed: self.sink_failed.get_or_create(&l).clone(),
            lag: self.sink_lag.get_or_create(&l).clone(),
            spool_bytes: self.sink_spool_bytes.get_or_create(&l).clone(),
        }
    }

    /// The counters of listener `name`.
    pub fn listener(&self, name: &'static str) -> ListenerStats {
        let l = ListenerLabel { listener: name };
        ListenerStats {
            connections: self.connections.get_or_create(&l).clone(),
            refused: self.refused.get_or_create(&l).clone(),
            proxy_untrusted: self.proxy_untrusted.get_or_create(&l).clone(),
            proxy_bad_header: self.proxy_bad_header.get_or_create(&l).clone(),
            sessions: self.sessions.get_or_create(&l).clone(),
        }
    }

    /// Counts what an email event means for the WorkMail metrics.
    pub fn on_email(&self, event: &EmailEvent) {
        self.on_email_name(event.name());
    }

    /// The same, from the event's `eventName` (an outbox row's kind).
    pub fn on_email_name(&self, name: &str) {
        match name {
            "ORGANIZATION_EMAIL_RECEIVED" => self.org_received.inc(),
            "MAILBOX_EMAIL_DELIVERED" => self.mailbox_delivered.inc(),
            "INCOMING_EMAIL_BOUNCED" => self.incoming_bounced.inc(),
            "OUTGOING_EMAIL_BOUNCED" => self.outgoing_bounced.inc(),
            "OUTGOING_EMAIL_SENT" => self.outgoing_sent.inc(),
            _ => 0,
        };
    }

    /// Counts what an audit record means for the WorkMail metrics.
    pub fn on_audit(&self, event: &AuditEvent) {
        let (family, bad) = match event {
            AuditEvent::Authentication(a) => (&self.auth_failure, !a.auth_successful),
            AuditEvent::AccessControl(a) => (&self.access_denied, !a.access_granted),
            AuditEvent::MailboxAccess(a) => (&self.action_denied, !a.action_allowed),
            AuditEvent::AvailabilityProvider(a) => {
                (&self.availability_failure, !a.availability_event_successful)
            }
            AuditEvent::PersonalAccessToken(_) => return,
        };
        let datapoint = if bad { "1" } else { "0" };
        family.get_or_create(&Datapoint { datapoint }).inc();
    }

    /// The Prometheus text exposition of every metric.
    /// Registers counters kept elsewhere (the store's group commit), read at each
    /// scrape: the store counts with plain atomics and knows nothing of Prometheus.
    pub fn count_at_scrape(&self, counters: Vec<ScrapedCounter>) {
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.register_collector(Box::new(ScrapedCounters(counters)));
    }

    /// Registers gauges kept elsewhere (a database pool's figures), read at each
    /// scrape, as [`Metrics::count_at_scrape`] does for counters.
    pub fn gauge_at_scrape(&self, gauges: Vec<ScrapedGauge>) {
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.register_collector(Box::new(ScrapedGauges(gauges)));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &r).is_err() {
            out.clear();
        }
        out
    }
}

/// A counter read at scrape time: name (without `_total`), help, and how to read it.
pub type ScrapedCounter = (
    &'static str,
    &'static str,
    Box<dyn Fn() -> u64 + Send + Sync>,
);

/// A gauge read at scrape time: name, help, and how to read it.
pub type ScrapedGauge = (
    &'static str,
    &'static str,
    Box<dyn Fn() -> i64 + Send + Sync>,
);

struct ScrapedGauges(Vec<ScrapedGauge>);

impl std::fmt::Debug for ScrapedGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|c| c.0)).finish()
    }
}

impl Collector for ScrapedGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        for (name, help, read) in &self.0 {
            let gauge = ConstGauge::new(read());
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

impl crate::net::ListenerMetrics for Metrics {
    fn listener(&self, name: &'static str) -> ListenerStats {
        Metrics::listener(self, name)
    }
}

struct ScrapedCounters(Vec<ScrapedCounter>);

impl std::fmt::Debug for ScrapedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|c| c.0)).finish()
    }
}

impl Collector for ScrapedCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        for (name, help, read) in &self.0 {
            let counter = ConstCounter::new(read());
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::audit::*;

    #[test]
    fn workmail_metrics_follow_the_records() {
        let m = Metrics::new();
        m.on_email(&EmailEvent::MailboxEmailDelivered {
            recipient: "a@x.test".into(),
            folder: "Inbox".into(),
        });
        m.on_email(&EmailEvent::MailboxEmailDelivered {
            recipient: "b@x.test".into(),
            folder: "Inbox".into(),
        });
        for ok in [true, false, false] {
            m.on_audit(&AuditEvent::Authentication(Authentication {
                request_id: "r".into(),
                organization_arn: "o".into(),
                user_id: "u".into(),
                user: "u@x.test".into(),
                protocol: AuditProtocol::Smtp,
                source_ip: "127.0.0.1".parse().unwrap(),
                user_agent: None,
                method: "basic",
                auth_successful: ok,
                auth_failed_reason: None,
                personal_access_token_id: None,
            }));
        }
        m.sink("siem").sent.inc_by(5);
        m.listener("smtp").connections.inc();
        let text = m.render();
        assert!(text.contains("MailboxEmailDelivered_total 2"), "{text}");
        assert!(text.contains("OrganizationEmailReceived_total 0"), "{text}");
        assert!(
            text.contains("AuthenticationFailure_total{datapoint=\"1\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("AuthenticationFailure_total{datapoint=\"0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mailgate_events_sink_sent_total{sink=\"siem\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("mailgate_listener_connections_total{listener=\"smtp\"} 1"),
            "{text}"
        );
        m.queue_oldest_age.set(1.5);
        assert!(
            m.render()
                .contains("mailgate_outbound_queue_oldest_age_seconds 1.5"),
            "{text}"
        );
    }

    #[test]
    fn counters_kept_elsewhere_are_read_at_each_scrape() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let m = Metrics::new();
        let kept = Arc::new(AtomicU64::new(3));
        let read = kept.clone();
        m.count_at_scrape(vec![(
            "mailgate_store_commits",
            "Commits",
            Box::new(move || read.load(Ordering::Relaxed)),
        )]);
        let text = m.render();
        assert!(
            text.contains("# TYPE mailgate_store_commits counter"),
            "{text}"
        );
        assert!(text.contains("mailgate_store_commits_total 3\n"), "{text}");
        kept.store(7, Ordering::Relaxed);
        assert!(m.render().contains("mailgate_store_commits_total 7\n"));
    }
}
