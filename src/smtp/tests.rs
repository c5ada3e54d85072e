//! SMTP sessions over real sockets against a real store: the protocol, delivery,
//! events, and every bad input the SMTP issue lists.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::access::{AccessControlRuleInput, AccessEngine};
use crate::config::TlsMode;
use crate::events::Captured;
use crate::store::Backend;
use crate::store::FolderKind;
use crate::test_harness::{LineClient, World, tls_upgrade};

pub(super) use crate::test_harness::PASSWORD;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) mx: u16,
    /// MX behind a load balancer at 127.0.0.1 (PROXY protocol).
    mx_lb: u16,
    pub(super) submissions: u16,
    pub(super) ca: std::path::PathBuf,
    pub(super) store: Arc<dyn Backend>,
    directory: Arc<Directory>,
    access: Arc<AccessEngine>,
    pub(super) captured: Captured,
    pub(super) ctx: Arc<SmtpContext>,
    /// Rung by submission when it queues for the smarthost (relay fixtures only).
    pub(super) wake: Arc<tokio::sync::Notify>,
    org: String,
    pub(super) alice: String,
    pub(super) bob: String,
    draining: CancellationToken,
}

async fn fixture_with(limits: SmtpLimits) -> Fixture {
    build_fixture(limits, false, "").await
}

/// A fixture whose sender checks see these DNS records (and nothing else).
async fn fixture_with_dns(records: &str) -> Fixture {
    build_fixture(limits(), false, records).await
}

/// A fixture whose submission listener queues remote recipients, as with
/// `[smtp.relay]`; the test starts the runner itself.
pub(super) async fn fixture_with_relay() -> Fixture {
    build_fixture(limits(), true, "").await
}

async fn build_fixture(limits: SmtpLimits, relay: bool, dns: &str) -> Fixture {
    let w = World::new(|d, org, alice, bob| {
        let team = d.create_group(org, "team", false).unwrap();
        d.register_to_workmail(org, &team, "team@acme.test")
            .unwrap();
        d.associate_member_to_group(org, &team, alice).unwrap();
        d.associate_member_to_group(org, &team, bob).unwrap();
        d.create_alias(org, alice, "al@acme.test").unwrap();
    })
    .await;
    let wake = Arc::new(tokio::sync::Notify::new());
    let outbound = relay.then(|| {
        Arc::new(queue::Outbound {
            queue: w.store.clone(),
            wake: wake.clone(),
        })
    });
    let mx_rate = crate::net::RateLimiter::per_minute(limits.message_rate_per_ip);
    let ctx = Arc::new(SmtpContext {
        hostname: "mx.acme.test".into(),
        store: w.store.clone(),
        directory: w.directory.clone(),
        auth: w.auth.clone(),
        events: w.events.clone(),
        limits,
        outbound,
        mx_rate,
        sender_auth: crate::smtp::sender_auth::SenderAuth::fixed(
            "mx.acme.test",
            crate::smtp::sender_auth::StaticRecords::parse(dns).unwrap(),
        ),
        quota_hints: Default::default(),
    });
    let accept = w.accept_context(crate::config::Limits::default());
    let service = |flavor| {
        Arc::new(SmtpService {
            flavor,
            ctx: ctx.clone(),
        })
    };
    let mx = w
        .listen(&accept, "smtp", TlsMode::Starttls, service(Flavor::Mx))
        .await;
    let submissions = w
        .listen(
            &accept,
            "submissions",
            TlsMode::Implicit,
            service(Flavor::Submissions),
        )
        .await;
    let lb = crate::net::ProxyPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let mx_lb = w
        .listen_proxied(
            &accept,
            "smtp",
            TlsMode::Starttls,
            service(Flavor::Mx),
            Some(lb),
        )
        .await;
    Fixture {
        mx,
        mx_lb,
        submissions,
        ca: w.ca,
        store: w.store,
        directory: w.directory,
        access: w.access,
        captured: w.captured,
        ctx,
        wake,
        org: w.org,
        alice: w.alice,
        bob: w.bob,
        _dir: w.dir,
        draining: w.draining,
    }
}

fn limits() -> SmtpLimits {
    SmtpLimits {
        max_message_size: 64 * 1024,
        max_recipients: 5,
        max_errors: 6,
        message_rate_per_ip: 0,
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
        body_budget: crate::smtp::body::BodyBudget::new(1 << 20, std::env::temp_dir()),
    }
}

async fn fixture() -> Fixture {
    fixture_with(limits()).await
}

/// A line-oriented SMTP client over any stream.
pub(super) type Client<S> = LineClient<S>;

/// SMTP's replies on the harness's line client.
pub(super) trait Replies {
    /// Reads one (possibly multi-line) reply; returns its full text.
    async fn reply(&mut self) -> String;
    /// Sends a command line and reads its reply.
    async fn cmd(&mut self, text: &str) -> String;
}

impl<S: AsyncRead + AsyncWrite + Unpin> Replies for Client<S> {
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let line = self.line().await;
            if line == "<EOF>" {
                return format!("{all}<EOF>");
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn cmd(&mut self, text: &str) -> String {
        self.send(&format!("{text}\r\n")).await;
        self.reply().await
    }
}

pub(super) async fn mx(f: &Fixture) -> Client<TcpStream> {
    let mut c = Client::new(TcpStream::connect(("127.0.0.1", f.mx)).await.unwrap());
    assert!(c.reply().await.starts_with("220 mx.acme.test ESMTP"));
    assert!(c.cmd("EHLO client.test").await.contains("250 "));
    c
}

async fn tls_connect(f: &Fixture, port: u16) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tls_upgrade(&f.ca, tcp).await
}

