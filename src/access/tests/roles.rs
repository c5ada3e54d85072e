//! Impersonation roles: rule evaluation, target resolution, idempotent creation,
//! limits, validation and versioning.

use super::support::*;
use crate::access::{
    AccessError, AccessLimits, Effect, ImpersonationRoleInput, MatchedImpersonationRule, RoleType,
};

fn create(
    engine: &crate::access::AccessEngine,
    input: ImpersonationRoleInput,
) -> Result<String, AccessError> {
    engine.create_impersonation_role(ORG, input, None, &Directory, T0)
}

fn effect(engine: &crate::access::AccessEngine, role: &str, target: &str) -> Effect {
    engine
        .get_impersonation_role_effect(ORG, role, target, &Directory)
        .unwrap()
        .effect
}

#[test]
fn deny_wins_over_allow() {
    let (_, engine) = engine();
    let role = create(
        &engine,
        role_input(vec![
            imp_rule("everyone", Effect::Allow, &[], &[]),
            imp_rule("not-bob", Effect::Deny, &["bob@example.test"], &[]),
        ]),
    )
    .unwrap();
    let bob = engine
        .get_impersonation_role_effect(ORG, &role, "bob", &Directory)
        .unwrap();
    assert_eq!(bob.effect, Effect::Deny);
    assert_eq!(bob.role_type, RoleType::FullAccess);
    assert_eq!(
        bob.matched_rules,
        vec![
            MatchedImpersonationRule {
                impersonation_rule_id: "everyone".into(),
                name: "rule everyone".into()
            },
            MatchedImpersonationRule {
                impersonation_rule_id: "not-bob".into(),
                name: "rule not-bob".into()
            },
        ]
    );
    let alice = engine
        .get_impersonation_role_effect(ORG, &role, ALICE, &Directory)
        .unwrap();
    assert!(alice.allowed());
    assert_eq!(alice.matched_rules.len(), 1);
}

#[test]
fn role_without_rules_impersonates_nobody() {
    let (_, engine) = engine();
    let role = create(&engine, role_input(vec![])).unwrap();
    let e = engine
        .get_impersonation_role_effect(ORG, &role, "alice", &Directory)
        .unwrap();
    assert_eq!(e.effect, Effect::Deny);
    assert!(e.matched_rules.is_empty());
}

#[test]
fn not_target_users_and_only_deny_rules() {
    let (_, engine) = engine();
    let role = create(
        &engine,
        role_input(vec![imp_rule("not-bob", Effect::Allow, &[], &["bob"])]),
    )
    .unwrap();
    assert_eq!(effect(&engine, &role, "alice@example.test"), Effect::Allow);
    assert_eq!(effect(&engine, &role, "bob"), Effect::Deny);

    let both = create(
        &engine,
        role_input(vec![imp_rule(
            "ab-not-b",
            Effect::Allow,
            &["alice", "bob"],
            &["bob"],
        )]),
    )
    .unwrap();
    assert_eq!(effect(&engine, &both, "alice"), Effect::Allow);
    assert_eq!(effect(&engine, &both, "bob"), Effect::Deny);

    let deny_only = create(
        &engine,
        role_input(vec![imp_rule("deny-bob", Effect::Deny, &["bob"], &[])]),
    )
    .unwrap();
    // Nothing allows alice, so she is denied too.
    assert_eq!(effect(&engine, &deny_only, "alice"), Effect::Deny);
}

#[test]
fn targets_are_stored_as_given_and_matched_by_id() {
    let (_, engine) = engine();
    let role = create(
        &engine,
        role_input(vec![imp_rule(
            "a",
            Effect::Allow,
            &["alice@example.test"],
            &[],
        )]),
    )
    .unwrap();
    let got = engine.get_impersonation_role(ORG, &role).unwrap();
    assert_eq!(got.rules[0].target_users, strings(&["alice@example.test"]));
    // Any identifier of alice matches.
    for id in [ALICE, "alice", "alice@example.test"] {
        assert_eq!(effect(&engine, &role, id), Effect::Allow);
    }
}

