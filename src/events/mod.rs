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
//! [`Events::reload`] applies a changed `[events]` section to the running sinks
//! (SIGHUP), matched by name, without losing what is queued: see [`reload`].
//!
//! Once the daemon attached the store's outbox ([`Events::attach_outbox`]), records
//! no longer go from the producer to the sink queues: they go into the outbox
//! (a delivery's email events in the delivery's own commit) and a reader thread
//! feeds the sinks from there, so a crash loses no event of an acknowledged
//! message; see [`outbox`] for the guarantees.
//!
//! Every record carries a unique id (`eventId` for email events, `event_id` for
//! audit records, a UUIDv4), so receivers of the at-least-once HTTP sink can
//! de-duplicate. Events are told what happened; they never decide, and reach into
//! the store only through its outbox, never into the directory or a session.

pub mod audit;
pub mod config;
pub mod email;
mod error;
pub mod file;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod reload;
pub mod sink;
pub mod spool;

#[cfg(test)]
mod outbox_tests;
#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tls_tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use audit::AuditEvent;
pub use email::EmailEvent;
pub use error::EventsError;
pub use metrics::{Metrics, ScrapedCounter, ScrapedGauge};
use reload::Change;
use sink::{Filter, Kind, Record, Sink, Starter, Worker};

/// Handle to the event sinks and the metrics; cheap to clone. Every clone sees
/// the same sinks, also after [`Events::reload`] replaced them.
#[derive(Clone)]
pub struct Events {
    sinks: Arc<arc_swap::ArcSwap<SinkSet>>,
    metrics: Arc<Metrics>,
    /// Organization id → name of the sink its email monitoring configuration
    /// names. By name, so a route survives a reload, and one naming a removed
    /// sink does nothing until a sink of that name is configured again.
    routes: Arc<arc_swap::ArcSwap<HashMap<String, String>>>,
    /// One reload at a time.
    reloading: Arc<Mutex<()>>,
    /// The store's outbox, once attached: then every record goes through it.
    outbox: Arc<OnceLock<outbox::Attached>>,
}

/// The sinks running now, in config order.
#[derive(Default)]
struct SinkSet(Vec<Entry>);

/// One running sink with what the set knows about it.
struct Entry {
    /// Which records the producers offer to it (swapped with the set on reload).
    filter: Filter,
    /// The kind it was built as; None for sinks not built from config (tests).
    kind: Option<config::SinkKind>,
    sink: Arc<Sink>,
    /// The file a file sink writes (the outbox reader de-duplicates against it).
    file: Option<PathBuf>,
}

/// How long a reload waits for stopped and rebuilt sinks to finish their part.
const RELOAD_WAIT: Duration = Duration::from_secs(5);

/// Records kept in memory by [`Events::capture`], for tests.
#[derive(Clone, Default)]
pub struct Captured {
    /// Audit records, in the order written.
    pub audit: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Email events, in the order written.
    pub email: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Events {
    fn with(set: SinkSet, metrics: Arc<Metrics>) -> Events {
        Events {
            sinks: Arc::new(arc_swap::ArcSwap::from_pointee(set)),
            metrics,
            routes: Default::default(),
            reloading: Default::default(),
            outbox: Default::default(),
        }
    }

    /// No sinks: records are discarded (the metrics still count).
    pub fn disabled() -> Events {
        Events::with(SinkSet::default(), Arc::new(Metrics::new()))
    }

    /// Starts every sink of the `[events]` section. `base` resolves relative
    /// paths (`server.data_dir`); HTTP spools live in `base/spool/events-<name>`.
    pub fn start(
        section: &config::EventsSection,
        base: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<Events, EventsError> {
        let mut entries = Vec::new();
        for c in section.effective_sinks() {
            let stats = metrics.sink(&c.name);
            let worker = reload::open_worker(&c, base, stats.clone())?;
            let sink = Sink::prepare(&c.name, stats)
                .map(|(sink, starter)| {
                    starter.start(worker);
                    sink
                })
                .map_err(|e| EventsError::Sink(format!("events.sinks ({:?}): {e}", c.name)))?;
            entries.push(Entry {
                filter: Filter::of(&c),
                kind: Some(c.kind),
                sink,
                file: outbox::file_path(&c, base),
            });
        }
        Ok(Events::with(SinkSet(entries), metrics))
    }

    /// Applies a new `[events]` section to the running sinks (SIGHUP); the
    /// semantics are in [`reload`]. `base` must be the one the sinks were started
    /// with. On error nothing changed. Blocks for up to a few seconds while
    /// stopped and rebuilt sinks finish; runs on its own thread, so it may be
    /// called from async code.
    pub fn reload(
        &self,
        section: &config::EventsSection,
        base: &Path,
    ) -> Result<reload::Report, EventsError> {
        section.validate()?;
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("events-reload".into())
                .spawn_scoped(s, || self.reload_here(section, base))
                .map_err(|e| EventsError::Reload(format!("events reload: {e}")))?
                .join()
                .unwrap_or_else(|_| {
                    Err(EventsError::Reload(
                        "events reload: the reload thread panicked".into(),
                    ))
                })
        })
    }