pub(super) async fn submission(
    f: &Fixture,
    login: Option<(&str, &str)>,
) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut c = Client::new(tls_connect(f, f.submissions).await);
    assert!(c.reply().await.starts_with("220 "));
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    if let Some((user, pass)) = login {
        let blob = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        let r = c.cmd(&format!("AUTH PLAIN {blob}")).await;
        assert!(r.starts_with("235 2.7.0"), "{r}");
    }
    c
}

pub(super) async fn inbox(f: &Fixture, mailbox: &str, kind: FolderKind) -> Vec<Vec<u8>> {
    let store: Arc<dyn Backend> = f.store.clone();
    let Ok(folders) = store.folders(mailbox).await else {
        return vec![];
    };
    let folder = folders.into_iter().find(|x| x.kind == Some(kind)).unwrap();
    let mut out = Vec::new();
    for m in store.messages(folder.id, 1, u32::MAX).await.unwrap() {
        out.push(store.body(m.body_id).await.unwrap());
    }
    out
}

async fn email_events(f: &Fixture, at_least: usize) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        if f.captured.email.lock().unwrap().len() >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    f.captured.email.lock().unwrap().clone()
}

const MESSAGE: &str = "From: Sender <s@remote.test>\r\nSubject: hello\r\nMessage-ID: <m1@remote.test>\r\n\r\nHi there.\r\n";

#[tokio::test]
async fn mx_delivers_to_users_groups_and_aliases_once_per_mailbox() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    assert!(
        c.cmd("MAIL FROM:<s@remote.test>")
            .await
            .starts_with("250 2.1.0")
    );
    assert!(
        c.cmd("RCPT TO:<Alice@ACME.test>")
            .await
            .starts_with("250 2.1.5")
    );
    assert!(
        c.cmd("RCPT TO:<team@acme.test>")
            .await
            .starts_with("250 2.1.5")
    );
    assert!(
        c.cmd("RCPT TO:<al@acme.test>")
            .await
            .starts_with("250 2.1.5")
    );
    assert!(c.cmd("DATA").await.starts_with("354 "));
    let r = c.cmd(&format!("{MESSAGE}.")).await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let a = inbox(&f, &f.alice, FolderKind::Inbox).await;
    let b = inbox(&f, &f.bob, FolderKind::Inbox).await;
    assert_eq!((a.len(), b.len()), (1, 1), "one copy per mailbox");
    let text = String::from_utf8_lossy(&a[0]);
    let (auth_results, rest) = text.split_once("\r\nReceived: ").unwrap();
    assert!(
        auth_results.starts_with("Authentication-Results: mx.acme.test;")
            && auth_results.contains("spf=none")
            && auth_results.contains("dmarc=none"),
        "{auth_results}"
    );
    assert!(
        rest.starts_with(
            "from client.test ([127.0.0.1])\r\n\tby mx.acme.test (mailgate) with ESMTP id "
        ),
        "{rest}"
    );
    assert!(a[0].ends_with(MESSAGE.as_bytes()));
    assert!(c.cmd("QUIT").await.starts_with("221 2.0.0"));

    let events = email_events(&f, 3).await;
    let names: Vec<_> = events
        .iter()
        .map(|e| e["event"]["eventName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "ORGANIZATION_EMAIL_RECEIVED")
            .count(),
        1
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "MAILBOX_EMAIL_DELIVERED")
            .count(),
        2
    );
    assert!(
        events.iter().all(|e| e["traceId"] == events[0]["traceId"]),
        "one traceId per flow"
    );
    let received = events
        .iter()
        .find(|e| e["event"]["eventName"] == "ORGANIZATION_EMAIL_RECEIVED")
        .unwrap();
    assert_eq!(received["event"]["subject"], "hello");
    assert_eq!(received["event"]["messageId"], "m1@remote.test");
    assert_eq!(received["event"]["from"], "s@remote.test");
    // remote.test publishes nothing (static resolver, no records).
    for v in ["spfVerdict", "dkimVerdict", "dmarcVerdict"] {
        assert_eq!(received["event"][v], "GRAY", "{v}");
    }
    assert!(received["event"].get("dmarcPolicy").is_none());
}

/// Issue 20.13: `postmaster@` every served domain (and a bare `postmaster`) is
/// accepted (RFC 5321 4.5.1): the organization's first user gets it, unless the
/// organization made it an address of its own.
#[tokio::test]
async fn postmaster_is_accepted_for_every_served_domain() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    assert!(c.cmd("MAIL FROM:<>").await.starts_with("250"));
    for to in ["<PostMaster@acme.test>", "<postmaster>"] {
        let r = c.cmd(&format!("RCPT TO:{to}")).await;
        assert!(r.starts_with("250"), "{to}: {r}");
    }
    assert!(
        c.cmd("RCPT TO:<postmaster@elsewhere.test>")
            .await
            .starts_with("550 5.7.1")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    assert!(c.cmd(&format!("{MESSAGE}.")).await.starts_with("250"));
    let alice = inbox(&f, &f.alice, FolderKind::Inbox).await;
    assert_eq!(alice.len(), 1, "the first user, once for both names");
    // An alias the organization defines wins.
    let (d, org, bob) = (f.directory.clone(), f.org.clone(), f.bob.clone());
    tokio::task::spawn_blocking(move || {
        d.create_alias(&org, &bob, "postmaster@acme.test").unwrap()
    })
    .await
    .unwrap();
    assert!(c.cmd("MAIL FROM:<>").await.starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<postmaster@acme.test>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    assert!(c.cmd(&format!("{MESSAGE}.")).await.starts_with("250"));
    assert_eq!(inbox(&f, &f.bob, FolderKind::Inbox).await.len(), 1);
    assert_eq!(inbox(&f, &f.alice, FolderKind::Inbox).await.len(), 1);
}

#[tokio::test]
async fn mx_refuses_relaying_and_unknown_users() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    assert!(
        c.cmd("MAIL FROM:<>").await.starts_with("250"),
        "null sender is fine on MX"
    );
    assert!(
        c.cmd("RCPT TO:<nobody@acme.test>")
            .await
            .starts_with("550 5.1.1")
    );
    assert!(
        c.cmd("RCPT TO:<someone@elsewhere.test>")
            .await
            .starts_with("550 5.7.1 Relaying denied")
    );
    assert!(c.cmd("DATA").await.starts_with("554 5.5.1"));
    assert!(
        c.cmd("AUTH PLAIN AGFsaWNlAHg=")
            .await
            .starts_with("502 5.5.1"),
        "no AUTH on MX"
    );
}

