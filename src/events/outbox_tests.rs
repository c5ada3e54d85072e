//! The outbox path end to end on the SQLite store: every record reaches every
//! sink in order with its id and is then deleted; a failing sink keeps its rows
//! while the others go on; a restart resumes from the marks and writes nothing
//! twice into a file sink's file.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::outbox::email_row;
use super::sink::{Filter, Record, Sink, Worker};
use super::test_support::{auth_event, wait_for};
use super::*;
use crate::store::{Backend, OutboxEvent};

fn store(dir: &Path) -> Arc<dyn Backend> {
    crate::store::open_embedded(&dir.join("store.sqlite")).unwrap()
}

fn delivered(i: usize) -> OutboxEvent {
    email_row(
        "m-1",
        &format!("trace-{i}"),
        &EmailEvent::MailboxEmailDelivered {
            recipient: format!("u{i}@x.test"),
            folder: "Inbox".into(),
        },
    )
}

/// Ids of the records of a JSON-lines file, in order.
fn ids_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| super::file::record_id(l).expect("every line a whole record"))
        .collect()
}

/// [`Events::flush`] from async code.
async fn flush(events: &Events) -> bool {
    let events = events.clone();
    tokio::task::spawn_blocking(move || events.flush(Duration::from_secs(10)))
        .await
        .unwrap()
}

/// Waits (up to 10 s) until a test sink holds exactly `lines`.
async fn gets(got: &Arc<Mutex<Vec<String>>>, lines: &[String]) -> bool {
    let (got, lines) = (got.clone(), lines.to_vec());
    tokio::task::spawn_blocking(move || wait_for(|| *got.lock().unwrap() == lines))
        .await
        .unwrap()
}

async fn pending(store: &Arc<dyn Backend>) -> usize {
    store.outbox_after(0, usize::MAX).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_reaches_every_sink_once_in_order_and_leaves_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let (email, audit) = (
        dir.path().join("email.jsonl"),
        dir.path().join("audit.jsonl"),
    );
    let events = Events::to_files(&email, &audit).unwrap();
    events.attach_outbox(store.clone()).unwrap();
    assert!(events.recording());
    // Rows committed by writes of their own (as a delivery's are)...
    let mut expected_email = Vec::new();
    for chunk in 0..5 {
        let rows: Vec<OutboxEvent> = (chunk * 20..chunk * 20 + 20).map(delivered).collect();
        expected_email.extend(
            rows.iter()
                .map(|r| super::file::record_id(&r.line).unwrap()),
        );
        store.outbox_append(rows.clone()).await.unwrap();
        events.emit_rows(&rows, true);
    }
    // ...and records through the appender.
    for i in 0..300 {
        events.audit(auth_event(i % 2 == 0));
    }
    assert!(flush(&events).await, "drained");
    assert_eq!(ids_in(&email), expected_email, "in commit order, once each");
    let audit_ids = ids_in(&audit);
    assert_eq!(audit_ids.len(), 300);
    assert_eq!(audit_ids.iter().collect::<HashSet<_>>().len(), 300);
    assert_eq!(pending(&store).await, 0, "delivered rows are deleted");
    let marks = store.outbox_marks().await.unwrap();
    let names: Vec<&str> = marks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["audit_log", "email_log"]);
    assert_eq!(marks[0].1, marks[1].1, "both sinks passed every row");
    assert_eq!(events.dropped(), 0);
}

/// Keeps lines; fails every write while `down` is set (writing nothing).
struct Flaky {
    down: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<String>>>,
}

