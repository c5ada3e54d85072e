//! Authentication, envelope, versions, faults and bad input.

use super::*;
use crate::access::RoleType;

/// The captured audit records of one log type, once at least `n` arrived.
async fn audit_records(f: &Fixture, log_type: &str, n: usize) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    for _ in 0..200 {
        found = f
            .world
            .captured
            .audit
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["log_type"] == log_type)
            .cloned()
            .collect();
        if found.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    found
}

const GET_INBOX: &str = r#"<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>"#;

#[tokio::test]
async fn unauthenticated_and_wrong_password_get_401_offering_only_basic() {
    let f = Fixture::new().await;
    for auth in [
        None,
        Some(basic("alice@acme.test", "wrong").as_str()),
        Some("NTLM TlRMTVNTUAABAAAA"),
    ] {
        let (status, headers, _) = f.raw(auth, &envelope("", GET_INBOX)).await;
        assert_eq!(status, 401, "{auth:?}");
        let offered: Vec<&String> = headers
            .iter()
            .filter(|(k, _)| *k == "www-authenticate")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(offered, vec!["Basic realm=\"EWS\""]);
    }
    let (status, headers, _) = f
        .raw(Some("Bearer forged.token"), &envelope("", GET_INBOX))
        .await;
    assert_eq!(status, 401);
    assert!(
        headers
            .iter()
            .any(|(k, v)| *k == "www-authenticate" && v.contains("invalid_token"))
    );
}

