//! The HTTP sink over TLS, end to end on loopback: batches arrive over HTTPS, the
//! receiver's certificate is verified against the sink's `ca`, and a receiver the
//! sink does not trust gets nothing while the records wait in the spool (counted),
//! to go out once the receiver has a trusted certificate or the sink trusts its CA.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::metrics::SinkStats;
use super::test_support::{HttpsReceiver, auth_event, wait_for};
use super::{Events, Metrics, config};

fn https_section(port: u16, ca: &std::path::Path) -> config::EventsSection {
    let s: config::EventsSection = toml::from_str(&format!(
        r#"
        [[sinks]]
        name = "siem"
        kind = "http"
        url = "https://127.0.0.1:{port}/ingest"
        ca = "{}"
        email_events = []
        retry_initial_ms = 20
        retry_max_ms = 100
        batch_max = 16
        timeout_secs = 2
        "#,
        ca.display()
    ))
    .unwrap();
    s.validate().unwrap();
    s
}

/// Waits until `receiver` has `n` records and the sink's spool is empty, then
/// checks that every record arrived exactly once.
fn assert_drained(receiver: &HttpsReceiver, stats: &SinkStats, n: usize) {
    assert!(
        wait_for(|| receiver.count() >= n),
        "got {}",
        receiver.count()
    );
    assert!(wait_for(|| stats.spool_bytes.get() == 0));
    assert_eq!(unique_ids(&receiver.got.lock().unwrap()), n);
}

fn unique_ids(lines: &[String]) -> usize {
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

#[test]
fn https_sink_verifies_the_receiver_and_spools_until_it_is_trusted() {
    crate::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let trusted = crate::tls::generate_dev_cert(&dir.path().join("trusted"), "localhost").unwrap();
    let rogue = crate::tls::generate_dev_cert(&dir.path().join("rogue"), "localhost").unwrap();

    // The receiver shows a certificate from a CA the sink does not trust.
    let receiver = HttpsReceiver::start(&rogue.pair());
    let section = https_section(receiver.port, &trusted.ca);
    let metrics = Arc::new(Metrics::new());
    let events = Events::start(&section, dir.path(), metrics.clone()).unwrap();
    let stats = metrics.sink("siem");
    for i in 0..40 {
        events.audit(auth_event(i % 2 == 0));
    }
    assert!(events.flush(Duration::from_secs(5)));
    assert_eq!(stats.spooled.get(), 40);
    assert!(
        wait_for(|| stats.failed.get() >= 2 && receiver.refused.load(Ordering::SeqCst) >= 2),
        "handshakes refused and retried"
    );
    assert_eq!(receiver.count(), 0, "an untrusted receiver gets nothing");
    assert_eq!(stats.sent.get(), 0);
    assert!(stats.spool_bytes.get() > 0, "the records wait in the spool");
    assert_eq!(stats.dropped.get(), 0);

    // The receiver changes to a certificate the sink trusts: the spool drains over TLS.
    receiver.resolver.load(&[trusted.pair()]).unwrap();
    assert_drained(&receiver, &stats, 40);
    assert_eq!(stats.sent.get(), 40);
    let text = metrics.render();
    assert!(
        text.contains("mailgate_events_sink_sent_total{sink=\"siem\"} 40"),
        "{text}"
    );

    // Back to the rogue certificate: new records wait again...
    receiver.resolver.load(&[rogue.pair()]).unwrap();
    let refused = receiver.refused.load(Ordering::SeqCst);
    for _ in 0..10 {
        events.audit(auth_event(true));
    }
    assert!(wait_for(
        || receiver.refused.load(Ordering::SeqCst) > refused
    ));
    assert_eq!(unique_ids(&receiver.got.lock().unwrap()), 40);
    assert!(stats.spool_bytes.get() > 0);

    // ...until the operator trusts the receiver's CA and reloads: the rebuilt
    // sink takes over the spool and delivers it.
    let report = events
        .reload(&https_section(receiver.port, &rogue.ca), dir.path())
        .unwrap();
    assert_eq!(report.rebuilt, ["siem"]);
    assert_drained(&receiver, &stats, 50);
    assert_eq!(
        stats.sent.get(),
        50,
        "the counters carry on across the reload"
    );
    assert_eq!(events.dropped(), 0);
}

#[test]
fn an_https_sink_without_a_readable_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let section = https_section(1, &dir.path().join("missing-ca.pem"));
    let err = Events::start(&section, dir.path(), Arc::new(Metrics::new()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("\"siem\"") && err.contains("missing-ca.pem"),
        "{err}"
    );
}

#[test]
fn a_removed_https_sink_leaves_its_spool_for_the_next_sink_of_that_name() {
    crate::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::tls::generate_dev_cert(&dir.path().join("tls"), "localhost").unwrap();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = probe.local_addr().unwrap().port();
    drop(probe); // nothing listens there
    let metrics = Arc::new(Metrics::new());
    let events = Events::start(&https_section(down, &ca.ca), dir.path(), metrics.clone()).unwrap();
    let stats = metrics.sink("siem");
    for _ in 0..5 {
        events.audit(auth_event(true));
    }
    assert!(events.flush(Duration::from_secs(5)));
    assert!(wait_for(|| stats.failed.get() >= 1));

    // Removed: it stops with the records still in its spool (and says so).
    let none: config::EventsSection = toml::from_str("email_log = \"e.jsonl\"").unwrap();
    let report = events.reload(&none, dir.path()).unwrap();
    assert_eq!(report.stopped, ["siem"]);
    assert!(stats.spool_bytes.get() > 0);
    events.audit(auth_event(true)); // not for the removed sink

    // Configured again, now pointing at a live receiver: the spool goes out.
    let receiver = HttpsReceiver::start(&ca.pair());
    let report = events
        .reload(&https_section(receiver.port, &ca.ca), dir.path())
        .unwrap();
    assert_eq!(report.started, ["siem"]);
    assert_drained(&receiver, &stats, 5);
    assert_eq!(stats.sent.get(), 5);
    assert_eq!(stats.spooled.get(), 5);
}