impl Worker for Flaky {
    fn write(&mut self, batch: &[Record]) -> bool {
        if self.down.load(Ordering::SeqCst) {
            return false;
        }
        let mut got = self.got.lock().unwrap();
        got.extend(batch.iter().map(|r| r.line.to_string()));
        true
    }
    fn tick(&mut self) -> Duration {
        Duration::from_secs(3600)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_keeps_its_rows_while_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metrics = Arc::new(Metrics::new());
    let sink = |name: &str, down: bool| {
        let (down, got) = (
            Arc::new(AtomicBool::new(down)),
            Arc::new(Mutex::new(Vec::new())),
        );
        let worker = Flaky {
            down: down.clone(),
            got: got.clone(),
        };
        let s = Sink::spawn(name, metrics.sink(name), worker).unwrap();
        let entry = Entry {
            filter: Filter::all(),
            kind: None,
            sink: s,
            file: None,
        };
        (entry, down, got)
    };
    let (good, _, good_got) = sink("good", false);
    let (bad, bad_down, bad_got) = sink("bad", true);
    let events = Events::with(SinkSet(vec![good, bad]), metrics.clone());
    events.attach_outbox(store.clone()).unwrap();
    let rows: Vec<OutboxEvent> = (0..50).map(delivered).collect();
    let last = store.outbox_append(rows.clone()).await.unwrap();
    let first = store.outbox_after(0, 1).await.unwrap()[0].seq;
    events.emit_rows(&rows, true);
    let lines: Vec<String> = rows.iter().map(|r| r.line.clone()).collect();

    assert!(gets(&good_got, &lines).await);
    let mark = |name: &'static str| {
        let store = store.clone();
        async move {
            store
                .outbox_marks()
                .await
                .unwrap()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s)
        }
    };
    // The good sink's mark moves; the failing one's stays, and so do the rows.
    let mut good_mark = None;
    for _ in 0..100 {
        good_mark = mark("good").await;
        if good_mark == Some(last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(good_mark, Some(last));
    assert!(mark("bad").await.unwrap_or(0) < first);
    assert_eq!(pending(&store).await, 50, "kept for the failing sink");
    assert!(bad_got.lock().unwrap().is_empty());

    // It recovers: it gets every row (once: nothing of a failed write was kept),
    // and the outbox empties.
    bad_down.store(false, Ordering::SeqCst);
    assert!(gets(&bad_got, &lines).await);
    let mut left = usize::MAX;
    for _ in 0..200 {
        left = pending(&store).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_marks_without_writing_a_record_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (email, audit) = (
        dir.path().join("email.jsonl"),
        dir.path().join("audit.jsonl"),
    );
    // Before the "crash": 30 rows committed, the sink marked 10 of them, wrote
    // 25, and the 26th only in part.
    let rows: Vec<OutboxEvent> = (0..30).map(delivered).collect();
    {
        let store = store(dir.path());
        store.outbox_append(rows.clone()).await.unwrap();
        let seqs: Vec<i64> = store
            .outbox_after(0, 100)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        store
            .outbox_mark(
                vec![
                    ("email_log".into(), seqs[9]),
                    ("audit_log".into(), seqs[29]),
                ],
                seqs[9],
            )
            .await
            .unwrap();
        let mut text: String = rows[..25].iter().map(|r| format!("{}\n", r.line)).collect();
        text.push_str(&rows[25].line[..20]);
        std::fs::write(&email, text).unwrap();
    }
    let store = store(dir.path());
    let events = Events::to_files(&email, &audit).unwrap();
    events.attach_outbox(store.clone()).unwrap();
    assert!(flush(&events).await);
    let want: Vec<String> = rows
        .iter()
        .map(|r| super::file::record_id(&r.line).unwrap())
        .collect();
    assert_eq!(
        ids_in(&email),
        want,
        "each record once, in order; the torn line cut"
    );
    assert_eq!(pending(&store).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_sink_the_rows_are_deleted_once_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let events = Events::with(SinkSet::default(), Arc::new(Metrics::new()));
    events.attach_outbox(store.clone()).unwrap();
    for round in 0..3 {
        let rows: Vec<OutboxEvent> = (0..10).map(delivered).collect();
        store.outbox_append(rows.clone()).await.unwrap();
        events.emit_rows(&rows, true);
        assert!(flush(&events).await);
        assert_eq!(pending(&store).await, 0, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_record_no_sink_wants_is_never_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let metrics = Arc::new(Metrics::new());
    let events = Events::with(SinkSet::default(), metrics.clone());
    events.attach_outbox(store.clone()).unwrap();
    for _ in 0..10 {
        events.audit(auth_event(true));
    }
    assert!(flush(&events).await);
    // Sequence numbers are never reused: the next row shows whether any came before.
    let next = store.outbox_append(vec![delivered(0)]).await.unwrap();
    assert_eq!(next, 1, "no audit row was ever written");
    assert!(
        metrics.render().contains("datapoint=\"0\""),
        "still counted by the metrics"
    );
    // With a sink that wants them they are kept until that sink has them.
    let (email, audit) = (
        dir.path().join("email.jsonl"),
        dir.path().join("audit.jsonl"),
    );
    let events = Events::to_files(&email, &audit).unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    let store = self::store(&dir.path().join("b"));
    events.attach_outbox(store.clone()).unwrap();
    events.audit(auth_event(true));
    assert!(flush(&events).await);
    assert_eq!(ids_in(&audit).len(), 1);
}
