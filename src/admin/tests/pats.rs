//! Personal access tokens through the admin API: the extension that creates them,
//! List/Get/Delete with the model's members, paging and errors, and the audit records.

use super::*;
use crate::events::Captured;

/// The fixture with captured events.
async fn fixture_capturing() -> (Fixture, Captured) {
    tokio::task::spawn_blocking(|| {
        let (events, captured) = crate::events::Events::capture();
        (build_fixture_with(events), captured)
    })
    .await
    .unwrap()
}

/// Calls mailgate's own `action` (outside WorkMail's namespace).
async fn extension(f: &Fixture, action: &str, input: Value) -> (u16, Value) {
    let body = input.to_string();
    let t = format!("MailgateService.{action}");
    raw(&f.api, signed(&t, body.as_bytes(), KEY_ID, SECRET, now())).await
}

async fn create(f: &Fixture, user: &str, name: &str) -> Value {
    let input = json!({"OrganizationId": f.org, "User": user, "Name": name, "ExpiresInDays": 30});
    let (status, out) = extension(f, "CreatePersonalAccessToken", input).await;
    assert_eq!(status, 200, "{out}");
    out
}

async fn audits(c: &Captured, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        if c.audit.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    c.audit.lock().unwrap().clone()
}

#[tokio::test]
async fn create_get_list_delete_with_the_model_members_and_audit_records() {
    let (f, captured) = fixture_capturing().await;
    let alice = registered_user(&f, "alice").await;
    let made = create(&f, "alice@example.test", "phone").await;
    let id = made["PersonalAccessTokenId"].as_str().unwrap().to_string();
    let token = made["Token"].as_str().unwrap();
    assert!(token.starts_with("mgpat.") && token.contains(&id));
    assert_eq!(made["UserId"], alice.as_str());
    let created = made["DateCreated"].as_f64().unwrap();
    let expires = made["ExpiresTime"].as_f64().unwrap();
    assert!((expires - created - 30.0 * 86_400.0).abs() < 1.0, "{made}");
    assert_eq!(made["Scopes"], json!(["IMAP", "SMTP", "EWS"]));

    let meta = ok(
        &f,
        "GetPersonalAccessTokenMetadata",
        json!({"OrganizationId": f.org, "PersonalAccessTokenId": id}),
    )
    .await;
    let mut keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "DateCreated",
            "ExpiresTime",
            "Name",
            "PersonalAccessTokenId",
            "Scopes",
            "UserId"
        ],
        "no DateLastUsed before a use, and never the token"
    );
    let listed = ok(
        &f,
        "ListPersonalAccessTokens",
        json!({"OrganizationId": f.org}),
    )
    .await;
    assert_eq!(listed["PersonalAccessTokenSummaries"], json!([meta]));
    assert!(listed.get("NextToken").is_none());

    ok(
        &f,
        "DeletePersonalAccessToken",
        json!({"OrganizationId": f.org, "PersonalAccessTokenId": id}),
    )
    .await;
    fails(
        &f,
        "GetPersonalAccessTokenMetadata",
        json!({"OrganizationId": f.org, "PersonalAccessTokenId": id}),
        "ResourceNotFoundException",
    )
    .await;
    // Deleting again changes nothing and writes no record.
    ok(
        &f,
        "DeletePersonalAccessToken",
        json!({"OrganizationId": f.org, "PersonalAccessTokenId": id}),
    )
    .await;

    let records = audits(&captured, 2).await;
    let pat: Vec<&Value> = records
        .iter()
        .filter(|r| r["log_type"] == "personal_access_token")
        .collect();
    assert_eq!(pat.len(), 2, "{records:?}");
    for (r, action) in pat.iter().zip(["create", "delete"]) {
        assert_eq!(r["action"], action);
        assert_eq!(r["user_id"], alice.as_str());
        assert_eq!(r["user"], "alice");
        assert_eq!(r["name"], "phone");
        assert_eq!(r["source_ip"], "127.0.0.1");
        assert_eq!(r["scopes"], json!(["IMAP", "SMTP", "EWS"]));
        assert_eq!(r["expires_time"].as_f64(), Some(expires * 1000.0));
        assert!(r["organization_arn"].as_str().unwrap().ends_with(&f.org));
    }
    assert_ne!(pat[0]["request_id"], pat[1]["request_id"]);
}

