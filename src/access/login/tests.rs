use super::*;
use crate::access::{
    AccessControlRuleInput, AccessLimits, MemoryBackend as AccessMemory, TokenKeys,
};
use crate::directory::{MemoryBackend, NewUser};
use crate::events::Captured;

const PASSWORD: &str = "Corr3ct-Horse";

struct World {
    auth: Authenticator,
    directory: Arc<Directory>,
    access: Arc<AccessEngine>,
    captured: Captured,
    org: String,
}

fn world() -> World {
    let directory = Arc::new(Directory::open(Arc::new(MemoryBackend::new())).unwrap());
    let org = directory.create_organization("acme", "acme.test").unwrap();
    let user = directory
        .create_user(
            &org,
            NewUser {
                name: "alice",
                display_name: "Alice",
                password: Some(PASSWORD),
                role: None,
                first_name: None,
                last_name: None,
                hidden_from_gal: false,
            },
        )
        .unwrap();
    directory
        .register_to_workmail(&org, &user, "alice@acme.test")
        .unwrap();
    let access = Arc::new(
        AccessEngine::open(
            Arc::new(AccessMemory::new()),
            AccessLimits::default(),
            TokenKeys::generate("k1"),
        )
        .unwrap(),
    );
    access.create_organization_defaults(&org, 1).unwrap();
    let (events, captured) = Events::capture();
    let auth = Authenticator::new(
        directory.clone(),
        access.clone(),
        events,
        "local",
        "000000000000",
    );
    World {
        auth,
        directory,
        access,
        captured,
        org,
    }
}

fn attempt<'a>(login: &'a str, password: &'a str) -> Attempt<'a> {
    Attempt {
        login,
        password,
        protocol: Protocol::Imap,
        source_ip: "127.0.0.1".parse().unwrap(),
        user_agent: None,
    }
}

async fn audits(w: &World, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        if w.captured.audit.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    w.captured.audit.lock().unwrap().clone()
}

fn deny_imap_from_loopback() -> AccessControlRuleInput {
    serde_json::from_value(serde_json::json!({
        "Name": "no-imap-loopback", "Effect": "DENY", "Description": "",
        "IpRanges": ["127.0.0.0/8"], "Actions": ["IMAP"]
    }))
    .unwrap()
}

#[tokio::test]
async fn success_emits_authentication_and_access_control_events() {
    let w = world();
    let LoginResult::Success(s) = w.auth.login(attempt("ALICE@acme.test", PASSWORD)).await else {
        panic!("login failed")
    };
    assert_eq!(s.org_id, w.org);
    let a = audits(&w, 2).await;
    let ac = a
        .iter()
        .find(|e| e["log_type"] == "access_control")
        .unwrap();
    assert_eq!(ac["access_granted"], true);
    assert_eq!(ac["rule_id"], "default");
    let au = a
        .iter()
        .find(|e| e["log_type"] == "authentication")
        .unwrap();
    assert_eq!(
        (au["auth_successful"].clone(), au["user_id"].clone()),
        (serde_json::json!(true), serde_json::json!(s.user_id))
    );
    assert_eq!(
        ac["request_id"], au["request_id"],
        "one request id per attempt"
    );
}

#[tokio::test]
async fn wrong_password_unknown_user_and_rule_denial_look_the_same() {
    let w = world();
    assert_eq!(
        w.auth
            .login(attempt("alice@acme.test", "Wr0ng-Horse"))
            .await,
        LoginResult::Failed
    );
    assert_eq!(
        w.auth.login(attempt("bob@acme.test", PASSWORD)).await,
        LoginResult::Failed
    );
    w.access
        .put_access_control_rule(&w.org, deny_imap_from_loopback(), 2)
        .unwrap();
    assert_eq!(
        w.auth.login(attempt("alice@acme.test", PASSWORD)).await,
        LoginResult::Failed
    );
    let mut smtp = attempt("alice@acme.test", PASSWORD);
    smtp.protocol = Protocol::Smtp;
    assert!(
        matches!(w.auth.login(smtp).await, LoginResult::Success(_)),
        "the rule is for IMAP only"
    );
    let a = audits(&w, 6).await;
    let reasons: Vec<_> = a
        .iter()
        .filter(|e| e["log_type"] == "authentication")
        .map(|e| e["auth_failed_reason"].clone())
        .collect();
    assert_eq!(
        reasons[..3],
        [
            serde_json::json!("invalid password"),
            serde_json::json!("unknown user"),
            serde_json::json!("denied by an access control rule")
        ]
    );
    let denied = a
        .iter()
        .find(|e| e["log_type"] == "access_control" && e["access_granted"] == false)
        .unwrap();
    assert_eq!(denied["rule_id"], "no-imap-loopback");
    assert_eq!(denied["protocol"], "IMAP");
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let w = world();
    let mut throttled = false;
    for _ in 0..8 {
        if let LoginResult::Throttled(d) = w
            .auth
            .login(attempt("alice@acme.test", "Wr0ng-Horse"))
            .await
        {
            assert!(d > Duration::ZERO);
            throttled = true;
            break;
        }
    }
    assert!(throttled, "failures must end in a throttle");
    assert!(
        matches!(
            w.auth.login(attempt("alice@acme.test", PASSWORD)).await,
            LoginResult::Throttled(_)
        ),
        "even the right password waits"
    );
}

