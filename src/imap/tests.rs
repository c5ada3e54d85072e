//! IMAP sessions over real sockets against a real store: a scripted compliance run
//! in the style of imaptest (login, list, select, append, fetch, store, search,
//! copy/move, expunge, CONDSTORE, IDLE across two sessions) and the bad inputs the
//! issue lists, each followed by a command proving the connection still works.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::access::{AccessControlRuleInput, AccessEngine};
use crate::config::TlsMode;
use crate::test_harness::{LineClient, PASSWORD, World};

const LIMIT: u32 = 64 * 1024;

struct Fixture {
    _dir: tempfile::TempDir,
    imap: u16,
    imaps: u16,
    /// IMAPS behind a load balancer at 127.0.0.1 (PROXY protocol).
    imaps_lb: u16,
    ca: std::path::PathBuf,
    access: Arc<AccessEngine>,
    org: String,
    captured: crate::events::Captured,
    directory: Arc<Directory>,
    ids: (String, String),
    draining: CancellationToken,
    store: Arc<dyn crate::store::Store>,
    /// The same store with its housekeeping side.
    backend: Arc<dyn crate::store::Backend>,
}

async fn fixture() -> Fixture {
    fixture_with(crate::config::Limits::default()).await
}

async fn fixture_with(limits: crate::config::Limits) -> Fixture {
    let w = World::new(|_, _, _, _| {}).await;
    let ctx = Arc::new(ImapContext {
        hostname: "imap.acme.test".into(),
        store: w.store.clone(),
        directory: w.directory.clone(),
        auth: w.auth.clone(),
        events: w.events.clone(),
        max_message_size: LIMIT,
        recent: Default::default(),
        subscriptions: subscriptions::Orphans::new(w.store.clone()),
    });
    let accept = w.accept_context(limits);
    let service = Arc::new(ImapService { ctx: ctx.clone() });
    let imap = w
        .listen(&accept, "imap", TlsMode::Starttls, service.clone())
        .await;
    let imaps = w
        .listen(&accept, "imaps", TlsMode::Implicit, service.clone())
        .await;
    let lb = crate::net::ProxyPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let imaps_lb = w
        .listen_proxied(&accept, "imaps", TlsMode::Implicit, service, Some(lb))
        .await;
    Fixture {
        imap,
        imaps,
        imaps_lb,
        ca: w.ca,
        access: w.access,
        org: w.org,
        captured: w.captured,
        directory: w.directory,
        ids: (w.alice, w.bob),
        _dir: w.dir,
        draining: w.draining,
        store: ctx.store.clone(),
        backend: w.store.clone(),
    }
}

/// A raw-line IMAP client.
type Client<S> = LineClient<S>;

/// IMAP's tagged completions on the harness's line client.
trait Tagged {
    /// Reads until the tagged completion of `tag`; returns everything read.
    async fn until(&mut self, tag: &str) -> String;
    /// Sends `tag text` and reads to its completion.
    async fn cmd(&mut self, tag: &str, text: &str) -> String;
}

impl<S: AsyncRead + AsyncWrite + Unpin> Tagged for Client<S> {
    async fn until(&mut self, tag: &str) -> String {
        let mut all = String::new();
        loop {
            let line = self.line().await;
            all.push_str(&line);
            if line.starts_with(&format!("{tag} ")) || line == "<EOF>" {
                return all;
            }
        }
    }

    async fn cmd(&mut self, tag: &str, text: &str) -> String {
        self.send(&format!("{tag} {text}\r\n")).await;
        self.until(tag).await
    }
}

async fn tls_upgrade(f: &Fixture, tcp: TcpStream) -> tokio_rustls::client::TlsStream<TcpStream> {
    crate::test_harness::tls_upgrade(&f.ca, tcp).await
}

type Tls = Client<tokio_rustls::client::TlsStream<TcpStream>>;

async fn imaps(f: &Fixture, user: Option<&str>) -> Tls {
    let tcp = TcpStream::connect(("127.0.0.1", f.imaps)).await.unwrap();
    let mut c = Client {
        io: BufReader::new(tls_upgrade(f, tcp).await),
    };
    let greeting = c.line().await;
    assert!(greeting.starts_with("* OK [CAPABILITY "), "{greeting}");
    assert!(greeting.contains("AUTH=PLAIN"), "{greeting}");
    if let Some(user) = user {
        let r = c
            .cmd("L", &format!("LOGIN {user}@acme.test {PASSWORD}"))
            .await;
        assert!(r.starts_with("L OK [CAPABILITY "), "{r}");
    }
    c
}

fn message(subject: &str, body_len: usize) -> String {
    format!(
        "From: Alice <alice@acme.test>\r\nTo: bob@acme.test\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 01:02:03 +0000\r\nMessage-ID: <{subject}@acme.test>\r\n\r\n{}\r\n",
        "x".repeat(body_len)
    )
}

async fn append<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Client<S>,
    tag: &str,
    mailbox: &str,
    flags: &str,
    msg: &str,
) -> String {
    c.send(&format!(
        "{tag} APPEND {mailbox} ({flags}) {{{}+}}\r\n{msg}\r\n",
        msg.len()
    ))
    .await;
    c.until(tag).await
}

#[tokio::test]
async fn starttls_is_required_before_login_and_plaintext_pipelining_is_dropped() {
    let f = fixture().await;
    let tcp = TcpStream::connect(("127.0.0.1", f.imap)).await.unwrap();
    let mut c = Client {
        io: BufReader::new(tcp),
    };
    let greeting = c.line().await;
    assert!(greeting.contains("STARTTLS") && greeting.contains("LOGINDISABLED"));
    let r = c
        .cmd("a", &format!("LOGIN alice@acme.test {PASSWORD}"))
        .await;
    assert!(r.starts_with("a NO [PRIVACYREQUIRED]"), "{r}");
    let r = c.cmd("b", "AUTHENTICATE PLAIN AGFsaWNlAHg=").await;
    assert!(r.starts_with("b NO [PRIVACYREQUIRED]"), "{r}");
    // STARTTLS with a command pipelined behind it: that command must be ignored.
    c.send("c STARTTLS\r\nd NOOP\r\n").await;
    let r = c.until("c").await;
    assert!(r.starts_with("c OK"), "{r}");
    let tcp = c.io.into_inner();
    let mut c = Client {
        io: BufReader::new(tls_upgrade(&f, tcp).await),
    };
    let r = c.cmd("e", "CAPABILITY").await;
    assert!(!r.contains("d OK"), "pipelined plaintext was executed: {r}");
    assert!(
        r.contains("AUTH=PLAIN") && !r.contains("LOGINDISABLED"),
        "{r}"
    );
    let blob = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("\0alice@acme.test\0{PASSWORD}"),
    );
    let r = c.cmd("f", &format!("AUTHENTICATE PLAIN {blob}")).await;
    assert!(r.starts_with("f OK"), "{r}");
    let r = c.cmd("g", "LOGOUT").await;
    assert!(r.starts_with("* BYE") && r.contains("g OK"), "{r}");
}