#[tokio::test]
async fn a_login_is_checked_once_then_remembered_and_rechecked() {
    let f = Fixture::new().await;
    for _ in 0..3 {
        let root = f.call(GET_INBOX).await;
        assert_eq!(codes(&root, "GetFolder"), ["NoError"]);
    }
    let logins = audit_records(&f, "authentication", 1).await.len();
    assert_eq!(logins, 1, "one real check for three requests");
    // A changed password ends the remembered login at once.
    let (d, org, alice) = (
        f.world.directory.clone(),
        f.world.org.clone(),
        f.world.alice.clone(),
    );
    blocking(move || d.reset_password(&org, &alice, "An0ther-Horse!").unwrap()).await;
    let (status, _, _) = f
        .raw(
            Some(&basic("alice@acme.test", PASSWORD)),
            &envelope("", GET_INBOX),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn unknown_operations_get_a_valid_error_response() {
    let f = Fixture::new().await;
    let root = f.call("<m:GetRooms/>").await;
    assert_eq!(codes(&root, "GetRooms"), ["ErrorInvalidOperation"]);
    let root = f.call("<m:FrobnicateRequest/>").await;
    assert_eq!(codes(&root, "Frobnicate"), ["ErrorInvalidOperation"]);
}

#[tokio::test]
async fn versions_are_accepted_or_refused_with_the_code_exchangelib_expects() {
    let f = Fixture::new().await;
    let auth = basic("alice@acme.test", PASSWORD);
    for v in [
        "Exchange2007_SP1",
        "Exchange2010_SP2",
        "Exchange2016",
        "V2018_01_08",
    ] {
        let body = envelope("", GET_INBOX).replace("Exchange2016", v);
        let (status, _, text) = f.raw(Some(&auth), &body).await;
        assert_eq!(status, 200);
        assert!(text.contains("NoError"), "{v}: {text}");
    }
    let body = envelope("", GET_INBOX).replace("Exchange2016", "Exchange2019");
    let (status, _, text) = f.raw(Some(&auth), &body).await;
    assert_eq!(status, 200);
    assert_eq!(fault_code(&text), "ErrorInvalidServerVersion");
    assert!(
        text.contains("ServerVersionInfo"),
        "faults carry the header too"
    );
    // DavMail's first request has no RequestServerVersion at all.
    let body =
        envelope("", GET_INBOX).replace(r#"<t:RequestServerVersion Version="Exchange2016"/>"#, "");
    let (_, _, text) = f.raw(Some(&auth), &body).await;
    assert!(text.contains("NoError"), "{text}");
}

#[tokio::test]
async fn hostile_xml_gets_a_fault_and_the_server_keeps_serving() {
    let f = Fixture::new().await;
    let auth = basic("alice@acme.test", PASSWORD);
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&b;</s:Body></s:Envelope>"#;
    let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    let external = r#"<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>"#;
    for bad in [
        bomb,
        &deep,
        external,
        "<s:Envelope><s:Body>",
        "not xml at all",
        "<Envelope/>",
    ] {
        let (status, _, text) = f.raw(Some(&auth), bad).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(fault_code(&text), "ErrorSchemaValidation", "{bad:.40}");
        assert!(!text.contains("root:"), "no file content leaks");
    }
    let root = f.call(GET_INBOX).await;
    assert_eq!(codes(&root, "GetFolder"), ["NoError"]);
}

#[tokio::test]
async fn impersonation_acts_as_the_target_and_read_only_roles_only_read() {
    let f = Fixture::new().await;
    let full = format!("Bearer {}", f.role_token(RoleType::FullAccess).await);
    let read_only = format!("Bearer {}", f.role_token(RoleType::ReadOnly).await);
    let as_bob = impersonating("bob@acme.test");
    let root = f.call_as(&full, &as_bob, GET_INBOX).await;
    let folder = &messages(&root, "GetFolder")[0];
    assert_eq!(folder.child_text("ResponseCode"), Some("NoError"));
    let create = r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Reports</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#;
    let root = f.call_as(&read_only, &as_bob, GET_INBOX).await;
    assert_eq!(codes(&root, "GetFolder"), ["NoError"]);
    let root = f.call_as(&read_only, &as_bob, create).await;
    assert_eq!(codes(&root, "CreateFolder"), ["ErrorAccessDenied"]);
    let root = f.call_as(&full, &as_bob, create).await;
    assert_eq!(codes(&root, "CreateFolder"), ["NoError"]);
    let bob_folders = f.world.store.folders(&f.world.bob).await.unwrap();
    assert!(
        bob_folders.iter().any(|x| x.name == "INBOX/Reports"),
        "made in bob's mailbox"
    );

    // The audit trail names the role as impersonator and bob as the user.
    let audited = audit_records(&f, "mailbox_access", 4).await;
    let access = audited
        .iter()
        .find(|m| m["action_allowed"] == true && m["action"] == "create")
        .expect("an allowed create");
    assert_eq!(access["user_id"], f.world.bob.as_str());
    assert!(access["impersonator_id"].is_string());

    // A user naming nobody, a SID, and no target at all.
    let (_, _, text) = f
        .raw(
            Some(&full),
            &envelope(&impersonating("nobody@acme.test"), GET_INBOX),
        )
        .await;
    assert_eq!(fault_code(&text), "ErrorNonExistentMailbox");
    let sid = "<t:ExchangeImpersonation><t:ConnectingSID><t:SID>S-1-5-21</t:SID></t:ConnectingSID></t:ExchangeImpersonation>";
    let (_, _, text) = f.raw(Some(&full), &envelope(sid, GET_INBOX)).await;
    assert_eq!(fault_code(&text), "ErrorImpersonationFailed");
    let root = f.call_as(&full, "", GET_INBOX).await;
    assert_eq!(codes(&root, "GetFolder"), ["ErrorMissingEmailAddress"]);
}

#[tokio::test]
async fn password_users_cannot_impersonate_others() {
    let f = Fixture::new().await;
    let auth = basic("alice@acme.test", PASSWORD);
    let (_, _, text) = f
        .raw(
            Some(&auth),
            &envelope(&impersonating("bob@acme.test"), GET_INBOX),
        )
        .await;
    assert_eq!(fault_code(&text), "ErrorImpersonationDenied");
    let root = f
        .call_as(&auth, &impersonating("alice@acme.test"), GET_INBOX)
        .await;
    assert_eq!(
        codes(&root, "GetFolder"),
        ["NoError"],
        "naming oneself is fine"
    );
}

#[tokio::test]
async fn a_token_stops_working_when_its_role_changes() {
    let f = Fixture::new().await;
    let token = f.role_token(RoleType::FullAccess).await;
    let auth = format!("Bearer {token}");
    let as_bob = impersonating("bob@acme.test");
    f.call_as(&auth, &as_bob, GET_INBOX).await;
    let (access, org) = (f.world.access.clone(), f.world.org.clone());
    blocking(move || {
        let role = access.list_impersonation_roles(&org).unwrap()[0]
            .impersonation_role_id
            .clone();
        access.delete_impersonation_role(&org, &role).unwrap();
    })
    .await;
    let (status, headers, _) = f.raw(Some(&auth), &envelope(&as_bob, GET_INBOX)).await;
    assert_eq!(status, 401);
    assert!(headers.iter().any(|(_, v)| v.contains("invalid_token")));
}

#[tokio::test]
async fn every_served_operation_is_dispatched_and_empty_requests_do_no_harm() {
    let f = Fixture::new().await;
    let auth = basic("alice@acme.test", PASSWORD);
    for op in crate::ews::ops::SERVED {
        let (status, _, body) = f
            .raw(Some(&auth), &envelope("", &format!("<m:{op}/>")))
            .await;
        assert_eq!(status, 200, "{op}");
        assert!(
            !body.contains("is not supported by this server"),
            "{op} is in the table but not dispatched"
        );
        assert!(parse(body.as_bytes()).is_ok(), "{op}: {body}");
    }
    assert_eq!(crate::ews::ops::served("Frobnicate"), "unsupported");
}

#[tokio::test]
async fn an_announced_body_beyond_the_limit_gets_an_ews_fault_unread() {
    let f = Fixture::new().await;
    let auth = basic("alice@acme.test", PASSWORD);
    let r = f.respond_declaring(Some(&auth), "", 51 << 20).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        fault_code(&String::from_utf8_lossy(r.body.bytes())),
        "ErrorMessageSizeExceeded"
    );
    let nobody = basic("nobody@acme.test", "x");
    let r = f.respond_declaring(Some(&nobody), "", 1 << 20).await;
    assert_eq!(r.status, 401, "unknown logins get no large body");
}

#[tokio::test]
async fn a_body_the_router_cannot_read_gets_a_fault_not_a_bare_http_error() {
    use crate::net::http::BodyRefusal;
    let f = Fixture::new().await;
    for (why, code) in [
        (BodyRefusal::TooLarge, "ErrorMessageSizeExceeded"),
        (BodyRefusal::TooSlow, "ErrorSchemaValidation"),
        (BodyRefusal::Unreadable, "ErrorSchemaValidation"),
    ] {
        let r = f.ews.refuse_body(why);
        assert_eq!(r.status, 200, "{why:?}");
        let body = String::from_utf8_lossy(r.body.bytes()).into_owned();
        assert_eq!(fault_code(&body), code);
        assert!(body.contains("ServerVersionInfo"));
    }
}

#[tokio::test]
async fn affinity_is_granted_when_asked() {
    let f = Fixture::new().await;
    let auth = basic("alice@acme.test", PASSWORD);
    let body = envelope("", GET_INBOX);
    let plain = f.respond(Some(&auth), &body).await;
    assert!(!plain.headers.iter().any(|(k, _)| *k == "set-cookie"));
    let asked = f
        .respond_with(
            Some(&auth),
            &[("x-preferserveraffinity", "True")],
            &body,
            body.len(),
        )
        .await;
    assert_eq!(asked.status, 200);
    let cookie = asked
        .headers
        .iter()
        .find(|(k, _)| *k == "set-cookie")
        .map(|(_, v)| v.as_str());
    assert!(cookie.is_some_and(|c| c.starts_with("X-BackEndOverrideCookie=")));
}
