//! Access control rules through the engine: default rule, empty set, replace, limit,
//! validation of every field, and live effect of changes.

use super::support::*;
use crate::access::{
    AccessControlRuleInput, AccessError, AccessLimits, DEFAULT_RULE_DESCRIPTION, DEFAULT_RULE_NAME,
    Effect, Principal, Protocol,
};

fn invalid(err: Result<(), AccessError>) -> bool {
    matches!(err, Err(AccessError::InvalidParameter(_)))
}

#[test]
fn new_organization_has_default_allow_all_rule() {
    let (_, engine) = engine();
    let rules = engine.list_access_control_rules(ORG).unwrap();
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(r.name, DEFAULT_RULE_NAME);
    assert_eq!(r.description, DEFAULT_RULE_DESCRIPTION);
    assert_eq!(r.effect, Effect::Allow);
    assert!(r.ip_ranges.is_empty() && r.actions.is_empty() && r.user_ids.is_empty());
    assert_eq!((r.date_created, r.date_modified), (T0, T0));
    for (ip, action, who) in [
        ("192.0.2.1", Protocol::Imap, Principal::User(ALICE)),
        ("2001:db8::1", Protocol::Smtp, Principal::User(BOB)),
        (
            "::ffff:10.0.0.1",
            Protocol::Ews,
            Principal::Role("any-role"),
        ),
    ] {
        let d = engine.evaluate(ORG, &req(ip, action, who));
        assert!(d.allowed());
        assert_eq!(d.deciding_rule.as_deref(), Some(DEFAULT_RULE_NAME));
        assert_eq!(d.matched_rules, vec![DEFAULT_RULE_NAME.to_owned()]);
    }
}

#[test]
fn deleting_every_rule_denies_all() {
    let (_, engine) = engine();
    engine
        .delete_access_control_rule(ORG, DEFAULT_RULE_NAME)
        .unwrap();
    assert!(engine.list_access_control_rules(ORG).unwrap().is_empty());
    let d = engine.evaluate(
        ORG,
        &req("192.0.2.1", Protocol::Imap, Principal::User(ALICE)),
    );
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.matched_rules.is_empty());
    assert_eq!(d.deciding_rule, None);
    // Re-running org creation does not quietly reopen a locked organization.
    assert!(!engine.create_organization_defaults(ORG, T0 + 1).unwrap());
    assert!(engine.list_access_control_rules(ORG).unwrap().is_empty());
}

#[test]
fn deleting_an_unknown_rule_is_not_an_error_and_changes_nothing() {
    let (_, engine) = engine();
    let generation = engine.generation();
    engine.delete_access_control_rule(ORG, "nope").unwrap();
    assert_eq!(engine.generation(), generation);
    assert_eq!(engine.list_access_control_rules(ORG).unwrap().len(), 1);
}

#[test]
fn put_with_existing_name_replaces_keeping_date_created_and_position() {
    let (_, engine) = engine();
    engine
        .put_access_control_rule(ORG, rule("office", Effect::Deny), T0 + 10)
        .unwrap();
    engine
        .put_access_control_rule(ORG, rule("late", Effect::Allow), T0 + 20)
        .unwrap();
    let replacement = AccessControlRuleInput {
        description: "office only".into(),
        ip_ranges: strings(&["192.0.2.0/24"]),
        ..rule("office", Effect::Allow)
    };
    engine
        .put_access_control_rule(ORG, replacement, T0 + 30)
        .unwrap();
    let rules = engine.list_access_control_rules(ORG).unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["default", "office", "late"]);
    let office = &rules[1];
    assert_eq!(office.effect, Effect::Allow);
    assert_eq!(office.description, "office only");
    assert_eq!(office.ip_ranges, strings(&["192.0.2.0/24"]));
    assert_eq!(office.date_created, T0 + 10);
    assert_eq!(office.date_modified, T0 + 30);
}

#[test]
fn rule_count_limit_applies_to_new_names_only() {
    let (_, engine) = engine_with(AccessLimits {
        max_rules_per_org: 3,
        ..AccessLimits::default()
    });
    for name in ["a", "b"] {
        engine
            .put_access_control_rule(ORG, rule(name, Effect::Allow), T0)
            .unwrap();
    }
    let err = engine
        .put_access_control_rule(ORG, rule("c", Effect::Allow), T0)
        .unwrap_err();
    assert!(matches!(err, AccessError::LimitExceeded(_)));
    assert_eq!(err.aws_type(), "LimitExceededException");
    // Replacing at the limit is fine.
    engine
        .put_access_control_rule(ORG, rule("b", Effect::Deny), T0)
        .unwrap();
    assert_eq!(engine.list_access_control_rules(ORG).unwrap().len(), 3);
}