#[tokio::test]
async fn live_sessions_notice_rules_disabling_and_password_changes() {
    let w = world();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let LoginResult::Success(mut s) = w.auth.login(attempt("alice@acme.test", PASSWORD)).await
    else {
        panic!()
    };
    assert!(w.auth.recheck(&mut s, ip, Protocol::Imap));
    w.access
        .put_access_control_rule(&w.org, deny_imap_from_loopback(), 2)
        .unwrap();
    assert!(
        !w.auth.recheck(&mut s, ip, Protocol::Imap),
        "a new DENY rule ends the session"
    );
    assert!(w.auth.recheck(&mut s.clone(), ip, Protocol::Smtp));
    w.access
        .delete_access_control_rule(&w.org, "no-imap-loopback")
        .unwrap();
    assert!(w.auth.recheck(&mut s, ip, Protocol::Imap));
    w.directory
        .reset_password(&w.org, &s.user_id, "N3w-Password!")
        .unwrap();
    assert!(
        !w.auth.recheck(&mut s, ip, Protocol::Imap),
        "a password change ends the session"
    );
}

/// Issue 20.2: an attacker who takes a new address for every guess, through the
/// user's name and her alias alike, gets a bounded number of password checks and
/// cannot lock her out of the address she logs in from.
#[tokio::test]
async fn an_attacker_rotating_addresses_neither_locks_out_nor_gets_many_checks() {
    let w = world();
    let home: IpAddr = "203.0.113.5".parse().unwrap();
    let from = |ip: IpAddr, login: &'static str, password: &'static str| Attempt {
        source_ip: ip,
        ..attempt(login, password)
    };
    let LoginResult::Success(s) = w.auth.login(from(home, "alice@acme.test", PASSWORD)).await
    else {
        panic!("first login")
    };
    w.directory
        .create_alias(&w.org, &s.user_id, "al@acme.test")
        .unwrap();
    let mut throttled = 0;
    for i in 0..40u32 {
        let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let login = if i % 2 == 0 {
            "alice@acme.test"
        } else {
            "AL@acme.test"
        };
        match w.auth.login(from(ip, login, "guess")).await {
            LoginResult::Throttled(_) => throttled += 1,
            LoginResult::Failed => {}
            LoginResult::Success(_) => panic!("a guess got in"),
        }
    }
    let checked = 40 - throttled;
    let burst = FailurePolicy::default().burst as usize;
    assert!(checked >= burst && checked <= burst + 1, "{checked} checks");
    for _ in 0..20 {
        assert!(
            matches!(
                w.auth.login(from(home, "al@acme.test", PASSWORD)).await,
                LoginResult::Success(_)
            ),
            "locked out of her own address"
        );
    }
    let a = audits(&w, 1 + 40 + 20).await;
    let invalid = a
        .iter()
        .filter(|e| e["auth_failed_reason"] == "invalid password")
        .count();
    assert_eq!(invalid, checked, "a throttled guess costs no hash");
}

/// A token for alice (or `user`) created `age_ms` ago with this lifetime and scopes.
fn token(
    w: &World,
    user: &str,
    age_ms: u64,
    days: i64,
    scopes: Option<&[String]>,
) -> (String, String) {
    let (t, text) = w
        .directory
        .create_personal_access_token(
            &w.org,
            crate::directory::NewToken {
                user,
                name: "phone",
                lifetime_days: Some(days),
                scopes,
            },
            crate::clock::now_ms_u64() - age_ms,
        )
        .unwrap();
    (t.id, text)
}