#[test]
fn resolution_errors() {
    let (_, engine) = engine();
    let err = create(
        &engine,
        role_input(vec![imp_rule(
            "a",
            Effect::Allow,
            &["nobody@example.test"],
            &[],
        )]),
    )
    .unwrap_err();
    assert_eq!(err.aws_type(), "EntityNotFoundException");
    // Disabled users may be named in rules...
    let role = create(
        &engine,
        role_input(vec![imp_rule("a", Effect::Allow, &["carol"], &[])]),
    )
    .unwrap();
    // ...but not impersonated.
    let e = engine.get_impersonation_role_effect(ORG, &role, "carol", &Directory);
    assert_eq!(e.unwrap_err().aws_type(), "EntityStateException");
    let e = engine.get_impersonation_role_effect(ORG, &role, "nobody", &Directory);
    assert_eq!(e.unwrap_err().aws_type(), "EntityNotFoundException");
    let e = engine.get_impersonation_role_effect(ORG, "no-such-role", "alice", &Directory);
    assert_eq!(e.unwrap_err().aws_type(), "ResourceNotFoundException");
    let e = engine.get_impersonation_role_effect(ORG, &role, "bad target!", &Directory);
    assert_eq!(e.unwrap_err().aws_type(), "InvalidParameterException");
    let e = engine.get_impersonation_role_effect(OTHER_ORG, &role, "alice", &Directory);
    assert_eq!(e.unwrap_err().aws_type(), "OrganizationNotFoundException");
}

#[test]
fn client_token_makes_create_idempotent() {
    let (_, engine) = engine();
    let make = |token: &str, name: &str| {
        let input = ImpersonationRoleInput {
            name: name.into(),
            ..role_input(vec![])
        };
        engine.create_impersonation_role(ORG, input, Some(token), &Directory, T0)
    };
    let first = make("tok-1", "one").unwrap();
    assert_eq!(make("tok-1", "one").unwrap(), first);
    // Same token, different body: still the same role (documented decision).
    assert_eq!(make("tok-1", "other").unwrap(), first);
    let second = make("tok-2", "two").unwrap();
    assert_ne!(first, second);
    assert_eq!(engine.list_impersonation_roles(ORG).unwrap().len(), 2);
    assert_eq!(
        make("has space", "x").unwrap_err().aws_type(),
        "InvalidParameterException"
    );
    assert_eq!(
        make(&"t".repeat(129), "x").unwrap_err().aws_type(),
        "InvalidParameterException"
    );
    // Deleting the role forgets its token: a retry creates a new role.
    engine.delete_impersonation_role(ORG, &first).unwrap();
    assert_ne!(make("tok-1", "one").unwrap(), first);
}

#[test]
fn role_ids_are_lowercase_uuid_v4() {
    let (_, engine) = engine();
    let id = create(&engine, role_input(vec![])).unwrap();
    let parsed = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
    assert_eq!(id, id.to_lowercase());
    assert_eq!(id.len(), 36);
}

#[test]
fn role_limit() {
    let (_, engine) = engine_with(AccessLimits {
        max_roles_per_org: 2,
        ..AccessLimits::default()
    });
    let first = engine
        .create_impersonation_role(ORG, role_input(vec![]), Some("t1"), &Directory, T0)
        .unwrap();
    create(&engine, role_input(vec![])).unwrap();
    let err = create(&engine, role_input(vec![])).unwrap_err();
    assert_eq!(err.aws_type(), "LimitExceededException");
    // An idempotent retry at the limit still answers.
    let again = engine
        .create_impersonation_role(ORG, role_input(vec![]), Some("t1"), &Directory, T0)
        .unwrap();
    assert_eq!(again, first);
}

#[test]
fn default_role_limit_is_twenty() {
    let (_, engine) = engine();
    for _ in 0..20 {
        create(&engine, role_input(vec![])).unwrap();
    }
    assert!(matches!(
        create(&engine, role_input(vec![])),
        Err(AccessError::LimitExceeded(_))
    ));
}

#[test]
fn validation() {
    let (_, engine) = engine();
    let named = |name: &str| ImpersonationRoleInput {
        name: name.into(),
        ..role_input(vec![])
    };
    let bad = |input: ImpersonationRoleInput| {
        matches!(
            create(&engine, input),
            Err(AccessError::InvalidParameter(_))
        )
    };
    assert!(bad(named("")));
    assert!(bad(named(&"n".repeat(65))));
    assert!(bad(named("a<b")));
    assert!(bad(named("a\\b")));
    assert!(bad(named("tab\there")));
    assert!(!bad(named("Sync service (EWS) é")));
    let described = |d: &str| ImpersonationRoleInput {
        description: Some(d.into()),
        ..role_input(vec![])
    };
    assert!(bad(described("")));
    assert!(bad(described(&"d".repeat(257))));
    assert!(bad(described("bell\u{7}")));
    assert!(!bad(described("multi\nline\tdescription")));
    let rules: Vec<_> = (0..11)
        .map(|i| imp_rule(&format!("r{i}"), Effect::Allow, &[], &[]))
        .collect();
    assert!(bad(role_input(rules)));
    assert!(bad(role_input(vec![
        imp_rule("dup", Effect::Allow, &[], &[]),
        imp_rule("dup", Effect::Deny, &[], &[]),
    ])));
    assert!(bad(role_input(vec![imp_rule(
        "bad id",
        Effect::Allow,
        &[],
        &[]
    )])));
    assert!(bad(role_input(vec![imp_rule(
        "r",
        Effect::Allow,
        &["alice"; 11],
        &[]
    )])));
    assert!(bad(role_input(vec![imp_rule(
        "r",
        Effect::Allow,
        &[],
        &["al ice"]
    )])));
    let mut unnamed = imp_rule("r", Effect::Allow, &[], &[]);
    unnamed.name = String::new();
    assert!(bad(role_input(vec![unnamed])));
    // Only the two valid inputs above created roles.
    assert_eq!(engine.list_impersonation_roles(ORG).unwrap().len(), 2);
}