#[tokio::test]
async fn pipelined_commands_get_replies_in_order() {
    let f = fixture().await;
    let mut c = Client::new(TcpStream::connect(("127.0.0.1", f.mx)).await.unwrap());
    c.reply().await;
    c.send("EHLO p.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@acme.test>\r\nRCPT TO:<x@nowhere.test>\r\nDATA\r\n").await;
    assert!(c.reply().await.contains("250-DSN"));
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("550 5.7.1"));
    assert!(c.reply().await.starts_with("354"));
    c.send(&format!("{MESSAGE}.\r\nRSET\r\nNOOP\r\nQUIT\r\n"))
        .await;
    assert!(c.reply().await.starts_with("250 2.0.0 Ok"));
    assert!(c.reply().await.starts_with("250 2.0.0 OK"));
    assert!(c.reply().await.starts_with("250 2.0.0 OK"));
    assert!(c.reply().await.starts_with("221"));
    assert_eq!(inbox(&f, &f.bob, FolderKind::Inbox).await.len(), 1);
}

#[tokio::test]
async fn a_line_over_1_mib_is_refused_not_cut_out() {
    let f = fixture_with(SmtpLimits {
        max_message_size: 4 << 20,
        ..limits()
    })
    .await;
    let mut c = mx(&f).await;
    let body = format!(
        "Subject: long\r\n\r\nbefore\r\n{}\r\nafter\r\n.\r\n",
        "y".repeat((1 << 20) + 100)
    );
    let r = send_body(&mut c, "MAIL FROM:<s@remote.test>", body.as_bytes()).await;
    assert!(r.starts_with("554 5.6.0") && r.contains("line"), "{r}");
    assert!(
        inbox(&f, &f.bob, FolderKind::Inbox).await.is_empty(),
        "the message was not stored without its long line"
    );
    let r = send_body(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        b"Subject: ok\r\n\r\nhi\r\n.\r\n",
    )
    .await;
    assert!(r.starts_with("250 2.0.0"), "the session goes on: {r}");
}

/// MAIL FROM `mail_from` and RCPT TO bob, both accepted.
async fn mail_to_bob<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Client<S>, mail_from: &str) {
    assert!(c.cmd(mail_from).await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<bob@acme.test>").await.starts_with("250"));
}

async fn send_body(c: &mut Client<TcpStream>, mail_from: &str, body: &[u8]) -> String {
    mail_to_bob(c, mail_from).await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.io.get_mut().write_all(body).await.unwrap();
    c.reply().await
}

#[tokio::test]
async fn damaged_messages_are_refused_and_nothing_is_stored() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    // SMTP smuggling: a bare-LF "end of data" followed by a second message.
    let r = send_body(&mut c, "MAIL FROM:<s@remote.test>", b"Subject: a\r\n\r\nhi\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<alice@acme.test>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n").await;
    assert!(r.starts_with("554 5.6.0"), "{r}");
    let r = send_body(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        b"Subject: a\r\n\r\nnul \x00 here\r\n.\r\n",
    )
    .await;
    assert!(r.starts_with("554 5.6.0") && r.contains("NUL"), "{r}");
    let r = send_body(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        "Subject: caf\u{e9}\r\n\r\n.\r\n".as_bytes(),
    )
    .await;
    assert!(r.starts_with("554 5.6.1"), "{r}");
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(70 * 1024));
    let r = send_body(&mut c, "MAIL FROM:<s@remote.test>", big.as_bytes()).await;
    assert!(r.starts_with("552 5.3.4"), "{r}");
    assert!(
        c.cmd("MAIL FROM:<s@remote.test> SIZE=999999999")
            .await
            .starts_with("552 5.3.4")
    );
    assert!(
        inbox(&f, &f.bob, FolderKind::Inbox).await.is_empty(),
        "nothing partial or smuggled was stored"
    );
    assert!(inbox(&f, &f.alice, FolderKind::Inbox).await.is_empty());
    // The session is still usable, and 8-bit is fine when declared.
    let r = send_body(
        &mut c,
        "MAIL FROM:<s@remote.test> BODY=8BITMIME",
        "Subject: caf\u{e9}\r\n\r\n.\r\n".as_bytes(),
    )
    .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(inbox(&f, &f.bob, FolderKind::Inbox).await.len(), 1);
}

#[tokio::test]
async fn out_of_sequence_garbage_and_long_lines_end_in_421() {
    let f = fixture().await;
    let mut c = Client::new(TcpStream::connect(("127.0.0.1", f.mx)).await.unwrap());
    c.reply().await;
    assert!(
        c.cmd("MAIL FROM:<a@b.test>").await.starts_with("503 5.5.1"),
        "MAIL before EHLO"
    );
    assert!(c.cmd("EHLO x").await.starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<bob@acme.test>")
            .await
            .starts_with("503 5.5.1")
    );
    assert!(c.cmd("DATA").await.starts_with("503 5.5.1"));
    assert!(
        c.cmd(&format!("NOOP {}", "a".repeat(5000)))
            .await
            .starts_with("500 5.5.2")
    );
    assert!(c.cmd("\u{1}\u{2}garbage").await.starts_with("500 5.5.1"));
    assert!(
        c.cmd("MAIL FROM:<a@b.test> FOO=BAR")
            .await
            .starts_with("555 5.5.4")
    );
    // That was the sixth error: the server says goodbye without waiting.
    let bye = c.reply().await;
    assert!(bye.starts_with("421 4.7.0"), "{bye}");
    assert!(c.reply().await.ends_with("<EOF>"));
}