#[test]
fn default_limit_is_ten_rules() {
    let (_, engine) = engine();
    for i in 1..10 {
        engine
            .put_access_control_rule(ORG, rule(&format!("r{i}"), Effect::Allow), T0)
            .unwrap();
    }
    assert!(matches!(
        engine.put_access_control_rule(ORG, rule("r10", Effect::Allow), T0),
        Err(AccessError::LimitExceeded(_))
    ));
}

#[test]
fn field_validation() {
    let (_, engine) = engine();
    let put = |input: AccessControlRuleInput| engine.put_access_control_rule(ORG, input, T0);
    let base = || rule("r", Effect::Allow);

    // Name: 1-64 of [a-zA-Z0-9_-].
    assert!(invalid(put(rule("", Effect::Allow))));
    assert!(invalid(put(rule(&"n".repeat(65), Effect::Allow))));
    assert!(invalid(put(rule("bad name", Effect::Allow))));
    assert!(invalid(put(rule("bad.name", Effect::Allow))));
    put(rule(&"n".repeat(64), Effect::Allow)).unwrap();
    put(rule("Ok_name-1", Effect::Allow)).unwrap();

    // Description: 0-255 chars of U+0020..U+00FF.
    let desc = |d: String| AccessControlRuleInput {
        description: d,
        ..base()
    };
    assert!(invalid(put(desc("d".repeat(256)))));
    assert!(invalid(put(desc("line\nbreak".into()))));
    assert!(invalid(put(desc("\u{0100}".into()))));
    put(desc("é".repeat(255))).unwrap();

    // IP ranges: CIDR v4/v6, at most 1024.
    let ips = |v: Vec<String>| AccessControlRuleInput {
        ip_ranges: v,
        ..base()
    };
    let not_ips = |v: Vec<String>| AccessControlRuleInput {
        not_ip_ranges: v,
        ..base()
    };
    for bad in [
        "10.0.0.1",
        "10.0.0.0/33",
        "2001:db8::/129",
        "010.0.0.0/8",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "10.0.0/8",
        "fe80::1%eth0/64",
        "garbage",
        "",
    ] {
        assert!(invalid(put(ips(strings(&[bad])))), "{bad}");
        assert!(invalid(put(not_ips(strings(&[bad])))), "{bad}");
    }
    let many: Vec<String> = (0..1025)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    assert!(invalid(put(ips(many[..1025].to_vec()))));
    put(ips(many[..1024].to_vec())).unwrap();
    put(ips(strings(&[
        "0.0.0.0/0",
        "::/0",
        "2001:db8::/32",
        "192.0.2.7/32",
        "::1/128",
    ])))
    .unwrap();

    // Actions: known values only, at most 10, case-insensitive, stored canonical.
    let acts = |v: &[&str]| AccessControlRuleInput {
        actions: strings(v),
        ..base()
    };
    let not_acts = |v: &[&str]| AccessControlRuleInput {
        not_actions: strings(v),
        ..base()
    };
    assert!(invalid(put(acts(&["POP3"]))));
    assert!(invalid(put(acts(&["IncomingEmail"]))));
    assert!(invalid(put(not_acts(&["OutgoingEmail"]))));
    assert!(invalid(put(acts(&["IMAP"; 11]))));
    put(acts(&["imap", "Autodiscover", "ews", "WindowsOutlook"])).unwrap();
    let stored = engine.list_access_control_rules(ORG).unwrap();
    let r = stored.iter().find(|r| r.name == "r").unwrap();
    assert_eq!(
        r.actions,
        vec![
            Protocol::Imap,
            Protocol::AutoDiscover,
            Protocol::Ews,
            Protocol::WindowsOutlook
        ]
    );

    // UserIds: 12-256 chars, at most 10.
    let users = |v: Vec<String>| AccessControlRuleInput {
        not_user_ids: v,
        ..base()
    };
    assert!(invalid(put(users(strings(&["short-11chr"])))));
    assert!(invalid(put(users(vec!["u".repeat(257)]))));
    assert!(invalid(put(users(vec![ALICE.to_owned(); 11]))));
    put(users(vec![ALICE.to_owned(); 10])).unwrap();

    // ImpersonationRoleIds: 1-64 of [a-zA-Z0-9_-], at most 10.
    let roles = |v: Vec<String>| AccessControlRuleInput {
        impersonation_role_ids: v,
        ..base()
    };
    assert!(invalid(put(roles(strings(&[""])))));
    assert!(invalid(put(roles(strings(&["has space"])))));
    assert!(invalid(put(roles(vec!["r".repeat(65)]))));
    assert!(invalid(put(roles(vec!["r".to_owned(); 11]))));
    put(roles(strings(&["r", "role_2-x"]))).unwrap();

    // Errors are WorkMail's exception.
    let err = put(rule("", Effect::Allow)).unwrap_err();
    assert_eq!(err.aws_type(), "InvalidParameterException");
    assert_eq!(err.http_status(), 400);
}

