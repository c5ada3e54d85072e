//! Engine state and persistence: failed saves change nothing, documents round-trip,
//! corrupt stores refuse to open, unknown organizations, concurrent readers.

use std::sync::Arc;

use super::support::*;
use crate::access::{
    AccessControlRuleInput, AccessEngine, AccessError, AccessLimits, Effect, MemoryBackend,
    Principal, Protocol,
};

#[test]
fn failed_save_leaves_state_unchanged() {
    let (backend, engine) = engine();
    let role = allow_all_role(&engine);
    let rules_before = engine.list_access_control_rules(ORG).unwrap();
    let roles_before = engine.list_impersonation_roles(ORG).unwrap();
    let doc_before = backend.document(ORG);
    let generation = engine.generation();
    let request = req("192.0.2.1", Protocol::Imap, Principal::User(ALICE));
    let decision = engine.evaluate(ORG, &request);

    backend.set_fail_saves(true);
    let deny = AccessControlRuleInput {
        actions: strings(&["IMAP"]),
        ..rule("deny-imap", Effect::Deny)
    };
    let err = engine.put_access_control_rule(ORG, deny, T0).unwrap_err();
    assert!(matches!(err, AccessError::Backend(_)));
    assert_eq!(err.aws_type(), "InternalFailure");
    assert_eq!(err.http_status(), 500);
    assert!(engine.delete_access_control_rule(ORG, "default").is_err());
    assert!(
        engine
            .create_impersonation_role(ORG, role_input(vec![]), Some("t"), &Directory, T0)
            .is_err()
    );
    assert!(
        engine
            .update_impersonation_role(ORG, &role, role_input(vec![]), &Directory, T0)
            .is_err()
    );
    assert!(engine.delete_impersonation_role(ORG, &role).is_err());
    assert!(engine.create_organization_defaults(OTHER_ORG, T0).is_err());

    assert_eq!(engine.list_access_control_rules(ORG).unwrap(), rules_before);
    assert_eq!(engine.list_impersonation_roles(ORG).unwrap(), roles_before);
    assert_eq!(
        engine.get_impersonation_role(ORG, &role).unwrap().version,
        1
    );
    assert_eq!(engine.evaluate(ORG, &request), decision);
    assert_eq!(engine.generation(), generation);
    assert!(!engine.has_organization(OTHER_ORG));
    assert_eq!(backend.document(ORG), doc_before);

    // The failed create did not consume its client token.
    backend.set_fail_saves(false);
    let id = engine
        .create_impersonation_role(ORG, role_input(vec![]), Some("t"), &Directory, T0)
        .unwrap();
    assert_ne!(id, role);
}

#[test]
fn reload_round_trips() {
    let (backend, engine) = engine();
    let office = AccessControlRuleInput {
        description: "Büro".into(),
        ip_ranges: strings(&["192.0.2.0/24", "2001:db8::/32"]),
        not_ip_ranges: strings(&["::ffff:192.0.2.7/128"]),
        actions: strings(&["imap", "SMTP"]),
        not_user_ids: strings(&[BOB]),
        not_impersonation_role_ids: strings(&["some-role"]),
        ..rule("office", Effect::Allow)
    };
    engine.put_access_control_rule(ORG, office, T0 + 1).unwrap();
    engine.delete_access_control_rule(ORG, "default").unwrap();
    let role = engine
        .create_impersonation_role(
            ORG,
            role_input(vec![
                imp_rule("a", Effect::Allow, &["alice@example.test"], &[]),
                imp_rule("b", Effect::Deny, &[], &["alice"]),
            ]),
            Some("client-token"),
            &Directory,
            T0 + 2,
        )
        .unwrap();
    engine
        .update_impersonation_role(
            ORG,
            &role,
            role_input(vec![imp_rule(
                "a",
                Effect::Allow,
                &["alice@example.test"],
                &[],
            )]),
            &Directory,
            T0 + 3,
        )
        .unwrap();
    engine.create_organization_defaults(OTHER_ORG, T0).unwrap();
    let token = engine
        .assume_impersonation_role(ORG, &role, T0 + 4)
        .unwrap()
        .token;

    let reloaded = AccessEngine::open(backend.clone(), AccessLimits::default(), keys()).unwrap();
    for org in [ORG, OTHER_ORG] {
        assert_eq!(
            reloaded.list_access_control_rules(org).unwrap(),
            engine.list_access_control_rules(org).unwrap()
        );
        assert_eq!(
            reloaded.list_impersonation_roles(org).unwrap(),
            engine.list_impersonation_roles(org).unwrap()
        );
    }
    assert_eq!(
        reloaded.get_impersonation_role(ORG, &role).unwrap(),
        engine.get_impersonation_role(ORG, &role).unwrap()
    );
    for ip in ["192.0.2.1", "192.0.2.7", "2001:db8::5", "198.51.100.1"] {
        for who in [
            Principal::User(ALICE),
            Principal::User(BOB),
            Principal::Role("r"),
        ] {
            let r = req(ip, Protocol::Imap, who);
            assert_eq!(reloaded.evaluate(ORG, &r), engine.evaluate(ORG, &r));
        }
    }
    for target in ["alice", "bob"] {
        assert_eq!(
            reloaded
                .get_impersonation_role_effect(ORG, &role, target, &Directory)
                .unwrap(),
            engine
                .get_impersonation_role_effect(ORG, &role, target, &Directory)
                .unwrap()
        );
    }
    assert_eq!(
        reloaded.verify_token(&token, T0 + 5).unwrap().role_version,
        2
    );
    let replay = reloaded
        .create_impersonation_role(
            ORG,
            role_input(vec![]),
            Some("client-token"),
            &Directory,
            T0,
        )
        .unwrap();
    assert_eq!(replay, role);
    // One document per organization, in PascalCase.
    let doc: serde_json::Value = serde_json::from_str(&backend.document(ORG).unwrap()).unwrap();
    assert_eq!(doc["FormatVersion"], 1);
    assert_eq!(doc["Rules"][0]["Name"], "office");
    assert_eq!(doc["Rules"][0]["Actions"][0], "IMAP");
}

