//! Connection plumbing against a real server: TLS modes (tests/pg.sh's server
//! speaks TLS with a CA named by `MAILGATE_TEST_POSTGRES_CA`) and cross-daemon
//! wake-ups (two stores on one database are two daemons).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::testing::{available, create_database};
use super::*;
use crate::store::{FolderKind, FolderRef};

/// The test server's CA file, or `None` (with a note) when it has no TLS.
fn test_ca() -> Option<String> {
    match std::env::var("MAILGATE_TEST_POSTGRES_CA") {
        Ok(ca) if !ca.is_empty() => Some(ca),
        _ => {
            eprintln!("note: MAILGATE_TEST_POSTGRES_CA not set; TLS test skipped");
            None
        }
    }
}

fn settings(url: &str) -> Settings {
    Settings {
        url: url.to_string(),
        pool_size: 4,
    }
}

/// Whether the pooled connection of `store` is encrypted (the server's view).
async fn encrypted(store: &PgStore) -> bool {
    let client = store.client().await.map_err(OpError::into_store).unwrap();
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// `url` (of the test server) reached by the name `host` at 127.0.0.1.
fn by_name(url: &str, host: &str) -> String {
    let url = url.replacen("@127.0.0.1:", &format!("@{host}:"), 1);
    format!("{url}?hostaddr=127.0.0.1")
}

#[tokio::test]
async fn verify_full_connects_over_tls_with_the_servers_ca() {
    let Some(ca) = test_ca().filter(|_| available()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let store = PgStore::open(&settings(&format!(
        "{url}?sslmode=verify-full&sslrootcert={ca}"
    )))
    .await
    .unwrap();
    store.create_mailbox("u", 1 << 20).await.unwrap();
    assert!(encrypted(&store).await, "verify-full must be TLS");
    // The default (prefer) takes TLS when offered; disable stays plain.
    let prefer = PgStore::open(&settings(&url)).await.unwrap();
    assert!(encrypted(&prefer).await, "prefer takes TLS when offered");
    let plain = PgStore::open(&settings(&format!("{url}?sslmode=disable")))
        .await
        .unwrap();
    assert!(!encrypted(&plain).await, "disable stays plain");
}

#[tokio::test]
async fn another_ca_is_refused_and_require_does_not_check() {
    let Some(_) = test_ca().filter(|_| available()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let other = crate::tls::generate_dev_cert(&dir.path().join("other"), "db.test").unwrap();
    let other = other.ca.display().to_string();
    for mode in ["verify-ca", "verify-full", "require"] {
        let refused = PgStore::open(&settings(&format!(
            "{url}?sslmode={mode}&sslrootcert={other}"
        )))
        .await;
        let e = refused
            .err()
            .expect("a foreign CA was accepted")
            .to_string();
        assert!(e.to_lowercase().contains("certificate"), "{mode}: {e}");
    }
    // require without a root file: encrypted, certificate unchecked (libpq).
    let store = PgStore::open(&settings(&format!("{url}?sslmode=require")))
        .await
        .unwrap();
    assert!(encrypted(&store).await);
}

#[tokio::test]
async fn verify_full_checks_the_name_and_verify_ca_does_not() {
    let Some(ca) = test_ca().filter(|_| available()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let wrong = by_name(&url, "db.wrong.test");
    let e = PgStore::open(&settings(&format!(
        "{wrong}&sslmode=verify-full&sslrootcert={ca}"
    )))
    .await
    .err()
    .expect("a certificate for another name was accepted")
    .to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    let store = PgStore::open(&settings(&format!(
        "{wrong}&sslmode=verify-ca&sslrootcert={ca}"
    )))
    .await
    .unwrap();
    assert!(encrypted(&store).await);
    // The name the certificate does carry passes verify-full.
    let right = by_name(&url, "localhost");
    PgStore::open(&settings(&format!(
        "{right}&sslmode=verify-full&sslrootcert={ca}"
    )))
    .await
    .unwrap();
}

/// A server that answers every TLS request "no" (as one without `ssl = on`
/// does): `require` refuses it, naming TLS.
#[tokio::test]
async fn require_refuses_a_server_without_tls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        socket.read_exact(&mut request).await.unwrap();
        // SSLRequest: length 8, code 80877103.
        assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47]);
        socket.write_all(b"N").await.unwrap();
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
        rest
    });
    let url = format!("postgres://mg@127.0.0.1:{port}/mail?sslmode=require");
    let e = PgStore::open(&settings(&url)).await.err().expect("refused");
    assert!(e.to_string().contains("TLS"), "{e}");
    let sent = server.await.unwrap();
    assert!(sent.is_empty(), "nothing may follow a refused TLS request");
}

