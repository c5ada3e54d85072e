//! Dispatch tests: the request pipeline (signature, target, body, input) and the
//! mapping of directory, access and store errors to AWS error types, without a socket.

use std::sync::Arc;

use serde_json::{Value, json};

use super::api::AdminApi;
use super::credentials::AccessKey;
use super::sigv4::{self, RequestParts};
use super::state::AdminState;
use crate::access::{AccessEngine, AccessError, AccessLimits, TokenKeys};
use crate::directory::Directory;
use crate::net::http::HttpRequest;

const KEY_ID: &str = "MGAKTESTTESTTESTTEST";
const SECRET: &str = "test-secret-test-secret-test-secret-0000";

struct Fixture {
    api: AdminApi,
    org: String,
    _dir: tempfile::TempDir,
}

/// Builds the fixture on the blocking pool: the store's writes block.
async fn fixture() -> Fixture {
    tokio::task::spawn_blocking(build_fixture).await.unwrap()
}

fn build_fixture() -> Fixture {
    build_fixture_with(crate::events::Events::disabled())
}

/// The fixture with its events going to `events` (e.g. captured, to check audit records).
fn build_fixture_with(events: crate::events::Events) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
    let directory = Arc::new(Directory::open(store.clone()).unwrap());
    let access = Arc::new(
        AccessEngine::open(
            store.clone(),
            AccessLimits::default(),
            TokenKeys::generate("k1"),
        )
        .unwrap(),
    );
    let org = directory
        .create_organization("test-org", "example.test")
        .unwrap();
    access.create_organization_defaults(&org, 1).unwrap();
    let keys = Arc::new(vec![AccessKey {
        access_key_id: KEY_ID.into(),
        secret_access_key: SECRET.into(),
    }]);
    let state = Arc::new(AdminState {
        directory,
        access,
        store: store.clone(),
        events,
        exports: crate::export::ExportJobs::new(store.clone(), dir.path().join("exports")),
        secrets: Arc::new(super::keys::FixedKeys(keys)),
        region: "local".into(),
        account: "000000000000".into(),
    });
    Fixture {
        api: AdminApi::new(state),
        org,
        _dir: dir,
    }
}

fn now() -> i64 {
    crate::clock::now_secs()
}

/// A request for `target` with `body`, signed by `key`/`secret` at `when`.
fn signed(target: &str, body: &[u8], key: &str, secret: &str, when: i64) -> HttpRequest {
    let mut headers = vec![
        ("host".to_string(), "localhost:8443".to_string()),
        ("x-amz-date".to_string(), sigv4::format_amz_date(when)),
        ("x-amz-target".to_string(), target.to_string()),
    ];
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let auth = sigv4::sign(&parts, key, secret, "local").unwrap();
    headers.push(("authorization".into(), auth));
    HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers,
        body: bytes::Bytes::copy_from_slice(body),
        peer: "127.0.0.1:1".parse().unwrap(),
    }
}

async fn raw(api: &AdminApi, req: HttpRequest) -> (u16, Value) {
    let resp = api.answer(&req).await;
    assert!(
        resp.headers.iter().any(|(k, _)| *k == "x-amzn-requestid"),
        "every answer carries a request id"
    );
    (
        resp.status,
        serde_json::from_slice(resp.body.bytes()).unwrap(),
    )
}

async fn call(api: &AdminApi, action: &str, input: Value) -> (u16, Value) {
    let body = input.to_string();
    let target = format!("WorkMailService.{action}");
    raw(api, signed(&target, body.as_bytes(), KEY_ID, SECRET, now())).await
}

/// Asserts an error answer of `kind` with `status`; returns the message.
fn error(answer: (u16, Value), kind: &str, status: u16) -> String {
    assert_eq!(answer.1["__type"], kind, "{}", answer.1);
    assert_eq!(answer.0, status, "{}", answer.1);
    answer.1["message"].as_str().unwrap_or_default().to_string()
}

fn target(action: &str) -> String {
    format!("WorkMailService.{action}")
}

