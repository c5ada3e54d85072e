//! [`Events::reload`]: sinks added, rebuilt and removed by name, records in flight
//! written by the writer they were queued for, and a refused reload changing nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::test_support::{auth_event, wait_for};
use super::{EmailEvent, Events, Metrics, config};

fn section(text: &str) -> config::EventsSection {
    let s: config::EventsSection = toml::from_str(text).unwrap();
    s.validate().unwrap();
    s
}

fn lines(dir: &Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join(name))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn delivered() -> EmailEvent {
    EmailEvent::MailboxEmailDelivered {
        recipient: "a@x.test".into(),
        folder: "Inbox".into(),
    }
}

#[test]
fn reload_adds_rebuilds_and_removes_sinks_without_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let metrics = Arc::new(Metrics::new());
    let first = section(
        r#"
        [[sinks]]
        name = "a"
        kind = "file"
        path = "a.jsonl"
        [[sinks]]
        name = "gone"
        kind = "file"
        path = "gone.jsonl"
        "#,
    );
    let events = Events::start(&first, d, metrics.clone()).unwrap();
    let producer = events.clone();
    for i in 0..2000 {
        producer.audit(auth_event(i % 2 == 0));
    }
    // No flush: the reload itself waits until "gone" has written its queue and
    // "a" has written everything queued for its old file.
    let report = events
        .reload(
            &section(
                r#"
                [[sinks]]
                name = "a"
                kind = "file"
                path = "a2.jsonl"
                email_events = []
                [[sinks]]
                name = "b"
                kind = "file"
                path = "b.jsonl"
                audit_logs = []
                "#,
            ),
            d,
        )
        .unwrap();
    assert_eq!(report.started, ["b"]);
    assert_eq!(report.rebuilt, ["a"]);
    assert_eq!(report.stopped, ["gone"]);
    assert!(report.late.is_empty(), "{report}");
    assert_eq!(
        lines(d, "gone.jsonl"),
        2000,
        "a removed sink writes its queue"
    );
    assert_eq!(
        lines(d, "a.jsonl"),
        2000,
        "records queued before the reload"
    );
    assert!(!events.has_sink("gone") && events.has_sink("b"));

    // Every clone of the handle sees the new sinks and filters.
    producer.audit(auth_event(true));
    producer.email("t", delivered());
    assert!(events.flush(Duration::from_secs(5)));
    assert_eq!(
        lines(d, "a2.jsonl"),
        1,
        "a's new path and filter (no email)"
    );
    assert_eq!(lines(d, "b.jsonl"), 1, "b takes email events only");
    assert_eq!(
        lines(d, "gone.jsonl"),
        2000,
        "a removed sink gets nothing new"
    );
    assert_eq!(lines(d, "a.jsonl"), 2000);

    // The metrics follow: a's counters carry on, b has its own, gone keeps its last.
    let text = metrics.render();
    for want in [
        "mailgate_events_sink_sent_total{sink=\"a\"} 2001",
        "mailgate_events_sink_sent_total{sink=\"b\"} 1",
        "mailgate_events_sink_sent_total{sink=\"gone\"} 2000",
        "mailgate_events_sink_lag_records{sink=\"a\"} 0",
        "mailgate_events_sink_lag_records{sink=\"b\"} 0",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    assert_eq!(events.dropped(), 0);
}

#[test]
fn a_reload_that_cannot_open_a_sink_keeps_the_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("not-a-dir"), "x").unwrap();
    let running = section("[[sinks]]\nname = \"a\"\nkind = \"file\"\npath = \"a.jsonl\"\n");
    let events = Events::start(&running, d, Arc::new(Metrics::new())).unwrap();
    let broken = [
        // A file sink whose directory cannot be created.
        "[[sinks]]\nname = \"a\"\nkind = \"file\"\npath = \"not-a-dir/a.jsonl\"\n",
        // An https sink whose CA file is missing, next to a good new sink.
        "[[sinks]]\nname = \"ok\"\nkind = \"file\"\npath = \"ok.jsonl\"\n\
         [[sinks]]\nname = \"siem\"\nkind = \"http\"\nurl = \"https://127.0.0.1:1/\"\nca = \"missing.pem\"\n",
    ];
    for text in broken {
        let err = events.reload(&section(text), d).unwrap_err().to_string();
        assert!(err.starts_with("events.sinks ("), "{err}");
    }
    // Validation errors are refused too (the daemon's config check catches them first).
    let bad: config::EventsSection =
        toml::from_str("[[sinks]]\nname = \"a b\"\nkind = \"stdout\"\n").unwrap();
    assert!(events.reload(&bad, d).is_err());

    events.audit(auth_event(true));
    assert!(events.flush(Duration::from_secs(5)));
    assert_eq!(lines(d, "a.jsonl"), 1, "the running sink still writes");
    assert!(!events.has_sink("ok") && !events.has_sink("siem"));
    assert!(!d.join("ok.jsonl").exists() || lines(d, "ok.jsonl") == 0);
}

#[test]
fn a_file_sink_reopens_its_file_on_reload_for_logrotate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = section("[[sinks]]\nname = \"a\"\nkind = \"file\"\npath = \"a.jsonl\"\n");
    let events = Events::start(&s, d, Arc::new(Metrics::new())).unwrap();
    events.audit(auth_event(true));
    assert!(events.flush(Duration::from_secs(5)));
    std::fs::rename(d.join("a.jsonl"), d.join("a.jsonl.1")).unwrap();
    events.reload(&s, d).unwrap();
    events.audit(auth_event(true));
    assert!(events.flush(Duration::from_secs(5)));
    assert_eq!(lines(d, "a.jsonl.1"), 1);
    assert_eq!(lines(d, "a.jsonl"), 1, "the new record is in a new file");
}

#[test]
fn routes_are_by_name_and_come_back_with_their_sink() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let both = section(
        "[[sinks]]\nname = \"all\"\nkind = \"file\"\npath = \"all.jsonl\"\naudit_logs = []\n\
         [[sinks]]\nname = \"org\"\nkind = \"file\"\npath = \"org.jsonl\"\nemail_events = []\naudit_logs = []\n",
    );
    let events = Events::start(&both, d, Arc::new(Metrics::new())).unwrap();
    assert!(events.route_org("m-a", Some("org")));
    let only_all = section(
        "[[sinks]]\nname = \"all\"\nkind = \"file\"\npath = \"all.jsonl\"\naudit_logs = []\n",
    );
    events.reload(&only_all, d).unwrap();
    events.email_in("m-a", "t1", delivered());
    events.reload(&both, d).unwrap();
    events.email_in("m-a", "t2", delivered());
    assert!(events.flush(Duration::from_secs(5)));
    assert_eq!(lines(d, "all.jsonl"), 2);
    let org = std::fs::read_to_string(d.join("org.jsonl")).unwrap();
    assert_eq!(org.lines().count(), 1, "{org}");
    assert!(org.contains("\"t2\""));
    assert!(wait_for(|| events.dropped() == 0));
}