#[tokio::test]
async fn wrong_passwords_and_authenticate_continuations() {
    let f = fixture().await;
    let mut c = imaps(&f, None).await;
    let r = c.cmd("a", "LOGIN alice@acme.test nope").await;
    assert!(r.starts_with("a NO [AUTHENTICATIONFAILED]"), "{r}");
    c.send("b AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ \r\n");
    c.send("*\r\n").await;
    let r = c.until("b").await;
    assert!(r.starts_with("b BAD"), "{r}");
    c.send("c AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ \r\n");
    let blob = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("\0bob@acme.test\0{PASSWORD}"),
    );
    c.send(&format!("{blob}\r\n")).await;
    let r = c.until("c").await;
    assert!(r.starts_with("c OK"), "{r}");
    let r = c.cmd("d", "SELECT INBOX").await;
    assert!(r.contains("d OK [READ-WRITE]"), "{r}");
}

#[tokio::test]
async fn scripted_mailbox_session() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("alice")).await;
    let r = c.cmd("a1", "ID (\"name\" \"test\")").await;
    assert!(r.contains("* ID (") && r.contains("a1 OK"), "{r}");
    let r = c.cmd("a2", "LIST \"\" \"*\"").await;
    assert!(
        r.contains("* LIST (\\HasNoChildren) \"/\" \"INBOX\""),
        "{r}"
    );
    assert!(r.contains("\\Sent) \"/\" \"Sent Items\""), "{r}");
    assert!(!r.contains("Calendar") && !r.contains("Contacts"), "{r}");
    let r = c.cmd("a3", "CREATE Projects/2026").await;
    assert!(r.starts_with("a3 OK"), "{r}");
    let r = c.cmd("a4", "LIST \"\" %").await;
    assert!(r.contains("(\\HasChildren) \"/\" \"Projects\""), "{r}");
    assert!(!r.contains("Projects/2026"), "{r}");
    let r = c.cmd("a5", "CREATE Projects").await;
    assert!(r.starts_with("a5 NO [ALREADYEXISTS]"), "{r}");
    let r = c
        .cmd(
            "a6",
            "LIST (SPECIAL-USE) \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT))",
        )
        .await;
    assert!(r.contains("\\Trash) \"/\" \"Deleted Items\""), "{r}");
    assert!(!r.contains("\"INBOX\""), "{r}");
    assert!(
        r.contains("* STATUS \"Junk Email\" (MESSAGES 0 UIDNEXT 1)"),
        "{r}"
    );
    // Options LIST-EXTENDED does not define are BAD (RFC 5258 3), and the
    // session goes on.
    for (tag, list) in [
        ("a7", "LIST (BOGUS) \"\" \"*\""),
        ("a8", "LIST (RECURSIVEMATCH) \"\" \"*\""),
        ("a9", "LIST (RECURSIVEMATCH REMOTE) \"\" \"*\""),
        ("a10", "LIST \"\" \"*\" RETURN (BOGUS)"),
    ] {
        let r = c.cmd(tag, list).await;
        assert!(r.starts_with(&format!("{tag} BAD")), "{list}: {r}");
    }
    let r = c
        .cmd("a11", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"INBOX\"")
        .await;
    assert!(r.contains("\"INBOX\"") && r.contains("a11 OK"), "{r}");
    // Several patterns (RFC 5258 3): a folder matching any of them, once.
    let r = c
        .cmd("a12", "LIST \"\" (\"Sent Items\" INBOX \"*Items\")")
        .await;
    assert!(
        r.contains("\"INBOX\"") && r.contains("\"Deleted Items\""),
        "{r}"
    );
    assert_eq!(r.matches("\"Sent Items\"").count(), 1, "{r}");
    assert!(!r.contains("Drafts") && r.contains("a12 OK"), "{r}");

    let r = append(&mut c, "b1", "INBOX", "\\Flagged", &message("one", 10)).await;
    assert!(r.starts_with("b1 OK [APPENDUID "), "{r}");
    let r = append(&mut c, "b2", "INBOX", "", &message("two", 2000)).await;
    assert!(r.starts_with("b2 OK [APPENDUID "), "{r}");
    let r = append(&mut c, "b3", "INBOX", "\\Seen", &message("three", 10)).await;
    assert!(r.starts_with("b3 OK"), "{r}");
    let r = c
        .cmd(
            "b4",
            "STATUS INBOX (MESSAGES UNSEEN UIDNEXT SIZE HIGHESTMODSEQ)",
        )
        .await;
    assert!(r.contains("MESSAGES 3 UNSEEN 2 UIDNEXT 4"), "{r}");

    let r = c.cmd("c1", "SELECT INBOX").await;
    assert!(r.contains("* 3 EXISTS"), "{r}");
    assert!(r.contains("* OK [UIDVALIDITY "), "{r}");
    assert!(r.contains("* OK [UIDNEXT 4]"), "{r}");
    assert!(r.contains("c1 OK [READ-WRITE]"), "{r}");
    let r = c.cmd("c2", "FETCH 1:* (UID FLAGS RFC822.SIZE)").await;
    assert!(
        r.contains("* 1 FETCH (UID 1 FLAGS (\\Recent \\Flagged) RFC822.SIZE "),
        "{r}"
    );
    assert!(
        r.contains("* 3 FETCH (UID 3 FLAGS (\\Recent \\Seen)"),
        "{r}"
    );
    let msg1 = message("one", 10);
    let r = c.cmd("c3", "UID FETCH 1 (BODY.PEEK[] INTERNALDATE)").await;
    assert!(
        r.contains(&format!("BODY[] {{{}}}\r\n{msg1}", msg1.len())),
        "{r}"
    );
    assert!(!r.contains("\\Seen"), "PEEK must not set \\Seen: {r}");
    let r = c.cmd("c4", "FETCH 1 RFC822").await;
    assert!(r.contains("FLAGS (\\Recent \\Flagged \\Seen)"), "{r}");
    let r = c.cmd("c5", "FETCH 9 FLAGS").await;
    assert!(r.starts_with("c5 BAD"), "{r}");
    let r = c.cmd("c6", "UID FETCH 9:* FLAGS").await;
    assert!(r.contains("* 3 FETCH (UID 3 "), "{r}");

    let r = c.cmd("d1", "SEARCH UNSEEN").await;
    assert!(r.contains("* SEARCH 2\r\n"), "{r}");
    let r = c
        .cmd("d2", "UID SEARCH LARGER 1000 OR SEEN UNFLAGGED")
        .await;
    assert!(r.contains("* SEARCH 2\r\n"), "{r}");
    let r = c.cmd("d3", "SEARCH RETURN (MIN MAX COUNT) ALL").await;
    assert!(
        r.contains("* ESEARCH (TAG \"d3\") MIN 1 MAX 3 COUNT 3"),
        "{r}"
    );
    let r = c.cmd("d4", "SEARCH CHARSET KOI8-R ALL").await;
    assert!(r.starts_with("d4 NO [BADCHARSET"), "{r}");

    let r = c.cmd("e1", "STORE 2 +FLAGS (\\Deleted $Work)").await;
    assert!(
        r.contains("* 2 FETCH (FLAGS (\\Recent \\Deleted $Work))"),
        "{r}"
    );
    let r = c.cmd("e2", "STORE 1 -FLAGS.SILENT (\\Flagged)").await;
    assert!(!r.contains("FETCH"), "{r}");
    let r = c.cmd("e3", "FETCH 1 (FLAGS MODSEQ)").await;
    // The first CONDSTORE-enabling command reports HIGHESTMODSEQ (RFC 7162 3.1).
    assert!(
        r.starts_with("* OK [HIGHESTMODSEQ ") && r.contains("* 1 FETCH"),
        "{r}"
    );
    let again = c.cmd("e3b", "FETCH 1 (MODSEQ)").await;
    assert!(!again.contains("HIGHESTMODSEQ"), "only once: {again}");
    let modseq: u64 = r
        .split("MODSEQ (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{r}"));
    let r = c
        .cmd(
            "e4",
            &format!("STORE 1,3 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Answered)"),
        )
        .await;
    assert!(
        r.contains("* 1 FETCH (FLAGS (\\Recent \\Answered \\Seen) MODSEQ ("),
        "{r}"
    );
    assert!(
        r.contains("e4 OK [MODIFIED 3]") || r.contains("e4 OK"),
        "{r}"
    );
    let r = c
        .cmd("e5", "UID STORE 1 (UNCHANGEDSINCE 1) FLAGS (\\Seen)")
        .await;
    assert!(r.contains("e5 OK [MODIFIED 1]"), "{r}");

    let r = c.cmd("f1", "COPY 1:2 Projects").await;
    assert!(r.contains("f1 OK [COPYUID "), "{r}");
    assert!(r.contains(" 1,2 1,2]"), "{r}");
    let r = c.cmd("f2", "UID MOVE 3 Archive").await;
    assert!(r.contains("* OK [COPYUID "), "{r}");
    assert!(r.contains("* 3 EXPUNGE"), "{r}");
    let r = c.cmd("f3", "COPY 1 Nowhere").await;
    assert!(r.starts_with("f3 NO [TRYCREATE]"), "{r}");
    let r = c.cmd("f4", "EXPUNGE").await;
    assert!(r.contains("* 2 EXPUNGE"), "{r}");
    let r = c.cmd("f5", "FETCH 1:* UID").await;
    assert!(
        r.contains("* 1 FETCH (UID 1)") && !r.contains("* 2 FETCH"),
        "{r}"
    );
    let r = c.cmd("f6", "STATUS Projects (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 2)"), "{r}");

    let r = c.cmd("g1", "EXAMINE Projects").await;
    assert!(r.contains("g1 OK [READ-ONLY]"), "{r}");
    let r = c.cmd("g2", "STORE 1 +FLAGS (\\Seen)").await;
    assert!(r.starts_with("g2 NO [READ-ONLY]"), "{r}");
    let r = c.cmd("g3", "UNSELECT").await;
    assert!(r.starts_with("g3 OK"), "{r}");
    let r = c.cmd("g4", "DELETE Projects").await;
    assert!(r.starts_with("g4 NO [HASCHILDREN]"), "{r}");
    let r = c.cmd("g5", "DELETE INBOX").await;
    assert!(r.starts_with("g5 NO"), "{r}");
    let r = c.cmd("g6", "GETQUOTAROOT INBOX").await;
    assert!(r.contains("* QUOTAROOT \"INBOX\" \"\""), "{r}");
    assert!(r.contains("* QUOTA \"\" (STORAGE "), "{r}");
    let r = c.cmd("g7", "NAMESPACE").await;
    assert!(
        r.contains("* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL"),
        "{r}"
    );
    let r = c.cmd("g8", "CREATE \"Other Users/x\"").await;
    assert!(r.starts_with("g8 NO"), "{r}");

    // One MailboxAccess audit record per action, as the IMAP protocol. The sink
    // writes on its own task: give it a moment to catch up.
    let mut audit = Vec::new();
    for _ in 0..50 {
        audit = f.captured.audit.lock().unwrap().clone();
        if audit
            .iter()
            .any(|e| e["action"] == "read" && e["folder_path"] == "Projects")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let actions: Vec<(String, String)> = audit
        .iter()
        .filter(|e| e["log_type"] == "mailbox_access")
        .map(|e| {
            assert_eq!(e["protocol"], "IMAP", "{e}");
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["folder_path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("create", "Projects/2026"),
        ("create", "INBOX"),
        ("read", "INBOX"),
        ("update_read_state", "INBOX"),
        ("copy", "INBOX"),
        ("copy_to", "Projects"),
        ("move", "INBOX"),
        ("move_to", "Archive"),
        ("delete", "INBOX"),
    ] {
        assert!(
            actions.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn an_idle_client_is_logged_out_with_bye() {
    let f = fixture_with(crate::config::Limits {
        idle_timeout_secs: 1,
        ..Default::default()
    })
    .await;
    let mut c = imaps(&f, Some("alice")).await;
    let started = std::time::Instant::now();
    let r = c.line().await;
    assert!(r.starts_with("* BYE Autologout"), "{r}");
    assert_eq!(c.line().await, "<EOF>");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Issue 20.4 and 20.5, on the plaintext port before STARTTLS: a 40 MB literal
/// cannot be pushed before login, and a client dribbling a command one byte at a
/// time is cut off at the login timeout, though each byte resets the idle timer.
#[tokio::test]
async fn before_login_big_literals_and_dribbled_commands_are_cut_off() {
    let f = fixture_with(crate::config::Limits {
        login_timeout_secs: 1,
        ..crate::config::Limits::default()
    })
    .await;
    let plain = || async {
        let tcp = TcpStream::connect(("127.0.0.1", f.imap)).await.unwrap();
        let mut c = Client {
            io: BufReader::new(tcp),
        };
        assert!(c.line().await.starts_with("* OK"));
        c
    };
    let mut c = plain().await;
    c.send("a LOGIN {41943040+}\r\n").await;
    c.io.get_mut().write_all(&vec![b'x'; 64 * 1024]).await.ok();
    let r = c.line().await;
    assert!(r.starts_with("* BAD Command too long before login"), "{r}");
    assert!(c.line().await.starts_with("* BYE"));
    let mut c = plain().await;
    let started = std::time::Instant::now();
    for b in b"b NOO".iter() {
        c.io.get_mut().write_all(&[*b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = c.line().await;
    assert!(r.starts_with("* BYE Autologout"), "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // A whole command in time is fine, again and again.
    let mut c = plain().await;
    for i in 0..3 {
        assert!(c.cmd(&format!("n{i}"), "NOOP").await.contains("OK"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn bad_input_gets_bad_or_no_and_the_connection_survives() {
    let f = fixture().await;
    let mut c = imaps(&f, None).await;
    let r = c.cmd("a", "SELECT INBOX").await;
    assert!(r.starts_with("a BAD"), "{r}");
    c.send("this is not imap\r\n").await;
    let r = c.line().await;
    assert!(r.starts_with("this BAD") || r.starts_with("* BAD"), "{r}");
    c.send("\r\n").await;
    let r = c.line().await;
    assert!(r.starts_with("* BAD"), "{r}");
    let r = c.cmd("b", "NOOP").await;
    assert!(r.starts_with("b OK"), "{r}");
    let r = c
        .cmd("L", &format!("LOGIN alice@acme.test {PASSWORD}"))
        .await;
    assert!(r.starts_with("L OK"), "{r}");
    let r = c.cmd("c", "FETCH 1 FLAGS").await;
    assert!(r.starts_with("c BAD"), "{r}");
    let r = c.cmd("d", "SELECT INBOX").await;
    assert!(r.contains("d OK"), "{r}");
    let r = c.cmd("e", "FETCH 1:*:* FLAGS").await;
    assert!(r.starts_with("e BAD"), "{r}");
    let r = c.cmd("e2", "FETCH 1 FLAGS").await;
    assert!(r.starts_with("e2 BAD"), "empty mailbox: {r}");
    let r = c.cmd("f", "CREATE \"a//b\"").await;
    assert!(r.starts_with("f NO"), "{r}");
    // Non-canonical modified UTF-7 (`a` spelled `&AGE-`) is refused, not folded.
    let r = c.cmd("f1", "CREATE \"&AGE-\"").await;
    assert!(r.starts_with("f1 NO") || r.starts_with("f1 BAD"), "{r}");
    let r = c.cmd("f1b", "LIST \"\" a").await;
    assert!(!r.contains("* LIST"), "{r}");
    let r = c.cmd("f2", "SELECT \"No/Such\"").await;
    assert!(r.starts_with("f2 NO [NONEXISTENT]"), "{r}");
    // A synchronizing literal over the limit is refused before it is sent.
    c.send(&format!("g APPEND INBOX {{{}}}\r\n", LIMIT + 1))
        .await;
    let r = c.line().await;
    assert!(r.starts_with("g NO [TOOBIG]"), "{r}");
    // A non-synchronizing one is read and dropped.
    let big = "y".repeat(LIMIT as usize + 10);
    c.send(&format!("h APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()))
        .await;
    let r = c.until("h").await;
    assert!(r.starts_with("h NO [TOOBIG]"), "{r}");
    // An unbalanced literal: the announced bytes are taken as the literal.
    c.send("i LOGIN {3}\r\n").await;
    assert!(c.line().await.starts_with("+ "));
    c.send("abc\r\n").await;
    let r = c.until("i").await;
    assert!(r.starts_with("i BAD"), "{r}");
    let r = c.cmd("j", "NOOP").await;
    assert!(r.starts_with("j OK"), "{r}");
    let r = c.cmd("k", "THREAD REFERENCES UTF-8 ALL").await;
    assert!(r.starts_with("k BAD"), "{r}");
    let r = c.cmd("l", "NOOP").await;
    assert!(r.starts_with("l OK"), "{r}");
}

/// A message expunged between FETCH's listing and its body read (here its body
/// row is removed behind the store's back, which is the state that race leaves)
/// gets `NO [EXPUNGEISSUED]` (RFC 5530), not an internal error; the session goes on.
#[tokio::test]
async fn a_body_gone_during_fetch_is_expungeissued() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("alice")).await;
    for (tag, text) in [("p", "first"), ("q", "second")] {
        let r = append(&mut c, tag, "INBOX", "", &message(text, 10)).await;
        assert!(r.contains(&format!("{tag} OK")), "{r}");
    }
    assert!(c.cmd("s", "SELECT INBOX").await.contains("* 2 EXISTS"));
    let raw = rusqlite::Connection::open(f._dir.path().join("store.sqlite")).unwrap();
    raw.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    raw.execute(
        "DELETE FROM bodies WHERE id = (SELECT body_id FROM messages WHERE uid = 1)",
        [],
    )
    .unwrap();
    let r = c.cmd("f", "FETCH 1:2 (BODY.PEEK[])").await;
    assert!(
        r.contains("* 2 FETCH (BODY[] {"),
        "the other message is sent: {r}"
    );
    assert!(!r.contains("* 1 FETCH"), "{r}");
    assert!(r.contains("f NO [EXPUNGEISSUED]"), "{r}");
    assert!(c.cmd("n", "NOOP").await.contains("n OK"));
}

#[tokio::test]
async fn new_keywords_are_announced_in_flags_before_use() {
    let f = fixture().await;
    let mut a = imaps(&f, Some("alice")).await;
    let mut b = imaps(&f, Some("alice")).await;
    let r = append(&mut a, "p", "INBOX", "", &message("first", 10)).await;
    assert!(r.starts_with("p OK"), "{r}");
    let r = a.cmd("s", "SELECT INBOX").await;
    assert!(
        r.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"),
        "{r}"
    );
    assert!(b.cmd("s", "SELECT INBOX").await.contains("s OK"));
    // A STORE that creates a keyword sends FLAGS and PERMANENTFLAGS first.
    let r = a.cmd("t", "STORE 1 +FLAGS ($Work)").await;
    let flags = r.find("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n");
    let permanent =
        r.find("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)]");
    let fetch = r.find("* 1 FETCH (FLAGS (\\Recent $Work))");
    assert!(
        flags < permanent && permanent < fetch && flags.is_some(),
        "{r}"
    );
    let r = a.cmd("u", "STORE 1 -FLAGS ($Work)").await;
    assert!(!r.contains("* FLAGS"), "already known: {r}");
    // Another session learns a keyword with the change, before the FETCH ($Work
    // came and went before it looked, so it never hears of it).
    assert!(a.cmd("v", "STORE 1 +FLAGS ($Home)").await.contains("v OK"));
    let r = b.cmd("n", "NOOP").await;
    let flags = r.find("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Home)");
    assert!(flags.is_some() && flags < r.find("* 1 FETCH"), "{r}");
    // A new SELECT lists the keywords in use.
    let r = b.cmd("w", "EXAMINE INBOX").await;
    assert!(
        r.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Home)\r\n"),
        "{r}"
    );
    assert!(r.contains("* OK [PERMANENTFLAGS ()]"), "read-only: {r}");
}

#[tokio::test]
async fn idle_pushes_another_sessions_append_and_flag_changes() {
    let f = fixture().await;
    let mut a = imaps(&f, Some("alice")).await;
    let mut b = imaps(&f, Some("alice")).await;
    let r = append(&mut b, "p", "INBOX", "", &message("first", 10)).await;
    assert!(r.starts_with("p OK"), "{r}");
    assert!(a.cmd("s", "SELECT INBOX").await.contains("* 1 EXISTS"));
    a.send("i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling\r\n");
    let started = std::time::Instant::now();
    let r = append(&mut b, "q", "INBOX", "", &message("second", 10)).await;
    assert!(r.starts_with("q OK"), "{r}");
    assert_eq!(a.line().await, "* 2 EXISTS\r\n");
    assert_eq!(a.line().await, "* 2 RECENT\r\n", "a, idling, saw it first");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(b.cmd("r", "SELECT INBOX").await.contains("r OK"));
    assert!(
        b.cmd("t", "STORE 1 +FLAGS (\\Deleted)")
            .await
            .contains("t OK")
    );
    assert_eq!(
        a.line().await,
        "* 1 FETCH (UID 1 FLAGS (\\Recent \\Deleted))\r\n"
    );
    assert!(b.cmd("u", "EXPUNGE").await.contains("* 1 EXPUNGE"));
    assert_eq!(a.line().await, "* 1 EXPUNGE\r\n");
    a.send("DONE\r\n").await;
    let r = a.until("i").await;
    assert!(r.starts_with("i OK"), "{r}");
    // A FETCH by sequence number must not see the expunge of another session yet.
    assert!(
        b.cmd("v", "STORE 1 +FLAGS (\\Deleted)")
            .await
            .contains("v OK")
    );
    assert!(b.cmd("w", "EXPUNGE").await.contains("w OK"));
    let r = a.cmd("x", "FETCH 1 FLAGS").await;
    assert!(!r.contains("EXPUNGE"), "{r}");
    let r = a.cmd("y", "NOOP").await;
    assert!(r.contains("* 1 EXPUNGE"), "{r}");
}

/// A delivery (the store call SMTP's local delivery makes) reaches a client in
/// IDLE within 100 ms, timed from the start of the delivery (its commit and fsync
/// included): the median of three must be under 100 ms, each under a second so
/// that one scheduling hiccup on a busy test machine does not fail the test.
#[tokio::test]
async fn idle_pushes_a_delivery_within_100_ms() {
    use crate::store::{FolderKind, FolderRef, Target};
    let f = fixture().await;
    let mut a = imaps(&f, Some("alice")).await;
    assert!(a.cmd("s", "SELECT INBOX").await.contains("* 0 EXISTS"));
    a.send("i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling\r\n");
    let mut took = Vec::new();
    for n in 1..=3 {
        let target = Target {
            folder: FolderRef::Kind(f.ids.0.clone(), FolderKind::Inbox),
            flags: vec![],
            properties: Vec::new(),
        };
        let body: Arc<[u8]> = Arc::from(&b"Subject: pushed\r\n\r\nbody\r\n"[..]);
        let started = std::time::Instant::now();
        let stored = f.store.deliver(body, 0, vec![target]).await.unwrap();
        assert!(stored[0].is_ok());
        assert_eq!(a.line().await, format!("* {n} EXISTS\r\n"));
        took.push(started.elapsed());
        assert!(a.line().await.ends_with(" RECENT\r\n"));
    }
    took.sort();
    assert!(took[1] < Duration::from_millis(100), "{took:?}");
    assert!(took[2] < Duration::from_secs(1), "{took:?}");
    a.send("DONE\r\n").await;
    assert!(a.until("i").await.starts_with("i OK"));
}

/// The number after `key` in a response (`UIDVALIDITY 7]`, `HIGHESTMODSEQ 9)`).
fn number_after(r: &str, key: &str) -> u64 {
    let digits: String = r
        .split(key)
        .nth(1)
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Bob's session with `n` messages appended to INBOX, QRESYNC enabled and
/// INBOX selected; its UIDVALIDITY and HIGHESTMODSEQ.
async fn qresync_session(f: &Fixture, n: usize) -> (Tls, u64, u64) {
    let mut c = imaps(f, Some("bob")).await;
    for i in 0..n {
        let r = append(&mut c, "a", "INBOX", "", &message(&format!("m{i}"), 10)).await;
        assert!(r.starts_with("a OK"), "{r}");
    }
    assert!(
        c.cmd("e", "ENABLE QRESYNC")
            .await
            .contains("* ENABLED QRESYNC")
    );
    let r = c.cmd("s", "SELECT INBOX").await;
    let (uv, hm) = (
        number_after(&r, "UIDVALIDITY "),
        number_after(&r, "HIGHESTMODSEQ "),
    );
    (c, uv, hm)
}

#[tokio::test]
async fn qresync_reports_vanished_and_changes() {
    let f = fixture().await;
    let (mut c, uv, hm) = qresync_session(&f, 3).await;
    assert!(
        c.cmd("t", "UID STORE 2 +FLAGS (\\Deleted)")
            .await
            .contains("MODSEQ")
    );
    let r = c.cmd("x", "UID EXPUNGE 2").await;
    assert!(r.contains("* VANISHED 2"), "{r}");
    assert!(
        c.cmd("t2", "UID STORE 3 +FLAGS (\\Seen)")
            .await
            .contains("t2 OK")
    );
    let r = c
        .cmd("s2", &format!("SELECT INBOX (QRESYNC ({uv} {hm}))"))
        .await;
    assert!(r.contains("* OK [CLOSED]"), "{r}");
    assert!(r.contains("* VANISHED (EARLIER) 2"), "{r}");
    assert!(r.contains("FETCH (UID 3 FLAGS (\\Seen) MODSEQ"), "{r}");
    let r = c
        .cmd(
            "f",
            &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hm} VANISHED)"),
        )
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 2"), "{r}");
    assert!(r.contains("UID 3 FLAGS (\\Seen) MODSEQ"), "{r}");
    assert!(!r.contains("UID 1 "), "{r}");
}

/// QRESYNC from a MODSEQ older than what the store kept of its expunge records
/// (`store::housekeeping` pruned them): VANISHED (EARLIER) names every UID the
/// client may know that is gone, an expunge older than its MODSEQ too (RFC 7162
/// allows it), never fewer; a session selected meanwhile reloads its view.
#[tokio::test]
async fn qresync_after_the_feed_was_pruned_names_every_absent_uid() {
    let f = fixture().await;
    let (mut c, uv, _) = qresync_session(&f, 4).await;
    assert!(
        c.cmd("dx1", "UID STORE 1 +FLAGS.SILENT (\\Deleted)")
            .await
            .contains("OK")
    );
    assert!(c.cmd("x1", "UID EXPUNGE 1").await.contains("* VANISHED 1"));
    let hm = number_after(
        &c.cmd("n", "STATUS INBOX (HIGHESTMODSEQ)").await,
        "HIGHESTMODSEQ ",
    );
    // A second session, selected now, sees UIDs 3 and 4 go while the feed
    // is pruned past its cursor.
    let mut other = imaps(&f, Some("bob")).await;
    assert!(other.cmd("o", "SELECT INBOX").await.contains("* 3 EXISTS"));
    assert!(
        c.cmd("dx2", "UID STORE 3 +FLAGS.SILENT (\\Deleted)")
            .await
            .contains("OK")
    );
    assert!(c.cmd("x2", "UID EXPUNGE 3").await.contains("* VANISHED 3"));
    assert!(
        c.cmd("dx3", "UID STORE 4 +FLAGS.SILENT (\\Deleted)")
            .await
            .contains("OK")
    );
    assert!(c.cmd("x3", "UID EXPUNGE 4").await.contains("* VANISHED 4"));
    let bob = f.ids.1.clone();
    let later = crate::clock::now_ms() + 3_600_000;
    assert!(f.backend.prune_feed(&bob, later, 1, 1000).await.unwrap() > 0);

    let r = other.cmd("o2", "NOOP").await;
    assert_eq!(
        r.matches("* 2 EXPUNGE").count(),
        2,
        "the reloaded view announces UIDs 3 and 4: {r}"
    );
    assert!(r.contains("o2 OK"), "{r}");

    let r = c
        .cmd("s2", &format!("SELECT INBOX (QRESYNC ({uv} {hm}))"))
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 1,3:4"), "{r}");
    assert!(r.contains("s2 OK"), "{r}");
    let r = c
        .cmd(
            "f",
            &format!("UID FETCH 2:* (FLAGS) (CHANGEDSINCE {hm} VANISHED)"),
        )
        .await;
    assert!(r.contains("* VANISHED (EARLIER) 3:4"), "{r}");
    // Known UIDs bound the answer as they do when the records are whole.
    let r = c
        .cmd("s3", &format!("SELECT INBOX (QRESYNC ({uv} {hm} 4))"))
        .await;
    assert!(r.lines().any(|l| l == "* VANISHED (EARLIER) 4"), "{r}");
}

fn deny_imap_loopback() -> AccessControlRuleInput {
    serde_json::from_value(serde_json::json!({
        "Name": "no-imap", "Effect": "DENY", "Description": "", "IpRanges": ["127.0.0.0/8"], "Actions": ["IMAP"]
    }))
    .unwrap()
}

#[tokio::test]
async fn a_deny_rule_fails_login_like_a_bad_password_and_ends_live_sessions() {
    let f = fixture().await;
    let mut live = imaps(&f, Some("alice")).await;
    assert!(live.cmd("n", "NOOP").await.starts_with("n OK"));
    let (access, org) = (f.access.clone(), f.org.clone());
    tokio::task::spawn_blocking(move || {
        access
            .put_access_control_rule(&org, deny_imap_loopback(), 2)
            .unwrap()
    })
    .await
    .unwrap();
    let r = live.cmd("m", "NOOP").await;
    assert!(r.starts_with("* BYE"), "{r}");
    let mut fresh = imaps(&f, None).await;
    let r = fresh
        .cmd("L", &format!("LOGIN alice@acme.test {PASSWORD}"))
        .await;
    assert!(r.starts_with("L NO [AUTHENTICATIONFAILED]"), "{r}");
}

/// Issue 20.3: a session idling when its access is revoked gets its BYE before any
/// change, not the change (it used to get `* N EXISTS` for up to 30 s).
#[tokio::test]
async fn a_revoked_idle_session_sees_no_more_mail() {
    use crate::store::{FolderKind, FolderRef, Target};
    let f = fixture().await;
    let mut idling = imaps(&f, Some("alice")).await;
    assert!(idling.cmd("s", "SELECT INBOX").await.contains("* 0 EXISTS"));
    idling.send("i IDLE\r\n").await;
    assert_eq!(idling.line().await, "+ idling\r\n");
    let (access, org) = (f.access.clone(), f.org.clone());
    tokio::task::spawn_blocking(move || {
        access
            .put_access_control_rule(&org, deny_imap_loopback(), 2)
            .unwrap()
    })
    .await
    .unwrap();
    let target = Target {
        folder: FolderRef::Kind(f.ids.0.clone(), FolderKind::Inbox),
        flags: vec![],
        properties: Vec::new(),
    };
    let body: Arc<[u8]> = Arc::from(&b"Subject: secret\r\n\r\nbody\r\n"[..]);
    let stored = f.store.deliver(body, 0, vec![target]).await.unwrap();
    assert!(stored[0].is_ok());
    let r = tokio::time::timeout(Duration::from_secs(5), idling.line())
        .await
        .expect("the BYE comes with the change, not 30 s later");
    assert!(r.starts_with("* BYE Access revoked"), "{r}");
}

/// Issue 20.11: a SEARCH OR-ing 30 subjects (deeper than imap-codec's limit of 9)
/// is answered, and right.
#[tokio::test]
async fn a_search_with_a_long_or_chain_is_answered() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("alice")).await;
    for i in 0..4 {
        let r = append(&mut c, "a", "INBOX", "", &message(&format!("s{i}"), 10)).await;
        assert!(r.starts_with("a OK"), "{r}");
    }
    assert!(c.cmd("s", "SELECT INBOX").await.contains("s OK"));
    let mut keys = String::new();
    for i in 0..29 {
        keys.push_str(&format!("OR SUBJECT nothing{i} "));
    }
    keys.push_str("SUBJECT s2");
    let r = c.cmd("q", &format!("SEARCH OR SUBJECT s0 {keys}")).await;
    assert!(r.contains("* SEARCH 1 3\r\n") && r.contains("q OK"), "{r}");
}

#[tokio::test]
async fn fetch_structure_sections_binary_and_text_search() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("alice")).await;
    let msg = "From: Alice <alice@acme.test>\r\nTo: bob@acme.test\r\nSubject: Quarterly report\r\nDate: Tue, 24 Nov 2026 01:02:03 +0000\r\nMessage-ID: <q@acme.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nNumbers are caf=C3=A9 good\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b1--\r\n";
    let r = append(&mut c, "a", "INBOX", "", msg).await;
    assert!(r.starts_with("a OK"), "{r}");
    assert!(c.cmd("s", "SELECT INBOX").await.contains("s OK"));
    let r = c.cmd("f1", "FETCH 1 (ENVELOPE BODYSTRUCTURE)").await;
    assert!(r.contains("ENVELOPE (\"Tue, 24 Nov 2026 01:02:03 +0000\" \"Quarterly report\" ((\"Alice\" NIL \"alice\" \"acme.test\"))"), "{r}");
    let upper = r.to_ascii_uppercase();
    assert!(upper.contains("BODYSTRUCTURE ((\"TEXT\" \"PLAIN\""), "{r}");
    assert!(upper.contains("\"MIXED\" (\"BOUNDARY\" \"B1\")"), "{r}");
    let r = c
        .cmd("f2", "FETCH 1 (BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (Subject)] BINARY.PEEK[1] BINARY.SIZE[2])")
        .await;
    assert!(
        r.contains("BODY[1] {26}\r\nNumbers are caf=C3=A9 good"),
        "{r}"
    );
    assert!(
        r.contains("BODY[HEADER.FIELDS (Subject)] {29}\r\nSubject: Quarterly report\r\n\r\n"),
        "{r}"
    );
    assert!(
        r.contains("BINARY[1] {22}\r\nNumbers are caf\u{e9} good"),
        "{r}"
    );
    assert!(r.contains("BINARY.SIZE[2] 3"), "{r}");
    let r = c.cmd("f3", "FETCH 1 BINARY.PEEK[2]").await;
    assert!(r.contains("BINARY[2] ~{3}\r\n"), "{r}");
    let r = c.cmd("f4", "FETCH 1 (BODY[TEXT]<0.7>)").await;
    assert!(r.contains("BODY[TEXT]<0> {7}\r\n--b1\r\nC"), "{r}");
    assert!(r.contains("\\Seen"), "non-PEEK sets \\Seen: {r}");
    let r = c.cmd("g1", "SEARCH SUBJECT quarterly").await;
    assert!(r.contains("* SEARCH 1\r\n"), "{r}");
    let r = c.cmd("g2", "SEARCH CHARSET UTF-8 BODY {5+}\r\ncafé").await;
    assert!(r.contains("* SEARCH 1\r\n"), "{r}");
    let r = c.cmd("g3", "SEARCH TEXT nowhere-to-be-found").await;
    assert!(r.contains("* SEARCH\r\n"), "{r}");
    let r = c.cmd("g4", "SEARCH SENTON 24-Nov-2026 FROM alice").await;
    assert!(r.contains("* SEARCH 1\r\n"), "{r}");
    let r = c.cmd("g5", "SEARCH HEADER Message-ID <q@acme.test>").await;
    assert!(r.contains("* SEARCH 1\r\n"), "{r}");
}

#[tokio::test]
async fn non_ascii_folder_names_in_modified_utf7_and_utf8() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("bob")).await;
    let r = c.cmd("a", "CREATE Entw&APw-rfe").await;
    assert!(r.starts_with("a OK"), "{r}");
    let r = c.cmd("b", "LIST \"\" Entw*").await;
    assert!(r.contains("\"/\" \"Entw&APw-rfe\""), "{r}");
    assert!(
        c.cmd("c", "ENABLE UTF8=ACCEPT")
            .await
            .contains("* ENABLED UTF8=ACCEPT")
    );
    let r = c.cmd("d", "LIST \"\" Entw*").await;
    assert!(r.contains("\"/\" {9}\r\nEntw\u{fc}rfe"), "{r}");
    let r = c.cmd("e", "RENAME \"Entw\u{fc}rfe\" Old").await;
    assert!(r.starts_with("e OK"), "{r}");
    let r = c.cmd("g", "SUBSCRIBE Old").await;
    assert!(r.starts_with("g OK"), "{r}");
    let r = c.cmd("h", "LSUB \"\" Old").await;
    assert!(r.contains("* LSUB ("), "{r}");
    let r = c.cmd("i", "LIST (SUBSCRIBED) \"\" \"Old\"").await;
    assert!(r.contains("\\Subscribed"), "{r}");
}

#[tokio::test]
async fn full_access_shows_the_owners_mailbox_under_other_users() {
    let f = fixture().await;
    // Bob's mailbox exists once he has logged in (or received mail).
    let mut bob = imaps(&f, Some("bob")).await;
    let r = append(&mut bob, "a", "INBOX", "", &message("for-bob", 10)).await;
    assert!(r.starts_with("a OK"), "{r}");
    let mut c = imaps(&f, Some("alice")).await;
    let r = c
        .cmd("b", "SELECT \"Other Users/bob@acme.test/INBOX\"")
        .await;
    assert!(r.starts_with("b NO [NONEXISTENT]"), "no grant yet: {r}");
    let (d, org, owner, grantee) = (
        f.directory.clone(),
        f.org.clone(),
        f.ids.1.clone(),
        f.ids.0.clone(),
    );
    tokio::task::spawn_blocking(move || {
        d.put_mailbox_permissions(
            &org,
            &owner,
            &grantee,
            &[crate::directory::Permission::FullAccess],
        )
        .unwrap()
    })
    .await
    .unwrap();
    let r = c.cmd("c", "LIST \"\" \"*\"").await;
    assert!(
        r.contains("* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users\""),
        "{r}"
    );
    assert!(
        r.contains("\"/\" \"Other Users/bob@acme.test/INBOX\""),
        "{r}"
    );
    let r = c.cmd("d", "LIST \"\" \"Other Users/%\"").await;
    assert!(
        r.contains("\"Other Users/bob@acme.test\"") && !r.contains("INBOX"),
        "{r}"
    );
    let r = c
        .cmd("e", "SELECT \"Other Users/bob@acme.test/INBOX\"")
        .await;
    assert!(r.contains("* 1 EXISTS") && r.contains("e OK"), "{r}");
    let r = c
        .cmd("f", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        .await;
    assert!(r.contains("Subject: for-bob"), "{r}");
    let r = c.cmd("g", "COPY 1 INBOX").await;
    assert!(r.contains("g OK [COPYUID"), "{r}");
    let r = c
        .cmd("h", "DELETE \"Other Users/bob@acme.test/INBOX\"")
        .await;
    assert!(r.starts_with("h NO"), "{r}");
    let r = c.cmd("i", "STATUS INBOX (MESSAGES)").await;
    assert!(r.contains("(MESSAGES 1)"), "{r}");
    // Revoking the grant ends a session that has the shared folder selected.
    let (d, org, owner, grantee) = (
        f.directory.clone(),
        f.org.clone(),
        f.ids.1.clone(),
        f.ids.0.clone(),
    );
    tokio::task::spawn_blocking(move || {
        d.put_mailbox_permissions(&org, &owner, &grantee, &[])
            .unwrap()
    })
    .await
    .unwrap();
    let r = c.cmd("j", "NOOP").await;
    assert!(r.starts_with("* BYE [NOPERM]"), "{r}");
}

#[tokio::test]
async fn compress_deflate_carries_the_rest_of_the_session() {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    use tokio::io::AsyncReadExt;
    let f = fixture().await;
    let mut c = imaps(&f, Some("alice")).await;
    let r = c.cmd("z", "COMPRESS DEFLATE").await;
    assert!(r.starts_with("z OK"), "{r}");
    let mut io = c.io.into_inner();
    let mut comp = Compress::new(Compression::default(), false);
    let mut decomp = Decompress::new(false);
    let mut text = String::new();
    for (tag, line) in [
        ("a", "NOOP"),
        ("b", "SELECT INBOX"),
        ("c", "COMPRESS DEFLATE"),
    ] {
        let mut out = Vec::with_capacity(1024);
        comp.compress_vec(
            format!("{tag} {line}\r\n").as_bytes(),
            &mut out,
            FlushCompress::Sync,
        )
        .unwrap();
        io.write_all(&out).await.unwrap();
        io.flush().await.unwrap();
        let done = format!("{tag} ");
        while !text.lines().any(|l| l.starts_with(&done)) {
            let mut raw = vec![0; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), io.read(&mut raw))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "{text}");
            let mut plain = Vec::with_capacity(65536);
            decomp
                .decompress_vec(&raw[..n], &mut plain, FlushDecompress::Sync)
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&plain));
        }
    }
    assert!(text.contains("a OK"), "{text}");
    assert!(text.contains("b OK [READ-WRITE]"), "{text}");
    assert!(text.contains("c NO [COMPRESSIONACTIVE]"), "{text}");
}

#[tokio::test]
async fn a_large_fetch_streams_every_message() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("bob")).await;
    for i in 0..6 {
        let r = append(
            &mut c,
            "a",
            "INBOX",
            "",
            &message(&format!("big{i}"), 60_000),
        )
        .await;
        assert!(r.starts_with("a OK"), "{r}");
    }
    assert!(c.cmd("s", "SELECT INBOX").await.contains("* 6 EXISTS"));
    let r = c.cmd("f", "FETCH 1:* BODY.PEEK[]").await;
    assert_eq!(r.matches(" FETCH (BODY[] {").count(), 6);
    assert!(r.len() > 360_000 && r.ends_with("f OK FETCH completed\r\n"));
}

#[tokio::test]
async fn draining_says_bye_to_waiting_and_idling_sessions() {
    let f = fixture().await;
    let mut waiting = imaps(&f, Some("alice")).await;
    let mut idling = imaps(&f, Some("bob")).await;
    assert!(idling.cmd("s", "SELECT INBOX").await.contains("s OK"));
    idling.send("i IDLE\r\n").await;
    assert_eq!(idling.line().await, "+ idling\r\n");
    f.draining.cancel();
    let r = waiting.line().await;
    assert!(r.starts_with("* BYE [UNAVAILABLE]"), "{r}");
    let r = idling.line().await;
    assert!(r.starts_with("* BYE [UNAVAILABLE]"), "{r}");
}

mod multiappend;
mod searchres;

/// Subscriptions are to names (RFC 9051 6.3.7): CREATE does not subscribe,
/// DELETE does not unsubscribe, a name without a folder can be subscribed; LSUB
/// shows unsubscribed parents as \Noselect; LIST-EXTENDED's SUBSCRIBED shows
/// \NonExistent and RECURSIVEMATCH the CHILDINFO of parents (RFC 5258), as
/// imaptest's subscribe and listext groups expect.
#[tokio::test]
async fn subscriptions_are_to_names_and_list_extended_reports_them() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("bob")).await;
    for name in ["t/a", "t/b/c", "t/gone", "t/d/e", "t/d/f"] {
        let r = c.cmd("c", &format!("CREATE {name}")).await;
        assert!(r.starts_with("c OK"), "{name}: {r}");
    }
    let r = c.cmd("l0", "LSUB \"\" t/*").await;
    assert!(!r.contains("* LSUB"), "CREATE subscribed: {r}");
    for name in ["t/a", "t/b/c", "t/gone", "t/d/f", "t/never"] {
        let r = c.cmd("s", &format!("SUBSCRIBE {name}")).await;
        assert!(r.starts_with("s OK"), "{name}: {r}");
    }
    assert!(c.cmd("d", "DELETE t/gone").await.starts_with("d OK"));
    let r = c.cmd("l1", "LSUB \"\" t/%").await;
    assert!(r.contains("* LSUB (\\HasNoChildren) \"/\" \"t/a\""), "{r}");
    assert!(
        r.contains("* LSUB (\\Noselect \\HasChildren) \"/\" \"t/b\""),
        "{r}"
    );
    assert!(r.contains("* LSUB () \"/\" \"t/gone\""), "{r}");
    assert!(r.contains("* LSUB () \"/\" \"t/never\""), "{r}");
    assert!(!r.contains("t/b/c"), "{r}");
    let r = c.cmd("l2", "LIST (SUBSCRIBED) \"\" t/*").await;
    assert!(
        r.contains("(\\Subscribed \\NonExistent) \"/\" \"t/gone\""),
        "{r}"
    );
    assert!(r.contains("\\Subscribed) \"/\" \"t/b/c\""), "{r}");
    assert!(!r.contains("\"t/b\"") && !r.contains("\"t/d/e\""), "{r}");
    let r = c
        .cmd(
            "l3",
            "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" t/% RETURN (CHILDREN)",
        )
        .await;
    assert!(
        r.contains("* LIST (\\HasChildren) \"/\" \"t/b\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        "{r}"
    );
    assert!(r.contains("\"t/d\" (\"CHILDINFO\""), "{r}");
    assert!(r.contains("\\Subscribed) \"/\" \"t/a\"\r\n"), "{r}");
    // A parent whose subscribed children the pattern names itself: no CHILDINFO.
    let r = c
        .cmd("l4", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" t*d*")
        .await;
    assert!(!r.contains("CHILDINFO"), "{r}");
    assert!(r.contains("\"t/d/f\""), "{r}");
    let r = c
        .cmd("l5", "LIST \"\" t/% RETURN (CHILDREN SUBSCRIBED)")
        .await;
    assert!(r.contains("(\\HasChildren) \"/\" \"t/b\""), "{r}");
    assert!(
        r.contains("(\\HasNoChildren \\Subscribed) \"/\" \"t/a\""),
        "{r}"
    );
    assert!(
        !r.contains("t/gone"),
        "plain LIST shows existing folders only: {r}"
    );
    // Unsubscribing an absent name, and a name never subscribed.
    assert!(c.cmd("u", "UNSUBSCRIBE t/gone").await.starts_with("u OK"));
    assert!(c.cmd("u2", "UNSUBSCRIBE t/gone").await.starts_with("u2 NO"));
    // Re-creating a subscribed absent name keeps the subscription.
    assert!(c.cmd("c2", "CREATE t/never").await.starts_with("c2 OK"));
    let r = c.cmd("l6", "LIST (SUBSCRIBED) \"\" t/never").await;
    assert!(
        r.contains("(\\HasNoChildren \\Subscribed) \"/\" \"t/never\""),
        "{r}"
    );
    let r = c.cmd("l7", "LSUB \"\" t/%").await;
    assert_eq!(r.matches("t/never").count(), 1, "{r}");
}