#[tokio::test]
async fn signature_failures_get_the_aws_error_types() {
    let f = fixture().await;
    let t = target("ListOrganizations");
    let bad_secret = signed(&t, b"{}", KEY_ID, "wrong-secret-wrong-secret", now());
    error(
        raw(&f.api, bad_secret).await,
        "InvalidSignatureException",
        400,
    );
    let stale = signed(&t, b"{}", KEY_ID, SECRET, now() - 20 * 60);
    let msg = error(raw(&f.api, stale).await, "InvalidSignatureException", 400);
    assert!(msg.contains("Signature expired"), "{msg}");
    let unknown = signed(&t, b"{}", "MGAKNOBODYNOBODY0000", SECRET, now());
    error(
        raw(&f.api, unknown).await,
        "UnrecognizedClientException",
        400,
    );
    let mut unsigned = signed(&t, b"{}", KEY_ID, SECRET, now());
    unsigned.headers.retain(|(k, _)| k != "authorization");
    error(
        raw(&f.api, unsigned).await,
        "MissingAuthenticationTokenException",
        403,
    );
    // A body changed after signing no longer matches.
    let mut tampered = signed(&t, b"{}", KEY_ID, SECRET, now());
    tampered.body = bytes::Bytes::from_static(b"{ }");
    error(
        raw(&f.api, tampered).await,
        "InvalidSignatureException",
        400,
    );
}

