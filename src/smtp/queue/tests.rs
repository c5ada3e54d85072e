//! The outbound queue end to end over sockets: submission queues, the runner
//! relays to a fake smarthost written here, and the smarthost's answers drive
//! delivery, retry with backoff, bounce with a DSN, and survival of a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::TlsMode;
use crate::smtp::tests::{Fixture, PASSWORD, Replies, fixture_with_relay, inbox, mx, submission};
use crate::store::FolderKind;
use crate::store::queue::OutboundQueue;

/// How the fake smarthost answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accept,
    /// Accept, and offer SMTPUTF8.
    AcceptUtf8,
    /// 451 at MAIL FROM on the first N connections, then accept.
    BusyFirst(usize),
    /// 550 5.1.1 at every RCPT TO.
    RejectRcpt,
}

/// A message the smarthost took: envelope and un-stuffed data.
#[derive(Debug, Clone)]
struct Taken {
    /// The MAIL command line as sent.
    mail: String,
    from: String,
    to: Vec<String>,
    data: String,
}

/// What the fake smarthost saw.
#[derive(Default)]
struct Seen {
    connections: Vec<Instant>,
    taken: Vec<Taken>,
}

/// Starts a smarthost on 127.0.0.1:0; returns its port and what it sees.
async fn smarthost(mode: Mode) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let n = {
                let mut s = log.lock().unwrap();
                s.connections.push(Instant::now());
                s.connections.len()
            };
            tokio::spawn(serve(socket, mode, n, log.clone()));
        }
    });
    (port, seen)
}

async fn serve(
    socket: tokio::net::TcpStream,
    mode: Mode,
    connection: usize,
    log: Arc<Mutex<Seen>>,
) {
    let mut io = BufReader::new(socket);
    let mut tx: Option<Taken> = None;
    write(&mut io, "220 smart.test ESMTP fake\r\n").await;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") && mode == Mode::AcceptUtf8 {
            "250-smart.test\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("EHLO") {
            "250-smart.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            if let Mode::BusyFirst(n) = mode
                && connection <= n
            {
                "451 4.3.0 busy, try later\r\n"
            } else {
                tx = Some(Taken {
                    mail: line.trim_end().to_string(),
                    from: addr(&line),
                    to: vec![],
                    data: String::new(),
                });
                "250 2.1.0 ok\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            if mode == Mode::RejectRcpt {
                "550 5.1.1 no such user here\r\n"
            } else {
                if let Some(t) = &mut tx {
                    t.to.push(addr(&line));
                }
                "250 2.1.5 ok\r\n"
            }
        } else if upper.starts_with("DATA") {
            write(&mut io, "354 go ahead\r\n").await;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if io.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            if let Some(mut t) = tx.take() {
                t.data = data;
                log.lock().unwrap().taken.push(t);
            }
            "250 2.0.0 queued\r\n"
        } else if upper.starts_with("RSET") {
            tx = None;
            "250 2.0.0 ok\r\n"
        } else if upper.starts_with("QUIT") {
            write(&mut io, "221 2.0.0 bye\r\n").await;
            return;
        } else {
            "502 5.5.1 what\r\n"
        };
        write(&mut io, reply).await;
    }
}

async fn write(io: &mut BufReader<tokio::net::TcpStream>, text: &str) {
    let _ = io.get_mut().write_all(text.as_bytes()).await;
}

fn addr(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}

/// Plain SMTP to 127.0.0.1:`port`, short timeouts.
fn plain(port: u16) -> RelaySettings {
    RelaySettings {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        connector: None,
        auth: None,
        hello: "mx.acme.test".into(),
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
    }
}

/// Retries after 100 ms, 200 ms, ... up to 1 s, for a minute.
fn quick() -> Backoff {
    Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        lifetime: Duration::from_secs(60),
    }
}

/// Starts a runner on the fixture's store towards 127.0.0.1:`port`.
fn start_runner(f: &Fixture, port: u16) -> (CancellationToken, JoinHandle<()>) {
    start_runner_with(f, plain(port), quick())
}