#[test]
fn update_replaces_bumps_version_and_keeps_date_created() {
    let (_, engine) = engine();
    let role = create(&engine, role_input(vec![])).unwrap();
    let before = engine.get_impersonation_role(ORG, &role).unwrap();
    assert_eq!(before.version, 1);
    let input = ImpersonationRoleInput {
        name: "renamed".into(),
        role_type: RoleType::ReadOnly,
        description: None,
        rules: vec![imp_rule("a", Effect::Allow, &["alice"], &[])],
    };
    engine
        .update_impersonation_role(ORG, &role, input, &Directory, T0 + 5)
        .unwrap();
    let after = engine.get_impersonation_role(ORG, &role).unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.name, "renamed");
    assert_eq!(after.role_type, RoleType::ReadOnly);
    assert_eq!(after.description, None);
    assert_eq!((after.date_created, after.date_modified), (T0, T0 + 5));
    assert_eq!(effect(&engine, &role, "alice"), Effect::Allow);
    assert_eq!(effect(&engine, &role, "bob"), Effect::Deny);

    let err = engine
        .update_impersonation_role(ORG, "missing", role_input(vec![]), &Directory, T0)
        .unwrap_err();
    assert_eq!(err.aws_type(), "ResourceNotFoundException");
    let err = engine
        .update_impersonation_role(
            ORG,
            &role,
            role_input(vec![imp_rule("a", Effect::Allow, &["ghost"], &[])]),
            &Directory,
            T0,
        )
        .unwrap_err();
    assert_eq!(err.aws_type(), "EntityNotFoundException");
    assert_eq!(
        engine.get_impersonation_role(ORG, &role).unwrap().version,
        2
    );
}

#[test]
fn list_get_delete() {
    let (_, engine) = engine();
    let a = create(
        &engine,
        ImpersonationRoleInput {
            name: "a".into(),
            ..role_input(vec![])
        },
    )
    .unwrap();
    let b = create(
        &engine,
        ImpersonationRoleInput {
            name: "b".into(),
            ..role_input(vec![])
        },
    )
    .unwrap();
    let listed: Vec<String> = engine
        .list_impersonation_roles(ORG)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(listed, ["a", "b"]);
    engine.delete_impersonation_role(ORG, &a).unwrap();
    engine.delete_impersonation_role(ORG, &a).unwrap(); // unknown: not an error
    assert_eq!(
        engine
            .get_impersonation_role(ORG, &a)
            .unwrap_err()
            .aws_type(),
        "ResourceNotFoundException"
    );
    assert_eq!(engine.get_impersonation_role(ORG, &b).unwrap().name, "b");
    assert_eq!(engine.list_impersonation_roles(ORG).unwrap().len(), 1);
}

#[test]
fn read_only_permits_exactly_reads() {
    for action in [
        "read",
        "read_hierarchy",
        "read_summary",
        "read_attachment",
        "read_permissions",
    ] {
        assert!(RoleType::ReadOnly.permits(action));
        assert!(RoleType::FullAccess.permits(action));
    }
    for action in [
        "create",
        "update",
        "update_read_state",
        "delete",
        "submit_email_for_sending",
        "move",
    ] {
        assert!(!RoleType::ReadOnly.permits(action), "{action}");
        assert!(RoleType::FullAccess.permits(action));
    }
}

#[test]
fn wire_shape_of_role() {
    let (_, engine) = engine();
    let role = create(
        &engine,
        role_input(vec![imp_rule("a", Effect::Allow, &["alice"], &[])]),
    )
    .unwrap();
    let json = serde_json::to_value(engine.get_impersonation_role(ORG, &role).unwrap()).unwrap();
    assert_eq!(json["Type"], "FULL_ACCESS");
    assert_eq!(json["ImpersonationRoleId"], role.as_str());
    assert_eq!(json["Rules"][0]["ImpersonationRuleId"], "a");
    assert_eq!(json["Rules"][0]["Effect"], "ALLOW");
    assert_eq!(json["Rules"][0]["TargetUsers"][0], "alice");
    assert!(json["Rules"][0].get("NotTargetUsers").is_none());
}