#[test]
fn failed_validation_changes_nothing() {
    let (_, engine) = engine();
    let generation = engine.generation();
    let bad = AccessControlRuleInput {
        ip_ranges: strings(&["nope"]),
        ..rule("x", Effect::Deny)
    };
    assert!(engine.put_access_control_rule(ORG, bad, T0).is_err());
    assert_eq!(engine.generation(), generation);
    assert_eq!(engine.list_access_control_rules(ORG).unwrap().len(), 1);
}

#[test]
fn deny_wins_and_deciding_rule_is_first_deny() {
    let (_, engine) = engine();
    for (name, effect) in [
        ("allow-2", Effect::Allow),
        ("deny-1", Effect::Deny),
        ("deny-2", Effect::Deny),
    ] {
        let input = AccessControlRuleInput {
            actions: strings(&["IMAP"]),
            ..rule(name, effect)
        };
        engine.put_access_control_rule(ORG, input, T0).unwrap();
    }
    let d = engine.evaluate(
        ORG,
        &req("192.0.2.1", Protocol::Imap, Principal::User(ALICE)),
    );
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(
        d.matched_rules,
        strings(&["default", "allow-2", "deny-1", "deny-2"])
    );
    assert_eq!(d.deciding_rule.as_deref(), Some("deny-1"));
    let d = engine.evaluate(
        ORG,
        &req("192.0.2.1", Protocol::Smtp, Principal::User(ALICE)),
    );
    assert!(d.allowed());
    assert_eq!(d.deciding_rule.as_deref(), Some("default"));
}

#[test]
fn principal_families() {
    let (_, engine) = engine();
    engine.delete_access_control_rule(ORG, "default").unwrap();
    let only_alice = AccessControlRuleInput {
        user_ids: strings(&[ALICE]),
        ..rule("only-alice", Effect::Allow)
    };
    let not_bob = AccessControlRuleInput {
        not_user_ids: strings(&[BOB]),
        ..rule("not-bob", Effect::Allow)
    };
    let role_x = AccessControlRuleInput {
        impersonation_role_ids: strings(&["role-x"]),
        ..rule("role-x", Effect::Allow)
    };
    for input in [only_alice, not_bob, role_x] {
        engine.put_access_control_rule(ORG, input, T0).unwrap();
    }
    let matched = |who| {
        engine
            .evaluate(ORG, &req("192.0.2.1", Protocol::Ews, who))
            .matched_rules
    };
    assert_eq!(
        matched(Principal::User(ALICE)),
        strings(&["only-alice", "not-bob"])
    );
    assert!(matched(Principal::User(BOB)).is_empty());
    assert_eq!(matched(Principal::User(CAROL)), strings(&["not-bob"]));
    // A role never matches UserIds, always passes NotUserIds.
    assert_eq!(
        matched(Principal::Role("role-x")),
        strings(&["not-bob", "role-x"])
    );
    assert_eq!(matched(Principal::Role("role-y")), strings(&["not-bob"]));
}

#[test]
fn ip_conditions_with_mapped_sources_and_ipv6() {
    let (_, engine) = engine();
    engine.delete_access_control_rule(ORG, "default").unwrap();
    let office = AccessControlRuleInput {
        ip_ranges: strings(&["192.0.2.0/24", "2001:db8:1::/48"]),
        not_ip_ranges: strings(&["::ffff:192.0.2.128/121"]),
        ..rule("office", Effect::Allow)
    };
    engine.put_access_control_rule(ORG, office, T0).unwrap();
    let allowed = |ip: &str| {
        engine
            .evaluate(ORG, &req(ip, Protocol::Imap, Principal::User(ALICE)))
            .allowed()
    };
    assert!(allowed("192.0.2.1"));
    assert!(allowed("::ffff:192.0.2.1"));
    assert!(!allowed("192.0.2.129"));
    assert!(!allowed("::ffff:192.0.2.200"));
    assert!(allowed("2001:db8:1:ffff::1"));
    assert!(!allowed("2001:db8:2::1"));
    assert!(!allowed("198.51.100.1"));
}

#[test]
fn changes_are_visible_to_the_next_evaluation_and_move_the_generation() {
    let (_, engine) = engine();
    let request = req("203.0.113.9", Protocol::Smtp, Principal::User(BOB));
    assert!(engine.evaluate(ORG, &request).allowed());
    let g = engine.generation();
    let block = AccessControlRuleInput {
        user_ids: strings(&[BOB]),
        ..rule("block-bob", Effect::Deny)
    };
    engine.put_access_control_rule(ORG, block, T0).unwrap();
    assert!(engine.generation() > g);
    let d = engine.evaluate(ORG, &request);
    assert!(!d.allowed());
    assert_eq!(d.deciding_rule.as_deref(), Some("block-bob"));
    engine.delete_access_control_rule(ORG, "block-bob").unwrap();
    assert!(engine.evaluate(ORG, &request).allowed());
}