#[tokio::test]
async fn unknown_actions_and_targets_are_unknown_operations() {
    let f = fixture().await;
    error(
        call(&f.api, "DeleteOrganization", json!({})).await,
        "UnknownOperationException",
        400,
    );
    let other_service = signed("AmazonSES.ListUsers", b"{}", KEY_ID, SECRET, now());
    error(
        raw(&f.api, other_service).await,
        "UnknownOperationException",
        400,
    );
    assert_eq!(super::actions::ACTIONS.len(), 72);
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_serialization_errors() {
    let f = fixture().await;
    let t = target("ListOrganizations");
    for body in [
        &b"{\"MaxResults\": "[..],
        b"[1, 2]",
        b"\"text\"",
        b"\xff\xfe",
    ] {
        let req = signed(&t, body, KEY_ID, SECRET, now());
        error(raw(&f.api, req).await, "SerializationException", 400);
    }
    // An empty body is an empty input, as the AWS CLI sends for no arguments.
    let (status, out) = raw(&f.api, signed(&t, b"", KEY_ID, SECRET, now())).await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test]
async fn missing_and_mistyped_members_are_validation_errors_naming_them() {
    let f = fixture().await;
    let msg = error(
        call(&f.api, "DescribeUser", json!({"OrganizationId": f.org})).await,
        "ValidationException",
        400,
    );
    assert!(msg.contains("UserId"), "{msg}");
    let msg = error(
        call(
            &f.api,
            "ListUsers",
            json!({"OrganizationId": f.org, "MaxResults": "ten"}),
        )
        .await,
        "ValidationException",
        400,
    );
    assert!(msg.contains("MaxResults"), "{msg}");
    let msg = error(
        call(
            &f.api,
            "CreateResource",
            json!({"OrganizationId": f.org, "Name": "room", "Type": "KITCHEN"}),
        )
        .await,
        "ValidationException",
        400,
    );
    assert!(msg.contains("Type"), "{msg}");
    let rule =
        json!({"OrganizationId": f.org, "Name": "r", "Effect": "DENY", "IpRanges": "10.0.0.0/8"});
    let msg = error(
        call(&f.api, "PutAccessControlRule", rule).await,
        "ValidationException",
        400,
    );
    assert!(msg.contains("IpRanges"), "{msg}");
}

#[tokio::test]
async fn list_users_pages_and_filters() {
    let f = fixture().await;
    for i in 0..5 {
        let (status, out) = call(
            &f.api,
            "CreateUser",
            json!({"OrganizationId": f.org, "Name": format!("user{i}"), "DisplayName": format!("User {i}")}),
        )
        .await;
        assert_eq!(status, 200, "{out}");
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut input = json!({"OrganizationId": f.org, "MaxResults": 2});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let (status, out) = call(&f.api, "ListUsers", input).await;
        assert_eq!(status, 200, "{out}");
        pages += 1;
        for u in out["Users"].as_array().unwrap() {
            names.push(u["Name"].as_str().unwrap().to_string());
        }
        match out.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    names.sort();
    assert_eq!(names, ["user0", "user1", "user2", "user3", "user4"]);
    assert_eq!(pages, 3);
    let (_, out) = call(
        &f.api,
        "ListUsers",
        json!({"OrganizationId": f.org, "Filters": {"UsernamePrefix": "USER3"}}),
    )
    .await;
    assert_eq!(out["Users"].as_array().unwrap().len(), 1, "{out}");
    error(
        call(
            &f.api,
            "ListUsers",
            json!({"OrganizationId": f.org, "NextToken": "garbage"}),
        )
        .await,
        "InvalidParameterException",
        400,
    );
    error(
        call(
            &f.api,
            "ListUsers",
            json!({"OrganizationId": f.org, "MaxResults": 101}),
        )
        .await,
        "InvalidParameterException",
        400,
    );
}

/// Asserts that `action` with `input` fails with `kind` (HTTP 400).
async fn fails(f: &Fixture, action: &str, input: Value, kind: &str) {
    error(call(&f.api, action, input).await, kind, 400);
}

#[tokio::test]
async fn organization_errors_map() {
    let f = fixture().await;
    let nobody = "m-00000000000000000000000000000000";
    fails(
        &f,
        "DescribeOrganization",
        json!({"OrganizationId": nobody}),
        "OrganizationNotFoundException",
    )
    .await;
    fails(
        &f,
        "CreateOrganization",
        json!({"Alias": "test-org"}),
        "NameAvailabilityException",
    )
    .await;
}

#[tokio::test]
async fn user_errors_map() {
    let f = fixture().await;
    let org = &f.org;
    fails(
        &f,
        "DescribeUser",
        json!({"OrganizationId": org, "UserId": "nobody"}),
        "EntityNotFoundException",
    )
    .await;
    let new = json!({"OrganizationId": org, "Name": "bob", "DisplayName": "Bob"});
    let (_, out) = call(&f.api, "CreateUser", new.clone()).await;
    let id = out["UserId"].as_str().unwrap().to_string();
    fails(&f, "CreateUser", new, "NameAvailabilityException").await;
    fails(
        &f,
        "ResetPassword",
        json!({"OrganizationId": org, "UserId": id, "Password": "short"}),
        "InvalidPasswordException",
    )
    .await;
    let reg = json!({"OrganizationId": org, "EntityId": id, "Email": "bob@example.test"});
    assert_eq!(call(&f.api, "RegisterToWorkMail", reg).await.0, 200);
    fails(
        &f,
        "DeleteUser",
        json!({"OrganizationId": org, "UserId": id}),
        "EntityStateException",
    )
    .await;
    fails(
        &f,
        "RegisterToWorkMail",
        json!({"OrganizationId": org, "EntityId": id, "Email": "bob@elsewhere.test"}),
        "EntityAlreadyRegisteredException",
    )
    .await;
}

#[tokio::test]
async fn group_and_alias_errors_map() {
    let f = fixture().await;
    let org = &f.org;
    fails(
        &f,
        "DescribeGroup",
        json!({"OrganizationId": org, "GroupId": "nobody"}),
        "EntityNotFoundException",
    )
    .await;
    let (_, out) = call(
        &f.api,
        "CreateGroup",
        json!({"OrganizationId": org, "Name": "team"}),
    )
    .await;
    let id = out["GroupId"].as_str().unwrap().to_string();
    fails(
        &f,
        "CreateGroup",
        json!({"OrganizationId": org, "Name": "team"}),
        "NameAvailabilityException",
    )
    .await;
    fails(
        &f,
        "AssociateMemberToGroup",
        json!({"OrganizationId": org, "GroupId": id, "MemberId": "nobody"}),
        "EntityNotFoundException",
    )
    .await;
    let alias = |a: &str| json!({"OrganizationId": org, "EntityId": id, "Alias": a});
    fails(
        &f,
        "CreateAlias",
        alias("t2@example.test"),
        "EntityStateException",
    )
    .await;
    let reg = json!({"OrganizationId": org, "EntityId": id, "Email": "team@example.test"});
    assert_eq!(call(&f.api, "RegisterToWorkMail", reg).await.0, 200);
    fails(
        &f,
        "CreateAlias",
        alias("t@unknown.test"),
        "MailDomainNotFoundException",
    )
    .await;
    let delete = json!({"OrganizationId": org, "GroupId": id});
    fails(&f, "DeleteGroup", delete, "EntityStateException").await;
}

#[tokio::test]
async fn resource_and_permission_errors_map() {
    let f = fixture().await;
    let org = &f.org;
    fails(
        &f,
        "DescribeResource",
        json!({"OrganizationId": org, "ResourceId": "nobody"}),
        "EntityNotFoundException",
    )
    .await;
    fails(
        &f,
        "CreateResource",
        json!({"OrganizationId": org, "Name": "x".repeat(21), "Type": "ROOM"}),
        "InvalidParameterException",
    )
    .await;
    fails(&f, "PutMailboxPermissions", json!({"OrganizationId": org, "EntityId": "nobody", "GranteeId": "nobody", "PermissionValues": ["FULL_ACCESS"]}), "EntityNotFoundException").await;
    fails(
        &f,
        "GetMailboxDetails",
        json!({"OrganizationId": org, "UserId": "nobody"}),
        "EntityNotFoundException",
    )
    .await;
}

#[tokio::test]
async fn domain_errors_map() {
    let f = fixture().await;
    let org = &f.org;
    fails(
        &f,
        "GetMailDomain",
        json!({"OrganizationId": org, "DomainName": "unknown.test"}),
        "MailDomainNotFoundException",
    )
    .await;
    fails(
        &f,
        "DeregisterMailDomain",
        json!({"OrganizationId": org, "DomainName": "example.test"}),
        "MailDomainInUseException",
    )
    .await;
    fails(
        &f,
        "RegisterMailDomain",
        json!({"OrganizationId": org, "DomainName": "bad_domain"}),
        "InvalidParameterException",
    )
    .await;
}

#[tokio::test]
async fn rule_and_role_errors_map() {
    let f = fixture().await;
    let org = &f.org;
    for i in 1..10 {
        let rule = json!({"OrganizationId": org, "Name": format!("r{i}"), "Effect": "DENY", "Description": ""});
        assert_eq!(call(&f.api, "PutAccessControlRule", rule).await.0, 200);
    }
    let rule = json!({"OrganizationId": org, "Name": "r10", "Effect": "DENY", "Description": ""});
    fails(&f, "PutAccessControlRule", rule, "LimitExceededException").await;
    fails(&f, "GetAccessControlEffect", json!({"OrganizationId": org, "IpAddress": "10.0.0.1", "Action": "IMAP", "UserId": "0000000000000000"}), "EntityNotFoundException").await;
    fails(
        &f,
        "GetImpersonationRole",
        json!({"OrganizationId": org, "ImpersonationRoleId": "nope"}),
        "ResourceNotFoundException",
    )
    .await;
    fails(
        &f,
        "AssumeImpersonationRole",
        json!({"OrganizationId": org, "ImpersonationRoleId": "nope"}),
        "ResourceNotFoundException",
    )
    .await;
    let role = json!({"OrganizationId": org, "Name": "r", "Type": "READ_ONLY", "Rules": [
        {"ImpersonationRuleId": "a", "Name": "a", "Effect": "ALLOW", "TargetUsers": ["nobody"]}]});
    fails(
        &f,
        "CreateImpersonationRole",
        role,
        "EntityNotFoundException",
    )
    .await;
}

#[tokio::test]
async fn tag_errors_map() {
    let f = fixture().await;
    let arn = format!("arn:aws:workmail:local:000000000000:organization/{}", f.org);
    fails(
        &f,
        "ListTagsForResource",
        json!({"ResourceARN": "arn:aws:workmail:local:000000000000:organization/m-0"}),
        "ResourceNotFoundException",
    )
    .await;
    let tags: Vec<Value> = (0..51)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    fails(
        &f,
        "TagResource",
        json!({"ResourceARN": arn, "Tags": tags}),
        "TooManyTagsException",
    )
    .await;
    let (status, out) = call(
        &f.api,
        "TagResource",
        json!({"ResourceARN": arn, "Tags": [{"Key": "team", "Value": "ops"}]}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let (_, out) = call(&f.api, "ListTagsForResource", json!({"ResourceARN": arn})).await;
    assert_eq!(out["Tags"], json!([{"Key": "team", "Value": "ops"}]));
}

#[test]
fn a_storage_failure_is_the_only_internal_error() {
    let e: super::error::ApiError = AccessError::Backend("disk".into()).into();
    assert_eq!((e.kind, e.status), ("InternalFailure", 500));
    let e: super::error::ApiError = crate::directory::DirectoryError::Backend("disk".into()).into();
    assert_eq!((e.kind, e.status), ("DirectoryUnavailableException", 400));
}

#[tokio::test]
async fn inbound_dmarc_enforcement_is_on_by_default_and_can_be_suspended() {
    let f = fixture().await;
    let describe = |org: String| {
        let api = &f.api;
        async move {
            call(
                api,
                "DescribeInboundDmarcSettings",
                json!({"OrganizationId": org}),
            )
            .await
        }
    };
    assert_eq!(
        describe(f.org.clone()).await,
        (200, json!({"Enforced": true}))
    );
    let put = call(
        &f.api,
        "PutInboundDmarcSettings",
        json!({"OrganizationId": f.org, "Enforced": false}),
    )
    .await;
    assert_eq!(put, (200, json!({})));
    assert_eq!(
        describe(f.org.clone()).await,
        (200, json!({"Enforced": false}))
    );
    error(
        call(
            &f.api,
            "PutInboundDmarcSettings",
            json!({"OrganizationId": f.org}),
        )
        .await,
        "ValidationException",
        400,
    );
    error(
        describe("m-00000000000000000000000000000000".into()).await,
        "OrganizationNotFoundException",
        400,
    );
}

#[tokio::test]
async fn the_head_is_checked_before_the_body_is_read_and_bodies_are_capped() {
    use crate::net::http::Handler;
    let f = fixture().await;
    let t = "WorkMailService.ListOrganizations";
    let mut head = signed(t, b"{}", KEY_ID, SECRET, now());
    head.body = bytes::Bytes::new();
    let forty_mib = 40 * 1024 * 1024;
    assert_eq!(
        f.api.admit(&head, forty_mib).unwrap(),
        super::api::MAX_BODY,
        "a known key gets at most 1 MiB of body"
    );
    assert_eq!(
        f.api.admit(&head, 4096).unwrap(),
        4096,
        "a lower route limit stays"
    );
    let status = |h: &HttpRequest| {
        let r = f.api.admit(h, forty_mib).unwrap_err();
        let kind = r
            .headers
            .iter()
            .find(|(k, _)| *k == "x-amzn-errortype")
            .map(|(_, v)| v.clone());
        (r.status, kind.unwrap_or_default())
    };
    let mut unsigned = head.clone();
    unsigned.headers.retain(|(k, _)| k != "authorization");
    assert_eq!(
        status(&unsigned),
        (403, "MissingAuthenticationTokenException".into())
    );
    let unknown = signed(t, b"", "MGAKNOBODYNOBODY0000", SECRET, now());
    assert_eq!(
        status(&unknown),
        (400, "UnrecognizedClientException".into())
    );
    let mut garbled = head.clone();
    for (k, v) in &mut garbled.headers {
        if k == "authorization" {
            *v = "Basic dXNlcjpwYXNz".into();
        }
    }
    assert_eq!(
        status(&garbled),
        (400, "IncompleteSignatureException".into())
    );
}

/// Calls `action` and asserts a 200; returns the output.
async fn ok(f: &Fixture, action: &str, input: Value) -> Value {
    let (status, out) = call(&f.api, action, input).await;
    assert_eq!(status, 200, "{action}: {out}");
    out
}

/// `base` with the members of `extra` added or replaced.
fn merged(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    if let (Some(to), Value::Object(from)) = (v.as_object_mut(), extra) {
        to.extend(from);
    }
    v
}

/// Asserts each `(extra members, error type)` of `cases` on `action` over `base`.
async fn fails_each(f: &Fixture, action: &str, base: &Value, cases: Vec<(Value, &str)>) {
    for (extra, kind) in cases {
        let input = merged(base, extra);
        let (status, out) = call(&f.api, action, input.clone()).await;
        assert_eq!(
            (status, out["__type"].as_str()),
            (400, Some(kind)),
            "{action} {input}: {out}"
        );
    }
}

/// Creates an entity with `action` and returns the id found under `id_member`.
async fn created(f: &Fixture, action: &str, input: Value, id_member: &str) -> String {
    let out = ok(f, action, merged(&json!({"OrganizationId": f.org}), input)).await;
    out[id_member].as_str().unwrap_or_default().to_string()
}

/// A registered user `name@example.test` in the fixture's organization; its id.
async fn registered_user(f: &Fixture, name: &str) -> String {
    let user = json!({"Name": name, "DisplayName": name});
    let id = created(f, "CreateUser", user, "UserId").await;
    let email = format!("{name}@example.test");
    let reg = json!({"OrganizationId": f.org, "EntityId": id, "Email": email});
    ok(f, "RegisterToWorkMail", reg).await;
    id
}

#[tokio::test]
async fn update_group_sets_and_keeps_gal_visibility() {
    let f = fixture().await;
    let id = created(&f, "CreateGroup", json!({"Name": "g"}), "GroupId").await;
    let base = json!({"OrganizationId": f.org, "GroupId": id});
    let hidden = json!({"HiddenFromGlobalAddressList": true});
    assert_eq!(
        ok(&f, "UpdateGroup", merged(&base, hidden)).await,
        json!({})
    );
    ok(&f, "UpdateGroup", base.clone()).await;
    let g = ok(
        &f,
        "DescribeGroup",
        json!({"OrganizationId": f.org, "GroupId": "g"}),
    )
    .await;
    assert_eq!(
        g["HiddenFromGlobalAddressList"], true,
        "set, then left alone by an update without the member"
    );
    let cases = vec![
        (json!({"GroupId": "nobody"}), "EntityNotFoundException"),
        (
            json!({"HiddenFromGlobalAddressList": "yes"}),
            "ValidationException",
        ),
    ];
    fails_each(&f, "UpdateGroup", &base, cases).await;
    ok(&f, "DeleteGroup", base.clone()).await;
    fails_each(
        &f,
        "UpdateGroup",
        &base,
        vec![(json!({}), "EntityStateException")],
    )
    .await;
}

#[tokio::test]
async fn update_resource_replaces_what_it_names() {
    let f = fixture().await;
    let room = json!({"Name": "room", "Type": "ROOM", "Description": "Big"});
    let id = created(&f, "CreateResource", room, "ResourceId").await;
    created(
        &f,
        "CreateResource",
        json!({"Name": "taken", "Type": "ROOM"}),
        "ResourceId",
    )
    .await;
    let base = json!({"OrganizationId": f.org, "ResourceId": id});
    let describe = || ok(&f, "DescribeResource", base.clone());
    let booking = json!({"AutoAcceptRequests": true, "AutoDeclineRecurringRequests": true, "AutoDeclineConflictingRequests": false});
    let all = json!({"Name": "hall", "Type": "EQUIPMENT", "Description": "", "HiddenFromGlobalAddressList": true, "BookingOptions": booking});
    ok(&f, "UpdateResource", merged(&base, all)).await;
    let r = describe().await;
    assert_eq!(
        (&r["Name"], &r["Type"], r.get("Description")),
        (&json!("hall"), &json!("EQUIPMENT"), None),
        "{r}"
    );
    assert_eq!(
        (&r["HiddenFromGlobalAddressList"], &r["BookingOptions"]),
        (&json!(true), &booking)
    );
    // Without a delegate a resource must accept requests itself; an absent member is false.
    let manual = json!({"BookingOptions": {"AutoDeclineConflictingRequests": true}});
    let refused = vec![(manual.clone(), "InvalidConfigurationException")];
    fails_each(&f, "UpdateResource", &base, refused).await;
    assert_eq!(
        describe().await["BookingOptions"],
        booking,
        "a refused update changes nothing"
    );
    let user = registered_user(&f, "delegate").await;
    ok(
        &f,
        "AssociateDelegateToResource",
        merged(&base, json!({"EntityId": user})),
    )
    .await;
    ok(&f, "UpdateResource", merged(&base, manual)).await;
    assert_eq!(
        describe().await["BookingOptions"],
        json!({"AutoAcceptRequests": false, "AutoDeclineRecurringRequests": false, "AutoDeclineConflictingRequests": true})
    );
    let cases = vec![
        (json!({"Name": "TAKEN"}), "NameAvailabilityException"),
        (json!({"Name": "x".repeat(21)}), "InvalidParameterException"),
        (
            json!({"Description": "d".repeat(65)}),
            "InvalidParameterException",
        ),
        (json!({"Type": "KITCHEN"}), "ValidationException"),
        (json!({"ResourceId": "nobody"}), "EntityNotFoundException"),
    ];
    fails_each(&f, "UpdateResource", &base, cases).await;
}

#[tokio::test]
async fn primary_address_changes_keep_the_old_one_as_an_alias() {
    let f = fixture().await;
    let org = &f.org;
    let id = registered_user(&f, "ann").await;
    let base = json!({"OrganizationId": org, "EntityId": id});
    let to = |email: &str| merged(&base, json!({"Email": email}));
    let out = ok(&f, "UpdatePrimaryEmailAddress", to("Ann.New@Example.test")).await;
    assert_eq!(out, json!({}));
    let u = ok(
        &f,
        "DescribeUser",
        json!({"OrganizationId": org, "UserId": id}),
    )
    .await;
    assert_eq!(u["Email"], "ann.new@example.test");
    let aliases = ok(&f, "ListAliases", base.clone()).await;
    assert_eq!(aliases["Aliases"], json!(["ann@example.test"]));
    for address in ["ann@example.test", "ANN.NEW@example.test"] {
        let e = ok(
            &f,
            "DescribeEntity",
            json!({"OrganizationId": org, "Email": address}),
        )
        .await;
        assert_eq!(
            e,
            json!({"EntityId": id, "Name": "ann", "Type": "USER"}),
            "{address}"
        );
    }
    registered_user(&f, "bo").await;
    let cases = vec![
        (
            json!({"Email": "bo@example.test"}),
            "EmailAddressInUseException",
        ),
        (
            json!({"Email": "ann@elsewhere.test"}),
            "MailDomainNotFoundException",
        ),
        (
            json!({"Email": "not-an-address"}),
            "InvalidParameterException",
        ),
        (
            json!({"Email": "x@example.test", "EntityId": "nobody"}),
            "EntityNotFoundException",
        ),
        (json!({}), "ValidationException"),
    ];
    fails_each(&f, "UpdatePrimaryEmailAddress", &base, cases).await;
    ok(&f, "DeregisterFromWorkMail", base.clone()).await;
    let disabled = vec![(
        json!({"Email": "ann3@example.test"}),
        "EntityStateException",
    )];
    fails_each(&f, "UpdatePrimaryEmailAddress", &base, disabled).await;
    let cases = vec![
        (
            json!({"Email": "nobody@example.test"}),
            "EntityNotFoundException",
        ),
        (json!({"Email": "nobody"}), "InvalidParameterException"),
        (
            json!({"OrganizationId": "m-00000000000000000000000000000000"}),
            "OrganizationNotFoundException",
        ),
        (json!({"Email": null}), "ValidationException"),
    ];
    let describe = json!({"OrganizationId": org, "Email": "ann@example.test"});
    fails_each(&f, "DescribeEntity", &describe, cases).await;
}

#[tokio::test]
async fn list_groups_for_entity_filters_and_pages() {
    let f = fixture().await;
    let user = registered_user(&f, "cy").await;
    let mut want = Vec::new();
    for name in ["eng-a", "eng-b", "eng-c", "ops"] {
        let id = created(&f, "CreateGroup", json!({"Name": name}), "GroupId").await;
        let member = json!({"OrganizationId": f.org, "GroupId": id, "MemberId": user});
        ok(&f, "AssociateMemberToGroup", member).await;
        want.push(json!({"GroupId": id, "GroupName": name}));
    }
    created(&f, "CreateGroup", json!({"Name": "eng-other"}), "GroupId").await;
    want.sort_by_key(|g| g["GroupId"].as_str().unwrap_or_default().to_string());
    let base = json!({"OrganizationId": f.org, "EntityId": user});
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut page = merged(
        &base,
        json!({"EntityId": "cy@example.test", "MaxResults": 3}),
    );
    loop {
        let out = ok(&f, "ListGroupsForEntity", page.clone()).await;
        pages += 1;
        seen.extend(out["Groups"].as_array().cloned().unwrap_or_default());
        match out.get("NextToken") {
            Some(t) => page["NextToken"] = t.clone(),
            None => break,
        }
    }
    assert_eq!((seen, pages), (want, 2));
    let filter = merged(&base, json!({"Filters": {"GroupNamePrefix": "ENG-"}}));
    let out = ok(&f, "ListGroupsForEntity", filter).await;
    let mut names: Vec<&str> = out["Groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["GroupName"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["eng-a", "eng-b", "eng-c"]);
    let room = created(
        &f,
        "CreateResource",
        json!({"Name": "room", "Type": "ROOM"}),
        "ResourceId",
    )
    .await;
    let cases = vec![
        (json!({"MaxResults": 101}), "InvalidParameterException"),
        (json!({"NextToken": "garbage"}), "InvalidParameterException"),
        (json!({"EntityId": room}), "EntityNotFoundException"),
        (
            json!({"Filters": {"GroupNamePrefix": 1}}),
            "ValidationException",
        ),
    ];
    fails_each(&f, "ListGroupsForEntity", &base, cases).await;
    ok(&f, "DeregisterFromWorkMail", base.clone()).await;
    ok(
        &f,
        "DeleteUser",
        json!({"OrganizationId": f.org, "UserId": user}),
    )
    .await;
    fails_each(
        &f,
        "ListGroupsForEntity",
        &base,
        vec![(json!({}), "EntityStateException")],
    )
    .await;
}

mod pats;

#[tokio::test]
async fn retention_policy_put_get_delete_and_errors() {
    let f = fixture().await;
    let org = json!({"OrganizationId": f.org});
    fails(
        &f,
        "GetDefaultRetentionPolicy",
        org.clone(),
        "EntityNotFoundException",
    )
    .await;
    let inbox = json!([{"Name": "INBOX", "Action": "DELETE", "Period": 30}]);
    let put = merged(
        &org,
        json!({"Name": "default", "FolderConfigurations": inbox}),
    );
    ok(&f, "PutRetentionPolicy", put.clone()).await;
    let got = ok(&f, "GetDefaultRetentionPolicy", org.clone()).await;
    let id = got["Id"].as_str().unwrap().to_string();
    assert_eq!(got["Name"], "default");
    assert_eq!(got["FolderConfigurations"], inbox);
    assert!(got.get("Description").is_none(), "{got}");
    // A Put without an Id, or with this one, replaces it; another Id is refused.
    let junk = json!([{"Name": "JUNK_EMAIL", "Action": "PERMANENTLY_DELETE", "Period": 1},
        {"Name": "SENT_ITEMS", "Action": "NONE"}]);
    let again = merged(
        &put,
        json!({"Description": "junk only", "FolderConfigurations": junk}),
    );
    ok(&f, "PutRetentionPolicy", again.clone()).await;
    ok(&f, "PutRetentionPolicy", merged(&again, json!({"Id": id}))).await;
    let got = ok(&f, "GetDefaultRetentionPolicy", org.clone()).await;
    assert_eq!(
        (
            &got["Id"],
            &got["Description"],
            &got["FolderConfigurations"]
        ),
        (&json!(id), &json!("junk only"), &junk)
    );
    fails(
        &f,
        "PutRetentionPolicy",
        merged(&put, json!({"Id": "other"})),
        "LimitExceededException",
    )
    .await;
    let nobody = json!({"OrganizationId": "m-00000000000000000000000000000000"});
    fails_each(
        &f,
        "PutRetentionPolicy",
        &put,
        vec![
            (json!({"Name": "with space"}), "InvalidParameterException"),
            (json!({"Id": "x".repeat(65)}), "InvalidParameterException"),
            (json!({"Description": "d".repeat(257)}), "InvalidParameterException"),
            (json!({"FolderConfigurations": [{"Name": "OUTBOX", "Action": "DELETE", "Period": 1}]}), "InvalidParameterException"),
            (json!({"FolderConfigurations": [{"Name": "INBOX", "Action": "MOVE", "Period": 1}]}), "InvalidParameterException"),
            (json!({"FolderConfigurations": [{"Name": "INBOX", "Action": "DELETE", "Period": 731}]}), "InvalidParameterException"),
            (json!({"FolderConfigurations": [{"Name": "INBOX", "Action": "DELETE"}]}), "InvalidParameterException"),
            (json!({"FolderConfigurations": [{"Name": "INBOX", "Action": "NONE"}, {"Name": "INBOX", "Action": "NONE"}]}), "InvalidParameterException"),
            (json!({"FolderConfigurations": [{"Name": "INBOX", "Action": "NONE", "Period": "x"}]}), "ValidationException"),
            (nobody.clone(), "OrganizationNotFoundException"),
        ],
    )
    .await;
    let unchanged = ok(&f, "GetDefaultRetentionPolicy", org.clone()).await;
    assert_eq!(unchanged, got, "a refused Put changes nothing");
    fails(
        &f,
        "GetDefaultRetentionPolicy",
        nobody.clone(),
        "OrganizationNotFoundException",
    )
    .await;
    // Delete: another Id changes nothing, this one removes it, again is a no-op.
    ok(
        &f,
        "DeleteRetentionPolicy",
        merged(&org, json!({"Id": "other"})),
    )
    .await;
    ok(&f, "GetDefaultRetentionPolicy", org.clone()).await;
    ok(&f, "DeleteRetentionPolicy", merged(&org, json!({"Id": id}))).await;
    fails(
        &f,
        "GetDefaultRetentionPolicy",
        org.clone(),
        "EntityNotFoundException",
    )
    .await;
    ok(&f, "DeleteRetentionPolicy", merged(&org, json!({"Id": id}))).await;
    fails(
        &f,
        "DeleteRetentionPolicy",
        merged(&org, json!({"Id": "bad id"})),
        "InvalidParameterException",
    )
    .await;
    fails(
        &f,
        "DeleteRetentionPolicy",
        merged(&nobody, json!({"Id": id})),
        "OrganizationNotFoundException",
    )
    .await;
    fails(&f, "DeleteRetentionPolicy", org, "ValidationException").await;
    // A Put with an Id while none exists creates it under that Id.
    let chosen = merged(&put, json!({"Id": "my-policy"}));
    ok(&f, "PutRetentionPolicy", chosen).await;
    let got = ok(
        &f,
        "GetDefaultRetentionPolicy",
        json!({"OrganizationId": f.org}),
    )
    .await;
    assert_eq!(got["Id"], "my-policy");
}

#[test]
fn an_unreachable_store_is_a_retryable_service_unavailable() {
    let e: crate::admin::error::ApiError =
        crate::store::StoreError::Unavailable("connection refused".into()).into();
    assert_eq!((e.kind, e.status), ("ServiceUnavailable", 503));
    let e: crate::admin::error::ApiError = crate::store::StoreError::Io("disk".into()).into();
    assert_eq!(e.status, 500);
}
