//! Email events and audit events, sent to sinks without slowing mail flow, and the
//! metrics derived from them.
//!
//! Producers call [`Events::audit`] or [`Events::email`]; the record is serialised
//! once on the caller's thread (cheap), counted for the metrics, and offered to
//! every sink whose filter wants it. Each sink has a bounded in-memory queue and its
//! own writer thread; a full queue drops the record and counts it, it never blocks.
//! Sinks: JSON-lines files ([`file`]), stdout, and HTTP(S) POST with an on-disk
//! spool ([`http`], [`spool`]); the config is in [`config`]. At shutdown
//! [`Events::flush`] waits until every queued record is written (or spooled).
//!
//! Every record carries a unique id (`eventId` for email events, `event_id` for
//! audit records, a UUIDv4), so receivers of the at-least-once HTTP sink can
//! de-duplicate.

pub mod audit;
pub mod config;
pub mod email;
pub mod file;
pub mod http;
pub mod metrics;
pub mod sink;
pub mod spool;

#[cfg(test)]
mod schema_tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use audit::AuditEvent;
pub use email::EmailEvent;
pub use metrics::Metrics;
use sink::{Filter, Kind, Record, Sink};

/// Handle to the event sinks and the metrics; cheap to clone.
#[derive(Clone)]
pub struct Events {
    sinks: Arc<[Arc<Sink>]>,
    metrics: Arc<Metrics>,
    /// Organization id → index of the sink its email monitoring configuration names.
    routes: Arc<arc_swap::ArcSwap<HashMap<String, usize>>>,
}

