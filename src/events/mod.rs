//! Email events and audit events, sent to sinks without slowing mail flow.
//!
//! Producers call [`Events::audit`] or [`Events::email`]; the record is serialised
//! on the caller's thread (cheap) and queued to each sink's writer task. A full
//! queue drops the record and counts it ([`Events::dropped`]); it never blocks.
//! This piece holds the typed records and the JSON-lines file sink; the HTTP sink
//! with its on-disk spool, rotation and metrics come with the events work.

pub mod audit;
pub mod email;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

pub use audit::AuditEvent;
pub use email::EmailEvent;

/// Records a sink may hold in memory before new ones are dropped (and counted).
const QUEUE: usize = 65_536;

/// Handle to the event sinks; cheap to clone.
#[derive(Clone)]
pub struct Events {
    audit: Option<mpsc::Sender<String>>,
    email: Option<mpsc::Sender<String>>,
    dropped: Arc<AtomicU64>,
}

/// Records kept in memory by [`Events::capture`], for tests.
#[derive(Clone, Default)]
pub struct Captured {
    pub audit: Arc<Mutex<Vec<serde_json::Value>>>,
    pub email: Arc<Mutex<Vec<serde_json::Value>>>,
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
            audit: Some(spawn_file_sink(audit_log)?),
            email: Some(spawn_file_sink(email_log)?),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Keeps every record in memory.
    pub fn capture() -> (Events, Captured) {
        let captured = Captured::default();
        let (a_tx, a_rx) = mpsc::channel::<String>(QUEUE);
        let (e_tx, e_rx) = mpsc::channel::<String>(QUEUE);
        spawn_memory_sink(a_rx, captured.audit.clone());
        spawn_memory_sink(e_rx, captured.email.clone());
        (
            Events {
                audit: Some(a_tx),
                email: Some(e_tx),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            captured,
        )
    }

    /// Emits one audit record.
    pub fn audit(&self, event: AuditEvent) {
        if let Some(tx) = &self.audit {
            let line = event.to_json(&new_id(), crate::store::now_ms()).to_string();
            self.send(tx, line);
        }
    }

    /// Emits one email event of the flow `trace_id`.
    pub fn email(&self, trace_id: &str, event: EmailEvent) {
        if let Some(tx) = &self.email {
            let line = event
                .to_json(trace_id, &new_id(), crate::store::now_ms())
                .to_string();
            self.send(tx, line);
        }
    }

    fn send(&self, tx: &mpsc::Sender<String>, line: String) {
        if tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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

fn spawn_file_sink(path: &Path) -> std::io::Result<mpsc::Sender<String>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("events-file".into())
        .spawn(move || {
            let mut out = std::io::BufWriter::new(file);
            while let Some(line) = rx.blocking_recv() {
                let mut res = writeln!(out, "{line}");
                // Drain whatever else is queued, then flush once.
                while let Ok(more) = rx.try_recv() {
                    res = res.and_then(|_| writeln!(out, "{more}"));
                }
                if let Err(e) = res.and_then(|_| out.flush()) {
                    tracing::error!(path = %path.display(), error = %e, "event sink write failed");
                }
            }
        })?;
    Ok(tx)
}

fn spawn_memory_sink(mut rx: mpsc::Receiver<String>, into: Arc<Mutex<Vec<serde_json::Value>>>) {
    std::thread::spawn(move || {
        while let Some(line) = rx.blocking_recv() {
            if let (Ok(v), Ok(mut all)) = (serde_json::from_str(&line), into.lock()) {
                all.push(v);
            }
        }
    });
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
        drop(events);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let lines = loop {
            let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap_or_default();
            if text.lines().count() == 100 || std::time::Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
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
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(dir.path().join("email.jsonl")).unwrap_or_default();
            if !text.is_empty() {
                let v: serde_json::Value =
                    serde_json::from_str(text.lines().next().unwrap()).unwrap();
                assert_eq!(v["traceId"], "trace-1");
                break;
            }
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