/// SELECT tells a rev1 client RECENT and the first unseen message; EXAMINE
/// does not claim \Recent, STATUS counts it, a second SELECT sees none.
#[tokio::test]
async fn select_reports_recent_and_unseen_to_rev1_clients() {
    let f = fixture().await;
    let mut c = imaps(&f, Some("bob")).await;
    for (i, flags) in ["\\Seen", ""].iter().enumerate() {
        let r = append(&mut c, "a", "INBOX", flags, &message(&format!("r{i}"), 5)).await;
        assert!(r.starts_with("a OK"), "{r}");
    }
    let r = c.cmd("e", "EXAMINE INBOX").await;
    assert!(r.contains("* 2 RECENT\r\n"), "{r}");
    assert!(r.contains("* OK [UNSEEN 2]"), "{r}");
    let r = c.cmd("st", "STATUS INBOX (RECENT)").await;
    assert!(r.contains("(RECENT 2)"), "EXAMINE claims nothing: {r}");
    let r = c.cmd("s", "SELECT INBOX").await;
    assert!(r.contains("* 2 RECENT\r\n"), "{r}");
    let r = c.cmd("f", "FETCH 1 FLAGS").await;
    assert!(r.contains("FLAGS (\\Recent \\Seen)"), "{r}");
    let r = c.cmd("n", "SEARCH NEW").await;
    assert!(r.contains("* SEARCH 2\r\n"), "{r}");
    let mut other = imaps(&f, Some("bob")).await;
    let r = other.cmd("s", "SELECT INBOX").await;
    assert!(r.contains("* 0 RECENT\r\n"), "{r}");
    let r = other.cmd("f", "FETCH 1 FLAGS").await;
    assert!(r.contains("FLAGS (\\Seen)"), "{r}");
    // rev2 has neither.
    assert!(
        other
            .cmd("en", "ENABLE IMAP4rev2")
            .await
            .contains("ENABLED")
    );
    let r = other.cmd("s2", "SELECT INBOX").await;
    assert!(!r.contains("RECENT") && !r.contains("UNSEEN"), "{r}");
}