#[tokio::test]
async fn bdat_chunks_deliver_and_misplaced_chunks_are_consumed() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    c.send("BDAT 5\r\nhello").await;
    assert!(c.reply().await.starts_with("503 5.5.1"));
    assert!(
        c.cmd("NOOP").await.starts_with("250"),
        "the chunk was consumed, not parsed as commands"
    );
    mail_to_bob(&mut c, "MAIL FROM:<s@remote.test>").await;
    let (part1, part2) = MESSAGE.split_at(20);
    c.send(&format!("BDAT {}\r\n{part1}", part1.len())).await;
    assert!(c.reply().await.starts_with("250 2.0.0 20 octets"));
    c.send(&format!("BDAT {} LAST\r\n{part2}", part2.len()))
        .await;
    assert!(c.reply().await.starts_with("250 2.0.0 Ok"));
    let b = inbox(&f, &f.bob, FolderKind::Inbox).await;
    assert!(b[0].ends_with(MESSAGE.as_bytes()));
}

/// Waits until the store counts `n` announced deliveries (see `ExpectedWrite`).
async fn announced_becomes(f: &Fixture, n: usize) {
    for _ in 0..500 {
        if f.store.announced_writes() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("announced writes: {}, not {n}", f.store.announced_writes());
}

#[tokio::test]
async fn a_delivery_is_announced_while_its_data_arrives_and_only_then() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    // Announced from DATA until submitted.
    mail_to_bob(&mut c, "MAIL FROM:<s@remote.test>").await;
    assert_eq!(f.store.announced_writes(), 0, "not before DATA");
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send("Subject: x\r\n\r\nfirst half").await;
    announced_becomes(&f, 1).await;
    c.send(" second half\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0"));
    assert_eq!(f.store.announced_writes(), 0);
    // A refused message withdraws it.
    let r = send_body(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        b"Subject: x\r\n\r\nnul\0\r\n.\r\n",
    )
    .await;
    assert!(r.starts_with("554 5.6.0"), "{r}");
    assert_eq!(f.store.announced_writes(), 0);
    // BDAT: from the first chunk until the transaction ends (here by RSET).
    mail_to_bob(&mut c, "MAIL FROM:<s@remote.test>").await;
    c.send("BDAT 5\r\nhello").await;
    assert!(c.reply().await.starts_with("250 2.0.0 5 octets"));
    assert_eq!(f.store.announced_writes(), 1);
    assert!(c.cmd("RSET").await.starts_with("250"));
    assert_eq!(f.store.announced_writes(), 0);
    // A client that leaves mid-DATA withdraws it with its session.
    mail_to_bob(&mut c, "MAIL FROM:<s@remote.test>").await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send("Subject: x\r\n\r\npartial").await;
    announced_becomes(&f, 1).await;
    drop(c);
    announced_becomes(&f, 0).await;
    assert_eq!(
        inbox(&f, &f.bob, FolderKind::Inbox).await.len(),
        1,
        "only the first message"
    );
}

#[tokio::test]
async fn starttls_upgrades_and_drops_pipelined_plaintext() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    // A command injected after STARTTLS in the same packet must be discarded.
    c.send("STARTTLS\r\nRSET\r\n").await;
    assert!(c.reply().await.starts_with("220 2.0.0"));
    let tcp = c.io.into_inner();
    let mut t = Client::new(tls_upgrade(&f.ca, tcp).await);
    let ehlo = t.cmd("EHLO client.test").await;
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert!(t.cmd("STARTTLS").await.starts_with("503"));
    assert!(
        t.cmd("MAIL FROM:<s@remote.test>")
            .await
            .starts_with("250 2.1.0"),
        "the injected RSET got no reply"
    );
}

/// Issue 20.4: clients that push message data and stall hold no more memory than
/// the shared budget; the rest waits on disk, and a spilled message that completes
/// is stored byte for byte.
#[tokio::test]
async fn stalled_data_stays_within_the_memory_budget() {
    let spill = tempfile::tempdir().unwrap();
    let budget = crate::smtp::body::BodyBudget::new(256 * 1024, spill.path().to_path_buf());
    let f = fixture_with(SmtpLimits {
        max_message_size: 4 << 20,
        body_budget: budget.clone(),
        ..limits()
    })
    .await;
    let line = format!("{}\r\n", "z".repeat(998));
    let chunk = line.repeat(100); // 100 KB
    let mut stalled = Vec::new();
    for _ in 0..6 {
        let mut c = mx(&f).await;
        mail_to_bob(&mut c, "MAIL FROM:<s@remote.test>").await;
        assert!(c.cmd("DATA").await.starts_with("354"));
        c.io.get_mut()
            .write_all(b"Subject: big\r\n\r\n")
            .await
            .unwrap();
        for _ in 0..8 {
            c.io.get_mut().write_all(chunk.as_bytes()).await.unwrap();
        }
        stalled.push(c);
    }
    // 4.8 MB pushed; let the sessions take it in.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        budget.used() <= 256 * 1024,
        "{} bytes in memory",
        budget.used()
    );
    assert!(std::fs::read_dir(spill.path()).is_ok(), "spilled to disk");
    // One of them finishes: its message is stored whole.
    let c = &mut stalled[0];
    c.io.get_mut().write_all(b"the end\r\n.\r\n").await.unwrap();
    let r = c.reply().await;
    assert!(r.starts_with("250"), "{r}");
    let stored = inbox(&f, &f.bob, FolderKind::Inbox).await;
    let body = &stored[0];
    let expected = format!("Subject: big\r\n\r\n{}the end\r\n", chunk.repeat(8));
    assert!(
        body.ends_with(expected.as_bytes()),
        "stored {} bytes",
        body.len()
    );
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        budget.used(),
        0,
        "a session that leaves gives its share back"
    );
}

