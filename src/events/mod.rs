//! Email events and audit events, sent to sinks without slowing mail flow.
//!
//! Producers call [`Events::audit`] or [`Events::email`]; the record is serialised
//! on the caller's thread (cheap) and queued to each sink's writer thread. A full
//! queue drops the record and counts it ([`Events::dropped`]); it never blocks.
//! At shutdown [`Events::flush`] waits until every queued record is written.
//! This piece holds the typed records and the JSON-lines file sink; the HTTP sink
//! with its on-disk spool, rotation and metrics come with the events work.

pub mod audit;
pub mod email;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

pub use audit::AuditEvent;
pub use email::EmailEvent;

/// Records a sink may hold in memory before new ones are dropped (and counted).
const QUEUE: usize = 65_536;

/// Handle to the event sinks; cheap to clone.
#[derive(Clone)]
pub struct Events {
    audit: Option<Arc<Sink>>,
    email: Option<Arc<Sink>>,
    dropped: Arc<AtomicU64>,
}

/// Records kept in memory by [`Events::capture`], for tests.
#[derive(Clone, Default)]
pub struct Captured {
    pub audit: Arc<Mutex<Vec<serde_json::Value>>>,
    pub email: Arc<Mutex<Vec<serde_json::Value>>>,
}

/// One sink's queue and how far its writer has got, so shutdown can wait for it.
struct Sink {
    tx: mpsc::Sender<String>,
    sent: AtomicU64,
    written: Arc<(Mutex<u64>, Condvar)>,
}

impl Sink {
    /// Runs `write` on its own thread with batches of queued lines.
    fn spawn(
        name: &str,
        mut write: impl FnMut(&[String]) + Send + 'static,
    ) -> std::io::Result<Arc<Sink>> {
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        let written = Arc::new((Mutex::new(0u64), Condvar::new()));
        let progress = written.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut batch = Vec::new();
                while let Some(line) = rx.blocking_recv() {
                    batch.push(line);
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    write(&batch);
                    let (count, cv) = &*progress;
                    if let Ok(mut n) = count.lock() {
                        *n += batch.len() as u64;
                    }
                    cv.notify_all();
                    batch.clear();
                }
            })?;
        Ok(Arc::new(Sink {
            tx,
            sent: AtomicU64::new(0),
            written,
        }))
    }

    /// Waits until everything queued so far has been written, up to `limit`.
    fn flush(&self, limit: Duration) -> bool {
        let target = self.sent.load(Ordering::Acquire);
        let (count, cv) = &*self.written;
        let Ok(guard) = count.lock() else {
            return false;
        };
        cv.wait_timeout_while(guard, limit, |n| *n < target)
            .map(|(n, _)| *n >= target)
            .unwrap_or(false)
    }
}

impl Events {
    /// No sinks: records are discarded.
    pub fn disabled() -> Events {
        Events {
            audit: None,
            email: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Appends email and audit records to two files, one JSON object per line.
    pub fn to_files(email_log: &Path, audit_log: &Path) -> std::io::Result<Events> {
        Ok(Events {
            audit: Some(file_sink(audit_log)?),
            email: Some(file_sink(email_log)?),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Keeps every record in memory.
    pub fn capture() -> (Events, Captured) {
        let captured = Captured::default();
        let audit = memory_sink(captured.audit.clone());
        let email = memory_sink(captured.email.clone());
        (
            Events {
                audit: Some(audit),
                email: Some(email),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            captured,
        )
    }

    /// Emits one audit record.
    pub fn audit(&self, event: AuditEvent) {
        if let Some(sink) = &self.audit {
            self.send(
                sink,
                event.to_json(&new_id(), crate::store::now_ms()).to_string(),
            );
        }
    }

    /// Emits one email event of the flow `trace_id`.
    pub fn email(&self, trace_id: &str, event: EmailEvent) {
        if let Some(sink) = &self.email {
            self.send(
                sink,
                event
                    .to_json(trace_id, &new_id(), crate::store::now_ms())
                    .to_string(),
            );
        }
    }

    fn send(&self, sink: &Sink, line: String) {
        match sink.tx.try_send(line) {
            Ok(()) => {
                sink.sent.fetch_add(1, Ordering::AcqRel);
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits (blocking, up to `limit` per sink) until every record emitted so far is
    /// written: the daemon calls it at shutdown so the last records are not lost.
    pub fn flush(&self, limit: Duration) -> bool {
        [&self.audit, &self.email]
            .into_iter()
            .flatten()
            .all(|s| s.flush(limit))
    }

    /// Records dropped because a sink's queue was full or gone.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A fresh unique id (UUIDv4) for a request, a trace or a record.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn file_sink(path: &Path) -> std::io::Result<Arc<Sink>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut out = std::io::BufWriter::new(file);
    let path = path.to_path_buf();
    Sink::spawn("events-file", move |lines| {
        let res = lines
            .iter()
            .try_for_each(|l| writeln!(out, "{l}"))
            .and_then(|_| out.flush());
        if let Err(e) = res {
            tracing::error!(path = %path.display(), error = %e, "event sink write failed");
        }
    })
}

fn memory_sink(into: Arc<Mutex<Vec<serde_json::Value>>>) -> Arc<Sink> {
    Sink::spawn("events-memory", move |lines| {
        if let Ok(mut all) = into.lock() {
            all.extend(lines.iter().filter_map(|l| serde_json::from_str(l).ok()));
        }
    })
    .expect("a thread for the in-memory event sink")
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
}