/// A plain delivery into `mailbox`'s Inbox; returns the mailbox's latest change.
async fn deliver(store: &PgStore, mailbox: &str) -> i64 {
    let target = Target {
        folder: FolderRef::Kind(mailbox.into(), FolderKind::Inbox),
        flags: vec![],
        properties: vec![],
    };
    store
        .deliver(Arc::from(&b"Subject: x\r\n\r\nx\r\n"[..]), 0, vec![target])
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    store.latest_change(mailbox).await.unwrap()
}

/// Waits until `rx` reaches `seq`; how long it took, or `None` after `limit`.
async fn seen(rx: &mut watch::Receiver<i64>, seq: i64, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    tokio::time::timeout(limit, rx.wait_for(|v| *v >= seq))
        .await
        .ok()
        .map(|r| r.map(|_| start.elapsed()).unwrap())
}

/// Two daemons on one fresh database, each started as `store::open` starts it
/// (the second's safety poll a minute, so only NOTIFY wakes it in time), and
/// B's watcher of mailbox "u" once B's listener has seen a first delivery
/// through A (by a notification or its first re-read: either way, it listens).
async fn listening_daemons() -> (tempfile::TempDir, PgStore, PgStore, watch::Receiver<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let a = PgStore::open(&settings(&url)).await.unwrap();
    let b = PgStore::open(&settings(&url)).await.unwrap();
    a.start_notify(SAFETY_POLL);
    b.start_notify(Duration::from_secs(60));
    a.create_mailbox("u", 1 << 30).await.unwrap();
    let mut rx = b.watch("u");
    let seq = deliver(&a, "u").await;
    seen(&mut rx, seq, Duration::from_secs(5))
        .await
        .expect("listener up");
    (dir, a, b, rx)
}

/// B's watcher sees deliveries made through A within a second, by NOTIFY
/// (B's safety poll is a minute); prints the median wake-up time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_one_daemon_sees_another_daemons_delivery_within_a_second() {
    if !available() {
        return;
    }
    let (_dir, a, b, mut rx) = listening_daemons().await;
    let mut times = Vec::new();
    for _ in 0..20 {
        let seq = deliver(&a, "u").await;
        let took = seen(&mut rx, seq, Duration::from_secs(1))
            .await
            .expect("B saw A's delivery within a second");
        times.push(took);
    }
    times.sort();
    eprintln!(
        "cross-daemon wake-up after commit: median {:?}, max {:?} (20 deliveries)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    let m = b.backend_metrics().unwrap();
    assert!(m.notify_received >= 20, "{m:?}");
    assert!(a.backend_metrics().unwrap().notify_sent >= 1);
}

/// When B's LISTEN connection is killed, B reconnects, re-listens, tells its
/// subscribers that state changes may have been missed, and sees the next
/// delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_reconnects_and_still_wakes() {
    if !available() {
        return;
    }
    let (_dir, a, b, mut rx) = listening_daemons().await;
    let mut states = b.state_changes().unwrap();
    let killer = a.client().await.map_err(OpError::into_store).unwrap();
    let killed: i64 = killer
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&format!("mailgate listener {}", b.hub.daemon)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "B's listener found by its application_name");
    let missed = tokio::time::timeout(Duration::from_secs(5), states.recv())
        .await
        .expect("reconnected within 5 s")
        .unwrap();
    assert_eq!(missed, StateChange::Missed);
    assert!(b.backend_metrics().unwrap().listener_reconnects >= 1);
    let seq = deliver(&a, "u").await;
    seen(&mut rx, seq, Duration::from_secs(1))
        .await
        .expect("B saw the next delivery after re-listening");
}

/// A daemon that commits and dies before its NOTIFY (here: one whose notify
/// tasks never started) is covered by the safety poll of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_notify_is_covered_by_the_safety_poll() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let silent = PgStore::open(&settings(&url)).await.unwrap();
    let b = PgStore::open(&settings(&url)).await.unwrap();
    b.start_notify(Duration::from_millis(300));
    silent.create_mailbox("u", 1 << 30).await.unwrap();
    let mut rx = b.watch("u");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seq = deliver(&silent, "u").await;
    seen(&mut rx, seq, Duration::from_secs(2))
        .await
        .expect("the safety poll saw the delivery");
    assert_eq!(
        b.backend_metrics().unwrap().notify_received,
        0,
        "no notification was sent: the poll found it"
    );
}

/// A state change published by one daemon reaches the other's subscribers,
/// not its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_reach_the_other_daemons() {
    if !available() {
        return;
    }
    let (_dir, a, b, _rx) = listening_daemons().await;
    let mut on_a = a.state_changes().unwrap();
    let mut on_b = b.state_changes().unwrap();
    a.publish_state(StateChange::Access);
    a.publish_state(StateChange::Directory);
    let mut got = Vec::new();
    while got.len() < 2 {
        let change = tokio::time::timeout(Duration::from_secs(1), on_b.recv())
            .await
            .expect("B heard A's state changes within a second")
            .unwrap();
        got.push(change);
    }
    got.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(got, vec![StateChange::Access, StateChange::Directory]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        on_a.try_recv().is_err(),
        "a daemon is not told its own change"
    );
}