/// Issue 20.10: an over-long AUTH response line gets 500 5.5.6 and the session goes on.
#[tokio::test]
async fn an_over_long_auth_line_is_refused_and_the_session_goes_on() {
    let f = fixture().await;
    let mut c = submission(&f, None).await;
    assert!(c.cmd("AUTH LOGIN").await.starts_with("334 VXNlcm5hbWU6"));
    let r = c.cmd(&"QUFB".repeat(2_000)).await;
    assert!(r.starts_with("500 5.5.6"), "{r}");
    assert!(c.cmd("AUTH PLAIN").await.starts_with("334"));
    let r = c.cmd(&"QUFB".repeat(2_000)).await;
    assert!(r.starts_with("500 5.5.6"), "{r}");
    let blob =
        base64::engine::general_purpose::STANDARD.encode(format!("\0alice@acme.test\0{PASSWORD}"));
    assert!(
        c.cmd(&format!("AUTH PLAIN {blob}"))
            .await
            .starts_with("235 2.7.0")
    );
}

#[tokio::test]
async fn submission_authenticates_checks_senders_and_files_sent_items() {
    let f = fixture().await;
    let mut c = submission(&f, None).await;
    assert!(
        c.cmd("MAIL FROM:<alice@acme.test>")
            .await
            .starts_with("530 5.7.0")
    );
    let bad = base64::engine::general_purpose::STANDARD.encode("\0alice@acme.test\0wrong");
    assert!(
        c.cmd(&format!("AUTH PLAIN {bad}"))
            .await
            .starts_with("535 5.7.8")
    );
    assert!(c.cmd("AUTH LOGIN").await.starts_with("334 VXNlcm5hbWU6"));
    assert!(
        c.cmd(&base64::engine::general_purpose::STANDARD.encode("alice@acme.test"))
            .await
            .starts_with("334 UGFzc3dvcmQ6")
    );
    assert!(
        c.cmd(&base64::engine::general_purpose::STANDARD.encode(PASSWORD))
            .await
            .starts_with("235 2.7.0")
    );
    assert!(
        c.cmd("MAIL FROM:<bob@acme.test>")
            .await
            .starts_with("550 5.7.60"),
        "not alice's address"
    );
    assert!(
        c.cmd("MAIL FROM:<al@acme.test>").await.starts_with("250"),
        "own alias"
    );
    assert!(c.cmd("RCPT TO:<bob@acme.test>").await.starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<x@elsewhere.test>")
            .await
            .starts_with("550 5.7.1")
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    let r = c
        .cmd("From: alice@acme.test\r\nSubject: report\r\n\r\nsee attached\r\n.")
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = inbox(&f, &f.bob, FolderKind::Inbox).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("with ESMTPSA id"), "{text}");
    assert!(
        text.contains("\r\nMessage-ID: <") && text.contains("\r\nDate: "),
        "submission adds Message-ID and Date: {text}"
    );
    assert_eq!(
        inbox(&f, &f.alice, FolderKind::SentItems).await.len(),
        1,
        "a copy in Sent Items"
    );
    let events = email_events(&f, 3).await;
    let submitted = events
        .iter()
        .find(|e| e["event"]["eventName"] == "OUTGOING_EMAIL_SUBMITTED")
        .unwrap();
    let received = events
        .iter()
        .find(|e| e["event"]["eventName"] == "ORGANIZATION_EMAIL_RECEIVED")
        .unwrap();
    assert_ne!(
        submitted["traceId"], received["traceId"],
        "sent and received copies have two traces"
    );
    assert_eq!(submitted["event"]["recipients"][0], "bob@acme.test");
}

#[tokio::test]
async fn send_on_behalf_adds_a_sender_header() {
    let f = fixture().await;
    {
        let (d, org, alice, bob) = (
            f.directory.clone(),
            f.org.clone(),
            f.alice.clone(),
            f.bob.clone(),
        );
        tokio::task::spawn_blocking(move || {
            d.put_mailbox_permissions(
                &org,
                &bob,
                &alice,
                &[crate::directory::Permission::SendOnBehalf],
            )
            .unwrap()
        })
        .await
        .unwrap();
    }
    let mut c = submission(&f, Some(("alice@acme.test", PASSWORD))).await;
    mail_to_bob(&mut c, "MAIL FROM:<bob@acme.test>").await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    assert!(
        c.cmd("From: bob@acme.test\r\nSubject: for bob\r\n\r\nx\r\n.")
            .await
            .starts_with("250")
    );
    let got = inbox(&f, &f.bob, FolderKind::Inbox).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("\r\nSender: <alice@acme.test>\r\n"));
}

fn deny_smtp_loopback() -> AccessControlRuleInput {
    serde_json::from_value(serde_json::json!({
        "Name": "no-smtp", "Effect": "DENY", "Description": "", "IpRanges": ["127.0.0.0/8"], "Actions": ["SMTP"]
    }))
    .unwrap()
}

