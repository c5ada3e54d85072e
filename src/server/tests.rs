use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::provision::organization_alias;
use super::*;
use crate::config::{CertificatePair, ListenerConfig, TlsMode};

fn test_config(dir: &Path) -> Config {
    let mut cfg = Config::embedded();
    cfg.server.data_dir = dir.join("data");
    // The embedded default binds fixed ports (2525, 9993, 8443); tests enable what
    // they use.
    for name in [
        "smtp",
        "submission",
        "submissions",
        "imap",
        "imaps",
        "https",
    ] {
        if let Some(l) = cfg.listeners.get_mut(name).and_then(Option::as_mut) {
            l.enabled = false;
        }
    }
    cfg
}

fn enable(cfg: &mut Config, name: &str, port: u16, tls: TlsMode) {
    *cfg.listeners.get_mut(name).unwrap() = Some(ListenerConfig {
        enabled: true,
        address: "127.0.0.1".parse().unwrap(),
        port,
        tls,
        proxy_protocol: false,
        proxy_from: Vec::new(),
    });
}

#[tokio::test]
async fn binds_port_zero_writes_ports_json_and_serves() {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    enable(&mut cfg, "smtp", 0, TlsMode::Starttls);
    enable(&mut cfg, "imaps", 0, TlsMode::Implicit);
    let daemon = Daemon::start(cfg, None).await.unwrap();
    let json = std::fs::read_to_string(dir.path().join("data/run/ports.json")).unwrap();
    let ports: BTreeMap<String, u16> = serde_json::from_str(&json).unwrap();
    assert_eq!(ports.len(), 2);
    assert_eq!(ports["smtp"], daemon.ports["smtp"]);
    assert!(ports["imaps"] != 0 && ports["imaps"] != ports["smtp"]);
    assert!(
        dir.path().join("data/tls/ca.pem").exists(),
        "dev CA generated on first start"
    );

    let orgs = daemon.directory.list_organizations();
    assert_eq!(orgs.len(), 1, "first start creates one organization");
    assert!(crate::directory::ids::is_org_id(&orgs[0].id));

    let mut c = BufReader::new(
        TcpStream::connect(("127.0.0.1", ports["smtp"]))
            .await
            .unwrap(),
    );
    let mut greeting = String::new();
    c.read_line(&mut greeting).await.unwrap();
    assert_eq!(
        greeting, "220 localhost ESMTP mailgate\r\n",
        "the smtp listener serves SMTP"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn port_in_use_is_a_start_error_naming_the_listener() {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = test_config(dir.path());
    enable(
        &mut cfg,
        "imaps",
        taken.local_addr().unwrap().port(),
        TlsMode::Implicit,
    );
    let err = Daemon::start(cfg, None).await.err().unwrap().0;
    assert!(err.starts_with("listeners.imaps (127.0.0.1:"), "{err}");
    assert!(err.contains("in use"), "{err}");
}

#[tokio::test]
async fn unusable_data_dir_and_certificate_are_start_errors() {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let mut cfg = test_config(dir.path());
    cfg.server.data_dir = dir.path().join("file/data");
    let err = Daemon::start(cfg, None).await.err().unwrap().0;
    assert!(err.starts_with("server.data_dir ("), "{err}");

    let mut cfg = test_config(dir.path());
    cfg.tls.certificates = vec![CertificatePair {
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("k.pem"),
    }];
    let err = Daemon::start(cfg, None).await.err().unwrap().0;
    assert!(err.starts_with("tls.certificates[0].cert"), "{err}");
}

fn relay(tls: TlsMode, ca: Option<PathBuf>) -> crate::config::RelaySection {
    crate::config::RelaySection {
        host: "127.0.0.1".into(),
        port: 1,
        tls,
        ca,
        username: None,
        password: None,
        retry_initial_secs: 60,
        retry_max_secs: 3600,
        lifetime_secs: 86_400,
    }
}

#[tokio::test]
async fn relay_ca_problems_are_start_errors_and_the_runner_stops_on_drain() {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.smtp.relay = Some(relay(TlsMode::Starttls, Some("missing-ca.pem".into())));
    let err = Daemon::start(cfg, None).await.err().unwrap().0;
    assert!(err.starts_with("smtp.relay.ca ("), "{err}");

    let mut cfg = test_config(dir.path());
    cfg.smtp.relay = Some(relay(TlsMode::None, None));
    let daemon = Daemon::start(cfg, None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), daemon.shutdown())
        .await
        .expect("the queue runner ends with the drain");
}

#[tokio::test]
async fn corrupt_store_is_a_start_error_and_is_left_untouched() {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let store = dir.path().join("data/store.sqlite");
    std::fs::write(&store, vec![7u8; 8192]).unwrap();
    let err = Daemon::start(cfg, None).await.err().unwrap().0;
    assert!(
        err.contains("store.path") && err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(std::fs::read(&store).unwrap(), vec![7u8; 8192]);
}

#[tokio::test]
async fn restart_keeps_the_first_organization() {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let first = Daemon::start(test_config(dir.path()), None).await.unwrap();
    let org = first.directory.list_organizations()[0].id.clone();
    let store = first.store.clone();
    first.shutdown().await;
    drop(store);
    let again = Daemon::start(test_config(dir.path()), None).await.unwrap();
    let orgs = again.directory.list_organizations();
    assert_eq!(
        orgs.iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        vec![org]
    );
    again.shutdown().await;
}

#[test]
fn organization_aliases_from_domains() {
    assert_eq!(organization_alias("example.test"), "example-test");
    assert_eq!(organization_alias("d-1.example"), "org-d-1-example");
    assert_eq!(organization_alias("mail.my_corp.org"), "mail-mycorp-org");
}

/// Token-key rotation as an operator does it: a new first line in the keys file
/// and a reload (SIGHUP). Tokens signed with the previous key keep working until
/// that key leaves the file; a broken file keeps the running keys.
// Multi-threaded: role creation persists with a blocking store write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rotates_token_keys_and_rejects_a_broken_file() {
    use crate::access::token::TokenError;
    use crate::access::{ImpersonationRoleInput, RoleType};
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let keys_path = cfg.data_path(&cfg.access.token_keys);
    let daemon = Daemon::start(cfg, None).await.unwrap();
    let org = daemon.directory.list_organizations()[0].id.clone();
    let now = crate::clock::now_ms_u64();
    let role = tokio::task::block_in_place(|| {
        daemon.access.create_impersonation_role(
            &org,
            ImpersonationRoleInput {
                name: "archiver".into(),
                role_type: RoleType::ReadOnly,
                description: None,
                rules: vec![],
            },
            None,
            daemon.directory.as_ref(),
            now,
        )
    })
    .unwrap();
    let mint = || {
        daemon
            .access
            .assume_impersonation_role(&org, &role, crate::clock::now_ms_u64())
            .unwrap()
            .token
    };
    let verify = |t: &str| {
        daemon
            .access
            .verify_token(t, crate::clock::now_ms_u64())
            .map(|v| v.key_id)
    };
    let first_file = std::fs::read_to_string(&keys_path).unwrap();
    let first_kid = first_file.split_whitespace().next().unwrap().to_string();
    let old = mint();
    assert_eq!(verify(&old), Ok(first_kid.clone()));

    // Rotation step 1: new key first, old key second.
    std::fs::write(
        &keys_path,
        format!("k-new {}\n{first_file}", "5a".repeat(32)),
    )
    .unwrap();
    daemon.reload();
    let new = mint();
    assert_eq!(
        verify(&new),
        Ok("k-new".to_string()),
        "new tokens use the new key"
    );
    assert_eq!(verify(&old), Ok(first_kid), "old tokens still verify");

    // A broken file is refused; the running keys stay.
    std::fs::write(&keys_path, "k-bad not-hex\n").unwrap();
    daemon.reload();
    assert_eq!(verify(&new), Ok("k-new".to_string()));

    // Rotation step 2: the old key leaves the file.
    std::fs::write(&keys_path, format!("k-new {}\n", "5a".repeat(32))).unwrap();
    daemon.reload();
    assert_eq!(verify(&new), Ok("k-new".to_string()));
    assert_eq!(verify(&old), Err(TokenError::BadSignature), "retired key");
    daemon.shutdown().await;
}

/// Event sinks follow the config file on reload (SIGHUP): an added sink receives
/// records, a removed one stops, and a config that does not validate, or names a
/// sink that cannot be opened, keeps the running sinks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_event_sink_changes_and_keeps_them_on_a_broken_config() {
    use crate::events::test_support::auth_event;
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("mailgate.toml");
    let write = |sinks: &[&str]| {
        let text = format!(
            "[server]\nhostname = \"localhost\"\ndata_dir = \"{}\"\n\n{}",
            data.display(),
            sinks.concat()
        );
        std::fs::write(&path, text).unwrap();
    };
    let a = "[[events.sinks]]\nname = \"a\"\nkind = \"file\"\npath = \"events/a.jsonl\"\n";
    let b = "[[events.sinks]]\nname = \"b\"\nkind = \"file\"\npath = \"events/b.jsonl\"\n";
    let not_valid = "[[events.sinks]]\nname = \"c\"\nkind = \"stdout\"\npath = \"c.jsonl\"\n";
    let cannot_open = "[[events.sinks]]\nname = \"siem\"\nkind = \"http\"\n\
                       url = \"https://127.0.0.1:1/in\"\nca = \"missing-ca.pem\"\n";
    let count = |name: &str| {
        std::fs::read_to_string(data.join("events").join(name))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    write(&[a]);
    let daemon = Daemon::start(Config::load(&path).unwrap(), Some(path.clone()))
        .await
        .unwrap();
    let emit = || {
        daemon.events.audit(auth_event(true));
        assert!(daemon.events.flush(Duration::from_secs(5)));
        (count("a.jsonl"), count("b.jsonl"))
    };
    assert_eq!(emit(), (1, 0));

    write(&[a, b]);
    daemon.reload();
    assert_eq!(emit(), (2, 1), "the added sink receives records");

    write(&[b, not_valid]);
    daemon.reload();
    assert_eq!(
        emit(),
        (3, 2),
        "a config that does not validate changes nothing"
    );

    write(&[b, cannot_open]);
    daemon.reload();
    assert_eq!(
        emit(),
        (4, 3),
        "a sink that cannot be opened changes nothing"
    );
    assert!(!daemon.events.has_sink("siem"));

    write(&[b]);
    daemon.reload();
    assert_eq!(emit(), (4, 4), "the removed sink stops");

    let text = daemon.events.metrics().render();
    assert!(
        text.contains("mailgate_events_sink_sent_total{sink=\"a\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("mailgate_events_sink_sent_total{sink=\"b\"} 4"),
        "{text}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_from_the_router() {
    crate::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::embedded();
    cfg.server.data_dir = dir.path().join("data");
    cfg.limits.max_message_size = 4096;
    cfg.limits.http_header_timeout_secs = 1;
    // The embedded default would bind the fixed SMTP and IMAP ports.
    (
        cfg.listeners.smtp,
        cfg.listeners.submission,
        cfg.listeners.submissions,
        cfg.listeners.imap,
        cfg.listeners.imaps,
    ) = (None, None, None, None, None);
    *cfg.listeners.get_mut("https").unwrap() = Some(ListenerConfig {
        enabled: true,
        address: "127.0.0.1".parse().unwrap(),
        port: 0,
        tls: TlsMode::Implicit,
        proxy_protocol: false,
        proxy_from: Vec::new(),
    });
    let daemon = Daemon::start(cfg, None).await.unwrap();
    let opts = crate::admin::client::ClientOptions {
        endpoint: None,
        data_dir: dir.path().join("data"),
        ca: None,
        credentials: None,
        region: "local".into(),
    };
    let (status, body) =
        crate::admin::client::call(&opts, "ListOrganizations", &serde_json::json!({}))
            .await
            .unwrap();
    assert_eq!(status, 200, "{body}");
    let big = serde_json::json!({"Padding": "x".repeat(8192)});
    let (status, _) = crate::admin::client::call(&opts, "ListOrganizations", &big)
        .await
        .unwrap();
    assert_eq!(status, 413);
    // `limits.http_header_timeout_secs` reaches the listener: a head dribbled out is
    // cut off after a second.
    let ca = dir.path().join("data/tls/ca.pem");
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", daemon.ports["https"]))
        .await
        .unwrap();
    let mut tls = crate::test_harness::tls_upgrade(&ca, tcp).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection must end");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    daemon.shutdown().await;
}