/// `check-config`'s look: a fresh database passes and is left unmigrated; a
/// newer schema, `synchronous_commit = off` and an unreachable server are each
/// refused naming the problem.
#[tokio::test]
async fn check_names_each_problem_and_migrates_nothing() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    check(&url).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let migrated: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!migrated, "check-config must not migrate");
    drop(PgStore::open(&settings(&url)).await.unwrap());
    check(&url).await.unwrap();
    client
        .batch_execute("UPDATE schema_version SET version = 999")
        .await
        .unwrap();
    let e = check(&url).await.unwrap_err();
    assert!(
        matches!(e, StoreError::SchemaTooNew { found: 999, .. }),
        "{e}"
    );
    client
        .batch_execute("UPDATE schema_version SET version = 1")
        .await
        .unwrap();
    let db = url.rsplit('/').next().unwrap();
    client
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" SET synchronous_commit = off"
        ))
        .await
        .unwrap();
    let e = check(&url).await.unwrap_err().to_string();
    assert!(e.contains("synchronous_commit"), "{e}");
    let e = check("postgres://mg:secret@127.0.0.1:1/none")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot connect") && e.contains("postgres://mg@127.0.0.1:1/none"),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
}

/// A PostgreSQL store's /metrics page shows its pool, retries, notify lag and
/// listener reconnects, read at scrape.
#[tokio::test]
async fn the_metrics_page_shows_pool_retries_and_notify_figures() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let store: Arc<dyn Backend> = Arc::new(
        PgStore::open(&Settings { url, pool_size: 2 })
            .await
            .unwrap(),
    );
    let metrics = crate::events::Metrics::new();
    crate::server::metrics_page::register_backend_metrics(&metrics, &store);
    store.create_mailbox("u", 1 << 20).await.unwrap();
    let page = metrics.render();
    for line in [
        "mailgate_postgres_pool_max 2\n",
        "mailgate_postgres_pool_open 1\n",
        "mailgate_postgres_pool_in_use 0\n",
        "mailgate_postgres_pool_waiting 0\n",
        "mailgate_postgres_write_retries_total 0\n",
        "mailgate_postgres_notify_max_lag_ms 0\n",
        "mailgate_postgres_notify_lag_ms_sum_total 0\n",
        "mailgate_postgres_listener_reconnects_total 0\n",
    ] {
        assert!(page.contains(line), "{line} missing from\n{page}");
    }
}

/// Dropping a store ends its listener: its connection leaves the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_store_closes_its_listener() {
    if !available() {
        return;
    }
    let (_dir, a, b, _rx) = listening_daemons().await;
    let name = format!("mailgate listener {}", b.hub.daemon);
    let client = a.client().await.map_err(OpError::into_store).unwrap();
    let listeners = || async {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0);
        n
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while listeners().await == 0 {
        assert!(Instant::now() < deadline, "the listener never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while listeners().await != 0 {
        assert!(Instant::now() < deadline, "the listener outlived its store");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SCRAM over TLS with channel binding required: the binding this backend
/// computes from the server's certificate is the one the server expects. The
/// test server trusts everyone, so a password role is let in by one line put
/// first in its pg_hba.conf (skipped with a note if that file is not writable).
#[tokio::test]
async fn scram_with_channel_binding_succeeds_over_tls() {
    let Some(ca) = test_ca().filter(|_| available()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let role = format!("mg_scram_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!(
            "SET password_encryption = 'scram-sha-256'; \
             CREATE ROLE {role} LOGIN SUPERUSER PASSWORD 'pw'"
        ))
        .await
        .unwrap();
    let hba: String = admin.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
    let Ok(old) = std::fs::read_to_string(&hba) else {
        eprintln!("note: {hba} not readable; channel binding test skipped");
        return;
    };
    let line = format!("hostssl all {role} 127.0.0.1/32 scram-sha-256\n");
    if std::fs::write(&hba, format!("{line}{old}")).is_err() {
        eprintln!("note: {hba} not writable; channel binding test skipped");
        return;
    }
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let with = |params: &str| url.replacen("postgres@", &format!("{role}:pw@"), 1) + "?" + params;
    let store = PgStore::open(&settings(&with(&format!(
        "sslmode=verify-full&sslrootcert={ca}&channel_binding=require"
    ))))
    .await
    .unwrap();
    assert!(encrypted(&store).await);
    // The role really needs its password (the hba line took effect).
    let e = PgStore::open(&settings(
        &with("sslmode=require").replacen(":pw@", ":wrong@", 1),
    ))
    .await
    .err()
    .expect("a wrong password was accepted");
    assert!(e.to_string().contains("password"), "{e}");
}