#[tokio::test]
async fn a_deny_rule_fails_auth_like_a_bad_password_and_ends_live_sessions() {
    let f = fixture().await;
    let mut live = submission(&f, Some(("alice@acme.test", PASSWORD))).await;
    assert!(live.cmd("NOOP").await.starts_with("250"));
    let access = f.access.clone();
    let org = f.org.clone();
    tokio::task::spawn_blocking(move || {
        access
            .put_access_control_rule(&org, deny_smtp_loopback(), 2)
            .unwrap()
    })
    .await
    .unwrap();
    let r = live.cmd("MAIL FROM:<alice@acme.test>").await;
    assert!(r.starts_with("421 4.7.0"), "{r}");
    let mut fresh = submission(&f, None).await;
    let blob =
        base64::engine::general_purpose::STANDARD.encode(format!("\0alice@acme.test\0{PASSWORD}"));
    assert!(
        fresh
            .cmd(&format!("AUTH PLAIN {blob}"))
            .await
            .starts_with("535 5.7.8 Authentication credentials invalid")
    );
    let access = f.access.clone();
    let org = f.org.clone();
    tokio::task::spawn_blocking(move || {
        access.delete_access_control_rule(&org, "no-smtp").unwrap()
    })
    .await
    .unwrap();
    assert!(
        fresh
            .cmd(&format!("AUTH PLAIN {blob}"))
            .await
            .starts_with("235")
    );
}

#[tokio::test]
async fn a_full_mailbox_is_refused_at_rcpt_and_others_still_get_the_message() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    let r = send_body(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        format!("{MESSAGE}.\r\n").as_bytes(),
    )
    .await;
    assert!(r.starts_with("250"));
    let store: Arc<dyn Backend> = f.store.clone();
    store.set_quota(&f.bob, 10).await.unwrap();
    assert!(c.cmd("MAIL FROM:<s@remote.test>").await.starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<bob@acme.test>")
            .await
            .starts_with("552 5.2.2")
    );
    assert!(
        c.cmd("RCPT TO:<team@acme.test>").await.starts_with("250"),
        "a group reaches the others"
    );
    assert!(c.cmd("DATA").await.starts_with("354"));
    assert!(c.cmd(&format!("{MESSAGE}.")).await.starts_with("250"));
    assert_eq!(inbox(&f, &f.alice, FolderKind::Inbox).await.len(), 1);
    assert_eq!(
        inbox(&f, &f.bob, FolderKind::Inbox).await.len(),
        1,
        "bob's full mailbox got nothing more"
    );
    let events = email_events(&f, 6).await;
    let bounce = events
        .iter()
        .find(|e| e["event"]["eventName"] == "INCOMING_EMAIL_BOUNCED")
        .unwrap();
    assert_eq!(
        bounce["event"]["bouncedRecipient"]["emailAddress"],
        "bob@acme.test"
    );
    assert_eq!(bounce["event"]["bouncedRecipient"]["status"], "5.2.2");
}