fn with_protocol(a: Attempt<'_>, protocol: Protocol) -> Attempt<'_> {
    Attempt { protocol, ..a }
}

/// The last authentication record's (successful, failure reason, token id).
async fn last_auth(w: &World, n: usize) -> (bool, Option<String>, Option<String>) {
    let a = audits(w, n).await;
    let au = a
        .iter()
        .rev()
        .find(|e| e["log_type"] == "authentication")
        .unwrap();
    let s = |k: &str| au.get(k).and_then(|v| v.as_str()).map(str::to_string);
    (
        au["auth_successful"] == true,
        s("auth_failed_reason"),
        s("personal_access_token_id"),
    )
}

#[tokio::test]
async fn a_token_is_a_password_for_imap_smtp_and_ews_and_is_audited() {
    let w = world();
    let (id, text) = token(&w, "alice", 0, 30, None);
    for (n, p) in [
        Protocol::Imap,
        Protocol::Smtp,
        Protocol::Ews,
        Protocol::AutoDiscover,
    ]
    .into_iter()
    .enumerate()
    {
        let r = w
            .auth
            .login(with_protocol(attempt("alice@acme.test", &text), p))
            .await;
        let LoginResult::Success(s) = r else {
            panic!("{p:?}: {r:?}")
        };
        assert_eq!(s.personal_access_token_id(), Some(id.as_str()));
        assert_eq!(
            last_auth(&w, 2 * (n + 1)).await,
            (true, None, Some(id.clone()))
        );
    }
    // DateLastUsed is known at once and written in the background.
    let meta = w.directory.get_personal_access_token(&w.org, &id).unwrap();
    assert!(meta.last_used.is_some());
    for _ in 0..200 {
        if w.directory
            .personal_access_token(&id)
            .is_some_and(|p| p.last_used.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        w.directory
            .personal_access_token(&id)
            .is_some_and(|p| p.last_used.is_some()),
        "the first use is written"
    );
    // Password logins are unchanged.
    assert!(matches!(
        w.auth.login(attempt("alice@acme.test", PASSWORD)).await,
        LoginResult::Success(s) if s.personal_access_token_id().is_none()
    ));
}

#[tokio::test]
async fn tokens_are_refused_when_wrong_foreign_unscoped_expired_deleted_or_disabled() {
    let w = world();
    crate::directory::testing::user(&w.directory, &w.org, "bob", PASSWORD);
    let (id, text) = token(&w, "alice", 0, 30, None);
    let mut n = 0;
    // Each from its own address, so the per-address throttle stays out of the way.
    let mut refused = async |a: Attempt<'_>, why: &str, token_id: Option<&str>| {
        n += 1;
        let source_ip = format!("10.0.0.{n}").parse().unwrap();
        let a = Attempt { source_ip, ..a };
        assert_eq!(w.auth.login(a).await, LoginResult::Failed, "{why}");
        assert_eq!(
            last_auth(&w, n).await,
            (false, Some(why.to_string()), token_id.map(str::to_string))
        );
    };
    // Another secret under the same id.
    let forged = format!(
        "{}{}",
        &text[..text.len() - 1],
        if text.ends_with('A') { 'B' } else { 'A' }
    );
    refused(
        attempt("alice@acme.test", &forged),
        "invalid personal access token",
        Some(&id),
    )
    .await;
    // Alice's token with bob's name.
    refused(
        attempt("bob@acme.test", &text),
        "personal access token of another user",
        Some(&id),
    )
    .await;
    // Nobody's name.
    refused(
        attempt("nobody@acme.test", &text),
        "unknown user",
        Some(&id),
    )
    .await;
    // An IMAP-only token on SMTP.
    let imap = ["IMAP".to_string()];
    let (imap_id, imap_text) = token(&w, "alice", 0, 30, Some(&imap));
    refused(
        with_protocol(attempt("alice@acme.test", &imap_text), Protocol::Smtp),
        "personal access token not scoped for this protocol",
        Some(&imap_id),
    )
    .await;
    // Expired: created two days ago for one day.
    let (old_id, old_text) = token(&w, "alice", 2 * 86_400_000, 1, None);
    refused(
        attempt("alice@acme.test", &old_text),
        "personal access token expired",
        Some(&old_id),
    )
    .await;
    // Deleted.
    w.directory
        .delete_personal_access_token(&w.org, &imap_id)
        .unwrap();
    refused(
        attempt("alice@acme.test", &imap_text),
        "unknown personal access token",
        Some(&imap_id),
    )
    .await;
    // Disabled user.
    let alice = w.directory.login_lookup("alice@acme.test").unwrap().user_id;
    w.directory
        .deregister_from_workmail(&w.org, &alice)
        .unwrap();
    refused(
        attempt("alice@acme.test", &text),
        "user is not enabled",
        Some(&id),
    )
    .await;
}

#[tokio::test]
async fn a_session_opened_with_a_token_ends_when_it_is_deleted_or_expires() {
    let w = world();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let (id, text) = token(&w, "alice", 0, 30, None);
    let LoginResult::Success(mut s) = w.auth.login(attempt("alice@acme.test", &text)).await else {
        panic!()
    };
    let LoginResult::Success(mut by_password) =
        w.auth.login(attempt("alice@acme.test", PASSWORD)).await
    else {
        panic!()
    };
    assert!(w.auth.recheck(&mut s, ip, Protocol::Imap));
    w.directory
        .delete_personal_access_token(&w.org, &id)
        .unwrap();
    assert!(
        !w.auth.recheck(&mut s, ip, Protocol::Imap),
        "deleted: the session ends"
    );
    assert!(
        w.auth.recheck(&mut by_password, ip, Protocol::Imap),
        "password sessions go on"
    );
    // A token that expires 300 ms from now.
    let (_, text) = token(&w, "alice", 86_400_000 - 300, 1, None);
    let LoginResult::Success(mut s) = w.auth.login(attempt("alice@acme.test", &text)).await else {
        panic!()
    };
    assert!(w.auth.recheck(&mut s, ip, Protocol::Imap));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !w.auth.recheck(&mut s, ip, Protocol::Imap),
        "expired: the session ends"
    );
}