#[test]
fn corrupt_or_unreadable_store_refuses_to_open() {
    let open = |docs: Vec<(String, String)>| {
        AccessEngine::open(
            Arc::new(MemoryBackend::with_documents(docs)),
            AccessLimits::default(),
            keys(),
        )
    };
    let valid = {
        let (backend, _) = engine();
        backend.document(ORG).unwrap()
    };
    assert!(open(vec![(ORG.into(), valid.clone())]).is_ok());
    let bad_docs = [
        "not json".to_owned(),
        "{}".to_owned(),
        valid.replace("\"FormatVersion\":1", "\"FormatVersion\":2"),
        valid.replace("\"ALLOW\"", "\"MAYBE\""),
        valid.replace("\"IpRanges\":[]", "\"IpRanges\":[\"10.0.0.0/99\"]"),
        valid.replace("\"Rules\":[", "\"Extra\":1,\"Rules\":["),
    ];
    for doc in bad_docs {
        let err = open(vec![(ORG.into(), doc.clone())]).unwrap_err();
        assert!(matches!(err, AccessError::Backend(_)), "{doc}: {err:?}");
    }
    let err = open(vec![("bad org id!".into(), valid)]).unwrap_err();
    assert!(matches!(err, AccessError::Backend(_)));
    let failing = MemoryBackend::new();
    failing.set_fail_loads(true);
    let err = AccessEngine::open(Arc::new(failing), AccessLimits::default(), keys()).unwrap_err();
    assert!(matches!(err, AccessError::Backend(_)));
}

#[test]
fn unknown_organization() {
    let (_, engine) = engine();
    let org_err = |e: AccessError| e.aws_type() == "OrganizationNotFoundException";
    assert!(org_err(
        engine.list_access_control_rules(OTHER_ORG).unwrap_err()
    ));
    assert!(org_err(
        engine
            .put_access_control_rule(OTHER_ORG, rule("r", Effect::Allow), T0)
            .unwrap_err()
    ));
    assert!(org_err(
        engine
            .delete_access_control_rule(OTHER_ORG, "r")
            .unwrap_err()
    ));
    assert!(org_err(
        engine.list_impersonation_roles(OTHER_ORG).unwrap_err()
    ));
    assert!(org_err(
        engine
            .create_impersonation_role(OTHER_ORG, role_input(vec![]), None, &Directory, T0)
            .unwrap_err()
    ));
    assert!(org_err(
        engine
            .delete_impersonation_role(OTHER_ORG, "x")
            .unwrap_err()
    ));
    let d = engine.evaluate(
        OTHER_ORG,
        &req("192.0.2.1", Protocol::Imap, Principal::User(ALICE)),
    );
    assert!(!d.allowed());
    assert!(d.matched_rules.is_empty());
}

#[test]
fn organization_creation() {
    let (_, engine) = engine();
    assert!(!engine.create_organization_defaults(ORG, T0).unwrap());
    assert!(engine.create_organization_defaults(OTHER_ORG, T0).unwrap());
    assert!(engine.has_organization(OTHER_ORG));
    assert_eq!(
        engine
            .create_organization_defaults("", T0)
            .unwrap_err()
            .aws_type(),
        "InvalidParameterException"
    );
    assert!(
        engine
            .create_organization_defaults(&"o".repeat(65), T0)
            .is_err()
    );
}

#[test]
fn readers_never_see_a_half_applied_change() {
    let (_, engine) = engine();
    let engine = Arc::new(engine);
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for i in 0..200u64 {
                let deny = AccessControlRuleInput {
                    ip_ranges: strings(&["192.0.2.0/24"]),
                    ..rule("flip", Effect::Deny)
                };
                engine.put_access_control_rule(ORG, deny, T0 + i).unwrap();
                engine.delete_access_control_rule(ORG, "flip").unwrap();
            }
        })
    };
    let request = req("192.0.2.1", Protocol::Imap, Principal::User(ALICE));
    while !writer.is_finished() {
        let d = engine.evaluate(ORG, &request);
        // Either the old state (default allows) or the new one (flip denies), never a mix.
        match d.effect {
            Effect::Allow => assert_eq!(d.matched_rules, strings(&["default"])),
            Effect::Deny => assert_eq!(d.deciding_rule.as_deref(), Some("flip")),
        }
    }
    writer.join().unwrap();
    assert_eq!(engine.generation(), 1 + 400);
}