#[tokio::test]
async fn a_client_stalling_mid_data_is_cut_and_others_are_served() {
    let f = fixture_with(SmtpLimits {
        data_timeout: Duration::from_millis(500),
        ..limits()
    })
    .await;
    let mut stalled = mx(&f).await;
    assert!(
        stalled
            .cmd("MAIL FROM:<s@remote.test>")
            .await
            .starts_with("250")
    );
    assert!(
        stalled
            .cmd("RCPT TO:<bob@acme.test>")
            .await
            .starts_with("250")
    );
    assert!(stalled.cmd("DATA").await.starts_with("354"));
    stalled.send("Subject: never finished\r\n\r\npartial").await;
    let mut other = mx(&f).await;
    let r = send_body(
        &mut other,
        "MAIL FROM:<s@remote.test>",
        format!("{MESSAGE}.\r\n").as_bytes(),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let r = stalled.reply().await;
    assert!(r.starts_with("421 4.4.2"), "{r}");
    let got = inbox(&f, &f.bob, FolderKind::Inbox).await;
    assert_eq!(got.len(), 1, "only the finished message");
}

#[tokio::test]
async fn draining_says_421_between_commands() {
    let f = fixture().await;
    let mut c = mx(&f).await;
    f.draining.cancel();
    let r = c.reply().await;
    assert!(r.starts_with("421 4.3.2"), "{r}");
}

#[tokio::test]
async fn mx_message_rate_per_ip_defers_with_450_and_keeps_the_session() {
    let f = fixture_with(SmtpLimits {
        message_rate_per_ip: 2,
        ..limits()
    })
    .await;
    let mut c = mx(&f).await;
    for i in 0..2 {
        assert!(
            c.cmd("MAIL FROM:<s@remote.test>")
                .await
                .starts_with("250 2.1.0")
        );
        assert!(
            c.cmd("RCPT TO:<alice@acme.test>")
                .await
                .starts_with("250 2.1.5")
        );
        assert!(c.cmd("DATA").await.starts_with("354 "));
        let r = c.cmd(&format!("{MESSAGE}.")).await;
        assert!(r.starts_with("250 2.0.0"), "message {i}: {r}");
    }
    let r = c.cmd("MAIL FROM:<s@remote.test>").await;
    assert!(
        r.starts_with("450 4.7.1 Too much mail from 127.0.0.1"),
        "{r}"
    );
    // The refusal is per IP, across sessions; the session itself goes on.
    let mut other = mx(&f).await;
    let r = other.cmd("MAIL FROM:<s@remote.test>").await;
    assert!(r.starts_with("450 4.7.1"), "{r}");
    assert!(c.cmd("NOOP").await.starts_with("250"));
    assert!(c.cmd("QUIT").await.starts_with("221"));
    assert_eq!(inbox(&f, &f.alice, FolderKind::Inbox).await.len(), 2);
    // Submission is not limited by the MX rate.
    let mut s = submission(&f, Some(("alice@acme.test", PASSWORD))).await;
    let r = s.cmd("MAIL FROM:<alice@acme.test>").await;
    assert!(r.starts_with("250 2.1.0"), "{r}");
}

/// Leaves room in bob's mailbox for RCPT's check (used < limit) but not for
/// another message, so the store refuses the copy at DATA time.
async fn fill_bob_but_pass_rcpt(f: &Fixture) {
    let mut c = mx(f).await;
    let r = send_body(
        &mut c,
        "MAIL FROM:<s@remote.test>",
        format!("{MESSAGE}.\r\n").as_bytes(),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let store: Arc<dyn Backend> = f.store.clone();
    let used = store.quota(&f.bob).await.unwrap().used;
    store.set_quota(&f.bob, used + 10).await.unwrap();
}

#[tokio::test]
async fn a_mailbox_refusing_at_data_time_gets_the_local_sender_a_dsn() {
    let f = fixture().await;
    fill_bob_but_pass_rcpt(&f).await;
    let mut s = submission(&f, Some(("alice@acme.test", PASSWORD))).await;
    assert!(
        s.cmd("MAIL FROM:<alice@acme.test> ENVID=Q42")
            .await
            .starts_with("250")
    );
    assert!(s.cmd("RCPT TO:<bob@acme.test>").await.starts_with("250"));
    assert!(s.cmd("DATA").await.starts_with("354"));
    let r = s
        .cmd("From: alice@acme.test\r\nSubject: budget\r\n\r\nnumbers\r\n.")
        .await;
    assert!(r.starts_with("250 2.0.0"), "the message is accepted: {r}");
    assert_eq!(
        inbox(&f, &f.bob, FolderKind::Inbox).await.len(),
        1,
        "bob got nothing more"
    );
    let alice = inbox(&f, &f.alice, FolderKind::Inbox).await;
    let dsn = String::from_utf8_lossy(alice.last().expect("a DSN in alice's Inbox")).into_owned();
    for needle in [
        "Undelivered Mail Returned to Sender",
        "Final-Recipient: rfc822; bob@acme.test",
        "Status: 5.2.2",
        "Diagnostic-Code: smtp; 552 5.2.2 mailbox full",
        "Original-Envelope-Id: Q42",
        "Subject: budget",
    ] {
        assert!(dsn.contains(needle), "missing {needle:?} in:\n{dsn}");
    }
}

#[tokio::test]
async fn a_remote_sender_gets_its_dsn_through_the_smarthost_unless_notify_never() {
    let f = fixture_with_relay().await;
    fill_bob_but_pass_rcpt(&f).await;
    let mut c = mx(&f).await;
    assert!(c.cmd("MAIL FROM:<s@remote.test>").await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@acme.test>").await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<bob@acme.test>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    assert!(c.cmd(&format!("{MESSAGE}.")).await.starts_with("250 2.0.0"));
    // And once more with NOTIFY=NEVER for bob: no second DSN.
    assert!(c.cmd("MAIL FROM:<s@remote.test>").await.starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<bob@acme.test> NOTIFY=NEVER")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<alice@acme.test>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    assert!(c.cmd(&format!("{MESSAGE}.")).await.starts_with("250 2.0.0"));
    assert_eq!(inbox(&f, &f.alice, FolderKind::Inbox).await.len(), 2);
    let queue: &dyn crate::store::queue::OutboundQueue = &*f.store;
    let due = queue.due(i64::MAX, 10).await.unwrap();
    assert_eq!(due.len(), 1, "one DSN queued: {due:?}");
    let m = &due[0];
    assert_eq!(m.message.sender, "", "a DSN has the null sender");
    assert_eq!(m.recipients.len(), 1);
    assert_eq!(m.recipients[0].recipient, "s@remote.test");
    assert!(!m.recipients[0].notify_failure, "no DSN about a DSN");
    let body = String::from_utf8(queue.queued_body(m.message.id).await.unwrap()).unwrap();
    assert!(
        body.contains("Final-Recipient: rfc822; bob@acme.test"),
        "{body}"
    );
}

/// remote.test sends only from 192.0.2.1 (so not from this test's 127.0.0.1) and
/// asks for `policy`; pass.test sends from 127.0.0.1.
fn dmarc_records(policy: &str) -> String {
    format!(
        "remote.test TXT \"v=spf1 ip4:192.0.2.1 -all\"\n\
         _dmarc.remote.test TXT \"v=DMARC1; p={policy}\"\n\
         pass.test TXT \"v=spf1 ip4:127.0.0.1 -all\"\n\
         _dmarc.pass.test TXT \"v=DMARC1; p=reject\"\n"
    )
}

async fn send_from(c: &mut Client<TcpStream>, domain: &str) -> String {
    assert!(
        c.cmd(&format!("MAIL FROM:<s@{domain}>"))
            .await
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<alice@acme.test>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.cmd(&format!(
        "From: s@{domain}\r\nSubject: invoice\r\nMessage-ID: <i1@{domain}>\r\n\r\npay\r\n."
    ))
    .await
}

fn named<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|e| e["event"]["eventName"] == name)
        .collect()
}

#[tokio::test]
async fn spf_aligned_mail_passes_and_reports_pass() {
    let f = fixture_with_dns(&dmarc_records("reject")).await;
    let mut c = mx(&f).await;
    assert!(send_from(&mut c, "pass.test").await.starts_with("250"));
    let events = email_events(&f, 2).await;
    let received = named(&events, "ORGANIZATION_EMAIL_RECEIVED")[0];
    assert_eq!(received["event"]["spfVerdict"], "PASS");
    assert_eq!(received["event"]["dmarcVerdict"], "PASS");
    assert_eq!(received["event"]["dkimVerdict"], "GRAY", "no signature");
    let stored = inbox(&f, &f.alice, FolderKind::Inbox).await;
    let text = String::from_utf8_lossy(&stored[0]);
    assert!(
        text.contains("spf=pass") && text.contains("dmarc=pass"),
        "{text}"
    );
}

#[tokio::test]
async fn dmarc_reject_is_refused_at_data_where_the_organization_enforces() {
    let f = fixture_with_dns(&dmarc_records("reject")).await;
    let mut c = mx(&f).await;
    let r = send_from(&mut c, "remote.test").await;
    assert!(
        r.starts_with("550 5.7.1 Message rejected by the sender domain's DMARC policy"),
        "{r}"
    );
    assert!(inbox(&f, &f.alice, FolderKind::Inbox).await.is_empty());
    assert!(inbox(&f, &f.alice, FolderKind::JunkEmail).await.is_empty());
    let events = email_events(&f, 1).await;
    let applied = named(&events, "DMARC_POLICY_APPLIED");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["event"]["policy"], "REJECT");
    assert_eq!(
        applied[0]["event"]["recipients"],
        serde_json::json!(["alice@acme.test"])
    );
    assert_eq!(applied[0]["event"]["from"], "s@remote.test");
    assert!(named(&events, "MAILBOX_EMAIL_DELIVERED").is_empty());
    // The session goes on.
    assert!(send_from(&mut c, "pass.test").await.starts_with("250"));
}

#[tokio::test]
async fn dmarc_quarantine_files_in_junk_and_says_so() {
    let f = fixture_with_dns(&dmarc_records("quarantine")).await;
    let mut c = mx(&f).await;
    assert!(send_from(&mut c, "remote.test").await.starts_with("250"));
    assert!(inbox(&f, &f.alice, FolderKind::Inbox).await.is_empty());
    assert_eq!(inbox(&f, &f.alice, FolderKind::JunkEmail).await.len(), 1);
    let events = email_events(&f, 3).await;
    let received = named(&events, "ORGANIZATION_EMAIL_RECEIVED")[0];
    assert_eq!(received["event"]["spfVerdict"], "FAIL");
    assert_eq!(received["event"]["dmarcVerdict"], "FAIL");
    assert_eq!(received["event"]["dmarcPolicy"], "QUARANTINE");
    assert_eq!(
        named(&events, "DMARC_POLICY_APPLIED")[0]["event"]["policy"],
        "QUARANTINE"
    );
    assert_eq!(
        named(&events, "MAILBOX_EMAIL_DELIVERED")[0]["event"]["folder"],
        "Junk"
    );
}

#[tokio::test]
async fn suspended_enforcement_delivers_and_only_reports() {
    let f = fixture_with_dns(&dmarc_records("reject")).await;
    let (d, org) = (f.directory.clone(), f.org.clone());
    tokio::task::spawn_blocking(move || d.set_inbound_dmarc_enforced(&org, false))
        .await
        .unwrap()
        .unwrap();
    let mut c = mx(&f).await;
    assert!(send_from(&mut c, "remote.test").await.starts_with("250"));
    assert_eq!(inbox(&f, &f.alice, FolderKind::Inbox).await.len(), 1);
    let events = email_events(&f, 2).await;
    let received = named(&events, "ORGANIZATION_EMAIL_RECEIVED")[0];
    assert_eq!(received["event"]["dmarcVerdict"], "FAIL");
    assert_eq!(received["event"]["dmarcPolicy"], "REJECT");
    assert!(named(&events, "DMARC_POLICY_APPLIED").is_empty());
    assert_eq!(
        named(&events, "MAILBOX_EMAIL_DELIVERED")[0]["event"]["folder"],
        "Inbox"
    );
}

/// Behind a load balancer the PROXY header's client is the one in the Received
/// trace (and everything else that uses the peer), whether v1 or v2.
#[tokio::test]
async fn behind_a_load_balancer_the_declared_client_is_received_from() {
    let f = fixture().await;
    let v2 = [
        &b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"[..],
        &[192, 0, 2, 66, 10, 0, 0, 1, 0x9c, 0x40, 0, 25],
    ]
    .concat();
    for header in [b"PROXY TCP4 192.0.2.55 10.0.0.1 40000 25\r\n".to_vec(), v2] {
        let mut tcp = TcpStream::connect(("127.0.0.1", f.mx_lb)).await.unwrap();
        tcp.write_all(&header).await.unwrap();
        let mut c = Client::new(tcp);
        assert!(c.reply().await.starts_with("220 mx.acme.test ESMTP"));
        assert!(c.cmd("EHLO client.test").await.contains("250 "));
        assert!(c.cmd("MAIL FROM:<s@remote.test>").await.starts_with("250"));
        assert!(c.cmd("RCPT TO:<bob@acme.test>").await.starts_with("250"));
        assert!(c.cmd("DATA").await.starts_with("354 "));
        let r = c.cmd(&format!("{MESSAGE}.")).await;
        assert!(r.starts_with("250 2.0.0"), "{r}");
    }
    let got = inbox(&f, &f.bob, FolderKind::Inbox).await;
    assert_eq!(got.len(), 2);
    for (m, client) in got.iter().zip(["192.0.2.55", "192.0.2.66"]) {
        let text = String::from_utf8_lossy(m);
        assert!(
            text.contains(&format!("Received: from client.test ([{client}])")),
            "{text}"
        );
    }
    // The same listener closes a connection that skips the header, unanswered
    // (a reset, since the client's bytes were left unread, or a plain close).
    let mut tcp = TcpStream::connect(("127.0.0.1", f.mx_lb)).await.unwrap();
    tcp.write_all(b"EHLO client.test\r\n").await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut got),
    )
    .await
    .expect("closed in time");
    assert_eq!(got, b"", "no greeting");
}
