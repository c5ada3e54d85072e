//! GetAccessControlEffect: parameter rules and agreement with the live path.

use super::support::*;
use crate::access::{AccessControlRuleInput, AccessError, Effect, Principal, Protocol};

fn kind(r: Result<crate::access::Decision, AccessError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.aws_type(),
    }
}

#[test]
fn exactly_one_of_user_and_role() {
    let (_, engine) = engine();
    let role = allow_all_role(&engine);
    let e = |u: Option<&str>, r: Option<&str>| {
        kind(engine.get_access_control_effect(ORG, "192.0.2.1", "EWS", u, r))
    };
    assert_eq!(e(None, None), "InvalidParameterException");
    assert_eq!(e(Some(ALICE), Some(&role)), "InvalidParameterException");
    assert_eq!(e(Some(ALICE), None), "ok");
    assert_eq!(e(None, Some(&role)), "ok");
}

#[test]
fn role_only_with_ews() {
    let (_, engine) = engine();
    let role = allow_all_role(&engine);
    for action in [
        "IMAP",
        "SMTP",
        "AutoDiscover",
        "ActiveSync",
        "WebMail",
        "WindowsOutlook",
    ] {
        assert_eq!(
            kind(engine.get_access_control_effect(ORG, "192.0.2.1", action, None, Some(&role))),
            "InvalidParameterException",
            "{action}"
        );
    }
}

#[test]
fn parameter_errors() {
    let (_, engine) = engine();
    let e = |org: &str, ip: &str, action: &str, u: Option<&str>, r: Option<&str>| {
        kind(engine.get_access_control_effect(org, ip, action, u, r))
    };
    assert_eq!(
        e(ORG, "not-an-ip", "IMAP", Some(ALICE), None),
        "InvalidParameterException"
    );
    assert_eq!(
        e(ORG, "192.0.2.1/32", "IMAP", Some(ALICE), None),
        "InvalidParameterException"
    );
    assert_eq!(
        e(ORG, "192.0.2.1", "POP3", Some(ALICE), None),
        "InvalidParameterException"
    );
    assert_eq!(
        e(ORG, "192.0.2.1", "IMAP", Some("short"), None),
        "InvalidParameterException"
    );
    assert_eq!(
        e(ORG, "192.0.2.1", "EWS", None, Some("bad id!")),
        "InvalidParameterException"
    );
    assert_eq!(
        e(ORG, "192.0.2.1", "EWS", None, Some("no-such-role")),
        "ResourceNotFoundException"
    );
    assert_eq!(
        e(OTHER_ORG, "192.0.2.1", "IMAP", Some(ALICE), None),
        "OrganizationNotFoundException"
    );
    assert_eq!(e(ORG, "2001:db8::1", "imap", Some(ALICE), None), "ok");
}

#[test]
fn agrees_with_live_path() {
    let (_, engine) = engine();
    let role = allow_all_role(&engine);
    let deny_role_outside = AccessControlRuleInput {
        impersonation_role_ids: vec![role.clone()],
        not_ip_ranges: strings(&["10.0.0.0/8"]),
        ..rule("role-internal-only", Effect::Deny)
    };
    engine
        .put_access_control_rule(ORG, deny_role_outside, T0)
        .unwrap();
    for ip in ["10.1.1.1", "192.0.2.1", "::ffff:10.0.0.5"] {
        let api = engine
            .get_access_control_effect(ORG, ip, "EWS", None, Some(&role))
            .unwrap();
        let live = engine.evaluate(ORG, &req(ip, Protocol::Ews, Principal::Role(&role)));
        assert_eq!(api, live, "{ip}");
    }
    let api = engine
        .get_access_control_effect(ORG, "192.0.2.1", "EWS", None, Some(&role))
        .unwrap();
    assert_eq!(api.effect, Effect::Deny);
    assert_eq!(
        api.matched_rules,
        strings(&["default", "role-internal-only"])
    );
    assert_eq!(api.deciding_rule.as_deref(), Some("role-internal-only"));
}