    fn reload_here(
        &self,
        section: &config::EventsSection,
        base: &Path,
    ) -> Result<reload::Report, EventsError> {
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.sinks.load_full();
        let running: Vec<_> = old
            .0
            .iter()
            .map(|e| (e.sink.name.clone(), e.kind))
            .collect();
        let wanted = section.effective_sinks();
        let changes = reload::plan(&running, &wanted);
        let find = |name: &str| old.0.iter().find(|e| e.sink.name == name);

        // Prepare everything that can fail; nothing running is touched yet.
        let mut report = reload::Report::default();
        let mut entries = Vec::new();
        let mut starts: Vec<(Starter, Box<dyn Worker>)> = Vec::new();
        let mut rebuilds = Vec::new();
        for (c, (_, change)) in wanted.iter().zip(&changes) {
            let stats = self.metrics.sink(&c.name);
            let sink = match (*change, find(&c.name)) {
                (Change::Rebuild { take_spool }, Some(e)) => {
                    let build = reload::rebuild(c, base, stats, take_spool)?;
                    rebuilds.push((e.sink.clone(), build));
                    report.rebuilt.push(c.name.clone());
                    e.sink.clone()
                }
                _ => {
                    let worker = reload::open_worker(c, base, stats.clone())?;
                    let (sink, starter) = Sink::prepare(&c.name, stats).map_err(|e| {
                        EventsError::Sink(format!("events.sinks ({:?}): {e}", c.name))
                    })?;
                    starts.push((starter, worker));
                    report.started.push(c.name.clone());
                    sink
                }
            };
            entries.push(Entry {
                filter: Filter::of(c),
                kind: Some(c.kind),
                sink,
                file: outbox::file_path(c, base),
            });
        }

        // Commit: producers see the new set from here on.
        self.sinks.store(Arc::new(SinkSet(entries)));
        let deadline = Instant::now() + RELOAD_WAIT;
        let mut acks = Vec::new();
        for (sink, build) in rebuilds {
            match sink.replace(build, deadline) {
                Some(ack) => acks.push((sink.name.clone(), ack)),
                None => report.late.push(sink.name.clone()),
            }
        }
        let mut exits = Vec::new();
        for (name, change) in &changes {
            if *change == Change::Stop {
                report.stopped.push(name.clone());
                if let Some(exit) = find(name).and_then(|e| e.sink.take_exit()) {
                    exits.push((name.clone(), exit));
                }
            }
        }
        // The last handles to the stopped sinks (but for producers in flight):
        // their threads drain their queues and end.
        drop(old);
        for (name, ack) in acks {
            let left = deadline.saturating_duration_since(Instant::now());
            if ack.recv_timeout(left).is_err() {
                report.late.push(name);
            }
        }
        for (name, exit) in exits {
            let left = deadline.saturating_duration_since(Instant::now());
            if exit.recv_timeout(left) != Err(RecvTimeoutError::Disconnected) {
                report.late.push(name);
            }
        }
        for (starter, worker) in starts {
            starter.start(worker);
        }
        Ok(report)
    }

    /// Appends email and audit records to two files, one JSON object per line.
    pub fn to_files(email_log: &Path, audit_log: &Path) -> std::io::Result<Events> {
        let section = config::EventsSection {
            email_log: Some(email_log.to_path_buf()),
            audit_log: Some(audit_log.to_path_buf()),
            sinks: Vec::new(),
        };
        Events::start(&section, Path::new(""), Arc::new(Metrics::new()))
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
        let sink = Sink::spawn("memory", metrics.sink("memory"), worker)
            .expect("a thread for the in-memory event sink");
        let entry = Entry {
            filter: Filter::all(),
            kind: None,
            sink,
            file: None,
        };
        (Events::with(SinkSet(vec![entry]), metrics), captured)
    }

    /// The metrics registry the records feed (served on the `metrics` listener).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// From now on, sends every record through `store`'s outbox: starts its
    /// appender and reader threads (they end with the last handle). Call once,
    /// from within the tokio runtime, before records flow; later calls do nothing.
    pub fn attach_outbox(&self, store: Arc<dyn crate::store::Outbox>) -> Result<(), EventsError> {
        if self.outbox.get().is_some() {
            return Ok(());
        }
        let attached = outbox::Attached::start(
            store,
            Arc::downgrade(&self.sinks),
            Arc::downgrade(&self.routes),
        )
        .map_err(|e| EventsError::Sink(format!("events outbox threads: {e}")))?;
        let _ = self.outbox.set(attached);
        Ok(())
    }

    /// Whether producers that write to the store should put their email events
    /// into that write (see [`outbox`]); false: emit them with [`Events::emit_rows`].
    pub fn recording(&self) -> bool {
        self.outbox.get().is_some()
    }