/// Records kept in memory by [`Events::capture`], for tests.
#[derive(Clone, Default)]
pub struct Captured {
    /// Audit records, in the order written.
    pub audit: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Email events, in the order written.
    pub email: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Events {
    /// No sinks: records are discarded (the metrics still count).
    pub fn disabled() -> Events {
        Events {
            sinks: Arc::new([]),
            metrics: Arc::new(Metrics::new()),
            routes: Default::default(),
        }
    }

    /// Starts every sink of the `[events]` section. `base` resolves relative
    /// paths (`server.data_dir`); HTTP spools live in `base/spool/events-<name>`.
    pub fn from_config(
        section: &config::EventsSection,
        base: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<Events, String> {
        let mut sinks = Vec::new();
        for c in section.effective_sinks() {
            let at = |e: &dyn std::fmt::Display| format!("events.sinks ({:?}): {e}", c.name);
            let stats = metrics.sink(&c.name);
            let filter = Filter::of(&c);
            let sink = match c.kind {
                config::SinkKind::File => {
                    let path = base.join(c.path.clone().unwrap_or_default());
                    let policy = file::FilePolicy::of(&c, path.clone());
                    let w = file::FileSink::open(policy, stats.clone())
                        .map_err(|e| at(&format!("{}: cannot open: {e}", path.display())))?;
                    Sink::spawn(&c.name, filter, stats, w)
                }
                config::SinkKind::Stdout => {
                    Sink::spawn(&c.name, filter, stats.clone(), sink::Stdout { stats })
                }
                config::SinkKind::Http => {
                    let spool = base.join("spool").join(format!("events-{}", c.name));
                    let ca = c.ca.as_ref().map(|p| base.join(p));
                    let w = http::HttpSink::open(&c, &spool, ca.as_deref(), stats.clone())
                        .map_err(|e| at(&e))?;
                    Sink::spawn(&c.name, filter, stats, w)
                }
            }
            .map_err(|e| at(&e))?;
            sinks.push(sink);
        }
        Ok(Events {
            sinks: sinks.into(),
            metrics,
            routes: Default::default(),
        })
    }

    /// Appends email and audit records to two files, one JSON object per line.
    pub fn to_files(email_log: &Path, audit_log: &Path) -> std::io::Result<Events> {
        let section = config::EventsSection {
            email_log: Some(email_log.to_path_buf()),
            audit_log: Some(audit_log.to_path_buf()),
            sinks: Vec::new(),
        };
        Events::from_config(&section, Path::new(""), Arc::new(Metrics::new()))
            .map_err(std::io::Error::other)
    }

    /// Keeps every record in memory.
    pub fn capture() -> (Events, Captured) {
        let captured = Captured::default();
        let metrics = Arc::new(Metrics::new());
        let worker = sink::Memory {
            email: captured.email.clone(),
            audit: captured.audit.clone(),
        };
        let sink = Sink::spawn("memory", Filter::all(), metrics.sink("memory"), worker)
            .expect("a thread for the in-memory event sink");
        (
            Events {
                sinks: Arc::new([sink]),
                metrics,
                routes: Default::default(),
            },
            captured,
        )
    }

    /// The metrics registry the records feed (served on the `metrics` listener).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Emits one audit record.
    pub fn audit(&self, event: AuditEvent) {
        self.metrics.on_audit(&event);
        let kind = Kind::Audit(event.log_type());
        if self.sinks.iter().any(|s| s.filter.matches(kind)) {
            let line: Arc<str> = event
                .to_json(&new_id(), crate::store::now_ms())
                .to_string()
                .into();
            for s in self.sinks.iter().filter(|s| s.filter.matches(kind)) {
                s.offer(Record {
                    kind,
                    line: line.clone(),
                });
            }
        }
    }

    /// Emits one email event of the flow `trace_id` (no organization known: only
    /// the sinks' own filters route it).
    pub fn email(&self, trace_id: &str, event: EmailEvent) {
        self.email_in("", trace_id, event);
    }

    /// Emits one email event of the flow `trace_id` for organization `org`: to
    /// every sink whose filter wants it, and also to the sink the organization's
    /// email monitoring configuration names (whatever that sink's filter says).
    pub fn email_in(&self, org: &str, trace_id: &str, event: EmailEvent) {
        self.metrics.on_email(&event);
        let kind = Kind::Email(event.name());
        let routes = self.routes.load();
        let routed = routes.get(org).copied();
        let wanted = |i: usize, s: &Sink| s.filter.matches(kind) || routed == Some(i);
        if !self.sinks.iter().enumerate().any(|(i, s)| wanted(i, s)) {
            return;
        }
        let line: Arc<str> = event
            .to_json(trace_id, &new_id(), crate::store::now_ms())
            .to_string()
            .into();
        for (i, s) in self.sinks.iter().enumerate() {
            if wanted(i, s) {
                s.offer(Record {
                    kind,
                    line: line.clone(),
                });
            }
        }
    }

    /// Whether a sink of that name runs (the log group of an email monitoring
    /// configuration must name one).
    pub fn has_sink(&self, name: &str) -> bool {
        self.sinks.iter().any(|s| s.name == name)
    }

    /// Sends organization `org`'s email events also to sink `sink` (None: stop).
    /// Returns false, changing nothing, when no sink has that name.
    pub fn route_org(&self, org: &str, sink: Option<&str>) -> bool {
        let index = match sink {
            Some(name) => match self.sinks.iter().position(|s| s.name == name) {
                Some(i) => Some(i),
                None => return false,
            },
            None => None,
        };
        self.routes.rcu(|current| {
            let mut next = HashMap::clone(current);
            match index {
                Some(i) => next.insert(org.to_string(), i),
                None => next.remove(org),
            };
            next
        });
        true
    }

    /// Waits (blocking, up to `limit` per sink) until every record emitted so far is
    /// written: the daemon calls it at shutdown so the last records are not lost.
    pub fn flush(&self, limit: Duration) -> bool {
        self.sinks.iter().all(|s| s.flush(limit))
    }

    /// Records dropped by every sink (queue or spool full, write failed).
    pub fn dropped(&self) -> u64 {
        self.sinks.iter().map(|s| s.stats.dropped.get()).sum()
    }
}

/// A fresh unique id (UUIDv4) for a request, a trace or a record.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit::*;

    fn auth_event(ok: bool) -> AuditEvent {
        AuditEvent::Authentication(Authentication {
            request_id: new_id(),
            organization_arn: "arn".into(),
            user_id: "u".into(),
            user: "a@example.test".into(),
            protocol: AuditProtocol::Smtp,
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: None,
            method: "basic",
            auth_successful: ok,
            auth_failed_reason: (!ok).then(|| "bad password".into()),
            personal_access_token_id: None,
        })
    }

    #[test]
    fn file_sink_writes_one_json_object_per_line_with_unique_ids() {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::to_files(
            &dir.path().join("email.jsonl"),
            &dir.path().join("audit.jsonl"),
        )
        .unwrap();
        for i in 0..100 {
            events.audit(auth_event(i % 2 == 0));
        }
        events.email(
            "trace-1",
            EmailEvent::MailboxEmailDelivered {
                recipient: "a@x.test".into(),
                folder: "Inbox".into(),
            },
        );
        assert!(
            events.flush(std::time::Duration::from_secs(5)),
            "every record written"
        );
        let lines = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        let records: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 100);
        let mut ids: Vec<_> = records
            .iter()
            .map(|r| r["event_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 100);
        assert_eq!(records[1]["auth_failed_reason"], "bad password");
        assert_eq!(records[0]["log_type"], "authentication");
        let text = std::fs::read_to_string(dir.path().join("email.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["traceId"], "trace-1");
    }
    /// A minimal HTTP/1.1 receiver (keep-alive, Content-Length bodies) that keeps
    /// every line it is POSTed.
    fn receiver(listener: std::net::TcpListener, got: Arc<Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut w) = conn else { return };
                let got = got.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(w.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut len = 0usize;
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                len = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        let text = String::from_utf8(body).unwrap();
                        got.lock().unwrap().extend(text.lines().map(String::from));
                        w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .unwrap();
                    }
                });
            }
        });
    }

    fn http_section(port: u16) -> config::EventsSection {
        toml::from_str(&format!(
            r#"
            [[sinks]]
            name = "siem"
            kind = "http"
            url = "http://127.0.0.1:{port}/ingest"
            email_events = []
            retry_initial_ms = 20
            retry_max_ms = 100
            batch_max = 64
            "#
        ))
        .unwrap()
    }

    fn wait_for(what: impl Fn() -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if what() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn http_sink_survives_a_receiver_outage_and_a_restart_without_losing_records() {
        let dir = tempfile::tempdir().unwrap();
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe); // the receiver is down
        let section = http_section(port);
        section.validate().unwrap();

        let metrics = Arc::new(Metrics::new());
        let events = Events::from_config(&section, dir.path(), metrics.clone()).unwrap();
        for i in 0..200 {
            events.audit(auth_event(i % 2 == 0));
        }
        events.email(
            "t",
            EmailEvent::MailboxEmailDelivered {
                recipient: "a@x.test".into(),
                folder: "Inbox".into(),
            },
        );
        assert!(events.flush(Duration::from_secs(5)), "spooled");
        let stats = metrics.sink("siem");
        assert_eq!(
            stats.spooled.get(),
            200,
            "the filter keeps email events out"
        );
        assert!(
            wait_for(|| stats.failed.get() >= 2),
            "POSTs fail and are retried"
        );
        assert_eq!(stats.sent.get(), 0);
        assert!(stats.spool_bytes.get() > 0);
        // The daemon stops with the receiver still down.
        drop(events);
        std::thread::sleep(Duration::from_millis(300));

        // Restarted daemon, receiver back: the spooled records and the new ones arrive.
        let got = Arc::new(Mutex::new(Vec::new()));
        receiver(
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(),
            got.clone(),
        );
        let metrics = Arc::new(Metrics::new());
        let events = Events::from_config(&section, dir.path(), metrics.clone()).unwrap();
        for i in 0..100 {
            events.audit(auth_event(i % 3 == 0));
        }
        assert!(
            wait_for(|| got.lock().unwrap().len() >= 300),
            "got {}",
            got.lock().unwrap().len()
        );
        let got = got.lock().unwrap().clone();
        let mut ids: Vec<String> = got
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["log_type"], "authentication");
                v["event_id"].as_str().unwrap().to_string()
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 300, "every record once (de-duplicated by id)");
        let stats = metrics.sink("siem");
        assert!(wait_for(|| stats.spool_bytes.get() == 0));
        assert_eq!(events.dropped(), 0);
    }

    #[test]
    fn an_organization_route_adds_its_email_events_to_one_sink() {
        let dir = tempfile::tempdir().unwrap();
        let section: config::EventsSection = toml::from_str(
            r#"
            [[sinks]]
            name = "all"
            kind = "file"
            path = "all.jsonl"
            [[sinks]]
            name = "org-a"
            kind = "file"
            path = "a.jsonl"
            email_events = []
            audit_logs = []
            "#,
        )
        .unwrap();
        let events = Events::from_config(&section, dir.path(), Arc::new(Metrics::new())).unwrap();
        assert!(!events.route_org("m-a", Some("nope")));
        assert!(events.route_org("m-a", Some("org-a")));
        let delivered = || EmailEvent::MailboxEmailDelivered {
            recipient: "a@x.test".into(),
            folder: "Inbox".into(),
        };
        events.email_in("m-a", "t1", delivered());
        events.email_in("m-b", "t2", delivered());
        events.audit(auth_event(true));
        assert!(events.route_org("m-a", None));
        events.email_in("m-a", "t3", delivered());
        assert!(events.flush(Duration::from_secs(5)));
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
        assert_eq!(read("all.jsonl").lines().count(), 4);
        let a = read("a.jsonl");
        assert_eq!(a.lines().count(), 1, "{a}");
        assert!(a.contains("\"t1\""));
    }

    #[test]
    fn filters_route_records_to_the_sinks_that_want_them() {
        let dir = tempfile::tempdir().unwrap();
        let section: config::EventsSection = toml::from_str(
            r#"
            [[sinks]]
            name = "auth"
            kind = "file"
            path = "auth.jsonl"
            email_events = []
            audit_logs = ["authentication"]
            fsync = "always"
            [[sinks]]
            name = "delivered"
            kind = "file"
            path = "delivered.jsonl"
            email_events = ["MAILBOX_EMAIL_DELIVERED"]
            audit_logs = []
            "#,
        )
        .unwrap();
        section.validate().unwrap();
        let events = Events::from_config(&section, dir.path(), Arc::new(Metrics::new())).unwrap();
        events.audit(auth_event(true));
        events.email(
            "t",
            EmailEvent::MailboxEmailDelivered {
                recipient: "a@x.test".into(),
                folder: "Inbox".into(),
            },
        );
        events.email(
            "t",
            EmailEvent::JournalingInitiated {
                journaling_address: "j@x.test".into(),
            },
        );
        assert!(events.flush(Duration::from_secs(5)));
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
        assert_eq!(read("auth.jsonl").lines().count(), 1);
        let delivered = read("delivered.jsonl");
        assert_eq!(delivered.lines().count(), 1);
        assert!(delivered.contains("MAILBOX_EMAIL_DELIVERED"));
        assert!(
            events
                .metrics()
                .render()
                .contains("MailboxEmailDelivered_total 1")
        );
    }
}