/// Behind a load balancer, access rules and the audit trail see the client the
/// PROXY header declares (v1 or v2, sent before the TLS ClientHello), not the
/// balancer's address.
#[tokio::test]
async fn access_rules_and_audit_see_the_client_a_proxy_header_declares() {
    let f = fixture().await;
    let rule: AccessControlRuleInput = serde_json::from_value(serde_json::json!({
        "Name": "no-imap-from-doc-net", "Effect": "DENY", "Description": "",
        "IpRanges": ["203.0.113.0/24"], "Actions": ["IMAP"]
    }))
    .unwrap();
    let (access, org) = (f.access.clone(), f.org.clone());
    tokio::task::spawn_blocking(move || access.put_access_control_rule(&org, rule, 2).unwrap())
        .await
        .unwrap();
    let v2_denied = [
        &b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"[..],
        &[203, 0, 113, 7, 10, 0, 0, 1, 0x9c, 0x40, 0x03, 0xe1],
    ]
    .concat();
    let login = async |header: &[u8]| {
        let mut tcp = TcpStream::connect(("127.0.0.1", f.imaps_lb)).await.unwrap();
        tcp.write_all(header).await.unwrap();
        let mut c = Client {
            io: BufReader::new(tls_upgrade(&f, tcp).await),
        };
        assert!(c.line().await.starts_with("* OK "));
        c.cmd("L", &format!("LOGIN alice@acme.test {PASSWORD}"))
            .await
    };
    let r = login(&v2_denied).await;
    assert!(r.starts_with("L NO [AUTHENTICATIONFAILED]"), "{r}");
    let r = login(b"PROXY TCP4 198.51.100.9 10.0.0.1 40001 993\r\n").await;
    assert!(r.starts_with("L OK"), "{r}");
    // The same rule does not touch the balancer's own address.
    imaps(&f, Some("alice")).await;

    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = f
            .captured
            .audit
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["log_type"] == "authentication")
            .map(|e| {
                (
                    e["source_ip"].as_str().unwrap_or("").to_string(),
                    e["auth_successful"].as_bool(),
                )
            })
            .collect::<Vec<_>>();
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen,
        [
            ("203.0.113.7".to_string(), Some(false)),
            ("198.51.100.9".to_string(), Some(true)),
            ("127.0.0.1".to_string(), Some(true)),
        ]
    );
}