    /// After a commit that recorded `rows` (`recorded`), or instead of it: counts
    /// them for the metrics and, when they were not recorded, sends them to the
    /// sinks now; when they were, wakes the outbox reader.
    pub fn emit_rows(&self, rows: &[crate::store::OutboxEvent], recorded: bool) {
        for r in rows {
            self.metrics.on_email_name(&r.kind);
        }
        match self.outbox.get() {
            Some(o) if recorded => o.wake(),
            Some(o) => rows.iter().for_each(|r| o.append(r.clone())),
            None => rows
                .iter()
                .for_each(|r| self.offer_email(&r.org, &r.kind, &r.line)),
        }
    }

    /// Emits one audit record.
    pub fn audit(&self, event: AuditEvent) {
        self.metrics.on_audit(&event);
        // Audit records are routed by the sinks' filters alone: one no sink wants
        // is neither rendered nor kept (a mailbox-access record per EWS item read
        // would otherwise cost a JSON rendering and an outbox row each).
        let kind = Kind::Audit(event.log_type());
        let set = self.sinks.load();
        if !set.0.iter().any(|e| e.filter.matches(kind)) {
            return;
        }
        let line = event.to_line(&new_id(), crate::clock::now_ms());
        if let Some(o) = self.outbox.get() {
            o.append(crate::store::OutboxEvent {
                kind: event.log_type().into(),
                org: String::new(),
                line,
            });
            return;
        }
        let line: Arc<str> = line.into();
        for e in set.0.iter().filter(|e| e.filter.matches(kind)) {
            e.sink.offer(Record {
                kind,
                line: line.clone(),
                seq: 0,
            });
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
        if let Some(o) = self.outbox.get() {
            o.append(outbox::email_row(org, trace_id, &event));
            return;
        }
        let kind = Kind::Email(event.name());
        let set = self.sinks.load();
        let routes = self.routes.load();
        let routed = routes.get(org).map(String::as_str);
        let wanted = |e: &Entry| e.filter.matches(kind) || routed == Some(e.sink.name.as_str());
        if !set.0.iter().any(wanted) {
            return;
        }
        let line: Arc<str> = event
            .to_line(trace_id, &new_id(), crate::clock::now_ms())
            .into();
        for e in set.0.iter().filter(|e| wanted(e)) {
            e.sink.offer(Record {
                kind,
                line: line.clone(),
                seq: 0,
            });
        }
    }

    /// Sends an already rendered email event to the sinks that want it (no outbox).
    fn offer_email(&self, org: &str, name: &str, line: &str) {
        let Some(kind) = outbox::kind_of(name) else {
            return;
        };
        let set = self.sinks.load();
        let routes = self.routes.load();
        let routed = routes.get(org).map(String::as_str);
        let line: Arc<str> = line.into();
        for e in set.0.iter() {
            if e.filter.matches(kind) || routed == Some(e.sink.name.as_str()) {
                e.sink.offer(Record {
                    kind,
                    line: line.clone(),
                    seq: 0,
                });
            }
        }
    }

    /// Whether a sink of that name runs (the log group of an email monitoring
    /// configuration must name one).
    pub fn has_sink(&self, name: &str) -> bool {
        self.sinks.load().0.iter().any(|e| e.sink.name == name)
    }

    /// Sends organization `org`'s email events also to sink `sink` (None: stop).
    /// Returns false, changing nothing, when no sink has that name.
    pub fn route_org(&self, org: &str, sink: Option<&str>) -> bool {
        if sink.is_some_and(|name| !self.has_sink(name)) {
            return false;
        }
        self.routes.rcu(|current| {
            let mut next = HashMap::clone(current);
            match sink {
                Some(name) => next.insert(org.to_string(), name.to_string()),
                None => next.remove(org),
            };
            next
        });
        true
    }

    /// Waits (blocking, up to `limit` per sink) until every record emitted so far is
    /// written: the daemon calls it at shutdown so the last records are not lost.
    pub fn flush(&self, limit: Duration) -> bool {
        let drained = self.outbox.get().is_none_or(|o| o.flush(limit));
        drained && self.sinks.load().0.iter().all(|e| e.sink.flush(limit))
    }

    /// Records dropped by every running sink (queue or spool full, write failed).
    pub fn dropped(&self) -> u64 {
        self.sinks
            .load()
            .0
            .iter()
            .map(|e| e.sink.stats.dropped.get())
            .sum::<u64>()
            + self.outbox.get().map_or(0, |o| o.dropped())
    }
}

/// A fresh unique id (UUIDv4) for a request, a trace or a record.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::test_support::auth_event;
    use super::*;

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
        let events = Events::start(&section, dir.path(), metrics.clone()).unwrap();
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
        let events = Events::start(&section, dir.path(), metrics.clone()).unwrap();
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
        let events = Events::start(&section, dir.path(), Arc::new(Metrics::new())).unwrap();
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
        let events = Events::start(&section, dir.path(), Arc::new(Metrics::new())).unwrap();
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