#[tokio::test]
async fn lists_filter_by_user_and_page() {
    let f = fixture().await;
    registered_user(&f, "alice").await;
    let bob = registered_user(&f, "bob").await;
    let mut ids = Vec::new();
    for (user, name) in [("alice", "a1"), ("bob", "b1"), ("alice", "a2")] {
        let out = create(&f, user, name).await;
        ids.push(out["PersonalAccessTokenId"].as_str().unwrap().to_string());
    }
    let names = |v: &Value| -> Vec<String> {
        v["PersonalAccessTokenSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["Name"].as_str().unwrap().to_string())
            .collect()
    };
    let org = json!({"OrganizationId": f.org});
    let first = ok(
        &f,
        "ListPersonalAccessTokens",
        merged(&org, json!({"MaxResults": 2})),
    )
    .await;
    assert_eq!(names(&first), ["a1", "b1"]);
    let next = first["NextToken"].as_str().unwrap();
    let second = ok(
        &f,
        "ListPersonalAccessTokens",
        merged(&org, json!({"MaxResults": 2, "NextToken": next})),
    )
    .await;
    assert_eq!(names(&second), ["a2"]);
    assert!(second.get("NextToken").is_none());
    let bobs = ok(
        &f,
        "ListPersonalAccessTokens",
        merged(&org, json!({"UserId": bob})),
    )
    .await;
    assert_eq!(names(&bobs), ["b1"]);
    let by_mail = json!({"UserId": "alice@example.test"});
    assert_eq!(
        names(&ok(&f, "ListPersonalAccessTokens", merged(&org, by_mail)).await),
        ["a1", "a2"]
    );
    fails_each(
        &f,
        "ListPersonalAccessTokens",
        &org,
        vec![
            (json!({"MaxResults": 0}), "InvalidParameterException"),
            (json!({"MaxResults": 101}), "InvalidParameterException"),
            (json!({"NextToken": "garbage"}), "InvalidParameterException"),
            (json!({"UserId": "nobody"}), "EntityNotFoundException"),
            (
                json!({"UserId": "x".repeat(257)}),
                "InvalidParameterException",
            ),
            (json!({"UserId": 5}), "ValidationException"),
            (
                json!({"OrganizationId": "m-00000000000000000000000000000000"}),
                "OrganizationNotFoundException",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn errors_of_get_delete_and_create() {
    let f = fixture().await;
    registered_user(&f, "alice").await;
    let unknown = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let org = json!({"OrganizationId": f.org});
    fails_each(
        &f,
        "GetPersonalAccessTokenMetadata",
        &org,
        vec![
            (json!({"PersonalAccessTokenId": unknown}), "ResourceNotFoundException"),
            (json!({"PersonalAccessTokenId": "a.b"}), "InvalidParameterException"),
            (json!({}), "ValidationException"),
            (
                json!({"OrganizationId": "m-00000000000000000000000000000000", "PersonalAccessTokenId": unknown}),
                "OrganizationNotFoundException",
            ),
        ],
    )
    .await;
    ok(
        &f,
        "DeletePersonalAccessToken",
        merged(&org, json!({"PersonalAccessTokenId": unknown})),
    )
    .await;
    fails_each(
        &f,
        "DeletePersonalAccessToken",
        &org,
        vec![
            (json!({"PersonalAccessTokenId": ""}), "InvalidParameterException"),
            (
                json!({"OrganizationId": "m-00000000000000000000000000000000", "PersonalAccessTokenId": unknown}),
                "OrganizationNotFoundException",
            ),
        ],
    )
    .await;
    // Creation: bad members, a user without a mailbox, the per-user limit.
    let disabled = created(
        &f,
        "CreateUser",
        json!({"Name": "dis", "DisplayName": "d"}),
        "UserId",
    )
    .await;
    let base = json!({"OrganizationId": f.org, "User": "alice", "Name": "x"});
    for (extra, kind) in [
        (json!({"ExpiresInDays": 0}), "InvalidParameterException"),
        (json!({"ExpiresInDays": 3654}), "InvalidParameterException"),
        (json!({"Name": ""}), "InvalidParameterException"),
        (json!({"Scopes": ["POP3"]}), "InvalidParameterException"),
        (json!({"User": "nobody"}), "EntityNotFoundException"),
        (json!({"User": disabled}), "EntityStateException"),
    ] {
        let (status, out) = extension(
            &f,
            "CreatePersonalAccessToken",
            merged(&base, extra.clone()),
        )
        .await;
        assert_eq!(
            (status, out["__type"].as_str()),
            (400, Some(kind)),
            "{extra}: {out}"
        );
    }
    for i in 0..crate::directory::pat::MAX_TOKENS_PER_USER {
        create(&f, "alice", &format!("t{i}")).await;
    }
    let (_, out) = extension(&f, "CreatePersonalAccessToken", base).await;
    assert_eq!(out["__type"], "LimitExceededException");
}

#[tokio::test]
async fn the_extension_lives_only_in_its_own_namespace() {
    let f = fixture().await;
    let input = json!({"OrganizationId": f.org, "User": "a", "Name": "x"});
    error(
        call(&f.api, "CreatePersonalAccessToken", input).await,
        "UnknownOperationException",
        400,
    );
    error(
        extension(&f, "ListUsers", json!({"OrganizationId": f.org})).await,
        "UnknownOperationException",
        400,
    );
}