fn start_runner_with(
    f: &Fixture,
    relay: RelaySettings,
    backoff: Backoff,
) -> (CancellationToken, JoinHandle<()>) {
    let runner = Runner {
        queue: f.store.clone(),
        ctx: f.ctx.clone(),
        relay: Arc::new(relay),
        backoff,
        wake: f.wake.clone(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    (stop, task)
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Submits as alice to a remote recipient and bob; expects the 250.
async fn submit(f: &Fixture) {
    submit_with(
        f,
        "MAIL FROM:<alice@acme.test>",
        &["RCPT TO:<carol@remote.test>", "RCPT TO:<bob@acme.test>"],
    )
    .await
}

async fn submit_with(f: &Fixture, mail: &str, rcpts: &[&str]) {
    let mut c = submission(f, Some(("alice@acme.test", PASSWORD))).await;
    assert!(c.cmd(mail).await.starts_with("250"));
    for rcpt in rcpts {
        let r = c.cmd(rcpt).await;
        assert!(r.starts_with("250 2.1.5"), "{rcpt}: {r}");
    }
    assert!(c.cmd("DATA").await.starts_with("354"));
    let r = c
        .cmd("From: alice@acme.test\r\nSubject: offsite\r\nMessage-ID: <o1@acme.test>\r\n\r\n..dotted line\r\nbody text\r\n.")
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
}

/// Polls `check` for up to 10 s.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn events_named(f: &Fixture, name: &str) -> Vec<serde_json::Value> {
    f.captured
        .email
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["eventName"] == name)
        .cloned()
        .collect()
}

async fn queue_len(f: &Fixture) -> usize {
    OutboundQueue::queued_recipients(&*f.store).await.unwrap()
}

#[tokio::test]
async fn accepted_mail_reaches_the_smarthost_with_a_received_header() {
    let f = fixture_with_relay().await;
    let (port, seen) = smarthost(Mode::Accept).await;
    let (stop, task) = start_runner(&f, port);
    submit(&f).await;
    until("the smarthost to take it", async || {
        !seen.lock().unwrap().taken.is_empty()
    })
    .await;
    until("OUTGOING_EMAIL_SENT", async || {
        !events_named(&f, "OUTGOING_EMAIL_SENT").is_empty()
    })
    .await;
    until("an empty queue", async || queue_len(&f).await == 0).await;
    let taken = seen.lock().unwrap().taken.clone();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].from, "alice@acme.test");
    assert_eq!(
        taken[0].to,
        ["carol@remote.test"],
        "local recipients are not relayed"
    );
    assert!(
        taken[0].data.starts_with("Received: from client.test"),
        "{}",
        taken[0].data
    );
    assert!(taken[0].data.contains("\r\nSubject: offsite\r\n"));
    assert!(
        taken[0].data.ends_with("\r\n.dotted line\r\nbody text\r\n"),
        "dots survive stuffing"
    );
    let sent = &events_named(&f, "OUTGOING_EMAIL_SENT")[0];
    assert_eq!(sent["event"]["recipient"], "carol@remote.test");
    assert_eq!(sent["event"]["from"], "alice@acme.test");
    assert_eq!(sent["event"]["messageId"], "o1@acme.test");
    let submitted = &events_named(&f, "OUTGOING_EMAIL_SUBMITTED")[0];
    assert_eq!(
        sent["traceId"], submitted["traceId"],
        "one trace per outbound flow"
    );
    assert_eq!(inbox(&f, &f.alice, FolderKind::SentItems).await.len(), 1);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn temporary_refusals_are_retried_with_backoff_and_delivered_once() {
    let f = fixture_with_relay().await;
    let (port, seen) = smarthost(Mode::BusyFirst(2)).await;
    let (stop, task) = start_runner(&f, port);
    submit(&f).await;
    until("the third attempt to succeed", async || {
        !seen.lock().unwrap().taken.is_empty()
    })
    .await;
    until("an empty queue", async || queue_len(&f).await == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (taken, connections) = {
        let s = seen.lock().unwrap();
        (s.taken.len(), s.connections.clone())
    };
    assert_eq!(taken, 1, "delivered exactly once");
    assert_eq!(connections.len(), 3);
    let gaps: Vec<Duration> = connections.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(90), "{gaps:?}");
    assert!(
        gaps[1] >= Duration::from_millis(190),
        "the delay doubles: {gaps:?}"
    );
    assert!(events_named(&f, "OUTGOING_EMAIL_BOUNCED").is_empty());
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_permanent_refusal_bounces_with_a_dsn_in_the_senders_inbox() {
    let f = fixture_with_relay().await;
    let (port, seen) = smarthost(Mode::RejectRcpt).await;
    let (stop, task) = start_runner(&f, port);
    submit(&f).await;
    until("OUTGOING_EMAIL_BOUNCED", async || {
        !events_named(&f, "OUTGOING_EMAIL_BOUNCED").is_empty()
    })
    .await;
    until("an empty queue", async || queue_len(&f).await == 0).await;
    assert_eq!(
        seen.lock().unwrap().connections.len(),
        1,
        "no retry after a 5xx"
    );
    let bounced = &events_named(&f, "OUTGOING_EMAIL_BOUNCED")[0];
    assert_eq!(
        bounced["event"]["bouncedRecipient"]["emailAddress"],
        "carol@remote.test"
    );
    assert_eq!(bounced["event"]["bouncedRecipient"]["status"], "5.1.1");
    assert_eq!(bounced["event"]["destination"], "127.0.0.1");
    let inbox = inbox(&f, &f.alice, FolderKind::Inbox).await;
    assert_eq!(inbox.len(), 1, "one DSN");
    let dsn = String::from_utf8_lossy(&inbox[0]);
    assert!(
        dsn.contains("Final-Recipient: rfc822; carol@remote.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains("Subject: offsite"),
        "the original headers: {dsn}"
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn notify_never_suppresses_the_dsn_and_envid_is_echoed() {
    let f = fixture_with_relay().await;
    let (port, _seen) = smarthost(Mode::RejectRcpt).await;
    let (stop, task) = start_runner(&f, port);
    submit_with(
        &f,
        "MAIL FROM:<alice@acme.test> ENVID=QQ314159",
        &[
            "RCPT TO:<carol@remote.test> NOTIFY=FAILURE,DELAY",
            "RCPT TO:<dave@remote.test> NOTIFY=NEVER",
        ],
    )
    .await;
    until("two bounces", async || {
        events_named(&f, "OUTGOING_EMAIL_BOUNCED").len() == 2
    })
    .await;
    until("an empty queue", async || queue_len(&f).await == 0).await;
    let inbox = inbox(&f, &f.alice, FolderKind::Inbox).await;
    assert_eq!(inbox.len(), 1, "no DSN for NOTIFY=NEVER");
    let dsn = String::from_utf8_lossy(&inbox[0]);
    assert!(
        dsn.contains("Final-Recipient: rfc822; carol@remote.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Original-Envelope-Id: QQ314159"), "{dsn}");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_non_ascii_address_needs_smtputf8_at_the_smarthost() {
    let f = fixture_with_relay().await;
    let (port, seen) = smarthost(Mode::Accept).await;
    let (stop, task) = start_runner(&f, port);
    submit_with(
        &f,
        "MAIL FROM:<alice@acme.test> SMTPUTF8",
        &["RCPT TO:<josé@remote.test>"],
    )
    .await;
    until("OUTGOING_EMAIL_BOUNCED", async || {
        !events_named(&f, "OUTGOING_EMAIL_BOUNCED").is_empty()
    })
    .await;
    let bounced = &events_named(&f, "OUTGOING_EMAIL_BOUNCED")[0];
    assert_eq!(bounced["event"]["bouncedRecipient"]["status"], "5.6.7");
    assert!(seen.lock().unwrap().taken.is_empty());
    stop.cancel();
    task.await.unwrap();

    let f = fixture_with_relay().await;
    let (port, seen) = smarthost(Mode::AcceptUtf8).await;
    let (stop, task) = start_runner(&f, port);
    submit_with(
        &f,
        "MAIL FROM:<alice@acme.test> SMTPUTF8",
        &["RCPT TO:<josé@remote.test>"],
    )
    .await;
    until("delivery", async || !seen.lock().unwrap().taken.is_empty()).await;
    let taken = seen.lock().unwrap().taken[0].clone();
    assert_eq!(taken.mail, "MAIL FROM:<alice@acme.test> SMTPUTF8");
    assert_eq!(taken.to, ["josé@remote.test"]);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn the_queue_survives_a_runner_restart() {
    let f = fixture_with_relay().await;
    let (stop, task) = start_runner(&f, closed_port().await);
    submit(&f).await;
    until("a failed attempt", async || {
        f.store
            .due(i64::MAX, 10)
            .await
            .unwrap()
            .first()
            .is_some_and(|d| d.recipients[0].attempts >= 1)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(queue_len(&f).await, 1, "still queued");

    let (port, seen) = smarthost(Mode::Accept).await;
    let (stop, task) = start_runner(&f, port);
    until("delivery by the new runner", async || {
        !seen.lock().unwrap().taken.is_empty()
    })
    .await;
    until("an empty queue", async || queue_len(&f).await == 0).await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn an_unreachable_smarthost_bounces_when_the_lifetime_ends() {
    let f = fixture_with_relay().await;
    let backoff = Backoff {
        lifetime: Duration::from_millis(250),
        ..quick()
    };
    let (stop, task) = start_runner_with(&f, plain(closed_port().await), backoff);
    submit(&f).await;
    until("OUTGOING_EMAIL_BOUNCED", async || {
        !events_named(&f, "OUTGOING_EMAIL_BOUNCED").is_empty()
    })
    .await;
    until("an empty queue", async || queue_len(&f).await == 0).await;
    let bounced = &events_named(&f, "OUTGOING_EMAIL_BOUNCED")[0];
    assert_eq!(bounced["event"]["bouncedRecipient"]["status"], "4.4.7");
    let reason = bounced["event"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("expired") && reason.contains("connection"),
        "{reason}"
    );
    let dsn =
        String::from_utf8_lossy(&inbox(&f, &f.alice, FolderKind::Inbox).await[0]).into_owned();
    assert!(dsn.contains("Status: 4.4.7"), "{dsn}");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn mx_still_refuses_relaying_when_a_smarthost_is_configured() {
    let f = fixture_with_relay().await;
    let mut c = mx(&f).await;
    assert!(c.cmd("MAIL FROM:<s@remote.test>").await.starts_with("250"));
    let r = c.cmd("RCPT TO:<carol@remote.test>").await;
    assert!(r.starts_with("550 5.7.1 Relaying denied"), "{r}");
}

/// The client against mailgate's own listeners: implicit TLS with AUTH PLAIN
/// (submissions) and STARTTLS (MX), both checked against the fixture's dev CA.
#[tokio::test]
async fn client_speaks_implicit_tls_with_auth_and_starttls() {
    let f = fixture_with_relay().await;
    let tls = |port, mode, auth: Option<(String, String)>| RelaySettings {
        host: "localhost".into(),
        tls: mode,
        connector: Some(connector(&f.ca).unwrap()),
        auth,
        ..plain(port)
    };
    let auth = Some(("alice@acme.test".to_string(), PASSWORD.to_string()));
    let body = b"From: alice@acme.test\r\nSubject: via tls\r\n\r\nhi\r\n";
    for settings in [
        tls(f.submissions, TlsMode::Implicit, auth),
        tls(f.mx, TlsMode::Starttls, None),
    ] {
        let mut c = client::Connection::open(Arc::new(settings)).await.unwrap();
        let replies = c
            .send(
                "alice@acme.test",
                &["bob@acme.test".to_string(), "nobody@acme.test".to_string()],
                body,
            )
            .await
            .unwrap();
        assert!(replies[0].is_positive(), "{replies:?}");
        assert_eq!(
            replies[1].status.as_deref(),
            Some("5.1.1"),
            "per-recipient refusal"
        );
        c.quit().await;
    }
    assert_eq!(inbox(&f, &f.bob, FolderKind::Inbox).await.len(), 2);
    let wrong = RelaySettings {
        host: "localhost".into(),
        tls: TlsMode::Implicit,
        connector: Some(connector(&f.ca).unwrap()),
        auth: Some(("alice@acme.test".into(), "wrong".into())),
        ..plain(f.submissions)
    };
    let refused = client::Connection::open(Arc::new(wrong)).await;
    assert!(matches!(refused, Err(client::ClientError::Refused(r)) if r.code == 535));
}

mod smtp_sink;
